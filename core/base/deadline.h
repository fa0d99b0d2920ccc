/*
 * core/base/deadline.h — the library's one time vocabulary.
 *
 * Time is int64_t nanoseconds of kart_now_ns() (CLOCK_MONOTONIC). A
 * relative timeout is negative for "wait forever"; an absolute deadline is
 * KART__NO_DEADLINE (-1) for "none", the only spelling of it anywhere.
 * kart__timespec() is the one conversion to struct timespec.
 */
#ifndef KART_DEADLINE_H
#define KART_DEADLINE_H

#include <kart/common.h>
#include <stdint.h>
#include <time.h>

#define KART__NO_DEADLINE INT64_C(-1)
#define KART__NS_PER_SEC INT64_C(1000000000)

/* Absolute deadline for a relative timeout: KART__NO_DEADLINE for a
 * negative one; one that would overflow saturates at INT64_MAX. */
static inline int64_t kart__deadline(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return KART__NO_DEADLINE;
    int64_t now = kart_now_ns();
    return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}

/* Time left until a deadline: -1 for none, never below 0 otherwise. */
static inline int64_t kart__time_left(int64_t deadline)
{
    if (deadline == KART__NO_DEADLINE)
        return -1;
    int64_t left = deadline - kart_now_ns();
    return left > 0 ? left : 0;
}

/* A non-negative count of nanoseconds (a duration, or an absolute time of
 * some clock) as a struct timespec. */
static inline struct timespec kart__timespec(int64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / KART__NS_PER_SEC),
                             .tv_nsec = (long)(ns % KART__NS_PER_SEC)};
}

/* A struct timespec as nanoseconds (no overflow check: clock readings and
 * timeouts the library makes fit until 2262). */
static inline int64_t kart__timespec_ns(struct timespec ts)
{
    return (int64_t)ts.tv_sec * KART__NS_PER_SEC + ts.tv_nsec;
}

/* Milliseconds for poll(2)/epoll_wait(2), rounded up so that a wait never
 * returns before its timeout; -1 stays -1, clamps to INT_MAX. */
int kart__timeout_ms(int64_t timeout_ns);

#endif

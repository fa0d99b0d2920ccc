/*
 * tests/childutil.h — bounded reads and waits for the tests that fork.
 *
 * Under make check-faults any system call of a test's child (or of the
 * test itself) may fail, so a child may end without writing what the test
 * reads from it, or stay blocked on something the failed test never
 * sends. A test that then reads a pipe or waits for the child with no
 * bound hangs until Check's timeout, and check-faults reports a hang that
 * is the harness's, not the library's. These helpers end every such wait:
 * a read returns what came before the writer's end or the deadline, a wait
 * kills and reaps a child still running at its deadline, and the test
 * fails saying which. Before reading, a test closes the write ends it
 * does not use itself (else the read never sees the child's end).
 *
 * Included by testutil.h; the deadlines are far beyond what a passing
 * test needs on a loaded machine, and below check-faults' own hang limit.
 */
#ifndef KART_TEST_CHILDUTIL_H
#define KART_TEST_CHILDUTIL_H

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

/* The deadline of kt_read_child and kt_wait_child, in milliseconds. */
#define KT_CHILD_MS 15000

static inline int64_t kt_child_now_ms_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads up to n bytes from fd (blocking or not), waiting at most ms in
 * all. Returns the bytes read: n, or fewer when the writer's end closed
 * first (a child that ended early) or the deadline passed. Returns -errno
 * when read or poll fail with nothing read yet. */
static inline ssize_t kt_read_for(int fd, void *buf, size_t n, int ms)
{
    int64_t end = kt_child_now_ms_() + ms;
    size_t got = 0;
    while (got < n) {
        int64_t left = end - kt_child_now_ms_();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return got ? (ssize_t)got : -errno;
        if (r == 0)
            break;
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k < 0)
            return got ? (ssize_t)got : -errno;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

/* Waits for child pid at most ms. Returns pid with its status in *status
 * (NULL: not stored); or, when it still runs at the deadline, kills it
 * with SIGKILL, reaps it and returns -ETIMEDOUT; or -errno of waitpid. */
static inline pid_t kt_waitpid_for(pid_t pid, int *status, int ms)
{
    int64_t end = kt_child_now_ms_() + ms;
    int st = 0;
    for (int pause_ms = 1;; pause_ms = pause_ms < 50 ? pause_ms * 2 : 50) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == pid) {
            if (status)
                *status = st;
            return pid;
        }
        if (kt_child_now_ms_() >= end)
            break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)pause_ms * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return -ETIMEDOUT;
}

/* Reads exactly n bytes that a child writes to fd within KT_CHILD_MS, or
 * fails the test: "child failed" with what came instead. */
#define kt_read_child(fd, buf, n)                                                                  \
    do {                                                                                           \
        size_t kt_n_ = (size_t)(n);                                                                \
        ssize_t kt_got_ = kt_read_for((fd), (buf), kt_n_, KT_CHILD_MS);                            \
        ck_assert_msg(kt_got_ == (ssize_t)kt_n_,                                                   \
                      "child failed: read %zd of %zu bytes from it (%s)", kt_got_, kt_n_,          \
                      kt_got_ < 0 ? strerror((int)-kt_got_)                                        \
                                  : "its end or the deadline came first");                         \
    } while (0)

/* Waits for child pid within KT_CHILD_MS and stores its status in *st, or
 * fails the test: "child failed" (still running: killed and reaped). */
#define kt_wait_child(pid, st)                                                                     \
    do {                                                                                           \
        pid_t kt_pid_ = (pid);                                                                     \
        pid_t kt_r_ = kt_waitpid_for(kt_pid_, (st), KT_CHILD_MS);                                  \
        ck_assert_msg(kt_r_ == kt_pid_, "child failed: %d not ended within %d ms (%s)",            \
                      (int)kt_pid_, KT_CHILD_MS, kt_r_ < 0 ? strerror((int)-kt_r_) : "?");         \
    } while (0)

#endif

/*
 * core/base/clock.c — the monotonic clock and the timeout
 * conversion every poll-style backend needs.
 */
#include "deadline.h"

#include <kart/common.h>

#include <limits.h>
#include <time.h>

KART_API int64_t kart_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return kart__timespec_ns(ts);
}

int kart__timeout_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return -1;
    int64_t ms = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

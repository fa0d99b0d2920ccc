/*
 * core/clock.c — the monotonic clock, the debug log, and the timeout
 * conversion every poll-style backend needs.
 */
#include "deadline.h"
#include "debug.h"

#include <kart/common.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

void kart__debug(const char *fmt, ...)
{
    static _Atomic int enabled = -1;
    if (enabled < 0) {
        const char *v = getenv("KART_DEBUG");
        enabled = v && *v && *v != '0';
    }
    if (!enabled)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("kart: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

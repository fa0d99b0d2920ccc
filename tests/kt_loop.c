/* tests/kt_loop.c — see kt_loop.h. */
#include "kt_loop.h"

#include <check.h>
#include <kart/common.h>

/* The heartbeat does nothing: its firing ends a turn. */
static void heartbeat(kart_timer *t)
{
    (void)t;
}

static int load_plain(const void *flag)
{
    return *(const int *)flag;
}

static int load_atomic(const void *flag)
{
    return atomic_load((const atomic_int *)flag);
}

static long run_until(kart_loop *loop, int (*load)(const void *), const void *flag, int want,
                      int hb_ms, int limit_ms)
{
    const int64_t ms = 1000000;
    kart_timer hb;
    ck_assert_int_eq(kart_timer_init(loop, &hb), 0);
    ck_assert_int_eq(kart_timer_start(&hb, heartbeat, hb_ms * ms, hb_ms * ms), 0);
    int64_t end = kart_now_ns() + limit_ms * ms;
    long turns = 0;
    while (load(flag) < want) {
        ck_assert_msg(kart_now_ns() < end, "timed out: %d of %d", load(flag), want);
        ck_assert_int_ge(kart_loop_run(loop, KART_RUN_ONCE), 0);
        turns++;
    }
    kart_timer_stop(&hb);
    return turns;
}

long kt_run_until(kart_loop *loop, const int *flag, int want, int hb_ms, int limit_ms)
{
    return run_until(loop, load_plain, flag, want, hb_ms, limit_ms);
}

long kt_run_until_atomic(kart_loop *loop, const atomic_int *flag, int want, int hb_ms, int limit_ms)
{
    return run_until(loop, load_atomic, flag, want, hb_ms, limit_ms);
}

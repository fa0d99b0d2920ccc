/* Description: the event loop's timers (kart_timer, kart/loop.h): firing
 * order (deadline, then start order, also for 100,000 random deadlines,
 * and after stops from the middle of a 20,000-timer heap),
 * repeat, again, due_in, restart, stopping itself or other due timers from
 * a callback, a timer restarting at 0 that must not starve I/O, and the
 * errors. In every check_loop* suite, each case that runs a loop runs once
 * per compiled-in backend (forced through KART_BACKEND, skipped where it
 * cannot start), and every error that the header documents has a case,
 * except those only a failing allocator or kernel produces (-ENOMEM,
 * -ENFILE, a backend's or a write's failure). */
#define KT_LOOP_HELPERS
#include "testutil.h"

static int fired_order[64];
static int nfired;

typedef struct ordered_timer {
    kart_timer t;
    int id;
} ordered_timer;

static void record_order_cb(kart_timer *t)
{
    ordered_timer *o = (ordered_timer *)t;
    ck_assert_int_lt(nfired, 64);
    /* Never before its deadline. */
    ck_assert_int_ge(kart_loop_now(t->base.loop), *(int64_t *)t->base.data);
    fired_order[nfired++] = o->id;
}

START_TEST(timer_ties_fire_in_start_order)
{
    LOOP_OR_SKIP(_i);
    static const int start_order[10] = {3, 7, 0, 9, 1, 5, 8, 2, 6, 4};
    ordered_timer t[10];
    int64_t deadline = kart_loop_now(loop) + 2 * KT_MS;
    for (int k = 0; k < 10; k++) {
        ck_assert_int_eq(kart_timer_init(loop, &t[k].t), 0);
        t[k].id = k;
        t[k].t.base.data = &deadline;
    }
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(kart_timer_start(&t[start_order[k]].t, record_order_cb, 2 * KT_MS, 0), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 10);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(nfired, 10);
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(fired_order[k], start_order[k]);
    close_loop(loop);
}
END_TEST

START_TEST(timer_mixed_deadlines_fire_in_deadline_order)
{
    LOOP_OR_SKIP(_i);
    static const int timeout_ms[12] = {5, 1, 3, 1, 0, 5, 2, 0, 3, 1, 4, 2};
    ordered_timer t[12];
    int64_t deadline[12];
    int64_t now = kart_loop_now(loop);
    for (int k = 0; k < 12; k++) {
        kart_timer_init(loop, &t[k].t);
        t[k].id = k;
        deadline[k] = now + timeout_ms[k] * KT_MS;
        t[k].t.base.data = &deadline[k];
        ck_assert_int_eq(kart_timer_start(&t[k].t, record_order_cb, timeout_ms[k] * KT_MS, 0), 0);
    }
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(nfired, 12);
    /* Sorted by timeout, ties by start (index) order. */
    int k = 0;
    for (int ms = 0; ms <= 5; ms++)
        for (int j = 0; j < 12; j++)
            if (timeout_ms[j] == ms)
                ck_assert_int_eq(fired_order[k++], j);
    close_loop(loop);
}
END_TEST

static void repeat_cb(kart_timer *t)
{
    rec *r = t->base.data;
    int64_t now = kart_loop_now(t->base.loop);
    /* Each firing comes at least one repeat interval after the last. */
    if (r->calls > 0)
        ck_assert_int_ge(now - r->when, 2 * KT_MS);
    ck_assert_int_eq(kart_handle_is_active(&t->base), 1);
    ck_assert_int_eq(kart_timer_due_in(t), 2 * KT_MS);
    r->when = now;
    if (++r->calls == 5)
        ck_assert_int_eq(kart_timer_stop(t), 0);
}

START_TEST(timer_repeats_until_stopped)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_timer t;
    kart_timer_init(loop, &t);
    t.base.data = &r;
    int64_t start = kart_loop_now(loop);
    ck_assert_int_eq(kart_timer_start(&t, repeat_cb, KT_MS, 2 * KT_MS), 0);
    ck_assert_int_eq(kart_timer_get_repeat(&t), 2 * KT_MS);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 5);
    ck_assert_int_ge(r.when - start, KT_MS + 4 * 2 * KT_MS);
    ck_assert_int_eq(kart_handle_is_active(&t.base), 0);
    ck_assert_int_eq(kart_timer_due_in(&t), -1);
    close_loop(loop);
}
END_TEST

static void timer_stop_self_cb(kart_timer *t)
{
    rec *r = t->base.data;
    r->calls++;
    ck_assert_int_eq(kart_timer_stop(t), 0);
    ck_assert_int_eq(kart_timer_stop(t), 0);
    r->active = kart_handle_is_active(&t->base);
    ck_assert_int_eq(kart_timer_due_in(t), -1);
}

static int timer_freed_calls;

static void timer_stop_free_self_cb(kart_timer *t)
{
    timer_freed_calls++;
    ck_assert_int_eq(kart_timer_stop(t), 0);
    free(t);
}

START_TEST(timer_stop_inside_own_callback)
{
    LOOP_OR_SKIP(_i);
    rec r1 = {0}, r2 = {0};
    kart_timer one, rep;
    kart_timer_init(loop, &one);
    kart_timer_init(loop, &rep);
    one.base.data = &r1;
    rep.base.data = &r2;
    ck_assert_int_eq(kart_timer_start(&one, timer_stop_self_cb, 0, 0), 0);
    ck_assert_int_eq(kart_timer_start(&rep, timer_stop_self_cb, 0, KT_MS), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_int_eq(r2.calls, 1);
    ck_assert_int_eq(r1.active, 0);
    ck_assert_int_eq(r2.active, 0);

    kart_timer *heap = malloc(sizeof(*heap));
    kart_timer_init(loop, heap);
    ck_assert_int_eq(kart_timer_start(heap, timer_stop_free_self_cb, KT_MS, KT_MS), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(timer_freed_calls, 1);
    close_loop(loop);
}
END_TEST

/* The first due timer stops (and frees) the others, which are due in the
 * same run. */
static kart_timer *victims[3];
static int victim_calls, killer_calls;

static void victim_cb(kart_timer *t)
{
    (void)t;
    victim_calls++;
}

static void killer_cb(kart_timer *t)
{
    (void)t;
    killer_calls++;
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(kart_timer_stop(victims[k]), 0);
        free(victims[k]);
        victims[k] = NULL;
    }
}

START_TEST(timer_stopping_a_due_timer_prevents_it_firing)
{
    LOOP_OR_SKIP(_i);
    kart_timer killer;
    kart_timer_init(loop, &killer);
    ck_assert_int_eq(kart_timer_start(&killer, killer_cb, KT_MS, 0), 0);
    for (int k = 0; k < 3; k++) {
        victims[k] = malloc(sizeof(kart_timer));
        kart_timer_init(loop, victims[k]);
    }
    /* Same deadline, started later; a later deadline; a repeating one. */
    ck_assert_int_eq(kart_timer_start(victims[0], victim_cb, KT_MS, 0), 0);
    ck_assert_int_eq(kart_timer_start(victims[1], victim_cb, 2 * KT_MS, 0), 0);
    ck_assert_int_eq(kart_timer_start(victims[2], victim_cb, 2 * KT_MS, KT_MS), 0);
    /* All due by the time the loop looks. */
    sleep_ns(5 * KT_MS);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(killer_calls, 1);
    ck_assert_int_eq(victim_calls, 0);
    close_loop(loop);
}
END_TEST

static void again_twice_cb(kart_timer *t)
{
    rec *r = t->base.data;
    if (++r->calls == 2)
        kart_timer_stop(t);
}

START_TEST(timer_again_and_repeat)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_timer t;
    kart_timer_init(loop, &t);
    t.base.data = &r;
    ck_assert_int_eq(kart_timer_again(NULL), -EINVAL);
    ck_assert_int_eq(kart_timer_again(&t), -EINVAL); /* never started */
    ck_assert_int_eq(kart_timer_get_repeat(&t), 0);
    ck_assert_int_eq(kart_timer_set_repeat(&t, -1), -EINVAL);
    ck_assert_int_eq(kart_timer_set_repeat(NULL, KT_MS), -EINVAL);
    ck_assert_int_eq(kart_timer_set_repeat(&t, 5 * KT_MS), 0);
    ck_assert_int_eq(kart_timer_get_repeat(&t), 5 * KT_MS);
    ck_assert_int_eq(kart_timer_again(&t), -EINVAL); /* still never started */
    ck_assert_int_eq(kart_handle_is_active(&t.base), 0);

    int64_t hour = 3600 * INT64_C(1000000000);
    ck_assert_int_eq(kart_timer_start(&t, again_twice_cb, hour, 0), 0);
    ck_assert_int_eq(kart_timer_get_repeat(&t), 0);
    ck_assert_int_eq(kart_timer_again(&t), -EINVAL); /* repeat 0 */
    ck_assert_int_eq(kart_handle_is_active(&t.base), 1);
    ck_assert_int_gt(kart_timer_due_in(&t), hour / 2);

    /* again restarts from now with the repeat interval. */
    ck_assert_int_eq(kart_timer_set_repeat(&t, 2 * KT_MS), 0);
    ck_assert_int_eq(kart_timer_again(&t), 0);
    ck_assert_int_le(kart_timer_due_in(&t), 2 * KT_MS);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 2);

    /* A stopped timer with a repeat: again starts it. */
    r.calls = 0;
    ck_assert_int_eq(kart_handle_is_active(&t.base), 0);
    ck_assert_int_eq(kart_timer_again(&t), 0);
    ck_assert_int_eq(kart_handle_is_active(&t.base), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 2);

    /* A repeat set to 0 before the firing makes it the last. */
    r.calls = 0;
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, 0, KT_MS), 0);
    ck_assert_int_eq(kart_timer_set_repeat(&t, 0), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    /* And a repeat set on a one-shot timer before it fires makes it
     * repeat. */
    r.calls = 0;
    ck_assert_int_eq(kart_timer_start(&t, again_twice_cb, 0, 0), 0);
    ck_assert_int_eq(kart_timer_set_repeat(&t, KT_MS), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 2);
    close_loop(loop);
}
END_TEST

static void due_in_cb(kart_timer *t)
{
    rec *r = t->base.data;
    r->calls++;
    r->value = (int)kart_timer_due_in(t);
}

START_TEST(timer_due_in)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_timer t;
    kart_timer_init(loop, &t);
    t.base.data = &r;
    ck_assert_int_eq(kart_timer_due_in(&t), -1);
    ck_assert_int_eq(kart_timer_start(&t, due_in_cb, 50 * KT_MS, 0), 0);
    ck_assert_int_eq(kart_timer_due_in(&t), 50 * KT_MS);
    sleep_ns(KT_MS);
    kart_loop_update_time(loop);
    int64_t left = kart_timer_due_in(&t);
    ck_assert_int_gt(left, 0);
    ck_assert_int_le(left, 49 * KT_MS);
    ck_assert_int_eq(kart_timer_stop(&t), 0);
    ck_assert_int_eq(kart_timer_due_in(&t), -1);
    /* Overdue: 0. */
    ck_assert_int_eq(kart_timer_start(&t, due_in_cb, KT_MS, 0), 0);
    sleep_ns(2 * KT_MS);
    kart_loop_update_time(loop);
    ck_assert_int_eq(kart_timer_due_in(&t), 0);
    /* In its own callback a one-shot is no longer active. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, -1);
    close_loop(loop);
}
END_TEST

START_TEST(timer_restart_while_active)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_timer t;
    kart_timer_init(loop, &t);
    t.base.data = &r;
    ck_assert_int_eq(kart_timer_start(&t, victim_cb, 3600 * INT64_C(1000000000), 0), 0);
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, KT_MS, 0), 0);
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, 2 * KT_MS, 0), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_timer_due_in(&t), 2 * KT_MS);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(victim_calls, 0);
    ck_assert_int_eq(kart_handle_is_active(&t.base), 0);
    close_loop(loop);
}
END_TEST

/* A timer that restarts itself with timeout 0, and an fd that is always
 * ready: both must make progress. */
static kart_timer spin_timer;
static kart_watch spin_io;
static int spin_timer_calls, spin_io_calls;

static void spin_maybe_done(void)
{
    if (spin_timer_calls >= 50 && spin_io_calls >= 50) {
        kart_timer_stop(&spin_timer);
        kart_watch_stop(&spin_io);
    }
}

static void spin_timer_cb(kart_timer *t)
{
    spin_timer_calls++;
    ck_assert_int_eq(kart_timer_start(t, spin_timer_cb, 0, 0), 0);
    spin_maybe_done();
}

static void spin_io_cb(kart_watch *io, uint32_t events)
{
    (void)io;
    (void)events;
    spin_io_calls++;
    spin_maybe_done();
}

START_TEST(timer_restarting_at_zero_does_not_starve_io)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    kart_timer_init(loop, &spin_timer);
    kart_watch_init(loop, &spin_io, sv[0]);
    ck_assert_int_eq(kart_timer_start(&spin_timer, spin_timer_cb, 0, 0), 0);
    ck_assert_int_eq(kart_watch_start(&spin_io, KART_WRITABLE, spin_io_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_ge(spin_timer_calls, 50);
    ck_assert_int_ge(spin_io_calls, 50);
    close_loop(loop);
    close2(sv);
}
END_TEST

#define NTIMERS 100000
static kart_timer *many;
static int64_t *many_deadline;
static uint8_t *many_fired;
static int many_last = -1, many_count;

static void many_cb(kart_timer *t)
{
    int id = (int)(t - many);
    ck_assert_int_eq(many_fired[id], 0);
    many_fired[id] = 1;
    many_count++;
    ck_assert_int_ge(kart_loop_now(t->base.loop), many_deadline[id]);
    if (many_last >= 0) {
        /* Non-decreasing deadlines; equal ones in start (index) order. */
        ck_assert_int_ge(many_deadline[id], many_deadline[many_last]);
        if (many_deadline[id] == many_deadline[many_last])
            ck_assert_int_gt(id, many_last);
    }
    many_last = id;
}

START_TEST(timer_100k_random_deadlines_fire_once_in_order)
{
    LOOP_OR_SKIP(_i);
    many = calloc(NTIMERS, sizeof(*many));
    many_deadline = calloc(NTIMERS, sizeof(*many_deadline));
    many_fired = calloc(NTIMERS, 1);
    ck_assert(many && many_deadline && many_fired);
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int k = 0; k < NTIMERS; k++) {
        /* Time moves on while they are started. */
        if (k % 1000 == 0)
            kart_loop_update_time(loop);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Coarse steps give many equal deadlines, to check ties too. */
        int64_t timeout = (int64_t)(x % 2000) * 10000; /* [0, 20 ms) */
        kart_timer_init(loop, &many[k]);
        many_deadline[k] = kart_loop_now(loop) + timeout;
        ck_assert_int_eq(kart_timer_start(&many[k], many_cb, timeout, 0), 0);
    }
    ck_assert_int_eq(kart_loop_active_handles(loop), NTIMERS);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(many_count, NTIMERS);
    for (int k = 0; k < NTIMERS; k++)
        ck_assert_int_eq(many_fired[k], 1);
    close_loop(loop);
    free(many);
    free(many_deadline);
    free(many_fired);
}
END_TEST

/* Stopping timers from the middle of a large heap: the last entry moves
 * into the hole and may belong above it (sift up) or below it (sift
 * down). 20,000 timers with random deadlines, a random half stopped in
 * random order (a third of those restarted with a new deadline); every
 * timer still running fires once, in (deadline, start) order, never early
 * and within a bound late, and no stopped timer fires. */
#define NMID 20000
typedef struct mid_timer {
    kart_timer t;
    int64_t deadline;
    uint64_t order; /* start order: ties fire in it */
    int fired;
    bool stopped;
} mid_timer;
static mid_timer *mid;
static int64_t mid_last_deadline;
static uint64_t mid_last_order;
static int mid_count, mid_bad_order, mid_early, mid_late, mid_stopped_fired;

static void mid_cb(kart_timer *t)
{
    mid_timer *m = (mid_timer *)t;
    int64_t now = kart_loop_now(t->base.loop);
    m->fired++;
    mid_stopped_fired += m->stopped;
    mid_early += now < m->deadline;
    mid_late += now > m->deadline + 2000 * KT_MS;
    if (mid_count && (m->deadline < mid_last_deadline ||
                      (m->deadline == mid_last_deadline && m->order < mid_last_order)))
        mid_bad_order++;
    mid_last_deadline = m->deadline;
    mid_last_order = m->order;
    mid_count++;
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

START_TEST(timer_stops_from_the_middle_keep_the_order)
{
    LOOP_OR_SKIP(_i);
    mid = calloc(NMID, sizeof(*mid));
    ck_assert_ptr_nonnull(mid);
    mid_count = mid_bad_order = mid_early = mid_late = mid_stopped_fired = 0;
    uint64_t x = 0x2545f4914f6cdd1du, order = 0;
    int started = 0;
    for (int k = 0; k < NMID; k++) {
        /* Coarse steps: ties too. [5 ms, 45 ms) */
        int64_t timeout = 5 * KT_MS + (int64_t)(xorshift(&x) % 4000) * 10000;
        ck_assert_int_eq(kart_timer_init(loop, &mid[k].t), 0);
        mid[k].deadline = kart_loop_now(loop) + timeout;
        mid[k].order = order++;
        started += kart_timer_start(&mid[k].t, mid_cb, timeout, 0) == 0;
    }
    ck_assert_int_eq(started, NMID);
    int running = NMID, bad_stop = 0;
    for (int s = 0; s < NMID / 2; s++) {
        int k = (int)(xorshift(&x) % NMID);
        if (mid[k].stopped)
            continue;
        bad_stop += kart_timer_stop(&mid[k].t) != 0;
        bad_stop += kart_timer_due_in(&mid[k].t) != -1;
        if (s % 3 == 0) { /* restarted: it moves to a new place */
            int64_t timeout = 5 * KT_MS + (int64_t)(xorshift(&x) % 4000) * 10000;
            mid[k].deadline = kart_loop_now(loop) + timeout;
            mid[k].order = order++;
            bad_stop += kart_timer_start(&mid[k].t, mid_cb, timeout, 0) != 0;
        } else {
            mid[k].stopped = true;
            running--;
        }
    }
    ck_assert_int_eq(bad_stop, 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), running);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(mid_stopped_fired, 0);
    ck_assert_int_eq(mid_count, running);
    ck_assert_int_eq(mid_bad_order, 0);
    ck_assert_int_eq(mid_early, 0);
    ck_assert_int_eq(mid_late, 0);
    KT_ASSERT_EACH(k, NMID, mid[k].fired == (mid[k].stopped ? 0 : 1));
    close_loop(loop);
    free(mid);
}
END_TEST

START_TEST(timer_errors)
{
    LOOP_OR_SKIP(_i);
    kart_timer t;
    ck_assert_int_eq(kart_timer_init(NULL, &t), -EINVAL);
    ck_assert_int_eq(kart_timer_init(loop, NULL), -EINVAL);
    ck_assert_int_eq(kart_timer_init(loop, &t), 0);
    ck_assert_int_eq(kart_timer_start(NULL, victim_cb, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_timer_start(&t, NULL, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_timer_start(&t, victim_cb, -1, 0), -EINVAL);
    ck_assert_int_eq(kart_timer_start(&t, victim_cb, 0, -1), -EINVAL);
    ck_assert_int_eq(kart_timer_start(&t, victim_cb, INT64_MIN, INT64_MIN), -EINVAL);
    ck_assert_int_eq(kart_handle_is_active(&t.base), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    ck_assert_int_eq(kart_timer_stop(&t), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(victim_calls, 0);

    /* A failed restart leaves an active timer as it was. */
    rec r = {0};
    t.base.data = &r;
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, KT_MS, 0), 0);
    ck_assert_int_eq(kart_timer_start(&t, victim_cb, -5, 0), -EINVAL);
    ck_assert_int_eq(kart_handle_is_active(&t.base), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(victim_calls, 0);

    /* A huge timeout saturates instead of wrapping into the past. */
    ck_assert_int_eq(kart_timer_start(&t, victim_cb, INT64_MAX, 0), 0);
    ck_assert_int_gt(kart_timer_due_in(&t), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(victim_calls, 0);
    kart_timer_stop(&t);
    close_loop(loop);
}
END_TEST

int main(void)
{
    kt_print_backends();
    int nb = kt_nbackends();
    Suite *s = suite_create("loop_timers");

    TCase *tc = tcase_create("timer");
    tcase_add_loop_test(tc, timer_ties_fire_in_start_order, 0, nb);
    tcase_add_loop_test(tc, timer_mixed_deadlines_fire_in_deadline_order, 0, nb);
    tcase_add_loop_test(tc, timer_repeats_until_stopped, 0, nb);
    tcase_add_loop_test(tc, timer_stop_inside_own_callback, 0, nb);
    tcase_add_loop_test(tc, timer_stopping_a_due_timer_prevents_it_firing, 0, nb);
    tcase_add_loop_test(tc, timer_again_and_repeat, 0, nb);
    tcase_add_loop_test(tc, timer_due_in, 0, nb);
    tcase_add_loop_test(tc, timer_restart_while_active, 0, nb);
    tcase_add_loop_test(tc, timer_restarting_at_zero_does_not_starve_io, 0, nb);
    tcase_add_loop_test(tc, timer_100k_random_deadlines_fire_once_in_order, 0, nb);
    tcase_add_loop_test(tc, timer_stops_from_the_middle_keep_the_order, 0, nb);
    tcase_add_loop_test(tc, timer_errors, 0, nb);
    suite_add_tcase(s, tc);

    return kt_run(s);
}

/* Description: a loop's wake-up whose write fails (EIO, injected) loses
 * nothing. kart_async_send and kart_user_trigger return the error and take
 * the send back, so that the caller's retry writes again and wakes the
 * loop (before, the loop's "signalled" flag and the handle's pending bit
 * stayed set: every later send coalesced into the failed one and the loop
 * slept on). kart_future_await's inbox and kart_pool_bridge retry their
 * send, so a future completed on another thread is still delivered
 * (check-faults seed 20261209: KART_FAULT=write:3:ECONNRESET
 * CK_RUN_CASE=await check_loop_future hung in
 * await_failed_and_cancelled_futures). Each case runs one turn of the loop
 * with a 3 s guard timer: woken by the retry, the turn ends at once and the
 * guard has not fired. On every backend that starts here. */
#include "testutil.h"

#include "fault.h"

#include <kart/pool.h>
#include <pthread.h>

static const char *const backends[] = {"uring", "epoll", "poll", "select"};

/* The guard: one turn that nothing woke ends when it fires. */
#define GUARD_MS 3000

static kart_loop *loop_on(const char *backend)
{
    if (kart_backend_probe(backend) != 0)
        return NULL;
    kart_loop *loop;
    kart_loop_options o = {.selector.backend = backend};
    ck_assert_int_eq(kart_loop_create(&loop, &o), 0);
    return loop;
}

static void count_timer(kart_timer *t)
{
    (*(int *)t->base.data)++;
}

static void start_guard(kart_loop *loop, kart_timer *t, int *fired)
{
    ck_assert_int_eq(kart_timer_init(loop, t), 0);
    t->base.data = fired;
    ck_assert_int_eq(kart_timer_start(t, count_timer, GUARD_MS * KT_MS, 0), 0);
    kart_handle_unref(&t->base);
}

/* One turn of the loop, which a wake-up ends at once. */
static void one_turn(kart_loop *loop)
{
    int64_t t0 = kart_now_ns();
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_lt(kart_now_ns() - t0, (GUARD_MS - 1000) * KT_MS);
}

static void count_async(kart_async *a)
{
    (*(int *)a->base.data)++;
}

START_TEST(async_send_write_fails_then_the_retry_wakes)
{
    kart_loop *loop = loop_on(backends[_i]);
    if (!loop)
        KART_SKIP("no %s here", backends[_i]);
    kart_async a;
    int got = 0, fired = 0;
    ck_assert_int_eq(kart_async_init(loop, &a), 0);
    a.base.data = &got;
    ck_assert_int_eq(kart_async_start(&a, count_async), 0);
    kart_timer guard;
    start_guard(loop, &guard, &fired);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0); /* a ring is enabled */
    ck_assert_int_eq(kart__fault_fail(KART__SYS_write, 1, 1, EIO), 0);
    ck_assert_int_eq(kart_async_send(&a), -EIO);
    ck_assert_uint_eq(kart__fault_fired(KART__SYS_write), 1);
    /* The retry writes (it did not coalesce into the failed send). */
    ck_assert_int_eq(kart_async_send(&a), 0);
    ck_assert_uint_eq(kart__fault_count(KART__SYS_write), 2);
    kart__fault_reset();
    one_turn(loop);
    ck_assert_int_eq(got, 1);
    ck_assert_int_eq(fired, 0);
    /* And the next sends coalesce and wake as before. */
    ck_assert_int_eq(kart_async_send(&a), 0);
    ck_assert_int_eq(kart_async_send(&a), 0);
    one_turn(loop);
    ck_assert_int_eq(got, 2);
    kart_async_stop(&a);
    kart_loop_free(loop);
}
END_TEST

/* EAGAIN on the wake-up's eventfd means its counter is full, so the loop
 * is woken: the send succeeds. An injected EAGAIN writes first, as that
 * state would be (core/base/fault.c): before, it lost the wake-up behind
 * the success (check-faults: write:1:EAGAIN in check_pool hung). */
START_TEST(async_send_write_eagain_still_wakes)
{
    kart_loop *loop = loop_on(backends[_i]);
    if (!loop)
        KART_SKIP("no %s here", backends[_i]);
    kart_async a;
    int got = 0, fired = 0;
    ck_assert_int_eq(kart_async_init(loop, &a), 0);
    a.base.data = &got;
    ck_assert_int_eq(kart_async_start(&a, count_async), 0);
    kart_timer guard;
    start_guard(loop, &guard, &fired);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(kart__fault_fail(KART__SYS_write, 1, 1, EAGAIN), 0);
    ck_assert_int_eq(kart_async_send(&a), 0);
    ck_assert_uint_eq(kart__fault_fired(KART__SYS_write), 1);
    kart__fault_reset();
    one_turn(loop);
    ck_assert_int_eq(got, 1);
    ck_assert_int_eq(fired, 0);
    kart_async_stop(&a);
    kart_loop_free(loop);
}
END_TEST

static void count_user(kart_user *u, unsigned fflags)
{
    *(unsigned *)u->base.data |= fflags | 0x100u;
}

START_TEST(user_trigger_write_fails_then_the_retry_wakes_with_both_flags)
{
    kart_loop *loop = loop_on(backends[_i]);
    if (!loop)
        KART_SKIP("no %s here", backends[_i]);
    kart_user u;
    unsigned got = 0;
    int fired = 0;
    ck_assert_int_eq(kart_user_init(loop, &u), 0);
    u.base.data = &got;
    ck_assert_int_eq(kart_user_start(&u, count_user), 0);
    kart_timer guard;
    start_guard(loop, &guard, &fired);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(kart__fault_fail(KART__SYS_write, 1, 1, EIO), 0);
    ck_assert_int_eq(kart_user_trigger(&u, 1), -EIO);
    ck_assert_int_eq(kart_user_trigger(&u, 2), 0);
    ck_assert_uint_eq(kart__fault_count(KART__SYS_write), 2);
    kart__fault_reset();
    one_turn(loop);
    ck_assert_uint_eq(got, 0x103u); /* one call, both triggers' flags */
    ck_assert_int_eq(fired, 0);
    kart_user_stop(&u);
    kart_loop_free(loop);
}
END_TEST

static void count_future(kart_future *f, void *arg)
{
    (void)f;
    (*(int *)arg)++;
}

static void *set_result(void *arg)
{
    kart_future_set_result(arg, "x", 1);
    return NULL;
}

/* Completes f on another thread, whose first `times` writes fail.
 * Returns the writes that failed: up to `times` (the wake-up and its
 * retries), or 0 on a ring that waits on the future's word itself
 * (kart_future_await's io_uring path: no write). */
static unsigned complete_elsewhere(kart_future *f, unsigned times)
{
    pthread_t t;
    ck_assert_int_eq(kart__fault_fail(KART__SYS_write, 1, times, EIO), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, set_result, f), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    unsigned n = kart__fault_fired(KART__SYS_write);
    kart__fault_reset();
    return n;
}

START_TEST(future_await_wakeup_write_fails)
{
    kart_loop *loop = loop_on(backends[_i]);
    if (!loop)
        KART_SKIP("no %s here", backends[_i]);
    int got = 0, fired = 0;
    kart_timer guard;
    start_guard(loop, &guard, &fired);
    kart_future *f;
    ck_assert_int_eq(kart_future_create(&f), 0);
    ck_assert_int_eq(kart_future_await(f, loop, count_future, &got), 0);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    unsigned failed = complete_elsewhere(f, 1);
    if (strcmp(backends[_i], "uring") != 0)
        ck_assert_uint_eq(failed, 1);
    one_turn(loop);
    ck_assert_int_eq(got, 1);
    ck_assert_int_eq(fired, 0);
    kart_future_free(f);
    kart_loop_free(loop);
}
END_TEST

START_TEST(pool_bridge_wakeup_write_fails)
{
    kart_loop *loop = loop_on(backends[_i]);
    if (!loop)
        KART_SKIP("no %s here", backends[_i]);
    int got = 0, fired = 0;
    kart_timer guard;
    start_guard(loop, &guard, &fired);
    kart_pool_bridge *b;
    ck_assert_int_eq(kart_pool_bridge_create(loop, &b), 0);
    kart_future *f;
    ck_assert_int_eq(kart_future_create(&f), 0);
    ck_assert_int_eq(kart_future_on_loop(f, b, count_future, &got), 0);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_uint_eq(complete_elsewhere(f, 1), 1);
    one_turn(loop);
    ck_assert_int_eq(got, 1);
    ck_assert_int_eq(fired, 0);
    kart_pool_bridge_free(b);
    kart_future_free(f);
    kart_loop_free(loop);
}
END_TEST

/* Every try of a wake-up fails: the next completion's wake-up delivers
 * both (before, kart_future_await's inbox sent only for the first await
 * of a batch, and a batch whose sends all failed was never delivered). */
START_TEST(future_await_every_try_fails_the_next_delivers_both)
{
    kart_loop *loop = loop_on(backends[_i]);
    if (!loop)
        KART_SKIP("no %s here", backends[_i]);
    int got = 0, fired = 0;
    kart_timer guard;
    start_guard(loop, &guard, &fired);
    kart_future *f[2];
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(kart_future_create(&f[i]), 0);
        ck_assert_int_eq(kart_future_await(f[i], loop, count_future, &got), 0);
    }
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    unsigned failed = complete_elsewhere(f[0], 3);
    if (failed == 0) {
        /* io_uring waits on the futures' words: nothing to fail. */
        ck_assert_str_eq(backends[_i], "uring");
    } else {
        ck_assert_uint_eq(failed, 3);
        ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
        ck_assert_int_eq(got, 0); /* not woken: nothing delivered yet */
    }
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, set_result, f[1]), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    while (got < 2 && !fired)
        one_turn(loop);
    ck_assert_int_eq(got, 2);
    ck_assert_int_eq(fired, 0);
    for (int i = 0; i < 2; i++)
        kart_future_free(f[i]);
    kart_loop_free(loop);
}
END_TEST

/* The same for kart_pool_bridge, which sends for every completion. */
START_TEST(pool_bridge_every_try_fails_the_next_delivers_both)
{
    kart_loop *loop = loop_on(backends[_i]);
    if (!loop)
        KART_SKIP("no %s here", backends[_i]);
    int got = 0, fired = 0;
    kart_timer guard;
    start_guard(loop, &guard, &fired);
    kart_pool_bridge *b;
    ck_assert_int_eq(kart_pool_bridge_create(loop, &b), 0);
    kart_future *f[2];
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(kart_future_create(&f[i]), 0);
        ck_assert_int_eq(kart_future_on_loop(f[i], b, count_future, &got), 0);
    }
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_uint_eq(complete_elsewhere(f[0], 3), 3);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(got, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, set_result, f[1]), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    while (got < 2 && !fired)
        one_turn(loop);
    ck_assert_int_eq(got, 2);
    ck_assert_int_eq(fired, 0);
    kart_pool_bridge_free(b);
    for (int i = 0; i < 2; i++)
        kart_future_free(f[i]);
    kart_loop_free(loop);
}
END_TEST

static void setup(void)
{
    kart__fault_reset();
}

int main(void)
{
    Suite *s = suite_create("fault_wake");
    TCase *tc = tcase_create("wake");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    int nb = (int)(sizeof(backends) / sizeof(backends[0]));
    tcase_add_loop_test(tc, async_send_write_fails_then_the_retry_wakes, 0, nb);
    tcase_add_loop_test(tc, async_send_write_eagain_still_wakes, 0, nb);
    tcase_add_loop_test(tc, user_trigger_write_fails_then_the_retry_wakes_with_both_flags, 0, nb);
    tcase_add_loop_test(tc, future_await_wakeup_write_fails, 0, nb);
    tcase_add_loop_test(tc, pool_bridge_wakeup_write_fails, 0, nb);
    tcase_add_loop_test(tc, future_await_every_try_fails_the_next_delivers_both, 0, nb);
    tcase_add_loop_test(tc, pool_bridge_every_try_fails_the_next_delivers_both, 0, nb);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

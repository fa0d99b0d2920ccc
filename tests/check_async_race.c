/* Description: kart_async_send() and kart_user_trigger() on other threads
 * racing the loop thread that stops the handle, frees it, or frees the
 * loop (kart/loop.h, kart_async_send()'s rules): a send after the stop
 * never touches the freed loop; a loop freed, from outside its run or from
 * a callback, while threads hammer its handles; callbacks that stop and
 * free one-shot handles while their senders may still be inside the send
 * (with a noise handle keeping the loop's scans busy). On every backend,
 * io_uring with emulated I/O included. The races only show as sanitizer
 * reports (ASan use-after-free, TSan data races on freed memory), so this
 * suite is meant for the SAN=address,undefined and SAN=thread builds too;
 * before the fix in core/loop/async.c the first case failed under ASan
 * every time, the others under TSan. */
#include "io_backends.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define SENDERS 4

/* Repetitions: enough for TSan to see the old races in every run, small
 * enough that the sanitizer builds stay within a few seconds a backend. */
#define FREE_ROUNDS 20
#define ONESHOT_ROUNDS 300

static void count_cb(kart_async *a)
{
    (*(int *)a->base.data)++;
}

static void user_count_cb(kart_user *u, unsigned fflags)
{
    (void)fflags;
    (*(int *)u->base.data)++;
}

/* ---- a send after the stop: no wake-up of a freed loop ---- */

START_TEST(send_after_stop_and_loop_free_does_not_touch_the_loop)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int calls = 0;
    kart_async a;
    a.base.data = &calls;
    kart_user u;
    u.base.data = &calls;
    ck_assert_int_eq(kart_async_init(loop, &a), 0);
    ck_assert_int_eq(kart_async_start(&a, count_cb), 0);
    ck_assert_int_eq(kart_user_init(loop, &u), 0);
    ck_assert_int_eq(kart_user_start(&u, user_count_cb), 0);
    ck_assert_int_eq(kart_async_send(&a), 0);
    ck_assert_int_eq(kart_user_trigger(&u, 1), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(calls, 2);
    /* Nothing pending: the next send is the one that would wake the loop. */
    kart_loop_free(loop); /* stops both, as kart_async_stop() does */
    ck_assert_int_eq(kart_handle_is_active(&a.base), 0);
    ck_assert_int_eq(kart_handle_is_active(&u.base), 0);
    ck_assert_int_eq(kart_async_send(&a), 0);
    ck_assert_int_eq(kart_user_trigger(&u, 2), 0);
    /* And a stop of a stopped handle changes nothing. */
    ck_assert_int_eq(kart_async_stop(&a), 0);
    ck_assert_int_eq(kart_user_stop(&u), 0);
    ck_assert_int_eq(calls, 2);
}
END_TEST

START_TEST(send_to_a_stopped_handle_is_kept_and_does_not_wake_the_loop)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int calls = 0;
    kart_async a;
    a.base.data = &calls;
    ck_assert_int_eq(kart_async_init(loop, &a), 0);
    ck_assert_int_eq(kart_async_start(&a, count_cb), 0);
    ck_assert_int_eq(kart_async_stop(&a), 0);
    ck_assert_int_eq(kart_async_send(&a), 0);
    /* The loop was not woken: ONCE waits for the timer, not less (a
     * wake-up would end the wait at once, with nothing run). */
    kart_timer t;
    ck_assert_int_eq(kart_timer_init(loop, &t), 0);
    kart_loop_update_time(loop);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_timer_start(&t, hb_cb, 20 * KT_MS, 0), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_ge(kart_now_ns() - t0, 15 * KT_MS);
    ck_assert_int_eq(calls, 0);
    /* The start delivers it. */
    ck_assert_int_eq(kart_async_start(&a, count_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(kart_async_stop(&a), 0);
    io_close_loop(loop);
}
END_TEST

/* ---- the loop freed while threads hammer its handles ---- */

typedef struct hammer {
    kart_async *async;
    kart_user *user;
    atomic_bool quit;
    atomic_long sends; /* all threads' sends so far */
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;
    while (!atomic_load_explicit(&h->quit, memory_order_acquire)) {
        ck_assert_int_eq(kart_async_send(h->async), 0);
        ck_assert_int_eq(kart_user_trigger(h->user, 1), 0);
        atomic_fetch_add_explicit(&h->sends, 1, memory_order_relaxed);
    }
    return NULL;
}

/* Frees the loop from inside the callback (the free waits for the run to
 * return) on the third call. */
static void free_from_cb(kart_async *a)
{
    if (++*(int *)a->base.data == 3)
        kart_loop_free(a->base.loop);
}

START_TEST(loop_freed_while_threads_send)
{
    IO_LOOP_OR_SKIP(_i, 0);
    /* The handles' memory outlives every loop and every sender. */
    kart_async *a = calloc(1, sizeof(*a));
    kart_user *u = calloc(1, sizeof(*u));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(u);
    for (int round = 0; round < FREE_ROUNDS; round++) {
        if (round > 0)
            loop = io_open_loop(backend, 0);
        bool in_cb = round % 2;
        int calls = 0, ucalls = 0;
        a->base.data = &calls;
        u->base.data = &ucalls;
        ck_assert_int_eq(kart_async_init(loop, a), 0);
        ck_assert_int_eq(kart_async_start(a, in_cb ? free_from_cb : count_cb), 0);
        ck_assert_int_eq(kart_user_init(loop, u), 0);
        ck_assert_int_eq(kart_user_start(u, user_count_cb), 0);
        hammer h = {.async = a, .user = u};
        pthread_t th[SENDERS];
        for (int k = 0; k < SENDERS; k++)
            ck_assert_int_eq(pthread_create(&th[k], NULL, hammer_main, &h), 0);
        if (in_cb) {
            /* Runs until the callback frees the loop on its third call. */
            ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0); /* all stopped */
            ck_assert_int_eq(calls, 3);
        } else {
            while (calls < 3)
                ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
            kart_loop_free(loop);
        }
        ck_assert_int_eq(kart_handle_is_active(&a->base), 0);
        ck_assert_int_eq(kart_handle_is_active(&u->base), 0);
        /* The senders go on after the free: their sends must not touch it. */
        long at_free = atomic_load(&h.sends);
        while (atomic_load(&h.sends) < at_free + 200)
            sched_yield();
        atomic_store_explicit(&h.quit, true, memory_order_release);
        for (int k = 0; k < SENDERS; k++)
            ck_assert_int_eq(pthread_join(th[k], NULL), 0);
    }
    free(a);
    free(u);
}
END_TEST

/* ---- callbacks that stop and free one-shot handles ---- */

/* One sender thread's mailbox: the loop thread puts a fresh handle in it,
 * the sender takes it and sends to it once, never touching it again. */
typedef struct oneshot {
    _Atomic(kart_async *) slot[SENDERS];
    _Atomic(kart_user *) uslot[SENDERS];
    kart_async noise;
    atomic_bool quit;
} oneshot;

typedef struct oneshot_arg {
    oneshot *o;
    int k;
} oneshot_arg;

static void *oneshot_main(void *arg)
{
    oneshot_arg *oa = arg;
    oneshot *o = oa->o;
    while (!atomic_load_explicit(&o->quit, memory_order_acquire)) {
        kart_async *a = atomic_exchange_explicit(&o->slot[oa->k], NULL, memory_order_acquire);
        if (a)
            ck_assert_int_eq(kart_async_send(a), 0);
        kart_user *u = atomic_exchange_explicit(&o->uslot[oa->k], NULL, memory_order_acquire);
        if (u)
            ck_assert_int_eq(kart_user_trigger(u, 4), 0);
        if (!a && !u)
            sched_yield();
    }
    return NULL;
}

/* Keeps the loop scanning its async handles, so that a scan can find a
 * one-shot handle pending before its own sender has woken the loop. */
static void *noise_main(void *arg)
{
    oneshot *o = arg;
    while (!atomic_load_explicit(&o->quit, memory_order_acquire))
        ck_assert_int_eq(kart_async_send(&o->noise), 0);
    return NULL;
}

static int oneshot_done;

static void oneshot_cb(kart_async *a)
{
    ck_assert_int_eq(kart_async_stop(a), 0);
    free(a);
    oneshot_done++;
}

static void oneshot_user_cb(kart_user *u, unsigned fflags)
{
    ck_assert_uint_eq(fflags, 4);
    ck_assert_int_eq(kart_user_stop(u), 0);
    free(u);
    oneshot_done++;
}

static void noise_cb(kart_async *a)
{
    (void)a;
}

START_TEST(callbacks_free_one_shot_handles_their_senders_just_used)
{
    IO_LOOP_OR_SKIP(_i, 0);
    oneshot *o = calloc(1, sizeof(*o));
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(kart_async_init(loop, &o->noise), 0);
    ck_assert_int_eq(kart_async_start(&o->noise, noise_cb), 0);
    pthread_t noise, th[SENDERS];
    oneshot_arg args[SENDERS];
    ck_assert_int_eq(pthread_create(&noise, NULL, noise_main, o), 0);
    for (int k = 0; k < SENDERS; k++) {
        args[k] = (oneshot_arg){o, k};
        ck_assert_int_eq(pthread_create(&th[k], NULL, oneshot_main, &args[k]), 0);
    }
    oneshot_done = 0;
    for (int round = 0; round < ONESHOT_ROUNDS; round++) {
        for (int k = 0; k < SENDERS; k++) {
            kart_async *a = malloc(sizeof(*a));
            kart_user *u = malloc(sizeof(*u));
            ck_assert_ptr_nonnull(a);
            ck_assert_ptr_nonnull(u);
            ck_assert_int_eq(kart_async_init(loop, a), 0);
            ck_assert_int_eq(kart_async_start(a, oneshot_cb), 0);
            ck_assert_int_eq(kart_user_init(loop, u), 0);
            ck_assert_int_eq(kart_user_start(u, oneshot_user_cb), 0);
            atomic_store_explicit(&o->slot[k], a, memory_order_release);
            atomic_store_explicit(&o->uslot[k], u, memory_order_release);
        }
        int want = (round + 1) * SENDERS * 2;
        while (oneshot_done < want)
            ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
        ck_assert_int_eq(oneshot_done, want);
        ck_assert_int_eq(kart_loop_active_handles(loop), 1); /* the noise handle */
    }
    atomic_store_explicit(&o->quit, true, memory_order_release);
    for (int k = 0; k < SENDERS; k++)
        ck_assert_int_eq(pthread_join(th[k], NULL), 0);
    ck_assert_int_eq(pthread_join(noise, NULL), 0);
    ck_assert_int_eq(kart_async_stop(&o->noise), 0);
    io_close_loop(loop);
    free(o);
}
END_TEST

int main(void)
{
    int nb = nb_io();
    kt_print_backends();
    Suite *s = suite_create("async_race");
    TCase *tc = tcase_create("stop");
    tcase_add_loop_test(tc, send_after_stop_and_loop_free_does_not_touch_the_loop, 0, nb);
    tcase_add_loop_test(tc, send_to_a_stopped_handle_is_kept_and_does_not_wake_the_loop, 0, nb);
    suite_add_tcase(s, tc);
    tc = tcase_create("race");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, loop_freed_while_threads_send, 0, nb);
    tcase_add_loop_test(tc, callbacks_free_one_shot_handles_their_senders_just_used, 0, nb);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: the event loop's async handles (kart_async, kart/loop.h):
 * sends coalescing before the callback, sends from many threads with no
 * wake-up lost, a send from a signal handler (also while the loop waits),
 * stop, a send before the start, and the errors; user events (kart_user,
 * EVFILT_USER): flags ORed and coalesced, triggers from threads, a trigger
 * kept across a stop, and the errors. In every check_loop* suite, each case that runs a
 * loop runs once per compiled-in backend (forced through KART_BACKEND,
 * skipped where it cannot start), and every error that the header
 * documents has a case, except those only a failing allocator or kernel
 * produces (-ENOMEM, -ENFILE, a backend's or a write's failure). */
#define KT_LOOP_HELPERS
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

START_TEST(async_sends_before_the_callback_coalesce)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_async a;
    a.base.data = &r;
    ck_assert_int_eq(kart_async_init(loop, &a), 0);
    ck_assert_int_eq(kart_async_start(&a, async_rec_cb), 0);
    ck_assert_int_eq(a.base.type, KART_HANDLE_ASYNC);
    ck_assert_int_eq(kart_handle_is_active(&a.base), 1);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 0);
    for (int round = 1; round <= 3; round++) {
        for (int k = 0; k < 100; k++)
            ck_assert_int_eq(kart_async_send(&a), 0);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
        ck_assert_int_eq(r.calls, round);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
        ck_assert_int_eq(r.calls, round);
    }
    ck_assert_int_eq(kart_async_stop(&a), 0);
    close_loop(loop);
}
END_TEST

#define SENDERS 4
#define SENDS 10000
static kart_async th_async;
static atomic_int th_counter;
static int th_calls, th_last;

static void *sender_main(void *arg)
{
    (void)arg;
    for (int k = 0; k < SENDS; k++) {
        ck_assert_int_eq(kart_async_send(&th_async), 0);
        /* After the send: only a later send promises that the loop sees
         * this increment. */
        atomic_fetch_add(&th_counter, 1);
    }
    return NULL;
}

static void *coordinator_main(void *arg)
{
    (void)arg;
    pthread_t th[SENDERS];
    for (int k = 0; k < SENDERS; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, sender_main, NULL), 0);
    for (int k = 0; k < SENDERS; k++)
        ck_assert_int_eq(pthread_join(th[k], NULL), 0);
    ck_assert_int_eq(kart_async_send(&th_async), 0);
    return NULL;
}

static void threads_cb(kart_async *a)
{
    th_calls++;
    th_last = atomic_load(&th_counter);
    /* Not kart_async_stop(): the final send may still be running. */
    if (th_last == SENDERS * SENDS)
        kart_loop_stop(a->base.loop);
}

START_TEST(async_sends_from_threads)
{
    LOOP_OR_SKIP(_i);
    ck_assert_int_eq(kart_async_init(loop, &th_async), 0);
    ck_assert_int_eq(kart_async_start(&th_async, threads_cb), 0);
    pthread_t coord;
    ck_assert_int_eq(pthread_create(&coord, NULL, coordinator_main, NULL), 0);
    /* Runs until the callback has seen every increment; a lost wake-up
     * would hang here. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 1);
    ck_assert_int_eq(pthread_join(coord, NULL), 0);
    ck_assert_int_eq(kart_async_stop(&th_async), 0);
    ck_assert_int_eq(th_last, SENDERS * SENDS);
    ck_assert_int_ge(th_calls, 1);
    ck_assert_int_le(th_calls, SENDERS * SENDS + 1);
    close_loop(loop);
}
END_TEST

static kart_async *sig_async;

static void send_from_handler(int signum)
{
    (void)signum;
    int saved = errno;
    kart_async_send(sig_async);
    errno = saved;
}

#ifndef KT_TSAN
static void *kill_later_main(void *arg)
{
    sleep_ns(10 * KT_MS);
    pthread_kill(*(pthread_t *)arg, SIGUSR2);
    return NULL;
}
#endif

START_TEST(async_send_from_a_signal_handler)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_async a;
    a.base.data = &r;
    ck_assert_int_eq(kart_async_init(loop, &a), 0);
    ck_assert_int_eq(kart_async_start(&a, async_rec_cb), 0);
    sig_async = &a;
    struct sigaction sa = {.sa_handler = send_from_handler};
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    set_blocked(SIGUSR2, false);
    raise(SIGUSR2);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
#ifndef KT_TSAN
    /* While the loop waits: the handler interrupts the wait, and the wait
     * must end because of the send, not because of EINTR. (ThreadSanitizer
     * defers a handler to its next intercepted call, which a wait retried
     * after EINTR through a raw system call never makes.) */
    pthread_t self = pthread_self(), th;
    ck_assert_int_eq(pthread_create(&th, NULL, kill_later_main, &self), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(r.calls, 2);
#endif
    kart_async_stop(&a);
    close_loop(loop);
}
END_TEST

static kart_async *async_pair[2];
static int async_pair_calls;

static void async_stop_both_cb(kart_async *a)
{
    (void)a;
    async_pair_calls++;
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(kart_async_stop(async_pair[k]), 0);
        free(async_pair[k]);
        async_pair[k] = NULL;
    }
}

START_TEST(async_stop)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_async a;
    a.base.data = &r;
    ck_assert_int_eq(kart_async_init(loop, &a), 0);
    ck_assert_int_eq(kart_async_start(&a, async_rec_cb), 0);
    ck_assert_int_eq(kart_async_stop(&a), 0);
    ck_assert_int_eq(kart_async_stop(&a), 0);
    ck_assert_int_eq(kart_handle_is_active(&a.base), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    /* A send after the stop, from the loop's thread, runs nothing. */
    ck_assert_int_eq(kart_async_send(&a), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 0);

    /* Two pending handles: the first to run stops and frees both. */
    for (int k = 0; k < 2; k++) {
        async_pair[k] = malloc(sizeof(kart_async));
        ck_assert_int_eq(kart_async_init(loop, async_pair[k]), 0);
        ck_assert_int_eq(kart_async_start(async_pair[k], async_stop_both_cb), 0);
    }
    ck_assert_int_eq(kart_async_send(async_pair[0]), 0);
    ck_assert_int_eq(kart_async_send(async_pair[1]), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_eq(async_pair_calls, 1);
    close_loop(loop);
}
END_TEST

static void async_never_cb(kart_async *a)
{
    (void)a;
    ck_abort_msg("async callback ran after its init failed");
}

START_TEST(async_errors)
{
    LOOP_OR_SKIP(_i);
    kart_async a;
    ck_assert_int_eq(kart_async_init(NULL, &a), -EINVAL);
    ck_assert_int_eq(kart_async_init(loop, NULL), -EINVAL);
    ck_assert_int_eq(kart_async_init(loop, &a), 0);
    ck_assert_int_eq(kart_async_start(&a, NULL), -EINVAL);
    ck_assert_int_eq(kart_async_start(NULL, async_never_cb), -EINVAL);
    ck_assert_int_eq(kart_handle_is_active(&a.base), 0);
    ck_assert_int_eq(kart_async_send(NULL), -EINVAL);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    close_loop(loop);
}
END_TEST

/* A send to a handle that is set up but not started is delivered when it
 * starts; a start of an active handle changes its callback. */
static void async_other_cb(kart_async *a)
{
    rec *r = a->base.data;
    r->value++;
}

START_TEST(async_send_before_start_is_delivered_at_start)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_async a;
    ck_assert_int_eq(kart_async_init(loop, &a), 0);
    a.base.data = &r;
    ck_assert_int_eq(kart_handle_is_active(&a.base), 0);
    ck_assert_int_eq(kart_async_send(&a), 0);
    /* Not started: the loop has nothing to run, the send waits. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(kart_async_start(&a, async_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(kart_async_start(&a, async_other_cb), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_async_send(&a), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, 1);
    ck_assert_int_eq(kart_async_stop(&a), 0);
    close_loop(loop);
}
END_TEST

/* ---- user events (EVFILT_USER) ---- */

static void user_rec_cb(kart_user *u, unsigned fflags)
{
    rec *r = u->base.data;
    r->calls++;
    r->value = (int)fflags;
}

START_TEST(user_triggers_coalesce_and_or_their_flags)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_user u;
    ck_assert_int_eq(kart_user_init(loop, &u), 0);
    u.base.data = &r;
    ck_assert_int_eq(u.base.type, KART_HANDLE_USER);
    ck_assert_int_eq(kart_user_start(&u, user_rec_cb), 0);
    ck_assert_int_eq(kart_handle_is_active(&u.base), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(kart_user_trigger(&u, 0x1), 0);
    ck_assert_int_eq(kart_user_trigger(&u, 0x4), 0);
    ck_assert_int_eq(kart_user_trigger(&u, 0x80000000u), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq((unsigned)r.value, 0x80000005u);
    /* The flags were taken: a trigger with none gives 0. */
    ck_assert_int_eq(kart_user_trigger(&u, 0), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 2);
    ck_assert_int_eq(r.value, 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 2);
    /* Stopped: a trigger is kept and delivered at the next start. */
    ck_assert_int_eq(kart_user_stop(&u), 0);
    ck_assert_int_eq(kart_user_stop(&u), 0);
    ck_assert_int_eq(kart_user_trigger(&u, 0x2), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 2);
    ck_assert_int_eq(kart_user_start(&u, user_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 3);
    ck_assert_int_eq(r.value, 0x2);
    ck_assert_int_eq(kart_user_stop(&u), 0);
    close_loop(loop);
}
END_TEST

#define TRIGGERERS 4
#define TRIGGERS 5000
static kart_user th_user;
static unsigned th_user_flags;
static int th_user_calls;

static void *trigger_main(void *arg)
{
    unsigned bit = 1u << (uintptr_t)arg;
    for (int k = 0; k < TRIGGERS; k++)
        ck_assert_int_eq(kart_user_trigger(&th_user, bit), 0);
    return NULL;
}

static void th_user_cb(kart_user *u, unsigned fflags)
{
    th_user_flags |= fflags;
    th_user_calls++;
    if (th_user_flags == (1u << TRIGGERERS) - 1)
        kart_user_stop(u);
}

/* Triggers from several threads: each one's flag reaches the loop, and the
 * loop wakes for them (the run returns only once every flag was seen). */
START_TEST(user_triggers_from_threads)
{
    LOOP_OR_SKIP(_i);
    th_user_flags = 0;
    th_user_calls = 0;
    ck_assert_int_eq(kart_user_init(loop, &th_user), 0);
    ck_assert_int_eq(kart_user_start(&th_user, th_user_cb), 0);
    pthread_t th[TRIGGERERS];
    for (uintptr_t k = 0; k < TRIGGERERS; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, trigger_main, (void *)k), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    for (int k = 0; k < TRIGGERERS; k++)
        pthread_join(th[k], NULL);
    ck_assert_uint_eq(th_user_flags, (1u << TRIGGERERS) - 1);
    ck_assert_int_ge(th_user_calls, 1);
    ck_assert_int_le(th_user_calls, TRIGGERERS * TRIGGERS);
    close_loop(loop);
}
END_TEST

static void user_never_cb(kart_user *u, unsigned fflags)
{
    (void)u;
    ck_abort_msg("user callback ran (%#x) after its start failed", fflags);
}

START_TEST(user_errors)
{
    LOOP_OR_SKIP(_i);
    kart_user u;
    ck_assert_int_eq(kart_user_init(NULL, &u), -EINVAL);
    ck_assert_int_eq(kart_user_init(loop, NULL), -EINVAL);
    ck_assert_int_eq(kart_user_init(loop, &u), 0);
    ck_assert_int_eq(kart_user_start(&u, NULL), -EINVAL);
    ck_assert_int_eq(kart_user_start(NULL, user_never_cb), -EINVAL);
    ck_assert_int_eq(kart_user_trigger(NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_user_stop(NULL), -EINVAL);
    ck_assert_int_eq(kart_handle_is_active(&u.base), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    close_loop(loop);
}
END_TEST

int main(void)
{
    kt_print_backends();
    int nb = kt_nbackends();
    Suite *s = suite_create("loop_async");

    TCase *tc = tcase_create("async");
    tcase_add_loop_test(tc, async_sends_before_the_callback_coalesce, 0, nb);
    tcase_add_loop_test(tc, async_sends_from_threads, 0, nb);
    tcase_add_loop_test(tc, async_send_from_a_signal_handler, 0, nb);
    tcase_add_loop_test(tc, async_stop, 0, nb);
    tcase_add_loop_test(tc, async_errors, 0, nb);
    tcase_add_loop_test(tc, async_send_before_start_is_delivered_at_start, 0, nb);
    suite_add_tcase(s, tc);

    tc = tcase_create("user");
    tcase_add_loop_test(tc, user_triggers_coalesce_and_or_their_flags, 0, nb);
    tcase_add_loop_test(tc, user_triggers_from_threads, 0, nb);
    tcase_add_loop_test(tc, user_errors, 0, nb);
    suite_add_tcase(s, tc);

    return kt_run(s);
}

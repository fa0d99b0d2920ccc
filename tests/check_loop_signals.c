/* Description: the event loop's signal watchers (kart_signal,
 * kart/loop.h): delivery to one or several watchers, stopping inside a
 * callback, the thread's signal mask while they are watched and after
 * (with a signalfd), a signal pending at the last stop, and the errors. In
 * every check_loop* suite, each case that runs a loop runs once per
 * compiled-in backend (forced through KART_BACKEND, skipped where it
 * cannot start), and every error that the header documents has a case,
 * except those only a failing allocator or kernel produces (-ENOMEM,
 * -ENFILE, a backend's or a write's failure). */
#define KT_LOOP_HELPERS
#include "testutil.h"

/* KART_SIGNAL_SIGNALFD: the loop hears signals through a signalfd (by
 * masks) rather than kqueue (by dispositions). */
#include "loop_private.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>

static void signal_rec_cb(kart_signal *s, int signum)
{
    rec *r = s->base.data;
    r->calls++;
    r->value = signum;
    r->active = kart_handle_is_active(&s->base);
}

static int blocked_now(int signum)
{
    sigset_t cur;
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, signum);
}

START_TEST(signal_runs_callback_with_signum)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_signal s;
    ck_assert_int_eq(kart_signal_init(loop, &s), 0);
    s.base.data = &r;
    ck_assert_int_eq(s.base.type, KART_HANDLE_SIGNAL);
    ck_assert_int_eq(kart_signal_start(&s, signal_rec_cb, SIGUSR1), 0);
    ck_assert_int_eq(s.signum, SIGUSR1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 0);
    for (int k = 1; k <= 3; k++) {
        ck_assert_int_eq(raise(SIGUSR1), 0);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
        ck_assert_int_eq(r.calls, k);
        ck_assert_int_eq(r.value, SIGUSR1);
        ck_assert_int_eq(r.active, 1);
    }
    ck_assert_int_eq(kart_signal_stop(&s), 0);
    ck_assert_int_eq(kart_signal_stop(&s), 0);
    close_loop(loop);
}
END_TEST

START_TEST(signal_two_watchers_of_one_signal_both_run)
{
    LOOP_OR_SKIP(_i);
    rec r1 = {0}, r2 = {0};
    kart_signal s1, s2;
    kart_signal_init(loop, &s1);
    kart_signal_init(loop, &s2);
    s1.base.data = &r1;
    s2.base.data = &r2;
    ck_assert_int_eq(kart_signal_start(&s1, signal_rec_cb, SIGUSR1), 0);
    ck_assert_int_eq(kart_signal_start(&s2, signal_rec_cb, SIGUSR1), 0);
    raise(SIGUSR1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_int_eq(r2.calls, 1);
    ck_assert_int_eq(r1.value, SIGUSR1);
    ck_assert_int_eq(r2.value, SIGUSR1);
    kart_signal_stop(&s1);
    raise(SIGUSR1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_int_eq(r2.calls, 2);
    kart_signal_stop(&s2);
    close_loop(loop);
}
END_TEST

START_TEST(signal_usr1_and_usr2_reach_their_own_watchers)
{
    LOOP_OR_SKIP(_i);
    rec r1 = {0}, r2 = {0};
    kart_signal s1, s2;
    kart_signal_init(loop, &s1);
    kart_signal_init(loop, &s2);
    s1.base.data = &r1;
    s2.base.data = &r2;
    ck_assert_int_eq(kart_signal_start(&s1, signal_rec_cb, SIGUSR1), 0);
    ck_assert_int_eq(kart_signal_start(&s2, signal_rec_cb, SIGUSR2), 0);
    raise(SIGUSR2);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r1.calls, 0);
    ck_assert_int_eq(r2.calls, 1);
    ck_assert_int_eq(r2.value, SIGUSR2);
    raise(SIGUSR1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_int_eq(r1.value, SIGUSR1);
    ck_assert_int_eq(r2.calls, 1);
    raise(SIGUSR1);
    raise(SIGUSR2);
    while (r1.calls < 2 || r2.calls < 2)
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r1.calls, 2);
    ck_assert_int_eq(r2.calls, 2);
    /* Restarting a watcher on another signal moves it. */
    ck_assert_int_eq(kart_signal_start(&s1, signal_rec_cb, SIGUSR2), 0);
    ck_assert_int_eq(s1.signum, SIGUSR2);
    ck_assert_int_eq(blocked_now(SIGUSR1), 0);
    raise(SIGUSR2);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r1.calls, 3);
    ck_assert_int_eq(r1.value, SIGUSR2);
    ck_assert_int_eq(r2.calls, 3);
    kart_signal_stop(&s1);
    kart_signal_stop(&s2);
    close_loop(loop);
}
END_TEST

static kart_signal *sig_all[3];
static int sig_calls;

static void signal_stop_all_cb(kart_signal *s, int signum)
{
    (void)s;
    (void)signum;
    sig_calls++;
    for (int k = 0; k < 3; k++)
        if (sig_all[k]) {
            ck_assert_int_eq(kart_signal_stop(sig_all[k]), 0);
            free(sig_all[k]);
            sig_all[k] = NULL;
        }
}

START_TEST(signal_stop_inside_callback)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_signal s;
    kart_signal_init(loop, &s);
    s.base.data = &r;
    /* Blocked beforehand, so that a signal left after the last stop stays
     * pending instead of ending the test. */
    set_blocked(SIGUSR1, true);
    ck_assert_int_eq(kart_signal_start(&s, signal_rec_cb, SIGUSR1), 0);
    /* The first watcher to run stops and frees all three, itself too: the
     * other two never run. */
    for (int k = 0; k < 3; k++) {
        sig_all[k] = malloc(sizeof(kart_signal));
        kart_signal_init(loop, sig_all[k]);
        ck_assert_int_eq(kart_signal_start(sig_all[k], signal_stop_all_cb, SIGUSR1), 0);
    }
    raise(SIGUSR1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(sig_calls, 1);
    ck_assert_int_eq(r.calls, 1); /* the bystander still ran */
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    kart_signal_stop(&s);
    close_loop(loop);
}
END_TEST

#ifdef KART_SIGNAL_SIGNALFD
START_TEST(signal_mask_restored_after_last_stop)
{
    LOOP_OR_SKIP(_i);
    sigset_t before;
    kart_signal s1, s2;
    kart_signal_init(loop, &s1);
    kart_signal_init(loop, &s2);

    /* Not blocked beforehand: blocked while watched, unblocked after. */
    set_blocked(SIGUSR1, false);
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    ck_assert_int_eq(kart_signal_start(&s1, signal_rec_cb, SIGUSR1), 0);
    ck_assert_int_eq(blocked_now(SIGUSR1), 1);
    ck_assert_int_eq(kart_signal_start(&s2, signal_rec_cb, SIGUSR1), 0);
    ck_assert_int_eq(kart_signal_stop(&s1), 0);
    ck_assert_int_eq(blocked_now(SIGUSR1), 1);
    ck_assert_int_eq(kart_signal_stop(&s2), 0);
    assert_same_mask(&before);

    /* Blocked beforehand: still blocked after. */
    set_blocked(SIGUSR2, true);
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    ck_assert_int_eq(kart_signal_start(&s1, signal_rec_cb, SIGUSR2), 0);
    ck_assert_int_eq(kart_signal_stop(&s1), 0);
    assert_same_mask(&before);
    ck_assert_int_eq(blocked_now(SIGUSR2), 1);

    /* Both at once, and a signal number that is blocked again later. */
    set_blocked(SIGUSR1, false);
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    ck_assert_int_eq(kart_signal_start(&s1, signal_rec_cb, SIGUSR1), 0);
    ck_assert_int_eq(kart_signal_start(&s2, signal_rec_cb, SIGUSR2), 0);
    ck_assert_int_eq(kart_signal_stop(&s2), 0);
    ck_assert_int_eq(kart_signal_stop(&s1), 0);
    assert_same_mask(&before);
    close_loop(loop);
}
END_TEST
#endif

START_TEST(signal_pending_at_last_stop_is_not_delivered)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_signal s;
    kart_signal_init(loop, &s);
    s.base.data = &r;
    set_blocked(SIGUSR1, false);
    /* Arrives while watched but before the loop reads it. Once the watcher
     * is stopped, its signal must not fall through to the default action,
     * which for SIGUSR1 ends the process. */
    ck_assert_int_eq(kart_signal_start(&s, signal_rec_cb, SIGUSR1), 0);
    raise(SIGUSR1);
    ck_assert_int_eq(kart_signal_stop(&s), 0);
    ck_assert_int_eq(blocked_now(SIGUSR1), 0);
    sigset_t pending;
    sigpending(&pending);
    ck_assert_int_eq(sigismember(&pending, SIGUSR1), 0);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 0);
    close_loop(loop);
}
END_TEST

#ifdef KART_SIGNAL_SIGNALFD
START_TEST(signal_two_loops_on_one_thread_share_its_mask)
{
    LOOP_OR_SKIP(_i);
    kart_loop *other = open_loop(backend);
    rec ra = {0}, rb = {0};
    kart_signal a, b;
    kart_signal_init(loop, &a);
    kart_signal_init(other, &b);
    a.base.data = &ra;
    b.base.data = &rb;
    set_blocked(SIGUSR1, false);
    /* Whichever loop stops first, the signal stays blocked (and so reaches
     * the other loop's signalfd) until the last watcher of the thread
     * stops. */
    for (int round = 0; round < 2; round++) {
        kart_signal *first = round ? &b : &a, *second = round ? &a : &b;
        rec *r2 = round ? &ra : &rb;
        ck_assert_int_eq(kart_signal_start(first, signal_rec_cb, SIGUSR1), 0);
        ck_assert_int_eq(kart_signal_start(second, signal_rec_cb, SIGUSR1), 0);
        ck_assert_int_eq(kart_signal_stop(first), 0);
        ck_assert_int_eq(blocked_now(SIGUSR1), 1);
        raise(SIGUSR1);
        ck_assert_int_eq(kart_loop_run(second->base.loop, KART_RUN_ONCE), 1);
        ck_assert_int_eq(r2->calls, 1);
        ck_assert_int_eq(r2->value, SIGUSR1);
        ck_assert_int_eq(kart_signal_stop(second), 0);
        ck_assert_int_eq(blocked_now(SIGUSR1), 0);
    }
    close_loop(other);
    close_loop(loop);
}
END_TEST
#endif

START_TEST(signal_errors)
{
    LOOP_OR_SKIP(_i);
    kart_signal s;
    ck_assert_int_eq(kart_signal_init(NULL, &s), -EINVAL);
    ck_assert_int_eq(kart_signal_init(loop, NULL), -EINVAL);
    ck_assert_int_eq(kart_signal_init(loop, &s), 0);
    sigset_t before;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    ck_assert_int_eq(kart_signal_start(NULL, signal_never_cb, SIGUSR1), -EINVAL);
    ck_assert_int_eq(kart_signal_start(&s, NULL, SIGUSR1), -EINVAL);
    static const int bad[] = {SIGKILL, SIGSTOP, 0, -1, _NSIG, 100000, INT_MIN};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        ck_assert_int_eq(kart_signal_start(&s, signal_never_cb, bad[k]), -EINVAL);
        ck_assert_int_eq(kart_handle_is_active(&s.base), 0);
    }
    /* The C library keeps the numbers below SIGRTMIN for itself (glibc's
     * 32 and 33) and will not block them, so a signalfd cannot get them. */
    for (int sig = 32; sig < SIGRTMIN; sig++) {
        ck_assert_int_eq(kart_signal_start(&s, signal_never_cb, sig), -EINVAL);
        ck_assert_int_eq(kart_handle_is_active(&s.base), 0);
    }
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    ck_assert_int_eq(kart_signal_stop(&s), 0);
    assert_same_mask(&before);
    /* The first and last real-time signals are fine. */
    rec r = {0};
    s.base.data = &r;
    ck_assert_int_eq(kart_signal_start(&s, signal_rec_cb, SIGRTMIN), 0);
    raise(SIGRTMIN);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.value, SIGRTMIN);
    ck_assert_int_eq(kart_signal_start(&s, signal_rec_cb, SIGRTMAX), 0);
    raise(SIGRTMAX);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.value, SIGRTMAX);
    ck_assert_int_eq(r.calls, 2);
    ck_assert_int_eq(kart_signal_stop(&s), 0);
    assert_same_mask(&before);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    close_loop(loop);
}
END_TEST

int main(void)
{
    kt_print_backends();
    int nb = kt_nbackends();
    Suite *s = suite_create("loop_signals");

    TCase *tc = tcase_create("signal");
    tcase_add_loop_test(tc, signal_runs_callback_with_signum, 0, nb);
    tcase_add_loop_test(tc, signal_two_watchers_of_one_signal_both_run, 0, nb);
    tcase_add_loop_test(tc, signal_usr1_and_usr2_reach_their_own_watchers, 0, nb);
    tcase_add_loop_test(tc, signal_stop_inside_callback, 0, nb);
#ifdef KART_SIGNAL_SIGNALFD /* the kqueue source changes dispositions, not masks */
    tcase_add_loop_test(tc, signal_mask_restored_after_last_stop, 0, nb);
#endif
    tcase_add_loop_test(tc, signal_pending_at_last_stop_is_not_delivered, 0, nb);
#ifdef KART_SIGNAL_SIGNALFD /* the kqueue source changes dispositions, not masks */
    tcase_add_loop_test(tc, signal_two_loops_on_one_thread_share_its_mask, 0, nb);
#endif
    tcase_add_loop_test(tc, signal_errors, 0, nb);
    suite_add_tcase(s, tc);

    return kt_run(s);
}

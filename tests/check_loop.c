/* Description: the event loop (kart/loop.h) itself: creating and freeing
 * loops, the run modes (DEFAULT, ONCE, NOWAIT), running in a fork child or
 * inside a callback, stop, handle references and the cached clock. Its
 * handles have suites of their own: check_loop_io (fd watchers),
 * check_loop_timers, check_loop_signals, check_loop_children (child
 * processes) and check_loop_async. In every check_loop* suite, each case
 * that runs a loop runs once per compiled-in backend (forced through
 * KART_BACKEND, skipped where it cannot start), and every error that the
 * header documents has a case, except those only a failing allocator or
 * kernel produces (-ENOMEM, -ENFILE, a backend's or a write's failure). */
#define KT_LOOP_HELPERS
#include "testutil.h"

#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* A thread that writes one byte to fd after a delay, unless cancelled
 * first. It lets a test fail by assertion instead of hanging when a loop
 * blocks where it must not. */
typedef struct delayed {
    int fd;
    int delay_ms;
    int cancel[2];
    pthread_t thread;
} delayed;

static void *delayed_main(void *arg)
{
    delayed *d = arg;
    struct pollfd p = {.fd = d->cancel[0], .events = POLLIN};
    if (poll(&p, 1, d->delay_ms) == 0)
        ck_assert_int_eq(write(d->fd, "d", 1), 1);
    return NULL;
}

static void delayed_start(delayed *d, int fd, int delay_ms)
{
    d->fd = fd;
    d->delay_ms = delay_ms;
    kt_pipe(d->cancel);
    ck_assert_int_eq(pthread_create(&d->thread, NULL, delayed_main, d), 0);
}

static void delayed_finish(delayed *d)
{
    ck_assert_int_eq(write(d->cancel[1], "c", 1), 1);
    ck_assert_int_eq(pthread_join(d->thread, NULL), 0);
    close2(d->cancel);
}

START_TEST(create_rejects_bad_arguments)
{
    kart_loop *loop = (kart_loop *)&loop;
    ck_assert_int_eq(kart_loop_create(NULL, NULL), -EINVAL);
    kart_loop_options o = {.selector = {.backend = "no-such-backend"}};
    ck_assert_int_eq(kart_loop_create(&loop, &o), KART_EUNKNOWNBACKEND);
    ck_assert_ptr_null(loop);
    o.selector.backend = "";
    ck_assert_int_eq(kart_loop_create(&loop, &o), -EINVAL);
    setenv("KART_BACKEND", "bogus", 1);
    ck_assert_int_eq(kart_loop_create(&loop, NULL), KART_EUNKNOWNBACKEND);
    kart_loop_free(NULL);
}
END_TEST

START_TEST(create_runs_the_backend_asked_for)
{
    KT_BACKEND_OR_SKIP(_i);
    unsetenv("KART_BACKEND");
    kart_loop_options o = {.selector = {.backend = backend}};
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, &o), 0);
    ck_assert_str_eq(kart_loop_backend_name(loop), backend);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    close_loop(loop);
}
END_TEST

START_TEST(create_without_free_fds_is_emfile)
{
    KT_BACKEND_OR_SKIP(_i);
    struct rlimit old, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(lowest, 0);
    close(lowest);
    /* No new descriptor fits under the limit. */
    rl = old;
    rl.rlim_cur = (rlim_t)lowest;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    kart_loop *loop = (kart_loop *)&loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), -EMFILE);
    ck_assert_ptr_null(loop);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    loop = open_loop(backend);
    close_loop(loop);
}
END_TEST

static void signal_rec_cb(kart_signal *s, int signum)
{
    rec *r = s->base.data;
    r->calls++;
    r->value = signum;
}

static void user_rec_cb(kart_user *u, unsigned fflags)
{
    rec *r = u->base.data;
    r->calls++;
    r->value = (int)fflags;
}

/* kart_loop_free() stops whatever is still active, without callbacks, and
 * leaves every handle inactive (rule 7: teardown always releases). */
START_TEST(free_stops_active_handles)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_timer t;
    ck_assert_int_eq(kart_timer_init(loop, &t), 0);
    t.base.data = &r;
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, KT_MS, 0), 0);
    int p[2];
    kt_pipe(p);
    ck_assert_int_eq(write(p[1], "x", 1), 1); /* ready: its callback must not run */
    kart_watch io;
    ck_assert_int_eq(kart_watch_init(loop, &io, p[0]), 0);
    io.base.data = &r;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
    kart_handle_unref(&io.base);
    kart_async a;
    ck_assert_int_eq(kart_async_init(loop, &a), 0);
    a.base.data = &r;
    ck_assert_int_eq(kart_async_start(&a, async_rec_cb), 0);
    ck_assert_int_eq(kart_async_send(&a), 0);
    kart_signal s;
    ck_assert_int_eq(kart_signal_init(loop, &s), 0);
    s.base.data = &r;
    sigset_t before, after;
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    ck_assert_int_eq(kart_signal_start(&s, signal_rec_cb, SIGUSR2), 0);
    kart_user u;
    ck_assert_int_eq(kart_user_init(loop, &u), 0);
    u.base.data = &r;
    ck_assert_int_eq(kart_user_start(&u, user_rec_cb), 0);
    ck_assert_int_eq(kart_user_trigger(&u, 1), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 5);
    kart_loop_free(loop);
    ck_assert_int_eq(r.calls, 0);
    ck_assert(!kart_handle_is_active(&t.base));
    ck_assert(!kart_handle_is_active(&io.base));
    ck_assert(!kart_handle_is_active(&a.base));
    ck_assert(!kart_handle_is_active(&s.base));
    ck_assert(!kart_handle_is_active(&u.base));
    /* The thread's signal mask is as it was before the watcher. */
    pthread_sigmask(SIG_SETMASK, NULL, &after);
    ck_assert_int_eq(sigismember(&after, SIGUSR2), sigismember(&before, SIGUSR2));
    /* The fd is the caller's, still open and watchable by a new loop. */
    loop = open_loop(backend);
    ck_assert_int_eq(kart_watch_init(loop, &io, p[0]), 0);
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(kart_watch_stop(&io), 0);
    close_loop(loop);
    close2(p);
    kart_loop_free(NULL);
}
END_TEST

START_TEST(run_rejects_bad_mode_and_null)
{
    LOOP_OR_SKIP(_i);
    ck_assert_int_eq(kart_loop_run(loop, (kart_run_mode)3), -EINVAL);
    ck_assert_int_eq(kart_loop_run(loop, (kart_run_mode)-1), -EINVAL);
    ck_assert_int_eq(kart_loop_run(NULL, KART_RUN_DEFAULT), -EINVAL);
    ck_assert_int_eq(kart_loop_run(NULL, KART_RUN_NOWAIT), -EINVAL);
    /* Still usable afterwards. */
    rec r = {0};
    kart_timer t;
    kart_timer_init(loop, &t);
    t.base.data = &r;
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, 0, 0), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    close_loop(loop);
}
END_TEST

/* A fork child must not run its parent's loop (on io_uring it would take
 * the parent's completions from the shared ring); it makes its own. */
START_TEST(run_in_a_fork_child_is_echild)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_timer t;
    kart_timer_init(loop, &t);
    t.base.data = &r;
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, 0, 0), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        int code = 0;
        if (kart_loop_run(loop, KART_RUN_NOWAIT) != -ECHILD)
            code |= 1;
        kart_loop *own;
        kart_loop_options o = {.selector = {.backend = backend}};
        if (kart_loop_create(&own, &o) != 0)
            _exit(code | 2);
        rec cr = {0};
        kart_timer ct;
        kart_timer_init(own, &ct);
        ct.base.data = &cr;
        kart_timer_start(&ct, timer_rec_cb, 0, 0);
        if (kart_loop_run(own, KART_RUN_DEFAULT) != 0 || cr.calls != 1)
            code |= 4;
        kart_loop_free(own);
        _exit(code);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    /* The parent's loop is untouched. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    close_loop(loop);
}
END_TEST

/* A fork child that frees its parent's loop (handles active) closes only
 * its own copies: the parent's registrations stay (epoll's set and the
 * io_uring ring are shared with the child). */
START_TEST(free_in_a_fork_child_leaves_the_parent_s_loop)
{
    LOOP_OR_SKIP(_i);
    rec r = {0}, tr = {0};
    int p[2];
    kt_pipe(p);
    kart_watch w;
    ck_assert_int_eq(kart_watch_init(loop, &w, p[0]), 0);
    w.base.data = &r;
    ck_assert_int_eq(kart_watch_start(&w, KART_READABLE, io_rec_cb), 0);
    kart_timer t;
    kart_timer_init(loop, &t);
    t.base.data = &tr;
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, 3600 * 1000 * KT_MS, 0), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_loop_free(loop);
        _exit(kart_handle_is_active(&w.base) ? 1 : 0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    ck_assert_int_eq(kart_handle_is_active(&w.base), 1);
    kt_write(p[1], "x");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(kart_watch_stop(&w), 0);
    ck_assert_int_eq(kart_timer_stop(&t), 0);
    close_loop(loop);
    close2(p);
}
END_TEST

static int nested_results[4];

static void nested_run_cb(kart_timer *t)
{
    kart_loop *loop = t->base.loop;
    nested_results[0] = kart_loop_run(loop, KART_RUN_DEFAULT);
    nested_results[1] = kart_loop_run(loop, KART_RUN_ONCE);
    nested_results[2] = kart_loop_run(loop, KART_RUN_NOWAIT);
}

START_TEST(run_inside_a_callback_is_ebusy)
{
    LOOP_OR_SKIP(_i);
    kart_timer t;
    kart_timer_init(loop, &t);
    ck_assert_int_eq(kart_timer_start(&t, nested_run_cb, 0, 0), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(nested_results[k], -EBUSY);
    close_loop(loop);
}
END_TEST

static void free_from_cb(kart_timer *t)
{
    kart_loop_free(t->base.loop);
}

/* A free from inside a callback waits for kart_loop_run() to return: the
 * run stops after this iteration (a repeating timer would keep it going)
 * and frees the loop on its way out (ASan: no leak, no use after free). */
START_TEST(free_inside_a_callback_frees_when_run_returns)
{
    LOOP_OR_SKIP(_i);
    kart_timer t, forever;
    rec r = {0};
    kart_timer_init(loop, &t);
    kart_timer_init(loop, &forever);
    forever.base.data = &r;
    ck_assert_int_eq(kart_timer_start(&forever, timer_rec_cb, KT_MS, KT_MS), 0);
    ck_assert_int_eq(kart_timer_start(&t, free_from_cb, 0, 0), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert(!kart_handle_is_active(&forever.base));
}
END_TEST

START_TEST(default_without_handles_returns_at_once)
{
    LOOP_OR_SKIP(_i);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    /* Initialized but never started handles are not active. */
    kart_timer t;
    kart_watch io;
    kart_signal s;
    kart_child c;
    kart_timer_init(loop, &t);
    kart_watch_init(loop, &io, 0);
    kart_signal_init(loop, &s);
    kart_child_init(loop, &c);
    ck_assert_int_eq(kart_handle_is_active(&t.base), 0);
    ck_assert_int_eq(kart_handle_is_active(&io.base), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    close_loop(loop);
}
END_TEST

START_TEST(nowait_never_blocks)
{
    LOOP_OR_SKIP(_i);
    int p[2];
    kt_pipe(p);
    rec ri = {0}, rt = {0};
    kart_watch io;
    kart_timer t;
    kart_watch_init(loop, &io, p[0]);
    io.base.data = &ri;
    kart_timer_init(loop, &t);
    t.base.data = &rt;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, 3600 * INT64_C(1000000000), 0), 0);
    /* If NOWAIT blocked, the delayed write would end the wait and the io
     * callback would run. */
    delayed d;
    delayed_start(&d, p[1], 2000);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    delayed_finish(&d);
    ck_assert_int_eq(ri.calls, 0);
    ck_assert_int_eq(rt.calls, 0);
    kart_watch_stop(&io);
    kart_timer_stop(&t);
    close_loop(loop);
    close2(p);
}
END_TEST

START_TEST(once_blocks_until_an_event)
{
    LOOP_OR_SKIP(_i);
    int p[2];
    kt_pipe(p);
    rec ri = {0}, rt = {0};
    kart_watch io;
    kart_watch_init(loop, &io, p[0]);
    io.base.data = &ri;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);

    /* An fd that becomes readable later. */
    delayed d;
    delayed_start(&d, p[1], 20);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    delayed_finish(&d);
    ck_assert_int_eq(ri.calls, 1);
    ck_assert_uint_eq(ri.events, KART_READABLE);
    ck_assert_int_eq(kt_drain(p[0]), 1);

    /* A timer, while the fd stays quiet: ONCE returns when it fires, not
     * before its deadline. */
    kart_timer t;
    kart_timer_init(loop, &t);
    t.base.data = &rt;
    int64_t start = kart_now_ns();
    kart_loop_update_time(loop);
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, 20 * KT_MS, 0), 0);
    while (rt.calls == 0)
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(rt.calls, 1);
    ck_assert_int_ge(kart_now_ns() - start, 20 * KT_MS);
    ck_assert_int_eq(ri.calls, 1);
    kart_watch_stop(&io);
    close_loop(loop);
    close2(p);
}
END_TEST

START_TEST(once_returns_after_a_timer_that_was_already_due)
{
    LOOP_OR_SKIP(_i);
    int p[2];
    kt_pipe(p);
    rec ri = {0}, rt = {0};
    kart_watch io;
    kart_timer t;
    kart_watch_init(loop, &io, p[0]);
    io.base.data = &ri;
    kart_timer_init(loop, &t);
    t.base.data = &rt;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
    for (int k = 1; k <= 3; k++) {
        ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, 0, 0), 0);
        /* The timer is due when ONCE starts: firing it is the iteration's
         * event, so ONCE must not go on to wait for the quiet fd. Should
         * it wait, the delayed write ends the wait and the io callback
         * runs. */
        delayed d;
        delayed_start(&d, p[1], 1000);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
        delayed_finish(&d);
        ck_assert_int_eq(rt.calls, k);
        ck_assert_int_eq(ri.calls, 0);
    }
    kart_watch_stop(&io);
    close_loop(loop);
    close2(p);
}
END_TEST

START_TEST(unreferenced_handles_do_not_keep_default_running)
{
    LOOP_OR_SKIP(_i);
    int p[2];
    kt_pipe(p);
    rec ri = {0}, rt = {0}, ru = {0};
    kart_watch io;
    kart_timer t, u;
    kart_watch_init(loop, &io, p[0]);
    io.base.data = &ri;
    kart_timer_init(loop, &t);
    t.base.data = &rt;
    kart_timer_init(loop, &u);
    u.base.data = &ru;

    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
    kart_handle_unref(&io.base);
    kart_handle_unref(&io.base); /* idempotent */
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, KT_MS, 0), 0);
    /* Runs while the referenced timer is active, then returns. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(rt.calls, 1);
    ck_assert_int_eq(kart_handle_is_active(&io.base), 1);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);

    /* Referenced again, it counts. */
    kart_handle_ref(&io.base);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    kart_handle_ref(&io.base);
    kart_handle_unref(&io.base);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);

    /* Unreferenced before it starts: a far timer that DEFAULT ignores. */
    kart_handle_unref(&u.base);
    ck_assert_int_eq(kart_timer_start(&u, timer_rec_cb, 3600 * INT64_C(1000000000), 0), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 2);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(ru.calls, 0);
    ck_assert_int_eq(ri.calls, 0);
    kart_watch_stop(&io);
    kart_timer_stop(&u);
    close_loop(loop);
    close2(p);
}
END_TEST

static void stop_at_three_cb(kart_timer *t)
{
    rec *r = t->base.data;
    if (++r->calls == 3)
        kart_loop_stop(t->base.loop);
}

START_TEST(stop_from_a_callback_returns_1_with_handles_active)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_timer t;
    kart_timer_init(loop, &t);
    t.base.data = &r;
    ck_assert_int_eq(kart_timer_start(&t, stop_at_three_cb, 0, KT_MS), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 1);
    ck_assert_int_eq(r.calls, 3);
    ck_assert_int_eq(kart_handle_is_active(&t.base), 1);
    /* The request does not outlive that run. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 4);
    ck_assert_int_eq(kart_timer_stop(&t), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    close_loop(loop);
}
END_TEST

START_TEST(now_is_cached_and_monotonic)
{
    LOOP_OR_SKIP(_i);
    int64_t a = kart_loop_now(loop);
    ck_assert_int_gt(a, 0);
    ck_assert_int_le(a, kart_now_ns());
    sleep_ns(2 * KT_MS);
    ck_assert_int_eq(kart_loop_now(loop), a);
    kart_loop_update_time(loop);
    int64_t b = kart_loop_now(loop);
    ck_assert_int_ge(b, a + 2 * KT_MS);
    ck_assert_int_le(b, kart_now_ns());
    sleep_ns(KT_MS);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    int64_t c = kart_loop_now(loop);
    ck_assert_int_ge(c, b + KT_MS);
    for (int k = 0; k < 100; k++) {
        kart_loop_update_time(loop);
        ck_assert_int_ge(kart_loop_now(loop), c);
        c = kart_loop_now(loop);
    }
    close_loop(loop);
}
END_TEST

int main(void)
{
    kt_print_backends();
    int nb = kt_nbackends();
    Suite *s = suite_create("loop");

    TCase *tc = tcase_create("run");
    tcase_add_test(tc, create_rejects_bad_arguments);
    tcase_add_loop_test(tc, run_in_a_fork_child_is_echild, 0, nb);
    tcase_add_loop_test(tc, create_runs_the_backend_asked_for, 0, nb);
    tcase_add_loop_test(tc, create_without_free_fds_is_emfile, 0, nb);
    tcase_add_loop_test(tc, free_stops_active_handles, 0, nb);
    tcase_add_loop_test(tc, free_inside_a_callback_frees_when_run_returns, 0, nb);
    tcase_add_loop_test(tc, free_in_a_fork_child_leaves_the_parent_s_loop, 0, nb);
    tcase_add_loop_test(tc, run_rejects_bad_mode_and_null, 0, nb);
    tcase_add_loop_test(tc, run_inside_a_callback_is_ebusy, 0, nb);
    tcase_add_loop_test(tc, default_without_handles_returns_at_once, 0, nb);
    tcase_add_loop_test(tc, nowait_never_blocks, 0, nb);
    tcase_add_loop_test(tc, once_blocks_until_an_event, 0, nb);
    tcase_add_loop_test(tc, once_returns_after_a_timer_that_was_already_due, 0, nb);
    tcase_add_loop_test(tc, unreferenced_handles_do_not_keep_default_running, 0, nb);
    tcase_add_loop_test(tc, stop_from_a_callback_returns_1_with_handles_active, 0, nb);
    tcase_add_loop_test(tc, now_is_cached_and_monotonic, 0, nb);
    suite_add_tcase(s, tc);

    return kt_run(s);
}

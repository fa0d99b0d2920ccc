/* Description: the event loop (kart/loop.h): run modes, fd watchers,
 * timers, signals, child processes and async handles. Every case that
 * runs a loop runs once per compiled-in backend (forced through
 * KART_BACKEND, skipped where it cannot start), and every error that the
 * header documents has a case, except those only a failing allocator or
 * kernel produces (-ENOMEM, -ENFILE, a backend's or a write's failure). */
#include "testutil.h"

#include "fault.h"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

/* ---- helpers ---- */

/* Forces the child watchers' SIGCHLD path, as on kernels without
 * pidfd_open: every pidfd_open fails with ENOSYS (core/base/fault.h). */
static bool no_pidfd;

static void set_no_pidfd(bool on)
{
    no_pidfd = on;
    if (on)
        ck_assert_int_eq(kart__fault_fail(KART__SYS_pidfd_open, 1, KART__FAULT_ALWAYS, ENOSYS), 0);
    else
        ck_assert_int_eq(kart__fault_arm(KART__SYS_pidfd_open, NULL), 0);
}

static kart_loop *open_loop(const char *backend)
{
    kart_loop *loop = NULL;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    ck_assert_ptr_nonnull(loop);
    ck_assert_str_eq(kart_loop_backend_name(loop), backend);
    return loop;
}

/* Every loop case starts with this: the backend for _i, or a skip. */
#define LOOP_OR_SKIP(i)                                                        \
    KT_BACKEND_OR_SKIP(i);                                                     \
    kart_loop *loop = open_loop(backend)

static void close_loop(kart_loop *loop)
{
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    ck_assert_int_eq(kart_loop_free(loop), 0);
}

/* Capability bits of the backend KART_BACKEND names. */
static unsigned backend_caps(void)
{
    kart_selector *s;
    ck_assert_int_eq(kart_selector_create(&s, NULL), 0);
    unsigned caps = kart_selector_caps(s);
    kart_selector_free(s);
    return caps;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void close2(int p[2])
{
    close(p[0]);
    close(p[1]);
}

/* What a callback saw; hung from a handle's data. */
typedef struct rec {
    int calls;
    uint32_t events; /* io: the last events */
    int value;       /* signal: signum; child: status */
    int active;      /* kart_handle_is_active() inside the callback */
    int64_t when;    /* kart_loop_now() inside the callback */
} rec;

static void io_rec_cb(kart_io *io, uint32_t events)
{
    rec *r = io->base.data;
    r->calls++;
    r->events = events;
    r->active = kart_handle_is_active(&io->base);
    r->when = kart_loop_now(io->base.loop);
}

static void timer_rec_cb(kart_timer *t)
{
    rec *r = t->base.data;
    r->calls++;
    r->active = kart_handle_is_active(&t->base);
    r->when = kart_loop_now(t->base.loop);
}

static void signal_rec_cb(kart_signal *s, int signum)
{
    rec *r = s->base.data;
    r->calls++;
    r->value = signum;
    r->active = kart_handle_is_active(&s->base);
}

static void child_rec_cb(kart_child *c, int status)
{
    rec *r = c->base.data;
    r->calls++;
    r->value = status;
    r->active = kart_handle_is_active(&c->base);
}

static void async_rec_cb(kart_async *a)
{
    rec *r = a->base.data;
    r->calls++;
}

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

/* ---- creating, freeing, running ---- */

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
    ck_assert_int_eq(kart_loop_free(NULL), 0);
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

START_TEST(free_with_active_handles_is_ebusy)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_timer t;
    ck_assert_int_eq(kart_timer_init(loop, &t), 0);
    t.base.data = &r;
    ck_assert_int_eq(kart_timer_start(&t, timer_rec_cb, KT_MS, 0), 0);
    ck_assert_int_eq(kart_loop_free(loop), -EBUSY);
    /* The loop is intact: the timer still fires. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);

    /* An unreferenced active handle counts too. */
    int p[2];
    kt_pipe(p);
    kart_io io;
    ck_assert_int_eq(kart_io_init(loop, &io, p[0]), 0);
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
    kart_handle_unref(&io.base);
    ck_assert_int_eq(kart_loop_free(loop), -EBUSY);
    kart_async a;
    ck_assert_int_eq(kart_async_init(loop, &a, async_rec_cb), 0);
    ck_assert_int_eq(kart_io_stop(&io), 0);
    ck_assert_int_eq(kart_loop_free(loop), -EBUSY);
    ck_assert_int_eq(kart_async_stop(&a), 0);
    close_loop(loop);
    close2(p);
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
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
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
        if (kart_loop_free(own) != 0)
            code |= 8;
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

static int nested_results[4];

static void nested_run_cb(kart_timer *t)
{
    kart_loop *loop = t->base.loop;
    nested_results[0] = kart_loop_run(loop, KART_RUN_DEFAULT);
    nested_results[1] = kart_loop_run(loop, KART_RUN_ONCE);
    nested_results[2] = kart_loop_run(loop, KART_RUN_NOWAIT);
    /* No handle is active here (a one-shot timer is stopped before its
     * callback), but the loop is running. */
    nested_results[3] = kart_loop_free(loop);
}

START_TEST(run_inside_a_callback_is_ebusy)
{
    LOOP_OR_SKIP(_i);
    kart_timer t;
    kart_timer_init(loop, &t);
    ck_assert_int_eq(kart_timer_start(&t, nested_run_cb, 0, 0), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(nested_results[k], -EBUSY);
    close_loop(loop);
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
    kart_io io;
    kart_signal s;
    kart_child c;
    kart_timer_init(loop, &t);
    kart_io_init(loop, &io, 0);
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
    kart_io io;
    kart_timer t;
    kart_io_init(loop, &io, p[0]);
    io.base.data = &ri;
    kart_timer_init(loop, &t);
    t.base.data = &rt;
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
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
    kart_io_stop(&io);
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
    kart_io io;
    kart_io_init(loop, &io, p[0]);
    io.base.data = &ri;
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);

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
    kart_io_stop(&io);
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
    kart_io io;
    kart_timer t;
    kart_io_init(loop, &io, p[0]);
    io.base.data = &ri;
    kart_timer_init(loop, &t);
    t.base.data = &rt;
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
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
    kart_io_stop(&io);
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
    kart_io io;
    kart_timer t, u;
    kart_io_init(loop, &io, p[0]);
    io.base.data = &ri;
    kart_timer_init(loop, &t);
    t.base.data = &rt;
    kart_timer_init(loop, &u);
    u.base.data = &ru;

    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
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
    kart_io_stop(&io);
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

/* ---- fd watchers ---- */

START_TEST(io_reports_readable_and_writable)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_io io;
    ck_assert_int_eq(kart_io_init(loop, &io, sv[0]), 0);
    io.base.data = &r;
    ck_assert_int_eq(io.fd, sv[0]);
    ck_assert_ptr_eq(io.base.loop, loop);
    ck_assert_int_eq(io.base.type, KART_HANDLE_IO);

    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_handle_is_active(&io.base), 1);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 0);
    kt_write(sv[1], "ping");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.events, KART_READABLE);
    ck_assert_int_eq(r.active, 1);
    /* Level-triggered: reported again while unread. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 2);

    ck_assert_int_eq(kart_io_start(&io, KART_READABLE | KART_WRITABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 3);
    ck_assert_uint_eq(r.events, KART_READABLE | KART_WRITABLE);
    ck_assert_int_eq(kt_drain(sv[0]), 4);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 4);
    ck_assert_uint_eq(r.events, KART_WRITABLE);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_io_stop(&io), 0);
    ck_assert_int_eq(kart_io_stop(&io), 0);
    ck_assert_int_eq(kart_handle_is_active(&io.base), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 4);
    close_loop(loop);
    close2(sv);
}
END_TEST

START_TEST(io_init_errors)
{
    LOOP_OR_SKIP(_i);
    kart_io io;
    ck_assert_int_eq(kart_io_init(NULL, &io, 0), -EINVAL);
    ck_assert_int_eq(kart_io_init(loop, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_io_init(loop, &io, -1), -EBADF);
    ck_assert_int_eq(kart_io_init(loop, &io, INT_MIN), -EBADF);
    close_loop(loop);
}
END_TEST

static void io_never_cb(kart_io *io, uint32_t events)
{
    (void)io;
    ck_abort_msg("io callback ran (events %#x) after its start failed", events);
}

/* Asserts that a failed kart_io_start left the watcher inactive. */
static void assert_io_start_fails(kart_io *io, uint32_t events, kart_io_cb cb, int err)
{
    int before = kart_loop_active_handles(io->base.loop);
    ck_assert_int_eq(kart_io_start(io, events, cb), err);
    ck_assert_int_eq(kart_handle_is_active(&io->base), 0);
    ck_assert_int_eq(kart_loop_active_handles(io->base.loop), before);
}

START_TEST(io_start_errors)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    kt_write(sv[1], "x");
    kart_io io, io2;
    kart_io_init(loop, &io, sv[0]);
    ck_assert_int_eq(kart_io_start(NULL, KART_READABLE, io_never_cb), -EINVAL);
    assert_io_start_fails(&io, KART_READABLE, NULL, -EINVAL);
    assert_io_start_fails(&io, 0, io_never_cb, -EINVAL);
    assert_io_start_fails(&io, 0x8000, io_never_cb, -EINVAL);
    assert_io_start_fails(&io, KART_HANGUP, io_never_cb, -EINVAL);
    assert_io_start_fails(&io, KART_EDGE, io_never_cb, -EINVAL);
    assert_io_start_fails(&io, KART_READABLE | KART_ONESHOT | KART_EXCLUSIVE, io_never_cb, -EINVAL);

    /* A second watcher on a watched fd. */
    rec r = {0};
    io.base.data = &r;
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
    kart_io_init(loop, &io2, sv[0]);
    assert_io_start_fails(&io2, KART_READABLE, io_never_cb, -EEXIST);
    assert_io_start_fails(&io2, KART_WRITABLE, io_never_cb, -EEXIST);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 1);
    /* Once the first stops, the fd is free. */
    ck_assert_int_eq(kart_io_stop(&io), 0);
    rec r2 = {0};
    io2.base.data = &r2;
    ck_assert_int_eq(kart_io_start(&io2, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r2.calls, 1);
    ck_assert_int_eq(r.calls, 1);
    kart_io_stop(&io2);

    /* A closed fd. */
    int closed = dup(sv[0]);
    close(closed);
    ck_assert_int_eq(kart_io_init(loop, &io, closed), 0);
    assert_io_start_fails(&io, KART_READABLE, io_never_cb, -EBADF);

    /* A regular file and a directory cannot be waited on. */
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    kart_io_init(loop, &io, fileno(f));
    assert_io_start_fails(&io, KART_READABLE, io_never_cb, -EPERM);
    int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dir, 0);
    kart_io_init(loop, &io, dir);
    assert_io_start_fails(&io, KART_READABLE, io_never_cb, -EPERM);
    fclose(f);
    close(dir);

    /* select(2) cannot take an fd at or above FD_SETSIZE: -ERANGE there,
     * fine everywhere else. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max > FD_SETSIZE + 10) {
        rl.rlim_cur = FD_SETSIZE + 11;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        int high = dup2(sv[0], FD_SETSIZE + 10);
        ck_assert_int_eq(high, FD_SETSIZE + 10);
        kart_io_init(loop, &io, high);
        if (backend_caps() & KART_CAP_FDSET_LIMIT) {
            assert_io_start_fails(&io, KART_READABLE, io_never_cb, -ERANGE);
        } else {
            r.calls = 0;
            io.base.data = &r;
            ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
            ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
            ck_assert_int_eq(r.calls, 1);
            kart_io_stop(&io);
        }
        close(high);
    }
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    close_loop(loop);
    close2(sv);
}
END_TEST

START_TEST(io_edge_triggered_or_enotsup)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_io io;
    kart_io_init(loop, &io, sv[0]);
    io.base.data = &r;
    if (!(backend_caps() & KART_CAP_EDGE)) {
        ck_assert(strcmp(backend, "poll") == 0 || strcmp(backend, "select") == 0);
        assert_io_start_fails(&io, KART_READABLE | KART_EDGE, io_never_cb, -ENOTSUP);
        /* Asked of an active watcher, it changes nothing. */
        ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
        ck_assert_int_eq(kart_io_start(&io, KART_READABLE | KART_EDGE, io_never_cb), -ENOTSUP);
        ck_assert_int_eq(kart_handle_is_active(&io.base), 1);
        kt_write(sv[1], "a");
        for (int k = 1; k <= 3; k++) {
            ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
            ck_assert_int_eq(r.calls, k);
        }
    } else {
        ck_assert_int_eq(kart_io_start(&io, KART_READABLE | KART_EDGE, io_rec_cb), 0);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
        ck_assert_int_eq(r.calls, 0);
        for (int k = 1; k <= 3; k++) {
            kt_write(sv[1], "a"); /* new readiness, left unread */
            ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
            ck_assert_int_eq(r.calls, k);
            ck_assert_uint_eq(r.events, KART_READABLE);
            for (int j = 0; j < 3; j++)
                ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
            ck_assert_int_eq(r.calls, k);
        }
        ck_assert_int_eq(kt_drain(sv[0]), 3);
    }
    kart_io_stop(&io);
    close_loop(loop);
    close2(sv);
}
END_TEST

static void io_stop_self_cb(kart_io *io, uint32_t events)
{
    rec *r = io->base.data;
    r->calls++;
    r->events = events;
    ck_assert_int_eq(kart_io_stop(io), 0);
    ck_assert_int_eq(kart_io_stop(io), 0);
    r->active = kart_handle_is_active(&io->base);
}

static int freed_self_calls;

static void io_stop_free_self_cb(kart_io *io, uint32_t events)
{
    (void)events;
    freed_self_calls++;
    ck_assert_int_eq(kart_io_stop(io), 0);
    free(io);
}

START_TEST(io_stop_inside_own_callback)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_io io;
    kart_io_init(loop, &io, sv[0]);
    io.base.data = &r;
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_stop_self_cb), 0);
    kt_write(sv[1], "x");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.active, 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 1);

    /* Stopped and freed by itself: the loop never touches it again. */
    kart_io *heap = malloc(sizeof(*heap));
    kart_io_init(loop, heap, sv[0]);
    ck_assert_int_eq(kart_io_start(heap, KART_READABLE | KART_WRITABLE, io_stop_free_self_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(freed_self_calls, 1);
    close_loop(loop);
    close2(sv);
}
END_TEST

/* Watchers that, when the first of them runs, stop and free all the
 * others, although their fds are ready in the same batch. */
#define NPAIRS 4
static kart_io *batch_w[NPAIRS];
static int batch_calls;

static void stop_free_others_cb(kart_io *io, uint32_t events)
{
    (void)events;
    batch_calls++;
    for (int k = 0; k < NPAIRS; k++) {
        if (batch_w[k] && batch_w[k] != io) {
            ck_assert_int_eq(kart_io_stop(batch_w[k]), 0);
            free(batch_w[k]);
            batch_w[k] = NULL;
        }
    }
}

START_TEST(io_watchers_stopped_and_freed_in_a_batch_never_run)
{
    LOOP_OR_SKIP(_i);
    for (int round = 0; round < 8; round++) {
        int sv[NPAIRS][2];
        for (int k = 0; k < NPAIRS; k++) {
            kt_socketpair(sv[k]);
            kt_write(sv[k][1], "x");
        }
        /* Start them in a different order each round, so that whichever
         * order the backend reports them in, each position gets its turn
         * to be first. */
        batch_calls = 0;
        for (int j = 0; j < NPAIRS; j++) {
            int k = (j + round) % NPAIRS;
            if (round & 4)
                k = NPAIRS - 1 - k;
            batch_w[k] = malloc(sizeof(kart_io));
            ck_assert_int_eq(kart_io_init(loop, batch_w[k], sv[k][0]), 0);
            ck_assert_int_eq(kart_io_start(batch_w[k], KART_READABLE, stop_free_others_cb), 0);
        }
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
        ck_assert_int_eq(batch_calls, 1);
        ck_assert_int_eq(kart_loop_active_handles(loop), 1);
        for (int k = 0; k < NPAIRS; k++) {
            if (batch_w[k]) {
                kart_io_stop(batch_w[k]);
                free(batch_w[k]);
                batch_w[k] = NULL;
            }
            close2(sv[k]);
        }
    }
    close_loop(loop);
}
END_TEST

/* Two watchers whose fds are both ready: the first to run stops the
 * other, closes its fd by putting a quiet pipe under the same number
 * (dup2), and starts the same struct on it. The old readiness, already in
 * the batch, must not reach the new watcher. */
static kart_io reuse_w[2];
static int reuse_quiet = -1;
static int reuse_first_calls, reuse_stale_calls;

static void reuse_stale_cb(kart_io *io, uint32_t events)
{
    (void)io;
    (void)events;
    reuse_stale_calls++;
}

static void reuse_first_cb(kart_io *io, uint32_t events)
{
    (void)events;
    reuse_first_calls++;
    kt_drain(io->fd);
    kart_io *other = &reuse_w[io == &reuse_w[0]];
    if (other->base.data)
        return; /* already swapped */
    int fd = other->fd;
    ck_assert_int_eq(kart_io_stop(other), 0);
    ck_assert_int_eq(dup2(reuse_quiet, fd), fd);
    ck_assert_int_eq(kart_io_init(io->base.loop, other, fd), 0);
    other->base.data = other;
    ck_assert_int_eq(kart_io_start(other, KART_READABLE, reuse_stale_cb), 0);
}

START_TEST(io_fd_closed_and_reused_in_a_batch_gets_no_stale_event)
{
    LOOP_OR_SKIP(_i);
    int q[2];
    kt_pipe(q);
    reuse_quiet = q[0];
    for (int round = 0; round < 8; round++) {
        int a[2], b[2];
        kt_socketpair(a);
        kt_socketpair(b);
        kt_write(a[1], "x");
        kt_write(b[1], "x");
        reuse_first_calls = reuse_stale_calls = 0;
        int first = round & 1;
        memset(reuse_w, 0, sizeof(reuse_w));
        kart_io_init(loop, &reuse_w[first], (round & 2) ? b[0] : a[0]);
        kart_io_init(loop, &reuse_w[!first], (round & 2) ? a[0] : b[0]);
        ck_assert_int_eq(kart_io_start(&reuse_w[first], KART_READABLE, reuse_first_cb), 0);
        ck_assert_int_eq(kart_io_start(&reuse_w[!first], KART_READABLE, reuse_first_cb), 0);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
        ck_assert_int_eq(reuse_first_calls, 1);
        ck_assert_int_eq(reuse_stale_calls, 0);
        kart_io_stop(&reuse_w[0]);
        kart_io_stop(&reuse_w[1]);
        close2(a);
        close2(b);
    }
    close_loop(loop);
    close2(q);
}
END_TEST

/* Two ready watchers; the first to run changes the other's registration
 * (kart_io_start again). The batch's old event for it is dropped, but its
 * readiness must not be lost, even edge-triggered. */
static kart_io mod_w[2];
static int mod_calls[2];
static uint32_t mod_flags;

static void modify_other_cb(kart_io *io, uint32_t events)
{
    (void)events;
    int self = io == &mod_w[1];
    if (mod_calls[0] + mod_calls[1] == 0)
        ck_assert_int_eq(kart_io_start(&mod_w[!self], KART_READABLE | mod_flags, modify_other_cb), 0);
    mod_calls[self]++;
}

START_TEST(io_watcher_modified_in_a_batch_keeps_its_readiness)
{
    LOOP_OR_SKIP(_i);
    mod_flags = (backend_caps() & KART_CAP_EDGE) ? KART_EDGE : 0;
    int a[2], b[2];
    kt_socketpair(a);
    kt_socketpair(b);
    kt_write(a[1], "x");
    kt_write(b[1], "x");
    kart_io_init(loop, &mod_w[0], a[0]);
    kart_io_init(loop, &mod_w[1], b[0]);
    ck_assert_int_eq(kart_io_start(&mod_w[0], KART_READABLE | mod_flags, modify_other_cb), 0);
    ck_assert_int_eq(kart_io_start(&mod_w[1], KART_READABLE | mod_flags, modify_other_cb), 0);
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    if (mod_flags) {
        ck_assert_int_eq(mod_calls[0], 1);
        ck_assert_int_eq(mod_calls[1], 1);
    } else {
        ck_assert_int_ge(mod_calls[0], 1);
        ck_assert_int_ge(mod_calls[1], 1);
    }
    kart_io_stop(&mod_w[0]);
    kart_io_stop(&mod_w[1]);
    close_loop(loop);
    close2(a);
    close2(b);
}
END_TEST

static void oneshot_rearm_cb(kart_io *io, uint32_t events)
{
    rec *r = io->base.data;
    r->calls++;
    r->events = events;
    r->active = kart_handle_is_active(&io->base);
    if (r->calls < 3)
        ck_assert_int_eq(kart_io_start(io, KART_READABLE | KART_ONESHOT, oneshot_rearm_cb), 0);
}

START_TEST(io_oneshot_runs_once_until_restarted)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_io io;
    kart_io_init(loop, &io, sv[0]);
    io.base.data = &r;
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE | KART_ONESHOT, io_rec_cb), 0);
    kt_write(sv[1], "x");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.events, KART_READABLE);
    ck_assert_int_eq(r.active, 0); /* stopped before its callback */
    ck_assert_int_eq(kart_handle_is_active(&io.base), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    /* Still readable, but silent. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 1);
    /* Restarting re-arms it. */
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE | KART_ONESHOT, io_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_eq(r.calls, 2);
    /* And from inside its callback. */
    r.calls = 0;
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE | KART_ONESHOT, oneshot_rearm_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 3);
    ck_assert_int_eq(kart_handle_is_active(&io.base), 0);
    close_loop(loop);
    close2(sv);
}
END_TEST

static void switch_to_readable_cb(kart_io *io, uint32_t events)
{
    rec *r = io->base.data;
    r->calls++;
    r->events = events;
    ck_assert_int_eq(kart_io_start(io, KART_READABLE, io_rec_cb), 0);
}

/* More ready fds than one batch holds (the loop starts with room for 64
 * and grows): every watcher still runs exactly once. */
#define NMANY_FDS 300
static int many_io_calls[NMANY_FDS];

static void many_io_cb(kart_io *io, uint32_t events)
{
    (void)events;
    many_io_calls[(intptr_t)io->base.data]++;
    ck_assert_int_eq(kart_io_stop(io), 0);
}

START_TEST(io_more_ready_fds_than_a_batch_all_run_once)
{
    LOOP_OR_SKIP(_i);
    int (*sv)[2] = calloc(NMANY_FDS, sizeof(*sv));
    kart_io *io = calloc(NMANY_FDS, sizeof(*io));
    ck_assert(sv && io);
    for (int k = 0; k < NMANY_FDS; k++) {
        kt_socketpair(sv[k]);
        kt_write(sv[k][1], "x");
        kart_io_init(loop, &io[k], sv[k][0]);
        io[k].base.data = (void *)(intptr_t)k;
        ck_assert_int_eq(kart_io_start(&io[k], KART_READABLE, many_io_cb), 0);
    }
    /* Every round: ONCE, then all watchers must still be consistent. */
    while (kart_loop_run(loop, KART_RUN_ONCE) == 1)
        ;
    for (int k = 0; k < NMANY_FDS; k++) {
        ck_assert_int_eq(many_io_calls[k], 1);
        close2(sv[k]);
    }
    close_loop(loop);
    free(sv);
    free(io);
}
END_TEST

START_TEST(io_start_again_changes_events)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_io io;
    kart_io_init(loop, &io, sv[0]);
    io.base.data = &r;
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(kart_io_start(&io, KART_WRITABLE, switch_to_readable_cb), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.events, KART_WRITABLE);
    /* The callback switched it back to reading with io_rec_cb. */
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 1);
    kt_write(sv[1], "x");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 2);
    ck_assert_uint_eq(r.events, KART_READABLE);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    kart_io_stop(&io);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    close_loop(loop);
    close2(sv);
}
END_TEST

START_TEST(io_reports_hangup_and_rdhup)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_io io;
    int sv[2], p[2];

    /* The peer shuts its writing side: RDHUP, no HANGUP. */
    kt_socketpair(sv);
    kart_io_init(loop, &io, sv[0]);
    io.base.data = &r;
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.events, KART_READABLE | KART_RDHUP);
    /* The peer closes: HANGUP too. */
    close(sv[1]);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_uint_eq(r.events, KART_READABLE | KART_RDHUP | KART_HANGUP);
    kart_io_stop(&io);
    close(sv[0]);

    /* A pipe's writer closes. */
    kt_pipe(p);
    kart_io_init(loop, &io, p[0]);
    io.base.data = &r;
    ck_assert_int_eq(kart_io_start(&io, KART_READABLE, io_rec_cb), 0);
    close(p[1]);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert(r.events & KART_HANGUP);
    kart_io_stop(&io);
    close(p[0]);

    /* A pipe's reader closes: the writer sees an error. */
    kt_pipe(p);
    kart_io_init(loop, &io, p[1]);
    io.base.data = &r;
    ck_assert_int_eq(kart_io_start(&io, KART_WRITABLE, io_rec_cb), 0);
    close(p[0]);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert(r.events & KART_ERROR);
    ck_assert(r.events & KART_WRITABLE);
    kart_io_stop(&io);
    close(p[1]);
    close_loop(loop);
}
END_TEST

/* ---- timers ---- */

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
static kart_io spin_io;
static int spin_timer_calls, spin_io_calls;

static void spin_maybe_done(void)
{
    if (spin_timer_calls >= 50 && spin_io_calls >= 50) {
        kart_timer_stop(&spin_timer);
        kart_io_stop(&spin_io);
    }
}

static void spin_timer_cb(kart_timer *t)
{
    spin_timer_calls++;
    ck_assert_int_eq(kart_timer_start(t, spin_timer_cb, 0, 0), 0);
    spin_maybe_done();
}

static void spin_io_cb(kart_io *io, uint32_t events)
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
    kart_io_init(loop, &spin_io, sv[0]);
    ck_assert_int_eq(kart_timer_start(&spin_timer, spin_timer_cb, 0, 0), 0);
    ck_assert_int_eq(kart_io_start(&spin_io, KART_WRITABLE, spin_io_cb), 0);
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

/* ---- signals ---- */

static int blocked_now(int signum)
{
    sigset_t cur;
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, signum);
}

static void set_blocked(int signum, bool block)
{
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signum);
    ck_assert_int_eq(pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &one, NULL), 0);
}

static void assert_same_mask(const sigset_t *a)
{
    sigset_t cur;
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    for (int s = 1; s < _NSIG; s++)
        ck_assert_msg(sigismember(&cur, s) == sigismember(a, s), "signal %d differs", s);
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

static void signal_never_cb(kart_signal *s, int signum)
{
    (void)s;
    ck_abort_msg("signal callback ran for %d after its start failed", signum);
}

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

/* ---- child processes ---- */

static pid_t fork_exit(int code)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(code);
    return pid;
}

/* A child that waits to be killed; it is ready for SIGTERM on return. */
static pid_t fork_pause(void)
{
    int p[2];
    kt_pipe(p);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Check's SIGTERM handler would forward the signal to the test. */
        signal(SIGTERM, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (write(p[1], "r", 1) != 1)
            _exit(99);
        for (;;)
            pause();
    }
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    ck_assert_int_eq(poll(&pf, 1, -1), 1);
    close2(p);
    return pid;
}

/* Waits until pid has exited, without reaping it. */
static void wait_exited(pid_t pid)
{
    siginfo_t si;
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

static void child_exit_status(kart_loop *loop)
{
    rec r = {0};
    kart_child c;
    ck_assert_int_eq(kart_child_init(loop, &c), 0);
    c.base.data = &r;
    ck_assert_int_eq(c.base.type, KART_HANDLE_CHILD);
    pid_t pid = fork_exit(3);
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(c.pid, pid);
    ck_assert_int_eq(kart_handle_is_active(&c.base), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, 3);
    ck_assert_int_eq(r.active, 0);
    /* Reaped: no zombie is left. */
    ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}

static void child_killed_by_signal(kart_loop *loop)
{
    rec r = {0};
    kart_child c;
    kart_child_init(loop, &c);
    c.base.data = &r;
    pid_t pid = fork_pause();
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, -SIGKILL);
}

static void child_exited_before_start(kart_loop *loop)
{
    rec r = {0};
    kart_child c;
    kart_child_init(loop, &c);
    c.base.data = &r;
    pid_t pid = fork_exit(5);
    wait_exited(pid);
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, 5);
}

static void two_children_at_once(kart_loop *loop)
{
    rec r1 = {0}, r2 = {0};
    kart_child c1, c2;
    kart_child_init(loop, &c1);
    kart_child_init(loop, &c2);
    c1.base.data = &r1;
    c2.base.data = &r2;
    pid_t p1 = fork_pause(), p2 = fork_exit(2);
    ck_assert_int_eq(kart_child_start(&c1, child_rec_cb, p1), 0);
    ck_assert_int_eq(kart_child_start(&c2, child_rec_cb, p2), 0);
    wait_exited(p2);
    kill(p1, SIGTERM);
    wait_exited(p1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_int_eq(r1.value, -SIGTERM);
    ck_assert_int_eq(r2.calls, 1);
    ck_assert_int_eq(r2.value, 2);
}

static void child_stop_does_not_reap(kart_loop *loop)
{
    rec r = {0};
    kart_child c;
    kart_child_init(loop, &c);
    c.base.data = &r;
    pid_t pid = fork_exit(7);
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(kart_child_stop(&c), 0);
    ck_assert_int_eq(kart_child_stop(&c), 0);
    ck_assert_int_eq(kart_handle_is_active(&c.base), 0);
    wait_exited(pid);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 7);
}

START_TEST(child_exit_code_is_reported)
{
    LOOP_OR_SKIP(_i);
    child_exit_status(loop);
    close_loop(loop);
}
END_TEST

START_TEST(child_killed_is_minus_signal)
{
    LOOP_OR_SKIP(_i);
    child_killed_by_signal(loop);
    close_loop(loop);
}
END_TEST

START_TEST(child_that_exited_before_start_is_reported)
{
    LOOP_OR_SKIP(_i);
    child_exited_before_start(loop);
    two_children_at_once(loop);
    close_loop(loop);
}
END_TEST

START_TEST(child_stop_leaves_it_unreaped)
{
    LOOP_OR_SKIP(_i);
    child_stop_does_not_reap(loop);
    close_loop(loop);
}
END_TEST


static void child_never_cb(kart_child *c, int status)
{
    (void)c;
    ck_abort_msg("child callback ran (status %d) after its start failed", status);
}

static void assert_child_start_fails(kart_child *c, kart_child_cb cb, pid_t pid, int err)
{
    int before = kart_loop_active_handles(c->base.loop);
    ck_assert_int_eq(kart_child_start(c, cb, pid), err);
    ck_assert_int_eq(kart_handle_is_active(&c->base), 0);
    ck_assert_int_eq(kart_loop_active_handles(c->base.loop), before);
}

/* Reaped behind the watcher's back, or auto-reaped with SIGCHLD ignored:
 * the status is INT_MIN. */
static void child_reaped_elsewhere(kart_loop *loop)
{
    rec r = {0};
    kart_child c;
    kart_child_init(loop, &c);
    c.base.data = &r;
    pid_t pid = fork_exit(8);
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, INT_MIN);

    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    ck_assert_int_eq(sigaction(SIGCHLD, &ign, &old), 0);
    r.calls = 0;
    pid = fork_pause();
    if (no_pidfd) {
        /* The kernel sends no SIGCHLD for a child it reaps itself, so the
         * SIGCHLD path could never see the exit: refused. */
        assert_child_start_fails(&c, child_never_cb, pid, -ECHILD);
        kill(pid, SIGKILL);
    } else {
        ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
        kill(pid, SIGKILL);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
        ck_assert_int_eq(r.calls, 1);
        ck_assert_int_eq(r.value, INT_MIN);
    }
    ck_assert_int_eq(sigaction(SIGCHLD, &old, NULL), 0);
}

static void child_errors(kart_loop *loop)
{
    kart_child c, c2;
    ck_assert_int_eq(kart_child_init(NULL, &c), -EINVAL);
    ck_assert_int_eq(kart_child_init(loop, NULL), -EINVAL);
    ck_assert_int_eq(kart_child_init(loop, &c), 0);
    kart_child_init(loop, &c2);
    ck_assert_int_eq(kart_child_start(NULL, child_never_cb, getpid()), -EINVAL);
    assert_child_start_fails(&c, NULL, fork_exit(0), -EINVAL);
    assert_child_start_fails(&c, child_never_cb, 0, -EINVAL);
    assert_child_start_fails(&c, child_never_cb, -1, -EINVAL);

    /* No such process: beyond pid_max, and one just reaped. */
    long pid_max = 4194304;
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    if (f) {
        ck_assert_int_eq(fscanf(f, "%ld", &pid_max), 1);
        fclose(f);
    }
    assert_child_start_fails(&c, child_never_cb, (pid_t)(pid_max + 1), -ESRCH);
    pid_t gone = fork_exit(0);
    ck_assert_int_eq(waitpid(gone, NULL, 0), gone);
    assert_child_start_fails(&c, child_never_cb, gone, -ESRCH);

    /* Processes that are not our children. */
    assert_child_start_fails(&c, child_never_cb, 1, -ECHILD);
    assert_child_start_fails(&c, child_never_cb, getppid(), -ECHILD);
    assert_child_start_fails(&c, child_never_cb, getpid(), -ECHILD);

    /* Two watchers of one pid: the second is refused, the first works. */
    rec r = {0};
    c.base.data = &r;
    pid_t pid = fork_exit(4);
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    assert_child_start_fails(&c2, child_never_cb, pid, -EEXIST);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, 4);
    ck_assert_int_eq(kart_child_stop(&c2), 0);
    /* Reap the child of the NULL-callback case. */
    while (waitpid(-1, NULL, 0) > 0)
        ;
}

START_TEST(child_reaped_elsewhere_is_int_min)
{
    LOOP_OR_SKIP(_i);
    child_reaped_elsewhere(loop);
    close_loop(loop);
}
END_TEST

START_TEST(child_errors_with_pidfd)
{
    LOOP_OR_SKIP(_i);
    child_errors(loop);
    close_loop(loop);
}
END_TEST

/* The SIGCHLD path, as on kernels without pidfd_open. */
START_TEST(child_via_sigchld)
{
    LOOP_OR_SKIP(_i);
    set_no_pidfd(true);
    set_blocked(SIGCHLD, false);
    sigset_t before;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    child_exit_status(loop);
    child_killed_by_signal(loop);
    child_exited_before_start(loop);
    two_children_at_once(loop);
    child_stop_does_not_reap(loop);
    child_reaped_elsewhere(loop);
    child_errors(loop);
    /* SIGCHLD is unblocked again once no child is watched. */
    assert_same_mask(&before);
    close_loop(loop);
}
END_TEST

/* A container whose seccomp profile refuses pidfd_open with EPERM (Docker
 * before 20.10 did so for system calls it did not know) must still see
 * its children exit. */
#ifdef __linux__
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#if defined(__x86_64__)
#define KT_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define KT_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#endif

START_TEST(child_when_seccomp_refuses_pidfd)
{
#if defined(KT_AUDIT_ARCH) && defined(SYS_pidfd_open)
    LOOP_OR_SKIP(_i);
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KT_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = {.len = sizeof(prog) / sizeof(prog[0]), .filter = prog};
    ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog), 0);
    ck_assert_int_eq(syscall(SYS_pidfd_open, getpid(), 0), -1);
    ck_assert_int_eq(errno, EPERM);
    child_exit_status(loop);
    child_killed_by_signal(loop);
    close_loop(loop);
#else
    (void)_i;
#endif
}
END_TEST

/* Lowers RLIMIT_NOFILE so that no new descriptor can be opened; returns
 * the old limit. */
static struct rlimit no_more_fds(void)
{
    struct rlimit old, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(lowest, 0);
    close(lowest);
    rl = old;
    rl.rlim_cur = (rlim_t)lowest;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    return old;
}

/* The first signal watcher needs a signalfd, a child watcher a pidfd (or,
 * on the SIGCHLD path, the signalfd). */
START_TEST(signal_and_child_start_without_free_fds_is_emfile)
{
    LOOP_OR_SKIP(_i);
    kart_signal s;
    kart_child c;
    kart_signal_init(loop, &s);
    kart_child_init(loop, &c);
    set_blocked(SIGUSR1, false);
    set_blocked(SIGCHLD, false);
    sigset_t before;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    pid_t pid = fork_exit(6);
    for (int path = 0; path < 2; path++) {
        set_no_pidfd(path == 1);
        struct rlimit old = no_more_fds();
        ck_assert_int_eq(kart_signal_start(&s, signal_never_cb, SIGUSR1), -EMFILE);
        ck_assert_int_eq(kart_handle_is_active(&s.base), 0);
        assert_child_start_fails(&c, child_never_cb, pid, -EMFILE);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
        assert_same_mask(&before);
        ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    }
    /* With descriptors to spare, both work. */
    rec r = {0};
    c.base.data = &r;
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.value, 6);
    close_loop(loop);
}
END_TEST

/* ---- async ---- */

START_TEST(async_sends_before_the_callback_coalesce)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_async a;
    a.base.data = &r;
    ck_assert_int_eq(kart_async_init(loop, &a, async_rec_cb), 0);
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
    ck_assert_int_eq(kart_async_init(loop, &th_async, threads_cb), 0);
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
    ck_assert_int_eq(kart_async_init(loop, &a, async_rec_cb), 0);
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
    ck_assert_int_eq(kart_async_init(loop, &a, async_rec_cb), 0);
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
        ck_assert_int_eq(kart_async_init(loop, async_pair[k], async_stop_both_cb), 0);
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
    ck_assert_int_eq(kart_async_init(NULL, &a, async_never_cb), -EINVAL);
    ck_assert_int_eq(kart_async_init(loop, NULL, async_never_cb), -EINVAL);
    ck_assert_int_eq(kart_async_init(loop, &a, NULL), -EINVAL);
    ck_assert_int_eq(kart_async_send(NULL), -EINVAL);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
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
    tcase_add_loop_test(tc, free_with_active_handles_is_ebusy, 0, nb);
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

    tc = tcase_create("io");
    tcase_add_loop_test(tc, io_reports_readable_and_writable, 0, nb);
    tcase_add_loop_test(tc, io_init_errors, 0, nb);
    tcase_add_loop_test(tc, io_start_errors, 0, nb);
    tcase_add_loop_test(tc, io_edge_triggered_or_enotsup, 0, nb);
    tcase_add_loop_test(tc, io_stop_inside_own_callback, 0, nb);
    tcase_add_loop_test(tc, io_watchers_stopped_and_freed_in_a_batch_never_run, 0, nb);
    tcase_add_loop_test(tc, io_fd_closed_and_reused_in_a_batch_gets_no_stale_event, 0, nb);
    tcase_add_loop_test(tc, io_watcher_modified_in_a_batch_keeps_its_readiness, 0, nb);
    tcase_add_loop_test(tc, io_oneshot_runs_once_until_restarted, 0, nb);
    tcase_add_loop_test(tc, io_more_ready_fds_than_a_batch_all_run_once, 0, nb);
    tcase_add_loop_test(tc, io_start_again_changes_events, 0, nb);
    tcase_add_loop_test(tc, io_reports_hangup_and_rdhup, 0, nb);
    suite_add_tcase(s, tc);

    tc = tcase_create("timer");
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
    tcase_add_loop_test(tc, timer_errors, 0, nb);
    suite_add_tcase(s, tc);

    tc = tcase_create("signal");
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

    tc = tcase_create("child");
    tcase_add_loop_test(tc, child_exit_code_is_reported, 0, nb);
    tcase_add_loop_test(tc, child_killed_is_minus_signal, 0, nb);
    tcase_add_loop_test(tc, child_that_exited_before_start_is_reported, 0, nb);
    tcase_add_loop_test(tc, child_stop_leaves_it_unreaped, 0, nb);
    tcase_add_loop_test(tc, child_reaped_elsewhere_is_int_min, 0, nb);
    tcase_add_loop_test(tc, child_errors_with_pidfd, 0, nb);
    tcase_add_loop_test(tc, child_via_sigchld, 0, nb);
    tcase_add_loop_test(tc, child_when_seccomp_refuses_pidfd, 0, nb);
    tcase_add_loop_test(tc, signal_and_child_start_without_free_fds_is_emfile, 0, nb);
    suite_add_tcase(s, tc);

    tc = tcase_create("async");
    tcase_add_loop_test(tc, async_sends_before_the_callback_coalesce, 0, nb);
    tcase_add_loop_test(tc, async_sends_from_threads, 0, nb);
    tcase_add_loop_test(tc, async_send_from_a_signal_handler, 0, nb);
    tcase_add_loop_test(tc, async_stop, 0, nb);
    tcase_add_loop_test(tc, async_errors, 0, nb);
    suite_add_tcase(s, tc);

    return kt_run(s);
}

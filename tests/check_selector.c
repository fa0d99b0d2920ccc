/* Description: the selector conformance suite. Every case runs on every
 * backend this host starts (io_uring, epoll, poll, select), and a
 * randomized sequence of operations must produce the same events on all
 * of them. Also covers the registration map (kart_selector_next), the
 * selector's own fd nested in another loop (kart_selector_fileno),
 * kart_poll() and kart_select() (also interrupted by signals every 3 ms:
 * they keep their deadline). */
#include "testutil.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>

static kart_selector *open_sel(const char *backend)
{
    kart_selector *s = NULL;
    kart_selector_options o = {.backend = backend};
    ck_assert_int_eq(kart_selector_create(&s, &o), 0);
    ck_assert_str_eq(kart_selector_backend(s), backend);
    return s;
}

/* Waits once and returns the events for fd (0 if it was not reported). */
static uint32_t events_for(kart_selector *s, int fd, int64_t timeout_ns)
{
    kart_event ev[64];
    int n = kart_selector_wait(s, ev, 64, timeout_ns);
    ck_assert_int_ge(n, 0);
    uint32_t got = 0;
    for (int i = 0; i < n; i++)
        if (ev[i].fd == fd)
            got |= ev[i].events;
    return got;
}

/* ---- creation ---- */

START_TEST(create_rejects_bad_arguments)
{
    kart_selector *s;
    kart_selector_options o = {.backend = "no-such-backend"};
    ck_assert_int_eq(kart_selector_create(NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_selector_create(&s, &o), KART_EUNKNOWNBACKEND);
    o.backend = "";
    ck_assert_int_eq(kart_selector_create(&s, &o), -EINVAL);
    ck_assert_int_eq(kart_backend_probe(NULL), -EINVAL);
    ck_assert_int_eq(kart_backend_probe("kqueue-on-linux"), KART_EUNKNOWNBACKEND);
    setenv("KART_BACKEND", "bogus", 1);
    ck_assert_int_eq(kart_selector_create(&s, NULL), KART_EUNKNOWNBACKEND);
}
END_TEST

START_TEST(default_backend_is_the_best_that_starts)
{
    unsetenv("KART_BACKEND");
    const char *best = NULL;
    for (const char *const *b = kart_backends(); *b && !best; b++)
        if (kart_backend_probe(*b) == 0)
            best = *b;
    ck_assert_ptr_nonnull(best);
    kart_selector *s;
    ck_assert_int_eq(kart_selector_create(&s, NULL), 0);
    ck_assert_str_eq(kart_selector_backend(s), best);
    kart_selector_free(s);
    kart_selector_free(NULL);
}
END_TEST

/* A probe leaves the calling thread as it was: on io_uring, closing a ring
 * queues task work to the thread that made it, which interrupted that
 * thread's next recv with SO_RCVTIMEO (EINTR, in a program with no signal
 * handler) before the probe moved to a thread of its own. */
START_TEST(probe_does_not_interrupt_the_caller)
{
    for (const char *const *b = kart_backends(); *b; b++) {
        kart_backend_probe(*b);
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct timeval tv = {.tv_usec = 200000};
        ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        char c;
        errno = 0;
        ck_assert_int_eq(recv(sv[0], &c, 1, 0), -1);
        ck_assert_msg(errno == EAGAIN, "%s: recv after the probe: %s", *b, strerror(errno));
        close(sv[0]);
        close(sv[1]);
    }
}
END_TEST

START_TEST(env_forces_backend)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s;
    ck_assert_int_eq(kart_selector_create(&s, NULL), 0);
    ck_assert_str_eq(kart_selector_backend(s), backend);
    kart_selector_free(s);
}
END_TEST

/* ---- registration errors ---- */

START_TEST(register_errors)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int sv[2], x;
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, -1, KART_READABLE, NULL), -EBADF);
    int closed = dup(sv[0]);
    close(closed);
    ck_assert_int_eq(kart_selector_register(s, closed, KART_READABLE, NULL), -EBADF);
    ck_assert_int_eq(kart_selector_register(s, sv[0], 0x8000, NULL), -EINVAL);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_HANGUP, NULL), -EINVAL);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_ONESHOT, NULL), -EINVAL);
    ck_assert_int_eq(
        kart_selector_register(s, sv[0], KART_READABLE | KART_ONESHOT | KART_EXCLUSIVE, NULL),
        -EINVAL);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_PRIORITY | KART_EXCLUSIVE, NULL),
                     -EINVAL);
    if (kart_selector_caps(s) & KART_CAP_EDGE)
        ck_assert_int_eq(kart_selector_register(s, sv[1], KART_READABLE | KART_EDGE, NULL), 0);
    else
        ck_assert_int_eq(kart_selector_register(s, sv[1], KART_READABLE | KART_EDGE, NULL),
                         -ENOTSUP);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, &x), 0);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_WRITABLE, NULL), -EEXIST);
    FILE *f = tmpfile();
    ck_assert_int_eq(kart_selector_register(s, fileno(f), KART_READABLE, NULL), -EPERM);
    fclose(f);
    ck_assert_int_eq(kart_selector_count(s), 1 + !!(kart_selector_caps(s) & KART_CAP_EDGE));
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(modify_unregister_get_errors)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int sv[2], a, b;
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_modify(s, sv[0], KART_READABLE, NULL), -ENOENT);
    ck_assert_int_eq(kart_selector_unregister(s, sv[0]), -ENOENT);
    ck_assert_int_eq(kart_selector_get(s, sv[0], NULL, NULL), -ENOENT);
    ck_assert_int_eq(kart_selector_modify(s, -3, KART_READABLE, NULL), -EBADF);
    ck_assert_int_eq(kart_selector_unregister(s, -3), -EBADF);
    ck_assert_int_eq(kart_selector_get(s, -3, NULL, NULL), -EBADF);
    ck_assert_int_eq(kart_selector_modify(s, 100000, KART_READABLE, NULL), -ENOENT);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, &a), 0);
    ck_assert_int_eq(kart_selector_modify(s, sv[0], 0x8000, NULL), -EINVAL);
    ck_assert_int_eq(kart_selector_modify(s, sv[0], KART_EDGE, NULL), -EINVAL);
    uint32_t ev;
    void *data;
    ck_assert_int_eq(kart_selector_get(s, sv[0], &ev, &data), 0);
    ck_assert_uint_eq(ev, KART_READABLE);
    ck_assert_ptr_eq(data, &a);
    ck_assert_int_eq(kart_selector_modify(s, sv[0], KART_WRITABLE, &b), 0);
    ck_assert_int_eq(kart_selector_get(s, sv[0], &ev, &data), 0);
    ck_assert_uint_eq(ev, KART_WRITABLE);
    ck_assert_ptr_eq(data, &b);
    ck_assert_int_eq(kart_selector_unregister(s, sv[0]), 0);
    ck_assert_int_eq(kart_selector_unregister(s, sv[0]), -ENOENT);
    ck_assert_int_eq(kart_selector_count(s), 0);
    kart_event e[1];
    ck_assert_int_eq(kart_selector_wait(s, NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_selector_wait(s, e, 0, 0), -EINVAL);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* ---- readiness semantics ---- */

START_TEST(level_triggered_reports_until_drained)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int sv[2], tag;
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, &tag), 0);
    ck_assert_uint_eq(events_for(s, sv[0], 0), 0);
    kt_write(sv[1], "ping");
    kart_event ev[4];
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 1000 * KT_MS), 1);
    ck_assert_int_eq(ev[0].fd, sv[0]);
    ck_assert_uint_eq(ev[0].events, KART_READABLE);
    ck_assert_ptr_eq(ev[0].data, &tag);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(events_for(s, sv[0], 0), KART_READABLE);
    ck_assert_int_eq(kt_drain(sv[0]), 4);
    ck_assert_uint_eq(events_for(s, sv[0], 0), 0);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(writable_and_readable_together)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int sv[2];
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE | KART_WRITABLE, NULL), 0);
    ck_assert_uint_eq(events_for(s, sv[0], 1000 * KT_MS), KART_WRITABLE);
    kt_write(sv[1], "x");
    ck_assert_uint_eq(events_for(s, sv[0], 1000 * KT_MS), KART_WRITABLE | KART_READABLE);
    /* Fill the send buffer: no longer writable. */
    char buf[4096] = {0};
    while (write(sv[0], buf, sizeof(buf)) > 0)
        ;
    ck_assert_uint_eq(events_for(s, sv[0], 0), KART_READABLE);
    ck_assert_int_eq(kart_selector_modify(s, sv[0], KART_WRITABLE, NULL), 0);
    ck_assert_uint_eq(events_for(s, sv[0], 0), 0);
    kt_drain(sv[1]);
    ck_assert_uint_eq(events_for(s, sv[0], 1000 * KT_MS), KART_WRITABLE);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(edge_triggered_reports_only_new_readiness)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    if (!(kart_selector_caps(s) & KART_CAP_EDGE)) {
        kart_selector_free(s);
        return; /* -ENOTSUP is checked by register_errors */
    }
    int sv[2];
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE | KART_EDGE, NULL), 0);
    for (int round = 0; round < 50; round++) {
        kt_write(sv[1], "a");
        ck_assert_uint_eq(events_for(s, sv[0], 1000 * KT_MS), KART_READABLE);
        ck_assert_uint_eq(events_for(s, sv[0], 0), 0); /* no new readiness */
        kt_write(sv[1], "b");                          /* new data: reported again */
        ck_assert_uint_eq(events_for(s, sv[0], 1000 * KT_MS), KART_READABLE);
        ck_assert_int_eq(kt_drain(sv[0]), 2);
        ck_assert_uint_eq(events_for(s, sv[0], 0), 0);
    }
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(oneshot_reports_once_until_modified)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int sv[2];
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE | KART_ONESHOT, NULL), 0);
    kt_write(sv[1], "a");
    ck_assert_uint_eq(events_for(s, sv[0], 1000 * KT_MS), KART_READABLE);
    ck_assert_uint_eq(events_for(s, sv[0], 0), 0);
    kt_write(sv[1], "b");
    ck_assert_uint_eq(events_for(s, sv[0], 20 * KT_MS), 0);
    /* Even a hang-up stays silent while disarmed. */
    shutdown(sv[1], SHUT_RDWR);
    ck_assert_uint_eq(events_for(s, sv[0], 0), 0);
    ck_assert_int_eq(kart_selector_modify(s, sv[0], KART_READABLE | KART_ONESHOT, NULL), 0);
    ck_assert_uint_eq(events_for(s, sv[0], 1000 * KT_MS) & KART_READABLE, KART_READABLE);
    ck_assert_uint_eq(events_for(s, sv[0], 0), 0);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(peer_half_close_and_close)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int sv[2];
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, NULL), 0);
    shutdown(sv[1], SHUT_WR);
    ck_assert_uint_eq(events_for(s, sv[0], 1000 * KT_MS), KART_READABLE | KART_RDHUP);
    close(sv[1]);
    ck_assert_uint_eq(events_for(s, sv[0], 1000 * KT_MS), KART_READABLE | KART_RDHUP | KART_HANGUP);
    kart_selector_free(s);
    close(sv[0]);
}
END_TEST

START_TEST(pipe_writer_closed_is_hangup)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int p[2];
    kt_pipe(p);
    ck_assert_int_eq(kart_selector_register(s, p[0], KART_READABLE, NULL), 0);
    kt_write(p[1], "left");
    close(p[1]);
    ck_assert_uint_eq(events_for(s, p[0], 1000 * KT_MS), KART_READABLE | KART_HANGUP);
    kt_drain(p[0]);
    ck_assert_uint_eq(events_for(s, p[0], 1000 * KT_MS), KART_HANGUP);
    kart_selector_free(s);
    close(p[0]);
}
END_TEST

START_TEST(refused_connect_is_error)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    /* A port that was just free on loopback, so nothing listens there. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    close(l);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(c, (struct sockaddr *)&a, sizeof(a));
    ck_assert(r == 0 || errno == EINPROGRESS || errno == ECONNREFUSED);
    ck_assert_int_eq(kart_selector_register(s, c, KART_WRITABLE, NULL), 0);
    uint32_t ev = events_for(s, c, 1000 * KT_MS);
    ck_assert_uint_eq(ev & (KART_ERROR | KART_HANGUP), KART_ERROR | KART_HANGUP);
    kart_selector_free(s);
    close(c);
}
END_TEST

START_TEST(priority_data_reported)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int sv[2];
    kt_tcp_pair(sv);
    int err = kart_selector_register(s, sv[1], KART_PRIORITY, NULL);
    if (err == -ENOTSUP && strcmp(backend, "kqueue") == 0) {
        kt_skip_print_(__func__, "priority data on this kqueue (no EVFILT_EXCEPT)");
        kart_selector_free(s);
        close(sv[0]);
        close(sv[1]);
        return;
    }
    ck_assert_int_eq(err, 0);
    ck_assert_uint_eq(events_for(s, sv[1], 0), 0);
    ck_assert_int_eq(send(sv[0], "!", 1, MSG_OOB), 1);
    ck_assert_uint_eq(events_for(s, sv[1], 1000 * KT_MS), KART_PRIORITY);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(exclusive_listener_reports_connections)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int sv[2];
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(l, 8), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    ck_assert_int_eq(kart_selector_register(s, l, KART_READABLE | KART_EXCLUSIVE, NULL), 0);
    ck_assert_uint_eq(events_for(s, l, 0), 0);
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(sv[0], (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_uint_eq(events_for(s, l, 1000 * KT_MS), KART_READABLE);
    /* Modify keeps it exclusive (epoll needs a delete and re-add). */
    ck_assert_int_eq(kart_selector_modify(s, l, KART_READABLE | KART_EXCLUSIVE, NULL), 0);
    ck_assert_uint_eq(events_for(s, l, 1000 * KT_MS), KART_READABLE);
    sv[1] = accept(l, NULL, NULL);
    ck_assert_int_ge(sv[1], 0);
    ck_assert_uint_eq(events_for(s, l, 0), 0);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
    close(l);
}
END_TEST

START_TEST(unregistered_fd_reused_delivers_no_stale_event)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int old_tag, new_tag;
    for (int round = 0; round < 20; round++) {
        int sv[2];
        kt_socketpair(sv);
        ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, &old_tag), 0);
        kt_write(sv[1], "stale");
        /* Leave the readiness pending in the backend (a wait may have
         * armed it), then unregister and close. */
        if (round % 2)
            ck_assert_uint_eq(events_for(s, sv[0], 1000 * KT_MS), KART_READABLE);
        int num = sv[0];
        ck_assert_int_eq(kart_selector_unregister(s, num), 0);
        close(sv[0]);
        close(sv[1]);
        /* The lowest free number is reused by the next pipe. */
        int p[2];
        kt_pipe(p);
        ck_assert_int_eq(p[0], num);
        ck_assert_int_eq(kart_selector_register(s, p[0], KART_READABLE, &new_tag), 0);
        kart_event ev[8];
        int n = kart_selector_wait(s, ev, 8, 0);
        ck_assert_int_eq(n, 0);
        kt_write(p[1], "new");
        n = kart_selector_wait(s, ev, 8, 1000 * KT_MS);
        ck_assert_int_eq(n, 1);
        ck_assert_ptr_eq(ev[0].data, &new_tag);
        ck_assert_int_eq(kart_selector_unregister(s, p[0]), 0);
        close(p[0]);
        close(p[1]);
    }
    kart_selector_free(s);
}
END_TEST

START_TEST(closed_while_registered_is_silent)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int sv[2], p[2];
    kt_socketpair(sv);
    kt_pipe(p);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, NULL), 0);
    ck_assert_int_eq(kart_selector_register(s, p[0], KART_READABLE, NULL), 0);
    int num = sv[0];
    close(sv[0]); /* without unregister: the user's mistake */
    close(sv[1]);
    /* A wait neither fails nor spins nor reports the dead fd. */
    int64_t t0 = kart_now_ns();
    kart_event ev[4];
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 30 * KT_MS), 0);
    ck_assert_int_ge(kart_now_ns() - t0, 30 * KT_MS);
    kt_write(p[1], "x");
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 1000 * KT_MS), 1);
    ck_assert_int_eq(ev[0].fd, p[0]);
    /* The number stays taken until it is unregistered. */
    ck_assert_int_eq(kart_selector_unregister(s, num), 0);
    kart_selector_free(s);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(more_ready_than_max_loses_nothing)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    enum { N = 40 };
    int sv[N][2];
    for (int i = 0; i < N; i++) {
        kt_socketpair(sv[i]);
        ck_assert_int_eq(kart_selector_register(s, sv[i][0], KART_READABLE | KART_ONESHOT, NULL),
                         0);
        kt_write(sv[i][1], "r");
    }
    int seen[N] = {0}, total = 0;
    for (int w = 0; w < 20 && total < N; w++) {
        kart_event ev[3];
        int n = kart_selector_wait(s, ev, 3, 1000 * KT_MS);
        ck_assert_int_gt(n, 0);
        ck_assert_int_le(n, 3);
        for (int k = 0; k < n; k++)
            for (int i = 0; i < N; i++)
                if (ev[k].fd == sv[i][0]) {
                    ck_assert_int_eq(seen[i]++, 0);
                    total++;
                }
    }
    ck_assert_int_eq(total, N);
    kart_event ev[3];
    ck_assert_int_eq(kart_selector_wait(s, ev, 3, 0), 0);
    for (int i = 0; i < N; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
    kart_selector_free(s);
}
END_TEST

START_TEST(timeouts_zero_and_positive)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    kart_event ev[1];
    ck_assert_int_eq(kart_selector_wait(s, ev, 1, 0), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_selector_wait(s, ev, 1, 25 * KT_MS), 0);
    ck_assert_int_ge(kart_now_ns() - t0, 25 * KT_MS);
    t0 = kart_now_ns();
    ck_assert_int_eq(kart_selector_wait(s, ev, 1, 300000), 0); /* 0.3 ms */
    ck_assert_int_ge(kart_now_ns() - t0, 300000);
    kart_selector_free(s);
}
END_TEST

static void on_alarm(int sig)
{
    (void)sig;
}

START_TEST(eintr_never_surfaces)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_interval = {0, 5000}, .it_value = {0, 5000}};
    setitimer(ITIMER_REAL, &it, NULL);
    kart_event ev[1];
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_selector_wait(s, ev, 1, 60 * KT_MS), 0);
    ck_assert_int_ge(kart_now_ns() - t0, 60 * KT_MS);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    kart_selector_free(s);
}
END_TEST

static void *wake_later(void *arg)
{
    usleep(20000);
    kart_selector_wake(arg);
    return NULL;
}

START_TEST(wake_from_another_thread)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    pthread_t t;
    pthread_create(&t, NULL, wake_later, s);
    kart_event ev[1];
    ck_assert_int_eq(kart_selector_wait(s, ev, 1, -1), 0);
    pthread_join(t, NULL);
    /* Wakes coalesce and are consumed: the next wait times out. */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(kart_selector_wake(s), 0);
    ck_assert_int_eq(kart_selector_wait(s, ev, 1, -1), 0);
    ck_assert_int_eq(kart_selector_wait(s, ev, 1, 10 * KT_MS), 0);
    ck_assert_int_eq(kart_selector_count(s), 0);
    kart_selector_free(s);
}
END_TEST

/* ---- the randomized cross-backend test ---- */

enum { RND_PAIRS = 12, RND_STEPS = 600 };

/* Runs a seeded sequence of operations on one backend and hashes the
 * sequence of (step, pair, events) it observes. */
static uint64_t random_trace(const char *backend, unsigned seed, int *nevents)
{
    kart_selector *s = open_sel(backend);
    int sv[RND_PAIRS][2];
    uint32_t reg[RND_PAIRS] = {0};
    for (int i = 0; i < RND_PAIRS; i++)
        kt_socketpair(sv[i]);
    uint64_t h = 1469598103934665603ull;
    *nevents = 0;
    for (int step = 0; step < RND_STEPS; step++) {
        int i = rand_r(&seed) % RND_PAIRS;
        uint32_t want = (uint32_t)(1 + rand_r(&seed) % 3); /* R, W or RW */
        if (rand_r(&seed) % 4 == 0)
            want |= KART_ONESHOT;
        switch (rand_r(&seed) % 6) {
        case 0:
            if (!reg[i]) {
                ck_assert_int_eq(kart_selector_register(s, sv[i][0], want, &sv[i]), 0);
                reg[i] = want;
            } else {
                ck_assert_int_eq(kart_selector_register(s, sv[i][0], want, &sv[i]), -EEXIST);
            }
            break;
        case 1:
            ck_assert_int_eq(kart_selector_modify(s, sv[i][0], want, &sv[i]), reg[i] ? 0 : -ENOENT);
            if (reg[i])
                reg[i] = want;
            break;
        case 2:
            ck_assert_int_eq(kart_selector_unregister(s, sv[i][0]), reg[i] ? 0 : -ENOENT);
            reg[i] = 0;
            break;
        case 3:
            kt_write(sv[i][1], "data");
            break;
        case 4: {
            char b[3];
            (void)!read(sv[i][0], b, sizeof(b));
            break;
        }
        case 5: {
            /* Fill or drain the send buffer to flip writability. */
            char b[65536] = {0};
            if (rand_r(&seed) % 2)
                while (write(sv[i][0], b, sizeof(b)) > 0)
                    ;
            else
                kt_drain(sv[i][1]);
            break;
        }
        }
        kart_event ev[RND_PAIRS];
        int n = kart_selector_wait(s, ev, RND_PAIRS, 0);
        ck_assert_int_ge(n, 0);
        uint32_t got[RND_PAIRS] = {0};
        for (int k = 0; k < n; k++) {
            int j = (int)((int(*)[2])ev[k].data - sv);
            ck_assert_int_eq(ev[k].fd, sv[j][0]);
            ck_assert_uint_eq(got[j], 0); /* one entry per fd */
            got[j] = ev[k].events;
            (*nevents)++;
        }
        for (int j = 0; j < RND_PAIRS; j++) {
            h = (h ^ (uint64_t)(step * 64 + j)) * 1099511628211ull;
            h = (h ^ got[j]) * 1099511628211ull;
        }
    }
    for (int i = 0; i < RND_PAIRS; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
    kart_selector_free(s);
    return h;
}

START_TEST(random_sequences_agree_across_backends)
{
    for (unsigned seed = 1; seed <= 5; seed++) {
        uint64_t first = 0;
        const char *first_name = NULL;
        for (const char *const *b = kart_backends(); *b; b++) {
            if (kart_backend_probe(*b) != 0)
                continue;
            int nev;
            uint64_t h = random_trace(*b, seed, &nev);
            ck_assert_int_gt(nev, 50); /* the sequence really produced events */
            if (!first_name) {
                first = h;
                first_name = *b;
            } else if (h != first) {
                ck_abort_msg("seed %u: %s and %s saw different events", seed, first_name, *b);
            }
        }
    }
}
END_TEST

/* ---- kart_poll and kart_select ---- */

START_TEST(poll_call_reports_each_entry)
{
    int sv[2], p[2];
    kt_socketpair(sv);
    kt_pipe(p);
    kart_pollfd fds[4] = {{sv[0], KART_READABLE, 99},
                          {sv[1], KART_WRITABLE, 0},
                          {-1, KART_READABLE, 7},
                          {p[0], KART_READABLE, 0}};
    ck_assert_int_eq(kart_poll(fds, 4, 0), 1);
    ck_assert_uint_eq(fds[0].revents, 0);
    ck_assert_uint_eq(fds[1].revents, KART_WRITABLE);
    ck_assert_uint_eq(fds[2].revents, 0);
    kt_write(sv[1], "x");
    close(p[1]);
    ck_assert_int_eq(kart_poll(fds, 4, 1000 * KT_MS), 3);
    ck_assert_uint_eq(fds[0].revents, KART_READABLE);
    ck_assert_uint_eq(fds[3].revents, KART_HANGUP);
    int closed = dup(sv[0]);
    close(closed);
    kart_pollfd bad = {closed, KART_READABLE, 0};
    ck_assert_int_eq(kart_poll(&bad, 1, 0), 1);
    ck_assert_uint_eq(bad.revents, KART_ERROR);
    ck_assert_int_eq(kart_poll(NULL, 0, 0), 0);
    ck_assert_int_eq(kart_poll(NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_poll(fds, (size_t)INT_MAX + 1, 0), -EINVAL);
    kart_pollfd weird = {sv[0], KART_EDGE, 0};
    ck_assert_int_eq(kart_poll(&weird, 1, 0), -EINVAL);
    int64_t t0 = kart_now_ns();
    fds[0].events = KART_PRIORITY;
    ck_assert_int_eq(kart_poll(fds, 1, 20 * KT_MS), 0);
    ck_assert_int_ge(kart_now_ns() - t0, 20 * KT_MS);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
}
END_TEST

START_TEST(select_call_compacts_ready_fds)
{
    int a[2], b[2];
    kt_socketpair(a);
    kt_socketpair(b);
    int r[2] = {a[0], b[0]}, w[1] = {a[1]}, x[1] = {b[0]};
    size_t nr = 2, nw = 1, nx = 1;
    kt_write(b[1], "x");
    ck_assert_int_eq(kart_select(r, &nr, w, &nw, x, &nx, 1000 * KT_MS), 2);
    ck_assert_int_eq(nr, 1);
    ck_assert_int_eq(r[0], b[0]);
    ck_assert_int_eq(nw, 1);
    ck_assert_int_eq(nx, 0);
    /* Nothing ready: all counts drop to 0 after the timeout. */
    kt_drain(b[0]);
    int r2[1] = {b[0]};
    size_t n2 = 1;
    ck_assert_int_eq(kart_select(r2, &n2, NULL, NULL, NULL, NULL, 10 * KT_MS), 0);
    ck_assert_int_eq(n2, 0);
    /* Errors leave the arrays untouched. */
    int closed = dup(a[0]);
    close(closed);
    int r3[2] = {a[0], closed};
    size_t n3 = 2;
    ck_assert_int_eq(kart_select(r3, &n3, NULL, NULL, NULL, NULL, 0), -EBADF);
    ck_assert_int_eq(n3, 2);
    ck_assert_int_eq(r3[1], closed);
    int r4[1] = {-5};
    size_t n4 = 1;
    ck_assert_int_eq(kart_select(r4, &n4, NULL, NULL, NULL, NULL, 0), -EBADF);
    size_t huge = (size_t)INT_MAX / 3 + 1;
    ck_assert_int_eq(kart_select(r4, &huge, NULL, NULL, NULL, NULL, 0), -EINVAL);
    size_t one = 1;
    ck_assert_int_eq(kart_select(NULL, &one, NULL, NULL, NULL, NULL, 0), -EINVAL);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}
END_TEST

START_TEST(select_call_has_no_fd_setsize_limit)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 2 * FD_SETSIZE) {
        KART_SKIP("RLIMIT_NOFILE max %lu is under 2 * FD_SETSIZE", (unsigned long)rl.rlim_max);
    }
    rl.rlim_cur = 2 * FD_SETSIZE;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int sv[2];
    kt_socketpair(sv);
    int high = FD_SETSIZE + 100;
    ck_assert_int_eq(dup2(sv[0], high), high);
    kt_write(sv[1], "x");
    int r[1] = {high};
    size_t nr = 1;
    ck_assert_int_eq(kart_select(r, &nr, NULL, NULL, NULL, NULL, 1000 * KT_MS), 1);
    ck_assert_int_eq(r[0], high);
    kart_pollfd pf = {high, KART_READABLE, 0};
    ck_assert_int_eq(kart_poll(&pf, 1, 0), 1);
    close(high);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* ---- kart_poll/kart_select interrupted by signals ---- */

/* A thread sends SIGUSR1 to the waiting thread every 3 ms until told to
 * stop (or 2.5 s have passed); the handler is installed without SA_RESTART,
 * so each signal interrupts ppoll with EINTR. */
static _Atomic int sig_hits;
static _Atomic int sig_stop;
static pthread_t sig_target;

static void count_sig(int sig)
{
    (void)sig;
    sig_hits++;
}

static void *sig_pelter(void *arg)
{
    (void)arg;
    int64_t end = kart_now_ns() + 2500 * KT_MS;
    while (!sig_stop && kart_now_ns() < end) {
        pthread_kill(sig_target, SIGUSR1);
        struct timespec ts = {0, 3 * 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void pelt_start(pthread_t *t, struct sigaction *old)
{
    struct sigaction sa = {.sa_handler = count_sig}; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, old), 0);
    sig_hits = 0;
    sig_stop = 0;
    sig_target = pthread_self();
    ck_assert_int_eq(pthread_create(t, NULL, sig_pelter, NULL), 0);
    /* On a loaded machine a new thread may not run for a while: the wait
     * under test starts only once the signals do. */
    int64_t give_up = kart_now_ns() + 5000 * KT_MS;
    while (sig_hits == 0 && kart_now_ns() < give_up)
        sched_yield();
    ck_assert_int_gt(sig_hits, 0);
}

static void pelt_stop(pthread_t t, const struct sigaction *old)
{
    sig_stop = 1;
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(sigaction(SIGUSR1, old, NULL), 0);
}

/* A 200 ms wait interrupted every few ms: restarted with the time left, it
 * ends after 200 ms (plus scheduling); restarted with the full timeout it
 * would run until the signals stop (2.5 s). */
#define PELT_TIMEOUT (200 * KT_MS)
#define PELT_BOUND (1500 * KT_MS)

START_TEST(poll_call_keeps_its_deadline_under_signals)
{
    int p[2];
    kt_pipe(p);
    kart_pollfd fds[2] = {{p[0], KART_READABLE, 99}, {-1, KART_READABLE, 7}};
    pthread_t t;
    struct sigaction old;
    pelt_start(&t, &old);
    int64_t t0 = kart_now_ns();
    int r = kart_poll(fds, 2, PELT_TIMEOUT);
    int64_t took = kart_now_ns() - t0;
    int hits = sig_hits;
    pelt_stop(t, &old);
    ck_assert_int_eq(r, 0); /* the timeout: nothing ready, never -EINTR */
    ck_assert_uint_eq(fds[0].revents, 0);
    ck_assert_uint_eq(fds[1].revents, 0);
    ck_assert_int_ge(took, PELT_TIMEOUT);
    ck_assert_msg(took < PELT_BOUND, "a 200 ms kart_poll took %lld ms under %d signals",
                  (long long)(took / KT_MS), hits);
    ck_assert_int_ge(hits, 2); /* it was interrupted (the first hit came before) */
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(select_call_keeps_its_deadline_under_signals)
{
    int p[2];
    kt_pipe(p);
    int r[1] = {p[0]}, x[1] = {p[0]};
    size_t nr = 1, nw = 0, nx = 1;
    pthread_t t;
    struct sigaction old;
    pelt_start(&t, &old);
    int64_t t0 = kart_now_ns();
    int n = kart_select(r, &nr, NULL, &nw, x, &nx, PELT_TIMEOUT);
    int64_t took = kart_now_ns() - t0;
    int hits = sig_hits;
    pelt_stop(t, &old);
    ck_assert_int_eq(n, 0); /* the timeout: every count 0, never -EINTR */
    ck_assert_uint_eq(nr, 0);
    ck_assert_uint_eq(nw, 0);
    ck_assert_uint_eq(nx, 0);
    ck_assert_int_ge(took, PELT_TIMEOUT);
    ck_assert_msg(took < PELT_BOUND, "a 200 ms kart_select took %lld ms under %d signals",
                  (long long)(took / KT_MS), hits);
    ck_assert_int_ge(hits, 2);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- the registration map and the selector's own fd ---- */

START_TEST(registration_map_walks_in_fd_order)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int sv[2], p[2], tags[3];
    kt_socketpair(sv);
    kt_pipe(p);
    kart_event e;
    ck_assert_int_eq(kart_selector_next(s, -1, &e), 0);
    ck_assert_int_eq(kart_selector_register(s, p[1], KART_WRITABLE, &tags[2]), 0);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, &tags[0]), 0);
    ck_assert_int_eq(kart_selector_register(s, sv[1], KART_READABLE | KART_WRITABLE, &tags[1]), 0);
    int seen[3], n = 0;
    for (int fd = -1; kart_selector_next(s, fd, &e) == 1; fd = e.fd) {
        ck_assert_int_lt(n, 3);
        seen[n++] = e.fd;
        if (e.fd == sv[0]) {
            ck_assert_uint_eq(e.events, KART_READABLE);
            ck_assert_ptr_eq(e.data, &tags[0]);
        } else if (e.fd == sv[1]) {
            ck_assert_uint_eq(e.events, KART_READABLE | KART_WRITABLE);
            ck_assert_ptr_eq(e.data, &tags[1]);
        } else {
            ck_assert_int_eq(e.fd, p[1]);
            ck_assert_uint_eq(e.events, KART_WRITABLE);
            ck_assert_ptr_eq(e.data, &tags[2]);
        }
    }
    /* Every registration once, in increasing order; the selector's own
     * wake-up fd is not among them. */
    ck_assert_int_eq(n, kart_selector_count(s));
    ck_assert_int_lt(seen[0], seen[1]);
    ck_assert_int_lt(seen[1], seen[2]);
    /* Unregistered during the walk: not seen when reached. */
    ck_assert_int_eq(kart_selector_next(s, -1, &e), 1);
    ck_assert_int_eq(kart_selector_unregister(s, seen[1]), 0);
    ck_assert_int_eq(kart_selector_next(s, e.fd, &e), 1);
    ck_assert_int_eq(e.fd, seen[2]);
    ck_assert_int_eq(kart_selector_next(s, e.fd, &e), 0);
    ck_assert_int_eq(kart_selector_next(s, 1 << 20, &e), 0);
    ck_assert_int_eq(kart_selector_next(NULL, -1, &e), -EINVAL);
    ck_assert_int_eq(kart_selector_next(s, -1, NULL), -EINVAL);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* Whether fd is readable within ms, by poll(2): the outer loop's view. */
static bool outer_readable(int fd, int ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&pfd, 1, ms)) < 0 && errno == EINTR)
        ;
    ck_assert_int_ge(n, 0);
    return n == 1 && (pfd.revents & POLLIN);
}

START_TEST(fileno_nests_the_selector_in_another_loop)
{
    KT_BACKEND_OR_SKIP(_i);
    kart_selector *s = open_sel(backend);
    int fd = kart_selector_fileno(s);
    if (strcmp(backend, "poll") == 0 || strcmp(backend, "select") == 0) {
        ck_assert_int_eq(fd, -ENOTSUP);
        kart_selector_free(s);
        return;
    }
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(kart_selector_fileno(s), fd);
    int sv[2], tag;
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, &tag), 0);
    ck_assert(!outer_readable(fd, 20));
    kt_write(sv[1], "ping");
    ck_assert(outer_readable(fd, 1000));
    ck_assert_uint_eq(events_for(s, sv[0], 0), KART_READABLE);
    /* Level-triggered: still ready, still readable for the outer loop. */
    ck_assert(outer_readable(fd, 1000));
    ck_assert_uint_eq(events_for(s, sv[0], 0), KART_READABLE);
    ck_assert_int_eq(kt_drain(sv[0]), 4);
    ck_assert_uint_eq(events_for(s, sv[0], 0), 0);
    ck_assert(!outer_readable(fd, 20));
    /* A wake-up makes it readable too; the wait then reports nothing. */
    ck_assert_int_eq(kart_selector_wake(s), 0);
    ck_assert(outer_readable(fd, 1000));
    ck_assert_uint_eq(events_for(s, sv[0], 0), 0);
    /* A registration of an fd that is ready already shows at once. */
    int p[2], tag2;
    kt_pipe(p);
    kt_write(p[1], "x");
    ck_assert_int_eq(kart_selector_register(s, p[0], KART_READABLE, &tag2), 0);
    ck_assert(outer_readable(fd, 1000));
    ck_assert_uint_eq(events_for(s, p[0], 0), KART_READABLE);
    ck_assert_int_eq(kart_selector_unregister(s, p[0]), 0);
    ck_assert_int_eq(kart_selector_fileno(NULL), -EINVAL);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}
END_TEST

static void nested_cb(kart_watch *w, uint32_t events)
{
    kart_selector *inner = w->base.data;
    (void)events;
    kart_event ev[4];
    int n = kart_selector_wait(inner, ev, 4, 0);
    if (n > 0)
        kart_watch_stop(w); /* the inner selector reported: done */
}

/* Nested in a kart loop (epoll), as Python nests a
 * selector in asyncio through its fileno(). */
START_TEST(fileno_in_a_kart_loop)
{
    KT_BACKEND_OR_SKIP(_i);
    if (strcmp(backend, "poll") == 0 || strcmp(backend, "select") == 0)
        return;
    kart_selector *s = open_sel(backend);
    int sv[2], tag;
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, &tag), 0);
    kart_loop *loop;
    kart_loop_options lo = {.selector = {.backend = "epoll"}};
    ck_assert_int_eq(kart_loop_create(&loop, &lo), 0);
    kart_watch w;
    ck_assert_int_eq(kart_watch_init(loop, &w, kart_selector_fileno(s)), 0);
    w.base.data = s;
    ck_assert_int_eq(kart_watch_start(&w, KART_READABLE, nested_cb), 0);
    kt_write(sv[1], "ping");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(kart_handle_is_active(&w.base), 0);
    kart_loop_free(loop);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

int main(void)
{
    kt_print_backends();
    int nb = kt_nbackends();
    Suite *s = suite_create("selector");
    TCase *tc = tcase_create("create");
    tcase_add_test(tc, create_rejects_bad_arguments);
    tcase_add_test(tc, default_backend_is_the_best_that_starts);
    tcase_add_test(tc, probe_does_not_interrupt_the_caller);
    tcase_add_loop_test(tc, env_forces_backend, 0, nb);
    suite_add_tcase(s, tc);

    tc = tcase_create("conformance");
    tcase_add_loop_test(tc, register_errors, 0, nb);
    tcase_add_loop_test(tc, modify_unregister_get_errors, 0, nb);
    tcase_add_loop_test(tc, level_triggered_reports_until_drained, 0, nb);
    tcase_add_loop_test(tc, writable_and_readable_together, 0, nb);
    tcase_add_loop_test(tc, edge_triggered_reports_only_new_readiness, 0, nb);
    tcase_add_loop_test(tc, oneshot_reports_once_until_modified, 0, nb);
    tcase_add_loop_test(tc, peer_half_close_and_close, 0, nb);
    tcase_add_loop_test(tc, pipe_writer_closed_is_hangup, 0, nb);
    tcase_add_loop_test(tc, refused_connect_is_error, 0, nb);
    tcase_add_loop_test(tc, priority_data_reported, 0, nb);
    tcase_add_loop_test(tc, exclusive_listener_reports_connections, 0, nb);
    tcase_add_loop_test(tc, unregistered_fd_reused_delivers_no_stale_event, 0, nb);
    tcase_add_loop_test(tc, closed_while_registered_is_silent, 0, nb);
    tcase_add_loop_test(tc, more_ready_than_max_loses_nothing, 0, nb);
    tcase_add_loop_test(tc, timeouts_zero_and_positive, 0, nb);
    tcase_add_loop_test(tc, eintr_never_surfaces, 0, nb);
    tcase_add_loop_test(tc, wake_from_another_thread, 0, nb);
    tcase_add_test(tc, random_sequences_agree_across_backends);
    tcase_add_loop_test(tc, registration_map_walks_in_fd_order, 0, nb);
    tcase_add_loop_test(tc, fileno_nests_the_selector_in_another_loop, 0, nb);
    tcase_add_loop_test(tc, fileno_in_a_kart_loop, 0, nb);
    suite_add_tcase(s, tc);

    tc = tcase_create("calls");
    tcase_add_test(tc, poll_call_reports_each_entry);
    tcase_add_test(tc, select_call_compacts_ready_fds);
    tcase_add_test(tc, select_call_has_no_fd_setsize_limit);
    tcase_add_test(tc, poll_call_keeps_its_deadline_under_signals);
    tcase_add_test(tc, select_call_keeps_its_deadline_under_signals);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

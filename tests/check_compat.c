/* Description: what is particular to the select(2) and poll(2) backends —
 * the FD_SETSIZE limit, fds closed behind the selector's back, hang-up and
 * error bits that select(2) cannot see by itself, and fairness when more
 * fds are ready than a wait can take. The cases every backend shares live
 * in check_selector.c. */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <time.h>

/* The backends this file is about; loop tests index it. */
static const char *const compat_backends[] = {"select", "poll"};

static kart_selector *open_selector(const char *backend)
{
    kart_selector *sel = NULL;
    kart_selector_options o = {.backend = backend};
    int err = kart_selector_create(&sel, &o);
    ck_assert_msg(err == 0, "%s: %s", backend, kart_strerror(err));
    ck_assert_str_eq(kart_selector_backend(sel), backend);
    return sel;
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits ms milliseconds on a selector that has nothing to report: the wait
 * returns 0, not before its timeout, and without spinning. A spinning wait
 * burns CPU time close to its wall time; a quiet one burns next to none, so
 * half the wait is a bound a loaded machine can only make easier to meet. */
static void wait_quietly(kart_selector *sel, int ms)
{
    kart_event ev[4];
    int64_t t0 = kart_now_ns(), c0 = cpu_ns();
    int n = kart_selector_wait(sel, ev, 4, ms * KT_MS);
    int64_t wall = kart_now_ns() - t0, cpu = cpu_ns() - c0;
    ck_assert_msg(n == 0, "wait returned %d (%s) fd %d", n, n < 0 ? kart_strerror(n) : "",
                  n > 0 ? ev[0].fd : -1);
    ck_assert_int_ge(wall, ms * KT_MS);
    ck_assert_msg(cpu < ms * KT_MS / 2, "wait spun: %lld ns of CPU in %lld ns", (long long)cpu,
                  (long long)wall);
}

/* Waits (up to 2 s) for exactly one event, on fd, and returns its bits. */
static uint32_t wait_one(kart_selector *sel, int fd)
{
    kart_event ev[4];
    int n = kart_selector_wait(sel, ev, 4, 2000 * KT_MS);
    ck_assert_msg(n == 1, "%s: wait returned %d", kart_selector_backend(sel), n);
    ck_assert_int_eq(ev[0].fd, fd);
    return ev[0].events;
}

/* ---- FD_SETSIZE ---- */

/* Makes fd number `at` a copy of fd, raising RLIMIT_NOFILE as needed.
 * Returns false (and says why) when this process may not go that high. */
static bool dup_high(int fd, int at)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur <= (rlim_t)at) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= (rlim_t)at) {
            kt_skip_print_(__func__, "fd %d needs RLIMIT_NOFILE above %d, hard limit is %llu", at,
                           at, (unsigned long long)rl.rlim_max);
            return false;
        }
        rl.rlim_cur = (rlim_t)at + 1;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    ck_assert_int_eq(dup2(fd, at), at);
    return true;
}

START_TEST(select_refuses_fds_from_fd_setsize)
{
    int sv[2];
    kt_socketpair(sv);
    if (!dup_high(sv[0], FD_SETSIZE) || !dup_high(sv[0], FD_SETSIZE - 1))
        return;
    kart_selector *sel = open_selector("select");
    ck_assert_uint_eq(kart_selector_caps(sel), KART_CAP_FDSET_LIMIT);

    ck_assert_int_eq(kart_selector_register(sel, FD_SETSIZE, KART_READABLE, NULL), -ERANGE);
    ck_assert_int_eq(kart_selector_register(sel, FD_SETSIZE, KART_WRITABLE, NULL), -ERANGE);
    ck_assert_int_eq(kart_selector_count(sel), 0);
    /* Refused means not registered: modify and unregister say so. */
    ck_assert_int_eq(kart_selector_modify(sel, FD_SETSIZE, KART_READABLE, NULL), -ENOENT);
    ck_assert_int_eq(kart_selector_unregister(sel, FD_SETSIZE), -ENOENT);

    /* The last fd below the limit works, and modify keeps it in range. */
    ck_assert_int_eq(kart_selector_register(sel, FD_SETSIZE - 1, KART_WRITABLE, NULL), 0);
    ck_assert_uint_eq(wait_one(sel, FD_SETSIZE - 1), KART_WRITABLE);
    ck_assert_int_eq(kart_selector_modify(sel, FD_SETSIZE - 1, KART_READABLE, NULL), 0);
    kt_write(sv[1], "x");
    ck_assert_uint_eq(wait_one(sel, FD_SETSIZE - 1), KART_READABLE);
    kart_selector_free(sel);

    /* poll(2) has no such limit. */
    sel = open_selector("poll");
    ck_assert_uint_eq(kart_selector_caps(sel) & KART_CAP_FDSET_LIMIT, 0);
    ck_assert_int_eq(kart_selector_register(sel, FD_SETSIZE, KART_READABLE, NULL), 0);
    ck_assert_uint_eq(wait_one(sel, FD_SETSIZE), KART_READABLE);
    kart_selector_free(sel);
    close(FD_SETSIZE);
    close(FD_SETSIZE - 1);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* ---- Fds closed while registered ---- */

START_TEST(closed_fd_does_not_break_wait)
{
    const char *backend = compat_backends[_i];
    kart_selector *sel = open_selector(backend);
    int a[2], b[2], p[2];
    kt_socketpair(a);
    kt_socketpair(b);
    kt_pipe(p); /* before the close, so that it cannot take the number */
    int dead = a[0];
    ck_assert_int_eq(kart_selector_register(sel, dead, KART_READABLE, NULL), 0);
    ck_assert_int_eq(kart_selector_register(sel, b[0], KART_READABLE, NULL), 0);
    close(dead);

    /* select(2) would fail with EBADF and poll(2) report POLLNVAL at once:
     * neither may surface or spin. Twice, to show the fd stays silent. */
    wait_quietly(sel, 50);
    wait_quietly(sel, 50);

    kt_write(b[1], "x");
    ck_assert_uint_eq(wait_one(sel, b[0]), KART_READABLE);
    kt_drain(b[0]);

    /* Modify watches the number again: here it names a new, ready pipe. */
    ck_assert_int_eq(dup2(p[0], dead), dead);
    kt_write(p[1], "y");
    ck_assert_int_eq(kart_selector_modify(sel, dead, KART_READABLE, NULL), 0);
    ck_assert_uint_eq(wait_one(sel, dead), KART_READABLE);

    ck_assert_int_eq(kart_selector_unregister(sel, dead), 0);
    wait_quietly(sel, 20);
    kart_selector_free(sel);
    close(dead);
    close(p[0]);
    close(p[1]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}
END_TEST

START_TEST(closed_fd_can_be_unregistered)
{
    const char *backend = compat_backends[_i];
    kart_selector *sel = open_selector(backend);
    int a[2], p[2];
    kt_socketpair(a);
    kt_pipe(p);
    ck_assert_int_eq(kart_selector_register(sel, a[0], KART_READABLE | KART_WRITABLE, NULL), 0);
    close(a[0]);
    wait_quietly(sel, 20);
    ck_assert_int_eq(kart_selector_unregister(sel, a[0]), 0);
    ck_assert_int_eq(kart_selector_count(sel), 0);
    /* The number is free for a new registration, which reports. */
    ck_assert_int_eq(dup2(p[1], a[0]), a[0]);
    ck_assert_int_eq(kart_selector_register(sel, a[0], KART_WRITABLE, NULL), 0);
    ck_assert_uint_eq(wait_one(sel, a[0]), KART_WRITABLE);
    kart_selector_free(sel);
    close(a[0]);
    close(a[1]);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* A reported one-shot is in no set: it neither reports nor wakes the wait. */
START_TEST(disarmed_oneshot_does_not_spin)
{
    const char *backend = compat_backends[_i];
    kart_selector *sel = open_selector(backend);
    int sv[2];
    kt_socketpair(sv);
    kt_write(sv[1], "x");
    ck_assert_int_eq(kart_selector_register(sel, sv[0], KART_READABLE | KART_ONESHOT, NULL), 0);
    ck_assert_uint_eq(wait_one(sel, sv[0]), KART_READABLE);
    wait_quietly(sel, 100);
    ck_assert_int_eq(kart_selector_modify(sel, sv[0], KART_READABLE | KART_ONESHOT, NULL), 0);
    ck_assert_uint_eq(wait_one(sel, sv[0]), KART_READABLE);
    kart_selector_free(sel);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* ---- Hang-up, error and read hang-up: select must match poll ---- */

/* Registers fd for events on a select and a poll selector, checks that
 * both report the same bits, and returns them. */
static uint32_t same_on_both(int fd, uint32_t events)
{
    uint32_t got[2];
    for (int i = 0; i < 2; i++) {
        kart_selector *sel = open_selector(compat_backends[i]);
        ck_assert_int_eq(kart_selector_register(sel, fd, events, NULL), 0);
        got[i] = wait_one(sel, fd);
        kart_selector_free(sel);
    }
    ck_assert_msg(got[0] == got[1], "select reports %#x, poll %#x", got[0], got[1]);
    return got[0];
}

START_TEST(peer_shutdown_write_is_rdhup)
{
    int sv[2];
    kt_socketpair(sv);
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    ck_assert_uint_eq(same_on_both(sv[0], KART_READABLE), KART_READABLE | KART_RDHUP);
    ck_assert_uint_eq(same_on_both(sv[0], KART_READABLE | KART_WRITABLE),
                      KART_READABLE | KART_WRITABLE | KART_RDHUP);
    /* Without KART_READABLE there is no RDHUP, and nothing else to say. */
    ck_assert_uint_eq(same_on_both(sv[0], KART_WRITABLE), KART_WRITABLE);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(peer_close_is_hangup)
{
    int sv[2];
    kt_socketpair(sv);
    kt_write(sv[1], "left over");
    close(sv[1]);
    ck_assert_uint_eq(same_on_both(sv[0], KART_READABLE), KART_READABLE | KART_HANGUP | KART_RDHUP);
    uint32_t ev = same_on_both(sv[0], KART_WRITABLE);
    ck_assert_uint_eq(ev & (KART_HANGUP | KART_RDHUP | KART_READABLE), KART_HANGUP);
    close(sv[0]);
}
END_TEST

START_TEST(pipe_writer_closed_is_hangup)
{
    int p[2];
    kt_pipe(p);
    close(p[1]);
    /* Nothing left to read: a hang-up, not readable data (as poll(2)). */
    ck_assert_uint_eq(same_on_both(p[0], KART_READABLE), KART_HANGUP);
    close(p[0]);

    kt_pipe(p);
    kt_write(p[1], "left over");
    close(p[1]);
    ck_assert_uint_eq(same_on_both(p[0], KART_READABLE), KART_READABLE | KART_HANGUP);
    close(p[0]);
}
END_TEST

START_TEST(pipe_reader_closed_is_error)
{
    int p[2];
    kt_pipe(p);
    close(p[0]);
    uint32_t ev = same_on_both(p[1], KART_WRITABLE);
    ck_assert_uint_ne(ev & KART_ERROR, 0);
    close(p[1]);
}
END_TEST

/* A TCP socket bound to an ephemeral loopback port; listening if asked. */
static int tcp_bound(struct sockaddr_in *addr, bool listening)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s, 0);
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)addr, sizeof(*addr)), 0);
    socklen_t len = sizeof(*addr);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)addr, &len), 0);
    if (listening)
        ck_assert_int_eq(listen(s, 4), 0);
    return s;
}

START_TEST(tcp_connection_refused_is_error)
{
    /* A bound port with no listener answers a SYN with a reset. */
    struct sockaddr_in addr;
    int bound = tcp_bound(&addr, false);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c, 0);
    int r = connect(c, (struct sockaddr *)&addr, sizeof(addr));
    ck_assert_int_eq(r, -1);
    ck_assert_msg(errno == EINPROGRESS || errno == ECONNREFUSED, "connect: %s", strerror(errno));
    /* On loopback the reset may be seen before connect returns; then
     * connect reports the error itself and the socket no longer holds it. */
    bool pending = errno == EINPROGRESS;
    uint32_t ev = same_on_both(c, KART_WRITABLE);
    ck_assert_uint_ne(ev & KART_HANGUP, 0);
    ck_assert_uint_eq(ev & KART_ERROR, pending ? KART_ERROR : 0);
    close(c);
    close(bound);
}
END_TEST

START_TEST(tcp_connection_reset_is_error)
{
    struct sockaddr_in addr;
    int lsn = tcp_bound(&addr, true);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int s = accept(lsn, NULL, NULL);
    ck_assert_int_ge(s, 0);
    /* Closing with a zero linger time sends a reset rather than a FIN. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ck_assert_int_eq(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(c);
    ck_assert_uint_eq(same_on_both(s, KART_READABLE),
                      KART_READABLE | KART_HANGUP | KART_ERROR | KART_RDHUP);
    close(s);
    close(lsn);
}
END_TEST

/* ---- Fairness ---- */

START_TEST(every_ready_fd_gets_its_turn)
{
    enum { NFD = 100, MAX = 10 };
    const char *backend = compat_backends[_i];
    kart_selector *sel = open_selector(backend);
    int p[NFD][2];
    for (int i = 0; i < NFD; i++) {
        kt_pipe(p[i]);
        kt_write(p[i][1], "x");
        ck_assert_int_eq(kart_selector_register(sel, p[i][0], KART_READABLE, &p[i]), 0);
    }
    bool seen[FD_SETSIZE] = {false};
    int distinct = 0;
    for (int round = 0; round < NFD / MAX; round++) {
        kart_event ev[MAX];
        /* Everything stays ready: nothing is read. */
        int n = kart_selector_wait(sel, ev, MAX, 0);
        ck_assert_int_eq(n, MAX);
        for (int k = 0; k < n; k++) {
            ck_assert_int_lt(ev[k].fd, FD_SETSIZE);
            ck_assert_uint_eq(ev[k].events, KART_READABLE);
            ck_assert_int_eq(((int *)ev[k].data)[0], ev[k].fd);
            if (!seen[ev[k].fd]) {
                seen[ev[k].fd] = true;
                distinct++;
            }
        }
    }
    ck_assert_msg(distinct == NFD, "%s: %d distinct fds in %d waits", backend, distinct, NFD / MAX);
    kart_selector_free(sel);
    for (int i = 0; i < NFD; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
}
END_TEST

int main(void)
{
    int nb = (int)(sizeof(compat_backends) / sizeof(compat_backends[0]));
    kt_print_backends();
    Suite *s = suite_create("compat");

    TCase *tc = tcase_create("select");
    tcase_add_test(tc, select_refuses_fds_from_fd_setsize);
    suite_add_tcase(s, tc);

    tc = tcase_create("closed");
    tcase_add_loop_test(tc, closed_fd_does_not_break_wait, 0, nb);
    tcase_add_loop_test(tc, closed_fd_can_be_unregistered, 0, nb);
    tcase_add_loop_test(tc, disarmed_oneshot_does_not_spin, 0, nb);
    suite_add_tcase(s, tc);

    tc = tcase_create("hangup");
    tcase_add_test(tc, peer_shutdown_write_is_rdhup);
    tcase_add_test(tc, peer_close_is_hangup);
    tcase_add_test(tc, pipe_writer_closed_is_hangup);
    tcase_add_test(tc, pipe_reader_closed_is_error);
    tcase_add_test(tc, tcp_connection_refused_is_error);
    tcase_add_test(tc, tcp_connection_reset_is_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("fairness");
    tcase_add_loop_test(tc, every_ready_fd_gets_its_turn, 0, nb);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

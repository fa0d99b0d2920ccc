/* Description: what only the io_uring backend can get wrong — completion
 * ring overflow, more completions than the caller's array, completions that
 * outlive a modify or an unregister, multishot re-arming, exclusive
 * wake-ups, and one io_uring_enter per wait. Every case skips, with a
 * message, where io_uring does not start. */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/wait.h>

#define KT_PAIRS 200

/* A selector on the uring backend, or NULL when io_uring cannot start here
 * (main says so once). */
static kart_selector *uring_selector(unsigned entries)
{
    if (kart_backend_probe("uring") != 0)
        return NULL;
    kart_selector *s;
    kart_selector_options o = {.backend = "uring", .uring_entries = entries};
    ck_assert_int_eq(kart_selector_create(&s, &o), 0);
    ck_assert_str_eq(kart_selector_backend(s), "uring");
    return s;
}

#define URING_OR_SKIP(s, entries)                                                                  \
    kart_selector *s = uring_selector(entries);                                                    \
    if (!s)                                                                                        \
        KART_SKIP("io_uring cannot start here");

static void need_fds(rlim_t n)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < n && rl.rlim_max >= n) {
        rl.rlim_cur = n;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    ck_assert_msg(rl.rlim_cur >= n, "RLIMIT_NOFILE below %ju", (uintmax_t)n);
}

/* No fd appears twice in one wait's results: completions are merged. */
static void assert_distinct(const kart_event *ev, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            ck_assert_int_ne(ev[i].fd, ev[j].fd);
}

START_TEST(cq_overflow_loses_nothing)
{
    /* SQ 4, CQ 8: 400 polls that complete at once overflow the ring many
     * times over. Level ends must be reported until drained (each is left
     * undrained at its first report), edge ends exactly once. */
    need_fds(2 * KT_PAIRS + 64);
    URING_OR_SKIP(s, 4);
    bool edge = kart_selector_caps(s) & KART_CAP_EDGE;
    int sv[KT_PAIRS][2], level_seen[KT_PAIRS] = {0}, edge_seen[KT_PAIRS] = {0};
    bool level_drained[KT_PAIRS] = {false};
    for (int i = 0; i < KT_PAIRS; i++) {
        kt_socketpair(sv[i]);
        kt_write(sv[i][1], "l");
        kt_write(sv[i][0], "e");
        ck_assert_int_eq(kart_selector_register(s, sv[i][0], KART_READABLE, &level_seen[i]), 0);
        ck_assert_int_eq(kart_selector_register(s, sv[i][1],
                                                KART_READABLE | (edge ? KART_EDGE : KART_ONESHOT),
                                                &edge_seen[i]),
                         0);
    }
    int done = 0;
    for (int round = 0; round < 10000 && done < 2 * KT_PAIRS; round++) {
        kart_event ev[16];
        int n = kart_selector_wait(s, ev, 16, 1000 * KT_MS);
        ck_assert_int_ge(n, 1);
        ck_assert_int_le(n, 16);
        assert_distinct(ev, n);
        for (int k = 0; k < n; k++) {
            ck_assert(ev[k].events & KART_READABLE);
            int *seen = ev[k].data;
            if (seen >= level_seen && seen < level_seen + KT_PAIRS) {
                int i = (int)(seen - level_seen);
                ck_assert_msg(!level_drained[i], "level fd reported after drain");
                if (++level_seen[i] == 2) {
                    ck_assert_int_eq(kt_drain(sv[i][0]), 1);
                    level_drained[i] = true;
                    done++;
                }
            } else {
                int i = (int)(seen - edge_seen);
                ck_assert_int_eq(++edge_seen[i], 1);
                ck_assert_int_eq(kt_drain(sv[i][1]), 1);
                done++;
            }
        }
    }
    ck_assert_int_eq(done, 2 * KT_PAIRS);
    kart_event ev[16];
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(kart_selector_wait(s, ev, 16, 0), 0);
    /* New data for every edge end: each multishot poll, including those
     * the kernel ended when the ring overflowed, reports once more. */
    for (int i = 0; i < KT_PAIRS; i++) {
        if (!edge)
            ck_assert_int_eq(
                kart_selector_modify(s, sv[i][1], KART_READABLE | KART_ONESHOT, &edge_seen[i]), 0);
        kt_write(sv[i][0], "e");
    }
    done = 0;
    for (int round = 0; round < 10000 && done < KT_PAIRS; round++) {
        int n = kart_selector_wait(s, ev, 16, 1000 * KT_MS);
        ck_assert_int_ge(n, 1);
        assert_distinct(ev, n);
        for (int k = 0; k < n; k++) {
            int i = (int)((int *)ev[k].data - edge_seen);
            ck_assert_msg(i >= 0 && i < KT_PAIRS, "a drained level fd was reported");
            ck_assert_int_eq(++edge_seen[i], 2);
            ck_assert_int_eq(kt_drain(sv[i][1]), 1);
            done++;
        }
    }
    ck_assert_int_eq(done, KT_PAIRS);
    ck_assert_int_eq(kart_selector_wait(s, ev, 16, 0), 0);
    for (int i = 0; i < KT_PAIRS; i++) {
        ck_assert_int_eq(kart_selector_unregister(s, sv[i][0]), 0);
        ck_assert_int_eq(kart_selector_unregister(s, sv[i][1]), 0);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    kart_selector_free(s);
}
END_TEST

START_TEST(max_smaller_than_ready_keeps_the_rest)
{
    URING_OR_SKIP(s, 0);
    enum { N = 10 };
    int sv[N][2], seen[N] = {0};
    for (int i = 0; i < N; i++) {
        kt_socketpair(sv[i]);
        kt_write(sv[i][1], "x");
        ck_assert_int_eq(
            kart_selector_register(s, sv[i][0], KART_READABLE | KART_ONESHOT, &seen[i]), 0);
    }
    /* One-shot: each fd completes once, so 10 completions must come out
     * 3, 3, 3, 1 and then nothing. */
    kart_event ev[3];
    int want[] = {3, 3, 3, 1};
    for (int w = 0; w < 4; w++) {
        int n = kart_selector_wait(s, ev, 3, 1000 * KT_MS);
        ck_assert_int_eq(n, want[w]);
        assert_distinct(ev, n);
        for (int k = 0; k < n; k++)
            ck_assert_int_eq(++*(int *)ev[k].data, 1);
    }
    ck_assert_int_eq(kart_selector_wait(s, ev, 3, 0), 0);
    /* Level-triggered, undrained: every fd comes back, none starves. */
    for (int i = 0; i < N; i++) {
        seen[i] = 0;
        ck_assert_int_eq(kart_selector_modify(s, sv[i][0], KART_READABLE, &seen[i]), 0);
    }
    for (int w = 0; w < 8; w++) {
        int n = kart_selector_wait(s, ev, 3, 1000 * KT_MS);
        ck_assert_int_eq(n, 3);
        for (int k = 0; k < n; k++)
            ++*(int *)ev[k].data;
    }
    for (int i = 0; i < N; i++)
        ck_assert_int_ge(seen[i], 1);
    for (int i = 0; i < N; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
    kart_selector_free(s);
}
END_TEST

START_TEST(unregister_in_flight_then_reuse_gets_no_stale_event)
{
    URING_OR_SKIP(s, 0);
    int sv[2], p[2];
    kart_event ev[4];
    kt_socketpair(sv);
    int fd = sv[0];
    ck_assert_int_eq(kart_selector_register(s, fd, KART_READABLE, NULL), 0);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0); /* the poll is armed */
    kt_write(sv[1], "x");                                 /* and now fires */
    ck_assert_int_eq(kart_selector_unregister(s, fd), 0);
    kt_pipe(p);
    close(fd);
    /* The same number now names a pipe's write end, which is never
     * readable: any READABLE is the old socket's. */
    ck_assert_int_eq(dup2(p[1], fd), fd);
    close(p[1]);
    int tag;
    ck_assert_int_eq(kart_selector_register(s, fd, KART_READABLE | KART_WRITABLE, &tag), 0);
    for (int k = 0; k < 3; k++) {
        int n = kart_selector_wait(s, ev, 4, 1000 * KT_MS);
        ck_assert_int_eq(n, 1);
        ck_assert_int_eq(ev[0].fd, fd);
        ck_assert_uint_eq(ev[0].events, KART_WRITABLE);
        ck_assert_ptr_eq(ev[0].data, &tag);
    }
    ck_assert_int_eq(kart_selector_unregister(s, fd), 0);
    close(fd);
    close(p[0]);
    close(sv[1]);
    kart_selector_free(s);
}
END_TEST

START_TEST(modify_in_flight_reports_only_the_new_registration)
{
    URING_OR_SKIP(s, 0);
    int sv[2], a, b, c;
    kart_event ev[4];
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE | KART_ONESHOT, &a), 0);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0);
    kt_write(sv[1], "x"); /* the one-shot poll fires... */
    /* ...and is replaced before its completion is reaped. */
    ck_assert_int_eq(kart_selector_modify(s, sv[0], KART_WRITABLE | KART_ONESHOT, &b), 0);
    int n = kart_selector_wait(s, ev, 4, 1000 * KT_MS);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(ev[0].events, KART_WRITABLE);
    ck_assert_ptr_eq(ev[0].data, &b);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0);
    /* Re-armed by modify, the one-shot reports again, once. */
    ck_assert_int_eq(kart_selector_modify(s, sv[0], KART_READABLE | KART_ONESHOT, &c), 0);
    n = kart_selector_wait(s, ev, 4, 1000 * KT_MS);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(ev[0].events, KART_READABLE);
    ck_assert_ptr_eq(ev[0].data, &c);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0);
    close(sv[0]);
    close(sv[1]);
    kart_selector_free(s);
}
END_TEST

START_TEST(edge_keeps_reporting_over_many_rounds)
{
    URING_OR_SKIP(s, 0);
    if (!(kart_selector_caps(s) & KART_CAP_EDGE)) {
        kt_skip_print_(__func__, "no multishot poll on this kernel");
        kart_selector_free(s);
        return;
    }
    int sv[2];
    kart_event ev[4];
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE | KART_EDGE, NULL), 0);
    for (int round = 0; round < 1000; round++) {
        kt_write(sv[1], "x");
        int n = kart_selector_wait(s, ev, 4, 1000 * KT_MS);
        ck_assert_msg(n == 1, "round %d: %d events", round, n);
        ck_assert_int_eq(ev[0].fd, sv[0]);
        ck_assert(ev[0].events & KART_READABLE);
        ck_assert_int_eq(kt_drain(sv[0]), 1);
        ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0);
    }
    close(sv[0]);
    close(sv[1]);
    kart_selector_free(s);
}
END_TEST

static void *wait_once(void *arg)
{
    kart_event ev[4];
    return (void *)(intptr_t)kart_selector_wait(arg, ev, 4, 0);
}

START_TEST(polls_outlive_the_thread_that_submitted_them)
{
    /* The kernel cancels the polls of a thread that exits once they fire
     * (-ECANCELED); the selector, now run by another thread, re-arms them
     * and loses nothing. */
    URING_OR_SKIP(s, 0);
    bool edge = kart_selector_caps(s) & KART_CAP_EDGE;
    int a[2], b[2], seen_a = 0, seen_b = 0;
    kart_event ev[4];
    kt_socketpair(a);
    kt_socketpair(b);
    ck_assert_int_eq(kart_selector_register(s, a[0], KART_READABLE, &seen_a), 0);
    ck_assert_int_eq(
        kart_selector_register(s, b[0], KART_READABLE | (edge ? KART_EDGE : KART_ONESHOT), &seen_b),
        0);
    pthread_t t;
    void *ret;
    ck_assert_int_eq(pthread_create(&t, NULL, wait_once, s), 0);
    ck_assert_int_eq(pthread_join(t, &ret), 0);
    ck_assert_int_eq((int)(intptr_t)ret, 0);
    kt_write(a[1], "x");
    kt_write(b[1], "x");
    for (int k = 0; k < 3 && !(seen_a && seen_b); k++) {
        int n = kart_selector_wait(s, ev, 4, 1000 * KT_MS);
        for (int i = 0; i < n; i++)
            ++*(int *)ev[i].data;
    }
    ck_assert_int_ge(seen_a, 1); /* level: again while undrained */
    ck_assert_int_eq(seen_b, 1);
    kart_selector_free(s);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}
END_TEST

static bool kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return false;
    return ma > major || (ma == major && mi >= minor);
}

/* In a fresh process (the capability probe runs once per process, and
 * this suite's runner has run it already): creating a loop must not
 * interrupt the creating thread's next blocking calls. The probe's ring,
 * closed on the creating thread, once made the kernel queue task work to
 * it, and the next epoll_wait returned EINTR 0-50 ms later. Returns the
 * child's exit status: 0 none interrupted, 3 one was, 77 no io_uring. */
static int eintr_child(void)
{
    kart_loop *loop;
    kart_loop_options o = {.selector = {.backend = "uring"}};
    if (kart_loop_create(&loop, &o) != 0)
        return 77;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev;
    int interrupted = 0;
    for (int i = 0; i < 6 && ep >= 0; i++)
        if (epoll_wait(ep, &ev, 1, 30) < 0 && errno == EINTR)
            interrupted++;
    kart_loop_free(loop);
    return interrupted ? 3 : 0;
}

START_TEST(creating_a_loop_interrupts_nothing)
{
    char *const argv[] = {"check_uring", NULL};
    char *const envp[] = {"KT_URING_EINTR_CHILD=1", NULL};
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, envp), 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st), "child status %#x", st);
    if (WEXITSTATUS(st) == 77)
        KART_SKIP("no io_uring here");
    ck_assert_msg(WEXITSTATUS(st) == 0, "an epoll_wait after kart_loop_create returned EINTR");
}
END_TEST

START_TEST(caps_match_the_kernel)
{
    URING_OR_SKIP(s, 0);
    unsigned caps = kart_selector_caps(s);
    if (kernel_at_least(5, 13))
        ck_assert(caps & KART_CAP_EDGE);
    if (kernel_at_least(5, 9))
        ck_assert(caps & KART_CAP_EXCLUSIVE);
    int sv[2];
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE | KART_EDGE, NULL),
                     (caps & KART_CAP_EDGE) ? 0 : -ENOTSUP);
    close(sv[0]);
    close(sv[1]);
    kart_selector_free(s);
}
END_TEST

/* Two selectors watch one pipe; a write wakes how many of them? */
static int woken_by_one_write(uint32_t flags)
{
    kart_selector *s[2];
    kart_selector_options o = {.backend = "uring"};
    int p[2], woken = 0;
    kart_event ev[4];
    kt_pipe(p);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(kart_selector_create(&s[i], &o), 0);
        ck_assert_int_eq(kart_selector_register(s[i], p[0], KART_READABLE | flags, NULL), 0);
        ck_assert_int_eq(kart_selector_wait(s[i], ev, 4, 0), 0);
    }
    kt_write(p[1], "x");
    for (int i = 0; i < 2; i++) {
        woken += kart_selector_wait(s[i], ev, 4, 0);
        kart_selector_free(s[i]);
    }
    close(p[0]);
    close(p[1]);
    return woken;
}

START_TEST(exclusive_wakes_one_selector)
{
    URING_OR_SKIP(s, 0);
    bool exclusive = kart_selector_caps(s) & KART_CAP_EXCLUSIVE;
    kart_selector_free(s);
    ck_assert_int_eq(woken_by_one_write(0), 2);
    if (!exclusive) {
        kt_skip_print_(__func__, "EPOLLEXCLUSIVE not honoured by this kernel's io_uring");
        return;
    }
    ck_assert_int_eq(woken_by_one_write(KART_EXCLUSIVE), 1);
}
END_TEST

/* ---- Counting io_uring_enter calls: the body runs in a child traced by
 * the test, and marks phases by closing magic negative fds (KT_MARK); the
 * tracer counts io_uring_enter calls per phase. The body returns 0 when its
 * waits returned what they should. */

#define KT_MARK(k) syscall(SYS_close, (long)(-1000 - (k)))
#define KT_PHASES 8

/* Returns false (after saying so) when ptrace is not permitted here. */
static bool count_enters(int (*body)(void), int enters[KT_PHASES])
{
    memset(enters, 0, KT_PHASES * sizeof(int));
    pid_t pid = kt_fork();
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
            _exit(77);
        raise(SIGSTOP);
        _exit(body()); /* _exit: no atexit leak check under a tracer */
    }
    int status, phase = 0;
    bool traced = false;
    while (waitpid(pid, &status, 0) == pid && WIFSTOPPED(status)) {
        int sig = 0;
        if (!traced) {
            traced = true;
            ck_assert_int_eq(ptrace(PTRACE_SETOPTIONS, pid, NULL,
                                    (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)),
                             0);
        } else if (WSTOPSIG(status) == (SIGTRAP | 0x80)) {
            struct __ptrace_syscall_info info;
            ck_assert_int_gt(ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof(info), &info), 0);
            if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
                int a0 = (int)info.entry.args[0]; /* close() takes an int */
                if (info.entry.nr == SYS_close && a0 < -1000 && a0 > -1000 - KT_PHASES)
                    phase = -1000 - a0;
                else if (info.entry.nr == SYS_io_uring_enter)
                    enters[phase]++;
            }
        } else {
            sig = WSTOPSIG(status);
        }
        ck_assert_int_eq(ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig), 0);
    }
    ck_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        kt_skip_print_(__func__, "ptrace not permitted here");
        return false;
    }
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    return true;
}

static int waits_of_each_kind(void)
{
    kart_selector *s;
    kart_selector_options o = {.backend = "uring"};
    int sv[3][2], bad = 0;
    kart_event ev[4];
    char c;
    if (kart_selector_create(&s, &o) != 0)
        return 2;
    for (int i = 0; i < 3; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]) != 0 ||
            kart_selector_register(s, sv[i][0], KART_READABLE, NULL) != 0)
            return 3;
    if (write(sv[0][1], "x", 1) != 1)
        return 4;
    KT_MARK(1); /* three adds queued, one fd ready */
    bad |= kart_selector_wait(s, ev, 4, 1000 * KT_MS) != 1;
    KT_MARK(2); /* a level re-arm queued, the fd still ready */
    bad |= kart_selector_wait(s, ev, 4, 1000 * KT_MS) != 1;
    KT_MARK(3);
    bad |= read(sv[0][0], &c, 1) != 1;
    KT_MARK(4); /* a re-arm queued, nothing ready, no blocking */
    bad |= kart_selector_wait(s, ev, 4, 0) != 0;
    KT_MARK(5);
    kart_selector_wake(s);
    KT_MARK(6); /* blocking, woken */
    bad |= kart_selector_wait(s, ev, 4, -1) != 0;
    KT_MARK(7);
    return bad ? 5 : 0;
}

START_TEST(one_enter_per_wait)
{
    URING_OR_SKIP(s, 0);
    kart_selector_free(s);
    int enters[KT_PHASES];
    if (!count_enters(waits_of_each_kind, enters))
        return;
    /* Waits with SQEs to submit enter once; the woken one may find its
     * completion already posted and not enter at all. */
    ck_assert_int_eq(enters[1], 1);
    ck_assert_int_eq(enters[2], 1);
    ck_assert_int_eq(enters[4], 1);
    ck_assert_int_le(enters[6], 1);
}
END_TEST

/* A socket whose send buffer is full and whose peer shut down its writing
 * side: not writable, but POLLRDHUP, which the kernel adds to every poll. */
static void full_and_half_closed(int sv[2])
{
    kt_socketpair(sv);
    char buf[4096] = {0};
    while (write(sv[0], buf, sizeof(buf)) > 0)
        ;
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
}

static int idle_write_only_waits(void)
{
    kart_selector *s;
    kart_selector_options o = {.backend = "uring"};
    int sv[2], bad = 0;
    kart_event ev[4];
    if (kart_selector_create(&s, &o) != 0)
        return 2;
    full_and_half_closed(sv);
    if (kart_selector_register(s, sv[0], KART_WRITABLE, NULL) != 0)
        return 3;
    KT_MARK(1);
    bad |= kart_selector_wait(s, ev, 4, 50 * KT_MS) != 0;
    KT_MARK(2);
    bad |= kart_selector_wait(s, ev, 4, 50 * KT_MS) != 0;
    KT_MARK(3);
    return bad ? 4 : 0;
}

START_TEST(unwanted_rdhup_neither_spins_nor_hides_events)
{
    URING_OR_SKIP(s, 0);
    int sv[2];
    kart_event ev[4];
    uint32_t modes[] = {0, KART_ONESHOT};
    for (int m = 0; m < 2; m++) {
        full_and_half_closed(sv);
        ck_assert_int_eq(kart_selector_register(s, sv[0], KART_WRITABLE | modes[m], NULL), 0);
        ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0);
        ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0);
        /* The peer reads: now writable, which must be reported. */
        ck_assert_int_gt(kt_drain(sv[1]), 0);
        ck_assert_int_eq(kart_selector_wait(s, ev, 4, 1000 * KT_MS), 1);
        ck_assert_uint_eq(ev[0].events, KART_WRITABLE);
        ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), modes[m] ? 0 : 1);
        ck_assert_int_eq(kart_selector_unregister(s, sv[0]), 0);
        close(sv[0]);
        close(sv[1]);
    }
    kart_selector_free(s);
    /* A wait with nothing to report blocks: a few io_uring_enter calls, not
     * one per completion of a poll that keeps completing. */
    int enters[KT_PHASES];
    if (!count_enters(idle_write_only_waits, enters))
        return;
    ck_assert_int_le(enters[1], 3);
    ck_assert_int_le(enters[2], 3);
}
END_TEST

/* Urgent data needs TCP: kt_tcp_pair(). */
START_TEST(priority_only_for_urgent_data)
{
    /* A socket's data wake-up carries POLLPRI even without urgent data. */
    URING_OR_SKIP(s, 0);
    int sv[2];
    kart_event ev[4];
    kt_tcp_pair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[1], KART_READABLE | KART_PRIORITY, NULL), 0);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0);
    ck_assert_int_eq(send(sv[0], "n", 1, 0), 1);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 1000 * KT_MS), 1);
    ck_assert_uint_eq(ev[0].events, KART_READABLE);
    ck_assert_int_eq(kt_drain(sv[1]), 1);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0);
    ck_assert_int_eq(send(sv[0], "!", 1, MSG_OOB), 1);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 1000 * KT_MS), 1);
    ck_assert(ev[0].events & KART_PRIORITY);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

int main(void)
{
    if (getenv("KT_URING_EINTR_CHILD"))
        return eintr_child();
    int err = kart_backend_probe("uring");
    if (err != 0) {
        KART_SKIP_GROUP("the uring cases: io_uring cannot start here (%s)", kart_strerror(err));
        fflush(stdout);
    }
    Suite *s = suite_create("uring");
    TCase *tc = tcase_create("uring");
    tcase_add_test(tc, cq_overflow_loses_nothing);
    tcase_add_test(tc, max_smaller_than_ready_keeps_the_rest);
    tcase_add_test(tc, unregister_in_flight_then_reuse_gets_no_stale_event);
    tcase_add_test(tc, modify_in_flight_reports_only_the_new_registration);
    tcase_add_test(tc, edge_keeps_reporting_over_many_rounds);
    tcase_add_test(tc, polls_outlive_the_thread_that_submitted_them);
    tcase_add_test(tc, creating_a_loop_interrupts_nothing);
    tcase_add_test(tc, caps_match_the_kernel);
    tcase_add_test(tc, exclusive_wakes_one_selector);
    tcase_add_test(tc, one_enter_per_wait);
    tcase_add_test(tc, unwanted_rdhup_neither_spins_nor_hides_events);
    tcase_add_test(tc, priority_only_for_urgent_data);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

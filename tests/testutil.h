/*
 * tests/testutil.h — shared helpers for kart's Check suites: running a
 * case on every backend, fd pairs, and reading/writing helpers that fail
 * the test loudly; and, for the check_loop* suites (opt-in, with
 * KT_LOOP_HELPERS), opening and closing loops and recording callbacks.
 */
#ifndef KART_TESTUTIL_H
#define KART_TESTUTIL_H

#include <check.h>
#include "skip.h"
#include "childutil.h"
#include <errno.h>
#include <fcntl.h>
#include <kart.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KT_MS (INT64_C(1000000))

/* Asserts cond for every i in [0, n) with one Check assertion at the end.
 * Each ck_assert that passes still writes a mark to Check's pipe, so a
 * ck_assert per element of a large array costs a system call each: three
 * million of them took 28 s of one suite. The message names the first
 * index where cond fails. */
#define KT_ASSERT_EACH(i, n, cond)                                                                 \
    do {                                                                                           \
        size_t kt_n_ = (size_t)(n), kt_bad_ = kt_n_;                                               \
        for (size_t i = 0; i < kt_n_; i++)                                                         \
            if (!(cond)) {                                                                         \
                kt_bad_ = i;                                                                       \
                break;                                                                             \
            }                                                                                      \
        ck_assert_msg(kt_bad_ == kt_n_, "%s fails at %s = %zu of %zu", #cond, #i, kt_bad_, kt_n_); \
    } while (0)

/* KT_TSAN / KT_ASAN: the suite is built with ThreadSanitizer /
 * AddressSanitizer (gcc's macro, or clang's __has_feature), for the few
 * cases those tools cannot run (a thread started in the fork child of a
 * threaded parent). */
#if defined(__SANITIZE_THREAD__)
#define KT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KT_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define KT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KT_ASAN 1
#endif
#endif

/* Number of compiled-in backends; loop tests run _i over [0, n). */
static inline int kt_nbackends(void)
{
    int n = 0;
    for (const char *const *b = kart_backends(); *b; b++)
        n++;
    return n;
}

static inline const char *kt_backend(int i)
{
    return kart_backends()[i];
}

/* Sets KART_BACKEND for this (forked) test so that loops pick backend i,
 * and returns its name, or NULL when it cannot start here. */
static inline const char *kt_use_backend(int i)
{
    const char *name = kt_backend(i);
    if (kart_backend_probe(name) != 0)
        return NULL;
    setenv("KART_BACKEND", name, 1);
    return name;
}

#define KT_BACKEND_OR_SKIP(i)                                                                      \
    const char *backend = kt_use_backend(i);                                                       \
    if (!backend)                                                                                  \
        KART_SKIP("backend %s cannot start here (%s)", kt_backend(i),                              \
                  kart_strerror(kart_backend_probe(kt_backend(i))));

/* Prints which backends run and which are skipped, and why; run-tests.sh
 * shows these lines. */
static inline void kt_print_backends(void)
{
    char ran[256] = "", skipped[512] = "";
    for (const char *const *b = kart_backends(); *b; b++) {
        int err = kart_backend_probe(*b);
        if (err == 0) {
            strncat(ran, " ", sizeof(ran) - strlen(ran) - 1);
            strncat(ran, *b, sizeof(ran) - strlen(ran) - 1);
        } else {
            char one[128];
            snprintf(one, sizeof(one), " %s (%s)", *b, kart_strerror(err));
            strncat(skipped, one, sizeof(skipped) - strlen(skipped) - 1);
        }
    }
#if !defined(__APPLE__) && !defined(__FreeBSD__) && !defined(__NetBSD__) &&                        \
    !defined(__OpenBSD__) && !defined(__DragonFly__)
    strncat(skipped, " kqueue (not on this OS)", sizeof(skipped) - strlen(skipped) - 1);
#endif
#ifndef KART_HAVE_URING
    strncat(skipped, " uring (built with URING=0)", sizeof(skipped) - strlen(skipped) - 1);
#endif
    printf("backends:%s\n", ran);
    if (*skipped)
        printf("skipped:%s\n", skipped);
    fflush(stdout);
}

static inline void kt_socketpair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* A connected TCP pair on 127.0.0.1: sv[0] blocking, sv[1] non-blocking. */
static inline void kt_tcp_pair(int sv[2])
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(connect(sv[0], (struct sockaddr *)&a, sizeof(a)), 0);
    sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    ck_assert_int_ge(sv[1], 0);
    close(l);
}

static inline void kt_pipe(int p[2])
{
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static inline void kt_write(int fd, const char *s)
{
    ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Reads until EAGAIN; returns the number of bytes read. */
static inline ssize_t kt_drain(int fd)
{
    char buf[4096];
    ssize_t total = 0, n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        total += n;
    return total;
}

/* fork() for tests: a failed fork fails the test in the parent. The child
 * must not be the one to call a ck_* function for it: every passing
 * ck_assert writes a location record to Check's message file, and a child
 * SIGKILLed in the middle of that write (a write that crosses a page of
 * the file is two copies, and a pending SIGKILL stops it between them)
 * leaves a torn record that makes Check abort the whole suite with "Bad
 * message type" (seen once in CI, in check_queue_crash's random kills).
 * So children killed at random instants call no ck_* function at all. */
/* A child forked from the test's main thread also dies with the test
 * process (PR_SET_DEATHSIG): a child left blocked when a fault ended the
 * test early would otherwise outlive it, hold the suite's output open and
 * turn a failure into a hang under make check-faults. (Not from another
 * thread: the signal follows the forking thread's exit, not the process's.) */
static inline pid_t kt_fork(void)
{
    pid_t parent = getpid();
    int main_thread = (pid_t)syscall(SYS_gettid) == parent;
    pid_t pid = fork();
    if (pid < 0)
        ck_abort_msg("fork: %s", strerror(errno));
    if (pid == 0 && main_thread) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the test ended before the line above */
            _exit(99);
    }
    return pid;
}

/* Runs a suite and returns the process exit status. */
static inline int kt_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}


/* ---- event-loop helpers, for the check_loop* suites ----
 * Opt-in: a suite defines KT_LOOP_HELPERS before including this header.
 * Their short names would clash with suites that keep private copies
 * (the completion-I/O suites have io_open_loop and io_close_loop in io_backends.h). */
#ifdef KT_LOOP_HELPERS

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#ifndef _NSIG
#define _NSIG NSIG
#endif

/* Creates a loop with default options and asserts that it runs backend. */
static inline kart_loop *open_loop(const char *backend)
{
    kart_loop *loop = NULL;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    ck_assert_ptr_nonnull(loop);
    ck_assert_str_eq(kart_loop_backend_name(loop), backend);
    return loop;
}

/* Every loop case starts with this: the backend for _i, or a skip. */
#define LOOP_OR_SKIP(i)                                                                            \
    KT_BACKEND_OR_SKIP(i);                                                                         \
    kart_loop *loop = open_loop(backend)

/* Frees a loop, asserting that no handle is left active on it. */
static inline void close_loop(kart_loop *loop)
{
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    kart_loop_free(loop);
}

/* Sleeps ns nanoseconds, going on after a signal interrupts it. */
static inline void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Closes both ends of a pipe or socket pair. */
static inline void close2(int p[2])
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

/* An fd watcher's callback that records into the rec in its data. */
static inline void io_rec_cb(kart_watch *io, uint32_t events)
{
    rec *r = io->base.data;
    r->calls++;
    r->events = events;
    r->active = kart_handle_is_active(&io->base);
    r->when = kart_loop_now(io->base.loop);
}

/* A timer's callback that records into the rec in its data. */
static inline void timer_rec_cb(kart_timer *t)
{
    rec *r = t->base.data;
    r->calls++;
    r->active = kart_handle_is_active(&t->base);
    r->when = kart_loop_now(t->base.loop);
}

/* An async handle's callback that counts its calls in the rec in its data. */
static inline void async_rec_cb(kart_async *a)
{
    rec *r = a->base.data;
    r->calls++;
}

/* Blocks (block true) or unblocks signum in this thread's signal mask. */
static inline void set_blocked(int signum, bool block)
{
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signum);
    ck_assert_int_eq(pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &one, NULL), 0);
}

/* Asserts that this thread's signal mask is the same as *a. */
static inline void assert_same_mask(const sigset_t *a)
{
    sigset_t cur;
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    for (int s = 1; s < _NSIG; s++)
        ck_assert_msg(sigismember(&cur, s) == sigismember(a, s), "signal %d differs", s);
}

/* A signal callback for starts that must fail: fails the test if it runs. */
static inline void signal_never_cb(kart_signal *s, int signum)
{
    (void)s;
    ck_abort_msg("signal callback ran for %d after its start failed", signum);
}

#endif /* KT_LOOP_HELPERS */

#endif

/*
 * tests/testutil.h — shared helpers for kart's Check suites: running a
 * case on every backend, fd pairs, and reading/writing helpers that fail
 * the test loudly.
 */
#ifndef KART_TESTUTIL_H
#define KART_TESTUTIL_H

#include <check.h>
#include <fcntl.h>
#include <kart.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define KT_MS (INT64_C(1000000))

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

#define KT_BACKEND_OR_SKIP(i)                                                  \
    const char *backend = kt_use_backend(i);                                   \
    if (!backend)                                                              \
        return;

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
#if !defined(__APPLE__) && !defined(__FreeBSD__) && !defined(__NetBSD__) &&                   \
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

/* Runs a suite and returns the process exit status. */
static inline int kt_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

#endif

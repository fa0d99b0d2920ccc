/* Description: kart/conn.h's connections: kart_conn_pipe (duplex and one-way),
 * kart_conn_from_fd, send/recv/recv_into/poll/close/fileno with every
 * documented error; Python's wire format byte for byte; bad input (bad
 * lengths, too long, truncated, EOF) aborting cleanly; SIGPIPE never
 * raised; read-ahead and KART_CONN_EXACT; the loop completions
 * (attach/send_async/recv_start), blocking sends refused with -EBUSY while
 * loop sends are queued; and kart_conn_wait. Listener, Client and
 * the handshake are in check_listener.c, Python interop in
 * check_conn_interop.c. */
#include "testutil.h"

#include "conn_private.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed);
}

static int pattern_ok(const uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)(i * 31 + seed))
            return 0;
    return 1;
}

static void write_all(int fd, const void *p, size_t n)
{
    ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
}

/* A duplex pair whose b end is a raw socket (the peer writes raw bytes). */
static kart_conn *raw_pair(int *peer)
{
    int sv[2];
    kt_socketpair(sv);
    kart_conn *c;
    ck_assert_int_eq(kart_conn_from_fd(&c, sv[0], KART_CONN_READABLE | KART_CONN_WRITABLE), 0);
    *peer = sv[1];
    return c;
}

/* ---- creation ---- */

START_TEST(create_rejects_bad_arguments)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(NULL, &b, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_conn_pipe(&a, NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0x80), -EINVAL);
    ck_assert_int_eq(kart_conn_from_fd(NULL, 0, KART_CONN_READABLE), -EINVAL);
    ck_assert_int_eq(kart_conn_from_fd(&a, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_conn_from_fd(&a, 0, KART_CONN_EXACT), -EINVAL);
    ck_assert_int_eq(kart_conn_from_fd(&a, 0, KART_CONN_READABLE | 0x80), -EINVAL);
    ck_assert_int_eq(kart_conn_from_fd(&a, -1, KART_CONN_READABLE), -EBADF);
    ck_assert_int_eq(kart_conn_from_fd(&a, 1000, KART_CONN_READABLE), -EBADF);
    ck_assert_int_eq(kart_conn_fileno(NULL), -EINVAL);
    kart_conn_close(NULL);
    ck_assert_int_eq(kart_conn_send_bytes(NULL, "", 0), -EINVAL);
    void *m;
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes(NULL, &m, &n, 10), -EINVAL);
    ck_assert_int_eq(kart_conn_recv_bytes_into(NULL, NULL, 0, &n), -EINVAL);
    ck_assert_int_eq(kart_conn_poll(NULL, 0), -EINVAL);
}
END_TEST

START_TEST(pipe_fds_are_cloexec_and_owned)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    int fa = kart_conn_fileno(a), fb = kart_conn_fileno(b);
    ck_assert_int_ge(fa, 0);
    ck_assert(fcntl(fa, F_GETFD) & FD_CLOEXEC);
    ck_assert(fcntl(fb, F_GETFD) & FD_CLOEXEC);
    kart_conn_close(a);
    kart_conn_close(b);
    ck_assert_int_eq(fcntl(fa, F_GETFD), -1);
    ck_assert_int_eq(fcntl(fb, F_GETFD), -1);
}
END_TEST

/* ---- send and receive ---- */

START_TEST(duplex_sizes_both_ways)
{
    /* The last is assembled in a buffer that grows past its first 1 MiB. */
    static const size_t sizes[] = {0,     1,     64,    1023,  1024,   1025,
                                   16385, 65535, 65536, 65537, 300000, (3 << 20) + 1};
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, _i ? KART_CONN_EXACT : 0), 0);
    pid_t pid = kt_fork();
    if (pid == 0) { /* echo everything, then exit */
        kart_conn_close(a);
        for (;;) {
            void *m;
            size_t n;
            int r = kart_conn_recv_bytes(b, &m, &n, SIZE_MAX);
            if (r == KART_EEOF)
                _exit(0);
            if (r != 0 || kart_conn_send_bytes(b, m, n) != 0)
                _exit(1);
            free(m);
        }
    }
    kart_conn_close(b);
    uint8_t *buf = malloc((3 << 20) + 1), *in = malloc((3 << 20) + 1);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        fill_pattern(buf, sizes[i], (unsigned)i);
        ck_assert_int_eq(kart_conn_send_bytes(a, buf, sizes[i]), 0);
        if (i % 2) {
            void *m;
            size_t n = 99;
            ck_assert_int_eq(kart_conn_recv_bytes(a, &m, &n, sizes[i]), 0);
            ck_assert_uint_eq(n, sizes[i]);
            ck_assert_ptr_nonnull(m);
            ck_assert(pattern_ok(m, n, (unsigned)i));
            free(m);
        } else {
            size_t n = 99;
            ck_assert_int_eq(kart_conn_recv_bytes_into(a, in, (3 << 20) + 1, &n), 0);
            ck_assert_uint_eq(n, sizes[i]);
            ck_assert(pattern_ok(in, n, (unsigned)i));
        }
    }
    /* Many small ones in flight at once: read-ahead takes several per read. */
    for (unsigned i = 0; i < 100; i++)
        ck_assert_int_eq(kart_conn_send_bytes(a, &i, sizeof(i)), 0);
    for (unsigned i = 0; i < 100; i++) {
        unsigned v;
        size_t n;
        ck_assert_int_eq(kart_conn_recv_bytes_into(a, &v, sizeof(v), &n), 0);
        ck_assert_uint_eq(n, sizeof(v));
        ck_assert_uint_eq(v, i);
    }
    kart_conn_close(a);
    int st;
    kt_wait_child(pid, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(buf);
    free(in);
}
END_TEST

START_TEST(oneway_pipe_directions)
{
    kart_conn *r, *w;
    ck_assert_int_eq(kart_conn_pipe(&r, &w, 0, 0), 0);
    struct stat st;
    ck_assert_int_eq(fstat(kart_conn_fileno(r), &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));
    ck_assert_int_eq(kart_conn_send_bytes(r, "x", 1), -EBADF);
    void *m;
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes(w, &m, &n, 10), -EBADF);
    ck_assert_int_eq(kart_conn_recv_bytes_into(w, NULL, 0, &n), -EBADF);
    ck_assert_int_eq(kart_conn_poll(w, 0), -EBADF);
    ck_assert_int_eq(kart_conn_send_bytes(w, "hello", 5), 0);
    ck_assert_int_eq(kart_conn_send_bytes(w, NULL, 0), 0);
    ck_assert_int_eq(kart_conn_recv_bytes(r, &m, &n, 10), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(m, "hello", 5);
    free(m);
    ck_assert_int_eq(kart_conn_recv_bytes(r, &m, &n, 10), 0);
    ck_assert_uint_eq(n, 0);
    free(m);
    kart_conn_close(w);
    ck_assert_int_eq(kart_conn_recv_bytes(r, &m, &n, 10), KART_EEOF);
    kart_conn_close(r);
}
END_TEST

START_TEST(send_many_packs_messages)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, _i, 0), 0);
    kart_conn *r = _i ? b : a, *w = _i ? a : b;
    enum { N = 3000 };
    static uint8_t data[N][40];
    static uint8_t big[2][70000];
    static struct iovec msgs[N + 2];
    for (int i = 0; i < N; i++) {
        fill_pattern(data[i], sizeof(data[i]), (unsigned)i);
        msgs[i] = (struct iovec){data[i], (size_t)(i % 41)};
    }
    fill_pattern(big[0], sizeof(big[0]), 5000);
    fill_pattern(big[1], sizeof(big[1]), 5001);
    /* Large ones among small ones, at the start and in the middle. */
    msgs[N] = msgs[0];
    msgs[0] = (struct iovec){big[0], sizeof(big[0])};
    msgs[N + 1] = msgs[1500];
    msgs[1500] = (struct iovec){big[1], 2000};
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_conn_close(w);
        static uint8_t in[70000];
        for (int i = 0; i < N + 2; i++) {
            size_t n;
            if (kart_conn_recv_bytes_into(r, in, sizeof(in), &n) != 0 || n != msgs[i].iov_len ||
                memcmp(in, msgs[i].iov_base, n) != 0)
                _exit(1);
        }
        size_t n;
        _exit(kart_conn_recv_bytes_into(r, in, sizeof(in), &n) == KART_EEOF ? 0 : 2);
    }
    kart_conn_close(r);
    ck_assert_int_eq(kart_conn_send_many(w, msgs, N + 2), 0);
    ck_assert_int_eq(kart_conn_send_many(w, msgs, 0), 0);
    kart_conn_close(w);
    int st;
    kt_wait_child(pid, &st);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

START_TEST(send_many_rejects_bad_arguments)
{
    kart_conn *r, *w;
    ck_assert_int_eq(kart_conn_pipe(&r, &w, 0, 0), 0);
    struct iovec ok = {"x", 1}, nul = {NULL, 1}, huge = {"x", SIZE_MAX};
    ck_assert_int_eq(kart_conn_send_many(NULL, &ok, 1), -EINVAL);
    ck_assert_int_eq(kart_conn_send_many(w, NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_conn_send_many(w, &ok, (size_t)INT_MAX + 1), -EINVAL);
    ck_assert_int_eq(kart_conn_send_many(w, &nul, 1), -EINVAL);
    ck_assert_int_eq(kart_conn_send_many(w, &huge, 1), -EMSGSIZE);
    ck_assert_int_eq(kart_conn_send_many(r, &ok, 1), -EBADF);
    kart_conn_close(r);
    ck_assert_int_eq(kart_conn_send_many(w, &ok, 1), -EPIPE);
    ck_assert_int_eq(kart_conn_send_many(w, &ok, 1), -ECONNABORTED);
    kart_conn_close(w);
}
END_TEST

START_TEST(send_rejects_bad_arguments)
{
    int peer;
    kart_conn *c = raw_pair(&peer);
    ck_assert_int_eq(kart_conn_send_bytes(c, NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_conn_send_bytes(c, "x", SIZE_MAX), -EMSGSIZE);
    size_t n;
    void *m;
    ck_assert_int_eq(kart_conn_recv_bytes(c, NULL, &n, 1), -EINVAL);
    ck_assert_int_eq(kart_conn_recv_bytes(c, &m, NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_conn_recv_bytes_into(c, NULL, 5, &n), -EINVAL);
    ck_assert_int_eq(kart_conn_recv_bytes_into(c, &m, 5, NULL), -EINVAL);
    kart_conn_close(c);
    close(peer);
}
END_TEST

START_TEST(recv_into_short_buffer_keeps_the_message)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, _i ? KART_CONN_EXACT : 0), 0);
    uint8_t msg[100], in[100];
    fill_pattern(msg, sizeof(msg), 7);
    ck_assert_int_eq(kart_conn_send_bytes(a, msg, sizeof(msg)), 0);
    ck_assert_int_eq(kart_conn_send_bytes(a, "next", 4), 0);
    size_t n = 0;
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, in, 10, &n), -ENOBUFS);
    ck_assert_uint_eq(n, 100);
    n = 0;
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, NULL, 0, &n), -ENOBUFS);
    ck_assert_uint_eq(n, 100);
    ck_assert_int_eq(kart_conn_poll(b, 0), 1);
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, in, sizeof(in), &n), 0);
    ck_assert_uint_eq(n, 100);
    ck_assert(pattern_ok(in, n, 7));
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, in, sizeof(in), &n), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_mem_eq(in, "next", 4);
    kart_conn_close(a);
    kart_conn_close(b);
}
END_TEST

START_TEST(poll_waits_and_times_out)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    ck_assert_int_eq(kart_conn_poll(b, 0), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_conn_poll(b, 30 * KT_MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 30 * KT_MS);
    ck_assert_int_eq(kart_conn_send_bytes(a, "x", 1), 0);
    ck_assert_int_eq(kart_conn_poll(b, -1), 1);
    char c;
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, &c, 1, &n), 0);
    ck_assert_int_eq(kart_conn_poll(b, 0), 0);
    kart_conn_close(a);
    ck_assert_int_eq(kart_conn_poll(b, -1), 1);
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, &c, 1, &n), KART_EEOF);
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, &c, 1, &n), KART_EEOF);
    ck_assert_int_eq(kart_conn_poll(b, 0), 1);
    kart_conn_close(b);
}
END_TEST

START_TEST(wire_format_is_pythons)
{
    int peer;
    kart_conn *c = raw_pair(&peer);
    ck_assert_int_eq(kart_conn_send_bytes(c, "abc", 3), 0);
    uint8_t raw[16];
    ck_assert_int_eq(read(peer, raw, sizeof(raw)), 7);
    ck_assert_mem_eq(raw, "\0\0\0\3abc", 7);
    /* The 8-byte form, as Python sends it from 2 GiB up, decodes whatever
     * the length. */
    write_all(peer, "\xff\xff\xff\xff\0\0\0\0\0\0\0\5hello", 17);
    void *m;
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes(c, &m, &n, 5), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(m, "hello", 5);
    free(m);
    uint8_t hdr[12];
    uint64_t len;
    size_t need;
    ck_assert_uint_eq(kart__frame_encode(hdr, 0x7fffffff), 4);
    ck_assert_mem_eq(hdr, "\x7f\xff\xff\xff", 4);
    ck_assert_uint_eq(kart__frame_encode(hdr, UINT64_C(0x80000000)), 12);
    ck_assert_mem_eq(hdr, "\xff\xff\xff\xff\0\0\0\0\x80\0\0\0", 12);
    ck_assert_int_eq(kart__frame_decode(hdr, 11, &len, &need), 0);
    ck_assert_uint_eq(need, 12);
    ck_assert_int_eq(kart__frame_decode(hdr, 12, &len, &need), 12);
    ck_assert_uint_eq(len, UINT64_C(0x80000000));
    ck_assert_int_eq(kart__frame_decode(hdr, 3, &len, &need), 0);
    ck_assert_uint_eq(need, 4);
    kart_conn_close(c);
    close(peer);
}
END_TEST

static void on_alarm(int sig)
{
    (void)sig;
}

/* Signals without SA_RESTART interrupt the blocking calls every 2 ms:
 * nothing may fail with EINTR or lose bytes. */
START_TEST(eintr_is_retried)
{
    struct sigaction sa = {.sa_handler = on_alarm};
    ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_conn_close(a);
        usleep(50000);
        static uint8_t big[1 << 20];
        fill_pattern(big, sizeof(big), 3);
        _exit(kart_conn_send_bytes(b, big, sizeof(big)) == 0 ? 0 : 1);
    }
    kart_conn_close(b);
    struct itimerval it = {{0, 2000}, {0, 2000}};
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
    ck_assert_int_eq(kart_conn_poll(a, 5000 * KT_MS), 1);
    void *m;
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes(a, &m, &n, 1 << 20), 0);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    ck_assert_uint_eq(n, 1 << 20);
    ck_assert(pattern_ok(m, n, 3));
    free(m);
    int st;
    kt_wait_child(pid, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    kart_conn_close(a);
}
END_TEST

/* ---- bad input ---- */

/* The peer writes raw bytes (and closes when `close_after`); the receive
 * must fail with want, leave the connection aborted, and (for a protocol
 * error) show the peer the end. */
static void expect_bad(const char *raw, size_t n, size_t maxlen, int close_after, int want)
{
    int peer;
    kart_conn *c = raw_pair(&peer);
    write_all(peer, raw, n);
    if (close_after)
        shutdown(peer, SHUT_WR);
    void *m = NULL;
    size_t len;
    ck_assert_int_eq(kart_conn_recv_bytes(c, &m, &len, maxlen), want);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(kart_conn_recv_bytes(c, &m, &len, maxlen), -ECONNABORTED);
    ck_assert_int_eq(kart_conn_recv_bytes_into(c, NULL, 0, &len), -ECONNABORTED);
    ck_assert_int_eq(kart_conn_send_bytes(c, "x", 1), -ECONNABORTED);
    ck_assert_int_eq(kart_conn_poll(c, 0), -ECONNABORTED);
    char b;
    ck_assert_int_eq(read(peer, &b, 1), 0); /* shut down: EOF */
    kart_conn_close(c);
    close(peer);
}

START_TEST(bad_frames_abort_cleanly)
{
    expect_bad("\xff\xff\xff\xfe", 4, 100, 0, KART_EBADFRAME);
    expect_bad("\x80\0\0\0", 4, 100, 0, KART_EBADFRAME);
    expect_bad("\xff\xff\xff\xff\x80\0\0\0\0\0\0\0", 12, SIZE_MAX, 0, KART_EBADFRAME);
    expect_bad("\0\0\0\x65", 4, 100, 0, -EMSGSIZE);
    /* 2^62 bytes announced: refused before any allocation. */
    expect_bad("\xff\xff\xff\xff\x40\0\0\0\0\0\0\0", 12, 1 << 20, 0, -EMSGSIZE);
    expect_bad("\0\0\0\x0ahello", 9, 100, 1, KART_ETRUNCATED);
    /* 1 GiB announced, 5 bytes sent: held as they come, not allocated. */
    expect_bad("\x40\0\0\0hello", 9, SIZE_MAX, 1, KART_ETRUNCATED);
    expect_bad("\0\0", 2, 100, 1, KART_ETRUNCATED);
    expect_bad("\xff\xff\xff\xff\0\0", 6, 100, 1, KART_ETRUNCATED);
}
END_TEST

START_TEST(too_long_for_recv_into_is_not_fatal)
{
    int peer;
    kart_conn *c = raw_pair(&peer);
    write_all(peer, "\0\0\0\x05hello", 9);
    char buf[5];
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes_into(c, buf, 4, &n), -ENOBUFS);
    ck_assert_int_eq(kart_conn_recv_bytes_into(c, buf, 5, &n), 0);
    ck_assert_mem_eq(buf, "hello", 5);
    kart_conn_close(c);
    close(peer);
}
END_TEST

START_TEST(sigpipe_never_raised)
{
    ck_assert_ptr_eq(signal(SIGPIPE, SIG_DFL), SIG_DFL);
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    kart_conn_close(b);
    int r = kart_conn_send_bytes(a, "x", 1);
    ck_assert(r == -EPIPE || r == -ECONNRESET);
    ck_assert_int_eq(kart_conn_send_bytes(a, "x", 1), -ECONNABORTED);
    kart_conn_close(a);
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 0, 0), 0);
    kart_conn_close(a); /* the reading end */
    uint8_t big[5000] = {0};
    ck_assert_int_eq(kart_conn_send_bytes(b, big, sizeof(big)), -EPIPE);
    sigset_t pend;
    sigpending(&pend);
    ck_assert(!sigismember(&pend, SIGPIPE));
    kart_conn_close(b);
}
END_TEST

START_TEST(readahead_and_exact)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, _i ? KART_CONN_EXACT : 0), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_conn_send_bytes(a, "abcd", 4), 0);
    char buf[4];
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, buf, 4, &n), 0);
    struct pollfd p = {.fd = kart_conn_fileno(b), .events = POLLIN};
    /* Read-ahead took all three in; exact left two in the fd. */
    ck_assert_int_eq(poll(&p, 1, 0), _i ? 1 : 0);
    ck_assert_int_eq(kart_conn_poll(b, 0), 1);
    kart_waitable w = {.kind = KART_WAIT_CONN, .u.conn = b};
    ck_assert_int_eq(kart_conn_wait(&w, 1, 0), 1);
    ck_assert_int_eq(w.ready, 1);
    if (_i) {
        /* Another process can take its turn on the same reading end. */
        pid_t pid = kt_fork();
        if (pid == 0) {
            int ok = kart_conn_recv_bytes_into(b, buf, 4, &n) == 0 && n == 4;
            _exit(ok ? 0 : 1);
        }
        int st;
        kt_wait_child(pid, &st);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    } else {
        ck_assert_int_eq(kart_conn_recv_bytes_into(b, buf, 4, &n), 0);
    }
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, buf, 4, &n), 0);
    ck_assert_int_eq(kart_conn_poll(b, 0), 0);
    kart_conn_close(a);
    kart_conn_close(b);
}
END_TEST

/* ---- the loop ---- */

#define NLOOP 200

typedef struct loop_state {
    uint8_t *bufs[NLOOP];
    size_t sizes[NLOOP];
    int sent, received, errors, last_status;
    kart_loop *loop;
    kart_conn *stop_after_close;
} loop_state;

static void on_sent(kart_conn *c, int status, void *arg)
{
    loop_state *s = arg;
    ck_assert_int_eq(status, 0);
    s->sent++;
}

static void on_recv(kart_conn *c, int status, const void *msg, size_t len, void *arg)
{
    loop_state *s = arg;
    if (status != 0) {
        s->errors++;
        s->last_status = status;
        return;
    }
    int i = s->received++;
    ck_assert_int_lt(i, NLOOP);
    ck_assert_uint_eq(len, s->sizes[i]);
    ck_assert(pattern_ok(msg, len, (unsigned)i));
    if (s->received == NLOOP)
        kart_conn_recv_stop(c);
}

/* _i: the backend (every compiled-in one that starts here) times three
 * connection kinds: duplex, one-way pipe, duplex exact. */
START_TEST(loop_sends_and_receives_whole_messages)
{
    if (!kt_use_backend(_i / 3))
        return;
    int mode = _i % 3;
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, mode != 1, mode == 2 ? KART_CONN_EXACT : 0), 0);
    kart_conn *rd = mode == 1 ? a : b, *wr = mode == 1 ? b : a;
    ck_assert_int_eq(kart_conn_attach(rd, loop), 0);
    ck_assert_int_eq(kart_conn_attach(wr, loop), 0);
    static loop_state s;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < NLOOP; i++) {
        s.sizes[i] = i % 10 == 0 ? 0 : i % 17 == 0 ? 100000 + (size_t)i : (size_t)(i * 7);
        s.bufs[i] = malloc(s.sizes[i] + 1);
        fill_pattern(s.bufs[i], s.sizes[i], (unsigned)i);
        ck_assert_int_eq(kart_conn_send_async(wr, s.bufs[i], s.sizes[i], on_sent, &s), 0);
    }
    ck_assert_int_eq(kart_conn_send_bytes(wr, "x", 1), -EBUSY);
    ck_assert_int_eq(kart_conn_recv_start(rd, 1 << 20, on_recv, &s), 0);
    ck_assert_int_eq(kart_conn_recv_start(rd, 1 << 20, on_recv, &s), -EBUSY);
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes_into(rd, NULL, 0, &n), -EBUSY);
    void *m;
    ck_assert_int_eq(kart_conn_recv_bytes(rd, &m, &n, 10), -EBUSY);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(s.sent, NLOOP);
    ck_assert_int_eq(s.received, NLOOP);
    ck_assert_int_eq(s.errors, 0);
    /* Blocking calls work on an attached connection. */
    ck_assert_int_eq(kart_conn_send_bytes(wr, "end", 3), 0);
    char buf[3];
    ck_assert_int_eq(kart_conn_recv_bytes_into(rd, buf, 3, &n), 0);
    ck_assert_mem_eq(buf, "end", 3);
    /* EOF reaches the callback once, and receiving stops. */
    s.received = 0;
    ck_assert_int_eq(kart_conn_recv_start(rd, 10, on_recv, &s), 0);
    ck_assert_int_eq(kart_conn_detach(wr), 0);
    kart_conn_close(wr);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(s.errors, 1);
    ck_assert_int_eq(s.last_status, KART_EEOF);
    kart_conn_close(rd); /* detaches */
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    kart_loop_free(loop);
    for (int i = 0; i < NLOOP; i++)
        free(s.bufs[i]);
}
END_TEST

static int cancelled;
static void on_cancel(kart_conn *c, int status, void *arg)
{
    ck_assert_int_eq(status, -ECANCELED);
    ck_assert_int_eq(kart_conn_send_async(c, "x", 1, NULL, NULL), -ENOTCONN);
    cancelled++;
}

START_TEST(loop_errors)
{
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    ck_assert_int_eq(kart_conn_attach(NULL, loop), -EINVAL);
    ck_assert_int_eq(kart_conn_attach(a, NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_detach(a), -EINVAL);
    ck_assert_int_eq(kart_conn_detach(NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_send_async(a, "x", 1, NULL, NULL), -ENOTCONN);
    ck_assert_int_eq(kart_conn_recv_start(a, 10, on_recv, NULL), -ENOTCONN);
    ck_assert_int_eq(kart_conn_attach(a, loop), 0);
    ck_assert_int_eq(kart_conn_attach(a, loop), -EBUSY);
    ck_assert_int_eq(kart_conn_send_async(NULL, "x", 1, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_send_async(a, NULL, 1, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_send_async(a, "x", SIZE_MAX, NULL, NULL), -EMSGSIZE);
    ck_assert_int_eq(kart_conn_recv_start(NULL, 10, on_recv, NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_recv_start(a, 10, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_recv_stop(NULL), -EINVAL);
    ck_assert(fcntl(kart_conn_fileno(a), F_GETFL) & O_NONBLOCK);
    /* Queued sends end with -ECANCELED at detach. */
    cancelled = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_conn_send_async(a, "abc", 3, on_cancel, NULL), 0);
    ck_assert_int_eq(kart_conn_detach(a), 0);
    ck_assert_int_eq(cancelled, 3);
    ck_assert(!(fcntl(kart_conn_fileno(a), F_GETFL) & O_NONBLOCK));
    /* Direction errors. */
    kart_conn *r, *w;
    ck_assert_int_eq(kart_conn_pipe(&r, &w, 0, 0), 0);
    ck_assert_int_eq(kart_conn_attach(r, loop), 0);
    ck_assert_int_eq(kart_conn_attach(w, loop), 0);
    ck_assert_int_eq(kart_conn_send_async(r, "x", 1, NULL, NULL), -EBADF);
    ck_assert_int_eq(kart_conn_recv_start(w, 10, on_recv, NULL), -EBADF);
    /* Too long for the loop receiver: one error, aborted. */
    static loop_state s;
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(kart_conn_send_async(w, "0123456789", 10, NULL, NULL), 0);
    ck_assert_int_eq(kart_conn_recv_start(r, 5, on_recv, &s), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(s.errors, 1);
    ck_assert_int_eq(s.last_status, -EMSGSIZE);
    ck_assert_int_eq(kart_conn_recv_start(r, 5, on_recv, &s), -ECONNABORTED);
    kart_conn_close(r);
    kart_conn_close(w);
    kart_conn_close(a);
    kart_conn_close(b);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    kart_loop_free(loop);
}
END_TEST

/* send_many while loop sends are queued: -EBUSY, as send_bytes (its
 * header: "those of kart_conn_send_bytes"), nothing written between the
 * queued messages and the connection still usable: the queued sends
 * complete in order, and send_many works once they have. */
static int queued_ok, queued_bad;
static void on_queued(kart_conn *c, int status, void *arg)
{
    (void)c, (void)arg;
    if (status == 0)
        queued_ok++;
    else
        queued_bad++;
}

START_TEST(send_many_busy_while_loop_sends_pending)
{
    if (!kt_use_backend(_i))
        return;
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    ck_assert_int_eq(kart_conn_attach(a, loop), 0);
    queued_ok = queued_bad = 0;
    static const char *const words[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_conn_send_async(a, words[i], strlen(words[i]), on_queued, NULL), 0);
    struct iovec m[2] = {{"four", 4}, {"five", 4}};
    ck_assert_int_eq(kart_conn_send_many(a, m, 2), -EBUSY);
    ck_assert_int_eq(kart_conn_send_many(a, m, 0), -EBUSY);
    ck_assert_int_eq(kart_conn_send_bytes(a, "x", 1), -EBUSY);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(queued_ok, 3);
    ck_assert_int_eq(queued_bad, 0);
    /* Not aborted: the sends still go, and nothing came between them. */
    ck_assert_int_eq(kart_conn_send_many(a, m, 2), 0);
    static const char *const want[] = {"one", "two", "three", "four", "five"};
    for (int i = 0; i < 5; i++) {
        char buf[8];
        size_t n = 0;
        ck_assert_int_eq(kart_conn_recv_bytes_into(b, buf, sizeof(buf), &n), 0);
        ck_assert_uint_eq(n, strlen(want[i]));
        ck_assert_mem_eq(buf, want[i], n);
    }
    ck_assert_int_eq(kart_conn_poll(b, 0), 0); /* nothing more */
    kart_conn_close(a);
    kart_conn_close(b);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    kart_loop_free(loop);
}
END_TEST

static void count_recv(kart_conn *c, int status, const void *msg, size_t len, void *arg)
{
    int *n = arg;
    ck_assert_int_eq(status, 0);
    ck_assert_uint_eq(len, 4);
    if (++*n == 100)
        kart_conn_recv_stop(c);
}

static int send_status = 1;
static void on_send_status(kart_conn *c, int status, void *arg)
{
    send_status = status;
}

START_TEST(loop_send_to_closed_peer_fails)
{
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, _i, 0), 0);
    kart_conn *w = _i ? a : b, *r = _i ? b : a;
    kart_conn_close(r);
    ck_assert_int_eq(kart_conn_attach(w, loop), 0);
    ck_assert_int_eq(kart_conn_send_async(w, "abc", 3, on_send_status, NULL), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert(send_status == -EPIPE || send_status == -ECONNRESET);
    ck_assert_int_eq(kart_conn_send_async(w, "abc", 3, NULL, NULL), -ECONNABORTED);
    sigset_t pend;
    sigpending(&pend);
    ck_assert(!sigismember(&pend, SIGPIPE));
    kart_conn_close(w);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    kart_loop_free(loop);
}
END_TEST

START_TEST(loop_delivers_what_is_already_buffered)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    for (int i = 0; i < 101; i++)
        ck_assert_int_eq(kart_conn_send_bytes(a, "abcd", 4), 0);
    char buf[4];
    size_t n;
    /* One blocking receive reads the rest ahead into the buffer. */
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, buf, 4, &n), 0);
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    ck_assert_int_eq(kart_conn_attach(b, loop), 0);
    int count = 0;
    ck_assert_int_eq(kart_conn_recv_start(b, 10, count_recv, &count), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(count, 100);
    kart_conn_close(a);
    kart_conn_close(b);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    kart_loop_free(loop);
}
END_TEST

/* ---- wait ---- */

START_TEST(wait_over_conns_and_fds)
{
    kart_conn *a, *b, *c, *d;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    ck_assert_int_eq(kart_conn_pipe(&c, &d, 0, 0), 0);
    int p[2];
    kt_pipe(p);
    kart_waitable w[3] = {
        {.kind = KART_WAIT_CONN, .u.conn = b},
        {.kind = KART_WAIT_CONN, .u.conn = c},
        {.kind = KART_WAIT_FD, .u.fd = p[0]},
    };
    ck_assert_int_eq(kart_conn_wait(w, 3, 0), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_conn_wait(w, 3, 20 * KT_MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 20 * KT_MS);
    ck_assert_int_eq(kart_conn_send_bytes(d, "x", 1), 0);
    kt_write(p[1], "y");
    ck_assert_int_eq(kart_conn_wait(w, 3, -1), 2);
    ck_assert_int_eq(w[0].ready, 0);
    ck_assert_int_eq(w[1].ready, 1);
    ck_assert_int_eq(w[2].ready, 1);
    /* A closed peer makes it ready too (the receive returns KART_EEOF). */
    kart_conn_close(a);
    ck_assert_int_eq(kart_conn_wait(w, 1, -1), 1);
    ck_assert_int_eq(kart_conn_wait(NULL, 0, 0), 0);
    ck_assert_int_eq(kart_conn_wait(NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_conn_wait(w, (size_t)INT_MAX + 1, 0), -EINVAL);
    kart_waitable bad = {.kind = 99};
    ck_assert_int_eq(kart_conn_wait(&bad, 1, 0), -EINVAL);
    bad = (kart_waitable){.kind = KART_WAIT_CONN};
    ck_assert_int_eq(kart_conn_wait(&bad, 1, 0), -EINVAL);
    bad = (kart_waitable){.kind = KART_WAIT_LISTENER};
    ck_assert_int_eq(kart_conn_wait(&bad, 1, 0), -EINVAL);
    bad = (kart_waitable){.kind = KART_WAIT_FD, .u.fd = -1};
    ck_assert_int_eq(kart_conn_wait(&bad, 1, 0), -EINVAL);
    bad = (kart_waitable){.kind = KART_WAIT_FD, .u.fd = 1000};
    ck_assert_int_eq(kart_conn_wait(&bad, 1, 0), -EBADF);
    bad = (kart_waitable){.kind = KART_WAIT_CONN, .u.conn = d};
    ck_assert_int_eq(kart_conn_wait(&bad, 1, 0), -EBADF);
    /* A process sentinel (a pidfd) is an fd like any other. */
    pid_t pid = kt_fork();
    if (pid == 0) {
        usleep(20000);
        _exit(0);
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd >= 0) {
        kart_waitable sw[2] = {{.kind = KART_WAIT_FD, .u.fd = pidfd},
                               {.kind = KART_WAIT_CONN, .u.conn = c}};
        ck_assert_int_eq(kart_conn_wait(sw, 1, 0), 0);
        ck_assert_int_eq(kart_conn_wait(sw, 1, 5000 * KT_MS), 1);
        ck_assert_int_eq(sw[0].ready, 1);
        close(pidfd);
    }
    kt_wait_child(pid, NULL);
    /* Many at once (past the on-stack array). */
    kart_waitable many[40];
    for (int i = 0; i < 40; i++)
        many[i] = (kart_waitable){.kind = KART_WAIT_FD, .u.fd = p[0]};
    ck_assert_int_eq(kart_conn_wait(many, 40, 0), 40);
    kart_conn_close(b);
    kart_conn_close(c);
    kart_conn_close(d);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(error_names)
{
    ck_assert_str_eq(kart_err_name(KART_EAUTH), "KART_EAUTH");
    ck_assert_str_eq(kart_err_name(KART_EEOF), "KART_EEOF");
    ck_assert_str_eq(kart_err_name(KART_ETRUNCATED), "KART_ETRUNCATED");
    ck_assert_str_eq(kart_err_name(KART_EBADFRAME), "KART_EBADFRAME");
    ck_assert_str_eq(kart_err_name(KART_EHANDSHAKE), "KART_EHANDSHAKE");
    ck_assert_str_ne(kart_strerror(KART_EAUTH), "unknown error");
}
END_TEST

int main(void)
{
    kt_print_backends();
    Suite *s = suite_create("conn");
    TCase *tc = tcase_create("create");
    tcase_add_test(tc, create_rejects_bad_arguments);
    tcase_add_test(tc, pipe_fds_are_cloexec_and_owned);
    tcase_add_test(tc, error_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("send_recv");
    tcase_add_loop_test(tc, duplex_sizes_both_ways, 0, 2);
    tcase_add_test(tc, oneway_pipe_directions);
    tcase_add_test(tc, send_rejects_bad_arguments);
    tcase_add_loop_test(tc, send_many_packs_messages, 0, 2);
    tcase_add_test(tc, send_many_rejects_bad_arguments);
    tcase_add_loop_test(tc, recv_into_short_buffer_keeps_the_message, 0, 2);
    tcase_add_test(tc, poll_waits_and_times_out);
    tcase_add_test(tc, wire_format_is_pythons);
    tcase_add_loop_test(tc, readahead_and_exact, 0, 2);
    tcase_add_test(tc, sigpipe_never_raised);
    tcase_add_test(tc, eintr_is_retried);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_input");
    tcase_add_test(tc, bad_frames_abort_cleanly);
    tcase_add_test(tc, too_long_for_recv_into_is_not_fatal);
    suite_add_tcase(s, tc);

    tc = tcase_create("loop");
    tcase_add_loop_test(tc, loop_sends_and_receives_whole_messages, 0, 3 * kt_nbackends());
    tcase_add_test(tc, loop_errors);
    tcase_add_loop_test(tc, send_many_busy_while_loop_sends_pending, 0, kt_nbackends());
    tcase_add_test(tc, loop_delivers_what_is_already_buffered);
    tcase_add_loop_test(tc, loop_send_to_closed_peer_fails, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait");
    tcase_add_test(tc, wait_over_conns_and_fds);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: what kart/io.h gives a server talking to many peers:
 * kart_listen() (IPv4, IPv6, every address, SO_REUSEADDR and SO_REUSEPORT,
 * the port picked), kart_sock_queued() (the bytes kart and the kernel
 * hold for a slow peer), one reference-counted buffer sent to many sockets
 * (kart_rcbuf), kart_req_init(), kart_loop_free() with I/O still pending,
 * and every documented error a test can cause. Each loop case runs once
 * per compiled-in backend. */
#define KT_LOOP_HELPERS
#include "testutil.h"
#include "kt_loop.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>

/* Runs the loop until *flag reaches want, failing after 5 s. */
static void run_until(kart_loop *loop, const int *flag, int want)
{
    kt_run_until(loop, flag, want, 5, 5000);
}

static int connect_to(int family, const char *addr, int port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        ck_assert_int_eq(inet_pton(AF_INET6, addr, &a->sin6_addr), 1);
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        ck_assert_int_eq(inet_pton(AF_INET, addr, &a->sin_addr), 1);
        len = sizeof(*a);
    }
    int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c, 0);
    if (connect(c, (struct sockaddr *)&ss, len) < 0) {
        close(c);
        return -errno;
    }
    return c;
}

/* Accepts one connection on a non-blocking listener, waiting up to 2 s. */
static int accept_one(int l)
{
    struct pollfd p = {.fd = l, .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 2000), 1);
    int c = accept(l, NULL, NULL);
    ck_assert_int_ge(c, 0);
    return c;
}

/* ---- kart_listen ---- */

START_TEST(listen_on_ipv4_and_the_port_picked)
{
    int fd = -1, port = 0;
    ck_assert_int_eq(kart_listen("127.0.0.1", 0, NULL, &fd, &port), 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_gt(port, 0);
    ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    int one = 0;
    socklen_t len = sizeof(one);
    ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, &len), 0);
    ck_assert_int_eq(one, 1);
    int c = connect_to(AF_INET, "127.0.0.1", port);
    ck_assert_int_ge(c, 0);
    int a = accept_one(fd);
    close(a);
    close(c);
    close(fd);
    /* no_reuse_addr leaves SO_REUSEADDR off; a port given is the one bound. */
    kart_listen_options o = {.no_reuse_addr = true, .backlog = 4};
    ck_assert_int_eq(kart_listen("127.0.0.1", 0, &o, &fd, NULL), 0);
    ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, &len), 0);
    ck_assert_int_eq(one, 0);
    close(fd);
    int again = -1, port2 = 0;
    ck_assert_int_eq(kart_listen("localhost", port, NULL, &again, &port2), 0);
    ck_assert_int_eq(port2, port);
    close(again);
}
END_TEST

START_TEST(listen_on_every_address_takes_ipv4_and_ipv6)
{
    int fd = -1, port = 0;
    ck_assert_int_eq(kart_listen(NULL, 0, NULL, &fd, &port), 0);
    int c = connect_to(AF_INET, "127.0.0.1", port);
    ck_assert_int_ge(c, 0);
    close(accept_one(fd));
    close(c);
    c = connect_to(AF_INET6, "::1", port);
    if (c != -EADDRNOTAVAIL && c != -EAFNOSUPPORT && c != -ENETUNREACH) {
        ck_assert_int_ge(c, 0);
        close(accept_one(fd));
        close(c);
    }
    close(fd);
    ck_assert_int_eq(kart_listen("", 0, NULL, &fd, &port), 0);
    close(fd);
}
END_TEST

START_TEST(listen_ipv6_only)
{
    int fd = -1, port = 0;
    kart_listen_options o = {.v6only = true};
    int err = kart_listen("::", 0, &o, &fd, &port);
    if (err == -EAFNOSUPPORT || err == -EADDRNOTAVAIL)
        KART_SKIP("no IPv6 here (%s)", kart_strerror(err));
    ck_assert_int_eq(err, 0);
    int c = connect_to(AF_INET6, "::1", port);
    ck_assert_int_ge(c, 0);
    close(accept_one(fd));
    close(c);
    ck_assert_int_eq(connect_to(AF_INET, "127.0.0.1", port), -ECONNREFUSED);
    close(fd);
}
END_TEST

START_TEST(listen_reuse_port_shares_a_port)
{
    int a = -1, b = -1, port = 0, port2 = 0;
    kart_listen_options o = {.reuse_port = true};
    ck_assert_int_eq(kart_listen("127.0.0.1", 0, &o, &a, &port), 0);
    ck_assert_int_eq(kart_listen("127.0.0.1", port, &o, &b, &port2), 0);
    ck_assert_int_eq(port2, port);
    /* Without it the port is taken. */
    int c = -1;
    ck_assert_int_eq(kart_listen("127.0.0.1", port, NULL, &c, NULL), -EADDRINUSE);
    ck_assert_int_eq(c, -1);
    close(a);
    close(b);
}
END_TEST

START_TEST(listen_errors)
{
    int fd = -1;
    kart_listen_options bad = {.backlog = -1};
    ck_assert_int_eq(kart_listen("127.0.0.1", 0, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_listen("127.0.0.1", -1, NULL, &fd, NULL), -EINVAL);
    ck_assert_int_eq(kart_listen("127.0.0.1", 65536, NULL, &fd, NULL), -EINVAL);
    ck_assert_int_eq(kart_listen("127.0.0.1", 0, &bad, &fd, NULL), -EINVAL);
    ck_assert_int_eq(kart_listen("no-such-host.invalid", 0, NULL, &fd, NULL), -ENOENT);
    /* TEST-NET-1: no local interface has it. */
    ck_assert_int_eq(kart_listen("192.0.2.1", 0, NULL, &fd, NULL), -EADDRNOTAVAIL);
    ck_assert_int_eq(fd, -1);
    if (geteuid() != 0) {
        int err = kart_listen("127.0.0.1", 1, NULL, &fd, NULL);
        /* Linux lets anyone bind low ports when ip_unprivileged_port_start allows. */
        if (err != 0)
            ck_assert_int_eq(err, -EACCES);
        else
            close(fd);
    }
}
END_TEST

/* ---- a loop's sockets ---- */

typedef struct peer {
    kart_sock sock;
    kart_req close_req;
    int sent, sent_res, closed;
} peer;

static void on_sent(kart_sock *s, int res)
{
    peer *p = s->base.data;
    p->sent++;
    p->sent_res = res;
}

static void on_closed(kart_req *r, int res)
{
    peer *p = r->data;
    ck_assert_int_eq(res, 0);
    p->closed++;
}

static void peer_init(kart_loop *loop, peer *p, int fd)
{
    memset(p, 0, sizeof(*p));
    p->sock.base.data = p;
    ck_assert_int_eq(kart_req_init(&p->close_req), 0);
    p->close_req.data = p;
    ck_assert_int_eq(kart_sock_init(loop, &p->sock, fd), 0);
}

static void peer_close(kart_loop *loop, peer *p)
{
    ck_assert_int_eq(kart_sock_close(&p->sock, &p->close_req, on_closed), 0);
    run_until(loop, &p->closed, 1);
}

#define FANOUT 5

START_TEST(one_buffer_to_many_sockets)
{
    LOOP_OR_SKIP(_i);
    int sv[FANOUT][2];
    peer p[FANOUT];
    for (int k = 0; k < FANOUT; k++) {
        kt_tcp_pair(sv[k]);
        peer_init(loop, &p[k], sv[k][1]);
    }
    kart_rcbuf *b;
    ck_assert_int_eq(kart_rcbuf_create(&b, 64), 0);
    ck_assert_uint_eq(b->size, 64);
    memcpy(b->base, "broadcast!", 10);
    for (int k = 0; k < FANOUT; k++)
        ck_assert_int_eq(kart_sock_send_rcbuf(&p[k].sock, b, 10, -1, on_sent), 0);
    /* The creator lets go at once: the sends hold it. */
    kart_rcbuf_free(b);
    kart_rcbuf_free(NULL);
    for (int k = 0; k < FANOUT; k++)
        ck_assert_int_eq(p[k].sent, 0); /* never inside the start */
    for (int k = 0; k < FANOUT; k++) {
        run_until(loop, &p[k].sent, 1);
        ck_assert_int_eq(p[k].sent_res, 10);
        char got[16] = "";
        ck_assert_int_eq(read(sv[k][0], got, sizeof(got)), 10);
        ck_assert_mem_eq(got, "broadcast!", 10);
    }
    /* A NULL callback is allowed. */
    ck_assert_int_eq(kart_rcbuf_create(&b, 4), 0);
    memcpy(b->base, "abcd", 4);
    ck_assert_int_eq(kart_sock_send_rcbuf(&p[0].sock, b, 4, -1, NULL), 0);
    kart_rcbuf_free(b);
    char got[8];
    struct pollfd pf = {.fd = sv[0][0], .events = POLLIN};
    while (poll(&pf, 1, 0) == 0)
        kart_loop_run(loop, KART_RUN_NOWAIT);
    ck_assert_int_eq(read(sv[0][0], got, sizeof(got)), 4);
    for (int k = 0; k < FANOUT; k++) {
        peer_close(loop, &p[k]);
        close(sv[k][0]);
    }
    close_loop(loop);
}
END_TEST

START_TEST(rcbuf_errors)
{
    LOOP_OR_SKIP(_i);
    kart_rcbuf *b = NULL;
    ck_assert_int_eq(kart_rcbuf_create(NULL, 8), -EINVAL);
    ck_assert_int_eq(kart_rcbuf_create(&b, 0), -EINVAL);
    ck_assert_int_eq(kart_rcbuf_create(&b, (size_t)INT32_MAX + 1), -EINVAL);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(kart_rcbuf_create(&b, 8), 0);
    int sv[2];
    kt_tcp_pair(sv);
    peer p;
    peer_init(loop, &p, sv[1]);
    ck_assert_int_eq(kart_sock_send_rcbuf(NULL, b, 1, -1, on_sent), -EINVAL);
    ck_assert_int_eq(kart_sock_send_rcbuf(&p.sock, NULL, 1, -1, on_sent), -EINVAL);
    ck_assert_int_eq(kart_sock_send_rcbuf(&p.sock, b, 9, -1, on_sent), -EINVAL);
    kart_rcbuf_free(b);
    peer_close(loop, &p);
    close(sv[0]);
    close_loop(loop);
}
END_TEST

static void on_shut(kart_req *r, int res)
{
    int *n = r->data;
    ck_assert_int_eq(res, 0);
    (*n)++;
}

START_TEST(rcbuf_send_after_shutdown_is_epipe)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_tcp_pair(sv);
    peer p;
    peer_init(loop, &p, sv[1]);
    kart_req sh;
    ck_assert_int_eq(kart_req_init(&sh), 0);
    int shut = 0;
    sh.data = &shut;
    ck_assert_int_eq(kart_sock_shutdown(&p.sock, &sh, SHUT_WR, on_shut), 0);
    run_until(loop, &shut, 1);
    kart_rcbuf *b;
    ck_assert_int_eq(kart_rcbuf_create(&b, 8), 0);
    ck_assert_int_eq(kart_sock_send_rcbuf(&p.sock, b, 8, -1, on_sent), -EPIPE);
    kart_rcbuf_free(b); /* the failed send holds nothing: ASan sees it freed */
    ck_assert_int_eq(p.sent, 0);
    peer_close(loop, &p);
    close(sv[0]);
    close_loop(loop);
}
END_TEST

/* A peer that does not read: the bytes pile up in the kernel, then in
 * kart; once it reads they drain to 0. */
START_TEST(queued_bytes_of_a_slow_peer)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_tcp_pair(sv);
    /* 16 MiB: more than both kernel buffers hold on loopback (tcp_wmem
     * and tcp_rmem's maxima are 4 and 6 MiB). */
    peer p;
    peer_init(loop, &p, sv[1]);
    size_t q = 99, k = 99;
    ck_assert_int_eq(kart_sock_queued(&p.sock, &q, &k), 0);
    ck_assert_uint_eq(q, 0);
    ck_assert_uint_eq(k, 0);
    enum { N = 256, LEN = 1 << 16 };
    static char data[LEN];
    memset(data, 'q', sizeof(data));
    kart_rcbuf *b;
    ck_assert_int_eq(kart_rcbuf_create(&b, LEN), 0);
    memcpy(b->base, data, LEN);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(kart_sock_send_rcbuf(&p.sock, b, LEN, -1, on_sent), 0);
    kart_rcbuf_free(b);
    ck_assert_int_eq(kart_sock_queued(&p.sock, &q, NULL), 0);
    ck_assert_uint_gt(q, 0); /* more than the kernel takes at once */
    for (int i = 0; i < 20; i++)
        kart_loop_run(loop, KART_RUN_NOWAIT);
    ck_assert_int_eq(kart_sock_queued(&p.sock, &q, &k), 0);
    ck_assert_uint_gt(q, 0); /* the peer reads nothing: kart still holds some */
    ck_assert_uint_le(q, (size_t)N * LEN);
    ck_assert_uint_gt(k, 0); /* and the kernel's buffer is full */
    ck_assert_int_eq(kart_sock_queued(&p.sock, NULL, NULL), 0);
    /* The peer reads everything: the queue drains. */
    size_t total = 0;
    static char buf[1 << 16];
    int64_t end = kart_now_ns() + 5000 * KT_MS;
    while (total < (size_t)N * LEN) {
        if (kart_now_ns() >= end) {
            kart_sock_queued(&p.sock, &q, &k);
            ck_abort_msg("total %zu q %zu k %zu sent %d", total, q, k, p.sent);
        }
        kart_loop_run(loop, KART_RUN_NOWAIT);
        ssize_t r = recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0)
            total += (size_t)r;
    }
    run_until(loop, &p.sent, N);
    ck_assert_int_eq(kart_sock_queued(&p.sock, &q, &k), 0);
    ck_assert_uint_eq(q, 0);
    /* The kernel's count falls to 0 once the peer has acknowledged all. */
    while (k > 0) {
        ck_assert(kart_now_ns() < end);
        sleep_ns(KT_MS);
        ck_assert_int_eq(kart_sock_queued(&p.sock, NULL, &k), 0);
    }
    ck_assert_int_eq(kart_sock_queued(NULL, &q, &k), -EINVAL);
    peer_close(loop, &p);
    close(sv[0]);
    /* A socket whose fd was closed behind kart's back. */
    int fds[2];
    kt_socketpair(fds);
    kart_sock s;
    ck_assert_int_eq(kart_sock_init(loop, &s, fds[0]), 0);
    close2(fds);
    q = 7;
    ck_assert_int_eq(kart_sock_queued(&s, &q, &k), -EBADF);
    ck_assert_uint_eq(q, 7);
    close_loop(loop);
}
END_TEST

START_TEST(req_init_keeps_data_and_sets_up)
{
    LOOP_OR_SKIP(_i);
    kart_req r;
    memset(&r, 0xa5, sizeof(r));
    int tag;
    r.data = &tag;
    ck_assert_int_eq(kart_req_init(&r), 0);
    ck_assert_ptr_eq(r.data, &tag);
    ck_assert_int_eq(kart_req_is_active(&r), 0);
    ck_assert_int_eq(r.type, KART_REQ_NONE);
    ck_assert_int_eq(kart_req_cancel(&r), -EALREADY);
    ck_assert_int_eq(kart_req_init(NULL), -EINVAL);
    close_loop(loop);
}
END_TEST

static void never_recv(kart_sock *s, int n, kart_buf *b)
{
    (void)s;
    (void)b;
    ck_abort_msg("receive callback ran (%d) after the loop was freed", n);
}

static void never_sent(kart_sock *s, int res)
{
    (void)s;
    ck_abort_msg("send callback ran (%d) after the loop was freed", res);
}

/* kart_loop_free with a receive active and sends pending: no callback
 * runs, nothing leaks (ASan), the fds stay the caller's. */
START_TEST(loop_free_drops_pending_io)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_tcp_pair(sv);
    int small = 4096;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    peer p;
    peer_init(loop, &p, sv[1]);
    ck_assert_int_eq(kart_sock_recv_start(&p.sock, never_recv), 0);
    kart_rcbuf *b;
    ck_assert_int_eq(kart_rcbuf_create(&b, 1 << 20), 0);
    memset(b->base, 'z', b->size);
    ck_assert_int_eq(kart_sock_send_rcbuf(&p.sock, b, b->size, -1, never_sent), 0);
    ck_assert_int_eq(kart_sock_send_rcbuf(&p.sock, b, b->size, 10 * KT_MS, never_sent), 0);
    kart_loop_run(loop, KART_RUN_NOWAIT);
    ck_assert_int_ge(kart_loop_active_handles(loop), 3);
    kart_rcbuf_free(b);
    kart_loop_free(loop);
    /* The socket's fd is still open and usable. */
    ck_assert_int_ge(fcntl(sv[1], F_GETFD), 0);
    close2(sv);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    kt_print_backends();
    int nb = kt_nbackends();
    Suite *s = suite_create("io_share");
    TCase *tc = tcase_create("listen");
    tcase_add_test(tc, listen_on_ipv4_and_the_port_picked);
    tcase_add_test(tc, listen_on_every_address_takes_ipv4_and_ipv6);
    tcase_add_test(tc, listen_ipv6_only);
    tcase_add_test(tc, listen_reuse_port_shares_a_port);
    tcase_add_test(tc, listen_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("sockets");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, one_buffer_to_many_sockets, 0, nb);
    tcase_add_loop_test(tc, rcbuf_errors, 0, nb);
    tcase_add_loop_test(tc, rcbuf_send_after_shutdown_is_epipe, 0, nb);
    tcase_add_loop_test(tc, queued_bytes_of_a_slow_peer, 0, nb);
    tcase_add_loop_test(tc, req_init_keeps_data_and_sets_up, 0, nb);
    tcase_add_loop_test(tc, loop_free_drops_pending_io, 0, nb);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: closing a socket on the loop (kart/io.h): the graceful
 * close (kart_sock_close_graceful: queued sends finish, then the fd is
 * closed; a timeout or a cancel turns it abortive) against the abortive
 * kart_sock_close; a half-closed echo of 100 kB and 4 MB that must come
 * back whole on every backend (io_uring lost the tail when the echo closed
 * on EOF with sends still queued), a peer that never reads, and every
 * documented error. Every case runs once per compiled-in backend and once
 * more on io_uring with its native operations turned off. */
#include "io_backends.h"
#include "kt_fds.h"
#include "testutil.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

/* ---- backends and loops ---- */

static int tcp_listener(struct sockaddr_in *a)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    *a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(*a);
    ck_assert_int_eq(bind(l, (struct sockaddr *)a, sizeof(*a)), 0);
    ck_assert_int_eq(listen(l, 16), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)a, &len), 0);
    return l;
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 251);
}

/* ---- the half-closing client, on its own thread ---- */

typedef struct client {
    struct sockaddr_in addr;
    size_t len; /* bytes to send, then SHUT_WR */
    size_t got; /* bytes echoed back before EOF */
    size_t bad; /* first byte that differs, or len */
    int err;    /* an unexpected errno */
    atomic_int done;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    c->bad = c->len;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&c->addr, sizeof(c->addr)) < 0) {
        c->err = errno;
        atomic_store(&c->done, 1);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    static __thread unsigned char out[65536], in[65536];
    size_t sent = 0;
    bool shut = false;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (shut ? 0 : POLLOUT)};
        if (poll(&p, 1, 10000) <= 0) {
            c->err = ETIMEDOUT;
            break;
        }
        if (!shut && (p.revents & POLLOUT)) {
            size_t n = c->len - sent < sizeof(out) ? c->len - sent : sizeof(out);
            for (size_t k = 0; k < n; k++)
                out[k] = pattern(sent + k);
            ssize_t w = send(fd, out, n, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN) {
                c->err = errno;
                break;
            }
            if (sent == c->len) {
                shutdown(fd, SHUT_WR);
                shut = true;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, in, sizeof(in), 0);
            if (r == 0)
                break;
            if (r < 0) {
                if (errno == EAGAIN)
                    continue;
                c->err = errno;
                break;
            }
            for (ssize_t k = 0; k < r; k++)
                if (c->bad == c->len && in[k] != pattern(c->got + (size_t)k))
                    c->bad = c->got + (size_t)k;
            c->got += (size_t)r;
        }
    }
    close(fd);
    atomic_store(&c->done, 1);
    return NULL;
}

/* ---- the echo server on the loop ---- */

typedef struct echo_srv {
    kart_sock listener;
    kart_req accept_req, listener_close;
    bool graceful;
    bool slots;        /* echo-server's way: 4 sends in flight, the receive paused */
    atomic_int closed; /* connections whose close callback ran */
    int close_res;
} echo_srv;

#define SLOTS 4
typedef struct echo_conn {
    kart_sock sock;
    kart_req close;
    echo_srv *srv;
    kart_req send[SLOTS];
    kart_buf *buf[SLOTS];
    unsigned busy;
    bool paused;
} echo_conn;

static void echo_closed(kart_req *r, int res)
{
    echo_conn *c = r->data;
    c->srv->close_res = res;
    atomic_fetch_add(&c->srv->closed, 1);
    free(c);
}

static void echo_end(echo_conn *c)
{
    int err = c->srv->graceful ? kart_sock_close_graceful(&c->sock, &c->close, -1, echo_closed)
                               : kart_sock_close(&c->sock, &c->close, echo_closed);
    ck_assert(err == 0 || err == -EALREADY);
}

static void echo_recv(kart_sock *s, int n, kart_buf *buf);

static void slot_sent(kart_req *r, int res)
{
    echo_conn *c = r->sock->base.data;
    int k = (int)(r - c->send);
    kart_buf_release(c->buf[k]);
    c->busy &= ~(1u << k);
    ck_assert_int_gt(res, 0);
    if (c->paused && !kart_req_is_active(&c->close)) {
        c->paused = false;
        ck_assert_int_eq(kart_sock_recv_start(&c->sock, echo_recv), 0);
    }
}

/* A receive stopped while sends are in flight, and started again when
 * one is done (examples/echo-server.c): data that arrives meanwhile is
 * stashed, and EOF must come after it. */
static void echo_recv_slots(echo_conn *c, int n, kart_buf *buf)
{
    int k = __builtin_ctz(~c->busy);
    c->buf[k] = buf;
    c->busy |= 1u << k;
    ck_assert_int_eq(kart_sock_send(&c->sock, &c->send[k], buf->base, (size_t)n, -1, slot_sent), 0);
    if (c->busy == (1u << SLOTS) - 1) {
        c->paused = true;
        ck_assert_int_eq(kart_sock_recv_stop(&c->sock), 0);
    }
}

static void echo_recv(kart_sock *s, int n, kart_buf *buf)
{
    echo_conn *c = s->base.data;
    if (n > 0 && c->srv->slots) {
        echo_recv_slots(c, n, buf);
        return;
    }
    if (n <= 0 || kart_sock_send_buf(s, buf, (size_t)n, NULL) < 0) {
        kart_buf_release(buf);
        echo_end(c);
    }
}

static void echo_accept(kart_req *r, int fd)
{
    echo_srv *srv = r->data;
    if (fd < 0)
        return;
    echo_conn *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->srv = srv;
    c->sock.base.data = c->close.data = c;
    ck_assert_int_eq(kart_sock_init(r->loop, &c->sock, fd), 0);
    ck_assert_int_eq(kart_sock_recv_start(&c->sock, echo_recv), 0);
}

static void listener_closed(kart_req *r, int res)
{
    (void)r;
    (void)res;
}

/* Echoes len bytes to a client that half-closes after sending them. */
static void half_close_echo(int i, size_t len, bool graceful, bool slots)
{
    if (getenv("KT_ABORTIVE_ECHO")) /* to show the loss the graceful close fixes */
        graceful = false;
    IO_LOOP_OR_SKIP(i, 0);
    echo_srv srv = {.graceful = graceful, .slots = slots};
    client cl = {.len = len};
    int lfd = tcp_listener(&cl.addr);
    srv.accept_req.data = &srv;
    ck_assert_int_eq(kart_sock_init(loop, &srv.listener, lfd), 0);
    ck_assert_int_eq(kart_sock_accept(&srv.listener, &srv.accept_req, echo_accept), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, client_main, &cl), 0);
    io_run_until(loop, &cl.done, 1, 20000);
    io_run_until(loop, &srv.closed, 1, 5000);
    pthread_join(th, NULL);
    ck_assert_int_eq(kart_sock_close(&srv.listener, &srv.listener_close, listener_closed), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(cl.err, 0);
    ck_assert_msg(cl.got == len, "%s: %zu of %zu bytes came back", backend, cl.got, len);
    ck_assert_uint_eq(cl.bad, len);
    ck_assert_int_eq(srv.close_res, 0);
    io_close_loop(loop);
}

START_TEST(half_close_echo_100k_comes_back_whole)
{
    half_close_echo(_i, 100000, true, false);
}
END_TEST

START_TEST(half_close_echo_4m_comes_back_whole)
{
    half_close_echo(_i, 4u << 20, true, false);
}
END_TEST

START_TEST(half_close_echo_with_paused_receives_comes_back_whole)
{
    half_close_echo(_i, 100000, true, true);
    half_close_echo(_i, 4u << 20, true, true);
}
END_TEST


/* ---- a pair: kart's end on the loop, a plain peer ---- */

typedef struct pair {
    kart_loop *loop;
    kart_sock sock;
    kart_req close;
    atomic_int closed;
    int close_res;
    int peer; /* blocking */
} pair;

static void pair_closed(kart_req *r, int res)
{
    pair *p = r->data;
    p->close_res = res;
    atomic_fetch_add(&p->closed, 1);
}

/* sndbuf: SO_SNDBUF of kart's end (0: the default). */
static void pair_open(kart_loop *loop, pair *p, int sndbuf)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    int sv[2];
    kt_tcp_pair(sv);
    p->peer = sv[0];
    if (sndbuf) {
        ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    }
    p->sock.base.data = p->close.data = p;
    ck_assert_int_eq(kart_sock_init(loop, &p->sock, sv[1]), 0);
}

/* Sends queued on the pair: each records its result and its turn. */
#define NSEND 64
typedef struct sends {
    kart_req req[NSEND];
    int res[NSEND];
    int order[NSEND];
    atomic_int calls;
    int closed_at; /* calls seen when the close callback ran */
} sends;

static void on_sent(kart_req *r, int res)
{
    sends *q = r->data;
    int k = (int)(r - q->req);
    q->res[k] = res;
    q->order[atomic_fetch_add(&q->calls, 1)] = k;
}

static void queue_sends(pair *p, sends *q, const char *buf, size_t each)
{
    memset(q, 0, sizeof(*q));
    for (int k = 0; k < NSEND; k++) {
        q->req[k].data = q;
        ck_assert_int_eq(kart_sock_send(&p->sock, &q->req[k], buf, each, -1, on_sent), 0);
    }
}

typedef struct reader {
    int fd;
    size_t got;
    atomic_int done;
} reader;

static void *reader_main(void *arg)
{
    reader *r = arg;
    static __thread char buf[65536];
    ssize_t n;
    while ((n = read(r->fd, buf, sizeof(buf))) > 0)
        r->got += (size_t)n;
    atomic_store(&r->done, 1);
    return NULL;
}

START_TEST(graceful_close_finishes_the_queued_sends_first)
{
    IO_LOOP_OR_SKIP(_i, 0);
    pair p;
    pair_open(loop, &p, 4096);
    static char buf[65536];
    sends q;
    queue_sends(&p, &q, buf, sizeof(buf));
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, &p.close, -1, pair_closed), 0);
    /* Nothing new goes in while it drains. */
    kart_req late;
    kart_req_init(&late);
    ck_assert_int_eq(kart_sock_send(&p.sock, &late, buf, 1, -1, on_sent), -EPIPE);
    ck_assert_int_eq(kart_sock_shutdown(&p.sock, &late, SHUT_WR, on_sent), -EPIPE);
    ck_assert_int_eq(kart_sock_recv_start(&p.sock, NULL), -EINVAL);
    reader rd = {.fd = p.peer};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, reader_main, &rd), 0);
    io_run_until(loop, &p.closed, 1, 20000);
    ck_assert_int_eq(atomic_load(&q.calls), NSEND);
    io_run_until(loop, &rd.done, 1, 5000);
    pthread_join(th, NULL);
    ck_assert_int_eq(p.close_res, 0);
    ck_assert_uint_eq(rd.got, (size_t)NSEND * sizeof(buf));
    KT_ASSERT_EACH(k, NSEND, q.res[k] == (int)sizeof(buf) && q.order[k] == (int)k);
    close(p.peer);
    io_close_loop(loop);
}
END_TEST

/* A peer that never reads: the timeout bounds the close, and the
 * descriptor goes all the same. */
START_TEST(graceful_close_times_out_on_a_peer_that_never_reads)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int fds = kt_open_fds();
    pair p;
    pair_open(loop, &p, 4096);
    static char buf[65536];
    sends q;
    queue_sends(&p, &q, buf, sizeof(buf));
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, &p.close, 200 * KT_MS, pair_closed), 0);
    ck_assert_int_eq(kart_sock_close(&p.sock, &p.close, pair_closed), -EINVAL); /* pending */
    kart_req other;
    kart_req_init(&other);
    ck_assert_int_eq(kart_sock_close(&p.sock, &other, pair_closed), -EALREADY);
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, &other, -1, pair_closed), -EALREADY);
    io_run_until(loop, &p.closed, 1, 5000);
    int64_t took = kart_now_ns() - t0;
    ck_assert_int_eq(p.close_res, -ETIMEDOUT);
    ck_assert_msg(took >= 190 * KT_MS && took < 3000 * KT_MS, "took %lld ms",
                  (long long)(took / KT_MS));
    ck_assert_int_eq(atomic_load(&q.calls), NSEND);
    int cancelled = 0;
    for (int k = 0; k < NSEND; k++) {
        ck_assert(q.res[k] == (int)sizeof(buf) || q.res[k] == -ECANCELED);
        cancelled += q.res[k] == -ECANCELED;
    }
    ck_assert_int_gt(cancelled, 0);
    ck_assert_int_eq(kart_req_cancel(&p.close), -EALREADY);
    close(p.peer);
    ck_assert_int_eq(kt_open_fds(), fds);
    io_close_loop(loop);
}
END_TEST

START_TEST(graceful_close_cancelled_turns_abortive)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int fds = kt_open_fds();
    pair p;
    pair_open(loop, &p, 4096);
    static char buf[65536];
    sends q;
    queue_sends(&p, &q, buf, sizeof(buf));
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, &p.close, -1, pair_closed), 0);
    for (int k = 0; k < 3; k++)
        ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(atomic_load(&p.closed), 0);
    ck_assert_int_eq(kart_req_cancel(&p.close), 0);
    ck_assert_int_eq(kart_req_cancel(&p.close), -EALREADY); /* the fd is being closed */
    io_run_until(loop, &p.closed, 1, 5000);
    ck_assert_int_eq(p.close_res, -ECANCELED);
    ck_assert_int_eq(atomic_load(&q.calls), NSEND);
    ck_assert_int_eq(q.res[NSEND - 1], -ECANCELED);
    close(p.peer);
    ck_assert_int_eq(kt_open_fds(), fds);
    io_close_loop(loop);
}
END_TEST

/* timeout 0 does not wait: abortive at once when sends are queued, a
 * plain close when none are. */
START_TEST(graceful_close_with_zero_timeout_does_not_wait)
{
    IO_LOOP_OR_SKIP(_i, 0);
    pair p;
    pair_open(loop, &p, 4096);
    static char buf[65536];
    sends q;
    queue_sends(&p, &q, buf, sizeof(buf));
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, &p.close, 0, pair_closed), 0);
    io_run_until(loop, &p.closed, 1, 5000);
    ck_assert_int_eq(p.close_res, -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&q.calls), NSEND);
    ck_assert_int_eq(q.res[NSEND - 1], -ECANCELED);
    close(p.peer);

    pair_open(loop, &p, 0);
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, &p.close, 0, pair_closed), 0);
    ck_assert_int_eq(atomic_load(&p.closed), 0); /* never inside the call */
    io_run_until(loop, &p.closed, 1, 5000);
    ck_assert_int_eq(p.close_res, 0);
    char c;
    ck_assert_int_eq(read(p.peer, &c, 1), 0); /* EOF: the fd is closed */
    close(p.peer);
    io_close_loop(loop);
}
END_TEST

static void never_cb(kart_req *r, int res)
{
    (void)r;
    ck_abort_msg("callback ran with %d after a failed start", res);
}

static void on_recv_never(kart_sock *s, int n, kart_buf *b)
{
    (void)s;
    (void)b;
    ck_abort_msg("receive callback ran with %d while closing", n);
}

START_TEST(graceful_close_errors_and_what_it_refuses)
{
    IO_LOOP_OR_SKIP(_i, 0);
    pair p;
    pair_open(loop, &p, 0);
    kart_req r;
    kart_req_init(&r);
    ck_assert_int_eq(kart_sock_close_graceful(NULL, &r, -1, never_cb), -EINVAL);
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, NULL, -1, never_cb), -EINVAL);
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, &r, -1, NULL), -EINVAL);
    /* The receive stops at once: data that comes later is not delivered. */
    ck_assert_int_eq(kart_sock_recv_start(&p.sock, on_recv_never), 0);
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, &p.close, -1, pair_closed), 0);
    ck_assert_int_eq(write(p.peer, "x", 1), 1);
    ck_assert_int_eq(kart_sock_recv_start(&p.sock, on_recv_never), -EPIPE);
    ck_assert_int_eq(kart_sock_send(&p.sock, &r, "x", 1, -1, never_cb), -EPIPE);
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, &r, -1, never_cb), -EALREADY);
    ck_assert_int_eq(kart_sock_close(&p.sock, &r, never_cb), -EALREADY);
    io_run_until(loop, &p.closed, 1, 5000);
    ck_assert_int_eq(p.close_res, 0);
    ck_assert_int_eq(kart_req_cancel(&p.close), -EALREADY);
    close(p.peer);
    io_close_loop(loop);
}
END_TEST

/* A connect in progress has no bytes to finish: it ends, cancelled. */
static void on_connect(kart_req *r, int res)
{
    int *out = r->data;
    *out = res;
}

START_TEST(graceful_close_cancels_a_pending_connect)
{
    IO_LOOP_OR_SKIP(_i, 0);
    pair p;
    memset(&p, 0, sizeof(p));
    p.close.data = &p;
    /* A non-routable address keeps the connect pending. */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, "10.255.255.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ck_assert_int_eq(kart_sock_init(loop, &p.sock, fd), 0);
    kart_req c;
    kart_req_init(&c);
    int res = 1;
    c.data = &res;
    ck_assert_int_eq(
        kart_sock_connect(&p.sock, &c, (struct sockaddr *)&a, sizeof(a), -1, on_connect), 0);
    ck_assert_int_eq(kart_sock_close_graceful(&p.sock, &p.close, -1, pair_closed), 0);
    io_run_until(loop, &p.closed, 1, 5000);
    ck_assert(res == -ECANCELED || res == -ENETUNREACH || res == -EHOSTUNREACH);
    ck_assert_int_eq(p.close_res, 0);
    io_close_loop(loop);
}
END_TEST

int main(void)
{
    int nb = nb_io();
    kt_print_backends();
    Suite *s = suite_create("io_close");
    TCase *tc = tcase_create("half_close");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, half_close_echo_100k_comes_back_whole, 0, nb);
    tcase_add_loop_test(tc, half_close_echo_4m_comes_back_whole, 0, nb);
    tcase_add_loop_test(tc, half_close_echo_with_paused_receives_comes_back_whole, 0, nb);
    suite_add_tcase(s, tc);
    tc = tcase_create("graceful");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, graceful_close_finishes_the_queued_sends_first, 0, nb);
    tcase_add_loop_test(tc, graceful_close_times_out_on_a_peer_that_never_reads, 0, nb);
    tcase_add_loop_test(tc, graceful_close_cancelled_turns_abortive, 0, nb);
    tcase_add_loop_test(tc, graceful_close_with_zero_timeout_does_not_wait, 0, nb);
    tcase_add_loop_test(tc, graceful_close_errors_and_what_it_refuses, 0, nb);
    tcase_add_loop_test(tc, graceful_close_cancels_a_pending_connect, 0, nb);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

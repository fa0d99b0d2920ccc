/* Description: completion-based I/O on the loop (kart/io.h): accept,
 * connect, recv with the loop's buffer pool, ordered sends, shutdown,
 * close, file reads and writes, timeouts, cancels and their races, the
 * descriptor limit on accept, buffer starvation, completion-ring overflow,
 * and every documented error. Every case runs once per compiled-in backend
 * and once more on io_uring with its native operations turned off
 * (KART_URING_NATIVE_IO=0: the emulation over io_uring's polls). */
#include "io_backends.h"
#include "kt_loop.h"
#include "testutil.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* ---- backends ---- */

/* Runs the loop until *flag reaches want, failing after 5 s. */
static void run_until(kart_loop *loop, const int *flag, int want)
{
    kt_run_until(loop, flag, want, 5, 5000);
}

/* Runs a few turns without waiting for anything in particular. */
static void run_for(kart_loop *loop, int ms)
{
    int never = 0;
    kart_timer hb;
    ck_assert_int_eq(kart_timer_init(loop, &hb), 0);
    ck_assert_int_eq(kart_timer_start(&hb, hb_cb, 2 * KT_MS, 2 * KT_MS), 0);
    int64_t end = kart_now_ns() + ms * KT_MS;
    while (kart_now_ns() < end && !never)
        ck_assert_int_ge(kart_loop_run(loop, KART_RUN_ONCE), 0);
    kart_timer_stop(&hb);
}

/* A listening TCP socket on 127.0.0.1; its address in *a. */
static int tcp_listener(struct sockaddr_in *a, int backlog)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    *a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(*a);
    ck_assert_int_eq(bind(l, (struct sockaddr *)a, sizeof(*a)), 0);
    ck_assert_int_eq(listen(l, backlog), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)a, &len), 0);
    return l;
}

static int tcp_client(const struct sockaddr_in *a)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(connect(c, (const struct sockaddr *)a, sizeof(*a)), 0);
    return c;
}

static void read_exact(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
}

/* A connection the tests drive: what its callbacks saw. */
typedef struct conn {
    kart_sock sock;
    kart_req close_req;
    int closed, close_res;
    int eof, err, recv_calls;
    size_t ngot;
    char got[1 << 16];
    int order[64]; /* callback order of sends */
    int norder;
    bool hold; /* keep received buffers instead of releasing them */
    kart_buf *held[64];
    int nheld;
} conn;

static void on_recv(kart_sock *s, int n, kart_buf *buf)
{
    conn *c = s->base.data;
    c->recv_calls++;
    if (n > 0) {
        ck_assert_ptr_nonnull(buf);
        ck_assert_uint_le((unsigned)n, buf->size);
        if (c->ngot + (size_t)n <= sizeof(c->got))
            memcpy(c->got + c->ngot, buf->base, (size_t)n);
        c->ngot += (size_t)n;
        if (c->hold && c->nheld < 64)
            c->held[c->nheld++] = buf;
        else
            kart_buf_release(buf);
    } else if (n == 0) {
        ck_assert_ptr_null(buf);
        c->eof++;
    } else {
        ck_assert_ptr_null(buf);
        c->err = n;
    }
}

static void on_close(kart_req *r, int res)
{
    conn *c = r->data;
    c->closed++;
    c->close_res = res;
}

static void conn_init(kart_loop *loop, conn *c, int fd)
{
    memset(c, 0, sizeof(*c));
    c->sock.base.data = c;
    c->close_req.data = c;
    ck_assert_int_eq(kart_sock_init(loop, &c->sock, fd), 0);
    ck_assert_ptr_eq(c->sock.base.data, c);
}

static void conn_close(kart_loop *loop, conn *c)
{
    ck_assert_int_eq(kart_sock_close(&c->sock, &c->close_req, on_close), 0);
    run_until(loop, &c->closed, 1);
    ck_assert_int_eq(c->close_res, 0);
}

/* A request and what its callback saw. */
typedef struct op {
    kart_req req;
    int calls, res;
    int *order; /* appends its index here */
    int *norder;
    int index;
} op;

static void on_op(kart_req *r, int res)
{
    op *o = (op *)r;
    o->calls++;
    o->res = res;
    ck_assert_int_eq(kart_req_is_active(r), 0);
    if (o->order)
        o->order[(*o->norder)++] = o->index;
}

/* ---- recv and send ---- */

START_TEST(echo_round_trips)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    op s[8];
    memset(s, 0, sizeof(s));
    char msg[8][32];
    for (int k = 0; k < 8; k++) {
        kt_write(sv[0], "ping");
        run_until(loop, (int *)&c.ngot, (int)(4 * (k + 1)));
        snprintf(msg[k], sizeof(msg[k]), "pong%d", k);
        ck_assert_int_eq(kart_sock_send(&c.sock, &s[k].req, msg[k], strlen(msg[k]), -1, on_op), 0);
        ck_assert_int_eq(kart_req_is_active(&s[k].req), 1);
        ck_assert_int_eq(s[k].calls, 0); /* never inside the start */
        run_until(loop, &s[k].calls, 1);
        ck_assert_int_eq(s[k].res, (int)strlen(msg[k]));
        char back[32] = "";
        read_exact(sv[0], back, strlen(msg[k]));
        ck_assert_str_eq(back, msg[k]);
    }
    ck_assert_mem_eq(c.got, "pingpingpingpingpingpingpingping", 32);
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
    ck_assert_int_eq(st.bufs_lent, 0);
    ck_assert_int_eq(st.native, strcmp(backend, "uring") == 0 && !getenv("KART_URING_NATIVE_IO"));
    /* The default pool: smaller where io_uring cycles every buffer. */
    ck_assert_uint_eq(st.bufs_total, st.native ? 256 : 512);
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

static void echo_sent(kart_sock *s, int res)
{
    conn *c = s->base.data;
    ck_assert_int_gt(res, 0);
    c->norder++;
}

static void echo_recv(kart_sock *s, int n, kart_buf *b)
{
    conn *c = s->base.data;
    c->recv_calls++;
    if (n <= 0) {
        c->eof++;
        return;
    }
    c->ngot += (size_t)n;
    /* Checks of kart_sock_send_buf's errors, on a real lent buffer. */
    ck_assert_int_eq(kart_sock_send_buf(NULL, b, (size_t)n, echo_sent), -EINVAL);
    ck_assert_int_eq(kart_sock_send_buf(s, NULL, (size_t)n, echo_sent), -EINVAL);
    ck_assert_int_eq(kart_sock_send_buf(s, b, (size_t)b->size + 1, echo_sent), -EINVAL);
    ck_assert_int_eq(kart_sock_send_buf(s, b, (size_t)n, echo_sent), 0);
    ck_assert_int_eq(kart_sock_send_buf(s, b, (size_t)n, echo_sent), -EINVAL); /* in flight */
}

START_TEST(zero_copy_echo_with_send_buf)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, echo_recv), 0);
    char out[4000], back[4000];
    for (int k = 0; k < 4000; k++)
        out[k] = (char)(k * 13);
    for (int k = 0; k < 40; k++)
        ck_assert_int_eq(write(sv[0], out + k * 100, 100), 100);
    size_t got = 0;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    int64_t end0 = kart_now_ns() + 5000 * KT_MS;
    while (got < sizeof(back)) {
        ck_assert(kart_now_ns() < end0);
        run_for(loop, 1);
        ssize_t r = read(sv[0], back + got, sizeof(back) - got);
        if (r > 0)
            got += (size_t)r;
    }
    ck_assert_mem_eq(back, out, sizeof(back));
    ck_assert_int_eq(c.ngot, 4000);
    kart_io_stats st;
    int64_t end = kart_now_ns() + 5000 * KT_MS;
    do {
        ck_assert(kart_now_ns() < end);
        run_for(loop, 2);
        kart_loop_io_stats(loop, &st);
    } while (st.bufs_lent > 0); /* every buffer back once sent */
    ck_assert_int_eq(c.norder, c.recv_calls);
    /* A released buffer is not lent: -EINVAL. */
    kart_buf *b = NULL;
    c.hold = true;
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    kt_write(sv[0], "x");
    run_until(loop, &c.nheld, 1);
    b = c.held[0];
    kart_buf_release(b);
    ck_assert_int_eq(kart_sock_send_buf(&c.sock, b, 1, echo_sent), -EINVAL);
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

START_TEST(sends_complete_whole_and_in_order)
{
    /* Sends far larger than the socket buffer, queued back to back, reach
     * the peer whole and in order, and their callbacks run in order. */
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    int small = 4096;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    conn c;
    conn_init(loop, &c, sv[1]);
    enum { N = 6, LEN = 300000 };
    char *data = malloc((size_t)N * LEN);
    for (size_t k = 0; k < (size_t)N * LEN; k++)
        data[k] = (char)(k * 7 + k / LEN);
    op s[N];
    memset(s, 0, sizeof(s));
    for (int k = 0; k < N; k++) {
        s[k].order = c.order;
        s[k].norder = &c.norder;
        s[k].index = k;
        ck_assert_int_eq(kart_sock_send(&c.sock, &s[k].req, data + (size_t)k * LEN, LEN, -1, on_op),
                         0);
    }
    char *back = malloc((size_t)N * LEN);
    size_t got = 0;
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    while (got < (size_t)N * LEN) {
        ck_assert(kart_now_ns() < end);
        ssize_t r = read(sv[0], back + got, (size_t)N * LEN - got);
        if (r > 0)
            got += (size_t)r;
        kart_loop_run(loop, KART_RUN_NOWAIT);
    }
    run_until(loop, &c.norder, N);
    ck_assert_mem_eq(back, data, (size_t)N * LEN);
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(c.order[k], k);
        ck_assert_int_eq(s[k].res, LEN);
    }
    free(data);
    free(back);
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

START_TEST(zero_length_send_completes_with_zero)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    op s = {0};
    ck_assert_int_eq(kart_sock_send(&c.sock, &s.req, NULL, 0, -1, on_op), 0);
    run_until(loop, &s.calls, 1);
    ck_assert_int_eq(s.res, 0);
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

START_TEST(recv_stop_and_restart_lose_nothing)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    ck_assert_int_eq(kart_sock_recv_stop(&c.sock), 0); /* not receiving: no-op */
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0); /* again: fine */
    kt_write(sv[0], "abc");
    run_until(loop, (int *)&c.ngot, 3);
    ck_assert_int_eq(kart_sock_recv_stop(&c.sock), 0);
    int calls = c.recv_calls;
    kt_write(sv[0], "def");
    run_for(loop, 30);
    ck_assert_int_eq(c.recv_calls, calls); /* stopped: no callback */
    kt_write(sv[0], "ghi");
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    run_until(loop, (int *)&c.ngot, 9);
    ck_assert_mem_eq(c.got, "abcdefghi", 9);
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

START_TEST(recv_reports_eof_after_half_close_and_can_still_send)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    kt_write(sv[0], "last words");
    ck_assert_int_eq(shutdown(sv[0], SHUT_WR), 0);
    run_until(loop, &c.eof, 1);
    ck_assert_int_eq(c.ngot, 10);
    ck_assert_int_eq(c.err, 0);
    ck_assert_int_eq(kart_sock_recv_stop(&c.sock), 0); /* already ended */
    /* Our side still writes. */
    op s = {0};
    ck_assert_int_eq(kart_sock_send(&c.sock, &s.req, "bye", 3, -1, on_op), 0);
    run_until(loop, &s.calls, 1);
    ck_assert_int_eq(s.res, 3);
    char b[4] = "";
    read_exact(sv[0], b, 3);
    ck_assert_str_eq(b, "bye");
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

static void rst_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd);
}

START_TEST(recv_reports_a_reset)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    rst_close(sv[0]);
    int64_t end = kart_now_ns() + 5000 * KT_MS;
    while (!c.err && !c.eof) {
        ck_assert(kart_now_ns() < end);
        run_for(loop, 5);
    }
    ck_assert_int_eq(c.err, -ECONNRESET);
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

START_TEST(send_to_a_reset_peer_fails_cleanly)
{
    /* The peer resets while a large send is under way: the send ends with
     * -ECONNRESET or -EPIPE, and no SIGPIPE is raised. */
    IO_LOOP_OR_SKIP(_i, 0);
    signal(SIGPIPE, SIG_DFL);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    enum { LEN = 8 << 20 };
    char *data = calloc(1, LEN);
    op s = {0}, s2 = {0};
    ck_assert_int_eq(kart_sock_send(&c.sock, &s.req, data, LEN, -1, on_op), 0);
    ck_assert_int_eq(kart_sock_send(&c.sock, &s2.req, data, 10, -1, on_op), 0);
    run_for(loop, 20);
    ck_assert_int_eq(s.calls, 0); /* the peer reads nothing: still sending */
    rst_close(sv[0]);
    run_until(loop, &s2.calls, 1);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_msg(s.res == -ECONNRESET || s.res == -EPIPE, "res %d", s.res);
    ck_assert_msg(s2.res == -ECONNRESET || s2.res == -EPIPE, "res %d", s2.res);
    free(data);
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

START_TEST(send_times_out)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    enum { LEN = 8 << 20 };
    char *data = calloc(1, LEN);
    op s = {0}, s2 = {0};
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_sock_send(&c.sock, &s.req, data, LEN, 300 * KT_MS, on_op), 0);
    ck_assert_int_eq(kart_sock_send(&c.sock, &s2.req, data, 10, 30 * KT_MS, on_op), 0);
    run_until(loop, &s2.calls, 1);
    run_until(loop, &s.calls, 1);
    ck_assert_int_eq(s.res, -ETIMEDOUT);
    ck_assert_int_eq(s2.res, -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 29 * KT_MS);
    free(data);
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

START_TEST(shutdown_follows_the_sends)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    op s = {0}, sd = {0}, late = {0};
    ck_assert_int_eq(kart_sock_send(&c.sock, &s.req, "data", 4, -1, on_op), 0);
    ck_assert_int_eq(kart_sock_shutdown(&c.sock, &sd.req, SHUT_WR, on_op), 0);
    ck_assert_int_eq(kart_sock_send(&c.sock, &late.req, "x", 1, -1, on_op), -EPIPE);
    ck_assert_int_eq(kart_sock_shutdown(&c.sock, &late.req, SHUT_WR, on_op), -EPIPE);
    run_until(loop, &sd.calls, 1);
    ck_assert_int_eq(s.res, 4);
    ck_assert_int_eq(sd.res, 0);
    char b[8];
    read_exact(sv[0], b, 4);
    ck_assert_int_eq(read(sv[0], b, sizeof(b)), 0); /* EOF after the data */
    ck_assert_int_eq(late.calls, 0);
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

/* ---- connect ---- */

START_TEST(connect_succeeds_and_is_refused)
{
    IO_LOOP_OR_SKIP(_i, 0);
    struct sockaddr_in a;
    int l = tcp_listener(&a, 4);
    conn c;
    conn_init(loop, &c, socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    op o = {0};
    ck_assert_int_eq(
        kart_sock_connect(&c.sock, &o.req, (struct sockaddr *)&a, sizeof(a), 1000 * KT_MS, on_op),
        0);
    op o2 = {0};
    ck_assert_int_eq(
        kart_sock_connect(&c.sock, &o2.req, (struct sockaddr *)&a, sizeof(a), -1, on_op), -EBUSY);
    run_until(loop, &o.calls, 1);
    ck_assert_int_eq(o.res, 0);
    int srv = accept(l, NULL, NULL);
    ck_assert_int_ge(srv, 0);
    /* It works: a send arrives. */
    op s = {0};
    ck_assert_int_eq(kart_sock_send(&c.sock, &s.req, "hi", 2, -1, on_op), 0);
    run_until(loop, &s.calls, 1);
    char b[2];
    read_exact(srv, b, 2);
    close(srv);
    conn_close(loop, &c);
    /* Nobody listens any more: refused. */
    close(l);
    conn_init(loop, &c, socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    op r = {0};
    ck_assert_int_eq(
        kart_sock_connect(&c.sock, &r.req, (struct sockaddr *)&a, sizeof(a), -1, on_op), 0);
    run_until(loop, &r.calls, 1);
    ck_assert_int_eq(r.res, -ECONNREFUSED);
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

START_TEST(connect_can_be_cancelled)
{
    /* A connect to a full backlog that never completes: cancel ends it
     * with exactly one -ECANCELED (or 0 if the kernel completed it). */
    IO_LOOP_OR_SKIP(_i, 0);
    struct sockaddr_in a;
    int l = tcp_listener(&a, 4);
    conn c;
    conn_init(loop, &c, socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    op o = {0};
    ck_assert_int_eq(
        kart_sock_connect(&c.sock, &o.req, (struct sockaddr *)&a, sizeof(a), -1, on_op), 0);
    /* On loopback the connect may be done inside its start already. */
    int err = kart_req_cancel(&o.req);
    ck_assert_msg(err == 0 || err == -EALREADY, "cancel: %d", err);
    if (err == 0)
        ck_assert_int_eq(kart_req_cancel(&o.req), 0); /* asked already: fine */
    run_until(loop, &o.calls, 1);
    run_for(loop, 10);
    ck_assert_int_eq(o.calls, 1);
    ck_assert_msg(o.res == -ECANCELED || o.res == 0, "res %d", o.res);
    ck_assert_int_eq(kart_req_cancel(&o.req), -EALREADY);
    conn_close(loop, &c);
    close(l);
    io_close_loop(loop);
}
END_TEST

START_TEST(connect_times_out)
{
    /* A listener whose accept queue is full drops new SYNs: the connect
     * hangs until its timeout. */
    IO_LOOP_OR_SKIP(_i, 0);
    struct sockaddr_in a;
    int l = tcp_listener(&a, 0);
    int filler[4], nf = 0;
    for (; nf < 4; nf++) {
        filler[nf] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(filler[nf], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(20000);
    conn c;
    conn_init(loop, &c, socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    op o = {0};
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(
        kart_sock_connect(&c.sock, &o.req, (struct sockaddr *)&a, sizeof(a), 100 * KT_MS, on_op),
        0);
    run_until(loop, &o.calls, 1);
    ck_assert_int_eq(o.res, -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 99 * KT_MS);
    conn_close(loop, &c);
    for (int k = 0; k < nf; k++)
        close(filler[k]);
    close(l);
    io_close_loop(loop);
}
END_TEST

/* ---- accept ---- */

typedef struct acceptor {
    kart_req req;
    int fds[64];
    int n, final_calls, final;
} acceptor;

static void on_accept(kart_req *r, int res)
{
    acceptor *a = (acceptor *)r;
    if (res >= 0) {
        ck_assert_int_eq(kart_req_is_active(r), 1);
        int fl = fcntl(res, F_GETFL);
        ck_assert(fl & O_NONBLOCK);
        ck_assert(fcntl(res, F_GETFD) & FD_CLOEXEC);
        if (a->n < 64)
            a->fds[a->n++] = res;
        else
            close(res);
    } else {
        ck_assert_int_eq(kart_req_is_active(r), 0);
        a->final_calls++;
        a->final = res;
    }
}

START_TEST(accept_takes_many_connections_until_cancelled)
{
    IO_LOOP_OR_SKIP(_i, 0);
    struct sockaddr_in a;
    int l = tcp_listener(&a, 64);
    conn lc;
    conn_init(loop, &lc, l);
    acceptor acc;
    memset(&acc, 0, sizeof(acc));
    ck_assert_int_eq(kart_sock_accept(&lc.sock, &acc.req, on_accept), 0);
    acceptor other;
    memset(&other, 0, sizeof(other));
    ck_assert_int_eq(kart_sock_accept(&lc.sock, &other.req, on_accept), -EBUSY);
    int cl[20];
    for (int k = 0; k < 20; k++)
        cl[k] = tcp_client(&a);
    run_until(loop, &acc.n, 20);
    ck_assert_int_eq(acc.final_calls, 0);
    /* Each accepted fd is a working connection. */
    for (int k = 0; k < 20; k++) {
        ck_assert_int_eq(write(acc.fds[k], "z", 1), 1);
        close(acc.fds[k]);
    }
    ck_assert_int_eq(kart_req_cancel(&acc.req), 0);
    run_until(loop, &acc.final_calls, 1);
    run_for(loop, 10);
    ck_assert_int_eq(acc.final_calls, 1);
    ck_assert_int_eq(acc.final, -ECANCELED);
    for (int k = 0; k < 20; k++) {
        char z;
        ck_assert_int_eq(read(cl[k], &z, 1), 1);
        close(cl[k]);
    }
    /* The request can start again. */
    ck_assert_int_eq(kart_sock_accept(&lc.sock, &acc.req, on_accept), 0);
    int one = tcp_client(&a);
    run_until(loop, &acc.n, 21);
    close(acc.fds[20]);
    close(one);
    /* A close ends it with -ECANCELED before the close's callback. */
    ck_assert_int_eq(kart_sock_close(&lc.sock, &lc.close_req, on_close), 0);
    run_until(loop, &lc.closed, 1);
    ck_assert_int_eq(acc.final_calls, 2);
    ck_assert_int_eq(acc.final, -ECANCELED);
    io_close_loop(loop);
}
END_TEST

START_TEST(accept_on_a_socket_that_does_not_listen_fails)
{
    IO_LOOP_OR_SKIP(_i, 0);
    conn c;
    conn_init(loop, &c, socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    acceptor acc;
    memset(&acc, 0, sizeof(acc));
    ck_assert_int_eq(kart_sock_accept(&c.sock, &acc.req, on_accept), 0);
    run_until(loop, &acc.final_calls, 1);
    ck_assert_int_eq(acc.final, -EINVAL);
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

START_TEST(accept_survives_the_descriptor_limit)
{
    /* With no descriptor left, waiting connections are accepted and closed
     * (their clients see the connection end), the loop does not spin, and
     * accepting works again once descriptors are free. */
    IO_LOOP_OR_SKIP(_i, 0);
    struct sockaddr_in a;
    int l = tcp_listener(&a, 64);
    conn lc;
    conn_init(loop, &lc, l);
    acceptor acc;
    memset(&acc, 0, sizeof(acc));
    run_for(loop, 5);
    int cl[4];
    for (int k = 0; k < 4; k++)
        cl[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* The limit: one past the highest descriptor open now, so at least one
     * slot (top + 1) is free whatever holes the process has below it; the
     * fillers take every free slot. (Duplicating the listener, not fd 0:
     * a CI runner may start us with stdin closed.) */
    int top = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            top = fd;
    ck_assert_int_lt(top, 1000);
    struct rlimit old, lim;
    getrlimit(RLIMIT_NOFILE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)top + 2;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
    int fillers[1024], nfill = 0, fd;
    while ((fd = dup(l)) >= 0)
        fillers[nfill++] = fd;
    ck_assert_int_eq(errno, EMFILE);
    ck_assert_int_ge(nfill, 1);
    /* No descriptor for kart's spare: the start fails. */
    ck_assert_int_eq(kart_sock_accept(&lc.sock, &acc.req, on_accept), -EMFILE);
    ck_assert_int_eq(kart_req_is_active(&acc.req), 0);
    /* One left for kart's spare, taken by the start. (io_uring's accept
     * reads the limit when it is submitted: start after lowering it.) */
    close(fillers[--nfill]);
    ck_assert_int_eq(kart_sock_accept(&lc.sock, &acc.req, on_accept), 0);
    ck_assert_int_lt(dup(l), 0);
    run_for(loop, 5);
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(connect(cl[k], (struct sockaddr *)&a, sizeof(a)), 0);
    kart_io_stats st;
    int64_t end = kart_now_ns() + 5000 * KT_MS;
    do {
        kart_loop_io_stats(loop, &st);
        ck_assert_msg(kart_now_ns() < end, "limit hits %d, dropped %d, accepted %d",
                      (int)st.accept_fd_limit, (int)st.accept_dropped, acc.n);
        run_for(loop, 5);
    } while (st.accept_dropped < 4);
    ck_assert_int_eq(acc.n, 0);
    ck_assert_int_eq(acc.final_calls, 0);
    ck_assert_uint_ge(st.accept_fd_limit, 1);
    /* The clients were closed on. */
    for (int k = 0; k < 4; k++) {
        char b;
        struct pollfd p = {.fd = cl[k], .events = POLLIN};
        ck_assert_int_eq(poll(&p, 1, 2000), 1);
        ck_assert_int_le(read(cl[k], &b, 1), 0);
    }
    /* No spinning: nothing waits, so the loop sleeps until a timer. */
    uint64_t before = st.accept_fd_limit;
    run_for(loop, 30);
    kart_loop_io_stats(loop, &st);
    ck_assert_uint_eq(st.accept_fd_limit, before);
    /* Descriptors come back: accepting works again. */
    close(cl[0]);
    close(cl[1]);
    while (nfill > 0)
        close(fillers[--nfill]);
    int c2 = tcp_client(&a);
    run_until(loop, &acc.n, 1);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    close(acc.fds[0]);
    close(c2);
    close(cl[2]);
    close(cl[3]);
    ck_assert_int_eq(kart_sock_close(&lc.sock, &lc.close_req, on_close), 0);
    run_until(loop, &lc.closed, 1);
    ck_assert_int_eq(acc.final_calls, 1);
    io_close_loop(loop);
}
END_TEST

/* ---- close and cancel ---- */

START_TEST(close_cancels_pending_operations_first)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    enum { LEN = 8 << 20 };
    char *data = calloc(1, LEN);
    op s[3];
    memset(s, 0, sizeof(s));
    int order[4], norder = 0;
    for (int k = 0; k < 3; k++) {
        s[k].order = order;
        s[k].norder = &norder;
        s[k].index = k;
        ck_assert_int_eq(kart_sock_send(&c.sock, &s[k].req, data, LEN, -1, on_op), 0);
    }
    run_for(loop, 10);
    ck_assert_int_eq(kart_sock_close(&c.sock, &c.close_req, on_close), 0);
    kart_req again = {0};
    ck_assert_int_eq(kart_sock_close(&c.sock, &again, on_close), -EALREADY);
    op late = {0};
    ck_assert_int_eq(kart_sock_send(&c.sock, &late.req, "x", 1, -1, on_op), -EPIPE);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), -EPIPE);
    run_until(loop, &c.closed, 1);
    ck_assert_int_eq(norder, 3);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(s[k].res, -ECANCELED);
    ck_assert_int_eq(c.recv_calls, 0); /* a close stops the receive silently */
    ck_assert_int_eq(c.close_res, 0);
    ck_assert_int_lt(fcntl(sv[1], F_GETFD), 0); /* the fd is closed */
    free(data);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

START_TEST(cancel_races_yield_exactly_one_completion)
{
    /* Small sends that the kernel completes at once, cancelled straight
     * after their start: each gets one callback, its result or
     * -ECANCELED, and what was reported sent arrived. */
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    enum { N = 200 };
    op s[N];
    memset(s, 0, sizeof(s));
    int sent = 0, cancelled = 0;
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(kart_sock_send(&c.sock, &s[k].req, "abcd", 4, -1, on_op), 0);
        if (k % 2 == 0)
            run_for(loop, 0);
        int err = kart_req_cancel(&s[k].req);
        ck_assert_msg(err == 0 || err == -EALREADY, "cancel: %d", err);
    }
    int done = 0;
    int64_t end = kart_now_ns() + 5000 * KT_MS;
    while (done < N) {
        ck_assert(kart_now_ns() < end);
        run_for(loop, 2);
        done = 0;
        for (int k = 0; k < N; k++)
            done += s[k].calls;
    }
    run_for(loop, 10);
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(s[k].calls, 1);
        ck_assert_msg(s[k].res == 4 || s[k].res == -ECANCELED, "res %d", s[k].res);
        if (s[k].res == 4)
            sent++;
        else
            cancelled++;
    }
    ck_assert_int_eq(sent + cancelled, N);
    char *b = malloc(4 * N + 1);
    read_exact(sv[0], b, (size_t)4 * sent);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    ck_assert_int_lt(read(sv[0], b, 1), 0);
    free(b);
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

/* A connection for the stress case: heap-allocated, freed by its close
 * callback (the one place the API allows it). */
typedef struct sconn {
    kart_sock sock;
    kart_req close_req;
    op sends[4];
    int *live;
    int *callbacks_left;
} sconn;

static void stress_recv(kart_sock *s, int n, kart_buf *b)
{
    (void)s;
    if (n > 0) {
        if (n & 1)
            kart_buf_release(b);
        else if (kart_sock_send_buf(s, b, (size_t)n, NULL) < 0)
            kart_buf_release(b);
    }
}

static void stress_op(kart_req *r, int res)
{
    op *o = (op *)r;
    o->calls++;
    o->res = res;
    --*((sconn *)r->data)->callbacks_left;
}

static void stress_closed(kart_req *r, int res)
{
    sconn *c = r->data;
    ck_assert_int_eq(res, 0);
    /* Every send of this socket has had its one callback before. */
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(kart_req_is_active(&c->sends[k].req), 0);
    --*c->live;
    free(c);
}

START_TEST(random_operations_and_closes)
{
    /* Random sends, receive stops and starts, cancels and closes on many
     * sockets whose peers write, read and reset at random: every callback
     * runs exactly once, every close last, and the sanitizers see no use
     * after free. */
    IO_LOOP_OR_SKIP(_i, 0);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 16, 256), 0);
    enum { N = 24, ROUNDS = 300 };
    int peer[N], live = 0, left = 0;
    sconn *c[N];
    static char payload[64 << 10];
    unsigned seed = 12345u + (unsigned)_i;
    for (int k = 0; k < N; k++) {
        int sv[2];
        kt_tcp_pair(sv);
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        peer[k] = sv[0];
        c[k] = calloc(1, sizeof(sconn));
        c[k]->live = &live;
        c[k]->callbacks_left = &left;
        c[k]->close_req.data = c[k];
        for (int j = 0; j < 4; j++)
            c[k]->sends[j].req.data = c[k];
        ck_assert_int_eq(kart_sock_init(loop, &c[k]->sock, sv[1]), 0);
        live++;
    }
    char sink[8192];
    for (int round = 0; round < ROUNDS; round++) {
        int k = (int)(rand_r(&seed) % N);
        sconn *x = c[k];
        int what = (int)(rand_r(&seed) % 10);
        if (!x) {
            continue;
        } else if (what < 3) {
            for (int j = 0; j < 4; j++)
                if (!kart_req_is_active(&x->sends[j].req)) {
                    size_t len = rand_r(&seed) % sizeof(payload);
                    int64_t to =
                        (rand_r(&seed) % 3 == 0) ? (int64_t)(rand_r(&seed) % 20) * KT_MS : -1;
                    if (kart_sock_send(&x->sock, &x->sends[j].req, payload, len, to, stress_op) ==
                        0)
                        left++;
                    break;
                }
        } else if (what < 5) {
            ck_assert_int_eq(kart_sock_recv_start(&x->sock, stress_recv), 0);
        } else if (what == 5) {
            ck_assert_int_eq(kart_sock_recv_stop(&x->sock), 0);
        } else if (what == 6) {
            int err = kart_req_cancel(&x->sends[rand_r(&seed) % 4].req);
            ck_assert(err == 0 || err == -EALREADY);
        } else if (what == 7) {
            ssize_t w = write(peer[k], payload, rand_r(&seed) % 3000);
            (void)w;
        } else if (what == 8) {
            while (read(peer[k], sink, sizeof(sink)) > 0)
                ;
        } else if (rand_r(&seed) % 4 == 0) {
            ck_assert_int_eq(kart_sock_close(&x->sock, &x->close_req, stress_closed), 0);
            c[k] = NULL;
            if (rand_r(&seed) % 2)
                rst_close(peer[k]);
            else
                close(peer[k]);
            peer[k] = -1;
        }
        if (round % 3 == 0)
            ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    }
    for (int k = 0; k < N; k++)
        if (c[k]) {
            ck_assert_int_eq(kart_sock_close(&c[k]->sock, &c[k]->close_req, stress_closed), 0);
            close(peer[k]);
        }
    /* Everything ends: sends complete, fail or are cancelled by the
     * closes; the closes come last. */
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (live > 0) {
        ck_assert(kart_now_ns() < end);
        run_for(loop, 2);
    }
    ck_assert_int_eq(left, 0);
    kart_io_stats st;
    kart_loop_io_stats(loop, &st);
    ck_assert_int_eq(st.bufs_lent, 0);
    io_close_loop(loop);
}
END_TEST

/* ---- files ---- */

static int tmp_file(void)
{
    char path[] = "/tmp/kart-io-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    return fd;
}

START_TEST(file_write_and_read_at_offsets)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int fd = tmp_file();
    op w = {0}, r = {0}, e = {0};
    ck_assert_int_eq(kart_file_write(loop, &w.req, fd, "hello world", 11, 100, -1, on_op), 0);
    run_until(loop, &w.calls, 1);
    ck_assert_int_eq(w.res, 11);
    char buf[64] = "";
    ck_assert_int_eq(kart_file_read(loop, &r.req, fd, buf, sizeof(buf), 106, 1000 * KT_MS, on_op),
                     0);
    run_until(loop, &r.calls, 1);
    ck_assert_int_eq(r.res, 5);
    ck_assert_mem_eq(buf, "world", 5);
    ck_assert_int_eq(kart_file_read(loop, &e.req, fd, buf, sizeof(buf), 1000, -1, on_op), 0);
    run_until(loop, &e.calls, 1);
    ck_assert_int_eq(e.res, 0); /* end of file */
    /* At the file position (offset < 0). */
    op p = {0}, q = {0};
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(kart_file_write(loop, &p.req, fd, "AB", 2, -1, -1, on_op), 0);
    run_until(loop, &p.calls, 1);
    ck_assert_int_eq(p.res, 2);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 2);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(kart_file_read(loop, &q.req, fd, buf, 2, -1, -1, on_op), 0);
    run_until(loop, &q.calls, 1);
    ck_assert_int_eq(q.res, 2);
    ck_assert_mem_eq(buf, "AB", 2);
    close(fd);
    /* A closed fd: the error comes to the callback. */
    op bad = {0};
    ck_assert_int_eq(kart_file_read(loop, &bad.req, fd, buf, 4, 0, -1, on_op), 0);
    run_until(loop, &bad.calls, 1);
    ck_assert_int_eq(bad.res, -EBADF);
    io_close_loop(loop);
}
END_TEST

/* ---- the buffer pool ---- */

START_TEST(starved_receives_resume_when_buffers_come_back)
{
    IO_LOOP_OR_SKIP(_i, 0);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 2, 64), 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    c.hold = true;
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    char data[1000];
    for (int k = 0; k < 1000; k++)
        data[k] = (char)('a' + k % 26);
    ck_assert_int_eq(write(sv[0], data, sizeof(data)), (ssize_t)sizeof(data));
    run_until(loop, &c.nheld, 2);
    run_for(loop, 20);
    ck_assert_int_eq(c.nheld, 2); /* both buffers lent: receiving paused */
    kart_io_stats st;
    kart_loop_io_stats(loop, &st);
    ck_assert_int_eq(st.bufs_lent, 2);
    ck_assert_int_eq(st.bufs_total, 2);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 64), -EBUSY);
    c.hold = false;
    kart_buf_release(c.held[0]);
    kart_buf_release(c.held[0]); /* twice: no-op */
    kart_buf_release(c.held[1]);
    kart_buf_release(NULL);
    run_until(loop, (int *)&c.ngot, 1000);
    ck_assert_mem_eq(c.got, data, 1000);
    kart_loop_io_stats(loop, &st);
    ck_assert_uint_ge(st.enobufs, 1);
    ck_assert_int_eq(st.bufs_lent, 0);
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

START_TEST(bufpool_is_busy_until_a_stopped_receive_is_gone)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 8, 1024), -EBUSY);
    run_for(loop, 5);
    ck_assert_int_eq(kart_sock_recv_stop(&c.sock), 0);
    kart_io_stats st;
    kart_loop_io_stats(loop, &st);
    /* io_uring still holds the receive until its cancel completes. */
    int err = kart_loop_set_bufpool(loop, 8, 1024);
    ck_assert_int_eq(err, st.native ? -EBUSY : 0);
    run_for(loop, 20);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 8, 1024), 0);
    kart_loop_io_stats(loop, &st);
    ck_assert_int_eq(st.bufs_total, 8);
    /* The new pool works. */
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    kt_write(sv[0], "new pool");
    run_until(loop, (int *)&c.ngot, 8);
    ck_assert_mem_eq(c.got, "new pool", 8);
    conn_close(loop, &c);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

START_TEST(many_connections_through_a_tiny_ring)
{
    /* A 2-entry ring (4 completions) and 40 connections echoing at once:
     * the completion ring overflows, and nothing is lost. */
    IO_LOOP_OR_SKIP(_i, 2);
    enum { N = 40 };
    int sv[N][2];
    conn *c = calloc(N, sizeof(conn));
    for (int k = 0; k < N; k++) {
        kt_tcp_pair(sv[k]);
        conn_init(loop, &c[k], sv[k][1]);
        ck_assert_int_eq(kart_sock_recv_start(&c[k].sock, on_recv), 0);
    }
    run_for(loop, 5);
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < N; k++)
            kt_write(sv[k][0], "0123456789");
        for (int k = 0; k < N; k++)
            run_until(loop, (int *)&c[k].ngot, 10 * (round + 1));
    }
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(c[k].ngot, 30);
        ck_assert_mem_eq(c[k].got, "012345678901234567890123456789", 30);
    }
    kart_io_stats st;
    kart_loop_io_stats(loop, &st);
    ck_assert_uint_eq(st.cq_dropped, 0);
    if (st.native)
        ck_assert_uint_ge(st.cq_overflows, 1);
    for (int k = 0; k < N; k++) {
        conn_close(loop, &c[k]);
        close(sv[k][0]);
    }
    free(c);
    io_close_loop(loop);
}
END_TEST

/* ---- loop integration ---- */

START_TEST(pending_operations_keep_the_loop_running)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    conn c;
    conn_init(loop, &c, sv[1]);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(kart_sock_recv_stop(&c.sock), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    /* DEFAULT returns once the last operation is done. */
    op s = {0};
    ck_assert_int_eq(kart_sock_send(&c.sock, &s.req, "q", 1, -1, on_op), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(kart_sock_close(&c.sock, &c.close_req, on_close), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.closed, 1);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

/* ---- errors ---- */

static void never_recv(kart_sock *s, int n, kart_buf *b)
{
    (void)s;
    (void)n;
    (void)b;
    ck_abort_msg("callback of a failed start");
}

static void never_op(kart_req *r, int res)
{
    (void)r;
    (void)res;
    ck_abort_msg("callback of a failed start");
}

static void on_op_count(kart_req *r, int res)
{
    ck_assert_int_eq(res, 0);
    ++*(int *)r->data;
}

START_TEST(documented_errors)
{
    IO_LOOP_OR_SKIP(_i, 0);
    int sv[2];
    kt_tcp_pair(sv);
    kart_sock s;
    kart_req r = {0};
    char b[8];
    struct sockaddr_in a = {.sin_family = AF_INET};
    /* kart_loop_set_bufpool */
    ck_assert_int_eq(kart_loop_set_bufpool(NULL, 4, 64), -EINVAL);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 0, 64), -EINVAL);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 3, 64), -EINVAL);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 65536, 64), -EINVAL);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 0), -EINVAL);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 100), -EINVAL);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, (32u << 20)), -EINVAL);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 4096), 0);
    /* kart_sock_init */
    ck_assert_int_eq(kart_sock_init(NULL, &s, sv[1]), -EINVAL);
    ck_assert_int_eq(kart_sock_init(loop, NULL, sv[1]), -EINVAL);
    ck_assert_int_eq(kart_sock_init(loop, &s, -1), -EBADF);
    ck_assert_int_eq(kart_sock_init(loop, &s, 1000), -EBADF);
    int blocking = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(kart_sock_init(loop, &s, blocking), 0);
    ck_assert(fcntl(blocking, F_GETFL) & O_NONBLOCK); /* made non-blocking */
    close(blocking);
    ck_assert_int_eq(kart_sock_init(loop, &s, sv[1]), 0);
    ck_assert_int_eq(s.fd, sv[1]);
    ck_assert_ptr_eq(s.base.loop, loop);
    ck_assert_int_eq(s.base.type, KART_HANDLE_SOCK);
    /* kart_sock_accept */
    ck_assert_int_eq(kart_sock_accept(NULL, &r, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_accept(&s, NULL, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_accept(&s, &r, NULL), -EINVAL);
    /* kart_sock_connect */
    ck_assert_int_eq(kart_sock_connect(NULL, &r, (struct sockaddr *)&a, sizeof(a), -1, never_op),
                     -EINVAL);
    ck_assert_int_eq(kart_sock_connect(&s, NULL, (struct sockaddr *)&a, sizeof(a), -1, never_op),
                     -EINVAL);
    ck_assert_int_eq(kart_sock_connect(&s, &r, NULL, sizeof(a), -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_connect(&s, &r, (struct sockaddr *)&a, 0, -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_connect(&s, &r, (struct sockaddr *)&a, 4096, -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_connect(&s, &r, (struct sockaddr *)&a, sizeof(a), -1, NULL),
                     -EINVAL);
    /* kart_sock_recv_start / stop */
    ck_assert_int_eq(kart_sock_recv_start(NULL, never_recv), -EINVAL);
    ck_assert_int_eq(kart_sock_recv_start(&s, NULL), -EINVAL);
    ck_assert_int_eq(kart_sock_recv_stop(NULL), -EINVAL);
    /* kart_sock_send */
    ck_assert_int_eq(kart_sock_send(NULL, &r, b, 1, -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_send(&s, NULL, b, 1, -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_send(&s, &r, NULL, 1, -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_send(&s, &r, b, 1, -1, NULL), -EINVAL);
    ck_assert_int_eq(kart_sock_send(&s, &r, b, (size_t)INT32_MAX + 1, -1, never_op), -EINVAL);
    /* a pending request cannot start again */
    enum { LEN = 8 << 20 };
    char *big = calloc(1, LEN);
    op pend = {0};
    ck_assert_int_eq(kart_sock_send(&s, &pend.req, big, LEN, -1, on_op), 0);
    ck_assert_int_eq(kart_sock_send(&s, &pend.req, b, 1, -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_shutdown(&s, &pend.req, SHUT_WR, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_close(&s, &pend.req, never_op), -EINVAL);
    ck_assert_int_eq(kart_file_read(loop, &pend.req, 0, b, 1, 0, -1, never_op), -EINVAL);
    ck_assert_int_eq(
        kart_sock_connect(&s, &pend.req, (struct sockaddr *)&a, sizeof(a), -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_accept(&s, &pend.req, never_op), -EINVAL);
    /* kart_sock_shutdown */
    ck_assert_int_eq(kart_sock_shutdown(NULL, &r, SHUT_WR, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_shutdown(&s, NULL, SHUT_WR, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_shutdown(&s, &r, 7, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_shutdown(&s, &r, SHUT_WR, NULL), -EINVAL);
    /* kart_sock_close */
    ck_assert_int_eq(kart_sock_close(NULL, &r, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_close(&s, NULL, never_op), -EINVAL);
    ck_assert_int_eq(kart_sock_close(&s, &r, NULL), -EINVAL);
    /* files */
    ck_assert_int_eq(kart_file_read(NULL, &r, 0, b, 1, 0, -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_file_read(loop, NULL, 0, b, 1, 0, -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_file_read(loop, &r, 0, NULL, 1, 0, -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_file_read(loop, &r, 0, b, 1, 0, -1, NULL), -EINVAL);
    ck_assert_int_eq(kart_file_read(loop, &r, -1, b, 1, 0, -1, never_op), -EBADF);
    ck_assert_int_eq(kart_file_read(loop, &r, 0, b, (size_t)INT32_MAX + 1, 0, -1, never_op),
                     -EINVAL);
    ck_assert_int_eq(kart_file_write(NULL, &r, 0, b, 1, 0, -1, never_op), -EINVAL);
    ck_assert_int_eq(kart_file_write(loop, &r, -1, b, 1, 0, -1, never_op), -EBADF);
    ck_assert_int_eq(kart_file_write(loop, &r, 0, NULL, 1, 0, -1, never_op), -EINVAL);
    /* cancel and is_active */
    ck_assert_int_eq(kart_req_cancel(NULL), -EINVAL);
    ck_assert_int_eq(kart_req_cancel(&r), -EALREADY); /* never started */
    ck_assert_int_eq(kart_req_is_active(NULL), 0);
    ck_assert_int_eq(kart_req_is_active(&r), 0);
    /* stats */
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(NULL, &st), -EINVAL);
    ck_assert_int_eq(kart_loop_io_stats(loop, NULL), -EINVAL);
    /* a close cannot be cancelled; after it, starts are -EPIPE */
    kart_req cl = {0};
    int closed = 0;
    cl.data = &closed;
    ck_assert_int_eq(kart_sock_close(&s, &cl, on_op_count), 0);
    ck_assert_int_eq(kart_req_cancel(&cl), -EALREADY);
    ck_assert_int_eq(kart_sock_accept(&s, &r, never_op), -EPIPE);
    ck_assert_int_eq(kart_sock_connect(&s, &r, (struct sockaddr *)&a, sizeof(a), -1, never_op),
                     -EPIPE);
    ck_assert_int_eq(kart_sock_shutdown(&s, &r, SHUT_WR, never_op), -EPIPE);
    run_until(loop, &closed, 1);
    ck_assert_int_eq(pend.res, -ECANCELED);
    free(big);
    close(sv[0]);
    io_close_loop(loop);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    kt_print_backends();
    Suite *s = suite_create("io");
    int nb = nb_io();
    TCase *tc = tcase_create("recv_send");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, echo_round_trips, 0, nb);
    tcase_add_loop_test(tc, zero_copy_echo_with_send_buf, 0, nb);
    tcase_add_loop_test(tc, sends_complete_whole_and_in_order, 0, nb);
    tcase_add_loop_test(tc, zero_length_send_completes_with_zero, 0, nb);
    tcase_add_loop_test(tc, recv_stop_and_restart_lose_nothing, 0, nb);
    tcase_add_loop_test(tc, recv_reports_eof_after_half_close_and_can_still_send, 0, nb);
    tcase_add_loop_test(tc, recv_reports_a_reset, 0, nb);
    tcase_add_loop_test(tc, send_to_a_reset_peer_fails_cleanly, 0, nb);
    tcase_add_loop_test(tc, send_times_out, 0, nb);
    tcase_add_loop_test(tc, shutdown_follows_the_sends, 0, nb);
    suite_add_tcase(s, tc);
    tc = tcase_create("connect");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, connect_succeeds_and_is_refused, 0, nb);
    tcase_add_loop_test(tc, connect_can_be_cancelled, 0, nb);
    tcase_add_loop_test(tc, connect_times_out, 0, nb);
    suite_add_tcase(s, tc);
    tc = tcase_create("accept");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, accept_takes_many_connections_until_cancelled, 0, nb);
    tcase_add_loop_test(tc, accept_on_a_socket_that_does_not_listen_fails, 0, nb);
    tcase_add_loop_test(tc, accept_survives_the_descriptor_limit, 0, nb);
    suite_add_tcase(s, tc);
    tc = tcase_create("close_cancel");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, close_cancels_pending_operations_first, 0, nb);
    tcase_add_loop_test(tc, cancel_races_yield_exactly_one_completion, 0, nb);
    tcase_add_loop_test(tc, random_operations_and_closes, 0, nb);
    suite_add_tcase(s, tc);
    tc = tcase_create("files");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, file_write_and_read_at_offsets, 0, nb);
    suite_add_tcase(s, tc);
    tc = tcase_create("pool_ring");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, starved_receives_resume_when_buffers_come_back, 0, nb);
    tcase_add_loop_test(tc, bufpool_is_busy_until_a_stopped_receive_is_gone, 0, nb);
    tcase_add_loop_test(tc, many_connections_through_a_tiny_ring, 0, nb);
    suite_add_tcase(s, tc);
    tc = tcase_create("loop_errors");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, pending_operations_keep_the_loop_running, 0, nb);
    tcase_add_loop_test(tc, documented_errors, 0, nb);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: the idle deadline of a socket (kart_sock_set_idle_timeout,
 * kart/io.h): it fires once on a silent peer, moves with received bytes
 * and completed sends but not with a send the peer does not read, can be
 * replaced, removed, re-set from its own callback, is removed by a close,
 * does not keep the loop running, holds for many sockets at once, and
 * every documented error. Every case runs once per compiled-in backend and
 * once more on io_uring with its native operations turned off. */
#include "io_backends.h"
#include "testutil.h"

#include "fault.h"

/* ---- backends and loops (as in check_io.c) ---- */

/* The largest gap between two turns of the last run_for: on a loaded
 * machine (eight jobs on two cores) the process can be off the CPU for
 * longer than a short timeout, and then "traffic kept the deadline away"
 * cannot be checked. Those cases try again (TRIES times) until a run was
 * smooth enough to decide, and fail when none was: never a pass by
 * default. */
static int64_t max_gap;
#define TRIES 5

/* Runs the loop for ms milliseconds; a 2 ms heartbeat keeps it turning.
 * tick (may be NULL) runs every turn. */
static void run_for(kart_loop *loop, int ms, void (*tick)(void *), void *arg)
{
    kart_timer hb;
    ck_assert_int_eq(kart_timer_init(loop, &hb), 0);
    ck_assert_int_eq(kart_timer_start(&hb, hb_cb, 2 * KT_MS, 2 * KT_MS), 0);
    int64_t prev = kart_now_ns(), end = prev + ms * KT_MS;
    max_gap = 0;
    while (kart_now_ns() < end) {
        ck_assert_int_ge(kart_loop_run(loop, KART_RUN_ONCE), 0);
        if (tick)
            tick(arg);
        int64_t now = kart_now_ns();
        if (now - prev > max_gap)
            max_gap = now - prev;
        prev = now;
    }
    kart_timer_stop(&hb);
}

/* Runs until *flag >= want, failing after 5 s. */
static void run_until(kart_loop *loop, const int *flag, int want)
{
    kart_timer hb;
    ck_assert_int_eq(kart_timer_init(loop, &hb), 0);
    ck_assert_int_eq(kart_timer_start(&hb, hb_cb, 2 * KT_MS, 2 * KT_MS), 0);
    int64_t end = kart_now_ns() + 5000 * KT_MS;
    while (*flag < want) {
        ck_assert_msg(kart_now_ns() < end, "timed out: %d of %d", *flag, want);
        ck_assert_int_ge(kart_loop_run(loop, KART_RUN_ONCE), 0);
    }
    kart_timer_stop(&hb);
}

/* ---- a connection: kart's end of a socket pair ---- */

typedef struct conn {
    kart_sock sock;
    kart_req close_req;
    kart_req send_req;
    int peer; /* the other end, driven with plain system calls */
    int fired, closed, sent, send_res;
    int64_t set_at, fired_at;
    int rearm; /* the callback sets a new deadline this many times */
    size_t got;
} conn;

static void on_close(kart_req *r, int res)
{
    conn *c = r->data;
    ck_assert_int_eq(res, 0);
    c->closed++;
}

static void on_idle(kart_sock *s)
{
    conn *c = s->base.data;
    c->fired++;
    c->fired_at = kart_now_ns();
    if (c->rearm > 0) {
        c->rearm--;
        c->set_at = kart_now_ns();
        ck_assert_int_eq(kart_sock_set_idle_timeout(s, 40 * KT_MS, on_idle), 0);
    }
}

static void on_idle_other(kart_sock *s)
{
    conn *c = s->base.data;
    c->fired += 100;
}

static void on_recv(kart_sock *s, int n, kart_buf *buf)
{
    conn *c = s->base.data;
    if (n > 0) {
        c->got += (size_t)n;
        kart_buf_release(buf);
    }
}

static void on_sent(kart_req *r, int res)
{
    conn *c = r->data;
    c->sent++;
    c->send_res = res;
}

static void conn_open(kart_loop *loop, conn *c)
{
    int sv[2];
    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    c->peer = sv[1];
    c->sock.base.data = c;
    c->close_req.data = c;
    c->send_req.data = c;
    ck_assert_int_eq(kart_sock_init(loop, &c->sock, sv[0]), 0);
}

static void conn_close(kart_loop *loop, conn *c)
{
    ck_assert_int_eq(kart_sock_close(&c->sock, &c->close_req, on_close), 0);
    run_until(loop, &c->closed, 1);
    close(c->peer);
}

/* Late by more than this under a loaded machine is a bug, not load. */
#define SLACK_MS 1000

/* ---- cases ---- */

START_TEST(fires_once_on_a_silent_peer)
{
    IO_LOOP_OR_SKIP(_i, 0);
    conn c;
    conn_open(loop, &c);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    c.set_at = kart_now_ns();
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 50 * KT_MS, on_idle), 0);
    run_until(loop, &c.fired, 1);
    int64_t late = c.fired_at - c.set_at;
    ck_assert_int_ge(late, 50 * KT_MS);
    ck_assert_int_lt(late, (50 + SLACK_MS) * KT_MS);
    run_for(loop, 150, NULL, NULL);
    ck_assert_int_eq(c.fired, 1); /* once */
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

/* A byte every 20 ms from the peer keeps a 100 ms deadline away. */
static void peer_trickles(void *arg)
{
    conn *c = arg;
    static int64_t next;
    int64_t now = kart_now_ns();
    if (now >= next) {
        ck_assert_int_eq(write(c->peer, "x", 1), 1);
        next = now + 20 * KT_MS;
    }
}

START_TEST(received_bytes_move_the_deadline)
{
    IO_LOOP_OR_SKIP(_i, 0);
    bool decided = false;
    for (int t = 0; t < TRIES && !decided; t++) {
        conn c;
        conn_open(loop, &c);
        ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
        ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 500 * KT_MS, on_idle), 0);
        run_for(loop, 1500, peer_trickles, &c); /* three timeouts */
        /* Bytes are written at a turn and stamped at the next: two gaps
         * and the 20 ms of the trickle between two stamps at most. */
        if (max_gap < 200 * KT_MS) {
            decided = true;
            ck_assert_int_eq(c.fired, 0);
            ck_assert_uint_ge(c.got, 10);
            int64_t stop = kart_now_ns();
            run_until(loop, &c.fired, 1);
            /* the last byte came at most 20 ms (plus a turn) before */
            ck_assert_int_ge(c.fired_at - stop, 250 * KT_MS);
            ck_assert_int_lt(c.fired_at - stop, (500 + SLACK_MS) * KT_MS);
        }
        conn_close(loop, &c);
    }
    ck_assert_msg(decided, "the machine never ran the loop smoothly enough to decide");
    io_close_loop(loop);
}
END_TEST

/* kart sends a byte every 10 ms; the peer reads them. */
static void kart_trickles(void *arg)
{
    conn *c = arg;
    static int64_t next;
    char sink[256];
    while (recv(c->peer, sink, sizeof(sink), MSG_DONTWAIT) > 0)
        ;
    int64_t now = kart_now_ns();
    if (now < next)
        return;
    next = now + 10 * KT_MS;
    if (!kart_req_is_active(&c->send_req))
        ck_assert_int_eq(kart_sock_send(&c->sock, &c->send_req, "y", 1, -1, on_sent), 0);
}

START_TEST(completed_sends_move_the_deadline_a_stalled_one_does_not)
{
    IO_LOOP_OR_SKIP(_i, 0);
    conn c;
    for (int t = 0;; t++) {
        ck_assert_msg(t < TRIES, "the machine never ran the loop smoothly enough to decide");
        conn_open(loop, &c);
        ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 500 * KT_MS, on_idle), 0);
        run_for(loop, 1500, kart_trickles, &c);
        if (max_gap < 200 * KT_MS)
            break;
        run_until(loop, &c.sent, c.sent + (kart_req_is_active(&c.send_req) ? 1 : 0));
        conn_close(loop, &c);
    }
    ck_assert_int_eq(c.fired, 0);
    ck_assert_int_gt(c.sent, 10);
    run_until(loop, &c.sent, c.sent + (kart_req_is_active(&c.send_req) ? 1 : 0));
    /* A send larger than every buffer between the two ends, which the
     * peer never reads: it stays pending, and the deadline passes. */
    size_t big = 16u << 20;
    char *mem = calloc(1, big);
    int sent = c.sent;
    int64_t start = kart_now_ns();
    ck_assert_int_eq(kart_sock_send(&c.sock, &c.send_req, mem, big, -1, on_sent), 0);
    run_until(loop, &c.fired, 1);
    ck_assert_int_eq(c.sent, sent); /* still pending */
    ck_assert_int_lt(kart_now_ns() - start, (500 + SLACK_MS) * KT_MS);
    conn_close(loop, &c);
    ck_assert_int_eq(c.send_res, -ECANCELED);
    free(mem);
    io_close_loop(loop);
}
END_TEST

START_TEST(setting_again_replaces_the_timeout_and_the_callback)
{
    IO_LOOP_OR_SKIP(_i, 0);
    conn c;
    conn_open(loop, &c);
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 30 * KT_MS, on_idle), 0);
    int64_t set = kart_now_ns();
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 200 * KT_MS, on_idle_other), 0);
    run_until(loop, &c.fired, 1);
    ck_assert_int_eq(c.fired, 100); /* the second callback, not the first */
    ck_assert_int_ge(kart_now_ns() - set, 200 * KT_MS);
    run_for(loop, 50, NULL, NULL);
    ck_assert_int_eq(c.fired, 100); /* once */
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

START_TEST(a_negative_timeout_removes_the_deadline)
{
    IO_LOOP_OR_SKIP(_i, 0);
    conn c;
    conn_open(loop, &c);
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, -1, NULL), 0); /* none: no-op */
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 30 * KT_MS, on_idle), 0);
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, -1, on_idle), 0);
    run_for(loop, 120, NULL, NULL);
    ck_assert_int_eq(c.fired, 0);
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

START_TEST(zero_fires_at_the_next_turn)
{
    IO_LOOP_OR_SKIP(_i, 0);
    conn c;
    conn_open(loop, &c);
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 0, on_idle), 0);
    ck_assert_int_eq(c.fired, 0); /* never inside the call */
    run_until(loop, &c.fired, 1);
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

START_TEST(the_callback_may_set_a_new_deadline)
{
    IO_LOOP_OR_SKIP(_i, 0);
    conn c;
    conn_open(loop, &c);
    c.rearm = 2;
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 20 * KT_MS, on_idle), 0);
    run_until(loop, &c.fired, 3);
    run_for(loop, 100, NULL, NULL);
    ck_assert_int_eq(c.fired, 3);
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

START_TEST(a_close_removes_the_deadline)
{
    IO_LOOP_OR_SKIP(_i, 0);
    conn c;
    conn_open(loop, &c);
    ck_assert_int_eq(kart_sock_recv_start(&c.sock, on_recv), 0);
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 10 * KT_MS, on_idle), 0);
    ck_assert_int_eq(kart_sock_close(&c.sock, &c.close_req, on_close), 0);
    /* After a close has started the socket takes no new deadline. */
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 10 * KT_MS, on_idle), -EPIPE);
    run_until(loop, &c.closed, 1);
    run_for(loop, 60, NULL, NULL);
    ck_assert_int_eq(c.fired, 0);
    close(c.peer);
    io_close_loop(loop);
}
END_TEST

START_TEST(the_deadline_does_not_keep_the_loop_running)
{
    IO_LOOP_OR_SKIP(_i, 0);
    conn c;
    conn_open(loop, &c);
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 5000 * KT_MS, on_idle), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_lt(kart_now_ns() - t0, 1000 * KT_MS);
    ck_assert_int_eq(c.fired, 0);
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

/* 300 sockets: the silent half times out, the half that talks does not. */
#define MANY 300
static conn many[MANY];

static void half_talks(void *arg)
{
    (void)arg;
    static int64_t next;
    int64_t now = kart_now_ns();
    if (now < next)
        return;
    next = now + 25 * KT_MS;
    for (int k = 0; k < MANY; k += 2)
        ck_assert_int_eq(write(many[k].peer, "z", 1), 1);
}

START_TEST(many_sockets_each_keep_their_own_deadline)
{
    IO_LOOP_OR_SKIP(_i, 0);
    bool decided = false;
    for (int t = 0; t < TRIES && !decided; t++) {
        for (int k = 0; k < MANY; k++) {
            conn_open(loop, &many[k]);
            ck_assert_int_eq(kart_sock_recv_start(&many[k].sock, on_recv), 0);
            ck_assert_int_eq(kart_sock_set_idle_timeout(&many[k].sock, 600 * KT_MS, on_idle), 0);
        }
        run_for(loop, 1500, half_talks, NULL);
        if (max_gap < 250 * KT_MS) {
            decided = true;
            for (int k = 0; k < MANY; k++)
                ck_assert_int_eq(many[k].fired, k % 2 ? 1 : 0);
        }
        for (int k = 0; k < MANY; k++)
            ck_assert_int_eq(kart_sock_close(&many[k].sock, &many[k].close_req, on_close), 0);
        for (int k = 0; k < MANY; k++) {
            run_until(loop, &many[k].closed, 1);
            close(many[k].peer);
        }
    }
    ck_assert_msg(decided, "the machine never ran the loop smoothly enough to decide");
    io_close_loop(loop);
}
END_TEST

START_TEST(documented_errors)
{
    IO_LOOP_OR_SKIP(_i, 0);
    conn c;
    conn_open(loop, &c);
    ck_assert_int_eq(kart_sock_set_idle_timeout(NULL, 10 * KT_MS, on_idle), -EINVAL);
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 10 * KT_MS, NULL), -EINVAL);
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 0, NULL), -EINVAL);
    /* -ENOMEM: no deadline is left behind, and the socket still works. */
    kart__fault_fail(KART__SYS_malloc, 1, 1, ENOMEM);
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 10 * KT_MS, on_idle), -ENOMEM);
    kart__fault_reset();
    run_for(loop, 40, NULL, NULL);
    ck_assert_int_eq(c.fired, 0);
    ck_assert_int_eq(kart_sock_set_idle_timeout(&c.sock, 10 * KT_MS, on_idle), 0);
    run_until(loop, &c.fired, 1);
    /* -EPIPE: covered with a close in a_close_removes_the_deadline. */
    conn_close(loop, &c);
    io_close_loop(loop);
}
END_TEST

int main(void)
{
    int nb = nb_io();
    Suite *s = suite_create("io_deadline");
    TCase *tc = tcase_create("idle");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, fires_once_on_a_silent_peer, 0, nb);
    tcase_add_loop_test(tc, received_bytes_move_the_deadline, 0, nb);
    tcase_add_loop_test(tc, completed_sends_move_the_deadline_a_stalled_one_does_not, 0, nb);
    tcase_add_loop_test(tc, setting_again_replaces_the_timeout_and_the_callback, 0, nb);
    tcase_add_loop_test(tc, a_negative_timeout_removes_the_deadline, 0, nb);
    tcase_add_loop_test(tc, zero_fires_at_the_next_turn, 0, nb);
    tcase_add_loop_test(tc, the_callback_may_set_a_new_deadline, 0, nb);
    tcase_add_loop_test(tc, a_close_removes_the_deadline, 0, nb);
    tcase_add_loop_test(tc, the_deadline_does_not_keep_the_loop_running, 0, nb);
    tcase_add_loop_test(tc, many_sockets_each_keep_their_own_deadline, 0, nb);
    tcase_add_loop_test(tc, documented_errors, 0, nb);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: the send path of kart/io.h under load: deep queues of
 * small sends (gathered into one sendmsg on native io_uring: each request
 * completes in order with its own length, in a bounded number of loop
 * turns and ring enters), short sends resumed inside a gathered send, a
 * cancel and a timeout inside one, a shutdown behind queued sends, and 32
 * MB through a socket with SO_SNDBUF 4096 to a reader that keeps up (native
 * io_uring stalled there once). Every case runs once per compiled-in
 * backend and once more on io_uring with its native operations off. */
#include "io_backends.h"
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 251);
}

/* ---- a reader thread that checks the stream ---- */

typedef struct reader {
    int fd;
    size_t want; /* stop after this many bytes (or at EOF) */
    size_t got, bad;
    bool eof;
    int64_t start_after_ns;      /* sleep first: the sender's queue fills */
    const unsigned char *expect; /* NULL: pattern() */
    atomic_int done;
} reader;

static void *reader_main(void *arg)
{
    reader *r = arg;
    r->bad = SIZE_MAX;
    if (r->start_after_ns) {
        struct timespec ts = {0, (long)r->start_after_ns};
        nanosleep(&ts, NULL);
    }
    static __thread unsigned char buf[1 << 16];
    while (r->got < r->want) {
        ssize_t n = read(r->fd, buf, sizeof(buf));
        if (n <= 0) {
            r->eof = n == 0;
            break;
        }
        for (ssize_t k = 0; k < n && r->bad == SIZE_MAX; k++) {
            size_t at = r->got + (size_t)k;
            unsigned char e = r->expect ? r->expect[at] : pattern(at);
            if (buf[k] != e)
                r->bad = at;
        }
        r->got += (size_t)n;
    }
    atomic_store(&r->done, 1);
    return NULL;
}

/* ---- sends with their results ---- */

typedef struct sender {
    kart_loop *loop;
    kart_sock sock;
    kart_req close;
    atomic_int closed;
    int peer;
    int n;
    kart_req *req;
    int *res;
    int *order;
    atomic_int calls;
} sender;

static void on_sent(kart_req *r, int res)
{
    sender *s = r->data;
    int k = (int)(r - s->req);
    s->res[k] = res;
    s->order[atomic_fetch_add(&s->calls, 1)] = k;
}

static void on_closed(kart_req *r, int res)
{
    sender *s = r->data;
    ck_assert_int_eq(res, 0);
    atomic_fetch_add(&s->closed, 1);
}

static void sender_open(kart_loop *loop, sender *s, int n, int sndbuf)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->n = n;
    s->req = calloc((size_t)n, sizeof(*s->req));
    s->res = calloc((size_t)n, sizeof(int));
    s->order = calloc((size_t)n, sizeof(int));
    ck_assert(s->req && s->res && s->order);
    for (int k = 0; k < n; k++)
        s->req[k].data = s;
    int sv[2];
    kt_tcp_pair(sv);
    s->peer = sv[0];
    if (sndbuf)
        ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    s->close.data = s;
    ck_assert_int_eq(kart_sock_init(loop, &s->sock, sv[1]), 0);
}

/* data[k] = pattern(k) for its n bytes. */
static void fill_pattern(unsigned char *data, size_t n)
{
    for (size_t k = 0; k < n; k++)
        data[k] = pattern(k);
}

/* Queues s's n requests, request k sending data's k-th `each` bytes. */
static void send_each(sender *s, const unsigned char *data, int n, size_t each)
{
    for (int k = 0; k < n; k++)
        ck_assert_int_eq(
            kart_sock_send(&s->sock, &s->req[k], data + (size_t)k * each, each, -1, on_sent), 0);
}

static void sender_close(sender *s)
{
    ck_assert_int_eq(kart_sock_close(&s->sock, &s->close, on_closed), 0);
    io_run_until(s->loop, &s->closed, 1, 5000);
    close(s->peer);
    free(s->req);
    free(s->res);
    free(s->order);
}

static bool native_uring(kart_loop *loop)
{
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
    return st.native;
}

static uint64_t enters(kart_loop *loop)
{
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
    return st.enters;
}

/* 20,000 sends of 64 bytes queued at once, to a reader that keeps up:
 * every callback in order with 64, the stream whole, and the turns
 * bounded (one send per turn took 20,000 on native io_uring). */
START_TEST(deep_queue_of_small_sends_goes_out_together_in_order)
{
    IO_LOOP_OR_SKIP(_i, 0);
    enum { N = 20000, EACH = 64 };
    sender s;
    sender_open(loop, &s, N, 0);
    static unsigned char data[N * EACH];
    fill_pattern(data, sizeof(data));
    reader rd = {.fd = s.peer, .want = sizeof(data)};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, reader_main, &rd), 0);
    send_each(&s, data, N, EACH);
    uint64_t e0 = enters(loop);
    long turns = io_run_until(loop, &s.calls, N, 20000);
    uint64_t e = enters(loop) - e0;
    io_run_until(loop, &rd.done, 1, 10000);
    pthread_join(th, NULL);
    ck_assert_uint_eq(rd.got, sizeof(data));
    ck_assert_uint_eq(rd.bad, SIZE_MAX);
    KT_ASSERT_EACH(k, N, s.res[k] == EACH && s.order[k] == (int)k);
    printf("%s%s: %d sends of %d B: %ld turns, %llu enters\n", backend,
           native_uring(loop) ? "" : " (emulated)", N, EACH, turns, (unsigned long long)e);
    ck_assert_msg(turns <= 200, "%ld loop turns for %d sends", turns, N);
    if (native_uring(loop))
        ck_assert_msg(e <= 400, "%llu enters for %d sends", (unsigned long long)e, N);
    sender_close(&s);
    io_close_loop(loop);
}
END_TEST

/* Three sends queued on an idle socket in one turn come back in one turn,
 * in order, each with its length, the stream whole: on native io_uring
 * they go out at the turn's end as one gathered send (before 2026-12-07 the
 * first went alone at once and the others a turn after it, so a receive
 * split in two completions was echoed by two sends in two turns). */
START_TEST(sends_queued_in_one_turn_complete_in_one_turn)
{
    IO_LOOP_OR_SKIP(_i, 0);
    enum { N = 3, EACH = 64 };
    sender s;
    sender_open(loop, &s, N, 0);
    unsigned char data[N * EACH];
    fill_pattern(data, sizeof(data));
    send_each(&s, data, N, EACH);
    kart_timer hb;
    ck_assert_int_eq(kart_timer_init(loop, &hb), 0);
    ck_assert_int_eq(kart_timer_start(&hb, hb_cb, 5 * KT_MS, 5 * KT_MS), 0);
    int turns = 0;
    while (atomic_load(&s.calls) == 0 && turns++ < 2000)
        ck_assert_int_ge(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_msg(atomic_load(&s.calls) == N, "%s: %d of %d sends done in the first turn with any",
                  backend, atomic_load(&s.calls), N);
    KT_ASSERT_EACH(k, N, s.res[k] == EACH && s.order[k] == (int)k);
    unsigned char got[sizeof(data)];
    ck_assert_int_eq(recv(s.peer, got, sizeof(got), MSG_WAITALL), (int)sizeof(got));
    ck_assert_mem_eq(got, data, sizeof(data));
    kart_timer_stop(&hb);
    sender_close(&s);
    io_close_loop(loop);
}
END_TEST

/* A send and an abortive close of its socket in the same turn, the
 * socket's memory freed in the close's callback, beside a second socket
 * whose send is queued in that turn too: the first send ends -ECANCELED
 * (on native io_uring, where it had not started: nothing reaches the
 * peer) or with its length (the readiness backends write at once), its
 * peer sees the end of the stream, and the second socket's send is
 * unharmed (the turn-end start skips the closed one). */
typedef struct doomed {
    kart_sock sock;
    kart_req send, close;
} doomed;

static atomic_int doomed_sent, doomed_closed;
static int doomed_res;

static void doomed_on_sent(kart_req *r, int res)
{
    (void)r;
    doomed_res = res;
    atomic_fetch_add(&doomed_sent, 1);
}

static void doomed_on_closed(kart_req *r, int res)
{
    ck_assert_int_eq(res, 0);
    free(r->data);
    atomic_fetch_add(&doomed_closed, 1);
}

START_TEST(send_then_close_in_one_turn_frees_cleanly)
{
    IO_LOOP_OR_SKIP(_i, 0);
    atomic_store(&doomed_sent, 0);
    atomic_store(&doomed_closed, 0);
    static const char msg[64] = "doomed";
    int sv[2];
    kt_tcp_pair(sv);
    doomed *d = calloc(1, sizeof(*d));
    ck_assert_ptr_nonnull(d);
    d->close.data = d;
    ck_assert_int_eq(kart_sock_init(loop, &d->sock, sv[1]), 0);
    sender s;
    sender_open(loop, &s, 1, 0);
    ck_assert_int_eq(kart_sock_send(&d->sock, &d->send, msg, sizeof(msg), -1, doomed_on_sent), 0);
    ck_assert_int_eq(kart_sock_send(&s.sock, &s.req[0], msg, sizeof(msg), -1, on_sent), 0);
    ck_assert_int_eq(kart_sock_close(&d->sock, &d->close, doomed_on_closed), 0);
    io_run_until(loop, &doomed_closed, 1, 5000);
    io_run_until(loop, &s.calls, 1, 5000);
    ck_assert_int_eq(atomic_load(&doomed_sent), 1);
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
    if (st.native)
        ck_assert_int_eq(doomed_res, -ECANCELED);
    else
        ck_assert_msg(doomed_res == (int)sizeof(msg) || doomed_res == -ECANCELED, "%d", doomed_res);
    char got[sizeof(msg) + 1];
    ssize_t n = recv(sv[0], got, sizeof(got), MSG_WAITALL);
    ck_assert_int_eq(n, doomed_res > 0 ? (ssize_t)sizeof(msg) : 0);
    close(sv[0]);
    ck_assert_int_eq(s.res[0], (int)sizeof(msg));
    ck_assert_int_eq(recv(s.peer, got, sizeof(msg), MSG_WAITALL), (int)sizeof(msg));
    sender_close(&s);
    io_close_loop(loop);
}
END_TEST

/* Sends of mixed sizes through a small send buffer to a reader that
 * starts late: gathered sends come back short and are resumed from the
 * right byte, with zero-length sends among them. */
START_TEST(short_gathered_sends_resume_at_the_right_byte)
{
    IO_LOOP_OR_SKIP(_i, 0);
    enum { N = 3000 };
    sender s;
    sender_open(loop, &s, N, 4096);
    size_t total = 0, len[N];
    for (int k = 0; k < N; k++) {
        len[k] = (k % 17 == 0) ? 0 : (size_t)((k * 131) % 3001);
        total += len[k];
    }
    unsigned char *data = malloc(total);
    ck_assert_ptr_nonnull(data);
    fill_pattern(data, total);
    reader rd = {.fd = s.peer, .want = total, .start_after_ns = 100 * KT_MS};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, reader_main, &rd), 0);
    size_t off = 0;
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(kart_sock_send(&s.sock, &s.req[k], data + off, len[k], -1, on_sent), 0);
        off += len[k];
    }
    io_run_until(loop, &s.calls, N, 20000);
    io_run_until(loop, &rd.done, 1, 10000);
    pthread_join(th, NULL);
    ck_assert_uint_eq(rd.got, total);
    ck_assert_uint_eq(rd.bad, SIZE_MAX);
    KT_ASSERT_EACH(k, N, s.res[k] == (int)len[k] && s.order[k] == (int)k);
    free(data);
    sender_close(&s);
    io_close_loop(loop);
}
END_TEST

/* A cancel and a timeout of requests that may be inside a gathered send
 * in flight: each ends once (cancelled, timed out, or sent if that won),
 * the others complete in order, and the stream is exactly the requests
 * that reported their length, in order. */
START_TEST(cancel_and_timeout_inside_a_gathered_send)
{
    IO_LOOP_OR_SKIP(_i, 0);
    enum { N = 400, EACH = 1000 };
    sender s;
    sender_open(loop, &s, N, 4096);
    static unsigned char data[N * EACH];
    for (size_t k = 0; k < sizeof(data); k++)
        data[k] = (unsigned char)(k / EACH * 13 + k);
    for (int k = 0; k < N; k++) {
        int64_t timeout = k == 250 ? 50 * KT_MS : -1;
        ck_assert_int_eq(
            kart_sock_send(&s.sock, &s.req[k], data + (size_t)k * EACH, EACH, timeout, on_sent), 0);
    }
    for (int t = 0; t < 3; t++)
        ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(kart_req_cancel(&s.req[200]), 0);
    /* Let the timeout fire before anyone reads. */
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    for (int t = 0; t < 3; t++)
        ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(s.res[200], -ECANCELED);
    ck_assert_int_eq(s.res[250], -ETIMEDOUT);
    reader rd = {.fd = s.peer, .want = (size_t)(N - 2) * EACH};
    static unsigned char expect[N * EACH];
    size_t n = 0;
    for (int k = 0; k < N; k++)
        if (k != 200 && k != 250) {
            memcpy(expect + n, data + (size_t)k * EACH, EACH);
            n += EACH;
        }
    rd.expect = expect;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, reader_main, &rd), 0);
    io_run_until(loop, &s.calls, N, 20000);
    io_run_until(loop, &rd.done, 1, 10000);
    pthread_join(th, NULL);
    ck_assert_uint_eq(rd.got, n);
    ck_assert_uint_eq(rd.bad, SIZE_MAX);
    int prev = -1;
    for (int k = 0; k < N; k++) {
        int i = s.order[k];
        if (i == 200 || i == 250)
            continue;
        ck_assert_int_eq(s.res[i], EACH);
        ck_assert_int_gt(i, prev);
        prev = i;
    }
    sender_close(&s);
    io_close_loop(loop);
}
END_TEST

static void on_shut(kart_req *r, int res)
{
    int *out = r->data;
    *out = res;
}

/* A shutdown queued behind many sends: they go out first, then EOF. */
START_TEST(shutdown_behind_a_deep_queue)
{
    IO_LOOP_OR_SKIP(_i, 0);
    enum { N = 2000, EACH = 100 };
    sender s;
    sender_open(loop, &s, N, 4096);
    static unsigned char data[N * EACH];
    fill_pattern(data, sizeof(data));
    send_each(&s, data, N, EACH);
    kart_req shut;
    kart_req_init(&shut);
    int shut_res = 1;
    shut.data = &shut_res;
    ck_assert_int_eq(kart_sock_shutdown(&s.sock, &shut, SHUT_WR, on_shut), 0);
    reader rd = {.fd = s.peer, .want = SIZE_MAX};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, reader_main, &rd), 0);
    io_run_until(loop, &s.calls, N, 20000);
    io_run_until(loop, &rd.done, 1, 10000);
    pthread_join(th, NULL);
    ck_assert_int_eq(shut_res, 0);
    ck_assert(rd.eof);
    ck_assert_uint_eq(rd.got, sizeof(data));
    ck_assert_uint_eq(rd.bad, SIZE_MAX);
    sender_close(&s);
    io_close_loop(loop);
}
END_TEST

/* 32 MB through SO_SNDBUF 4096 to a reader that keeps up: as 512 sends of
 * 64 KiB with 16 in flight (an application's window), and as one send. */
static void sndbuf_4096_32mb(int i, bool one_send)
{
    IO_LOOP_OR_SKIP(i, 0);
    enum { EACH = 65536, N = 512, WINDOW = 16 };
    sender s;
    sender_open(loop, &s, N, 4096);
    static unsigned char data[(size_t)N * EACH];
    fill_pattern(data, sizeof(data));
    reader rd = {.fd = s.peer, .want = sizeof(data)};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, reader_main, &rd), 0);
    int64_t t0 = kart_now_ns();
    if (one_send) {
        ck_assert_int_eq(kart_sock_send(&s.sock, &s.req[0], data, sizeof(data), -1, on_sent), 0);
        io_run_until(loop, &s.calls, 1, 60000);
        ck_assert_int_eq(s.res[0], (int)sizeof(data));
    } else {
        int started = 0;
        while (atomic_load(&s.calls) < N) {
            while (started < N && started - atomic_load(&s.calls) < WINDOW) {
                ck_assert_int_eq(kart_sock_send(&s.sock, &s.req[started],
                                                data + (size_t)started * EACH, EACH, -1, on_sent),
                                 0);
                started++;
            }
            io_run_until(loop, &s.calls, atomic_load(&s.calls) + 1, 60000);
        }
        KT_ASSERT_EACH(k, N, s.res[k] == EACH && s.order[k] == (int)k);
    }
    io_run_until(loop, &rd.done, 1, 10000);
    pthread_join(th, NULL);
    ck_assert_uint_eq(rd.got, sizeof(data));
    ck_assert_uint_eq(rd.bad, SIZE_MAX);
    printf("%s%s: 32 MB through SO_SNDBUF 4096 (%s): %lld ms\n", backend,
           native_uring(loop) ? "" : " (emulated)", one_send ? "one send" : "64 KiB sends",
           (long long)((kart_now_ns() - t0) / KT_MS));
    sender_close(&s);
    io_close_loop(loop);
}

START_TEST(sndbuf_4096_carries_32mb_in_64k_sends)
{
    sndbuf_4096_32mb(_i, false);
}
END_TEST


int main(void)
{
    int nb = nb_io();
    kt_print_backends();
    Suite *s = suite_create("io_send");
    TCase *tc = tcase_create("gather");
    tcase_set_timeout(tc, 90);
    tcase_add_loop_test(tc, deep_queue_of_small_sends_goes_out_together_in_order, 0, nb);
    tcase_add_loop_test(tc, short_gathered_sends_resume_at_the_right_byte, 0, nb);
    tcase_add_loop_test(tc, cancel_and_timeout_inside_a_gathered_send, 0, nb);
    tcase_add_loop_test(tc, shutdown_behind_a_deep_queue, 0, nb);
    tcase_add_loop_test(tc, sends_queued_in_one_turn_complete_in_one_turn, 0, nb);
    tcase_add_loop_test(tc, send_then_close_in_one_turn_frees_cleanly, 0, nb);
    suite_add_tcase(s, tc);
    tc = tcase_create("sndbuf");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, sndbuf_4096_carries_32mb_in_64k_sends, 0, nb);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

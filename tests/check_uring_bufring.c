/* Description: io_uring's provided-buffer ring (uring/uring_io.c): it
 * holds only part of the loop's pool (its fill), so a loop touches the
 * buffers its busiest turn needs, not the whole pool; the fill grows when
 * the ring runs dry while buffers wait outside it, and keeps what it
 * grew to; and data stays whole and in order through large transfers on
 * many sockets whose receives keep running the ring dry (-ENOBUFS, the
 * re-arm, the starved sockets' resumption). The fill's cases lend whole
 * buffers: they turn incremental consumption (check_uring_pbufinc) off;
 * the large transfers run with it on too. Every case skips, with a
 * message, where io_uring does not start or its native operations are off. */
#include "testutil.h"

#include "../uring/uring_probe.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The fill a new ring starts with (uring_io.c's BR_FILL_START). */
#define FILL_START 32u

#define MAXS 100

typedef struct side {
    kart_sock sock;
    kart_req close_req;
    int peer;   /* the test's end of the pair */
    size_t got; /* bytes received */
    int check;  /* the stream's pattern: byte k is pat(k, check) */
    bool bad;   /* a byte differed */
    bool hold;  /* keep what arrives lent */
    kart_buf *held[8];
    int nheld;
} side;

static side sides[MAXS];
static int nclosed;
static uint32_t max_id; /* the highest buffer id a receive lent */

static unsigned char pat(size_t k, int j)
{
    return (unsigned char)(k * 31u + (size_t)j * 7u + (k >> 12));
}

static void on_recv(kart_sock *sock, int nread, kart_buf *buf)
{
    side *s = (side *)sock;
    ck_assert_int_gt(nread, 0);
    ck_assert_ptr_nonnull(buf);
    if (buf->id_ > max_id)
        max_id = buf->id_;
    for (int k = 0; k < nread; k++)
        if ((unsigned char)buf->base[k] != pat(s->got + (size_t)k, s->check))
            s->bad = true;
    s->got += (size_t)nread;
    if (s->hold && s->nheld < 8)
        s->held[s->nheld++] = buf;
    else
        kart_buf_release(buf);
}

static void on_closed(kart_req *req, int res)
{
    (void)req;
    ck_assert_int_eq(res, 0);
    nclosed++;
}

/* A loop on io_uring with native operations, or NULL (the caller skips);
 * its pool's ring consumes buffers incrementally only if inc (and the
 * kernel can). */
static kart_loop *uring_loop(bool inc)
{
    if (kart_backend_probe("uring") != 0)
        return NULL;
    kart__ur_features_off(inc ? 0 : 1u << KART__UR_PBUF_INC);
    kart_loop *loop;
    kart_loop_options o = {.selector.backend = "uring"};
    ck_assert_int_eq(kart_loop_create(&loop, &o), 0);
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
    if (!st.native) {
        kart_loop_free(loop);
        return NULL;
    }
    return loop;
}

#define LOOP_OR_SKIP_NATIVE_INC(inc)                                                               \
    kart_loop *loop = uring_loop(inc);                                                             \
    if (!loop)                                                                                     \
        KART_SKIP("io_uring with native operations cannot start here");
#define LOOP_OR_SKIP_NATIVE() LOOP_OR_SKIP_NATIVE_INC(false)

static void open_sides(kart_loop *loop, int n)
{
    memset(sides, 0, sizeof(sides));
    nclosed = 0;
    max_id = 0;
    for (int j = 0; j < n; j++) {
        int sv[2];
        kt_tcp_pair(sv);
        sides[j].peer = sv[0];
        sides[j].check = j;
        ck_assert_int_eq(kart_sock_init(loop, &sides[j].sock, sv[1]), 0);
        ck_assert_int_eq(kart_sock_recv_start(&sides[j].sock, on_recv), 0);
    }
}

static void release_held(side *s)
{
    for (int k = 0; k < s->nheld; k++)
        kart_buf_release(s->held[k]);
    s->nheld = 0;
}

static void close_sides(kart_loop *loop, int n)
{
    for (int j = 0; j < n; j++) {
        release_held(&sides[j]);
        ck_assert_int_eq(kart_sock_close(&sides[j].sock, &sides[j].close_req, on_closed), 0);
    }
    while (nclosed < n)
        kart_loop_run(loop, KART_RUN_ONCE);
    for (int j = 0; j < n; j++)
        close(sides[j].peer);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    kart_loop_free(loop);
    kart__ur_features_off(0);
}

/* Runs the loop until side j has `want` bytes, failing after 10 s. */
static void run_until_got(kart_loop *loop, int j, size_t want)
{
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (sides[j].got < want) {
        ck_assert_msg(kart_now_ns() < end, "side %d: %zu of %zu bytes", j, sides[j].got, want);
        kart_loop_run(loop, KART_RUN_NOWAIT);
    }
}

static void write_pattern(int fd, int j, size_t from, size_t n)
{
    unsigned char b[4096];
    while (n > 0) {
        size_t c = n < sizeof(b) ? n : sizeof(b);
        for (size_t k = 0; k < c; k++)
            b[k] = pat(from + k, j);
        ssize_t w = write(fd, b, c);
        ck_assert_int_eq(w, (ssize_t)c);
        from += c;
        n -= c;
    }
}

/* One socket, thousands of receives, each buffer released at once: only
 * the ring's first fill of buffers, and the one the ring is topped up
 * with while one is lent, is ever lent (the ring used to cycle the whole
 * pool, so all 256 became resident). */
START_TEST(ring_lends_only_its_fill)
{
    LOOP_OR_SKIP_NATIVE();
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 256, 4096), 0);
    open_sides(loop, 1);
    size_t sent = 0;
    for (int k = 0; k < 2000; k++) {
        write_pattern(sides[0].peer, 0, sent, 100);
        sent += 100;
        run_until_got(loop, 0, sent);
    }
    ck_assert(!sides[0].bad);
    ck_assert_uint_le(max_id, FILL_START);
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
    ck_assert_uint_eq(st.enobufs, 0);
    ck_assert_uint_eq(st.bufs_lent, 0);
    ck_assert_uint_eq(st.bufs_total, 256);
    close_sides(loop, 1);
}
END_TEST

/* 100 sockets each hold a buffer at once: the ring runs dry at its first
 * fill, grows, and every socket gets its data; the grown fill stays, so a
 * second such wave finds the ring ready (no empty ring). */
START_TEST(fill_grows_when_the_ring_runs_dry_and_stays)
{
    LOOP_OR_SKIP_NATIVE();
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 1024, 4096), 0);
    int n = MAXS;
    open_sides(loop, n);
    for (int j = 0; j < n; j++)
        sides[j].hold = true;
    for (int wave = 0; wave < 2; wave++) {
        for (int j = 0; j < n; j++)
            write_pattern(sides[j].peer, j, sides[j].got, 10);
        for (int j = 0; j < n; j++)
            run_until_got(loop, j, (size_t)(wave + 1) * 10);
        kart_io_stats st;
        ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
        ck_assert_uint_eq(st.bufs_lent, (uint32_t)n);
        /* the first wave ran the first fill dry; the second found room */
        if (wave == 0)
            ck_assert_uint_ge(st.enobufs, 1);
        static uint64_t first;
        if (wave == 0)
            first = st.enobufs;
        else
            ck_assert_uint_eq(st.enobufs, first);
        for (int j = 0; j < n; j++)
            release_held(&sides[j]);
    }
    /* Many receives on one socket cycle through whatever the ring holds:
     * grown to twice what was lent at most, it holds fewer than 3n (a
     * doubling per empty ring ran it up to the whole pool: ids to 1023). */
    sides[0].hold = false;
    for (int k = 0; k < 3000; k++) {
        write_pattern(sides[0].peer, 0, sides[0].got, 10);
        run_until_got(loop, 0, sides[0].got + 10);
    }
    ck_assert_uint_lt(max_id, 3 * (uint32_t)n);
    for (int j = 0; j < n; j++)
        ck_assert(!sides[j].bad);
    close_sides(loop, n);
}
END_TEST

/* The writers of the large-transfer case: each pair's peer gets `bytes`
 * of its pattern, in writes of odd sizes so buffers fill partly. */
typedef struct writer_arg {
    int n;
    size_t bytes;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    size_t off[MAXS] = {0};
    for (bool left = true; left;) {
        left = false;
        for (int j = 0; j < a->n; j++) {
            size_t c = 1000 + (size_t)(j * 977 + (int)(off[j] % 7919)) % 20000;
            if (off[j] + c > a->bytes)
                c = a->bytes - off[j];
            if (c == 0)
                continue;
            write_pattern(sides[j].peer, j, off[j], c);
            off[j] += c;
            left = true;
        }
    }
    return NULL;
}

static void release_tick(kart_timer *t)
{
    int n = *(int *)t->base.data;
    for (int j = 0; j < n; j++)
        release_held(&sides[j]);
}

/* 16 sockets receive 2 MiB each at once into a 48-buffer pool of 4 KiB,
 * each keeping up to 8 buffers lent until a 1 ms timer releases them: the
 * ring runs dry over and over (re-arms, starved receives, the fill grown
 * to the whole pool) and every byte arrives, whole and in order. */
START_TEST(large_transfers_stay_whole_through_dry_rings)
{
    LOOP_OR_SKIP_NATIVE_INC(_i == 1);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 64, 4096), 0);
    int n = 16;
    size_t bytes = 2u << 20;
    open_sides(loop, n);
    for (int j = 0; j < n; j++)
        sides[j].hold = true;
    kart_timer tick;
    ck_assert_int_eq(kart_timer_init(loop, &tick), 0);
    tick.base.data = &n;
    ck_assert_int_eq(kart_timer_start(&tick, release_tick, KT_MS, KT_MS), 0);
    writer_arg a = {n, bytes};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, writer, &a), 0);
    int64_t end = kart_now_ns() + 60000 * KT_MS;
    for (int j = 0; j < n; j++)
        while (sides[j].got < bytes) {
            ck_assert_msg(kart_now_ns() < end, "side %d: %zu bytes", j, sides[j].got);
            kart_loop_run(loop, KART_RUN_ONCE);
        }
    pthread_join(t, NULL);
    kart_timer_stop(&tick);
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
    ck_assert_uint_ge(st.enobufs, 1);
    for (int j = 0; j < n; j++) {
        ck_assert_msg(!sides[j].bad, "side %d: a byte differed", j);
        ck_assert_uint_eq(sides[j].got, bytes);
    }
    close_sides(loop, n);
}
END_TEST

/* A new pool starts a new ring at the first fill again; a pool smaller
 * than the first fill is all in the ring. */
START_TEST(a_new_pool_starts_a_new_fill)
{
    LOOP_OR_SKIP_NATIVE();
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 4096), 0);
    open_sides(loop, 4);
    for (int j = 0; j < 4; j++)
        sides[j].hold = true;
    for (int j = 0; j < 4; j++)
        write_pattern(sides[j].peer, j, 0, 10);
    for (int j = 0; j < 4; j++)
        run_until_got(loop, j, 10);
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
    ck_assert_uint_eq(st.bufs_lent, 4); /* all four were in the ring */
    ck_assert_uint_eq(st.enobufs, 0);
    close_sides(loop, 4);
}
END_TEST

int main(void)
{
    int err = kart_backend_probe("uring");
    if (err != 0) {
        KART_SKIP_GROUP("the uring buffer-ring cases: io_uring cannot start here (%s)",
                        kart_strerror(err));
        fflush(stdout);
    }
    Suite *s = suite_create("uring_bufring");
    TCase *tc = tcase_create("uring_bufring");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ring_lends_only_its_fill);
    tcase_add_test(tc, fill_grows_when_the_ring_runs_dry_and_stays);
    /* 0: whole buffers; 1: incremental consumption where the kernel has it */
    tcase_add_loop_test(tc, large_transfers_stay_whole_through_dry_rings, 0, 2);
    tcase_add_test(tc, a_new_pool_starts_a_new_fill);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

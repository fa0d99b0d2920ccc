/* Description: incremental consumption of io_uring's receive buffers
 * (IOU_PBUF_RING_INC, uring/uring_pbuf.c): receives share a buffer, each
 * lent as a slice of its own (base at the bytes the buffer's earlier
 * receives took, size its bytes); a receive larger than what is left
 * spills into the next buffer; a buffer the kernel is done with goes back
 * to the ring only once every slice of it is released, in any order;
 * kart_sock_send_buf sends slices; the loop refuses to be freed while a
 * slice is out; and with the feature off every receive has a buffer of
 * its own. Skips where the kernel lacks the feature (before 6.12, or
 * KART_URING_FEATURES=-pbuf_inc) or io_uring's native operations are off. */
#include "testutil.h"

#include "../uring/uring_probe.h"
#include "fault.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define NS 4

typedef struct side {
    kart_sock sock;
    kart_req close_req;
    int peer;          /* the test's end of the pair */
    size_t got;        /* bytes received */
    char data[256];    /* what arrived, in order */
    kart_buf *held[8]; /* lent, in arrival order */
    int lens[8];       /* each one's nread */
    int nheld;
    bool echo; /* send each buffer back with kart_sock_send_buf */
    int sent;  /* send_buf callbacks that reported success */
} side;

static side sides[NS];
static int nclosed;

static void on_sent(kart_sock *sock, int result)
{
    side *s = (side *)sock;
    ck_assert_int_gt(result, 0);
    s->sent += result;
}

static void on_recv(kart_sock *sock, int nread, kart_buf *buf)
{
    side *s = (side *)sock;
    ck_assert_int_gt(nread, 0);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_le(s->got + (size_t)nread, sizeof(s->data));
    memcpy(s->data + s->got, buf->base, (size_t)nread);
    s->got += (size_t)nread;
    if (s->echo) {
        /* a slice's size is its bytes: no more may be sent from it */
        ck_assert_int_eq(kart_sock_send_buf(sock, buf, buf->size + 1u, on_sent), -EINVAL);
        ck_assert_int_eq(kart_sock_send_buf(sock, buf, (size_t)nread, on_sent), 0);
        return;
    }
    ck_assert_int_lt(s->nheld, 8);
    s->lens[s->nheld] = nread;
    s->held[s->nheld++] = buf;
}

static void on_closed(kart_req *req, int res)
{
    (void)req;
    ck_assert_int_eq(res, 0);
    nclosed++;
}

/* A loop on io_uring with native operations and incremental consumption
 * as asked (inc false: turned off), or NULL (the caller skips). */
static kart_loop *uring_loop(bool inc)
{
    if (kart_backend_probe("uring") != 0 || (inc && !kart__ur_has(KART__UR_PBUF_INC)))
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

#define LOOP_OR_SKIP(inc)                                                                          \
    kart_loop *loop = uring_loop(inc);                                                             \
    if (!loop)                                                                                     \
        KART_SKIP("io_uring with native operations and pbuf_inc cannot start here");

static void open_sides(kart_loop *loop, int n)
{
    memset(sides, 0, sizeof(sides));
    nclosed = 0;
    for (int j = 0; j < n; j++) {
        int sv[2];
        kt_tcp_pair(sv);
        sides[j].peer = sv[0];
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

/* Writes n bytes of c to side j's peer and runs the loop until j has
 * `want` bytes in all, failing after 10 s. */
static void feed(kart_loop *loop, int j, char c, size_t n, size_t want)
{
    char b[256];
    memset(b, c, n);
    ck_assert_int_eq(write(sides[j].peer, b, n), (ssize_t)n);
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (sides[j].got < want) {
        ck_assert_msg(kart_now_ns() < end, "side %d: %zu of %zu bytes", j, sides[j].got, want);
        kart_loop_run(loop, KART_RUN_NOWAIT);
    }
}

/* Reads n bytes from fd, waiting up to 10 s for them. */
static void read_full(int fd, char *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        ck_assert_int_eq(poll(&pf, 1, 10000), 1);
        ssize_t r = read(fd, out + got, n - got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
}

static void run_a_while(kart_loop *loop)
{
    int64_t end = kart_now_ns() + 50 * KT_MS;
    while (kart_now_ns() < end)
        kart_loop_run(loop, KART_RUN_NOWAIT);
}

static uint32_t lent(kart_loop *loop)
{
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
    return st.bufs_lent;
}

/* Two buffers of 64 bytes (both in the ring): side 0's 40 bytes are the
 * first slice of buffer X; side 1's 40 bytes are X's last 24 (X is then
 * full) and Y's first 16; side 2's 48 fill Y. Side 3's 10 bytes find the
 * ring empty and wait. Released in any order, X goes back to the ring
 * only with its last slice, and side 3's bytes then land at X's start. */
START_TEST(slices_share_a_buffer_which_returns_when_all_are_back)
{
    LOOP_OR_SKIP(true);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 2, 64), 0);
    open_sides(loop, NS);
    feed(loop, 0, 'a', 40, 40);
    feed(loop, 1, 'b', 40, 40);
    feed(loop, 2, 'c', 48, 48);
    for (int j = 0; j < 3; j++)
        for (size_t k = 0; k < sides[j].got; k++)
            ck_assert_int_eq(sides[j].data[k], "abc"[j]);
    /* The kernel may split a receive (it took 48 bytes as 24 + 24 here):
     * whatever the split, the slices of sides 0, 1 and 2 in arrival order
     * tile X and then Y, each starting where the one before ended. */
    kart_buf *first = sides[0].held[0];
    char *xbase = first->base, *ybase = NULL;
    uint32_t x = first->id_, at = 0, nslices = 0;
    for (int j = 0; j < 3; j++)
        for (int k = 0; k < sides[j].nheld; k++, nslices++) {
            kart_buf *b = sides[j].held[k];
            ck_assert_uint_eq(b->size, (uint32_t)sides[j].lens[k]);
            if (at == 64) { /* X is full: Y from its start */
                ck_assert_uint_ne(b->id_, x);
                ybase = b->base;
            }
            ck_assert_uint_eq(b->id_, at < 64 ? x : b->id_);
            ck_assert_ptr_eq(b->base, at < 64 ? xbase + at : ybase + (at - 64));
            at += b->size;
        }
    ck_assert_uint_eq(at, 128);
    ck_assert_ptr_nonnull(ybase);
    ck_assert_uint_ge(sides[1].nheld, 2);   /* side 1's bytes spilled into Y */
    ck_assert_uint_eq(lent(loop), nslices); /* slices, each counted */

    /* Both buffers are full and lent: side 3 waits. A slice of X back
     * while another is out frees nothing. */
    char d[10];
    memset(d, 'd', sizeof(d));
    ck_assert_int_eq(write(sides[3].peer, d, sizeof(d)), 10);
    run_a_while(loop);
    ck_assert_uint_eq(sides[3].got, 0);
    uint32_t n0 = (uint32_t)sides[0].nheld;
    release_held(&sides[0]);
    kart_buf_release(first); /* twice: a no-op */
    run_a_while(loop);
    ck_assert_uint_eq(sides[3].got, 0);
    ck_assert_uint_eq(lent(loop), nslices - n0);

    /* X's last slices back (side 1's first): X re-enters the ring, side 3
     * gets its start. */
    int keep = 0;
    for (int k = 0; k < sides[1].nheld; k++) {
        if (sides[1].held[k]->id_ == x)
            kart_buf_release(sides[1].held[k]);
        else
            sides[1].held[keep++] = sides[1].held[k];
    }
    sides[1].nheld = keep;
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (sides[3].got < 10) {
        ck_assert(kart_now_ns() < end);
        kart_loop_run(loop, KART_RUN_NOWAIT);
    }
    ck_assert_int_eq(sides[3].nheld, 1);
    ck_assert_ptr_eq(sides[3].held[0]->base, xbase);
    ck_assert_mem_eq(sides[3].data, "dddddddddd", 10);
    kart_io_stats st;
    ck_assert_int_eq(kart_loop_io_stats(loop, &st), 0);
    ck_assert_uint_ge(st.enobufs, 1);
    close_sides(loop, NS);
}
END_TEST

/* Small receives on one socket fill one buffer in order, each slice
 * right after the one before; released at once, the buffer is reused
 * from its start once full. */
START_TEST(receives_pack_a_buffer_in_order)
{
    LOOP_OR_SKIP(true);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 64), 0);
    open_sides(loop, 1);
    char *first = NULL;
    uint32_t id = 0;
    for (int k = 0; k < 8; k++) {
        feed(loop, 0, (char)('0' + k), 8, (size_t)(k + 1) * 8);
        ck_assert_int_eq(sides[0].nheld, 1);
        kart_buf *b = sides[0].held[0];
        ck_assert_uint_eq(b->size, 8);
        if (k == 0) {
            first = b->base;
            id = b->id_;
        }
        ck_assert_uint_eq(b->id_, id); /* one buffer, 8 x 8 bytes */
        ck_assert_ptr_eq(b->base, first + 8 * k);
        ck_assert_int_eq(b->base[0], '0' + k);
        release_held(&sides[0]);
    }
    ck_assert_uint_eq(lent(loop), 0);
    close_sides(loop, 1);
}
END_TEST

/* kart_sock_send_buf sends slices of one buffer on several sockets at
 * once (a request per slice) and releases each: the echoes come back
 * whole, and nothing stays lent. */
START_TEST(send_buf_echoes_slices_of_one_buffer)
{
    LOOP_OR_SKIP(true);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 4096), 0);
    open_sides(loop, NS);
    for (int j = 0; j < NS; j++) {
        sides[j].echo = true;
        char m[32];
        int n = snprintf(m, sizeof(m), "message from peer %d", j);
        ck_assert_int_eq(write(sides[j].peer, m, (size_t)n), n);
    }
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    for (int j = 0; j < NS; j++) {
        while (sides[j].sent < 19) {
            ck_assert(kart_now_ns() < end);
            kart_loop_run(loop, KART_RUN_NOWAIT);
        }
        char back[32] = {0};
        read_full(sides[j].peer, back, 19);
        char m[32];
        snprintf(m, sizeof(m), "message from peer %d", j);
        ck_assert_str_eq(back, m);
    }
    ck_assert_uint_eq(lent(loop), 0);
    close_sides(loop, NS);
}
END_TEST

/* Slices out keep the pool (a new one is refused with -EBUSY), and a
 * loop freed with slices out frees them with the pool (under
 * AddressSanitizer: no leak); the slices are gone then, not released. */
START_TEST(loop_free_with_slices_out)
{
    LOOP_OR_SKIP(true);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 4096), 0);
    open_sides(loop, 2);
    feed(loop, 0, 'x', 5, 5);
    feed(loop, 1, 'y', 7, 7);
    for (int j = 0; j < 2; j++)
        ck_assert_int_eq(kart_sock_close(&sides[j].sock, &sides[j].close_req, on_closed), 0);
    while (nclosed < 2)
        kart_loop_run(loop, KART_RUN_ONCE);
    ck_assert_uint_eq(lent(loop), 2);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 8, 4096), -EBUSY);
    ck_assert_mem_eq(sides[1].held[0]->base, "yyyyyyy", 7); /* still there */
    release_held(&sides[1]);
    ck_assert_uint_eq(lent(loop), 1);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 8, 4096), -EBUSY);
    for (int j = 0; j < 2; j++)
        close(sides[j].peer);
    kart_loop_free(loop); /* side 0's slice still out */
    kart__ur_features_off(0);
}
END_TEST

static int recv_err;

static void on_recv_err(kart_sock *sock, int nread, kart_buf *buf)
{
    (void)sock;
    ck_assert_int_lt(nread, 0);
    ck_assert_ptr_null(buf);
    recv_err = nread;
}

/* No memory for a slice: the bytes the kernel took are lost, so the
 * receive ends with -ENOMEM (and its multishot is cancelled); the buffer
 * is not held for the slice that was never lent, and the next receive
 * (another socket) continues after the lost bytes. */
START_TEST(no_memory_for_a_slice_ends_the_receive)
{
    LOOP_OR_SKIP(true);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 2, 64), 0);
    open_sides(loop, 2);
    ck_assert_int_eq(kart_sock_recv_stop(&sides[0].sock), 0);
    ck_assert_int_eq(kart_sock_recv_start(&sides[0].sock, on_recv_err), 0);
    recv_err = 0;
    kart__fault_reset();
    ck_assert_int_eq(kart__fault_fail(KART__SYS_malloc, 1, 1, ENOMEM), 0);
    ck_assert_int_eq(write(sides[0].peer, "lost!", 5), 5);
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (recv_err == 0) {
        ck_assert(kart_now_ns() < end);
        kart_loop_run(loop, KART_RUN_NOWAIT);
    }
    ck_assert_int_eq(recv_err, -ENOMEM);
    ck_assert_uint_eq(kart__fault_fired(KART__SYS_malloc), 1);
    kart__fault_reset();
    ck_assert_uint_eq(lent(loop), 0);
    feed(loop, 1, 'k', 10, 10);
    ck_assert_int_eq(sides[1].nheld, 1);
    ck_assert_uint_eq(sides[1].held[0]->size, 10);
    /* buffers are 64-byte aligned: this one starts 5 bytes in */
    ck_assert_uint_eq((uintptr_t)sides[1].held[0]->base % 64, 5);
    ck_assert_mem_eq(sides[1].data, "kkkkkkkkkk", 10);
    close_sides(loop, 2);
}
END_TEST

/* A pool whose slice table cannot be allocated, or whose ring the kernel
 * refuses, is not made (-ENOMEM, or the kernel's error), and nothing of
 * it is left (AddressSanitizer: no leak); the next try makes one. */
START_TEST(pool_errors_leave_nothing)
{
    LOOP_OR_SKIP(true);
    kart__fault_reset();
    for (unsigned nth = 1; nth <= 2; nth++) {
        ck_assert_int_eq(kart__fault_fail(KART__SYS_malloc, nth, 1, ENOMEM), 0);
        ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 64), -ENOMEM);
        ck_assert_uint_eq(kart__fault_fired(KART__SYS_malloc), 1);
        kart__fault_reset();
    }
    ck_assert_int_eq(kart__fault_fail(KART__SYS_io_uring_register, 1, 1, ENOMEM), 0);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 64), -ENOMEM);
    ck_assert_uint_eq(kart__fault_fired(KART__SYS_io_uring_register), 1);
    kart__fault_reset();
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 64), 0);
    open_sides(loop, 1);
    feed(loop, 0, 'z', 3, 3);
    ck_assert_uint_eq(sides[0].held[0]->size, 3);
    close_sides(loop, 1);
}
END_TEST

/* With the feature off (as before 6.12), each receive has a whole buffer
 * of its own: the first case's sequence lends four buffers. */
START_TEST(feature_off_lends_whole_buffers)
{
    LOOP_OR_SKIP(false);
    ck_assert_int_eq(kart_loop_set_bufpool(loop, 4, 64), 0);
    open_sides(loop, 3);
    feed(loop, 0, 'a', 40, 40);
    feed(loop, 1, 'b', 40, 40);
    feed(loop, 2, 'c', 10, 10);
    kart_buf *a = sides[0].held[0], *b = sides[1].held[0], *c = sides[2].held[0];
    ck_assert_uint_eq(a->size, 64);
    ck_assert_uint_eq(b->size, 64);
    ck_assert_uint_ne(a->id_, b->id_);
    ck_assert_uint_ne(b->id_, c->id_);
    ck_assert_uint_ne(a->id_, c->id_);
    ck_assert_mem_eq(b->base, "bbbb", 4); /* each from its buffer's start */
    ck_assert_uint_eq(lent(loop), 3);
    close_sides(loop, 3);
}
END_TEST

int main(void)
{
    int err = kart_backend_probe("uring");
    if (err != 0) {
        KART_SKIP_GROUP("the uring pbuf_inc cases: io_uring cannot start here (%s)",
                        kart_strerror(err));
        fflush(stdout);
    } else if (!kart__ur_has(KART__UR_PBUF_INC)) {
        KART_SKIP_GROUP("the uring pbuf_inc cases: incremental consumption is off or absent");
        fflush(stdout);
    }
    Suite *s = suite_create("uring_pbufinc");
    TCase *tc = tcase_create("uring_pbufinc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, slices_share_a_buffer_which_returns_when_all_are_back);
    tcase_add_test(tc, receives_pack_a_buffer_in_order);
    tcase_add_test(tc, send_buf_echoes_slices_of_one_buffer);
    tcase_add_test(tc, loop_free_with_slices_out);
    tcase_add_test(tc, no_memory_for_a_slice_ends_the_receive);
    tcase_add_test(tc, pool_errors_leave_nothing);
    tcase_add_test(tc, feature_off_lends_whole_buffers);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

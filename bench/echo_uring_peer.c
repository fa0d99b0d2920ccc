/*
 * bench/echo_uring_peer.c — raw-uring: the echo server a careful
 * programmer writes on liburing today, the floor kart-uring must match.
 *
 * Best practice as liburing's own examples and the kernel's authors
 * describe it:
 *
 *  - one multishot accept on the listening socket: one SQE, a CQE per
 *    connection;
 *  - one multishot recv per connection, reading into buffers the kernel
 *    picks from a provided-buffer ring (no buffer per connection, so memory
 *    does not grow with idle connections);
 *  - the echo sends the very buffer the bytes arrived in, which returns to
 *    the ring once its send completes; at most one send in flight per
 *    connection (two sends to one socket may run out of order once one
 *    waits for room), a partial send goes on from where it stopped;
 *  - a recv that finds the ring empty ends with -ENOBUFS: its connection
 *    waits on a list and is re-armed once buffers have come back;
 *  - one io_uring_submit_and_wait() per loop turn: every SQE a turn makes
 *    goes in with the next wait;
 *  - IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (completion work runs when
 *    the loop waits, not as interrupts), else COOP_TASKRUN, else neither,
 *    as the kernel allows.
 *
 * The buffer pool (2048 buffers of 16 KiB, so that the largest echo
 * message fits one; 32 MiB) is touched before the server says it is ready,
 * so it counts in the fresh memory echo_hold subtracts: it is a fixed
 * cost, as raw-epoll's one 64 KiB buffer is. Needs Linux 6.0 (multishot
 * recv); the implementation is skipped on older kernels and where the ring
 * cannot be set up.
 */
#include "echo_peers.h"
#include "servers.h"

#if KART_HAVE_URING
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

/* The pool; a test build may shrink it (-DRAW_URING_NBUFS=16) to drive the
 * -ENOBUFS path, and cap each send (-DRAW_URING_SEND_MAX=100) to drive the
 * path of partial sends, which loopback seldom takes. */
#ifndef RAW_URING_NBUFS
#define RAW_URING_NBUFS 2048 /* a power of two, as the ring requires */
#endif
#ifndef RAW_URING_BUF_SIZE
#define RAW_URING_BUF_SIZE 16384
#endif

enum {
    SQ_ENTRIES = 4096,
    CQ_ENTRIES = 65536, /* 10,000 held connections may all complete at once */
    NBUFS = RAW_URING_NBUFS,
    BUF_SIZE = RAW_URING_BUF_SIZE,
    BGID = 0,
};

/* The low bits of a CQE's user_data: what it completes. */
enum { OP_ACCEPT = 0, OP_RECV = 1, OP_SEND = 2, OP_MASK = 3 };

typedef struct ucon {
    int fd;
    int head, tail;    /* buffers to send back, in order (next[]); -1: none */
    uint32_t head_off; /* bytes of the head buffer already sent */
    bool receiving;    /* its multishot recv is armed */
    bool sending;      /* the head buffer's send is in flight */
    bool eof;          /* no more input: close once the queue is out */
    bool failed;       /* a send failed: drop everything */
    bool starved;      /* on the starved list (its recv hit -ENOBUFS) */
    struct ucon *next_starved;
} ucon;

static struct {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    char *bufs;
    uint32_t len[NBUFS]; /* bytes received into each buffer */
    int next[NBUFS];     /* the next buffer in its connection's queue */
    int held;            /* buffers out of the ring */
    int nadd;            /* buffers given back this turn, not yet published */
    ucon *starved;
    int lfd;
} U;

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&U.ring);
    if (!sqe) { /* the SQ is full: flush it, without waiting */
        io_uring_submit(&U.ring);
        sqe = io_uring_get_sqe(&U.ring);
        if (!sqe)
            _exit(1);
    }
    return sqe;
}

static void arm_accept(void)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_multishot_accept(sqe, U.lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

static void arm_recv(ucon *c)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
    c->receiving = true;
}

static void send_head(ucon *c)
{
    struct io_uring_sqe *sqe = sqe_get();
    int b = c->head;
    uint32_t len = U.len[b] - c->head_off;
#ifdef RAW_URING_SEND_MAX
    /* A test build's: every send of more is short, as a full socket's is. */
    if (len > RAW_URING_SEND_MAX)
        len = RAW_URING_SEND_MAX;
#endif
    io_uring_prep_send(sqe, c->fd, U.bufs + (size_t)b * BUF_SIZE + c->head_off, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SEND);
    c->sending = true;
}

/* Buffer b goes back to the ring (published at the end of the turn). */
static void recycle(int b)
{
    io_uring_buf_ring_add(U.br, U.bufs + (size_t)b * BUF_SIZE, BUF_SIZE, (unsigned short)b,
                          io_uring_buf_ring_mask(NBUFS), U.nadd++);
    U.held--;
}

static int pop_head(ucon *c)
{
    int b = c->head;
    c->head = U.next[b];
    if (c->head < 0)
        c->tail = -1;
    c->head_off = 0;
    return b;
}

/* Closes and frees c once its input has ended and nothing of it is in
 * flight or owed. */
static void maybe_close(ucon *c)
{
    if (!c->eof || c->receiving || c->sending || c->starved || (c->head >= 0 && !c->failed))
        return;
    while (c->head >= 0)
        recycle(pop_head(c));
    close(c->fd);
    free(c);
}

/* A send failed (the peer is gone): drop what is queued, and make the
 * armed recv end (shutdown makes it complete with 0). */
static void fail(ucon *c)
{
    c->failed = c->eof = true;
    while (c->head >= 0)
        recycle(pop_head(c));
    if (c->receiving)
        shutdown(c->fd, SHUT_RDWR);
    maybe_close(c);
}

static void on_accept(struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        arm_accept();
    if (cqe->res < 0)
        return; /* EMFILE, ECONNABORTED: the next connection may do */
    int one = 1;
    setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ucon *c = calloc(1, sizeof(*c));
    if (!c) {
        close(cqe->res);
        return;
    }
    c->fd = cqe->res;
    c->head = c->tail = -1;
    arm_recv(c);
}

static void on_recv(ucon *c, struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->receiving = false;
    if (cqe->res > 0) {
        int b = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        U.held++;
        if (c->failed) {
            recycle(b);
        } else {
            U.len[b] = (uint32_t)cqe->res;
            U.next[b] = -1;
            if (c->tail >= 0)
                U.next[c->tail] = b;
            else
                c->head = b;
            c->tail = b;
            if (!c->sending)
                send_head(c);
        }
        /* A multishot recv may end with data (the CQ overflowed). */
        if (!c->receiving && !c->eof)
            arm_recv(c);
    } else if (cqe->res == -ENOBUFS && !c->eof) {
        c->starved = true;
        c->next_starved = U.starved;
        U.starved = c;
    } else {
        c->eof = true; /* 0: the peer closed; else an error */
    }
    maybe_close(c);
}

static void on_send(ucon *c, struct io_uring_cqe *cqe)
{
    c->sending = false;
    if (cqe->res <= 0 || c->failed) { /* 0 of a non-empty send: no progress */
        fail(c);
        return;
    }
    c->head_off += (uint32_t)cqe->res;
    if (c->head_off == U.len[c->head])
        recycle(pop_head(c));
    if (c->head >= 0)
        send_head(c); /* what is left of a partial send, or the next buffer */
    maybe_close(c);
}

/* End of a turn: publish the buffers given back, and re-arm as many
 * starved connections as there are buffers for (each takes one at least). */
static void end_turn(void)
{
    if (U.nadd) {
        io_uring_buf_ring_advance(U.br, U.nadd);
        U.nadd = 0;
    }
    for (int room = NBUFS - U.held; U.starved && room > 0;) {
        ucon *c = U.starved;
        U.starved = c->next_starved;
        c->starved = false;
        if (c->eof) {
            maybe_close(c);
            continue;
        }
        arm_recv(c);
        room--;
    }
}

/* The ring with the best flags this kernel takes; 0 or -errno. */
static int ring_init(struct io_uring *ring)
{
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int err = -EINVAL;
    for (size_t i = 0; i < sizeof(tries) / sizeof(*tries) && err == -EINVAL; i++) {
        struct io_uring_params p = {
            .flags = tries[i] | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL,
            .cq_entries = CQ_ENTRIES,
        };
        err = io_uring_queue_init_params(SQ_ENTRIES, ring, &p);
    }
    return err;
}

/* Sets up the buffer ring of NBUFS buffers, every one in it; 0 or -errno. */
static int bufs_init(void)
{
    size_t rsize = NBUFS * sizeof(struct io_uring_buf);
    U.br = mmap(NULL, rsize, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    /* MAP_POPULATE: the pool is resident from the start (see the top). */
    U.bufs = mmap(NULL, (size_t)NBUFS * BUF_SIZE, PROT_READ | PROT_WRITE,
                  MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
    if (U.br == MAP_FAILED || U.bufs == MAP_FAILED)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)U.br, .ring_entries = NBUFS, .bgid = BGID};
    int err = io_uring_register_buf_ring(&U.ring, &reg, 0);
    if (err < 0)
        return err;
    io_uring_buf_ring_init(U.br);
    for (int b = 0; b < NBUFS; b++)
        io_uring_buf_ring_add(U.br, U.bufs + (size_t)b * BUF_SIZE, BUF_SIZE, (unsigned short)b,
                              io_uring_buf_ring_mask(NBUFS), b);
    io_uring_buf_ring_advance(U.br, NBUFS);
    return 0;
}

const char *echo_raw_uring_skip(void)
{
    /* Multishot recv has no opcode of its own to probe for: the release
     * says (6.0, like provided-buffer rings' 5.19 before it). */
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2 ||
        major * 1000 + minor < 6000)
        return "needs Linux 6.0 (multishot recv)";
    struct io_uring ring;
    if (ring_init(&ring) < 0)
        return "io_uring cannot be set up here";
    io_uring_queue_exit(&ring);
    return NULL;
}

void echo_serve_raw_uring(int lfd)
{
    U.lfd = lfd;
    if (ring_init(&U.ring) < 0 || bufs_init() < 0)
        _exit(1);
    arm_accept();
    bench_server_ready();
    for (;;) {
        int r = io_uring_submit_and_wait(&U.ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            _exit(1);
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&U.ring, head, cqe)
        {
            uint64_t tag = io_uring_cqe_get_data64(cqe);
            ucon *c = (ucon *)(uintptr_t)(tag & ~(uint64_t)OP_MASK);
            switch (tag & OP_MASK) {
            case OP_ACCEPT:
                on_accept(cqe);
                break;
            case OP_RECV:
                on_recv(c, cqe);
                break;
            case OP_SEND:
                on_send(c, cqe);
                break;
            }
            n++;
        }
        io_uring_cq_advance(&U.ring, n);
        end_turn();
    }
}
#endif

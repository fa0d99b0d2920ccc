/*
 * uring/uring_io.c — completion-based I/O (kart/io.h) as io_uring requests.
 *
 * Every operation is an SQE whose user_data is the request (or, for a
 * socket's receive, the socket) with bit 63 set; the backend's wait hands
 * those completions to the loop, which calls the mode's complete op once per
 * turn. SQEs are only queued here: they reach the kernel in the io_uring_
 * enter the next wait makes anyway, so a turn that answers a hundred
 * sockets costs one system call (more only when the submission ring fills).
 *
 *  - accept: one multishot accept per listener, re-armed when the kernel
 *    ends it (a completion without IORING_CQE_F_MORE).
 *  - recv: one multishot recv per socket, the kernel picking buffers from a
 *    provided-buffer ring (group 0) filled from the loop's pool: a buffer
 *    id in the completion names the kart_buf lent to the callback, and a
 *    release puts it back in the ring with two stores, no system call.
 *    The kernel takes a ring's buffers in ring order, so every buffer that
 *    enters the ring is soon written and stays resident: the ring holds
 *    only br_fill of them (32 at first), the others wait on the pool's
 *    stack of free ids, untouched, and the fill grows to twice the
 *    buffers lent each time a receive finds the ring empty while the stack
 *    is not (one doubling per empty ring ran a 2,000-connection burst's
 *    fill up to the whole pool: every socket's -ENOBUFS of one batch
 *    doubled it). A server that
 *    holds thousands of mostly idle connections touches the buffers its
 *    busiest turn needs, not the whole pool (256 x 16 KiB in the echo
 *    server: a page of each, 1 MiB, became resident with 2,000 idle
 *    connections). When every buffer is lent the recv ends with -ENOBUFS;
 *    the socket then waits on the loop's starved list and is re-armed
 *    after the next release. The
 *    kernel bounds how much one multishot takes per wake-up, and every
 *    completion is handled in ring order, so one busy socket cannot starve
 *    the others.
 *  - send: one ring request per socket in flight, which takes the
 *    requests at the front of the socket's queue together: a plain send
 *    for one, an IORING_OP_SENDMSG with an iovec for several (up to 1024
 *    requests or 4 MiB; a shutdown goes alone). Completions are handed out
 *    in queue order, each request with its own length; a short send
 *    resubmits the rest before anything behind it goes, which is what
 *    keeps sends whole and in order (two sends in flight on one socket
 *    could interleave when the first is retried by the kernel). One at a
 *    time, 100,000 queued sends took 100,000 loop turns and enters; now a
 *    turn sends what the queue holds.
 *  - connect, read, write, shutdown, close: one request each.
 *  - timeouts: sends and shutdowns time out on loop timers (core/io.c),
 *    which cancel the gathered send they are part of; the others use an
 *    IORING_OP_LINK_TIMEOUT linked to the request, its
 *    timespec kept in the request (the kernel reads it at submission). The
 *    timeout's own completion is ignored (user_data 0); the request's
 *    -ECANCELED becomes -ETIMEDOUT unless the user asked for a cancel.
 *  - cancel: IORING_OP_ASYNC_CANCEL by user_data; whichever of the result
 *    and -ECANCELED the kernel posts is the one completion delivered.
 */
#include "deadline.h"
#include "fault.h"
#include "uring_private.h"
#include "uring_probe.h"

#include "io_private.h"

#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define BGID 0      /* the provided-buffer group of the loop's pool */
#define UDK_RECV 1u /* user_data kind: a socket's receive */
#define UDK_POLL 2u /* user_data kind: an accept's wait for readiness */
#define UDK_MASK 7u

static inline uring_state *state_of(kart_loop *loop)
{
    return loop->sel->backend_state;
}

static inline uint64_t ud_req(const kart_req *r)
{
    return KART__UD_OP | (uint64_t)(uintptr_t)r;
}

/* The user_data of what the kernel holds for r now. */
static inline uint64_t ud_held(const kart_req *r)
{
    return ud_req(r) | ((r->flags_ & KR_POLLWAIT) ? UDK_POLL : 0);
}

static inline uint64_t ud_recv(const kart_sock *s)
{
    return KART__UD_OP | (uint64_t)(uintptr_t)s | UDK_RECV;
}

static void stats(kart_selector *sel, kart_io_stats *out)
{
    uring_state *st = sel->backend_state;
    out->enters = st->enters;
    out->cq_overflows = st->overflows;
    out->cq_dropped = st->ring.cq.koverflow ? *st->ring.cq.koverflow : 0;
}

/* ---- the provided-buffer ring ---- */

/* The fill a new ring starts with: enough for a few dozen sockets' data in
 * one turn; a busier loop grows it at its first empty ring. */
#define BR_FILL_START 32u
/* With incremental consumption (uring_pbuf.c) a buffer serves receives
 * until it is full, so a few hold a turn of small messages, and the
 * kernel touches a buffer behind the head only once the head is full: a
 * small fill, grown as the other's. */
#define BR_FILL_START_INC 4u

/* Buffers in the ring (or taken by the kernel and not yet reaped): those
 * neither lent nor on the stack. With incremental consumption, lent
 * counts slices: the ring's count is kept instead. */
static inline uint32_t br_held(const kart__bufpool *p)
{
    if (p->ext)
        return ((const kart__pbuf *)p->ext)->in_ring;
    return p->count - p->lent - p->nfree;
}

/* Buffers out of both the ring and the stack: lent whole, or (with
 * incremental consumption) filled by the kernel with slices still lent. */
static inline uint32_t br_taken(const kart__bufpool *p)
{
    if (p->ext)
        return p->count - br_held(p) - p->nfree;
    return p->lent;
}

/* Moves buffers from the stack into the ring until it holds the fill. */
static void br_top_up(kart__bufpool *p, uint32_t fill)
{
    int mask = io_uring_buf_ring_mask(p->count), n = 0;
    for (uint32_t held = br_held(p); held < fill && p->nfree > 0; held++, n++) {
        uint32_t id = p->free[--p->nfree];
        io_uring_buf_ring_add(p->br, p->bufs[id].base, p->size, (unsigned short)id, mask, n);
    }
    if (n > 0) {
        io_uring_buf_ring_advance(p->br, n);
        if (p->ext)
            ((kart__pbuf *)p->ext)->in_ring += (uint32_t)n;
    }
}

static int pool_register(kart__bufpool *p)
{
    uring_state *st = state_of(p->loop);
    p->brsz = (size_t)p->count * sizeof(struct io_uring_buf);
    void *br =
        kart__sys_mmap(NULL, p->brsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = p->count, .bgid = BGID};
    /* Incremental consumption where the kernel has it (uring_pbuf.c):
     * the flags field is `pad` in the 6.1 headers. */
    bool inc = kart__ur_has(KART__UR_PBUF_INC);
    if (inc) {
        int e = kart__pbuf_init(p);
        if (e < 0) {
            kart__sys_munmap(br, p->brsz);
            return e;
        }
        reg.pad = IOU_PBUF_RING_INC;
    }
    int err = kart__sys_io_uring_register_buf_ring(&st->ring, &reg, 0);
    if (err < 0) {
        if (p->ext_free)
            p->ext_free(p);
        kart__sys_munmap(br, p->brsz);
        return err;
    }
    p->br = br;
    io_uring_buf_ring_init(br);
    /* The ring has an entry for every buffer, so a fill grown to the whole
     * pool fits; the stack hands out low ids first. */
    uint32_t start = inc ? BR_FILL_START_INC : BR_FILL_START;
    st->br_fill = p->count < start ? p->count : start;
    br_top_up(p, st->br_fill);
    p->registered = true;
    return 0;
}

static void pool_unregister(kart__bufpool *p)
{
    io_uring_unregister_buf_ring(&state_of(p->loop)->ring, BGID);
    kart__sys_munmap(p->br, p->brsz);
    p->br = NULL;
    p->registered = false;
}

/* A released buffer goes back to the ring while the ring is below its
 * fill, else onto the stack (core/io.c has taken it off lent already). A
 * released slice frees its buffer only when it was the last one out and
 * the kernel is done with the buffer. */
static bool buf_return(kart__bufpool *p, kart_buf *b)
{
    if (b->flags_ & KB_SLICE) {
        if (!kart__pbuf_release(p, b))
            return false;
        b = &p->bufs[b->id_];
    }
    /* (br_held counts a whole buffer lent as held: it is neither lent,
     * core/io.c took it off, nor on the stack; a retired buffer is not.) */
    uint32_t held = p->ext ? br_held(p) : br_held(p) - 1;
    if (held < state_of(p->loop)->br_fill) {
        io_uring_buf_ring_add(p->br, b->base, p->size, (unsigned short)b->id_,
                              io_uring_buf_ring_mask(p->count), 0);
        io_uring_buf_ring_advance(p->br, 1);
        if (p->ext)
            ((kart__pbuf *)p->ext)->in_ring++;
    } else {
        p->free[p->nfree++] = b->id_;
    }
    return true;
}

/* The kernel found the ring empty while buffers waited on the stack: the
 * fill grows to twice what is lent (up to the pool; never shrinks, since
 * what was touched stays resident), and the ring is topped up to it. */
static void br_grow(kart__bufpool *p)
{
    uring_state *st = state_of(p->loop);
    if (p->nfree == 0)
        return;
    uint32_t want = 2 * br_taken(p);
    if (want > st->br_fill)
        st->br_fill = want < p->count ? want : p->count;
    br_top_up(p, st->br_fill);
}

/* ---- starting ---- */

/* The request's SQE, with room for its linked timeout behind it. */
static struct io_uring_sqe *req_sqe(uring_state *st, kart_req *r, int *err)
{
    int e = kart__ur_reserve(st, r->deadline_ >= 0 ? 2 : 1);
    if (e < 0) {
        *err = e;
        return NULL;
    }
    return io_uring_get_sqe(&st->ring);
}

/* Tags the SQE as r's and links its timeout. */
static void req_tag(uring_state *st, struct io_uring_sqe *sqe, kart_req *r)
{
    io_uring_sqe_set_data64(sqe, ud_req(r));
    r->flags_ |= KR_INFLIGHT;
    if (r->deadline_ < 0)
        return;
    sqe->flags |= IOSQE_IO_LINK;
    int64_t left = r->deadline_ - kart_now_ns();
    if (left < 1)
        left = 1;
    struct timespec ts = kart__timespec(left);
    r->t_.ts_[0] = ts.tv_sec;
    r->t_.ts_[1] = ts.tv_nsec;
    struct io_uring_sqe *t = io_uring_get_sqe(&st->ring);
    io_uring_prep_link_timeout(t, (struct __kernel_timespec *)(void *)r->t_.ts_, 0);
    io_uring_sqe_set_data64(t, 0);
}

static int start_accept(kart_req *r)
{
    uring_state *st = state_of(r->loop);
    int err = -EBUSY;
    struct io_uring_sqe *sqe = kart__ur_sqe(st, &err);
    if (!sqe)
        return err;
    io_uring_prep_multishot_accept(sqe, r->fd_, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud_req(r));
    r->flags_ |= KR_INFLIGHT;
    return 0;
}

/* At the descriptor limit io_uring's accept fails at once even with an
 * empty backlog (it takes the descriptor before it looks), so re-arming it
 * would spin: wait for a connection with a one-shot poll instead, and
 * accept again (or drain again) when one comes. */
static int accept_poll(kart_req *r)
{
    uring_state *st = state_of(r->loop);
    int err = -EBUSY;
    struct io_uring_sqe *sqe = kart__ur_sqe(st, &err);
    if (!sqe)
        return err;
    io_uring_prep_poll_add(sqe, r->fd_, POLLIN);
    io_uring_sqe_set_data64(sqe, ud_req(r) | UDK_POLL);
    r->flags_ |= KR_INFLIGHT | KR_POLLWAIT;
    return 0;
}

static int start_connect(kart_req *r, const struct sockaddr *addr, socklen_t len)
{
    uring_state *st = state_of(r->loop);
    int err = -EBUSY;
    struct io_uring_sqe *sqe = req_sqe(st, r, &err);
    if (!sqe)
        return err;
    io_uring_prep_connect(sqe, r->fd_, addr, len);
    req_tag(st, sqe, r);
    return 0;
}

static int start_file(kart_req *r)
{
    uring_state *st = state_of(r->loop);
    int err = -EBUSY;
    struct io_uring_sqe *sqe = req_sqe(st, r, &err);
    if (!sqe)
        return err;
    /* An offset of -1 (all ones) reads or writes at the file position. */
    if (r->type == KART_REQ_READ)
        io_uring_prep_read(sqe, r->fd_, (void *)r->buf_, (unsigned)r->len_, (uint64_t)r->off_);
    else
        io_uring_prep_write(sqe, r->fd_, r->buf_, (unsigned)r->len_, (uint64_t)r->off_);
    req_tag(st, sqe, r);
    return 0;
}

static int recv_arm(kart_sock *s)
{
    uring_state *st = state_of(s->base.loop);
    int err = -EBUSY;
    struct io_uring_sqe *sqe = kart__ur_sqe(st, &err);
    if (!sqe)
        return err;
    io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, ud_recv(s));
    s->flags_ |= KS_RECV_INFLIGHT;
    s->flags_ &= ~KS_RECV_CANCEL;
    s->nops_++;
    s->base.loop->io->nrecv_held++;
    return 0;
}

static int cancel_ud(uring_state *st, uint64_t ud)
{
    int err = -EBUSY;
    struct io_uring_sqe *sqe = kart__ur_sqe(st, &err);
    if (!sqe)
        return err;
    io_uring_prep_cancel64(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, 0);
    return 0;
}

static void recv_cancel(kart_sock *s)
{
    if ((s->flags_ & (KS_RECV_INFLIGHT | KS_RECV_CANCEL)) != KS_RECV_INFLIGHT)
        return;
    /* Should the ring refuse the cancel, the multishot runs on and what it
     * brings is stashed until the next start (or dropped by a close). */
    if (cancel_ud(state_of(s->base.loop), ud_recv(s)) == 0)
        s->flags_ |= KS_RECV_CANCEL;
}

/* ---- sends ---- */

/* What a request's -ECANCELED means: its linked timeout fired unless the
 * user (or a close) cancelled it. */
static int cancel_result(const kart_req *r, int res)
{
    if (res == -ECANCELED && !(r->flags_ & KR_CANCEL) && r->deadline_ >= 0)
        return -ETIMEDOUT;
    return res;
}


#define SENDV_MAX 1024         /* requests in one gathered send (IOV_MAX) */
#define SENDV_BYTES (4u << 20) /* bytes in one: more would not fit a socket */

static const uint32_t sendv_caps[KART__SENDV_CLASSES] = {8, 64, SENDV_MAX};

/* An iovec block for n requests, from the loop's free lists; NULL when
 * none can be allocated (the head then goes out alone). */
static kart__sendv *sendv_get(kart__io *io, uint32_t n)
{
    uint8_t c = 0;
    while (sendv_caps[c] < n)
        c++;
    kart__sendv *v = io->sendv_free[c];
    if (v) {
        io->sendv_free[c] = v->next;
        return v;
    }
    v = malloc(sizeof(*v) + sendv_caps[c] * sizeof(struct iovec));
    if (!v)
        return NULL;
    v->cap = sendv_caps[c];
    v->cls = c;
    v->all = io->sendv_all;
    io->sendv_all = v;
    return v;
}

static void sendv_put(kart__io *io, kart__sendv *v)
{
    v->next = io->sendv_free[v->cls];
    io->sendv_free[v->cls] = v;
}

/* The block a gathered send's head holds while in flight: in its off_,
 * which a send does not use otherwise (a shutdown's how lives there). */
static kart__sendv *sendv_of(const kart_req *h)
{
    return h->type == KART_REQ_SEND ? (kart__sendv *)(uintptr_t)h->off_ : NULL;
}

/* How many requests at the front of the queue go out together: sends
 * only, up to SENDV_MAX of them and SENDV_BYTES. */
static uint32_t gather_count(const kart_sock *s)
{
    uint32_t n = 0;
    size_t bytes = 0;
    for (const kart_req *r = s->sendq_; r && r->type == KART_REQ_SEND && n < SENDV_MAX;
         r = r->next_) {
        if (n > 0 && bytes + (r->len_ - r->done_) > SENDV_BYTES)
            break;
        bytes += r->len_ - r->done_;
        n++;
    }
    return n;
}

/* Submits what the front of the send queue holds, unless a send is in
 * flight already. A request the ring cannot take fails, and the next one
 * is tried. */
static void send_kick(kart_sock *s)
{
    uring_state *st = state_of(s->base.loop);
    kart__io *io = s->base.loop->io;
    while (s->sendq_ && !(s->flags_ & (KS_SEND_INFLIGHT | KS_CLOSING))) {
        kart_req *r = s->sendq_;
        /* A head whose time ran out while it waited (its timer has not run
         * yet: completions come first in a turn) must not go out now. */
        if (r->deadline_ >= 0 && r->done_ < r->len_ && kart_now_ns() >= r->deadline_) {
            kart__sendq_pop(s);
            kart__req_defer(r, (r->flags_ & KR_CANCEL) ? -ECANCELED : -ETIMEDOUT);
            continue;
        }
        int err = -EBUSY;
        struct io_uring_sqe *sqe = kart__ur_sqe(st, &err);
        if (!sqe) {
            kart__sendq_pop(s);
            kart__req_defer(r, err);
            continue;
        }
        uint32_t n = r->type == KART_REQ_SEND ? gather_count(s) : 1;
        kart__sendv *v = n > 1 ? sendv_get(io, n) : NULL;
        if (r->type == KART_REQ_SHUTDOWN) {
            io_uring_prep_shutdown(sqe, s->fd, (int)r->off_);
        } else if (!v) {
            r->off_ = 0;
            io_uring_prep_send(sqe, s->fd, r->buf_ ? (const char *)r->buf_ + r->done_ : NULL,
                               r->len_ - r->done_, MSG_NOSIGNAL);
        } else {
            kart_req *q = r;
            for (uint32_t k = 0; k < n; k++, q = q->next_) {
                v->iov[k].iov_base = q->buf_ ? (char *)q->buf_ + q->done_ : NULL;
                v->iov[k].iov_len = q->len_ - q->done_;
                q->flags_ |= KR_INFLIGHT;
            }
            v->n = n;
            v->msg = (struct msghdr){.msg_iov = v->iov, .msg_iovlen = n};
            r->off_ = (int64_t)(uintptr_t)v;
            io_uring_prep_sendmsg(sqe, s->fd, &v->msg, MSG_NOSIGNAL);
        }
        io_uring_sqe_set_data64(sqe, ud_req(r));
        r->flags_ |= KR_INFLIGHT;
        s->flags_ |= KS_SEND_INFLIGHT;
    }
}

/* The mode's send_kick: a request came to an idle send queue. Its send
 * starts at the turn's end (turn_end), not now: the ring is entered only
 * then, so nothing is lost by waiting, and what else the turn's callbacks
 * queue on the socket goes out with it in one gathered send (a receive
 * that a buffer boundary split in two completions is echoed by one send,
 * not two). Without memory for the list, at once. */
static void send_defer(kart_sock *s)
{
    uring_state *st = state_of(s->base.loop);
    if (s->flags_ & KS_KICK)
        return;
    if (st->nkicks == st->kicks_cap) {
        uint32_t cap = st->kicks_cap ? 2 * st->kicks_cap : 64;
        kart_sock **k = realloc(st->kicks, cap * sizeof(*k));
        if (!k) {
            send_kick(s);
            return;
        }
        st->kicks = k;
        st->kicks_cap = cap;
    }
    st->kicks[st->nkicks++] = s;
    s->events_ = st->nkicks;
    s->flags_ |= KS_KICK;
}

/* A socket leaves the kick list (it is being closed: its memory may be
 * freed before the turn ends). */
static void kick_drop(kart_sock *s)
{
    if (!(s->flags_ & KS_KICK))
        return;
    state_of(s->base.loop)->kicks[s->events_ - 1] = NULL;
    s->events_ = 0;
    s->flags_ &= ~KS_KICK;
}

static void turn_end(kart_loop *loop)
{
    uring_state *st = state_of(loop);
    /* send_kick runs no callback (failures are deferred), so the list
     * cannot grow while it is walked. */
    for (uint32_t i = 0; i < st->nkicks; i++) {
        kart_sock *s = st->kicks[i];
        if (!s)
            continue;
        s->events_ = 0;
        s->flags_ &= ~KS_KICK;
        send_kick(s);
    }
    st->nkicks = 0;
}

/* Takes r out of the send queue, wherever it is (prev: the one before). */
static void sendq_unlink(kart_sock *s, kart_req *prev, kart_req *r)
{
    if (prev)
        prev->next_ = r->next_;
    else
        s->sendq_ = r->next_;
    if (s->sendq_tail_ == r)
        s->sendq_tail_ = prev;
    r->next_ = NULL;
}

/* The requests a send's completion ends, with their results (res_), in
 * queue order; their callbacks run once the queue is consistent again. */
static void finish_list(kart_req *done)
{
    while (done) {
        kart_req *next = done->next_;
        done->next_ = NULL;
        kart__req_finish(done, done->res_);
        done = next;
    }
}

/* A request that was cancelled, timed out or closed: its error. */
static int ended_result(const kart_req *r, bool closing)
{
    if (closing || (r->flags_ & KR_CANCEL))
        return -ECANCELED;
    return -ETIMEDOUT;
}

/* The completion of the send in flight, whose head is h: n requests
 * (1 for a plain send or a shutdown) took res bytes, or failed. */
static void on_send(kart_req *h, int res)
{
    kart_sock *s = h->sock;
    kart__sendv *v = sendv_of(h);
    uint32_t n = v ? v->n : 1;
    if (v) {
        sendv_put(s->base.loop->io, v);
        h->off_ = 0;
    }
    s->flags_ &= ~KS_SEND_INFLIGHT;
    bool closing = s->flags_ & KS_CLOSING;
    if (h->type == KART_REQ_SHUTDOWN) {
        h->flags_ &= ~KR_INFLIGHT;
        kart__sendq_pop(s);
        kart__req_finish(h, cancel_result(h, res));
        send_kick(s);
        return;
    }
    /* A cancel or an interruption sent nothing: the requests that asked
     * for it end, the others go again. Any other error ends them all
     * (what reached the peer is unknown: the socket must be closed). */
    bool retry = res == -ECANCELED || res == -EINTR || res == -EAGAIN;
    size_t left = res > 0 ? (size_t)res : 0;
    int64_t now = 0;
    kart_req *done = NULL, **tail = &done, *prev = NULL, *r = s->sendq_;
    for (uint32_t k = 0; k < n && r; k++) {
        kart_req *next = r->next_;

        r->flags_ &= ~KR_INFLIGHT;
        bool end = true;
        int out = res;
        if (res >= 0) {
            size_t want = r->len_ - r->done_, take = left < want ? left : want;
            r->done_ += take;
            left -= take;
            /* (A zero-length send behind one still unfinished waits.) */
            if (r->done_ >= r->len_ && !prev) {
                out = (int)r->len_;
            } else if (closing || (r->flags_ & (KR_CANCEL | KR_TIMEDOUT))) {
                out = ended_result(r, closing);
            } else {
                if (r->deadline_ >= 0 && !now)
                    now = kart_now_ns();
                end = r->deadline_ >= 0 && now >= r->deadline_;
                out = -ETIMEDOUT;
            }
        } else if (retry) {
            end = closing || (r->flags_ & (KR_CANCEL | KR_TIMEDOUT));
            out = ended_result(r, closing);
        }
        if (end) {
            sendq_unlink(s, prev, r);
            r->res_ = out;
            *tail = r;
            tail = &r->next_;
        } else {
            prev = r;
        }
        r = next;
    }
    s->flags_ &= ~KS_SEND_WAIT;
    finish_list(done);
    send_kick(s);
}

static int cancel(kart_req *r)
{
    kart_sock *s = r->sock;
    if (r->flags_ & KR_BACKOFF) {
        /* A paused accept: nothing in the kernel, the timer stops. */
        s->accept_ = NULL;
        kart__req_defer(r, -ECANCELED);
        return 0;
    }
    if (!(r->flags_ & KR_INFLIGHT)) {
        /* Waiting in the send queue behind the head. */
        kart_req **p = &s->sendq_, *prev = NULL;
        while (*p && *p != r) {
            prev = *p;
            p = &(*p)->next_;
        }
        if (*p) {
            *p = r->next_;
            if (s->sendq_tail_ == r)
                s->sendq_tail_ = prev;
            r->next_ = NULL;
            bool timed = (r->flags_ & KR_TIMEDOUT) && !(r->flags_ & KR_CANCEL);
            kart__req_defer(r, timed ? -ETIMEDOUT : -ECANCELED);
        }
        return 0;
    }
    /* A send in flight is part of the send its queue's head carries. */
    bool sending = r->type == KART_REQ_SEND || r->type == KART_REQ_SHUTDOWN;
    int err = cancel_ud(state_of(r->loop), sending ? ud_req(s->sendq_) : ud_held(r));
    if (err < 0)
        r->flags_ &= ~KR_CANCEL;
    return err;
}

static int close_sock(kart_sock *s)
{
    uring_state *st = state_of(s->base.loop);
    kart_req *a = s->accept_;
    kick_drop(s);
    if (a && (a->flags_ & KR_BACKOFF)) {
        s->accept_ = NULL;
        kart__req_defer(a, -ECANCELED);
    } else if (a && (a->flags_ & KR_INFLIGHT)) {
        a->flags_ |= KR_CANCEL;
        cancel_ud(st, ud_held(a));
    }
    if (s->connect_ && (s->connect_->flags_ & KR_INFLIGHT)) {
        s->connect_->flags_ |= KR_CANCEL;
        cancel_ud(st, ud_req(s->connect_));
    }
    /* The front of the queue may be in flight (one send, gathered or
     * not): it is cancelled and ends when its completion comes. What waits
     * behind it never went out. */
    kart_req *h = s->sendq_, *last = NULL;
    if (h && (h->flags_ & KR_INFLIGHT))
        cancel_ud(st, ud_req(h));
    while (h && (h->flags_ & KR_INFLIGHT)) {
        h->flags_ |= KR_CANCEL;
        last = h;
        h = h->next_;
    }
    if (last) {
        last->next_ = NULL;
        s->sendq_tail_ = last;
    } else {
        s->sendq_ = s->sendq_tail_ = NULL;
    }
    while (h) {
        kart_req *next = h->next_;
        h->next_ = NULL;
        kart__req_defer(h, -ECANCELED);
        h = next;
    }
    recv_cancel(s);
    int err = -EBUSY;
    struct io_uring_sqe *sqe = kart__ur_sqe(st, &err);
    if (!sqe)
        return err;
    io_uring_prep_close(sqe, s->fd);
    io_uring_sqe_set_data64(sqe, ud_req(s->close_));
    s->close_->flags_ |= KR_INFLIGHT;
    return 0;
}

/* ---- completions ---- */

static void rearm_accept(kart_req *r)
{
    kart_sock *l = r->sock;
    if ((r->flags_ & KR_CANCEL) || (l->flags_ & KS_CLOSING)) {
        l->accept_ = NULL;
        kart__req_finish(r, -ECANCELED);
        return;
    }
    r->loop->io->stats.rearms++;
    int err = start_accept(r);
    if (err < 0) {
        l->accept_ = NULL;
        kart__req_finish(r, err);
    }
}

static void on_accept(kart_req *r, int res, bool more)
{
    kart_sock *l = r->sock;
    if (!more)
        r->flags_ &= ~KR_INFLIGHT;
    if (res >= 0) {
        r->off_ = 0; /* the back-off delay starts afresh */
        /* After a cancel or a close nobody expects a connection: it is
         * closed, as the kernel would had the cancel come first. */
        if ((r->flags_ & KR_CANCEL) || (l->flags_ & KS_CLOSING))
            close(res);
        else
            r->cb_(r, res);
        if (!more && r->state_ == KR_PENDING && !(r->flags_ & KR_INFLIGHT))
            rearm_accept(r);
        return;
    }
    if (more)
        return; /* the multishot goes on */
    switch (res) {
    case -ECANCELED:
        if ((r->flags_ & KR_CANCEL) || (l->flags_ & KS_CLOSING)) {
            l->accept_ = NULL;
            kart__req_finish(r, -ECANCELED);
            return;
        }
        rearm_accept(r); /* not ours: the kernel's (a thread's exit) */
        return;
    case -EINTR:
    case -EAGAIN:
    case -ECONNABORTED:
    case -EPROTO:
    case -EPERM:
        rearm_accept(r);
        return;
    case -EMFILE:
    case -ENFILE:
        if ((r->flags_ & KR_CANCEL) || (l->flags_ & KS_CLOSING)) {
            rearm_accept(r);
        } else if (!kart__accept_fd_limit(r)) {
            int err = accept_poll(r);
            if (err < 0) {
                l->accept_ = NULL;
                kart__req_finish(r, err);
            }
        }
        return;
    case -ENOBUFS:
    case -ENOMEM:
        if ((r->flags_ & KR_CANCEL) || (l->flags_ & KS_CLOSING))
            rearm_accept(r);
        else
            kart__accept_backoff(r);
        return;
    default:
        l->accept_ = NULL;
        kart__req_finish(r, res);
    }
}

/* A completion of res bytes with incremental consumption: its slice of
 * the buffer is lent (uring_pbuf.c). A buffer the kernel has moved past
 * leaves the ring, which is topped up. When no slice can be allocated the
 * bytes are lost: the receive ends with -ENOMEM, and the multishot is
 * cancelled. */
static void recv_slice(kart_sock *s, int res, uint32_t flags, bool closing)
{
    kart_loop *loop = s->base.loop;
    kart__bufpool *pool = loop->io->pool;
    uint32_t id = flags >> IORING_CQE_BUFFER_SHIFT;
    bool more = flags & IORING_CQE_F_BUF_MORE, retired;
    kart_buf *b = kart__pbuf_take(pool, id, (uint32_t)res, more, &retired);
    if (retired)
        buf_return(pool, &pool->bufs[id]);
    if (!more)
        br_top_up(pool, state_of(loop)->br_fill);
    if (!b) {
        if (!closing) {
            kart__recv_end(s, -ENOMEM);
            recv_cancel(s);
        }
        return;
    }
    if (closing)
        kart_buf_release(b);
    else
        kart__recv_deliver(s, res, b);
}

static void on_recv(kart_sock *s, int res, uint32_t flags)
{
    kart_loop *loop = s->base.loop;
    bool more = flags & IORING_CQE_F_MORE;
    if (!more) {
        s->flags_ &= ~(KS_RECV_INFLIGHT | KS_RECV_CANCEL);
        s->nops_--;
        loop->io->nrecv_held--;
    }
    bool closing = s->flags_ & KS_CLOSING;
    if (res > 0 && loop->io->pool->ext) {
        recv_slice(s, res, flags, closing);
    } else if (res > 0) {
        kart__bufpool *pool = loop->io->pool;
        kart_buf *b = &pool->bufs[flags >> IORING_CQE_BUFFER_SHIFT];
        b->flags_ = KB_LENT;
        pool->lent++;
        br_top_up(pool, state_of(loop)->br_fill); /* the kernel took b from the ring */
        if (closing)
            kart_buf_release(b);
        else
            kart__recv_deliver(s, res, b);
    } else if (res == 0) {
        if (!closing)
            kart__recv_end(s, 0);
    } else if (res == -ENOBUFS) {
        if (!more && (s->flags_ & KS_RECV) && !closing) {
            kart__bufpool *pool = loop->io->pool;
            /* nothing to put in the ring until a release */
            if (pool->ext ? br_held(pool) == 0 && pool->nfree == 0 : pool->lent == pool->count) {
                kart__sock_starve(s);
                return;
            }
            br_grow(pool);
            loop->io->stats.enobufs++;
        }
    } else if (res != -ECANCELED) {
        if (!closing)
            kart__recv_end(s, res);
    }
    if (closing) {
        kart__sock_maybe_closed(s);
        return;
    }
    /* The kernel ended the multishot (a full CQ, a cancel we no longer
     * want, ENOBUFS with buffers back): arm a new one if still receiving. */
    if (!more && res != 0 && (s->flags_ & (KS_RECV | KS_RECV_INFLIGHT)) == KS_RECV) {
        loop->io->stats.rearms++;
        int err = recv_arm(s);
        if (err < 0)
            kart__recv_end(s, err);
    }
}

static void complete(kart_loop *loop)
{
    uring_state *st = state_of(loop);
    /* Callbacks never wait, so no new completions join while this runs. */
    for (int i = 0; i < st->ncqes; i++) {
        kart__cqe c = st->cqes[i];
        uintptr_t p = (uintptr_t)(c.ud & ~(KART__UD_OP | UDK_MASK));
        if ((c.ud & UDK_MASK) == UDK_RECV) {
            on_recv((kart_sock *)p, c.res, c.flags);
            continue;
        }
        kart_req *r = (kart_req *)p;
        if ((c.ud & UDK_MASK) == UDK_POLL) {
            /* The listener is readable (or the wait was cancelled). */
            r->flags_ &= ~(KR_INFLIGHT | KR_POLLWAIT);
            rearm_accept(r);
            continue;
        }
        switch (r->type) {
        case KART_REQ_ACCEPT:
            on_accept(r, c.res, c.flags & IORING_CQE_F_MORE);
            break;
        case KART_REQ_SEND:
        case KART_REQ_SHUTDOWN:
            on_send(r, c.res);
            break;
        case KART_REQ_CLOSE: {
            kart_sock *s = r->sock;
            r->flags_ &= ~KR_INFLIGHT;
            r->res_ = c.res;
            s->flags_ |= KS_CLOSE_DONE;
            kart__sock_maybe_closed(s);
            break;
        }
        case KART_REQ_CONNECT:
            r->flags_ &= ~KR_INFLIGHT;
            r->sock->connect_ = NULL;
            kart__req_finish(r, cancel_result(r, c.res));
            break;
        default:
            r->flags_ &= ~KR_INFLIGHT;
            kart__req_finish(r, cancel_result(r, c.res));
            break;
        }
    }
    st->ncqes = 0;
}

/* A receive is armed again unless io_uring still holds the multishot (a
 * stopped one whose cancel is on the way is re-armed when its last
 * completion comes). */
static int recv_rearm(kart_sock *s)
{
    return (s->flags_ & KS_RECV_INFLIGHT) ? 0 : recv_arm(s);
}

const kart__io_mode kart__uring_io_mode = {
    .name = "uring",
    .native = true,
    .accept = start_accept,
    .connect = start_connect,
    .recv_arm = recv_rearm,
    .recv_stop = recv_cancel,
    .send_kick = send_defer,
    .turn_end = turn_end,
    .file = start_file,
    .close = close_sock,
    .cancel = cancel,
    .complete = complete,
    .pool_register = pool_register,
    .pool_unregister = pool_unregister,
    .buf_return = buf_return,
    .stats = stats,
};

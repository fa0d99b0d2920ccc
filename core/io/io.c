/*
 * core/io.c — the front end of completion-based I/O (kart/io.h).
 *
 * Every start is validated and booked here, then handed to the loop's
 * completion mode through its kart__io_mode table (io_private.h): native
 * io_uring requests (uring/uring_io.c), which the io_uring backend offers
 * when the kernel has multishot receive (6.0), or the emulation over
 * readiness (compat/io_emul.c) everywhere else. This file never names
 * either. Whatever the mode, the
 * final callback of every request is delivered by this file, either at
 * once from the loop's dispatch (kart__req_finish) or through the loop's
 * delivery queue (kart__req_defer) when the result is known inside a start
 * call or a cancel, where running a callback would break the rule that
 * callbacks only run from kart_loop_run(). The queue is a list threaded
 * through the requests themselves, so nothing is allocated per operation.
 *
 * A socket's close callback is the last word about it: it is queued only
 * once the close itself is done and no operation of the socket is still
 * held by the kernel (nops_), because the user frees the socket there.
 */
#include "compiler.h"
#include "deadline.h"
#include "debug.h"
#include "fault.h"
#include "io_private.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The default pool: 512 buffers on the emulation, whose free buffers are
 * a stack (only the peak in use is ever touched); 256 on io_uring, which
 * hands buffers out in ring order, so that every buffer in the ring cycles
 * through the caches (the ring holds part of the pool, its fill, since
 * 2026-12-07: uring_io.c); with the whole pool in the ring, 512 x 16 KiB
 * (8 MiB) cost a fifth of the
 * 16 KiB echo's throughput against 128 or 256, and 256 is the smallest
 * that 10,000 busy echo connections never ran dry (docs/io.md). */
#define POOL_COUNT_DEFAULT 512
#define POOL_COUNT_DEFAULT_URING 256
#define POOL_SIZE_DEFAULT 16384
#define POOL_COUNT_MAX 32768
#define POOL_SIZE_MAX (16u << 20)

static void drain_abort(kart_req *req, int res);
static void drain_check(kart_sock *sock);

const kart__io_mode *kart__io_mode_for(kart_selector *sel)
{
    const kart__io_mode *mode = sel->ops->io_mode ? sel->ops->io_mode(sel) : NULL;
    return mode ? mode : &kart__io_emulated;
}

kart__io *kart__io_get(kart_loop *loop)
{
    if (loop->io)
        return loop->io;
    kart__io *io = calloc(1, sizeof(*io));
    if (!io)
        return NULL;
    io->reserve_fd = -1;
    io->pool_count = POOL_COUNT_DEFAULT;
    io->pool_size = POOL_SIZE_DEFAULT;
    io->mode = kart__io_mode_for(loop->sel);
    io->native = io->mode->native;
    if (io->native)
        io->pool_count = POOL_COUNT_DEFAULT_URING;
    io->stats.native = io->native;
    loop->io = io;
    return io;
}

/* ---- the buffer pool ---- */

static void pool_free(kart__bufpool *pool)
{
    if (!pool)
        return;
    if (pool->registered)
        pool->loop->io->mode->pool_unregister(pool);
    if (pool->ext_free)
        pool->ext_free(pool);
    if (pool->mem)
        kart__sys_munmap(pool->mem, pool->memsz);
    free(pool->bufs);
    free(pool->sends);
    free(pool->free);
    free(pool);
}

static int pool_create(kart_loop *loop, uint32_t count, uint32_t size, kart__bufpool **out)
{
    kart__bufpool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    pool->loop = loop;
    pool->count = count;
    pool->size = size;
    pool->memsz = (size_t)count * size;
    /* mmap: page-aligned, and untouched pages cost nothing until used. */
    pool->mem = kart__sys_mmap(NULL, pool->memsz, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pool->mem == MAP_FAILED) {
        pool->mem = NULL;
        pool_free(pool);
        return -ENOMEM;
    }
    pool->bufs = calloc(count, sizeof(*pool->bufs));
    pool->sends = calloc(count, sizeof(*pool->sends));
    pool->free = malloc(count * sizeof(*pool->free));
    if (!pool->bufs || !pool->sends || !pool->free) {
        pool_free(pool);
        return -ENOMEM;
    }
    /* The stack hands out low ids first, so a lightly used pool keeps
     * touching the same few pages. */
    for (uint32_t i = 0; i < count; i++) {
        pool->bufs[i] =
            (kart_buf){.base = pool->mem + (size_t)i * size, .size = size, .id_ = i, .pool_ = pool};
        pool->free[i] = count - 1 - i;
    }
    pool->nfree = count;
    int err = 0;
    if (loop->io->mode->pool_register)
        err = loop->io->mode->pool_register(pool);
    if (err < 0) {
        pool_free(pool);
        return err;
    }
    *out = pool;
    return 0;
}

int kart__pool_ready(kart_loop *loop)
{
    kart__io *io = loop->io;
    if (io->pool)
        return 0;
    return pool_create(loop, io->pool_count, io->pool_size, &io->pool);
}

kart_buf *kart__pool_take(kart__bufpool *pool)
{
    if (pool->nfree == 0)
        return NULL;
    kart_buf *b = &pool->bufs[pool->free[--pool->nfree]];
    b->flags_ = KB_LENT;
    pool->lent++;
    return b;
}

/* A receive the user runs, or one io_uring still holds after a stop (its
 * completions name buffers of the current pool). */
static bool any_receive(const kart_loop *loop)
{
    return loop->io && (loop->io->nrecv > 0 || loop->io->nrecv_held > 0);
}

KART_API int kart_loop_set_bufpool(kart_loop *loop, uint32_t count, uint32_t size)
{
    if (!loop || count == 0 || count > POOL_COUNT_MAX || (count & (count - 1)) || size == 0 ||
        size > POOL_SIZE_MAX || size % 64)
        return -EINVAL;
    kart__io *io = kart__io_get(loop);
    if (!io)
        return -ENOMEM;
    if (any_receive(loop) || (io->pool && io->pool->lent))
        return -EBUSY;
    /* io_uring has one buffer group: the old ring goes before the new one
     * is registered. After a failure the next receive creates a pool of the
     * old size again. */
    if (io->native) {
        pool_free(io->pool);
        io->pool = NULL;
    }
    kart__bufpool *pool;
    int err = pool_create(loop, count, size, &pool);
    if (err < 0)
        return err;
    pool_free(io->pool);
    io->pool = pool;
    io->pool_count = count;
    io->pool_size = size;
    return 0;
}

KART_API void kart_buf_release(kart_buf *buf)
{
    if (!buf || !(buf->flags_ & KB_LENT))
        return;
    kart__bufpool *pool = buf->pool_;
    buf->flags_ &= ~KB_LENT; /* KB_SLICE stays: buf_return tells slices apart */
    pool->lent--;
    if (!pool->registered)
        pool->free[pool->nfree++] = buf->id_;
    else if (!pool->loop->io->mode->buf_return(pool, buf))
        return; /* a slice whose buffer is not free yet: no starved wakes */
    /* Receives that starved wait for this: they are re-armed by the loop,
     * not here, so that a release never runs a callback. */
    kart__io *io = pool->loop->io;
    while (io->starved) {
        kart_sock *s = io->starved;
        io->starved = s->next_;
        s->flags_ &= ~KS_STARVED;
        s->next_ = io->resume;
        io->resume = s;
    }
}

/* ---- delivery ---- */

static void unlist(kart_loop *loop, kart_sock *sock)
{
    if (!(sock->flags_ & KS_LISTED))
        return;
    kart__io *io = loop->io;
    kart_sock **heads[] = {&io->resume, &io->starved};
    for (size_t h = 0; h < KART__ARRAY_LEN(heads); h++)
        for (kart_sock **p = heads[h]; *p; p = &(*p)->next_)
            if (*p == sock) {
                *p = sock->next_;
                break;
            }
    sock->next_ = NULL;
    sock->flags_ &= ~(KS_LISTED | KS_STARVED);
}

void kart__sock_resume(kart_sock *sock)
{
    if (sock->flags_ & KS_LISTED)
        return;
    kart__io *io = sock->base.loop->io;
    sock->flags_ |= KS_LISTED;
    sock->next_ = io->resume;
    io->resume = sock;
}

/* A receive waits for a buffer: it goes back on the resume list at the
 * next release. */
void kart__sock_starve(kart_sock *sock)
{
    kart__io *io = sock->base.loop->io;
    io->stats.enobufs++;
    if (sock->flags_ & KS_LISTED)
        unlist(sock->base.loop, sock);
    sock->flags_ |= KS_LISTED | KS_STARVED;
    sock->next_ = io->starved;
    io->starved = sock;
}

void kart__req_finish(kart_req *req, int res)
{
    kart_loop *loop = req->loop;
    kart_sock *sock = req->sock;
    if (req->flags_ & KR_TIMER)
        kart__req_timer_stop(req);
    bool closing = req->type == KART_REQ_CLOSE;
    /* A cancelled shutdown of the writing side lets sends go again. */
    if (req->type == KART_REQ_SHUTDOWN && res == -ECANCELED && req->off_ != SHUT_RD)
        sock->flags_ &= ~KS_WR_SHUT;
    req->state_ = KR_IDLE;
    req->flags_ = 0;
    kart__op_end(loop);
    if (sock && !closing)
        sock->nops_--;
    if (sock && sock->idle_ && req->type == KART_REQ_SEND && res > 0)
        kart__idle_touch(sock); /* io_deadline.c */
    req->cb_(req, res);
    /* The close callback may have freed sock; any other left it alive,
     * and may have been the last send a graceful close waited for, or the
     * last operation a close waited for. */
    if (sock && !closing && (sock->flags_ & KS_DRAINING))
        drain_check(sock);
    if (sock && !closing && (sock->flags_ & KS_CLOSING))
        kart__sock_maybe_closed(sock);
}

void kart__req_defer(kart_req *req, int res)
{
    kart__io *io = req->loop->io;
    if (req->flags_ & KR_TIMER)
        kart__req_timer_stop(req);
    req->res_ = res;
    req->state_ = KR_DONE;
    req->next_ = NULL;
    if (io->done_tail)
        io->done_tail->next_ = req;
    else
        io->done = req;
    io->done_tail = req;
}

void kart__sock_maybe_closed(kart_sock *sock)
{
    kart_req *c = sock->close_;
    if (!c || c->state_ != KR_PENDING || !(sock->flags_ & KS_CLOSE_DONE) || sock->nops_ > 0)
        return;
    /* An aborted graceful close reports why (off_), not close(2)'s 0. */
    kart__req_defer(c, c->off_ ? (int)c->off_ : c->res_);
}

void kart__sendq_pop(kart_sock *sock)
{
    kart_req *h = sock->sendq_;
    sock->sendq_ = h->next_;
    if (!sock->sendq_)
        sock->sendq_tail_ = NULL;
    h->next_ = NULL;
    sock->flags_ &= ~(KS_SEND_INFLIGHT | KS_SEND_WAIT);
}

void kart__recv_deliver(kart_sock *sock, int n, kart_buf *buf)
{
    /* A graceful close no longer receives: nobody will read it. */
    if (sock->flags_ & KS_DRAINING) {
        kart_buf_release(buf);
        return;
    }
    if (sock->idle_)
        kart__idle_touch(sock); /* io_deadline.c: a store, no system call */
    /* Data that arrives while older data waits in the stash, or after a
     * stop, joins the stash: order is kept. */
    if (sock->stash_ || !(sock->flags_ & KS_RECV)) {
        buf->len_ = (uint32_t)n;
        buf->next_ = NULL;
        kart_buf **p = &sock->stash_;
        while (*p)
            p = &(*p)->next_;
        *p = buf;
        return;
    }
    sock->recv_cb_(sock, n, buf);
}

void kart__recv_end(kart_sock *sock, int res)
{
    if (!(sock->flags_ & KS_RECV))
        return;
    /* EOF behind stashed data must wait for it: delivered now it would
     * come first, and an echo that closes at EOF dropped the stash (on
     * io_uring, a multishot receive that ran on during a stop). EOF stays
     * on the socket: the receive armed once the stash is delivered sees
     * it again. */
    if (res == 0 && sock->stash_)
        return;
    sock->flags_ &= ~KS_RECV;
    kart_loop *loop = sock->base.loop;
    loop->io->nrecv--;
    kart__op_end(loop);
    sock->recv_cb_(sock, res, NULL);
}

/* Feeds a restarted receive what it stashed, then arms it. */
static void resume_one(kart_sock *sock)
{
    while (sock->stash_ && (sock->flags_ & KS_RECV) && !(sock->flags_ & KS_CLOSING)) {
        kart_buf *b = sock->stash_;
        sock->stash_ = b->next_;
        b->next_ = NULL;
        sock->recv_cb_(sock, (int)b->len_, b);
    }
    if ((sock->flags_ & (KS_RECV | KS_CLOSING)) != KS_RECV)
        return;
    int err = sock->base.loop->io->mode->recv_arm(sock);
    if (err < 0)
        kart__recv_end(sock, err);
}

bool kart__io_has_work(const kart_loop *loop)
{
    const kart__io *io = loop->io;
    return io && (io->done || io->resume);
}

/* Delivers the results queued so far. Only what is queued now: results
 * queued by these callbacks wait for the next turn, so a callback that
 * restarts at once cannot spin here. */
static void deliver_queued(kart__io *io)
{
    kart_req *last = io->done_tail;
    while (io->done) {
        kart_req *r = io->done;
        io->done = r->next_;
        if (!io->done)
            io->done_tail = NULL;
        r->next_ = NULL;
        bool end = r == last;
        kart__req_finish(r, r->res_);
        if (end)
            break;
    }
}

void kart__io_flush(kart_loop *loop)
{
    kart__io *io = loop->io;
    deliver_queued(io);
    kart_sock *s = io->resume;
    io->resume = NULL;
    while (s) {
        kart_sock *next = s->next_;
        s->next_ = NULL;
        s->flags_ &= ~KS_LISTED;
        resume_one(s);
        s = next;
    }
    if (io->mode->turn_end)
        io->mode->turn_end(loop);
}

void kart__io_fini(kart_loop *loop, bool forked)
{
    kart__io *io = loop->io;
    if (!io)
        return;
    /* A fork child must not unregister the buffer ring: the ring is the
     * parent's too. Its own mapping goes with the memory. */
    if (forked && io->pool && io->pool->registered) {
        io->pool->registered = false;
        kart__sys_munmap(io->pool->br, io->pool->brsz);
    }
    pool_free(io->pool);
    kart__rcsends_drop(io);
    while (io->sendv_all) {
        kart__sendv *v = io->sendv_all;
        io->sendv_all = v->all;
        free(v);
    }
    if (io->reserve_fd >= 0)
        close(io->reserve_fd);
    free(io);
    loop->io = NULL;
}

bool kart__io_busy(const kart_loop *loop)
{
    return loop->io && loop->io->pool && loop->io->pool->lent > 0;
}

void kart__io_ready(kart_sock *sock, uint32_t events)
{
    kart__io *io = sock->base.loop->io;
    io->mode->ready(sock, events);
    /* What this socket's callbacks finished inside their starts (the echo's
     * send, done by send(2) at once) is delivered now, not after the whole
     * batch: a send's callback is where a received buffer goes back to the
     * pool, and waiting for the batch's end held one buffer per ready
     * socket (2,000 idle echo connections primed at once touched 2,000
     * buffers, 4 KiB per connection; now one is reused). */
    if (io->done)
        deliver_queued(io);
}

void kart__io_complete(kart_loop *loop)
{
    const kart__io_mode *mode = loop->io->mode;
    if (mode->complete)
        mode->complete(loop);
}

/* ---- timeouts on loop timers ---- */

static void req_timed_out(kart_timer *t)
{
    kart_req *r = (kart_req *)((char *)t - offsetof(kart_req, t_.timer_));
    r->flags_ &= ~KR_TIMER;
    if (r->type == KART_REQ_CLOSE) {
        drain_abort(r, -ETIMEDOUT); /* a graceful close waited too long */
        return;
    }
    r->flags_ |= KR_TIMEDOUT;
    r->loop->io->mode->cancel(r);
}

void kart__req_timer_start(kart_req *r)
{
    kart_loop *loop = r->loop;
    kart_timer_init(loop, &r->t_.timer_);
    /* The request itself keeps the loop running; its timer must not count
     * twice. */
    kart_handle_unref(&r->t_.timer_.base);
    int64_t left = r->deadline_ - loop->now;
    if (kart_timer_start(&r->t_.timer_, req_timed_out, left > 0 ? left : 0, 0) == 0)
        r->flags_ |= KR_TIMER;
}

void kart__req_timer_stop(kart_req *r)
{
    kart_timer_stop(&r->t_.timer_);
    r->flags_ &= ~KR_TIMER;
}

/* ---- sockets ---- */

KART_API int kart_sock_init(kart_loop *loop, kart_sock *sock, int fd)
{
    if (!loop || !sock)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -EBADF;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
#ifdef SO_NOSIGPIPE
    int one = 1; /* where MSG_NOSIGNAL is missing */
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
    void *data = sock->base.data;
    memset(sock, 0, sizeof(*sock));
    sock->base.data = data;
    sock->base.loop = loop;
    sock->base.type = KART_HANDLE_SOCK;
    sock->fd = fd;
    return 0;
}

/* Books a request; the mode's start follows. */
static int req_begin(kart_req *req, kart_loop *loop, kart_sock *sock, int type, kart_req_cb cb,
                     int64_t timeout_ns)
{
    if (req->state_ != KR_IDLE)
        return -EINVAL;
    if (!kart__io_get(loop))
        return -ENOMEM;
    req->loop = loop;
    req->sock = sock;
    req->type = (kart_req_type)type;
    req->state_ = KR_PENDING;
    req->flags_ = 0;
    req->fd_ = sock ? sock->fd : -1;
    req->cb_ = cb;
    req->next_ = NULL;
    req->buf_ = NULL;
    req->len_ = req->done_ = 0;
    req->off_ = 0;
    req->res_ = 0;
    req->deadline_ = timeout_ns < 0 ? -1 : kart__deadline(timeout_ns);
    kart__op_start(loop);
    if (sock)
        sock->nops_++;
    return 0;
}

/* Undoes req_begin when the mode's start failed: no callback will run. */
static void req_abort(kart_req *req)
{
    if (req->flags_ & KR_TIMER)
        kart__req_timer_stop(req);
    req->state_ = KR_IDLE;
    req->flags_ = 0;
    kart__op_end(req->loop);
    if (req->sock)
        req->sock->nops_--;
}

static const kart__io_mode *mode_of(const kart_loop *loop)
{
    return loop->io->mode;
}

KART_API int kart_sock_accept(kart_sock *listener, kart_req *req, kart_req_cb cb)
{
    if (!listener || !req || !cb || req->state_ != KR_IDLE)
        return -EINVAL;
    if (listener->flags_ & KS_ENDING)
        return -EPIPE;
    if (listener->accept_)
        return -EBUSY;
    kart_loop *loop = listener->base.loop;
    kart__io *io = kart__io_get(loop);
    if (!io)
        return -ENOMEM;
    if (io->reserve_fd < 0) {
        io->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (io->reserve_fd < 0)
            return -errno;
    }
    int err = req_begin(req, loop, listener, KART_REQ_ACCEPT, cb, -1);
    if (err < 0)
        return err;
    listener->accept_ = req;
    err = mode_of(loop)->accept(req);
    if (err < 0) {
        listener->accept_ = NULL;
        req_abort(req);
    }
    return err;
}

KART_API int kart_sock_connect(kart_sock *sock, kart_req *req, const struct sockaddr *addr,
                               socklen_t addrlen, int64_t timeout_ns, kart_req_cb cb)
{
    if (!sock || !req || !addr || !cb || req->state_ != KR_IDLE || addrlen == 0 ||
        addrlen > sizeof(struct sockaddr_storage))
        return -EINVAL;
    if (sock->flags_ & KS_ENDING)
        return -EPIPE;
    if (sock->connect_)
        return -EBUSY;
    kart_loop *loop = sock->base.loop;
    int err = req_begin(req, loop, sock, KART_REQ_CONNECT, cb, timeout_ns);
    if (err < 0)
        return err;
    sock->connect_ = req;
    err = mode_of(loop)->connect(req, addr, addrlen);
    if (err < 0) {
        sock->connect_ = NULL;
        req_abort(req);
    }
    return err;
}

KART_API int kart_sock_recv_start(kart_sock *sock, kart_recv_cb cb)
{
    if (!sock || !cb)
        return -EINVAL;
    if (sock->flags_ & KS_ENDING)
        return -EPIPE;
    if (sock->flags_ & KS_RECV) {
        sock->recv_cb_ = cb;
        return 0;
    }
    kart_loop *loop = sock->base.loop;
    kart__io *io = kart__io_get(loop);
    if (!io)
        return -ENOMEM;
    int err = kart__pool_ready(loop);
    if (err < 0)
        return err;
    sock->recv_cb_ = cb;
    sock->flags_ |= KS_RECV;
    io->nrecv++;
    kart__op_start(loop);
    if (sock->stash_) {
        kart__sock_resume(sock);
        return 0;
    }
    err = mode_of(loop)->recv_arm(sock);
    if (err < 0) {
        sock->flags_ &= ~KS_RECV;
        io->nrecv--;
        kart__op_end(loop);
    }
    return err;
}

KART_API int kart_sock_recv_stop(kart_sock *sock)
{
    if (!sock)
        return -EINVAL;
    if (!(sock->flags_ & KS_RECV))
        return 0;
    kart_loop *loop = sock->base.loop;
    sock->flags_ &= ~KS_RECV;
    loop->io->nrecv--;
    kart__op_end(loop);
    mode_of(loop)->recv_stop(sock);
    return 0;
}

/* Appends to the ordered send queue and starts it if it was idle. */
static void sendq_push(kart_sock *sock, kart_req *req)
{
    bool idle = sock->sendq_ == NULL;
    if (sock->sendq_tail_)
        sock->sendq_tail_->next_ = req;
    else
        sock->sendq_ = req;
    sock->sendq_tail_ = req;
    /* A send's timeout runs on a loop timer in both modes: natively the
     * requests at the front of the queue go out together in one gathered
     * send, which one linked timeout could not time out one by one. */
    const kart__io_mode *mode = mode_of(sock->base.loop);
    if (req->deadline_ >= 0)
        kart__req_timer_start(req);
    if (idle)
        mode->send_kick(sock);
}

KART_API int kart_sock_send(kart_sock *sock, kart_req *req, const void *buf, size_t len,
                            int64_t timeout_ns, kart_req_cb cb)
{
    if (!sock || !req || !cb || (!buf && len > 0) || req->state_ != KR_IDLE || len > INT32_MAX)
        return -EINVAL;
    if (sock->flags_ & (KS_ENDING | KS_WR_SHUT))
        return -EPIPE;
    int err = req_begin(req, sock->base.loop, sock, KART_REQ_SEND, cb, timeout_ns);
    if (err < 0)
        return err;
    req->buf_ = buf;
    req->len_ = len;
    sendq_push(sock, req);
    return 0;
}

static void buf_sent(kart_req *req, int res)
{
    kart__bufsend *bs = (kart__bufsend *)req;
    kart_sock *sock = req->sock;
    kart_send_buf_cb cb = bs->cb;
    kart_buf_release(bs->buf);
    if (cb)
        cb(sock, res);
}

KART_API int kart_sock_send_buf(kart_sock *sock, kart_buf *buf, size_t len, kart_send_buf_cb cb)
{
    if (!sock || !buf || !(buf->flags_ & KB_LENT) || len > buf->size)
        return -EINVAL;
    kart__bufpool *pool = buf->pool_;
    kart__bufsend *bs =
        (buf->flags_ & KB_SLICE) ? &((kart__slice *)buf)->send : &pool->sends[buf->id_];
    if (bs->req.state_ != KR_IDLE)
        return -EINVAL;
    bs->cb = cb;
    bs->buf = buf;
    return kart_sock_send(sock, &bs->req, buf->base, len, -1, buf_sent);
}

KART_API int kart_sock_shutdown(kart_sock *sock, kart_req *req, int how, kart_req_cb cb)
{
    if (!sock || !req || !cb || req->state_ != KR_IDLE ||
        (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR))
        return -EINVAL;
    if ((sock->flags_ & (KS_ENDING | KS_WR_SHUT)))
        return -EPIPE;
    int err = req_begin(req, sock->base.loop, sock, KART_REQ_SHUTDOWN, cb, -1);
    if (err < 0)
        return err;
    req->off_ = how;
    if (how != SHUT_RD)
        sock->flags_ |= KS_WR_SHUT;
    sendq_push(sock, req);
    return 0;
}

/* Books a close request (graceful or not) on sock. */
static int close_begin(kart_sock *sock, kart_req *req, int64_t timeout_ns, kart_req_cb cb)
{
    if (!sock || !req || !cb || req->state_ != KR_IDLE)
        return -EINVAL;
    if (sock->flags_ & KS_ENDING)
        return -EALREADY;
    kart_loop *loop = sock->base.loop;
    if (!kart__io_get(loop))
        return -ENOMEM;
    /* The close itself is not one of the socket's operations (nops_): it
     * is what waits for them. */
    int err = req_begin(req, loop, NULL, KART_REQ_CLOSE, cb, timeout_ns);
    if (err < 0)
        return err;
    req->sock = sock;
    req->fd_ = sock->fd;
    req->off_ = 0; /* a graceful close's abort: the result cb gets */
    sock->close_ = req;
    kart__idle_drop(sock); /* io_deadline.c: no idle callback once closing */
    return 0;
}

/* The abortive close: everything pending is cancelled, the fd closed. */
static void close_now(kart_sock *sock)
{
    kart_loop *loop = sock->base.loop;
    kart_req *req = sock->close_;
    if (req->flags_ & KR_TIMER)
        kart__req_timer_stop(req);
    sock->flags_ &= ~KS_DRAINING;
    sock->flags_ |= KS_CLOSING;
    unlist(loop, sock);
    if (sock->flags_ & KS_RECV) {
        sock->flags_ &= ~KS_RECV;
        loop->io->nrecv--;
        kart__op_end(loop);
    }
    while (sock->stash_) {
        kart_buf *b = sock->stash_;
        sock->stash_ = b->next_;
        b->next_ = NULL;
        kart_buf_release(b);
    }
    if (mode_of(loop)->close(sock) < 0) {
        /* The mode could not take the close (a full ring): close it here. */
        req->res_ = close(sock->fd) < 0 ? -errno : 0;
        sock->flags_ |= KS_CLOSE_DONE;
    }
    kart__sock_maybe_closed(sock);
}

KART_API int kart_sock_close(kart_sock *sock, kart_req *req, kart_req_cb cb)
{
    int err = close_begin(sock, req, -1, cb);
    if (err < 0)
        return err;
    close_now(sock);
    return 0;
}

/* A graceful close gives up waiting (timeout or cancel): the rest is
 * cancelled, and cb gets res whatever close(2) says. */
static void drain_abort(kart_req *req, int res)
{
    kart_sock *sock = req->sock;
    if (!(sock->flags_ & KS_DRAINING))
        return;
    req->off_ = res;
    close_now(sock);
}

/* The send queue of a draining socket may just have emptied. */
static void drain_check(kart_sock *sock)
{
    if ((sock->flags_ & KS_DRAINING) && !sock->sendq_)
        close_now(sock);
}

KART_API int kart_sock_close_graceful(kart_sock *sock, kart_req *req, int64_t timeout_ns,
                                      kart_req_cb cb)
{
    int err = close_begin(sock, req, timeout_ns, cb);
    if (err < 0)
        return err;
    sock->flags_ |= KS_DRAINING;
    kart_sock_recv_stop(sock);
    /* An accept or a connect has no bytes to finish: it ends now. */
    if (sock->accept_)
        kart_req_cancel(sock->accept_);
    if (sock->connect_)
        kart_req_cancel(sock->connect_);
    if (!sock->sendq_ || timeout_ns == 0) {
        if (sock->sendq_)
            req->off_ = -ETIMEDOUT;
        close_now(sock);
        return 0;
    }
    if (req->deadline_ >= 0)
        kart__req_timer_start(req);
    return 0;
}

/* ---- files ---- */

static int file_op(kart_loop *loop, kart_req *req, int type, int fd, const void *buf, size_t len,
                   int64_t offset, int64_t timeout_ns, kart_req_cb cb)
{
    if (!loop || !req || !cb || (!buf && len > 0) || req->state_ != KR_IDLE || len > INT32_MAX)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    int err = req_begin(req, loop, NULL, type, cb, timeout_ns);
    if (err < 0)
        return err;
    req->fd_ = fd;
    req->buf_ = buf;
    req->len_ = len;
    req->off_ = offset < 0 ? -1 : offset;
    err = mode_of(loop)->file(req);
    if (err < 0)
        req_abort(req);
    return err;
}

KART_API int kart_file_read(kart_loop *loop, kart_req *req, int fd, void *buf, size_t len,
                            int64_t offset, int64_t timeout_ns, kart_req_cb cb)
{
    return file_op(loop, req, KART_REQ_READ, fd, buf, len, offset, timeout_ns, cb);
}

KART_API int kart_file_write(kart_loop *loop, kart_req *req, int fd, const void *buf, size_t len,
                             int64_t offset, int64_t timeout_ns, kart_req_cb cb)
{
    return file_op(loop, req, KART_REQ_WRITE, fd, buf, len, offset, timeout_ns, cb);
}

/* ---- cancel ---- */

KART_API int kart_req_cancel(kart_req *req)
{
    if (!req)
        return -EINVAL;
    if ((req->flags_ & KR_CANCEL) && req->state_ != KR_IDLE)
        return 0; /* asked already */
    if (req->state_ != KR_PENDING)
        return -EALREADY;
    if (req->type == KART_REQ_CLOSE) {
        if (!(req->sock->flags_ & KS_DRAINING))
            return -EALREADY;
        drain_abort(req, -ECANCELED);
        return 0;
    }
    req->flags_ |= KR_CANCEL;
    return mode_of(req->loop)->cancel(req);
}

KART_API int kart_req_is_active(const kart_req *req)
{
    return req && req->state_ != KR_IDLE;
}

/* ---- accepting at the descriptor limit ---- */

static void backoff_fired(kart_timer *t)
{
    kart_req *req = (kart_req *)((char *)t - offsetof(kart_req, t_.timer_));
    req->flags_ &= ~(KR_BACKOFF | KR_TIMER);
    kart_sock *l = req->sock;
    if (req->flags_ & KR_CANCEL)
        return;
    int err = mode_of(req->loop)->accept(req);
    if (err < 0) {
        l->accept_ = NULL;
        kart__req_finish(req, err);
    }
}

void kart__accept_backoff(kart_req *req)
{
    /* off_ holds the current delay: 1 ms, doubling to 1 s; a successful
     * accept resets it. */
    int64_t delay = req->off_ ? req->off_ * 2 : 1000000;
    if (delay > KART__NS_PER_SEC)
        delay = KART__NS_PER_SEC;
    req->off_ = delay;
    req->flags_ |= KR_BACKOFF | KR_TIMER;
    kart_timer_init(req->loop, &req->t_.timer_);
    kart_handle_unref(&req->t_.timer_.base);
    kart_timer_start(&req->t_.timer_, backoff_fired, delay, 0);
}

/*
 * EMFILE or ENFILE: the connection waits in the backlog and would make the
 * listener ready (or the multishot accept fail) again at once. Free the
 * spare descriptor, accept what waits and close it at once, then take the
 * spare back. Returns 0 when accepting may go on, 1 when it must back off
 * (the spare could not be taken back: the limit is still hit).
 */
int kart__accept_fd_limit(kart_req *req)
{
    kart__io *io = req->loop->io;
    io->stats.accept_fd_limit++;
    if (io->reserve_fd >= 0) {
        close(io->reserve_fd);
        io->reserve_fd = -1;
        int dropped = 0;
        for (int i = 0; i < 64; i++) {
            int fd = kart__accept_nb(req->sock->fd);
            if (fd < 0)
                break;
            close(fd);
            dropped++;
        }
        io->stats.accept_dropped += (uint64_t)dropped;
        kart__log(KART_LOG_WARNING, "io",
                  "accept on fd %d at the descriptor limit: %d connection(s) dropped",
                  req->sock->fd, dropped);
        io->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (io->reserve_fd >= 0)
        return 0;
    kart__accept_backoff(req);
    return 1;
}

/* ---- introspection ---- */

KART_API int kart_loop_io_stats(const kart_loop *loop, kart_io_stats *out)
{
    if (!loop || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (loop->io) {
        *out = loop->io->stats;
        if (loop->io->pool) {
            out->bufs_lent = loop->io->pool->lent;
            out->bufs_total = loop->io->pool->count;
        }
    }
    const kart__io_mode *mode = loop->io ? loop->io->mode : kart__io_mode_for(loop->sel);
    out->native = mode->native;
    if (mode->stats)
        mode->stats(loop->sel, out);
    return 0;
}

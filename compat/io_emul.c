/*
 * compat/io_emul.c — completion-based I/O (kart/io.h) emulated over
 * readiness, for the epoll, poll, select and kqueue backends (and io_uring
 * on kernels without multishot receive).
 *
 * Each kart_sock registers its fd in the loop's selector, level-triggered,
 * with its own handle as the data, for exactly what its pending work needs
 * (update()): readable while it accepts or receives (and has a
 * free buffer), writable while a connect is pending or the send queue's
 * head is blocked. Nothing is registered while nothing is pending, so an
 * idle connection costs no kernel state beyond a receive's registration.
 *
 * Work is done with non-blocking calls, tried at once where that is free of
 * risk: a send on an idle queue goes straight to send(2) (on epoll a
 * readiness round trip would cost a wait and two epoll_ctl calls), and is
 * queued behind a writable registration only when the socket would block.
 * Receives take one buffer per readiness report: with level-triggered
 * reports that is the fairness bound, each ready socket gets one buffer per
 * loop turn. Results known inside a start call are delivered through the
 * loop's queue (kart__req_defer); results found by readiness are delivered
 * at once (kart__req_finish). Timeouts are loop timers inside the request.
 */
#include "fault.h"
#include "io_private.h"

#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 32 /* connections accepted per readiness report */

static uint32_t wanted(const kart_sock *s)
{
    if (s->flags_ & KS_CLOSING)
        return 0;
    uint32_t ev = 0;
    const kart_req *a = s->accept_;
    if (a && !(a->flags_ & KR_BACKOFF))
        ev |= KART_READABLE;
    if ((s->flags_ & (KS_RECV | KS_STARVED)) == KS_RECV && !s->stash_)
        ev |= KART_READABLE;
    if (s->connect_ || (s->flags_ & KS_SEND_WAIT))
        ev |= KART_WRITABLE;
    return ev;
}

static int update(kart_sock *s)
{
    uint32_t ev = wanted(s);
    if (ev == s->events_)
        return 0;
    kart_selector *sel = s->base.loop->sel;
    if (!ev) {
        kart_selector_unregister(sel, s->fd);
        s->events_ = 0;
        return 0;
    }
    int err = s->events_ ? kart_selector_modify(sel, s->fd, ev, &s->base)
                         : kart_selector_register(sel, s->fd, ev, &s->base);
    if (err == 0)
        s->events_ = ev;
    return err;
}

/* ---- sends ---- */

/* Works through the send queue until the socket would block. now: deliver
 * at once (from the loop's dispatch) rather than through the queue. */
static void flush_sends(kart_sock *s, bool now)
{
    while (s->sendq_ && !(s->flags_ & KS_CLOSING)) {
        kart_req *r = s->sendq_;
        int res;
        if (r->type == KART_REQ_SHUTDOWN) {
            res = shutdown(s->fd, (int)r->off_) < 0 ? -errno : 0;
        } else {
            /* (A zero-length send may come with a NULL buffer.) */
            const char *p = r->buf_ ? (const char *)r->buf_ + r->done_ : NULL;
            ssize_t n = kart__sys_send(s->fd, p, r->len_ - r->done_, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    s->flags_ |= KS_SEND_WAIT;
                    return;
                }
                res = -errno;
            } else {
                r->done_ += (size_t)n;
                if (r->done_ < r->len_)
                    continue;
                res = (int)r->len_;
            }
        }
        kart__sendq_pop(s);
        if (now)
            kart__req_finish(r, res);
        else
            kart__req_defer(r, res);
    }
}

/* The queue could not be watched: fail what waits in it. */
static void fail_sends(kart_sock *s, int err)
{
    while (s->sendq_) {
        kart_req *r = s->sendq_;
        kart__sendq_pop(s);
        kart__req_defer(r, err);
    }
}

static void send_kick(kart_sock *s)
{
    if (!(s->flags_ & KS_SEND_WAIT))
        flush_sends(s, false);
    int err = update(s);
    if (err < 0 && s->sendq_) {
        fail_sends(s, err);
        update(s);
    }
}

/* ---- accept, connect, receive ---- */

static int start_accept(kart_req *r)
{
    return update(r->sock);
}

static void do_accept(kart_sock *s)
{
    kart_req *r = s->accept_;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (s->accept_ != r || r->state_ != KR_PENDING || (r->flags_ & KR_BACKOFF) ||
            (s->flags_ & KS_CLOSING))
            return;
        int fd = kart__accept_nb(s->fd);
        if (fd >= 0) {
            r->off_ = 0; /* the back-off delay starts afresh */
            r->cb_(r, fd);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:
            continue; /* that connection is gone; the next may be fine */
        case EMFILE:
        case ENFILE:
            if (kart__accept_fd_limit(r))
                return;
            continue;
        case ENOBUFS:
        case ENOMEM:
            kart__accept_backoff(r);
            return;
        default: {
            int err = -errno;
            s->accept_ = NULL;
            kart__req_finish(r, err);
            return;
        }
        }
    }
}

static int start_connect(kart_req *r, const struct sockaddr *addr, socklen_t len)
{
    kart_sock *s = r->sock;
    int rc;
    do
        rc = kart__sys_connect(s->fd, addr, len);
    while (rc < 0 && errno == EINTR);
    if (rc == 0 || (errno != EINPROGRESS && errno != EAGAIN)) {
        /* Done already (or refused already, as unix sockets are): the
         * result goes through the loop like any other. */
        s->connect_ = NULL;
        kart__req_defer(r, rc == 0 ? 0 : -errno);
        return 0;
    }
    int err = update(s);
    if (err < 0)
        return err;
    if (r->deadline_ >= 0)
        kart__req_timer_start(r);
    return 0;
}

static void connect_done(kart_sock *s)
{
    kart_req *r = s->connect_;
    int soerr = 0;
    socklen_t l = sizeof(soerr);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0)
        soerr = errno;
    s->connect_ = NULL;
    kart__req_finish(r, -soerr);
}

static void do_recv(kart_sock *s)
{
    kart__bufpool *pool = s->base.loop->io->pool;
    kart_buf *b = kart__pool_take(pool);
    if (!b) {
        kart__sock_starve(s);
        return;
    }
    ssize_t n;
    do
        n = kart__sys_recv(s->fd, b->base, b->size, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        kart__recv_deliver(s, (int)n, b);
        return;
    }
    int err = n == 0 ? 0 : -errno;
    kart_buf_release(b);
    if (err != -EAGAIN && err != -EWOULDBLOCK)
        kart__recv_end(s, err);
}

static void ready(kart_sock *s, uint32_t events)
{
    const uint32_t wr = KART_WRITABLE | KART_ERROR | KART_HANGUP;
    if (s->connect_ && (events & wr))
        connect_done(s);
    if ((s->flags_ & KS_SEND_WAIT) && (events & wr) && !(s->flags_ & KS_CLOSING)) {
        s->flags_ &= ~KS_SEND_WAIT;
        flush_sends(s, true);
    }
    if ((events & (KART_READABLE | KART_ERROR | KART_HANGUP | KART_RDHUP)) &&
        !(s->flags_ & KS_CLOSING)) {
        if (s->accept_)
            do_accept(s);
        else if (s->flags_ & KS_RECV)
            do_recv(s);
    }
    if (!(s->flags_ & KS_CLOSING) && update(s) < 0 && s->sendq_)
        fail_sends(s, -ENOMEM);
}

/* ---- files ---- */

static int start_file(kart_req *r)
{
    ssize_t n;
    do {
        if (r->type == KART_REQ_READ)
            n = r->off_ < 0 ? kart__sys_read(r->fd_, (void *)r->buf_, r->len_)
                            : kart__sys_pread(r->fd_, (void *)r->buf_, r->len_, r->off_);
        else
            n = r->off_ < 0 ? kart__sys_write(r->fd_, r->buf_, r->len_)
                            : kart__sys_pwrite(r->fd_, r->buf_, r->len_, r->off_);
    } while (n < 0 && errno == EINTR);
    kart__req_defer(r, n < 0 ? -errno : (int)n);
    return 0;
}

/* ---- cancel and close ---- */

static int cancel(kart_req *r)
{
    kart_sock *s = r->sock;
    int res = (r->flags_ & KR_TIMEDOUT) && !(r->flags_ & KR_CANCEL) ? -ETIMEDOUT : -ECANCELED;
    switch (r->type) {
    case KART_REQ_ACCEPT:
        s->accept_ = NULL;
        break;
    case KART_REQ_CONNECT:
        s->connect_ = NULL;
        break;
    case KART_REQ_SEND:
    case KART_REQ_SHUTDOWN: {
        kart_req **p = &s->sendq_, *prev = NULL;
        while (*p && *p != r) {
            prev = *p;
            p = &(*p)->next_;
        }
        if (!*p)
            return 0;
        if (p == &s->sendq_) {
            kart__sendq_pop(s);
        } else {
            *p = r->next_;
            if (s->sendq_tail_ == r)
                s->sendq_tail_ = prev;
            r->next_ = NULL;
        }
        break;
    }
    default:
        return 0; /* file operations are done inside their start */
    }
    kart__req_defer(r, res);
    if (s->flags_ & KS_CLOSING)
        return 0;
    /* A cancelled head lets the next one go. */
    if (s->sendq_ && !(s->flags_ & KS_SEND_WAIT))
        flush_sends(s, false);
    update(s);
    return 0;
}

static int close_sock(kart_sock *s)
{
    if (s->events_) {
        kart_selector_unregister(s->base.loop->sel, s->fd);
        s->events_ = 0;
    }
    if (s->accept_) {
        kart_req *r = s->accept_;
        s->accept_ = NULL;
        kart__req_defer(r, -ECANCELED);
    }
    if (s->connect_) {
        kart_req *r = s->connect_;
        s->connect_ = NULL;
        kart__req_defer(r, -ECANCELED);
    }
    while (s->sendq_) {
        kart_req *r = s->sendq_;
        kart__sendq_pop(s);
        kart__req_defer(r, -ECANCELED);
    }
    /* Linux closes the fd even when close(2) fails (EINTR included). */
    s->close_->res_ = close(s->fd) < 0 ? -errno : 0;
    s->flags_ |= KS_CLOSE_DONE;
    return 0;
}

static int recv_arm(kart_sock *s)
{
    return update(s);
}

static void recv_stop(kart_sock *s)
{
    update(s);
}

const kart__io_mode kart__io_emulated = {
    .name = "emulated",
    .native = false,
    .accept = start_accept,
    .connect = start_connect,
    .recv_arm = recv_arm,
    .recv_stop = recv_stop,
    .send_kick = send_kick,
    .file = start_file,
    .close = close_sock,
    .cancel = cancel,
    .ready = ready,
};

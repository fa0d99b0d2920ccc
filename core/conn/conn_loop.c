/*
 * core/conn_loop.c — a connection on the event loop: whole-message send
 * and receive completions, over one kart_watch watcher on the connection's fd
 * (non-blocking while attached) and the receive state machine of conn.c.
 *
 * Sends are queued (the caller's buffer, no copy) and written when the fd
 * is writable, as many queued messages per writev as fit 64 iovecs. A
 * received message that lies whole in the read-ahead buffer is handed to
 * the callback in place; a longer one is assembled in its own allocation.
 * A zero-delay timer delivers what is already buffered when receiving
 * starts, or when a callback's budget of messages ran out, since the fd
 * will not report it readable.
 */
#include "conn_private.h"
#include "deadline.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define SEND_IOVS 64
#define RECV_BUDGET 64 /* messages per callback before yielding to the loop */

static kart_conn *of_io(kart_watch *io)
{
    return (kart_conn *)(void *)((char *)io - offsetof(kart_conn, io));
}

static kart_conn *of_timer(kart_timer *t)
{
    return (kart_conn *)(void *)((char *)t - offsetof(kart_conn, kick));
}

static void io_cb(kart_watch *io, uint32_t events);

static int update_watch(kart_conn *c)
{
    uint32_t want = (c->receiving ? KART_READABLE : 0) | (c->sq_head ? KART_WRITABLE : 0);
    if (want == c->watching)
        return 0;
    int err = want ? kart_watch_start(&c->io, want, io_cb) : kart_watch_stop(&c->io);
    if (err == 0)
        c->watching = want;
    return err;
}

static int set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    int nfl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
    if (nfl != fl && fcntl(fd, F_SETFL, nfl) < 0)
        return -errno;
    return 0;
}

static void kick_cb(kart_timer *t);

KART_API int kart_conn_attach(kart_conn *c, kart_loop *loop)
{
    if (!c || !loop)
        return -EINVAL;
    if (c->loop)
        return -EBUSY;
    int err = kart_watch_init(loop, &c->io, c->fd);
    if (err == 0)
        err = kart_timer_init(loop, &c->kick);
    if (err == 0)
        err = set_nonblock(c->fd, true);
    if (err)
        return err;
    c->nonblock = true;
    c->loop = loop;
    c->watching = 0;
    return 0;
}

/* Ends every queued send with err (the queue is emptied first, so that the
 * callbacks may queue again). Returns true when a callback closed c (it is
 * freed now). */
static bool fail_sends(kart_conn *c, int err)
{
    kart__send_req *r = c->sq_head;
    c->sq_head = c->sq_tail = NULL;
    if (r && r->done > 0 && r->done < r->hlen + r->len)
        kart__conn_abort(c, -ECONNABORTED); /* a message was cut */
    c->in_cb++;
    while (r) {
        kart__send_req *next = r->next;
        if (r->cb)
            r->cb(c, err, r->arg);
        free(r);
        r = next;
    }
    return kart__conn_cb_leave(c);
}

KART_API int kart_conn_detach(kart_conn *c)
{
    if (!c || !c->loop)
        return -EINVAL;
    c->receiving = false;
    kart_timer_stop(&c->kick);
    kart_watch_stop(&c->io);
    c->watching = 0;
    c->loop = NULL;
    if (!c->orig_nonblock && set_nonblock(c->fd, false) == 0)
        c->nonblock = false;
    fail_sends(c, -ECANCELED);
    return 0;
}

void kart__conn_loop_close(kart_conn *c)
{
    if (c->loop)
        kart_conn_detach(c);
}

KART_API int kart_conn_send_async(kart_conn *c, const void *buf, size_t len, kart_conn_send_cb cb,
                                  void *arg)
{
    if (!c || (!buf && len > 0))
        return -EINVAL;
    int err = kart__conn_can_send(c);
    if (err)
        return err;
    if (!c->loop)
        return -ENOTCONN;
    if (len > KART_CONN_MAX_MESSAGE)
        return -EMSGSIZE;
    kart__send_req *r = malloc(sizeof(*r));
    if (!r)
        return -ENOMEM;
    *r = (kart__send_req){.buf = buf, .len = len, .cb = cb, .arg = arg};
    r->hlen = (uint8_t)kart__frame_encode(r->hdr, len);
    kart__send_req *old_tail = c->sq_tail;
    if (old_tail)
        old_tail->next = r;
    else
        c->sq_head = r;
    c->sq_tail = r;
    err = update_watch(c);
    if (err) {
        if (old_tail)
            old_tail->next = NULL;
        else
            c->sq_head = NULL;
        c->sq_tail = old_tail;
        free(r);
    }
    return err;
}

/* Writes what the queue holds; true when a callback closed c. */
static bool do_sends(kart_conn *c)
{
    struct iovec iov[SEND_IOVS];
    int n = 0;
    for (kart__send_req *r = c->sq_head; r && n + 2 <= SEND_IOVS; r = r->next) {
        if (r->done < r->hlen)
            iov[n++] = (struct iovec){r->hdr + r->done, r->hlen - r->done};
        size_t off = r->done > r->hlen ? r->done - r->hlen : 0;
        if (r->len > off)
            iov[n++] = (struct iovec){(void *)(r->buf + off), r->len - off};
    }
    ssize_t w = kart__conn_do_writev(c, iov, n);
    if (w < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return false;
        int err = -errno;
        kart__conn_abort(c, err);
        if (fail_sends(c, err))
            return true;
        if (c->loop)
            update_watch(c);
        return false;
    }
    /* Unlink the completed requests before running any callback. */
    size_t left = (size_t)w;
    kart__send_req *done = c->sq_head, *r = c->sq_head, *last = NULL;
    while (r) {
        size_t rem = r->hlen + r->len - r->done;
        if (left < rem) {
            r->done += left;
            break;
        }
        left -= rem;
        last = r;
        r = r->next;
    }
    if (!last)
        return false;
    c->sq_head = r;
    if (!r)
        c->sq_tail = NULL;
    last->next = NULL;
    c->in_cb++;
    while (done) {
        kart__send_req *next = done->next;
        if (done->cb)
            done->cb(c, 0, done->arg);
        free(done);
        done = next;
    }
    if (kart__conn_cb_leave(c))
        return true;
    if (c->loop)
        update_watch(c);
    return false;
}

/* Runs the receive callback; true when it closed c (freed now). */
static bool deliver(kart_conn *c, int status, const void *msg, size_t len)
{
    c->in_cb++;
    c->rcb(c, status, msg, len, c->rarg);
    return kart__conn_cb_leave(c);
}

static void do_recvs(kart_conn *c)
{
    int budget = RECV_BUDGET;
    while (c->receiving && budget-- > 0) {
        int err = kart__conn_need_header(c, KART__NO_DEADLINE, true);
        if (err == 0 && c->len > c->rmax)
            err = kart__conn_abort(c, -EMSGSIZE);
        if (err == 0 && !c->asm_buf && c->rend - c->rpos >= c->len) {
            /* Whole in the read-ahead buffer: hand it over in place. */
            const uint8_t *m = c->rbuf + c->rpos;
            c->rpos += (size_t)c->len;
            c->have_len = false;
            if (deliver(c, 0, m, (size_t)c->len))
                return;
            continue;
        }
        if (err == 0)
            err = kart__conn_assemble(c, KART__NO_DEADLINE, true);
        if (err == 0) {
            uint8_t *m = c->asm_buf;
            c->asm_buf = NULL;
            c->have_len = false;
            bool gone = deliver(c, 0, m, (size_t)c->len);
            free(m);
            if (gone)
                return;
            continue;
        }
        if (err == -EAGAIN)
            break;
        c->receiving = false;
        if (deliver(c, err, NULL, 0))
            return;
    }
    if (!c->loop)
        return;
    if (c->receiving && budget < 0 && kart__conn_buffered(c))
        kart_timer_start(&c->kick, kick_cb, 0, 0);
    update_watch(c);
}

static void kick_cb(kart_timer *t)
{
    do_recvs(of_timer(t));
}

static void io_cb(kart_watch *io, uint32_t events)
{
    kart_conn *c = of_io(io);
    if ((events & (KART_WRITABLE | KART_ERROR)) && c->sq_head && do_sends(c))
        return;
    if (c->loop && c->receiving &&
        (events & (KART_READABLE | KART_HANGUP | KART_ERROR | KART_RDHUP)))
        do_recvs(c);
}

KART_API int kart_conn_recv_start(kart_conn *c, size_t maxlen, kart_conn_recv_cb cb, void *arg)
{
    if (!c || !cb)
        return -EINVAL;
    if (!(c->flags & KART_CONN_READABLE))
        return -EBADF;
    if (!c->loop)
        return -ENOTCONN;
    if (c->receiving)
        return -EBUSY;
    if (c->state == KART__CONN_ABORTED)
        return -ECONNABORTED;
    c->rcb = cb;
    c->rarg = arg;
    c->rmax = maxlen;
    c->receiving = true;
    int err = update_watch(c);
    if (err == 0 && (kart__conn_buffered(c) || c->state == KART__CONN_EOF))
        err = kart_timer_start(&c->kick, kick_cb, 0, 0);
    if (err) {
        c->receiving = false;
        update_watch(c);
    }
    return err;
}

KART_API int kart_conn_recv_stop(kart_conn *c)
{
    if (!c)
        return -EINVAL;
    c->receiving = false;
    if (c->loop) {
        kart_timer_stop(&c->kick);
        update_watch(c);
    }
    return 0;
}

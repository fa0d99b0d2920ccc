/*
 * core/io/io_share.c — what a server that talks to many peers needs beside
 * the operations of io.c: a request's set-up, the bytes queued on a socket
 * (to push back on a slow peer), and one buffer sent to many sockets.
 *
 * A reference-counted buffer is sent with a request kart allocates with
 * the send (the only per-operation allocation of kart/io.h): the caller
 * then needs neither a request per peer nor a copy of the message.
 */
#include "io_private.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

KART_API int kart_req_init(kart_req *req)
{
    if (!req)
        return -EINVAL;
    void *data = req->data;
    memset(req, 0, sizeof(*req));
    req->data = data;
    return 0;
}

KART_API int kart_sock_queued(const kart_sock *sock, size_t *queued, size_t *kernel)
{
    if (!sock)
        return -EINVAL;
    int outq = 0;
#if defined(SIOCOUTQ)
    if (ioctl(sock->fd, SIOCOUTQ, &outq) < 0) {
        if (errno == EBADF)
            return -EBADF;
        outq = 0; /* a socket type without the count */
    }
#elif defined(FIONWRITE)
    if (ioctl(sock->fd, FIONWRITE, &outq) < 0) {
        if (errno == EBADF)
            return -EBADF;
        outq = 0;
    }
#endif
    size_t q = 0;
    for (const kart_req *r = sock->sendq_; r; r = r->next_)
        if (r->type == KART_REQ_SEND)
            q += r->len_ - r->done_;
    if (queued)
        *queued = q;
    if (kernel)
        *kernel = outq > 0 ? (size_t)outq : 0;
    return 0;
}

/* ---- reference-counted buffers ---- */

KART_API int kart_rcbuf_create(kart_rcbuf **out, size_t size)
{
    if (!out || size == 0 || size > INT32_MAX)
        return -EINVAL;
    /* One allocation: the header, then the bytes. */
    kart_rcbuf *b = malloc(sizeof(*b) + size);
    if (!b)
        return -ENOMEM;
    b->base = (char *)(b + 1);
    b->size = size;
    atomic_init(&b->refs_, 1);
    *out = b;
    return 0;
}

static void rcbuf_unref(kart_rcbuf *b)
{
    if (atomic_fetch_sub_explicit(&b->refs_, 1, memory_order_acq_rel) == 1)
        free(b);
}

KART_API void kart_rcbuf_free(kart_rcbuf *buf)
{
    if (buf)
        rcbuf_unref(buf);
}

/* One send of a shared buffer: kart's request, on the loop's list so that
 * a loop freed with sends pending frees them too. */
typedef struct kart__rcsend {
    kart_req req; /* first: the callback's req is the struct */
    kart_rcbuf *buf;
    kart_send_buf_cb cb;
    struct kart__rcsend *prev, *next;
} rcsend;

static void rcsend_unlink(kart__io *io, rcsend *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        io->rcsends = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

static void rcbuf_sent(kart_req *req, int res)
{
    rcsend *s = (rcsend *)req;
    kart_sock *sock = req->sock;
    kart_send_buf_cb cb = s->cb;
    rcsend_unlink(req->loop->io, s);
    rcbuf_unref(s->buf);
    free(s);
    if (cb)
        cb(sock, res);
}

void kart__rcsends_drop(kart__io *io)
{
    for (rcsend *s = io->rcsends, *next; s; s = next) {
        next = s->next;
        rcbuf_unref(s->buf);
        free(s);
    }
    io->rcsends = NULL;
}

KART_API int kart_sock_send_rcbuf(kart_sock *sock, kart_rcbuf *buf, size_t len, int64_t timeout_ns,
                                  kart_send_buf_cb cb)
{
    if (!sock || !buf || len > buf->size)
        return -EINVAL;
    rcsend *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->buf = buf;
    s->cb = cb;
    atomic_fetch_add_explicit(&buf->refs_, 1, memory_order_relaxed);
    int err = kart_sock_send(sock, &s->req, buf->base, len, timeout_ns, rcbuf_sent);
    if (err < 0) {
        rcbuf_unref(buf);
        free(s);
        return err;
    }
    /* The send made the loop's I/O state if it was the first operation. */
    kart__io *io = sock->base.loop->io;
    s->next = io->rcsends;
    if (s->next)
        s->next->prev = s;
    io->rcsends = s;
    return 0;
}

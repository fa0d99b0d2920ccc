/*
 * core/conn/conn_prefetch.c — a send that also waits for the answer's
 * first bytes, in one system call (conn_private.h: kart__conn_send_prefetch).
 *
 * A synchronous request/reply costs each side a send, a wait and a read:
 * three system calls per message with conn.c's blocking calls (the wait is
 * a poll(): see read_iov). On a paravirtualised VM a system call costs a
 * microsecond or more, a large part of a manager call's ~20 us. A backend
 * that can do a send and a receive in one system call (io_uring:
 * uring/uring_sendrecv.c) does the three in one, the receive landing in
 * the read-ahead buffer. It is asked only after a few calls on a thread
 * (short-lived threads and connections never pay for its setup), and only
 * for a small message on a blocking socket with nothing buffered; anything
 * else, or no such backend, is kart__conn_send_dl.
 */
#include "conn_private.h"

#include <string.h>

/* Calls on a thread before the backend is asked. */
#define WARM_CALLS 4

#ifdef KART_HAVE_URING
static const kart__sendrecv_ops *const backend = &kart__sendrecv_uring;
#else
static const kart__sendrecv_ops *const backend = NULL;
#endif

static _Thread_local unsigned calls;

int kart__conn_send_prefetch(kart_conn *c, const void *buf, size_t len)
{
    if (!backend || !c || (!buf && len > 0) || len > KART__CONN_COPY_MAX || !c->is_socket ||
        c->nonblock || c->loop || (c->flags & KART_CONN_EXACT) ||
        !(c->flags & KART_CONN_READABLE) || c->state != KART__CONN_OK || c->have_len ||
        c->receiving || !c->rbuf || c->rend != c->rpos || kart__conn_can_send(c) != 0 ||
        c->sq_head || calls++ < WARM_CALLS)
        return kart__conn_send_dl(c, buf, len, KART__NO_DEADLINE);
    uint8_t frame[KART__CONN_HDR_MAX + KART__CONN_COPY_MAX];
    size_t h = kart__frame_encode(frame, len);
    if (len)
        memcpy(frame + h, buf, len);
    int sent = 0;
    ssize_t got = 0;
    /* the backend returns only when the send is over (and the receive,
     * unless the send failed): frame and rbuf are not in use after it */
    if (backend->send_recv(c->fd, frame, h + len, c->rbuf, c->rcap, &sent, &got) < 0)
        return kart__conn_send_dl(c, buf, len, KART__NO_DEADLINE);
    if (sent < 0)
        return kart__conn_abort(c, sent);
    /* nothing read (EOF, an error): the receive that follows reads again
     * and reports it */
    c->rpos = 0;
    c->rend = got > 0 ? (size_t)got : 0;
    return 0;
}

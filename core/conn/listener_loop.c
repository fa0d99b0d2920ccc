/*
 * core/listener_loop.c — a listener accepting on an event loop, with the
 * authkey handshake of every peer driven by the loop's readiness: each
 * peer is a small state machine over its own attached connection
 * (kart_conn_send_async / kart_conn_recv_start) with its own deadline
 * timer, so that a slow or silent peer delays no one else.
 *
 * The server's side of the handshake is Python's Listener.accept:
 * deliver_challenge (send a challenge, check the reply, send the verdict),
 * then answer_challenge (answer the peer's challenge, read its verdict).
 * Results reach the user's callback from a zero-delay timer of the peer,
 * never from inside a callback of the peer's connection, so that the user
 * may close or attach the new connection at once.
 */
#include "auth_private.h"
#include "conn_private.h"
#include "deadline.h"
#include "fault.h"
#include "listener_private.h"

#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define ACCEPTS_PER_EVENT 16

enum hs_step {
    WAIT_REPLY,     /* our challenge is out: waiting for its reply */
    WAIT_CHALLENGE, /* our verdict is out: waiting for the peer's challenge */
    WAIT_VERDICT,   /* our reply is out: waiting for the peer's verdict */
    DONE,           /* finished (status says how): being handed over */
};

struct kart__hs_peer {
    kart__hs_peer *prev, *next;
    kart_listener *l;
    kart_conn *c; /* NULL once closed on failure */
    kart_timer timer;
    enum hs_step step;
    int status;
    /* Send buffers stay put until their sends complete. */
    uint8_t chal[KART__AUTH_MAX_CHALLENGE];
    size_t chal_len;
    uint8_t reply[KART__AUTH_MAX_RESPONSE];
};

static void unlink_peer(kart__hs_peer *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->l->peers = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

/* Ends the peer's connection on the loop: stops its I/O (pending sends
 * complete with -ECANCELED, which send_done ignores once DONE). */
static void end_conn(kart__hs_peer *p, bool close_it)
{
    kart_conn *c = p->c;
    kart_conn_recv_stop(c);
    if (close_it) /* the peer sees the end now, whatever the backend does
                     with the fd until its watcher is gone */
        kart__conn_abort(c, 0);
    kart_conn_detach(c);
    if (close_it) {
        kart_conn_close(c); /* deferred when inside its own callback */
        p->c = NULL;
    }
}

static void hand_over(kart_timer *t);

/* The handshake ended with status: stop the peer's I/O and hand the result
 * over from the timer (we may be inside the connection's callback). */
static void finish(kart__hs_peer *p, int status)
{
    if (p->step == DONE)
        return;
    p->step = DONE;
    p->status = status;
    end_conn(p, status != 0);
    kart_timer_stop(&p->timer);
    if (kart_timer_start(&p->timer, hand_over, 0, 0) != 0)
        hand_over(&p->timer); /* cannot happen on an initialised timer */
}

static void hand_over(kart_timer *t)
{
    kart__hs_peer *p = (kart__hs_peer *)(void *)((char *)t - offsetof(kart__hs_peer, timer));
    if (p->step != DONE) {
        /* The deadline: the peer did not finish in time. */
        p->step = DONE;
        p->status = KART_EHANDSHAKE;
        end_conn(p, true);
    }
    kart_listener *l = p->l;
    kart_listener_accept_cb cb = l->acb;
    void *arg = l->aarg;
    int status = p->status;
    kart_conn *c = p->c;
    unlink_peer(p);
    kart_timer_stop(&p->timer);
    free(p);
    cb(l, status, c, arg);
}

static void send_done(kart_conn *c, int status, void *arg)
{
    (void)c;
    kart__hs_peer *p = arg;
    if (p->step != DONE && status != 0)
        finish(p, status);
}

/* After a refused reply: the verdict "#FAILURE#" is out, then the end. */
static void failure_sent(kart_conn *c, int status, void *arg)
{
    (void)c, (void)status;
    kart__hs_peer *p = arg;
    finish(p, p->status);
}

static int send_msg(kart__hs_peer *p, const void *m, size_t n, kart_conn_send_cb cb)
{
    return kart_conn_send_async(p->c, m, n, cb, p);
}

static void on_msg(kart_conn *c, int status, const void *msg, size_t len, void *arg)
{
    (void)c;
    kart__hs_peer *p = arg;
    if (p->step == DONE)
        return;
    if (status != 0) {
        finish(p, status == -ETIMEDOUT ? KART_EHANDSHAKE : status);
        return;
    }
    int err = 0;
    switch (p->step) {
    case WAIT_REPLY:
        err = kart__auth_check_reply(&p->l->auth, p->chal, p->chal_len, msg, len);
        if (err) {
            /* Python sends the verdict before it raises. */
            p->status = err;
            kart_conn_recv_stop(p->c);
            err = send_msg(p, KART__AUTH_FAILURE, sizeof(KART__AUTH_FAILURE) - 1, failure_sent);
            if (err == 0)
                return;
            err = p->status;
            break;
        }
        p->step = WAIT_CHALLENGE;
        err = send_msg(p, KART__AUTH_WELCOME, sizeof(KART__AUTH_WELCOME) - 1, send_done);
        break;
    case WAIT_CHALLENGE: {
        size_t rn;
        err = kart__auth_reply(&p->l->auth, msg, len, p->reply, &rn);
        if (err == 0) {
            p->step = WAIT_VERDICT;
            err = send_msg(p, p->reply, rn, send_done);
        }
        break;
    }
    case WAIT_VERDICT:
        err = kart__auth_verdict(msg, len);
        if (err == 0) {
            finish(p, 0);
            return;
        }
        break;
    case DONE:
        return;
    }
    if (err)
        finish(p, err);
}

/* Starts the handshake of a new peer; on failure the caller closes c. */
static int start_peer(kart_listener *l, kart_conn *c)
{
    kart__hs_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->l = l;
    p->c = c;
    int err = kart_timer_init(l->loop, &p->timer);
    bool timer = err == 0;
    if (err == 0)
        err = kart__auth_challenge(&l->auth, p->chal, &p->chal_len);
    if (err == 0)
        err = kart_conn_attach(c, l->loop);
    if (err == 0)
        err = kart_conn_send_async(c, p->chal, p->chal_len, send_done, p);
    if (err == 0)
        err = kart_conn_recv_start(c, KART__AUTH_HANDSHAKE_MAX, on_msg, p);
    int64_t t = l->auth.timeout_ns == 0 ? 10 * KART__NS_PER_SEC : l->auth.timeout_ns;
    if (err == 0 && t > 0)
        err = kart_timer_start(&p->timer, hand_over, t, 0);
    if (err) {
        /* Nothing ran yet: no callback fires for this peer. */
        p->step = DONE;
        if (c->loop) {
            kart_conn_recv_stop(c);
            kart_conn_detach(c);
        }
        if (timer)
            kart_timer_stop(&p->timer);
        free(p);
        return err;
    }
    p->next = l->peers;
    if (l->peers)
        l->peers->prev = p;
    l->peers = p;
    return 0;
}

/* Whether accept(2)'s error ends accepting (out of a resource) rather than
 * concerning one peer that left or a race with another accepter. */
static bool fatal(int err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM || err == -EBADF ||
           err == -EINVAL || err == -ENOTSOCK;
}

static void stop_io(kart_listener *l)
{
    kart_watch_stop(&l->io);
    l->acb = NULL;
}

static void on_listen(kart_watch *io, uint32_t events)
{
    (void)events;
    kart_listener *l = (kart_listener *)(void *)((char *)io - offsetof(kart_listener, io));
    for (int i = 0; i < ACCEPTS_PER_EVENT && l->acb; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = kart__sys_accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
        int err = fd < 0 ? -errno : 0;
        if (err == -EAGAIN || err == -EWOULDBLOCK)
            return;
        kart_listener_accept_cb cb = l->acb;
        void *arg = l->aarg;
        if (err && !fatal(err))
            continue; /* ECONNABORTED, EINTR, EPROTO...: that peer left */
        kart_conn *c = NULL;
        if (err == 0) {
            kart__listener_note_peer(l, &peer, plen);
            err = kart_conn_from_fd(&c, fd, KART_CONN_READABLE | KART_CONN_WRITABLE);
            if (err == 0 && l->auth.authkey) {
                err = start_peer(l, c);
                if (err == 0)
                    continue;
            }
            if (err) {
                if (c)
                    kart_conn_close(c);
                else
                    close(fd);
                c = NULL;
            }
        }
        if (err)
            stop_io(l); /* out of a resource: the user decides when to retry */
        cb(l, err, c, arg);
        if (err)
            return;
    }
}

KART_API int kart_listener_accept_start(kart_listener *l, kart_loop *loop,
                                        kart_listener_accept_cb cb, void *arg)
{
    if (!l || !loop || !cb)
        return -EINVAL;
    if (l->acb || (l->loop && l->loop != loop))
        return -EBUSY;
    int err = 0;
    if (!l->loop) {
        /* The listening fd is non-blocking from its creation, so a peer
         * another accepter took never blocks the loop in accept(2). */
        err = kart_watch_init(loop, &l->io, l->fd);
        if (err)
            return err;
        l->loop = loop;
    }
    l->acb = cb;
    l->aarg = arg;
    err = kart_watch_start(&l->io, KART_READABLE, on_listen);
    if (err)
        l->acb = NULL;
    return err;
}

KART_API int kart_listener_accept_stop(kart_listener *l)
{
    if (!l)
        return -EINVAL;
    if (!l->loop)
        return 0;
    kart__listener_loop_stop(l);
    return 0;
}

void kart__listener_loop_stop(kart_listener *l)
{
    if (!l->loop)
        return;
    stop_io(l);
    while (l->peers) {
        kart__hs_peer *p = l->peers;
        unlink_peer(p);
        kart_timer_stop(&p->timer);
        if (p->step != DONE) {
            p->step = DONE;
            end_conn(p, true);
        } else if (p->c) {
            kart_conn_close(p->c); /* finished, not handed over yet */
        }
        free(p);
    }
    l->loop = NULL;
}

/*
 * core/io/io_deadline.c — the idle deadline of a socket
 * (kart_sock_set_idle_timeout, kart/io.h).
 *
 * A deadline that moves with every byte must not cost a system call, nor
 * even a timer-heap operation, per byte: a busy connection would pay for
 * its own defence. So the hot path (kart__idle_touch, called by core/io.c
 * when data is received or a send completes) only stores the loop's cached
 * time in `last`. One loop timer per socket is armed for last + timeout;
 * when it fires it re-checks: if there was activity since, it re-arms for
 * the time that is left (one heap operation per timeout period, however
 * many bytes moved), else the deadline has passed and the callback runs
 * once. 100,000 idle connections cost 100,000 timers in the loop's heap
 * (O(log n) each when armed), and nothing while traffic flows.
 *
 * The state lives in a small allocation the socket points to (idle_),
 * freed by kart_sock_close() or by removing the deadline: sockets that
 * never use it pay one NULL pointer.
 */
#include "io_private.h"

#include <stdlib.h>

struct kart__idle {
    kart_timer timer;
    kart_sock *sock;
    kart_sock_idle_cb cb;
    int64_t timeout;
    int64_t last; /* loop time of the last activity (or of the set) */
};

static void idle_fired(kart_timer *t)
{
    kart__idle *id = (kart__idle *)t;
    kart_sock *sock = id->sock;
    int64_t left = id->last + id->timeout - sock->base.loop->now;
    if (left > 0) {
        /* Traffic since the timer was armed: the deadline moved. On
         * -ENOMEM the timer stays stopped: fire now rather than never. */
        if (kart_timer_start(&id->timer, idle_fired, left, 0) == 0)
            return;
    }
    /* Once: the deadline is gone before the callback runs, so the callback
     * may set a new one, close the socket, or do nothing. */
    kart_sock_idle_cb cb = id->cb;
    sock->idle_ = NULL;
    free(id);
    cb(sock);
}

void kart__idle_touch(kart_sock *sock)
{
    sock->idle_->last = sock->base.loop->now;
}

void kart__idle_drop(kart_sock *sock)
{
    kart__idle *id = sock->idle_;
    if (!id)
        return;
    kart_timer_stop(&id->timer);
    sock->idle_ = NULL;
    free(id);
}

KART_API int kart_sock_set_idle_timeout(kart_sock *sock, int64_t timeout_ns, kart_sock_idle_cb cb)
{
    if (!sock || (timeout_ns >= 0 && !cb))
        return -EINVAL;
    if (sock->flags_ & KS_CLOSING)
        return -EPIPE;
    if (timeout_ns < 0) {
        kart__idle_drop(sock);
        return 0;
    }
    kart_loop *loop = sock->base.loop;
    kart__idle *id = sock->idle_;
    bool fresh = id == NULL;
    if (fresh) {
        id = kart__sys_calloc(1, sizeof(*id));
        if (!id)
            return -ENOMEM;
        kart_timer_init(loop, &id->timer);
        /* The deadline watches the socket's operations; it does not keep
         * the loop running by itself. */
        kart_handle_unref(&id->timer.base);
        id->sock = sock;
    }
    /* From the time of this call, not the loop's cached time, which is as
     * old as the loop turn (a server setting up many sockets outside the
     * loop would otherwise see them time out early): a clock read (vDSO),
     * once per call, not per byte. */
    int64_t now = kart_now_ns();
    int64_t lag = now - loop->now;
    if (lag < 0)
        lag = 0;
    int err = kart_timer_start(&id->timer, idle_fired,
                               timeout_ns > INT64_MAX - lag ? INT64_MAX : timeout_ns + lag, 0);
    if (err < 0) {
        /* kart_timer_start leaves the timer stopped: an old deadline is
         * gone too, which the header says. */
        if (fresh)
            free(id);
        else
            kart__idle_drop(sock);
        return err;
    }
    id->cb = cb;
    id->timeout = timeout_ns;
    id->last = now;
    sock->idle_ = id;
    return 0;
}

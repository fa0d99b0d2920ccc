/*
 * core/conn/conn_prefetch.c — a send that also waits for the answer's
 * first bytes, in one system call (conn_private.h: kart__conn_send_prefetch).
 *
 * A synchronous request/reply costs each side a send, a wait and a read:
 * three system calls per message with conn.c's blocking calls (the wait is
 * a poll(): see read_iov). On a paravirtualised VM a system call costs a
 * microsecond or more, a large part of a manager call's ~20 us. io_uring
 * does the three in one io_uring_enter: a send linked to a recv into the
 * read-ahead buffer, and a wait for the recv (which the kernel arms on the
 * socket's POLLIN wakeup, so the peer's reads do not wake it, as poll()).
 * The ring is the calling thread's own (IORING_SETUP_SINGLE_ISSUER and
 * DEFER_TASKRUN: completions run only in our io_uring_enter), made after a
 * few calls on the thread (short-lived threads and connections never pay
 * for one) and closed when the thread exits. Where io_uring is missing or
 * refused, and for everything but a small message on a blocking socket
 * with nothing buffered, it is kart__conn_send_dl.
 */
#include "conn_private.h"

#include <errno.h>
#include <string.h>

#if defined(KART_HAVE_URING) && defined(__linux__)

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>

/* Calls on a thread before it gets a ring. */
#define WARM_CALLS 4

typedef struct tring {
    struct io_uring ring;
    unsigned gen; /* fork_gen when made: a forked child's copy is not its own */
    uint64_t seq; /* the call's number, in its requests' user_data */
    uint8_t frame[KART__CONN_HDR_MAX + KART__CONN_COPY_MAX];
} tring;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static bool key_ok;
static _Atomic unsigned fork_gen;
/* the calling thread's ring; NULL: none yet (or none possible: `off`) */
static _Thread_local tring *mine;
static _Thread_local bool off;
static _Thread_local unsigned calls;

static void ring_free(void *arg)
{
    tring *t = arg;
    io_uring_queue_exit(&t->ring);
    free(t);
}

static void forked_child(void)
{
    atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void init_once(void)
{
    key_ok = pthread_key_create(&key, ring_free) == 0;
    pthread_atfork(NULL, NULL, forked_child);
}

/* The calling thread's ring, made on first need; NULL when io_uring is
 * unavailable here (not asked again on this thread). */
static tring *thread_ring(void)
{
    unsigned gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
    if (mine && mine->gen != gen) {
        /* inherited over fork(): unmapping and closing the child's copy
         * leaves the parent's ring alone */
        ring_free(mine);
        mine = NULL;
        if (key_ok)
            pthread_setspecific(key, NULL);
    }
    if (mine || off)
        return mine;
    pthread_once(&once, init_once);
    tring *t = key_ok ? calloc(1, sizeof *t) : NULL;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    if (!t || io_uring_queue_init_params(4, &t->ring, &p) < 0) {
        free(t);
        off = true;
        return NULL;
    }
    if (!(p.features & IORING_FEAT_CQE_SKIP) || pthread_setspecific(key, t) != 0) {
        ring_free(t);
        off = true;
        return NULL;
    }
    t->gen = gen;
    mine = t;
    return t;
}

/* Waits for the next completion, through signals. io_uring_enter fails
 * here only with EINTR (no CQ overflow with two requests in a ring of
 * four); the requests stay in flight until they complete, so giving up
 * would leave the kernel writing into the caller's buffer. */
static struct io_uring_cqe *next_cqe(tring *t)
{
    struct io_uring_cqe *cqe = NULL;
    while (io_uring_wait_cqe(&t->ring, &cqe) < 0 || !cqe)
        ;
    return cqe;
}

int kart__conn_send_prefetch(kart_conn *c, const void *buf, size_t len)
{
    if (!c || (!buf && len > 0) || len > KART__CONN_COPY_MAX || !c->is_socket || c->nonblock ||
        c->loop || (c->flags & KART_CONN_EXACT) || !(c->flags & KART_CONN_READABLE) ||
        c->state != KART__CONN_OK || c->have_len || c->receiving || !c->rbuf ||
        c->rend != c->rpos || kart__conn_can_send(c) != 0 || c->sq_head || calls++ < WARM_CALLS)
        return kart__conn_send_dl(c, buf, len, KART__NO_DEADLINE);
    tring *t = thread_ring();
    if (!t)
        return kart__conn_send_dl(c, buf, len, KART__NO_DEADLINE);
    size_t h = kart__frame_encode(t->frame, len);
    if (len)
        memcpy(t->frame + h, buf, len);
    c->rpos = c->rend = 0;
    uint64_t send_id = ++t->seq << 1, recv_id = send_id | 1;
    struct io_uring_sqe *s = io_uring_get_sqe(&t->ring);
    io_uring_prep_send(s, c->fd, t->frame, h + len, MSG_NOSIGNAL | MSG_WAITALL);
    s->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
    s->user_data = send_id;
    s = io_uring_get_sqe(&t->ring);
    io_uring_prep_recv(s, c->fd, c->rbuf, c->rcap, 0);
    s->user_data = recv_id;
    /* one io_uring_enter: both submitted, and the wait for a completion
     * (the recv's; the send posts one only if it fails) */
    int r = io_uring_submit_and_wait(&t->ring, 1);
    if (io_uring_sq_ready(&t->ring) == 2 && r != -EINTR) {
        /* the kernel took nothing (out of memory, say): this ring is given
         * up, with its queued requests, and the plain way taken */
        ring_free(t);
        mine = NULL;
        pthread_setspecific(key, NULL);
        off = true;
        return kart__conn_send_dl(c, buf, len, KART__NO_DEADLINE);
    }
    while (io_uring_sq_ready(&t->ring) > 0) /* interrupted: the rest must go in */
        io_uring_submit(&t->ring);
    /* The send posts a completion only if it failed (or was short), and
     * then the recv linked to it never runs and, the send being
     * CQE_SKIP_SUCCESS, posts none (Linux 6.x; one posted all the same is
     * told apart by its number and skipped, here or in a later call). */
    int sent = 0, got = 0;
    for (bool done = false; !done;) {
        struct io_uring_cqe *cqe = next_cqe(t);
        if (cqe->user_data == recv_id) {
            got = cqe->res;
            done = true;
        } else if (cqe->user_data == send_id) {
            sent = cqe->res < 0 ? cqe->res : -EPIPE; /* failed, or short */
            done = true;
        }
        io_uring_cqe_seen(&t->ring, cqe);
    }
    if (sent < 0)
        return kart__conn_abort(c, sent);
    /* nothing read (EOF, an error): the receive that follows reads again
     * and reports it */
    if (got > 0)
        c->rend = (size_t)got;
    return 0;
}

#else

int kart__conn_send_prefetch(kart_conn *c, const void *buf, size_t len)
{
    return kart__conn_send_dl(c, buf, len, KART__NO_DEADLINE);
}

#endif

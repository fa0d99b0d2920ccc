/*
 * uring/uring_sendrecv.c — a send and a receive in one system call
 * (core/conn/conn_private.h: kart__sendrecv_ops, used by
 * kart__conn_send_prefetch for a request/reply round trip).
 *
 * A send linked to a recv, submitted and waited for in one io_uring_enter
 * on the calling thread's own ring (IORING_SETUP_SINGLE_ISSUER and
 * DEFER_TASKRUN: completions run only in our io_uring_enter). The kernel
 * arms the recv on the socket's POLLIN wakeup, so the peer's reads of what
 * we sent do not wake it (a thread asleep in read() on a unix socket is).
 * The ring is made on the thread's first call, freed at the thread's exit,
 * and remade in a forked child (the inherited one is the parent's).
 */
#include "conn_private.h"
#include "fault.h"
#include "futex.h" /* KART__TSAN_ACQUIRE/RELEASE */

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef struct tring {
    struct io_uring ring;
    unsigned gen; /* fork_gen when made: a forked child's copy is not its own */
    uint64_t seq; /* the call's number, in its requests' user_data */
} tring;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static bool key_ok;
static _Atomic unsigned fork_gen;
/* the calling thread's ring; NULL: none yet, or none possible (`off`) */
static _Thread_local tring *mine;
static _Thread_local bool off;

/* liburing maps and unmaps a ring with its own system calls, which
 * ThreadSanitizer does not see: a ring made at the address of one that an
 * ended thread used would look like that thread's memory, written without
 * synchronization. The kernel orders the unmap before any reuse; these
 * annotations tell ThreadSanitizer so (release at every unmap, acquire at
 * every map), nothing more. */
static char ring_maps __attribute__((unused));

static void ring_free(void *arg)
{
    tring *t = arg;
    KART__TSAN_RELEASE(&ring_maps);
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

static void give_up(tring *t)
{
    ring_free(t);
    mine = NULL;
    pthread_setspecific(key, NULL);
    off = true;
}

/* The calling thread's ring, made on first need; NULL when io_uring is
 * unavailable here (not asked again on this thread). */
static tring *thread_ring(void)
{
    pthread_once(&once, init_once);
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
    tring *t = key_ok ? calloc(1, sizeof *t) : NULL;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    if (!t || kart__sys_io_uring_queue_init_params(4, &t->ring, &p) < 0) {
        free(t);
        off = true;
        return NULL;
    }
    KART__TSAN_ACQUIRE(&ring_maps);
    if (!(p.features & IORING_FEAT_CQE_SKIP) || pthread_setspecific(key, t) != 0) {
        ring_free(t);
        off = true;
        return NULL;
    }
    t->gen = gen;
    mine = t;
    return t;
}

/* The next completion, through signals. io_uring_enter fails here only
 * with EINTR (no CQ overflow with two requests in a ring of four); the
 * requests stay in flight until they complete, so giving up would leave
 * the kernel writing into the caller's buffer. */
static struct io_uring_cqe *next_cqe(tring *t)
{
    struct io_uring_cqe *cqe = NULL;
    while (kart__sys_io_uring_wait_cqe(&t->ring, &cqe) < 0 || !cqe)
        ;
    return cqe;
}

static int uring_send_recv(int fd, const void *out, size_t outlen, void *in, size_t incap,
                           int *sent, ssize_t *got)
{
    tring *t = thread_ring();
    if (!t)
        return -ENOTSUP;
    uint64_t send_id = ++t->seq << 1, recv_id = send_id | 1;
    struct io_uring_sqe *s = io_uring_get_sqe(&t->ring);
    io_uring_prep_send(s, fd, out, outlen, MSG_NOSIGNAL | MSG_WAITALL);
    s->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
    s->user_data = send_id;
    s = io_uring_get_sqe(&t->ring);
    io_uring_prep_recv(s, fd, in, incap, 0);
    s->user_data = recv_id;
    /* one io_uring_enter: both submitted, and the wait for a completion */
    int r = io_uring_submit_and_wait(&t->ring, 1);
    if (io_uring_sq_ready(&t->ring) == 2 && r != -EINTR) {
        /* the kernel took nothing (out of memory, say): this ring is given
         * up, with its queued requests; the caller takes the plain way */
        give_up(t);
        return -ENOTSUP;
    }
    while (io_uring_sq_ready(&t->ring) > 0) /* interrupted: the rest must go in */
        kart__sys_io_uring_submit(&t->ring);
    /* The send posts a completion only if it failed (or was short), and
     * then the recv linked to it never runs and, the send being
     * CQE_SKIP_SUCCESS, posts none (Linux 6.x; one posted all the same is
     * told apart by its number and skipped, here or in a later call). */
    *sent = 0;
    *got = 0;
    for (bool done = false; !done;) {
        struct io_uring_cqe *cqe = next_cqe(t);
        if (cqe->user_data == recv_id) {
            *got = cqe->res;
            done = true;
        } else if (cqe->user_data == send_id) {
            *sent = cqe->res < 0 ? cqe->res : -EPIPE; /* failed, or short */
            done = true;
        }
        io_uring_cqe_seen(&t->ring, cqe);
    }
    return 0;
}

const kart__sendrecv_ops kart__sendrecv_uring = {
    .name = "io_uring",
    .send_recv = uring_send_recv,
};

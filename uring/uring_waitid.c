/*
 * uring/uring_waitid.c — child-exit watching with IORING_OP_WAITID (6.7).
 *
 * Each watched child gets one WAITID request on the loop's ring, instead of
 * a pidfd (pidfd_open, a descriptor, and a poll on it). The request asks
 * for WEXITED | WNOWAIT and no siginfo: it completes when the child has
 * exited, the zombie stays, and child.c reaps it with waitid(P_PID) as on
 * its other paths, so the status is read the same way and a watcher
 * stopped as its child exits never reaps (and so never steals) it. With
 * no siginfo pointer the kernel writes nothing of ours, so a request that
 * outlives its watcher (cancelled, or cut off by the ring's close) holds
 * no memory the kernel could write into.
 *
 * A request is a small record on the ring's list (its user_data is the
 * record, kind KART__UDK_WAITID): the wait marks it done (uring.c's reap),
 * and the loop hands it to child.c after the callbacks of that wait. A
 * stopped watcher's record loses its child and is freed when its
 * cancelled completion comes, or when the ring is closed.
 */
#include "uring_private.h"
#include "uring_probe.h"

#include <kart/loop.h>
#include <stdlib.h>
#include <sys/wait.h>

struct kart__ur_waitid {
    struct kart_child *child; /* NULL once the watcher stopped */
    struct kart__ur_waitid *next;
    int res;
    bool done;
};

static uring_state *ring_of(kart_selector *sel)
{
    if (sel->ops != &kart__backend_uring || !sel->one_thread)
        return NULL;
    return sel->backend_state;
}

/* Whether an SQE can be had without entering the ring: one not yet
 * enabled belongs to the first thread that enters it (uring.c's enable),
 * which must be the loop's, not one that sets watchers up. */
static bool room(uring_state *st)
{
    return st->enabled || io_uring_sq_space_left(&st->ring) > 0;
}

int kart__ur_waitid_start(kart_selector *sel, struct kart_child *child)
{
    uring_state *st = ring_of(sel);
    if (!st || !kart__ur_has(KART__UR_WAITID) || !room(st))
        return -ENOTSUP;
    kart__ur_waitid *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    int err;
    struct io_uring_sqe *sqe = kart__ur_sqe(st, &err);
    if (!sqe) {
        free(w);
        return err;
    }
    /* liburing 2.4's io_uring_prep_waitid, written out: id in fd, idtype
     * in len, options in file_index, the siginfo pointer in addr2. */
    io_uring_prep_rw(IORING_OP_WAITID, sqe, (int)child->pid, NULL, P_PID, 0);
    sqe->file_index = WEXITED | WNOWAIT;
    io_uring_sqe_set_data64(sqe, KART__UD_OP | (uint64_t)(uintptr_t)w | KART__UDK_WAITID);
    w->child = child;
    w->next = st->waitids;
    st->waitids = w;
    return 0; /* submitted with the next wait */
}

void kart__ur_waitid_stop(kart_selector *sel, struct kart_child *child)
{
    uring_state *st = ring_of(sel);
    if (!st)
        return;
    for (kart__ur_waitid *w = st->waitids; w; w = w->next) {
        if (w->child != child)
            continue;
        w->child = NULL;
        if (!w->done && room(st)) {
            /* Without room for the cancel the request stays until the
             * child exits or the ring closes (WNOWAIT: it reaps nothing);
             * the record is freed then. */
            int err;
            struct io_uring_sqe *sqe = kart__ur_sqe(st, &err);
            if (sqe) {
                io_uring_prep_cancel64(sqe, KART__UD_OP | (uint64_t)(uintptr_t)w | KART__UDK_WAITID,
                                       0);
                io_uring_sqe_set_data64(sqe, 0);
            }
        }
        return;
    }
}

void kart__ur_waitid_done(uring_state *st, uint64_t ud, int res)
{
    kart__ur_waitid *w = (kart__ur_waitid *)(uintptr_t)(ud & ~(KART__UD_OP | KART__UDK_MASK));
    w->done = true;
    w->res = res;
    st->woken = true;
}

struct kart_child *kart__ur_waitid_next(kart_selector *sel, int *res)
{
    uring_state *st = ring_of(sel);
    if (!st)
        return NULL;
    for (kart__ur_waitid **p = &st->waitids; *p;) {
        kart__ur_waitid *w = *p;
        if (!w->done && room(st)) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        struct kart_child *c = w->child;
        *res = w->res;
        free(w);
        if (c)
            return c;
    }
    return NULL;
}

void kart__ur_waitid_fini(uring_state *st)
{
    while (st->waitids) {
        kart__ur_waitid *w = st->waitids;
        st->waitids = w->next;
        free(w);
    }
}

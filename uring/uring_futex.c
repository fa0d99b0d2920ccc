/*
 * uring/uring_futex.c — futex waits on the loop's ring with
 * IORING_OP_FUTEX_WAIT (6.7): a loop waits for a word another thread
 * changes (a kart future's state: core/loop/loop_future.c) without a
 * helper thread or an eventfd, and the waker needs nothing new: the
 * ordinary futex_wake(2) on the word completes the request.
 *
 * Each wait is a small record (its user_data is the record, kind
 * KART__UDK_FUTEX) on the ring's list; the reap moves a completed one to
 * the done list, which futex_next hands to the loop after the wait. The
 * kernel only reads the word (compares it with the value), so a request
 * that outlives its waiter holds no memory the kernel could write into;
 * the ring's close (io_uring_queue_exit) cancels what is left, and the
 * records are freed then.
 */
#include "uring_private.h"
#include "uring_probe.h"

#include <stdlib.h>

struct kart__ur_futex {
    void *tag; /* the waiter's; NULL once forgotten (futex_stop) */
    kart__ur_futex *prev, *next;
    kart__ur_futex *done_next;
    int res;
};

static uring_state *ring_of(kart_selector *sel)
{
    if (sel->ops != &kart__backend_uring || !sel->one_thread)
        return NULL;
    return sel->backend_state;
}

static void unlink_rec(uring_state *st, kart__ur_futex *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        st->futexes = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

int kart__ur_futex_start(kart_selector *sel, const _Atomic uint32_t *word, uint32_t val, void *tag)
{
    uring_state *st = ring_of(sel);
    /* A ring not yet enabled belongs to the first thread that enters it
     * (uring.c's enable): a full one cannot be submitted from here. */
    if (!st || !kart__ur_has(KART__UR_FUTEX_WAIT) ||
        (!st->enabled && io_uring_sq_space_left(&st->ring) == 0))
        return -ENOTSUP;
    if (!word)
        return 0; /* the question only */
    kart__ur_futex *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int err;
    struct io_uring_sqe *sqe = kart__ur_sqe(st, &err);
    if (!sqe) {
        free(r);
        return err;
    }
    /* liburing 2.5's io_uring_prep_futex_wait, written out: the futex2
     * flags in fd, the word in addr, the value in addr2 (off), the bitset
     * in addr3; futex_flags (op_flags) 0. */
    io_uring_prep_rw(IORING_OP_FUTEX_WAIT, sqe, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
                     (const void *)word, 0, val);
    sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
    io_uring_sqe_set_data64(sqe, KART__UD_OP | (uint64_t)(uintptr_t)r | KART__UDK_FUTEX);
    r->tag = tag;
    r->next = st->futexes;
    if (r->next)
        r->next->prev = r;
    st->futexes = r;
    return 0; /* submitted with the next wait */
}

void kart__ur_futex_stop(kart_selector *sel, void *tag)
{
    uring_state *st = ring_of(sel);
    if (!st)
        return;
    for (kart__ur_futex *r = st->futexes; r; r = r->next)
        if (!tag || r->tag == tag)
            r->tag = NULL;
    for (kart__ur_futex *r = st->futex_done; r; r = r->done_next)
        if (!tag || r->tag == tag)
            r->tag = NULL;
}

void kart__ur_futex_done(uring_state *st, uint64_t ud, int res)
{
    kart__ur_futex *r = (kart__ur_futex *)(uintptr_t)(ud & ~(KART__UD_OP | KART__UDK_MASK));
    r->res = res;
    unlink_rec(st, r);
    if (!r->tag) { /* forgotten: nobody wants it */
        free(r);
        return;
    }
    /* In completion order: the loop then delivers the futures done first
     * first (a stack reversed each reap's batch). */
    r->done_next = NULL;
    if (st->futex_done)
        st->futex_done_last->done_next = r;
    else
        st->futex_done = r;
    st->futex_done_last = r;
    st->woken = true;
}

void *kart__ur_futex_next(kart_selector *sel, int *res)
{
    uring_state *st = ring_of(sel);
    if (!st)
        return NULL;
    while (st->futex_done) {
        kart__ur_futex *r = st->futex_done;
        st->futex_done = r->done_next;
        void *tag = r->tag;
        *res = r->res;
        free(r);
        if (tag)
            return tag;
    }
    return NULL;
}

void kart__ur_futex_fini(uring_state *st)
{
    while (st->futexes) {
        kart__ur_futex *r = st->futexes;
        st->futexes = r->next;
        free(r);
    }
    while (st->futex_done) {
        kart__ur_futex *r = st->futex_done;
        st->futex_done = r->done_next;
        free(r);
    }
}

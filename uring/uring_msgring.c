/*
 * uring/uring_msgring.c — waking another loop's ring with
 * IORING_OP_MSG_RING (5.18) instead of writing its eventfd.
 *
 * A thread that runs an io_uring loop owns a ring. When it sends to an
 * async handle of another io_uring loop, it posts a completion straight
 * into that loop's ring: the waiting thread returns from io_uring_enter
 * with it, and neither reads an eventfd nor re-arms a poll on it. The
 * sender pays one io_uring_enter instead of one write(2). CQE_SKIP_SUCCESS
 * (5.17) keeps the sender's own ring free of the success completion; a
 * failure completes with user_data 0, which the sender's wait drops (the
 * target's ring is gone then, or its owner thread has exited).
 *
 * Only between rings that are owned: the sender's must be owned by this
 * thread (single-issuer, enabled) and the target's enabled, since the
 * kernel refuses to post to a disabled ring (-EBADFD) and the wake-up would
 * be lost. Threads without a ring, and bare selectors, keep the eventfd.
 */
#include "uring_private.h"
#include "uring_probe.h"
#include "futex.h"

#include <stdatomic.h>

int kart__ur_msg_wake(kart_selector *from, kart_selector *to)
{
    if (from == to || from->ops != &kart__backend_uring || to->ops != &kart__backend_uring ||
        !to->one_thread)
        return -ENOTSUP;
    uring_state *src = from->backend_state, *dst = to->backend_state;
    if (!src->single_issuer || !src->enabled ||
        !atomic_load_explicit(&dst->msg_ok, memory_order_acquire) ||
        !kart__ur_has(KART__UR_MSG_RING))
        return -ENOTSUP;
    int err;
    struct io_uring_sqe *sqe = kart__ur_sqe(src, &err);
    if (!sqe)
        return err;
    io_uring_prep_msg_ring(sqe, dst->ring.ring_fd, 0, KART__UD_WAKE, 0);
    /* The target sees this wake-up only after the submit below, as after an
     * eventfd write; ThreadSanitizer models the eventfd's ordering but not
     * the ring's, so say it (the target acquires in uring.c's reap). */
    KART__TSAN_RELEASE(dst);
    io_uring_sqe_set_data64(sqe, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    err = kart__ur_submit(src);
    return err < 0 ? err : 0;
}

/*
 * core/async.c — the cross-thread wake-ups: async handles and user events
 * (kqueue's EVFILT_USER, with its flags).
 *
 * A send (or trigger) sets the handle's pending flag and, only if it was
 * clear, sets the loop's "some async is pending" flag and wakes the
 * selector. So a burst of sends from many threads costs one write to the
 * wake-up fd, and an iteration in which nobody sent skips the scan of
 * async handles. A user event is an async handle that also carries flags:
 * its pending bit and flags share one word (USER_PENDING).
 *
 * Stopping (and so freeing the loop) against senders on other threads, as
 * libuv's uv__async_spin does it: each handle's word also holds a LIVE bit
 * (the handle is started: a send must wake the loop) and a BUSY count, the
 * senders inside kart_async_send() / kart_user_trigger() right now. A
 * sender raises BUSY in the same atomic step that sets the pending bit, so
 * the loop can never see a send whose sender is not yet counted; it reads
 * the loop pointer and wakes the loop only while counted, and drops the
 * count with a release. A stop clears LIVE first (a send that comes later
 * only marks the handle pending and never touches the loop), then waits
 * with acquire loads until BUSY is zero: every send that had begun is over,
 * and happens-before whatever the stopping thread does next (free the
 * handle, free the loop).
 */
#include "futex.h"
#include "loop_private.h"

#include <sched.h>

/* Wakes the loop's selector. From a thread running an io_uring loop, to
 * another io_uring loop, the wake-up is a completion posted into the
 * target's ring (io_uring's MSG_RING: the backend's wake_from): no eventfd to write,
 * read and re-arm. Everyone else writes the wake-up fd. */
static int wake(kart_loop *loop)
{
    kart_loop *mine = kart__running_loop;
    if (mine && mine != loop && mine->sel->ops->wake_from &&
        mine->sel->ops->wake_from(mine->sel, loop->sel) == 0)
        return 0;
    return kart_selector_wake(loop->sel);
}

/* Makes the loop look at its async handles: from any thread. A wake-up
 * that failed clears the loop's flag again: left set, it would make every
 * later send skip the wake-up, and the loop would sleep on with sends
 * pending (check-faults: an EIO on the eventfd's write). */
static int signal_loop(kart_loop *loop)
{
    if (atomic_exchange_explicit(&loop->async_signalled, 1, memory_order_acq_rel))
        return 0;
    int err = wake(loop);
    if (err < 0)
        atomic_store_explicit(&loop->async_signalled, 0, memory_order_release);
    return err;
}

/* A start finds a send made while the handle was stopped: it is delivered
 * as if it had just come (the scan that cleared the loop's flag passed the
 * handle by). */
static void resignal(kart_loop *loop, bool pending)
{
    if (pending && !atomic_exchange_explicit(&loop->async_signalled, 1, memory_order_acq_rel))
        wake(loop);
}

/* An async handle's word: pending, live, and the count of senders inside. */
#define ASYNC_PENDING UINT32_C(1)
#define ASYNC_LIVE UINT32_C(2)
#define ASYNC_BUSY_SHIFT 8
#define ASYNC_BUSY (UINT32_C(1) << ASYNC_BUSY_SHIFT)

/* A user event's state word: the pending bit above the 32 bits of flags,
 * set and taken in one atomic operation, so no trigger's flags are lost
 * or delivered twice; then the live bit and the senders inside. */
#define USER_PENDING (UINT64_C(1) << 32)
#define USER_LIVE (UINT64_C(1) << 33)
#define USER_FLAGS UINT64_C(0xffffffff)
#define USER_BUSY_SHIFT 40
#define USER_BUSY (UINT64_C(1) << USER_BUSY_SHIFT)

/* One more wait for the senders still inside a handle (its BUSY count):
 * spins a while (a send is a few atomic operations and at most one
 * write), then yields, for a sender preempted while counted. */
static void backoff(unsigned *spins)
{
    if ((*spins)++ < 1000)
        kart__cpu_relax();
    else
        sched_yield();
}

KART_API int kart_async_init(kart_loop *loop, kart_async *async)
{
    if (!loop || !async)
        return -EINVAL;
    kart__handle_init(&async->base, loop, KART_HANDLE_ASYNC);
    atomic_init(&async->pending_, 0);
    async->cb_ = NULL;
    async->next_ = NULL;
    return 0;
}

KART_API int kart_async_start(kart_async *async, kart_async_cb cb)
{
    if (!async || !cb)
        return -EINVAL;
    async->cb_ = cb;
    if (kart__handle_active(&async->base))
        return 0;
    kart_loop *loop = async->base.loop;
    async->next_ = loop->asyncs;
    loop->asyncs = async;
    kart__handle_start(&async->base);
    uint32_t old = atomic_fetch_or_explicit(&async->pending_, ASYNC_LIVE, memory_order_acq_rel);
    resignal(loop, (old & ASYNC_PENDING) != 0);
    return 0;
}

KART_API int kart_async_send(kart_async *async)
{
    if (!async)
        return -EINVAL;
    /* Counted and pending in one step: see the top of the file. */
    uint32_t old = atomic_load_explicit(&async->pending_, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&async->pending_, &old,
                                                  (old | ASYNC_PENDING) + ASYNC_BUSY,
                                                  memory_order_acq_rel, memory_order_relaxed))
        ;
    int err = 0;
    /* Coalesced into a send still pending, or stopped: the start delivers it. */
    if (!(old & ASYNC_PENDING) && (old & ASYNC_LIVE))
        err = signal_loop(async->base.loop);
    /* Not woken: the send is taken back, so that the caller's retry writes
     * again (sends coalesced into it meanwhile go with the retry). */
    if (err < 0)
        atomic_fetch_and_explicit(&async->pending_, ~ASYNC_PENDING, memory_order_relaxed);
    atomic_fetch_sub_explicit(&async->pending_, ASYNC_BUSY, memory_order_release);
    return err;
}

KART_API int kart_async_stop(kart_async *async)
{
    if (!async)
        return -EINVAL;
    atomic_fetch_and_explicit(&async->pending_, ~ASYNC_LIVE, memory_order_acq_rel);
    /* Acquire: what the senders did while counted happens-before our next step. */
    for (unsigned n = 0;
         atomic_load_explicit(&async->pending_, memory_order_acquire) >> ASYNC_BUSY_SHIFT;)
        backoff(&n);
    if (!kart__handle_active(&async->base))
        return 0;
    kart_loop *loop = async->base.loop;
    if (loop->async_cursor == async)
        loop->async_cursor = async->next_;
    for (kart_async **p = &loop->asyncs; *p; p = &(*p)->next_)
        if (*p == async) {
            *p = async->next_;
            break;
        }
    kart__handle_stop(&async->base);
    return 0;
}

/* ---- user events ---- */

KART_API int kart_user_init(kart_loop *loop, kart_user *user)
{
    if (!loop || !user)
        return -EINVAL;
    kart__handle_init(&user->base, loop, KART_HANDLE_USER);
    atomic_init(&user->state_, 0);
    user->cb_ = NULL;
    user->next_ = NULL;
    return 0;
}

KART_API int kart_user_start(kart_user *user, kart_user_cb cb)
{
    if (!user || !cb)
        return -EINVAL;
    user->cb_ = cb;
    if (kart__handle_active(&user->base))
        return 0;
    kart_loop *loop = user->base.loop;
    user->next_ = loop->users;
    loop->users = user;
    kart__handle_start(&user->base);
    uint64_t old = atomic_fetch_or_explicit(&user->state_, USER_LIVE, memory_order_acq_rel);
    resignal(loop, (old & USER_PENDING) != 0);
    return 0;
}

KART_API int kart_user_trigger(kart_user *user, unsigned fflags)
{
    if (!user)
        return -EINVAL;
    /* Counted, pending and flagged in one step: see the top of the file. */
    uint64_t old = atomic_load_explicit(&user->state_, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&user->state_, &old,
                                                  (old | USER_PENDING | fflags) + USER_BUSY,
                                                  memory_order_acq_rel, memory_order_relaxed))
        ;
    int err = 0;
    /* Coalesced into a trigger still pending, or stopped: the start delivers it. */
    if (!(old & USER_PENDING) && (old & USER_LIVE))
        err = signal_loop(user->base.loop);
    if (err < 0) /* as in kart_async_send; the flags stay for the retry */
        atomic_fetch_and_explicit(&user->state_, ~USER_PENDING, memory_order_relaxed);
    atomic_fetch_sub_explicit(&user->state_, USER_BUSY, memory_order_release);
    return err;
}

KART_API int kart_user_stop(kart_user *user)
{
    if (!user)
        return -EINVAL;
    atomic_fetch_and_explicit(&user->state_, ~USER_LIVE, memory_order_acq_rel);
    for (unsigned n = 0;
         atomic_load_explicit(&user->state_, memory_order_acquire) >> USER_BUSY_SHIFT;)
        backoff(&n);
    if (!kart__handle_active(&user->base))
        return 0;
    kart_loop *loop = user->base.loop;
    if (loop->user_cursor == user)
        loop->user_cursor = user->next_;
    for (kart_user **p = &loop->users; *p; p = &(*p)->next_)
        if (*p == user) {
            *p = user->next_;
            break;
        }
    kart__handle_stop(&user->base);
    return 0;
}

void kart__asyncs_dispatch(kart_loop *loop)
{
    for (kart_async *a = loop->asyncs; a; a = loop->async_cursor) {
        loop->async_cursor = a->next_;
        if (atomic_fetch_and_explicit(&a->pending_, ~ASYNC_PENDING, memory_order_acq_rel) &
            ASYNC_PENDING)
            a->cb_(a);
    }
    loop->async_cursor = NULL;
    for (kart_user *u = loop->users; u; u = loop->user_cursor) {
        loop->user_cursor = u->next_;
        uint64_t st = atomic_fetch_and_explicit(&u->state_, ~(USER_PENDING | USER_FLAGS),
                                                memory_order_acq_rel);
        if (st & USER_PENDING)
            u->cb_(u, (unsigned)st);
    }
    loop->user_cursor = NULL;
}

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
 */
#include "loop_private.h"

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

/* Makes the loop look at its async handles: from any thread. */
static int signal_loop(kart_loop *loop)
{
    if (atomic_exchange_explicit(&loop->async_signalled, 1, memory_order_acq_rel))
        return 0;
    return wake(loop);
}

/* A start finds a send made while the handle was stopped: it is delivered
 * as if it had just come (the scan that cleared the loop's flag passed the
 * handle by). */
static void resignal(kart_loop *loop, bool pending)
{
    if (pending && !atomic_exchange_explicit(&loop->async_signalled, 1, memory_order_acq_rel))
        wake(loop);
}

/* A user event's state word: the pending bit above the 32 bits of flags,
 * set and taken in one atomic operation, so no trigger's flags are lost
 * or delivered twice. */
#define USER_PENDING (UINT64_C(1) << 32)

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
    resignal(loop, atomic_load_explicit(&async->pending_, memory_order_acquire) != 0);
    return 0;
}

KART_API int kart_async_send(kart_async *async)
{
    if (!async)
        return -EINVAL;
    if (atomic_exchange_explicit(&async->pending_, 1, memory_order_acq_rel))
        return 0; /* coalesced into the send that is still pending */
    return signal_loop(async->base.loop);
}

KART_API int kart_async_stop(kart_async *async)
{
    if (!async)
        return -EINVAL;
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
    resignal(loop, (atomic_load_explicit(&user->state_, memory_order_acquire) & USER_PENDING) != 0);
    return 0;
}

KART_API int kart_user_trigger(kart_user *user, unsigned fflags)
{
    if (!user)
        return -EINVAL;
    uint64_t old =
        atomic_fetch_or_explicit(&user->state_, USER_PENDING | fflags, memory_order_acq_rel);
    if (old & USER_PENDING)
        return 0; /* coalesced into the trigger that is still pending */
    return signal_loop(user->base.loop);
}

KART_API int kart_user_stop(kart_user *user)
{
    if (!user)
        return -EINVAL;
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
        if (atomic_exchange_explicit(&a->pending_, 0, memory_order_acq_rel))
            a->cb_(a);
    }
    loop->async_cursor = NULL;
    for (kart_user *u = loop->users; u; u = loop->user_cursor) {
        loop->user_cursor = u->next_;
        uint64_t st = atomic_exchange_explicit(&u->state_, 0, memory_order_acq_rel);
        if (st & USER_PENDING)
            u->cb_(u, (unsigned)st);
    }
    loop->user_cursor = NULL;
}

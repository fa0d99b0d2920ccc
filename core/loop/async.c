/*
 * core/async.c — the cross-thread wake-up handle.
 *
 * A send sets the handle's pending flag and, only if it was clear, sets
 * the loop's "some async is pending" flag and wakes the selector. So a
 * burst of sends from many threads costs one write to the wake-up fd, and
 * an iteration in which nobody sent skips the scan of async handles.
 */
#include "loop_private.h"

KART_API int kart_async_init(kart_loop *loop, kart_async *async, kart_async_cb cb)
{
    if (!loop || !async || !cb)
        return -EINVAL;
    kart__handle_init(&async->base, loop, KART_HANDLE_ASYNC);
    atomic_init(&async->pending_, 0);
    async->cb_ = cb;
    async->next_ = loop->asyncs;
    loop->asyncs = async;
    kart__handle_start(&async->base);
    return 0;
}

KART_API int kart_async_send(kart_async *async)
{
    if (!async)
        return -EINVAL;
    if (atomic_exchange_explicit(&async->pending_, 1, memory_order_acq_rel))
        return 0; /* coalesced into the send that is still pending */
    kart_loop *loop = async->base.loop;
    if (atomic_exchange_explicit(&loop->async_signalled, 1, memory_order_acq_rel))
        return 0;
    return kart_selector_wake(loop->sel);
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

void kart__asyncs_dispatch(kart_loop *loop)
{
    for (kart_async *a = loop->asyncs; a; a = loop->async_cursor) {
        loop->async_cursor = a->next_;
        if (atomic_exchange_explicit(&a->pending_, 0, memory_order_acq_rel))
            a->cb_(a);
    }
    loop->async_cursor = NULL;
}

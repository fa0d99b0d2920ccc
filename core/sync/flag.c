/*
 * core/flag.c — Event (kart_flag) on one futex word whose bit 0 is the
 * flag and whose other bits count the sets. Clearing leaves the count, so
 * a waiter that saw the word clear only has to see the word change to
 * know that a set happened since: it returns even when the flag was
 * cleared again before it ran, as Python's Event does, instead of
 * sleeping through a set-then-clear pulse.
 */
#include "deadline.h"
#include "futex.h"

#include <kart/sync.h>

#define FLAG_SET 1u

KART_API int kart_flag_init(kart_flag *flag, unsigned flags)
{
    if (!flag || (flags & ~KART_SYNC_SHARED))
        return -EINVAL;
    atomic_init(&flag->word_, 0);
    atomic_init(&flag->waiters_, 0);
    flag->flags_ = flags;
    return 0;
}

KART_API int kart_flag_set(kart_flag *flag)
{
    if (!flag)
        return -EINVAL;
    KART__TSAN_RELEASE(flag);
    uint32_t w = atomic_load_explicit(&flag->word_, memory_order_relaxed);
    do {
        if (w & FLAG_SET)
            return 0;
    } while (!atomic_compare_exchange_weak(&flag->word_, &w, (w + 2) | FLAG_SET));
    if (atomic_load(&flag->waiters_))
        kart__futex_wake(&flag->word_, INT32_MAX, flag->flags_ & KART_SYNC_SHARED);
    return 0;
}

KART_API int kart_flag_clear(kart_flag *flag)
{
    if (!flag)
        return -EINVAL;
    atomic_fetch_and(&flag->word_, ~FLAG_SET);
    return 0;
}

KART_API int kart_flag_is_set(const kart_flag *flag)
{
    if (!flag)
        return -EINVAL;
    if (!(atomic_load_explicit(&flag->word_, memory_order_acquire) & FLAG_SET))
        return 0;
    KART__TSAN_ACQUIRE(flag);
    return 1;
}

KART_API int kart_flag_wait(kart_flag *flag, int64_t timeout_ns)
{
    if (!flag)
        return -EINVAL;
    uint32_t seen = atomic_load_explicit(&flag->word_, memory_order_acquire);
    if (!(seen & FLAG_SET)) {
        if (timeout_ns == 0)
            return -ETIMEDOUT;
        int64_t deadline = kart__deadline(timeout_ns);
        bool shared = flag->flags_ & KART_SYNC_SHARED;
        /* seen is clear, and clearing a clear word leaves it as it is:
         * any change is a set. */
        for (kart__spin sp = {0, 0}; kart__spin_next(&sp);)
            if (atomic_load_explicit(&flag->word_, memory_order_acquire) != seen)
                goto done;
        for (;;) {
            atomic_fetch_add(&flag->waiters_, 1);
            int r = kart__futex_wait(&flag->word_, seen, deadline, shared);
            atomic_fetch_sub(&flag->waiters_, 1);
            if (atomic_load_explicit(&flag->word_, memory_order_acquire) != seen)
                break;
            if (r == -ETIMEDOUT)
                return -ETIMEDOUT;
        }
    }
done:
    KART__TSAN_ACQUIRE(flag);
    return 0;
}

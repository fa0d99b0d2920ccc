/*
 * core/sem.c — Semaphore and BoundedSemaphore on one futex word: the value
 * itself. Taking a unit is a compare-and-swap while the value is above 0;
 * a thread finding it at 0 counts itself in waiters_ and sleeps on the
 * value being 0, so a release that raises it either sees the sleeper in
 * waiters_ and wakes it, or the sleeper's futex_wait sees the new value
 * and does not sleep (both sides order their two steps with seq_cst).
 * An unbounded semaphore is one bounded at INT32_MAX, so one
 * compare-and-swap loop serves both kinds and nothing ever wraps.
 */
#include "deadline.h"
#include "futex.h"

#include <kart/sync.h>

static bool is_shared(const kart_sem *sem)
{
    return sem->flags_ & KART_SYNC_SHARED;
}

static int sem_setup(kart_sem *sem, size_t value, unsigned flags, uint32_t bound)
{
    if (!sem || value > KART_SEM_VALUE_MAX || (flags & ~KART_SYNC_SHARED))
        return -EINVAL;
    atomic_init(&sem->value_, (uint32_t)value);
    atomic_init(&sem->waiters_, 0);
    sem->flags_ = flags;
    sem->bound_ = bound;
    return 0;
}

KART_API int kart_sem_init(kart_sem *sem, size_t value, unsigned flags)
{
    return sem_setup(sem, value, flags, INT32_MAX);
}

KART_API int kart_sem_init_bounded(kart_sem *sem, size_t value, unsigned flags)
{
    return sem_setup(sem, value, flags, (uint32_t)value);
}

static bool try_take(kart_sem *sem)
{
    uint32_t v = atomic_load_explicit(&sem->value_, memory_order_relaxed);
    while (v > 0)
        if (atomic_compare_exchange_weak_explicit(&sem->value_, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

KART_API int kart_sem_acquire(kart_sem *sem, int64_t timeout_ns)
{
    if (!sem)
        return -EINVAL;
    if (!try_take(sem)) {
        if (timeout_ns == 0)
            return -ETIMEDOUT;
        int64_t deadline = kart__deadline(timeout_ns);
        for (kart__spin sp = {0, 0}; kart__spin_next(&sp);) {
            if (try_take(sem))
                goto taken;
        }
        for (;;) {
            atomic_fetch_add(&sem->waiters_, 1);
            int r = kart__futex_wait(&sem->value_, 0, deadline, is_shared(sem));
            atomic_fetch_sub(&sem->waiters_, 1);
            /* Woken, spuriously or not, or out of time: a unit that is
             * there now is still ours to take. */
            if (try_take(sem))
                break;
            if (r == -ETIMEDOUT)
                return -ETIMEDOUT;
        }
    }
taken:
    KART__TSAN_ACQUIRE(sem);
    return 0;
}

KART_API int kart_sem_release(kart_sem *sem, size_t n)
{
    if (!sem || n < 1)
        return -EINVAL;
    /* Past the largest bound, n overflows whatever the value. */
    if (n > KART_SEM_VALUE_MAX)
        return -EOVERFLOW;
    /* Before the value rises: an acquirer may take the unit at once. */
    KART__TSAN_RELEASE(sem);
    uint32_t v = atomic_load_explicit(&sem->value_, memory_order_relaxed);
    do {
        if ((uint32_t)n > sem->bound_ - v)
            return -EOVERFLOW;
    } while (!atomic_compare_exchange_weak(&sem->value_, &v, v + (uint32_t)n));
    /* A woken sleeper that loses its unit to a thread that never slept
     * just sleeps again: someone took the unit, so no wake-up is lost. */
    uint32_t w = atomic_load(&sem->waiters_);
    if (w)
        kart__futex_wake(&sem->value_, (uint32_t)n < w ? (int)n : (int)w, is_shared(sem));
    return 0;
}

KART_API int kart_sem_value(const kart_sem *sem)
{
    if (!sem)
        return -EINVAL;
    return (int)atomic_load_explicit(&sem->value_, memory_order_relaxed);
}

/*
 * core/cond.c — Condition (threading.Condition) over a kart_lock or, as
 * Python's default Condition, over a kart_rlock.
 *
 * The condition is a sequence number. A waiter reads it while it still
 * holds the lock, releases the lock, and sleeps only while the number is
 * unchanged; a notifier, which must hold the same lock, bumps it before
 * waking anyone. So a notify that comes between the release and the sleep
 * is never lost: the kernel sees the changed number and refuses to sleep.
 * A waiter count, also kept under the lock, lets a notify with nobody
 * waiting skip the system call.
 *
 * Waiters woken together then queue on the lock one by one (no requeue):
 * simpler, and the lock's own acquire is what makes this work unchanged
 * with robust and process-shared locks.
 */
#include "deadline.h"
#include "futex.h"

#include <errno.h>
#include <kart/sync.h>

KART_API int kart_cond_init(kart_cond *cond, unsigned flags)
{
    if (!cond || (flags & ~KART_SYNC_SHARED))
        return -EINVAL;
    atomic_init(&cond->seq_, 0);
    atomic_init(&cond->waiters_, 0);
    cond->flags_ = flags;
    return 0;
}

/* Takes the lock back after a wait, however long it takes: the caller
 * must hold it again when kart_cond_wait returns. Only a robust lock can
 * fail here (-EOWNERDEAD, held; -ENOTRECOVERABLE, not held). */
static int reacquire(kart_lock *lock)
{
    return kart_lock_acquire(lock, -1);
}

KART_API int kart_cond_wait(kart_cond *cond, kart_lock *lock, int64_t timeout_ns)
{
    if (!cond || !lock)
        return -EINVAL;
    if (kart_lock_held_by_me(lock) != 1)
        return -EPERM;
    int64_t deadline = kart__deadline(timeout_ns);
    uint32_t seq = atomic_load_explicit(&cond->seq_, memory_order_relaxed);
    atomic_fetch_add_explicit(&cond->waiters_, 1, memory_order_relaxed);
    int r = kart_lock_release(lock);
    if (r) {
        atomic_fetch_sub_explicit(&cond->waiters_, 1, memory_order_relaxed);
        return r;
    }
    bool shared = cond->flags_ & KART_SYNC_SHARED;
    /* A notify often follows within microseconds (a ping-pong): look for
     * it briefly before paying for a sleep. */
    for (kart__spin sp = {0, 0}; kart__spin_next(&sp);)
        if (atomic_load_explicit(&cond->seq_, memory_order_relaxed) != seq)
            break;
    /* Sleep until a notify moves seq_ on or the deadline passes: a wake-up
     * that left seq_ alone (EINTR, a spurious futex return, the sliced
     * shared waits of the parking-lot fallback) goes back to sleep. */
    do
        r = kart__futex_wait(&cond->seq_, seq, deadline, shared);
    while (r == -EINTR ||
           (r == 0 && atomic_load_explicit(&cond->seq_, memory_order_relaxed) == seq));
    atomic_fetch_sub_explicit(&cond->waiters_, 1, memory_order_relaxed);
    /* A notify that raced with the timeout counts as a notify. */
    bool timed_out =
        r == -ETIMEDOUT && atomic_load_explicit(&cond->seq_, memory_order_relaxed) == seq;
    KART__TSAN_ACQUIRE(cond);
    int a = reacquire(lock);
    if (a)
        return a;
    return timed_out ? -ETIMEDOUT : 0;
}

/* Python's Condition over an RLock: the wait releases every level of the
 * caller's hold (RLock._release_save) and restores the depth once the
 * lock is held again. depth_ is written only by the holder, so it is
 * zeroed before the release and set back after the re-acquire. */
KART_API int kart_cond_wait_rlock(kart_cond *cond, kart_rlock *rlock, int64_t timeout_ns)
{
    if (!cond || !rlock)
        return -EINVAL;
    if (kart_lock_held_by_me(&rlock->lock_) != 1)
        return -EPERM;
    uint32_t depth = atomic_load_explicit(&rlock->depth_, memory_order_relaxed);
    atomic_store_explicit(&rlock->depth_, 0, memory_order_relaxed);
    int r = kart_cond_wait(cond, &rlock->lock_, timeout_ns);
    if (kart_lock_held_by_me(&rlock->lock_) == 1)
        atomic_store_explicit(&rlock->depth_, depth, memory_order_relaxed);
    return r;
}

/* The predicate loop of both wait_for forms: exactly one of lock and
 * rlock is set. */
static int wait_for(kart_cond *cond, kart_lock *lock, kart_rlock *rlock, bool (*pred)(void *arg),
                    void *arg, int64_t timeout_ns)
{
    if (kart_lock_held_by_me(lock ? lock : &rlock->lock_) != 1)
        return -EPERM;
    int64_t deadline = kart__deadline(timeout_ns);
    while (!pred(arg)) {
        int64_t left = kart__time_left(deadline);
        if (left == 0)
            return -ETIMEDOUT;
        int r = lock ? kart_cond_wait(cond, lock, left) : kart_cond_wait_rlock(cond, rlock, left);
        if (r && r != -ETIMEDOUT)
            return r;
    }
    return 0;
}

KART_API int kart_cond_wait_for(kart_cond *cond, kart_lock *lock, bool (*pred)(void *arg),
                                void *arg, int64_t timeout_ns)
{
    if (!cond || !lock || !pred)
        return -EINVAL;
    return wait_for(cond, lock, NULL, pred, arg, timeout_ns);
}

KART_API int kart_cond_wait_for_rlock(kart_cond *cond, kart_rlock *rlock, bool (*pred)(void *arg),
                                      void *arg, int64_t timeout_ns)
{
    if (!cond || !rlock || !pred)
        return -EINVAL;
    return wait_for(cond, NULL, rlock, pred, arg, timeout_ns);
}

static int notify(kart_cond *cond, kart_lock *lock, size_t n)
{
    if (kart_lock_held_by_me(lock) != 1)
        return -EPERM;
    KART__TSAN_RELEASE(cond);
    atomic_fetch_add_explicit(&cond->seq_, 1, memory_order_relaxed);
    if (atomic_load_explicit(&cond->waiters_, memory_order_relaxed))
        kart__futex_wake(&cond->seq_, n > INT32_MAX ? INT32_MAX : (int)n,
                         cond->flags_ & KART_SYNC_SHARED);
    return 0;
}

KART_API int kart_cond_notify(kart_cond *cond, kart_lock *lock, size_t n)
{
    if (!cond || !lock || n < 1)
        return -EINVAL;
    return notify(cond, lock, n);
}

KART_API int kart_cond_notify_rlock(kart_cond *cond, kart_rlock *rlock, size_t n)
{
    if (!cond || !rlock || n < 1)
        return -EINVAL;
    return notify(cond, &rlock->lock_, n);
}

KART_API int kart_cond_notify_all_rlock(kart_cond *cond, kart_rlock *rlock)
{
    if (!cond || !rlock)
        return -EINVAL;
    return notify(cond, &rlock->lock_, INT32_MAX);
}

KART_API int kart_cond_notify_all(kart_cond *cond, kart_lock *lock)
{
    if (!cond || !lock)
        return -EINVAL;
    return notify(cond, lock, INT32_MAX);
}

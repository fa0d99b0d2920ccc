/*
 * core/lock.c — Lock and RLock (threading.Lock, threading.RLock).
 *
 * A plain lock is Drepper's futex mutex ("Futexes Are Tricky", mutex 3):
 * one word that is 0 when free, 1 when held and 2 when held with possible
 * sleepers, so that an uncontended acquire is one compare-and-swap and an
 * uncontended release one exchange, with no system call either way.
 *
 * A robust lock is the C library's robust mutex instead. The one clever
 * idea of this file is not writing our own: the kernel keeps a single
 * robust-list head per thread (set_robust_list), and glibc has already
 * registered its own there for every thread, so a second list is
 * impossible and sharing glibc's would mean writing into its private
 * layout. Its robust, error-checking mutex gives the owner-died and
 * not-recoverable protocol, -EDEADLK on relocking and -EPERM on release
 * by another thread, and pthread_mutex_clocklock (glibc 2.30) waits on
 * CLOCK_MONOTONIC like everything else here.
 *
 * Both kinds keep word_ (0 free, non-zero held) and owner_ (the holder's
 * kernel thread id) so that kart_lock_locked(), the RLock and the
 * Condition can ask who holds a lock without knowing which kind it is.
 * owner_ is written only while the lock is held: after acquiring, and
 * cleared before releasing, so a thread that reads its own id there holds
 * the lock.
 */
#include "deadline.h"
#include "futex.h"
#include "robust_mutex.h"

#include <errno.h>
#include <kart/sync.h>
#include <limits.h>
#include <time.h>

#define LOCK_FLAGS (KART_SYNC_SHARED | KART_SYNC_ROBUST)
/* Keeps the rare cases out of the fast paths' straight line. */
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* state_ of a robust lock, as glibc keeps it in its own private fields. */
enum { CONSISTENT, INCONSISTENT, UNRECOVERABLE };

static bool is_robust(const kart_lock *lock)
{
    return lock->flags_ & KART_SYNC_ROBUST;
}

int kart__robust_mutex_init(pthread_mutex_t *m, bool shared)
{
    pthread_mutexattr_t attr;
    int r = pthread_mutexattr_init(&attr);
    if (r)
        return -r;
    /* Error-checking, so that the holder relocking gets EDEADLK instead of
     * hanging, and another thread unlocking gets EPERM. */
    r = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    if (!r)
        r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (!r && shared)
        r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (!r)
        r = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return -r;
}

static int robust_init(kart_lock *lock, unsigned flags)
{
    return kart__robust_mutex_init(&lock->robust_, flags & KART_SYNC_SHARED);
}

KART_API int kart_lock_init(kart_lock *lock, unsigned flags)
{
    if (!lock || (flags & ~LOCK_FLAGS))
        return -EINVAL;
    atomic_init(&lock->word_, 0);
    atomic_init(&lock->owner_, 0);
    atomic_init(&lock->state_, CONSISTENT);
    lock->flags_ = flags;
    return (flags & KART_SYNC_ROBUST) ? robust_init(lock, flags) : 0;
}

KART_API void kart_lock_destroy(kart_lock *lock)
{
    if (!lock || !is_robust(lock))
        return;
    /* A hold of the caller's is let go first: destroying a locked mutex
     * is undefined. Another thread's hold cannot be (glibc does not refuse
     * the destroy of a held robust mutex; it only marks it unusable). */
    if (atomic_load_explicit(&lock->owner_, memory_order_relaxed) == kart__tid()) {
        atomic_store_explicit(&lock->owner_, 0, memory_order_relaxed);
        atomic_store_explicit(&lock->word_, 0, memory_order_relaxed);
        KART__TSAN_RELEASE(lock);
        pthread_mutex_unlock(&lock->robust_);
    }
    pthread_mutex_destroy(&lock->robust_);
}

/* The holder records itself, and tells ThreadSanitizer about the ordering
 * a futex wake-up gives but it cannot see. */
static void mark_held(kart_lock *lock)
{
    atomic_store_explicit(&lock->owner_, kart__tid(), memory_order_relaxed);
    KART__TSAN_ACQUIRE(lock);
}

#ifndef KART__TSAN
/* A try is a timed lock whose deadline has passed, not
 * pthread_mutex_trylock: glibc's trylock (2.36 at least) answers
 * ENOTRECOVERABLE but leaves the mutex locked by the caller, off its
 * robust list, so that every other thread and process would then wait on
 * it forever. clocklock unlocks it before answering. */
static int timed_lock(pthread_mutex_t *m, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns ? kart__deadline(timeout_ns) : 0;
    struct timespec ts = kart__timespec(deadline);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 30)
    int r = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
#else
    /* Elsewhere only the realtime clock is offered: convert the time left. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ts = kart__timespec(kart__timespec_ns(now) + kart__time_left(deadline));
    int r = pthread_mutex_timedlock(m, &ts);
#endif
    return r;
}
#else
/* ThreadSanitizer's runtimes miss what pthread_mutex_clocklock does (gcc
 * 12's libtsan does not intercept it; none records an EOWNERDEAD from a
 * timed lock) and then report our unlock as one of an unlocked mutex.
 * Under TSan only, a timed acquire polls pthread_mutex_trylock, which
 * they all understand; state_ keeps it off glibc's trylock bug. */
static int timed_lock(pthread_mutex_t *m, int64_t timeout_ns)
{
    int64_t deadline = kart__deadline(timeout_ns);
    for (;;) {
        int r = pthread_mutex_trylock(m);
        if (r != EBUSY)
            return r;
        if (kart_now_ns() >= deadline)
            return ETIMEDOUT;
        struct timespec nap = {.tv_nsec = 50000};
        nanosleep(&nap, NULL);
    }
}
#endif

__attribute__((noinline)) static int robust_acquire(kart_lock *lock, int64_t timeout_ns)
{
    /* Once unrecoverable, the C library is not asked again (see
     * timed_lock). */
    if (atomic_load_explicit(&lock->state_, memory_order_acquire) == UNRECOVERABLE)
        return -ENOTRECOVERABLE;
    int r = timeout_ns < 0 ? pthread_mutex_lock(&lock->robust_)
                           : timed_lock(&lock->robust_, timeout_ns);
    if (r != 0 && r != EOWNERDEAD)
        return -r;
    if (r == EOWNERDEAD)
        atomic_store_explicit(&lock->state_, INCONSISTENT, memory_order_relaxed);
    atomic_store_explicit(&lock->word_, 1, memory_order_relaxed);
    mark_held(lock);
    return -r;
}

/* The contended path: spin a little in case the holder is about to
 * release, then mark the word 2 ("someone sleeps") and sleep until the
 * exchange finds it free. Taking the lock as 2 rather than 1 may cost the
 * next release one needless wake-up, never a missed one. */
static int acquire_slow(kart_lock *lock, int64_t timeout_ns)
{
    if (atomic_load_explicit(&lock->owner_, memory_order_relaxed) == kart__tid())
        return -EDEADLK;
    if (timeout_ns == 0)
        return -ETIMEDOUT;
    int64_t deadline = kart__deadline(timeout_ns);
    for (kart__spin sp = {0, 0}; kart__spin_next(&sp);) {
        uint32_t c = atomic_load_explicit(&lock->word_, memory_order_relaxed);
        if (c == 0 && atomic_compare_exchange_weak_explicit(
                          &lock->word_, &c, 1, memory_order_acquire, memory_order_relaxed))
            return 0;
    }
    bool shared = lock->flags_ & KART_SYNC_SHARED;
    while (atomic_exchange_explicit(&lock->word_, 2, memory_order_acquire) != 0) {
        /* 0 (woken), -EAGAIN (already released) and -EINTR all mean: try
         * again, with the same absolute deadline. */
        if (kart__futex_wait(&lock->word_, 2, deadline, shared) == -ETIMEDOUT)
            return -ETIMEDOUT;
    }
    return 0;
}

/* The plain lock's way past its fast path: contended, or the first lock
 * this thread takes (its id is not cached yet). Out of line, and so are
 * the robust lock's paths, so that the fast path of kart_lock_acquire()
 * and kart_lock_release() saves no registers and sets up no frame: a
 * leaf function of a few instructions (one compare-and-swap, one load of
 * the thread id at a fixed offset from the thread pointer, one store).
 * Measured in docs/sync.md "Speed". */
__attribute__((noinline)) static int acquire_contended(kart_lock *lock, int64_t timeout_ns)
{
    int r = acquire_slow(lock, timeout_ns);
    if (r)
        return r;
    mark_held(lock);
    return 0;
}

__attribute__((noinline, cold)) static int acquired_first(kart_lock *lock)
{
    mark_held(lock);
    return 0;
}

KART_API int kart_lock_acquire(kart_lock *lock, int64_t timeout_ns)
{
    if (UNLIKELY(!lock))
        return -EINVAL;
    if (UNLIKELY(is_robust(lock)))
        return robust_acquire(lock, timeout_ns);
    uint32_t c = 0;
    if (UNLIKELY(!atomic_compare_exchange_strong_explicit(&lock->word_, &c, 1, memory_order_acquire,
                                                          memory_order_relaxed)))
        return acquire_contended(lock, timeout_ns);
    uint32_t me = kart__tid_cache;
    if (UNLIKELY(!me))
        return acquired_first(lock);
    atomic_store_explicit(&lock->owner_, me, memory_order_relaxed);
    KART__TSAN_ACQUIRE(lock);
    return 0;
}

__attribute__((noinline)) static int robust_release(kart_lock *lock)
{
    if (atomic_load_explicit(&lock->owner_, memory_order_relaxed) != kart__tid())
        return -EPERM;
    /* Released without kart_lock_consistent(): glibc makes the mutex
     * unrecoverable, and so do we, before anyone else can take it. */
    if (atomic_load_explicit(&lock->state_, memory_order_relaxed) == INCONSISTENT)
        atomic_store_explicit(&lock->state_, UNRECOVERABLE, memory_order_release);
    atomic_store_explicit(&lock->owner_, 0, memory_order_relaxed);
    atomic_store_explicit(&lock->word_, 0, memory_order_relaxed);
    KART__TSAN_RELEASE(lock);
    return -pthread_mutex_unlock(&lock->robust_);
}

/* A release that found sleepers (2) to wake, or nobody holding (0). */
__attribute__((noinline)) static int release_slow(kart_lock *lock, uint32_t was)
{
    if (was == 2)
        kart__futex_wake(&lock->word_, 1, lock->flags_ & KART_SYNC_SHARED);
    /* 0: another thread released it between the check and the exchange. */
    return was ? 0 : -EPERM;
}

KART_API int kart_lock_release(kart_lock *lock)
{
    if (UNLIKELY(!lock))
        return -EINVAL;
    if (UNLIKELY(is_robust(lock)))
        return robust_release(lock);
    /* A free lock is refused before owner_ is touched: clearing it would
     * race with a thread acquiring it now. Told by owner_, which every
     * holder sets before its acquire returns and which is 0 while the
     * lock is free: a load of the word, just written by the acquire's
     * compare-and-swap, cost 2 ns of the 20 a lock and release take
     * here (docs/sync.md), where the owner's plain store is forwarded. */
    if (UNLIKELY(atomic_load_explicit(&lock->owner_, memory_order_relaxed) == 0))
        return -EPERM;
    atomic_store_explicit(&lock->owner_, 0, memory_order_relaxed);
    KART__TSAN_RELEASE(lock);
    uint32_t was = atomic_exchange_explicit(&lock->word_, 0, memory_order_release);
    if (UNLIKELY(was != 1))
        return release_slow(lock, was);
    return 0;
}

KART_API int kart_lock_consistent(kart_lock *lock)
{
    if (!lock || !is_robust(lock))
        return -EINVAL;
    /* glibc checks the owner-died state but not who calls. */
    if (kart_lock_held_by_me(lock) != 1)
        return -EPERM;
    int r = pthread_mutex_consistent(&lock->robust_);
    if (r == 0)
        atomic_store_explicit(&lock->state_, CONSISTENT, memory_order_relaxed);
    return -r;
}

KART_API int kart_lock_locked(const kart_lock *lock)
{
    if (!lock)
        return -EINVAL;
    return atomic_load_explicit((_Atomic uint32_t *)&lock->word_, memory_order_relaxed) != 0;
}

KART_API int kart_lock_held_by_me(const kart_lock *lock)
{
    if (!lock)
        return -EINVAL;
    return atomic_load_explicit((_Atomic uint32_t *)&lock->owner_, memory_order_relaxed) ==
           kart__tid();
}

/* ---- RLock: the lock's owner_ says who holds it; depth_ is written only
 * by the holder, and atomic only so that kart_rlock_depth() may read it
 * from anywhere. ---- */

KART_API int kart_rlock_init(kart_rlock *rlock, unsigned flags)
{
    if (!rlock)
        return -EINVAL;
    atomic_init(&rlock->depth_, 0);
    return kart_lock_init(&rlock->lock_, flags);
}

KART_API void kart_rlock_destroy(kart_rlock *rlock)
{
    if (rlock)
        kart_lock_destroy(&rlock->lock_);
}

KART_API int kart_rlock_acquire(kart_rlock *rlock, int64_t timeout_ns)
{
    if (!rlock)
        return -EINVAL;
    if (kart_lock_held_by_me(&rlock->lock_) == 1) {
        uint32_t depth = atomic_load_explicit(&rlock->depth_, memory_order_relaxed);
        if (depth >= INT_MAX)
            return -EOVERFLOW;
        atomic_store_explicit(&rlock->depth_, depth + 1, memory_order_relaxed);
        return (int)depth + 1;
    }
    int r = kart_lock_acquire(&rlock->lock_, timeout_ns);
    if (r == 0 || r == -EOWNERDEAD)
        atomic_store_explicit(&rlock->depth_, 1, memory_order_relaxed);
    return r ? r : 1;
}

KART_API int kart_rlock_release(kart_rlock *rlock)
{
    if (!rlock)
        return -EINVAL;
    if (kart_lock_held_by_me(&rlock->lock_) != 1)
        return -EPERM;
    uint32_t depth = atomic_load_explicit(&rlock->depth_, memory_order_relaxed) - 1;
    atomic_store_explicit(&rlock->depth_, depth, memory_order_relaxed);
    if (depth == 0) {
        int r = kart_lock_release(&rlock->lock_);
        if (r)
            return r;
    }
    return (int)depth;
}

KART_API int kart_rlock_consistent(kart_rlock *rlock)
{
    return rlock ? kart_lock_consistent(&rlock->lock_) : -EINVAL;
}

KART_API pid_t kart_rlock_owner(const kart_rlock *rlock)
{
    if (!rlock)
        return -EINVAL;
    return (pid_t)atomic_load_explicit((_Atomic uint32_t *)&rlock->lock_.owner_,
                                       memory_order_relaxed);
}

KART_API int kart_rlock_depth(const kart_rlock *rlock)
{
    if (!rlock)
        return -EINVAL;
    return (int)atomic_load_explicit((_Atomic uint32_t *)&rlock->depth_, memory_order_relaxed);
}

/*
 * core/tls.c — thread-local slots (a thin layer over pthread keys) and
 * run-once.
 *
 * The clever idea: run-once is one futex word with four states — 0 new,
 * 1 running, 3 running with sleepers, 2 done — so that the common case (already
 * done) is a single acquire load, and the thread that finishes fn makes a
 * wake-up system call only when someone is actually asleep. The running
 * thread's id sits beside the word so that fn calling kart_once_run() on
 * its own once is reported (-EDEADLK) instead of hanging forever.
 */
#include "futex.h"

#include <kart/thread.h>
#include <pthread.h>

enum { ONCE_NEW = 0, ONCE_RUNNING = 1, ONCE_DONE = 2, ONCE_SLEEPERS = 3 };

KART_API int kart_tls_init(kart_tls *tls, void (*destructor)(void *))
{
    if (!tls)
        return -EINVAL;
    int err = pthread_key_create(&tls->key_, destructor);
    if (err) {
        tls->valid_ = false;
        return -err;
    }
    tls->valid_ = true;
    return 0;
}

KART_API void kart_tls_destroy(kart_tls *tls)
{
    if (!tls || !tls->valid_)
        return;
    tls->valid_ = false;
    pthread_key_delete(tls->key_);
}

KART_API int kart_tls_set(kart_tls *tls, void *value)
{
    if (!tls || !tls->valid_)
        return -EINVAL;
    return -pthread_setspecific(tls->key_, value);
}

KART_API void *kart_tls_get(const kart_tls *tls)
{
    if (!tls || !tls->valid_)
        return NULL;
    return pthread_getspecific(tls->key_);
}

KART_API int kart_once_run(kart_once *once, void (*fn)(void *), void *arg)
{
    if (!once || !fn)
        return -EINVAL;
    uint32_t s = atomic_load_explicit(&once->state_, memory_order_acquire);
    if (s == ONCE_DONE) {
        KART__TSAN_ACQUIRE(once);
        return 0;
    }
    uint32_t me = kart__tid();
    s = ONCE_NEW;
    if (atomic_compare_exchange_strong_explicit(&once->state_, &s, ONCE_RUNNING,
                                                memory_order_acquire, memory_order_acquire)) {
        atomic_store_explicit(&once->owner_, me, memory_order_relaxed);
        fn(arg);
        atomic_store_explicit(&once->owner_, 0, memory_order_relaxed);
        KART__TSAN_RELEASE(once);
        if (atomic_exchange_explicit(&once->state_, ONCE_DONE, memory_order_release) ==
            ONCE_SLEEPERS)
            kart__futex_wake(&once->state_, INT32_MAX, false);
        return 0;
    }
    for (int spin = 0;; spin++) {
        s = atomic_load_explicit(&once->state_, memory_order_acquire);
        if (s == ONCE_DONE)
            break;
        /* Only the running thread can have stored its own id here. */
        if (atomic_load_explicit(&once->owner_, memory_order_relaxed) == me)
            return -EDEADLK;
        if (spin < KART__SPIN) {
            kart__cpu_relax();
            continue;
        }
        if (s == ONCE_RUNNING &&
            !atomic_compare_exchange_weak_explicit(&once->state_, &s, ONCE_SLEEPERS,
                                                   memory_order_acquire, memory_order_acquire))
            continue;
        kart__futex_wait(&once->state_, ONCE_SLEEPERS, -1, false);
    }
    KART__TSAN_ACQUIRE(once);
    return 0;
}

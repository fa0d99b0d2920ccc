/*
 * compat/futex_parking.c — kart__futex_wait/wake without futex(2), for the
 * BSDs and macOS (and for testing on Linux with KART_FUTEX_PARKING_LOT).
 *
 * A "parking lot": the word's address hashes to one of 256 buckets, each a
 * pthread mutex and a condition variable on CLOCK_MONOTONIC (where the
 * system has pthread_condattr_setclock; macOS lacks it and gets a relative
 * wait computed from the monotonic deadline). The word is compared under
 * the bucket's mutex, and a waker takes the same mutex before it
 * broadcasts, so a wake between the compare and the sleep cannot be lost.
 * A wake broadcasts to the whole bucket: sleepers on other words sharing
 * it wake spuriously and re-check, which the futex contract allows. The
 * buckets live in this process, so waits between processes are not
 * possible here (KART__FUTEX_SHARED is 0).
 */
#include "futex.h"

#ifndef KART__FUTEX_NATIVE

#include <pthread.h>
#include <stdint.h>

#define BUCKETS 256

typedef struct bucket {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned sleepers;
} bucket;

static bucket buckets[BUCKETS];
static pthread_once_t buckets_once = PTHREAD_ONCE_INIT;
static bool monotonic_cond;

static void init_buckets(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
#if !defined(__APPLE__)
    monotonic_cond = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0;
#endif
    for (int i = 0; i < BUCKETS; i++) {
        pthread_mutex_init(&buckets[i].lock, NULL);
        pthread_cond_init(&buckets[i].cond, &attr);
    }
    pthread_condattr_destroy(&attr);
}

static bucket *bucket_of(const void *addr)
{
    pthread_once(&buckets_once, init_buckets);
    uintptr_t a = (uintptr_t)addr >> 2;
    return &buckets[(a ^ (a >> 8) ^ (a >> 16)) % BUCKETS];
}

/* The deadline in the clock the condition variable waits on. */
static struct timespec cond_deadline(int64_t deadline)
{
    if (!monotonic_cond) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t left = kart__time_left(deadline);
        deadline = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + left;
    }
    return (struct timespec){.tv_sec = deadline / 1000000000,
                             .tv_nsec = deadline % 1000000000};
}

int kart__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline,
                     bool shared)
{
    if (shared)
        return -ENOTSUP;
    bucket *b = bucket_of(word);
    int err = 0;
    pthread_mutex_lock(&b->lock);
    if (atomic_load(word) != expected) {
        err = -EAGAIN;
    } else {
        b->sleepers++;
        if (deadline < 0) {
            pthread_cond_wait(&b->cond, &b->lock);
        } else {
            struct timespec ts = cond_deadline(deadline);
            if (pthread_cond_timedwait(&b->cond, &b->lock, &ts) == ETIMEDOUT)
                err = -ETIMEDOUT;
        }
        b->sleepers--;
    }
    pthread_mutex_unlock(&b->lock);
    return err;
}

int kart__futex_wake(_Atomic uint32_t *word, int n, bool shared)
{
    (void)n;
    if (shared)
        return -ENOTSUP;
    bucket *b = bucket_of(word);
    pthread_mutex_lock(&b->lock);
    int woken = (int)b->sleepers;
    if (woken)
        pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return woken;
}

#endif /* !KART__FUTEX_NATIVE */

/*
 * core/rwlock.c — a writer-preferring reader-writer lock. One word holds
 * the read holds (low 30 bits), the write hold (WRITER) and a hint that
 * writers wait (WWAIT) which keeps new readers out; readers and writers
 * sleep on separate futex words (rseq_, wseq_), so a writer's unlock
 * wakes one writer or all readers, never both crowds at once.
 *
 * The rule that keeps it live: WWAIT may be lost (a reader then slips in
 * ahead of a writer, which is only unfair), but never left set with no
 * writer waiting (readers would sleep for ever). A writer sets it only
 * while counted in wwait_; the write unlock recomputes it from wwait_,
 * and a writer that gives up clears it when it was the last one counted.
 * Each sleeper counts itself (rwait_, wwait_) before re-checking the word,
 * and each waker changes the word before reading the counts, both with
 * seq_cst, so either the waker sees the sleeper or the sleeper sees the
 * change.
 */
#include "deadline.h"
#include "futex.h"

#include <kart/sync.h>

#define WWAIT (1u << 31)
#define WRITER (1u << 30)
#define READERS ((uint32_t)KART_RWLOCK_MAX_READERS)

static bool is_shared(const kart_rwlock *rw)
{
    return rw->flags_ & KART_SYNC_SHARED;
}

KART_API int kart_rwlock_init(kart_rwlock *rw, unsigned flags)
{
    if (!rw || (flags & ~KART_SYNC_SHARED))
        return -EINVAL;
    atomic_init(&rw->state_, 0);
    atomic_init(&rw->rseq_, 0);
    atomic_init(&rw->wseq_, 0);
    atomic_init(&rw->rwait_, 0);
    atomic_init(&rw->wwait_, 0);
    rw->flags_ = flags;
    return 0;
}

static void wake_readers(kart_rwlock *rw)
{
    if (atomic_load(&rw->rwait_)) {
        atomic_fetch_add(&rw->rseq_, 1);
        kart__futex_wake(&rw->rseq_, INT32_MAX, is_shared(rw));
    }
}

static void wake_writer(kart_rwlock *rw)
{
    if (atomic_load(&rw->wwait_)) {
        atomic_fetch_add(&rw->wseq_, 1);
        kart__futex_wake(&rw->wseq_, 1, is_shared(rw));
    }
}

/* 1: took a read hold; 0: a writer holds or waits; -EOVERFLOW: full. */
static int try_read(kart_rwlock *rw)
{
    uint32_t s = atomic_load(&rw->state_); /* seq_cst: see the top */
    for (;;) {
        if (s & (WRITER | WWAIT))
            return 0;
        if ((s & READERS) == READERS)
            return -EOVERFLOW;
        if (atomic_compare_exchange_weak_explicit(&rw->state_, &s, s + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
    }
}

KART_API int kart_rwlock_rdlock(kart_rwlock *rw, int64_t timeout_ns)
{
    if (!rw)
        return -EINVAL;
    int r = try_read(rw);
    if (r == 0) {
        if (timeout_ns == 0)
            return -ETIMEDOUT;
        int64_t deadline = kart__deadline(timeout_ns);
        for (kart__spin sp = {0, 0}; r == 0 && kart__spin_next(&sp);)
            r = try_read(rw);
        if (r == 0) {
            atomic_fetch_add(&rw->rwait_, 1);
            for (;;) {
                uint32_t seq = atomic_load(&rw->rseq_);
                if ((r = try_read(rw)) != 0)
                    break;
                if (kart__futex_wait(&rw->rseq_, seq, deadline, is_shared(rw)) == -ETIMEDOUT) {
                    /* A last try: a hold free now is still ours. */
                    if ((r = try_read(rw)) == 0)
                        r = -ETIMEDOUT;
                    break;
                }
            }
            atomic_fetch_sub(&rw->rwait_, 1);
        }
    }
    if (r < 0)
        return r;
    KART__TSAN_ACQUIRE(rw);
    return 0;
}

/* Takes the write hold when nobody holds the lock, keeping WWAIT as it is
 * (the unlock recomputes it). */
static bool try_write(kart_rwlock *rw)
{
    uint32_t s = atomic_load(&rw->state_); /* seq_cst: see the top */
    while (!(s & (WRITER | READERS)))
        if (atomic_compare_exchange_weak_explicit(&rw->state_, &s, s | WRITER, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* A waiting writer that gives up: the last one out clears WWAIT and lets
 * the readers in; otherwise it passes on any wake-up it may have taken. */
static void writer_gives_up(kart_rwlock *rw)
{
    if (atomic_fetch_sub(&rw->wwait_, 1) == 1) {
        atomic_fetch_and(&rw->state_, ~WWAIT);
        wake_readers(rw);
    } else {
        wake_writer(rw);
    }
}

KART_API int kart_rwlock_wrlock(kart_rwlock *rw, int64_t timeout_ns)
{
    if (!rw)
        return -EINVAL;
    if (!try_write(rw)) {
        if (timeout_ns == 0)
            return -ETIMEDOUT;
        int64_t deadline = kart__deadline(timeout_ns);
        atomic_fetch_add(&rw->wwait_, 1);
        kart__spin sp = {0, 0};
        for (;;) {
            uint32_t seq = atomic_load(&rw->wseq_);
            /* Re-asserted on every round: another writer's unlock or give
             * up may have cleared it while this one was counted. */
            if (!(atomic_load(&rw->state_) & WWAIT))
                atomic_fetch_or(&rw->state_, WWAIT);
            if (try_write(rw))
                break;
            if (kart__spin_next(&sp))
                continue;
            if (kart__futex_wait(&rw->wseq_, seq, deadline, is_shared(rw)) == -ETIMEDOUT) {
                if (try_write(rw))
                    break;
                writer_gives_up(rw);
                return -ETIMEDOUT;
            }
        }
        atomic_fetch_sub(&rw->wwait_, 1);
    }
    KART__TSAN_ACQUIRE(rw);
    return 0;
}

KART_API int kart_rwlock_unlock(kart_rwlock *rw)
{
    if (!rw)
        return -EINVAL;
    KART__TSAN_RELEASE(rw);
    uint32_t s = atomic_load(&rw->state_), next;
    do {
        if (s & WRITER)
            /* WWAIT stays up while writers wait, so no reader slips in
             * ahead of them; it is only ever kept here, never raised: a
             * writer that gave up since the count was read may have just
             * cleared it, and then this compare-and-swap fails. */
            next = s & ~(WRITER | (atomic_load(&rw->wwait_) ? 0 : WWAIT));
        else if (s & READERS)
            next = s - 1;
        else
            return -EPERM;
    } while (!atomic_compare_exchange_weak(&rw->state_, &s, next));

    if (s & WRITER) {
        /* Readers only when no writer is in line; a writer whenever one
         * is counted, even if its WWAIT was lost. */
        if (!(next & WWAIT))
            wake_readers(rw);
        wake_writer(rw);
    } else if ((next & READERS) == 0) {
        wake_writer(rw);
    }
    return 0;
}

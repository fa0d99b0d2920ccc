/*
 * core/barrier.c — Barrier on one futex word that holds the round's
 * arrival count and three phase bits, changed only by compare-and-swap.
 *
 * The clever part is the drain: when the last party arrives, the word
 * turns from "filling, parties arrived" to "draining, parties-1 to leave",
 * and every released party counts itself out; the next round starts
 * filling only when the last has left. A sleeper therefore never mistakes
 * a later round (or a reset after a break) for its own: its round cannot
 * end without it. That is Python's Barrier state machine (filling,
 * draining, resetting, broken) without its lock, and it lets more threads
 * than parties share a barrier.
 *
 * Breaking (a timeout, abort, reset) sets BROKEN while the round fills:
 * its sleepers leave with KART_EBROKEN, counting themselves out. A reset
 * also sets RESETTING, which holds off new arrivals until the last of
 * them has left, then the word returns to 0. While the action runs the
 * round is full (count == parties): it is complete, and nothing breaks it.
 */
#include "deadline.h"
#include "futex.h"

#include <kart/sync.h>

#define BROKEN (1u << 31)
#define RESETTING (1u << 30)
#define DRAINING (1u << 29)
#define COUNT ((1u << 29) - 1)

static bool is_shared(const kart_barrier *b)
{
    return b->flags_ & KART_SYNC_SHARED;
}

KART_API int kart_barrier_init(kart_barrier *b, size_t parties, unsigned flags,
                               kart_barrier_action action, void *arg)
{
    if (!b || parties < 1 || parties > KART_BARRIER_MAX_PARTIES || (flags & ~KART_SYNC_SHARED))
        return -EINVAL;
    atomic_init(&b->state_, 0);
    atomic_init(&b->waiters_, 0);
    b->parties_ = (uint32_t)parties;
    b->flags_ = flags;
    b->action_ = action;
    b->action_arg_ = arg;
    return 0;
}

static void wake_all(kart_barrier *b)
{
    if (atomic_load(&b->waiters_))
        kart__futex_wake(&b->state_, INT32_MAX, is_shared(b));
}

/* Waits for the word to move from seen: a short spin, then a sleep.
 * Returns 0 (moved, or a spurious wake-up) or -ETIMEDOUT. */
static int await_change(kart_barrier *b, uint32_t seen, int64_t deadline)
{
    for (kart__spin sp = {0, 0}; kart__spin_next(&sp);) {
        if (atomic_load_explicit(&b->state_, memory_order_relaxed) != seen)
            return 0;
    }
    atomic_fetch_add(&b->waiters_, 1);
    int r = kart__futex_wait(&b->state_, seen, deadline, is_shared(b));
    atomic_fetch_sub(&b->waiters_, 1);
    return r == -ETIMEDOUT ? r : 0;
}

/* A released or broken party counts itself out of its round; the last
 * out of a drain or a reset opens the next round. */
static void leave(kart_barrier *b)
{
    uint32_t s = atomic_load(&b->state_), next;
    do {
        next = s - 1;
        if ((next & COUNT) == 0 && (s & (DRAINING | RESETTING)))
            next = s & RESETTING ? 0 : (s & BROKEN);
    } while (!atomic_compare_exchange_weak(&b->state_, &s, next));
    if ((next & COUNT) == 0)
        wake_all(b);
}

/* Breaks the filling round that the caller (arrived or not) gave up on.
 * Returns -ETIMEDOUT, or what the caller should return instead when the
 * round was released or broken first (0: go on waiting). */
static int give_up(kart_barrier *b, bool arrived)
{
    uint32_t s = atomic_load(&b->state_), next;
    do {
        if (arrived) {
            if (s & DRAINING)
                return 0;
            if ((s & COUNT) == b->parties_)
                return 0; /* the action runs: the round is complete */
            if (s & BROKEN)
                return 0; /* the caller will see it and leave */
            next = (s | BROKEN) - 1;
        } else {
            if (s & (BROKEN | RESETTING))
                return -ETIMEDOUT; /* nothing left to break */
            next = s | BROKEN;
        }
    } while (!atomic_compare_exchange_weak(&b->state_, &s, next));
    wake_all(b);
    return -ETIMEDOUT;
}

KART_API int kart_barrier_wait(kart_barrier *b, int64_t timeout_ns)
{
    if (!b)
        return -EINVAL;
    int64_t deadline = kart__deadline(timeout_ns);
    KART__TSAN_RELEASE(b);

    /* Arrive: wait out a full round (its action runs), its drain, or a
     * reset. */
    uint32_t s = atomic_load(&b->state_);
    for (;;) {
        if (s & RESETTING || (!(s & BROKEN) && ((s & DRAINING) || (s & COUNT) == b->parties_))) {
            if (await_change(b, s, deadline) == -ETIMEDOUT && atomic_load(&b->state_) == s)
                return give_up(b, false);
            s = atomic_load(&b->state_);
            continue;
        }
        if (s & BROKEN)
            return KART_EBROKEN;
        if (atomic_compare_exchange_weak(&b->state_, &s, s + 1))
            break;
    }
    uint32_t index = s & COUNT;

    if (index + 1 == b->parties_) {
        if (b->action_)
            b->action_(b->action_arg_);
        KART__TSAN_RELEASE(b);
        /* Release the round; an abort during the action stays, for the
         * rounds after this one. */
        s = atomic_load(&b->state_);
        uint32_t next;
        do
            next = (s & BROKEN) | (index ? DRAINING | index : 0);
        while (!atomic_compare_exchange_weak(&b->state_, &s, next));
        if (index)
            wake_all(b);
        KART__TSAN_ACQUIRE(b);
        return (int)index;
    }

    for (;;) {
        s = atomic_load(&b->state_);
        if (s & DRAINING) {
            leave(b);
            KART__TSAN_ACQUIRE(b);
            return (int)index;
        }
        if ((s & BROKEN) && (s & COUNT) < b->parties_) {
            leave(b);
            return KART_EBROKEN;
        }
        if (await_change(b, s, deadline) == -ETIMEDOUT) {
            int r = give_up(b, true);
            if (r)
                return r;
            /* Released or broken meanwhile, or the action runs: the
             * round's end comes without a deadline. */
            deadline = -1;
        }
    }
}

KART_API int kart_barrier_abort(kart_barrier *b)
{
    if (!b)
        return -EINVAL;
    uint32_t s = atomic_load(&b->state_);
    while (!atomic_compare_exchange_weak(&b->state_, &s, (s | BROKEN) & ~RESETTING))
        ;
    wake_all(b);
    return 0;
}

KART_API int kart_barrier_reset(kart_barrier *b)
{
    if (!b)
        return -EINVAL;
    uint32_t s = atomic_load(&b->state_), next;
    do {
        uint32_t count = s & COUNT;
        if (count == 0)
            next = 0;
        else if ((s & DRAINING) || count == b->parties_)
            next = s & ~BROKEN; /* a complete round ends as it would */
        else
            next = s | BROKEN | RESETTING;
    } while (!atomic_compare_exchange_weak(&b->state_, &s, next));
    wake_all(b);
    return 0;
}

KART_API int kart_barrier_parties(const kart_barrier *b)
{
    return b ? (int)b->parties_ : -EINVAL;
}

KART_API int kart_barrier_n_waiting(const kart_barrier *b)
{
    if (!b)
        return -EINVAL;
    uint32_t s = atomic_load(&b->state_);
    return s & (BROKEN | RESETTING | DRAINING) ? 0 : (int)(s & COUNT);
}

KART_API int kart_barrier_broken(const kart_barrier *b)
{
    if (!b)
        return -EINVAL;
    uint32_t s = atomic_load(&b->state_);
    return (s & BROKEN) && !(s & RESETTING);
}

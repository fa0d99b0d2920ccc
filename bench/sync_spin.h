/*
 * bench/sync_spin.h — the `spin-futex` peers of the locks, cond and sem
 * scenarios: the smallest hand-written primitives that wait the way kart
 * does, a short spin and then a futex sleep, so that kart is measured
 * against what its own policy costs when written plainly, and not against
 * glibc's mutex and POSIX semaphores, which never spin (there a ratio
 * mostly measures the VM's wake-up cost).
 *
 * The spin is kart's, copied here because bench/ may use only kart's
 * public headers (scripts/check-house.sh): before it sleeps, a waiter
 * looks at the word, then waits 1, 2, 4 ... 64 `pause` instructions
 * (`yield` on arm64) before looking again, and calls sched_yield() after
 * each wait of 4 pauses or more: a budget of 100 pauses, spent as 127
 * pauses, 7 looks and 5 yields (KART__SPIN and kart__spin_next() in
 * core/base/futex.h; change both together). The primitives themselves
 * are the textbook ones, without kart's checks (owner, deadlock, timeout,
 * robustness), so kart's ratio to them is the price of those checks and
 * of kart's algorithms, not of a different waiting policy.
 *
 * Every object works privately (FUTEX_PRIVATE_FLAG) or, with shared set,
 * between processes over a MAP_SHARED mapping.
 */
#ifndef KART_BENCH_SYNC_SPIN_H
#define KART_BENCH_SYNC_SPIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Drepper's futex mutex ("Futexes Are Tricky", mutex 3): 0 free, 1 held,
 * 2 held with possible sleepers. */
typedef struct spin_mutex {
    _Atomic uint32_t word;
    bool shared;
} spin_mutex;

void spin_mutex_init(spin_mutex *m, bool shared);
void spin_mutex_lock(spin_mutex *m);
void spin_mutex_unlock(spin_mutex *m);

/* A condition as a sequence number over a spin_mutex: a waiter reads it
 * under the mutex, unlocks, spins while it is unchanged, then sleeps on
 * it; a notifier bumps it and wakes one sleeper when there are any. */
typedef struct spin_cond {
    _Atomic uint32_t seq, waiters;
    bool shared;
} spin_cond;

void spin_cond_init(spin_cond *c, bool shared);
/* The caller holds m; it holds it again on return (maybe spuriously). */
void spin_cond_wait(spin_cond *c, spin_mutex *m);
/* The caller holds the mutex the waiters use. */
void spin_cond_signal(spin_cond *c);

/* A counting semaphore whose futex word is its value. */
typedef struct spin_sem {
    _Atomic uint32_t value, waiters;
    bool shared;
} spin_sem;

void spin_sem_init(spin_sem *s, uint32_t value, bool shared);
void spin_sem_wait(spin_sem *s);
void spin_sem_post(spin_sem *s);

/* A writer-preferring reader-writer lock, as kart's is: one word holds
 * the read holds and the write hold; a writer that waits counts itself in
 * wwait, which keeps new readers out. Readers and writers spin, then
 * sleep on one sequence word that every unlock which can let a sleeper
 * in bumps (when anyone sleeps) before waking them all; with two threads
 * that is at most one. */
typedef struct spin_rwlock {
    _Atomic uint32_t state, wwait, seq, sleepers;
    bool shared;
} spin_rwlock;

void spin_rwlock_init(spin_rwlock *rw, bool shared);
void spin_rwlock_rdlock(spin_rwlock *rw);
void spin_rwlock_wrlock(spin_rwlock *rw);
/* Releases a read or the write hold, whichever the caller has. */
void spin_rwlock_unlock(spin_rwlock *rw);

/* A barrier for `parties` threads: the last to arrive bumps the
 * generation and wakes the others, who spin and then sleep on it. */
typedef struct spin_barrier {
    _Atomic uint32_t arrived, generation;
    uint32_t parties;
    bool shared;
} spin_barrier;

void spin_barrier_init(spin_barrier *b, uint32_t parties, bool shared);
/* Returns 1 in the last thread to arrive, 0 in the others (as
 * PTHREAD_BARRIER_SERIAL_THREAD marks one thread). */
int spin_barrier_wait(spin_barrier *b);

#endif

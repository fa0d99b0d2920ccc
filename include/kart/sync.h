/*
 * kart/sync.h — locks and the other synchronization primitives of
 * Python's threading module, on Linux futexes, shareable between
 * processes.
 *
 * Every object here is caller-allocated (embed it, or place it in shared
 * memory) and set up with kart_<object>_init(obj, flags, ...):
 *  - KART_SYNC_SHARED: the object works between processes when it lives in
 *    memory they all map (MAP_SHARED, a memfd, a file): fork children and
 *    unrelated processes alike. Without it, futex waits use the cheaper
 *    process-private form and the object must not be shared.
 *  - KART_SYNC_ROBUST (locks only): when the holder dies, the next
 *    acquirer gets -EOWNERDEAD and owns the lock; it calls
 *    kart_lock_consistent() once it has repaired the protected state, or
 *    releases without doing so, after which every acquire fails with
 *    -ENOTRECOVERABLE (pthread's robust semantics).
 *
 * On the BSDs and macOS the primitives wait through a fallback
 * (compat/futex_parking.c): within a process they wake at once; between
 * processes a sleeper re-checks every millisecond.
 *
 * Timeouts are int64_t nanoseconds on CLOCK_MONOTONIC: negative waits
 * forever, 0 does not block. A wait that is not satisfied in time returns
 * -ETIMEDOUT, whatever the timeout, 0 included (a try is a wait with no
 * time). Blocking calls spin briefly, then sleep in the kernel, and are
 * correct under spurious wake-ups. A wait interrupted by a signal goes on
 * with the time left (EINTR never surfaces).
 *
 * Thread safety: every object here is thread-safe (any call from any
 * thread, and, with KART_SYNC_SHARED, from any process that maps it),
 * except _init and _destroy, which must not run while any other call on
 * the same object does. Counts (units, waiters, parties) are size_t.
 *
 * Objects need no _destroy beyond kart_lock_destroy() / kart_rlock_destroy()
 * for robust locks, which hold the C library's state; the others may simply
 * be freed when no thread uses them.
 */
#ifndef KART_SYNC_H
#define KART_SYNC_H

#include <kart/common.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KART_SYNC_SHARED 0x1u
#define KART_SYNC_ROBUST 0x2u

/* ---- Lock (threading.Lock) ---- */

/* Private fields end in '_': read them through the functions. */
typedef struct kart_lock {
    _Atomic uint32_t word_;  /* 0 free, 1 held, 2 held with waiters (robust
                              * locks: 1 while held, a mirror) */
    _Atomic uint32_t owner_; /* native thread id of the holder, 0 if none */
    _Atomic uint32_t state_; /* robust locks: consistent, inconsistent,
                              * unrecoverable */
    uint32_t flags_;
    pthread_mutex_t robust_; /* robust locks only: the kernel's robust list
                              * belongs to the C library, so these use its
                              * robust mutex */
} kart_lock;

/* Errors: -EINVAL (NULL, or unknown flags), and for robust locks the
 * errors of pthread_mutex_init (-ENOMEM, -ENOTSUP where robust mutexes
 * are missing). */
KART_API int kart_lock_init(kart_lock *lock, unsigned flags);

/* Releases what a robust lock holds (the C library's mutex); accepts NULL
 * and a non-robust lock, which need nothing. A lock the caller holds is
 * let go first; destroying one that another thread holds, or whose holder
 * died, is the caller's mistake, and is released all the same. */
KART_API void kart_lock_destroy(kart_lock *lock);

/*
 * Acquires the lock: timeout < 0 blocks, 0 tries once, > 0 waits at most
 * that long. Returns 0 when acquired.
 * Errors: -EINVAL (NULL), -ETIMEDOUT (not acquired in time, or at once
 * for timeout 0), -EDEADLK (the caller already holds this lock, whatever the
 * timeout: it could only wait in vain), and for robust locks -EOWNERDEAD
 * (acquired, but the previous holder died: repair, then
 * kart_lock_consistent()) and -ENOTRECOVERABLE (not acquired).
 */
KART_API int kart_lock_acquire(kart_lock *lock, int64_t timeout_ns);

/*
 * Releases the lock. As with Python's Lock, any thread may release it
 * (robust locks: only the holder). Errors: -EINVAL (NULL), -EPERM (the
 * lock is not held; robust: not held by the caller).
 */
KART_API int kart_lock_release(kart_lock *lock);

/* After -EOWNERDEAD: marks the lock usable again. Errors: -EINVAL (NULL,
 * not robust, or not in the owner-died state), -EPERM (the caller does not
 * hold it). */
KART_API int kart_lock_consistent(kart_lock *lock);

/* 1 if held (robust: also when its holder died and nobody has acquired
 * it since), 0 if not. Errors: -EINVAL (NULL). */
KART_API int kart_lock_locked(const kart_lock *lock);

/* 1 if the calling thread holds it, 0 if not. Errors: -EINVAL (NULL). */
KART_API int kart_lock_held_by_me(const kart_lock *lock);

/* ---- RLock (threading.RLock) ---- */

typedef struct kart_rlock {
    kart_lock lock_;
    _Atomic uint32_t depth_; /* written by the holder only */
} kart_rlock;

/* Errors: as kart_lock_init. */
KART_API int kart_rlock_init(kart_rlock *rlock, unsigned flags);
/* As kart_lock_destroy. */
KART_API void kart_rlock_destroy(kart_rlock *rlock);

/* Acquires, or deepens the caller's hold. Returns the new depth (>= 1).
 * Errors: as kart_lock_acquire, less -EDEADLK, plus -EOVERFLOW (the depth
 * would pass INT_MAX; the hold is unchanged). After -EOWNERDEAD the caller
 * holds it at depth 1. */
KART_API int kart_rlock_acquire(kart_rlock *rlock, int64_t timeout_ns);

/* Returns the depth left (0: released). Errors: -EINVAL (NULL), -EPERM
 * (the caller does not hold it). */
KART_API int kart_rlock_release(kart_rlock *rlock);

/* After -EOWNERDEAD from a robust RLock. Errors: as kart_lock_consistent. */
KART_API int kart_rlock_consistent(kart_rlock *rlock);

/* The holder's kernel thread id (0 if free) and the holder's depth (0 if
 * free). Errors: -EINVAL (NULL). */
KART_API pid_t kart_rlock_owner(const kart_rlock *rlock);
KART_API int kart_rlock_depth(const kart_rlock *rlock);

/* ---- Condition (threading.Condition) over a kart_lock or a kart_rlock ---- */

typedef struct kart_cond {
    _Atomic uint32_t seq_;     /* bumped by every notify */
    _Atomic uint32_t waiters_; /* notify skips the system call at 0 */
    uint32_t flags_;
} kart_cond;

/* flags: KART_SYNC_SHARED. Errors: -EINVAL (NULL, other flags). */
KART_API int kart_cond_init(kart_cond *cond, unsigned flags);

/*
 * Releases lock, waits to be notified or for the timeout, re-acquires
 * lock (however long that takes). Returns 0 when notified (or woken
 * spuriously: re-check your predicate, or use kart_cond_wait_for),
 * -ETIMEDOUT when the time ran out (the lock is held again either way).
 * A condition works with any lock (shared, robust), but always the same
 * one, and a shared lock needs a shared condition.
 * Errors: -EINVAL (NULL), -EPERM (the caller does not hold lock), and a
 * robust lock's -EOWNERDEAD (held again, holder died meanwhile) /
 * -ENOTRECOVERABLE (not held) from re-acquiring.
 */
KART_API int kart_cond_wait(kart_cond *cond, kart_lock *lock, int64_t timeout_ns);

/* Waits until pred(arg) is true (checked first, and after each wake-up,
 * with the lock held), for at most timeout_ns in all. Returns 0 when pred
 * is true, -ETIMEDOUT if it is still false when the time runs out.
 * Errors: as kart_cond_wait, and -EINVAL for a NULL pred. */
KART_API int kart_cond_wait_for(kart_cond *cond, kart_lock *lock, bool (*pred)(void *arg),
                                void *arg, int64_t timeout_ns);

/* Wakes up to n waiters (n >= 1) / all waiters. The caller must hold lock.
 * (On the BSDs and macOS, where waits between processes poll, a notify on
 * a KART_SYNC_SHARED condition may release more than n: every waiter
 * re-checks its predicate, as with any condition variable.)
 * Errors: -EINVAL (NULL, n < 1), -EPERM (lock not held by the caller). */
KART_API int kart_cond_notify(kart_cond *cond, kart_lock *lock, size_t n);
KART_API int kart_cond_notify_all(kart_cond *cond, kart_lock *lock);

/*
 * The same over an RLock, Python's default Condition: the caller holds
 * rlock at any depth; the wait releases every level (other threads can
 * take it) and, once it has the lock again, restores the caller's depth.
 * Returns and errors as kart_cond_wait / kart_cond_wait_for /
 * kart_cond_notify / kart_cond_notify_all, with -EPERM when the caller
 * does not hold rlock. After -EOWNERDEAD (a robust RLock whose holder
 * died during the wait) the caller holds it again at its depth. A
 * condition is used with one lock only: do not mix the two forms on one
 * condition.
 */
KART_API int kart_cond_wait_rlock(kart_cond *cond, kart_rlock *rlock, int64_t timeout_ns);
KART_API int kart_cond_wait_for_rlock(kart_cond *cond, kart_rlock *rlock, bool (*pred)(void *arg),
                                      void *arg, int64_t timeout_ns);
KART_API int kart_cond_notify_rlock(kart_cond *cond, kart_rlock *rlock, size_t n);
KART_API int kart_cond_notify_all_rlock(kart_cond *cond, kart_rlock *rlock);

/* ---- Semaphore and BoundedSemaphore ---- */

typedef struct kart_sem {
    _Atomic uint32_t value_;   /* the futex word: sleepers wait while it is 0 */
    _Atomic uint32_t waiters_; /* release skips the system call at 0 */
    uint32_t flags_;
    uint32_t bound_; /* INT32_MAX when unbounded */
} kart_sem;

/* The most units a semaphore holds. */
#define KART_SEM_VALUE_MAX ((size_t)INT32_MAX)

/* A counting semaphore holding value units; flags: KART_SYNC_SHARED.
 * Errors: -EINVAL (NULL, other flags, value > KART_SEM_VALUE_MAX). */
KART_API int kart_sem_init(kart_sem *sem, size_t value, unsigned flags);
/* A BoundedSemaphore: release past the initial value fails. Errors: as
 * kart_sem_init. */
KART_API int kart_sem_init_bounded(kart_sem *sem, size_t value, unsigned flags);

/* Takes one unit: timeout < 0 blocks, 0 tries once, > 0 waits at most
 * that long. Errors: -EINVAL (NULL), -ETIMEDOUT (none left in time, or at
 * once for timeout 0). */
KART_API int kart_sem_acquire(kart_sem *sem, int64_t timeout_ns);

/* Gives back n units (n >= 1), waking up to n waiters. Errors: -EINVAL
 * (NULL, n < 1), -EOVERFLOW (the value would pass its bound, or
 * KART_SEM_VALUE_MAX for an unbounded semaphore; nothing is released). */
KART_API int kart_sem_release(kart_sem *sem, size_t n);

/* The current value (>= 0). Errors: -EINVAL (NULL). */
KART_API int kart_sem_value(const kart_sem *sem);

/* ---- Event (threading.Event) ---- */

typedef struct kart_flag {
    _Atomic uint32_t word_;    /* bit 0: set; the rest counts sets */
    _Atomic uint32_t waiters_; /* set skips the system call at 0 */
    uint32_t flags_;
} kart_flag;

/* Python's threading.Event (named kart_flag, since kart_event is the
 * selector's), clear at first; flags: KART_SYNC_SHARED.
 * Errors: -EINVAL (NULL, other flags). */
KART_API int kart_flag_init(kart_flag *flag, unsigned flags);
/* Sets the flag and wakes every waiter. Errors: -EINVAL (NULL). */
KART_API int kart_flag_set(kart_flag *flag);
/* Clears the flag. Errors: -EINVAL (NULL). */
KART_API int kart_flag_clear(kart_flag *flag);
/* 1 if set, 0 if not. Errors: -EINVAL (NULL). */
KART_API int kart_flag_is_set(const kart_flag *flag);
/* Waits until set: returns 0 at once if it is set, or when a set happens
 * while waiting (even if it is cleared again before this waiter runs, as
 * with Python's Event). Errors: -EINVAL (NULL), -ETIMEDOUT (still clear
 * when the time ran out, or at once for timeout 0). */
KART_API int kart_flag_wait(kart_flag *flag, int64_t timeout_ns);

/* ---- Barrier (threading.Barrier) ---- */

typedef void (*kart_barrier_action)(void *arg);

typedef struct kart_barrier {
    _Atomic uint32_t state_;   /* the futex word: arrivals, phase bits */
    _Atomic uint32_t waiters_; /* wake-ups skip the system call at 0 */
    uint32_t parties_;
    uint32_t flags_;
    kart_barrier_action action_;
    void *action_arg_;
} kart_barrier;

/* The most parties a barrier takes. */
#define KART_BARRIER_MAX_PARTIES ((1 << 29) - 1)

/*
 * parties threads (1..KART_BARRIER_MAX_PARTIES) meet at
 * kart_barrier_wait(). action (may be NULL) runs in one of them, the last
 * to arrive, before any is released; with KART_SYNC_SHARED the action
 * and its argument must be valid in every process (fork children share
 * them). Errors: -EINVAL (NULL, parties out of range, other flags).
 *
 * A round ends when its last party arrives; the next round fills only
 * once every party of the previous one has left kart_barrier_wait(), so
 * more threads than parties may use a barrier (they pass in groups).
 */
KART_API int kart_barrier_init(kart_barrier *b, size_t parties, unsigned flags,
                               kart_barrier_action action, void *arg);

/*
 * Waits until all parties have arrived. Returns the caller's arrival
 * order in its round, 0..parties-1 (distinct; the last to arrive, which
 * runs the action, gets parties-1). The timeout counts from the call,
 * including any wait for the previous round's parties to leave.
 * Errors: -EINVAL (NULL), KART_EBROKEN (the barrier is or becomes broken:
 * another waiter's timeout, kart_barrier_abort() or kart_barrier_reset()
 * while waiting), -ETIMEDOUT (this waiter's time ran out; the barrier is
 * now broken for all).
 * While the action runs the round is complete: a timeout, abort or reset
 * at that moment does not break it. Its parties all return their index;
 * after an abort the barrier is broken from the next round on, and after
 * a reset it simply goes on.
 */
KART_API int kart_barrier_wait(kart_barrier *b, int64_t timeout_ns);

/* Breaks the barrier: current and future waiters get KART_EBROKEN until
 * reset (an abort during a reset leaves it broken). Errors: -EINVAL. */
KART_API int kart_barrier_abort(kart_barrier *b);
/* Back to the empty, unbroken state; current waiters get KART_EBROKEN,
 * and new ones wait until those have left. Errors: -EINVAL. */
KART_API int kart_barrier_reset(kart_barrier *b);
/* The parties; the parties waiting in the current round (0 while a round
 * drains or the barrier is broken); 1 if broken, 0 if not.
 * Errors: -EINVAL (NULL). */
KART_API int kart_barrier_parties(const kart_barrier *b);
KART_API int kart_barrier_n_waiting(const kart_barrier *b);
KART_API int kart_barrier_broken(const kart_barrier *b);

/* ---- RWLock (not in Python; servers want it) ---- */

typedef struct kart_rwlock {
    _Atomic uint32_t state_; /* readers count, writer bit, writers-wait bit */
    _Atomic uint32_t rseq_;  /* futex word of sleeping readers */
    _Atomic uint32_t wseq_;  /* futex word of sleeping writers */
    _Atomic uint32_t rwait_; /* readers asleep or about to be */
    _Atomic uint32_t wwait_; /* writers waiting */
    uint32_t flags_;
} kart_rwlock;

/* The most read holds at once (2^30 - 1). */
#define KART_RWLOCK_MAX_READERS ((1 << 30) - 1)

/* Writers are preferred: a waiting writer holds off new readers, so a
 * steady stream of readers cannot starve it (a steady stream of writers
 * can starve readers). A thread that takes a second read hold while a
 * writer waits deadlocks. flags: KART_SYNC_SHARED.
 * Errors: -EINVAL (NULL, other flags). */
KART_API int kart_rwlock_init(kart_rwlock *rw, unsigned flags);
/* Takes a read hold. Errors: -EINVAL (NULL), -ETIMEDOUT (a writer held or
 * waited until the time ran out, or at once for timeout 0), -EOVERFLOW
 * (KART_RWLOCK_MAX_READERS holds already). */
KART_API int kart_rwlock_rdlock(kart_rwlock *rw, int64_t timeout_ns);
/* Takes the write hold. Errors: -EINVAL (NULL), -ETIMEDOUT (held until the
 * time ran out, or at once for timeout 0). */
KART_API int kart_rwlock_wrlock(kart_rwlock *rw, int64_t timeout_ns);
/* Releases the write hold if a writer holds the lock, else one read hold.
 * Ownership is not tracked (as with Python's Lock): any thread may release,
 * and a thread that releases a read hold it never took takes another
 * reader's. Errors: -EINVAL (NULL), -EPERM (neither held). */
KART_API int kart_rwlock_unlock(kart_rwlock *rw);

#ifdef __cplusplus
}
#endif
#endif

/*
 * core/futex.h — the one place kart's primitives wait: sleep while a
 * 32-bit word holds a value, and wake sleepers, privately or between
 * processes, with an absolute CLOCK_MONOTONIC deadline (so a retried wait
 * never stretches its timeout); plus the spin that comes before sleeping.
 *
 * On Linux this is futex(2) (FUTEX_WAIT_BITSET takes an absolute time).
 * Elsewhere — and on Linux when built with KART_FUTEX_PARKING_LOT, which
 * is how the fallback is tested — compat/futex_parking.c provides the same
 * two calls over a hashed table of pthread mutexes and condition
 * variables; since that table lives in one process, a shared wait there
 * re-checks its word every millisecond.
 */
#ifndef KART_FUTEX_H
#define KART_FUTEX_H

#include "deadline.h"

#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && !defined(KART_FUTEX_PARKING_LOT)
#define KART__FUTEX_NATIVE 1
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

/* ThreadSanitizer cannot see the ordering a futex-based primitive
 * creates: each primitive marks its release points (unlock, post, set)
 * and acquire points (lock, wait returning) on the object's address. */
#if defined(__SANITIZE_THREAD__)
#define KART__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KART__TSAN 1
#endif
#endif
#ifdef KART__TSAN
#include <sanitizer/tsan_interface.h>
#define KART__TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#define KART__TSAN_RELEASE(addr) __tsan_release((void *)(addr))
#else
#define KART__TSAN_ACQUIRE(addr) ((void)0)
#define KART__TSAN_RELEASE(addr) ((void)0)
#endif

/* How many times a blocking call re-checks its word before sleeping: long
 * enough to cover a short critical section on another core, short enough
 * that a sleeper costs little CPU. */
#define KART__SPIN 100

static inline void kart__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The spin before sleeping: look at the word, then wait 1, 2, 4 ... 64
 * pauses before looking again, yielding the CPU after each longer wait,
 * about KART__SPIN pauses and five yields in all. The backoff keeps a
 * spinner from snatching a lock at the instant of every release (which
 * moves the cache line between cores on each operation: 0.55x glibc's
 * mutex with two contending threads, 2.3x with the backoff); the yield
 * lets a partner that shares our CPU run, where pure spinning could never
 * succeed (kart-bench cond and sem with both sides on one CPU: 0.4x
 * without it, 1.3x to 1.7x with it). Use:
 *   for (kart__spin sp = {0, 0}; kart__spin_next(&sp);) if (ready) ...
 */
typedef struct kart__spin {
    uint32_t pauses, spent;
} kart__spin;

static inline bool kart__spin_next(kart__spin *s)
{
    if (s->spent >= KART__SPIN)
        return false;
    uint32_t n = s->pauses ? s->pauses : 1;
    for (uint32_t i = 0; i < n; i++)
        kart__cpu_relax();
    if (n >= 4)
        sched_yield();
    s->spent += n;
    s->pauses = n * 2;
    return true;
}

#ifdef KART__FUTEX_NATIVE
/* Sleeps while *word == expected, until woken or deadline (absolute ns on
 * CLOCK_MONOTONIC; negative: forever). Returns 0 (woken, maybe
 * spuriously), -EAGAIN (the word already differed), -ETIMEDOUT or -EINTR.
 * Callers re-check their condition in every case. */
static inline int kart__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline,
                                   bool shared)
{
    struct timespec ts, *tp = NULL;
    if (deadline >= 0) {
        ts = kart__timespec(deadline);
        tp = &ts;
    }
    int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    long r = syscall(SYS_futex, (uint32_t *)word, op, expected, tp, NULL, FUTEX_BITSET_MATCH_ANY);
    return r == 0 ? 0 : -errno;
}

/* Wakes at most n sleepers (INT32_MAX: all); returns how many woke. */
static inline int kart__futex_wake(_Atomic uint32_t *word, int n, bool shared)
{
    int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    long r = syscall(SYS_futex, (uint32_t *)word, op, n, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}

#else
/* compat/futex_parking.c: the same contract as the futex versions. */
int kart__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline, bool shared);
int kart__futex_wake(_Atomic uint32_t *word, int n, bool shared);
#endif

/* The caller's kernel thread id, cached per thread; core/futex.c clears
 * the cache in a fork child, whose one thread has a new id. */
/* initial-exec: read at a fixed offset from the thread pointer, not
 * through __tls_get_addr, which matters in libkart.so on every lock. */
extern _Thread_local uint32_t kart__tid_cache __attribute__((tls_model("initial-exec")));

/* A number for the calling thread: its kernel id on Linux, elsewhere a
 * process-unique number handed out on first use. Never 0. */
uint32_t kart__tid_slow(void);

static inline uint32_t kart__tid(void)
{
    if (!kart__tid_cache)
        kart__tid_cache = kart__tid_slow();
    return kart__tid_cache;
}

#endif

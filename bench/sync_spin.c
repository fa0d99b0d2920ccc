/*
 * bench/sync_spin.c — the spin-futex peers (see sync_spin.h): kart's spin
 * budget before a futex sleep, around the textbook primitives.
 */
#include "sync_spin.h"

#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* kart's budget (KART__SPIN in core/base/futex.h): pauses before sleeping. */
#define SPIN_BUDGET 100

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* kart__spin_next() to the letter: wait 1, 2, 4 ... 64 pauses, yield the
 * CPU after each wait of 4 or more, stop once 100 pauses are spent; the
 * caller looks at its word after each wait. */
typedef struct spin {
    uint32_t pauses, spent;
} spin;

static bool spin_next(spin *s)
{
    if (s->spent >= SPIN_BUDGET)
        return false;
    uint32_t n = s->pauses ? s->pauses : 1;
    for (uint32_t i = 0; i < n; i++)
        cpu_relax();
    if (n >= 4)
        sched_yield();
    s->spent += n;
    s->pauses = n * 2;
    return true;
}

/* A futex wait without a timeout: returns when woken, when the word
 * already differs, or on a signal; the callers re-check their word. */
static void futex_wait(_Atomic uint32_t *word, uint32_t expected, bool shared)
{
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT | (shared ? 0 : FUTEX_PRIVATE_FLAG),
                     expected, NULL, NULL, 0);
    if (r != 0 && errno != EAGAIN && errno != EINTR)
        bench_fail("futex wait: %s", strerror(errno));
}

static void futex_wake(_Atomic uint32_t *word, int n, bool shared)
{
    if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG), n,
                NULL, NULL, 0) < 0)
        bench_fail("futex wake: %s", strerror(errno));
}

/* ---- mutex ---- */

void spin_mutex_init(spin_mutex *m, bool shared)
{
    atomic_init(&m->word, 0);
    m->shared = shared;
}

void spin_mutex_lock(spin_mutex *m)
{
    uint32_t c = 0;
    if (atomic_compare_exchange_strong_explicit(&m->word, &c, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    for (spin sp = {0, 0}; spin_next(&sp);) {
        c = atomic_load_explicit(&m->word, memory_order_relaxed);
        if (c == 0 && atomic_compare_exchange_weak_explicit(&m->word, &c, 1, memory_order_acquire,
                                                            memory_order_relaxed))
            return;
    }
    while (atomic_exchange_explicit(&m->word, 2, memory_order_acquire) != 0)
        futex_wait(&m->word, 2, m->shared);
}

void spin_mutex_unlock(spin_mutex *m)
{
    if (atomic_exchange_explicit(&m->word, 0, memory_order_release) == 2)
        futex_wake(&m->word, 1, m->shared);
}

/* ---- condition ---- */

void spin_cond_init(spin_cond *c, bool shared)
{
    atomic_init(&c->seq, 0);
    atomic_init(&c->waiters, 0);
    c->shared = shared;
}

void spin_cond_wait(spin_cond *c, spin_mutex *m)
{
    uint32_t seq = atomic_load_explicit(&c->seq, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->waiters, 1, memory_order_relaxed);
    spin_mutex_unlock(m);
    for (spin sp = {0, 0}; spin_next(&sp);)
        if (atomic_load_explicit(&c->seq, memory_order_relaxed) != seq)
            break;
    /* The kernel refuses to sleep once seq has moved: no lost notify. */
    while (atomic_load_explicit(&c->seq, memory_order_relaxed) == seq)
        futex_wait(&c->seq, seq, c->shared);
    atomic_fetch_sub_explicit(&c->waiters, 1, memory_order_relaxed);
    spin_mutex_lock(m);
}

void spin_cond_signal(spin_cond *c)
{
    atomic_fetch_add_explicit(&c->seq, 1, memory_order_relaxed);
    /* waiters is kept under the mutex the caller holds. */
    if (atomic_load_explicit(&c->waiters, memory_order_relaxed))
        futex_wake(&c->seq, 1, c->shared);
}

/* ---- semaphore ---- */

void spin_sem_init(spin_sem *s, uint32_t value, bool shared)
{
    atomic_init(&s->value, value);
    atomic_init(&s->waiters, 0);
    s->shared = shared;
}

static bool sem_try(spin_sem *s)
{
    uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    while (v > 0)
        if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

void spin_sem_wait(spin_sem *s)
{
    if (sem_try(s))
        return;
    for (spin sp = {0, 0}; spin_next(&sp);)
        if (sem_try(s))
            return;
    /* seq_cst on waiters and value: a post either sees this waiter or
     * its new value stops the futex from sleeping. */
    for (;;) {
        atomic_fetch_add(&s->waiters, 1);
        futex_wait(&s->value, 0, s->shared);
        atomic_fetch_sub(&s->waiters, 1);
        if (sem_try(s))
            return;
    }
}

void spin_sem_post(spin_sem *s)
{
    atomic_fetch_add(&s->value, 1);
    if (atomic_load(&s->waiters))
        futex_wake(&s->value, 1, s->shared);
}

/* ---- reader-writer lock ---- */

#define RW_WRITER (1u << 31) /* the low bits count the read holds */

void spin_rwlock_init(spin_rwlock *rw, bool shared)
{
    atomic_init(&rw->state, 0);
    atomic_init(&rw->wwait, 0);
    atomic_init(&rw->seq, 0);
    atomic_init(&rw->sleepers, 0);
    rw->shared = shared;
}

/* seq_cst throughout: a sleeper counts itself and reads seq before it
 * re-checks state; an unlocker changes state before it reads sleepers. So
 * either the unlocker sees the sleeper (and bumps seq under it), or the
 * sleeper's re-check sees the unlock. */
static bool rw_try_read(spin_rwlock *rw)
{
    uint32_t s = atomic_load(&rw->state);
    while (!(s & RW_WRITER) && atomic_load(&rw->wwait) == 0)
        if (atomic_compare_exchange_weak(&rw->state, &s, s + 1))
            return true;
    return false;
}

static bool rw_try_write(spin_rwlock *rw)
{
    uint32_t s = 0;
    return atomic_compare_exchange_strong(&rw->state, &s, RW_WRITER);
}

/* Spins with kart's budget, then sleeps on seq, until try succeeds. */
static void rw_acquire(spin_rwlock *rw, bool (*try)(spin_rwlock *))
{
    if (try(rw))
        return;
    for (spin sp = {0, 0}; spin_next(&sp);)
        if (try(rw))
            return;
    for (;;) {
        atomic_fetch_add(&rw->sleepers, 1);
        uint32_t seq = atomic_load(&rw->seq);
        bool got = try(rw);
        if (!got)
            futex_wait(&rw->seq, seq, rw->shared);
        atomic_fetch_sub(&rw->sleepers, 1);
        if (got || try(rw))
            return;
    }
}

static void rw_wake(spin_rwlock *rw)
{
    if (atomic_load(&rw->sleepers)) {
        atomic_fetch_add(&rw->seq, 1);
        futex_wake(&rw->seq, INT_MAX, rw->shared);
    }
}

void spin_rwlock_rdlock(spin_rwlock *rw)
{
    rw_acquire(rw, rw_try_read);
}

void spin_rwlock_wrlock(spin_rwlock *rw)
{
    /* Counted while it waits: new readers stay out (writer preference). */
    if (rw_try_write(rw))
        return;
    atomic_fetch_add(&rw->wwait, 1);
    rw_acquire(rw, rw_try_write);
    /* Readers blocked by this count now wait for the write unlock. */
    atomic_fetch_sub(&rw->wwait, 1);
}

void spin_rwlock_unlock(spin_rwlock *rw)
{
    uint32_t s = atomic_load(&rw->state);
    if (s & RW_WRITER) {
        atomic_store(&rw->state, 0);
        rw_wake(rw);
    } else if (atomic_fetch_sub(&rw->state, 1) == 1) {
        rw_wake(rw); /* the last reader out: a writer may wait */
    }
}

/* ---- barrier ---- */

void spin_barrier_init(spin_barrier *b, uint32_t parties, bool shared)
{
    atomic_init(&b->arrived, 0);
    atomic_init(&b->generation, 0);
    b->parties = parties;
    b->shared = shared;
}

int spin_barrier_wait(spin_barrier *b)
{
    uint32_t gen = atomic_load(&b->generation);
    if (atomic_fetch_add(&b->arrived, 1) + 1 == b->parties) {
        /* Reset before the generation moves: nobody can arrive at the
         * next round until it has. */
        atomic_store(&b->arrived, 0);
        atomic_fetch_add(&b->generation, 1);
        futex_wake(&b->generation, INT_MAX, b->shared);
        return 1;
    }
    for (spin sp = {0, 0}; spin_next(&sp);)
        if (atomic_load(&b->generation) != gen)
            return 0;
    while (atomic_load(&b->generation) == gen)
        futex_wait(&b->generation, gen, b->shared);
    return 0;
}

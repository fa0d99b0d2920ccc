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
 * Each sleeper lists itself in its bucket; a wake marks at most n sleepers
 * on that word and broadcasts, and only the marked ones leave, so wake(1)
 * releases one sleeper as futex(2) does.
 *
 * The buckets live in one process, so a waker in another process cannot
 * reach them: a shared wait therefore sleeps at most SHARED_SLICE_NS at a
 * time and returns as a spurious wake-up, so that its caller re-checks the
 * word in shared memory. Between processes the fallback is correct with up
 * to a millisecond of extra latency; within one it wakes at once.
 *
 * A fork child gets the table as it was at the fork: a bucket's mutex may
 * be held by a thread of the parent that the child does not have, its
 * condition variable may count the parent's sleepers, and its list names
 * them. The child makes the whole table anew (it has no sleepers: its one
 * thread is the one that forked).
 */
#include "deadline.h"
#include "futex.h"

#ifdef KART__FUTEX_NATIVE
#error                                                                                             \
    "futex_parking.c replaces futex(2): the Makefile builds it off Linux or with FUTEX=parking only"
#endif

#include <pthread.h>
#include <stdint.h>

#define BUCKETS 256
#define SHARED_SLICE_NS 1000000

/* A sleeper, on its own stack, listed in its bucket until it leaves. */
typedef struct sleeper {
    const void *word;
    bool woken;
    struct sleeper *next;
} sleeper;

typedef struct bucket {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sleeper *sleepers;
} bucket;

static bucket buckets[BUCKETS];
static pthread_once_t buckets_once = PTHREAD_ONCE_INIT;
static bool monotonic_cond;
static _Atomic bool buckets_made;

static void make_buckets(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
#if !defined(__APPLE__)
    monotonic_cond = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0;
#endif
    for (int i = 0; i < BUCKETS; i++) {
        pthread_mutex_init(&buckets[i].lock, NULL);
        pthread_cond_init(&buckets[i].cond, &attr);
        buckets[i].sleepers = NULL;
    }
    pthread_condattr_destroy(&attr);
}

static void init_buckets(void)
{
    make_buckets();
    atomic_store(&buckets_made, true);
}

/* In a fork child: a bucket locked or slept on by a thread of the parent
 * would hang the child's first wait or wake there. (Not made yet: the
 * child's first use makes it, as in the parent.) */
static void remake_buckets_in_child(void)
{
    if (atomic_load(&buckets_made))
        make_buckets();
}

/* A priority: a function spawned from a statically linked program runs in
 * the program's first constructor without one (kart/process.h). */
__attribute__((constructor(104))) static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, remake_buckets_in_child);
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
        deadline = kart__timespec_ns(now) + left;
    }
    return kart__timespec(deadline);
}

int kart__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline, bool shared)
{
    bool sliced = false;
    if (shared) {
        int64_t slice_end = kart_now_ns() + SHARED_SLICE_NS;
        if (deadline < 0 || deadline > slice_end) {
            deadline = slice_end;
            sliced = true;
        }
    }
    bucket *b = bucket_of(word);
    int err = 0;
    pthread_mutex_lock(&b->lock);
    if (atomic_load(word) != expected) {
        pthread_mutex_unlock(&b->lock);
        return -EAGAIN;
    }
    sleeper me = {.word = word, .next = b->sleepers};
    b->sleepers = &me;
    struct timespec ts = deadline >= 0 ? cond_deadline(deadline) : (struct timespec){0, 0};
    while (!me.woken) {
        if (deadline < 0) {
            pthread_cond_wait(&b->cond, &b->lock);
        } else if (pthread_cond_timedwait(&b->cond, &b->lock, &ts) == ETIMEDOUT) {
            /* A sliced shared wait ends as a spurious wake-up. */
            err = me.woken || sliced ? 0 : -ETIMEDOUT;
            break;
        }
    }
    for (sleeper **p = &b->sleepers; *p; p = &(*p)->next)
        if (*p == &me) {
            *p = me.next;
            break;
        }
    pthread_mutex_unlock(&b->lock);
    return err;
}

/* Marks at most n sleepers on word as woken, then wakes the bucket: the
 * others go back to sleep, so notify(1) releases one waiter, as with
 * futex(2). */
int kart__futex_wake(_Atomic uint32_t *word, int n, bool shared)
{
    (void)shared; /* sleepers in other processes poll the word themselves */
    bucket *b = bucket_of(word);
    int woken = 0;
    pthread_mutex_lock(&b->lock);
    for (sleeper *s = b->sleepers; s && woken < n; s = s->next)
        if (s->word == (const void *)word && !s->woken) {
            s->woken = true;
            woken++;
        }
    if (woken)
        pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return woken;
}

/*
 * core/alarm.c — kart_alarm, Python's threading.Timer without a thread per
 * timer: every alarm of the process waits in one binary min-heap, served
 * by one timer thread started on first use.
 *
 * The clever idea: each alarm carries its own heap index, so cancel
 * removes it from the middle of the heap in O(log n) instead of leaving a
 * tombstone, and ties on the deadline are broken by a start sequence
 * number, so alarms due at the same instant fire in the order they were
 * started. The thread sleeps on a condition variable on CLOCK_MONOTONIC
 * until the earliest deadline; a start that becomes the new earliest
 * signals it.
 *
 * Fork: the child has no timer thread. A handler resets the state in the
 * child — alarms that were waiting are cancelled there (they fire in the
 * parent only) and the child's first start makes a new timer thread.
 */
#include "deadline.h"
#include "futex.h"

#include <kart/thread.h>
#include <pthread.h>
#include <stdlib.h>

enum { IDLE = 0, WAITING = 1, RUNNING = 2, DONE = 3, CANCELLED = 4 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;     /* the timer thread sleeps here */
static pthread_cond_t finished; /* joiners sleep here */
static int conds_err;
static kart_alarm **heap;
static uint32_t heap_len, heap_cap;
static uint64_t next_seq;
static kart_alarm *running; /* the alarm whose fn runs now */
/* Its fn destroyed it: the timer thread must not touch it afterwards. */
static bool running_destroyed;

/* The timer thread is started outside `lock`, under its own mutex, so that
 * `lock` is never held while waiting for another thread (which would
 * deadlock with the registry's fork handler). */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool thread_started;
static _Thread_local bool on_timer_thread;

static int init_cond(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int err = pthread_condattr_init(&attr);
    if (err)
        return err;
    err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!err)
        err = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return err;
}

static int timer_main(void *unused);

static int init_conds(void)
{
    int err = init_cond(&wake);
    return err ? err : init_cond(&finished);
}

static int start_thread(void)
{
    if (atomic_load_explicit(&thread_started, memory_order_acquire))
        return 0;
    int err = 0;
    pthread_mutex_lock(&start_lock);
    if (!atomic_load_explicit(&thread_started, memory_order_relaxed)) {
        kart_thread_options opts = {.name = "kart-timer", .detached = true};
        err = kart_thread_start(NULL, timer_main, NULL, &opts);
        if (!err)
            atomic_store_explicit(&thread_started, true, memory_order_release);
    }
    pthread_mutex_unlock(&start_lock);
    return err;
}

static bool before(const kart_alarm *a, const kart_alarm *b)
{
    return a->deadline_ < b->deadline_ || (a->deadline_ == b->deadline_ && a->seq_ < b->seq_);
}

static void place(kart_alarm *a, uint32_t i)
{
    heap[i] = a;
    a->index_ = i;
}

static void sift_up(uint32_t i)
{
    kart_alarm *a = heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!before(a, heap[parent]))
            break;
        place(heap[parent], i);
        i = parent;
    }
    place(a, i);
}

static void sift_down(uint32_t i)
{
    kart_alarm *a = heap[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= heap_len)
            break;
        if (child + 1 < heap_len && before(heap[child + 1], heap[child]))
            child++;
        if (!before(heap[child], a))
            break;
        place(heap[child], i);
        i = child;
    }
    place(a, i);
}

static void heap_remove(kart_alarm *a)
{
    uint32_t i = a->index_;
    kart_alarm *last = heap[--heap_len];
    if (i == heap_len)
        return;
    place(last, i);
    if (i > 0 && before(last, heap[(i - 1) / 2]))
        sift_up(i);
    else
        sift_down(i);
}

static void timespec_at(int64_t ns, struct timespec *ts)
{
    *ts = kart__timespec(ns);
}

static int timer_main(void *unused)
{
    (void)unused;
    on_timer_thread = true;
    pthread_mutex_lock(&lock);
    for (;;) {
        if (heap_len == 0) {
            pthread_cond_wait(&wake, &lock);
            continue;
        }
        kart_alarm *a = heap[0];
        if (a->deadline_ > kart_now_ns()) {
            struct timespec ts;
            timespec_at(a->deadline_, &ts);
            pthread_cond_timedwait(&wake, &lock, &ts);
            continue;
        }
        heap_remove(a);
        atomic_store_explicit(&a->state_, RUNNING, memory_order_relaxed);
        running = a;
        kart_alarm_fn fn = a->fn_;
        void *arg = a->arg_;
        pthread_mutex_unlock(&lock);
        fn(arg);
        pthread_mutex_lock(&lock);
        /* Nothing changes a running alarm (start says -EBUSY, cancel
         * -EALREADY) but its own fn's kart_alarm_destroy(), after which
         * its memory may be gone. */
        if (!running_destroyed)
            atomic_store_explicit(&a->state_, DONE, memory_order_relaxed);
        running_destroyed = false;
        running = NULL;
        pthread_cond_broadcast(&finished);
    }
    return 0;
}

KART_API int kart_alarm_start(kart_alarm *alarm, int64_t delay_ns, kart_alarm_fn fn, void *arg)
{
    if (!alarm || !fn || delay_ns < 0)
        return -EINVAL;
    if (conds_err)
        return -conds_err;
    int err = start_thread();
    if (err)
        return err;
    pthread_mutex_lock(&lock);
    uint32_t state = atomic_load_explicit(&alarm->state_, memory_order_relaxed);
    if (state == WAITING || state == RUNNING) {
        err = -EBUSY;
        goto out;
    }
    if (heap_len == heap_cap) {
        uint32_t cap = heap_cap ? heap_cap * 2 : 64;
        kart_alarm **grown = realloc(heap, cap * sizeof(*grown));
        if (!grown) {
            err = -ENOMEM;
            goto out;
        }
        heap = grown;
        heap_cap = cap;
    }
    alarm->fn_ = fn;
    alarm->arg_ = arg;
    alarm->deadline_ = kart__deadline(delay_ns);
    alarm->seq_ = next_seq++;
    atomic_store_explicit(&alarm->state_, WAITING, memory_order_relaxed);
    place(alarm, heap_len++);
    sift_up(alarm->index_);
    if (alarm->index_ == 0)
        pthread_cond_signal(&wake);
out:
    pthread_mutex_unlock(&lock);
    return err;
}

KART_API int kart_alarm_cancel(kart_alarm *alarm)
{
    if (!alarm)
        return -EINVAL;
    pthread_mutex_lock(&lock);
    int err;
    switch (atomic_load_explicit(&alarm->state_, memory_order_relaxed)) {
    case WAITING:
        heap_remove(alarm);
        atomic_store_explicit(&alarm->state_, CANCELLED, memory_order_relaxed);
        pthread_cond_broadcast(&finished);
        err = 0;
        break;
    case CANCELLED:
        err = 0;
        break;
    case RUNNING:
    case DONE:
        err = -EALREADY;
        break;
    default:
        err = -EINVAL;
    }
    pthread_mutex_unlock(&lock);
    return err;
}

KART_API int kart_alarm_init(kart_alarm *alarm)
{
    if (!alarm)
        return -EINVAL;
    *alarm = (kart_alarm)KART_ALARM_INIT;
    return 0;
}

KART_API void kart_alarm_destroy(kart_alarm *alarm)
{
    if (!alarm)
        return;
    pthread_mutex_lock(&lock);
    switch (atomic_load_explicit(&alarm->state_, memory_order_relaxed)) {
    case WAITING:
        heap_remove(alarm);
        atomic_store_explicit(&alarm->state_, CANCELLED, memory_order_relaxed);
        pthread_cond_broadcast(&finished);
        break;
    case RUNNING:
        if (on_timer_thread) {
            /* Only one alarm runs, on this thread: the caller is its fn. */
            running_destroyed = true;
            break;
        }
        while (atomic_load_explicit(&alarm->state_, memory_order_relaxed) == RUNNING)
            pthread_cond_wait(&finished, &lock);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&lock);
}

static bool finished_state(const kart_alarm *alarm)
{
    uint32_t s = atomic_load_explicit(&((kart_alarm *)alarm)->state_, memory_order_relaxed);
    return s == DONE || s == CANCELLED;
}

KART_API int kart_alarm_join(kart_alarm *alarm, int64_t timeout_ns)
{
    if (!alarm)
        return -EINVAL;
    int64_t deadline = kart__deadline(timeout_ns);
    pthread_mutex_lock(&lock);
    int err = 0;
    uint32_t s = atomic_load_explicit(&alarm->state_, memory_order_relaxed);
    if (s == IDLE || s > CANCELLED) {
        err = -EINVAL;
        goto out;
    }
    if (on_timer_thread && !finished_state(alarm)) {
        err = -EDEADLK;
        goto out;
    }
    while (!finished_state(alarm)) {
        if (deadline < 0) {
            pthread_cond_wait(&finished, &lock);
            continue;
        }
        if (kart_now_ns() >= deadline) {
            err = -ETIMEDOUT;
            break;
        }
        struct timespec ts;
        timespec_at(deadline, &ts);
        pthread_cond_timedwait(&finished, &lock, &ts);
    }
out:
    pthread_mutex_unlock(&lock);
    return err;
}

/* ---- fork ---- */

static void before_fork(void)
{
    pthread_mutex_lock(&start_lock);
    pthread_mutex_lock(&lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&start_lock);
}

/* The forking thread owns both mutexes here (before_fork took them). The
 * condition variables may count waiters that do not exist in the child, so
 * they are made anew. */
static void after_fork_child(void)
{
    init_conds();
    for (uint32_t i = 0; i < heap_len; i++)
        atomic_store_explicit(&heap[i]->state_, CANCELLED, memory_order_relaxed);
    heap_len = 0;
    if (running && !running_destroyed)
        atomic_store_explicit(&running->state_, DONE, memory_order_relaxed);
    running = NULL;
    running_destroyed = false;
    atomic_store_explicit(&thread_started, false, memory_order_relaxed);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&start_lock);
}

/* Priority 102: after core/thread.c registers its fork handlers (see
 * there). */
__attribute__((constructor(102))) static void alarm_init(void)
{
    conds_err = init_conds();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

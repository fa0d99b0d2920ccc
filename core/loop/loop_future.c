/*
 * core/loop/loop_future.c — kart_future_await: a future's done callback
 * on the loop's thread, with no helper thread, bridge or eventfd per
 * future.
 *
 * Two paths, one behaviour:
 *  - the ring: the backend's futex_start (io_uring with FUTEX_WAIT, 6.7:
 *    uring/uring_futex.c) waits on the future's state word. The future's
 *    completion already futex-wakes that word when someone sleeps on it
 *    (the waiting bit beside its callback list, which this file sets as
 *    kart_future_wait's sleepers do), so the completing thread does
 *    nothing new. The wait's completion comes back from the loop's wait;
 *    the state is checked again (a wake-up with the future not done is
 *    spurious: the wait is queued again).
 *  - the portable one (every other backend, or a ring that cannot): a done
 *    callback on the future, run by the completing thread, puts the await
 *    on the loop's inbox and sends the inbox's async handle.
 * A future already done is delivered through the inbox too, so that its
 * callback runs on the loop's next turn, never inside kart_future_await.
 *
 * The inbox outlives the loop while completing threads may still reach it:
 * it is reference-counted (the loop's reference, and one per await that is
 * a callback on its future), and a loop's free marks it dead under its
 * lock, after which a completing thread only frees its await.
 */
#include "loop_private.h"
#include "pool_private.h" /* the future's state word and waiting bit */

#include <kart/pool.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

typedef struct kart__await kart__await;
struct kart__await {
    kart__await *next, *prev; /* the inbox, or the ring's list (prev) */
    kart_future *f;
    kart_future_cb cb; /* NULL: the future was freed without being done */
    void *arg;
    struct kart__awaits *box;
};

struct kart__awaits {
    kart_async async; /* the inbox's wake-up */
    pthread_mutex_t lock;
    kart__await *head, **tail; /* delivered, for the loop (lock) */
    size_t refs;               /* the loop's + callbacks registered (lock) */
    bool dead;                 /* the loop was freed (lock) */
    bool signalled;            /* a send is made or on its way for head (lock) */
    _Atomic int sending;       /* completing threads in kart_async_send */
    kart__await *ring;         /* waiting on the ring (loop thread) */
};

static void box_unref(struct kart__awaits *b, size_t n)
{
    pthread_mutex_lock(&b->lock);
    b->refs -= n;
    size_t left = b->refs;
    pthread_mutex_unlock(&b->lock);
    if (!left) {
        pthread_mutex_destroy(&b->lock);
        free(b);
    }
}

/* Runs on the thread that completes the future (or the loop's, for one
 * already done): hands the await to the loop. */
static void box_push(kart__await *a)
{
    struct kart__awaits *b = a->box;
    pthread_mutex_lock(&b->lock);
    if (b->dead) {
        pthread_mutex_unlock(&b->lock);
        free(a);
        box_unref(b, 1);
        return;
    }
    bool first = !b->signalled;
    a->next = NULL;
    *b->tail = a;
    b->tail = &a->next;
    /* The send is made outside the lock (the loop, woken by it, takes the
     * lock at once), counted: a loop's free marks the inbox dead under
     * the lock, then waits for the sends in flight before it stops the
     * async handle. Only the first await of a batch sends. */
    if (first) {
        b->signalled = true;
        atomic_fetch_add_explicit(&b->sending, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&b->lock);
    if (first) {
        /* A send that fails (its eventfd write: EIO under check-faults)
         * is taken back: tried again; if every try fails, the batch is
         * marked unsignalled, so that the next await sends for it (before,
         * "first" meant an empty inbox, and a batch whose sends all failed
         * waited for ever: no later await of it sent). */
        int rc = 0;
        for (int i = 0; i < 3 && (rc = kart_async_send(&b->async)) < 0; i++)
            ;
        if (rc < 0) {
            pthread_mutex_lock(&b->lock);
            b->signalled = false;
            pthread_mutex_unlock(&b->lock);
        }
        atomic_fetch_sub_explicit(&b->sending, 1, memory_order_release);
    }
}

static void on_done(kart_future *f, void *arg)
{
    (void)f;
    box_push(arg);
}

/* The future was freed without being done: its callback never runs. The
 * loop still counts the await as pending; it is delivered without one. */
static void on_drop(void *arg)
{
    kart__await *a = arg;
    a->cb = NULL;
    box_push(a);
}

static void deliver(kart_loop *loop, kart__await *a)
{
    kart__op_end(loop);
    if (a->cb)
        a->cb(a->f, a->arg);
    free(a);
}

/* The inbox's async callback: every await handed over since the last. */
static void box_run(kart_async *async)
{
    struct kart__awaits *b = (struct kart__awaits *)async;
    kart_loop *loop = async->base.loop;
    pthread_mutex_lock(&b->lock);
    kart__await *list = b->head;
    b->head = NULL;
    b->tail = &b->head;
    b->signalled = false;
    size_t n = 0;
    for (kart__await *a = list; a; a = a->next)
        n++;
    b->refs -= n; /* the loop's own reference keeps it above 0 */
    pthread_mutex_unlock(&b->lock);
    while (list) {
        kart__await *next = list->next;
        deliver(loop, list);
        list = next;
    }
}

static int box_get(kart_loop *loop, struct kart__awaits **out)
{
    if (!loop->awaits) {
        struct kart__awaits *b = calloc(1, sizeof(*b));
        if (!b)
            return -ENOMEM;
        if (pthread_mutex_init(&b->lock, NULL)) {
            free(b);
            return -ENOMEM;
        }
        b->tail = &b->head;
        b->refs = 1;
        kart_async_init(loop, &b->async);
        kart_async_start(&b->async, box_run);
        /* The awaits keep the loop running, each as a pending operation;
         * the handle is the loop's own, not one of the user's: it is
         * counted nowhere (marked stopped, still on the loop's list of
         * async handles, which is what sends and dispatch use) until the
         * loop's free unlinks it (kart__awaits_fini). */
        kart_handle_unref(&b->async.base);
        kart__handle_stop(&b->async.base);
        loop->awaits = b;
    }
    *out = loop->awaits;
    return 0;
}

/* Sets the future's waiting bit (as kart__pool_wait_state does before it
 * sleeps): its publication then futex-wakes the state word. False when
 * the future is done. */
static bool arm(kart_future *f)
{
    kart__pool_cb *w = atomic_load(&f->cbs);
    while (w != KART__POOL_FIRED && !((uintptr_t)w & KART__POOL_WAITING) &&
           !atomic_compare_exchange_weak(&f->cbs, &w,
                                         (kart__pool_cb *)((uintptr_t)w | KART__POOL_WAITING)))
        ;
    return !kart__pool_done(f);
}

/* Queues the ring's wait for a: 0, or a negative errno (then the portable
 * path); 1 when the future is done already. */
static int ring_start(kart_loop *loop, kart__await *a)
{
    const kart__backend_ops *ops = loop->sel->ops;
    /* Asked first (a NULL word): a waiting bit set for nothing would cost
     * the completing thread a futex_wake for each future. Past
     * KART__AWAIT_RING_MAX on the ring, the inbox (why: loop_private.h). */
    if (!ops->futex_start || loop->ring_awaits >= KART__AWAIT_RING_MAX ||
        ops->futex_start(loop->sel, NULL, 0, NULL))
        return -ENOTSUP;
    if (!arm(a->f))
        return 1;
    return ops->futex_start(loop->sel, &a->f->state, KS_QUEUED, a);
}

static void ring_link(kart_loop *loop, kart__await *a)
{
    struct kart__awaits *b = loop->awaits;
    a->prev = NULL;
    a->next = b->ring;
    if (b->ring)
        b->ring->prev = a;
    b->ring = a;
    loop->ring_awaits++;
}

static void ring_unlink(kart_loop *loop, kart__await *a)
{
    struct kart__awaits *b = loop->awaits;
    if (a->prev)
        a->prev->next = a->next;
    else
        b->ring = a->next;
    if (a->next)
        a->next->prev = a->prev;
    loop->ring_awaits--;
}

/* The portable path: 0, or a negative errno (nothing kept). A future done
 * already goes to the inbox, for the loop's next turn. */
static int cb_start(kart__await *a)
{
    struct kart__awaits *b = a->box;
    pthread_mutex_lock(&b->lock);
    b->refs++;
    pthread_mutex_unlock(&b->lock);
    int rc = kart__pool_cb_push(a->f, on_done, a, false, on_drop);
    if (rc == 1)
        box_push(a);
    if (rc < 0) {
        pthread_mutex_lock(&b->lock);
        b->refs--;
        pthread_mutex_unlock(&b->lock);
    }
    return rc < 0 ? rc : 0;
}

KART_API int kart_future_await(kart_future *f, kart_loop *loop, kart_future_cb cb, void *arg)
{
    if (!f || !loop || !cb)
        return -EINVAL;
    if (loop->fork_gen != kart__fork_gen())
        return -ECHILD;
    struct kart__awaits *b;
    int rc = box_get(loop, &b);
    if (rc)
        return rc;
    kart__await *a = malloc(sizeof(*a));
    if (!a)
        return -ENOMEM;
    *a = (kart__await){NULL, NULL, f, cb, arg, b};
    rc = ring_start(loop, a);
    if (rc == 0)
        ring_link(loop, a);
    else if ((rc = cb_start(a)) < 0) {
        free(a);
        return rc;
    }
    kart__op_start(loop);
    return 0;
}

void kart__awaits_ring_dispatch(kart_loop *loop)
{
    const kart__backend_ops *ops = loop->sel->ops;
    int res;
    kart__await *a;
    while ((a = ops->futex_next(loop->sel, &res))) {
        ring_unlink(loop, a);
        /* Woken (0), or the word had changed (-EAGAIN): done, unless the
         * wake-up was spurious. Any other result (the kernel refused the
         * wait) moves the await to the portable path. */
        if (kart__pool_done(a->f)) {
            deliver(loop, a);
            continue;
        }
        int rc = res == 0 || res == -EAGAIN || res == -EINTR ? ring_start(loop, a) : -ENOTSUP;
        if (rc == 0) {
            ring_link(loop, a);
        } else if (rc == 1) {
            deliver(loop, a);
        } else if (cb_start(a) < 0) {
            /* No memory for a callback either: the last resort is to wait
             * here, on the loop's thread, rather than lose the await. */
            kart_future_wait(a->f, -1);
            deliver(loop, a);
        }
    }
}

/* Unlinks the inbox's async handle (counted nowhere: see box_get). */
static void stop_async(struct kart__awaits *b)
{
    kart__handle_start(&b->async.base);
    kart_async_stop(&b->async);
}

void kart__awaits_fini(kart_loop *loop, bool forked)
{
    struct kart__awaits *b = loop->awaits;
    if (!b)
        return;
    loop->awaits = NULL;
    /* The ring's requests: forgotten here, cancelled by the ring's close
     * (a forked child must not touch its parent's ring). */
    if (!forked && loop->sel->ops->futex_stop)
        loop->sel->ops->futex_stop(loop->sel, NULL);
    while (b->ring) {
        kart__await *a = b->ring;
        b->ring = a->next;
        free(a);
    }
    loop->ring_awaits = 0;
    /* A forked child has no completing threads, and its copy of the lock
     * may be held by a thread that is not: the inbox is left as it is. */
    if (forked) {
        stop_async(b);
        return;
    }
    /* Dead first, under the lock: a completing thread that found the
     * inbox alive counted itself in `sending` before it unlocked, and is
     * waited for below, so none touches the handle once it is stopped. */
    pthread_mutex_lock(&b->lock);
    b->dead = true;
    kart__await *list = b->head;
    b->head = NULL;
    b->tail = &b->head;
    b->signalled = false;
    size_t n = 1; /* the loop's reference */
    for (kart__await *a = list; a; a = a->next)
        n++;
    pthread_mutex_unlock(&b->lock);
    while (atomic_load_explicit(&b->sending, memory_order_acquire))
        sched_yield();
    stop_async(b);
    while (list) {
        kart__await *next = list->next;
        free(list);
        list = next;
    }
    box_unref(b, n);
}

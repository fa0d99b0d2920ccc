/*
 * core/timer.c — the loop's timers: a 4-ary min-heap in one array.
 *
 * Why this structure, for a million timers: a heap keeps the exact order
 * the API promises (deadline, then start order) with O(log n) start, stop
 * and fire, and an array heap keeps each node's children next to each
 * other. With four children per node the tree is half as deep as a binary
 * one, and the four children a sift-down compares share one or two cache
 * lines, so a pop over a million entries touches about ten lines where a
 * pointer-linked binary heap (libuv's) chases twenty scattered nodes. Each
 * entry carries its deadline and sequence, so comparisons never touch the
 * timer structs; the timer only learns its new index when it moves, which
 * is what makes stop O(log n) without a search. A timing wheel would make
 * start O(1), but its slots lose the order within a tick unless sorted,
 * and the heap's insert is already O(1) on average for random deadlines.
 */
#include "loop_private.h"

#include <stdlib.h>

#define ARITY 4
#define NOT_IN_HEAP UINT32_MAX

static inline bool before(const kart__timer_entry *a, const kart__timer_entry *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static inline void place(kart__timer_heap *h, uint32_t i, kart__timer_entry e)
{
    h->e[i] = e;
    e.timer->heap_index_ = i;
}

static void sift_up(kart__timer_heap *h, uint32_t i, kart__timer_entry e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / ARITY;
        if (!before(&e, &h->e[parent]))
            break;
        place(h, i, h->e[parent]);
        i = parent;
    }
    place(h, i, e);
}

static void sift_down(kart__timer_heap *h, uint32_t i, kart__timer_entry e)
{
    for (;;) {
        uint32_t first = i * ARITY + 1;
        if (first >= h->n)
            break;
        uint32_t last = first + ARITY < h->n ? first + ARITY : h->n;
        uint32_t best = first;
        for (uint32_t c = first + 1; c < last; c++)
            if (before(&h->e[c], &h->e[best]))
                best = c;
        if (!before(&h->e[best], &e))
            break;
        place(h, i, h->e[best]);
        i = best;
    }
    place(h, i, e);
}

static void heap_remove(kart__timer_heap *h, uint32_t i)
{
    kart__timer_entry last = h->e[--h->n];
    h->e[i].timer->heap_index_ = NOT_IN_HEAP;
    if (i == h->n)
        return;
    /* The last entry fills the hole; it may belong above or below it. */
    if (i > 0 && before(&last, &h->e[(i - 1) / ARITY]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

static int heap_insert(kart__timer_heap *h, kart__timer_entry e)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        kart__timer_entry *ne = realloc(h->e, (size_t)cap * sizeof(*ne));
        if (!ne)
            return -ENOMEM;
        h->e = ne;
        h->cap = cap;
    }
    sift_up(h, h->n++, e);
    return 0;
}

int64_t kart__timers_next_deadline(const kart_loop *loop)
{
    return loop->timers.n ? loop->timers.e[0].deadline : -1;
}

void kart__timers_fini(kart_loop *loop)
{
    free(loop->timers.e);
    loop->timers = (kart__timer_heap){0};
}

static int64_t add_saturating(int64_t a, int64_t b)
{
    return b > INT64_MAX - a ? INT64_MAX : a + b;
}

static int schedule(kart_timer *t, int64_t timeout_ns)
{
    kart_loop *loop = t->base.loop;
    t->deadline_ = add_saturating(loop->now, timeout_ns);
    t->seq_ = loop->timer_seq++;
    return heap_insert(&loop->timers,
                       (kart__timer_entry){.deadline = t->deadline_, .seq = t->seq_, .timer = t});
}

int kart__timers_run(kart_loop *loop)
{
    kart__timer_heap *h = &loop->timers;
    /* Timers started by the callbacks of this run (a zero timeout, a short
     * repeat) wait for the next iteration, so they cannot starve I/O. */
    uint64_t batch_end = loop->timer_seq;
    int fired = 0;
    while (h->n && h->e[0].deadline <= loop->now && h->e[0].seq < batch_end) {
        kart_timer *t = h->e[0].timer;
        heap_remove(h, 0);
        /* Re-arm a repeating timer before its callback, so that the
         * callback may stop or restart it. */
        if (t->repeat_ == 0 || schedule(t, t->repeat_) < 0)
            kart__handle_stop(&t->base);
        fired++;
        t->cb_(t);
    }
    return fired;
}

KART_API int kart_timer_init(kart_loop *loop, kart_timer *timer)
{
    if (!loop || !timer)
        return -EINVAL;
    kart__handle_init(&timer->base, loop, KART_HANDLE_TIMER);
    timer->deadline_ = 0;
    timer->repeat_ = 0;
    timer->seq_ = 0;
    timer->heap_index_ = NOT_IN_HEAP;
    timer->cb_ = NULL;
    return 0;
}

KART_API int kart_timer_stop(kart_timer *timer)
{
    if (!timer)
        return -EINVAL;
    if (timer->heap_index_ != NOT_IN_HEAP)
        heap_remove(&timer->base.loop->timers, timer->heap_index_);
    kart__handle_stop(&timer->base);
    return 0;
}

KART_API int kart_timer_start(kart_timer *timer, kart_timer_cb cb, int64_t timeout_ns,
                              int64_t repeat_ns)
{
    if (!timer || !cb || timeout_ns < 0 || repeat_ns < 0)
        return -EINVAL;
    kart_timer_stop(timer);
    timer->cb_ = cb;
    timer->repeat_ = repeat_ns;
    int err = schedule(timer, timeout_ns);
    if (err < 0)
        return err;
    kart__handle_start(&timer->base);
    return 0;
}

KART_API int kart_timer_again(kart_timer *timer)
{
    if (!timer || !timer->cb_ || timer->repeat_ == 0)
        return -EINVAL;
    return kart_timer_start(timer, timer->cb_, timer->repeat_, timer->repeat_);
}

KART_API int kart_timer_set_repeat(kart_timer *timer, int64_t repeat_ns)
{
    if (!timer || repeat_ns < 0)
        return -EINVAL;
    timer->repeat_ = repeat_ns;
    return 0;
}

KART_API int64_t kart_timer_get_repeat(const kart_timer *timer)
{
    return timer->repeat_;
}

KART_API int64_t kart_timer_due_in(const kart_timer *timer)
{
    if (!kart__handle_active(&timer->base) || timer->heap_index_ == NOT_IN_HEAP)
        return -1;
    int64_t left = timer->deadline_ - timer->base.loop->now;
    return left > 0 ? left : 0;
}

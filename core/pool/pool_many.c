/*
 * core/pool_many.c — many futures at once: kart_future_wait_many
 * (concurrent.futures.wait) and the kart_as_completed iterator. Both hang
 * a callback on each future not yet done; the callbacks share a
 * reference-counted record with the caller, so that one firing after the
 * caller returned (or after the iterator was freed) touches only memory
 * it still holds.
 */
#include "pool_private.h"

#include <stdlib.h>

/* What the callbacks of wait_many and as_completed hold: freed by the
 * last of the caller and the callbacks not yet run or dropped. */
typedef struct waiter {
    _Atomic uint32_t word; /* bumped at every completion: the futex */
    _Atomic uint32_t refs;
} waiter;

static void waiter_unref(waiter *w)
{
    if (atomic_fetch_sub(&w->refs, 1) == 1)
        free(w);
}

static void waiter_bump(waiter *w)
{
    atomic_fetch_add(&w->word, 1);
    kart__futex_wake(&w->word, INT32_MAX, false);
}

static void wm_fire(kart_future *f, void *arg)
{
    (void)f;
    waiter_bump(arg);
    waiter_unref(arg);
}

static void wm_drop(void *arg)
{
    waiter_unref(arg);
}

/* Returns the number done when `mode` is met, else -1. */
static int wm_met(kart_future *const *fs, size_t n, kart_future_wait_mode mode)
{
    size_t done = 0;
    bool failed = false;
    for (size_t i = 0; i < n; i++) {
        if (!kart__pool_done(fs[i]))
            continue;
        done++;
        if (fs[i]->err && !atomic_load(&fs[i]->cancelled))
            failed = true;
    }
    int count = done > INT32_MAX ? INT32_MAX : (int)done;
    if (done == n || (mode == KART_FUTURE_FIRST_COMPLETED && done) ||
        (mode == KART_FUTURE_FIRST_EXCEPTION && failed))
        return count;
    return -1;
}

KART_API int kart_future_wait_many(kart_future *const *fs, size_t n, kart_future_wait_mode mode,
                                   int64_t timeout_ns)
{
    if ((!fs && n) || (unsigned)mode > KART_FUTURE_FIRST_EXCEPTION)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return -EINVAL;
    int r = wm_met(fs, n, mode);
    if (r >= 0)
        return r;
    if (timeout_ns == 0)
        return -ETIMEDOUT;
    int64_t deadline = kart__pool_deadline(timeout_ns);
    waiter *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    atomic_store(&w->refs, 1);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (kart__pool_done(fs[i]))
            continue;
        atomic_fetch_add(&w->refs, 1);
        int k = kart__pool_cb_push(fs[i], wm_fire, w, false, wm_drop);
        if (k != 0)
            atomic_fetch_sub(&w->refs, 1);
        if (k < 0)
            rc = k;
    }
    while (rc == 0) {
        uint32_t seen = atomic_load(&w->word);
        if ((r = wm_met(fs, n, mode)) >= 0) {
            rc = r;
            break;
        }
        if (kart__futex_wait(&w->word, seen, deadline, false) == -ETIMEDOUT &&
            atomic_load(&w->word) == seen) {
            r = wm_met(fs, n, mode);
            rc = r >= 0 ? r : -ETIMEDOUT;
            break;
        }
    }
    waiter_unref(w);
    return rc;
}

typedef struct ac_entry {
    struct kart_as_completed *ac;
    size_t index;
} ac_entry;

struct kart_as_completed {
    waiter w; /* first: the callbacks' hold is on the whole iterator */
    size_t n, taken;
    _Atomic size_t filled;
    _Atomic size_t *order; /* index + 1 in completion order; 0: not yet */
    ac_entry *ents;
};

static void ac_unref(kart_as_completed *ac)
{
    if (atomic_fetch_sub(&ac->w.refs, 1) == 1) {
        free(ac->order);
        free(ac->ents);
        free(ac);
    }
}

static void ac_record(kart_as_completed *ac, size_t index)
{
    size_t pos = atomic_fetch_add(&ac->filled, 1);
    atomic_store(&ac->order[pos], index + 1);
    waiter_bump(&ac->w);
}

static void ac_fire(kart_future *f, void *arg)
{
    ac_entry *e = arg;
    (void)f;
    kart_as_completed *ac = e->ac;
    ac_record(ac, e->index);
    ac_unref(ac);
}

static void ac_drop(void *arg)
{
    ac_unref(((ac_entry *)arg)->ac);
}

KART_API int kart_as_completed_create(kart_future *const *fs, size_t n, kart_as_completed **out)
{
    if (!out || (!fs && n))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return -EINVAL;
    kart_as_completed *ac = calloc(1, sizeof(*ac));
    if (!ac)
        return -ENOMEM;
    ac->n = n;
    ac->order = calloc(n ? n : 1, sizeof(*ac->order));
    ac->ents = calloc(n ? n : 1, sizeof(*ac->ents));
    if (!ac->order || !ac->ents) {
        free(ac->order);
        free(ac->ents);
        free(ac);
        return -ENOMEM;
    }
    atomic_store(&ac->w.refs, 1);
    for (size_t i = 0; i < n; i++) {
        ac->ents[i] = (ac_entry){ac, i};
        atomic_fetch_add(&ac->w.refs, 1);
        int k = kart__pool_cb_push(fs[i], ac_fire, &ac->ents[i], false, ac_drop);
        if (k != 0)
            atomic_fetch_sub(&ac->w.refs, 1);
        if (k == 1) {
            ac_record(ac, i); /* already done */
        } else if (k < 0) {
            /* The callbacks already in place hold the iterator until they
             * run or are dropped; nobody reads what they record. */
            ac_unref(ac);
            return k;
        }
    }
    *out = ac;
    return 0;
}

KART_API int kart_as_completed_next(kart_as_completed *it, int64_t timeout_ns, size_t *index)
{
    if (!it || !index)
        return -EINVAL;
    if (it->taken == it->n)
        return 0;
    int64_t deadline = kart__pool_deadline(timeout_ns);
    for (;;) {
        uint32_t seen = atomic_load(&it->w.word);
        size_t v = atomic_load(&it->order[it->taken]);
        if (v) {
            *index = v - 1;
            it->taken++;
            return 1;
        }
        if (timeout_ns == 0 ||
            (kart__futex_wait(&it->w.word, seen, deadline, false) == -ETIMEDOUT &&
             !atomic_load(&it->order[it->taken])))
            return -ETIMEDOUT;
    }
}

KART_API void kart_as_completed_free(kart_as_completed *it)
{
    if (it)
        ac_unref(it);
}

/*
 * core/pool_imap.c — imap and imap_unordered: lazy iterators that keep a
 * window of chunk jobs in flight (two per worker), pulling the input of
 * each chunk from the caller's source only when a slot of the window
 * frees, in the threads that call kart_pool_imap and
 * kart_pool_iter_next. Each chunk is a job of its own whose input and
 * output live in buffers of the pool's heap (the arena for process pools,
 * on the node of the queue it goes to).
 */
#include "pool_private.h"

#include <stdlib.h>
#include <string.h>

typedef struct iter_slot {
    struct kart_future *j; /* NULL: free */
    size_t n, pos;
    uint64_t seq;
} iter_slot;

struct kart_pool_iter {
    kart_pool *pool;
    kart_task_fn fn;
    kart_pool_source src;
    void *ctx;
    size_t in_size, out_size, chunk;
    unsigned flags;
    int window;
    iter_slot *slots;
    uint64_t next_seq; /* of the next chunk to submit */
    int cur;           /* unordered: the slot being read, or -1 */
    bool src_end;
    int src_err; /* the source's error, reported once at the end */
    int fatal;   /* a submit failed: reported once, then the end */
    bool ended;
    _Atomic uint32_t word; /* bumped when a chunk of this iterator is done */
    _Atomic uint32_t sleeping;
};

/* A chunk's job was published (its notify, called by the engine). */
static void iter_notify(void *arg)
{
    struct kart_pool_iter *it = arg;
    atomic_fetch_add(&it->word, 1);
    if (atomic_load(&it->sleeping))
        kart__futex_wake(&it->word, INT32_MAX, false);
}

/* Pulls one chunk from the source and submits it into a free slot.
 * Returns 1 (submitted), 0 (the source is done) or an error. */
static int fill_one(kart_pool_iter *it, iter_slot *s)
{
    kart_pool *p = it->pool;
    struct kart_future *j;
    int rc = kart__pool_slot_alloc(p, &j);
    if (rc)
        return rc;
    int nd = kart__pool_caller_node(p);
    size_t in_room = (it->chunk * it->in_size + 63) & ~(size_t)63;
    char *b;
    if ((rc = kart__pool_job_buf(p, j, nd, in_room + it->chunk * it->out_size + 64, (void **)&b))) {
        atomic_store(&j->refs, 1);
        kart__pool_job_unref(p, j);
        return rc;
    }
    size_t n = 0;
    while (n < it->chunk) {
        int r = it->src(it->ctx, b + n * it->in_size);
        if (r <= 0) {
            it->src_end = true;
            if (r < 0)
                it->src_err = r;
            break;
        }
        n++;
    }
    if (n == 0) {
        atomic_store(&j->refs, 1);
        kart__pool_job_unref(p, j);
        return 0;
    }
    uint32_t g = atomic_load(&j->gen) & 0xffff;
    j->kind = KJ_ITEMS;
    j->fn = it->fn;
    j->n = n;
    j->chunk = n;
    j->nchunks = 1;
    j->in_size = it->in_size;
    j->out_size = it->out_size;
    j->in = b;
    j->out = b + in_room;
    j->notify = iter_notify;
    j->notify_arg = it;
    atomic_store_explicit(&j->range, kart__pool_rg(g, 0, 1), memory_order_relaxed);
    if (p->kind == KART_POOL_PROCESSES) {
        atomic_store_explicit(&j->st1, 0, memory_order_relaxed);
        j->st = &j->st1;
    }
    s->j = j;
    s->n = n;
    s->pos = 0;
    s->seq = it->next_seq++;
    rc = kart__pool_submit_job(p, j, nd, false);
    if (rc) {
        s->j = NULL;
        it->next_seq--;
        atomic_store(&j->refs, 1);
        kart__pool_job_unref(p, j);
        return rc;
    }
    return 1;
}

/* Fills the free slots of the window while the source has items. */
static int refill(kart_pool_iter *it)
{
    for (int i = 0; i < it->window && !it->src_end; i++) {
        if (it->slots[i].j)
            continue;
        int rc = fill_one(it, &it->slots[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Lets go of a slot's job once the pool has let go of it too (its
 * publication, which notifies this iterator, is over). */
static void drop(kart_pool_iter *it, iter_slot *s)
{
    struct kart_future *j = s->j;
    kart__pool_wait_state(j, -1);
    while (atomic_load(&j->refs) > 1)
        kart__cpu_relax();
    kart__pool_job_unref(it->pool, j);
    s->j = NULL;
}

KART_API int kart_pool_imap(kart_pool *pool, kart_task_fn fn, kart_pool_source src, void *src_ctx,
                            size_t in_size, size_t out_size, size_t chunk, unsigned flags,
                            kart_pool_iter **out)
{
    if (!pool || !fn || !src || !out || in_size == 0 || (flags & ~KART_POOL_UNORDERED))
        return -EINVAL;
    if (atomic_load(&pool->sh->state) != KART__POOL_RUNNING)
        return -ESHUTDOWN;
    if (!kart__pool_task_ok(pool, fn)) /* spawned workers: by name */
        return -ENOENT;
    kart_pool_iter *it = calloc(1, sizeof(*it));
    if (!it)
        return -ENOMEM;
    it->pool = pool;
    it->fn = fn;
    it->src = src;
    it->ctx = src_ctx;
    it->in_size = in_size;
    it->out_size = out_size;
    it->chunk = chunk ? chunk : 1;
    it->flags = flags;
    it->window = 2 * (pool->nworkers > 0 ? pool->nworkers : 1);
    it->cur = -1;
    it->slots = calloc((size_t)it->window, sizeof(iter_slot));
    if (!it->slots) {
        free(it);
        return -ENOMEM;
    }
    int rc = refill(it);
    if (rc < 0) {
        kart_pool_iter_free(it);
        return rc;
    }
    *out = it;
    return 0;
}

/* The slot to read next, or NULL when none is in flight. Ordered: the
 * oldest chunk; unordered: the one being read, else any that is done,
 * else (waiting for one) the oldest. */
static iter_slot *pick(kart_pool_iter *it, bool *done)
{
    iter_slot *best = NULL;
    if (it->cur >= 0) {
        *done = true;
        return &it->slots[it->cur];
    }
    for (int i = 0; i < it->window; i++) {
        iter_slot *s = &it->slots[i];
        if (!s->j)
            continue;
        if ((it->flags & KART_POOL_UNORDERED) && kart_future_done(s->j) == 1) {
            it->cur = i;
            *done = true;
            return s;
        }
        if (!best || s->seq < best->seq)
            best = s;
    }
    *done = false;
    return best;
}

KART_API int kart_pool_iter_next(kart_pool_iter *it, int64_t timeout_ns, void *result,
                                 int *task_err)
{
    if (!it || !task_err || (!result && it->out_size))
        return -EINVAL;
    if (it->ended) {
        *task_err = 0;
        return 0;
    }
    int64_t deadline = kart__pool_deadline(timeout_ns);
    for (;;) {
        bool done;
        uint32_t seen = atomic_load(&it->word);
        iter_slot *s = pick(it, &done);
        if (!s) {
            it->ended = true;
            if (it->fatal)
                return it->fatal;
            *task_err = it->src_err;
            return 0;
        }
        if (!done) {
            if (it->flags & KART_POOL_UNORDERED) {
                atomic_store(&it->sleeping, 1);
                int rc = 0;
                if (atomic_load(&it->word) == seen)
                    rc = kart__futex_wait(&it->word, seen, deadline, false);
                atomic_store(&it->sleeping, 0);
                if (rc == -ETIMEDOUT && atomic_load(&it->word) == seen)
                    return -ETIMEDOUT;
                continue;
            }
            int rc = kart__pool_wait_state(s->j, deadline);
            if (rc)
                return rc;
        }
        /* Items before the chunk's failing one ran; it and the rest
         * report the chunk's error. */
        if (s->j->err && s->pos >= atomic_load(&s->j->fail_item)) {
            *task_err = s->j->err;
        } else {
            if (it->out_size)
                memcpy(result, s->j->out + s->pos * it->out_size, it->out_size);
            *task_err = 0;
        }
        if (++s->pos == s->n) {
            drop(it, s);
            it->cur = -1;
            int r = it->fatal ? 0 : refill(it);
            if (r < 0) {
                it->fatal = r;
                it->src_end = true;
            }
        }
        return 1;
    }
}

KART_API void kart_pool_iter_free(kart_pool_iter *it)
{
    if (!it)
        return;
    for (int i = 0; i < it->window; i++)
        if (it->slots[i].j)
            drop(it, &it->slots[i]);
    free(it->slots);
    free(it);
}

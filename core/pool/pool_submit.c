/*
 * core/pool_submit.c — putting work into a pool: submit and apply (one
 * task), map and map_async (an array in chunks), with the thread and
 * inline pools' shortcut of running a lone chunk in the caller (see
 * core/pool/pool_job.h for the design).
 */
#include "fault.h"
#include "pool_private.h"

#include <stdlib.h>
#include <string.h>

/* ---- submitting ---- */

/* Runs a one-chunk job of a thread or inline pool in the caller before
 * anyone else can see it (no ring entry, no future handed out yet): no
 * claim, no waiters, no callbacks to race with, so plain stores publish
 * it. */
static void run_here(kart_pool *p, struct kart_future *j)
{
    uint32_t g = atomic_load_explicit(&j->gen, memory_order_relaxed) & 0xffff;
    atomic_store_explicit(&j->range, kart__pool_rg(g, 1, 1), memory_order_relaxed);
    kart__pool_run_chunk(p, j, 0); /* a failure sets j->err (kart__pool_fail_at) */
    atomic_store_explicit(&j->pending, 0, memory_order_relaxed);
    atomic_store_explicit(&j->cbs, KART__POOL_FIRED, memory_order_relaxed);
    atomic_store_explicit(&j->refs, 1, memory_order_relaxed);
    atomic_store_explicit(&j->state, KS_DONE, memory_order_release);
    if (j->notify)
        j->notify(j->notify_arg);
}

int kart__pool_submit_job(kart_pool *p, struct kart_future *j, int node, bool wake_all)
{
    j->node = (uint32_t)node;
    atomic_store_explicit(&j->pending, j->nchunks, memory_order_relaxed);
    uint64_t ref = kart__pool_ref(j->slot, atomic_load(&j->gen));
    if (p->kind == KART_POOL_INLINE) {
        if (atomic_load(&p->sh->state) != KART__POOL_RUNNING)
            return -ESHUTDOWN;
        if (j->nchunks == 1) {
            run_here(p, j);
            return 0;
        }
        if (j->nchunks == 0)
            kart__pool_finish(p, j);
        while (kart__pool_job_work(p, j, ref, -1))
            ;
        return 0;
    }
    kart__pool_node *q = &p->nodes[node];
    if (p->help && j->nchunks == 1 &&
        kart__pool_tail(q) - atomic_load_explicit(&q->head, memory_order_relaxed) >
            64 * (uint64_t)p->nworkers &&
        atomic_load(&p->sh->state) == KART__POOL_RUNNING) {
        /* Task throttling, as libgomp's: with this much queued, one more
         * entry gains nothing, and the caller's time is better spent on
         * the work itself. */
        run_here(p, j);
        return 0;
    }
    if (j->nchunks == 0) {
        if (atomic_load(&p->sh->state) != KART__POOL_RUNNING)
            return -ESHUTDOWN;
        kart__pool_finish(p, j);
        return 0;
    }
    /* The state is read after the reservation (pool_ring.c says why). */
    uint64_t pos = kart__pool_reserve(p, q, 1);
    KART__FAULT_POINT(pool_ring_reserved);
    if (atomic_load(&p->sh->state) != KART__POOL_RUNNING) {
        kart__pool_put(q, pos, KART__POOL_HOLE);
        return -ESHUTDOWN;
    }
    atomic_store_explicit(&j->pushed, 1, memory_order_relaxed); /* published by the put */
    KART__TSAN_RELEASE(j); /* process pools: the workers' side is invisible to TSan */
    kart__pool_put(q, pos, ref);
    kart__pool_wake_node(p, node, wake_all);
    return 0;
}

/* Gives back a slot that was never submitted. */
static void job_abort(kart_pool *p, struct kart_future *j)
{
    atomic_store(&j->refs, 1);
    kart__pool_job_unref(p, j);
}

static int check_node(const kart_pool *p, int node)
{
    if (node < -1)
        return -EINVAL;
    if (node == -1)
        return kart__pool_caller_node(p);
    return kart__pool_node_index(p, node);
}

/* A slot set up for one task, not yet submitted (job_abort gives it
 * back). */
static int prepare(kart_pool *p, int nd, int kind, kart_task_fn fn, kart_task_ptr_fn pfn,
                   const void *arg, size_t arg_len, void *parg, size_t cap,
                   struct kart_future **out)
{
    struct kart_future *j;
    int rc = kart__pool_slot_alloc(p, &j);
    if (rc)
        return rc;
    uint32_t g = atomic_load(&j->gen) & 0xffff;
    j->kind = kind;
    j->fn = fn;
    j->pfn = pfn;
    j->parg = parg;
    j->n = 1;
    j->chunk = 1;
    j->nchunks = 1;
    j->in_size = arg_len;
    j->out_size = kind == KJ_BYTES ? cap : 0;
    atomic_store_explicit(&j->range, kart__pool_rg(g, 0, 1), memory_order_relaxed);
    if (p->kind == KART_POOL_PROCESSES) {
        atomic_store_explicit(&j->st1, 0, memory_order_relaxed);
        j->st = &j->st1;
    }
    if (kind == KJ_BYTES) {
        size_t in_room = (arg_len + 15) & ~(size_t)15;
        char *buf;
        if (in_room + j->out_size <= KART__POOL_INLINE) {
            buf = (char *)j->inl;
        } else if ((rc = kart__pool_job_buf(p, j, nd, in_room + j->out_size, (void **)&buf))) {
            job_abort(p, j);
            return rc;
        }
        if (arg_len)
            memcpy(buf, arg, arg_len);
        j->in = buf;
        j->out = buf + in_room;
    }
    *out = j;
    return 0;
}

static int submit_common(kart_pool *p, int node, int kind, kart_task_fn fn, kart_task_ptr_fn pfn,
                         const void *arg, size_t arg_len, void *parg, size_t cap, kart_future **out)
{
    int nd = check_node(p, node);
    if (nd < 0)
        return nd;
    if (atomic_load(&p->sh->state) != KART__POOL_RUNNING)
        return -ESHUTDOWN;
    if (fn && !kart__pool_task_ok(p, fn)) /* spawned workers: by name */
        return -ENOENT;
    struct kart_future *j;
    int rc = prepare(p, nd, kind, fn, pfn, arg, arg_len, parg, cap, &j);
    if (rc)
        return rc;
    rc = kart__pool_submit_job(p, j, nd, false);
    if (rc) {
        job_abort(p, j);
        return rc;
    }
    *out = j;
    return 0;
}

KART_API int kart_pool_submit_node(kart_pool *pool, int node, kart_task_fn fn, const void *arg,
                                   size_t arg_len, kart_future **out)
{
    if (!pool || !fn || !out || (!arg && arg_len))
        return -EINVAL;
    return submit_common(pool, node, KJ_BYTES, fn, NULL, arg, arg_len, NULL, pool->result_size,
                         out);
}

KART_API int kart_pool_submit(kart_pool *pool, kart_task_fn fn, const void *arg, size_t arg_len,
                              kart_future **out)
{
    return kart_pool_submit_node(pool, -1, fn, arg, arg_len, out);
}

KART_API int kart_pool_submit_ptr(kart_pool *pool, kart_task_ptr_fn fn, void *arg,
                                  kart_future **out)
{
    if (!pool || !fn || !out)
        return -EINVAL;
    if (pool->kind == KART_POOL_PROCESSES)
        return -ENOTSUP;
    return submit_common(pool, -1, KJ_PTR, NULL, fn, NULL, 0, arg, 0, out);
}

/* Pushes n prepared one-chunk jobs to the node's ring with one
 * reservation and one wake-up call: what a burst of submits would do n
 * times. */
static int submit_batch(kart_pool *p, struct kart_future **js, size_t n, int nd)
{
    if (p->kind == KART_POOL_INLINE) {
        if (atomic_load(&p->sh->state) != KART__POOL_RUNNING)
            return -ESHUTDOWN;
        for (size_t i = 0; i < n; i++)
            kart__pool_submit_job(p, js[i], nd, false); /* runs it here */
        return 0;
    }
    kart__pool_node *q = &p->nodes[nd];
    /* Task throttling, as kart__pool_submit_job's: what would queue past
     * 64 entries per worker runs here instead, after the rest is queued
     * (a waiting caller would run it anyway, at more cost). */
    size_t queue = n;
    if (p->help) {
        uint64_t cap = 64 * (uint64_t)p->nworkers,
                 now = kart__pool_tail(q) - atomic_load_explicit(&q->head, memory_order_relaxed);
        queue = now >= cap ? 0 : cap - now < n ? (size_t)(cap - now) : n;
    }
    uint64_t pos = queue ? kart__pool_reserve(p, q, queue) : 0;
    if (atomic_load(&p->sh->state) != KART__POOL_RUNNING) {
        for (size_t i = 0; i < queue; i++)
            kart__pool_put(q, pos + i, KART__POOL_HOLE);
        return -ESHUTDOWN;
    }
    for (size_t i = 0; i < queue; i++) {
        struct kart_future *j = js[i];
        j->node = (uint32_t)nd;
        atomic_store_explicit(&j->pending, 1, memory_order_relaxed);
        atomic_store_explicit(&j->pushed, 1, memory_order_relaxed); /* published by the put */
        KART__TSAN_RELEASE(j); /* process pools: the workers' side is invisible to TSan */
        kart__pool_put(q, pos + i, kart__pool_ref(j->slot, atomic_load(&j->gen)));
    }
    if (queue)
        kart__pool_wake_node(p, nd, queue > 1);
    for (size_t i = queue; i < n; i++) {
        js[i]->node = (uint32_t)nd;
        run_here(p, js[i]);
    }
    return 0;
}

KART_API int kart_pool_submit_many(kart_pool *pool, kart_task_fn fn, const void *args,
                                   size_t arg_len, size_t n, kart_future **out)
{
    int rc = 0;
    if (!pool || !fn || (n && !out) || (n && !args && arg_len))
        rc = -EINVAL;
    else if (atomic_load(&pool->sh->state) != KART__POOL_RUNNING)
        rc = -ESHUTDOWN;
    else if (!kart__pool_task_ok(pool, fn)) /* spawned workers: by name */
        rc = -ENOENT;
    if (rc) {
        for (size_t i = 0; out && i < n; i++)
            out[i] = NULL;
        return rc;
    }
    if (n == 0)
        return 0;
    int nd = kart__pool_caller_node(pool);
    const char *a = args;
    size_t i = 0;
    /* The futures are prepared in out itself (no allocation on this
     * path); on failure every slot goes back and out's entries are NULL,
     * as the header says. */
    for (; i < n; i++)
        if ((rc = prepare(pool, nd, KJ_BYTES, fn, NULL, arg_len ? a + i * arg_len : NULL, arg_len,
                          NULL, pool->result_size, (struct kart_future **)&out[i])))
            break;
    if (!rc)
        rc = submit_batch(pool, (struct kart_future **)out, n, nd);
    if (rc) {
        while (i--)
            job_abort(pool, out[i]);
        for (i = 0; i < n; i++)
            out[i] = NULL;
        return rc;
    }
    return 0;
}

KART_API int kart_pool_apply(kart_pool *pool, kart_task_fn fn, const void *arg, size_t arg_len,
                             void *result, size_t *result_len, int *task_err)
{
    if (!pool || !fn || !result_len || !task_err || (!result && *result_len) || (!arg && arg_len))
        return -EINVAL;
    /* The caller's capacity is the task's: a result that does not fit
     * fails the task (-EMSGSIZE), so -ENOBUFS cannot happen below. */
    kart_future *f;
    int rc = submit_common(pool, -1, KJ_BYTES, fn, NULL, arg, arg_len, NULL, *result_len, &f);
    if (rc)
        return rc;
    rc = kart_future_result(f, -1, result, result_len, task_err);
    kart_future_free(f);
    return rc;
}

/* ---- maps ---- */

static int map_start(kart_pool *pool, kart_task_fn fn, const void *in, size_t in_size, void *out,
                     size_t out_size, size_t n, size_t chunk, kart_future **out_future)
{
    if (atomic_load(&pool->sh->state) != KART__POOL_RUNNING)
        return -ESHUTDOWN;
    if (!kart__pool_task_ok(pool, fn)) /* spawned workers: by name */
        return -ENOENT;
    int nw = pool->nworkers > 0 ? pool->nworkers : 1;
    if (chunk == 0) {
        chunk = (n + 4 * (size_t)nw - 1) / (4 * (size_t)nw);
        if (chunk == 0)
            chunk = 1;
    }
    if (n / chunk >= KART__POOL_MAX_CHUNKS)
        chunk = (n + KART__POOL_MAX_CHUNKS - 1) / KART__POOL_MAX_CHUNKS;
    if (in_size && n > SIZE_MAX / in_size)
        return -EINVAL;
    if (out_size && n > SIZE_MAX / out_size)
        return -EINVAL;
    struct kart_future *j;
    int rc = kart__pool_slot_alloc(pool, &j);
    if (rc)
        return rc;
    int nd = kart__pool_caller_node(pool);
    uint32_t g = atomic_load(&j->gen) & 0xffff;
    uint32_t nc = kart__pool_chunks(n, chunk);
    j->kind = KJ_ITEMS;
    j->fn = fn;
    j->n = n;
    j->chunk = chunk;
    j->nchunks = nc;
    j->in_size = in_size;
    j->out_size = out_size;
    j->in = in;
    j->out = out;
    uint32_t nr = pool->nworkers > 1 && nc > 1 ? (uint32_t)pool->nworkers : 1;
    if (nr > 1) {
        void *r;
        if ((rc = kart__pool_job_buf(pool, j, nd, (size_t)nr * KART__POOL_LINE, &r)))
            goto fail;
        j->ranges = r;
    }
    atomic_store_explicit(&j->nranges, nr, memory_order_relaxed);
    for (uint32_t i = 0; i < nr; i++) {
        atomic_store_explicit(&j->ranges[i * KART__POOL_RSTRIDE],
                              kart__pool_rg(g, (uint32_t)((uint64_t)i * nc / nr),
                                            (uint32_t)((uint64_t)(i + 1) * nc / nr)),
                              memory_order_relaxed);
        /* (a one-range job's range is the job's own word: nothing beside it) */
        if (nr > 1)
            atomic_store_explicit(&j->ranges[i * KART__POOL_RSTRIDE + KART__POOL_RDONE], 0,
                                  memory_order_relaxed);
    }
    if (pool->kind == KART_POOL_PROCESSES && n) {
        /* One block for the chunk marks, the input and the output. */
        size_t st_room = (nc + 63) & ~(size_t)63;
        size_t in_room = (n * in_size + 63) & ~(size_t)63;
        char *b;
        if ((rc = kart__pool_job_buf(pool, j, nd, st_room + in_room + n * out_size, (void **)&b)))
            goto fail;
        memset(b, 0, nc);
        j->st = (_Atomic uint8_t *)b;
        if (in_size)
            memcpy(b + st_room, in, n * in_size);
        j->in = b + st_room;
        j->out = b + st_room + in_room;
        j->copy_out = out;
    }
    rc = kart__pool_submit_job(pool, j, nd, true);
    if (rc)
        goto fail;
    *out_future = j;
    return 0;
fail:
    job_abort(pool, j);
    return rc;
}

KART_API int kart_pool_map_async(kart_pool *pool, kart_task_fn fn, const void *in, size_t in_size,
                                 void *out, size_t out_size, size_t n,
                                 const kart_pool_map_options *opts, kart_future **out_future)
{
    if (!pool || !fn || !out_future || (n && ((!in && in_size) || (!out && out_size))) ||
        (opts && opts->progress))
        return -EINVAL;
    return map_start(pool, fn, in, in_size, out, out_size, n, opts ? opts->chunk : 0, out_future);
}

KART_API int kart_pool_map(kart_pool *pool, kart_task_fn fn, const void *in, size_t in_size,
                           void *out, size_t out_size, size_t n, const kart_pool_map_options *opts,
                           kart_pool_failure *failure)
{
    if (!pool || !fn || !failure || (n && ((!in && in_size) || (!out && out_size))))
        return -EINVAL;
    kart_pool_map_options o = opts ? *opts : (kart_pool_map_options){0};
    if (o.progress_interval_ns <= 0)
        o.progress_interval_ns = 100 * INT64_C(1000000);
    kart_future *f;
    int rc = map_start(pool, fn, in, in_size, out, out_size, n, o.chunk, &f);
    if (rc)
        return rc;
    if (o.progress && n) {
        /* Waits in slices, reporting on this thread when items finished
         * since the last report. */
        size_t last = 0;
        while (kart_future_wait(f, o.progress_interval_ns) == -ETIMEDOUT) {
            size_t d = kart__pool_items_done(f);
            if (d != last && d < n)
                o.progress(o.progress_arg, last = d, n);
        }
        o.progress(o.progress_arg, n, n);
    }
    kart_future_failure(f, -1, failure);
    kart_future_free(f);
    return 0;
}

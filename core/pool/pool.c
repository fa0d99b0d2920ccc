/*
 * core/pool.c — the pool, the top layer of core/pool: creating pools
 * (placement of workers on NUMA nodes, the arena's layout, the engine's
 * hooks), thread workers, and close, terminate, join and free.
 */
#include "fault.h"
#include "pool_private.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* ---- thread workers ---- */

static int start_thread(kart_pool *p, int w);

static int thread_main(void *arg)
{
    kart__pool_worker *me = arg;
    kart_pool *p = me->pool;
    atomic_store(&me->tid, (int32_t)kart_thread_native_id(kart_thread_current()));
    atomic_store(&me->alive, 1);
    if (p->init)
        p->init(p->initarg);
    for (;;) {
        kart__pool_worker_loop(p, me->index);
        if (!kart__pool_retiring(p, me) || atomic_load(&p->sh->state) == KART__POOL_TERMINATED)
            break;
        /* Recycled: a fresh thread takes the slot. If none can start,
         * this one goes on. */
        atomic_store(&me->tasks, 0);
        atomic_fetch_add(&me->generation, 1);
        if (start_thread(p, me->index) == 0)
            return 0;
    }
    atomic_store(&me->alive, 0);
    if (atomic_fetch_sub(&p->live, 1) == 1)
        kart__futex_wake(&p->live, INT32_MAX, false);
    return 0;
}

/* Starts the thread of slot w, bound to its node when placed; binding
 * that the system refuses (or a test topology's CPUs that do not exist)
 * leaves it unbound. A replacement inherits the live count of the
 * thread it replaces, so only the first start counts. */
static int start_thread(kart_pool *p, int w)
{
    kart__pool_worker *me = &p->workers[w];
    char name[16];
    snprintf(name, sizeof(name), "kart-pool-%d", w);
    kart_thread_options o = {.name = name, .detached = true};
    if (atomic_load(&me->bound)) {
        o.numa_bind = true;
        o.numa_node = p->node_ids[me->node];
    }
    int rc = kart_thread_start(NULL, thread_main, me, &o);
    if (rc == -EINVAL && o.numa_bind) {
        atomic_store(&me->bound, 0);
        o.numa_bind = false;
        rc = kart_thread_start(NULL, thread_main, me, &o);
    }
    return rc;
}

/* ---- creation ---- */

static int usable_cpus(void)
{
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof(s), &s) == 0 && CPU_COUNT(&s) > 0)
        return CPU_COUNT(&s);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Which node each worker serves, and whether it is bound there. */
static int place(kart_pool *p, const kart_pool_options *o, int **node_of, bool *bind)
{
    int ncpu[64], with_cpus[64], nwc = 0;
    for (int i = 0; i < p->nnodes; i++) {
        cpu_set_t s;
        ncpu[i] = kart_numa_node_cpus(p->node_ids[i], &s) == 0 ? CPU_COUNT(&s) : 0;
        if (ncpu[i])
            with_cpus[nwc++] = i;
    }
    if (nwc == 0) {
        with_cpus[nwc++] = 0;
        ncpu[0] = 1;
    }
    int W;
    if (o->kind == KART_POOL_INLINE)
        W = 0;
    else if (o->placement == KART_POOL_PLACE_PER_NODE)
        W = (int)o->per_node * nwc;
    else
        W = o->workers ? (int)o->workers : usable_cpus();
    int *nodes = calloc((size_t)(W ? W : 1), sizeof(int));
    if (!nodes)
        return -ENOMEM;
    *bind = o->placement != KART_POOL_PLACE_NONE && p->nnodes > 0;
    for (int w = 0; w < W; w++) {
        switch (o->placement) {
        case KART_POOL_PLACE_COMPACT: {
            int total = 0;
            for (int k = 0; k < nwc; k++)
                total += ncpu[with_cpus[k]];
            int slot = w % total, k = 0;
            while (slot >= ncpu[with_cpus[k]])
                slot -= ncpu[with_cpus[k++]];
            nodes[w] = with_cpus[k];
            break;
        }
        case KART_POOL_PLACE_PER_NODE:
            nodes[w] = with_cpus[w / (int)o->per_node];
            break;
        default: /* spread, and unplaced workers on several nodes */
            nodes[w] = with_cpus[w % nwc];
            break;
        }
    }
    *node_of = nodes;
    return W;
}

static int node_distance(kart_pool *p, int a, int b)
{
    int d = kart_numa_distance(p->node_ids[a], p->node_ids[b]);
    return d < 0 ? (a == b ? 10 : 20) : d;
}

/* Lays out the arena and fills in nodes, workers and rings. */
static int build_arena(kart_pool *p, const kart_pool_options *o, const int *node_of, bool bind)
{
    int W = p->nworkers, N = p->nnodes;
    uint64_t ring = 1;
    while (ring < 2 * (uint64_t)p->max_jobs)
        ring <<= 1;
    size_t off = align_up(sizeof(kart__pool_shared), KART__POOL_LINE);
    size_t o_nodes = off;
    off = align_up(off + (size_t)N * sizeof(kart__pool_node), KART__POOL_LINE);
    size_t o_workers = off;
    off = align_up(off + (size_t)(W + KART__POOL_HELPERS) * sizeof(kart__pool_worker),
                   KART__POOL_LINE);
    size_t o_victims = off;
    off = align_up(off + (size_t)W * (size_t)W * sizeof(int), KART__POOL_LINE);
    size_t o_jobs = off;
    off = align_up(off + (size_t)p->max_jobs * sizeof(struct kart_future), KART__POOL_LINE);
    size_t o_rings = off;
    off = align_up(off + (size_t)N * ring * sizeof(uint64_t), KART__POOL_LINE);
    size_t o_done = off;
    off = align_up(off + ((size_t)p->max_jobs + 63) / 64 * sizeof(uint64_t), 4096);
    size_t o_heap = off;
    if (p->kind == KART_POOL_PROCESSES)
        off += o->arena_size ? align_up(o->arena_size, 4096) : (size_t)256 << 20;
    p->arena_size = off;
    int flags =
        (p->kind == KART_POOL_PROCESSES ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_NORESERVE;
    void *a;
    if (p->procs) { /* spawned workers map it from a memfd */
        int rc = kart__pool_ctx_map(p, off, &a);
        if (rc < 0)
            return rc;
    } else if ((a = kart__sys_mmap(NULL, off, PROT_READ | PROT_WRITE, flags, -1, 0)) ==
               MAP_FAILED) {
        return -ENOMEM;
    }
    p->arena = a;
    p->sh = a;
    p->sh->mgr_efd = -1;
    p->sh->donemap = (_Atomic uint64_t *)(p->arena + o_done);
    p->nodes = (kart__pool_node *)(p->arena + o_nodes);
    p->workers = (kart__pool_worker *)(p->arena + o_workers);
    p->jobs = (struct kart_future *)(p->arena + o_jobs);
    for (int i = 0; i < N; i++) {
        kart__pool_node *q = &p->nodes[i];
        q->id = p->node_ids[i];
        q->ring = (_Atomic uint64_t *)(p->arena + o_rings) + (size_t)i * ring;
        q->ring_mask = ring - 1;
        q->ring_shift = (uint32_t)__builtin_ctzll(ring);
        int ids[64];
        int n = kart_numa_nodes_by_distance(q->id, ids, 64);
        q->norder = 0;
        for (int k = 0; k < n && k < 64; k++) {
            int idx = kart__pool_node_index(p, ids[k]);
            if (idx >= 0)
                q->order[q->norder++] = idx;
        }
        if (q->norder == 0 || q->order[0] != i) { /* no distances: self, then by index */
            q->norder = 0;
            q->order[q->norder++] = i;
            for (int k = 0; k < N; k++)
                if (k != i)
                    q->order[q->norder++] = k;
        }
    }
    int *victims = (int *)(p->arena + o_victims);
    for (int w = 0; w < W; w++) {
        kart__pool_worker *me = &p->workers[w];
        me->index = w;
        me->pool = p;
        me->node = node_of[w];
        me->pidfd = -1;
        atomic_store(&me->bound, bind);
        p->nodes[me->node].nworkers++;
        /* The others, same node first, then by distance (stable by index). */
        me->victims = victims + (size_t)w * (size_t)W;
        int n = 0;
        for (int v = 0; v < W; v++)
            if (v != w)
                me->victims[n++] = v;
        for (int i = 1; i < n; i++) {
            int v = me->victims[i], k = i;
            int dv = node_distance(p, me->node, node_of[v]);
            while (k > 0 && node_distance(p, me->node, node_of[me->victims[k - 1]]) > dv) {
                me->victims[k] = me->victims[k - 1];
                k--;
            }
            me->victims[k] = v;
        }
    }
    if (p->kind == KART_POOL_PROCESSES) {
        p->heap = p->arena + o_heap;
        p->heap_size = off - o_heap;
        size_t part = p->heap_size / (size_t)N & ~(size_t)4095;
        for (int i = 0; i < N; i++) {
            p->heap_next[i] = (size_t)i * part;
            p->heap_end[i] = i == N - 1 ? p->heap_size : (size_t)(i + 1) * part;
            /* Chunk buffers come from the part of the node whose queue
             * the job goes to; where memory policy is refused, this is
             * ordinary memory. */
            if (N > 1)
                kart_numa_bind_memory(p->heap + p->heap_next[i], p->heap_end[i] - p->heap_next[i],
                                      p->node_ids[i], NULL);
        }
    }
    return 0;
}

KART_API int kart_pool_create(kart_pool **out, const kart_pool_options *opts)
{
    kart_pool_options o = opts ? *opts : (kart_pool_options){0};
    if (!out || (unsigned)o.kind > KART_POOL_INLINE ||
        (unsigned)o.placement > KART_POOL_PLACE_PER_NODE || o.workers > KART__POOL_MAX_WORKERS ||
        o.max_jobs > KART__POOL_MAX_JOBS || o.per_node > KART__POOL_MAX_WORKERS ||
        (o.placement == KART_POOL_PLACE_PER_NODE && o.per_node < 1))
        return -EINVAL;
    kart_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->kind = o.kind;
    /* Process workers hand finished jobs to the watcher (pool_proc.c);
     * thread and inline pools publish them where they finish. */
    p->hooks = o.kind == KART_POOL_PROCESSES ? &kart__pool_proc_hooks : NULL;
    p->shared = o.kind == KART_POOL_PROCESSES;
    p->init = o.initializer;
    p->initarg = o.initarg;
    p->max_tasks = o.max_tasks_per_child;
    p->result_size = o.result_size ? o.result_size : KART_POOL_RESULT_SIZE;
    p->max_jobs = o.max_jobs ? (uint32_t)o.max_jobs : 4096;
    kart__pool_mem_size(p); /* room for the per-thread slot caches */
    p->help = o.kind == KART_POOL_THREADS && !o.initializer && !o.no_help;
    p->arena_fd = -1;
    int crc = kart__pool_ctx_setup(p, &o);
    if (crc < 0) {
        free(p);
        return crc;
    }
    kart_lock_init(&p->life_lock, 0);
    int n = kart_numa_nodes(p->node_ids, 64);
    p->nnodes = n < 1 ? 1 : n > 64 ? 64 : n;
    if (n < 1)
        p->node_ids[0] = 0;
    int *node_of = NULL;
    bool bind = false;
    int W = place(p, &o, &node_of, &bind);
    if (W < 0) {
        kart__pool_ctx_free(p);
        free(p);
        return W;
    }
    p->nworkers = W;
    int rc = -ENOMEM;
    p->busy_snap = calloc((size_t)(W + KART__POOL_HELPERS), sizeof(uint32_t));
    p->slot_ids = calloc((size_t)p->max_jobs, 2 * sizeof(uint32_t) + 1);
    p->free_ids = p->slot_ids;
    p->limbo_ids = p->slot_ids ? p->slot_ids + p->max_jobs : NULL;
    p->has_bufs = p->slot_ids ? (uint8_t *)(p->slot_ids + 2 * (size_t)p->max_jobs) : NULL;
    /* Workers started by spawn or forkserver are kart processes. */
    bool spawned = p->kind == KART_POOL_PROCESSES && p->method != KART_START_FORK;
    if (!p->busy_snap || !p->slot_ids ||
        (spawned && !(p->procs = calloc((size_t)W + 1, sizeof(*p->procs)))) ||
        (rc = build_arena(p, &o, node_of, bind)) < 0) {
        free(node_of);
        free(p->busy_snap);
        free(p->slot_ids);
        kart__pool_ctx_free(p);
        free(p);
        return rc;
    }
    free(node_of);
    kart__pool_mem_init(p); /* per-thread slot caches */
    if (p->kind == KART_POOL_THREADS) {
        for (int w = 0; w < W; w++) {
            atomic_fetch_add(&p->live, 1);
            if ((rc = start_thread(p, w)) < 0) {
                atomic_fetch_sub(&p->live, 1);
                kart_pool_free(p);
                return rc;
            }
        }
    } else if (p->kind == KART_POOL_PROCESSES) {
        if ((rc = kart__pool_proc_start(p)) < 0) {
            kart_pool_free(p);
            return rc;
        }
    } else if (p->init) {
        p->init(p->initarg);
    }
    *out = p;
    return 0;
}

/* ---- lifetime ---- */

/* A submit reads the state after reserving its ring position: once the
 * entries reserved before the store are written, every submit that still
 * saw the pool running has pushed its job (pool_ring.c). */
static void set_state(kart_pool *p, uint32_t state)
{
    uint32_t s = atomic_load(&p->sh->state);
    while (s < state && !atomic_compare_exchange_weak(&p->sh->state, &s, state))
        ;
    for (int i = 0; i < p->nnodes; i++)
        kart__pool_ring_settle(&p->nodes[i]);
    for (int i = 0; i < p->nnodes; i++) {
        atomic_fetch_add(&p->nodes[i].seq, 1);
        kart__futex_wake(&p->nodes[i].seq, INT32_MAX, p->shared);
    }
    if (p->kind == KART_POOL_PROCESSES)
        kart__pool_proc_notify(p);
}

KART_API int kart_pool_close(kart_pool *pool)
{
    if (!pool)
        return -EINVAL;
    set_state(pool, KART__POOL_CLOSED);
    return 0;
}

/* Cancels what is queued, by reference (a slot reused since fails the
 * generation check), pinned so that no slot is recycled under us. */
static void cancel_queued(kart_pool *pool)
{
    uint64_t *refs;
    uint32_t k = kart__pool_collect_pushed(pool, &refs);
    int h = kart__pool_pin(pool);
    for (uint32_t i = 0; i < k; i++) {
        atomic_store(&pool->workers[h].busy, KART__POOL_BUSY | refs[i]);
        kart__pool_cancel_rest(pool, kart__pool_slot_of(pool, refs[i]), (uint32_t)refs[i] & 0xffff,
                               -ECANCELED);
    }
    kart__pool_unpin(pool, h);
    free(refs);
}

KART_API int kart_pool_terminate(kart_pool *pool)
{
    if (!pool)
        return -EINVAL;
    set_state(pool, KART__POOL_TERMINATED);
    cancel_queued(pool);
    /* Process workers are killed by the watcher (set_state woke it): only
     * the thread that reaps them may signal them, or a pid reaped and
     * reused meanwhile could be hit. */
    return 0;
}

KART_API int kart_pool_join(kart_pool *pool, int64_t timeout_ns)
{
    if (!pool)
        return -EINVAL;
    if (atomic_load(&pool->sh->state) == KART__POOL_RUNNING)
        return -EBUSY;
    int64_t deadline = kart__pool_deadline(timeout_ns);
    _Atomic uint32_t *word = pool->kind == KART_POOL_PROCESSES ? &pool->watcher_done : &pool->live;
    uint32_t until = pool->kind == KART_POOL_PROCESSES ? 1 : 0;
    for (;;) {
        uint32_t v = atomic_load(word);
        if (v == until)
            break;
        if (kart__futex_wait(word, v, deadline, false) == -ETIMEDOUT && atomic_load(word) != until)
            return -ETIMEDOUT;
    }
    if (pool->kind == KART_POOL_PROCESSES) {
        kart_lock_acquire(&pool->life_lock, -1);
        if (pool->watcher) {
            kart_thread_join(pool->watcher, -1, NULL);
            pool->watcher = NULL;
        }
        kart_lock_release(&pool->life_lock);
    }
    return 0;
}

KART_API int kart_pool_shutdown(kart_pool *pool, bool wait, bool cancel_futures)
{
    if (!pool)
        return -EINVAL;
    set_state(pool, KART__POOL_CLOSED);
    if (cancel_futures)
        cancel_queued(pool); /* chunks already claimed run to their end */
    if (wait)
        kart_pool_join(pool, -1);
    return 0;
}

KART_API void kart_pool_free(kart_pool *pool)
{
    if (!pool)
        return;
    if (atomic_load(&pool->sh->state) != KART__POOL_TERMINATED)
        kart_pool_terminate(pool);
    kart_pool_join(pool, -1);
    for (uint32_t s = 0; s < pool->bump; s++) {
        struct kart_future *j = &pool->jobs[s];
        for (int k = 0; k < 3; k++)
            if (j->bufs[k] && pool->kind != KART_POOL_PROCESSES)
                free(j->bufs[k]);
        kart__pool_cb *c = atomic_load(&j->cbs);
        c = c == KART__POOL_FIRED ? NULL : kart__pool_cb_list(c);
        while (c) {
            kart__pool_cb *n = c->next;
            if (c->drop)
                c->drop(c->arg);
            free(c);
            c = n;
        }
    }
    if (pool->sh->mgr_efd >= 0)
        close(pool->sh->mgr_efd);
    kart__pool_mem_fini(pool); /* before the caches' memory goes */
    kart__sys_munmap(pool->arena, pool->arena_size);
    kart__pool_ctx_free(pool);
    free(pool->busy_snap);
    free(pool->slot_ids);
    free(pool);
}

/* ---- facts ---- */

KART_API int kart_pool_kind_of(const kart_pool *pool, kart_pool_kind *kind)
{
    if (!pool || !kind)
        return -EINVAL;
    *kind = pool->kind;
    return 0;
}

KART_API int kart_pool_workers(const kart_pool *pool)
{
    return pool ? pool->nworkers : -EINVAL;
}

KART_API int kart_pool_worker_info_get(const kart_pool *pool, size_t i, kart_pool_worker_info *info)
{
    if (!pool || !info)
        return -EINVAL;
    if (i >= (size_t)pool->nworkers)
        return -ENOENT;
    kart__pool_worker *w = &pool->workers[i];
    info->node = pool->node_ids[w->node];
    info->bound = atomic_load(&w->bound);
    info->pid = pool->kind == KART_POOL_PROCESSES ? atomic_load(&w->pid) : getpid();
    info->tid = atomic_load(&w->tid);
    info->tasks = atomic_load(&w->tasks);
    info->generation = (size_t)atomic_load(&w->generation);
    return 0;
}

KART_API int kart_pool_node_order(const kart_pool *pool, int node, int *order, size_t max)
{
    if (!pool || (!order && max > 0) || node < 0)
        return -EINVAL;
    int i = kart__pool_node_index(pool, node);
    if (i < 0)
        return i;
    const kart__pool_node *q = &pool->nodes[i];
    for (int k = 0; k < q->norder && (size_t)k < max; k++)
        order[k] = pool->node_ids[q->order[k]];
    return q->norder;
}

/*
 * core/pool/pool_job.h — the pools' engine (pool_job.c), the layer above
 * memory (pool_mem.h): the node rings, claiming and running chunks,
 * finishing and publishing jobs, the sweep after dead workers, waiting
 * and helping, and the worker loop. It names nothing of the layers above
 * (submit, futures, imap, process workers, the pool): what it must tell
 * them it tells through the hooks it is given: a pool's table
 * (kart__pool_hooks), a job's notify function and its done callbacks
 * (kart__pool_cb), all declared with the structures that hold them in
 * pool_mem.h.
 *
 * A job is a function, an array of n fixed-size items run in chunks, and
 * ranges of chunks. A submitted task is a job of one item; a map, a job
 * of n items whose chunks are split evenly over per-worker range words
 * (one cache line each) that their owner takes from the front and idle
 * workers steal halves of from the back. A range word packs a 16-bit
 * generation of the slot with 24-bit bounds, so a stale compare-and-swap
 * on a recycled slot fails.
 *
 * Each NUMA node has a ring of job references (slot and generation) that
 * submitters append to (pool_ring.c: a compare-and-swap on the tail
 * reserves positions, then each entry is written) and that workers scan
 * from the head, advancing the head past jobs with nothing left to claim.
 * The ring entries are hints: a job is claimed only through its range
 * words.
 *
 * Completion: each worker counts the chunks it ran and subtracts them from
 * the job's pending count when it runs out of its range; whoever brings it
 * to zero finishes the job. A pool without hooks (thread and inline pools)
 * then publishes at once (state, waiters, callbacks, the job's notify); a
 * pool with hooks hands the finished job to its `finished` hook (process
 * pools: pool_proc.c marks it in a bitmap and wakes the parent's watcher
 * thread, which publishes it, copying map results back first).
 *
 * Dead workers (process pools): a worker records the job it works on
 * (busy) before claiming and clears it after accounting, and marks each
 * chunk done in a per-chunk byte array. When a worker dies the watcher
 * flags the job it was busy on; once no live worker is busy on that job
 * and no range has chunks left, every chunk not marked done was lost with
 * a dead worker and fails with KART_EWORKERDIED (the sweep), and the job
 * finishes. Slots are recycled only when no worker is busy on them.
 */
#ifndef KART_POOL_JOB_H
#define KART_POOL_JOB_H

#include "pool_mem.h"

/* ---- range words: gen:16 | lo:24 | hi:24 ---- */
static inline uint64_t kart__pool_rg(uint32_t gen, uint32_t lo, uint32_t hi)
{
    return ((uint64_t)(gen & 0xffff) << 48) | ((uint64_t)lo << 24) | hi;
}
static inline uint32_t kart__pool_rg_gen(uint64_t v)
{
    return (uint32_t)(v >> 48);
}
static inline uint32_t kart__pool_rg_lo(uint64_t v)
{
    return (uint32_t)(v >> 24) & 0xffffff;
}
static inline uint32_t kart__pool_rg_hi(uint64_t v)
{
    return (uint32_t)v & 0xffffff;
}

/* A job reference in rings and busy words: slot << 16 | gen (16 bits). */
static inline uint64_t kart__pool_ref(uint32_t slot, uint32_t gen)
{
    return ((uint64_t)slot << 16) | (gen & 0xffff);
}

/* The job slot a ring entry refers to (the slot index is above the low
 * 16 bits, which hold the generation). */
static inline struct kart_future *kart__pool_slot_of(kart_pool *p, uint64_t ref)
{
    return &p->jobs[ref >> 16];
}

static inline uint32_t kart__pool_nranges(const struct kart_future *j)
{
    return atomic_load_explicit(&((struct kart_future *)j)->nranges, memory_order_relaxed);
}

/* A map's progress: the items counted in the job and beside its range
 * words, at most n (publication stores n in items_done, on top of what
 * the ranges hold). Each count only grows, so neither does this. */
static inline size_t kart__pool_items_done(const struct kart_future *j)
{
    struct kart_future *m = (struct kart_future *)j;
    uint64_t d = atomic_load_explicit(&m->items_done, memory_order_relaxed);
    uint32_t nr = kart__pool_nranges(j);
    for (uint32_t i = 0; nr > 1 && i < nr; i++)
        d += atomic_load_explicit(&m->ranges[i * KART__POOL_RSTRIDE + KART__POOL_RDONE],
                                  memory_order_relaxed);
    return d < j->n ? (size_t)d : j->n;
}

/* ---- rings (pool_ring.c) ---- */

/* An entry: the reference in the low 48 bits, a tag of its position's
 * lap above them. */
#define KART__POOL_REF_BITS 48
#define KART__POOL_REF_MASK ((UINT64_C(1) << KART__POOL_REF_BITS) - 1)
/* A reservation written off by a submitter that found the pool closed. */
#define KART__POOL_HOLE KART__POOL_REF_MASK
/* kart__pool_entry: its submitter has reserved it and not written it yet. */
#define KART__POOL_UNWRITTEN UINT64_MAX
/* In the tail word: a full ring's rotation is under way (pool_ring.c). */
#define KART__POOL_ROTATING (UINT64_C(1) << 63)
_Static_assert(((uint64_t)KART__POOL_MAX_JOBS + KART__POOL_CACHE_RESERVE) << 16 < KART__POOL_HOLE,
               "every reference fits below the lap tag, and none is a hole");

/* The position past the last reserved one. */
static inline uint64_t kart__pool_tail(const kart__pool_node *q)
{
    return atomic_load(&((kart__pool_node *)q)->tail) & ~KART__POOL_ROTATING;
}

uint64_t kart__pool_reserve_full(kart_pool *p, kart__pool_node *q, uint64_t n);

/* Reserves n positions (one compare-and-swap; a full ring makes room
 * first) and returns the first; each must then be written with
 * kart__pool_put, a reference or KART__POOL_HOLE. Inline: the submit
 * path's one locked instruction. */
static inline uint64_t kart__pool_reserve(kart_pool *p, kart__pool_node *q, uint64_t n)
{
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        if (t & KART__POOL_ROTATING)
            return kart__pool_reserve_full(p, q, n);
        uint64_t h = atomic_load(&q->head);
        if (t + n - h > q->ring_mask + 1) {
            if (t >= h)
                return kart__pool_reserve_full(p, q, n);
            t = atomic_load_explicit(&q->tail, memory_order_relaxed); /* t was stale */
            continue;
        }
        if (atomic_compare_exchange_weak(&q->tail, &t, t + n))
            return t;
    }
}

/* A position's lap tag. Cells start zeroed, so tags count laps from 1: a
 * zero cell never reads as written for any of the first 65,535 laps, and
 * by then every cell has been written again. */
static inline uint64_t kart__pool_tag(const kart__pool_node *q, uint64_t pos)
{
    return (((pos >> q->ring_shift) + 1) & 0xffff) << KART__POOL_REF_BITS;
}

static inline void kart__pool_put(kart__pool_node *q, uint64_t pos, uint64_t ref)
{
    atomic_store_explicit(&q->ring[pos & q->ring_mask], kart__pool_tag(q, pos) | ref,
                          memory_order_release);
}
/* Reserves one position and writes ref there. */
void kart__pool_push_ref(kart_pool *p, kart__pool_node *q, uint64_t ref);
/* The reference at a reserved position, KART__POOL_HOLE, or
 * KART__POOL_UNWRITTEN; kart__pool_wait_entry waits for it written, and
 * returns KART__POOL_UNWRITTEN only once the head has passed pos (the
 * reader's position was stale: look again). */
uint64_t kart__pool_entry(const kart__pool_node *q, uint64_t pos);
uint64_t kart__pool_wait_entry(const kart__pool_node *q, uint64_t pos);
/* Whether pos holds ref (for a reference in hand: one load, no wait). */
bool kart__pool_entry_is(const kart__pool_node *q, uint64_t pos, uint64_t ref);
/* Waits until every position reserved so far is written (set_state). */
void kart__pool_ring_settle(kart__pool_node *q);

/* nodes */
int kart__pool_node_index(const kart_pool *p, int node_id);
int kart__pool_caller_node(const kart_pool *p);
void kart__pool_wake_node(kart_pool *p, int node, bool all);
bool kart__pool_has_work(struct kart_future *j, uint32_t g);
int kart__pool_pin(kart_pool *p);
void kart__pool_unpin(kart_pool *p, int h);
uint32_t kart__pool_collect_pushed(kart_pool *p, uint64_t **out);

/* claiming and running */
void kart__pool_run_chunk(kart_pool *p, struct kart_future *j, uint32_t c);
int kart__pool_job_work(kart_pool *p, struct kart_future *j, uint64_t ref, int w);
bool kart__pool_work_once(kart_pool *p, int w, int node, bool *saw_queued);
void kart__pool_worker_loop(kart_pool *p, int w);

/* Whether a worker has run its max_tasks_per_child chunks. */
static inline bool kart__pool_retiring(const kart_pool *p, kart__pool_worker *me)
{
    return p->max_tasks &&
           atomic_load_explicit(&me->tasks, memory_order_relaxed) >= (uint64_t)p->max_tasks;
}

/* finishing */
extern kart__pool_worker *kart__pool_self;
void kart__pool_fail_at(struct kart_future *j, uint32_t c, size_t item, int err);
void kart__pool_fail_lost(struct kart_future *j, uint32_t c, int err);
void kart__pool_finish(kart_pool *p, struct kart_future *j);
void kart__pool_publish(kart_pool *p, struct kart_future *j);
void kart__pool_cancel_rest(kart_pool *p, struct kart_future *j, uint32_t gen, int err);

/* dead workers (process pools) */
bool kart__pool_live_worker_busy_on(kart_pool *p, uint64_t ref);
void kart__pool_sweep_check(kart_pool *p, struct kart_future *j);
void kart__pool_repush_worker(kart_pool *p, int w);

/* waiting */
int kart__pool_wait_state(struct kart_future *f, int64_t deadline);

#endif

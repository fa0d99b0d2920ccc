/*
 * core/pool_private.h — the pools' engine, shared by core/pool*.c.
 *
 * One engine serves every kind. Its state lives in an arena: private
 * memory for thread and inline pools, a MAP_SHARED anonymous mapping made
 * before the first fork for process pools, so that forked workers see the
 * same structures at the same addresses. Only the parent allocates or
 * frees in the arena, so no lock shared with a worker that may die is
 * ever taken: workers communicate through atomics and futex words alone.
 *
 * A job (the struct behind kart_future) is a slot of the arena: a
 * function, an array of n fixed-size items run in chunks, and ranges of
 * chunks. A submitted task is a job of one item; a map, a job of n items
 * whose chunks are split evenly over per-worker range words (one cache
 * line each) that their owner takes from the front and idle workers steal
 * halves of from the back. A range word packs a 16-bit generation of the
 * slot with 24-bit bounds, so a stale compare-and-swap on a recycled slot
 * fails.
 *
 * Each NUMA node has a ring of job references (slot and generation) that
 * submitters append to under a parent-side lock and that workers scan from
 * the head, advancing the head past jobs with nothing left to claim. The
 * ring entries are hints: a job is claimed only through its range words.
 *
 * Completion: each worker counts the chunks it ran and subtracts them from
 * the job's pending count when it runs out of its range; whoever brings it
 * to zero finishes the job. Thread and inline pools then publish at once
 * (state, waiters, callbacks); process pools mark the job in a bitmap and
 * wake the parent's watcher thread, which publishes (copying map results
 * back first).
 *
 * Dead workers (process pools): a worker records the job it works on
 * (busy) before claiming and clears it after accounting, and marks each
 * chunk done in a per-chunk byte array. When a worker dies the watcher
 * flags the job it was busy on; once no live worker is busy on that job
 * and no range has chunks left, every chunk not marked done was lost with
 * a dead worker and fails with KART_EWORKERDIED (the sweep), and the job
 * finishes. Slots are recycled only when no worker is busy on them.
 */
#ifndef KART_POOL_PRIVATE_H
#define KART_POOL_PRIVATE_H

#include "futex.h"

#include <kart/numa.h>
#include <kart/pool.h>
#include <kart/sync.h>
#include <kart/thread.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define KART__POOL_LINE 64
#define KART__POOL_INLINE 192            /* argument and result bytes kept in the slot */
#define KART__POOL_MAX_JOBS (1 << 20)
#define KART__POOL_HELPERS 8              /* waiting threads that may help at once */
#define KART__POOL_MAX_CHUNKS ((1u << 24) - 1)
#define KART__POOL_RSTRIDE (KART__POOL_LINE / sizeof(uint64_t)) /* range words one line apart */

/* ---- range words: gen:16 | lo:24 | hi:24 ---- */
static inline uint64_t kart__pool_rg(uint32_t gen, uint32_t lo, uint32_t hi)
{
    return ((uint64_t)(gen & 0xffff) << 48) | ((uint64_t)lo << 24) | hi;
}
static inline uint32_t kart__pool_rg_gen(uint64_t v) { return (uint32_t)(v >> 48); }
static inline uint32_t kart__pool_rg_lo(uint64_t v) { return (uint32_t)(v >> 24) & 0xffffff; }
static inline uint32_t kart__pool_rg_hi(uint64_t v) { return (uint32_t)v & 0xffffff; }

/* A job reference in rings and busy words: slot << 16 | gen (16 bits). */
static inline uint64_t kart__pool_ref(uint32_t slot, uint32_t gen)
{
    return ((uint64_t)slot << 16) | (gen & 0xffff);
}
#define KART__POOL_BUSY (UINT64_C(1) << 63)

/* The parent's short critical sections (slot lists, the heap, appending
 * to a ring): a test-and-test-and-set lock, one exchange to take and one
 * store to give back, yielding the CPU while a holder that may have been
 * preempted keeps it. Never shared with workers. */
typedef struct kart__pool_lock {
    _Atomic uint32_t held;
} kart__pool_lock;

static inline void kart__pool_lock_take(kart__pool_lock *l)
{
    while (atomic_exchange_explicit(&l->held, 1, memory_order_acquire)) {
        for (kart__spin sp = {0, 0};
             atomic_load_explicit(&l->held, memory_order_relaxed);)
            if (!kart__spin_next(&sp))
                sched_yield();
    }
}

static inline void kart__pool_lock_give(kart__pool_lock *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

enum { KJ_BYTES, KJ_PTR, KJ_ITEMS };          /* what fn is */
enum { KS_FREE, KS_QUEUED, KS_DONE };         /* kart_future.state */
enum { KART__POOL_RUNNING, KART__POOL_CLOSED, KART__POOL_TERMINATED }; /* kart__pool_shared.state */

#define KART__POOL_FIRED ((kart__pool_cb *)1)

typedef struct kart__pool_cb {
    struct kart__pool_cb *next;
    kart_future_cb cb;
    void *arg;
    bool on_error_only;
} kart__pool_cb;

struct kart_future {
    /* ---- read and written by workers ---- */
    _Alignas(KART__POOL_LINE) _Atomic uint64_t range; /* the range of a one-range job */
    _Atomic uint64_t *ranges;  /* nranges words KART__POOL_RSTRIDE apart */
    _Atomic uint32_t gen;      /* bumped when the slot is released */
    _Atomic uint32_t nranges;  /* atomic: workers peek at ring entries' jobs */
    uint32_t nchunks;
    int kind;                  /* KJ_* */
    kart_task_fn fn;
    kart_task_ptr_fn pfn;
    const char *in;
    char *out;
    size_t in_size, out_size, n, chunk;
    void *parg, *pres;         /* pointer tasks */
    size_t res_len;            /* a submitted task's result length */
    _Atomic uint8_t *st;       /* process pools: per-chunk 1 = done */
    _Atomic uint64_t fail;     /* min over failed chunks of chunk << 32 | -err */
    _Atomic uint32_t pending;  /* chunks not yet accounted */
    _Atomic uint32_t finished; /* 0 -> 1 by whoever finishes the job */
    _Atomic uint32_t dead_seen; /* a worker busy on it died: sweep when idle */
    _Atomic uint8_t st1;       /* st of a one-chunk job in a process pool */
    /* ---- the parent's side ---- */
    _Alignas(KART__POOL_LINE) _Atomic uint32_t state; /* KS_*: the futex waiters sleep on */
    _Atomic uint32_t waiters;
    _Atomic uint32_t refs;     /* the caller's hold and the pool's until published */
    _Atomic uint32_t cancelled;
    _Atomic uint32_t pushed;   /* in a ring (set under the push lock): scans may touch it */
    int err;                   /* set at publication */
    uint32_t slot;
    uint32_t node;             /* index of the node queue it went to */
    _Atomic(kart__pool_cb *) cbs;      /* pushed newest first; KART__POOL_FIRED once published */
    kart_pool *pool;
    char *copy_out;            /* process maps: the caller's out array */
    void *bufs[3];             /* heap blocks to release with the slot */
    size_t buf_sizes[3];
    struct kart_pool_iter *iter; /* notified at publication */
    uint32_t next_free;
    unsigned char inl[KART__POOL_INLINE];
};

typedef struct kart__pool_node {
    _Alignas(KART__POOL_LINE) _Atomic uint64_t head;
    _Alignas(KART__POOL_LINE) _Atomic uint64_t tail;
    _Alignas(KART__POOL_LINE) _Atomic uint32_t seq;     /* eventcount: sleepers wait on it */
    _Atomic uint32_t sleepers;
    _Atomic uint32_t waking;    /* a wake-up is on its way: no need for another */
    _Atomic uint64_t *ring;     /* ring_mask + 1 entries */
    uint64_t ring_mask;
    int id;                     /* the NUMA node id */
    int nworkers;
    int order[64];              /* node indices, nearest first (itself first) */
    int norder;
} kart__pool_node;

typedef struct kart__pool_worker {
    _Alignas(KART__POOL_LINE) _Atomic uint64_t busy; /* KART__POOL_BUSY | ref, or 0 */
    _Atomic uint32_t alive;
    _Atomic int32_t pid, tid;
    _Atomic uint64_t tasks;
    _Atomic int32_t generation;
    _Atomic uint32_t bound;
    /* process pools: the ring entries taken in the last batch, so that
     * the watcher can queue them again if this worker dies with them */
    _Atomic uint32_t nbatch;
    _Atomic uint64_t batch[16];
    /* 1 while counted among its node's sleepers (after the count goes up,
     * before it goes down): a worker killed asleep is taken off the count
     * by the watcher */
    _Atomic uint32_t asleep;
    int node;                   /* node index */
    int index;
    kart_pool *pool;
    int *victims;               /* worker indices, nearest first, not itself */
    /* parent only (process pools) */
    int pidfd;
    bool reaped;
} kart__pool_worker;

/* What the arena starts with. */
typedef struct kart__pool_shared {
    _Alignas(KART__POOL_LINE) _Atomic uint32_t state; /* KART__POOL_* */
    _Atomic uint32_t deaths;
    _Alignas(KART__POOL_LINE) _Atomic uint32_t mgr_armed; /* the watcher sleeps: write its eventfd */
    int mgr_efd;
    _Atomic uint64_t *donemap;  /* process pools: finished jobs, a bit per slot */
} kart__pool_shared;

struct kart_pool {
    kart_pool_kind kind;
    bool shared;                /* futex waits between processes */
    int nworkers, nnodes;
    bool help;                  /* waiters run queued tasks (thread pools) */
    _Atomic uint32_t helpers_used; /* a bit per helper slot, after the workers' */
    kart_pool_init_fn init;
    void *initarg;
    int max_tasks;
    size_t result_size;
    uint32_t max_jobs;
    /* the arena */
    char *arena;
    size_t arena_size;
    kart__pool_shared *sh;
    kart__pool_node *nodes;
    kart__pool_worker *workers;
    struct kart_future *jobs;
    /* slots: free list, never-used bump, and the released waiting for no
     * worker to be busy on them (limbo); on lines of their own, away from
     * what workers read */
    _Alignas(KART__POOL_LINE) kart__pool_lock slot_lock;
    uint32_t free_head, bump, limbo_head, nlimbo;
    uint32_t *busy_snap;        /* nworkers entries, for recycle_limbo */
    /* the arena heap (process pools): power-of-two blocks, parent only */
    _Alignas(KART__POOL_LINE) kart__pool_lock heap_lock;
    char *heap;
    size_t heap_size;
    size_t heap_next[64];       /* per node: next unused offset in its part */
    size_t heap_end[64];
    uint64_t heap_free[64][48]; /* per node and size class: offset + 1 of a free block */
    struct {
        _Alignas(KART__POOL_LINE) kart__pool_lock lock;
    } push[64];                 /* per node: appending to its ring */
    /* workers */
    _Alignas(KART__POOL_LINE) _Atomic uint32_t live;      /* thread workers running, a futex word */
    kart_thread *watcher;       /* process pools: the parent's watcher */
    _Atomic uint32_t spawned;   /* the watcher started the first workers */
    int spawn_rc;
    _Atomic uint32_t watcher_done;
    kart_lock life_lock;        /* close/terminate/join */
    int node_ids[64];
};

/* The job slot a ring entry refers to (the slot index is above the low
 * 16 bits, which hold the generation). */
static inline struct kart_future *kart__pool_slot_of(kart_pool *p, uint64_t ref)
{
    return &p->jobs[ref >> 16];
}

/* pool_mem.c, pool_job.c, pool_submit.c */
void kart__pool_push_ref(kart_pool *p, kart__pool_node *q, uint64_t ref);
bool kart__pool_live_worker_busy_on(kart_pool *p, uint64_t ref);
void kart__pool_run_chunk(kart_pool *p, struct kart_future *j, uint32_t c);
int kart__pool_job_work(kart_pool *p, struct kart_future *j, uint64_t ref, int w);
int kart__pool_slot_alloc(kart_pool *p, struct kart_future **out);
void kart__pool_job_unref(kart_pool *p, struct kart_future *j);
void *kart__pool_heap_alloc(kart_pool *p, int node, size_t size);
void kart__pool_heap_free(kart_pool *p, void *ptr, size_t size);
int kart__pool_job_buf(kart_pool *p, struct kart_future *j, int node, size_t size, void **out);
void kart__pool_push(kart_pool *p, struct kart_future *j, int node, bool wake_all);
bool kart__pool_work_once(kart_pool *p, int w, int node);
void kart__pool_repush_worker(kart_pool *p, int w);
int kart__pool_pin(kart_pool *p);
void kart__pool_unpin(kart_pool *p, int h);
uint32_t kart__pool_collect_pushed(kart_pool *p, uint64_t **out);
void kart__pool_finish(kart_pool *p, struct kart_future *j);
void kart__pool_publish(kart_pool *p, struct kart_future *j);
void kart__pool_fail_chunk(struct kart_future *j, uint32_t c, int err);
void kart__pool_cancel_rest(kart_pool *p, struct kart_future *j, uint32_t gen, int err);
void kart__pool_sweep_check(kart_pool *p, struct kart_future *j);
int kart__pool_submit_job(kart_pool *p, struct kart_future *j, int node, bool wake_all);
int kart__pool_node_index(const kart_pool *p, int node_id);
int kart__pool_caller_node(const kart_pool *p);
void kart__pool_wake_node(kart_pool *p, int node, bool all);
int kart__pool_wait_state(struct kart_future *f, int64_t deadline);
void kart__pool_help(kart_pool *p, struct kart_future *f, int64_t deadline);

/* pool.c */
void kart__pool_worker_loop(kart_pool *p, int w);

/* pool_proc.c */
int kart__pool_proc_start(kart_pool *p);
int kart__pool_proc_spawn(kart_pool *p, int w);
void kart__pool_proc_kill_all(kart_pool *p);
void kart__pool_proc_notify(kart_pool *p);

/* pool_imap.c */
void kart__pool_iter_notify(struct kart_pool_iter *it);

static inline uint32_t kart__pool_nranges(const struct kart_future *j)
{
    return atomic_load_explicit(&((struct kart_future *)j)->nranges, memory_order_relaxed);
}

static inline uint32_t kart__pool_chunks(size_t n, size_t chunk)
{
    return (uint32_t)((n + chunk - 1) / chunk);
}

static inline int64_t kart__pool_deadline(int64_t timeout_ns)
{
    return timeout_ns < 0 ? -1 : kart_now_ns() + timeout_ns;
}

#endif

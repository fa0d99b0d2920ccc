/*
 * core/pool/pool_mem.h — the pools' memory, the lowest layer of core/pool:
 * the structures of the arena (jobs, nodes, workers, the pool itself) and
 * the slots and the heap that pool_mem.c manages. It knows nothing of the
 * layers above (see pool_private.h for the layers); the hooks by which
 * the engine calls them (kart__pool_hooks, a job's notify and done
 * callbacks) are declared here, with the structures that hold them.
 *
 * One engine serves every kind. Its state lives in an arena: private
 * memory for thread and inline pools, a MAP_SHARED anonymous mapping made
 * before the first fork for process pools, so that forked workers see the
 * same structures at the same addresses. Only the parent allocates or
 * frees in the arena, so no lock shared with a worker that may die is
 * ever taken: workers communicate through atomics and futex words alone.
 *
 * A job (the struct behind kart_future) is a slot of the arena. Slots are
 * taken from a free list (or a never-used bump), held by references (the
 * caller's and the pool's until published), and released into a limbo
 * from which they are recycled only once no worker is busy on them. The
 * heap holds task arguments and results: malloc for thread and inline
 * pools, power-of-two blocks of the arena per NUMA node for process pools.
 */
#ifndef KART_POOL_MEM_H
#define KART_POOL_MEM_H

#include "futex.h"

#include <kart/numa.h>
#include <kart/pool.h>
#include <kart/sync.h>
#include <kart/thread.h>

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KART__POOL_LINE 64
#define KART__POOL_INLINE 192 /* argument and result bytes kept in the slot */
#define KART__POOL_MAX_JOBS (1 << 20)
#define KART__POOL_MAX_WORKERS 4096
#define KART__POOL_HELPERS 8                       /* waiting threads that may help at once */
#define KART__POOL_MAX_CHUNKS KART_POOL_MAX_CHUNKS /* kart/pool.h */
#define KART__POOL_RSTRIDE (KART__POOL_LINE / sizeof(uint64_t)) /* range words one line apart */
/* The word after a range word, on its line: the items its owner ran
 * (stolen ones too), a map's progress counted without a line that every
 * worker writes (pool_job.c: count_items). */
#define KART__POOL_RDONE 1
#define KART__POOL_CACHES 8       /* submitting threads with a slot cache of their own */
#define KART__POOL_CACHE_SLOTS 16 /* free slots, and as many released ones, per cache */
#define KART__POOL_CACHE_MIN 1024 /* max_jobs from which slots are cached */
/* The slots the caches may hold, added to max_jobs: with every cache
 * full, the lists still hold max_jobs slots less those in flight. */
#define KART__POOL_CACHE_RESERVE (KART__POOL_CACHES * 2 * KART__POOL_CACHE_SLOTS)

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
        for (kart__spin sp = {0, 0}; atomic_load_explicit(&l->held, memory_order_relaxed);)
            if (!kart__spin_next(&sp))
                sched_yield();
    }
}

static inline void kart__pool_lock_give(kart__pool_lock *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

enum { KJ_BYTES, KJ_PTR, KJ_ITEMS };                                   /* what fn is */
enum { KS_FREE, KS_QUEUED, KS_DONE };                                  /* kart_future.state */
enum { KART__POOL_RUNNING, KART__POOL_CLOSED, KART__POOL_TERMINATED }; /* kart__pool_shared.state */

/* What the engine (pool_job.c) calls of the layers above it, given to
 * it in kart_pool.hooks when the pool is made (pool.c), so that it never
 * names them. A pool whose jobs are published by someone other than the
 * thread that finishes them has a table: process pools, whose workers
 * hand finished jobs to the parent's watcher (pool_proc.c). Thread and
 * inline pools have none (NULL), and the engine publishes at once. */
typedef struct kart__pool_hooks {
    /* j is finished (claimed once through j->finished): have it
     * published, with kart__pool_publish. Called in any worker. */
    void (*finished)(kart_pool *p, struct kart_future *j);
    /* A worker let go of a job that a dead worker was busy on
     * (j->dead_seen): the job may be ready for the sweep. */
    void (*dead_seen)(kart_pool *p);
    /* In a worker of another program image (spawn, forkserver: a pool
     * with fnmap): its own function for the caller's address of a task,
     * or NULL (the item then fails with -ENOENT). */
    kart_task_fn (*local_fn)(const kart_pool *p, kart_task_fn theirs);
} kart__pool_hooks;

/* A job's done callbacks, which the engine runs at publication in the
 * order they were added (kart_future_add_done_callback, pool_future.c,
 * pushes them). */
#define KART__POOL_FIRED ((kart__pool_cb *)1)
/* Set in a job's cbs word (beside the list, never with FIRED) by a thread
 * about to sleep on its state: publication's one exchange of cbs takes
 * the callbacks and learns whether to wake anyone, so the state itself is
 * stored without a full fence. */
#define KART__POOL_WAITING ((uintptr_t)2)

static inline struct kart__pool_cb *kart__pool_cb_list(struct kart__pool_cb *w)
{
    return (struct kart__pool_cb *)((uintptr_t)w & ~KART__POOL_WAITING);
}

typedef struct kart__pool_cb {
    struct kart__pool_cb *next;
    kart_future_cb cb;
    void *arg;
    bool on_error_only;
    void (*drop)(void *arg); /* called instead when it will never run, or NULL */
} kart__pool_cb;

struct kart_future {
    /* The layout keeps a submitted task (one chunk, no progress callback)
     * on four lines: the two read before every chunk, the one workers
     * write, the one publication writes. Every line a task touches moves
     * from the submitter to the worker that runs it and back; with six
     * lines, that traffic was most of a handed-off task's cost (see the
     * static assertions below). Of the workers' line, a thread pool's
     * task that succeeds only has its result length written: no count,
     * no error word read (kart__pool_fail_at, account). The length is not
     * on the publication line, where a waiter spins on state: a write
     * there before publication moved that line once more (tried: the
     * hand-off took 20% longer). */
    /* ---- read and written by workers ---- */
    _Alignas(KART__POOL_LINE) _Atomic uint64_t range; /* the range of a one-range job */
    _Atomic uint64_t *ranges;                         /* nranges words KART__POOL_RSTRIDE apart */
    _Atomic uint32_t gen;                             /* bumped when the slot is released */
    _Atomic uint32_t nranges; /* atomic: workers peek at ring entries' jobs */
    uint32_t nchunks;
    int kind; /* KJ_* */
    /* A chunk began (kart_future_running): read before every chunk and
     * written once, so it is kept with the fields every chunk reads. On
     * the line of the counters below, whose writes move it between
     * workers, its load (and then st's) was 70% of run_chunk's time at
     * chunk 1. */
    _Atomic uint32_t started;
    kart_task_fn fn;
    kart_task_ptr_fn pfn;
    const char *in;
    char *out;
    size_t in_size, out_size, n, chunk;
    void *parg, *pres;   /* pointer tasks */
    _Atomic uint8_t *st; /* process pools: per-chunk 1 = done */
    /* What workers write as they go, on lines of its own: the fields above
     * are read before every chunk. fail: the minimum over failed chunks
     * of chunk << 32 | -err. */
    _Alignas(KART__POOL_LINE) _Atomic uint64_t fail;
    _Atomic uint32_t pending;   /* chunks not yet accounted */
    _Atomic uint32_t finished;  /* 0 -> 1 by whoever finishes the job */
    _Atomic uint32_t dead_seen; /* a worker busy on it died: sweep when idle */
    _Atomic uint8_t st1;        /* st of a one-chunk job in a process pool */
    /* items run or failed by those without a range of their own (map
     * progress; the ranges' owners count theirs beside their range words:
     * kart__pool_items_done sums both) */
    _Atomic uint64_t items_done;
    /* the minimum over failed items' indices; with one failing item per
     * chunk at most, it is in the chunk that `fail` names */
    _Atomic uint64_t fail_item;
    /* process pools, set by the watcher when a worker busy on the job
     * died: the item it ran, its pid and wait status */
    _Atomic uint64_t dead_item;
    int32_t dead_pid;
    int dead_status;
    size_t res_len; /* a submitted task's result length, written by its runner */
    /* ---- the parent's side, and publication ---- */
    _Alignas(KART__POOL_LINE) _Atomic uint32_t state; /* KS_*: the futex waiters sleep on */
    _Atomic uint32_t refs; /* the caller's hold and the pool's until published */
    _Atomic uint32_t cancelled;
    _Atomic uint32_t pushed; /* in a ring (set before its entry is written): scans may touch it */
    int err;                 /* set at publication */
    uint32_t slot;
    uint32_t node; /* index of the node queue it went to */
    /* pushed newest first, | KART__POOL_WAITING once someone sleeps on
     * state; KART__POOL_FIRED once published */
    _Atomic(kart__pool_cb *) cbs;
    kart_pool *pool;
    char *copy_out;            /* process maps: the caller's out array */
    void (*notify)(void *arg); /* called at publication (imap's iterators), or NULL */
    /* ---- the parent's alone (and a task's bytes) ---- */
    void *notify_arg;
    void *bufs[3]; /* heap blocks to release with the slot */
    size_t buf_sizes[3];
    unsigned char inl[KART__POOL_INLINE];
};
_Static_assert(offsetof(struct kart_future, st) < 2 * KART__POOL_LINE,
               "a chunk's reads on the first two lines");
_Static_assert(offsetof(struct kart_future, res_len) / KART__POOL_LINE ==
                   offsetof(struct kart_future, fail) / KART__POOL_LINE,
               "a task's result length on the workers' line");
_Static_assert(offsetof(struct kart_future, notify) / KART__POOL_LINE ==
                   offsetof(struct kart_future, state) / KART__POOL_LINE,
               "publication's reads and writes on one line");

typedef struct kart__pool_node {
    _Alignas(KART__POOL_LINE) _Atomic uint64_t head;
    _Alignas(KART__POOL_LINE) _Atomic uint64_t tail;
    _Alignas(KART__POOL_LINE) _Atomic uint32_t seq; /* eventcount: sleepers wait on it */
    _Atomic uint32_t sleepers;
    /* thread pools: idle workers polling the queues (at most half of the
     * node's, rounded up); while one is, a submit of one task wakes
     * nobody (pool_job.c: spin_join, kart__pool_wake_node) */
    _Atomic uint32_t spinners;
    _Atomic uint32_t waking; /* a wake-up is on its way: no need for another */
    _Atomic uint64_t *ring;  /* ring_mask + 1 entries (pool_ring.c) */
    uint64_t ring_mask;
    uint32_t ring_shift; /* log2 of the ring's size: a position's lap */
    int id;              /* the NUMA node id */
    int nworkers;
    int order[64]; /* node indices, nearest first (itself first) */
    int norder;
} kart__pool_node;

/* A submitting thread's slots (pool_mem.c): free ones it takes without
 * the slot lock, and released ones waiting, as the pool's limbo does,
 * for no worker to be busy on them. Only its owner touches the arrays
 * (and its thread-end destructor), so the one-at-a-time path takes and
 * gives back a slot without a locked instruction. */
typedef struct kart__pool_cache {
    _Alignas(KART__POOL_LINE) _Atomic uintptr_t owner; /* the owner's token, or 0 */
    uint32_t nfree, nlimbo;
    uint32_t free[KART__POOL_CACHE_SLOTS];
    uint32_t limbo[KART__POOL_CACHE_SLOTS];
} kart__pool_cache;

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
    _Atomic uint64_t item; /* process pools: the item it runs now */
    int node;              /* node index */
    int index;
    bool spinning; /* thread pools: counted in its node's spinners (its own thread only) */
    kart_pool *pool;
    int *victims; /* worker indices, nearest first, not itself */
    /* parent only (process pools) */
    int pidfd;
    bool reaped;
} kart__pool_worker;

/* What the arena starts with. */
typedef struct kart__pool_shared {
    _Alignas(KART__POOL_LINE) _Atomic uint32_t state; /* KART__POOL_* */
    _Atomic uint32_t deaths;
    /* process workers (pool_proc.c): the watcher's wake-up, and the jobs
     * finished for it to publish */
    _Alignas(
        KART__POOL_LINE) _Atomic uint32_t mgr_armed; /* the watcher sleeps: write its eventfd */
    int mgr_efd;
    _Atomic uint64_t *donemap; /* process pools: finished jobs, a bit per slot */
} kart__pool_shared;

struct kart_pool {
    kart_pool_kind kind;
    const kart__pool_hooks *hooks; /* the engine's calls upward, or NULL */
    bool shared;                   /* futex waits between processes */
    int nworkers, nnodes;
    bool help;                     /* waiters run queued tasks (thread pools) */
    _Atomic uint32_t helpers_used; /* a bit per helper slot, after the workers' */
    kart_pool_init_fn init;
    void *initarg;
    uint64_t max_tasks;
    size_t result_size;
    uint32_t max_jobs;
    /* the arena */
    char *arena;
    size_t arena_size;
    kart__pool_shared *sh;
    kart__pool_node *nodes;
    kart__pool_worker *workers;
    struct kart_future *jobs;
    /* slots: the free ones, the never-used (from bump up), and the
     * released waiting for no worker to be busy on them (limbo); on lines
     * of their own, away from what workers read. Free and limbo slots are
     * stacks of indices (slot_ids: max_jobs each, parent only), not lists
     * linked through the slots: a batch taken or recycled reads two lines
     * of indices, not a chain of loads from cold slots, each waiting for
     * the one before (in a burst of 1,000 tasks, a quarter of the
     * submitter's time went to that chain). */
    _Alignas(KART__POOL_LINE) kart__pool_lock slot_lock;
    uint32_t nfree, bump, nlimbo;
    uint32_t *free_ids, *limbo_ids; /* slot_ids, and slot_ids + max_jobs */
    uint32_t *slot_ids;
    uint8_t *has_bufs;   /* per slot: 1 while it holds heap blocks (after slot_ids) */
    uint32_t *busy_snap; /* nworkers entries, for recycle_limbo */
    /* per-thread slot caches (pool_mem.c), when max_jobs is at least
     * KART__POOL_CACHE_MIN (max_jobs then counts their reserve); serial
     * tells this pool from an earlier one at the same address */
    bool cache_on;
    uint64_t serial;
    struct kart_pool *cache_next; /* the list of pools with caches */
    kart__pool_cache caches[KART__POOL_CACHES];
    /* the arena heap (process pools): power-of-two blocks, parent only */
    _Alignas(KART__POOL_LINE) kart__pool_lock heap_lock;
    char *heap;
    size_t heap_size;
    size_t heap_next[64]; /* per node: next unused offset in its part */
    size_t heap_end[64];
    uint64_t heap_free[64][48]; /* per node and size class: offset + 1 of a free block */
    struct {
        _Alignas(KART__POOL_LINE) kart__pool_lock lock;
    } push[64]; /* per node: making room in its full ring (pool_ring.c) */
    /* workers */
    _Alignas(KART__POOL_LINE) _Atomic uint32_t live; /* thread workers running, a futex word */
    /* process workers (pool_proc.c) */
    kart_thread *watcher;     /* the parent's watcher */
    _Atomic uint32_t spawned; /* the watcher started the first workers */
    int spawn_rc;
    _Atomic uint32_t watcher_done;
    kart_lock life_lock; /* close/terminate/join */
    int node_ids[64];
    /* process workers started by spawn or forkserver (pool_ctx.c) */
    int method;                     /* kart_start_method of the workers */
    int arena_fd;                   /* the arena's memfd, or -1 (fork) */
    struct kart_process **procs;    /* each worker's process, or NULL */
    struct kart__pool_fnmap *fnmap; /* in such a worker: the parent's task
                                   * addresses and ours, or NULL */
    size_t nfnmap;
    void *initarg_copy; /* the initializer's argument bytes, or NULL */
    size_t initarg_size;
    /* The pool's bytes as they were before the watcher started: what a
     * spawned worker is sent (pool_ctx.c). Not the live struct, whose
     * counters and locks other threads change meanwhile (reading it whole
     * would race with them); a worker resets what is the parent's alone. */
    void *image;
};

/* A worker's busy mark: KART__POOL_BUSY | the reference (pool_job.h) of
 * the job it works on. */
#define KART__POOL_BUSY (UINT64_C(1) << 63)

/* pool_mem.c: slots. kart__pool_mem_size, with max_jobs as asked,
 * before the arena is laid out (it adds the caches' reserve);
 * kart__pool_mem_init before the first allocation, kart__pool_mem_fini
 * before the pool's memory goes. */
void kart__pool_mem_size(kart_pool *p);
void kart__pool_mem_init(kart_pool *p);
void kart__pool_mem_fini(kart_pool *p);
int kart__pool_slot_alloc(kart_pool *p, struct kart_future **out);
void kart__pool_job_unref(kart_pool *p, struct kart_future *j);

/* pool_mem.c: the heap, and heap blocks released with a job's slot */
void *kart__pool_heap_alloc(kart_pool *p, int node, size_t size);
void kart__pool_heap_free(kart_pool *p, void *ptr, size_t size);
int kart__pool_job_buf(kart_pool *p, struct kart_future *j, int node, size_t size, void **out);

#endif

/*
 * kart/pool.h — worker pools: Python's multiprocessing.Pool,
 * multiprocessing.dummy / ThreadPool and concurrent.futures' executors in
 * C, with NUMA placement.
 *
 * Three kinds of pool behind one API:
 *  - KART_POOL_THREADS: worker threads of this process;
 *  - KART_POOL_PROCESSES: forked worker processes; a task's argument and
 *    result travel as bytes through a shared-memory arena mapped before
 *    the fork (function pointers stay valid: same binary); a worker that
 *    dies (killed, crashed, exited) fails the task it ran (for a map, the
 *    chunks it had taken) with KART_EWORKERDIED and is replaced, and the
 *    pool goes on serving;
 *  - KART_POOL_INLINE: no workers; every task runs in the calling thread
 *    (the job of Python's dummy modules): submit runs the task before it
 *    returns, imap runs a chunk per next().
 *
 * A task is a function from bytes to bytes (kart_task_fn), which every
 * kind runs; thread and inline pools also run pointer tasks
 * (kart_task_ptr_fn) that pass a void * in and out without copying.
 *
 * Futures. kart_pool_submit() returns a future (a slot of the pool: no
 * allocation per task): wait with a timeout, done, successful, the
 * result, cancel (while queued), done and error callbacks, or a callback
 * run on an event loop's thread (kart_pool_bridge). Every future must be
 * released with kart_future_free(); kart_pool_free() releases those left
 * (iterators, though, must be freed before the pool).
 *
 * Maps. kart_pool_map() runs fn over an array of fixed-size items in
 * chunks (default chunk: ceil(n / (4 x workers)), as Python), items
 * handed out through per-worker ranges that idle workers steal from (no
 * allocation per chunk, no shared counter per item). imap and
 * imap_unordered are lazy iterators that pull their input from a source
 * callback a few chunks ahead of the consumer, never all at once.
 *
 * NUMA. Workers can be placed compactly (fill a node, then the next),
 * spread (round-robin over nodes) or N per node. Each node has its own
 * queue; a submitter's task goes to the queue of the node it runs on (or
 * the node it names); an idle worker looks at its own node's queue first,
 * then the others in order of distance, and steals map chunks the same
 * way. A worker placed on a node is bound to its CPUs (where the system
 * lets it: binding that fails leaves it unbound, which
 * kart_pool_worker_info reports).
 *
 * Helping. A thread that waits on a thread pool's future (wait, result,
 * apply) runs queued single tasks of the pool while its future is not
 * done (the chunks of maps are left to the workers), as OpenMP's taskwait
 * and Java's ForkJoinPool do, so that waiting never leaves a CPU idle (and
 * tasks hot in the submitter's cache run there). Likewise a submit that
 * finds more than 64 tasks per worker queued on its node runs its task at
 * once in the caller and returns a done future (libgomp's task throttling,
 * Java's caller-runs policy): one more queue entry would gain nothing.
 * Pools with an initializer never help (their tasks may rely on what it
 * set up in each worker), nor those created with no_help (for callers
 * that wait while holding locks their tasks take).
 *
 * Lifetime: close (no more submits; workers end once the queues are
 * drained), terminate (no more submits; queued tasks are cancelled with
 * -ECANCELED; process workers are killed and their running tasks fail
 * with -ECANCELED; thread workers end after their current task), join
 * (waits for the workers; only after close or terminate), free.
 *
 * Threads: every function may be called from any thread, concurrently,
 * except kart_pool_free() (no other call may be in progress or follow)
 * and a future or iterator's _free (none of its other calls may race it).
 * Task functions run on worker threads (or in the caller for inline
 * pools, or in worker processes) and may submit to the pool, but must not
 * wait on a task of the same pool unless a worker is left to run it.
 *
 * Fork: process pools fork from a thread of the pool (kept in the parent
 * to watch the workers); a child starts with only the worker loop, so a
 * task or initializer must not take locks that other threads of the
 * parent may hold at that moment (the C library's malloc and stdio locks
 * are reset by fork; a test framework's, say, are not). A pool is not
 * usable in a child forked by the user.
 */
#ifndef KART_POOL_H
#define KART_POOL_H

#include <kart/common.h>
#include <kart/loop.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Errors of this module (KART_EWORKERDIED, KART_EPOOLCLOSED,
 * KART_EPOOLRUNNING) are in kart/common.h. */

typedef struct kart_pool kart_pool;
typedef struct kart_future kart_future;
typedef struct kart_pool_iter kart_pool_iter;
typedef struct kart_pool_bridge kart_pool_bridge;

typedef enum kart_pool_kind {
    KART_POOL_THREADS = 0,
    KART_POOL_PROCESSES = 1,
    KART_POOL_INLINE = 2,
} kart_pool_kind;

typedef enum kart_pool_placement {
    KART_POOL_PLACE_NONE = 0, /* workers unbound, all counted on node 0's queue
                               * when the machine has one node, else spread */
    KART_POOL_PLACE_COMPACT,  /* fill node 0's CPUs, then node 1's, ... */
    KART_POOL_PLACE_SPREAD,   /* worker i on node i mod nodes */
    KART_POOL_PLACE_PER_NODE, /* per_node workers on every node */
} kart_pool_placement;

/*
 * A task: reads arg_len bytes at arg, writes its result at result, whose
 * capacity *result_len holds on entry, and stores there the length it
 * wrote. Returns 0, or a negative error that becomes the task's error
 * (its future fails; a map returns it). Writing past the capacity is the
 * task's bug; storing a length above it fails the task with -EMSGSIZE.
 */
typedef int (*kart_task_fn)(const void *arg, size_t arg_len, void *result, size_t *result_len);

/* A pointer task (thread and inline pools): *result starts NULL. */
typedef int (*kart_task_ptr_fn)(void *arg, void **result);

/* Runs at the start of every worker (thread or process; once, in the
 * caller, for inline pools), with its argument. */
typedef void (*kart_pool_init_fn)(void *arg);

typedef struct kart_pool_options {
    kart_pool_kind kind;
    int workers;                   /* 0: the CPUs this process may use;
                                    * ignored for inline pools and for
                                    * KART_POOL_PLACE_PER_NODE */
    kart_pool_init_fn initializer; /* may be NULL */
    void *initarg;
    int max_tasks_per_child; /* 0: unlimited; else a worker that ran
                                    * this many tasks (chunks) is replaced */
    size_t result_size;      /* a submitted task's result capacity in
                                    * bytes; 0: 256 */
    int max_jobs;            /* submits and maps in flight (futures not
                                    * yet freed count; a freed future's slot
                                    * returns once the worker that ran it has
                                    * let go, a moment after its wait
                                    * returned); 0: 4096 */
    size_t arena_size;       /* process pools: shared bytes for
                                    * arguments, results and map arrays;
                                    * 0: 256 MiB (reserved, not committed) */
    kart_pool_placement placement;
    int per_node; /* workers per node for PLACE_PER_NODE */
    bool no_help; /* thread pools: waiters do not run tasks
                                    * (see "Helping" above) */
} kart_pool_options;

/*
 * Creates a pool and starts its workers (NULL opts: a thread pool with a
 * worker per usable CPU). Errors: -EINVAL (out NULL, unknown kind or
 * placement, negative counts, per_node < 1 with PLACE_PER_NODE,
 * max_jobs > 2^20), -ENOMEM, -EAGAIN (no more threads or processes).
 */
KART_API int kart_pool_create(kart_pool **out, const kart_pool_options *opts);

/* Terminates the pool if it still runs, joins it and frees it with every
 * future left (iterators must be freed before). Errors: -EINVAL (NULL). */
KART_API int kart_pool_free(kart_pool *pool);

/* The pool's kind, and its number of workers (0 for inline pools). -EINVAL
 * for NULL. */
KART_API int kart_pool_kind_of(const kart_pool *pool);
KART_API int kart_pool_workers(const kart_pool *pool);

/* ---- submitting ---- */

/*
 * Queues fn(arg) and stores its future in *out. The argument is copied
 * before this returns. node: the NUMA node whose queue takes the task;
 * -1 (kart_pool_submit): the caller's node. Inline pools run the task
 * before returning.
 * Errors: -EINVAL (NULL pool, fn or out; arg NULL with arg_len > 0; node
 * below -1), -ENOENT (no such node), KART_EPOOLCLOSED, -EAGAIN (max_jobs
 * futures and maps in flight), -ENOMEM (process pools: the arena is full).
 */
KART_API int kart_pool_submit(kart_pool *pool, kart_task_fn fn, const void *arg, size_t arg_len,
                              kart_future **out);
KART_API int kart_pool_submit_node(kart_pool *pool, int node, kart_task_fn fn, const void *arg,
                                   size_t arg_len, kart_future **out);

/* The pointer form: fn(arg, &result). Errors: those of kart_pool_submit,
 * and -ENOTSUP for process pools. */
KART_API int kart_pool_submit_ptr(kart_pool *pool, kart_task_ptr_fn fn, void *arg,
                                  kart_future **out);

/*
 * Runs fn(arg) on the pool and waits for it (Pool.apply): copies the
 * result to result, whose capacity *result_len holds on entry, and stores
 * its length there (result may be NULL when *result_len is 0). Returns the
 * task's own return value (0 or its negative error), or the errors of
 * kart_pool_submit, or KART_EWORKERDIED, -ECANCELED (terminated), or
 * -EMSGSIZE (the result is longer than *result_len, which then holds the
 * length needed). Errors: -EINVAL also for result_len NULL.
 */
KART_API int kart_pool_apply(kart_pool *pool, kart_task_fn fn, const void *arg, size_t arg_len,
                             void *result, size_t *result_len);

/*
 * Runs fn over n items: item i is the in_size bytes at in + i * in_size,
 * its result the out_size bytes at out + i * out_size (the task gets
 * capacity out_size; the length it stores is not kept). Items run in
 * chunks of `chunk` consecutive items (0: ceil(n / (4 x workers)), at
 * least 1; raised as needed to keep under 2^24 chunks). A chunk stops at
 * its first failing item. Returns 0 once every item ran, else the error
 * of the first chunk (in index order) that failed: the task's error,
 * KART_EWORKERDIED (its worker died), -ECANCELED (terminate); the results
 * of chunks that succeeded are in out either way.
 * Thread pools read in and write out in place; process pools copy them
 * through the arena.
 * Errors: -EINVAL (NULL pool or fn; in or out NULL with n > 0 and a
 * non-zero size), KART_EPOOLCLOSED, -EAGAIN, -ENOMEM (the arena cannot
 * hold the arrays). n == 0 returns 0 at once.
 */
KART_API int kart_pool_map(kart_pool *pool, kart_task_fn fn, const void *in, size_t in_size,
                           void *out, size_t out_size, size_t n, size_t chunk);

/* The same, returning at once with a future that is done when every item
 * has run; its error is what kart_pool_map would return, and it has no
 * result bytes. in and out must stay valid until then. */
KART_API int kart_pool_map_async(kart_pool *pool, kart_task_fn fn, const void *in, size_t in_size,
                                 void *out, size_t out_size, size_t n, size_t chunk,
                                 kart_future **out_future);

/* ---- lazy maps ---- */

/* Fills the next in_size bytes of input at item; returns 1 (an item), 0
 * (the end) or a negative error (the iterator reports it, then ends). */
typedef int (*kart_pool_source)(void *ctx, void *item);

#define KART_POOL_UNORDERED 0x1u /* imap_unordered: results as chunks finish */

/*
 * An iterator over fn applied to the items src produces. It pulls a few
 * chunks ahead (two per worker) and pulls more as results are consumed;
 * the source runs only in the threads that call kart_pool_imap and
 * kart_pool_iter_next. chunk 0 means 1 (Python's default for imap).
 * flags: 0 (results in input order) or KART_POOL_UNORDERED (chunk by
 * chunk as they finish; items of a chunk stay in order).
 * Errors: -EINVAL (NULL pool, fn, src or out; in_size 0; unknown flags),
 * KART_EPOOLCLOSED, -EAGAIN, -ENOMEM.
 */
KART_API int kart_pool_imap(kart_pool *pool, kart_task_fn fn, kart_pool_source src, void *src_ctx,
                            size_t in_size, size_t out_size, size_t chunk, unsigned flags,
                            kart_pool_iter **out);

/*
 * The next result: copies out_size bytes to result and returns 1; returns
 * 0 at the end (and on every later call). An item whose chunk failed
 * returns the chunk's error (the task's, KART_EWORKERDIED, -ECANCELED)
 * in its place, and the iterator goes on with the next item; an error of
 * the source is returned once, then the end. Errors: -EINVAL (NULL
 * iterator, or result NULL with out_size > 0), -ETIMEDOUT (nothing ready
 * within timeout_ns; call again), and the errors of submitting the next
 * chunk (KART_EPOOLCLOSED, -ENOMEM), which end the iterator.
 */
KART_API int kart_pool_iter_next(kart_pool_iter *it, int64_t timeout_ns, void *result);

/* Waits for the chunks in flight and frees the iterator. -EINVAL: NULL. */
KART_API int kart_pool_iter_free(kart_pool_iter *it);

/* ---- lifetime ---- */

/* No more submits. Errors: -EINVAL (NULL). Closing twice is 0. */
KART_API int kart_pool_close(kart_pool *pool);
/* See the top of this file. Errors: -EINVAL (NULL). */
KART_API int kart_pool_terminate(kart_pool *pool);
/* Waits up to timeout_ns for every worker to end. Errors: -EINVAL (NULL),
 * KART_EPOOLRUNNING (neither closed nor terminated), -ETIMEDOUT. */
KART_API int kart_pool_join(kart_pool *pool, int64_t timeout_ns);

/* ---- futures ---- */

/* Waits up to timeout_ns for the future to be done. Returns 0 (done),
 * -ETIMEDOUT, -EINVAL (NULL). */
KART_API int kart_future_wait(kart_future *f, int64_t timeout_ns);

/* 1 when done (finished, failed or cancelled), 0 if not; -EINVAL. */
KART_API int kart_future_done(const kart_future *f);

/* 1 when done without error, 0 when it failed or was cancelled; -EAGAIN
 * when not done yet (Python raises ValueError), -EINVAL for NULL. */
KART_API int kart_future_successful(const kart_future *f);

/* The task's error once done: 0, its negative error, KART_EWORKERDIED,
 * -ECANCELED. -EAGAIN when not done, -EINVAL for NULL. */
KART_API int kart_future_error(const kart_future *f);

/*
 * Waits up to timeout_ns, then copies the result bytes to buf (capacity
 * *len on entry, the result's length on return). Returns 0, or the task's
 * error; -ETIMEDOUT; -EMSGSIZE (buf too small; *len holds the length
 * needed); -EINVAL (NULL f or len; buf NULL with *len > 0; a pointer
 * task's future).
 */
KART_API int kart_future_result(kart_future *f, int64_t timeout_ns, void *buf, size_t *len);

/* The pointer form, for kart_pool_submit_ptr futures. Errors as above;
 * -EINVAL for a bytes task's future. */
KART_API int kart_future_result_ptr(kart_future *f, int64_t timeout_ns, void **result);

/* Cancels a task that has not started: it fails with -ECANCELED and its
 * callbacks run. Returns 1 (cancelled) or 0 (already running or done);
 * -EINVAL. A map's future cancels the chunks not yet started. */
KART_API int kart_future_cancel(kart_future *f);

/* 1 if cancelled, else 0; -EINVAL. */
KART_API int kart_future_cancelled(const kart_future *f);

typedef void (*kart_future_cb)(kart_future *f, void *arg);

/*
 * Runs cb(f, arg) once the future is done: on the thread that completes
 * it (a worker thread; for process pools the pool's watcher thread; the
 * caller for inline pools), or at once in the caller when it is already
 * done. Callbacks run in the order they were added. The error form runs
 * only when the task failed or was cancelled (Pool's error_callback).
 * Errors: -EINVAL (NULL f or cb), -ENOMEM.
 */
KART_API int kart_future_add_done_callback(kart_future *f, kart_future_cb cb, void *arg);
KART_API int kart_future_add_error_callback(kart_future *f, kart_future_cb cb, void *arg);

/*
 * Releases the caller's hold on the future; the pool reuses its slot once
 * the task is done (a queued or running task still runs). After this the
 * future must not be touched (callbacks still run, with a future they must
 * not free). Errors: -EINVAL (NULL).
 */
KART_API int kart_future_free(kart_future *f);

/* ---- completions on an event loop ---- */

/*
 * A bridge delivers future callbacks on the thread that runs `loop`
 * through the loop's async wake-up (kart_async), batching completions
 * that arrive together. Create and free it on the loop's thread; the
 * bridge must outlive every future registered with it.
 * Errors: -EINVAL (NULL), -ENOMEM, and kart_async_init's and kart_async_start's.
 */
KART_API int kart_pool_bridge_create(kart_loop *loop, kart_pool_bridge **out);
KART_API int kart_pool_bridge_free(kart_pool_bridge *bridge);

/* Runs cb(f, arg) on the bridge's loop thread once f is done.
 * Errors: -EINVAL (NULL f, bridge or cb), -ENOMEM. */
KART_API int kart_future_on_loop(kart_future *f, kart_pool_bridge *bridge, kart_future_cb cb,
                                 void *arg);

/* ---- workers and placement ---- */

typedef struct kart_pool_worker_info {
    int node;       /* the NUMA node whose queue it serves */
    bool bound;     /* bound to that node's CPUs */
    pid_t pid;      /* process pools: the worker's pid; else this process */
    pid_t tid;      /* thread pools: the thread's kernel id (0 until known) */
    uint64_t tasks; /* tasks (chunks) it ran since it started */
    int generation; /* how many workers held this slot before (replacements) */
} kart_pool_worker_info;

/* Describes worker i (0 <= i < kart_pool_workers). Errors: -EINVAL (NULL),
 * -ENOENT (no such worker). */
KART_API int kart_pool_worker_info_get(const kart_pool *pool, int i, kart_pool_worker_info *info);

/* The order in which a worker on `node` looks at the node queues: its own
 * node first, then by distance. Stores up to max nodes in order and
 * returns how many nodes the pool has. Errors: -EINVAL (NULL, max < 0),
 * -ENOENT (no such node). */
KART_API int kart_pool_node_order(const kart_pool *pool, int node, int *order, int max);

#ifdef __cplusplus
}
#endif
#endif

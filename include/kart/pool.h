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
 * run on an event loop's thread (kart_pool_bridge); many at once with
 * kart_future_wait_many() and kart_as_completed_*. kart_future_create()
 * makes a future of no pool that your own producer completes. Every
 * future must be released with kart_future_free(); kart_pool_free()
 * releases those of the pool left (iterators, though, must be freed
 * before the pool).
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
 * (waits for the workers; only after close or terminate), shutdown
 * (Executor.shutdown(wait, cancel_futures): close, cancel what is queued
 * if asked, join if asked), free.
 *
 * Results (API rule 4). A call that runs a task says through its return
 * value only whether the call itself worked; what the task returned (0,
 * its negative error, KART_EWORKERDIED, -ECANCELED) goes out through an
 * int *task_err (or a kart_pool_failure), so that a task returning
 * -ETIMEDOUT never looks like a wait that timed out.
 *
 * Threads (API rule 10):
 *  - kart_pool: thread-safe (any call from any thread, concurrently),
 *    except kart_pool_free (no other call may be in progress or follow).
 *  - kart_future: thread-safe (several threads may wait on one future,
 *    one may cancel while another waits), except kart_future_free (none
 *    of its other calls may race it or follow it).
 *  - kart_pool_iter and kart_as_completed: one thread at a time.
 *  - kart_pool_bridge: created and freed on its loop's thread; futures
 *    may be registered with it from any thread.
 * Task functions run on worker threads (or in the caller for inline
 * pools, or in worker processes) and may submit to the pool, but must not
 * wait on a task of the same pool unless a worker is left to run it.
 *
 * Fork (process pools): every worker is forked by the pool's watcher
 * thread, a thread of the calling process. The first workers are forked
 * during kart_pool_create, before it returns; a replacement (for a worker
 * that died, or that ran max_tasks_per_child tasks) is forked when the
 * watcher sees the old one gone. Each worker therefore sees this
 * process's memory as it was at the moment of ITS fork, copy-on-write:
 * globals the caller changes after kart_pool_create are seen by
 * replacements forked later, not by the first workers; what a worker
 * changes is seen by nobody else. Only the pool's arena (arguments,
 * results, map arrays) is shared. A child starts with only the worker
 * loop (no other thread of the parent), so a task or initializer must not
 * take locks that other threads of the parent may hold at that moment
 * (the C library's malloc and stdio locks are reset by fork; a test
 * framework's, say, are not). The initializer runs again in every
 * replacement. A pool is not usable in a child forked by the user.
 *
 * Start methods (process pools, options.context): under spawn and
 * forkserver a worker is a kart process of that method, not a fork of
 * the caller: it shares the arena (a memfd mapped at the caller's
 * address) and nothing else; tasks and the initializer run by name
 * (KART_POOL_TASK()), initarg as initarg_size bytes. Dead workers fail
 * their task with KART_EWORKERDIED and are replaced as under fork.
 */
#ifndef KART_POOL_H
#define KART_POOL_H

#include <kart/common.h>
#include <kart/loop.h>
#include <kart/process.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Errors of this module: the errnos below, and KART_EWORKERDIED
 * (kart/common.h: a worker process died running the task; no errno says
 * that). -ESHUTDOWN: the pool is closed or terminated and takes no new
 * work. -EBUSY: kart_pool_join on a pool neither closed nor terminated,
 * or a question about a future that is not done yet. */

typedef struct kart_pool kart_pool;
typedef struct kart_future kart_future;
typedef struct kart_pool_iter kart_pool_iter;
typedef struct kart_pool_bridge kart_pool_bridge;
typedef struct kart_as_completed kart_as_completed;

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

/* The default capacity of a submitted task's result, in bytes
 * (kart_pool_options.result_size 0). */
#define KART_POOL_RESULT_SIZE 64

/*
 * A task: reads arg_len bytes at arg, writes its result at result, whose
 * capacity *result_len holds on entry, and stores there the length it
 * wrote. Returns 0, or a negative error that becomes the task's error
 * (its future fails; a map reports it). Writing past the capacity is the
 * task's bug; storing a length above it fails the task with -EMSGSIZE
 * (the result can never fit).
 */
typedef int (*kart_task_fn)(const void *arg, size_t arg_len, void *result, size_t *result_len);

/* A pointer task (thread and inline pools): *result starts NULL. */
typedef int (*kart_task_ptr_fn)(void *arg, void **result);

/* Runs at the start of every worker (thread or process, replacements
 * included; once, in the caller, for inline pools), with its argument. */
typedef void (*kart_pool_init_fn)(void *arg);

typedef struct kart_pool_options {
    kart_pool_kind kind;
    size_t workers;                /* 0: the CPUs this process may use;
                                    * ignored for inline pools and for
                                    * KART_POOL_PLACE_PER_NODE; at most 4096 */
    kart_pool_init_fn initializer; /* may be NULL */
    void *initarg;
    size_t max_tasks_per_child; /* 0: unlimited; else a worker that ran
                                 * this many tasks (chunks) is replaced */
    size_t result_size;         /* a submitted task's result capacity in
                                 * bytes; 0: KART_POOL_RESULT_SIZE (64) */
    size_t max_jobs;            /* submits and maps in flight (futures not
                                 * yet freed count; a freed future's slot
                                 * returns once the worker that ran it has
                                 * let go, a moment after its wait
                                 * returned); 0: 4096; at most 2^20 */
    size_t arena_size;          /* process pools: shared bytes for
                                 * arguments, results and map arrays;
                                 * 0: 256 MiB (reserved, not committed) */
    kart_pool_placement placement;
    size_t per_node; /* workers per node for PLACE_PER_NODE (1 .. 4096) */
    bool no_help;    /* thread pools: waiters do not run tasks
                      * (see "Helping" above) */
    /* Process pools: the start method of the workers (Python's
     * get_context(m).Pool()); NULL: the default start method's (fork
     * unless kart_process_set_start_method() changed it). Under spawn and
     * forkserver, tasks and the initializer must be registered with
     * KART_POOL_TASK(), and initarg is passed as initarg_size bytes (see
     * "Start methods" below). Ignored by thread and inline pools. */
    const struct kart_context *context;
    /* Spawn and forkserver process pools: initarg points at initarg_size
     * bytes, copied at create; each worker's initializer receives a
     * pointer to its own copy. 0: initarg must be NULL there. */
    size_t initarg_size;
} kart_pool_options;

/*
 * Registers a task function (or an initializer) so that process pools
 * whose workers a spawn or forkserver context starts can run it: write
 * KART_POOL_TASK(fn) at file scope of the program, as
 * KART_PROCESS_FUNCTION() (kart/process.h), whose registry it shares:
 * names must be unique among both. A worker of such a pool is a fresh
 * program image (another load address): it runs its own function of the
 * same name. Submitting an unregistered function to such a pool fails
 * with -ENOENT.
 */
#define KART_POOL_TASK(fn)                                                                         \
    static kart_process_entry kart__pool_task_entry_##fn = {                                       \
        #fn, (kart_process_fn)(void (*)(void))(fn), NULL};                                         \
    __attribute__((constructor(101))) static void kart__pool_task_register_##fn(void)              \
    {                                                                                              \
        kart_process_register(&kart__pool_task_entry_##fn);                                        \
    }                                                                                              \
    __attribute__((constructor)) static void kart__pool_task_dispatch_##fn(void)                   \
    {                                                                                              \
        kart_process_dispatch();                                                                   \
    }

/*
 * What failed a task or a map: the first failing item's error and index,
 * and for KART_EWORKERDIED, the worker that died and how.
 */
typedef struct kart_pool_failure {
    int err;         /* 0 (nothing failed), the task's negative error,
                      * -EMSGSIZE (it stored a length above its capacity),
                      * KART_EWORKERDIED, or -ECANCELED */
    size_t item;     /* the index of the first item that failed (maps,
                      * imap chunks); 0 for a submitted task */
    pid_t pid;       /* KART_EWORKERDIED: the worker's pid, or 0 if no
                      * worker is known (the pool ended under the task) */
    int exit_status; /* KART_EWORKERDIED: its exit status when it exited,
                      * else -1 */
    int signal;      /* KART_EWORKERDIED: the signal that killed it, else 0 */
} kart_pool_failure;

/*
 * Creates a pool and starts its workers (NULL opts: a thread pool with a
 * worker per usable CPU). Errors: -EINVAL (out NULL, unknown kind or
 * placement, workers or per_node above 4096, per_node 0 with
 * PLACE_PER_NODE, max_jobs above 2^20; initarg_size > 0 with initarg NULL;
 * a spawn or forkserver process pool given an initarg without
 * initarg_size), -ENOENT (a spawn or forkserver process pool: the
 * initializer is not registered with KART_POOL_TASK()), -ENOMEM, -EAGAIN
 * (no more threads or processes), and those of starting a process for a
 * spawn or forkserver pool (kart_process_start()).
 */
KART_API int kart_pool_create(kart_pool **out, const kart_pool_options *opts);

/* Terminates the pool if it still runs, joins it and frees it with every
 * future left (iterators must be freed before). NULL: nothing. */
KART_API void kart_pool_free(kart_pool *pool);

/* Stores the pool's kind in *kind. Errors: -EINVAL (NULL). */
KART_API int kart_pool_kind_of(const kart_pool *pool, kart_pool_kind *kind);

/* The pool's number of workers (0 for inline pools). Errors: -EINVAL. */
KART_API int kart_pool_workers(const kart_pool *pool);

/* ---- submitting ---- */

/*
 * Queues fn(arg) and stores its future in *out. The argument is copied
 * before this returns; the task's result capacity is the pool's
 * result_size. node: the NUMA node whose queue takes the task; -1
 * (kart_pool_submit): the caller's node. Inline pools run the task before
 * returning.
 * Errors: -EINVAL (NULL pool, fn or out; arg NULL with arg_len > 0; node
 * below -1), -ENOENT (no such node; a spawn or forkserver pool: fn is not
 * registered with KART_POOL_TASK(), and the same for map and imap),
 * -ESHUTDOWN (closed or terminated),
 * -EAGAIN (max_jobs futures and maps in flight), -ENOMEM (process pools:
 * the arena is full).
 */
KART_API int kart_pool_submit(kart_pool *pool, kart_task_fn fn, const void *arg, size_t arg_len,
                              kart_future **out);
KART_API int kart_pool_submit_node(kart_pool *pool, int node, kart_task_fn fn, const void *arg,
                                   size_t arg_len, kart_future **out);

/*
 * Queues n tasks fn(args + i * arg_len) (n arguments of arg_len bytes
 * each, copied before this returns) and stores their futures in out[0..n),
 * all or none: a burst of submits with one lock on the queue and one
 * wake-up, where n kart_pool_submit calls take one each. Each future is
 * waited for and freed as one of kart_pool_submit's. The tasks go to the
 * caller's node; inline pools run them before returning. n == 0 returns 0
 * and writes nothing.
 * Errors: -EINVAL (NULL pool or fn; out NULL with n > 0; args NULL with
 * arg_len > 0 and n > 0), -ENOENT (a spawn or forkserver pool: fn is not
 * registered with KART_POOL_TASK()), -ESHUTDOWN (closed or terminated),
 * -EAGAIN (fewer than n more futures fit under max_jobs), -ENOMEM
 * (process pools: the arena is full). On an error nothing is queued, and
 * when n > 0 and out is not NULL, out[0..n) are set to NULL.
 */
KART_API int kart_pool_submit_many(kart_pool *pool, kart_task_fn fn, const void *args,
                                   size_t arg_len, size_t n, kart_future **out);

/* The pointer form: fn(arg, &result). Errors: those of kart_pool_submit,
 * and -ENOTSUP for process pools. */
KART_API int kart_pool_submit_ptr(kart_pool *pool, kart_task_ptr_fn fn, void *arg,
                                  kart_future **out);

/*
 * Runs fn(arg) on the pool and waits for it (Pool.apply). The task gets
 * *result_len as its capacity and writes into result (which may be NULL
 * when *result_len is 0). Returns 0 once the task ran: *task_err holds
 * what it returned (0, or its negative error, -EMSGSIZE when it stored a
 * length above the capacity, KART_EWORKERDIED, -ECANCELED); when that is
 * 0 *result_len holds the result's length, else 0.
 * Errors (nothing ran, *task_err and *result_len untouched): -EINVAL
 * (result_len or task_err NULL; result NULL with *result_len > 0), and
 * those of kart_pool_submit.
 */
KART_API int kart_pool_apply(kart_pool *pool, kart_task_fn fn, const void *arg, size_t arg_len,
                             void *result, size_t *result_len, int *task_err);

/* How kart_pool_map reports progress: done items of total, on the thread
 * that called kart_pool_map. */
typedef void (*kart_pool_progress_fn)(void *arg, size_t done, size_t total);

/* The most chunks a map is split into (a chunk's index has 24 bits): a
 * smaller chunk is raised to ceil(n / KART_POOL_MAX_CHUNKS). */
#define KART_POOL_MAX_CHUNKS ((1u << 24) - 1)

typedef struct kart_pool_map_options {
    size_t chunk;                   /* items per chunk; 0: ceil(n / (4 x workers)), at least
                   * 1; raised as needed to stay within KART_POOL_MAX_CHUNKS */
    kart_pool_progress_fn progress; /* kart_pool_map only; may be NULL */
    void *progress_arg;
    int64_t progress_interval_ns; /* at most this long between two calls
                                   * while items finish; 0: 100 ms */
} kart_pool_map_options;

/*
 * Runs fn over n items: item i is the in_size bytes at in + i * in_size,
 * its result the out_size bytes at out + i * out_size (the task gets
 * capacity out_size; the length it stores is not kept). Items run in
 * chunks (opts->chunk; NULL opts: every default). A chunk stops at its
 * first failing item: that item's result bytes and those of the rest of
 * its chunk (which did not run) are zeroed; the results of every other
 * item are in out.
 * progress (if set) is called on this thread as items finish, at most
 * progress_interval_ns apart, and once at the end with done == n (not for
 * n == 0); a worker counts its finished items every 8 chunks and at the
 * end of each claim, so done may lag by up to 8 chunks per worker. It
 * must not call into this pool's map.
 * Returns 0 once every item ran or failed: *failure describes the first
 * item (in index order) that failed (err 0: none did): the task's error,
 * -EMSGSIZE, KART_EWORKERDIED (with the worker's pid and exit status or
 * signal), -ECANCELED (terminate or cancel).
 * Thread pools read in and write out in place; process pools copy them
 * through the arena.
 * Errors (nothing ran): -EINVAL (NULL pool, fn or failure; in or out NULL
 * with n > 0 and a non-zero size; n * size overflows), -ESHUTDOWN,
 * -EAGAIN, -ENOMEM (the arena cannot hold the arrays). n == 0 returns 0 at
 * once.
 */
KART_API int kart_pool_map(kart_pool *pool, kart_task_fn fn, const void *in, size_t in_size,
                           void *out, size_t out_size, size_t n, const kart_pool_map_options *opts,
                           kart_pool_failure *failure);

/* The same, returning at once with a future that is done when every item
 * has ran or failed; kart_future_failure gives what kart_pool_map would
 * store in *failure, kart_future_progress how far it got; it has no
 * result bytes. in and out must stay valid until it is done.
 * Errors: those of kart_pool_map (out_future instead of failure), and
 * -EINVAL for opts with progress set (poll kart_future_progress). */
KART_API int kart_pool_map_async(kart_pool *pool, kart_task_fn fn, const void *in, size_t in_size,
                                 void *out, size_t out_size, size_t n,
                                 const kart_pool_map_options *opts, kart_future **out_future);

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
 * -ESHUTDOWN, -EAGAIN, -ENOMEM.
 */
KART_API int kart_pool_imap(kart_pool *pool, kart_task_fn fn, kart_pool_source src, void *src_ctx,
                            size_t in_size, size_t out_size, size_t chunk, unsigned flags,
                            kart_pool_iter **out);

/*
 * The next result. Returns 1 for an item: *task_err is 0 and its out_size
 * result bytes are copied to result, or *task_err is the error of the
 * item (the task's, -EMSGSIZE, KART_EWORKERDIED, -ECANCELED; the items
 * after a failing one in its chunk did not run and report the same
 * error) and result is untouched; the iterator goes on with the next
 * item. Returns 0 at the end (and on every later call), with *task_err
 * the source's error (once; 0 for a clean end).
 * Errors: -EINVAL (NULL iterator or task_err, or result NULL with
 * out_size > 0), -ETIMEDOUT (nothing ready within timeout_ns; call
 * again), and the errors of submitting the next chunk (-ESHUTDOWN,
 * -ENOMEM), reported once, after which the iterator ends.
 */
KART_API int kart_pool_iter_next(kart_pool_iter *it, int64_t timeout_ns, void *result,
                                 int *task_err);

/* Waits for the chunks in flight and frees the iterator. NULL: nothing. */
KART_API void kart_pool_iter_free(kart_pool_iter *it);

/* ---- lifetime ---- */

/* No more submits. Errors: -EINVAL (NULL). Closing twice is 0. */
KART_API int kart_pool_close(kart_pool *pool);
/* See the top of this file. Errors: -EINVAL (NULL). */
KART_API int kart_pool_terminate(kart_pool *pool);
/* Waits up to timeout_ns for every worker to end. Errors: -EINVAL (NULL),
 * -EBUSY (neither closed nor terminated), -ETIMEDOUT. */
KART_API int kart_pool_join(kart_pool *pool, int64_t timeout_ns);

/*
 * Executor.shutdown(wait, cancel_futures): closes the pool (no more
 * submits); with cancel_futures, cancels every task and map chunk that
 * has not started (their futures fail with -ECANCELED; running tasks
 * finish, unlike terminate); with wait, waits for the workers to end (as
 * kart_pool_join with no timeout). Calling it again is harmless.
 * Errors: -EINVAL (NULL).
 */
KART_API int kart_pool_shutdown(kart_pool *pool, bool wait, bool cancel_futures);

/* ---- futures ---- */

/* Waits up to timeout_ns for the future to be done. Returns 0 (done),
 * -ETIMEDOUT; -EINVAL (NULL). */
KART_API int kart_future_wait(kart_future *f, int64_t timeout_ns);

/* 1 when done (finished, failed or cancelled), 0 if not; -EINVAL. */
KART_API int kart_future_done(const kart_future *f);

/* 1 while the task runs (a worker began it, or its owner called
 * kart_future_set_running, and it is not done), else 0; -EINVAL. A map's
 * future runs from its first chunk's start. */
KART_API int kart_future_running(const kart_future *f);

/* 1 when done without error, 0 when it failed or was cancelled; -EBUSY
 * when not done yet (Python raises), -EINVAL for NULL. */
KART_API int kart_future_successful(const kart_future *f);

/* Waits up to timeout_ns, then stores the task's error in *task_err: 0,
 * its negative error, -EMSGSIZE, KART_EWORKERDIED, -ECANCELED
 * (Future.exception). Errors: -EINVAL (NULL), -ETIMEDOUT. */
KART_API int kart_future_error(kart_future *f, int64_t timeout_ns, int *task_err);

/* The same with the details (kart_pool_failure): the failing item of a
 * map, the dead worker. Errors: -EINVAL (NULL), -ETIMEDOUT. */
KART_API int kart_future_failure(kart_future *f, int64_t timeout_ns, kart_pool_failure *failure);

/* A map future's progress: items finished (run or failed) and the total.
 * Errors: -EINVAL (NULL, or not a map's future). */
KART_API int kart_future_progress(const kart_future *f, size_t *done, size_t *total);

/*
 * Waits up to timeout_ns, then stores the task's error in *task_err, and
 * when that is 0 copies the result bytes to buf (capacity *len on entry,
 * the result's length on return; *len is 0 when the task failed).
 * Errors: -EINVAL (NULL f, len or task_err; buf NULL with *len > 0; a
 * pointer task's future), -ETIMEDOUT, -ENOBUFS (the task succeeded but
 * its result is longer than *len: *len holds the length needed, nothing
 * else is written, and the call can be repeated).
 */
KART_API int kart_future_result(kart_future *f, int64_t timeout_ns, void *buf, size_t *len,
                                int *task_err);

/* The pointer form, for kart_pool_submit_ptr futures (and futures set
 * with kart_future_set_result_ptr): *result is the task's result when
 * *task_err is 0, else NULL. Errors: -EINVAL (NULL; a bytes future),
 * -ETIMEDOUT. */
KART_API int kart_future_result_ptr(kart_future *f, int64_t timeout_ns, void **result,
                                    int *task_err);

/* Cancels a task that has not started: it fails with -ECANCELED and its
 * callbacks run. Returns 1 (cancelled) or 0 (already running or done);
 * -EINVAL. A map's future cancels the chunks not yet started. */
KART_API int kart_future_cancel(kart_future *f);

/* 1 if cancelled, else 0; -EINVAL. */
KART_API int kart_future_cancelled(const kart_future *f);

typedef void (*kart_future_cb)(kart_future *f, void *arg);

/*
 * Runs cb(f, arg) once, when the future is done, on the thread that
 * completes it (a worker thread; for process pools the pool's watcher
 * thread; the caller for inline pools; the thread that sets or cancels a
 * future of your own), never inside this call (API rule 9). Callbacks
 * run in the order they were added. The error form runs only when the
 * task failed or was cancelled (Pool's error_callback).
 * Returns 0 (registered), or 1 when the future is already done: then cb
 * is not kept and never runs here; the caller runs it itself if it wants
 * Python's "called immediately".
 * Errors: -EINVAL (NULL f or cb), -ENOMEM.
 */
KART_API int kart_future_add_done_callback(kart_future *f, kart_future_cb cb, void *arg);
KART_API int kart_future_add_error_callback(kart_future *f, kart_future_cb cb, void *arg);

/*
 * Releases the caller's hold on the future; the pool reuses its slot once
 * the task is done (a queued or running task still runs). After this the
 * future must not be touched (callbacks still run, with a future they must
 * not free). A future of your own that was never set is released with
 * its callbacks, which then never run. NULL: nothing.
 */
KART_API void kart_future_free(kart_future *f);

/* ---- futures you complete yourself ---- */

/*
 * A future of no pool, for your own producers (concurrent.futures.Future
 * used directly): it is done when you set it, and every future call works
 * on it (wait, result, callbacks, on_loop, wait_many, as_completed).
 * Release it with kart_future_free. Errors: -EINVAL (out NULL), -ENOMEM.
 */
KART_API int kart_future_create(kart_future **out);

/*
 * Completes a future of your own with len result bytes (copied), or with
 * a pointer result, or fails it with err (negative; KART_EWORKERDIED and
 * -ECANCELED included: kart_future_cancel is the way to cancel). Wakes
 * its waiters and runs its done callbacks on this thread, once.
 * Errors: -EINVAL (NULL f; a pool's future; buf NULL with len > 0; err
 * not negative), -EALREADY (already done: set or cancelled), -ENOMEM.
 */
KART_API int kart_future_set_result(kart_future *f, const void *buf, size_t len);
KART_API int kart_future_set_result_ptr(kart_future *f, void *result);
KART_API int kart_future_set_error(kart_future *f, int err);

/* Future.set_running_or_notify_cancel: marks a future of your own as
 * running, after which kart_future_cancel no longer cancels it. Returns 1
 * (now running) or 0 (it was cancelled: do not run the work). Errors:
 * -EINVAL (NULL; a pool's future), -EALREADY (already running or set). */
KART_API int kart_future_set_running(kart_future *f);

/* ---- many futures ---- */

typedef enum kart_future_wait_mode {
    KART_FUTURE_ALL_COMPLETED = 0, /* every future done */
    KART_FUTURE_FIRST_COMPLETED,   /* any future done */
    KART_FUTURE_FIRST_EXCEPTION,   /* any future failed (not cancelled), or
                                    * every future done */
} kart_future_wait_mode;

/*
 * concurrent.futures.wait: waits up to timeout_ns until the futures meet
 * `mode`. Returns how many of them are done then (check each with
 * kart_future_done). n == 0 returns 0 at once. The futures may belong to
 * different pools, or be your own. A call that has to wait leaves a small
 * record on each future not yet done, released when that future is done
 * or freed (a timeout of 0 leaves none).
 * Errors: -EINVAL (fs NULL with n > 0, a NULL entry, unknown mode),
 * -ETIMEDOUT (not met in time), -ENOMEM.
 */
KART_API int kart_future_wait_many(kart_future *const *fs, size_t n, kart_future_wait_mode mode,
                                   int64_t timeout_ns);

/*
 * concurrent.futures.as_completed as an iterator: yields the index (in
 * fs) of each future as it becomes done, those already done first (a
 * future listed twice is yielded once per entry). The futures must stay
 * valid while the iterator is in use; freeing it first is allowed.
 * Errors: -EINVAL (out NULL, fs NULL with n > 0, a NULL entry), -ENOMEM.
 */
KART_API int kart_as_completed_create(kart_future *const *fs, size_t n, kart_as_completed **out);

/* Stores the index of the next done future in *index and returns 1; 0
 * once every future was yielded. Errors: -EINVAL (NULL), -ETIMEDOUT
 * (none more done within timeout_ns; call again). */
KART_API int kart_as_completed_next(kart_as_completed *it, int64_t timeout_ns, size_t *index);

/* Frees the iterator (futures not yet done keep nothing of it). NULL:
 * nothing. */
KART_API void kart_as_completed_free(kart_as_completed *it);

/* ---- completions on an event loop ---- */

/*
 * A bridge delivers future callbacks on the thread that runs `loop`
 * through the loop's async wake-up (kart_async), batching completions
 * that arrive together. Create and free it on the loop's thread; the
 * bridge must outlive every future registered with it.
 * Errors: -EINVAL (NULL), -ENOMEM, and kart_async_init's and kart_async_start's.
 */
KART_API int kart_pool_bridge_create(kart_loop *loop, kart_pool_bridge **out);
/* Frees the bridge; callbacks not yet run are dropped. NULL: nothing. */
KART_API void kart_pool_bridge_free(kart_pool_bridge *bridge);

/* Runs cb(f, arg) on the bridge's loop thread once f is done (also when
 * it already is: on the loop's next turn, never inside this call).
 * Errors: -EINVAL (NULL f, bridge or cb), -ENOMEM. */
KART_API int kart_future_on_loop(kart_future *f, kart_pool_bridge *bridge, kart_future_cb cb,
                                 void *arg);

/*
 * Runs cb(f, arg) on the thread that runs `loop` once f is done: no
 * bridge, no helper thread, nothing to free. A future already done (and
 * one done before the loop runs again) is delivered on the loop's next
 * turn, never inside this call (API rule 9). A failed or cancelled future
 * is delivered the same way: cb reads its error (kart_future_error with
 * timeout 0). Any number of awaits may be pending on one loop, several on
 * one future. A pending await keeps kart_loop_run(KART_RUN_DEFAULT) going
 * as a pending I/O operation does.
 * How: on an io_uring loop whose kernel has IORING_OP_FUTEX_WAIT (Linux
 * 6.7; KART_URING_FEATURES=-futex_wait turns it off), the ring waits on
 * the future's state word, which the future's completion already wakes
 * (for a few awaits of a loop at a time, the others as below: docs/io.md);
 * elsewhere (epoll, poll, select, kqueue, older kernels) the completing
 * thread hands the await to the loop through an async handle the loop
 * keeps for all its awaits. The callback runs on the loop's thread either
 * way, after the wait of the turn that saw the future done.
 * f must stay allocated (kart_future_free not called) until cb has run or
 * the loop is freed (a future of your own freed unset loses its awaits
 * without a leak on the portable path only; on the ring the await would
 * read freed memory). kart_loop_free drops the awaits not yet delivered: their
 * callbacks never run, and nothing is leaked (the kernel's requests are
 * cancelled with the ring; a future that completes later finds the
 * await gone). Loop thread only (or before the loop's first run).
 * Errors: -EINVAL (NULL f, loop or cb), -ECHILD (the loop was made by the
 * parent of this forked process), -ENOMEM.
 */
KART_API int kart_future_await(kart_future *f, kart_loop *loop, kart_future_cb cb, void *arg);

/* ---- workers and placement ---- */

typedef struct kart_pool_worker_info {
    int node;          /* the NUMA node whose queue it serves */
    bool bound;        /* bound to that node's CPUs */
    pid_t pid;         /* process pools: the worker's pid; else this process */
    pid_t tid;         /* thread pools: the thread's kernel id (0 until known) */
    uint64_t tasks;    /* tasks (chunks) it ran since it started */
    size_t generation; /* how many workers held this slot before (replacements) */
} kart_pool_worker_info;

/* Describes worker i (i < kart_pool_workers). Errors: -EINVAL (NULL),
 * -ENOENT (no such worker). */
KART_API int kart_pool_worker_info_get(const kart_pool *pool, size_t i,
                                       kart_pool_worker_info *info);

/* The order in which a worker on `node` looks at the node queues: its own
 * node first, then by distance. Stores up to max nodes in order and
 * returns how many nodes the pool has. Errors: -EINVAL (NULL pool; order
 * NULL with max > 0; node negative), -ENOENT (no such node). */
KART_API int kart_pool_node_order(const kart_pool *pool, int node, int *order, size_t max);

#ifdef __cplusplus
}
#endif
#endif

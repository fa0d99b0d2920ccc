/*
 * kart/pool_mpi.h — a pool whose workers are MPI ranks (libkart-mpi, an
 * optional library built by `make MPI=1`; libkart never depends on MPI).
 *
 * The program is started with mpirun/mpiexec like any MPI program and
 * initializes MPI itself (MPI_Init_thread). Every rank of the
 * communicator calls kart_mpi_pool_create with the same options; the root
 * rank (opts->root, 0 by default) then submits, maps and iterates, while
 * every other rank calls kart_mpi_pool_serve, which runs the chunks the
 * root hands it on a kart pool of its own (threads, processes or inline:
 * opts->local, so NUMA placement and worker-process replacement are what
 * they are on one host) until the root closes the pool. Then every rank
 * calls kart_mpi_pool_free (collective). One rank per host (or per NUMA
 * node) is the intended layout; any number per host works.
 *
 * Tasks are registered by name (opts->tasks, the same names in the same
 * order on every rank: function pointers mean nothing on another host)
 * and are kart_task_fn functions from bytes to bytes, as in kart/pool.h.
 *
 * Scheduling. A serving rank has at most `depth` chunks per local worker
 * in flight; each result it returns is its request for more, so ranks
 * that run dry get work and a slow host gets less. A map's chunk is
 * opts->chunk items when given; 0 means guided sizes: each chunk is
 * ceil(remaining / (2 x depth x workers)) items (workers: the local
 * workers of every serving rank together; the chunks in flight then hold
 * at most half of what is left), large while much is left, one item at
 * the end. Results land in place (map) or in input order (imap), or as their
 * chunks come back (imap with KART_POOL_UNORDERED).
 *
 * Futures. kart_mpi_pool_submit and kart_mpi_pool_map_async return a
 * kart_mpi_future; kart_mpi_future_get gives its kart_future, on which
 * every kart_future call works (wait, result, error, callbacks, cancel,
 * wait_many, as_completed, on_loop) except kart_future_free: release it
 * with kart_mpi_future_free, which lets the pool complete it safely
 * later. Callbacks run on the root's progress thread. A future cancelled
 * before its task was sent is never sent (kart_future_cancel returns 1);
 * once sent it runs (cancel returns 0). A map future's failure has the
 * error only (item 0): kart_mpi_pool_map reports the failing item.
 *
 * Failures. A task's negative error fails its future (or its map item:
 * the rest of its chunk does not run and reports the same error, as in
 * kart/pool.h). A worker process that dies inside a rank (local pool of
 * KART_POOL_PROCESSES) fails its chunk with KART_EWORKERDIED and is
 * replaced there. A rank that dies: the pool's communicator has
 * MPI_ERRORS_RETURN, and when the MPI library reports the failure instead
 * of ending the job, the rank's chunks in flight fail with -EHOSTDOWN,
 * it gets no more work, and once no serving rank is left every waiting
 * future fails with -EHOSTDOWN. Open MPI 4.x and MPICH without ULFM end
 * the whole job when a rank dies (mpirun reports which rank and why):
 * then nothing is left to report to (docs/pool_mpi.md).
 *
 * Threads. The root runs a progress thread that makes every MPI call of
 * the pool after kart_mpi_pool_create; so the root needs
 * MPI_THREAD_SERIALIZED at least, and MPI_THREAD_MULTIPLE if the program
 * makes MPI calls of its own while the pool lives. Serving ranks make
 * MPI calls only in the thread that calls kart_mpi_pool_serve
 * (MPI_THREAD_FUNNELED suffices when that is the main thread).
 * kart_mpi_pool: thread-safe on the root (any call from any thread),
 * except kart_mpi_pool_free; kart_mpi_pool_iter: one thread at a time.
 * kart_mpi_future: thread-safe, except kart_mpi_future_free.
 */
#ifndef KART_POOL_MPI_H
#define KART_POOL_MPI_H

#include <kart/pool.h>
#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_mpi_pool kart_mpi_pool;
typedef struct kart_mpi_future kart_mpi_future;
typedef struct kart_mpi_pool_iter kart_mpi_pool_iter;

/* A task as every rank knows it: its name (at most 63 bytes) and its
 * function on this rank. */
typedef struct kart_mpi_task {
    const char *name;
    kart_task_fn fn;
} kart_mpi_task;

typedef struct kart_mpi_pool_options {
    const MPI_Comm *comm;       /* NULL: MPI_COMM_WORLD (the pool works on a
                           * duplicate of it) */
    int root;                   /* the rank that submits; others serve */
    const kart_mpi_task *tasks; /* ntasks entries, distinct names */
    size_t ntasks;              /* 1 .. 4096 */
    kart_pool_options local;    /* each serving rank's own pool (kind,
                                 * workers, placement, result_size:
                                 * the capacity of a submitted task's
                                 * result, which the root uses too) */
    size_t depth;               /* chunks in flight per local worker;
                                 * 0: 2; at most 64 */
} kart_mpi_pool_options;

/*
 * Collective over the communicator: every rank calls it with the same
 * tasks, root and depth. Serving ranks create their local pool; the root
 * starts its progress thread. Stores the pool in *out.
 * Errors: -EINVAL (out or opts NULL; no tasks, above 4096, a NULL name or
 * fn, a name above 63 bytes, two alike; root out of range; depth above
 * 64; MPI not initialized or finalized; fewer than two ranks), -ENOTSUP
 * (the root's MPI thread level is below MPI_THREAD_SERIALIZED), -EPROTO
 * (the ranks registered different tasks, root or depth: every rank
 * fails), -ENOMEM, -EIO (an MPI call failed), and kart_pool_create's on a
 * serving rank (which then fails on every rank).
 */
KART_API int kart_mpi_pool_create(kart_mpi_pool **out, const kart_mpi_pool_options *opts);

/* Serving ranks: runs chunks until the root closes or terminates the
 * pool, then returns 0. Errors: -EINVAL (NULL pool; called on the root,
 * or twice), -EIO (the root's rank failed: MPI reported it). */
KART_API int kart_mpi_pool_serve(kart_mpi_pool *pool);

/* This process's rank in the pool's communicator. Errors: -EINVAL. */
KART_API int kart_mpi_pool_rank(const kart_mpi_pool *pool);

/* The local workers of every serving rank together (every rank knows
 * it). Errors: -EINVAL. */
KART_API int kart_mpi_pool_workers(const kart_mpi_pool *pool);

/* ---- the root's calls: on a serving rank they return -EPERM ---- */

/*
 * Queues task `name` with arg_len bytes of arg (copied) and stores its
 * future in *out. The task's result capacity is opts->local.result_size
 * (0: KART_POOL_RESULT_SIZE).
 * Errors: -EINVAL (NULL pool, name or out; arg NULL with arg_len > 0),
 * -ENOENT (no task of that name), -EPERM (not the root), -ESHUTDOWN
 * (closed or terminated), -ENOMEM.
 */
KART_API int kart_mpi_pool_submit(kart_mpi_pool *pool, const char *name, const void *arg,
                                  size_t arg_len, kart_mpi_future **out);

/*
 * Runs task `name` on a serving rank and waits for it. Returns 0 once it
 * ran: *task_err holds what it returned (0, its negative error,
 * -EMSGSIZE when its result exceeds the pool's result capacity or
 * *result_len, KART_EWORKERDIED, -EHOSTDOWN); when 0, *result_len holds
 * the result's length. Errors (nothing ran): -EINVAL (result_len or
 * task_err NULL; result NULL with *result_len > 0), and those of
 * kart_mpi_pool_submit.
 */
KART_API int kart_mpi_pool_apply(kart_mpi_pool *pool, const char *name, const void *arg,
                                 size_t arg_len, void *result, size_t *result_len, int *task_err);

/*
 * kart_pool_map over the serving ranks: item i is the in_size bytes at
 * in + i * in_size, its result the out_size bytes at out + i * out_size.
 * opts: chunk (0: guided, see the top of this file), progress (called on
 * this thread, as kart_pool_map does). Returns 0 once every item ran or
 * failed; *failure holds the first failing item (err 0: none).
 * Errors (nothing ran): -EINVAL (NULL pool, name or failure; in or out
 * NULL with n > 0 and a non-zero size; n * size overflows), -ENOENT,
 * -EPERM, -ESHUTDOWN, -ENOMEM. n == 0 returns 0 at once.
 */
KART_API int kart_mpi_pool_map(kart_mpi_pool *pool, const char *name, const void *in,
                               size_t in_size, void *out, size_t out_size, size_t n,
                               const kart_pool_map_options *opts, kart_pool_failure *failure);

/* The same, returning at once with a future done when every item ran or
 * failed (its error: the first failing item's, by index). in and out must
 * stay valid until then. Errors: those of kart_mpi_pool_map (out_future
 * instead of failure), and -EINVAL for opts with progress set. */
KART_API int kart_mpi_pool_map_async(kart_mpi_pool *pool, const char *name, const void *in,
                                     size_t in_size, void *out, size_t out_size, size_t n,
                                     const kart_pool_map_options *opts,
                                     kart_mpi_future **out_future);

/*
 * kart_pool_imap over the serving ranks: pulls items from src (in the
 * calling threads only) two chunks per worker ahead of the consumer.
 * chunk 0 means 1; flags 0 or KART_POOL_UNORDERED.
 * Errors: -EINVAL (NULL pool, name, src or out; in_size 0; unknown
 * flags), -ENOENT, -EPERM, -ESHUTDOWN, -ENOMEM.
 */
KART_API int kart_mpi_pool_imap(kart_mpi_pool *pool, const char *name, kart_pool_source src,
                                void *src_ctx, size_t in_size, size_t out_size, size_t chunk,
                                unsigned flags, kart_mpi_pool_iter **out);

/* As kart_pool_iter_next: 1 and an item (*task_err its error), 0 at the
 * end (*task_err the source's error, once). Errors: -EINVAL (NULL it or
 * task_err; result NULL with out_size > 0), -ETIMEDOUT, -ESHUTDOWN or
 * -ENOMEM (submitting the next chunk failed; reported once, then the
 * iterator ends). */
KART_API int kart_mpi_pool_iter_next(kart_mpi_pool_iter *it, int64_t timeout_ns, void *result,
                                     int *task_err);

/* Waits for the chunks in flight and frees the iterator. NULL: nothing. */
KART_API void kart_mpi_pool_iter_free(kart_mpi_pool_iter *it);

/* No more submits; the serving ranks return from kart_mpi_pool_serve once
 * the work queued is done. Errors: -EINVAL (NULL), -EPERM. Twice: 0. */
KART_API int kart_mpi_pool_close(kart_mpi_pool *pool);

/* No more submits; tasks and map items not yet sent fail with
 * -ECANCELED; what runs finishes. Errors: -EINVAL (NULL), -EPERM. */
KART_API int kart_mpi_pool_terminate(kart_mpi_pool *pool);

/* Waits up to timeout_ns for the serving ranks to be told to stop and the
 * progress thread to end. Errors: -EINVAL (NULL), -EPERM, -EBUSY (neither
 * closed nor terminated), -ETIMEDOUT. */
KART_API int kart_mpi_pool_join(kart_mpi_pool *pool, int64_t timeout_ns);

/* Collective: every rank calls it (the root terminates and joins its pool
 * first if it still runs; a serving rank after kart_mpi_pool_serve
 * returned). Frees the pool, its local pool and its communicator; futures
 * not yet released stay valid until kart_mpi_future_free. NULL: nothing. */
KART_API void kart_mpi_pool_free(kart_mpi_pool *pool);

/* ---- futures ---- */

/* The kart_future to wait on, read, cancel and add callbacks to (never
 * kart_future_free it). Valid until kart_mpi_future_free. NULL for NULL. */
KART_API kart_future *kart_mpi_future_get(kart_mpi_future *f);

/* Releases the caller's hold; the pool lets go of its own once the task
 * is done. NULL: nothing. */
KART_API void kart_mpi_future_free(kart_mpi_future *f);

#ifdef __cplusplus
}
#endif
#endif

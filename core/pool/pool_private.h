/*
 * core/pool/pool_private.h — the pools' clients of the engine and the
 * pool itself, the top of core/pool's layers. Each layer uses only the
 * layers below it, and includes only their headers:
 *
 *   the pool      pool.c: create (placement, the arena's layout), thread
 *                 workers, close, terminate, join, free; it gives the
 *                 engine its hooks (process pools: pool_proc.c's)
 *   clients       pool_submit.c  submit, apply, map, map_async
 *                 pool_future.c  futures: wait, result, cancel, callbacks,
 *                                futures you complete yourself, the loop
 *                                bridge
 *                 pool_many.c    wait_many and as_completed
 *                 pool_imap.c    imap iterators (on kart__pool_submit_job)
 *                 pool_proc.c    process workers and the parent's watcher
 *                 (this header)
 *   the engine    pool_job.c / pool_job.h: rings, claiming, running,
 *                 finishing, publishing, sweeping, waiting, the worker loop
 *   memory        pool_mem.c / pool_mem.h: the arena's structures, job
 *                 slots, the heap
 *
 * The engine never names a client: it reaches them through the hooks it
 * is given (kart__pool_hooks, a job's notify). scripts/check-house.sh
 * checks the direction (rule pool-layers).
 */
#ifndef KART_POOL_PRIVATE_H
#define KART_POOL_PRIVATE_H

#include "pool_job.h"

/* pool_submit.c */
int kart__pool_submit_job(kart_pool *p, struct kart_future *j, int node, bool wake_all);

/* pool_future.c: pushes a done callback (drop: called instead if it
 * never runs, or NULL); 1 without keeping it when f is already done. */
int kart__pool_cb_push(struct kart_future *f, kart_future_cb cb, void *arg, bool on_error_only,
                       void (*drop)(void *));

static inline bool kart__pool_done(const struct kart_future *f)
{
    return atomic_load_explicit(&((struct kart_future *)f)->state, memory_order_acquire) == KS_DONE;
}

/* pool_ctx.c: process workers started by spawn or forkserver */
int kart__pool_ctx_setup(kart_pool *p, const kart_pool_options *o);
int kart__pool_ctx_map(kart_pool *p, size_t size, void **out);
int kart__pool_ctx_spawn(kart_pool *p, int w);
bool kart__pool_ctx_ended(kart_pool *p, int w, int *status);
void kart__pool_ctx_reaped(kart_pool *p, int w);
void kart__pool_ctx_kill(kart_pool *p, int w);
void kart__pool_ctx_free(kart_pool *p);
/* Whether fn may be given to p: registered (KART_POOL_TASK) when p's
 * workers are spawned. */
bool kart__pool_task_ok(const kart_pool *p, kart_task_fn fn);
/* In a spawned worker: this process's function for the caller's address
 * of a registered task; NULL when there is none. */
kart_task_fn kart__pool_task_local(const kart_pool *p, kart_task_fn theirs);

/* pool_proc.c */
/* A worker's life after it started (any start method): never returns. */
__attribute__((noreturn)) void kart__pool_worker_run(kart_pool *p, int w);
extern const kart__pool_hooks kart__pool_proc_hooks;
int kart__pool_proc_start(kart_pool *p);
int kart__pool_proc_spawn(kart_pool *p, int w);
void kart__pool_proc_kill_all(kart_pool *p);
void kart__pool_proc_notify(kart_pool *p);
/* The exit status of a worker that drained its queues (0; tests change
 * it, before creating the pool, to check a closed pool's joins). */
extern int kart__pool_drained_exit;

static inline uint32_t kart__pool_chunks(size_t n, size_t chunk)
{
    return (uint32_t)((n + chunk - 1) / chunk);
}

static inline int64_t kart__pool_deadline(int64_t timeout_ns)
{
    return timeout_ns < 0 ? -1 : kart_now_ns() + timeout_ns;
}

#endif

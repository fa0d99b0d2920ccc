/*
 * mpi/pool_mpi_submit.c — the root's calls that queue work: submit,
 * apply, map and map_async. The progress thread (pool_mpi_progress.c)
 * sends it out and completes it.
 */
#include "pool_mpi_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kart__mpi_enqueue(kart_mpi_pool *pool, kart__mpi_job *job)
{
    pthread_mutex_lock(&pool->mu);
    if (pool->closed) {
        pthread_mutex_unlock(&pool->mu);
        return -ESHUTDOWN;
    }
    job->next = NULL;
    job->queued = true;
    if (pool->tail)
        pool->tail->next = job;
    else
        pool->head = job;
    pool->tail = job;
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    return 0;
}

/* The checks every root call shares; returns the task's index. */
static int root_task(kart_mpi_pool *pool, const char *name)
{
    if (!pool || !name)
        return -EINVAL;
    if (pool->rank != pool->root)
        return -EPERM;
    return kart__mpi_task_index(pool, name);
}

KART_API int kart_mpi_pool_submit(kart_mpi_pool *pool, const char *name, const void *arg,
                                  size_t arg_len, kart_mpi_future **out)
{
    if (!out || (!arg && arg_len))
        return -EINVAL;
    int task = root_task(pool, name);
    if (task < 0)
        return task;
    kart__mpi_job *job = calloc(1, sizeof(*job));
    void *copy = arg_len ? malloc(arg_len) : NULL;
    kart_mpi_future *f = NULL;
    int rc = !job || (arg_len && !copy) ? -ENOMEM : kart__mpi_future_new(&f);
    if (rc) {
        free(job);
        free(copy);
        return rc;
    }
    if (arg_len)
        memcpy(copy, arg, arg_len);
    job->kind = JOB_SUBMIT;
    job->task = (uint32_t)task;
    job->in = copy;
    job->arg_copy = copy;
    job->in_size = arg_len;
    job->out_size = pool->result_size;
    job->n = 1;
    job->fut = f;
    if ((rc = kart__mpi_enqueue(pool, job)) != 0) {
        free(copy);
        free(job);
        kart__mpi_future_unref(f);
        kart__mpi_future_unref(f);
        return rc;
    }
    *out = f;
    return 0;
}

KART_API int kart_mpi_pool_apply(kart_mpi_pool *pool, const char *name, const void *arg,
                                 size_t arg_len, void *result, size_t *result_len, int *task_err)
{
    if (!result_len || !task_err || (!result && *result_len))
        return -EINVAL;
    kart_mpi_future *f;
    int rc = kart_mpi_pool_submit(pool, name, arg, arg_len, &f);
    if (rc)
        return rc;
    size_t len = *result_len;
    int err = 0;
    rc = kart_future_result(f->f, -1, result, &len, &err);
    kart_mpi_future_free(f);
    if (rc == -ENOBUFS) {
        *task_err = -EMSGSIZE; /* it can never fit the caller's buffer */
        *result_len = 0;
        return 0;
    }
    if (rc)
        return rc;
    *task_err = err;
    *result_len = err ? 0 : len;
    return 0;
}

static int map_check(kart_mpi_pool *pool, const char *name, const void *in, size_t in_size,
                     void *out, size_t out_size, size_t n)
{
    if (n && ((!in && in_size) || (!out && out_size)))
        return -EINVAL;
    if (in_size && n > SIZE_MAX / in_size)
        return -EINVAL;
    if (out_size && n > SIZE_MAX / out_size)
        return -EINVAL;
    return root_task(pool, name);
}

static void map_job_init(kart__mpi_job *job, int task, const void *in, size_t in_size, void *out,
                         size_t out_size, size_t n, const kart_pool_map_options *opts)
{
    job->kind = JOB_MAP;
    job->task = (uint32_t)task;
    job->in = in;
    job->in_size = in_size;
    job->out = out;
    job->out_size = out_size;
    job->n = n;
    job->chunk = opts ? opts->chunk : 0;
}

KART_API int kart_mpi_pool_map(kart_mpi_pool *pool, const char *name, const void *in,
                               size_t in_size, void *out, size_t out_size, size_t n,
                               const kart_pool_map_options *opts, kart_pool_failure *failure)
{
    if (!failure)
        return -EINVAL;
    int task = map_check(pool, name, in, in_size, out, out_size, n);
    if (task < 0)
        return task;
    if (n == 0) {
        pthread_mutex_lock(&pool->mu);
        bool closed = pool->closed;
        pthread_mutex_unlock(&pool->mu);
        if (closed)
            return -ESHUTDOWN;
        memset(failure, 0, sizeof(*failure));
        return 0;
    }
    kart__mpi_job job;
    memset(&job, 0, sizeof(job));
    map_job_init(&job, task, in, in_size, out, out_size, n, opts);
    job.owned = true;
    int rc = kart__mpi_enqueue(pool, &job);
    if (rc)
        return rc;
    kart_pool_progress_fn progress = opts ? opts->progress : NULL;
    int64_t every = opts && opts->progress_interval_ns > 0 ? opts->progress_interval_ns : 100000000;
    pthread_mutex_lock(&pool->mu);
    while (!job.finished) {
        if (!progress) {
            pthread_cond_wait(&pool->cond, &pool->mu);
            continue;
        }
        int64_t deadline = kart_now_ns() + every;
        while (!job.finished && kart__mpi_deadline_wait(pool, deadline) == 0)
            ;
        if (!job.finished) {
            size_t done = job.done;
            pthread_mutex_unlock(&pool->mu);
            progress(opts->progress_arg, done, n);
            pthread_mutex_lock(&pool->mu);
        }
    }
    pthread_mutex_unlock(&pool->mu);
    if (progress)
        progress(opts->progress_arg, n, n);
    *failure = job.fail;
    return 0;
}

KART_API int kart_mpi_pool_map_async(kart_mpi_pool *pool, const char *name, const void *in,
                                     size_t in_size, void *out, size_t out_size, size_t n,
                                     const kart_pool_map_options *opts,
                                     kart_mpi_future **out_future)
{
    if (!out_future || (opts && opts->progress))
        return -EINVAL;
    int task = map_check(pool, name, in, in_size, out, out_size, n);
    if (task < 0)
        return task;
    kart__mpi_job *job = calloc(1, sizeof(*job));
    kart_mpi_future *f = NULL;
    int rc = job ? kart__mpi_future_new(&f) : -ENOMEM;
    if (rc) {
        free(job);
        return rc;
    }
    map_job_init(job, task, in, in_size, out, out_size, n, opts);
    job->fut = f;
    if (n == 0) {
        /* Nothing to send: done at once (still -ESHUTDOWN when closed). */
        pthread_mutex_lock(&pool->mu);
        bool closed = pool->closed;
        pthread_mutex_unlock(&pool->mu);
        free(job);
        if (closed) {
            kart__mpi_future_unref(f);
            kart__mpi_future_unref(f);
            return -ESHUTDOWN;
        }
        kart_future_set_result(f->f, NULL, 0);
        kart__mpi_future_unref(f);
        *out_future = f;
        return 0;
    }
    if ((rc = kart__mpi_enqueue(pool, job)) != 0) {
        free(job);
        kart__mpi_future_unref(f);
        kart__mpi_future_unref(f);
        return rc;
    }
    *out_future = f;
    return 0;
}

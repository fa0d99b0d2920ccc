/*
 * mpi/pool_mpi_iter.c — imap and imap_unordered on the MPI pool: the
 * source is pulled in the caller's thread, a chunk at a time, two chunks
 * per worker ahead of the consumer; each chunk is a map job of its own,
 * sent whole to one rank.
 */
#include "pool_mpi_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct ichunk {
    kart__mpi_job job; /* owned: the iterator frees it */
    char *in, *out;
    struct ichunk *next;
} ichunk;

struct kart_mpi_pool_iter {
    kart_mpi_pool *pool;
    int task;
    kart_pool_source src;
    void *ctx;
    size_t in_size, out_size, chunk, ahead;
    unsigned flags;
    ichunk *head, **tail; /* in input order */
    size_t inflight;
    ichunk *cur; /* being consumed */
    size_t cur_i;
    bool src_end, ended;
    int src_err, submit_err;
};

static void ichunk_free(ichunk *c)
{
    if (c) {
        free(c->in);
        free(c->out);
        free(c);
    }
}

/* Pulls and queues chunks until `ahead` are in flight or the source ends. */
static void fill(kart_mpi_pool_iter *it)
{
    while (!it->src_end && !it->submit_err && it->inflight < it->ahead) {
        ichunk *c = calloc(1, sizeof(*c));
        if (c) {
            c->in = malloc(it->chunk * it->in_size);
            c->out = malloc(it->out_size ? it->chunk * it->out_size : 1);
        }
        if (!c || !c->in || !c->out) {
            ichunk_free(c);
            it->submit_err = -ENOMEM;
            return;
        }
        size_t k = 0;
        while (k < it->chunk) {
            int rc = it->src(it->ctx, c->in + k * it->in_size);
            if (rc <= 0) {
                it->src_end = true;
                it->src_err = rc < 0 ? rc : 0;
                break;
            }
            k++;
        }
        if (!k) {
            ichunk_free(c);
            return;
        }
        kart__mpi_job *j = &c->job;
        j->kind = JOB_MAP;
        j->task = (uint32_t)it->task;
        j->in = c->in;
        j->in_size = it->in_size;
        j->out = c->out;
        j->out_size = it->out_size;
        j->n = k;
        j->chunk = k;
        j->owned = true;
        int rc = kart__mpi_enqueue(it->pool, j);
        if (rc) {
            ichunk_free(c);
            it->submit_err = rc;
            return;
        }
        *it->tail = c;
        it->tail = &c->next;
        it->inflight++;
    }
}

KART_API int kart_mpi_pool_imap(kart_mpi_pool *pool, const char *name, kart_pool_source src,
                                void *src_ctx, size_t in_size, size_t out_size, size_t chunk,
                                unsigned flags, kart_mpi_pool_iter **out)
{
    if (!pool || !name || !src || !out || !in_size || (flags & ~KART_POOL_UNORDERED))
        return -EINVAL;
    if (pool->rank != pool->root)
        return -EPERM;
    int task = kart__mpi_task_index(pool, name);
    if (task < 0)
        return task;
    chunk = chunk ? chunk : 1;
    if (chunk > SIZE_MAX / in_size || (out_size && chunk > SIZE_MAX / out_size))
        return -EINVAL;
    pthread_mutex_lock(&pool->mu);
    bool closed = pool->closed;
    pthread_mutex_unlock(&pool->mu);
    if (closed)
        return -ESHUTDOWN;
    kart_mpi_pool_iter *it = calloc(1, sizeof(*it));
    if (!it)
        return -ENOMEM;
    it->pool = pool;
    it->task = task;
    it->src = src;
    it->ctx = src_ctx;
    it->in_size = in_size;
    it->out_size = out_size;
    it->chunk = chunk;
    it->flags = flags;
    it->ahead = 2 * (size_t)(pool->total_workers > 0 ? pool->total_workers : 1);
    it->tail = &it->head;
    fill(it);
    if (it->submit_err && !it->head) {
        int rc = it->submit_err;
        free(it);
        return rc;
    }
    *out = it;
    return 0;
}

/* Takes a finished chunk off the list: the first (ordered) or any
 * (unordered). mu held. */
static ichunk *take_done(kart_mpi_pool_iter *it)
{
    for (ichunk **pp = &it->head; *pp; pp = &(*pp)->next) {
        ichunk *c = *pp;
        if (c->job.finished) {
            *pp = c->next;
            if (it->tail == &c->next)
                it->tail = pp;
            it->inflight--;
            return c;
        }
        if (!(it->flags & KART_POOL_UNORDERED))
            return NULL;
    }
    return NULL;
}

KART_API int kart_mpi_pool_iter_next(kart_mpi_pool_iter *it, int64_t timeout_ns, void *result,
                                     int *task_err)
{
    if (!it || !task_err || (!result && it->out_size))
        return -EINVAL;
    if (it->ended)
        return *task_err = 0, 0;
    int64_t deadline = timeout_ns < 0 ? -1 : kart_now_ns() + timeout_ns;
    for (;;) {
        if (it->cur && it->cur_i < it->cur->job.n) {
            ichunk *c = it->cur;
            size_t i = it->cur_i++;
            if (c->job.fail.err && i >= c->job.fail.item) {
                *task_err = c->job.fail.err;
            } else {
                *task_err = 0;
                if (it->out_size)
                    memcpy(result, c->out + i * it->out_size, it->out_size);
            }
            return 1;
        }
        ichunk_free(it->cur);
        it->cur = NULL;
        fill(it);
        if (!it->head) {
            if (it->submit_err) {
                int rc = it->submit_err;
                it->ended = true;
                return rc;
            }
            it->ended = true;
            *task_err = it->src_err;
            return 0;
        }
        kart_mpi_pool *p = it->pool;
        pthread_mutex_lock(&p->mu);
        ichunk *c;
        while (!(c = take_done(it))) {
            if (kart__mpi_deadline_wait(p, deadline) == -ETIMEDOUT) {
                pthread_mutex_unlock(&p->mu);
                return -ETIMEDOUT;
            }
        }
        pthread_mutex_unlock(&p->mu);
        it->cur = c;
        it->cur_i = 0;
    }
}

KART_API void kart_mpi_pool_iter_free(kart_mpi_pool_iter *it)
{
    if (!it)
        return;
    kart_mpi_pool *p = it->pool;
    pthread_mutex_lock(&p->mu);
    for (ichunk *c = it->head; c; c = c->next)
        while (!c->job.finished)
            pthread_cond_wait(&p->cond, &p->mu);
    pthread_mutex_unlock(&p->mu);
    while (it->head) {
        ichunk *c = it->head;
        it->head = c->next;
        ichunk_free(c);
    }
    ichunk_free(it->cur);
    free(it);
}

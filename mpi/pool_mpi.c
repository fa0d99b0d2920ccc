/*
 * mpi/pool_mpi.c — the MPI pool's lifetime (create, serve's counterpart
 * on the root: close, terminate, join, free) and its futures. The root's
 * calls that queue work: pool_mpi_submit.c; the progress thread:
 * pool_mpi_progress.c; serving ranks: pool_mpi_serve.c.
 */
#include "pool_mpi_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- futures ---- */

int kart__mpi_future_new(kart_mpi_future **out)
{
    kart_mpi_future *f = malloc(sizeof(*f));
    if (!f)
        return -ENOMEM;
    int rc = kart_future_create(&f->f);
    if (rc) {
        free(f);
        return rc;
    }
    atomic_init(&f->refs, 2);
    *out = f;
    return 0;
}

void kart__mpi_future_unref(kart_mpi_future *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == 1) {
        kart_future_free(f->f);
        free(f);
    }
}

KART_API kart_future *kart_mpi_future_get(kart_mpi_future *f)
{
    return f ? f->f : NULL;
}

KART_API void kart_mpi_future_free(kart_mpi_future *f)
{
    if (f)
        kart__mpi_future_unref(f);
}

/* ---- the registry ---- */

int kart__mpi_task_index(const kart_mpi_pool *pool, const char *name)
{
    for (size_t i = 0; i < pool->ntasks; i++)
        if (strcmp(pool->tasks[i].name, name) == 0)
            return (int)i;
    return -ENOENT;
}

/* FNV-1a over the names, the root and the depth: what every rank must
 * agree on. */
static uint64_t fingerprint(const kart_mpi_pool_options *o, size_t depth)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < o->ntasks; i++) {
        const char *s = o->tasks[i].name;
        for (size_t k = 0; k <= strlen(s); k++)
            h = (h ^ (unsigned char)s[k]) * 1099511628211ull;
    }
    h = (h ^ (uint64_t)o->root) * 1099511628211ull;
    return (h ^ depth) * 1099511628211ull;
}

static int check_options(const kart_mpi_pool_options *o)
{
    if (!o->tasks || o->ntasks == 0 || o->ntasks > KART__MPI_MAX_TASKS || o->depth > 64)
        return -EINVAL;
    for (size_t i = 0; i < o->ntasks; i++) {
        if (!o->tasks[i].name || !o->tasks[i].fn ||
            strnlen(o->tasks[i].name, KART__MPI_NAME_MAX) >= KART__MPI_NAME_MAX)
            return -EINVAL;
        for (size_t k = 0; k < i; k++)
            if (strcmp(o->tasks[i].name, o->tasks[k].name) == 0)
                return -EINVAL;
    }
    return 0;
}

static void pool_release(kart_mpi_pool *p)
{
    kart_pool_free(p->local);
    while (p->spare) {
        kart__mpi_chunk *c = p->spare;
        p->spare = c->next;
        free(c);
    }
    free(p->rbuf);
    free(p->tasks);
    free(p->ranks);
    if (p->comm != MPI_COMM_NULL)
        MPI_Comm_free(&p->comm);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
    pthread_cond_destroy(&p->wake);
    free(p);
}

/* Every rank learns whether every rank succeeded so far (a collective:
 * one rank's failure fails them all). */
static int agree(MPI_Comm comm, int rc)
{
    int mine = rc ? 1 : 0, any = 0;
    if (MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS)
        return rc ? rc : -EIO;
    return rc ? rc : any ? -EPROTO : 0;
}

KART_API int kart_mpi_pool_create(kart_mpi_pool **out, const kart_mpi_pool_options *opts)
{
    if (!out || !opts)
        return -EINVAL;
    int inited = 0, finalized = 0, level = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized)
        return -EINVAL;
    MPI_Comm base = opts->comm ? *opts->comm : MPI_COMM_WORLD;
    int size = 0, rank = 0;
    if (MPI_Comm_size(base, &size) != MPI_SUCCESS || MPI_Comm_rank(base, &rank) != MPI_SUCCESS)
        return -EINVAL;
    /* Bad local input fails at once, before any collective: the other
     * ranks then fail in theirs or hang, as any MPI program whose ranks
     * disagree on a collective (the agreement below catches what can be
     * caught once every rank got that far). */
    int rc = check_options(opts);
    if (rc)
        return rc;
    if (size < 2 || opts->root < 0 || opts->root >= size)
        return -EINVAL;
    MPI_Query_thread(&level);
    if (rank == opts->root && level < MPI_THREAD_SERIALIZED)
        return -ENOTSUP;

    kart_mpi_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->comm = MPI_COMM_NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (MPI_Comm_dup(base, &p->comm) != MPI_SUCCESS) {
        p->comm = MPI_COMM_NULL;
        pool_release(p);
        return -EIO;
    }
    MPI_Comm_set_errhandler(p->comm, MPI_ERRORS_RETURN);
    p->rank = rank;
    p->size = size;
    p->root = opts->root;
    p->depth = opts->depth ? opts->depth : 2;
    p->result_size = opts->local.result_size ? opts->local.result_size : KART_POOL_RESULT_SIZE;
    p->ntasks = opts->ntasks;
    p->tasks = calloc(opts->ntasks, sizeof(*p->tasks));
    rc = p->tasks ? 0 : -ENOMEM;
    if (!rc)
        memcpy(p->tasks, opts->tasks, opts->ntasks * sizeof(*p->tasks));
    /* The same registry, root and depth everywhere. */
    uint64_t fp = fingerprint(opts, p->depth), root_fp = fp;
    if (MPI_Bcast(&root_fp, 1, MPI_UINT64_T, p->root, p->comm) != MPI_SUCCESS && !rc)
        rc = -EIO;
    if (!rc && root_fp != fp)
        rc = -EPROTO;
    int workers = 0;
    if (!rc && rank != p->root) {
        kart_pool_options lo = opts->local;
        lo.result_size = p->result_size;
        rc = kart_pool_create(&p->local, &lo);
        p->local_inline = lo.kind == KART_POOL_INLINE;
        if (!rc) {
            workers = kart_pool_workers(p->local);
            if (workers <= 0)
                workers = 1; /* inline: the serving thread is its worker */
        }
    }
    if ((rc = agree(p->comm, rc)) != 0) {
        pool_release(p);
        return rc;
    }
    int *all = calloc((size_t)size, sizeof(int));
    if (!all) {
        rc = -ENOMEM;
    } else if (MPI_Allgather(&workers, 1, MPI_INT, all, 1, MPI_INT, p->comm) != MPI_SUCCESS) {
        rc = -EIO;
    } else {
        for (int r = 0; r < size; r++)
            p->total_workers += all[r];
    }
    if (!rc && rank == p->root) {
        p->ranks = calloc((size_t)size, sizeof(*p->ranks));
        if (!p->ranks)
            rc = -ENOMEM;
        for (int r = 0; !rc && r < size; r++) {
            p->ranks[r].workers = all[r];
            p->ranks[r].credit = (size_t)all[r] * p->depth;
            p->ranks[r].alive = r != p->root;
        }
        p->alive_ranks = size - 1;
        if (!rc && pthread_create(&p->thread, NULL, kart__mpi_progress, p) != 0)
            rc = -EAGAIN;
        p->thread_started = !rc;
    }
    free(all);
    /* A root that could not start fails every rank: the others would
     * serve forever. (The progress thread, if it started, waits for
     * progress_go: no MPI call of its own during this collective.) */
    rc = agree(p->comm, rc);
    if (p->thread_started) {
        pthread_mutex_lock(&p->mu);
        p->progress_go = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    if (rc != 0) {
        if (p->thread_started) {
            kart_mpi_pool_terminate(p);
            pthread_join(p->thread, NULL);
        }
        pool_release(p);
        return rc;
    }
    *out = p;
    return 0;
}

KART_API int kart_mpi_pool_rank(const kart_mpi_pool *pool)
{
    return pool ? pool->rank : -EINVAL;
}

KART_API int kart_mpi_pool_workers(const kart_mpi_pool *pool)
{
    return pool ? pool->total_workers : -EINVAL;
}

/* ---- lifetime (root) ---- */

static void cancel_queued(kart_mpi_pool *p);

KART_API int kart_mpi_pool_close(kart_mpi_pool *pool)
{
    if (!pool)
        return -EINVAL;
    if (pool->rank != pool->root)
        return -EPERM;
    pthread_mutex_lock(&pool->mu);
    pool->closed = true;
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    return 0;
}

KART_API int kart_mpi_pool_terminate(kart_mpi_pool *pool)
{
    if (!pool)
        return -EINVAL;
    if (pool->rank != pool->root)
        return -EPERM;
    pthread_mutex_lock(&pool->mu);
    pool->closed = pool->terminated = true;
    cancel_queued(pool);
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    return 0;
}

/* Called with mu held: the items not yet sent fail with -ECANCELED (the
 * progress thread completes the jobs whose chunks all came back). */
static void cancel_queued(kart_mpi_pool *p)
{
    for (kart__mpi_job *j = p->head; j; j = j->next) {
        size_t left = j->n - j->next_item;
        if (!left)
            continue;
        if (!j->fail.err || j->next_item < j->fail.item) {
            j->fail.err = -ECANCELED;
            j->fail.item = j->kind == JOB_MAP ? j->next_item : 0;
        }
        if (j->out && j->out_size)
            memset(j->out + j->next_item * j->out_size, 0, left * j->out_size);
        j->done += left;
        j->next_item = j->n;
    }
}

int kart__mpi_deadline_wait(kart_mpi_pool *pool, int64_t deadline)
{
    if (deadline < 0) {
        pthread_cond_wait(&pool->cond, &pool->mu);
        return 0;
    }
    int64_t now = kart_now_ns();
    if (now >= deadline)
        return -ETIMEDOUT;
    /* The condition variables use CLOCK_REALTIME: turn the monotonic
     * deadline into a realtime one for this wait. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (deadline - now);
    ts.tv_sec = t / 1000000000;
    ts.tv_nsec = t % 1000000000;
    pthread_cond_timedwait(&pool->cond, &pool->mu, &ts);
    return 0;
}

KART_API int kart_mpi_pool_join(kart_mpi_pool *pool, int64_t timeout_ns)
{
    if (!pool)
        return -EINVAL;
    if (pool->rank != pool->root)
        return -EPERM;
    int64_t deadline = timeout_ns < 0 ? -1 : kart_now_ns() + timeout_ns;
    pthread_mutex_lock(&pool->mu);
    if (!pool->closed) {
        pthread_mutex_unlock(&pool->mu);
        return -EBUSY;
    }
    while (!pool->stopped) {
        if (kart__mpi_deadline_wait(pool, deadline) == -ETIMEDOUT) {
            pthread_mutex_unlock(&pool->mu);
            return -ETIMEDOUT;
        }
    }
    bool join = !pool->joined;
    pool->joined = true;
    pthread_mutex_unlock(&pool->mu);
    if (join)
        pthread_join(pool->thread, NULL);
    return 0;
}

KART_API void kart_mpi_pool_free(kart_mpi_pool *pool)
{
    if (!pool)
        return;
    if (pool->rank == pool->root && pool->thread_started) {
        kart_mpi_pool_terminate(pool);
        kart_mpi_pool_join(pool, -1);
    }
    pool_release(pool);
}

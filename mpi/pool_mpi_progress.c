/*
 * mpi/pool_mpi_progress.c — the root's progress thread: the only thread
 * of the root that calls MPI once the pool runs (so the root needs
 * MPI_THREAD_SERIALIZED, not MULTIPLE). It hands chunks to ranks with
 * credit left, takes their results back into place, completes jobs, and
 * stops the ranks once the pool is closed and drained.
 */
#include "pool_mpi_private.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A job completed with nothing more to come: its owner is told, or its
 * future set and the job freed. Called without mu (callbacks run here). */
static void complete(kart_mpi_pool *p, kart__mpi_job *j, const void *res, size_t len)
{
    kart__mpi_send_wait_job(&p->sends, j); /* its input may go now */
    if (j->owned) {
        pthread_mutex_lock(&p->mu);
        j->finished = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    if (j->fail.err)
        kart_future_set_error(j->fut->f, j->fail.err);
    else
        kart_future_set_result(j->fut->f, res, j->kind == JOB_SUBMIT ? len : 0);
    kart__mpi_future_unref(j->fut);
    free(j->arg_copy);
    free(j);
}

/* Takes a job off the queue (mu held). A job must be off the queue before
 * it completes: the owner of a map's job (on its stack) returns then. */
static void dequeue(kart_mpi_pool *p, kart__mpi_job *j)
{
    if (!j->queued)
        return;
    kart__mpi_job *prev = NULL;
    for (kart__mpi_job *q = p->head; q; prev = q, q = q->next) {
        if (q != j)
            continue;
        if (prev)
            prev->next = q->next;
        else
            p->head = q->next;
        if (p->tail == q)
            p->tail = prev;
        break;
    }
    j->queued = false;
    j->next = NULL;
}

/* Records a chunk's outcome (mu held). True when its job is complete
 * (then it is off the queue). */
static bool chunk_done(kart__mpi_chunk *c, int err, size_t item)
{
    kart__mpi_job *j = c->job;
    j->outstanding--;
    j->done += c->n;
    if (err && (!j->fail.err || c->first + item < j->fail.item)) {
        j->fail.err = err;
        j->fail.item = j->kind == JOB_MAP ? c->first + item : 0;
        j->fail.pid = 0;
        j->fail.exit_status = -1;
        j->fail.signal = 0;
    }
    return j->done == j->n && j->next_item == j->n;
}

static bool chunk_done_dequeue(kart_mpi_pool *p, kart__mpi_chunk *c, int err, size_t item)
{
    bool fin = chunk_done(c, err, item);
    if (fin)
        dequeue(p, c->job);
    return fin;
}

static void unlink_chunk(kart_mpi_pool *p, kart__mpi_chunk *c)
{
    kart__mpi_rank *r = &p->ranks[c->rank];
    if (c->prev)
        c->prev->next = c->next;
    else
        r->chunks = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->outstanding--;
}

/* Called with mu held: fails the items not yet sent with err. */
static void fail_queued(kart_mpi_pool *p, int err)
{
    for (kart__mpi_job *j = p->head; j; j = j->next) {
        size_t left = j->n - j->next_item;
        if (!left)
            continue;
        if (!j->fail.err || j->next_item < j->fail.item) {
            j->fail.err = err;
            j->fail.item = j->kind == JOB_MAP ? j->next_item : 0;
            j->fail.exit_status = -1;
        }
        if (j->out && j->out_size)
            memset(j->out + j->next_item * j->out_size, 0, left * j->out_size);
        j->done += left;
        j->next_item = j->n;
    }
}

/* A rank MPI reported failed: its chunks fail with -EHOSTDOWN, and when
 * none is left, so does everything queued. */
static void rank_lost(kart_mpi_pool *p, int rank)
{
    kart__mpi_job *finished[64];
    size_t nf = 0;
    pthread_mutex_lock(&p->mu);
    kart__mpi_rank *r = &p->ranks[rank];
    if (r->alive) {
        r->alive = false;
        p->alive_ranks--;
    }
    while (r->chunks && nf < 64) {
        kart__mpi_chunk *c = r->chunks;
        kart__mpi_job *j = c->job;
        unlink_chunk(p, c);
        if (j->out && j->out_size)
            memset(j->out + c->first * j->out_size, 0, c->n * j->out_size);
        if (chunk_done_dequeue(p, c, -EHOSTDOWN, 0))
            finished[nf++] = j;
        c->next = p->spare; /* chunk_put */
        p->spare = c;
    }
    if (p->alive_ranks == 0)
        fail_queued(p, -EHOSTDOWN);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < nf; i++)
        complete(p, finished[i], NULL, 0);
    if (r->chunks)
        rank_lost(p, rank);
}

/* Chunk records are reused (the progress thread alone takes and gives
 * them): chunk 1 makes one per item. */
static kart__mpi_chunk *chunk_get(kart_mpi_pool *p)
{
    kart__mpi_chunk *c = p->spare;
    if (!c)
        return calloc(1, sizeof(*c));
    p->spare = c->next;
    memset(c, 0, sizeof(*c));
    return c;
}

static void chunk_put(kart_mpi_pool *p, kart__mpi_chunk *c)
{
    c->next = p->spare;
    p->spare = c;
}

/* Takes one result, if one is there, into the pool's buffer (grown as
 * needed and kept). Iprobe then Recv, not the matched MPI_Improbe and
 * MPI_Mrecv: with those, Open MPI 4.1.4 hung check_pool_mpi's 2-rank run
 * (polling with MPI_Improbe), where Iprobe never has. */
static bool receive(kart_mpi_pool *p)
{
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULT, p->comm, &flag, &st) != MPI_SUCCESS || !flag)
        return false;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    size_t got = count > 0 ? (size_t)count : 0;
    if (got > p->rcap || !p->rbuf) {
        char *b = realloc(p->rbuf, got ? got : 1);
        if (!b) {
            return false; /* try again on the next turn */
        }
        p->rbuf = b;
        p->rcap = got ? got : 1;
    }
    char *buf = p->rbuf;
    if (MPI_Recv(buf, count, MPI_BYTE, st.MPI_SOURCE, TAG_RESULT, p->comm, MPI_STATUS_IGNORE) !=
            MPI_SUCCESS ||
        got < sizeof(wire_result)) {
        rank_lost(p, st.MPI_SOURCE);
        return true;
    }
    wire_result h;
    memcpy(&h, buf, sizeof(h));
    kart__mpi_chunk *c = (kart__mpi_chunk *)(uintptr_t)h.id;
    kart__mpi_job *j = c->job;
    const char *payload = buf + sizeof(h);
    size_t len = got - sizeof(h);
    if (j->kind == JOB_MAP && j->out_size) {
        size_t want = c->n * j->out_size;
        memcpy(j->out + c->first * j->out_size, payload, len < want ? len : want);
    }
    pthread_mutex_lock(&p->mu);
    unlink_chunk(p, c);
    bool fin = chunk_done_dequeue(p, c, (int)h.err, (size_t)h.item);
    pthread_mutex_unlock(&p->mu);
    chunk_put(p, c);
    if (fin)
        complete(p, j, payload, len);
    return true;
}

/* Takes jobs whose items were all sent (or cancelled) off the queue; the
 * complete ones among them go to `out`. mu held. */
static size_t sweep(kart_mpi_pool *p, kart__mpi_job **out, size_t max)
{
    size_t n = 0;
    for (kart__mpi_job *j = p->head; j && n < max;) {
        kart__mpi_job *next = j->next;
        if (j->next_item == j->n) {
            dequeue(p, j);
            if (j->done == j->n)
                out[n++] = j;
        }
        j = next;
    }
    return n;
}

/* Sends one chunk to every rank with credit left, while work is queued.
 * Returns whether it sent anything. */
static bool dispatch(kart_mpi_pool *p)
{
    bool sent = false;
    for (;;) {
        bool any = false;
        for (int rank = 0; rank < p->size; rank++) {
            kart__mpi_rank *r = &p->ranks[rank];
            pthread_mutex_lock(&p->mu);
            kart__mpi_job *j = p->head;
            while (j && j->next_item == j->n)
                j = j->next;
            if (!j) {
                pthread_mutex_unlock(&p->mu);
                return sent;
            }
            if (!r->alive || r->outstanding >= r->credit) {
                pthread_mutex_unlock(&p->mu);
                continue;
            }
            if (j->fut && !j->started) {
                j->started = true;
                if (kart_future_set_running(j->fut->f) == 0) {
                    /* Cancelled before it was sent: nothing runs. */
                    j->fail.err = -ECANCELED;
                    j->done += j->n - j->next_item;
                    j->next_item = j->n;
                    pthread_mutex_unlock(&p->mu);
                    continue;
                }
            }
            kart__mpi_chunk *c = chunk_get(p);
            if (!c) {
                pthread_mutex_unlock(&p->mu);
                return sent;
            }
            size_t left = j->n - j->next_item, k = j->chunk;
            if (!k) {
                /* Guided: the chunks in flight (depth per worker) hold at
                 * most half of what is left, so that work always remains
                 * for whichever rank finishes first. (ceil(left / 2W), as
                 * before, put the whole map in flight with the first 2W
                 * chunks, and the first transfers were the largest: a map
                 * of 1,000,000 items took 130 ms over TCP and 114 ms on
                 * shared memory, now 107 and 96; master-worker 116, 120.) */
                size_t slots = 2 * p->depth * (size_t)p->total_workers;
                k = (left + slots - 1) / slots;
            }
            size_t item_max = j->in_size > j->out_size ? j->in_size : j->out_size;
            if (item_max && k > (1u << 30) / item_max)
                k = (1u << 30) / item_max ? (1u << 30) / item_max : 1;
            k = k < left ? k : left;
            k = k ? k : 1;
            c->job = j;
            c->first = j->next_item;
            c->n = k;
            c->rank = rank;
            c->next = r->chunks;
            if (r->chunks)
                r->chunks->prev = c;
            r->chunks = c;
            r->outstanding++;
            j->outstanding++;
            j->next_item += k;
            if (j->next_item == j->n)
                dequeue(p, j); /* all sent: it completes off the queue */
            pthread_mutex_unlock(&p->mu);

            wire_work h = {(uint64_t)(uintptr_t)c, k, j->in_size, j->out_size, j->chunk, j->task,
                           j->kind == JOB_SUBMIT};
            int rc = kart__mpi_isend_work(&p->sends, p->comm, rank, &h,
                                          j->in + c->first * j->in_size, k * j->in_size, j);
            if (rc == -EIO) {
                rank_lost(p, rank);
            } else if (rc) {
                /* No memory for the message (or a chunk too large for
                 * one): the chunk fails, nothing is lost (its items
                 * report the error). */
                pthread_mutex_lock(&p->mu);
                unlink_chunk(p, c);
                bool fin = chunk_done_dequeue(p, c, rc, 0);
                pthread_mutex_unlock(&p->mu);
                chunk_put(p, c);
                if (fin)
                    complete(p, j, NULL, 0);
            }
            sent = any = true;
        }
        if (!any)
            return sent;
    }
}

static void nap(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

void *kart__mpi_progress(void *arg)
{
    kart_mpi_pool *p = arg;
    unsigned idle = 0;
    /* Not while kart_mpi_pool_create's last collective runs on the
     * caller's thread: MPI allows it under MPI_THREAD_MULTIPLE, but Open
     * MPI's blocking wait (its wait_sync handoff, a plain flag) then
     * races our progress calls in ThreadSanitizer's eyes. */
    pthread_mutex_lock(&p->mu);
    while (!p->progress_go)
        pthread_cond_wait(&p->wake, &p->mu);
    pthread_mutex_unlock(&p->mu);
    for (;;) {
        bool did = false;
        /* A rank whose result came back gets its next chunk before the
         * next result is taken (each copy into place takes a while). */
        while (receive(p)) {
            did = true;
            dispatch(p);
        }
        did |= dispatch(p);
        kart__mpi_send_reap(&p->sends, false);
        if (!did)
            did = kart__mpi_prefault_some(p);
        kart__mpi_job *fin[64];
        pthread_mutex_lock(&p->mu);
        size_t nf = sweep(p, fin, 64);
        size_t outstanding = 0;
        for (int r = 0; r < p->size; r++)
            outstanding += p->ranks[r].outstanding;
        bool drained = !p->head && !outstanding;
        if (p->closed && drained && !nf) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        if (!did && !nf && drained && !p->sends && !p->closed) {
            /* Nothing anywhere: sleep until a submit or a close. */
            pthread_cond_wait(&p->wake, &p->mu);
            idle = 0;
        }
        pthread_mutex_unlock(&p->mu);
        for (size_t i = 0; i < nf; i++)
            complete(p, fin[i], NULL, 0);
        if (did || nf) {
            idle = 0;
        } else if (++idle > 64) {
            /* Results are due: poll, giving the CPU away (a rank may
             * share it), then nap briefly once it has been quiet long.
             * Not a blocking MPI_Mprobe: Open MPI spins in it without
             * bound, and with the ranks sharing cores (the bench's case:
             * W ranks on W cores, plus this thread) a spinning root takes
             * the CPU its own ranks need; on an idle core a result comes
             * within the first few thousand turns, before any nap. */
            if (idle < 4096)
                sched_yield();
            else
                nap(20000);
        }
    }
    /* Drained and closed: tell every rank still there to stop. */
    for (int r = 0; r < p->size; r++) {
        if (!p->ranks[r].alive)
            continue;
        char *none = malloc(1);
        if (!none || kart__mpi_isend(&p->sends, p->comm, r, TAG_STOP, none, 0) != 0)
            free(none);
    }
    kart__mpi_send_reap(&p->sends, true);
    pthread_mutex_lock(&p->mu);
    p->stopped = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/*
 * mpi/pool_mpi_serve.c — a serving rank: receives chunks and tasks from
 * the root, runs them on its local kart pool (several at once: the root
 * keeps `depth` per local worker in flight here, so the next is already
 * here when one finishes), and sends each result back as soon as it is
 * done, which is also this rank's request for more.
 */
#include "pool_mpi_private.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

typedef struct running {
    wire_work h;
    char *msg; /* the received message: header, then the items */
    char *out; /* map results */
    kart_future *f;
    int err; /* starting it failed: reported as the chunk's error */
    struct running *next;
} running;

/* Whether a received message is a well-formed chunk or task. */
static bool well_formed(const kart_mpi_pool *p, const wire_work *h, size_t len)
{
    return h->task < p->ntasks && (!h->in_size || h->n <= SIZE_MAX / h->in_size) &&
           len - sizeof(wire_work) == h->n * h->in_size;
}

/* Starts a received chunk or task on the local pool. */
static running *start(kart_mpi_pool *p, char *msg, size_t len)
{
    running *r = calloc(1, sizeof(*r));
    if (!r) {
        free(msg);
        return NULL;
    }
    r->msg = msg;
    if (len < sizeof(wire_work)) {
        r->err = -EPROTO;
        return r;
    }
    memcpy(&r->h, msg, sizeof(r->h));
    const char *in = msg + sizeof(wire_work);
    if (!well_formed(p, &r->h, len)) {
        r->err = -EPROTO;
        return r;
    }
    kart_task_fn fn = p->tasks[r->h.task].fn;
    if (r->h.submit) {
        r->err = kart_pool_submit(p->local, fn, in, r->h.in_size, &r->f);
        return r;
    }
    size_t bytes = r->h.n * r->h.out_size;
    r->out = malloc(bytes ? bytes : 1);
    if (!r->out) {
        r->err = -ENOMEM;
        return r;
    }
    kart_pool_map_options mo = {.chunk = r->h.chunk};
    r->err = kart_pool_map_async(p->local, fn, in, r->h.in_size, r->out, r->h.out_size, r->h.n, &mo,
                                 &r->f);
    return r;
}

/* kart_pool_map's most chunks per map (core/pool/pool_mem.h): the inline
 * path below splits a chunk into the same sub-chunks as the local pool. */
#define LOCAL_MAX_CHUNKS ((1u << 24) - 1)

/* A map chunk on an inline local pool runs right here, as kart_pool_map
 * would run it on that pool (the same sub-chunks: a failing item stops
 * the rest of its sub-chunk and nothing else), but with no job, no
 * future and, once the buffers have grown, no allocation; its result
 * goes back in one blocking send, which is also this rank's request for
 * more. Blocking is safe: the root's progress thread takes every result
 * as it comes and never waits on this rank to send. This is the per-item
 * path of chunk 1, the cost the hand-written master-worker sets. */
static int run_inline(kart_mpi_pool *p, const wire_work *h, const char *in, char **sbuf,
                      size_t *scap)
{
    wire_result r = {h->id, 0, 0, 0};
    size_t in_size = h->in_size, out_size = h->out_size, n = h->n;
    size_t bytes = n * out_size, need = sizeof(r) + bytes;
    if (out_size && n > (SIZE_MAX - sizeof(r)) / out_size)
        need = SIZE_MAX;
    if (need > *scap) {
        char *b = need == SIZE_MAX ? NULL : realloc(*sbuf, need);
        if (!b) {
            /* The chunk fails whole, nothing is lost: the header alone. */
            r.err = -ENOMEM;
            return MPI_Send(&r, sizeof(r), MPI_BYTE, p->root, TAG_RESULT, p->comm) == MPI_SUCCESS
                       ? 0
                       : -EIO;
        }
        *sbuf = b;
        *scap = need;
    }
    char *out = *sbuf + sizeof(r);
    kart_task_fn fn = p->tasks[h->task].fn;
    size_t chunk = h->chunk ? h->chunk : (n + 3) / 4;
    if (!chunk)
        chunk = 1;
    if (n / chunk >= LOCAL_MAX_CHUNKS)
        chunk = (n + LOCAL_MAX_CHUNKS - 1) / LOCAL_MAX_CHUNKS;
    for (size_t first = 0; first < n; first += chunk) {
        size_t last = n - first > chunk ? first + chunk : n;
        for (size_t i = first; i < last; i++) {
            size_t len = out_size;
            int rc = fn(in + i * in_size, in_size, out + i * out_size, &len);
            if (rc == 0 && len > out_size)
                rc = -EMSGSIZE;
            if (rc) {
                /* Items run in index order: the first failure is the
                 * lowest failing item of the lowest failing sub-chunk. */
                if (!r.err)
                    r.err = rc, r.item = i;
                memset(out + i * out_size, 0, (last - i) * out_size);
                break;
            }
        }
    }
    r.len = bytes;
    memcpy(*sbuf, &r, sizeof(r));
    return MPI_Send(*sbuf, (int)need, MPI_BYTE, p->root, TAG_RESULT, p->comm) == MPI_SUCCESS ? 0
                                                                                             : -EIO;
}

/* Sends the outcome of a finished (or failed to start) chunk. */
static int reply(kart_mpi_pool *p, kart__mpi_send **sends, running *r)
{
    wire_result h = {r->h.id, 0, r->err, 0};
    size_t len = 0;
    char *res = NULL;
    if (!r->err && r->h.submit) {
        len = p->result_size;
        res = malloc(sizeof(h) + len);
        int err = 0;
        if (!res)
            h.err = -ENOMEM;
        else if (kart_future_result(r->f, 0, res + sizeof(h), &len, &err) != 0 || err)
            h.err = err ? err : -EPROTO, len = 0;
    } else if (!r->err) {
        kart_pool_failure fl;
        kart_future_failure(r->f, 0, &fl);
        h.err = fl.err;
        h.item = fl.item;
        len = r->h.n * r->h.out_size;
        res = malloc(sizeof(h) + len);
        if (!res)
            h.err = -ENOMEM, h.item = 0;
        else if (len)
            memcpy(res + sizeof(h), r->out, len);
    }
    if (!res) {
        len = 0;
        res = malloc(sizeof(h));
        if (!res)
            return -ENOMEM;
    }
    if (h.err && !r->h.submit && r->err)
        h.item = 0;
    h.len = len;
    memcpy(res, &h, sizeof(h));
    int rc = kart__mpi_isend(sends, p->comm, p->root, TAG_RESULT, res, sizeof(h) + len);
    if (rc)
        free(res);
    return rc;
}

static void finish(running *r)
{
    kart_future_free(r->f);
    free(r->out);
    free(r->msg);
    free(r);
}

KART_API int kart_mpi_pool_serve(kart_mpi_pool *pool)
{
    if (!pool || pool->rank == pool->root || pool->served)
        return -EINVAL;
    pool->served = true;
    running *list = NULL, **tail = &list;
    kart__mpi_send *sends = NULL;
    char *sbuf = NULL; /* the inline path's reply (reused) */
    size_t scap = 0;
    bool stop = false;
    unsigned idle = 0;
    int rc = 0;
    while (!stop || list) {
        bool did = false;
        int flag = 0;
        MPI_Status st;
        /* With nothing running, a blocking probe: nothing else can
         * happen until the root speaks. (Not the matched MPI_Mprobe and
         * MPI_Mrecv: see receive() in pool_mpi_progress.c.) */
        int prc = !list && !sends && !stop
                      ? (flag = 1, MPI_Probe(pool->root, MPI_ANY_TAG, pool->comm, &st))
                      : MPI_Iprobe(pool->root, MPI_ANY_TAG, pool->comm, &flag, &st);
        if (prc != MPI_SUCCESS) {
            rc = -EIO;
            break;
        }
        if (flag) {
            int count = 0;
            MPI_Get_count(&st, MPI_BYTE, &count);
            size_t len = count > 0 ? (size_t)count : 0;
            if (len > pool->rcap || !pool->rbuf) {
                char *b = realloc(pool->rbuf, len ? len : 1);
                if (!b) {
                    rc = -ENOMEM;
                    break;
                }
                pool->rbuf = b;
                pool->rcap = len ? len : 1;
            }
            char *msg = pool->rbuf;
            if (MPI_Recv(msg, count, MPI_BYTE, pool->root, st.MPI_TAG, pool->comm,
                         MPI_STATUS_IGNORE) != MPI_SUCCESS) {
                rc = -EIO;
                break;
            }
            wire_work h;
            if (st.MPI_TAG == TAG_STOP) {
                stop = true;
            } else if (pool->local_inline && len >= sizeof(h) &&
                       (memcpy(&h, msg, sizeof(h)), !h.submit && well_formed(pool, &h, len))) {
                if ((rc = run_inline(pool, &h, msg + sizeof(h), &sbuf, &scap)) != 0)
                    break;
            } else {
                /* The local pool's job reads the items in place: the
                 * buffer goes with it, a new one comes next time. */
                pool->rbuf = NULL;
                pool->rcap = 0;
                running *r = start(pool, msg, len);
                if (r) {
                    *tail = r;
                    tail = &r->next;
                }
            }
            did = true;
        }
        /* Reply for every chunk done, in any order. */
        for (running **pp = &list; *pp;) {
            running *r = *pp;
            if (r->err || kart_future_done(r->f) == 1) {
                reply(pool, &sends, r);
                *pp = r->next;
                if (tail == &r->next)
                    tail = pp;
                finish(r);
                did = true;
            } else {
                pp = &r->next;
            }
        }
        kart__mpi_send_reap(&sends, false);
        if (did) {
            idle = 0;
        } else if (list && ++idle > 64) {
            /* Waiting for the local pool: let it have the CPU. */
            kart_future_wait(list->f, idle < 1024 ? 0 : 20000);
            sched_yield();
        }
    }
    kart__mpi_send_reap(&sends, true);
    free(sbuf);
    while (list) {
        running *r = list;
        list = r->next;
        kart_future_wait(r->f, -1);
        finish(r);
    }
    return rc;
}

/*
 * mpi/pool_mpi_serve.c — a serving rank: receives chunks and tasks from
 * the root, runs them on its local kart pool (several at once: the root
 * keeps `depth` per local worker in flight here, so the next is already
 * here when one finishes), and sends each result back as soon as it is
 * done, which is also this rank's request for more. Map chunks on an
 * inline local pool run in this thread, overlapped with the transfers
 * (mpi/pool_mpi_inline.c).
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
    kart__mpi_link link;
    memset(&link, 0, sizeof(link));
    bool stop = false;
    unsigned idle = 0;
    int rc = 0;
    while (!stop || list) {
        bool did = false;
        char *msg;
        size_t len;
        int tag;
        int got = kart__mpi_link_take(pool, &link, !list && !sends && !stop, &msg, &len, &tag);
        if (got < 0) {
            rc = got;
            break;
        }
        if (got) {
            wire_work h;
            if (tag == TAG_STOP) {
                stop = true;
            } else if (pool->local_inline && len >= sizeof(h) &&
                       (memcpy(&h, msg, sizeof(h)), !h.submit && well_formed(pool, &h, len))) {
                /* A map chunk on an inline local pool runs right here, as
                 * kart_pool_map would run it on that pool, with no job,
                 * no future and, once the buffers have grown, no
                 * allocation: the per-item path of chunk 1, the cost the
                 * hand-written master-worker sets. */
                if ((rc = kart__mpi_run_inline(pool, &link, &h, msg + sizeof(h))) != 0)
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
    int lrc = kart__mpi_link_close(&link);
    rc = rc ? rc : lrc;
    while (list) {
        running *r = list;
        list = r->next;
        kart_future_wait(r->f, -1);
        finish(r);
    }
    return rc;
}

/*
 * core/manager/shm_queue.c — a Queue / JoinableQueue in a shared segment:
 * a singly linked list of nodes {next, len, pickle}. The list from head is
 * the truth; tail and count are rebuilt from it after a holder died
 * (mgr__shm_queue_repair). A node is complete before the one store that
 * links it, and unlinked before it is freed.
 *
 * Blocking: a getter that finds the queue empty notes the `puts` word,
 * sets `wget` and sleeps on `puts` without the lock; a put bumps `puts`
 * and, when `wget` is set, clears it and wakes every sleeper (each
 * re-checks under the lock). Putters on a full queue and join() do the
 * same on `gets` / `done`. The server's threads (serving Python clients)
 * wait the same way, so either side wakes the other.
 */
#include "shm_path.h"

#include "deadline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ORDER() __asm__ __volatile__("" ::: "memory")

typedef struct qnode {
    uint64_t next, len;
} qnode;

static qnode *node(mshm *s, uint64_t off)
{
    return MSHM_AT(s, off);
}

void mgr__shm_queue_repair(mshm *s)
{
    mshm_queue *q = &s->h->u.q;
    uint64_t n = 0, last = 0, max = s->size / 32;
    for (uint64_t at = q->head; at; at = node(s, at)->next) {
        if (at >= s->size || n > max) {
            /* cannot be (every link is written before it is used); keep
             * what was sound */
            if (last)
                node(s, last)->next = 0;
            else
                q->head = 0;
            break;
        }
        last = at;
        n++;
    }
    q->tail = last;
    q->count = n;
}

void mgr__shmq_setup(mshm *s, int64_t maxsize, uint64_t unfinished)
{
    s->h->u.q.maxsize = maxsize;
    s->h->u.q.unfinished = unfinished;
}

static bool is_full(const mshm_queue *q)
{
    return q->maxsize > 0 && q->count >= (uint64_t)q->maxsize;
}

/* Links a node holding p (lock held). */
static int push_locked(mshm *s, const void *p, size_t n)
{
    mshm_queue *q = &s->h->u.q;
    uint64_t off = mgr__shm_alloc(s, sizeof(qnode) + n);
    if (!off)
        return -ENOSPC;
    qnode *nd = node(s, off);
    nd->next = 0;
    nd->len = n;
    memcpy(nd + 1, p, n);
    ORDER();
    if (q->tail)
        node(s, q->tail)->next = off;
    else
        q->head = off;
    ORDER();
    q->tail = off;
    q->count++;
    q->unfinished++;
    return 0;
}

int mgr__shm_queue_push(mshm *s, const void *p, size_t n)
{
    return push_locked(s, p, n);
}

/* Takes the lock once cond() no longer holds for the queue; sleeps on
 * *word meanwhile. 0 with the lock held, or an error without it. */
static int wait_locked(mshm *s, bool (*cond)(const mshm_queue *), _Atomic uint32_t *word,
                       _Atomic uint32_t *flag, bool block, int64_t deadline,
                       const kart_manager_server *srv)
{
    mshm_queue *q = &s->h->u.q;
    for (;;) {
        int r = mgr__shm_lock(s);
        if (r)
            return r;
        if (!cond(q))
            return 0;
        if (!block || atomic_load(&s->h->closed)) {
            mgr__shm_unlock(s);
            return block ? -ECONNRESET : -ETIMEDOUT;
        }
        uint32_t seen = atomic_load(word);
        atomic_store(flag, 1);
        mgr__shm_unlock(s);
        r = mgr__shm_wait(s, word, seen, deadline, srv);
        if (r)
            return r;
    }
}

static bool is_empty(const mshm_queue *q)
{
    return q->head == 0;
}

static bool has_unfinished(const mshm_queue *q)
{
    return q->unfinished != 0;
}

int mgr__shmq_put(mshm *s, const kart_obj *item, bool block, int64_t deadline,
                  const kart_manager_server *srv)
{
    void *buf = NULL;
    size_t len = 0;
    int r = mv_pickle(item, (int)s->h->protocol, &buf, &len);
    if (r < 0)
        return r == -ENOMEM ? r : -EINVAL;
    mshm_queue *q = &s->h->u.q;
    r = wait_locked(s, is_full, &q->gets, &q->wput, block, deadline, srv);
    if (r == 0) {
        r = push_locked(s, buf, len);
        if (r == 0)
            mgr__shm_bump(s, &q->puts, &q->wget);
        mgr__shm_unlock(s);
    }
    free(buf);
    return r;
}

int mgr__shmq_get(mshm *s, bool block, int64_t deadline, const kart_manager_server *srv,
                  kart_obj **item)
{
    mshm_queue *q = &s->h->u.q;
    int r = wait_locked(s, is_empty, &q->puts, &q->wget, block, deadline, srv);
    if (r)
        return r;
    uint64_t off = q->head;
    qnode *nd = node(s, off);
    size_t n = nd->len <= s->size - off - sizeof(qnode) ? (size_t)nd->len : 0;
    r = mv_unpickle(nd + 1, n, item, NULL, 0);
    if (r < 0)
        r = r == -ENOMEM ? r : KART_EBADREPLY;
    else {
        q->head = nd->next;
        ORDER();
        if (!q->head)
            q->tail = 0;
        q->count--;
        ORDER();
        mgr__shm_free(s, off);
        mgr__shm_bump(s, &q->gets, &q->wput);
    }
    mgr__shm_unlock(s);
    return r;
}

int mgr__shmq_size(mshm *s, size_t *n, bool *full)
{
    int r = mgr__shm_lock(s);
    if (r)
        return r;
    *n = (size_t)s->h->u.q.count;
    if (full)
        *full = is_full(&s->h->u.q);
    mgr__shm_unlock(s);
    return 0;
}

int mgr__shmq_task_done(mshm *s)
{
    int r = mgr__shm_lock(s);
    if (r)
        return r;
    mshm_queue *q = &s->h->u.q;
    if (q->unfinished == 0)
        r = -EINVAL;
    else if (--q->unfinished == 0)
        mgr__shm_bump(s, &q->done, &q->wjoin);
    mgr__shm_unlock(s);
    return r;
}

int mgr__shmq_join(mshm *s, const kart_manager_server *srv)
{
    mshm_queue *q = &s->h->u.q;
    int r = wait_locked(s, has_unfinished, &q->done, &q->wjoin, true, KART__NO_DEADLINE, srv);
    if (r == 0)
        mgr__shm_unlock(s);
    return r;
}

/*
 * core/pool_mem.c — the pools' memory, the lowest layer: job slots
 * (allocated, referenced, recycled through limbo once no worker can still
 * be looking at them) and the per-node arena heap that holds task
 * arguments and results (see core/pool/pool_mem.h). It uses nothing of
 * the layers above it.
 */
#include "pool_mem.h"

#include <stdlib.h>
#include <string.h>

/* ---- slots ---- */

static void release_bufs(kart_pool *p, struct kart_future *j)
{
    for (int k = 0; k < 3; k++) {
        if (j->bufs[k])
            kart__pool_heap_free(p, j->bufs[k], j->buf_sizes[k]);
        j->bufs[k] = NULL;
    }
}

/* Moves every slot of the limbo that no worker is busy on to the free
 * list. Called with slot_lock held. A worker announces busy before it
 * reads a slot's generation, and release bumps the generation before the
 * slot enters the limbo, so a slot not seen busy here is not being
 * claimed from (a late worker sees the new generation and leaves). */
static void recycle_limbo(kart_pool *p)
{
    uint32_t *busy = p->busy_snap;
    int nb = 0;
    for (int w = 0; w < p->nworkers + KART__POOL_HELPERS; w++) {
        uint64_t b = atomic_load(&p->workers[w].busy);
        if (b)
            busy[nb++] = (uint32_t)((b & ~KART__POOL_BUSY) >> 16);
    }
    uint32_t *prev = &p->limbo_head;
    for (uint32_t s = p->limbo_head; s != UINT32_MAX;) {
        struct kart_future *j = &p->jobs[s];
        uint32_t next = j->next_free;
        bool held = false;
        for (int i = 0; i < nb && !held; i++)
            held = busy[i] == s;
        if (held) {
            prev = &j->next_free;
        } else {
            *prev = next;
            p->nlimbo--;
            release_bufs(p, j);
            j->next_free = p->free_head;
            p->free_head = s;
        }
        s = next;
    }
}

int kart__pool_slot_alloc(kart_pool *p, struct kart_future **out)
{
    kart__pool_lock_take(&p->slot_lock);
    if (p->free_head == UINT32_MAX && p->bump == p->max_jobs && p->nlimbo)
        recycle_limbo(p);
    uint32_t s;
    if (p->free_head != UINT32_MAX) {
        s = p->free_head;
        p->free_head = p->jobs[s].next_free;
    } else if (p->bump < p->max_jobs) {
        s = p->bump++;
    } else {
        kart__pool_lock_give(&p->slot_lock);
        return -EAGAIN;
    }
    kart__pool_lock_give(&p->slot_lock);
    struct kart_future *j = &p->jobs[s];
    j->slot = s;
    j->pool = p;
    j->ranges = &j->range;
    atomic_store_explicit(&j->nranges, 1, memory_order_relaxed);
    j->st = NULL;
    j->fn = NULL;
    j->pfn = NULL;
    j->parg = j->pres = NULL;
    j->res_len = 0;
    j->copy_out = NULL;
    j->notify = NULL;
    atomic_store_explicit(&j->cbs, NULL, memory_order_relaxed);
    atomic_store_explicit(&j->pushed, 0, memory_order_relaxed);
    j->err = 0;
    atomic_store_explicit(&j->fail, UINT64_MAX, memory_order_relaxed);
    atomic_store_explicit(&j->fail_item, UINT64_MAX, memory_order_relaxed);
    atomic_store_explicit(&j->dead_item, UINT64_MAX, memory_order_relaxed);
    atomic_store_explicit(&j->started, 0, memory_order_relaxed);
    atomic_store_explicit(&j->items_done, 0, memory_order_relaxed);
    j->dead_pid = 0;
    j->dead_status = 0;
    atomic_store_explicit(&j->finished, 0, memory_order_relaxed);
    atomic_store_explicit(&j->dead_seen, 0, memory_order_relaxed);
    atomic_store_explicit(&j->waiters, 0, memory_order_relaxed);
    atomic_store_explicit(&j->cancelled, 0, memory_order_relaxed);
    atomic_store_explicit(&j->refs, 2, memory_order_relaxed);
    atomic_store_explicit(&j->state, KS_QUEUED, memory_order_relaxed);
    *out = j;
    return 0;
}

/* The last hold is gone: the slot waits in the limbo until no worker is
 * busy on it. */
static void slot_release(kart_pool *p, struct kart_future *j)
{
    /* Sequentially consistent: ordered before the limbo's look at the
     * workers' busy marks (which they set before reading gen). */
    atomic_store(&j->gen, atomic_load_explicit(&j->gen, memory_order_relaxed) + 1);
    atomic_store_explicit(&j->state, KS_FREE, memory_order_relaxed);
    kart__pool_lock_take(&p->slot_lock);
    j->next_free = p->limbo_head;
    p->limbo_head = j->slot;
    p->nlimbo++;
    /* Keep the limbo short when the free list still has slots. */
    if (p->nlimbo >= 64)
        recycle_limbo(p);
    kart__pool_lock_give(&p->slot_lock);
}

void kart__pool_job_unref(kart_pool *p, struct kart_future *j)
{
    /* References are only ever dropped (a slot starts with its holds), so
     * a count of 1 is this caller's alone: no one can race to drop it, and
     * a load replaces the locked subtraction (the common case of a future
     * freed after its publication). The acquire pairs with the other
     * holder's release in its subtraction. */
    if (atomic_load_explicit(&j->refs, memory_order_acquire) == 1 ||
        atomic_fetch_sub(&j->refs, 1) == 1)
        slot_release(p, j);
}

/* ---- the heap ---- */

static int size_class(size_t size)
{
    int k = 6;
    while (((size_t)1 << k) < size)
        k++;
    return k;
}

void *kart__pool_heap_alloc(kart_pool *p, int node, size_t size)
{
    if (p->kind != KART_POOL_PROCESSES) {
        size_t sz = (size + KART__POOL_LINE - 1) & ~(size_t)(KART__POOL_LINE - 1);
        return aligned_alloc(KART__POOL_LINE, sz ? sz : KART__POOL_LINE);
    }
    int k = size_class(size);
    if (k >= 48)
        return NULL;
    size_t bsz = (size_t)1 << k;
    void *r = NULL;
    kart__pool_lock_take(&p->heap_lock);
    for (int t = 0; t < p->nnodes && !r; t++) {
        int nd = (node + t) % p->nnodes;
        if (p->heap_free[nd][k]) {
            size_t off = p->heap_free[nd][k] - 1;
            r = p->heap + off;
            memcpy(&p->heap_free[nd][k], r, sizeof(uint64_t));
        } else {
            size_t off = (p->heap_next[nd] + bsz - 1) & ~(bsz < 4096 ? bsz - 1 : 4095);
            if (off + bsz <= p->heap_end[nd]) {
                p->heap_next[nd] = off + bsz;
                r = p->heap + off;
            }
        }
    }
    kart__pool_lock_give(&p->heap_lock);
    return r;
}

void kart__pool_heap_free(kart_pool *p, void *ptr, size_t size)
{
    if (!ptr)
        return;
    if (p->kind != KART_POOL_PROCESSES) {
        free(ptr);
        return;
    }
    int k = size_class(size);
    size_t off = (size_t)((char *)ptr - p->heap);
    int nd = 0;
    while (nd + 1 < p->nnodes && off >= p->heap_end[nd])
        nd++;
    kart__pool_lock_take(&p->heap_lock);
    uint64_t next = p->heap_free[nd][k];
    memcpy(ptr, &next, sizeof(next));
    p->heap_free[nd][k] = off + 1;
    kart__pool_lock_give(&p->heap_lock);
}

int kart__pool_job_buf(kart_pool *p, struct kart_future *j, int node, size_t size, void **out)
{
    int k = 0;
    while (k < 3 && j->bufs[k])
        k++;
    if (k == 3)
        return -ENOMEM;
    void *b = kart__pool_heap_alloc(p, node, size);
    if (!b)
        return -ENOMEM;
    j->bufs[k] = b;
    j->buf_sizes[k] = size;
    *out = b;
    return 0;
}

/*
 * core/pool_mem.c — the pools' memory, the lowest layer: job slots
 * (allocated, referenced, recycled through limbo once no worker can still
 * be looking at them) and the per-node arena heap that holds task
 * arguments and results (see core/pool/pool_mem.h). It uses nothing of
 * the layers above it.
 */
#include "pool_mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- slots ---- */

/* Frees slot s's heap blocks. has_bufs answers for slots without any,
 * which are most, without a read of the slot: recycling a burst's slots
 * then touches none of them (their last line, where bufs live, had left
 * the cache: 40% of recycle_limbo's samples in bursts of 1,000). */
static void release_bufs(kart_pool *p, uint32_t s)
{
    if (!p->has_bufs[s])
        return;
    p->has_bufs[s] = 0;
    struct kart_future *j = &p->jobs[s];
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
    uint32_t keep = 0;
    for (uint32_t i = 0; i < p->nlimbo; i++) {
        uint32_t s = p->limbo_ids[i];
        bool held = false;
        for (int k = 0; k < nb && !held; k++)
            held = busy[k] == s;
        if (held) {
            p->limbo_ids[keep++] = s;
        } else {
            release_bufs(p, s);
            p->free_ids[p->nfree++] = s;
        }
    }
    p->nlimbo = keep;
}

/* ---- per-thread slot caches ----
 *
 * The one-at-a-time path (submit, wait, free, next) would take the slot
 * lock twice per task and order the generation's bump with a full fence:
 * three locked instructions of about ten. A submitting thread instead
 * keeps up to KART__POOL_CACHE_SLOTS free slots and as many released
 * ones in a cache of the pool's that it claimed (one of
 * KART__POOL_CACHES), refills it from the lists in batches under the
 * lock, and recycles its released slots itself, with one fence and one
 * look at the busy marks per batch. The arena has KART__POOL_CACHE_RESERVE
 * slots more than max_jobs asks, so the slots that caches hold never make
 * a submit fail before max_jobs futures are in flight (a thread with a
 * cache may have up to that many more). A thread that ends gives its
 * caches back (a key's destructor), for other threads to claim. */

static pthread_mutex_t caches_mu = PTHREAD_MUTEX_INITIALIZER; /* the list, owners' exits */
static kart_pool *caches_list;
static uint64_t caches_serial;
static pthread_key_t caches_key;
static pthread_once_t caches_once = PTHREAD_ONCE_INIT;
static bool caches_key_ok;
/* The thread's token (its address) and the cache it used last. */
static _Thread_local char tl_token;
static _Thread_local struct {
    const kart_pool *p;
    uint64_t serial;
    kart__pool_cache *c;
} tl_cache;

static void cache_flush(kart_pool *p, kart__pool_cache *c);
static void cache_spill(kart_pool *p, kart__pool_cache *c);

/* A thread that owned caches ends: give them back. Pools still alive
 * are on the list (taken off it, under the mutex, before they are
 * freed), so none is reached after its memory went. */
static void caches_thread_end(void *arg)
{
    (void)arg;
    uintptr_t me = (uintptr_t)&tl_token;
    pthread_mutex_lock(&caches_mu);
    for (kart_pool *p = caches_list; p; p = p->cache_next)
        for (int i = 0; i < KART__POOL_CACHES; i++)
            if (atomic_load(&p->caches[i].owner) == me) {
                cache_flush(p, &p->caches[i]);
                atomic_store(&p->caches[i].owner, 0);
            }
    pthread_mutex_unlock(&caches_mu);
    tl_cache.p = NULL;
}

static void caches_key_init(void)
{
    caches_key_ok = pthread_key_create(&caches_key, caches_thread_end) == 0;
}

void kart__pool_mem_size(kart_pool *p)
{
    pthread_once(&caches_once, caches_key_init);
    /* The caches were off for a while: their recycle read the workers'
     * busy marks relaxed, with no happens-before to a worker's last read
     * of a job (ThreadSanitizer, CI). It reads them with acquire now. */
    p->cache_on = caches_key_ok && p->max_jobs >= KART__POOL_CACHE_MIN;
    if (p->cache_on)
        p->max_jobs += KART__POOL_CACHE_RESERVE;
}

void kart__pool_mem_init(kart_pool *p)
{
    if (!p->cache_on)
        return;
    pthread_mutex_lock(&caches_mu);
    p->serial = ++caches_serial;
    p->cache_next = caches_list;
    caches_list = p;
    pthread_mutex_unlock(&caches_mu);
}

void kart__pool_mem_fini(kart_pool *p)
{
    if (!p->cache_on)
        return;
    pthread_mutex_lock(&caches_mu);
    for (kart_pool **pp = &caches_list; *pp; pp = &(*pp)->cache_next)
        if (*pp == p) {
            *pp = p->cache_next;
            break;
        }
    pthread_mutex_unlock(&caches_mu);
}

/* The calling thread's cache of p: the one it used last, one it claimed
 * before, or (claim) a free one it claims now; NULL when there is none. */
static kart__pool_cache *my_cache(kart_pool *p, bool claim)
{
    if (tl_cache.p == p && tl_cache.serial == p->serial)
        return tl_cache.c;
    if (!p->cache_on)
        return NULL;
    uintptr_t me = (uintptr_t)&tl_token;
    kart__pool_cache *got = NULL;
    for (int i = 0; i < KART__POOL_CACHES && !got; i++)
        if (atomic_load_explicit(&p->caches[i].owner, memory_order_relaxed) == me)
            got = &p->caches[i];
    for (int i = 0; i < KART__POOL_CACHES && !got && claim; i++) {
        uintptr_t z = 0;
        if (atomic_compare_exchange_strong(&p->caches[i].owner, &z, me)) {
            got = &p->caches[i];
            /* arms the destructor that gives it back */
            pthread_setspecific(caches_key, &tl_token);
        }
    }
    if (got) {
        tl_cache.p = p;
        tl_cache.serial = p->serial;
        tl_cache.c = got;
    }
    return got;
}

/* Moves the cache's released slots that no worker is busy on to its free
 * array. The fence orders the generations' bumps (release stores, in
 * cache_release) before the look at the busy marks, as slot_release's
 * sequentially consistent store does for the pool's limbo.
 *
 * Each busy mark is read with an acquire: a worker clears its mark with a
 * release store after its last read of the job (kart__pool_job_work), so
 * a slot seen free here is one whose readers are done, and the new
 * submit's writes to it come after their reads (a happens-before, not
 * just a fact of x86's memory order). With relaxed loads ThreadSanitizer
 * saw slot_alloc's setup race with a worker's read of j->ranges
 * (check_pool's stress_cache_recycle); the acquire costs nothing on x86
 * and one barrier per batch of KART__POOL_CACHE_SLOTS slots elsewhere. */
static void cache_recycle(kart_pool *p, kart__pool_cache *c)
{
    atomic_thread_fence(memory_order_seq_cst);
    bool held[KART__POOL_CACHE_SLOTS] = {false};
    for (int w = 0; w < p->nworkers + KART__POOL_HELPERS; w++) {
        uint64_t b = atomic_load_explicit(&p->workers[w].busy, memory_order_acquire);
        if (!b)
            continue;
        uint32_t bs = (uint32_t)((b & ~KART__POOL_BUSY) >> 16);
        for (uint32_t i = 0; i < c->nlimbo; i++)
            held[i] |= c->limbo[i] == bs;
    }
    uint32_t keep = 0;
    for (uint32_t i = 0; i < c->nlimbo; i++) {
        uint32_t s = c->limbo[i];
        if (held[i] || c->nfree == KART__POOL_CACHE_SLOTS) {
            c->limbo[keep++] = s;
        } else {
            release_bufs(p, s);
            c->free[c->nfree++] = s;
        }
    }
    c->nlimbo = keep;
}

/* Everything in the cache back to the pool's lists. */
static void cache_flush(kart_pool *p, kart__pool_cache *c)
{
    kart__pool_lock_take(&p->slot_lock);
    while (c->nfree)
        p->free_ids[p->nfree++] = c->free[--c->nfree];
    kart__pool_lock_give(&p->slot_lock);
    cache_spill(p, c);
}

/* The cache's released slots to the pool's limbo, under one lock. */
static void cache_spill(kart_pool *p, kart__pool_cache *c)
{
    kart__pool_lock_take(&p->slot_lock);
    while (c->nlimbo)
        p->limbo_ids[p->nlimbo++] = c->limbo[--c->nlimbo];
    if (p->nlimbo >= 64)
        recycle_limbo(p);
    kart__pool_lock_give(&p->slot_lock);
}

/* Takes a cache's worth of free slots from the lists. */
static void cache_refill(kart_pool *p, kart__pool_cache *c)
{
    kart__pool_lock_take(&p->slot_lock);
    if (!p->nfree && p->bump == p->max_jobs && p->nlimbo)
        recycle_limbo(p);
    while (c->nfree < KART__POOL_CACHE_SLOTS) {
        if (p->nfree) {
            c->free[c->nfree++] = p->free_ids[--p->nfree];
        } else if (p->bump < p->max_jobs) {
            c->free[c->nfree++] = p->bump++;
        } else {
            break;
        }
    }
    kart__pool_lock_give(&p->slot_lock);
}

/* A free slot from the caller's cache, or UINT32_MAX (no cache, or
 * nothing left for it in the lists). */
static uint32_t cache_alloc(kart_pool *p)
{
    kart__pool_cache *c = my_cache(p, true);
    if (!c)
        return UINT32_MAX;
    if (!c->nfree && c->nlimbo)
        cache_recycle(p, c);
    if (!c->nfree)
        cache_refill(p, c);
    return c->nfree ? c->free[--c->nfree] : UINT32_MAX;
}

/* Keeps a released slot in the caller's cache; false when it has none
 * of j's pool (the slot then goes to the pool's limbo). */
static bool cache_release(kart_pool *p, struct kart_future *j)
{
    if (!p->cache_on)
        return false;
    kart__pool_cache *c = my_cache(p, false);
    if (!c)
        return false;
    if (c->nlimbo == KART__POOL_CACHE_SLOTS) {
        if (c->nfree < KART__POOL_CACHE_SLOTS)
            cache_recycle(p, c);
        if (c->nlimbo == KART__POOL_CACHE_SLOTS) /* a burst: the lot to the pool's limbo */
            cache_spill(p, c);
    }
    atomic_store_explicit(&j->gen, atomic_load_explicit(&j->gen, memory_order_relaxed) + 1,
                          memory_order_release);
    atomic_store_explicit(&j->state, KS_FREE, memory_order_relaxed);
    c->limbo[c->nlimbo++] = j->slot;
    return true;
}

int kart__pool_slot_alloc(kart_pool *p, struct kart_future **out)
{
    uint32_t s = p->cache_on ? cache_alloc(p) : UINT32_MAX;
    if (s != UINT32_MAX)
        goto got;
    kart__pool_lock_take(&p->slot_lock);
    if (!p->nfree && p->bump == p->max_jobs && p->nlimbo)
        recycle_limbo(p);
    if (p->nfree) {
        s = p->free_ids[--p->nfree];
    } else if (p->bump < p->max_jobs) {
        s = p->bump++;
    } else {
        kart__pool_lock_give(&p->slot_lock);
        return -EAGAIN;
    }
    kart__pool_lock_give(&p->slot_lock);
got:;
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
    if (cache_release(p, j))
        return;
    /* Sequentially consistent: ordered before the limbo's look at the
     * workers' busy marks (which they set before reading gen). */
    atomic_store(&j->gen, atomic_load_explicit(&j->gen, memory_order_relaxed) + 1);
    atomic_store_explicit(&j->state, KS_FREE, memory_order_relaxed);
    kart__pool_lock_take(&p->slot_lock);
    p->limbo_ids[p->nlimbo++] = j->slot;
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
    p->has_bufs[j->slot] = 1;
    *out = b;
    return 0;
}

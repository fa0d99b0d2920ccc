/*
 * core/pool_job.c — the pools' engine: the node rings, claiming and running
 * chunks, finishing and publishing jobs, helping while waiting, and the
 * workers' loop (see core/pool/pool_job.h for the design; slots and the
 * heap are in core/pool_mem.c). It names nothing of the layers above it
 * (submit, futures, imap, process workers, the pool): it calls them only
 * through the pool's hooks and the jobs' notify functions.
 */
#include "fault.h"
#include "pool_job.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* ---- nodes ---- */

int kart__pool_node_index(const kart_pool *p, int node_id)
{
    for (int i = 0; i < p->nnodes; i++)
        if (p->node_ids[i] == node_id)
            return i;
    return -ENOENT;
}

int kart__pool_caller_node(const kart_pool *p)
{
    if (p->nnodes == 1)
        return 0;
    int id = kart_numa_current_node();
    int i = id < 0 ? -1 : kart__pool_node_index(p, id);
    return i < 0 ? 0 : i;
}

static void wake_one_node(kart_pool *p, kart__pool_node *q, int n)
{
    /* One wake-up in flight is enough for single tasks: the worker it
     * wakes clears `waking` and looks at the queue afterwards. */
    if (n == 1 && atomic_exchange(&q->waking, 1))
        return;
    atomic_fetch_add(&q->seq, 1);
    kart__futex_wake(&q->seq, n, p->shared);
}

/* Wakes a sleeper of `node`, or of the nearest node that has one; every
 * sleeper with all. Without all, nobody is woken while a worker of the
 * node (or of a nearer one) spins idle: it will find the work, and if
 * there is more than it takes, it passes the wake-up on. A submit that
 * reads a spinner after its push is safe: that spinner (or the last of
 * them) looks at the queues after it stops counting itself. */
void kart__pool_wake_node(kart_pool *p, int node, bool all)
{
    kart__pool_node *home = &p->nodes[node];
    for (int i = 0; i < home->norder; i++) {
        kart__pool_node *q = &p->nodes[home->order[i]];
        if (!all && atomic_load(&q->spinners) > 0)
            return;
        if (atomic_load(&q->sleepers) > 0) {
            KART__FAULT_POINT(pool_wake_sleeper);
            wake_one_node(p, q, all ? INT32_MAX : 1);
            if (!all)
                return;
        }
    }
}

/* Whether any queue a worker of `home` looks at holds an entry (perhaps
 * one already spent). Reads only. */
static bool anything_queued(kart_pool *p, const kart__pool_node *home)
{
    for (int oi = 0; oi < home->norder; oi++) {
        kart__pool_node *q = &p->nodes[home->order[oi]];
        if (atomic_load(&q->head) < kart__pool_tail(q))
            return true;
    }
    return false;
}

/* A spinning worker about to run something stops counting itself among
 * its node's spinners (see spin_join): while it runs, a submit must wake
 * a sleeper. A submit that read the count just before the decrement woke
 * nobody, so what is queued now gets the wake-up that submit did not
 * send (its push is seen here: the decrement and the submit's read of
 * the count are both sequentially consistent). */
static void spin_stop(kart_pool *p, kart__pool_worker *me)
{
    if (!me->spinning)
        return;
    me->spinning = false;
    kart__pool_node *q = &p->nodes[me->node];
    atomic_fetch_sub(&q->spinners, 1);
    if (anything_queued(p, q))
        kart__pool_wake_node(p, me->node, false);
}

/* Whether a job still has chunks nobody claimed. */
bool kart__pool_has_work(struct kart_future *j, uint32_t g)
{
    for (uint32_t i = 0; i < kart__pool_nranges(j); i++) {
        uint64_t v = atomic_load(&j->ranges[i * KART__POOL_RSTRIDE]);
        if (kart__pool_rg_gen(v) == g && kart__pool_rg_lo(v) < kart__pool_rg_hi(v))
            return true;
    }
    return false;
}

/* A parent thread that must read a job it holds no reference to takes a
 * helper slot, whose busy mark keeps the job's slot (and its buffers)
 * from being recycled meanwhile; it waits for one if all are taken. */
int kart__pool_pin(kart_pool *p)
{
    for (;;) {
        uint32_t used = atomic_load(&p->helpers_used);
        if (used != (1u << KART__POOL_HELPERS) - 1) {
            int h = __builtin_ctz(~used);
            if (atomic_compare_exchange_weak(&p->helpers_used, &used, used | (1u << h)))
                return p->nworkers + h;
        } else {
            sched_yield();
        }
    }
}

void kart__pool_unpin(kart_pool *p, int h)
{
    atomic_store(&p->workers[h].busy, 0);
    atomic_fetch_and(&p->helpers_used, ~(1u << (h - p->nworkers)));
}

/* ---- running ---- */

/* In a worker process: its worker, whose `item` it keeps up to date so
 * that the watcher can name the item it died on. NULL elsewhere. */
kart__pool_worker *kart__pool_self;

static inline size_t chunk_end(const struct kart_future *j, uint32_t c)
{
    size_t first = (size_t)c * j->chunk;
    return first + j->chunk < j->n ? first + j->chunk : j->n;
}

/* A thread or inline pool's one-chunk job (no per-chunk marks, which
 * only process pools keep): whoever claims its chunk is the only one who
 * runs, fails or accounts for it, so its error goes straight to err and
 * no pending count is brought down. A process pool's sweep may race with
 * that claimer (a dead worker's chunk), so its jobs keep both counts. */
static inline bool sole_claimer(const struct kart_future *j)
{
    return j->nchunks == 1 && !j->st;
}

/* Chunk c fails at `item` with err: the first failing chunk (in index
 * order) sets the job's error, and the lowest failing item its index
 * (chunks fail at one item at most, so both name the same chunk). The
 * result bytes of the item and of the rest of its chunk, which did not
 * run, are zeroed: no stale bytes pass for results. */
void kart__pool_fail_at(struct kart_future *j, uint32_t c, size_t item, int err)
{
    uint64_t v = ((uint64_t)c << 32) | (uint32_t)(-err);
    uint64_t cur = atomic_load(&j->fail);
    while (v < cur && !atomic_compare_exchange_weak(&j->fail, &cur, v))
        ;
    /* On the publication line, so that publishing a success reads
     * nothing of the counters' line. */
    if (sole_claimer(j))
        j->err = err;
    cur = atomic_load(&j->fail_item);
    while (item < cur && !atomic_compare_exchange_weak(&j->fail_item, &cur, (uint64_t)item))
        ;
    size_t last = chunk_end(j, c);
    if (j->kind == KJ_ITEMS && j->out_size && item < last)
        memset(j->out + item * j->out_size, 0, (last - item) * j->out_size);
}

/* Chunk c was lost with a dead worker: it fails from the item that
 * worker was running, if that item is in c, else from its start. */
void kart__pool_fail_lost(struct kart_future *j, uint32_t c, int err)
{
    size_t first = (size_t)c * j->chunk;
    uint64_t d = atomic_load(&j->dead_item);
    kart__pool_fail_at(j, c, d >= first && d < chunk_end(j, c) ? (size_t)d : first, err);
}

/* Runs chunk c of job j in this thread (or fails it with -ECANCELED once
 * the pool is terminated), and accounts for it. */
void kart__pool_run_chunk(kart_pool *p, struct kart_future *j, uint32_t c)
{
    if (!atomic_load_explicit(&j->started, memory_order_relaxed))
        atomic_store_explicit(&j->started, 1, memory_order_relaxed);
    size_t first = (size_t)c * j->chunk, last = chunk_end(j, c);
    if (atomic_load_explicit(&p->sh->state, memory_order_relaxed) == KART__POOL_TERMINATED) {
        kart__pool_fail_at(j, c, first, -ECANCELED);
    } else if (j->kind == KJ_PTR) {
        int rc = j->pfn(j->parg, &j->pres);
        if (rc)
            kart__pool_fail_at(j, c, 0, rc);
    } else {
        /* In locals: the calls below could write anywhere, as far as the
         * compiler knows, so fields would be loaded again per item. */
        kart_task_fn fn = j->fn;
        /* A worker of a spawn or forkserver pool runs its own copy of a
         * registered task; an address it cannot map fails the chunk. */
        if (__builtin_expect(p->fnmap != NULL, 0) && !(fn = p->hooks->local_fn(p, fn)))
            kart__pool_fail_at(j, c, first, -ENOENT);
        size_t stop = fn ? last : first;
        size_t in_size = j->in_size, out_size = j->out_size;
        const char *in = j->in + first * in_size;
        char *out = j->out + first * out_size;
        size_t len = out_size;
        kart__pool_worker *self = kart__pool_self;
        for (size_t i = first; i < stop; i++, in += in_size, out += out_size) {
            len = out_size;
            if (self)
                atomic_store_explicit(&self->item, i, memory_order_relaxed);
            int rc = fn(in, in_size, out, &len);
            if (__builtin_expect(rc == 0 && len > out_size, 0))
                rc = -EMSGSIZE;
            if (__builtin_expect(rc != 0, 0)) {
                kart__pool_fail_at(j, c, i, rc);
                len = 0;
                break;
            }
        }
        if (j->kind == KJ_BYTES)
            j->res_len = len;
    }
    /* A one-chunk map has one runner (whoever claimed its chunk): a plain
     * store, not a locked add. A map's chunks are counted by
     * kart__pool_job_work (count_items), every 8 chunks and at the end of
     * each claim. Submitted tasks have no progress to count. */
    if (j->nchunks == 1 && j->kind == KJ_ITEMS)
        atomic_store_explicit(&j->items_done, last - first, memory_order_relaxed);
    if (j->st)
        atomic_store_explicit(&j->st[c], 1, memory_order_release);
}

/* Takes [*c, *c + *k) from the front of a range: an eighth of what it
 * holds, at least 1 and at most `most`. */
static bool take_front(_Atomic uint64_t *r, uint32_t g, uint32_t most, uint32_t *c, uint32_t *k)
{
    uint64_t v = atomic_load_explicit(r, memory_order_relaxed);
    for (;;) {
        uint32_t lo = kart__pool_rg_lo(v), hi = kart__pool_rg_hi(v);
        if (kart__pool_rg_gen(v) != g || lo >= hi)
            return false;
        uint32_t n = (hi - lo) / 8;
        n = n < 1 ? 1 : n > most ? most : n;
        if (atomic_compare_exchange_weak(r, &v, kart__pool_rg(g, lo + n, hi))) {
            *c = lo;
            *k = n;
            return true;
        }
    }
}

/* Takes the back half (at least one chunk) of a victim's range. */
static bool steal_half(_Atomic uint64_t *r, uint32_t g, uint32_t *lo_out, uint32_t *hi_out)
{
    uint64_t v = atomic_load_explicit(r, memory_order_relaxed);
    for (;;) {
        uint32_t lo = kart__pool_rg_lo(v), hi = kart__pool_rg_hi(v);
        if (kart__pool_rg_gen(v) != g || lo >= hi)
            return false;
        uint32_t mid = hi - (hi - lo + 1) / 2;
        if (atomic_compare_exchange_weak(r, &v, kart__pool_rg(g, lo, mid))) {
            *lo_out = mid;
            *hi_out = hi;
            return true;
        }
    }
}

/* Adds a map's finished items to its progress count (a one-chunk job's
 * runner stores it in kart__pool_run_chunk instead): a worker with a range
 * of its own into the word beside it, which no one else writes (a load
 * and a store); others with a locked add on the job's count. That count
 * alone, added to by every worker every 8 chunks, kept its line moving
 * between them: 78% of kart__pool_job_work's samples at chunk 1. */
static void count_items(struct kart_future *j, _Atomic uint64_t *mine, uint64_t items)
{
    if (!items || j->nchunks == 1)
        return;
    if (mine)
        atomic_store_explicit(mine, atomic_load_explicit(mine, memory_order_relaxed) + items,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&j->items_done, items, memory_order_relaxed);
}

/* Accounts `done` chunks holding `items` items (the progress count
 * first, so that it is whole when the job finishes); the call that
 * brings pending to 0 finishes the job. */
static void account(kart_pool *p, struct kart_future *j, _Atomic uint64_t *mine, uint32_t done,
                    uint64_t items)
{
    count_items(j, mine, items);
    if (done && (sole_claimer(j) || atomic_fetch_sub(&j->pending, done) == done))
        kart__pool_finish(p, j);
}

/* Claims and runs chunks of job `ref` as worker w (-1: the caller of an
 * inline pool, or a helper without a range of its own). Returns 1 if it
 * ran a chunk, 0 if the job had nothing left to claim. */
int kart__pool_job_work(kart_pool *p, struct kart_future *j, uint64_t ref, int w)
{
    kart__pool_worker *me = w >= 0 ? &p->workers[w] : NULL;
    if (me && me == kart__pool_self) /* no item of this job begun yet */
        atomic_store_explicit(&me->item, UINT64_MAX, memory_order_relaxed);
    if (me)
        atomic_store(&me->busy, KART__POOL_BUSY | ref);
    uint32_t g = (uint32_t)ref & 0xffff;
    uint32_t done = 0, ran = 0;
    uint64_t items = 0; /* in the `done` chunks */
    if ((atomic_load(&j->gen) & 0xffff) != g)
        goto out;
    uint32_t nr = kart__pool_nranges(j);
    _Atomic uint64_t *rs = j->ranges;
    bool worker = w >= 0 && w < p->nworkers; /* else a helper or the caller */
    bool own_range = worker && nr > 1 && (int)nr == p->nworkers;
    _Atomic uint64_t *own = own_range ? &rs[(uint32_t)w * KART__POOL_RSTRIDE] : &rs[0];
    _Atomic uint64_t *mine = own_range ? own + KART__POOL_RDONE : NULL;
    uint64_t limit = worker && p->max_tasks ? (uint64_t)p->max_tasks : UINT64_MAX;
    for (;;) {
        uint32_t c, k, lo, hi;
        uint64_t ran_here = worker ? atomic_load_explicit(&me->tasks, memory_order_relaxed) : 0;
        if (ran_here >= limit)
            break;
        /* From its own range a worker takes an eighth of what is left (up
         * to 64 chunks) in one compare-and-swap: thieves still find the
         * rest, and a long range costs few atomic operations. */
        uint64_t most = own_range ? 64 : 1;
        if (limit - ran_here < most)
            most = limit - ran_here;
        if (!take_front(own, g, (uint32_t)most, &c, &k)) {
            account(p, j, mine, done, items);
            done = 0;
            items = 0;
            bool got = false;
            if (own_range) {
                for (int i = 0; i < p->nworkers - 1 && !got; i++) {
                    int v = me->victims[i];
                    got = steal_half(&rs[(uint32_t)v * KART__POOL_RSTRIDE], g, &lo, &hi);
                }
                if (!got)
                    break;
                /* Our range is empty, so no thief can touch it: store the
                 * rest of the loot there. */
                if (hi - lo > 1)
                    atomic_store(own, kart__pool_rg(g, lo + 1, hi));
                c = lo;
            } else {
                for (uint32_t i = 1; i < nr && !got; i++)
                    got = take_front(&rs[i * KART__POOL_RSTRIDE], g, 1, &c, &k);
                if (!got)
                    break;
            }
            k = 1;
        }
        if (me)
            spin_stop(p, me);
        for (uint32_t i = 0; i < k; i++) {
            kart__pool_run_chunk(p, j, c + i);
            items += chunk_end(j, c + i) - (size_t)(c + i) * j->chunk;
            /* progress every 8 chunks, not only per claim (up to 64) */
            if ((i & 7) == 7) {
                count_items(j, mine, items);
                items = 0;
            }
        }
        done += k;
        ran += k;
        if (worker)
            atomic_store_explicit(&me->tasks, ran_here + k, memory_order_relaxed);
    }
    account(p, j, mine, done, items);
out:
    if (me) {
        atomic_store(&me->busy, 0);
        if (p->hooks && atomic_load(&j->dead_seen))
            p->hooks->dead_seen(p);
    }
    return ran > 0;
}

/* One look at the queues, own node first, then by distance. A map at
 * the head of a ring is joined where it stands (every worker may claim
 * its chunks; the head moves past it once nothing is left to claim).
 * Single tasks at the head are taken in a batch, by moving the head past
 * them in one compare-and-swap (up to 16, and no more than a fair share
 * of what is queued), and then claimed one by one: a busy queue costs
 * workers one contended operation per batch, not one per task. Returns
 * whether it ran anything; *saw_queued (if not NULL) is set when it found
 * entries queued, whether or not anything was left to claim in them. */
bool kart__pool_work_once(kart_pool *p, int w, int node, bool *saw_queued)
{
    kart__pool_node *home = &p->nodes[node];
    int fair = 2 * (p->nworkers > 0 ? p->nworkers : 1);
    for (int oi = 0; oi < home->norder; oi++) {
        kart__pool_node *q = &p->nodes[home->order[oi]];
        for (;;) {
            uint64_t h = atomic_load(&q->head);
            KART__FAULT_POINT(pool_look_head_read);
            uint64_t t = kart__pool_tail(q);
            if (h >= t)
                break;
            if (saw_queued)
                *saw_queued = true;
            uint64_t refs[16];
            /* Reserved, so written soon (pool_ring.c): sleeping now could
             * miss it, since its submitter may have read the counts. */
            refs[0] = kart__pool_wait_entry(q, h);
            if (refs[0] == KART__POOL_UNWRITTEN) /* h was stale */
                continue;
            if (refs[0] == KART__POOL_HOLE) {
                atomic_compare_exchange_strong(&q->head, &h, h + 1);
                continue;
            }
            struct kart_future *j = kart__pool_slot_of(p, refs[0]);
            if (kart__pool_nranges(j) > 1) {
                /* Maps are the workers': a helper (a waiting thread) would
                 * oversubscribe the CPUs the pool was sized for, and has
                 * no range of its own to take from. */
                if (w >= p->nworkers)
                    break;
                if (kart__pool_job_work(p, j, refs[0], w))
                    return true;
                /* A worker at its task limit claims nothing: it must not
                 * take the map off the ring for the others. */
                if (w >= 0 && w < p->nworkers && p->max_tasks &&
                    atomic_load(&p->workers[w].tasks) >= (uint64_t)p->max_tasks)
                    return false;
                atomic_compare_exchange_strong(&q->head, &h, h + 1);
                continue;
            }
            uint64_t lim = (t - h) / (uint64_t)fair, k = 1;
            lim = lim < 1 ? 1 : lim > 16 ? 16 : lim;
            /* A worker near its task limit takes no more than it may run. */
            if (w >= 0 && w < p->nworkers && p->max_tasks) {
                uint64_t ran = atomic_load(&p->workers[w].tasks);
                if (ran >= (uint64_t)p->max_tasks)
                    return false;
                if (lim > (uint64_t)p->max_tasks - ran)
                    lim = (uint64_t)p->max_tasks - ran;
            }
            while (k < lim) {
                refs[k] = kart__pool_entry(q, h + k);
                if (refs[k] == KART__POOL_UNWRITTEN || refs[k] == KART__POOL_HOLE ||
                    kart__pool_nranges(kart__pool_slot_of(p, refs[k])) > 1)
                    break;
                k++;
            }
            kart__pool_worker *me =
                w >= 0 && w < p->nworkers && p->kind == KART_POOL_PROCESSES ? &p->workers[w] : NULL;
            if (me) {
                for (uint64_t i = 0; i < k; i++)
                    atomic_store_explicit(&me->batch[i], refs[i], memory_order_relaxed);
                atomic_store(&me->nbatch, (uint32_t)k);
            }
            /* While the head is still h, no entry in [h, h + k) can have
             * been overwritten (a push needs tail - head < ring size). */
            if (!atomic_compare_exchange_strong(&q->head, &h, h + k))
                continue;
            /* More is queued than this batch: pass the wake-up on, since
             * one wake-up in flight per node is all submitters send. Not
             * only to this node's sleepers: when this worker was its
             * node's only one, the second submit's wake-up was swallowed
             * by the first's, and a sleeper of the next node must steal. */
            if (t > h + k) {
                if (w >= 0)
                    spin_stop(p, &p->workers[w]); /* else its own count stops the wake-up */
                kart__pool_wake_node(p, home->order[oi], false);
            }
            bool ran = false;
            for (uint64_t i = 0; i < k; i++)
                ran |= kart__pool_job_work(p, kart__pool_slot_of(p, refs[i]), refs[i], w) > 0;
            if (me)
                atomic_store(&me->nbatch, 0);
            if (ran)
                return true;
        }
    }
    return false;
}

/* ---- the worker loop ---- */

/* How long an idle worker polls the queues before it sleeps, in pauses
 * (some tens of microseconds, a yield every KART__POOL_YIELD_PAUSES), so
 * that a stream of submits or the next map finds it awake (libgomp's
 * threads spin before sleeping too). Its looks come 32 pauses apart, and
 * each look that finds entries queued but nothing left in them to claim
 * doubles the gap, up to 256: a submitter that runs its own tasks as it
 * waits for them (one at a time, with help) claims each before the
 * worker, and every look reads the lines it writes (the ring's head and
 * tail, the entry, its slot), which it must then fetch back. Submitter on
 * one CPU and worker on another, a driver's task took 180 ns with looks
 * 32 pauses apart, 134 at 64, 110 at 128, 99 at 256, 92 at 512 (both on
 * one CPU: 90); oneTBB's took 123, its thieves backing off too. Looks
 * that find the queues empty, or work, keep the gap at 32: a worker that
 * takes every task (no_help, loop futures) picks the next up as quickly
 * as before (doubling on empty looks too cost a no_help task on one CPU
 * 8.4 us instead of 5.1, the worker looking 256 pauses apart). */
#define KART__POOL_IDLE_PAUSES 9600
#define KART__POOL_YIELD_PAUSES 256
#define KART__POOL_LOOK_FIRST 32
#define KART__POOL_LOOK_MOST 256

/* At most half of a node's workers (rounded up) spin idle; the others
 * sleep at once. One spinner is enough to catch a stream of submits (it
 * wakes the others when more is queued than it takes), and every
 * further one only takes a CPU from the threads that do work: a caller
 * that runs its own tasks while it waits (help) needs its CPU back, as
 * oneTBB's arena counts the waiting thread in its slots. Go's scheduler
 * keeps at most half of its busy processors spinning for the same
 * reason. Thread pools only: a process worker killed while counted
 * would leave the count high forever, and submits would wake nobody. */
static void spin_join(kart_pool *p, kart__pool_worker *me)
{
    if (p->kind != KART_POOL_THREADS)
        return;
    kart__pool_node *q = &p->nodes[me->node];
    uint32_t cap = ((uint32_t)q->nworkers + 1) / 2, n = atomic_load(&q->spinners);
    do
        if (n >= cap)
            return;
    while (!atomic_compare_exchange_weak(&q->spinners, &n, n + 1));
    me->spinning = true;
}

/* Runs work until the pool is closed and drained or terminated, or until
 * this worker has run max_tasks_per_child chunks: the loop of thread
 * workers (pool.c) and of process workers (pool_proc.c). */
void kart__pool_worker_loop(kart_pool *p, int w)
{
    kart__pool_worker *me = &p->workers[w];
    kart__pool_node *q = &p->nodes[me->node];
    /* A worker that has neither run anything nor slept yet (just
     * started, the queues empty) sleeps at once: polling then would only
     * burn a few hundred microseconds of CPU per worker at every pool's
     * creation, with nothing submitted to find. */
    bool fresh = true;
    for (;;) {
        if (kart__pool_retiring(p, me))
            return;
        if (kart__pool_work_once(p, w, me->node, NULL)) {
            fresh = false;
            continue;
        }
        /* A thread worker over its node's spinning cap sleeps at once;
         * a spinner stops counting itself as soon as it claims work
         * (spin_stop), so a caller that runs its own tasks (or a task
         * that ends before a worker claims it) leaves the count as it is
         * and its submits wake nobody. */
        bool found = false;
        if (!fresh) {
            spin_join(p, me);
            uint32_t gap = KART__POOL_LOOK_FIRST, unyielded = 0;
            for (uint32_t spent = 0; spent < KART__POOL_IDLE_PAUSES && !found &&
                                     (me->spinning || p->kind != KART_POOL_THREADS);
                 spent += gap) {
                for (uint32_t k = 0; k < gap; k++)
                    kart__cpu_relax();
                if ((unyielded += gap) >= KART__POOL_YIELD_PAUSES) {
                    sched_yield();
                    unyielded = 0;
                }
                bool saw = false;
                found = kart__pool_work_once(p, w, me->node, &saw);
                if (saw && gap < KART__POOL_LOOK_MOST)
                    gap *= 2;
            }
            spin_stop(p, me);
        }
        if (found)
            continue;
        KART__FAULT_POINT(pool_worker_leaving);
        uint32_t state = atomic_load(&p->sh->state);
        /* Closed: one more look before leaving. The look above may have
         * come before a submit that still saw the pool running (it
         * reserved its ring position before it read the state, and
         * set_state stores the state before it reads the tail:
         * pool_ring.c), and a task left queued with every worker gone
         * would never run. The state seen closed, every such reservation
         * is seen now, and the look waits for its entry. */
        if (state == KART__POOL_CLOSED && kart__pool_work_once(p, w, me->node, NULL))
            continue;
        if (state != KART__POOL_RUNNING)
            return; /* closed and nothing left, or terminated */
        uint32_t seq = atomic_load(&q->seq);
        atomic_fetch_add(&q->sleepers, 1);
        atomic_store_explicit(&me->asleep, 1, memory_order_relaxed);
        /* `waking` (one wake-up in flight) is cleared by the worker a
         * wake-up reaches, but a submitter that saw this worker among the
         * sleepers just before it woke can set it after the clear, waking
         * nobody. Left set while everyone sleeps, it would stop every
         * later submit from waking anyone. So a worker about to sleep
         * clears it too, before its last look at the queues: a submit
         * after that look sees it clear and wakes us. */
        atomic_store(&q->waking, 0);
        /* A return with the eventcount unchanged is spurious (EINTR, or
         * the parking-lot fallback, whose waits between processes end
         * every millisecond): nobody woke us, so sleep again, still
         * counted. Leaving the count for a round of spinning would burn
         * CPU and make the count flicker for every submitter reading it. */
        if (!kart__pool_work_once(p, w, me->node, NULL))
            while (atomic_load(&q->seq) == seq && atomic_load(&p->sh->state) == KART__POOL_RUNNING)
                kart__futex_wait(&q->seq, seq, -1, p->shared);
        atomic_store_explicit(&me->asleep, 0, memory_order_relaxed);
        atomic_fetch_sub(&q->sleepers, 1);
        atomic_store(&q->waking, 0);
        fresh = false;
    }
}

/* Process pools, after a death: the dead worker may have taken ring
 * entries it never claimed. Those of its last batch whose jobs still have
 * chunks left go into their rings again (a second entry for a job is
 * harmless: entries are hints, claims go through the ranges). */
void kart__pool_repush_worker(kart_pool *p, int w)
{
    kart__pool_worker *dead = &p->workers[w];
    uint32_t n = atomic_load(&dead->nbatch);
    int h = kart__pool_pin(p);
    for (uint32_t i = 0; i < n && i < 16; i++) {
        uint64_t ref = atomic_load(&dead->batch[i]);
        struct kart_future *j = kart__pool_slot_of(p, ref);
        atomic_store(&p->workers[h].busy, KART__POOL_BUSY | ref);
        uint32_t g = (uint32_t)ref & 0xffff;
        KART__TSAN_ACQUIRE(j); /* set up before its push, as the dead worker saw */
        if ((atomic_load(&j->gen) & 0xffff) != g || !kart__pool_has_work(j, g))
            continue;
        int node = (int)j->node;
        kart__pool_push_ref(p, &p->nodes[node], ref);
        kart__pool_wake_node(p, node, true);
    }
    kart__pool_unpin(p, h);
    atomic_store(&dead->nbatch, 0);
}

/* The references of every job pushed and not yet published, noted under
 * the slot lock (which orders them after the setup of their jobs). The
 * caller frees *out. Returns how many, 0 when out of memory. */
uint32_t kart__pool_collect_pushed(kart_pool *p, uint64_t **out)
{
    kart__pool_lock_take(&p->slot_lock);
    uint32_t n = p->bump, k = 0;
    uint64_t *refs = malloc((size_t)(n ? n : 1) * sizeof(uint64_t));
    for (uint32_t s = 0; refs && s < n; s++) {
        struct kart_future *j = &p->jobs[s];
        if (atomic_load_explicit(&j->pushed, memory_order_acquire) &&
            atomic_load(&j->state) == KS_QUEUED)
            refs[k++] = kart__pool_ref(s, atomic_load(&j->gen));
    }
    kart__pool_lock_give(&p->slot_lock);
    *out = refs;
    return k;
}

/* ---- finishing ---- */

void kart__pool_finish(kart_pool *p, struct kart_future *j)
{
    const kart__pool_hooks *h = p->hooks;
    if (!h) {
        kart__pool_publish(p, j);
        return;
    }
    /* Only pools with hooks (process pools) finish other than by the
     * pending count reaching zero (which happens once): the sweep may race
     * with it. */
    uint32_t z = 0;
    if (!atomic_compare_exchange_strong(&j->finished, &z, 1))
        return;
    h->finished(p, j);
}

/* Publishes j: everything but dropping the pool's reference. */
static void publish_held(struct kart_future *j)
{
    KART__TSAN_ACQUIRE(j);
    /* A sole claimer's error, if any, is in err already
     * (kart__pool_fail_at); only a map's progress is counted. */
    if (!sole_claimer(j)) {
        uint64_t f = atomic_load(&j->fail);
        j->err = f == UINT64_MAX ? 0 : -(int)(uint32_t)f;
    }
    if (j->kind == KJ_ITEMS)
        atomic_store_explicit(&j->items_done, j->n, memory_order_relaxed);
    if (j->copy_out && j->n && j->out_size)
        memcpy(j->copy_out, j->out, j->n * j->out_size);
    void (*notify)(void *) = j->notify;
    void *notify_arg = notify ? j->notify_arg : NULL; /* its line is the parent's */
    /* A release store: the exchange below orders it before the look at
     * the waiting bit (a waiter sets the bit, then sleeps while the state
     * is still queued). */
    atomic_store_explicit(&j->state, KS_DONE, memory_order_release);
    kart__pool_cb *list = NULL, *stack = atomic_exchange(&j->cbs, KART__POOL_FIRED);
    if ((uintptr_t)stack & KART__POOL_WAITING)
        kart__futex_wake(&j->state, INT32_MAX, false);
    stack = kart__pool_cb_list(stack);
    while (stack) { /* newest first: reverse into the order of adding */
        kart__pool_cb *n = stack->next;
        stack->next = list;
        list = stack;
        stack = n;
    }
    while (list) {
        kart__pool_cb *n = list->next;
        if (!list->on_error_only || j->err)
            list->cb(j, list->arg);
        free(list);
        list = n;
    }
    if (notify)
        notify(notify_arg);
}

void kart__pool_publish(kart_pool *p, struct kart_future *j)
{
    publish_held(j);
    kart__pool_job_unref(p, j);
}

/* Claims every chunk nobody has, failing each with err; returns how many.
 * The caller is no worker, so it holds no range of its own. */
static uint32_t claim_rest(struct kart_future *j, uint32_t g, int err)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < kart__pool_nranges(j); i++) {
        _Atomic uint64_t *r = &j->ranges[i * KART__POOL_RSTRIDE];
        uint64_t v = atomic_load(r);
        for (;;) {
            uint32_t lo = kart__pool_rg_lo(v), hi = kart__pool_rg_hi(v);
            if (kart__pool_rg_gen(v) != g || lo >= hi)
                break;
            if (!atomic_compare_exchange_weak(r, &v, kart__pool_rg(g, hi, hi)))
                continue;
            for (uint32_t c = lo; c < hi; c++) {
                kart__pool_fail_at(j, c, (size_t)c * j->chunk, err);
                if (j->st)
                    atomic_store_explicit(&j->st[c], 1, memory_order_release);
            }
            count += hi - lo;
            break;
        }
    }
    return count;
}

void kart__pool_cancel_rest(kart_pool *p, struct kart_future *j, uint32_t g, int err)
{
    uint32_t n = claim_rest(j, g & 0xffff, err);
    if (n && err == -ECANCELED)
        atomic_store(&j->cancelled, 1);
    account(p, j, NULL, n, 0); /* failed, not run: no progress */
}

/* Whether a live worker's busy mark is KART__POOL_BUSY | ref (a worker marks the
 * job before it claims anything and clears the mark after its last
 * accounting). */
bool kart__pool_live_worker_busy_on(kart_pool *p, uint64_t ref)
{
    for (int w = 0; w < p->nworkers; w++)
        if (atomic_load(&p->workers[w].alive) &&
            atomic_load(&p->workers[w].busy) == (KART__POOL_BUSY | ref))
            return true;
    return false;
}

/* Process pools, after a death: once every chunk is claimed and no live
 * worker is busy on the job, the chunks not marked done were lost with
 * dead workers. */
void kart__pool_sweep_check(kart_pool *p, struct kart_future *j)
{
    if (atomic_load(&j->finished))
        return;
    uint32_t g = atomic_load(&j->gen) & 0xffff;
    if (kart__pool_has_work(j, g))
        return;
    if (kart__pool_live_worker_busy_on(p, kart__pool_ref(j->slot, g)))
        return;
    int err = atomic_load(&p->sh->state) == KART__POOL_TERMINATED ? -ECANCELED : KART_EWORKERDIED;
    for (uint32_t c = 0; c < j->nchunks; c++)
        if (!atomic_load_explicit(&j->st[c], memory_order_acquire)) {
            kart__pool_fail_lost(j, c, err);
            atomic_store(&j->st[c], 1);
        }
    kart__pool_finish(p, j);
}

/* ---- waiting ---- */

/* A thread waiting on a future of a thread pool runs queued tasks while
 * it waits, in one of the helper slots (which carry the busy marks that
 * keep the slots it claims from being recycled under it). */
static void help_queued(kart_pool *p, struct kart_future *f, int64_t deadline)
{
    uint32_t used = atomic_load(&p->helpers_used);
    int h;
    do {
        if (used == (1u << KART__POOL_HELPERS) - 1)
            return;
        h = __builtin_ctz(~used);
    } while (!atomic_compare_exchange_weak(&p->helpers_used, &used, used | (1u << h)));
    int w = p->nworkers + h, node = kart__pool_caller_node(p);
    while (atomic_load_explicit(&f->state, memory_order_acquire) != KS_DONE &&
           (deadline < 0 || kart_now_ns() < deadline) && kart__pool_work_once(p, w, node, NULL))
        ;
    atomic_fetch_and(&p->helpers_used, ~(1u << h));
}

/* A thread waiting on a one-chunk job (a submitted task) of a thread pool
 * claims it itself, straight from the job's range, before anything else
 * (maps stay the workers', as in help_queued): what
 * help_queued would reach through the ring, a helper slot and a busy
 * mark, in one compare-and-swap. No busy mark is needed: the
 * waiter holds a reference to f, so its slot cannot be recycled under it.
 * A task submitted and then waited for (the one-at-a-time case) runs
 * here unless a worker took it first; its ring entry, if still at the
 * head, is stepped past, so that the ring does not fill with spent
 * entries while the workers sleep. */
static void run_own(kart_pool *p, struct kart_future *f)
{
    uint32_t g = atomic_load_explicit(&f->gen, memory_order_relaxed) & 0xffff, c, k;
    if (!take_front(f->ranges, g, 1, &c, &k))
        return;
    kart__pool_run_chunk(p, f, c);
    kart__pool_node *q = &p->nodes[f->node];
    uint64_t ref = kart__pool_ref(f->slot, g), h = atomic_load(&q->head);
    /* While the head is still h, its entry was not overwritten (see
     * kart__pool_work_once): a stale read makes the exchange fail. */
    if (h < kart__pool_tail(q) && kart__pool_entry_is(q, h, ref))
        atomic_compare_exchange_strong(&q->head, &h, h + 1);
    /* The only chunk was ours to claim, so no one else accounts for it
     * (a cancel claims nothing now): a store, not a locked subtraction. */
    atomic_store_explicit(&f->pending, 0, memory_order_relaxed);
    /* A thread pool has no hooks: finishing is publishing, here. The
     * pool's reference is dropped with a store: the only other holder is
     * this waiter, who cannot drop its own meanwhile. */
    publish_held(f);
    atomic_store_explicit(&f->refs, 1, memory_order_release);
}

int kart__pool_wait_state(struct kart_future *f, int64_t deadline)
{
    if (atomic_load_explicit(&f->state, memory_order_acquire) == KS_DONE)
        return 0;
    /* As help_queued, nothing is run once the deadline has passed: a poll
     * (timeout 0) only looks. */
    if (f->pool && f->pool->help && deadline != 0 && f->nchunks == 1 &&
        kart__pool_nranges(f) == 1 && (deadline < 0 || kart_now_ns() < deadline)) {
        run_own(f->pool, f);
        if (atomic_load_explicit(&f->state, memory_order_acquire) == KS_DONE)
            return 0;
    }
    if (f->pool && f->pool->help && deadline != 0)
        help_queued(f->pool, f, deadline);
    for (kart__spin sp = {0, 0}; kart__spin_next(&sp);)
        if (atomic_load_explicit(&f->state, memory_order_acquire) == KS_DONE)
            return 0;
    for (;;) {
        /* The waiting bit, unless published (FIRED): the publisher's
         * exchange then sees it and wakes us. */
        kart__pool_cb *w = atomic_load(&f->cbs);
        while (w != KART__POOL_FIRED && !((uintptr_t)w & KART__POOL_WAITING) &&
               !atomic_compare_exchange_weak(&f->cbs, &w,
                                             (kart__pool_cb *)((uintptr_t)w | KART__POOL_WAITING)))
            ;
        if (atomic_load(&f->state) == KS_DONE)
            return 0;
        int rc = kart__futex_wait(&f->state, KS_QUEUED, deadline, false);
        if (atomic_load(&f->state) == KS_DONE)
            return 0;
        if (rc == -ETIMEDOUT)
            return -ETIMEDOUT;
    }
}

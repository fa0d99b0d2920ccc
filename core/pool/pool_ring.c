/*
 * core/pool/pool_ring.c — a node's ring of job references: how
 * submitters append to it without a lock, how workers read it, and how a
 * full ring makes room (see pool_job.h for where the ring sits).
 *
 * Appending is two steps: a submitter reserves positions with one
 * compare-and-swap on the tail (kart__pool_reserve), then writes each
 * entry (kart__pool_put). Between the two, readers who see the tail past
 * a position whose entry is not written yet wait for it
 * (kart__pool_wait_entry): an entry carries a tag of its lap around the
 * ring, so a cell still holding the previous lap's entry reads as
 * unwritten. A reservation whose submitter then finds the pool closed is
 * written as a hole, which readers step past.
 *
 * Why a reservation and not the node's lock (until 2026-12-08 a push
 * took the lock, stored the entry and stored the tail with a sequentially
 * consistent exchange: two locked instructions): the compare-and-swap is
 * the one locked instruction of a push, and it is also the fence that
 * orders the new tail before the submitter's reading of the sleeping and
 * spinning counts (kart__pool_wake_node), against a worker that counts
 * itself and then reads the tail. A worker that sees the tail moved waits
 * for the entry rather than sleeping, so the entry itself may be written
 * after the counts are read. Against a close: a submitter reads the
 * pool's state after its reservation, and set_state, after storing the
 * state, waits for every entry reserved before (kart__pool_ring_settle),
 * so that a submit either sees the close and pushes nothing, or is seen
 * by it with its entry in place (and `pushed` set, for cancel_queued).
 *
 * A full ring: entries of jobs nobody stepped past yet (claimed by their
 * waiters, or cancelled) behind a job that still has work. Ring size is
 * twice max_jobs, so at least half are spent. The submitter takes the
 * node's push lock and sets KART__POOL_ROTATING in the tail word, which
 * stops every other reservation (they wait for the lock); it then takes
 * entries off the head, appending again those whose jobs still have work,
 * until there is room, and clears the flag with its own reservation.
 */
#include "pool_job.h"

#include <sched.h>

/* ---- entries: the lap tag above the reference ---- */

uint64_t kart__pool_entry(const kart__pool_node *q, uint64_t pos)
{
    uint64_t e = atomic_load_explicit(&((kart__pool_node *)q)->ring[pos & q->ring_mask],
                                      memory_order_acquire);
    if ((e & ~KART__POOL_REF_MASK) != kart__pool_tag(q, pos))
        return KART__POOL_UNWRITTEN;
    return e & KART__POOL_REF_MASK;
}

bool kart__pool_entry_is(const kart__pool_node *q, uint64_t pos, uint64_t ref)
{
    return atomic_load_explicit(&((kart__pool_node *)q)->ring[pos & q->ring_mask],
                                memory_order_relaxed) == (kart__pool_tag(q, pos) | ref);
}

/* A submitter between its reservation and its write is a few
 * instructions away, unless it was preempted: kart__spin's back-off,
 * then yields (as the pools' lock waits). A
 * reader's position may also be stale (it read the head, then was
 * preempted while the ring went round): once the head is past it, the
 * cell may hold a later lap's entry, and the reader must look again. */
uint64_t kart__pool_wait_entry(const kart__pool_node *q, uint64_t pos)
{
    for (kart__spin sp = {0, 0};;) {
        uint64_t ref = kart__pool_entry(q, pos);
        if (ref != KART__POOL_UNWRITTEN)
            return ref;
        if (atomic_load(&((kart__pool_node *)q)->head) > pos)
            return KART__POOL_UNWRITTEN;
        if (!kart__spin_next(&sp))
            sched_yield();
    }
}

/* ---- appending ---- */

/* The ring is full; under the push lock, with the tail flagged: takes the
 * head entry off, and appends it again if its job still has work. */
static uint64_t rotate_one(kart_pool *p, kart__pool_node *q, uint64_t t)
{
    uint64_t h = atomic_load(&q->head);
    uint64_t old = kart__pool_wait_entry(q, h);
    if (old == KART__POOL_UNWRITTEN || !atomic_compare_exchange_strong(&q->head, &h, h + 1))
        return t; /* a worker took it: there is room now */
    if (old == KART__POOL_HOLE)
        return t;
    struct kart_future *oj = kart__pool_slot_of(p, old);
    int pin = kart__pool_pin(p);
    atomic_store(&p->workers[pin].busy, KART__POOL_BUSY | old);
    uint32_t g = (uint32_t)old & 0xffff;
    bool live = (atomic_load(&oj->gen) & 0xffff) == g && kart__pool_has_work(oj, g);
    kart__pool_unpin(p, pin);
    if (live) {
        kart__pool_put(q, t, old);
        atomic_store(&q->tail, ++t | KART__POOL_ROTATING);
    }
    return t;
}

uint64_t kart__pool_reserve_full(kart_pool *p, kart__pool_node *q, uint64_t n)
{
    kart__pool_lock_take(&p->push[q - p->nodes].lock);
    uint64_t t = atomic_load(&q->tail);
    /* Lock-free reservations may still move the tail until it is flagged. */
    while (!atomic_compare_exchange_weak(&q->tail, &t, t | KART__POOL_ROTATING))
        ;
    while (t + n - atomic_load(&q->head) > q->ring_mask + 1)
        t = rotate_one(p, q, t);
    /* Clears the flag and reserves ours: sequentially consistent, as the
     * compare-and-swap of the quick path. */
    atomic_store(&q->tail, t + n);
    kart__pool_lock_give(&p->push[q - p->nodes].lock);
    return t;
}

void kart__pool_push_ref(kart_pool *p, kart__pool_node *q, uint64_t ref)
{
    kart__pool_put(q, kart__pool_reserve(p, q, 1), ref);
}

/* Waits until every position reserved so far is written, or stepped past
 * (then it was written: readers wait for an entry before they step),
 * which is what kart__pool_wait_entry waits for at each. */
void kart__pool_ring_settle(kart__pool_node *q)
{
    uint64_t t = kart__pool_tail(q);
    for (uint64_t pos = atomic_load(&q->head); pos < t; pos++)
        kart__pool_wait_entry(q, pos);
}

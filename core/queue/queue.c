/*
 * core/queue.c — Queue, SimpleQueue and JoinableQueue of kart/queue.h: a
 * byte ring of length-prefixed messages in shared memory, producers and
 * consumers each behind their own robust lock, every change committed by
 * one atomic store. core/queue_private.h explains the layout and why.
 */
#include "deadline.h"
#include "fault.h"
#include "queue_private.h"
#include "robust_mutex.h"

#include <kart/process.h>
#include <limits.h>
#include <string.h>

/* ---- positions: (count << 32) | offset ---- */

static inline uint32_t seq_of(uint64_t w)
{
    return (uint32_t)(w >> 32);
}

static inline uint32_t off_of(uint64_t w)
{
    return (uint32_t)w;
}

static inline uint64_t pos(uint32_t seq, uint32_t off)
{
    return (uint64_t)seq << 32 | off;
}

/* Ring bytes a message of len bytes takes (len <= cap - HDR checked). */
static inline uint32_t msg_size(size_t len)
{
    return (uint32_t)((KART__QUEUE_HDR + len + 7) & ~(size_t)7);
}

/* Bytes in use between head h and tail t; equal offsets are empty when
 * the counts agree and full when they do not. */
static inline uint32_t used(const kart_queue *q, uint64_t t, uint64_t h)
{
    if (seq_of(t) == seq_of(h))
        return 0;
    uint32_t u = off_of(t) >= off_of(h) ? off_of(t) - off_of(h) : q->cap - off_of(h) + off_of(t);
    return u ? u : q->cap;
}

static inline uint32_t advance(const kart_queue *q, uint32_t off, size_t n)
{
    size_t o = off + n;
    return (uint32_t)(o >= q->cap ? o - q->cap : o);
}

/* n may be 0 with a NULL pointer (an empty message): memcpy may not see it. */
static void ring_write(kart_queue *q, uint32_t off, const void *src, size_t n)
{
    if (!n)
        return;
    size_t first = q->cap - off < n ? q->cap - off : n;
    memcpy(q->ring + off, src, first);
    if (n > first)
        memcpy(q->ring, (const char *)src + first, n - first);
}

static void ring_read(const kart_queue *q, uint32_t off, void *dst, size_t n)
{
    if (!n)
        return;
    size_t first = q->cap - off < n ? q->cap - off : n;
    memcpy(dst, q->ring + off, first);
    if (n > first)
        memcpy((char *)dst + first, q->ring, n - first);
}

/* ---- waking and waiting ---- */

/* After a commit: wakes the sleepers announced in flag, bumping the word
 * they sleep on when bump is set (dones, the join word, moves by itself). */
static void wake(_Atomic uint32_t *flag, _Atomic uint32_t *word, bool bump)
{
    if (!atomic_load(flag) || !atomic_exchange(flag, 0))
        return;
    if (bump)
        atomic_fetch_add(word, 1);
    kart__futex_wake(word, INT32_MAX, true);
}

static void wake_everyone(kart_queue *q)
{
    atomic_fetch_add(&q->data_seq, 1);
    atomic_fetch_add(&q->space_seq, 1);
    kart__futex_wake(&q->data_seq, INT32_MAX, true);
    kart__futex_wake(&q->space_seq, INT32_MAX, true);
    kart__futex_wake(&q->dones, INT32_MAX, true);
}

/* Head and tail as they were at one instant (head read on both sides of
 * the tail). */
static void snapshot(kart_queue *q, uint64_t *t, uint64_t *h)
{
    uint64_t h1 = atomic_load(&q->head);
    for (;;) {
        *t = atomic_load(&q->tail);
        uint64_t h2 = atomic_load(&q->head);
        if (h1 == h2)
            break;
        h1 = h2;
    }
    *h = h1;
}

/* The conditions a waiter waits for (arg: the bytes a producer needs). */
static bool can_get(kart_queue *q, uint32_t arg)
{
    (void)arg;
    return seq_of(atomic_load(&q->tail)) != seq_of(atomic_load(&q->head)) ||
           atomic_load(&q->closed);
}

static bool can_put(kart_queue *q, uint32_t need)
{
    uint64_t t, h;
    snapshot(q, &t, &h);
    return q->cap - used(q, t, h) >= need || atomic_load(&q->closed);
}

static bool all_done(kart_queue *q, uint32_t arg)
{
    (void)arg;
    return atomic_load(&q->dones) == seq_of(atomic_load(&q->tail));
}

/* Spins, then sleeps on word (announcing itself in flag) until ready(q,
 * arg) or the deadline (absolute; negative: none). 0 or -ETIMEDOUT. The
 * word is read before the flag is raised and the condition checked after:
 * a commit that the check misses sees the flag and moves the word, so the
 * futex wait returns at once. Sleeps are cut at KART__QUEUE_NAP_NS (see
 * queue_private.h). */
static int await(kart_queue *q, bool (*ready)(kart_queue *, uint32_t), uint32_t arg,
                 _Atomic uint32_t *flag, _Atomic uint32_t *word, int64_t deadline)
{
    for (kart__spin sp = {0, 0}; kart__spin_next(&sp);)
        if (ready(q, arg))
            return 0;
    for (;;) {
        uint32_t seen = atomic_load(word);
        atomic_store(flag, 1);
        if (ready(q, arg))
            return 0;
        int64_t now = kart_now_ns();
        if (deadline >= 0 && now >= deadline)
            return -ETIMEDOUT;
        int64_t until = now + KART__QUEUE_NAP_NS;
        if (deadline >= 0 && deadline < until)
            until = deadline;
        kart__futex_wait(word, seen, until, true);
    }
}

/* ---- the locks ---- */

/* Takes a side's lock, spinning first while it is held. A dead holder left
 * nothing half-done (every change is one store): mark the lock consistent,
 * and wake everybody in case it died between a commit and its wake-up.
 * (A taker that dies before marking it leaves the mutex owner-dead again
 * for the next, never unrecoverable: only an unlock without
 * pthread_mutex_consistent() does that, and take never does it.) */
static int take(kart_queue *q, kart__qlock *lock)
{
    for (kart__spin sp = {0, 0};
         atomic_load_explicit(&lock->held, memory_order_relaxed) && kart__spin_next(&sp);)
        ;
    int r = pthread_mutex_lock(&lock->m);
    if (r == EOWNERDEAD) {
        r = pthread_mutex_consistent(&lock->m);
        if (r) {
            pthread_mutex_unlock(&lock->m);
            return -r;
        }
        wake_everyone(q);
    } else if (r) {
        return -r;
    }
    atomic_store_explicit(&lock->held, 1, memory_order_relaxed);
    return 0;
}

static void give(kart__qlock *lock)
{
    atomic_store_explicit(&lock->held, 0, memory_order_relaxed);
    pthread_mutex_unlock(&lock->m);
}

/* A robust, process-shared, error-checking mutex: a put or get called
 * again by the holder (from a signal handler) gets -EDEADLK, not a hang. */
static int lock_init(kart__qlock *lock)
{
    atomic_init(&lock->held, 0);
    return kart__robust_mutex_init(&lock->m, true);
}

/* ---- put ---- */

/* Writes one message at off; returns the offset after it. */
static uint32_t write_msg(kart_queue *q, uint32_t off, const void *msg, size_t len)
{
    uint32_t l = (uint32_t)len;
    memcpy(q->ring + off, &l, sizeof(l)); /* off is 8-aligned: no wrap */
    uint32_t data = advance(q, off, KART__QUEUE_HDR);
    if (!KART__FAULT_ARMED(queue_put_half)) {
        ring_write(q, data, msg, len); /* one copy; the split is for the test */
    } else {
        size_t half = len / 2;
        ring_write(q, data, msg, half);
        KART__FAULT_POINT(queue_put_half);
        ring_write(q, advance(q, data, half), (const char *)msg + half, len - half);
    }
    return advance(q, off, msg_size(len));
}

/* Under plock: writes the messages that fit, commits them with one store
 * of tail, and wakes sleeping consumers. Returns how many. */
static int put_locked(kart_queue *q, const struct iovec *m, int n)
{
    KART__FAULT_POINT(queue_put_locked);
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&q->head_seen, memory_order_relaxed);
    uint32_t seq = seq_of(t), off = off_of(t);
    uint32_t room = q->cap - used(q, t, h);
    int k = 0;
    for (; k < n; k++) {
        uint32_t need = msg_size(m[k].iov_len);
        if (need > room) {
            /* head_seen is stale by design: look at the real head. */
            h = atomic_load_explicit(&q->head, memory_order_acquire);
            atomic_store_explicit(&q->head_seen, h, memory_order_relaxed);
            room = q->cap - used(q, pos(seq, off), h);
            if (need > room)
                break;
        }
        off = write_msg(q, off, m[k].iov_base, m[k].iov_len);
        seq++;
        room -= need;
    }
    if (k == 0)
        return 0;
    KART__FAULT_POINT(queue_put_written);
    /* seq_cst: ordered before the look at c_wait (see await). */
    atomic_store(&q->tail, pos(seq, off));
    KART__FAULT_POINT(queue_put_committed);
    wake(&q->c_wait, &q->data_seq, true);
    KART__FAULT_POINT(queue_put_woken);
    return k;
}

KART_API int kart_queue_put_many(kart_queue *q, const struct iovec *msgs, size_t count,
                                 int64_t timeout_ns)
{
    if (!q || !msgs || count == 0)
        return -EINVAL;
    for (size_t i = 0; i < count; i++) {
        if (!msgs[i].iov_base && msgs[i].iov_len)
            return -EINVAL;
        if (msgs[i].iov_len > q->cap - KART__QUEUE_HDR)
            return -EMSGSIZE;
    }
    /* The count goes back as an int: one call puts at most INT_MAX. */
    int n = count > INT_MAX ? INT_MAX : (int)count;
    int64_t deadline = -1;
    bool waited = false;
    for (;;) {
        int r = take(q, &q->plock);
        if (r)
            return r;
        r = atomic_load_explicit(&q->closed, memory_order_relaxed) ? -ESHUTDOWN
                                                                   : put_locked(q, msgs, n);
        give(&q->plock);
        if (r)
            return r;
        if (timeout_ns == 0)
            return -ETIMEDOUT;
        if (!waited)
            deadline = kart__deadline(timeout_ns);
        waited = true;
        r = await(q, can_put, msg_size(msgs[0].iov_len), &q->p_wait, &q->space_seq, deadline);
        if (r)
            return r;
    }
}

KART_API int kart_queue_put(kart_queue *q, const void *msg, size_t len, int64_t timeout_ns)
{
    struct iovec one = {(void *)msg, len};
    int r = kart_queue_put_many(q, &one, 1, timeout_ns);
    return r < 0 ? r : 0;
}

/* ---- get ---- */

/* Under clock: copies out the messages that are there and fit, commits
 * with one store of head, and wakes sleeping producers. Returns how many;
 * 0 when empty; -ENOBUFS when the first does not fit (*need: its length). */
static int get_locked(kart_queue *q, char *buf, size_t cap, struct iovec *out, int max,
                      size_t *need)
{
    KART__FAULT_POINT(queue_get_locked);
    uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&q->tail_seen, memory_order_relaxed);
    uint32_t seq = seq_of(h), off = off_of(h);
    size_t filled = 0;
    int k = 0;
    for (; k < max; k++) {
        if (seq == seq_of(t)) {
            /* tail_seen is stale by design: look at the real tail. */
            t = atomic_load_explicit(&q->tail, memory_order_acquire);
            atomic_store_explicit(&q->tail_seen, t, memory_order_relaxed);
            if (seq == seq_of(t))
                break;
        }
        uint32_t len;
        memcpy(&len, q->ring + off, sizeof(len));
        if (len > cap - filled) {
            if (k == 0) {
                *need = len;
                return -ENOBUFS;
            }
            break;
        }
        uint32_t data = advance(q, off, KART__QUEUE_HDR);
        char *dst = buf ? buf + filled : NULL; /* NULL buf: cap 0, empty messages */
        if (!KART__FAULT_ARMED(queue_get_half)) {
            ring_read(q, data, dst, len); /* one copy; the split is for the test */
        } else {
            size_t half = len / 2;
            ring_read(q, data, dst, half);
            KART__FAULT_POINT(queue_get_half);
            ring_read(q, advance(q, data, half), dst ? dst + half : NULL, len - half);
        }
        out[k] = (struct iovec){dst, len};
        filled += len;
        off = advance(q, off, msg_size(len));
        seq++;
    }
    if (k == 0)
        return 0;
    KART__FAULT_POINT(queue_get_copied);
    atomic_store(&q->head, pos(seq, off));
    KART__FAULT_POINT(queue_get_committed);
    wake(&q->p_wait, &q->space_seq, true);
    KART__FAULT_POINT(queue_get_woken);
    return k;
}

KART_API int kart_queue_get_many(kart_queue *q, void *buf, size_t cap, struct iovec *msgs,
                                 size_t count, int64_t timeout_ns)
{
    if (!q || !msgs || count == 0 || (!buf && cap))
        return -EINVAL;
    int max = count > INT_MAX ? INT_MAX : (int)count;
    int64_t deadline = -1;
    bool waited = false;
    for (;;) {
        int r = take(q, &q->clock);
        if (r)
            return r;
        size_t need = 0;
        r = get_locked(q, buf, cap, msgs, max, &need);
        /* Found empty: is it closed? closed is read before a second look
         * at the tail, so when it says closed every put has committed and
         * that look sees them all. (Not read while messages flow: it
         * shares the producers' cache line.) */
        bool closed = false;
        if (r == 0 && (closed = atomic_load(&q->closed)))
            r = get_locked(q, buf, cap, msgs, max, &need);
        give(&q->clock);
        if (r == -ENOBUFS)
            msgs[0] = (struct iovec){NULL, need};
        if (r)
            return r;
        if (closed)
            return -ESHUTDOWN;
        if (timeout_ns == 0)
            return -ETIMEDOUT;
        if (!waited)
            deadline = kart__deadline(timeout_ns);
        waited = true;
        r = await(q, can_get, 0, &q->c_wait, &q->data_seq, deadline);
        if (r)
            return r;
    }
}

KART_API int kart_queue_get(kart_queue *q, void *buf, size_t cap, size_t *len, int64_t timeout_ns)
{
    if (!len)
        return -EINVAL;
    struct iovec one;
    int r = kart_queue_get_many(q, buf, cap, &one, 1, timeout_ns);
    if (r == 1 || r == -ENOBUFS)
        *len = one.iov_len;
    return r < 0 ? r : 0;
}

/* ---- state ---- */

KART_API int kart_queue_qsize(kart_queue *q, size_t *out)
{
    if (!q || !out)
        return -EINVAL;
    int r = take(q, &q->clock);
    if (r)
        return r;
    /* head cannot move while we hold clock: this is the size at the
     * instant tail is read. */
    uint32_t n = seq_of(atomic_load(&q->tail)) - seq_of(atomic_load(&q->head));
    give(&q->clock);
    *out = n;
    return 0;
}

KART_API int kart_queue_empty(kart_queue *q)
{
    size_t n;
    int r = kart_queue_qsize(q, &n);
    return r < 0 ? r : n == 0;
}

KART_API int kart_queue_full(kart_queue *q)
{
    if (!q)
        return -EINVAL;
    int r = take(q, &q->plock);
    if (r)
        return r;
    uint64_t t = atomic_load(&q->tail); /* fixed while plock is held */
    uint64_t h = atomic_load(&q->head);
    give(&q->plock);
    return q->cap - used(q, t, h) < msg_size(0);
}

KART_API size_t kart_queue_capacity(const kart_queue *q)
{
    return q ? q->cap : 0;
}

/* Under clock: drops every message queued with one store of head (a crash
 * before it drops none, after it all), then counts them done. */
static void drop_all(kart_queue *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint64_t t = atomic_load(&q->tail); /* fixed: closed is set under plock */
    uint32_t dropped = seq_of(t) - seq_of(h);
    if (!dropped)
        return;
    /* tail_seen (the consumers' hint) must never be behind head. */
    atomic_store_explicit(&q->tail_seen, t, memory_order_relaxed);
    atomic_store(&q->head, t);
    if (q->flags & KART__QUEUE_JOINABLE)
        atomic_fetch_add(&q->dones, dropped);
}

KART_API int kart_queue_shutdown(kart_queue *q, bool immediate)
{
    if (!q)
        return -EINVAL;
    /* Under plock: no put commits after closed is set. */
    int r = take(q, &q->plock);
    if (r)
        return r;
    atomic_store(&q->closed, 1);
    give(&q->plock);
    if (immediate) {
        if ((r = take(q, &q->clock)) != 0)
            return r;
        drop_all(q);
        give(&q->clock);
    }
    wake_everyone(q);
    return 0;
}

KART_API int kart_queue_is_shutdown(const kart_queue *q)
{
    return q ? (int)atomic_load(&q->closed) : -EINVAL;
}

/* ---- JoinableQueue ---- */

static int joinable(const kart_queue *q)
{
    if (!q)
        return -EINVAL;
    return (q->flags & KART__QUEUE_JOINABLE) ? 0 : -ENOTSUP;
}

KART_API int kart_queue_task_done(kart_queue *q)
{
    int r = joinable(q);
    if (r)
        return r;
    /* One CAS: a crash leaves the count either before or after. */
    uint32_t d = atomic_load(&q->dones);
    do {
        if (d == seq_of(atomic_load(&q->tail)))
            return KART_ETASKDONE;
    } while (!atomic_compare_exchange_weak(&q->dones, &d, d + 1));
    wake(&q->j_wait, &q->dones, false);
    return 0;
}

KART_API int kart_queue_unfinished(kart_queue *q, size_t *out)
{
    int r = joinable(q);
    if (r)
        return r;
    if (!out)
        return -EINVAL;
    uint32_t d1 = atomic_load(&q->dones), d2, p;
    for (;;) {
        p = seq_of(atomic_load(&q->tail));
        d2 = atomic_load(&q->dones);
        if (d1 == d2)
            break;
        d1 = d2;
    }
    *out = (uint32_t)(p - d1);
    return 0;
}

KART_API int kart_queue_join(kart_queue *q, int64_t timeout_ns)
{
    int r = joinable(q);
    if (r)
        return r;
    if (all_done(q, 0))
        return 0;
    if (timeout_ns == 0)
        return -ETIMEDOUT;
    return await(q, all_done, 0, &q->j_wait, &q->dones, kart__deadline(timeout_ns));
}

/* ---- creating and attaching ---- */

/* The capacity as rounded, or 0 when out of range. */
static size_t ring_bytes(size_t capacity)
{
    size_t cap = capacity ? capacity : KART_QUEUE_DEFAULT_CAPACITY;
    if (cap < KART_QUEUE_MIN_CAPACITY || cap > KART_QUEUE_MAX_CAPACITY)
        return 0;
    return (cap + 7) & ~(size_t)7;
}

/* Sets up the header in zeroed or reused memory; magic goes last, so an
 * attacher never sees a half-made queue. map_size 0: the caller's memory. */
static int setup(kart_queue *q, size_t map_size, size_t cap, unsigned flags)
{
    memset(q, 0, sizeof(*q));
    q->map_size = map_size;
    q->cap = (uint32_t)cap;
    q->flags = flags;
    int r = lock_init(&q->plock);
    if (!r)
        r = lock_init(&q->clock);
    if (!r)
        atomic_store_explicit(&q->magic, KART__QUEUE_MAGIC, memory_order_release);
    return r;
}

KART_API int kart_queue_create(kart_queue **out, const kart_queue_options *opts)
{
    kart_queue_options o = opts ? *opts : (kart_queue_options){0};
    size_t cap = ring_bytes(o.capacity);
    unsigned flags = o.joinable ? KART__QUEUE_JOINABLE : 0;
    if (!out || !cap)
        return -EINVAL;
    if (o.name && kart__queue_name_check(o.name))
        return -EINVAL;
    size_t size = sizeof(kart_queue) + cap;
    void *p;
    /* Under spawn and forkserver an anonymous queue lives in a memfd,
     * which a child is handed (kart_queue_fd, queue_fd.c). */
    int fd = -1;
    bool memfd = !o.name && kart_context_start_method(o.context) != KART_START_FORK;
    int r = memfd ? kart__queue_map_memfd(size, &p, &fd)
                  : kart__queue_map_new(o.name, o.mode, size, &p);
    if (r)
        return r;
    r = setup(p, size, cap, flags);
    if (!r && memfd)
        r = kart__queue_fd_record(p, fd);
    if (r) {
        kart__queue_unmap(p, size);
        if (o.name)
            kart__queue_name_unlink(o.name);
        if (fd >= 0)
            close(fd);
        return r;
    }
    *out = p;
    return 0;
}

KART_API int kart_queue_footprint(size_t capacity, size_t *bytes)
{
    size_t cap = ring_bytes(capacity);
    if (!cap || !bytes)
        return -EINVAL;
    *bytes = sizeof(kart_queue) + cap;
    return 0;
}

KART_API int kart_queue_init(kart_queue **out, void *mem, size_t size,
                             const kart_queue_options *opts)
{
    kart_queue_options o = opts ? *opts : (kart_queue_options){0};
    size_t cap = ring_bytes(o.capacity);
    if (!out || !mem || ((uintptr_t)mem & 63) || !cap || o.name || o.mode)
        return -EINVAL;
    if (size < sizeof(kart_queue) + cap)
        return -ENOSPC;
    int r = setup(mem, 0, cap, o.joinable ? KART__QUEUE_JOINABLE : 0);
    if (r)
        return r;
    *out = mem;
    return 0;
}

KART_API int kart_queue_attach(kart_queue **out, void *mem, size_t size)
{
    if (!out || !mem || ((uintptr_t)mem & 63))
        return -EINVAL;
    if (size < sizeof(kart_queue))
        return -ENOSPC;
    kart_queue *q = mem;
    uint64_t magic = atomic_load_explicit(&q->magic, memory_order_acquire);
    if (magic == 0)
        return -EAGAIN;
    if (magic != KART__QUEUE_MAGIC || q->map_size != 0)
        return -EINVAL;
    if (size < sizeof(kart_queue) + q->cap)
        return -ENOSPC;
    *out = q;
    return 0;
}

KART_API int kart_simplequeue_create(kart_queue **q)
{
    kart_queue_options o = {.capacity = KART_SIMPLEQUEUE_CAPACITY};
    return kart_queue_create(q, &o);
}

KART_API int kart_joinablequeue_create(kart_queue **q, size_t capacity)
{
    kart_queue_options o = {.capacity = capacity, .joinable = true};
    return kart_queue_create(q, &o);
}

KART_API int kart_queue_open(kart_queue **out, const char *name)
{
    if (!out || kart__queue_name_check(name))
        return -EINVAL;
    void *p;
    size_t size;
    int r = kart__queue_map_open(name, &p, &size);
    if (r)
        return r;
    kart_queue *q = p;
    uint64_t magic = atomic_load_explicit(&q->magic, memory_order_acquire);
    if (magic == 0)
        r = -EAGAIN;
    else if (magic != KART__QUEUE_MAGIC || q->map_size != size)
        r = -EINVAL;
    if (r) {
        kart__queue_unmap(p, size);
        return r;
    }
    *out = q;
    return 0;
}

KART_API int kart_queue_unlink(const char *name)
{
    if (kart__queue_name_check(name))
        return -EINVAL;
    return kart__queue_name_unlink(name);
}

KART_API void kart_queue_free(kart_queue *q)
{
    if (!q || atomic_load_explicit(&q->magic, memory_order_relaxed) != KART__QUEUE_MAGIC)
        return;
    /* The locks are not destroyed: other processes may still map the
     * queue, and a glibc robust mutex holds nothing outside it. */
    if (q->flags & KART__QUEUE_MEMFD)
        kart__queue_fd_release(q);
    if (q->map_size)
        kart__queue_unmap(q, q->map_size);
}

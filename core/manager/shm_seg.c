/*
 * core/manager/shm_seg.c — the fast path's segments (see shm_seg.h): a
 * sealed-size memfd (mode 0600, no name anywhere that another user could
 * race), mapped MAP_SHARED | MAP_NORESERVE; the robust lock with repair;
 * the block allocator; canonical keys; futex waits.
 */
#include "shm_seg.h"

#include "deadline.h"
#include "futex.h"
#include "obj_private.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t hdr_end(void)
{
    return (sizeof(mshm_hdr) + 63) & ~(size_t)63;
}

int mgr__shm_new(mshm **out, int kind, size_t size, int protocol)
{
    if (size == 0)
        size = MSHM_DEFAULT_SIZE;
    if (size < MSHM_MIN_SIZE)
        size = MSHM_MIN_SIZE;
    size = (size + 4095) & ~(size_t)4095;
    mshm *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int fd = memfd_create("kart-manager", MFD_CLOEXEC);
    int err = fd < 0 ? -errno : 0;
    if (!err && (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)size) < 0))
        err = -errno;
    void *p = MAP_FAILED;
    if (!err) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
        if (p == MAP_FAILED)
            err = -errno;
    }
    if (!err) {
        s->fd = fd;
        s->base = p;
        s->size = size;
        s->h = p;
        err = kart_lock_init(&s->h->lock, KART_SYNC_SHARED | KART_SYNC_ROBUST);
    }
    if (err) {
        if (p != MAP_FAILED)
            munmap(p, size);
        if (fd >= 0)
            close(fd);
        free(s);
        return err;
    }
    mshm_hdr *h = s->h;
    h->kind = (uint32_t)kind;
    h->protocol = (uint32_t)(protocol ? protocol : 4);
    h->size = size;
    if (getrandom(&h->seed, sizeof h->seed, GRND_NONBLOCK) != sizeof h->seed)
        h->seed = (uint64_t)(uintptr_t)s ^ (uint64_t)getpid() << 32;
    h->server_pid = (int32_t)getpid();
    h->top = hdr_end();
    atomic_thread_fence(memory_order_release);
    h->magic = MSHM_MAGIC;
    *out = s;
    return 0;
}

int mgr__shm_map(mshm **out, int fd, int kind)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    size_t size = (size_t)st.st_size;
    if (size < MSHM_MIN_SIZE)
        return -EPROTO;
    mshm *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        free(s);
        return -errno;
    }
    mshm_hdr *h = p;
    if (h->magic != MSHM_MAGIC || h->kind != (uint32_t)kind || h->size != size) {
        munmap(p, size);
        free(s);
        return -EPROTO;
    }
    close(fd);
    s->fd = -1;
    s->base = p;
    s->size = size;
    s->h = h;
    *out = s;
    return 0;
}

void mgr__shm_unmap(mshm *s)
{
    if (!s)
        return;
    munmap(s->base, s->size);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

void mgr__shm_close(mshm *s)
{
    if (!s)
        return;
    atomic_store(&s->h->closed, 1);
    if (s->h->kind == MSHM_QUEUE) {
        mshm_queue *q = &s->h->u.q;
        atomic_fetch_add(&q->puts, 1);
        atomic_fetch_add(&q->gets, 1);
        atomic_fetch_add(&q->done, 1);
        kart__futex_wake(&q->puts, INT32_MAX, true);
        kart__futex_wake(&q->gets, INT32_MAX, true);
        kart__futex_wake(&q->done, INT32_MAX, true);
    }
}

/* ---- the lock ---- */

int mgr__shm_lock(mshm *s)
{
    int r = kart_lock_acquire(&s->h->lock, -1);
    if (r == -EOWNERDEAD) {
        /* A holder died mid-change: rebuild what is derived. */
        if (s->h->kind == MSHM_QUEUE)
            mgr__shm_queue_repair(s);
        else
            mgr__shm_dict_repair(s);
        atomic_fetch_add(&s->h->repairs, 1);
        r = kart_lock_consistent(&s->h->lock);
    }
    return r;
}

void mgr__shm_unlock(mshm *s)
{
    kart_lock_release(&s->h->lock);
}

/* ---- the allocator: power-of-two blocks, an 8-byte header each (the
 * class), a free list per class; nothing coalesces. ---- */

typedef struct blk {
    uint32_t cls, magic;
} blk;
#define BLK_MAGIC 0x626c6b21u

uint64_t mgr__shm_alloc(mshm *s, size_t n)
{
    mshm_hdr *h = s->h;
    if (n > s->size)
        return 0;
    unsigned cls = MSHM_MIN_CLASS;
    while (((size_t)1 << cls) < n + sizeof(blk))
        cls++;
    if (cls >= MSHM_CLASSES)
        return 0;
    uint64_t b = h->freel[cls];
    if (b && b + 16 <= s->size) {
        uint64_t next = *(uint64_t *)MSHM_AT(s, b + sizeof(blk));
        h->freel[cls] = next < s->size ? next : 0; /* one store: popped */
    } else {
        uint64_t sz = (uint64_t)1 << cls;
        if (h->top + sz > s->size)
            return 0;
        b = h->top;
        h->top = b + sz; /* one store: taken */
    }
    blk *k = MSHM_AT(s, b);
    k->cls = cls;
    k->magic = BLK_MAGIC;
    return b + sizeof(blk);
}

void mgr__shm_free(mshm *s, uint64_t off)
{
    if (off < sizeof(blk) || off >= s->size)
        return;
    uint64_t b = off - sizeof(blk);
    blk *k = MSHM_AT(s, b);
    if (k->magic != BLK_MAGIC || k->cls >= MSHM_CLASSES)
        return; /* never trust a block twice */
    unsigned cls = k->cls;
    k->magic = 0;
    *(uint64_t *)MSHM_AT(s, off) = s->h->freel[cls];
    s->h->freel[cls] = b; /* one store: pushed */
}

uint64_t mgr__shm_blob(mshm *s, const void *p, size_t n)
{
    uint64_t off = mgr__shm_alloc(s, n + 8);
    if (!off)
        return 0;
    *(uint64_t *)MSHM_AT(s, off) = n;
    memcpy(MSHM_AT(s, off + 8), p, n);
    return off;
}

const void *mgr__shm_blob_data(mshm *s, uint64_t off, size_t *n)
{
    uint64_t len = *(uint64_t *)MSHM_AT(s, off);
    *n = len <= s->size - off - 8 ? (size_t)len : 0;
    return MSHM_AT(s, off + 8);
}

int mgr__shm_blob_obj(mshm *s, uint64_t off, kart_obj **out)
{
    size_t n;
    const void *p = mgr__shm_blob_data(s, off, &n);
    int r = mv_unpickle(p, n, out, NULL, 0);
    return r == -ENOMEM ? r : r < 0 ? KART_EBADREPLY : 0;
}

/* ---- canonical keys ---- */

static int kput(mshm_key *k, const void *p, size_t n)
{
    if (k->n + n > k->cap) {
        size_t cap = (k->n + n) * 2;
        uint8_t *q = k->heap ? realloc(k->p, cap) : malloc(cap);
        if (!q)
            return -ENOMEM;
        if (!k->heap)
            memcpy(q, k->p, k->n);
        k->p = q;
        k->cap = cap;
        k->heap = true;
    }
    memcpy(k->p + k->n, p, n);
    k->n += n;
    return 0;
}

static int kint(mshm_key *k, int64_t v)
{
    uint8_t b[9] = {'i'};
    memcpy(b + 1, &v, 8);
    return kput(k, b, 9);
}

static int kbig(mshm_key *k, const uint8_t *b, size_t n)
{
    uint8_t t = 'I';
    uint64_t len = n;
    int r = kput(k, &t, 1);
    if (!r)
        r = kput(k, &len, 8);
    return r ? r : kput(k, b, n);
}

static int kenc(const kart_obj *o, mshm_key *k, int depth)
{
    if (depth > 200)
        return -EINVAL;
    int64_t v;
    switch (kart_obj_type_of(o)) {
    case KART_OBJ_NONE:
        return kput(k, "N", 1);
    case KART_OBJ_BOOL:
    case KART_OBJ_INT:
        kart_obj_get_int(o, &v);
        return kint(k, v);
    case KART_OBJ_BIGINT: {
        if (kart_obj_get_int(o, &v) == 0)
            return kint(k, v);
        size_t n = 0;
        kart_obj_get_bigint(o, NULL, 0, &n);
        uint8_t *b = malloc(n ? n : 1);
        if (!b)
            return -ENOMEM;
        int r = kart_obj_get_bigint(o, b, n, &n);
        if (!r)
            r = kbig(k, b, n);
        free(b);
        return r;
    }
    case KART_OBJ_FLOAT: {
        double f;
        kart_obj_get_float(o, &f);
        if (f >= -9223372036854775808.0 && f < 9223372036854775808.0 && f == floor(f))
            return kint(k, (int64_t)f);
        if (isfinite(f) && f == floor(f)) {
            uint8_t b[160];
            size_t n = kart__float_bigint(f, b);
            return kbig(k, b, n);
        }
        uint8_t b[9] = {'f'};
        memcpy(b + 1, &f, 8);
        return kput(k, b, 9);
    }
    case KART_OBJ_STR:
    case KART_OBJ_BYTES: {
        const void *p;
        size_t n;
        uint8_t t;
        if (kart_obj_type_of(o) == KART_OBJ_STR) {
            kart_obj_get_str(o, (const char **)&p, &n);
            t = 's';
        } else {
            kart_obj_get_bytes(o, &p, &n);
            t = 'b';
        }
        uint64_t len = n;
        int r = kput(k, &t, 1);
        if (!r)
            r = kput(k, &len, 8);
        return r ? r : kput(k, p, n);
    }
    case KART_OBJ_TUPLE: {
        size_t n = mv_len(o);
        uint8_t t = 't';
        uint64_t len = n;
        int r = kput(k, &t, 1);
        if (!r)
            r = kput(k, &len, 8);
        for (size_t i = 0; !r && i < n; i++)
            r = kenc(mv_item(o, i), k, depth + 1);
        return r;
    }
    default:
        return -EINVAL;
    }
}

int mgr__shm_key(const kart_obj *key, mshm_key *k)
{
    k->p = k->inl;
    k->n = 0;
    k->cap = sizeof k->inl;
    k->heap = false;
    if (!key)
        return -EINVAL;
    int r = kenc(key, k, 0);
    if (r)
        mgr__shm_key_done(k);
    return r;
}

void mgr__shm_key_done(mshm_key *k)
{
    if (k->heap)
        free(k->p);
    k->heap = false;
    k->p = k->inl;
}

uint64_t mgr__shm_hash(const mshm *s, const mshm_key *k)
{
    uint64_t h = 0xcbf29ce484222325ull ^ s->h->seed;
    for (size_t i = 0; i < k->n; i++)
        h = (h ^ k->p[i]) * 0x100000001b3ull;
    h ^= h >> 31;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 29);
}

/* ---- waits ---- */

#define WAIT_SLICE_NS (100 * INT64_C(1000000))

int mgr__shm_wait(mshm *s, _Atomic uint32_t *word, uint32_t seen, int64_t deadline,
                  const kart_manager_server *srv)
{
    if (atomic_load(&s->h->closed))
        return -ECONNRESET;
    if (srv && mgr__stopping(srv))
        return -ECANCELED;
    int64_t now = kart_now_ns();
    if (deadline >= 0 && now >= deadline)
        return -ETIMEDOUT;
    /* In slices: a server that stops, or dies (SIGKILL: nobody wakes us),
     * ends the wait. */
    int64_t until = now + WAIT_SLICE_NS;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    int r = kart__futex_wait(word, seen, until, true);
    if (r == -ETIMEDOUT) {
        if (!srv && kill(s->h->server_pid, 0) < 0 && errno == ESRCH)
            return -ECONNRESET;
        return deadline >= 0 && kart_now_ns() >= deadline ? -ETIMEDOUT : 0;
    }
    return 0;
}

void mgr__shm_bump(mshm *s, _Atomic uint32_t *word, _Atomic uint32_t *flag)
{
    (void)s;
    atomic_fetch_add(word, 1);
    if (atomic_load_explicit(flag, memory_order_relaxed)) {
        atomic_store(flag, 0);
        kart__futex_wake(word, INT32_MAX, true);
    }
}

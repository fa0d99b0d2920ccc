/*
 * core/shared.c — Value and Array (kart/shared.h): a header and the
 * elements in an anonymous shared mapping or a named segment, each access
 * optionally under a process-shared kart_lock (the header's own, or one
 * the caller gives). Handles made by synchronized() share the mapping of
 * the handle they wrap through a reference count (struct backing), so
 * either may be freed first.
 */
#include "fault.h"

#include <kart/shared.h>
#include <kart/shm.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAGIC 0x6b415272u /* "kARr" */

/* At the start of the shared bytes. magic is stored last (release), so
 * an attacher that sees it sees the rest. */
struct hdr {
    _Atomic uint32_t magic;
    uint32_t type;
    uint64_t esize;
    uint64_t count;
    uint32_t flags;
    uint32_t pad_;
    kart_lock lock;
};

#define DATA_OFF ((sizeof(struct hdr) + 63) & ~(size_t)63)

/* The memory a handle maps, shared by the handles synchronized() makes
 * over it (process-local: each process frees its own handles). */
struct backing {
    _Atomic unsigned refs;
    kart_shm *seg;  /* named: the segment; anonymous: NULL */
    void *base;     /* anonymous: the mapping */
    size_t map_len; /* anonymous: the mapping's length */
};

struct kart_array {
    struct backing *b;
    struct hdr *h;
    unsigned char *data;
    kart_ctype type;
    size_t esize, count;
    kart_lock *lock;     /* NULL when raw */
    kart_lock *own_lock; /* synchronized() with no lock: the one it made,
                          * alone in a shared page this handle unmaps */
};

struct kart_value {
    kart_array a;
};

static size_t type_size(kart_ctype t)
{
    /* clang-format off */ /* a table: one case per line */
    switch (t) {
    case KART_CT_INT8:
    case KART_CT_UINT8: return 1;
    case KART_CT_INT16:
    case KART_CT_UINT16: return 2;
    case KART_CT_INT32:
    case KART_CT_UINT32:
    case KART_CT_FLOAT: return 4;
    case KART_CT_INT64:
    case KART_CT_UINT64:
    case KART_CT_DOUBLE: return 8;
    default: return 0;
    }
    /* clang-format on */
}

static bool is_int(kart_ctype t)
{
    return t >= KART_CT_INT8 && t <= KART_CT_UINT64;
}

/* The element size, or 0 when type and elem_size do not go together. */
static size_t checked_esize(kart_ctype type, size_t elem_size)
{
    if (type == KART_CT_BYTES)
        return elem_size;
    size_t n = type_size(type);
    return (elem_size == 0 || elem_size == n) ? n : 0;
}

/* Fills in the header and the handle over freshly zeroed bytes. */
static int setup(kart_array *a, void *base, kart_ctype type, size_t esize, size_t count,
                 unsigned flags)
{
    struct hdr *h = base;
    h->type = (uint32_t)type;
    h->esize = esize;
    h->count = count;
    h->flags = flags & (KART_SHARED_LOCK | KART_SHARED_ROBUST);
    if (flags & KART_SHARED_LOCK) {
        unsigned lf = KART_SYNC_SHARED | ((flags & KART_SHARED_ROBUST) ? KART_SYNC_ROBUST : 0);
        int err = kart_lock_init(&h->lock, lf);
        if (err)
            return err;
    }
    atomic_store_explicit(&h->magic, MAGIC, memory_order_release);
    a->h = h;
    a->data = (unsigned char *)base + DATA_OFF;
    a->type = type;
    a->esize = esize;
    a->count = count;
    a->lock = (flags & KART_SHARED_LOCK) ? &h->lock : NULL;
    return 0;
}

/* Validates the arguments of a create; *bytes gets the total size. */
static int check_create(kart_ctype type, size_t elem_size, size_t count, unsigned flags,
                        unsigned allowed, size_t *esize, size_t *bytes)
{
    if (flags & ~allowed)
        return -EINVAL;
    if ((flags & KART_SHARED_ROBUST) && !(flags & KART_SHARED_LOCK))
        return -EINVAL;
    if (count == 0 || !(*esize = checked_esize(type, elem_size)))
        return -EINVAL;
    size_t data;
    if (__builtin_mul_overflow(*esize, count, &data) ||
        __builtin_add_overflow(data, DATA_OFF, bytes))
        return -ENOMEM;
    return 0;
}

/* A handle and its backing, both zeroed; NULL when out of memory. */
static kart_array *handle_new(void)
{
    kart_array *a = calloc(1, sizeof(struct kart_value));
    if (!a)
        return NULL;
    a->b = calloc(1, sizeof(*a->b));
    if (!a->b) {
        free(a);
        return NULL;
    }
    atomic_init(&a->b->refs, 1);
    return a;
}

/* Drops a handle's reference to its backing, unmapping it with the last. */
static void backing_put(struct backing *b)
{
    if (atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    if (b->seg)
        kart_shm_close(b->seg);
    else if (b->base)
        kart__sys_munmap(b->base, b->map_len);
    free(b);
}

static void handle_free(kart_array *a)
{
    if (a->own_lock)
        kart__sys_munmap(a->own_lock, sizeof(kart_lock));
    backing_put(a->b);
    free(a);
}

/* An anonymous array; lock: a lock of the caller's to guard it with
 * (flags then 0), or NULL. */
static int array_create(kart_array **out, kart_ctype type, size_t elem_size, size_t count,
                        unsigned flags, kart_lock *lock)
{
    size_t esize, bytes;
    if (!out)
        return -EINVAL;
    int err = check_create(type, elem_size, count, flags, KART_SHARED_LOCK | KART_SHARED_ROBUST,
                           &esize, &bytes);
    if (err)
        return err;
    kart_array *a = handle_new();
    if (!a)
        return -ENOMEM;
    void *p =
        kart__sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        handle_free(a);
        return -ENOMEM;
    }
    a->b->base = p;
    a->b->map_len = bytes;
    if ((err = setup(a, p, type, esize, count, flags)) != 0) {
        handle_free(a);
        return err;
    }
    if (lock)
        a->lock = lock;
    *out = a;
    return 0;
}

static int array_create_named(kart_array **out, const char *name, kart_ctype type, size_t elem_size,
                              size_t count, unsigned flags)
{
    size_t esize, bytes;
    if (!out)
        return -EINVAL;
    int err =
        check_create(type, elem_size, count, flags,
                     KART_SHARED_LOCK | KART_SHARED_ROBUST | KART_SHARED_TRACK, &esize, &bytes);
    if (err)
        return err;
    kart_array *a = handle_new();
    if (!a)
        return -ENOMEM;
    err =
        kart_shm_create(&a->b->seg, name, bytes, (flags & KART_SHARED_TRACK) ? KART_SHM_TRACK : 0);
    if (!err && (err = setup(a, kart_shm_addr(a->b->seg), type, esize, count, flags)) != 0)
        kart_shm_unlink(a->b->seg);
    if (err) {
        handle_free(a);
        return err;
    }
    *out = a;
    return 0;
}

static int array_attach(kart_array **out, const char *name, unsigned flags, bool value)
{
    if (!out || flags)
        return -EINVAL;
    kart_array *a = handle_new();
    if (!a)
        return -ENOMEM;
    int err = kart_shm_attach(&a->b->seg, name, 0);
    if (err) {
        handle_free(a);
        return err;
    }
    size_t size = kart_shm_size(a->b->seg);
    struct hdr *h = kart_shm_addr(a->b->seg);
    size_t esize, bytes;
    if (size < DATA_OFF) {
        err = -EPROTO;
    } else {
        uint32_t m = atomic_load_explicit(&h->magic, memory_order_acquire);
        if (m == 0)
            err = -EAGAIN;
        else if (m != MAGIC ||
                 check_create((kart_ctype)h->type, h->esize, h->count, h->flags,
                              KART_SHARED_LOCK | KART_SHARED_ROBUST, &esize, &bytes) != 0 ||
                 esize != h->esize || bytes > size || (value && h->count != 1))
            err = -EPROTO;
    }
    if (err) {
        handle_free(a);
        return err;
    }
    a->h = h;
    a->data = (unsigned char *)h + DATA_OFF;
    a->type = (kart_ctype)h->type;
    a->esize = esize;
    a->count = h->count;
    a->lock = (h->flags & KART_SHARED_LOCK) ? &h->lock : NULL;
    *out = a;
    return 0;
}

static void array_free(kart_array *a)
{
    if (a)
        handle_free(a);
}

/* Takes the lock for one get or set. A robust lock whose holder died is
 * not taken over silently: -EOWNERDEAD goes back to the caller, who now
 * holds the lock and decides what the bytes should be (kart/shared.h). */
static int guard(kart_array *a)
{
    return a->lock ? kart_lock_acquire(a->lock, -1) : 0;
}

static void unguard(kart_array *a)
{
    if (a->lock)
        kart_lock_release(a->lock);
}

static int copy_out(kart_array *a, size_t start, size_t stop, void *out)
{
    if (!a || (!out && stop > start))
        return -EINVAL;
    if (start > stop || stop > a->count)
        return -ERANGE;
    if (start == stop)
        return 0;
    int err = guard(a);
    if (err)
        return err;
    memcpy(out, a->data + start * a->esize, (stop - start) * a->esize);
    unguard(a);
    return 0;
}

static int copy_in(kart_array *a, size_t start, size_t stop, const void *in)
{
    if (!a || (!in && stop > start))
        return -EINVAL;
    if (start > stop || stop > a->count)
        return -ERANGE;
    if (start == stop)
        return 0;
    int err = guard(a);
    if (err)
        return err;
    memcpy(a->data + start * a->esize, in, (stop - start) * a->esize);
    unguard(a);
    return 0;
}

/* Reads an integer element (raw bytes in e) into *out. */
static int int_load(kart_ctype t, const void *e, int64_t *out)
{
    /* clang-format off */ /* a table: one case per line */
    switch (t) {
    case KART_CT_INT8: { int8_t v; memcpy(&v, e, 1); *out = v; return 0; }
    case KART_CT_UINT8: { uint8_t v; memcpy(&v, e, 1); *out = v; return 0; }
    case KART_CT_INT16: { int16_t v; memcpy(&v, e, 2); *out = v; return 0; }
    case KART_CT_UINT16: { uint16_t v; memcpy(&v, e, 2); *out = v; return 0; }
    case KART_CT_INT32: { int32_t v; memcpy(&v, e, 4); *out = v; return 0; }
    case KART_CT_UINT32: { uint32_t v; memcpy(&v, e, 4); *out = v; return 0; }
    case KART_CT_INT64: memcpy(out, e, 8); return 0;
    case KART_CT_UINT64: {
        uint64_t v;
        memcpy(&v, e, 8);
        if (v > (uint64_t)INT64_MAX)
            return -ERANGE;
        *out = (int64_t)v;
        return 0;
    }
    default: return -EINVAL;
    }
    /* clang-format on */
}

/* Encodes v for type t into e; -ERANGE when it does not fit. */
static int int_store(kart_ctype t, void *e, int64_t v)
{
#define STORE(T, LO, HI)                                                                           \
    do {                                                                                           \
        if (v < (LO) || v > (HI))                                                                  \
            return -ERANGE;                                                                        \
        T x = (T)v;                                                                                \
        memcpy(e, &x, sizeof(x));                                                                  \
        return 0;                                                                                  \
    } while (0)
    /* clang-format off */ /* a table: one case per line */
    switch (t) {
    case KART_CT_INT8: STORE(int8_t, INT8_MIN, INT8_MAX);
    case KART_CT_UINT8: STORE(uint8_t, 0, UINT8_MAX);
    case KART_CT_INT16: STORE(int16_t, INT16_MIN, INT16_MAX);
    case KART_CT_UINT16: STORE(uint16_t, 0, UINT16_MAX);
    case KART_CT_INT32: STORE(int32_t, INT32_MIN, INT32_MAX);
    case KART_CT_UINT32: STORE(uint32_t, 0, (int64_t)UINT32_MAX);
    case KART_CT_INT64: STORE(int64_t, INT64_MIN, INT64_MAX);
    case KART_CT_UINT64: STORE(uint64_t, 0, INT64_MAX);
    default: return -EINVAL;
    }
    /* clang-format on */
#undef STORE
}

static int get_int(kart_array *a, size_t i, int64_t *out)
{
    if (!a || !out || !is_int(a->type))
        return -EINVAL;
    unsigned char e[8];
    int err = copy_out(a, i, i + 1, e);
    return err ? err : int_load(a->type, e, out);
}

static int set_int(kart_array *a, size_t i, int64_t v)
{
    if (!a || !is_int(a->type))
        return -EINVAL;
    if (i >= a->count)
        return -ERANGE;
    unsigned char e[8];
    int err = int_store(a->type, e, v);
    return err ? err : copy_in(a, i, i + 1, e);
}

static int get_double(kart_array *a, size_t i, double *out)
{
    if (!a || !out || a->type == KART_CT_BYTES)
        return -EINVAL;
    unsigned char e[8];
    int err = copy_out(a, i, i + 1, e);
    if (err)
        return err;
    if (a->type == KART_CT_FLOAT) {
        float f;
        memcpy(&f, e, 4);
        *out = f;
    } else if (a->type == KART_CT_DOUBLE) {
        memcpy(out, e, 8);
    } else if (a->type == KART_CT_UINT64) {
        uint64_t u;
        memcpy(&u, e, 8);
        *out = (double)u;
    } else {
        int64_t v;
        int_load(a->type, e, &v);
        *out = (double)v;
    }
    return 0;
}

static int set_double(kart_array *a, size_t i, double v)
{
    if (!a || (a->type != KART_CT_FLOAT && a->type != KART_CT_DOUBLE))
        return -EINVAL;
    if (a->type == KART_CT_FLOAT) {
        float f = (float)v;
        return copy_in(a, i, i + 1, &f);
    }
    return copy_in(a, i, i + 1, &v);
}

static int lock_it(kart_array *a, int64_t timeout_ns)
{
    if (!a || !a->lock)
        return -EINVAL;
    return kart_lock_acquire(a->lock, timeout_ns);
}

static int unlock_it(kart_array *a)
{
    if (!a || !a->lock)
        return -EINVAL;
    return kart_lock_release(a->lock);
}

static int consistent_it(kart_array *a)
{
    if (!a || !a->lock)
        return -EINVAL;
    return kart_lock_consistent(a->lock);
}

/* A new handle over raw's bytes, guarded by lock, or by a new shared lock
 * in a page of its own when lock is NULL (Python's synchronized()). */
static int synchronized(kart_array **out, kart_array *raw, kart_lock *lock)
{
    if (!out || !raw || raw->lock)
        return -EINVAL;
    kart_array *a = calloc(1, sizeof(struct kart_value));
    if (!a)
        return -ENOMEM;
    if (!lock) {
        void *p = kart__sys_mmap(NULL, sizeof(kart_lock), PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            free(a);
            return -ENOMEM;
        }
        int err = kart_lock_init(p, KART_SYNC_SHARED);
        if (err) {
            kart__sys_munmap(p, sizeof(kart_lock));
            free(a);
            return err;
        }
        lock = a->own_lock = p;
    }
    *a = (kart_array){raw->b,     raw->h,     raw->data, raw->type,
                      raw->esize, raw->count, lock,      a->own_lock};
    atomic_fetch_add(&raw->b->refs, 1);
    *out = a;
    return 0;
}

/* A new raw anonymous array holding src's elements, read under src's lock
 * (Python's sharedctypes.copy()). */
static int copy_array(kart_array **out, kart_array *src)
{
    if (!out || !src)
        return -EINVAL;
    kart_array *a;
    int err = array_create(&a, src->type, src->esize, src->count, 0, NULL);
    if (err)
        return err;
    if ((err = copy_out(src, 0, src->count, a->data)) != 0) {
        handle_free(a);
        return err;
    }
    *out = a;
    return 0;
}

/* ---- Array ---- */

KART_API int kart_array_create(kart_array **out, kart_ctype type, size_t elem_size, size_t count,
                               unsigned flags)
{
    return array_create(out, type, elem_size, count, flags, NULL);
}

KART_API int kart_array_create_with_lock(kart_array **out, kart_ctype type, size_t elem_size,
                                         size_t count, kart_lock *lock)
{
    return lock ? array_create(out, type, elem_size, count, 0, lock) : -EINVAL;
}

KART_API int kart_array_create_named(kart_array **out, const char *name, kart_ctype type,
                                     size_t elem_size, size_t count, unsigned flags)
{
    return array_create_named(out, name, type, elem_size, count, flags);
}

KART_API int kart_array_attach(kart_array **out, const char *name, unsigned flags)
{
    return array_attach(out, name, flags, false);
}

KART_API void kart_array_free(kart_array *a)
{
    array_free(a);
}

KART_API int kart_array_unlink(kart_array *a)
{
    return a && a->b->seg ? kart_shm_unlink(a->b->seg) : -EINVAL;
}

KART_API const char *kart_array_name(const kart_array *a)
{
    return a && a->b->seg ? kart_shm_name(a->b->seg) : NULL;
}

KART_API size_t kart_array_len(const kart_array *a)
{
    return a ? a->count : 0;
}
KART_API kart_ctype kart_array_type(const kart_array *a)
{
    return a ? a->type : (kart_ctype)0;
}
KART_API size_t kart_array_elem_size(const kart_array *a)
{
    return a ? a->esize : 0;
}
KART_API void *kart_array_data(const kart_array *a)
{
    return a ? a->data : NULL;
}
KART_API kart_lock *kart_array_get_lock(const kart_array *a)
{
    return a ? a->lock : NULL;
}

KART_API int kart_array_get(kart_array *a, size_t i, void *out)
{
    if (a && i >= a->count)
        return -ERANGE;
    return copy_out(a, i, i + 1, out);
}

KART_API int kart_array_set(kart_array *a, size_t i, const void *in)
{
    if (a && i >= a->count)
        return -ERANGE;
    return copy_in(a, i, i + 1, in);
}

KART_API int kart_array_get_slice(kart_array *a, size_t start, size_t stop, void *out)
{
    return copy_out(a, start, stop, out);
}

KART_API int kart_array_set_slice(kart_array *a, size_t start, size_t stop, const void *in)
{
    return copy_in(a, start, stop, in);
}

KART_API int kart_array_get_int(kart_array *a, size_t i, int64_t *out)
{
    return get_int(a, i, out);
}

KART_API int kart_array_set_int(kart_array *a, size_t i, int64_t v)
{
    return set_int(a, i, v);
}

KART_API int kart_array_get_double(kart_array *a, size_t i, double *out)
{
    return get_double(a, i, out);
}

KART_API int kart_array_set_double(kart_array *a, size_t i, double v)
{
    return set_double(a, i, v);
}

KART_API int kart_array_lock(kart_array *a, int64_t timeout_ns)
{
    return lock_it(a, timeout_ns);
}
KART_API int kart_array_unlock(kart_array *a)
{
    return unlock_it(a);
}

KART_API int kart_array_consistent(kart_array *a)
{
    return consistent_it(a);
}

KART_API int kart_array_synchronized(kart_array **out, kart_array *raw, kart_lock *lock)
{
    return synchronized(out, raw, lock);
}

KART_API int kart_array_copy(kart_array **out, kart_array *src)
{
    return copy_array(out, src);
}

/* ---- Value ---- */

#define AV(v) ((v) ? &(v)->a : NULL)

KART_API int kart_value_create(kart_value **out, kart_ctype type, size_t elem_size, unsigned flags)
{
    kart_array *a = NULL;
    int err = out ? array_create(&a, type, elem_size, 1, flags, NULL) : -EINVAL;
    if (!err)
        *out = (kart_value *)a;
    return err;
}

KART_API int kart_value_create_with_lock(kart_value **out, kart_ctype type, size_t elem_size,
                                         kart_lock *lock)
{
    kart_array *a = NULL;
    int err = out && lock ? array_create(&a, type, elem_size, 1, 0, lock) : -EINVAL;
    if (!err)
        *out = (kart_value *)a;
    return err;
}

KART_API int kart_value_synchronized(kart_value **out, kart_value *raw, kart_lock *lock)
{
    kart_array *a = NULL;
    int err = out ? synchronized(&a, AV(raw), lock) : -EINVAL;
    if (!err)
        *out = (kart_value *)a;
    return err;
}

KART_API int kart_value_copy(kart_value **out, kart_value *src)
{
    kart_array *a = NULL;
    int err = out ? copy_array(&a, AV(src)) : -EINVAL;
    if (!err)
        *out = (kart_value *)a;
    return err;
}

KART_API int kart_value_consistent(kart_value *v)
{
    return consistent_it(AV(v));
}

KART_API int kart_value_create_named(kart_value **out, const char *name, kart_ctype type,
                                     size_t elem_size, unsigned flags)
{
    kart_array *a = NULL;
    int err = out ? array_create_named(&a, name, type, elem_size, 1, flags) : -EINVAL;
    if (!err)
        *out = (kart_value *)a;
    return err;
}

KART_API int kart_value_attach(kart_value **out, const char *name, unsigned flags)
{
    kart_array *a = NULL;
    int err = out ? array_attach(&a, name, flags, true) : -EINVAL;
    if (!err)
        *out = (kart_value *)a;
    return err;
}

KART_API void kart_value_free(kart_value *v)
{
    array_free(AV(v));
}
KART_API int kart_value_unlink(kart_value *v)
{
    return kart_array_unlink(AV(v));
}
KART_API const char *kart_value_name(const kart_value *v)
{
    return kart_array_name(AV(v));
}
KART_API kart_ctype kart_value_type(const kart_value *v)
{
    return kart_array_type(AV(v));
}
KART_API size_t kart_value_size(const kart_value *v)
{
    return kart_array_elem_size(AV(v));
}
KART_API void *kart_value_data(const kart_value *v)
{
    return kart_array_data(AV(v));
}
KART_API kart_lock *kart_value_get_lock(const kart_value *v)
{
    return kart_array_get_lock(AV(v));
}
KART_API int kart_value_get(kart_value *v, void *out)
{
    return copy_out(AV(v), 0, 1, out);
}
KART_API int kart_value_set(kart_value *v, const void *in)
{
    return copy_in(AV(v), 0, 1, in);
}
KART_API int kart_value_get_int(kart_value *v, int64_t *out)
{
    return get_int(AV(v), 0, out);
}
KART_API int kart_value_set_int(kart_value *v, int64_t x)
{
    return set_int(AV(v), 0, x);
}
KART_API int kart_value_get_double(kart_value *v, double *out)
{
    return get_double(AV(v), 0, out);
}
KART_API int kart_value_set_double(kart_value *v, double x)
{
    return set_double(AV(v), 0, x);
}
KART_API int kart_value_lock(kart_value *v, int64_t timeout_ns)
{
    return lock_it(AV(v), timeout_ns);
}
KART_API int kart_value_unlock(kart_value *v)
{
    return unlock_it(AV(v));
}

KART_API int kart_value_add(kart_value *v, int64_t delta, int64_t *out)
{
    kart_array *a = AV(v);
    if (!a || !a->lock || !is_int(a->type))
        return -EINVAL;
    int err = guard(a);
    if (err)
        return err;
    int64_t cur, sum;
    err = int_load(a->type, a->data, &cur);
    if (!err && __builtin_add_overflow(cur, delta, &sum))
        err = -ERANGE;
    if (!err)
        err = int_store(a->type, a->data, sum);
    unguard(a);
    if (!err && out)
        *out = sum;
    return err;
}

/*
 * kart/shared.h — typed values and arrays in shared memory (Python's
 * multiprocessing.Value and Array, sharedctypes), raw or guarded by a
 * process-shared lock.
 *
 * An object lives either in an anonymous MAP_SHARED mapping (fork
 * children inherit it: create it before forking) or in a named segment
 * (kart/shm.h) that unrelated processes attach by name. The shared bytes
 * hold a small header (type, element size, count, the lock) followed by
 * the elements; the kart_value / kart_array handle is process-local.
 *
 * Element types: KART_CT_INT8 … KART_CT_UINT64, KART_CT_FLOAT,
 * KART_CT_DOUBLE in the machine's byte order, and KART_CT_BYTES, an
 * opaque element of elem_size bytes (a fixed-size record or string).
 *
 * Locking: with KART_SHARED_LOCK (Python's lock=True) every get and set
 * takes the object's lock (a kart_lock with KART_SYNC_SHARED, in the
 * shared header), so each is atomic with respect to the others;
 * kart_*_lock()/unlock() hold it across a read-modify-write
 * (`with v.get_lock(): v.value += 1`). kart_*_create_with_lock() guards a
 * new object with a lock the caller already has (Python's lock=<a Lock>:
 * one lock for several objects), and kart_*_synchronized() wraps a raw
 * object in a new handle with a lock (Python's sharedctypes.synchronized).
 * Without a lock (flags 0: Python's lock=False, "raw") get and set are
 * plain copies: the caller synchronizes, or gets torn values.
 *
 * A holder that dies (KART_SHARED_ROBUST, a robust lock): the next call
 * that takes the lock — kart_*_lock(), and every get, set, slice, add and
 * copy — returns -EOWNERDEAD, does nothing else, and leaves the lock held
 * by the caller, because the element the dead process was writing may be
 * half-written and only the caller knows what it should hold. Recovery
 * is explicit: look at and repair the bytes (kart_*_data()), then
 * kart_*_consistent() to mark the lock usable, then kart_*_unlock().
 * Unlocking without kart_*_consistent() leaves the lock unrecoverable:
 * every later call that takes it fails with -ENOTRECOVERABLE, in every
 * process, for the object's whole life (the robust-mutex rule of
 * kart/sync.h). A non-robust lock whose holder died is simply never
 * released: avoid it where processes may crash.
 *
 * Fork: the child inherits the handle and the mapping; both processes
 * call _free on their copy. Named objects: the segment's lifetime rules
 * are kart/shm.h's; _free never unlinks the name, _unlink does.
 *
 * Thread safety: thread-safe. A handle never changes after it is made,
 * so any thread may use it, and the calls that take the lock are atomic
 * with respect to each other in every thread and process; _free must not
 * race other calls on the same handle. The raw calls (no lock) and
 * kart_*_data() copy or expose bytes without any synchronization.
 *
 * Index and slice errors are -ERANGE; type mismatches -EINVAL.
 */
#ifndef KART_SHARED_H
#define KART_SHARED_H

#include <kart/common.h>
#include <kart/sync.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kart_ctype {
    KART_CT_INT8 = 1,
    KART_CT_UINT8,
    KART_CT_INT16,
    KART_CT_UINT16,
    KART_CT_INT32,
    KART_CT_UINT32,
    KART_CT_INT64,
    KART_CT_UINT64,
    KART_CT_FLOAT,
    KART_CT_DOUBLE,
    KART_CT_BYTES,
} kart_ctype;

/* Guard every access with a process-shared lock. */
#define KART_SHARED_LOCK 0x1u
/* With KART_SHARED_LOCK: a robust lock (see above). */
#define KART_SHARED_ROBUST 0x2u
/* Named objects: register the segment with the tracker (KART_SHM_TRACK). */
#define KART_SHARED_TRACK 0x4u

typedef struct kart_array kart_array;
typedef struct kart_value kart_value;

/* ---- Array ---- */

/*
 * Creates an array of count elements, zero-filled, in an anonymous shared
 * mapping. elem_size: 0 or the type's size for numeric types; the element
 * size (> 0) for KART_CT_BYTES. flags: KART_SHARED_LOCK, KART_SHARED_ROBUST.
 * Errors: -EINVAL (out NULL, unknown type, bad elem_size, count 0, unknown
 * flags, ROBUST without LOCK, or TRACK here), -ENOMEM (also when
 * count × elem_size overflows), and kart_lock_init's.
 */
KART_API int kart_array_create(kart_array **out, kart_ctype type, size_t elem_size, size_t count,
                               unsigned flags);

/* As kart_array_create, in a new named segment (kart_shm_create, name NULL
 * for a generated one); flags may add KART_SHARED_TRACK. Errors: those of
 * kart_array_create (less TRACK) and of kart_shm_create. */
KART_API int kart_array_create_named(kart_array **out, const char *name, kart_ctype type,
                                     size_t elem_size, size_t count, unsigned flags);

/*
 * Attaches an array created by kart_array_create_named, by name; its
 * type, size and lock come from the segment. flags: 0.
 * Errors: -EINVAL (out NULL, flags), kart_shm_attach's (-ENOENT …),
 * -EAGAIN (the creator has not finished setting it up: retry), -EPROTO
 * (the segment does not hold a kart array: wrong header or size).
 */
KART_API int kart_array_attach(kart_array **out, const char *name, unsigned flags);

/*
 * As kart_array_create, guarded by lock, a lock the caller owns (Python's
 * Array(..., lock=<a Lock>)): several objects may share one. The lock must
 * outlive the array and, to guard it between processes, be a
 * KART_SYNC_SHARED lock in memory every process maps at the same address
 * (another object's lock, or a kart/shm.h segment mapped before fork).
 * _free leaves it alone. Errors: -EINVAL (out or lock NULL, and as
 * kart_array_create), -ENOMEM.
 */
KART_API int kart_array_create_with_lock(kart_array **out, kart_ctype type, size_t elem_size,
                                         size_t count, kart_lock *lock);

/*
 * Python's sharedctypes.synchronized(): a new handle over raw's elements
 * (the same bytes, not a copy), guarded by lock, or, with lock NULL, by a
 * new KART_SYNC_SHARED lock in a shared page of the new handle's own
 * (fork children made afterwards share it; a process that attaches a
 * named array by name does not see it). raw stays raw: its own get and set
 * take no lock. Either handle may be freed first. Errors: -EINVAL (out or
 * raw NULL, or raw already has a lock), -ENOMEM.
 */
KART_API int kart_array_synchronized(kart_array **out, kart_array *raw, kart_lock *lock);

/*
 * Python's sharedctypes.copy(): a new raw anonymous array with src's type
 * and elements, read under src's lock if it has one. Errors: -EINVAL (out
 * or src NULL), -ENOMEM, and the lock errors of kart_array_get.
 */
KART_API int kart_array_copy(kart_array **out, kart_array *src);

/* Unmaps and frees the handle (never unlinks); the bytes live on while
 * another handle (synchronized()) or process maps them. NULL is ignored. */
KART_API void kart_array_free(kart_array *a);

/* Unlinks the segment's name (kart_shm_unlink). Errors: -EINVAL (NULL, or
 * an anonymous array), -ENOENT, -EACCES. */
KART_API int kart_array_unlink(kart_array *a);

/* The segment's name, or NULL (anonymous, or a NULL a). */
KART_API const char *kart_array_name(const kart_array *a);

/* Number of elements; 0 for NULL. */
KART_API size_t kart_array_len(const kart_array *a);

/* Element type; 0 for NULL. */
KART_API kart_ctype kart_array_type(const kart_array *a);

/* Size of one element in bytes; 0 for NULL. */
KART_API size_t kart_array_elem_size(const kart_array *a);

/* The first element (aligned to 64 bytes), for raw access; NULL for NULL. */
KART_API void *kart_array_data(const kart_array *a);

/* The guarding lock, or NULL (no KART_SHARED_LOCK, or a NULL a). */
KART_API kart_lock *kart_array_get_lock(const kart_array *a);

/* Copies element i into out (elem_size bytes), under the lock if any.
 * Errors: -EINVAL (NULL), -ERANGE (i ≥ len), and with a lock -EDEADLK
 * (the caller holds it), -EOWNERDEAD (nothing copied; the caller now
 * holds the lock: see "A holder that dies" above), -ENOTRECOVERABLE. The
 * other element calls below return the same lock errors. */
KART_API int kart_array_get(kart_array *a, size_t i, void *out);

/* Stores element i from in. Errors: -EINVAL (NULL), -ERANGE (i ≥ len). */
KART_API int kart_array_set(kart_array *a, size_t i, const void *in);

/* Copies elements [start, stop) into out, all under one hold of the lock.
 * Errors: -EINVAL (NULL a, or out NULL with a non-empty slice), -ERANGE
 * (start > stop or stop > len). */
KART_API int kart_array_get_slice(kart_array *a, size_t start, size_t stop, void *out);

/* Stores elements [start, stop) from in. Errors: as kart_array_get_slice. */
KART_API int kart_array_set_slice(kart_array *a, size_t start, size_t stop, const void *in);

/* Element i of an integer array as int64_t. Errors: -EINVAL (NULL, or not
 * an integer type), -ERANGE (i ≥ len, or a uint64 above INT64_MAX). */
KART_API int kart_array_get_int(kart_array *a, size_t i, int64_t *out);

/* Stores v into element i of an integer array. Errors: -EINVAL (NULL, not
 * an integer type), -ERANGE (i ≥ len, or v does not fit the type). */
KART_API int kart_array_set_int(kart_array *a, size_t i, int64_t v);

/* Element i of any numeric array as a double. Errors: -EINVAL (NULL, or
 * KART_CT_BYTES), -ERANGE (i ≥ len). */
KART_API int kart_array_get_double(kart_array *a, size_t i, double *out);

/* Stores v into element i of a float or double array. Errors: -EINVAL
 * (NULL, not KART_CT_FLOAT/DOUBLE), -ERANGE (i ≥ len). */
KART_API int kart_array_set_double(kart_array *a, size_t i, double v);

/*
 * Acquires the array's lock (kart_lock_acquire: timeout < 0 waits, 0 tries).
 * Errors: -EINVAL (NULL, or no lock), -ETIMEDOUT (0 included), -EDEADLK (the
 * caller already holds it: get/set would deadlock, use kart_array_data),
 * and for robust locks -EOWNERDEAD (acquired; repair, then
 * kart_array_consistent) and -ENOTRECOVERABLE.
 */
KART_API int kart_array_lock(kart_array *a, int64_t timeout_ns);

/* Releases it. Errors: -EINVAL (NULL, or no lock), -EPERM (not held). */
KART_API int kart_array_unlock(kart_array *a);

/* After -EOWNERDEAD (from any call): marks the lock usable again; the
 * caller still holds it and unlocks it next. Errors: -EINVAL (NULL, no
 * lock, or a lock not in the owner-died state), -EPERM (the caller does
 * not hold it). */
KART_API int kart_array_consistent(kart_array *a);

/* ---- Value: one element ---- */

/* As kart_array_create with count 1. */
KART_API int kart_value_create(kart_value **out, kart_ctype type, size_t elem_size, unsigned flags);
/* As kart_array_create_with_lock with count 1. */
KART_API int kart_value_create_with_lock(kart_value **out, kart_ctype type, size_t elem_size,
                                         kart_lock *lock);
/* As kart_array_synchronized, kart_array_copy. */
KART_API int kart_value_synchronized(kart_value **out, kart_value *raw, kart_lock *lock);
KART_API int kart_value_copy(kart_value **out, kart_value *src);
/* As kart_array_create_named with count 1. */
KART_API int kart_value_create_named(kart_value **out, const char *name, kart_ctype type,
                                     size_t elem_size, unsigned flags);
/* As kart_array_attach; -EPROTO also when the segment holds an array of
 * more than one element. */
KART_API int kart_value_attach(kart_value **out, const char *name, unsigned flags);
/* As kart_array_free, kart_array_unlink. */
KART_API void kart_value_free(kart_value *v);
KART_API int kart_value_unlink(kart_value *v);
/* As kart_array_name, kart_array_type, kart_array_elem_size (the value's
 * size in bytes), kart_array_data, kart_array_get_lock: NULL or 0 for a
 * NULL v. */
KART_API const char *kart_value_name(const kart_value *v);
KART_API kart_ctype kart_value_type(const kart_value *v);
KART_API size_t kart_value_size(const kart_value *v);
KART_API void *kart_value_data(const kart_value *v);
KART_API kart_lock *kart_value_get_lock(const kart_value *v);
/* As kart_array_get / set … at index 0 (so never -ERANGE from the index). */
KART_API int kart_value_get(kart_value *v, void *out);
KART_API int kart_value_set(kart_value *v, const void *in);
KART_API int kart_value_get_int(kart_value *v, int64_t *out);
KART_API int kart_value_set_int(kart_value *v, int64_t x);
KART_API int kart_value_get_double(kart_value *v, double *out);
KART_API int kart_value_set_double(kart_value *v, double x);
/*
 * Adds delta to an integer value under its lock and stores the result in
 * *out (NULL: not wanted): the read-modify-write Python spells
 * `with v.get_lock(): v.value += delta`. Errors: -EINVAL (NULL, not an
 * integer type, or no lock), -ERANGE (the sum does not fit the type;
 * nothing stored), -EDEADLK (the caller holds the lock), -EOWNERDEAD (a
 * holder died: nothing added, and the caller now holds the lock; repair,
 * kart_value_consistent, kart_value_unlock), -ENOTRECOVERABLE.
 */
KART_API int kart_value_add(kart_value *v, int64_t delta, int64_t *out);
/* As kart_array_lock, kart_array_unlock, kart_array_consistent. */
KART_API int kart_value_lock(kart_value *v, int64_t timeout_ns);
KART_API int kart_value_unlock(kart_value *v);
KART_API int kart_value_consistent(kart_value *v);

/* ---- ShareableList ---- */

/*
 * Python 3.13's multiprocessing.shared_memory.ShareableList: a list of a
 * fixed length whose items are int (int64_t), float (double), bool, str
 * (UTF-8), bytes or None, in a named segment (kart/shm.h) that other
 * processes attach by name. The segment has Python's own layout, byte for
 * byte (core/shm/shlist.c describes it): a Python process attaches a list
 * kart made with ShareableList(name="kart-…") (the name without its
 * leading '/'), and kart attaches one Python made with
 * kart_shlist_attach(&l, "/" + its shm.name). tests/py/shlist_peer.py
 * shows both ways.
 *
 * Each item keeps the slot it was made with: 8 bytes for int, float, bool
 * and None, 8 × (len / 8 + 1) bytes for str and bytes (Python's rule). Any
 * item may be set to any type that fits its slot; a str or bytes longer
 * than the slot is refused (-EMSGSIZE, Python's ValueError). As in Python,
 * str and bytes lose their trailing NUL bytes on the way back.
 *
 * Thread safety: one thread at a time for writers, as in Python: the list
 * has no lock. Concurrent gets are safe with each other; a get racing a
 * set of the same item may return the old type with new bytes or a mix
 * (never anything outside the item's slot: each get checks the item
 * before reading it, -EPROTO otherwise). Serialize writers with a lock in
 * shared memory (a Value's, say). The handle never changes after it is
 * made; _free must not race other calls on it. Fork: the child inherits
 * the handle; each process frees its own copy.
 */
typedef struct kart_shlist kart_shlist;

/* The longest str or bytes item (its slot's format "<n>s" must fit the 8
 * bytes Python gives a format). */
#define KART_SHLIST_MAX_BYTES ((size_t)9999991)

typedef enum kart_shlist_type {
    KART_SHLIST_INT = 1, /* i */
    KART_SHLIST_FLOAT,   /* f */
    KART_SHLIST_BOOL,    /* b */
    KART_SHLIST_STR,     /* data, len: UTF-8 */
    KART_SHLIST_BYTES,   /* data, len */
    KART_SHLIST_NONE,
} kart_shlist_type;

/* One item; only the fields its type names are read or written. */
typedef struct kart_shlist_item {
    kart_shlist_type type;
    int64_t i;
    double f;
    bool b;
    const void *data;
    size_t len;
} kart_shlist_item;

/*
 * Creates a list of items[0..n) (n 0 allowed) in a new named segment
 * (name NULL: a generated one, read it with kart_shlist_name). flags:
 * KART_SHARED_TRACK (the segment's name is unlinked by the tracker when
 * this process and its fork children are gone, kart/shm.h).
 * Errors: -EINVAL (out NULL, items NULL with n > 0, unknown flags, an
 * item of unknown type or with NULL data and a length), -EILSEQ (a str
 * that is not well-formed UTF-8), -EMSGSIZE (a str or bytes longer than
 * KART_SHLIST_MAX_BYTES), -ENOMEM, and kart_shm_create's (-EEXIST, an
 * invalid name's -EINVAL, …). Nothing is left behind on failure.
 */
KART_API int kart_shlist_create(kart_shlist **out, const char *name, const kart_shlist_item *items,
                                size_t n, unsigned flags);

/*
 * Attaches the list in the named segment (made by kart or by Python).
 * flags: 0. Errors: -EINVAL (out NULL, flags), kart_shm_attach's
 * (-ENOENT, -EACCES, …), -EPROTO (the segment does not hold a list: its
 * count or offsets do not fit its size), -ENOMEM.
 */
KART_API int kart_shlist_attach(kart_shlist **out, const char *name, unsigned flags);

/* Unmaps and frees the handle (never unlinks). NULL is ignored. */
KART_API void kart_shlist_free(kart_shlist *l);

/* Unlinks the segment's name (kart_shm_unlink; Python's shm.unlink()).
 * Errors: -EINVAL (NULL), -ENOENT, -EACCES. */
KART_API int kart_shlist_unlink(kart_shlist *l);

/* The segment's name ("/…"), valid until _free; NULL for NULL. */
KART_API const char *kart_shlist_name(const kart_shlist *l);

/* The number of items; 0 for NULL. */
KART_API size_t kart_shlist_len(const kart_shlist *l);

/*
 * Reads item i into *out. A str or bytes item is copied into buf (cap
 * bytes; a NUL follows it when there is room) and out->data points there.
 * Errors: -EINVAL (l or out NULL, buf NULL with cap > 0), -ERANGE (i ≥
 * len), -ENOBUFS (a str or bytes longer than cap: only out->type and
 * out->len, the size needed, are written), -EPROTO (the item's format or
 * code is not one Python writes, or does not fit its slot).
 */
KART_API int kart_shlist_get(kart_shlist *l, size_t i, kart_shlist_item *out, void *buf,
                             size_t cap);

/*
 * Stores item at i (any type; the slot stays the same). Errors: -EINVAL
 * (l or item NULL, an unknown type, NULL data with a length), -EILSEQ (a
 * str that is not UTF-8), -ERANGE (i ≥ len), -EMSGSIZE (a str or bytes
 * longer than item i's slot: nothing stored).
 */
KART_API int kart_shlist_set(kart_shlist *l, size_t i, const kart_shlist_item *item);

/*
 * Python's count(value) / index(value), with Python's == (1, 1.0 and true
 * are equal; str never equals bytes). *n gets the number of equal items;
 * *index the first one's. Errors: -EINVAL (l, value or the out pointer
 * NULL, a bad value as in _set), -EILSEQ, -EPROTO (as in _get), and for
 * index -ENOENT (no item equals value, Python's ValueError).
 */
KART_API int kart_shlist_count(kart_shlist *l, const kart_shlist_item *value, size_t *n);
KART_API int kart_shlist_index(kart_shlist *l, const kart_shlist_item *value, size_t *index);

#ifdef __cplusplus
}
#endif
#endif

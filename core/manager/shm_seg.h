/*
 * core/manager/shm_seg.h — the same-host fast path's shared segment: one
 * memfd per shared object (a dict or a Queue), reserved large and sparse
 * (MAP_NORESERVE: a page costs only once touched), with a header (a
 * robust process-shared lock, a power-of-two block allocator) and the
 * object's structure, every link an offset from the segment's start so
 * that each process may map it anywhere. Private to core/manager.
 *
 * Crash safety. Everything in a segment changes under its robust lock, and
 * every change is ordered so that a holder killed at any instruction
 * leaves a state the next locker can repair: blocks are linked in by one
 * final 8-byte store, unlinked before they are freed, and the derived
 * parts (a dict's index and counts, a queue's tail and count) are rebuilt
 * from the primary ones when kart_lock_acquire says -EOWNERDEAD. The worst
 * a crash costs is a leaked block, never a double free or a lost entry
 * that other processes still see.
 */
#ifndef KART_MGR_SHM_SEG_H
#define KART_MGR_SHM_SEG_H

#include "mgr_private.h"

#include <kart/sync.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MSHM_MAGIC 0x6b617274736d6731ull /* "kartsmg1" */
#define MSHM_CLASSES 48
#define MSHM_MIN_CLASS 5 /* 32-byte blocks */
#define MSHM_DEFAULT_SIZE ((size_t)256 << 20)
#define MSHM_MIN_SIZE ((size_t)64 << 10)

/* Namespace and Value use the dict's layout: a Namespace is a dict of
 * str keys, a Value a dict of two, 0: the typecode, 1: the value. */
enum { MSHM_DICT = 1, MSHM_QUEUE = 2, MSHM_NS = 3, MSHM_VALUE = 4 };

typedef struct mshm_dict {
    uint64_t table; /* offset of the current dtab */
} mshm_dict;

typedef struct mshm_queue {
    uint64_t head, tail; /* offsets of qnodes; 0: none */
    uint64_t count;      /* derived: repaired from the list */
    uint64_t unfinished; /* JoinableQueue's */
    int64_t maxsize;     /* <= 0: unbounded */
    /* futex words: bumped under the lock on every put / get / last
     * task_done, waited on without it */
    _Atomic uint32_t puts, gets, done;
    /* someone sleeps on the word: the waker clears it and wakes all
     * (a killed sleeper's flag costs one wasted wake, never a hang) */
    _Atomic uint32_t wput, wget, wjoin;
} mshm_queue;

typedef struct mshm_hdr {
    uint64_t magic;
    uint32_t kind;
    uint32_t protocol; /* the pickle protocol values are stored in */
    uint64_t size;
    uint64_t seed;            /* the dict's hash seed */
    int32_t server_pid;       /* for waiters: a dead server ends their wait */
    _Atomic uint32_t closed;  /* the object died on the server */
    _Atomic uint32_t repairs; /* times a dead holder's state was repaired */
    uint32_t pad_;
    kart_lock lock; /* KART_SYNC_SHARED | KART_SYNC_ROBUST */
    uint64_t top;   /* bump allocator: the next untouched offset */
    uint64_t freel[MSHM_CLASSES];
    union {
        mshm_dict d;
        mshm_queue q;
    } u;
} mshm_hdr;

/* A process's handle on a segment. */
typedef struct mshm {
    int fd; /* the server's (kept to pass to clients); -1 in a client */
    char *base;
    size_t size;
    mshm_hdr *h;
} mshm;

#define MSHM_AT(s, off) ((void *)((s)->base + (off)))

/* Server: a new segment of kind (size bytes reserved, 0: the default).
 * Errors: -ENOMEM, -EMFILE, ... (memfd_create, ftruncate, mmap). */
int mgr__shm_new(mshm **out, int kind, size_t size, int protocol);
/* Client: maps the segment behind fd (taken on success, closed after
 * mapping). Errors: -EPROTO (not a segment of kind), mmap's. */
int mgr__shm_map(mshm **out, int fd, int kind);
/* Unmaps (and closes the server's fd). NULL ok. */
void mgr__shm_unmap(mshm *s);
/* Marks the segment closed (the object died) and wakes every sleeper. */
void mgr__shm_close(mshm *s);

/* Takes the lock, repairing the structure after a dead holder.
 * Errors: -ENOTRECOVERABLE (never expected). */
int mgr__shm_lock(mshm *s);
void mgr__shm_unlock(mshm *s);

/* The allocator (lock held): the offset of n usable bytes, 0 on -ENOSPC. */
uint64_t mgr__shm_alloc(mshm *s, size_t n);
void mgr__shm_free(mshm *s, uint64_t off);

/* A value blob: {uint64 len; bytes}. Returns its offset, 0: -ENOSPC. */
uint64_t mgr__shm_blob(mshm *s, const void *p, size_t n);
const void *mgr__shm_blob_data(mshm *s, uint64_t off, size_t *n);
/* Unpickles a blob; 0 or -ENOMEM / KART_EBADREPLY. */
int mgr__shm_blob_obj(mshm *s, uint64_t off, kart_obj **out);

/* A key's canonical bytes: equal exactly when Python's == says the keys
 * are equal (1, 1.0 and True alike; 'a' and b'a' not). Into buf (cap
 * bytes) or a malloc'd buffer (*heap set, the caller frees it).
 * Errors: -EINVAL (unhashable), -ENOMEM. */
typedef struct mshm_key {
    uint8_t *p;
    size_t n, cap;
    bool heap;
    uint8_t inl[192];
} mshm_key;
int mgr__shm_key(const kart_obj *k, mshm_key *out);
void mgr__shm_key_done(mshm_key *k);
uint64_t mgr__shm_hash(const mshm *s, const mshm_key *k);

/* Waits while *word == seen (lock NOT held) until deadline (absolute,
 * negative forever). 0 (woken or spurious), -ETIMEDOUT, -ECONNRESET (the
 * object or its server died), -ECANCELED (srv stopping). */
int mgr__shm_wait(mshm *s, _Atomic uint32_t *word, uint32_t seen, int64_t deadline,
                  const kart_manager_server *srv);
/* Bumps *word (lock held) and wakes its sleepers if *flag says so. */
void mgr__shm_bump(mshm *s, _Atomic uint32_t *word, _Atomic uint32_t *flag);

/* Structure repair after a dead holder (shm_dict.c, shm_queue.c). */
void mgr__shm_dict_repair(mshm *s);
void mgr__shm_queue_repair(mshm *s);
/* Builds the structure in a fresh segment from an object's plain data
 * (server, at promotion; the segment is not shared yet). */
int mgr__shm_dict_fill(mshm *s, const kart_obj *d);
int mgr__shm_queue_push(mshm *s, const void *p, size_t n);

#endif

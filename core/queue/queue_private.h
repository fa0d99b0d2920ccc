/*
 * core/queue_private.h — the shared layout of a kart queue, the memory
 * seam (core/queue_mem.c: anonymous or named shared mappings). The
 * steps of a put and a get are fault points (queue_put_locked ... in
 * core/base/fault.h), where the crash tests kill the process.
 *
 * Why this design (two robust locks around a byte ring, commits by single
 * stores) rather than a lock-free MPMC ring (Vyukov slots): in a lock-free
 * ring a writer reserves space before it writes, and a writer killed
 * between the two leaves a hole that no survivor can tell from a slow
 * writer; telling them apart needs the kernel's robust-futex machinery
 * anyway, which is what a robust lock is. Here:
 *  - producers serialize on plock, consumers on clock, so one producer and
 *    one consumer never touch a common lock: 1 -> 1 runs as a single-
 *    producer single-consumer ring, each side's lock staying in its cache;
 *  - the producers' state is one 64-bit word, tail = (puts << 32) | offset,
 *    and the consumers' is head = (gets << 32) | offset. A put writes its
 *    message beyond tail, then stores tail once; a get copies the message
 *    out, then stores head once. A holder killed before its store leaves
 *    the ring as it was (bytes beyond tail are not yet anybody's); killed
 *    after, the operation happened. So a successor that gets -EOWNERDEAD
 *    has nothing to repair: it marks the lock consistent and goes on;
 *  - the counts in the high halves give qsize (puts - gets) and the
 *    JoinableQueue's unfinished tasks (puts - dones) without a second
 *    store that a crash could separate from the first, and the equal
 *    offsets of an empty and a full ring are told apart by the counts;
 *  - waiters sleep on a futex word of their own (data_seq, space_seq,
 *    dones) after announcing themselves in a flag (c_wait, p_wait,
 *    j_wait); the other side, after its commit, wakes only when the flag
 *    is set. A sleeper never sleeps more than KART__QUEUE_NAP_NS at a time,
 *    so that a peer killed between its commit and its wake-up delays it,
 *    never strands it.
 */
#ifndef KART_QUEUE_PRIVATE_H
#define KART_QUEUE_PRIVATE_H

#include "futex.h"

#include <kart/queue.h>
#include <kart/sync.h>
#include <pthread.h>

#define KART__QUEUE_MAGIC UINT64_C(0x6b61727471756532) /* "kartque2" */
#define KART__QUEUE_HDR 4u                             /* the length before each message */
#define KART__QUEUE_JOINABLE 0x1u                      /* kart_queue.flags: options.joinable */
#define KART__QUEUE_MEMFD 0x2u /* kart_queue.flags: in a memfd (spawn, forkserver contexts) */
#define KART__QUEUE_NAP_NS (100 * INT64_C(1000000))

/* A side's lock: the C library's robust, process-shared mutex, used
 * directly rather than through kart_lock. The queue needs none of
 * kart_lock's extras (timed tries, the -ENOTRECOVERABLE guard, the
 * owner and word mirrors: a holder here never leaves a lock inconsistent
 * and always releases its own), and on the one-message path they cost
 * about a fifth of the time. held mirrors the mutex (1 from acquiring to
 * releasing) so that a would-be taker can spin on a plain load. */
typedef struct kart__qlock {
    pthread_mutex_t m;
    _Atomic uint32_t held;
} kart__qlock;

struct kart_queue {
    _Atomic uint64_t magic; /* stored last when set up: attachers check it */
    uint64_t map_size;      /* bytes mapped, this header included */
    uint32_t cap;           /* ring bytes, a multiple of 8 */
    uint32_t flags;         /* KART__QUEUE_* */
    /* KART__QUEUE_MEMFD: the memfd's number in its creator (and in the
     * children it was handed to through kart_process_options.fds, which
     * keep the number), and its identity, so that a process tells its own
     * copy from an unrelated fd of that number. */
    int32_t fd;
    uint32_t pad_;
    uint64_t fd_dev, fd_ino;

    /* The producers' side. */
    _Alignas(64) kart__qlock plock;
    _Alignas(64) _Atomic uint64_t tail;
    _Atomic uint64_t head_seen; /* producers' last look at head (a hint) */
    _Atomic uint32_t c_wait;    /* consumers sleep on data_seq */
    _Atomic uint32_t data_seq;
    _Atomic uint32_t closed;

    /* The consumers' side. */
    _Alignas(64) kart__qlock clock;
    _Alignas(64) _Atomic uint64_t head;
    _Atomic uint64_t tail_seen; /* consumers' last look at tail (a hint) */
    _Atomic uint32_t p_wait;    /* producers sleep on space_seq */
    _Atomic uint32_t space_seq;

    /* JoinableQueue. */
    _Alignas(64) _Atomic uint32_t dones;
    _Atomic uint32_t j_wait;

    _Alignas(64) unsigned char ring[];
};

/* ---- the memory seam: core/queue_mem.c ---- */

/* Maps size zeroed shared bytes: anonymous (name NULL) or a new named
 * segment (O_EXCL, mode). Returns 0 and *out, or a negative errno. */
int kart__queue_map_new(const char *name, mode_t mode, size_t size, void **out);
/* Maps the whole of an existing named segment: *out and *size. */
int kart__queue_map_open(const char *name, void **out, size_t *size);
int kart__queue_unmap(void *p, size_t size);
/* Maps size zeroed bytes of a new memfd: *out, and the fd (close-on-exec). */
int kart__queue_map_memfd(size_t size, void **out, int *fd);
/* queue_fd.c: records the memfd in a new queue's header; closes this
 * process's copy of it (kart_queue_free). */
int kart__queue_fd_record(kart_queue *q, int fd);
void kart__queue_fd_release(kart_queue *q);
int kart__queue_name_unlink(const char *name);
/* -EINVAL unless name is "/x..." with no other slash and at most 250 bytes. */
int kart__queue_name_check(const char *name);

#endif

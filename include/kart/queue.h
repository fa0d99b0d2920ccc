/*
 * kart/queue.h — multiprocessing's Queue, SimpleQueue and JoinableQueue for
 * C: a bounded queue of variable-size messages (byte strings), for many
 * producers and many consumers, threads and processes alike, with no
 * feeder thread: a message is in the queue when kart_queue_put() returns.
 *
 * Where it lives: the whole queue (its state and its ring of messages) is
 * one shared mapping, and a kart_queue * points at it. An anonymous queue
 * (kart_queue_create() without a name) is inherited over fork(): the
 * child uses the same pointer. A named queue (options.name, "/name") can
 * also be attached by unrelated processes with kart_queue_open(); it stays
 * in /dev/shm until kart_queue_unlink(). kart_queue_free() unmaps the
 * calling process's view only; the queue itself lives while any process
 * maps it. Shutting a queue down (kart_queue_shutdown) ends it for every
 * process that uses it; freeing a handle ends only this process's use of
 * it. A queue can also be placed in memory the caller shares by
 * other means (a kart/shm.h segment, a memfd sent over a unix socket, a
 * file): kart_queue_init() there, kart_queue_attach() in the others; then
 * the caller owns the memory and kart_queue_free() leaves it mapped.
 *
 * Capacity is in bytes: each message takes its length plus a 4-byte
 * header, rounded up to a multiple of 8. A put waits while the message
 * does not fit; a message that could never fit (longer than the capacity
 * less 4) is refused with -EMSGSIZE.
 *
 * SimpleQueue (kart_simplequeue_create) is a Queue with a large default
 * capacity (KART_SIMPLEQUEUE_CAPACITY, reserved but touched only as it
 * fills) and no task accounting: Python's SimpleQueue is unbounded; here a
 * put into a SimpleQueue that holds 16 MiB waits like any other.
 * JoinableQueue (options.joinable) adds task_done() and join().
 *
 * Crash safety: a producer or consumer killed at any instant, even SIGKILL
 * inside a call, never corrupts the queue. A message is committed by one
 * atomic store after it is fully written, and taken by one atomic store
 * after it is fully copied out: a message whose put returned is delivered
 * exactly once (unless a consumer dies between taking it and returning it
 * to its caller, where it is gone with that consumer), a half-written one
 * never. Producers (and consumers) serialize on a robust process-shared
 * lock; a dead holder's successor finds nothing to repair and goes on.
 *
 * Thread safety: thread-safe. Every call may run from any thread of any
 * process that maps the queue, at once, except kart_queue_free(), which
 * must not race this process's other calls on the same handle. Timeouts are int64_t nanoseconds on
 * CLOCK_MONOTONIC: negative waits forever, 0 never waits. A blocking call
 * spins briefly, then sleeps on a futex. Timeouts bound the wait for room
 * or for a message; the internal locks, held only while a message is
 * copied, are always taken.
 */
#ifndef KART_QUEUE_H
#define KART_QUEUE_H

#include <kart/common.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_queue kart_queue;

#define KART_QUEUE_DEFAULT_CAPACITY ((size_t)1 << 20) /* 1 MiB */
#define KART_SIMPLEQUEUE_CAPACITY ((size_t)16 << 20)  /* 16 MiB */
#define KART_QUEUE_MIN_CAPACITY ((size_t)16)
#define KART_QUEUE_MAX_CAPACITY ((size_t)0xFFFFFFF8u) /* 4 GiB less 8 */

/* All zero (or a NULL pointer): anonymous, default capacity, plain. */
typedef struct kart_queue_options {
    size_t capacity;  /* bytes; 0: KART_QUEUE_DEFAULT_CAPACITY. Rounded up to
                       * a multiple of 8. */
    bool joinable;    /* a JoinableQueue: task_done() and join() */
    const char *name; /* NULL: anonymous, shared with fork children; else
                       * "/name" (one leading slash, no other, at most 250
                       * bytes): a named queue others may kart_queue_open() */
    mode_t mode;      /* named queues: permission bits; 0: 0600 */
    /* The start method of the children that will use the queue (Python's
     * ctx.Queue()); NULL: the default start method's. Under spawn and
     * forkserver an anonymous queue lives in a memfd (a fresh exec
     * inherits no mapping): name kart_queue_fd(q) in the child's
     * kart_process_options.fds and its number in the argument, and the
     * child calls kart_queue_from_fd(). Under fork it is an anonymous
     * mapping, inherited. Ignored for named queues. */
    const struct kart_context *context;
} kart_queue_options;

/*
 * The descriptor that carries a queue made under a spawn or forkserver
 * context to a child: name it in kart_process_options.fds (the child
 * gets it at this number) and pass the number in the argument. It
 * belongs to the queue: kart_queue_free() closes it.
 * Errors: -EINVAL (q NULL or not a queue), -ENOTSUP (the queue has no
 * descriptor: made under fork, named (use its name), or placed with
 * kart_queue_init), -EBADF (this process does not have it at that number:
 * it mapped the queue from an fd of another number).
 */
KART_API int kart_queue_fd(const kart_queue *q);

/*
 * In a child: maps the queue behind fd (from kart_queue_fd() in the
 * parent). Takes fd on success (API rule 8): kart_queue_free() closes it
 * (or it is closed at once when its number is not the creator's); on
 * error the caller keeps it.
 * Errors: -EINVAL (q NULL, fd negative, fd is not the memfd of a kart
 * queue), -EBADF (fd not open), -EAGAIN (its creator has not finished
 * setting it up), -ENOMEM.
 */
KART_API int kart_queue_from_fd(kart_queue **q, int fd);

/* Creates a queue (opts NULL: anonymous, default capacity, plain).
 * Errors: -EINVAL (q NULL, capacity outside [KART_QUEUE_MIN_CAPACITY,
 * KART_QUEUE_MAX_CAPACITY], a badly formed name), -EEXIST (a queue or
 * segment of that name exists), -ENOMEM, and for named queues the errors
 * of shm_open/ftruncate (-EACCES, -ENOSPC, -EMFILE...). On error nothing
 * is left behind (no mapping, no name) and *q is not written. */
KART_API int kart_queue_create(kart_queue **q, const kart_queue_options *opts);

/* A SimpleQueue: anonymous, KART_SIMPLEQUEUE_CAPACITY, no task
 * accounting. Errors: -EINVAL (q NULL), -ENOMEM. */
KART_API int kart_simplequeue_create(kart_queue **q);

/* A JoinableQueue: anonymous, `capacity` bytes (0: the default).
 * Errors: those of kart_queue_create. */
KART_API int kart_joinablequeue_create(kart_queue **q, size_t capacity);

/* Attaches the named queue another process created. Errors: -EINVAL (q or
 * name NULL, a badly formed name, a segment that is not a kart queue),
 * -ENOENT (no such name), -EAGAIN (its creator has not finished setting it
 * up: try again; not a timeout), -EACCES, -EMFILE, -ENOMEM. */
KART_API int kart_queue_open(kart_queue **q, const char *name);

/* *bytes gets the memory a queue of `capacity` bytes needs in caller-
 * provided memory (kart_queue_init). Errors: -EINVAL (bytes NULL, capacity
 * out of range, as in kart_queue_create). */
KART_API int kart_queue_footprint(size_t capacity, size_t *bytes);

/* Sets up a queue in caller-provided shared memory: mem (64-byte aligned,
 * zero-filled or not), size bytes, at least the footprint of
 * opts->capacity; opts as kart_queue_create's, without a name (NULL:
 * every default). Other processes mapping the same memory, at any
 * address, call kart_queue_attach(). Errors: -EINVAL (q or mem NULL, mem
 * misaligned, capacity out of range, a name or mode given), -ENOSPC (size
 * below the footprint), and those of setting up its robust mutexes
 * (-ENOMEM, -ENOTSUP). */
KART_API int kart_queue_init(kart_queue **q, void *mem, size_t size,
                             const kart_queue_options *opts);

/* Uses a queue another process set up with kart_queue_init() in memory
 * this one maps at mem. Errors: -EINVAL (q or mem NULL, misaligned, not a
 * kart queue, or one that kart_queue_create made), -ENOSPC (size smaller
 * than the queue), -EAGAIN (not set up yet: try again). */
KART_API int kart_queue_attach(kart_queue **q, void *mem, size_t size);

/* Removes a queue's name; processes that map it keep using it. Errors:
 * -EINVAL (badly formed name), -ENOENT, -EACCES. */
KART_API int kart_queue_unlink(const char *name);

/* Releases the calling process's handle: unmaps its view (other processes
 * keep theirs; the queue is not shut down, see kart_queue_shutdown). q
 * must not be used afterwards by this process, nor by threads of it that
 * are still inside a call. A queue in caller-provided memory
 * (kart_queue_init) is left as it is: the caller unmaps it. NULL (and a
 * pointer that is not a queue) is ignored. */
KART_API void kart_queue_free(kart_queue *q);

/* Puts one message of len bytes (0 allowed), waiting up to timeout_ns for
 * room. Returns 0. Errors: -EINVAL (q NULL, msg NULL with len > 0),
 * -EMSGSIZE (it can never fit: len > capacity - 4), -ESHUTDOWN (the queue
 * is shut down), -ETIMEDOUT (no room within the timeout, 0 included),
 * -EDEADLK (called again by a thread inside a put of this queue: from a
 * signal handler). */
KART_API int kart_queue_put(kart_queue *q, const void *msg, size_t len, int64_t timeout_ns);

/* Puts msgs[0..n) in order, under one lock and one commit: waits up to
 * timeout_ns for room for msgs[0], then adds the following ones while
 * they fit without waiting (at most INT_MAX in one call). Returns how
 * many were put (1..n). Errors: -EINVAL (q or msgs NULL, n 0, a NULL base
 * with a length), -EMSGSIZE (one of them can never fit: checked for all
 * before any is put), -ESHUTDOWN, -ETIMEDOUT, -EDEADLK (nothing was put). */
KART_API int kart_queue_put_many(kart_queue *q, const struct iovec *msgs, size_t n,
                                 int64_t timeout_ns);

/* Takes the oldest message into buf (cap bytes), waiting up to timeout_ns
 * for one; *len gets its length. Returns 0. Errors: -EINVAL (q or len
 * NULL, buf NULL with cap > 0), -ENOBUFS (the message is longer than cap:
 * *len gets its length, and it stays first in the queue), -ESHUTDOWN
 * (shut down and nothing left), -ETIMEDOUT (empty within the timeout, 0
 * included), -EDEADLK. */
KART_API int kart_queue_get(kart_queue *q, void *buf, size_t cap, size_t *len, int64_t timeout_ns);

/* Takes up to max messages (at most INT_MAX), packed one after another
 * into buf (cap bytes), under one lock and one commit: waits up to
 * timeout_ns for the first, then takes those already there while they
 * fit. msgs[i] gets each one's place in buf and length. Returns how many
 * (1..max). Errors: -EINVAL (q, msgs NULL, max 0, buf NULL with cap > 0),
 * -ENOBUFS (the first is longer than cap: msgs[0].iov_len gets its
 * length, it stays), -ESHUTDOWN, -ETIMEDOUT, -EDEADLK. */
KART_API int kart_queue_get_many(kart_queue *q, void *buf, size_t cap, struct iovec *msgs,
                                 size_t max, int64_t timeout_ns);

/* *n gets the number of messages in the queue at one instant (exact:
 * taken with the consumers' lock held). Errors: -EINVAL (q or n NULL),
 * -EDEADLK. */
KART_API int kart_queue_qsize(kart_queue *q, size_t *n);

/* 1 if no message is in the queue, else 0 (a readiness answer). Errors:
 * -EINVAL (NULL), -EDEADLK. */
KART_API int kart_queue_empty(kart_queue *q);

/* 1 if not even an empty message fits now, else 0 (exact: taken with the
 * producers' lock held). Errors: -EINVAL (NULL), -EDEADLK. */
KART_API int kart_queue_full(kart_queue *q);

/* The capacity in bytes (as rounded); 0 for NULL. */
KART_API size_t kart_queue_capacity(const kart_queue *q);

/* Shuts the queue down for every thread and process that uses it (Python
 * 3.13's Queue.shutdown): later puts fail with -ESHUTDOWN; gets take what
 * is left and then fail with -ESHUTDOWN; every waiter wakes. immediate:
 * also drop every message still queued (gets fail at once) and, on a
 * JoinableQueue, count each dropped one as done, so that join() returns
 * once the messages already taken are done. (A process killed inside an
 * immediate shutdown, between the drop and the count, leaves join()
 * waiting for the dropped ones.) Shutting down twice is harmless, and an
 * immediate shutdown after a plain one drops what is left. Errors:
 * -EINVAL (NULL), -EDEADLK. */
KART_API int kart_queue_shutdown(kart_queue *q, bool immediate);

/* 1 once shut down, else 0; -EINVAL (NULL). */
KART_API int kart_queue_is_shutdown(const kart_queue *q);

/* JoinableQueue: marks one message put earlier as processed. Errors:
 * -EINVAL (NULL), -ENOTSUP (not joinable), KART_ETASKDONE (called more
 * times than messages were put). */
KART_API int kart_queue_task_done(kart_queue *q);

/* JoinableQueue: waits up to timeout_ns until every message put has been
 * marked done. Errors: -EINVAL (NULL), -ENOTSUP (not joinable),
 * -ETIMEDOUT (some are not done within the timeout, 0 included). */
KART_API int kart_queue_join(kart_queue *q, int64_t timeout_ns);

/* JoinableQueue: *n gets the messages put but not yet marked done.
 * Errors: -EINVAL (q or n NULL), -ENOTSUP (not joinable). */
KART_API int kart_queue_unfinished(kart_queue *q, size_t *n);

#ifdef __cplusplus
}
#endif
#endif

/*
 * kart/selector.h — waiting for I/O readiness: Python's select and
 * selectors modules in C.
 *
 * A selector watches file descriptors and reports which are ready. The same
 * semantics hold on every backend (io_uring, epoll, poll, select, and kqueue
 * on BSD and macOS):
 *
 *  - Level-triggered by default: a wait reports an fd for as long as it is
 *    ready.
 *  - KART_EDGE: an fd is reported when it becomes ready and then not again
 *    until new readiness arrives (new data, new buffer space). Read or write
 *    until EAGAIN before waiting again. Backends that cannot watch edges
 *    (poll, select) refuse the flag with -ENOTSUP rather than fake it;
 *    kart_selector_caps() says which can.
 *  - KART_ONESHOT: an fd is reported once, then stays silent until
 *    kart_selector_modify() re-arms it.
 *  - KART_EXCLUSIVE: when several selectors (threads or processes) watch
 *    the same fd, a readiness wakes one of them rather than all. It is a
 *    hint where the backend has no such mode (poll, select): every waiter
 *    then wakes, but events are reported exactly as without it. It cannot
 *    be combined with KART_ONESHOT or KART_PRIORITY (-EINVAL), and such a
 *    registration is not told KART_RDHUP (epoll's EPOLLEXCLUSIVE rules,
 *    kept on every backend). Meant for listening sockets.
 *  - KART_HANGUP, KART_ERROR and KART_RDHUP (the peer closed its writing
 *    side: a read will return 0) are reported whenever they hold, whether
 *    asked for or not; KART_RDHUP needs KART_READABLE in the registration.
 *  - Unregister an fd before closing it, as with Python's selectors: a
 *    number still registered cannot be registered again (-EEXIST) even if
 *    it now names another file. Once unregistered, no event from the old
 *    registration is ever reported, even for an fd number that is reused.
 *  - EINTR never surfaces: a wait interrupted by a signal retries with the
 *    time that is left.
 *
 * Threads: a selector is *one thread at a time* (the caller serializes);
 * kart_selector_wake() is the exception, safe from any thread and from
 * signal handlers. kart_poll() and kart_select() keep no state: any thread.
 * A selector is not inherited usefully over fork: the child must create
 * its own (io_uring rings are not shared).
 */
#ifndef KART_SELECTOR_H
#define KART_SELECTOR_H

#include <kart/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Events that a registration asks for. */
#define KART_READABLE 0x001u
#define KART_WRITABLE 0x002u
#define KART_PRIORITY 0x004u /* out-of-band or priority data (POLLPRI) */
/* Conditions that are reported whether asked for or not. */
#define KART_HANGUP 0x010u
#define KART_ERROR 0x020u
#define KART_RDHUP 0x040u
/* Flags that change how a registration reports. */
#define KART_EDGE 0x100u
#define KART_ONESHOT 0x200u
#define KART_EXCLUSIVE 0x400u

#define KART_EVENT_MASK (KART_READABLE | KART_WRITABLE | KART_PRIORITY)
#define KART_FLAG_MASK (KART_EDGE | KART_ONESHOT | KART_EXCLUSIVE)

/* Capability bits reported by kart_selector_caps(). */
#define KART_CAP_EDGE 0x1u        /* KART_EDGE is honoured */
#define KART_CAP_EXCLUSIVE 0x2u   /* KART_EXCLUSIVE wakes one waiter */
#define KART_CAP_FDSET_LIMIT 0x4u /* fds >= FD_SETSIZE are refused (-ERANGE) */
#define KART_CAP_SQPOLL 0x8u      /* io_uring: a kernel thread polls the ring (uring_sqpoll_ms) */

/* One ready fd, as reported by kart_selector_wait(). */
typedef struct kart_event {
    int fd;
    uint32_t events; /* KART_READABLE ... KART_RDHUP */
    void *data;      /* the pointer given at register or modify */
} kart_event;

typedef struct kart_selector kart_selector;

typedef struct kart_selector_options {
    /* A backend name ("uring", "epoll", "poll", "select", "kqueue"), or
     * NULL for the default: the KART_BACKEND environment variable if set,
     * else the best one that starts. */
    const char *backend;
    /* Size hint for the io_uring submission queue (0: the default, 256);
     * the completion queue is twice as large. */
    unsigned uring_entries;
    /* Opt-in, io_uring only: 0 (the default) is off. N > 0 asks for a
     * kernel thread that polls the submission ring (IORING_SETUP_SQPOLL,
     * unprivileged since Linux 5.11) and sleeps after N ms without work,
     * so a busy loop submits without io_uring_enter; it still enters to
     * wait. For latency-critical servers that can spare a core: the thread
     * spins on its CPU while there is traffic (its CPU counts as the
     * process's). Where the kernel refuses it (older kernels, limits), the
     * ring is set up as without it, and KART_CAP_SQPOLL is not reported:
     * kart_selector_caps() (kart_loop_caps() for a loop) says which. Such
     * a ring runs without SINGLE_ISSUER and DEFER_TASKRUN, which the
     * kernel does not combine with SQPOLL. Values over 60000 are taken
     * as 60000. */
    unsigned uring_sqpoll_ms;
} kart_selector_options;

/*
 * Creates a selector. opts may be NULL.
 * Errors: -EINVAL (out or backend name NULL/empty where a name is required),
 * KART_EUNKNOWNBACKEND (the forced backend is not compiled in or unknown),
 * the backend's own error when a forced backend fails to start (-ENOSYS,
 * -EPERM, -ENOMEM ...), KART_ENOBACKEND (no backend could start),
 * -ENOMEM, -EMFILE.
 */
KART_API int kart_selector_create(kart_selector **out, const kart_selector_options *opts);

/* Frees a selector and everything it owns; the watched fds stay open.
 * NULL is accepted. */
KART_API void kart_selector_free(kart_selector *sel);

/* The name of the backend this selector runs: "uring", "epoll" ... */
KART_API const char *kart_selector_backend(const kart_selector *sel);

/* KART_CAP_* bits of the backend this selector runs. */
KART_API unsigned kart_selector_caps(const kart_selector *sel);

/*
 * Starts watching fd for events (KART_READABLE | KART_WRITABLE |
 * KART_PRIORITY, optionally with KART_EDGE, KART_ONESHOT, KART_EXCLUSIVE).
 * Errors: -EBADF (fd is not open), -EEXIST (fd is already registered),
 * -EINVAL (events has unknown bits, no event bit, or EXCLUSIVE with
 * ONESHOT or PRIORITY), -ENOTSUP (what this backend cannot honour: KART_EDGE on
 * poll and select; KART_PRIORITY on kqueue systems without EVFILT_EXCEPT,
 * such as FreeBSD and NetBSD), -EPERM (fd is a regular file or directory, which
 * cannot be waited on), -ERANGE (select backend: fd >= FD_SETSIZE),
 * -ENOMEM.
 */
KART_API int kart_selector_register(kart_selector *sel, int fd, uint32_t events, void *data);

/*
 * Changes what a registered fd is watched for, and its data; re-arms a
 * KART_ONESHOT registration.
 * Errors: -ENOENT (fd not registered), -EBADF (fd negative), -EINVAL and
 * -ENOTSUP as for register, -ENOMEM.
 */
KART_API int kart_selector_modify(kart_selector *sel, int fd, uint32_t events, void *data);

/*
 * Stops watching fd. It may already be closed.
 * Errors: -ENOENT (fd not registered), -EBADF (fd negative).
 */
KART_API int kart_selector_unregister(kart_selector *sel, int fd);

/* Looks up a registration: stores its events and data where the pointers
 * are not NULL. Errors: -ENOENT, -EBADF (fd negative). */
KART_API int kart_selector_get(const kart_selector *sel, int fd, uint32_t *events, void **data);

/* The number of registered fds. */
KART_API int kart_selector_count(const kart_selector *sel);

/*
 * Walks the registrations (Python's get_map(): kart_selector_get() looks
 * one up by fd, this iterates), in increasing fd order: stores in *out the
 * registration with the lowest fd above `after` (its fd, the events and
 * flags it was registered with, its data) and returns 1, or returns 0 when
 * there is none. Start with after = -1, then pass the last out->fd:
 *     for (int fd = -1; kart_selector_next(sel, fd, &e) == 1; fd = e.fd)
 * Registering or unregistering during the walk is allowed: an fd above
 * the last one returned is seen or not as it stands when reached.
 * Errors: -EINVAL (sel or out NULL).
 */
KART_API int kart_selector_next(const kart_selector *sel, int after, kart_event *out);

/*
 * The selector's own descriptor, to nest it in another event loop (Python's
 * selector.fileno()): it is readable while a kart_selector_wait() would
 * report something (a ready fd, a wake-up); watch it for reading, then
 * call kart_selector_wait() with a zero timeout. It belongs to the
 * selector: do not close it. epoll: the epoll fd; kqueue: the kqueue;
 * io_uring: the ring's fd (from this call on, each register, modify and
 * wait hands the kernel at once what the next wait would, one more system
 * call each, and the calling thread enters the ring; a level-triggered fd
 * that a wait reports is checked with a poll(2), since its readiness was
 * asked for before the wait). It may turn readable with nothing to report
 * (the wait then returns 0).
 * Errors: -EINVAL (NULL), -ENOTSUP (poll and select: they have no
 * descriptor; Python's PollSelector has no fileno either).
 */
KART_API int kart_selector_fileno(kart_selector *sel);

/*
 * Waits until at least one registered fd is ready, the timeout passes
 * (negative: forever; zero: do not block) or kart_selector_wake() is
 * called, and stores at most max ready fds in events (at most INT_MAX).
 * Returns the number stored (0 on timeout or wake). Readiness beyond max
 * is kept for the next wait, never lost.
 * Errors: -EINVAL (events NULL or max 0), and the backend's unexpected
 * system call errors (-ENOMEM ...). Never -EINTR.
 */
KART_API int kart_selector_wait(kart_selector *sel, kart_event *events, size_t max,
                                int64_t timeout_ns);

/* Makes a blocked (or the next) kart_selector_wait() return; safe from any
 * thread and from signal handlers. Wakes coalesce. Returns 0, or the error
 * of the underlying write. */
KART_API int kart_selector_wake(kart_selector *sel);

/* The compiled-in backends, best first, as a NULL-terminated array of
 * names; whether each starts on this host is told by
 * kart_backend_probe(). */
KART_API const char *const *kart_backends(void);

/* Starts and stops the named backend once: 0 if it works here, else why
 * not (KART_EUNKNOWNBACKEND, -ENOSYS, -EPERM, -ENOMEM ...). */
KART_API int kart_backend_probe(const char *name);

/* ---- One-call helpers: Python's select.select() and select.poll() ---- */

/* One entry for kart_poll(): fd and the events asked for; revents gets
 * what is ready (KART_* bits, including HANGUP/ERROR/RDHUP). A negative
 * fd is ignored and gets revents 0. */
typedef struct kart_pollfd {
    int fd;
    uint32_t events;
    uint32_t revents;
} kart_pollfd;

/*
 * Waits on an array of fds at once, like select.poll().poll(). Returns the
 * number of entries with non-zero revents. There is no FD_SETSIZE limit.
 * An fd that is not open gets KART_ERROR in revents (poll's POLLNVAL).
 * Errors: -EINVAL (fds NULL with n > 0, n above INT_MAX, or an entry
 * with unknown event bits), -ENOMEM. Never -EINTR.
 */
KART_API int kart_poll(kart_pollfd *fds, size_t n, int64_t timeout_ns);

/*
 * Like select.select(): three arrays of fds to watch for reading, writing
 * and exceptional conditions (priority data). On return each array is
 * compacted to the fds that are ready and *nread, *nwrite, *nexcept hold
 * their new counts (a NULL array with count pointer NULL or *count 0 is
 * empty). Returns the total number of ready entries. An fd counts as ready
 * for reading on hang-up or error too, as with select(2). No FD_SETSIZE
 * limit.
 * Errors: -EBADF (an fd in the arrays is not open or negative; the arrays
 * are left untouched), -EINVAL (a count above INT_MAX / 3, or a count > 0
 * with a NULL array), -ENOMEM. Never -EINTR.
 */
KART_API int kart_select(int *rfds, size_t *nread, int *wfds, size_t *nwrite, int *xfds,
                         size_t *nexcept, int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif

/*
 * kart/loop.h — the event loop: fd watchers, timers, signals, child exits,
 * a cross-thread wake-up, user events (kqueue's EVFILT_USER) and file
 * watchers (EVFILT_VNODE), on top of a selector (kart/selector.h).
 *
 * Handles are allocated by the caller (embed them in your own structs) and
 * set up with kart_<handle>_init(). A started handle is "active": it keeps
 * kart_loop_run(KART_RUN_DEFAULT) going unless kart_handle_unref() was
 * called on it. Stopping a handle — any handle, from inside any callback,
 * its own included — is always safe; once kart_<handle>_stop() returns, its
 * callback will not run again and its memory may be freed.
 *
 * Threads: a loop and every handle on it are *loop thread* objects: only
 * the thread that runs the loop may call into them. The exceptions, safe
 * from any thread (and from signal handlers): kart_async_send() and
 * kart_user_trigger(), also while the loop thread stops the handle or
 * frees the loop (what that allows: kart_async_send()). Before its first run a loop may be
 * set up on another thread (created, its watchers started and stopped, any
 * number of them), then run on its own; with the io_uring backend, starting
 * more completion-I/O operations (kart/io.h) than its ring holds before the
 * first run makes the setting-up thread the ring's owner. Fork: the child
 * must not use the parent's loop (io_uring rings are not shared); it
 * creates its own, and may only free the parent's (which then touches none
 * of the kernel objects the parent still uses).
 */
#ifndef KART_LOOP_H
#define KART_LOOP_H

#include <kart/common.h>
#include <kart/selector.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_loop kart_loop;

typedef enum kart_run_mode {
    KART_RUN_DEFAULT = 0, /* until no active referenced handle is left, or stop */
    KART_RUN_ONCE = 1,    /* one iteration, blocking until something happens */
    KART_RUN_NOWAIT = 2,  /* one iteration, never blocking */
} kart_run_mode;

typedef enum kart_handle_type {
    KART_HANDLE_WATCH = 1,
    KART_HANDLE_TIMER,
    KART_HANDLE_SIGNAL,
    KART_HANDLE_CHILD,
    KART_HANDLE_ASYNC,
    KART_HANDLE_USER,
    KART_HANDLE_FSWATCH,
    KART_HANDLE_SOCK = 16, /* kart_sock of kart/io.h */
} kart_handle_type;

/* The part every handle starts with. Public: data. Read-only: loop, type.
 * The rest is private. */
typedef struct kart_handle {
    void *data;
    kart_loop *loop;
    kart_handle_type type;
    uint8_t flags_; /* private: active, unreferenced */
} kart_handle;

typedef struct kart_loop_options {
    /* Backend choice, the io_uring ring's size, and SQPOLL (opt-in:
     * selector.uring_sqpoll_ms, see kart/selector.h). */
    kart_selector_options selector;
} kart_loop_options;

/*
 * Creates a loop. opts may be NULL.
 * Errors: those of kart_selector_create() (-EINVAL, KART_EUNKNOWNBACKEND,
 * KART_ENOBACKEND, a forced backend's own error, -EMFILE, -ENFILE,
 * -ENOMEM).
 */
KART_API int kart_loop_create(kart_loop **out, const kart_loop_options *opts);

/*
 * Frees a loop and everything it holds; NULL is a no-op. Handles still
 * active are stopped first, without their callbacks: fd watchers, timers,
 * signal watchers (the thread's signal mask and dispositions are restored
 * as by kart_signal_stop), child watchers (the children are not reaped),
 * async, user and file watchers; after this call their memory may be
 * freed or set up again with their _init. Async handles and user events
 * are stopped as kart_async_stop() does it: sends already under way on
 * other threads are waited for, and later ones do not touch the freed
 * loop (kart_async_send()). Completion I/O still pending
 * (kart/io.h) is dropped: its callbacks never run, the kernel's requests
 * are cancelled with the ring, sockets' fds stay open (close them with
 * close(2)), requests and sockets may be freed, and buffers still lent
 * are gone (do not release them). To end I/O cleanly, close the sockets
 * and run the loop until their close callbacks have run, before this call.
 * Called from inside a callback of the loop, the free waits until
 * kart_loop_run() returns (it stops the loop as kart_loop_stop() does);
 * the loop must not be used after kart_loop_run() returns then.
 * On the io_uring backend the kernel finishes closing the ring with work it
 * queues to the thread that ran the loop, and that work interrupts the
 * thread's next blocking system call once: an epoll_wait, a read of a pipe
 * or socket may return EINTR shortly after this call, as after a signal
 * (retry it). Creating a loop interrupts nothing.
 */
KART_API void kart_loop_free(kart_loop *loop);

/*
 * Runs the loop. KART_RUN_DEFAULT runs until no active referenced handle
 * is left or kart_loop_stop() is called; ONCE runs one iteration, waiting
 * for at least one event or due timer if any active handle is referenced
 * (it may still return without running a callback, after a wake-up that
 * had nothing left to do); NOWAIT runs one iteration without blocking.
 * Returns 1 if active referenced handles remain, 0 if none, or a negative
 * error: -EINVAL (bad mode or NULL loop), -EBUSY (called from inside a
 * callback of the same loop), -ECHILD (the loop was made by the parent of
 * this forked process: a child makes its own loop; it may only free the
 * parent's), or a backend failure.
 */
KART_API int kart_loop_run(kart_loop *loop, kart_run_mode mode);

/* Makes a running kart_loop_run() return after the current iteration; a
 * call while the loop is not running has no effect (each run starts
 * afresh). Loop thread only (other threads: use an async handle whose
 * callback calls it). */
KART_API void kart_loop_stop(kart_loop *loop);

/* The loop's cached time (ns, CLOCK_MONOTONIC), updated at the start of
 * each iteration; kart_loop_update_time() refreshes it. */
KART_API int64_t kart_loop_now(const kart_loop *loop);
KART_API void kart_loop_update_time(kart_loop *loop);

/* The selector backend the loop runs ("uring", "epoll", ...). */
KART_API const char *kart_loop_backend_name(const kart_loop *loop);

/* The KART_CAP_* bits of the loop's selector (kart_selector_caps()): which
 * of what was asked for the backend granted, KART_CAP_SQPOLL among them. */
KART_API unsigned kart_loop_caps(const kart_loop *loop);

/* Counts the active handles (referenced or not). */
KART_API int kart_loop_active_handles(const kart_loop *loop);

/* Unreferenced active handles do not keep KART_RUN_DEFAULT running. */
KART_API void kart_handle_ref(kart_handle *h);
KART_API void kart_handle_unref(kart_handle *h);
/* 1 while the handle is started, else 0. */
KART_API int kart_handle_is_active(const kart_handle *h);

/* ---- fd watchers ---- */

typedef struct kart_watch kart_watch;
/* events: KART_READABLE ... KART_RDHUP as reported by the selector. */
typedef void (*kart_watch_cb)(kart_watch *w, uint32_t events);

struct kart_watch {
    kart_handle base;
    int fd;            /* read-only */
    uint32_t events_;  /* private */
    kart_watch_cb cb_; /* private */
};

/* Prepares a watcher for fd (the loop's readiness watcher: Python's
 * loop.add_reader/add_writer; kart/io.h is completion I/O instead).
 * Errors: -EINVAL (NULL loop or watcher), -EBADF (fd negative). */
KART_API int kart_watch_init(kart_loop *loop, kart_watch *w, int fd);

/*
 * Starts watching for events, which take the selector's bits and flags
 * (KART_EDGE, KART_ONESHOT, ...). One watcher per fd per loop. A
 * KART_ONESHOT watcher is stopped just before its callback runs; start it
 * again to re-arm it. Stop a watcher before closing its fd. Starting an
 * active watcher changes it as kart_watch_modify() does (and takes cb).
 * Errors: -EINVAL (NULL watcher or cb, bad events), -EEXIST (another
 * watcher watches this fd), and the selector's register errors (-EBADF,
 * -EPERM, -ENOTSUP, -ERANGE, -ENOMEM).
 */
KART_API int kart_watch_start(kart_watch *w, uint32_t events, kart_watch_cb cb);

/* Changes the events an active watcher waits for (and re-arms a
 * KART_ONESHOT one), keeping its callback. A failed change keeps the old
 * registration. Errors: -EINVAL (NULL, bad events), -ENOENT (the watcher
 * is not active), and the selector's modify errors (-ENOTSUP, -ENOMEM). */
KART_API int kart_watch_modify(kart_watch *w, uint32_t events);

/* Stops watching. Stopping a stopped watcher is a no-op returning 0.
 * Errors: -EINVAL (NULL). */
KART_API int kart_watch_stop(kart_watch *w);

/* ---- timers ---- */

typedef struct kart_timer kart_timer;
typedef void (*kart_timer_cb)(kart_timer *timer);

struct kart_timer {
    kart_handle base;
    int64_t deadline_;    /* private */
    int64_t repeat_;      /* private */
    uint64_t seq_;        /* private: start order, breaks deadline ties */
    uint32_t heap_index_; /* private */
    kart_timer_cb cb_;    /* private */
};

/* Errors: -EINVAL (NULL loop or timer). */
KART_API int kart_timer_init(kart_loop *loop, kart_timer *timer);

/*
 * Starts the timer: cb runs timeout_ns after the loop's cached now, then
 * every repeat_ns if repeat_ns > 0. Starting an active timer restarts it
 * (on -ENOMEM it is left stopped). Due timers fire in deadline order, ties
 * in start order; a timer started by a timer callback with a deadline
 * already due fires in the next iteration, so it cannot starve I/O.
 * Errors: -EINVAL (NULL timer or cb, negative timeout or repeat), -ENOMEM.
 */
KART_API int kart_timer_start(kart_timer *timer, kart_timer_cb cb, int64_t timeout_ns,
                              int64_t repeat_ns);

/* Stops the timer; a no-op returning 0 if it is not active.
 * Errors: -EINVAL (NULL). */
KART_API int kart_timer_stop(kart_timer *timer);

/* Restarts a repeating timer from now with its repeat interval.
 * Errors: -EINVAL (never started, or repeat is 0). */
KART_API int kart_timer_again(kart_timer *timer);

/* Sets the repeat interval. A firing schedules the next one before its
 * callback runs, so a change made inside the timer's own callback takes
 * effect one firing later (as in libuv). Errors: -EINVAL (NULL or
 * negative). */
KART_API int kart_timer_set_repeat(kart_timer *timer, int64_t repeat_ns);
KART_API int64_t kart_timer_get_repeat(const kart_timer *timer);

/* Nanoseconds until the timer is due (0 if overdue); -1 if not active. */
KART_API int64_t kart_timer_due_in(const kart_timer *timer);

/* ---- signals ---- */

typedef struct kart_signal kart_signal;
typedef void (*kart_signal_cb)(kart_signal *sig, int signum);

struct kart_signal {
    kart_handle base;
    int signum;         /* read-only */
    kart_signal_cb cb_; /* private */
    kart_signal *next_; /* private */
};

/* Errors: -EINVAL (NULL loop or handle). */
KART_API int kart_signal_init(kart_loop *loop, kart_signal *sig);

/*
 * Runs cb on the loop thread each time signum arrives.
 * On the BSDs and macOS the loop hears it through a kqueue EVFILT_SIGNAL
 * filter, and while any watcher of it is active in the process its
 * disposition is SIG_IGN (SIGCHLD: an empty handler), restored after the
 * last stop; a handler of your own does not run meanwhile.
 * On Linux the signal is received through a signalfd: kart blocks it in
 * the calling thread
 * while any watcher for it (on any loop of that thread) is active, and
 * when the last one stops restores the thread's mask as it was, after
 * discarding an occurrence that arrived but was not dispatched yet. Block
 * the signal in the program's other threads too (before starting them), or
 * they may take it first. Several watchers of one signal on one loop all
 * run; between loops, one loop receives each occurrence. Starting an
 * active watcher on another signal stops it first.
 * Errors: -EINVAL (NULL sig or cb; signum not a catchable signal: SIGKILL,
 * SIGSTOP, out of range, or reserved by the C library between 32 and
 * SIGRTMIN), -EMFILE, -ENOMEM.
 */
KART_API int kart_signal_start(kart_signal *sig, kart_signal_cb cb, int signum);

/* Stops watching; a no-op returning 0 if not active. Errors: -EINVAL
 * (NULL). */
KART_API int kart_signal_stop(kart_signal *sig);

/* ---- child processes ---- */

typedef struct kart_child kart_child;
/* status: the exit code (>= 0) for a normal exit, or -N when killed by
 * signal N, as Python's Process.exitcode; INT_MIN if someone else reaped
 * the child first (another waitpid(), or, on the pidfd path, SIGCHLD set
 * to SIG_IGN). */
typedef void (*kart_child_cb)(kart_child *child, int status);

struct kart_child {
    kart_handle base;
    pid_t pid;         /* read-only */
    int fd_;           /* private: pidfd, or -1 */
    kart_child_cb cb_; /* private */
    kart_child *next_; /* private */
};

/* Errors: -EINVAL (NULL loop or handle). */
KART_API int kart_child_init(kart_loop *loop, kart_child *child);

/*
 * Runs cb once when child process pid exits, and reaps it. The watcher is
 * stopped before cb runs. On Linux it uses a pidfd. Where pidfd_open is
 * missing (before Linux 5.3) or refused (EPERM from a seccomp filter), it
 * falls back to SIGCHLD, heard as kart_signal_start() hears signals (on
 * Linux SIGCHLD is then blocked in the calling thread while such children
 * are watched: block it in other threads too); the BSDs and macOS always
 * take this path. Each start sends one SIGCHLD (to the thread on Linux, to
 * the process elsewhere) so
 * that a child that exited before the start is seen; a SIGCHLD watcher of
 * your own sees those extra occurrences.
 * Starting an active watcher stops it first; if the start then fails the
 * watcher stays stopped.
 * Errors: -EINVAL (NULL child or cb, or pid <= 0), -ESRCH (no such
 * process), -ECHILD (not a child of this process; on the SIGCHLD path also
 * when SIGCHLD is set to SIG_IGN, since the kernel then reaps children
 * itself), -EEXIST (another watcher already watches pid on this loop),
 * -EMFILE, -ENOMEM.
 */
KART_API int kart_child_start(kart_child *child, kart_child_cb cb, pid_t pid);

/* Stops watching without reaping; a no-op returning 0 if not active.
 * Errors: -EINVAL (NULL). */
KART_API int kart_child_stop(kart_child *child);

/* ---- async wake-up ---- */

typedef struct kart_async kart_async;
typedef void (*kart_async_cb)(kart_async *async);

struct kart_async {
    kart_handle base;
    _Atomic uint32_t pending_; /* private */
    kart_async_cb cb_;         /* private */
    kart_async *next_;         /* private */
};

/* Prepares an async handle (stopped). Errors: -EINVAL (NULL argument). */
KART_API int kart_async_init(kart_loop *loop, kart_async *async);

/* Starts it: from then on, kart_async_send() from any thread makes cb run
 * on the loop thread. Starting an active handle changes its callback.
 * Loop thread (or before the loop's first run). Errors: -EINVAL (NULL
 * async or cb). */
KART_API int kart_async_start(kart_async *async, kart_async_cb cb);

/*
 * Makes the handle's callback run soon on the loop's thread. Safe from any
 * thread and from signal handlers, lock-free. Sends before the callback
 * runs coalesce into one call. A send to a handle that is initialised but
 * not active is kept and delivered once it starts; it does not touch the
 * loop. Returns 0, or -EINVAL (NULL) or the error of writing the loop's
 * wake-up fd: then the send is not made (the loop may not wake): call
 * again; sends coalesced into it meanwhile are delivered with the retry.
 *
 * Stopping and freeing while other threads send (libuv's uv_close rule):
 * kart_async_stop() waits until every send that has already begun on the
 * handle has returned; kart_loop_free() stops every active async handle
 * that way. So:
 *  - Once kart_async_stop() (or kart_loop_free()) has returned, no send
 *    touches the loop any more, even sends made later: the loop may be
 *    freed while other threads go on sending to a handle whose memory is
 *    still there.
 *  - A send whose callback the loop has run (the callback that runs after
 *    it) cannot still be inside the handle once the callback stops it: a
 *    callback may stop its handle and free it, as for a one-shot
 *    completion.
 *  - The handle's memory may be freed after the stop only if no thread
 *    can still *begin* a send on it: the stop cannot wait for a send that
 *    starts later (join the senders, or have them agree to stop, first).
 */
KART_API int kart_async_send(kart_async *async);

/* Stops the handle; a send not yet delivered is kept for the next start.
 * First waits (spinning briefly, then yielding) until no
 * kart_async_send() on another thread is still inside the handle, also
 * when the handle is not active (then it returns 0 and changes nothing
 * else); see kart_async_send(). Loop thread; not from a signal handler.
 * Errors: -EINVAL (NULL). */
KART_API int kart_async_stop(kart_async *async);

/* ---- user-triggered events (kqueue's EVFILT_USER) ---- */

typedef struct kart_user kart_user;
/* fflags: the OR of the flags given to every kart_user_trigger() since the
 * callback last ran (0 if they were all 0). */
typedef void (*kart_user_cb)(kart_user *user, unsigned fflags);

struct kart_user {
    kart_handle base;
    _Atomic uint64_t state_; /* private: pending bit and flags */
    kart_user_cb cb_;        /* private */
    kart_user *next_;        /* private */
};

/* Prepares a user event (stopped). Errors: -EINVAL (NULL argument). */
KART_API int kart_user_init(kart_loop *loop, kart_user *user);

/* Starts it: each kart_user_trigger() makes cb run on the loop thread.
 * Starting an active one changes its callback. Loop thread.
 * Errors: -EINVAL (NULL user or cb). */
KART_API int kart_user_start(kart_user *user, kart_user_cb cb);

/*
 * Triggers the event, ORing fflags into what its callback will be given
 * (EVFILT_USER's NOTE_TRIGGER with NOTE_FFOR): the callback runs once for
 * any number of triggers before it. Thread-safe, lock-free, and safe from
 * signal handlers (the loop's wake-up fd, an eventfd on Linux, carries it
 * on every backend). A trigger of a stopped event is kept and delivered
 * when it starts; it does not touch the loop. Stopping or freeing the
 * loop while other threads trigger follows kart_async_send()'s rules.
 * Errors: -EINVAL (NULL), or the error of writing the loop's wake-up fd
 * (then, as for kart_async_send, call again: the flags are kept).
 */
KART_API int kart_user_trigger(kart_user *user, unsigned fflags);

/* Stops it; a trigger not yet delivered is kept for the next start. First
 * waits until no kart_user_trigger() on another thread is still inside
 * it, also when it is not active (then it returns 0 and changes nothing
 * else), as kart_async_stop() does. Loop thread; not from a signal
 * handler. Errors: -EINVAL (NULL). */
KART_API int kart_user_stop(kart_user *user);

/* ---- file changes (kqueue's EVFILT_VNODE; inotify on Linux) ---- */

/* What changed (kqueue's NOTE_* names). */
#define KART_FS_WRITE 0x01u  /* contents written (a directory: an entry added or removed) */
#define KART_FS_DELETE 0x02u /* its last link was removed */
#define KART_FS_RENAME 0x04u /* the file itself was renamed or moved */
#define KART_FS_ATTRIB 0x08u /* attributes changed (mode, owner, times, links) */
#define KART_FS_EXTEND 0x10u /* it grew */
#define KART_FS_ALL 0x1fu

typedef struct kart_fswatch kart_fswatch;
/* events: the KART_FS_* bits that happened and were asked for. */
typedef void (*kart_fswatch_cb)(kart_fswatch *w, unsigned events);

struct kart_fswatch {
    kart_handle base;
    int wd_;             /* private: inotify watch, or the kqueue's fd */
    int fd_;             /* private: the file, held open */
    unsigned events_;    /* private */
    int64_t size_;       /* private: to tell KART_FS_EXTEND */
    bool deleted_;       /* private */
    kart_fswatch_cb cb_; /* private */
    kart_fswatch *next_; /* private */
};

/* Prepares a file watcher (stopped). Errors: -EINVAL (NULL argument). */
KART_API int kart_fswatch_init(kart_loop *loop, kart_fswatch *w);

/*
 * Watches the file or directory at path for the KART_FS_* events asked
 * for: cb runs on the loop thread with those that happened (several may
 * come in one call). The file itself is watched, not its name: it is held
 * open (one descriptor per watcher) and followed through renames; a
 * deleted file's watcher stays active (its file can change no more) until
 * stopped. Works on every backend (on Linux one inotify descriptor per
 * loop, registered in the loop's selector). Starting an active watcher
 * stops it first; if the start then fails, it stays stopped.
 * Errors: -EINVAL (NULL w, path or cb; events 0 or with unknown bits),
 * -ENOENT, -EACCES, -ENOTDIR, -ENAMETOOLONG, -ELOOP (path cannot be
 * opened), -ENOSPC (the inotify watch limit), -EMFILE, -ENFILE, -ENOMEM.
 */
KART_API int kart_fswatch_start(kart_fswatch *w, const char *path, unsigned events,
                                kart_fswatch_cb cb);

/* Stops watching and closes the file; a no-op returning 0 if not active.
 * Errors: -EINVAL (NULL). */
KART_API int kart_fswatch_stop(kart_fswatch *w);

#ifdef __cplusplus
}
#endif
#endif

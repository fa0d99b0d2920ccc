/*
 * core/loop_private.h — the loop's state, shared by the files that
 * implement its handles (loop.c, timer.c, signal.c, child.c, async.c) and
 * completion-based I/O (core/io*.c, compat/io_emul.c, uring/uring_io.c).
 */
#ifndef KART_LOOP_PRIVATE_H
#define KART_LOOP_PRIVATE_H

#include "backend.h"
#include "fork_gen.h"

#include <kart/loop.h>
#include <kart/selector.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#ifndef _NSIG
#define _NSIG NSIG
#endif

/* Where a loop hears signals: a signalfd on Linux, a kqueue's EVFILT_SIGNAL
 * on the BSDs and macOS. KART_SIGNAL_KQUEUE may be defined to pick the
 * kqueue source on Linux too, for the test build over a kqueue emulation. */
#if defined(__linux__) && !defined(KART_SIGNAL_KQUEUE)
#define KART_SIGNAL_SIGNALFD 1
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
    defined(__DragonFly__)
#ifndef KART_SIGNAL_KQUEUE
#define KART_SIGNAL_KQUEUE 1
#endif
#else
#error "kart's loop hears signals through signalfd (Linux) or kqueue (BSD, macOS)"
#endif

#define KART__HANDLE_ACTIVE 0x1u
#define KART__HANDLE_UNREF 0x2u

/* One entry of the timer heap. The deadline and start sequence live in the
 * entry, so sifting compares without touching the timers themselves. */
typedef struct kart__timer_entry {
    int64_t deadline;
    uint64_t seq;
    kart_timer *timer;
} kart__timer_entry;

typedef struct kart__timer_heap {
    kart__timer_entry *e;
    uint32_t n, cap;
} kart__timer_heap;

struct kart_loop {
    kart_selector *sel;
    int64_t now;
    bool stop_requested;
    bool running;
    bool free_requested; /* kart_loop_free() from a callback */
    unsigned fork_gen;   /* kart__fork_gen() of the process that made it */
    int active;          /* active handles */
    int active_ref;      /* active handles that keep the loop alive */

    kart_event *events;
    uint32_t *event_gens; /* each event's registration generation */
    int nevents;

    kart__timer_heap timers;
    uint64_t timer_seq;

    /* Signals: one fd per loop (signalfd or kqueue) for the union of the
     * watched signals. */
    int sigfd;
    int nsignums;        /* distinct signal numbers watched */
    kart_handle sig_tag; /* the selector's data for sigfd */
    sigset_t sigmask;
    kart_signal *signals;
    kart_signal *sig_cursor;  /* next watcher to call while dispatching */
    unsigned sigcount[_NSIG]; /* this loop's watchers of each signal */

    /* Child watchers; pidfd ones are also registered in the selector. */
    kart_child *children;
    kart_child *child_cursor;
    int sigchld_users; /* children watched through SIGCHLD, not a pidfd */
    int ring_children; /* children watched by io_uring's WAITID */

    /* Async handles; async_signalled is set by any thread before it wakes
     * the selector, so that an iteration without it skips the scan. */
    kart_async *asyncs;
    kart_async *async_cursor;
    _Atomic uint32_t async_signalled;
    /* User events (kart_user), dispatched with the async handles: a
     * trigger sets async_signalled too. */
    kart_user *users;
    kart_user *user_cursor;

    /* File watchers: one inotify fd (Linux) or kqueue (BSD) per loop,
     * opened by the first start, registered with fs_tag as its data. */
    int fsfd;
    kart_handle fs_tag;
    kart_fswatch *fswatches;
    kart_fswatch *fs_cursor;

    /* Completion-based I/O (kart/io.h, core/io_private.h), created by the
     * first operation. */
    struct kart__io *io;

    /* kart_future_await (loop_future.c): the inbox, created by the first
     * await; the awaits waiting on the backend's futex_start. */
    struct kart__awaits *awaits;
    int ring_awaits;
};

/* The ring serves a loop waiting for a few futures at a time; past this
 * many awaits on the ring, new ones take the inbox. Each ring wait costs
 * the completing thread a futex_wake and the loop a request re-armed per
 * future, where the inbox's wake-ups coalesce (one async send a batch).
 * kart-bench loop_future (one worker, 9 interleaved rounds): with one
 * future in flight the ring's CPU per future is 0.34x the bridge's (the
 * inbox 0.99x); with 8 or 64 in flight and no cap it is 1.69x and 2.12x,
 * with this cap 1.23x and 1.22x, the inbox's 1.07x and 1.23x. A cap of
 * 16 cost what no cap did with 8 in flight (1.69x); 1 and 2 were within
 * the rounds' spread of 4 (docs/io.md). A build may set it
 * (-DKART__AWAIT_RING_MAX=N), as the measurements did. */
#ifndef KART__AWAIT_RING_MAX
#define KART__AWAIT_RING_MAX 4
#endif

static inline bool kart__handle_active(const kart_handle *h)
{
    return h->flags_ & KART__HANDLE_ACTIVE;
}

static inline void kart__handle_start(kart_handle *h)
{
    if (h->flags_ & KART__HANDLE_ACTIVE)
        return;
    h->flags_ |= KART__HANDLE_ACTIVE;
    h->loop->active++;
    if (!(h->flags_ & KART__HANDLE_UNREF))
        h->loop->active_ref++;
}

static inline void kart__handle_stop(kart_handle *h)
{
    if (!(h->flags_ & KART__HANDLE_ACTIVE))
        return;
    h->flags_ &= (uint8_t)~KART__HANDLE_ACTIVE;
    h->loop->active--;
    if (!(h->flags_ & KART__HANDLE_UNREF))
        h->loop->active_ref--;
}

/* A pending I/O operation (or an active receive) counts as an active,
 * referenced handle: it keeps the loop running and the loop unfreeable. */
static inline void kart__op_start(kart_loop *loop)
{
    loop->active++;
    loop->active_ref++;
}

static inline void kart__op_end(kart_loop *loop)
{
    loop->active--;
    loop->active_ref--;
}

static inline void kart__handle_init(kart_handle *h, kart_loop *loop, kart_handle_type type)
{
    void *data = h->data;
    *h = (kart_handle){.data = data, .loop = loop, .type = type};
}

/* timer.c */
int64_t kart__timers_next_deadline(const kart_loop *loop); /* -1: none */
int kart__timers_run(kart_loop *loop);                     /* returns how many fired */
void kart__timers_fini(kart_loop *loop);

/* signal.c */
void kart__signals_dispatch(kart_loop *loop);
/* Counted watching of a signal number, for the loop's own needs. */
int kart__signum_watch(kart_loop *loop, int signum);
void kart__signum_unwatch(kart_loop *loop, int signum);

/* signal_signalfd.c or signal_kqueue.c: the loop's signal source. add and
 * del are called when a loop's first watcher of signum starts and its last
 * stops; add opens loop->sigfd and registers it in the selector when it is
 * the first, del closes it after the last. read stores the numbers of
 * signals that arrived (0 when none). kick makes signum arrive at this
 * thread's loops. */
int kart__sigsource_add(kart_loop *loop, int signum);
void kart__sigsource_del(kart_loop *loop, int signum);
int kart__sigsource_read(kart_loop *loop, int *signums, int max);
void kart__sigsource_kick(int signum);

/* child.c */
void kart__child_dispatch(kart_child *child);
void kart__children_reap(kart_loop *loop); /* on SIGCHLD */
/* The children whose io_uring WAITID completed (loop->ring_children). */
void kart__children_ring_dispatch(kart_loop *loop);
/* The loop this thread is running (kart_loop_run), or NULL. */
extern _Thread_local kart_loop *kart__running_loop __attribute__((tls_model("initial-exec")));

/* loop_future.c: the awaits whose ring wait completed (after each wait,
 * while loop->ring_awaits), and the loop's free (callbacks never run). */
void kart__awaits_ring_dispatch(kart_loop *loop);
void kart__awaits_fini(kart_loop *loop, bool forked);

/* async.c: async handles and user events */
void kart__asyncs_dispatch(kart_loop *loop);

/* fswatch.c: the loop's notification fd, shared by the backends */
int kart__fswatch_attach(kart_loop *loop, int fd); /* registers fd, or closes it */
void kart__fswatch_fini(kart_loop *loop);
/* fswatch_inotify.c / fswatch_kqueue.c */
void kart__fswatch_dispatch(kart_loop *loop);

#endif

/*
 * core/loop.c — the event loop: one selector, a timer heap, and the
 * dispatch of ready fds to handles.
 *
 * The clever part is what makes "stop any handle from any callback" safe
 * without reference counts: the selector's registration table is the truth.
 * When a wait returns, the loop notes the generation of each ready fd's
 * registration; before the fd's callback runs, it checks that the fd is
 * still registered under that same generation. A handle stopped (and maybe
 * freed) by an earlier callback in the same batch is therefore never
 * touched, and neither is a handle started since on the same fd number
 * (even the same struct), which would otherwise get the old readiness.
 *
 * One iteration: update the cached time, run due timers, deliver queued
 * I/O results, wait once in the selector (the timeout is the next timer's
 * deadline, or zero while I/O results wait), dispatch readiness, then the
 * completions of native I/O operations (io_uring) the same wait collected,
 * then queued I/O results again, then async callbacks. Nothing is polled
 * per event beyond what the backend needs.
 */
#include "io_private.h"

#include <kart/io.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KART__EVENTS_MIN 64

#define KART__EVENTS_MAX 4096

KART_API int kart_loop_create(kart_loop **out, const kart_loop_options *opts)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    kart_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    loop->events = malloc(KART__EVENTS_MIN * sizeof(*loop->events));
    loop->event_gens = malloc(KART__EVENTS_MIN * sizeof(*loop->event_gens));
    if (!loop->events || !loop->event_gens) {
        free(loop->events);
        free(loop->event_gens);
        free(loop);
        return -ENOMEM;
    }
    loop->nevents = KART__EVENTS_MIN;
    int err = kart__selector_create(&loop->sel, opts ? &opts->selector : NULL, true);
    if (err < 0) {
        free(loop->events);
        free(loop->event_gens);
        free(loop);
        return err;
    }
    loop->sigfd = -1;
    loop->fsfd = -1;
    kart__handle_init(&loop->fs_tag, loop, KART_HANDLE_FSWATCH);
    sigemptyset(&loop->sigmask);
    kart__handle_init(&loop->sig_tag, loop, KART_HANDLE_SIGNAL);
    loop->now = kart_now_ns();
    loop->fork_gen = kart__fork_gen();
    *out = loop;
    return 0;
}

/* Stops every handle still active, without callbacks: the user's structs
 * are left inactive (free to be freed or set up again), the thread's
 * signal mask restored, pidfds closed. Pending completion I/O is dropped
 * with the loop's I/O state (kart__io_fini) and the ring. */
static void stop_all(kart_loop *loop)
{
    while (loop->signals)
        kart_signal_stop(loop->signals);
    while (loop->children)
        kart_child_stop(loop->children);
    while (loop->asyncs)
        kart_async_stop(loop->asyncs);
    while (loop->users)
        kart_user_stop(loop->users);
    while (loop->fswatches)
        kart_fswatch_stop(loop->fswatches);
    kart__fswatch_fini(loop);
    while (loop->timers.n > 0)
        kart_timer_stop(loop->timers.e[0].timer);
    kart_event reg;
    for (int fd = -1; kart_selector_next(loop->sel, fd, &reg) == 1; fd = reg.fd) {
        kart_handle *h = reg.data;
        if (h && h->type == KART_HANDLE_WATCH)
            kart_watch_stop((kart_watch *)h);
    }
}

/* A fork child freeing its parent's loop shares the kernel objects with
 * the parent (the epoll set, the io_uring ring, the kqueue is not
 * inherited but the rest is): unregistering would change the parent's.
 * It only closes its own copies of the descriptors handles hold, and
 * marks the handles stopped. */
static void forget_all(kart_loop *loop)
{
    for (kart_child *c = loop->children; c; c = c->next_) {
        if (c->fd_ >= 0)
            close(c->fd_);
        c->fd_ = -1;
        c->base.flags_ &= (uint8_t)~KART__HANDLE_ACTIVE;
    }
    for (kart_fswatch *w = loop->fswatches; w; w = w->next_) {
        close(w->fd_);
        w->fd_ = -1;
        w->base.flags_ &= (uint8_t)~KART__HANDLE_ACTIVE;
    }
    for (kart_signal *s = loop->signals; s; s = s->next_)
        s->base.flags_ &= (uint8_t)~KART__HANDLE_ACTIVE;
    /* Memory only: a later send to them must no longer wake this loop. */
    while (loop->asyncs)
        kart_async_stop(loop->asyncs);
    while (loop->users)
        kart_user_stop(loop->users);
    for (uint32_t i = 0; i < loop->timers.n; i++)
        loop->timers.e[i].timer->base.flags_ &= (uint8_t)~KART__HANDLE_ACTIVE;
    kart_event reg;
    for (int fd = -1; kart_selector_next(loop->sel, fd, &reg) == 1; fd = reg.fd) {
        kart_handle *h = reg.data;
        if (h && h->type == KART_HANDLE_WATCH)
            h->flags_ &= (uint8_t)~KART__HANDLE_ACTIVE;
    }
    if (loop->sigfd >= 0)
        close(loop->sigfd);
    if (loop->fsfd >= 0)
        close(loop->fsfd);
}

KART_API void kart_loop_free(kart_loop *loop)
{
    if (!loop)
        return;
    if (loop->running) {
        /* From a callback: kart_loop_run() frees it on its way out. */
        loop->free_requested = true;
        loop->stop_requested = true;
        return;
    }
    bool forked = loop->fork_gen != kart__fork_gen();
    kart__awaits_fini(loop, forked); /* before its async handle is stopped */
    if (forked)
        forget_all(loop);
    else
        stop_all(loop);
    kart__io_fini(loop, forked); /* before the selector: the buffer ring is the ring's */
    kart_selector_free(loop->sel);
    kart__timers_fini(loop);
    free(loop->events);
    free(loop->event_gens);
    free(loop);
}

KART_API void kart_loop_stop(kart_loop *loop)
{
    loop->stop_requested = true;
}

KART_API int64_t kart_loop_now(const kart_loop *loop)
{
    return loop->now;
}

KART_API void kart_loop_update_time(kart_loop *loop)
{
    loop->now = kart_now_ns();
}

KART_API const char *kart_loop_backend_name(const kart_loop *loop)
{
    return kart_selector_backend(loop->sel);
}

KART_API unsigned kart_loop_caps(const kart_loop *loop)
{
    return kart_selector_caps(loop->sel);
}

KART_API int kart_loop_active_handles(const kart_loop *loop)
{
    return loop->active;
}

KART_API void kart_handle_ref(kart_handle *h)
{
    if (!(h->flags_ & KART__HANDLE_UNREF))
        return;
    h->flags_ &= (uint8_t)~KART__HANDLE_UNREF;
    if (h->flags_ & KART__HANDLE_ACTIVE)
        h->loop->active_ref++;
}

KART_API void kart_handle_unref(kart_handle *h)
{
    if (h->flags_ & KART__HANDLE_UNREF)
        return;
    h->flags_ |= KART__HANDLE_UNREF;
    if (h->flags_ & KART__HANDLE_ACTIVE)
        h->loop->active_ref--;
}

KART_API int kart_handle_is_active(const kart_handle *h)
{
    return kart__handle_active(h);
}

/* ---- fd watchers ---- */

KART_API int kart_watch_init(kart_loop *loop, kart_watch *io, int fd)
{
    if (!loop || !io)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    kart__handle_init(&io->base, loop, KART_HANDLE_WATCH);
    io->fd = fd;
    io->events_ = 0;
    io->cb_ = NULL;
    return 0;
}

KART_API int kart_watch_start(kart_watch *io, uint32_t events, kart_watch_cb cb)
{
    if (!io || !cb)
        return -EINVAL;
    kart_selector *sel = io->base.loop->sel;
    int err = kart__handle_active(&io->base)
                  ? kart_selector_modify(sel, io->fd, events, &io->base)
                  : kart_selector_register(sel, io->fd, events, &io->base);
    if (err < 0)
        return err;
    io->events_ = events;
    io->cb_ = cb;
    kart__handle_start(&io->base);
    return 0;
}

KART_API int kart_watch_modify(kart_watch *w, uint32_t events)
{
    if (!w)
        return -EINVAL;
    if (!kart__handle_active(&w->base))
        return -ENOENT;
    int err = kart_selector_modify(w->base.loop->sel, w->fd, events, &w->base);
    if (err < 0)
        return err;
    w->events_ = events;
    return 0;
}

KART_API int kart_watch_stop(kart_watch *io)
{
    if (!io)
        return -EINVAL;
    if (!kart__handle_active(&io->base))
        return 0;
    kart_selector_unregister(io->base.loop->sel, io->fd);
    kart__handle_stop(&io->base);
    return 0;
}

/* ---- running ---- */

/* Doubles both event arrays; on failure they stay as they were. */
static void grow_events(kart_loop *loop)
{
    size_t n = (size_t)loop->nevents * 2;
    kart_event *e = realloc(loop->events, n * sizeof(*e));
    if (!e)
        return;
    loop->events = e;
    uint32_t *g = realloc(loop->event_gens, n * sizeof(*g));
    if (!g)
        return;
    loop->event_gens = g;
    loop->nevents = (int)n;
}

static void dispatch(kart_loop *loop, int n)
{
    for (int i = 0; i < n; i++) {
        kart_event *ev = &loop->events[i];
        const kart__reg *r = kart__selector_reg(loop->sel, ev->fd);
        /* A callback earlier in this batch may have stopped (and freed) the
         * handle this event was for, or closed its fd and started a watcher
         * (maybe the same struct) on the reused number: the table's
         * generation says whether the event is still current. A modify
         * also changes it; the fd's level, or for an edge-triggered
         * watcher the re-armed registration, reports it again. */
        if (!r || !r->registered || r->gen != loop->event_gens[i])
            continue;
        kart_handle *h = ev->data;
        switch (h->type) {
        case KART_HANDLE_WATCH: {
            kart_watch *io = (kart_watch *)h;
            uint32_t mask = (io->events_ & KART_EVENT_MASK) | KART_HANGUP | KART_ERROR | KART_RDHUP;
            /* A one-shot watcher is stopped before its callback, as a child
             * watcher is: the fd is then free to be closed or watched anew. */
            if (io->events_ & KART_ONESHOT)
                kart_watch_stop(io);
            if (ev->events & mask)
                io->cb_(io, ev->events & mask);
            break;
        }
        case KART_HANDLE_SIGNAL:
            kart__signals_dispatch(loop);
            break;
        case KART_HANDLE_FSWATCH:
            kart__fswatch_dispatch(loop);
            break;
        case KART_HANDLE_CHILD:
            kart__child_dispatch((kart_child *)h);
            break;
        case KART_HANDLE_SOCK:
            kart__io_ready((kart_sock *)h, ev->events);
            break;
        default:
            break;
        }
    }
    /* A full batch suggests more are ready: take more next time. */
    if (n == loop->nevents && loop->nevents < KART__EVENTS_MAX)
        grow_events(loop);
}

/* fired: how many timers this iteration has already run. */
static int64_t poll_timeout(const kart_loop *loop, kart_run_mode mode, int fired)
{
    if (mode == KART_RUN_NOWAIT || loop->stop_requested || loop->active_ref == 0 ||
        kart__io_has_work(loop))
        return 0;
    /* ONCE waits for something to happen; a timer that was already due
     * has happened, so the iteration only collects what else is ready. */
    if (mode == KART_RUN_ONCE && fired > 0)
        return 0;
    int64_t next = kart__timers_next_deadline(loop);
    if (next < 0)
        return -1;
    return next > loop->now ? next - loop->now : 0;
}

/* The loop this thread is running: another loop's wake-up may be posted
 * from its io_uring ring (uring/uring_msgring.c). Initial-exec: one load,
 * no __tls_get_addr call, on every send. */
_Thread_local kart_loop *kart__running_loop __attribute__((tls_model("initial-exec")));

KART_API int kart_loop_run(kart_loop *loop, kart_run_mode mode)
{
    if (!loop || (mode != KART_RUN_DEFAULT && mode != KART_RUN_ONCE && mode != KART_RUN_NOWAIT))
        return -EINVAL;
    if (loop->running)
        return -EBUSY;
    /* A fork child shares the parent's io_uring ring and signalfd: running
     * the parent's loop would steal its completions. It makes its own. */
    if (loop->fork_gen != kart__fork_gen())
        return -ECHILD;
    loop->running = true;
    loop->stop_requested = false;
    kart_loop *outer = kart__running_loop; /* a run nested in a callback */
    kart__running_loop = loop;
    int err = 0;
    loop->now = kart_now_ns();
    for (;;) {
        int fired = kart__timers_run(loop);
        /* Results of operations started outside the loop's callbacks (or
         * ended by a timer) are delivered before the wait. */
        if (loop->io)
            kart__io_flush(loop);
        if (loop->stop_requested || (mode == KART_RUN_DEFAULT && loop->active_ref == 0))
            break;
        int n = kart__selector_wait_gens(loop->sel, loop->events, loop->event_gens, loop->nevents,
                                         poll_timeout(loop, mode, fired));
        loop->now = kart_now_ns();
        if (n < 0) {
            err = n;
            break;
        }
        dispatch(loop, n);
        if (loop->ring_children)
            kart__children_ring_dispatch(loop);
        if (loop->ring_awaits)
            kart__awaits_ring_dispatch(loop);
        if (loop->io) {
            kart__io_complete(loop);
            kart__io_flush(loop);
        }
        /* A plain load first: the locked exchange only when a send came
         * (a send also wakes the selector, so one missed here is seen on
         * the next iteration). */
        if (atomic_load_explicit(&loop->async_signalled, memory_order_relaxed) &&
            atomic_exchange_explicit(&loop->async_signalled, 0, memory_order_acquire))
            kart__asyncs_dispatch(loop);
        if (mode != KART_RUN_DEFAULT) {
            kart__timers_run(loop);
            break;
        }
    }
    kart__running_loop = outer;
    loop->running = false;
    loop->stop_requested = false;
    if (loop->free_requested) {
        kart_loop_free(loop);
        return err < 0 ? err : 0;
    }
    if (err < 0)
        return err;
    return loop->active_ref > 0;
}

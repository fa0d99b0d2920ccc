/*
 * uring/uring.c — the io_uring backend of the selector (Linux 5.5 and later;
 * KART_EDGE needs 5.13).
 *
 * Readiness is asked for with IORING_OP_POLL_ADD. The one clever idea:
 * level-triggered mode is a single-shot poll that is re-armed at the start
 * of the next wait, in the same io_uring_enter as that wait. If the fd is
 * still ready, the kernel completes the new poll at once, which is exactly
 * level-triggered behaviour at no extra system call. KART_EDGE is a
 * multishot poll, re-armed only when the kernel ends it; KART_ONESHOT is a
 * single-shot poll that is not re-armed.
 *
 * Each request's user_data holds the fd and a sequence number that is new
 * for every request; the fd's table entry names the one request that is
 * current. A completion for any other (one that outlived a modify, an
 * unregister or a cancel) is dropped, so no event of an old registration is
 * ever reported, even for an fd number that is reused.
 *
 * A poll completion carries the bits of the wake-up, not of a fresh poll,
 * and since 5.13 the kernel adds POLLRDHUP to every poll. A completion with
 * nothing the registration reports (RDHUP on a write-only registration
 * whose peer shut down) would complete again at once if re-armed; such an
 * fd is "parked" on a multishot poll instead, which reports only new
 * wake-ups, until one brings a real event.
 *
 * Every wait is at most one io_uring_enter: the queued adds, re-arms and
 * cancels go in with the wait (more only when more are queued than the
 * submission ring holds). Unregister is the exception: it submits its
 * cancel at once, because a poll request holds a reference to its file, and
 * a socket closed right after unregistering would otherwise stay open (no
 * EOF for the peer) until the next wait.
 *
 * The completion ring is twice the submission ring. Kernels with
 * IORING_FEAT_NODROP (5.5) keep what does not fit on an overflow list that
 * each io_uring_enter with GETEVENTS flushes; a multishot poll that cannot
 * post is ended with a final completion (without IORING_CQE_F_MORE) on that
 * list, and is re-armed here. Completions that do not fit in the caller's
 * array stay in the ring for the next wait.
 */
#include "compiler.h"
#include "deadline.h"
#include "debug.h"
#include "fault.h"
#include "futex.h"
#include "uring_private.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE (1u << 28)
#endif

/* user_data of requests that are not polls for a registration (cancels,
 * the multishot probe): sequence 0, which a poll never has. liburing's own
 * timeouts (on kernels without IORING_FEAT_EXT_ARG) carry fd -1. */
#define UD_INTERNAL UINT64_C(0)
#define UD_PROBE UINT64_C(1)

static uint64_t ud_of(int fd, uint32_t seq)
{
    return (uint64_t)seq << 32 | (uint32_t)fd;
}

/* The first entry into a disabled single-issuer ring enables it: the
 * calling thread becomes the one thread allowed to submit, and registers
 * the ring fd, which spares the kernel an fd lookup on every enter. */
static int enable(uring_state *st)
{
    if (st->enabled)
        return 0;
    if (st->single_issuer) {
        /* The raw call: liburing 2.3 declares io_uring_enable_rings() but
         * does not export it. */
        if (kart__sys_io_uring_enable_rings(st->ring.ring_fd) < 0)
            return -errno;
        if (kart__sys_io_uring_register_ring_fd(&st->ring) < 0)
            kart__log(KART_LOG_DEBUG, "uring", "the ring fd could not be registered");
    }
    st->enabled = true;
    atomic_store_explicit(&st->msg_ok, true, memory_order_release);
    return 0;
}

int kart__ur_submit(uring_state *st)
{
    int err = enable(st);
    if (err < 0)
        return err;
    st->enters++;
    return kart__sys_io_uring_submit(&st->ring);
}

/* On an SQPOLL ring a submission only hands the SQEs to the kernel's
 * thread, which may not have taken them yet: room is waited for
 * (IORING_ENTER_SQ_WAIT, 5.10) until there are n free entries. */
static int sqpoll_room(uring_state *st, unsigned n)
{
    while (st->sqpoll && io_uring_sq_space_left(&st->ring) < n) {
        st->enters++;
        int err = io_uring_sqring_wait(&st->ring);
        if (err < 0 && err != -EINTR)
            return err;
    }
    return 0;
}

struct io_uring_sqe *kart__ur_sqe(uring_state *st, int *err)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&st->ring))) {
        int n = kart__ur_submit(st);
        if (n >= 0 && st->sqpoll) {
            int e = sqpoll_room(st, 1);
            n = e < 0 ? e : 1;
        }
        if (n <= 0) {
            *err = n < 0 ? n : -EBUSY;
            return NULL;
        }
    }
    return sqe;
}

int kart__ur_reserve(uring_state *st, unsigned n)
{
    if (io_uring_sq_space_left(&st->ring) >= n)
        return 0;
    int err = kart__ur_submit(st);
    if (err < 0)
        return err;
    err = sqpoll_room(st, n);
    if (err < 0)
        return err;
    return io_uring_sq_space_left(&st->ring) >= n ? 0 : -EBUSY;
}

#define get_sqe kart__ur_sqe
#define reserve_sqes kart__ur_reserve

static int arm(kart_selector *sel, uring_state *st, int fd, const kart__reg *reg, bool park)
{
    int err;
    struct io_uring_sqe *sqe = get_sqe(st, &err);
    if (!sqe)
        return err;
    unsigned mask = (uint16_t)kart__to_poll(reg->events);
    /* Since 5.18 a wake-up that matches a poll only through POLLPRI is
     * ignored, so a priority-only poll would never fire. The wake-ups that
     * carry POLLPRI (a socket's data_ready) also carry POLLRDBAND, which
     * tcp_poll never reports: asking for it lets them through. */
    if (reg->events & KART_PRIORITY)
        mask |= POLLRDBAND;
    if ((reg->events & KART_EXCLUSIVE) && (sel->caps & KART_CAP_EXCLUSIVE))
        mask = (mask & ~(unsigned)POLLRDHUP) | EPOLLEXCLUSIVE;
    park = park && (sel->caps & KART_CAP_EDGE);
    if (park || (reg->events & (KART_EDGE | KART_ONESHOT)) == KART_EDGE)
        io_uring_prep_poll_multishot(sqe, fd, mask);
    else
        io_uring_prep_poll_add(sqe, fd, mask);
    /* 31 bits: bit 63 of user_data marks native I/O operations. */
    st->seq = (st->seq + 1) & 0x7fffffffu ? (st->seq + 1) & 0x7fffffffu : 1;
    io_uring_sqe_set_data64(sqe, ud_of(fd, st->seq));
    st->fds[fd] = (ur_fd){.seq = st->seq, .parked = park};
    return 0;
}

/* ASYNC_CANCEL rather than POLL_REMOVE: since the poll rework (5.17) a
 * POLL_REMOVE that races with a wake-up fails with -EALREADY and leaves a
 * multishot poll armed, while a cancel marks the request and always ends it. */
static int cancel(uring_state *st, int fd, uint32_t seq)
{
    int err;
    struct io_uring_sqe *sqe = get_sqe(st, &err);
    if (!sqe)
        return err;
    io_uring_prep_cancel64(sqe, ud_of(fd, seq), 0);
    io_uring_sqe_set_data64(sqe, UD_INTERNAL);
    return 0;
}

/* Makes room for n more entries in the todo list. */
static int todo_room(uring_state *st, int n)
{
    if (st->ntodo + n <= st->todo_cap)
        return 0;
    int cap = st->todo_cap ? st->todo_cap * 2 : 64;
    ur_todo *p = realloc(st->todo, (size_t)cap * sizeof(*p));
    if (!p)
        return -ENOMEM;
    st->todo = p;
    st->todo_cap = cap;
    return 0;
}

/* Whether a watcher change that needs n SQEs must wait for the first wait:
 * the ring is not yet enabled (it belongs to the first thread that enters
 * it, see enable()) and its SQ has no room, so making room would enter it
 * from this thread. A loop is often set up on one thread, its watchers
 * started and stopped, and run on another; entering here made the setting-
 * up thread the ring's owner and the run fail (-EEXIST, -EINVAL). The
 * completion-I/O operations still make room by entering (a loop that
 * starts more of them than the SQ holds before its first run belongs to
 * that thread). */
static bool waits_for_owner(uring_state *st, unsigned n)
{
    return !st->enabled && io_uring_sq_space_left(&st->ring) < n;
}

/* Queues the arm of fd's registration for the first wait. flush_todo
 * drops it if the registration changes meanwhile. */
static int defer_arm(uring_state *st, int fd, const kart__reg *reg)
{
    if (todo_room(st, 1) < 0)
        return -ENOMEM;
    st->fds[fd].seq = 0;
    st->todo[st->ntodo++] = (ur_todo){.fd = fd, .id = reg->gen, .kind = TODO_ARM};
    return 0;
}

/* Multishot poll (5.13) cannot be told from plain poll by
 * io_uring_get_probe(), which knows only opcodes. So ask the kernel: before
 * 5.13 a POLL_ADD with IORING_POLL_ADD_MULTI in sqe->len fails with -EINVAL,
 * after it the first completion for an always-ready fd carries
 * IORING_CQE_F_MORE. The question is put to a small ring of its own (the
 * selector's may not be entered yet: see enable()), and the answer kept for
 * the process. */
typedef struct probe_answer {
    bool answered, ok;
} probe_answer;

static void *ask_kernel(void *arg)
{
    probe_answer *a = arg;
    struct io_uring ring;
    if (kart__sys_io_uring_queue_init(2, &ring, 0) < 0)
        return NULL;
    int efd = kart__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd >= 0) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_poll_multishot(sqe, efd, POLLOUT);
        io_uring_sqe_set_data64(sqe, UD_PROBE);
        struct io_uring_cqe *cqe = NULL;
        int err = kart__sys_io_uring_submit(&ring);
        if (err == 1) {
            do
                err = kart__sys_io_uring_wait_cqe(&ring, &cqe);
            while (err == -EINTR);
        }
        a->answered = err == 0;
        a->ok = a->answered && cqe->user_data == UD_PROBE && cqe->res > 0 &&
                (cqe->flags & IORING_CQE_F_MORE);
    }
    io_uring_queue_exit(&ring); /* ends the probe's poll too */
    if (efd >= 0)
        close(efd);
    return NULL;
}

static bool probe_multishot(void)
{
    static _Atomic int known; /* 0: not asked yet, 1: yes, 2: no */
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k)
        return k == 1;
    /* Asked from a thread of its own: closing a ring makes the kernel's
     * exit work queue task work to every thread that submitted to it, and
     * that work interrupts the thread's next blocking call (an epoll_wait
     * or a read just after kart_loop_create returned EINTR, in a program
     * with no signal handler). The probe's thread takes it instead. Without
     * a thread (none left, or a limit), the question is asked here. */
    probe_answer a = {0};
    pthread_t t;
    if (pthread_create(&t, NULL, ask_kernel, &a) == 0)
        pthread_join(t, NULL);
    else
        ask_kernel(&a);
    /* Only the kernel's answer is kept. A question that could not be put
     * (no eventfd at the descriptor limit, an enter that failed) says
     * nothing about the kernel: this selector goes without KART_EDGE, and
     * the next one asks again, as after a ring that could not be made. */
    if (a.answered)
        atomic_store_explicit(&known, a.ok ? 1 : 2, memory_order_relaxed);
    return a.ok;
}

/* Multishot receive with provided-buffer rings and multishot accept came
 * in 6.0 (buffer rings 5.19); no probe tells them apart from the plain
 * opcodes, so the kernel's version decides. KART_URING_NATIVE_IO=0 in the
 * environment turns native operations off (the emulation then runs over
 * this backend's polls), for tests and comparisons. */
static bool native_io_ok(void)
{
    const char *env = getenv("KART_URING_NATIVE_IO");
    if (env && strcmp(env, "0") == 0)
        return false;
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return false;
    return major > 6 || (major == 6 && minor >= 0);
}

/* The SQPOLL thread's idle time asked for, capped at a minute: the
 * option, else KART_URING_SQPOLL_MS from the environment (for tests and
 * comparisons: a program's loops all get it without a rebuild). */
static unsigned sqpoll_ms(const kart_selector_options *opts)
{
    unsigned long ms = opts->uring_sqpoll_ms;
    const char *env = getenv("KART_URING_SQPOLL_MS");
    if (!ms && env && *env)
        ms = strtoul(env, NULL, 10);
    return ms > 60000 ? 60000 : (unsigned)ms;
}

static int ur_init(kart_selector *sel, const kart_selector_options *opts)
{
    uring_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    unsigned entries = opts->uring_entries ? opts->uring_entries : 256;
    entries = entries < 2 ? 2 : entries > 32768 ? 32768 : entries;
    /* SINGLE_ISSUER (6.0) and DEFER_TASKRUN (6.1): completions are run only
     * when the owning thread enters the ring to wait, in one batch, never
     * by interrupting it. The owner is the first thread that enters it
     * (R_DISABLED until then, see enable()), so a loop may be created on
     * one thread and run on another. Only a loop's selector gets them: a
     * bare selector may move from thread to thread. Where they are
     * refused, or for a bare selector: COOP_TASKRUN
     * (5.19) still runs completions only when we enter the kernel anyway,
     * and SUBMIT_ALL (5.18) keeps one failed SQE from holding back the rest
     * of a batch. Older kernels refuse all of them with -EINVAL. */
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED |
            IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        0,
    };
    struct io_uring_params p;
    int err = -EINVAL;
    /* SQPOLL (opt-in): a kernel thread takes the SQEs as they are queued.
     * The kernel refuses it with DEFER_TASKRUN and COOP_TASKRUN (-EINVAL),
     * so it is tried alone (with SUBMIT_ALL, then without); any refusal
     * (-EINVAL before 5.x, -EPERM for an unprivileged caller before 5.11,
     * -ENOMEM ...) falls back to the ordinary ring below. */
    bool sqpoll = false;
    unsigned idle = sqpoll_ms(opts);
    if (idle) {
        static const unsigned sq_tries[] = {IORING_SETUP_SQPOLL | IORING_SETUP_SUBMIT_ALL,
                                            IORING_SETUP_SQPOLL};
        for (size_t i = 0; i < KART__ARRAY_LEN(sq_tries) && !sqpoll; i++) {
            p = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE | sq_tries[i],
                                         .cq_entries = 2 * entries,
                                         .sq_thread_idle = idle};
            err = kart__sys_io_uring_queue_init_params(entries, &st->ring, &p);
            sqpoll = err == 0;
        }
        if (!sqpoll)
            kart__log(KART_LOG_INFO, "uring", "SQPOLL refused (%s), the ring goes without it",
                      strerror(-err));
        err = sqpoll ? 0 : -EINVAL;
    }
    for (size_t i = sel->one_thread ? 0 : 1;
         !sqpoll && i < KART__ARRAY_LEN(tries) && err == -EINVAL; i++) {
        p = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE | tries[i],
                                     .cq_entries = 2 * entries};
        err = kart__sys_io_uring_queue_init_params(entries, &st->ring, &p);
        st->single_issuer = err == 0 && (tries[i] & IORING_SETUP_SINGLE_ISSUER);
    }
    /* Without NODROP (before 5.5) a full completion ring loses events. */
    if (err == 0 && !(p.features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&st->ring);
        err = -ENOSYS;
    }
    if (err < 0) {
        free(st);
        return err;
    }
    sel->backend_state = st;
    /* EPOLLEXCLUSIVE is bit 28, read from sqe->poll32_events since 5.9. */
    if (!(p.features & IORING_FEAT_POLL_32BITS))
        sel->caps &= ~KART_CAP_EXCLUSIVE;
    if (!probe_multishot()) {
        kart__log(KART_LOG_INFO, "uring", "no multishot poll, KART_EDGE unavailable");
        sel->caps &= ~KART_CAP_EDGE;
    }
    st->sqpoll = sqpoll;
    if (sqpoll)
        sel->caps |= KART_CAP_SQPOLL;
    st->native_io = native_io_ok();
    st->enabled = !st->single_issuer;
    atomic_init(&st->msg_ok, st->enabled);
    return 0;
}

static void ur_fini(kart_selector *sel)
{
    uring_state *st = sel->backend_state;
    io_uring_queue_exit(&st->ring);
    kart__ur_waitid_fini(st);
    kart__ur_futex_fini(st);
    free(st->cqes);
    free(st->fds);
    free(st->todo);
    free(st->kicks);
    free(st);
}

static int ur_add(kart_selector *sel, int fd, const kart__reg *reg)
{
    uring_state *st = sel->backend_state;
    if (fd >= st->nfds) {
        int n = st->nfds ? st->nfds : 64;
        while (n <= fd)
            n *= 2;
        ur_fd *f = realloc(st->fds, (size_t)n * sizeof(*f));
        if (!f)
            return -ENOMEM;
        memset(f + st->nfds, 0, (size_t)(n - st->nfds) * sizeof(*f));
        st->fds = f;
        st->nfds = n;
    }
    if (waits_for_owner(st, 1))
        return defer_arm(st, fd, reg);
    return arm(sel, st, fd, reg, false);
}

/* A cancel and a new poll rather than IORING_POLL_UPDATE, which fails when
 * the old poll has just completed, something we cannot see from here. */
static int ur_mod(kart_selector *sel, int fd, uint32_t old_events, const kart__reg *reg)
{
    (void)old_events;
    uring_state *st = sel->backend_state;
    uint32_t seq = st->fds[fd].seq;
    if (waits_for_owner(st, seq ? 2 : 1)) {
        if (todo_room(st, 2) < 0)
            return -ENOMEM;
        if (seq)
            st->todo[st->ntodo++] = (ur_todo){.fd = fd, .id = seq, .kind = TODO_CANCEL};
        return defer_arm(st, fd, reg);
    }
    int err = reserve_sqes(st, seq ? 2 : 1);
    if (err < 0)
        return err;
    if (seq)
        cancel(st, fd, seq);
    return arm(sel, st, fd, reg, false);
}

static int ur_del(kart_selector *sel, int fd, const kart__reg *reg)
{
    (void)reg;
    uring_state *st = sel->backend_state;
    uint32_t seq = st->fds[fd].seq;
    st->fds[fd].seq = 0;
    if (!seq)
        return 0; /* its poll completed: the kernel holds nothing */
    if (waits_for_owner(st, 1) || cancel(st, fd, seq) < 0) {
        if (todo_room(st, 1) == 0)
            st->todo[st->ntodo++] = (ur_todo){.fd = fd, .id = seq, .kind = TODO_CANCEL};
        else
            kart__log(KART_LOG_WARNING, "uring", "cannot cancel the poll of fd %d", fd);
        return 0;
    }
    if (st->enabled)
        kart__ur_submit(st);
    return 0;
}

/* Queues the work left by earlier calls. An arm whose registration was
 * modified or unregistered meanwhile is dropped; work the ring cannot take
 * now is kept for the next wait. */
static void flush_todo(kart_selector *sel, uring_state *st)
{
    int kept = 0, err = 0;
    for (int i = 0; i < st->ntodo; i++) {
        ur_todo t = st->todo[i];
        const kart__reg *r = kart__selector_reg(sel, t.fd);
        if (t.kind != TODO_CANCEL && (!r || !r->registered || r->gen != t.id))
            continue;
        if (err == 0)
            err = t.kind == TODO_CANCEL ? cancel(st, t.fd, t.id)
                                        : arm(sel, st, t.fd, r, t.kind == TODO_PARK);
        if (err < 0)
            st->todo[kept++] = t;
    }
    st->ntodo = kept;
}

/* The KART_* bits of a completion that the registration reports (the
 * core's rule: what was asked, HANGUP, ERROR, and RDHUP with READABLE). */
static uint32_t reported(int fd, const kart__reg *r, unsigned res)
{
    /* The wake-ups of a socket's data carry POLLPRI whether or not urgent
     * data came: only poll(2) can tell. */
    if ((r->events & KART_PRIORITY) && (res & POLLPRI)) {
        struct pollfd p = {.fd = fd, .events = POLLPRI};
        if (kart__sys_poll(&p, 1, 0) != 1 || !(p.revents & POLLPRI))
            res &= ~(unsigned)POLLPRI;
    }
    return kart__from_poll(res) & kart__wanted(r->events);
}

/* Moves completions into out after its first n entries: at most max
 * entries, one per fd (a multishot poll may complete several times in one
 * wait), stale ones dropped. What does not fit stays in the ring. */
static int reap(kart_selector *sel, uring_state *st, kart__ready *out, int n, int max)
{
    struct io_uring_cqe *c;
    unsigned head, seen = 0;
    int err = 0;
    if (io_uring_cq_has_overflow(&st->ring)) {
        /* Logged on the first of a run of overflows only, not per wait. */
        if (!st->overflowing)
            kart__log(KART_LOG_WARNING, "uring",
                      "completion queue overflowed (kernel keeps the completions until there "
                      "is room; %u dropped so far)",
                      st->ring.cq.koverflow ? *st->ring.cq.koverflow : 0);
        st->overflowing = true;
        st->overflows++;
    } else {
        st->overflowing = false;
    }
    io_uring_for_each_cqe(&st->ring, head, c)
    {
        /* Kernel features' completions (uring_msgring.c, uring_waitid.c,
         * uring_futex.c). */
        uint64_t kind = c->user_data & (KART__UD_OP | KART__UDK_MASK);
        if (c->user_data == KART__UD_WAKE || kind == (KART__UD_OP | KART__UDK_WAITID) ||
            kind == (KART__UD_OP | KART__UDK_FUTEX)) {
            if (c->user_data == KART__UD_WAKE) {
                KART__TSAN_ACQUIRE(st); /* uring_msgring.c's release */
                st->woken = true;
            } else if (kind == (KART__UD_OP | KART__UDK_FUTEX))
                kart__ur_futex_done(st, c->user_data, c->res);
            else
                kart__ur_waitid_done(st, c->user_data, c->res);
            seen++;
            continue;
        }
        if (c->user_data & KART__UD_OP) {
            /* A native I/O operation's: handed to the loop as it is. */
            if (st->ncqes == st->cqe_cap) {
                int cap = st->cqe_cap ? st->cqe_cap * 2 : 256;
                kart__cqe *q = realloc(st->cqes, (size_t)cap * sizeof(*q));
                if (!q) {
                    err = -ENOMEM;
                    break;
                }
                st->cqes = q;
                st->cqe_cap = cap;
            }
            st->cqes[st->ncqes++] =
                (kart__cqe){.ud = c->user_data, .res = c->res, .flags = c->flags};
            seen++;
            continue;
        }
        int fd = (int)(uint32_t)c->user_data;
        uint32_t seq = (uint32_t)(c->user_data >> 32);
        const kart__reg *r = kart__selector_reg(sel, fd);
        if (seq == 0 || !r || !r->registered || fd >= st->nfds || st->fds[fd].seq != seq) {
            seen++;
            continue;
        }
        ur_fd *f = &st->fds[fd];
        bool more = c->flags & IORING_CQE_F_MORE;
        bool oneshot = r->events & KART_ONESHOT;
        bool edge = (r->events & (KART_EDGE | KART_ONESHOT)) == KART_EDGE;
        uint32_t ev = 0;
        bool unpark = false;
        int next = -1; /* a TODO_ARM or TODO_PARK to queue */
        if (c->res >= 0) {
            ev = reported(fd, r, (unsigned)c->res);
            if (ev) {
                /* A real event ends parking: the fd goes back to its own
                 * mode at the next wait. */
                unpark = f->parked && more;
                if ((!more || f->parked) && !oneshot)
                    next = TODO_ARM;
            } else if (!more) {
                next = edge ? TODO_ARM : TODO_PARK;
            }
        } else if (c->res == -ECANCELED) {
            /* Not our cancel (that makes the request stale): the kernel
             * ends the polls of a thread that exits. Nothing was reported,
             * so even a one-shot registration is armed again. */
            next = f->parked ? TODO_PARK : TODO_ARM;
        } else if (c->res != -EBADF) {
            /* -EBADF: the fd was closed before its poll went in, a misuse
             * that epoll and poll silence too. */
            ev = KART_ERROR;
        }
        bool merge = ev && f->pos < n && out[f->pos].fd == fd;
        if (ev && !merge && n == max)
            break;
        if (todo_room(st, 2) < 0) {
            err = -ENOMEM;
            break;
        }
        seen++;
        if (unpark)
            st->todo[st->ntodo++] = (ur_todo){.fd = fd, .id = seq, .kind = TODO_CANCEL};
        if (!more || unpark)
            f->seq = 0;
        if (next >= 0)
            st->todo[st->ntodo++] = (ur_todo){.fd = fd, .id = r->gen, .kind = next};
        if (merge) {
            out[f->pos].events |= ev;
        } else if (ev) {
            f->pos = n;
            out[n++] = (kart__ready){.fd = fd, .events = ev, .gen = r->gen};
        }
    }
    io_uring_cq_advance(&st->ring, seen);
    return n ? n : err;
}

/* One io_uring_enter that submits, runs deferred task work and flushes
 * overflowed completions without waiting for any; then reaps after the n
 * results already in out. */
static int enter_nowait(kart_selector *sel, uring_state *st, kart__ready *out, int n, int max)
{
    st->enters++;
    kart__sys_io_uring_submit_and_get_events(&st->ring);
    return reap(sel, st, out, n, max);
}

static int wait_once(kart_selector *sel, kart__ready *out, int max, int64_t timeout_ns)
{
    uring_state *st = sel->backend_state;
    int err = enable(st);
    if (err < 0)
        return err;
    flush_todo(sel, st);
    /* Completions left by the last wait come first. With some in hand the
     * wait must not block: one io_uring_enter then submits what is queued
     * (re-arms that may complete at once, new operations) and flushes
     * overflowed completions, or none at all when there is nothing to do. */
    int n = reap(sel, st, out, 0, max);
    if (n != 0 || st->ncqes || st->woken) {
        if (n < 0 || n == max ||
            (!io_uring_sq_ready(&st->ring) && !io_uring_cq_has_overflow(&st->ring)))
            return n;
        return enter_nowait(sel, st, out, n, max);
    }
    if (timeout_ns == 0) {
        /* A wait that must not block. An enter told to wait for one
         * completion with a zero timeout spent ~40 us in the kernel's
         * io_cqring_wait when none was there (this 6.18 VM; perf: 94% of
         * a driver's samples, with and without a context switch): 40 us
         * per turn of a loop whose results come before its wait (the
         * emulated sends). An enter that only gets events (no completion
         * waited for) submits, runs the deferred task work that makes
         * completions, and flushes overflowed ones, without the timer. */
        return enter_nowait(sel, st, out, 0, max);
    }
    struct timespec t = kart__timespec(timeout_ns);
    struct __kernel_timespec ts = {.tv_sec = t.tv_sec, .tv_nsec = t.tv_nsec};
    struct io_uring_cqe *cqe;
    /* Submits, flushes overflowed completions and waits for one, all in
     * one io_uring_enter. */
    st->enters++;
    int ret = kart__sys_io_uring_submit_and_wait_timeout(&st->ring, &cqe, 1,
                                                         timeout_ns < 0 ? NULL : &ts, NULL);
    n = reap(sel, st, out, 0, max);
    if (n != 0 || st->ncqes || st->woken)
        return n;
    /* -ETIME is a timeout. -EBUSY (5.x kernels: the overflow list could
     * not be flushed into a full ring) and -EAGAIN (no memory for requests)
     * clear once completions are reaped: the core calls again. */
    if (ret == -ETIME || ret == -EBUSY || ret == -EAGAIN || ret >= 0)
        return 0;
    return ret;
}

static int ur_wait(kart_selector *sel, kart__ready *out, int max, int64_t timeout_ns)
{
    uring_state *st = sel->backend_state;
    st->woken = false;
    int n = wait_once(sel, out, max, timeout_ns);
    /* A MSG_RING wake-up or a child's exit is news as a completion is. */
    sel->completions = st->ncqes > 0 || st->woken;
    return n;
}

/* Native completion I/O needs multishot receive and provided-buffer rings
 * (6.0); older kernels get the emulation over this backend's readiness. */
static const struct kart__io_mode *ur_io_mode(kart_selector *sel)
{
    return ((uring_state *)sel->backend_state)->native_io ? &kart__uring_io_mode : NULL;
}

/* Nested (kart_selector_fileno): the ring fd is readable while completions
 * wait in it, so every poll the next wait would submit (an add, a re-arm
 * of a level-triggered fd) is submitted now instead. The calling thread
 * enters the ring, and so owns a single-issuer one. */
static void ur_sync(kart_selector *sel)
{
    uring_state *st = sel->backend_state;
    if (enable(st) < 0)
        return;
    flush_todo(sel, st);
    if (io_uring_sq_ready(&st->ring))
        kart__ur_submit(st);
}

static int ur_fileno(kart_selector *sel)
{
    ur_sync(sel);
    return ((uring_state *)sel->backend_state)->ring.ring_fd;
}

const kart__backend_ops kart__backend_uring = {
    .name = "uring",
    .caps = KART_CAP_EDGE | KART_CAP_EXCLUSIVE | KART__CAP_NATIVE_ONESHOT | KART__CAP_EARLY_LEVEL,
    .init = ur_init,
    .fini = ur_fini,
    .add = ur_add,
    .mod = ur_mod,
    .del = ur_del,
    .wait = ur_wait,
    .io_mode = ur_io_mode,
    .fileno = ur_fileno,
    .sync = ur_sync,
    .wake_from = kart__ur_msg_wake,
    .child_start = kart__ur_waitid_start,
    .child_stop = kart__ur_waitid_stop,
    .child_next = kart__ur_waitid_next,
    .futex_start = kart__ur_futex_start,
    .futex_stop = kart__ur_futex_stop,
    .futex_next = kart__ur_futex_next,
};

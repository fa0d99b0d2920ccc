/*
 * core/loop/backend.h — the readiness backend contract, and the selector's
 * registration table that every backend shares.
 *
 * A backend is one file exporting one `kart__backend_ops` table filled with
 * designated initializers (the shape of Redis's ae_epoll.c and fio's
 * ioengine_ops). The core keeps the authoritative registration table — fd
 * number to events, flags, user data and a generation — so that every
 * backend shares one set of rules: validation, -EEXIST/-ENOENT, masking of
 * reported events, one-shot emulation, and dropping events for fds that
 * were unregistered. A backend only translates between that table and its
 * kernel interface. Completion I/O has its own contract beside this one
 * (core/io/io_private.h's kart__io_mode); docs/ARCHITECTURE.md draws both.
 */
#ifndef KART_BACKEND_H
#define KART_BACKEND_H

#include <kart/selector.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

/* Internal capability bits, above the public KART_CAP_* ones. */
#define KART__CAP_NATIVE_ONESHOT 0x100u /* the kernel disarms after one report */
#define KART__CAP_CHECKS_FD 0x200u      /* add itself fails with EBADF/EPERM */
/* Nested (ops->sync), level-triggered polls are armed before the wait
 * that reports them: the core checks the fd is still ready. */
#define KART__CAP_EARLY_LEVEL 0x400u

/* One registration. `gen` changes on every register and modify, so that a
 * backend whose kernel requests outlive an unregister (io_uring) can tell a
 * stale completion from a current one. */
typedef struct kart__reg {
    void *data;
    uint32_t events; /* KART_* event bits and flags as registered */
    uint32_t gen;
    bool registered;
    bool internal; /* the selector's own wake-up fd: never reported */
    bool disarmed; /* one-shot emulation: reported, waiting for modify */
} kart__reg;

/* What a backend's wait hands to the core: an fd, KART_* bits, and the
 * generation of the registration the kernel reported for, or 0 when the
 * backend's kernel interface cannot outlive an unregister (poll, select).
 * The core drops an entry whose generation is not the current one. */
typedef struct kart__ready {
    int fd;
    uint32_t events;
    uint32_t gen;
} kart__ready;

/* Generations are never 0, so that 0 can mean "not checked". */
static inline uint32_t kart__next_gen(uint32_t gen)
{
    return gen + 1 ? gen + 1 : 1;
}

struct kart_child; /* kart/loop.h: the child-exit hooks below */

typedef struct kart__backend_ops {
    const char *name;
    unsigned caps; /* KART_CAP_* | KART__CAP_* */
    /* Sets sel->backend_state, and may clear bits of sel->caps (preset to
     * ops->caps) that this kernel cannot honour. Returns 0 or a negative
     * errno (the core skips a backend whose init fails when none was
     * forced). */
    int (*init)(kart_selector *sel, const kart_selector_options *opts);
    void (*fini)(kart_selector *sel);
    /* reg is already filled in (events, gen); add and mod may fail with a
     * negative errno, in which case the core leaves its table as before. */
    int (*add)(kart_selector *sel, int fd, const kart__reg *reg);
    int (*mod)(kart_selector *sel, int fd, uint32_t old_events, const kart__reg *reg);
    /* Must not fail for an fd that was closed behind the selector's back. */
    int (*del)(kart_selector *sel, int fd, const kart__reg *reg);
    /* Waits once (EINTR may be returned: the core retries) and stores at
     * most max ready entries; readiness that does not fit stays for the
     * next call. Entries for unregistered fds are dropped by the core, and
     * returning 0 before the timeout is harmless: the core waits again
     * for the time left. */
    int (*wait)(kart_selector *sel, kart__ready *out, int max, int64_t timeout_ns);
    /* Completion-based I/O done natively by this backend, when this kernel
     * allows it; NULL (or a NULL op): the loop emulates it over readiness.
     * The table's type is core/io/io_private.h's. */
    const struct kart__io_mode *(*io_mode)(kart_selector *sel);
    /* The descriptor that is readable while a wait would report something
     * (kart_selector_fileno), from now on; NULL: the backend has none. */
    int (*fileno)(kart_selector *sel);
    /* Hands the kernel what the backend queued for the next wait, so that
     * the fileno reflects every registration now; called after each
     * change and wait once fileno was asked for. NULL: nothing queued. */
    void (*sync)(kart_selector *sel);
    /* Kernel features a backend may offer a loop's selector (NULL, or
     * -ENOTSUP from a call: the core takes its portable path; io_uring's
     * are in uring/uring_msgring.c and uring/uring_waitid.c).
     * wake_from wakes `to`, another loop's selector, from sel, the
     * selector of the loop this thread is running: 0 when posted, or a
     * negative errno, and the caller writes to's wake-up fd. The wait it
     * ends sets sel->completions. */
    int (*wake_from)(kart_selector *sel, kart_selector *to);
    /* Child-exit watching: child_start watches child->pid (0 or a
     * negative errno); child_stop ends that; child_next hands over a
     * watcher whose child exited (*res 0), is gone (*res -ECHILD) or
     * could not be watched (another negative errno), or NULL when none is
     * left. A wait that finds one sets sel->completions. The child is
     * reaped by the core, never by the backend. */
    int (*child_start)(kart_selector *sel, struct kart_child *child);
    void (*child_stop)(kart_selector *sel, struct kart_child *child);
    struct kart_child *(*child_next)(kart_selector *sel, int *res);
    /* Futex waits on the ring (kart_future_await, core/loop/loop_future.c):
     * futex_start queues a wait on the private 32-bit word while it holds
     * val, for tag (0 or a negative errno: -ENOTSUP, the core's portable
     * path then; a NULL word only asks whether a wait could be queued
     * now, and queues nothing); futex_stop forgets tag's wait, or every wait for a NULL
     * tag (its completion is then dropped; the ring's close cancels it); futex_next hands over a tag whose wait completed (*res 0:
     * woken; -EAGAIN: the word did not hold val; another errno: the wait
     * failed), or NULL when none is left. A wait that finds one sets
     * sel->completions. The word is only read by the kernel. */
    int (*futex_start)(kart_selector *sel, const _Atomic uint32_t *word, uint32_t val, void *tag);
    void (*futex_stop)(kart_selector *sel, void *tag);
    void *(*futex_next)(kart_selector *sel, int *res);
} kart__backend_ops;

struct kart_selector {
    const kart__backend_ops *ops;
    void *backend_state;
    unsigned caps;   /* ops->caps, less what init found the kernel lacks */
    kart__reg *regs; /* indexed by fd */
    int nregs;       /* allocated entries */
    int count;       /* registered fds, the wake-up fd excluded */
    int wake_fd;     /* eventfd (or the read end of a pipe) */
    int wake_wfd;    /* the fd written by kart_selector_wake() */
    kart__ready *scratch;
    int nscratch;
    /* Set before init: the selector is a loop's, which belongs to one
     * thread for good, so a backend may bind its kernel object to the
     * thread that first waits (io_uring's single-issuer ring); a bare
     * selector may move between threads. */
    bool one_thread;
    /* Set by a wait that collected completions of native I/O operations
     * for the loop (io_uring): news even when no fd is ready. */
    bool completions;
    /* kart_selector_fileno() was called: the selector is nested in another
     * loop, and ops->sync runs after each change and wait. */
    bool nested;
};

/* kart_selector_create() for a loop (one_thread) or for a bare selector. */
int kart__selector_create(kart_selector **out, const kart_selector_options *opts, bool one_thread);

/* Backends compiled into this build. */
extern const kart__backend_ops kart__backend_uring;
extern const kart__backend_ops kart__backend_epoll;
extern const kart__backend_ops kart__backend_kqueue;
extern const kart__backend_ops kart__backend_poll;
extern const kart__backend_ops kart__backend_select;

/* The registration for fd, or NULL when fd is outside the table. */
static inline kart__reg *kart__selector_reg(const kart_selector *sel, int fd)
{
    return (fd >= 0 && fd < sel->nregs) ? &sel->regs[fd] : NULL;
}

/* Translations between KART_* bits and poll(2)'s (epoll and io_uring use
 * the same values for these bits on Linux). */
static inline short kart__to_poll(uint32_t events)
{
    short p = 0; /* short: the type of struct pollfd's events */
    if (events & KART_READABLE) {
        p |= POLLIN;
#ifdef POLLRDHUP
        p |= POLLRDHUP;
#endif
    }
    if (events & KART_WRITABLE)
        p |= POLLOUT;
    if (events & KART_PRIORITY)
        p |= POLLPRI;
    return p;
}

static inline uint32_t kart__from_poll(unsigned revents)
{
    uint32_t e = 0;
    if (revents & POLLIN)
        e |= KART_READABLE;
    if (revents & POLLOUT)
        e |= KART_WRITABLE;
    if (revents & POLLPRI)
        e |= KART_PRIORITY;
    if (revents & POLLHUP)
        e |= KART_HANGUP;
    if (revents & POLLERR)
        e |= KART_ERROR;
#ifdef POLLRDHUP
    if (revents & POLLRDHUP)
        e |= KART_RDHUP;
#endif
    return e;
}

/* The bits a registration reports: what it asked for, plus hang-up and
 * error always, plus peer half-close for readers (not for exclusive ones:
 * epoll's EPOLLEXCLUSIVE admits no EPOLLRDHUP, and the rule is kept on
 * every backend). */
static inline uint32_t kart__wanted(uint32_t events)
{
    uint32_t want = (events & KART_EVENT_MASK) | KART_HANGUP | KART_ERROR;
    if ((events & KART_READABLE) && !(events & KART_EXCLUSIVE))
        want |= KART_RDHUP;
    return want;
}

/* kart_selector_wait() that also stores, for each event, the generation
 * of the registration it was reported for (gens may be NULL): the loop
 * compares them before each callback. */
int kart__selector_wait_gens(kart_selector *sel, kart_event *events, uint32_t *gens, int max,
                             int64_t timeout_ns);

#endif

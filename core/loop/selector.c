/*
 * core/selector.c — the selector every backend sits behind.
 *
 * The one idea here: the core owns the registration table, so the rules
 * users see (validation, -EEXIST/-ENOENT, which bits are reported,
 * one-shot, no event after unregister, EINTR retry, wake-up) are written
 * once and hold on every backend; a backend only speaks to its kernel
 * interface. The wake-up fd is an ordinary registration marked internal.
 */
#include "backend.h"
#include "compiler.h"
#include "deadline.h"
#include "debug.h"
#include "fault.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

/* One backend per row, in the order they are tried. */
/* clang-format off */
static const kart__backend_ops *const all_backends[] = {
#ifdef KART_HAVE_URING
    &kart__backend_uring,
#endif
#ifdef __linux__
    &kart__backend_epoll,
#endif
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) ||   \
    defined(__OpenBSD__) || defined(__DragonFly__)
    &kart__backend_kqueue,
#endif
    &kart__backend_poll,
    &kart__backend_select,
};
/* clang-format on */

KART_API const char *const *kart_backends(void)
{
    static const char *names[KART__ARRAY_LEN(all_backends) + 1];
    static _Atomic int ready;
    if (!ready) {
        /* Idempotent: concurrent first callers write the same pointers. */
        for (size_t i = 0; i < KART__ARRAY_LEN(all_backends); i++)
            __atomic_store_n(&names[i], all_backends[i]->name, __ATOMIC_RELAXED);
        ready = 1;
    }
    return names;
}

static const kart__backend_ops *find_backend(const char *name)
{
    for (size_t i = 0; i < KART__ARRAY_LEN(all_backends); i++)
        if (strcmp(all_backends[i]->name, name) == 0)
            return all_backends[i];
    return NULL;
}

static int grow_table(kart_selector *sel, int fd)
{
    if (fd < sel->nregs)
        return 0;
    int n = sel->nregs ? sel->nregs : 64;
    while (n <= fd) {
        if (n > (1 << 29))
            return -ENOMEM;
        n *= 2;
    }
    kart__reg *r = realloc(sel->regs, (size_t)n * sizeof(*r));
    if (!r)
        return -ENOMEM;
    memset(r + sel->nregs, 0, (size_t)(n - sel->nregs) * sizeof(*r));
    sel->regs = r;
    sel->nregs = n;
    return 0;
}

static int open_wake_fds(kart_selector *sel)
{
#ifdef __linux__
    int fd = kart__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    sel->wake_fd = sel->wake_wfd = fd;
#else
    int p[2];
    if (kart__sys_pipe(p) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
    }
    sel->wake_fd = p[0];
    sel->wake_wfd = p[1];
#endif
    return 0;
}

static void close_wake_fds(kart_selector *sel)
{
    if (sel->wake_wfd >= 0 && sel->wake_wfd != sel->wake_fd)
        close(sel->wake_wfd);
    if (sel->wake_fd >= 0)
        close(sel->wake_fd);
    sel->wake_fd = sel->wake_wfd = -1;
}

static int start_backend(kart_selector *sel, const kart__backend_ops *ops,
                         const kart_selector_options *opts)
{
    sel->ops = ops;
    sel->caps = ops->caps;
    int err = ops->init(sel, opts);
    if (err < 0) {
        sel->ops = NULL;
        return err;
    }
    err = grow_table(sel, sel->wake_fd);
    if (err == 0) {
        kart__reg *r = &sel->regs[sel->wake_fd];
        *r = (kart__reg){.events = KART_READABLE,
                         .gen = kart__next_gen(r->gen),
                         .registered = true,
                         .internal = true};
        err = ops->add(sel, sel->wake_fd, r);
        if (err < 0)
            r->registered = r->internal = false;
    }
    if (err < 0) {
        ops->fini(sel);
        sel->ops = NULL;
        sel->backend_state = NULL;
    }
    return err;
}

KART_API int kart_selector_create(kart_selector **out, const kart_selector_options *opts)
{
    return kart__selector_create(out, opts, false);
}

int kart__selector_create(kart_selector **out, const kart_selector_options *opts, bool one_thread)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    kart_selector_options defaults = {0};
    if (!opts)
        opts = &defaults;
    const char *forced = opts->backend;
    if (!forced) {
        const char *env = getenv("KART_BACKEND");
        if (env && *env)
            forced = env;
    }
    if (forced && !*forced)
        return -EINVAL;

    kart_selector *sel = calloc(1, sizeof(*sel));
    if (!sel)
        return -ENOMEM;
    sel->wake_fd = sel->wake_wfd = -1;
    sel->one_thread = one_thread;
    int err = open_wake_fds(sel);
    if (err < 0) {
        free(sel);
        return err;
    }

    if (forced) {
        const kart__backend_ops *ops = find_backend(forced);
        err = ops ? start_backend(sel, ops, opts) : KART_EUNKNOWNBACKEND;
    } else {
        err = KART_ENOBACKEND;
        for (size_t i = 0; i < KART__ARRAY_LEN(all_backends); i++) {
            int e = start_backend(sel, all_backends[i], opts);
            if (e == 0) {
                err = 0;
                break;
            }
            /* A host may forbid io_uring (seccomp, the io_uring_disabled
             * sysctl, memlock limits): fall through to the next one. */
            kart__log(KART_LOG_DEBUG, "loop", "backend %s unavailable: %s", all_backends[i]->name,
                      kart_strerror(e));
        }
    }
    if (err < 0) {
        close_wake_fds(sel);
        free(sel->regs);
        free(sel);
        return err;
    }
    *out = sel;
    return 0;
}

KART_API void kart_selector_free(kart_selector *sel)
{
    if (!sel)
        return;
    sel->ops->fini(sel);
    close_wake_fds(sel);
    free(sel->regs);
    free(sel->scratch);
    free(sel);
}

KART_API const char *kart_selector_backend(const kart_selector *sel)
{
    return sel->ops->name;
}

KART_API unsigned kart_selector_caps(const kart_selector *sel)
{
    return sel->caps &
           (KART_CAP_EDGE | KART_CAP_EXCLUSIVE | KART_CAP_FDSET_LIMIT | KART_CAP_SQPOLL);
}

KART_API int kart_selector_count(const kart_selector *sel)
{
    return sel->count;
}

typedef struct probe_job {
    const char *name;
    int err;
} probe_job;

static void *probe_backend(void *arg)
{
    probe_job *job = arg;
    kart_selector *sel;
    kart_selector_options o = {.backend = job->name};
    job->err = kart_selector_create(&sel, &o);
    if (job->err == 0)
        kart_selector_free(sel);
    return NULL;
}

/* The backend is made and freed on a thread of its own: closing an
 * io_uring makes the kernel queue task work to the thread that created it
 * (Linux 6.x), and that work interrupts the thread's next interruptible
 * call: an epoll_wait, or a recv with SO_RCVTIMEO, just after the probe
 * returned EINTR in a program with no signal handler. A thread that exits
 * takes it with it. Without a thread, the probe runs here. */
KART_API int kart_backend_probe(const char *name)
{
    if (!name || !*name)
        return -EINVAL;
    probe_job job = {.name = name};
    pthread_t t;
    if (pthread_create(&t, NULL, probe_backend, &job) == 0)
        pthread_join(t, NULL);
    else
        probe_backend(&job);
    return job.err;
}

/* A nested selector's fd must reflect every change at once. */
static void nested_sync(kart_selector *sel)
{
    if (sel->nested && sel->ops->sync)
        sel->ops->sync(sel);
}

KART_API int kart_selector_fileno(kart_selector *sel)
{
    if (!sel)
        return -EINVAL;
    if (!sel->ops->fileno)
        return -ENOTSUP;
    sel->nested = true;
    return sel->ops->fileno(sel);
}

KART_API int kart_selector_next(const kart_selector *sel, int after, kart_event *out)
{
    if (!sel || !out)
        return -EINVAL;
    for (int fd = after < 0 ? 0 : after + 1; fd < sel->nregs; fd++) {
        const kart__reg *r = &sel->regs[fd];
        if (r->registered && !r->internal) {
            *out = (kart_event){.fd = fd, .events = r->events, .data = r->data};
            return 1;
        }
    }
    return 0;
}

static int check_events(const kart_selector *sel, uint32_t events)
{
    if (events & ~(KART_EVENT_MASK | KART_FLAG_MASK))
        return -EINVAL;
    if (!(events & KART_EVENT_MASK))
        return -EINVAL;
    /* epoll's EPOLLEXCLUSIVE admits neither one-shot nor POLLPRI/POLLRDHUP;
     * the rule is the same on every backend so that code moves freely. */
    if ((events & KART_EXCLUSIVE) && (events & (KART_ONESHOT | KART_PRIORITY)))
        return -EINVAL;
    if ((events & KART_EDGE) && !(sel->caps & KART_CAP_EDGE))
        return -ENOTSUP;
    return 0;
}

/* epoll refuses regular files and directories itself; the other backends
 * would report them as always ready, so the core refuses them the same way
 * to keep one behaviour. */
static int check_fd(const kart_selector *sel, int fd)
{
    if (sel->caps & KART__CAP_CHECKS_FD)
        return 0;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -EPERM;
    return 0;
}

KART_API int kart_selector_register(kart_selector *sel, int fd, uint32_t events, void *data)
{
    if (fd < 0)
        return -EBADF;
    int err = check_events(sel, events);
    if (err < 0)
        return err;
    kart__reg *r = kart__selector_reg(sel, fd);
    if (r && r->registered)
        return -EEXIST;
    if ((err = check_fd(sel, fd)) < 0)
        return err;
    if ((err = grow_table(sel, fd)) < 0)
        return err;
    r = &sel->regs[fd];
    kart__reg old = *r;
    *r = (kart__reg){
        .data = data, .events = events, .gen = kart__next_gen(old.gen), .registered = true};
    err = sel->ops->add(sel, fd, r);
    if (err < 0) {
        *r = old;
        return err;
    }
    sel->count++;
    nested_sync(sel);
    return 0;
}

static kart__reg *user_reg(const kart_selector *sel, int fd)
{
    kart__reg *r = kart__selector_reg(sel, fd);
    return (r && r->registered && !r->internal) ? r : NULL;
}

KART_API int kart_selector_modify(kart_selector *sel, int fd, uint32_t events, void *data)
{
    if (fd < 0)
        return -EBADF;
    kart__reg *r = user_reg(sel, fd);
    if (!r)
        return -ENOENT;
    int err = check_events(sel, events);
    if (err < 0)
        return err;
    kart__reg old = *r;
    *r = (kart__reg){
        .data = data, .events = events, .gen = kart__next_gen(old.gen), .registered = true};
    err = sel->ops->mod(sel, fd, old.events, r);
    if (err < 0)
        *r = old;
    else
        nested_sync(sel);
    return err;
}

KART_API int kart_selector_unregister(kart_selector *sel, int fd)
{
    if (fd < 0)
        return -EBADF;
    kart__reg *r = user_reg(sel, fd);
    if (!r)
        return -ENOENT;
    sel->ops->del(sel, fd, r);
    *r = (kart__reg){.gen = kart__next_gen(r->gen)};
    sel->count--;
    nested_sync(sel);
    return 0;
}

KART_API int kart_selector_get(const kart_selector *sel, int fd, uint32_t *events, void **data)
{
    if (fd < 0)
        return -EBADF;
    const kart__reg *r = user_reg(sel, fd);
    if (!r)
        return -ENOENT;
    if (events)
        *events = r->events;
    if (data)
        *data = r->data;
    return 0;
}

/* One read resets an eventfd; a pipe is read until it is empty. */
static void drain_wake(kart_selector *sel)
{
    uint64_t buf[8];
    while (kart__sys_read(sel->wake_fd, buf, sizeof(buf)) > 0 && sel->wake_fd != sel->wake_wfd)
        ;
}

KART_API int kart_selector_wake(kart_selector *sel)
{
    uint64_t one = 1;
    ssize_t n;
    do {
        n = kart__sys_write(sel->wake_wfd, &one, sel->wake_fd == sel->wake_wfd ? 8 : 1);
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: a wake-up is already pending, which is all we want. */
    return (n < 0 && errno != EAGAIN) ? -errno : 0;
}

/* Turns the backend's raw readiness into what the user asked to see.
 * Returns 0 to drop the entry. */
static uint32_t filter(kart_selector *sel, kart__reg *r, int fd, uint32_t raw)
{
    uint32_t ev = raw & kart__wanted(r->events);
    if (!ev)
        return 0;
    /* Nested, a backend that arms level-triggered polls ahead of the wait
     * (io_uring) may hand over readiness that has passed since (the fd
     * was drained after the last wait): ask the fd itself. */
    if (sel->nested && (sel->caps & KART__CAP_EARLY_LEVEL) &&
        !(r->events & (KART_EDGE | KART_ONESHOT))) {
        struct pollfd p = {.fd = fd, .events = kart__to_poll(r->events)};
        if (poll(&p, 1, 0) == 1)
            ev &= kart__wanted(r->events) & kart__from_poll((unsigned)p.revents);
        else
            ev = 0;
    }
    if (!ev)
        return 0;
    if ((r->events & KART_ONESHOT) && !(sel->caps & KART__CAP_NATIVE_ONESHOT)) {
        kart__reg disarmed = *r;
        disarmed.events &= ~KART_EVENT_MASK;
        /* Without event bits a backend stops watching the fd entirely. */
        sel->ops->mod(sel, fd, r->events, &disarmed);
        r->disarmed = true;
    }
    return ev;
}

KART_API int kart_selector_wait(kart_selector *sel, kart_event *events, size_t max,
                                int64_t timeout_ns)
{
    if (max == 0)
        return -EINVAL;
    /* The return is a count: an int; more than INT_MAX at once waits. */
    return kart__selector_wait_gens(sel, events, NULL, max > INT_MAX ? INT_MAX : (int)max,
                                    timeout_ns);
}

int kart__selector_wait_gens(kart_selector *sel, kart_event *events, uint32_t *gens, int max,
                             int64_t timeout_ns)
{
    if (!events || max < 1)
        return -EINVAL;
    if (max > sel->nscratch) {
        kart__ready *s = realloc(sel->scratch, (size_t)max * sizeof(*s));
        if (!s)
            return -ENOMEM;
        sel->scratch = s;
        sel->nscratch = max;
    }
    int64_t deadline = kart__deadline(timeout_ns);
    for (;;) {
        int n = sel->ops->wait(sel, sel->scratch, max, timeout_ns);
        if (n == -EINTR) {
            timeout_ns = kart__time_left(deadline);
            continue;
        }
        if (n < 0)
            return n;
        int out = 0;
        bool woken = false;
        for (int i = 0; i < n; i++) {
            int fd = sel->scratch[i].fd;
            kart__reg *r = kart__selector_reg(sel, fd);
            if (!r || !r->registered || r->disarmed ||
                (sel->scratch[i].gen && sel->scratch[i].gen != r->gen))
                continue;
            if (r->internal) {
                drain_wake(sel);
                woken = true;
                continue;
            }
            uint32_t ev = filter(sel, r, fd, sel->scratch[i].events);
            if (ev) {
                if (gens)
                    gens[out] = r->gen;
                events[out++] = (kart_event){.fd = fd, .events = ev, .data = r->data};
            }
        }
        /* Native I/O completions (io_uring) are news for the loop too. */
        if (out > 0 || woken || sel->completions) {
            nested_sync(sel);
            return out;
        }
        /* Nothing for the user (a timeout, or only stale entries): keep
         * waiting for whatever time is left. */
        timeout_ns = kart__time_left(deadline);
        if (timeout_ns == 0) {
            nested_sync(sel);
            return 0;
        }
    }
}

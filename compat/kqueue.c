/*
 * compat/kqueue.c — the kqueue backend (macOS, FreeBSD, NetBSD, OpenBSD,
 * DragonFly).
 *
 * kqueue watches (fd, filter) pairs, so one registration becomes up to
 * three knotes: EVFILT_READ, EVFILT_WRITE and, where the kernel has it,
 * EVFILT_EXCEPT with NOTE_OOB for KART_PRIORITY (macOS, OpenBSD,
 * DragonFly; elsewhere KART_PRIORITY is refused with -ENOTSUP). Each
 * knote's ident is the fd and its udata the registration's generation;
 * a wait merges the kevents of one fd into one entry.
 *
 * The clever part is the change list. Changes that cannot fail on an open
 * fd — deleting, disabling, re-enabling or re-stamping a knote that
 * exists — are queued and handed to the kernel with the next wait's
 * kevent() call, so an unregister, a one-shot disarm and its re-arm cost
 * no system call of their own. Changes that create a knote can fail (a
 * device without a write filter, ENOMEM), and register and modify must say
 * so, so they are applied at once, together with the queue (which keeps
 * the order of changes to one fd), with EV_RECEIPT giving each change its
 * own result (or one call per change where EV_RECEIPT is missing).
 *
 * The kernel reports a failed queued change as an EV_ERROR entry in the
 * event list, and then skips the scan for events; a queue no longer than
 * the event list therefore always fits, a longer one is applied first on
 * its own, and a wait that got only errors asks again. Such a failure
 * means the fd was closed before it was unregistered, which also removed
 * its knotes, so there is nothing left to undo.
 *
 * Mapping to the selector's bits (poll(2) on Linux being the reference
 * that tests/check_selector.c holds every backend to):
 *  - EVFILT_READ → KART_READABLE, EVFILT_WRITE → KART_WRITABLE.
 *  - Sockets: EV_EOF on the read filter → KART_RDHUP (the peer will send
 *    nothing more). poll(2) adds POLLHUP once both directions are shut:
 *    EV_EOF on both filters in one batch says so; EV_EOF on one of them
 *    only (the registration watches one direction, or the other filter is
 *    disarmed or edge-triggered) is settled by one zero-timeout poll(2)
 *    over such sockets, as compat/select.c does.
 *  - Pipes, FIFOs and other files (ttys): EV_EOF on the read filter →
 *    KART_HANGUP, the writer being gone, which poll(2) calls POLLHUP and
 *    never POLLRDHUP; KART_READABLE only while data is left to read.
 *    EV_EOF on the write filter of a pipe → KART_ERROR, the reader being
 *    gone (Linux's POLLERR; the BSDs' poll(2) says POLLHUP), and of
 *    another file → KART_HANGUP.
 *  - EV_EOF with a non-zero fflags (the socket's pending error) →
 *    KART_ERROR.
 *
 * Edge mode is EV_CLEAR. One-shot is left to the core's emulation
 * (KART__CAP_NATIVE_ONESHOT is not claimed): kqueue disarms per filter,
 * so a registration for reading and writing would stay armed for the
 * direction that did not fire. The core disarms through mod with no event
 * bits, which here queues EV_DISABLE for every filter — free, as above.
 * Where EV_DISPATCH exists, one-shot knotes carry it too, so the kernel
 * has already disabled the filter that fired before kevent() returns.
 * EV_CLEAR and EV_DISPATCH are fixed when a knote is created (a later
 * EV_ADD changes only udata, fflags and data), so a modify that changes
 * KART_EDGE or KART_ONESHOT deletes and re-creates the knotes.
 */
#include "backend.h"
#include "compiler.h"
#include "deadline.h"
#include "debug.h"
#include "fault.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if defined(EVFILT_EXCEPT) && defined(NOTE_OOB)
#define KQ_HAVE_OOB 1
#endif
#ifndef EV_DISPATCH
#define EV_DISPATCH 0
#endif

/* struct kevent's field types differ between systems (filter is a short
 * on FreeBSD and macOS, a uint32_t on NetBSD; udata was an intptr_t on
 * NetBSD before 10). */
typedef __typeof__(((struct kevent *)0)->filter) kq_filter_t;
typedef __typeof__(((struct kevent *)0)->udata) kq_udata_t;

/* Internal bits while a wait merges kevents: EV_EOF seen on the read or
 * the write filter of a socket. Never handed to the core. */
#define KQ_RD_EOF 0x40000000u
#define KQ_WR_EOF 0x80000000u

/* The longest single wait (a day); the core waits again for what is left.
 * Some kernels refuse timespecs of years with EINVAL. */
#define KQ_MAX_WAIT_NS (86400 * KART__NS_PER_SEC)

enum { KIND_OTHER, KIND_SOCKET, KIND_PIPE };

typedef struct kq_fd {
    uint32_t gen;  /* the generation the kernel's knotes carry */
    int pos;       /* during a wait: this fd's entry in out[] */
    uint8_t kind;  /* KIND_*, from fstat at add */
    bool disarmed; /* knotes disabled by the core's one-shot emulation */
} kq_fd;

typedef struct kq_state {
    int kq;
    struct kevent *changes; /* queued for the next kevent() call */
    int nchanges, capchanges;
    struct kevent *evs;
    int nevs;
    kq_fd *fds; /* indexed by fd */
    int nfds;
    struct pollfd *pfds; /* sockets whose hang-up poll(2) decides */
    int npfds;
} kq_state;

static const struct {
    uint32_t bit;
    kq_filter_t filter;
    unsigned fflags;
} kq_filters[] = {
    {KART_READABLE, EVFILT_READ, 0},
    {KART_WRITABLE, EVFILT_WRITE, 0},
#ifdef KQ_HAVE_OOB
    {KART_PRIORITY, EVFILT_EXCEPT, NOTE_OOB},
#endif
};

static const struct timespec kq_zero;

static int kq_init(kart_selector *sel, const kart_selector_options *opts)
{
    (void)opts;
    kq_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->kq = kqueue();
    if (st->kq < 0) {
        int err = -errno;
        free(st);
        return err;
    }
    /* A kqueue is not inherited by fork(2); this keeps it from exec too. */
    fcntl(st->kq, F_SETFD, FD_CLOEXEC);
    sel->backend_state = st;
    return 0;
}

static void kq_fini(kart_selector *sel)
{
    kq_state *st = sel->backend_state;
    close(st->kq);
    free(st->changes);
    free(st->evs);
    free(st->fds);
    free(st->pfds);
    free(st);
}

/* The knote flags a registration asks for, beyond EV_ADD and friends. */
static unsigned mode_flags(uint32_t events)
{
    unsigned f = 0;
    if (events & KART_EDGE)
        f |= EV_CLEAR;
    if (events & KART_ONESHOT)
        f |= EV_DISPATCH;
    return f;
}

static struct kevent change(int fd, int i, unsigned flags, uint32_t gen)
{
    struct kevent k;
    /* memset: the fields beyond these vary (FreeBSD 12 added ext[4]). */
    memset(&k, 0, sizeof(k));
    k.ident = (uintptr_t)fd;
    k.filter = kq_filters[i].filter;
    k.flags = flags;
    k.fflags = kq_filters[i].fflags;
    /* Every change carries the current generation: FreeBSD stores udata
     * on any change to an existing knote, even EV_DISABLE. */
    k.udata = (kq_udata_t)(uintptr_t)gen;
    return k;
}

static int reserve_changes(kq_state *st, int n)
{
    if (n <= st->capchanges)
        return 0;
    int c = st->capchanges ? st->capchanges : 16;
    while (c < n)
        c *= 2;
    struct kevent *k = realloc(st->changes, (size_t)c * sizeof(*k));
    if (!k)
        return -ENOMEM;
    st->changes = k;
    st->capchanges = c;
    return 0;
}

/*
 * Applies the queue now, without collecting events, and leaves each
 * change's result (0 or an errno) in its data field; empties the queue.
 * With EV_RECEIPT every change returns an entry, which also stops the
 * kernel from scanning for events (the array is both the change and the
 * event list, as kevent(2) allows). Without it, one call per change keeps
 * a failing change from cancelling the ones after it.
 */
static int apply_now(kq_state *st)
{
    int n = st->nchanges, err = 0;
    st->nchanges = 0;
    if (n == 0)
        return 0;
#if defined(EV_RECEIPT)
    for (int i = 0; i < n; i++)
        st->changes[i].flags |= EV_RECEIPT;
    int r = kevent(st->kq, st->changes, n, st->changes, n, &kq_zero);
    if (r < 0)
        err = -errno;
    for (int i = 0; i < n; i++)
        if (r < 0)
            st->changes[i].data = -err;
        else if (i >= r || !(st->changes[i].flags & EV_ERROR))
            st->changes[i].data = EIO; /* no receipt: should not happen */
#else
    for (int i = 0; i < n; i++) {
        int r = kevent(st->kq, &st->changes[i], 1, NULL, 0, &kq_zero);
        st->changes[i].data = r < 0 ? errno : 0;
    }
#endif
    return err;
}

/* Queues a change that cannot fail on an open fd. Never fails: without
 * memory for the queue, the queue and then the change are applied now. */
static void queue(kq_state *st, struct kevent k)
{
    if (reserve_changes(st, st->nchanges + 1) < 0) {
        apply_now(st);
        if (st->capchanges == 0) {
            kevent(st->kq, &k, 1, NULL, 0, &kq_zero);
            return;
        }
    }
    st->changes[st->nchanges++] = k;
}

static void queue_all(kq_state *st, int fd, uint32_t events, unsigned flags, uint32_t gen)
{
    for (int i = 0; i < (int)KART__ARRAY_LEN(kq_filters); i++)
        if (events & kq_filters[i].bit)
            queue(st, change(fd, i, flags, gen));
}

/*
 * Creates the knotes for `events` on fd now (flushing the queue in the
 * same call) and returns the first error; on failure, deletes the knotes
 * that were created, so that the kernel is as before.
 */
static int install(kq_state *st, int fd, uint32_t events, uint32_t gen)
{
    int err = reserve_changes(st, st->nchanges + (int)KART__ARRAY_LEN(kq_filters));
    if (err < 0)
        return err;
    int first = st->nchanges;
    queue_all(st, fd, events, EV_ADD | EV_ENABLE | mode_flags(events), gen);
    int n = st->nchanges - first;
    err = apply_now(st);
    if (err < 0)
        return err;
    /* Copied out: the rollback below queues into the same array. */
    struct kevent mine[KART__ARRAY_LEN(kq_filters)];
    memcpy(mine, st->changes + first, (size_t)n * sizeof(*mine));
    for (int i = 0; i < n && !err; i++)
        err = -(int)mine[i].data;
    if (err < 0)
        for (int i = 0; i < n; i++)
            if (mine[i].data == 0) {
                mine[i].flags = EV_DELETE;
                queue(st, mine[i]);
            }
    return err;
}

static int check_events(uint32_t events)
{
#ifndef KQ_HAVE_OOB
    /* No filter reports out-of-band data on this kernel. */
    if (events & KART_PRIORITY)
        return -ENOTSUP;
#else
    (void)events;
#endif
    return 0;
}

static int grow_fds(kq_state *st, int fd)
{
    if (fd < st->nfds)
        return 0;
    int n = st->nfds ? st->nfds : 64;
    while (n <= fd)
        n *= 2;
    kq_fd *f = realloc(st->fds, (size_t)n * sizeof(*f));
    if (!f)
        return -ENOMEM;
    memset(f + st->nfds, 0, (size_t)(n - st->nfds) * sizeof(*f));
    st->fds = f;
    st->nfds = n;
    return 0;
}

static int kq_add(kart_selector *sel, int fd, const kart__reg *reg)
{
    kq_state *st = sel->backend_state;
    int err = check_events(reg->events);
    if (err < 0)
        return err;
    /* The core leaves this check to us (KART__CAP_CHECKS_FD) so that one
     * fstat both validates the fd and tells the hang-up mapping its kind.
     * kqueue would watch regular files and directories (always ready);
     * they are refused as on every backend. */
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return -errno;
    if (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode))
        return -EPERM;
    if ((err = grow_fds(st, fd)) < 0)
        return err;
    if ((err = install(st, fd, reg->events, reg->gen)) < 0)
        return err;
    st->fds[fd] = (kq_fd){.gen = reg->gen,
                          .kind = S_ISSOCK(sb.st_mode)   ? KIND_SOCKET
                                  : S_ISFIFO(sb.st_mode) ? KIND_PIPE
                                                         : KIND_OTHER};
    return 0;
}

static int kq_mod(kart_selector *sel, int fd, uint32_t old_events, const kart__reg *reg)
{
    kq_state *st = sel->backend_state;
    kq_fd *f = &st->fds[fd];
    uint32_t ev = reg->events;

    if (!(ev & KART_EVENT_MASK)) {
        /* The core's one-shot disarm. Disabled rather than deleted, so
         * that the re-arm only enables what exists and cannot fail. */
        queue_all(st, fd, old_events, EV_DISABLE, f->gen);
        f->disarmed = true;
        return 0;
    }
    int err = check_events(ev);
    if (err < 0)
        return err;

    bool remake = ((old_events ^ ev) & (KART_EDGE | KART_ONESHOT)) != 0;
    uint32_t create = remake ? ev : ev & ~old_events;
    if (create & KART_EVENT_MASK) {
        if (remake)
            queue_all(st, fd, old_events, EV_DELETE, f->gen);
        err = install(st, fd, create, reg->gen);
        if (err < 0) {
            if (remake) {
                /* Put back what the deletes above took (best effort:
                 * this re-creates knotes that existed a moment ago). */
                queue_all(st, fd, old_events,
                          EV_ADD | mode_flags(old_events) | (f->disarmed ? EV_DISABLE : EV_ENABLE),
                          f->gen);
            }
            return err;
        }
    }
    /* What is left cannot fail on an open fd: it rides the next wait. */
    if (!remake) {
        queue_all(st, fd, old_events & ~ev, EV_DELETE, f->gen);
        queue_all(st, fd, ev & old_events, EV_ADD | EV_ENABLE | mode_flags(ev), reg->gen);
    }
    f->gen = reg->gen;
    f->disarmed = false;
    return 0;
}

static int kq_del(kart_selector *sel, int fd, const kart__reg *reg)
{
    kq_state *st = sel->backend_state;
    /* If fd was closed first, close(2) already removed the knotes and
     * these deletes fail harmlessly in the next wait. They reach the
     * kernel before any later register of the same number, which applies
     * the queue first. */
    queue_all(st, fd, reg->events, EV_DELETE, st->fds[fd].gen);
    return 0;
}

/* Adds one kevent to out[], merged with the entry of its fd if there is
 * one. Returns the new number of entries. */
static int merge(kq_state *st, kart__ready *out, int got, const struct kevent *e)
{
    int fd = (int)e->ident;
    uint32_t gen = (uint32_t)(uintptr_t)e->udata;
    uint32_t bits = 0;
    bool eof = (e->flags & EV_EOF) != 0;
    uint8_t kind = fd < st->nfds ? st->fds[fd].kind : KIND_OTHER;

    if (e->filter == EVFILT_READ) {
        bits = KART_READABLE;
        if (eof && kind == KIND_SOCKET)
            bits |= KART_RDHUP | KQ_RD_EOF;
        else if (eof)
            /* A pipe with nothing left to read is hung up, not readable,
             * as poll(2) says on Linux; data counts the bytes left. */
            bits = e->data > 0 ? KART_READABLE | KART_HANGUP : KART_HANGUP;
    } else if (e->filter == EVFILT_WRITE) {
        bits = KART_WRITABLE;
        if (eof)
            bits |= kind == KIND_SOCKET ? KQ_WR_EOF : kind == KIND_PIPE ? KART_ERROR : KART_HANGUP;
#ifdef KQ_HAVE_OOB
    } else if (e->filter == EVFILT_EXCEPT) {
        if (e->fflags & NOTE_OOB)
            bits = KART_PRIORITY;
#endif
    }
    if (eof && e->fflags != 0)
        bits |= KART_ERROR;
    if (!bits)
        return got;

    if (fd >= 0 && fd < st->nfds) {
        int p = st->fds[fd].pos;
        if (p < got && out[p].fd == fd && out[p].gen == gen) {
            out[p].events |= bits;
            return got;
        }
        st->fds[fd].pos = got;
    }
    out[got] = (kart__ready){.fd = fd, .events = bits, .gen = gen};
    return got + 1;
}

/* A socket whose EV_EOF came from one filter only: poll(2) must say
 * whether it is hung up. */
static bool half_eof(uint32_t events)
{
    uint32_t e = events & (KQ_RD_EOF | KQ_WR_EOF);
    return e == KQ_RD_EOF || e == KQ_WR_EOF;
}

/*
 * poll(2) reports POLLHUP for a socket once both directions are shut. The
 * EV_EOF of the read filter tells one, that of the write filter the other;
 * when only one of them is in this batch (the registration watches one
 * direction, or the other filter is disarmed or edge-triggered), one
 * zero-timeout poll(2) over those sockets (asking for no events: POLLHUP
 * and POLLERR come regardless) decides, so that the bits match the poll
 * backend's. This costs a system call only on waits that see an EOF.
 */
static void classify_hangups(kq_state *st, kart__ready *out, int got)
{
    int n = 0;
    for (int i = 0; i < got; i++) {
        uint32_t e = out[i].events;
        if ((e & KQ_RD_EOF) && (e & KQ_WR_EOF))
            out[i].events |= KART_HANGUP;
        else if (half_eof(e))
            n++;
    }
    if (n > 0 && n > st->npfds) {
        struct pollfd *p = realloc(st->pfds, (size_t)n * sizeof(*p));
        if (p) {
            st->pfds = p;
            st->npfds = n;
        }
    }
    if (n > 0 && n <= st->npfds) {
        int k = 0;
        for (int i = 0; i < got; i++)
            if (half_eof(out[i].events))
                st->pfds[k++] = (struct pollfd){.fd = out[i].fd};
        if (kart__sys_poll(st->pfds, (nfds_t)k, 0) > 0) {
            k = 0;
            for (int i = 0; i < got; i++) {
                if (!half_eof(out[i].events))
                    continue;
                short r = st->pfds[k++].revents;
                if ((r & POLLHUP) && !(r & POLLNVAL))
                    out[i].events |= KART_HANGUP;
                if ((r & POLLERR) && !(r & POLLNVAL))
                    out[i].events |= KART_ERROR;
            }
        }
    }
    for (int i = 0; i < got; i++)
        out[i].events &= ~(KQ_RD_EOF | KQ_WR_EOF);
}

static int kq_wait(kart_selector *sel, kart__ready *out, int max, int64_t timeout_ns)
{
    kq_state *st = sel->backend_state;
    if (max > st->nevs) {
        struct kevent *e = realloc(st->evs, (size_t)max * sizeof(*e));
        if (!e)
            return -ENOMEM;
        st->evs = e;
        st->nevs = max;
    }
    /* Each failed change takes a slot of the event list, and one that
     * finds no slot fails the call and cancels the changes after it. */
    if (st->nchanges > max)
        apply_now(st);

    if (timeout_ns > KQ_MAX_WAIT_NS)
        timeout_ns = KQ_MAX_WAIT_NS;
    struct timespec ts = kart__timespec(timeout_ns);
    for (;;) {
        int n =
            kevent(st->kq, st->changes, st->nchanges, st->evs, max, timeout_ns < 0 ? NULL : &ts);
        if (n < 0) {
            /* EINTR comes while sleeping, after the changes were applied.
             * After other errors they stay queued: applying them twice is
             * harmless (a second delete fails, a second enable is none). */
            int err = -errno;
            if (err == -EINTR)
                st->nchanges = 0;
            return err;
        }
        st->nchanges = 0;
        int got = 0;
        bool failed_changes = false;
        for (int i = 0; i < n; i++) {
            const struct kevent *e = &st->evs[i];
            if (e->flags & EV_ERROR) {
                kart__log(KART_LOG_WARNING, "kqueue", "change on fd %d failed: %s", (int)e->ident,
                          kart_strerror(-(int)e->data));
                failed_changes = true;
                continue;
            }
            got = merge(st, out, got, e);
        }
        /* When a change fails the kernel returns at once without looking
         * for events: look again, now with no changes to fail. */
        if (failed_changes && got == 0)
            continue;
        classify_hangups(st, out, got);
        return got;
    }
}

/* The queued changes cannot fail on an open fd (queue()): applying them
 * early changes nothing but when. */
static void kq_sync(kart_selector *sel)
{
    apply_now(sel->backend_state);
}

/* A kqueue is readable while any of its knotes is triggered. */
static int kq_fileno(kart_selector *sel)
{
    kq_sync(sel);
    return ((kq_state *)sel->backend_state)->kq;
}

const kart__backend_ops kart__backend_kqueue = {
    .name = "kqueue",
    .caps = KART_CAP_EDGE | KART__CAP_CHECKS_FD,
    .init = kq_init,
    .fini = kq_fini,
    .add = kq_add,
    .mod = kq_mod,
    .del = kq_del,
    .wait = kq_wait,
    .fileno = kq_fileno,
    .sync = kq_sync,
};

/*
 * compat/select.c — the select(2) backend: the one of last resort, and the
 * one every Unix has.
 *
 * Three fd_sets hold what is watched (KART_PRIORITY goes to the except set)
 * and are copied into scratch sets for each call, since select(2)
 * overwrites its arguments. An fd at or above FD_SETSIZE cannot be put in
 * an fd_set without writing past it, so add and mod refuse it (-ERANGE);
 * a registration with no event bits (a reported one-shot) is in no set.
 *
 * The clever part is that select(2) answers only "readable, writable,
 * exceptional", while the selector promises KART_HANGUP, KART_ERROR and
 * KART_RDHUP exactly as poll(2) reports them. So the fds that select(2)
 * found ready are classified by ONE zero-timeout poll(2) over just those
 * fds: every backend then reports the same bits for the same condition,
 * for the price of one extra system call per wait that has events, on the
 * backend nobody picks for speed. select(2) still decides when to wake,
 * so a condition that wakes neither the read nor the write set (a hang-up
 * on an fd watched only for KART_PRIORITY) goes unseen here.
 *
 * A watched fd that is closed behind the selector's back makes select(2)
 * fail the whole call with EBADF. Such fds are found (fcntl), taken out of
 * the sets until they are modified or unregistered, and the call retried;
 * the user never sees EBADF and the loop never spins on it.
 */
#include "deadline.h"
#include "fault.h"
#include "backend.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/select.h>
#include <time.h>

/* The longest single wait (a day): macOS's select(2) refuses timeouts of
 * more than 10^8 seconds with EINVAL. The core waits again for the rest. */
#define SL_MAX_WAIT_NS (86400 * KART__NS_PER_SEC)

typedef struct select_state {
    fd_set rd, wr, ex;    /* what is watched */
    fd_set rrd, rwr, rex; /* what one select(2) call reported */
    int maxfd;            /* no fd above it is watched; -1 when none */
    int cursor;           /* where the next scan of the results starts */
    struct pollfd *pfds;  /* the classification poll, one entry per ready fd */
    uint32_t *bits;       /* what select(2) said of each of those entries */
    int npfds;
} select_state;

static int sl_init(kart_selector *sel, const kart_selector_options *opts)
{
    (void)opts;
    select_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    FD_ZERO(&st->rd);
    FD_ZERO(&st->wr);
    FD_ZERO(&st->ex);
    st->maxfd = -1;
    sel->backend_state = st;
    return 0;
}

static void sl_fini(kart_selector *sel)
{
    select_state *st = sel->backend_state;
    free(st->pfds);
    free(st->bits);
    free(st);
}

/* The KART_* event bits fd is watched for (fd < FD_SETSIZE). */
static uint32_t watched(const select_state *st, int fd)
{
    return (FD_ISSET(fd, &st->rd) ? KART_READABLE : 0) |
           (FD_ISSET(fd, &st->wr) ? KART_WRITABLE : 0) |
           (FD_ISSET(fd, &st->ex) ? KART_PRIORITY : 0);
}

static void unwatch(select_state *st, int fd)
{
    FD_CLR(fd, &st->rd);
    FD_CLR(fd, &st->wr);
    FD_CLR(fd, &st->ex);
    /* maxfd is lowered lazily, by the next wait. */
}

static int watch(select_state *st, int fd, uint32_t events)
{
    /* FD_SET beyond FD_SETSIZE writes past the fd_set (glibc's fortified
     * build aborts instead): this is the limit select(2) is known for. */
    if (fd >= FD_SETSIZE)
        return -ERANGE;
    unwatch(st, fd);
    if (events & KART_READABLE)
        FD_SET(fd, &st->rd);
    if (events & KART_WRITABLE)
        FD_SET(fd, &st->wr);
    if (events & KART_PRIORITY)
        FD_SET(fd, &st->ex);
    if ((events & KART_EVENT_MASK) && fd > st->maxfd)
        st->maxfd = fd;
    return 0;
}

static int sl_add(kart_selector *sel, int fd, const kart__reg *reg)
{
    return watch(sel->backend_state, fd, reg->events);
}

static int sl_mod(kart_selector *sel, int fd, uint32_t old_events, const kart__reg *reg)
{
    (void)old_events;
    /* Also what brings back an fd that silence_dead() took out. */
    return watch(sel->backend_state, fd, reg->events);
}

static int sl_del(kart_selector *sel, int fd, const kart__reg *reg)
{
    (void)reg;
    unwatch(sel->backend_state, fd);
    return 0;
}

/* Whether select(2) would refuse fd with EBADF: it is closed, or (Linux)
 * an O_PATH descriptor, which select(2) and poll(2) treat as not open. */
static bool dead_fd(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return errno == EBADF;
#ifdef O_PATH
    return (fl & O_PATH) == O_PATH;
#else
    return false;
#endif
}

/* Takes every dead watched fd out of the sets; returns how many. They stay
 * registered in the core, silent, until modified or unregistered. */
static int silence_dead(select_state *st)
{
    int n = 0;
    for (int fd = 0; fd <= st->maxfd; fd++)
        if (watched(st, fd) && dead_fd(fd)) {
            unwatch(st, fd);
            n++;
        }
    return n;
}

static int reserve(select_state *st, int max)
{
    if (max <= st->npfds)
        return 0;
    struct pollfd *p = realloc(st->pfds, (size_t)max * sizeof(*p));
    if (!p)
        return -ENOMEM;
    st->pfds = p;
    uint32_t *b = realloc(st->bits, (size_t)max * sizeof(*b));
    if (!b)
        return -ENOMEM;
    st->bits = b;
    st->npfds = max;
    return 0;
}

/* One select(2) call; EBADF from a dead fd is dealt with here. */
static int do_select(select_state *st, int64_t timeout_ns)
{
    bool found_none = false;
    for (;;) {
        while (st->maxfd >= 0 && !watched(st, st->maxfd))
            st->maxfd--;
        st->rrd = st->rd;
        st->rwr = st->wr;
        st->rex = st->ex;
        struct timespec ts = kart__timespec(timeout_ns);
        int n = kart__sys_pselect(st->maxfd + 1, &st->rrd, &st->rwr, &st->rex,
                                  timeout_ns < 0 ? NULL : &ts, NULL);
        if (n >= 0 || errno != EBADF)
            return n < 0 ? -errno : n;
        /* select(2) failed at once, so retrying with the same timeout
         * waits no longer than asked. Finding no dead fd means one was
         * closed and its number reused between the two calls: retry once
         * more, but never loop on an EBADF nothing here can explain. */
        if (silence_dead(st) == 0) {
            if (found_none)
                return -EBADF;
            found_none = true;
        }
    }
}

static int sl_wait(kart_selector *sel, kart__ready *out, int max, int64_t timeout_ns)
{
    select_state *st = sel->backend_state;
    int err = reserve(st, max);
    if (err < 0)
        return err;
    int n = do_select(st, timeout_ns > SL_MAX_WAIT_NS ? SL_MAX_WAIT_NS : timeout_ns);
    if (n <= 0)
        return n;

    /* Collect up to max ready fds, starting where the last wait stopped so
     * that every ready fd gets its turn when more are ready than fit. n
     * counts set bits, not fds. */
    int span = st->maxfd + 1, got = 0;
    int fd = st->cursor < span ? st->cursor : 0, next = st->cursor;
    for (int k = 0; k < span && got < max && n > 0; k++, fd = fd + 1 < span ? fd + 1 : 0) {
        uint32_t bits = (FD_ISSET(fd, &st->rrd) ? KART_READABLE : 0) |
                        (FD_ISSET(fd, &st->rwr) ? KART_WRITABLE : 0) |
                        (FD_ISSET(fd, &st->rex) ? KART_PRIORITY : 0);
        if (!bits)
            continue;
        n -= __builtin_popcount(bits);
        st->pfds[got] = (struct pollfd){.fd = fd, .events = kart__to_poll(watched(st, fd))};
        st->bits[got++] = bits;
        next = fd + 1;
    }

    /* The classification poll (see the top of the file). Its timeout is 0:
     * select(2) has already waited. */
    int r = kart__sys_poll(st->pfds, (nfds_t)got, 0);
    if (r < 0 && errno == EINTR)
        return -EINTR; /* the cursor stays: these fds get their turn again */
    st->cursor = next;
    int w = 0;
    for (int i = 0; i < got; i++) {
        struct pollfd *p = &st->pfds[i];
        uint32_t ev;
        if (r < 0) {
            /* poll(2) could not run (ENOMEM, or EINVAL if RLIMIT_NOFILE
             * was lowered below the fds in hand): report what select(2)
             * saw rather than fail the wait. */
            ev = st->bits[i];
        } else if (p->revents & POLLNVAL) {
            /* Closed since select(2) returned: silence it as above. If it
             * is still open, poll(2) cannot handle this kind of fd (macOS
             * devices), and select(2) is the one to believe. */
            if (dead_fd(p->fd)) {
                unwatch(st, p->fd);
                continue;
            }
            ev = st->bits[i];
        } else if (p->revents) {
            ev = kart__from_poll((unsigned)p->revents);
        } else {
            /* No longer ready (another process read the data). */
            continue;
        }
        out[w++] = (kart__ready){.fd = p->fd, .events = ev};
    }
    return w;
}

const kart__backend_ops kart__backend_select = {
    .name = "select",
    .caps = KART_CAP_FDSET_LIMIT,
    .init = sl_init,
    .fini = sl_fini,
    .add = sl_add,
    .mod = sl_mod,
    .del = sl_del,
    .wait = sl_wait,
};

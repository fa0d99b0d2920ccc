/*
 * compat/poll.c — the poll(2) backend, for hosts without epoll or kqueue
 * and for anyone who asks for it.
 *
 * A dense pollfd array plus an fd-to-slot map: add appends, del swaps the
 * last entry into the hole, so both are O(1) and a wait hands the kernel
 * one contiguous array. An entry that is disarmed (a reported one-shot, or
 * an fd the kernel called POLLNVAL because it was closed while registered)
 * gets a negative fd, which poll(2) skips; otherwise a closed fd would make
 * every wait return at once. Scanning starts where the last wait stopped,
 * so when more fds are ready than fit, every one gets its turn.
 */
#include "deadline.h"
#include "fault.h"
#include "backend.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct poll_state {
    struct pollfd *pfds;
    int *fd_at; /* the fd of each entry, even while pfds[i].fd is -1 */
    int n, cap;
    int *slot; /* fd -> index in pfds, -1 when absent */
    int nslot;
    int cursor;
} poll_state;

static int pl_init(kart_selector *sel, const kart_selector_options *opts)
{
    (void)opts;
    poll_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    sel->backend_state = st;
    return 0;
}

static void pl_fini(kart_selector *sel)
{
    poll_state *st = sel->backend_state;
    free(st->pfds);
    free(st->fd_at);
    free(st->slot);
    free(st);
}

static int reserve(poll_state *st, int fd)
{
    if (fd >= st->nslot) {
        int n = st->nslot ? st->nslot : 64;
        while (n <= fd)
            n *= 2;
        int *s = realloc(st->slot, (size_t)n * sizeof(*s));
        if (!s)
            return -ENOMEM;
        for (int i = st->nslot; i < n; i++)
            s[i] = -1;
        st->slot = s;
        st->nslot = n;
    }
    if (st->n == st->cap) {
        int c = st->cap ? st->cap * 2 : 64;
        struct pollfd *p = realloc(st->pfds, (size_t)c * sizeof(*p));
        if (!p)
            return -ENOMEM;
        st->pfds = p;
        int *f = realloc(st->fd_at, (size_t)c * sizeof(*f));
        if (!f)
            return -ENOMEM;
        st->fd_at = f;
        st->cap = c;
    }
    return 0;
}

static void set_entry(struct pollfd *p, int fd, uint32_t events)
{
    p->events = kart__to_poll(events);
    p->fd = (events & KART_EVENT_MASK) ? fd : -1;
    p->revents = 0;
}

static int pl_add(kart_selector *sel, int fd, const kart__reg *reg)
{
    poll_state *st = sel->backend_state;
    int err = reserve(st, fd);
    if (err < 0)
        return err;
    st->slot[fd] = st->n;
    st->fd_at[st->n] = fd;
    set_entry(&st->pfds[st->n++], fd, reg->events);
    return 0;
}

static int pl_mod(kart_selector *sel, int fd, uint32_t old_events, const kart__reg *reg)
{
    (void)old_events;
    poll_state *st = sel->backend_state;
    set_entry(&st->pfds[st->slot[fd]], fd, reg->events);
    return 0;
}

static int pl_del(kart_selector *sel, int fd, const kart__reg *reg)
{
    (void)reg;
    poll_state *st = sel->backend_state;
    int i = st->slot[fd];
    st->slot[fd] = -1;
    if (i != --st->n) {
        st->pfds[i] = st->pfds[st->n];
        st->fd_at[i] = st->fd_at[st->n];
        st->slot[st->fd_at[i]] = i;
    }
    return 0;
}

static int pl_wait(kart_selector *sel, kart__ready *out, int max, int64_t timeout_ns)
{
    poll_state *st = sel->backend_state;
    struct timespec ts = kart__timespec(timeout_ns);
    int n = kart__sys_ppoll(st->pfds, (nfds_t)st->n, timeout_ns < 0 ? NULL : &ts, NULL);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    int got = 0, start = st->cursor < st->n ? st->cursor : 0;
    for (int k = 0; k < st->n && got < max && n > 0; k++) {
        int i = (start + k) % st->n;
        struct pollfd *p = &st->pfds[i];
        if (!p->revents)
            continue;
        n--;
        if (p->revents & POLLNVAL) {
            /* Closed while registered: silence it until unregister. */
            p->fd = -1;
            continue;
        }
        out[got++] = (kart__ready){.fd = p->fd, .events = kart__from_poll(p->revents)};
        st->cursor = i + 1;
    }
    return got;
}

const kart__backend_ops kart__backend_poll = {
    .name = "poll",
    .caps = 0,
    .init = pl_init,
    .fini = pl_fini,
    .add = pl_add,
    .mod = pl_mod,
    .del = pl_del,
    .wait = pl_wait,
};

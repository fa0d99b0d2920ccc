/*
 * compat/epoll.c — the epoll backend (Linux).
 *
 * epoll does almost everything natively: edge and one-shot modes,
 * EPOLLEXCLUSIVE (Linux 4.5), refusing regular files. Two details matter:
 *  - The event data carries the registration's generation next to the fd.
 *    A file registered through fd N and closed while a dup keeps it open
 *    stays in the epoll set (epoll watches files, not numbers), so its
 *    events could otherwise be mistaken for a new file that reuses N.
 *  - EPOLLEXCLUSIVE cannot be changed by EPOLL_CTL_MOD (EINVAL), so a
 *    modify that involves it removes and re-adds the fd.
 * Timeouts that are not whole milliseconds use epoll_pwait2 (Linux 5.11)
 * for nanosecond precision, falling back to epoll_wait's milliseconds,
 * rounded up, where it is missing.
 */
#include "deadline.h"
#include "fault.h"
#include "backend.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE (1u << 28)
#endif

typedef struct epoll_state {
    int epfd;
    bool no_pwait2;
    struct epoll_event *evs;
    int nevs;
} epoll_state;

static int ep_init(kart_selector *sel, const kart_selector_options *opts)
{
    (void)opts;
    epoll_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->epfd = kart__sys_epoll_create1(EPOLL_CLOEXEC);
    if (st->epfd < 0) {
        int err = -errno;
        free(st);
        return err;
    }
    sel->backend_state = st;
    return 0;
}

static void ep_fini(kart_selector *sel)
{
    epoll_state *st = sel->backend_state;
    close(st->epfd);
    free(st->evs);
    free(st);
}

static struct epoll_event ep_event(int fd, const kart__reg *reg)
{
    uint32_t e = (uint32_t)kart__to_poll(reg->events);
    if (reg->events & KART_EDGE)
        e |= EPOLLET;
    if (reg->events & KART_ONESHOT)
        e |= EPOLLONESHOT;
    if (reg->events & KART_EXCLUSIVE)
        e = (e & ~(uint32_t)EPOLLRDHUP) | EPOLLEXCLUSIVE;
    return (struct epoll_event){.events = e, .data.u64 = (uint64_t)reg->gen << 32 | (uint32_t)fd};
}

static int ep_add(kart_selector *sel, int fd, const kart__reg *reg)
{
    epoll_state *st = sel->backend_state;
    struct epoll_event ev = ep_event(fd, reg);
    return kart__sys_epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int ep_mod(kart_selector *sel, int fd, uint32_t old_events, const kart__reg *reg)
{
    epoll_state *st = sel->backend_state;
    struct epoll_event ev = ep_event(fd, reg);
    if ((old_events | reg->events) & KART_EXCLUSIVE) {
        kart__sys_epoll_ctl(st->epfd, EPOLL_CTL_DEL, fd, NULL);
        return kart__sys_epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
    }
    return kart__sys_epoll_ctl(st->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

static int ep_del(kart_selector *sel, int fd, const kart__reg *reg)
{
    (void)reg;
    epoll_state *st = sel->backend_state;
    /* EBADF or ENOENT here mean the fd was closed first; the generation in
     * any event still queued for it makes the core drop that event. */
    kart__sys_epoll_ctl(st->epfd, EPOLL_CTL_DEL, fd, NULL);
    return 0;
}

static int ep_wait(kart_selector *sel, kart__ready *out, int max, int64_t timeout_ns)
{
    epoll_state *st = sel->backend_state;
    if (max > st->nevs) {
        struct epoll_event *e = realloc(st->evs, (size_t)max * sizeof(*e));
        if (!e)
            return -ENOMEM;
        st->evs = e;
        st->nevs = max;
    }
    int ms = kart__timeout_ms(timeout_ns), n;
#ifdef SYS_epoll_pwait2
    /* Plain epoll_wait when milliseconds lose nothing (forever, zero, whole
     * milliseconds); epoll_pwait2 only for the precision it adds. */
    if (timeout_ns > 0 && timeout_ns % 1000000 != 0 && !st->no_pwait2) {
        struct timespec ts = kart__timespec(timeout_ns);
        n = kart__sys_epoll_pwait2(st->epfd, st->evs, max, &ts);
        if (n < 0 && errno == ENOSYS) {
            st->no_pwait2 = true;
            n = kart__sys_epoll_wait(st->epfd, st->evs, max, ms);
        }
    } else
#endif
        n = kart__sys_epoll_wait(st->epfd, st->evs, max, ms);
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        uint64_t d = st->evs[i].data.u64;
        out[i] = (kart__ready){.fd = (int)(uint32_t)d,
                               .events = kart__from_poll(st->evs[i].events),
                               .gen = (uint32_t)(d >> 32)};
    }
    return n;
}

/* The epoll fd is readable while any fd in it is ready (the wake-up fd
 * among them). */
static int ep_fileno(kart_selector *sel)
{
    return ((epoll_state *)sel->backend_state)->epfd;
}

const kart__backend_ops kart__backend_epoll = {
    .name = "epoll",
    .caps = KART_CAP_EDGE | KART_CAP_EXCLUSIVE | KART__CAP_NATIVE_ONESHOT | KART__CAP_CHECKS_FD,
    .init = ep_init,
    .fini = ep_fini,
    .add = ep_add,
    .mod = ep_mod,
    .del = ep_del,
    .wait = ep_wait,
    .fileno = ep_fileno,
};

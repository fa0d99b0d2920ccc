/* Test-only kqueue emulation on Linux epoll, enough to run kart's selector
 * suites against compat/kqueue.c: a knote (ident, filter) is an epoll
 * registration of its own dup of the fd (epoll keys on (file, fd), so the
 * read and write knotes of one fd are independent). Close removal is
 * emulated by dropping knotes whose ident no longer names the same file.
 * EVFILT_SIGNAL knotes hold a signalfd of their own (the signal blocked in
 * the calling thread, so that Linux queues it even while ignored) and
 * report the number of deliveries read from it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/event.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct knote {
    bool used, enabled;
    uintptr_t ident;
    int filter;
    unsigned flags, fflags;
    __typeof__(((struct kevent *)0)->udata) udata;
    int dupfd;
    dev_t dev;
    ino_t ino;
} knote;

typedef struct kq {
    knote *kn;
    int n;
} kq;

static kq kqs[4096];
int kqemu_changes, kqemu_calls;

int kqueue(void)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -1;
    for (int i = 0; i < kqs[ep].n; i++)
        if (kqs[ep].kn[i].used)
            close(kqs[ep].kn[i].dupfd);
    free(kqs[ep].kn);
    kqs[ep] = (kq){0};
    return ep;
}

static bool same_file(knote *k)
{
    if (k->filter == EVFILT_SIGNAL)
        return true; /* the ident is a signal number, not an fd */
    struct stat st;
    return fstat((int)k->ident, &st) == 0 && st.st_dev == k->dev && st.st_ino == k->ino;
}

static void drop(int ep, knote *k)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, k->dupfd, NULL);
    close(k->dupfd);
    if (k->filter == EVFILT_SIGNAL) {
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, (int)k->ident);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
    k->used = false;
}

/* A signal knote's fd: a signalfd for that one signal, blocked here. */
static int signal_fd(int signum)
{
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signum);
    pthread_sigmask(SIG_BLOCK, &one, NULL);
    return signalfd(-1, &one, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int arm(int ep, knote *k, int op)
{
    struct epoll_event ev = {.data.u64 = (uint64_t)(k - kqs[ep].kn)};
    ev.events = (k->filter == EVFILT_READ ? EPOLLIN | EPOLLRDHUP : EPOLLOUT);
    if (k->filter == EVFILT_SIGNAL)
        ev.events = EPOLLIN;
#ifdef EVFILT_EXCEPT
    if (k->filter == EVFILT_EXCEPT)
        ev.events = EPOLLPRI;
#endif
    if (k->flags & EV_CLEAR)
        ev.events |= EPOLLET;
    return epoll_ctl(ep, op, k->dupfd, &ev);
}

static void set_enabled(int ep, knote *k, bool on)
{
    if (on && !k->enabled)
        arm(ep, k, EPOLL_CTL_ADD);
    else if (!on && k->enabled)
        epoll_ctl(ep, EPOLL_CTL_DEL, k->dupfd, NULL);
    else if (on)
        arm(ep, k, EPOLL_CTL_MOD); /* re-evaluates readiness, like f_event */
    k->enabled = on;
}

static int reg(int ep, const struct kevent *c)
{
    kqemu_changes++;
    kq *q = &kqs[ep];
    struct stat st = {0};
    if (c->filter != EVFILT_SIGNAL && fstat((int)c->ident, &st) < 0)
        return EBADF;
    knote *k = NULL;
    for (int i = 0; i < q->n; i++)
        if (q->kn[i].used && q->kn[i].ident == c->ident && q->kn[i].filter == (int)c->filter)
            k = &q->kn[i];
    if (!k) {
        if (!(c->flags & EV_ADD))
            return ENOENT;
        int slot = -1;
        for (int i = 0; i < q->n && slot < 0; i++)
            if (!q->kn[i].used)
                slot = i;
        if (slot < 0) {
            q->kn = realloc(q->kn, (size_t)(q->n + 1) * sizeof(knote));
            slot = q->n++;
        }
        k = &q->kn[slot];
        *k = (knote){.used = true,
                     .ident = c->ident,
                     .filter = (int)c->filter,
                     .flags = c->flags & (EV_CLEAR | EV_ONESHOT
#ifdef EV_DISPATCH
                                          | EV_DISPATCH
#endif
                                          ),
                     .dev = st.st_dev,
                     .ino = st.st_ino};
        k->dupfd = c->filter == EVFILT_SIGNAL ? signal_fd((int)c->ident)
                                              : fcntl((int)c->ident, F_DUPFD_CLOEXEC, 0);
        k->udata = c->udata;
        k->fflags = c->fflags;
        if (arm(ep, k, EPOLL_CTL_ADD) < 0) {
            int e = errno;
            close(k->dupfd);
            k->used = false;
            return e;
        }
        k->enabled = true;
        if (c->flags & EV_DISABLE)
            set_enabled(ep, k, false);
        return 0;
    }
    if (c->flags & EV_DELETE) {
        drop(ep, k);
        return 0;
    }
    k->udata = c->udata;
    if (c->flags & EV_ADD)
        k->fflags = c->fflags;
    if (c->flags & EV_DISABLE)
        set_enabled(ep, k, false);
    else if (c->flags & (EV_ENABLE | EV_ADD))
        set_enabled(ep, k, true);
    return 0;
}

int kevent(int ep, const struct kevent *changes, kqstub_count_t nchanges, struct kevent *events,
           kqstub_count_t nevents, const struct timespec *ts)
{
    kqemu_calls++;
    kq *q = &kqs[ep];
    /* close(2) removes an fd's knotes. */
    for (int i = 0; i < q->n; i++)
        if (q->kn[i].used && !same_file(&q->kn[i]))
            drop(ep, &q->kn[i]);
    int nerr = 0;
    for (int i = 0; i < (int)nchanges; i++) {
        struct kevent c = changes[i];
        int e = reg(ep, &c);
#ifdef EV_RECEIPT
        bool receipt = c.flags & EV_RECEIPT;
#else
        bool receipt = false;
#endif
        if (e || receipt) {
            if ((int)nevents - nerr <= 0) {
                errno = e;
                return -1;
            }
            c.flags = EV_ERROR;
            c.data = e;
            events[nerr++] = c;
        }
    }
    if (nerr)
        return nerr;
    if ((int)nevents == 0)
        return 0;
    int ms = -1;
    if (ts)
        ms = (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
    struct epoll_event evs[256];
    int max = (int)nevents < 256 ? (int)nevents : 256;
    int n = epoll_wait(ep, evs, max, ms);
    if (n < 0)
        return -1;
    int out = 0;
    for (int i = 0; i < n; i++) {
        knote *k = &q->kn[evs[i].data.u64];
        if (!k->used || !same_file(k))
            continue;
        uint32_t e = evs[i].events;
        struct kevent r = {.ident = k->ident,
                           .filter = (kqstub_filter_t)k->filter,
                           .flags = (kqstub_flags_t)k->flags,
                           .udata = k->udata};
        if (k->filter == EVFILT_SIGNAL) {
            struct signalfd_siginfo si;
            while (read(k->dupfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                r.data++;
            if (r.data)
                events[out++] = r;
            continue;
        }
        bool eof = k->filter == EVFILT_READ ? (e & (EPOLLRDHUP | EPOLLHUP)) != 0
                                            : (e & (EPOLLHUP | EPOLLERR)) != 0;
#ifdef EVFILT_EXCEPT
        if (k->filter == EVFILT_EXCEPT) {
            eof = false;
            r.fflags = NOTE_OOB;
        }
#endif
        if (k->filter == EVFILT_READ) {
            int avail = 0;
            ioctl((int)k->ident, FIONREAD, &avail);
            r.data = avail;
        }
        if (eof) {
            r.flags |= EV_EOF;
            /* The pending socket error, without clearing it. */
            if (e & EPOLLERR)
                r.fflags = ECONNRESET;
        }
        if (k->flags & EV_ONESHOT)
            drop(ep, k);
#ifdef EV_DISPATCH
        else if (k->flags & EV_DISPATCH)
            set_enabled(ep, k, false);
#endif
        events[out++] = r;
    }
    return out;
}

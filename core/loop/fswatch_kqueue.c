/*
 * core/loop/fswatch_kqueue.c — file watchers on the BSDs and macOS: one
 * kqueue per loop holding an EVFILT_VNODE filter per watcher, the kqueue
 * registered in the loop's selector as readable (a kqueue is pollable, so
 * this works under every backend), as signal_kqueue.c does for signals.
 * The filter's NOTE_* bits are KART_FS_*'s meanings; each watcher holds
 * its file open (the filter's ident). Events are matched to watchers by
 * that fd, never through udata, so a watcher stopped (and freed) by an
 * earlier callback of the same batch is never touched.
 */
#include "loop_private.h"

#include <fcntl.h>
#include <sys/event.h>
#include <unistd.h>

#ifndef O_EVTONLY
#define O_EVTONLY O_RDONLY
#endif

static unsigned notes_for(unsigned events)
{
    unsigned n = 0;
    if (events & KART_FS_WRITE)
        n |= NOTE_WRITE;
    if (events & KART_FS_DELETE)
        n |= NOTE_DELETE;
    if (events & KART_FS_RENAME)
        n |= NOTE_RENAME;
    if (events & KART_FS_ATTRIB)
        n |= NOTE_ATTRIB | NOTE_LINK;
    if (events & KART_FS_EXTEND)
        n |= NOTE_EXTEND;
    return n;
}

static unsigned events_of(unsigned notes)
{
    unsigned e = 0;
    if (notes & NOTE_WRITE)
        e |= KART_FS_WRITE;
    if (notes & NOTE_DELETE)
        e |= KART_FS_DELETE;
    if (notes & NOTE_RENAME)
        e |= KART_FS_RENAME;
    if (notes & (NOTE_ATTRIB | NOTE_LINK))
        e |= KART_FS_ATTRIB;
    if (notes & NOTE_EXTEND)
        e |= KART_FS_EXTEND;
    return e;
}

KART_API int kart_fswatch_init(kart_loop *loop, kart_fswatch *w)
{
    if (!loop || !w)
        return -EINVAL;
    kart__handle_init(&w->base, loop, KART_HANDLE_FSWATCH);
    w->wd_ = -1;
    w->fd_ = -1;
    w->events_ = 0;
    w->size_ = 0;
    w->deleted_ = false;
    w->cb_ = NULL;
    w->next_ = NULL;
    return 0;
}

static int open_fsfd(kart_loop *loop)
{
    if (loop->fsfd >= 0)
        return 0;
    int fd = kqueue();
    if (fd < 0)
        return -errno;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return kart__fswatch_attach(loop, fd);
}

KART_API int kart_fswatch_stop(kart_fswatch *w)
{
    if (!w)
        return -EINVAL;
    if (!kart__handle_active(&w->base))
        return 0;
    kart_loop *loop = w->base.loop;
    if (loop->fs_cursor == w)
        loop->fs_cursor = w->next_;
    for (kart_fswatch **p = &loop->fswatches; *p; p = &(*p)->next_)
        if (*p == w) {
            *p = w->next_;
            break;
        }
    close(w->fd_); /* removes its filter from the kqueue */
    w->fd_ = -1;
    kart__handle_stop(&w->base);
    return 0;
}

KART_API int kart_fswatch_start(kart_fswatch *w, const char *path, unsigned events,
                                kart_fswatch_cb cb)
{
    if (!w || !path || !cb || !events || (events & ~KART_FS_ALL))
        return -EINVAL;
    kart_fswatch_stop(w);
    kart_loop *loop = w->base.loop;
    int err = open_fsfd(loop);
    if (err < 0)
        return err;
    int fd = open(path, O_EVTONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct kevent kev;
    EV_SET(&kev, (uintptr_t)fd, EVFILT_VNODE, EV_ADD | EV_CLEAR, notes_for(events), 0, 0);
    if (kevent(loop->fsfd, &kev, 1, NULL, 0, NULL) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    w->fd_ = fd;
    w->events_ = events;
    w->cb_ = cb;
    w->next_ = loop->fswatches;
    loop->fswatches = w;
    kart__handle_start(&w->base);
    return 0;
}

void kart__fswatch_dispatch(kart_loop *loop)
{
    struct kevent evs[64];
    struct timespec zero = {0, 0};
    if (loop->fsfd < 0)
        return;
    int n = kevent(loop->fsfd, NULL, 0, evs, 64, &zero);
    for (int i = 0; i < n; i++) {
        for (kart_fswatch *w = loop->fswatches; w; w = loop->fs_cursor) {
            loop->fs_cursor = w->next_;
            if (w->fd_ != (int)evs[i].ident)
                continue;
            unsigned ev = events_of((unsigned)evs[i].fflags) & w->events_;
            if (ev)
                w->cb_(w, ev);
        }
        loop->fs_cursor = NULL;
    }
}

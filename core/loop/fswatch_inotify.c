/*
 * core/loop/fswatch_inotify.c — file watchers (kqueue's EVFILT_VNODE) on
 * Linux, through one inotify descriptor per loop.
 *
 * inotify names changes differently from kqueue, so they are translated:
 * a write is IN_MODIFY (or, on a directory, an entry created, deleted or
 * moved); a rename is IN_MOVE_SELF; a delete is the last link going away,
 * which inotify reports as IN_ATTRIB (the link count changed) while the
 * file is still open, and as IN_DELETE_SELF otherwise; an extend is a
 * write after which the file is larger than it was. Each watcher holds its
 * file open (O_PATH) so that the size and link count can be read after a
 * rename or an unlink, as kqueue's watchers hold theirs.
 *
 * inotify gives one watch descriptor per inode per inotify fd: watchers of
 * the same file share it, its mask grows with IN_MASK_ADD and each watcher
 * filters what it asked for; the watch is removed with its last watcher.
 */
#include "loop_private.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_CHANGES (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)

static uint32_t mask_for(unsigned events)
{
    /* IN_ATTRIB and IN_DELETE_SELF always: a delete shows as either. */
    uint32_t m = IN_ATTRIB | IN_DELETE_SELF;
    if (events & (KART_FS_WRITE | KART_FS_EXTEND))
        m |= IN_MODIFY | DIR_CHANGES;
    if (events & KART_FS_RENAME)
        m |= IN_MOVE_SELF;
    return m;
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

/* The loop's inotify fd, opened and registered by the first start. */
static int open_fsfd(kart_loop *loop)
{
    if (loop->fsfd >= 0)
        return 0;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return -errno;
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
    bool shared = false;
    for (kart_fswatch **p = &loop->fswatches; *p;) {
        if (*p == w) {
            *p = w->next_;
            continue;
        }
        if ((*p)->wd_ == w->wd_)
            shared = true;
        p = &(*p)->next_;
    }
    if (w->wd_ >= 0 && !shared)
        inotify_rm_watch(loop->fsfd, w->wd_);
    close(w->fd_);
    w->fd_ = -1;
    w->wd_ = -1;
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
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    /* Through the descriptor, not the name: the watch is on the file that
     * was opened even if path changed meanwhile. */
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    int wd = inotify_add_watch(loop->fsfd, proc, mask_for(events) | IN_MASK_ADD);
    if (wd < 0 && errno == ENOENT) /* no /proc */
        wd = inotify_add_watch(loop->fsfd, path, mask_for(events) | IN_MASK_ADD);
    if (wd < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    w->wd_ = wd;
    w->fd_ = fd;
    w->events_ = events;
    w->size_ = st.st_size;
    w->deleted_ = st.st_nlink == 0;
    w->cb_ = cb;
    w->next_ = loop->fswatches;
    loop->fswatches = w;
    kart__handle_start(&w->base);
    return 0;
}

/* The KART_FS_* bits one inotify event means for watcher w. */
static unsigned translate(kart_fswatch *w, uint32_t mask)
{
    unsigned ev = 0;
    struct stat st;
    bool have = fstat(w->fd_, &st) == 0;
    if (mask & (IN_MODIFY | DIR_CHANGES))
        ev |= KART_FS_WRITE;
    if ((mask & IN_MODIFY) && have) {
        if (st.st_size > w->size_)
            ev |= KART_FS_EXTEND;
        w->size_ = st.st_size;
    }
    if (mask & IN_MOVE_SELF)
        ev |= KART_FS_RENAME;
    if (mask & IN_ATTRIB) {
        if (have && st.st_nlink == 0) {
            if (!w->deleted_)
                ev |= KART_FS_DELETE;
            w->deleted_ = true;
        } else {
            ev |= KART_FS_ATTRIB;
        }
    }
    if ((mask & IN_DELETE_SELF) && !w->deleted_) {
        w->deleted_ = true;
        ev |= KART_FS_DELETE;
    }
    return ev & w->events_;
}

static void deliver(kart_loop *loop, const struct inotify_event *e)
{
    if (e->mask & IN_IGNORED) {
        /* The kernel dropped the watch (the file system went away). */
        for (kart_fswatch *w = loop->fswatches; w; w = w->next_)
            if (w->wd_ == e->wd)
                w->wd_ = -1;
        return;
    }
    for (kart_fswatch *w = loop->fswatches; w; w = loop->fs_cursor) {
        /* The cursor lets a callback stop (and free) any watcher. */
        loop->fs_cursor = w->next_;
        if (w->wd_ != e->wd)
            continue;
        unsigned ev = translate(w, e->mask);
        if (ev)
            w->cb_(w, ev);
    }
    loop->fs_cursor = NULL;
}

void kart__fswatch_dispatch(kart_loop *loop)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        if (loop->fsfd < 0)
            return;
        ssize_t n = read(loop->fsfd, buf, sizeof(buf));
        if (n <= 0)
            return; /* EAGAIN: all read */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            p += sizeof(*e) + e->len;
            if (e->wd >= 0)
                deliver(loop, e);
        }
    }
}

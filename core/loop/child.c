/*
 * core/child.c — child-exit watchers.
 *
 * On Linux 5.3+ each watched child gets a pidfd, which becomes readable
 * when the child exits: no signal handler, no global state, and no race
 * with other code that waits for other children. Where pidfd_open is
 * missing, the loop watches SIGCHLD (through its signal source) and polls each
 * watched pid with a non-blocking waitid() when one arrives. Either way the
 * child is reaped with waitid(P_PID) for exactly that pid, so kart never
 * steals the exit status of a child it was not asked about.
 *
 * On an io_uring loop with IORING_OP_WAITID (6.7), the ring itself waits
 * for the exit instead (the backend's child_start, uring/uring_waitid.c):
 * no pidfd, no descriptor, no poll. Such a watcher's fd_ is RING_WATCHED. Where the ring cannot
 * (another backend, an older kernel, KART_URING_FEATURES=-waitid), or its
 * request fails, the pidfd or SIGCHLD path takes over.
 */
#include "debug.h"
#include "fault.h"
#include "loop_private.h"

#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

KART_API int kart_child_init(kart_loop *loop, kart_child *child)
{
    if (!loop || !child)
        return -EINVAL;
    kart__handle_init(&child->base, loop, KART_HANDLE_CHILD);
    child->pid = 0;
    child->fd_ = -1;
    child->cb_ = NULL;
    child->next_ = NULL;
    return 0;
}

/* fd_ of a watcher whose child the loop's io_uring ring waits for. */
#define RING_WATCHED (-2)

static int open_pidfd(pid_t pid)
{
    int fd = kart__sys_pidfd_open(pid, 0);
    return fd >= 0 ? fd : -errno;
}

/* Python's convention: the exit code, or minus the signal that killed. */
static int exit_status(const siginfo_t *info)
{
    return info->si_code == CLD_EXITED ? info->si_status : -info->si_status;
}

static void unlink_child(kart_loop *loop, kart_child *child)
{
    if (loop->child_cursor == child)
        loop->child_cursor = child->next_;
    for (kart_child **p = &loop->children; *p; p = &(*p)->next_)
        if (*p == child) {
            *p = child->next_;
            break;
        }
}

KART_API int kart_child_stop(kart_child *child)
{
    if (!child)
        return -EINVAL;
    if (!kart__handle_active(&child->base))
        return 0;
    kart_loop *loop = child->base.loop;
    unlink_child(loop, child);
    if (child->fd_ >= 0) {
        kart_selector_unregister(loop->sel, child->fd_);
        close(child->fd_);
        child->fd_ = -1;
    } else if (child->fd_ == RING_WATCHED) {
        loop->sel->ops->child_stop(loop->sel, child);
        loop->ring_children--;
        child->fd_ = -1;
    } else if (--loop->sigchld_users == 0) {
        kart__signum_unwatch(loop, SIGCHLD);
    }
    kart__handle_stop(&child->base);
    return 0;
}

/* The pidfd or SIGCHLD path for child->pid: 0 and *fd_out (the pidfd
 * registered, or -1 for SIGCHLD), or a negative errno. */
static int watch_classic(kart_loop *loop, kart_child *child, int *fd_out)
{
    int fd = open_pidfd(child->pid);
    if (fd >= 0) {
        int err = kart_selector_register(loop->sel, fd, KART_READABLE, &child->base);
        if (err < 0) {
            close(fd);
            return err;
        }
        *fd_out = fd;
        return 0;
    }
    if (fd == -ENOSYS || fd == -EPERM) {
        /* pidfd_open has no permission check of its own, so EPERM comes
         * from a seccomp filter that does not know it (Docker's default
         * profile before 20.10, for one): fall back as for ENOSYS. */
        struct sigaction sa;
        /* With SIGCHLD ignored, the kernel reaps exiting children itself
         * and sends no SIGCHLD at all: this path would wait forever. */
        if (sigaction(SIGCHLD, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            return -ECHILD;
        if (loop->sigchld_users == 0) {
            int err = kart__signum_watch(loop, SIGCHLD);
            if (err < 0)
                return err;
        }
        loop->sigchld_users++;
        /* The child may have exited before SIGCHLD was watched, and that
         * SIGCHLD is gone: make one arrive, so that a reap runs. */
        kart__sigsource_kick(SIGCHLD);
        *fd_out = -1;
        return 0;
    }
    return fd;
}

KART_API int kart_child_start(kart_child *child, kart_child_cb cb, pid_t pid)
{
    if (!child || !cb || pid <= 0)
        return -EINVAL;
    kart_loop *loop = child->base.loop;
    kart_child_stop(child);
    for (kart_child *c = loop->children; c; c = c->next_)
        if (c->pid == pid)
            return -EEXIST;
    siginfo_t info = {0};
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
        return (kill(pid, 0) < 0 && errno == ESRCH) ? -ESRCH : -ECHILD;
    child->pid = pid;
    int fd = -1;
    kart_selector *sel = loop->sel;
    if (sel->ops->child_start && sel->ops->child_start(sel, child) == 0) {
        fd = RING_WATCHED;
        loop->ring_children++;
    }
    if (fd != RING_WATCHED) {
        int err = watch_classic(loop, child, &fd);
        if (err < 0)
            return err;
    }
    child->fd_ = fd;
    child->cb_ = cb;
    child->next_ = loop->children;
    loop->children = child;
    kart__handle_start(&child->base);
    return 0;
}

/* Reaps child if it has exited, then stops the watcher and calls back. */
static void try_reap(kart_child *child)
{
    siginfo_t info = {0};
    int status;
    if (waitid(P_PID, (id_t)child->pid, &info, WEXITED | WNOHANG) == 0) {
        if (info.si_pid == 0)
            return; /* still running: a spurious wake-up */
        status = exit_status(&info);
    } else {
        status = INT_MIN; /* reaped elsewhere (or SIGCHLD set to SIG_IGN) */
    }
    kart_child_stop(child);
    child->cb_(child, status);
}

void kart__child_dispatch(kart_child *child)
{
    try_reap(child);
}

void kart__children_reap(kart_loop *loop)
{
    for (kart_child *c = loop->children; c; c = loop->child_cursor) {
        loop->child_cursor = c->next_;
        if (c->fd_ == -1)
            try_reap(c);
    }
    loop->child_cursor = NULL;
}

void kart__children_ring_dispatch(kart_loop *loop)
{
    int res;
    kart_child *c;
    while ((c = loop->sel->ops->child_next(loop->sel, &res))) {
        if (res == 0 || res == -ECHILD) {
            try_reap(c); /* -ECHILD: reaped elsewhere, status INT_MIN */
            continue;
        }
        /* The ring could not wait (a kernel that refuses the request, a
         * cancel that was not ours): the watcher moves to the pidfd or
         * SIGCHLD path, or reports what stops it. */
        loop->ring_children--;
        int fd = -1;
        int err = watch_classic(loop, c, &fd);
        c->fd_ = fd;
        if (err < 0) {
            kart__log(KART_LOG_WARNING, "child", "cannot watch pid %d: %s", (int)c->pid,
                      kart_strerror(err));
            unlink_child(loop, c);
            kart__handle_stop(&c->base);
            c->cb_(c, INT_MIN);
        }
    }
}

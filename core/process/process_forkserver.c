/*
 * core/process/process_forkserver.c — the fork server start method: one
 * server process, spawned (a fresh exec of this program, so it has one
 * thread and no inherited locks) the first time it is needed, forks every
 * child. A child therefore starts as a copy of the server, not of the
 * caller: safe in a threaded program, and cheaper than spawn (no exec, no
 * dynamic loader per child).
 *
 * The caller and the server talk over a SOCK_SEQPACKET pair. A request is
 * one byte with two descriptors (SCM_RIGHTS): a memfd holding spawn's
 * message (the function's registered name, names, the argument's bytes)
 * and one end of a new status socket pair. The server forks; its child
 * reads the message and runs the function; the server sends the child's
 * pid on the status socket at once, and its exit code (Python's sign
 * convention, int32) when it has reaped it, then closes it. The caller's
 * end of the status socket is the process's sentinel: readable once the
 * code is there, and for ever after (end of file).
 *
 * The server is the child's parent, not the caller: the caller cannot
 * waitid() it, and signals it by pid (the server reaps the child only
 * just before it sends the code, so the pid may be reused in that gap, a
 * gap Python's fork server has as well). The server keeps only stdio and
 * its socket: children get the caller's stdio as it was when the server
 * started, and none of its other descriptors. The server ends when every
 * process holding the caller's end (this process and its fork children)
 * has closed it; its children run on.
 */
#include "fault.h"
#include "process_private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the caller's side ---- */

static pthread_mutex_t server_lock = PTHREAD_MUTEX_INITIALIZER;
static int server_fd = -1; /* the caller's end; -1 before the first start */
static pid_t server_pid;

/* A fork child may use the server too (requests are whole packets, each
 * answered on its own socket), but not a lock another thread held. */
static void reset_in_child(void)
{
    pthread_mutex_init(&server_lock, NULL);
}

__attribute__((constructor(104))) static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, reset_in_child);
}

/* Under server_lock: starts the server. */
static int start_server(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    char **env = kart__proc_child_env(KART__FORKSERVER_ENV, sv[1]);
    if (!env) {
        close(sv[0]);
        close(sv[1]);
        return -ENOMEM;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int err = posix_spawn_file_actions_init(&fa);
    if (err == 0 && (err = posix_spawnattr_init(&attr)) != 0)
        posix_spawn_file_actions_destroy(&fa);
    if (err == 0) {
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        /* dup2 onto itself clears FD_CLOEXEC: the server keeps its end. */
        err = posix_spawn_file_actions_adddup2(&fa, sv[1], sv[1]);
        char *const argv[] = {program_invocation_name, NULL};
        pid_t pid;
        if (err == 0)
            err = kart__sys_posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, env);
        if (err == 0)
            server_pid = pid;
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
    }
    free(env);
    close(sv[1]);
    if (err) {
        close(sv[0]);
        return -err;
    }
    server_fd = sv[0];
    return 0;
}

/* Under server_lock: the server is gone (its end closed): reap it, so
 * that the next request starts another. */
static void forget_server(void)
{
    close(server_fd);
    server_fd = -1;
    while (waitpid(server_pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* A request: the kind byte ('d' for a daemon child, 'r' otherwise) and
 * the fd numbers the caller's extra descriptors must have in the child;
 * SCM_RIGHTS carries the message's memfd, the status socket's end, then
 * those descriptors. */
#define MAX_FDS (3 + KART_PROCESS_MAX_FDS)

static int send_request(const kart_process *p, int memfd, int status_fd, int self_pidfd)
{
    char data[1 + 4 * (KART_PROCESS_MAX_FDS + 1)];
    size_t n = p->nfds;
    data[0] = p->daemon ? 'd' : 'r';
    int fds[MAX_FDS] = {memfd, status_fd};
    for (size_t i = 0; i < n; i++) {
        int32_t t = p->fds[i].child_fd;
        memcpy(data + 1 + 4 * i, &t, 4);
        fds[2 + i] = p->fds[i].parent_fd;
    }
    /* The caller's own pidfd, target -1: the child's parent sentinel. */
    if (self_pidfd >= 0) {
        int32_t t = -1;
        memcpy(data + 1 + 4 * n, &t, 4);
        fds[2 + n++] = self_pidfd;
    }
    struct iovec iov = {.iov_base = data, .iov_len = 1 + 4 * n};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = u.buf,
                         .msg_controllen = CMSG_SPACE((2 + n) * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((2 + n) * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (2 + n) * sizeof(int));
    for (;;) {
        if (sendmsg(server_fd, &msg, MSG_NOSIGNAL) == (ssize_t)iov.iov_len)
            return 0;
        if (errno != EINTR)
            return errno == EBADF ? -EBADF : -errno;
    }
}

static int recv_all(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n == (ssize_t)len)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -errno : -EPIPE;
    }
}

int kart__proc_start_forkserver(kart_process *p)
{
    int memfd = kart__sys_memfd_create("kart-forkserver", MFD_CLOEXEC);
    if (memfd < 0)
        return -errno;
    int err = kart__proc_write_msg(memfd, p);
    int st[2] = {-1, -1};
    if (!err && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, st) < 0)
        err = -errno;
    int32_t pid = 0;
    int self_pidfd = err ? -1 : kart__pidfd_open(getpid(), 0);
    if (!err) {
        pthread_mutex_lock(&server_lock);
        /* A server that has gone away is replaced, once. */
        for (int tries = 0; tries < 2; tries++) {
            if (server_fd < 0 && (err = start_server()) < 0)
                break;
            err = send_request(p, memfd, st[1], self_pidfd);
            if (err != -EPIPE && err != -ECONNRESET)
                break;
            forget_server();
        }
        pthread_mutex_unlock(&server_lock);
    }
    close(memfd);
    if (self_pidfd >= 0)
        close(self_pidfd);
    if (st[1] >= 0)
        close(st[1]);
    if (!err)
        err = recv_all(st[0], &pid, sizeof(pid));
    if (!err && pid <= 0)
        err = pid < 0 ? pid : -EPROTO;
    if (err) {
        if (st[0] >= 0)
            close(st[0]);
        return err;
    }
    pthread_mutex_lock(&kart__proc_lock);
    p->pid = pid;
    p->sentinel = st[0];
    p->sentinel_is_pidfd = false;
    p->sentinel_stale = false;
    p->state = KART_PROC_RUNNING;
    kart__proc_list_add(p);
    pthread_mutex_unlock(&kart__proc_lock);
    return 0;
}

int kart__proc_forkserver_reap_locked(kart_process *p)
{
    int32_t code;
    ssize_t n;
    do
        n = recv(p->sentinel, &code, sizeof(code), MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return KART_PROC_RUNNING;
    if (n == (ssize_t)sizeof(code)) {
        p->exitcode = code;
        p->state = KART_PROC_ENDED;
    } else {
        p->state = KART_PROC_LOST; /* the server died first */
    }
    kart__proc_list_remove(p);
    return p->state;
}

/* ---- the server ---- */

typedef struct served {
    pid_t pid;
    int status_fd;
    bool daemon; /* killed when the caller's end of status_fd closes */
    bool killed;
} served;

static served *children;
static size_t nchildren, cap;

static void send_code(int fd, int32_t code)
{
    while (send(fd, &code, sizeof(code), MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

/* Reaps every ended child and sends its code. */
static void reap_children(void)
{
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof(info));
        if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG) < 0 || info.si_pid == 0)
            return;
        int32_t code = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
        for (size_t i = 0; i < nchildren; i++)
            if (children[i].pid == info.si_pid) {
                send_code(children[i].status_fd, code);
                close(children[i].status_fd);
                children[i] = children[--nchildren];
                break;
            }
    }
}

/* A daemon child must die with the process that asked for it, but its
 * parent is this server: PR_SET_PDEATHSIG would tie it to the server.
 * The caller (and its fork children) hold the other end of the child's
 * status socket until the child is reaped, so that end closing while
 * the child runs means the caller is gone: the server, whose child it is
 * (its pid cannot be reused before the server reaps it), kills it. */
static void kill_orphaned_daemon(size_t i)
{
    kill(children[i].pid, SIGKILL);
    children[i].killed = true;
}

/* In the child: moves the message to a high fd and the caller's extra
 * descriptors to the numbers it asked for (two steps, so that no target
 * overwrites a descriptor still to be moved). Returns the message fd. */
static int place_fds(int *fds, size_t n, const int32_t *targets)
{
    int low = 3;
    for (size_t i = 0; i < n; i++)
        if (targets[i] + 1 > low)
            low = targets[i] + 1;
    int msg = fcntl(fds[0], F_DUPFD_CLOEXEC, low);
    int tmp[KART_PROCESS_MAX_FDS + 1];
    for (size_t i = 0; i < n; i++)
        tmp[i] = fcntl(fds[2 + i], F_DUPFD_CLOEXEC, low);
    if (msg < 0)
        _exit(71);
    close(fds[0]);
    for (size_t i = 0; i < n; i++) {
        close(fds[2 + i]);
        if (tmp[i] >= 0 && targets[i] < 0) { /* the caller's pidfd */
            kart__proc_parent_pidfd = tmp[i];
            continue;
        }
        if (tmp[i] < 0 || dup2(tmp[i], targets[i]) < 0)
            _exit(71);
        close(tmp[i]);
    }
    return msg;
}

/* Receives one request: 1 served, 0 the callers are gone, -1 a bad one. */
static int serve_one(int listen_fd, int sigfd)
{
    char data[1 + 4 * (KART_PROCESS_MAX_FDS + 1)];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n = recvmsg(listen_fd, &msg, MSG_CMSG_CLOEXEC);
    if (n == 0)
        return 0;
    if (n < 0)
        return errno == EINTR ? 1 : 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(2 * sizeof(int)))
        return -1;
    int fds[MAX_FDS];
    size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    if (nfds > MAX_FDS)
        return -1;
    memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
    if ((size_t)n != 1 + 4 * (nfds - 2) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        return -1;
    }
    int32_t targets[KART_PROCESS_MAX_FDS + 1];
    memcpy(targets, data + 1, 4 * (nfds - 2));
    bool daemon = data[0] == 'd';
    if (nchildren == cap) {
        size_t ncap = cap ? 2 * cap : 16;
        served *grown = realloc(children, ncap * sizeof(*grown));
        if (!grown) {
            send_code(fds[1], -ENOMEM);
            for (size_t i = 0; i < nfds; i++)
                close(fds[i]);
            return 1;
        }
        children = grown;
        cap = ncap;
    }
    pid_t self = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* A daemon also dies with the server, which ends only when every
         * caller has gone (its socket's other ends all closed). */
        if (daemon) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != self)
                _exit(0);
        }
        /* The child: none of the server's descriptors but the message and
         * the caller's extra ones. */
        close(listen_fd);
        close(sigfd);
        close(fds[1]);
        for (size_t i = 0; i < nchildren; i++)
            close(children[i].status_fd);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        kart__proc_run_message(place_fds(fds, nfds - 2, targets));
    }
    for (size_t i = 0; i < nfds; i++)
        if (i != 1)
            close(fds[i]);
    if (pid < 0) {
        send_code(fds[1], -errno);
        close(fds[1]);
        return 1;
    }
    send_code(fds[1], (int32_t)pid);
    children[nchildren++] = (served){pid, fds[1], daemon, false};
    return 1;
}

/* The server keeps stdio and its socket only, as Python's does: a
 * descriptor of the caller it held would stay open as long as the server
 * lives (a pipe would never see its end of file), and every child would
 * get it. */
static void close_others(int keep)
{
#ifdef SYS_close_range
    if ((keep <= 3 || syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u) == 0) &&
        syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0)
        return;
#endif
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd > 2 && fd != keep && fd != own)
            close(fd);
    }
    closedir(d);
}

__attribute__((noreturn)) static void serve(int listen_fd)
{
    close_others(listen_fd);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0)
        _exit(71);
    struct pollfd *pfd = NULL;
    size_t *who = NULL, pcap = 0;
    for (;;) {
        if (pcap < nchildren + 2) {
            pcap = 2 * (nchildren + 2);
            struct pollfd *np = realloc(pfd, pcap * sizeof(*pfd));
            size_t *nw = realloc(who, pcap * sizeof(*who));
            if (np)
                pfd = np;
            if (nw)
                who = nw;
            if (!np || !nw)
                _exit(71);
        }
        pfd[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        nfds_t n = 2;
        for (size_t i = 0; i < nchildren; i++)
            if (children[i].daemon && !children[i].killed) {
                /* No events asked: POLLHUP is always reported. */
                pfd[n] = (struct pollfd){.fd = children[i].status_fd, .events = 0};
                who[n++] = i;
            }
        if (poll(pfd, n, -1) < 0)
            continue;
        for (nfds_t k = 2; k < n; k++)
            if (pfd[k].revents & (POLLHUP | POLLERR))
                kill_orphaned_daemon(who[k]);
        if (pfd[1].revents) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                ;
            reap_children();
        }
        if (pfd[0].revents && serve_one(listen_fd, sigfd) == 0)
            break; /* every caller is gone */
    }
    /* Its daemon children die with it (their death signal), but would
     * stay zombies until some reaper adopted them: kill and reap them
     * here. The other children run on, as in Python. */
    for (size_t i = 0; i < nchildren; i++)
        if (children[i].daemon) {
            kill(children[i].pid, SIGKILL);
            while (waitpid(children[i].pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
    _exit(0);
}

void kart__proc_forkserver_dispatch(void)
{
    const char *value = getenv(KART__FORKSERVER_ENV);
    if (!value)
        return;
    char *end;
    long fd = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || fd < 0 || fd > INT32_MAX) {
        dprintf(STDERR_FILENO, "kart: fork server: bad " KART__FORKSERVER_ENV " value\n");
        _exit(70);
    }
    unsetenv(KART__FORKSERVER_ENV);
    serve((int)fd);
}

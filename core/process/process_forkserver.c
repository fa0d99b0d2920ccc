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

static int send_request(int memfd, int status_fd)
{
    char byte = 'r';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = {memfd, status_fd};
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    for (;;) {
        if (sendmsg(server_fd, &msg, MSG_NOSIGNAL) == 1)
            return 0;
        if (errno != EINTR)
            return -errno;
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
    if (!err) {
        pthread_mutex_lock(&server_lock);
        /* A server that has gone away is replaced, once. */
        for (int tries = 0; tries < 2; tries++) {
            if (server_fd < 0 && (err = start_server()) < 0)
                break;
            err = send_request(memfd, st[1]);
            if (err != -EPIPE && err != -ECONNRESET)
                break;
            forget_server();
        }
        pthread_mutex_unlock(&server_lock);
    }
    close(memfd);
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

/* Receives one request: 1 served, 0 the callers are gone, -1 a bad one. */
static int serve_one(int listen_fd, int sigfd)
{
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n = recvmsg(listen_fd, &msg, MSG_CMSG_CLOEXEC);
    if (n == 0)
        return 0;
    if (n < 0)
        return errno == EINTR ? 1 : 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(2 * sizeof(int)))
        return -1;
    int fds[2];
    memcpy(fds, CMSG_DATA(c), sizeof(fds));
    if (nchildren == cap) {
        size_t ncap = cap ? 2 * cap : 16;
        served *grown = realloc(children, ncap * sizeof(*grown));
        if (!grown) {
            send_code(fds[1], -ENOMEM);
            close(fds[0]);
            close(fds[1]);
            return 1;
        }
        children = grown;
        cap = ncap;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* The child: none of the server's descriptors but the message. */
        close(listen_fd);
        close(sigfd);
        close(fds[1]);
        for (size_t i = 0; i < nchildren; i++)
            close(children[i].status_fd);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        kart__proc_run_message(fds[0]);
    }
    close(fds[0]);
    if (pid < 0) {
        send_code(fds[1], -errno);
        close(fds[1]);
        return 1;
    }
    send_code(fds[1], (int32_t)pid);
    children[nchildren++] = (served){pid, fds[1]};
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
    for (;;) {
        struct pollfd pfd[2] = {{.fd = listen_fd, .events = POLLIN},
                                {.fd = sigfd, .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0)
            continue;
        if (pfd[1].revents) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                ;
            reap_children();
        }
        if (pfd[0].revents && serve_one(listen_fd, sigfd) == 0)
            break; /* every caller is gone: the children run on */
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

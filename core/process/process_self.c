/*
 * core/process/process_self.c — who the calling process is: Python's
 * current_process() and parent_process(), and the identity that default
 * child names are built from.
 *
 * A child kart starts with a function (fork or spawn) takes its identity
 * and name before the function runs (kart__proc_become), on its only
 * thread; after that they never change, so they are read without a lock.
 */
#include "fault.h"
#include "process_private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Python's process identity, which default names show: a child's number
 * among its parent's children after its parent's own identity ("Process-2"
 * is this process's second child, "Process-2:1" that child's first). */
char kart__proc_identity[128]; /* "" in the first process */
_Atomic unsigned kart__proc_name_counter;

static char current_name[256] = "MainProcess";
static bool have_parent;
static pid_t parent_pid;
static char parent_name[256];

/* The parent's sentinel: opened on first use (a pidfd), or, in a fork
 * server's child, the pidfd its caller sent (kart__proc_parent_pidfd). */
static _Atomic int parent_sentinel = -1;
int kart__proc_parent_pidfd = -1;

void kart__proc_become(const char *ident, const char *name, pid_t ppid, const char *pname)
{
    /* A fork child inherited its parent's copy of the grandparent's
     * sentinel: not this process's parent. */
    int old = atomic_exchange(&parent_sentinel, -1);
    if (old >= 0 && old != kart__proc_parent_pidfd)
        close(old);
    snprintf(kart__proc_identity, sizeof(kart__proc_identity), "%s", ident);
    snprintf(current_name, sizeof(current_name), "%s", name);
    snprintf(parent_name, sizeof(parent_name), "%s", pname);
    parent_pid = ppid;
    have_parent = true;
    atomic_store_explicit(&kart__proc_name_counter, 0, memory_order_relaxed);
}

const char *kart__proc_current_name(void)
{
    return current_name;
}

KART_API int kart_process_current(kart_process_info *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->pid = getpid();
    out->daemon = kart__proc_is_daemon();
    snprintf(out->name, sizeof(out->name), "%s", current_name);
    return 0;
}

KART_API int kart_process_parent(kart_process_info *out)
{
    if (!out)
        return -EINVAL;
    if (!have_parent)
        return -ESRCH;
    memset(out, 0, sizeof(*out));
    out->pid = parent_pid;
    snprintf(out->name, sizeof(out->name), "%s", parent_name);
    return 0;
}

/* A descriptor that is readable for ever: the sentinel of a parent that
 * is already gone. */
static int readable_fd(void)
{
    int pfd[2];
    if (kart__sys_pipe2(pfd, O_CLOEXEC) < 0)
        return -errno;
    close(pfd[1]);
    return pfd[0];
}

KART_API int kart_process_parent_sentinel(void)
{
    if (!have_parent)
        return -ESRCH;
    int fd = atomic_load(&parent_sentinel);
    if (fd >= 0)
        return fd;
    if (kart__proc_parent_pidfd >= 0) {
        fd = kart__proc_parent_pidfd;
    } else {
        fd = kart__pidfd_open(parent_pid, 0);
        if (fd < 0)
            return errno == ENOSYS || errno == EPERM ? -ENOSYS
                   : errno == ESRCH                  ? readable_fd()
                                                     : -errno;
        /* The pid may have been reused by then: it is our parent's only
         * if our parent is still that pid (a child whose parent died is
         * reparented, and getppid() changes). A fork server's children
         * are given their caller's pidfd instead. */
        if (getppid() != parent_pid) {
            close(fd);
            fd = readable_fd();
            if (fd < 0)
                return fd;
        }
    }
    int none = -1;
    if (!atomic_compare_exchange_strong(&parent_sentinel, &none, fd)) {
        if (fd != kart__proc_parent_pidfd)
            close(fd);
        return none;
    }
    return fd;
}

KART_API int kart_process_parent_alive(void)
{
    int fd = kart_process_parent_sentinel();
    if (fd < 0)
        return fd;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&pfd, 1, 0)) < 0 && errno == EINTR)
        ;
    return n == 0 ? 1 : 0;
}

/* ---- the authentication key ---- */

static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char authkey[KART_PROCESS_AUTHKEY_MAX];
static size_t authkey_len;

static void key_prepare(void)
{
    pthread_mutex_lock(&key_lock);
}

static void key_release(void)
{
    pthread_mutex_unlock(&key_lock);
}

/* Python's main process draws 32 random bytes at start; children inherit
 * them (a fork copies them, spawn and fork-server children are sent them
 * in their start message). Drawn in a constructor so that even a plain
 * fork() child shares its parent's key. */
__attribute__((constructor(103))) static void key_init(void)
{
    pthread_atfork(key_prepare, key_release, key_release);
    size_t got = 0;
    while (got < KART_PROCESS_AUTHKEY_SIZE) {
        ssize_t n = getrandom(authkey + got, KART_PROCESS_AUTHKEY_SIZE - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < KART_PROCESS_AUTHKEY_SIZE) { /* no getrandom: /dev/urandom */
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, authkey, KART_PROCESS_AUTHKEY_SIZE) : -1;
        if (fd >= 0)
            close(fd);
        got = n > 0 ? (size_t)n : 0;
    }
    authkey_len = got;
}

KART_API int kart_process_authkey(void *out, size_t *len)
{
    if (!len || (!out && *len > 0))
        return -EINVAL;
    pthread_mutex_lock(&key_lock);
    int rc = 0;
    if (*len < authkey_len)
        rc = -ENOBUFS;
    else
        memcpy(out, authkey, authkey_len);
    *len = authkey_len;
    pthread_mutex_unlock(&key_lock);
    return rc;
}

KART_API int kart_process_set_authkey(const void *key, size_t len)
{
    if (!key || len == 0 || len > KART_PROCESS_AUTHKEY_MAX)
        return -EINVAL;
    pthread_mutex_lock(&key_lock);
    memcpy(authkey, key, len);
    authkey_len = len;
    pthread_mutex_unlock(&key_lock);
    return 0;
}

/*
 * core/shm_tracker.c — the tracker process behind KART_SHM_TRACK, in the
 * spirit of Python's multiprocessing.resource_tracker.
 *
 * The first tracked create forks (twice, so that the tracker is nobody's
 * child and never shows up in the creator's waitpid(-1)) a process that
 * holds one end of a SOCK_SEQPACKET socket pair; the creator keeps the
 * other, O_CLOEXEC, so that fork children share it and exec drops it.
 * Each message is one record: 'R' or 'U' and a name. When the last holder
 * of the creator's end goes — however it dies — recv returns 0 and the
 * tracker unlinks every name still registered.
 *
 * The tracker is a fork of a possibly multi-threaded process: it calls
 * only system calls (and shm_unlink, which formats a path on the stack),
 * and keeps its table in memory it maps itself.
 */
#include "fault.h"
#include "shm_private.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOT (KART_SHM_NAME_MAX + 1)

static pthread_mutex_t tracker_mu = PTHREAD_MUTEX_INITIALIZER;
static int tracker_fd = -1;
static pid_t tracker_pid;

/* Closes every fd from lo up, so that the tracker holds nothing of its
 * creator's (a pipe it kept open would hide an EOF from someone else). */
static void close_from(int lo)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0u) == 0)
        return;
#endif
    struct rlimit rl;
    long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (long)rl.rlim_cur
                   : 65536;
    for (long fd = lo; fd < max; fd++)
        close((int)fd);
}

/* The tracker's table: used slots hold a NUL-terminated name. */
struct table {
    char *slots;
    size_t n, cap;
};

static void table_add(struct table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->slots + i * SLOT, name) == 0)
            return;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        void *p = t->slots ? mremap(t->slots, t->cap * SLOT, cap * SLOT, MREMAP_MAYMOVE)
                           : mmap(NULL, cap * SLOT, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return; /* out of memory: this name is not cleaned up */
        t->slots = p;
        t->cap = cap;
    }
    memcpy(t->slots + t->n * SLOT, name, strlen(name) + 1);
    t->n++;
}

static void table_del(struct table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->slots + i * SLOT, name) == 0) {
            t->n--;
            memmove(t->slots + i * SLOT, t->slots + t->n * SLOT, SLOT);
            return;
        }
}

static _Noreturn void tracker_main(int sock)
{
    /* Alone in its own session: a terminal's ^C or a signal to the
     * creator's process group must not kill it before it cleans up. */
    setsid();
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (sock != 3) {
        dup2(sock, 3);
        sock = 3;
    }
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    close_from(4);
    if (null > 3)
        close(null);

    struct table t = {0};
    char msg[SLOT + 1];
    for (;;) {
        ssize_t n = recv(sock, msg, sizeof(msg) - 1, 0);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        msg[n] = '\0';
        if (n < 2 || kart_shm_name_check(msg + 1) != 0)
            continue;
        if (msg[0] == 'R')
            table_add(&t, msg + 1);
        else if (msg[0] == 'U')
            table_del(&t, msg + 1);
    }
    for (size_t i = 0; i < t.n; i++)
        shm_unlink(t.slots + i * SLOT);
    _exit(0);
}

static int start_locked(void)
{
    int sv[2], pp[2];
    if (kart__sys_socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    if (kart__sys_pipe2(pp, O_CLOEXEC) != 0) {
        int err = -errno;
        close(sv[0]);
        close(sv[1]);
        return err;
    }
    pid_t mid = kart__sys_fork();
    if (mid == 0) {
        pid_t t = kart__sys_fork();
        if (t == 0) {
            close(sv[0]);
            close(pp[0]);
            close(pp[1]);
            tracker_main(sv[1]);
        }
        int err = t < 0 ? errno : 0;
        pid_t msg[2] = {t, err};
        (void)!kart__sys_write(pp[1], msg, sizeof(msg));
        _exit(0);
    }
    int err = mid < 0 ? -errno : 0;
    close(sv[1]);
    close(pp[1]);
    pid_t msg[2] = {0, EAGAIN};
    if (mid > 0) {
        while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
            ;
        ssize_t n;
        while ((n = kart__sys_read(pp[0], msg, sizeof(msg))) < 0 && errno == EINTR)
            ;
        if (n != (ssize_t)sizeof(msg))
            err = -EAGAIN;
        else if (msg[0] < 0)
            err = -msg[1];
    }
    close(pp[0]);
    if (err) {
        close(sv[0]);
        return err;
    }
    tracker_fd = sv[0];
    tracker_pid = msg[0];
    return 0;
}

/* A fork child has one thread: if another thread of the parent held
 * tracker_mu at the fork, nobody in the child would ever release it. */
static void reset_in_child(void)
{
    pthread_mutex_init(&tracker_mu, NULL);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, reset_in_child);
}

static void lock_tracker(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_atfork);
    pthread_mutex_lock(&tracker_mu);
}

int kart__shm_tracker_ensure(void)
{
    lock_tracker();
    int err = tracker_fd >= 0 ? 0 : start_locked();
    pthread_mutex_unlock(&tracker_mu);
    return err;
}

int kart__shm_tracker_send(char op, const char *name)
{
    char msg[SLOT + 1];
    size_t len = strlen(name);
    msg[0] = op;
    memcpy(msg + 1, name, len);
    lock_tracker();
    int err = 0;
    if (tracker_fd < 0) {
        err = -ESRCH;
    } else {
        ssize_t n;
        while ((n = kart__sys_send(tracker_fd, msg, len + 1, MSG_NOSIGNAL)) < 0 && errno == EINTR)
            ;
        if (n < 0)
            err = -errno;
        if (err == -EPIPE || err == -ECONNRESET) {
            /* The tracker was killed: forget it, so that the next
             * tracked create starts a new one. */
            close(tracker_fd);
            tracker_fd = -1;
            tracker_pid = 0;
            err = -EPIPE;
        }
    }
    pthread_mutex_unlock(&tracker_mu);
    return err;
}

KART_API pid_t kart_shm_tracker_pid(void)
{
    lock_tracker();
    pid_t pid = tracker_pid;
    pthread_mutex_unlock(&tracker_mu);
    return pid;
}

KART_API int kart_shm_track(const char *name)
{
    int err = kart_shm_name_check(name);
    if (err)
        return err;
    for (int tries = 0; tries < 2; tries++) {
        if ((err = kart__shm_tracker_ensure()) != 0)
            return err;
        err = kart__shm_tracker_send('R', name);
        if (err != -EPIPE)
            return err;
    }
    return err;
}

KART_API int kart_shm_untrack(const char *name)
{
    int err = kart_shm_name_check(name);
    if (err)
        return err;
    err = kart__shm_tracker_send('U', name);
    return err == -EPIPE ? -ESRCH : err;
}

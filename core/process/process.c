/*
 * core/process/process.c — Process objects: making them, freeing them,
 * starting them (fork for a function, posix_spawn for a program).
 *
 * Every child gets a sentinel fd: a pidfd (pidfd_open right after fork or
 * posix_spawn; the child cannot be reaped, so its pid cannot be reused, in
 * between), or where pidfd_open is missing or refused, the read end of a
 * pipe whose write end only the child holds. posix_spawn was measured
 * against a raw clone3(CLONE_PIDFD | CLONE_VFORK) followed by execve (the
 * pidfd without a second call): both started and reaped /bin/true at the
 * same rate (about 1,600/s here, exec and the dynamic loader dominate),
 * while posix_spawn's CLONE_VM never copies the parent's page tables, so
 * it stays the one path. A function's child comes from fork(), not clone3:
 * only fork() runs the C library's and kart's fork handlers (malloc's and
 * stdio's locks, kart's registries), without which the child could
 * deadlock.
 *
 * Reaping, joining and signalling are in process_wait.c; the spawn and
 * fork server start methods in process_spawn.c and process_forkserver.c.
 */
#include "deadline.h"
#include "fault.h"
#include "process_private.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/prctl.h>
#elif defined(__FreeBSD__)
#include <sys/procctl.h>
#endif
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- making and freeing ---- */

static int init_common(kart_process **out, const char *name, bool daemon, kart_process **pp)
{
    const char *identity = kart__proc_identity;
    if (!out)
        return -EINVAL;
    if (name && strlen(name) > 255)
        return -EINVAL;
    kart_process *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->state = KART_PROC_NEW;
    p->sentinel = -1;
    p->fork_gen = kart__fork_gen();
    p->daemon = daemon;
    unsigned n = atomic_fetch_add(&kart__proc_name_counter, 1) + 1;
    /* Past 127 bytes (a chain of dozens of forks) the identity is cut. */
    if (snprintf(p->ident, sizeof(p->ident), "%s%s%u", identity, identity[0] ? ":" : "", n) < 0)
        p->ident[0] = '\0';
    if (name)
        strcpy(p->name, name);
    else
        snprintf(p->name, sizeof(p->name), "Process-%s", p->ident);
    *pp = p;
    return 0;
}

KART_API int kart_process_create(kart_process **out, kart_process_fn fn, void *arg,
                                 const kart_process_options *opts)
{
    if (!fn)
        return -EINVAL;
    kart_start_method method = kart_context_start_method(opts ? opts->context : NULL);
    size_t arg_size = opts ? opts->arg_size : 0;
    if (arg_size > 0 && !arg)
        return -EINVAL;
    /* A pointer means nothing in a fresh exec. */
    if (method != KART_START_FORK && arg_size == 0 && arg)
        return -EINVAL;
    size_t nfds = opts ? opts->nfds : 0;
    if (nfds > KART_PROCESS_MAX_FDS || (nfds && !opts->fds))
        return -EINVAL;
    for (size_t i = 0; i < nfds; i++) {
        if (opts->fds[i] < 0)
            return -EINVAL;
        if (fcntl(opts->fds[i], F_GETFD) < 0)
            return -EBADF;
    }
    const kart_process_entry *entry = NULL;
    if (method != KART_START_FORK) {
        int err = kart__proc_spawn_lookup(fn, &entry);
        if (err < 0)
            return err;
    }
    void *copy = NULL;
    if (arg_size > 0) {
        copy = malloc(arg_size);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, arg, arg_size);
    }
    /* Kept as dup2(fd, fd) actions: spawn's exec applies them as a
     * program's (clearing FD_CLOEXEC), the fork server sends them. */
    kart_program_fd *keep = nfds ? calloc(nfds, sizeof(*keep)) : NULL;
    if (nfds && !keep) {
        free(copy);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nfds; i++)
        keep[i] = (kart_program_fd){opts->fds[i], opts->fds[i]};
    kart_process *p;
    int err = init_common(out, opts ? opts->name : NULL, opts && opts->daemon, &p);
    if (err < 0) {
        free(copy);
        free(keep);
        return err;
    }
    p->fds = keep;
    p->nfds = nfds;
    p->fn = fn;
    p->arg = copy ? copy : arg;
    p->arg_copy = copy;
    p->arg_size = arg_size;
    p->method = method;
    p->entry = entry;
    *out = p;
    return 0;
}

/* A NULL-terminated copy of v in one allocation (pointers, then strings). */
static char **copy_vector(char *const *v)
{
    size_t n = 0, bytes = 0;
    for (; v[n]; n++)
        bytes += strlen(v[n]) + 1;
    char **copy = malloc((n + 1) * sizeof(char *) + bytes);
    if (!copy)
        return NULL;
    char *s = (char *)(copy + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]) + 1;
        memcpy(s, v[i], len);
        copy[i] = s;
        s += len;
    }
    copy[n] = NULL;
    return copy;
}

static void free_spawn_fields(kart_process *p)
{
    free(p->path);
    free(p->argv);
    free(p->envp);
    free(p->cwd);
    free(p->fds);
}

KART_API int kart_process_create_program(kart_process **out, const char *path, char *const argv[],
                                         char *const envp[], const kart_program_options *opts)
{
    if (!path)
        return -EINVAL;
    if (opts) {
        if (opts->nfds > 0 && !opts->fds)
            return -EINVAL;
        for (size_t i = 0; i < opts->nfds; i++)
            if (opts->fds[i].child_fd < 0 || opts->fds[i].parent_fd < KART_PROGRAM_DEVNULL)
                return -EINVAL;
    }
    kart_process *p;
    int err = init_common(out, opts ? opts->name : NULL, opts && opts->daemon, &p);
    if (err < 0)
        return err;
    char *const default_argv[] = {(char *)path, NULL};
    p->path = strdup(path);
    p->argv = copy_vector(argv ? argv : default_argv);
    p->envp = envp ? copy_vector(envp) : NULL;
    p->cwd = opts && opts->cwd ? strdup(opts->cwd) : NULL;
    p->nfds = opts ? opts->nfds : 0;
    p->fds = p->nfds ? calloc(p->nfds, sizeof(kart_program_fd)) : NULL;
    if (!p->path || !p->argv || (envp && !p->envp) || (opts && opts->cwd && !p->cwd) ||
        (p->nfds && !p->fds)) {
        free_spawn_fields(p);
        free(p);
        return -ENOMEM;
    }
    if (p->nfds)
        memcpy(p->fds, opts->fds, p->nfds * sizeof(kart_program_fd));
    p->search_path = opts && opts->search_path;
    p->new_session = opts && opts->new_session;
    *out = p;
    return 0;
}

bool kart__proc_inherited(const kart_process *p)
{
    return p->fork_gen != kart__fork_gen();
}

static bool inherited(const kart_process *p)
{
    return kart__proc_inherited(p);
}

void kart__proc_destroy(kart_process *p)
{
    if (p->sentinel >= 0)
        close(p->sentinel);
    free_spawn_fields(p);
    free(p->arg_copy);
    free(p);
}

void kart__proc_release_detached_locked(kart_process *p)
{
    if (p->detached)
        kart__proc_destroy(p);
}

KART_API void kart_process_free(kart_process *p)
{
    if (!p)
        return;
    if (!inherited(p)) {
        pthread_mutex_lock(&kart__proc_lock);
        /* A running child is left to the registry, which frees the object
         * when it reaps the child (Python keeps a dropped Process's child
         * in its list of children the same way). */
        int state = kart__proc_reap_locked(p);
        bool running = state == KART_PROC_RUNNING || state == KART_PROC_STARTING;
        if (running)
            p->detached = true;
        else
            kart__proc_list_remove(p);
        pthread_mutex_unlock(&kart__proc_lock);
        if (running)
            return;
    }
    kart__proc_destroy(p);
}

KART_API pid_t kart_process_pid(const kart_process *p)
{
    return p ? p->pid : 0;
}

KART_API const char *kart_process_name(const kart_process *p)
{
    return p ? p->name : "";
}

KART_API bool kart_process_daemon(const kart_process *p)
{
    return p && p->daemon;
}

KART_API int kart_process_sentinel(const kart_process *p)
{
    if (!p)
        return -EINVAL;
    return p->sentinel >= 0 ? p->sentinel : KART_ENOTSTARTED;
}

/* ---- starting ---- */

static int pidfd_open_(pid_t pid)
{
    int fd = kart__sys_pidfd_open(pid, 0);
    return fd >= 0 ? fd : -errno;
}

/* Whether pidfd_open works here: ENOSYS before Linux 5.3, EPERM from a
 * seccomp filter that does not know it (Docker's default before 20.10).
 * The test build asks every time, so that a test can take pidfd_open
 * away (core/base/fault.h) and give it back. */
static bool have_pidfd(void)
{
    static _Atomic int known; /* 0 unknown, 1 yes, 2 no */
    int k = KART_FAULTS ? 0 : atomic_load_explicit(&known, memory_order_relaxed);
    if (k == 0) {
        int fd = pidfd_open_(getpid());
        k = fd >= 0 ? 1 : 2;
        if (fd >= 0)
            close(fd);
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k == 1;
}

/* Claims a new object for one starting thread. */
static int claim_start(kart_process *p)
{
    if (!p)
        return -EINVAL;
    if (inherited(p))
        return -ECHILD;
    if (kart__proc_is_daemon())
        return -EPERM;
    int err = 0;
    pthread_mutex_lock(&kart__proc_lock);
    if (p->state != KART_PROC_NEW)
        err = -EALREADY;
    else
        p->state = KART_PROC_STARTING;
    pthread_mutex_unlock(&kart__proc_lock);
    return err;
}

static void unclaim(kart_process *p)
{
    pthread_mutex_lock(&kart__proc_lock);
    p->state = KART_PROC_NEW;
    bool detached = p->detached; /* freed by another thread meanwhile */
    pthread_mutex_unlock(&kart__proc_lock);
    if (detached)
        kart__proc_destroy(p);
}

/* The child is running and has its sentinel: publish it. */
static void started(kart_process *p, pid_t pid, int sentinel, bool is_pidfd)
{
    pthread_mutex_lock(&kart__proc_lock);
    p->pid = pid;
    p->sentinel = sentinel;
    p->sentinel_is_pidfd = is_pidfd;
    p->sentinel_stale = false;
    p->state = KART_PROC_RUNNING;
    kart__proc_list_add(p);
    pthread_mutex_unlock(&kart__proc_lock);
}

/* The name a child's parent had (fork: this process's, copied before the
 * child takes its own). */
static char parent_name[256];

/* A child that started but cannot be given a sentinel (no fd left) is
 * killed and reaped: the caller hears the error and nothing is left. */
static void abandon(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* The child's way out, called through pointers that the dynamic linker
 * filled in when the library was loaded. A direct call would go through a
 * lazily bound PLT entry that the parent never used, so every child would
 * run a symbol lookup of its own, faulting in (and copying) a dozen pages:
 * a tenth of a fork's cost here. volatile keeps the compiler from turning
 * it back into a direct call. */
static void (*volatile exit_now)(int) = _exit;
static int (*volatile flush)(FILE *) = fflush;

__attribute__((noreturn)) static void child_main(kart_process *p, pid_t parent, int wfd)
{
    if (p->daemon) {
#if defined(__linux__)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#elif defined(__FreeBSD__)
        int sig = SIGKILL;
        procctl(P_PID, 0, PROC_PDEATHSIG_CTL, &sig);
#endif
        /* The parent may have died before the request: then nobody will
         * send the signal, and the child was re-parented already. */
        if (getppid() != parent)
            raise(SIGKILL);
    }
    kart__proc_child_setup(p->daemon, wfd);
    /* A fork server's child's caller is not this child's parent. */
    if (kart__proc_parent_pidfd >= 0) {
        close(kart__proc_parent_pidfd);
        kart__proc_parent_pidfd = -1;
    }
    snprintf(parent_name, sizeof(parent_name), "%s", kart__proc_current_name());
    kart__proc_become(p->ident, p->name, parent, parent_name);
    int code = p->fn(p->arg);
    kart__proc_exit_cleanup();
    flush(NULL);
    exit_now(code);
    _exit(code); /* not reached */
}

KART_API void kart_process_exit(int code)
{
    kart__proc_exit_cleanup();
    flush(NULL);
    exit_now(code);
    _exit(code); /* not reached */
}

static int start_fork(kart_process *p)
{
    int pipefd[2] = {-1, -1};
    bool pidfd = have_pidfd();
    if (!pidfd && kart__sys_pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    pid_t parent = getpid();
    /* Python flushes its standard streams before forking, so that what
     * was written is not written again by the child. Only when they hold
     * something: a flush takes the stream's lock, a write to a page that
     * the previous fork made copy-on-write. */
    if (__fpending(stdout))
        fflush(stdout);
    if (__fpending(stderr))
        fflush(stderr);
    pid_t pid = kart__sys_fork();
    if (pid < 0) {
        int err = -errno;
        if (!pidfd) {
            close(pipefd[0]);
            close(pipefd[1]);
        }
        return err;
    }
    if (pid == 0) {
        if (!pidfd)
            close(pipefd[0]);
        child_main(p, parent, pipefd[1]);
    }
    int sentinel = pipefd[0];
    if (pidfd) {
        sentinel = pidfd_open_(pid);
        if (sentinel < 0) {
            abandon(pid);
            return sentinel;
        }
    } else {
        close(pipefd[1]);
    }
    started(p, pid, sentinel, pidfd);
    return 0;
}

static int spawn_actions(kart_process *p, posix_spawn_file_actions_t *fa, int wfd, int keep_fd)
{
    int err = 0;
    if (p->cwd)
        err = posix_spawn_file_actions_addchdir_np(fa, p->cwd);
    for (size_t i = 0; i < p->nfds && !err; i++) {
        const kart_program_fd *f = &p->fds[i];
        if (f->parent_fd == KART_PROGRAM_CLOSE)
            err = posix_spawn_file_actions_addclose(fa, f->child_fd);
        else if (f->parent_fd == KART_PROGRAM_DEVNULL)
            err = posix_spawn_file_actions_addopen(fa, f->child_fd, "/dev/null", O_RDWR, 0);
        else
            err = posix_spawn_file_actions_adddup2(fa, f->parent_fd, f->child_fd);
    }
    /* dup2 of an fd onto itself clears its FD_CLOEXEC: the program keeps
     * the sentinel's write end until it ends. */
    if (!err && wfd >= 0)
        err = posix_spawn_file_actions_adddup2(fa, wfd, wfd);
    if (!err && keep_fd >= 0)
        err = posix_spawn_file_actions_adddup2(fa, keep_fd, keep_fd);
    return -err;
}

int kart__proc_start_exec(kart_process *p, const char *path, char *const argv[], char *const envp[],
                          int keep_fd)
{
    int pipefd[2] = {-1, -1};
    bool pidfd = have_pidfd();
    if (!pidfd && kart__sys_pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int err = -posix_spawn_file_actions_init(&fa);
    if (err < 0)
        goto out_pipe;
    err = -posix_spawnattr_init(&attr);
    if (err < 0)
        goto out_fa;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (p->new_session)
        flags |= POSIX_SPAWN_SETSID;
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, flags);
    err = spawn_actions(p, &fa, pipefd[1], keep_fd);
    if (err < 0)
        goto out_attr;
    pid_t pid;
    err = p->search_path ? -kart__sys_posix_spawnp(&pid, path, &fa, &attr, argv, envp)
                         : -kart__sys_posix_spawn(&pid, path, &fa, &attr, argv, envp);
    if (err < 0)
        goto out_attr;
    int sentinel = pipefd[0];
    if (pidfd) {
        sentinel = pidfd_open_(pid);
        if (sentinel < 0) {
            abandon(pid);
            err = sentinel;
            goto out_attr;
        }
    } else {
        close(pipefd[1]);
        pipefd[0] = pipefd[1] = -1;
    }
    started(p, pid, sentinel, pidfd);
out_attr:
    posix_spawnattr_destroy(&attr);
out_fa:
    posix_spawn_file_actions_destroy(&fa);
out_pipe:
    if (pipefd[0] >= 0) {
        close(pipefd[0]);
        close(pipefd[1]);
    }
    return err;
}

KART_API int kart_process_start(kart_process *p)
{
    int err = claim_start(p);
    if (err < 0)
        return err;
    kart__proc_atexit_once();
    kart__proc_reap_detached();
    if (p->path)
        err = kart__proc_start_exec(p, p->path, p->argv, p->envp ? p->envp : environ, -1);
    else if (p->method == KART_START_SPAWN)
        err = kart__proc_start_spawn_fn(p);
    else if (p->method == KART_START_FORKSERVER)
        err = kart__proc_start_forkserver(p);
    else
        err = start_fork(p);
    if (err < 0)
        unclaim(p);
    return err;
}

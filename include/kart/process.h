/*
 * kart/process.h — child processes as Python's multiprocessing.Process
 * gives them: a function run in a forked child (the "fork" start method) or
 * a program spawned with posix_spawn; pid, name, join with a timeout,
 * is_alive, the exit code, terminate and kill, a sentinel fd to wait on,
 * daemon children that die with their parent, clean-up at exit, the list of
 * active children; and a CPU count that respects the affinity mask and the
 * cgroup v2 CPU quota.
 *
 * Exit codes follow Python: >= 0 for a normal exit (the low 8 bits of the
 * value passed to exit), -N when signal N killed the child.
 *
 * Reaping: kart reaps each child it started itself, with waitid(P_PID) for
 * exactly that pid, and never waits for other children. A child's pid
 * cannot be reused until it is reaped, so kart never signals a recycled
 * pid; on Linux 5.3+ signals go through the child's pidfd besides. Code
 * elsewhere that reaps every child (waitpid(-1), SIGCHLD set to SIG_IGN, or
 * a kart_child watcher on the same pid) takes the exit status away: kart
 * then reports -ECHILD. To hear a child's exit in a kart_loop, watch its
 * sentinel fd with kart_watch (KART_READABLE) and call kart_process_join(p, 0)
 * in the callback; do not use kart_child_start() on its pid.
 *
 * Threads: every function may be called from any thread; one process
 * object may be joined, polled and signalled by several threads at once.
 *
 * Fork: see "What a forked child inherits" below kart_process_start().
 */
#ifndef KART_PROCESS_H
#define KART_PROCESS_H

#include <kart/common.h>
#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_process kart_process;

/* The function a forked child runs; its return value is the child's exit
 * code (the kernel keeps its low 8 bits). */
typedef int (*kart_process_fn)(void *arg);

typedef struct kart_process_options {
    /* NULL: Python's names: "Process-N" for this process's Nth process
     * object, "Process-M:N" for the Nth made in the child "Process-M".
     * Copied; at most 255 bytes. */
    const char *name;
    /* Killed when its parent exits or dies (see kart_process_start()). */
    bool daemon;
} kart_process_options;

/* What happens to a child's fd before the spawned program starts. */
enum {
    KART_SPAWN_CLOSE = -1,   /* close child_fd */
    KART_SPAWN_DEVNULL = -2, /* open /dev/null read-write as child_fd */
};

typedef struct kart_spawn_fd {
    int child_fd;  /* the fd number the program sees */
    int parent_fd; /* >= 0: dup2(parent_fd, child_fd); or KART_SPAWN_CLOSE / _DEVNULL */
} kart_spawn_fd;

typedef struct kart_spawn_options {
    const char *name; /* as in kart_process_options */
    bool daemon;      /* killed at this process's exit (no PR_SET_PDEATHSIG:
                        * a spawned program that outlives a parent killed by
                        * a signal keeps running) */
    bool search_path; /* look the program up in PATH (posix_spawnp) when it
                        * has no '/' */
    bool new_session; /* setsid() in the child */
    const char *cwd;  /* NULL: the parent's; else the program starts there */
    /* fd actions, applied in order (as successive dup2/close/open would
     * be) after the child is made and before the program runs. Every other
     * fd without FD_CLOEXEC is inherited. */
    const kart_spawn_fd *fds;
    int nfds;
} kart_spawn_options;

/*
 * Makes a process object that will run fn(arg) in a forked child (opts
 * may be NULL). Nothing starts until kart_process_start(). *out stays valid
 * until kart_process_free().
 * Errors: -EINVAL (out or fn NULL, a name longer than 255 bytes), -ENOMEM.
 */
KART_API int kart_process_create(kart_process **out, kart_process_fn fn, void *arg,
                                 const kart_process_options *opts);

/*
 * Makes a process object that will run the program at path with argv and
 * envp (each NULL-terminated and copied here; argv NULL: {path, NULL};
 * envp NULL: this process's environment at start time), opts may be NULL.
 * The program starts with every signal at its default disposition and an
 * empty signal mask (kart's loops block signals they watch: a program
 * should not inherit that).
 * Errors: -EINVAL (out or path NULL, an fd action with child_fd < 0 or
 * parent_fd < -2, nfds < 0 or fds NULL with nfds > 0, a name over 255
 * bytes), -ENOMEM.
 */
KART_API int kart_process_create_spawn(kart_process **out, const char *path, char *const argv[],
                                       char *const envp[], const kart_spawn_options *opts);

/*
 * Starts the child. On return it runs (or has already ended), has a pid,
 * a sentinel fd, and is in the list of active children; the first start
 * also registers the at-exit clean-up (atexit(3)): daemon children still
 * running are killed (SIGKILL), then every child still running is joined,
 * like Python's at-exit handler.
 *
 * A forked child runs fn(arg), then does the same clean-up for its own
 * children, flushes stdio (fflush(NULL)) and calls _exit() with fn's
 * return value: the parent's atexit handlers and static destructors do not
 * run there. A daemon forked child asks the kernel for SIGKILL when its
 * parent dies (PR_SET_PDEATHSIG, checked against a parent that died during
 * the fork). The kernel sends it when the parent *thread* that forked
 * ends, so fork daemons from a thread that lives as long as the process.
 *
 * Errors: -EINVAL (NULL), -EALREADY (started before), -EPERM (in a daemon
 * child forked by kart: as in Python, daemons may not have children),
 * -ECHILD (an object made by the parent, seen in a fork child), -ENOENT,
 * -EACCES, -ENOEXEC… (spawn: the program, or cwd, could not be used; no
 * child is left behind), -EBADF (spawn: an fd action's parent_fd is not
 * open; closing an fd that is not open is not an error), -EAGAIN (no more
 * processes), -EMFILE, -ENOMEM. After an error the object may be freed, or
 * started again.
 *
 * What a forked child inherits: the memory of the parent as it was (copy on
 * write), every fd (including the parent's other children's sentinels),
 * signal dispositions and mask of the forking thread, the environment, the
 * working directory, resource limits, CPU affinity. Only the forking thread
 * exists in the child: kart's own locks (thread registry, timer thread,
 * process registry) are reset by fork handlers, but locks the parent's
 * other threads held stay locked; kart threads of the parent are listed as
 * dead (kart_thread_join() → -EINVAL); the parent's alarms are cancelled
 * and a new timer thread starts on demand; the parent's process objects
 * answer -ECHILD (they are not the child's children) and may only be freed.
 * A kart_loop made by the parent must not be run in the child: its io_uring
 * ring is shared memory with the parent's. Make a new loop in the child.
 * stdout and stderr are flushed before the fork (as Python does); other
 * stdio streams are inherited with what their buffers hold: flush them
 * first, or that output may appear twice.
 */
KART_API int kart_process_start(kart_process *p);

/*
 * Waits at most timeout_ns (negative: forever; 0: only check) for the
 * child to end, then reaps it; joining an ended child again returns 0 at
 * once. Signals do not end the wait early.
 * Errors: -EINVAL (NULL), KART_ENOTSTARTED, -ETIMEDOUT (still running),
 * -ECHILD (an object of the parent seen in a fork child; or the exit status
 * was taken by another reaper, see above: the child has ended but its exit
 * code is lost).
 */
KART_API int kart_process_join(kart_process *p, int64_t timeout_ns);

/* 1 while the child runs, 0 before start and after it ended (reaping it
 * when it has). Errors: -EINVAL (NULL), -ECHILD (as for join). */
KART_API int kart_process_is_alive(kart_process *p);

/*
 * The exit code without waiting: returns 1 and stores it in *code once the
 * child has ended (reaping it if need be), 0 (and *code untouched) while
 * there is none yet: not started, or still running.
 * Errors: -EINVAL (NULL p or code), -ECHILD (as for join).
 */
KART_API int kart_process_exitcode(kart_process *p, int *code);

/*
 * Sends SIGTERM (terminate) or SIGKILL (kill) or any signal (signal) to the
 * running child, through its pidfd where there is one. Never signals a pid
 * the child no longer owns.
 * Errors: -EINVAL (NULL; signum not a valid signal; 0 is valid and only
 * checks the child still runs), KART_ENOTSTARTED, -ESRCH (the child has
 * ended: nothing was sent), -ECHILD (as for join), -EPERM.
 */
KART_API int kart_process_terminate(kart_process *p);
KART_API int kart_process_kill(kart_process *p);
KART_API int kart_process_signal(kart_process *p, int signum);

/* The child's pid; 0 before start (or for NULL). It stays the same after
 * the child ended. */
KART_API pid_t kart_process_pid(const kart_process *p);

/* The name; "" for NULL. Valid until free. */
KART_API const char *kart_process_name(const kart_process *p);

/* The name of the process the caller runs in (Python's
 * current_process().name): "MainProcess", or in a child kart forked, that
 * child's name. */
KART_API const char *kart_process_current_name(void);

/* 1 for a daemon, 0 otherwise (and for NULL). */
KART_API int kart_process_daemon(const kart_process *p);

/*
 * An fd that becomes readable when the child ends and stays readable after:
 * a pidfd on Linux 5.3+, else the read end of a pipe whose write end only
 * the child holds. The pipe can close early (a forked child that execs) or
 * late (a spawned program's own children, a process another thread forked
 * at the same moment, or one the child made without fork(), inherit the
 * write end); kart_process_join() does not depend on it. For poll, select,
 * kart_watch and wait;
 * the fd belongs to the object: do not read or close it. Valid from start
 * until free.
 * Errors: -EINVAL (NULL), KART_ENOTSTARTED.
 */
KART_API int kart_process_sentinel(const kart_process *p);

/*
 * Frees the object and closes its sentinel.
 * Errors: -EINVAL (NULL), -EBUSY (started and not yet known to have ended:
 * join it, or kill and join it, first; nothing is freed). An object of the
 * parent seen in a fork child is always freed (the child never waits for
 * it).
 */
KART_API int kart_process_free(kart_process *p);

/*
 * The children started by this process that still run: reaps those that
 * have ended (as Python's active_children() does; they leave the list),
 * stores at most max of the others in out (in start order) and returns how
 * many run in all (which may exceed max). The pointers stay valid until
 * kart_process_free().
 * Errors: -EINVAL (out NULL with max > 0, max negative).
 */
KART_API int kart_process_active_children(kart_process **out, int max);

/*
 * The number of CPUs this process may use: the CPUs in its affinity mask
 * (sched_getaffinity), lowered to the cgroup v2 CPU quota rounded up
 * (ceil(quota / period) from cpu.max, the smallest along the cgroup's path
 * up to the root), and never below 1. Read from /proc/self/cgroup and
 * /sys/fs/cgroup on each call (cheap; limits change at run time). cgroup v1
 * quotas are not read.
 */
KART_API int kart_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif

/*
 * kart/process.h — child processes as Python's multiprocessing.Process
 * gives them: a function run in a child made by a start method (fork, or
 * spawn: a fresh exec of this program), or a program run with posix_spawn;
 * the current process and its parent; pid, name, join with a timeout,
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
 * Start methods (Python's get_context()): "fork" runs the function in a
 * forked copy of this process (the default, as in Python 3.13 on Linux,
 * see kart_process_set_start_method());
 * "spawn" runs it in a fresh exec of this program (/proc/self/exe), safe
 * in a threaded program, for functions registered with
 * KART_PROCESS_FUNCTION() and arguments passed as bytes; "forkserver"
 * forks it from a server process spawned once (the same rules as spawn,
 * cheaper per child). A fork server's child is the server's child, not the
 * caller's: it has the caller's stdio as it was when the server started
 * and none of its other descriptors (but those of options.fds), it is
 * signalled by pid, and a daemon one dies with its caller (the server
 * kills it when the caller's end of its status socket closes).
 *
 * At exit, children still running are joined as Python does, but for at
 * most kart_process_exit_timeout() (30 s unless changed): then they are
 * terminated, with a WARNING line in kart's log naming each one. See
 * kart_process_set_exit_timeout().
 *
 * Thread safety: kart_process is thread-safe: every call may come from any
 * thread, and one object may be joined, polled and signalled by several
 * threads at once; only kart_process_free() must be the last call on an
 * object. Contexts are immutable and thread-safe; the default start
 * method and the exit timeout are atomic settings. The registry of spawn
 * functions is filled by constructors before main() runs.
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

/* The function a child runs; its return value is the child's exit code
 * (the kernel keeps its low 8 bits). */
typedef int (*kart_process_fn)(void *arg);

/* How a function's child is made (Python's start methods). */
typedef enum kart_start_method {
    KART_START_FORK = 0,       /* fork(): a copy of this process */
    KART_START_SPAWN = 1,      /* a fresh exec of this program */
    KART_START_FORKSERVER = 2, /* forked by a server spawned once */
} kart_start_method;

/* A start method as an object (Python's context, from get_context()):
 * what kart_process_options, and pools and queues that start processes,
 * take to say how their children are made. The contexts are static:
 * never freed, valid for the life of the process. */
typedef struct kart_context kart_context;

/*
 * The context of a start method (Python's get_context(method)).
 * Errors: -EINVAL (out NULL, method not a kart_start_method).
 */
KART_API int kart_context_get(kart_start_method method, const kart_context **out);

/* A context's start method; for NULL, the default start method. */
KART_API kart_start_method kart_context_start_method(const kart_context *ctx);

/*
 * Sets the default start method (Python's set_start_method(m,
 * force=True)): the one a NULL context means, for process objects made
 * afterwards, and for pools and queues given no context. Process-wide,
 * thread-safe; inherited by fork children, and passed to spawned ones.
 * Errors: -EINVAL (method not a kart_start_method; nothing changes).
 */
KART_API int kart_process_set_start_method(kart_start_method method);

/* The default start method (Python's get_start_method()):
 * KART_START_FORK unless set. */
KART_API kart_start_method kart_process_start_method(void);

typedef struct kart_process_options {
    /* NULL: Python's names: "Process-N" for this process's Nth process
     * object, "Process-M:N" for the Nth made in the child "Process-M".
     * Copied; at most 255 bytes. */
    const char *name;
    /* Killed when its parent exits or dies (see kart_process_start()). */
    bool daemon;
    /* NULL: the default start method's (fork unless set). */
    const kart_context *context;
    /* 0: fn receives arg itself (fork only: a pointer means nothing in a
     * spawned program, so spawn and forkserver then need arg NULL). > 0: arg points at
     * arg_size bytes, copied by kart_process_create(), and fn receives a
     * pointer to a copy of them in the child (aligned for any type), under
     * every start method. */
    size_t arg_size;
    /* Descriptors the child must have, at the same numbers, under every
     * start method (how a queue, a pool's arena or a socket reaches a
     * spawned child: name the fd in arg). fork: inherited anyway; spawn:
     * kept across the exec (their FD_CLOEXEC cleared in the child only);
     * forkserver: sent to the server with the request and put at those
     * numbers in the child. At most KART_PROCESS_MAX_FDS; the caller
     * keeps its own copies. */
    const int *fds;
    size_t nfds;
} kart_process_options;

/* The most descriptors kart_process_options.fds may name. */
#define KART_PROCESS_MAX_FDS 16

/* A spawn function's registration, filled in by KART_PROCESS_FUNCTION(). */
typedef struct kart_process_entry {
    const char *name;
    kart_process_fn fn;
    struct kart_process_entry *next_;
} kart_process_entry;

/*
 * Registers fn (a function with external or internal linkage, declared
 * before this line) so that the spawn start method can run it: write
 * KART_PROCESS_FUNCTION(fn) at file scope of the program (not of a library
 * loaded with dlopen: its constructors run after the spawned child was
 * dispatched). It expands to two constructors: one registers fn under its
 * name ("fn") at priority 101, one, after every prioritized constructor of
 * the program, asks kart whether this process is a spawned child meant to
 * run a registered function; if so the child runs it and ends there,
 * before main() (Python's spawn imports the main module without running
 * its __main__ block: constructors are the import, main() is that block).
 * Constructors without a priority placed after that one, and C++ static
 * initializers of later files, do not run in the child (kart's own
 * constructors all have priorities, so a statically linked kart is
 * ready).
 */
#define KART_PROCESS_FUNCTION(fn)                                                                  \
    static kart_process_entry kart__process_entry_##fn = {#fn, fn, NULL};                          \
    __attribute__((constructor(101))) static void kart__process_register_##fn(void)                \
    {                                                                                              \
        kart_process_register(&kart__process_entry_##fn);                                          \
    }                                                                                              \
    __attribute__((constructor)) static void kart__process_dispatch_##fn(void)                     \
    {                                                                                              \
        kart_process_dispatch();                                                                   \
    }

/* What KART_PROCESS_FUNCTION() calls: links an entry into the registry
 * (entry must live as long as the process; NULL or an entry without name
 * or fn is ignored), and runs a spawned child's function (returns at once
 * in every other process, and in a child whose function is not registered
 * yet). Not for direct use. */
KART_API void kart_process_register(kart_process_entry *entry);
KART_API void kart_process_dispatch(void);

/* What happens to a child's fd before the spawned program starts. */
enum {
    KART_PROGRAM_CLOSE = -1,   /* close child_fd */
    KART_PROGRAM_DEVNULL = -2, /* open /dev/null read-write as child_fd */
};

typedef struct kart_program_fd {
    int child_fd;  /* the fd number the program sees */
    int parent_fd; /* >= 0: dup2(parent_fd, child_fd); or KART_PROGRAM_CLOSE / _DEVNULL */
} kart_program_fd;

typedef struct kart_program_options {
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
    const kart_program_fd *fds;
    size_t nfds;
} kart_program_options;

/*
 * Makes a process object that will run fn(arg) in a child made by the
 * context's start method (opts may be NULL: every default; a NULL
 * context: the default start method). Nothing starts
 * until kart_process_start(). *out stays valid until kart_process_free().
 * Errors: -EINVAL (out or fn NULL, a name longer than 255 bytes, arg_size
 * > 0 with arg NULL, spawn or forkserver with arg_size 0 and arg not
 * NULL; fds NULL with nfds > 0, nfds above KART_PROCESS_MAX_FDS, a
 * negative fd), -EBADF (an fd in fds is not open), -ENOENT (spawn, forkserver: fn is not registered with
 * KART_PROCESS_FUNCTION()), -EEXIST (spawn, forkserver: another registered
 * function has fn's name, so the child could not tell them apart),
 * -ENOMEM.
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
 * parent_fd < -2, fds NULL with nfds > 0, a name over 255 bytes),
 * -ENOMEM.
 */
KART_API int kart_process_create_program(kart_process **out, const char *path, char *const argv[],
                                         char *const envp[], const kart_program_options *opts);

/*
 * Starts the child. On return it runs (or has already ended), has a pid,
 * a sentinel fd, and is in the list of active children; the first start
 * also registers the at-exit clean-up (atexit(3)): daemon children still
 * running are killed (SIGKILL), then every child still running is joined,
 * like Python's at-exit handler.
 *
 * A function's child runs fn(arg), then ends as kart_process_exit() with
 * fn's return value: its own children are cleaned up, stdio is flushed,
 * and the parent's atexit handlers and static destructors do not run
 * there. A forked child that calls exit() itself does run the atexit
 * handlers it inherited from the parent: call kart_process_exit() instead.
 * A spawned child starts with the parent's environment, working
 * directory and fds without FD_CLOEXEC, every signal at its default
 * disposition and none blocked, and nothing else of the parent's memory
 * but the bytes of arg. A fork server's child starts as a copy of the
 * server (the program after its constructors, stdio only, the environment
 * and working directory the caller had when the server started); the
 * first forkserver start spawns the server, and a server that died is
 * replaced at the next start. A daemon forked child asks the kernel for SIGKILL when its
 * parent dies (PR_SET_PDEATHSIG, checked against a parent that died during
 * the fork). The kernel sends it when the parent *thread* that forked
 * ends, so fork daemons from a thread that lives as long as the process.
 *
 * Errors: -EINVAL (NULL), -EALREADY (started before), -EPERM (in a daemon
 * child forked by kart: as in Python, daemons may not have children),
 * -ECHILD (an object made by the parent, seen in a fork child), -ENOENT,
 * -EACCES, -ENOEXEC… (a program, or cwd, or for the spawn and forkserver
 * methods /proc/self/exe, could not be used; no child is left behind),
 * -EPROTO (forkserver: the server answered nonsense), -EBADF
 * (a program: an fd action's parent_fd is not open; a function's
 * options.fds names an fd closed since create; closing an fd that is not open is not an error), -EAGAIN (no more
 * processes), -EMFILE, -ENFILE (no descriptor left: the pipe sentinel where
 * pidfd_open is missing), -ENOMEM. After an error the object may be freed, or
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
 * was taken by another reaper, see above, or a fork server died before it
 * reported it: the child has ended but its exit code is lost).
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
 * Sends SIGTERM (terminate) or SIGKILL (kill) to the running child,
 * through its pidfd where there is one. A child that has already ended is
 * sent nothing and the call returns 0, as Python's terminate() and kill()
 * do. Never signals a pid the child no longer owns.
 * Errors: -EINVAL (NULL), KART_ENOTSTARTED, -ECHILD (as for join), -EPERM.
 */
KART_API int kart_process_terminate(kart_process *p);
KART_API int kart_process_kill(kart_process *p);

/*
 * Sends any signal to the running child, as kart_process_kill() does, but
 * says when the child has ended (os.kill()'s ProcessLookupError).
 * Errors: -EINVAL (NULL; signum not a valid signal; 0 is valid and only
 * checks the child still runs), KART_ENOTSTARTED, -ESRCH (the child has
 * ended: nothing was sent), -ECHILD (as for join), -EPERM.
 */
KART_API int kart_process_signal(kart_process *p, int signum);

/* The child's pid; 0 before start (or for NULL). It stays the same after
 * the child ended. */
KART_API pid_t kart_process_pid(const kart_process *p);

/* The name; "" for NULL. It never changes: valid until free. */
KART_API const char *kart_process_name(const kart_process *p);

/* true for a daemon, false otherwise (and for NULL). */
KART_API bool kart_process_daemon(const kart_process *p);

/* A process as Python's current_process() and parent_process() describe
 * it. */
typedef struct kart_process_info {
    pid_t pid;
    bool daemon;
    char name[256]; /* NUL-terminated copy */
} kart_process_info;

/*
 * The process the caller runs in (Python's current_process()): its pid,
 * whether it is a daemon child, and its name: "MainProcess", or in a
 * child kart started with a function (fork or spawn), that child's name.
 * Errors: -EINVAL (out NULL).
 */
KART_API int kart_process_current(kart_process_info *out);

/*
 * The process that started the caller (Python's parent_process()), as it
 * was when it started the caller: pid and name (daemon is always false:
 * daemons have no children). Whether it still runs:
 * kart_process_parent_alive(), kart_process_parent_sentinel().
 * Errors: -EINVAL (out NULL), -ESRCH (the caller is not a child kart
 * started with a function: Python's None).
 */
KART_API int kart_process_parent(kart_process_info *out);

/*
 * The parent's sentinel (Python's parent_process().sentinel): an fd that
 * becomes readable when the process that started the caller ends, and
 * stays readable. A pidfd of the parent, opened on the first call (a fork
 * server's child is given its caller's pidfd with its start request: its
 * own parent is the server); an fd readable at once when the parent had
 * already gone. The fd belongs to kart, valid for the life of the
 * process: do not read or close it. Thread-safe.
 * Errors: -ESRCH (the caller is not a child kart started with a function),
 * -ENOSYS (no pidfd_open on this kernel, or refused by seccomp), -EMFILE,
 * -ENFILE, -ENOMEM.
 */
KART_API int kart_process_parent_sentinel(void);

/*
 * Whether the parent still runs (Python's parent_process().is_alive()):
 * 1, or 0 once it has ended; never waits.
 * Errors: those of kart_process_parent_sentinel().
 */
KART_API int kart_process_parent_alive(void);

/* The authentication key's default length, and its most. */
#define KART_PROCESS_AUTHKEY_SIZE 32
#define KART_PROCESS_AUTHKEY_MAX 256

/*
 * This process's authentication key (Python's current_process().authkey):
 * KART_PROCESS_AUTHKEY_SIZE random bytes drawn when the main process
 * loads kart, and inherited by every child (fork copies it; spawn and
 * fork-server children are sent it), unless set. Copies it into out,
 * whose capacity *len holds on entry; *len is set to the key's length.
 * It is secret: kart never logs it.
 * Errors: -EINVAL (len NULL; out NULL with *len > 0), -ENOBUFS (*len below
 * the key's length: *len holds that length, nothing copied).
 */
KART_API int kart_process_authkey(void *out, size_t *len);

/*
 * Sets this process's authentication key (copied; len bytes): children
 * started afterwards inherit it. Thread-safe.
 * Errors: -EINVAL (key NULL, len 0 or above KART_PROCESS_AUTHKEY_MAX;
 * nothing changes).
 */
KART_API int kart_process_set_authkey(const void *key, size_t len);

/*
 * Ends the calling process now with code (its low 8 bits), as a
 * function's child ends after fn returns (Python's os._exit() after the
 * target, plus kart's own clean-up): kart's at-exit clean-up of this
 * process's children (bounded, see kart_process_set_exit_timeout()),
 * fflush(NULL), then _exit(code). atexit handlers and static destructors
 * do not run. Usable in any process, from any thread (other threads are
 * not joined). Never returns.
 */
KART_API __attribute__((noreturn)) void kart_process_exit(int code);

/*
 * How long the at-exit clean-up (exit(), the end of a child's function,
 * kart_process_exit()) waits for non-daemon children, in total, before it
 * gives up on those still running: each is logged (WARNING, module
 * "process": name, pid, and the timeout), sent SIGTERM, given 1 s more,
 * then SIGKILL, and reaped, so that exit() always ends. Negative: wait
 * forever, as Python does (a child blocked forever then makes exit()
 * hang). Default 30 s (KART_PROCESS_EXIT_TIMEOUT_DEFAULT). Process-wide,
 * thread-safe, inherited by fork children, not by spawned ones.
 */
#define KART_PROCESS_EXIT_TIMEOUT_DEFAULT (30 * (int64_t)1000000000)
KART_API void kart_process_set_exit_timeout(int64_t timeout_ns);
KART_API int64_t kart_process_exit_timeout(void);

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
 * Frees the object (NULL: nothing). A child that has ended is reaped, its
 * sentinel closed. A child that still runs is not stopped: it is detached,
 * as a Python Process object dropped while its child runs: kart still
 * reaps it once it ends (the next kart_process_start(),
 * kart_process_active_children() and the at-exit clean-up do, without
 * listing it) and keeps its sentinel open until then; nothing else can
 * reach it. An object of the parent seen in a fork child is
 * freed (the child never waits for it).
 */
KART_API void kart_process_free(kart_process *p);

/*
 * The children started by this process that still run: reaps those that
 * have ended (as Python's active_children() does; they leave the list),
 * stores at most max of the others in out (in start order) and returns how
 * many run in all (which may exceed max). Detached children (freed while
 * running) are reaped but not listed. The pointers stay valid until
 * kart_process_free().
 * Errors: -EINVAL (out NULL with max > 0).
 */
KART_API int kart_process_active_children(kart_process **out, size_t max);

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

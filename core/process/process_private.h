/*
 * core/process_private.h — what core/process.c, core/process_registry.c and
 * core/cpucount.c share, and the hooks the tests use.
 */
#ifndef KART_PROCESS_PRIVATE_H
#define KART_PROCESS_PRIVATE_H

#include "fork_gen.h"

#include <kart/process.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

enum {
    KART_PROC_NEW,      /* made, not started */
    KART_PROC_STARTING, /* a start is under way (in one thread) */
    KART_PROC_RUNNING,  /* started, not yet reaped */
    KART_PROC_ENDED,    /* reaped: exitcode holds the code */
    KART_PROC_LOST,     /* ended, but another reaper took its status */
};

struct kart_process {
    /* Guarded by kart__proc_lock (one lock for every object and the list:
     * it is held only for short non-blocking steps, never while waiting). */
    int state;
    int exitcode;
    pid_t pid;
    int sentinel; /* pidfd or pipe read end; -1 before start */
    bool sentinel_is_pidfd;
    bool sentinel_stale;       /* readable while the child still runs (see join) */
    kart_process *prev, *next; /* the active list, while listed */
    bool listed;

    unsigned fork_gen; /* kart__fork_gen() of the process that made it */
    bool daemon;
    bool detached;  /* freed while running: reaping it frees it */
    bool pinned;    /* the at-exit clean-up is joining it: it frees it */
    int exit_stage; /* at exit: 1 sent SIGTERM, 2 sent SIGKILL */

    /* function target */
    kart_process_fn fn;
    void *arg;      /* the caller's pointer, or arg_copy */
    void *arg_copy; /* arg_size bytes copied at create, or NULL */
    size_t arg_size;
    kart_start_method method;
    const kart_process_entry *entry; /* spawn: fn's registration */

    /* spawn target (NULL path: a fork target); one allocation each */
    char *path;
    char **argv;
    char **envp; /* NULL: the environment at start time */
    char *cwd;
    kart_program_fd *fds;
    size_t nfds;
    bool search_path, new_session;

    char ident[128]; /* "2:1": see identity in process.c */
    char name[256];
};

/* The lock of the list of active children and of every object's state. */
extern pthread_mutex_t kart__proc_lock;


/* Under kart__proc_lock: link a started process at the tail of the active
 * list / unlink it (a no-op when not listed). */
void kart__proc_list_add(kart_process *p);
void kart__proc_list_remove(kart_process *p);

/* Whether p was made by an ancestor (seen in a fork child). */
bool kart__proc_inherited(const kart_process *p);

/* Under kart__proc_lock: reaps p if it has ended (unlisting it) and
 * returns its state. */
int kart__proc_reap_locked(kart_process *p);
/* Under kart__proc_lock: signals p if it still runs (reaping it first if
 * it has ended: -ESRCH). */
int kart__proc_signal_locked(kart_process *p, int signum);

/* Reaps the detached children that have ended (and frees their objects),
 * as Python's Process.start() reaps finished children first. */
void kart__proc_reap_detached(void);

/* The write end of this child's pipe sentinel (held until it ends, so its
 * parent sees the end: the sentinel where pidfd_open is missing), or -1. */
int kart__proc_sentinel_wfd(void);

/* Registers the at-exit clean-up once per process. */
void kart__proc_atexit_once(void);

/* The at-exit clean-up: kills daemon children, then joins every child. */
void kart__proc_exit_cleanup(void);

/* The child side after kart's fork: set before fn runs. */
void kart__proc_child_setup(bool daemon, int sentinel_wfd);
/* Whether this process is a daemon child that kart forked. */
bool kart__proc_is_daemon(void);

/* Under kart__proc_lock, for a process that has ended and been unlisted:
 * frees it if it was detached (freed while running). */
void kart__proc_release_detached_locked(kart_process *p);
/* Frees the object's memory and sentinel (no lock, no list). */
void kart__proc_destroy(kart_process *p);

/* Who this process is (process_self.c). The identity is the prefix of
 * default child names; the counter numbers this process's objects. */
extern char kart__proc_identity[128];
extern _Atomic unsigned kart__proc_name_counter;
/* In a new child, before its function runs: its identity and name, and its
 * parent's pid and name. */
void kart__proc_become(const char *ident, const char *name, pid_t parent_pid,
                       const char *parent_name);
/* In a fork server's child: the pidfd of the caller, which it sent with
 * the request (-1: none); the parent's sentinel. */
extern int kart__proc_parent_pidfd;
/* The current name, valid for the life of the process (the log). */
const char *kart__proc_current_name(void);

/* The spawn start method (process_spawn.c). */
/* Finds fn's registration: 0, -ENOENT (not registered), -EEXIST (its name
 * is registered for another function too). */
int kart__proc_spawn_lookup(kart_process_fn fn, const kart_process_entry **out);
/* The registry's first entry (pool workers map tasks by name with it). */
kart_process_entry *kart__proc_registry_head(void);
/* Starts p's function in a fresh exec of this program. */
int kart__proc_start_spawn_fn(kart_process *p);
/* The message a spawned or fork-server child reads (spawn's format). */
int kart__proc_write_msg(int fd, const kart_process *p);
/* environ without kart's markers, plus var=fd; one allocation to free. */
#define KART__FORKSERVER_ENV "KART_PROCESS_FORKSERVER"
char **kart__proc_child_env(const char *var, int fd);
/* In a fork server's child: reads the message at fd, runs its function,
 * ends the process. */
__attribute__((noreturn)) void kart__proc_run_message(int fd);

/* The fork server (process_forkserver.c). */
/* Starts p's function in a child of the fork server (started first if
 * need be). */
int kart__proc_start_forkserver(kart_process *p);
/* Under kart__proc_lock: p's exit status, if the server sent it. */
int kart__proc_forkserver_reap_locked(kart_process *p);
/* In a process started as the fork server: serves, never returns. */
void kart__proc_forkserver_dispatch(void);

/* Starts a program (process.c); keep_fd >= 0 is inherited by it. */
int kart__proc_start_exec(kart_process *p, const char *path, char *const argv[], char *const envp[],
                          int keep_fd);

/* The CPU count with /proc and /sys read under root ("" for the real
 * ones) and the affinity count given (tests fake both). */
int kart__cpu_count_at(const char *root, int affinity_cpus);

#endif

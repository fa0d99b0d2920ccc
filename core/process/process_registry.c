/*
 * core/process_registry.c — the list of active children, the at-exit
 * clean-up, and what happens to both across fork.
 *
 * One mutex guards the list and every process object's state; it is held
 * for short non-blocking steps only (a waitid(WNOHANG), a signal), so one
 * lock costs nothing and leaves no lock order to get wrong.
 *
 * Fork handlers take the mutex before fork and release it on both sides,
 * so a child forked while another thread held it does not deadlock. In the
 * child the list starts empty (the parent's children are not its own) and
 * the fork generation grows by one, which makes the parent's objects
 * answer -ECHILD there.
 */
#include "deadline.h"
#include "process_private.h"

#include <kart/log.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

pthread_mutex_t kart__proc_lock = PTHREAD_MUTEX_INITIALIZER;

static kart_process *head, *tail; /* the active list, in start order */
static _Atomic unsigned fork_gen;
static bool is_daemon_child;        /* set once in a kart fork child */
static int child_sentinel_wfd = -1; /* this child's pipe sentinel, if any */

unsigned kart__fork_gen(void)
{
    return atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

void kart__proc_list_add(kart_process *p)
{
    p->prev = tail;
    p->next = NULL;
    if (tail)
        tail->next = p;
    else
        head = p;
    tail = p;
    p->listed = true;
}

void kart__proc_list_remove(kart_process *p)
{
    if (!p->listed)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        tail = p->prev;
    p->prev = p->next = NULL;
    p->listed = false;
}

/* Under the lock: frees a detached object once it has ended, unless the
 * at-exit clean-up holds it. */
static void drop_if_done_locked(kart_process *p, int state)
{
    if (p->detached && !p->pinned && state != KART_PROC_RUNNING)
        kart__proc_release_detached_locked(p);
}

KART_API int kart_process_active_children(kart_process **out, size_t max)
{
    if (max > 0 && !out)
        return -EINVAL;
    size_t n = 0;
    int running = 0;
    pthread_mutex_lock(&kart__proc_lock);
    for (kart_process *p = head, *next; p; p = next) {
        next = p->next; /* reaping unlinks p */
        int state = kart__proc_reap_locked(p);
        if (state != KART_PROC_RUNNING) {
            drop_if_done_locked(p, state);
        } else if (!p->detached) {
            if (n < max)
                out[n++] = p;
            if (running < INT_MAX)
                running++;
        }
    }
    pthread_mutex_unlock(&kart__proc_lock);
    return running;
}

void kart__proc_reap_detached(void)
{
    pthread_mutex_lock(&kart__proc_lock);
    for (kart_process *p = head, *next; p; p = next) {
        next = p->next;
        if (p->detached)
            drop_if_done_locked(p, kart__proc_reap_locked(p));
    }
    pthread_mutex_unlock(&kart__proc_lock);
}

int kart__proc_sentinel_wfd(void)
{
    return child_sentinel_wfd;
}

bool kart__proc_is_daemon(void)
{
    return is_daemon_child;
}

void kart__proc_child_setup(bool daemon, int sentinel_wfd)
{
    is_daemon_child = daemon;
    child_sentinel_wfd = sentinel_wfd;
}

/* ---- at exit ---- */

static _Atomic int64_t exit_timeout = KART_PROCESS_EXIT_TIMEOUT_DEFAULT;

KART_API void kart_process_set_exit_timeout(int64_t timeout_ns)
{
    atomic_store(&exit_timeout, timeout_ns < 0 ? -1 : timeout_ns);
}

KART_API int64_t kart_process_exit_timeout(void)
{
    return atomic_load(&exit_timeout);
}

/* Takes the first listed child off to the clean-up (pinned), or NULL. */
static kart_process *pin_first(void)
{
    pthread_mutex_lock(&kart__proc_lock);
    kart_process *p = head;
    if (p)
        p->pinned = true;
    pthread_mutex_unlock(&kart__proc_lock);
    return p;
}

static void unpin(kart_process *p)
{
    pthread_mutex_lock(&kart__proc_lock);
    p->pinned = false;
    int state = kart__proc_reap_locked(p);
    drop_if_done_locked(p, state);
    pthread_mutex_unlock(&kart__proc_lock);
}

/* Sends signum to every listed child still running that has not been
 * through this stage, logging each outside the lock (the log's handler is
 * the program's code). Returns how many were signalled. */
static int signal_stage(int stage, int signum, int64_t timeout_ns)
{
    int count = 0;
    for (;;) {
        char name[sizeof(((kart_process *)0)->name)];
        pid_t pid = 0;
        pthread_mutex_lock(&kart__proc_lock);
        for (kart_process *p = head, *next; p; p = next) {
            next = p->next;
            int state = kart__proc_reap_locked(p);
            if (state != KART_PROC_RUNNING) {
                drop_if_done_locked(p, state);
                continue;
            }
            if (p->exit_stage >= stage)
                continue;
            p->exit_stage = stage;
            if (kart__proc_signal_locked(p, signum) != 0) {
                /* ended meanwhile (reaped now), or refused */
                drop_if_done_locked(p, p->state);
                continue;
            }
            pid = p->pid;
            memcpy(name, p->name, sizeof(name));
            break;
        }
        pthread_mutex_unlock(&kart__proc_lock);
        if (!pid)
            return count;
        count++;
        if (stage == 1)
            kart_log(KART_LOG_WARNING, "process",
                     "exit: child %s (pid %d) still running after the exit timeout (%lld ms): "
                     "sending SIGTERM (kart_process_set_exit_timeout)",
                     name, (int)pid, (long long)(timeout_ns / 1000000));
        else
            kart_log(KART_LOG_WARNING, "process",
                     "exit: child %s (pid %d) still running 1 s after SIGTERM: sending SIGKILL",
                     name, (int)pid);
    }
}

/* Whether any listed child still runs (reaping those that ended). */
static bool any_running(void)
{
    bool running = false;
    pthread_mutex_lock(&kart__proc_lock);
    for (kart_process *p = head, *next; p; p = next) {
        next = p->next;
        int state = kart__proc_reap_locked(p);
        if (state == KART_PROC_RUNNING)
            running = true;
        else
            drop_if_done_locked(p, state);
    }
    pthread_mutex_unlock(&kart__proc_lock);
    return running;
}

/* The exit timeout has passed: SIGTERM, a second of grace, SIGKILL. */
static void give_up(int64_t timeout_ns)
{
    if (signal_stage(1, SIGTERM, timeout_ns) == 0)
        return;
    int64_t grace = kart__deadline(1000000000);
    while (any_running() && kart__time_left(grace) > 0) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    signal_stage(2, SIGKILL, timeout_ns);
}

void kart__proc_exit_cleanup(void)
{
    /* Daemons are killed rather than sent SIGTERM as Python does: their
     * death signal at the parent's exit is SIGKILL anyway, and a daemon
     * that ignores SIGTERM must not hold the exit up. */
    pthread_mutex_lock(&kart__proc_lock);
    for (kart_process *p = head, *next; p; p = next) {
        next = p->next; /* reaping an ended one unlinks it */
        if (p->daemon)
            kart__proc_signal_locked(p, SIGKILL); /* an ended one: -ESRCH, fine */
        if (p->state != KART_PROC_RUNNING)
            drop_if_done_locked(p, p->state);
    }
    pthread_mutex_unlock(&kart__proc_lock);
    /* Python joins the others however long they take; kart does for at
     * most the exit timeout, so that a child blocked forever cannot make
     * exit() hang unseen. */
    int64_t timeout = kart_process_exit_timeout();
    int64_t deadline = kart__deadline(timeout);
    bool gave_up = false;
    kart_process *p;
    /* join unlists what it reaps, so this ends. */
    while ((p = pin_first()) != NULL) {
        int r = kart_process_join(p, gave_up ? -1 : kart__time_left(deadline));
        unpin(p);
        if (r == -ETIMEDOUT && !gave_up) {
            give_up(timeout);
            gave_up = true;
        }
    }
}

static void at_exit(void)
{
    kart__proc_exit_cleanup();
}

static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static void register_atexit(void)
{
    atexit(at_exit);
}

void kart__proc_atexit_once(void)
{
    pthread_once(&atexit_once, register_atexit);
}

/* ---- fork ---- */

static void before_fork(void)
{
    pthread_mutex_lock(&kart__proc_lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&kart__proc_lock);
}

static void after_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
    head = tail = NULL;
    /* A grandchild must not hold its parent's sentinel open. */
    if (child_sentinel_wfd >= 0) {
        close(child_sentinel_wfd);
        child_sentinel_wfd = -1;
    }
    pthread_mutex_unlock(&kart__proc_lock);
}

/* Priority 103, after core/thread.c (101) and core/alarm.c (102): prepare
 * handlers run in reverse order of registration, so this lock is taken
 * first; kart never takes another of those locks while holding it. */
__attribute__((constructor(103))) static void register_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

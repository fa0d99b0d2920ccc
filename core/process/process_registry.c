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
#include "process_private.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
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

KART_API int kart_process_active_children(kart_process **out, int max)
{
    if (max < 0 || (max > 0 && !out))
        return -EINVAL;
    int n = 0;
    pthread_mutex_lock(&kart__proc_lock);
    for (kart_process *p = head, *next; p; p = next) {
        next = p->next; /* reaping unlinks p */
        if (kart__proc_reap_locked(p) == KART_PROC_RUNNING) {
            if (n < max)
                out[n] = p;
            n++;
        }
    }
    pthread_mutex_unlock(&kart__proc_lock);
    return n;
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

static kart_process *first_listed(void)
{
    pthread_mutex_lock(&kart__proc_lock);
    kart_process *p = head;
    pthread_mutex_unlock(&kart__proc_lock);
    return p;
}

void kart__proc_exit_cleanup(void)
{
    /* Daemons are killed rather than sent SIGTERM as Python does: their
     * death signal at the parent's exit is SIGKILL anyway, and a daemon
     * that ignores SIGTERM must not hold the exit up. */
    pthread_mutex_lock(&kart__proc_lock);
    for (kart_process *p = head; p; p = p->next)
        if (p->daemon)
            kart__proc_signal_locked(p, SIGKILL); /* an ended one: -ESRCH, fine */
    pthread_mutex_unlock(&kart__proc_lock);
    /* join unlists what it reaps, so this ends. */
    kart_process *p;
    while ((p = first_listed()) != NULL)
        kart_process_join(p, -1);
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

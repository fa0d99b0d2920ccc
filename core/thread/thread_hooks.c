/*
 * core/thread/thread_hooks.c — the process-wide settings of kart's
 * threads: the excepthook, the start/end hook (the C form of what
 * threading.settrace / setprofile are used for), the default stack size
 * (threading.stack_size), and interrupt_main.
 *
 * Each hook is a (function, argument) pair read and written together
 * under one mutex, so a thread never calls a new function with an old
 * argument. The mutex is a leaf: nothing else is taken while it is held,
 * and a hook is called after it is dropped, so a hook may set hooks,
 * start threads or rename itself.
 */
#include "thread_hooks.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static kart_thread_excepthook except_fn; /* NULL: the default */
static void *except_arg;
static kart_thread_hook event_fn;
static void *event_arg;
static _Atomic size_t default_stack;

static void default_excepthook(const kart_thread_failure *failure)
{
    fprintf(stderr, "kart: thread %s (ident %llu) failed with %d\n", failure->thread->name,
            (unsigned long long)failure->thread->ident, failure->result);
}

KART_API void kart_thread_set_excepthook(kart_thread_excepthook hook, void *arg,
                                         kart_thread_excepthook *old_fn, void **old_arg)
{
    pthread_mutex_lock(&hook_lock);
    kart_thread_excepthook prev = except_fn;
    void *prev_arg = except_arg;
    except_fn = hook;
    except_arg = hook ? arg : NULL;
    pthread_mutex_unlock(&hook_lock);
    if (old_fn)
        *old_fn = prev;
    if (old_arg)
        *old_arg = prev_arg;
}

void kart__thread_report_failure(const kart_thread_info *info, int result)
{
    pthread_mutex_lock(&hook_lock);
    kart_thread_excepthook fn = except_fn;
    void *arg = except_arg;
    pthread_mutex_unlock(&hook_lock);
    kart_thread_failure failure = {.thread = info, .result = result};
    if (fn)
        fn(&failure, arg);
    else
        default_excepthook(&failure);
}

KART_API void kart_thread_set_hook(kart_thread_hook hook, void *arg, kart_thread_hook *old_fn,
                                   void **old_arg)
{
    pthread_mutex_lock(&hook_lock);
    kart_thread_hook prev = event_fn;
    void *prev_arg = event_arg;
    event_fn = hook;
    event_arg = hook ? arg : NULL;
    pthread_mutex_unlock(&hook_lock);
    if (old_fn)
        *old_fn = prev;
    if (old_arg)
        *old_arg = prev_arg;
}

void kart__thread_run_hook(kart_thread *t, kart_thread_event event)
{
    pthread_mutex_lock(&hook_lock);
    kart_thread_hook fn = event_fn;
    void *arg = event_arg;
    pthread_mutex_unlock(&hook_lock);
    if (fn)
        fn(t, event, arg);
}

/* ---- the default stack size ---- */

KART_API int kart_thread_set_stack_size(size_t size, size_t *old)
{
    if (size && size < (size_t)PTHREAD_STACK_MIN)
        return -EINVAL;
    size_t prev = atomic_exchange(&default_stack, size);
    if (old)
        *old = prev;
    return 0;
}

KART_API size_t kart_thread_stack_size(void)
{
    return atomic_load(&default_stack);
}

size_t kart__thread_default_stack(void)
{
    return atomic_load_explicit(&default_stack, memory_order_relaxed);
}

/* ---- interrupt_main ---- */

/* True when the thread tid has ended but its process goes on: a main
 * thread that called pthread_exit() stays a zombie until the last thread
 * ends, and the kernel still accepts signals for it that nothing will
 * ever run. */
static bool thread_ended(pid_t tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false; /* no /proc: assume it runs */
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces and ')' */
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

KART_API int kart_thread_interrupt_main(int signum)
{
    if (signum == 0)
        signum = SIGINT;
    if (signum < 0 || signum >= NSIG)
        return -EINVAL;
    /* The main thread's kernel id is the process id (in a fork child too:
     * the thread that forked became it). */
    pid_t pid = getpid();
    if (thread_ended(pid))
        return -ESRCH;
    if (syscall(SYS_tgkill, pid, pid, signum) != 0)
        return -errno;
    return 0;
}

/* ---- fork ---- */

static void before_fork(void)
{
    pthread_mutex_lock(&hook_lock);
}

static void after_fork(void)
{
    pthread_mutex_unlock(&hook_lock);
}

/* Priority 103, after core/thread/thread.c (101) and alarm.c (102): the
 * hook mutex is a leaf, so any order would do; this one is stated. */
__attribute__((constructor(103))) static void register_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork, after_fork);
}

/*
 * kart/thread.h — threads as Python's threading and _thread give them:
 * start with a name, stack size, CPU affinity, detached or joinable; join
 * with a timeout; identity and names (renamed at any time); the list of
 * live threads; a process-wide default stack size (threading.stack_size);
 * a hook for a thread whose function reports failure (excepthook) and one
 * for every start and end (what threading.settrace/setprofile are used
 * for); interrupt_main; thread-local storage; run-once; and timers that
 * share one timer thread (threading.Timer, as kart_alarm).
 *
 * Threads that kart did not start (the main thread, threads from
 * pthread_create) are known to kart_thread_current() too: the first call
 * on such a thread adopts it.
 *
 * Thread safety: every function here may be called from any thread. The
 * exceptions are per object: a kart_thread may not be used once a join on
 * it has succeeded (the join frees it); a kart_tls may not be destroyed
 * while a thread may still call get or set on it; a kart_alarm may not be
 * initialized or destroyed while another call on it runs.
 */
#ifndef KART_THREAD_H
#define KART_THREAD_H

#include <kart/common.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_thread kart_thread;

/* The size of a buffer that holds any thread name and its NUL (the
 * kernel's limit: names are cut at 15 bytes). */
#define KART_THREAD_NAME_MAX 16

/* A thread's function: 0 for success; any other value is a failure that
 * the excepthook hears about and that join reports. */
typedef int (*kart_thread_fn)(void *arg);

typedef struct kart_thread_options {
    const char *name;      /* truncated to 15 bytes (the kernel's limit); NULL: "kart-IDENT" */
    size_t stack_size;     /* 0: kart_thread_stack_size()'s; else at least PTHREAD_STACK_MIN */
    const cpu_set_t *cpus; /* NULL: inherit the creator's affinity */
    bool detached;         /* not joinable; its resources go when it ends */
    bool numa_bind;        /* run on the CPUs of NUMA node numa_node (with
                              * cpus too: on the CPUs in both) */
    int numa_node;
} kart_thread_options;

/*
 * Starts fn(arg) in a new thread. When it returns, the thread is running,
 * has its name and kernel id, and is in kart_thread_list()/count(). *out
 * (may be NULL for a detached thread) stays valid until kart_thread_join()
 * succeeds on it, or, for a detached thread, until it ends.
 * Errors: -EINVAL (fn NULL; out NULL for a joinable thread; stack size
 * below PTHREAD_STACK_MIN; a CPU set with no CPU this machine has, or one
 * the process may not use; numa_bind with a node that does not exist, or
 * whose CPUs miss all of cpus), -EAGAIN (no more threads), -ENOMEM.
 */
KART_API int kart_thread_start(kart_thread **out, kart_thread_fn fn, void *arg,
                               const kart_thread_options *opts);

/*
 * Waits for the thread to end, at most timeout_ns (negative: forever, 0:
 * only check), then frees it and stores its function's return value in
 * *result (if not NULL). On -ETIMEDOUT the thread is still joinable.
 * Errors: -EINVAL (NULL, detached, adopted rather than started by kart, or
 * a thread of the parent seen in a fork child), -EDEADLK (a thread joining
 * itself), -ETIMEDOUT, -EBUSY (another thread is already joining it).
 */
KART_API int kart_thread_join(kart_thread *t, int64_t timeout_ns, int *result);

/* 1 while the thread's function runs (for an adopted thread: until it
 * ends); 0 for NULL. */
KART_API int kart_thread_is_alive(const kart_thread *t);

/* The process-unique identifier (never reused while the process lives,
 * never 0), and the kernel's thread id (what /proc and top show). 0 for a
 * NULL thread. */
KART_API uint64_t kart_thread_ident(const kart_thread *t);
KART_API pid_t kart_thread_native_id(const kart_thread *t);

/* Copies the thread's name, with its NUL, into buf (a name can change at
 * any time, so none is lent out) and returns its length.
 * Errors: -EINVAL (t or buf NULL), -ENOBUFS (size is not more than the
 * name's length; nothing is written; KART_THREAD_NAME_MAX always fits). */
KART_API int kart_thread_name(const kart_thread *t, char *buf, size_t size);

/*
 * Renames the thread, at any time, as assigning Thread.name does: kart's
 * name (kart_thread_name, kart_thread_list, the excepthook) and, while the
 * thread is alive, the kernel's (what top and /proc show). name is cut at
 * 15 bytes. Errors: -EINVAL (t or name NULL), and the kernel's refusal
 * (an -errno from writing /proc/self/task/TID/comm), in which case
 * neither name changed.
 */
KART_API int kart_thread_set_name(kart_thread *t, const char *name);

/* The calling thread (adopted on first use if kart did not start it; an
 * adopted thread leaves the list when it ends), and the main thread (the
 * one whose kernel id is the process id, adopted when first asked for,
 * from any thread). NULL only when there is no memory to adopt.
 *
 * Lifetime: a thread kart started is valid until kart_thread_join()
 * succeeds on it (detached: until it ends); an adopted thread's until
 * that thread ends, except the main thread's, which lives as long as the
 * process.
 *
 * Fork: in the child, the thread that forked is the main thread and the
 * only one listed; the parent's other threads are not alive there and not
 * joinable (-EINVAL). */
KART_API kart_thread *kart_thread_current(void);
KART_API kart_thread *kart_thread_main(void);

/* A snapshot of one live thread. */
typedef struct kart_thread_info {
    uint64_t ident;
    pid_t native_id;
    char name[KART_THREAD_NAME_MAX];
    bool daemon; /* detached */
} kart_thread_info;

/* The number of live threads kart knows (started by kart, or adopted): a
 * started thread counts from kart_thread_start()'s return until its
 * function, the excepthook and the end hook have returned. */
KART_API size_t kart_thread_count(void);

/* Stores at most max snapshots of live threads and returns how many there
 * are in all (which may exceed max); a consistent snapshot even while
 * threads start and end. Errors: -EINVAL (out NULL with max > 0). */
KART_API int kart_thread_list(kart_thread_info *out, size_t max);

/* What the excepthook hears when a thread's function returns non-zero. */
typedef struct kart_thread_failure {
    const kart_thread_info *thread;
    int result;
} kart_thread_failure;

typedef void (*kart_thread_excepthook)(const kart_thread_failure *failure, void *arg);

/*
 * Sets the excepthook and its argument (hook NULL: the default, which
 * prints "kart: thread NAME (ident N) failed with RESULT" to stderr); the
 * previous hook and argument go to *old_fn and *old_arg when those are not
 * NULL (NULL and NULL for the default), so that they can be put back. It
 * runs on the failing thread, once, after the function returned and before
 * the end hook and the thread leaves the list; failure and its thread
 * snapshot live only for the call. A thread failing on another thread
 * while the hook changes may still call the previous one: keep what
 * old_arg points at until those threads have ended.
 */
KART_API void kart_thread_set_excepthook(kart_thread_excepthook hook, void *arg,
                                         kart_thread_excepthook *old_fn, void **old_arg);

/* What the start/end hook hears. */
typedef enum kart_thread_event {
    KART_THREAD_STARTED = 1, /* on the new thread, before its function */
    KART_THREAD_ENDED = 2,   /* on the thread, after its function (and the
                              * excepthook), before it leaves the list */
} kart_thread_event;

typedef void (*kart_thread_hook)(kart_thread *t, kart_thread_event event, void *arg);

/*
 * Sets a hook called on every thread kart starts (kart_thread_start, and
 * so pools' workers and the timer thread; not adopted threads): with
 * KART_THREAD_STARTED on the new thread before its function runs
 * (kart_thread_start may have returned already), and KART_THREAD_ENDED on
 * it after its function returned. t is the thread itself
 * (kart_thread_current()): the hook may rename it, read its ident, set
 * hooks or start threads. hook NULL removes it. Settable at any time from
 * any thread; the previous hook and argument go to *old_fn and *old_arg
 * when those are not NULL. A thread starting or ending while the hook
 * changes may still call the previous one: keep what old_arg points at
 * until those threads have ended.
 */
KART_API void kart_thread_set_hook(kart_thread_hook hook, void *arg, kart_thread_hook *old_fn,
                                   void **old_arg);

/* ---- process-wide settings ---- */

/*
 * Sets the stack size of threads started from now on without one of
 * their own (threading.stack_size(size)); 0 goes back to the C library's
 * default. The previous value goes to *old when it is not NULL.
 * Errors: -EINVAL (size not 0 and below PTHREAD_STACK_MIN; nothing
 * changes).
 */
KART_API int kart_thread_set_stack_size(size_t size, size_t *old);

/* The value set by kart_thread_set_stack_size (0: the C library's
 * default), as threading.stack_size() returns it. */
KART_API size_t kart_thread_stack_size(void);

/*
 * _thread.interrupt_main(signum): sends signum (0: SIGINT) to the main
 * thread, whatever thread calls, as if it had arrived there: the main
 * thread's handler runs and its blocking system call is interrupted
 * (EINTR, unless SA_RESTART). With the default disposition of SIGINT the
 * process ends, as on a C-c. Errors: -EINVAL (not a signal number),
 * -ESRCH (the main thread has ended, by pthread_exit(), while the process
 * goes on: nothing would ever run the signal).
 */
KART_API int kart_thread_interrupt_main(int signum);

/* ---- thread-local storage and run-once ---- */

typedef struct kart_tls {
    pthread_key_t key_;
    bool valid_;
} kart_tls;

/* Sets up a slot in the caller's struct; destructor (may be NULL) runs
 * with a thread's non-NULL value when that thread ends. Errors: -EINVAL
 * (NULL), -EAGAIN (the C library has no more keys), -ENOMEM. */
KART_API int kart_tls_init(kart_tls *tls, void (*destructor)(void *));
/* Releases the slot; accepts NULL and a slot already destroyed.
 * Destructors do not run for values still set. Thread safety: no thread
 * may call get or set on it during or after this (the C library may hand
 * its key to the next kart_tls_init at once); get and set themselves run
 * from any thread. */
KART_API void kart_tls_destroy(kart_tls *tls);
/* Sets the calling thread's value. Errors: -EINVAL (NULL or destroyed),
 * -ENOMEM. */
KART_API int kart_tls_set(kart_tls *tls, void *value);
/* NULL when unset (or tls is NULL or destroyed). */
KART_API void *kart_tls_get(const kart_tls *tls);

typedef struct kart_once {
    _Atomic uint32_t state_; /* 0 new, 1 running, 2 done, 3 running with sleepers */
    _Atomic uint32_t owner_; /* the kernel id of the thread running fn */
} kart_once;
#define KART_ONCE_INIT                                                                             \
    {                                                                                              \
        0, 0                                                                                       \
    }

/* Runs fn(arg) exactly once across all callers; later and concurrent
 * callers return after it has finished. Only for threads of one process
 * (a once running in another thread at fork never finishes in the child).
 * Errors: -EINVAL (once or fn NULL), -EDEADLK (fn itself, directly or not,
 * calls kart_once_run() on the same once: that inner call fails instead of
 * waiting forever). */
KART_API int kart_once_run(kart_once *once, void (*fn)(void *), void *arg);

/* ---- Timer (threading.Timer): kart_alarm ---- */

typedef void (*kart_alarm_fn)(void *arg);

typedef struct kart_alarm {
    kart_alarm_fn fn_;
    void *arg_;
    int64_t deadline_;
    uint64_t seq_;
    uint32_t index_;
    _Atomic uint32_t state_; /* idle, waiting, running, done, cancelled */
} kart_alarm;
/* An alarm starts zeroed: kart_alarm_init(), or `kart_alarm a =
 * KART_ALARM_INIT;` (or {0}) for a static one. */
#define KART_ALARM_INIT                                                                            \
    {                                                                                              \
        0                                                                                          \
    }

/* Sets up an alarm, as KART_ALARM_INIT does. Not on an alarm that is
 * waiting or running (kart_alarm_destroy() it first). Errors: -EINVAL
 * (NULL). */
KART_API int kart_alarm_init(kart_alarm *alarm);

/*
 * Ends the alarm's use: a waiting alarm is cancelled, and a running one
 * is waited for, so that on return its function is not running and never
 * will (from its own function, on the timer thread, it does not wait:
 * the timer thread then leaves the alarm alone once the function has
 * returned). Afterwards the memory may be freed, or set up again with
 * kart_alarm_init(). Accepts NULL and an alarm never started.
 */
KART_API void kart_alarm_destroy(kart_alarm *alarm);

/*
 * Runs fn(arg) once, not before delay_ns from now, on the process's one
 * timer thread (a detached kart thread named "kart-timer", started on
 * first use; ten thousand alarms are ten thousand heap entries, not
 * threads). Alarms fire in deadline order, ties in start order. A done or
 * cancelled alarm may be started again. The alarm must stay valid until
 * it is done or cancelled (kart_alarm_join()).
 * Alarms belong to one process (not for shared memory). Fork: the child
 * has no timer thread; alarms waiting in the parent are cancelled in the
 * child, one running at the fork is done there, and the child's first
 * start makes a new timer thread.
 * Errors: -EINVAL (alarm or fn NULL, negative delay), -EBUSY (already
 * waiting or running), -EAGAIN / -ENOMEM (the timer thread could not
 * start, or no memory for the heap).
 */
KART_API int kart_alarm_start(kart_alarm *alarm, int64_t delay_ns, kart_alarm_fn fn, void *arg);

/* Cancels a waiting alarm, from any thread (its function included).
 * Returns 0 if it was cancelled in time (fn will not run; also for an
 * alarm already cancelled), -EALREADY if fn is running or has run,
 * -EINVAL (NULL, never started). */
KART_API int kart_alarm_cancel(kart_alarm *alarm);

/* Waits until the alarm is done or cancelled, at most timeout_ns
 * (negative: forever, 0: only check), from any thread; any number of
 * threads may join one alarm. Errors: -EINVAL (NULL, never
 * started), -ETIMEDOUT, -EDEADLK (called on the timer thread, that is
 * from an alarm's function, for an alarm not yet finished: it could never
 * finish). */
KART_API int kart_alarm_join(kart_alarm *alarm, int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif

/*
 * core/thread.c — kart's threads: start with options, join with a
 * timeout, identity and names, the registry of live threads, adoption of
 * threads kart did not start. The process-wide hooks and settings they
 * call are in thread_hooks.c.
 *
 * The clever idea: a starting thread registers itself and publishes its
 * kernel id before kart_thread_start() returns (the creator waits on a
 * futex word on its own stack), and an ending thread leaves the registry
 * before it raises its "done" word; so the registry, kart_thread_count()
 * and a joiner never see a thread half-started or half-ended. Join waits
 * on that word with a deadline and only then calls pthread_join(), which
 * at that point cannot block for long: a timed join needs no
 * pthread_clockjoin_np, which ThreadSanitizer does not know.
 */
#include "deadline.h"
#include "fault.h"
#include "futex.h"
#include "thread_hooks.h"

#include <kart/numa.h>
#include <kart/thread.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kart_thread {
    pthread_t pthread;
    kart_thread_fn fn;
    void *arg;
    uint64_t ident;
    _Atomic pid_t native_id;
    char name[KART_THREAD_NAME_MAX]; /* guarded by reg_lock once started */
    bool detached;
    bool adopted;
    bool orphan; /* a thread of the parent, seen in a fork child */
    _Atomic uint32_t alive;
    _Atomic uint32_t done;    /* futex word: 1 once the thread has left the registry */
    _Atomic uint32_t joining; /* 1 while a join is in progress */
    int result;
    /* The registry's fields, guarded by reg_lock, apart from the
     * read-only ones above (compilers may read neighbouring bools as one
     * word). */
    kart_thread *prev, *next;
    bool registered;
};

/* What the creator hands the new thread; it lives on the creator's stack
 * until `ready` turns 1. */
struct start_block {
    kart_thread *t;
    _Atomic uint32_t ready;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static kart_thread reg_head = {.prev = &reg_head, .next = &reg_head};
static int reg_count;
static kart_thread *main_thread; /* guarded by reg_lock */
static _Atomic uint64_t next_ident = 1;

static _Thread_local kart_thread *self;
static pthread_once_t adopt_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t adopt_key;

/* Not kart__tid(): this file's fork child handler (constructor 101) runs
 * before futex.c's forgets the cached id, and must see the new one. */
static pid_t gettid_now(void)
{
    return (pid_t)kart__tid_slow();
}

static void registry_add(kart_thread *t)
{
    pthread_mutex_lock(&reg_lock);
    t->next = &reg_head;
    t->prev = reg_head.prev;
    reg_head.prev->next = t;
    reg_head.prev = t;
    t->registered = true;
    reg_count++;
    pthread_mutex_unlock(&reg_lock);
}

static void unlink_locked(kart_thread *t)
{
    if (!t->registered)
        return;
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->registered = false;
    reg_count--;
}

static void registry_remove(kart_thread *t)
{
    pthread_mutex_lock(&reg_lock);
    unlink_locked(t);
    pthread_mutex_unlock(&reg_lock);
}

static void snapshot(const kart_thread *t, kart_thread_info *info)
{
    info->ident = t->ident;
    info->native_id = atomic_load_explicit(&t->native_id, memory_order_relaxed);
    memcpy(info->name, t->name, sizeof(info->name));
    info->daemon = t->detached;
}

static void report_failure(const kart_thread *t, int result)
{
    kart_thread_info info;
    pthread_mutex_lock(&reg_lock); /* the name may change */
    snapshot(t, &info);
    pthread_mutex_unlock(&reg_lock);
    kart__thread_report_failure(&info, result);
}

static void *trampoline(void *p)
{
    struct start_block *b = p;
    kart_thread *t = b->t;
    atomic_store_explicit(&t->native_id, gettid_now(), memory_order_relaxed);
    self = t;
    pthread_setname_np(pthread_self(), t->name);
    registry_add(t);
    /* From here on b may vanish: the creator returns as soon as it sees
     * ready. A wake on a dead stack address only costs a spurious wake. */
    KART__TSAN_RELEASE(&b->ready);
    atomic_store_explicit(&b->ready, 1, memory_order_release);
    kart__futex_wake(&b->ready, 1, false);

    kart__thread_run_hook(t, KART_THREAD_STARTED);
    int result = t->fn(t->arg);
    atomic_store_explicit(&t->alive, 0, memory_order_release);
    if (result != 0)
        report_failure(t, result);
    kart__thread_run_hook(t, KART_THREAD_ENDED);
    registry_remove(t);
    if (t->detached) {
        self = NULL;
        free(t);
        return NULL;
    }
    /* The joiner frees t only after pthread_join(), so t outlives this. */
    t->result = result;
    KART__TSAN_RELEASE(&t->done);
    atomic_store_explicit(&t->done, 1, memory_order_release);
    kart__futex_wake(&t->done, INT32_MAX, false);
    return NULL;
}

/* True when cpus names at least one CPU this machine has. */
static bool cpus_exist(const cpu_set_t *cpus)
{
    long n = sysconf(_SC_NPROCESSORS_CONF);
    if (n <= 0 || n > CPU_SETSIZE)
        n = CPU_SETSIZE;
    for (long i = 0; i < n; i++)
        if (CPU_ISSET((size_t)i, cpus))
            return true;
    return false;
}

KART_API int kart_thread_start(kart_thread **out, kart_thread_fn fn, void *arg,
                               const kart_thread_options *opts)
{
    static const kart_thread_options defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!fn || (!out && !opts->detached))
        return -EINVAL;
    if (opts->stack_size && opts->stack_size < (size_t)PTHREAD_STACK_MIN)
        return -EINVAL;
    /* The CPUs to run on: the caller's set, the NUMA node's, or both. */
    cpu_set_t node_cpus;
    const cpu_set_t *cpus = opts->cpus;
    if (opts->numa_bind) {
        if (kart_numa_node_cpus(opts->numa_node, &node_cpus) < 0)
            return -EINVAL;
        if (cpus)
            CPU_AND(&node_cpus, &node_cpus, cpus);
        cpus = &node_cpus;
    }
    if (cpus && (CPU_COUNT(cpus) == 0 || !cpus_exist(cpus)))
        return -EINVAL;

    kart_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->fn = fn;
    t->arg = arg;
    t->detached = opts->detached;
    t->ident = atomic_fetch_add_explicit(&next_ident, 1, memory_order_relaxed);
    if (opts->name)
        snprintf(t->name, sizeof(t->name), "%s", opts->name);
    else
        snprintf(t->name, sizeof(t->name), "kart-%llu", (unsigned long long)t->ident);
    atomic_store_explicit(&t->alive, 1, memory_order_relaxed);

    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err) {
        free(t);
        return -err;
    }
    size_t stack = opts->stack_size ? opts->stack_size : kart__thread_default_stack();
    if (stack)
        err = pthread_attr_setstacksize(&attr, stack);
    if (!err && cpus)
        err = pthread_attr_setaffinity_np(&attr, sizeof(cpu_set_t), cpus);
    if (!err && opts->detached)
        err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    struct start_block b = {.t = t};
    if (!err)
        err = kart__sys_pthread_create(&t->pthread, &attr, trampoline, &b);
    pthread_attr_destroy(&attr);
    if (err) {
        free(t);
        return -err;
    }
    /* Wait until the thread is registered; it is a few microseconds. */
    for (int spin = 0; !atomic_load_explicit(&b.ready, memory_order_acquire); spin++) {
        if (spin < KART__SPIN)
            kart__cpu_relax();
        else
            kart__futex_wait(&b.ready, 0, -1, false);
    }
    KART__TSAN_ACQUIRE(&b.ready);
    if (out)
        *out = t;
    return 0;
}

KART_API int kart_thread_join(kart_thread *t, int64_t timeout_ns, int *result)
{
    if (!t || t->detached || t->adopted || t->orphan)
        return -EINVAL;
    if (t == self)
        return -EDEADLK;
    uint32_t idle = 0;
    if (!atomic_compare_exchange_strong(&t->joining, &idle, 1))
        return -EBUSY;
    int64_t deadline = kart__deadline(timeout_ns);
    while (!atomic_load_explicit(&t->done, memory_order_acquire)) {
        if (timeout_ns == 0 || kart__futex_wait(&t->done, 0, deadline, false) == -ETIMEDOUT) {
            if (atomic_load_explicit(&t->done, memory_order_acquire))
                break;
            atomic_store(&t->joining, 0);
            return -ETIMEDOUT;
        }
    }
    KART__TSAN_ACQUIRE(&t->done);
    pthread_join(t->pthread, NULL);
    if (result)
        *result = t->result;
    free(t);
    return 0;
}

KART_API int kart_thread_is_alive(const kart_thread *t)
{
    return t && atomic_load_explicit(&((kart_thread *)t)->alive, memory_order_acquire);
}

KART_API uint64_t kart_thread_ident(const kart_thread *t)
{
    return t ? t->ident : 0;
}

KART_API pid_t kart_thread_native_id(const kart_thread *t)
{
    return t ? atomic_load_explicit(&((kart_thread *)t)->native_id, memory_order_relaxed) : 0;
}

KART_API int kart_thread_name(const kart_thread *t, char *buf, size_t size)
{
    if (!t || !buf)
        return -EINVAL;
    pthread_mutex_lock(&reg_lock);
    size_t len = strlen(t->name);
    if (len < size)
        memcpy(buf, t->name, len + 1);
    pthread_mutex_unlock(&reg_lock);
    return len < size ? (int)len : -ENOBUFS;
}

/* Sets a live thread's kernel name (what top and /proc show): its own
 * through pthread, another's through /proc, as glibc does. */
static int set_comm(pid_t tid, const char *name)
{
    if (tid == gettid_now())
        return -pthread_setname_np(pthread_self(), name);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    int err = fputs(name, f) < 0 ? -EIO : 0;
    if (fclose(f) != 0 && !err)
        err = -errno;
    return err;
}

KART_API int kart_thread_set_name(kart_thread *t, const char *name)
{
    if (!t || !name)
        return -EINVAL;
    char copy[KART_THREAD_NAME_MAX];
    snprintf(copy, sizeof(copy), "%s", name);
    /* Under reg_lock a registered thread cannot leave, so its kernel id
     * names it still; the kernel's name is set first, so that a failure
     * changes nothing. */
    pthread_mutex_lock(&reg_lock);
    int err = 0;
    if (t->registered)
        err = set_comm(atomic_load_explicit(&t->native_id, memory_order_relaxed), copy);
    if (!err)
        memcpy(t->name, copy, sizeof(copy));
    pthread_mutex_unlock(&reg_lock);
    return err;
}

/* ---- adoption ---- */

/* Runs when an adopted thread ends: it leaves the registry. The main
 * thread's record stays allocated, since kart_thread_main() hands it out. */
static void adopted_exit(void *p)
{
    kart_thread *t = p;
    pthread_mutex_lock(&reg_lock);
    unlink_locked(t);
    atomic_store_explicit(&t->alive, 0, memory_order_release);
    bool keep = t == main_thread;
    pthread_mutex_unlock(&reg_lock);
    self = NULL;
    if (!keep)
        free(t);
}

static void make_adopt_key(void)
{
    pthread_key_create(&adopt_key, adopted_exit);
}

static kart_thread *new_adopted(pid_t tid)
{
    kart_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->adopted = true;
    t->ident = atomic_fetch_add_explicit(&next_ident, 1, memory_order_relaxed);
    atomic_store_explicit(&t->native_id, tid, memory_order_relaxed);
    atomic_store_explicit(&t->alive, 1, memory_order_relaxed);
    return t;
}

/* Reads a thread's name from /proc when the caller is another thread. */
static void read_comm(pid_t tid, char name[KART_THREAD_NAME_MAX])
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
    FILE *f = fopen(path, "re");
    name[0] = '\0';
    if (f) {
        if (fgets(name, KART_THREAD_NAME_MAX, f))
            name[strcspn(name, "\n")] = '\0';
        fclose(f);
    }
}

/* The main thread's record, created on first use by whichever thread asks.
 * Called with reg_lock held. */
static kart_thread *main_locked(void)
{
    if (!main_thread) {
        main_thread = new_adopted(getpid());
        if (!main_thread)
            return NULL;
        read_comm(getpid(), main_thread->name);
        main_thread->next = &reg_head;
        main_thread->prev = reg_head.prev;
        reg_head.prev->next = main_thread;
        reg_head.prev = main_thread;
        main_thread->registered = true;
        reg_count++;
    }
    return main_thread;
}

KART_API kart_thread *kart_thread_current(void)
{
    if (self)
        return self;
    pthread_once(&adopt_key_once, make_adopt_key);
    pid_t tid = gettid_now();
    kart_thread *t;
    if (tid == getpid()) {
        pthread_mutex_lock(&reg_lock);
        t = main_locked();
        pthread_mutex_unlock(&reg_lock);
        if (!t)
            return NULL;
    } else {
        t = new_adopted(tid);
        if (!t)
            return NULL;
        pthread_getname_np(pthread_self(), t->name, sizeof(t->name));
        registry_add(t);
    }
    if (pthread_setspecific(adopt_key, t) != 0) {
        if (t != main_thread) {
            registry_remove(t);
            free(t);
        }
        return NULL;
    }
    self = t;
    return t;
}

KART_API kart_thread *kart_thread_main(void)
{
    if (gettid_now() == getpid())
        return kart_thread_current();
    pthread_mutex_lock(&reg_lock);
    kart_thread *t = main_locked();
    pthread_mutex_unlock(&reg_lock);
    return t;
}

/* ---- the registry seen from outside ---- */

KART_API size_t kart_thread_count(void)
{
    pthread_mutex_lock(&reg_lock);
    size_t n = (size_t)reg_count;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

KART_API int kart_thread_list(kart_thread_info *out, size_t max)
{
    if (!out && max > 0)
        return -EINVAL;
    pthread_mutex_lock(&reg_lock);
    size_t i = 0;
    for (kart_thread *t = reg_head.next; t != &reg_head && i < max; t = t->next)
        snapshot(t, &out[i++]);
    int n = reg_count;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

/* ---- fork ---- */

static void before_fork(void)
{
    pthread_mutex_lock(&reg_lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&reg_lock);
}

/* The child has one thread, the one that forked, and it is the child's
 * main thread. The others' records become orphans: not alive, not listed,
 * not joinable (their pthread_join would wait forever). */
static void after_fork_child(void)
{
    kart_thread *t = reg_head.next;
    while (t != &reg_head) {
        kart_thread *next = t->next;
        if (t != self) {
            unlink_locked(t);
            t->orphan = true;
            atomic_store_explicit(&t->alive, 0, memory_order_relaxed);
        }
        t = next;
    }
    main_thread = self;
    if (self)
        atomic_store_explicit(&self->native_id, gettid_now(), memory_order_relaxed);
    /* The forking thread took it in before_fork, so it owns it here. */
    pthread_mutex_unlock(&reg_lock);
}

/* Priority 101, before core/alarm.c's 102: fork handlers that prepare run
 * in reverse order, so the alarm's locks are taken before the registry's
 * (a thread holding the alarm's start lock waits for a new thread that
 * needs the registry). */
__attribute__((constructor(101))) static void register_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* Description: kart/thread.h — threads (start options, join with timeout,
 * identity, adoption, the registry under churn, the excepthook),
 * thread-local storage, run-once, and alarms on the shared timer thread,
 * including in a fork child. */
#include "testutil.h"
#include "kt_threads.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* ---- helpers ---- */

#ifdef KT_TSAN
/* The fork case starts a timer thread in the child of a threaded parent,
 * which ThreadSanitizer refuses by default; kart supports it. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}
#endif

/* A gate threads wait at until the test opens it. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int waiting;
} gate;

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
    g->waiting = 0;
}

static void gate_wait(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

/* Waits until n threads are at the gate. */
static void gate_await(gate *g, int n)
{
    pthread_mutex_lock(&g->mu);
    while (g->waiting < n)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static pid_t my_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int task_count(void)
{
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static int wait_at_gate(void *arg)
{
    gate_wait(arg);
    return 0;
}

/* ---- start and join ---- */

static void quiet_hook(const kart_thread_failure *f, void *arg)
{
    (void)f;
    (void)arg;
}

START_TEST(start_join_returns_function_result)
{
    kart_thread_set_excepthook(quiet_hook, NULL, NULL, NULL);
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, return_arg, (void *)(intptr_t)42, NULL), 0);
    int result = -1;
    ck_assert_int_eq(kart_thread_join(t, -1, &result), 0);
    ck_assert_int_eq(result, 42);
    ck_assert_int_eq(kart_thread_start(&t, return_arg, (void *)0, NULL), 0);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
}
END_TEST

START_TEST(start_rejects_bad_arguments)
{
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_thread_start(NULL, return_arg, NULL, NULL), -EINVAL);
    kart_thread_options small = {.stack_size = PTHREAD_STACK_MIN - 1};
    ck_assert_int_eq(kart_thread_start(&t, return_arg, NULL, &small), -EINVAL);
    cpu_set_t none;
    CPU_ZERO(&none);
    kart_thread_options empty = {.cpus = &none};
    ck_assert_int_eq(kart_thread_start(&t, return_arg, NULL, &empty), -EINVAL);
    cpu_set_t far;
    CPU_ZERO(&far);
    CPU_SET(CPU_SETSIZE - 1, &far);
    ck_assert_int_lt(sysconf(_SC_NPROCESSORS_CONF), CPU_SETSIZE);
    kart_thread_options missing = {.cpus = &far};
    ck_assert_int_eq(kart_thread_start(&t, return_arg, NULL, &missing), -EINVAL);
    ck_assert_int_eq(kart_thread_count(), 0);
}
END_TEST

START_TEST(start_reports_no_room_for_a_stack)
{
    /* No machine here maps a 64 TiB stack: pthread_create says EAGAIN. */
    kart_thread *t;
    kart_thread_options huge = {.stack_size = (size_t)1 << 46};
    ck_assert_int_eq(kart_thread_start(&t, return_arg, NULL, &huge), -EAGAIN);
    ck_assert_int_eq(kart_thread_count(), 0);
}
END_TEST

START_TEST(join_timeout_leaves_thread_joinable)
{
    gate g;
    gate_init(&g);
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, wait_at_gate, &g, NULL), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_thread_join(t, 30 * KT_MS, NULL), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 30 * KT_MS);
    ck_assert_int_eq(kart_thread_join(t, 0, NULL), -ETIMEDOUT);
    ck_assert_int_eq(kart_thread_is_alive(t), 1);
    gate_open(&g);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
}
END_TEST

static int join_self(void *arg)
{
    *(int *)arg = kart_thread_join(kart_thread_current(), -1, NULL);
    return 0;
}

static void *join_forever(void *arg)
{
    kart_thread *t = arg;
    int r;
    /* The test's probes hold the join for an instant; retry past them. */
    while ((r = kart_thread_join(t, -1, NULL)) == -EBUSY)
        sched_yield();
    return (void *)(intptr_t)r;
}

/* A detached thread's kernel id, so that the test can wait for its end. */
static _Atomic pid_t detached_tid;

static int note_tid_and_wait_at_gate(void *arg)
{
    atomic_store(&detached_tid, my_tid());
    gate_wait(arg);
    return 0;
}

START_TEST(join_reports_each_error)
{
    ck_assert_int_eq(kart_thread_join(NULL, -1, NULL), -EINVAL);
    /* Adopted: the test's own thread. */
    ck_assert_int_eq(kart_thread_join(kart_thread_current(), 0, NULL), -EINVAL);

    /* Static, and the detached thread waited for at the end: it must not
     * be left using this frame, or running while the test's process
     * exits (AddressSanitizer's exit checks failed the test once in 10
     * ASan runs, after its last assertion had passed). */
    static gate g;
    gate_init(&g);
    kart_thread *d;
    kart_thread_options detached = {.detached = true};
    atomic_store(&detached_tid, 0);
    ck_assert_int_eq(kart_thread_start(&d, note_tid_and_wait_at_gate, &g, &detached), 0);
    ck_assert_int_eq(kart_thread_join(d, 0, NULL), -EINVAL);

    int self_err = 0;
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, join_self, &self_err, NULL), 0);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    ck_assert_int_eq(self_err, -EDEADLK);

    ck_assert_int_eq(kart_thread_start(&t, wait_at_gate, &g, NULL), 0);
    pthread_t joiner;
    ck_assert_int_eq(pthread_create(&joiner, NULL, join_forever, t), 0);
    int r;
    while ((r = kart_thread_join(t, 0, NULL)) == -ETIMEDOUT)
        sched_yield();
    ck_assert_int_eq(r, -EBUSY);
    gate_open(&g);
    void *joined;
    pthread_join(joiner, &joined);
    ck_assert_int_eq((int)(intptr_t)joined, 0);
    /* The detached thread is gone once its kernel task is. */
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (atomic_load(&detached_tid) == 0 && kart_now_ns() < end)
        sleep_ms(1);
    pid_t dt = atomic_load(&detached_tid);
    ck_assert_int_gt(dt, 0);
    while (syscall(SYS_tgkill, getpid(), dt, 0) == 0 && kart_now_ns() < end)
        sleep_ms(1);
    ck_assert_msg(syscall(SYS_tgkill, getpid(), dt, 0) != 0, "the detached thread never ended");
}
END_TEST

/* ---- options ---- */

struct seen {
    pid_t tid;
    char comm[32];
    size_t stack;
    int cpu;
    int ncpus;
    bool on_cpu;
    kart_thread *current;
    kart_thread *main;
    int alive;
};

static int record(void *arg)
{
    struct seen *s = arg;
    s->tid = my_tid();
    kt_thread_comm(s->tid, s->comm, sizeof(s->comm));
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstacksize(&attr, &s->stack);
        pthread_attr_destroy(&attr);
    }
    s->cpu = sched_getcpu();
    cpu_set_t set;
    if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set) == 0) {
        s->ncpus = CPU_COUNT(&set);
        s->on_cpu = s->cpu >= 0 && CPU_ISSET((size_t)s->cpu, &set);
    }
    s->current = kart_thread_current();
    s->main = kart_thread_main();
    s->alive = kart_thread_is_alive(s->current);
    return 0;
}

START_TEST(name_reaches_proc_truncated)
{
    struct seen s = {0};
    kart_thread *t;
    kart_thread_options o = {.name = "a-very-long-thread-name"};
    ck_assert_int_eq(kart_thread_start(&t, record, &s, &o), 0);
    char name[KART_THREAD_NAME_MAX];
    ck_assert_int_eq(kart_thread_name(t, name, sizeof(name)), 15);
    ck_assert_str_eq(name, "a-very-long-thr");
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    ck_assert_str_eq(s.comm, "a-very-long-thr");

    struct seen u = {0};
    ck_assert_int_eq(kart_thread_start(&t, record, &u, NULL), 0);
    char want[32];
    snprintf(want, sizeof(want), "kart-%llu", (unsigned long long)kart_thread_ident(t));
    ck_assert_int_eq(kart_thread_name(t, name, sizeof(name)), (int)strlen(want));
    ck_assert_str_eq(name, want);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    ck_assert_str_eq(u.comm, want);
}
END_TEST

START_TEST(stack_size_is_honoured)
{
    struct seen s = {0};
    kart_thread *t;
    kart_thread_options o = {.stack_size = 3u << 20};
    ck_assert_int_eq(kart_thread_start(&t, record, &s, &o), 0);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    ck_assert_uint_ge(s.stack, 3u << 20);
    ck_assert_uint_lt(s.stack, 4u << 20);
}
END_TEST

START_TEST(affinity_to_one_cpu_is_honoured)
{
    cpu_set_t mine;
    ck_assert_int_eq(sched_getaffinity(0, sizeof(mine), &mine), 0);
    int cpu = -1;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &mine))
            cpu = i; /* the last allowed one, so not simply CPU 0 */
    ck_assert_int_ge(cpu, 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    struct seen s = {0};
    kart_thread *t;
    kart_thread_options o = {.cpus = &one};
    ck_assert_int_eq(kart_thread_start(&t, record, &s, &o), 0);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    ck_assert_int_eq(s.ncpus, 1);
    ck_assert_int_eq(s.cpu, cpu);
    ck_assert(s.on_cpu);
}
END_TEST

START_TEST(numa_node_binding_is_honoured)
{
    cpu_set_t node0;
    ck_assert_int_eq(kart_numa_node_cpus(0, &node0), 0);
    struct seen s = {0};
    kart_thread *t;
    kart_thread_options o = {.numa_bind = true, .numa_node = 0};
    ck_assert_int_eq(kart_thread_start(&t, record, &s, &o), 0);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    ck_assert(s.on_cpu);
    ck_assert(CPU_ISSET((size_t)s.cpu, &node0));
    /* With a CPU set too: only the CPUs in both. */
    int last = -1;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &node0))
            last = i;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    struct seen u = {0};
    o.cpus = &one;
    ck_assert_int_eq(kart_thread_start(&t, record, &u, &o), 0);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    ck_assert_int_eq(u.ncpus, 1);
    ck_assert_int_eq(u.cpu, last);
}
END_TEST

START_TEST(numa_node_binding_errors)
{
    kart_thread *t;
    struct seen s = {0};
    kart_thread_options o = {.numa_bind = true, .numa_node = 100000};
    ck_assert_int_eq(kart_thread_start(&t, record, &s, &o), -EINVAL);
    o.numa_node = -1;
    ck_assert_int_eq(kart_thread_start(&t, record, &s, &o), -EINVAL);
    /* A CPU set that misses every CPU of the node. */
    cpu_set_t node0, none;
    ck_assert_int_eq(kart_numa_node_cpus(0, &node0), 0);
    CPU_ZERO(&none);
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (!CPU_ISSET(i, &node0)) {
            CPU_SET(i, &none);
            break;
        }
    o.numa_node = 0;
    o.cpus = &none;
    ck_assert_int_eq(kart_thread_start(&t, record, &s, &o), -EINVAL);
}
END_TEST

START_TEST(detached_thread_leaves_the_count)
{
    int c0 = (int)kart_thread_count();
    gate g;
    gate_init(&g);
    kart_thread_options o = {.detached = true, .name = "daemon"};
    ck_assert_int_eq(kart_thread_start(NULL, wait_at_gate, &g, &o), 0);
    ck_assert_int_eq(kart_thread_count(), c0 + 1);
    kart_thread_info info[8];
    ck_assert_int_eq(kart_thread_list(info, 8), c0 + 1);
    bool found = false;
    for (int i = 0; i < c0 + 1; i++)
        if (strcmp(info[i].name, "daemon") == 0)
            found = info[i].daemon;
    ck_assert(found);
    gate_open(&g);
    while ((int)kart_thread_count() != c0)
        sleep_ms(1);
}
END_TEST

/* ---- identity ---- */

START_TEST(identity_is_distinct_and_native)
{
    struct seen a = {0}, b = {0};
    kart_thread *ta, *tb;
    ck_assert_int_eq(kart_thread_start(&ta, record, &a, NULL), 0);
    ck_assert_int_eq(kart_thread_start(&tb, record, &b, NULL), 0);
    ck_assert_uint_ne(kart_thread_ident(ta), 0);
    ck_assert_uint_ne(kart_thread_ident(ta), kart_thread_ident(tb));
    /* Published before start returned. */
    pid_t na = kart_thread_native_id(ta), nb = kart_thread_native_id(tb);
    ck_assert_int_ne(na, nb);
    while (kart_thread_is_alive(ta) || kart_thread_is_alive(tb))
        sleep_ms(1);
    ck_assert_int_eq(kart_thread_join(ta, -1, NULL), 0);
    ck_assert_int_eq(kart_thread_join(tb, -1, NULL), 0);
    ck_assert_int_eq(na, a.tid);
    ck_assert_int_eq(nb, b.tid);
    ck_assert_ptr_eq(a.current, ta);
    ck_assert_ptr_eq(b.current, tb);
    ck_assert_int_eq(a.alive, 1);
    ck_assert_int_eq(kart_thread_is_alive(NULL), 0);
    ck_assert_uint_eq(kart_thread_ident(NULL), 0);
}
END_TEST

START_TEST(main_from_another_thread_is_the_main_thread)
{
    /* Check runs each test in a forked child whose one thread is main. */
    ck_assert_int_eq(my_tid(), getpid());
    struct seen s = {0};
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, record, &s, NULL), 0);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    ck_assert_ptr_nonnull(s.main);
    ck_assert_int_eq(kart_thread_native_id(s.main), getpid());
    ck_assert_int_eq(kart_thread_is_alive(s.main), 1);
    /* Adopted from elsewhere first; the main thread itself agrees. */
    ck_assert_ptr_eq(kart_thread_current(), s.main);
    ck_assert_ptr_eq(kart_thread_main(), s.main);
    ck_assert_int_eq(kart_thread_count(), 1);
}
END_TEST

static void *adopt_me(void *arg)
{
    pthread_setname_np(pthread_self(), "foreign");
    struct seen *s = arg;
    s->current = kart_thread_current();
    s->tid = my_tid();
    s->alive = (int)kart_thread_count();
    return kart_thread_current() == s->current ? s : NULL;
}

START_TEST(foreign_thread_is_adopted_until_it_ends)
{
    int c0 = (int)kart_thread_count();
    struct seen s = {0};
    pthread_t p;
    ck_assert_int_eq(pthread_create(&p, NULL, adopt_me, &s), 0);
    void *ret;
    pthread_join(p, &ret);
    ck_assert_ptr_eq(ret, &s);
    ck_assert_int_eq(s.alive, c0 + 1);
    ck_assert_int_eq(kart_thread_count(), c0);
}
END_TEST

/* ---- the registry under churn ---- */

#define CHURNERS 8
static _Atomic bool churn_stop;

static int churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        kart_thread *t;
        if (kart_thread_start(&t, return_arg, NULL, NULL) != 0)
            return 1;
        if (kart_thread_join(t, -1, NULL) != 0)
            return 2;
    }
    return 0;
}

START_TEST(list_and_count_agree_while_threads_churn)
{
    kart_thread_current(); /* the main thread counts too */
    int base = (int)kart_thread_count();
    ck_assert_int_eq(base, 1);
    kart_thread *churners[CHURNERS];
    uint64_t ids[CHURNERS];
    for (int i = 0; i < CHURNERS; i++) {
        ck_assert_int_eq(kart_thread_start(&churners[i], churn, NULL, NULL), 0);
        ids[i] = kart_thread_ident(churners[i]);
    }
    /* Live at any instant: main, the 8 churners, and at most one child
     * each; so every figure lies in [base + 8, base + 16]. */
    int lo = base + CHURNERS, hi = base + 2 * CHURNERS;
    int64_t end = kart_now_ns() + 300 * KT_MS;
    int rounds = 0;
    while (kart_now_ns() < end || rounds < 50) {
        kart_thread_info info[64];
        int c1 = (int)kart_thread_count();
        int n = kart_thread_list(info, 64);
        int c2 = (int)kart_thread_count();
        ck_assert_int_ge(c1, lo);
        ck_assert_int_le(c1, hi);
        ck_assert_int_ge(n, lo);
        ck_assert_int_le(n, hi);
        ck_assert_int_ge(c2, lo);
        ck_assert_int_le(c2, hi);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                ck_assert_uint_ne(info[i].ident, info[j].ident);
        for (int k = 0; k < CHURNERS; k++) {
            bool found = false;
            for (int i = 0; i < n; i++)
                found |= info[i].ident == ids[k];
            ck_assert(found);
        }
        rounds++;
    }
    atomic_store(&churn_stop, true);
    for (int i = 0; i < CHURNERS; i++) {
        int r = -1;
        ck_assert_int_eq(kart_thread_join(churners[i], -1, &r), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(kart_thread_count(), base);
    ck_assert_int_eq(kart_thread_list(NULL, 0), base);
    ck_assert_int_eq(kart_thread_list(NULL, 1), -EINVAL);
    kart_thread_info one;
    ck_assert_int_eq(kart_thread_list(&one, 1), base);
    ck_assert_int_eq(one.native_id, getpid());
}
END_TEST

/* ---- the excepthook ---- */

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static int hook_calls;
static int hook_results[8];
static uint64_t hook_idents[8];

static void counting_hook(const kart_thread_failure *f, void *arg)
{
    pthread_mutex_lock(&hook_mu);
    if (hook_calls < 8) {
        hook_results[hook_calls] = f->result;
        hook_idents[hook_calls] = f->thread->ident;
    }
    hook_calls++;
    pthread_mutex_unlock(&hook_mu);
    ck_assert_ptr_eq(arg, &hook_calls);
    ck_assert_int_eq(f->thread->native_id, my_tid());
}

START_TEST(excepthook_hears_each_failure_once)
{
    kart_thread_excepthook dflt = quiet_hook;
    void *dflt_arg = &dflt;
    kart_thread_set_excepthook(counting_hook, &hook_calls, &dflt, &dflt_arg);
    ck_assert_ptr_null(dflt); /* the default is reported as NULL, NULL */
    ck_assert_ptr_null(dflt_arg);
    kart_thread *t[3];
    int want[3] = {7, 0, -5};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_thread_start(&t[i], return_arg, (void *)(intptr_t)want[i], NULL), 0);
    uint64_t id0 = kart_thread_ident(t[0]), id2 = kart_thread_ident(t[2]);
    for (int i = 0; i < 3; i++) {
        int r;
        ck_assert_int_eq(kart_thread_join(t[i], -1, &r), 0);
        ck_assert_int_eq(r, want[i]);
    }
    ck_assert_int_eq(hook_calls, 2);
    int i7 = hook_results[0] == 7 ? 0 : 1;
    ck_assert_int_eq(hook_results[i7], 7);
    ck_assert_uint_eq(hook_idents[i7], id0);
    ck_assert_int_eq(hook_results[1 - i7], -5);
    ck_assert_uint_eq(hook_idents[1 - i7], id2);
    kart_thread_excepthook old = NULL;
    void *old_arg = NULL;
    kart_thread_set_excepthook(NULL, NULL, &old, &old_arg);
    ck_assert_ptr_eq(old, counting_hook);
    ck_assert_ptr_eq(old_arg, &hook_calls);
    kart_thread_set_excepthook(NULL, NULL, &old, &old_arg);
    ck_assert_ptr_null(old);
    ck_assert_ptr_null(old_arg);
}
END_TEST

START_TEST(default_excepthook_prints_one_line)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    int saved = dup(2);
    dup2(p[1], 2);
    kart_thread *t;
    kart_thread_options o = {.name = "failer"};
    ck_assert_int_eq(kart_thread_start(&t, return_arg, (void *)(intptr_t)3, &o), 0);
    uint64_t id = kart_thread_ident(t);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    dup2(saved, 2);
    close(p[1]);
    char buf[256] = "", want[256];
    ck_assert_int_gt(read(p[0], buf, sizeof(buf) - 1), 0);
    snprintf(want, sizeof(want), "kart: thread failer (ident %llu) failed with 3\n",
             (unsigned long long)id);
    ck_assert_str_eq(buf, want);
}
END_TEST

/* ---- thread-local storage ---- */

static kart_tls slot;
static pthread_mutex_t tls_mu = PTHREAD_MUTEX_INITIALIZER;
static intptr_t destroyed_sum;
static int destroyed_n;

static void tls_destructor(void *v)
{
    pthread_mutex_lock(&tls_mu);
    destroyed_sum += (intptr_t)v;
    destroyed_n++;
    pthread_mutex_unlock(&tls_mu);
}

static int set_slot(void *arg)
{
    if (kart_tls_get(&slot) != NULL)
        return 1;
    if (kart_tls_set(&slot, arg) != 0)
        return 2;
    return kart_tls_get(&slot) == arg ? 0 : 3;
}

START_TEST(tls_destructors_run_with_each_value)
{
    ck_assert_int_eq(kart_tls_init(&slot, tls_destructor), 0);
    kart_thread *t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(kart_thread_start(&t[i], set_slot, (void *)(intptr_t)(1 << i), NULL), 0);
    for (int i = 0; i < 4; i++) {
        int r;
        ck_assert_int_eq(kart_thread_join(t[i], -1, &r), 0);
        ck_assert_int_eq(r, 0);
    }
    pthread_mutex_lock(&tls_mu);
    ck_assert_int_eq(destroyed_n, 4);
    ck_assert_int_eq(destroyed_sum, 15);
    pthread_mutex_unlock(&tls_mu);
    ck_assert_ptr_null(kart_tls_get(&slot));
    kart_tls_destroy(&slot);
}
END_TEST

START_TEST(tls_reports_each_error)
{
    kart_tls tls;
    ck_assert_int_eq(kart_tls_init(NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_tls_init(&tls, NULL), 0);
    int x;
    ck_assert_int_eq(kart_tls_set(&tls, &x), 0);
    ck_assert_ptr_eq(kart_tls_get(&tls), &x);
    kart_tls_destroy(&tls);
    kart_tls_destroy(&tls); /* twice: nothing more to release */
    kart_tls_destroy(NULL);
    ck_assert_int_eq(kart_tls_set(&tls, &x), -EINVAL);
    ck_assert_int_eq(kart_tls_set(NULL, &x), -EINVAL);
    ck_assert_ptr_null(kart_tls_get(&tls));
    ck_assert_ptr_null(kart_tls_get(NULL));
}
END_TEST

/* ---- run-once ---- */

static kart_once once = KART_ONCE_INIT;
static _Atomic int once_runs;
static _Atomic bool once_finished;

static void slow_init(void *arg)
{
    (void)arg;
    atomic_fetch_add(&once_runs, 1);
    sleep_ms(50);
    atomic_store(&once_finished, true);
}

static int call_once(void *arg)
{
    gate_wait(arg);
    if (kart_once_run(&once, slow_init, NULL) != 0)
        return 1;
    return atomic_load(&once_finished) ? 0 : 2;
}

START_TEST(once_runs_once_for_16_concurrent_callers)
{
    gate g;
    gate_init(&g);
    kart_thread *t[16];
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(kart_thread_start(&t[i], call_once, &g, NULL), 0);
    gate_await(&g, 16);
    gate_open(&g);
    for (int i = 0; i < 16; i++) {
        int r;
        ck_assert_int_eq(kart_thread_join(t[i], -1, &r), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(once_runs, 1);
    ck_assert_int_eq(kart_once_run(&once, slow_init, NULL), 0);
    ck_assert_int_eq(once_runs, 1);
}
END_TEST

static kart_once reentered = KART_ONCE_INIT;
static int inner_result = 1;

static void noop(void *arg)
{
    (void)arg;
}

static void reenter(void *arg)
{
    (void)arg;
    inner_result = kart_once_run(&reentered, noop, NULL);
}

START_TEST(once_reports_each_error)
{
    kart_once o = KART_ONCE_INIT;
    ck_assert_int_eq(kart_once_run(NULL, noop, NULL), -EINVAL);
    ck_assert_int_eq(kart_once_run(&o, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_once_run(&reentered, reenter, NULL), 0);
    ck_assert_int_eq(inner_result, -EDEADLK);
    ck_assert_int_eq(kart_once_run(&reentered, reenter, NULL), 0);
}
END_TEST

/* ---- alarms ---- */

static void stamp(void *arg)
{
    atomic_store((_Atomic int64_t *)arg, kart_now_ns());
}

START_TEST(alarm_fires_after_its_delay)
{
    kart_alarm a = KART_ALARM_INIT;
    _Atomic int64_t fired = 0;
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_alarm_start(&a, 50 * KT_MS, stamp, &fired), 0);
    ck_assert_int_eq(kart_alarm_join(&a, -1), 0);
    ck_assert_int_ge(fired - t0, 50 * KT_MS);
    /* Done alarms start again. */
    fired = 0;
    ck_assert_int_eq(kart_alarm_start(&a, 0, stamp, &fired), 0);
    ck_assert_int_eq(kart_alarm_join(&a, 10000 * KT_MS), 0);
    ck_assert_int_ne(fired, 0);
}
END_TEST

#define NALARMS 10000
static kart_alarm many[NALARMS];
static int fired_order[NALARMS];
static int nfired; /* written only on the timer thread */
static int late;   /* alarms that fired before their deadline */

static void note(void *arg)
{
    kart_alarm *a = arg;
    /* White-box: deadline_ is the alarm's absolute deadline. */
    if (kart_now_ns() < a->deadline_)
        late++;
    if (nfired < NALARMS)
        fired_order[nfired] = (int)(a - many);
    nfired++;
}

START_TEST(ten_thousand_alarms_fire_once_in_order_on_one_thread)
{
    ck_assert_int_eq(kart_alarm_start(&many[0], 100 * KT_MS, note, &many[0]), 0);
    /* The timer thread now runs; nothing else may start one. */
    int tasks = task_count();
    for (int i = 1; i < NALARMS; i++) {
        /* A scrambled spread of delays over 0..200 ms. */
        int64_t delay = (int64_t)((i * 7919) % NALARMS) * 20000;
        ck_assert_int_eq(kart_alarm_start(&many[i], delay, note, &many[i]), 0);
    }
    ck_assert_int_le(task_count(), tasks);
    ck_assert_int_eq(kart_thread_count(), 1);
    for (int i = 0; i < NALARMS; i++)
        ck_assert_int_eq(kart_alarm_join(&many[i], -1), 0);
    ck_assert_int_eq(nfired, NALARMS);
    ck_assert_int_eq(late, 0);
    static bool seen[NALARMS];
    for (int k = 0; k < NALARMS; k++) {
        int i = fired_order[k];
        ck_assert(!seen[i]);
        seen[i] = true;
        if (k > 0) {
            const kart_alarm *p = &many[fired_order[k - 1]], *a = &many[i];
            ck_assert(p->deadline_ < a->deadline_ ||
                      (p->deadline_ == a->deadline_ && p->seq_ < a->seq_));
        }
    }
}
END_TEST

static char order_log[8];
static int order_len;

static void log_char(void *arg)
{
    order_log[order_len++] = *(const char *)arg;
}

START_TEST(alarms_fire_in_deadline_order)
{
    kart_alarm a[3] = {KART_ALARM_INIT, KART_ALARM_INIT, KART_ALARM_INIT};
    ck_assert_int_eq(kart_alarm_start(&a[0], 300 * KT_MS, log_char, "c"), 0);
    ck_assert_int_eq(kart_alarm_start(&a[1], 100 * KT_MS, log_char, "a"), 0);
    ck_assert_int_eq(kart_alarm_start(&a[2], 200 * KT_MS, log_char, "b"), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_alarm_join(&a[i], -1), 0);
    ck_assert_str_eq(order_log, "abc");
}
END_TEST

static void count_call(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

START_TEST(alarm_cancelled_in_time_never_runs)
{
    kart_alarm a = KART_ALARM_INIT, b = KART_ALARM_INIT;
    _Atomic int calls = 0, other = 0;
    /* A second is ample margin for the cancel to come in time. */
    ck_assert_int_eq(kart_alarm_start(&a, 1000 * KT_MS, count_call, &calls), 0);
    ck_assert_int_eq(kart_alarm_cancel(&a), 0);
    ck_assert_int_eq(kart_alarm_cancel(&a), 0);
    ck_assert_int_eq(kart_alarm_join(&a, 0), 0);
    /* Let its deadline pass, with a later alarm as the witness. */
    ck_assert_int_eq(kart_alarm_start(&b, 1100 * KT_MS, count_call, &other), 0);
    ck_assert_int_eq(kart_alarm_join(&b, -1), 0);
    ck_assert_int_eq(other, 1);
    ck_assert_int_eq(calls, 0);
}
END_TEST

static void block_at_gate(void *arg)
{
    gate_wait(arg);
}

START_TEST(alarm_cancel_after_it_ran_is_too_late)
{
    kart_alarm a = KART_ALARM_INIT;
    _Atomic int calls = 0;
    ck_assert_int_eq(kart_alarm_start(&a, 0, count_call, &calls), 0);
    ck_assert_int_eq(kart_alarm_join(&a, -1), 0);
    ck_assert_int_eq(kart_alarm_cancel(&a), -EALREADY);
    ck_assert_int_eq(calls, 1);

    /* While running: too late as well, and it cannot start again yet. */
    gate g;
    gate_init(&g);
    ck_assert_int_eq(kart_alarm_start(&a, 0, block_at_gate, &g), 0);
    gate_await(&g, 1);
    ck_assert_int_eq(kart_alarm_cancel(&a), -EALREADY);
    ck_assert_int_eq(kart_alarm_start(&a, 0, count_call, &calls), -EBUSY);
    ck_assert_int_eq(kart_alarm_join(&a, 20 * KT_MS), -ETIMEDOUT);
    gate_open(&g);
    ck_assert_int_eq(kart_alarm_join(&a, -1), 0);
}
END_TEST

struct deadlock_probe {
    kart_alarm *self;
    kart_alarm *other;
    int on_self, on_other;
};

static void join_from_timer(void *arg)
{
    struct deadlock_probe *p = arg;
    p->on_self = kart_alarm_join(p->self, -1);
    p->on_other = kart_alarm_join(p->other, -1);
}

START_TEST(alarm_reports_each_error)
{
    kart_alarm a = KART_ALARM_INIT, b = KART_ALARM_INIT;
    _Atomic int calls = 0;
    ck_assert_int_eq(kart_alarm_start(NULL, 0, count_call, &calls), -EINVAL);
    ck_assert_int_eq(kart_alarm_start(&a, 0, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_alarm_start(&a, -1, count_call, &calls), -EINVAL);
    ck_assert_int_eq(kart_alarm_cancel(NULL), -EINVAL);
    ck_assert_int_eq(kart_alarm_cancel(&a), -EINVAL);
    ck_assert_int_eq(kart_alarm_join(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_alarm_join(&a, 0), -EINVAL);

    ck_assert_int_eq(kart_alarm_start(&a, 10000 * KT_MS, count_call, &calls), 0);
    ck_assert_int_eq(kart_alarm_start(&a, 0, count_call, &calls), -EBUSY);
    ck_assert_int_eq(kart_alarm_join(&a, 0), -ETIMEDOUT);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_alarm_join(&a, 20 * KT_MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 20 * KT_MS);

    struct deadlock_probe p = {.self = &b, .other = &a};
    ck_assert_int_eq(kart_alarm_start(&b, 0, join_from_timer, &p), 0);
    ck_assert_int_eq(kart_alarm_join(&b, -1), 0);
    ck_assert_int_eq(p.on_self, -EDEADLK);
    ck_assert_int_eq(p.on_other, -EDEADLK);
    ck_assert_int_eq(kart_alarm_cancel(&a), 0);
    ck_assert_int_eq(calls, 0);
}
END_TEST

static int fork_child(kart_alarm *parents, kart_thread *parent_thread)
{
    /* The parent's alarm is cancelled here; ours fires on a new thread. */
    if (kart_alarm_join(parents, 0) != 0 || kart_alarm_cancel(parents) != 0)
        return 10;
    kart_alarm mine = KART_ALARM_INIT;
    _Atomic int64_t fired = 0;
    int64_t t0 = kart_now_ns();
    if (kart_alarm_start(&mine, 20 * KT_MS, stamp, &fired) != 0)
        return 11;
    if (kart_alarm_join(&mine, 10000 * KT_MS) != 0)
        return 12;
    if (fired - t0 < 20 * KT_MS)
        return 13;
    /* Threads: the forking thread is main and alone; the parent's are
     * gone and not joinable. */
    if (kart_thread_current() != kart_thread_main() ||
        kart_thread_native_id(kart_thread_main()) != getpid())
        return 14;
    if (kart_thread_join(parent_thread, 0, NULL) != -EINVAL || kart_thread_is_alive(parent_thread))
        return 15;
    kart_thread_info info[4];
    int n = kart_thread_list(info, 4);
    if (n != 2) /* main and the child's new timer thread */
        return 16;
    return 0;
}

START_TEST(alarms_work_in_a_fork_child)
{
    kart_alarm pending = KART_ALARM_INIT;
    _Atomic int calls = 0;
    gate g;
    gate_init(&g);
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, wait_at_gate, &g, NULL), 0);
    ck_assert_int_eq(kart_alarm_start(&pending, 10000 * KT_MS, count_call, &calls), 0);
    kart_thread_current();
    pid_t pid = kt_fork();
    if (pid == 0)
        _exit(fork_child(&pending, t));
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_eq(kart_alarm_cancel(&pending), 0);
    gate_open(&g);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("thread");
    TCase *tc = tcase_create("thread");
    tcase_add_test(tc, start_join_returns_function_result);
    tcase_add_test(tc, start_rejects_bad_arguments);
    tcase_add_test(tc, start_reports_no_room_for_a_stack);
    tcase_add_test(tc, join_timeout_leaves_thread_joinable);
    tcase_add_test(tc, join_reports_each_error);
    tcase_add_test(tc, name_reaches_proc_truncated);
    tcase_add_test(tc, stack_size_is_honoured);
    tcase_add_test(tc, affinity_to_one_cpu_is_honoured);
    tcase_add_test(tc, numa_node_binding_is_honoured);
    tcase_add_test(tc, numa_node_binding_errors);
    tcase_add_test(tc, detached_thread_leaves_the_count);
    tcase_add_test(tc, identity_is_distinct_and_native);
    tcase_add_test(tc, main_from_another_thread_is_the_main_thread);
    tcase_add_test(tc, foreign_thread_is_adopted_until_it_ends);
    tcase_add_test(tc, list_and_count_agree_while_threads_churn);
    tcase_add_test(tc, excepthook_hears_each_failure_once);
    tcase_add_test(tc, default_excepthook_prints_one_line);
    suite_add_tcase(s, tc);

    TCase *tls = tcase_create("tls");
    tcase_add_test(tls, tls_destructors_run_with_each_value);
    tcase_add_test(tls, tls_reports_each_error);
    tcase_add_test(tls, once_runs_once_for_16_concurrent_callers);
    tcase_add_test(tls, once_reports_each_error);
    suite_add_tcase(s, tls);

    TCase *alarm = tcase_create("alarm");
    tcase_add_test(alarm, alarm_fires_after_its_delay);
    tcase_add_test(alarm, ten_thousand_alarms_fire_once_in_order_on_one_thread);
    tcase_add_test(alarm, alarms_fire_in_deadline_order);
    tcase_add_test(alarm, alarm_cancelled_in_time_never_runs);
    tcase_add_test(alarm, alarm_cancel_after_it_ran_is_too_late);
    tcase_add_test(alarm, alarm_reports_each_error);
    tcase_add_test(alarm, alarms_work_in_a_fork_child);
    suite_add_tcase(s, alarm);
    return kt_run(s);
}

/* Description: kart/thread.h's 0.2 additions — names copied into the
 * caller's buffer and renaming after start (Thread.name), the process-wide
 * default stack size (threading.stack_size), the start/end hook and the
 * excepthook's previous pair, interrupt_main (_thread.interrupt_main with
 * a signal), and alarms set up and torn down by functions
 * (kart_alarm_init/_destroy, from other threads and from their own
 * function). Cases after CPython's test_threading where they apply. */
#include "testutil.h"
#include "kt_threads.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t my_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

/* A flag a thread waits on until the test raises it. */
static int wait_for_flag(void *arg)
{
    while (!atomic_load((_Atomic int *)arg))
        sleep_ms(1);
    return 0;
}

/* ---- names ---- */

START_TEST(name_is_copied_and_checked)
{
    kart_thread *t;
    _Atomic int go = 0;
    kart_thread_options o = {.name = "copy-me"};
    ck_assert_int_eq(kart_thread_start(&t, wait_for_flag, &go, &o), 0);
    char buf[KART_THREAD_NAME_MAX];
    ck_assert_int_eq(kart_thread_name(NULL, buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(kart_thread_name(t, NULL, sizeof(buf)), -EINVAL);
    /* Too small: nothing written. */
    memset(buf, 'x', sizeof(buf));
    ck_assert_int_eq(kart_thread_name(t, buf, 7), -ENOBUFS);
    ck_assert_int_eq(kart_thread_name(t, buf, 0), -ENOBUFS);
    ck_assert_int_eq(buf[0], 'x');
    /* Exactly the length and its NUL. */
    ck_assert_int_eq(kart_thread_name(t, buf, 8), 7);
    ck_assert_str_eq(buf, "copy-me");
    atomic_store(&go, 1);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
}
END_TEST

struct renamed {
    _Atomic int go;
    _Atomic int done;
    char comm[32];
};

/* Reads its own kernel name once the test says it has been renamed. */
static int read_own_comm(void *arg)
{
    struct renamed *r = arg;
    while (!atomic_load(&r->go))
        sleep_ms(1);
    kt_thread_comm(my_tid(), r->comm, sizeof(r->comm));
    atomic_store(&r->done, 1);
    return 0;
}

START_TEST(rename_after_start_reaches_kart_and_the_kernel)
{
    static struct renamed r;
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, read_own_comm, &r, NULL), 0);
    ck_assert_int_eq(kart_thread_set_name(t, "renamed-worker-long"), 0);
    char buf[KART_THREAD_NAME_MAX];
    ck_assert_int_eq(kart_thread_name(t, buf, sizeof(buf)), 15);
    ck_assert_str_eq(buf, "renamed-worker-");
    /* The list's snapshot has it too. */
    kart_thread_info info[8];
    int n = kart_thread_list(info, 8);
    ck_assert_int_ge(n, 1);
    bool found = false;
    for (int i = 0; i < n && i < 8; i++)
        if (info[i].ident == kart_thread_ident(t))
            found = !strcmp(info[i].name, "renamed-worker-");
    ck_assert(found);
    atomic_store(&r.go, 1);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    ck_assert_str_eq(r.comm, "renamed-worker-");
}
END_TEST

static int rename_self(void *arg)
{
    (void)arg;
    if (kart_thread_set_name(kart_thread_current(), "self-named") != 0)
        return 1;
    char comm[32];
    kt_thread_comm(my_tid(), comm, sizeof(comm));
    return strcmp(comm, "self-named") ? 2 : 0;
}

START_TEST(rename_self_and_after_the_end)
{
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, rename_self, NULL, NULL), 0);
    /* Wait until it has ended (is_alive 0), then rename: kart's name only. */
    while (kart_thread_is_alive(t))
        sleep_ms(1);
    while (kart_thread_count() > 0)
        sleep_ms(1);
    ck_assert_int_eq(kart_thread_set_name(t, "after-end"), 0);
    char buf[KART_THREAD_NAME_MAX];
    ck_assert_int_eq(kart_thread_name(t, buf, sizeof(buf)), 9);
    ck_assert_str_eq(buf, "after-end");
    int result = -1;
    ck_assert_int_eq(kart_thread_join(t, -1, &result), 0);
    ck_assert_int_eq(result, 0);
    ck_assert_int_eq(kart_thread_set_name(NULL, "x"), -EINVAL);
    ck_assert_int_eq(kart_thread_set_name(kart_thread_current(), NULL), -EINVAL);
}
END_TEST

static int rename_main(void *arg)
{
    (void)arg;
    return kart_thread_set_name(kart_thread_main(), "main-renamed");
}

START_TEST(rename_the_main_thread_from_another)
{
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, rename_main, NULL, NULL), 0);
    int result = -1;
    ck_assert_int_eq(kart_thread_join(t, -1, &result), 0);
    ck_assert_int_eq(result, 0);
    char comm[32], buf[KART_THREAD_NAME_MAX];
    kt_thread_comm(getpid(), comm, sizeof(comm));
    ck_assert_str_eq(comm, "main-renamed");
    ck_assert_int_eq(kart_thread_name(kart_thread_current(), buf, sizeof(buf)), 12);
    ck_assert_str_eq(buf, "main-renamed");
}
END_TEST

/* ---- the default stack size ---- */

static size_t stack_seen;

static int measure_stack(void *arg)
{
    (void)arg;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return 1;
    pthread_attr_getstacksize(&attr, &stack_seen);
    pthread_attr_destroy(&attr);
    return 0;
}

static size_t stack_of(const kart_thread_options *o)
{
    kart_thread *t;
    stack_seen = 0;
    ck_assert_int_eq(kart_thread_start(&t, measure_stack, NULL, o), 0);
    int r = -1;
    ck_assert_int_eq(kart_thread_join(t, -1, &r), 0);
    ck_assert_int_eq(r, 0);
    return stack_seen;
}

START_TEST(default_stack_size_applies_to_new_threads)
{
    ck_assert_uint_eq(kart_thread_stack_size(), 0);
    size_t old = 1;
    ck_assert_int_eq(kart_thread_set_stack_size(3u << 20, &old), 0);
    ck_assert_uint_eq(old, 0);
    ck_assert_uint_eq(kart_thread_stack_size(), 3u << 20);
    size_t s = stack_of(NULL);
    ck_assert_uint_ge(s, 3u << 20);
    ck_assert_uint_lt(s, 4u << 20);
    /* A thread's own option wins. */
    kart_thread_options o = {.stack_size = 5u << 20};
    s = stack_of(&o);
    ck_assert_uint_ge(s, 5u << 20);
    ck_assert_uint_lt(s, 6u << 20);
    /* Below the minimum: refused, nothing changes. */
    ck_assert_int_eq(kart_thread_set_stack_size((size_t)PTHREAD_STACK_MIN - 1, &old), -EINVAL);
    ck_assert_int_eq(kart_thread_set_stack_size(1, NULL), -EINVAL);
    ck_assert_uint_eq(kart_thread_stack_size(), 3u << 20);
    /* The minimum itself is accepted; 0 goes back to the default. */
    ck_assert_int_eq(kart_thread_set_stack_size((size_t)PTHREAD_STACK_MIN, NULL), 0);
    ck_assert_int_eq(kart_thread_set_stack_size(0, &old), 0);
    ck_assert_uint_eq(old, (size_t)PTHREAD_STACK_MIN);
    ck_assert_uint_eq(kart_thread_stack_size(), 0);
    size_t dflt = stack_of(NULL);
    ck_assert_uint_ne(dflt, 3u << 20);
}
END_TEST

/* ---- the start/end hook ---- */

enum { MAXEV = 64 };
static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ev {
    uint64_t ident;
    kart_thread_event event;
    bool on_itself;
    bool alive;
    int excepthook_calls; /* at the time of the event */
} evs[MAXEV];
static int nev;
static int except_calls;
static int hook_arg_token;

static void record_event(kart_thread *t, kart_thread_event event, void *arg)
{
    ck_assert_ptr_eq(arg, &hook_arg_token);
    pthread_mutex_lock(&ev_mu);
    if (nev < MAXEV)
        evs[nev++] = (struct ev){
            .ident = kart_thread_ident(t),
            .event = event,
            .on_itself = t == kart_thread_current() && kart_thread_native_id(t) == my_tid(),
            .alive = kart_thread_is_alive(t),
            .excepthook_calls = except_calls,
        };
    pthread_mutex_unlock(&ev_mu);
}

static void count_failure(const kart_thread_failure *f, void *arg)
{
    (void)f;
    (void)arg;
    pthread_mutex_lock(&ev_mu);
    except_calls++;
    pthread_mutex_unlock(&ev_mu);
}

/* The function checks that its start event came first. */
static int check_started_first(void *arg)
{
    uint64_t me = kart_thread_ident(kart_thread_current());
    bool seen = false;
    pthread_mutex_lock(&ev_mu);
    for (int i = 0; i < nev; i++)
        seen |= evs[i].ident == me && evs[i].event == KART_THREAD_STARTED;
    pthread_mutex_unlock(&ev_mu);
    return seen ? (int)(intptr_t)arg : 100;
}

START_TEST(hook_hears_every_start_and_end_on_the_thread)
{
    kart_thread_hook old = record_event;
    void *old_arg = &old;
    kart_thread_set_excepthook(count_failure, NULL, NULL, NULL);
    kart_thread_set_hook(record_event, &hook_arg_token, &old, &old_arg);
    ck_assert_ptr_null(old);
    ck_assert_ptr_null(old_arg);
    kart_thread *t[3];
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(kart_thread_start(&t[i], check_started_first, (void *)(intptr_t)i, NULL),
                         0);
        ids[i] = kart_thread_ident(t[i]);
    }
    for (int i = 0; i < 3; i++) {
        int r = -1;
        ck_assert_int_eq(kart_thread_join(t[i], -1, &r), 0);
        ck_assert_int_eq(r, i); /* 100 would be: no start event first */
    }
    /* An adopted thread calls no hook. */
    ck_assert_ptr_nonnull(kart_thread_current());
    pthread_mutex_lock(&ev_mu);
    ck_assert_int_eq(nev, 6);
    for (int i = 0; i < 3; i++) {
        int started = 0, ended = 0;
        for (int k = 0; k < nev; k++) {
            if (evs[k].ident != ids[i])
                continue;
            ck_assert(evs[k].on_itself);
            if (evs[k].event == KART_THREAD_STARTED) {
                started++;
                ck_assert(evs[k].alive);
                ck_assert_int_eq(ended, 0);
            } else {
                ck_assert_int_eq(evs[k].event, KART_THREAD_ENDED);
                ended++;
                ck_assert(!evs[k].alive);
            }
        }
        ck_assert_int_eq(started, 1);
        ck_assert_int_eq(ended, 1);
    }
    /* Threads 1 and 2 failed: their excepthook ran before their end. */
    ck_assert_int_eq(except_calls, 2);
    pthread_mutex_unlock(&ev_mu);

    kart_thread_set_hook(NULL, NULL, &old, &old_arg);
    ck_assert_ptr_eq(old, record_event);
    ck_assert_ptr_eq(old_arg, &hook_arg_token);
    ck_assert_int_eq(kart_thread_start(&t[0], return_arg, NULL, NULL), 0);
    ck_assert_int_eq(kart_thread_join(t[0], -1, NULL), 0);
    pthread_mutex_lock(&ev_mu);
    ck_assert_int_eq(nev, 6);
    pthread_mutex_unlock(&ev_mu);
    kart_thread_set_hook(NULL, NULL, NULL, NULL); /* the out pointers may be NULL */
}
END_TEST

/* The excepthook ran before the end event of a failing thread. */
START_TEST(end_hook_runs_after_the_excepthook)
{
    kart_thread_set_excepthook(count_failure, NULL, NULL, NULL);
    kart_thread_set_hook(record_event, &hook_arg_token, NULL, NULL);
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, return_arg, (void *)(intptr_t)-7, NULL), 0);
    ck_assert_int_eq(kart_thread_join(t, -1, NULL), 0);
    pthread_mutex_lock(&ev_mu);
    ck_assert_int_eq(nev, 2);
    ck_assert_int_eq(evs[1].event, KART_THREAD_ENDED);
    ck_assert_int_eq(evs[1].excepthook_calls, 1);
    pthread_mutex_unlock(&ev_mu);
}
END_TEST

static void name_on_start(kart_thread *t, kart_thread_event event, void *arg)
{
    (void)arg;
    if (event == KART_THREAD_STARTED)
        kart_thread_set_name(t, "hooked");
}

static int own_comm_is_hooked(void *arg)
{
    (void)arg;
    char comm[32];
    kt_thread_comm(my_tid(), comm, sizeof(comm));
    return strcmp(comm, "hooked") ? 1 : 0;
}

START_TEST(start_hook_may_rename_its_thread)
{
    kart_thread_set_hook(name_on_start, NULL, NULL, NULL);
    kart_thread *t;
    ck_assert_int_eq(kart_thread_start(&t, own_comm_is_hooked, NULL, NULL), 0);
    int r = -1;
    ck_assert_int_eq(kart_thread_join(t, -1, &r), 0);
    ck_assert_int_eq(r, 0);
}
END_TEST

/* Hooks set and replaced from one thread while others start and end:
 * every call gets a matching (function, argument) pair. */
static _Atomic int pair_mismatch, pair_calls;
static int arg_a, arg_b;

static void hook_a(kart_thread *t, kart_thread_event e, void *arg)
{
    (void)t;
    (void)e;
    atomic_fetch_add(&pair_calls, 1);
    if (arg != &arg_a)
        atomic_fetch_add(&pair_mismatch, 1);
}

static void hook_b(kart_thread *t, kart_thread_event e, void *arg)
{
    (void)t;
    (void)e;
    atomic_fetch_add(&pair_calls, 1);
    if (arg != &arg_b)
        atomic_fetch_add(&pair_mismatch, 1);
}

static _Atomic int churn_stop;

static int churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        kart_thread *t;
        if (kart_thread_start(&t, return_arg, NULL, NULL) != 0 ||
            kart_thread_join(t, -1, NULL) != 0)
            return 1;
    }
    return 0;
}

START_TEST(hook_setters_race_with_starting_threads)
{
    kart_thread *c[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(kart_thread_start(&c[i], churn, NULL, NULL), 0);
    for (int i = 0; i < 2000; i++) {
        kart_thread_hook old;
        void *old_arg;
        kart_thread_set_hook(i % 2 ? hook_a : hook_b, i % 2 ? &arg_a : &arg_b, &old, &old_arg);
        ck_assert(old == NULL || (old == hook_a && old_arg == &arg_a) ||
                  (old == hook_b && old_arg == &arg_b));
        if (i % 50 == 0)
            sleep_ms(1);
    }
    atomic_store(&churn_stop, 1);
    for (int i = 0; i < 2; i++) {
        int r = -1;
        ck_assert_int_eq(kart_thread_join(c[i], -1, &r), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_gt(atomic_load(&pair_calls), 0);
    ck_assert_int_eq(atomic_load(&pair_mismatch), 0);
}
END_TEST

/* ---- interrupt_main ---- */

static _Atomic pid_t handled_on;
static _Atomic int handled_sig;

static void note_signal(int sig)
{
    atomic_store(&handled_sig, sig);
    atomic_store(&handled_on, my_tid());
}

static void install(int sig)
{
    struct sigaction sa = {.sa_handler = note_signal}; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(sig, &sa, NULL), 0);
}

static _Atomic int main_interrupted;

/* Sends until the main thread says its read was interrupted: a signal
 * that lands before the read only runs the handler. */
static int interrupt_with(void *arg)
{
    for (int i = 0; i < 1000 && !atomic_load(&main_interrupted); i++) {
        int r = kart_thread_interrupt_main((int)(intptr_t)arg);
        if (r != 0)
            return r;
        sleep_ms(20);
    }
    return atomic_load(&main_interrupted) ? 0 : 1;
}

START_TEST(interrupt_main_interrupts_the_main_thread)
{
    install(SIGINT);
    install(SIGUSR1);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    for (int round = 0; round < 2; round++) {
        int sig = round ? SIGUSR1 : 0; /* 0: SIGINT, Python's default */
        atomic_store(&handled_sig, 0);
        atomic_store(&main_interrupted, 0);
        kart_thread *t;
        ck_assert_int_eq(kart_thread_start(&t, interrupt_with, (void *)(intptr_t)sig, NULL), 0);
        /* The main thread's blocking read is interrupted. */
        char c;
        errno = 0;
        ssize_t n = read(p[0], &c, 1);
        int err = errno;
        atomic_store(&main_interrupted, 1);
        ck_assert_int_eq(n, -1);
        ck_assert_int_eq(err, EINTR);
        int r = -1;
        ck_assert_int_eq(kart_thread_join(t, -1, &r), 0);
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(atomic_load(&handled_sig), round ? SIGUSR1 : SIGINT);
        ck_assert_int_eq(atomic_load(&handled_on), getpid());
    }
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(interrupt_main_rejects_bad_signals)
{
    ck_assert_int_eq(kart_thread_interrupt_main(-1), -EINVAL);
    ck_assert_int_eq(kart_thread_interrupt_main(NSIG), -EINVAL);
    ck_assert_int_eq(kart_thread_interrupt_main(INT_MAX), -EINVAL);
}
END_TEST

/* In a fork child whose main thread ends by pthread_exit(): another
 * thread's interrupt_main gets -ESRCH once the main thread is gone. */
static int interrupt_ended_main(void *arg)
{
    (void)arg;
    int r = 0;
    for (int i = 0; i < 10000; i++) {
        r = kart_thread_interrupt_main(SIGUSR1);
        if (r != 0)
            break;
        sleep_ms(1);
    }
    _exit(r == -ESRCH ? 0 : 1);
}

START_TEST(interrupt_main_after_the_main_thread_ended_is_esrch)
{
    pid_t pid = kt_fork();
    if (pid == 0) {
        signal(SIGUSR1, SIG_IGN);
        kart_thread_options o = {.detached = true};
        if (kart_thread_start(NULL, interrupt_ended_main, NULL, &o) != 0)
            _exit(2);
        pthread_exit(NULL);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

/* ---- alarms: init and destroy ---- */

static void count_call(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

START_TEST(alarm_init_and_destroy_of_idle_and_waiting_alarms)
{
    ck_assert_int_eq(kart_alarm_init(NULL), -EINVAL);
    kart_alarm_destroy(NULL);
    kart_alarm a, witness;
    memset(&a, 0xa5, sizeof(a));
    ck_assert_int_eq(kart_alarm_init(&a), 0);
    ck_assert_int_eq(kart_alarm_init(&witness), 0);
    kart_alarm_destroy(&a); /* never started */
    ck_assert_int_eq(kart_alarm_init(&a), 0);
    _Atomic int calls = 0, other = 0;
    ck_assert_int_eq(kart_alarm_start(&a, 100 * KT_MS, count_call, &calls), 0);
    kart_alarm_destroy(&a); /* waiting: cancelled */
    ck_assert_int_eq(kart_alarm_start(&witness, 200 * KT_MS, count_call, &other), 0);
    ck_assert_int_eq(kart_alarm_join(&witness, -1), 0);
    ck_assert_int_eq(other, 1);
    ck_assert_int_eq(calls, 0);
    /* Set up again and used. */
    ck_assert_int_eq(kart_alarm_init(&a), 0);
    ck_assert_int_eq(kart_alarm_start(&a, 0, count_call, &calls), 0);
    ck_assert_int_eq(kart_alarm_join(&a, -1), 0);
    ck_assert_int_eq(calls, 1);
    kart_alarm_destroy(&a); /* done */
    kart_alarm_destroy(&witness);
}
END_TEST

static _Atomic int slow_started, slow_finished;

static void slow_fn(void *arg)
{
    (void)arg;
    atomic_store(&slow_started, 1);
    sleep_ms(100);
    atomic_store(&slow_finished, 1);
}

START_TEST(alarm_destroy_waits_for_a_running_function)
{
    kart_alarm *a = malloc(sizeof(*a));
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(kart_alarm_init(a), 0);
    ck_assert_int_eq(kart_alarm_start(a, 0, slow_fn, NULL), 0);
    while (!atomic_load(&slow_started))
        sleep_ms(1);
    kart_alarm_destroy(a);
    ck_assert_int_eq(atomic_load(&slow_finished), 1);
    free(a); /* the timer thread no longer touches it */
    /* The timer thread goes on serving others. */
    kart_alarm b = KART_ALARM_INIT;
    _Atomic int calls = 0;
    ck_assert_int_eq(kart_alarm_start(&b, 0, count_call, &calls), 0);
    ck_assert_int_eq(kart_alarm_join(&b, -1), 0);
    ck_assert_int_eq(calls, 1);
}
END_TEST

/* A one-shot alarm that frees itself from its own function, and one that
 * re-arms itself after destroying itself. */
struct self_alarm {
    kart_alarm alarm;
    _Atomic int *fired;
    int rearm;
};

static void free_self(void *arg)
{
    struct self_alarm *s = arg;
    _Atomic int *fired = s->fired;
    if (s->rearm > 0) {
        s->rearm--;
        kart_alarm_destroy(&s->alarm);
        kart_alarm_init(&s->alarm);
        kart_alarm_start(&s->alarm, 0, free_self, s);
    } else {
        kart_alarm_destroy(&s->alarm);
        free(s);
    }
    atomic_fetch_add(fired, 1);
}

START_TEST(alarm_destroyed_and_freed_by_its_own_function)
{
    static _Atomic int fired;
    for (int i = 0; i < 3; i++) {
        struct self_alarm *s = malloc(sizeof(*s));
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(kart_alarm_init(&s->alarm), 0);
        s->fired = &fired;
        s->rearm = i;
        ck_assert_int_eq(kart_alarm_start(&s->alarm, 0, free_self, s), 0);
    }
    /* 1 + 2 + 3 runs; then a later alarm proves the thread is healthy. */
    for (int i = 0; i < 10000 && atomic_load(&fired) < 6; i++)
        sleep_ms(1);
    ck_assert_int_eq(atomic_load(&fired), 6);
    kart_alarm b = KART_ALARM_INIT;
    _Atomic int calls = 0;
    ck_assert_int_eq(kart_alarm_start(&b, 0, count_call, &calls), 0);
    ck_assert_int_eq(kart_alarm_join(&b, -1), 0);
    ck_assert_int_eq(calls, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("thread_hooks");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, name_is_copied_and_checked);
    tcase_add_test(tc, rename_after_start_reaches_kart_and_the_kernel);
    tcase_add_test(tc, rename_self_and_after_the_end);
    tcase_add_test(tc, rename_the_main_thread_from_another);
    suite_add_tcase(s, tc);

    tc = tcase_create("settings");
    tcase_add_test(tc, default_stack_size_applies_to_new_threads);
    tcase_add_test(tc, hook_hears_every_start_and_end_on_the_thread);
    tcase_add_test(tc, end_hook_runs_after_the_excepthook);
    tcase_add_test(tc, start_hook_may_rename_its_thread);
    tcase_add_test(tc, hook_setters_race_with_starting_threads);
    tcase_add_test(tc, interrupt_main_interrupts_the_main_thread);
    tcase_add_test(tc, interrupt_main_rejects_bad_signals);
    tcase_add_test(tc, interrupt_main_after_the_main_thread_ended_is_esrch);
    suite_add_tcase(s, tc);

    tc = tcase_create("alarm");
    tcase_add_test(tc, alarm_init_and_destroy_of_idle_and_waiting_alarms);
    tcase_add_test(tc, alarm_destroy_waits_for_a_running_function);
    tcase_add_test(tc, alarm_destroyed_and_freed_by_its_own_function);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

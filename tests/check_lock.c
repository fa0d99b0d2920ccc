/* Description: Lock, RLock and Condition of kart/sync.h: each documented
 * error, every timeout path, the robust owner-died protocol for threads
 * and killed processes, process-shared use through fork and through two
 * separate mappings of one file, and stress with many threads. Lock cases
 * run on all four kinds (plain, shared, robust, robust and shared). */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

static const unsigned kinds[] = {0, KART_SYNC_SHARED, KART_SYNC_ROBUST,
                                 KART_SYNC_ROBUST | KART_SYNC_SHARED};
#define NKINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

/* The kinds for cases between processes. */
static const unsigned shared_kinds[] = {KART_SYNC_SHARED, KART_SYNC_ROBUST | KART_SYNC_SHARED};

static bool is_robust(unsigned kind)
{
    return kind & KART_SYNC_ROBUST;
}

/* ---- helpers ---- */

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

/* Joins a thread that returned an int result through its pointer. */
static intptr_t join(pthread_t t)
{
    void *ret;
    ck_assert_int_eq(pthread_join(t, &ret), 0);
    return (intptr_t)ret;
}

static void *shm(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(p != MAP_FAILED);
    return p;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void expect_exit(pid_t pid, int code)
{
    int st;
    kt_wait_child(pid, &st);
    ck_assert_msg(WIFEXITED(st), "child did not exit (status 0x%x)", st);
    ck_assert_int_eq(WEXITSTATUS(st), code);
}

/* Polls until *v reaches want (10 s at most). */
static void await_int(_Atomic int *v, int want)
{
    for (int i = 0; i < 10000 && atomic_load(v) < want; i++)
        sleep_ms(1);
    ck_assert_int_ge(atomic_load(v), want);
}

/* ---- Lock: arguments ---- */

START_TEST(lock_init_rejects_null_and_unknown_flags)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_lock_init(&l, 0x80), -EINVAL);
    ck_assert_int_eq(kart_lock_init(&l, KART_SYNC_SHARED | 0x4), -EINVAL);
}
END_TEST

START_TEST(lock_calls_reject_null)
{
    ck_assert_int_eq(kart_lock_acquire(NULL, -1), -EINVAL);
    ck_assert_int_eq(kart_lock_release(NULL), -EINVAL);
    kart_lock_destroy(NULL); /* accepted, does nothing */
    ck_assert_int_eq(kart_lock_consistent(NULL), -EINVAL);
    ck_assert_int_eq(kart_lock_locked(NULL), -EINVAL);
    ck_assert_int_eq(kart_lock_held_by_me(NULL), -EINVAL);
}
END_TEST

/* ---- Lock: every kind (loop tests over kinds[]) ---- */

START_TEST(lock_acquire_release_reports_state)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(kart_lock_locked(&l), 0);
    ck_assert_int_eq(kart_lock_held_by_me(&l), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    ck_assert_int_eq(kart_lock_locked(&l), 1);
    ck_assert_int_eq(kart_lock_held_by_me(&l), 1);
    ck_assert_int_eq(kart_lock_release(&l), 0);
    ck_assert_int_eq(kart_lock_locked(&l), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, 0), 0);
    ck_assert_int_eq(kart_lock_release(&l), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, 50 * KT_MS), 0);
    ck_assert_int_eq(kart_lock_release(&l), 0);
    kart_lock_destroy(&l);
}
END_TEST

START_TEST(lock_release_of_free_lock_is_eperm)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(kart_lock_release(&l), -EPERM);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    ck_assert_int_eq(kart_lock_release(&l), 0);
    ck_assert_int_eq(kart_lock_release(&l), -EPERM);
    kart_lock_destroy(&l);
}
END_TEST

START_TEST(lock_acquire_by_holder_is_edeadlk)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), -EDEADLK);
    ck_assert_int_eq(kart_lock_acquire(&l, 0), -EDEADLK);
    ck_assert_int_eq(kart_lock_acquire(&l, 20 * KT_MS), -EDEADLK);
    ck_assert_int_eq(kart_lock_held_by_me(&l), 1);
    ck_assert_int_eq(kart_lock_release(&l), 0);
}
END_TEST

/* Teardown returns nothing and always releases: a lock the caller holds
 * is let go and destroyed, and the memory can be set up again. */
START_TEST(lock_destroy_of_held_lock_releases_it)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    kart_lock_destroy(&l);
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(kart_lock_locked(&l), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, 0), 0);
    ck_assert_int_eq(kart_lock_release(&l), 0);
    kart_lock_destroy(&l);
}
END_TEST

typedef struct {
    kart_lock *lock;
    int64_t timeout;
    int64_t elapsed;
    int held_by_me, locked;
    _Atomic int done;
} try_arg;

static void *try_acquire(void *p)
{
    try_arg *a = p;
    a->held_by_me = kart_lock_held_by_me(a->lock);
    a->locked = kart_lock_locked(a->lock);
    int64_t t0 = kart_now_ns();
    int r = kart_lock_acquire(a->lock, a->timeout);
    a->elapsed = kart_now_ns() - t0;
    atomic_store(&a->done, 1);
    if (r == 0 || r == -EOWNERDEAD)
        kart_lock_release(a->lock);
    return (void *)(intptr_t)r;
}

START_TEST(lock_held_elsewhere_is_etimedout_at_0_and_in_time)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    try_arg a = {.lock = &l, .timeout = 0};
    ck_assert_int_eq(join(spawn(try_acquire, &a)), -ETIMEDOUT);
    ck_assert_int_eq(a.held_by_me, 0);
    ck_assert_int_eq(a.locked, 1);
    a.timeout = 100 * KT_MS;
    ck_assert_int_eq(join(spawn(try_acquire, &a)), -ETIMEDOUT);
    ck_assert_int_ge(a.elapsed, 100 * KT_MS);
    ck_assert_int_eq(kart_lock_held_by_me(&l), 1);
    ck_assert_int_eq(kart_lock_release(&l), 0);
}
END_TEST

START_TEST(lock_blocked_acquirer_gets_it_on_release)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
        try_arg a = {.lock = &l, .timeout = round ? 10000 * KT_MS : -1};
        pthread_t t = spawn(try_acquire, &a);
        sleep_ms(30);
        ck_assert_int_eq(atomic_load(&a.done), 0);
        ck_assert_int_eq(kart_lock_release(&l), 0);
        ck_assert_int_eq(join(t), 0);
    }
    ck_assert_int_eq(kart_lock_locked(&l), 0);
}
END_TEST

static void *release_it(void *p)
{
    return (void *)(intptr_t)kart_lock_release(p);
}

/* Python's Lock may be released by any thread; a robust lock only by its
 * holder. */
START_TEST(lock_release_from_another_thread)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    if (is_robust(kinds[_i])) {
        ck_assert_int_eq(join(spawn(release_it, &l)), -EPERM);
        ck_assert_int_eq(kart_lock_held_by_me(&l), 1);
        ck_assert_int_eq(kart_lock_release(&l), 0);
    } else {
        ck_assert_int_eq(join(spawn(release_it, &l)), 0);
        ck_assert_int_eq(kart_lock_locked(&l), 0);
        ck_assert_int_eq(kart_lock_held_by_me(&l), 0);
        ck_assert_int_eq(kart_lock_release(&l), -EPERM);
    }
    ck_assert_int_eq(kart_lock_acquire(&l, 0), 0);
    ck_assert_int_eq(kart_lock_release(&l), 0);
}
END_TEST

/* A thread's first kart call is an uncontended acquire: the id it has not
 * looked up yet (the fast path's out-of-line case) is still recorded. */
static void *first_acquire(void *p)
{
    kart_lock *l = p;
    intptr_t r = kart_lock_acquire(l, -1);
    if (r == 0 && kart_lock_held_by_me(l) != 1)
        r = 1001;
    if (r == 0 && kart_lock_acquire(l, 0) != -EDEADLK)
        r = 1002;
    if (r == 0)
        r = kart_lock_release(l);
    return (void *)r;
}

START_TEST(lock_first_acquire_of_a_new_thread_records_it)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(join(spawn(first_acquire, &l)), 0);
    ck_assert_int_eq(kart_lock_locked(&l), 0);
    ck_assert_int_eq(kart_lock_held_by_me(&l), 0);
    kart_lock_destroy(&l);
}
END_TEST

static void on_signal(int sig)
{
    (void)sig;
}

/* A handler installed without SA_RESTART makes futex waits fail with
 * EINTR; the lock goes on waiting with the time left. */
START_TEST(lock_timed_acquire_survives_signals)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    try_arg a = {.lock = &l, .timeout = 300 * KT_MS};
    pthread_t t = spawn(try_acquire, &a);
    for (int i = 0; i < 5; i++) {
        sleep_ms(30);
        pthread_kill(t, SIGUSR1);
    }
    ck_assert_int_eq(join(t), -ETIMEDOUT);
    ck_assert_int_ge(a.elapsed, 300 * KT_MS);
    a.timeout = -1;
    t = spawn(try_acquire, &a);
    for (int i = 0; i < 3; i++) {
        sleep_ms(20);
        pthread_kill(t, SIGUSR1);
    }
    ck_assert_int_eq(kart_lock_release(&l), 0);
    ck_assert_int_eq(join(t), 0);
}
END_TEST

/* ---- Lock and RLock: stress ---- */

#define NTHREADS 8
#define NINCR 100000

typedef struct {
    kart_lock lock;
    kart_rlock rlock;
    long count;
    int errors;
} counter;

static void *hammer_lock(void *p)
{
    counter *c = p;
    for (int i = 0; i < NINCR; i++) {
        if (kart_lock_acquire(&c->lock, -1) != 0)
            return (void *)1;
        c->count++;
        if (kart_lock_release(&c->lock) != 0)
            return (void *)1;
    }
    return NULL;
}

START_TEST(lock_stress_counts_exactly)
{
    static counter c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(kart_lock_init(&c.lock, kinds[_i]), 0);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        t[i] = spawn(hammer_lock, &c);
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(join(t[i]), 0);
    ck_assert_int_eq(c.count, (long)NTHREADS * NINCR);
    ck_assert_int_eq(kart_lock_locked(&c.lock), 0);
}
END_TEST

static void *hammer_rlock(void *p)
{
    counter *c = p;
    for (int i = 0; i < NINCR; i++) {
        if (kart_rlock_acquire(&c->rlock, -1) != 1 || kart_rlock_acquire(&c->rlock, -1) != 2)
            return (void *)1;
        c->count++;
        if (kart_rlock_release(&c->rlock) != 1 || kart_rlock_release(&c->rlock) != 0)
            return (void *)1;
    }
    return NULL;
}

START_TEST(rlock_stress_with_nesting_counts_exactly)
{
    static counter c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(kart_rlock_init(&c.rlock, kinds[_i]), 0);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        t[i] = spawn(hammer_rlock, &c);
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(join(t[i]), 0);
    ck_assert_int_eq(c.count, (long)NTHREADS * NINCR);
    ck_assert_int_eq(kart_rlock_depth(&c.rlock), 0);
    ck_assert_int_eq(kart_rlock_owner(&c.rlock), 0);
}
END_TEST

/* ---- Lock: robust ---- */

static void *acquire_and_exit(void *p)
{
    return (void *)(intptr_t)kart_lock_acquire(p, -1);
}

static void *consistent_it(void *p)
{
    return (void *)(intptr_t)kart_lock_consistent(p);
}

START_TEST(robust_lock_of_exited_thread_is_eownerdead)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, KART_SYNC_ROBUST), 0);
    ck_assert_int_eq(join(spawn(acquire_and_exit, &l)), 0);
    ck_assert_int_eq(kart_lock_locked(&l), 1);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), -EOWNERDEAD);
    ck_assert_int_eq(kart_lock_held_by_me(&l), 1);
    ck_assert_int_eq(join(spawn(consistent_it, &l)), -EPERM);
    ck_assert_int_eq(kart_lock_consistent(&l), 0);
    ck_assert_int_eq(kart_lock_consistent(&l), -EINVAL);
    ck_assert_int_eq(kart_lock_release(&l), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    ck_assert_int_eq(kart_lock_release(&l), 0);
    kart_lock_destroy(&l);
}
END_TEST

START_TEST(robust_lock_released_inconsistent_is_unrecoverable)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, KART_SYNC_ROBUST), 0);
    ck_assert_int_eq(join(spawn(acquire_and_exit, &l)), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, 100 * KT_MS), -EOWNERDEAD);
    ck_assert_int_eq(kart_lock_release(&l), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), -ENOTRECOVERABLE);
    ck_assert_int_eq(kart_lock_acquire(&l, 0), -ENOTRECOVERABLE);
    ck_assert_int_eq(kart_lock_acquire(&l, 10 * KT_MS), -ENOTRECOVERABLE);
    ck_assert_int_eq(kart_lock_locked(&l), 0);
    kart_lock_destroy(&l);
}
END_TEST

START_TEST(consistent_errors)
{
    kart_lock l;
    ck_assert_int_eq(kart_lock_init(&l, 0), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    ck_assert_int_eq(kart_lock_consistent(&l), -EINVAL); /* not robust */
    ck_assert_int_eq(kart_lock_release(&l), 0);
    ck_assert_int_eq(kart_lock_init(&l, KART_SYNC_ROBUST), 0);
    ck_assert_int_eq(kart_lock_consistent(&l), -EPERM); /* not held */
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    ck_assert_int_eq(kart_lock_consistent(&l), -EINVAL); /* not owner-died */
    ck_assert_int_eq(kart_lock_release(&l), 0);
    kart_lock_destroy(&l);
}
END_TEST

/* A child that takes the lock, says so on a pipe, and waits to be killed. */
static pid_t child_holding(kart_lock *l)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        char c = kart_lock_acquire(l, -1) == 0 ? 'y' : 'n';
        if (write(p[1], &c, 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    close(p[1]);
    char c = 0;
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    ck_assert_int_eq(c, 'y');
    close(p[0]);
    return pid;
}

static void kill_child(pid_t pid)
{
    int st;
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    kt_wait_child(pid, &st);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* Forks a child that acquires (timeout 100 ms) and exits with
 * 0 (acquired and released), or 10 + the error number. */
static pid_t child_acquires(kart_lock *l)
{
    pid_t pid = kt_fork();
    if (pid == 0) {
        int r = kart_lock_acquire(l, 100 * KT_MS);
        if (r == 0)
            _exit(kart_lock_release(l) == 0 ? 0 : 1);
        _exit(10 - r);
    }
    return pid;
}

START_TEST(robust_lock_of_killed_process_is_eownerdead)
{
    kart_lock *l = shm(sizeof(*l));
    ck_assert_int_eq(kart_lock_init(l, KART_SYNC_ROBUST | KART_SYNC_SHARED), 0);
    kill_child(child_holding(l));
    ck_assert_int_eq(kart_lock_locked(l), 1);
    expect_exit(child_acquires(l), 10 + EOWNERDEAD); /* it gets it and dies too */
    ck_assert_int_eq(kart_lock_acquire(l, 1000 * KT_MS), -EOWNERDEAD);
    ck_assert_int_eq(kart_lock_held_by_me(l), 1);
    ck_assert_int_eq(kart_lock_consistent(l), 0);
    ck_assert_int_eq(kart_lock_release(l), 0);
    expect_exit(child_acquires(l), 0);
    ck_assert_int_eq(kart_lock_acquire(l, -1), 0);
    ck_assert_int_eq(kart_lock_release(l), 0);
    kart_lock_destroy(l);
}
END_TEST

START_TEST(robust_lock_of_killed_process_unrecoverable_everywhere)
{
    kart_lock *l = shm(sizeof(*l));
    ck_assert_int_eq(kart_lock_init(l, KART_SYNC_ROBUST | KART_SYNC_SHARED), 0);
    kill_child(child_holding(l));
    ck_assert_int_eq(kart_lock_acquire(l, -1), -EOWNERDEAD);
    ck_assert_int_eq(kart_lock_release(l), 0);
    ck_assert_int_eq(kart_lock_acquire(l, -1), -ENOTRECOVERABLE);
    ck_assert_int_eq(kart_lock_acquire(l, 0), -ENOTRECOVERABLE);
    expect_exit(child_acquires(l), 10 + ENOTRECOVERABLE);
    ck_assert_int_eq(kart_lock_acquire(l, 10 * KT_MS), -ENOTRECOVERABLE);
}
END_TEST

/* ---- Lock: between processes ---- */

#define NCHILD 4
#define NCHILD_INCR 50000

typedef struct {
    kart_lock lock;
    long count;
} shared_counter;

static int add_under_lock(shared_counter *c, int n)
{
    for (int i = 0; i < n; i++) {
        if (kart_lock_acquire(&c->lock, -1) != 0)
            return 1;
        c->count++;
        if (kart_lock_release(&c->lock) != 0)
            return 2;
    }
    return 0;
}

START_TEST(shared_lock_counts_exactly_across_fork)
{
    shared_counter *c = shm(sizeof(*c));
    ck_assert_int_eq(kart_lock_init(&c->lock, shared_kinds[_i]), 0);
    pid_t pid[NCHILD];
    for (int i = 0; i < NCHILD; i++) {
        pid[i] = kt_fork();
        if (pid[i] == 0)
            _exit(add_under_lock(c, NCHILD_INCR));
    }
    for (int i = 0; i < NCHILD; i++)
        expect_exit(pid[i], 0);
    ck_assert_int_eq(c->count, (long)NCHILD * NCHILD_INCR);
    ck_assert_int_eq(kart_lock_locked(&c->lock), 0);
    kart_lock_destroy(&c->lock);
}
END_TEST

/* Two mappings of one file, made separately (as two unrelated programs
 * would), so the futex is found by file and offset, not by address. */
START_TEST(shared_lock_in_separately_mapped_file)
{
    char path[] = "/tmp/kart-lock-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 4096), 0);
    shared_counter *c = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert(c != MAP_FAILED);
    close(fd);
    ck_assert_int_eq(kart_lock_init(&c->lock, shared_kinds[_i]), 0);
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        pid[i] = kt_fork();
        if (pid[i] == 0) {
            int cfd = open(path, O_RDWR);
            if (cfd < 0)
                _exit(20);
            shared_counter *mine = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
            if (mine == MAP_FAILED || mine == c)
                _exit(21);
            _exit(add_under_lock(mine, NCHILD_INCR));
        }
    }
    ck_assert_int_eq(add_under_lock(c, NCHILD_INCR), 0);
    for (int i = 0; i < 2; i++)
        expect_exit(pid[i], 0);
    ck_assert_int_eq(c->count, 3L * NCHILD_INCR);
    kart_lock_destroy(&c->lock);
    munmap(c, 4096);
    unlink(path);
}
END_TEST

/* ---- RLock ---- */

START_TEST(rlock_calls_reject_null_and_unknown_flags)
{
    kart_rlock r;
    ck_assert_int_eq(kart_rlock_init(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_rlock_init(&r, 0x40), -EINVAL);
    kart_rlock_destroy(NULL);
    ck_assert_int_eq(kart_rlock_acquire(NULL, -1), -EINVAL);
    ck_assert_int_eq(kart_rlock_release(NULL), -EINVAL);
    ck_assert_int_eq(kart_rlock_consistent(NULL), -EINVAL);
    ck_assert_int_eq(kart_rlock_owner(NULL), -EINVAL);
    ck_assert_int_eq(kart_rlock_depth(NULL), -EINVAL);
}
END_TEST

typedef struct {
    kart_rlock *r;
    int64_t timeout;
    int owner, depth, release, acquire, release_after;
} rlock_probe;

static void *probe_rlock(void *p)
{
    rlock_probe *a = p;
    a->owner = kart_rlock_owner(a->r);
    a->depth = kart_rlock_depth(a->r);
    a->release = kart_rlock_release(a->r);
    a->acquire = kart_rlock_acquire(a->r, a->timeout);
    a->release_after = a->acquire == 1 ? kart_rlock_release(a->r) : 1;
    return NULL;
}

START_TEST(rlock_depth_and_owner)
{
    kart_rlock r;
    ck_assert_int_eq(kart_rlock_init(&r, kinds[_i]), 0);
    ck_assert_int_eq(kart_rlock_owner(&r), 0);
    ck_assert_int_eq(kart_rlock_depth(&r), 0);
    ck_assert_int_eq(kart_rlock_release(&r), -EPERM);
    for (int d = 1; d <= 5; d++)
        ck_assert_int_eq(kart_rlock_acquire(&r, d % 2 ? -1 : 0), d);
    ck_assert_int_eq(kart_rlock_owner(&r), gettid());
    ck_assert_int_eq(kart_rlock_depth(&r), 5);

    /* Another thread sees the owner and depth, cannot release it, and
     * cannot take it, at once or in time. */
    rlock_probe a = {.r = &r, .timeout = 0};
    join(spawn(probe_rlock, &a));
    ck_assert_int_eq(a.owner, gettid());
    ck_assert_int_eq(a.depth, 5);
    ck_assert_int_eq(a.release, -EPERM);
    ck_assert_int_eq(a.acquire, -ETIMEDOUT);
    a.timeout = 50 * KT_MS;
    int64_t t0 = kart_now_ns();
    join(spawn(probe_rlock, &a));
    ck_assert_int_eq(a.acquire, -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 50 * KT_MS);

    for (int d = 4; d >= 0; d--)
        ck_assert_int_eq(kart_rlock_release(&r), d);
    ck_assert_int_eq(kart_rlock_owner(&r), 0);
    ck_assert_int_eq(kart_rlock_depth(&r), 0);
    ck_assert_int_eq(kart_rlock_release(&r), -EPERM);

    a.timeout = -1;
    join(spawn(probe_rlock, &a));
    ck_assert_int_eq(a.acquire, 1);
    ck_assert_int_eq(a.release_after, 0);
    kart_rlock_destroy(&r);
}
END_TEST

static void *rlock_acquire_twice_and_exit(void *p)
{
    kart_rlock *r = p;
    kart_rlock_acquire(r, -1);
    return (void *)(intptr_t)kart_rlock_acquire(r, -1);
}

START_TEST(robust_rlock_of_exited_thread_is_eownerdead)
{
    kart_rlock r;
    ck_assert_int_eq(kart_rlock_init(&r, KART_SYNC_ROBUST), 0);
    ck_assert_int_eq(join(spawn(rlock_acquire_twice_and_exit, &r)), 2);
    ck_assert_int_eq(kart_rlock_acquire(&r, -1), -EOWNERDEAD);
    ck_assert_int_eq(kart_rlock_depth(&r), 1);
    ck_assert_int_eq(kart_rlock_owner(&r), gettid());
    ck_assert_int_eq(kart_rlock_consistent(&r), 0);
    ck_assert_int_eq(kart_rlock_acquire(&r, -1), 2);
    ck_assert_int_eq(kart_rlock_release(&r), 1);
    ck_assert_int_eq(kart_rlock_release(&r), 0);
    ck_assert_int_eq(kart_rlock_acquire(&r, 0), 1);
    ck_assert_int_eq(kart_rlock_release(&r), 0);

    /* Released without being made consistent: unrecoverable. */
    ck_assert_int_eq(join(spawn(rlock_acquire_twice_and_exit, &r)), 2);
    ck_assert_int_eq(kart_rlock_acquire(&r, 50 * KT_MS), -EOWNERDEAD);
    ck_assert_int_eq(kart_rlock_release(&r), 0);
    ck_assert_int_eq(kart_rlock_acquire(&r, -1), -ENOTRECOVERABLE);
    ck_assert_int_eq(kart_rlock_depth(&r), 0);
}
END_TEST

/* The depth limit, reached by setting the private counter: two billion
 * real acquires would take too long. */
START_TEST(rlock_depth_past_int_max_is_eoverflow)
{
    kart_rlock r;
    ck_assert_int_eq(kart_rlock_init(&r, 0), 0);
    ck_assert_int_eq(kart_rlock_acquire(&r, -1), 1);
    atomic_store(&r.depth_, INT_MAX - 1);
    ck_assert_int_eq(kart_rlock_acquire(&r, -1), INT_MAX);
    ck_assert_int_eq(kart_rlock_acquire(&r, -1), -EOVERFLOW);
    ck_assert_int_eq(kart_rlock_depth(&r), INT_MAX);
    ck_assert_int_eq(kart_rlock_release(&r), INT_MAX - 1);
    atomic_store(&r.depth_, 1);
    ck_assert_int_eq(kart_rlock_release(&r), 0);
}
END_TEST

/* ---- Condition: arguments and errors ---- */

static bool always(void *arg)
{
    (void)arg;
    return true;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

START_TEST(cond_init_rejects_null_and_unknown_flags)
{
    kart_cond c;
    ck_assert_int_eq(kart_cond_init(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_init(&c, KART_SYNC_ROBUST), -EINVAL);
    ck_assert_int_eq(kart_cond_init(&c, 0x80), -EINVAL);
    ck_assert_int_eq(kart_cond_init(&c, KART_SYNC_SHARED), 0);
}
END_TEST

START_TEST(cond_calls_reject_null_and_bad_n)
{
    kart_cond c;
    kart_lock l;
    ck_assert_int_eq(kart_cond_init(&c, 0), 0);
    ck_assert_int_eq(kart_lock_init(&l, 0), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    ck_assert_int_eq(kart_cond_wait(NULL, &l, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_wait(&c, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_wait_for(NULL, &l, always, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_wait_for(&c, NULL, always, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_wait_for(&c, &l, NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_notify(NULL, &l, 1), -EINVAL);
    ck_assert_int_eq(kart_cond_notify(&c, NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_cond_notify(&c, &l, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_notify_all(NULL, &l), -EINVAL);
    ck_assert_int_eq(kart_cond_notify_all(&c, NULL), -EINVAL);
    /* Nobody waits: notifying is fine. */
    ck_assert_int_eq(kart_cond_notify(&c, &l, 1), 0);
    ck_assert_int_eq(kart_cond_notify_all(&c, &l), 0);
    ck_assert_int_eq(kart_lock_held_by_me(&l), 1);
    ck_assert_int_eq(kart_lock_release(&l), 0);
}
END_TEST

typedef struct {
    kart_cond *c;
    kart_lock *l;
    int wait, wait_for, notify, notify_all;
} cond_probe;

static void *probe_cond(void *p)
{
    cond_probe *a = p;
    a->wait = kart_cond_wait(a->c, a->l, 10 * KT_MS);
    a->wait_for = kart_cond_wait_for(a->c, a->l, always, NULL, 10 * KT_MS);
    a->notify = kart_cond_notify(a->c, a->l, 1);
    a->notify_all = kart_cond_notify_all(a->c, a->l);
    return NULL;
}

/* Without the lock, and with the lock held by another thread. */
START_TEST(cond_without_lock_is_eperm)
{
    kart_cond c;
    kart_lock l;
    ck_assert_int_eq(kart_cond_init(&c, 0), 0);
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    cond_probe a = {.c = &c, .l = &l};
    probe_cond(&a);
    ck_assert_int_eq(a.wait, -EPERM);
    ck_assert_int_eq(a.wait_for, -EPERM);
    ck_assert_int_eq(a.notify, -EPERM);
    ck_assert_int_eq(a.notify_all, -EPERM);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    cond_probe b = {.c = &c, .l = &l};
    join(spawn(probe_cond, &b));
    ck_assert_int_eq(b.wait, -EPERM);
    ck_assert_int_eq(b.wait_for, -EPERM);
    ck_assert_int_eq(b.notify, -EPERM);
    ck_assert_int_eq(b.notify_all, -EPERM);
    ck_assert_int_eq(kart_lock_release(&l), 0);
}
END_TEST

/* ---- Condition: timeouts (every lock kind) ---- */

START_TEST(cond_wait_times_out_with_lock_held_again)
{
    kart_cond c;
    kart_lock l;
    ck_assert_int_eq(kart_cond_init(&c, kinds[_i] & KART_SYNC_SHARED), 0);
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_cond_wait(&c, &l, 100 * KT_MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 100 * KT_MS);
    ck_assert_int_eq(kart_lock_held_by_me(&l), 1);
    ck_assert_int_eq(kart_cond_wait(&c, &l, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_lock_held_by_me(&l), 1);
    ck_assert_int_eq(kart_lock_release(&l), 0);
    kart_lock_destroy(&l);
}
END_TEST

START_TEST(cond_wait_for_checks_pred_and_times_out)
{
    kart_cond c;
    kart_lock l;
    ck_assert_int_eq(kart_cond_init(&c, kinds[_i] & KART_SYNC_SHARED), 0);
    ck_assert_int_eq(kart_lock_init(&l, kinds[_i]), 0);
    ck_assert_int_eq(kart_lock_acquire(&l, -1), 0);
    ck_assert_int_eq(kart_cond_wait_for(&c, &l, always, NULL, 0), 0);
    ck_assert_int_eq(kart_cond_wait_for(&c, &l, always, NULL, -1), 0);
    ck_assert_int_eq(kart_cond_wait_for(&c, &l, never, NULL, 0), -ETIMEDOUT);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_cond_wait_for(&c, &l, never, NULL, 100 * KT_MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 100 * KT_MS);
    ck_assert_int_eq(kart_lock_held_by_me(&l), 1);
    ck_assert_int_eq(kart_lock_release(&l), 0);
}
END_TEST

/* ---- Condition: notification ---- */

typedef struct {
    kart_lock lock;
    kart_cond cond;
    int flag; /* under lock */
    int result;
    _Atomic int returned;
} flagbox;

static bool flag_is_set(void *p)
{
    return ((flagbox *)p)->flag;
}

static void *wait_for_flag(void *p)
{
    flagbox *b = p;
    int r = kart_lock_acquire(&b->lock, -1);
    if (r == 0)
        r = kart_cond_wait_for(&b->cond, &b->lock, flag_is_set, b, 10000 * KT_MS);
    b->result = r;
    if (r == 0 && kart_lock_release(&b->lock) != 0)
        b->result = 1;
    atomic_fetch_add(&b->returned, 1);
    return NULL;
}

START_TEST(cond_wait_for_returns_when_pred_becomes_true)
{
    static flagbox b;
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(kart_lock_init(&b.lock, kinds[_i]), 0);
    ck_assert_int_eq(kart_cond_init(&b.cond, kinds[_i] & KART_SYNC_SHARED), 0);
    pthread_t t = spawn(wait_for_flag, &b);
    /* Wake-ups with the predicate still false do not end the wait. */
    for (int i = 0; i < 3; i++) {
        sleep_ms(10);
        ck_assert_int_eq(kart_lock_acquire(&b.lock, -1), 0);
        ck_assert_int_eq(kart_cond_notify_all(&b.cond, &b.lock), 0);
        ck_assert_int_eq(kart_lock_release(&b.lock), 0);
    }
    ck_assert_int_eq(atomic_load(&b.returned), 0);
    ck_assert_int_eq(kart_lock_acquire(&b.lock, -1), 0);
    b.flag = 1;
    ck_assert_int_eq(kart_cond_notify(&b.cond, &b.lock, 1), 0);
    ck_assert_int_eq(kart_lock_release(&b.lock), 0);
    join(t);
    ck_assert_int_eq(b.result, 0);
}
END_TEST

static void *signal_thread(void *p)
{
    for (int i = 0; i < 5; i++) {
        sleep_ms(20);
        pthread_kill(*(pthread_t *)p, SIGUSR1);
    }
    return NULL;
}

/* Signals interrupt the futex wait; the condition keeps waiting. */
START_TEST(cond_wait_survives_signals)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    static flagbox b;
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(kart_lock_init(&b.lock, 0), 0);
    ck_assert_int_eq(kart_cond_init(&b.cond, 0), 0);
    pthread_t t = spawn(wait_for_flag, &b);
    for (int i = 0; i < 5; i++) {
        sleep_ms(20);
        pthread_kill(t, SIGUSR1);
    }
    ck_assert_int_eq(atomic_load(&b.returned), 0);
    ck_assert_int_eq(kart_lock_acquire(&b.lock, -1), 0);
    b.flag = 1;
    ck_assert_int_eq(kart_cond_notify_all(&b.cond, &b.lock), 0);
    ck_assert_int_eq(kart_lock_release(&b.lock), 0);
    join(t);
    ck_assert_int_eq(b.result, 0);

    /* And a timed wait still ends at its deadline, not at a signal. */
    ck_assert_int_eq(kart_lock_acquire(&b.lock, -1), 0);
    pthread_t me = pthread_self();
    pthread_t t2 = spawn(signal_thread, &me);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_cond_wait(&b.cond, &b.lock, 150 * KT_MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 150 * KT_MS);
    ck_assert_int_eq(kart_lock_release(&b.lock), 0);
    join(t2);
}
END_TEST

#define NWAITERS 4

typedef struct {
    kart_lock lock;
    kart_cond cond;
    int started; /* under lock */
    _Atomic int tids[NWAITERS];
    _Atomic int returned;
    _Atomic int errors;
} waitgroup;

static void *wait_once(void *p)
{
    waitgroup *g = p;
    if (kart_lock_acquire(&g->lock, -1) != 0) {
        atomic_fetch_add(&g->errors, 1);
        return NULL;
    }
    atomic_store(&g->tids[g->started++], gettid());
    int r = kart_cond_wait(&g->cond, &g->lock, 30000 * KT_MS);
    atomic_fetch_add(&g->returned, 1);
    if (r != 0 || kart_lock_release(&g->lock) != 0)
        atomic_fetch_add(&g->errors, 1);
    return NULL;
}

/* The state letter of one of our threads in /proc: 'S' while it sleeps. */
static char thread_state(int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] ? close_paren[2] : '?';
}

/* Waits until every waiter has registered and sleeps: after registering
 * under the lock, the only place a waiter sleeps is the condition's futex,
 * so no notify can reach one that is still on its way there. */
static void await_all_asleep(waitgroup *g)
{
    for (int i = 0; i < 10000; i++) {
        int asleep = 0;
        for (int w = 0; w < NWAITERS; w++) {
            int tid = atomic_load(&g->tids[w]);
            asleep += tid && thread_state(tid) == 'S';
        }
        if (asleep == NWAITERS)
            return;
        sleep_ms(1);
    }
    ck_abort_msg("waiters never went to sleep");
}

START_TEST(cond_notify_one_wakes_one_and_notify_all_the_rest)
{
#ifdef KART_FUTEX_PARKING_LOT
    /* The fallback's shared waits poll, so every sleeper sees a notify. */
    if (kinds[_i] & KART_SYNC_SHARED) {
        KART_SKIP("notify(1) on a shared condition under the parking lot");
    }
#endif
    static waitgroup g;
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(kart_lock_init(&g.lock, kinds[_i]), 0);
    ck_assert_int_eq(kart_cond_init(&g.cond, kinds[_i] & KART_SYNC_SHARED), 0);
    pthread_t t[NWAITERS];
    for (int i = 0; i < NWAITERS; i++)
        t[i] = spawn(wait_once, &g);
    await_all_asleep(&g);
    ck_assert_int_eq(kart_lock_acquire(&g.lock, -1), 0);
    ck_assert_int_eq(kart_cond_notify(&g.cond, &g.lock, 1), 0);
    ck_assert_int_eq(kart_lock_release(&g.lock), 0);
    await_int(&g.returned, 1);
    sleep_ms(100);
    ck_assert_int_eq(atomic_load(&g.returned), 1);

    ck_assert_int_eq(kart_lock_acquire(&g.lock, -1), 0);
    ck_assert_int_eq(kart_cond_notify(&g.cond, &g.lock, 2), 0);
    ck_assert_int_eq(kart_lock_release(&g.lock), 0);
    await_int(&g.returned, 3);
    sleep_ms(100);
    ck_assert_int_eq(atomic_load(&g.returned), 3);

    ck_assert_int_eq(kart_lock_acquire(&g.lock, -1), 0);
    ck_assert_int_eq(kart_cond_notify_all(&g.cond, &g.lock), 0);
    ck_assert_int_eq(kart_lock_release(&g.lock), 0);
    for (int i = 0; i < NWAITERS; i++)
        join(t[i]);
    ck_assert_int_eq(atomic_load(&g.returned), NWAITERS);
    ck_assert_int_eq(atomic_load(&g.errors), 0);
}
END_TEST

START_TEST(cond_notify_all_wakes_every_waiter)
{
    static waitgroup g;
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(kart_lock_init(&g.lock, 0), 0);
    ck_assert_int_eq(kart_cond_init(&g.cond, 0), 0);
    pthread_t t[NWAITERS];
    for (int i = 0; i < NWAITERS; i++)
        t[i] = spawn(wait_once, &g);
    await_all_asleep(&g);
    ck_assert_int_eq(kart_lock_acquire(&g.lock, -1), 0);
    ck_assert_int_eq(kart_cond_notify_all(&g.cond, &g.lock), 0);
    ck_assert_int_eq(kart_lock_release(&g.lock), 0);
    for (int i = 0; i < NWAITERS; i++)
        join(t[i]);
    ck_assert_int_eq(atomic_load(&g.returned), NWAITERS);
    ck_assert_int_eq(atomic_load(&g.errors), 0);
}
END_TEST

/* A robust lock's holder dies while a waiter waits: re-acquiring inside
 * the wait reports it, with the lock held. */
static void *notify_and_exit(void *p)
{
    flagbox *b = p;
    if (kart_lock_acquire(&b->lock, -1) != 0)
        return (void *)1;
    b->flag = 1;
    return (void *)(intptr_t)kart_cond_notify(&b->cond, &b->lock, 1);
}

START_TEST(cond_wait_reports_dead_holder_of_robust_lock)
{
    static flagbox b;
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(kart_lock_init(&b.lock, KART_SYNC_ROBUST), 0);
    ck_assert_int_eq(kart_cond_init(&b.cond, 0), 0);
    ck_assert_int_eq(kart_lock_acquire(&b.lock, -1), 0);
    pthread_t t = spawn(notify_and_exit, &b);
    ck_assert_int_eq(kart_cond_wait_for(&b.cond, &b.lock, flag_is_set, &b, 10000 * KT_MS),
                     -EOWNERDEAD);
    ck_assert_int_eq(join(t), 0);
    ck_assert_int_eq(kart_lock_held_by_me(&b.lock), 1);
    ck_assert_int_eq(kart_lock_consistent(&b.lock), 0);
    ck_assert_int_eq(kart_lock_release(&b.lock), 0);
}
END_TEST

/* While a waiter waits, one thread dies holding the lock and the next
 * releases it without making it consistent: the waiter cannot take it
 * back, and says so. */
static void *orphan_then_abandon(void *p)
{
    flagbox *b = p;
    if (join(spawn(acquire_and_exit, &b->lock)) != 0)
        return (void *)1;
    if (kart_lock_acquire(&b->lock, -1) != -EOWNERDEAD)
        return (void *)2;
    if (kart_cond_notify(&b->cond, &b->lock, 1) != 0)
        return (void *)3;
    return (void *)(intptr_t)kart_lock_release(&b->lock);
}

START_TEST(cond_wait_reports_unrecoverable_lock)
{
    static flagbox b;
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(kart_lock_init(&b.lock, KART_SYNC_ROBUST), 0);
    ck_assert_int_eq(kart_cond_init(&b.cond, 0), 0);
    ck_assert_int_eq(kart_lock_acquire(&b.lock, -1), 0);
    pthread_t t = spawn(orphan_then_abandon, &b);
    ck_assert_int_eq(kart_cond_wait(&b.cond, &b.lock, 10000 * KT_MS), -ENOTRECOVERABLE);
    ck_assert_int_eq(join(t), 0);
    ck_assert_int_eq(kart_lock_held_by_me(&b.lock), 0);
    ck_assert_int_eq(kart_cond_wait(&b.cond, &b.lock, 0), -EPERM);
}
END_TEST

/* ---- Condition: a bounded buffer ---- */

#define SLOTS 8
#define NPROD 4
#define NITEMS 20000

typedef struct {
    kart_lock lock;
    kart_cond not_full, not_empty;
    long buf[SLOTS];
    int head, count;
    long sum[NPROD];
    int taken[NPROD];
} bounded;

static void *produce(void *p)
{
    bounded *q = p;
    for (long i = 1; i <= NITEMS; i++) {
        kart_lock_acquire(&q->lock, -1);
        while (q->count == SLOTS)
            kart_cond_wait(&q->not_full, &q->lock, -1);
        q->buf[(q->head + q->count++) % SLOTS] = i;
        kart_cond_notify(&q->not_empty, &q->lock, 1);
        kart_lock_release(&q->lock);
    }
    return NULL;
}

typedef struct {
    bounded *q;
    int me;
} consumer_arg;

static bool has_item(void *p)
{
    return ((bounded *)p)->count > 0;
}

static void *consume(void *p)
{
    consumer_arg *a = p;
    bounded *q = a->q;
    for (int i = 0; i < NITEMS; i++) {
        kart_lock_acquire(&q->lock, -1);
        if (kart_cond_wait_for(&q->not_empty, &q->lock, has_item, q, -1) != 0)
            return (void *)1;
        q->sum[a->me] += q->buf[q->head];
        q->head = (q->head + 1) % SLOTS;
        q->count--;
        q->taken[a->me]++;
        kart_cond_notify(&q->not_full, &q->lock, 1);
        kart_lock_release(&q->lock);
    }
    return NULL;
}

START_TEST(cond_bounded_buffer_passes_every_item)
{
    static bounded q;
    memset(&q, 0, sizeof(q));
    ck_assert_int_eq(kart_lock_init(&q.lock, 0), 0);
    ck_assert_int_eq(kart_cond_init(&q.not_full, 0), 0);
    ck_assert_int_eq(kart_cond_init(&q.not_empty, 0), 0);
    pthread_t pt[NPROD], ct[NPROD];
    consumer_arg ca[NPROD];
    for (int i = 0; i < NPROD; i++) {
        ca[i] = (consumer_arg){.q = &q, .me = i};
        ct[i] = spawn(consume, &ca[i]);
        pt[i] = spawn(produce, &q);
    }
    for (int i = 0; i < NPROD; i++) {
        ck_assert_int_eq(join(pt[i]), 0);
        ck_assert_int_eq(join(ct[i]), 0);
    }
    long sum = 0;
    for (int i = 0; i < NPROD; i++) {
        ck_assert_int_eq(q.taken[i], NITEMS);
        sum += q.sum[i];
    }
    ck_assert_int_eq(sum, (long)NPROD * NITEMS * (NITEMS + 1) / 2);
    ck_assert_int_eq(q.count, 0);
}
END_TEST

/* ---- Condition: between processes ---- */

#define ROUNDS 5000

typedef struct {
    kart_lock lock;
    kart_cond cond;
    int turn; /* 0: parent, 1: child */
    int hits[2];
} pingpong;

static int play(pingpong *g, int me)
{
    for (int i = 0; i < ROUNDS; i++) {
        if (kart_lock_acquire(&g->lock, -1) != 0)
            return 1;
        while (g->turn != me)
            if (kart_cond_wait(&g->cond, &g->lock, 10000 * KT_MS) != 0)
                return 2;
        g->hits[me]++;
        g->turn = !me;
        if (kart_cond_notify(&g->cond, &g->lock, 1) != 0 || kart_lock_release(&g->lock) != 0)
            return 3;
    }
    return 0;
}

START_TEST(shared_cond_ping_pong_with_child)
{
    pingpong *g = shm(sizeof(*g));
    ck_assert_int_eq(kart_lock_init(&g->lock, shared_kinds[_i]), 0);
    ck_assert_int_eq(kart_cond_init(&g->cond, KART_SYNC_SHARED), 0);
    pid_t pid = kt_fork();
    if (pid == 0)
        _exit(play(g, 1));
    ck_assert_int_eq(play(g, 0), 0);
    expect_exit(pid, 0);
    ck_assert_int_eq(g->hits[0], ROUNDS);
    ck_assert_int_eq(g->hits[1], ROUNDS);
    ck_assert_int_eq(g->turn, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lock");
    TCase *tc = tcase_create("lock");
    tcase_add_test(tc, lock_init_rejects_null_and_unknown_flags);
    tcase_add_test(tc, lock_calls_reject_null);
    tcase_add_loop_test(tc, lock_acquire_release_reports_state, 0, NKINDS);
    tcase_add_loop_test(tc, lock_release_of_free_lock_is_eperm, 0, NKINDS);
    tcase_add_loop_test(tc, lock_acquire_by_holder_is_edeadlk, 0, NKINDS);
    tcase_add_loop_test(tc, lock_destroy_of_held_lock_releases_it, 0, NKINDS);
    tcase_add_loop_test(tc, lock_held_elsewhere_is_etimedout_at_0_and_in_time, 0, NKINDS);
    tcase_add_loop_test(tc, lock_blocked_acquirer_gets_it_on_release, 0, NKINDS);
    tcase_add_loop_test(tc, lock_release_from_another_thread, 0, NKINDS);
    tcase_add_loop_test(tc, lock_first_acquire_of_a_new_thread_records_it, 0, NKINDS);
    tcase_add_loop_test(tc, lock_timed_acquire_survives_signals, 0, NKINDS);
    tcase_add_loop_test(tc, lock_stress_counts_exactly, 0, NKINDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("robust");
    tcase_add_test(tc, robust_lock_of_exited_thread_is_eownerdead);
    tcase_add_test(tc, robust_lock_released_inconsistent_is_unrecoverable);
    tcase_add_test(tc, consistent_errors);
    tcase_add_test(tc, robust_lock_of_killed_process_is_eownerdead);
    tcase_add_test(tc, robust_lock_of_killed_process_unrecoverable_everywhere);
    suite_add_tcase(s, tc);

    tc = tcase_create("shared");
    tcase_add_loop_test(tc, shared_lock_counts_exactly_across_fork, 0, 2);
    tcase_add_loop_test(tc, shared_lock_in_separately_mapped_file, 0, 2);
    tcase_add_loop_test(tc, shared_cond_ping_pong_with_child, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("rlock");
    tcase_add_test(tc, rlock_calls_reject_null_and_unknown_flags);
    tcase_add_loop_test(tc, rlock_depth_and_owner, 0, NKINDS);
    tcase_add_test(tc, robust_rlock_of_exited_thread_is_eownerdead);
    tcase_add_test(tc, rlock_depth_past_int_max_is_eoverflow);
    tcase_add_loop_test(tc, rlock_stress_with_nesting_counts_exactly, 0, NKINDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("cond");
    tcase_add_test(tc, cond_init_rejects_null_and_unknown_flags);
    tcase_add_test(tc, cond_calls_reject_null_and_bad_n);
    tcase_add_loop_test(tc, cond_without_lock_is_eperm, 0, NKINDS);
    tcase_add_loop_test(tc, cond_wait_times_out_with_lock_held_again, 0, NKINDS);
    tcase_add_loop_test(tc, cond_wait_for_checks_pred_and_times_out, 0, NKINDS);
    tcase_add_loop_test(tc, cond_wait_for_returns_when_pred_becomes_true, 0, NKINDS);
    tcase_add_test(tc, cond_wait_survives_signals);
    tcase_add_loop_test(tc, cond_notify_one_wakes_one_and_notify_all_the_rest, 0, NKINDS);
    tcase_add_test(tc, cond_notify_all_wakes_every_waiter);
    tcase_add_test(tc, cond_wait_reports_dead_holder_of_robust_lock);
    tcase_add_test(tc, cond_wait_reports_unrecoverable_lock);
    tcase_add_test(tc, cond_bounded_buffer_passes_every_item);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

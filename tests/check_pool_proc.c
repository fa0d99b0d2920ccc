/* Description: process pools of kart/pool.h — tasks and maps whose
 * arguments and results travel through the shared arena, the errors of
 * each function that differ for processes (pointer tasks, a full arena),
 * initializer and max tasks per child in forked workers, close, terminate
 * and join, and dead workers: a task that is killed, crashes or exits
 * fails with KART_EWORKERDIED, its worker is replaced, and the pool goes
 * on; then many rounds of maps, imaps and submits while a thread kills
 * workers at random, each bounded in time (the pool must never hang). */
#include "testutil.h"
#include "pool_testutil.h"

#include "fault.h"
#include "pool_private.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define MS KT_MS

/* The start method of the workers: the tests that apply run once per
 * method (_i: 0 fork, 1 spawn, 2 forkserver). */
static int g_method;

static const kart_context *ctx(void)
{
    static const kart_start_method m[] = {KART_START_FORK, KART_START_SPAWN, KART_START_FORKSERVER};
    const kart_context *c;
    ck_assert_int_eq(kart_context_get(m[g_method], &c), 0);
    return c;
}

/* Shared with the workers: a named segment, mapped before the pool
 * starts them; spawned workers (fresh execs, which inherit no mapping)
 * open it by the name this process puts in the environment. */
typedef struct shared {
    _Atomic int gate, started, inits;
} shared;
static shared *sh;
static char sh_name[64];
#define SH_ENV "KART_CHECK_POOL_PROC_SHARED"

static void unlink_shared(void)
{
    shm_unlink(sh_name);
}

static void map_shared(void)
{
    snprintf(sh_name, sizeof(sh_name), "/kart-check-pool-proc-%d", (int)getpid());
    shm_unlink(sh_name);
    int fd = shm_open(sh_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, sizeof(*sh)), 0);
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(sh, MAP_FAILED);
    close(fd);
    ck_assert_int_eq(setenv(SH_ENV, sh_name, 1), 0);
    atexit(unlink_shared);
}

/* The shared state, in a task (a spawned worker opens it first). */
static shared *S(void)
{
    if (!sh) {
        const char *name = getenv(SH_ENV);
        int fd = name ? shm_open(name, O_RDWR | O_CLOEXEC, 0) : -1;
        if (fd < 0)
            _exit(99);
        sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (sh == MAP_FAILED)
            _exit(99);
    }
    return sh;
}

static kart_pool *make(int workers)
{
    kart_pool *p;
    kart_pool_options o = {.kind = KART_POOL_PROCESSES, .workers = workers, .context = ctx()};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    return p;
}

/* ---- tasks ---- */

static uint64_t spin_work(uint64_t x, int steps)
{
    for (int i = 0; i < steps; i++)
        x = (x * 6364136223846793005u + 1442695040888963407u) ^ (x >> 29);
    return x;
}

static int t_square(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    memcpy(&x, arg, 8);
    x *= x;
    memcpy(res, &x, 8);
    *res_len = 8;
    return 0;
}
KART_POOL_TASK(t_square)

static int t_pid(const void *arg, size_t len, void *res, size_t *res_len)
{
    pid_t p = getpid();
    memcpy(res, &p, sizeof(p));
    *res_len = sizeof(p);
    return 0;
}
KART_POOL_TASK(t_pid)

static int t_fail(const void *arg, size_t len, void *res, size_t *res_len)
{
    *res_len = 0;
    return -EIO;
}
KART_POOL_TASK(t_fail)

/* How a task leaves: 0 SIGKILL, 1 SIGSEGV, 2 _exit(3). */
static int t_die(const void *arg, size_t len, void *res, size_t *res_len)
{
    int how;
    memcpy(&how, arg, sizeof(how));
    if (how == 0)
        raise(SIGKILL);
    else if (how == 1) {
        signal(SIGSEGV, SIG_DFL); /* a plain crash, not a sanitizer's report */
        raise(SIGSEGV);
    }
    _exit(3);
}
KART_POOL_TASK(t_die)

static int t_block(const void *arg, size_t len, void *res, size_t *res_len)
{
    atomic_fetch_add(&S()->started, 1);
    while (!atomic_load(&S()->gate))
        usleep(200);
    *res_len = 0;
    return 0;
}
KART_POOL_TASK(t_block)

/* Reverses its argument bytes into the result (large payloads). */
static int t_reverse(const void *arg, size_t len, void *res, size_t *res_len)
{
    if (*res_len < len)
        return -ENOSPC;
    for (size_t i = 0; i < len; i++)
        ((unsigned char *)res)[i] = ((const unsigned char *)arg)[len - 1 - i];
    *res_len = len;
    return 0;
}
KART_POOL_TASK(t_reverse)

static int t_item(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    memcpy(&x, arg, 8);
    x = spin_work(x, 200);
    memcpy(res, &x, 8);
    return 0;
}
KART_POOL_TASK(t_item)

/* Some microseconds of work: the killer finds workers busy. */
static int t_heavy(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    memcpy(&x, arg, 8);
    x = spin_work(x, 5000);
    memcpy(res, &x, 8);
    return 0;
}
KART_POOL_TASK(t_heavy)

static void await_started(int n)
{
    for (int i = 0; i < 20000 && atomic_load(&sh->started) < n; i++)
        usleep(500);
    ck_assert_int_ge(atomic_load(&sh->started), n);
}

/* ---- basics ---- */

START_TEST(proc_submit_apply_map)
{
    g_method = _i;
    kart_pool *p = make(2);
    ck_assert_int_eq(pool_kind(p), KART_POOL_PROCESSES);
    uint64_t x = 11, y = 0;
    size_t len = 8;
    ck_assert_int_eq(pool_apply(p, t_square, &x, 8, &y, &len), 0);
    ck_assert_uint_eq(y, 121);
    pid_t pid;
    len = sizeof(pid);
    ck_assert_int_eq(pool_apply(p, t_pid, NULL, 0, &pid, &len), 0);
    ck_assert_int_ne(pid, getpid());
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(p, t_fail, NULL, 0, &f), 0);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    ck_assert_int_eq(fut_error(f), -EIO);
    kart_future_free(f);
    size_t n = 30000;
    uint64_t *in = malloc(n * 8), *out = calloc(n, 8);
    for (size_t i = 0; i < n; i++)
        in[i] = i;
    static const size_t chunks[] = {1, 0, 7, 30001};
    for (int c = 0; c < 4; c++) {
        memset(out, 0, n * 8);
        ck_assert_int_eq(pool_map(p, t_item, in, 8, out, 8, n, chunks[c]), 0);
        KT_ASSERT_EACH(i, n, out[i] == spin_work(i, 200));
    }
    free(in);
    free(out);
    ck_assert_int_eq(kart_pool_join(p, 0), -EBUSY);
    ck_assert_int_eq(kart_pool_close(p), 0);
    ck_assert_int_eq(kart_pool_join(p, 10000 * MS), 0);
    kart_pool_free(p);
}
END_TEST

static int t_ptr(void *arg, void **res)
{
    return 0;
}

START_TEST(proc_pointer_tasks_unsupported)
{
    g_method = _i;
    kart_pool *p = make(1);
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit_ptr(p, t_ptr, NULL, &f), -ENOTSUP);
    kart_pool_free(p);
}
END_TEST

START_TEST(proc_large_arguments_and_results)
{
    g_method = _i;
    kart_pool *p;
    kart_pool_options o = {
        .kind = KART_POOL_PROCESSES, .workers = 2, .result_size = 200000, .context = ctx()};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    size_t n = 150000;
    unsigned char *a = malloc(n), *r = malloc(n);
    for (size_t i = 0; i < n; i++)
        a[i] = (unsigned char)(i * 31);
    for (int round = 0; round < 20; round++) {
        size_t len = n;
        ck_assert_int_eq(pool_apply(p, t_reverse, a, n, r, &len), 0);
        ck_assert_uint_eq(len, n);
        KT_ASSERT_EACH(i, n, r[i] == a[n - 1 - i]);
    }
    free(a);
    free(r);
    kart_pool_free(p);
}
END_TEST

START_TEST(proc_arena_full_is_enomem)
{
    g_method = _i;
    kart_pool *p;
    kart_pool_options o = {
        .kind = KART_POOL_PROCESSES, .workers = 1, .arena_size = 1 << 20, .context = ctx()};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    size_t n = 1 << 20;
    uint64_t *in = calloc(n, 8), *out = calloc(n, 8);
    ck_assert_int_eq(pool_map(p, t_item, in, 8, out, 8, n, 0), -ENOMEM);
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(p, t_reverse, in, 2 << 20, &f), -ENOMEM);
    /* kart_pool_submit_many: four arguments of 512 KiB do not all fit (the
     * arena has 1 MiB): nothing queued, every entry of out cleared, and
     * the slots and blocks of the ones that did fit given back. */
    kart_future *fs[4] = {f, f, f, f};
    ck_assert_int_eq(kart_pool_submit_many(p, t_reverse, in, 512 << 10, 4, fs), -ENOMEM);
    KT_ASSERT_EACH(i, 4, fs[i] == NULL);
    /* and it still works within bounds */
    ck_assert_int_eq(kart_pool_submit_many(p, t_reverse, in, 8, 4, fs), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(kart_future_wait(fs[i], 10000 * MS), 0);
        kart_future_free(fs[i]);
    }
    ck_assert_int_eq(pool_map(p, t_item, in, 8, out, 8, 1000, 0), 0);
    free(in);
    free(out);
    kart_pool_free(p);
}
END_TEST

typedef struct src_state {
    uint64_t next, n;
} src_state;

static int src_fn(void *ctx, void *item)
{
    src_state *s = ctx;
    if (s->next == s->n)
        return 0;
    memcpy(item, &s->next, 8);
    s->next++;
    return 1;
}

START_TEST(proc_imap_both_orders)
{
    g_method = _i;
    kart_pool *p = make(2);
    for (unsigned flags = 0; flags < 2; flags++) {
        src_state s = {0, 2000};
        kart_pool_iter *it;
        ck_assert_int_eq(kart_pool_imap(p, t_item, src_fn, &s, 8, 8, 3, flags, &it), 0);
        uint64_t sum = 0, want = 0;
        for (uint64_t i = 0; i < 2000; i++) {
            uint64_t y;
            ck_assert_int_eq(iter_next(it, -1, &y), 1);
            if (!flags)
                ck_assert_uint_eq(y, spin_work(i, 200));
            sum += y;
            want += spin_work(i, 200);
        }
        ck_assert_uint_eq(sum, want);
        uint64_t y;
        ck_assert_int_eq(iter_next(it, -1, &y), 0);
        kart_pool_iter_free(it);
    }
    kart_pool_free(p);
}
END_TEST

/* ---- worker lives ---- */

/* Runs in a child forked from the pool's watcher thread while the test's
 * thread may hold Check's locks: no ck_assert here (see pool.h on fork). */
static void init_fn(void *arg)
{
    if (arg && memcmp(arg, "init", 4) == 0)
        atomic_fetch_add(&S()->inits, 1);
}
KART_POOL_TASK(init_fn)

START_TEST(proc_initializer_and_max_tasks)
{
    g_method = _i;
    map_shared();
    kart_pool *p;
    kart_pool_options o = {.kind = KART_POOL_PROCESSES,
                           .workers = 2,
                           .initializer = init_fn,
                           .initarg = "init",
                           .initarg_size = 4,
                           .context = ctx(),
                           .max_tasks_per_child = 3};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    pid_t pids[30];
    for (int i = 0; i < 30; i++) {
        size_t len = sizeof(pid_t);
        ck_assert_int_eq(pool_apply(p, t_pid, NULL, 0, &pids[i], &len), 0);
    }
    for (int i = 0; i < 30; i++) {
        int same = 0;
        for (int k = 0; k < 30; k++)
            same += pids[k] == pids[i];
        ck_assert_int_le(same, 3);
    }
    ck_assert_int_ge(atomic_load(&sh->inits), 10);
    /* many queued at once: none is lost to a worker leaving */
    kart_future *f[100];
    for (uint64_t i = 0; i < 100; i++)
        ck_assert_int_eq(kart_pool_submit(p, t_square, &i, 8, &f[i]), 0);
    for (uint64_t i = 0; i < 100; i++) {
        uint64_t y;
        size_t len = 8;
        ck_assert_int_eq(fut_result(f[i], 10000 * MS, &y, &len), 0);
        ck_assert_uint_eq(y, i * i);
        kart_future_free(f[i]);
    }
    size_t n = 300;
    uint64_t in[300], out[300];
    for (size_t i = 0; i < n; i++)
        in[i] = i;
    ck_assert_int_eq(pool_map(p, t_item, in, 8, out, 8, n, 1), 0);
    KT_ASSERT_EACH(i, n, out[i] == spin_work(i, 200));
    kart_pool_close(p);
    ck_assert_int_eq(kart_pool_join(p, 10000 * MS), 0);
    kart_pool_free(p);
}
END_TEST

/* The worker that finishes a job is killed after winning the finish and
 * before setting the job's done bit (a window of two instructions that
 * the random kills below hit about once in a few hundred runs under
 * ThreadSanitizer): the job was computed in full, so it must still be
 * published with its results, and its waiters must not hang. A single
 * task, an imap chunk and a map, one kill each. */
START_TEST(proc_finisher_killed_before_done_bit)
{
    /* One count for this process and the workers, so that the first
     * worker to get there dies, and only that one; this process (its
     * watcher thread) never does. */
    ck_assert_int_eq(kart__fault_share(), 0); /* before the forks */
    ck_assert_int_eq(kart__fault_kill_in_child(KART__FP_pool_finish_claimed, 1), 0);
    kart_pool *p = make(2);
    uint64_t x = 7, r = 0;
    size_t len = 8;
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &f), 0);
    ck_assert_int_eq(fut_result(f, 10000 * MS, &r, &len), 0);
    ck_assert_uint_eq(r, 49);
    ck_assert_int_eq(kart__fault_fired(KART__FP_pool_finish_claimed), 1); /* it died there */
    kart_future_free(f);

    ck_assert_int_eq(kart__fault_kill_in_child(KART__FP_pool_finish_claimed, 1), 0);
    src_state s = {0, 3};
    kart_pool_iter *it;
    ck_assert_int_eq(kart_pool_imap(p, t_item, src_fn, &s, 8, 8, 1, 0, &it), 0);
    for (uint64_t i = 0; i < 3; i++) {
        ck_assert_int_eq(iter_next(it, 10000 * MS, &r), 1);
        ck_assert_uint_eq(r, spin_work(i, 200));
    }
    ck_assert_int_eq(iter_next(it, 10000 * MS, &r), 0);
    kart_pool_iter_free(it);
    ck_assert_int_eq(kart__fault_fired(KART__FP_pool_finish_claimed), 2);

    ck_assert_int_eq(kart__fault_kill_in_child(KART__FP_pool_finish_claimed, 1), 0);
    uint64_t in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = (uint64_t)i;
    ck_assert_int_eq(pool_map(p, t_item, in, 8, out, 8, 100, 7), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(out[i], spin_work((uint64_t)i, 200));
    ck_assert_int_eq(kart__fault_fired(KART__FP_pool_finish_claimed), 3);

    kart_pool_close(p);
    ck_assert_int_eq(kart_pool_join(p, 10000 * MS), 0);
    kart_pool_free(p);
    kart__fault_reset();
}
END_TEST

/* The node's sleeper count, and a wait for it to read n: waits on a
 * loaded machine (a worker process starting, under a sanitizer) can take
 * far longer than the usual milliseconds, hence the ten seconds. */
static uint32_t sleepers(kart_pool *p)
{
    return atomic_load(&p->nodes[0].sleepers);
}

static bool await_sleepers(kart_pool *p, uint32_t n)
{
    for (int i = 0; i < 2000; i++) {
        if (sleepers(p) == n)
            return true;
        usleep(5000);
    }
    return false;
}

/* A submitter that saw the worker among the sleepers, and wakes it only
 * after another submit's wake-up has reached it (and it cleared the
 * node's `waking` flag), sets the flag again and wakes nobody. The worker
 * must not then sleep with the flag set: every later submit would see a
 * wake-up in flight, wake nobody, and its task would wait forever. The
 * first submitter (a thread) is held between its look at the sleepers
 * and its wake-up while the main thread's submit wakes the worker. */
typedef struct late_submit {
    kart_pool *p;
    int rc;
} late_submit;

static void *late_submitter(void *arg)
{
    late_submit *ls = arg;
    uint64_t x = 3, r;
    size_t len = 8;
    kart_future *f;
    ls->rc = kart_pool_submit(ls->p, t_square, &x, 8, &f); /* held in the wake-up */
    if (ls->rc == 0) {
        ls->rc = fut_result(f, 5000 * MS, &r, &len);
        if (ls->rc == 0 && r != 9)
            ls->rc = -EPROTO;
        kart_future_free(f);
    }
    return NULL;
}

/* Sleeps for its argument's milliseconds; returns it. */
static int t_nap(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t ms;
    memcpy(&ms, arg, 8);
    usleep((useconds_t)ms * 1000);
    memcpy(res, &ms, 8);
    *res_len = 8;
    return 0;
}

START_TEST(proc_wakeup_flag_never_left_set)
{
    kart_pool *p = make(1);
    uint64_t x = 300, r;
    size_t len = 8;
    kart_future *f;
    /* The worker falls asleep (waited for: a fixed 100 ms was not always
     * enough for a new worker process on a loaded machine). */
    ck_assert_msg(await_sleepers(p, 1), "sleepers %u, not 1", sleepers(p));
    ck_assert_int_eq(kart__fault_delay(KART__FP_pool_wake_sleeper, 1, 150 * MS), 0);
    late_submit ls = {p, -1};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, late_submitter, &ls), 0);
    /* It is held once it took the pause: its task is queued, the worker
     * asleep. */
    for (int i = 0; i < 2000 && kart__fault_fired(KART__FP_pool_wake_sleeper) == 0; i++)
        usleep(1000);
    ck_assert_int_eq(kart__fault_fired(KART__FP_pool_wake_sleeper), 1);
    /* This wake-up reaches the worker, which runs both tasks; the held
     * one's comes while it naps in the second. */
    ck_assert_int_eq(kart_pool_submit(p, t_nap, &x, 8, &f), 0);
    ck_assert_int_eq(fut_result(f, 5000 * MS, &r, &len), 0);
    ck_assert_uint_eq(r, 300);
    kart_future_free(f);
    pthread_join(t, NULL);
    ck_assert_int_eq(ls.rc, 0);
    ck_assert_int_eq(kart__fault_fired(KART__FP_pool_wake_sleeper), 1); /* it was held */
    /* The late wake-up found nobody asleep. Once the worker sleeps again,
     * a submit must still wake it. */
    ck_assert_msg(await_sleepers(p, 1), "sleepers %u, not 1", sleepers(p));
    x = 6;
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &f), 0);
    ck_assert_msg(fut_result(f, 2000 * MS, &r, &len) == 0, "a submit woke nobody");
    ck_assert_uint_eq(r, 36);
    kart_future_free(f);
    kart_pool_close(p);
    ck_assert_int_eq(kart_pool_join(p, 10000 * MS), 0);
    kart_pool_free(p);
}
END_TEST

/* A worker killed while asleep leaves its node's sleeper count as it was
 * before it slept: the watcher takes it off. (Left counted, every later
 * submit would make a wake-up for nobody, and on several nodes send it
 * away from a node whose workers do sleep.) */
START_TEST(proc_worker_killed_asleep_leaves_the_count)
{
    kart_pool *p = make(2);
    ck_assert_int_eq(p->nnodes, 1);
    ck_assert_msg(await_sleepers(p, 2), "sleepers %u, not 2", sleepers(p));
    kart_pool_worker_info info;
    ck_assert_int_eq(kart_pool_worker_info_get(p, 0, &info), 0);
    ck_assert_int_eq(kill(info.pid, SIGKILL), 0);
    /* Replaced; the new worker falls asleep too: two sleepers, not three. */
    for (int i = 0; i < 400; i++) {
        kart_pool_worker_info now;
        ck_assert_int_eq(kart_pool_worker_info_get(p, 0, &now), 0);
        if (now.generation > info.generation && now.pid > 0 && now.pid != info.pid)
            break;
        usleep(5000);
    }
    ck_assert_msg(await_sleepers(p, 2), "sleepers %u, not 2", sleepers(p));
    usleep(50000);
    ck_assert_uint_eq(sleepers(p), 2);
    uint64_t x = 4, r;
    size_t len = 8;
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &f), 0);
    ck_assert_int_eq(fut_result(f, 5000 * MS, &r, &len), 0);
    ck_assert_uint_eq(r, 16);
    kart_future_free(f);
    kart_pool_close(p);
    ck_assert_int_eq(kart_pool_join(p, 10000 * MS), 0);
    kart_pool_free(p);
}
END_TEST

START_TEST(proc_dead_worker_fails_its_task)
{
    g_method = _i;
    kart_pool *p = make(2);
    for (int how = 0; how < 3; how++) {
        kart_pool_worker_info before[2];
        for (int w = 0; w < 2; w++)
            kart_pool_worker_info_get(p, w, &before[w]);
        kart_future *f;
        ck_assert_int_eq(kart_pool_submit(p, t_die, &how, sizeof(how), &f), 0);
        ck_assert_int_eq(kart_future_wait(f, 10000 * MS), 0);
        ck_assert_int_eq(fut_error(f), KART_EWORKERDIED);
        size_t len = 0;
        ck_assert_int_eq(fut_result(f, 0, NULL, &len), KART_EWORKERDIED);
        kart_future_free(f);
        /* the pool goes on, with a new worker in the dead one's place */
        uint64_t x = 3, y;
        len = 8;
        ck_assert_int_eq(pool_apply(p, t_square, &x, 8, &y, &len), 0);
        ck_assert_uint_eq(y, 9);
        int gens = 0;
        for (int w = 0; w < 2; w++) {
            kart_pool_worker_info info;
            kart_pool_worker_info_get(p, w, &info);
            gens += info.generation - before[w].generation;
        }
        ck_assert_int_eq(gens, 1);
    }
    kart_pool_free(p);
}
END_TEST

START_TEST(proc_terminate_kills_running)
{
    g_method = _i;
    map_shared();
    kart_pool *p = make(2);
    kart_future *run, *queued[4];
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &run), 0);
    await_started(1);
    uint64_t x = 1;
    kart_future *b2;
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &b2), 0);
    await_started(2);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &queued[i]), 0);
    ck_assert_int_eq(kart_pool_terminate(p), 0);
    ck_assert_int_eq(kart_pool_join(p, 10000 * MS), 0);
    ck_assert_int_eq(fut_error(run), -ECANCELED);
    ck_assert_int_eq(fut_error(b2), -ECANCELED);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(fut_error(queued[i]), -ECANCELED);
        kart_future_free(queued[i]);
    }
    kart_future_free(run);
    kart_future_free(b2);
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &run), -ESHUTDOWN);
    kart_pool_free(p);
}
END_TEST

START_TEST(proc_cancel_and_join_timeout)
{
    g_method = _i;
    map_shared();
    kart_pool *p = make(1);
    kart_future *run, *q;
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &run), 0);
    await_started(1);
    uint64_t x = 2;
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &q), 0);
    ck_assert_int_eq(kart_future_cancel(q), 1);
    ck_assert_int_eq(kart_future_wait(q, 10000 * MS), 0);
    ck_assert_int_eq(fut_error(q), -ECANCELED);
    ck_assert_int_eq(kart_future_cancel(run), 0);
    kart_pool_close(p);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_pool_join(p, 30 * MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 30 * MS);
    atomic_store(&sh->gate, 1);
    ck_assert_int_eq(kart_pool_join(p, 10000 * MS), 0);
    ck_assert_int_eq(fut_error(run), 0);
    kart_future_free(run);
    kart_future_free(q);
    kart_pool_free(p);
}
END_TEST

/* ---- killing workers at random ---- */

typedef struct killer {
    kart_pool *p;
    _Atomic int stop;
    int kills;
    unsigned seed;
} killer;

static void *killer_main(void *arg)
{
    killer *k = arg;
    while (!atomic_load(&k->stop)) {
        /* A spawned worker takes an exec (and, under a sanitizer, its
         * set-up) to start: killed every few milliseconds, none would
         * live to run a task, so that method gets fifty times the pause. */
        useconds_t pace = g_method == 1 ? 50 : 1;
        usleep(pace * (1000 + rand_r(&k->seed) % 4000));
        int w = (int)(rand_r(&k->seed) % (unsigned)kart_pool_workers(k->p));
        kart_pool_worker_info info;
        if (kart_pool_worker_info_get(k->p, w, &info) == 0 && info.pid > 0 &&
            info.pid != getpid() && kill(info.pid, SIGKILL) == 0)
            k->kills++;
    }
    return NULL;
}

START_TEST(proc_random_kills_never_hang)
{
    g_method = _i;
    kart_pool *p = make(3);
    killer k = {.p = p, .seed = 12345u + (unsigned)getpid()};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, killer_main, &k), 0);
    size_t n = 2000;
    uint64_t *in = malloc(n * 8), *out = malloc(n * 8);
    for (size_t i = 0; i < n; i++)
        in[i] = i;
    int ok = 0, died = 0, item_died = 0;
    int64_t t0 = kart_now_ns();
    for (int round = 0; round < 60 && kart_now_ns() - t0 < 8000 * MS; round++) {
        /* a map: whole, or failed with the dead worker's error */
        kart_future *f;
        ck_assert_int_eq(pool_map_async(p, t_heavy, in, 8, out, 8, n, round % 3 ? 1 : 0, &f), 0);
        ck_assert_int_eq(kart_future_wait(f, 20000 * MS), 0);
        int e = fut_error(f);
        ck_assert_msg(e == 0 || e == KART_EWORKERDIED, "map: %s", kart_err_name(e));
        if (e == 0) {
            ok++;
            KT_ASSERT_EACH(i, n, out[i] == spin_work(i, 5000));
        } else {
            died++;
        }
        kart_future_free(f);
        /* an imap: each item right, or failed with the dead worker's error */
        src_state s = {0, 500};
        kart_pool_iter *it;
        ck_assert_int_eq(kart_pool_imap(p, t_item, src_fn, &s, 8, 8, 2, 0, &it), 0);
        for (uint64_t i = 0; i < 500; i++) {
            uint64_t y;
            int rc = iter_next(it, 20000 * MS, &y);
            ck_assert_msg(rc == 1 || rc == KART_EWORKERDIED, "imap: %s", kart_err_name(rc));
            if (rc == 1)
                ck_assert_uint_eq(y, spin_work(i, 200));
            else
                item_died++;
        }
        uint64_t y;
        ck_assert_int_eq(iter_next(it, 20000 * MS, &y), 0);
        kart_pool_iter_free(it);
        /* single tasks */
        kart_future *fs[16];
        for (uint64_t i = 0; i < 16; i++)
            ck_assert_int_eq(kart_pool_submit(p, t_square, &i, 8, &fs[i]), 0);
        for (uint64_t i = 0; i < 16; i++) {
            uint64_t r = 0;
            size_t len = 8;
            int rc = fut_result(fs[i], 20000 * MS, &r, &len);
            ck_assert_msg(rc == 0 || rc == KART_EWORKERDIED, "submit: %s", kart_err_name(rc));
            if (rc == 0)
                ck_assert_uint_eq(r, i * i);
            kart_future_free(fs[i]);
        }
    }
    atomic_store(&k.stop, 1);
    pthread_join(t, NULL);
    ck_assert_int_gt(k.kills, 0);
    ck_assert_int_gt(ok + died, 0);
    ck_assert_int_ge(item_died, 0);
    /* after the storm, everything works again */
    ck_assert_int_eq(pool_map(p, t_item, in, 8, out, 8, n, 1), 0);
    KT_ASSERT_EACH(i, n, out[i] == spin_work(i, 200));
    kart_pool_close(p);
    ck_assert_int_eq(kart_pool_join(p, 10000 * MS), 0);
    free(in);
    free(out);
    kart_pool_free(p);
}
END_TEST


/* Issue 16: workers that exit with a non-zero status after close (as
 * valgrind's --error-exitcode makes them) are not replaced once nothing
 * is left to run: the join returns, each worker died once. A worker that
 * dies that way while a task is still queued is replaced, and the task
 * runs. */
START_TEST(proc_closed_pool_replaces_nobody)
{
    map_shared();
    kart__pool_drained_exit = 3;
    kart_pool *p = make(2);
    uint64_t x = 5, r = 0;
    size_t len = 8;
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pool_apply(p, t_square, &x, 8, &r, &len), 0);
        ck_assert_int_eq(r, 25);
    }
    ck_assert_int_eq(kart_pool_close(p), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_pool_join(p, 10000 * MS), 0);
    ck_assert_int_lt(kart_now_ns() - t0, 5000 * MS);
    ck_assert_int_eq(atomic_load(&p->sh->deaths), 2);
    kart_pool_free(p);

    /* Work left: the second task waits behind the first on one worker. */
    p = make(1);
    kart_future *run, *q;
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &run), 0);
    await_started(1);
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &q), 0);
    ck_assert_int_eq(kart_pool_close(p), 0);
    kill(atomic_load(&p->workers[0].pid), SIGKILL);
    ck_assert_int_eq(kart_future_wait(q, 10000 * MS), 0);
    ck_assert_int_eq(fut_error(q), 0);
    ck_assert_int_eq(fut_error(run), KART_EWORKERDIED);
    ck_assert_int_eq(kart_pool_join(p, 10000 * MS), 0);
    ck_assert_int_eq(atomic_load(&p->sh->deaths), 2);
    kart_future_free(run);
    kart_future_free(q);
    kart_pool_free(p);
    kart__pool_drained_exit = 0;
}
END_TEST

/* Not registered with KART_POOL_TASK: only forked workers can run it. */
static int t_unregistered(const void *arg, size_t len, void *res, size_t *res_len)
{
    memcpy(res, arg, 8);
    *res_len = 8;
    return 0;
}

static void init_unregistered(void *arg)
{
    (void)arg;
}

/* Spawned workers run tasks by name: an unregistered function is refused
 * by every call before anything is queued (fork runs it), and so is an
 * unregistered initializer, and an initarg that is a pointer. */
START_TEST(proc_unregistered_task_refused)
{
    g_method = _i;
    kart_pool *p = make(1);
    uint64_t x = 2, y = 0;
    size_t len = 8;
    int te = 1, want = _i == 0 ? 0 : -ENOENT;
    kart_future *f = NULL;
    ck_assert_int_eq(kart_pool_submit(p, t_unregistered, &x, 8, &f), want);
    if (f) {
        ck_assert_int_eq(fut_result(f, 10000 * MS, &y, &len), 0);
        ck_assert_uint_eq(y, 2);
        kart_future_free(f);
    }
    ck_assert_int_eq(kart_pool_apply(p, t_unregistered, &x, 8, &y, &len, &te), want);
    /* kart_pool_submit_many: -ENOENT with out cleared (fork runs them) */
    kart_future *fs[2] = {(kart_future *)&x, (kart_future *)&x};
    uint64_t xs[2] = {5, 6};
    ck_assert_int_eq(kart_pool_submit_many(p, t_unregistered, xs, 8, 2, fs), want);
    for (int i = 0; i < 2; i++) {
        if (want) {
            ck_assert_ptr_null(fs[i]);
            continue;
        }
        len = 8;
        ck_assert_int_eq(fut_result(fs[i], 10000 * MS, &y, &len), 0);
        ck_assert_uint_eq(y, xs[i]);
        kart_future_free(fs[i]);
    }
    kart_pool_failure fl;
    ck_assert_int_eq(kart_pool_map(p, t_unregistered, &x, 8, &y, 8, 1, NULL, &fl), want);
    src_state st = {0, 10};
    kart_pool_iter *it = NULL;
    ck_assert_int_eq(kart_pool_imap(p, t_unregistered, src_fn, &st, 8, 8, 1, 0, &it), want);
    if (it)
        kart_pool_iter_free(it);
    len = 8;
    ck_assert_int_eq(pool_apply(p, t_square, &x, 8, &y, &len), 0);
    ck_assert_uint_eq(y, 4);
    kart_pool_free(p);

    kart_pool_options o = {.kind = KART_POOL_PROCESSES,
                           .workers = 1,
                           .context = ctx(),
                           .initializer = init_unregistered};
    p = NULL;
    ck_assert_int_eq(kart_pool_create(&p, &o), _i == 0 ? 0 : -ENOENT);
    kart_pool_free(p);
    o.initializer = init_fn;
    o.initarg = "init"; /* a pointer, no size */
    p = NULL;
    ck_assert_int_eq(kart_pool_create(&p, &o), _i == 0 ? 0 : -EINVAL);
    kart_pool_free(p);
    o.initarg = NULL;
    o.initarg_size = 4; /* a size, no bytes */
    ck_assert_int_eq(kart_pool_create(&p, &o), -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool_proc");
    TCase *tc = tcase_create("basics");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, proc_submit_apply_map, 0, 3);
    tcase_add_loop_test(tc, proc_pointer_tasks_unsupported, 0, 3);
    tcase_add_loop_test(tc, proc_large_arguments_and_results, 0, 3);
    tcase_add_loop_test(tc, proc_arena_full_is_enomem, 0, 3);
    tcase_add_loop_test(tc, proc_imap_both_orders, 0, 3);
    suite_add_tcase(s, tc);

    tc = tcase_create("workers");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, proc_initializer_and_max_tasks, 0, 3);
    tcase_add_loop_test(tc, proc_dead_worker_fails_its_task, 0, 3);
    tcase_add_test(tc, proc_finisher_killed_before_done_bit);
    tcase_add_test(tc, proc_wakeup_flag_never_left_set);
    tcase_add_test(tc, proc_worker_killed_asleep_leaves_the_count);
    tcase_add_loop_test(tc, proc_terminate_kills_running, 0, 3);
    tcase_add_loop_test(tc, proc_cancel_and_join_timeout, 0, 3);
    tcase_add_test(tc, proc_closed_pool_replaces_nobody);
    tcase_add_loop_test(tc, proc_unregistered_task_refused, 0, 3);
    suite_add_tcase(s, tc);

    tc = tcase_create("kills");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, proc_random_kills_never_hang, 0, 3);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

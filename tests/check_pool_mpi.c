/*
 * tests/check_pool_mpi.c — the MPI pool (kart/pool_mpi.h), run under
 * mpirun with 2 to 4 ranks (make check-mpi; across two network
 * namespaces: make check-mpi-netns).
 *
 * Every rank walks the same sequence of pools (creation is collective):
 * a pool of thread pools, a pool of process pools, and a creation whose
 * ranks disagree on their tasks. Rank 0 runs the Check suites (no fork:
 * an MPI process must not fork its way through MPI) while the other ranks
 * serve; a serving rank checks the calls it may not make, and exits
 * non-zero if any of its checks failed.
 */
#include "testutil.h"

#include <kart/pool_mpi.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

static int g_rank, g_size;
static kart_mpi_pool *g_pool;
static int g_kind; /* the local pools' kind of the current round */
static int g_mismatch_rc = 1;

/* ---- tasks, registered by name on every rank ---- */

static int t_square(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    if (len != sizeof(x) || *res_len < sizeof(x))
        return -EINVAL;
    memcpy(&x, arg, sizeof(x));
    x = x * x + 1;
    memcpy(res, &x, sizeof(x));
    *res_len = sizeof(x);
    return 0;
}

/* Fails item 777 with -EDOM. */
static int t_fail777(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    memcpy(&x, arg, sizeof(x));
    if (x == 777)
        return -EDOM;
    return t_square(arg, len, res, res_len);
}

/* The result is the argument, whatever its length (longer than the
 * capacity: the pool fails it with -EMSGSIZE). */
static int t_echo(const void *arg, size_t len, void *res, size_t *res_len)
{
    if (len <= *res_len)
        memcpy(res, arg, len);
    *res_len = len;
    return 0;
}

/* Sleeps the milliseconds it is given, answers the rank that ran it. */
static int t_sleep(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint32_t ms = 0;
    memcpy(&ms, arg, len < sizeof(ms) ? len : sizeof(ms));
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    int32_t r = g_rank;
    memcpy(res, &r, sizeof(r));
    *res_len = sizeof(r);
    return 0;
}

static int t_die(const void *arg, size_t len, void *res, size_t *res_len)
{
    raise(SIGKILL);
    return 0;
}

static const kart_mpi_task tasks[] = {
    {"square", t_square}, {"fail777", t_fail777}, {"echo", t_echo},
    {"sleep", t_sleep},   {"die", t_die},
};
#define NTASKS (sizeof(tasks) / sizeof(*tasks))

static kart_mpi_pool_options options(kart_pool_kind kind)
{
    kart_mpi_pool_options o;
    memset(&o, 0, sizeof(o));
    o.tasks = tasks;
    o.ntasks = NTASKS;
    o.local.kind = kind;
    o.local.workers = 2;
    return o;
}

/* ---- the root's tests ---- */

START_TEST(submit_and_result)
{
    kart_mpi_future *fs[64];
    for (uint64_t i = 0; i < 64; i++)
        ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "square", &i, sizeof(i), &fs[i]), 0);
    kart_future *kf[64];
    for (int i = 0; i < 64; i++)
        kf[i] = kart_mpi_future_get(fs[i]);
    ck_assert_int_eq(kart_future_wait_many(kf, 64, KART_FUTURE_ALL_COMPLETED, 30000 * KT_MS), 64);
    for (uint64_t i = 0; i < 64; i++) {
        uint64_t r = 0;
        size_t len = sizeof(r);
        int err = 1;
        ck_assert_int_eq(kart_future_result(kf[i], 0, &r, &len, &err), 0);
        ck_assert_int_eq(err, 0);
        ck_assert_uint_eq(len, sizeof(r));
        ck_assert_uint_eq(r, i * i + 1);
        ck_assert_int_eq(kart_future_successful(kf[i]), 1);
        kart_mpi_future_free(fs[i]);
    }
    /* Freed before it is done: the pool still completes it safely. */
    uint32_t ms = 20;
    kart_mpi_future *f;
    ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "sleep", &ms, sizeof(ms), &f), 0);
    kart_mpi_future_free(f);
    kart_mpi_future_free(NULL);
    ck_assert_ptr_null(kart_mpi_future_get(NULL));
}
END_TEST

static atomic_int cb_ran;
static void on_done(kart_future *f, void *arg)
{
    atomic_fetch_add(&cb_ran, 1);
}

START_TEST(callbacks_and_errors)
{
    uint64_t x = 777;
    kart_mpi_future *f;
    ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "fail777", &x, sizeof(x), &f), 0);
    kart_future *kf = kart_mpi_future_get(f);
    int rc = kart_future_add_error_callback(kf, on_done, NULL);
    ck_assert(rc == 0 || rc == 1);
    int err = 0;
    ck_assert_int_eq(kart_future_error(kf, 30000 * KT_MS, &err), 0);
    ck_assert_int_eq(err, -EDOM);
    ck_assert_int_eq(kart_future_successful(kf), 0);
    /* The callback runs on the progress thread just after the waiters
     * are woken: give it a moment. */
    for (int i = 0; rc == 0 && i < 10000 && atomic_load(&cb_ran) == 0; i++)
        usleep(1000);
    if (rc == 0)
        ck_assert_int_eq(atomic_load(&cb_ran), 1);
    kart_mpi_future_free(f);
}
END_TEST

START_TEST(apply)
{
    char buf[16];
    size_t len = sizeof(buf);
    int err = 1;
    ck_assert_int_eq(kart_mpi_pool_apply(g_pool, "echo", "hello", 5, buf, &len, &err), 0);
    ck_assert_int_eq(err, 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(buf, "hello", 5);
    /* Longer than the caller's buffer. */
    len = 3;
    ck_assert_int_eq(kart_mpi_pool_apply(g_pool, "echo", "hello", 5, buf, &len, &err), 0);
    ck_assert_int_eq(err, -EMSGSIZE);
    ck_assert_uint_eq(len, 0);
    /* Longer than the pool's result capacity (64). */
    char big[100] = {0};
    len = sizeof(buf);
    ck_assert_int_eq(kart_mpi_pool_apply(g_pool, "echo", big, sizeof(big), buf, &len, &err), 0);
    ck_assert_int_eq(err, -EMSGSIZE);
    uint64_t x = 777;
    len = sizeof(buf);
    ck_assert_int_eq(kart_mpi_pool_apply(g_pool, "fail777", &x, sizeof(x), buf, &len, &err), 0);
    ck_assert_int_eq(err, -EDOM);
    /* Bad input: nothing runs, nothing is written. */
    err = 5;
    ck_assert_int_eq(kart_mpi_pool_apply(g_pool, "echo", "x", 1, buf, NULL, &err), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_apply(g_pool, "echo", "x", 1, buf, &len, NULL), -EINVAL);
    len = 4;
    ck_assert_int_eq(kart_mpi_pool_apply(g_pool, "echo", "x", 1, NULL, &len, &err), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_apply(g_pool, "nosuch", "x", 1, buf, &len, &err), -ENOENT);
    ck_assert_int_eq(err, 5);
}
END_TEST

START_TEST(submit_errors)
{
    kart_mpi_future *f = NULL;
    ck_assert_int_eq(kart_mpi_pool_submit(NULL, "echo", "x", 1, &f), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_submit(g_pool, NULL, "x", 1, &f), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "echo", NULL, 1, &f), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "echo", "x", 1, NULL), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "nosuch", "x", 1, &f), -ENOENT);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(kart_mpi_pool_serve(g_pool), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_serve(NULL), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_rank(g_pool), 0);
    ck_assert_int_eq(kart_mpi_pool_rank(NULL), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_workers(g_pool), 2 * (g_size - 1));
    ck_assert_int_eq(kart_mpi_pool_workers(NULL), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_join(g_pool, 0), -EBUSY);
    ck_assert_int_eq(kart_mpi_pool_join(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_close(NULL), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_terminate(NULL), -EINVAL);
    kart_mpi_pool *p = NULL;
    ck_assert_int_eq(kart_mpi_pool_create(NULL, NULL), -EINVAL);
    kart_mpi_pool_options o = options(KART_POOL_THREADS);
    kart_mpi_task bad[2] = {{"a", t_echo}, {"a", t_echo}};
    o.tasks = bad;
    o.ntasks = 2; /* two alike: refused before any collective */
    ck_assert_int_eq(kart_mpi_pool_create(&p, &o), -EINVAL);
    o.ntasks = 0;
    ck_assert_int_eq(kart_mpi_pool_create(&p, &o), -EINVAL);
    o = options(KART_POOL_THREADS);
    o.root = g_size;
    ck_assert_int_eq(kart_mpi_pool_create(&p, &o), -EINVAL);
    o = options(KART_POOL_THREADS);
    o.depth = 65;
    ck_assert_int_eq(kart_mpi_pool_create(&p, &o), -EINVAL);
    ck_assert_ptr_null(p);
    kart_mpi_pool_free(NULL);
}
END_TEST

/* The map's results equal a single-host kart pool's, whatever the chunk. */
static void map_equal(size_t n, size_t chunk)
{
    uint64_t *in = malloc(n * sizeof(*in)), *out = calloc(n, sizeof(*out)),
             *ref = calloc(n, sizeof(*ref));
    for (size_t i = 0; i < n; i++)
        in[i] = i * 3 + 1;
    kart_pool *local;
    kart_pool_options lo = {.kind = KART_POOL_THREADS, .workers = 2};
    ck_assert_int_eq(kart_pool_create(&local, &lo), 0);
    kart_pool_failure fl;
    kart_pool_map_options mo = {.chunk = chunk};
    ck_assert_int_eq(
        kart_pool_map(local, t_square, in, sizeof(*in), ref, sizeof(*ref), n, &mo, &fl), 0);
    ck_assert_int_eq(fl.err, 0);
    kart_pool_free(local);
    fl.err = 1;
    ck_assert_int_eq(
        kart_mpi_pool_map(g_pool, "square", in, sizeof(*in), out, sizeof(*out), n, &mo, &fl), 0);
    ck_assert_int_eq(fl.err, 0);
    ck_assert_mem_eq(out, ref, n * sizeof(*out));
    free(in);
    free(out);
    free(ref);
}

START_TEST(map_matches_local)
{
    map_equal(10000, 0);
    map_equal(1000, 1);
    map_equal(999, 7);
    map_equal(1, 0);
    /* Chunks of 64 KiB and more leave the root from the caller's input,
     * without a copy (mpi/pool_mpi_send.c); 8191 items are just below. */
    map_equal(300000, 0);
    map_equal(50000, 8191);
    map_equal(50000, 8192);
}
END_TEST

/* A map's input may go as soon as its future is done: the root's sends
 * read it in place (ASan sees a read after the free otherwise). */
START_TEST(map_async_input_freed_when_done)
{
    size_t n = 100000;
    for (int round = 0; round < 3; round++) {
        uint64_t *in = malloc(n * sizeof(*in)), *out = calloc(n, sizeof(*out));
        for (size_t i = 0; i < n; i++)
            in[i] = i + (size_t)round;
        kart_pool_map_options mo = {.chunk = (size_t)(round + 1) * 10000};
        kart_mpi_future *f;
        ck_assert_int_eq(kart_mpi_pool_map_async(g_pool, "square", in, sizeof(*in), out,
                                                 sizeof(*out), n, &mo, &f),
                         0);
        int err = 1;
        ck_assert_int_eq(kart_future_error(kart_mpi_future_get(f), 30000 * KT_MS, &err), 0);
        ck_assert_int_eq(err, 0);
        memset(in, 0xff, n * sizeof(*in));
        free(in);
        kart_mpi_future_free(f);
        for (size_t i = 0; i < n; i++) {
            uint64_t v = i + (size_t)round;
            ck_assert_uint_eq(out[i], v * v + 1);
        }
        free(out);
    }
}
END_TEST

START_TEST(map_failure)
{
    size_t n = 2000;
    uint64_t *in = malloc(n * sizeof(*in)), *out = calloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        in[i] = i;
    kart_pool_failure fl;
    kart_pool_map_options mo = {.chunk = 10};
    ck_assert_int_eq(
        kart_mpi_pool_map(g_pool, "fail777", in, sizeof(*in), out, sizeof(*out), n, &mo, &fl), 0);
    ck_assert_int_eq(fl.err, -EDOM);
    ck_assert_uint_eq(fl.item, 777);
    /* The items before it in its chunk ran; it and the rest of its chunk
     * are zero; every other chunk ran. */
    KT_ASSERT_EACH(i, n, (i >= 777 && i < 780) ? out[i] == 0 : out[i] == in[i] * in[i] + 1);
    free(in);
    free(out);
}
END_TEST

static size_t progress_last, progress_calls;
static void on_progress(void *arg, size_t done, size_t total)
{
    progress_last = done;
    progress_calls++;
    ck_assert_uint_le(done, total);
}

START_TEST(map_async_and_progress)
{
    size_t n = 5000;
    uint64_t *in = malloc(n * sizeof(*in)), *out = calloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        in[i] = i;
    kart_mpi_future *f;
    ck_assert_int_eq(
        kart_mpi_pool_map_async(g_pool, "square", in, sizeof(*in), out, sizeof(*out), n, NULL, &f),
        0);
    int err = 1;
    ck_assert_int_eq(kart_future_error(kart_mpi_future_get(f), 30000 * KT_MS, &err), 0);
    ck_assert_int_eq(err, 0);
    kart_mpi_future_free(f);
    KT_ASSERT_EACH(i, n, out[i] == in[i] * in[i] + 1);
    /* A failing map's future fails with the item's error. */
    ck_assert_int_eq(
        kart_mpi_pool_map_async(g_pool, "fail777", in, sizeof(*in), out, sizeof(*out), n, NULL, &f),
        0);
    ck_assert_int_eq(kart_future_error(kart_mpi_future_get(f), 30000 * KT_MS, &err), 0);
    ck_assert_int_eq(err, -EDOM);
    kart_mpi_future_free(f);
    /* n == 0: done at once. */
    ck_assert_int_eq(kart_mpi_pool_map_async(g_pool, "square", NULL, 8, NULL, 8, 0, NULL, &f), 0);
    ck_assert_int_eq(kart_future_done(kart_mpi_future_get(f)), 1);
    kart_mpi_future_free(f);
    /* Progress: called with done == n at the end. */
    kart_pool_map_options mo = {
        .chunk = 50, .progress = on_progress, .progress_interval_ns = KT_MS};
    kart_pool_failure fl;
    ck_assert_int_eq(
        kart_mpi_pool_map(g_pool, "square", in, sizeof(*in), out, sizeof(*out), n, &mo, &fl), 0);
    ck_assert_uint_eq(progress_last, n);
    ck_assert_uint_ge(progress_calls, 1);
    /* Errors. */
    ck_assert_int_eq(kart_mpi_pool_map_async(g_pool, "square", in, 8, out, 8, n, &mo, &f), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_map_async(g_pool, "square", in, 8, out, 8, n, NULL, NULL),
                     -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_map(g_pool, "square", in, 8, out, 8, n, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_map(g_pool, "square", NULL, 8, out, 8, n, NULL, &fl), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_map(g_pool, "square", in, 8, NULL, 8, n, NULL, &fl), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_map(g_pool, "square", in, SIZE_MAX / 2, out, 8, 4, NULL, &fl),
                     -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_map(g_pool, "nosuch", in, 8, out, 8, n, NULL, &fl), -ENOENT);
    ck_assert_int_eq(kart_mpi_pool_map(NULL, "square", in, 8, out, 8, n, NULL, &fl), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_map(g_pool, "square", NULL, 8, NULL, 8, 0, NULL, &fl), 0);
    free(in);
    free(out);
}
END_TEST

typedef struct counter {
    uint64_t next, end;
    int fail_at; /* the source fails at this item (-1: never) */
} counter;

static int count_src(void *ctx, void *item)
{
    counter *c = ctx;
    if (c->fail_at >= 0 && c->next == (uint64_t)c->fail_at)
        return -EBADMSG;
    if (c->next == c->end)
        return 0;
    uint64_t v = c->next++;
    memcpy(item, &v, sizeof(v));
    return 1;
}

static void imap_run(unsigned flags, size_t chunk, uint64_t n)
{
    counter c = {0, n, -1};
    kart_mpi_pool_iter *it;
    ck_assert_int_eq(kart_mpi_pool_imap(g_pool, "fail777", count_src, &c, sizeof(uint64_t),
                                        sizeof(uint64_t), chunk, flags, &it),
                     0);
    char *seen = calloc(n, 1);
    uint64_t r, k = 0, sum = 0;
    int err, rc;
    size_t fails = 0;
    while ((rc = kart_mpi_pool_iter_next(it, 30000 * KT_MS, &r, &err)) == 1) {
        if (err) {
            ck_assert_int_eq(err, -EDOM);
            fails++;
        } else {
            sum += r;
        }
        if (!(flags & KART_POOL_UNORDERED) && !err)
            ck_assert_uint_eq(r, k * k + 1);
        k++;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(err, 0);
    ck_assert_uint_eq(k, n);
    /* 777 and the rest of its chunk failed. */
    size_t first = 777 / chunk * chunk, last = first + chunk < n ? first + chunk : n;
    ck_assert_uint_eq(fails, last - 777);
    uint64_t want = 0;
    for (uint64_t i = 0; i < n; i++)
        if (i < 777 || i >= last)
            want += i * i + 1;
    ck_assert_uint_eq(sum, want);
    ck_assert_int_eq(kart_mpi_pool_iter_next(it, 0, &r, &err), 0);
    free(seen);
    kart_mpi_pool_iter_free(it);
}

START_TEST(imap_ordered_and_unordered)
{
    imap_run(0, 1, 900);
    imap_run(0, 16, 3000);
    imap_run(KART_POOL_UNORDERED, 1, 900);
    imap_run(KART_POOL_UNORDERED, 9, 3000);
}
END_TEST

START_TEST(imap_source_error_and_errors)
{
    counter c = {0, 100, 40};
    kart_mpi_pool_iter *it = NULL;
    ck_assert_int_eq(kart_mpi_pool_imap(g_pool, "square", count_src, &c, 8, 8, 3, 0, &it), 0);
    uint64_t r;
    int err, rc, k = 0;
    while ((rc = kart_mpi_pool_iter_next(it, 30000 * KT_MS, &r, &err)) == 1)
        k++;
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(k, 40);
    ck_assert_int_eq(err, -EBADMSG);
    ck_assert_int_eq(kart_mpi_pool_iter_next(it, 0, &r, &err), 0);
    ck_assert_int_eq(err, 0);
    ck_assert_int_eq(kart_mpi_pool_iter_next(it, 0, NULL, &err), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_iter_next(it, 0, &r, NULL), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_iter_next(NULL, 0, &r, &err), -EINVAL);
    kart_mpi_pool_iter_free(it);
    kart_mpi_pool_iter_free(NULL);
    it = NULL;
    ck_assert_int_eq(kart_mpi_pool_imap(g_pool, "square", count_src, &c, 0, 8, 1, 0, &it), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_imap(g_pool, "square", count_src, &c, 8, 8, 1, 0x4, &it),
                     -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_imap(g_pool, "square", NULL, &c, 8, 8, 1, 0, &it), -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_imap(g_pool, "square", count_src, &c, 8, 8, 1, 0, NULL),
                     -EINVAL);
    ck_assert_int_eq(kart_mpi_pool_imap(g_pool, "nosuch", count_src, &c, 8, 8, 1, 0, &it), -ENOENT);
    ck_assert_ptr_null(it);
    /* A timeout: the item sleeps longer than we wait. */
    uint32_t ms = 300;
    counter one = {0, 1, -1};
    (void)one;
    kart_mpi_future *f;
    ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "sleep", &ms, sizeof(ms), &f), 0);
    ck_assert_int_eq(kart_future_wait(kart_mpi_future_get(f), 10 * KT_MS), -ETIMEDOUT);
    ck_assert_int_eq(kart_future_wait(kart_mpi_future_get(f), 30000 * KT_MS), 0);
    kart_mpi_future_free(f);
}
END_TEST

/* Skewed work: every serving rank gets some, and a cancelled queued task
 * never runs. */
START_TEST(balance_and_cancel)
{
    enum { N = 40 };
    uint32_t in[N];
    int32_t out[N];
    for (int i = 0; i < N; i++)
        in[i] = (uint32_t)(i % 4 == 0 ? 20 : 2);
    kart_pool_failure fl;
    kart_pool_map_options mo = {.chunk = 1};
    ck_assert_int_eq(
        kart_mpi_pool_map(g_pool, "sleep", in, sizeof(*in), out, sizeof(*out), N, &mo, &fl), 0);
    ck_assert_int_eq(fl.err, 0);
    int ranks_seen[8] = {0};
    for (int i = 0; i < N; i++) {
        ck_assert(out[i] >= 1 && out[i] < g_size);
        ranks_seen[out[i]]++;
    }
    for (int r = 1; r < g_size; r++)
        ck_assert_msg(ranks_seen[r] > 0, "rank %d ran nothing", r);
    /* Fill every credit with slow tasks: the last one queued is cancelled. */
    enum { M = 64 };
    kart_mpi_future *fs[M];
    uint32_t ms = 30;
    for (int i = 0; i < M; i++)
        ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "sleep", &ms, sizeof(ms), &fs[i]), 0);
    ck_assert_int_eq(kart_future_cancel(kart_mpi_future_get(fs[M - 1])), 1);
    int err = 0;
    ck_assert_int_eq(kart_future_error(kart_mpi_future_get(fs[M - 1]), 0, &err), 0);
    ck_assert_int_eq(err, -ECANCELED);
    for (int i = 0; i < M; i++) {
        ck_assert_int_eq(kart_future_wait(kart_mpi_future_get(fs[i]), 60000 * KT_MS), 0);
        kart_mpi_future_free(fs[i]);
    }
}
END_TEST

/* Last in the thread round: close, then every root call refuses. */
START_TEST(close_and_join)
{
    ck_assert_int_eq(kart_mpi_pool_close(g_pool), 0);
    ck_assert_int_eq(kart_mpi_pool_close(g_pool), 0);
    kart_mpi_future *f;
    ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "echo", "x", 1, &f), -ESHUTDOWN);
    kart_pool_failure fl;
    uint64_t v = 1, o;
    ck_assert_int_eq(kart_mpi_pool_map(g_pool, "square", &v, 8, &o, 8, 1, NULL, &fl), -ESHUTDOWN);
    ck_assert_int_eq(kart_mpi_pool_map(g_pool, "square", &v, 8, &o, 8, 0, NULL, &fl), -ESHUTDOWN);
    ck_assert_int_eq(kart_mpi_pool_map_async(g_pool, "square", &v, 8, &o, 8, 0, NULL, &f),
                     -ESHUTDOWN);
    counter c = {0, 1, -1};
    kart_mpi_pool_iter *it;
    ck_assert_int_eq(kart_mpi_pool_imap(g_pool, "square", count_src, &c, 8, 8, 1, 0, &it),
                     -ESHUTDOWN);
    ck_assert_int_eq(kart_mpi_pool_join(g_pool, 30000 * KT_MS), 0);
    ck_assert_int_eq(kart_mpi_pool_join(g_pool, 0), 0);
}
END_TEST

/* Process pools in the ranks: a worker process that dies fails its task
 * with KART_EWORKERDIED and is replaced; the pool goes on. */
START_TEST(worker_process_dies)
{
    char buf[8];
    size_t len = sizeof(buf);
    int err = 0;
    ck_assert_int_eq(kart_mpi_pool_apply(g_pool, "die", NULL, 0, buf, &len, &err), 0);
    ck_assert_int_eq(err, KART_EWORKERDIED);
    map_equal(3000, 0);
    len = sizeof(buf);
    ck_assert_int_eq(kart_mpi_pool_apply(g_pool, "echo", "ok", 2, buf, &len, &err), 0);
    ck_assert_int_eq(err, 0);
    ck_assert_mem_eq(buf, "ok", 2);
}
END_TEST

START_TEST(terminate_cancels_queued)
{
    enum { M = 64 };
    kart_mpi_future *fs[M];
    uint32_t ms = 50;
    for (int i = 0; i < M; i++)
        ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "sleep", &ms, sizeof(ms), &fs[i]), 0);
    ck_assert_int_eq(kart_mpi_pool_terminate(g_pool), 0);
    int cancelled = 0;
    for (int i = 0; i < M; i++) {
        int err = 0;
        ck_assert_int_eq(kart_future_error(kart_mpi_future_get(fs[i]), 60000 * KT_MS, &err), 0);
        ck_assert(err == 0 || err == -ECANCELED);
        cancelled += err == -ECANCELED;
        kart_mpi_future_free(fs[i]);
    }
    ck_assert_int_gt(cancelled, 0);
    kart_mpi_future *f;
    ck_assert_int_eq(kart_mpi_pool_submit(g_pool, "echo", "x", 1, &f), -ESHUTDOWN);
    ck_assert_int_eq(kart_mpi_pool_join(g_pool, 30000 * KT_MS), 0);
}
END_TEST

START_TEST(ranks_disagree)
{
    /* Set before this suite ran: every rank created a pool whose serving
     * ranks registered one task more than the root. */
    ck_assert_int_eq(g_mismatch_rc, -EPROTO);
}
END_TEST

static int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}

static Suite *threads_suite(void)
{
    Suite *s = suite_create("pool_mpi threads");
    TCase *tc = tcase_create("threads");
    tcase_add_test(tc, submit_and_result);
    tcase_add_test(tc, callbacks_and_errors);
    tcase_add_test(tc, apply);
    tcase_add_test(tc, submit_errors);
    tcase_add_test(tc, map_matches_local);
    tcase_add_test(tc, map_failure);
    tcase_add_test(tc, map_async_and_progress);
    tcase_add_test(tc, map_async_input_freed_when_done);
    tcase_add_test(tc, imap_ordered_and_unordered);
    tcase_add_test(tc, imap_source_error_and_errors);
    tcase_add_test(tc, balance_and_cancel);
    tcase_add_test(tc, close_and_join);
    suite_add_tcase(s, tc);
    return s;
}

/* Inline local pools: the serving ranks run map chunks in their serving
 * thread (pool_mpi_serve.c's inline path), which must give what the
 * local pool would: the same results, failures and zeroed items. */
START_TEST(inline_map_result_too_long)
{
    char in[4][16], out[4][8];
    memset(in, 'a', sizeof(in));
    memset(out, 'z', sizeof(out));
    kart_pool_failure fl;
    kart_pool_map_options mo = {.chunk = 2};
    ck_assert_int_eq(kart_mpi_pool_map(g_pool, "echo", in, 16, out, 8, 4, &mo, &fl), 0);
    ck_assert_int_eq(fl.err, -EMSGSIZE);
    ck_assert_uint_eq(fl.item, 0);
    /* Item 0 failed: it and the rest of its chunk (item 1) are zero. */
    static const char zero[16];
    ck_assert_mem_eq(out, zero, 16);
}
END_TEST

static Suite *inline_suite(void)
{
    Suite *s = suite_create("pool_mpi inline");
    TCase *tc = tcase_create("inline");
    tcase_add_test(tc, submit_and_result);
    tcase_add_test(tc, apply);
    tcase_add_test(tc, map_matches_local);
    tcase_add_test(tc, map_failure);
    tcase_add_test(tc, map_async_and_progress);
    tcase_add_test(tc, imap_ordered_and_unordered);
    tcase_add_test(tc, inline_map_result_too_long);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *procs_suite(void)
{
    Suite *s = suite_create("pool_mpi processes");
    TCase *tc = tcase_create("processes");
    tcase_add_test(tc, worker_process_dies);
    tcase_add_test(tc, ranks_disagree);
    tcase_add_test(tc, terminate_cancels_queued);
    suite_add_tcase(s, tc);
    return s;
}

/* ---- a serving rank ---- */

static int bad; /* checks failed on this serving rank */
#define SERVER_CHECK(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "rank %d: %s:%d: %s\n", g_rank, __FILE__, __LINE__, #cond);            \
            bad++;                                                                                 \
        }                                                                                          \
    } while (0)

static void serve_round(void)
{
    kart_mpi_future *f;
    kart_pool_failure fl;
    kart_mpi_pool_iter *it;
    counter c = {0, 1, -1};
    uint64_t v = 0;
    size_t len = 8;
    int err;
    SERVER_CHECK(kart_mpi_pool_submit(g_pool, "echo", "x", 1, &f) == -EPERM);
    SERVER_CHECK(kart_mpi_pool_apply(g_pool, "echo", "x", 1, &v, &len, &err) == -EPERM);
    SERVER_CHECK(kart_mpi_pool_map(g_pool, "square", &v, 8, &v, 8, 1, NULL, &fl) == -EPERM);
    SERVER_CHECK(kart_mpi_pool_map_async(g_pool, "square", &v, 8, &v, 8, 1, NULL, &f) == -EPERM);
    SERVER_CHECK(kart_mpi_pool_imap(g_pool, "square", count_src, &c, 8, 8, 1, 0, &it) == -EPERM);
    SERVER_CHECK(kart_mpi_pool_close(g_pool) == -EPERM);
    SERVER_CHECK(kart_mpi_pool_terminate(g_pool) == -EPERM);
    SERVER_CHECK(kart_mpi_pool_join(g_pool, 0) == -EPERM);
    SERVER_CHECK(kart_mpi_pool_rank(g_pool) == g_rank);
    SERVER_CHECK(kart_mpi_pool_serve(g_pool) == 0);
    SERVER_CHECK(kart_mpi_pool_serve(g_pool) == -EINVAL);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    int failed = 0;

    /* Round 1: thread pools in the ranks. */
    kart_mpi_pool_options o = options(KART_POOL_THREADS);
    int rc = kart_mpi_pool_create(&g_pool, &o);
    if (rc) {
        fprintf(stderr, "rank %d: create: %s\n", g_rank, kart_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    g_kind = KART_POOL_THREADS;
    if (g_rank == 0)
        failed += run_suite(threads_suite());
    else
        serve_round();
    kart_mpi_pool_free(g_pool);

    /* Round 2: the ranks disagree on their tasks: every rank fails. */
    kart_mpi_pool *p = NULL;
    o = options(KART_POOL_THREADS);
    o.ntasks = g_rank == 0 ? NTASKS - 1 : NTASKS;
    g_mismatch_rc = kart_mpi_pool_create(&p, &o);
    if (g_rank != 0)
        SERVER_CHECK(g_mismatch_rc == -EPROTO && p == NULL);

    /* Round 3: process pools in the ranks. */
    o = options(KART_POOL_PROCESSES);
    rc = kart_mpi_pool_create(&g_pool, &o);
    if (rc) {
        fprintf(stderr, "rank %d: create: %s\n", g_rank, kart_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    g_kind = KART_POOL_PROCESSES;
    if (g_rank == 0)
        failed += run_suite(procs_suite());
    else
        SERVER_CHECK(kart_mpi_pool_serve(g_pool) == 0);
    kart_mpi_pool_free(g_pool);

    /* Round 4: inline pools in the ranks (the serving thread runs maps). */
    o = options(KART_POOL_INLINE);
    o.local.workers = 0;
    rc = kart_mpi_pool_create(&g_pool, &o);
    if (rc) {
        fprintf(stderr, "rank %d: create: %s\n", g_rank, kart_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    g_kind = KART_POOL_INLINE;
    if (g_rank == 0)
        failed += run_suite(inline_suite());
    else
        SERVER_CHECK(kart_mpi_pool_serve(g_pool) == 0);
    kart_mpi_pool_free(g_pool);

    failed += bad;
    int all = 0;
    MPI_Allreduce(&failed, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return all ? 1 : 0;
}

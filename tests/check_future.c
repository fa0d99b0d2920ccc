/* Description: kart/pool.h's 0.2 pieces — a task's result apart from the
 * call's (rule 4: a task returning -ETIMEDOUT is not a timed-out wait),
 * the default result size, kart_pool_failure (the failing item, the dead
 * worker's pid and exit status or signal, the rest of a failed chunk
 * zeroed), map progress, futures you complete yourself (set_result,
 * set_error, set_running, callbacks once), wait_many with
 * FIRST_COMPLETED / FIRST_EXCEPTION / ALL_COMPLETED, as_completed,
 * running(), and shutdown(wait, cancel_futures). Cases ported from
 * CPython's Lib/test/test_concurrent_futures where they apply to C. */
#include "testutil.h"

#include <kart/pool.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#define MS KT_MS

static const kart_pool_kind kinds[3] = {KART_POOL_THREADS, KART_POOL_INLINE, KART_POOL_PROCESSES};

static kart_pool *make(kart_pool_kind kind, size_t workers)
{
    kart_pool *p;
    kart_pool_options o = {.kind = kind, .workers = workers};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    return p;
}

/* Returns the int it is given, as the task's own error. */
static int t_return(const void *arg, size_t len, void *res, size_t *res_len)
{
    int e;
    (void)len;
    (void)res;
    memcpy(&e, arg, sizeof(e));
    *res_len = 0;
    return e;
}

/* Fills its whole capacity with 0xab. */
static int t_fill(const void *arg, size_t len, void *res, size_t *res_len)
{
    (void)arg;
    (void)len;
    memset(res, 0xab, *res_len);
    return 0;
}

/* Stores a length one above its capacity. */
static int t_over(const void *arg, size_t len, void *res, size_t *res_len)
{
    (void)arg;
    (void)len;
    (void)res;
    *res_len += 1;
    return 0;
}

/* x -> x + 1; item 13 fails with -EDOM. */
static int t_item(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    (void)len;
    memcpy(&x, arg, 8);
    if (x == 13)
        return -EDOM;
    x++;
    memcpy(res, &x, 8);
    *res_len = 8;
    return 0;
}

/* x -> x; item 7 kills its worker (SIGKILL), item 9 exits it with 3. */
static int t_die(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    (void)len;
    memcpy(&x, arg, 8);
    if (x == 7)
        raise(SIGKILL);
    if (x == 9)
        _exit(3);
    memcpy(res, &x, 8);
    *res_len = 8;
    return 0;
}

static int t_slow(const void *arg, size_t len, void *res, size_t *res_len)
{
    (void)arg;
    (void)len;
    (void)res;
    usleep(1000);
    *res_len = 0;
    return 0;
}

static _Atomic int gate, started;

static int t_block(const void *arg, size_t len, void *res, size_t *res_len)
{
    (void)arg;
    (void)len;
    (void)res;
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&gate))
        usleep(200);
    *res_len = 0;
    return 0;
}

static void await_started(int n)
{
    for (int i = 0; i < 20000 && atomic_load(&started) < n; i++)
        usleep(500);
    ck_assert_int_ge(atomic_load(&started), n);
}

/* ---- rule 4: the task's result is not the call's ---- */

START_TEST(task_timeout_is_not_a_wait_timeout)
{
    kart_pool *p = make(kinds[_i], 2);
    int e = -ETIMEDOUT, te = 0;
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(p, t_return, &e, sizeof(e), &f), 0);
    size_t len = 0;
    ck_assert_int_eq(kart_future_result(f, -1, NULL, &len, &te), 0);
    ck_assert_int_eq(te, -ETIMEDOUT);
    ck_assert_uint_eq(len, 0);
    te = 0;
    ck_assert_int_eq(kart_future_error(f, -1, &te), 0);
    ck_assert_int_eq(te, -ETIMEDOUT);
    kart_pool_failure fl;
    ck_assert_int_eq(kart_future_failure(f, 0, &fl), 0);
    ck_assert_int_eq(fl.err, -ETIMEDOUT);
    ck_assert_uint_eq(fl.item, 0);
    ck_assert_int_eq(fl.pid, 0);
    ck_assert_int_eq(fl.exit_status, -1);
    ck_assert_int_eq(fl.signal, 0);
    ck_assert_int_eq(kart_future_failure(NULL, 0, &fl), -EINVAL);
    ck_assert_int_eq(kart_future_failure(f, 0, NULL), -EINVAL);
    kart_future_free(f);
    /* apply: the call worked, the task said -ETIMEDOUT */
    te = 0;
    len = 0;
    ck_assert_int_eq(kart_pool_apply(p, t_return, &e, sizeof(e), NULL, &len, &te), 0);
    ck_assert_int_eq(te, -ETIMEDOUT);
    /* and a success is 0 and 0 */
    e = 0;
    te = 1;
    ck_assert_int_eq(kart_pool_apply(p, t_return, &e, sizeof(e), NULL, &len, &te), 0);
    ck_assert_int_eq(te, 0);
    ck_assert_int_eq(kart_pool_apply(p, t_return, &e, sizeof(e), NULL, &len, NULL), -EINVAL);
    ck_assert_int_eq(kart_pool_apply(p, NULL, &e, sizeof(e), NULL, &len, &te), -EINVAL);
    kart_pool_free(p);
}
END_TEST

/* ---- the default result size: pool.h, docs/pool.md and the code agree ---- */

START_TEST(default_result_size_is_64)
{
    ck_assert_int_eq(KART_POOL_RESULT_SIZE, 64);
    kart_pool *p = make(kinds[_i], 1);
    kart_future *f;
    unsigned char buf[512];
    size_t len = sizeof(buf);
    int te = -1;
    ck_assert_int_eq(kart_pool_submit(p, t_fill, NULL, 0, &f), 0);
    ck_assert_int_eq(kart_future_result(f, -1, buf, &len, &te), 0);
    ck_assert_int_eq(te, 0);
    ck_assert_uint_eq(len, 64);
    ck_assert_uint_eq(buf[63], 0xab);
    kart_future_free(f);
    ck_assert_int_eq(kart_pool_submit(p, t_over, NULL, 0, &f), 0);
    ck_assert_int_eq(kart_future_error(f, -1, &te), 0);
    ck_assert_int_eq(te, -EMSGSIZE);
    kart_future_free(f);
    kart_pool_free(p);
    /* a size of one's own */
    kart_pool_options o = {.kind = kinds[_i], .workers = 1, .result_size = 300};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    ck_assert_int_eq(kart_pool_submit(p, t_fill, NULL, 0, &f), 0);
    len = sizeof(buf);
    ck_assert_int_eq(kart_future_result(f, -1, buf, &len, &te), 0);
    ck_assert_uint_eq(len, 300);
    kart_future_free(f);
    kart_pool_free(p);
}
END_TEST

/* ---- map failures ---- */

START_TEST(map_failure_names_item_and_zeroes_rest_of_chunk)
{
    kart_pool *p = make(kinds[_i], 3);
    enum { N = 40 };
    uint64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = (uint64_t)i;
    memset(out, 0xff, sizeof(out));
    kart_pool_map_options o = {.chunk = 10};
    kart_pool_failure fl;
    ck_assert_int_eq(kart_pool_map(p, t_item, in, 8, out, 8, N, &o, &fl), 0);
    ck_assert_int_eq(fl.err, -EDOM);
    ck_assert_uint_eq(fl.item, 13);
    ck_assert_int_eq(fl.pid, 0);
    for (int i = 0; i < N; i++) {
        if (i >= 13 && i < 20)
            ck_assert_msg(out[i] == 0, "item %d of the failed chunk: %llx", i,
                          (unsigned long long)out[i]);
        else
            ck_assert_msg(out[i] == (uint64_t)i + 1, "item %d: %llx", i,
                          (unsigned long long)out[i]);
    }
    /* no failure: err 0 */
    in[13] = 100;
    ck_assert_int_eq(kart_pool_map(p, t_item, in, 8, out, 8, N, &o, &fl), 0);
    ck_assert_int_eq(fl.err, 0);
    ck_assert_uint_eq(out[13], 101);
    /* errors of the call: nothing ran */
    ck_assert_int_eq(kart_pool_map(p, t_item, in, 8, out, 8, N, &o, NULL), -EINVAL);
    ck_assert_int_eq(kart_pool_map(NULL, t_item, in, 8, out, 8, N, &o, &fl), -EINVAL);
    kart_pool_close(p);
    ck_assert_int_eq(kart_pool_map(p, t_item, in, 8, out, 8, N, &o, &fl), -ESHUTDOWN);
    kart_pool_free(p);
}
END_TEST

/* Yields *ctx, *ctx + 1, ... up to 19. */
static int src_until_20(void *ctx, void *item)
{
    uint64_t *next = ctx;
    if (*next >= 20)
        return 0;
    memcpy(item, next, 8);
    (*next)++;
    return 1;
}

START_TEST(imap_items_before_the_failing_one_succeed)
{
    kart_pool *p = make(kinds[_i], 2);
    static uint64_t next;
    next = 10;
    kart_pool_iter *it;
    ck_assert_int_eq(kart_pool_imap(p, t_item, src_until_20, &next, 8, 8, 4, 0, &it), 0);
    /* chunks [10..13], [14..17], [18..19]: item 13 fails, the last of its
     * chunk */
    for (uint64_t x = 10; x < 20; x++) {
        uint64_t r = 0;
        int te = 1;
        ck_assert_int_eq(kart_pool_iter_next(it, -1, &r, &te), 1);
        if (x == 13) {
            ck_assert_int_eq(te, -EDOM);
        } else {
            ck_assert_int_eq(te, 0);
            ck_assert_uint_eq(r, x + 1);
        }
    }
    int te = 1;
    ck_assert_int_eq(kart_pool_iter_next(it, -1, &(uint64_t){0}, &te), 0);
    ck_assert_int_eq(te, 0);
    ck_assert_int_eq(kart_pool_iter_next(it, -1, &(uint64_t){0}, NULL), -EINVAL);
    kart_pool_iter_free(it);
    kart_pool_iter_free(NULL);
    kart_pool_free(p);
}
END_TEST

/* Process pools: the worker that died, and how. */
START_TEST(map_failure_names_dead_worker)
{
    kart_pool *p = make(KART_POOL_PROCESSES, 2);
    enum { N = 8 };
    uint64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = (uint64_t)i;
    memset(out, 0xff, sizeof(out));
    kart_pool_map_options o = {.chunk = 4};
    kart_pool_failure fl;
    ck_assert_int_eq(kart_pool_map(p, t_die, in, 8, out, 8, N, &o, &fl), 0);
    ck_assert_int_eq(fl.err, KART_EWORKERDIED);
    ck_assert_uint_eq(fl.item, 7);
    ck_assert_int_gt(fl.pid, 0);
    ck_assert_int_eq(fl.signal, SIGKILL);
    ck_assert_int_eq(fl.exit_status, -1);
    for (int i = 0; i < 7; i++)
        ck_assert_uint_eq(out[i], (uint64_t)i);
    ck_assert_uint_eq(out[7], 0);
    /* a worker that exits, through a single task's future */
    uint64_t x = 9;
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(p, t_die, &x, 8, &f), 0);
    ck_assert_int_eq(kart_future_failure(f, -1, &fl), 0);
    ck_assert_int_eq(fl.err, KART_EWORKERDIED);
    ck_assert_int_gt(fl.pid, 0);
    ck_assert_int_eq(fl.exit_status, 3);
    ck_assert_int_eq(fl.signal, 0);
    kart_future_free(f);
    kart_pool_free(p);
}
END_TEST

/* ---- progress ---- */

typedef struct progress_log {
    size_t calls, last, total;
    bool backwards;
    pthread_t thread;
    bool other_thread;
} progress_log;

static void on_progress(void *arg, size_t done, size_t total)
{
    progress_log *l = arg;
    if (done < l->last)
        l->backwards = true;
    if (!pthread_equal(pthread_self(), l->thread))
        l->other_thread = true;
    l->calls++;
    l->last = done;
    l->total = total;
}

START_TEST(map_progress_reports_on_the_calling_thread)
{
    kart_pool *p = make(kinds[_i], 2);
    enum { N = 200 };
    static uint64_t in[N];
    progress_log l = {.thread = pthread_self()};
    kart_pool_map_options o = {
        .chunk = 1, .progress = on_progress, .progress_arg = &l, .progress_interval_ns = 5 * MS};
    kart_pool_failure fl;
    ck_assert_int_eq(kart_pool_map(p, t_slow, in, 8, NULL, 0, N, &o, &fl), 0);
    ck_assert_int_eq(fl.err, 0);
    ck_assert_uint_ge(l.calls, 1);
    ck_assert_uint_eq(l.last, N);
    ck_assert_uint_eq(l.total, N);
    ck_assert(!l.backwards);
    ck_assert(!l.other_thread);
    if (kinds[_i] != KART_POOL_INLINE) /* inline maps are done before the wait */
        ck_assert_uint_ge(l.calls, 2);
    /* map_async: polled instead */
    kart_future *f;
    ck_assert_int_eq(kart_pool_map_async(p, t_slow, in, 8, NULL, 0, N, &o, &f), -EINVAL);
    o.progress = NULL;
    ck_assert_int_eq(kart_pool_map_async(p, t_slow, in, 8, NULL, 0, N, &o, &f), 0);
    size_t done = 0, total = 0;
    ck_assert_int_eq(kart_future_progress(f, &done, &total), 0);
    ck_assert_uint_eq(total, N);
    ck_assert_uint_le(done, N);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    ck_assert_int_eq(kart_future_progress(f, &done, NULL), 0);
    ck_assert_uint_eq(done, N);
    ck_assert_int_eq(kart_future_progress(NULL, &done, &total), -EINVAL);
    ck_assert_int_eq(kart_future_progress(f, NULL, NULL), -EINVAL);
    kart_future_free(f);
    int e = 0;
    ck_assert_int_eq(kart_pool_submit(p, t_return, &e, sizeof(e), &f), 0);
    ck_assert_int_eq(kart_future_progress(f, &done, &total), -EINVAL); /* not a map */
    kart_future_free(f);
    kart_pool_free(p);
}
END_TEST

/* ---- futures you complete yourself ---- */

static _Atomic int cb_calls, drop_calls;

static void count_cb(kart_future *f, void *arg)
{
    (void)f;
    (void)arg;
    atomic_fetch_add(&cb_calls, 1);
}

START_TEST(own_future_set_result)
{
    atomic_store(&cb_calls, 0);
    kart_future *f;
    ck_assert_int_eq(kart_future_create(NULL), -EINVAL);
    ck_assert_int_eq(kart_future_create(&f), 0);
    ck_assert_int_eq(kart_future_done(f), 0);
    ck_assert_int_eq(kart_future_running(f), 0);
    ck_assert_int_eq(kart_future_wait(f, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_future_successful(f), -EBUSY);
    ck_assert_int_eq(kart_future_add_done_callback(f, count_cb, NULL), 0);
    ck_assert_int_eq(kart_future_add_error_callback(f, count_cb, NULL), 0);
    ck_assert_int_eq(kart_future_set_running(f), 1);
    ck_assert_int_eq(kart_future_running(f), 1);
    ck_assert_int_eq(kart_future_set_running(f), -EALREADY);
    ck_assert_int_eq(kart_future_cancel(f), 0); /* running: too late */
    char big[300];
    memset(big, 7, sizeof(big));
    ck_assert_int_eq(kart_future_set_result(f, NULL, 4), -EINVAL);
    ck_assert_int_eq(kart_future_set_result(f, big, sizeof(big)), 0);
    ck_assert_int_eq(atomic_load(&cb_calls), 1); /* the done one, not the error one */
    ck_assert_int_eq(kart_future_set_result(f, big, 1), -EALREADY);
    ck_assert_int_eq(kart_future_set_error(f, -EIO), -EALREADY);
    ck_assert_int_eq(kart_future_set_result_ptr(f, big), -EALREADY);
    ck_assert_int_eq(atomic_load(&cb_calls), 1); /* once */
    ck_assert_int_eq(kart_future_done(f), 1);
    ck_assert_int_eq(kart_future_running(f), 0);
    ck_assert_int_eq(kart_future_successful(f), 1);
    char got[300];
    size_t len = 10;
    int te = 1;
    ck_assert_int_eq(kart_future_result(f, 0, got, &len, &te), -ENOBUFS);
    ck_assert_uint_eq(len, sizeof(big));
    ck_assert_int_eq(kart_future_result(f, 0, got, &len, &te), 0);
    ck_assert_int_eq(te, 0);
    ck_assert_mem_eq(got, big, sizeof(big));
    void *ptr;
    ck_assert_int_eq(kart_future_result_ptr(f, 0, &ptr, &te), -EINVAL); /* bytes */
    ck_assert_int_eq(kart_future_add_done_callback(f, count_cb, NULL), 1);
    ck_assert_int_eq(atomic_load(&cb_calls), 1);
    kart_future_free(f);
    kart_future_free(NULL);
}
END_TEST

static void count_drop_cb(kart_future *f, void *arg)
{
    (void)f;
    (void)arg;
    atomic_fetch_add(&drop_calls, 100);
}

START_TEST(own_future_set_error_ptr_cancel)
{
    atomic_store(&cb_calls, 0);
    kart_future *f;
    int te = 0;
    /* set_error */
    ck_assert_int_eq(kart_future_create(&f), 0);
    ck_assert_int_eq(kart_future_add_error_callback(f, count_cb, NULL), 0);
    ck_assert_int_eq(kart_future_set_error(f, 0), -EINVAL);
    ck_assert_int_eq(kart_future_set_error(f, 5), -EINVAL);
    ck_assert_int_eq(kart_future_set_error(f, -ETIMEDOUT), 0);
    ck_assert_int_eq(atomic_load(&cb_calls), 1);
    size_t len = 0;
    ck_assert_int_eq(kart_future_result(f, 0, NULL, &len, &te), 0);
    ck_assert_int_eq(te, -ETIMEDOUT);
    ck_assert_int_eq(kart_future_successful(f), 0);
    ck_assert_int_eq(kart_future_cancelled(f), 0);
    kart_future_free(f);
    /* set_result_ptr */
    ck_assert_int_eq(kart_future_create(&f), 0);
    ck_assert_int_eq(kart_future_set_result_ptr(f, &te), 0);
    void *ptr = NULL;
    ck_assert_int_eq(kart_future_result_ptr(f, 0, &ptr, &te), 0);
    ck_assert_ptr_eq(ptr, &te);
    ck_assert_int_eq(kart_future_result(f, 0, NULL, &len, &te), -EINVAL); /* a pointer */
    ck_assert_int_eq(kart_future_result_ptr(f, 0, &ptr, NULL), -EINVAL);
    ck_assert_int_eq(kart_future_result_ptr(f, 0, NULL, &te), -EINVAL);
    kart_future_free(f);
    /* cancel before running: set_running says so */
    ck_assert_int_eq(kart_future_create(&f), 0);
    ck_assert_int_eq(kart_future_cancel(f), 1);
    ck_assert_int_eq(kart_future_cancel(f), 0);
    ck_assert_int_eq(kart_future_cancelled(f), 1);
    ck_assert_int_eq(kart_future_set_running(f), 0);
    ck_assert_int_eq(kart_future_error(f, 0, &te), 0);
    ck_assert_int_eq(te, -ECANCELED);
    ck_assert_int_eq(kart_future_set_result(f, NULL, 0), -EALREADY);
    kart_future_free(f);
    /* freed unset: its callbacks never run */
    atomic_store(&drop_calls, 0);
    ck_assert_int_eq(kart_future_create(&f), 0);
    ck_assert_int_eq(kart_future_add_done_callback(f, count_drop_cb, NULL), 0);
    kart_future_free(f);
    ck_assert_int_eq(atomic_load(&drop_calls), 0);
    /* a pool's future is not yours to set */
    kart_pool *p = make(KART_POOL_INLINE, 0);
    int e = 0;
    ck_assert_int_eq(kart_pool_submit(p, t_return, &e, sizeof(e), &f), 0);
    ck_assert_int_eq(kart_future_set_result(f, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_future_set_error(f, -EIO), -EINVAL);
    ck_assert_int_eq(kart_future_set_result_ptr(f, NULL), -EINVAL);
    ck_assert_int_eq(kart_future_set_running(f), -EINVAL);
    kart_future_free(f);
    kart_pool_free(p);
    ck_assert_int_eq(kart_future_set_result(NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_future_set_error(NULL, -EIO), -EINVAL);
    ck_assert_int_eq(kart_future_set_running(NULL), -EINVAL);
}
END_TEST

/* ---- many futures ---- */

typedef struct setter {
    kart_future *f;
    int64_t after_ns;
    int err;
} setter;

static void *set_later(void *arg)
{
    setter *s = arg;
    usleep((useconds_t)(s->after_ns / 1000));
    if (s->err)
        kart_future_set_error(s->f, s->err);
    else
        kart_future_set_result(s->f, NULL, 0);
    return NULL;
}

static void make_futures(kart_future **fs, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(kart_future_create(&fs[i]), 0);
}

static void free_futures(kart_future **fs, int n)
{
    for (int i = 0; i < n; i++)
        kart_future_free(fs[i]);
}

/* test_concurrent_futures' WaitTests: test_first_completed,
 * test_first_exception, test_all_completed, test_timeout. */
START_TEST(wait_many_modes)
{
    kart_future *fs[3];
    make_futures(fs, 3);
    pthread_t t;
    /* FIRST_COMPLETED: returns when one is set from another thread */
    setter s = {fs[1], 20 * MS, 0};
    ck_assert_int_eq(pthread_create(&t, NULL, set_later, &s), 0);
    ck_assert_int_eq(kart_future_wait_many(fs, 3, KART_FUTURE_FIRST_COMPLETED, 10000 * MS), 1);
    ck_assert_int_eq(kart_future_done(fs[1]), 1);
    pthread_join(t, NULL);
    /* ALL_COMPLETED within a timeout: not met */
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_future_wait_many(fs, 3, KART_FUTURE_ALL_COMPLETED, 30 * MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 30 * MS);
    ck_assert_int_eq(kart_future_wait_many(fs, 3, KART_FUTURE_ALL_COMPLETED, 0), -ETIMEDOUT);
    /* FIRST_EXCEPTION: a success does not end it, a failure does */
    ck_assert_int_eq(kart_future_wait_many(fs, 3, KART_FUTURE_FIRST_EXCEPTION, 10 * MS),
                     -ETIMEDOUT);
    s = (setter){fs[2], 10 * MS, -EIO};
    ck_assert_int_eq(pthread_create(&t, NULL, set_later, &s), 0);
    ck_assert_int_eq(kart_future_wait_many(fs, 3, KART_FUTURE_FIRST_EXCEPTION, 10000 * MS), 2);
    pthread_join(t, NULL);
    /* a cancelled future is no exception; then all are done */
    kart_future *two[2] = {fs[0], fs[1]};
    ck_assert_int_eq(kart_future_cancel(fs[0]), 1);
    ck_assert_int_eq(kart_future_wait_many(two, 2, KART_FUTURE_FIRST_EXCEPTION, 0), 2);
    ck_assert_int_eq(kart_future_wait_many(fs, 3, KART_FUTURE_ALL_COMPLETED, -1), 3);
    ck_assert_int_eq(kart_future_wait_many(fs, 0, KART_FUTURE_ALL_COMPLETED, -1), 0);
    ck_assert_int_eq(kart_future_wait_many(NULL, 0, KART_FUTURE_FIRST_COMPLETED, -1), 0);
    /* errors */
    ck_assert_int_eq(kart_future_wait_many(NULL, 1, KART_FUTURE_ALL_COMPLETED, 0), -EINVAL);
    ck_assert_int_eq(kart_future_wait_many(fs, 3, (kart_future_wait_mode)9, 0), -EINVAL);
    kart_future *with_null[2] = {fs[0], NULL};
    ck_assert_int_eq(kart_future_wait_many(with_null, 2, KART_FUTURE_ALL_COMPLETED, 0), -EINVAL);
    free_futures(fs, 3);
}
END_TEST

/* Pool futures of two pools, and a waiter whose callbacks outlive it. */
START_TEST(wait_many_pool_futures)
{
    kart_pool *a = make(KART_POOL_THREADS, 1), *b = make(KART_POOL_PROCESSES, 1);
    atomic_store(&gate, 0);
    atomic_store(&started, 0);
    kart_future *fs[2];
    ck_assert_int_eq(kart_pool_submit(a, t_block, NULL, 0, &fs[0]), 0);
    int e = -EPIPE;
    ck_assert_int_eq(kart_pool_submit(b, t_return, &e, sizeof(e), &fs[1]), 0);
    ck_assert_int_eq(kart_future_wait_many(fs, 2, KART_FUTURE_FIRST_EXCEPTION, 10000 * MS), 1);
    ck_assert_int_eq(kart_future_done(fs[1]), 1);
    await_started(1);
    ck_assert_int_eq(kart_future_running(fs[0]), 1);
    ck_assert_int_eq(kart_future_wait_many(fs, 2, KART_FUTURE_ALL_COMPLETED, 5 * MS), -ETIMEDOUT);
    atomic_store(&gate, 1);
    ck_assert_int_eq(kart_future_wait_many(fs, 2, KART_FUTURE_ALL_COMPLETED, -1), 2);
    free_futures(fs, 2);
    kart_pool_free(a);
    kart_pool_free(b);
}
END_TEST

/* test_concurrent_futures' AsCompletedTests: in completion order, those
 * already done first, a timeout that leaves the rest to a later call. */
START_TEST(as_completed_order)
{
    kart_future *fs[4];
    make_futures(fs, 4);
    ck_assert_int_eq(kart_future_set_result(fs[3], NULL, 0), 0);
    kart_as_completed *it;
    ck_assert_int_eq(kart_as_completed_create(fs, 4, &it), 0);
    size_t idx = 99;
    ck_assert_int_eq(kart_as_completed_next(it, 0, &idx), 1);
    ck_assert_uint_eq(idx, 3);
    ck_assert_int_eq(kart_as_completed_next(it, 0, &idx), -ETIMEDOUT);
    ck_assert_int_eq(kart_as_completed_next(it, 10 * MS, &idx), -ETIMEDOUT);
    ck_assert_int_eq(kart_future_set_error(fs[1], -EIO), 0);
    ck_assert_int_eq(kart_future_cancel(fs[0]), 1);
    ck_assert_int_eq(kart_as_completed_next(it, -1, &idx), 1);
    ck_assert_uint_eq(idx, 1);
    ck_assert_int_eq(kart_as_completed_next(it, -1, &idx), 1);
    ck_assert_uint_eq(idx, 0);
    pthread_t t;
    setter s = {fs[2], 10 * MS, 0};
    ck_assert_int_eq(pthread_create(&t, NULL, set_later, &s), 0);
    ck_assert_int_eq(kart_as_completed_next(it, 10000 * MS, &idx), 1);
    ck_assert_uint_eq(idx, 2);
    pthread_join(t, NULL);
    ck_assert_int_eq(kart_as_completed_next(it, -1, &idx), 0);
    ck_assert_int_eq(kart_as_completed_next(it, -1, &idx), 0);
    ck_assert_int_eq(kart_as_completed_next(NULL, -1, &idx), -EINVAL);
    ck_assert_int_eq(kart_as_completed_next(it, -1, NULL), -EINVAL);
    kart_as_completed_free(it);
    kart_as_completed_free(NULL);
    /* freed before the futures are done: their callbacks keep nothing */
    kart_future *more[2];
    make_futures(more, 2);
    ck_assert_int_eq(kart_as_completed_create(more, 2, &it), 0);
    kart_as_completed_free(it);
    ck_assert_int_eq(kart_future_set_result(more[0], NULL, 0), 0);
    free_futures(more, 2); /* more[1] unset: its callback is dropped */
    /* errors */
    ck_assert_int_eq(kart_as_completed_create(fs, 4, NULL), -EINVAL);
    ck_assert_int_eq(kart_as_completed_create(NULL, 1, &it), -EINVAL);
    kart_future *with_null[1] = {NULL};
    ck_assert_int_eq(kart_as_completed_create(with_null, 1, &it), -EINVAL);
    ck_assert_int_eq(kart_as_completed_create(NULL, 0, &it), 0);
    ck_assert_int_eq(kart_as_completed_next(it, -1, &idx), 0);
    kart_as_completed_free(it);
    free_futures(fs, 4);
}
END_TEST

/* ---- shutdown(wait, cancel_futures) ---- */

/* test_concurrent_futures' test_cancel_futures: what is queued is
 * cancelled, what runs finishes; no more submits. */
START_TEST(shutdown_cancels_queued_and_waits)
{
    /* a thread pool: the gate is this process's memory */
    kart_pool_options o = {.kind = KART_POOL_THREADS, .workers = 1, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    atomic_store(&gate, 0);
    atomic_store(&started, 0);
    kart_future *run, *queued[3];
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &run), 0);
    await_started(1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &queued[i]), 0);
    ck_assert_int_eq(kart_pool_shutdown(p, false, true), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(kart_future_wait(queued[i], 10000 * MS), 0);
        ck_assert_int_eq(kart_future_cancelled(queued[i]), 1);
    }
    ck_assert_int_eq(kart_future_done(run), 0); /* still running */
    int te = 0;
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &queued[0]) == -ESHUTDOWN, 1);
    atomic_store(&gate, 1);
    ck_assert_int_eq(kart_pool_shutdown(p, true, false), 0); /* again, waiting */
    ck_assert_int_eq(kart_future_done(run), 1);
    ck_assert_int_eq(kart_future_error(run, 0, &te), 0);
    ck_assert_int_eq(te, 0);
    ck_assert_int_eq(kart_pool_join(p, 0), 0);
    ck_assert_int_eq(kart_pool_shutdown(NULL, true, true), -EINVAL);
    kart_future_free(run);
    for (int i = 0; i < 3; i++)
        kart_future_free(queued[i]);
    kart_pool_free(p);
}
END_TEST

/* Without cancel_futures, everything queued runs. */
START_TEST(shutdown_without_cancel_drains)
{
    kart_pool *p = make(kinds[_i], 1);
    kart_future *fs[5];
    int e = 0;
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(kart_pool_submit(p, t_return, &e, sizeof(e), &fs[i]), 0);
    ck_assert_int_eq(kart_pool_shutdown(p, true, false), 0);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(kart_future_done(fs[i]), 1);
        ck_assert_int_eq(kart_future_successful(fs[i]), 1);
        kart_future_free(fs[i]);
    }
    kart_pool_kind k;
    ck_assert_int_eq(kart_pool_kind_of(p, &k), 0);
    ck_assert_int_eq(k, kinds[_i]);
    ck_assert_int_eq(kart_pool_kind_of(p, NULL), -EINVAL);
    ck_assert_int_eq(kart_pool_kind_of(NULL, &k), -EINVAL);
    ck_assert_int_eq(kart_pool_join(p, -1), 0);
    kart_pool_free(p);
}
END_TEST

/* Rule 9: a callback added to a done future is not run inside the call;
 * a future's done callbacks fire once. */
START_TEST(callback_on_done_future_not_run_inside)
{
    atomic_store(&cb_calls, 0);
    kart_pool *p = make(kinds[_i], 1);
    kart_future *f;
    int e = -EIO;
    ck_assert_int_eq(kart_pool_submit(p, t_return, &e, sizeof(e), &f), 0);
    ck_assert_int_eq(kart_future_add_done_callback(f, count_cb, NULL) >= 0, 1);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    for (int i = 0; i < 2000 && atomic_load(&cb_calls) < 1 && kinds[_i] != KART_POOL_INLINE; i++)
        usleep(500);
    int before = atomic_load(&cb_calls);
    ck_assert_int_le(before, 1);
    ck_assert_int_eq(kart_future_add_done_callback(f, count_cb, NULL), 1);
    ck_assert_int_eq(kart_future_add_error_callback(f, count_cb, NULL), 1);
    ck_assert_int_eq(atomic_load(&cb_calls), before);
    kart_future_free(f);
    kart_pool_free(p);
}
END_TEST

static Suite *future_suite(void)
{
    Suite *s = suite_create("future");
    TCase *tc = tcase_create("results");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, task_timeout_is_not_a_wait_timeout, 0, 3);
    tcase_add_loop_test(tc, default_result_size_is_64, 0, 3);
    tcase_add_loop_test(tc, map_failure_names_item_and_zeroes_rest_of_chunk, 0, 3);
    tcase_add_loop_test(tc, imap_items_before_the_failing_one_succeed, 0, 3);
    tcase_add_test(tc, map_failure_names_dead_worker);
    tcase_add_loop_test(tc, map_progress_reports_on_the_calling_thread, 0, 3);
    tcase_add_loop_test(tc, callback_on_done_future_not_run_inside, 0, 3);
    suite_add_tcase(s, tc);

    tc = tcase_create("own");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, own_future_set_result);
    tcase_add_test(tc, own_future_set_error_ptr_cancel);
    suite_add_tcase(s, tc);

    tc = tcase_create("many");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, wait_many_modes);
    tcase_add_test(tc, wait_many_pool_futures);
    tcase_add_test(tc, as_completed_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, shutdown_cancels_queued_and_waits);
    tcase_add_loop_test(tc, shutdown_without_cancel_drains, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(future_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* Description: thread and inline pools of kart/pool.h — creating them,
 * submit/apply with futures (wait, result, done, successful, error,
 * cancel, done and error callbacks, completion on an event loop), map and
 * map_async with chunks, imap and imap_unordered (lazy, in order or not,
 * failing chunks, failing sources), close/terminate/join, initializer and
 * max tasks per child, helping waiters, and NUMA placement on the test
 * topologies under tests/numa (placement of workers, the order in which
 * queues and workers are robbed, the queue a submit goes to). Every
 * documented error of every function. Process pools: check_pool_proc.c.
 * Some cases peek at core/pool_private.h to see placement and queues. */
#include "testutil.h"
#include "pool_testutil.h"
#include "kt_alloc.h"

#include "fault.h"
#include "numa_private.h"
#include "pool_private.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#define MS KT_MS

/* ---- tasks ---- */

static int t_square(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    ck_assert_uint_eq(len, 8);
    memcpy(&x, arg, 8);
    x *= x;
    if (*res_len < 8) { /* says what it needs: the pool fails it, -EMSGSIZE */
        *res_len = 8;
        return 0;
    }
    memcpy(res, &x, 8);
    *res_len = 8;
    return 0;
}

/* Fails with the (negative) int it is given. */
static int t_fail(const void *arg, size_t len, void *res, size_t *res_len)
{
    int e;
    memcpy(&e, arg, sizeof(e));
    *res_len = 0;
    return e;
}

/* Claims one byte more than the capacity. */
static int t_too_long(const void *arg, size_t len, void *res, size_t *res_len)
{
    *res_len += 1;
    return 0;
}

/* Fills its whole capacity with 0xab. */
static int t_fill(const void *arg, size_t len, void *res, size_t *res_len)
{
    (void)arg;
    (void)len;
    memset(res, 0xab, *res_len);
    return 0;
}

/* Writes the calling thread's kernel id. */
static int t_tid(const void *arg, size_t len, void *res, size_t *res_len)
{
    pid_t t = (pid_t)syscall(SYS_gettid);
    memcpy(res, &t, sizeof(t));
    *res_len = sizeof(t);
    return 0;
}

/* ---- counting allocations ----
 *
 * The submit path of a pool must not allocate in steady state (issue 17):
 * kt_alloc.h counts this binary's allocations, where it can. */

static _Atomic int gate, started;

/* Runs until the gate opens. */
static int t_block(const void *arg, size_t len, void *res, size_t *res_len)
{
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&gate))
        usleep(200);
    *res_len = 0;
    return 0;
}

static void gate_close(void)
{
    atomic_store(&gate, 0);
    atomic_store(&started, 0);
}

static void await_started(int n)
{
    for (int i = 0; i < 20000 && atomic_load(&started) < n; i++)
        usleep(500);
    ck_assert_int_ge(atomic_load(&started), n);
}

static int t_ptr(void *arg, void **res)
{
    *res = (char *)arg + 1;
    return arg ? 0 : -EFAULT;
}

static kart_pool *make(kart_pool_kind kind, int workers)
{
    kart_pool *p;
    kart_pool_options o = {.kind = kind, .workers = workers};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    return p;
}

static kart_pool_kind kind_of_loop(int i)
{
    return i == 0 ? KART_POOL_THREADS : KART_POOL_INLINE;
}

static int t_item(const void *arg, size_t len, void *res, size_t *res_len);

/* Doubles its 8-byte argument (the allocation test's task, not built
 * under the sanitizers that replace malloc). */
__attribute__((unused)) static int t_twice(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    memcpy(&x, arg, sizeof(x));
    x *= 2;
    memcpy(res, &x, sizeof(x));
    *res_len = sizeof(x);
    return 0;
}

/* ---- create ---- */

START_TEST(create_rejects_bad_options)
{
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(NULL, NULL), -EINVAL);
    kart_pool_options o = {.kind = 7};
    ck_assert_int_eq(kart_pool_create(&p, &o), -EINVAL);
    o = (kart_pool_options){.placement = 9};
    ck_assert_int_eq(kart_pool_create(&p, &o), -EINVAL);
    o = (kart_pool_options){.workers = 4097};
    ck_assert_int_eq(kart_pool_create(&p, &o), -EINVAL);
    o = (kart_pool_options){.placement = KART_POOL_PLACE_PER_NODE, .per_node = 4097};
    ck_assert_int_eq(kart_pool_create(&p, &o), -EINVAL);
    o = (kart_pool_options){.max_jobs = (1 << 20) + 1};
    ck_assert_int_eq(kart_pool_create(&p, &o), -EINVAL);
    o = (kart_pool_options){.placement = KART_POOL_PLACE_PER_NODE, .per_node = 0};
    ck_assert_int_eq(kart_pool_create(&p, &o), -EINVAL);
    kart_pool_free(NULL);
    ck_assert_int_eq(pool_kind(NULL), -EINVAL);
    ck_assert_int_eq(kart_pool_workers(NULL), -EINVAL);
}
END_TEST

START_TEST(create_defaults)
{
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, NULL), 0);
    cpu_set_t s;
    ck_assert_int_eq(sched_getaffinity(0, sizeof(s), &s), 0);
    ck_assert_int_eq(kart_pool_workers(p), CPU_COUNT(&s));
    ck_assert_int_eq(pool_kind(p), KART_POOL_THREADS);
    kart_pool_free(p);
    p = make(KART_POOL_INLINE, 3);
    ck_assert_int_eq(kart_pool_workers(p), 0);
    ck_assert_int_eq(pool_kind(p), KART_POOL_INLINE);
    kart_pool_free(p);
}
END_TEST

/* ---- submit, futures ---- */

START_TEST(submit_returns_result)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    kart_future *f;
    uint64_t x = 12, y = 0;
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &f), 0);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    ck_assert_int_eq(kart_future_done(f), 1);
    ck_assert_int_eq(kart_future_successful(f), 1);
    ck_assert_int_eq(fut_error(f), 0);
    ck_assert_int_eq(kart_future_cancelled(f), 0);
    size_t len = 8;
    ck_assert_int_eq(fut_result(f, -1, &y, &len), 0);
    ck_assert_uint_eq(len, 8);
    ck_assert_uint_eq(y, 144);
    /* too small a buffer: -ENOBUFS and the length needed, nothing else
     * written, and the result can be read again */
    len = 3;
    y = 0;
    int te = 7;
    ck_assert_int_eq(kart_future_result(f, -1, &y, &len, &te), -ENOBUFS);
    ck_assert_uint_eq(len, 8);
    ck_assert_int_eq(te, 7);
    ck_assert_uint_eq(y, 0);
    ck_assert_int_eq(kart_future_result(f, -1, &y, &len, &te), 0);
    ck_assert_int_eq(te, 0);
    ck_assert_uint_eq(y, 144);
    ck_assert_int_eq(kart_future_result(f, -1, &y, &len, NULL), -EINVAL);
    len = 1;
    ck_assert_int_eq(fut_result(f, -1, NULL, &len), -EINVAL);
    ck_assert_int_eq(fut_result(f, -1, &y, NULL), -EINVAL);
    ck_assert_int_eq(fut_result(NULL, -1, &y, &len), -EINVAL);
    void *ptr;
    ck_assert_int_eq(fut_result_ptr(f, -1, &ptr), -EINVAL);
    ck_assert_int_eq(kart_future_cancel(f), 0);
    kart_future_free(f);
    kart_future_free(NULL);
    kart_pool_free(p);
}
END_TEST

START_TEST(submit_rejects_bad_arguments)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    kart_future *f;
    uint64_t x = 1;
    ck_assert_int_eq(kart_pool_submit(NULL, t_square, &x, 8, &f), -EINVAL);
    ck_assert_int_eq(kart_pool_submit(p, NULL, &x, 8, &f), -EINVAL);
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, NULL), -EINVAL);
    ck_assert_int_eq(kart_pool_submit(p, t_square, NULL, 8, &f), -EINVAL);
    ck_assert_int_eq(kart_pool_submit_node(p, -2, t_square, &x, 8, &f), -EINVAL);
    ck_assert_int_eq(kart_pool_submit_node(p, 4096, t_square, &x, 8, &f), -ENOENT);
    ck_assert_int_eq(kart_pool_submit_ptr(NULL, t_ptr, NULL, &f), -EINVAL);
    ck_assert_int_eq(kart_pool_submit_ptr(p, NULL, NULL, &f), -EINVAL);
    ck_assert_int_eq(kart_pool_submit_ptr(p, t_ptr, NULL, NULL), -EINVAL);
    /* node 0 exists everywhere */
    ck_assert_int_eq(kart_pool_submit_node(p, 0, t_square, &x, 8, &f), 0);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    kart_future_free(f);
    ck_assert_int_eq(kart_pool_close(p), 0);
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &f), -ESHUTDOWN);
    ck_assert_int_eq(kart_pool_submit_ptr(p, t_ptr, &x, &f), -ESHUTDOWN);
    kart_pool_free(p);
}
END_TEST

START_TEST(task_errors_surface)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    kart_future *f;
    int e = -EIO;
    ck_assert_int_eq(kart_pool_submit(p, t_fail, &e, sizeof(e), &f), 0);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    ck_assert_int_eq(fut_error(f), -EIO);
    ck_assert_int_eq(kart_future_successful(f), 0);
    size_t len = 0;
    ck_assert_int_eq(fut_result(f, -1, NULL, &len), -EIO);
    kart_future_free(f);
    /* a result longer than its capacity */
    ck_assert_int_eq(kart_pool_submit(p, t_too_long, NULL, 0, &f), 0);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    ck_assert_int_eq(fut_error(f), -EMSGSIZE);
    kart_future_free(f);
    kart_pool_free(p);
}
END_TEST

START_TEST(pointer_tasks)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    char buf[4];
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit_ptr(p, t_ptr, buf, &f), 0);
    void *r = NULL;
    ck_assert_int_eq(fut_result_ptr(f, -1, &r), 0);
    ck_assert_ptr_eq(r, buf + 1);
    size_t len = 0;
    ck_assert_int_eq(fut_result(f, -1, NULL, &len), -EINVAL);
    ck_assert_int_eq(fut_result_ptr(f, -1, NULL), -EINVAL);
    ck_assert_int_eq(fut_result_ptr(NULL, -1, &r), -EINVAL);
    kart_future_free(f);
    ck_assert_int_eq(kart_pool_submit_ptr(p, t_ptr, NULL, &f), 0);
    ck_assert_int_eq(fut_result_ptr(f, -1, &r), -EFAULT);
    kart_future_free(f);
    kart_pool_free(p);
}
END_TEST

START_TEST(apply_runs_and_reports)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    uint64_t x = 9, y = 0;
    size_t len = 8;
    ck_assert_int_eq(pool_apply(p, t_square, &x, 8, &y, &len), 0);
    ck_assert_uint_eq(y, 81);
    /* *len is the task's capacity: a result longer fails the task */
    len = 4;
    int te = 0;
    ck_assert_int_eq(kart_pool_apply(p, t_square, &x, 8, &y, &len, &te), 0);
    ck_assert_int_eq(te, -EMSGSIZE);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(kart_pool_apply(p, t_square, &x, 8, &y, &len, NULL), -EINVAL);
    /* larger than the pool's result_size: the caller's capacity rules */
    char big[1000];
    len = sizeof(big);
    ck_assert_int_eq(kart_pool_apply(p, t_fill, NULL, 0, big, &len, &te), 0);
    ck_assert_int_eq(te, 0);
    ck_assert_uint_eq(len, sizeof(big));
    ck_assert_int_eq((unsigned char)big[999], 0xab);
    int e = -ENOSPC;
    len = 0;
    ck_assert_int_eq(pool_apply(p, t_fail, &e, sizeof(e), NULL, &len), -ENOSPC);
    ck_assert_int_eq(pool_apply(p, t_square, &x, 8, &y, NULL), -EINVAL);
    len = 8;
    ck_assert_int_eq(pool_apply(p, t_square, &x, 8, NULL, &len), -EINVAL);
    ck_assert_int_eq(pool_apply(NULL, t_square, &x, 8, &y, &len), -EINVAL);
    kart_pool_close(p);
    ck_assert_int_eq(pool_apply(p, t_square, &x, 8, &y, &len), -ESHUTDOWN);
    kart_pool_free(p);
}
END_TEST

START_TEST(wait_times_out_not_early)
{
    gate_close();
    kart_pool_options o = {.workers = 1, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &f), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_future_wait(f, 20 * MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 20 * MS);
    ck_assert_int_eq(kart_future_wait(f, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_future_done(f), 0);
    ck_assert_int_eq(kart_future_successful(f), -EBUSY);
    int te = 0;
    ck_assert_int_eq(kart_future_error(f, 0, &te), -ETIMEDOUT);
    ck_assert_int_eq(kart_future_error(f, 5 * MS, &te), -ETIMEDOUT);
    /* The worker may not have been scheduled yet on a loaded machine
     * (30 ms went by under ThreadSanitizer at load 16): running is 1 once
     * the task began, which it does while the gate holds it. */
    await_started(1);
    ck_assert_int_eq(kart_future_running(f), 1);
    size_t len = 0;
    ck_assert_int_eq(fut_result(f, 5 * MS, NULL, &len), -ETIMEDOUT);
    ck_assert_int_eq(kart_future_wait(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_future_done(NULL), -EINVAL);
    ck_assert_int_eq(kart_future_successful(NULL), -EINVAL);
    ck_assert_int_eq(kart_future_error(NULL, 0, &te), -EINVAL);
    ck_assert_int_eq(kart_future_error(f, 0, NULL), -EINVAL);
    ck_assert_int_eq(kart_future_running(NULL), -EINVAL);
    ck_assert_int_eq(kart_future_cancelled(NULL), -EINVAL);
    ck_assert_int_eq(kart_future_cancel(NULL), -EINVAL);
    atomic_store(&gate, 1);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    ck_assert_int_eq(kart_future_successful(f), 1);
    kart_future_free(f);
    kart_pool_free(p);
}
END_TEST

static _Atomic int cb_order[8], cb_n, err_cb_n;

static void rec_cb(kart_future *f, void *arg)
{
    int i = atomic_fetch_add(&cb_n, 1);
    if (i < 8)
        atomic_store(&cb_order[i], (int)(intptr_t)arg);
}

static void err_cb(kart_future *f, void *arg)
{
    atomic_fetch_add(&err_cb_n, 1);
    ck_assert_int_ne(fut_error(f), 0);
}

START_TEST(cancel_queued_task)
{
    gate_close();
    atomic_store(&cb_n, 0);
    atomic_store(&err_cb_n, 0);
    kart_pool_options o = {.workers = 1, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    kart_future *run, *queued;
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &run), 0);
    await_started(1);
    uint64_t x = 3;
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &queued), 0);
    ck_assert_int_eq(kart_future_add_done_callback(queued, rec_cb, (void *)1), 0);
    ck_assert_int_eq(kart_future_add_error_callback(queued, err_cb, NULL), 0);
    ck_assert_int_eq(kart_future_cancel(queued), 1);
    ck_assert_int_eq(kart_future_cancel(queued), 0);
    ck_assert_int_eq(kart_future_cancelled(queued), 1);
    ck_assert_int_eq(kart_future_wait(queued, 1000 * MS), 0);
    ck_assert_int_eq(fut_error(queued), -ECANCELED);
    ck_assert_int_eq(kart_future_successful(queued), 0);
    ck_assert_int_eq(atomic_load(&cb_n), 1);
    ck_assert_int_eq(atomic_load(&err_cb_n), 1);
    /* running: too late */
    ck_assert_int_eq(kart_future_cancel(run), 0);
    ck_assert_int_eq(kart_future_cancelled(run), 0);
    atomic_store(&gate, 1);
    ck_assert_int_eq(kart_future_wait(run, -1), 0);
    ck_assert_int_eq(fut_error(run), 0);
    ck_assert_int_eq(kart_future_cancel(run), 0);
    kart_future_free(run);
    kart_future_free(queued);
    kart_pool_free(p);
}
END_TEST

START_TEST(callbacks_run_in_order)
{
    gate_close();
    atomic_store(&cb_n, 0);
    atomic_store(&err_cb_n, 0);
    kart_pool_options o = {.workers = 1, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &f), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_future_add_done_callback(f, rec_cb, (void *)(intptr_t)(i + 1)), 0);
    ck_assert_int_eq(kart_future_add_error_callback(f, err_cb, NULL), 0);
    ck_assert_int_eq(kart_future_add_done_callback(NULL, rec_cb, NULL), -EINVAL);
    ck_assert_int_eq(kart_future_add_done_callback(f, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_future_add_error_callback(NULL, err_cb, NULL), -EINVAL);
    ck_assert_int_eq(kart_future_add_error_callback(f, NULL, NULL), -EINVAL);
    ck_assert_int_eq(atomic_load(&cb_n), 0);
    atomic_store(&gate, 1);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    /* the callbacks ran before the waiter was woken or after: wait a bit */
    for (int i = 0; i < 2000 && atomic_load(&cb_n) < 3; i++)
        usleep(500);
    ck_assert_int_eq(atomic_load(&cb_n), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(atomic_load(&cb_order[i]), i + 1);
    ck_assert_int_eq(atomic_load(&err_cb_n), 0); /* it succeeded */
    /* added once done: 1, and it never runs inside the call (rule 9) */
    ck_assert_int_eq(kart_future_add_done_callback(f, rec_cb, (void *)9), 1);
    ck_assert_int_eq(atomic_load(&cb_n), 3);
    ck_assert_int_eq(kart_future_add_error_callback(f, err_cb, NULL), 1);
    ck_assert_int_eq(atomic_load(&err_cb_n), 0);
    kart_future_free(f);
    kart_pool_free(p);
}
END_TEST

START_TEST(too_many_jobs_is_eagain)
{
    gate_close();
    kart_pool_options o = {.workers = 1, .max_jobs = 4, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    kart_future *f[5];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &f[i]), 0);
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &f[4]), -EAGAIN);
    uint64_t x = 1, y;
    ck_assert_int_eq(pool_map(p, t_square, &x, 8, &y, 8, 1, 0), -EAGAIN);
    atomic_store(&gate, 1);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(kart_future_wait(f[i], -1), 0);
        kart_future_free(f[i]);
    }
    /* The slots come back, each once its worker has let go of it: on a
     * slow machine (QEMU's TCG) that can be a moment after the wait. */
    int64_t end = kart_now_ns() + 5000 * KT_MS;
    for (int i = 0; i < 4; i++) {
        int rc;
        while ((rc = kart_pool_submit(p, t_block, NULL, 0, &f[i])) == -EAGAIN &&
               kart_now_ns() < end)
            usleep(100);
        ck_assert_int_eq(rc, 0);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(kart_future_wait(f[i], -1), 0);
        kart_future_free(f[i]);
    }
    kart_pool_free(p);
}
END_TEST

/* kart_pool_submit_many: n tasks, all queued, each with its own
 * argument and result, under every kind of pool. */
START_TEST(submit_many_runs_every_task)
{
    enum { N = 300 };
    kart_pool_kind kinds[] = {KART_POOL_THREADS, KART_POOL_INLINE, KART_POOL_PROCESSES};
    kart_pool *p = make(kinds[_i], 2);
    uint64_t x[N];
    for (int i = 0; i < N; i++)
        x[i] = (uint64_t)i + 1;
    static kart_future *f[N];
    for (int round = 0; round < 3; round++) { /* slots come back and go out again */
        ck_assert_int_eq(kart_pool_submit_many(p, t_square, x, 8, N, f), 0);
        for (int i = 0; i < N; i++) {
            uint64_t y = 0;
            size_t len = sizeof(y);
            ck_assert_int_eq(fut_result(f[i], -1, &y, &len), 0);
            ck_assert_uint_eq(len, 8);
            ck_assert_uint_eq(y, x[i] * x[i]);
            kart_future_free(f[i]);
        }
    }
    /* n == 0: nothing queued, nothing written */
    f[0] = (kart_future *)&x[0];
    ck_assert_int_eq(kart_pool_submit_many(p, t_square, NULL, 0, 0, NULL), 0);
    ck_assert_int_eq(kart_pool_submit_many(p, t_square, x, 8, 0, f), 0);
    ck_assert_ptr_eq(f[0], (kart_future *)&x[0]);
    kart_pool_free(p);
}
END_TEST

START_TEST(submit_many_errors)
{
    kart_pool *p = make(KART_POOL_THREADS, 1);
    uint64_t x[4] = {1, 2, 3, 4};
    kart_future *f[5];
    ck_assert_int_eq(kart_pool_submit_many(NULL, t_square, x, 8, 4, f), -EINVAL);
    ck_assert_ptr_null(f[0]); /* out is cleared on an error */
    ck_assert_int_eq(kart_pool_submit_many(p, NULL, x, 8, 4, f), -EINVAL);
    ck_assert_int_eq(kart_pool_submit_many(p, t_square, x, 8, 4, NULL), -EINVAL);
    ck_assert_int_eq(kart_pool_submit_many(p, t_square, NULL, 8, 4, f), -EINVAL);
    kart_pool_free(p);

    /* More than max_jobs allows: none queued, every slot back. */
    gate_close();
    kart_pool_options o = {.workers = 1, .max_jobs = 4, .no_help = true};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &f[4]), 0);
    f[0] = f[1] = f[2] = f[3] = (kart_future *)&x[0];
    ck_assert_int_eq(kart_pool_submit_many(p, t_square, x, 8, 4, f), -EAGAIN);
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_null(f[i]);
    ck_assert_int_eq(kart_pool_submit_many(p, t_square, x, 8, 3, f), 0);
    atomic_store(&gate, 1);
    for (int i = 0; i < 3; i++) {
        uint64_t y = 0;
        size_t len = sizeof(y);
        ck_assert_int_eq(fut_result(f[i], -1, &y, &len), 0);
        ck_assert_uint_eq(y, x[i] * x[i]);
        kart_future_free(f[i]);
    }
    ck_assert_int_eq(kart_future_wait(f[4], -1), 0);
    kart_future_free(f[4]);

    /* Closed: -ESHUTDOWN, nothing queued. */
    ck_assert_int_eq(kart_pool_close(p), 0);
    f[0] = (kart_future *)&x[0];
    ck_assert_int_eq(kart_pool_submit_many(p, t_square, x, 8, 2, f), -ESHUTDOWN);
    ck_assert_ptr_null(f[0]);
    ck_assert_int_eq(kart_pool_join(p, -1), 0);
    kart_pool_free(p);
}
END_TEST

/* Per-thread slot caches (pool_mem.c): threads that keep slots in their
 * caches never make another thread's submit fail before max_jobs futures
 * are in flight, and a thread that ends gives its cache back. */
typedef struct cache_arg {
    kart_pool *p;
    pthread_barrier_t *hold;
    int bad;
} cache_arg;

static void *cache_user(void *arg)
{
    cache_arg *a = arg;
    for (int i = 0; i < 40; i++) {
        kart_future *f;
        uint64_t x = 3, y = 0;
        size_t len = sizeof(y);
        if (kart_pool_submit(a->p, t_square, &x, 8, &f) || fut_result(f, -1, &y, &len) || y != 9)
            a->bad++;
        kart_future_free(f);
    }
    pthread_barrier_wait(a->hold); /* caches filled */
    pthread_barrier_wait(a->hold); /* main is done counting */
    return NULL;
}

START_TEST(cached_slots_never_refuse_early)
{
    enum { T = 4, MAX = 1024 };
    gate_close();
    kart_pool_options o = {.workers = 1, .max_jobs = MAX, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    pthread_barrier_t hold;
    pthread_barrier_init(&hold, NULL, T + 1);
    pthread_t th[T];
    cache_arg a[T];
    for (int i = 0; i < T; i++) {
        a[i] = (cache_arg){p, &hold, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, cache_user, &a[i]), 0);
    }
    pthread_barrier_wait(&hold);
    int owned = 0;
    for (int i = 0; i < KART__POOL_CACHES; i++)
        owned += atomic_load(&p->caches[i].owner) != 0;
    ck_assert(p->cache_on); /* max_jobs 1,024: the caches are on */
    ck_assert_int_eq(owned, T);
    /* Their cached slots notwithstanding, max_jobs futures go in. */
    static kart_future *f[MAX + KART__POOL_CACHE_RESERVE + 1];
    size_t n = 0;
    int rc;
    while ((rc = kart_pool_submit(p, t_block, NULL, 0, &f[n])) == 0)
        n++;
    ck_assert_int_eq(rc, -EAGAIN);
    ck_assert_uint_ge(n, MAX);
    ck_assert_uint_le(n, MAX + KART__POOL_CACHE_RESERVE);
    atomic_store(&gate, 1);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(kart_future_wait(f[i], -1), 0);
        kart_future_free(f[i]);
    }
    pthread_barrier_wait(&hold);
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(a[i].bad, 0);
    }
    pthread_barrier_destroy(&hold);
    /* The threads ended: their caches are free for others to claim; this
     * thread's stays its own. */
    owned = 0;
    for (int i = 0; i < KART__POOL_CACHES; i++)
        owned += atomic_load(&p->caches[i].owner) != 0;
    ck_assert_int_eq(owned, 1);
    kart_pool_free(p);
}
END_TEST

typedef struct stress_arg {
    kart_pool *p;
    int base, bad;
} stress_arg;

static void *stress_submitter(void *arg)
{
    stress_arg *a = arg;
    kart_future *f[64];
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 64; i++) {
            uint64_t x = (uint64_t)(a->base + round * 64 + i);
            if (kart_pool_submit(a->p, t_square, &x, 8, &f[i]) != 0)
                a->bad++;
        }
        for (int i = 0; i < 64; i++) {
            uint64_t x = (uint64_t)(a->base + round * 64 + i), y = 0;
            size_t len = 8;
            if (fut_result(f[i], -1, &y, &len) != 0 || y != x * x)
                a->bad++;
            kart_future_free(f[i]);
        }
    }
    return NULL;
}

/* _i: 0 the default ring (8,192 entries), 1 a ring of 512 (max_jobs
 * 256, every submitter's 64 in flight at once): the ring goes round every
 * few hundred tasks, concurrent reservations meet its wrap, and a full
 * ring (spent entries behind a queued one) rotates under them. */
START_TEST(stress_4_submitters)
{
    kart_pool_options o = {.kind = KART_POOL_THREADS, .workers = 3, .max_jobs = _i ? 256 : 0};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    pthread_t t[4];
    stress_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (stress_arg){p, i * 100000, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, stress_submitter, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].bad, 0);
    }
    kart_pool_free(p);
}
END_TEST

/* Slots recycled through the per-thread caches as fast as they go: each
 * thread submits, waits and frees, one at a time or in bursts of 8, so a
 * slot a worker has just run goes to the thread's next submit at once.
 * The reuse must wait for the worker to be done with the job (its busy
 * mark cleared with a release, read with an acquire): ThreadSanitizer
 * reports the race where it does not, and a result read from a reused
 * slot shows up as a wrong square. */
typedef struct recycle_arg {
    kart_pool *p;
    int base, burst, n, bad;
} recycle_arg;

static void *recycle_submitter(void *arg)
{
    recycle_arg *a = arg;
    kart_future *f[8];
    for (int round = 0; round < a->n / a->burst; round++) {
        for (int i = 0; i < a->burst; i++) {
            uint64_t x = (uint64_t)(a->base + round * a->burst + i);
            if (kart_pool_submit(a->p, t_square, &x, 8, &f[i]) != 0)
                f[i] = NULL;
        }
        for (int i = 0; i < a->burst; i++) {
            uint64_t x = (uint64_t)(a->base + round * a->burst + i), y = 0;
            size_t len = 8;
            if (!f[i] || fut_result(f[i], -1, &y, &len) != 0 || y != x * x)
                a->bad++;
            if (f[i])
                kart_future_free(f[i]);
        }
    }
    return NULL;
}

START_TEST(stress_cache_recycle)
{
    enum { T = 4 };
    /* _i: 0 the waiters help (run their own task when no worker took it
     * first), 1 they do not (every task a worker's) */
    kart_pool_options o = {.workers = 2, .no_help = _i == 1};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    pthread_t t[T];
    recycle_arg a[T];
    for (int i = 0; i < T; i++) {
        /* Without helping every task is a worker's, a futex wake-up and
         * sleep per one-at-a-time task: fewer of them, so that a loaded
         * machine under ThreadSanitizer stays within the case's time. */
        a[i] = (recycle_arg){p, i * 1000000, i % 2 ? 8 : 1, _i == 1 ? 800 : 3000, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, recycle_submitter, &a[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].bad, 0);
    }
    /* The slots went through the caches (the default max_jobs has them). */
    ck_assert(p->cache_on);
    kart_pool_free(p);
}
END_TEST

START_TEST(waiter_helps_unless_told_not_to)
{
    gate_close();
    kart_pool *p = make(KART_POOL_THREADS, 1);
    kart_future *block, *f;
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &block), 0);
    await_started(1);
    /* the only worker is busy: the waiter runs the task itself */
    ck_assert_int_eq(kart_pool_submit(p, t_tid, NULL, 0, &f), 0);
    pid_t tid = 0;
    size_t len = sizeof(tid);
    ck_assert_int_eq(fut_result(f, 2000 * MS, &tid, &len), 0);
    ck_assert_int_eq(tid, (pid_t)syscall(SYS_gettid));
    kart_future_free(f);
    atomic_store(&gate, 1);
    kart_future_wait(block, -1);
    kart_future_free(block);
    kart_pool_free(p);

    gate_close();
    kart_pool_options o = {.workers = 1, .no_help = true};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &block), 0);
    await_started(1);
    ck_assert_int_eq(kart_pool_submit(p, t_tid, NULL, 0, &f), 0);
    ck_assert_int_eq(kart_future_wait(f, 30 * MS), -ETIMEDOUT);
    atomic_store(&gate, 1);
    ck_assert_int_eq(fut_result(f, -1, &tid, &len), 0);
    ck_assert_int_ne(tid, (pid_t)syscall(SYS_gettid));
    kart_future_free(f);
    kart_future_wait(block, -1);
    kart_future_free(block);
    kart_pool_free(p);
}
END_TEST

/* At most half of a thread pool's workers spin idle, and while one does,
 * a submit wakes nobody: the spinner must stop counting itself once it
 * claims a task, or a second task queued behind a long first one would
 * wait for it beside a sleeping worker. Two workers (one may spin), a
 * waiter that does not help: the second task runs while the first still
 * blocks, whether the workers were awake (a task just before) or asleep
 * (past the idle spin), and whether it is queued at once or once the
 * first has started. */
START_TEST(second_task_runs_beside_a_blocked_one)
{
    kart_pool_options o = {.workers = 2, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    for (int round = 0; round < 40; round++) {
        gate_close();
        if (round % 4 < 2) { /* a worker spinning */
            kart_future *w;
            ck_assert_int_eq(kart_pool_submit(p, t_tid, NULL, 0, &w), 0);
            ck_assert_int_eq(kart_future_wait(w, 2000 * MS), 0);
            kart_future_free(w);
        } else {
            usleep(20000); /* past the idle spin: both asleep */
        }
        kart_future *block, *f;
        ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &block), 0);
        if (round % 2)
            await_started(1);
        ck_assert_int_eq(kart_pool_submit(p, t_tid, NULL, 0, &f), 0);
        ck_assert_msg(kart_future_wait(f, 5000 * MS) == 0,
                      "round %d: the second task waited for the blocked first", round);
        ck_assert_int_eq(atomic_load(&gate), 0);
        atomic_store(&gate, 1);
        ck_assert_int_eq(kart_future_wait(block, -1), 0);
        kart_future_free(f);
        kart_future_free(block);
    }
    kart_pool_free(p);
}
END_TEST

/* A waiter runs its own queued task (the one-at-a-time case) and steps
 * the ring's head past its entry: a thousand submit-wait-free turns behind
 * a busy worker leave nothing queued, each task run by the waiter. */
START_TEST(waiter_runs_own_task_and_steps_the_ring)
{
    gate_close();
    kart_pool *p = make(KART_POOL_THREADS, 1);
    kart_future *block, *f;
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &block), 0);
    await_started(1);
    pid_t me = (pid_t)syscall(SYS_gettid);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(kart_pool_submit(p, t_tid, NULL, 0, &f), 0);
        pid_t tid = 0;
        size_t len = sizeof(tid);
        ck_assert_int_eq(fut_result(f, -1, &tid, &len), 0);
        ck_assert_int_eq(tid, me);
        kart_future_free(f);
    }
    ck_assert_uint_eq(atomic_load(&p->nodes[0].head), atomic_load(&p->nodes[0].tail));
    ck_assert_uint_eq(atomic_load(&p->helpers_used), 0);
    /* A poll (timeout 0) never runs the task: it only looks. */
    ck_assert_int_eq(kart_pool_submit(p, t_tid, NULL, 0, &f), 0);
    ck_assert_int_eq(kart_future_wait(f, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_future_running(f), 0);
    atomic_store(&gate, 1);
    pid_t tid = 0;
    size_t len = sizeof(tid);
    ck_assert_int_eq(fut_result(f, -1, &tid, &len), 0);
    kart_future_free(f);
    ck_assert_int_eq(kart_future_wait(block, -1), 0);
    kart_future_free(block);
    kart_pool_free(p);
}
END_TEST

#if KT_COUNT_MALLOC
/* One pass of submit, wait, read and free: one at a time, then in bursts
 * of 1,000. Returns how many results were wrong. No ck_assert inside:
 * check's bookkeeping may allocate. */
static int submit_pass(kart_pool *p)
{
    int bad = 0;
    static kart_future *fs[1000];
    for (uint64_t i = 0; i < 5000; i++) {
        uint64_t r = 0;
        size_t len = sizeof(r);
        if (kart_pool_submit(p, t_twice, &i, sizeof(i), &fs[0]) != 0) {
            bad++;
            continue;
        }
        bad += fut_result(fs[0], -1, &r, &len) != 0 || r != 2 * i;
        kart_future_free(fs[0]);
    }
    for (int b = 0; b < 5; b++) {
        for (uint64_t i = 0; i < 1000; i++)
            if (kart_pool_submit(p, t_twice, &i, sizeof(i), &fs[i]) != 0)
                fs[i] = NULL;
        for (uint64_t i = 0; i < 1000; i++) {
            uint64_t r = 0;
            size_t len = sizeof(r);
            bad += !fs[i] || fut_result(fs[i], -1, &r, &len) != 0 || r != 2 * i;
            kart_future_free(fs[i]);
        }
    }
    return bad;
}

/* In steady state (after a first pass has touched the slots and rings),
 * submitting, waiting for and freeing tasks with small arguments
 * allocates nothing: futures are slots of the pool's arena, their
 * arguments and results are kept in the slot. */
START_TEST(steady_submit_allocates_nothing)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    /* The counter sees this binary's allocations (else the test could not
     * fail). */
    kt_mallocs_take();
    kt_mallocs_count(true);
    void *volatile x = malloc(16);
    kt_mallocs_count(false);
    free(x);
    ck_assert_int_eq(kt_mallocs_take(), 1);
    ck_assert_int_eq(submit_pass(p), 0);
    kt_mallocs_count(true);
    int bad = submit_pass(p);
    kt_mallocs_count(false);
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(kt_mallocs_take(), 0);
    kart_pool_free(p);
}
END_TEST
#endif

START_TEST(submit_runs_inline_when_queue_is_deep)
{
    gate_close();
    kart_pool *p = make(KART_POOL_THREADS, 1);
    kart_future *block, *f[80];
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &block), 0);
    await_started(1);
    pid_t me = (pid_t)syscall(SYS_gettid);
    for (int i = 0; i < 80; i++)
        ck_assert_int_eq(kart_pool_submit(p, t_tid, NULL, 0, &f[i]), 0);
    /* the first 64 (per worker) wait in the queue; the rest ran here */
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(kart_future_done(f[i]), 0);
    for (int i = 65; i < 80; i++) {
        ck_assert_int_eq(kart_future_done(f[i]), 1);
        pid_t tid = 0;
        size_t len = sizeof(tid);
        ck_assert_int_eq(fut_result(f[i], 0, &tid, &len), 0);
        ck_assert_int_eq(tid, me);
    }
    atomic_store(&gate, 1);
    for (int i = 0; i < 80; i++) {
        ck_assert_int_eq(kart_future_wait(f[i], -1), 0);
        kart_future_free(f[i]);
    }
    kart_future_wait(block, -1);
    kart_future_free(block);
    kart_pool_free(p);
}
END_TEST

/* ---- map ---- */

static _Atomic long item_calls;

static int t_item(const void *arg, size_t len, void *res, size_t *res_len)
{
    atomic_fetch_add_explicit(&item_calls, 1, memory_order_relaxed);
    uint32_t x;
    memcpy(&x, arg, 4);
    uint64_t y = (uint64_t)x * 3 + 1;
    memcpy(res, &y, 8);
    return 0;
}

START_TEST(map_matches_serial)
{
    kart_pool *p = make(kind_of_loop(_i), 3);
    static const size_t ns[] = {0, 1, 7, 1000, 100003};
    static const size_t chunks[] = {0, 1, 3, 100004};
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 4; b++) {
            size_t n = ns[a];
            uint32_t *in = malloc((n + 1) * 4);
            uint64_t *out = calloc(n + 1, 8);
            for (size_t i = 0; i < n; i++)
                in[i] = (uint32_t)(i * 7 + 3);
            atomic_store(&item_calls, 0);
            ck_assert_int_eq(pool_map(p, t_item, in, 4, out, 8, n, chunks[b]), 0);
            ck_assert_int_eq(atomic_load(&item_calls), (long)n);
            KT_ASSERT_EACH(i, n, out[i] == (uint64_t)in[i] * 3 + 1);
            free(in);
            free(out);
        }
    kart_pool_free(p);
}
END_TEST

/* Fails items 500 (-EDOM) and 900 (-ERANGE); squares the rest. */
static int t_item_fail(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint32_t x;
    memcpy(&x, arg, 4);
    if (x == 500)
        return -EDOM;
    if (x == 900)
        return -ERANGE;
    uint64_t y = (uint64_t)x * x;
    memcpy(res, &y, 8);
    return 0;
}

START_TEST(map_reports_first_failing_chunk)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    size_t n = 2000;
    uint32_t *in = malloc(n * 4);
    uint64_t *out = calloc(n, 8);
    for (size_t i = 0; i < n; i++)
        in[i] = (uint32_t)i;
    ck_assert_int_eq(pool_map(p, t_item_fail, in, 4, out, 8, n, 10), -EDOM);
    /* chunks that did not fail hold their results */
    for (size_t i = 0; i < n; i++)
        if (i / 10 != 50 && i / 10 != 90)
            ck_assert_uint_eq(out[i], (uint64_t)i * i);
    free(in);
    free(out);
    kart_pool_free(p);
}
END_TEST

START_TEST(map_rejects_bad_arguments)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    uint32_t in = 1;
    uint64_t out;
    kart_future *f;
    ck_assert_int_eq(pool_map(NULL, t_item, &in, 4, &out, 8, 1, 0), -EINVAL);
    ck_assert_int_eq(pool_map(p, NULL, &in, 4, &out, 8, 1, 0), -EINVAL);
    ck_assert_int_eq(pool_map(p, t_item, NULL, 4, &out, 8, 1, 0), -EINVAL);
    ck_assert_int_eq(pool_map(p, t_item, &in, 4, NULL, 8, 1, 0), -EINVAL);
    ck_assert_int_eq(pool_map(p, t_item, NULL, 4, NULL, 8, 0, 0), 0);
    ck_assert_int_eq(pool_map_async(p, t_item, &in, 4, &out, 8, 1, 0, NULL), -EINVAL);
    ck_assert_int_eq(pool_map_async(p, t_item, &in, 4, &out, 8, 0, 0, &f), 0);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    ck_assert_int_eq(fut_error(f), 0);
    size_t len = 0;
    ck_assert_int_eq(fut_result(f, -1, NULL, &len), 0);
    ck_assert_uint_eq(len, 0);
    kart_future_free(f);
    kart_pool_close(p);
    ck_assert_int_eq(pool_map(p, t_item, &in, 4, &out, 8, 1, 0), -ESHUTDOWN);
    ck_assert_int_eq(pool_map_async(p, t_item, &in, 4, &out, 8, 1, 0, &f), -ESHUTDOWN);
    kart_pool_free(p);
}
END_TEST

START_TEST(map_async_and_cancel)
{
    gate_close();
    kart_pool_options o = {.workers = 2, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    size_t n = 5000;
    uint32_t *in = malloc(n * 4);
    uint64_t *out = calloc(n, 8);
    for (size_t i = 0; i < n; i++)
        in[i] = (uint32_t)i;
    kart_future *f;
    ck_assert_int_eq(pool_map_async(p, t_item, in, 4, out, 8, n, 7, &f), 0);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    ck_assert_int_eq(fut_error(f), 0);
    KT_ASSERT_EACH(i, n, out[i] == (uint64_t)i * 3 + 1);
    kart_future_free(f);
    /* both workers blocked: the map cannot start, and cancel stops it */
    kart_future *b[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &b[i]), 0);
    await_started(2);
    atomic_store(&item_calls, 0);
    ck_assert_int_eq(pool_map_async(p, t_item, in, 4, out, 8, n, 7, &f), 0);
    ck_assert_int_eq(kart_future_cancel(f), 1);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    ck_assert_int_eq(fut_error(f), -ECANCELED);
    ck_assert_int_eq(kart_future_cancelled(f), 1);
    ck_assert_int_eq(atomic_load(&item_calls), 0);
    kart_future_free(f);
    atomic_store(&gate, 1);
    for (int i = 0; i < 2; i++) {
        kart_future_wait(b[i], -1);
        kart_future_free(b[i]);
    }
    free(in);
    free(out);
    kart_pool_free(p);
}
END_TEST

static int t_nothing(const void *arg, size_t len, void *res, size_t *res_len)
{
    atomic_fetch_add_explicit(&item_calls, 1, memory_order_relaxed);
    return 0;
}

START_TEST(map_past_2_24_chunks)
{
    kart_pool *p = make(KART_POOL_THREADS, 2);
    atomic_store(&item_calls, 0);
    size_t n = (1u << 24) + 1000;
    ck_assert_int_eq(pool_map(p, t_nothing, NULL, 0, NULL, 0, n, 1), 0);
    ck_assert_int_eq(atomic_load(&item_calls), (long)n);
    kart_pool_free(p);
}
END_TEST

/* ---- imap ---- */

typedef struct src_state {
    uint32_t next, n;
    _Atomic uint32_t pulled;
    int fail_at; /* -1: never */
} src_state;

static int src_fn(void *ctx, void *item)
{
    src_state *s = ctx;
    if ((int)s->next == s->fail_at)
        return -EPROTO;
    if (s->next == s->n)
        return 0;
    memcpy(item, &s->next, 4);
    s->next++;
    atomic_fetch_add(&s->pulled, 1);
    return 1;
}

START_TEST(imap_ordered_and_lazy)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    src_state s = {0, 1000, 0, -1};
    kart_pool_iter *it;
    ck_assert_int_eq(kart_pool_imap(p, t_item, src_fn, &s, 4, 8, 5, 0, &it), 0);
    /* a window of 2 chunks per worker (2 workers; inline: 1), not all */
    uint32_t window = pool_kind(p) == KART_POOL_INLINE ? 2 * 5 : 4 * 5;
    ck_assert_uint_le(atomic_load(&s.pulled), window);
    for (uint32_t i = 0; i < 1000; i++) {
        uint64_t y;
        ck_assert_int_eq(iter_next(it, -1, &y), 1);
        ck_assert_uint_eq(y, (uint64_t)i * 3 + 1);
        ck_assert_uint_le(atomic_load(&s.pulled), i + 1 + window);
    }
    uint64_t y;
    ck_assert_int_eq(iter_next(it, -1, &y), 0);
    ck_assert_int_eq(iter_next(it, -1, &y), 0);
    kart_pool_iter_free(it);
    kart_pool_free(p);
}
END_TEST

START_TEST(imap_unordered_gives_each_once)
{
    kart_pool *p = make(kind_of_loop(_i), 3);
    src_state s = {0, 3000, 0, -1};
    kart_pool_iter *it;
    ck_assert_int_eq(kart_pool_imap(p, t_item, src_fn, &s, 4, 8, 0, KART_POOL_UNORDERED, &it), 0);
    uint8_t *seen = calloc(3000, 1);
    uint64_t y;
    for (int i = 0; i < 3000; i++) {
        ck_assert_int_eq(iter_next(it, -1, &y), 1);
        ck_assert_uint_eq((y - 1) % 3, 0);
        uint64_t x = (y - 1) / 3;
        ck_assert_uint_lt(x, 3000);
        ck_assert_int_eq(seen[x], 0);
        seen[x] = 1;
    }
    ck_assert_int_eq(iter_next(it, -1, &y), 0);
    free(seen);
    kart_pool_iter_free(it);
    kart_pool_free(p);
}
END_TEST

START_TEST(imap_failing_chunk_and_source)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    src_state s = {0, 1000, 0, 1000 - 3};
    kart_pool_iter *it;
    /* chunks of 10: items 500..509 fail with -EDOM, 900..909 -ERANGE;
     * the source fails after 997 items */
    ck_assert_int_eq(kart_pool_imap(p, t_item_fail, src_fn, &s, 4, 8, 10, 0, &it), 0);
    for (uint32_t i = 0; i < 997; i++) {
        uint64_t y;
        int rc = iter_next(it, -1, &y);
        if (i / 10 == 50)
            ck_assert_int_eq(rc, -EDOM);
        else if (i / 10 == 90)
            ck_assert_int_eq(rc, -ERANGE);
        else {
            ck_assert_int_eq(rc, 1);
            ck_assert_uint_eq(y, (uint64_t)i * i);
        }
    }
    uint64_t y;
    ck_assert_int_eq(iter_next(it, -1, &y), -EPROTO);
    ck_assert_int_eq(iter_next(it, -1, &y), 0);
    kart_pool_iter_free(it);
    kart_pool_free(p);
}
END_TEST

START_TEST(imap_rejects_bad_arguments)
{
    kart_pool *p = make(kind_of_loop(_i), 2);
    src_state s = {0, 10, 0, -1};
    kart_pool_iter *it;
    ck_assert_int_eq(kart_pool_imap(NULL, t_item, src_fn, &s, 4, 8, 1, 0, &it), -EINVAL);
    ck_assert_int_eq(kart_pool_imap(p, NULL, src_fn, &s, 4, 8, 1, 0, &it), -EINVAL);
    ck_assert_int_eq(kart_pool_imap(p, t_item, NULL, &s, 4, 8, 1, 0, &it), -EINVAL);
    ck_assert_int_eq(kart_pool_imap(p, t_item, src_fn, &s, 4, 8, 1, 0, NULL), -EINVAL);
    ck_assert_int_eq(kart_pool_imap(p, t_item, src_fn, &s, 0, 8, 1, 0, &it), -EINVAL);
    ck_assert_int_eq(kart_pool_imap(p, t_item, src_fn, &s, 4, 8, 1, 4, &it), -EINVAL);
    ck_assert_int_eq(kart_pool_imap(p, t_item, src_fn, &s, 4, 8, 1, 0, &it), 0);
    ck_assert_int_eq(iter_next(NULL, -1, NULL), -EINVAL);
    ck_assert_int_eq(iter_next(it, -1, NULL), -EINVAL);
    kart_pool_iter_free(it);
    kart_pool_iter_free(NULL);
    kart_pool_close(p);
    ck_assert_int_eq(kart_pool_imap(p, t_item, src_fn, &s, 4, 8, 1, 0, &it), -ESHUTDOWN);
    kart_pool_free(p);
}
END_TEST

static int t_block_item(const void *arg, size_t len, void *res, size_t *res_len)
{
    return t_block(arg, len, res, res_len);
}

START_TEST(imap_next_times_out)
{
    gate_close();
    kart_pool_options o = {.workers = 1, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    for (unsigned flags = 0; flags < 2; flags++) {
        gate_close();
        src_state s = {0, 3, 0, -1};
        kart_pool_iter *it;
        ck_assert_int_eq(kart_pool_imap(p, t_block_item, src_fn, &s, 4, 0, 1, flags, &it), 0);
        int64_t t0 = kart_now_ns();
        ck_assert_int_eq(iter_next(it, 20 * MS, NULL), -ETIMEDOUT);
        ck_assert_int_ge(kart_now_ns() - t0, 20 * MS);
        atomic_store(&gate, 1);
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(iter_next(it, -1, NULL), 1);
        ck_assert_int_eq(iter_next(it, -1, NULL), 0);
        kart_pool_iter_free(it);
    }
    kart_pool_free(p);
}
END_TEST

/* ---- lifetime ---- */

START_TEST(close_drains_then_join)
{
    kart_pool *p = make(KART_POOL_THREADS, 2);
    ck_assert_int_eq(kart_pool_join(p, 0), -EBUSY);
    kart_future *f[100];
    for (uint64_t i = 0; i < 100; i++)
        ck_assert_int_eq(kart_pool_submit(p, t_square, &i, 8, &f[i]), 0);
    ck_assert_int_eq(kart_pool_close(p), 0);
    ck_assert_int_eq(kart_pool_close(p), 0);
    ck_assert_int_eq(kart_pool_join(p, -1), 0);
    for (uint64_t i = 0; i < 100; i++) {
        ck_assert_int_eq(kart_future_done(f[i]), 1);
        uint64_t y;
        size_t len = 8;
        ck_assert_int_eq(fut_result(f[i], 0, &y, &len), 0);
        ck_assert_uint_eq(y, i * i);
        kart_future_free(f[i]);
    }
    ck_assert_int_eq(kart_pool_join(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_pool_close(NULL), -EINVAL);
    ck_assert_int_eq(kart_pool_terminate(NULL), -EINVAL);
    kart_pool_free(p);
    /* inline: nothing to wait for */
    p = make(KART_POOL_INLINE, 0);
    ck_assert_int_eq(kart_pool_join(p, 0), -EBUSY);
    kart_pool_close(p);
    ck_assert_int_eq(kart_pool_join(p, 0), 0);
    kart_pool_free(p);
}
END_TEST

/* A worker that found the queues empty and is about to read the pool's
 * state (held there by a fault point) while a task is queued and the pool
 * closed: it must run that task before it leaves, not leave it queued
 * with nobody to run it (no_help: the waiter runs nothing itself, as a
 * loop that awaits the future or a done callback would not). */
START_TEST(close_during_a_workers_last_look_runs_the_queued_task)
{
    ck_assert_int_eq(kart__fault_delay(KART__FP_pool_worker_leaving, 1, 300 * MS), 0);
    kart_pool_options o = {.kind = KART_POOL_THREADS, .workers = 1, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    /* The new worker's first look found nothing: it is held at the point. */
    for (int i = 0; i < 2000 && kart__fault_fired(KART__FP_pool_worker_leaving) == 0; i++)
        usleep(1000);
    ck_assert_int_eq(kart__fault_fired(KART__FP_pool_worker_leaving), 1);
    uint64_t x = 7, y = 0;
    size_t len = 8;
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &f), 0);
    ck_assert_int_eq(kart_pool_close(p), 0);
    ck_assert_int_eq(kart_pool_join(p, 5000 * MS), 0);
    ck_assert_msg(kart_future_done(f) == 1, "the queued task was left with no worker to run it");
    ck_assert_int_eq(fut_result(f, 0, &y, &len), 0);
    ck_assert_uint_eq(y, 49);
    kart_future_free(f);
    kart_pool_free(p);
}
END_TEST

/* The ring tests submit to the node queue of the pool's one worker (on
 * a machine with several NUMA nodes a submit otherwise goes to the
 * caller's node, wherever the thread runs). */
static kart__pool_node *worker_node(kart_pool *p)
{
    for (int i = 0; i < p->nnodes; i++)
        if (p->nodes[i].nworkers > 0)
            return &p->nodes[i];
    ck_abort_msg("no node has a worker");
    return NULL;
}

static void submit_square_home(kart_pool *p, uint64_t x, kart_future **f)
{
    ck_assert_int_eq(kart_pool_submit_node(p, worker_node(p)->id, t_square, &x, 8, f), 0);
}

/* A look at the ring that read the head and was then held (the worker
 * preempted) while the ring went round several laps: the entry at the
 * position it holds now belongs to a later lap and will never be written
 * for it. The look must start again, not wait for that entry (before the
 * fix the worker waited forever and join timed out). */
START_TEST(a_stale_look_at_the_ring_starts_again)
{
    ck_assert_int_eq(kart__fault_delay(KART__FP_pool_look_head_read, 1, 300 * MS), 0);
    kart_pool_options o = {.kind = KART_POOL_THREADS, .workers = 1, .max_jobs = 16};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    kart__pool_node *q = worker_node(p);
    ck_assert_uint_eq(q->ring_mask + 1, 32);
    /* The new worker's first look read the head (0) and is held. */
    for (int i = 0; i < 2000 && kart__fault_fired(KART__FP_pool_look_head_read) == 0; i++)
        usleep(1000);
    ck_assert_int_eq(kart__fault_fired(KART__FP_pool_look_head_read), 1);
    /* Submit and wait: this thread runs each task and steps the head,
     * 200 positions, six laps of the ring. */
    for (uint64_t i = 0; i < 200; i++) {
        uint64_t y = 0;
        size_t len = 8;
        kart_future *f;
        submit_square_home(p, i, &f);
        ck_assert_int_eq(fut_result(f, -1, &y, &len), 0);
        ck_assert_uint_eq(y, i * i);
        kart_future_free(f);
    }
    ck_assert_uint_ge(atomic_load(&q->head), 200);
    ck_assert_int_eq(kart_pool_close(p), 0);
    ck_assert_int_eq(kart_pool_join(p, 5000 * MS), 0);
    kart_pool_free(p);
}
END_TEST

/* A submit held between its ring reservation and its write while
 * another thread closes the pool: the close waits for the entry, and the
 * submit, seeing the pool closed, writes a hole and fails with
 * -ESHUTDOWN; the worker steps past the hole, runs what was queued before
 * and leaves. */
static void *submit_held(void *arg)
{
    kart_pool *p = arg;
    uint64_t x = 3;
    kart_future *f = NULL;
    intptr_t rc = kart_pool_submit_node(p, worker_node(p)->id, t_square, &x, 8, &f);
    ck_assert_ptr_null(f);
    return (void *)rc;
}

/* A one-worker thread pool whose worker runs t_block (until the gate
 * opens), with the square of x queued behind it. */
static kart_pool *blocked_with_one_queued(kart_pool_options o, kart_future **block, uint64_t x,
                                          kart_future **queued)
{
    gate_close();
    kart_pool *p;
    o.kind = KART_POOL_THREADS;
    o.workers = 1;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    ck_assert_int_eq(kart_pool_submit_node(p, worker_node(p)->id, t_block, NULL, 0, block), 0);
    await_started(1);
    submit_square_home(p, x, queued);
    return p;
}

START_TEST(close_waits_for_a_reserved_entry_then_the_submit_fails)
{
    kart_future *block, *queued;
    kart_pool *p =
        blocked_with_one_queued((kart_pool_options){.no_help = true}, &block, 5, &queued);
    uint64_t y = 0;
    size_t len = 8;
    ck_assert_int_eq(kart__fault_delay(KART__FP_pool_ring_reserved, 1, 300 * MS), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, submit_held, p), 0);
    for (int i = 0; i < 2000 && kart__fault_fired(KART__FP_pool_ring_reserved) == 0; i++)
        usleep(1000);
    ck_assert_int_eq(kart__fault_fired(KART__FP_pool_ring_reserved), 1);
    kart__pool_node *q = worker_node(p);
    uint64_t tail = kart__pool_tail(q);
    ck_assert_uint_eq(kart__pool_entry(q, tail - 1), KART__POOL_UNWRITTEN);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_pool_close(p), 0);
    ck_assert_int_ge(kart_now_ns() - t0, 100 * MS); /* it waited for the entry */
    ck_assert_uint_eq(kart__pool_entry(q, tail - 1), KART__POOL_HOLE);
    void *rc;
    ck_assert_int_eq(pthread_join(th, &rc), 0);
    ck_assert_int_eq((intptr_t)rc, -ESHUTDOWN);
    atomic_store(&gate, 1);
    ck_assert_int_eq(kart_pool_join(p, 5000 * MS), 0);
    ck_assert_int_eq(fut_result(queued, 0, &y, &len), 0);
    ck_assert_uint_eq(y, 25);
    ck_assert_uint_eq(atomic_load(&q->head), kart__pool_tail(q));
    kart_future_free(queued);
    kart_future_free(block);
    kart_pool_free(p);
}
END_TEST

/* A full ring: a task queued behind a blocked worker stays at the head
 * while tasks its submitter runs itself leave spent entries behind it
 * (their waiter cannot step the head past them). Ring of 32 (max_jobs
 * 16): the 32nd push finds it full and rotates, taking the queued task
 * off the head and appending it again, then stepping past spent
 * entries. The queued task is still run, once, when the worker is free. */
START_TEST(a_full_ring_rotates_and_keeps_the_queued_task)
{
    kart_future *block, *queued;
    kart_pool *p = blocked_with_one_queued((kart_pool_options){.max_jobs = 16}, &block, 9, &queued);
    uint64_t y = 0;
    size_t len = 8;
    kart__pool_node *q = worker_node(p);
    uint64_t queued_ref = kart__pool_ref(queued->slot, atomic_load(&queued->gen));
    for (uint64_t i = 0; i < 100; i++) {
        kart_future *f;
        submit_square_home(p, i, &f);
        ck_assert_int_eq(fut_result(f, -1, &y, &len), 0);
        ck_assert_uint_eq(y, i * i);
        kart_future_free(f);
        ck_assert_uint_le(kart__pool_tail(q) - atomic_load(&q->head), 32);
    }
    /* It went round: the queued task's entry is no longer where it was
     * pushed (position 1), but still in the ring, and still queued. */
    ck_assert_uint_gt(atomic_load(&q->head), 1);
    bool found = false;
    for (uint64_t pos = atomic_load(&q->head); pos < kart__pool_tail(q); pos++)
        found |= kart__pool_entry(q, pos) == queued_ref;
    ck_assert(found);
    ck_assert_int_eq(kart_future_running(queued), 0);
    ck_assert_int_eq(kart_future_done(queued), 0);
    atomic_store(&gate, 1);
    ck_assert_int_eq(fut_result(queued, -1, &y, &len), 0);
    ck_assert_uint_eq(y, 81);
    ck_assert_int_eq(kart_future_wait(block, -1), 0);
    kart_future_free(queued);
    kart_future_free(block);
    ck_assert_int_eq(kart_pool_close(p), 0);
    ck_assert_int_eq(kart_pool_join(p, 5000 * MS), 0);
    kart_pool_free(p);
}
END_TEST

START_TEST(terminate_cancels_queued)
{
    gate_close();
    kart_pool_options o = {.workers = 1, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    kart_future *run, *q[5];
    ck_assert_int_eq(kart_pool_submit(p, t_block, NULL, 0, &run), 0);
    await_started(1);
    for (uint64_t i = 0; i < 5; i++)
        ck_assert_int_eq(kart_pool_submit(p, t_square, &i, 8, &q[i]), 0);
    ck_assert_int_eq(kart_pool_terminate(p), 0);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(kart_future_wait(q[i], 1000 * MS), 0);
        ck_assert_int_eq(fut_error(q[i]), -ECANCELED);
        kart_future_free(q[i]);
    }
    /* join times out while the running task runs */
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_pool_join(p, 20 * MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 20 * MS);
    atomic_store(&gate, 1);
    ck_assert_int_eq(kart_pool_join(p, -1), 0);
    ck_assert_int_eq(fut_error(run), 0);
    kart_future_free(run);
    uint64_t x = 1;
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &f), -ESHUTDOWN);
    kart_pool_free(p);
}
END_TEST

static _Atomic int inits;
static _Thread_local int init_mark;

static void init_fn(void *arg)
{
    ck_assert_ptr_eq(arg, &inits);
    atomic_fetch_add(&inits, 1);
    init_mark = 42;
}

static int t_init_seen(const void *arg, size_t len, void *res, size_t *res_len)
{
    *res_len = 0;
    return init_mark == 42 ? 0 : -ENOENT;
}

START_TEST(initializer_runs_in_every_worker)
{
    for (int k = 0; k < 2; k++) {
        atomic_store(&inits, 0);
        kart_pool_options o = {
            .kind = kind_of_loop(k), .workers = 3, .initializer = init_fn, .initarg = &inits};
        kart_pool *p;
        ck_assert_int_eq(kart_pool_create(&p, &o), 0);
        for (int i = 0; i < 50; i++) {
            size_t len = 0;
            ck_assert_int_eq(pool_apply(p, t_init_seen, NULL, 0, NULL, &len), 0);
        }
        kart_pool_close(p);
        kart_pool_join(p, -1);
        ck_assert_int_eq(atomic_load(&inits), k == 0 ? 3 : 1);
        kart_pool_free(p);
        init_mark = 0;
    }
}
END_TEST

START_TEST(max_tasks_recycles_workers)
{
    atomic_store(&inits, 0);
    kart_pool_options o = {
        .workers = 2, .max_tasks_per_child = 5, .initializer = init_fn, .initarg = &inits};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    pid_t tids[60];
    for (int i = 0; i < 60; i++) {
        size_t len = sizeof(pid_t);
        ck_assert_int_eq(pool_apply(p, t_tid, NULL, 0, &tids[i], &len), 0);
    }
    /* at most 5 tasks per thread */
    for (int i = 0; i < 60; i++) {
        int same = 0;
        for (int k = 0; k < 60; k++)
            same += tids[k] == tids[i];
        ck_assert_int_le(same, 5);
    }
    int gens = 0;
    for (int w = 0; w < 2; w++) {
        kart_pool_worker_info info;
        ck_assert_int_eq(kart_pool_worker_info_get(p, w, &info), 0);
        gens += info.generation;
    }
    ck_assert_int_ge(gens, 60 / 5 - 2);
    ck_assert_int_ge(atomic_load(&inits), 12);
    /* many queued at once: none is lost to a worker leaving */
    kart_future *f[300];
    for (uint64_t i = 0; i < 300; i++)
        ck_assert_int_eq(kart_pool_submit(p, t_square, &i, 8, &f[i]), 0);
    for (uint64_t i = 0; i < 300; i++) {
        uint64_t y;
        size_t len = 8;
        ck_assert_int_eq(fut_result(f[i], 10000 * MS, &y, &len), 0);
        ck_assert_uint_eq(y, i * i);
        kart_future_free(f[i]);
    }
    uint32_t in[500];
    uint64_t out[500];
    for (int i = 0; i < 500; i++)
        in[i] = (uint32_t)i;
    ck_assert_int_eq(pool_map(p, t_item, in, 4, out, 8, 500, 1), 0);
    for (int i = 0; i < 500; i++)
        ck_assert_uint_eq(out[i], (uint64_t)i * 3 + 1);
    kart_pool_close(p);
    ck_assert_int_eq(kart_pool_join(p, -1), 0);
    kart_pool_free(p);
}
END_TEST

START_TEST(worker_info_reports)
{
    kart_pool *p = make(KART_POOL_THREADS, 2);
    kart_pool_worker_info info;
    ck_assert_int_eq(kart_pool_worker_info_get(NULL, 0, &info), -EINVAL);
    ck_assert_int_eq(kart_pool_worker_info_get(p, 0, NULL), -EINVAL);
    ck_assert_int_eq(kart_pool_worker_info_get(p, 2, &info), -ENOENT);
    ck_assert_int_eq(kart_pool_worker_info_get(p, -1, &info), -ENOENT);
    uint32_t in[100];
    uint64_t out[100];
    for (int i = 0; i < 100; i++)
        in[i] = (uint32_t)i;
    ck_assert_int_eq(pool_map(p, t_item, in, 4, out, 8, 100, 1), 0);
    uint64_t tasks = 0;
    for (int w = 0; w < 2; w++) {
        ck_assert_int_eq(kart_pool_worker_info_get(p, w, &info), 0);
        ck_assert_int_eq(info.pid, getpid());
        ck_assert_int_eq(info.node, 0 + info.node); /* a node id */
        ck_assert_int_eq(info.bound, 0);
        tasks += info.tasks;
    }
    ck_assert_uint_le(tasks, 100);
    kart_pool_free(p);
}
END_TEST

/* ---- NUMA placement on test topologies ---- */

static void use_topo(const char *name)
{
    if (name) {
        char dir[4096];
        const char *slash = strrchr(__FILE__, '/');
        int len = slash ? (int)(slash - __FILE__) : 1;
        snprintf(dir, sizeof(dir), "%.*s/numa/%s", len, slash ? __FILE__ : ".", name);
        ck_assert_msg(access(dir, R_OK) == 0, "no test tree %s", dir);
        setenv("KART_NUMA_SYSFS", dir, 1);
    } else {
        unsetenv("KART_NUMA_SYSFS");
    }
    kart__numa_reload();
}

static kart_pool *placed(kart_pool_placement pl, int workers, int per_node)
{
    kart_pool_options o = {.workers = workers, .placement = pl, .per_node = per_node};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    return p;
}

static void expect_nodes(kart_pool *p, const int *want, int n)
{
    ck_assert_int_eq(kart_pool_workers(p), n);
    for (int w = 0; w < n; w++) {
        kart_pool_worker_info info;
        ck_assert_int_eq(kart_pool_worker_info_get(p, w, &info), 0);
        ck_assert_msg(info.node == want[w], "worker %d on node %d, not %d", w, info.node, want[w]);
    }
}

START_TEST(placement_policies_two_nodes)
{
    use_topo("topo-2node");
    kart_pool *p = placed(KART_POOL_PLACE_SPREAD, 4, 0);
    expect_nodes(p, (int[]){0, 1, 0, 1}, 4);
    kart_pool_free(p);
    /* a CPU on each node: fill node 0, then 1, then wrap */
    p = placed(KART_POOL_PLACE_COMPACT, 3, 0);
    expect_nodes(p, (int[]){0, 1, 0}, 3);
    kart_pool_free(p);
    p = placed(KART_POOL_PLACE_PER_NODE, 0, 2);
    expect_nodes(p, (int[]){0, 0, 1, 1}, 4);
    kart_pool_free(p);
    use_topo(NULL);
}
END_TEST

/* One worker a node, both asleep: two tasks queued on one node must run on
 * both workers at once (the second submit's wake-up is swallowed by the
 * first's, so the worker that takes the first passes a wake-up on to the
 * next node). The tasks block until the gate opens, so a task stuck behind
 * the other shows as a start that never comes. */
START_TEST(two_nodes_one_worker_each_run_two_tasks)
{
    use_topo("topo-2node");
    for (int round = 0; round < 20; round++) {
        gate_close();
        kart_pool *p = placed(KART_POOL_PLACE_SPREAD, 2, 0);
        usleep(20000); /* past the idle spin: both workers asleep */
        kart_future *f[2];
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(kart_pool_submit_node(p, 0, t_block, NULL, 0, &f[i]), 0);
        await_started(2);
        atomic_store(&gate, 1);
        for (int i = 0; i < 2; i++) {
            ck_assert_int_eq(kart_future_wait(f[i], -1), 0);
            kart_future_free(f[i]);
        }
        kart_pool_free(p);
    }
    use_topo(NULL);
}
END_TEST

START_TEST(placement_compact_four_nodes)
{
    use_topo("topo-4node"); /* two CPUs a node */
    kart_pool *p = placed(KART_POOL_PLACE_COMPACT, 5, 0);
    expect_nodes(p, (int[]){0, 0, 1, 1, 2}, 5);
    kart_pool_free(p);
    use_topo(NULL);
}
END_TEST

START_TEST(queue_steal_order_by_distance)
{
    use_topo("topo-4node");
    kart_pool *p = placed(KART_POOL_PLACE_PER_NODE, 0, 1);
    int order[4];
    ck_assert_int_eq(kart_pool_node_order(p, 0, order, 4), 4);
    ck_assert_mem_eq(order, ((int[]){0, 1, 2, 3}), sizeof(order));
    ck_assert_int_eq(kart_pool_node_order(p, 2, order, 4), 4);
    ck_assert_mem_eq(order, ((int[]){2, 3, 0, 1}), sizeof(order));
    ck_assert_int_eq(kart_pool_node_order(p, 3, order, 4), 4);
    ck_assert_mem_eq(order, ((int[]){3, 2, 1, 0}), sizeof(order));
    ck_assert_int_eq(kart_pool_node_order(p, 1, order, 2), 4);
    ck_assert_mem_eq(order, ((int[]){1, 0}), 2 * sizeof(int));
    ck_assert_int_eq(kart_pool_node_order(NULL, 0, order, 4), -EINVAL);
    ck_assert_int_eq(kart_pool_node_order(p, -1, order, 4), -EINVAL);
    ck_assert_int_eq(kart_pool_node_order(p, 0, NULL, 4), -EINVAL);
    ck_assert_int_eq(kart_pool_node_order(p, 0, NULL, 0), 4);
    ck_assert_int_eq(kart_pool_node_order(p, 9, order, 4), -ENOENT);
    /* map chunks: worker 3 (node 3) robs node 2's worker first, then 1, then 0 */
    kart__pool_worker *w3 = &p->workers[3];
    ck_assert_int_eq(w3->victims[0], 2);
    ck_assert_int_eq(w3->victims[1], 1);
    ck_assert_int_eq(w3->victims[2], 0);
    kart__pool_worker *w0 = &p->workers[0];
    ck_assert_int_eq(w0->victims[0], 1);
    ck_assert_int_eq(w0->victims[1], 2);
    ck_assert_int_eq(w0->victims[2], 3);
    kart_pool_free(p);
    use_topo(NULL);
}
END_TEST

START_TEST(submit_goes_to_named_or_own_node)
{
    use_topo("topo-2node");
    kart_pool *p = placed(KART_POOL_PLACE_PER_NODE, 0, 1);
    uint64_t x = 5;
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit_node(p, 1, t_square, &x, 8, &f), 0);
    ck_assert_uint_eq(f->node, 1);
    ck_assert_int_eq(kart_future_wait(f, -1), 0);
    kart_future_free(f);
    ck_assert_int_eq(kart_pool_submit_node(p, 2, t_square, &x, 8, &f), -ENOENT);
    /* from CPU 1 (node 1 in this tree), a plain submit goes to node 1 */
    cpu_set_t one, old;
    sched_getaffinity(0, sizeof(old), &old);
    CPU_ZERO(&one);
    CPU_SET(1, &one);
    if (CPU_ISSET(1, &old) && sched_setaffinity(0, sizeof(one), &one) == 0) {
        ck_assert_int_eq(kart_pool_submit(p, t_square, &x, 8, &f), 0);
        ck_assert_uint_eq(f->node, 1);
        kart_future_wait(f, -1);
        kart_future_free(f);
        sched_setaffinity(0, sizeof(old), &old);
    }
    /* all the work runs, whichever node's queue it went to */
    uint32_t in[1000];
    uint64_t out[1000];
    for (int i = 0; i < 1000; i++)
        in[i] = (uint32_t)i;
    ck_assert_int_eq(pool_map(p, t_item, in, 4, out, 8, 1000, 1), 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(out[i], (uint64_t)i * 3 + 1);
    kart_pool_free(p);
    use_topo(NULL);
}
END_TEST

/* ---- completion on an event loop ---- */

static _Atomic int loop_hits;
static pid_t loop_tid;

static void on_loop_cb(kart_future *f, void *arg)
{
    ck_assert_int_eq((pid_t)syscall(SYS_gettid), loop_tid);
    ck_assert_int_eq(kart_future_done(f), 1);
    atomic_fetch_add(&loop_hits, 1);
    if (atomic_load(&loop_hits) == 20)
        kart_loop_stop(arg);
}

START_TEST(futures_complete_on_loop_thread)
{
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    kart_pool_bridge *b;
    ck_assert_int_eq(kart_pool_bridge_create(NULL, &b), -EINVAL);
    ck_assert_int_eq(kart_pool_bridge_create(loop, NULL), -EINVAL);
    ck_assert_int_eq(kart_pool_bridge_create(loop, &b), 0);
    loop_tid = (pid_t)syscall(SYS_gettid);
    atomic_store(&loop_hits, 0);
    kart_pool_options o = {.workers = 2, .no_help = true};
    kart_pool *p;
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    kart_future *f[20];
    for (uint64_t i = 0; i < 20; i++) {
        ck_assert_int_eq(kart_pool_submit(p, t_square, &i, 8, &f[i]), 0);
        ck_assert_int_eq(kart_future_on_loop(f[i], b, on_loop_cb, loop), 0);
    }
    ck_assert_int_eq(kart_future_on_loop(NULL, b, on_loop_cb, loop), -EINVAL);
    ck_assert_int_eq(kart_future_on_loop(f[0], NULL, on_loop_cb, loop), -EINVAL);
    ck_assert_int_eq(kart_future_on_loop(f[0], b, NULL, loop), -EINVAL);
    int64_t t0 = kart_now_ns();
    while (atomic_load(&loop_hits) < 20 && kart_now_ns() - t0 < 10000 * MS)
        kart_loop_run(loop, KART_RUN_ONCE);
    ck_assert_int_eq(atomic_load(&loop_hits), 20);
    /* a future already done: delivered on the loop's next turn, never
     * inside kart_future_on_loop */
    kart_future *own;
    ck_assert_int_eq(kart_future_create(&own), 0);
    ck_assert_int_eq(kart_future_set_result(own, NULL, 0), 0);
    ck_assert_int_eq(kart_future_on_loop(own, b, on_loop_cb, loop), 0);
    ck_assert_int_eq(atomic_load(&loop_hits), 20);
    t0 = kart_now_ns();
    while (atomic_load(&loop_hits) < 21 && kart_now_ns() - t0 < 10000 * MS)
        kart_loop_run(loop, KART_RUN_ONCE);
    ck_assert_int_eq(atomic_load(&loop_hits), 21);
    kart_future_free(own);
    for (int i = 0; i < 20; i++)
        kart_future_free(f[i]);
    kart_pool_free(p);
    kart_pool_bridge_free(b);
    kart_pool_bridge_free(NULL);
    kart_loop_free(loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("create");
    tcase_add_test(tc, create_rejects_bad_options);
    tcase_add_test(tc, create_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("submit");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, submit_returns_result, 0, 2);
    tcase_add_loop_test(tc, submit_rejects_bad_arguments, 0, 2);
    tcase_add_loop_test(tc, task_errors_surface, 0, 2);
    tcase_add_loop_test(tc, pointer_tasks, 0, 2);
    tcase_add_loop_test(tc, apply_runs_and_reports, 0, 2);
    tcase_add_test(tc, wait_times_out_not_early);
    tcase_add_test(tc, cancel_queued_task);
    tcase_add_test(tc, callbacks_run_in_order);
    tcase_add_test(tc, too_many_jobs_is_eagain);
    tcase_add_test(tc, cached_slots_never_refuse_early);
    tcase_add_loop_test(tc, submit_many_runs_every_task, 0, 3);
    tcase_add_test(tc, submit_many_errors);
    tcase_add_loop_test(tc, stress_4_submitters, 0, 2);
    tcase_add_loop_test(tc, stress_cache_recycle, 0, 2);
    tcase_add_test(tc, waiter_helps_unless_told_not_to);
    tcase_add_test(tc, second_task_runs_beside_a_blocked_one);
    tcase_add_test(tc, submit_runs_inline_when_queue_is_deep);
    tcase_add_test(tc, waiter_runs_own_task_and_steps_the_ring);
#if KT_COUNT_MALLOC
    tcase_add_loop_test(tc, steady_submit_allocates_nothing, 0, 2);
#endif
    suite_add_tcase(s, tc);

    tc = tcase_create("map");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, map_matches_serial, 0, 2);
    tcase_add_loop_test(tc, map_reports_first_failing_chunk, 0, 2);
    tcase_add_loop_test(tc, map_rejects_bad_arguments, 0, 2);
    tcase_add_test(tc, map_async_and_cancel);
    tcase_add_test(tc, map_past_2_24_chunks);
    suite_add_tcase(s, tc);

    tc = tcase_create("imap");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, imap_ordered_and_lazy, 0, 2);
    tcase_add_loop_test(tc, imap_unordered_gives_each_once, 0, 2);
    tcase_add_loop_test(tc, imap_failing_chunk_and_source, 0, 2);
    tcase_add_loop_test(tc, imap_rejects_bad_arguments, 0, 2);
    tcase_add_test(tc, imap_next_times_out);
    suite_add_tcase(s, tc);

    tc = tcase_create("life");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, close_drains_then_join);
    tcase_add_test(tc, close_during_a_workers_last_look_runs_the_queued_task);
    tcase_add_test(tc, a_stale_look_at_the_ring_starts_again);
    tcase_add_test(tc, close_waits_for_a_reserved_entry_then_the_submit_fails);
    tcase_add_test(tc, a_full_ring_rotates_and_keeps_the_queued_task);
    tcase_add_test(tc, terminate_cancels_queued);
    tcase_add_test(tc, initializer_runs_in_every_worker);
    tcase_add_test(tc, max_tasks_recycles_workers);
    tcase_add_test(tc, worker_info_reports);
    suite_add_tcase(s, tc);

    tc = tcase_create("numa");
    /* Twenty pools made and freed, each after a 20 ms sleep, with workers
     * bound to one CPU each: 3-50 s under a load average of 33-42 (eight
     * helpers on two cores: a round's kart_pool_free alone took up to
     * 3.2 s, joining workers bound to busy CPUs), past the default 4 s;
     * the test looks for a hang, not for speed. */
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, placement_policies_two_nodes);
    tcase_add_test(tc, placement_compact_four_nodes);
    tcase_add_test(tc, two_nodes_one_worker_each_run_two_tasks);
    tcase_add_test(tc, queue_steal_order_by_distance);
    tcase_add_test(tc, submit_goes_to_named_or_own_node);
    suite_add_tcase(s, tc);

    tc = tcase_create("loop");
    tcase_add_test(tc, futures_complete_on_loop_thread);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

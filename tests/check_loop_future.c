/* Description: kart_future_await (kart/pool.h): a future's callback on the
 * loop's thread with no bridge. Each case runs on every compiled-in
 * backend and once more on io_uring with its FUTEX_WAIT path turned off
 * (the portable path on the same ring): a pool task's result and a future
 * of your own, a future done before the await (delivered on the next
 * turn, not inside the call), failed and cancelled futures (their error
 * reaches the callback), a spurious futex wake-up (the await stays), a
 * future of your own freed unset, the loop freed with awaits pending
 * (no callback, no leak: ASan), 1000 futures at once (a few on the ring,
 * the rest in the inbox), callbacks in the order the futures were done,
 * the ring path taken where the kernel has it, and each documented error. */
#define KT_LOOP_HELPERS

#include "testutil.h"

#include "../uring/uring_probe.h"
#include "loop_private.h"
#include "pool_private.h" /* the future's state word, for the spurious wake */

#include <kart/pool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* Backend _i, or past the last io_uring with FUTEX_WAIT off; NULL (a
 * skip) where that cannot start. */
static const char *backend_for(int i)
{
    if (i < kt_nbackends())
        return kt_use_backend(i);
    for (int k = 0; k < kt_nbackends(); k++)
        if (strcmp(kt_backend(k), "uring") == 0) {
            kart__ur_features_off(1u << KART__UR_FUTEX_WAIT);
            return kt_use_backend(k);
        }
    return NULL;
}

#define AWAIT_LOOP_OR_SKIP(i)                                                                      \
    const char *backend = backend_for(i);                                                          \
    if (!backend)                                                                                  \
        KART_SKIP("backend %d (uring without futex_wait past the last) cannot start here", i);     \
    kart_loop *loop = open_loop(backend)

/* Whether awaits on this loop wait on the ring. */
static bool on_ring(const char *backend)
{
    return strcmp(backend, "uring") == 0 && kart__ur_has(KART__UR_FUTEX_WAIT);
}

typedef struct arec {
    int calls;
    int err; /* the future's error, read in the callback */
    int value;
    pthread_t thread;
    kart_future *f;
} arec;

static void arec_cb(kart_future *f, void *arg)
{
    arec *r = arg;
    r->calls++;
    r->thread = pthread_self();
    r->f = f;
    int task_err = 1;
    ck_assert_int_eq(kart_future_error(f, 0, &task_err), 0);
    r->err = task_err;
    if (!task_err) {
        size_t len = sizeof(r->value);
        ck_assert_int_eq(kart_future_result(f, 0, &r->value, &len, &task_err), 0);
    }
}

static kart_pool *make_pool(size_t workers)
{
    kart_pool *p;
    kart_pool_options o = {.kind = KART_POOL_THREADS, .workers = workers};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    return p;
}

/* Sleeps the ms it is given, then returns it doubled; a negative int is
 * the task's error instead. */
static int t_slow(const void *arg, size_t len, void *res, size_t *res_len)
{
    int v;
    (void)len;
    memcpy(&v, arg, sizeof(v));
    if (v < 0)
        return v;
    sleep_ns(v * KT_MS);
    v *= 2;
    memcpy(res, &v, sizeof(v));
    *res_len = sizeof(v);
    return 0;
}

/* Completes a future of your own from another thread after a delay. */
typedef struct later {
    kart_future *f;
    int64_t delay_ns;
    int err; /* 0: a result of 7; else set_error(err); 1: cancel */
    pthread_t th;
} later;

static void *later_main(void *arg)
{
    later *l = arg;
    sleep_ns(l->delay_ns);
    if (l->err == 1)
        ck_assert_int_eq(kart_future_cancel(l->f), 1);
    else if (l->err)
        ck_assert_int_eq(kart_future_set_error(l->f, l->err), 0);
    else
        ck_assert_int_eq(kart_future_set_result(l->f, &(int){7}, sizeof(int)), 0);
    return NULL;
}

static void later_start(later *l, kart_future *f, int64_t delay_ns, int err)
{
    *l = (later){f, delay_ns, err, 0};
    ck_assert_int_eq(pthread_create(&l->th, NULL, later_main, l), 0);
}

START_TEST(await_a_pool_task)
{
    AWAIT_LOOP_OR_SKIP(_i);
    kart_pool *pool = make_pool(2);
    kart_future *f;
    ck_assert_int_eq(kart_pool_submit(pool, t_slow, &(int){30}, sizeof(int), &f), 0);
    arec r = {0};
    ck_assert_int_eq(kart_future_await(f, loop, arec_cb, &r), 0);
    ck_assert_int_eq(r.calls, 0);
    /* The ring waits on the future's word where the kernel can. */
    ck_assert_int_eq(loop->ring_awaits, on_ring(backend) ? 1 : 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert(pthread_equal(r.thread, pthread_self()));
    ck_assert_ptr_eq(r.f, f);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.value, 60);
    ck_assert_int_eq(loop->ring_awaits, 0);
    kart_future_free(f);
    kart_pool_free(pool);
    close_loop(loop);
}
END_TEST

START_TEST(await_a_future_of_your_own)
{
    AWAIT_LOOP_OR_SKIP(_i);
    kart_future *f;
    ck_assert_int_eq(kart_future_create(&f), 0);
    arec r = {0}, r2 = {0};
    ck_assert_int_eq(kart_future_await(f, loop, arec_cb, &r), 0);
    ck_assert_int_eq(kart_future_await(f, loop, arec_cb, &r2), 0); /* two on one future */
    /* The waiting bit (a futex_wake for the completing thread) only for
     * the ring. */
    bool waiting = (uintptr_t)atomic_load(&f->cbs) & KART__POOL_WAITING;
    ck_assert_int_eq(waiting, on_ring(backend));
    later l;
    later_start(&l, f, 20 * KT_MS, 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    pthread_join(l.th, NULL);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r2.calls, 1);
    ck_assert_int_eq(r.value, 7);
    ck_assert_int_eq(r2.value, 7);
    kart_future_free(f);
    close_loop(loop);
}
END_TEST

START_TEST(await_a_done_future_runs_on_the_next_turn)
{
    AWAIT_LOOP_OR_SKIP(_i);
    kart_future *f;
    ck_assert_int_eq(kart_future_create(&f), 0);
    ck_assert_int_eq(kart_future_set_result(f, &(int){7}, sizeof(int)), 0);
    arec r = {0};
    ck_assert_int_eq(kart_future_await(f, loop, arec_cb, &r), 0);
    ck_assert_int_eq(r.calls, 0); /* never inside the call */
    ck_assert_int_eq(loop->ring_awaits, 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, 7);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 1);
    kart_future_free(f);
    close_loop(loop);
}
END_TEST

START_TEST(await_failed_and_cancelled_futures)
{
    AWAIT_LOOP_OR_SKIP(_i);
    kart_pool *pool = make_pool(1);
    kart_future *pf, *uf, *cf;
    ck_assert_int_eq(kart_pool_submit(pool, t_slow, &(int){-EPIPE}, sizeof(int), &pf), 0);
    ck_assert_int_eq(kart_future_create(&uf), 0);
    ck_assert_int_eq(kart_future_create(&cf), 0);
    arec rp = {0}, ru = {0}, rc = {0};
    ck_assert_int_eq(kart_future_await(pf, loop, arec_cb, &rp), 0);
    ck_assert_int_eq(kart_future_await(uf, loop, arec_cb, &ru), 0);
    ck_assert_int_eq(kart_future_await(cf, loop, arec_cb, &rc), 0);
    later lu, lc;
    later_start(&lu, uf, 10 * KT_MS, -EIO);
    later_start(&lc, cf, 20 * KT_MS, 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    pthread_join(lu.th, NULL);
    pthread_join(lc.th, NULL);
    ck_assert_int_eq(rp.calls, 1);
    ck_assert_int_eq(rp.err, -EPIPE);
    ck_assert_int_eq(ru.calls, 1);
    ck_assert_int_eq(ru.err, -EIO);
    ck_assert_int_eq(rc.calls, 1);
    ck_assert_int_eq(rc.err, -ECANCELED);
    ck_assert_int_eq(kart_future_cancelled(cf), 1);
    kart_future_free(pf);
    kart_future_free(uf);
    kart_future_free(cf);
    kart_pool_free(pool);
    close_loop(loop);
}
END_TEST

/* A futex wake-up on the future's word while it is not done: the await
 * stays (on the ring: its wait is queued again), and is delivered once
 * when the future is done. */
START_TEST(await_survives_a_spurious_wake)
{
    AWAIT_LOOP_OR_SKIP(_i);
    kart_future *f;
    ck_assert_int_eq(kart_future_create(&f), 0);
    arec r = {0};
    ck_assert_int_eq(kart_future_await(f, loop, arec_cb, &r), 0);
    /* Submitted (and on the ring, waiting) after one turn. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    for (int k = 0; k < 3; k++) {
        kart__futex_wake(&f->state, INT32_MAX, false);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
        sleep_ns(2 * KT_MS);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
        ck_assert_int_eq(r.calls, 0);
        ck_assert_int_eq(loop->ring_awaits, on_ring(backend) ? 1 : 0);
    }
    ck_assert_int_eq(kart_future_set_result(f, &(int){7}, sizeof(int)), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, 7);
    kart_future_free(f);
    close_loop(loop);
}
END_TEST

static void never_cb(kart_future *f, void *arg)
{
    (void)f;
    (void)arg;
    ck_abort_msg("this callback must never run");
}

/* Freed unset, the future's callbacks never run: the await is delivered
 * without its callback, and the loop no longer waits for it. */
START_TEST(await_a_future_freed_unset)
{
    AWAIT_LOOP_OR_SKIP(_i);
    kart_future *f;
    ck_assert_int_eq(kart_future_create(&f), 0);
    /* The ring cannot see a free: the portable path. Turned off on every
     * uring loop, not only where on_ring() says so now: a probe that
     * failed once (check-faults: io_uring_setup:3:ENFILE) answers no,
     * and the await's own probe then yes, and the loop waited on the
     * ring for a future freed. */
    if (strcmp(backend, "uring") == 0)
        kart__ur_features_off(1u << KART__UR_FUTEX_WAIT);
    ck_assert_int_eq(kart_future_await(f, loop, never_cb, NULL), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    kart_future_free(f);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    close_loop(loop);
}
END_TEST

/* The loop freed with awaits pending (on the ring, in the inbox, and done
 * but not yet delivered): no callback runs, even when the futures are done
 * afterwards; ASan finds no leak and no use after free. */
START_TEST(loop_freed_with_awaits_pending)
{
    AWAIT_LOOP_OR_SKIP(_i);
    kart_pool *pool = make_pool(2);
    enum { N = 8 };
    kart_future *pf[N], *uf[N], *done;
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(kart_pool_submit(pool, t_slow, &(int){40}, sizeof(int), &pf[k]), 0);
        ck_assert_int_eq(kart_future_create(&uf[k]), 0);
        ck_assert_int_eq(kart_future_await(pf[k], loop, never_cb, NULL), 0);
        ck_assert_int_eq(kart_future_await(uf[k], loop, never_cb, NULL), 0);
    }
    /* One turn submits the ring's waits. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(kart_future_create(&done), 0);
    ck_assert_int_eq(kart_future_set_result(done, NULL, 0), 0);
    ck_assert_int_eq(kart_future_await(done, loop, never_cb, NULL), 0);
    kart_future_set_result(uf[0], NULL, 0); /* done, not delivered */
    kart_loop_free(loop);
    for (int k = 1; k < N; k++)
        ck_assert_int_eq(kart_future_set_error(uf[k], -EIO), 0);
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(kart_future_wait(pf[k], 5000 * KT_MS), 0);
        kart_future_free(pf[k]);
        kart_future_free(uf[k]);
    }
    kart_future_free(done);
    kart_pool_free(pool);
}
END_TEST

/* The loop freed from inside an await's callback, others still pending. */
static void free_loop_cb(kart_future *f, void *arg)
{
    (void)f;
    kart_loop_free(arg);
}

START_TEST(loop_freed_from_an_await_callback)
{
    AWAIT_LOOP_OR_SKIP(_i);
    kart_future *a, *b;
    ck_assert_int_eq(kart_future_create(&a), 0);
    ck_assert_int_eq(kart_future_create(&b), 0);
    ck_assert_int_eq(kart_future_await(a, loop, free_loop_cb, loop), 0);
    ck_assert_int_eq(kart_future_await(b, loop, never_cb, NULL), 0);
    ck_assert_int_eq(kart_future_set_result(a, NULL, 0), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0); /* frees it */
    ck_assert_int_eq(kart_future_set_result(b, NULL, 0), 0);
    kart_future_free(a);
    kart_future_free(b);
}
END_TEST

enum { MANY = 1000 };
static int many_calls;
static int many_seen[MANY];

static void many_cb(kart_future *f, void *arg)
{
    int k = (int)(intptr_t)arg, v = 0, task_err = 1;
    size_t len = sizeof(v);
    ck_assert_int_eq(kart_future_result(f, 0, &v, &len, &task_err), 0);
    ck_assert_int_eq(task_err, 0);
    ck_assert_int_eq(v, 0); /* t_slow(0) */
    many_seen[k]++;
    many_calls++;
    kart_future_free(f);
}

START_TEST(await_1000_futures)
{
    AWAIT_LOOP_OR_SKIP(_i);
    kart_pool *pool = make_pool(2);
    many_calls = 0;
    memset(many_seen, 0, sizeof(many_seen));
    for (int k = 0; k < MANY; k++) {
        kart_future *f;
        ck_assert_int_eq(kart_pool_submit(pool, t_slow, &(int){0}, sizeof(int), &f), 0);
        ck_assert_int_eq(kart_future_await(f, loop, many_cb, (void *)(intptr_t)k), 0);
        /* A few on the ring, the rest in the inbox. */
        ck_assert_int_le(loop->ring_awaits, KART__AWAIT_RING_MAX);
    }
    if (on_ring(backend))
        ck_assert_int_gt(loop->ring_awaits, 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(many_calls, MANY);
    for (int k = 0; k < MANY; k++)
        ck_assert_int_eq(many_seen[k], 1);
    kart_pool_free(pool);
    close_loop(loop);
}
END_TEST

/* The order the callbacks ran in (order_cb's arg, the future's index). */
static int order_seen[4], order_n;

static void order_cb(kart_future *f, void *arg)
{
    (void)f;
    order_seen[order_n++] = (int)(intptr_t)arg;
}

START_TEST(await_delivers_in_the_order_done)
{
    AWAIT_LOOP_OR_SKIP(_i);
    enum { N = 3 }; /* at most KART__AWAIT_RING_MAX: all on the ring there */
    kart_future *f[N];
    order_n = 0;
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(kart_future_create(&f[k]), 0);
        ck_assert_int_eq(kart_future_await(f[k], loop, order_cb, (void *)(intptr_t)k), 0);
    }
    ck_assert_int_eq(loop->ring_awaits, on_ring(backend) ? N : 0);
    /* Done in this order before the loop waits: the ring's requests all
     * complete in its first wait, the inbox gets them one by one; either
     * way the loop calls back in the order they were done (the ring's
     * completions were once handed over reversed). */
    for (int k = 0; k < N; k++)
        ck_assert_int_eq(kart_future_set_result(f[k], &k, sizeof(k)), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(order_n, N);
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(order_seen[k], k);
        kart_future_free(f[k]);
    }
    close_loop(loop);
}
END_TEST

START_TEST(await_errors)
{
    AWAIT_LOOP_OR_SKIP(_i);
    kart_future *f;
    ck_assert_int_eq(kart_future_create(&f), 0);
    ck_assert_int_eq(kart_future_await(NULL, loop, never_cb, NULL), -EINVAL);
    ck_assert_int_eq(kart_future_await(f, NULL, never_cb, NULL), -EINVAL);
    ck_assert_int_eq(kart_future_await(f, loop, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    /* A forked child may not await on its parent's loop. */
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(kart_future_await(f, loop, never_cb, NULL) == -ECHILD ? 0 : 1);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    kart_future_free(f);
    close_loop(loop);
}
END_TEST

int main(void)
{
    kt_print_backends();
    int nb = kt_nbackends() + 1;
    Suite *s = suite_create("loop_future");
    TCase *tc = tcase_create("await");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, await_a_pool_task, 0, nb);
    tcase_add_loop_test(tc, await_a_future_of_your_own, 0, nb);
    tcase_add_loop_test(tc, await_a_done_future_runs_on_the_next_turn, 0, nb);
    tcase_add_loop_test(tc, await_failed_and_cancelled_futures, 0, nb);
    tcase_add_loop_test(tc, await_survives_a_spurious_wake, 0, nb);
    tcase_add_loop_test(tc, await_a_future_freed_unset, 0, nb);
    tcase_add_loop_test(tc, loop_freed_with_awaits_pending, 0, nb);
    tcase_add_loop_test(tc, loop_freed_from_an_await_callback, 0, nb);
    tcase_add_loop_test(tc, await_1000_futures, 0, nb);
    tcase_add_loop_test(tc, await_delivers_in_the_order_done, 0, nb);
    tcase_add_loop_test(tc, await_errors, 0, nb);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

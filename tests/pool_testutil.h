/*
 * tests/pool_testutil.h — one-int shapes of the pool calls whose task
 * result goes out separately (API rule 4), for the tests that check "what
 * came of it" in one assertion: each returns the call's own error if it
 * failed, else the task's (0 when it succeeded). Tests of the separation
 * itself call the real functions.
 */
#ifndef KART_POOL_TESTUTIL_H
#define KART_POOL_TESTUTIL_H

#include <kart/pool.h>

static inline int fut_result(kart_future *f, int64_t timeout_ns, void *buf, size_t *len)
{
    int te = 0;
    int rc = kart_future_result(f, timeout_ns, buf, len, &te);
    return rc ? rc : te;
}

static inline int fut_result_ptr(kart_future *f, int64_t timeout_ns, void **res)
{
    int te = 0;
    int rc = kart_future_result_ptr(f, timeout_ns, res, &te);
    return rc ? rc : te;
}

/* The task's error of a done future; -EBUSY when it is not done. */
static inline int fut_error(kart_future *f)
{
    int te = 0;
    int rc = kart_future_error(f, 0, &te);
    return rc == -ETIMEDOUT ? -EBUSY : rc ? rc : te;
}

static inline int pool_apply(kart_pool *p, kart_task_fn fn, const void *arg, size_t arg_len,
                             void *res, size_t *len)
{
    int te = 0;
    int rc = kart_pool_apply(p, fn, arg, arg_len, res, len, &te);
    return rc ? rc : te;
}

static inline int pool_map(kart_pool *p, kart_task_fn fn, const void *in, size_t in_size, void *out,
                           size_t out_size, size_t n, size_t chunk)
{
    kart_pool_map_options o = {.chunk = chunk};
    kart_pool_failure fl;
    int rc = kart_pool_map(p, fn, in, in_size, out, out_size, n, &o, &fl);
    return rc ? rc : fl.err;
}

static inline int pool_map_async(kart_pool *p, kart_task_fn fn, const void *in, size_t in_size,
                                 void *out, size_t out_size, size_t n, size_t chunk,
                                 kart_future **f)
{
    kart_pool_map_options o = {.chunk = chunk};
    return kart_pool_map_async(p, fn, in, in_size, out, out_size, n, &o, f);
}

/* 1 with the item, the item's error in its place, 0 at the end, or the
 * source's error once before the end. */
static inline int iter_next(kart_pool_iter *it, int64_t timeout_ns, void *res)
{
    int te = 0;
    int rc = kart_pool_iter_next(it, timeout_ns, res, &te);
    if (rc < 0)
        return rc;
    return te ? te : rc;
}

static inline int pool_kind(const kart_pool *p)
{
    kart_pool_kind k;
    int rc = kart_pool_kind_of(p, &k);
    return rc ? rc : (int)k;
}

#endif

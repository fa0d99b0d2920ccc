/*
 * core/pool_future.c — futures (concurrent.futures.Future and
 * multiprocessing's AsyncResult in one): waiting, results, cancel,
 * callbacks, and their delivery on an event loop through a bridge.
 */
#include "pool_private.h"

#include <stdlib.h>
#include <string.h>

KART_API int kart_future_wait(kart_future *f, int64_t timeout_ns)
{
    if (!f)
        return -EINVAL;
    return kart__pool_wait_state(f, kart__pool_deadline(timeout_ns));
}

KART_API int kart_future_done(const kart_future *f)
{
    if (!f)
        return -EINVAL;
    return atomic_load_explicit(&((kart_future *)f)->state, memory_order_acquire) == KS_DONE;
}

KART_API int kart_future_error(const kart_future *f)
{
    int d = kart_future_done(f);
    if (d < 0)
        return d;
    return d ? f->err : -EAGAIN;
}

KART_API int kart_future_successful(const kart_future *f)
{
    int d = kart_future_done(f);
    if (d <= 0)
        return d < 0 ? d : -EAGAIN;
    return f->err == 0;
}

KART_API int kart_future_cancelled(const kart_future *f)
{
    if (!f)
        return -EINVAL;
    return atomic_load(&((kart_future *)f)->cancelled) != 0;
}

KART_API int kart_future_result(kart_future *f, int64_t timeout_ns, void *buf, size_t *len)
{
    if (!f || !len || (!buf && *len) || f->kind == KJ_PTR)
        return -EINVAL;
    int rc = kart__pool_wait_state(f, kart__pool_deadline(timeout_ns));
    if (rc)
        return rc;
    if (f->err)
        return f->err;
    size_t n = f->kind == KJ_BYTES ? f->res_len : 0;
    if (n > *len) {
        *len = n;
        return -EMSGSIZE;
    }
    if (n)
        memcpy(buf, f->out, n);
    *len = n;
    return 0;
}

KART_API int kart_future_result_ptr(kart_future *f, int64_t timeout_ns, void **result)
{
    if (!f || !result || f->kind != KJ_PTR)
        return -EINVAL;
    int rc = kart__pool_wait_state(f, kart__pool_deadline(timeout_ns));
    if (rc)
        return rc;
    if (f->err)
        return f->err;
    *result = f->pres;
    return 0;
}

KART_API int kart_future_cancel(kart_future *f)
{
    if (!f)
        return -EINVAL;
    if (atomic_load(&f->state) == KS_DONE)
        return 0;
    uint32_t before = atomic_load(&f->cancelled);
    kart__pool_cancel_rest(f->pool, f, atomic_load(&f->gen), -ECANCELED);
    return !before && atomic_load(&f->cancelled);
}

static int add_cb(kart_future *f, kart_future_cb cb, void *arg, bool on_error_only)
{
    if (!f || !cb)
        return -EINVAL;
    kart__pool_cb *c = malloc(sizeof(*c));
    if (!c)
        return -ENOMEM;
    *c = (kart__pool_cb){NULL, cb, arg, on_error_only};
    kart__pool_cb *head = atomic_load(&f->cbs);
    while (head != KART__POOL_FIRED) {
        c->next = head;
        if (atomic_compare_exchange_weak(&f->cbs, &head, c))
            return 0;
    }
    /* Already published: run it here. */
    free(c);
    if (!on_error_only || f->err)
        cb(f, arg);
    return 0;
}

KART_API int kart_future_add_done_callback(kart_future *f, kart_future_cb cb, void *arg)
{
    return add_cb(f, cb, arg, false);
}

KART_API int kart_future_add_error_callback(kart_future *f, kart_future_cb cb, void *arg)
{
    return add_cb(f, cb, arg, true);
}

KART_API int kart_future_free(kart_future *f)
{
    if (!f)
        return -EINVAL;
    kart__pool_job_unref(f->pool, f);
    return 0;
}

/* ---- the loop bridge ---- */

typedef struct bridge_item {
    struct bridge_item *next;
    kart_future *f;
    kart_future_cb cb;
    void *arg;
    kart_pool_bridge *bridge;
} bridge_item;

struct kart_pool_bridge {
    kart_async async; /* first: the async callback's handle is the bridge */
    atomic_flag lock;
    bridge_item *head, **tail;
};

static void bridge_run(kart_async *a)
{
    kart_pool_bridge *b = (kart_pool_bridge *)a;
    while (atomic_flag_test_and_set_explicit(&b->lock, memory_order_acquire))
        kart__cpu_relax();
    bridge_item *list = b->head;
    b->head = NULL;
    b->tail = &b->head;
    atomic_flag_clear_explicit(&b->lock, memory_order_release);
    while (list) {
        bridge_item *n = list->next;
        list->cb(list->f, list->arg);
        free(list);
        list = n;
    }
}

/* Runs on the thread that completes the future: hand it to the loop. */
static void bridge_push(kart_future *f, void *arg)
{
    bridge_item *it = arg;
    kart_pool_bridge *b = it->bridge;
    (void)f;
    while (atomic_flag_test_and_set_explicit(&b->lock, memory_order_acquire))
        kart__cpu_relax();
    *b->tail = it;
    b->tail = &it->next;
    atomic_flag_clear_explicit(&b->lock, memory_order_release);
    kart_async_send(&b->async);
}

KART_API int kart_pool_bridge_create(kart_loop *loop, kart_pool_bridge **out)
{
    if (!loop || !out)
        return -EINVAL;
    kart_pool_bridge *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    atomic_flag_clear(&b->lock);
    b->tail = &b->head;
    int rc = kart_async_init(loop, &b->async);
    if (!rc)
        rc = kart_async_start(&b->async, bridge_run);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

KART_API int kart_pool_bridge_free(kart_pool_bridge *bridge)
{
    if (!bridge)
        return -EINVAL;
    kart_async_stop(&bridge->async);
    for (bridge_item *it = bridge->head; it;) {
        bridge_item *n = it->next;
        free(it);
        it = n;
    }
    free(bridge);
    return 0;
}

KART_API int kart_future_on_loop(kart_future *f, kart_pool_bridge *bridge, kart_future_cb cb,
                                 void *arg)
{
    if (!f || !bridge || !cb)
        return -EINVAL;
    bridge_item *it = malloc(sizeof(*it));
    if (!it)
        return -ENOMEM;
    *it = (bridge_item){NULL, f, cb, arg, bridge};
    int rc = kart_future_add_done_callback(f, bridge_push, it);
    if (rc)
        free(it);
    return rc;
}

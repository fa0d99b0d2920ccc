/*
 * core/pool_future.c — futures (concurrent.futures.Future and
 * multiprocessing's AsyncResult in one): waiting, results, cancel,
 * callbacks, futures you complete yourself, and their delivery on an
 * event loop through a bridge. Waiting on many: pool_many.c.
 */
#include "pool_private.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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
    return kart__pool_done(f);
}

/* A future of your own: `finished` is its state word. */
enum { UF_PENDING = 0, UF_DONE = 1, UF_RUNNING = 2 };

KART_API int kart_future_running(const kart_future *f)
{
    if (!f)
        return -EINVAL;
    if (kart__pool_done(f))
        return 0;
    kart_future *m = (kart_future *)f;
    if (!f->pool)
        return atomic_load(&m->finished) == UF_RUNNING;
    return atomic_load_explicit(&m->started, memory_order_relaxed) != 0;
}

KART_API int kart_future_successful(const kart_future *f)
{
    if (!f)
        return -EINVAL;
    if (!kart__pool_done(f))
        return -EBUSY;
    return f->err == 0;
}

KART_API int kart_future_cancelled(const kart_future *f)
{
    if (!f)
        return -EINVAL;
    return atomic_load(&((kart_future *)f)->cancelled) != 0;
}

KART_API int kart_future_error(kart_future *f, int64_t timeout_ns, int *task_err)
{
    if (!f || !task_err)
        return -EINVAL;
    int rc = kart__pool_wait_state(f, kart__pool_deadline(timeout_ns));
    if (rc)
        return rc;
    *task_err = f->err;
    return 0;
}

KART_API int kart_future_failure(kart_future *f, int64_t timeout_ns, kart_pool_failure *failure)
{
    if (!f || !failure)
        return -EINVAL;
    int rc = kart__pool_wait_state(f, kart__pool_deadline(timeout_ns));
    if (rc)
        return rc;
    kart_pool_failure r = {f->err, 0, 0, -1, 0};
    uint64_t item = atomic_load(&f->fail_item);
    if (f->err && f->pool && f->kind == KJ_ITEMS && item != UINT64_MAX)
        r.item = (size_t)item;
    if (f->err == KART_EWORKERDIED && f->pool && f->dead_pid) {
        r.pid = f->dead_pid;
        if (WIFEXITED(f->dead_status))
            r.exit_status = WEXITSTATUS(f->dead_status);
        else if (WIFSIGNALED(f->dead_status))
            r.signal = WTERMSIG(f->dead_status);
    }
    *failure = r;
    return 0;
}

KART_API int kart_future_progress(const kart_future *f, size_t *done, size_t *total)
{
    if (!f || !f->pool || f->kind != KJ_ITEMS || (!done && !total))
        return -EINVAL;
    if (done)
        *done = kart__pool_items_done(f);
    if (total)
        *total = f->n;
    return 0;
}

KART_API int kart_future_result(kart_future *f, int64_t timeout_ns, void *buf, size_t *len,
                                int *task_err)
{
    if (!f || !len || !task_err || (!buf && *len) || (f->pool && f->kind == KJ_PTR))
        return -EINVAL;
    int rc = kart__pool_wait_state(f, kart__pool_deadline(timeout_ns));
    if (rc)
        return rc;
    if (!f->pool && f->kind == KJ_PTR && !f->err)
        return -EINVAL; /* set with a pointer */
    size_t n = f->kind == KJ_BYTES && !f->err ? f->res_len : 0;
    if (n > *len) {
        *len = n;
        return -ENOBUFS;
    }
    if (n)
        memcpy(buf, f->out, n);
    *len = n;
    *task_err = f->err;
    return 0;
}

KART_API int kart_future_result_ptr(kart_future *f, int64_t timeout_ns, void **result,
                                    int *task_err)
{
    if (!f || !result || !task_err || (f->pool && f->kind != KJ_PTR))
        return -EINVAL;
    int rc = kart__pool_wait_state(f, kart__pool_deadline(timeout_ns));
    if (rc)
        return rc;
    if (!f->pool && f->kind != KJ_PTR && !f->err)
        return -EINVAL; /* set with bytes */
    *result = f->err ? NULL : f->pres;
    *task_err = f->err;
    return 0;
}

/* ---- callbacks ---- */

/* Pushes a callback; returns 1 without keeping it when the future is
 * already published (the caller decides what to do: API rule 9 forbids
 * running it here). */
int kart__pool_cb_push(kart_future *f, kart_future_cb cb, void *arg, bool on_error_only,
                       void (*drop)(void *))
{
    kart__pool_cb *c = malloc(sizeof(*c));
    if (!c)
        return -ENOMEM;
    *c = (kart__pool_cb){NULL, cb, arg, on_error_only, drop};
    kart__pool_cb *head = atomic_load(&f->cbs);
    while (head != KART__POOL_FIRED) {
        c->next = kart__pool_cb_list(head);
        kart__pool_cb *w = (kart__pool_cb *)((uintptr_t)c | ((uintptr_t)head & KART__POOL_WAITING));
        if (atomic_compare_exchange_weak(&f->cbs, &head, w))
            return 0;
    }
    free(c);
    return 1;
}

KART_API int kart_future_add_done_callback(kart_future *f, kart_future_cb cb, void *arg)
{
    if (!f || !cb)
        return -EINVAL;
    return kart__pool_cb_push(f, cb, arg, false, NULL);
}

KART_API int kart_future_add_error_callback(kart_future *f, kart_future_cb cb, void *arg)
{
    if (!f || !cb)
        return -EINVAL;
    return kart__pool_cb_push(f, cb, arg, true, NULL);
}

/* Discards callbacks that will never run, telling their owners. */
static void drop_cbs(kart__pool_cb *c)
{
    c = kart__pool_cb_list(c);
    while (c && c != KART__POOL_FIRED) {
        kart__pool_cb *n = c->next;
        if (c->drop)
            c->drop(c->arg);
        free(c);
        c = n;
    }
}

KART_API void kart_future_free(kart_future *f)
{
    if (!f)
        return;
    if (f->pool) {
        kart__pool_job_unref(f->pool, f);
        return;
    }
    drop_cbs(atomic_exchange(&f->cbs, KART__POOL_FIRED));
    free(f->bufs[0]);
    free(f);
}

/* ---- futures you complete yourself ---- */

KART_API int kart_future_create(kart_future **out)
{
    if (!out)
        return -EINVAL;
    kart_future *f = aligned_alloc(KART__POOL_LINE, sizeof(*f));
    if (!f)
        return -ENOMEM;
    memset(f, 0, sizeof(*f));
    f->kind = KJ_BYTES;
    atomic_store(&f->fail_item, UINT64_MAX);
    atomic_store(&f->state, KS_QUEUED);
    atomic_store(&f->cbs, NULL);
    atomic_store(&f->finished, UF_PENDING);
    *out = f;
    return 0;
}

/* Done: wake the waiters, run the callbacks here, once. */
static void user_publish(kart_future *f)
{
    atomic_store_explicit(&f->state, KS_DONE, memory_order_release);
    kart__pool_cb *list = NULL, *stack = atomic_exchange(&f->cbs, KART__POOL_FIRED);
    if ((uintptr_t)stack & KART__POOL_WAITING)
        kart__futex_wake(&f->state, INT32_MAX, false);
    stack = kart__pool_cb_list(stack);
    while (stack) {
        kart__pool_cb *n = stack->next;
        stack->next = list;
        list = stack;
        stack = n;
    }
    while (list) {
        kart__pool_cb *n = list->next;
        if (!list->on_error_only || f->err)
            list->cb(f, list->arg);
        free(list);
        list = n;
    }
}

/* Takes the right to complete a future of your own (pending or running
 * -> done). */
static int user_claim(kart_future *f)
{
    if (!f || f->pool)
        return -EINVAL;
    uint32_t s = atomic_load(&f->finished);
    while (s != UF_DONE)
        if (atomic_compare_exchange_weak(&f->finished, &s, UF_DONE))
            return 0;
    return -EALREADY;
}

KART_API int kart_future_set_result(kart_future *f, const void *buf, size_t len)
{
    if (!f || f->pool || (!buf && len))
        return -EINVAL;
    void *copy = NULL;
    if (len > KART__POOL_INLINE && !(copy = malloc(len)))
        return -ENOMEM;
    int rc = user_claim(f);
    if (rc) {
        free(copy);
        return rc;
    }
    f->out = copy ? copy : (char *)f->inl;
    f->bufs[0] = copy;
    if (len)
        memcpy(f->out, buf, len);
    f->res_len = len;
    f->kind = KJ_BYTES;
    f->err = 0;
    user_publish(f);
    return 0;
}

KART_API int kart_future_set_result_ptr(kart_future *f, void *result)
{
    int rc = user_claim(f);
    if (rc)
        return rc;
    f->pres = result;
    f->kind = KJ_PTR;
    f->err = 0;
    user_publish(f);
    return 0;
}

KART_API int kart_future_set_error(kart_future *f, int err)
{
    if (err >= 0)
        return -EINVAL;
    int rc = user_claim(f);
    if (rc)
        return rc;
    f->err = err;
    user_publish(f);
    return 0;
}

KART_API int kart_future_set_running(kart_future *f)
{
    if (!f || f->pool)
        return -EINVAL;
    uint32_t s = UF_PENDING;
    if (atomic_compare_exchange_strong(&f->finished, &s, UF_RUNNING))
        return 1;
    if (s == UF_DONE && atomic_load(&f->cancelled))
        return 0;
    return -EALREADY;
}

KART_API int kart_future_cancel(kart_future *f)
{
    if (!f)
        return -EINVAL;
    if (atomic_load(&f->state) == KS_DONE)
        return 0;
    if (!f->pool) {
        uint32_t s = UF_PENDING;
        if (!atomic_compare_exchange_strong(&f->finished, &s, UF_DONE))
            return 0;
        f->err = -ECANCELED;
        atomic_store(&f->cancelled, 1);
        user_publish(f);
        return 1;
    }
    uint32_t before = atomic_load(&f->cancelled);
    kart__pool_cancel_rest(f->pool, f, atomic_load(&f->gen), -ECANCELED);
    return !before && atomic_load(&f->cancelled);
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
    /* A failed send is taken back (kart_async_send): tried again. */
    for (int i = 0; i < 3 && kart_async_send(&b->async) < 0; i++)
        ;
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

KART_API void kart_pool_bridge_free(kart_pool_bridge *bridge)
{
    if (!bridge)
        return;
    kart_async_stop(&bridge->async);
    for (bridge_item *it = bridge->head; it;) {
        bridge_item *n = it->next;
        free(it);
        it = n;
    }
    free(bridge);
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
    int rc = kart__pool_cb_push(f, bridge_push, it, false, free);
    if (rc == 1) /* already done: to the loop's next turn all the same */
        bridge_push(f, it);
    if (rc < 0)
        free(it);
    return rc < 0 ? rc : 0;
}

/* Description: managers (kart/manager.h): the server in a thread, forked
 * and standalone; every method of dict, list, Namespace, Value, Event,
 * Lock, RLock, Queue through C proxies; many clients at once (threads and
 * forked processes); references and disconnects; bad input; and the real
 * python3's SyncManager client against the kart server
 * (tests/py/manager_peer.py). */
#include "testutil.h"

#include <kart/conn.h>
#include <kart/log.h>
#include <kart/manager.h>
#include <kart/obj.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEY "kart-test-key"

static void nap(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static kart_manager_options key_opts(void)
{
    return (kart_manager_options){.authkey = KEY, .authkey_len = strlen(KEY)};
}

typedef struct fixture {
    kart_manager_server *srv;
    kart_manager *m;
    char addr[256];
    pid_t pid; /* a forked server */
} fixture;

/* A server in a forked child: for tests that fork clients, so that no
 * server thread is running in the process that forks (ASan's allocator
 * is not fork-safe across threads). */
static void start_forked(fixture *f)
{
    kart_manager_options o = key_opts();
    f->srv = NULL;
    ck_assert_int_eq(kart_manager_fork(NULL, &o, f->addr, sizeof f->addr, &f->pid), 0);
    ck_assert_int_eq(kart_manager_connect(&f->m, f->addr, &o), 0);
}

static void stop_forked(fixture *f)
{
    ck_assert_int_eq(kart_manager_shutdown(f->m), 0);
    kart_manager_free(f->m);
    int st;
    kt_wait_child(f->pid, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void start(fixture *f, const char *address)
{
    kart_manager_options o = key_opts();
    char gen[64];
    if (!address) {
        static _Atomic int seq;
        snprintf(gen, sizeof gen, "@kart-mgr-test-%d-%d", (int)getpid(), atomic_fetch_add(&seq, 1));
        address = gen;
    }
    ck_assert_int_eq(kart_manager_server_create(&f->srv, address, &o), 0);
    ck_assert_int_gt(kart_manager_server_address(f->srv, f->addr, sizeof f->addr), 0);
    ck_assert_int_eq(kart_manager_server_start(f->srv), 0);
    ck_assert_int_eq(kart_manager_connect(&f->m, f->addr, &o), 0);
}

static void stop(fixture *f)
{
    kart_manager_free(f->m);
    kart_manager_server_free(f->srv);
}

static kart_obj *I(int64_t v)
{
    kart_obj *o = NULL;
    ck_assert_int_eq(kart_obj_int(v, &o), 0);
    return o;
}

static kart_obj *S(const char *s)
{
    kart_obj *o = NULL;
    ck_assert_int_eq(kart_obj_strz(s, &o), 0);
    return o;
}

static int64_t as_int(const kart_obj *o)
{
    int64_t v = 0;
    ck_assert_int_eq(kart_obj_get_int(o, &v), 0);
    return v;
}

/* as_int, freeing o */
static int64_t int_of(kart_obj *o)
{
    int64_t v = as_int(o);
    kart_obj_free(o);
    return v;
}

/* a tuple of the given (taken) items */
static kart_obj *T(size_t n, kart_obj *a, kart_obj *b)
{
    kart_obj *items[2] = {a, b};
    kart_obj *t = NULL;
    ck_assert_int_eq(kart_obj_tuple(items, n, &t), 0);
    return t;
}

/* calls method with args (taken), returns the result (or NULL for an
 * expected error code other than 0) */
static kart_obj *call(kart_proxy *p, const char *method, kart_obj *args, int expect)
{
    kart_obj *res = NULL;
    int r = kart_proxy_call(p, method, args, NULL, &res);
    kart_obj_free(args);
    char why[600] = "";
    if (r != expect && r == KART_EREMOTE)
        kart_obj_repr(res, why, sizeof why, NULL);
    ck_assert_msg(r == expect, "%s: %d (%s), expected %d %s", method, r, kart_strerror(r), expect,
                  why);
    return res;
}

static void expect_exc(kart_obj *res, const char *name)
{
    const char *n = NULL;
    ck_assert_int_eq(kart_obj_get_class(res, NULL, &n, NULL), 0);
    ck_assert_str_eq(n, name);
    kart_obj_free(res);
}

static void expect_repr(kart_obj *o, const char *want)
{
    char buf[512];
    ck_assert_int_ge(kart_obj_repr(o, buf, sizeof buf, NULL), 0);
    ck_assert_str_eq(buf, want);
    kart_obj_free(o);
}

/* ---------------------------------------------------------------- dict */

START_TEST(dict_every_method)
{
    fixture f;
    start(&f, NULL);
    kart_proxy *d = NULL;
    ck_assert_int_eq(kart_manager_dict(f.m, &d), 0);
    ck_assert_str_eq(kart_proxy_typeid(d), "dict");
    kart_obj *k = S("a"), *v = I(1), *out = NULL;
    ck_assert_int_eq(kart_mdict_set(d, k, v), 0);
    ck_assert_int_eq(kart_mdict_get(d, k, &out), 0);
    ck_assert_int_eq(as_int(out), 1);
    kart_obj_free(out);
    ck_assert_int_eq(kart_mdict_contains(d, k), 1);
    size_t n = 0;
    ck_assert_int_eq(kart_mdict_len(d, &n), 0);
    ck_assert_uint_eq(n, 1);
    kart_obj *missing = S("zz");
    ck_assert_int_eq(kart_mdict_get(d, missing, &out), -ENOENT);
    ck_assert_int_eq(kart_mdict_del(d, missing), -ENOENT);
    ck_assert_int_eq(kart_mdict_contains(d, missing), 0);
    kart_obj *unhashable = NULL;
    ck_assert_int_eq(kart_obj_list(&unhashable), 0);
    ck_assert_int_eq(kart_mdict_set(d, unhashable, v), -EINVAL);
    ck_assert_int_eq(kart_mdict_get(d, unhashable, &out), -EINVAL);
    /* the rest through kart_proxy_call */
    expect_repr(call(d, "get", T(2, S("zz"), I(7)), 0), "7");
    expect_repr(call(d, "get", T(1, S("zz"), NULL), 0), "None");
    expect_repr(call(d, "setdefault", T(2, S("s"), I(5)), 0), "5");
    expect_repr(call(d, "setdefault", T(2, S("s"), I(6)), 0), "5");
    expect_repr(call(d, "keys", NULL, 0), "['a', 's']");
    expect_repr(call(d, "values", NULL, 0), "[1, 5]");
    expect_repr(call(d, "items", NULL, 0), "[('a', 1), ('s', 5)]");
    expect_repr(call(d, "__len__", NULL, 0), "2");
    expect_repr(call(d, "pop", T(1, S("s"), NULL), 0), "5");
    expect_repr(call(d, "pop", T(2, S("s"), I(9)), 0), "9");
    expect_exc(call(d, "pop", T(1, S("s"), NULL), KART_EREMOTE), "KeyError");
    kart_obj *upd = NULL;
    ck_assert_int_eq(kart_obj_dict(&upd), 0);
    ck_assert_int_eq(kart_obj_dict_set(upd, S("b"), I(2)), 0);
    expect_repr(call(d, "update", T(1, upd, NULL), 0), "None");
    ck_assert_int_eq(kart_mdict_copy(d, &out), 0);
    expect_repr(out, "{'a': 1, 'b': 2}");
    expect_repr(call(d, "popitem", NULL, 0), "('b', 2)");
    expect_repr(call(d, "__getitem__", T(1, S("a"), NULL), 0), "1");
    expect_repr(call(d, "__contains__", T(1, S("a"), NULL), 0), "True");
    expect_repr(call(d, "__delitem__", T(1, S("a"), NULL), 0), "None");
    expect_repr(call(d, "__setitem__", T(2, I(3), I(4)), 0), "None");
    expect_repr(call(d, "__repr__", NULL, 0), "'{3: 4}'");
    expect_repr(call(d, "#GETVALUE", NULL, 0), "{3: 4}");
    expect_repr(call(d, "clear", NULL, 0), "None");
    expect_exc(call(d, "popitem", NULL, KART_EREMOTE), "KeyError");
    /* __iter__ returns a proxy: kart_proxy_call refuses it (and lets the
     * object go), kart_proxy_call_proxy takes it */
    ck_assert_int_eq(kart_proxy_call(d, "__iter__", NULL, NULL, &out), -ENOTSUP);
    ck_assert_int_eq(kart_manager_objects(f.m), 1);
    expect_repr(call(d, "__setitem__", T(2, I(3), I(4)), 0), "None");
    kart_proxy *it = NULL;
    ck_assert_int_eq(kart_proxy_call_proxy(d, "__iter__", NULL, NULL, &it, NULL), 0);
    ck_assert_str_eq(kart_proxy_typeid(it), "Iterator");
    ck_assert_int_eq(kart_manager_objects(f.m), 2);
    expect_repr(call(it, "__next__", NULL, 0), "3");
    expect_exc(call(it, "__next__", NULL, KART_EREMOTE), "StopIteration");
    ck_assert_int_eq(kart_proxy_call_proxy(d, "__len__", NULL, NULL, &it, NULL), -ENOMSG);
    kart_proxy_free(it);
    ck_assert_int_eq(kart_manager_objects(f.m), 1);
    ck_assert_int_eq(kart_proxy_call_proxy(d, "__iter__", NULL, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_proxy_call_proxy(NULL, "__iter__", NULL, NULL, &it, NULL), -EINVAL);
    expect_repr(call(d, "clear", NULL, 0), "None");
    /* argument errors */
    expect_exc(call(d, "get", NULL, KART_EREMOTE), "TypeError");
    expect_exc(call(d, "__len__", T(1, I(1), NULL), KART_EREMOTE), "TypeError");
    /* not exposed */
    out = call(d, "fromkeys", NULL, KART_EREMOTE);
    ck_assert_int_eq(kart_obj_type_of(out), KART_OBJ_STR);
    kart_obj_free(out);
    ck_assert_int_eq(kart_proxy_call(NULL, "get", NULL, NULL, &out), -EINVAL);
    ck_assert_int_eq(kart_proxy_call(d, "get", k, NULL, &out), -EINVAL);
    kart_obj_free(k);
    kart_obj_free(v);
    kart_obj_free(missing);
    kart_obj_free(unhashable);
    kart_proxy_free(d);
    ck_assert_int_eq(kart_manager_objects(f.m), 0);
    stop(&f);
}
END_TEST

/* ---------------------------------------------------------------- list */

START_TEST(list_every_method)
{
    fixture f;
    start(&f, NULL);
    kart_proxy *l = NULL;
    ck_assert_int_eq(kart_manager_list(f.m, &l), 0);
    for (int i = 0; i < 3; i++) {
        kart_obj *v = I(3 - i);
        ck_assert_int_eq(kart_mlist_append(l, v), 0);
        kart_obj_free(v);
    }
    size_t n;
    ck_assert_int_eq(kart_mlist_len(l, &n), 0);
    ck_assert_uint_eq(n, 3);
    kart_obj *out = NULL;
    ck_assert_int_eq(kart_mlist_get(l, -1, &out), 0);
    ck_assert_int_eq(as_int(out), 1);
    kart_obj_free(out);
    ck_assert_int_eq(kart_mlist_get(l, 3, &out), -ERANGE);
    kart_obj *x = S("x");
    ck_assert_int_eq(kart_mlist_set(l, 0, x), 0);
    ck_assert_int_eq(kart_mlist_set(l, -4, x), -ERANGE);
    ck_assert_int_eq(kart_mlist_pop(l, 0, &out), 0);
    expect_repr(out, "'x'");
    ck_assert_int_eq(kart_mlist_pop(l, 9, &out), -ERANGE);
    kart_obj_free(x);
    expect_repr(call(l, "#GETVALUE", NULL, 0), "[2, 1]");
    expect_repr(call(l, "sort", NULL, 0), "None");
    expect_repr(call(l, "#GETVALUE", NULL, 0), "[1, 2]");
    kart_obj *kw = NULL;
    ck_assert_int_eq(kart_obj_dict(&kw), 0);
    ck_assert_int_eq(kart_obj_dict_set(kw, S("reverse"), I(1)), 0);
    ck_assert_int_eq(kart_proxy_call(l, "sort", NULL, kw, &out), 0);
    kart_obj_free(out);
    kart_obj_free(kw);
    expect_repr(call(l, "#GETVALUE", NULL, 0), "[2, 1]");
    expect_repr(call(l, "insert", T(2, I(-100), I(0)), 0), "None");
    expect_repr(call(l, "insert", T(2, I(100), I(9)), 0), "None");
    expect_repr(call(l, "#GETVALUE", NULL, 0), "[0, 2, 1, 9]");
    expect_repr(call(l, "index", T(1, I(1), NULL), 0), "2");
    expect_exc(call(l, "index", T(1, I(7), NULL), KART_EREMOTE), "ValueError");
    expect_repr(call(l, "count", T(1, I(9), NULL), 0), "1");
    expect_repr(call(l, "__contains__", T(1, I(9), NULL), 0), "True");
    expect_repr(call(l, "remove", T(1, I(9), NULL), 0), "None");
    expect_exc(call(l, "remove", T(1, I(9), NULL), KART_EREMOTE), "ValueError");
    expect_repr(call(l, "reverse", NULL, 0), "None");
    expect_repr(call(l, "#GETVALUE", NULL, 0), "[1, 2, 0]");
    kart_obj *more = NULL;
    ck_assert_int_eq(kart_obj_list(&more), 0);
    ck_assert_int_eq(kart_obj_append(more, S("m")), 0);
    expect_repr(call(l, "extend", T(1, more, NULL), 0), "None");
    expect_repr(call(l, "__getitem__", T(1, I(3), NULL), 0), "'m'");
    expect_repr(call(l, "__setitem__", T(2, I(3), I(3)), 0), "None");
    expect_repr(call(l, "__delitem__", T(1, I(3), NULL), 0), "None");
    expect_exc(call(l, "__delitem__", T(1, I(3), NULL), KART_EREMOTE), "IndexError");
    expect_exc(call(l, "__getitem__", T(1, S("k"), NULL), KART_EREMOTE), "TypeError");
    expect_repr(call(l, "__len__", NULL, 0), "3");
    ck_assert_int_eq(kart_obj_list(&more), 0);
    ck_assert_int_eq(kart_obj_append(more, I(5)), 0);
    expect_repr(call(l, "__add__", T(1, more, NULL), 0), "[1, 2, 0, 5]");
    expect_exc(call(l, "__add__", T(1, I(5), NULL), KART_EREMOTE), "TypeError");
    expect_repr(call(l, "__mul__", T(1, I(2), NULL), 0), "[1, 2, 0, 1, 2, 0]");
    expect_repr(call(l, "__rmul__", T(1, I(0), NULL), 0), "[]");
    expect_repr(call(l, "__reversed__", NULL, 0), "[0, 2, 1]");
    expect_repr(call(l, "__imul__", T(1, I(2), NULL), 0), "[1, 2, 0, 1, 2, 0]");
    expect_repr(call(l, "__len__", NULL, 0), "6");
    expect_repr(call(l, "pop", NULL, 0), "0");
    expect_repr(call(l, "__repr__", NULL, 0), "'[1, 2, 0, 1, 2]'");
    ck_assert_int_eq(kart_obj_list(&more), 0);
    ck_assert_int_eq(kart_obj_append(more, S("s")), 0);
    expect_repr(call(l, "append", T(1, more, NULL), 0), "None");
    expect_exc(call(l, "sort", NULL, KART_EREMOTE), "TypeError"); /* str < int */
    kart_proxy_free(l);
    stop(&f);
}
END_TEST

/* ----------------------------------------------------- Namespace, Value */

START_TEST(namespace_and_value)
{
    fixture f;
    start(&f, NULL);
    kart_proxy *ns = NULL, *v = NULL;
    ck_assert_int_eq(kart_manager_namespace(f.m, &ns), 0);
    kart_obj *x = I(10), *out = NULL;
    ck_assert_int_eq(kart_mns_set(ns, "x", x), 0);
    ck_assert_int_eq(kart_mns_get(ns, "x", &out), 0);
    ck_assert_int_eq(as_int(out), 10);
    kart_obj_free(out);
    expect_repr(call(ns, "__repr__", NULL, 0), "'Namespace(x=10)'");
    ck_assert_int_eq(kart_mns_del(ns, "x"), 0);
    ck_assert_int_eq(kart_mns_get(ns, "x", &out), -ENOENT);
    ck_assert_int_eq(kart_mns_del(ns, "x"), -ENOENT);
    expect_exc(call(ns, "__getattribute__", T(1, I(1), NULL), KART_EREMOTE), "TypeError");

    ck_assert_int_eq(kart_manager_value(f.m, "i", x, &v), 0);
    ck_assert_int_eq(kart_mvalue_get(v, &out), 0);
    ck_assert_int_eq(as_int(out), 10);
    kart_obj_free(out);
    kart_obj *big = NULL;
    unsigned char b[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1}; /* 2**72 */
    ck_assert_int_eq(kart_obj_bigint(b, sizeof b, &big), 0);
    ck_assert_int_eq(kart_mvalue_set(v, big), 0);
    ck_assert_int_eq(kart_mvalue_get(v, &out), 0);
    ck_assert(kart_obj_equal(out, big));
    kart_obj_free(out);
    expect_repr(call(v, "__repr__", NULL, 0), "\"Value('i', 4722366482869645213696)\"");
    expect_exc(call(v, "set", NULL, KART_EREMOTE), "TypeError");
    ck_assert_int_eq(kart_manager_value(f.m, NULL, x, &v), -EINVAL);
    /* Value() needs typecode and value */
    kart_proxy *bad = NULL;
    kart_obj *err = NULL;
    ck_assert_int_eq(kart_manager_create(f.m, "Value", NULL, NULL, &bad, &err), KART_EREMOTE);
    ck_assert_int_eq(kart_obj_type_of(err), KART_OBJ_STR);
    kart_obj_free(err);
    ck_assert_int_eq(kart_manager_create(f.m, "NoSuchType", NULL, NULL, &bad, NULL), KART_EREMOTE);
    kart_obj_free(big);
    kart_obj_free(x);
    kart_proxy_free(ns);
    kart_proxy_free(v);
    stop(&f);
}
END_TEST

/* --------------------------------------------------------------- Event */

typedef struct waiter {
    kart_proxy *p;
    int64_t timeout;
    _Atomic int result;
    _Atomic int done;
    kart_obj *item;
} waiter;

static void *event_waiter(void *arg)
{
    waiter *w = arg;
    atomic_store(&w->result, kart_mevent_wait(w->p, w->timeout));
    atomic_store(&w->done, 1);
    return NULL;
}

START_TEST(event_every_method)
{
    fixture f;
    start(&f, NULL);
    kart_proxy *e = NULL;
    ck_assert_int_eq(kart_manager_event(f.m, &e), 0);
    ck_assert_int_eq(kart_mevent_is_set(e), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_mevent_wait(e, 50 * KT_MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 45 * KT_MS);
    waiter w = {.p = e, .timeout = -1};
    pthread_t t;
    pthread_create(&t, NULL, event_waiter, &w);
    nap(100 * KT_MS);
    ck_assert_int_eq(atomic_load(&w.done), 0);
    ck_assert_int_eq(kart_mevent_set(e), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(atomic_load(&w.result), 1);
    ck_assert_int_eq(kart_mevent_is_set(e), 1);
    ck_assert_int_eq(kart_mevent_wait(e, 0), 1);
    ck_assert_int_eq(kart_mevent_clear(e), 0);
    ck_assert_int_eq(kart_mevent_is_set(e), 0);
    expect_repr(call(e, "__repr__", NULL, 0), "'<threading.Event: unset>'");
    expect_exc(call(e, "wait", T(1, S("soon"), NULL), KART_EREMOTE), "TypeError");
    kart_proxy_free(e);
    stop(&f);
}
END_TEST

/* --------------------------------------------------------- Lock, RLock */

static void *lock_taker(void *arg)
{
    waiter *w = arg;
    atomic_store(&w->result, kart_mlock_acquire(w->p, w->timeout));
    if (atomic_load(&w->result) == 0)
        kart_mlock_release(w->p);
    atomic_store(&w->done, 1);
    return NULL;
}

START_TEST(lock_and_rlock)
{
    fixture f;
    start(&f, NULL);
    kart_proxy *l = NULL, *r = NULL;
    ck_assert_int_eq(kart_manager_lock(f.m, &l), 0);
    ck_assert_int_eq(kart_mlock_release(l), -EPERM);
    ck_assert_int_eq(kart_mlock_acquire(l, -1), 0);
    ck_assert_int_eq(kart_mlock_acquire(l, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_mlock_acquire(l, 30 * KT_MS), -ETIMEDOUT);
    waiter w = {.p = l, .timeout = -1};
    pthread_t t;
    pthread_create(&t, NULL, lock_taker, &w);
    nap(80 * KT_MS);
    ck_assert_int_eq(atomic_load(&w.done), 0); /* blocked: only that client */
    ck_assert_int_eq(kart_manager_objects(f.m), 1);
    ck_assert_int_eq(kart_mlock_release(l), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(atomic_load(&w.result), 0);
    expect_repr(call(l, "__repr__", NULL, 0), "'<unlocked _thread.lock object>'");
    expect_exc(call(l, "acquire", T(2, I(0), I(1)), KART_EREMOTE), "ValueError");

    ck_assert_int_eq(kart_manager_rlock(f.m, &r), 0);
    ck_assert_int_eq(kart_mlock_acquire(r, -1), 0);
    ck_assert_int_eq(kart_mlock_acquire(r, 0), 0); /* recursive */
    /* another thread (another connection) neither gets it nor releases it */
    waiter w2 = {.p = r, .timeout = 0};
    pthread_create(&t, NULL, lock_taker, &w2);
    pthread_join(t, NULL);
    ck_assert_int_eq(atomic_load(&w2.result), -ETIMEDOUT);
    ck_assert_int_eq(kart_mlock_release(r), 0);
    ck_assert_int_eq(kart_mlock_release(r), 0);
    ck_assert_int_eq(kart_mlock_release(r), -EPERM);
    kart_proxy_free(l);
    kart_proxy_free(r);
    stop(&f);
}
END_TEST

/* --------------------------------------------------------------- Queue */

static void *queue_getter(void *arg)
{
    waiter *w = arg;
    atomic_store(&w->result, kart_mqueue_get(w->p, w->timeout, &w->item));
    atomic_store(&w->done, 1);
    return NULL;
}

START_TEST(queue_every_method)
{
    fixture f;
    start(&f, NULL);
    kart_proxy *q = NULL, *b = NULL;
    ck_assert_int_eq(kart_manager_queue(f.m, 0, &q), 0);
    kart_obj *one = I(1), *out = NULL;
    ck_assert_int_eq(kart_mqueue_get(q, 0, &out), -ETIMEDOUT);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_mqueue_get(q, 40 * KT_MS, &out), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 35 * KT_MS);
    for (int i = 0; i < 100; i++) {
        kart_obj *v = I(i);
        ck_assert_int_eq(kart_mqueue_put(q, v, -1), 0);
        kart_obj_free(v);
    }
    size_t n;
    ck_assert_int_eq(kart_mqueue_qsize(q, &n), 0);
    ck_assert_uint_eq(n, 100);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(kart_mqueue_get(q, -1, &out), 0);
        ck_assert_int_eq(as_int(out), i);
        kart_obj_free(out);
    }
    expect_repr(call(q, "empty", NULL, 0), "True");
    expect_repr(call(q, "full", NULL, 0), "False");
    /* a blocked get blocks only its client */
    waiter w = {.p = q, .timeout = -1};
    pthread_t t;
    pthread_create(&t, NULL, queue_getter, &w);
    nap(80 * KT_MS);
    ck_assert_int_eq(atomic_load(&w.done), 0);
    ck_assert_int_eq(kart_mqueue_qsize(q, &n), 0);
    ck_assert_int_eq(kart_mqueue_put(q, one, 0), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(atomic_load(&w.result), 0);
    ck_assert_int_eq(as_int(w.item), 1);
    kart_obj_free(w.item);
    /* bounded */
    ck_assert_int_eq(kart_manager_queue(f.m, 1, &b), 0);
    ck_assert_int_eq(kart_mqueue_put(b, one, 0), 0);
    ck_assert_int_eq(kart_mqueue_put(b, one, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_mqueue_put(b, one, 30 * KT_MS), -ETIMEDOUT);
    expect_repr(call(b, "full", NULL, 0), "True");
    expect_exc(call(b, "put_nowait", T(1, I(2), NULL), KART_EREMOTE), "Full");
    expect_repr(call(b, "get_nowait", NULL, 0), "1");
    expect_exc(call(b, "get_nowait", NULL, KART_EREMOTE), "Empty");
    expect_exc(call(b, "get", T(2, I(1), I(-1)), KART_EREMOTE), "ValueError");
    /* task_done / join: 2 puts so far on q, 2 gets */
    expect_repr(call(q, "task_done", NULL, 0), "None");
    expect_repr(call(q, "task_done", NULL, 0), "None"); /* ... 101 puts in all */
    for (int i = 0; i < 99; i++)
        kart_obj_free(call(q, "task_done", NULL, 0));
    expect_exc(call(q, "task_done", NULL, KART_EREMOTE), "ValueError");
    expect_repr(call(q, "join", NULL, 0), "None");
    kart_obj_free(one);
    kart_proxy_free(q);
    kart_proxy_free(b);
    stop(&f);
}
END_TEST


/* ------------------------------------ Semaphore, Condition, Barrier, Array */

START_TEST(semaphores)
{
    fixture f;
    start(&f, NULL);
    kart_proxy *s = NULL, *b = NULL;
    ck_assert_int_eq(kart_manager_semaphore(f.m, 2, false, &s), 0);
    ck_assert_int_eq(kart_mlock_acquire(s, 0), 0);
    ck_assert_int_eq(kart_mlock_acquire(s, -1), 0);
    ck_assert_int_eq(kart_mlock_acquire(s, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_mlock_acquire(s, 30 * KT_MS), -ETIMEDOUT);
    waiter w = {.p = s, .timeout = -1};
    pthread_t t;
    pthread_create(&t, NULL, lock_taker, &w); /* acquires, then releases */
    nap(50 * KT_MS);
    ck_assert_int_eq(atomic_load(&w.done), 0);
    ck_assert_int_eq(kart_mlock_release(s), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(atomic_load(&w.result), 0);
    expect_repr(call(s, "release", T(1, I(3), NULL), 0), "None"); /* unbounded */
    expect_exc(call(s, "release", T(1, I(0), NULL), KART_EREMOTE), "ValueError");
    expect_exc(call(s, "acquire", T(2, I(0), I(1)), KART_EREMOTE), "ValueError");
    expect_repr(call(s, "__repr__", NULL, 0), "'<threading.Semaphore: value=4/2>'");
    ck_assert_int_eq(kart_manager_semaphore(f.m, 1, true, &b), 0);
    ck_assert_int_eq(kart_mlock_release(b), KART_EREMOTE); /* released too many times */
    ck_assert_int_eq(kart_mlock_acquire(b, 0), 0);
    ck_assert_int_eq(kart_mlock_release(b), 0);
    kart_proxy *bad = NULL;
    kart_obj *neg = T(1, I(-1), NULL), *err = NULL;
    ck_assert_int_eq(kart_manager_create(f.m, "Semaphore", neg, NULL, &bad, &err), KART_EREMOTE);
    kart_obj_free(err);
    kart_obj_free(neg);
    ck_assert_int_eq(kart_manager_semaphore(f.m, SIZE_MAX, false, &bad), -EINVAL);
    kart_proxy_free(s);
    kart_proxy_free(b);
    stop(&f);
}
END_TEST

typedef struct cond_arg {
    kart_proxy *c;
    kart_proxy *d;
    _Atomic int woke;
} cond_arg;

static void *cond_waiter_thread(void *arg)
{
    cond_arg *a = arg;
    if (kart_mlock_acquire(a->c, -1) == 0) {
        if (kart_mcond_wait(a->c, 5000 * KT_MS) == 0)
            atomic_fetch_add(&a->woke, 1);
        kart_mlock_release(a->c);
    }
    return NULL;
}

START_TEST(condition_wait_notify)
{
    fixture f;
    start(&f, NULL);
    cond_arg a = {0};
    ck_assert_int_eq(kart_manager_condition(f.m, &a.c), 0);
    ck_assert_int_eq(kart_mcond_wait(a.c, 0), -EPERM);
    ck_assert_int_eq(kart_mcond_notify(a.c, 1), -EPERM);
    ck_assert_int_eq(kart_mlock_release(a.c), -EPERM);
    ck_assert_int_eq(kart_mlock_acquire(a.c, -1), 0);
    ck_assert_int_eq(kart_mlock_acquire(a.c, -1), 0); /* an RLock */
    ck_assert_int_eq(kart_mcond_wait(a.c, 20 * KT_MS), -ETIMEDOUT);
    ck_assert_int_eq(kart_mlock_release(a.c), 0);
    ck_assert_int_eq(kart_mlock_release(a.c), 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, cond_waiter_thread, &a);
    nap(150 * KT_MS);
    ck_assert_int_eq(kart_mlock_acquire(a.c, -1), 0);
    ck_assert_int_eq(kart_mcond_notify(a.c, 1), 0);
    ck_assert_int_eq(kart_mlock_release(a.c), 0);
    nap(100 * KT_MS);
    ck_assert_int_eq(atomic_load(&a.woke), 1);
    ck_assert_int_eq(kart_mlock_acquire(a.c, -1), 0);
    ck_assert_int_eq(kart_mcond_notify_all(a.c), 0);
    ck_assert_int_eq(kart_mlock_release(a.c), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&a.woke), 3);
    kart_obj *lockarg = T(1, I(1), NULL), *err = NULL;
    kart_proxy *bad = NULL;
    ck_assert_int_eq(kart_manager_create(f.m, "Condition", lockarg, NULL, &bad, &err),
                     KART_EREMOTE);
    kart_obj_free(err);
    kart_obj_free(lockarg);
    kart_proxy_free(a.c);
    stop(&f);
}
END_TEST

typedef struct barrier_arg {
    kart_proxy *b;
    int64_t timeout;
    _Atomic int result;
} barrier_arg;

static void *barrier_thread(void *arg)
{
    barrier_arg *a = arg;
    atomic_store(&a->result, kart_mbarrier_wait(a->b, a->timeout));
    return NULL;
}

START_TEST(barrier_every_method)
{
    fixture f;
    start(&f, NULL);
    kart_proxy *b = NULL;
    ck_assert_int_eq(kart_manager_barrier(f.m, 3, &b), 0);
    ck_assert_int_eq(kart_manager_barrier(f.m, 0, &b), -EINVAL);
    expect_repr(call(b, "__getattribute__", T(1, S("parties"), NULL), 0), "3");
    barrier_arg args[2] = {{.b = b, .timeout = -1}, {.b = b, .timeout = -1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, barrier_thread, &args[i]);
    /* Both threads in the wait: polled, since on a loaded machine (or
     * under a sanitizer) they may take far longer than a nap to get there;
     * the count never goes past 2 while this thread stays out. */
    char n_waiting[512] = "";
    for (int64_t end = kart_now_ns() + 20000 * KT_MS; kart_now_ns() < end; nap(10 * KT_MS)) {
        kart_obj *o = call(b, "__getattribute__", T(1, S("n_waiting"), NULL), 0);
        ck_assert_int_ge(kart_obj_repr(o, n_waiting, sizeof n_waiting, NULL), 0);
        kart_obj_free(o);
        if (strcmp(n_waiting, "2") == 0)
            break;
    }
    ck_assert_str_eq(n_waiting, "2");
    int me = kart_mbarrier_wait(b, -1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int seen =
        (1 << me) | (1 << atomic_load(&args[0].result)) | (1 << atomic_load(&args[1].result));
    ck_assert_int_eq(seen, 7); /* indices 0, 1, 2 */
    /* a timeout breaks it for everyone */
    ck_assert_int_eq(kart_mbarrier_wait(b, 30 * KT_MS), KART_EBROKEN);
    expect_repr(call(b, "__getattribute__", T(1, S("broken"), NULL), 0), "True");
    ck_assert_int_eq(kart_mbarrier_wait(b, -1), KART_EBROKEN);
    ck_assert_int_eq(kart_mbarrier_reset(b), 0);
    expect_repr(call(b, "__getattribute__", T(1, S("broken"), NULL), 0), "False");
    pthread_create(&t[0], NULL, barrier_thread, &args[0]);
    nap(50 * KT_MS);
    ck_assert_int_eq(kart_mbarrier_abort(b), 0);
    pthread_join(t[0], NULL);
    ck_assert_int_eq(atomic_load(&args[0].result), KART_EBROKEN);
    expect_exc(call(b, "__getattribute__", T(1, S("_cond"), NULL), KART_EREMOTE), "AttributeError");
    kart_proxy_free(b);
    stop(&f);
}
END_TEST

START_TEST(array_every_method)
{
    fixture f;
    start(&f, NULL);
    kart_obj *items = NULL;
    ck_assert_int_eq(kart_obj_list(&items), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_obj_append(items, I(i * 100)), 0);
    kart_proxy *a = NULL, *bad = NULL;
    ck_assert_int_eq(kart_manager_array(f.m, "h", items, &a), 0);
    expect_repr(call(a, "__len__", NULL, 0), "3");
    expect_repr(call(a, "__getitem__", T(1, I(-1), NULL), 0), "200");
    expect_repr(call(a, "__setitem__", T(2, I(0), I(-5)), 0), "None");
    expect_repr(call(a, "__getitem__", T(1, I(0), NULL), 0), "-5");
    expect_exc(call(a, "__setitem__", T(2, I(0), I(40000)), KART_EREMOTE), "OverflowError");
    expect_exc(call(a, "__setitem__", T(2, I(0), S("x")), KART_EREMOTE), "TypeError");
    expect_exc(call(a, "__getitem__", T(1, I(3), NULL), KART_EREMOTE), "IndexError");
    expect_repr(call(a, "__repr__", NULL, 0), "\"array('h', [-5, 100, 200])\"");
    ck_assert_int_eq(kart_manager_array(f.m, "z", items, &bad), KART_EREMOTE);
    ck_assert_int_eq(kart_manager_array(f.m, "B", items, &bad), 0); /* 0, 100, 200 fit */
    kart_proxy_free(bad);
    ck_assert_int_eq(kart_obj_append(items, I(300)), 0);
    ck_assert_int_eq(kart_manager_array(f.m, "B", items, &bad), KART_EREMOTE);
    kart_obj *dl = NULL;
    ck_assert_int_eq(kart_obj_list(&dl), 0);
    ck_assert_int_eq(kart_obj_append(dl, I(1)), 0);
    kart_proxy *d = NULL;
    ck_assert_int_eq(kart_manager_array(f.m, "d", dl, &d), 0);
    expect_repr(call(d, "__getitem__", T(1, I(0), NULL), 0), "1.0");
    ck_assert_int_eq(kart_manager_array(f.m, NULL, dl, &d), -EINVAL);
    kart_obj_free(dl);
    kart_obj_free(items);
    kart_proxy_free(a);
    kart_proxy_free(d);
    stop(&f);
}
END_TEST

/* ------------------------------------------------- many clients at once */

#define NTHREADS 8
#define NINCR 50

typedef struct incr_arg {
    kart_manager *m;
    kart_proxy *lock, *d;
    _Atomic int fails;
} incr_arg;

static void increment(kart_proxy *lock, kart_proxy *d, _Atomic int *fails)
{
    kart_obj *k = NULL, *v = NULL, *nv = NULL;
    kart_obj_strz("n", &k);
    for (int i = 0; i < NINCR; i++) {
        int64_t x = 0;
        if (kart_mlock_acquire(lock, -1) != 0 || kart_mdict_get(d, k, &v) != 0 ||
            kart_obj_get_int(v, &x) != 0 || kart_obj_int(x + 1, &nv) != 0 ||
            kart_mdict_set(d, k, nv) != 0 || kart_mlock_release(lock) != 0)
            atomic_fetch_add(fails, 1);
        kart_obj_free(v);
        kart_obj_free(nv);
        v = nv = NULL;
    }
    kart_obj_free(k);
}

static void *incr_thread(void *arg)
{
    incr_arg *a = arg;
    increment(a->lock, a->d, &a->fails);
    return NULL;
}

START_TEST(many_threads_and_processes)
{
    fixture f;
    start_forked(&f);
    incr_arg a = {.m = f.m};
    ck_assert_int_eq(kart_manager_lock(f.m, &a.lock), 0);
    ck_assert_int_eq(kart_manager_dict(f.m, &a.d), 0);
    kart_obj *k = S("n"), *z = I(0), *out = NULL;
    ck_assert_int_eq(kart_mdict_set(a.d, k, z), 0);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = kt_fork();
        if (kids[i] == 0) {
            _Atomic int fails = 0;
            increment(a.lock, a.d, &fails);
            kart_proxy_free(a.lock);
            kart_proxy_free(a.d);
            _exit(atomic_load(&fails) ? 1 : 0);
        }
    }
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, incr_thread, &a);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        int st;
        kt_wait_child(kids[i], &st);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    ck_assert_int_eq(atomic_load(&a.fails), 0);
    ck_assert_int_eq(kart_mdict_get(a.d, k, &out), 0);
    ck_assert_int_eq(as_int(out), (NTHREADS + 4) * NINCR);
    kart_obj_free(out);
    /* the children's references went with them */
    ck_assert_int_eq(kart_manager_objects(f.m), 2);
    kart_obj_free(k);
    kart_obj_free(z);
    kart_proxy_free(a.lock);
    kart_proxy_free(a.d);
    ck_assert_int_eq(kart_manager_objects(f.m), 0);
    stop_forked(&f);
}
END_TEST

/* ------------------------------------------------- references, clients */

START_TEST(references_and_disconnects)
{
    fixture f;
    start(&f, NULL);
    kart_proxy *d = NULL, *d2 = NULL, *d3 = NULL, *l = NULL;
    ck_assert_int_eq(kart_manager_dict(f.m, &d), 0);
    ck_assert_int_eq(kart_proxy_dup(d, &d2), 0);
    kart_proxy_free(d);
    ck_assert_int_eq(kart_manager_objects(f.m), 1); /* d2 keeps it */
    ck_assert_int_eq(kart_manager_attach(f.m, "dict", kart_proxy_ident(d2), &d3), 0);
    kart_proxy_free(d2);
    size_t n;
    ck_assert_int_eq(kart_mdict_len(d3, &n), 0);
    kart_proxy_free(d3);
    ck_assert_int_eq(kart_manager_objects(f.m), 0);
    ck_assert_int_eq(kart_manager_attach(f.m, "dict", "deadbeef", &d), KART_EREMOTE);
    ck_assert_int_eq(kart_manager_attach(f.m, "dict", NULL, &d), -EINVAL);

    /* a second client that goes away without freeing its proxies: its
     * references and the lock it held are released */
    kart_manager *m2 = NULL;
    kart_manager_options o = key_opts();
    ck_assert_int_eq(kart_manager_connect(&m2, f.addr, &o), 0);
    ck_assert_int_eq(kart_manager_lock(f.m, &l), 0);
    kart_proxy *l2 = NULL, *gone = NULL;
    ck_assert_int_eq(kart_manager_attach(m2, "Lock", kart_proxy_ident(l), &l2), 0);
    ck_assert_int_eq(kart_manager_dict(m2, &gone), 0);
    ck_assert_int_eq(kart_mlock_acquire(l2, -1), 0);
    ck_assert_int_eq(kart_mlock_acquire(l, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_manager_objects(f.m), 2);
    free(l2); /* the proxy structs leak on purpose: a crashed client */
    free(gone);
    kart_manager_free(m2);
    /* acquired, and told that the holder went away */
    ck_assert_int_eq(kart_mlock_acquire(l, 2000 * KT_MS), -EOWNERDEAD);
    ck_assert_int_eq(kart_mlock_release(l), 0);
    ck_assert_int_eq(kart_mlock_acquire(l, 0), 0); /* told once */
    ck_assert_int_eq(kart_mlock_release(l), 0);
    int objs = -1;
    for (int i = 0; i < 100 && (objs = kart_manager_objects(f.m)) != 1; i++)
        nap(10 * KT_MS);
    ck_assert_int_eq(objs, 1);
    kart_proxy_free(l);
    stop(&f);
}
END_TEST

/* A SIGKILLed client that held a Lock, an RLock (twice) or a Condition:
 * the next acquirer gets it and is told (-EOWNERDEAD), once; a kart_obj
 * "acquire" call by name sees the marker, a Python client sees True. */
static void killed_holder(fixture *f, const char *typeid, int depth)
{
    kart_proxy *l = NULL;
    ck_assert_int_eq(kart_manager_create(f->m, typeid, NULL, NULL, &l, NULL), 0);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t kid = kt_fork();
    if (kid == 0) {
        close(p[0]);
        int r = 0;
        for (int i = 0; i < depth && r == 0; i++)
            r = kart_mlock_acquire(l, -1);
        if (write(p[1], &r, sizeof r) < 0)
            _exit(2);
        pause();
        _exit(0);
    }
    close(p[1]);
    int r = -1;
    ck_assert_int_eq(read(p[0], &r, sizeof r), (ssize_t)sizeof r);
    ck_assert_int_eq(r, 0);
    close(p[0]);
    ck_assert_int_eq(kart_mlock_acquire(l, 0), -ETIMEDOUT);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    ck_assert_int_eq(kart_mlock_acquire(l, 2000 * KT_MS), -EOWNERDEAD);
    ck_assert_int_eq(kart_mlock_release(l), 0);
    ck_assert_int_eq(kart_mlock_acquire(l, 0), 0); /* told once */
    ck_assert_int_eq(kart_mlock_release(l), 0);
    ck_assert_int_eq(kart_mlock_release(l), -EPERM); /* not held any more */
    kart_proxy_free(l);
}

START_TEST(a_killed_client_releases_its_lock)
{
    fixture f;
    start_forked(&f);
    killed_holder(&f, "Lock", 1);
    killed_holder(&f, "RLock", 2);
    killed_holder(&f, "Condition", 3);
    stop_forked(&f);
}
END_TEST

/* A Condition waiter whose notifier is SIGKILLed while holding the lock:
 * the waiter takes the lock back and is told (-EOWNERDEAD), once; it holds
 * the lock as before its wait. */
START_TEST(a_condition_waiter_is_told_of_a_killed_holder)
{
    fixture f;
    start_forked(&f);
    kart_proxy *c = NULL;
    ck_assert_int_eq(kart_manager_condition(f.m, &c), 0);
    ck_assert_int_eq(kart_mlock_acquire(c, -1), 0);
    pid_t kid = kt_fork();
    if (kid == 0) {
        /* acquires once our wait has let the lock go, then dies holding it */
        if (kart_mlock_acquire(c, -1) == 0 && kart_mcond_notify(c, 1) == 0)
            kill(getpid(), SIGKILL);
        _exit(3);
    }
    ck_assert_int_eq(kart_mcond_wait(c, 5000 * KT_MS), -EOWNERDEAD);
    int st = 0;
    kt_wait_child(kid, &st);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    ck_assert_int_eq(kart_mcond_notify_all(c), 0); /* held again */
    ck_assert_int_eq(kart_mlock_release(c), 0);
    ck_assert_int_eq(kart_mlock_release(c), -EPERM);
    ck_assert_int_eq(kart_mlock_acquire(c, 0), 0); /* told once */
    ck_assert_int_eq(kart_mcond_wait(c, 10 * KT_MS), -ETIMEDOUT);
    ck_assert_int_eq(kart_mlock_release(c), 0);
    kart_proxy_free(c);
    stop_forked(&f);
}
END_TEST

/* ------------------------------------------------------------ bad input */

static kart_conn *raw_client(const char *addr, const char *first)
{
    kart_auth auth = {.authkey = KEY, .authkey_len = strlen(KEY)};
    kart_conn *c = NULL;
    ck_assert_int_eq(kart_conn_connect(&c, addr, &auth), 0);
    return c;
}

/* The reply to one raw frame: its kind ('#RETURN', '#TRACEBACK', ...). */
static void expect_reply_kind(kart_conn *c, const char *kind)
{
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(kart_conn_recv_bytes(c, &buf, &len, 1 << 20), 0);
    kart_obj_unpickle_options o = {.managers = true};
    kart_obj *r = NULL;
    ck_assert_int_eq(kart_obj_unpickle(buf, len, &o, &r, NULL), 0);
    free(buf);
    const kart_obj *k = NULL;
    ck_assert_int_eq(kart_obj_item(r, 0, &k), 0);
    const char *s = NULL;
    ck_assert_int_eq(kart_obj_get_str(k, &s, NULL), 0);
    ck_assert_str_eq(s, kind);
    kart_obj_free(r);
}

static void send_obj(kart_conn *c, kart_obj *o)
{
    void *buf;
    size_t len;
    ck_assert_int_eq(kart_obj_pickle(o, 4, &buf, &len), 0);
    ck_assert_int_eq(kart_conn_send_bytes(c, buf, len), 0);
    free(buf);
    kart_obj_free(o);
}

static kart_obj *request(const char *ident, const char *method, kart_obj *args)
{
    kart_obj *kw = NULL, *id = NULL, *items[4];
    ck_assert_int_eq(kart_obj_dict(&kw), 0);
    if (ident)
        id = S(ident);
    else
        ck_assert_int_eq(kart_obj_none(&id), 0);
    if (!args)
        ck_assert_int_eq(kart_obj_tuple(NULL, 0, &args), 0);
    items[0] = id;
    items[1] = S(method);
    items[2] = args;
    items[3] = kw;
    kart_obj *t = NULL;
    ck_assert_int_eq(kart_obj_tuple(items, 4, &t), 0);
    return t;
}

static _Atomic int dropped_logged;

static void log_watch(const kart_log_record *r, void *arg)
{
    if (strcmp(r->module, "manager") == 0 && strstr(r->message, "dropped"))
        atomic_fetch_add(&dropped_logged, 1);
}

/* A client that is not kart's (no kart=True, as python3's): after the
 * holder of a Lock was SIGKILLed, its acquire returns True, as Python's;
 * it took the news, so the next kart acquirer is not told. */
START_TEST(a_python_client_is_not_told)
{
    fixture f;
    start_forked(&f);
    kart_proxy *l = NULL;
    ck_assert_int_eq(kart_manager_lock(f.m, &l), 0);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t kid = kt_fork();
    if (kid == 0) {
        close(p[0]);
        int r = kart_mlock_acquire(l, -1);
        if (write(p[1], &r, sizeof r) < 0)
            _exit(2);
        pause();
        _exit(0);
    }
    close(p[1]);
    int r = -1;
    ck_assert_int_eq(read(p[0], &r, sizeof r), (ssize_t)sizeof r);
    ck_assert_int_eq(r, 0);
    close(p[0]);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    kart_conn *c = raw_client(f.addr, NULL);
    send_obj(c, request(NULL, "accept_connection", T(1, S("MainProcess"), NULL)));
    expect_reply_kind(c, "#RETURN");
    kart_obj *yes = NULL;
    ck_assert_int_eq(kart_obj_bool(true, &yes), 0);
    send_obj(c, request(kart_proxy_ident(l), "acquire", T(1, yes, NULL)));
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(kart_conn_recv_bytes(c, &buf, &len, 1 << 20), 0);
    kart_obj_unpickle_options o = {.managers = true};
    kart_obj *reply = NULL;
    ck_assert_int_eq(kart_obj_unpickle(buf, len, &o, &reply, NULL), 0);
    free(buf);
    expect_repr(reply, "('#RETURN', True)");
    send_obj(c, request(kart_proxy_ident(l), "release", NULL));
    expect_reply_kind(c, "#RETURN");
    kart_conn_close(c);
    ck_assert_int_eq(kart_mlock_acquire(l, 2000 * KT_MS), 0);
    ck_assert_int_eq(kart_mlock_release(l), 0);
    kart_proxy_free(l);
    stop_forked(&f);
}
END_TEST

START_TEST(bad_input_hurts_only_its_client)
{
    fixture f;
    start(&f, NULL);
    kart_proxy *d = NULL;
    ck_assert_int_eq(kart_manager_dict(f.m, &d), 0);
    kart_obj *k = S("k"), *out = NULL;
    ck_assert_int_eq(kart_mdict_set(d, k, k), 0);

    /* garbage as the first request: a traceback, then the end */
    kart_conn *c = raw_client(f.addr, NULL);
    ck_assert_int_eq(kart_conn_send_bytes(c, "\x80\x04garbage", 9), 0);
    expect_reply_kind(c, "#TRACEBACK");
    kart_conn_close(c);
    /* an unknown public function */
    c = raw_client(f.addr, NULL);
    send_obj(c, request(NULL, "os_system", NULL));
    expect_reply_kind(c, "#TRACEBACK");
    kart_conn_close(c);
    /* a forbidden class (os.system + REDUCE) */
    c = raw_client(f.addr, NULL);
    static const char evil[] = "\x80\x02\x63os\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85R.";
    ck_assert_int_eq(kart_conn_send_bytes(c, evil, sizeof evil - 1), 0);
    expect_reply_kind(c, "#TRACEBACK");
    kart_conn_close(c);

    /* a serving connection: wrong shapes, unknown ids and methods get
     * tracebacks and the connection goes on */
    c = raw_client(f.addr, NULL);
    send_obj(c, request(NULL, "accept_connection", T(1, S("raw"), NULL)));
    expect_reply_kind(c, "#RETURN");
    send_obj(c, T(2, I(1), I(2)));
    expect_reply_kind(c, "#TRACEBACK");
    send_obj(c, request("nope", "get", NULL));
    expect_reply_kind(c, "#TRACEBACK");
    send_obj(c, request(kart_proxy_ident(d), "no_such_method", NULL));
    expect_reply_kind(c, "#TRACEBACK");
    send_obj(c, request(kart_proxy_ident(d), "__len__", NULL));
    expect_reply_kind(c, "#RETURN");
    /* a list nested 10,000 deep */
    size_t deep = 10000;
    char *nest = malloc(2 * deep + 8);
    size_t p = 0;
    nest[p++] = (char)0x80;
    nest[p++] = 4;
    for (size_t i = 0; i < deep; i++)
        nest[p++] = ']'; /* EMPTY_LIST */
    for (size_t i = 0; i < deep - 1; i++)
        nest[p++] = 'a'; /* APPEND */
    nest[p++] = '.';
    ck_assert_int_eq(kart_conn_send_bytes(c, nest, p), 0);
    free(nest);
    expect_reply_kind(c, "#TRACEBACK");
    /* half a frame, then nothing more: the server waits on that client
     * alone; the others go on */
    const unsigned char half[] = {0, 0, 0, 100, 0x80, 4};
    ck_assert_int_eq(write(kart_conn_fileno(c), half, sizeof half), (ssize_t)sizeof half);
    ck_assert_int_eq(kart_mdict_get(d, k, &out), 0);
    kart_obj_free(out);
    kart_conn_close(c);

    /* a 2 GiB length: the connection is dropped (and logged), nothing
     * allocated */
    ck_assert_int_eq(kart_log_set_handler(log_watch, NULL, KART_LOG_DEBUG, NULL, NULL), 0);
    c = raw_client(f.addr, NULL);
    send_obj(c, request(NULL, "accept_connection", T(1, S("raw2"), NULL)));
    expect_reply_kind(c, "#RETURN");
    const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0};
    ck_assert_int_eq(write(kart_conn_fileno(c), huge, sizeof huge), (ssize_t)sizeof huge);
    void *buf = NULL;
    size_t len = 0;
    int r = kart_conn_recv_bytes(c, &buf, &len, 1 << 20);
    ck_assert(r == KART_EEOF || r == -ECONNRESET);
    kart_conn_close(c);
    for (int i = 0; i < 100 && atomic_load(&dropped_logged) == 0; i++)
        nap(10 * KT_MS);
    ck_assert_int_ge(atomic_load(&dropped_logged), 1);
    kart_log_set_handler(NULL, NULL, KART_LOG_WARNING, NULL, NULL);

    /* a wrong key is refused */
    kart_manager *m2 = NULL;
    kart_manager_options o = {.authkey = "wrong", .authkey_len = 5};
    ck_assert_int_eq(kart_manager_connect(&m2, f.addr, &o), KART_EAUTH);
    ck_assert_int_eq(kart_manager_connect(&m2, NULL, &o), -EINVAL);
    o.authkey_len = 0;
    ck_assert_int_eq(kart_manager_connect(&m2, f.addr, &o), -EINVAL);

    /* and the first client is unaffected */
    ck_assert_int_eq(kart_mdict_get(d, k, &out), 0);
    ck_assert(kart_obj_equal(out, k));
    kart_obj_free(out);
    kart_obj_free(k);
    kart_proxy_free(d);
    stop(&f);
}
END_TEST


/* Python's public functions, each on its own connection as Python sends
 * them. */
static kart_obj *public_call(const char *addr, kart_obj *req, const char *kind)
{
    kart_conn *c = raw_client(addr, NULL);
    send_obj(c, req);
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(kart_conn_recv_bytes(c, &buf, &len, 1 << 20), 0);
    kart_conn_close(c);
    kart_obj_unpickle_options o = {.managers = true};
    kart_obj *r = NULL, *v = NULL;
    ck_assert_int_eq(kart_obj_unpickle(buf, len, &o, &r, NULL), 0);
    free(buf);
    const kart_obj *k = NULL;
    const char *ks = NULL;
    ck_assert_int_eq(kart_obj_item(r, 0, &k), 0);
    ck_assert_int_eq(kart_obj_get_str(k, &ks, NULL), 0);
    ck_assert_str_eq(ks, kind);
    ck_assert_int_eq(kart_obj_remove(r, 1, &v), 0);
    kart_obj_free(r);
    return v;
}

/* The server is told to stop once its reply to 'shutdown' is out (as in
 * Python), so the client may read the reply a moment before that. */
static int stops_soon(kart_manager_server *srv)
{
    for (int i = 0; i < 200 && !kart_manager_server_stopped(srv); i++)
        nap(5 * KT_MS);
    return kart_manager_server_stopped(srv);
}

START_TEST(public_functions)
{
    fixture f;
    start(&f, NULL);
    expect_repr(public_call(f.addr, request(NULL, "dummy", NULL), "#RETURN"), "None");
    expect_repr(public_call(f.addr, request(NULL, "number_of_objects", NULL), "#RETURN"), "0");
    kart_obj *r = public_call(f.addr, request(NULL, "create", T(1, S("dict"), NULL)), "#RETURN");
    const kart_obj *id = NULL;
    ck_assert_int_eq(kart_obj_item(r, 0, &id), 0);
    const char *ident = NULL;
    ck_assert_int_eq(kart_obj_get_str(id, &ident, NULL), 0);
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%s", ident);
    const kart_obj *ex = NULL;
    ck_assert_int_eq(kart_obj_item(r, 1, &ex), 0);
    ck_assert_int_eq(kart_obj_type_of(ex), KART_OBJ_TUPLE);
    kart_obj_free(r);
    ck_assert_int_eq(kart_manager_server_objects(f.srv), 1);
    /* get_methods(Token) */
    kart_obj *st = NULL, *tok = NULL;
    kart_obj *items[3] = {S("dict"), S(f.addr), S(idbuf)};
    ck_assert_int_eq(kart_obj_tuple(items, 3, &st), 0);
    ck_assert_int_eq(kart_obj_instance("multiprocessing.managers", "Token", st, &tok), 0);
    r = public_call(f.addr, request(NULL, "get_methods", T(1, tok, NULL)), "#RETURN");
    size_t n = 0;
    ck_assert_int_eq(kart_obj_len(r, &n), 0);
    ck_assert_uint_eq(n, 16);
    kart_obj_free(r);
    r = public_call(f.addr, request(NULL, "debug_info", NULL), "#RETURN");
    const char *text = NULL;
    ck_assert_int_eq(kart_obj_get_str(r, &text, NULL), 0);
    ck_assert_ptr_nonnull(strstr(text, idbuf));
    kart_obj_free(r);
    expect_repr(public_call(f.addr, request(NULL, "incref", T(1, S(idbuf), NULL)), "#RETURN"),
                "None");
    expect_repr(public_call(f.addr, request(NULL, "decref", T(1, S(idbuf), NULL)), "#RETURN"),
                "None");
    ck_assert_int_eq(kart_manager_server_objects(f.srv), 1);
    expect_repr(public_call(f.addr, request(NULL, "decref", T(1, S(idbuf), NULL)), "#RETURN"),
                "None");
    ck_assert_int_eq(kart_manager_server_objects(f.srv), 0);
    kart_obj_free(public_call(f.addr, request(NULL, "decref", T(1, S(idbuf), NULL)), "#TRACEBACK"));
    kart_obj_free(public_call(f.addr, request(NULL, "incref", T(1, I(1), NULL)), "#TRACEBACK"));
    kart_obj_free(
        public_call(f.addr, request(NULL, "create", T(1, S("Pool"), NULL)), "#TRACEBACK"));
    kart_obj_free(public_call(f.addr, request(NULL, "create", NULL), "#TRACEBACK"));
    kart_obj_free(public_call(f.addr, request(NULL, "get_methods", NULL), "#TRACEBACK"));
    kart_obj_free(public_call(f.addr, request("x", "dummy", NULL), "#TRACEBACK"));
    expect_repr(public_call(f.addr, request(NULL, "shutdown", NULL), "#RETURN"), "None");
    ck_assert_int_eq(stops_soon(f.srv), 1);
    stop(&f);
}
END_TEST

/* ------------------------------------------------- server lifecycles */


START_TEST(server_shutdown_and_errors)
{
    kart_manager_server *s = NULL;
    ck_assert_int_eq(kart_manager_server_create(NULL, "@x", NULL), -EINVAL);
    ck_assert_int_eq(kart_manager_server_create(&s, NULL, NULL), -EINVAL);
    kart_manager_options bad = {.pickle_protocol = 9};
    ck_assert_int_eq(kart_manager_server_create(&s, "@x", &bad), -EINVAL);
    ck_assert_int_eq(kart_manager_server_create(&s, "/no/such/dir/sock", NULL), -ENOENT);
    ck_assert_int_eq(kart_manager_server_serve(NULL), -EINVAL);
    ck_assert_int_eq(kart_manager_server_shutdown(NULL), -EINVAL);
    kart_manager_server_free(NULL);
    kart_manager_free(NULL);
    kart_proxy_free(NULL);

    /* a blocked client is released by the owner's shutdown */
    fixture f;
    start(&f, "127.0.0.1:0");
    ck_assert_int_eq(kart_manager_server_start(f.srv), -EALREADY);
    kart_proxy *q = NULL;
    ck_assert_int_eq(kart_manager_queue(f.m, 0, &q), 0);
    waiter w = {.p = q, .timeout = -1};
    pthread_t t;
    pthread_create(&t, NULL, queue_getter, &w);
    nap(50 * KT_MS);
    ck_assert_int_eq(kart_manager_server_shutdown(f.srv), 0);
    pthread_join(t, NULL);
    ck_assert_int_lt(atomic_load(&w.result), 0);
    ck_assert_int_eq(kart_manager_server_stopped(f.srv), 1);
    kart_proxy_free(q);
    stop(&f);

    /* a client with the key shuts it down */
    start(&f, NULL);
    ck_assert_int_eq(kart_manager_shutdown(f.m), 0);
    ck_assert_int_eq(stops_soon(f.srv), 1);
    stop(&f);
}
END_TEST

START_TEST(forked_server)
{
    char addr[128];
    pid_t pid;
    kart_manager_options o = key_opts();
    ck_assert_int_eq(kart_manager_fork(NULL, &o, addr, sizeof addr, &pid), 0);
    ck_assert_int_eq(kart_manager_fork(NULL, &o, addr, 4, &pid), -ENOSPC);
    ck_assert_int_eq(kart_manager_fork("/no/such/dir/s", &o, addr, sizeof addr, &pid), -ENOENT);
    ck_assert_int_eq(kart_manager_fork(NULL, &o, NULL, 1, &pid), -EINVAL);
    kart_manager *m = NULL;
    ck_assert_int_eq(kart_manager_connect(&m, addr, &o), 0);
    kart_proxy *v = NULL;
    kart_obj *x = I(42), *out = NULL;
    ck_assert_int_eq(kart_manager_value(m, "i", x, &v), 0);
    ck_assert_int_eq(kart_mvalue_get(v, &out), 0);
    ck_assert(kart_obj_equal(out, x));
    kart_obj_free(out);
    kart_obj_free(x);
    kart_proxy_free(v);
    ck_assert_int_eq(kart_manager_shutdown(m), 0);
    kart_manager_free(m);
    int st;
    kt_wait_child(pid, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

/* ------------------------------------------------------ python interop */

static int run_python_script(const char *script, const char *addr, char *out, size_t cap)
{
    char hex[64] = "";
    for (size_t i = 0; i < strlen(KEY); i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)KEY[i]);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t kid = kt_fork();
    if (kid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        execlp("python3", "python3", script, addr, hex, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t k;
    while (n < cap - 1 && (k = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = 0;
    close(p[0]);
    int st;
    waitpid(kid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int run_python(const char *addr, char *out, size_t cap)
{
    return run_python_script("tests/py/manager_peer.py", addr, out, cap);
}

static void python_against(const char *address)
{
    fixture f;
    start(&f, address);
    char out[8192];
    int rc = run_python(f.addr, out, sizeof out);
    ck_assert_msg(rc == 0 && strstr(out, "ALL OK"), "python3 exit %d:\n%s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "refused instance: RemoteError"));
    /* what Python left (its proxies' finalizers decref on exit) */
    int objs = -1;
    for (int i = 0; i < 100 && (objs = kart_manager_objects(f.m)) != 0; i++)
        nap(10 * KT_MS);
    ck_assert_int_eq(objs, 0);
    stop(&f);
}

START_TEST(python_syncmanager_client_tcp)
{
    python_against("127.0.0.1:0");
}
END_TEST

START_TEST(python_syncmanager_client_unix)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/kart-mgr-py-%d.sock", (int)getpid());
    unlink(path);
    python_against(path);
}
END_TEST


/* python3's own SyncManager server (tests/py/manager_server.py): starts it,
 * reads its address; *pid gets its pid. */
static void python_server(const char *address, const char *extra, char *addr, size_t cap,
                          pid_t *pid)
{
    char hex[64] = "";
    for (size_t i = 0; i < strlen(KEY); i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)KEY[i]);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t kid = kt_fork();
    if (kid == 0) {
        dup2(p[1], 1);
        execlp("python3", "python3", "tests/py/manager_server.py", address, hex, extra,
               (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[300];
    size_t n = 0;
    while (n < sizeof line - 1 && read(p[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = 0;
    close(p[0]);
    ck_assert_msg(strncmp(line, "listening on ", 13) == 0, "python said '%s'", line);
    snprintf(addr, cap, "%s", line + 13);
    *pid = kid;
}

static void python_server_stop(kart_manager *m, pid_t kid)
{
    ck_assert_int_eq(kart_manager_shutdown(m), 0);
    kart_manager_free(m);
    int st;
    kt_wait_child(kid, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* objects on a Python server settle once its decrefs are in */
static int objects_settled(kart_manager *m, int want)
{
    int objs = -1;
    for (int i = 0; i < 100 && (objs = kart_manager_objects(m)) != want; i++)
        nap(10 * KT_MS);
    return objs;
}

/* A kart client against python3's SyncManager server: dict, list and
 * Queue (and dict.__iter__'s Iterator proxy), references by Python's
 * incref/decref scheme. */
static void kart_against_python(const char *address)
{
    char addr[300];
    pid_t kid;
    python_server(address, NULL, addr, sizeof addr, &kid);
    kart_manager *m = NULL;
    kart_manager_options o = key_opts();
    ck_assert_int_eq(kart_manager_connect(&m, addr, &o), 0);
    kart_manager_options bad = {.authkey = "wrong", .authkey_len = 5};
    kart_manager *mb = NULL;
    ck_assert_int_lt(kart_manager_connect(&mb, addr, &bad), 0);

    kart_proxy *d = NULL, *d2 = NULL, *l = NULL, *q = NULL, *it = NULL;
    ck_assert_int_eq(kart_manager_dict(m, &d), 0);
    ck_assert_str_eq(kart_proxy_typeid(d), "dict");
    kart_obj *k = S("answer"), *v = I(42), *got = NULL;
    ck_assert_int_eq(kart_mdict_set(d, k, v), 0);
    ck_assert_int_eq(kart_mdict_get(d, k, &got), 0);
    ck_assert_int_eq(as_int(got), 42);
    kart_obj_free(got);
    ck_assert_int_eq(kart_mdict_contains(d, k), 1);
    size_t n = 0;
    ck_assert_int_eq(kart_mdict_len(d, &n), 0);
    ck_assert_uint_eq(n, 1);
    kart_obj *miss = S("missing");
    ck_assert_int_eq(kart_mdict_get(d, miss, &got), -ENOENT);
    kart_obj_free(miss);
    /* __iter__ returns a proxy ('#PROXY' to an Iterator) */
    kart_obj *res = NULL;
    ck_assert_int_eq(kart_proxy_call(d, "__iter__", NULL, NULL, &res), -ENOTSUP);
    ck_assert_int_eq(kart_proxy_call_proxy(d, "__iter__", NULL, NULL, &it, NULL), 0);
    ck_assert_str_eq(kart_proxy_typeid(it), "Iterator");
    expect_repr(call(it, "__next__", NULL, 0), "'answer'");
    expect_exc(call(it, "__next__", NULL, KART_EREMOTE), "StopIteration");
    kart_proxy_free(it);
    ck_assert_int_eq(kart_proxy_call_proxy(d, "__len__", NULL, NULL, &it, NULL), -ENOMSG);
    /* a second reference (Python's incref) keeps it after the first goes */
    ck_assert_int_eq(kart_proxy_dup(d, &d2), 0);
    kart_proxy_free(d);
    ck_assert_int_eq(kart_mdict_del(d2, k), 0);
    ck_assert_int_eq(kart_mdict_del(d2, k), -ENOENT);
    kart_proxy_free(d2);
    kart_obj_free(k);
    kart_obj_free(v);

    ck_assert_int_eq(kart_manager_list(m, &l), 0);
    for (int i = 0; i < 3; i++) {
        kart_obj *x = I(i * 10);
        ck_assert_int_eq(kart_mlist_append(l, x), 0);
        kart_obj_free(x);
    }
    ck_assert_int_eq(kart_mlist_len(l, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(kart_mlist_get(l, -1, &got), 0);
    ck_assert_int_eq(as_int(got), 20);
    kart_obj_free(got);
    ck_assert_int_eq(kart_mlist_get(l, 7, &got), -ERANGE);
    ck_assert_int_eq(kart_mlist_pop(l, 0, &got), 0);
    ck_assert_int_eq(as_int(got), 0);
    kart_obj_free(got);
    kart_proxy_free(l);

    ck_assert_int_eq(kart_manager_queue(m, 1, &q), 0);
    kart_obj *item = T(2, S("two"), I(2));
    ck_assert_int_eq(kart_mqueue_put(q, item, -1), 0);
    ck_assert_int_eq(kart_mqueue_put(q, item, 0), -ETIMEDOUT); /* Full */
    ck_assert_int_eq(kart_mqueue_qsize(q, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(kart_mqueue_get(q, 1000 * KT_MS, &got), 0);
    ck_assert(kart_obj_equal(got, item));
    kart_obj_free(got);
    kart_obj_free(item);
    ck_assert_int_eq(kart_mqueue_get(q, 50 * KT_MS, &got), -ETIMEDOUT); /* Empty */
    kart_proxy_free(q);

    /* an unknown typeid is Python's error, not a crash */
    kart_obj *err = NULL;
    ck_assert_int_eq(kart_manager_create(m, "NoSuchType", NULL, NULL, &q, &err), KART_EREMOTE);
    kart_obj_free(err);
    ck_assert_int_eq(objects_settled(m, 0), 0);
    python_server_stop(m, kid);
}

START_TEST(kart_client_python_server_tcp)
{
    kart_against_python("127.0.0.1:0");
}
END_TEST

START_TEST(kart_client_python_server_unix)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/kart-mgr-pysrv-%d.sock", (int)getpid());
    unlink(path);
    kart_against_python(path);
    unlink(path);
}
END_TEST

/* ------------------------------------------------ user-registered types */

/* Counter(start=0): incr(by=1), get(), fail() raises ValueError, echo(*a)
 * returns a, oops() fails with -EIO, hidden() is not exposed, spawn(start)
 * returns a new Counter, todict() a new dict {"n": value}. */
static _Atomic int counters_alive;

static int c_create(void *arg, const kart_obj *args, const kart_obj *kwds, void **self,
                    kart_obj **err)
{
    ck_assert_ptr_eq(arg, &counters_alive);
    size_t na = 0, nk = 0;
    ck_assert_int_eq(kart_obj_len(args, &na), 0);
    ck_assert_int_eq(kart_obj_len(kwds, &nk), 0);
    int64_t v = 0;
    const kart_obj *a0 = NULL;
    if (na > 1 || nk > 0 ||
        (na == 1 && (kart_obj_item(args, 0, &a0) < 0 || kart_obj_get_int(a0, &v) < 0))) {
        ck_assert_int_eq(kart_obj_error("builtins", "TypeError", NULL, NULL, err), 0);
        return KART_EREMOTE;
    }
    if (v < 0)
        return -EDOM; /* a plain code: the client gets a RuntimeError */
    int64_t *n = malloc(sizeof *n);
    if (!n)
        return -ENOMEM;
    *n = v;
    *self = n;
    atomic_fetch_add(&counters_alive, 1);
    return 0;
}

static void c_destroy(void *arg, void *self)
{
    ck_assert_ptr_eq(arg, &counters_alive);
    atomic_fetch_sub(&counters_alive, 1);
    free(self);
}

static int c_incr(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result)
{
    (void)kwds;
    int64_t by = 1;
    size_t na = 0;
    const kart_obj *a0 = NULL;
    if (kart_obj_len(args, &na) == 0 && na == 1 &&
        (kart_obj_item(args, 0, &a0) < 0 || kart_obj_get_int(a0, &by) < 0))
        return -EINVAL;
    *(int64_t *)self += by;
    return kart_obj_int(*(int64_t *)self, result);
}

static int c_get(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result)
{
    (void)args;
    (void)kwds;
    return kart_obj_int(*(int64_t *)self, result);
}

static int c_fail(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result)
{
    (void)self;
    (void)args;
    (void)kwds;
    kart_obj *t = T(1, S("asked to fail"), NULL);
    ck_assert_int_eq(kart_obj_error("builtins", "ValueError", t, NULL, result), 0);
    return KART_EREMOTE;
}

static int c_echo(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result)
{
    (void)self;
    (void)kwds;
    return kart_obj_copy(args, result);
}

static int c_oops(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result)
{
    (void)self;
    (void)args;
    (void)kwds;
    (void)result;
    return -EIO;
}

static int c_todict(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result)
{
    (void)args;
    (void)kwds;
    kart_obj *d = NULL;
    ck_assert_int_eq(kart_obj_dict(&d), 0);
    ck_assert_int_eq(kart_obj_dict_set(d, S("n"), I(*(int64_t *)self)), 0);
    *result = T(1, d, NULL); /* dict's constructor args: ({"n": v},) */
    return 0;
}

static const kart_manager_method counter_methods[] = {
    {"incr", c_incr, NULL},       {"get", c_get, NULL},         {"fail", c_fail, NULL},
    {"echo", c_echo, NULL},       {"oops", c_oops, NULL},       {"hidden", c_get, NULL},
    {"spawn", c_echo, "Counter"}, {"todict", c_todict, "dict"},
};
static const char *const counter_exposed[] = {"incr", "get",   "fail",   "echo",
                                              "oops", "spawn", "todict", NULL};

static kart_manager_type counter_type(void)
{
    return (kart_manager_type){.typeid = "Counter",
                               .create = c_create,
                               .destroy = c_destroy,
                               .methods = counter_methods,
                               .nmethods = sizeof counter_methods / sizeof *counter_methods,
                               .exposed = counter_exposed,
                               .arg = &counters_alive};
}

START_TEST(user_registered_types)
{
    kart_manager_options o = key_opts();
    kart_manager_server *srv = NULL;
    char addr[256];
    snprintf(addr, sizeof addr, "@kart-mgr-user-%d", (int)getpid());
    ck_assert_int_eq(kart_manager_server_create(&srv, addr, &o), 0);
    /* registration errors */
    kart_manager_type t = counter_type();
    ck_assert_int_eq(kart_manager_server_register(NULL, &t), -EINVAL);
    ck_assert_int_eq(kart_manager_server_register(srv, NULL), -EINVAL);
    t.typeid = "";
    ck_assert_int_eq(kart_manager_server_register(srv, &t), -EINVAL);
    t = counter_type();
    t.create = NULL;
    ck_assert_int_eq(kart_manager_server_register(srv, &t), -EINVAL);
    t = counter_type();
    static const char *const bad_exposed[] = {"incr", "nosuch", NULL};
    t.exposed = bad_exposed;
    ck_assert_int_eq(kart_manager_server_register(srv, &t), -EINVAL);
    kart_manager_method dup[2] = {{"get", c_get, NULL}, {"get", c_get, NULL}};
    t = counter_type();
    t.methods = dup;
    t.nmethods = 2;
    t.exposed = NULL;
    ck_assert_int_eq(kart_manager_server_register(srv, &t), -EINVAL);
    kart_manager_method nofn = {"get", NULL, NULL};
    t.methods = &nofn;
    t.nmethods = 1;
    ck_assert_int_eq(kart_manager_server_register(srv, &t), -EINVAL);
    kart_manager_method unknown_ret = {"make", c_echo, "NoSuchType"};
    t.methods = &unknown_ret;
    ck_assert_int_eq(kart_manager_server_register(srv, &t), -ENOENT);
    t = counter_type();
    t.typeid = "dict";
    ck_assert_int_eq(kart_manager_server_register(srv, &t), -EEXIST);
    t = counter_type();
    ck_assert_int_eq(kart_manager_server_register(srv, &t), 0);
    ck_assert_int_eq(kart_manager_server_register(srv, &t), -EEXIST);
    ck_assert_int_eq(kart_manager_server_start(srv), 0);
    t.typeid = "Later";
    ck_assert_int_eq(kart_manager_server_register(srv, &t), -EBUSY);

    kart_manager *m = NULL;
    ck_assert_int_eq(kart_manager_connect(&m, addr, &o), 0);
    kart_proxy *c = NULL, *c2 = NULL, *d = NULL;
    kart_obj *err = NULL;
    kart_obj *args = T(1, I(5), NULL);
    ck_assert_int_eq(kart_manager_create(m, "Counter", args, NULL, &c, NULL), 0);
    kart_obj_free(args);
    ck_assert_int_eq(atomic_load(&counters_alive), 1);
    ck_assert_int_eq(int_of(call(c, "incr", T(1, I(2), NULL), 0)), 7);
    kart_obj *r = call(c, "get", NULL, 0);
    ck_assert_int_eq(as_int(r), 7);
    kart_obj_free(r);
    kart_obj *b = NULL;
    ck_assert_int_eq(kart_obj_bytes("\0x", 2, &b), 0);
    expect_repr(call(c, "echo", T(2, b, S("s")), 0), "(b'\\x00x', 's')");
    expect_exc(call(c, "fail", NULL, KART_EREMOTE), "ValueError");
    expect_exc(call(c, "oops", NULL, KART_EREMOTE), "RuntimeError");
    expect_exc(call(c, "incr", T(1, S("x"), NULL), KART_EREMOTE), "RuntimeError");
    kart_obj_free(call(c, "hidden", NULL, KART_EREMOTE)); /* not exposed: a traceback */
    /* a method returning a proxy */
    ck_assert_int_eq(kart_proxy_call(c, "spawn", NULL, NULL, &r), -ENOTSUP);
    ck_assert_int_eq(atomic_load(&counters_alive), 1); /* that one went at once */
    args = T(1, I(40), NULL);
    ck_assert_int_eq(kart_proxy_call_proxy(c, "spawn", args, NULL, &c2, NULL), 0);
    ck_assert_str_eq(kart_proxy_typeid(c2), "Counter");
    ck_assert_int_eq(int_of(call(c2, "incr", T(1, I(2), NULL), 0)), 42);
    ck_assert_int_eq(atomic_load(&counters_alive), 2);
    ck_assert_int_eq(kart_proxy_call_proxy(c, "spawn", args, NULL, NULL, NULL), -EINVAL);
    kart_obj_free(args);
    args = T(1, S("no"), NULL);
    ck_assert_int_eq(kart_proxy_call_proxy(c, "spawn", args, NULL, &c2, &err), KART_EREMOTE);
    expect_exc(err, "TypeError"); /* Counter("no") */
    kart_obj_free(args);
    ck_assert_int_eq(kart_proxy_call_proxy(c, "get", NULL, NULL, &d, NULL), -ENOMSG);
    ck_assert_int_eq(kart_proxy_call_proxy(c, "todict", NULL, NULL, &d, NULL), 0);
    ck_assert_str_eq(kart_proxy_typeid(d), "dict");
    kart_obj *k = S("n");
    ck_assert_int_eq(kart_mdict_get(d, k, &r), 0);
    ck_assert_int_eq(as_int(r), 7);
    kart_obj_free(r);
    kart_obj_free(k);
    ck_assert_int_eq(kart_manager_objects(m), 3);
    kart_proxy_free(d);
    kart_proxy_free(c2);
    ck_assert_int_eq(atomic_load(&counters_alive), 1);
    /* constructor errors */
    args = T(1, I(-1), NULL);
    ck_assert_int_eq(kart_manager_create(m, "Counter", args, NULL, &c2, &err), KART_EREMOTE);
    kart_obj_free(err);
    kart_obj_free(args);
    args = T(2, I(1), I(2));
    ck_assert_int_eq(kart_manager_create(m, "Counter", args, NULL, &c2, &err), KART_EREMOTE);
    kart_obj_free(err);
    kart_obj_free(args);
    ck_assert_int_eq(atomic_load(&counters_alive), 1);

    /* python3's BaseManager client, the typeid registered with no callable */
    char out[8192];
    int rc = run_python_script("tests/py/manager_usertype.py", addr, out, sizeof out);
    ck_assert_msg(rc == 0 && strstr(out, "ALL OK"), "python3 exit %d:\n%s", rc, out);
    int objs = -1;
    for (int i = 0; i < 100 && (objs = kart_manager_objects(m)) != 1; i++)
        nap(10 * KT_MS);
    ck_assert_int_eq(objs, 1);
    kart_proxy_free(c);
    kart_manager_free(m);
    kart_manager_server_free(srv);
    ck_assert_int_eq(atomic_load(&counters_alive), 0);
}
END_TEST

/* A kart client using a type registered in python3's own server, with a
 * method that returns a proxy (method_to_typeid). */
START_TEST(kart_client_python_server_registered_type)
{
    char addr[300];
    pid_t kid;
    python_server("127.0.0.1:0", "register", addr, sizeof addr, &kid);
    kart_manager *m = NULL;
    kart_manager_options o = key_opts();
    ck_assert_int_eq(kart_manager_connect(&m, addr, &o), 0);
    kart_proxy *c = NULL, *c2 = NULL;
    kart_obj *args = T(1, I(5), NULL);
    ck_assert_int_eq(kart_manager_create(m, "Counter", args, NULL, &c, NULL), 0);
    kart_obj_free(args);
    ck_assert_int_eq(int_of(call(c, "incr", T(1, I(2), NULL), 0)), 7);
    expect_exc(call(c, "fail", NULL, KART_EREMOTE), "ValueError");
    args = T(1, I(40), NULL);
    ck_assert_int_eq(kart_proxy_call_proxy(c, "spawn", args, NULL, &c2, NULL), 0);
    kart_obj_free(args);
    ck_assert_str_eq(kart_proxy_typeid(c2), "Counter");
    ck_assert_int_eq(int_of(call(c2, "incr", T(1, I(2), NULL), 0)), 42);
    ck_assert_int_eq(objects_settled(m, 2), 2);
    kart_proxy_free(c2);
    kart_proxy_free(c);
    ck_assert_int_eq(objects_settled(m, 0), 0);
    python_server_stop(m, kid);
}
END_TEST

/* build/examples/manager-server: prints where it listens, serves kart and
 * Python clients, stops when a client with the key asks. */
START_TEST(the_manager_server_tool)
{
    /* build[/san-...]/tests/check_manager -> build[/san-...]/examples/ */
    char tool[4096 + 64], self[4096], keyfile[64];
    ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_int_gt(sn, 0);
    self[sn] = 0;
    *strrchr(self, '/') = 0;
    *strrchr(self, '/') = 0;
    snprintf(tool, sizeof tool, "%s/examples/manager-server", self);
    ck_assert_msg(access(tool, X_OK) == 0, "%s is not built", tool);
    snprintf(keyfile, sizeof keyfile, "/tmp/kart-mgr-key-%d", (int)getpid());
    FILE *kf = fopen(keyfile, "w");
    ck_assert_ptr_nonnull(kf);
    fprintf(kf, "%s\n", KEY);
    fclose(kf);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t kid = kt_fork();
    if (kid == 0) {
        dup2(p[1], 1);
        execl(tool, tool, "--address", "127.0.0.1:0", "--authkey-file", keyfile, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[256];
    size_t n = 0;
    while (n < sizeof line - 1 && read(p[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = 0;
    close(p[0]);
    ck_assert_msg(strncmp(line, "listening on ", 13) == 0, "tool said '%s'", line);
    const char *addr = line + 13;
    char pyout[8192];
    int rc = run_python(addr, pyout, sizeof pyout);
    ck_assert_msg(rc == 0 && strstr(pyout, "ALL OK"), "python3 exit %d:\n%s", rc, pyout);
    kart_manager *m = NULL;
    kart_manager_options o = key_opts();
    ck_assert_int_eq(kart_manager_connect(&m, addr, &o), 0);
    ck_assert_int_eq(kart_manager_shutdown(m), 0);
    kart_manager_free(m);
    int st;
    kt_wait_child(kid, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unlink(keyfile);
    /* usage errors */
    kid = kt_fork();
    if (kid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        execl(tool, tool, "--address", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    kt_wait_child(kid, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}
END_TEST

/* ------------------------------------------- connection cap, idle timeout */

static void start_opts(fixture *f, kart_manager_options *o)
{
    static _Atomic int seq;
    char address[64];
    snprintf(address, sizeof address, "@kart-mgr-opts-%d-%d", (int)getpid(),
             atomic_fetch_add(&seq, 1));
    ck_assert_int_eq(kart_manager_server_create(&f->srv, address, o), 0);
    ck_assert_int_gt(kart_manager_server_address(f->srv, f->addr, sizeof f->addr), 0);
    ck_assert_int_eq(kart_manager_server_start(f->srv), 0);
    ck_assert_int_eq(kart_manager_connect(&f->m, f->addr, o), 0);
}

/* The next reply on c: a '#TRACEBACK' whose text contains want. */
static void expect_traceback(kart_conn *c, const char *want)
{
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(kart_conn_recv_bytes(c, &buf, &len, 1 << 20), 0);
    kart_obj_unpickle_options uo = {.managers = true};
    kart_obj *r = NULL;
    ck_assert_int_eq(kart_obj_unpickle(buf, len, &uo, &r, NULL), 0);
    free(buf);
    const kart_obj *k = NULL, *t = NULL;
    const char *s = NULL;
    ck_assert_int_eq(kart_obj_item(r, 0, &k), 0);
    ck_assert_int_eq(kart_obj_get_str(k, &s, NULL), 0);
    ck_assert_str_eq(s, "#TRACEBACK");
    ck_assert_int_eq(kart_obj_item(r, 1, &t), 0);
    ck_assert_int_eq(kart_obj_get_str(t, &s, NULL), 0);
    ck_assert_msg(strstr(s, want), "%s", s);
    kart_obj_free(r);
}

/* max_connections: a client over the cap is refused (-EUSERS; a raw,
 * Python-like client gets the traceback), and served once a connection
 * has ended. */
START_TEST(a_connection_cap_refuses_clearly)
{
    kart_manager_options o = key_opts();
    o.max_connections = 2;
    o.no_shm = true; /* the connections counted are the protocol's */
    fixture f;
    start_opts(&f, &o); /* f.m's session: 1 */
    kart_proxy *d = NULL;
    ck_assert_int_eq(kart_manager_dict(f.m, &d), 0);
    kart_obj *k = S("k"), *v = I(7), *out = NULL;
    ck_assert_int_eq(kart_mdict_set(d, k, v), 0); /* this thread's: 2 */
    kart_manager *m2 = NULL;
    ck_assert_int_eq(kart_manager_connect(&m2, f.addr, &o), -EUSERS);
    ck_assert_ptr_null(m2);
    kart_conn *raw = raw_client(f.addr, NULL);
    send_obj(raw, request(NULL, "dummy", NULL));
    expect_traceback(raw, "too many connections");
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(kart_conn_recv_bytes(raw, &buf, &len, 1 << 20), KART_EEOF);
    kart_conn_close(raw);
    /* the served are served on */
    ck_assert_int_eq(kart_mdict_get(d, k, &out), 0);
    ck_assert_int_eq(int_of(out), 7);
    /* a connection ends: there is room again */
    kart_proxy_free(d);
    kart_manager_free(f.m);
    int r = -1;
    for (int i = 0; i < 200 && r != 0; i++) {
        r = kart_manager_connect(&m2, f.addr, &o);
        if (r != 0) {
            ck_assert_int_eq(r, -EUSERS);
            nap(10 * KT_MS);
        }
    }
    ck_assert_int_eq(r, 0);
    f.m = m2;
    kart_obj_free(k);
    kart_obj_free(v);
    stop(&f);
}
END_TEST

/* idle_timeout_ns: a connection that sends nothing, or half a request, is
 * told and closed; a kart client's session or thread connection so closed
 * is replaced and the call sent again; its session, once it holds
 * references, is kept (the dict lives on). */
START_TEST(an_idle_connection_is_closed)
{
    kart_manager_options o = key_opts();
    o.idle_timeout_ns = 100 * KT_MS;
    fixture f;
    start_opts(&f, &o);
    kart_proxy *d = NULL;
    nap(300 * KT_MS); /* the session, holding nothing yet, is closed */
    ck_assert_int_eq(kart_manager_dict(f.m, &d), 0);
    kart_obj *k = S("k"), *v = I(11), *out = NULL;
    ck_assert_int_eq(kart_mdict_set(d, k, v), 0);
    nap(300 * KT_MS); /* the thread's connection is closed meanwhile */
    ck_assert_int_eq(kart_mdict_get(d, k, &out), 0);
    ck_assert_int_eq(int_of(out), 11);
    ck_assert_int_eq(kart_manager_objects(f.m), 1);

    /* a raw client that sends nothing after its first request */
    kart_conn *raw = raw_client(f.addr, NULL);
    kart_obj *name = S("raw"), *args = NULL;
    ck_assert_int_eq(kart_obj_tuple(&name, 1, &args), 0);
    send_obj(raw, request(NULL, "accept_connection", args));
    expect_reply_kind(raw, "#RETURN");
    nap(300 * KT_MS);
    expect_traceback(raw, "idle connection closed");
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(kart_conn_recv_bytes(raw, &buf, &len, 1 << 20), KART_EEOF);
    kart_conn_close(raw);
    /* one that sends half a request and stops */
    raw = raw_client(f.addr, NULL);
    const uint8_t half[] = {0, 0, 0, 40, 0x80, 4};
    ck_assert_int_eq(write(kart_conn_fileno(raw), half, sizeof half), (ssize_t)sizeof half);
    nap(300 * KT_MS);
    expect_traceback(raw, "idle connection closed");
    ck_assert_int_eq(kart_conn_recv_bytes(raw, &buf, &len, 1 << 20), KART_EEOF);
    kart_conn_close(raw);
    /* every client alike: the kart one still works */
    ck_assert_int_eq(kart_mdict_get(d, k, &out), 0);
    ck_assert_int_eq(int_of(out), 11);
    kart_proxy_free(d);
    kart_obj_free(k);
    kart_obj_free(v);
    stop(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manager");
    TCase *tc = tcase_create("manager");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, dict_every_method);
    tcase_add_test(tc, list_every_method);
    tcase_add_test(tc, namespace_and_value);
    tcase_add_test(tc, event_every_method);
    tcase_add_test(tc, lock_and_rlock);
    tcase_add_test(tc, queue_every_method);
    tcase_add_test(tc, semaphores);
    tcase_add_test(tc, condition_wait_notify);
    tcase_add_test(tc, barrier_every_method);
    tcase_add_test(tc, array_every_method);
    tcase_add_test(tc, many_threads_and_processes);
    tcase_add_test(tc, references_and_disconnects);
    tcase_add_test(tc, a_killed_client_releases_its_lock);
    tcase_add_test(tc, a_condition_waiter_is_told_of_a_killed_holder);
    tcase_add_test(tc, a_connection_cap_refuses_clearly);
    tcase_add_test(tc, an_idle_connection_is_closed);
    tcase_add_test(tc, a_python_client_is_not_told);
    tcase_add_test(tc, bad_input_hurts_only_its_client);
    tcase_add_test(tc, public_functions);
    tcase_add_test(tc, server_shutdown_and_errors);
    tcase_add_test(tc, forked_server);
    tcase_add_test(tc, python_syncmanager_client_tcp);
    tcase_add_test(tc, python_syncmanager_client_unix);
    tcase_add_test(tc, the_manager_server_tool);
    tcase_add_test(tc, kart_client_python_server_tcp);
    tcase_add_test(tc, kart_client_python_server_unix);
    tcase_add_test(tc, user_registered_types);
    tcase_add_test(tc, kart_client_python_server_registered_type);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

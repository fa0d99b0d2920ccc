/* Description: pipelined manager calls (kart_mbatch_*, kart/manager.h):
 * batches of dict and queue calls larger than the in-flight window, each
 * result checked; every argument error; a call that raises in the middle
 * of a batch (the others go on); a method that returns a proxy; threads
 * with batches of their own at once; and a batch against a server that
 * was killed (every call gets the connection's error, the next batch
 * reconnects or fails cleanly); a batch in a forked child on inherited
 * proxies; a server whose replies are not pickles (KART_EBADREPLY). */
#include "testutil.h"

#include <kart/conn.h>
#include <kart/manager.h>
#include <kart/obj.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY "kart-batch-key"

static kart_manager_options key_opts(void)
{
    return (kart_manager_options){.authkey = KEY, .authkey_len = strlen(KEY)};
}

typedef struct fixture {
    kart_manager_server *srv;
    kart_manager *m;
    char addr[256];
} fixture;

static void start(fixture *f)
{
    kart_manager_options o = key_opts();
    static _Atomic int seq;
    char gen[64];
    snprintf(gen, sizeof gen, "@kart-batch-test-%d-%d", (int)getpid(), atomic_fetch_add(&seq, 1));
    ck_assert_int_eq(kart_manager_server_create(&f->srv, gen, &o), 0);
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

static kart_obj *T(size_t n, kart_obj *a, kart_obj *b)
{
    kart_obj *items[2] = {a, b};
    kart_obj *t = NULL;
    ck_assert_int_eq(kart_obj_tuple(items, n, &t), 0);
    return t;
}

static int64_t as_int(const kart_obj *o)
{
    int64_t v = -1;
    ck_assert_int_eq(kart_obj_get_int(o, &v), 0);
    return v;
}

/* adds p.method(*args) to b, taking args */
static void add(kart_mbatch *b, kart_proxy *p, const char *method, kart_obj *args)
{
    int r = kart_mbatch_add(b, p, method, args, NULL);
    kart_obj_free(args);
    ck_assert_msg(r == 0, "add %s: %s", method, kart_strerror(r));
}

static void expect_exc(kart_mbatch *b, size_t i, const char *name)
{
    kart_obj *e = NULL;
    ck_assert_int_eq(kart_mbatch_result(b, i, &e), KART_EREMOTE);
    const char *n = NULL;
    if (strcmp(name, "") == 0) { /* a '#TRACEBACK': text */
        ck_assert_int_eq(kart_obj_type_of(e), KART_OBJ_STR);
    } else {
        ck_assert_int_eq(kart_obj_get_class(e, NULL, &n, NULL), 0);
        ck_assert_str_eq(n, name);
    }
    kart_obj_free(e);
}

/* values of 1 KiB, so that 200 of them pass the 64 KiB window */
static kart_obj *big_value(int i)
{
    char buf[1024];
    memset(buf, 'a' + i % 26, sizeof buf);
    kart_obj *o = NULL;
    ck_assert_int_eq(kart_obj_bytes(buf, sizeof buf, &o), 0);
    return o;
}

START_TEST(batch_dict_and_queue)
{
    fixture f;
    start(&f);
    kart_proxy *d = NULL, *q = NULL;
    ck_assert_int_eq(kart_manager_dict(f.m, &d), 0);
    ck_assert_int_eq(kart_manager_queue(f.m, 0, &q), 0);
    kart_mbatch *b = NULL;
    ck_assert_int_eq(kart_mbatch_create(&b), 0);
    ck_assert_uint_eq(kart_mbatch_size(b), 0);
    ck_assert_int_eq(kart_mbatch_run(b), 0); /* empty */
    kart_mbatch_reset(b);

    enum { N = 300 };
    for (int i = 0; i < N; i++)
        add(b, d, "__setitem__", T(2, I(i), big_value(i)));
    for (int i = 0; i < N; i++)
        add(b, d, "__getitem__", T(1, I(i), NULL));
    for (int i = 0; i < N; i++)
        add(b, q, "put", T(1, I(i * 7), NULL));
    for (int i = 0; i < N; i++)
        add(b, q, "get", NULL);
    ck_assert_uint_eq(kart_mbatch_size(b), 4 * N);
    ck_assert_int_eq(kart_mbatch_run(b), 0);
    for (int i = 0; i < N; i++) {
        kart_obj *v = NULL;
        ck_assert_int_eq(kart_mbatch_result(b, (size_t)i, &v), 0);
        ck_assert_int_eq(kart_obj_type_of(v), KART_OBJ_NONE);
        kart_obj_free(v);
        ck_assert_int_eq(kart_mbatch_result(b, (size_t)(N + i), &v), 0);
        kart_obj *want = big_value(i);
        ck_assert(kart_obj_equal(v, want));
        kart_obj_free(want);
        kart_obj_free(v);
        /* handed over once */
        ck_assert_int_eq(kart_mbatch_result(b, (size_t)(N + i), &v), 0);
        ck_assert_ptr_null(v);
        ck_assert_int_eq(kart_mbatch_result(b, (size_t)(3 * N + i), &v), 0);
        ck_assert_int_eq(as_int(v), i * 7);
        kart_obj_free(v);
        ck_assert_int_eq(kart_mbatch_result(b, (size_t)(3 * N + i), NULL), 0);
    }
    /* reused after a reset; results not taken are freed by it */
    kart_mbatch_reset(b);
    add(b, d, "__len__", NULL);
    add(b, q, "qsize", NULL);
    ck_assert_int_eq(kart_mbatch_run(b), 0);
    kart_obj *v = NULL;
    ck_assert_int_eq(kart_mbatch_result(b, 0, &v), 0);
    ck_assert_int_eq(as_int(v), N);
    kart_obj_free(v);
    /* the synchronous calls still work on the same thread's connection */
    size_t n = 9;
    ck_assert_int_eq(kart_mqueue_qsize(q, &n), 0);
    ck_assert_uint_eq(n, 0);
    kart_mbatch_free(b);
    kart_proxy_free(d);
    kart_proxy_free(q);
    stop(&f);
}
END_TEST

START_TEST(batch_argument_errors)
{
    fixture f, g;
    start(&f);
    start(&g);
    kart_proxy *d = NULL, *other = NULL;
    ck_assert_int_eq(kart_manager_dict(f.m, &d), 0);
    ck_assert_int_eq(kart_manager_dict(g.m, &other), 0);
    kart_mbatch *b = NULL;
    ck_assert_int_eq(kart_mbatch_create(NULL), -EINVAL);
    ck_assert_int_eq(kart_mbatch_create(&b), 0);
    kart_obj *key = T(1, I(1), NULL), *notuple = I(1), *nodict = T(0, NULL, NULL);
    ck_assert_int_eq(kart_mbatch_add(NULL, d, "__getitem__", key, NULL), -EINVAL);
    ck_assert_int_eq(kart_mbatch_add(b, NULL, "__getitem__", key, NULL), -EINVAL);
    ck_assert_int_eq(kart_mbatch_add(b, d, NULL, key, NULL), -EINVAL);
    ck_assert_int_eq(kart_mbatch_add(b, d, "__getitem__", notuple, NULL), -EINVAL);
    ck_assert_int_eq(kart_mbatch_add(b, d, "__getitem__", key, nodict), -EINVAL);
    ck_assert_uint_eq(kart_mbatch_size(b), 0);
    ck_assert_uint_eq(kart_mbatch_size(NULL), 0);
    ck_assert_int_eq(kart_mbatch_add(b, d, "__contains__", key, NULL), 0);
    /* a proxy of another handle: refused, the batch as before */
    ck_assert_int_eq(kart_mbatch_add(b, other, "__contains__", key, NULL), -EINVAL);
    ck_assert_uint_eq(kart_mbatch_size(b), 1);
    /* results before the run */
    kart_obj *v = NULL;
    ck_assert_int_eq(kart_mbatch_result(b, 0, &v), -EINVAL);
    ck_assert_int_eq(kart_mbatch_run(NULL), -EINVAL);
    ck_assert_int_eq(kart_mbatch_run(b), 0);
    ck_assert_int_eq(kart_mbatch_run(b), -EINVAL); /* already run */
    ck_assert_int_eq(kart_mbatch_add(b, d, "__contains__", key, NULL), -EINVAL);
    ck_assert_int_eq(kart_mbatch_result(NULL, 0, &v), -EINVAL);
    ck_assert_int_eq(kart_mbatch_result(b, 1, &v), -EINVAL);
    ck_assert_int_eq(kart_mbatch_result(b, 0, &v), 0);
    ck_assert_int_eq(kart_obj_type_of(v), KART_OBJ_BOOL);
    kart_obj_free(v);
    kart_mbatch_reset(b);
    ck_assert_uint_eq(kart_mbatch_size(b), 0);

    /* -EMSGSIZE: a request over the handle's max_message */
    kart_manager_options o = key_opts();
    o.max_message = 4096;
    kart_manager *small = NULL;
    ck_assert_int_eq(kart_manager_connect(&small, f.addr, &o), 0);
    kart_proxy *sd = NULL;
    ck_assert_int_eq(kart_manager_attach(small, "dict", kart_proxy_ident(d), &sd), 0);
    char blob[8192] = {0};
    kart_obj *bv = NULL;
    ck_assert_int_eq(kart_obj_bytes(blob, sizeof blob, &bv), 0);
    kart_obj *args = T(2, I(5), bv);
    ck_assert_int_eq(kart_mbatch_add(b, sd, "__setitem__", args, NULL), -EMSGSIZE);
    ck_assert_uint_eq(kart_mbatch_size(b), 0);
    kart_obj_free(args);
    kart_proxy_free(sd);
    kart_manager_free(small);

    kart_obj_free(key);
    kart_obj_free(notuple);
    kart_obj_free(nodict);
    kart_mbatch_free(b);
    kart_mbatch_free(NULL);
    kart_mbatch_reset(NULL);
    kart_proxy_free(d);
    kart_proxy_free(other);
    stop(&g);
    stop(&f);
}
END_TEST

START_TEST(batch_failing_calls_in_the_middle)
{
    fixture f;
    start(&f);
    kart_proxy *d = NULL, *q = NULL;
    ck_assert_int_eq(kart_manager_dict(f.m, &d), 0);
    ck_assert_int_eq(kart_manager_queue(f.m, 1, &q), 0);
    int objects = kart_manager_objects(f.m);
    kart_mbatch *b = NULL;
    ck_assert_int_eq(kart_mbatch_create(&b), 0);
    add(b, d, "__setitem__", T(2, S("a"), I(1)));       /* 0 */
    add(b, d, "__getitem__", T(1, S("missing"), NULL)); /* 1: KeyError */
    add(b, d, "no_such_method", NULL);                  /* 2: traceback */
    add(b, d, "__iter__", NULL);                        /* 3: a proxy */
    add(b, q, "put", T(1, I(1), NULL));                 /* 4 */
    add(b, q, "put_nowait", T(1, I(2), NULL));          /* 5: Full */
    add(b, d, "__setitem__", T(2, S("b"), I(2)));       /* 6 */
    add(b, d, "__getitem__", T(1, S("a"), NULL));       /* 7 */
    add(b, q, "get", NULL);                             /* 8 */
    ck_assert_int_eq(kart_mbatch_run(b), 4);
    ck_assert_int_eq(kart_mbatch_result(b, 0, NULL), 0);
    expect_exc(b, 1, "KeyError");
    expect_exc(b, 2, "");
    kart_obj *v = NULL;
    ck_assert_int_eq(kart_mbatch_result(b, 3, &v), -ENOTSUP);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(kart_mbatch_result(b, 4, NULL), 0);
    expect_exc(b, 5, "Full");
    ck_assert_int_eq(kart_mbatch_result(b, 6, NULL), 0);
    ck_assert_int_eq(kart_mbatch_result(b, 7, &v), 0);
    ck_assert_int_eq(as_int(v), 1);
    kart_obj_free(v);
    ck_assert_int_eq(kart_mbatch_result(b, 8, &v), 0);
    ck_assert_int_eq(as_int(v), 1);
    kart_obj_free(v);
    /* the iterator the proxy reply made was released */
    ck_assert_int_eq(kart_manager_objects(f.m), objects);
    size_t n = 0;
    ck_assert_int_eq(kart_mdict_len(d, &n), 0);
    ck_assert_uint_eq(n, 2);
    kart_mbatch_free(b);
    kart_proxy_free(d);
    kart_proxy_free(q);
    stop(&f);
}
END_TEST

typedef struct worker {
    kart_proxy *d;
    int id;
    int bad;
} worker;

static void *batch_worker(void *arg)
{
    worker *w = arg;
    kart_mbatch *b = NULL;
    if (kart_mbatch_create(&b) != 0) {
        w->bad = 1;
        return NULL;
    }
    for (int round = 0; round < 20 && !w->bad; round++) {
        for (int i = 0; i < 50; i++) {
            kart_obj *k = NULL, *v = NULL, *args = NULL;
            kart_obj_int(w->id * 100000 + round * 100 + i, &k);
            kart_obj_int(i, &v);
            kart_obj *items[2] = {k, v};
            kart_obj_tuple(items, 2, &args);
            if (kart_mbatch_add(b, w->d, "__setitem__", args, NULL) != 0)
                w->bad = 1;
            kart_obj_free(args);
            kart_obj_int(w->id * 100000 + round * 100 + i, &k);
            kart_obj_tuple(&k, 1, &args);
            if (kart_mbatch_add(b, w->d, "__getitem__", args, NULL) != 0)
                w->bad = 1;
            kart_obj_free(args);
        }
        if (kart_mbatch_run(b) != 0)
            w->bad = 1;
        for (size_t i = 1; i < kart_mbatch_size(b); i += 2) {
            kart_obj *v = NULL;
            int64_t got = -1;
            if (kart_mbatch_result(b, i, &v) != 0 || kart_obj_get_int(v, &got) != 0 ||
                got != (int64_t)(i / 2))
                w->bad = 1;
            kart_obj_free(v);
        }
        kart_mbatch_reset(b);
    }
    kart_mbatch_free(b);
    return NULL;
}

START_TEST(batches_from_many_threads)
{
    fixture f;
    start(&f);
    kart_proxy *d = NULL;
    ck_assert_int_eq(kart_manager_dict(f.m, &d), 0);
    enum { NT = 4 };
    pthread_t th[NT];
    worker w[NT];
    for (int i = 0; i < NT; i++) {
        w[i] = (worker){.d = d, .id = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, batch_worker, &w[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(w[i].bad, 0);
    }
    size_t n = 0;
    ck_assert_int_eq(kart_mdict_len(d, &n), 0);
    ck_assert_uint_eq(n, NT * 20 * 50);
    kart_proxy_free(d);
    stop(&f);
}
END_TEST

START_TEST(batch_against_a_dead_server)
{
    kart_manager_options o = key_opts();
    char addr[256];
    pid_t pid = 0;
    ck_assert_int_eq(kart_manager_fork(NULL, &o, addr, sizeof addr, &pid), 0);
    kart_manager *m = NULL;
    ck_assert_int_eq(kart_manager_connect(&m, addr, &o), 0);
    kart_proxy *d = NULL;
    ck_assert_int_eq(kart_manager_dict(m, &d), 0);
    kart_mbatch *b = NULL;
    ck_assert_int_eq(kart_mbatch_create(&b), 0);
    add(b, d, "__setitem__", T(2, I(1), I(2)));
    ck_assert_int_eq(kart_mbatch_run(b), 0); /* opens this thread's connection */
    kart_mbatch_reset(b);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int st;
    kt_wait_child(pid, &st);
    for (int i = 0; i < 100; i++)
        add(b, d, "__getitem__", T(1, I(1), NULL));
    int r = kart_mbatch_run(b);
    ck_assert_msg(r == -EPIPE || r == -ECONNRESET || r == KART_EEOF, "run: %d (%s)", r,
                  kart_strerror(r));
    for (size_t i = 0; i < 100; i++) {
        kart_obj *v = NULL;
        ck_assert_int_eq(kart_mbatch_result(b, i, &v), r);
        ck_assert_ptr_null(v);
    }
    /* the next batch tries a new connection, which the dead server refuses */
    kart_mbatch_reset(b);
    add(b, d, "__getitem__", T(1, I(1), NULL));
    r = kart_mbatch_run(b);
    ck_assert_msg(r < 0, "run: %d", r);
    ck_assert_int_eq(kart_mbatch_result(b, 0, NULL), r);
    kart_mbatch_free(b);
    kart_proxy_free(d);
    kart_manager_free(m);
}
END_TEST

/* A forked child's batch on inherited proxies: the child opens its own
 * connection and takes its own references (the pid check sees the fork). */
START_TEST(batch_in_a_forked_child)
{
    kart_manager_options o = key_opts();
    char addr[256];
    pid_t srv = 0;
    ck_assert_int_eq(kart_manager_fork(NULL, &o, addr, sizeof addr, &srv), 0);
    kart_manager *m = NULL;
    ck_assert_int_eq(kart_manager_connect(&m, addr, &o), 0);
    kart_proxy *d = NULL;
    ck_assert_int_eq(kart_manager_dict(m, &d), 0);
    kart_mbatch *b = NULL;
    ck_assert_int_eq(kart_mbatch_create(&b), 0);
    add(b, d, "__setitem__", T(2, S("parent"), I(1)));
    ck_assert_int_eq(kart_mbatch_run(b), 0);
    kart_mbatch_reset(b);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        int bad = 0;
        kart_obj *args = T(2, S("child"), I(2));
        bad |= kart_mbatch_add(b, d, "__setitem__", args, NULL) != 0;
        kart_obj_free(args);
        args = T(1, S("parent"), NULL);
        bad |= kart_mbatch_add(b, d, "__getitem__", args, NULL) != 0;
        kart_obj_free(args);
        bad |= kart_mbatch_run(b) != 0;
        kart_obj *v = NULL;
        int64_t got = 0;
        bad |= kart_mbatch_result(b, 1, &v) != 0 || kart_obj_get_int(v, &got) != 0 || got != 1;
        kart_obj_free(v);
        kart_mbatch_free(b);
        kart_proxy_free(d); /* the child's own reference */
        kart_manager_free(m);
        _exit(bad ? 1 : 0);
    }
    int st = 0;
    kt_wait_child(child, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the parent's connection and reference are untouched */
    add(b, d, "__getitem__", T(1, S("child"), NULL));
    ck_assert_int_eq(kart_mbatch_run(b), 0);
    kart_obj *v = NULL;
    ck_assert_int_eq(kart_mbatch_result(b, 0, &v), 0);
    ck_assert_int_eq(as_int(v), 2);
    kart_obj_free(v);
    kart_mbatch_free(b);
    kart_proxy_free(d);
    ck_assert_int_eq(kart_manager_shutdown(m), 0);
    kart_manager_free(m);
    kt_wait_child(srv, &st);
}
END_TEST

/* ---- a server that does not speak the protocol past the handshake ---- */

typedef struct fake {
    kart_listener *l;
    atomic_bool stop;
    pthread_t th;
} fake;

/* Answers the public functions (dummy, accept_connection, incref) with
 * ('#RETURN', None) and every method call with bytes that are no pickle. */
static void *fake_conn(void *arg)
{
    kart_conn *c = arg;
    kart_obj *items[2] = {NULL, NULL}, *ok = NULL;
    kart_obj_strz("#RETURN", &items[0]);
    kart_obj_none(&items[1]);
    kart_obj_tuple(items, 2, &ok);
    void *okbuf = NULL;
    size_t oklen = 0;
    kart_obj_pickle(ok, 2, &okbuf, &oklen);
    kart_obj_free(ok);
    for (;;) {
        void *buf = NULL;
        size_t len = 0;
        if (kart_conn_recv_bytes(c, &buf, &len, 1 << 20) < 0)
            break;
        bool pub = memmem(buf, len, "dummy", 5) || memmem(buf, len, "accept_connection", 17) ||
                   memmem(buf, len, "incref", 6) || memmem(buf, len, "decref", 6);
        free(buf);
        int r = pub ? kart_conn_send_bytes(c, okbuf, oklen) : kart_conn_send_bytes(c, "junk", 4);
        if (r < 0)
            break;
    }
    free(okbuf);
    kart_conn_close(c);
    return NULL;
}

static void *fake_accept(void *arg)
{
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        kart_conn *c = NULL;
        if (kart_listener_accept(f->l, &c, 50000000) != 0)
            continue;
        pthread_t th;
        if (pthread_create(&th, NULL, fake_conn, c) == 0)
            pthread_detach(th);
        else
            kart_conn_close(c);
    }
    return NULL;
}

START_TEST(batch_against_a_server_that_answers_junk)
{
    fake f = {0};
    char gen[64], addr[256];
    snprintf(gen, sizeof gen, "@kart-batch-fake-%d", (int)getpid());
    ck_assert_int_eq(kart_listener_create(&f.l, gen, NULL), 0);
    ck_assert_int_gt(kart_listener_address(f.l, addr, sizeof addr), 0);
    ck_assert_int_eq(pthread_create(&f.th, NULL, fake_accept, &f), 0);
    kart_manager *m = NULL;
    ck_assert_int_eq(kart_manager_connect(&m, addr, NULL), 0);
    kart_proxy *d = NULL;
    ck_assert_int_eq(kart_manager_attach(m, "dict", "7f00", &d), 0);
    kart_mbatch *b = NULL;
    ck_assert_int_eq(kart_mbatch_create(&b), 0);
    add(b, d, "__getitem__", T(1, I(1), NULL));
    add(b, d, "__getitem__", T(1, I(2), NULL));
    ck_assert_int_eq(kart_mbatch_run(b), KART_EBADREPLY);
    ck_assert_int_eq(kart_mbatch_result(b, 0, NULL), KART_EBADREPLY);
    ck_assert_int_eq(kart_mbatch_result(b, 1, NULL), KART_EBADREPLY);
    kart_mbatch_free(b);
    kart_proxy_free(d);
    kart_manager_free(m);
    atomic_store(&f.stop, true);
    pthread_join(f.th, NULL);
    kart_listener_free(f.l);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("manager_batch");
    TCase *tc = tcase_create("manager_batch");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, batch_dict_and_queue);
    tcase_add_test(tc, batch_argument_errors);
    tcase_add_test(tc, batch_failing_calls_in_the_middle);
    tcase_add_test(tc, batches_from_many_threads);
    tcase_add_test(tc, batch_against_a_dead_server);
    tcase_add_test(tc, batch_in_a_forked_child);
    tcase_add_test(tc, batch_against_a_server_that_answers_junk);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

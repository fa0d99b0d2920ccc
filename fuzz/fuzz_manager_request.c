/*
 * fuzz/fuzz_manager_request.c — libFuzzer target for the manager server's
 * request handling (core/manager/server.c's mgr__handle_frame: one request
 * frame in, the reply out, no sockets). The first byte picks the mode: bit
 * 0 set, the frame arrives on an accepted connection (method calls, and
 * kart's ident-None public calls); clear, it is a connection's first
 * request (a public function). With bit 1 set the connection first
 * creates one object of every built-in type and of a user-registered
 * "Counter" (idents 7f3a00001000, 7f3a00001030, ... in the order of
 * make_objects below), so that the frame can call their methods. The rest
 * is the frame. Every reply must be a ('#KIND', value) 2-tuple that
 * pickles; the server is stopped before the frame (blocking calls end at
 * once instead of hanging); the connection's end and the server's free
 * release everything, so LeakSanitizer sees any leak.
 */
#include "mgr_private.h"

#include <kart/obj.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- a user type: Counter(start=0) with incr(by=1), get(), fail() and
 * spawn(start) -> a new Counter ---- */

static int counter_create(void *arg, const kart_obj *args, const kart_obj *kwds, void **self,
                          kart_obj **err)
{
    (void)arg;
    (void)kwds;
    (void)err;
    int64_t *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    size_t na = 0;
    const kart_obj *a0 = NULL;
    if (kart_obj_len(args, &na) == 0 && na > 0 && kart_obj_item(args, 0, &a0) == 0 &&
        kart_obj_get_int(a0, n) < 0) {
        free(n);
        return -EINVAL;
    }
    *self = n;
    return 0;
}

static void counter_destroy(void *arg, void *self)
{
    (void)arg;
    free(self);
}

static int counter_incr(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result)
{
    (void)kwds;
    int64_t by = 1;
    size_t na = 0;
    const kart_obj *a0 = NULL;
    if (kart_obj_len(args, &na) == 0 && na > 0 && kart_obj_item(args, 0, &a0) == 0 &&
        kart_obj_get_int(a0, &by) < 0)
        return -EINVAL;
    int64_t *n = self;
    if (__builtin_add_overflow(*n, by, n))
        return -ERANGE;
    return kart_obj_int(*n, result);
}

static int counter_get(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result)
{
    (void)args;
    (void)kwds;
    return kart_obj_int(*(int64_t *)self, result);
}

static int counter_fail(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result)
{
    (void)self;
    (void)args;
    (void)kwds;
    kart_obj *msg = NULL, *t = NULL;
    if (kart_obj_strz("asked to fail", &msg) < 0)
        return -ENOMEM;
    if (kart_obj_tuple(&msg, 1, &t) < 0) {
        kart_obj_free(msg);
        return -ENOMEM;
    }
    if (kart_obj_error("builtins", "ValueError", t, NULL, result) < 0) {
        kart_obj_free(t);
        return -ENOMEM;
    }
    return KART_EREMOTE;
}

static int counter_spawn(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result)
{
    (void)self;
    (void)kwds;
    return kart_obj_copy(args, result);
}

static const kart_manager_method counter_methods[] = {
    {"incr", counter_incr, NULL},
    {"get", counter_get, NULL},
    {"fail", counter_fail, NULL},
    {"spawn", counter_spawn, "Counter"},
};

static const kart_manager_type counter_type = {
    .typeid = "Counter",
    .create = counter_create,
    .destroy = counter_destroy,
    .methods = counter_methods,
    .nmethods = 4,
};

/* ---- setup frames: ('create', typeid, args...) with ident None ---- */

static kart_obj *str(const char *s)
{
    kart_obj *o = NULL;
    if (kart_obj_strz(s, &o) < 0)
        abort();
    return o;
}

static kart_obj *num(int64_t v)
{
    kart_obj *o = NULL;
    if (kart_obj_int(v, &o) < 0)
        abort();
    return o;
}

static void make_frame(kart_obj *args, void **buf, size_t *len)
{
    kart_obj *items[4] = {NULL, str("create"), args, NULL};
    if (kart_obj_none(&items[0]) < 0 || kart_obj_dict(&items[3]) < 0)
        abort();
    kart_obj *req = NULL;
    if (kart_obj_tuple(items, 4, &req) < 0 || kart_obj_pickle(req, 4, buf, len) < 0)
        abort();
    kart_obj_free(req);
}

#define NSETUP 15
static void *setup_buf[NSETUP];
static size_t setup_len[NSETUP];

static void make_objects(void)
{
    static const char *const plain[] = {
        "dict",  "list",      "Namespace",     "Event",   "Lock",
        "RLock", "Condition", "JoinableQueue", "Counter",
    };
    size_t k = 0;
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        kart_obj *a = NULL, *t = str(plain[i]);
        if (kart_obj_tuple(&t, 1, &a) < 0)
            abort();
        make_frame(a, &setup_buf[k], &setup_len[k]);
        k++;
    }
    /* typeid with one or two args */
    struct {
        const char *typeid;
        int64_t v;
    } one[] = {{"Queue", 2}, {"Semaphore", 1}, {"BoundedSemaphore", 1}, {"Barrier", 2}};
    for (size_t i = 0; i < 4; i++) {
        kart_obj *items[2] = {str(one[i].typeid), num(one[i].v)}, *a = NULL;
        if (kart_obj_tuple(items, 2, &a) < 0)
            abort();
        make_frame(a, &setup_buf[k], &setup_len[k]);
        k++;
    }
    kart_obj *items[3] = {str("Value"), str("i"), num(7)}, *a = NULL;
    if (kart_obj_tuple(items, 3, &a) < 0)
        abort();
    make_frame(a, &setup_buf[k], &setup_len[k]);
    k++;
    kart_obj *l = NULL;
    if (kart_obj_list(&l) < 0 || kart_obj_append(l, num(1)) < 0 || kart_obj_append(l, num(2)) < 0)
        abort();
    kart_obj *items2[3] = {str("Array"), str("i"), l};
    if (kart_obj_tuple(items2, 3, &a) < 0)
        abort();
    make_frame(a, &setup_buf[k], &setup_len[k]);
    k++;
    if (k != NSETUP)
        abort();
}

static void check_reply(kart_obj *reply)
{
    size_t n = 0;
    const kart_obj *kind = NULL;
    const char *s = NULL;
    if (!reply || kart_obj_type_of(reply) != KART_OBJ_TUPLE || kart_obj_len(reply, &n) < 0 ||
        n != 2 || kart_obj_item(reply, 0, &kind) < 0 || kart_obj_get_str(kind, &s, NULL) < 0 ||
        s[0] != '#')
        abort();
    void *buf = NULL;
    size_t len = 0;
    if (kart_obj_pickle(reply, 4, &buf, &len) < 0)
        abort();
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static int once;
    if (!once) {
        make_objects();
        once = 1;
    }
    uint8_t mode = data[0];
    bool accepted = mode & 1;
    kart_manager_server *s = NULL;
    if (mgr__server_new(&s, NULL) < 0 || kart_manager_server_register(s, &counter_type) < 0)
        abort();
    mcx *cx = mgr__cx_new(s);
    if (!cx)
        abort();
    kart_obj *reply = NULL;
    if (mode & 2)
        for (size_t i = 0; i < NSETUP; i++) {
            if (mgr__handle_frame(cx, setup_buf[i], setup_len[i], true, NULL, &reply) < 0)
                abort();
            const kart_obj *kind = NULL;
            const char *k = NULL;
            if (kart_obj_item(reply, 0, &kind) < 0 || kart_obj_get_str(kind, &k, NULL) < 0 ||
                strcmp(k, "#RETURN") != 0)
                abort();
            kart_obj_free(reply);
        }
    kart_manager_server_shutdown(s);
    bool accept = false;
    if (mgr__handle_frame(cx, data + 1, size - 1, accepted, &accept, &reply) < 0)
        abort();
    check_reply(reply);
    kart_obj_free(reply);
    mgr__cx_end(cx);
    kart_manager_server_free(s);
    return 0;
}

/*
 * core/manager/shm_server.c — the server's side of the fast path.
 *
 * Promotion: a dict, Queue or JoinableQueue starts as a plain object (no
 * segment, no fd: a Python-only manager pays nothing). The first kart
 * client on this host that asks to attach to it moves its contents into a
 * fresh segment, under the object's mutex; from then on every call, the
 * protocol's included, works on the segment (types.c sends promoted
 * objects here), so Python clients, remote kart clients and mapped kart
 * clients see one object.
 *
 * Attach: a kart-only public function, sent as the first request of a
 * connection of its own: (None, "kart_shm_attach", (ident,), {}). The
 * server answers only on a unix socket whose peer runs as the server's
 * user (SO_PEERCRED), and only if its options allow it: first one byte,
 * 'F' with the segment's fd attached (SCM_RIGHTS) or 'E' without one,
 * then an ordinary reply frame; the connection then ends. The byte comes
 * first so that the client reads it with recvmsg before its connection
 * buffers anything. Python never sends this request.
 */
#include "shm_path.h"

#include "deadline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


static mshm *seg_of(mobj *o)
{
    return __atomic_load_n(&o->shm, __ATOMIC_ACQUIRE);
}

static int ret(kart_obj **result, kart_obj *v)
{
    *result = v;
    return v ? MCALL_OK : -ENOMEM;
}

static int raise(kart_obj **result, kart_obj *e)
{
    *result = e;
    return e ? MCALL_ERROR : -ENOMEM;
}

/* A fast-path error as the exception Python's dict / queue raises. */
static int fail(kart_obj **result, int r, const kart_obj *key)
{
    kart_obj *t;
    switch (r) {
    case -ENOENT:
        return raise(result,
                     key ? mgr__exc_obj("builtins", "KeyError", key)
                         : mgr__exc("builtins", "KeyError", "popitem(): dictionary is empty"));
    case -EINVAL:
        return raise(result,
                     key ? mgr__exc("builtins", "TypeError", "unhashable type: '%s'",
                                    kart_obj_type_name(kart_obj_type_of(key)))
                         : mgr__exc("builtins", "ValueError", "task_done() called too many times"));
    case -ENOSPC:
        return raise(result, mgr__exc("builtins", "MemoryError",
                                      "kart: the object's shared segment is full"));
    case -ETIMEDOUT:
        t = mv_tuple(0);
        return raise(result,
                     t ? mv_error(key ? "queue" : "_queue", key ? "Full" : "Empty", t) : NULL);
    default:
        return r;
    }
}

static const kart_obj *non_null(const kart_obj *o, kart_obj **none)
{
    return o ? o : (*none = mv_none());
}

static int dict_call(mshm *s, mobj *o, const char *m, const kart_obj *args, const kart_obj *kwds,
                     kart_obj **result, mobj **newobj)
{
    const kart_obj *a[2];
    kart_obj *v = NULL, *k2 = NULL;
    int r;
    if (strcmp(m, "__getitem__") == 0 || strcmp(m, "__contains__") == 0 ||
        strcmp(m, "__delitem__") == 0) {
        BIND(m, 1, "key");
        if (m[2] == 'c') {
            r = mgr__shmd_get(s, a[0], NULL);
            return r == 0 || r == -ENOENT ? ret(result, mv_bool(r == 0)) : fail(result, r, a[0]);
        }
        if (m[2] == 'g')
            return (r = mgr__shmd_get(s, a[0], &v)) == 0 ? ret(result, v) : fail(result, r, a[0]);
        return (r = mgr__shmd_pop(s, a[0], NULL)) == 0 ? ret(result, mv_none())
                                                       : fail(result, r, a[0]);
    }
    if (strcmp(m, "__setitem__") == 0) {
        BIND(m, 2, "key", "value");
        return (r = mgr__shmd_set(s, a[0], a[1], false, NULL)) == 0 ? ret(result, mv_none())
                                                                    : fail(result, r, a[0]);
    }
    if (strcmp(m, "__len__") == 0) {
        NOARGS(m);
        size_t n = 0;
        return (r = mgr__shmd_len(s, &n)) == 0 ? ret(result, mv_int((int64_t)n)) : r;
    }
    if (strcmp(m, "get") == 0) {
        BIND(m, 1, "key", "default");
        r = mgr__shmd_get(s, a[0], &v);
        if (r == -ENOENT)
            return ret(result, a[1] ? mv_copy(a[1]) : mv_none());
        return r == 0 ? ret(result, v) : fail(result, r, a[0]);
    }
    if (strcmp(m, "setdefault") == 0) {
        BIND(m, 1, "key", "default");
        kart_obj *none = NULL;
        const kart_obj *d = non_null(a[1], &none);
        if (!d)
            return -ENOMEM;
        r = mgr__shmd_set(s, a[0], d, true, &v);
        if (r == 0 && !v)
            v = mv_copy(d);
        mv_free(none);
        return r == 0 ? ret(result, v) : fail(result, r, a[0]);
    }
    if (strcmp(m, "pop") == 0) {
        BIND(m, 1, "key", "default");
        r = mgr__shmd_pop(s, a[0], &v);
        if (r == -ENOENT && a[1])
            return ret(result, mv_copy(a[1]));
        return r == 0 ? ret(result, v) : fail(result, r, a[0]);
    }
    if (strcmp(m, "popitem") == 0) {
        NOARGS(m);
        r = mgr__shmd_popitem(s, &k2, &v);
        return r == 0 ? ret(result, mv_tuple(2, k2, v)) : fail(result, r, NULL);
    }
    if (strcmp(m, "clear") == 0) {
        NOARGS(m);
        return (r = mgr__shmd_clear(s)) == 0 ? ret(result, mv_none()) : r;
    }
    if (strcmp(m, "copy") == 0 || strcmp(m, "keys") == 0 || strcmp(m, "values") == 0 ||
        strcmp(m, "items") == 0) {
        NOARGS(m);
        int what = m[0] == 'c'   ? MSHMD_DICT
                   : m[0] == 'k' ? MSHMD_KEYS
                   : m[0] == 'v' ? MSHMD_VALUES
                                 : MSHMD_ITEMS;
        return (r = mgr__shmd_list(s, what, &v)) == 0 ? ret(result, v) : r;
    }
    if (strcmp(m, "update") == 0) {
        if (mv_len(args) > 1)
            return raise(result,
                         mgr__exc("builtins", "TypeError",
                                  "update expected at most 1 argument, got %zu", mv_len(args)));
        /* Pairs are checked as the plain dict does, then set one by one
         * (each under the lock; a concurrent reader may see a part). */
        const kart_obj *srcs[2] = {mv_len(args) ? mv_item(args, 0) : NULL, kwds};
        for (int i = 0; i < 2; i++) {
            const kart_obj *src = srcs[i];
            if (!src || (i == 1 && !mv_len(src)))
                continue;
            int kind = mv_kind(src);
            if (kind != MV_DICT && kind != MV_LIST && kind != MV_TUPLE)
                return raise(result,
                             mgr__exc("builtins", "TypeError", "'%s' object is not iterable",
                                      kart_obj_type_name(kart_obj_type_of(src))));
            size_t pos = 0;
            const kart_obj *k, *val;
            while (kart_obj_next(src, &pos, &k, &val) == 1) {
                if (kind != MV_DICT) {
                    if ((mv_kind(val) != MV_TUPLE && mv_kind(val) != MV_LIST) || mv_len(val) != 2)
                        return raise(result,
                                     mgr__exc("builtins", "ValueError",
                                              "dictionary update sequence element has wrong "
                                              "length"));
                    k = mv_item(val, 0);
                    val = mv_item(val, 1);
                }
                if ((r = mgr__shmd_set(s, k, val, false, NULL)) != 0)
                    return fail(result, r, k);
            }
        }
        return ret(result, mv_none());
    }
    if (strcmp(m, "__iter__") == 0) {
        NOARGS(m);
        if ((r = mgr__shmd_list(s, MSHMD_KEYS, &v)) != 0)
            return r;
        kart_obj *ia = mv_tuple(1, v);
        if (!ia)
            return -ENOMEM;
        extern const mtype mgr__iterator_type;
        kart_obj *err = NULL;
        r = mgr__obj_create(o->srv, &mgr__iterator_type, ia, NULL, newobj, &err);
        mv_free(ia);
        if (r != 0)
            return r == MCALL_ERROR ? raise(result, err) : r;
        return MCALL_PROXY;
    }
    return raise(result,
                 mgr__exc("builtins", "AttributeError", "'dict' object has no attribute '%s'", m));
}

static int ns_call(mshm *s, const char *m, const kart_obj *args, const kart_obj *kwds,
                   kart_obj **result)
{
    const kart_obj *a[2];
    if (strcmp(m, "__setattr__") == 0)
        BIND(m, 2, "name", "value");
    else
        BIND(m, 1, "name");
    size_t nl;
    const char *name = mv_get_str(a[0], &nl);
    if (!name)
        return raise(result,
                     mgr__exc("builtins", "TypeError", "attribute name must be string, not '%s'",
                              kart_obj_type_name(kart_obj_type_of(a[0]))));
    kart_obj *v = NULL;
    int r;
    if (strcmp(m, "__setattr__") == 0)
        return (r = mgr__shmd_set(s, a[0], a[1], false, NULL)) == 0 ? ret(result, mv_none())
                                                                    : fail(result, r, a[0]);
    bool get = strcmp(m, "__getattribute__") == 0;
    r = get ? mgr__shmd_get(s, a[0], &v) : mgr__shmd_pop(s, a[0], NULL);
    if (r == 0)
        return ret(result, get ? v : mv_none());
    if (r != -ENOENT)
        return fail(result, r, a[0]);
    return raise(result, mgr__exc("builtins", "AttributeError",
                                  get ? "'Namespace' object has no attribute '%.*s'" : "%.*s",
                                  (int)nl, name));
}

static int value_call(mshm *s, const char *m, const kart_obj *args, const kart_obj *kwds,
                      kart_obj **result)
{
    const kart_obj *a[1];
    kart_obj *one = mv_int(1), *v = NULL;
    if (!one)
        return -ENOMEM;
    int r;
    if (strcmp(m, "get") == 0) {
        mv_free(one);
        NOARGS(m);
        one = mv_int(1);
        r = one ? mgr__shmd_get(s, one, &v) : -ENOMEM;
        mv_free(one);
        return r == 0 ? ret(result, v) : r == -ENOENT ? KART_EBADREPLY : r;
    }
    mv_free(one);
    BIND(m, 1, "value");
    one = mv_int(1);
    r = one ? mgr__shmd_set(s, one, a[0], false, NULL) : -ENOMEM;
    mv_free(one);
    return r == 0 ? ret(result, mv_none()) : r == -ENOSPC ? fail(result, r, NULL) : r;
}

static int queue_call(mshm *s, mobj *o, const char *m, const kart_obj *args, const kart_obj *kwds,
                      kart_obj **result)
{
    const kart_obj *a[3];
    int r = 0;
    bool put = strcmp(m, "put") == 0 || strcmp(m, "put_nowait") == 0;
    if (put || strcmp(m, "get") == 0 || strcmp(m, "get_nowait") == 0) {
        bool block = true, nowait = m[3] == '_';
        int64_t dl = KART__NO_DEADLINE;
        const kart_obj *b = NULL, *t = NULL;
        if (put && nowait) {
            BIND(m, 1, "item");
        } else if (put) {
            BIND(m, 1, "item", "block", "timeout");
            b = a[1];
            t = a[2];
        } else if (nowait) {
            NOARGS(m);
        } else {
            BIND(m, 0, "block", "timeout");
            b = a[0];
            t = a[1];
        }
        if (nowait)
            block = false;
        else if (b)
            block = mv_get_bool(b);
        if (block && (r = mgr__timeout(t, &dl, false, result)) != 0)
            return r;
        kart_obj *item = NULL;
        r = put ? mgr__shmq_put(s, a[0], block, dl, o->srv)
                : mgr__shmq_get(s, block, dl, o->srv, &item);
        if (r == -ETIMEDOUT)
            return fail(result, r, put ? a[0] : NULL);
        if (r == -ECONNRESET)
            r = -ECANCELED; /* the object died under us: the server stops */
        if (r == -ENOSPC || (put && r == -EINVAL))
            return fail(result, -ENOSPC, NULL);
        return r ? r : ret(result, put ? mv_none() : item);
    }
    NOARGS(m);
    if (strcmp(m, "join") == 0)
        return (r = mgr__shmq_join(s, o->srv)) == 0 ? ret(result, mv_none()) : r;
    if (strcmp(m, "task_done") == 0)
        return (r = mgr__shmq_task_done(s)) == 0 ? ret(result, mv_none()) : fail(result, r, NULL);
    size_t n = 0;
    bool full = false;
    if ((r = mgr__shmq_size(s, &n, &full)) != 0)
        return r;
    if (strcmp(m, "qsize") == 0)
        return ret(result, mv_int((int64_t)n));
    if (strcmp(m, "empty") == 0)
        return ret(result, mv_bool(n == 0));
    return ret(result, mv_bool(full));
}

int mgr__shm_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                  kart_obj **result, mobj **newobj)
{
    (void)cx;
    mshm *s = seg_of(o);
    switch (s->h->kind) {
    case MSHM_DICT:
        return dict_call(s, o, m, args, kwds, result, newobj);
    case MSHM_NS:
        return ns_call(s, m, args, kwds, result);
    case MSHM_VALUE:
        return value_call(s, m, args, kwds, result);
    default:
        return queue_call(s, o, m, args, kwds, result);
    }
}

int mgr__shm_repr(mobj *o, char *buf, size_t cap)
{
    mshm *s = seg_of(o);
    kart_obj *d = NULL;
    if (mgr__shmd_list(s, MSHMD_DICT, &d) != 0) {
        snprintf(buf, cap, "<%s object>", o->type->typeid);
        return 0;
    }
    if (s->h->kind == MSHM_DICT)
        mv_repr(d, buf, cap);
    else if (s->h->kind == MSHM_VALUE) {
        /* Value(typecode, value), as types.c's value_repr */
        char tc[64] = "?", v[400] = "?";
        const kart_obj *k, *x;
        if (mv_dict_entry(d, 0, &k, &x) == 0)
            mv_repr(x, tc, sizeof tc);
        if (mv_dict_entry(d, 1, &k, &x) == 0)
            mv_repr(x, v, sizeof v);
        snprintf(buf, cap, "Value(%s, %s)", tc, v);
    } else {
        /* Namespace(a=1, ...), names starting with '_' left out */
        size_t n = (size_t)snprintf(buf, cap, "Namespace(");
        bool first = true;
        for (size_t i = 0; n < cap && i < mv_len(d); i++) {
            const kart_obj *k, *x;
            mv_dict_entry(d, i, &k, &x);
            const char *ks = mv_get_str(k, NULL);
            if (!ks || ks[0] == '_')
                continue;
            n += (size_t)snprintf(buf + n, cap - n, "%s%s=", first ? "" : ", ", ks);
            if (n < cap)
                mv_repr(x, buf + n, cap - n);
            n = strlen(buf);
            first = false;
        }
        if (n < cap)
            snprintf(buf + n, cap - n, ")");
    }
    mv_free(d);
    return 0;
}

int mgr__shm_getvalue(mobj *o, kart_obj **out)
{
    mshm *s = seg_of(o);
    kart_obj *d = NULL;
    int r = mgr__shmd_list(s, MSHMD_DICT, &d);
    if (r || s->h->kind == MSHM_DICT) {
        if (r == 0)
            *out = d;
        return r;
    }
    /* a Namespace: multiprocessing.managers.Namespace with its dict */
    if (kart_obj_instance("multiprocessing.managers", "Namespace", d, out) == 0)
        return 0;
    mv_free(d);
    return -ENOMEM;
}

void mgr__shm_obj_free(mobj *o)
{
    mshm *s = seg_of(o);
    if (!s)
        return;
    mgr__shm_close(s);
    mgr__shm_unmap(s);
    o->shm = NULL;
}

/* ---- promotion ---- */

static int kind_of(const mobj *o)
{
    if (o->type->user)
        return 0;
    const char *t = o->type->typeid;
    if (strcmp(t, "dict") == 0)
        return MSHM_DICT;
    if (strcmp(t, "Queue") == 0 || strcmp(t, "JoinableQueue") == 0)
        return MSHM_QUEUE;
    if (strcmp(t, "Namespace") == 0)
        return MSHM_NS;
    if (strcmp(t, "Value") == 0)
        return MSHM_VALUE;
    return 0;
}

typedef struct push_arg {
    mshm *s;
    int protocol;
} push_arg;

static int push_item(void *arg, const kart_obj *item)
{
    push_arg *pa = arg;
    void *buf = NULL;
    size_t len = 0;
    int r = mv_pickle(item, pa->protocol, &buf, &len);
    if (r < 0)
        return r == -ENOMEM ? r : -EINVAL;
    r = mgr__shm_queue_push(pa->s, buf, len);
    free(buf);
    return r;
}

/* A Value's [typecode, value] as keys 0 and 1. */
static int value_fill(mshm *s, const kart_obj *l)
{
    int r = -ENOMEM;
    for (int64_t i = 0; i < 2; i++) {
        kart_obj *k = mv_int(i);
        r = k ? mgr__shmd_set(s, k, mv_item(l, (size_t)i), false, NULL) : -ENOMEM;
        mv_free(k);
        if (r)
            break;
    }
    return r;
}

/* Moves o into a segment (once). 0, -ENOTSUP (not a type of the fast
 * path), -ENOSPC (the contents do not fit), -ENOMEM, memfd errors. */
static int promote(mobj *o)
{
    int kind = kind_of(o);
    if (!kind)
        return -ENOTSUP;
    const kart_manager_options *opts = mgr__server_options(o->srv);
    pthread_mutex_lock(&o->mu);
    if (o->shm) {
        pthread_mutex_unlock(&o->mu);
        return 0;
    }
    mshm *s = NULL;
    int r = mgr__shm_new(&s, kind, opts->shm_size, opts->pickle_protocol);
    if (r == 0 && (kind == MSHM_DICT || kind == MSHM_NS))
        r = mgr__shm_dict_fill(s, o->data);
    else if (r == 0 && kind == MSHM_VALUE)
        r = value_fill(s, o->data);
    else if (r == 0) {
        int64_t maxsize = 0;
        uint64_t unfinished = 0;
        push_arg pa = {s, opts->pickle_protocol};
        r = mgr__queue_export(o, push_item, &pa, &maxsize, &unfinished);
        if (r == 0)
            mgr__shmq_setup(s, maxsize, unfinished);
    }
    if (r == 0) {
        if (kind == MSHM_DICT || kind == MSHM_NS)
            kart_obj_clear(o->data);
        __atomic_store_n(&o->shm, s, __ATOMIC_RELEASE);
        /* plain-path waiters re-check and find the segment */
        pthread_cond_broadcast(&o->cv);
    } else
        mgr__shm_unmap(s);
    pthread_mutex_unlock(&o->mu);
    return r;
}

/* ---- attach ---- */

#define ATTACH "kart_shm_attach"

/* (None, "kart_shm_attach", (ident,), {...}): its ident, else NULL. */
static const char *attach_ident(const kart_obj *req)
{
    if (mv_kind(req) != MV_TUPLE || mv_len(req) != 4 || mv_kind(mv_item(req, 0)) != MV_NONE ||
        !mv_is_str(mv_item(req, 1), ATTACH) || mv_kind(mv_item(req, 2)) != MV_TUPLE ||
        mv_len(mv_item(req, 2)) != 1)
        return NULL;
    return mv_get_str(mv_item(mv_item(req, 2), 0), NULL);
}

bool mgr__shm_is_attach(const void *buf, size_t len)
{
    /* a cheap look first: only a frame that names it is decoded here (any
     * other request, one that merely holds the word included, goes on to
     * the usual handling) */
    if (len >= 512 || !memmem(buf, len, ATTACH, sizeof ATTACH - 1))
        return false;
    kart_obj *req = NULL;
    bool yes = mv_unpickle(buf, len, &req, NULL, 0) == 0 && attach_ident(req) != NULL;
    mv_free(req);
    return yes;
}

static int send_byte(int fd, char byte, int passfd)
{
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (passfd >= 0) {
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &passfd, sizeof(int));
    }
    ssize_t n;
    while ((n = sendmsg(fd, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == 1 ? 0 : -errno;
}

/* Why the caller may not map the object (NULL: it may). */
static const char *refusal(mcx *cx)
{
    if (mgr__server_options(cx->srv)->no_shm)
        return "the server refuses the fast path (no_shm)";
    int fd = kart_conn_fileno(cx->conn);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 || ss.ss_family != AF_UNIX)
        return "not a unix-socket connection";
    struct ucred cr;
    socklen_t cl = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != geteuid())
        return "the client runs as another user";
    return NULL;
}

int mgr__shm_serve_attach(mcx *cx, const void *buf, size_t len)
{
    kart_obj *req = NULL;
    const char *why = NULL;
    mobj *o = NULL;
    if (mv_unpickle(buf, len, &req, NULL, 0) < 0)
        why = "bad attach request";
    const char *ident = why ? NULL : attach_ident(req);
    if (!why && !ident)
        why = "bad attach request";
    if (!why)
        why = refusal(cx);
    if (!why && !(o = mgr__obj_hold(cx->srv, ident)))
        why = "no such object";
    int r = 0;
    if (!why && (r = promote(o)) != 0)
        why = r == -ENOTSUP ? "not a type of the fast path" : "the segment could not be made";
    mshm *s = o && !why ? seg_of(o) : NULL;
    int fd = kart_conn_fileno(cx->conn);
    r = send_byte(fd, s ? 'F' : 'E', s ? s->fd : -1);
    if (o)
        mgr__obj_release(o);
    mv_free(req);
    if (r < 0)
        return r;
    kart_obj *reply = mv_tuple(2, mv_strz("#RETURN"), why ? mv_strz(why) : mv_none());
    void *out = NULL;
    size_t n = 0;
    r = reply ? mv_pickle(reply, 4, &out, &n) : -ENOMEM;
    mv_free(reply);
    if (r == 0)
        r = kart_conn_send_bytes(cx->conn, out, n);
    free(out);
    return r < 0 ? r : 0;
}

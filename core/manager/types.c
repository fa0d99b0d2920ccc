/*
 * core/manager/types.c — the shared-object types of SyncManager, each with
 * the method set its Python proxy exposes (Python 3.11's managers.py):
 * dict, list, Namespace, Value, Event, Lock, RLock, Queue, JoinableQueue,
 * and the Iterator that dict.__iter__ returns. Every method runs under the
 * object's mutex; blocking ones wait on its condition variable, so they
 * block only the calling client's server thread.
 */
#include "deadline.h"
#include "mgr_private.h"
#include "shm_path.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


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

static int unknown(kart_obj **result, const mobj *o, const char *m)
{
    return raise(result, mgr__exc("builtins", "AttributeError", "'%s' object has no attribute '%s'",
                                  o->type->typeid, m));
}

static int key_error(kart_obj **result, const kart_obj *k)
{
    return raise(result, mgr__exc_obj("builtins", "KeyError", k));
}

static int unhashable(kart_obj **result, const kart_obj *k)
{
    return raise(result, mgr__exc("builtins", "TypeError", "unhashable type: '%s'",
                                  kart_obj_type_name(kart_obj_type_of(k))));
}

static int repr_locked(mobj *o, const kart_obj *v, const char *pre, const char *post, char *buf,
                       size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "%s", pre);
    if (n < cap)
        mv_repr(v, buf + n, cap - n);
    n = strlen(buf);
    if (n < cap)
        snprintf(buf + n, cap - n, "%s", post);
    return 0;
}

/* ---------------------------------------------------------------- dict */

static const char *const dict_exposed[] = {
    "__contains__", "__delitem__", "__getitem__", "__iter__", "__len__", "__setitem__",
    "clear",        "copy",        "get",         "items",    "keys",    "pop",
    "popitem",      "setdefault",  "update",      "values",   NULL,
};

static int dict_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    kart_obj *d = mv_dict_new();
    if (!d)
        return -ENOMEM;
    /* dict(mapping_or_pairs=(), **kwds) */
    size_t na = mv_len(args);
    if (na > 1) {
        mv_free(d);
        *err = mgr__exc("builtins", "TypeError", "dict expected at most 1 argument, got %zu", na);
        return MCALL_ERROR;
    }
    const kart_obj *srcs[2] = {na ? mv_item(args, 0) : NULL, kwds};
    for (int s = 0; s < 2; s++) {
        const kart_obj *src = srcs[s];
        if (!src)
            continue;
        size_t pos = 0;
        const kart_obj *k, *v;
        int kind = mv_kind(src);
        int r;
        while ((r = kart_obj_next(src, &pos, &k, &v)) == 1) {
            if (kind != MV_DICT) {
                /* a sequence of pairs */
                if ((mv_kind(v) != MV_TUPLE && mv_kind(v) != MV_LIST) || mv_len(v) != 2) {
                    mv_free(d);
                    *err = mgr__exc("builtins", "TypeError",
                                    "cannot convert dictionary update sequence element to a pair");
                    return MCALL_ERROR;
                }
                k = mv_item(v, 0);
                v = mv_item(v, 1);
            }
            if (!kart_obj_hashable(k)) {
                mv_free(d);
                unhashable(err, k);
                return MCALL_ERROR;
            }
            if (mv_dict_set(d, mv_copy(k), mv_copy(v)) < 0) {
                mv_free(d);
                return -ENOMEM;
            }
        }
        if (r < 0) {
            mv_free(d);
            *err = mgr__exc("builtins", "TypeError", "'%s' object is not iterable",
                            kart_obj_type_name(kart_obj_type_of(src)));
            return MCALL_ERROR;
        }
    }
    o->data = d;
    return 0;
}

static void obj_data_free(mobj *o)
{
    mv_free(o->data);
}

/* Adds every pair of src (a dict, or a sequence of pairs) to d. */
static int dict_merge(kart_obj *d, const kart_obj *src, kart_obj **result)
{
    size_t pos = 0;
    const kart_obj *k, *v;
    int kind = mv_kind(src);
    int r;
    if (kind != MV_DICT && kind != MV_LIST && kind != MV_TUPLE)
        return raise(result, mgr__exc("builtins", "TypeError", "'%s' object is not iterable",
                                      kart_obj_type_name(kart_obj_type_of(src))));
    while ((r = kart_obj_next(src, &pos, &k, &v)) == 1) {
        if (kind != MV_DICT) {
            if ((mv_kind(v) != MV_TUPLE && mv_kind(v) != MV_LIST) || mv_len(v) != 2)
                return raise(result,
                             mgr__exc("builtins", "ValueError",
                                      "dictionary update sequence element has wrong length"));
            k = mv_item(v, 0);
            v = mv_item(v, 1);
        }
        if (!kart_obj_hashable(k))
            return unhashable(result, k);
        if (mv_dict_set(d, mv_copy(k), mv_copy(v)) < 0)
            return -ENOMEM;
    }
    return 0;
}

static kart_obj *dict_list(const kart_obj *d, int what)
{
    kart_obj *l = mv_list_new();
    size_t pos = 0;
    const kart_obj *k, *v;
    while (l && kart_obj_next(d, &pos, &k, &v) == 1) {
        kart_obj *item = what == 0   ? mv_copy(k)
                         : what == 1 ? mv_copy(v)
                                     : mv_tuple(2, mv_copy(k), mv_copy(v));
        if (mv_list_append(l, item) < 0) {
            mv_free(l);
            return NULL;
        }
    }
    return l;
}

extern const mtype mgr__iterator_type;

static int dict_call_locked(mobj *o, const char *m, const kart_obj *args, const kart_obj *kwds,
                            kart_obj **result, mobj **newobj)
{
    kart_obj *d = o->data;
    const kart_obj *a[2];
    const kart_obj *v;
    if (strcmp(m, "__getitem__") == 0 || strcmp(m, "__contains__") == 0 ||
        strcmp(m, "__delitem__") == 0) {
        BIND(m, 1, "key");
        if (!kart_obj_hashable(a[0]))
            return unhashable(result, a[0]);
        if (m[2] == 'c')
            return ret(result, mv_bool(kart_obj_dict_get(d, a[0], &v) == 0));
        if (m[2] == 'g')
            return kart_obj_dict_get(d, a[0], &v) == 0 ? ret(result, mv_copy(v))
                                                       : key_error(result, a[0]);
        return kart_obj_dict_pop(d, a[0], NULL) == 0 ? ret(result, mv_none())
                                                     : key_error(result, a[0]);
    }
    if (strcmp(m, "__setitem__") == 0) {
        BIND(m, 2, "key", "value");
        if (!kart_obj_hashable(a[0]))
            return unhashable(result, a[0]);
        if (mv_dict_set(d, mv_copy(a[0]), mv_copy(a[1])) < 0)
            return -ENOMEM;
        return ret(result, mv_none());
    }
    if (strcmp(m, "__len__") == 0) {
        NOARGS(m);
        return ret(result, mv_int((int64_t)mv_len(d)));
    }
    if (strcmp(m, "get") == 0) {
        BIND(m, 1, "key", "default");
        if (!kart_obj_hashable(a[0]))
            return unhashable(result, a[0]);
        return ret(result, mv_copy(kart_obj_dict_get(d, a[0], &v) == 0 ? v : a[1]));
    }
    if (strcmp(m, "setdefault") == 0) {
        BIND(m, 1, "key", "default");
        if (!kart_obj_hashable(a[0]))
            return unhashable(result, a[0]);
        if (kart_obj_dict_get(d, a[0], &v) == 0)
            return ret(result, mv_copy(v));
        if (mv_dict_set(d, mv_copy(a[0]), mv_copy(a[1])) < 0)
            return -ENOMEM;
        return ret(result, mv_copy(a[1]));
    }
    if (strcmp(m, "pop") == 0) {
        BIND(m, 1, "key", "default");
        if (!kart_obj_hashable(a[0]))
            return unhashable(result, a[0]);
        kart_obj *out = NULL;
        if (kart_obj_dict_pop(d, a[0], &out) == 0)
            return ret(result, out);
        return a[1] ? ret(result, mv_copy(a[1])) : key_error(result, a[0]);
    }
    if (strcmp(m, "popitem") == 0) {
        NOARGS(m);
        size_t n = mv_len(d);
        if (n == 0)
            return raise(result,
                         mgr__exc("builtins", "KeyError", "popitem(): dictionary is empty"));
        const kart_obj *k;
        mv_dict_entry(d, n - 1, &k, &v);
        kart_obj *key = mv_copy(k), *val = NULL;
        if (!key || kart_obj_dict_pop(d, key, &val) < 0) {
            mv_free(key);
            return -ENOMEM;
        }
        return ret(result, mv_tuple(2, key, val));
    }
    if (strcmp(m, "clear") == 0) {
        NOARGS(m);
        kart_obj_clear(d);
        return ret(result, mv_none());
    }
    if (strcmp(m, "copy") == 0) {
        NOARGS(m);
        return ret(result, mv_copy(d));
    }
    if (strcmp(m, "keys") == 0 || strcmp(m, "values") == 0 || strcmp(m, "items") == 0) {
        NOARGS(m);
        return ret(result, dict_list(d, m[0] == 'k' ? 0 : m[0] == 'v' ? 1 : 2));
    }
    if (strcmp(m, "update") == 0) {
        if (mv_len(args) > 1)
            return raise(result,
                         mgr__exc("builtins", "TypeError",
                                  "update expected at most 1 argument, got %zu", mv_len(args)));
        int r = mv_len(args) ? dict_merge(d, mv_item(args, 0), result) : 0;
        if (r == 0 && mv_len(kwds))
            r = dict_merge(d, kwds, result);
        return r ? r : ret(result, mv_none());
    }
    if (strcmp(m, "__iter__") == 0) {
        NOARGS(m);
        kart_obj *keys = dict_list(d, 0);
        if (!keys)
            return -ENOMEM;
        kart_obj *ia = mv_tuple(1, keys);
        if (!ia)
            return -ENOMEM;
        kart_obj *err = NULL;
        int r = mgr__obj_create(o->srv, &mgr__iterator_type, ia, NULL, newobj, &err);
        mv_free(ia);
        if (r != 0)
            return r == MCALL_ERROR ? raise(result, err) : r;
        return MCALL_PROXY;
    }
    return unknown(result, o, m);
}

static int locked_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                       kart_obj **result, mobj **newobj,
                       int (*fn)(mobj *, const char *, const kart_obj *, const kart_obj *,
                                 kart_obj **, mobj **))
{
    pthread_mutex_lock(&o->mu);
    int r = fn(o, m, args, kwds, result, newobj);
    pthread_mutex_unlock(&o->mu);
    return r;
}

/* A dict or queue that a same-host client attached to lives in its shared
 * segment from then on (shm_server.c); o->shm is set once, under o->mu. */
static bool promoted(mobj *o)
{
    return __atomic_load_n(&o->shm, __ATOMIC_ACQUIRE) != NULL;
}

/* Locks o->mu for the plain path; false (and unlocked) once o is
 * promoted: the segment holds the object from then on. */
static bool lock_plain(mobj *o)
{
    pthread_mutex_lock(&o->mu);
    if (!o->shm)
        return true;
    pthread_mutex_unlock(&o->mu);
    return false;
}

static int dict_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                     kart_obj **result, mobj **newobj)
{
    pthread_mutex_lock(&o->mu);
    if (o->shm) {
        pthread_mutex_unlock(&o->mu);
        return mgr__shm_call(o, cx, m, args, kwds, result, newobj);
    }
    int r = dict_call_locked(o, m, args, kwds, result, newobj);
    pthread_mutex_unlock(&o->mu);
    return r;
}

static int plain_repr(mobj *o, char *buf, size_t cap)
{
    if (!lock_plain(o))
        return mgr__shm_repr(o, buf, cap);
    repr_locked(o, o->data, "", "", buf, cap);
    pthread_mutex_unlock(&o->mu);
    return 0;
}

static int plain_getvalue(mobj *o, kart_obj **out)
{
    if (!lock_plain(o))
        return mgr__shm_getvalue(o, out);
    *out = mv_copy(o->data);
    pthread_mutex_unlock(&o->mu);
    return *out ? 0 : -ENOMEM;
}

static const mtype dict_type = {
    .typeid = "dict",
    .exposed = dict_exposed,
    .create = dict_create,
    .destroy = obj_data_free,
    .call = dict_call,
    .repr = plain_repr,
    .getvalue = plain_getvalue,
};

/* ------------------------------------------------------------ Iterator */

static const char *const iterator_exposed[] = {"__next__", "send", "throw", "close", NULL};

typedef struct iter_data {
    kart_obj *items;
    size_t pos;
    bool closed;
} iter_data;

static int iterator_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    iter_data *it = calloc(1, sizeof *it);
    if (!it)
        return -ENOMEM;
    it->items = mv_copy(mv_item(args, 0));
    if (!it->items) {
        free(it);
        return -ENOMEM;
    }
    o->data = it;
    return 0;
}

static void iterator_destroy(mobj *o)
{
    iter_data *it = o->data;
    mv_free(it->items);
    free(it);
}

static int iterator_call_locked(mobj *o, const char *m, const kart_obj *args, const kart_obj *kwds,
                                kart_obj **result, mobj **newobj)
{
    iter_data *it = o->data;
    if (strcmp(m, "close") == 0) {
        it->closed = true;
        return ret(result, mv_none());
    }
    if (strcmp(m, "throw") == 0)
        return raise(result, mgr__exc("builtins", "TypeError",
                                      "kart: throw() is not supported on a list iterator"));
    /* __next__ and send(None) */
    if (it->closed || it->pos >= mv_len(it->items)) {
        kart_obj *t = mv_tuple(0);
        return raise(result, t ? mv_error("builtins", "StopIteration", t) : NULL);
    }
    return ret(result, mv_copy(mv_item(it->items, it->pos++)));
}

static int iterator_call(mobj *o, mcx *cx, const char *m, const kart_obj *args,
                         const kart_obj *kwds, kart_obj **result, mobj **newobj)
{
    return locked_call(o, cx, m, args, kwds, result, newobj, iterator_call_locked);
}

const mtype mgr__iterator_type = {
    .typeid = "Iterator",
    .exposed = iterator_exposed,
    .create = iterator_create,
    .destroy = iterator_destroy,
    .call = iterator_call,
};

/* ---------------------------------------------------------------- list */

static const char *const list_exposed[] = {
    "__add__",  "__contains__", "__delitem__", "__getitem__", "__len__",  "__mul__", "__reversed__",
    "__rmul__", "__setitem__",  "append",      "count",       "extend",   "index",   "insert",
    "pop",      "remove",       "reverse",     "sort",        "__imul__", NULL,
};

/* Copies the items of an iterable value (list, tuple, dict keys, str
 * characters are not supported) onto l. */
static int extend_from(kart_obj *l, const kart_obj *src, kart_obj **result)
{
    int kind = mv_kind(src);
    if (kind != MV_LIST && kind != MV_TUPLE && kind != MV_DICT)
        return raise(result, mgr__exc("builtins", "TypeError",
                                      "'%s' object is not iterable (kart: lists, tuples, dicts)",
                                      kart_obj_type_name(kart_obj_type_of(src))));
    size_t pos = 0;
    const kart_obj *k, *v;
    while (kart_obj_next(src, &pos, &k, &v) == 1)
        if (mv_list_append(l, mv_copy(kind == MV_DICT ? k : v)) < 0)
            return -ENOMEM;
    return 0;
}

static int list_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    if (mv_len(args) > 1 || mv_len(kwds)) {
        *err = mgr__exc("builtins", "TypeError", "list expected at most 1 argument");
        return MCALL_ERROR;
    }
    kart_obj *l = mv_list_new();
    if (!l)
        return -ENOMEM;
    if (mv_len(args)) {
        int r = extend_from(l, mv_item(args, 0), err);
        if (r) {
            mv_free(l);
            return r;
        }
    }
    o->data = l;
    return 0;
}

/* An index argument: an int (or bool); TypeError otherwise. */
static int index_arg(const kart_obj *a, int64_t *i, kart_obj **result)
{
    int k = mv_kind(a);
    if ((k != MV_INT && k != MV_BOOL && k != MV_BIGINT) ||
        (mv_get_int(a, i) < 0 && k != MV_BIGINT)) {
        return raise(result, mgr__exc("builtins", "TypeError",
                                      "list indices must be integers, not %s (kart: no slices)",
                                      kart_obj_type_name(kart_obj_type_of(a))));
    }
    if (k == MV_BIGINT)
        *i = INT64_MAX / 2;
    return 0;
}

static kart_obj *repeat(const kart_obj *l, int64_t n)
{
    kart_obj *out = mv_list_new();
    for (int64_t i = 0; out && i < n; i++) {
        size_t pos = 0;
        const kart_obj *v;
        while (kart_obj_next(l, &pos, NULL, &v) == 1)
            if (mv_list_append(out, mv_copy(v)) < 0) {
                mv_free(out);
                return NULL;
            }
    }
    return out;
}

static int count_arg(const kart_obj *a, int64_t *n, size_t len, kart_obj **result)
{
    int k = mv_kind(a);
    if (k != MV_INT && k != MV_BOOL)
        return raise(result, mgr__exc("builtins", "TypeError",
                                      "can't multiply sequence by non-int of type '%s'",
                                      kart_obj_type_name(kart_obj_type_of(a))));
    mv_get_int(a, n);
    if (*n < 0)
        *n = 0;
    if (len && (uint64_t)*n > (SIZE_MAX / 64) / len)
        return raise(result, mgr__exc("builtins", "MemoryError", "list too large"));
    return 0;
}

static void reverse_range(kart_obj *l, size_t lo, size_t hi);

/* insertion sort on a few, merge-free: a simple stable sort (binary
 * insertion; O(n^2) moves but fine for shared lists of modest size) */
static int sort_list(kart_obj *l, bool reverse, kart_obj **result)
{
    size_t n = mv_len(l);
    const kart_obj **v = malloc((n ? n : 1) * sizeof *v);
    kart_obj **owned = malloc((n ? n : 1) * sizeof *owned);
    if (!v || !owned) {
        free(v);
        free(owned);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = mv_item(l, i);
    bool bad = false;
    /* stable merge sort on pointers */
    const kart_obj **tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp) {
        free(v);
        free(owned);
        return -ENOMEM;
    }
    for (size_t w = 1; w < n && !bad; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c = mgr__compare(v[j], v[i], &bad);
                if (reverse ? c > 0 : c < 0)
                    tmp[k++] = v[j++];
                else
                    tmp[k++] = v[i++];
            }
            while (i < mid)
                tmp[k++] = v[i++];
            while (j < hi)
                tmp[k++] = v[j++];
        }
        memcpy(v, tmp, n * sizeof *v);
    }
    free(tmp);
    if (bad) {
        free(v);
        free(owned);
        return raise(
            result, mgr__exc("builtins", "TypeError", "'<' not supported between these instances"));
    }
    /* rebuild: copy in the new order, then swap in */
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        owned[i] = mv_copy(v[i]);
        if (!owned[i])
            r = -ENOMEM;
    }
    if (r == 0) {
        kart_obj_clear(l);
        for (size_t i = 0; i < n; i++) {
            if (kart_obj_append(l, owned[i]) < 0)
                mv_free(owned[i]);
        }
    } else {
        for (size_t i = 0; i < n; i++)
            mv_free(owned[i]);
    }
    free(v);
    free(owned);
    return r;
}

static void reverse_range(kart_obj *l, size_t lo, size_t hi)
{
    while (lo + 1 < hi) {
        kart_obj *a = NULL, *b = NULL;
        kart_obj_remove(l, hi - 1, &b);
        kart_obj_remove(l, lo, &a);
        kart_obj_insert(l, lo, b);
        kart_obj_insert(l, hi - 1, a);
        lo++;
        hi--;
    }
}

static int list_call_locked(mobj *o, const char *m, const kart_obj *args, const kart_obj *kwds,
                            kart_obj **result, mobj **newobj)
{
    kart_obj *l = o->data;
    size_t n = mv_len(l);
    const kart_obj *a[3];
    int64_t i;
    int r;
    if (strcmp(m, "__len__") == 0) {
        NOARGS(m);
        return ret(result, mv_int((int64_t)n));
    }
    if (strcmp(m, "append") == 0) {
        BIND(m, 1, "object");
        return mv_list_append(l, mv_copy(a[0])) < 0 ? -ENOMEM : ret(result, mv_none());
    }
    if (strcmp(m, "__getitem__") == 0 || strcmp(m, "__setitem__") == 0 ||
        strcmp(m, "__delitem__") == 0) {
        bool set = m[2] == 's';
        if (set)
            BIND(m, 2, "index", "value");
        else
            BIND(m, 1, "index");
        if ((r = index_arg(a[0], &i, result)) != 0)
            return r;
        if (i < 0)
            i += (int64_t)n;
        if (i < 0 || (uint64_t)i >= n)
            return raise(result, mgr__exc("builtins", "IndexError",
                                          m[2] == 'g' ? "list index out of range"
                                                      : "list assignment index out of range"));
        if (m[2] == 'g')
            return ret(result, mv_copy(mv_item(l, (size_t)i)));
        if (set) {
            kart_obj *c = mv_copy(a[1]);
            if (!c || kart_obj_set_item(l, (size_t)i, c) < 0) {
                mv_free(c);
                return -ENOMEM;
            }
        } else {
            kart_obj_remove(l, (size_t)i, NULL);
        }
        return ret(result, mv_none());
    }
    if (strcmp(m, "__contains__") == 0 || strcmp(m, "count") == 0) {
        BIND(m, 1, "value");
        int64_t c = 0;
        for (size_t j = 0; j < n; j++)
            c += mv_equal(mv_item(l, j), a[0]);
        return ret(result, m[0] == 'c' ? mv_int(c) : mv_bool(c > 0));
    }
    if (strcmp(m, "index") == 0) {
        BIND(m, 1, "value", "start", "stop");
        int64_t lo = 0, hi = (int64_t)n;
        if (a[1] && (r = index_arg(a[1], &lo, result)) != 0)
            return r;
        if (a[2] && (r = index_arg(a[2], &hi, result)) != 0)
            return r;
        if (lo < 0)
            lo = lo + (int64_t)n < 0 ? 0 : lo + (int64_t)n;
        if (hi < 0)
            hi = hi + (int64_t)n < 0 ? 0 : hi + (int64_t)n;
        for (int64_t j = lo; j < hi && (uint64_t)j < n; j++)
            if (mv_equal(mv_item(l, (size_t)j), a[0]))
                return ret(result, mv_int(j));
        char rep[200];
        mv_repr(a[0], rep, sizeof rep);
        return raise(result, mgr__exc("builtins", "ValueError", "%s is not in list", rep));
    }
    if (strcmp(m, "insert") == 0) {
        BIND(m, 2, "index", "object");
        if ((r = index_arg(a[0], &i, result)) != 0)
            return r;
        if (i < 0)
            i = i + (int64_t)n < 0 ? 0 : i + (int64_t)n;
        if ((uint64_t)i > n)
            i = (int64_t)n;
        kart_obj *c = mv_copy(a[1]);
        if (!c || kart_obj_insert(l, (size_t)i, c) < 0) {
            mv_free(c);
            return -ENOMEM;
        }
        return ret(result, mv_none());
    }
    if (strcmp(m, "pop") == 0) {
        BIND(m, 0, "index");
        i = -1;
        if (a[0] && (r = index_arg(a[0], &i, result)) != 0)
            return r;
        if (n == 0)
            return raise(result, mgr__exc("builtins", "IndexError", "pop from empty list"));
        if (i < 0)
            i += (int64_t)n;
        if (i < 0 || (uint64_t)i >= n)
            return raise(result, mgr__exc("builtins", "IndexError", "pop index out of range"));
        kart_obj *out = NULL;
        kart_obj_remove(l, (size_t)i, &out);
        return ret(result, out);
    }
    if (strcmp(m, "remove") == 0) {
        BIND(m, 1, "value");
        for (size_t j = 0; j < n; j++)
            if (mv_equal(mv_item(l, j), a[0])) {
                kart_obj_remove(l, j, NULL);
                return ret(result, mv_none());
            }
        return raise(result, mgr__exc("builtins", "ValueError", "list.remove(x): x not in list"));
    }
    if (strcmp(m, "reverse") == 0) {
        NOARGS(m);
        reverse_range(l, 0, n);
        return ret(result, mv_none());
    }
    if (strcmp(m, "sort") == 0) {
        if (mv_len(args))
            return raise(result,
                         mgr__exc("builtins", "TypeError", "sort() takes no positional arguments"));
        BIND(m, 0, "key", "reverse");
        if (a[0] && mv_kind(a[0]) != MV_NONE)
            return raise(result, mgr__exc("builtins", "TypeError",
                                          "kart: sort(key=...) cannot run a function"));
        r = sort_list(l, a[1] && mv_get_bool(a[1]), result);
        return r ? r : ret(result, mv_none());
    }
    if (strcmp(m, "extend") == 0) {
        BIND(m, 1, "iterable");
        r = extend_from(l, a[0], result);
        return r ? r : ret(result, mv_none());
    }
    if (strcmp(m, "__add__") == 0) {
        BIND(m, 1, "value");
        if (mv_kind(a[0]) != MV_LIST)
            return raise(result, mgr__exc("builtins", "TypeError",
                                          "can only concatenate list (not \"%s\") to list",
                                          kart_obj_type_name(kart_obj_type_of(a[0]))));
        kart_obj *out = mv_copy(l);
        if (!out || extend_from(out, a[0], result) != 0) {
            mv_free(out);
            return -ENOMEM;
        }
        return ret(result, out);
    }
    if (strcmp(m, "__mul__") == 0 || strcmp(m, "__rmul__") == 0 || strcmp(m, "__imul__") == 0) {
        BIND(m, 1, "value");
        if ((r = count_arg(a[0], &i, n, result)) != 0)
            return r;
        kart_obj *out = repeat(l, i);
        if (!out)
            return -ENOMEM;
        if (m[2] != 'i')
            return ret(result, out);
        kart_obj_clear(l);
        size_t pos = 0;
        const kart_obj *v;
        while (kart_obj_next(out, &pos, NULL, &v) == 1)
            mv_list_append(l, mv_copy(v));
        return ret(result, out);
    }
    if (strcmp(m, "__reversed__") == 0) {
        /* Python returns a list_reverseiterator; kart a reversed list copy
         * (iterating it gives the same items) */
        NOARGS(m);
        kart_obj *out = mv_copy(l);
        if (!out)
            return -ENOMEM;
        reverse_range(out, 0, n);
        return ret(result, out);
    }
    return unknown(result, o, m);
}

static int list_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                     kart_obj **result, mobj **newobj)
{
    return locked_call(o, cx, m, args, kwds, result, newobj, list_call_locked);
}

static const mtype list_type = {
    .typeid = "list",
    .exposed = list_exposed,
    .create = list_create,
    .destroy = obj_data_free,
    .call = list_call,
    .repr = plain_repr,
    .getvalue = plain_getvalue,
};

/* Python's ordering for sort(): numbers with numbers, str with str, bytes
 * with bytes, tuples and lists item by item. */
int mgr__compare(const kart_obj *a, const kart_obj *b, bool *bad)
{
    int ka = mv_kind(a), kb = mv_kind(b);
    bool na = ka == MV_INT || ka == MV_BOOL || ka == MV_FLOAT || ka == MV_BIGINT;
    bool nb = kb == MV_INT || kb == MV_BOOL || kb == MV_FLOAT || kb == MV_BIGINT;
    if (na && nb) {
        int64_t x, y;
        if (ka != MV_FLOAT && kb != MV_FLOAT && mv_get_int(a, &x) == 0 && mv_get_int(b, &y) == 0)
            return x < y ? -1 : x > y;
        double dx, dy;
        if (mv_get_float(a, &dx) < 0 || mv_get_float(b, &dy) < 0) {
            *bad = true;
            return 0;
        }
        return dx < dy ? -1 : dx > dy;
    }
    if ((ka == MV_STR && kb == MV_STR) || (ka == MV_BYTES && kb == MV_BYTES)) {
        size_t la, lb;
        const char *sa = ka == MV_STR ? mv_get_str(a, &la) : mv_get_bytes(a, &la);
        const char *sb = kb == MV_STR ? mv_get_str(b, &lb) : mv_get_bytes(b, &lb);
        int c = memcmp(sa, sb, la < lb ? la : lb);
        return c ? (c < 0 ? -1 : 1) : (la < lb ? -1 : la > lb);
    }
    if ((ka == MV_TUPLE && kb == MV_TUPLE) || (ka == MV_LIST && kb == MV_LIST)) {
        size_t la = mv_len(a), lb = mv_len(b);
        for (size_t i = 0; i < la && i < lb; i++) {
            if (mv_equal(mv_item(a, i), mv_item(b, i)))
                continue;
            return mgr__compare(mv_item(a, i), mv_item(b, i), bad);
        }
        return la < lb ? -1 : la > lb;
    }
    *bad = true;
    return 0;
}

/* ----------------------------------------------------------- Namespace */

static const char *const ns_exposed[] = {"__getattribute__", "__setattr__", "__delattr__", NULL};

static int ns_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    if (mv_len(args)) {
        *err = mgr__exc("builtins", "TypeError", "Namespace() takes keyword arguments only");
        return MCALL_ERROR;
    }
    o->data = kwds ? mv_copy(kwds) : mv_dict_new();
    return o->data ? 0 : -ENOMEM;
}

static int ns_call_locked(mobj *o, const char *m, const kart_obj *args, const kart_obj *kwds,
                          kart_obj **result, mobj **newobj)
{
    kart_obj *d = o->data;
    const kart_obj *a[2], *v;
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
    if (strcmp(m, "__setattr__") == 0)
        return mv_dict_set(d, mv_copy(a[0]), mv_copy(a[1])) < 0 ? -ENOMEM : ret(result, mv_none());
    bool get = strcmp(m, "__getattribute__") == 0;
    if (get && kart_obj_dict_get(d, a[0], &v) == 0)
        return ret(result, mv_copy(v));
    if (!get && kart_obj_dict_pop(d, a[0], NULL) == 0)
        return ret(result, mv_none());
    return raise(result, mgr__exc("builtins", "AttributeError",
                                  get ? "'Namespace' object has no attribute '%.*s'" : "%.*s",
                                  (int)nl, name));
}

/* A promoted object (Namespace, Value, dict) goes to shm_server.c; the
 * check is under o->mu, which the promotion holds. */
static int promoted_or_locked(mobj *o, mcx *cx, const char *m, const kart_obj *args,
                              const kart_obj *kwds, kart_obj **result, mobj **newobj,
                              int (*fn)(mobj *, const char *, const kart_obj *, const kart_obj *,
                                        kart_obj **, mobj **))
{
    pthread_mutex_lock(&o->mu);
    if (o->shm) {
        pthread_mutex_unlock(&o->mu);
        return mgr__shm_call(o, cx, m, args, kwds, result, newobj);
    }
    int r = fn(o, m, args, kwds, result, newobj);
    pthread_mutex_unlock(&o->mu);
    return r;
}

static int ns_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                   kart_obj **result, mobj **newobj)
{
    return promoted_or_locked(o, cx, m, args, kwds, result, newobj, ns_call_locked);
}

static int ns_repr(mobj *o, char *buf, size_t cap)
{
    if (!lock_plain(o))
        return mgr__shm_repr(o, buf, cap);
    size_t n = (size_t)snprintf(buf, cap, "Namespace(");
    size_t pos = 0;
    const kart_obj *k, *v;
    bool first = true;
    while (n < cap && kart_obj_next(o->data, &pos, &k, &v) == 1) {
        const char *ks = mv_get_str(k, NULL);
        if (!ks || ks[0] == '_')
            continue;
        n += (size_t)snprintf(buf + n, cap - n, "%s%s=", first ? "" : ", ", ks);
        if (n < cap)
            mv_repr(v, buf + n, cap - n);
        n = strlen(buf);
        first = false;
    }
    if (n < cap)
        snprintf(buf + n, cap - n, ")");
    pthread_mutex_unlock(&o->mu);
    return 0;
}

static int ns_getvalue(mobj *o, kart_obj **out)
{
    if (!lock_plain(o))
        return mgr__shm_getvalue(o, out);
    kart_obj *st = mv_copy(o->data);
    pthread_mutex_unlock(&o->mu);
    if (st && kart_obj_instance("multiprocessing.managers", "Namespace", st, out) == 0)
        return 0;
    mv_free(st);
    return -ENOMEM;
}

static const mtype ns_type = {
    .typeid = "Namespace",
    .exposed = ns_exposed,
    .create = ns_create,
    .destroy = obj_data_free,
    .call = ns_call,
    .repr = ns_repr,
    .getvalue = ns_getvalue,
};

/* --------------------------------------------------------------- Value */

static const char *const value_exposed[] = {"get", "set", NULL};

/* data: the tuple-free pair kept as a 2-list [typecode, value] */
static int value_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    const kart_obj *a[3];
    int r = mgr__args("Value", args, kwds, NAMES("typecode", "value", "lock"), 2, 3, a, err);
    if (r)
        return r;
    kart_obj *l = mv_list_new();
    if (!l || mv_list_append(l, mv_copy(a[0])) < 0 || mv_list_append(l, mv_copy(a[1])) < 0) {
        mv_free(l);
        return -ENOMEM;
    }
    o->data = l;
    return 0;
}

static int value_call_locked(mobj *o, const char *m, const kart_obj *args, const kart_obj *kwds,
                             kart_obj **result, mobj **newobj)
{
    const kart_obj *a[1];
    if (strcmp(m, "get") == 0) {
        NOARGS(m);
        return ret(result, mv_copy(mv_item(o->data, 1)));
    }
    BIND(m, 1, "value");
    kart_obj *c = mv_copy(a[0]);
    if (!c || kart_obj_set_item(o->data, 1, c) < 0) {
        mv_free(c);
        return -ENOMEM;
    }
    return ret(result, mv_none());
}

static int value_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                      kart_obj **result, mobj **newobj)
{
    return promoted_or_locked(o, cx, m, args, kwds, result, newobj, value_call_locked);
}

static int value_repr(mobj *o, char *buf, size_t cap)
{
    char tc[64], v[400];
    if (!lock_plain(o))
        return mgr__shm_repr(o, buf, cap);
    mv_repr(mv_item(o->data, 0), tc, sizeof tc);
    mv_repr(mv_item(o->data, 1), v, sizeof v);
    pthread_mutex_unlock(&o->mu);
    snprintf(buf, cap, "Value(%s, %s)", tc, v);
    return 0;
}

static const mtype value_type = {
    .typeid = "Value",
    .exposed = value_exposed,
    .create = value_create,
    .destroy = obj_data_free,
    .call = value_call,
    .repr = value_repr,
};

/* --------------------------------------------------------------- Event */

static const char *const event_exposed[] = {"is_set", "set", "clear", "wait", NULL};

typedef struct flag_data {
    bool flag;
} flag_data;

static int event_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    if (mv_len(args) || mv_len(kwds)) {
        *err = mgr__exc("builtins", "TypeError", "Event() takes no arguments");
        return MCALL_ERROR;
    }
    o->data = calloc(1, sizeof(flag_data));
    return o->data ? 0 : -ENOMEM;
}

static void free_data(mobj *o)
{
    free(o->data);
}

static int event_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                      kart_obj **result, mobj **newobj)
{
    flag_data *e = o->data;
    const kart_obj *a[1];
    if (strcmp(m, "wait") == 0) {
        BIND(m, 0, "timeout");
        int64_t dl;
        int r = mgr__timeout(a[0], &dl, true, result);
        if (r)
            return r;
        pthread_mutex_lock(&o->mu);
        while (!e->flag && r == 0)
            r = mgr__wait(o, dl);
        bool f = e->flag;
        pthread_mutex_unlock(&o->mu);
        return r == -ECANCELED ? r : ret(result, mv_bool(f));
    }
    NOARGS(m);
    pthread_mutex_lock(&o->mu);
    bool f = e->flag;
    if (strcmp(m, "set") == 0) {
        e->flag = true;
        pthread_cond_broadcast(&o->cv);
    } else if (strcmp(m, "clear") == 0) {
        e->flag = false;
    }
    pthread_mutex_unlock(&o->mu);
    return ret(result, strcmp(m, "is_set") == 0 ? mv_bool(f) : mv_none());
}

static int event_repr(mobj *o, char *buf, size_t cap)
{
    pthread_mutex_lock(&o->mu);
    bool f = ((flag_data *)o->data)->flag;
    pthread_mutex_unlock(&o->mu);
    snprintf(buf, cap, "<threading.Event: %s>", f ? "set" : "unset");
    return 0;
}

static const mtype event_type = {
    .typeid = "Event",
    .exposed = event_exposed,
    .create = event_create,
    .destroy = free_data,
    .call = event_call,
    .repr = event_repr,
};

/* --------------------------------------------------------- Lock, RLock */

static const char *const acquirer_exposed[] = {"acquire", "release", NULL};

typedef struct lock_data {
    bool recursive;
    uint64_t owner; /* the connection serial that holds it; 0: free */
    unsigned long count;
    bool owner_died; /* released by lock_client_gone; the next acquirer is told */
} lock_data;

/* The value an acquire that took l returns (o->mu held): True, or for a
 * kart client the str "ownerdead" when the previous holder's connection
 * ended while holding it (Python clients get True, as Python's). */
static kart_obj *acquired_value(lock_data *l, mcx *cx)
{
    if (!l->owner_died)
        return mv_bool(true);
    l->owner_died = false;
    return cx->kart ? mv_strz("ownerdead") : mv_bool(true);
}

static int lock_create_common(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err,
                              bool recursive)
{
    if (mv_len(args) || mv_len(kwds)) {
        *err = mgr__exc("builtins", "TypeError", "%s() takes no arguments",
                        recursive ? "RLock" : "Lock");
        return MCALL_ERROR;
    }
    lock_data *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->recursive = recursive;
    o->data = l;
    return 0;
}

static int lock_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    return lock_create_common(o, args, kwds, err, false);
}

static int rlock_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    return lock_create_common(o, args, kwds, err, true);
}

static int lock_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                     kart_obj **result, mobj **newobj)
{
    lock_data *l = o->data;
    const kart_obj *a[2];
    if (strcmp(m, "release") == 0) {
        NOARGS(m);
        pthread_mutex_lock(&o->mu);
        const char *bad = NULL;
        if (l->count == 0)
            bad = l->recursive ? "cannot release un-acquired lock" : "release unlocked lock";
        else if (l->recursive && l->owner != cx->serial)
            bad = "cannot release un-acquired lock";
        else if (--l->count == 0) {
            l->owner = 0;
            pthread_cond_broadcast(&o->cv);
        }
        pthread_mutex_unlock(&o->mu);
        return bad ? raise(result, mgr__exc("builtins", "RuntimeError", "%s", bad))
                   : ret(result, mv_none());
    }
    BIND(m, 0, "blocking", "timeout");
    bool blocking = !a[0] || mv_get_bool(a[0]);
    double t = -1;
    if (a[1] && mv_get_float(a[1], &t) < 0)
        return raise(result, mgr__exc("builtins", "TypeError", "timeout must be a number"));
    if (!blocking && t != -1)
        return raise(result, mgr__exc("builtins", "ValueError",
                                      "can't specify a timeout for a non-blocking call"));
    if (t < 0 && t != -1)
        return raise(result, mgr__exc("builtins", "ValueError",
                                      "timeout value must be a non-negative number"));
    int64_t dl = !blocking ? kart_now_ns()
                 : t < 0   ? KART__NO_DEADLINE
                           : kart__deadline((int64_t)(t * 1e9));
    pthread_mutex_lock(&o->mu);
    int r = 0;
    kart_obj *got = NULL;
    for (;;) {
        if (l->count == 0 || (l->recursive && l->owner == cx->serial)) {
            l->count++;
            l->owner = cx->serial;
            got = acquired_value(l, cx);
            break;
        }
        if (!blocking || (r = mgr__wait(o, dl)) != 0)
            break;
    }
    pthread_mutex_unlock(&o->mu);
    if (r == -ECANCELED) {
        mv_free(got);
        return r;
    }
    return ret(result, got ? got : mv_bool(false));
}

/* A client that goes away while holding the lock releases it (Python's
 * manager would keep it locked forever). */
static void lock_client_gone(mobj *o, mcx *cx)
{
    lock_data *l = o->data;
    pthread_mutex_lock(&o->mu);
    if (l->count && l->owner == cx->serial) {
        l->count = 0;
        l->owner = 0;
        l->owner_died = true;
        pthread_cond_broadcast(&o->cv);
    }
    pthread_mutex_unlock(&o->mu);
}

static int lock_repr(mobj *o, char *buf, size_t cap)
{
    lock_data *l = o->data;
    pthread_mutex_lock(&o->mu);
    if (l->recursive)
        snprintf(buf, cap, "<%s _thread.RLock object owner=%" PRIu64 " count=%lu>",
                 l->count ? "locked" : "unlocked", l->owner, l->count);
    else
        snprintf(buf, cap, "<%s _thread.lock object>", l->count ? "locked" : "unlocked");
    pthread_mutex_unlock(&o->mu);
    return 0;
}

static const mtype lock_type = {
    .typeid = "Lock",
    .exposed = acquirer_exposed,
    .create = lock_create,
    .destroy = free_data,
    .call = lock_call,
    .repr = lock_repr,
    .client_gone = lock_client_gone,
};

static const mtype rlock_type = {
    .typeid = "RLock",
    .exposed = acquirer_exposed,
    .create = rlock_create,
    .destroy = free_data,
    .call = lock_call,
    .repr = lock_repr,
    .client_gone = lock_client_gone,
};

/* --------------------------------------------------------------- Queue */

static const char *const queue_exposed[] = {
    "empty", "full", "get", "get_nowait", "join", "put", "put_nowait", "qsize", "task_done", NULL,
};

typedef struct queue_data {
    kart_obj **ring;
    size_t cap, head, len;
    int64_t maxsize; /* <= 0: unbounded */
    uint64_t unfinished;
} queue_data;

static int queue_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    const kart_obj *a[1];
    int r = mgr__args("Queue", args, kwds, NAMES("maxsize"), 0, 1, a, err);
    if (r)
        return r;
    queue_data *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    if (a[0] && mv_get_int(a[0], &q->maxsize) < 0) {
        free(q);
        *err = mgr__exc("builtins", "TypeError", "maxsize must be an int");
        return MCALL_ERROR;
    }
    o->data = q;
    return 0;
}

static void queue_destroy(mobj *o)
{
    queue_data *q = o->data;
    for (size_t i = 0; i < q->len; i++)
        mv_free(q->ring[(q->head + i) % q->cap]);
    free(q->ring);
    free(q);
}

static bool queue_full(const queue_data *q)
{
    return q->maxsize > 0 && q->len >= (uint64_t)q->maxsize;
}

static int queue_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                      kart_obj **result, mobj **newobj)
{
    queue_data *q = o->data;
    const kart_obj *a[3];
    int r = 0;
    if (promoted(o))
        return mgr__shm_call(o, cx, m, args, kwds, result, newobj);
    if (strcmp(m, "put") == 0 || strcmp(m, "put_nowait") == 0) {
        bool block;
        int64_t dl = KART__NO_DEADLINE;
        if (m[3] == '_') {
            BIND(m, 1, "item");
            block = false;
        } else {
            BIND(m, 1, "item", "block", "timeout");
            block = !a[1] || mv_get_bool(a[1]);
            if (block && (r = mgr__timeout(a[2], &dl, false, result)) != 0)
                return r;
        }
        kart_obj *item = mv_copy(a[0]);
        if (!item)
            return -ENOMEM;
        pthread_mutex_lock(&o->mu);
        while (!o->shm && queue_full(q) && r == 0)
            r = block ? mgr__wait(o, dl) : -ETIMEDOUT;
        if (o->shm) { /* promoted while we waited: go on there */
            pthread_mutex_unlock(&o->mu);
            mv_free(item);
            return mgr__shm_call(o, cx, m, args, kwds, result, newobj);
        }
        if (r == 0 && q->len == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 16;
            kart_obj **ring = malloc(cap * sizeof *ring);
            if (!ring)
                r = -ENOMEM;
            else {
                for (size_t i = 0; i < q->len; i++)
                    ring[i] = q->ring[(q->head + i) % q->cap];
                free(q->ring);
                q->ring = ring;
                q->cap = cap;
                q->head = 0;
            }
        }
        if (r == 0) {
            q->ring[(q->head + q->len) % q->cap] = item;
            q->len++;
            q->unfinished++;
            pthread_cond_broadcast(&o->cv);
        }
        pthread_mutex_unlock(&o->mu);
        if (r != 0)
            mv_free(item);
        if (r == -ETIMEDOUT) {
            kart_obj *t = mv_tuple(0);
            return raise(result, t ? mv_error("queue", "Full", t) : NULL);
        }
        return r ? r : ret(result, mv_none());
    }
    if (strcmp(m, "get") == 0 || strcmp(m, "get_nowait") == 0) {
        bool block;
        int64_t dl = KART__NO_DEADLINE;
        if (m[3] == '_') {
            NOARGS(m);
            block = false;
        } else {
            BIND(m, 0, "block", "timeout");
            block = !a[0] || mv_get_bool(a[0]);
            if (block && (r = mgr__timeout(a[1], &dl, false, result)) != 0)
                return r;
        }
        kart_obj *item = NULL;
        pthread_mutex_lock(&o->mu);
        while (!o->shm && q->len == 0 && r == 0)
            r = block ? mgr__wait(o, dl) : -ETIMEDOUT;
        if (o->shm) {
            pthread_mutex_unlock(&o->mu);
            return mgr__shm_call(o, cx, m, args, kwds, result, newobj);
        }
        if (r == 0) {
            item = q->ring[q->head];
            q->head = (q->head + 1) % q->cap;
            q->len--;
            pthread_cond_broadcast(&o->cv);
        }
        pthread_mutex_unlock(&o->mu);
        if (r == -ETIMEDOUT) {
            kart_obj *t = mv_tuple(0);
            return raise(result, t ? mv_error("_queue", "Empty", t) : NULL);
        }
        return r ? r : ret(result, item);
    }
    if (strcmp(m, "join") == 0) {
        NOARGS(m);
        pthread_mutex_lock(&o->mu);
        while (!o->shm && q->unfinished && r == 0)
            r = mgr__wait(o, KART__NO_DEADLINE);
        pthread_mutex_unlock(&o->mu);
        if (o->shm && r == 0)
            return mgr__shm_call(o, cx, m, args, kwds, result, newobj);
        return r ? r : ret(result, mv_none());
    }
    NOARGS(m);
    pthread_mutex_lock(&o->mu);
    if (o->shm) {
        pthread_mutex_unlock(&o->mu);
        return mgr__shm_call(o, cx, m, args, kwds, result, newobj);
    }
    kart_obj *v = NULL;
    bool too_many = false;
    if (strcmp(m, "task_done") == 0) {
        if (q->unfinished == 0)
            too_many = true;
        else if (--q->unfinished == 0)
            pthread_cond_broadcast(&o->cv);
        v = mv_none();
    } else if (strcmp(m, "qsize") == 0)
        v = mv_int((int64_t)q->len);
    else if (strcmp(m, "empty") == 0)
        v = mv_bool(q->len == 0);
    else
        v = mv_bool(queue_full(q));
    pthread_mutex_unlock(&o->mu);
    if (too_many) {
        mv_free(v);
        return raise(result,
                     mgr__exc("builtins", "ValueError", "task_done() called too many times"));
    }
    return ret(result, v);
}

int mgr__queue_export(mobj *o, int (*push)(void *arg, const kart_obj *item), void *arg,
                      int64_t *maxsize, uint64_t *unfinished)
{
    queue_data *q = o->data;
    for (size_t i = 0; i < q->len; i++) {
        int r = push(arg, q->ring[(q->head + i) % q->cap]);
        if (r)
            return r;
    }
    /* the segment has them all: the plain queue empties, its unfinished
     * count moves too (join and task_done go there) */
    *maxsize = q->maxsize;
    *unfinished = q->unfinished;
    for (size_t i = 0; i < q->len; i++)
        mv_free(q->ring[(q->head + i) % q->cap]);
    q->head = q->len = 0;
    q->unfinished = 0;
    return 0;
}

static const mtype queue_type = {
    .typeid = "Queue",
    .exposed = queue_exposed,
    .create = queue_create,
    .destroy = queue_destroy,
    .call = queue_call,
};

static const mtype joinable_queue_type = {
    .typeid = "JoinableQueue",
    .exposed = queue_exposed,
    .create = queue_create,
    .destroy = queue_destroy,
    .call = queue_call,
};

/* ------------------------------------------ Semaphore, BoundedSemaphore */

typedef struct sem_data {
    int64_t value, initial;
    bool bounded;
} sem_data;

static int sem_create_common(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err,
                             bool bounded)
{
    const kart_obj *a[1];
    int r = mgr__args(bounded ? "BoundedSemaphore" : "Semaphore", args, kwds, NAMES("value"), 0, 1,
                      a, err);
    if (r)
        return r;
    int64_t v = 1;
    if (a[0] && (mv_kind(a[0]) == MV_FLOAT || mv_get_int(a[0], &v) < 0)) {
        *err = mgr__exc("builtins", "TypeError", "semaphore value must be an int");
        return MCALL_ERROR;
    }
    if (v < 0) {
        *err = mgr__exc("builtins", "ValueError", "semaphore initial value must be >= 0");
        return MCALL_ERROR;
    }
    sem_data *sd = calloc(1, sizeof *sd);
    if (!sd)
        return -ENOMEM;
    sd->value = sd->initial = v;
    sd->bounded = bounded;
    o->data = sd;
    return 0;
}

static int sem_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    return sem_create_common(o, args, kwds, err, false);
}

static int bsem_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    return sem_create_common(o, args, kwds, err, true);
}

/* (blocking=True, timeout=None) as threading's acquire takes them, into a
 * deadline (kart_now_ns() for a try). */
static int acquire_args(const kart_obj *args, const kart_obj *kwds, int64_t *dl, kart_obj **result)
{
    const kart_obj *a[2];
    BIND("acquire", 0, "blocking", "timeout");
    bool blocking = !a[0] || mv_get_bool(a[0]);
    bool has_t = a[1] && mv_kind(a[1]) != MV_NONE;
    if (!blocking && has_t)
        return raise(result, mgr__exc("builtins", "ValueError",
                                      "can't specify timeout for non-blocking acquire"));
    if (!blocking) {
        *dl = kart_now_ns();
        return 0;
    }
    return mgr__timeout(a[1], dl, true, result);
}

static int sem_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                    kart_obj **result, mobj **newobj)
{
    sem_data *sd = o->data;
    int r = 0;
    if (strcmp(m, "release") == 0) {
        const kart_obj *a[1];
        BIND(m, 0, "n");
        int64_t n = 1;
        if (a[0] && mv_get_int(a[0], &n) < 0)
            return raise(result, mgr__exc("builtins", "TypeError", "n must be an int"));
        if (n < 1)
            return raise(result, mgr__exc("builtins", "ValueError", "n must be one or more"));
        pthread_mutex_lock(&o->mu);
        bool over = sd->bounded && sd->value + n > sd->initial;
        if (!over) {
            sd->value += n;
            pthread_cond_broadcast(&o->cv);
        }
        pthread_mutex_unlock(&o->mu);
        return over ? raise(result,
                            mgr__exc("builtins", "ValueError", "Semaphore released too many times"))
                    : ret(result, mv_none());
    }
    int64_t dl;
    if ((r = acquire_args(args, kwds, &dl, result)) != 0)
        return r;
    pthread_mutex_lock(&o->mu);
    while (sd->value == 0 && r == 0)
        r = mgr__wait(o, dl);
    bool got = sd->value > 0;
    if (got)
        sd->value--;
    pthread_mutex_unlock(&o->mu);
    return r == -ECANCELED ? r : ret(result, mv_bool(got));
}

static int sem_repr(mobj *o, char *buf, size_t cap)
{
    sem_data *sd = o->data;
    pthread_mutex_lock(&o->mu);
    snprintf(buf, cap, "<threading.%sSemaphore: value=%" PRId64 "/%" PRId64 ">",
             sd->bounded ? "Bounded" : "", sd->value, sd->initial);
    pthread_mutex_unlock(&o->mu);
    return 0;
}

static const mtype sem_type = {
    .typeid = "Semaphore",
    .exposed = acquirer_exposed,
    .create = sem_create,
    .destroy = free_data,
    .call = sem_call,
    .repr = sem_repr,
};

static const mtype bsem_type = {
    .typeid = "BoundedSemaphore",
    .exposed = acquirer_exposed,
    .create = bsem_create,
    .destroy = free_data,
    .call = sem_call,
    .repr = sem_repr,
};

/* ----------------------------------------------------------- Condition */

static const char *const cond_exposed[] = {"acquire", "release",    "wait",
                                           "notify",  "notify_all", NULL};

typedef struct cond_waiter {
    bool notified;
    struct cond_waiter *next;
} cond_waiter;

typedef struct cond_data {
    lock_data lock; /* an RLock, as threading.Condition() makes */
    cond_waiter *head, *tail;
} cond_data;

static int cond_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    const kart_obj *a[1];
    int r = mgr__args("Condition", args, kwds, NAMES("lock"), 0, 1, a, err);
    if (r)
        return r;
    if (a[0] && mv_kind(a[0]) != MV_NONE) {
        *err = mgr__exc("builtins", "TypeError",
                        "kart: Condition(lock) takes no lock (its own RLock is used)");
        return MCALL_ERROR;
    }
    cond_data *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->lock.recursive = true;
    o->data = c;
    return 0;
}

static bool cond_owned(cond_data *c, mcx *cx)
{
    return c->lock.count > 0 && c->lock.owner == cx->serial;
}

static int cond_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                     kart_obj **result, mobj **newobj)
{
    cond_data *c = o->data;
    if (strcmp(m, "acquire") == 0) {
        int64_t dl;
        int r = acquire_args(args, kwds, &dl, result);
        if (r)
            return r;
        pthread_mutex_lock(&o->mu);
        kart_obj *got = NULL;
        for (;;) {
            if (c->lock.count == 0 || c->lock.owner == cx->serial) {
                c->lock.count++;
                c->lock.owner = cx->serial;
                got = acquired_value(&c->lock, cx);
                break;
            }
            if ((r = mgr__wait(o, dl)) != 0)
                break;
        }
        pthread_mutex_unlock(&o->mu);
        if (r == -ECANCELED) {
            mv_free(got);
            return r;
        }
        return ret(result, got ? got : mv_bool(false));
    }
    if (strcmp(m, "release") == 0) {
        NOARGS(m);
        pthread_mutex_lock(&o->mu);
        bool ok = cond_owned(c, cx);
        if (ok && --c->lock.count == 0) {
            c->lock.owner = 0;
            pthread_cond_broadcast(&o->cv);
        }
        pthread_mutex_unlock(&o->mu);
        return ok ? ret(result, mv_none())
                  : raise(result,
                          mgr__exc("builtins", "RuntimeError", "cannot release un-acquired lock"));
    }
    if (strcmp(m, "notify") == 0 || strcmp(m, "notify_all") == 0) {
        int64_t n = INT64_MAX;
        if (strcmp(m, "notify") == 0) {
            const kart_obj *a[1];
            BIND(m, 0, "n");
            n = 1;
            if (a[0] && mv_get_int(a[0], &n) < 0)
                return raise(result, mgr__exc("builtins", "TypeError", "n must be an int"));
        } else
            NOARGS(m);
        pthread_mutex_lock(&o->mu);
        bool ok = cond_owned(c, cx);
        while (ok && n-- > 0 && c->head) {
            c->head->notified = true;
            c->head = c->head->next;
            if (!c->head)
                c->tail = NULL;
        }
        if (ok)
            pthread_cond_broadcast(&o->cv);
        pthread_mutex_unlock(&o->mu);
        return ok ? ret(result, mv_none())
                  : raise(result, mgr__exc("builtins", "RuntimeError",
                                           "cannot notify on un-acquired lock"));
    }
    /* wait(timeout=None) */
    const kart_obj *a[1];
    BIND(m, 0, "timeout");
    int64_t dl;
    int r = mgr__timeout(a[0], &dl, true, result);
    if (r)
        return r;
    pthread_mutex_lock(&o->mu);
    if (!cond_owned(c, cx)) {
        pthread_mutex_unlock(&o->mu);
        return raise(result,
                     mgr__exc("builtins", "RuntimeError", "cannot wait on un-acquired lock"));
    }
    cond_waiter w = {0};
    if (c->tail)
        c->tail->next = &w;
    else
        c->head = &w;
    c->tail = &w;
    unsigned long saved = c->lock.count;
    c->lock.count = 0;
    c->lock.owner = 0;
    pthread_cond_broadcast(&o->cv);
    while (!w.notified && r == 0)
        r = mgr__wait(o, dl);
    if (!w.notified) { /* timed out (or stopping): leave the queue */
        cond_waiter **pp = &c->head, *prev = NULL;
        while (*pp && *pp != &w) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp) {
            *pp = w.next;
            if (c->tail == &w)
                c->tail = prev;
        }
    }
    /* take the lock back, whatever happened (Python's wait does); if its
     * last holder's connection ended while holding it (cond_client_gone),
     * this waiter is the next acquirer and is told, as acquire tells */
    int r2 = 0;
    while (c->lock.count != 0 && c->lock.owner != cx->serial && r2 == 0)
        r2 = mgr__wait(o, KART__NO_DEADLINE);
    kart_obj *v = NULL;
    if (r2 == 0) {
        c->lock.count = saved;
        c->lock.owner = cx->serial;
        /* a kart client: the str "ownerdead" (notified or not); a Python
         * client: whether notified, as Python's (acquired_value's rule) */
        bool told = c->lock.owner_died && cx->kart;
        c->lock.owner_died = false;
        v = told ? mv_strz("ownerdead") : mv_bool(w.notified);
    }
    pthread_mutex_unlock(&o->mu);
    if (r == -ECANCELED || r2 == -ECANCELED) {
        mv_free(v);
        return -ECANCELED;
    }
    return ret(result, v);
}

static void cond_client_gone(mobj *o, mcx *cx)
{
    cond_data *c = o->data;
    pthread_mutex_lock(&o->mu);
    if (c->lock.count && c->lock.owner == cx->serial) {
        c->lock.count = 0;
        c->lock.owner = 0;
        c->lock.owner_died = true;
        pthread_cond_broadcast(&o->cv);
    }
    pthread_mutex_unlock(&o->mu);
}

static int cond_repr(mobj *o, char *buf, size_t cap)
{
    cond_data *c = o->data;
    pthread_mutex_lock(&o->mu);
    size_t n = 0;
    for (cond_waiter *w = c->head; w; w = w->next)
        n++;
    snprintf(buf, cap, "<Condition(<%s _thread.RLock object count=%lu>, %zu)>",
             c->lock.count ? "locked" : "unlocked", c->lock.count, n);
    pthread_mutex_unlock(&o->mu);
    return 0;
}

static const mtype cond_type = {
    .typeid = "Condition",
    .exposed = cond_exposed,
    .create = cond_create,
    .destroy = free_data,
    .call = cond_call,
    .repr = cond_repr,
    .client_gone = cond_client_gone,
};

/* ------------------------------------------------------------- Barrier */

static const char *const barrier_exposed[] = {"__getattribute__", "wait", "abort", "reset", NULL};

typedef struct barrier_data {
    int64_t parties, count;
    int state;     /* 0 filling, 1 draining, -1 resetting, -2 broken */
    int64_t deflt; /* default timeout deadline offset, ns; -1 none */
} barrier_data;

static int barrier_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    const kart_obj *a[3];
    int r = mgr__args("Barrier", args, kwds, NAMES("parties", "action", "timeout"), 1, 3, a, err);
    if (r)
        return r;
    int64_t parties;
    if (mv_kind(a[0]) == MV_FLOAT || mv_get_int(a[0], &parties) < 0) {
        *err = mgr__exc("builtins", "TypeError", "parties must be an int");
        return MCALL_ERROR;
    }
    if (parties < 1) {
        *err = mgr__exc("builtins", "ValueError", "parties must be > 0");
        return MCALL_ERROR;
    }
    if (a[1] && mv_kind(a[1]) != MV_NONE) {
        *err = mgr__exc("builtins", "TypeError", "kart: Barrier(action=...) cannot run a function");
        return MCALL_ERROR;
    }
    double t = -1;
    if (a[2] && mv_kind(a[2]) != MV_NONE && (mv_get_float(a[2], &t) < 0 || t < 0)) {
        *err = mgr__exc("builtins", "ValueError", "timeout must be a non-negative number");
        return MCALL_ERROR;
    }
    barrier_data *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->parties = parties;
    b->deflt = t < 0 ? -1 : (int64_t)(t * 1e9);
    o->data = b;
    return 0;
}

static int broken_barrier(kart_obj **result)
{
    kart_obj *t = mv_tuple(0);
    return raise(result, t ? mv_error("threading", "BrokenBarrierError", t) : NULL);
}

static void barrier_break(mobj *o, barrier_data *b)
{
    b->state = -2;
    pthread_cond_broadcast(&o->cv);
}

static void barrier_exit(mobj *o, barrier_data *b)
{
    if (b->count == 0 && (b->state == -1 || b->state == 1)) {
        b->state = 0;
        pthread_cond_broadcast(&o->cv);
    }
}

static int barrier_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                        kart_obj **result, mobj **newobj)
{
    barrier_data *b = o->data;
    const kart_obj *a[1];
    if (strcmp(m, "__getattribute__") == 0) {
        BIND(m, 1, "name");
        kart_obj *v = NULL;
        pthread_mutex_lock(&o->mu);
        if (mv_is_str(a[0], "parties"))
            v = mv_int(b->parties);
        else if (mv_is_str(a[0], "n_waiting"))
            v = mv_int(b->state == 0 ? b->count : 0);
        else if (mv_is_str(a[0], "broken"))
            v = mv_bool(b->state == -2);
        pthread_mutex_unlock(&o->mu);
        if (v)
            return ret(result, v);
        return raise(result, mgr__exc("builtins", "AttributeError",
                                      "kart: Barrier exposes parties, n_waiting and broken"));
    }
    if (strcmp(m, "abort") == 0 || strcmp(m, "reset") == 0) {
        NOARGS(m);
        pthread_mutex_lock(&o->mu);
        if (m[0] == 'a')
            barrier_break(o, b);
        else {
            if (b->count > 0)
                b->state = b->state == 0 || b->state == -2 ? -1 : b->state;
            else
                b->state = 0;
            pthread_cond_broadcast(&o->cv);
        }
        pthread_mutex_unlock(&o->mu);
        return ret(result, mv_none());
    }
    /* wait(timeout=None) */
    BIND(m, 0, "timeout");
    int64_t dl;
    int r;
    if (!a[0] || mv_kind(a[0]) == MV_NONE)
        dl = b->deflt < 0 ? KART__NO_DEADLINE : kart__deadline(b->deflt);
    else if ((r = mgr__timeout(a[0], &dl, true, result)) != 0)
        return r;
    pthread_mutex_lock(&o->mu);
    r = 0;
    while ((b->state == -1 || b->state == 1) && r == 0)
        r = mgr__wait(o, KART__NO_DEADLINE);
    if (r != 0 || b->state < 0) {
        pthread_mutex_unlock(&o->mu);
        return r ? r : broken_barrier(result);
    }
    int64_t index = b->count++;
    bool broke = false;
    if (index + 1 == b->parties) {
        b->state = 1;
        pthread_cond_broadcast(&o->cv);
    } else {
        while (b->state == 0 && r == 0)
            r = mgr__wait(o, dl);
        if (r == -ETIMEDOUT) {
            barrier_break(o, b);
            broke = true;
        } else if (b->state < 0)
            broke = true;
    }
    b->count--;
    barrier_exit(o, b);
    pthread_mutex_unlock(&o->mu);
    if (r == -ECANCELED)
        return r;
    return broke ? broken_barrier(result) : ret(result, mv_int(index));
}

static const mtype barrier_type = {
    .typeid = "Barrier",
    .exposed = barrier_exposed,
    .create = barrier_create,
    .destroy = free_data,
    .call = barrier_call,
};

/* --------------------------------------------------------------- Array */

static const char *const array_exposed[] = {"__len__", "__getitem__", "__setitem__", NULL};

/* array.array's item rules for typecode tc: 0 or a raised error. */
static int array_check(char tc, const kart_obj *v, kart_obj **err)
{
    int k = mv_kind(v);
    if (tc == 'f' || tc == 'd') {
        double d;
        if ((k != MV_FLOAT && k != MV_INT && k != MV_BOOL && k != MV_BIGINT) ||
            mv_get_float(v, &d) < 0) {
            *err = mgr__exc("builtins", "TypeError", "must be real number, not %s",
                            kart_obj_type_name(kart_obj_type_of(v)));
            return MCALL_ERROR;
        }
        return 0;
    }
    if (tc == 'u') {
        size_t n;
        const char *s = mv_get_str(v, &n);
        /* one code point */
        if (!s || n == 0 || n > 4 || (n > 1 && ((unsigned char)s[0] >> 6) != 3) ||
            (n == 1 && (unsigned char)s[0] >= 0x80)) {
            *err = mgr__exc("builtins", "TypeError", "array item must be unicode character");
            return MCALL_ERROR;
        }
        return 0;
    }
    int64_t x;
    if (k != MV_INT && k != MV_BOOL && k != MV_BIGINT) {
        *err = mgr__exc("builtins", "TypeError", "'%s' object cannot be interpreted as an integer",
                        kart_obj_type_name(kart_obj_type_of(v)));
        return MCALL_ERROR;
    }
    bool fits = mv_get_int(v, &x) == 0;
    int64_t lo, hi;
    switch (tc) {
    case 'b':
        lo = INT8_MIN, hi = INT8_MAX;
        break;
    case 'B':
        lo = 0, hi = UINT8_MAX;
        break;
    case 'h':
        lo = INT16_MIN, hi = INT16_MAX;
        break;
    case 'H':
        lo = 0, hi = UINT16_MAX;
        break;
    case 'i':
        lo = INT32_MIN, hi = INT32_MAX;
        break;
    case 'I':
        lo = 0, hi = UINT32_MAX;
        break;
    case 'l':
    case 'q':
        lo = INT64_MIN, hi = INT64_MAX;
        break;
    default:
        lo = 0, hi = INT64_MAX;
        break; /* L, Q: kart keeps to int64 */
    }
    if (!fits || x < lo || x > hi) {
        *err = mgr__exc("builtins", "OverflowError", "value out of range for typecode '%c'%s", tc,
                        tc == 'L' || tc == 'Q' ? " (kart: up to 2**63-1)" : "");
        return MCALL_ERROR;
    }
    return 0;
}

static int array_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    const kart_obj *a[3];
    int r = mgr__args("Array", args, kwds, NAMES("typecode", "sequence", "lock"), 2, 3, a, err);
    if (r)
        return r;
    size_t tl;
    const char *tc = mv_get_str(a[0], &tl);
    if (!tc || tl != 1 || !strchr("bBuhHiIlLqQfd", tc[0])) {
        *err = mgr__exc("builtins", "ValueError",
                        "bad typecode (must be b, B, u, h, H, i, I, l, L, q, Q, f or d)");
        return MCALL_ERROR;
    }
    int k = mv_kind(a[1]);
    if (k != MV_LIST && k != MV_TUPLE) {
        *err = mgr__exc("builtins", "TypeError", "kart: Array takes a list or tuple of items");
        return MCALL_ERROR;
    }
    kart_obj *l = mv_list_new();
    if (!l)
        return -ENOMEM;
    size_t pos = 0;
    const kart_obj *v;
    while (kart_obj_next(a[1], &pos, NULL, &v) == 1) {
        if ((r = array_check(tc[0], v, err)) != 0 || (r = mv_list_append(l, mv_copy(v))) < 0) {
            mv_free(l);
            return r;
        }
    }
    /* data: [typecode, [items]] */
    kart_obj *d = mv_list_new();
    if (!d || mv_list_append(d, mv_copy(a[0])) < 0 || mv_list_append(d, l) < 0) {
        mv_free(d);
        return -ENOMEM;
    }
    o->data = d;
    return 0;
}

static int array_call_locked(mobj *o, const char *m, const kart_obj *args, const kart_obj *kwds,
                             kart_obj **result, mobj **newobj)
{
    char tc = mv_get_str(mv_item(o->data, 0), NULL)[0];
    kart_obj *l = (kart_obj *)mv_item(o->data, 1);
    size_t n = mv_len(l);
    const kart_obj *a[2];
    if (strcmp(m, "__len__") == 0) {
        NOARGS(m);
        return ret(result, mv_int((int64_t)n));
    }
    if (strcmp(m, "__getitem__") == 0)
        BIND(m, 1, "index");
    else
        BIND(m, 2, "index", "value");
    int64_t i;
    int r = index_arg(a[0], &i, result);
    if (r)
        return r;
    if (i < 0)
        i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n)
        return raise(result, mgr__exc("builtins", "IndexError",
                                      m[2] == 'g' ? "array index out of range"
                                                  : "array assignment index out of range"));
    if (m[2] == 'g') {
        const kart_obj *v = mv_item(l, (size_t)i);
        if (tc == 'f' || tc == 'd') {
            double d;
            mv_get_float(v, &d);
            return ret(result, mv_float(tc == 'f' ? (double)(float)d : d));
        }
        return ret(result, mv_copy(v));
    }
    if ((r = array_check(tc, a[1], result)) != 0)
        return r;
    kart_obj *c = mv_copy(a[1]);
    if (!c || kart_obj_set_item(l, (size_t)i, c) < 0) {
        mv_free(c);
        return -ENOMEM;
    }
    return ret(result, mv_none());
}

static int array_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                      kart_obj **result, mobj **newobj)
{
    return locked_call(o, cx, m, args, kwds, result, newobj, array_call_locked);
}

static int array_repr(mobj *o, char *buf, size_t cap)
{
    pthread_mutex_lock(&o->mu);
    char tc = mv_get_str(mv_item(o->data, 0), NULL)[0];
    char pre[16];
    snprintf(pre, sizeof pre, "array('%c', ", tc);
    repr_locked(o, mv_item(o->data, 1), pre, ")", buf, cap);
    pthread_mutex_unlock(&o->mu);
    return 0;
}

static const mtype array_type = {
    .typeid = "Array",
    .exposed = array_exposed,
    .create = array_create,
    .destroy = obj_data_free,
    .call = array_call,
    .repr = array_repr,
};

/* ---------------------------------------------------------------- table */

const mtype *const mgr__types[] = {
    &dict_type, &list_type,  &ns_type,      &value_type,          &event_type,
    &lock_type, &rlock_type, &queue_type,   &joinable_queue_type, &sem_type,
    &bsem_type, &cond_type,  &barrier_type, &array_type,          NULL,
};

const mtype *mgr__find_type(const char *typeid)
{
    for (size_t i = 0; mgr__types[i]; i++)
        if (strcmp(mgr__types[i]->typeid, typeid) == 0)
            return mgr__types[i];
    return NULL;
}

/*
 * core/manager/mgr_value.c — the manager's value adapter over kart/obj.h:
 * constructors that return NULL on failure and take their parts either way
 * (so that replies can be built in one expression), and readers that
 * answer NULL or 0 for the wrong kind.
 */
#include "mgr_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mv_kind(const kart_obj *o)
{
    switch (kart_obj_type_of(o)) {
    case KART_OBJ_NONE:
        return MV_NONE;
    case KART_OBJ_BOOL:
        return MV_BOOL;
    case KART_OBJ_INT:
        return MV_INT;
    case KART_OBJ_BIGINT:
        return MV_BIGINT;
    case KART_OBJ_FLOAT:
        return MV_FLOAT;
    case KART_OBJ_STR:
        return MV_STR;
    case KART_OBJ_BYTES:
        return MV_BYTES;
    case KART_OBJ_TUPLE:
        return MV_TUPLE;
    case KART_OBJ_LIST:
        return MV_LIST;
    case KART_OBJ_DICT:
        return MV_DICT;
    case KART_OBJ_ERROR:
        return MV_ERROR;
    case KART_OBJ_INSTANCE:
        return MV_INSTANCE;
    }
    return MV_OTHER;
}

kart_obj *mv_none(void)
{
    kart_obj *o = NULL;
    return kart_obj_none(&o) == 0 ? o : NULL;
}

kart_obj *mv_bool(bool b)
{
    kart_obj *o = NULL;
    return kart_obj_bool(b, &o) == 0 ? o : NULL;
}

kart_obj *mv_int(int64_t v)
{
    kart_obj *o = NULL;
    return kart_obj_int(v, &o) == 0 ? o : NULL;
}

kart_obj *mv_float(double v)
{
    kart_obj *o = NULL;
    return kart_obj_float(v, &o) == 0 ? o : NULL;
}

kart_obj *mv_str(const char *s, size_t len)
{
    kart_obj *o = NULL;
    if (kart_obj_str(s, len, &o) == 0)
        return o;
    /* not UTF-8 (a name cut mid-character): keep the ASCII part */
    char *c = malloc(len + 1);
    if (!c)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        c[n++] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    int r = kart_obj_str(c, n, &o);
    free(c);
    return r == 0 ? o : NULL;
}

kart_obj *mv_strz(const char *s)
{
    return mv_str(s, strlen(s));
}

kart_obj *mv_bytes(const void *p, size_t len)
{
    kart_obj *o = NULL;
    return kart_obj_bytes(p, len, &o) == 0 ? o : NULL;
}

kart_obj *mv_tuple_v(size_t n, kart_obj **items)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        ok = ok && items[i];
    kart_obj *t = NULL;
    if (ok && kart_obj_tuple(items, n, &t) == 0)
        return t;
    for (size_t i = 0; i < n; i++)
        kart_obj_free(items[i]);
    return NULL;
}

kart_obj *mv_tuple(size_t n, ...)
{
    kart_obj *items[8];
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n && i < 8; i++)
        items[i] = va_arg(ap, kart_obj *);
    va_end(ap);
    return mv_tuple_v(n, items);
}

kart_obj *mv_list_new(void)
{
    kart_obj *o = NULL;
    return kart_obj_list(&o) == 0 ? o : NULL;
}

int mv_list_append(kart_obj *l, kart_obj *item)
{
    if (!item)
        return -ENOMEM;
    int r = kart_obj_append(l, item);
    if (r < 0)
        kart_obj_free(item);
    return r;
}

kart_obj *mv_dict_new(void)
{
    kart_obj *o = NULL;
    return kart_obj_dict(&o) == 0 ? o : NULL;
}

int mv_dict_set(kart_obj *d, kart_obj *k, kart_obj *v)
{
    int r = k && v ? kart_obj_dict_set(d, k, v) : -ENOMEM;
    if (r < 0) {
        kart_obj_free(k);
        kart_obj_free(v);
    }
    return r;
}

kart_obj *mv_error(const char *module, const char *name, kart_obj *args)
{
    kart_obj *e = NULL;
    if (args && kart_obj_error(module, name, args, NULL, &e) == 0)
        return e;
    kart_obj_free(args);
    return NULL;
}

kart_obj *mv_token(const char *typeid, const char *address, const char *id)
{
    kart_obj *st = mv_tuple(3, mv_strz(typeid), mv_strz(address), mv_strz(id));
    kart_obj *o = NULL;
    if (st && kart_obj_instance("multiprocessing.managers", "Token", st, &o) == 0)
        return o;
    kart_obj_free(st);
    return NULL;
}

size_t mv_len(const kart_obj *o)
{
    size_t n = 0;
    switch (kart_obj_type_of(o)) {
    case KART_OBJ_STR:
        mv_get_str(o, &n);
        return n;
    case KART_OBJ_BYTES:
        mv_get_bytes(o, &n);
        return n;
    default:
        return kart_obj_len(o, &n) == 0 ? n : 0;
    }
}

const kart_obj *mv_item(const kart_obj *o, size_t i)
{
    const kart_obj *it = NULL;
    return kart_obj_item(o, i, &it) == 0 ? it : NULL;
}

int mv_dict_entry(const kart_obj *d, size_t i, const kart_obj **k, const kart_obj **v)
{
    /* kart_obj_next positions are opaque: walk from the start */
    size_t pos = 0;
    for (size_t j = 0;; j++) {
        int r = kart_obj_next(d, &pos, k, v);
        if (r <= 0)
            return r < 0 ? r : -ERANGE;
        if (j == i)
            return 0;
    }
}

int mv_get_int(const kart_obj *o, int64_t *v)
{
    return kart_obj_get_int(o, v);
}

int mv_get_float(const kart_obj *o, double *v)
{
    return kart_obj_get_float(o, v);
}

bool mv_get_bool(const kart_obj *o)
{
    bool b = false;
    int64_t i;
    double d;
    switch (kart_obj_type_of(o)) {
    case KART_OBJ_NONE:
        return false;
    case KART_OBJ_BOOL:
        kart_obj_get_bool(o, &b);
        return b;
    case KART_OBJ_INT:
        kart_obj_get_int(o, &i);
        return i != 0;
    case KART_OBJ_FLOAT:
        kart_obj_get_float(o, &d);
        return d != 0;
    case KART_OBJ_STR:
    case KART_OBJ_BYTES:
    case KART_OBJ_TUPLE:
    case KART_OBJ_LIST:
    case KART_OBJ_DICT:
        return mv_len(o) != 0;
    default:
        return true;
    }
}

const char *mv_get_str(const kart_obj *o, size_t *len)
{
    const char *s = NULL;
    size_t n = 0;
    if (kart_obj_get_str(o, &s, &n) != 0)
        return NULL;
    if (len)
        *len = n;
    return s;
}

const void *mv_get_bytes(const kart_obj *o, size_t *len)
{
    const void *p = NULL;
    size_t n = 0;
    if (kart_obj_get_bytes(o, &p, &n) != 0)
        return NULL;
    if (len)
        *len = n;
    return p;
}

int mv_class(const kart_obj *o, const char **module, const char **name)
{
    return kart_obj_get_class(o, module, name, NULL);
}

const kart_obj *mv_payload(const kart_obj *o)
{
    const kart_obj *p = NULL;
    return kart_obj_get_class(o, NULL, NULL, &p) == 0 ? p : NULL;
}

bool mv_is_str(const kart_obj *o, const char *s)
{
    size_t n;
    const char *v = mv_get_str(o, &n);
    return v && n == strlen(s) && memcmp(v, s, n) == 0;
}

kart_obj *mv_copy(const kart_obj *o)
{
    kart_obj *c = NULL;
    if (!o)
        return mv_none();
    return kart_obj_copy(o, &c) == 0 ? c : NULL;
}

bool mv_equal(const kart_obj *a, const kart_obj *b)
{
    return kart_obj_equal(a, b);
}

void mv_free(kart_obj *o)
{
    kart_obj_free(o);
}

int mv_repr(const kart_obj *o, char *buf, size_t cap)
{
    int r = kart_obj_repr(o, buf, cap, NULL);
    return r == -ENOBUFS ? (int)strlen(buf) : r;
}

int mv_pickle(const kart_obj *o, int protocol, void **buf, size_t *len)
{
    return kart_obj_pickle(o, protocol ? protocol : 4, buf, len);
}

int mv_unpickle(const void *buf, size_t len, kart_obj **out, char *why, size_t whycap)
{
    kart_obj_unpickle_options opt = {.managers = true};
    kart_obj_pickle_error e;
    memset(&e, 0, sizeof e);
    int r = kart_obj_unpickle(buf, len, &opt, out, &e);
    if (r < 0 && why && whycap)
        snprintf(why, whycap, "%s at offset %zu", e.message[0] ? e.message : kart_strerror(r),
                 e.offset);
    return r;
}

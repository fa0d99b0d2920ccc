/*
 * core/manager/pickle.c — the pickle codec of kart_obj (kart/obj.h):
 * an encoder for protocols 2 to 5, and a decoder that runs no code: a
 * stack machine over the opcodes of simple values, with GLOBAL and friends
 * only for an allow-list of classes, every length checked against the
 * input before anything is allocated, and a budget on the decoded size.
 */
#include "obj_private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Encoder ---- */

struct enc {
    uint8_t *p;
    size_t n, cap;
    int proto;
    int err;
};

static void emit(struct enc *e, const void *p, size_t n)
{
    if (e->err)
        return;
    if (e->n + n > e->cap || e->n + n < e->n) {
        size_t cap = e->cap ? e->cap : 256;
        while (cap < e->n + n) {
            if (cap > SIZE_MAX / 2) {
                e->err = -ENOMEM;
                return;
            }
            cap *= 2;
        }
        uint8_t *q = realloc(e->p, cap);
        if (!q) {
            e->err = -ENOMEM;
            return;
        }
        e->p = q;
        e->cap = cap;
    }
    memcpy(e->p + e->n, p, n);
    e->n += n;
}

static void op(struct enc *e, uint8_t c)
{
    emit(e, &c, 1);
}

static void le(struct enc *e, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int k = 0; k < bytes; k++)
        b[k] = (uint8_t)(v >> (8 * k));
    emit(e, b, (size_t)bytes);
}

static void enc_text(struct enc *e, const char *s, size_t n)
{
    if (e->proto >= 4 && n < 256) {
        op(e, 0x8c);
        le(e, n, 1);
    } else if (n <= 0xffffffffu) {
        op(e, 'X');
        le(e, n, 4);
    } else if (e->proto >= 4) {
        op(e, 0x8d);
        le(e, n, 8);
    } else {
        if (!e->err)
            e->err = -EMSGSIZE;
        return;
    }
    emit(e, s, n);
}

static void enc_global(struct enc *e, const char *module, const char *name)
{
    if (e->proto >= 4) {
        enc_text(e, module, strlen(module));
        enc_text(e, name, strlen(name));
        op(e, 0x93);
        return;
    }
    if (strchr(module, '\n') || strchr(name, '\n')) {
        if (!e->err)
            e->err = -EINVAL;
        return;
    }
    op(e, 'c');
    emit(e, module, strlen(module));
    op(e, '\n');
    emit(e, name, strlen(name));
    op(e, '\n');
}

static void enc_bytes(struct enc *e, const uint8_t *p, size_t n)
{
    if (e->proto >= 3) {
        if (n < 256) {
            op(e, 'C');
            le(e, n, 1);
        } else if (n <= 0xffffffffu) {
            op(e, 'B');
            le(e, n, 4);
        } else if (e->proto >= 4) {
            op(e, 0x8e);
            le(e, n, 8);
        } else {
            if (!e->err)
                e->err = -EMSGSIZE;
            return;
        }
        emit(e, p, n);
        return;
    }
    /* Protocol 2 has no bytes opcode: Python writes bytes() for b'' and
     * _codecs.encode(latin-1 text, 'latin1') for the rest. */
    if (n == 0) {
        enc_global(e, "__builtin__", "bytes");
        op(e, ')');
        op(e, 'R');
        return;
    }
    if (n > 0x7fffffffu) {
        if (!e->err)
            e->err = -EMSGSIZE;
        return;
    }
    enc_global(e, "_codecs", "encode");
    size_t un = 0;
    for (size_t i = 0; i < n; i++)
        un += p[i] < 0x80 ? 1 : 2;
    op(e, 'X');
    le(e, un, 4);
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80) {
            op(e, p[i]);
        } else {
            uint8_t two[2] = {(uint8_t)(0xc0 | (p[i] >> 6)), (uint8_t)(0x80 | (p[i] & 0x3f))};
            emit(e, two, 2);
        }
    }
    enc_text(e, "latin1", 6);
    op(e, 0x86);
    op(e, 'R');
}

static void enc_obj(struct enc *e, const kart_obj *o)
{
    if (e->err)
        return;
    switch (o->type) {
    case KART_OBJ_NONE:
        op(e, 'N');
        break;
    case KART_OBJ_BOOL:
        op(e, o->u.b ? 0x88 : 0x89);
        break;
    case KART_OBJ_INT: {
        int64_t v = o->u.i;
        if (v >= 0 && v < 256) {
            op(e, 'K');
            le(e, (uint64_t)v, 1);
        } else if (v >= 0 && v < 65536) {
            op(e, 'M');
            le(e, (uint64_t)v, 2);
        } else if (v >= INT32_MIN && v <= INT32_MAX) {
            op(e, 'J');
            le(e, (uint64_t)v, 4);
        } else {
            uint8_t b[8];
            size_t n = kart__int_bytes(v, b);
            op(e, 0x8a);
            le(e, n, 1);
            emit(e, b, n);
        }
        break;
    }
    case KART_OBJ_BIGINT:
        if (o->u.s.n < 256) {
            op(e, 0x8a);
            le(e, o->u.s.n, 1);
        } else if (o->u.s.n <= 0x7fffffffu) {
            op(e, 0x8b);
            le(e, o->u.s.n, 4);
        } else {
            e->err = -EMSGSIZE;
            return;
        }
        emit(e, o->u.s.p, o->u.s.n);
        break;
    case KART_OBJ_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &o->u.f, sizeof bits);
        uint8_t b[9] = {'G'};
        for (int k = 0; k < 8; k++)
            b[1 + k] = (uint8_t)(bits >> (56 - 8 * k));
        emit(e, b, 9);
        break;
    }
    case KART_OBJ_STR:
        enc_text(e, o->u.s.p, o->u.s.n);
        break;
    case KART_OBJ_BYTES:
        enc_bytes(e, (const uint8_t *)o->u.s.p, o->u.s.n);
        break;
    case KART_OBJ_TUPLE: {
        size_t n = o->u.seq.n;
        if (n == 0) {
            op(e, ')');
            break;
        }
        if (n > 3)
            op(e, '(');
        for (size_t i = 0; i < n; i++)
            enc_obj(e, o->u.seq.v[i]);
        op(e, n == 1 ? 0x85 : n == 2 ? 0x86 : n == 3 ? 0x87 : 't');
        break;
    }
    case KART_OBJ_LIST:
        op(e, ']');
        if (o->u.seq.n) {
            op(e, '(');
            for (size_t i = 0; i < o->u.seq.n; i++)
                enc_obj(e, o->u.seq.v[i]);
            op(e, 'e');
        }
        break;
    case KART_OBJ_DICT:
        op(e, '}');
        if (o->u.d.live) {
            op(e, '(');
            for (size_t i = 0; i < o->u.d.n; i++) {
                if (!o->u.d.e[i].key)
                    continue;
                enc_obj(e, o->u.d.e[i].key);
                enc_obj(e, o->u.d.e[i].value);
            }
            op(e, 'u');
        }
        break;
    case KART_OBJ_ERROR:
        enc_global(e, o->u.cls.module, o->u.cls.name);
        enc_obj(e, o->u.cls.payload);
        op(e, 'R');
        if (o->u.cls.state) {
            enc_obj(e, o->u.cls.state);
            op(e, 'b');
        }
        break;
    case KART_OBJ_INSTANCE:
        enc_global(e, o->u.cls.module, o->u.cls.name);
        op(e, ')');
        op(e, 0x81);
        if (o->u.cls.payload && o->u.cls.payload->type != KART_OBJ_NONE) {
            enc_obj(e, o->u.cls.payload);
            op(e, 'b');
        }
        break;
    default:
        e->err = -EINVAL;
        break;
    }
}

int kart_obj_pickle(const kart_obj *obj, int protocol, void **buf, size_t *len)
{
    if (!obj || !buf || !len || protocol < 2 || protocol > 5 || obj->type == KART__OBJ_CLASSREF)
        return -EINVAL;
    struct enc e = {.proto = protocol};
    uint8_t head[2] = {0x80, (uint8_t)protocol};
    emit(&e, head, 2);
    enc_obj(&e, obj);
    op(&e, '.');
    if (e.err) {
        free(e.p);
        return e.err;
    }
    *buf = e.p;
    *len = e.n;
    return 0;
}

/* ---- Decoder ---- */

/* The classes multiprocessing.managers sends. */
static const kart_obj_class manager_classes[] = {
    {"multiprocessing.managers", "Token", KART_OBJ_CLASS_INSTANCE},
    {"multiprocessing.managers", "RemoteError", KART_OBJ_CLASS_ERROR},
    {"_queue", "Empty", KART_OBJ_CLASS_ERROR},
    {"queue", "Empty", KART_OBJ_CLASS_ERROR},
    {"queue", "Full", KART_OBJ_CLASS_ERROR},
    {"queue", "ShutDown", KART_OBJ_CLASS_ERROR},
    {"threading", "BrokenBarrierError", KART_OBJ_CLASS_ERROR},
    {"multiprocessing.context", "TimeoutError", KART_OBJ_CLASS_ERROR},
    {"multiprocessing.context", "AuthenticationError", KART_OBJ_CLASS_ERROR},
    {"multiprocessing.context", "ProcessError", KART_OBJ_CLASS_ERROR},
};

/* builtins exceptions, all allowed as errors under `managers`. */
static const char *const builtin_errors[] = {
    "BaseException",
    "Exception",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BufferError",
    "EOFError",
    "ImportError",
    "ModuleNotFoundError",
    "IndexError",
    "KeyError",
    "LookupError",
    "MemoryError",
    "NameError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "RecursionError",
    "RuntimeError",
    "StopIteration",
    "SystemError",
    "TypeError",
    "ValueError",
    "ZeroDivisionError",
    "UnicodeError",
    "ConnectionError",
    "BrokenPipeError",
    "ConnectionAbortedError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "FileExistsError",
    "FileNotFoundError",
    "InterruptedError",
    "IsADirectoryError",
    "NotADirectoryError",
    "PermissionError",
    "ProcessLookupError",
    "TimeoutError",
    "ChildProcessError",
    "BlockingIOError",
    "UnboundLocalError",
    "IndentationError",
    "FloatingPointError",
    "GeneratorExit",
    "KeyboardInterrupt",
    "SystemExit",
};

struct dec {
    const uint8_t *p;
    size_t n, pos, op_pos;
    int opcode;
    int proto;
    const kart_obj_unpickle_options *opt;
    size_t max_depth;
    size_t budget;
    /* The stack: objects (roots owned here); the marks: stack heights. */
    kart_obj **stack;
    size_t sn, scap;
    size_t *marks;
    size_t nmarks, mkcap;
    /* The memo: borrowed pointers into the stack's trees or the graveyard. */
    kart_obj **memo;
    size_t mn, mcap;
    /* Roots that left the stack unused (popped, replaced): freed at the
     * end, since the memo may point into them. */
    kart_obj **grave;
    size_t gn, gcap;
    kart_obj_pickle_error *err;
};

static int fail(struct dec *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct dec *d, int code, const char *fmt, ...)
{
    if (d->err) {
        d->err->offset = d->op_pos;
        d->err->opcode = d->opcode;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err->message, sizeof d->err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem)
            return -ENOMEM;
        c *= 2;
    }
    void *q = realloc(*(void **)pp, c * elem);
    if (!q)
        return -ENOMEM;
    *(void **)pp = q;
    *cap = c;
    return 0;
}

static int bury(struct dec *d, kart_obj *o)
{
    if (!o)
        return 0;
    if (grow(&d->grave, &d->gcap, d->gn + 1, sizeof(kart_obj *)) < 0) {
        kart__obj_free_tree(o);
        /* The memo may point into it: forget the whole memo. */
        d->mn = 0;
        return -ENOMEM;
    }
    d->grave[d->gn++] = o;
    return 0;
}

static int charge(struct dec *d, const kart_obj *o)
{
    size_t w = kart__obj_weight(o);
    if (w > d->budget)
        return fail(d, -E2BIG, "the value is larger than max_size");
    d->budget -= w;
    return 0;
}

/* Pushes a new object (taken in every case). */
static int push(struct dec *d, kart_obj *o)
{
    if (!o)
        return fail(d, -ENOMEM, "out of memory");
    int rc = charge(d, o);
    /* An exception over its args, an instance over its state: one level
     * more than what was checked when they were built. */
    if (rc == 0 && o->height > d->max_depth)
        rc = fail(d, -E2BIG, "nested deeper than %zu", d->max_depth);
    if (rc == 0 && grow(&d->stack, &d->scap, d->sn + 1, sizeof(kart_obj *)) < 0)
        rc = fail(d, -ENOMEM, "out of memory");
    if (rc < 0) {
        kart__obj_free_tree(o);
        return rc;
    }
    d->stack[d->sn++] = o;
    return 0;
}

/* The bottom of the current mark's items (0 without a mark). */
static size_t items_base(const struct dec *d)
{
    return d->nmarks ? d->marks[d->nmarks - 1] : 0;
}

/* The base below the current mark (what APPENDS/SETITEMS may reach). */
static size_t outer_base(const struct dec *d)
{
    return d->nmarks > 1 ? d->marks[d->nmarks - 2] : 0;
}

static int pop(struct dec *d, kart_obj **o)
{
    if (d->sn <= items_base(d))
        return fail(d, -EPROTO, "stack underflow");
    *o = d->stack[--d->sn];
    return 0;
}

static int top(struct dec *d, kart_obj **o)
{
    if (d->sn <= items_base(d))
        return fail(d, -EPROTO, "stack underflow");
    *o = d->stack[d->sn - 1];
    return 0;
}

static int need(struct dec *d, size_t n)
{
    if (d->n - d->pos < n)
        return fail(d, -EPROTO, "truncated pickle: %zu bytes needed, %zu left", n, d->n - d->pos);
    return 0;
}

static uint64_t rd_le(struct dec *d, int bytes)
{
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++)
        v |= (uint64_t)d->p[d->pos + (size_t)k] << (8 * k);
    d->pos += (size_t)bytes;
    return v;
}

/* A length field of `bytes` bytes, then that many bytes of input. */
static int rd_len(struct dec *d, int bytes, size_t *len)
{
    int rc = need(d, (size_t)bytes);
    if (rc < 0)
        return rc;
    uint64_t n = rd_le(d, bytes);
    if (n > d->n - d->pos)
        return fail(d, -EPROTO, "length %llu is larger than the %zu bytes left",
                    (unsigned long long)n, d->n - d->pos);
    *len = (size_t)n;
    return 0;
}

/* Refuses a change to an object a GET or DUP copied (the copy would not
 * see it: a recursive structure). */
static int check_frozen(struct dec *d, const kart_obj *o)
{
    if (o->frozen)
        return fail(d, -EPERM,
                    "a shared object changed after it was referenced (recursive structure)");
    return 0;
}

static int insert_error(struct dec *d, int rc)
{
    if (rc == -E2BIG)
        return fail(d, -E2BIG, "nested deeper than %zu", d->max_depth);
    if (rc == -ENOMEM)
        return fail(d, -ENOMEM, "out of memory");
    if (rc == -EINVAL)
        return fail(d, -EPERM, "a class or an unhashable key used as a value");
    return fail(d, -EPROTO, "bad container operation (%d)", rc);
}

static int append_items(struct dec *d, kart_obj *seq, size_t from)
{
    int rc = check_frozen(d, seq);
    if (rc < 0)
        return rc;
    size_t count = d->sn - from;
    if (seq->type != KART_OBJ_LIST && seq->type != KART_OBJ_TUPLE)
        return fail(d, -EPERM, "append to a %s", kart_obj_type_name(seq->type));
    for (size_t i = 0; i < count; i++) {
        kart_obj *it = d->stack[from + i];
        rc = kart__obj_seq_insert(seq, seq->u.seq.n, it, d->max_depth);
        if (rc < 0) {
            /* Those appended already belong to seq; the rest stay. */
            memmove(&d->stack[from], &d->stack[from + i], (count - i) * sizeof(kart_obj *));
            d->sn = from + (count - i);
            return insert_error(d, rc);
        }
    }
    d->sn = from;
    return 0;
}

static int set_items(struct dec *d, kart_obj *dict, size_t from)
{
    int rc = check_frozen(d, dict);
    if (rc < 0)
        return rc;
    size_t count = d->sn - from;
    if (count % 2)
        return fail(d, -EPROTO, "odd number of items for a dict");
    if (dict->type != KART_OBJ_DICT)
        return fail(d, -EPERM, "setitem on a %s", kart_obj_type_name(dict->type));
    for (size_t i = 0; i < count; i += 2) {
        kart_obj *k = d->stack[from + i], *v = d->stack[from + i + 1], *ok, *ov;
        if (k->type == KART__OBJ_CLASSREF || v->type == KART__OBJ_CLASSREF)
            rc = -EINVAL;
        else if (!kart_obj_hashable(k))
            rc = fail(d, -EPERM, "unhashable dict key (%s)", kart_obj_type_name(k->type));
        else
            rc = kart__obj_dict_set(dict, k, v, d->max_depth, &ok, &ov);
        if (rc < 0) {
            memmove(&d->stack[from], &d->stack[from + i], (count - i) * sizeof(kart_obj *));
            d->sn = from + (count - i);
            return rc == -EPERM ? rc : insert_error(d, rc);
        }
        if ((rc = bury(d, ok)) < 0 || (rc = bury(d, ov)) < 0)
            return fail(d, rc, "out of memory");
    }
    d->sn = from;
    return 0;
}

/* Builds a tuple, list or dict of the items above the last mark. */
static int from_mark(struct dec *d, kart_obj_type type)
{
    if (!d->nmarks)
        return fail(d, -EPROTO, "no mark on the stack");
    size_t m = d->marks[d->nmarks - 1];
    if (grow(&d->stack, &d->scap, m + 1, sizeof(kart_obj *)) < 0)
        return fail(d, -ENOMEM, "out of memory");
    kart_obj *c = kart__obj_new(type);
    if (!c)
        return fail(d, -ENOMEM, "out of memory");
    int rc = charge(d, c);
    if (rc == 0)
        rc = type == KART_OBJ_DICT ? set_items(d, c, m) : append_items(d, c, m);
    if (rc < 0) {
        kart__obj_free_tree(c);
        return rc;
    }
    /* The items' first slot takes the container. */
    d->nmarks--;
    d->stack[d->sn++] = c;
    return 0;
}

static const char *rename2(const char *module)
{
    if (!strcmp(module, "__builtin__") || !strcmp(module, "exceptions"))
        return "builtins";
    if (!strcmp(module, "copy_reg"))
        return "copyreg";
    if (!strcmp(module, "Queue"))
        return "queue";
    return module;
}

/* The allowed kind of module.name, or 0. */
static int class_kind(const struct dec *d, const char *module, const char *name)
{
    if (!strcmp(module, "_codecs") && !strcmp(name, "encode"))
        return KART__CLASSREF_CODECS_ENCODE;
    if (!strcmp(module, "builtins") && !strcmp(name, "bytes"))
        return KART__CLASSREF_BYTES;
    const kart_obj_unpickle_options *o = d->opt;
    for (size_t i = 0; o && i < o->nclasses; i++) {
        const kart_obj_class *c = &o->classes[i];
        if (c->module && c->name && !strcmp(c->module, module) && !strcmp(c->name, name) &&
            (c->kind == KART_OBJ_CLASS_ERROR || c->kind == KART_OBJ_CLASS_INSTANCE))
            return c->kind;
    }
    if (o && o->managers) {
        for (size_t i = 0; i < sizeof manager_classes / sizeof manager_classes[0]; i++)
            if (!strcmp(manager_classes[i].module, module) &&
                !strcmp(manager_classes[i].name, name))
                return manager_classes[i].kind;
        if (!strcmp(module, "builtins"))
            for (size_t i = 0; i < sizeof builtin_errors / sizeof builtin_errors[0]; i++)
                if (!strcmp(builtin_errors[i], name))
                    return KART_OBJ_CLASS_ERROR;
    }
    return 0;
}

static int push_class(struct dec *d, const char *module, size_t mlen, const char *name, size_t nlen)
{
    char mod[256], nm[256];
    if (mlen == 0 || nlen == 0 || mlen >= sizeof mod || nlen >= sizeof nm)
        return fail(d, -EPERM, "a class name that is empty or too long");
    memcpy(mod, module, mlen);
    mod[mlen] = 0;
    memcpy(nm, name, nlen);
    nm[nlen] = 0;
    if (memchr(mod, 0, mlen) || memchr(nm, 0, nlen))
        return fail(d, -EPERM, "a class name with a NUL byte");
    const char *m = d->proto < 3 ? rename2(mod) : mod;
    int kind = class_kind(d, m, nm);
    if (!kind)
        return fail(d, -EPERM, "class %s.%s is not allowed", m, nm);
    kart_obj *c = kart__obj_new(KART__OBJ_CLASSREF);
    if (c) {
        c->u.cls.kind = kind;
        c->u.cls.module = strdup(m);
        c->u.cls.name = strdup(nm);
        if (!c->u.cls.module || !c->u.cls.name) {
            kart__obj_free_tree(c);
            c = NULL;
        }
    }
    return push(d, c);
}

static int memo_put(struct dec *d, uint64_t idx)
{
    kart_obj *o = NULL;
    int rc = top(d, &o);
    if (rc < 0)
        return rc;
    if (idx > d->mn)
        return fail(d, -EPROTO, "memo index %llu out of order (next is %zu)",
                    (unsigned long long)idx, d->mn);
    if (idx == d->mn) {
        if (grow(&d->memo, &d->mcap, d->mn + 1, sizeof(kart_obj *)) < 0)
            return fail(d, -ENOMEM, "out of memory");
        d->mn++;
    }
    d->memo[idx] = o;
    return 0;
}

static int memo_get(struct dec *d, uint64_t idx)
{
    if (idx >= d->mn)
        return fail(d, -EPROTO, "memo index %llu not defined", (unsigned long long)idx);
    kart_obj *src = d->memo[idx], *c;
    size_t before = d->budget;
    int rc = kart__obj_copy(src, &d->budget, &c);
    if (rc == -E2BIG)
        return fail(d, -E2BIG, "the value is larger than max_size");
    if (rc < 0)
        return fail(d, -ENOMEM, "out of memory");
    /* Python shares the object: a change to either one would show in
     * both, which copies cannot do. */
    src->frozen = true;
    c->frozen = true;
    /* push() charges the root again: give that back. */
    d->budget += kart__obj_weight(c);
    (void)before;
    return push(d, c);
}

/* Reads a decimal line (text PUT/GET). */
static int rd_decimal_line(struct dec *d, uint64_t *v)
{
    const uint8_t *nl = memchr(d->p + d->pos, '\n', d->n - d->pos);
    if (!nl)
        return fail(d, -EPROTO, "truncated pickle: no end of line");
    size_t len = (size_t)(nl - (d->p + d->pos));
    if (len == 0 || len > 19)
        return fail(d, -EPROTO, "bad memo index");
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = d->p[d->pos + i];
        if (c < '0' || c > '9')
            return fail(d, -EPROTO, "bad memo index");
        x = x * 10 + (uint64_t)(c - '0');
    }
    d->pos += len + 1;
    *v = x;
    return 0;
}

static int op_text(struct dec *d, int lenbytes)
{
    size_t n;
    int rc = rd_len(d, lenbytes, &n);
    if (rc < 0)
        return rc;
    const char *s = (const char *)d->p + d->pos;
    d->pos += n;
    kart_obj *o;
    rc = kart_obj_str(s, n, &o);
    if (rc == -EILSEQ)
        return fail(d, -EILSEQ, "a str that is not valid UTF-8");
    if (rc < 0)
        return fail(d, rc, "out of memory");
    return push(d, o);
}

static int op_bytes(struct dec *d, int lenbytes, bool ascii_str)
{
    size_t n;
    int rc = rd_len(d, lenbytes, &n);
    if (rc < 0)
        return rc;
    const uint8_t *s = d->p + d->pos;
    d->pos += n;
    kart_obj *o;
    if (ascii_str) {
        /* Python 2 str: Python 3 reads it as ASCII text by default. */
        for (size_t i = 0; i < n; i++)
            if (s[i] >= 0x80)
                return fail(d, -EILSEQ, "a protocol 2 string that is not ASCII");
        rc = kart_obj_str((const char *)s, n, &o);
    } else {
        rc = kart_obj_bytes(s, n, &o);
    }
    if (rc < 0)
        return fail(d, rc, "out of memory");
    return push(d, o);
}

static int op_long(struct dec *d, int lenbytes)
{
    size_t n;
    int rc = rd_len(d, lenbytes, &n);
    if (rc < 0)
        return rc;
    kart_obj *o;
    rc = kart_obj_bigint(d->p + d->pos, n, &o);
    d->pos += n;
    if (rc < 0)
        return fail(d, rc, "out of memory");
    return push(d, o);
}

static int op_int(struct dec *d, int bytes, bool sign)
{
    int rc = need(d, (size_t)bytes);
    if (rc < 0)
        return rc;
    uint64_t v = rd_le(d, bytes);
    int64_t x = sign ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
    kart_obj *o;
    rc = kart_obj_int(x, &o);
    if (rc < 0)
        return fail(d, rc, "out of memory");
    return push(d, o);
}

/* REDUCE: callable(args) for the allowed callables. */
static int op_reduce(struct dec *d)
{
    kart_obj *args, *cls;
    int rc = pop(d, &args);
    if (rc < 0)
        return rc;
    rc = pop(d, &cls);
    if (rc < 0) {
        d->stack[d->sn++] = args;
        return rc;
    }
    kart_obj *res = NULL;
    if (cls->type != KART__OBJ_CLASSREF) {
        rc = fail(d, -EPERM, "REDUCE of a %s", kart_obj_type_name(cls->type));
    } else if (args->type != KART_OBJ_TUPLE) {
        rc = fail(d, -EPERM, "REDUCE with arguments that are not a tuple");
    } else if (cls->u.cls.kind == KART__CLASSREF_ERROR) {
        rc = kart_obj_error(cls->u.cls.module, cls->u.cls.name, args, NULL, &res);
        if (rc == 0)
            args = NULL;
        else
            rc = insert_error(d, rc);
    } else if (cls->u.cls.kind == KART__CLASSREF_BYTES) {
        if (args->u.seq.n != 0)
            rc = fail(d, -EPERM, "bytes() with arguments");
        else if ((rc = kart_obj_bytes(NULL, 0, &res)) < 0)
            rc = fail(d, rc, "out of memory");
    } else if (cls->u.cls.kind == KART__CLASSREF_CODECS_ENCODE) {
        const kart_obj *s, *enc;
        if (args->u.seq.n != 2 || (s = args->u.seq.v[0])->type != KART_OBJ_STR ||
            (enc = args->u.seq.v[1])->type != KART_OBJ_STR ||
            (strcmp(enc->u.s.p, "latin1") && strcmp(enc->u.s.p, "latin-1"))) {
            rc = fail(d, -EPERM, "_codecs.encode other than (str, 'latin1')");
        } else {
            /* UTF-8 to latin-1: every code point must be below 256. */
            const uint8_t *u = (const uint8_t *)s->u.s.p;
            uint8_t *b = malloc(s->u.s.n + 1);
            size_t bn = 0;
            if (!b)
                rc = fail(d, -ENOMEM, "out of memory");
            for (size_t i = 0; rc == 0 && i < s->u.s.n;) {
                if (u[i] < 0x80) {
                    b[bn++] = u[i++];
                } else if ((u[i] == 0xc2 || u[i] == 0xc3) && i + 1 < s->u.s.n) {
                    b[bn++] = (uint8_t)(((u[i] & 0x1f) << 6) | (u[i + 1] & 0x3f));
                    i += 2;
                } else {
                    rc = fail(d, -EPERM, "_codecs.encode of text beyond latin-1");
                }
            }
            if (rc == 0 && (rc = kart_obj_bytes(b, bn, &res)) < 0)
                rc = fail(d, rc, "out of memory");
            free(b);
        }
    } else {
        rc = fail(d, -EPERM, "class %s.%s is built by NEWOBJ, not REDUCE", cls->u.cls.module,
                  cls->u.cls.name);
    }
    int brc = bury(d, cls);
    if (args)
        brc = brc ? brc : bury(d, args);
    if (rc == 0 && brc < 0)
        rc = fail(d, brc, "out of memory");
    if (rc < 0) {
        kart__obj_free_tree(res);
        return rc;
    }
    return push(d, res);
}

static int op_newobj(struct dec *d)
{
    kart_obj *args, *cls;
    int rc = pop(d, &args);
    if (rc < 0)
        return rc;
    rc = pop(d, &cls);
    if (rc < 0) {
        d->stack[d->sn++] = args;
        return rc;
    }
    kart_obj *res = NULL;
    if (cls->type != KART__OBJ_CLASSREF || cls->u.cls.kind != KART__CLASSREF_INSTANCE)
        rc = fail(d, -EPERM, "NEWOBJ of something other than an allowed plain class");
    else if (args->type != KART_OBJ_TUPLE || args->u.seq.n != 0)
        rc = fail(d, -EPERM, "NEWOBJ with arguments");
    else if ((rc = kart_obj_instance(cls->u.cls.module, cls->u.cls.name, NULL, &res)) < 0)
        rc = fail(d, rc, "out of memory");
    int brc = bury(d, cls);
    brc = brc ? brc : bury(d, args);
    if (rc == 0 && brc < 0)
        rc = fail(d, brc, "out of memory");
    if (rc < 0) {
        kart__obj_free_tree(res);
        return rc;
    }
    return push(d, res);
}

static int op_build(struct dec *d)
{
    kart_obj *state, *target;
    int rc = pop(d, &state);
    if (rc < 0)
        return rc;
    rc = top(d, &target);
    if (rc == 0)
        rc = check_frozen(d, target);
    if (rc == 0 && state->type == KART__OBJ_CLASSREF)
        rc = fail(d, -EPERM, "BUILD with a class as the state");
    if (rc == 0) {
        if (target->type == KART_OBJ_INSTANCE) {
            if (target->u.cls.payload && target->u.cls.payload->type != KART_OBJ_NONE)
                rc = fail(d, -EPERM, "BUILD twice on one instance");
        } else if (target->type == KART_OBJ_ERROR) {
            if (state->type != KART_OBJ_DICT && state->type != KART_OBJ_NONE)
                rc = fail(d, -EPERM, "BUILD of an exception with a state that is not a dict");
            else if (target->u.cls.state)
                rc = fail(d, -EPERM, "BUILD twice on one exception");
        } else {
            rc = fail(d, -EPERM, "BUILD on a %s", kart_obj_type_name(target->type));
        }
    }
    if (rc == 0 && state->height + 1 > d->max_depth)
        rc = fail(d, -E2BIG, "nested deeper than %zu", d->max_depth);
    if (rc < 0) {
        d->stack[d->sn++] = state;
        return rc;
    }
    if (target->type == KART_OBJ_INSTANCE) {
        kart_obj *old = target->u.cls.payload;
        old->parent = NULL;
        target->u.cls.payload = state;
        rc = bury(d, old);
    } else if (state->type == KART_OBJ_NONE) {
        rc = bury(d, state);
        return rc < 0 ? fail(d, rc, "out of memory") : 0;
    } else {
        target->u.cls.state = state;
    }
    state->parent = target;
    if (target->height < state->height + 1)
        target->height = state->height + 1;
    return rc < 0 ? fail(d, rc, "out of memory") : 0;
}

static int step(struct dec *d, bool *done)
{
    d->op_pos = d->pos;
    uint8_t c = d->p[d->pos++];
    d->opcode = c;
    kart_obj *o = NULL, *o2 = NULL;
    int rc;
    switch (c) {
    case 0x80: /* PROTO */
        if ((rc = need(d, 1)) < 0)
            return rc;
        d->proto = d->p[d->pos++];
        if (d->proto < 2 || d->proto > 5)
            return fail(d, -EPROTO, "unsupported protocol %d", d->proto);
        return 0;
    case 0x95: /* FRAME: an 8-byte length; frames are checked, not needed. */
    {
        size_t n;
        return rd_len(d, 8, &n);
    }
    case '.': /* STOP */
        if (d->nmarks || d->sn != 1)
            return fail(d, -EPROTO, "STOP with %zu items and %zu marks on the stack", d->sn,
                        d->nmarks);
        if (d->stack[0]->type == KART__OBJ_CLASSREF)
            return fail(d, -EPERM, "the value is a class");
        if (d->pos != d->n)
            return fail(d, -EPROTO, "%zu bytes after STOP", d->n - d->pos);
        *done = true;
        return 0;
    case '(': /* MARK */
        if (d->nmarks >= d->max_depth)
            return fail(d, -E2BIG, "nested deeper than %zu", d->max_depth);
        if (grow(&d->marks, &d->mkcap, d->nmarks + 1, sizeof(size_t)) < 0)
            return fail(d, -ENOMEM, "out of memory");
        d->marks[d->nmarks++] = d->sn;
        return 0;
    case '0': /* POP */
        if (d->nmarks && d->sn == items_base(d)) {
            d->nmarks--;
            return 0;
        }
        if ((rc = pop(d, &o)) < 0)
            return rc;
        return bury(d, o) < 0 ? fail(d, -ENOMEM, "out of memory") : 0;
    case '1': /* POP_MARK */
        if (!d->nmarks)
            return fail(d, -EPROTO, "no mark on the stack");
        while (d->sn > items_base(d))
            if (bury(d, d->stack[--d->sn]) < 0)
                return fail(d, -ENOMEM, "out of memory");
        d->nmarks--;
        return 0;
    case '2': /* DUP */
        if ((rc = top(d, &o)) < 0)
            return rc;
        rc = kart__obj_copy(o, &d->budget, &o2);
        if (rc < 0)
            return fail(d, rc,
                        rc == -E2BIG ? "the value is larger than max_size" : "out of memory");
        o->frozen = true;
        o2->frozen = true;
        d->budget += kart__obj_weight(o2);
        return push(d, o2);
    case 'N':
        return push(d, kart__obj_new(KART_OBJ_NONE));
    case 0x88:
    case 0x89:
        o = kart__obj_new(KART_OBJ_BOOL);
        if (o)
            o->u.b = c == 0x88;
        return push(d, o);
    case 'J':
        return op_int(d, 4, true);
    case 'K':
        return op_int(d, 1, false);
    case 'M':
        return op_int(d, 2, false);
    case 0x8a:
        return op_long(d, 1);
    case 0x8b:
        return op_long(d, 4);
    case 'G': {
        if ((rc = need(d, 8)) < 0)
            return rc;
        uint64_t bits = 0;
        for (int k = 0; k < 8; k++)
            bits = (bits << 8) | d->p[d->pos++];
        o = kart__obj_new(KART_OBJ_FLOAT);
        if (o)
            memcpy(&o->u.f, &bits, sizeof bits);
        return push(d, o);
    }
    case 'X':
        return op_text(d, 4);
    case 0x8c:
        return op_text(d, 1);
    case 0x8d:
        return op_text(d, 8);
    case 'C':
        return op_bytes(d, 1, false);
    case 'B':
        return op_bytes(d, 4, false);
    case 0x8e:
        return op_bytes(d, 8, false);
    case 'U':
        return op_bytes(d, 1, true);
    case 'T':
        return op_bytes(d, 4, true);
    case ')':
        return push(d, kart__obj_new(KART_OBJ_TUPLE));
    case ']':
        return push(d, kart__obj_new(KART_OBJ_LIST));
    case '}':
        return push(d, kart__obj_new(KART_OBJ_DICT));
    case 't':
        return from_mark(d, KART_OBJ_TUPLE);
    case 'l':
        return from_mark(d, KART_OBJ_LIST);
    case 'd':
        return from_mark(d, KART_OBJ_DICT);
    case 0x85:
    case 0x86:
    case 0x87: {
        size_t k = (size_t)(c - 0x84);
        if (d->sn < items_base(d) + k)
            return fail(d, -EPROTO, "stack underflow");
        kart_obj *t = kart__obj_new(KART_OBJ_TUPLE);
        if (!t)
            return fail(d, -ENOMEM, "out of memory");
        if ((rc = charge(d, t)) < 0 || (rc = append_items(d, t, d->sn - k)) < 0) {
            kart__obj_free_tree(t);
            return rc;
        }
        d->stack[d->sn++] = t; /* the slot of the first item */
        return 0;
    }
    case 'a': /* APPEND */
        if (d->sn < items_base(d) + 2)
            return fail(d, -EPROTO, "stack underflow");
        return append_items(d, d->stack[d->sn - 2], d->sn - 1);
    case 'e': /* APPENDS */
    {
        if (!d->nmarks)
            return fail(d, -EPROTO, "no mark on the stack");
        size_t m = d->marks[d->nmarks - 1];
        if (m <= outer_base(d))
            return fail(d, -EPROTO, "stack underflow");
        if ((rc = append_items(d, d->stack[m - 1], m)) < 0)
            return rc;
        d->nmarks--;
        return 0;
    }
    case 's': /* SETITEM */
        if (d->sn < items_base(d) + 3)
            return fail(d, -EPROTO, "stack underflow");
        return set_items(d, d->stack[d->sn - 3], d->sn - 2);
    case 'u': /* SETITEMS */
    {
        if (!d->nmarks)
            return fail(d, -EPROTO, "no mark on the stack");
        size_t m = d->marks[d->nmarks - 1];
        if (m <= outer_base(d))
            return fail(d, -EPROTO, "stack underflow");
        if ((rc = set_items(d, d->stack[m - 1], m)) < 0)
            return rc;
        d->nmarks--;
        return 0;
    }
    case 0x94: /* MEMOIZE */
        return memo_put(d, d->mn);
    case 'q':
        if ((rc = need(d, 1)) < 0)
            return rc;
        return memo_put(d, rd_le(d, 1));
    case 'r':
        if ((rc = need(d, 4)) < 0)
            return rc;
        return memo_put(d, rd_le(d, 4));
    case 'p': {
        uint64_t v;
        if ((rc = rd_decimal_line(d, &v)) < 0)
            return rc;
        return memo_put(d, v);
    }
    case 'h':
        if ((rc = need(d, 1)) < 0)
            return rc;
        return memo_get(d, rd_le(d, 1));
    case 'j':
        if ((rc = need(d, 4)) < 0)
            return rc;
        return memo_get(d, rd_le(d, 4));
    case 'g': {
        uint64_t v;
        if ((rc = rd_decimal_line(d, &v)) < 0)
            return rc;
        return memo_get(d, v);
    }
    case 'c': { /* GLOBAL: module\nname\n */
        const uint8_t *s = d->p + d->pos, *end = d->p + d->n;
        const uint8_t *nl1 = memchr(s, '\n', (size_t)(end - s));
        const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
        if (!nl2)
            return fail(d, -EPROTO, "truncated pickle: GLOBAL without its two lines");
        d->pos = (size_t)(nl2 + 1 - d->p);
        return push_class(d, (const char *)s, (size_t)(nl1 - s), (const char *)nl1 + 1,
                          (size_t)(nl2 - nl1 - 1));
    }
    case 0x93: { /* STACK_GLOBAL */
        if ((rc = pop(d, &o2)) < 0)
            return rc;
        if ((rc = pop(d, &o)) < 0) {
            d->stack[d->sn++] = o2;
            return rc;
        }
        if (o->type != KART_OBJ_STR || o2->type != KART_OBJ_STR)
            rc = fail(d, -EPROTO, "STACK_GLOBAL of something other than two str");
        else
            rc = push_class(d, o->u.s.p, o->u.s.n, o2->u.s.p, o2->u.s.n);
        int b1 = bury(d, o), b2 = bury(d, o2);
        if (rc == 0 && (b1 < 0 || b2 < 0))
            rc = fail(d, -ENOMEM, "out of memory");
        return rc;
    }
    case 'R':
        return op_reduce(d);
    case 0x81:
        return op_newobj(d);
    case 'b':
        return op_build(d);
    case 0x8f:
    case 0x90:
    case 0x91:
        return fail(d, -EPERM, "sets are not supported");
    case 0x96:
        return fail(d, -EPERM, "bytearray is not supported");
    case 0x97:
    case 0x98:
        return fail(d, -EPERM, "out-of-band buffers are not supported");
    case 'P':
    case 'Q':
        return fail(d, -EPERM, "persistent ids are not supported");
    case 0x82:
    case 0x83:
    case 0x84:
        return fail(d, -EPERM, "extension codes are not supported");
    case 0x92:
        return fail(d, -EPERM, "NEWOBJ_EX is not allowed");
    case 'i':
    case 'o':
        return fail(d, -EPERM, "INST/OBJ are not allowed");
    case 'I':
    case 'L':
    case 'F':
    case 'S':
    case 'V':
        return fail(d, -EPERM, "protocol 0 text opcode '%c' is not supported", c);
    default:
        return fail(d, -EPROTO, "unknown opcode 0x%02x", c);
    }
}

int kart_obj_unpickle(const void *buf, size_t len, const kart_obj_unpickle_options *options,
                      kart_obj **out, kart_obj_pickle_error *err)
{
    struct dec d = {.p = buf, .n = len, .opt = options, .err = err, .opcode = -1};
    if (!out || (!buf && len > 0))
        return fail(&d, -EINVAL, "bad arguments");
    d.max_depth = options && options->max_depth && options->max_depth <= KART_OBJ_MAX_DEPTH
                      ? options->max_depth
                      : KART_OBJ_MAX_DEPTH;
    if (options && options->max_size)
        d.budget = options->max_size;
    else
        d.budget = len > (SIZE_MAX - (1u << 20)) / 64 ? SIZE_MAX : len * 64 + (1u << 20);
    int rc = 0;
    bool done = false;
    if (len < 2 || d.p[0] != 0x80) {
        d.opcode = len ? d.p[0] : -1;
        rc = fail(&d, -EPROTO, "not a pickle of protocol 2 to 5 (no PROTO opcode first)");
    }
    while (rc == 0 && !done) {
        if (d.pos >= d.n) {
            d.op_pos = d.pos;
            d.opcode = -1;
            rc = fail(&d, -EPROTO, "truncated pickle: no STOP");
            break;
        }
        rc = step(&d, &done);
    }
    kart_obj *result = NULL;
    if (rc == 0) {
        result = d.stack[0];
        d.sn = 0;
        result->frozen = false;
    }
    for (size_t i = 0; i < d.sn; i++)
        kart__obj_free_tree(d.stack[i]);
    for (size_t i = 0; i < d.gn; i++)
        kart__obj_free_tree(d.grave[i]);
    free(d.stack);
    free(d.marks);
    free(d.memo);
    free(d.grave);
    if (rc == 0)
        *out = result;
    return rc;
}

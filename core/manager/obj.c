/*
 * core/manager/obj.c — kart_obj, the typed value tree (kart/obj.h):
 * constructors, readers, containers (an insertion-ordered hash dict),
 * Python's == and a repr printer.
 */
#include "obj_private.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

kart_obj *kart__obj_new(kart_obj_type type)
{
    kart_obj *o = calloc(1, sizeof *o);
    if (o) {
        o->type = type;
        o->height = 1;
    }
    return o;
}

size_t kart__obj_weight(const kart_obj *o)
{
    size_t w = sizeof *o;
    switch ((int)o->type) {
    case KART_OBJ_STR:
    case KART_OBJ_BYTES:
    case KART_OBJ_BIGINT:
        w += o->u.s.n + 1;
        break;
    case KART_OBJ_TUPLE:
    case KART_OBJ_LIST:
        w += o->u.seq.n * sizeof(kart_obj *);
        break;
    case KART_OBJ_DICT:
        w += o->u.d.live * (sizeof(struct kart__dict_entry) + 2 * sizeof(size_t));
        break;
    case KART_OBJ_ERROR:
    case KART_OBJ_INSTANCE:
    case KART__OBJ_CLASSREF:
        w += strlen(o->u.cls.module) + strlen(o->u.cls.name) + 2;
        break;
    default:
        break;
    }
    return w;
}

void kart__obj_free_tree(kart_obj *o)
{
    if (!o)
        return;
    switch ((int)o->type) {
    case KART_OBJ_STR:
    case KART_OBJ_BYTES:
    case KART_OBJ_BIGINT:
        /* The bytes live in the object's own allocation. */
        break;
    case KART_OBJ_TUPLE:
    case KART_OBJ_LIST:
        for (size_t i = 0; i < o->u.seq.n; i++)
            kart__obj_free_tree(o->u.seq.v[i]);
        free(o->u.seq.v);
        break;
    case KART_OBJ_DICT:
        for (size_t i = 0; i < o->u.d.n; i++) {
            kart__obj_free_tree(o->u.d.e[i].key);
            kart__obj_free_tree(o->u.d.e[i].value);
        }
        free(o->u.d.e);
        free(o->u.d.index);
        break;
    case KART_OBJ_ERROR:
    case KART_OBJ_INSTANCE:
    case KART__OBJ_CLASSREF:
        free(o->u.cls.module);
        free(o->u.cls.name);
        kart__obj_free_tree(o->u.cls.payload);
        kart__obj_free_tree(o->u.cls.state);
        break;
    default:
        break;
    }
    free(o);
}

void kart_obj_free(kart_obj *obj)
{
    if (!obj || obj->parent)
        return;
    kart__obj_free_tree(obj);
}

/* ---- UTF-8, bytes ---- */

int kart__utf8_check(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return -EILSEQ;
        }
        if (n - i < len)
            return -EILSEQ;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return -EILSEQ;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return -EILSEQ;
        i += len;
    }
    return 0;
}

kart_obj *kart__obj_new_bytes(kart_obj_type type, const void *p, size_t n)
{
    if (n > SIZE_MAX - sizeof(kart_obj) - 1)
        return NULL;
    kart_obj *o = malloc(sizeof *o + n + 1);
    if (!o)
        return NULL;
    memset(o, 0, sizeof *o);
    o->type = type;
    o->height = 1;
    char *c = (char *)(o + 1);
    if (n)
        memcpy(c, p, n);
    c[n] = 0;
    o->u.s.p = c;
    o->u.s.n = n;
    return o;
}

size_t kart__bigint_trim(const uint8_t *b, size_t n)
{
    if (n == 0)
        return 1;
    while (n > 1) {
        uint8_t last = b[n - 1], prev_hi = b[n - 2] & 0x80;
        if ((last == 0x00 && !prev_hi) || (last == 0xff && prev_hi))
            n--;
        else
            break;
    }
    return n;
}

size_t kart__int_bytes(int64_t v, uint8_t out[8])
{
    uint64_t u = (uint64_t)v;
    for (int k = 0; k < 8; k++)
        out[k] = (uint8_t)(u >> (8 * k));
    return kart__bigint_trim(out, 8);
}

/* ---- Constructors ---- */

static int make_scalar(kart_obj_type type, kart_obj **out, kart_obj **o)
{
    if (!out)
        return -EINVAL;
    *o = kart__obj_new(type);
    return *o ? 0 : -ENOMEM;
}

int kart_obj_none(kart_obj **out)
{
    kart_obj *o;
    int rc = make_scalar(KART_OBJ_NONE, out, &o);
    if (rc == 0)
        *out = o;
    return rc;
}

int kart_obj_bool(bool v, kart_obj **out)
{
    kart_obj *o;
    int rc = make_scalar(KART_OBJ_BOOL, out, &o);
    if (rc == 0) {
        o->u.b = v;
        *out = o;
    }
    return rc;
}

int kart_obj_int(int64_t v, kart_obj **out)
{
    kart_obj *o;
    int rc = make_scalar(KART_OBJ_INT, out, &o);
    if (rc == 0) {
        o->u.i = v;
        *out = o;
    }
    return rc;
}

int kart_obj_bigint(const void *bytes, size_t n, kart_obj **out)
{
    if (!out || (!bytes && n > 0))
        return -EINVAL;
    const uint8_t *b = bytes;
    size_t m = n ? kart__bigint_trim(b, n) : 0;
    if (m <= 8) {
        uint64_t u = 0;
        for (size_t k = 0; k < m; k++)
            u |= (uint64_t)b[k] << (8 * k);
        if (m > 0 && m < 8 && (b[m - 1] & 0x80))
            u |= ~(uint64_t)0 << (8 * m);
        return kart_obj_int((int64_t)u, out);
    }
    kart_obj *o = kart__obj_new_bytes(KART_OBJ_BIGINT, b, m);
    if (!o)
        return -ENOMEM;
    *out = o;
    return 0;
}

int kart_obj_float(double v, kart_obj **out)
{
    kart_obj *o;
    int rc = make_scalar(KART_OBJ_FLOAT, out, &o);
    if (rc == 0) {
        o->u.f = v;
        *out = o;
    }
    return rc;
}

int kart_obj_str(const char *s, size_t len, kart_obj **out)
{
    if (!out || (!s && len > 0))
        return -EINVAL;
    if (kart__utf8_check((const uint8_t *)s, len) < 0)
        return -EILSEQ;
    kart_obj *o = kart__obj_new_bytes(KART_OBJ_STR, s, len);
    if (!o)
        return -ENOMEM;
    *out = o;
    return 0;
}

int kart_obj_strz(const char *s, kart_obj **out)
{
    if (!s)
        return -EINVAL;
    return kart_obj_str(s, strlen(s), out);
}

int kart_obj_bytes(const void *p, size_t n, kart_obj **out)
{
    if (!out || (!p && n > 0))
        return -EINVAL;
    kart_obj *o = kart__obj_new_bytes(KART_OBJ_BYTES, p, n);
    if (!o)
        return -ENOMEM;
    *out = o;
    return 0;
}

int kart_obj_list(kart_obj **out)
{
    kart_obj *o;
    int rc = make_scalar(KART_OBJ_LIST, out, &o);
    if (rc == 0)
        *out = o;
    return rc;
}

int kart_obj_dict(kart_obj **out)
{
    kart_obj *o;
    int rc = make_scalar(KART_OBJ_DICT, out, &o);
    if (rc == 0)
        *out = o;
    return rc;
}

/* ---- Parents and heights ---- */

/* 0 when item may go into c within max_depth: a root, not c nor one of
 * c's ancestors, not too deep. */
static int check_insert(const kart_obj *c, const kart_obj *item, size_t max_depth)
{
    if (!item || item->parent || item->type == KART__OBJ_CLASSREF)
        return -EINVAL;
    size_t depth = 0;
    for (const kart_obj *a = c; a; a = a->parent) {
        if (a == item)
            return -ELOOP;
        depth++;
    }
    if (depth + item->height > max_depth)
        return -E2BIG;
    return 0;
}

static void adopt(kart_obj *c, kart_obj *item)
{
    item->parent = c;
    uint32_t h = item->height + 1;
    for (kart_obj *a = c; a && a->height < h; a = a->parent, h++)
        a->height = h;
}

static uint32_t child_height(const kart_obj *c)
{
    uint32_t h = 0;
    switch (c->type) {
    case KART_OBJ_TUPLE:
    case KART_OBJ_LIST:
        for (size_t i = 0; i < c->u.seq.n; i++)
            if (c->u.seq.v[i]->height > h)
                h = c->u.seq.v[i]->height;
        break;
    case KART_OBJ_DICT:
        for (size_t i = 0; i < c->u.d.n; i++) {
            const struct kart__dict_entry *e = &c->u.d.e[i];
            if (!e->key)
                continue;
            if (e->key->height > h)
                h = e->key->height;
            if (e->value->height > h)
                h = e->value->height;
        }
        break;
    case KART_OBJ_ERROR:
    case KART_OBJ_INSTANCE:
        if (c->u.cls.payload)
            h = c->u.cls.payload->height;
        if (c->u.cls.state && c->u.cls.state->height > h)
            h = c->u.cls.state->height;
        break;
    default:
        break;
    }
    return h + 1;
}

/* After an item of height h left c: recompute the heights above. */
static void disown(kart_obj *c, kart_obj *item)
{
    item->parent = NULL;
    uint32_t h = item->height + 1;
    for (kart_obj *a = c; a && a->height == h; a = a->parent) {
        uint32_t nh = child_height(a);
        if (nh == a->height)
            break;
        a->height = nh;
        h++;
    }
}

/* ---- Sequences ---- */

static int seq_reserve(kart_obj *s, size_t more)
{
    if (s->u.seq.n + more <= s->u.seq.cap)
        return 0;
    size_t cap = s->u.seq.cap ? s->u.seq.cap : 4;
    while (cap < s->u.seq.n + more) {
        if (cap > SIZE_MAX / 2 / sizeof(kart_obj *))
            return -ENOMEM;
        cap *= 2;
    }
    kart_obj **v = realloc(s->u.seq.v, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    s->u.seq.v = v;
    s->u.seq.cap = cap;
    return 0;
}

static bool is_seq(const kart_obj *o)
{
    return o && (o->type == KART_OBJ_TUPLE || o->type == KART_OBJ_LIST);
}

int kart__obj_seq_insert(kart_obj *s, size_t i, kart_obj *item, size_t max_depth)
{
    if (!is_seq(s) || !item)
        return -EINVAL;
    if (i > s->u.seq.n)
        return -ERANGE;
    int rc = check_insert(s, item, max_depth);
    if (rc < 0)
        return rc;
    if (seq_reserve(s, 1) < 0)
        return -ENOMEM;
    memmove(&s->u.seq.v[i + 1], &s->u.seq.v[i], (s->u.seq.n - i) * sizeof(kart_obj *));
    s->u.seq.v[i] = item;
    s->u.seq.n++;
    adopt(s, item);
    return 0;
}

int kart_obj_tuple(kart_obj *const *items, size_t n, kart_obj **out)
{
    if (!out || (!items && n > 0))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!items[i] || items[i]->parent || items[i]->type == KART__OBJ_CLASSREF)
            return -EINVAL;
        for (size_t k = 0; k < i; k++)
            if (items[k] == items[i])
                return -EINVAL;
        if (items[i]->height + 1 > KART_OBJ_MAX_DEPTH)
            return -E2BIG;
    }
    kart_obj *t = kart__obj_new(KART_OBJ_TUPLE);
    if (!t || seq_reserve(t, n) < 0) {
        free(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        t->u.seq.v[i] = items[i];
        adopt(t, items[i]);
    }
    t->u.seq.n = n;
    *out = t;
    return 0;
}

int kart_obj_append(kart_obj *seq, kart_obj *item)
{
    if (!is_seq(seq))
        return -EINVAL;
    return kart__obj_seq_insert(seq, seq->u.seq.n, item, KART_OBJ_MAX_DEPTH);
}

int kart_obj_insert(kart_obj *seq, size_t i, kart_obj *item)
{
    return kart__obj_seq_insert(seq, i, item, KART_OBJ_MAX_DEPTH);
}

int kart_obj_set_item(kart_obj *seq, size_t i, kart_obj *item)
{
    if (!is_seq(seq) || !item)
        return -EINVAL;
    if (i >= seq->u.seq.n)
        return -ERANGE;
    kart_obj *old = seq->u.seq.v[i];
    if (item == old)
        return -EINVAL;
    /* The depth check depends on where item goes, not on what it
     * replaces. */
    int rc = check_insert(seq, item, KART_OBJ_MAX_DEPTH);
    if (rc < 0)
        return rc;
    seq->u.seq.v[i] = item;
    disown(seq, old);
    adopt(seq, item);
    kart__obj_free_tree(old);
    return 0;
}

int kart_obj_remove(kart_obj *seq, size_t i, kart_obj **item)
{
    if (!is_seq(seq))
        return -EINVAL;
    if (i >= seq->u.seq.n)
        return -ERANGE;
    kart_obj *old = seq->u.seq.v[i];
    memmove(&seq->u.seq.v[i], &seq->u.seq.v[i + 1], (seq->u.seq.n - i - 1) * sizeof(kart_obj *));
    seq->u.seq.n--;
    disown(seq, old);
    if (item)
        *item = old;
    else
        kart__obj_free_tree(old);
    return 0;
}

/* ---- Hashing and equality ---- */

/* A per-process seed, so that a peer cannot prepare keys that collide
 * (hash flooding a manager's dict). */
static uint64_t hash_seed;

/* A priority: a function spawned from a statically linked program runs in
 * the program's first constructor without one (kart/process.h). */
__attribute__((constructor(104))) static void seed_hash(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40) ^
                 (uint64_t)(uintptr_t)&ts;
    hash_seed = x | 1;
}

static uint64_t mix(uint64_t x)
{
    x ^= hash_seed;
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#define HASH_BIG 0x6b61727462696721ull
#define MOD61 ((UINT64_C(1) << 61) - 1)

/* The hash of an integer beyond int64 from its magnitude mod 2^61 - 1
 * (as Python does), so that a big int and the float of the same value
 * hash alike and distinct big ints spread out. */
static uint64_t hash_big(uint64_t mod, bool neg)
{
    return mix(HASH_BIG ^ mod ^ ((uint64_t)neg << 63));
}

static uint64_t bigint_mod(const uint8_t *b, size_t n, bool *neg)
{
    *neg = b[n - 1] & 0x80;
    /* The magnitude, from the top byte down; a negative value's
     * magnitude is ~x + 1, done byte by byte from the bottom first. */
    uint8_t tmp[64];
    uint8_t *mag = n <= sizeof tmp ? tmp : malloc(n);
    if (!mag)
        return 0; /* only spreads worse */
    unsigned carry = 1;
    for (size_t k = 0; k < n; k++) {
        if (*neg) {
            unsigned x = (uint8_t)~b[k] + carry;
            mag[k] = (uint8_t)x;
            carry = x >> 8;
        } else {
            mag[k] = b[k];
        }
    }
    unsigned __int128 r = 0;
    for (size_t k = n; k-- > 0;)
        r = ((r << 8) | mag[k]) % MOD61;
    if (mag != tmp)
        free(mag);
    return (uint64_t)r;
}

static uint64_t float_big_mod(double f, bool *neg)
{
    int e;
    double m = frexp(fabs(f), &e);
    uint64_t mant = (uint64_t)ldexp(m, 53);
    int shift = e - 53; /* >= 11: the value is at least 2^63 */
    *neg = f < 0;
    unsigned __int128 r = (unsigned __int128)(mant % MOD61) << (shift % 61);
    return (uint64_t)(r % MOD61);
}

static bool float_is_int64(double f, int64_t *v)
{
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0) || f != floor(f))
        return false;
    *v = (int64_t)f;
    return true;
}

static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return mix(h);
}

bool kart_obj_hashable(const kart_obj *o)
{
    if (!o)
        return false;
    switch (o->type) {
    case KART_OBJ_NONE:
    case KART_OBJ_BOOL:
    case KART_OBJ_INT:
    case KART_OBJ_BIGINT:
    case KART_OBJ_FLOAT:
    case KART_OBJ_STR:
    case KART_OBJ_BYTES:
        return true;
    case KART_OBJ_TUPLE:
        for (size_t i = 0; i < o->u.seq.n; i++)
            if (!kart_obj_hashable(o->u.seq.v[i]))
                return false;
        return true;
    default:
        return false;
    }
}

uint64_t kart_obj_hash(const kart_obj *o)
{
    if (!o)
        return 0;
    int64_t v;
    switch (o->type) {
    case KART_OBJ_NONE:
        return 0x4e6f6e65ull;
    case KART_OBJ_BOOL:
        return mix((uint64_t)o->u.b);
    case KART_OBJ_INT:
        return mix((uint64_t)o->u.i);
    case KART_OBJ_BIGINT: {
        bool neg;
        uint64_t m = bigint_mod((const uint8_t *)o->u.s.p, o->u.s.n, &neg);
        return hash_big(m, neg);
    }
    case KART_OBJ_FLOAT:
        if (float_is_int64(o->u.f, &v))
            return mix((uint64_t)v);
        if (isfinite(o->u.f) && o->u.f == floor(o->u.f)) {
            bool neg;
            uint64_t m = float_big_mod(o->u.f, &neg);
            return hash_big(m, neg);
        }
        {
            uint64_t bits;
            memcpy(&bits, &o->u.f, sizeof bits);
            return mix(bits ^ 0x666c6f6174ull);
        }
    case KART_OBJ_STR:
        return hash_bytes(o->u.s.p, o->u.s.n, 1);
    case KART_OBJ_BYTES:
        return hash_bytes(o->u.s.p, o->u.s.n, 2);
    case KART_OBJ_TUPLE: {
        uint64_t h = 0x7475706c65ull ^ o->u.seq.n;
        for (size_t i = 0; i < o->u.seq.n; i++)
            h = mix(h ^ kart_obj_hash(o->u.seq.v[i])) + i;
        return h;
    }
    default:
        return 0;
    }
}

/* A double with an integral value of at least 2^63 in magnitude as
 * normalised two's complement bytes (at most 130). */
size_t kart__float_bigint(double f, uint8_t *out)
{
    int e;
    double m = frexp(fabs(f), &e); /* |f| = m * 2^e, 0.5 <= m < 1 */
    uint64_t mant = (uint64_t)ldexp(m, 53);
    int shift = e - 53; /* >= 11 here */
    size_t nbytes = (size_t)(e / 8 + 2);
    memset(out, 0, nbytes);
    for (int bit = 0; bit < 53; bit++) {
        if (mant & ((uint64_t)1 << bit)) {
            int pos = bit + shift;
            out[pos / 8] |= (uint8_t)(1u << (pos % 8));
        }
    }
    if (f < 0) {
        unsigned carry = 1;
        for (size_t k = 0; k < nbytes; k++) {
            unsigned x = (uint8_t)~out[k] + carry;
            out[k] = (uint8_t)x;
            carry = x >> 8;
        }
    }
    return kart__bigint_trim(out, nbytes);
}

static int num_kind(const kart_obj *o)
{
    switch (o->type) {
    case KART_OBJ_BOOL:
    case KART_OBJ_INT:
        return 1;
    case KART_OBJ_BIGINT:
        return 2;
    case KART_OBJ_FLOAT:
        return 3;
    default:
        return 0;
    }
}

static int64_t int_value(const kart_obj *o)
{
    return o->type == KART_OBJ_BOOL ? (int64_t)o->u.b : o->u.i;
}

static bool num_equal(const kart_obj *a, int ka, const kart_obj *b, int kb)
{
    if (ka > kb) {
        const kart_obj *t = a;
        a = b;
        b = t;
        int k = ka;
        ka = kb;
        kb = k;
    }
    if (ka == 1 && kb == 1)
        return int_value(a) == int_value(b);
    if (ka == 1 && kb == 2)
        return false; /* a big int never fits int64 */
    if (ka == 1 && kb == 3) {
        int64_t v;
        return float_is_int64(b->u.f, &v) && v == int_value(a);
    }
    if (ka == 2 && kb == 2)
        return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
    if (ka == 2 && kb == 3) {
        double f = b->u.f;
        int64_t v;
        if (!isfinite(f) || f != floor(f) || float_is_int64(f, &v))
            return false;
        uint8_t tmp[160];
        size_t n = kart__float_bigint(f, tmp);
        return n == a->u.s.n && memcmp(tmp, a->u.s.p, n) == 0;
    }
    return a->u.f == b->u.f;
}

static bool dict_find(const kart_obj *d, const kart_obj *key, uint64_t h, size_t *at);

bool kart_obj_equal(const kart_obj *a, const kart_obj *b)
{
    if (!a || !b)
        return a == b;
    int ka = num_kind(a), kb = num_kind(b);
    if (ka || kb)
        return ka && kb && num_equal(a, ka, b, kb);
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case KART_OBJ_NONE:
        return true;
    case KART_OBJ_STR:
    case KART_OBJ_BYTES:
        return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
    case KART_OBJ_TUPLE:
    case KART_OBJ_LIST:
        if (a->u.seq.n != b->u.seq.n)
            return false;
        for (size_t i = 0; i < a->u.seq.n; i++)
            if (!kart_obj_equal(a->u.seq.v[i], b->u.seq.v[i]))
                return false;
        return true;
    case KART_OBJ_DICT:
        if (a->u.d.live != b->u.d.live)
            return false;
        for (size_t i = 0; i < a->u.d.n; i++) {
            const struct kart__dict_entry *e = &a->u.d.e[i];
            size_t at;
            if (!e->key)
                continue;
            if (!dict_find(b, e->key, e->hash, &at) ||
                !kart_obj_equal(e->value, b->u.d.e[at].value))
                return false;
        }
        return true;
    case KART_OBJ_ERROR:
    case KART_OBJ_INSTANCE:
        return strcmp(a->u.cls.module, b->u.cls.module) == 0 &&
               strcmp(a->u.cls.name, b->u.cls.name) == 0 &&
               kart_obj_equal(a->u.cls.payload, b->u.cls.payload) &&
               kart_obj_equal(a->u.cls.state, b->u.cls.state);
    default:
        return false;
    }
}

/* ---- Dicts ---- */

static bool dict_find(const kart_obj *d, const kart_obj *key, uint64_t h, size_t *at)
{
    if (!d->u.d.index_cap)
        return false;
    size_t mask = d->u.d.index_cap - 1;
    for (size_t j = h & mask, step = 1;; j = (j + step++) & mask) {
        size_t slot = d->u.d.index[j];
        if (slot == 0)
            return false;
        const struct kart__dict_entry *e = &d->u.d.e[slot - 1];
        if (e->key && e->hash == h && kart_obj_equal(e->key, key)) {
            *at = slot - 1;
            return true;
        }
    }
}

/* Drops removed entries and rebuilds the index for at least need entries. */
static int dict_rebuild(kart_obj *d, size_t need)
{
    size_t icap = 8;
    while (icap < need * 2) {
        if (icap > SIZE_MAX / 4 / sizeof(size_t))
            return -ENOMEM;
        icap *= 2;
    }
    size_t *index = calloc(icap, sizeof *index);
    if (!index)
        return -ENOMEM;
    size_t w = 0;
    for (size_t i = 0; i < d->u.d.n; i++)
        if (d->u.d.e[i].key)
            d->u.d.e[w++] = d->u.d.e[i];
    d->u.d.n = w;
    for (size_t i = 0; i < w; i++) {
        size_t mask = icap - 1;
        size_t j = d->u.d.e[i].hash & mask, step = 1;
        while (index[j])
            j = (j + step++) & mask;
        index[j] = i + 1;
    }
    free(d->u.d.index);
    d->u.d.index = index;
    d->u.d.index_cap = icap;
    return 0;
}

int kart__obj_dict_set(kart_obj *d, kart_obj *key, kart_obj *value, size_t max_depth,
                       kart_obj **old_key, kart_obj **old_value)
{
    if (!d || d->type != KART_OBJ_DICT || !key || !value || key == value)
        return -EINVAL;
    if (!kart_obj_hashable(key))
        return -EINVAL;
    int rc = check_insert(d, key, max_depth);
    if (rc == 0)
        rc = check_insert(d, value, max_depth);
    if (rc < 0)
        return rc;
    uint64_t h = kart_obj_hash(key);
    size_t at;
    if (dict_find(d, key, h, &at)) {
        struct kart__dict_entry *e = &d->u.d.e[at];
        kart_obj *ov = e->value;
        e->value = value;
        disown(d, ov);
        adopt(d, value);
        if (old_key) {
            *old_key = key;
            *old_value = ov;
        } else {
            kart__obj_free_tree(key);
            kart__obj_free_tree(ov);
        }
        return 0;
    }
    if (d->u.d.n == d->u.d.cap) {
        size_t cap = d->u.d.cap ? d->u.d.cap * 2 : 4;
        if (cap > SIZE_MAX / 4 / sizeof(struct kart__dict_entry))
            return -ENOMEM;
        struct kart__dict_entry *e = realloc(d->u.d.e, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        d->u.d.e = e;
        d->u.d.cap = cap;
    }
    if ((d->u.d.n + 1) * 3 > d->u.d.index_cap * 2 && dict_rebuild(d, d->u.d.live + 1) < 0)
        return -ENOMEM;
    struct kart__dict_entry *e = &d->u.d.e[d->u.d.n];
    e->hash = h;
    e->key = key;
    e->value = value;
    size_t mask = d->u.d.index_cap - 1;
    size_t j = h & mask, step = 1;
    while (d->u.d.index[j])
        j = (j + step++) & mask;
    d->u.d.index[j] = d->u.d.n + 1;
    d->u.d.n++;
    d->u.d.live++;
    adopt(d, key);
    adopt(d, value);
    if (old_key)
        *old_key = *old_value = NULL;
    return 0;
}

int kart_obj_dict_set(kart_obj *d, kart_obj *key, kart_obj *value)
{
    return kart__obj_dict_set(d, key, value, KART_OBJ_MAX_DEPTH, NULL, NULL);
}

int kart_obj_dict_get(const kart_obj *d, const kart_obj *key, const kart_obj **value)
{
    if (!d || d->type != KART_OBJ_DICT || !key || !value || !kart_obj_hashable(key))
        return -EINVAL;
    size_t at;
    if (!dict_find(d, key, kart_obj_hash(key), &at))
        return -ENOENT;
    *value = d->u.d.e[at].value;
    return 0;
}

int kart_obj_dict_get_str(const kart_obj *d, const char *key, const kart_obj **value)
{
    if (!key)
        return -EINVAL;
    kart_obj k = {.type = KART_OBJ_STR, .height = 1};
    k.u.s.p = (char *)key;
    k.u.s.n = strlen(key);
    return kart_obj_dict_get(d, &k, value);
}

int kart_obj_dict_pop(kart_obj *d, const kart_obj *key, kart_obj **value)
{
    if (!d || d->type != KART_OBJ_DICT || !key || !kart_obj_hashable(key))
        return -EINVAL;
    size_t at;
    if (!dict_find(d, key, kart_obj_hash(key), &at))
        return -ENOENT;
    struct kart__dict_entry *e = &d->u.d.e[at];
    kart_obj *k = e->key, *v = e->value;
    e->key = NULL;
    e->value = NULL;
    d->u.d.live--;
    disown(d, k);
    disown(d, v);
    kart__obj_free_tree(k);
    if (value)
        *value = v;
    else
        kart__obj_free_tree(v);
    /* Many removed entries: compact (cannot fail for want of memory to
     * matter: on failure the removed entries just stay). */
    if (d->u.d.n - d->u.d.live > 8 && d->u.d.n - d->u.d.live > d->u.d.live)
        (void)dict_rebuild(d, d->u.d.live);
    return 0;
}

int kart_obj_clear(kart_obj *o)
{
    if (!o)
        return -EINVAL;
    if (is_seq(o)) {
        for (size_t i = 0; i < o->u.seq.n; i++)
            kart__obj_free_tree(o->u.seq.v[i]);
        o->u.seq.n = 0;
    } else if (o->type == KART_OBJ_DICT) {
        for (size_t i = 0; i < o->u.d.n; i++) {
            kart__obj_free_tree(o->u.d.e[i].key);
            kart__obj_free_tree(o->u.d.e[i].value);
        }
        free(o->u.d.e);
        free(o->u.d.index);
        memset(&o->u.d, 0, sizeof o->u.d);
    } else {
        return -EINVAL;
    }
    for (kart_obj *a = o; a; a = a->parent) {
        uint32_t nh = child_height(a);
        if (nh == a->height)
            break;
        a->height = nh;
    }
    return 0;
}

/* ---- Errors and instances ---- */

static int make_class(kart_obj_type type, const char *module, const char *name, kart_obj **out)
{
    if (!module || !name || !*module || !*name)
        return -EINVAL;
    kart_obj *o = kart__obj_new(type);
    if (!o)
        return -ENOMEM;
    o->u.cls.module = strdup(module);
    o->u.cls.name = strdup(name);
    if (!o->u.cls.module || !o->u.cls.name) {
        kart__obj_free_tree(o);
        return -ENOMEM;
    }
    *out = o;
    return 0;
}

int kart_obj_error(const char *module, const char *name, kart_obj *args, kart_obj *state,
                   kart_obj **out)
{
    if (!out || (args && (args->type != KART_OBJ_TUPLE || args->parent)) ||
        (state && (state->type != KART_OBJ_DICT || state->parent)) || (args && args == state))
        return -EINVAL;
    if ((args && args->height + 1 > KART_OBJ_MAX_DEPTH) ||
        (state && state->height + 1 > KART_OBJ_MAX_DEPTH))
        return -E2BIG;
    kart_obj *o, *a = args;
    int rc = make_class(KART_OBJ_ERROR, module, name, &o);
    if (rc < 0)
        return rc;
    if (!a && kart_obj_tuple(NULL, 0, &a) < 0) {
        kart__obj_free_tree(o);
        return -ENOMEM;
    }
    o->u.cls.payload = a;
    adopt(o, a);
    if (state) {
        o->u.cls.state = state;
        adopt(o, state);
    }
    *out = o;
    return 0;
}

int kart_obj_instance(const char *module, const char *name, kart_obj *state, kart_obj **out)
{
    if (!out || (state && (state->parent || state->type == KART__OBJ_CLASSREF)))
        return -EINVAL;
    if (state && state->height + 1 > KART_OBJ_MAX_DEPTH)
        return -E2BIG;
    kart_obj *o, *s = state;
    int rc = make_class(KART_OBJ_INSTANCE, module, name, &o);
    if (rc < 0)
        return rc;
    if (!s && kart_obj_none(&s) < 0) {
        kart__obj_free_tree(o);
        return -ENOMEM;
    }
    o->u.cls.payload = s;
    adopt(o, s);
    *out = o;
    return 0;
}

/* ---- Copy ---- */

int kart__obj_copy(const kart_obj *src, size_t *budget, kart_obj **out)
{
    if (budget) {
        size_t w = kart__obj_weight(src);
        if (w > *budget)
            return -E2BIG;
        *budget -= w;
    }
    kart_obj *o;
    if (src->type == KART_OBJ_STR || src->type == KART_OBJ_BYTES || src->type == KART_OBJ_BIGINT)
        o = kart__obj_new_bytes(src->type, src->u.s.p, src->u.s.n);
    else
        o = kart__obj_new(src->type);
    if (!o)
        return -ENOMEM;
    o->height = src->height;
    int rc = 0;
    switch ((int)src->type) {
    case KART_OBJ_STR:
    case KART_OBJ_BYTES:
    case KART_OBJ_BIGINT:
        break;
    case KART_OBJ_TUPLE:
    case KART_OBJ_LIST:
        rc = seq_reserve(o, src->u.seq.n);
        for (size_t i = 0; rc == 0 && i < src->u.seq.n; i++) {
            rc = kart__obj_copy(src->u.seq.v[i], budget, &o->u.seq.v[i]);
            if (rc == 0) {
                o->u.seq.v[i]->parent = o;
                o->u.seq.n++;
            }
        }
        break;
    case KART_OBJ_DICT:
        for (size_t i = 0; rc == 0 && i < src->u.d.n; i++) {
            const struct kart__dict_entry *e = &src->u.d.e[i];
            kart_obj *k = NULL, *v = NULL;
            if (!e->key)
                continue;
            rc = kart__obj_copy(e->key, budget, &k);
            if (rc == 0)
                rc = kart__obj_copy(e->value, budget, &v);
            if (rc == 0)
                rc = kart__obj_dict_set(o, k, v, KART_OBJ_MAX_DEPTH + 1, NULL, NULL);
            if (rc < 0) {
                kart__obj_free_tree(k);
                kart__obj_free_tree(v);
            }
        }
        break;
    case KART_OBJ_ERROR:
    case KART_OBJ_INSTANCE:
    case KART__OBJ_CLASSREF:
        o->u.cls.kind = src->u.cls.kind;
        o->u.cls.module = strdup(src->u.cls.module);
        o->u.cls.name = strdup(src->u.cls.name);
        if (!o->u.cls.module || !o->u.cls.name)
            rc = -ENOMEM;
        if (rc == 0 && src->u.cls.payload) {
            rc = kart__obj_copy(src->u.cls.payload, budget, &o->u.cls.payload);
            if (rc == 0)
                o->u.cls.payload->parent = o;
        }
        if (rc == 0 && src->u.cls.state) {
            rc = kart__obj_copy(src->u.cls.state, budget, &o->u.cls.state);
            if (rc == 0)
                o->u.cls.state->parent = o;
        }
        break;
    default:
        o->u = src->u;
        break;
    }
    if (rc < 0) {
        kart__obj_free_tree(o);
        return rc;
    }
    o->height = src->height;
    *out = o;
    return 0;
}

int kart_obj_copy(const kart_obj *src, kart_obj **out)
{
    if (!src || !out || src->type == KART__OBJ_CLASSREF)
        return -EINVAL;
    return kart__obj_copy(src, NULL, out);
}

/* ---- Readers ---- */

kart_obj_type kart_obj_type_of(const kart_obj *obj)
{
    return obj ? obj->type : KART_OBJ_NONE;
}

const char *kart_obj_type_name(kart_obj_type type)
{
    static const char *const names[] = {"none",  "bool",  "int",  "bigint", "float", "str",
                                        "bytes", "tuple", "list", "dict",   "error", "instance"};
    if ((unsigned)type < sizeof names / sizeof names[0])
        return names[type];
    return "unknown";
}

int kart_obj_get_bool(const kart_obj *o, bool *v)
{
    if (!o || !v || o->type != KART_OBJ_BOOL)
        return -EINVAL;
    *v = o->u.b;
    return 0;
}

int kart_obj_get_int(const kart_obj *o, int64_t *v)
{
    if (!o || !v)
        return -EINVAL;
    if (o->type == KART_OBJ_BIGINT)
        return -ERANGE;
    if (o->type != KART_OBJ_INT && o->type != KART_OBJ_BOOL)
        return -EINVAL;
    *v = int_value(o);
    return 0;
}

int kart_obj_get_bigint(const kart_obj *o, void *buf, size_t size, size_t *len)
{
    if (!o || !len || (!buf && size > 0))
        return -EINVAL;
    uint8_t tmp[8];
    const uint8_t *src;
    size_t n;
    if (o->type == KART_OBJ_BIGINT) {
        src = (const uint8_t *)o->u.s.p;
        n = o->u.s.n;
    } else if (o->type == KART_OBJ_INT || o->type == KART_OBJ_BOOL) {
        n = kart__int_bytes(int_value(o), tmp);
        src = tmp;
    } else {
        return -EINVAL;
    }
    if (size < n) {
        *len = n;
        return -ENOBUFS;
    }
    memcpy(buf, src, n);
    *len = n;
    return 0;
}

/* A big int's double, correctly rounded; -ERANGE when it overflows. */
static int bigint_double(const kart_obj *o, double *v)
{
    const uint8_t *b = (const uint8_t *)o->u.s.p;
    size_t n = o->u.s.n;
    bool neg = b[n - 1] & 0x80;
    uint8_t *mag = malloc(n);
    if (!mag)
        return -ENOMEM;
    unsigned carry = 1;
    for (size_t k = 0; k < n; k++) {
        if (neg) {
            unsigned x = (uint8_t)~b[k] + carry;
            mag[k] = (uint8_t)x;
            carry = x >> 8;
        } else {
            mag[k] = b[k];
        }
    }
    size_t top = n;
    while (top > 0 && mag[top - 1] == 0)
        top--;
    /* The top 64 bits of the magnitude, and whether anything below them
     * is set (a sticky bit, for correct rounding). */
    size_t bits = (top - 1) * 8;
    for (uint8_t t = mag[top - 1]; t; t >>= 1)
        bits++;
    uint64_t u = 0;
    bool sticky = false;
    for (size_t bit = 0; bit < bits; bit++) {
        bool set = mag[bit / 8] & (1u << (bit % 8));
        if (bit + 64 >= bits) {
            if (set)
                u |= (uint64_t)1 << (bit + 64 - bits);
        } else if (set) {
            sticky = true;
        }
    }
    free(mag);
    if (sticky)
        u |= 1;
    double d = ldexp((double)u, (int)(bits - 64));
    if (isinf(d))
        return -ERANGE;
    *v = neg ? -d : d;
    return 0;
}

int kart_obj_get_float(const kart_obj *o, double *v)
{
    if (!o || !v)
        return -EINVAL;
    switch (o->type) {
    case KART_OBJ_FLOAT:
        *v = o->u.f;
        return 0;
    case KART_OBJ_INT:
    case KART_OBJ_BOOL:
        *v = (double)int_value(o);
        return 0;
    case KART_OBJ_BIGINT:
        return bigint_double(o, v);
    default:
        return -EINVAL;
    }
}

int kart_obj_get_str(const kart_obj *o, const char **s, size_t *len)
{
    if (!o || !s || o->type != KART_OBJ_STR)
        return -EINVAL;
    *s = o->u.s.p;
    if (len)
        *len = o->u.s.n;
    return 0;
}

int kart_obj_get_bytes(const kart_obj *o, const void **p, size_t *len)
{
    if (!o || !p || !len || o->type != KART_OBJ_BYTES)
        return -EINVAL;
    *p = o->u.s.p;
    *len = o->u.s.n;
    return 0;
}

int kart_obj_get_class(const kart_obj *o, const char **module, const char **name,
                       const kart_obj **payload)
{
    if (!o || (o->type != KART_OBJ_ERROR && o->type != KART_OBJ_INSTANCE))
        return -EINVAL;
    if (module)
        *module = o->u.cls.module;
    if (name)
        *name = o->u.cls.name;
    if (payload)
        *payload = o->u.cls.payload;
    return 0;
}

int kart_obj_get_error_state(const kart_obj *o, const kart_obj **state)
{
    if (!o || !state || o->type != KART_OBJ_ERROR)
        return -EINVAL;
    *state = o->u.cls.state;
    return 0;
}

int kart_obj_len(const kart_obj *o, size_t *len)
{
    if (!o || !len)
        return -EINVAL;
    if (is_seq(o))
        *len = o->u.seq.n;
    else if (o->type == KART_OBJ_DICT)
        *len = o->u.d.live;
    else
        return -EINVAL;
    return 0;
}

int kart_obj_item(const kart_obj *o, size_t i, const kart_obj **item)
{
    if (!is_seq(o) || !item)
        return -EINVAL;
    if (i >= o->u.seq.n)
        return -ERANGE;
    *item = o->u.seq.v[i];
    return 0;
}

int kart_obj_next(const kart_obj *o, size_t *pos, const kart_obj **key, const kart_obj **value)
{
    if (!o || !pos)
        return -EINVAL;
    if (is_seq(o)) {
        if (*pos >= o->u.seq.n)
            return 0;
        if (key)
            *key = NULL;
        if (value)
            *value = o->u.seq.v[*pos];
        (*pos)++;
        return 1;
    }
    if (o->type != KART_OBJ_DICT)
        return -EINVAL;
    while (*pos < o->u.d.n && !o->u.d.e[*pos].key)
        (*pos)++;
    if (*pos >= o->u.d.n)
        return 0;
    if (key)
        *key = o->u.d.e[*pos].key;
    if (value)
        *value = o->u.d.e[*pos].value;
    (*pos)++;
    return 1;
}

/* ---- repr ---- */

struct out {
    char *buf;
    size_t size;
    size_t len; /* the whole length, what fits or not */
};

static void put(struct out *w, const char *s, size_t n)
{
    if (w->len < w->size) {
        size_t room = w->size - w->len;
        memcpy(w->buf + w->len, s, n < room ? n : room);
    }
    w->len += n;
}

static void puts_(struct out *w, const char *s)
{
    put(w, s, strlen(s));
}

static void putf(struct out *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Python's float repr: the shortest digits that read back the same,
 * fixed notation for exponents -4..15, else d.ddde+XX. */
static void repr_float(struct out *w, double f)
{
    if (isnan(f)) {
        puts_(w, "nan");
        return;
    }
    if (isinf(f)) {
        puts_(w, f < 0 ? "-inf" : "inf");
        return;
    }
    char e[40];
    for (int p = 0; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p, f);
        if (strtod(e, NULL) == f)
            break;
    }
    /* e: [-]d[.ddd]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *c = e;
    bool neg = false;
    if (*c == '-') {
        neg = true;
        c++;
    }
    for (; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9')
            digits[nd++] = *c;
    int exp = atoi(c + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (neg)
        put(w, "-", 1);
    if (exp >= -5 + 1 && exp < 16) {
        if (exp < 0) {
            put(w, "0.", 2);
            for (int k = -1; k > exp; k--)
                put(w, "0", 1);
            put(w, digits, nd);
        } else {
            size_t intd = (size_t)exp + 1;
            for (size_t k = 0; k < intd; k++)
                put(w, k < nd ? &digits[k] : "0", 1);
            put(w, ".", 1);
            if (nd > intd)
                put(w, digits + intd, nd - intd);
            else
                put(w, "0", 1);
        }
    } else {
        put(w, digits, 1);
        if (nd > 1) {
            put(w, ".", 1);
            put(w, digits + 1, nd - 1);
        }
        putf(w, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
}

static void repr_bigint(struct out *w, const kart_obj *o)
{
    const uint8_t *b = (const uint8_t *)o->u.s.p;
    size_t n = o->u.s.n;
    bool neg = b[n - 1] & 0x80;
    /* Magnitude as 32-bit limbs, little-endian. */
    size_t nl = (n + 3) / 4;
    uint32_t *l = calloc(nl, sizeof *l);
    char *dec = n <= 2048 ? malloc(n * 3 + 2) : NULL;
    if (!l || !dec) {
        free(l);
        free(dec);
        putf(w, "<int of %zu bytes>", n);
        return;
    }
    unsigned carry = 1;
    for (size_t k = 0; k < n; k++) {
        unsigned x = neg ? (uint8_t)~b[k] + carry : b[k];
        if (neg)
            carry = x >> 8;
        l[k / 4] |= (uint32_t)(uint8_t)x << (8 * (k % 4));
    }
    size_t nd = 0;
    size_t top = nl;
    while (top > 0) {
        uint64_t rem = 0;
        for (size_t k = top; k-- > 0;) {
            uint64_t cur = (rem << 32) | l[k];
            l[k] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        while (top > 0 && l[top - 1] == 0)
            top--;
        for (int k = 0; k < 9; k++) {
            dec[nd++] = (char)('0' + rem % 10);
            rem /= 10;
            if (top == 0 && rem == 0)
                break;
        }
    }
    while (nd > 1 && dec[nd - 1] == '0')
        nd--;
    if (neg)
        put(w, "-", 1);
    for (size_t k = nd; k-- > 0;)
        put(w, &dec[k], 1);
    free(l);
    free(dec);
}

static void repr_text(struct out *w, const kart_obj *o, bool bytes)
{
    const uint8_t *s = (const uint8_t *)o->u.s.p;
    size_t n = o->u.s.n;
    bool sq = false, dq = false;
    for (size_t i = 0; i < n; i++) {
        sq |= s[i] == '\'';
        dq |= s[i] == '"';
    }
    char q = sq && !dq ? '"' : '\'';
    if (bytes)
        put(w, "b", 1);
    put(w, &q, 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '\\' || c == (uint8_t)q) {
            put(w, "\\", 1);
            put(w, (const char *)&s[i], 1);
        } else if (c == '\n') {
            puts_(w, "\\n");
        } else if (c == '\r') {
            puts_(w, "\\r");
        } else if (c == '\t') {
            puts_(w, "\\t");
        } else if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
            putf(w, "\\x%02x", c);
        } else {
            put(w, (const char *)&s[i], 1);
        }
    }
    put(w, &q, 1);
}

static void repr(struct out *w, const kart_obj *o)
{
    switch (o->type) {
    case KART_OBJ_NONE:
        puts_(w, "None");
        break;
    case KART_OBJ_BOOL:
        puts_(w, o->u.b ? "True" : "False");
        break;
    case KART_OBJ_INT:
        putf(w, "%lld", (long long)o->u.i);
        break;
    case KART_OBJ_BIGINT:
        repr_bigint(w, o);
        break;
    case KART_OBJ_FLOAT:
        repr_float(w, o->u.f);
        break;
    case KART_OBJ_STR:
        repr_text(w, o, false);
        break;
    case KART_OBJ_BYTES:
        repr_text(w, o, true);
        break;
    case KART_OBJ_TUPLE:
    case KART_OBJ_LIST:
        put(w, o->type == KART_OBJ_LIST ? "[" : "(", 1);
        for (size_t i = 0; i < o->u.seq.n; i++) {
            if (i)
                put(w, ", ", 2);
            repr(w, o->u.seq.v[i]);
        }
        if (o->type == KART_OBJ_TUPLE && o->u.seq.n == 1)
            put(w, ",", 1);
        put(w, o->type == KART_OBJ_LIST ? "]" : ")", 1);
        break;
    case KART_OBJ_DICT: {
        put(w, "{", 1);
        bool first = true;
        for (size_t i = 0; i < o->u.d.n; i++) {
            if (!o->u.d.e[i].key)
                continue;
            if (!first)
                put(w, ", ", 2);
            first = false;
            repr(w, o->u.d.e[i].key);
            put(w, ": ", 2);
            repr(w, o->u.d.e[i].value);
        }
        put(w, "}", 1);
        break;
    }
    case KART_OBJ_ERROR: {
        /* Python's repr of an exception: Name(arg, ...), no trailing
         * comma for one argument. */
        const kart_obj *a = o->u.cls.payload;
        puts_(w, o->u.cls.name);
        put(w, "(", 1);
        for (size_t i = 0; a && i < a->u.seq.n; i++) {
            if (i)
                put(w, ", ", 2);
            repr(w, a->u.seq.v[i]);
        }
        put(w, ")", 1);
        break;
    }
    case KART_OBJ_INSTANCE:
        puts_(w, o->u.cls.module);
        put(w, ".", 1);
        puts_(w, o->u.cls.name);
        put(w, "(", 1);
        repr(w, o->u.cls.payload);
        put(w, ")", 1);
        break;
    default:
        puts_(w, "<?>");
        break;
    }
}

int kart_obj_repr(const kart_obj *obj, char *buf, size_t size, size_t *needed)
{
    if (!buf && size > 0)
        return -EINVAL;
    struct out w = {buf, size, 0};
    if (obj)
        repr(&w, obj);
    else
        puts_(&w, "NULL");
    if (w.len + 1 > size || w.len > INT_MAX) {
        if (needed)
            *needed = w.len + 1;
        if (size > 0) {
            buf[size - 1] = 0;
            for (size_t k = 2; k <= 4 && k <= size; k++)
                buf[size - k] = '.';
        }
        return -ENOBUFS;
    }
    buf[w.len] = 0;
    if (needed)
        *needed = w.len + 1;
    return (int)w.len;
}

/* Description: kart_obj (kart/obj.h), the typed value tree: every
 * constructor, reader and container call with its errors, Python's ==
 * over numbers, the insertion-ordered dict against a model, depth limits,
 * repr against Python's own text. */
#include "testutil.h"

#include <kart/obj.h>
#include <math.h>

static kart_obj *I(int64_t v)
{
    kart_obj *o;
    ck_assert_int_eq(kart_obj_int(v, &o), 0);
    return o;
}

static kart_obj *F(double v)
{
    kart_obj *o;
    ck_assert_int_eq(kart_obj_float(v, &o), 0);
    return o;
}

static kart_obj *S(const char *s)
{
    kart_obj *o;
    ck_assert_int_eq(kart_obj_strz(s, &o), 0);
    return o;
}

static kart_obj *B(bool b)
{
    kart_obj *o;
    ck_assert_int_eq(kart_obj_bool(b, &o), 0);
    return o;
}

static kart_obj *L(void)
{
    kart_obj *o;
    ck_assert_int_eq(kart_obj_list(&o), 0);
    return o;
}

static kart_obj *D(void)
{
    kart_obj *o;
    ck_assert_int_eq(kart_obj_dict(&o), 0);
    return o;
}

static const char *R(const kart_obj *o)
{
    static char buf[4096];
    ck_assert_int_ge(kart_obj_repr(o, buf, sizeof buf, NULL), 0);
    return buf;
}

START_TEST(scalars)
{
    kart_obj *o;
    bool b;
    int64_t v;
    double f;
    const char *s;
    size_t n;
    const void *p;

    ck_assert_int_eq(kart_obj_none(&o), 0);
    ck_assert_int_eq(kart_obj_type_of(o), KART_OBJ_NONE);
    ck_assert_str_eq(R(o), "None");
    ck_assert_int_eq(kart_obj_get_bool(o, &b), -EINVAL);
    ck_assert_int_eq(kart_obj_get_int(o, &v), -EINVAL);
    ck_assert_int_eq(kart_obj_get_float(o, &f), -EINVAL);
    ck_assert_int_eq(kart_obj_get_str(o, &s, &n), -EINVAL);
    ck_assert_int_eq(kart_obj_get_bytes(o, &p, &n), -EINVAL);
    ck_assert_int_eq(kart_obj_len(o, &n), -EINVAL);
    kart_obj_free(o);

    o = B(true);
    ck_assert_int_eq(kart_obj_get_bool(o, &b), 0);
    ck_assert(b);
    ck_assert_int_eq(kart_obj_get_int(o, &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(kart_obj_get_float(o, &f), 0);
    ck_assert(f == 1.0);
    ck_assert_str_eq(R(o), "True");
    kart_obj_free(o);

    o = I(INT64_MIN);
    ck_assert_int_eq(kart_obj_get_int(o, &v), 0);
    ck_assert(v == INT64_MIN);
    ck_assert_int_eq(kart_obj_get_bool(o, &b), -EINVAL);
    ck_assert_str_eq(R(o), "-9223372036854775808");
    kart_obj_free(o);

    o = F(-0.0);
    ck_assert_int_eq(kart_obj_get_float(o, &f), 0);
    ck_assert(f == 0 && signbit(f));
    ck_assert_int_eq(kart_obj_get_int(o, &v), -EINVAL);
    ck_assert_str_eq(R(o), "-0.0");
    kart_obj_free(o);

    ck_assert_int_eq(kart_obj_str("a\0b", 3, &o), 0);
    ck_assert_int_eq(kart_obj_get_str(o, &s, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert(memcmp(s, "a\0b\0", 4) == 0);
    ck_assert_int_eq(kart_obj_get_str(o, &s, NULL), 0);
    ck_assert_str_eq(R(o), "'a\\x00b'");
    kart_obj_free(o);

    ck_assert_int_eq(kart_obj_bytes("\x00\xff'", 3, &o), 0);
    ck_assert_int_eq(kart_obj_get_bytes(o, &p, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(kart_obj_get_str(o, &s, &n), -EINVAL);
    ck_assert_str_eq(R(o), "b\"\\x00\\xff'\"");
    kart_obj_free(o);
    ck_assert_int_eq(kart_obj_bytes(NULL, 0, &o), 0);
    ck_assert_str_eq(R(o), "b''");
    kart_obj_free(o);

    /* Errors of the constructors. */
    ck_assert_int_eq(kart_obj_none(NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_bool(true, NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_int(1, NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_float(1, NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_list(NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_dict(NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_str(NULL, 1, &o), -EINVAL);
    ck_assert_int_eq(kart_obj_str("a", 1, NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_strz(NULL, &o), -EINVAL);
    ck_assert_int_eq(kart_obj_bytes(NULL, 1, &o), -EINVAL);
    ck_assert_int_eq(kart_obj_bigint(NULL, 1, &o), -EINVAL);
    ck_assert_int_eq(kart_obj_tuple(NULL, 1, &o), -EINVAL);
    kart_obj_free(NULL);
    ck_assert_int_eq(kart_obj_type_of(NULL), KART_OBJ_NONE);
    ck_assert_str_eq(kart_obj_type_name(KART_OBJ_DICT), "dict");
    ck_assert_str_eq(kart_obj_type_name((kart_obj_type)99), "unknown");
}
END_TEST

START_TEST(utf8_validation)
{
    static const struct {
        const char *s;
        size_t n;
        int rc;
    } cases[] = {
        {"plain", 5, 0},
        {"h\xc3\xa9", 3, 0},
        {"\xe2\x98\x83", 3, 0},
        {"\xf0\x9d\x84\x9e", 4, 0},
        {"\xf4\x8f\xbf\xbf", 4, 0},
        {"\xc3", 1, -EILSEQ},             /* truncated */
        {"\xc0\xaf", 2, -EILSEQ},         /* overlong */
        {"\xe0\x80\xaf", 3, -EILSEQ},     /* overlong */
        {"\xed\xa0\x80", 3, -EILSEQ},     /* surrogate */
        {"\xf4\x90\x80\x80", 4, -EILSEQ}, /* past U+10FFFF */
        {"\xff", 1, -EILSEQ},
        {"\x80", 1, -EILSEQ},
        {"\xe2\x28\xa1", 3, -EILSEQ},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kart_obj *o = NULL;
        int rc = kart_obj_str(cases[i].s, cases[i].n, &o);
        ck_assert_msg(rc == cases[i].rc, "case %zu: %d", i, rc);
        kart_obj_free(o);
    }
}
END_TEST

START_TEST(bigints)
{
    kart_obj *o;
    int64_t v;
    uint8_t buf[32];
    size_t n;
    double f;

    /* Fits int64: normalised to an int. */
    uint8_t m1[12];
    memset(m1, 0xff, sizeof m1);
    ck_assert_int_eq(kart_obj_bigint(m1, sizeof m1, &o), 0);
    ck_assert_int_eq(kart_obj_type_of(o), KART_OBJ_INT);
    ck_assert_int_eq(kart_obj_get_int(o, &v), 0);
    ck_assert_int_eq(v, -1);
    kart_obj_free(o);
    ck_assert_int_eq(kart_obj_bigint(NULL, 0, &o), 0);
    ck_assert_int_eq(kart_obj_get_int(o, &v), 0);
    ck_assert_int_eq(v, 0);
    kart_obj_free(o);
    uint8_t b80[2] = {0x80, 0x00}; /* 128 */
    ck_assert_int_eq(kart_obj_bigint(b80, 2, &o), 0);
    ck_assert_int_eq(kart_obj_get_int(o, &v), 0);
    ck_assert_int_eq(v, 128);
    kart_obj_free(o);
    uint8_t neg[1] = {0x80}; /* -128 */
    ck_assert_int_eq(kart_obj_bigint(neg, 1, &o), 0);
    ck_assert_int_eq(kart_obj_get_int(o, &v), 0);
    ck_assert_int_eq(v, -128);
    kart_obj_free(o);

    /* 2**64: nine bytes. */
    uint8_t p64[10] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    ck_assert_int_eq(kart_obj_bigint(p64, sizeof p64, &o), 0);
    ck_assert_int_eq(kart_obj_type_of(o), KART_OBJ_BIGINT);
    ck_assert_int_eq(kart_obj_get_int(o, &v), -ERANGE);
    ck_assert_int_eq(kart_obj_get_bigint(o, buf, 3, &n), -ENOBUFS);
    ck_assert_int_eq(n, 9);
    ck_assert_int_eq(kart_obj_get_bigint(o, buf, sizeof buf, &n), 0);
    ck_assert_int_eq(n, 9);
    ck_assert(memcmp(buf, p64, 9) == 0);
    ck_assert_int_eq(kart_obj_get_bigint(o, buf, sizeof buf, NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_get_float(o, &f), 0);
    ck_assert(f == 18446744073709551616.0);
    ck_assert_str_eq(R(o), "18446744073709551616");
    kart_obj *fl = F(18446744073709551616.0);
    ck_assert(kart_obj_equal(o, fl));
    ck_assert(kart_obj_hash(o) == kart_obj_hash(fl));
    kart_obj_free(fl);
    fl = F(-18446744073709551616.0);
    ck_assert(!kart_obj_equal(o, fl));
    kart_obj_free(fl);
    kart_obj_free(o);

    /* -(2**64) */
    uint8_t n64[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff};
    ck_assert_int_eq(kart_obj_bigint(n64, sizeof n64, &o), 0);
    ck_assert_str_eq(R(o), "-18446744073709551616");
    fl = F(-18446744073709551616.0);
    ck_assert(kart_obj_equal(o, fl));
    ck_assert(kart_obj_hash(o) == kart_obj_hash(fl));
    kart_obj_free(fl);
    kart_obj_free(o);

    /* get_bigint of an int; of a bool; of a str. */
    o = I(-129);
    ck_assert_int_eq(kart_obj_get_bigint(o, buf, sizeof buf, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert(buf[0] == 0x7f && buf[1] == 0xff);
    kart_obj_free(o);
    o = S("x");
    ck_assert_int_eq(kart_obj_get_bigint(o, buf, sizeof buf, &n), -EINVAL);
    kart_obj_free(o);

    /* 2**53 + 1 with lower bits: correct rounding of float(). 2**64+1
     * rounds to 2**64; 2**1024 overflows. */
    uint8_t p64p1[9] = {1, 0, 0, 0, 0, 0, 0, 0, 1};
    ck_assert_int_eq(kart_obj_bigint(p64p1, 9, &o), 0);
    ck_assert_int_eq(kart_obj_get_float(o, &f), 0);
    ck_assert(f == 18446744073709551616.0);
    fl = F(18446744073709551616.0);
    ck_assert(!kart_obj_equal(o, fl)); /* exact comparison, as Python */
    ck_assert(kart_obj_hash(o) != kart_obj_hash(fl));
    kart_obj_free(fl);
    kart_obj_free(o);
    /* Big int keys spread out and are found: 2**64 + i, and 2**100 as a
     * float key finds the big int 2**100. */
    kart_obj *d;
    ck_assert_int_eq(kart_obj_dict(&d), 0);
    for (int i = 0; i < 3000; i++) {
        uint8_t kb[10] = {(uint8_t)i, (uint8_t)(i >> 8), 0, 0, 0, 0, 0, 0, 1, 0};
        kart_obj *k;
        ck_assert_int_eq(kart_obj_bigint(kb, sizeof kb, &k), 0);
        ck_assert_int_eq(kart_obj_dict_set(d, k, I(i)), 0);
    }
    uint8_t p100[13] = {0};
    p100[12] = 0x10; /* 2**100 */
    kart_obj *k100;
    ck_assert_int_eq(kart_obj_bigint(p100, sizeof p100, &k100), 0);
    ck_assert_int_eq(kart_obj_dict_set(d, k100, S("2**100")), 0);
    size_t dn;
    ck_assert_int_eq(kart_obj_len(d, &dn), 0);
    ck_assert_int_eq(dn, 3001);
    fl = F(1267650600228229401496703205376.0);
    const kart_obj *hit;
    ck_assert_int_eq(kart_obj_dict_get(d, fl, &hit), 0);
    ck_assert_str_eq(R(hit), "'2**100'");
    kart_obj_free(fl);
    kart_obj_free(d);
    uint8_t big[130] = {0};
    big[128] = 1; /* 2**1024 */
    ck_assert_int_eq(kart_obj_bigint(big, sizeof big, &o), 0);
    ck_assert_int_eq(kart_obj_get_float(o, &f), -ERANGE);
    kart_obj_free(o);
    /* Halfway case: 2**64 + 2**11 (exactly between two doubles) rounds to
     * even (2**64); one more unit rounds up. */
    uint8_t half[9] = {0, 0x08, 0, 0, 0, 0, 0, 0, 1};
    ck_assert_int_eq(kart_obj_bigint(half, 9, &o), 0);
    ck_assert_int_eq(kart_obj_get_float(o, &f), 0);
    ck_assert(f == 18446744073709551616.0);
    kart_obj_free(o);
    uint8_t above[9] = {1, 0x08, 0, 0, 0, 0, 0, 0, 1};
    ck_assert_int_eq(kart_obj_bigint(above, 9, &o), 0);
    ck_assert_int_eq(kart_obj_get_float(o, &f), 0);
    ck_assert(f == 18446744073709555712.0);
    kart_obj_free(o);
}
END_TEST

START_TEST(numbers_equal_as_python)
{
    kart_obj *one = I(1), *onef = F(1.0), *t = B(true), *f = B(false), *zero = I(0), *mz = F(-0.0);
    kart_obj *nan = F(NAN), *half = F(0.5), *s1 = S("1");
    ck_assert(kart_obj_equal(one, onef));
    ck_assert(kart_obj_equal(one, t));
    ck_assert(kart_obj_equal(t, onef));
    ck_assert(kart_obj_equal(f, zero));
    ck_assert(kart_obj_equal(zero, mz));
    ck_assert(!kart_obj_equal(nan, nan));
    ck_assert(!kart_obj_equal(one, half));
    ck_assert(!kart_obj_equal(one, s1));
    ck_assert(!kart_obj_equal(one, NULL));
    ck_assert(kart_obj_equal(NULL, NULL));
    ck_assert(kart_obj_hash(one) == kart_obj_hash(onef));
    ck_assert(kart_obj_hash(one) == kart_obj_hash(t));
    ck_assert(kart_obj_hash(zero) == kart_obj_hash(mz));
    /* 2**63 as a float is not INT64_MAX. */
    kart_obj *imax = I(INT64_MAX), *f63 = F(9223372036854775808.0);
    ck_assert(!kart_obj_equal(imax, f63));
    kart_obj *i53 = I((INT64_C(1) << 53) + 1), *f53 = F(9007199254740992.0);
    ck_assert(!kart_obj_equal(i53, f53));
    kart_obj *objs[] = {one, onef, t, f, zero, mz, nan, half, s1, imax, f63, i53, f53};
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++)
        kart_obj_free(objs[i]);
}
END_TEST

START_TEST(sequences)
{
    kart_obj *l = L(), *it, *x = I(5);
    const kart_obj *c;
    size_t n;
    ck_assert_int_eq(kart_obj_len(l, &n), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(kart_obj_append(l, I(1)), 0);
    ck_assert_int_eq(kart_obj_append(l, I(3)), 0);
    ck_assert_int_eq(kart_obj_insert(l, 1, I(2)), 0);
    ck_assert_int_eq(kart_obj_insert(l, 0, I(0)), 0);
    ck_assert_int_eq(kart_obj_insert(l, 4, I(4)), 0);
    ck_assert_str_eq(R(l), "[0, 1, 2, 3, 4]");
    ck_assert_int_eq(kart_obj_insert(l, 6, x), -ERANGE);
    ck_assert_int_eq(kart_obj_item(l, 5, &c), -ERANGE);
    ck_assert_int_eq(kart_obj_item(l, 2, &c), 0);
    ck_assert_str_eq(R(c), "2");
    ck_assert_int_eq(kart_obj_set_item(l, 5, x), -ERANGE);
    ck_assert_int_eq(kart_obj_set_item(l, 2, x), 0);
    ck_assert_str_eq(R(l), "[0, 1, 5, 3, 4]");
    /* x is in l now: it cannot go in twice, nor be freed alone. */
    ck_assert_int_eq(kart_obj_append(l, x), -EINVAL);
    kart_obj_free(x);
    ck_assert_int_eq(kart_obj_remove(l, 9, &it), -ERANGE);
    ck_assert_int_eq(kart_obj_remove(l, 2, &it), 0);
    ck_assert(it == x);
    ck_assert_int_eq(kart_obj_append(l, it), 0);
    ck_assert_int_eq(kart_obj_remove(l, 0, NULL), 0);
    ck_assert_str_eq(R(l), "[1, 3, 4, 5]");
    size_t pos = 0;
    const kart_obj *k, *v;
    int64_t sum = 0, iv;
    while (kart_obj_next(l, &pos, &k, &v) == 1) {
        ck_assert_ptr_null(k);
        ck_assert_int_eq(kart_obj_get_int(v, &iv), 0);
        sum += iv;
    }
    ck_assert_int_eq(sum, 13);
    /* A list into itself, or into its child: -ELOOP. */
    kart_obj *inner = L();
    ck_assert_int_eq(kart_obj_append(l, l), -ELOOP);
    ck_assert_int_eq(kart_obj_append(l, inner), 0);
    ck_assert_int_eq(kart_obj_append(inner, l), -ELOOP);
    ck_assert_int_eq(kart_obj_append(NULL, inner), -EINVAL);
    ck_assert_int_eq(kart_obj_append(l, NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_clear(l), 0);
    ck_assert_int_eq(kart_obj_len(l, &n), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(kart_obj_clear(NULL), -EINVAL);
    kart_obj *i7 = I(7);
    ck_assert_int_eq(kart_obj_clear(i7), -EINVAL);
    ck_assert_int_eq(kart_obj_next(i7, &pos, &k, &v), -EINVAL);
    ck_assert_int_eq(kart_obj_item(i7, 0, &c), -EINVAL);
    kart_obj_free(i7);
    kart_obj_free(l);

    /* Tuples. */
    kart_obj *items[3] = {I(1), S("a"), L()}, *t;
    ck_assert_int_eq(kart_obj_tuple(items, 3, &t), 0);
    ck_assert_str_eq(R(t), "(1, 'a', [])");
    ck_assert_int_eq(kart_obj_tuple(items, 1, &l), -EINVAL); /* items[0] has a parent */
    kart_obj *one[1] = {I(9)}, *t1, *t0;
    ck_assert_int_eq(kart_obj_tuple(one, 1, &t1), 0);
    ck_assert_str_eq(R(t1), "(9,)");
    ck_assert_int_eq(kart_obj_tuple(NULL, 0, &t0), 0);
    ck_assert_str_eq(R(t0), "()");
    kart_obj *l2 = L();
    ck_assert(!kart_obj_equal(t0, l2)); /* () != [] */
    kart_obj *dup[2] = {l2, l2};
    ck_assert_int_eq(kart_obj_tuple(dup, 2, &t), -EINVAL);
    kart_obj_free(l2);
    kart_obj_free(t);
    kart_obj_free(t1);
    kart_obj_free(t0);
}
END_TEST

START_TEST(the_refused_int_is_not_taken)
{
    /* An append that fails leaves the item with the caller. */
    kart_obj *s = S("s"), *i = I(1);
    ck_assert_int_eq(kart_obj_append(s, i), -EINVAL);
    ck_assert_int_eq(kart_obj_type_of(i), KART_OBJ_INT);
    kart_obj_free(i);
    kart_obj_free(s);
}
END_TEST

START_TEST(dicts)
{
    kart_obj *d = D();
    const kart_obj *v, *k;
    size_t n;
    ck_assert_int_eq(kart_obj_dict_set(d, I(1), S("int")), 0);
    ck_assert_int_eq(kart_obj_dict_set(d, S("a"), S("str")), 0);
    /* 1.0 and True are the key 1: value replaced, first key kept. */
    ck_assert_int_eq(kart_obj_dict_set(d, F(1.0), S("float")), 0);
    ck_assert_int_eq(kart_obj_dict_set(d, B(true), S("bool")), 0);
    ck_assert_str_eq(R(d), "{1: 'bool', 'a': 'str'}");
    ck_assert_int_eq(kart_obj_len(d, &n), 0);
    ck_assert_int_eq(n, 2);
    kart_obj *key = F(1.0);
    ck_assert_int_eq(kart_obj_dict_get(d, key, &v), 0);
    ck_assert_str_eq(R(v), "'bool'");
    ck_assert_int_eq(kart_obj_dict_get_str(d, "a", &v), 0);
    ck_assert_str_eq(R(v), "'str'");
    ck_assert_int_eq(kart_obj_dict_get_str(d, "b", &v), -ENOENT);
    ck_assert_int_eq(kart_obj_dict_get_str(d, NULL, &v), -EINVAL);
    /* Unhashable keys. */
    kart_obj *lk = L(), *val = I(0);
    ck_assert(!kart_obj_hashable(lk));
    ck_assert_int_eq(kart_obj_dict_set(d, lk, val), -EINVAL);
    ck_assert_int_eq(kart_obj_dict_get(d, lk, &v), -EINVAL);
    ck_assert_int_eq(kart_obj_dict_pop(d, lk, NULL), -EINVAL);
    kart_obj *tk[2] = {I(1), L()}, *tkey;
    ck_assert_int_eq(kart_obj_tuple(tk, 2, &tkey), 0);
    ck_assert(!kart_obj_hashable(tkey));
    ck_assert_int_eq(kart_obj_dict_set(d, tkey, val), -EINVAL);
    kart_obj_free(tkey);
    kart_obj *tk2[2] = {I(1), S("x")};
    ck_assert_int_eq(kart_obj_tuple(tk2, 2, &tkey), 0);
    ck_assert(kart_obj_hashable(tkey));
    ck_assert_int_eq(kart_obj_dict_set(d, tkey, val), 0);
    ck_assert_int_eq(kart_obj_dict_set(d, NULL, val), -EINVAL);
    kart_obj *k1 = I(1), *v2 = I(2);
    ck_assert_int_eq(kart_obj_dict_set(lk, k1, v2), -EINVAL);
    kart_obj_free(k1);
    kart_obj_free(v2);
    kart_obj_free(lk);
    /* Not a dict. */
    ck_assert_int_eq(kart_obj_dict_get(val, key, &v), -EINVAL);
    ck_assert_int_eq(kart_obj_dict_get(d, NULL, &v), -EINVAL);
    /* Pop. */
    kart_obj *out;
    ck_assert_int_eq(kart_obj_dict_pop(d, key, &out), 0);
    ck_assert_str_eq(R(out), "'bool'");
    kart_obj_free(out);
    ck_assert_int_eq(kart_obj_dict_pop(d, key, &out), -ENOENT);
    ck_assert_int_eq(kart_obj_dict_get(d, key, &v), -ENOENT);
    ck_assert_str_eq(R(d), "{'a': 'str', (1, 'x'): 0}");
    size_t pos = 0;
    ck_assert_int_eq(kart_obj_next(d, &pos, &k, &v), 1);
    ck_assert_str_eq(R(k), "'a'");
    ck_assert_int_eq(kart_obj_next(d, &pos, &k, &v), 1);
    ck_assert_str_eq(R(v), "0");
    ck_assert_int_eq(kart_obj_next(d, &pos, &k, &v), 0);
    kart_obj_free(key);
    ck_assert_int_eq(kart_obj_clear(d), 0);
    ck_assert_str_eq(R(d), "{}");
    ck_assert_int_eq(kart_obj_dict_set(d, S("again"), I(1)), 0);
    ck_assert_str_eq(R(d), "{'again': 1}");
    kart_obj_free(d);
}
END_TEST

/* A dict against a model (an array indexed by the int key) over random
 * sets, pops and lookups, with order checked as Python keeps it. */
START_TEST(dict_matches_model)
{
    enum { K = 2000 };
    static int64_t model[K];  /* value, or -1 */
    static uint64_t order[K]; /* insertion stamp */
    uint64_t stamp = 0;
    for (int i = 0; i < K; i++)
        model[i] = -1;
    kart_obj *d = D();
    srand(7);
    for (int step = 0; step < 60000; step++) {
        int k = rand() % K, what = rand() % 3;
        kart_obj *key = (step & 1) ? I(k) : F((double)k);
        if (what == 0) {
            int64_t val = rand();
            ck_assert_int_eq(kart_obj_dict_set(d, key, I(val)), 0);
            if (model[k] < 0)
                order[k] = stamp++;
            model[k] = val;
        } else if (what == 1) {
            kart_obj *out = NULL;
            int rc = kart_obj_dict_pop(d, key, &out);
            ck_assert_int_eq(rc, model[k] < 0 ? -ENOENT : 0);
            if (rc == 0) {
                int64_t got;
                ck_assert_int_eq(kart_obj_get_int(out, &got), 0);
                ck_assert(got == model[k]);
                kart_obj_free(out);
            }
            model[k] = -1;
            kart_obj_free(key);
        } else {
            const kart_obj *v;
            int rc = kart_obj_dict_get(d, key, &v);
            ck_assert_int_eq(rc, model[k] < 0 ? -ENOENT : 0);
            kart_obj_free(key);
        }
    }
    size_t pos = 0, live = 0, n;
    const kart_obj *k, *v;
    uint64_t last = 0;
    bool first = true;
    while (kart_obj_next(d, &pos, &k, &v) == 1) {
        double kf;
        ck_assert_int_eq(kart_obj_get_float(k, &kf), 0);
        int ki = (int)kf;
        ck_assert(model[ki] >= 0);
        ck_assert(first || order[ki] > last);
        last = order[ki];
        first = false;
        live++;
    }
    size_t expect = 0;
    for (int i = 0; i < K; i++)
        expect += model[i] >= 0;
    ck_assert_int_eq(live, expect);
    ck_assert_int_eq(kart_obj_len(d, &n), 0);
    ck_assert_int_eq(n, expect);
    kart_obj *c;
    ck_assert_int_eq(kart_obj_copy(d, &c), 0);
    ck_assert(kart_obj_equal(c, d));
    kart_obj_free(c);
    kart_obj_free(d);
}
END_TEST

START_TEST(equality_of_containers)
{
    kart_obj *a = D(), *b = D();
    ck_assert_int_eq(kart_obj_dict_set(a, S("x"), I(1)), 0);
    ck_assert_int_eq(kart_obj_dict_set(a, S("y"), I(2)), 0);
    ck_assert_int_eq(kart_obj_dict_set(b, S("y"), F(2.0)), 0);
    ck_assert(!kart_obj_equal(a, b));
    ck_assert_int_eq(kart_obj_dict_set(b, S("x"), B(true)), 0);
    ck_assert(kart_obj_equal(a, b)); /* any order, 1 == True */
    kart_obj *l1 = L(), *l2 = L();
    ck_assert_int_eq(kart_obj_append(l1, a), 0);
    ck_assert_int_eq(kart_obj_append(l2, b), 0);
    ck_assert(kart_obj_equal(l1, l2));
    ck_assert_int_eq(kart_obj_append(l1, F(NAN)), 0);
    ck_assert_int_eq(kart_obj_append(l2, F(NAN)), 0);
    ck_assert(!kart_obj_equal(l1, l2));
    kart_obj_free(l1);
    kart_obj_free(l2);
    kart_obj *s1 = S("abc"), *bb;
    ck_assert_int_eq(kart_obj_bytes("abc", 3, &bb), 0);
    ck_assert(!kart_obj_equal(s1, bb)); /* 'abc' != b'abc' */
    kart_obj_free(s1);
    kart_obj_free(bb);
}
END_TEST

START_TEST(errors_and_instances)
{
    kart_obj *args[1] = {S("k")}, *t, *e;
    ck_assert_int_eq(kart_obj_tuple(args, 1, &t), 0);
    ck_assert_int_eq(kart_obj_error("builtins", "KeyError", t, NULL, &e), 0);
    ck_assert_str_eq(R(e), "KeyError('k')");
    const char *m, *nm;
    const kart_obj *p, *st;
    ck_assert_int_eq(kart_obj_get_class(e, &m, &nm, &p), 0);
    ck_assert_str_eq(m, "builtins");
    ck_assert_str_eq(nm, "KeyError");
    ck_assert_ptr_eq(p, t);
    ck_assert_int_eq(kart_obj_get_error_state(e, &st), 0);
    ck_assert_ptr_null(st);
    kart_obj *c;
    ck_assert_int_eq(kart_obj_copy(e, &c), 0);
    ck_assert(kart_obj_equal(c, e));
    kart_obj_free(c);
    kart_obj_free(e);

    kart_obj *l = L(), *i = I(1);
    ck_assert_int_eq(kart_obj_error("builtins", "KeyError", l, NULL, &e), -EINVAL);
    ck_assert_int_eq(kart_obj_error("builtins", "", NULL, NULL, &e), -EINVAL);
    ck_assert_int_eq(kart_obj_error(NULL, "X", NULL, NULL, &e), -EINVAL);
    ck_assert_int_eq(kart_obj_error("m", "X", NULL, l, &e), -EINVAL); /* state not a dict */
    ck_assert_int_eq(kart_obj_error("m", "X", NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_error("builtins", "ValueError", NULL, NULL, &e), 0);
    ck_assert_str_eq(R(e), "ValueError()");
    ck_assert_int_eq(kart_obj_get_class(i, &m, &nm, &p), -EINVAL);
    ck_assert_int_eq(kart_obj_get_error_state(i, &st), -EINVAL);
    kart_obj_free(e);

    kart_obj *addr[2] = {S("127.0.0.1"), I(5000)}, *at, *tok, *tt, *inst;
    ck_assert_int_eq(kart_obj_tuple(addr, 2, &at), 0);
    kart_obj *st3[3] = {S("dict"), at, S("7f00aa")};
    ck_assert_int_eq(kart_obj_tuple(st3, 3, &tt), 0);
    ck_assert_int_eq(kart_obj_instance("multiprocessing.managers", "Token", tt, &tok), 0);
    ck_assert_str_eq(R(tok),
                     "multiprocessing.managers.Token(('dict', ('127.0.0.1', 5000), '7f00aa'))");
    ck_assert_int_eq(kart_obj_get_class(tok, NULL, &nm, &p), 0);
    ck_assert_str_eq(nm, "Token");
    ck_assert_ptr_eq(p, tt);
    ck_assert_int_eq(kart_obj_instance("m", "C", tt, &inst), -EINVAL); /* tt has a parent */
    ck_assert_int_eq(kart_obj_instance("", "C", NULL, &inst), -EINVAL);
    ck_assert_int_eq(kart_obj_instance("m", "C", NULL, &inst), 0);
    ck_assert_str_eq(R(inst), "m.C(None)");
    ck_assert(!kart_obj_equal(inst, tok));
    kart_obj_free(inst);
    kart_obj_free(tok);
    kart_obj_free(l);
    kart_obj_free(i);
}
END_TEST

START_TEST(depth_limit)
{
    /* KART_OBJ_MAX_DEPTH levels fit, one more does not, built either
     * way: outside-in and inside-out. */
    kart_obj *root = L(), *cur = root;
    for (int d = 2; d <= KART_OBJ_MAX_DEPTH; d++) {
        kart_obj *n = L();
        ck_assert_int_eq(kart_obj_append(cur, n), 0);
        cur = n;
    }
    kart_obj *extra = I(1);
    ck_assert_int_eq(kart_obj_append(cur, extra), -E2BIG);
    /* Into a dict: MAX + 1 deep. */
    kart_obj *d2 = D(), *k = S("k");
    ck_assert_int_eq(kart_obj_dict_set(d2, k, root), -E2BIG);
    kart_obj_free(d2);
    kart_obj_free(k);
    kart_obj_free(root);
    kart_obj_free(extra);
}
END_TEST

START_TEST(depth_limit_inside_out)
{
    kart_obj *cur = I(0);
    for (int d = 2; d <= KART_OBJ_MAX_DEPTH; d++) {
        kart_obj *n = L();
        ck_assert_int_eq(kart_obj_append(n, cur), 0);
        cur = n;
    }
    kart_obj *top = L();
    ck_assert_int_eq(kart_obj_append(top, cur), -E2BIG);
    kart_obj *items[1] = {cur}, *t, *e;
    ck_assert_int_eq(kart_obj_tuple(items, 1, &t), -E2BIG);
    ck_assert_int_eq(kart_obj_instance("m", "C", cur, &e), -E2BIG);
    /* Removing the deep part makes room again. */
    const kart_obj *c;
    ck_assert_int_eq(kart_obj_item(cur, 0, &c), 0);
    kart_obj *inner;
    ck_assert_int_eq(kart_obj_remove(cur, 0, &inner), 0);
    ck_assert_int_eq(kart_obj_append(top, cur), 0);
    ck_assert_str_eq(R(top), "[[]]");
    char buf[16];
    size_t need = 0;
    ck_assert_int_eq(kart_obj_repr(inner, buf, sizeof buf, &need), -ENOBUFS);
    ck_assert_int_eq(need, 2 * (KART_OBJ_MAX_DEPTH - 2) + 2);
    ck_assert_str_eq(buf, "[[[[[[[[[[[[...");
    kart_obj_free(inner);
    kart_obj_free(top);
}
END_TEST

START_TEST(dict_rejects_too_deep)
{
    kart_obj *cur = I(0);
    for (int d = 2; d <= KART_OBJ_MAX_DEPTH; d++) {
        kart_obj *n = L();
        ck_assert_int_eq(kart_obj_append(n, cur), 0);
        cur = n;
    }
    kart_obj *d = D(), *k = S("k");
    ck_assert_int_eq(kart_obj_dict_set(d, k, cur), -E2BIG);
    ck_assert_int_eq(kart_obj_set_item(cur, 0, I(1)), 0); /* shallower */
    ck_assert_int_eq(kart_obj_dict_set(d, k, cur), 0);
    kart_obj_free(d);
}
END_TEST

START_TEST(repr_like_python)
{
    static const struct {
        double f;
        const char *s;
    } fl[] = {
        {1.0, "1.0"},          {0.1, "0.1"},
        {1e16, "1e+16"},       {1e15, "1000000000000000.0"},
        {1e-5, "1e-05"},       {0.0001, "0.0001"},
        {1.5e300, "1.5e+300"}, {-2.5, "-2.5"},
        {INFINITY, "inf"},     {-INFINITY, "-inf"},
        {NAN, "nan"},          {123456789.125, "123456789.125"},
        {5e-324, "5e-324"},    {1.7976931348623157e308, "1.7976931348623157e+308"},
    };
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
        kart_obj *o = F(fl[i].f);
        ck_assert_str_eq(R(o), fl[i].s);
        kart_obj_free(o);
    }
    kart_obj *s = S("it's \"q\"\n\t\\ \x7f h\xc3\xa9");
    ck_assert_str_eq(R(s), "'it\\'s \"q\"\\n\\t\\\\ \\x7f h\xc3\xa9'");
    char tiny[4];
    size_t need;
    ck_assert_int_eq(kart_obj_repr(s, tiny, sizeof tiny, &need), -ENOBUFS);
    ck_assert_str_eq(tiny, "...");
    ck_assert_int_eq(kart_obj_repr(s, NULL, 0, &need), -ENOBUFS);
    ck_assert_int_eq(need, strlen(R(s)) + 1);
    ck_assert_int_eq(kart_obj_repr(s, NULL, 5, &need), -EINVAL);
    char exact[64];
    ck_assert_int_eq(kart_obj_repr(s, exact, need, NULL), (int)need - 1);
    ck_assert_int_eq(kart_obj_repr(NULL, exact, sizeof exact, NULL), 4);
    ck_assert_str_eq(exact, "NULL");
    kart_obj_free(s);
}
END_TEST

START_TEST(copy_is_deep)
{
    kart_obj *l = L(), *c;
    ck_assert_int_eq(kart_obj_append(l, S("a")), 0);
    ck_assert_int_eq(kart_obj_copy(l, &c), 0);
    ck_assert(kart_obj_equal(l, c));
    ck_assert_int_eq(kart_obj_append(c, I(1)), 0);
    ck_assert(!kart_obj_equal(l, c));
    ck_assert_int_eq(kart_obj_copy(NULL, &c), -EINVAL);
    ck_assert_int_eq(kart_obj_copy(l, NULL), -EINVAL);
    /* A copy of an item is a new root. */
    const kart_obj *it;
    kart_obj *ic;
    ck_assert_int_eq(kart_obj_item(l, 0, &it), 0);
    ck_assert_int_eq(kart_obj_copy(it, &ic), 0);
    ck_assert_int_eq(kart_obj_append(l, ic), 0);
    ck_assert_str_eq(R(l), "['a', 'a']");
    kart_obj_free(c);
    kart_obj_free(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("obj");
    TCase *tc = tcase_create("values");
    tcase_add_test(tc, scalars);
    tcase_add_test(tc, utf8_validation);
    tcase_add_test(tc, bigints);
    tcase_add_test(tc, numbers_equal_as_python);
    tcase_add_test(tc, repr_like_python);
    suite_add_tcase(s, tc);
    tc = tcase_create("containers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sequences);
    tcase_add_test(tc, the_refused_int_is_not_taken);
    tcase_add_test(tc, dicts);
    tcase_add_test(tc, dict_matches_model);
    tcase_add_test(tc, equality_of_containers);
    tcase_add_test(tc, errors_and_instances);
    tcase_add_test(tc, depth_limit);
    tcase_add_test(tc, depth_limit_inside_out);
    tcase_add_test(tc, dict_rejects_too_deep);
    tcase_add_test(tc, copy_is_deep);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

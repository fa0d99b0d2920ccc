/* Description: kart/shared.h's ShareableList — every item type stored and
 * read back, slots that keep their size (a longer str refused, any type
 * set in any slot), Python's equality in count and index, attach by name
 * and by a fork child, foreign and damaged segments refused, every
 * documented argument error, and Python 3's own ShareableList attaching a
 * kart list and the other way round (tests/py/shlist_peer.py): the layout
 * is Python's byte for byte. */
#include "testutil.h"

#include <kart/shared.h>
#include <kart/shm.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PEER "tests/py/shlist_peer.py"

static const char *tname(const char *tag)
{
    static char buf[4][96];
    static int n;
    char *b = buf[n++ % 4];
    snprintf(b, 96, "/kart-test-%ld-%s-%d", (long)getpid(), tag, n);
    return b;
}

#define INT(x) ((kart_shlist_item){.type = KART_SHLIST_INT, .i = (x)})
#define FLT(x) ((kart_shlist_item){.type = KART_SHLIST_FLOAT, .f = (x)})
#define BOOL(x) ((kart_shlist_item){.type = KART_SHLIST_BOOL, .b = (x)})
#define STR(s) ((kart_shlist_item){.type = KART_SHLIST_STR, .data = (s), .len = strlen(s)})
#define BYTES(s, n) ((kart_shlist_item){.type = KART_SHLIST_BYTES, .data = (s), .len = (n)})
#define NONE ((kart_shlist_item){.type = KART_SHLIST_NONE})

static kart_shlist_item get(kart_shlist *l, size_t i, char *buf, size_t cap)
{
    kart_shlist_item it;
    ck_assert_int_eq(kart_shlist_get(l, i, &it, buf, cap), 0);
    return it;
}

static void expect_str(kart_shlist *l, size_t i, kart_shlist_type t, const void *want, size_t n)
{
    char buf[256];
    kart_shlist_item it = get(l, i, buf, sizeof(buf));
    ck_assert_int_eq(it.type, t);
    ck_assert_uint_eq(it.len, n);
    ck_assert_ptr_eq(it.data, buf);
    ck_assert_mem_eq(buf, want, n);
    ck_assert_int_eq(buf[n], 0);
}

static kart_shlist *sample(const char *name)
{
    kart_shlist_item items[] = {INT(-42),     FLT(3.25),          BOOL(true), NONE,
                                STR("héllo"), BYTES("a\0b\0", 4), STR(""),    INT(INT64_MAX)};
    kart_shlist *l;
    ck_assert_int_eq(kart_shlist_create(&l, name, items, 8, 0), 0);
    return l;
}

START_TEST(every_type_round_trips)
{
    kart_shlist *l = sample(NULL);
    ck_assert_uint_eq(kart_shlist_len(l), 8);
    ck_assert_ptr_nonnull(kart_shlist_name(l));
    char buf[64];
    kart_shlist_item it = get(l, 0, buf, 0);
    ck_assert_int_eq(it.type, KART_SHLIST_INT);
    ck_assert_int_eq(it.i, -42);
    it = get(l, 1, NULL, 0);
    ck_assert_int_eq(it.type, KART_SHLIST_FLOAT);
    ck_assert(it.f == 3.25);
    it = get(l, 2, NULL, 0);
    ck_assert_int_eq(it.type, KART_SHLIST_BOOL);
    ck_assert(it.b);
    ck_assert_int_eq(get(l, 3, NULL, 0).type, KART_SHLIST_NONE);
    expect_str(l, 4, KART_SHLIST_STR, "héllo", 6);
    expect_str(l, 5, KART_SHLIST_BYTES, "a\0b", 3); /* trailing NULs go, as in Python */
    expect_str(l, 6, KART_SHLIST_STR, "", 0);
    ck_assert_int_eq(get(l, 7, NULL, 0).i, INT64_MAX);
    ck_assert_int_eq(kart_shlist_unlink(l), 0);
    kart_shlist_free(l);

    /* An empty list. */
    ck_assert_int_eq(kart_shlist_create(&l, NULL, NULL, 0, KART_SHARED_TRACK), 0);
    ck_assert_uint_eq(kart_shlist_len(l), 0);
    ck_assert_int_eq(kart_shlist_get(l, 0, &it, NULL, 0), -ERANGE);
    ck_assert_int_eq(kart_shlist_unlink(l), 0);
    kart_shlist_free(l);
}
END_TEST

START_TEST(set_keeps_each_slot)
{
    kart_shlist *l = sample(NULL);
    /* Any type into any slot that holds it. */
    ck_assert_int_eq(kart_shlist_set(l, 0, &STR("8 bytes!")), 0); /* an int's slot: 8 */
    expect_str(l, 0, KART_SHLIST_STR, "8 bytes!", 8);
    ck_assert_int_eq(kart_shlist_set(l, 0, &STR("9 bytes!!")), -EMSGSIZE);
    expect_str(l, 0, KART_SHLIST_STR, "8 bytes!", 8); /* nothing stored */
    ck_assert_int_eq(kart_shlist_set(l, 4, &INT(5)), 0);
    ck_assert_int_eq(get(l, 4, NULL, 0).i, 5);
    /* "héllo" (6 bytes) got 8 × (6 / 8 + 1) = 8 bytes; "" got 8. */
    ck_assert_int_eq(kart_shlist_set(l, 4, &BYTES("12345678", 8)), 0);
    ck_assert_int_eq(kart_shlist_set(l, 6, &STR("123456789")), -EMSGSIZE);
    ck_assert_int_eq(kart_shlist_set(l, 6, &NONE), 0);
    ck_assert_int_eq(get(l, 6, NULL, 0).type, KART_SHLIST_NONE);
    ck_assert_int_eq(kart_shlist_set(l, 3, &FLT(-0.5)), 0);
    ck_assert(get(l, 3, NULL, 0).f == -0.5);
    ck_assert_int_eq(kart_shlist_set(l, 2, &BOOL(false)), 0);
    kart_shlist_item it = get(l, 2, NULL, 0);
    ck_assert_int_eq(it.type, KART_SHLIST_BOOL);
    ck_assert(!it.b);
    ck_assert_int_eq(kart_shlist_unlink(l), 0);
    kart_shlist_free(l);
}
END_TEST

START_TEST(count_and_index_use_python_equality)
{
    kart_shlist_item items[] = {INT(1), FLT(1.0), BOOL(true), STR("1"), BYTES("1", 1),
                                NONE,   INT(2),   FLT(0.5),   NONE};
    kart_shlist *l;
    ck_assert_int_eq(kart_shlist_create(&l, NULL, items, 9, 0), 0);
    size_t n, at;
    ck_assert_int_eq(kart_shlist_count(l, &INT(1), &n), 0);
    ck_assert_uint_eq(n, 3); /* 1 == 1.0 == True */
    ck_assert_int_eq(kart_shlist_count(l, &BOOL(true), &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(kart_shlist_count(l, &FLT(1.0), &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(kart_shlist_count(l, &STR("1"), &n), 0);
    ck_assert_uint_eq(n, 1); /* not the bytes */
    ck_assert_int_eq(kart_shlist_count(l, &NONE, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(kart_shlist_count(l, &BOOL(false), &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(kart_shlist_index(l, &NONE, &at), 0);
    ck_assert_uint_eq(at, 5);
    ck_assert_int_eq(kart_shlist_index(l, &FLT(2.0), &at), 0);
    ck_assert_uint_eq(at, 6);
    ck_assert_int_eq(kart_shlist_index(l, &BYTES("1", 1), &at), 0);
    ck_assert_uint_eq(at, 4);
    at = 99;
    ck_assert_int_eq(kart_shlist_index(l, &FLT(0.25), &at), -ENOENT);
    ck_assert_uint_eq(at, 99);
    ck_assert_int_eq(kart_shlist_index(l, &INT(INT64_MAX), &at), -ENOENT);
    /* Argument errors. */
    ck_assert_int_eq(kart_shlist_count(NULL, &NONE, &n), -EINVAL);
    ck_assert_int_eq(kart_shlist_count(l, NULL, &n), -EINVAL);
    ck_assert_int_eq(kart_shlist_count(l, &NONE, NULL), -EINVAL);
    ck_assert_int_eq(kart_shlist_index(l, &NONE, NULL), -EINVAL);
    ck_assert_int_eq(kart_shlist_index(l, &STR("\xff"), &at), -EILSEQ);
    kart_shlist_item bad = {.type = 0};
    ck_assert_int_eq(kart_shlist_count(l, &bad, &n), -EINVAL);
    ck_assert_int_eq(kart_shlist_unlink(l), 0);
    kart_shlist_free(l);
}
END_TEST

START_TEST(bad_arguments)
{
    kart_shlist *l = NULL;
    kart_shlist_item one[] = {INT(1)};
    ck_assert_int_eq(kart_shlist_create(NULL, NULL, one, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_shlist_create(&l, NULL, NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_shlist_create(&l, NULL, one, 1, KART_SHARED_LOCK), -EINVAL);
    ck_assert_int_eq(kart_shlist_create(&l, "no-slash", one, 1, 0), -EINVAL);
    kart_shlist_item bad[] = {{.type = 99}};
    ck_assert_int_eq(kart_shlist_create(&l, NULL, bad, 1, 0), -EINVAL);
    kart_shlist_item nodata[] = {{.type = KART_SHLIST_BYTES, .len = 3}};
    ck_assert_int_eq(kart_shlist_create(&l, NULL, nodata, 1, 0), -EINVAL);
    /* Overlong, surrogate and truncated UTF-8 are not str. */
    const char *notutf8[] = {"\xc0\x80", "\xed\xa0\x80", "\xe2\x82", "\xf5\x80\x80\x80"};
    for (int i = 0; i < 4; i++) {
        kart_shlist_item s[] = {STR(notutf8[i])};
        ck_assert_int_eq(kart_shlist_create(&l, NULL, s, 1, 0), -EILSEQ);
    }
    static char big[KART_SHLIST_MAX_BYTES + 1];
    kart_shlist_item huge[] = {BYTES(big, sizeof(big))};
    ck_assert_int_eq(kart_shlist_create(&l, NULL, huge, 1, 0), -EMSGSIZE);
    ck_assert_ptr_null(l);
    const char *name = tname("dup");
    ck_assert_int_eq(kart_shlist_create(&l, name, one, 1, 0), 0);
    kart_shlist *l2;
    ck_assert_int_eq(kart_shlist_create(&l2, name, one, 1, 0), -EEXIST);

    /* get and set. */
    kart_shlist_item it = {0};
    char buf[4];
    ck_assert_int_eq(kart_shlist_get(NULL, 0, &it, buf, 4), -EINVAL);
    ck_assert_int_eq(kart_shlist_get(l, 0, NULL, buf, 4), -EINVAL);
    ck_assert_int_eq(kart_shlist_get(l, 0, &it, NULL, 4), -EINVAL);
    ck_assert_int_eq(kart_shlist_get(l, 1, &it, buf, 4), -ERANGE);
    ck_assert_int_eq(kart_shlist_set(NULL, 0, &INT(1)), -EINVAL);
    ck_assert_int_eq(kart_shlist_set(l, 0, NULL), -EINVAL);
    ck_assert_int_eq(kart_shlist_set(l, 0, &bad[0]), -EINVAL);
    ck_assert_int_eq(kart_shlist_set(l, 0, &nodata[0]), -EINVAL);
    ck_assert_int_eq(kart_shlist_set(l, 0, &STR("\x80")), -EILSEQ);
    ck_assert_int_eq(kart_shlist_set(l, 1, &INT(1)), -ERANGE);
    /* Too small a buffer: the type and the size needed, nothing else. */
    ck_assert_int_eq(kart_shlist_set(l, 0, &STR("abcdef")), 0);
    memset(buf, 'z', sizeof(buf));
    ck_assert_int_eq(kart_shlist_get(l, 0, &it, buf, 4), -ENOBUFS);
    ck_assert_int_eq(it.type, KART_SHLIST_STR);
    ck_assert_uint_eq(it.len, 6);
    ck_assert_mem_eq(buf, "zzzz", 4);
    /* Exactly the length: no room for a NUL, none written. */
    char six[6];
    ck_assert_int_eq(kart_shlist_get(l, 0, &it, six, 6), 0);
    ck_assert_mem_eq(six, "abcdef", 6);

    kart_shlist_free(NULL); /* ignored */
    ck_assert_int_eq(kart_shlist_unlink(NULL), -EINVAL);
    ck_assert_ptr_null(kart_shlist_name(NULL));
    ck_assert_uint_eq(kart_shlist_len(NULL), 0);
    ck_assert_int_eq(kart_shlist_unlink(l), 0);
    ck_assert_int_eq(kart_shlist_unlink(l), -ENOENT);
    kart_shlist_free(l);
}
END_TEST

START_TEST(attach_by_name_and_fork)
{
    const char *name = tname("attach");
    kart_shlist *l = sample(name), *a;
    ck_assert_int_eq(kart_shlist_attach(NULL, name, 0), -EINVAL);
    ck_assert_int_eq(kart_shlist_attach(&a, name, 1), -EINVAL);
    ck_assert_int_eq(kart_shlist_attach(&a, tname("none"), 0), -ENOENT);
    ck_assert_int_eq(kart_shlist_attach(&a, name, 0), 0);
    ck_assert_uint_eq(kart_shlist_len(a), 8);
    ck_assert_str_eq(kart_shlist_name(a), name);
    expect_str(a, 4, KART_SHLIST_STR, "héllo", 6);
    ck_assert_int_eq(kart_shlist_set(a, 0, &INT(77)), 0);
    ck_assert_int_eq(get(l, 0, NULL, 0).i, 77); /* the same bytes */
    kart_shlist_free(a);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_shlist_item it;
        int ok = kart_shlist_get(l, 0, &it, NULL, 0) == 0 && it.i == 77 &&
                 kart_shlist_set(l, 1, &FLT(9.5)) == 0;
        kart_shlist_free(l);
        _exit(ok ? 0 : 1);
    }
    int st;
    kt_wait_child(pid, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert(get(l, 1, NULL, 0).f == 9.5);
    ck_assert_int_eq(kart_shlist_unlink(l), 0);
    kart_shlist_free(l);
}
END_TEST

/* Segments that are not lists, or lists damaged after the fact. */
START_TEST(foreign_and_damaged_segments)
{
    const char *name = tname("foreign");
    kart_shm *s;
    kart_shlist *l;
    ck_assert_int_eq(kart_shm_create(&s, name, 8, 0), 0); /* too small */
    ck_assert_int_eq(kart_shlist_attach(&l, name, 0), -EPROTO);
    kart_shm_unlink(s);
    kart_shm_close(s);
    ck_assert_int_eq(kart_shm_create(&s, name, 4096, 0), 0);
    int64_t *w = kart_shm_addr(s);
    w[0] = -1; /* a negative count */
    ck_assert_int_eq(kart_shlist_attach(&l, name, 0), -EPROTO);
    w[0] = 1000; /* more items than fit */
    ck_assert_int_eq(kart_shlist_attach(&l, name, 0), -EPROTO);
    w[0] = 2, w[1] = 0, w[2] = 4, w[3] = 16; /* a slot under 8 bytes */
    ck_assert_int_eq(kart_shlist_attach(&l, name, 0), -EPROTO);
    w[1] = 8; /* not from 0 */
    ck_assert_int_eq(kart_shlist_attach(&l, name, 0), -EPROTO);
    w[1] = 0, w[2] = 8, w[3] = 1 << 20; /* past the end */
    ck_assert_int_eq(kart_shlist_attach(&l, name, 0), -EPROTO);
    w[3] = 16; /* well-formed now, formats all zero */
    ck_assert_int_eq(kart_shlist_attach(&l, name, 0), 0);
    kart_shlist_item it;
    ck_assert_int_eq(kart_shlist_get(l, 0, &it, NULL, 0), -EPROTO);
    unsigned char *b = kart_shm_addr(s);
    size_t fmts = 4 * 8 + 16, codes = fmts + 16;
    memcpy(b + fmts, "999s\0\0\0\0", 8); /* larger than its 8-byte slot */
    b[codes] = 2;
    ck_assert_int_eq(kart_shlist_get(l, 0, &it, NULL, 0), -EPROTO);
    memcpy(b + fmts, "8s\0\0\0\0\0\0", 8);
    b[codes] = 7; /* an unknown code */
    ck_assert_int_eq(kart_shlist_get(l, 0, &it, NULL, 0), -EPROTO);
    b[codes] = 1;
    memcpy(b + 4 * 8, "\xff\xfe", 2); /* a str that is not UTF-8 */
    char buf[16];
    ck_assert_int_eq(kart_shlist_get(l, 0, &it, buf, sizeof(buf)), -EPROTO);
    size_t n;
    ck_assert_int_eq(kart_shlist_count(l, &NONE, &n), -EPROTO);
    memcpy(b + 4 * 8, "ok", 2);
    expect_str(l, 0, KART_SHLIST_STR, "ok", 2);
    kart_shlist_free(l);
    kart_shm_unlink(s);
    kart_shm_close(s);
}
END_TEST

/* A get racing a set of the same item (no lock, as in Python) returns a
 * well-formed item or -EPROTO, and never reads outside the item's slot
 * (AddressSanitizer would see it): the child flips item 1 between a str
 * filling its 16-byte slot, an int and None. */
START_TEST(get_racing_set_stays_inside_the_slot)
{
    kart_shlist_item items[] = {INT(0), STR("0123456789abcde"), INT(0)};
    kart_shlist *l;
    ck_assert_int_eq(kart_shlist_create(&l, NULL, items, 3, 0), 0);
    /* flags[0]: the child is setting; flags[1]: the parent is done. */
    _Atomic int *flags =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(flags, MAP_FAILED);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_shlist_item v[] = {STR("0123456789abcde"), INT(-1), NONE, BYTES("xyz", 3)};
        for (unsigned i = 0; !atomic_load(&flags[1]); i++) {
            if (kart_shlist_set(l, 1, &v[i % 4]) != 0)
                _exit(1);
            atomic_store(&flags[0], 1);
        }
        _exit(0);
    }
    while (!atomic_load(&flags[0]))
        usleep(100);
    int seen[KART_SHLIST_NONE + 1] = {0}, torn = 0;
    char buf[32];
    for (int i = 0; i < 50000; i++) {
        kart_shlist_item it;
        int r = kart_shlist_get(l, 1, &it, buf, sizeof(buf));
        if (r == -EPROTO) {
            torn++;
            continue;
        }
        ck_assert_int_eq(r, 0);
        ck_assert(it.type >= KART_SHLIST_INT && it.type <= KART_SHLIST_NONE);
        if (it.type == KART_SHLIST_STR || it.type == KART_SHLIST_BYTES)
            ck_assert_uint_le(it.len, 16);
        seen[it.type]++;
    }
    atomic_store(&flags[1], 1);
    int st;
    kt_wait_child(pid, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    munmap(flags, 4096);
    printf("racing gets: str %d, int %d, None %d, bytes %d, torn (-EPROTO) %d\n",
           seen[KART_SHLIST_STR], seen[KART_SHLIST_INT], seen[KART_SHLIST_NONE],
           seen[KART_SHLIST_BYTES], torn);
    ck_assert_int_eq(kart_shlist_unlink(l), 0);
    kart_shlist_free(l);
}
END_TEST

/* Runs python3 PEER mode name; its stdout is returned (static). */
static const char *py(const char *mode, const char *name, int *status)
{
    static char out[1024];
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "python3 %s %s %s", PEER, mode, name + 1);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    *status = pclose(f);
    return out;
}

START_TEST(python_attaches_a_kart_list)
{
    const char *name = tname("topy");
    kart_shlist *l = sample(name);
    int st;
    const char *out = py("read", name, &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python3: %s", out);
    ck_assert_str_eq(out, "[-42, 3.25, True, None, 'héllo', b'a\\x00b', '', 9223372036854775807]\n"
                          "1 2\n"
                          "ok\n");
    /* What Python set, as kart reads it. */
    expect_str(l, 0, KART_SHLIST_STR, "py", 2);
    ck_assert(get(l, 1, NULL, 0).f == 2.5);
    ck_assert_int_eq(get(l, 2, NULL, 0).type, KART_SHLIST_NONE);
    expect_str(l, 4, KART_SHLIST_STR, "héllo", 6); /* the refused set changed nothing */
    ck_assert_int_eq(kart_shlist_unlink(l), 0);
    kart_shlist_free(l);
}
END_TEST

START_TEST(kart_attaches_a_python_list)
{
    const char *name = tname("frompy");
    int st;
    const char *out = py("create", name, &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python3: %s", out);
    ck_assert_str_eq(out, "ok\n");
    kart_shlist *l;
    ck_assert_int_eq(kart_shlist_attach(&l, name, 0), 0);
    ck_assert_uint_eq(kart_shlist_len(l), 8);
    ck_assert_int_eq(get(l, 0, NULL, 0).i, 7);
    ck_assert(get(l, 1, NULL, 0).f == -1.5);
    ck_assert(get(l, 2, NULL, 0).b);
    ck_assert_int_eq(get(l, 3, NULL, 0).type, KART_SHLIST_NONE);
    expect_str(l, 4, KART_SHLIST_STR, "héllo", 6);
    expect_str(l, 5, KART_SHLIST_BYTES, "by\0tes", 6);
    expect_str(l, 6, KART_SHLIST_STR, "", 0);
    ck_assert_int_eq(get(l, 7, NULL, 0).i, INT64_C(1) << 62);
    /* Python's slot for a 5-character str is 8 bytes. */
    ck_assert_int_eq(kart_shlist_set(l, 4, &STR("12345678")), 0);
    ck_assert_int_eq(kart_shlist_set(l, 4, &STR("123456789")), -EMSGSIZE);
    ck_assert_int_eq(kart_shlist_unlink(l), 0);
    kart_shlist_free(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shared_list");
    TCase *tc = tcase_create("list");
    tcase_add_test(tc, every_type_round_trips);
    tcase_add_test(tc, set_keeps_each_slot);
    tcase_add_test(tc, count_and_index_use_python_equality);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, attach_by_name_and_fork);
    tcase_add_test(tc, foreign_and_damaged_segments);
    tcase_add_test(tc, get_racing_set_stays_inside_the_slot);
    suite_add_tcase(s, tc);
    tc = tcase_create("python");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, python_attaches_a_kart_list);
    tcase_add_test(tc, kart_attaches_a_python_list);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: the pickle codec of kart_obj (kart/obj.h) against the real
 * python3 both ways (every value of tests/py/pickle_peer.py in protocols
 * 2 to 5: Python's pickles decoded by kart, repr compared; kart's pickles
 * loaded by pickle.loads and compared in Python), and hostile input: every
 * truncation, random and mutated bytes, forbidden opcodes and classes,
 * deep nesting, huge lengths, memo abuse, exponential shared references. */
#include "testutil.h"

#include <kart/obj.h>
#include <math.h>
#include <sys/wait.h>

#define PEER "tests/py/pickle_peer.py"

static char python[64];
static char py_why[512];

static bool find_python(void)
{
    const char *cands[] = {"/usr/bin/python3", "python3"};
    for (size_t i = 0; i < 2; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s %s probe 2>&1", cands[i], PEER);
        FILE *f = popen(cmd, "r");
        if (!f)
            continue;
        char line[200] = "";
        if (!fgets(line, sizeof line, f))
            line[0] = 0;
        line[strcspn(line, "\n")] = 0;
        int st = pclose(f);
        if (st == 0) {
            snprintf(python, sizeof python, "%s", cands[i]);
            printf("interop: %s, %s\n", python, line);
            return true;
        }
        size_t o = strlen(py_why);
        snprintf(py_why + o, sizeof py_why - o, "%s%s: %s", o ? "; " : "", cands[i],
                 WIFEXITED(st) && WEXITSTATUS(st) == 127 ? "not found" : line);
    }
    return false;
}

static const kart_obj_unpickle_options managers = {.managers = true};

/* Decodes; asserts the code; returns the object on success. */
static kart_obj *dec(const void *p, size_t n, const kart_obj_unpickle_options *o, int want)
{
    kart_obj *obj = NULL;
    kart_obj_pickle_error e;
    memset(&e, 0, sizeof e);
    int rc = kart_obj_unpickle(p, n, o, &obj, &e);
    ck_assert_msg(rc == want, "unpickle: %d (%s at %zu), wanted %d", rc, e.message, e.offset, want);
    if (rc < 0) {
        ck_assert_ptr_null(obj);
        ck_assert(e.message[0]);
    }
    return obj;
}

#define DEC(lit, o, want) dec(lit, sizeof(lit) - 1, o, want)

static char *repr_alloc(const kart_obj *o)
{
    size_t need = 0;
    char small[1];
    int rc = kart_obj_repr(o, small, sizeof small, &need);
    if (rc >= 0)
        return strdup("");
    ck_assert_int_eq(rc, -ENOBUFS);
    char *b = malloc(need);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(kart_obj_repr(o, b, need, NULL), (int)need - 1);
    return b;
}

static void round_trip_with(const kart_obj *o, const kart_obj_unpickle_options *opt)
{
    for (int p = 2; p <= 5; p++) {
        void *buf;
        size_t len;
        ck_assert_int_eq(kart_obj_pickle(o, p, &buf, &len), 0);
        kart_obj *back = dec(buf, len, opt, 0);
        char *a = repr_alloc(o), *b = repr_alloc(back);
        ck_assert_str_eq(a, b);
        free(a);
        free(b);
        kart_obj_free(back);
        free(buf);
    }
}

static void round_trip_kart(const kart_obj *o)
{
    round_trip_with(o, &managers);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Every valid pickle the interop test saw, for the hostile tests. */
static uint8_t *corpus;
static size_t corpus_len;

static void load_python_corpus(void)
{
    if (corpus || !python[0])
        return;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s %s gen", python, PEER);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 20;
    corpus = malloc(cap);
    size_t n;
    while ((n = fread(corpus + corpus_len, 1, cap - corpus_len, f)) > 0) {
        corpus_len += n;
        if (corpus_len == cap)
            corpus = realloc(corpus, cap *= 2);
    }
    ck_assert_int_eq(pclose(f), 0);
    ck_assert_uint_gt(corpus_len, 1000);
}

/* Python → kart (repr compared with Python's) → kart's pickle in the same
 * protocol → Python (compared with the original value there). */
START_TEST(python_round_trip)
{
    load_python_corpus();
    char path[] = "/tmp/kart-pickle-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *out = fdopen(fd, "wb");
    size_t pos = 0, count = 0, reprs = 0;
    while (pos < corpus_len) {
        const uint8_t *r = corpus + pos;
        int proto = r[0], skip = r[1];
        uint32_t idx = rd32(r + 2), plen = rd32(r + 6);
        const uint8_t *pk = r + 10;
        uint32_t rlen = rd32(pk + plen);
        const char *rep = (const char *)pk + plen + 4;
        pos += 10 + plen + 4 + rlen;
        kart_obj_pickle_error e;
        kart_obj *o = NULL;
        int rc = kart_obj_unpickle(pk, plen, &managers, &o, &e);
        ck_assert_msg(rc == 0, "value #%u protocol %d: %d %s at %zu", idx, proto, rc, e.message,
                      e.offset);
        if (!skip) {
            char *mine = repr_alloc(o);
            ck_assert_msg(strlen(mine) == rlen && memcmp(mine, rep, rlen) == 0,
                          "#%u p%d: %s != %.*s", idx, proto, mine, (int)rlen, rep);
            free(mine);
            reprs++;
        }
        void *buf;
        size_t len;
        ck_assert_int_eq(kart_obj_pickle(o, proto, &buf, &len), 0);
        uint8_t head[9] = {(uint8_t)proto};
        for (int k = 0; k < 4; k++) {
            head[1 + k] = (uint8_t)(idx >> (8 * k));
            head[5 + k] = (uint8_t)(len >> (8 * k));
        }
        fwrite(head, 1, 9, out);
        fwrite(buf, 1, len, out);
        free(buf);
        kart_obj_free(o);
        count++;
    }
    fclose(out);
    ck_assert_uint_gt(count, 250);
    ck_assert_uint_gt(reprs, 200);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s check %s 2>&1", python, PEER, path);
    FILE *f = popen(cmd, "r");
    char line[1024], first[1024] = "";
    bool ok = false;
    while (fgets(line, sizeof line, f)) {
        if (!first[0])
            snprintf(first, sizeof first, "%s", line);
        if (strncmp(line, "OK ", 3) == 0 && (size_t)atol(line + 3) == count)
            ok = true;
    }
    ck_assert_int_eq(pclose(f), 0);
    unlink(path);
    ck_assert_msg(ok, "python check: %s", first);
}
END_TEST

/* The managers' shapes, decoded to what the server needs. */
START_TEST(token_and_errors_decoded)
{
    /* pickle.dumps(Token('dict', ('127.0.0.1', 5000), '7f00aa'), protocol=2) */
    static const char tok2[] = "\x80\x02"
                               "cmultiprocessing.managers\nToken\nq\x00)\x81q\x01X\x04\x00\x00\x00"
                               "dictq\x02X\t\x00\x00\x00"
                               "127.0.0.1q\x03M\x88\x13\x86q\x04X\x06\x00\x00\x00"
                               "7f00aaq\x05\x87q\x06"
                               "b.";
    kart_obj *o = DEC(tok2, &managers, 0);
    const char *m, *n;
    const kart_obj *st, *it;
    ck_assert_int_eq(kart_obj_type_of(o), KART_OBJ_INSTANCE);
    ck_assert_int_eq(kart_obj_get_class(o, &m, &n, &st), 0);
    ck_assert_str_eq(m, "multiprocessing.managers");
    ck_assert_str_eq(n, "Token");
    ck_assert_int_eq(kart_obj_item(st, 0, &it), 0);
    const char *s;
    ck_assert_int_eq(kart_obj_get_str(it, &s, NULL), 0);
    ck_assert_str_eq(s, "dict");
    kart_obj_free(o);
    /* Without the allow-list: refused, the class named. */
    kart_obj_pickle_error e;
    ck_assert_int_eq(kart_obj_unpickle(tok2, sizeof tok2 - 1, NULL, &o, &e), -EPERM);
    ck_assert_int_eq(e.offset, 2);
    ck_assert_int_eq(e.opcode, 'c');
    ck_assert_ptr_nonnull(strstr(e.message, "multiprocessing.managers.Token"));
    /* A caller's own allow-list. */
    kart_obj_class mine[] = {{"multiprocessing.managers", "Token", KART_OBJ_CLASS_INSTANCE}};
    kart_obj_unpickle_options opt = {.classes = mine, .nclasses = 1};
    o = DEC(tok2, &opt, 0);
    kart_obj_free(o);
    /* Allowed as an error: NEWOBJ refused. */
    mine[0].kind = KART_OBJ_CLASS_ERROR;
    DEC(tok2, &opt, -EPERM);

    /* ('#ERROR', KeyError('x')), protocol 4, and protocol 2's
     * 'exceptions' module. */
    static const char err4[] =
        "\x80\x04\x95\x2c\x00\x00\x00\x00\x00\x00\x00\x8c\x06#ERROR\x94\x8c\x08"
        "builtins\x94\x8c\x08KeyError\x94\x93\x94\x8c\x01x\x94\x85\x94R\x94\x86\x94.";
    o = DEC(err4, &managers, 0);
    char buf[64];
    ck_assert_int_ge(kart_obj_repr(o, buf, sizeof buf, NULL), 0);
    ck_assert_str_eq(buf, "('#ERROR', KeyError('x'))");
    kart_obj_free(o);
    DEC(err4, NULL, -EPERM);
    static const char err2[] = "\x80\x02"
                               "cexceptions\nKeyError\nq\x00X\x01\x00\x00\x00"
                               "aq\x01\x85q\x02Rq\x03.";
    o = DEC(err2, &managers, 0);
    ck_assert_int_eq(kart_obj_get_class(o, &m, &n, NULL), 0);
    ck_assert_str_eq(m, "builtins");
    ck_assert_str_eq(n, "KeyError");
    kart_obj_free(o);
    /* A user's error class. */
    static const char myerr[] = "\x80\x02"
                                "cmymod\nOops\n(K\x01tR.";
    kart_obj_class errs[] = {{"mymod", "Oops", KART_OBJ_CLASS_ERROR}};
    kart_obj_unpickle_options eo = {.classes = errs, .nclasses = 1};
    o = DEC(myerr, &eo, 0);
    ck_assert_int_eq(kart_obj_repr(o, buf, sizeof buf, NULL), 7);
    ck_assert_str_eq(buf, "Oops(1)");
    kart_obj_free(o);
    DEC(myerr, &managers, -EPERM);
    /* REDUCE of an instance class; NEWOBJ with arguments; BUILD twice. */
    kart_obj_class ins[] = {{"mymod", "Oops", KART_OBJ_CLASS_INSTANCE}};
    kart_obj_unpickle_options io = {.classes = ins, .nclasses = 1};
    DEC(myerr, &io, -EPERM);
    DEC("\x80\x02"
        "cmymod\nOops\nK\x01\x85\x81.",
        &io, -EPERM);
    o = DEC("\x80\x02"
            "cmymod\nOops\n)\x81K\x05"
            "b.",
            &io, 0);
    ck_assert_int_ge(kart_obj_repr(o, buf, sizeof buf, NULL), 0);
    ck_assert_str_eq(buf, "mymod.Oops(5)");
    kart_obj_free(o);
    DEC("\x80\x02"
        "cmymod\nOops\n)\x81K\x05"
        "bK\x06"
        "b.",
        &io, -EPERM);
    /* BUILD on an exception with a dict; with a non-dict. */
    o = DEC("\x80\x02"
            "cmymod\nOops\n)R}X\x01\x00\x00\x00"
            "aK\x01sb.",
            &eo, 0);
    const kart_obj *state;
    ck_assert_int_eq(kart_obj_get_error_state(o, &state), 0);
    ck_assert_ptr_nonnull(state);
    round_trip_with(o, &eo);
    kart_obj_free(o);
    DEC("\x80\x02"
        "cmymod\nOops\n)RK\x01"
        "b.",
        &eo, -EPERM);
}
END_TEST

START_TEST(kart_values_round_trip)
{
    kart_obj *d, *l, *e, *t;
    ck_assert_int_eq(kart_obj_dict(&d), 0);
    ck_assert_int_eq(kart_obj_list(&l), 0);
    kart_obj *tmp;
    for (int i = 0; i < 300; i++) {
        ck_assert_int_eq(kart_obj_int((int64_t)i * 1000003 - 5000, &tmp), 0);
        ck_assert_int_eq(kart_obj_append(l, tmp), 0);
    }
    uint8_t big[300];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 1);
    ck_assert_int_eq(kart_obj_bigint(big, sizeof big, &tmp), 0); /* LONG4 */
    ck_assert_int_eq(kart_obj_append(l, tmp), 0);
    kart_obj *k;
    ck_assert_int_eq(kart_obj_strz("list", &k), 0);
    ck_assert_int_eq(kart_obj_dict_set(d, k, l), 0);
    char text[70000];
    memset(text, 'z', sizeof text);
    ck_assert_int_eq(kart_obj_str(text, sizeof text, &tmp), 0); /* > 64 KiB */
    ck_assert_int_eq(kart_obj_strz("long", &k), 0);
    ck_assert_int_eq(kart_obj_dict_set(d, k, tmp), 0);
    ck_assert_int_eq(kart_obj_bytes(text, 1000, &tmp), 0);
    ck_assert_int_eq(kart_obj_strz("bytes", &k), 0);
    ck_assert_int_eq(kart_obj_dict_set(d, k, tmp), 0);
    ck_assert_int_eq(kart_obj_error("builtins", "ValueError", NULL, NULL, &e), 0);
    kart_obj *items[2] = {d, e};
    ck_assert_int_eq(kart_obj_tuple(items, 2, &t), 0);
    round_trip_kart(t);
    kart_obj_free(t);

    void *buf;
    size_t len;
    kart_obj *one;
    ck_assert_int_eq(kart_obj_int(1, &one), 0);
    ck_assert_int_eq(kart_obj_pickle(one, 1, &buf, &len), -EINVAL);
    ck_assert_int_eq(kart_obj_pickle(one, 6, &buf, &len), -EINVAL);
    ck_assert_int_eq(kart_obj_pickle(NULL, 4, &buf, &len), -EINVAL);
    ck_assert_int_eq(kart_obj_pickle(one, 4, NULL, &len), -EINVAL);
    ck_assert_int_eq(kart_obj_pickle(one, 4, &buf, NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_pickle(one, 4, &buf, &len), 0);
    ck_assert_int_eq(len, 5);
    ck_assert(memcmp(buf, "\x80\x04K\x01.", 5) == 0);
    free(buf);
    kart_obj_free(one);
    /* A class name with a newline cannot be written as protocol 2's
     * GLOBAL. */
    ck_assert_int_eq(kart_obj_instance("a\nb", "C", NULL, &e), 0);
    ck_assert_int_eq(kart_obj_pickle(e, 2, &buf, &len), -EINVAL);
    ck_assert_int_eq(kart_obj_pickle(e, 4, &buf, &len), 0);
    free(buf);
    kart_obj_free(e);
}
END_TEST

START_TEST(stack_opcodes)
{
    char buf[64];
    struct {
        const char *p;
        size_t n;
        const char *repr;
    } ok[] = {
#define C(lit, r) {lit, sizeof(lit) - 1, r}
        C("\x80\x02K\x01\x32\x86.", "(1, 1)"),     /* DUP */
        C("\x80\x02K\x01K\x02\x30.", "1"),         /* POP */
        C("\x80\x02K\x01(K\x02K\x03\x31.", "1"),   /* POP_MARK */
        C("\x80\x02K\x01(\x30.", "1"),             /* POP of a mark */
        C("\x80\x02K\x07p0\ng0\n\x86.", "(7, 7)"), /* text PUT/GET */
        C("\x80\x02K\x07r\x00\x00\x00\x00j\x00\x00\x00\x00\x86.", "(7, 7)"),
        C("\x80\x02(K\x01K\x02"
          "d.",
          "{1: 2}"),                                          /* DICT */
        C("\x80\x02(K\x01K\x02l.", "[1, 2]"),                 /* LIST */
        C("\x80\x02(K\x01K\x02K\x03K\x04t.", "(1, 2, 3, 4)"), /* TUPLE */
        C("\x80\x02}(K\x01K\x02K\x01K\x03u.", "{1: 3}"),      /* last wins */
        C("\x80\x02}K\x01K\x02s.", "{1: 2}"),                 /* SETITEM */
        C("\x80\x02]K\x01"
          "a.",
          "[1]"),                                  /* APPEND */
        C("\x80\x02U\x02hi.", "'hi'"),             /* SHORT_BINSTRING */
        C("\x80\x02T\x02\x00\x00\x00hi.", "'hi'"), /* BINSTRING */
        C("\x80\x03"
          "C\x02hi.",
          "b'hi'"),
        C("\x80\x03"
          "B\x02\x00\x00\x00hi.",
          "b'hi'"),
        C("\x80\x04\x8e\x02\x00\x00\x00\x00\x00\x00\x00hi.", "b'hi'"),
        C("\x80\x04\x8d\x02\x00\x00\x00\x00\x00\x00\x00hi.", "'hi'"),
        C("\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00\x89.", "False"), /* FRAME */
        C("\x80\x02\x8a\x00.", "0"),                                     /* LONG1 of no bytes */
        C("\x80\x02\x8b\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01.",
          "18446744073709551616"),
        C("\x80\x02J\xff\xff\xff\xff.", "-1"),
        C("\x80\x02G\x3f\xf8\x00\x00\x00\x00\x00\x00.", "1.5"),
        C("\x80\x02"
          "c__builtin__\nbytes\n)R.",
          "b''"),
        C("\x80\x02"
          "c_codecs\nencode\nX\x04\x00\x00\x00\xc3\xbf\x41\x00X\x06\x00\x00\x00latin1\x86R.",
          "b'\\xffA\\x00'"),
        C("\x80\x02]q\x00(K\x01"
          "eh\x00\x86.",
          "([1], [1])"), /* shared, complete */
#undef C
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        kart_obj *o = NULL;
        kart_obj_pickle_error e;
        int rc = kart_obj_unpickle(ok[i].p, ok[i].n, &managers, &o, &e);
        ck_assert_msg(rc == 0, "case %zu: %d %s", i, rc, rc ? e.message : "");
        ck_assert_int_ge(kart_obj_repr(o, buf, sizeof buf, NULL), 0);
        ck_assert_msg(strcmp(buf, ok[i].repr) == 0, "case %zu: %s != %s", i, buf, ok[i].repr);
        kart_obj_free(o);
    }
}
END_TEST

START_TEST(refused_input)
{
    struct {
        const char *p;
        size_t n;
        int rc;
    } bad[] = {
#define C(lit, rc) {lit, sizeof(lit) - 1, rc}
        C("", -EPROTO),
        C("N.", -EPROTO),         /* protocol 0 */
        C("\x80\x06N.", -EPROTO), /* protocol 6 */
        C("\x80\x01N.", -EPROTO),
        C("\x80\x02N.junk", -EPROTO), /* data after STOP */
        C("\x80\x02NN.", -EPROTO),    /* two items at STOP */
        C("\x80\x02(N.", -EPROTO),    /* a mark at STOP */
        C("\x80\x02.", -EPROTO),      /* empty stack */
        C("\x80\x02N", -EPROTO),      /* no STOP */
        C("\x80\x02\xff.", -EPROTO),  /* unknown opcode */
        C("\x80\x02"
          "a.",
          -EPROTO), /* APPEND on nothing */
        C("\x80\x02K\x01"
          "a.",
          -EPROTO),
        C("\x80\x02K\x01K\x02"
          "a.",
          -EPERM), /* APPEND to an int */
        C("\x80\x02(K\x01"
          "e.",
          -EPROTO),                      /* APPENDS without a list */
        C("\x80\x02}(K\x01u.", -EPROTO), /* odd SETITEMS */
        C("\x80\x02}(]K\x01u.", -EPERM), /* unhashable key */
        C("\x80\x02}]K\x01s.", -EPERM),
        C("\x80\x02t.", -EPROTO),          /* TUPLE without a mark */
        C("\x80\x02\x86.", -EPROTO),       /* TUPLE2 of nothing */
        C("\x80\x02(K\x01\x86.", -EPROTO), /* TUPLE2 across a mark */
        C("\x80\x02\x31.", -EPROTO),       /* POP_MARK without a mark */
        C("\x80\x02\x30.", -EPROTO),       /* POP of nothing */
        C("\x80\x02\x32.", -EPROTO),       /* DUP of nothing */
        C("\x80\x02h\x00.", -EPROTO),      /* GET of nothing */
        C("\x80\x02Nq\x05.", -EPROTO),     /* PUT out of order */
        C("\x80\x02Nr\xff\xff\xff\xff.", -EPROTO),
        C("\x80\x02\x94.", -EPROTO), /* MEMOIZE of nothing */
        C("\x80\x02Np\n.", -EPROTO), /* PUT without a number */
        C("\x80\x02Npx\n.", -EPROTO),
        C("\x80\x02Ng0", -EPROTO),
        C("\x80\x02]q\x00h\x00"
          "a.",
          -EPERM), /* a list in itself */
        C("\x80\x02]q\x00]h\x00"
          "a"
          "a.",
          -EPERM), /* [[l]] = l */
        C("\x80\x02]2K\x01"
          "a\x86.",
          -EPERM),                                     /* DUP then changed */
        C("\x80\x02X\x02\x00\x00\x00\xc3(.", -EILSEQ), /* bad UTF-8 */
        C("\x80\x02X\x03\x00\x00\x00\xed\xa0\x80.", -EILSEQ),
        C("\x80\x02U\x01\xe9.", -EILSEQ), /* non-ASCII BINSTRING */
        C("\x80\x02"
          "cos\nsystem\nX\x02\x00\x00\x00lsq\x00\x85R.",
          -EPERM),
        C("\x80\x04\x8c\x08"
          "builtins\x8c\x04"
          "eval\x93X\x01\x00\x00\x00"
          "1\x85R.",
          -EPERM),
        C("\x80\x02"
          "cbuiltins\nKeyError\n.",
          -EPERM), /* a class as the value */
        C("\x80\x02"
          "cbuiltins\nKeyError\n]R.",
          -EPERM), /* args not a tuple */
        C("\x80\x02"
          "cbuiltins\nKeyError\n)\x81.",
          -EPERM), /* NEWOBJ of an error */
        C("\x80\x02"
          "cbuiltins\nKeyError\n)Rq\x00]h\x00"
          "a\x86.",
          0), /* a copy of the error */
        C("\x80\x02"
          "c__builtin__\nbytes\nK\x01\x85R.",
          -EPERM),
        C("\x80\x02"
          "c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00utf8\x86R.",
          -EPERM),
        C("\x80\x02"
          "c_codecs\nencode\nX\x03\x00\x00\x00\xe2\x98\x83X\x06\x00\x00\x00latin1\x86R.",
          -EPERM),
        C("\x80\x02K\x01K\x02R.", -EPERM), /* REDUCE of an int */
        C("\x80\x02]K\x01"
          "b.",
          -EPERM), /* BUILD on a list */
        C("\x80\x02"
          "cbuiltins\nKeyError\nq\x00]h\x00"
          "a.",
          -EPERM), /* a class in a list */
        C("\x80\x02"
          "cbuiltins\n\nK\x00.",
          -EPERM), /* empty class name */
        C("\x80\x02"
          "cbuiltins\nKeyError",
          -EPROTO),                                                 /* GLOBAL cut */
        C("\x80\x04K\x01K\x02\x93.", -EPROTO),                      /* STACK_GLOBAL of ints */
        C("\x80\x04\x8f.", -EPERM),                                 /* EMPTY_SET */
        C("\x80\x04(\x91.", -EPERM),                                /* FROZENSET */
        C("\x80\x05\x96\x00\x00\x00\x00\x00\x00\x00\x00.", -EPERM), /* BYTEARRAY8 */
        C("\x80\x05\x97.", -EPERM),                                 /* NEXT_BUFFER */
        C("\x80\x02\x82\x01.", -EPERM),                             /* EXT1 */
        C("\x80\x02Q.", -EPERM),                                    /* BINPERSID */
        C("\x80\x02I1\n.", -EPERM),                                 /* text INT */
        C("\x80\x02(ios\nsystem\n.", -EPERM),                       /* INST */
        C("\x80\x04\x92.", -EPERM),                                 /* NEWOBJ_EX */
        /* Lengths far beyond the input: errors, never allocations. */
        C("\x80\x02X\xff\xff\xff\x7f"
          "abc.",
          -EPROTO),
        C("\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f"
          "abc.",
          -EPROTO),
        C("\x80\x04\x8e\x00\x00\x00\x80\x00\x00\x00\x00"
          "abc.",
          -EPROTO),
        C("\x80\x02\x8b\xff\xff\xff\x7f"
          "abc.",
          -EPROTO),
        C("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff"
          "N.",
          -EPROTO),
        C("\x80\x02T\x00\x00\x00\x80"
          "a.",
          -EPROTO),
#undef C
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kart_obj *o = NULL;
        kart_obj_pickle_error e;
        int rc = kart_obj_unpickle(bad[i].p, bad[i].n, &managers, &o, &e);
        ck_assert_msg(rc == bad[i].rc, "case %zu: %d (%s), wanted %d", i, rc, rc ? e.message : "",
                      bad[i].rc);
        kart_obj_free(o);
    }
    kart_obj *o;
    ck_assert_int_eq(kart_obj_unpickle(NULL, 3, NULL, &o, NULL), -EINVAL);
    ck_assert_int_eq(kart_obj_unpickle("\x80\x02N.", 4, NULL, NULL, NULL), -EINVAL);
    o = dec("\x80\x02N.", 4, NULL, 0); /* no err, no options */
    kart_obj_free(o);
}
END_TEST

START_TEST(deep_nesting_refused)
{
    enum { N = 10000 };
    static char p[3 * N + 16];
    size_t n = 0;
    /* ]]]]...aaaa.: lists 10,000 deep. */
    p[n++] = (char)0x80;
    p[n++] = 2;
    for (int i = 0; i < N; i++)
        p[n++] = ']';
    for (int i = 0; i < N - 1; i++)
        p[n++] = 'a';
    p[n++] = '.';
    dec(p, n, NULL, -E2BIG);
    /* ((((...: marks 10,000 deep. */
    n = 2;
    for (int i = 0; i < N; i++)
        p[n++] = '(';
    p[n++] = '.';
    dec(p, n, NULL, -E2BIG);
    /* N then TUPLE1 10,000 times. */
    n = 2;
    p[n++] = 'N';
    for (int i = 0; i < N; i++)
        p[n++] = (char)0x85;
    p[n++] = '.';
    dec(p, n, NULL, -E2BIG);
    /* The same 999 deep is fine (1000 levels with the None); 1000 is not. */
    n = 2;
    p[n++] = 'N';
    for (int i = 0; i < KART_OBJ_MAX_DEPTH - 1; i++)
        p[n++] = (char)0x85;
    p[n++] = '.';
    kart_obj *o = dec(p, n, NULL, 0);
    round_trip_kart(o);
    kart_obj_free(o);
    p[n - 1] = (char)0x85;
    p[n++] = '.';
    dec(p, n, NULL, -E2BIG);
    /* max_depth: three levels allowed, four refused. */
    kart_obj_unpickle_options opt = {.max_depth = 3};
    o = DEC("\x80\x02N\x85\x85.", &opt, 0);
    kart_obj_free(o);
    DEC("\x80\x02N\x85\x85\x85.", &opt, -E2BIG);
    /* A dict value, an exception's args, a BUILD state: all counted. */
    DEC("\x80\x02}K\x01N\x85\x85s.", &opt, -E2BIG);
    kart_obj_class ins[] = {{"m", "C", KART_OBJ_CLASS_INSTANCE}};
    kart_obj_unpickle_options io = {.classes = ins, .nclasses = 1, .max_depth = 3};
    DEC("\x80\x02"
        "cm\nC\n)\x81N\x85\x85"
        "b.",
        &io, -E2BIG);
    o = DEC("\x80\x02"
            "cm\nC\n)\x81N\x85"
            "b.",
            &io, 0);
    kart_obj_free(o);
    /* An exception whose args tuple is as deep as allowed. */
    kart_obj_class ex[] = {{"m", "E", KART_OBJ_CLASS_ERROR}};
    kart_obj_unpickle_options eo = {.classes = ex, .nclasses = 1, .max_depth = 3};
    o = DEC("\x80\x02"
            "cm\nE\nN\x85R.",
            &eo, 0);
    kart_obj_free(o);
    DEC("\x80\x02"
        "cm\nE\nN\x85\x85R.",
        &eo, -E2BIG);
    /* An instance needs two levels. */
    io.max_depth = 1;
    DEC("\x80\x02"
        "cm\nC\n)\x81.",
        &io, -E2BIG);
}
END_TEST

START_TEST(shared_references_bounded)
{
    /* Each level holds the previous one four times (memo GETs, copied):
     * 4^40 nodes if expanded. */
    static uint8_t p[4096];
    size_t n = 0;
    p[n++] = 0x80;
    p[n++] = 2;
    p[n++] = ']';
    p[n++] = 'q';
    p[n++] = 0;
    for (int lvl = 1; lvl <= 40; lvl++) {
        p[n++] = ']';
        p[n++] = '(';
        for (int k = 0; k < 4; k++) {
            p[n++] = 'h';
            p[n++] = (uint8_t)(lvl - 1);
        }
        p[n++] = 'e';
        p[n++] = 'q';
        p[n++] = (uint8_t)lvl;
    }
    /* Tuple up everything on the stack is not needed: the error comes
     * first. */
    p[n++] = '.';
    kart_obj_pickle_error e;
    kart_obj *o;
    ck_assert_int_eq(kart_obj_unpickle(p, n, NULL, &o, &e), -E2BIG);
    ck_assert_ptr_nonnull(strstr(e.message, "max_size"));
    /* A small max_size refuses even a plain long str. */
    kart_obj_unpickle_options opt = {.max_size = 100};
    DEC("\x80\x02X\x80\x00\x00\x00"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.",
        &opt, -E2BIG);
}
END_TEST

static void check_prefixes(const uint8_t *p, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        kart_obj *o = NULL;
        int rc = kart_obj_unpickle(p, k, &managers, &o, NULL);
        ck_assert_msg(rc == -EPROTO, "prefix %zu of %zu: %d", k, n, rc);
    }
}

/* Every truncation of every valid pickle is -EPROTO. */
START_TEST(every_truncation)
{
    load_python_corpus();
    size_t pos = 0, count = 0;
    while (pos < corpus_len) {
        const uint8_t *r = corpus + pos;
        uint32_t plen = rd32(r + 6);
        const uint8_t *pk = r + 10;
        uint32_t rlen = rd32(pk + plen);
        pos += 10 + plen + 4 + rlen;
        if (plen > 4096)
            continue; /* the long ones cost quadratic time for nothing new */
        check_prefixes(pk, plen);
        count++;
    }
    ck_assert_uint_gt(count, 200);
}
END_TEST

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static void check_any(const uint8_t *p, size_t n)
{
    kart_obj *o = NULL;
    kart_obj_pickle_error e;
    int rc = kart_obj_unpickle(p, n, &managers, &o, &e);
    if (rc == 0) {
        /* Whatever decodes encodes and decodes to an equal repr. */
        round_trip_kart(o);
        kart_obj_free(o);
        return;
    }
    ck_assert_msg(rc == -EPROTO || rc == -EPERM || rc == -EILSEQ || rc == -E2BIG, "rc %d", rc);
    ck_assert(e.offset <= n);
}

START_TEST(random_and_mutated_bytes)
{
    load_python_corpus();
    static uint8_t buf[8192];
    /* Random opcodes after a PROTO header. */
    for (int i = 0; i < 200000; i++) {
        size_t n = 2 + rnd() % 40;
        buf[0] = 0x80;
        buf[1] = (uint8_t)(2 + rnd() % 4);
        for (size_t k = 2; k < n; k++)
            buf[k] = (uint8_t)rnd();
        if (rnd() % 2)
            buf[n - 1] = '.';
        check_any(buf, n);
    }
    /* Mutations of valid pickles: a few bytes changed, inserted or cut. */
    size_t pos = 0;
    int done = 0;
    while (pos < corpus_len) {
        const uint8_t *r = corpus + pos;
        uint32_t plen = rd32(r + 6);
        const uint8_t *pk = r + 10;
        uint32_t rlen = rd32(pk + plen);
        pos += 10 + plen + 4 + rlen;
        if (plen > sizeof buf - 8)
            continue;
        for (int m = 0; m < 200; m++) {
            size_t n = plen;
            memcpy(buf, pk, plen);
            int edits = 1 + (int)(rnd() % 3);
            for (int k = 0; k < edits; k++) {
                size_t at = rnd() % n;
                switch (rnd() % 3) {
                case 0:
                    buf[at] = (uint8_t)rnd();
                    break;
                case 1:
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = (uint8_t)rnd();
                    n++;
                    break;
                default:
                    if (n > 1) {
                        memmove(buf + at, buf + at + 1, n - at - 1);
                        n--;
                    }
                }
            }
            check_any(buf, n);
            done++;
        }
    }
    ck_assert_int_gt(done, 10000);
}
END_TEST

int main(void)
{
    bool have_python = find_python();
    Suite *s = suite_create("pickle");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, token_and_errors_decoded);
    tcase_add_test(tc, kart_values_round_trip);
    tcase_add_test(tc, stack_opcodes);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, refused_input);
    tcase_add_test(tc, deep_nesting_refused);
    tcase_add_test(tc, shared_references_bounded);
    suite_add_tcase(s, tc);
    if (have_python) {
        tc = tcase_create("python");
        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, python_round_trip);
        tcase_add_test(tc, every_truncation);
        tcase_add_test(tc, random_and_mutated_bytes);
        suite_add_tcase(s, tc);
    } else {
        KART_SKIP_GROUP("python3 interop, truncations and mutations of its pickles (%s)", py_why);
    }
    fflush(stdout);
    return kt_run(s);
}

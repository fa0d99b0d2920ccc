/* Description: the line editor's keys (core/line): the bindable functions'
 * names, the keymap trie (bind, unbind, prefixes, deep copies, the walk in
 * byte order, refused binds that change nothing), GNU readline's default
 * emacs, vi-insert and vi-command maps with the terminal keys, the key
 * notations (quoted, key names, written back for dumps: every one- and
 * two-byte sequence survives the round trip), and the key reader: every
 * default binding byte by byte and all of them in one stream, whole UTF-8
 * characters and invalid bytes one by one, unknown escape sequences
 * swallowed whole (longer than 32 bytes too), keyseq-timeout resolving
 * ESC, a timed-out stretch that needs no second timeout, and a 1 MiB
 * random stream in each map with every byte accounted for. */
#include "testutil.h"

#include "line_fn.h"
#include "line_keymap.h"

#include <errno.h>

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A check for the hot loops: Check's passing ck_assert reports to the
 * parent through a pipe each time, which a million of them turn into
 * minutes. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                                  \
    } while (0)

/* ---- helpers ---- */

static kart__keymap *default_map(kart__map_id id)
{
    kart__keymap *m = NULL;
    ck_assert_int_eq(kart__keymap_create_default(&m, id), 0);
    return m;
}

static enum kart__line_fn fn_of(const kart__keymap *m, const char *seq, size_t len)
{
    kart__binding b;
    int mask = kart__keymap_lookup(m, seq, len, &b);
    if (!(mask & KART__SEQ_BOUND) || b.kind != KART__BIND_FN)
        return KART__FN_NONE;
    return b.fn;
}

#define FN(m, s) fn_of((m), (s), sizeof(s) - 1)

/* The keys a byte stream makes, drained as the header asks. */
typedef struct {
    kart__key *keys;
    size_t n, cap;
} keylist;

static void keep(keylist *l, const kart__key *k)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->keys = realloc(l->keys, l->cap * sizeof(*l->keys));
        ck_assert_ptr_nonnull(l->keys);
    }
    l->keys[l->n++] = *k;
}

static void drain(kart__keyreader *r, const kart__keymap *m, kart__key_kind first,
                  const kart__key *k, keylist *out)
{
    kart__key next;
    if (first != KART__KEY_NONE)
        keep(out, k);
    while (kart__keyreader_next(r, m, &next) != KART__KEY_NONE)
        keep(out, &next);
    REQUIRE(r->npending <= KART__KEYSEQ_MAX);
}

static void feed_all(kart__keyreader *r, const kart__keymap *m, const void *data, size_t len,
                     keylist *out)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        kart__key k;
        kart__key_kind kind = kart__keyreader_feed(r, m, p[i], &k);
        REQUIRE(kind == k.kind);
        drain(r, m, kind, &k, out);
    }
}

/* Times out until nothing is pending. */
static void flush(kart__keyreader *r, const kart__keymap *m, keylist *out)
{
    for (int i = 0; kart__keyreader_pending(r); i++) {
        ck_assert_int_lt(i, KART__KEYSEQ_MAX + 1);
        kart__key k;
        kart__key_kind kind = kart__keyreader_timeout(r, m, &k);
        drain(r, m, kind, &k, out);
    }
}

static keylist decode(const kart__keymap *m, const void *data, size_t len)
{
    keylist l = {0};
    kart__keyreader r;
    kart__keyreader_init(&r);
    feed_all(&r, m, data, len, &l);
    flush(&r, m, &l);
    return l;
}

static void expect_key(const kart__key *k, kart__key_kind kind, const char *bytes, size_t len)
{
    ck_assert_int_eq(k->kind, kind);
    ck_assert_uint_eq(k->len, len);
    ck_assert_mem_eq(k->bytes, bytes, len);
}

#define EXPECT(k, kind, s) expect_key((k), (kind), (s), sizeof(s) - 1)

/* ---- function names ---- */

START_TEST(function_names_round_trip)
{
    for (int fn = KART__FN_NONE + 1; fn < KART__FN_COUNT; fn++) {
        const char *name = kart__line_fn_name((enum kart__line_fn)fn);
        ck_assert_ptr_nonnull(name);
        ck_assert_int_eq(kart__line_fn_lookup(name, strlen(name)), fn);
    }
    ck_assert_ptr_null(kart__line_fn_name(KART__FN_NONE));
    ck_assert_ptr_null(kart__line_fn_name(KART__FN_COUNT));
    ck_assert_int_eq(kart__line_fn_lookup("Beginning-Of-Line", 17), KART__FN_BEGINNING_OF_LINE);
    /* A name only as long as asked: "abort" within a longer buffer. */
    ck_assert_int_eq(kart__line_fn_lookup("abortion", 5), KART__FN_ABORT);
    ck_assert_int_eq(kart__line_fn_lookup("abort", 4), KART__FN_NONE);
    ck_assert_int_eq(kart__line_fn_lookup("no-such-function", 16), KART__FN_NONE);
    ck_assert_int_eq(kart__line_fn_lookup(NULL, 0), KART__FN_NONE);
    /* The pairs that differ only in case each reach their own function. */
    ck_assert_int_eq(kart__line_fn_lookup("vi-bword", 8), KART__FN_VI_BWORD);
    ck_assert_int_eq(kart__line_fn_lookup("vi-bWord", 8), KART__FN_VI_BIG_BWORD);
    ck_assert_int_eq(kart__line_fn_lookup("vi-fWord", 8), KART__FN_VI_BIG_FWORD);
    ck_assert_int_eq(kart__line_fn_lookup("vi-eword", 8), KART__FN_VI_EWORD);
}
END_TEST

START_TEST(name_comparison_ignores_ascii_case_only)
{
    ck_assert(kart__line_name_eq("SeT", 3, "set"));
    ck_assert(!kart__line_name_eq("se", 2, "set"));
    ck_assert(!kart__line_name_eq("sets", 4, "set"));
    ck_assert(kart__line_name_eq("", 0, ""));
    ck_assert(!kart__line_name_eq("\xc9", 1, "\xe9"));
}
END_TEST

/* ---- the trie ---- */

static int count_each(void *arg, const char *seq, size_t len, const kart__binding *b)
{
    (void)seq, (void)len, (void)b;
    (*(int *)arg)++;
    return 0;
}

typedef struct {
    char seqs[16][KART__KEYSEQ_MAX];
    size_t lens[16];
    int n;
} walk;

static int record_each(void *arg, const char *seq, size_t len, const kart__binding *b)
{
    walk *w = arg;
    (void)b;
    memcpy(w->seqs[w->n], seq, len);
    w->lens[w->n++] = len;
    return w->n == 3 ? 42 : 0;
}

START_TEST(keymap_binds_looks_up_and_unbinds)
{
    kart__keymap *m;
    ck_assert_int_eq(kart__keymap_create(&m), 0);
    kart__binding b;
    ck_assert_int_eq(kart__keymap_lookup(m, "a", 1, &b), 0);
    ck_assert_int_eq(b.kind, KART__BIND_NONE);

    ck_assert_int_eq(kart__keymap_bind_fn(m, "\x1b[A", 3, KART__FN_PREVIOUS_HISTORY), 0);
    ck_assert_int_eq(kart__keymap_lookup(m, "\x1b", 1, &b), KART__SEQ_PREFIX);
    ck_assert_int_eq(kart__keymap_lookup(m, "\x1b[", 2, &b), KART__SEQ_PREFIX);
    ck_assert_int_eq(kart__keymap_lookup(m, "\x1b[A", 3, &b), KART__SEQ_BOUND);
    ck_assert_int_eq(b.fn, KART__FN_PREVIOUS_HISTORY);
    ck_assert_int_eq(kart__keymap_lookup(m, "\x1b[A!", 4, &b), 0);
    ck_assert_int_eq(kart__keymap_lookup(m, "", 0, &b), 0);

    /* Bound and a prefix at once. */
    ck_assert_int_eq(kart__keymap_bind_fn(m, "\x1b", 1, KART__FN_VI_MOVEMENT_MODE), 0);
    ck_assert_int_eq(kart__keymap_lookup(m, "\x1b", 1, &b), KART__SEQ_BOUND | KART__SEQ_PREFIX);
    /* Rebinding replaces, a macro included. */
    ck_assert_int_eq(kart__keymap_bind_macro(m, "\x1b", 1, "hi\0there", 8), 0);
    ck_assert_int_eq(kart__keymap_lookup(m, "\x1b", 1, &b), KART__SEQ_BOUND | KART__SEQ_PREFIX);
    ck_assert_int_eq(b.kind, KART__BIND_MACRO);
    ck_assert_uint_eq(b.macro_len, 8);
    ck_assert_mem_eq(b.macro, "hi\0there", 8);
    ck_assert_int_eq(kart__keymap_bind_macro(m, "e", 1, "", 0), 0);
    ck_assert_int_eq(kart__keymap_lookup(m, "e", 1, &b), KART__SEQ_BOUND);
    ck_assert_ptr_nonnull(b.macro);
    ck_assert_uint_eq(b.macro_len, 0);

    /* Unbinding the prefix keeps what is under it; unbinding the last
     * binding under a prefix prunes it. */
    ck_assert_int_eq(kart__keymap_unbind(m, "\x1b", 1), 0);
    ck_assert_int_eq(kart__keymap_lookup(m, "\x1b", 1, &b), KART__SEQ_PREFIX);
    ck_assert_int_eq(kart__keymap_unbind(m, "\x1b[A", 3), 0);
    ck_assert_int_eq(kart__keymap_lookup(m, "\x1b", 1, &b), 0);
    ck_assert_int_eq(kart__keymap_lookup(m, "\x1b[", 2, &b), 0);
    ck_assert_int_eq(kart__keymap_unbind(m, "zz", 2), 0);

    /* Errors change nothing. */
    char longseq[KART__KEYSEQ_MAX + 1];
    memset(longseq, 'x', sizeof(longseq));
    ck_assert_int_eq(kart__keymap_bind_fn(m, longseq, sizeof(longseq), KART__FN_ABORT),
                     -ENAMETOOLONG);
    ck_assert_int_eq(kart__keymap_bind_fn(m, longseq, KART__KEYSEQ_MAX, KART__FN_ABORT), 0);
    ck_assert_int_eq(kart__keymap_bind_fn(m, "a", 0, KART__FN_ABORT), -EINVAL);
    ck_assert_int_eq(kart__keymap_bind_fn(m, "a", 1, KART__FN_NONE), -EINVAL);
    ck_assert_int_eq(kart__keymap_bind_fn(m, "a", 1, KART__FN_COUNT), -EINVAL);
    ck_assert_int_eq(kart__keymap_bind_macro(m, "a", 0, "x", 1), -EINVAL);
    ck_assert_int_eq(kart__keymap_unbind(m, "a", 0), -EINVAL);
    ck_assert_int_eq(kart__keymap_lookup(m, "a", 1, &b), 0);
    int n = 0;
    ck_assert_int_eq(kart__keymap_each(m, count_each, &n), 0);
    ck_assert_int_eq(n, 2); /* "e" and the 32 x's */
    kart__keymap_free(m);
    kart__keymap_free(NULL);
}
END_TEST

START_TEST(keymap_walks_in_byte_order_and_stops)
{
    kart__keymap *m;
    ck_assert_int_eq(kart__keymap_create(&m), 0);
    static const char *const seqs[] = {"b", "\xff", "a", "ab", "\x01", "aa"};
    for (size_t i = 0; i < LEN(seqs); i++)
        ck_assert_int_eq(kart__keymap_bind_fn(m, seqs[i], strlen(seqs[i]), KART__FN_ABORT), 0);
    walk w = {0};
    ck_assert_int_eq(kart__keymap_each(m, record_each, &w), 42);
    ck_assert_int_eq(w.n, 3);
    ck_assert_mem_eq(w.seqs[0], "\x01", 1);
    ck_assert_mem_eq(w.seqs[1], "a", 1);
    ck_assert_uint_eq(w.lens[2], 2);
    ck_assert_mem_eq(w.seqs[2], "aa", 2);
    kart__keymap_free(m);
}
END_TEST

START_TEST(keymap_copies_are_deep)
{
    kart__keymap *m = default_map(KART__MAP_EMACS), *c;
    ck_assert_int_eq(kart__keymap_bind_macro(m, "\x18q", 2, "quit", 4), 0);
    ck_assert_int_eq(kart__keymap_copy(&c, m), 0);
    int nm = 0, nc = 0;
    kart__keymap_each(m, count_each, &nm);
    kart__keymap_each(c, count_each, &nc);
    ck_assert_int_eq(nm, nc);
    ck_assert_int_eq(kart__keymap_bind_fn(m, "\x18q", 2, KART__FN_ABORT), 0);
    ck_assert_int_eq(kart__keymap_unbind(m, "\x1b[A", 3), 0);
    kart__binding b;
    ck_assert_int_eq(kart__keymap_lookup(c, "\x18q", 2, &b), KART__SEQ_BOUND);
    ck_assert_int_eq(b.kind, KART__BIND_MACRO);
    ck_assert_mem_eq(b.macro, "quit", 4);
    ck_assert_int_eq(FN(c, "\x1b[A"), KART__FN_PREVIOUS_HISTORY);
    kart__keymap_free(m);
    ck_assert_int_eq(FN(c, "\x01"), KART__FN_BEGINNING_OF_LINE);
    kart__keymap_free(c);
}
END_TEST

/* Maps made from the defaults share the process's one copy until they
 * change: a change (bind, macro, unbind) lands in that map alone, never in
 * the shared defaults or in another editor's map. */
START_TEST(default_maps_are_shared_until_changed)
{
    kart__keymap *a = default_map(KART__MAP_EMACS), *b = default_map(KART__MAP_EMACS);
    int na = 0, nb = 0;
    kart__keymap_each(a, count_each, &na);
    kart__keymap_each(b, count_each, &nb);
    ck_assert_int_gt(na, 100);
    ck_assert_int_eq(na, nb);
    ck_assert_int_eq(kart__keymap_bind_fn(a, "\x01", 1, KART__FN_ABORT), 0);
    ck_assert_int_eq(FN(a, "\x01"), KART__FN_ABORT);
    ck_assert_int_eq(FN(b, "\x01"), KART__FN_BEGINNING_OF_LINE);
    ck_assert_int_eq(kart__keymap_bind_macro(b, "\x18q", 2, "quit", 4), 0);
    kart__binding bd;
    ck_assert_int_eq(kart__keymap_lookup(a, "\x18q", 2, &bd), 0);
    kart__keymap *c = default_map(KART__MAP_EMACS);
    ck_assert_int_eq(kart__keymap_unbind(c, "\x1b[A", 3), 0);
    ck_assert_int_eq(FN(c, "\x1b[A"), KART__FN_NONE);
    ck_assert_int_eq(FN(a, "\x1b[A"), KART__FN_PREVIOUS_HISTORY);
    /* An unbind of what the defaults do not bind changes nothing. */
    kart__keymap *d = default_map(KART__MAP_EMACS);
    ck_assert_int_eq(kart__keymap_unbind(d, "\x18\x18\x18", 3), 0);
    kart__keymap *e = default_map(KART__MAP_EMACS);
    ck_assert_int_eq(FN(e, "\x01"), KART__FN_BEGINNING_OF_LINE);
    ck_assert_int_eq(kart__keymap_lookup(e, "\x18q", 2, &bd), 0);
    ck_assert_int_eq(FN(e, "\x1b[A"), KART__FN_PREVIOUS_HISTORY);
    int ne = 0;
    kart__keymap_each(e, count_each, &ne);
    ck_assert_int_eq(ne, na);
    ck_assert_int_eq(kart__keymap_create_default(&e, KART__MAP_COUNT), -EINVAL);
    kart__keymap_free(a);
    kart__keymap_free(b);
    kart__keymap_free(c);
    kart__keymap_free(d);
    kart__keymap_free(e);
}
END_TEST

/* ---- the default maps ---- */

typedef struct {
    const char *seq;
    enum kart__line_fn fn;
} want;

/* clang-format off */
#define W(s, f) {s, KART__FN_##f}
/* clang-format on */

START_TEST(emacs_defaults_are_gnus)
{
    static const want keys[] = {
        W("\x01", BEGINNING_OF_LINE),
        W("\x02", BACKWARD_CHAR),
        W("\x04", DELETE_CHAR),
        W("\x05", END_OF_LINE),
        W("\x06", FORWARD_CHAR),
        W("\x07", ABORT),
        W("\x08", BACKWARD_DELETE_CHAR),
        W("\x09", COMPLETE),
        W("\x0a", ACCEPT_LINE),
        W("\x0b", KILL_LINE),
        W("\x0c", CLEAR_SCREEN),
        W("\x0d", ACCEPT_LINE),
        W("\x0e", NEXT_HISTORY),
        W("\x0f", OPERATE_AND_GET_NEXT),
        W("\x10", PREVIOUS_HISTORY),
        W("\x11", QUOTED_INSERT),
        W("\x12", REVERSE_SEARCH_HISTORY),
        W("\x13", FORWARD_SEARCH_HISTORY),
        W("\x14", TRANSPOSE_CHARS),
        W("\x15", UNIX_LINE_DISCARD),
        W("\x16", QUOTED_INSERT),
        W("\x17", UNIX_WORD_RUBOUT),
        W("\x19", YANK),
        W("\x1d", CHARACTER_SEARCH),
        W("\x1f", UNDO),
        W("\x7f", BACKWARD_DELETE_CHAR),
        W(" ", SELF_INSERT),
        W("~", SELF_INSERT),
        W("\x80", SELF_INSERT),
        W("\xff", SELF_INSERT),
        /* meta */
        W("\x1b"
          "b",
          BACKWARD_WORD),
        W("\x1b"
          "f",
          FORWARD_WORD),
        W("\x1b"
          "d",
          KILL_WORD),
        W("\x1b\x7f", BACKWARD_KILL_WORD),
        W("\x1b\x08", BACKWARD_KILL_WORD),
        W("\x1bu", UPCASE_WORD),
        W("\x1bl", DOWNCASE_WORD),
        W("\x1b"
          "c",
          CAPITALIZE_WORD),
        W("\x1bt", TRANSPOSE_WORDS),
        W("\x1by", YANK_POP),
        W("\x1b.", YANK_LAST_ARG),
        W("\x1b_", YANK_LAST_ARG),
        W("\x1b<", BEGINNING_OF_HISTORY),
        W("\x1b>", END_OF_HISTORY),
        W("\x1b"
          "0",
          DIGIT_ARGUMENT),
        W("\x1b"
          "9",
          DIGIT_ARGUMENT),
        W("\x1b-", DIGIT_ARGUMENT),
        W("\x1br", REVERT_LINE),
        W("\x1b\\", DELETE_HORIZONTAL_SPACE),
        W("\x1b?", POSSIBLE_COMPLETIONS),
        W("\x1b=", POSSIBLE_COMPLETIONS),
        W("\x1b*", INSERT_COMPLETIONS),
        W("\x1b\x1d", CHARACTER_SEARCH_BACKWARD),
        W("\x1b#", INSERT_COMMENT),
        W("\x1b&", TILDE_EXPAND),
        W("\x1b~", TILDE_EXPAND),
        W("\x1b\x19", YANK_NTH_ARG),
        W("\x1bn", NON_INCREMENTAL_FORWARD_SEARCH_HISTORY),
        W("\x1bp", NON_INCREMENTAL_REVERSE_SEARCH_HISTORY),
        W("\x1b ", SET_MARK),
        W("\x1b\x09", TAB_INSERT),
        W("\x1b\x12", REVERT_LINE),
        W("\x1b\x1b", COMPLETE),
        W("\x1b\x07", ABORT),
        W("\x1b\x0c", CLEAR_DISPLAY),
        W("\x1b\x0d", VI_EDITING_MODE),
        W("\x1bQ", DO_LOWERCASE_VERSION),
        /* C-x */
        W("\x18\x15", UNDO),
        W("\x18\x12", RE_READ_INIT_FILE),
        W("\x18\x18", EXCHANGE_POINT_AND_MARK),
        W("\x18(", START_KBD_MACRO),
        W("\x18)", END_KBD_MACRO),
        W("\x18"
          "e",
          CALL_LAST_KBD_MACRO),
        W("\x18\x7f", BACKWARD_KILL_LINE),
        W("\x18\x07", ABORT),
        W("\x18"
          "E",
          DO_LOWERCASE_VERSION),
        /* the paste start */
        W("\x1b[200~", BRACKETED_PASTE_BEGIN),
    };
    kart__keymap *m = default_map(KART__MAP_EMACS);
    for (size_t i = 0; i < LEN(keys); i++)
        ck_assert_msg(fn_of(m, keys[i].seq, strlen(keys[i].seq)) == keys[i].fn, "key %zu", i);
    ck_assert_int_eq(fn_of(m, "", 1), KART__FN_SET_MARK); /* C-@ */
    /* What GNU leaves unbound stays so. */
    ck_assert_int_eq(FN(m, "\x03"), KART__FN_NONE);
    ck_assert_int_eq(FN(m, "\x1a"), KART__FN_NONE);
    ck_assert_int_eq(FN(m, "\x1b"
                           "a"),
                     KART__FN_NONE);
    ck_assert_int_eq(FN(m, "\x1b["), KART__FN_NONE);
    kart__binding b;
    ck_assert_int_eq(kart__keymap_lookup(m, "\x18", 1, &b), KART__SEQ_PREFIX);
    ck_assert_int_eq(kart__keymap_lookup(m, "\x1b", 1, &b), KART__SEQ_PREFIX);
    for (int c = 0x20; c <= 0xff; c++) {
        char s = (char)c;
        if (c != 0x7f)
            ck_assert_int_eq(fn_of(m, &s, 1), KART__FN_SELF_INSERT);
    }
    kart__keymap_free(m);
}
END_TEST

START_TEST(vi_defaults_are_gnus)
{
    static const want ins[] = {
        W("\x1b", VI_MOVEMENT_MODE),
        W("\x08", BACKWARD_DELETE_CHAR),
        W("\x7f", BACKWARD_DELETE_CHAR),
        W("\x17", VI_UNIX_WORD_RUBOUT),
        W("\x15", UNIX_LINE_DISCARD),
        W("\x16", QUOTED_INSERT),
        W("\x12", REVERSE_SEARCH_HISTORY),
        W("\x13", FORWARD_SEARCH_HISTORY),
        W("\x04", VI_EOF_MAYBE),
        W("\x09", COMPLETE),
        W("\x0a", ACCEPT_LINE),
        W("\x0d", ACCEPT_LINE),
        W("\x14", TRANSPOSE_CHARS),
        W("\x19", YANK),
        W("\x0e", MENU_COMPLETE),
        W("\x10", MENU_COMPLETE_BACKWARD),
        W("\x1f", VI_UNDO),
        W("\x01", SELF_INSERT),
        W("a", SELF_INSERT),
        W("\xe9", SELF_INSERT),
        W("\x1b[200~", BRACKETED_PASTE_BEGIN),
        W("\x1b[A", PREVIOUS_HISTORY),
    };
    static const want cmd[] = {
        W("h", BACKWARD_CHAR),
        W("j", NEXT_HISTORY),
        W("k", PREVIOUS_HISTORY),
        W("l", FORWARD_CHAR),
        W("w", VI_NEXT_WORD),
        W("W", VI_NEXT_WORD),
        W("b", VI_PREV_WORD),
        W("B", VI_PREV_WORD),
        W("e", VI_END_WORD),
        W("E", VI_END_WORD),
        W("0", BEGINNING_OF_LINE),
        W("^", VI_FIRST_PRINT),
        W("$", END_OF_LINE),
        W("|", VI_COLUMN),
        W("f", VI_CHAR_SEARCH),
        W("F", VI_CHAR_SEARCH),
        W("t", VI_CHAR_SEARCH),
        W("T", VI_CHAR_SEARCH),
        W(";", VI_CHAR_SEARCH),
        W(",", VI_CHAR_SEARCH),
        W("x", VI_DELETE),
        W("X", VI_RUBOUT),
        W("d", VI_DELETE_TO),
        W("D", VI_DELETE_TO),
        W("c", VI_CHANGE_TO),
        W("C", VI_CHANGE_TO),
        W("y", VI_YANK_TO),
        W("Y", VI_YANK_TO),
        W("p", VI_PUT),
        W("P", VI_PUT),
        W("u", VI_UNDO),
        W("U", REVERT_LINE),
        W(".", VI_REDO),
        W("r", VI_CHANGE_CHAR),
        W("R", VI_REPLACE),
        W("s", VI_SUBST),
        W("S", VI_SUBST),
        W("i", VI_INSERTION_MODE),
        W("I", VI_INSERT_BEG),
        W("a", VI_APPEND_MODE),
        W("A", VI_APPEND_EOL),
        W("~", VI_CHANGE_CASE),
        W("/", VI_SEARCH),
        W("?", VI_SEARCH),
        W("n", VI_SEARCH_AGAIN),
        W("N", VI_SEARCH_AGAIN),
        W("G", VI_FETCH_HISTORY),
        W("#", INSERT_COMMENT),
        W("=", VI_COMPLETE),
        W("*", VI_COMPLETE),
        W("\\", VI_COMPLETE),
        W("%", VI_MATCH),
        W("1", VI_ARG_DIGIT),
        W("9", VI_ARG_DIGIT),
        W("-", PREVIOUS_HISTORY),
        W("+", NEXT_HISTORY),
        W(" ", FORWARD_CHAR),
        W("\x08", BACKWARD_CHAR),
        W("m", VI_SET_MARK),
        W("`", VI_GOTO_MARK),
        W("_", VI_YANK_ARG),
        W("&", VI_TILDE_EXPAND),
        W("\x05", EMACS_EDITING_MODE),
        W("\x04", VI_EOF_MAYBE),
        W("\x0b", KILL_LINE),
        W("\x1f", VI_UNDO),
        W("\x1b[3~", DELETE_CHAR),
    };
    kart__keymap *m = default_map(KART__MAP_VI_INSERT);
    for (size_t i = 0; i < LEN(ins); i++)
        ck_assert_msg(fn_of(m, ins[i].seq, strlen(ins[i].seq)) == ins[i].fn, "insert %zu", i);
    ck_assert_int_eq(fn_of(m, "", 1), KART__FN_NONE);
    kart__keymap_free(m);
    m = default_map(KART__MAP_VI_COMMAND);
    for (size_t i = 0; i < LEN(cmd); i++)
        ck_assert_msg(fn_of(m, cmd[i].seq, strlen(cmd[i].seq)) == cmd[i].fn, "command %zu", i);
    ck_assert_int_eq(FN(m, "o"), KART__FN_NONE);
    ck_assert_int_eq(FN(m, "v"), KART__FN_NONE);
    ck_assert_int_eq(FN(m, "\x7f"), KART__FN_NONE);
    ck_assert_int_eq(FN(m, "\xe9"), KART__FN_NONE);
    ck_assert_int_eq(FN(m, "\x1b"), KART__FN_NONE); /* ESC rings the bell in command mode */
    ck_assert_int_eq(FN(m, "\x1b[200~"), KART__FN_NONE);
    kart__keymap_free(m);
    ck_assert_int_eq(kart__keymap_create_default(&m, KART__MAP_COUNT), -EINVAL);
    ck_assert_int_eq(kart__keymap_create_default(&m, (kart__map_id)-1), -EINVAL);
}
END_TEST

START_TEST(terminal_keys_in_every_map)
{
    static const want keys[] = {
        W("\x1b[A", PREVIOUS_HISTORY),
        W("\x1b[B", NEXT_HISTORY),
        W("\x1b[C", FORWARD_CHAR),
        W("\x1b[D", BACKWARD_CHAR),
        W("\x1bOA", PREVIOUS_HISTORY),
        W("\x1bOB", NEXT_HISTORY),
        W("\x1bOC", FORWARD_CHAR),
        W("\x1bOD", BACKWARD_CHAR),
        W("\x1b[H", BEGINNING_OF_LINE),
        W("\x1b[F", END_OF_LINE),
        W("\x1bOH", BEGINNING_OF_LINE),
        W("\x1bOF", END_OF_LINE),
        W("\x1b[1~", BEGINNING_OF_LINE),
        W("\x1b[4~", END_OF_LINE),
        W("\x1b[7~", BEGINNING_OF_LINE),
        W("\x1b[8~", END_OF_LINE),
        W("\x1b[3~", DELETE_CHAR),
        W("\x1b[2~", OVERWRITE_MODE),
        W("\x1b[5~", HISTORY_SEARCH_BACKWARD),
        W("\x1b[6~", HISTORY_SEARCH_FORWARD),
        W("\x1b[1;5C", FORWARD_WORD),
        W("\x1b[1;5D", BACKWARD_WORD),
        W("\x1b[1;3C", FORWARD_WORD),
        W("\x1b[1;3D", BACKWARD_WORD),
        W("\x1b[5C", FORWARD_WORD),
        W("\x1b[5D", BACKWARD_WORD),
        W("\x1bOc", FORWARD_WORD),
        W("\x1bOd", BACKWARD_WORD),
        W("\x1b[1;2C", FORWARD_CHAR),
        W("\x1b[1;2D", BACKWARD_CHAR),
        W("\x1b[3;5~", KILL_WORD),
        W("\x1b[1;5H", BEGINNING_OF_LINE),
        W("\x1b[1;5F", END_OF_LINE),
        W("\x1b[1;2H", BEGINNING_OF_LINE),
        W("\x1b[1;3F", END_OF_LINE),
    };
    for (int id = 0; id < KART__MAP_COUNT; id++) {
        kart__keymap *m = default_map((kart__map_id)id);
        for (size_t i = 0; i < LEN(keys); i++)
            ck_assert_msg(fn_of(m, keys[i].seq, strlen(keys[i].seq)) == keys[i].fn,
                          "map %d key %zu", id, i);
        kart__keymap_free(m);
    }
}
END_TEST

/* ---- notation ---- */

static void parses(const char *text, const char *bytes, size_t len)
{
    char out[KART__KEYSEQ_MAX];
    size_t n = 99;
    ck_assert_msg(kart__keyseq_parse(text, strlen(text), out, sizeof(out), &n) == 0, "%s", text);
    ck_assert_msg(n == len && memcmp(out, bytes, len) == 0, "%s", text);
}

#define PARSES(t, b) parses((t), (b), sizeof(b) - 1)

static int parse_err(const char *text)
{
    char out[KART__KEYSEQ_MAX];
    size_t n;
    return kart__keyseq_parse(text, strlen(text), out, sizeof(out), &n);
}

START_TEST(quoted_notation)
{
    PARSES("\\C-a", "\x01");
    PARSES("\\C-A", "\x01");
    PARSES("\\C-x\\C-r", "\x18\x12");
    PARSES("\\e[5~", "\x1b[5~");
    PARSES("\\M-a", "\x1b"
                    "a");
    PARSES("\\M-\\C-h", "\x1b\x08");
    PARSES("\\C-\\M-h", "\x1b\x08");
    PARSES("\\C-?", "\x7f");
    PARSES("\\C-@", "\0");
    PARSES("\\C-\\\\", "\x1c");
    PARSES("\\\\", "\\");
    PARSES("\\\"", "\"");
    PARSES("\\'", "'");
    PARSES("\\[", "[");
    PARSES("\\a\\b\\d\\f\\n\\r\\t\\v", "\a\b\x7f\f\n\r\t\v");
    PARSES("\\033[A", "\x1b[A");
    PARSES("\\0", "\0");
    PARSES("\\1234", "\x53"
                     "4");
    PARSES("\\x1b[A", "\x1b[A");
    PARSES("\\xe9", "\xe9");
    PARSES("\\xfff", "\xff"
                     "f");
    PARSES("\\377", "\xff");
    PARSES("abc", "abc");
    PARSES("\xc3\xa9", "\xc3\xa9");
    ck_assert_int_eq(parse_err(""), -EINVAL);
    ck_assert_int_eq(parse_err("\\"), -EINVAL);
    ck_assert_int_eq(parse_err("a\\"), -EINVAL);
    ck_assert_int_eq(parse_err("\\C-"), -EINVAL);
    ck_assert_int_eq(parse_err("\\M-"), -EINVAL);
    ck_assert_int_eq(parse_err("\\q"), -EINVAL);
    ck_assert_int_eq(parse_err("\\E[A"), -EINVAL);
    ck_assert_int_eq(parse_err("\\8"), -EINVAL);
    ck_assert_int_eq(parse_err("\\xg"), -EINVAL);
    ck_assert_int_eq(parse_err("\\C"), -EINVAL);
    ck_assert_int_eq(parse_err("0123456789012345678901234567890123"), -ENAMETOOLONG);
    ck_assert_int_eq(parse_err("\\M-a\\M-a\\M-a\\M-a\\M-a\\M-a\\M-a\\M-a\\M-a\\M-a\\M-a\\M-a"
                               "\\M-a\\M-a\\M-a\\M-a\\M-a"),
                     -ENAMETOOLONG);
    char out[2];
    size_t n;
    ck_assert_int_eq(kart__keyseq_parse("\\M-a", 4, out, 1, &n), -ENAMETOOLONG);
}
END_TEST

static void names(const char *text, const char *bytes, size_t len)
{
    char out[KART__KEYSEQ_MAX];
    size_t n = 99;
    ck_assert_msg(kart__keyname_parse(text, strlen(text), out, sizeof(out), &n) == 0, "%s", text);
    ck_assert_msg(n == len && memcmp(out, bytes, len) == 0, "%s", text);
}

#define NAMES(t, b) names((t), (b), sizeof(b) - 1)

START_TEST(key_names)
{
    NAMES("Control-u", "\x15");
    NAMES("control-u", "\x15");
    NAMES("C-u", "\x15");
    NAMES("Ctrl-u", "\x15");
    NAMES("Meta-Rubout", "\x1b\x7f");
    NAMES("M-DEL", "\x1b\x7f");
    NAMES("Meta-Control-h", "\x1b\x08");
    NAMES("C-M-h", "\x1b\x08");
    NAMES("ESC", "\x1b");
    NAMES("Escape", "\x1b");
    NAMES("LFD", "\n");
    NAMES("NEWLINE", "\n");
    NAMES("RET", "\r");
    NAMES("Return", "\r");
    NAMES("RUBOUT", "\x7f");
    NAMES("DEL", "\x7f");
    NAMES("SPACE", " ");
    NAMES("SPC", " ");
    NAMES("TAB", "\t");
    NAMES("Meta-SPC", "\x1b ");
    NAMES("x", "x");
    NAMES("-", "-");
    NAMES("C--", "\x0d");
    NAMES("C-?", "\x7f");
    NAMES("M-\xc3\xa9", "\x1b\xc3\xa9");
    NAMES("\xc3\xa9", "\xc3\xa9");
    char out[KART__KEYSEQ_MAX];
    size_t n;
    ck_assert_int_eq(kart__keyname_parse("", 0, out, sizeof(out), &n), -EINVAL);
    ck_assert_int_eq(kart__keyname_parse("Hyper-x", 7, out, sizeof(out), &n), -EINVAL);
    ck_assert_int_eq(kart__keyname_parse("Foo", 3, out, sizeof(out), &n), -EINVAL);
    ck_assert_int_eq(kart__keyname_parse("C-", 2, out, sizeof(out), &n), -EINVAL);
    ck_assert_int_eq(kart__keyname_parse("C-\xc3\xa9", 4, out, sizeof(out), &n), -EINVAL);
    ck_assert_int_eq(kart__keyname_parse("M-x", 3, out, 1, &n), -ENAMETOOLONG);
}
END_TEST

START_TEST(notation_written_back)
{
    char buf[64];
    ck_assert_uint_eq(kart__keyseq_format("\x01", 1, buf, sizeof(buf)), 4);
    ck_assert_str_eq(buf, "\\C-a");
    kart__keyseq_format("\x1b[A", 3, buf, sizeof(buf));
    ck_assert_str_eq(buf, "\\e[A");
    kart__keyseq_format("\x7f\\\"\xe9 ", 5, buf, sizeof(buf));
    ck_assert_str_eq(buf, "\\C-?\\\\\\\"\\351 ");
    kart__keyseq_format("\x1c\0", 2, buf, sizeof(buf));
    ck_assert_str_eq(buf, "\\C-\\\\\\C-@");
    /* Cut short: the length it needs, the bytes that fit, a NUL. */
    ck_assert_uint_eq(kart__keyseq_format("\x1b[A", 3, buf, 3), 4);
    ck_assert_str_eq(buf, "\\e");
    ck_assert_uint_eq(kart__keyseq_format("abc", 3, NULL, 0), 3);
    ck_assert_uint_eq(kart__keyseq_format("", 0, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");
    /* Every sequence of one and two bytes parses back to itself. */
    for (unsigned v = 0; v < 256 + 65536; v++) {
        char seq[2], text[32], back[KART__KEYSEQ_MAX];
        size_t len = v < 256 ? 1 : 2, n;
        seq[0] = (char)(v < 256 ? v : (v - 256) >> 8);
        seq[1] = (char)(v - 256);
        size_t tlen = kart__keyseq_format(seq, len, text, sizeof(text));
        REQUIRE(tlen < sizeof(text));
        REQUIRE(kart__keyseq_parse(text, tlen, back, sizeof(back), &n) == 0);
        REQUIRE(n == len);
        REQUIRE(memcmp(back, seq, len) == 0);
    }
}
END_TEST

/* ---- the key reader ---- */

typedef struct {
    const kart__keymap *map;
    int checked;
} bindings_walk;

/* Each binding alone, byte by byte: one key, its bytes, its binding. */
static int one_binding(void *arg, const char *seq, size_t len, const kart__binding *b)
{
    bindings_walk *w = arg;
    keylist l = decode(w->map, seq, len);
    ck_assert_uint_eq(l.n, 1);
    bool insert = len == 1 && (unsigned char)seq[0] >= 0x80 && b->kind == KART__BIND_FN &&
                  b->fn == KART__FN_SELF_INSERT;
    ck_assert_int_eq(l.keys[0].kind, insert ? KART__KEY_INSERT : KART__KEY_BOUND);
    ck_assert_uint_eq(l.keys[0].len, len);
    ck_assert_mem_eq(l.keys[0].bytes, seq, len);
    ck_assert_int_eq(l.keys[0].binding.kind, b->kind);
    ck_assert_int_eq(l.keys[0].binding.fn, b->fn);
    free(l.keys);
    w->checked++;
    return 0;
}

typedef struct {
    const kart__keymap *map;
    char *stream;
    size_t len;
    size_t *ends; /* where each sequence ends in the stream */
    kart__binding *binds;
    size_t n;
} stream_build;

/* The sequences that are not a prefix of another and not a lone byte
 * from 0x80 (which would join the next into a UTF-8 character): in one
 * stream they must come out one key each. */
static int add_to_stream(void *arg, const char *seq, size_t len, const kart__binding *b)
{
    stream_build *s = arg;
    kart__binding dummy;
    if (kart__keymap_lookup(s->map, seq, len, &dummy) & KART__SEQ_PREFIX)
        return 0;
    if (len == 1 && (unsigned char)seq[0] >= 0x80)
        return 0;
    s->stream = realloc(s->stream, s->len + len);
    s->ends = realloc(s->ends, (s->n + 1) * sizeof(*s->ends));
    s->binds = realloc(s->binds, (s->n + 1) * sizeof(*s->binds));
    memcpy(s->stream + s->len, seq, len);
    s->len += len;
    s->ends[s->n] = s->len;
    s->binds[s->n++] = *b;
    return 0;
}

START_TEST(every_default_binding_byte_by_byte_and_in_one_stream)
{
    for (int id = 0; id < KART__MAP_COUNT; id++) {
        kart__keymap *m = default_map((kart__map_id)id);
        bindings_walk w = {.map = m};
        ck_assert_int_eq(kart__keymap_each(m, one_binding, &w), 0);
        ck_assert_int_gt(w.checked, 60);

        stream_build s = {.map = m};
        kart__keymap_each(m, add_to_stream, &s);
        keylist l = decode(m, s.stream, s.len);
        ck_assert_uint_eq(l.n, s.n);
        size_t at = 0;
        for (size_t i = 0; i < l.n; i++) {
            ck_assert_int_eq(l.keys[i].kind, KART__KEY_BOUND);
            ck_assert_uint_eq(l.keys[i].len, s.ends[i] - at);
            ck_assert_mem_eq(l.keys[i].bytes, s.stream + at, l.keys[i].len);
            ck_assert_int_eq(l.keys[i].binding.fn, s.binds[i].fn);
            at = s.ends[i];
        }
        free(l.keys);
        free(s.stream);
        free(s.ends);
        free(s.binds);
        kart__keymap_free(m);
    }
}
END_TEST

START_TEST(utf8_characters_whole_and_invalid_bytes_alone)
{
    kart__keymap *m = default_map(KART__MAP_EMACS);
    static const char text[] = "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e"
                               "a";
    keylist l = decode(m, text, sizeof(text) - 1);
    ck_assert_uint_eq(l.n, 4);
    EXPECT(&l.keys[0], KART__KEY_INSERT, "\xc3\xa9");
    ck_assert_int_eq(l.keys[0].binding.fn, KART__FN_SELF_INSERT);
    EXPECT(&l.keys[1], KART__KEY_INSERT, "\xe2\x82\xac");
    EXPECT(&l.keys[2], KART__KEY_INSERT, "\xf0\x9d\x84\x9e");
    EXPECT(&l.keys[3], KART__KEY_BOUND, "a");
    ck_assert_int_eq(l.keys[3].binding.fn, KART__FN_SELF_INSERT);
    free(l.keys);

    /* Truncated, then ASCII: the bad bytes one by one, then the key. */
    l = decode(m,
               "\xe2\x82"
               "a",
               3);
    ck_assert_uint_eq(l.n, 3);
    EXPECT(&l.keys[0], KART__KEY_INSERT, "\xe2");
    EXPECT(&l.keys[1], KART__KEY_INSERT, "\x82");
    EXPECT(&l.keys[2], KART__KEY_BOUND, "a");
    free(l.keys);
    /* Lone continuation bytes, bytes that start nothing, overlong forms,
     * surrogates, past U+10FFFF: a key per byte. */
    static const char bad[] = "\x80\xbf\xc0\x80\xc1\xbf\xf5\xff\xe0\x80\x80\xed\xa0\x80\xf4\x90";
    l = decode(m, bad, sizeof(bad) - 1);
    ck_assert_uint_eq(l.n, sizeof(bad) - 1);
    for (size_t i = 0; i < l.n; i++) {
        ck_assert_int_eq(l.keys[i].kind, KART__KEY_INSERT);
        ck_assert_uint_eq(l.keys[i].len, 1);
        ck_assert_int_eq(l.keys[i].bytes[0], bad[i]);
    }
    free(l.keys);
    /* A lead byte waits for its character; the timeout gives it alone. */
    kart__keyreader r;
    kart__key k;
    kart__keyreader_init(&r);
    ck_assert_int_eq(kart__keyreader_feed(&r, m, 0xc3, &k), KART__KEY_NONE);
    ck_assert(kart__keyreader_pending(&r));
    ck_assert_int_eq(kart__keyreader_timeout(&r, m, &k), KART__KEY_INSERT);
    EXPECT(&k, KART__KEY_INSERT, "\xc3");
    ck_assert(!kart__keyreader_pending(&r));
    ck_assert_int_eq(kart__keyreader_next(&r, m, &k), KART__KEY_NONE);
    /* Followed by ESC: the byte, then the ESC sequence. */
    l = decode(m,
               "\xc3\x1b"
               "f",
               3);
    ck_assert_uint_eq(l.n, 2);
    EXPECT(&l.keys[0], KART__KEY_INSERT, "\xc3");
    EXPECT(&l.keys[1], KART__KEY_BOUND,
           "\x1b"
           "f");
    ck_assert_int_eq(l.keys[1].binding.fn, KART__FN_FORWARD_WORD);
    free(l.keys);
    kart__keymap_free(m);

    /* In vi-command nothing binds them: one UNBOUND key per character, so
     * that r and f get a whole character. */
    m = default_map(KART__MAP_VI_COMMAND);
    l = decode(m, "\xc3\xa9\xff", 3);
    ck_assert_uint_eq(l.n, 2);
    EXPECT(&l.keys[0], KART__KEY_UNBOUND, "\xc3\xa9");
    EXPECT(&l.keys[1], KART__KEY_UNBOUND, "\xff");
    free(l.keys);
    kart__keymap_free(m);
}
END_TEST

START_TEST(unknown_escape_sequences_are_swallowed_whole)
{
    for (int id = 0; id < KART__MAP_COUNT; id++) {
        kart__keymap *m = default_map((kart__map_id)id);
        /* Ctrl-Up, an unknown CSI key, then a plain key. */
        keylist l = decode(m,
                           "\x1b[1;5A"
                           "h",
                           7);
        ck_assert_uint_eq(l.n, 2);
        EXPECT(&l.keys[0], KART__KEY_UNBOUND, "\x1b[1;5A");
        EXPECT(&l.keys[1], KART__KEY_BOUND, "h");
        free(l.keys);
        /* F1 (SS3), even where M-O is bound (emacs); F5; the Linux
         * console's F1; an SGR mouse report. */
        l = decode(m, "\x1bOP\x1b[15~\x1b[[A\x1b[<0;12;34M", 23);
        ck_assert_uint_eq(l.n, 4);
        EXPECT(&l.keys[0], KART__KEY_UNBOUND, "\x1bOP");
        EXPECT(&l.keys[1], KART__KEY_UNBOUND, "\x1b[15~");
        EXPECT(&l.keys[2], KART__KEY_UNBOUND, "\x1b[[A");
        EXPECT(&l.keys[3], KART__KEY_UNBOUND, "\x1b[<0;12;34M");
        free(l.keys);
        /* Broken off by a byte that cannot be in one. */
        l = decode(m, "\x1b[1;5\x0b", 6);
        ck_assert_uint_eq(l.n, 2);
        EXPECT(&l.keys[0], KART__KEY_UNBOUND, "\x1b[1;5");
        EXPECT(&l.keys[1], KART__KEY_BOUND, "\x0b");
        free(l.keys);
        /* Longer than KART__KEYSEQ_MAX: 32 bytes, then the rest, all
         * unbound, nothing inserted. */
        char big[64] = "\x1b[";
        memset(big + 2, '1', 40);
        big[42] = 'm';
        big[43] = 'h';
        l = decode(m, big, 44);
        ck_assert_uint_eq(l.n, 3);
        ck_assert_int_eq(l.keys[0].kind, KART__KEY_UNBOUND);
        ck_assert_uint_eq(l.keys[0].len, KART__KEYSEQ_MAX);
        ck_assert_int_eq(l.keys[1].kind, KART__KEY_UNBOUND);
        ck_assert_uint_eq(l.keys[1].len, 43 - KART__KEYSEQ_MAX);
        ck_assert_int_eq(l.keys[1].bytes[l.keys[1].len - 1], 'm');
        EXPECT(&l.keys[2], KART__KEY_BOUND, "h");
        free(l.keys);
        /* Cut off by the timeout. */
        kart__keyreader r;
        kart__key k;
        kart__keyreader_init(&r);
        for (const char *p = "\x1b[1;7"; *p; p++)
            ck_assert_int_eq(kart__keyreader_feed(&r, m, (unsigned char)*p, &k), KART__KEY_NONE);
        ck_assert_int_eq(kart__keyreader_timeout(&r, m, &k), KART__KEY_UNBOUND);
        EXPECT(&k, KART__KEY_UNBOUND, "\x1b[1;7");
        ck_assert(!kart__keyreader_pending(&r));
        kart__keymap_free(m);
    }
    /* The paste start where nothing binds it (vi-command). */
    kart__keymap *m = default_map(KART__MAP_VI_COMMAND);
    keylist l = decode(m, "\x1b[200~", 6);
    ck_assert_uint_eq(l.n, 1);
    EXPECT(&l.keys[0], KART__KEY_UNBOUND, "\x1b[200~");
    free(l.keys);
    kart__keymap_free(m);
    /* A map that binds no escape sequence still swallows one. */
    ck_assert_int_eq(kart__keymap_create(&m), 0);
    ck_assert_int_eq(kart__keymap_bind_fn(m, "\x1b", 1, KART__FN_ABORT), 0);
    ck_assert_int_eq(kart__keymap_bind_fn(m, "\x1b\x1b", 2, KART__FN_COMPLETE), 0);
    l = decode(m, "\x1b[Ax", 4);
    ck_assert_uint_eq(l.n, 2);
    EXPECT(&l.keys[0], KART__KEY_UNBOUND, "\x1b[A");
    EXPECT(&l.keys[1], KART__KEY_UNBOUND, "x");
    free(l.keys);
    kart__keymap_free(m);
}
END_TEST

START_TEST(timeouts_resolve_ambiguous_sequences)
{
    kart__keymap *ins = default_map(KART__MAP_VI_INSERT);
    kart__keymap *cmd = default_map(KART__MAP_VI_COMMAND);
    kart__keymap *emacs = default_map(KART__MAP_EMACS);
    kart__keyreader r;
    kart__key k;

    /* vi-insert ESC alone: waits, then the timeout makes it ESC. */
    kart__keyreader_init(&r);
    int64_t before = kart_now_ns();
    ck_assert_int_eq(kart__keyreader_feed(&r, ins, 0x1b, &k), KART__KEY_NONE);
    ck_assert(kart__keyreader_pending(&r));
    ck_assert_int_ge(r.since, before);
    ck_assert_int_le(r.since, kart_now_ns());
    ck_assert_int_eq(kart__keyreader_next(&r, ins, &k), KART__KEY_NONE);
    ck_assert_int_eq(kart__keyreader_timeout(&r, ins, &k), KART__KEY_BOUND);
    EXPECT(&k, KART__KEY_BOUND, "\x1b");
    ck_assert_int_eq(k.binding.fn, KART__FN_VI_MOVEMENT_MODE);
    ck_assert(!kart__keyreader_pending(&r));
    ck_assert_int_eq(kart__keyreader_timeout(&r, ins, &k), KART__KEY_NONE);

    /* ESC then a key before the timeout: ESC, and the key looked up in
     * the map the editor switched to. */
    ck_assert_int_eq(kart__keyreader_feed(&r, ins, 0x1b, &k), KART__KEY_NONE);
    ck_assert_int_eq(kart__keyreader_feed(&r, ins, 'x', &k), KART__KEY_BOUND);
    ck_assert_int_eq(k.binding.fn, KART__FN_VI_MOVEMENT_MODE);
    ck_assert_int_eq(kart__keyreader_next(&r, cmd, &k), KART__KEY_BOUND);
    EXPECT(&k, KART__KEY_BOUND, "x");
    ck_assert_int_eq(k.binding.fn, KART__FN_VI_DELETE);
    ck_assert_int_eq(kart__keyreader_next(&r, cmd, &k), KART__KEY_NONE);

    /* ESC ESC in vi-insert: ESC, then in vi-command ESC waits (it starts
     * the arrows) and the timeout rings the bell. */
    kart__keyreader_feed(&r, ins, 0x1b, &k);
    ck_assert_int_eq(kart__keyreader_feed(&r, ins, 0x1b, &k), KART__KEY_BOUND);
    ck_assert_int_eq(kart__keyreader_next(&r, cmd, &k), KART__KEY_NONE);
    ck_assert(kart__keyreader_pending(&r));
    ck_assert_int_eq(kart__keyreader_timeout(&r, cmd, &k), KART__KEY_UNBOUND);
    EXPECT(&k, KART__KEY_UNBOUND, "\x1b");

    /* An arrow is not split, whatever map. */
    keylist l = decode(ins, "\x1b[A", 3);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_int_eq(l.keys[0].binding.fn, KART__FN_PREVIOUS_HISTORY);
    free(l.keys);

    /* emacs: ESC ESC is complete and a prefix of nothing by default; "\eO"
     * waits (the SS3 keys), and the timeout gives M-O. */
    kart__keyreader_init(&r);
    kart__keyreader_feed(&r, emacs, 0x1b, &k);
    ck_assert_int_eq(kart__keyreader_feed(&r, emacs, 'O', &k), KART__KEY_NONE);
    ck_assert_int_eq(kart__keyreader_timeout(&r, emacs, &k), KART__KEY_BOUND);
    EXPECT(&k, KART__KEY_BOUND, "\x1bO");
    ck_assert_int_eq(k.binding.fn, KART__FN_DO_LOWERCASE_VERSION);
    /* "\e[" then the timeout: ESC is unbound in emacs (bell), [ inserts. */
    kart__keyreader_feed(&r, emacs, 0x1b, &k);
    kart__keyreader_feed(&r, emacs, '[', &k);
    ck_assert_int_eq(kart__keyreader_timeout(&r, emacs, &k), KART__KEY_UNBOUND);
    EXPECT(&k, KART__KEY_UNBOUND, "\x1b");
    ck_assert_int_eq(kart__keyreader_next(&r, emacs, &k), KART__KEY_BOUND);
    EXPECT(&k, KART__KEY_BOUND, "[");
    ck_assert(!kart__keyreader_pending(&r));
    /* A known sequence cut short by the timeout (a slow link) comes out
     * whole and unbound, in emacs and where ESC is bound. */
    for (int i = 0; i < 2; i++) {
        kart__keymap *m = i ? ins : emacs;
        for (const char *p = "\x1b[1;"; *p; p++)
            ck_assert_int_eq(kart__keyreader_feed(&r, m, (unsigned char)*p, &k), KART__KEY_NONE);
        ck_assert_int_eq(kart__keyreader_timeout(&r, m, &k), KART__KEY_UNBOUND);
        EXPECT(&k, KART__KEY_UNBOUND, "\x1b[1;");
        ck_assert(!kart__keyreader_pending(&r));
    }

    kart__keymap_free(ins);
    kart__keymap_free(cmd);
    kart__keymap_free(emacs);
}
END_TEST

START_TEST(a_timed_out_stretch_needs_no_second_timeout)
{
    kart__keymap *m;
    ck_assert_int_eq(kart__keymap_create(&m), 0);
    ck_assert_int_eq(kart__keymap_bind_fn(m, "a", 1, KART__FN_ABORT), 0);
    ck_assert_int_eq(kart__keymap_bind_fn(m, "aab", 3, KART__FN_YANK), 0);
    kart__keyreader r;
    kart__key k;
    kart__keyreader_init(&r);
    ck_assert_int_eq(kart__keyreader_feed(&r, m, 'a', &k), KART__KEY_NONE);
    ck_assert_int_eq(kart__keyreader_feed(&r, m, 'a', &k), KART__KEY_NONE);
    ck_assert_int_eq(kart__keyreader_timeout(&r, m, &k), KART__KEY_BOUND);
    EXPECT(&k, KART__KEY_BOUND, "a");
    /* The second a waited as long: it comes out at once. */
    ck_assert_int_eq(kart__keyreader_next(&r, m, &k), KART__KEY_BOUND);
    EXPECT(&k, KART__KEY_BOUND, "a");
    ck_assert(!kart__keyreader_pending(&r));
    /* A new byte after a timeout waits again. */
    ck_assert_int_eq(kart__keyreader_feed(&r, m, 'a', &k), KART__KEY_NONE);
    ck_assert_int_eq(kart__keyreader_feed(&r, m, 'a', &k), KART__KEY_NONE);
    ck_assert_int_eq(kart__keyreader_feed(&r, m, 'b', &k), KART__KEY_BOUND);
    EXPECT(&k, KART__KEY_BOUND, "aab");
    ck_assert_int_eq(k.binding.fn, KART__FN_YANK);
    /* Macros come out with their text. */
    ck_assert_int_eq(kart__keymap_bind_macro(m, "m", 1, "hello", 5), 0);
    ck_assert_int_eq(kart__keyreader_feed(&r, m, 'm', &k), KART__KEY_BOUND);
    ck_assert_int_eq(k.binding.kind, KART__BIND_MACRO);
    ck_assert_mem_eq(k.binding.macro, "hello", 5);
    /* Unbound bytes ring the bell one by one. */
    ck_assert_int_eq(kart__keyreader_feed(&r, m, 'z', &k), KART__KEY_UNBOUND);
    EXPECT(&k, KART__KEY_UNBOUND, "z");
    /* Feeding without draining still hands every byte out once. */
    keylist l = {0};
    for (int i = 0; i < 100; i++) {
        kart__key_kind kind = kart__keyreader_feed(&r, m, 'a', &k);
        if (kind != KART__KEY_NONE)
            keep(&l, &k);
    }
    ck_assert_uint_le(r.npending, KART__KEYSEQ_MAX);
    drain(&r, m, KART__KEY_NONE, &k, &l);
    flush(&r, m, &l);
    size_t total = 0;
    for (size_t i = 0; i < l.n; i++)
        total += l.keys[i].len;
    ck_assert_uint_eq(total, 100);
    free(l.keys);
    kart__keymap_free(m);
}
END_TEST

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

START_TEST(a_random_mebibyte_comes_out_whole)
{
    size_t len = 1 << 20;
    unsigned char *data = malloc(len);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < len; i++) {
        /* Mostly ESC, [, O, digits and ; so that sequences happen. */
        uint64_t v = rng();
        static const char bias[] = "\x1b\x1b[O;1235~ABCDHF\xc3\xa9\xe2\x82";
        data[i] =
            (v & 3) ? (unsigned char)bias[(v >> 8) % (sizeof(bias) - 1)] : (unsigned char)(v >> 16);
    }
    for (int id = 0; id < KART__MAP_COUNT; id++) {
        kart__keymap *m = default_map((kart__map_id)id);
        keylist l = {0};
        kart__keyreader r;
        kart__keyreader_init(&r);
        for (size_t i = 0; i < len; i++) {
            kart__key k;
            kart__key_kind kind = kart__keyreader_feed(&r, m, data[i], &k);
            drain(&r, m, kind, &k, &l);
            if (rng() % 97 == 0) { /* now and then the timeout passes */
                kind = kart__keyreader_timeout(&r, m, &k);
                drain(&r, m, kind, &k, &l);
            }
        }
        flush(&r, m, &l);
        size_t at = 0;
        for (size_t i = 0; i < l.n; i++) {
            const kart__key *k = &l.keys[i];
            REQUIRE(k->len >= 1 && k->len <= KART__KEYSEQ_MAX);
            REQUIRE(at + k->len <= len);
            REQUIRE(memcmp(k->bytes, data + at, k->len) == 0);
            if (k->kind == KART__KEY_INSERT)
                REQUIRE((unsigned char)k->bytes[0] >= 0x80 && k->len <= 4);
            else
                REQUIRE(k->kind != KART__KEY_NONE);
            if (k->kind == KART__KEY_BOUND)
                REQUIRE(k->binding.kind != KART__BIND_NONE);
            at += k->len;
        }
        ck_assert_uint_eq(at, len);
        free(l.keys);
        kart__keymap_free(m);
    }
    free(data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("line_keys");
    TCase *tc = tcase_create("keymap");
    tcase_add_test(tc, function_names_round_trip);
    tcase_add_test(tc, name_comparison_ignores_ascii_case_only);
    tcase_add_test(tc, keymap_binds_looks_up_and_unbinds);
    tcase_add_test(tc, keymap_walks_in_byte_order_and_stops);
    tcase_add_test(tc, keymap_copies_are_deep);
    tcase_add_test(tc, default_maps_are_shared_until_changed);
    tcase_add_test(tc, emacs_defaults_are_gnus);
    tcase_add_test(tc, vi_defaults_are_gnus);
    tcase_add_test(tc, terminal_keys_in_every_map);
    suite_add_tcase(s, tc);

    tc = tcase_create("notation");
    tcase_add_test(tc, quoted_notation);
    tcase_add_test(tc, key_names);
    tcase_add_test(tc, notation_written_back);
    suite_add_tcase(s, tc);

    tc = tcase_create("reader");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_default_binding_byte_by_byte_and_in_one_stream);
    tcase_add_test(tc, utf8_characters_whole_and_invalid_bytes_alone);
    tcase_add_test(tc, unknown_escape_sequences_are_swallowed_whole);
    tcase_add_test(tc, timeouts_resolve_ambiguous_sequences);
    tcase_add_test(tc, a_timed_out_stretch_needs_no_second_timeout);
    tcase_add_test(tc, a_random_mebibyte_comes_out_whole);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

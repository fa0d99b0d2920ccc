/* Description: the line editor's vi mode (core/line/vi.c, vi_motion.c).
 * Editors are fed keys (kart_line_feed, all at once and a byte at a time)
 * and checked by their buffer and cursor (kart_line_buffer,
 * kart_line_point) or the line they accept; one case drives kart_line_read
 * on a pseudo-terminal. Covered: insert mode and ESC, the motions (h l w W
 * b B e E 0 ^ $ f F t T ; , | %), the operators d c y with each kind of
 * motion and doubled, counts on operators and motions, x X s S r R ~ p P
 * D C Y, undo of a whole insert, '.', history moves and / ? n N searches,
 * G, marks, the vi-command keymap through inputrc, and bad input: a count
 * that overflows, motions past the line's ends, ESC on an empty line, f
 * with no target, an operator given a key that is no motion. */
#include "testutil.h"

#include <kart/history.h>
#include <kart/line.h>

#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>

/* ---- the fed fixture: an editor in vi mode whose output is dropped ---- */

typedef struct vfx {
    kart_line *ed;
    char line[8][256];
    int result[8];
    int n;
    size_t bells;
} vfx;

static int count_bells(void *arg, const void *data, size_t len)
{
    vfx *f = arg;
    for (size_t i = 0; i < len; i++)
        if (((const char *)data)[i] == '\a')
            f->bells++;
    return 0;
}

static void vfx_cb(kart_line *ed, int result, const char *line, size_t len, void *arg)
{
    vfx *f = arg;
    (void)ed;
    if (f->n < 8) {
        f->result[f->n] = result;
        size_t l = len < sizeof(f->line[0]) - 1 ? len : sizeof(f->line[0]) - 1;
        if (line)
            memcpy(f->line[f->n], line, l);
        f->line[f->n][line ? l : 0] = '\0';
    }
    f->n++;
}

static void vfx_open(vfx *f, kart_history *h)
{
    memset(f, 0, sizeof(*f));
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.write = count_bells;
    o.write_arg = f;
    o.terminal = KART_LINE_TERMINAL_ON;
    o.no_inputrc = true;
    o.term = "xterm";
    o.prompt = "> ";
    o.history = h;
    ck_assert_int_eq(kart_line_create(&f->ed, -1, -1, &o), 0);
    ck_assert_int_eq(kart_line_set_size(f->ed, 80, 24), 0);
    ck_assert_int_eq(kart_line_parse_and_bind(f->ed, "set editing-mode vi"), 0);
    ck_assert_int_eq(kart_line_start(f->ed, vfx_cb, f), 0);
}

static bool bytewise;

static void vfx_type(vfx *f, const char *s)
{
    size_t n = strlen(s);
    if (!bytewise) {
        ck_assert_int_eq(kart_line_feed(f->ed, s, n), 0);
        return;
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(kart_line_feed(f->ed, s + i, 1), 0);
}

static const char *vfx_buf(vfx *f)
{
    return kart_line_buffer(f->ed, NULL);
}

static void setup_locale(void)
{
    setlocale(LC_CTYPE, "C.UTF-8");
}

/* Types keys on a fresh vi editor (starting in insert mode) and checks
 * the buffer and the cursor. ESC is always followed by a key in these
 * strings, so that it is not left waiting for keyseq-timeout. */
static void vi_check(const char *keys, const char *want, size_t want_point, int line)
{
    vfx f;
    vfx_open(&f, NULL);
    vfx_type(&f, keys);
    ck_assert_msg(strcmp(vfx_buf(&f), want) == 0 && kart_line_point(f.ed) == want_point,
                  "line %d: keys \"%s\": got \"%s\" at %zu, want \"%s\" at %zu", line, keys,
                  vfx_buf(&f), kart_line_point(f.ed), want, want_point);
    kart_line_free(f.ed);
}

#define VI(keys, want, point) vi_check((keys), (want), (point), __LINE__)

/* ---- insert mode and ESC ---- */

START_TEST(insert_and_escape)
{
    setup_locale();
    bytewise = _i;
    VI("hello", "hello", 5);
    VI("hello\033", "hello", 5); /* ESC waits: it may start an arrow */
    VI("hello\0330", "hello", 0);
    VI("hello\033h", "hello", 3);   /* ESC steps back one, h one more */
    VI("hello\033ix", "hellxo", 5); /* i inserts before the cursor */
    VI("hello\033ax", "hellox", 6); /* a after it */
    VI("hello\0330Ax", "hellox", 6);
    VI("hello\033Ix", "xhello", 1);
    VI("ab\033i\033i\033ix", "xab", 1); /* each ESC steps back */
    /* the arrow keys in insert mode still move */
    VI("abc\033[Dx", "abxc", 3);
    /* C-v inserts the next key as it is */
    VI("a\x16\033b", "a\033b", 3);
    /* C-w rubs out a word, C-u the line before the cursor */
    VI("one two\x17", "one ", 4);
    VI("one two\x15x", "x", 1);
    /* the line is accepted in either mode */
    vfx f;
    vfx_open(&f, NULL);
    vfx_type(&f, "first\r");
    vfx_type(&f, "second\0330x\r");
    ck_assert_int_eq(f.n, 2);
    ck_assert_str_eq(f.line[0], "first");
    ck_assert_str_eq(f.line[1], "econd");
    /* each line starts in insert mode */
    vfx_type(&f, "third");
    ck_assert_str_eq(vfx_buf(&f), "third");
    kart_line_free(f.ed);
}
END_TEST

/* ---- motions ---- */

START_TEST(char_and_line_motions)
{
    setup_locale();
    bytewise = _i;
    VI("abcdef\0330lx", "acdef", 1);
    VI("abcdef\0330"
       " x",
       "acdef", 1); /* space is l */
    VI("abcdef\0330$x", "abcde", 4);
    VI("abcdef\0333hx", "abdef", 2);
    VI("  abc\033^x", "  bc", 2);
    VI("abcdef\0334|x", "abcef", 3);  /* | goes to column 4 */
    VI("abcdef\03399|x", "abcde", 4); /* past the end: the last column */
    /* l stops on the last character, h on the first */
    VI("abc\0330llllx", "ab", 1);
    VI("abc\033hhhhhx", "bc", 0);
    /* the arrows too */
    VI("abc\033\033[D\033[Dx", "bc", 0);
}
END_TEST

START_TEST(word_motions)
{
    setup_locale();
    bytewise = _i;
    VI("foo.bar baz\0330wx", "foobar baz", 3); /* w: identifier, punctuation */
    VI("foo.bar baz\0330Wx", "foo.bar az", 8); /* W: blanks only */
    VI("foo.bar baz\0330wwx", "foo.ar baz", 4);
    VI("foo.bar baz\03303wx", "foo.bar az", 8);
    VI("foo.bar baz\033bx", "foo.bar az", 8);
    VI("foo.bar baz\033bbx", "foo.ar baz", 4);
    VI("foo.bar baz\033Bx", "foo.bar az", 8);
    VI("foo.bar baz\033BBx", "oo.bar baz", 0);
    VI("foo.bar baz\0330ex", "fo.bar baz", 2);
    VI("foo.bar baz\0330eex", "foobar baz", 3);
    VI("foo.bar baz\0330Ex", "foo.ba baz", 6);
    VI("foo.bar baz\0332Ex", "foo.bar ba", 9);
    /* w on the last word rings and stays; b at the start too */
    VI("foo bar\033wx", "foo ba", 5);
    VI("foo bar\0330bx", "oo bar", 0);
    VI("a_b1 c\0330wx", "a_b1 ", 4); /* '_' and digits are word characters */
    /* UTF-8: letters are word characters, moves go by characters */
    VI("héllo wörld\0330wx", "héllo örld", 7);
    VI("héllo wörld\0330ex", "héll wörld", 5);
    VI("héllo wörld\033bbx", "éllo wörld", 0);
    VI("héllo wörld\0333|x", "hélo wörld", 3);
    VI("a—b\0330wx", "ab", 1); /* a dash is not a letter */
}
END_TEST

START_TEST(char_search_motions)
{
    setup_locale();
    bytewise = _i;
    VI("a-b-c-d\0330f-x", "ab-c-d", 1);
    VI("a-b-c-d\0330f-;x", "a-bc-d", 3);
    VI("a-b-c-d\0330f-;;,x", "a-bc-d", 3);
    VI("a-b-c-d\03302f-x", "a-bc-d", 3);
    VI("a-b-c-d\0330t-x", "-b-c-d", 0);
    VI("a-b-c-d\0330tcx", "a-bc-d", 3);
    VI("a-b-c-d\033F-x", "a-b-cd", 5);
    VI("a-b-c-d\033Tbx", "a-bc-d", 3);
    VI("a-b-c-d\0332F-x", "a-bc-d", 3);
    /* UTF-8 targets */
    VI("aéb\0330féx", "ab", 1);
    /* % */
    VI("f(a[b]c)d\0330%x", "f(a[b]cd", 7);
    VI("f(a[b]c)d\033h%x", "fa[b]c)d", 1);
    VI("f(a[b]c)d\0333|%x", "f(a[bc)d", 5); /* to the next bracket first */
}
END_TEST

/* ---- operators ---- */

START_TEST(delete_operator)
{
    setup_locale();
    bytewise = _i;
    VI("foo bar baz\0330dw", "bar baz", 0);
    VI("foo bar baz\0330d2w", "baz", 0);
    VI("foo bar baz\03302dw", "baz", 0);
    VI("foo bar baz\03302d2w", "", 0);
    VI("a b c d e f g h\03302d3w", "g h", 0); /* counts multiply */
    VI("foo bar baz\033dw", "foo bar ba", 9); /* dw on the last word */
    VI("foo bar baz\0330wdW", "foo baz", 4);
    VI("foo bar baz\033db", "foo bar z", 8);
    VI("foo bar baz\0330de", " bar baz", 0); /* e takes its character */
    VI("foo bar baz\0330dE", " bar baz", 0);
    VI("foo bar baz\0330wd$", "foo ", 3);
    VI("foo bar baz\033d0", "z", 0);
    VI("  foo\033d^", "  o", 2);
    VI("foo bar baz\0330dfa", "r baz", 0);
    VI("foo bar baz\0330dta", "ar baz", 0);
    VI("foo bar baz\033dFa", "foo bar bz", 9);
    VI("foo bar baz\033dTa", "foo bar baz", 10); /* nothing between */
    VI("foo bar baz\0330dl", "oo bar baz", 0);
    VI("foo bar baz\033dh", "foo bar bz", 9);
    VI("foo bar baz\0330d5|", "bar baz", 0);
    VI("f(a)b\0332|d%", "fb", 1);
    VI("foo bar baz\0330fbd;", "foo az", 4);
    VI("foo bar baz\033dd", "", 0);
    VI("foo bar baz\0330wD", "foo ", 3);
    VI("foo bar\0330w\033[Dd\033[D", "fo bar", 2); /* arrows as motions */
    /* x and X */
    VI("abcdef\0330x", "bcdef", 0);
    VI("abcdef\03303x", "def", 0);
    VI("abcdef\03399x", "abcde", 4);
    VI("abcdef\033X", "abcdf", 4);
    VI("abcdef\0333X", "abf", 2);
    VI("abcdef\0330X", "abcdef", 0); /* rings */
}
END_TEST

START_TEST(change_operator)
{
    setup_locale();
    bytewise = _i;
    VI("foo bar baz\0330cwXY", "XY bar baz", 2); /* cw is ce */
    VI("foo bar baz\0330c2wX", "X baz", 1);
    VI("a b\0330cwX", "X b", 1);            /* one-letter word */
    VI("foo  bar\0334|cwX", "fooX bar", 4); /* on a blank: just the blank */
    VI("foo bar baz\033cbX", "foo bar Xz", 9);
    VI("foo bar baz\0330wc$X", "foo X", 5);
    VI("foo bar baz\0330wCX", "foo X", 5);
    VI("foo bar baz\033ccX", "X", 1);
    VI("foo bar baz\033SX", "X", 1);
    VI("foo bar baz\0330sX", "Xoo bar baz", 1);
    VI("foo bar baz\03303sX", "X bar baz", 1);
    VI("foo bar baz\0330ctaX", "Xar baz", 1);
    /* C at the end: nothing to delete, insert mode all the same */
    VI("foo\033$C\033aX", "foX", 3);
    VI("\033CX", "X", 1);
    /* an insert after c ends with ESC like any other */
    VI("foo bar\0330cwX\033x", " bar", 0);
}
END_TEST

START_TEST(yank_and_put)
{
    setup_locale();
    bytewise = _i;
    VI("foo bar\0330ywP", "foo foo bar", 3);
    VI("foo bar\0330ywp", "ffoo oo bar", 4);
    VI("foo bar\0330yw$p", "foo barfoo ", 10);
    VI("foo bar\033yb0p", "fbaoo bar", 2); /* yb: the cursor stays */
    VI("foo bar\0330yyP", "foo barfoo bar", 6);
    VI("foo bar\0330wYP", "foo barbar", 6);
    VI("foo bar\0330ye3p", "ffoofoofoooo bar", 9);
    VI("abc\0330xp", "bac", 1);
    VI("abc\0330ddp", "abc", 2);
    VI("abc\033p", "abc", 2);           /* nothing killed: rings */
    VI("foo bar\033dbx0P", "rfoo ", 0); /* each kill is a new one */
}
END_TEST

START_TEST(replace_and_case)
{
    setup_locale();
    bytewise = _i;
    VI("abcd\0330rx", "xbcd", 0);
    VI("abcd\03303rx", "xxxd", 2);
    VI("abcd\0330r\033x", "bcd", 0); /* ESC cancels r */
    VI("abcd\0330r\x03x", "bcd", 0); /* and C-c */
    VI("abcd\0330f\x03x", "bcd", 0);
    VI("abcd\0330df\x03x", "bcd", 0);
    VI("abcd\0330ré", "ébcd", 0);
    VI("abcd\0330RXY", "XYcd", 2);
    VI("abcd\0331|RXYZW", "XYZW", 4);
    VI("abcd\0331|RXY\033x", "Xcd", 1);
    VI("aBc-d\0330~~~~~", "AbC-D", 4);
    VI("aBcd\03303~", "AbCd", 3);
    VI("\033~", "", 0);
}
END_TEST

/* ---- counts and bad input ---- */

START_TEST(counts_and_bad_input)
{
    setup_locale();
    bytewise = _i;
    /* a count too large for an int stops growing; the delete goes to the
     * end of the line */
    VI("foo bar baz\033099999999999dw", "", 0);
    VI("foo bar baz\0330d99999999999w", "", 0);
    VI("foo bar baz\033099999999999d99999999999w", "", 0);
    VI("abc\03399999999999x", "ab", 1);
    VI("abc\03399999999999rx", "abx", 2);
    VI("ab\03399999999999~", "aB", 1);
    /* motions that cannot move ring and change nothing */
    VI("abc\033dl", "ab", 1);
    VI("abc\0330dh", "abc", 0);
    VI("abc\0330fz", "abc", 0);
    VI("abc\0330dfzx", "bc", 0);
    VI("abc\0330;x", "bc", 0); /* no search to repeat */
    VI("abc\0330%x", "bc", 0); /* no bracket */
    VI("a(b\0330d%", "a(b", 0);
    /* an operator given a key that is no motion: nothing */
    VI("abc\0330dzx", "bc", 0);
    VI("abc\0330d\033x", "bc", 0);
    VI("abc\0330dcx", "bc", 0);
    /* ESC on an empty line, twice, and commands there */
    VI("\033", "", 0);
    VI("\033\033x", "", 0);
    VI("\033xXdwdd~rxp0$wbe;.u", "", 0);
    VI("\033ix", "x", 1);
    /* 0 starts a count only after a digit */
    VI("abcdefghijklm\033010x", "klm", 0);
    /* a count on a motion of a motion-less line */
    VI("\0335w5b5e", "", 0);
    /* f with its character still to come: the line goes on after it */
    vfx f;
    vfx_open(&f, NULL);
    vfx_type(&f, "a-b\0330f");
    ck_assert_uint_eq(kart_line_point(f.ed), 0);
    vfx_type(&f, "-x");
    ck_assert_str_eq(vfx_buf(&f), "ab");
    /* bells are rung for the failures */
    f.bells = 0;
    vfx_type(&f, "fz");
    ck_assert_uint_eq(f.bells, 1);
    vfx_type(&f, "$l");
    ck_assert_uint_eq(f.bells, 2);
    vfx_type(&f, "0h");
    ck_assert_uint_eq(f.bells, 3);
    vfx_type(&f, "dz");
    ck_assert_uint_eq(f.bells, 4);
    vfx_type(&f, "0l");
    ck_assert_uint_eq(f.bells, 4);
    ck_assert_str_eq(vfx_buf(&f), "ab");
    kart_line_free(f.ed);
}
END_TEST

/* ---- undo and repeat ---- */

START_TEST(undo_whole_inserts)
{
    setup_locale();
    bytewise = _i;
    /* what was typed before the first ESC is not undone (POSIX's U) */
    VI("hello\033u", "hello", 4);
    VI("hello\033a world\033u", "hello", 4);
    VI("hello\033a world\033a!\033uu", "hello", 4);
    VI("hello\033a w\x7fworld\033u", "hello", 4); /* backspace inside */
    VI("foo bar\0330cwbaz\033u", "foo bar", 3);
    VI("foo bar\0330dwu", "foo bar", 4);
    VI("foo bar\0330dwxuu", "foo bar", 4);
    VI("foo bar\0330dwxu", "bar", 1);
    VI("abc\0330RXY\033u", "abc", 1);
    VI("abc\033ddu", "abc", 2);
    VI("abc\033u", "abc", 2); /* nothing to undo */
    VI("abc\0330~~u", "Abc", 2);
    /* U reverts the line */
    VI("abc\033a1\033a2\033U", "abc", 2);
}
END_TEST

START_TEST(dot_repeats)
{
    setup_locale();
    bytewise = _i;
    VI("a b c d\0330dw.", "c d", 0);
    VI("a b c d\0330dw3.", "", 0);
    VI("a b c d e f\03302dw.", "e f", 0);
    VI("abcdef\0330x..", "def", 0);
    VI("abcdef\03302x.", "ef", 0);
    VI("foo bar\0330cwX\033w.", "X X", 2);
    VI("ab\033ix\033.", "axxb", 1);
    VI("ab\0330ax\033.", "axxb", 2);
    VI("ab\033Ax\033.", "abxx", 3);
    VI("ab\033Ix\033$.", "xxab", 0);
    VI("abcd\0330RXY\033l.", "XYXY", 3);
    VI("abcd\0330rx l.", "xbxd", 2);
    VI("abcd\0330~.", "ABcd", 2);
    VI("abcd\0330ylp.", "aaabcd", 2);
    VI("a-b-c\0330df-.", "c", 0);
    /* one undo takes back a whole repeat */
    VI("foo bar baz\0330cwX\033w.u", "X bar baz", 5);
    /* a line starts as if 'i' had been typed: '.' inserts what was typed
     * before the first ESC, or, if nothing was, goes into insert mode */
    VI("abc\033.", "ababcc", 4);
    VI("\033.x", "x", 1);
    VI("abc\033ddi\033.x", "x", 1);
    /* the text of a change backwards */
    VI("foo bar baz\033cbX\033b.", "Xbar Xz", 0);
    /* '.' repeats the change, not the motion or the undo after it */
    VI("abcd\0330xlu.", "acd", 1);
}
END_TEST

/* ---- history ---- */

static kart_history *three_lines(void)
{
    kart_history *h = NULL;
    ck_assert_int_eq(kart_history_create(&h, NULL), 0);
    ck_assert_int_ge(kart_history_add(h, "git status", 10), 0);
    ck_assert_int_ge(kart_history_add(h, "make check", 10), 0);
    ck_assert_int_ge(kart_history_add(h, "git log", 7), 0);
    return h;
}

START_TEST(history_moves_and_searches)
{
    setup_locale();
    bytewise = _i;
    kart_history *h = three_lines();
    vfx f;
    vfx_open(&f, h);
    vfx_type(&f, "x\033k");
    ck_assert_str_eq(vfx_buf(&f), "git log");
    ck_assert_uint_eq(kart_line_point(f.ed), 0); /* command mode: at the start */
    vfx_type(&f, "k");
    ck_assert_str_eq(vfx_buf(&f), "make check");
    vfx_type(&f, "2j");
    ck_assert_str_eq(vfx_buf(&f), "x");
    vfx_type(&f, "j"); /* no newer line: rings, stays */
    ck_assert_str_eq(vfx_buf(&f), "x");
    vfx_type(&f, "-");
    ck_assert_str_eq(vfx_buf(&f), "git log");
    vfx_type(&f, "+");
    ck_assert_str_eq(vfx_buf(&f), "x");
    /* G: the oldest line, or line N with a count */
    vfx_type(&f, "G");
    ck_assert_str_eq(vfx_buf(&f), "git status");
    vfx_type(&f, "2G");
    ck_assert_str_eq(vfx_buf(&f), "make check");
    vfx_type(&f, "\r");
    ck_assert_str_eq(f.line[0], "make check");
    /* / searches back in time, ? forward, n and N again */
    vfx_type(&f, "\033/git\r");
    ck_assert_str_eq(vfx_buf(&f), "git log");
    vfx_type(&f, "n");
    ck_assert_str_eq(vfx_buf(&f), "git status");
    vfx_type(&f, "N");
    ck_assert_str_eq(vfx_buf(&f), "git log");
    vfx_type(&f, "?status\r"); /* nothing newer: rings, stays */
    ck_assert_str_eq(vfx_buf(&f), "git log");
    vfx_type(&f, "/stat\r");
    ck_assert_str_eq(vfx_buf(&f), "git status");
    /* back in command mode after the search: x deletes */
    vfx_type(&f, "0x");
    ck_assert_str_eq(vfx_buf(&f), "it status");
    vfx_type(&f, "\r");
    ck_assert_str_eq(f.line[1], "it status");
    /* ESC abandons a search; the line is as it was */
    vfx_type(&f, "abc\033/gi\033x");
    ck_assert_str_eq(vfx_buf(&f), "ab");
    vfx_type(&f, "/gi\x07x");
    ck_assert_str_eq(vfx_buf(&f), "a");
    /* a search string edited with backspace */
    vfx_type(&f, "/mx\x7f"
                 "ake\r");
    ck_assert_str_eq(vfx_buf(&f), "make check");
    vfx_type(&f, "/git\r");
    ck_assert_str_eq(vfx_buf(&f), "git status");
    vfx_type(&f, "j");
    ck_assert_str_eq(vfx_buf(&f), "make check");
    vfx_type(&f, "/\r"); /* an empty string: the last one */
    ck_assert_str_eq(vfx_buf(&f), "git status");
    kart_line_free(f.ed);
    kart_history_free(h);
}
END_TEST

/* ---- completion, tilde, yank-arg, comment, C-_ and C-d ---- */

static int display_calls;

static void complete_words(kart_line *ed, const char *text, size_t begin, size_t end, void *arg)
{
    (void)begin;
    (void)end;
    (void)arg;
    static const char *const words[] = {"alpha", "alpine", "beta", NULL};
    size_t n = strlen(text);
    for (const char *const *w = words; *w; w++)
        if (strncmp(*w, text, n) == 0)
            ck_assert_int_eq(kart_line_add_completion(ed, *w, strlen(*w)), 0);
}

static void display_words(kart_line *ed, const char *sub, const char *const *m, size_t n,
                          size_t longest, void *arg)
{
    (void)ed;
    (void)sub;
    (void)m;
    (void)n;
    (void)longest;
    (void)arg;
    display_calls++;
}

static void vfx_complete(vfx *f)
{
    vfx_open(f, NULL);
    kart_line_hooks hk;
    memset(&hk, 0, sizeof(hk));
    hk.complete = complete_words;
    hk.display_matches = display_words;
    kart_line_set_hooks(f->ed, &hk, NULL);
}

START_TEST(completion_and_friends)
{
    setup_locale();
    bytewise = _i;
    vfx f;
    /* \ completes the word under the cursor (from its end) and goes on
     * in insert mode */
    vfx_complete(&f);
    vfx_type(&f, "x be\033\\");
    ck_assert_str_eq(vfx_buf(&f), "x beta ");
    vfx_type(&f, "!");
    ck_assert_str_eq(vfx_buf(&f), "x beta !");
    kart_line_free(f.ed);
    /* the cursor in the middle of the word: completed from its end */
    vfx_complete(&f);
    vfx_type(&f, "bet\0330\\");
    ck_assert_str_eq(vfx_buf(&f), "beta ");
    kart_line_free(f.ed);
    /* * inserts all the candidates, in insert mode */
    vfx_complete(&f);
    vfx_type(&f, "alp\033*");
    ck_assert_str_eq(vfx_buf(&f), "alpha alpine ");
    vfx_type(&f, "z");
    ck_assert_str_eq(vfx_buf(&f), "alpha alpine z");
    kart_line_free(f.ed);
    /* = lists them and stays in command mode */
    vfx_complete(&f);
    display_calls = 0;
    vfx_type(&f, "alp\033=");
    ck_assert_int_eq(display_calls, 1);
    ck_assert_str_eq(vfx_buf(&f), "alp");
    vfx_type(&f, "0x");
    ck_assert_str_eq(vfx_buf(&f), "lp");
    kart_line_free(f.ed);

    /* & expands ~ and goes on in insert mode */
    setenv("HOME", "/home/someone", 1);
    VI("~/x\033&y", "/home/someone/xy", 16);

    /* _ appends the previous line's last word after a blank */
    kart_history *h = NULL;
    ck_assert_int_eq(kart_history_create(&h, NULL), 0);
    ck_assert_int_ge(kart_history_add(h, "git log -p", 10), 0);
    vfx_open(&f, h);
    vfx_type(&f, "echo\033_");
    ck_assert_str_eq(vfx_buf(&f), "echo -p");
    vfx_type(&f, "!");
    ck_assert_str_eq(vfx_buf(&f), "echo -p!");
    vfx_type(&f, "\x15x\0332_");
    ck_assert_str_eq(vfx_buf(&f), "x log");
    kart_line_free(f.ed);
    kart_history_free(h);

    /* # comments the line out and accepts it */
    vfx_open(&f, NULL);
    vfx_type(&f, "ls\033#");
    ck_assert_int_eq(f.n, 1);
    ck_assert_str_eq(f.line[0], "#ls");
    /* C-d accepts a line that is not empty (vi-eof-maybe) */
    vfx_type(&f, "abc\x04");
    ck_assert_int_eq(f.n, 2);
    ck_assert_str_eq(f.line[1], "abc");
    /* and ends input on an empty one (the tty's EOF character) */
    vfx_type(&f, "\x04");
    ck_assert_int_eq(f.n, 3);
    ck_assert_int_eq(f.result[2], KART_EEOF);
    kart_line_free(f.ed);

    /* C-_ undoes in insert mode; ESC then closes what is left of the
     * insert, which u takes back */
    VI("ab\033a12\x1f"
       "c",
       "abc", 3);
    VI("ab\033a12\x1f"
       "c\033u",
       "ab", 1);
    VI("ab\033a1\x1f\x1f"
       "c\033u",
       "ab", 1);
}
END_TEST

/* ---- marks, keymaps, inputrc ---- */

START_TEST(marks_and_columns)
{
    setup_locale();
    bytewise = _i;
    VI("abcdef\0332|ma$`ax", "acdef", 1);
    VI("abcdef\0332|ma$d`a", "af", 1);
    VI("abcdef\033`zx", "abcde", 4); /* unset mark: rings */
    VI("abcdef\033m1x", "abcde", 4); /* not a mark name */
}
END_TEST

START_TEST(inputrc_binds_vi_keys)
{
    setup_locale();
    bytewise = _i;
    vfx f;
    vfx_open(&f, NULL);
    /* bindings in vi-command reach vi functions, vi-insert ones too */
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "set keymap vi-command"), 0);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "\"z\": vi-delete"), 0);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "\"Q\": vi-change-case"), 0);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "set keymap vi-insert"), 0);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "\"jk\": vi-movement-mode"), 0);
    vfx_type(&f, "abcdjk0zQ");
    ck_assert_str_eq(vfx_buf(&f), "Bcd");
    ck_assert_uint_eq(kart_line_point(f.ed), 1);
    /* C-e in command mode goes to emacs mode, M-C-j back to vi */
    vfx_type(&f, "\x05");
    vfx_type(&f, "\x01X");
    ck_assert_str_eq(vfx_buf(&f), "XBcd");
    vfx_type(&f, "\033\x0a");
    vfx_type(&f, "Y");
    ck_assert_str_eq(vfx_buf(&f), "XYBcd");
    vfx_type(&f, "\033x");
    ck_assert_str_eq(vfx_buf(&f), "XBcd");
    kart_line_free(f.ed);

    /* an inputrc file that turns vi on */
    char path[] = "/tmp/kart-vi-rcXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char rc[] = "set editing-mode vi\n$if mode=vi\nset keymap vi-command\n\"v\": vi-rubout\n"
                      "$endif\n";
    ck_assert_int_eq(write(fd, rc, sizeof(rc) - 1), (ssize_t)(sizeof(rc) - 1));
    close(fd);
    memset(&f, 0, sizeof(f));
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.write = count_bells;
    o.write_arg = &f;
    o.terminal = KART_LINE_TERMINAL_ON;
    o.inputrc = path;
    o.term = "xterm";
    ck_assert_int_eq(kart_line_create(&f.ed, -1, -1, &o), 0);
    ck_assert_int_eq(kart_line_start(f.ed, vfx_cb, &f), 0);
    vfx_type(&f, "abc\033v");
    ck_assert_str_eq(vfx_buf(&f), "ac");
    kart_line_free(f.ed);
    unlink(path);
}
END_TEST

/* ---- the blocking mode on a pseudo-terminal ---- */

typedef struct ptyrun {
    int m, s;
    kart_line *ed;
    pthread_t th;
    int result;
    char *line;
    size_t len;
} ptyrun;

static void pty_drain(ptyrun *p, int ms)
{
    for (;;) {
        struct pollfd pf = {.fd = p->m, .events = POLLIN};
        if (poll(&pf, 1, ms) <= 0)
            return;
        char buf[4096];
        if (read(p->m, buf, sizeof(buf)) <= 0)
            return;
    }
}

static void *pty_reader(void *arg)
{
    ptyrun *p = arg;
    p->result = kart_line_read(p->ed, &p->line, &p->len);
    return NULL;
}

START_TEST(pty_vi_line)
{
    setup_locale();
    ptyrun p;
    memset(&p, 0, sizeof(p));
    struct winsize ws = {24, 80, 0, 0};
    ck_assert_int_eq(openpty(&p.m, &p.s, NULL, NULL, &ws), 0);
    fcntl(p.m, F_SETFL, fcntl(p.m, F_GETFL) | O_NONBLOCK);
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.term = "xterm";
    o.prompt = "$ ";
    o.no_inputrc = true;
    ck_assert_int_eq(kart_line_create(&p.ed, p.s, p.s, &o), 0);
    ck_assert_int_eq(kart_line_parse_and_bind(p.ed, "set editing-mode vi"), 0);
    ck_assert_int_eq(pthread_create(&p.th, NULL, pty_reader, &p), 0);
    pty_drain(&p, 100);
    /* a lone ESC resolves after keyseq-timeout (500 ms) */
    const char *keys[] = {"hello world", "\033", "bcwthere", "\0330", "x", "\r"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        ck_assert_int_eq(write(p.m, keys[i], strlen(keys[i])), (ssize_t)strlen(keys[i]));
        pty_drain(&p, i == 1 ? 700 : 50);
    }
    for (int i = 0; i < 200; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 25 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pty_drain(&p, 1);
        if (pthread_timedjoin_np(p.th, NULL, &ts) == 0)
            break;
        ck_assert_msg(i < 199, "kart_line_read did not return");
    }
    ck_assert_int_eq(p.result, 0);
    ck_assert_str_eq(p.line, "ello there");
    free(p.line);
    kart_line_free(p.ed);
    close(p.m);
    close(p.s);
}
END_TEST

Suite *line_vi_suite(void);
Suite *line_vi_suite(void)
{
    Suite *s = suite_create("line_vi");
    TCase *tc = tcase_create("vi");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, insert_and_escape, 0, 2);
    tcase_add_loop_test(tc, char_and_line_motions, 0, 2);
    tcase_add_loop_test(tc, word_motions, 0, 2);
    tcase_add_loop_test(tc, char_search_motions, 0, 2);
    tcase_add_loop_test(tc, delete_operator, 0, 2);
    tcase_add_loop_test(tc, change_operator, 0, 2);
    tcase_add_loop_test(tc, yank_and_put, 0, 2);
    tcase_add_loop_test(tc, replace_and_case, 0, 2);
    tcase_add_loop_test(tc, counts_and_bad_input, 0, 2);
    tcase_add_loop_test(tc, undo_whole_inserts, 0, 2);
    tcase_add_loop_test(tc, dot_repeats, 0, 2);
    tcase_add_loop_test(tc, history_moves_and_searches, 0, 2);
    tcase_add_loop_test(tc, completion_and_friends, 0, 2);
    tcase_add_loop_test(tc, marks_and_columns, 0, 2);
    tcase_add_loop_test(tc, inputrc_binds_vi_keys, 0, 2);
    tcase_add_test(tc, pty_vi_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kt_run(line_vi_suite());
}

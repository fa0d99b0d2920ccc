/* Description: the line editor (kart/line.h). Editors are driven three
 * ways: fed (bytes handed to kart_line_feed, one at a time and in chunks,
 * the output rendered by a small terminal emulator written here, so that
 * the checks read the screen, not escape strings), blocking (kart_line_read
 * on the slave side of a pseudo-terminal, a thread reading it while the
 * test types on the master side), and on a kart_loop. Covered: the API and
 * its errors, editing (moves, deletes, the kill ring, transposes, case,
 * undo, numeric arguments, quoted insert, overwrite, macros), history
 * moves and searches, completion (listing, the query, the pager, file
 * names), bracketed paste, display (UTF-8, wide and combining characters,
 * wrapping, horizontal scrolling, prompts with escapes, print-above,
 * resizes), terminal restoration, signals, and bad input: invalid UTF-8,
 * truncated escape sequences, 1 MiB pasted at once, a 100,000-character
 * line, a one-column window, an output that says EAGAIN or EPIPE, input
 * that ends mid-line, an editor freed mid-line. The screen through a real
 * terminal emulator (tmux) is tests/check_line_tmux.c's. */
#include "testutil.h"

#include <kart/history.h>
#include <kart/line.h>

#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <wchar.h>

/* ---- a small terminal emulator: what the screen shows ---- */

#define VT_MAXR 64
#define VT_MAXC 256

typedef struct vt {
    int rows, cols;
    char cell[VT_MAXR][VT_MAXC][16]; /* UTF-8 of each cell; "" after a wide one */
    int x, y;
    bool wrap_pending;
    int scrolled;
    int bells;
    int paste_on; /* bracketed paste: 1 on, 0 off, -1 never said */
    unsigned char esc[64];
    size_t nesc;
    unsigned char u8[4];
    size_t nu8, need;
} vt;

static void vt_init(vt *t, int cols, int rows)
{
    memset(t, 0, sizeof(*t));
    t->cols = cols;
    t->rows = rows;
    t->paste_on = -1;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            strcpy(t->cell[r][c], " ");
}

static void vt_clear_row(vt *t, int r, int from)
{
    for (int c = from; c < t->cols; c++)
        strcpy(t->cell[r][c], " ");
}

static void vt_newline(vt *t)
{
    if (t->y + 1 < t->rows) {
        t->y++;
        return;
    }
    memmove(t->cell[0], t->cell[1], sizeof(t->cell[0]) * (size_t)(t->rows - 1));
    vt_clear_row(t, t->rows - 1, 0);
    t->scrolled++;
}

static void vt_put(vt *t, const char *s, size_t n, int w)
{
    if (w == 0) {
        int x = t->wrap_pending ? t->x : t->x - 1;
        if (x < 0)
            x = 0;
        if (t->cell[t->y][x][0] == '\0' && x > 0)
            x--;
        size_t l = strlen(t->cell[t->y][x]);
        if (l + n < 16)
            memcpy(t->cell[t->y][x] + l, s, n), t->cell[t->y][x][l + n] = '\0';
        return;
    }
    if (t->wrap_pending) {
        t->x = 0;
        vt_newline(t);
        t->wrap_pending = false;
    }
    if (t->x + w > t->cols) {
        if (w > t->cols)
            w = t->cols;
        else {
            for (int c = t->x; c < t->cols; c++)
                strcpy(t->cell[t->y][c], " ");
            t->x = 0;
            vt_newline(t);
        }
    }
    memcpy(t->cell[t->y][t->x], s, n);
    t->cell[t->y][t->x][n] = '\0';
    if (w == 2 && t->x + 1 < t->cols)
        t->cell[t->y][t->x + 1][0] = '\0';
    t->x += w;
    if (t->x >= t->cols) {
        t->x = t->cols - 1;
        t->wrap_pending = true;
    }
}

static int vt_num(const unsigned char *p, size_t n, int idx, int dflt)
{
    int k = 0, v = -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ';') {
            if (k == idx)
                return v < 0 ? dflt : v;
            k++;
            v = -1;
        } else if (p[i] >= '0' && p[i] <= '9') {
            v = (v < 0 ? 0 : v) * 10 + (p[i] - '0');
        }
    }
    return k == idx && v >= 0 ? v : dflt;
}

static void vt_csi(vt *t, const unsigned char *p, size_t n, unsigned char final)
{
    int a = vt_num(p, n, 0, 1);
    bool priv = n > 0 && p[0] == '?';
    switch (final) {
    case 'A':
        t->y = t->y - a < 0 ? 0 : t->y - a;
        t->wrap_pending = false;
        break;
    case 'B':
        t->y = t->y + a >= t->rows ? t->rows - 1 : t->y + a;
        t->wrap_pending = false;
        break;
    case 'C':
        t->x = t->x + a >= t->cols ? t->cols - 1 : t->x + a;
        t->wrap_pending = false;
        break;
    case 'D':
        t->x = t->x - a < 0 ? 0 : t->x - a;
        t->wrap_pending = false;
        break;
    case 'K':
        vt_clear_row(t, t->y, vt_num(p, n, 0, 0) == 0 ? t->x : 0);
        break;
    case 'J':
        if (vt_num(p, n, 0, 0) == 0) {
            vt_clear_row(t, t->y, t->x);
            for (int r = t->y + 1; r < t->rows; r++)
                vt_clear_row(t, r, 0);
        } else {
            for (int r = 0; r < t->rows; r++)
                vt_clear_row(t, r, 0);
        }
        break;
    case 'H':
        t->y = vt_num(p, n, 0, 1) - 1;
        t->x = vt_num(p, n, 1, 1) - 1;
        t->wrap_pending = false;
        break;
    case 'h':
    case 'l':
        if (priv && vt_num(p + 1, n - 1, 0, 0) == 2004)
            t->paste_on = final == 'h';
        break;
    default:
        break;
    }
}

static void vt_feed(vt *t, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (t->nesc) {
            t->esc[t->nesc++] = c;
            if (t->nesc == 2 && c != '[' && c != ']') {
                t->nesc = 0;
            } else if (t->esc[1] == '[' && t->nesc > 2 && c >= 0x40 && c <= 0x7e) {
                vt_csi(t, t->esc + 2, t->nesc - 3, c);
                t->nesc = 0;
            } else if (t->esc[1] == ']' && (c == '\a' || t->nesc >= sizeof(t->esc))) {
                t->nesc = 0;
            } else if (t->nesc >= sizeof(t->esc)) {
                t->nesc = 0;
            }
            continue;
        }
        if (t->need) {
            t->u8[t->nu8++] = c;
            if (t->nu8 == t->need) {
                wchar_t wc;
                mbstate_t st;
                memset(&st, 0, sizeof(st));
                int w = 1;
                if (mbrtowc(&wc, (char *)t->u8, t->nu8, &st) == t->nu8)
                    w = wcwidth(wc);
                vt_put(t, (char *)t->u8, t->nu8, w < 0 ? 1 : w);
                t->need = 0;
            }
            continue;
        }
        if (c == 0x1b) {
            t->esc[0] = c;
            t->nesc = 1;
        } else if (c == '\r') {
            t->x = 0;
            t->wrap_pending = false;
        } else if (c == '\n') {
            vt_newline(t);
            t->wrap_pending = false;
        } else if (c == '\b') {
            if (t->x > 0)
                t->x--;
            t->wrap_pending = false;
        } else if (c == '\a') {
            t->bells++;
        } else if (c >= 0xc2 && c <= 0xf4) {
            t->u8[0] = c;
            t->nu8 = 1;
            t->need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        } else if (c >= 0x20 && c < 0x7f) {
            vt_put(t, (char *)&c, 1, 1);
        }
    }
}

/* Row r as text, trailing blanks cut. */
static const char *vt_row(vt *t, int r)
{
    static char out[VT_MAXC * 16 + 1];
    size_t n = 0;
    for (int c = 0; c < t->cols; c++) {
        size_t l = strlen(t->cell[r][c]);
        memcpy(out + n, t->cell[r][c], l);
        n += l;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    return out;
}

/* ---- the fed fixture: an editor writing into the emulator ---- */

typedef struct fx {
    kart_line *ed;
    vt t;
    char *raw; /* everything written */
    size_t nraw, capraw;
    size_t writes;
    char line[8][1 << 12];
    size_t len[8];
    int result[8];
    int n;
    int fail_write; /* write callback's error, when set */
} fx;

static int fx_write(void *arg, const void *data, size_t len)
{
    fx *f = arg;
    if (f->fail_write)
        return f->fail_write;
    f->writes++;
    vt_feed(&f->t, data, len);
    if (f->nraw + len + 1 > f->capraw) {
        size_t cap = f->capraw ? f->capraw : 4096;
        while (cap < f->nraw + len + 1)
            cap *= 2;
        f->raw = realloc(f->raw, cap);
        f->capraw = cap;
    }
    memcpy(f->raw + f->nraw, data, len);
    f->nraw += len;
    f->raw[f->nraw] = '\0';
    return 0;
}

static void fx_cb(kart_line *ed, int result, const char *line, size_t len, void *arg)
{
    fx *f = arg;
    (void)ed;
    if (f->n < 8) {
        f->result[f->n] = result;
        f->len[f->n] = len;
        if (line) {
            size_t l = len < sizeof(f->line[0]) - 1 ? len : sizeof(f->line[0]) - 1;
            memcpy(f->line[f->n], line, l);
            f->line[f->n][l] = '\0';
        } else {
            f->line[f->n][0] = '\0';
        }
    }
    f->n++;
}

static void fx_open_opts(fx *f, kart_line_options *o, int cols, int rows)
{
    memset(f, 0, sizeof(*f));
    vt_init(&f->t, cols, rows);
    o->write = fx_write;
    o->write_arg = f;
    o->terminal = KART_LINE_TERMINAL_ON;
    o->no_inputrc = true;
    if (!o->term)
        o->term = "xterm";
    if (!o->prompt)
        o->prompt = "> ";
    ck_assert_int_eq(kart_line_create(&f->ed, -1, -1, o), 0);
    ck_assert_int_eq(kart_line_set_size(f->ed, (unsigned)cols, (unsigned)rows), 0);
    ck_assert_int_eq(kart_line_start(f->ed, fx_cb, f), 0);
}

static void fx_open(fx *f, const char *prompt, int cols, int rows, kart_history *h)
{
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.prompt = prompt;
    o.history = h;
    fx_open_opts(f, &o, cols, rows);
}

static void fx_close(fx *f)
{
    kart_line_free(f->ed);
    free(f->raw);
}

static bool bytewise;

/* Types n bytes of s (whole, or a byte at a time when bytewise is set). */
static void fx_typen(fx *f, const char *s, size_t n)
{
    if (!bytewise) {
        ck_assert_int_eq(kart_line_feed(f->ed, s, n), 0);
        return;
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(kart_line_feed(f->ed, s + i, 1), 0);
}

static void fx_type(fx *f, const char *s)
{
    fx_typen(f, s, strlen(s));
}

static const char *fx_buf(fx *f)
{
    return kart_line_buffer(f->ed, NULL);
}

#define ROW(f, r) vt_row(&(f)->t, (r))

/* The cursor is at column x of row y. */
#define CURSOR(f, cx, cy)                                                                          \
    do {                                                                                           \
        ck_assert_int_eq((f)->t.y, (cy));                                                          \
        ck_assert_int_eq((f)->t.wrap_pending ? (f)->t.x + 1 : (f)->t.x, (cx));                     \
    } while (0)

static void setup_locale(void)
{
    setlocale(LC_CTYPE, "C.UTF-8");
}

/* ---- API ---- */

START_TEST(create_rejects_bad_arguments)
{
    kart_line *ed = NULL;
    ck_assert_int_eq(kart_line_create(NULL, 0, 1, NULL), -EINVAL);
    ck_assert_int_eq(kart_line_create(&ed, -2, 1, NULL), -EINVAL);
    ck_assert_int_eq(kart_line_create(&ed, 0, -1, NULL), -EINVAL);
    ck_assert_ptr_null(ed);
    kart_line_free(NULL);
    ck_assert_int_eq(kart_line_feed(NULL, "a", 1), -EINVAL);
    ck_assert_int_eq(kart_line_start(NULL, NULL, NULL), -EINVAL);
    int p[2];
    kt_pipe(p);
    ck_assert_int_eq(kart_line_create(&ed, p[0], p[1], NULL), 0);
    /* not started */
    ck_assert_int_eq(kart_line_feed(ed, "a", 1), -EINVAL);
    ck_assert_int_eq(kart_line_feed_eof(ed), -EINVAL);
    ck_assert_int_eq(kart_line_set_size(ed, 0, 5), -EINVAL);
    ck_assert_int_eq(kart_line_set_size(ed, 10, 5), 0);
    unsigned c, r;
    kart_line_get_size(ed, &c, &r);
    ck_assert_uint_eq(c, 10);
    ck_assert_uint_eq(r, 5);
    size_t len;
    ck_assert_int_eq(kart_line_read(ed, NULL, &len), -EINVAL);
    ck_assert_int_eq(kart_line_start(ed, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_line_attach(ed, NULL, fx_cb, NULL), -EINVAL);
    kart_line_free(ed);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(fed_line_and_screen)
{
    setup_locale();
    bytewise = _i;
    fx f;
    fx_open(&f, "> ", 40, 10, NULL);
    ck_assert_str_eq(ROW(&f, 0), ">");
    CURSOR(&f, 2, 0);
    ck_assert_int_eq(f.t.paste_on, 1);
    fx_type(&f, "hello");
    ck_assert_str_eq(ROW(&f, 0), "> hello");
    CURSOR(&f, 7, 0);
    fx_type(&f, "\r");
    ck_assert_int_eq(f.n, 1);
    ck_assert_int_eq(f.result[0], 0);
    ck_assert_str_eq(f.line[0], "hello");
    ck_assert_uint_eq(f.len[0], 5);
    /* the next prompt on the next row */
    ck_assert_str_eq(ROW(&f, 1), ">");
    CURSOR(&f, 2, 1);
    fx_type(&f, "a\nb\r");
    ck_assert_int_eq(f.n, 3);
    ck_assert_str_eq(f.line[1], "a");
    ck_assert_str_eq(f.line[2], "b");
    fx_close(&f);
}
END_TEST


/* ---- editing ---- */

/* Types keys on a fresh editor and returns the buffer as it is then. */
static const char *edit_result(fx *f, const char *keys, size_t n)
{
    fx_open(f, "> ", 60, 10, NULL);
    fx_typen(f, keys, n);
    return fx_buf(f);
}

#define EDIT(keys, want)                                                                           \
    do {                                                                                           \
        fx f_;                                                                                     \
        const char *got_ = edit_result(&f_, keys, sizeof(keys) - 1);                                                 \
        ck_assert_msg(strcmp(got_, want) == 0, "keys %s: got \"%s\", want \"%s\"", #keys, got_,   \
                      want);                                                                       \
        fx_close(&f_);                                                                             \
    } while (0)

START_TEST(moves_and_deletes)
{
    setup_locale();
    bytewise = _i;
    EDIT("abc\x01X", "Xabc");                  /* C-a */
    EDIT("abc\x01\x05Y", "abcY");              /* C-e */
    EDIT("abc\x02\x02Z", "aZbc");              /* C-b */
    EDIT("abc\x01\x06Z", "aZbc");              /* C-f */
    EDIT("abc\x01\x04", "bc");                 /* C-d */
    EDIT("abc\x7f", "ab");                     /* DEL */
    EDIT("abc\x08", "ab");                     /* C-h */
    EDIT("one two three\033b\033bX", "one Xtwo three"); /* M-b */
    EDIT("one two three\x01\033fX", "oneX two three");  /* M-f */
    EDIT("abc\033[D\033[DZ", "aZbc");          /* Left arrow */
    EDIT("abc\033[H\033[CZ", "aZbc");          /* Home, Right */
    EDIT("abc\033[H\033[3~", "bc");            /* Delete key */
    EDIT("abc\033OH\033[FZ", "abcZ");          /* SS3 Home, End */
    EDIT("a b  c\033[D\033[D\033\\", "a bc");   /* M-\ delete-horizontal-space */
    EDIT("zqx\tc", "zqxc"); /* Tab: no file name starts so: the bell */
}
END_TEST

START_TEST(kill_and_yank)
{
    setup_locale();
    bytewise = _i;
    EDIT("hello world\x01\x06\x06\x0b", "he");                /* C-k */
    EDIT("hello world\x02\x02\x15", "ld");                     /* C-u */
    EDIT("hello big world\x17", "hello big ");                 /* C-w */
    EDIT("hello big world\x17\x17\x19", "hello big world");    /* consecutive kills append */
    EDIT("a b c\x17\x17\x01\x19", "b ca ");                    /* C-y at start */
    EDIT("one two\x01\033d", " two");                          /* M-d */
    EDIT("one two\033\x7f", "one ");                           /* M-DEL */
    EDIT("one two\033\x08", "one ");                           /* M-C-h */
    /* M-y rotates: kill "two", kill "one" (not consecutive), yank, M-y */
    EDIT("one two\x17\x02\x02x\x01\x0b\x19\033y", "two");
    EDIT("one two\x17\x02\x02x\x01\x0b\x19", "onxe ");
    EDIT("abc\x01\x06\x00\x05\x17", "");                       /* C-w kills the word, not the region */
    EDIT("path/to/file\033\x7f", "path/to/");
    EDIT("x\x19", "x");                                         /* nothing to yank: bell */
}
END_TEST

START_TEST(transpose_case_undo)
{
    setup_locale();
    bytewise = _i;
    EDIT("abc\x14", "acb");                      /* C-t at the end */
    EDIT("abc\x02\x14", "acb"); /* C-t in the middle */
    EDIT("abcd\x01\x06\x14", "bacd");
    EDIT("one two\033t", "two one");             /* M-t */
    EDIT("one two\x01\033u", "ONE two");         /* M-u */
    EDIT("ONE TWO\x01\033l", "one TWO");         /* M-l */
    EDIT("one two\x01\033c\033c", "One Two");    /* M-c */
    EDIT("éa\x01\033u", "ÉA");                   /* Latin-1 upper */
    EDIT("hello\x1f", "");                       /* C-_ undoes the typing */
    EDIT("hello\x01\x0b\x1f", "hello");          /* undo a kill */
    EDIT("one two\033t\x1f", "one two");         /* transpose is one undo */
    EDIT("ab\x01x\x18\x15", "ab");               /* C-x C-u */
    EDIT("ab\x01x\033\x12", "");                  /* M-C-r: revert-line */
    EDIT("中文\x14", "文中");                     /* wide characters swap whole */
}
END_TEST

START_TEST(numeric_arguments)
{
    setup_locale();
    bytewise = _i;
    EDIT("\0333x", "xxx");
    EDIT("\0331\0332x", "xxxxxxxxxxxx");
    /* universal-argument, which GNU's emacs map leaves unbound */
    static const char *const ua[][2] = {
        {"\x15x", "xxxx"}, {"\x15\x15x", "xxxxxxxxxxxxxxxx"}, {"\x15" "3x", "xxx"},
        {"\x15" "12\x15" "5", "555555555555"}, {"\x15-x", ""}, {"ab\x02\x15-\x7f", "a"}};
    for (size_t i = 0; i < sizeof(ua) / sizeof(ua[0]); i++) {
        fx f;
        fx_open(&f, "> ", 60, 10, NULL);
        ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "\"\\C-u\": universal-argument"), 0);
        fx_type(&f, ua[i][0]);
        ck_assert_msg(strcmp(fx_buf(&f), ua[i][1]) == 0, "%zu: got %s", i, fx_buf(&f));
        fx_close(&f);
    }
    EDIT("abcdef\0332\x02X", "abcdXef");
    EDIT("abcdef\033-\0332\x06X", "abcdXef");      /* M-- M-2 C-f: backward */
    EDIT("a b c d\033-\x0b", "");                   /* M-- C-k: backward */
    EDIT("one two three\0332\033\x7f", "one ");
    EDIT("abc\0332\x7f", "a");                     /* explicit: killed */
    EDIT("abc\0332\x7f\x19", "abc");
}
END_TEST

START_TEST(quoted_insert_overwrite_mark)
{
    setup_locale();
    bytewise = _i;
    EDIT("a\x16\x01" "b", "a\x01" "b");            /* C-v C-a */
    EDIT("\x16\033[A", "\033[A");                 /* C-v ESC, then [A inserted */
    EDIT("\0333\x16x", "xxx");
    EDIT("abc\x01\033[2~XY", "XYc");              /* Insert: overwrite mode */
    EDIT("abc\x01\x18\x18", "abc");               /* C-x C-x without a mark: bell */
    EDIT("abcdef\x01\x00\x06\x06\x06\x18\x18X", "Xabcdef");
    EDIT("abcdef\x01\x06\x00\x05\x18\x18X", "aXbcdef");
    EDIT("hello world\x1dwX", "hello worldX");    /* C-] w: none after the end */
    EDIT("hello world\x01\x1dwX", "hello Xworld"); /* C-] w */
    EDIT("hello world\033\x1dhX", "Xhello world"); /* M-C-] h */
    EDIT("abc\033#", "");                          /* M-#: commented and accepted */
}
END_TEST

START_TEST(macros_and_bindings)
{
    setup_locale();
    bytewise = _i;
    EDIT("\x18(ab\x18)\x18" "e\x18" "e", "ababab");
    fx f;
    fx_open(&f, "> ", 60, 10, NULL);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "\"\\C-xq\": \"macro text\""), 0);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "Control-o: kill-whole-line"), 0);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "set bell-style none"), 0);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "no-such-function-here: x y"), -EINVAL);
    char v[32];
    ck_assert_int_eq(kart_line_variable(f.ed, "bell-style", v, sizeof(v)), 4);
    ck_assert_str_eq(v, "none");
    ck_assert_int_eq(kart_line_variable(f.ed, "no-such-variable", v, sizeof(v)), -ENOENT);
    ck_assert_int_eq(kart_line_variable(f.ed, "bell-style", v, 2), -ENOBUFS);
    fx_type(&f, "\x18q!");
    ck_assert_str_eq(fx_buf(&f), "macro text!");
    fx_type(&f, "\x0f");
    ck_assert_str_eq(fx_buf(&f), "");
    fx_type(&f, "\x02");
    ck_assert_int_eq(f.t.bells, 0);
    fx_close(&f);
}
END_TEST

/* ---- history ---- */

static kart_history *hist_of(const char *const *lines)
{
    kart_history *h;
    ck_assert_int_eq(kart_history_create(&h, NULL), 0);
    for (; *lines; lines++)
        ck_assert_int_ge(kart_history_add(h, *lines, strlen(*lines)), 0);
    return h;
}

static const char *hist_at(kart_history *h, size_t i)
{
    const char *t = kart_history_text(h, i, NULL);
    return t ? t : "(none)";
}

START_TEST(history_moves_keep_edits)
{
    setup_locale();
    bytewise = _i;
    static const char *const lines[] = {"one", "two", "three", NULL};
    kart_history *h = hist_of(lines);
    fx f;
    fx_open(&f, "> ", 40, 10, h);
    fx_type(&f, "new");
    fx_type(&f, "\x10");
    ck_assert_str_eq(fx_buf(&f), "three");
    ck_assert_str_eq(ROW(&f, 0), "> three");
    CURSOR(&f, 7, 0);
    fx_type(&f, "\x10X");
    ck_assert_str_eq(fx_buf(&f), "twoX");
    fx_type(&f, "\x0e");
    ck_assert_str_eq(fx_buf(&f), "three");
    fx_type(&f, "\033[A");
    ck_assert_str_eq(fx_buf(&f), "twoX"); /* the edit is kept */
    fx_type(&f, "\033<");
    ck_assert_str_eq(fx_buf(&f), "one");
    fx_type(&f, "\x10");
    ck_assert_str_eq(fx_buf(&f), "one"); /* at the oldest: bell */
    ck_assert_int_ge(f.t.bells, 1);
    fx_type(&f, "\033>");
    ck_assert_str_eq(fx_buf(&f), "new");
    fx_type(&f, "\033[B");
    ck_assert_str_eq(fx_buf(&f), "new");
    /* undo works per line: the history line's own edits */
    fx_type(&f, "\x10\x10\x1f");
    ck_assert_str_eq(fx_buf(&f), "two");
    fx_type(&f, "Y\x0e" "Z\x10");
    ck_assert_str_eq(fx_buf(&f), "twoY");
    /* accept the edited "two": it is handed out, its entry goes back;
     * the other edited line ("threeZ") stays edited, as GNU does */
    fx_type(&f, "\r");
    ck_assert_int_eq(f.n, 1);
    ck_assert_str_eq(f.line[0], "twoY");
    ck_assert_str_eq(hist_at(h, 1), "two");
    ck_assert_str_eq(hist_at(h, 2), "threeZ");
    ck_assert_str_eq(fx_buf(&f), "");
    fx_close(&f);
    kart_history_free(h);
}
END_TEST

START_TEST(history_revert_all_at_newline)
{
    setup_locale();
    static const char *const lines[] = {"one", "two", NULL};
    kart_history *h = hist_of(lines);
    fx f;
    fx_open(&f, "> ", 40, 10, h);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "set revert-all-at-newline on"), 0);
    fx_type(&f, "\x10X\x10Y\x0e\x0e\r");
    ck_assert_str_eq(f.line[0], "");
    ck_assert_str_eq(hist_at(h, 0), "one");
    ck_assert_str_eq(hist_at(h, 1), "two");
    fx_close(&f);
    kart_history_free(h);
}
END_TEST

START_TEST(incremental_search)
{
    setup_locale();
    bytewise = _i;
    static const char *const lines[] = {"apple pie", "banana split", "cherry apple", NULL};
    kart_history *h = hist_of(lines);
    fx f;
    fx_open(&f, "> ", 60, 10, h);
    fx_type(&f, "typed");
    fx_type(&f, "\x12" "app");
    ck_assert_str_eq(fx_buf(&f), "cherry apple");
    ck_assert_uint_eq(kart_line_point(f.ed), 7);
    ck_assert_str_eq(ROW(&f, 0), "(reverse-i-search)`app': cherry apple");
    CURSOR(&f, 25 + 7, 0);
    fx_type(&f, "\x12");
    ck_assert_str_eq(fx_buf(&f), "apple pie");
    ck_assert_uint_eq(kart_line_point(f.ed), 0);
    int bells = f.t.bells;
    fx_type(&f, "\x12");
    ck_assert_int_gt(f.t.bells, bells);
    ck_assert_str_eq(ROW(&f, 0), "(failed reverse-i-search)`app': apple pie");
    /* DEL goes back a step; C-g puts the line back */
    fx_type(&f, "\x7f");
    ck_assert_str_eq(ROW(&f, 0), "(reverse-i-search)`ap': cherry apple");
    fx_type(&f, "\x07");
    ck_assert_str_eq(fx_buf(&f), "typed");
    ck_assert_str_eq(ROW(&f, 0), "> typed");
    CURSOR(&f, 7, 0);
    /* ESC ends it and keeps the line; the next key edits it */
    fx_type(&f, "\x12" "ban\033");
    ck_assert_int_eq(kart_line_tick(f.ed), 0);
    ck_assert_int_ge(kart_line_timeout(f.ed), 0);
    struct timespec ts = {0, 600 * 1000000};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(kart_line_tick(f.ed), 0);
    fx_type(&f, "!");
    ck_assert_str_eq(fx_buf(&f), "!banana split");
    ck_assert_str_eq(ROW(&f, 0), "> !banana split");
    /* a bound key ends the search and runs */
    fx_type(&f, "\033>\x12" "cherry\x05X");
    ck_assert_str_eq(fx_buf(&f), "cherry appleX");
    /* RET accepts */
    fx_type(&f, "\x12" "pie\r");
    ck_assert_int_eq(f.n, 1);
    ck_assert_str_eq(f.line[0], "apple pie");
    /* forward search, and an empty C-r reuses the last string */
    /* (the edited "!banana split" stayed edited in the history, as GNU
     * leaves it) */
    fx_type(&f, "\033<\x13" "ban\x0a");
    ck_assert_str_eq(fx_buf(&f), "!banana split");
    fx_type(&f, "\033>\x12\x12");
    ck_assert_str_eq(fx_buf(&f), "!banana split");
    fx_type(&f, "\x07");
    fx_close(&f);
    kart_history_free(h);
}
END_TEST

START_TEST(other_history_commands)
{
    setup_locale();
    bytewise = _i;
    static const char *const lines[] = {"ls alpha beta", "cat gamma", "make all", NULL};
    kart_history *h = hist_of(lines);
    fx f;
    fx_open(&f, "> ", 60, 10, h);
    /* M-p: non-incremental search */
    fx_type(&f, "\033p");
    ck_assert_str_eq(ROW(&f, 0), ":");
    fx_type(&f, "gam\r");
    ck_assert_str_eq(fx_buf(&f), "cat gamma");
    ck_assert_int_eq(f.n, 0);
    fx_type(&f, "\033>");
    /* M-. and M-. again: last words of older lines */
    fx_type(&f, "x \033.");
    ck_assert_str_eq(fx_buf(&f), "x all");
    fx_type(&f, "\033.");
    ck_assert_str_eq(fx_buf(&f), "x gamma");
    fx_type(&f, "\033.");
    ck_assert_str_eq(fx_buf(&f), "x beta");
    fx_type(&f, "\x15\0332\033\x19");
    ck_assert_str_eq(fx_buf(&f), "all" + 3); /* word 2 of "make all": none */
    fx_type(&f, "\x15");
    /* M-C-y: the first argument of the previous line */
    fx_type(&f, "\033\x19");
    ck_assert_str_eq(fx_buf(&f), "all");
    fx_type(&f, "\x15");
    /* history-search-backward: the prefix before the cursor */
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "\"\\C-xp\": history-search-backward"), 0);
    fx_type(&f, "ca\x18p");
    ck_assert_str_eq(fx_buf(&f), "cat gamma");
    ck_assert_uint_eq(kart_line_point(f.ed), 2);
    fx_close(&f);
    /* operate-and-get-next: the line after comes next */
    fx_open(&f, "> ", 60, 10, h);
    fx_type(&f, "\x10\x10\x0f");
    ck_assert_int_eq(f.n, 1);
    ck_assert_str_eq(f.line[0], "cat gamma");
    ck_assert_str_eq(fx_buf(&f), "make all");
    ck_assert_str_eq(ROW(&f, 1), "> make all");
    fx_close(&f);
    kart_history_free(h);
}
END_TEST

/* ---- completion ---- */

typedef struct comp_rec {
    const char *const *words;
    char text[64];
    size_t begin, end;
    int calls;
    int display_calls;
    size_t display_count;
    char substitution[64];
} comp_rec;

static void comp_words(kart_line *ed, const char *text, size_t begin, size_t end, void *arg)
{
    comp_rec *r = arg;
    snprintf(r->text, sizeof(r->text), "%s", text);
    r->begin = begin;
    r->end = end;
    r->calls++;
    size_t n = strlen(text);
    for (const char *const *w = r->words; *w; w++)
        if (strncmp(*w, text, n) == 0)
            ck_assert_int_eq(kart_line_add_completion(ed, *w, strlen(*w)), 0);
}

static void comp_display(kart_line *ed, const char *sub, const char *const *m, size_t n,
                         size_t longest, void *arg)
{
    comp_rec *r = arg;
    (void)ed;
    (void)m;
    (void)longest;
    r->display_calls++;
    r->display_count = n;
    snprintf(r->substitution, sizeof(r->substitution), "%s", sub);
}

static void fx_comp(fx *f, comp_rec *r, int cols, int rows)
{
    fx_open(f, "> ", cols, rows, NULL);
    kart_line_hooks hk;
    memset(&hk, 0, sizeof(hk));
    hk.complete = comp_words;
    hk.arg = r;
    kart_line_set_hooks(f->ed, &hk, NULL);
}

START_TEST(completion_basics)
{
    setup_locale();
    bytewise = _i;
    static const char *const words[] = {"apple", "apricot", "banana", "cherry", NULL};
    comp_rec r = {.words = words};
    fx f;
    fx_comp(&f, &r, 40, 10);
    ck_assert_int_eq(kart_line_add_completion(f.ed, "x", 1), -EINVAL); /* not in the hook */
    fx_type(&f, "eat b\t");
    ck_assert_str_eq(fx_buf(&f), "eat banana ");
    ck_assert_str_eq(r.text, "b");
    ck_assert_uint_eq(r.begin, 4);
    ck_assert_uint_eq(r.end, 5);
    size_t b, e;
    kart_line_completion_range(f.ed, &b, &e);
    ck_assert_uint_eq(b, 4);
    ck_assert_uint_eq(e, 5);
    /* common prefix, then a list on the second Tab */
    fx_type(&f, "a\t");
    ck_assert_str_eq(fx_buf(&f), "eat banana ap");
    int bells = f.t.bells;
    fx_type(&f, "\t");
    ck_assert_int_gt(f.t.bells, bells);
    ck_assert_str_eq(ROW(&f, 0), "> eat banana ap");
    fx_type(&f, "\t");
    ck_assert_str_eq(ROW(&f, 1), "apple    apricot");
    ck_assert_str_eq(ROW(&f, 2), "> eat banana ap");
    CURSOR(&f, 15, 2);
    fx_type(&f, "r\t");
    ck_assert_str_eq(fx_buf(&f), "eat banana apricot ");
    /* no candidates: the bell, nothing changes */
    bells = f.t.bells;
    fx_type(&f, "zz\t");
    ck_assert_str_eq(fx_buf(&f), "eat banana apricot zz");
    ck_assert_int_gt(f.t.bells, bells);
    /* Python's readline: no append character */
    kart_line_set_completion_append(f.ed, 0);
    fx_type(&f, "\x17" "ch\t");
    ck_assert_str_eq(fx_buf(&f), "eat banana apricot cherry");
    /* delimiters */
    ck_assert_int_eq(kart_line_set_completer_delims(f.ed, " "), 0);
    ck_assert_str_eq(kart_line_completer_delims(f.ed), " ");
    fx_type(&f, " x=ch\t");
    ck_assert_str_eq(r.text, "x=ch");
    /* M-* inserts them all; M-= lists */
    fx_type(&f, "\x15" "a\033*");
    ck_assert_str_eq(fx_buf(&f), "apple apricot ");
    fx_close(&f);
}
END_TEST

START_TEST(completion_query_and_pager)
{
    setup_locale();
    static char names[150][8];
    static const char *words[151];
    for (int i = 0; i < 150; i++) {
        snprintf(names[i], sizeof(names[i]), "w%03d", i);
        words[i] = names[i];
    }
    words[150] = NULL;
    comp_rec r = {.words = words};
    fx f;
    fx_comp(&f, &r, 40, 10);
    fx_type(&f, "w\t\t");
    ck_assert_str_eq(fx_buf(&f), "w");
    ck_assert_str_eq(ROW(&f, 1), "Display all 150 possibilities? (y or n)");
    fx_type(&f, "n");
    ck_assert_str_eq(fx_buf(&f), "w");
    ck_assert_str_eq(ROW(&f, 2), "> w");
    fx_type(&f, "\t\t");
    fx_type(&f, "y");
    /* 6 columns of "w000  ", 25 rows: a page is 9 rows, then --More-- */
    ck_assert_str_eq(ROW(&f, 9), "--More--");
    ck_assert_str_eq(ROW(&f, 0), "w000  w025  w050  w075  w100  w125");
    fx_type(&f, " ");
    ck_assert_str_eq(ROW(&f, 9), "--More--");
    fx_type(&f, "q");
    ck_assert_str_eq(ROW(&f, 9), "> w");
    CURSOR(&f, 3, 9);
    fx_type(&f, "0\r");
    ck_assert_str_eq(f.line[0], "w0");
    fx_close(&f);
}
END_TEST

START_TEST(completion_hooks_and_menu)
{
    setup_locale();
    static const char *const words[] = {"apple", "apricot", NULL};
    comp_rec r = {.words = words};
    fx f;
    fx_open(&f, "> ", 40, 10, NULL);
    kart_line_hooks hk, prev;
    memset(&hk, 0, sizeof(hk));
    hk.complete = comp_words;
    hk.display_matches = comp_display;
    hk.arg = &r;
    kart_line_set_hooks(f.ed, &hk, &prev);
    ck_assert_ptr_null(prev.complete);
    fx_type(&f, "a\t\t"); /* the second Tab changes nothing: the bell */
    ck_assert_int_eq(r.display_calls, 0);
    fx_type(&f, "\t");
    ck_assert_int_eq(r.display_calls, 1);
    ck_assert_uint_eq(r.display_count, 2);
    ck_assert_str_eq(r.substitution, "ap");
    ck_assert_str_eq(fx_buf(&f), "ap");
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "\"\\C-xm\": menu-complete"), 0);
    fx_type(&f, "\x18m");
    ck_assert_str_eq(fx_buf(&f), "apple");
    fx_type(&f, "\x18m");
    ck_assert_str_eq(fx_buf(&f), "apricot");
    fx_type(&f, "\x18m");
    ck_assert_str_eq(fx_buf(&f), "ap");
    fx_type(&f, "\x18m");
    ck_assert_str_eq(fx_buf(&f), "apple");
    fx_close(&f);
}
END_TEST

START_TEST(completion_filenames)
{
    setup_locale();
    char dir[] = "/tmp/kart-line-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof(p), "%s/alpha.txt", dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof(p), "%s/alpine", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/.hidden", dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    fx f;
    fx_open(&f, "> ", 60, 10, NULL);
    char keys[300];
    snprintf(keys, sizeof(keys), "cat %s/al\t", dir);
    fx_type(&f, keys);
    snprintf(p, sizeof(p), "cat %s/alp", dir);
    ck_assert_str_eq(fx_buf(&f), p);
    fx_type(&f, "\t\t");
    ck_assert_str_eq(ROW(&f, 1), "alpha.txt  alpine/");
    fx_type(&f, "i\t");
    snprintf(p, sizeof(p), "cat %s/alpine/", dir);
    ck_assert_str_eq(fx_buf(&f), p); /* a directory: '/' and no space */
    fx_type(&f, "\x15");
    snprintf(keys, sizeof(keys), "%s/.h\t", dir);
    fx_type(&f, keys);
    snprintf(p, sizeof(p), "%s/.hidden ", dir);
    ck_assert_str_eq(fx_buf(&f), p);
    fx_close(&f);
    snprintf(p, sizeof(p), "rm -rf %s", dir);
    ck_assert_int_eq(system(p), 0);
}
END_TEST

/* ---- paste, interrupt, end of input ---- */

START_TEST(bracketed_paste)
{
    setup_locale();
    bytewise = _i;
    fx f;
    fx_open(&f, "> ", 40, 10, NULL);
    fx_type(&f, "\033[200~hello\nworld\033[201~");
    ck_assert_int_eq(f.n, 0);
    ck_assert_str_eq(fx_buf(&f), "hello\nworld");
    ck_assert_str_eq(ROW(&f, 0), "> hello^Jworld");
    fx_type(&f, "\x1f");
    ck_assert_str_eq(fx_buf(&f), "");
    fx_type(&f, "\033[200~a\x03" "b\r\nc\033[201~");
    ck_assert_str_eq(fx_buf(&f), "a\x03" "b\nc");
    fx_type(&f, "\x15\033[200~ls -l\n\033[201~");
    ck_assert_int_eq(f.n, 1);
    ck_assert_str_eq(f.line[0], "ls -l");
    fx_close(&f);
    /* off: no \e[?2004h */
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    fx g;
    fx_open_opts(&g, &o, 40, 10);
    ck_assert_int_eq(kart_line_parse_and_bind(g.ed, "set enable-bracketed-paste off"), 0);
    fx_type(&g, "x\r");
    const char *off = strstr(g.raw, "\033[?2004l");
    ck_assert_ptr_nonnull(off);
    ck_assert_ptr_null(strstr(off, "\033[?2004h"));
    fx_close(&g);
}
END_TEST

START_TEST(interrupt_and_eof)
{
    setup_locale();
    bytewise = _i;
    fx f;
    fx_open(&f, "> ", 40, 10, NULL);
    fx_type(&f, "abc\x03");
    ck_assert_int_eq(f.n, 1);
    ck_assert_int_eq(f.result[0], -EINTR);
    ck_assert_str_eq(ROW(&f, 0), "> abc^C");
    ck_assert_str_eq(ROW(&f, 1), ">");
    CURSOR(&f, 2, 1);
    /* C-d deletes on a line with text, ends the input on an empty one */
    fx_type(&f, "ab\x01\x04");
    ck_assert_str_eq(fx_buf(&f), "b");
    fx_type(&f, "\x04\x04");
    ck_assert_int_eq(f.n, 1);
    fx_type(&f, "\x15\x04");
    ck_assert_int_eq(f.n, 2);
    ck_assert_int_eq(f.result[1], KART_EEOF);
    ck_assert_int_eq(kart_line_feed(f.ed, "x", 1), -EINVAL); /* stopped */
    ck_assert_int_eq(f.t.paste_on, 0);
    fx_close(&f);
    /* the end of input after some text: that text is a line, then EOF */
    fx g;
    fx_open(&g, "> ", 40, 10, NULL);
    fx_type(&g, "partial\033");
    ck_assert_int_eq(kart_line_feed_eof(g.ed), 0);
    ck_assert_int_eq(g.n, 2);
    ck_assert_int_eq(g.result[0], 0);
    ck_assert_str_eq(g.line[0], "partial");
    ck_assert_int_eq(g.result[1], KART_EEOF);
    fx_close(&g);
}
END_TEST

Suite *line_suite(void);
Suite *line_suite(void)
{
    Suite *s = suite_create("line");
    TCase *tc = tcase_create("api");
    tcase_add_test(tc, create_rejects_bad_arguments);
    tcase_add_loop_test(tc, fed_line_and_screen, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("edit");
    tcase_add_loop_test(tc, moves_and_deletes, 0, 2);
    tcase_add_loop_test(tc, kill_and_yank, 0, 2);
    tcase_add_loop_test(tc, transpose_case_undo, 0, 2);
    tcase_add_loop_test(tc, numeric_arguments, 0, 2);
    tcase_add_loop_test(tc, quoted_insert_overwrite_mark, 0, 2);
    tcase_add_loop_test(tc, macros_and_bindings, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("history");
    tcase_add_loop_test(tc, history_moves_keep_edits, 0, 2);
    tcase_add_test(tc, history_revert_all_at_newline);
    tcase_add_loop_test(tc, incremental_search, 0, 2);
    tcase_add_loop_test(tc, other_history_commands, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("complete");
    tcase_add_loop_test(tc, completion_basics, 0, 2);
    tcase_add_test(tc, completion_query_and_pager);
    tcase_add_test(tc, completion_hooks_and_menu);
    tcase_add_test(tc, completion_filenames);
    suite_add_tcase(s, tc);
    tc = tcase_create("input");
    tcase_add_loop_test(tc, bracketed_paste, 0, 2);
    tcase_add_loop_test(tc, interrupt_and_eof, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kt_run(line_suite());
}

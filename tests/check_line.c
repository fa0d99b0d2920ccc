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
    if (o->terminal == KART_LINE_TERMINAL_AUTO)
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
        const char *got_ = edit_result(&f_, keys, sizeof(keys) - 1);                               \
        ck_assert_msg(strcmp(got_, want) == 0, "keys %s: got \"%s\", want \"%s\"", #keys, got_,    \
                      want);                                                                       \
        fx_close(&f_);                                                                             \
    } while (0)

START_TEST(moves_and_deletes)
{
    setup_locale();
    bytewise = _i;
    EDIT("abc\x01X", "Xabc");                           /* C-a */
    EDIT("abc\x01\x05Y", "abcY");                       /* C-e */
    EDIT("abc\x02\x02Z", "aZbc");                       /* C-b */
    EDIT("abc\x01\x06Z", "aZbc");                       /* C-f */
    EDIT("abc\x01\x04", "bc");                          /* C-d */
    EDIT("abc\x7f", "ab");                              /* DEL */
    EDIT("abc\x08", "ab");                              /* C-h */
    EDIT("one two three\033b\033bX", "one Xtwo three"); /* M-b */
    EDIT("one two three\x01\033fX", "oneX two three");  /* M-f */
    EDIT("abc\033[D\033[DZ", "aZbc");                   /* Left arrow */
    EDIT("abc\033[H\033[CZ", "aZbc");                   /* Home, Right */
    EDIT("abc\033[H\033[3~", "bc");                     /* Delete key */
    EDIT("abc\033OH\033[FZ", "abcZ");                   /* SS3 Home, End */
    EDIT("a b  c\033[D\033[D\033\\", "a bc");           /* M-\ delete-horizontal-space */
    EDIT("zqx\tc", "zqxc");                             /* Tab: no file name starts so: the bell */
}
END_TEST

START_TEST(kill_and_yank)
{
    setup_locale();
    bytewise = _i;
    EDIT("hello world\x01\x06\x06\x0b", "he");              /* C-k */
    EDIT("hello world\x02\x02\x15", "ld");                  /* C-u */
    EDIT("hello big world\x17", "hello big ");              /* C-w */
    EDIT("hello big world\x17\x17\x19", "hello big world"); /* consecutive kills append */
    EDIT("a b c\x17\x17\x01\x19", "b ca ");                 /* C-y at start */
    EDIT("one two\x01\033d", " two");                       /* M-d */
    EDIT("one two\033\x7f", "one ");                        /* M-DEL */
    EDIT("one two\033\x08", "one ");                        /* M-C-h */
    /* M-y rotates: kill "two", kill "one" (not consecutive), yank, M-y */
    EDIT("one two\x17\x02\x02x\x01\x0b\x19\033y", "two");
    EDIT("one two\x17\x02\x02x\x01\x0b\x19", "onxe ");
    EDIT("abc\x01\x06\x00\x05\x17", ""); /* C-w kills the word, not the region */
    EDIT("path/to/file\033\x7f", "path/to/");
    EDIT("x\x19", "x"); /* nothing to yank: bell */
}
END_TEST

START_TEST(transpose_case_undo)
{
    setup_locale();
    bytewise = _i;
    EDIT("abc\x14", "acb");     /* C-t at the end */
    EDIT("abc\x02\x14", "acb"); /* C-t in the middle */
    EDIT("abcd\x01\x06\x14", "bacd");
    EDIT("one two\033t", "two one");          /* M-t */
    EDIT("one two\x01\033u", "ONE two");      /* M-u */
    EDIT("ONE TWO\x01\033l", "one TWO");      /* M-l */
    EDIT("one two\x01\033c\033c", "One Two"); /* M-c */
    EDIT("éa\x01\033u", "ÉA");                /* Latin-1 upper */
    EDIT("hello\x1f", "");                    /* C-_ undoes the typing */
    EDIT("hello\x01\x0b\x1f", "hello");       /* undo a kill */
    EDIT("one two\033t\x1f", "one two");      /* transpose is one undo */
    EDIT("ab\x01x\x18\x15", "ab");            /* C-x C-u */
    EDIT("ab\x01x\033\x12", "");              /* M-C-r: revert-line */
    EDIT("中文\x14", "文中");                 /* wide characters swap whole */
}
END_TEST

START_TEST(numeric_arguments)
{
    setup_locale();
    bytewise = _i;
    EDIT("\0333x", "xxx");
    EDIT("\0331\0332x", "xxxxxxxxxxxx");
    /* universal-argument, which GNU's emacs map leaves unbound */
    static const char *const ua[][2] = {{"\x15x", "xxxx"},
                                        {"\x15\x15x", "xxxxxxxxxxxxxxxx"},
                                        {"\x15"
                                         "3x",
                                         "xxx"},
                                        {"\x15"
                                         "12\x15"
                                         "5",
                                         "555555555555"},
                                        {"\x15-x", ""},
                                        {"ab\x02\x15-\x7f", "a"}};
    for (size_t i = 0; i < sizeof(ua) / sizeof(ua[0]); i++) {
        fx f;
        fx_open(&f, "> ", 60, 10, NULL);
        ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "\"\\C-u\": universal-argument"), 0);
        fx_type(&f, ua[i][0]);
        ck_assert_msg(strcmp(fx_buf(&f), ua[i][1]) == 0, "%zu: got %s", i, fx_buf(&f));
        fx_close(&f);
    }
    EDIT("abcdef\0332\x02X", "abcdXef");
    EDIT("abcdef\033-\0332\x06X", "abcdXef"); /* M-- M-2 C-f: backward */
    EDIT("a b c d\033-\x0b", "");             /* M-- C-k: backward */
    EDIT("one two three\0332\033\x7f", "one ");
    EDIT("abc\0332\x7f", "a"); /* explicit: killed */
    EDIT("abc\0332\x7f\x19", "abc");
}
END_TEST

START_TEST(quoted_insert_overwrite_mark)
{
    setup_locale();
    bytewise = _i;
    EDIT("a\x16\x01"
         "b",
         "a\x01"
         "b");                    /* C-v C-a */
    EDIT("\x16\033[A", "\033[A"); /* C-v ESC, then [A inserted */
    EDIT("\0333\x16x", "xxx");
    EDIT("abc\x01\033[2~XY", "XYc"); /* Insert: overwrite mode */
    EDIT("abc\x01\x18\x18", "abc");  /* C-x C-x without a mark: bell */
    EDIT("abcdef\x01\x00\x06\x06\x06\x18\x18X", "Xabcdef");
    EDIT("abcdef\x01\x06\x00\x05\x18\x18X", "aXbcdef");
    EDIT("hello world\x1dwX", "hello worldX");     /* C-] w: none after the end */
    EDIT("hello world\x01\x1dwX", "hello Xworld"); /* C-] w */
    EDIT("hello world\033\x1dhX", "Xhello world"); /* M-C-] h */
    EDIT("abc\033#", "");                          /* M-#: commented and accepted */
}
END_TEST

START_TEST(macros_and_bindings)
{
    setup_locale();
    bytewise = _i;
    EDIT("\x18(ab\x18)\x18"
         "e\x18"
         "e",
         "ababab");
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
    fx_type(&f, "Y\x0e"
                "Z\x10");
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
    fx_type(&f, "\x12"
                "app");
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
    fx_type(&f, "\x12"
                "ban\033");
    ck_assert_int_eq(kart_line_tick(f.ed), 0);
    ck_assert_int_ge(kart_line_timeout(f.ed), 0);
    struct timespec ts = {0, 600 * 1000000};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(kart_line_tick(f.ed), 0);
    fx_type(&f, "!");
    ck_assert_str_eq(fx_buf(&f), "!banana split");
    ck_assert_str_eq(ROW(&f, 0), "> !banana split");
    /* a bound key ends the search and runs */
    fx_type(&f, "\033>\x12"
                "cherry\x05X");
    ck_assert_str_eq(fx_buf(&f), "cherry appleX");
    /* RET accepts */
    fx_type(&f, "\x12"
                "pie\r");
    ck_assert_int_eq(f.n, 1);
    ck_assert_str_eq(f.line[0], "apple pie");
    /* forward search, and an empty C-r reuses the last string */
    /* (the edited "!banana split" stayed edited in the history, as GNU
     * leaves it) */
    fx_type(&f, "\033<\x13"
                "ban\x0a");
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
    ck_assert_str_eq(fx_buf(&f), ""); /* word 2 of "make all": none */
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
    fx_type(&f, "\x17"
                "ch\t");
    ck_assert_str_eq(fx_buf(&f), "eat banana apricot cherry");
    /* delimiters */
    ck_assert_int_eq(kart_line_set_completer_delims(f.ed, " "), 0);
    ck_assert_str_eq(kart_line_completer_delims(f.ed), " ");
    fx_type(&f, " x=ch\t");
    ck_assert_str_eq(r.text, "x=ch");
    /* M-* inserts them all; M-= lists */
    fx_type(&f, "\x15"
                "a\033*");
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
    fx_type(&f, "\033[200~a\x03"
                "b\r\nc\033[201~");
    ck_assert_str_eq(fx_buf(&f), "a\x03"
                                 "b\nc");
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

/* ---- display ---- */

START_TEST(display_wraps)
{
    setup_locale();
    bytewise = _i;
    fx f;
    fx_open(&f, "> ", 10, 6, NULL);
    fx_type(&f, "abcdefghijklmnopqrst");
    ck_assert_str_eq(ROW(&f, 0), "> abcdefgh");
    ck_assert_str_eq(ROW(&f, 1), "ijklmnopqr");
    ck_assert_str_eq(ROW(&f, 2), "st");
    CURSOR(&f, 2, 2);
    fx_type(&f, "\x01");
    CURSOR(&f, 2, 0);
    fx_type(&f, "X");
    ck_assert_str_eq(ROW(&f, 0), "> Xabcdefg");
    ck_assert_str_eq(ROW(&f, 1), "hijklmnopq");
    ck_assert_str_eq(ROW(&f, 2), "rst");
    CURSOR(&f, 3, 0);
    fx_type(&f, "\x05\x7f\x7f\x7f");
    ck_assert_str_eq(ROW(&f, 1), "hijklmnopq");
    ck_assert_str_eq(ROW(&f, 2), "");
    CURSOR(&f, 0, 2);
    fx_type(&f, "\x7f");
    ck_assert_str_eq(ROW(&f, 1), "hijklmnop");
    CURSOR(&f, 9, 1);
    fx_type(&f, "\x15");
    ck_assert_str_eq(ROW(&f, 0), ">");
    ck_assert_str_eq(ROW(&f, 1), "");
    /* exactly at the margin: the cursor goes to the next row */
    fx_type(&f, "12345678");
    ck_assert_str_eq(ROW(&f, 0), "> 12345678");
    CURSOR(&f, 0, 1);
    fx_type(&f, "9");
    ck_assert_str_eq(ROW(&f, 1), "9");
    CURSOR(&f, 1, 1);
    fx_type(&f, "\r");
    ck_assert_str_eq(f.line[0], "123456789");
    ck_assert_str_eq(ROW(&f, 2), ">");
    fx_close(&f);
}
END_TEST

START_TEST(display_wide_and_combining)
{
    setup_locale();
    bytewise = _i;
    fx f;
    fx_open(&f, "> ", 10, 6, NULL);
    fx_type(&f, "abcdefg中文");
    /* the wide character that does not fit goes to the next row */
    ck_assert_str_eq(ROW(&f, 0), "> abcdefg");
    ck_assert_str_eq(ROW(&f, 1), "中文");
    CURSOR(&f, 4, 1);
    fx_type(&f, "\x02");
    CURSOR(&f, 2, 1);
    fx_type(&f, "\x02\x02");
    CURSOR(&f, 8, 0);
    fx_type(&f, "\x05\x15");
    ck_assert_str_eq(ROW(&f, 1), "");
    /* a combining mark joins its base: one column, one character */
    fx_type(&f, "e\xcc\x81x");
    ck_assert_str_eq(ROW(&f, 0), "> e\xcc\x81x");
    CURSOR(&f, 4, 0);
    fx_type(&f, "\x02\x02");
    CURSOR(&f, 2, 0);
    fx_type(&f, "\x04");
    ck_assert_str_eq(fx_buf(&f), "x");
    ck_assert_str_eq(ROW(&f, 0), "> x");
    fx_type(&f, "\x05\xcc\x88");
    ck_assert_str_eq(fx_buf(&f), "x\xcc\x88");
    ck_assert_str_eq(ROW(&f, 0), "> x\xcc\x88");
    CURSOR(&f, 3, 0);
    /* emoji: two columns */
    fx_type(&f, "\x15\xf0\x9f\x98\x80!");
    ck_assert_str_eq(ROW(&f, 0), "> \xf0\x9f\x98\x80!");
    CURSOR(&f, 5, 0);
    fx_close(&f);
}
END_TEST

START_TEST(display_prompts)
{
    setup_locale();
    fx f;
    fx_open(&f, "\033[1;32mok\033[0m> ", 40, 6, NULL);
    ck_assert_str_eq(ROW(&f, 0), "ok>");
    CURSOR(&f, 4, 0);
    fx_type(&f, "x");
    CURSOR(&f, 5, 0);
    fx_close(&f);
    fx_open(&f, "\001\033[31m\002red\001\033[0m\002> ", 40, 6, NULL);
    ck_assert_ptr_null(strchr(f.raw, '\001'));
    ck_assert_str_eq(ROW(&f, 0), "red>");
    CURSOR(&f, 5, 0);
    fx_close(&f);
    fx_open(&f, "first line\n中> ", 40, 6, NULL);
    ck_assert_str_eq(ROW(&f, 0), "first line");
    ck_assert_str_eq(ROW(&f, 1), "中>");
    CURSOR(&f, 4, 1);
    fx_type(&f, "abc");
    ck_assert_int_eq(kart_line_set_prompt(f.ed, "$ "), 0);
    ck_assert_str_eq(ROW(&f, 0), "$ abc");
    ck_assert_str_eq(ROW(&f, 1), "");
    CURSOR(&f, 5, 0);
    fx_close(&f);
}
END_TEST

START_TEST(display_minimal_redraw)
{
    setup_locale();
    fx f;
    fx_open(&f, "> ", 40, 6, NULL);
    fx_type(&f, "hello");
    size_t before = f.nraw, w = f.writes;
    fx_type(&f, "!");
    ck_assert_uint_eq(f.writes, w + 1); /* one write per key */
    ck_assert_str_eq(f.raw + before, "!");
    before = f.nraw;
    fx_type(&f, "\x01");
    ck_assert_ptr_null(strpbrk(f.raw + before, "abcdefghijklmnopqrstuvwxyz!"));
    before = f.nraw;
    fx_type(&f, "\x06\x06\x04");
    /* from the change on: "lo!" and a clear */
    ck_assert_ptr_nonnull(strstr(f.raw + before, "lo!"));
    ck_assert_ptr_null(strstr(f.raw + before, "he"));
    ck_assert_str_eq(ROW(&f, 0), "> helo!");
    fx_close(&f);
}
END_TEST

START_TEST(display_print_above_clear_redraw)
{
    setup_locale();
    fx f;
    fx_open(&f, "> ", 20, 8, NULL);
    fx_type(&f, "abc\x02");
    ck_assert_int_eq(kart_line_print_above(f.ed, "message one", 11), 0);
    ck_assert_str_eq(ROW(&f, 0), "message one");
    ck_assert_str_eq(ROW(&f, 1), "> abc");
    CURSOR(&f, 4, 1);
    size_t w = f.writes;
    ck_assert_int_eq(kart_line_print_above(f.ed, "two\nlines\n", 10), 0);
    ck_assert_uint_eq(f.writes, w + 1);
    ck_assert_str_eq(ROW(&f, 1), "two");
    ck_assert_str_eq(ROW(&f, 2), "lines");
    ck_assert_str_eq(ROW(&f, 3), "> abc");
    fx_type(&f, "\x0c"); /* C-l */
    ck_assert_str_eq(ROW(&f, 0), "> abc");
    ck_assert_str_eq(ROW(&f, 1), "");
    CURSOR(&f, 4, 0);
    ck_assert_int_eq(kart_line_hide(f.ed), 0);
    ck_assert_str_eq(ROW(&f, 0), "");
    ck_assert_int_eq(f.t.paste_on, 0);
    ck_assert_int_eq(kart_line_show(f.ed), 0);
    ck_assert_str_eq(ROW(&f, 0), "> abc");
    ck_assert_int_eq(kart_line_insert_text(f.ed, "XY", 2), 0);
    ck_assert_int_eq(kart_line_redisplay(f.ed), 0);
    ck_assert_str_eq(ROW(&f, 0), "> abXYc");
    CURSOR(&f, 6, 0);
    fx_close(&f);
}
END_TEST

START_TEST(display_horizontal_scroll)
{
    setup_locale();
    bytewise = _i;
    fx f;
    fx_open(&f, "> ", 20, 4, NULL);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "set horizontal-scroll-mode on"), 0);
    fx_type(&f, "abcdefghijklmnopqrstuvwxyz0123456789");
    ck_assert_str_eq(ROW(&f, 1), "");
    const char *r = ROW(&f, 0);
    ck_assert_int_eq(r[0], '<');
    ck_assert_ptr_nonnull(strstr(r, "6789"));
    ck_assert_int_lt(f.t.x, 20);
    fx_type(&f, "\x01");
    ck_assert_str_eq(ROW(&f, 0), "> abcdefghijklmnop>");
    CURSOR(&f, 2, 0);
    fx_type(&f, "\033f");
    r = ROW(&f, 0);
    ck_assert_int_eq(r[0], '<');
    fx_type(&f, "\r");
    ck_assert_str_eq(f.line[0], "abcdefghijklmnopqrstuvwxyz0123456789");
    ck_assert_str_eq(ROW(&f, 1), ">");
    fx_close(&f);
}
END_TEST

/* ---- bad input ---- */

START_TEST(bad_invalid_utf8)
{
    setup_locale();
    bytewise = _i;
    fx f;
    fx_open(&f, "> ", 40, 4, NULL);
    fx_type(&f, "a\xff\xfe"
                "b\xe4\xb8"
                "c\xc3");
    /* \xc3 may start a character: it waits for the next byte */
    ck_assert_str_eq(ROW(&f, 0), "> a\\377\\376b\\344\\270c");
    fx_type(&f, "d");
    ck_assert_str_eq(ROW(&f, 0), "> a\\377\\376b\\344\\270c\\303d");
    fx_type(&f, "\x7f");
    fx_type(&f, "\x7f\x7f");
    ck_assert_str_eq(fx_buf(&f), "a\xff\xfe"
                                 "b\xe4\xb8");
    fx_type(&f, "\r");
    ck_assert_str_eq(f.line[0], "a\xff\xfe"
                                "b\xe4\xb8");
    fx_close(&f);
}
END_TEST

START_TEST(bad_truncated_escape)
{
    setup_locale();
    fx f;
    fx_open(&f, "> ", 40, 4, NULL);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "set keyseq-timeout 50"), 0);
    ck_assert_int_eq(kart_line_timeout(f.ed), -1);
    fx_type(&f, "ab\033[");
    int64_t t = kart_line_timeout(f.ed);
    ck_assert_int_ge(t, 0);
    ck_assert_int_le(t, 50 * KT_MS);
    ck_assert_int_eq(kart_line_tick(f.ed), 0); /* too early: nothing */
    ck_assert_str_eq(fx_buf(&f), "ab");
    struct timespec ts = {0, 80 * 1000000};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(kart_line_timeout(f.ed), 0);
    ck_assert_int_eq(kart_line_tick(f.ed), 0);
    ck_assert_int_eq(kart_line_timeout(f.ed), -1);
    fx_type(&f, "x");
    /* resolved as the key reader says (ESC alone is unbound: the bell;
     * what follows it is keys or dropped), the next key is a key */
    const char *b = fx_buf(&f);
    ck_assert_int_eq(strncmp(b, "ab", 2), 0);
    ck_assert_int_eq(b[strlen(b) - 1], 'x');
    ck_assert_ptr_null(strchr(b, '\033'));
    /* ESC alone, then a key after the timeout: the key is a key */
    fx_type(&f, "\033");
    nanosleep(&ts, NULL);
    ck_assert_int_eq(kart_line_tick(f.ed), 0);
    fx_type(&f, "b");
    b = fx_buf(&f);
    ck_assert_int_eq(b[strlen(b) - 1], 'b');
    /* a truncated sequence at the end of the input: the line, then EOF */
    fx_type(&f, "\033[1;");
    ck_assert_int_eq(kart_line_feed_eof(f.ed), 0);
    ck_assert_int_eq(f.n, 2);
    ck_assert_int_eq(strncmp(f.line[0], "ab", 2), 0);
    ck_assert_ptr_null(strchr(f.line[0], '\033'));
    ck_assert_int_eq(f.result[1], KART_EEOF);
    fx_close(&f);
}
END_TEST

static double now_s(void)
{
    return (double)kart_now_ns() / 1e9;
}

START_TEST(bad_huge_paste)
{
    setup_locale();
    size_t n = (size_t)1 << 20;
    char *big = malloc(n + 16);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    for (int bracketed = 0; bracketed < 2; bracketed++) {
        fx f;
        fx_open(&f, "> ", 80, 24, NULL);
        double t0 = now_s();
        size_t w = f.writes;
        if (bracketed)
            fx_type(&f, "\033[200~");
        ck_assert_int_eq(kart_line_feed(f.ed, big, n), 0);
        if (bracketed)
            fx_type(&f, "\033[201~");
        size_t len;
        kart_line_buffer(f.ed, &len);
        ck_assert_uint_eq(len, n);
        ck_assert_uint_le(f.writes - w, 3);
        /* undo takes the whole paste back in one step */
        fx_type(&f, "\x1f");
        kart_line_buffer(f.ed, &len);
        ck_assert_uint_eq(len, 0);
        ck_assert_msg(now_s() - t0 < 20, "1 MiB took %.1f s", now_s() - t0);
        fx_close(&f);
    }
    free(big);
}
END_TEST

START_TEST(bad_long_line_bounded)
{
    setup_locale();
    for (int hscroll = 0; hscroll < 2; hscroll++) {
        fx f;
        fx_open(&f, "> ", 80, 24, NULL);
        if (hscroll)
            ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "set horizontal-scroll-mode on"), 0);
        double t0 = now_s();
        size_t maxkey = 0;
        for (int i = 0; i < 100000; i++) {
            char c = (char)('a' + i % 26);
            size_t before = f.nraw;
            ck_assert_int_eq(kart_line_feed(f.ed, &c, 1), 0);
            if (f.nraw - before > maxkey)
                maxkey = f.nraw - before;
        }
        /* a key at the end writes that key (and, scrolling sideways, at
         * most one window) */
        ck_assert_uint_le(maxkey, hscroll ? 80 + 32 : 8);
        ck_assert_uint_le(f.nraw, (size_t)100000 * (hscroll ? 6 : 2));
        /* moves at the end of a long line write no text */
        size_t before = f.nraw;
        fx_type(&f, "\x02\x02\x06");
        ck_assert_uint_le(f.nraw - before, 32);
        size_t len;
        kart_line_buffer(f.ed, &len);
        ck_assert_uint_eq(len, 100000);
        ck_assert_msg(now_s() - t0 < 20, "took %.1f s", now_s() - t0);
        fx_type(&f, "\r");
        ck_assert_uint_eq(f.len[0], 100000);
        fx_close(&f);
    }
}
END_TEST

START_TEST(bad_tiny_window)
{
    setup_locale();
    bytewise = _i;
    fx f;
    fx_open(&f, "> ", 1, 5, NULL);
    fx_type(&f, "abc中\xff\x01\x05\x02\x02X\r");
    ck_assert_int_eq(f.n, 1);
    ck_assert_str_eq(f.line[0], "abcX\xe4\xb8\xad\xff");
    fx_type(&f, "\033[200~xyz\033[201~\x12x\x07\x15\x0c"
                "done\r");
    ck_assert_str_eq(f.line[1], "done");
    fx_close(&f);
    /* a pty that says 0x0: 80x24 */
    int m, sl;
    struct winsize ws = {0, 0, 0, 0};
    ck_assert_int_eq(openpty(&m, &sl, NULL, NULL, &ws), 0);
    unsetenv("COLUMNS");
    unsetenv("LINES");
    kart_line *ed;
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.term = "xterm";
    o.no_inputrc = true;
    ck_assert_int_eq(kart_line_create(&ed, sl, sl, &o), 0);
    unsigned c, r;
    kart_line_get_size(ed, &c, &r);
    ck_assert_uint_eq(c, 80);
    ck_assert_uint_eq(r, 24);
    kart_line_free(ed);
    close(m);
    close(sl);
}
END_TEST

START_TEST(bad_output_eagain)
{
    setup_locale();
    int p[2];
    kt_pipe(p);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.terminal = KART_LINE_TERMINAL_ON;
    o.term = "xterm";
    o.no_inputrc = true;
    o.prompt = "> ";
    kart_line *ed;
    ck_assert_int_eq(kart_line_create(&ed, -1, p[1], &o), 0);
    ck_assert_int_eq(kart_line_set_size(ed, 40, 10), 0);
    fx f; /* for its callback and screen */
    memset(&f, 0, sizeof(f));
    vt_init(&f.t, 40, 10);
    ck_assert_int_eq(kart_line_start(ed, fx_cb, &f), 0);
    char chunk[20000];
    memset(chunk, 'q', sizeof(chunk));
    ck_assert_int_eq(kart_line_feed(ed, chunk, sizeof(chunk)), 0);
    ck_assert_int_eq(kart_line_flush(ed), -EAGAIN);
    ck_assert_int_eq(kart_line_feed(ed,
                                    "\x15"
                                    "ok",
                                    3),
                     0); /* queued behind */
    char buf[8192];
    int rounds = 0;
    for (;;) {
        ssize_t n;
        while ((n = read(p[0], buf, sizeof(buf))) > 0)
            vt_feed(&f.t, buf, (size_t)n);
        int r = kart_line_flush(ed);
        if (r == 0)
            break;
        ck_assert_int_eq(r, -EAGAIN);
        ck_assert_int_lt(++rounds, 1000);
    }
    ssize_t n;
    while ((n = read(p[0], buf, sizeof(buf))) > 0)
        vt_feed(&f.t, buf, (size_t)n);
    ck_assert_str_eq(vt_row(&f.t, f.t.y), "> ok");
    ck_assert_int_eq(kart_line_feed(ed, "\r", 1), 0);
    ck_assert_str_eq(f.line[0], "ok");
    kart_line_free(ed);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(bad_output_epipe)
{
    setup_locale();
    signal(SIGPIPE, SIG_DFL);
    int p[2];
    kt_pipe(p);
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.terminal = KART_LINE_TERMINAL_ON;
    o.term = "xterm";
    o.no_inputrc = true;
    kart_line *ed;
    ck_assert_int_eq(kart_line_create(&ed, -1, p[1], &o), 0);
    fx f;
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(kart_line_start(ed, fx_cb, &f), 0);
    close(p[0]);
    ck_assert_int_eq(kart_line_feed(ed, "abc", 3), -EPIPE); /* alive: no SIGPIPE */
    ck_assert_int_eq(f.n, 1);
    ck_assert_int_eq(f.result[0], -EPIPE);
    ck_assert_int_eq(kart_line_feed(ed, "x", 1), -EINVAL); /* stopped */
    kart_line_free(ed);
    close(p[1]);
    /* the same through the write callback */
    fx g;
    fx_open(&g, "> ", 40, 4, NULL);
    g.fail_write = -EIO;
    ck_assert_int_eq(kart_line_feed(g.ed, "abc", 3), -EIO);
    ck_assert_int_eq(g.result[0], -EIO);
    fx_close(&g);
}
END_TEST

/* ---- blocking mode on a pseudo-terminal ---- */

typedef struct ptyrun {
    int m, s;
    kart_line *ed;
    pthread_t th;
    bool running;
    int result;
    char *line;
    size_t len;
    vt t;
    char out[1 << 16];
    size_t nout;
} ptyrun;

static void pty_open(ptyrun *p, int cols, int rows, const kart_line_options *opts)
{
    memset(p, 0, sizeof(*p));
    struct winsize ws = {(unsigned short)rows, (unsigned short)cols, 0, 0};
    ck_assert_int_eq(openpty(&p->m, &p->s, NULL, NULL, &ws), 0);
    fcntl(p->m, F_SETFL, fcntl(p->m, F_GETFL) | O_NONBLOCK);
    vt_init(&p->t, cols, rows);
    kart_line_options o;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof(o));
    if (!o.term)
        o.term = "xterm";
    if (!o.prompt)
        o.prompt = "> ";
    o.no_inputrc = true;
    ck_assert_int_eq(kart_line_create(&p->ed, p->s, p->s, &o), 0);
}

/* Reads what the editor wrote for up to ms milliseconds of quiet. */
static void pty_drain(ptyrun *p, int ms)
{
    for (;;) {
        struct pollfd pf = {.fd = p->m, .events = POLLIN};
        if (poll(&pf, 1, ms) <= 0)
            return;
        char buf[4096];
        ssize_t n = read(p->m, buf, sizeof(buf));
        if (n <= 0)
            return;
        vt_feed(&p->t, buf, (size_t)n);
        size_t room = sizeof(p->out) - 1 - p->nout;
        size_t k = (size_t)n < room ? (size_t)n : room;
        memcpy(p->out + p->nout, buf, k);
        p->nout += k;
        p->out[p->nout] = '\0';
    }
}

static void *pty_reader(void *arg)
{
    ptyrun *p = arg;
    p->result = kart_line_read(p->ed, &p->line, &p->len);
    return NULL;
}

static void pty_read_start(ptyrun *p)
{
    free(p->line);
    p->line = NULL;
    p->nout = 0;
    ck_assert_int_eq(pthread_create(&p->th, NULL, pty_reader, p), 0);
    p->running = true;
    pty_drain(p, 100);
}

static void pty_type(ptyrun *p, const char *s)
{
    ck_assert_int_eq(write(p->m, s, strlen(s)), (ssize_t)strlen(s));
    pty_drain(p, 50);
}

/* Waits for kart_line_read to return (5 s at most). */
static int pty_read_wait(ptyrun *p)
{
    for (int i = 0; i < 100; i++) {
        pty_drain(p, 20);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 30 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (pthread_timedjoin_np(p->th, NULL, &ts) == 0) {
            p->running = false;
            pty_drain(p, 20);
            return p->result;
        }
    }
    ck_abort_msg("kart_line_read did not return");
    return 0;
}

static bool tty_canonical(int fd)
{
    struct termios t;
    ck_assert_int_eq(tcgetattr(fd, &t), 0);
    return (t.c_lflag & ICANON) != 0;
}

static void pty_close(ptyrun *p)
{
    kart_line_free(p->ed);
    free(p->line);
    close(p->m);
    close(p->s);
}

START_TEST(blocking_reads_lines_and_restores)
{
    setup_locale();
    ptyrun p;
    pty_open(&p, 40, 10, NULL);
    ck_assert(tty_canonical(p.s));
    pty_read_start(&p);
    ck_assert(!tty_canonical(p.s)); /* raw while a line is edited */
    ck_assert_str_eq(vt_row(&p.t, 0), ">");
    pty_type(&p, "hello\x02\x02XY");
    ck_assert_str_eq(vt_row(&p.t, 0), "> helXYlo");
    pty_type(&p, "\r");
    ck_assert_int_eq(pty_read_wait(&p), 0);
    ck_assert_str_eq(p.line, "helXYlo");
    ck_assert_uint_eq(p.len, 7);
    ck_assert(tty_canonical(p.s));
    ck_assert_int_eq(p.t.paste_on, 0);
    ck_assert_int_eq(p.t.y, 1);
    /* typed ahead: two lines in one write */
    pty_read_start(&p);
    pty_type(&p, "one\rtwo\r");
    ck_assert_int_eq(pty_read_wait(&p), 0);
    ck_assert_str_eq(p.line, "one");
    pty_read_start(&p);
    ck_assert_int_eq(pty_read_wait(&p), 0);
    ck_assert_str_eq(p.line, "two");
    /* C-c, C-d */
    pty_read_start(&p);
    pty_type(&p, "abc\x03");
    ck_assert_int_eq(pty_read_wait(&p), -EINTR);
    ck_assert_ptr_nonnull(strstr(p.out, "^C"));
    ck_assert(tty_canonical(p.s));
    pty_read_start(&p);
    pty_type(&p, "\x04");
    ck_assert_int_eq(pty_read_wait(&p), KART_EEOF);
    ck_assert(tty_canonical(p.s));
    /* read_into: a buffer too small keeps the line */
    pty_read_start(&p);
    pty_type(&p, "0123456789\r");
    ck_assert_int_eq(pty_read_wait(&p), 0);
    pty_close(&p);
}
END_TEST

static char small_buf_line[64];

START_TEST(blocking_read_into)
{
    setup_locale();
    int in[2], out[2];
    kt_pipe(in);
    kt_pipe(out);
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.terminal = KART_LINE_TERMINAL_OFF;
    o.prompt = "? ";
    kart_line *ed;
    ck_assert_int_eq(kart_line_create(&ed, in[0], out[1], &o), 0);
    kt_write(in[1], "0123456789\r\nsecond\nlast");
    close(in[1]);
    size_t len = 0;
    ck_assert_int_eq(kart_line_read_into(ed, small_buf_line, 5, &len), -ENOBUFS);
    ck_assert_uint_eq(len, 10);
    ck_assert_int_eq(kart_line_read_into(ed, small_buf_line, sizeof(small_buf_line), &len), 0);
    ck_assert_str_eq(small_buf_line, "0123456789");
    char *line;
    ck_assert_int_eq(kart_line_read(ed, &line, &len), 0);
    ck_assert_str_eq(line, "second");
    free(line);
    ck_assert_int_eq(kart_line_read(ed, &line, &len), 0);
    ck_assert_str_eq(line, "last");
    free(line);
    ck_assert_int_eq(kart_line_read(ed, &line, &len), KART_EEOF);
    /* plain: only the prompts and the lines, no escapes */
    char buf[256];
    ssize_t n = read(out[0], buf, sizeof(buf) - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "? 0123456789\n? second\n? last\n? ");
    kart_line_free(ed);
    close(in[0]);
    close(out[0]);
    close(out[1]);
}
END_TEST

static _Atomic int term_calls, term_canonical, int_calls;
static int handler_tty = -1;

static void on_term(int sig)
{
    (void)sig;
    struct termios t;
    term_calls++;
    if (handler_tty >= 0 && tcgetattr(handler_tty, &t) == 0)
        term_canonical = (t.c_lflag & ICANON) != 0;
}

static void on_int(int sig)
{
    (void)sig;
    int_calls++;
}

START_TEST(blocking_signals)
{
    setup_locale();
    struct sigaction sa, before_term, after_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_int;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, NULL, &before_term);
    ptyrun p;
    pty_open(&p, 40, 10, NULL);
    handler_tty = p.s;
    pty_read_start(&p);
    pty_type(&p, "abc");
    /* SIGTERM: the terminal is restored for the application's handler,
     * which returns: editing goes on */
    pthread_kill(p.th, SIGTERM);
    pty_drain(&p, 100);
    ck_assert_int_eq(term_calls, 1);
    ck_assert_int_eq(term_canonical, 1);
    ck_assert(!tty_canonical(p.s));
    pty_type(&p, "d\r");
    ck_assert_int_eq(pty_read_wait(&p), 0);
    ck_assert_str_eq(p.line, "abcd");
    sigaction(SIGTERM, NULL, &after_term);
    ck_assert_ptr_eq((void *)after_term.sa_handler, (void *)before_term.sa_handler);
    /* SIGWINCH, taken by this thread and passed on to the reader */
    pty_read_start(&p);
    pty_type(&p, "xyz");
    struct winsize ws = {12, 30, 0, 0};
    ioctl(p.m, TIOCSWINSZ, &ws);
    kill(getpid(), SIGWINCH);
    pty_drain(&p, 100);
    /* SIGINT: -EINTR, and the application's handler ran */
    pthread_kill(p.th, SIGINT);
    ck_assert_int_eq(pty_read_wait(&p), -EINTR);
    unsigned c, r;
    kart_line_get_size(p.ed, &c, &r); /* (the reader is done) */
    ck_assert_uint_eq(c, 30);
    ck_assert_uint_eq(r, 12);
    ck_assert_int_eq(int_calls, 1);
    ck_assert(tty_canonical(p.s));
    handler_tty = -1;
    pty_close(&p);
}
END_TEST

START_TEST(blocking_end_of_input)
{
    setup_locale();
    int in[2];
    kt_pipe(in);
    fx f; /* the output through the emulator */
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    memset(&f, 0, sizeof(f));
    vt_init(&f.t, 40, 10);
    o.write = fx_write;
    o.write_arg = &f;
    o.terminal = KART_LINE_TERMINAL_ON;
    o.term = "xterm";
    o.no_inputrc = true;
    o.prompt = "> ";
    kart_line *ed;
    ck_assert_int_eq(kart_line_create(&ed, in[0], -1, &o), 0);
    kt_write(in[1], "partial");
    close(in[1]);
    char *line;
    size_t len;
    ck_assert_int_eq(kart_line_read(ed, &line, &len), 0);
    ck_assert_str_eq(line, "partial");
    free(line);
    ck_assert_int_eq(kart_line_read(ed, &line, &len), KART_EEOF);
    kart_line_free(ed);
    close(in[0]);
    free(f.raw);
}
END_TEST

START_TEST(free_mid_line_restores)
{
    setup_locale();
    ptyrun p;
    pty_open(&p, 40, 10, NULL);
    fx f;
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(kart_line_start(p.ed, fx_cb, &f), 0);
    ck_assert(!tty_canonical(p.s));
    ck_assert_int_eq(kart_line_feed(p.ed, "abc", 3), 0);
    pty_drain(&p, 50);
    ck_assert_int_eq(p.t.paste_on, 1);
    kart_line_free(p.ed);
    p.ed = NULL;
    pty_drain(&p, 50);
    ck_assert(tty_canonical(p.s));
    ck_assert_int_eq(p.t.paste_on, 0);
    ck_assert_str_eq(vt_row(&p.t, 0), "> abc");
    ck_assert_int_eq(p.t.y, 1);
    ck_assert_int_eq(f.n, 0);
    close(p.m);
    close(p.s);
}
END_TEST

/* ---- loop mode ---- */

typedef struct loopctx {
    fx rec;
    kart_loop *loop;
} loopctx;

static void run_until(kart_loop *loop, int *counter, int want, ptyrun *p)
{
    for (int i = 0; i < 200 && *counter < want; i++) {
        kart_loop_run(loop, KART_RUN_NOWAIT);
        pty_drain(p, 10);
    }
    ck_assert_int_ge(*counter, want);
}

START_TEST(loop_mode_two_editors)
{
    setup_locale();
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    ptyrun a, b;
    pty_open(&a, 40, 10, NULL);
    pty_open(&b, 30, 8, NULL);
    fx ra, rb;
    memset(&ra, 0, sizeof(ra));
    memset(&rb, 0, sizeof(rb));
    ck_assert_int_eq(kart_line_attach(a.ed, loop, fx_cb, &ra), 0);
    ck_assert_int_eq(kart_line_attach(b.ed, loop, fx_cb, &rb), 0);
    ck_assert_int_eq(kart_line_attach(b.ed, loop, fx_cb, &rb), -EBUSY);
    pty_drain(&a, 20);
    pty_drain(&b, 20);
    ck_assert_str_eq(vt_row(&a.t, 0), ">");
    ck_assert_int_eq(write(a.m, "from a\r", 7), 7);
    ck_assert_int_eq(write(b.m, "from b", 6), 6);
    run_until(loop, &ra.n, 1, &a);
    ck_assert_str_eq(ra.line[0], "from a");
    ck_assert_int_eq(rb.n, 0);
    pty_drain(&b, 20);
    ck_assert_str_eq(vt_row(&b.t, 0), "> from b");
    /* the keyseq-timeout runs on a loop timer */
    ck_assert_int_eq(kart_line_parse_and_bind(b.ed, "set keyseq-timeout 30"), 0);
    ck_assert_int_eq(write(b.m, "\033", 1), 1);
    int64_t t0 = kart_now_ns();
    while (kart_now_ns() - t0 < 200 * KT_MS)
        kart_loop_run(loop, KART_RUN_NOWAIT);
    ck_assert_int_eq(write(b.m, "!\r", 2), 2);
    run_until(loop, &rb.n, 1, &b);
    ck_assert_str_eq(rb.line[0], "from b!");
    /* C-d: EOF, and the editor detaches itself */
    ck_assert_int_eq(write(a.m, "\x04", 1), 1);
    run_until(loop, &ra.n, 2, &a);
    ck_assert_int_eq(ra.result[1], KART_EEOF);
    ck_assert(tty_canonical(a.s));
    kart_line_detach(b.ed);
    ck_assert(tty_canonical(b.s));
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    kart_loop_free(loop);
    pty_close(&a);
    pty_close(&b);
}
END_TEST

/* ---- plain mode, hooks, callbacks ---- */

START_TEST(plain_mode)
{
    setup_locale();
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.terminal = KART_LINE_TERMINAL_OFF;
    o.prompt = "\033[1m>\033[0m ";
    fx f;
    fx_open_opts(&f, &o, 40, 4);
    fx_type(&f, "ab\x7f"
                "c\r\nnext\n");
    ck_assert_int_eq(f.n, 2);
    ck_assert_str_eq(f.line[0], "ab\x7f"
                                "c");
    ck_assert_str_eq(f.line[1], "next");
    ck_assert_ptr_null(strchr(f.raw, '\033'));
    ck_assert_str_eq(f.raw, "> ab\x7f"
                            "c\n> next\n> ");
    fx_close(&f);
    /* TERM=dumb on a terminal: the terminal's own line editing */
    ptyrun p;
    memset(&o, 0, sizeof(o));
    o.term = "dumb";
    pty_open(&p, 40, 10, &o);
    pty_read_start(&p);
    ck_assert(tty_canonical(p.s));
    pty_type(&p, "plain\r");
    ck_assert_int_eq(pty_read_wait(&p), 0);
    ck_assert_str_eq(p.line, "plain");
    ck_assert_ptr_null(strchr(p.out, '\033'));
    pty_close(&p);
}
END_TEST

static int startup_calls;

static void hook_startup(kart_line *ed, void *arg)
{
    (void)ed;
    (void)arg;
    startup_calls++;
}

static void hook_prefill(kart_line *ed, void *arg)
{
    (void)arg;
    kart_line_insert_text(ed, "prefill", 7);
}

static void cb_stop_after_one(kart_line *ed, int result, const char *line, size_t len, void *arg)
{
    fx_cb(ed, result, line, len, arg);
    kart_line_stop(ed);
}

static void cb_free(kart_line *ed, int result, const char *line, size_t len, void *arg)
{
    fx_cb(ed, result, line, len, arg);
    kart_line_free(ed);
}

START_TEST(hooks_and_callbacks)
{
    setup_locale();
    fx f;
    fx_open(&f, "> ", 40, 6, NULL);
    kart_line_hooks hk;
    memset(&hk, 0, sizeof(hk));
    hk.startup = hook_startup;
    hk.pre_input = hook_prefill;
    kart_line_set_hooks(f.ed, &hk, NULL);
    fx_type(&f, "\r");
    ck_assert_str_eq(f.line[0], "");
    ck_assert_int_eq(startup_calls, 1);
    ck_assert_str_eq(fx_buf(&f), "prefill");
    ck_assert_str_eq(ROW(&f, 1), "> prefill");
    CURSOR(&f, 9, 1);
    fx_type(&f, "!\r");
    ck_assert_str_eq(f.line[1], "prefill!");
    fx_close(&f);
    /* a callback that stops: the rest of the input waits for the next
     * start */
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    fx g;
    fx_open_opts(&g, &o, 40, 6);
    kart_line_stop(g.ed);
    ck_assert_int_eq(kart_line_start(g.ed, cb_stop_after_one, &g), 0);
    ck_assert_int_eq(kart_line_feed(g.ed, "one\rtwo\r", 8), 0);
    ck_assert_int_eq(g.n, 1);
    ck_assert_int_eq(kart_line_feed(g.ed, "x", 1), -EINVAL);
    ck_assert_int_eq(kart_line_start(g.ed, fx_cb, &g), 0);
    ck_assert_int_eq(g.n, 2);
    ck_assert_str_eq(g.line[1], "two");
    kart_line_stop(g.ed);
    /* a callback that frees the editor */
    ck_assert_int_eq(kart_line_start(g.ed, cb_free, &g), 0);
    ck_assert_int_eq(kart_line_feed(g.ed, "a\rb\r", 4), 0);
    ck_assert_int_eq(g.n, 3);
    free(g.raw);
}
END_TEST

START_TEST(auto_history_and_expansion)
{
    setup_locale();
    kart_history *h;
    kart_history_options ho;
    memset(&ho, 0, sizeof(ho));
    ho.expand = true;
    ck_assert_int_eq(kart_history_create(&h, &ho), 0);
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.history = h;
    o.auto_history = true;
    fx f;
    fx_open_opts(&f, &o, 40, 10);
    fx_type(&f, "echo hi\r\recho hi\r");
    ck_assert_uint_eq(kart_history_length(h), 1);
    fx_type(&f, "!!\r");
    ck_assert_int_eq(f.n, 4);
    ck_assert_str_eq(f.line[3], "echo hi");
    fx_type(&f, "!nosuch\r");
    ck_assert_int_eq(f.n, 4);
    ck_assert_ptr_nonnull(strstr(f.raw, "event not found"));
    fx_type(&f, "\x10\r");
    ck_assert_int_eq(f.n, 5);
    fx_close(&f);
    kart_history_free(h);
}
END_TEST

/* ---- the init file ---- */

static int rc_errors;
static char rc_last[128];

static void on_rc_error(kart_line *ed, const char *file, int line, const char *msg, void *arg)
{
    (void)ed;
    (void)arg;
    rc_errors++;
    snprintf(rc_last, sizeof(rc_last), "%s:%d: %s", file, line, msg);
}

START_TEST(inputrc_on_first_line)
{
    setup_locale();
    char path[] = "/tmp/kart-inputrc-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *rc = "set bell-style none\n"
                     "$if testapp\n\"\\C-xa\": \"from app\"\n$endif\n"
                     "$if otherapp\n\"\\C-xb\": \"wrong\"\n$endif\n"
                     "this line is bad\n";
    ck_assert_int_eq(write(fd, rc, strlen(rc)), (ssize_t)strlen(rc));
    close(fd);
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.inputrc = path;
    o.app_name = "testapp";
    fx f;
    memset(&f, 0, sizeof(f));
    vt_init(&f.t, 40, 6);
    o.write = fx_write;
    o.write_arg = &f;
    o.terminal = KART_LINE_TERMINAL_ON;
    o.term = "xterm";
    o.prompt = "> ";
    ck_assert_int_eq(kart_line_create(&f.ed, -1, -1, &o), 0);
    kart_line_hooks hk;
    memset(&hk, 0, sizeof(hk));
    hk.inputrc_error = on_rc_error;
    kart_line_set_hooks(f.ed, &hk, NULL);
    char v[32];
    ck_assert_int_eq(kart_line_variable(f.ed, "bell-style", v, sizeof(v)), 7);
    ck_assert_str_eq(v, "audible"); /* not read before the first line */
    ck_assert_int_eq(kart_line_start(f.ed, fx_cb, &f), 0);
    ck_assert_int_eq(kart_line_variable(f.ed, "bell-style", v, sizeof(v)), 4);
    ck_assert_int_eq(rc_errors, 1);
    ck_assert_msg(strstr(rc_last, ":8:") != NULL, "%s", rc_last);
    fx_type(&f, "\x18"
                "a\x18"
                "b");
    ck_assert_int_eq(strncmp(fx_buf(&f), "from app", 8), 0);
    ck_assert_ptr_null(strstr(fx_buf(&f), "wrong"));
    /* read again, and another file */
    ck_assert_int_eq(kart_line_read_init_file(f.ed, NULL), 1);
    ck_assert_int_eq(kart_line_read_init_file(f.ed, "/nonexistent/inputrc"), -ENOENT);
    fx_close(&f);
    unlink(path);
}
END_TEST

/* ---- more of blocking mode's signals ---- */

static _Atomic int tstp_calls, tstp_canonical;

static void on_tstp(int sig)
{
    (void)sig;
    struct termios t;
    tstp_calls++;
    if (handler_tty >= 0 && tcgetattr(handler_tty, &t) == 0)
        tstp_canonical = (t.c_lflag & ICANON) != 0;
}

START_TEST(blocking_stop_and_continue)
{
    setup_locale();
    /* C-z signals the process group: make it this process alone */
    setpgid(0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_tstp;
    sigaction(SIGTSTP, &sa, NULL);
    ptyrun p;
    pty_open(&p, 40, 10, NULL);
    handler_tty = p.s;
    pty_read_start(&p);
    pty_type(&p, "abc");
    /* SIGTSTP: restored for the handler (which does not stop), then raw
     * again and the line drawn again */
    pthread_kill(p.th, SIGTSTP);
    pty_drain(&p, 100);
    ck_assert_int_eq(tstp_calls, 1);
    ck_assert_int_eq(tstp_canonical, 1);
    ck_assert(!tty_canonical(p.s));
    ck_assert_str_eq(vt_row(&p.t, p.t.y), "> abc");
    /* C-z, the tty's susp character, does the same through a signal */
    pty_type(&p, "\x1a");
    pty_drain(&p, 100);
    ck_assert_int_eq(tstp_calls, 2);
    ck_assert_int_eq(tstp_canonical, 1);
    ck_assert(!tty_canonical(p.s));
    /* SIGCONT: raw mode again, the line drawn again */
    struct termios t;
    tcgetattr(p.s, &t);
    t.c_lflag |= ICANON | ECHO;
    tcsetattr(p.s, TCSANOW, &t); /* as a shell would leave it */
    p.nout = 0;
    pthread_kill(p.th, SIGCONT);
    pty_drain(&p, 100);
    ck_assert(!tty_canonical(p.s));
    ck_assert_ptr_nonnull(strstr(p.out, "> abc"));
    pty_type(&p, "d\r");
    ck_assert_int_eq(pty_read_wait(&p), 0);
    ck_assert_str_eq(p.line, "abcd");
    ck_assert(tty_canonical(p.s));
    handler_tty = -1;
    pty_close(&p);
}
END_TEST

/* ---- loop mode with a slow output ---- */

START_TEST(loop_mode_queued_output)
{
    setup_locale();
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    int in[2], out[2];
    kt_pipe(in);
    kt_pipe(out);
    fcntl(out[1], F_SETPIPE_SZ, 4096);
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.terminal = KART_LINE_TERMINAL_ON;
    o.term = "xterm";
    o.no_inputrc = true;
    o.prompt = "> ";
    kart_line *ed;
    ck_assert_int_eq(kart_line_create(&ed, in[0], out[1], &o), 0);
    ck_assert_int_eq(kart_line_set_size(ed, 40, 10), 0);
    fx f;
    memset(&f, 0, sizeof(f));
    vt_init(&f.t, 40, 10);
    ck_assert_int_eq(kart_line_attach(ed, loop, fx_cb, &f), 0);
    char chunk[12000];
    memset(chunk, 'z', sizeof(chunk));
    chunk[sizeof(chunk) - 1] = '\r';
    ck_assert_int_eq(write(in[1], chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
    /* the output fills the pipe: the loop writes the rest as it drains */
    char buf[4096];
    for (int i = 0; i < 500 && f.n == 0; i++) {
        kart_loop_run(loop, KART_RUN_NOWAIT);
        ssize_t n = read(out[0], buf, sizeof(buf));
        if (n > 0)
            vt_feed(&f.t, buf, (size_t)n);
    }
    ck_assert_int_eq(f.n, 1);
    ck_assert_uint_eq(f.len[0], sizeof(chunk) - 1);
    for (int i = 0; i < 200; i++) {
        kart_loop_run(loop, KART_RUN_NOWAIT);
        ssize_t n = read(out[0], buf, sizeof(buf));
        if (n > 0)
            vt_feed(&f.t, buf, (size_t)n);
        if (strcmp(vt_row(&f.t, f.t.y), ">") == 0)
            break;
    }
    ck_assert_str_eq(vt_row(&f.t, f.t.y), ">");
    kart_line_detach(ed);
    kart_line_free(ed);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    kart_loop_free(loop);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
}
END_TEST

START_TEST(print_above_multiline_prompt_and_dumps)
{
    setup_locale();
    fx f;
    fx_open(&f, "status: ok\n> ", 30, 8, NULL);
    fx_type(&f, "typed");
    ck_assert_int_eq(kart_line_print_above(f.ed, "note", 4), 0);
    ck_assert_str_eq(ROW(&f, 0), "note");
    ck_assert_str_eq(ROW(&f, 1), "status: ok");
    ck_assert_str_eq(ROW(&f, 2), "> typed");
    ck_assert_str_eq(ROW(&f, 3), "");
    CURSOR(&f, 7, 2);
    ck_assert_int_eq(kart_line_parse_and_bind(f.ed, "\"\\C-xv\": dump-variables"), 0);
    fx_type(&f, "\x18v");
    ck_assert_ptr_nonnull(strstr(f.raw, "set bell-style audible"));
    ck_assert_str_eq(ROW(&f, f.t.y), "> typed");
    fx_close(&f);
}
END_TEST

static void hook_stop(kart_line *ed, void *arg)
{
    (void)arg;
    kart_line_stop(ed);
}

static void hook_free(kart_line *ed, void *arg)
{
    (void)arg;
    kart_line_free(ed);
}

START_TEST(blocking_hook_cancels)
{
    setup_locale();
    int in[2];
    kt_pipe(in);
    kt_write(in[1], "abc\n");
    for (int k = 0; k < 2; k++) {
        fx f;
        memset(&f, 0, sizeof(f));
        vt_init(&f.t, 40, 6);
        kart_line_options o;
        memset(&o, 0, sizeof(o));
        o.write = fx_write;
        o.write_arg = &f;
        o.terminal = KART_LINE_TERMINAL_ON;
        o.term = "xterm";
        o.no_inputrc = true;
        kart_line *ed;
        ck_assert_int_eq(kart_line_create(&ed, in[0], -1, &o), 0);
        kart_line_hooks hk;
        memset(&hk, 0, sizeof(hk));
        hk.pre_input = k == 0 ? hook_stop : hook_free;
        kart_line_set_hooks(ed, &hk, NULL);
        char *line;
        size_t len;
        ck_assert_int_eq(kart_line_read(ed, &line, &len), -ECANCELED);
        if (k == 0) {
            /* stopped once; the next read goes on */
            kart_line_set_hooks(ed, NULL, NULL);
            ck_assert_int_eq(kart_line_read(ed, &line, &len), 0);
            ck_assert_str_eq(line, "abc");
            free(line);
            kart_line_free(ed);
        }
        free(f.raw);
    }
    close(in[0]);
    close(in[1]);
}
END_TEST

/* A child runs an attached editor; SIGTSTP stops it with the terminal
 * restored, SIGCONT takes the terminal back, and input goes on. */
static int report_fd = -1;

static void cb_report(kart_line *ed, int result, const char *line, size_t len, void *arg)
{
    (void)ed;
    (void)arg;
    char b[256];
    int n = snprintf(b, sizeof(b), "%d:%.*s\n", result, (int)len, line ? line : "");
    if (write(report_fd, b, (size_t)n) < 0)
        _exit(3);
}

static bool wait_canonical(int fd, bool want)
{
    for (int i = 0; i < 200; i++) {
        if (tty_canonical(fd) == want)
            return true;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* waitpid, 5 s at most. */
static pid_t wait_pid(pid_t pid, int *st, int options)
{
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(pid, st, options | WNOHANG);
        if (r != 0)
            return r;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    return -1;
}

START_TEST(loop_mode_stop_and_continue)
{
    KT_BACKEND_OR_SKIP(_i);
    (void)backend;
    setup_locale();
    ptyrun p;
    pty_open(&p, 40, 10, NULL);
    int rep[2];
    ck_assert_int_eq(pipe(rep), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        alarm(20); /* a child left behind by a failed case ends */
        close(rep[0]);
        report_fd = rep[1];
        kart_loop *loop;
        if (kart_loop_create(&loop, NULL) < 0 || kart_line_attach(p.ed, loop, cb_report, NULL) < 0)
            _exit(2);
        kart_loop_run(loop, KART_RUN_DEFAULT); /* ends when the editor stops (EOF) */
        kart_line_free(p.ed);
        _exit(0);
    }
    close(rep[1]);
    ck_assert(wait_canonical(p.s, false));
    ck_assert_int_eq(write(p.m, "ab", 2), 2);
    pty_drain(&p, 100);
    ck_assert_int_eq(kill(pid, SIGTSTP), 0);
    int st;
    ck_assert_int_eq(wait_pid(pid, &st, WUNTRACED), pid);
    ck_assert(WIFSTOPPED(st));
    ck_assert(tty_canonical(p.s)); /* restored while stopped */
    pty_drain(&p, 50);
    ck_assert_int_eq(p.t.paste_on, 0);
    ck_assert_int_eq(kill(pid, SIGCONT), 0);
    ck_assert(wait_canonical(p.s, false)); /* raw again */
    pty_drain(&p, 100);
    ck_assert_str_eq(vt_row(&p.t, p.t.y), "> ab");
    ck_assert_int_eq(write(p.m, "c\r", 2), 2);
    char buf[256];
    struct pollfd pf = {.fd = rep[0], .events = POLLIN};
    if (poll(&pf, 1, 5000) != 1)
        kill(pid, SIGKILL);
    ck_assert_msg(pf.revents & POLLIN, "no line after the process was continued");
    ssize_t n = read(rep[0], buf, sizeof(buf) - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "0:abc\n");
    /* the callback ran in the terminal's normal mode (GNU's too): a C-d
     * typed then would be the tty's end-of-file; wait for the next line */
    ck_assert(wait_canonical(p.s, false));
    ck_assert_int_eq(write(p.m, "\x04", 1), 1);
    ck_assert_int_eq(wait_pid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    ck_assert(tty_canonical(p.s));
    close(rep[0]);
    pty_close(&p);
}
END_TEST

START_TEST(more_commands)
{
    setup_locale();
    static const char *const lines[] = {"git status", "make check", "git log", NULL};
    kart_history *h = hist_of(lines);
    fx f;
    fx_open(&f, "> ", 10, 8, h);
    static const char *const binds[] = {"\"\\C-x1\": previous-screen-line",
                                        "\"\\C-x2\": next-screen-line",
                                        "\"\\C-x3\": history-substring-search-backward",
                                        "\"\\C-x4\": fetch-history",
                                        "\"\\C-x5\": kill-region",
                                        "\"\\C-x6\": copy-region-as-kill",
                                        "\"\\C-x7\": copy-backward-word",
                                        "\"\\C-x8\": dump-functions",
                                        "\"\\C-x9\": non-incremental-reverse-search-history-again"};
    for (size_t i = 0; i < sizeof(binds) / sizeof(binds[0]); i++)
        ck_assert_int_eq(kart_line_parse_and_bind(f.ed, binds[i]), 0);
    /* screen lines: 10 columns, "> " then 20 characters */
    fx_type(&f, "abcdefghijklmnopqrst\x18"
                "1");
    ck_assert_uint_eq(kart_line_point(f.ed), 10);
    fx_type(&f, "\x18"
                "1");
    ck_assert_uint_eq(kart_line_point(f.ed), 0);
    fx_type(&f, "\x18"
                "2\x18"
                "2");
    ck_assert_uint_eq(kart_line_point(f.ed), 20);
    /* regions */
#define TYPELIT(f, lit) fx_typen((f), (lit), sizeof(lit) - 1)
    TYPELIT(&f, "\x01\x00\x06\x06\x06\x18"
                "6\x05\x19");
    ck_assert_str_eq(fx_buf(&f), "abcdefghijklmnopqrstabc");
    TYPELIT(&f, "\x01\x00\x06\x06\x18"
                "5");
    ck_assert_str_eq(fx_buf(&f), "cdefghijklmnopqrstabc");
    fx_type(&f, "\x05\x15 one two\x18"
                "7\x19");
    ck_assert_str_eq(fx_buf(&f), " one twotwo");
    /* M-TAB inserts a tab; M-& expands ~ */
    fx_type(&f, "\x15"
                "a\033\tb");
    ck_assert_str_eq(fx_buf(&f), "a\tb");
    setenv("HOME", "/home/someone", 1);
    fx_type(&f, "\x15~/x\033&");
    ck_assert_str_eq(fx_buf(&f), "/home/someone/x");
    /* history: substring search, fetch by number, search again */
    fx_type(&f, "\x15"
                "sta\x18"
                "3");
    ck_assert_str_eq(fx_buf(&f), "git status");
    fx_type(&f, "\0332\x18"
                "4");
    ck_assert_str_eq(fx_buf(&f), "make check");
    fx_type(&f, "\033>\033pgit\r");
    ck_assert_str_eq(fx_buf(&f), "git log");
    fx_type(&f, "\x18"
                "9");
    ck_assert_str_eq(fx_buf(&f), "git status");
    /* dump-functions: GNU's inputrc form, then the line again */
    fx_type(&f, "\x18"
                "8");
    ck_assert_ptr_nonnull(strstr(f.raw, "\"\\C-a\": beginning-of-line"));
    fx_close(&f);
    kart_history_free(h);
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
    tcase_add_test(tc, more_commands);
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
    tc = tcase_create("display");
    tcase_add_loop_test(tc, display_wraps, 0, 2);
    tcase_add_loop_test(tc, display_wide_and_combining, 0, 2);
    tcase_add_test(tc, display_prompts);
    tcase_add_test(tc, display_minimal_redraw);
    tcase_add_test(tc, display_print_above_clear_redraw);
    tcase_add_loop_test(tc, display_horizontal_scroll, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("bad");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, bad_invalid_utf8, 0, 2);
    tcase_add_test(tc, bad_truncated_escape);
    tcase_add_test(tc, bad_huge_paste);
    tcase_add_test(tc, bad_long_line_bounded);
    tcase_add_loop_test(tc, bad_tiny_window, 0, 2);
    tcase_add_test(tc, bad_output_eagain);
    tcase_add_test(tc, bad_output_epipe);
    suite_add_tcase(s, tc);
    tc = tcase_create("drive");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, blocking_reads_lines_and_restores);
    tcase_add_test(tc, blocking_read_into);
    tcase_add_test(tc, blocking_signals);
    tcase_add_test(tc, blocking_end_of_input);
    tcase_add_test(tc, blocking_hook_cancels);
    tcase_add_test(tc, free_mid_line_restores);
    tcase_add_test(tc, loop_mode_two_editors);
    tcase_add_loop_test(tc, loop_mode_stop_and_continue, 0, kt_nbackends());
    tcase_add_test(tc, plain_mode);
    tcase_add_test(tc, hooks_and_callbacks);
    tcase_add_test(tc, auto_history_and_expansion);
    tcase_add_test(tc, inputrc_on_first_line);
    tcase_add_test(tc, blocking_stop_and_continue);
    tcase_add_test(tc, loop_mode_queued_output);
    tcase_add_test(tc, print_above_multiline_prompt_and_dumps);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kt_run(line_suite());
}

/*
 * core/line/vi_change.c — the vi mode's changes: the insert session (an
 * undo group from i a c ... to ESC, and the text typed for '.'), the
 * operators d c y over a motion (GNU's rl_vi_domove and the dispatchers
 * after it: which motions take in their last character, cw as ce), the
 * characters f F t T r m ` read raw, and r ~ p P.
 */
#include "vi_private.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

/* Most bytes a put or a repeated insert may add at once. */
#define MAX_REPEAT_BYTES (1u << 24)

static const char motion_keys[] = " hl^$0ftFT;,%wbeWBE|`";

static int bell(kart_line *ed)
{
    kart__line_bell(ed);
    return 1;
}

int kart__vi_count(long long n)
{
    return n < 1 ? 1 : n > KART__VI_MAX_COUNT ? KART__VI_MAX_COUNT : (int)n;
}

/* ---- insert sessions ---- */

static void session_open(kart_line *ed)
{
    if (ed->vi.in_session || ed->vi.redoing)
        return;
    size_t at = kart__edit_undo_open(ed);
    if (at == SIZE_MAX)
        return;
    ed->vi.in_session = true;
    ed->vi.session_at = at;
    ed->vi.session_hpos = ed->hpos;
    ed->vi.session_point = ed->point;
}

/* ESC: keep the typed text for '.', close the undo group. */
static void session_close(kart_line *ed)
{
    if (!ed->vi.in_session)
        return;
    ed->vi.in_session = false;
    if (ed->vi.session_hpos != ed->hpos)
        return; /* another history line: its undo list is not ours */
    kart__vi *v = &ed->vi;
    v->ins.len = 0;
    size_t s, e;
    if (v->insert_key == 'R') {
        if (ed->point >= v->session_point && ed->point <= ed->line.len)
            kart__lbuf_add(&v->ins, ed->line.p + v->session_point, ed->point - v->session_point);
    } else if (kart__edit_undo_last_insert(ed, &s, &e) && s >= v->session_point) {
        kart__lbuf_add(&v->ins, ed->line.p + s, e - s);
    }
    kart__edit_undo_close(ed, v->session_at);
}

void kart__vi_set_last(kart_line *ed, char cmd, char motion, int count, const char *arg, size_t n)
{
    if (ed->vi.redoing)
        return;
    kart__vi_change *c = &ed->vi.last;
    c->cmd = cmd;
    c->motion = motion;
    c->count = count;
    c->arg_len = n <= sizeof(c->arg) ? n : 0;
    if (c->arg_len)
        memcpy(c->arg, arg, c->arg_len);
}

/* i a I A R c s S C: into insert mode (or, under '.', the text typed the
 * last time goes in and the cursor steps back as ESC would). */
void kart__vi_start_inserting(kart_line *ed, char key)
{
    if (ed->vi.redoing) {
        kart__vi_insert_text(ed, ed->vi.ins.p ? ed->vi.ins.p : "", ed->vi.ins.len, 1, key == 'R');
        if (ed->point > 0)
            ed->point = kart__prev_char(ed, ed->point);
        return;
    }
    session_open(ed);
    ed->vi.session_point = ed->point; /* after c's delete */
    ed->vi.insert_key = key;
    ed->overwrite = key == 'R';
    ed->map = KART__MAP_VI_INSERT;
}

/* Inserts s count times (overwriting for R), as one edit. */
int kart__vi_insert_text(kart_line *ed, const char *s, size_t n, int count, bool over)
{
    if (n == 0 || count < 1)
        return 0;
    if ((unsigned long long)n * (unsigned)count > MAX_REPEAT_BYTES)
        return bell(ed);
    kart__lbuf tmp = {0};
    for (int i = 0; i < count; i++)
        if (kart__lbuf_add(&tmp, s, n) < 0) {
            kart__lbuf_free(&tmp);
            return -1;
        }
    if (over) {
        size_t end = ed->point, chars = 0;
        for (size_t q = 0; q < tmp.len; q++) /* count tmp's characters */
            if (((unsigned char)tmp.p[q] & 0xc0) != 0x80)
                chars++;
        while (chars-- > 0 && end < ed->line.len)
            end = kart__next_char(ed, end);
        kart__edit_delete(ed, ed->point, end);
    }
    int r = kart__edit_insert(ed, ed->point, tmp.p, tmp.len);
    kart__lbuf_free(&tmp);
    return r;
}

/* ---- the operators ---- */

/* GNU's motions after which an operator's range ends before the target
 * character (the others take it in: de, dt, d$, d%). */
static bool exclusive(char op, char m)
{
    return strchr(op == 'y' ? " l|h^0%bBFT`" : " l|h^0bBFT`", m) != NULL;
}

/* Applies operator op (d c y) over motion m (op itself: the whole line).
 * Returns 0, or 1 after the bell when the motion fails. */
int kart__vi_apply_op(kart_line *ed, char op, int count, char m, const char *arg, size_t n)
{
    size_t start = ed->point, len = ed->line.len, lo, hi;
    if (op == 'c')
        session_open(ed); /* GNU: the delete belongs to the insert's group */
    if (m == op) {
        lo = 0;
        hi = len;
    } else {
        size_t t;
        bool ok = kart__vi_motion(ed, m, count, arg, n, true, &t);
        if (!ok || t == start) {
            /* c enters insert mode when a valid motion moved nowhere (C at
             * the end of the line); anything else rings */
            if (!(op == 'c' && ok)) {
                if (op == 'c' && ed->vi.in_session) {
                    kart__edit_undo_close(ed, ed->vi.session_at);
                    ed->vi.in_session = false;
                }
                return bell(ed);
            }
            lo = hi = start;
            goto act;
        }
        bool word = m == 'w' || m == 'W';
        /* w stops on the next word's first character; back off it */
        if (word && t < len && t > start && !kart__vi_blank(kart__char_at(ed, t, NULL)))
            t = kart__prev_char(ed, t);
        if (op == 'c' && word && t >= start) {
            /* cw and cW change to the end of the word, as ce and cE */
            while (t > start && t < len && kart__vi_blank(kart__char_at(ed, t, NULL)))
                t = kart__prev_char(ed, t);
            if (t == start)
                t = t < len ? kart__next_char(ed, t) : t;
            else if (t + 1 < len && !kart__vi_blank(kart__char_at(ed, t, NULL)))
                t = kart__next_char(ed, t);
        }
        lo = t < start ? t : start;
        hi = t < start ? start : t;
        if (t >= start && !exclusive(op, m) && !(op == 'c' && word) && hi < len)
            hi = kart__next_char(ed, hi);
    }
act:
    kart__vi_set_last(ed, op, m, count, arg, n);
    if (op == 'y') {
        kart__edit_copy(ed, lo, hi);
        ed->point = start;
        return 0;
    }
    if (hi > lo) {
        ed->last_kill = false; /* each d or c is a kill of its own */
        kart__edit_kill(ed, lo, hi, false);
    }
    ed->point = lo;
    if (op == 'c')
        kart__vi_start_inserting(ed, 'c');
    return 0;
}

/* The motion key after an operator, through the vi-command keymap (so
 * that arrows work as h and l). */
static bool op_key(kart_line *ed, const kart__key *k);
static void raw_char(kart_line *ed, unsigned char c);

static void finish_op(kart_line *ed, char m, const char *arg, size_t n)
{
    kart__vi_change *p = &ed->vi.pending;
    long long total = (long long)p->count * (ed->vi.motion_digits ? ed->vi.motion_count : 1);
    kart__edit_begin_command(ed);
    kart__vi_apply_op(ed, p->cmd, kart__vi_count(total), m, arg, n);
    kart__edit_end_command(ed);
    p->cmd = 0;
}

static char key_as_motion(const kart__key *k)
{
    if (k->len == 1)
        return k->bytes[0];
    if (k->kind != KART__KEY_BOUND || k->binding.kind != KART__BIND_FN)
        return 0;
    switch (k->binding.fn) {
    case KART__FN_BACKWARD_CHAR:
        return 'h';
    case KART__FN_FORWARD_CHAR:
        return 'l';
    case KART__FN_BEGINNING_OF_LINE:
        return '0';
    case KART__FN_END_OF_LINE:
        return '$';
    default:
        return 0;
    }
}

static bool op_key(kart_line *ed, const kart__key *k)
{
    kart__vi *v = &ed->vi;
    char c = key_as_motion(k);
    if (c >= '0' && c <= '9' && (c != '0' || v->motion_digits)) {
        if (!v->motion_digits)
            v->motion_count = 0;
        if (v->motion_count < KART__VI_MAX_COUNT / 10)
            v->motion_count = v->motion_count * 10 + (c - '0');
        v->motion_digits = true;
        return true;
    }
    ed->mode_fn = NULL;
    if (c == '\033') {
        v->pending.cmd = 0; /* ESC: no change */
        return true;
    }
    if (c != 0 && (c == v->pending.cmd || strchr(motion_keys, c))) {
        if (strchr("fFtT`", c)) {
            v->want = c;
            v->cn = 0;
            ed->raw_fn = raw_char;
        } else {
            finish_op(ed, c, NULL, 0);
        }
        return true;
    }
    v->pending.cmd = 0;
    kart__line_bell(ed);
    return true;
}

/* d c y: wait for the motion. */
int kart__vi_start_op(kart_line *ed, char op, int count)
{
    ed->vi.pending.cmd = op;
    ed->vi.pending.count = count;
    ed->vi.motion_count = 1;
    ed->vi.motion_digits = false;
    ed->mode_fn = op_key;
    return 0;
}

/* ---- raw characters: f F t T r m ` ---- */

static void char_ready(kart_line *ed, char want, const char *c, size_t n)
{
    kart__vi *v = &ed->vi;
    if (v->pending.cmd) {
        finish_op(ed, want, c, n);
        return;
    }
    int count = kart__vi_count(v->pending.count);
    kart__edit_begin_command(ed);
    size_t t;
    switch (want) {
    case 'r':
        kart__vi_change_char(ed, count, c, n);
        break;
    case 'm':
        if (n == 1 && c[0] >= 'a' && c[0] <= 'z') {
            v->marks[c[0] - 'a'] = ed->point;
            v->marks_set |= 1u << (c[0] - 'a');
        } else {
            kart__line_bell(ed);
        }
        break;
    default:
        if (kart__vi_motion(ed, want, count, c, n, false, &t))
            ed->point = t;
        else
            kart__line_bell(ed);
        break;
    }
    kart__edit_end_command(ed);
}

/* Collects one UTF-8 character. */
static void raw_char(kart_line *ed, unsigned char c)
{
    kart__vi *v = &ed->vi;
    /* ESC and C-c cancel (GNU's _rl_vi_callback_getchar callers); the
     * raw reader sees C-c before the interrupt check does */
    if (v->cn == 0 && (c == '\033' || c == 0x03 || (c != 0 && c == ed->c_intr))) {
        ed->raw_fn = NULL;
        v->want = 0;
        v->pending.cmd = 0;
        return;
    }
    v->cbuf[v->cn++] = (char)c;
    unsigned char lead = (unsigned char)v->cbuf[0];
    size_t need = lead < 0xc2 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : lead < 0xf5 ? 4 : 1;
    if (v->cn > 1 && ((unsigned char)c & 0xc0) != 0x80)
        v->cn = need = 1; /* broken: the lead byte alone */
    if (v->cn < need)
        return;
    ed->raw_fn = NULL;
    char want = v->want;
    v->want = 0;
    size_t n = v->cn;
    v->cn = 0;
    char b[4];
    memcpy(b, v->cbuf, n);
    char_ready(ed, want, b, n);
}

int kart__vi_want_char(kart_line *ed, char want, int count)
{
    ed->vi.want = want;
    ed->vi.cn = 0;
    ed->vi.pending.cmd = 0;
    ed->vi.pending.count = count;
    ed->raw_fn = raw_char;
    return 0;
}

/* ---- changes ---- */

/* r: the next count characters become c; the cursor ends on the last. */
void kart__vi_change_char(kart_line *ed, int count, const char *c, size_t n)
{
    if (ed->point >= ed->line.len) {
        kart__line_bell(ed);
        return;
    }
    kart__vi_set_last(ed, 'r', 0, count, c, n);
    size_t end = ed->point;
    int chars = 0;
    while (chars < count && end < ed->line.len) {
        end = kart__next_char(ed, end);
        chars++;
    }
    size_t at = ed->point;
    kart__edit_delete(ed, at, end);
    ed->point = at;
    kart__vi_insert_text(ed, c, n, chars, false);
    if (ed->point > 0)
        ed->point = kart__prev_char(ed, ed->point);
}

static uint32_t toggle_case(uint32_t c)
{
    if (c < 0x80)
        return isupper((int)c) ? (uint32_t)tolower((int)c) : (uint32_t)toupper((int)c);
    if (iswupper((wint_t)c))
        return (uint32_t)towlower((wint_t)c);
    if (iswlower((wint_t)c))
        return (uint32_t)towupper((wint_t)c);
    return c;
}

/* ~: toggles the case of count characters, moving over them. */
int kart__vi_change_case(kart_line *ed, int count)
{
    if (ed->point >= ed->line.len)
        return 0;
    kart__vi_set_last(ed, '~', 0, count, NULL, 0);
    while (count-- > 0 && ed->point < ed->line.len) {
        size_t n;
        uint32_t c = kart__char_at(ed, ed->point, &n);
        uint32_t t = c == (uint32_t)-1 ? c : toggle_case(c);
        char b[4];
        if (t != c && kart__utf8_encode(t, b) == n) {
            size_t at = ed->point;
            kart__edit_delete(ed, at, at + n);
            ed->point = at;
            kart__edit_insert(ed, at, b, n);
        } else {
            ed->point += n;
        }
    }
    return 0;
}

/* p P: the last kill after (before) the cursor, count times; the cursor
 * ends on its last character. */
int kart__vi_put(kart_line *ed, char key, int count)
{
    if (ed->nkills == 0)
        return bell(ed);
    kart__vi_set_last(ed, key, 0, count, NULL, 0);
    kart__lbuf *k = &ed->kills[ed->kill_top];
    if (key == 'p' && ed->point < ed->line.len)
        ed->point = kart__next_char(ed, ed->point);
    ed->mark = ed->point;
    ed->mark_set = true;
    ed->yank_start = ed->point;
    if (kart__vi_insert_text(ed, k->p ? k->p : "", k->len, count, false) != 0)
        return 1;
    ed->yank_end = ed->point;
    if (ed->point > 0)
        ed->point = kart__prev_char(ed, ed->point);
    return 0;
}

/* ESC: the end of an insert. */
void kart__vi_done_inserting(kart_line *ed)
{
    if (ed->vi.in_session) {
        session_close(ed);
    } else if (ed->vi.insert_key && strchr("iaIA", ed->vi.insert_key)) {
        /* the insert mode a line starts in has no group, but what was
         * typed is kept for '.' all the same (GNU's _rl_vi_done_inserting) */
        size_t s, e;
        ed->vi.ins.len = 0;
        if (kart__edit_undo_last_insert(ed, &s, &e))
            kart__lbuf_add(&ed->vi.ins, ed->line.p + s, e - s);
    }
}

/* An operator or a raw character pending. */
void kart__vi_change_cancel(kart_line *ed)
{
    if (ed->mode_fn == op_key)
        ed->mode_fn = NULL;
    if (ed->raw_fn == raw_char)
        ed->raw_fn = NULL;
    ed->vi.pending.cmd = 0;
    ed->vi.want = 0;
}

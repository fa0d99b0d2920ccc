/*
 * core/line/vi.c — the vi mode (GNU readline's vi_mode.c): the functions
 * named vi-* in line_fn.h, one entry each in kart__line_vi_cmds, run from
 * the vi-insert and vi-command keymaps (keymap_default.c) like any other
 * command, so that inputrc bindings reach them.
 *
 * Insert mode is the vi-insert keymap; ESC (vi-movement-mode) switches to
 * the vi-command keymap and steps the cursor back one character. Entering
 * insert mode from command mode (i a I A c s S C R) opens an undo group
 * that ESC closes, so that 'u' undoes the whole insert, and keeps what was
 * typed for '.'. The operators d, c and y read their motion as the next
 * key (digits first give it a count; the operator's own key, as in dd,
 * takes the whole line); f F t T r m ` read the next character raw. The
 * motions themselves are vi_motion.c's.
 */
#include "line_private.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#define CMD(name) static int name(kart_line *ed, int count, const kart__key *key)

/* Counts stop growing here (edit.c's numeric argument does the same). */
#define MAX_COUNT 1000000
/* Most bytes a put or a repeated insert may add at once. */
#define MAX_REPEAT_BYTES (1u << 24)

static const char motion_keys[] = " hl^$0ftFT;,%wbeWBE|`";

static int bell(kart_line *ed)
{
    kart__line_bell(ed);
    return 1;
}

/* The key that ran a command: its last byte ('d' of "d", '/' of "/"). */
static char key_char(const kart__key *key)
{
    return key && key->len > 0 ? key->bytes[key->len - 1] : 0;
}

static int clamp_count(long long n)
{
    return n < 1 ? 1 : n > MAX_COUNT ? MAX_COUNT : (int)n;
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

static void set_last(kart_line *ed, char cmd, char motion, int count, const char *arg, size_t n)
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
static int insert_text(kart_line *ed, const char *s, size_t n, int count, bool over);

static void start_inserting(kart_line *ed, char key)
{
    if (ed->vi.redoing) {
        insert_text(ed, ed->vi.ins.p ? ed->vi.ins.p : "", ed->vi.ins.len, 1, key == 'R');
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
static int insert_text(kart_line *ed, const char *s, size_t n, int count, bool over)
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
static int apply_op(kart_line *ed, char op, int count, char m, const char *arg, size_t n)
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
    set_last(ed, op, m, count, arg, n);
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
        start_inserting(ed, 'c');
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
    apply_op(ed, p->cmd, clamp_count(total), m, arg, n);
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
        if (v->motion_count < MAX_COUNT / 10)
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
static int start_op(kart_line *ed, char op, int count)
{
    ed->vi.pending.cmd = op;
    ed->vi.pending.count = count;
    ed->vi.motion_count = 1;
    ed->vi.motion_digits = false;
    ed->mode_fn = op_key;
    return 0;
}

/* ---- raw characters: f F t T r m ` ---- */

static void change_char(kart_line *ed, int count, const char *c, size_t n);

static void char_ready(kart_line *ed, char want, const char *c, size_t n)
{
    kart__vi *v = &ed->vi;
    if (v->pending.cmd) {
        finish_op(ed, want, c, n);
        return;
    }
    int count = clamp_count(v->pending.count);
    kart__edit_begin_command(ed);
    size_t t;
    switch (want) {
    case 'r':
        change_char(ed, count, c, n);
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

/* Collects one UTF-8 character; ESC first cancels, as in GNU. */
static void raw_char(kart_line *ed, unsigned char c)
{
    kart__vi *v = &ed->vi;
    if (v->cn == 0 && c == '\033') {
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

static int want_char(kart_line *ed, char want, int count)
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
static void change_char(kart_line *ed, int count, const char *c, size_t n)
{
    if (ed->point >= ed->line.len) {
        kart__line_bell(ed);
        return;
    }
    set_last(ed, 'r', 0, count, c, n);
    size_t end = ed->point;
    int chars = 0;
    while (chars < count && end < ed->line.len) {
        end = kart__next_char(ed, end);
        chars++;
    }
    size_t at = ed->point;
    kart__edit_delete(ed, at, end);
    ed->point = at;
    insert_text(ed, c, n, chars, false);
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
static int change_case(kart_line *ed, int count)
{
    if (ed->point >= ed->line.len)
        return 0;
    set_last(ed, '~', 0, count, NULL, 0);
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
static int put(kart_line *ed, char key, int count)
{
    if (ed->nkills == 0)
        return bell(ed);
    set_last(ed, key, 0, count, NULL, 0);
    kart__lbuf *k = &ed->kills[ed->kill_top];
    if (key == 'p' && ed->point < ed->line.len)
        ed->point = kart__next_char(ed, ed->point);
    ed->mark = ed->point;
    ed->mark_set = true;
    ed->yank_start = ed->point;
    if (insert_text(ed, k->p ? k->p : "", k->len, count, false) != 0)
        return 1;
    ed->yank_end = ed->point;
    if (ed->point > 0)
        ed->point = kart__prev_char(ed, ed->point);
    return 0;
}

/* ---- the commands ---- */

CMD(cmd_movement_mode)
{
    (void)count;
    (void)key;
    if (ed->map != KART__MAP_VI_INSERT) {
        ed->map = KART__MAP_VI_COMMAND;
        return 0;
    }
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
    ed->overwrite = false;
    if (ed->point > 0)
        ed->point = kart__prev_char(ed, ed->point);
    ed->map = KART__MAP_VI_COMMAND;
    if (!ed->vi.cmd_once) {
        /* POSIX's U: what was typed before the first ESC is not undone */
        kart__undo_list_free(&ed->undo);
        ed->group_open = false;
        ed->vi.cmd_once = true;
    }
    return 0;
}

CMD(cmd_insertion_mode)
{
    (void)count;
    char k = key_char(key);
    if (k != 'a' && k != 'I' && k != 'A')
        k = 'i';
    set_last(ed, k, 0, 1, NULL, 0);
    start_inserting(ed, k);
    return 0;
}

CMD(cmd_append_mode)
{
    if (ed->point < ed->line.len)
        ed->point = kart__next_char(ed, ed->point);
    return cmd_insertion_mode(ed, count, key);
}

CMD(cmd_append_eol)
{
    (void)count;
    ed->point = ed->line.len;
    set_last(ed, 'A', 0, 1, NULL, 0);
    start_inserting(ed, 'A');
    (void)key;
    return 0;
}

CMD(cmd_insert_beg)
{
    (void)count;
    (void)key;
    ed->point = 0;
    set_last(ed, 'I', 0, 1, NULL, 0);
    start_inserting(ed, 'I');
    return 0;
}

CMD(cmd_replace)
{
    (void)key;
    set_last(ed, 'R', 0, clamp_count(count), NULL, 0);
    start_inserting(ed, 'R');
    return 0;
}

CMD(cmd_arg_digit)
{
    if (key_char(key) == '0' && !ed->explicit_arg) {
        ed->point = 0;
        return 0;
    }
    kart__line_run(ed, KART__FN_DIGIT_ARGUMENT, count, key);
    return 0;
}

/* The plain motions: the cursor goes where vi_motion.c says. */
static int move(kart_line *ed, char m, int count)
{
    size_t t;
    if (!kart__vi_motion(ed, m, clamp_count(count), NULL, 0, false, &t))
        return bell(ed);
    ed->point = t;
    return 0;
}

CMD(cmd_word_motion)
{
    char m;
    switch (ed->this_fn) {
    case KART__FN_VI_FORWARD_WORD:
    case KART__FN_VI_FWORD:
        m = 'w';
        break;
    case KART__FN_VI_FORWARD_BIGWORD:
    case KART__FN_VI_BIG_FWORD:
        m = 'W';
        break;
    case KART__FN_VI_BACKWARD_WORD:
    case KART__FN_VI_BWORD:
        m = 'b';
        break;
    case KART__FN_VI_BACKWARD_BIGWORD:
    case KART__FN_VI_BIG_BWORD:
        m = 'B';
        break;
    case KART__FN_VI_EWORD:
        m = 'e';
        break;
    case KART__FN_VI_BIG_EWORD:
    case KART__FN_VI_END_BIGWORD:
        m = 'E';
        break;
    case KART__FN_VI_END_WORD:
        m = key_char(key) == 'E' ? 'E' : 'e';
        break;
    case KART__FN_VI_NEXT_WORD:
        m = key_char(key) == 'W' ? 'W' : 'w';
        break;
    default: /* vi-prev-word */
        m = key_char(key) == 'B' ? 'B' : 'b';
        break;
    }
    /* GNU rings at the line's ends: w and W on the last character, b and
     * B at the start */
    if ((m == 'w' || m == 'W') && ed->point + 1 >= ed->line.len)
        return bell(ed);
    if ((m == 'b' || m == 'B') && ed->point == 0)
        return bell(ed);
    return move(ed, m, count);
}

CMD(cmd_first_print)
{
    (void)key;
    return move(ed, '^', count);
}

CMD(cmd_column)
{
    (void)key;
    return move(ed, '|', count);
}

CMD(cmd_match)
{
    (void)key;
    return move(ed, '%', count);
}

CMD(cmd_char_search)
{
    char k = key_char(key);
    if (k == ';' || k == ',')
        return move(ed, k, count);
    if (!strchr("fFtT", k) || k == 0)
        return bell(ed);
    return want_char(ed, k, clamp_count(count));
}

CMD(cmd_change_char)
{
    (void)key;
    return want_char(ed, 'r', clamp_count(count));
}

CMD(cmd_set_mark)
{
    (void)key;
    (void)count;
    return want_char(ed, 'm', 1);
}

CMD(cmd_goto_mark)
{
    (void)key;
    (void)count;
    return want_char(ed, '`', 1);
}

/* d c y, and D C Y (to the end of the line, GNU's motion '$'). */
CMD(cmd_operator)
{
    char op = ed->this_fn == KART__FN_VI_DELETE_TO   ? 'd'
              : ed->this_fn == KART__FN_VI_CHANGE_TO ? 'c'
                                                     : 'y';
    char k = key_char(key);
    if (k >= 'A' && k <= 'Z')
        return apply_op(ed, op, clamp_count(count), '$', NULL, 0);
    return start_op(ed, op, clamp_count(count));
}

CMD(cmd_delete)
{
    (void)key;
    if (ed->line.len == 0)
        return bell(ed);
    return apply_op(ed, 'd', clamp_count(count), 'l', NULL, 0);
}

CMD(cmd_rubout)
{
    (void)key;
    if (ed->point == 0)
        return bell(ed);
    return apply_op(ed, 'd', clamp_count(count), 'h', NULL, 0);
}

CMD(cmd_subst)
{
    if (key_char(key) == 'S')
        return apply_op(ed, 'c', 1, 'c', NULL, 0);
    return apply_op(ed, 'c', clamp_count(count), 'l', NULL, 0);
}

CMD(cmd_change_case)
{
    (void)key;
    return change_case(ed, clamp_count(count));
}

CMD(cmd_put)
{
    return put(ed, key_char(key) == 'P' ? 'P' : 'p', clamp_count(count));
}

CMD(cmd_undo)
{
    kart__line_run(ed, KART__FN_UNDO, count, key);
    return 0;
}

/* .: the last change again, with its count unless one is given. */
CMD(cmd_redo)
{
    (void)key;
    kart__vi *v = &ed->vi;
    kart__vi_change c = v->last;
    if (c.cmd == 0)
        return bell(ed);
    int n = ed->explicit_arg ? clamp_count(count) : clamp_count(c.count);
    v->redoing = true;
    int r = 0;
    switch (c.cmd) {
    case 'd':
    case 'c':
    case 'y':
        r = apply_op(ed, c.cmd, n, c.motion, c.arg, c.arg_len);
        break;
    case 'i':
    case 'a':
    case 'I':
    case 'A':
    case 'R':
        if (c.cmd == 'a' && ed->point < ed->line.len)
            ed->point = kart__next_char(ed, ed->point);
        else if (c.cmd == 'A')
            ed->point = ed->line.len;
        else if (c.cmd == 'I')
            ed->point = 0;
        if (v->ins.len == 0) {
            /* nothing was typed: GNU runs the command itself, into
             * insert mode */
            v->redoing = false;
            start_inserting(ed, c.cmd);
            break;
        }
        r = insert_text(ed, v->ins.p, v->ins.len, n, c.cmd == 'R');
        if (ed->point > 0)
            ed->point = kart__prev_char(ed, ed->point);
        break;
    case 'p':
    case 'P':
        r = put(ed, c.cmd, n);
        break;
    case '~':
        r = change_case(ed, n);
        break;
    case 'r':
        change_char(ed, n, c.arg, c.arg_len);
        break;
    default:
        r = bell(ed);
        break;
    }
    v->redoing = false;
    return r;
}

/* / and ?: the non-incremental history search, GNU's '/' going back in
 * time. The string is typed with the vi-insert keys; ESC cancels. */
static bool search_mode(kart_line *ed, const kart__key *k)
{
    kart__line_mode_fn inner = ed->vi.search_inner;
    kart__key abort_key;
    if (k->kind == KART__KEY_BOUND && k->binding.kind == KART__BIND_FN &&
        k->binding.fn == KART__FN_VI_MOVEMENT_MODE) {
        memset(&abort_key, 0, sizeof(abort_key));
        abort_key.kind = KART__KEY_BOUND;
        abort_key.binding.kind = KART__BIND_FN;
        abort_key.binding.fn = KART__FN_ABORT;
        k = &abort_key;
    }
    ed->mode_fn = inner;
    bool used = inner(ed, k);
    if (ed->mode_fn == inner) {
        ed->mode_fn = search_mode;
        return used;
    }
    /* the search is over: back to command mode */
    ed->vi.search_inner = NULL;
    ed->map = KART__MAP_VI_COMMAND;
    kart__vi_after_command(ed);
    return used;
}

CMD(cmd_search)
{
    char k = key_char(key);
    if (k != '/' && k != '?')
        return bell(ed);
    kart__line_run(ed,
                   k == '/' ? KART__FN_NON_INCREMENTAL_REVERSE_SEARCH_HISTORY
                            : KART__FN_NON_INCREMENTAL_FORWARD_SEARCH_HISTORY,
                   count, key);
    if (!ed->mode_fn)
        return 1;
    ed->vi.search_inner = ed->mode_fn;
    ed->mode_fn = search_mode;
    char prompt[2] = {k, 0};
    free(ed->mode_prompt);
    ed->mode_prompt = strdup(prompt);
    ed->map = KART__MAP_VI_INSERT;
    kart__display_invalidate(ed);
    return 0;
}

CMD(cmd_search_again)
{
    char k = key_char(key);
    kart__line_run(ed,
                   k == 'N' ? KART__FN_NON_INCREMENTAL_FORWARD_SEARCH_HISTORY_AGAIN
                            : KART__FN_NON_INCREMENTAL_REVERSE_SEARCH_HISTORY_AGAIN,
                   count, key);
    return 0;
}

CMD(cmd_fetch_history)
{
    kart__line_run(ed, KART__FN_FETCH_HISTORY, count, key);
    return 0;
}

/* * = \: completion of the word the cursor is on (GNU moves past its
 * end first); * and \ then go on in insert mode. */
CMD(cmd_complete)
{
    (void)count;
    char k = key_char(key);
    if (ed->point < ed->line.len && !kart__vi_blank(kart__char_at(ed, ed->point, NULL))) {
        size_t nx = kart__next_char(ed, ed->point);
        size_t t;
        if (nx < ed->line.len && !kart__vi_blank(kart__char_at(ed, nx, NULL)) &&
            kart__vi_motion(ed, 'E', 1, NULL, 0, false, &t))
            ed->point = t;
        ed->point = kart__next_char(ed, ed->point);
    }
    enum kart__line_fn fn = k == '*'   ? KART__FN_INSERT_COMPLETIONS
                            : k == '=' ? KART__FN_POSSIBLE_COMPLETIONS
                                       : KART__FN_COMPLETE;
    kart__line_run(ed, fn, 1, key);
    if (k == '*' || k == '\\')
        start_inserting(ed, k);
    return 0;
}

CMD(cmd_tilde_expand)
{
    kart__line_run(ed, KART__FN_TILDE_EXPAND, count, key);
    /* GNU replaces the whole word, leaving the cursor after it */
    while (ed->point < ed->line.len && !kart__vi_blank(kart__char_at(ed, ed->point, NULL)))
        ed->point = kart__next_char(ed, ed->point);
    start_inserting(ed, '&');
    return 0;
}

/* _: the previous line's last word (with a count, its count-th), after
 * the cursor and a blank, in insert mode (GNU's rl_vi_yank_arg). */
CMD(cmd_yank_arg)
{
    if (ed->point < ed->line.len)
        ed->point = kart__next_char(ed, ed->point);
    start_inserting(ed, '_');
    kart__edit_insert(ed, ed->point, " ", 1);
    if (ed->explicit_arg)
        kart__line_run(ed, KART__FN_YANK_NTH_ARG, count - 1, key);
    else
        kart__line_run(ed, KART__FN_YANK_LAST_ARG, 1, key);
    return 0;
}

CMD(cmd_yank_pop)
{
    kart__line_run(ed, KART__FN_YANK_POP, count, key);
    return 0;
}

CMD(cmd_unix_word_rubout)
{
    kart__line_run(ed, KART__FN_UNIX_WORD_RUBOUT, count, key);
    return 0;
}

/* C-d: GNU's vi-eof-maybe accepts the line (the tty's EOF character on an
 * empty line ends input before any key is looked up). */
CMD(cmd_eof_maybe)
{
    (void)count;
    (void)key;
    kart__line_finish(ed, KART__DONE_LINE, 0);
    return 0;
}

/* ---- hooks ---- */

void kart__vi_after_command(kart_line *ed)
{
    if (ed->map != KART__MAP_VI_COMMAND || ed->mode_fn || ed->raw_fn)
        return;
    if (ed->hpos != ed->vi.cmd_hpos)
        ed->point = 0; /* a history move in command mode starts at 0 */
    if (ed->point > 0 && ed->point >= ed->line.len)
        ed->point = kart__prev_char(ed, ed->line.len);
}

void kart__vi_reset_line(kart_line *ed)
{
    kart__vi *v = &ed->vi;
    v->in_session = false;
    v->cmd_once = false;
    v->redoing = false;
    v->marks_set = 0;
    v->pending.cmd = 0;
    v->want = 0;
    /* GNU's _rl_vi_reset_last: a line starts as if 'i' had been typed */
    v->last.cmd = 'i';
    v->last.count = 1;
    v->insert_key = 'i';
}

void kart__vi_cancel(kart_line *ed)
{
    kart__vi *v = &ed->vi;
    if (ed->mode_fn == search_mode && v->search_inner) {
        ed->mode_fn = v->search_inner;
        kart__search_cancel(ed);
    }
    if (ed->mode_fn == op_key)
        ed->mode_fn = NULL;
    if (ed->raw_fn == raw_char)
        ed->raw_fn = NULL;
    v->search_inner = NULL;
    v->pending.cmd = 0;
    v->want = 0;
}

void kart__vi_free(kart_line *ed)
{
    kart__lbuf_free(&ed->vi.ins);
}

const kart__line_cmd kart__line_vi_cmds[KART__FN_COUNT] = {
    [KART__FN_VI_APPEND_EOL] = cmd_append_eol,
    [KART__FN_VI_APPEND_MODE] = cmd_append_mode,
    [KART__FN_VI_ARG_DIGIT] = cmd_arg_digit,
    [KART__FN_VI_BACK_TO_INDENT] = cmd_first_print,
    [KART__FN_VI_BACKWARD_BIGWORD] = cmd_word_motion,
    [KART__FN_VI_BACKWARD_WORD] = cmd_word_motion,
    [KART__FN_VI_BWORD] = cmd_word_motion,
    [KART__FN_VI_BIG_BWORD] = cmd_word_motion,
    [KART__FN_VI_CHANGE_CASE] = cmd_change_case,
    [KART__FN_VI_CHANGE_CHAR] = cmd_change_char,
    [KART__FN_VI_CHANGE_TO] = cmd_operator,
    [KART__FN_VI_CHAR_SEARCH] = cmd_char_search,
    [KART__FN_VI_COLUMN] = cmd_column,
    [KART__FN_VI_COMPLETE] = cmd_complete,
    [KART__FN_VI_DELETE] = cmd_delete,
    [KART__FN_VI_DELETE_TO] = cmd_operator,
    [KART__FN_VI_END_BIGWORD] = cmd_word_motion,
    [KART__FN_VI_END_WORD] = cmd_word_motion,
    [KART__FN_VI_EOF_MAYBE] = cmd_eof_maybe,
    [KART__FN_VI_EWORD] = cmd_word_motion,
    [KART__FN_VI_BIG_EWORD] = cmd_word_motion,
    [KART__FN_VI_FETCH_HISTORY] = cmd_fetch_history,
    [KART__FN_VI_FIRST_PRINT] = cmd_first_print,
    [KART__FN_VI_FORWARD_BIGWORD] = cmd_word_motion,
    [KART__FN_VI_FORWARD_WORD] = cmd_word_motion,
    [KART__FN_VI_FWORD] = cmd_word_motion,
    [KART__FN_VI_BIG_FWORD] = cmd_word_motion,
    [KART__FN_VI_GOTO_MARK] = cmd_goto_mark,
    [KART__FN_VI_INSERT_BEG] = cmd_insert_beg,
    [KART__FN_VI_INSERTION_MODE] = cmd_insertion_mode,
    [KART__FN_VI_MATCH] = cmd_match,
    [KART__FN_VI_MOVEMENT_MODE] = cmd_movement_mode,
    [KART__FN_VI_NEXT_WORD] = cmd_word_motion,
    [KART__FN_VI_PREV_WORD] = cmd_word_motion,
    [KART__FN_VI_PUT] = cmd_put,
    [KART__FN_VI_REDO] = cmd_redo,
    [KART__FN_VI_REPLACE] = cmd_replace,
    [KART__FN_VI_RUBOUT] = cmd_rubout,
    [KART__FN_VI_SEARCH] = cmd_search,
    [KART__FN_VI_SEARCH_AGAIN] = cmd_search_again,
    [KART__FN_VI_SET_MARK] = cmd_set_mark,
    [KART__FN_VI_SUBST] = cmd_subst,
    [KART__FN_VI_TILDE_EXPAND] = cmd_tilde_expand,
    [KART__FN_VI_UNDO] = cmd_undo,
    [KART__FN_VI_UNIX_WORD_RUBOUT] = cmd_unix_word_rubout,
    [KART__FN_VI_YANK_ARG] = cmd_yank_arg,
    [KART__FN_VI_YANK_POP] = cmd_yank_pop,
    [KART__FN_VI_YANK_TO] = cmd_operator,
};

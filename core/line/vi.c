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
 * typed for '.' (vi_change.c, with the operators d c y and the characters
 * read raw). The motions themselves are vi_motion.c's.
 */
#include "vi_private.h"

#include <stdlib.h>
#include <string.h>

#define CMD(name) static int name(kart_line *ed, int count, const kart__key *key)

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

/* ---- the commands ---- */

CMD(cmd_movement_mode)
{
    (void)count;
    (void)key;
    if (ed->map != KART__MAP_VI_INSERT) {
        ed->map = KART__MAP_VI_COMMAND;
        return 0;
    }
    kart__vi_done_inserting(ed);
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

/* i a I A: into insert mode, '.' to insert the same text there. */
static int insert_mode(kart_line *ed, char k)
{
    if (k == 'a' && ed->point < ed->line.len)
        ed->point = kart__next_char(ed, ed->point);
    else if (k == 'A')
        ed->point = ed->line.len;
    else if (k == 'I')
        ed->point = 0;
    kart__vi_set_last(ed, k, 0, 1, NULL, 0);
    kart__vi_start_inserting(ed, k);
    return 0;
}

CMD(cmd_insertion_mode)
{
    (void)count;
    (void)key;
    return insert_mode(ed, 'i');
}

CMD(cmd_append_mode)
{
    (void)count;
    (void)key;
    return insert_mode(ed, 'a');
}

CMD(cmd_append_eol)
{
    (void)count;
    (void)key;
    return insert_mode(ed, 'A');
}

CMD(cmd_insert_beg)
{
    (void)count;
    (void)key;
    return insert_mode(ed, 'I');
}

CMD(cmd_replace)
{
    (void)key;
    kart__vi_set_last(ed, 'R', 0, kart__vi_count(count), NULL, 0);
    kart__vi_start_inserting(ed, 'R');
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
    if (!kart__vi_motion(ed, m, kart__vi_count(count), NULL, 0, false, &t))
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
    return kart__vi_want_char(ed, k, kart__vi_count(count));
}

CMD(cmd_change_char)
{
    (void)key;
    return kart__vi_want_char(ed, 'r', kart__vi_count(count));
}

CMD(cmd_set_mark)
{
    (void)key;
    (void)count;
    return kart__vi_want_char(ed, 'm', 1);
}

CMD(cmd_goto_mark)
{
    (void)key;
    (void)count;
    return kart__vi_want_char(ed, '`', 1);
}

/* d c y, and D C Y (to the end of the line, GNU's motion '$'). */
CMD(cmd_operator)
{
    char op = ed->this_fn == KART__FN_VI_DELETE_TO   ? 'd'
              : ed->this_fn == KART__FN_VI_CHANGE_TO ? 'c'
                                                     : 'y';
    char k = key_char(key);
    if (k >= 'A' && k <= 'Z')
        return kart__vi_apply_op(ed, op, kart__vi_count(count), '$', NULL, 0);
    return kart__vi_start_op(ed, op, kart__vi_count(count));
}

CMD(cmd_delete)
{
    (void)key;
    if (ed->line.len == 0)
        return bell(ed);
    return kart__vi_apply_op(ed, 'd', kart__vi_count(count), 'l', NULL, 0);
}

CMD(cmd_rubout)
{
    (void)key;
    if (ed->point == 0)
        return bell(ed);
    return kart__vi_apply_op(ed, 'd', kart__vi_count(count), 'h', NULL, 0);
}

CMD(cmd_subst)
{
    if (key_char(key) == 'S')
        return kart__vi_apply_op(ed, 'c', 1, 'c', NULL, 0);
    return kart__vi_apply_op(ed, 'c', kart__vi_count(count), 'l', NULL, 0);
}

CMD(cmd_change_case)
{
    (void)key;
    return kart__vi_change_case(ed, kart__vi_count(count));
}

CMD(cmd_put)
{
    return kart__vi_put(ed, key_char(key) == 'P' ? 'P' : 'p', kart__vi_count(count));
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
    int n = ed->explicit_arg ? kart__vi_count(count) : kart__vi_count(c.count);
    v->redoing = true;
    int r = 0;
    switch (c.cmd) {
    case 'd':
    case 'c':
    case 'y':
        r = kart__vi_apply_op(ed, c.cmd, n, c.motion, c.arg, c.arg_len);
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
            kart__vi_start_inserting(ed, c.cmd);
            break;
        }
        r = kart__vi_insert_text(ed, v->ins.p, v->ins.len, n, c.cmd == 'R');
        if (ed->point > 0)
            ed->point = kart__prev_char(ed, ed->point);
        break;
    case 'p':
    case 'P':
        r = kart__vi_put(ed, c.cmd, n);
        break;
    case '~':
        r = kart__vi_change_case(ed, n);
        break;
    case 'r':
        kart__vi_change_char(ed, n, c.arg, c.arg_len);
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
    /* ESC, and C-g (which vi-insert binds to self-insert), cancel */
    if ((k->kind == KART__KEY_BOUND && k->binding.kind == KART__BIND_FN &&
         k->binding.fn == KART__FN_VI_MOVEMENT_MODE) ||
        (k->len == 1 && k->bytes[0] == '\a')) {
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
        kart__vi_start_inserting(ed, k);
    return 0;
}

CMD(cmd_tilde_expand)
{
    kart__line_run(ed, KART__FN_TILDE_EXPAND, count, key);
    /* GNU replaces the whole word, leaving the cursor after it */
    while (ed->point < ed->line.len && !kart__vi_blank(kart__char_at(ed, ed->point, NULL)))
        ed->point = kart__next_char(ed, ed->point);
    kart__vi_start_inserting(ed, '&');
    return 0;
}

/* _: the previous line's last word (with a count, its count-th), after
 * the cursor and a blank, in insert mode (GNU's rl_vi_yank_arg). */
CMD(cmd_yank_arg)
{
    if (ed->point < ed->line.len)
        ed->point = kart__next_char(ed, ed->point);
    kart__vi_start_inserting(ed, '_');
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
    if (ed->point > 0 && ed->point >= ed->line.len) {
        ed->point = kart__prev_char(ed, ed->line.len);
        if (ed->this_fn == KART__FN_FORWARD_CHAR)
            kart__line_bell(ed); /* l on the last character, as GNU */
    }
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
    v->search_inner = NULL;
    kart__vi_change_cancel(ed);
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

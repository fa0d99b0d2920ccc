/*
 * core/line/keymap_default.c — GNU readline 8's default bindings: the
 * emacs map with its ESC (meta) and C-x parts (emacs_keymap.c), vi-insert
 * and vi-command (vi_keymap.c), and the terminal keys that readline.c and
 * terminal.c bind in all three.
 *
 * GNU binds the terminal keys at start-up from two places: a fixed list
 * of xterm/VT100 arrows and modified arrows (bind_arrow_keys_internal), and
 * the terminfo entry of $TERM (bind_termcap_arrow_keys: Home, End, Delete,
 * Insert, and since 8.2 Page Up/Down to history-search-backward/forward).
 * kart reads no terminfo, so the table below binds the forms that xterm,
 * VT100, rxvt, the Linux console, screen and tmux send, all at once; they
 * do not collide. Bindings that only bash makes (C-x C-e, M-C-e ...) and
 * those of functions newer than 8.2 (M-x execute-named-command) are left
 * out.
 */
#include "line_keymap.h"

#include <stdatomic.h>

#include <errno.h>

typedef struct {
    const char *seq;
    unsigned char len;
    unsigned char fn; /* enum kart__line_fn */
} kart__default_key;

/* clang-format off */
#define K(s, f) {s, sizeof(s) - 1, KART__FN_##f}
#define RANGE_END {NULL, 0, 0}

static const kart__default_key emacs_keys[] = {
    K("\0", SET_MARK),
    K("\x01", BEGINNING_OF_LINE),       K("\x02", BACKWARD_CHAR),
    K("\x04", DELETE_CHAR),             K("\x05", END_OF_LINE),
    K("\x06", FORWARD_CHAR),            K("\x07", ABORT),
    K("\x08", BACKWARD_DELETE_CHAR),    K("\x09", COMPLETE),
    K("\x0a", ACCEPT_LINE),             K("\x0b", KILL_LINE),
    K("\x0c", CLEAR_SCREEN),            K("\x0d", ACCEPT_LINE),
    K("\x0e", NEXT_HISTORY),            K("\x0f", OPERATE_AND_GET_NEXT),
    K("\x10", PREVIOUS_HISTORY),        K("\x11", QUOTED_INSERT),
    K("\x12", REVERSE_SEARCH_HISTORY),  K("\x13", FORWARD_SEARCH_HISTORY),
    K("\x14", TRANSPOSE_CHARS),         K("\x15", UNIX_LINE_DISCARD),
    K("\x16", QUOTED_INSERT),           K("\x17", UNIX_WORD_RUBOUT),
    K("\x19", YANK),                    K("\x1d", CHARACTER_SEARCH),
    K("\x1f", UNDO),                    K("\x7f", BACKWARD_DELETE_CHAR),
    /* C-x */
    K("\x18\x07", ABORT),               K("\x18\x12", RE_READ_INIT_FILE),
    K("\x18\x15", UNDO),                K("\x18\x18", EXCHANGE_POINT_AND_MARK),
    K("\x18(", START_KBD_MACRO),        K("\x18)", END_KBD_MACRO),
    K("\x18" "e", CALL_LAST_KBD_MACRO), K("\x18\x7f", BACKWARD_KILL_LINE),
    /* ESC, the meta keys */
    K("\x1b\x07", ABORT),               K("\x1b\x08", BACKWARD_KILL_WORD),
    K("\x1b\x09", TAB_INSERT),          K("\x1b\x0a", VI_EDITING_MODE),
    K("\x1b\x0c", CLEAR_DISPLAY),       K("\x1b\x0d", VI_EDITING_MODE),
    K("\x1b\x12", REVERT_LINE),         K("\x1b\x19", YANK_NTH_ARG),
    K("\x1b\x1b", COMPLETE),            K("\x1b\x1d", CHARACTER_SEARCH_BACKWARD),
    K("\x1b ", SET_MARK),               K("\x1b#", INSERT_COMMENT),
    K("\x1b&", TILDE_EXPAND),           K("\x1b*", INSERT_COMPLETIONS),
    K("\x1b-", DIGIT_ARGUMENT),         K("\x1b.", YANK_LAST_ARG),
    K("\x1b<", BEGINNING_OF_HISTORY),   K("\x1b=", POSSIBLE_COMPLETIONS),
    K("\x1b>", END_OF_HISTORY),         K("\x1b?", POSSIBLE_COMPLETIONS),
    K("\x1b\\", DELETE_HORIZONTAL_SPACE), K("\x1b_", YANK_LAST_ARG),
    K("\x1b" "b", BACKWARD_WORD),       K("\x1b" "c", CAPITALIZE_WORD),
    K("\x1b" "d", KILL_WORD),           K("\x1b" "f", FORWARD_WORD),
    K("\x1bl", DOWNCASE_WORD),          K("\x1bn", NON_INCREMENTAL_FORWARD_SEARCH_HISTORY),
    K("\x1bp", NON_INCREMENTAL_REVERSE_SEARCH_HISTORY),
    K("\x1br", REVERT_LINE),            K("\x1bt", TRANSPOSE_WORDS),
    K("\x1bu", UPCASE_WORD),            K("\x1by", YANK_POP),
    K("\x1b~", TILDE_EXPAND),           K("\x1b\x7f", BACKWARD_KILL_WORD),
    RANGE_END,
};

static const kart__default_key vi_insert_keys[] = {
    K("\x04", VI_EOF_MAYBE),            K("\x08", BACKWARD_DELETE_CHAR),
    K("\x09", COMPLETE),                K("\x0a", ACCEPT_LINE),
    K("\x0d", ACCEPT_LINE),             K("\x0e", MENU_COMPLETE),
    K("\x10", MENU_COMPLETE_BACKWARD),  K("\x12", REVERSE_SEARCH_HISTORY),
    K("\x13", FORWARD_SEARCH_HISTORY),  K("\x14", TRANSPOSE_CHARS),
    K("\x15", UNIX_LINE_DISCARD),       K("\x16", QUOTED_INSERT),
    K("\x17", VI_UNIX_WORD_RUBOUT),     K("\x19", YANK),
    K("\x1b", VI_MOVEMENT_MODE),        K("\x1f", VI_UNDO),
    K("\x7f", BACKWARD_DELETE_CHAR),
    RANGE_END,
};

static const kart__default_key vi_command_keys[] = {
    K("\x04", VI_EOF_MAYBE),            K("\x05", EMACS_EDITING_MODE),
    K("\x07", ABORT),                   K("\x08", BACKWARD_CHAR),
    K("\x0a", ACCEPT_LINE),             K("\x0b", KILL_LINE),
    K("\x0c", CLEAR_SCREEN),            K("\x0d", ACCEPT_LINE),
    K("\x0e", NEXT_HISTORY),            K("\x10", PREVIOUS_HISTORY),
    K("\x11", QUOTED_INSERT),           K("\x12", REVERSE_SEARCH_HISTORY),
    K("\x13", FORWARD_SEARCH_HISTORY),  K("\x14", TRANSPOSE_CHARS),
    K("\x15", UNIX_LINE_DISCARD),       K("\x16", QUOTED_INSERT),
    K("\x17", VI_UNIX_WORD_RUBOUT),     K("\x19", YANK),
    K("\x1f", VI_UNDO),
    K(" ", FORWARD_CHAR),               K("#", INSERT_COMMENT),
    K("$", END_OF_LINE),                K("%", VI_MATCH),
    K("&", VI_TILDE_EXPAND),            K("*", VI_COMPLETE),
    K("+", NEXT_HISTORY),               K(",", VI_CHAR_SEARCH),
    K("-", PREVIOUS_HISTORY),           K(".", VI_REDO),
    K("/", VI_SEARCH),                  K("0", BEGINNING_OF_LINE),
    K(";", VI_CHAR_SEARCH),             K("=", VI_COMPLETE),
    K("?", VI_SEARCH),
    K("A", VI_APPEND_EOL),              K("B", VI_PREV_WORD),
    K("C", VI_CHANGE_TO),               K("D", VI_DELETE_TO),
    K("E", VI_END_WORD),                K("F", VI_CHAR_SEARCH),
    K("G", VI_FETCH_HISTORY),           K("I", VI_INSERT_BEG),
    K("N", VI_SEARCH_AGAIN),            K("P", VI_PUT),
    K("R", VI_REPLACE),                 K("S", VI_SUBST),
    K("T", VI_CHAR_SEARCH),             K("U", REVERT_LINE),
    K("W", VI_NEXT_WORD),               K("X", VI_RUBOUT),
    K("Y", VI_YANK_TO),                 K("\\", VI_COMPLETE),
    K("^", VI_FIRST_PRINT),             K("_", VI_YANK_ARG),
    K("`", VI_GOTO_MARK),
    K("a", VI_APPEND_MODE),             K("b", VI_PREV_WORD),
    K("c", VI_CHANGE_TO),               K("d", VI_DELETE_TO),
    K("e", VI_END_WORD),                K("f", VI_CHAR_SEARCH),
    K("h", BACKWARD_CHAR),              K("i", VI_INSERTION_MODE),
    K("j", NEXT_HISTORY),               K("k", PREVIOUS_HISTORY),
    K("l", FORWARD_CHAR),               K("m", VI_SET_MARK),
    K("n", VI_SEARCH_AGAIN),            K("p", VI_PUT),
    K("r", VI_CHANGE_CHAR),             K("s", VI_SUBST),
    K("t", VI_CHAR_SEARCH),             K("u", VI_UNDO),
    K("w", VI_NEXT_WORD),               K("x", VI_DELETE),
    K("y", VI_YANK_TO),                 K("|", VI_COLUMN),
    K("~", VI_CHANGE_CASE),
    RANGE_END,
};

/* The terminal keys, in all three maps. */
static const kart__default_key terminal_keys[] = {
    /* Arrows, normal (CSI) and application (SS3) cursor mode. */
    K("\x1b[A", PREVIOUS_HISTORY),      K("\x1b[B", NEXT_HISTORY),
    K("\x1b[C", FORWARD_CHAR),          K("\x1b[D", BACKWARD_CHAR),
    K("\x1bOA", PREVIOUS_HISTORY),      K("\x1bOB", NEXT_HISTORY),
    K("\x1bOC", FORWARD_CHAR),          K("\x1bOD", BACKWARD_CHAR),
    /* Home and End: xterm both modes, VT220/Linux/screen/tmux, rxvt. */
    K("\x1b[H", BEGINNING_OF_LINE),     K("\x1b[F", END_OF_LINE),
    K("\x1bOH", BEGINNING_OF_LINE),     K("\x1bOF", END_OF_LINE),
    K("\x1b[1~", BEGINNING_OF_LINE),    K("\x1b[4~", END_OF_LINE),
    K("\x1b[7~", BEGINNING_OF_LINE),    K("\x1b[8~", END_OF_LINE),
    /* Insert, Delete, Page Up, Page Down (terminfo's kI kD kP kN). */
    K("\x1b[2~", OVERWRITE_MODE),       K("\x1b[3~", DELETE_CHAR),
    K("\x1b[5~", HISTORY_SEARCH_BACKWARD), K("\x1b[6~", HISTORY_SEARCH_FORWARD),
    /* Ctrl (5) and Alt (3) arrows move by words, Ctrl-Delete kills one
     * (GNU's list); also the old xterm and rxvt Ctrl arrows. */
    K("\x1b[1;5C", FORWARD_WORD),       K("\x1b[1;5D", BACKWARD_WORD),
    K("\x1b[1;3C", FORWARD_WORD),       K("\x1b[1;3D", BACKWARD_WORD),
    K("\x1b[5C", FORWARD_WORD),         K("\x1b[5D", BACKWARD_WORD),
    K("\x1bOc", FORWARD_WORD),          K("\x1bOd", BACKWARD_WORD),
    K("\x1b[3;5~", KILL_WORD),
    /* Shift (2) arrows as plain ones; Shift, Alt, Ctrl Home and End. */
    K("\x1b[1;2C", FORWARD_CHAR),       K("\x1b[1;2D", BACKWARD_CHAR),
    K("\x1b[1;2H", BEGINNING_OF_LINE),  K("\x1b[1;2F", END_OF_LINE),
    K("\x1b[1;3H", BEGINNING_OF_LINE),  K("\x1b[1;3F", END_OF_LINE),
    K("\x1b[1;5H", BEGINNING_OF_LINE),  K("\x1b[1;5F", END_OF_LINE),
    RANGE_END,
};
/* clang-format on */

/* The bracketed-paste start: emacs and vi-insert, as GNU (readline.c's
 * bind_bracketed_paste_prefix leaves vi-command out). */
static const char paste_begin[] = "\x1b[200~";

static int bind_table(kart__keymap *map, const kart__default_key *t)
{
    for (; t->seq; t++) {
        int err = kart__keymap_bind_fn(map, t->seq, t->len, (enum kart__line_fn)t->fn);
        if (err)
            return err;
    }
    return 0;
}

/* Binds the single bytes lo..hi, after prefix (0 for none). */
static int bind_range(kart__keymap *map, char prefix, unsigned lo, unsigned hi,
                      enum kart__line_fn fn)
{
    for (unsigned c = lo; c <= hi; c++) {
        char seq[2] = {prefix, (char)c};
        int err = prefix ? kart__keymap_bind_fn(map, seq, 2, fn)
                         : kart__keymap_bind_fn(map, seq + 1, 1, fn);
        if (err)
            return err;
    }
    return 0;
}

static int fill(kart__keymap *map, kart__map_id id)
{
    int err = 0;
    switch (id) {
    case KART__MAP_EMACS:
        /* Printable ASCII, and every byte from 0x80: the 8-bit and UTF-8
         * characters (the reader joins a UTF-8 character's bytes). */
        err = bind_range(map, 0, 0x20, 0x7e, KART__FN_SELF_INSERT);
        err = err ? err : bind_range(map, 0, 0x80, 0xff, KART__FN_SELF_INSERT);
        /* M-A..M-Z and C-x A..Z run their lower-case keys. */
        err = err ? err : bind_range(map, 0x1b, 'A', 'Z', KART__FN_DO_LOWERCASE_VERSION);
        err = err ? err : bind_range(map, 0x18, 'A', 'Z', KART__FN_DO_LOWERCASE_VERSION);
        err = err ? err : bind_range(map, 0x1b, '0', '9', KART__FN_DIGIT_ARGUMENT);
        err = err ? err : bind_table(map, emacs_keys);
        break;
    case KART__MAP_VI_INSERT:
        /* Every key inserts itself but the ones the table binds (GNU's
         * vi-insert binds C-a, C-b ... to self-insert too); C-@ is
         * unbound. */
        err = bind_range(map, 0, 0x01, 0x7e, KART__FN_SELF_INSERT);
        err = err ? err : bind_range(map, 0, 0x80, 0xff, KART__FN_SELF_INSERT);
        err = err ? err : bind_table(map, vi_insert_keys);
        break;
    case KART__MAP_VI_COMMAND:
        err = bind_range(map, 0, '1', '9', KART__FN_VI_ARG_DIGIT);
        err = err ? err : bind_table(map, vi_command_keys);
        break;
    default:
        return -EINVAL;
    }
    err = err ? err : bind_table(map, terminal_keys);
    if (!err && id != KART__MAP_VI_COMMAND)
        err = kart__keymap_bind_fn(map, paste_begin, sizeof(paste_begin) - 1,
                                   KART__FN_BRACKETED_PASTE_BEGIN);
    return err;
}

/* The process's default maps, built on first use. Published with a
 * compare-and-swap rather than under a lock or pthread_once: a thread that
 * loses the race frees its own copy, a failed build (no memory) can be
 * tried again, and nothing is held across fork. */
static _Atomic(kart__keymap *) defaults[KART__MAP_COUNT];

static int default_map(kart__map_id id, const kart__keymap **out)
{
    kart__keymap *map = atomic_load_explicit(&defaults[id], memory_order_acquire);
    if (!map) {
        int err = kart__keymap_create(&map);
        if (err)
            return err;
        err = fill(map, id);
        if (err) {
            kart__keymap_free(map);
            return err;
        }
        kart__keymap *none = NULL;
        if (!atomic_compare_exchange_strong_explicit(&defaults[id], &none, map,
                                                     memory_order_acq_rel, memory_order_acquire)) {
            kart__keymap_free(map);
            map = none;
        }
    }
    *out = map;
    return 0;
}

int kart__keymap_create_default(kart__keymap **out, kart__map_id id)
{
    if ((int)id < 0 || id >= KART__MAP_COUNT)
        return -EINVAL;
    const kart__keymap *shared;
    int err = default_map(id, &shared);
    return err ? err : kart__keymap_share(out, shared);
}

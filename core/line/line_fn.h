/*
 * core/line/line_fn.h — the bindable functions of the line editor: GNU
 * readline's names (its funmap), one id each.
 *
 * The keymap (line_keymap.h) and the inputrc parser (inputrc.h) name
 * functions by these ids; the editor (line.c and its files) runs them. A
 * name listed here that the editor does not implement rings the bell when
 * its key is pressed; a name not listed is an inputrc error ("unknown
 * function"), reported and skipped, as GNU readline does.
 */
#ifndef KART_LINE_FN_H
#define KART_LINE_FN_H

#include <stdbool.h>
#include <stddef.h>

/* X(ID, "name"): one per row. */
/* clang-format off */
#define KART__LINE_FUNCTIONS(X)                                                 \
    X(ABORT, "abort")                                                           \
    X(ACCEPT_LINE, "accept-line")                                               \
    X(BACKWARD_BYTE, "backward-byte")                                           \
    X(BACKWARD_CHAR, "backward-char")                                           \
    X(BACKWARD_DELETE_CHAR, "backward-delete-char")                             \
    X(BACKWARD_KILL_LINE, "backward-kill-line")                                 \
    X(BACKWARD_KILL_WORD, "backward-kill-word")                                 \
    X(BACKWARD_WORD, "backward-word")                                           \
    X(BEGINNING_OF_HISTORY, "beginning-of-history")                             \
    X(BEGINNING_OF_LINE, "beginning-of-line")                                   \
    X(BRACKETED_PASTE_BEGIN, "bracketed-paste-begin")                           \
    X(CALL_LAST_KBD_MACRO, "call-last-kbd-macro")                               \
    X(CAPITALIZE_WORD, "capitalize-word")                                       \
    X(CHARACTER_SEARCH, "character-search")                                     \
    X(CHARACTER_SEARCH_BACKWARD, "character-search-backward")                   \
    X(CLEAR_DISPLAY, "clear-display")                                           \
    X(CLEAR_SCREEN, "clear-screen")                                             \
    X(COMPLETE, "complete")                                                     \
    X(COPY_BACKWARD_WORD, "copy-backward-word")                                 \
    X(COPY_FORWARD_WORD, "copy-forward-word")                                   \
    X(COPY_REGION_AS_KILL, "copy-region-as-kill")                               \
    X(DELETE_CHAR, "delete-char")                                               \
    X(DELETE_CHAR_OR_LIST, "delete-char-or-list")                               \
    X(DELETE_HORIZONTAL_SPACE, "delete-horizontal-space")                       \
    X(DIGIT_ARGUMENT, "digit-argument")                                         \
    X(DO_LOWERCASE_VERSION, "do-lowercase-version")                             \
    X(DOWNCASE_WORD, "downcase-word")                                           \
    X(DUMP_FUNCTIONS, "dump-functions")                                         \
    X(DUMP_MACROS, "dump-macros")                                               \
    X(DUMP_VARIABLES, "dump-variables")                                         \
    X(EMACS_EDITING_MODE, "emacs-editing-mode")                                 \
    X(END_KBD_MACRO, "end-kbd-macro")                                           \
    X(END_OF_FILE, "end-of-file")                                               \
    X(END_OF_HISTORY, "end-of-history")                                         \
    X(END_OF_LINE, "end-of-line")                                               \
    X(EXCHANGE_POINT_AND_MARK, "exchange-point-and-mark")                       \
    X(FETCH_HISTORY, "fetch-history")                                           \
    X(FORWARD_BACKWARD_DELETE_CHAR, "forward-backward-delete-char")             \
    X(FORWARD_BYTE, "forward-byte")                                             \
    X(FORWARD_CHAR, "forward-char")                                             \
    X(FORWARD_SEARCH_HISTORY, "forward-search-history")                         \
    X(FORWARD_WORD, "forward-word")                                             \
    X(HISTORY_SEARCH_BACKWARD, "history-search-backward")                       \
    X(HISTORY_SEARCH_FORWARD, "history-search-forward")                         \
    X(HISTORY_SUBSTRING_SEARCH_BACKWARD, "history-substring-search-backward")   \
    X(HISTORY_SUBSTRING_SEARCH_FORWARD, "history-substring-search-forward")     \
    X(INSERT_COMMENT, "insert-comment")                                         \
    X(INSERT_COMPLETIONS, "insert-completions")                                 \
    X(KILL_LINE, "kill-line")                                                   \
    X(KILL_REGION, "kill-region")                                               \
    X(KILL_WHOLE_LINE, "kill-whole-line")                                       \
    X(KILL_WORD, "kill-word")                                                   \
    X(MENU_COMPLETE, "menu-complete")                                           \
    X(MENU_COMPLETE_BACKWARD, "menu-complete-backward")                         \
    X(NEXT_HISTORY, "next-history")                                             \
    X(NEXT_SCREEN_LINE, "next-screen-line")                                     \
    X(NON_INCREMENTAL_FORWARD_SEARCH_HISTORY,                                   \
      "non-incremental-forward-search-history")                                 \
    X(NON_INCREMENTAL_FORWARD_SEARCH_HISTORY_AGAIN,                             \
      "non-incremental-forward-search-history-again")                           \
    X(NON_INCREMENTAL_REVERSE_SEARCH_HISTORY,                                   \
      "non-incremental-reverse-search-history")                                 \
    X(NON_INCREMENTAL_REVERSE_SEARCH_HISTORY_AGAIN,                             \
      "non-incremental-reverse-search-history-again")                           \
    X(OLD_MENU_COMPLETE, "old-menu-complete")                                   \
    X(OPERATE_AND_GET_NEXT, "operate-and-get-next")                             \
    X(OVERWRITE_MODE, "overwrite-mode")                                         \
    X(POSSIBLE_COMPLETIONS, "possible-completions")                             \
    X(PREFIX_META, "prefix-meta")                                               \
    X(PREVIOUS_HISTORY, "previous-history")                                     \
    X(PREVIOUS_SCREEN_LINE, "previous-screen-line")                             \
    X(PRINT_LAST_KBD_MACRO, "print-last-kbd-macro")                             \
    X(QUOTED_INSERT, "quoted-insert")                                           \
    X(RE_READ_INIT_FILE, "re-read-init-file")                                   \
    X(REDRAW_CURRENT_LINE, "redraw-current-line")                               \
    X(REVERSE_SEARCH_HISTORY, "reverse-search-history")                         \
    X(REVERT_LINE, "revert-line")                                               \
    X(SELF_INSERT, "self-insert")                                               \
    X(SET_MARK, "set-mark")                                                     \
    X(SKIP_CSI_SEQUENCE, "skip-csi-sequence")                                   \
    X(START_KBD_MACRO, "start-kbd-macro")                                       \
    X(TAB_INSERT, "tab-insert")                                                 \
    X(TILDE_EXPAND, "tilde-expand")                                             \
    X(TRANSPOSE_CHARS, "transpose-chars")                                       \
    X(TRANSPOSE_WORDS, "transpose-words")                                       \
    X(TTY_STATUS, "tty-status")                                                 \
    X(UNDO, "undo")                                                             \
    X(UNIVERSAL_ARGUMENT, "universal-argument")                                 \
    X(UNIX_FILENAME_RUBOUT, "unix-filename-rubout")                             \
    X(UNIX_LINE_DISCARD, "unix-line-discard")                                   \
    X(UNIX_WORD_RUBOUT, "unix-word-rubout")                                     \
    X(UPCASE_WORD, "upcase-word")                                               \
    X(VI_APPEND_EOL, "vi-append-eol")                                           \
    X(VI_APPEND_MODE, "vi-append-mode")                                         \
    X(VI_ARG_DIGIT, "vi-arg-digit")                                             \
    X(VI_BACK_TO_INDENT, "vi-back-to-indent")                                   \
    X(VI_BACKWARD_BIGWORD, "vi-backward-bigword")                               \
    X(VI_BACKWARD_WORD, "vi-backward-word")                                     \
    X(VI_BWORD, "vi-bword")                                                     \
    X(VI_BIG_BWORD, "vi-bWord")                                                 \
    X(VI_CHANGE_CASE, "vi-change-case")                                         \
    X(VI_CHANGE_CHAR, "vi-change-char")                                         \
    X(VI_CHANGE_TO, "vi-change-to")                                             \
    X(VI_CHAR_SEARCH, "vi-char-search")                                         \
    X(VI_COLUMN, "vi-column")                                                   \
    X(VI_COMPLETE, "vi-complete")                                               \
    X(VI_DELETE, "vi-delete")                                                   \
    X(VI_DELETE_TO, "vi-delete-to")                                             \
    X(VI_EDITING_MODE, "vi-editing-mode")                                       \
    X(VI_END_BIGWORD, "vi-end-bigword")                                         \
    X(VI_END_WORD, "vi-end-word")                                               \
    X(VI_EOF_MAYBE, "vi-eof-maybe")                                             \
    X(VI_EWORD, "vi-eword")                                                     \
    X(VI_BIG_EWORD, "vi-eWord")                                                 \
    X(VI_FETCH_HISTORY, "vi-fetch-history")                                     \
    X(VI_FIRST_PRINT, "vi-first-print")                                         \
    X(VI_FORWARD_BIGWORD, "vi-forward-bigword")                                 \
    X(VI_FORWARD_WORD, "vi-forward-word")                                       \
    X(VI_FWORD, "vi-fword")                                                     \
    X(VI_BIG_FWORD, "vi-fWord")                                                 \
    X(VI_GOTO_MARK, "vi-goto-mark")                                             \
    X(VI_INSERT_BEG, "vi-insert-beg")                                           \
    X(VI_INSERTION_MODE, "vi-insertion-mode")                                   \
    X(VI_MATCH, "vi-match")                                                     \
    X(VI_MOVEMENT_MODE, "vi-movement-mode")                                     \
    X(VI_NEXT_WORD, "vi-next-word")                                             \
    X(VI_OVERSTRIKE, "vi-overstrike")                                           \
    X(VI_OVERSTRIKE_DELETE, "vi-overstrike-delete")                             \
    X(VI_PREV_WORD, "vi-prev-word")                                             \
    X(VI_PUT, "vi-put")                                                         \
    X(VI_REDO, "vi-redo")                                                       \
    X(VI_REPLACE, "vi-replace")                                                 \
    X(VI_RUBOUT, "vi-rubout")                                                   \
    X(VI_SEARCH, "vi-search")                                                   \
    X(VI_SEARCH_AGAIN, "vi-search-again")                                       \
    X(VI_SET_MARK, "vi-set-mark")                                               \
    X(VI_SUBST, "vi-subst")                                                     \
    X(VI_TILDE_EXPAND, "vi-tilde-expand")                                       \
    X(VI_UNDO, "vi-undo")                                                       \
    X(VI_UNIX_WORD_RUBOUT, "vi-unix-word-rubout")                               \
    X(VI_YANK_ARG, "vi-yank-arg")                                               \
    X(VI_YANK_POP, "vi-yank-pop")                                               \
    X(VI_YANK_TO, "vi-yank-to")                                                 \
    X(YANK, "yank")                                                             \
    X(YANK_LAST_ARG, "yank-last-arg")                                           \
    X(YANK_NTH_ARG, "yank-nth-arg")                                             \
    X(YANK_POP, "yank-pop")

#define KART__LINE_FN_ID(id, name) KART__FN_##id,
enum kart__line_fn {
    KART__FN_NONE = 0,
    KART__LINE_FUNCTIONS(KART__LINE_FN_ID)
    KART__FN_COUNT
};
#undef KART__LINE_FN_ID
/* clang-format on */

/* The GNU name of a function ("backward-char"); NULL for KART__FN_NONE or
 * an id out of range. */
const char *kart__line_fn_name(enum kart__line_fn fn);

/* The function a name stands for (case-insensitive, as GNU readline's
 * rl_named_function); KART__FN_NONE if no function has that name. */
enum kart__line_fn kart__line_fn_lookup(const char *name, size_t len);

/* Whether a (alen bytes) equals the NUL-terminated b, ignoring the case of
 * ASCII letters only (not the locale's): the comparison of GNU's names,
 * shared by the keymap, settings and inputrc parts. */
bool kart__line_name_eq(const char *a, size_t alen, const char *b);

#endif

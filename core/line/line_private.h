/*
 * core/line/line_private.h — the line editor's state (struct kart_line)
 * and the helpers its files share:
 *
 *   line.c         the object, options, the three drive modes, the public
 *                  calls, the input loop and the key dispatcher
 *   term.c         raw mode and its restoration, the window size, the
 *                  blocking mode's signal handlers
 *   render.c       UTF-8 widths, the layout of prompt and line, minimal
 *                  redraw with wrapping or horizontal scrolling
 *   edit.c         the buffer primitives (insert, delete, undo, kill ring)
 *                  and the emacs commands, and the command table
 *   search.c       incremental and non-incremental history search, the
 *                  history moves
 *   complete_ui.c  completion: the word, the candidates, listing, paging
 *
 *   vi.c           the vi mode: its commands (kart__line_vi_cmds), '.', the
 *                  / and ? searches
 *   vi_change.c    insert sessions, the operators d c y, the characters
 *                  read raw (f t r m), r ~ p (vi_private.h: their calls)
 *   vi_motion.c    the vi mode's motions (w b e f t % ...), shared by the
 *                  motion commands and the operators
 */
#ifndef KART_LINE_PRIVATE_H
#define KART_LINE_PRIVATE_H

#include <kart/line.h>

#include "inputrc.h"
#include "line_fn.h"
#include "line_keymap.h"
#include "line_settings.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

/* ---- small growable byte buffer ---- */

typedef struct kart__lbuf {
    char *p;
    size_t len, cap;
} kart__lbuf;

int kart__lbuf_reserve(kart__lbuf *b, size_t extra);
int kart__lbuf_add(kart__lbuf *b, const void *data, size_t n);
int kart__lbuf_adds(kart__lbuf *b, const char *s);
int kart__lbuf_addf(kart__lbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kart__lbuf_free(kart__lbuf *b);

/* ---- undo ---- */

typedef enum {
    KART__UNDO_INSERT, /* text was inserted at [start, end) */
    KART__UNDO_DELETE, /* text (len bytes) was deleted at start */
    KART__UNDO_BEGIN,  /* a group: everything down to the matching */
    KART__UNDO_END,    /* BEGIN is undone by one undo */
} kart__undo_kind;

typedef struct kart__undo {
    kart__undo_kind kind;
    size_t start, end;
    char *text; /* DELETE: the deleted bytes (end - start of them) */
} kart__undo;

typedef struct kart__undo_list {
    kart__undo *v;
    size_t n, cap;
} kart__undo_list;

void kart__undo_list_free(kart__undo_list *u);

/* ---- history lines edited during this line (GNU keeps them until the
 * line is accepted) ---- */

typedef struct kart__hline {
    char *text;
    size_t len;
    kart__undo_list undo;
    bool used;
} kart__hline;

/* ---- display ---- */

/* Where a glyph goes: row (from the prompt's last line, 0) and column. */
typedef struct kart__pos {
    uint32_t row, col;
} kart__pos;

typedef struct kart__display {
    bool shown;      /* a prompt and line are on the screen */
    bool full;       /* redraw all of it at the next refresh */
    size_t dirty;    /* the buffer differs from the screen from here on
                        * (SIZE_MAX: it does not) */
    bool dirty_back; /* and the character before dirty too (a combining
                        * mark came or went) */
    /* The layout of the buffer: lpos[i] is where byte i's character
     * starts (continuation bytes share it), lpos[len] the end; valid for
     * [0, lay_valid]. */
    kart__pos *lpos;
    size_t lpos_cap;
    size_t lay_valid;  /* SIZE_MAX: nothing valid */
    kart__pos pend;    /* where the prompt's last line ends */
    uint32_t pre_rows; /* rows of the prompt above its last line */
    /* The screen. */
    uint32_t crow, ccol; /* the cursor (ccol == cols: pending wrap) */
    uint32_t maxrow;     /* the lowest row written since the prompt */
    kart__pos old_end;   /* where the text on the screen ends */
    size_t hoff;         /* horizontal mode: first column shown */
    size_t old_hoff;
    bool old_more;       /* horizontal mode: '>' is shown */
    unsigned cols, rows; /* the size the screen was drawn for */
} kart__display;

/* ---- the completion of one Tab ---- */

typedef struct kart__completion {
    char **v; /* candidates (malloc'd) */
    size_t n, cap;
    bool filenames; /* filename completion made them (mark dirs) */
    bool in_hook;   /* kart_line_add_completion is allowed */
} kart__completion;

/* ---- modes that take keys before the keymap does ---- */

struct kart_line;
typedef struct kart_line kart_line;

/* A key handler of a mode (isearch, y/n, --More--, the numeric argument).
 * Returns true when it used the key; false gives the key back to the
 * dispatcher, which runs it as usual (the mode has ended). */
typedef bool (*kart__line_mode_fn)(kart_line *ed, const kart__key *key);
/* A raw byte handler (quoted insert, bracketed paste, character search):
 * takes bytes before the key reader. */
typedef void (*kart__line_raw_fn)(kart_line *ed, unsigned char c);

/* A command: count is the numeric argument (1 if none), key the key that
 * ran it. Returns 0, or non-zero after ringing the bell. */
typedef int (*kart__line_cmd)(kart_line *ed, int count, const kart__key *key);

/* The command tables, one entry per function id: edit.c's (the emacs
 * commands and those both modes share) and vi.c's (the vi-* commands).
 * The dispatcher (line.c, run_cmd) runs kart__line_cmds[fn], else
 * kart__line_vi_cmds[fn], else rings the bell, as GNU does for a function
 * it does not know. A vi mode fills vi.c's table, adds what state it needs
 * to struct kart_line, and switches ed->map between KART__MAP_VI_INSERT and
 * KART__MAP_VI_COMMAND; editing goes through kart__edit_insert,
 * kart__edit_delete and kart__edit_kill (undo, the kill ring, the display
 * follow), and kart__line_run runs another command. */
extern const kart__line_cmd kart__line_cmds[KART__FN_COUNT];
extern const kart__line_cmd kart__line_vi_cmds[KART__FN_COUNT];

/* ---- the vi mode's state (vi.c, vi_change.c, vi_motion.c) ---- */

/* A change '.' can repeat: the command key ('d', 'c', 'y' with a motion;
 * 'i', 'a', 'I', 'A', 'R' with the text typed; 'p', 'P', '~', 'r'). */
typedef struct kart__vi_change {
    char cmd;    /* 0: none yet */
    char motion; /* d, c, y: the motion key (the operator's own: dd) */
    int count;
    char arg[4]; /* f t F T r: the character */
    size_t arg_len;
} kart__vi_change;

typedef struct kart__vi {
    /* The insert session: entering insert mode from command mode opens an
     * undo group (so 'u' undoes the whole insert, as in GNU) that ESC
     * closes; session_at is its BEGIN's index in the undo list. */
    bool in_session;
    size_t session_at, session_hpos, session_point;
    bool cmd_once;           /* command mode entered once on this line (GNU's
                      * VICMDONCE: the first ESC drops the undo list) */
    char insert_key;         /* the command that entered insert mode */
    bool redoing;            /* '.' is running a change again */
    kart__vi_change last;    /* what '.' repeats */
    kart__vi_change pending; /* an operator waiting for its motion */
    kart__lbuf ins;          /* the text typed in the last insert session */
    int motion_count;        /* digits typed after an operator */
    bool motion_digits;
    char want; /* a character to be read raw for f F t T r m ` (0: none) */
    char cbuf[4];
    size_t cn;
    char cs_cmd; /* the last f F t T and its character, for ; and , */
    char cs_char[4];
    size_t cs_len;
    uint32_t marks_set; /* m a..z */
    size_t marks[26];
    kart__line_mode_fn search_inner; /* the search's key handler while
                                      * '/' or '?' reads its string */
    size_t cmd_hpos;                 /* the history line a command started on */
} kart__vi;

/* Drive modes. */
enum { KART__DRIVE_NONE, KART__DRIVE_BLOCK, KART__DRIVE_FED, KART__DRIVE_LOOP };
/* How a line ended. */
enum { KART__DONE_NO, KART__DONE_LINE, KART__DONE_EOF, KART__DONE_INTR, KART__DONE_ERR };

struct kart_line {
    /* I/O */
    int in_fd, out_fd;
    int (*write_fn)(void *arg, const void *data, size_t len);
    void *write_arg;
    int out_sock;     /* -1 unknown, 0 a pipe, 1 a socket (send MSG_NOSIGNAL), 2 other */
    kart__lbuf out;   /* what the current batch writes */
    kart__lbuf outq;  /* what an EAGAIN left unwritten */
    int out_err;      /* a sticky write error */
    kart__lbuf inbuf; /* input read or fed, not processed yet */
    size_t inpos;
    kart__lbuf pushback; /* macro text to read before inbuf */
    size_t pushpos;

    /* terminal */
    bool terminal; /* editing with escapes (else plain lines) */
    bool in_tty, out_tty;
    bool prepped;  /* raw mode is on (or, without a tty, the line is
                          * shown with bracketed paste on) */
    bool paste_on; /* \e[?2004h was written */
    bool have_saved;
    struct termios saved;
    unsigned char c_intr, c_eof, c_susp, c_quit;
    bool specials; /* intr/eof/susp/quit are the tty's */
    unsigned cols, rows;
    bool size_fixed;
    char *term;
    int plain_echo; /* plain mode: write the line after reading it */
    bool no_signals;

    /* settings and keys */
    kart__line_settings set;
    kart__keymap *maps[KART__MAP_COUNT];
    kart__map_id map; /* the editing map (emacs or vi-insert) */
    kart__keyreader kr;
    bool inputrc_tried;
    bool no_inputrc;
    char *inputrc;
    char *app_name;
    int rc_errors;

    /* the line */
    kart__lbuf line; /* always NUL-terminated at line.p[line.len] */
    size_t point, mark;
    bool mark_set;
    bool overwrite;
    char *prompt;      /* the caller's prompt */
    char *mode_prompt; /* a search's prompt shown instead, or NULL */
    kart__display d;

    /* the command loop */
    int done; /* KART__DONE_* */
    int done_err;
    int count;         /* the numeric argument being typed */
    bool explicit_arg; /* the command got an explicit argument */
    int arg_sign;
    bool arg_digits; /* digits were typed */
    bool in_arg;     /* reading an argument */
    enum kart__line_fn last_fn, this_fn;
    bool last_kill, this_kill;
    bool last_yank, this_yank;
    bool last_yla, this_yla; /* yank-last-arg */
    unsigned char lastc;     /* the last key's byte (EOF detection) */
    kart__line_mode_fn mode_fn;
    kart__line_raw_fn raw_fn;
    void *mode_data;

    /* undo and kill ring */
    kart__undo_list undo;
    bool undoing;
    bool group_open;
    size_t group_at; /* index of the open group's BEGIN */
    kart__lbuf kills[10];
    size_t nkills, kill_top;
    size_t yank_start, yank_end;
    int yla_index; /* history entries back for yank-last-arg */
    int yla_count;

    /* history */
    kart_history *hist;
    size_t hpos;         /* 0 .. length (length: the new line) */
    size_t hlen0;        /* the history's length when the line started */
    kart__hline *hlines; /* edits of history lines, 0 .. hlen0 */
    size_t nhlines;
    size_t next_hist; /* operate-and-get-next: SIZE_MAX none */
    bool auto_history;

    /* searches (search.c) */
    kart__lbuf isearch; /* the string of the incremental search */
    kart__lbuf last_isearch;
    kart__lbuf nsearch; /* the last non-incremental search */
    kart__lbuf hsearch; /* history-search-* prefix */
    void *search_state;

    /* completion (complete_ui.c) */
    kart_line_hooks hooks;
    char *delims;
    size_t comp_begin, comp_end; /* the hook's word (get_begidx/endidx) */
    size_t cw_begin, cw_end;     /* the word as completion replaces it */
    int comp_append;
    kart__completion comp;
    void *list_state;
    size_t menu_index;
    bool comp_changed;
    bool menu_active;

    /* the vi mode */
    kart__vi vi;

    /* keyboard macros */
    kart__lbuf macro, macro_rec;
    bool recording;
    size_t rec_key_len; /* bytes of the key being handled */

    /* drive modes */
    int drive;
    bool started; /* a line is in progress (fed or loop) */
    kart_line_cb cb;
    void *cb_arg;
    kart__lbuf held; /* read_into's line that did not fit */
    bool held_valid;
    bool eof_seen;
    int depth; /* calls into the editor in progress */
    bool free_pending;
    bool stop_pending;
    bool hidden;
    bool need_newline; /* the cursor is after "^C" or similar */

    /* loop mode */
    kart_loop *loop;
    kart_watch io;
    kart_timer timer;
    kart_signal sig_winch, sig_cont, sig_tstp;
    kart_watch out_io;
    bool io_on, timer_on, sigs_on, out_io_on;
    uint32_t io_events;
    int cmd_depth;
};

/* ---- line.c ---- */
void kart__line_bell(kart_line *ed);
/* Ends the line: how (KART__DONE_*), err for KART__DONE_ERR. */
void kart__line_finish(kart_line *ed, int how, int err);
/* Runs function fn as if a key bound to it was pressed. */
void kart__line_run(kart_line *ed, enum kart__line_fn fn, int count, const kart__key *key);
/* Queues bytes to be read as input before anything else (macros). */
int kart__line_push_input(kart_line *ed, const char *s, size_t n);
/* The keymap in use. */
const kart__keymap *kart__line_keymap(const kart_line *ed);
/* Loads the init file once (first line of a terminal editor). */
void kart__line_load_inputrc(kart_line *ed);

/* ---- term.c ---- */
void kart__term_setup(kart_line *ed);  /* isatty, TERM, special chars */
int kart__term_prep(kart_line *ed);    /* raw mode */
void kart__term_deprep(kart_line *ed); /* back to the saved mode */
void kart__term_update_size(kart_line *ed);
void kart__term_suspend(kart_line *ed, bool use_sigstop);
void kart__term_quit(kart_line *ed);
void kart__term_stop_self(kart_line *ed);
void kart__term_continued(kart_line *ed);
/* Blocking mode: install/remove the handlers, wait for input. */
typedef struct kart__sigsave kart__sigsave;
kart__sigsave *kart__term_signals_install(kart_line *ed);
void kart__term_signals_remove(kart__sigsave *s);
/* Waits for input on ed->in_fd for at most timeout_ns (-1 forever).
 * Returns 1 readable, 0 timed out, -EINTR a signal, another error. */
int kart__term_wait(kart_line *ed, kart__sigsave *s, int64_t timeout_ns);
/* Handles the signals that arrived. Returns 0, or -EINTR when the line
 * must end as interrupted. */
int kart__term_handle_signals(kart_line *ed, kart__sigsave *s);
/* Output. */
int kart__out_flush(kart_line *ed, bool wait);
static inline int kart__out(kart_line *ed, const char *s, size_t n)
{
    return kart__lbuf_add(&ed->out, s, n);
}
int kart__outs(kart_line *ed, const char *s);

/* ---- render.c ---- */
/* Display width of code point c: 0, 1 or 2 (-1: not printable). */
int kart__wcwidth(uint32_t c);
/* Decodes one UTF-8 character at s[0..n): returns its length (1 for an
 * invalid byte, *cp then (uint32_t)-1). */
size_t kart__utf8_decode(const char *s, size_t n, uint32_t *cp);
size_t kart__utf8_encode(uint32_t c, char *out);
/* Character boundaries in the line: the next one after pos (skipping
 * zero-width marks that follow), the previous one before pos. */
size_t kart__next_char(const kart_line *ed, size_t pos);
size_t kart__prev_char(const kart_line *ed, size_t pos);
/* The code point at pos ((uint32_t)-1 for an invalid byte) and its
 * length in *n. */
uint32_t kart__char_at(const kart_line *ed, size_t pos, size_t *n);
/* The buffer changed from byte pos on. */
void kart__display_dirty(kart_line *ed, size_t pos);
/* The same, for a deletion that took a combining mark away from the
 * character before pos. */
void kart__display_dirty_mark(kart_line *ed, size_t pos);
/* Everything must be redrawn (prompt or size changed). */
void kart__display_invalidate(kart_line *ed);
/* Brings the screen up to date: queues the output. */
void kart__display_refresh(kart_line *ed);
/* Moves below the text on the screen and starts a new row (accept). */
void kart__display_finish(kart_line *ed, bool newline);
/* Moves the cursor below the text, keeping the display as it is. */
void kart__display_move_end(kart_line *ed);
/* Clears the edited rows, leaving the cursor where the prompt started. */
void kart__display_clear(kart_line *ed);
/* The screen was cleared or the cursor is at a fresh row's start: the
 * next refresh draws the prompt and line there. */
void kart__display_reset(kart_line *ed);
/* After a size change: move back to the prompt's start as the terminal
 * will have rewrapped it, clear, redraw. */
void kart__display_resize(kart_line *ed);
/* The position of byte offset pos in the layout (laying out as needed). */
kart__pos kart__display_pos(kart_line *ed, size_t pos);
/* The byte offset of the character at row, col (or the nearest before). */
size_t kart__display_offset_at(kart_line *ed, uint32_t row, uint32_t col);
void kart__display_free(kart__display *d);
/* The width of a NUL-terminated UTF-8 string. */
size_t kart__str_width(const char *s, size_t n);

/* ---- edit.c ---- */
int kart__edit_insert(kart_line *ed, size_t at, const char *s, size_t n);
int kart__edit_delete(kart_line *ed, size_t from, size_t to);
/* Kills [from, to) into the kill ring (appending to the last kill when
 * the previous command killed too; prepend for backward kills). */
int kart__edit_kill(kart_line *ed, size_t from, size_t to, bool backward);
/* Replaces the whole buffer (history moves), with no undo record. */
int kart__edit_set_line(kart_line *ed, const char *s, size_t n);
void kart__edit_begin_command(kart_line *ed);
void kart__edit_end_command(kart_line *ed);
/* Undoes everything (revert-line) */
void kart__edit_undo_all(kart_line *ed);
bool kart__is_word_char(uint32_t c);
void kart__edit_reset_line(kart_line *ed); /* a new, empty line */
/* Undo groups that span commands (the vi mode's insert sessions): open
 * pushes a BEGIN and returns its index (SIZE_MAX if out of memory); close
 * ends the group begun at that index, if it is still there, dropping it
 * when empty. */
size_t kart__edit_undo_open(kart_line *ed);
void kart__edit_undo_close(kart_line *ed, size_t at);
/* Whether the undo list ends with an insertion; its range if so. */
bool kart__edit_undo_last_insert(const kart_line *ed, size_t *start, size_t *end);
/* Copies [from, to) into the kill ring as a new kill, deleting nothing. */
int kart__edit_copy(kart_line *ed, size_t from, size_t to);
void kart__edit_free(kart_line *ed);

/* ---- vi.c, vi_change.c, vi_motion.c ---- */
/* After each command (kart__edit_end_command): in command mode the cursor
 * stays on a character, and a history move puts it at the start (GNU's
 * rl_vi_check and _rl_history_set_point). */
void kart__vi_after_command(kart_line *ed);
void kart__vi_reset_line(kart_line *ed); /* a new line */
void kart__vi_cancel(kart_line *ed);     /* an operator or search pending */
void kart__vi_free(kart_line *ed);
/* Where motion m ('w', 'f', '%' ...; count >= 1) takes the cursor.
 * arg: f t F T's character. op: for an operator, which sees the line as
 * if a blank followed it, as GNU does. Returns false if m is not a motion
 * or cannot move (the result is then undefined). */
bool kart__vi_motion(kart_line *ed, char m, int count, const char *arg, size_t arg_len, bool op,
                     size_t *out);
bool kart__vi_blank(uint32_t c); /* space or tab, GNU's whitespace() */

/* ---- search.c ---- */
/* Moves to history line index (0 .. length; length: the new line),
 * keeping the edits of the line left. */
int kart__hist_goto(kart_line *ed, size_t index);
size_t kart__hist_length(const kart_line *ed);
/* The text of history line index as the user sees it now (edited or
 * not). */
const char *kart__hist_text(kart_line *ed, size_t index, size_t *len);
/* The line is accepted: the edited history lines are put back (or
 * written to the history, as GNU does unless revert-all-at-newline). */
void kart__hist_accept(kart_line *ed);
void kart__hist_reset(kart_line *ed);
int kart__cmd_isearch(kart_line *ed, int count, const kart__key *key);
int kart__cmd_nsearch(kart_line *ed, int count, const kart__key *key);
int kart__cmd_nsearch_again(kart_line *ed, int count, const kart__key *key);
int kart__cmd_history_search(kart_line *ed, int count, const kart__key *key);
int kart__cmd_history_move(kart_line *ed, int count, const kart__key *key);
int kart__cmd_yank_arg(kart_line *ed, int count, const kart__key *key);
int kart__cmd_operate_and_get_next(kart_line *ed, int count, const kart__key *key);
int kart__cmd_fetch_history(kart_line *ed, int count, const kart__key *key);

void kart__search_cancel(kart_line *ed);
void kart__edit_cancel(kart_line *ed);

/* ---- complete_ui.c ---- */
void kart__complete_cancel(kart_line *ed);
int kart__cmd_complete(kart_line *ed, int count, const kart__key *key);
void kart__completion_clear(kart__completion *c);
void kart__complete_free(kart_line *ed);

#endif

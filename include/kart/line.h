/*
 * kart/line.h — a line editor: GNU readline's emacs editing, history,
 * completion and init file, for terminals, sockets and event loops.
 *
 * One kart_line is one session: an input descriptor, an output descriptor
 * (or an output callback), a prompt, a history (kart/history.h, shared, not
 * owned), hooks, the keymaps and `set` variables of GNU readline's init
 * file. There is no global state but what the blocking mode's signal
 * handlers need (below): many editors live in one thread and one loop.
 *
 * Three ways to drive it:
 *
 *   blocking   kart_line_read() reads its input descriptor until a line is
 *              done, as Python's input() with readline loaded;
 *   fed        kart_line_start(), then kart_line_feed() with the bytes the
 *              caller read itself (a socket, a test); lines, end of input
 *              and interrupts come back through a callback;
 *   loop       kart_line_attach() to a kart_loop: the editor watches its
 *              input descriptor and runs the keyseq-timeout on a loop
 *              timer; lines come back through the same callback.
 *
 * Terminal or plain. An editor edits (raw mode, escape sequences, the
 * screen redrawn as keys come) when its input and output are terminals and
 * $TERM is set and not "dumb" (kart_line_options.terminal can force either way: a
 * socket to a remote terminal is "on"). Otherwise it reads plain lines: it
 * writes the prompt, reads bytes up to a newline (a CR before it dropped),
 * and writes no escape sequence; when what was read was not echoed on the
 * output by the terminal (the input is not a tty, or the output is not
 * that tty) it writes the line and a newline after the prompt, so that the
 * output holds "prompt line\n" and nothing else, as GNU readline's echo
 * does.
 *
 * Raw mode (a tty input): ICANON, ECHO, ISIG, IEXTEN, IXON, ICRNL and INLCR
 * off, VMIN 1; output processing (OPOST) is left as it was. Because ISIG is
 * off, the tty's special characters arrive as keys and the editor does
 * what the kernel would: VINTR (C-c) interrupts the line (-EINTR, "^C"
 * echoed), VSUSP (C-z) restores the terminal and stops the process group
 * with SIGTSTP, redrawing the line when continued, VQUIT (C-\) restores the
 * terminal and sends SIGQUIT. (GNU readline leaves ISIG on and catches
 * the signals; the difference shows only to other processes of the group,
 * which get no SIGINT for a C-c typed at the editor. IXON is off so that
 * C-s, forward-search-history, arrives.) The terminal is restored on every
 * way out: a line accepted, end of input, an interrupt, an error, a signal
 * (below), kart_line_stop/detach, and kart_line_free in the middle of a
 * line. Bracketed paste is turned on ("\e[?2004h") while a line is edited
 * on a terminal and off ("\e[?2004l") when it ends.
 *
 * Signals, blocking mode. While kart_line_read() edits on a tty (and
 * kart_line_options.no_signals is false) it installs handlers for SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT and
 * SIGWINCH (sigaction, no SA_RESTART; a signal whose disposition was
 * SIG_IGN is left alone, as GNU does), blocks them in the calling thread
 * except while it waits for input (ppoll), and puts back the previous
 * handlers and mask before it returns. What they do is GNU readline's:
 * SIGWINCH reads the new size and redraws; SIGTERM, SIGHUP, SIGQUIT,
 * SIGALRM restore the terminal, put the previous handler back and raise
 * the signal again (a process that survives it goes on editing); SIGTSTP,
 * SIGTTIN, SIGTTOU do the same, and the line is redrawn when the process
 * is continued; SIGCONT re-enters raw mode and redraws; SIGINT restores
 * the terminal, is raised again for the previous handler, and the call
 * returns -EINTR. The handlers are process-wide: one blocking tty read at
 * a time per process installs them (a second one, in another thread, runs
 * without). A handler that runs in another thread passes the signal on to
 * the reading thread.
 *
 * Signals, loop mode. An attached tty editor starts kart_signal watchers
 * (kart/loop.h) for SIGWINCH (new size, redraw), SIGCONT (raw mode again,
 * redraw) and SIGTSTP (restore the terminal, stop with SIGSTOP, and on
 * continuing raw mode and redraw); on Linux those signals are then blocked
 * in the loop's thread while it is attached, as for any kart_signal
 * watcher. SIGINT, SIGTERM and the other fatal signals are the
 * application's: call kart_line_stop()/kart_line_free() (or
 * kart_line_hide()) from its handling to restore the terminal. Fed mode
 * installs nothing.
 *
 * Display: UTF-8 is decoded whatever the process locale; widths come from
 * kart's own table (wide East Asian and emoji characters take two
 * columns, combining marks none, as glibc's wcwidth says in a UTF-8
 * locale); control characters show as ^X, bytes that are not UTF-8 as
 * \ooo. Lines longer than the screen wrap over rows (GNU's default) or
 * scroll sideways (`set horizontal-scroll-mode on`, with '<' and '>' at the
 * cut edges). Only what changed is written, in one write per batch of
 * input (a key typed, a read of pasted text).
 *
 * Thread safety: one thread at a time per editor (the caller serializes);
 * an attached editor is the loop thread's. Hooks and callbacks run on the
 * thread that made the call that fires them (kart_line_read,
 * kart_line_feed, the loop), never from inside the call that sets them.
 */
#ifndef KART_LINE_H
#define KART_LINE_H

#include <kart/common.h>
#include <kart/history.h>
#include <kart/loop.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_line kart_line;

/* Whether an editor edits on a terminal (above). */
typedef enum kart_line_terminal {
    KART_LINE_TERMINAL_AUTO = 0, /* input and output ttys, $TERM set, not dumb */
    KART_LINE_TERMINAL_ON = 1,   /* always: a remote terminal over a socket */
    KART_LINE_TERMINAL_OFF = 2,  /* never: plain lines */
} kart_line_terminal;

/* Options: the all-zero value (or NULL) is every default. */
typedef struct kart_line_options {
    /* The prompt (copied; NULL: ""). It may hold UTF-8, newlines (the
     * lines before the last are written above the edited one), SGR and
     * other CSI escape sequences and OSC strings, which take no width, and
     * GNU's \001 ... \002 markers around anything else invisible (the
     * markers themselves are not written). */
    const char *prompt;
    /* The history that the history commands move through and search
     * (shared, not owned: it must outlive the editor). NULL: none. */
    kart_history *history;
    /* Adds each accepted line that is not empty and differs from the
     * newest entry to the history (Python's auto-history). Off: the caller
     * adds lines itself, as GNU's readline() leaves it to do. */
    bool auto_history;
    /* The application's name, for `$if name` in the init file (GNU's
     * rl_readline_name). NULL: "other", GNU's default. */
    const char *app_name;
    /* Read no init file on the first line (GNU reads $INPUTRC,
     * ~/.inputrc or /etc/inputrc then, and so does a terminal editor). */
    bool no_inputrc;
    /* The init file to read instead of GNU's list (copied). */
    const char *inputrc;
    kart_line_terminal terminal;
    /* The terminal type, for the "dumb" test and `$if term=`; NULL: $TERM. */
    const char *term;
    /* Install no signal handlers and start no signal watchers. */
    bool no_signals;
    /* Output through this callback instead of the output descriptor: it
     * gets every byte the editor writes and returns 0, or a negative error
     * which ends the line as a write error would. */
    int (*write)(void *arg, const void *data, size_t len);
    void *write_arg;
} kart_line_options;

/*
 * Creates an editor reading in_fd and writing out_fd (neither is taken:
 * they stay the caller's and must outlive the editor). in_fd may be -1 for
 * an editor that is only fed (its terminal then is out_fd's, if any);
 * out_fd may be -1 with opts->write set. The descriptors' flags are left as
 * they are: a non-blocking input is waited for with poll, a non-blocking
 * output that says EAGAIN keeps the rest of the output queued (written
 * first, before anything else, by the next call that writes, or by
 * kart_line_flush; the blocking mode waits for it).
 * Errors: -EINVAL (out NULL, in_fd < -1, out_fd < 0 without opts->write),
 * -ENOMEM.
 */
KART_API int kart_line_create(kart_line **out, int in_fd, int out_fd,
                              const kart_line_options *opts);

/* Frees the editor; NULL is accepted. In the middle of a line (any mode)
 * it restores the terminal first: the cursor goes below the edited text,
 * raw mode and bracketed paste end. An attached editor is detached. From
 * inside the editor's own callback or hook the free happens when that
 * callback returns. */
KART_API void kart_line_free(kart_line *ed);

/* ---- blocking mode ---- */

/*
 * Reads one line: shows the prompt, edits until accept-line (RET), and
 * returns 0 with *line a malloc'd, NUL-terminated copy of the text without
 * its newline (free() it) and *len its length (NUL bytes may be inside:
 * use *len). Bytes typed after the line are kept for the next call.
 * Errors: KART_EEOF (end of input on an empty line: the EOF character, C-d,
 * typed there, or end of file; at end of file after some text that text is
 * the line, and the next call says KART_EEOF), -EINTR (C-c, or SIGINT),
 * -EBUSY (the editor is started or attached, or the call is made from
 * one of its hooks), -EINVAL (NULL arguments, no input descriptor),
 * -ECANCELED (a hook called kart_line_stop, or kart_line_free: the editor
 * is freed when this returns), -ENOMEM, -EPIPE or another error of
 * reading or writing (the terminal is restored first).
 */
KART_API int kart_line_read(kart_line *ed, char **line, size_t *len);

/*
 * As kart_line_read, into the caller's buffer: the line and a NUL.
 * -ENOBUFS when cap <= its length: *len receives the length (the buffer
 * must hold *len + 1 bytes), nothing is copied, and the next
 * kart_line_read_into (or kart_line_read) returns that same line without
 * reading.
 */
KART_API int kart_line_read_into(kart_line *ed, char *buf, size_t cap, size_t *len);

/* ---- fed and loop modes ---- */

/*
 * What a fed or attached editor reports: result 0 with a line (line
 * NUL-terminated, len bytes, valid until the callback returns: copy it to
 * keep it), KART_EEOF (end of input; line NULL), -EINTR (C-c; line NULL),
 * or an error of reading (loop mode) or writing (line NULL). After the
 * callback the editor starts the next line (a new prompt) unless the
 * callback stopped, detached or freed it; after KART_EEOF or an error it
 * stops (detaches) by itself. The terminal is in its normal mode while
 * the callback runs; for an interrupt and end of input the editor has
 * moved to a new row first.
 */
typedef void (*kart_line_cb)(kart_line *ed, int result, const char *line, size_t len, void *arg);

/*
 * Fed mode: starts a line (raw mode on a tty input, the prompt shown).
 * Lines and events come through cb. Errors: -EINVAL (NULL ed or cb),
 * -EBUSY (already started or attached), -ENOMEM, a write error.
 */
KART_API int kart_line_start(kart_line *ed, kart_line_cb cb, void *arg);

/*
 * Feeds len input bytes to a started editor; callbacks run from inside
 * this call. Bytes that follow a line after which the callback stopped
 * the editor are kept and read first after the next start. Returns 0, or
 * -EINVAL (not started; data NULL with len > 0), -ENOMEM, or a write
 * error (which the callback saw too).
 */
KART_API int kart_line_feed(kart_line *ed, const void *data, size_t len);

/* Feeds the end of the input: pending text is delivered as a line (as
 * GNU's readline does at end of file), then KART_EEOF, and the editor
 * stops. -EINVAL (not started). */
KART_API int kart_line_feed_eof(kart_line *ed);

/* Nanoseconds until kart_line_tick() must be called to resolve a key
 * sequence that waits for more bytes (ESC alone, a prefix of an arrow's
 * sequence), keyseq-timeout after its last byte; -1 when nothing waits.
 * The loop mode does this by itself. */
KART_API int64_t kart_line_timeout(const kart_line *ed);

/* Resolves the waiting key sequence if its timeout has passed (a call too
 * early does nothing). Returns 0, or an error as kart_line_feed. */
KART_API int kart_line_tick(kart_line *ed);

/* Stops a started editor in the middle of a line: the cursor goes below
 * the edited text, the terminal is restored, the line is dropped. A no-op
 * on an editor that is not started. Also detaches an attached one. */
KART_API void kart_line_stop(kart_line *ed);

/*
 * Loop mode: watches in_fd on loop (a kart_watch watcher, so no other watcher
 * of that fd may be on that loop), starts a line, and reports through cb.
 * Errors: -EINVAL (NULL arguments, no input descriptor), -EBUSY (started
 * or attached), -EEXIST and the other errors of kart_watch_start, -ENOMEM.
 */
KART_API int kart_line_attach(kart_line *ed, kart_loop *loop, kart_line_cb cb, void *arg);

/* Stops watching and ends the line as kart_line_stop() does. A no-op if
 * not attached. */
KART_API void kart_line_detach(kart_line *ed);

/* ---- the line being edited ---- */

/* Changes the prompt (copied; NULL: ""); a line on the screen is redrawn
 * with it. -ENOMEM, or a write error. */
KART_API int kart_line_set_prompt(kart_line *ed, const char *prompt);

/* Replaces the history (NULL: none); the line being edited is not
 * touched. */
KART_API void kart_line_set_history(kart_line *ed, kart_history *history);

/* Python's insert_text: inserts text at the cursor of the current line
 * (shown at the next redisplay). -ENOMEM. */
KART_API int kart_line_insert_text(kart_line *ed, const char *text, size_t len);

/* Python's get_line_buffer: the line being edited (NUL-terminated), its
 * length in *len (may be NULL). Valid until the next call on the editor
 * that edits or reads. */
KART_API const char *kart_line_buffer(const kart_line *ed, size_t *len);

/* The cursor (a byte offset into the buffer). */
KART_API size_t kart_line_point(const kart_line *ed);

/* Python's redisplay: brings the screen up to date with the buffer (a
 * no-op when no line is shown). Returns 0 or a write error. */
KART_API int kart_line_redisplay(kart_line *ed);

/*
 * Writes text above the line being edited: the edited rows are cleared,
 * the text written (a newline added if it does not end with one; on a
 * terminal "\n" goes out as "\r\n"), and the prompt and line drawn again
 * below it, all in one write. With no line shown, the text is simply
 * written. Returns 0 or a write error.
 */
KART_API int kart_line_print_above(kart_line *ed, const char *text, size_t len);

/* Hides the line being edited (its rows cleared, the terminal restored) so
 * that the program can use the terminal, and shows it again (raw mode,
 * prompt and line redrawn). Each is a no-op when there is nothing to do.
 * Returns 0 or a write error. */
KART_API int kart_line_hide(kart_line *ed);
KART_API int kart_line_show(kart_line *ed);

/*
 * Sets the screen size (a socket's remote terminal, a test): cols and
 * rows stay fixed from then on and the line is redrawn for them.
 * kart_line_set_size(ed, 0, 0) goes back to asking the terminal
 * (TIOCGWINSZ on the output, then the input; when it says 0 or is not a
 * terminal, $COLUMNS and $LINES, else 80x24). A window one column wide
 * works. -EINVAL (one of them 0 and not the other).
 */
KART_API int kart_line_set_size(kart_line *ed, unsigned cols, unsigned rows);
KART_API void kart_line_get_size(const kart_line *ed, unsigned *cols, unsigned *rows);

/* Writes what is queued after an EAGAIN. 0 when nothing is left,
 * -EAGAIN when some still is, another write error. */
KART_API int kart_line_flush(kart_line *ed);

/* ---- the init file ---- */

/* Python's parse_and_bind: one init-file line ("set editing-mode vi",
 * "\"\\C-xq\": kill-whole-line", "Control-o: \">&output\"").
 * -EINVAL (a line the parser reported), -ENOMEM. */
KART_API int kart_line_parse_and_bind(kart_line *ed, const char *line);

/* Python's read_init_file: reads an init file (NULL: the one the editor
 * would read, options.inputrc or GNU's list). Returns the number of bad
 * lines (each skipped, as GNU does: 0 when all were good), or -ENOENT
 * and the other errors of reading it. */
KART_API int kart_line_read_init_file(kart_line *ed, const char *path);

/* The value of a `set` variable as `set` takes it ("on", "500", "emacs")
 * into buf (cap bytes, NUL-terminated); returns its length. -ENOENT (no
 * such variable), -ENOBUFS (cap <= the length: nothing copied). */
KART_API int kart_line_variable(const kart_line *ed, const char *name, char *buf, size_t cap);

/* ---- hooks and completion ---- */

/*
 * The hooks of Python's readline module; all take the one arg. NULL: none.
 *
 * startup: before the prompt of each line is shown. pre_input: after it
 * is shown, before the first key (kart_line_insert_text here prefills
 * the line). complete: on Tab, with the word before the cursor: text
 * (NUL-terminated, valid during the call) is the buffer's bytes
 * [begin, end), end being the cursor; the hook adds its candidates with
 * kart_line_add_completion (which copies them) and may call
 * kart_line_complete_filenames. No hook: filename completion.
 * display_matches: shows the candidates of an ambiguous completion instead
 * of the editor's columns: substitution is their common prefix, matches
 * the candidates (count, longest the widest); the editor has moved below
 * the line before the call and draws the prompt and line again after it.
 * inputrc_error: a bad init-file line (file name, 1-based line, what is
 * wrong); always also a WARNING in the runtime's log (kart/log.h,
 * module "line"); the line is skipped either way.
 */
typedef struct kart_line_hooks {
    void (*startup)(kart_line *ed, void *arg);
    void (*pre_input)(kart_line *ed, void *arg);
    void (*complete)(kart_line *ed, const char *text, size_t begin, size_t end, void *arg);
    void (*display_matches)(kart_line *ed, const char *substitution, const char *const *matches,
                            size_t count, size_t longest, void *arg);
    void (*inputrc_error)(kart_line *ed, const char *file, int line, const char *message,
                          void *arg);
    void *arg;
} kart_line_hooks;

/* Replaces the hooks (NULL: none); *prev (may be NULL) receives the ones
 * they replace. */
KART_API void kart_line_set_hooks(kart_line *ed, const kart_line_hooks *hooks,
                                  kart_line_hooks *prev);

/* Inside the complete hook: adds one candidate (len bytes, copied).
 * -EINVAL (not inside the hook), -ENOMEM. */
KART_API int kart_line_add_completion(kart_line *ed, const char *candidate, size_t len);

/* Inside the complete hook: adds the file names that start with text
 * (len bytes: a path whose last part is completed; "~/" is $HOME), each
 * as text's directory part plus the name, as GNU's filename completion
 * does (hidden files as match-hidden-files says; a single directory then
 * gets '/' instead of the append character, with mark-directories).
 * Returns how many it added; -EINVAL (not inside the hook), -ENOMEM. */
KART_API int kart_line_complete_filenames(kart_line *ed, const char *text, size_t len);

/* The characters that end the word being completed (Python's
 * set_completer_delims; copied). Default: " \t\n\"\\'`@$><=;|&{(".
 * -ENOMEM. */
KART_API int kart_line_set_completer_delims(kart_line *ed, const char *delims);
KART_API const char *kart_line_completer_delims(const kart_line *ed);

/* Python's get_begidx/get_endidx: the byte offsets of the word of the
 * latest completion. */
KART_API void kart_line_completion_range(const kart_line *ed, size_t *begin, size_t *end);

/* The character appended after a unique completion (GNU's
 * rl_completion_append_character: ' ' by default; 0: none, as Python's
 * readline module sets it). */
KART_API void kart_line_set_completion_append(kart_line *ed, int ch);

#ifdef __cplusplus
}
#endif
#endif

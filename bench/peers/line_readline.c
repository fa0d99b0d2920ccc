/*
 * bench/peers/line_readline.c — GNU readline's peer for the `line`
 * scenarios (build/bench/line-readline-peer, linked with -lreadline; the
 * library and kart-bench never link readline).
 *
 * Keys: the callback interface (rl_callback_handler_install,
 * rl_callback_read_char once per byte, as an event loop calls it), its
 * input from memory through rl_getc_function (no read(2) per byte, as kart
 * is fed from memory), its output on /dev/null (rl_outstream), TERM=xterm,
 * the screen set to 80x24 (rl_set_screen_size), no init file
 * (INPUTRC=/dev/null), emacs mode, rl_instream a pseudo-terminal that
 * never has input (readline sets its modes per line, polls it for
 * typeahead, and echoes because it finds ECHO on there: with the modes
 * left alone it would not draw at all).
 *
 * History: read_history, write_history, and history_search from the
 * newest entry back, moving one entry past each match (history_set_pos),
 * as repeated C-r does. history_write_timestamps is on in the case whose
 * file has timestamps, so that they are written back.
 */
#include "line_peer.h"
#include <line_script.h> /* bench/, shared with kart-bench (-Ibench) */

#include <readline/history.h>
#include <readline/readline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *in_bytes;
static size_t in_len, in_pos;

static int mem_getc(FILE *f)
{
    (void)f;
    return in_pos < in_len ? (unsigned char)in_bytes[in_pos++] : EOF;
}

static void on_line(char *line)
{
    if (line)
        line_peer_accept(line, strlen(line));
    free(line);
}

static int editor_init(void)
{
    setenv("TERM", "xterm", 1);
    setenv("INPUTRC", "/dev/null", 1);
    FILE *out = fopen("/dev/null", "w");
    if (!out)
        return -1;
    rl_change_environment = 0;
    /* Its input stream a pseudo-terminal's (80x24) that never has input:
     * readline sets the terminal's modes there, polls it for typeahead
     * (then calls rl_getc_function) and echoes only when it found ECHO on
     * (_rl_echoing_p), as on a real terminal. */
    int master, slave;
    struct winsize ws = {.ws_row = LINE_ROWS, .ws_col = LINE_COLS};
    if (openpty(&master, &slave, NULL, NULL, &ws) != 0 || !(rl_instream = fdopen(slave, "r")))
        return -1;
    rl_outstream = out;
    rl_getc_function = mem_getc;
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_editing_mode = 1; /* emacs */
    rl_callback_handler_install(LINE_PROMPT, on_line);
    rl_set_screen_size(LINE_ROWS, LINE_COLS);
    return 0;
}

static void feed(const char *bytes, size_t len)
{
    in_bytes = bytes;
    in_len = len;
    in_pos = 0;
    while (in_pos < in_len)
        rl_callback_read_char();
}

static void prefill(const char *text, size_t len)
{
    (void)len;
    rl_insert_text(text);
}

static int hist_read(const char *path, size_t *entries)
{
    int err = read_history(path);
    *entries = (size_t)history_length;
    return err;
}

static int hist_write(const char *path, int stamps)
{
    history_write_timestamps = stamps;
    return write_history(path);
}

static size_t hist_count(const char *q, size_t *found, size_t *offset, size_t cap)
{
    size_t n = 0;
    int off;
    history_set_pos(history_length - 1);
    while ((off = history_search(q, -1)) >= 0) {
        int at = where_history();
        if (n < cap) {
            found[n] = (size_t)at;
            offset[n] = (size_t)off;
        }
        n++;
        if (at == 0 || !history_set_pos(at - 1))
            break;
    }
    return n;
}

int main(int argc, char **argv)
{
    line_peer p = {.editor_init = editor_init,
                   .feed = feed,
                   .prefill = prefill,
                   .hist_read = hist_read,
                   .hist_write = hist_write,
                   .hist_count = hist_count};
    return line_peer_main(&p, argc, argv);
}

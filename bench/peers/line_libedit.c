/*
 * bench/peers/line_libedit.c — libedit's peer for the `line` scenario's
 * keystroke cases (build/bench/line-libedit-peer, linked with -ledit;
 * the library and kart-bench never link libedit).
 *
 * libedit's own interface, not its readline emulation: el_gets in
 * EL_UNBUFFERED mode returns after every key, which is what the
 * emulation's rl_callback_read_char does inside, minus a strdup per line.
 * Its input comes from memory through EL_GETCFN (no read(2) per byte, as
 * kart is fed from memory). libedit turns editing off when its output is
 * not a terminal, so it starts on a pseudo-terminal (80x24, TERM=xterm)
 * and its output is then moved to /dev/null (EL_SETFP): it draws as it
 * would on a terminal, into /dev/null. Emacs mode, no ~/.editrc read.
 * No history case: libedit's history file format is not GNU's.
 */
#include "line_peer.h"
#include <line_script.h> /* bench/, shared with kart-bench (-Ibench) */

#include <histedit.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static EditLine *el;
static const char *in_bytes;
static size_t in_len, in_pos;

static int mem_getc(EditLine *e, wchar_t *c)
{
    (void)e;
    if (in_pos >= in_len)
        return 0; /* end of input: never reached, each key is whole */
    *c = (unsigned char)in_bytes[in_pos++];
    return 1;
}

static char *prompt(EditLine *e)
{
    (void)e;
    return LINE_PROMPT;
}

static int editor_init(void)
{
    setenv("TERM", "xterm", 1);
    int master, slave;
    struct winsize ws = {.ws_row = LINE_ROWS, .ws_col = LINE_COLS};
    if (openpty(&master, &slave, NULL, NULL, &ws) != 0)
        return -1;
    FILE *tty = fdopen(slave, "r+");
    FILE *null = fopen("/dev/null", "w");
    if (!tty || !null || !(el = el_init("kart-bench", tty, tty, stderr)))
        return -1;
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_PROMPT, prompt);
    el_set(el, EL_SIGNAL, 0);
    el_set(el, EL_GETCFN, mem_getc);
    el_set(el, EL_UNBUFFERED, 1);
    el_set(el, EL_SETFP, 1, null);
    return 0;
}

static void feed(const char *bytes, size_t len)
{
    in_bytes = bytes;
    in_len = len;
    in_pos = 0;
    while (in_pos < in_len) {
        int count = 0;
        const char *line = el_gets(el, &count);
        if (line && count > 0 && (line[count - 1] == '\n' || line[count - 1] == '\r')) {
            line_peer_accept(line, (size_t)count - 1);
            /* A new line, as the readline emulation's callback does it
             * (leaving unbuffered mode ends the line, entering starts
             * one). */
            el_set(el, EL_UNBUFFERED, 0);
            el_set(el, EL_UNBUFFERED, 1);
        }
    }
}

static void prefill(const char *text, size_t len)
{
    (void)len;
    if (len)
        el_insertstr(el, text);
}

int main(int argc, char **argv)
{
    line_peer p = {.editor_init = editor_init, .feed = feed, .prefill = prefill};
    return line_peer_main(&p, argc, argv);
}

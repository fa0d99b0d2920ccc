/*
 * tests/line_demo.c — a small program around kart_line for the screen
 * tests (tests/check_line_tmux.c runs it under tmux) and for trying the
 * editor by hand:
 *
 *   build/tests/line_demo [-p prompt] [-b inputrc-line]... [-l] [-c word,word,...]
 *                         [-A ms] [-H file] [-n count] [-P]
 *
 * It reads lines from stdin on stdout and prints each as "got[<line>]"
 * on its own row, "eof" at the end of input, "intr" after C-c.
 *   -p  the prompt (\e and \n escapes are understood)
 *   -b  a parse_and_bind line (repeatable)
 *   -l  loop mode (kart_line_attach) instead of the blocking kart_line_read
 *   -c  complete from this comma-separated word list
 *   -A  loop mode: print "tick N" above the line every ms milliseconds
 *   -H  preload the history with the lines of this file
 *   -n  stop after count lines
 *   -P  print the prompt's width test: a prompt in colour
 */
#include <kart.h>
#include <kart/history.h>
#include <kart/line.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *words[64];
static int nwords;
static int max_lines = -1;
static int lines_seen;
static kart_timer tick_timer;
static int ticks;
static int tick_ms;

static void complete(kart_line *ed, const char *text, size_t begin, size_t end, void *arg)
{
    (void)begin;
    (void)end;
    (void)arg;
    size_t n = strlen(text);
    for (int i = 0; i < nwords; i++)
        if (strncmp(words[i], text, n) == 0)
            kart_line_add_completion(ed, words[i], strlen(words[i]));
}

static char *unescape(const char *s)
{
    char *o = malloc(strlen(s) + 1), *w = o;
    for (; *s; s++) {
        if (*s == '\\' && s[1] == 'e') {
            *w++ = '\033';
            s++;
        } else if (*s == '\\' && s[1] == 'n') {
            *w++ = '\n';
            s++;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return o;
}

static void report(int r, const char *line, size_t len)
{
    if (r == 0)
        printf("got[%.*s]\n", (int)len, line);
    else if (r == KART_EEOF)
        printf("eof\n");
    else if (r == -EINTR)
        printf("intr\n");
    else
        printf("error %s\n", kart_strerror(r));
    fflush(stdout);
}

static void on_line(kart_line *ed, int result, const char *line, size_t len, void *arg)
{
    kart_loop *loop = arg;
    report(result, line, len);
    if (result == 0 && max_lines > 0 && ++lines_seen >= max_lines)
        result = KART_EEOF;
    if (result != 0 && result != -EINTR) {
        kart_line_detach(ed);
        if (tick_ms)
            kart_timer_stop(&tick_timer);
        kart_loop_stop(loop);
    }
}

static void on_tick(kart_timer *t)
{
    kart_line *ed = t->base.data;
    char b[64];
    int n = snprintf(b, sizeof(b), "tick %d", ++ticks);
    kart_line_print_above(ed, b, (size_t)n);
}

int main(int argc, char **argv)
{
    kart_line_options o;
    memset(&o, 0, sizeof(o));
    o.prompt = "> ";
    const char *binds[32];
    int nbinds = 0;
    bool loop_mode = false;
    const char *hfile = NULL;
    int c;
    while ((c = getopt(argc, argv, "p:b:lc:A:H:n:")) != -1) {
        switch (c) {
        case 'p':
            o.prompt = unescape(optarg);
            break;
        case 'b':
            if (nbinds < 32)
                binds[nbinds++] = optarg;
            break;
        case 'l':
            loop_mode = true;
            break;
        case 'c': {
            char *s = strdup(optarg);
            for (char *t = strtok(s, ","); t && nwords < 64; t = strtok(NULL, ","))
                words[nwords++] = t;
            break;
        }
        case 'A':
            tick_ms = atoi(optarg);
            break;
        case 'H':
            hfile = optarg;
            break;
        case 'n':
            max_lines = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    kart_history *h = NULL;
    kart_history_create(&h, NULL);
    if (hfile)
        kart_history_read(h, hfile, NULL);
    o.history = h;
    o.auto_history = true;
    o.no_inputrc = true;
    kart_line *ed;
    int r = kart_line_create(&ed, 0, 1, &o);
    if (r < 0) {
        fprintf(stderr, "create: %s\n", kart_strerror(r));
        return 1;
    }
    for (int i = 0; i < nbinds; i++)
        if (kart_line_parse_and_bind(ed, binds[i]) < 0)
            fprintf(stderr, "bad binding: %s\n", binds[i]);
    if (nwords) {
        kart_line_hooks hk;
        memset(&hk, 0, sizeof(hk));
        hk.complete = complete;
        kart_line_set_hooks(ed, &hk, NULL);
    }
    if (loop_mode) {
        kart_loop *loop;
        if (kart_loop_create(&loop, NULL) < 0)
            return 1;
        if (tick_ms) {
            kart_timer_init(loop, &tick_timer);
            tick_timer.base.data = ed;
            kart_timer_start(&tick_timer, on_tick, (int64_t)tick_ms * 1000000,
                             (int64_t)tick_ms * 1000000);
        }
        r = kart_line_attach(ed, loop, on_line, loop);
        if (r < 0) {
            fprintf(stderr, "attach: %s\n", kart_strerror(r));
            return 1;
        }
        kart_loop_run(loop, KART_RUN_DEFAULT);
        kart_line_free(ed);
        if (tick_ms)
            kart_timer_stop(&tick_timer);
        kart_loop_free(loop);
    } else {
        for (;;) {
            char *line;
            size_t len;
            r = kart_line_read(ed, &line, &len);
            if (r == -EINTR)
                printf("\n");
            report(r, line, len);
            if (r == 0) {
                free(line);
                if (max_lines > 0 && ++lines_seen >= max_lines)
                    break;
                continue;
            }
            if (r == -EINTR)
                continue;
            break;
        }
        kart_line_free(ed);
    }
    kart_history_free(h);
    return 0;
}

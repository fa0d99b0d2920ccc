/*
 * examples/console.h — the admin console that the example servers embed:
 * `--console ADDRESS` serves line-editing sessions to build/kart-console
 * over a unix path, an abstract name ("@name") or TCP ("127.0.0.1:7000"),
 * guarded by the authkey of `--console-authkey-file F`, on the server's
 * own loop (worker 0's). docs/console.md is the user's guide; the wire is
 * examples/console_wire.h.
 *
 * Cheap per session, so that one loop holds a thousand operators: one
 * kart_conn attached to the loop (its receive watcher), one kart_line in
 * fed mode writing through a callback, one history, one timer that runs
 * only while `watch stats` is on. No thread, no descriptor but the socket.
 *
 * Peers are accepted with kart_listener_accept_start: the loop runs each
 * peer's authkey handshake a message at a time as its socket is ready, so
 * a peer that stalls delays no one and is dropped after
 * CONSOLE_HANDSHAKE_NS.
 *
 * Header-only, public headers only, like server.h: include it after
 * server.h, give srv_program console_parse_option, CONSOLE_USAGE and
 * console_worker_stop, and call console_worker_init from worker_init.
 */
#ifndef KART_EXAMPLES_CONSOLE_H
#define KART_EXAMPLES_CONSOLE_H

#include "console_wire.h"
#include "server.h"

#include <kart/conn.h>
#include <kart/history.h>
#include <kart/line.h>
#include <kart/log.h>

#include <limits.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

/* How long a peer may take over the authkey handshake. */
#define CONSOLE_HANDSHAKE_NS (INT64_C(2) * 1000000000)
/* Output queued to a client that does not read, past which its session is
 * closed rather than left to grow. */
#define CONSOLE_MAX_QUEUED (256 * 1024)
/* How long a session that is over waits for its last output to go out
 * and the client to close. */
#define CONSOLE_LINGER_NS (INT64_C(2) * 1000000000)
/* Entries kept per history file. */
#define CONSOLE_HISTORY_KEEP 500

#define CONSOLE_USAGE                                                                              \
    "  --console ADDRESS             serve the admin console (build/kart-console ADDRESS)\n"       \
    "                                on a unix path, @abstract-name or host:port\n"                \
    "  --console-authkey-file F      its authkey (required with --console; mode 0600)\n"           \
    "  --console-history DIR         keep each operator's history in DIR/NAME.history\n"

typedef struct console_session console_session;

enum { CONSOLE_OPEN, CONSOLE_ENDING, CONSOLE_DEAD };

struct console_session {
    console_session *prev, *next; /* the console's sessions */
    console_session *reap_next;   /* on the reap list while queued */
    int reap_queued;
    unsigned id;
    int state;      /* CONSOLE_OPEN, ENDING (last output going out), DEAD */
    int hello;      /* the 'H' message came */
    int tty;        /* the operator's terminal is a tty */
    int watching;   /* `watch stats` is on */
    int lingering;  /* the linger timer is running */
    int linger_out; /* it fired (or the session broke): close at once */
    int shut;       /* the 'X' is out: our side is shut down for writing */
    int peer_gone;  /* the client's end came (EOF or an error) */
    kart_conn *conn;
    kart_line *ed;
    kart_history *hist;
    size_t added;  /* history entries added in this session */
    size_t queued; /* bytes queued to the client */
    unsigned sends;
    unsigned cols, rows;
    kart_timer watch, linger;
    int64_t since_ns;
    char name[CONSOLE_NAME_MAX + 1];
    char peer[80];
};

typedef struct console_server {
    const char *address; /* --console */
    const char *authkey_file;
    const char *history_dir;
    unsigned char key[CONSOLE_AUTHKEY_MAX];
    size_t keylen;
    srv_worker *w; /* worker 0: its loop is the console's */
    kart_listener *listener;
    kart_timer retry;  /* accepting again after a descriptor shortage */
    kart_timer reaper; /* frees sessions outside their own callbacks */
    console_session head;
    console_session *reap;
    unsigned next_id;
    unsigned nsessions;
    int stopping;
    int64_t started_ns;
} console_server;

static console_server console_srv;

/* ---- command line ---- */

static int console_parse_option(const char *flag, const char *value)
{
    const char **slot = strcmp(flag, "--console") == 0                ? &console_srv.address
                        : strcmp(flag, "--console-authkey-file") == 0 ? &console_srv.authkey_file
                        : strcmp(flag, "--console-history") == 0      ? &console_srv.history_dir
                                                                      : NULL;
    if (!slot)
        return 0;
    if (!value || !*value) {
        fprintf(stderr, "%s needs a value\n", flag);
        return -1;
    }
    *slot = value;
    return 1;
}

/* ---- output ---- */

typedef struct console_out {
    console_session *s;
    size_t len;
    unsigned char data[]; /* the tag, then the bytes */
} console_out;

static void console_reap_later(console_session *s);

static void console_sent(kart_conn *c, int status, void *arg)
{
    (void)c;
    console_out *o = arg;
    console_session *s = o->s;
    s->queued -= o->len;
    s->sends--;
    free(o);
    if (status < 0 && s->state != CONSOLE_DEAD)
        s->state = CONSOLE_ENDING, s->linger_out = 1;
    if (s->state != CONSOLE_ENDING || s->sends > 0)
        return;
    /* All out, 'X' last: shut our side so that the client reads the end
     * after it, and close once it has closed too. Closing first, with its
     * last keys unread, could make the client's system report a reset
     * instead of the queued 'X'. */
    if (!s->shut) {
        shutdown(kart_conn_fileno(s->conn), SHUT_WR);
        s->shut = 1;
    }
    if (s->peer_gone || s->linger_out)
        console_reap_later(s);
}

/* Queues one message (tag and len bytes) to the client. A client that
 * lets CONSOLE_MAX_QUEUED bytes pile up is cut off: -ENOBUFS. */
static int console_send(console_session *s, char tag, const void *data, size_t len)
{
    if (s->state == CONSOLE_DEAD || !s->conn)
        return -EPIPE;
    /* The editor's writes are at most a screenful, but split anyway so
     * that no message passes the client's limit. */
    while (len >= CONSOLE_WIRE_MAX) {
        int err = console_send(s, tag, data, CONSOLE_WIRE_MAX - 1);
        if (err < 0)
            return err;
        data = (const char *)data + CONSOLE_WIRE_MAX - 1;
        len -= CONSOLE_WIRE_MAX - 1;
    }
    if (s->queued + len > CONSOLE_MAX_QUEUED) {
        s->state = CONSOLE_ENDING;
        s->linger_out = 1;
        console_reap_later(s);
        return -ENOBUFS;
    }
    console_out *o = malloc(sizeof(*o) + 1 + len);
    if (!o)
        return -ENOMEM;
    o->s = s;
    o->len = 1 + len;
    o->data[0] = (unsigned char)tag;
    if (len)
        memcpy(o->data + 1, data, len);
    int err = kart_conn_send_async(s->conn, o->data, o->len, console_sent, o);
    if (err < 0) {
        free(o);
        return err;
    }
    s->queued += o->len;
    s->sends++;
    return 0;
}

/* The editor's output callback. */
static int console_editor_write(void *arg, const void *data, size_t len)
{
    return console_send(arg, 'D', data, len);
}

/* A growing text buffer for a command's answer. */
typedef struct console_text {
    char *p;
    size_t len, cap;
    int failed;
} console_text;

static void console_printf(console_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void console_printf(console_text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = t->failed ? -1 : vsnprintf(t->p ? t->p + t->len : NULL, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 256) + (size_t)n;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

/* Sends text to the operator: on a terminal editor "\n" goes out as
 * "\r\n", since the client's terminal is in raw mode. */
static void console_emit(console_session *s, const char *text, size_t len)
{
    if (!s->tty) {
        console_send(s, 'D', text, len);
        return;
    }
    char *crlf = malloc(2 * len + 1);
    if (!crlf)
        return;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n')
            crlf[n++] = '\r';
        crlf[n++] = text[i];
    }
    console_send(s, 'D', crlf, n);
    free(crlf);
}

/* ---- the commands ---- */

static const char *const console_levels[] = {"debug", "info", "warning", "error", "critical"};

typedef struct console_command {
    const char *name;
    const char *args; /* for help */
    const char *what;
    void (*run)(console_session *s, int argc, char **argv, console_text *out);
    const char *const *complete; /* the words its first argument takes */
} console_command;

static double console_seconds(int64_t ns)
{
    return (double)ns / 1e9;
}

static void console_stats(console_session *s, console_text *out)
{
    (void)s;
    kart_loop *loop = console_srv.w->loop;
    kart_loop_update_time(loop);
    unsigned long long open = 0, accepted = 0;
    for (int i = 0; i < srv_nworkers; i++) {
        open += __atomic_load_n(&srv_workers[i].open, __ATOMIC_RELAXED);
        accepted += __atomic_load_n(&srv_workers[i].accepted, __ATOMIC_RELAXED);
    }
    kart_io_stats st = {0};
    kart_loop_io_stats(loop, &st);
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    console_printf(out, "uptime %.1f s, %s, %d thread%s\n",
                   console_seconds(kart_loop_now(loop) - console_srv.started_ns),
                   console_srv.w->prog->name, srv_nworkers, srv_nworkers == 1 ? "" : "s");
    console_printf(out, "connections: %llu open, %llu accepted\n", open, accepted);
    console_printf(out, "consoles: %u open\n", console_srv.nsessions);
    console_printf(out,
                   "loop 0: %llu ring enters, %llu CQ overflows, %llu receives paused without a "
                   "buffer, %llu accepts at the descriptor limit\n",
                   (unsigned long long)st.enters, (unsigned long long)st.cq_overflows,
                   (unsigned long long)st.enobufs, (unsigned long long)st.accept_fd_limit);
    console_printf(out, "memory: %ld KiB resident\n", rss * (sysconf(_SC_PAGESIZE) / 1024));
}

static void cmd_stats(console_session *s, int argc, char **argv, console_text *out)
{
    (void)argc;
    (void)argv;
    console_stats(s, out);
}

static void cmd_conns(console_session *s, int argc, char **argv, console_text *out)
{
    (void)argc;
    (void)argv;
    for (int i = 0; i < srv_nworkers; i++)
        console_printf(out, "worker %d (cpu %d): %llu open, %llu accepted\n", i, srv_workers[i].cpu,
                       __atomic_load_n(&srv_workers[i].open, __ATOMIC_RELAXED),
                       __atomic_load_n(&srv_workers[i].accepted, __ATOMIC_RELAXED));
    int64_t now = kart_loop_now(console_srv.w->loop);
    for (console_session *o = console_srv.head.next; o != &console_srv.head; o = o->next)
        console_printf(out, "console #%u %s from %s, %ux%u, %.0f s%s\n", o->id, o->name, o->peer,
                       o->cols, o->rows, console_seconds(now - o->since_ns),
                       o == s ? " (you)" : "");
}

static void cmd_backend(console_session *s, int argc, char **argv, console_text *out)
{
    (void)s;
    (void)argc;
    (void)argv;
    kart_io_stats st = {0};
    kart_loop_io_stats(console_srv.w->loop, &st);
    console_printf(out, "%s (%s completions), %d loop%s\n",
                   kart_loop_backend_name(console_srv.w->loop), st.native ? "native" : "emulated",
                   srv_nworkers, srv_nworkers == 1 ? "" : "s");
}

static void cmd_loglevel(console_session *s, int argc, char **argv, console_text *out)
{
    (void)s;
    if (argc > 2) {
        console_printf(out, "usage: loglevel [debug|info|warning|error|critical]\n");
        return;
    }
    if (argc == 2) {
        int level = 0;
        for (int i = 0; i < 5; i++)
            if (strcasecmp(argv[1], console_levels[i]) == 0)
                level = (i + 1) * 10;
        if (!level) {
            console_printf(out,
                           "loglevel: unknown level '%s' (debug, info, warning, error, critical)\n",
                           argv[1]);
            return;
        }
        kart_log_set_level((kart_log_level)level);
    }
    kart_log_level now = kart_log_get_level();
    console_printf(out, "log level %s%s\n", kart_log_level_name(now),
                   kart_log_enabled(KART_LOG_CRITICAL) ? "" : " (no handler: the log is silent)");
}

static void console_watch_tick(kart_timer *t)
{
    console_session *s = t->base.data;
    console_text out = {0};
    console_stats(s, &out);
    if (!out.failed)
        kart_line_print_above(s->ed, out.p, out.len);
    free(out.p);
}

static void cmd_watch(console_session *s, int argc, char **argv, console_text *out)
{
    if (argc == 2 && strcmp(argv[1], "off") == 0) {
        kart_timer_stop(&s->watch);
        s->watching = 0;
        return;
    }
    if (argc != 2 || strcmp(argv[1], "stats") != 0) {
        console_printf(out, "usage: watch stats|off\n");
        return;
    }
    int64_t second = INT64_C(1000000000);
    if (kart_timer_start(&s->watch, console_watch_tick, second, second) < 0) {
        console_printf(out, "watch: out of memory\n");
        return;
    }
    s->watching = 1;
    console_printf(out, "stats every second above the prompt until `watch off` or C-c\n");
}

static void console_end(console_session *s, const char *why);

static void cmd_quit(console_session *s, int argc, char **argv, console_text *out)
{
    (void)argc;
    (void)argv;
    (void)out;
    console_end(s, "");
}

static void cmd_help(console_session *s, int argc, char **argv, console_text *out);

static const char *const console_watch_args[] = {"stats", "off", NULL};
static const char *const console_level_args[] = {"debug", "info",     "warning",
                                                 "error", "critical", NULL};
static const char *const console_command_names[] = {"help",     "stats", "conns", "backend",
                                                    "loglevel", "watch", "quit",  NULL};

static const console_command console_commands[] = {
    {"help", "[COMMAND]", "what the commands do", cmd_help, console_command_names},
    {"stats", "", "uptime, connections, the loop's I/O counters, memory", cmd_stats, NULL},
    {"conns", "", "connections per worker, and the console sessions", cmd_conns, NULL},
    {"backend", "", "the loops' backend", cmd_backend, NULL},
    {"loglevel", "[LEVEL]", "show or set kart's log level", cmd_loglevel, console_level_args},
    {"watch", "stats|off", "print stats above the prompt every second, or stop", cmd_watch,
     console_watch_args},
    {"quit", "", "end this session (C-d on an empty line too)", cmd_quit, NULL},
};
#define CONSOLE_NCOMMANDS (sizeof(console_commands) / sizeof(console_commands[0]))

static void cmd_help(console_session *s, int argc, char **argv, console_text *out)
{
    (void)s;
    for (size_t i = 0; i < CONSOLE_NCOMMANDS; i++) {
        const console_command *c = &console_commands[i];
        if (argc > 1 && strcmp(argv[1], c->name) != 0)
            continue;
        console_printf(out, "  %-8s %-10s %s\n", c->name, c->args, c->what);
        if (argc > 1)
            return;
    }
    if (argc > 1)
        console_printf(out, "help: no command '%s'\n", argv[1]);
    else
        console_printf(out, "Tab completes commands and their arguments; C-c stops a watch.\n");
}

static void console_run(console_session *s, char *line)
{
    char *argv[8];
    int argc = 0;
    for (char *p = strtok(line, " \t"); p; p = strtok(NULL, " \t")) {
        if (argc == 8) {
            argc = -1;
            break;
        }
        argv[argc++] = p;
    }
    if (argc == 0)
        return;
    console_text out = {0};
    const console_command *c = NULL;
    for (size_t i = 0; argc > 0 && i < CONSOLE_NCOMMANDS; i++)
        if (strcmp(argv[0], console_commands[i].name) == 0)
            c = &console_commands[i];
    if (argc < 0)
        console_printf(&out, "too many words\n");
    else if (!c)
        console_printf(&out, "%s: no such command (help lists them)\n", argv[0]);
    else
        c->run(s, argc, argv, &out);
    if (out.failed)
        console_emit(s, "out of memory\n", 14);
    else if (out.len)
        console_emit(s, out.p, out.len);
    free(out.p);
}

/* ---- completion ---- */

static void console_complete(kart_line *ed, const char *text, size_t begin, size_t end, void *arg)
{
    (void)arg;
    size_t len = 0;
    const char *buf = kart_line_buffer(ed, &len);
    /* The words before the one being completed. */
    size_t i = 0;
    while (i < begin && (buf[i] == ' ' || buf[i] == '\t'))
        i++;
    const char *const *words = console_command_names;
    if (i < begin) { /* an argument: the first word names the command */
        size_t w = i;
        while (w < begin && buf[w] != ' ' && buf[w] != '\t')
            w++;
        size_t rest = w;
        while (rest < begin && (buf[rest] == ' ' || buf[rest] == '\t'))
            rest++;
        words = NULL;
        if (rest == begin) /* only the first argument completes */
            for (size_t k = 0; k < CONSOLE_NCOMMANDS; k++)
                if (strlen(console_commands[k].name) == w - i &&
                    memcmp(console_commands[k].name, buf + i, w - i) == 0)
                    words = console_commands[k].complete;
    }
    for (size_t k = 0; words && words[k]; k++)
        if (strncmp(words[k], text, end - begin) == 0)
            kart_line_add_completion(ed, words[k], strlen(words[k]));
}

/* ---- sessions ---- */

static void console_history_path(const console_session *s, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s.history", console_srv.history_dir, s->name);
}

/* Appends this session's new entries to its file (created 0600), then
 * keeps the file to its newest CONSOLE_HISTORY_KEEP. */
static void console_history_save(console_session *s)
{
    if (!console_srv.history_dir || !s->hist || s->added == 0)
        return;
    char path[PATH_MAX];
    console_history_path(s, path, sizeof(path));
    int err = kart_history_append(s->hist, path, s->added);
    if (err == 0)
        err = kart_history_truncate_file(path, CONSOLE_HISTORY_KEEP);
    if (err < 0)
        kart_log(KART_LOG_WARNING, "console", "history %s: %s", path, kart_strerror(err));
    s->added = 0;
}

static void console_free_session(console_session *s)
{
    s->state = CONSOLE_DEAD;
    kart_timer_stop(&s->watch);
    kart_timer_stop(&s->linger);
    kart_line_free(s->ed); /* may write (the terminal restored): refused, DEAD */
    s->ed = NULL;
    console_history_save(s);
    kart_history_free(s->hist);
    if (s->conn)
        kart_conn_close(s->conn); /* pending sends end here, their buffers freed */
    s->prev->next = s->next;
    s->next->prev = s->prev;
    console_srv.nsessions--;
    free(s);
}

static void console_reap_cb(kart_timer *t)
{
    (void)t;
    console_session *list = console_srv.reap;
    console_srv.reap = NULL;
    while (list) {
        console_session *s = list;
        list = s->reap_next;
        s->reap_queued = 0;
        /* A session that ended well waits for its last output (its send
         * callback queues it again), up to the linger timeout. */
        if (s->state == CONSOLE_ENDING && !s->linger_out && (s->sends > 0 || !s->peer_gone))
            continue;
        console_free_session(s);
    }
}

static void console_reap_later(console_session *s)
{
    /* DEAD: being freed (kart_conn_close runs the send callbacks of what
     * was still queued, which land here). */
    if (s->reap_queued || s->state == CONSOLE_DEAD)
        return;
    s->reap_queued = 1;
    s->reap_next = console_srv.reap;
    console_srv.reap = s;
    kart_timer_start(&console_srv.reaper, console_reap_cb, 0, 0);
}

static void console_linger_cb(kart_timer *t)
{
    console_session *s = t->base.data;
    s->linger_out = 1;
    console_reap_later(s);
}

/* Drops a session at once (the client is gone or broke the protocol). */
static void console_abort(console_session *s)
{
    if (s->state == CONSOLE_DEAD)
        return;
    s->state = CONSOLE_ENDING;
    s->linger_out = 1;
    console_reap_later(s);
}

/* Ends a session: the editor stops, 'X' with why goes out, and the session
 * is freed once that is sent and the client has closed its end (or
 * CONSOLE_LINGER_NS passed). */
static void console_end(console_session *s, const char *why)
{
    if (s->state != CONSOLE_OPEN)
        return;
    kart_timer_stop(&s->watch);
    s->watching = 0;
    if (s->ed)
        kart_line_stop(s->ed);
    /* The history is in its file before the client hears the end, so that
     * its next session reads it (a session that breaks saves when freed). */
    console_history_save(s);
    console_send(s, 'X', why, strlen(why));
    s->state = CONSOLE_ENDING;
    kart_timer_start(&s->linger, console_linger_cb, CONSOLE_LINGER_NS, 0);
    if (s->sends == 0) /* the 'X' could not be queued */
        console_abort(s);
}

static void console_line_cb(kart_line *ed, int result, const char *line, size_t len, void *arg)
{
    console_session *s = arg;
    (void)ed;
    if (s->state != CONSOLE_OPEN)
        return;
    if (result == 0) {
        if (len > 0 && line[0] != ' ' && kart_history_add(s->hist, line, len) == 1)
            s->added++;
        char *copy = strndup(line, len);
        if (!copy) {
            console_emit(s, "out of memory\n", 14);
            return;
        }
        console_run(s, copy);
        free(copy);
    } else if (result == -EINTR) {
        if (s->watching) {
            kart_timer_stop(&s->watch);
            s->watching = 0;
            console_emit(s, "watch off\n", 10);
        }
    } else if (result == KART_EEOF) {
        if (!s->tty) /* a plain editor leaves the cursor after the prompt */
            console_emit(s, "\n", 1);
        console_end(s, "");
    } else {
        console_abort(s);
    }
}

/* Reads the hello: 'H', version, flags, cols (2), rows (2), NAME\0TERM.
 * Copies TERM into term (cap bytes). -1 when it is not one. */
static int console_hello(console_session *s, const unsigned char *m, size_t len, char *term,
                         size_t cap)
{
    if (len < 9 || m[1] != CONSOLE_WIRE_VERSION)
        return -1;
    const char *name = (const char *)m + 7;
    size_t rest = len - 7;
    const char *nul = memchr(name, 0, rest);
    if (!nul || !console_name_ok(name, (size_t)(nul - name)))
        return -1;
    size_t tlen = rest - (size_t)(nul - name) - 1;
    if (tlen >= cap || memchr(nul + 1, 0, tlen))
        return -1;
    memcpy(s->name, name, (size_t)(nul - name));
    s->name[nul - name] = 0;
    memcpy(term, nul + 1, tlen);
    term[tlen] = 0;
    s->tty = m[2] & CONSOLE_HELLO_TTY;
    s->cols = (unsigned)(m[3] << 8 | m[4]);
    s->rows = (unsigned)(m[5] << 8 | m[6]);
    return 0;
}

static void console_recv(kart_conn *c, int status, const void *msg, size_t len, void *arg);

/* Starts the editor once the hello has said who and what terminal. */
static int console_start_editor(console_session *s, const char *term)
{
    kart_history_options ho = {.ignore_dups = true, .ignore_space = true};
    int err = kart_history_create(&s->hist, &ho);
    if (err < 0)
        return err;
    kart_history_stifle(s->hist, CONSOLE_HISTORY_KEEP);
    if (console_srv.history_dir) {
        char path[PATH_MAX];
        console_history_path(s, path, sizeof(path));
        err = kart_history_read(s->hist, path, NULL);
        if (err < 0 && err != -ENOENT)
            kart_log(KART_LOG_WARNING, "console", "history %s: %s", path, kart_strerror(err));
    }
    char prompt[CONSOLE_NAME_MAX + 64];
    snprintf(prompt, sizeof(prompt), "%s@%s> ", s->name, console_srv.w->prog->name);
    kart_line_options lo = {
        .prompt = prompt,
        .history = s->hist,
        .app_name = "kart-console",
        .no_inputrc = true,
        .terminal = s->tty ? KART_LINE_TERMINAL_ON : KART_LINE_TERMINAL_OFF,
        .term = term[0] ? term : "xterm",
        .no_signals = true,
        .write = console_editor_write,
        .write_arg = s,
    };
    if ((err = kart_line_create(&s->ed, -1, -1, &lo)) < 0)
        return err;
    kart_line_hooks hooks = {.complete = console_complete, .arg = s};
    kart_line_set_hooks(s->ed, &hooks, NULL);
    if (s->cols && s->rows)
        kart_line_set_size(s->ed, s->cols, s->rows);
    else
        kart_line_set_size(s->ed, 80, 24);
    kart_line_get_size(s->ed, &s->cols, &s->rows);
    char banner[160];
    int n =
        snprintf(banner, sizeof(banner), "%s admin console, session #%u; help lists the commands\n",
                 console_srv.w->prog->name, s->id);
    console_emit(s, banner, (size_t)n);
    return kart_line_start(s->ed, console_line_cb, s);
}

static void console_recv(kart_conn *c, int status, const void *msg, size_t len, void *arg)
{
    (void)c;
    console_session *s = arg;
    if (status < 0)
        s->peer_gone = 1;
    if (s->state != CONSOLE_OPEN) { /* ending: what comes is dropped */
        if (status < 0 && s->sends == 0)
            console_reap_later(s);
        return;
    }
    if (status < 0) { /* the client went away (without 'E') or broke a frame */
        if (status != KART_EEOF && status != KART_ETRUNCATED)
            kart_log(KART_LOG_WARNING, "console", "session #%u: %s", s->id, kart_strerror(status));
        kart_conn_recv_stop(s->conn);
        console_abort(s);
        return;
    }
    const unsigned char *m = msg;
    if (len == 0)
        goto bad;
    if (!s->hello) {
        char term[64];
        if (m[0] != 'H' || console_hello(s, m, len, term, sizeof(term)) < 0)
            goto bad;
        s->hello = 1;
        if (console_start_editor(s, term) < 0)
            goto bad;
        return;
    }
    switch (m[0]) {
    case 'D':
        kart_line_feed(s->ed, m + 1, len - 1);
        return;
    case 'W':
        if (len != 5)
            goto bad;
        unsigned cols = (unsigned)(m[1] << 8 | m[2]), rows = (unsigned)(m[3] << 8 | m[4]);
        if (!cols || !rows)
            goto bad;
        s->cols = cols;
        s->rows = rows;
        kart_line_set_size(s->ed, cols, rows);
        return;
    case 'E':
        kart_line_feed_eof(s->ed); /* the pending line runs, then KART_EEOF */
        console_end(s, "");
        return;
    default:
        break;
    }
bad:
    kart_log(KART_LOG_WARNING, "console", "session #%u: bad message, dropped", s->id);
    kart_conn_recv_stop(s->conn);
    console_abort(s);
}

static void console_describe_peer(console_session *s, int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    snprintf(s->peer, sizeof(s->peer), "?");
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_UNIX) {
        struct ucred cr;
        socklen_t cl = sizeof(cr);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0)
            snprintf(s->peer, sizeof(s->peer), "pid %d uid %d", (int)cr.pid, (int)cr.uid);
    } else {
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
        snprintf(s->peer, sizeof(s->peer), "%s:%d", host, port);
    }
}

static void console_accept_cb(kart_listener *l, int status, kart_conn *c, void *arg);

/* Accepting again, CONSOLE_RETRY_NS after accept(2) ran out of descriptors
 * or memory (kart stops accepting then, so that the loop does not spin). */
#define CONSOLE_RETRY_NS (INT64_C(100) * 1000000)

static void console_retry_cb(kart_timer *t)
{
    (void)t;
    if (console_srv.stopping || !console_srv.listener)
        return;
    int err = kart_listener_accept_start(console_srv.listener, console_srv.w->loop,
                                         console_accept_cb, NULL);
    if (err < 0) {
        kart_log(KART_LOG_WARNING, "console", "accept: %s", kart_strerror(err));
        kart_timer_start(&console_srv.retry, console_retry_cb, CONSOLE_RETRY_NS, 0);
    }
}

static void console_accept_cb(kart_listener *l, int status, kart_conn *c, void *arg)
{
    (void)l;
    (void)arg;
    if (status < 0) {
        kart_log(KART_LOG_WARNING, "console", "accept: %s", kart_strerror(status));
        if (status == -EMFILE || status == -ENFILE || status == -ENOBUFS || status == -ENOMEM)
            kart_timer_start(&console_srv.retry, console_retry_cb, CONSOLE_RETRY_NS, 0);
        return;
    }
    int err;
    console_session *s = calloc(1, sizeof(*s));
    if (!s) {
        kart_conn_close(c);
        return;
    }
    s->conn = c;
    s->id = ++console_srv.next_id;
    s->since_ns = kart_loop_now(console_srv.w->loop);
    snprintf(s->name, sizeof(s->name), "?");
    console_describe_peer(s, kart_conn_fileno(c));
    kart_loop *loop = console_srv.w->loop;
    kart_timer_init(loop, &s->watch);
    kart_timer_init(loop, &s->linger);
    s->watch.base.data = s->linger.base.data = s;
    s->next = console_srv.head.next;
    s->prev = &console_srv.head;
    console_srv.head.next->prev = s;
    console_srv.head.next = s;
    console_srv.nsessions++;
    if ((err = kart_conn_attach(c, loop)) < 0 ||
        (err = kart_conn_recv_start(c, CONSOLE_WIRE_MAX, console_recv, s)) < 0) {
        kart_log(KART_LOG_WARNING, "console", "session #%u: %s", s->id, kart_strerror(err));
        console_abort(s);
    }
}

/*
 * Starts the console on worker 0's loop when --console was given: reads
 * the authkey (refusing to run without one), listens, and says
 * "console on ADDRESS" on stdout. Returns 0; a console that cannot start
 * (no key file, a bad key, a history directory it cannot write, an
 * address it cannot bind) ends the program (status 2 without a key file,
 * else 1) with the reason on stderr, before any other thread exists.
 */
static int console_worker_init(srv_worker *w)
{
    if (w->index != 0 || !console_srv.address)
        return 0;
    const char *name = w->prog->name;
    if (!console_srv.authkey_file) {
        fprintf(stderr, "%s: --console needs --console-authkey-file (an open console is refused)\n",
                name);
        exit(2);
    }
    char why[PATH_MAX + 128];
    ssize_t n = console_read_authkey(console_srv.authkey_file, console_srv.key,
                                     sizeof(console_srv.key), why, sizeof(why));
    if (n < 0) {
        fprintf(stderr, "%s: console authkey: %s\n", name, why);
        exit(1);
    }
    console_srv.keylen = (size_t)n;
    struct stat st;
    if (console_srv.history_dir &&
        (stat(console_srv.history_dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
         access(console_srv.history_dir, W_OK | X_OK) < 0)) {
        fprintf(stderr, "%s: --console-history %s: not a directory this user may write\n", name,
                console_srv.history_dir);
        exit(1);
    }
    console_srv.w = w;
    console_srv.head.next = console_srv.head.prev = &console_srv.head;
    kart_listener_options lo = {.auth = {.authkey = console_srv.key,
                                         .authkey_len = console_srv.keylen,
                                         .require_modern = 1,
                                         .timeout_ns = CONSOLE_HANDSHAKE_NS}};
    int err = kart_listener_create(&console_srv.listener, console_srv.address, &lo);
    if (err < 0) {
        fprintf(stderr, "%s: console on %s: %s\n", name, console_srv.address, kart_strerror(err));
        exit(1);
    }
    kart_timer_init(w->loop, &console_srv.reaper);
    kart_timer_init(w->loop, &console_srv.retry);
    if ((err = kart_listener_accept_start(console_srv.listener, w->loop, console_accept_cb, NULL)) <
        0) {
        fprintf(stderr, "%s: console: %s\n", name, kart_strerror(err));
        kart_listener_free(console_srv.listener);
        exit(1);
    }
    console_srv.started_ns = kart_loop_now(w->loop);
    char addr[PATH_MAX + 16];
    if (kart_listener_address(console_srv.listener, addr, sizeof(addr)) < 0)
        snprintf(addr, sizeof(addr), "%s", console_srv.address);
    printf("console on %s\n", addr);
    fflush(stdout);
    return 0;
}

/* The worker stops: no more sessions, each open one told and closed (its
 * history saved), the listener (and its unix path) gone. */
static void console_worker_stop(srv_worker *w)
{
    if (w->index != 0 || !console_srv.listener || console_srv.stopping)
        return;
    console_srv.stopping = 1;
    kart_timer_stop(&console_srv.retry);
    kart_listener_accept_stop(console_srv.listener);
    kart_listener_free(console_srv.listener);
    console_srv.listener = NULL;
    for (console_session *s = console_srv.head.next; s != &console_srv.head; s = s->next)
        console_end(s, "the server is stopping");
}

#endif

/*
 * core/line/line.c — the line editor object (kart/line.h): options, the
 * three drive modes (blocking, fed, loop), the input path (bytes → the
 * tty's special characters → the key reader → the dispatcher → the
 * command table), the end of a line, and the public calls.
 */
#include "debug.h"
#include "line_private.h"

#include "fault.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK 65536

/* ---- helpers ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void kart__line_bell(kart_line *ed)
{
    if (!ed->terminal)
        return;
    if (ed->set.bell_style == KART__BELL_AUDIBLE)
        kart__out(ed, "\a", 1);
}

const kart__keymap *kart__line_keymap(const kart_line *ed)
{
    return ed->maps[ed->map];
}

int kart__line_push_input(kart_line *ed, const char *s, size_t n)
{
    /* what is pushed is read before what was pushed earlier and not read
     * yet (a macro inside a macro runs at once) */
    size_t rest = ed->pushback.len - ed->pushpos;
    kart__lbuf nb = {0};
    if (kart__lbuf_add(&nb, s, n) < 0 ||
        kart__lbuf_add(&nb, ed->pushback.p ? ed->pushback.p + ed->pushpos : "", rest) < 0) {
        kart__lbuf_free(&nb);
        return -ENOMEM;
    }
    if (nb.len > (1u << 24)) {
        /* a macro that calls itself: stop it */
        kart__lbuf_free(&nb);
        return -ELOOP;
    }
    kart__lbuf_free(&ed->pushback);
    ed->pushback = nb;
    ed->pushpos = 0;
    return 0;
}

void kart__line_finish(kart_line *ed, int how, int err)
{
    if (ed->done)
        return;
    ed->done = how;
    ed->done_err = err;
}

static void inputrc_report(void *arg, const char *file, int line, const char *message)
{
    kart_line *ed = arg;
    ed->rc_errors++;
    /* Also in the runtime's log, whether or not the program has a hook. */
    kart__log(KART_LOG_WARNING, "line", "%s:%d: %s (line skipped)", file, line, message);
    if (ed->hooks.inputrc_error) {
        ed->depth++;
        ed->hooks.inputrc_error(ed, file, line, message, ed->hooks.arg);
        ed->depth--;
    }
}

static void rc_env(kart_line *ed, kart__inputrc_env *env)
{
    memset(env, 0, sizeof(*env));
    env->settings = &ed->set;
    for (int i = 0; i < KART__MAP_COUNT; i++)
        env->maps[i] = ed->maps[i];
    env->app_name = ed->app_name ? ed->app_name : "other";
    env->term = ed->term;
    env->report = inputrc_report;
    env->report_arg = ed;
}

/* What a `set` may have changed. */
static void settings_changed(kart_line *ed, bool was_vi, bool was_hscroll)
{
    if (ed->set.vi_mode != was_vi)
        ed->map = ed->set.vi_mode ? KART__MAP_VI_INSERT : KART__MAP_EMACS;
    if (ed->set.horizontal_scroll_mode != was_hscroll && ed->d.shown) {
        kart__display_clear(ed);
        kart__display_invalidate(ed);
    }
}

void kart__line_load_inputrc(kart_line *ed)
{
    if (ed->inputrc_tried)
        return;
    ed->inputrc_tried = true;
    if (ed->no_inputrc)
        return;
    kart__inputrc_env env;
    rc_env(ed, &env);
    bool vi = ed->set.vi_mode, hs = ed->set.horizontal_scroll_mode;
    if (ed->inputrc)
        kart__inputrc_read(&env, ed->inputrc);
    else
        kart__inputrc_read_default(&env);
    settings_changed(ed, vi, hs);
}

/* ---- create / free ---- */

KART_API int kart_line_create(kart_line **out, int in_fd, int out_fd, const kart_line_options *opts)
{
    static const kart_line_options none;
    if (!opts)
        opts = &none;
    if (!out || in_fd < -1 || (out_fd < 0 && !opts->write))
        return -EINVAL;
    kart_line *ed = calloc(1, sizeof(*ed));
    if (!ed)
        return -ENOMEM;
    ed->in_fd = in_fd;
    ed->out_fd = opts->write ? -1 : out_fd;
    ed->write_fn = opts->write;
    ed->write_arg = opts->write_arg;
    ed->out_sock = -1;
    ed->hist = opts->history;
    ed->auto_history = opts->auto_history;
    ed->no_inputrc = opts->no_inputrc;
    ed->next_hist = SIZE_MAX;
    ed->comp_append = ' ';
    ed->map = KART__MAP_EMACS;
    int err = -ENOMEM;
    ed->prompt = strdup(opts->prompt ? opts->prompt : "");
    ed->app_name = dup_or_null(opts->app_name);
    ed->inputrc = dup_or_null(opts->inputrc);
    const char *term = opts->term ? opts->term : getenv("TERM");
    ed->term = dup_or_null(term);
    if (!ed->prompt || (opts->app_name && !ed->app_name) || (opts->inputrc && !ed->inputrc) ||
        (term && !ed->term))
        goto fail;
    if (kart__line_settings_init(&ed->set) < 0)
        goto fail;
    for (int i = 0; i < KART__MAP_COUNT; i++) {
        err = kart__keymap_create_default(&ed->maps[i], (kart__map_id)i);
        if (err < 0)
            goto fail_set;
    }
    err = -ENOMEM;
    if (kart__lbuf_reserve(&ed->line, 0) < 0)
        goto fail_set;
    ed->line.p[0] = '\0';
    kart__keyreader_init(&ed->kr);
    bool dumb = !ed->term || !*ed->term || strcmp(ed->term, "dumb") == 0;
    switch (opts->terminal) {
    case KART_LINE_TERMINAL_ON:
        ed->terminal = true;
        break;
    case KART_LINE_TERMINAL_OFF:
        ed->terminal = false;
        break;
    default: {
        bool in_ok = in_fd < 0 || isatty(in_fd);
        bool out_ok = !opts->write && out_fd >= 0 && isatty(out_fd);
        ed->terminal = in_ok && out_ok && !dumb;
        break;
    }
    }
    kart__term_setup(ed);
    kart__term_update_size(ed);
    ed->no_signals = opts->no_signals;
    kart__display_reset(ed);
    kart__hist_reset(ed);
    *out = ed;
    return 0;
fail_set:
    for (int i = 0; i < KART__MAP_COUNT; i++)
        kart__keymap_free(ed->maps[i]);
    kart__line_settings_destroy(&ed->set);
fail:
    kart__lbuf_free(&ed->line);
    free(ed->prompt);
    free(ed->app_name);
    free(ed->inputrc);
    free(ed->term);
    free(ed);
    return err;
}

static void cancel_modes(kart_line *ed)
{
    kart__search_cancel(ed);
    kart__complete_cancel(ed);
    kart__edit_cancel(ed);
    ed->mode_fn = NULL;
    free(ed->mode_prompt);
    ed->mode_prompt = NULL;
}

static void stop_watchers(kart_line *ed);

static void destroy(kart_line *ed)
{
    stop_watchers(ed);
    if (ed->started || ed->prepped) {
        cancel_modes(ed);
        kart__display_move_end(ed);
        if (ed->d.shown)
            kart__out(ed, "\r\n", 2);
        kart__term_deprep(ed);
        kart__out_flush(ed, false);
    }
    cancel_modes(ed);
    kart__hist_reset(ed);
    kart__edit_free(ed);
    kart__complete_free(ed);
    kart__display_free(&ed->d);
    for (int i = 0; i < KART__MAP_COUNT; i++)
        kart__keymap_free(ed->maps[i]);
    kart__line_settings_destroy(&ed->set);
    kart__lbuf_free(&ed->out);
    kart__lbuf_free(&ed->outq);
    kart__lbuf_free(&ed->inbuf);
    kart__lbuf_free(&ed->pushback);
    kart__lbuf_free(&ed->isearch);
    kart__lbuf_free(&ed->last_isearch);
    kart__lbuf_free(&ed->nsearch);
    kart__lbuf_free(&ed->hsearch);
    kart__lbuf_free(&ed->macro);
    kart__lbuf_free(&ed->macro_rec);
    kart__lbuf_free(&ed->held);
    free(ed->prompt);
    free(ed->mode_prompt);
    free(ed->app_name);
    free(ed->inputrc);
    free(ed->term);
    free(ed);
}

KART_API void kart_line_free(kart_line *ed)
{
    if (!ed)
        return;
    if (ed->depth > 0) {
        ed->free_pending = true;
        ed->stop_pending = true;
        return;
    }
    destroy(ed);
}

/* ---- the start and end of a line ---- */

/* The prompt's visible text (plain mode writes no escapes). */
static void plain_prompt(kart_line *ed)
{
    const char *p = ed->prompt ? ed->prompt : "";
    size_t n = strlen(p);
    size_t i = 0;
    while (i < n) {
        if (p[i] == '\001') {
            while (i < n && p[i] != '\002')
                i++;
            i++;
            continue;
        }
        if (p[i] == '\033') {
            if (i + 1 < n && p[i + 1] == '[') {
                i += 2;
                while (i < n && !((unsigned char)p[i] >= 0x40 && (unsigned char)p[i] <= 0x7e))
                    i++;
                i++;
            } else if (i + 1 < n && p[i + 1] == ']') {
                i += 2;
                while (i < n && p[i] != '\a' && !(p[i] == '\033' && i + 1 < n && p[i + 1] == '\\'))
                    i++;
                i += p[i] == '\a' ? 1 : 2;
            } else {
                i += 2;
            }
            continue;
        }
        kart__out(ed, p + i, 1);
        i++;
    }
}

static void line_begin(kart_line *ed)
{
    if (ed->terminal)
        kart__line_load_inputrc(ed);
    cancel_modes(ed);
    kart__edit_reset_line(ed);
    kart__hist_reset(ed);
    ed->map = ed->set.vi_mode ? KART__MAP_VI_INSERT : KART__MAP_EMACS;
    ed->overwrite = false;
    ed->done = KART__DONE_NO;
    ed->done_err = 0;
    ed->last_fn = ed->this_fn = KART__FN_NONE;
    ed->last_kill = ed->last_yank = ed->last_yla = false;
    ed->lastc = 0;
    ed->in_arg = false;
    ed->count = 1;
    ed->arg_sign = 1;
    ed->hidden = false;
    ed->stop_pending = false;
    if (ed->terminal) {
        kart__term_update_size(ed);
        kart__term_prep(ed);
        kart__display_reset(ed);
    }
    if (ed->hooks.startup) {
        ed->depth++;
        ed->hooks.startup(ed, ed->hooks.arg);
        ed->depth--;
    }
    if (ed->next_hist != SIZE_MAX) {
        if (ed->next_hist < kart__hist_length(ed))
            kart__hist_goto(ed, ed->next_hist);
        ed->next_hist = SIZE_MAX;
    }
    if (ed->terminal)
        kart__display_refresh(ed);
    else
        plain_prompt(ed);
    if (ed->hooks.pre_input) {
        ed->depth++;
        ed->hooks.pre_input(ed, ed->hooks.arg);
        ed->depth--;
        kart__display_refresh(ed);
    }
}

/* The screen and terminal at the end of a line. */
static void line_end(kart_line *ed)
{
    int how = ed->done;
    cancel_modes(ed);
    if (ed->terminal) {
        bool nl_after = ed->drive != KART__DRIVE_BLOCK;
        switch (how) {
        case KART__DONE_LINE:
            kart__display_refresh(ed);
            kart__display_finish(ed, true);
            break;
        case KART__DONE_INTR:
            kart__display_refresh(ed);
            kart__display_move_end(ed);
            if (ed->set.echo_control_characters && ed->d.shown)
                kart__out(ed, "^C", 2);
            if (nl_after)
                kart__out(ed, "\r\n", 2);
            kart__display_reset(ed);
            break;
        default:
            kart__display_refresh(ed);
            kart__display_move_end(ed);
            if (nl_after && ed->d.shown)
                kart__out(ed, "\r\n", 2);
            kart__display_reset(ed);
            break;
        }
        kart__term_deprep(ed);
    } else if (how == KART__DONE_LINE && ed->plain_echo) {
        kart__out(ed, ed->line.p, ed->line.len);
        kart__out(ed, "\n", 1);
    }
    if (how == KART__DONE_LINE)
        kart__hist_accept(ed);
    else
        kart__hist_reset(ed);
}

/* History expansion (the history's `expand` option) and auto-history.
 * Returns false when the line is not to be handed out (an expansion
 * error, or :p): the message or line has been written. */
static bool line_accept(kart_line *ed)
{
    if (ed->hist) {
        kart_history_options ho;
        kart_history_get_options(ed->hist, &ho);
        if (ho.expand) {
            kart_history_expansion x;
            memset(&x, 0, sizeof(x));
            int r = kart_history_expand(ed->hist, ed->line.p, ed->line.len, &x);
            if (r == 0) {
                if (x.expanded || x.print_only) {
                    kart__out(ed, x.text, x.len);
                    kart__out(ed, ed->terminal ? "\r\n" : "\n", ed->terminal ? 2 : 1);
                }
                ed->line.len = 0;
                kart__lbuf_add(&ed->line, x.text, x.len);
                free(x.text);
                if (x.print_only) {
                    kart_history_add(ed->hist, ed->line.p, ed->line.len);
                    return false;
                }
            } else if (r != -ENOMEM && r != -EINVAL) {
                kart__outs(ed, x.message);
                kart__out(ed, ed->terminal ? "\r\n" : "\n", ed->terminal ? 2 : 1);
                return false;
            }
        }
        if (ed->auto_history && ed->line.len > 0) {
            size_t n = kart_history_length(ed->hist), l = 0;
            const char *last = n ? kart_history_text(ed->hist, n - 1, &l) : NULL;
            if (!last || l != ed->line.len || memcmp(last, ed->line.p, l) != 0)
                kart_history_add(ed->hist, ed->line.p, ed->line.len);
        }
    }
    return true;
}

/* ---- the input path ---- */

static void dispatch_key(kart_line *ed, const kart__key *key);

static void run_cmd(kart_line *ed, enum kart__line_fn fn, int count, bool expl,
                    const kart__key *key)
{
    if (fn <= KART__FN_NONE || fn >= KART__FN_COUNT) {
        kart__line_bell(ed);
        return;
    }
    kart__line_cmd cmd = kart__line_cmds[fn] ? kart__line_cmds[fn] : kart__line_vi_cmds[fn];
    if (ed->cmd_depth > 0) {
        /* a command running another: one command for undo and the
         * last-command bookkeeping */
        enum kart__line_fn outer = ed->this_fn;
        bool e = ed->explicit_arg;
        ed->this_fn = fn;
        ed->explicit_arg = expl;
        if (cmd)
            cmd(ed, count, key);
        else
            kart__line_bell(ed);
        ed->this_fn = outer;
        ed->explicit_arg = e;
        return;
    }
    ed->this_fn = fn;
    ed->explicit_arg = expl;
    ed->this_kill = ed->this_yank = ed->this_yla = false;
    ed->cmd_depth++;
    kart__edit_begin_command(ed);
    if (cmd)
        cmd(ed, count, key);
    else
        kart__line_bell(ed);
    kart__edit_end_command(ed);
    ed->cmd_depth--;
    if (fn != KART__FN_DIGIT_ARGUMENT && fn != KART__FN_UNIVERSAL_ARGUMENT) {
        ed->last_fn = fn;
        ed->last_kill = ed->this_kill;
        ed->last_yank = ed->this_yank;
        ed->last_yla = ed->this_yla;
    }
    ed->explicit_arg = false;
}

void kart__line_run(kart_line *ed, enum kart__line_fn fn, int count, const kart__key *key)
{
    run_cmd(ed, fn, count, ed->explicit_arg, key);
}

static void run_key(kart_line *ed, enum kart__line_fn fn, const kart__key *key)
{
    int count = 1;
    bool expl = false;
    if (ed->in_arg && fn != KART__FN_DIGIT_ARGUMENT && fn != KART__FN_UNIVERSAL_ARGUMENT) {
        count = ed->arg_sign * ed->count;
        expl = true;
        ed->in_arg = false;
        ed->count = 1;
        ed->arg_sign = 1;
    }
    run_cmd(ed, fn, count, expl, key);
}

static void dispatch_key(kart_line *ed, const kart__key *key)
{
    ed->rec_key_len = key->len;
    if (ed->mode_fn && ed->mode_fn(ed, key))
        return;
    if (ed->done)
        return;
    switch (key->kind) {
    case KART__KEY_INSERT:
        run_key(ed, KART__FN_SELF_INSERT, key);
        break;
    case KART__KEY_BOUND:
        if (key->binding.kind == KART__BIND_MACRO) {
            ed->in_arg = false;
            kart__line_push_input(ed, key->binding.macro, key->binding.macro_len);
        } else {
            run_key(ed, key->binding.fn, key);
        }
        break;
    default:
        ed->in_arg = false;
        kart__line_bell(ed);
        break;
    }
}

static void process_byte(kart_line *ed, unsigned char c);

/* Runs the keys the reader has resolved (first: one already in hand). */
static void dispatch_ready(kart_line *ed, kart__key *first)
{
    kart__key key;
    kart__key_kind kind;
    if (first) {
        key = *first;
        kind = key.kind;
    } else {
        kind = kart__keyreader_next(&ed->kr, kart__line_keymap(ed), &key);
    }
    while (kind != KART__KEY_NONE && !ed->done && !ed->stop_pending) {
        if (ed->raw_fn) {
            for (size_t i = 0; i < key.len; i++) {
                if (ed->raw_fn)
                    ed->raw_fn(ed, (unsigned char)key.bytes[i]);
                else
                    process_byte(ed, (unsigned char)key.bytes[i]);
            }
        } else {
            dispatch_key(ed, &key);
        }
        if (ed->done)
            return;
        kind = kart__keyreader_next(&ed->kr, kart__line_keymap(ed), &key);
    }
}

/* Resolves a sequence left waiting (the timeout passed, or input ends). */
static void resolve_pending(kart_line *ed)
{
    int guard = 0;
    while (!ed->done && kart__keyreader_pending(&ed->kr) && guard++ < 2 * KART__KEYSEQ_MAX) {
        kart__key key;
        kart__key_kind kind = kart__keyreader_timeout(&ed->kr, kart__line_keymap(ed), &key);
        if (kind == KART__KEY_NONE)
            break;
        dispatch_ready(ed, &key);
    }
}

static void interrupt(kart_line *ed)
{
    cancel_modes(ed);
    kart__line_finish(ed, KART__DONE_INTR, 0);
}

static bool signals_handled(const kart_line *ed);

static void plain_byte(kart_line *ed, unsigned char c)
{
    if (c == '\n') {
        if (ed->line.len > 0 && ed->line.p[ed->line.len - 1] == '\r')
            ed->line.p[--ed->line.len] = '\0';
        kart__line_finish(ed, KART__DONE_LINE, 0);
        return;
    }
    kart__lbuf_add(&ed->line, &c, 1);
}

static void process_byte(kart_line *ed, unsigned char c)
{
    if (!ed->terminal) {
        plain_byte(ed, c);
        return;
    }
    if (ed->raw_fn) {
        ed->raw_fn(ed, c);
        return;
    }
    if (c != 0 && c == ed->c_intr) {
        resolve_pending(ed);
        if (!ed->done)
            interrupt(ed);
        return;
    }
    if (ed->specials && c != 0 && (c == ed->c_susp || c == ed->c_quit)) {
        resolve_pending(ed);
        if (ed->done)
            return;
        kart__display_refresh(ed);
        if (c == ed->c_susp)
            kart__term_suspend(ed, signals_handled(ed));
        else
            kart__term_quit(ed);
        return;
    }
    if (c != 0 && c == ed->c_eof && ed->line.len == 0 && ed->lastc != c && !ed->mode_fn &&
        !kart__keyreader_pending(&ed->kr)) {
        ed->lastc = c;
        kart__line_finish(ed, KART__DONE_EOF, 0);
        return;
    }
    ed->lastc = c;
    kart__key key;
    kart__key_kind kind = kart__keyreader_feed(&ed->kr, kart__line_keymap(ed), c, &key);
    if (kind != KART__KEY_NONE)
        dispatch_ready(ed, &key);
}

/* Processes input until it runs out or the line ends. */
static void process_input(kart_line *ed)
{
    while (!ed->done && !ed->stop_pending) {
        if (ed->terminal && ed->kr.ready > 0) {
            /* keys the reader resolved already come before newer bytes
             * (to a raw reader such as quoted-insert too) */
            dispatch_ready(ed, NULL);
            continue;
        }
        if (ed->pushpos < ed->pushback.len) {
            process_byte(ed, (unsigned char)ed->pushback.p[ed->pushpos++]);
            if (ed->pushpos >= ed->pushback.len)
                ed->pushback.len = ed->pushpos = 0;
            continue;
        }
        if (ed->inpos < ed->inbuf.len) {
            unsigned char c = (unsigned char)ed->inbuf.p[ed->inpos++];
            if (ed->recording)
                kart__lbuf_add(&ed->macro_rec, &c, 1);
            process_byte(ed, c);
            continue;
        }
        break;
    }
    if (ed->inpos >= ed->inbuf.len) {
        ed->inbuf.len = ed->inpos = 0;
    } else if (ed->inpos > 65536 && ed->inpos > ed->inbuf.len / 2) {
        memmove(ed->inbuf.p, ed->inbuf.p + ed->inpos, ed->inbuf.len - ed->inpos);
        ed->inbuf.len -= ed->inpos;
        ed->inpos = 0;
    }
}

static int64_t pending_timeout(const kart_line *ed)
{
    if (!ed->terminal || ed->raw_fn || !kart__keyreader_pending(&ed->kr) || ed->kr.ready > 0)
        return -1;
    if (ed->set.keyseq_timeout <= 0)
        return -1;
    int64_t deadline = ed->kr.since + (int64_t)ed->set.keyseq_timeout * 1000000;
    int64_t left = deadline - kart_now_ns();
    return left > 0 ? left : 0;
}

/* ---- blocking mode ---- */

static bool signals_handled(const kart_line *ed)
{
    return ed->sigs_on;
}

/* A malloc'd, NUL-terminated copy of n bytes at p, for the caller. */
static int copy_out(const char *p, size_t n, char **line, size_t *len)
{
    char *s = malloc(n + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, p ? p : "", n);
    s[n] = '\0';
    *line = s;
    *len = n;
    return 0;
}

static int read_line(kart_line *ed)
{
    ed->drive = KART__DRIVE_BLOCK;
    kart__sigsave *sigs = NULL;
    int result;
    char buf[READ_CHUNK];
again:
    line_begin(ed);
    if (ed->terminal && ed->in_tty && !ed->no_signals && !sigs)
        sigs = kart__term_signals_install(ed);
    ed->sigs_on = sigs != NULL;
    for (;;) {
        process_input(ed);
        if (!ed->done && (ed->stop_pending || ed->free_pending))
            kart__line_finish(ed, KART__DONE_ERR, -ECANCELED); /* from a hook */
        if (ed->done)
            break;
        kart__display_refresh(ed);
        int fr = kart__out_flush(ed, true);
        if (fr < 0 && fr != -EAGAIN) {
            kart__line_finish(ed, KART__DONE_ERR, fr);
            break;
        }
        int64_t timeout = pending_timeout(ed);
        int w = kart__term_wait(ed, sigs, timeout);
        if (w == -EINTR) {
            if (kart__term_handle_signals(ed, sigs) == -EINTR)
                interrupt(ed);
            continue;
        }
        if (w == 0) {
            resolve_pending(ed);
            continue;
        }
        if (w < 0) {
            kart__line_finish(ed, KART__DONE_ERR, w);
            break;
        }
        ssize_t n = kart__sys_read(ed->in_fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n == 0 || (n < 0 && errno == EIO)) {
            /* end of input: what was typed is the line (GNU) */
            resolve_pending(ed);
            if (ed->done)
                break;
            if (ed->line.len > 0)
                kart__line_finish(ed, KART__DONE_LINE, 0);
            else
                kart__line_finish(ed, KART__DONE_EOF, 0);
            break;
        }
        if (n < 0) {
            kart__line_finish(ed, KART__DONE_ERR, -errno);
            break;
        }
        if (kart__lbuf_add(&ed->inbuf, buf, (size_t)n) < 0) {
            kart__line_finish(ed, KART__DONE_ERR, -ENOMEM);
            break;
        }
    }
    int how = ed->done;
    line_end(ed);
    ed->stop_pending = false;
    if (how == KART__DONE_LINE && !ed->free_pending && !line_accept(ed)) {
        kart__out_flush(ed, true);
        goto again;
    }
    int fr = kart__out_flush(ed, true);
    kart__term_signals_remove(sigs);
    ed->sigs_on = false;
    ed->drive = KART__DRIVE_NONE;
    switch (how) {
    case KART__DONE_LINE:
        result = 0;
        break;
    case KART__DONE_EOF:
        result = KART_EEOF;
        break;
    case KART__DONE_INTR:
        result = -EINTR;
        break;
    default:
        result = ed->done_err ? ed->done_err : -EIO;
        break;
    }
    if (result == 0 && fr < 0 && fr != -EAGAIN)
        result = fr;
    return result;
}

/* The blocking read both read calls share: -EINVAL without an input fd,
 * -ECANCELED when a hook freed the editor (it is gone when this returns). */
static int read_blocking(kart_line *ed)
{
    if (ed->in_fd < 0)
        return -EINVAL;
    int r = read_line(ed);
    if (ed->free_pending) {
        destroy(ed);
        return -ECANCELED;
    }
    return r;
}

KART_API int kart_line_read(kart_line *ed, char **line, size_t *len)
{
    if (!ed || !line || !len)
        return -EINVAL;
    if (ed->drive != KART__DRIVE_NONE || ed->started || ed->depth > 0)
        return -EBUSY;
    if (ed->held_valid) {
        int r = copy_out(ed->held.p, ed->held.len, line, len);
        if (r == 0)
            ed->held_valid = false;
        return r;
    }
    int r = read_blocking(ed);
    if (r < 0)
        return r;
    return copy_out(ed->line.p, ed->line.len, line, len);
}

KART_API int kart_line_read_into(kart_line *ed, char *buf, size_t cap, size_t *len)
{
    if (!ed || (!buf && cap) || !len)
        return -EINVAL;
    if (!ed->held_valid) {
        if (ed->drive != KART__DRIVE_NONE || ed->started || ed->depth > 0)
            return -EBUSY;
        int r = read_blocking(ed);
        if (r < 0)
            return r;
        ed->held.len = 0;
        if (kart__lbuf_add(&ed->held, ed->line.p, ed->line.len) < 0)
            return -ENOMEM;
        ed->held_valid = true;
    }
    if (cap <= ed->held.len) {
        *len = ed->held.len;
        return -ENOBUFS;
    }
    memcpy(buf, ed->held.p ? ed->held.p : "", ed->held.len);
    buf[ed->held.len] = '\0';
    *len = ed->held.len;
    ed->held_valid = false;
    return 0;
}

/* ---- fed and loop modes ---- */

static void loop_arm(kart_line *ed);

/* Hands a finished line to the callback and starts the next one. */
static void deliver(kart_line *ed)
{
    int how = ed->done;
    line_end(ed);
    bool hand = true;
    if (how == KART__DONE_LINE)
        hand = line_accept(ed);
    kart__out_flush(ed, false);
    int result = how == KART__DONE_LINE   ? 0
                 : how == KART__DONE_EOF  ? KART_EEOF
                 : how == KART__DONE_INTR ? -EINTR
                                          : (ed->done_err ? ed->done_err : -EIO);
    bool last = how == KART__DONE_EOF || how == KART__DONE_ERR;
    if (last) {
        ed->started = false;
        stop_watchers(ed);
        ed->drive = KART__DRIVE_NONE;
    }
    if (hand && ed->cb) {
        ed->depth++;
        ed->cb(ed, result, how == KART__DONE_LINE ? ed->line.p : NULL,
               how == KART__DONE_LINE ? ed->line.len : 0, ed->cb_arg);
        ed->depth--;
    }
    ed->done = KART__DONE_NO;
    if (ed->started && !ed->stop_pending && !ed->free_pending && !ed->eof_seen)
        line_begin(ed);
}

static void end_started(kart_line *ed)
{
    /* stop: the cursor below the text, the terminal restored */
    cancel_modes(ed);
    if (ed->terminal) {
        kart__display_move_end(ed);
        if (ed->d.shown)
            kart__out(ed, "\r\n", 2);
        kart__display_reset(ed);
        kart__term_deprep(ed);
    }
    kart__out_flush(ed, false);
    kart__hist_reset(ed);
    ed->started = false;
    ed->done = KART__DONE_NO;
}

/* Runs what input there is; delivers lines. */
static void run_input(kart_line *ed)
{
    ed->depth++;
    while (ed->started && !ed->free_pending) {
        process_input(ed);
        if (ed->done) {
            deliver(ed);
            continue;
        }
        break;
    }
    if (ed->stop_pending && ed->started)
        end_started(ed);
    ed->stop_pending = false;
    if (ed->started)
        kart__display_refresh(ed);
    kart__out_flush(ed, false);
    if (ed->started && ed->out_err && !ed->free_pending) {
        /* the output failed: the line ends with that error */
        kart__line_finish(ed, KART__DONE_ERR, ed->out_err);
        deliver(ed);
    }
    ed->depth--;
    if (ed->drive == KART__DRIVE_LOOP)
        loop_arm(ed);
}

static int after_run(kart_line *ed)
{
    if (ed->free_pending && ed->depth == 0) {
        destroy(ed);
        return 0;
    }
    return ed->out_err && ed->out_err != -EAGAIN ? ed->out_err : 0;
}

KART_API int kart_line_start(kart_line *ed, kart_line_cb cb, void *arg)
{
    if (!ed || !cb)
        return -EINVAL;
    if (ed->started || ed->drive != KART__DRIVE_NONE)
        return -EBUSY;
    ed->drive = KART__DRIVE_FED;
    ed->cb = cb;
    ed->cb_arg = arg;
    ed->started = true;
    ed->eof_seen = false;
    ed->depth++;
    line_begin(ed);
    ed->depth--;
    run_input(ed);
    return after_run(ed);
}

KART_API int kart_line_feed(kart_line *ed, const void *data, size_t len)
{
    if (!ed || (!data && len))
        return -EINVAL;
    if (!ed->started)
        return -EINVAL;
    if (len && kart__lbuf_add(&ed->inbuf, data, len) < 0)
        return -ENOMEM;
    run_input(ed);
    return after_run(ed);
}

static void input_ended(kart_line *ed)
{
    ed->depth++;
    ed->eof_seen = true;
    process_input(ed);
    if (ed->started && !ed->done) {
        ed->inbuf.len = ed->inpos = 0;
        resolve_pending(ed);
        process_input(ed);
    }
    if (ed->started && ed->done) {
        deliver(ed);
    }
    if (ed->started && !ed->free_pending) {
        /* the line typed so far, then the end */
        if (ed->line.len > 0)
            kart__line_finish(ed, KART__DONE_LINE, 0);
        if (ed->done) {
            ed->eof_seen = true;
            deliver(ed);
        }
        if (ed->started && !ed->free_pending) {
            kart__line_finish(ed, KART__DONE_EOF, 0);
            deliver(ed);
        }
    }
    ed->depth--;
    ed->eof_seen = false;
}

KART_API int kart_line_feed_eof(kart_line *ed)
{
    if (!ed || !ed->started)
        return -EINVAL;
    input_ended(ed);
    return after_run(ed);
}

KART_API int64_t kart_line_timeout(const kart_line *ed)
{
    if (!ed || !ed->started)
        return -1;
    return pending_timeout(ed);
}

KART_API int kart_line_tick(kart_line *ed)
{
    if (!ed || !ed->started)
        return ed ? 0 : -EINVAL;
    if (pending_timeout(ed) != 0)
        return 0;
    ed->depth++;
    resolve_pending(ed);
    ed->depth--;
    run_input(ed);
    return after_run(ed);
}

KART_API void kart_line_stop(kart_line *ed)
{
    if (!ed)
        return;
    if (ed->drive == KART__DRIVE_LOOP)
        stop_watchers(ed);
    if (ed->depth > 0) {
        ed->stop_pending = true;
        if (ed->started) {
            end_started(ed);
            ed->stop_pending = true;
        }
        if (ed->drive != KART__DRIVE_BLOCK)
            ed->drive = KART__DRIVE_NONE;
        return;
    }
    if (ed->started)
        end_started(ed);
    if (ed->drive != KART__DRIVE_BLOCK)
        ed->drive = KART__DRIVE_NONE;
}

/* ---- loop mode ---- */

static void on_timer(kart_timer *t)
{
    kart_line *ed = t->base.data;
    ed->timer_on = false;
    ed->depth++;
    resolve_pending(ed);
    ed->depth--;
    run_input(ed);
    after_run(ed);
}

static void on_output(kart_watch *io, uint32_t events)
{
    kart_line *ed = io->base.data;
    (void)events;
    kart__out_flush(ed, false);
    loop_arm(ed);
}

static void on_input(kart_watch *io, uint32_t events)
{
    kart_line *ed = io->base.data;
    if ((events & KART_WRITABLE) && ed->outq.len > 0)
        kart__out_flush(ed, false);
    if (!(events & (KART_READABLE | KART_HANGUP | KART_ERROR | KART_RDHUP)) || !ed->started) {
        loop_arm(ed);
        return;
    }
    char buf[READ_CHUNK];
    ssize_t n = kart__sys_read(ed->in_fd, buf, sizeof(buf));
    if ((events & KART_ERROR) && (n > 0 || (n < 0 && errno == EAGAIN)) && ed->io_on) {
        /* An error that the descriptor does not have: the io_uring
         * backend reports one, and watches no more, when the process was
         * stopped and continued (SIGTSTP, then fg): watch it anew. */
        kart_watch_stop(&ed->io);
        ed->io_on = kart_watch_start(&ed->io, ed->io_events, on_input) == 0;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
        loop_arm(ed);
        return;
    }
    if (n == 0 || (n < 0 && errno == EIO)) {
        input_ended(ed);
        after_run(ed);
        return;
    }
    if (n < 0) {
        int e = -errno;
        ed->depth++;
        kart__line_finish(ed, KART__DONE_ERR, e);
        deliver(ed);
        ed->depth--;
        after_run(ed);
        return;
    }
    if (kart__lbuf_add(&ed->inbuf, buf, (size_t)n) < 0)
        return;
    run_input(ed);
    after_run(ed);
}

/* Re-arms the timer (a sequence waits) and the writable watch (output
 * queued). */
static void loop_arm(kart_line *ed)
{
    if (ed->drive != KART__DRIVE_LOOP || !ed->loop)
        return;
    int64_t t = ed->started ? pending_timeout(ed) : -1;
    if (t >= 0) {
        if (kart_timer_start(&ed->timer, on_timer, t, 0) == 0)
            ed->timer_on = true;
    } else if (ed->timer_on) {
        kart_timer_stop(&ed->timer);
        ed->timer_on = false;
    }
    bool want_out = ed->outq.len > 0 && !ed->write_fn && ed->out_fd >= 0;
    if (ed->out_fd == ed->in_fd) {
        uint32_t ev = KART_READABLE | (want_out ? KART_WRITABLE : 0);
        if (ed->io_on && ev != ed->io_events && kart_watch_start(&ed->io, ev, on_input) == 0)
            ed->io_events = ev;
    } else if (want_out && !ed->out_io_on) {
        if (kart_watch_init(ed->loop, &ed->out_io, ed->out_fd) == 0) {
            ed->out_io.base.data = ed;
            ed->out_io_on = kart_watch_start(&ed->out_io, KART_WRITABLE, on_output) == 0;
        }
    } else if (!want_out && ed->out_io_on) {
        kart_watch_stop(&ed->out_io);
        ed->out_io_on = false;
    }
}

static void on_signal(kart_signal *s, int signum)
{
    kart_line *ed = s->base.data;
    if (!ed->started)
        return;
    if (signum == SIGWINCH) {
        unsigned c = ed->cols, r = ed->rows;
        kart__term_update_size(ed);
        if (c != ed->cols || r != ed->rows) {
            kart__display_resize(ed);
            kart__display_refresh(ed);
            kart__out_flush(ed, false);
        }
    } else if (signum == SIGCONT) {
        kart__term_continued(ed);
    } else if (signum == SIGTSTP) {
        kart__term_stop_self(ed);
    }
}

static void stop_watchers(kart_line *ed)
{
    if (ed->io_on) {
        kart_watch_stop(&ed->io);
        ed->io_on = false;
    }
    if (ed->out_io_on) {
        kart_watch_stop(&ed->out_io);
        ed->out_io_on = false;
    }
    if (ed->timer_on) {
        kart_timer_stop(&ed->timer);
        ed->timer_on = false;
    }
    if (ed->sigs_on && ed->drive == KART__DRIVE_LOOP) {
        kart_signal_stop(&ed->sig_winch);
        kart_signal_stop(&ed->sig_cont);
        kart_signal_stop(&ed->sig_tstp);
        ed->sigs_on = false;
    }
    ed->loop = NULL;
}

KART_API int kart_line_attach(kart_line *ed, kart_loop *loop, kart_line_cb cb, void *arg)
{
    if (!ed || !loop || !cb || ed->in_fd < 0)
        return -EINVAL;
    if (ed->started || ed->drive != KART__DRIVE_NONE)
        return -EBUSY;
    int r = kart_watch_init(loop, &ed->io, ed->in_fd);
    if (r < 0)
        return r;
    ed->io.base.data = ed;
    r = kart_watch_start(&ed->io, KART_READABLE, on_input);
    if (r < 0)
        return r;
    ed->io_on = true;
    ed->io_events = KART_READABLE;
    ed->loop = loop;
    kart_timer_init(loop, &ed->timer);
    ed->timer.base.data = ed;
    if (ed->terminal && ed->in_tty && !ed->no_signals) {
        kart_signal *s[3] = {&ed->sig_winch, &ed->sig_cont, &ed->sig_tstp};
        int nums[3] = {SIGWINCH, SIGCONT, SIGTSTP};
        for (int i = 0; i < 3; i++) {
            kart_signal_init(loop, s[i]);
            s[i]->base.data = ed;
            if (kart_signal_start(s[i], on_signal, nums[i]) == 0)
                kart_handle_unref(&s[i]->base);
        }
        ed->sigs_on = true;
    }
    ed->drive = KART__DRIVE_LOOP;
    ed->cb = cb;
    ed->cb_arg = arg;
    ed->started = true;
    ed->eof_seen = false;
    ed->depth++;
    line_begin(ed);
    ed->depth--;
    run_input(ed);
    after_run(ed);
    return 0;
}

KART_API void kart_line_detach(kart_line *ed)
{
    if (!ed || ed->drive != KART__DRIVE_LOOP)
        return;
    kart_line_stop(ed);
}

/* ---- the line being edited ---- */

static bool in_line(const kart_line *ed)
{
    return ed->started || ed->drive == KART__DRIVE_BLOCK;
}

static int flush_now(kart_line *ed)
{
    int r = kart__out_flush(ed, ed->drive == KART__DRIVE_BLOCK);
    return r == -EAGAIN ? 0 : r;
}

KART_API int kart_line_set_prompt(kart_line *ed, const char *prompt)
{
    if (!ed)
        return -EINVAL;
    char *p = strdup(prompt ? prompt : "");
    if (!p)
        return -ENOMEM;
    free(ed->prompt);
    ed->prompt = p;
    kart__display_invalidate(ed);
    if (in_line(ed) && ed->terminal && ed->d.shown && ed->depth == 0) {
        kart__display_refresh(ed);
        return flush_now(ed);
    }
    return 0;
}

KART_API void kart_line_set_history(kart_line *ed, kart_history *history)
{
    if (!ed)
        return;
    if (ed->hpos != ed->hlen0)
        kart__hist_goto(ed, ed->hlen0);
    kart__hist_reset(ed);
    ed->hist = history;
    kart__hist_reset(ed);
}

KART_API int kart_line_insert_text(kart_line *ed, const char *text, size_t len)
{
    if (!ed || (!text && len))
        return -EINVAL;
    bool outer = ed->cmd_depth == 0;
    if (outer)
        kart__edit_begin_command(ed);
    int r = kart__edit_insert(ed, ed->point, text, len);
    if (outer)
        kart__edit_end_command(ed);
    return r;
}

KART_API const char *kart_line_buffer(const kart_line *ed, size_t *len)
{
    if (!ed) {
        if (len)
            *len = 0;
        return "";
    }
    if (len)
        *len = ed->line.len;
    return ed->line.p ? ed->line.p : "";
}

KART_API size_t kart_line_point(const kart_line *ed)
{
    return ed ? ed->point : 0;
}

KART_API int kart_line_redisplay(kart_line *ed)
{
    if (!ed)
        return -EINVAL;
    if (!in_line(ed) || !ed->terminal)
        return 0;
    kart__display_refresh(ed);
    return flush_now(ed);
}

KART_API int kart_line_print_above(kart_line *ed, const char *text, size_t len)
{
    if (!ed || (!text && len))
        return -EINVAL;
    bool shown = in_line(ed) && ed->terminal && ed->d.shown && !ed->hidden;
    if (!shown) {
        kart__out(ed, text, len);
        return flush_now(ed);
    }
    kart__display_clear(ed);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
            kart__out(ed, "\r\n", 2);
        else
            kart__out(ed, text + i, 1);
    }
    if (len > 0 && text[len - 1] != '\n')
        kart__out(ed, "\r\n", 2);
    kart__display_refresh(ed);
    return flush_now(ed);
}

KART_API int kart_line_hide(kart_line *ed)
{
    if (!ed)
        return -EINVAL;
    if (ed->hidden || !in_line(ed) || !ed->terminal)
        return 0;
    kart__display_clear(ed);
    kart__term_deprep(ed);
    ed->hidden = true;
    return flush_now(ed);
}

KART_API int kart_line_show(kart_line *ed)
{
    if (!ed)
        return -EINVAL;
    if (!ed->hidden)
        return 0;
    ed->hidden = false;
    kart__term_prep(ed);
    kart__display_reset(ed);
    kart__display_refresh(ed);
    return flush_now(ed);
}

KART_API int kart_line_set_size(kart_line *ed, unsigned cols, unsigned rows)
{
    if (!ed || ((cols == 0) != (rows == 0)))
        return -EINVAL;
    if (cols == 0) {
        ed->size_fixed = false;
        kart__term_update_size(ed);
    } else {
        ed->size_fixed = true;
        ed->cols = cols;
        ed->rows = rows;
    }
    if (in_line(ed) && ed->terminal && ed->d.shown) {
        kart__display_resize(ed);
        if (ed->depth == 0) {
            kart__display_refresh(ed);
            return flush_now(ed);
        }
    } else {
        kart__display_invalidate(ed);
    }
    return 0;
}

KART_API void kart_line_get_size(const kart_line *ed, unsigned *cols, unsigned *rows)
{
    if (cols)
        *cols = ed ? ed->cols : 0;
    if (rows)
        *rows = ed ? ed->rows : 0;
}

KART_API int kart_line_flush(kart_line *ed)
{
    if (!ed)
        return -EINVAL;
    int r = kart__out_flush(ed, false);
    if (ed->drive == KART__DRIVE_LOOP)
        loop_arm(ed);
    return r;
}

/* ---- the init file ---- */

/* GNU reads the init file before the application's own bindings (Python
 * initializes readline when it is imported): a terminal editor does the
 * same before its first parse_and_bind or read_init_file. */
static void rc_first(kart_line *ed)
{
    if (ed->terminal && !ed->inputrc_tried)
        kart__line_load_inputrc(ed);
}

KART_API int kart_line_parse_and_bind(kart_line *ed, const char *line)
{
    if (!ed || !line)
        return -EINVAL;
    rc_first(ed);
    kart__inputrc_env env;
    rc_env(ed, &env);
    bool vi = ed->set.vi_mode, hs = ed->set.horizontal_scroll_mode;
    int r = kart__inputrc_parse(&env, line, strlen(line), "(string)");
    settings_changed(ed, vi, hs);
    if (r < 0)
        return r;
    return r > 0 ? -EINVAL : 0;
}

KART_API int kart_line_read_init_file(kart_line *ed, const char *path)
{
    if (!ed)
        return -EINVAL;
    if (path)
        rc_first(ed);
    kart__inputrc_env env;
    rc_env(ed, &env);
    bool vi = ed->set.vi_mode, hs = ed->set.horizontal_scroll_mode;
    int r;
    if (path)
        r = kart__inputrc_read(&env, path);
    else if (ed->inputrc)
        r = kart__inputrc_read(&env, ed->inputrc);
    else
        r = kart__inputrc_read_default(&env);
    ed->inputrc_tried = true;
    settings_changed(ed, vi, hs);
    return r;
}

KART_API int kart_line_variable(const kart_line *ed, const char *name, char *buf, size_t cap)
{
    if (!ed || !name || (!buf && cap))
        return -EINVAL;
    char tmp[1024];
    int n = kart__line_setting_get(&ed->set, name, tmp, sizeof(tmp));
    if (n < 0)
        return n;
    if ((size_t)n >= sizeof(tmp))
        return -ENOBUFS;
    if ((size_t)n >= cap)
        return -ENOBUFS;
    memcpy(buf, tmp, (size_t)n + 1);
    return n;
}

/* ---- hooks and completion settings ---- */

KART_API void kart_line_set_hooks(kart_line *ed, const kart_line_hooks *hooks,
                                  kart_line_hooks *prev)
{
    if (!ed)
        return;
    if (prev)
        *prev = ed->hooks;
    if (hooks)
        ed->hooks = *hooks;
    else
        memset(&ed->hooks, 0, sizeof(ed->hooks));
}

KART_API int kart_line_set_completer_delims(kart_line *ed, const char *delims)
{
    if (!ed)
        return -EINVAL;
    char *d = strdup(delims ? delims : "");
    if (!d)
        return -ENOMEM;
    free(ed->delims);
    ed->delims = d;
    return 0;
}

KART_API const char *kart_line_completer_delims(const kart_line *ed)
{
    if (!ed || !ed->delims)
        return " \t\n\"\\'`@$><=;|&{(";
    return ed->delims;
}

KART_API void kart_line_completion_range(const kart_line *ed, size_t *begin, size_t *end)
{
    if (begin)
        *begin = ed ? ed->comp_begin : 0;
    if (end)
        *end = ed ? ed->comp_end : 0;
}

KART_API void kart_line_set_completion_append(kart_line *ed, int ch)
{
    if (ed)
        ed->comp_append = ch > 0 && ch < 256 ? ch : 0;
}

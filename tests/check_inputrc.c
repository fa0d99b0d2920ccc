/* Description: the line editor's settings and its inputrc parser
 * (core/line): GNU's defaults and every variable by name (values taken and
 * refused, read back, deep copies), then whole files: Debian's own
 * /etc/inputrc (embedded, and the machine's when it has one) and a typical
 * user ~/.inputrc load without a report and bind what they say; each kind
 * of bad line is reported with its file and line and skipped; $if on mode,
 * term, version, the application and variables, with $else and nesting;
 * `set keymap` and `set editing-mode` moving later bindings; macros;
 * $include relative to the including file, ~ expanded, 16 deep at most,
 * loops and missing files reported; CRLF lines; reading: missing files,
 * folders, files over 1 MiB, $INPUTRC then ~/.inputrc then /etc/inputrc,
 * short reads and read errors (the fault table). */
#include "testutil.h"

#include "fault.h"
#include "inputrc.h"

#include <errno.h>
#include <sys/stat.h>

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

typedef struct {
    int n;
    int lines[64];
    char files[64][256];
    char messages[64][256];
} reports;

static void on_report(void *arg, const char *file, int line, const char *message)
{
    reports *r = arg;
    ck_assert_ptr_nonnull(file);
    ck_assert_ptr_nonnull(message);
    if (r->n < 64) {
        r->lines[r->n] = line;
        snprintf(r->files[r->n], sizeof(r->files[0]), "%s", file);
        snprintf(r->messages[r->n], sizeof(r->messages[0]), "%s", message);
    }
    r->n++;
}

typedef struct {
    kart__line_settings settings;
    kart__inputrc_env env;
    reports reps;
} world;

static void world_init(world *w, const char *term, const char *app)
{
    memset(w, 0, sizeof(*w));
    ck_assert_int_eq(kart__line_settings_init(&w->settings), 0);
    for (int i = 0; i < KART__MAP_COUNT; i++)
        ck_assert_int_eq(kart__keymap_create_default(&w->env.maps[i], (kart__map_id)i), 0);
    w->env.settings = &w->settings;
    w->env.term = term;
    w->env.app_name = app;
    w->env.report = on_report;
    w->env.report_arg = &w->reps;
}

static void world_destroy(world *w)
{
    for (int i = 0; i < KART__MAP_COUNT; i++)
        kart__keymap_free(w->env.maps[i]);
    kart__line_settings_destroy(&w->settings);
}

static int parse(world *w, const char *text)
{
    return kart__inputrc_parse(&w->env, text, strlen(text), "test.inputrc");
}

static enum kart__line_fn bound_fn(world *w, kart__map_id id, const char *seq, size_t len)
{
    kart__binding b;
    if (!(kart__keymap_lookup(w->env.maps[id], seq, len, &b) & KART__SEQ_BOUND))
        return KART__FN_NONE;
    return b.kind == KART__BIND_FN ? b.fn : (enum kart__line_fn) - 1;
}

#define FN(w, id, s) bound_fn((w), (id), (s), sizeof(s) - 1)

static void show_reports(const reports *r)
{
    for (int i = 0; i < r->n && i < 64; i++)
        fprintf(stderr, "  %s:%d: %s\n", r->files[i], r->lines[i], r->messages[i]);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kart-inputrc-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes tmpdir/name; returns its path in a static buffer. */
static const char *write_file(const char *name, const char *text)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    ck_assert_int_eq(fclose(f), 0);
    return p;
}

/* ---- settings ---- */

START_TEST(settings_start_at_gnus_defaults)
{
    kart__line_settings s;
    ck_assert_int_eq(kart__line_settings_init(&s), 0);
    ck_assert(!s.vi_mode);
    ck_assert_int_eq(s.bell_style, KART__BELL_AUDIBLE);
    ck_assert(s.bind_tty_special_chars && s.convert_meta && s.echo_control_characters);
    ck_assert(s.enable_bracketed_paste && s.enable_active_region && s.enable_meta_key);
    ck_assert(s.mark_directories && s.match_hidden_files && s.page_completions);
    ck_assert(!s.completion_ignore_case && !s.show_all_if_ambiguous && !s.expand_tilde);
    ck_assert_str_eq(s.comment_begin, "#");
    ck_assert_str_eq(s.emacs_mode_string, "@");
    ck_assert_str_eq(s.vi_cmd_mode_string, "(cmd)");
    ck_assert_str_eq(s.vi_ins_mode_string, "(ins)");
    ck_assert_ptr_null(s.isearch_terminators);
    ck_assert_int_eq(s.completion_display_width, -1);
    ck_assert_int_eq(s.completion_prefix_display_length, 0);
    ck_assert_int_eq(s.completion_query_items, 100);
    ck_assert_int_eq(s.history_size, -1);
    ck_assert_int_eq(s.keymap, KART__MAP_EMACS);
    ck_assert_int_eq(s.keyseq_timeout, 500);
    ck_assert_int_eq(s.keymap_prefix, 0);
    /* Every name can be read back and has a type. */
    int n = 0;
    char buf[64];
    for (const char *const *name = kart__line_setting_names; *name; name++, n++) {
        ck_assert_int_ge(kart__line_setting_get(&s, *name, buf, sizeof(buf)), 0);
        ck_assert_int_gt(kart__line_setting_type(*name, strlen(*name)), 0);
        if (name[1])
            ck_assert_int_lt(strcmp(name[0], name[1]), 0);
    }
    ck_assert_int_eq(n, 51);
    ck_assert_int_eq(kart__line_setting_get(&s, "keyseq-timeout", buf, sizeof(buf)), 3);
    ck_assert_str_eq(buf, "500");
    ck_assert_int_eq(kart__line_setting_get(&s, "editing-mode", buf, sizeof(buf)), 5);
    ck_assert_str_eq(buf, "emacs");
    ck_assert_int_eq(kart__line_setting_get(&s, "no-such", buf, sizeof(buf)), -ENOENT);
    ck_assert_int_eq(kart__line_setting_type("no-such", 7), -ENOENT);
    ck_assert_int_eq(kart__line_setting_type("BELL-STYLE", 10), KART__SETTING_WORD);
    ck_assert_int_eq(kart__line_setting_type("keyseq-timeout", 14), KART__SETTING_INT);
    ck_assert_int_eq(kart__line_setting_type("comment-begin", 13), KART__SETTING_STRING);
    ck_assert_int_eq(kart__line_setting_type("meta-flag", 9), KART__SETTING_BOOL);
    kart__line_settings_destroy(&s);
    kart__line_settings_destroy(NULL);
}
END_TEST

START_TEST(meta_defaults_follow_a_utf8_locale)
{
    kart__line_settings s;
    setenv("LC_ALL", "en_US.UTF-8", 1);
    ck_assert_int_eq(kart__line_settings_init(&s), 0);
    ck_assert(s.input_meta && s.output_meta);
    kart__line_settings_destroy(&s);
    setenv("LC_ALL", "C", 1);
    setenv("LANG", "de_DE.utf8", 1);
    ck_assert_int_eq(kart__line_settings_init(&s), 0);
    ck_assert(!s.input_meta && !s.output_meta); /* LC_ALL wins */
    kart__line_settings_destroy(&s);
    unsetenv("LC_ALL");
    unsetenv("LC_CTYPE");
    ck_assert_int_eq(kart__line_settings_init(&s), 0);
    ck_assert(s.input_meta);
    kart__line_settings_destroy(&s);
}
END_TEST

static int set(kart__line_settings *s, const char *name, const char *value)
{
    return kart__line_setting_set(s, name, strlen(name), value, strlen(value));
}

static const char *get(const kart__line_settings *s, const char *name)
{
    static char buf[128];
    ck_assert_int_ge(kart__line_setting_get(s, name, buf, sizeof(buf)), 0);
    return buf;
}

START_TEST(variables_take_gnus_values_and_refuse_others)
{
    kart__line_settings s;
    ck_assert_int_eq(kart__line_settings_init(&s), 0);
    /* Booleans: on, off, 1, 0, empty for on, any case. */
    ck_assert_int_eq(set(&s, "completion-ignore-case", "On"), 0);
    ck_assert(s.completion_ignore_case);
    ck_assert_int_eq(set(&s, "Completion-Ignore-Case", "OFF"), 0);
    ck_assert(!s.completion_ignore_case);
    ck_assert_int_eq(set(&s, "show-all-if-ambiguous", ""), 0);
    ck_assert(s.show_all_if_ambiguous);
    ck_assert_int_eq(set(&s, "show-all-if-ambiguous", "0"), 0);
    ck_assert(!s.show_all_if_ambiguous);
    ck_assert_int_eq(set(&s, "mark-directories", "yes"), -EINVAL);
    ck_assert(s.mark_directories);
    ck_assert_str_eq(get(&s, "mark-directories"), "on");
    ck_assert_int_eq(set(&s, "meta-flag", "off"), 0);
    ck_assert(!s.input_meta);
    ck_assert_str_eq(get(&s, "input-meta"), "off");
    ck_assert_int_eq(set(&s, "enable-bracketed-paste", "off"), 0);
    ck_assert(!s.enable_bracketed_paste && !s.enable_active_region);
    ck_assert_int_eq(set(&s, "search-ignore-case", "on"), 0);
    ck_assert(s.search_ignore_case);
    ck_assert_int_eq(set(&s, "no-such-variable", "on"), -ENOENT);
    /* Numbers. */
    ck_assert_int_eq(set(&s, "keyseq-timeout", "250"), 0);
    ck_assert_int_eq(s.keyseq_timeout, 250);
    ck_assert_int_eq(set(&s, "keyseq-timeout", "-5"), 0);
    ck_assert_int_eq(s.keyseq_timeout, 0);
    ck_assert_int_eq(set(&s, "keyseq-timeout", "12ms"), -EINVAL);
    ck_assert_int_eq(set(&s, "keyseq-timeout", "99999999999"), -EINVAL);
    ck_assert_int_eq(s.keyseq_timeout, 0);
    ck_assert_int_eq(set(&s, "completion-query-items", ""), 0);
    ck_assert_int_eq(s.completion_query_items, 100);
    ck_assert_int_eq(set(&s, "completion-display-width", "-3"), 0);
    ck_assert_int_eq(s.completion_display_width, -3);
    ck_assert_int_eq(set(&s, "completion-prefix-display-length", "+7"), 0);
    ck_assert_int_eq(s.completion_prefix_display_length, 7);
    ck_assert_int_eq(set(&s, "history-size", "1000"), 0);
    ck_assert_int_eq(s.history_size, 1000);
    ck_assert_int_eq(set(&s, "history-size", "-1"), 0);
    ck_assert_int_eq(s.history_size, -1);
    ck_assert_int_eq(set(&s, "history-size", ""), 0);
    ck_assert_int_eq(s.history_size, 500);
    ck_assert_str_eq(get(&s, "history-size"), "500");
    /* Words. */
    ck_assert_int_eq(set(&s, "bell-style", "visible"), 0);
    ck_assert_int_eq(s.bell_style, KART__BELL_VISIBLE);
    ck_assert_str_eq(get(&s, "prefer-visible-bell"), "on");
    ck_assert_int_eq(set(&s, "bell-style", "none"), 0);
    ck_assert_int_eq(s.bell_style, KART__BELL_NONE);
    ck_assert_int_eq(set(&s, "bell-style", "loud"), -EINVAL);
    ck_assert_str_eq(get(&s, "bell-style"), "none");
    ck_assert_int_eq(set(&s, "prefer-visible-bell", "on"), 0);
    ck_assert_str_eq(get(&s, "bell-style"), "visible");
    ck_assert_int_eq(set(&s, "editing-mode", "vi"), 0);
    ck_assert(s.vi_mode);
    ck_assert_int_eq(s.keymap, KART__MAP_VI_INSERT);
    ck_assert_int_eq(set(&s, "editing-mode", "vim"), -EINVAL);
    ck_assert_int_eq(set(&s, "keymap", "vi-move"), 0);
    ck_assert_int_eq(s.keymap, KART__MAP_VI_COMMAND);
    ck_assert_str_eq(get(&s, "keymap"), "vi-command");
    ck_assert_int_eq(set(&s, "keymap", "emacs-meta"), 0);
    ck_assert_int_eq(s.keymap, KART__MAP_EMACS);
    ck_assert_int_eq(s.keymap_prefix, 0x1b);
    ck_assert_str_eq(get(&s, "keymap"), "emacs-meta");
    ck_assert_int_eq(set(&s, "keymap", "emacs-ctlx"), 0);
    ck_assert_int_eq(s.keymap_prefix, 0x18);
    ck_assert_int_eq(set(&s, "keymap", "emacs-standard"), 0);
    ck_assert_int_eq(s.keymap_prefix, 0);
    ck_assert_int_eq(set(&s, "keymap", "vi"), 0);
    ck_assert_int_eq(s.keymap, KART__MAP_VI_COMMAND);
    ck_assert_int_eq(set(&s, "keymap", "hyper"), -EINVAL);
    ck_assert_int_eq(set(&s, "editing-mode", "emacs"), 0);
    ck_assert(!s.vi_mode);
    ck_assert_int_eq(s.keymap, KART__MAP_EMACS);
    /* Strings: as written, or translated from key notation. */
    ck_assert_int_eq(set(&s, "comment-begin", "// "), 0);
    ck_assert_str_eq(s.comment_begin, "// ");
    ck_assert_int_eq(set(&s, "comment-begin", ""), -EINVAL);
    ck_assert_str_eq(s.comment_begin, "// ");
    ck_assert_int_eq(set(&s, "vi-ins-mode-string", "\\1\\e[6 q\\2"), 0);
    ck_assert_str_eq(s.vi_ins_mode_string, "\x01\x1b[6 q\x02");
    ck_assert_str_eq(get(&s, "vi-ins-mode-string"), "\\C-a\\e[6 q\\C-b");
    ck_assert_int_eq(set(&s, "vi-cmd-mode-string", ""), 0);
    ck_assert_str_eq(s.vi_cmd_mode_string, "");
    ck_assert_int_eq(set(&s, "emacs-mode-string", "\\q"), -EINVAL);
    ck_assert_str_eq(s.emacs_mode_string, "@");
    ck_assert_int_eq(set(&s, "isearch-terminators", "\\C-[\\C-j"), 0);
    ck_assert_str_eq(s.isearch_terminators, "\x1b\n");
    ck_assert_int_eq(set(&s, "active-region-start-color", "\\e[01;33m"), 0);
    ck_assert_str_eq(s.active_region_start_color, "\x1b[01;33m");
    /* A short buffer: cut, NUL-terminated, the length it needs. */
    char small[4];
    ck_assert_int_eq(kart__line_setting_get(&s, "comment-begin", small, sizeof(small)), 3);
    ck_assert_str_eq(small, "// ");
    ck_assert_int_eq(kart__line_setting_get(&s, "vi-ins-mode-string", small, sizeof(small)), 14);
    ck_assert_str_eq(small, "\\C-");
    ck_assert_int_eq(kart__line_setting_get(&s, "bell-style", NULL, 0), 7);
    kart__line_settings_destroy(&s);
}
END_TEST

START_TEST(settings_copies_are_deep)
{
    kart__line_settings a, b;
    ck_assert_int_eq(kart__line_settings_init(&a), 0);
    ck_assert_int_eq(set(&a, "isearch-terminators", "x"), 0);
    ck_assert_int_eq(set(&a, "keyseq-timeout", "42"), 0);
    ck_assert_int_eq(kart__line_settings_copy(&b, &a), 0);
    ck_assert_ptr_ne(a.comment_begin, b.comment_begin);
    ck_assert_ptr_ne(a.isearch_terminators, b.isearch_terminators);
    ck_assert_ptr_null(b.active_region_end_color);
    kart__line_settings_destroy(&a);
    ck_assert_str_eq(b.isearch_terminators, "x");
    ck_assert_str_eq(b.vi_cmd_mode_string, "(cmd)");
    ck_assert_int_eq(b.keyseq_timeout, 42);
    kart__line_settings_destroy(&b);
}
END_TEST

/* ---- whole files ---- */

/* Debian 12's /etc/inputrc (readline-common), as shipped. */
static const char debian_inputrc[] =
    "# /etc/inputrc - global inputrc for libreadline\n"
    "# See readline(3readline) and `info rluserman' for more information.\n"
    "\n"
    "# Be 8 bit clean.\n"
    "set input-meta on\n"
    "set output-meta on\n"
    "\n"
    "# To allow the use of 8bit-characters like the german umlauts, uncomment\n"
    "# the line below. However this makes the meta key not work as a meta key,\n"
    "# which is annoying to those which don't need to type in 8-bit characters.\n"
    "\n"
    "# set convert-meta off\n"
    "\n"
    "# try to enable the application keypad when it is called.  Some systems\n"
    "# need this to enable the arrow keys.\n"
    "# set enable-keypad on\n"
    "\n"
    "# see /usr/share/doc/bash/inputrc.arrows for other codes of arrow keys\n"
    "\n"
    "# do not bell on tab-completion\n"
    "# set bell-style none\n"
    "# set bell-style visible\n"
    "\n"
    "# make autocompletion case insensitive and display suggestions\n"
    "# set completion-ignore-case On\n"
    "# set show-all-if-ambiguous On\n"
    "\n"
    "# some defaults / modifications for the emacs mode\n"
    "$if mode=emacs\n"
    "\n"
    "# allow the use of the Home/End keys\n"
    "\"\\e[1~\": beginning-of-line\n"
    "\"\\e[4~\": end-of-line\n"
    "\n"
    "# allow the use of the Delete/Insert keys\n"
    "\"\\e[3~\": delete-char\n"
    "\"\\e[2~\": quoted-insert\n"
    "\n"
    "# mappings for \"page up\" and \"page down\" to step to the beginning/end\n"
    "# of the history\n"
    "# \"\\e[5~\": beginning-of-history\n"
    "# \"\\e[6~\": end-of-history\n"
    "\n"
    "# alternate mappings for \"page up\" and \"page down\" to search the history\n"
    "# \"\\e[5~\": history-search-backward\n"
    "# \"\\e[6~\": history-search-forward\n"
    "\n"
    "# mappings for Ctrl-left-arrow and Ctrl-right-arrow for word moving\n"
    "\"\\e[1;5C\": forward-word\n"
    "\"\\e[1;5D\": backward-word\n"
    "\"\\e[5C\": forward-word\n"
    "\"\\e[5D\": backward-word\n"
    "\"\\e\\e[C\": forward-word\n"
    "\"\\e\\e[D\": backward-word\n"
    "\n"
    "$if term=rxvt\n"
    "\"\\e[7~\": beginning-of-line\n"
    "\"\\e[8~\": end-of-line\n"
    "\"\\eOc\": forward-word\n"
    "\"\\eOd\": backward-word\n"
    "$endif\n"
    "\n"
    "# for non RH/Debian xterm, can't hurt for RH/Debian xterm\n"
    "# \"\\eOH\": beginning-of-line\n"
    "# \"\\eOF\": end-of-line\n"
    "\n"
    "# for freebsd console\n"
    "# \"\\e[H\": beginning-of-line\n"
    "# \"\\e[F\": end-of-line\n"
    "\n"
    "$endif\n";

START_TEST(debians_inputrc_loads_without_a_report)
{
    world w;
    world_init(&w, "rxvt-unicode", "python");
    ck_assert_int_eq(kart__keymap_unbind(w.env.maps[KART__MAP_EMACS], "\x1b[7~", 4), 0);
    int r = parse(&w, debian_inputrc);
    show_reports(&w.reps);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(w.reps.n, 0);
    ck_assert(w.settings.input_meta && w.settings.output_meta);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1b[2~"), KART__FN_QUOTED_INSERT);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1b\x1b[C"), KART__FN_FORWARD_WORD);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1b\x1b"), KART__FN_COMPLETE);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1b[7~"), KART__FN_BEGINNING_OF_LINE); /* rxvt */
    /* $if mode=emacs: vi-insert keeps its Insert key. */
    ck_assert_int_eq(FN(&w, KART__MAP_VI_INSERT, "\x1b[2~"), KART__FN_OVERWRITE_MODE);
    world_destroy(&w);

    /* Not rxvt: that part is skipped. */
    world_init(&w, "xterm-256color", NULL);
    ck_assert_int_eq(kart__keymap_unbind(w.env.maps[KART__MAP_EMACS], "\x1b[7~", 4), 0);
    ck_assert_int_eq(parse(&w, debian_inputrc), 0);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1b[7~"), KART__FN_NONE);
    world_destroy(&w);

    /* This machine's, when it has one. */
    if (access("/etc/inputrc", R_OK) == 0) {
        world_init(&w, NULL, NULL);
        r = kart__inputrc_read(&w.env, "/etc/inputrc");
        show_reports(&w.reps);
        ck_assert_int_eq(r, 0);
        world_destroy(&w);
    }
}
END_TEST

/* A typical ~/.inputrc: 20 lines that are not comments, of every kind. */
static const char user_inputrc[] = "# my inputrc\n"
                                   "$include /etc/inputrc\n"
                                   "set editing-mode emacs\n"
                                   "set completion-ignore-case on\n"
                                   "set show-all-if-ambiguous On\n"
                                   "set bell-style none   # quiet\n"
                                   "set colored-stats on\n"
                                   "set keyseq-timeout 200\n"
                                   "set vi-ins-mode-string \"\\1\\e[6 q\\2\"\n"
                                   "\t\"\\e[A\": history-search-backward\n"
                                   "\"\\e[B\": history-search-forward\n"
                                   "Control-x: \"git status\\n\"\n"
                                   "M-o: \"\\C-e | less\\C-m\"\n"
                                   "\"\\C-x\\C-e\":   kill-whole-line\n"
                                   "C-w: backward-kill-word\n"
                                   "Meta-Rubout: unix-filename-rubout\n"
                                   "$if Python\n"
                                   "  \"\\C-o\": 'import os\\n'\n"
                                   "$else\n"
                                   "  \"\\C-o\": operate-and-get-next\n"
                                   "$endif\n"
                                   "set keymap vi-command\n"
                                   "\"gg\": beginning-of-history\n"
                                   "set keymap emacs\n"
                                   "\"\\e[1;5A\": previous-history  # ctrl-up\n";

START_TEST(a_users_inputrc_loads_without_a_report)
{
    world w;
    world_init(&w, "xterm", "python");
    int r = parse(&w, user_inputrc);
    show_reports(&w.reps);
    ck_assert_int_eq(r, 0);
    ck_assert(w.settings.completion_ignore_case && w.settings.show_all_if_ambiguous);
    ck_assert(w.settings.colored_stats);
    ck_assert_int_eq(w.settings.bell_style, KART__BELL_NONE);
    ck_assert_int_eq(w.settings.keyseq_timeout, 200);
    ck_assert_str_eq(w.settings.vi_ins_mode_string, "\x01\x1b[6 q\x02");
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1b[A"), KART__FN_HISTORY_SEARCH_BACKWARD);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1b[B"), KART__FN_HISTORY_SEARCH_FORWARD);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x18\x05"), KART__FN_KILL_WHOLE_LINE);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x17"), KART__FN_BACKWARD_KILL_WORD);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1b\x7f"), KART__FN_UNIX_FILENAME_RUBOUT);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1b[1;5A"), KART__FN_PREVIOUS_HISTORY);
    ck_assert_int_eq(FN(&w, KART__MAP_VI_COMMAND, "gg"), KART__FN_BEGINNING_OF_HISTORY);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "gg"), KART__FN_NONE);
    kart__binding b;
    ck_assert_int_eq(kart__keymap_lookup(w.env.maps[KART__MAP_EMACS], "\x18", 1, &b),
                     KART__SEQ_BOUND | KART__SEQ_PREFIX);
    ck_assert_int_eq(b.kind, KART__BIND_MACRO);
    ck_assert_uint_eq(b.macro_len, 11);
    ck_assert_mem_eq(b.macro, "git status\n", 11);
    ck_assert_int_eq(kart__keymap_lookup(w.env.maps[KART__MAP_EMACS], "\x1bo", 2, &b),
                     KART__SEQ_BOUND);
    ck_assert_mem_eq(b.macro, "\x05 | less\r", 9);
    ck_assert_int_eq(kart__keymap_lookup(w.env.maps[KART__MAP_EMACS], "\x0f", 1, &b),
                     KART__SEQ_BOUND);
    ck_assert_int_eq(b.kind, KART__BIND_MACRO);
    ck_assert_mem_eq(b.macro, "import os\n", 10);
    world_destroy(&w);

    /* Another program takes the $else branch. */
    world_init(&w, "xterm", "gdb");
    ck_assert_int_eq(parse(&w, user_inputrc), 0);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x0f"), KART__FN_OPERATE_AND_GET_NEXT);
    world_destroy(&w);
}
END_TEST

START_TEST(bad_lines_are_reported_at_their_lines_and_skipped)
{
    make_tmpdir();
    const char *loop = write_file("loop.rc", "$include loop.rc\n\"\\C-t\": yank\n");
    char text[4096];
    snprintf(text, sizeof(text),
             "\"\\C-a\": no-such-function\n"                   /* 1 */
             "set no-such-variable on\n"                       /* 2 */
             "\"\\q\": abort\n"                                /* 3 */
             "\"\\C-b: abort\n"                                /* 4 */
             "\"\\C-c\": \"unterminated\n"                     /* 5 */
             "set bell-style loud\n"                           /* 6 */
             "$endif\n"                                        /* 7 */
             "$else\n"                                         /* 8 */
             "$frobnicate\n"                                   /* 9 */
             "\"\\C-d\":\n"                                    /* 10 */
             "Hyper-x: abort\n"                                /* 11 */
             "\"\\C-e\": abort extra words\n"                  /* 12 */
             "\"0123456789012345678901234567890123\": abort\n" /* 13 */
             "$include %s/no-such-file\n"                      /* 14 */
             "$include %s\n"                                   /* 15 */
             "\"\\C-f\"\n"                                     /* 16 */
             "\"\\C-g\"x: abort\n"                             /* 17 */
             "set\n"                                           /* 18 */
             "\"\": abort\n"                                   /* 19 */
             "C-y: \"\\x\"\n"                                  /* 20 */
             "$if version >= eight\n"                          /* 21 */
             "$endif\n"                                        /* 22 */
             "$if mode=vim\n"                                  /* 23 */
             "$endif\n"                                        /* 24 */
             "\"\\C-h\": backward-char\n"                      /* 25: good */
             "$if term=xterm\n"                                /* 26: unclosed */
             "$if mode=emacs\n"                                /* 27: unclosed */
             "$else\n"                                         /* 28 */
             "$else\n",                                        /* 29 */
             tmpdir, loop);
    world w;
    world_init(&w, "xterm", NULL);
    int r = parse(&w, text);
    show_reports(&w.reps);
    static const int lines[] = {1,  2, 3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13,
                                14, 1, 16, 17, 18, 19, 20, 21, 23, 29, 26, 27};
    ck_assert_int_eq(r, (int)LEN(lines));
    ck_assert_int_eq(w.reps.n, (int)LEN(lines));
    for (size_t i = 0; i < LEN(lines); i++)
        ck_assert_msg(w.reps.lines[i] == lines[i], "report %zu at line %d, not %d: %s", i,
                      w.reps.lines[i], lines[i], w.reps.messages[i]);
    /* The loop is reported inside the included file, at its $include. */
    ck_assert_str_eq(w.reps.files[14], loop);
    ck_assert_ptr_nonnull(strstr(w.reps.messages[14], "loop"));
    ck_assert_str_eq(w.reps.files[0], "test.inputrc");
    ck_assert_ptr_nonnull(strstr(w.reps.messages[0], "no-such-function"));
    ck_assert_ptr_nonnull(strstr(w.reps.messages[1], "no-such-variable"));
    ck_assert_ptr_nonnull(strstr(w.reps.messages[13], "No such file"));
    ck_assert_ptr_nonnull(strstr(w.reps.messages[23], "$endif"));
    /* Nothing of the bad lines was bound; the good ones were. */
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x01"), KART__FN_BEGINNING_OF_LINE);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x05"), KART__FN_END_OF_LINE);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x06"), KART__FN_FORWARD_CHAR);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x08"), KART__FN_BACKWARD_CHAR);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x14"), KART__FN_YANK); /* in loop.rc */
    ck_assert_int_eq(w.settings.bell_style, KART__BELL_AUDIBLE);
    world_destroy(&w);

    /* Without a callback the lines are only counted. */
    world_init(&w, "xterm", NULL);
    w.env.report = NULL;
    ck_assert_int_eq(parse(&w, "bogus\nset x y\n"), 2);
    world_destroy(&w);
    remove_tmpdir();
}
END_TEST

START_TEST(conditionals)
{
    static const char text[] = "$if mode=emacs\n"
                               "  \"a1\": abort\n"
                               "$else\n"
                               "  \"a2\": abort\n"
                               "$endif\n"
                               "$if term=xterm\n"
                               "  \"b1\": abort\n"
                               "$endif\n"
                               "$if term=xterm-256color\n"
                               "  \"b2\": abort\n"
                               "$endif\n"
                               "$if term=rxvt\n"
                               "  \"b3\": abort\n"
                               "$endif\n"
                               "$if version >= 8.1\n"
                               "  \"c1\": abort\n"
                               "$endif\n"
                               "$if version>8.2\n"
                               "  \"c2\": abort\n"
                               "$endif\n"
                               "$if version == 8.2 # comment\n"
                               "  \"c3\": abort\n"
                               "$endif\n"
                               "$if version < 9\n"
                               "  \"c4\": abort\n"
                               "$endif\n"
                               "$if version != 8.2\n"
                               "  \"c5\": abort\n"
                               "$endif\n"
                               "$if version <= 8.10\n"
                               "  \"c6\": abort\n"
                               "$endif\n"
                               "$if PyThOn\n"
                               "  \"d1\": abort\n"
                               "$endif\n"
                               "$if Bash\n"
                               "  \"d2\": abort\n"
                               "$else\n"
                               "  $if mode=vi\n"
                               "    \"d3\": abort\n"
                               "  $else\n"
                               "    \"d4\": abort\n"
                               "  $endif\n"
                               "$endif\n"
                               "$if Bash\n"
                               "  $if mode=emacs\n"
                               "    \"d5\": abort\n"
                               "  $else\n"
                               "    \"d6\": abort\n"
                               "  $endif\n"
                               "  $include /nonexistent\n"
                               "  set nonsense\n"
                               "$endif\n"
                               "$if keyseq-timeout == 500\n"
                               "  \"e1\": abort\n"
                               "$endif\n"
                               "$if editing-mode != vi\n"
                               "  \"e2\": abort\n"
                               "$endif\n"
                               "$if completion-ignore-case == on\n"
                               "  \"e3\": abort\n"
                               "$endif\n"
                               "set editing-mode vi\n"
                               "$if mode=vi\n"
                               "  \"f1\": abort\n"
                               "$endif\n";
    world w;
    world_init(&w, "xterm-256color", "python");
    int r = parse(&w, text);
    show_reports(&w.reps);
    ck_assert_int_eq(r, 0);
    static const struct {
        const char *seq;
        kart__map_id map;
        bool bound;
    } want[] = {
        {"a1", KART__MAP_EMACS, true},     {"a2", KART__MAP_EMACS, false},
        {"b1", KART__MAP_EMACS, true},     {"b2", KART__MAP_EMACS, true},
        {"b3", KART__MAP_EMACS, false},    {"c1", KART__MAP_EMACS, true},
        {"c2", KART__MAP_EMACS, false},    {"c3", KART__MAP_EMACS, true},
        {"c4", KART__MAP_EMACS, true},     {"c5", KART__MAP_EMACS, false},
        {"c6", KART__MAP_EMACS, true},     {"d1", KART__MAP_EMACS, true},
        {"d2", KART__MAP_EMACS, false},    {"d3", KART__MAP_EMACS, false},
        {"d4", KART__MAP_EMACS, true},     {"d5", KART__MAP_EMACS, false},
        {"d6", KART__MAP_EMACS, false},    {"e1", KART__MAP_EMACS, true},
        {"e2", KART__MAP_EMACS, true},     {"e3", KART__MAP_EMACS, false},
        {"f1", KART__MAP_VI_INSERT, true},
    };
    for (size_t i = 0; i < LEN(want); i++)
        ck_assert_msg((bound_fn(&w, want[i].map, want[i].seq, 2) == KART__FN_ABORT) ==
                          want[i].bound,
                      "%s", want[i].seq);
    world_destroy(&w);

    /* term= from $TERM when the env names none; no terminal at all
     * matches nothing. */
    setenv("TERM", "screen-256color", 1);
    world_init(&w, NULL, NULL);
    ck_assert_int_eq(parse(&w, "$if term=screen\n\"zz\": abort\n$endif\n$if other\n\"zy\": abort\n"
                               "$endif\n"),
                     0);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "zz"), KART__FN_ABORT);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "zy"), KART__FN_ABORT); /* GNU's default name */
    world_destroy(&w);
    unsetenv("TERM");
    world_init(&w, NULL, NULL);
    ck_assert_int_eq(parse(&w, "$if term=screen\n\"zz\": abort\n$endif\n"), 0);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "zz"), KART__FN_NONE);
    /* Bad comparisons are reported. */
    ck_assert_int_eq(parse(&w, "$if version 8\n$endif\n$if keyseq-timeout 5\n$endif\n"
                               "$if keyseq-timeout ==\n$endif\n$if\n$endif\n"),
                     4);
    world_destroy(&w);
}
END_TEST

START_TEST(keymaps_and_macros)
{
    world w;
    world_init(&w, "xterm", NULL);
    static const char text[] = "set keymap vi-command\n"
                               "\"Q\": vi-eof-maybe\n"
                               "set keymap vi-insert\n"
                               "C-q: \"typed\"\n"
                               "set keymap emacs-meta\n"
                               "x: kill-line\n"
                               "C-z: 'z'\n"
                               "set keymap emacs-ctlx\n"
                               "\"k\": kill-whole-line\n"
                               "set keymap emacs\n"
                               "\"\\C-xm\": \"\"\n"
                               "\"\\C-xn\" : \"say \\\"hi\\\"\"\n"
                               "set editing-mode vi\n"
                               "\"jj\": vi-movement-mode\n"
                               "\"\\M-\\C-x\": yank\n";
    int r = parse(&w, text);
    show_reports(&w.reps);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(FN(&w, KART__MAP_VI_COMMAND, "Q"), KART__FN_VI_EOF_MAYBE);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "Q"), KART__FN_SELF_INSERT);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1bx"), KART__FN_KILL_LINE);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x18k"), KART__FN_KILL_WHOLE_LINE);
    ck_assert_int_eq(FN(&w, KART__MAP_VI_INSERT, "jj"), KART__FN_VI_MOVEMENT_MODE);
    ck_assert_int_eq(FN(&w, KART__MAP_VI_INSERT, "\x1b\x18"), KART__FN_YANK);
    kart__binding b;
    ck_assert_int_eq(kart__keymap_lookup(w.env.maps[KART__MAP_VI_INSERT], "\x11", 1, &b),
                     KART__SEQ_BOUND);
    ck_assert_int_eq(b.kind, KART__BIND_MACRO);
    ck_assert_mem_eq(b.macro, "typed", 5);
    ck_assert_int_eq(kart__keymap_lookup(w.env.maps[KART__MAP_EMACS], "\x1b\x1a", 2, &b),
                     KART__SEQ_BOUND);
    ck_assert_mem_eq(b.macro, "z", 1);
    ck_assert_int_eq(kart__keymap_lookup(w.env.maps[KART__MAP_EMACS], "\x18m", 2, &b),
                     KART__SEQ_BOUND);
    ck_assert_int_eq(b.kind, KART__BIND_MACRO);
    ck_assert_uint_eq(b.macro_len, 0);
    ck_assert_int_eq(kart__keymap_lookup(w.env.maps[KART__MAP_EMACS], "\x18n", 2, &b),
                     KART__SEQ_BOUND);
    ck_assert_uint_eq(b.macro_len, 8);
    ck_assert_mem_eq(b.macro, "say \"hi\"", 8);
    /* GNU's forms that GNU accepts: no colon but a blank; `:=`. */
    ck_assert_int_eq(parse(&w, "\"\\C-xo\" yank\nC-a := C-b\n"), 0);
    ck_assert_int_eq(FN(&w, KART__MAP_VI_INSERT, "\x18o"), KART__FN_YANK);
    /* Lines ending in CRLF, no final newline, blanks and comments. */
    ck_assert_int_eq(parse(&w, "\r\n  # comment\r\n\t\r\nset keymap emacs\r\n\"\\C-xp\": yank\r\n"
                               "\"\\C-xq\": yank-pop"),
                     0);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x18p"), KART__FN_YANK);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x18q"), KART__FN_YANK_POP);
    /* An empty text, and bad arguments. */
    ck_assert_int_eq(kart__inputrc_parse(&w.env, "", 0, NULL), 0);
    ck_assert_int_eq(kart__inputrc_parse(&w.env, NULL, 0, NULL), 0);
    ck_assert_int_eq(kart__inputrc_parse(NULL, "", 0, NULL), -EINVAL);
    world_destroy(&w);
}
END_TEST

START_TEST(includes_nest_sixteen_deep)
{
    make_tmpdir();
    char name[64], body[128];
    /* d0 includes d1 ... d16 includes d17: the 17th level is too deep. */
    for (int i = 0; i <= 17; i++) {
        snprintf(name, sizeof(name), "d%d", i);
        if (i < 17)
            snprintf(body, sizeof(body), "\"x%c\": abort\n$include d%d\n", 'a' + i, i + 1);
        else
            snprintf(body, sizeof(body), "\"x%c\": abort\n", 'a' + i);
        write_file(name, body);
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/d0", tmpdir);
    world w;
    world_init(&w, "xterm", NULL);
    int r = kart__inputrc_read(&w.env, path);
    show_reports(&w.reps);
    ck_assert_int_eq(r, 1);
    ck_assert_int_eq(w.reps.lines[0], 2);
    snprintf(path, sizeof(path), "%s/d16", tmpdir);
    ck_assert_str_eq(w.reps.files[0], path);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "xq"), KART__FN_ABORT); /* d16 */
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "xr"), KART__FN_NONE);  /* d17 */
    world_destroy(&w);

    /* A relative name from a string is relative to the current folder;
     * "~/" is $HOME. */
    write_file("home.rc", "\"hh\": abort\n");
    setenv("HOME", tmpdir, 1);
    world_init(&w, "xterm", NULL);
    ck_assert_int_eq(parse(&w, "$include ~/home.rc\n"), 0);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "hh"), KART__FN_ABORT);
    ck_assert_int_eq(kart__inputrc_read(&w.env, "~/home.rc"), 0);
    ck_assert_int_eq(parse(&w, "$include home.rc\n"), 1);
    char cwd[4096];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    ck_assert_int_eq(chdir(tmpdir), 0);
    ck_assert_int_eq(parse(&w, "$include home.rc\n"), 0);
    ck_assert_int_eq(chdir(cwd), 0);
    /* A loop through two files. */
    write_file("a.rc", "$include b.rc\n");
    write_file("b.rc", "\n$include a.rc\n");
    snprintf(path, sizeof(path), "%s/a.rc", tmpdir);
    w.reps.n = 0;
    ck_assert_int_eq(kart__inputrc_read(&w.env, path), 1);
    ck_assert_int_eq(w.reps.lines[0], 2);
    ck_assert_ptr_nonnull(strstr(w.reps.files[0], "b.rc"));
    world_destroy(&w);
    remove_tmpdir();
}
END_TEST

START_TEST(reading_files)
{
    make_tmpdir();
    world w;
    world_init(&w, "xterm", NULL);
    char path[600];
    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    ck_assert_int_eq(kart__inputrc_read(&w.env, path), -ENOENT);
    ck_assert_int_eq(kart__inputrc_read(&w.env, tmpdir), -EISDIR);
    /* Over 1 MiB. */
    snprintf(path, sizeof(path), "%s/big", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 1024 * 1024 + 1; i++)
        fputc(i % 64 == 63 ? '\n' : '#', f);
    fclose(f);
    ck_assert_int_eq(kart__inputrc_read(&w.env, path), -EFBIG);
    ck_assert_int_eq(truncate(path, 1024 * 1024), 0);
    ck_assert_int_eq(kart__inputrc_read(&w.env, path), 0);
    ck_assert_int_eq(chmod(path, 0), 0);
    if (geteuid() != 0)
        ck_assert_int_eq(kart__inputrc_read(&w.env, path), -EACCES);

    /* $INPUTRC first, then ~/.inputrc, then /etc/inputrc. */
    const char *env_rc = write_file("env.rc", "\"ee\": abort\n");
    write_file(".inputrc", "\"uu\": abort\nbad line\n");
    setenv("INPUTRC", env_rc, 1);
    setenv("HOME", tmpdir, 1);
    ck_assert_int_eq(kart__inputrc_read_default(&w.env), 0);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "ee"), KART__FN_ABORT);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "uu"), KART__FN_NONE);
    unsetenv("INPUTRC");
    ck_assert_int_eq(kart__inputrc_read_default(&w.env), 1);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "uu"), KART__FN_ABORT);
    setenv("HOME", "/nonexistent-kart-home", 1);
    int r = kart__inputrc_read_default(&w.env);
    ck_assert_int_eq(r, access("/etc/inputrc", R_OK) == 0 ? 0 : -ENOENT);
    world_destroy(&w);
    remove_tmpdir();
}
END_TEST

START_TEST(short_reads_and_read_errors)
{
    make_tmpdir();
    kart__fault_reset();
    const char *path =
        write_file("rc", user_inputrc + strlen("# my inputrc\n$include /etc/inputrc\n"));
    world w;
    world_init(&w, "xterm", "python");
    ck_assert_int_eq(kart__fault_short(KART__SYS_read, 1, KART__FAULT_ALWAYS, 3), 0);
    int r = kart__inputrc_read(&w.env, path);
    kart__fault_reset();
    show_reports(&w.reps);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(FN(&w, KART__MAP_EMACS, "\x1b[1;5A"), KART__FN_PREVIOUS_HISTORY);
    ck_assert_int_eq(FN(&w, KART__MAP_VI_COMMAND, "gg"), KART__FN_BEGINNING_OF_HISTORY);
    ck_assert_int_eq(kart__fault_fail(KART__SYS_read, 1, 1, EIO), 0);
    ck_assert_int_eq(kart__inputrc_read(&w.env, path), -EIO);
    ck_assert_int_eq(kart__fault_fail(KART__SYS_read, 1, 1, EINTR), 0);
    ck_assert_int_eq(kart__inputrc_read(&w.env, path), 0);
    kart__fault_reset();
    world_destroy(&w);
    remove_tmpdir();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inputrc");
    TCase *tc = tcase_create("settings");
    tcase_add_test(tc, settings_start_at_gnus_defaults);
    tcase_add_test(tc, meta_defaults_follow_a_utf8_locale);
    tcase_add_test(tc, variables_take_gnus_values_and_refuse_others);
    tcase_add_test(tc, settings_copies_are_deep);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_test(tc, debians_inputrc_loads_without_a_report);
    tcase_add_test(tc, a_users_inputrc_loads_without_a_report);
    tcase_add_test(tc, bad_lines_are_reported_at_their_lines_and_skipped);
    tcase_add_test(tc, conditionals);
    tcase_add_test(tc, keymaps_and_macros);
    tcase_add_test(tc, includes_nest_sixteen_deep);
    tcase_add_test(tc, reading_files);
    tcase_add_test(tc, short_reads_and_read_errors);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/*
 * core/line/line_settings.c — GNU readline's `set` variables: defaults,
 * setting by name, reading back.
 *
 * One table names every variable with its type and field; the few whose
 * setting does more than store a value (editing-mode also picks the keymap,
 * prefer-visible-bell is a second spelling of bell-style, history-size
 * takes "unlimited" as any negative number) are handled by name. Values
 * are stricter than GNU's atoi and "anything but on is off": a value the
 * variable cannot take is refused and the setting kept, so that a typo is
 * reported instead of turning a variable off.
 */
#include "line_keymap.h"
#include "line_settings.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NOTATION = 8 }; /* a string variable whose value is key notation */

typedef struct {
    const char *name;
    int type;      /* KART__SETTING_*, | NOTATION */
    size_t offset; /* the field; (size_t)-1 for the ones handled by name */
} kart__setting_var;

#define F(field) offsetof(kart__line_settings, field)
#define BY_NAME ((size_t)-1)

/* clang-format off */
static const kart__setting_var vars[] = {
    {"active-region-end-color", KART__SETTING_STRING | NOTATION, F(active_region_end_color)},
    {"active-region-start-color", KART__SETTING_STRING | NOTATION, F(active_region_start_color)},
    {"bell-style", KART__SETTING_WORD, BY_NAME},
    {"bind-tty-special-chars", KART__SETTING_BOOL, F(bind_tty_special_chars)},
    {"blink-matching-paren", KART__SETTING_BOOL, F(blink_matching_paren)},
    {"byte-oriented", KART__SETTING_BOOL, F(byte_oriented)},
    {"colored-completion-prefix", KART__SETTING_BOOL, F(colored_completion_prefix)},
    {"colored-stats", KART__SETTING_BOOL, F(colored_stats)},
    {"comment-begin", KART__SETTING_STRING, F(comment_begin)},
    {"completion-display-width", KART__SETTING_INT, F(completion_display_width)},
    {"completion-ignore-case", KART__SETTING_BOOL, F(completion_ignore_case)},
    {"completion-map-case", KART__SETTING_BOOL, F(completion_map_case)},
    {"completion-prefix-display-length", KART__SETTING_INT, F(completion_prefix_display_length)},
    {"completion-query-items", KART__SETTING_INT, F(completion_query_items)},
    {"convert-meta", KART__SETTING_BOOL, F(convert_meta)},
    {"disable-completion", KART__SETTING_BOOL, F(disable_completion)},
    {"echo-control-characters", KART__SETTING_BOOL, F(echo_control_characters)},
    {"editing-mode", KART__SETTING_WORD, BY_NAME},
    {"emacs-mode-string", KART__SETTING_STRING | NOTATION, F(emacs_mode_string)},
    {"enable-active-region", KART__SETTING_BOOL, F(enable_active_region)},
    {"enable-bracketed-paste", KART__SETTING_BOOL, F(enable_bracketed_paste)},
    {"enable-keypad", KART__SETTING_BOOL, F(enable_keypad)},
    {"enable-meta-key", KART__SETTING_BOOL, F(enable_meta_key)},
    {"expand-tilde", KART__SETTING_BOOL, F(expand_tilde)},
    {"force-meta-prefix", KART__SETTING_BOOL, F(force_meta_prefix)},
    {"history-preserve-point", KART__SETTING_BOOL, F(history_preserve_point)},
    {"history-size", KART__SETTING_INT, BY_NAME},
    {"horizontal-scroll-mode", KART__SETTING_BOOL, F(horizontal_scroll_mode)},
    {"input-meta", KART__SETTING_BOOL, F(input_meta)},
    {"isearch-terminators", KART__SETTING_STRING | NOTATION, F(isearch_terminators)},
    {"keymap", KART__SETTING_WORD, BY_NAME},
    {"keyseq-timeout", KART__SETTING_INT, F(keyseq_timeout)},
    {"mark-directories", KART__SETTING_BOOL, F(mark_directories)},
    {"mark-modified-lines", KART__SETTING_BOOL, F(mark_modified_lines)},
    {"mark-symlinked-directories", KART__SETTING_BOOL, F(mark_symlinked_directories)},
    {"match-hidden-files", KART__SETTING_BOOL, F(match_hidden_files)},
    {"menu-complete-display-prefix", KART__SETTING_BOOL, F(menu_complete_display_prefix)},
    {"meta-flag", KART__SETTING_BOOL, F(input_meta)},
    {"output-meta", KART__SETTING_BOOL, F(output_meta)},
    {"page-completions", KART__SETTING_BOOL, F(page_completions)},
    {"prefer-visible-bell", KART__SETTING_BOOL, BY_NAME},
    {"print-completions-horizontally", KART__SETTING_BOOL, F(print_completions_horizontally)},
    {"revert-all-at-newline", KART__SETTING_BOOL, F(revert_all_at_newline)},
    {"search-ignore-case", KART__SETTING_BOOL, F(search_ignore_case)},
    {"show-all-if-ambiguous", KART__SETTING_BOOL, F(show_all_if_ambiguous)},
    {"show-all-if-unmodified", KART__SETTING_BOOL, F(show_all_if_unmodified)},
    {"show-mode-in-prompt", KART__SETTING_BOOL, F(show_mode_in_prompt)},
    {"skip-completed-text", KART__SETTING_BOOL, F(skip_completed_text)},
    {"vi-cmd-mode-string", KART__SETTING_STRING | NOTATION, F(vi_cmd_mode_string)},
    {"vi-ins-mode-string", KART__SETTING_STRING | NOTATION, F(vi_ins_mode_string)},
    {"visible-stats", KART__SETTING_BOOL, F(visible_stats)},
};
/* clang-format on */

#define NVARS (sizeof(vars) / sizeof(vars[0]))

const char *const kart__line_setting_names[] = {
    "active-region-end-color",
    "active-region-start-color",
    "bell-style",
    "bind-tty-special-chars",
    "blink-matching-paren",
    "byte-oriented",
    "colored-completion-prefix",
    "colored-stats",
    "comment-begin",
    "completion-display-width",
    "completion-ignore-case",
    "completion-map-case",
    "completion-prefix-display-length",
    "completion-query-items",
    "convert-meta",
    "disable-completion",
    "echo-control-characters",
    "editing-mode",
    "emacs-mode-string",
    "enable-active-region",
    "enable-bracketed-paste",
    "enable-keypad",
    "enable-meta-key",
    "expand-tilde",
    "force-meta-prefix",
    "history-preserve-point",
    "history-size",
    "horizontal-scroll-mode",
    "input-meta",
    "isearch-terminators",
    "keymap",
    "keyseq-timeout",
    "mark-directories",
    "mark-modified-lines",
    "mark-symlinked-directories",
    "match-hidden-files",
    "menu-complete-display-prefix",
    "meta-flag",
    "output-meta",
    "page-completions",
    "prefer-visible-bell",
    "print-completions-horizontally",
    "revert-all-at-newline",
    "search-ignore-case",
    "show-all-if-ambiguous",
    "show-all-if-unmodified",
    "show-mode-in-prompt",
    "skip-completed-text",
    "vi-cmd-mode-string",
    "vi-ins-mode-string",
    "visible-stats",
    NULL,
};

/* The string fields, for init, copy and destroy. */
static const size_t string_fields[] = {
    F(comment_begin),           F(emacs_mode_string),  F(isearch_terminators),
    F(vi_cmd_mode_string),      F(vi_ins_mode_string), F(active_region_start_color),
    F(active_region_end_color),
};
#define NSTRINGS (sizeof(string_fields) / sizeof(string_fields[0]))

static char **str_field(kart__line_settings *s, size_t offset)
{
    return (char **)((char *)s + offset);
}

static const kart__setting_var *find_var(const char *name, size_t len)
{
    for (size_t i = 0; i < NVARS; i++)
        if (kart__line_name_eq(name, len, vars[i].name))
            return &vars[i];
    return NULL;
}

int kart__line_setting_type(const char *name, size_t name_len)
{
    const kart__setting_var *v = find_var(name, name_len);
    return v ? v->type & ~NOTATION : -ENOENT;
}

/* Whether the locale the environment names is UTF-8 (setlocale may not
 * have been called by the program yet, so its own answer may be "C"). */
static bool env_utf8(void)
{
    static const char *const names[] = {"LC_ALL", "LC_CTYPE", "LANG"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = getenv(names[i]);
        if (!v || !*v)
            continue;
        for (const char *p = v; p[0] && p[1] && p[2] && p[3]; p++) {
            if (kart__line_name_eq(p, 4, "utf8"))
                return true;
            if (p[4] && kart__line_name_eq(p, 5, "utf-8"))
                return true;
        }
        return false;
    }
    return false;
}

int kart__line_settings_init(kart__line_settings *s)
{
    bool utf8 = env_utf8();
    *s = (kart__line_settings){
        .bell_style = KART__BELL_AUDIBLE,
        .bind_tty_special_chars = true,
        .completion_display_width = -1,
        .completion_query_items = 100,
        .convert_meta = true,
        .echo_control_characters = true,
        .enable_active_region = true,
        .enable_bracketed_paste = true,
        .enable_meta_key = true,
        .history_size = -1,
        .input_meta = utf8,
        .keymap = KART__MAP_EMACS,
        .keyseq_timeout = 500,
        .mark_directories = true,
        .match_hidden_files = true,
        .output_meta = utf8,
        .page_completions = true,
    };
    s->comment_begin = strdup("#");
    s->emacs_mode_string = strdup("@");
    s->vi_cmd_mode_string = strdup("(cmd)");
    s->vi_ins_mode_string = strdup("(ins)");
    if (!s->comment_begin || !s->emacs_mode_string || !s->vi_cmd_mode_string ||
        !s->vi_ins_mode_string) {
        kart__line_settings_destroy(s);
        return -ENOMEM;
    }
    return 0;
}

void kart__line_settings_destroy(kart__line_settings *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < NSTRINGS; i++) {
        char **f = str_field(s, string_fields[i]);
        free(*f);
        *f = NULL;
    }
}

int kart__line_settings_copy(kart__line_settings *dst, const kart__line_settings *src)
{
    *dst = *src;
    for (size_t i = 0; i < NSTRINGS; i++)
        *str_field(dst, string_fields[i]) = NULL;
    for (size_t i = 0; i < NSTRINGS; i++) {
        const char *from = *str_field((kart__line_settings *)src, string_fields[i]);
        if (!from)
            continue;
        char *copy = strdup(from);
        if (!copy) {
            kart__line_settings_destroy(dst);
            return -ENOMEM;
        }
        *str_field(dst, string_fields[i]) = copy;
    }
    return 0;
}

static bool is_value(const char *v, size_t len, const char *word)
{
    return kart__line_name_eq(v, len, word);
}

/* A boolean: on/off, 1/0, empty for on. */
static int parse_bool(const char *v, size_t len, bool *out)
{
    if (len == 0 || is_value(v, len, "on") || is_value(v, len, "1"))
        *out = true;
    else if (is_value(v, len, "off") || is_value(v, len, "0"))
        *out = false;
    else
        return -EINVAL;
    return 0;
}

/* A decimal integer, optionally signed. */
static int parse_long(const char *v, size_t len, long *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (v[i] == '-' || v[i] == '+'))
        neg = v[i++] == '-';
    if (i == len)
        return -EINVAL;
    long n = 0;
    for (; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -EINVAL;
        if (n > (LONG_MAX - (v[i] - '0')) / 10)
            return -EINVAL;
        n = n * 10 + (v[i] - '0');
    }
    *out = neg ? -n : n;
    return 0;
}

/* An int variable: empty gives GNU's value for an empty one, a negative
 * number floor (or -1 where floor is -1). */
static int parse_int(const char *v, size_t len, int empty, int floor, int *out)
{
    long n = empty;
    if (len) {
        int err = parse_long(v, len, &n);
        if (err)
            return err;
        if (n > INT_MAX)
            return -EINVAL;
        if (n < floor)
            n = floor;
    }
    *out = (int)n;
    return 0;
}

/* A new string for a string variable: the value as is, or translated from
 * key notation (empty allowed). */
static int new_string(const char *v, size_t len, bool notation, char **out)
{
    char *s = malloc(len + 1);
    if (!s)
        return -ENOMEM;
    size_t n = len;
    if (notation && len) {
        int err = kart__keyseq_parse(v, len, s, len, &n);
        if (err) {
            free(s);
            return err == -ENOMEM ? err : -EINVAL;
        }
    } else {
        memcpy(s, v, len);
    }
    s[n] = '\0';
    *out = s;
    return 0;
}

static int set_by_name(kart__line_settings *s, const char *name, const char *v, size_t len)
{
    if (!strcmp(name, "bell-style")) {
        if (len == 0 || is_value(v, len, "audible") || is_value(v, len, "on"))
            s->bell_style = KART__BELL_AUDIBLE;
        else if (is_value(v, len, "visible"))
            s->bell_style = KART__BELL_VISIBLE;
        else if (is_value(v, len, "none") || is_value(v, len, "off"))
            s->bell_style = KART__BELL_NONE;
        else
            return -EINVAL;
        return 0;
    }
    if (!strcmp(name, "prefer-visible-bell")) {
        bool on;
        int err = parse_bool(v, len, &on);
        if (!err)
            s->bell_style = on ? KART__BELL_VISIBLE : KART__BELL_AUDIBLE;
        return err;
    }
    if (!strcmp(name, "editing-mode")) {
        if (is_value(v, len, "vi"))
            s->vi_mode = true, s->keymap = KART__MAP_VI_INSERT;
        else if (is_value(v, len, "emacs"))
            s->vi_mode = false, s->keymap = KART__MAP_EMACS;
        else
            return -EINVAL;
        s->keymap_prefix = 0;
        return 0;
    }
    if (!strcmp(name, "keymap")) {
        static const struct {
            const char *name;
            int map;
            char prefix;
        } maps[] = {
            {"emacs", KART__MAP_EMACS, 0},           {"emacs-standard", KART__MAP_EMACS, 0},
            {"emacs-meta", KART__MAP_EMACS, 0x1b},   {"emacs-ctlx", KART__MAP_EMACS, 0x18},
            {"vi", KART__MAP_VI_COMMAND, 0},         {"vi-move", KART__MAP_VI_COMMAND, 0},
            {"vi-command", KART__MAP_VI_COMMAND, 0}, {"vi-insert", KART__MAP_VI_INSERT, 0},
        };
        for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
            if (is_value(v, len, maps[i].name)) {
                s->keymap = maps[i].map;
                s->keymap_prefix = maps[i].prefix;
                return 0;
            }
        }
        return -EINVAL;
    }
    /* history-size: empty is 500, negative is unlimited (-1). */
    long n = 500;
    if (len) {
        int err = parse_long(v, len, &n);
        if (err)
            return err;
    }
    s->history_size = n < 0 ? -1 : n;
    return 0;
}

int kart__line_setting_set(kart__line_settings *s, const char *name, size_t name_len,
                           const char *value, size_t value_len)
{
    const kart__setting_var *var = find_var(name, name_len);
    if (!var)
        return -ENOENT;
    if (!value)
        value_len = 0;
    if (var->offset == BY_NAME)
        return set_by_name(s, var->name, value, value_len);
    void *field = (char *)s + var->offset;
    switch (var->type & ~NOTATION) {
    case KART__SETTING_BOOL: {
        bool on;
        int err = parse_bool(value, value_len, &on);
        if (err)
            return err;
        *(bool *)field = on;
        /* GNU: the active region is on exactly when bracketed paste is
         * (it shows the pasted text). */
        if (field == &s->enable_bracketed_paste)
            s->enable_active_region = on;
        return 0;
    }
    case KART__SETTING_INT: {
        int empty = 0, floor = 0;
        if (field == &s->completion_display_width)
            empty = -1, floor = INT_MIN;
        else if (field == &s->completion_query_items)
            empty = 100;
        return parse_int(value, value_len, empty, floor, (int *)field);
    }
    default: {
        /* comment-begin cannot be empty (GNU refuses it too). */
        if (value_len == 0 && field == &s->comment_begin)
            return -EINVAL;
        char *str;
        int err = new_string(value, value_len, var->type & NOTATION, &str);
        if (err)
            return err;
        free(*(char **)field);
        *(char **)field = str;
        return 0;
    }
    }
}

/* Copies text into buf (cap bytes, NUL-terminated) and returns its
 * length. */
static int put(char *buf, size_t cap, const char *text, size_t len)
{
    if (cap) {
        size_t n = len < cap - 1 ? len : cap - 1;
        memcpy(buf, text, n);
        buf[n] = '\0';
    }
    return (int)len;
}

int kart__line_setting_get(const kart__line_settings *s, const char *name, char *buf, size_t cap)
{
    const kart__setting_var *var = name ? find_var(name, strlen(name)) : NULL;
    if (!var)
        return -ENOENT;
    char num[32];
    const char *text = NULL;
    if (var->offset == BY_NAME) {
        if (!strcmp(var->name, "bell-style")) {
            text = s->bell_style == KART__BELL_VISIBLE ? "visible"
                   : s->bell_style == KART__BELL_NONE  ? "none"
                                                       : "audible";
        } else if (!strcmp(var->name, "prefer-visible-bell")) {
            text = s->bell_style == KART__BELL_VISIBLE ? "on" : "off";
        } else if (!strcmp(var->name, "editing-mode")) {
            text = s->vi_mode ? "vi" : "emacs";
        } else if (!strcmp(var->name, "keymap")) {
            text = s->keymap == KART__MAP_VI_COMMAND  ? "vi-command"
                   : s->keymap == KART__MAP_VI_INSERT ? "vi-insert"
                   : s->keymap_prefix == 0x1b         ? "emacs-meta"
                   : s->keymap_prefix == 0x18         ? "emacs-ctlx"
                                                      : "emacs";
        } else {
            snprintf(num, sizeof(num), "%ld", s->history_size < 0 ? -1L : s->history_size);
            text = num;
        }
        return put(buf, cap, text, strlen(text));
    }
    const void *field = (const char *)s + var->offset;
    switch (var->type & ~NOTATION) {
    case KART__SETTING_BOOL:
        text = *(const bool *)field ? "on" : "off";
        break;
    case KART__SETTING_INT:
        snprintf(num, sizeof(num), "%d", *(const int *)field);
        text = num;
        break;
    default: {
        const char *str = *(char *const *)field;
        if (!str)
            str = "";
        if (var->type & NOTATION) {
            size_t need = kart__keyseq_format(str, strlen(str), buf, cap);
            return (int)need;
        }
        text = str;
        break;
    }
    }
    return put(buf, cap, text, strlen(text));
}

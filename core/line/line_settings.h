/*
 * core/line/line_settings.h — the line editor's variables, GNU readline's
 * `set` variables (readline(3), "Variables"), with GNU's defaults.
 *
 * The inputrc parser (inputrc.h) sets them by name; the editor reads the
 * fields. Every variable GNU readline 8 knows is accepted by name, so that
 * a user's ~/.inputrc and Debian's /etc/inputrc load without a report; the
 * comment of each field says what kart does with it where that is less
 * than GNU does.
 */
#ifndef KART_LINE_SETTINGS_H
#define KART_LINE_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { KART__BELL_AUDIBLE, KART__BELL_VISIBLE, KART__BELL_NONE } kart__bell_style;

typedef struct kart__line_settings {
    bool vi_mode; /* editing-mode vi (default emacs) */
    kart__bell_style bell_style;
    bool bind_tty_special_chars;
    bool blink_matching_paren;
    bool colored_completion_prefix;
    bool colored_stats;
    char *comment_begin;          /* "#" */
    int completion_display_width; /* -1 */
    bool completion_ignore_case;
    bool completion_map_case;
    int completion_prefix_display_length; /* 0 */
    int completion_query_items;           /* 100 */
    bool convert_meta;                    /* on: M-x arrives as ESC x */
    bool disable_completion;
    bool echo_control_characters; /* on */
    char *emacs_mode_string;      /* "@" */
    bool enable_active_region;
    bool enable_bracketed_paste; /* on */
    bool enable_keypad;
    bool enable_meta_key; /* on */
    bool expand_tilde;
    bool history_preserve_point;
    long history_size; /* -1: not set (the history's own limit) */
    bool horizontal_scroll_mode;
    bool input_meta;           /* meta-flag too; on in UTF-8 locales */
    char *isearch_terminators; /* NULL: ESC and C-J */
    int keymap;                /* kart__map_id that bindings go to */
    int keyseq_timeout;        /* ms, 500; <= 0: wait for the next byte */
    bool mark_directories;     /* on */
    bool mark_modified_lines;
    bool mark_symlinked_directories;
    bool match_hidden_files; /* on */
    bool menu_complete_display_prefix;
    bool output_meta;      /* on in UTF-8 locales */
    bool page_completions; /* on */
    bool print_completions_horizontally;
    bool revert_all_at_newline;
    bool show_all_if_ambiguous;
    bool show_all_if_unmodified;
    bool show_mode_in_prompt;
    bool skip_completed_text;
    char *vi_cmd_mode_string; /* "(cmd)" */
    char *vi_ins_mode_string; /* "(ins)" */
    bool visible_stats;
    /* Added with the parts that read and set them: */
    /* `set keymap emacs-meta`: ESC, emacs-ctlx: C-x, otherwise 0; the
     * inputrc's bindings go under it in maps[keymap]. */
    char keymap_prefix;
    char *active_region_start_color; /* NULL: the terminal's standout */
    char *active_region_end_color;   /* NULL: the terminal's standout end */
    bool byte_oriented;
    bool force_meta_prefix; /* kart always binds \M-x as ESC x */
    bool search_ignore_case;
} kart__line_settings;

/* GNU's defaults. -ENOMEM (the strings are the settings' own). */
int kart__line_settings_init(kart__line_settings *s);
void kart__line_settings_destroy(kart__line_settings *s);
/* A deep copy into an uninitialized dst. -ENOMEM. */
int kart__line_settings_copy(kart__line_settings *dst, const kart__line_settings *src);

/* `set name value`, name case-insensitive. A boolean takes on/off (case-
 * insensitive), 1/0, or an empty value, which means on, as GNU does.
 * -ENOENT (no such variable), -EINVAL (a value the variable cannot take:
 * the setting is unchanged), -ENOMEM. */
int kart__line_setting_set(kart__line_settings *s, const char *name, size_t name_len,
                           const char *value, size_t value_len);
/* The value as `set` would take it ("on", "500", "vi"), into buf (cap
 * bytes, NUL-terminated); returns the length it needs, or -ENOENT. */
int kart__line_setting_get(const kart__line_settings *s, const char *name, char *buf, size_t cap);
/* The variables' names in order, NULL-terminated (for dump-variables). */
extern const char *const kart__line_setting_names[];

/* What a variable takes, for the inputrc parser: it reads the value of a
 * boolean, a number or a word (bell-style, editing-mode, keymap) up to the
 * first blank, and a string's to the end of the line or its closing
 * quote, as GNU's does. -ENOENT for no such variable. The strings that
 * hold key notation (the mode strings, isearch-terminators, the
 * active-region colors) are stored translated ("\e[1m" as ESC [ 1 m), and
 * written back in notation by kart__line_setting_get. */
enum {
    KART__SETTING_BOOL = 1,
    KART__SETTING_INT,
    KART__SETTING_WORD,
    KART__SETTING_STRING,
};
int kart__line_setting_type(const char *name, size_t name_len);

#endif

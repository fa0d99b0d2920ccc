/*
 * core/line/inputrc.h — GNU readline's init file: `set` lines, key
 * bindings to functions and macros in all three notations, and the
 * conditionals $if mode=/term=/version/<application>, $else, $endif,
 * $include.
 *
 * Bad lines never stop a file: each is reported through the callback
 * (file name and line number, what is wrong) and skipped, as GNU readline
 * does. $include nests at most 16 deep, and a file that includes itself
 * (directly or through others) is reported, not followed.
 */
#ifndef KART_INPUTRC_H
#define KART_INPUTRC_H

#include "line_keymap.h"
#include "line_settings.h"

#include <stddef.h>

typedef struct kart__inputrc_env {
    kart__line_settings *settings;       /* `set` lands here */
    kart__keymap *maps[KART__MAP_COUNT]; /* bindings land in settings->keymap's */
    const char *app_name;                /* for $if <name>; may be NULL */
    const char *term;                    /* for $if term=; NULL: $TERM */
    /* A bad line: file is the path (or "(string)"), line 1-based. May be
     * NULL: errors are then only counted. */
    void (*report)(void *arg, const char *file, int line, const char *message);
    void *report_arg;
} kart__inputrc_env;

/* Parses text (len bytes, lines ending in \n, \r\n or the end) as the
 * contents of a file called name (for reports and for $include paths
 * relative to it; NULL: "(string)", relative to the current folder).
 * Returns the number of lines reported (0: all good), or -ENOMEM (what was
 * parsed before stays applied), or -EINVAL (no env or env->settings). A
 * NULL entry of env->maps drops the bindings meant for that map. */
int kart__inputrc_parse(kart__inputrc_env *env, const char *text, size_t len, const char *name);
/* Reads and parses a file ("~/" and "~user/" expanded). Returns the
 * number of lines reported, or -ENOENT / -EACCES / -EISDIR / another -errno
 * of open and read when the file cannot be read, -EFBIG for a file over
 * 1 MiB, -ENAMETOOLONG, and as kart__inputrc_parse. */
int kart__inputrc_read(kart__inputrc_env *env, const char *path);
/* GNU's order: $INPUTRC if set, else ~/.inputrc, else /etc/inputrc; the
 * first that exists is read. Returns as kart__inputrc_read, and -ENOENT
 * if none exists. */
int kart__inputrc_read_default(kart__inputrc_env *env);

#endif

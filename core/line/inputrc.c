/*
 * core/line/inputrc.c — GNU readline's init file, line by line: `set`,
 * key bindings in the quoted and the key-name notation, $if/$else/$endif
 * and $include.
 *
 * It follows GNU's bind.c where a file that GNU accepts must load the same
 * (a value read up to the first blank for booleans, ':' optional after a
 * key when a blank separates it from the function, `:=` ignored), and is
 * stricter where GNU silently does something else than the user meant: a
 * line GNU would half-apply (an unknown function, which GNU binds as
 * "unbound"; a boolean value that is neither on nor off, which GNU takes
 * as off; trailing words) is reported and skipped. Conditionals belong to
 * the file that opens them: an $if left open at the end of a file is
 * reported there, at its own line, and cannot be closed by an included or
 * including file.
 */
#include "inputrc.h"

#include "fault.h"

#include <kart/common.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INCLUDE_DEPTH 16       /* $include levels below the first file */
#define FILE_MAX (1024 * 1024) /* the largest file read */
#define VERSION_MAJOR 8        /* kart answers $if version as readline */
#define VERSION_MINOR 2

typedef struct {
    dev_t dev;
    ino_t ino;
} file_id;

typedef struct {
    kart__inputrc_env *env;
    int reported;
    int err; /* -ENOMEM: stop */
    int depth;
    file_id open[INCLUDE_DEPTH + 1]; /* the files being read, outermost first */
    int nopen;
} parser;

typedef struct {
    int line;
    bool parent_out; /* the enclosing text was skipped */
    bool taken;      /* the $if's condition held */
    bool seen_else;
} cond;

typedef struct {
    parser *p;
    const char *name;
    int line;
    bool out; /* inside a branch that is skipped */
    cond *conds;
    size_t nconds, cap;
} file;

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static size_t skip_blanks(const char *s, size_t n, size_t i)
{
    while (i < n && blank(s[i]))
        i++;
    return i;
}

static size_t word_end(const char *s, size_t n, size_t i)
{
    while (i < n && !blank(s[i]))
        i++;
    return i;
}

/* Appends a token to a message, cut to 64 bytes, control bytes as '?'. */
static void quote_token(char *buf, size_t cap, const char *s, size_t n)
{
    size_t at = strlen(buf);
    for (size_t i = 0; i < n && i < 64 && at + 2 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[at++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (n > 64 && at + 4 < cap) {
        memcpy(buf + at, "...", 3);
        at += 3;
    }
    buf[at] = '\0';
}

/* Reports the current line: prefix, then the token (if any), then
 * suffix. */
static void report(file *f, const char *prefix, const char *tok, size_t toklen, const char *suffix)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", prefix);
    if (tok)
        quote_token(msg, sizeof(msg), tok, toklen);
    if (suffix) {
        size_t at = strlen(msg);
        snprintf(msg + at, sizeof(msg) - at, "%s", suffix);
    }
    kart__inputrc_env *env = f->p->env;
    if (env->report)
        env->report(env->report_arg, f->name, f->line, msg);
    f->p->reported++;
}

/* The index of the quote that closes the string opened at s[open], where
 * a backslash quotes the next byte; n if none. */
static size_t closing_quote(const char *s, size_t n, size_t open)
{
    for (size_t i = open + 1; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == s[open])
            return i;
    }
    return n;
}

/* ---- set ---- */

static void set_line(file *f, const char *s, size_t n)
{
    kart__inputrc_env *env = f->p->env;
    size_t i = skip_blanks(s, n, 0);
    size_t name = i, name_end = word_end(s, n, i);
    if (name == name_end) {
        report(f, "set: no variable name", NULL, 0, NULL);
        return;
    }
    int type = kart__line_setting_type(s + name, name_end - name);
    if (type < 0) {
        report(f, "unknown variable: ", s + name, name_end - name, NULL);
        return;
    }
    size_t v = skip_blanks(s, n, name_end), v_end;
    if (type != KART__SETTING_STRING) {
        v_end = word_end(s, n, v);
    } else if (v < n && s[v] == '"') {
        v_end = closing_quote(s, n, v);
        if (v_end == n) {
            report(f, "no closing '\"' in the value of ", s + name, name_end - name, NULL);
            return;
        }
        v++;
    } else {
        v_end = n;
        while (v_end > v && blank(s[v_end - 1]))
            v_end--;
    }
    int err = kart__line_setting_set(env->settings, s + name, name_end - name, s + v, v_end - v);
    if (err == -ENOMEM) {
        f->p->err = err;
    } else if (err) {
        char pre[160];
        snprintf(pre, sizeof(pre),
                 "%.*s: bad value: ", (int)(name_end - name < 64 ? name_end - name : 64), s + name);
        report(f, pre, s + v, v_end - v, NULL);
    }
}

/* ---- key bindings ---- */

static void binding_line(file *f, const char *s, size_t n)
{
    kart__inputrc_env *env = f->p->env;
    kart__line_settings *st = env->settings;
    bool quoted = s[0] == '"';
    size_t key, key_end, i;
    if (quoted) {
        key = 1;
        key_end = closing_quote(s, n, 0);
        if (key_end == n) {
            report(f, "no closing '\"' in the key sequence", NULL, 0, NULL);
            return;
        }
        i = key_end + 1;
    } else {
        key = 0;
        for (key_end = 0; key_end < n && s[key_end] != ':' && !blank(s[key_end]); key_end++)
            ;
        if (key_end == 0) {
            report(f, "no key before ':'", NULL, 0, NULL);
            return;
        }
        i = key_end;
    }
    size_t after_key = i;
    i = skip_blanks(s, n, i);
    bool colon = i < n && s[i] == ':';
    if (colon) {
        if (i + 1 < n && s[i + 1] == '=')
            return; /* GNU's "key := key" equivalence: parsed and ignored, as GNU does */
        i = skip_blanks(s, n, i + 1);
    }
    if (i == n) {
        report(f, colon ? "no function or macro for the key " : "no ':' after the key ", s + key,
               key_end - key, NULL);
        return;
    }
    if (!colon && i == after_key) {
        report(f, "no ':' after the key ", s + key, key_end - key, NULL);
        return;
    }
    /* The right-hand side: a macro in quotes, or a function name. */
    size_t rhs = i, rhs_end;
    bool macro = s[i] == '"' || s[i] == '\'';
    if (macro) {
        rhs_end = closing_quote(s, n, i);
        if (rhs_end == n) {
            report(f, "no closing quote in the macro", NULL, 0, NULL);
            return;
        }
        i = rhs_end + 1;
        rhs++;
    } else {
        rhs_end = word_end(s, n, i);
        i = rhs_end;
    }
    i = skip_blanks(s, n, i);
    if (i < n && s[i] != '#') {
        report(f, "text after the binding: ", s + i, n - i, NULL);
        return;
    }
    /* The key, under `set keymap emacs-meta`'s or emacs-ctlx's prefix. */
    char seq[KART__KEYSEQ_MAX];
    size_t pre = st->keymap_prefix ? 1 : 0, seq_len;
    seq[0] = st->keymap_prefix;
    int err =
        quoted
            ? kart__keyseq_parse(s + key, key_end - key, seq + pre, sizeof(seq) - pre, &seq_len)
            : kart__keyname_parse(s + key, key_end - key, seq + pre, sizeof(seq) - pre, &seq_len);
    if (err == -ENAMETOOLONG) {
        report(f, "key sequence longer than 32 bytes: ", s + key, key_end - key, NULL);
        return;
    }
    if (err) {
        if (quoted && key_end == key)
            report(f, "empty key sequence", NULL, 0, NULL);
        else if (quoted)
            report(f, "bad escape in the key sequence \"", s + key, key_end - key, "\"");
        else
            report(f, "unknown key name: ", s + key, key_end - key, NULL);
        return;
    }
    seq_len += pre;
    kart__keymap *map =
        st->keymap >= 0 && st->keymap < KART__MAP_COUNT ? env->maps[st->keymap] : NULL;
    if (macro) {
        size_t mlen = rhs_end - rhs, out_len = 0;
        char *text = malloc(mlen + 1);
        if (!text) {
            f->p->err = -ENOMEM;
            return;
        }
        err = mlen ? kart__keyseq_parse(s + rhs, mlen, text, mlen, &out_len) : 0;
        if (err)
            report(f, "bad escape in the macro \"", s + rhs, mlen, "\"");
        else if (map)
            err = kart__keymap_bind_macro(map, seq, seq_len, text, out_len);
        free(text);
        if (err == -ENOMEM)
            f->p->err = err;
        return;
    }
    enum kart__line_fn fn = kart__line_fn_lookup(s + rhs, rhs_end - rhs);
    if (fn == KART__FN_NONE) {
        report(f, "unknown function: ", s + rhs, rhs_end - rhs, NULL);
        return;
    }
    if (map && kart__keymap_bind_fn(map, seq, seq_len, fn) == -ENOMEM)
        f->p->err = -ENOMEM;
}

/* ---- $if ---- */

/* A comparison operator at s[*i]: 0 ==, 1 !=, 2 <, 3 <=, 4 >, 5 >=; -1
 * if none. */
static int comparison(const char *s, size_t n, size_t *i)
{
    size_t at = *i;
    if (at >= n)
        return -1;
    char c = s[at], d = at + 1 < n ? s[at + 1] : 0;
    int op;
    if (c == '=')
        op = 0, at += d == '=' ? 2 : 1;
    else if (c == '!' && d == '=')
        op = 1, at += 2;
    else if (c == '<')
        op = d == '=' ? 3 : 2, at += d == '=' ? 2 : 1;
    else if (c == '>')
        op = d == '=' ? 5 : 4, at += d == '=' ? 2 : 1;
    else
        return -1;
    *i = at;
    return op;
}

static bool compare(int op, int diff)
{
    switch (op) {
    case 0:
        return diff == 0;
    case 1:
        return diff != 0;
    case 2:
        return diff < 0;
    case 3:
        return diff <= 0;
    case 4:
        return diff > 0;
    default:
        return diff >= 0;
    }
}

/* The rest of the line from i is blank or a comment. */
static bool only_comment(const char *s, size_t n, size_t i)
{
    i = skip_blanks(s, n, i);
    return i == n || s[i] == '#';
}

/* $if version <op> major[.minor] */
static bool if_version(file *f, const char *s, size_t n)
{
    size_t i = skip_blanks(s, n, 7);
    int op = comparison(s, n, &i);
    if (op < 0) {
        report(f, "$if version: comparison operator expected", NULL, 0, NULL);
        return false;
    }
    i = skip_blanks(s, n, i);
    long major = 0, minor = 0;
    size_t digits = i;
    for (; i < n && s[i] >= '0' && s[i] <= '9' && major < 100000; i++)
        major = major * 10 + (s[i] - '0');
    bool ok = i > digits;
    if (ok && i < n && s[i] == '.') {
        size_t m = ++i;
        for (; i < n && s[i] >= '0' && s[i] <= '9' && minor < 100000; i++)
            minor = minor * 10 + (s[i] - '0');
        ok = i > m;
    }
    if (!ok || !only_comment(s, n, i)) {
        report(f, "$if version: bad version number: ", s + digits, n - digits, NULL);
        return false;
    }
    int diff = VERSION_MAJOR != major   ? (VERSION_MAJOR < major ? -1 : 1)
               : VERSION_MINOR != minor ? (VERSION_MINOR < minor ? -1 : 1)
                                        : 0;
    return compare(op, diff);
}

/* $if <variable> == value, or != value */
static bool if_variable(file *f, const char *s, size_t n, size_t name_end)
{
    const kart__line_settings *st = f->p->env->settings;
    size_t i = skip_blanks(s, n, name_end);
    int op = comparison(s, n, &i);
    if (op != 0 && op != 1) {
        report(f, "$if ", s, name_end, ": '==' or '!=' expected");
        return false;
    }
    i = skip_blanks(s, n, i);
    size_t v = i, v_end = word_end(s, n, i);
    if (v == v_end) {
        report(f, "$if ", s, name_end, ": no value to compare with");
        return false;
    }
    char name[64], value[256];
    snprintf(name, sizeof(name), "%.*s", (int)(name_end < 63 ? name_end : 63), s);
    kart__line_setting_get(st, name, value, sizeof(value));
    return compare(op, kart__line_name_eq(s + v, v_end - v, value) ? 0 : 1);
}

/* Whether the condition of an $if (s: its arguments) holds. */
static bool if_holds(file *f, const char *s, size_t n)
{
    kart__inputrc_env *env = f->p->env;
    size_t w = word_end(s, n, 0);
    if (n == 0) {
        report(f, "$if without a condition", NULL, 0, NULL);
        return false;
    }
    if (w >= 5 && kart__line_name_eq(s, 5, "term=")) {
        const char *term = env->term ? env->term : getenv("TERM");
        if (!term || !*term)
            return false;
        /* "xterm-256color" also answers to "xterm", as GNU does. */
        size_t short_len = strcspn(term, "-");
        char shortname[64];
        snprintf(shortname, sizeof(shortname), "%.*s", (int)(short_len < 63 ? short_len : 63),
                 term);
        return kart__line_name_eq(s + 5, w - 5, term) ||
               kart__line_name_eq(s + 5, w - 5, shortname);
    }
    if (w >= 5 && kart__line_name_eq(s, 5, "mode=")) {
        if (kart__line_name_eq(s + 5, w - 5, "emacs"))
            return !env->settings->vi_mode;
        if (kart__line_name_eq(s + 5, w - 5, "vi"))
            return env->settings->vi_mode;
        report(f, "$if mode=: not emacs or vi: ", s + 5, w - 5, NULL);
        return false;
    }
    if (n >= 7 && kart__line_name_eq(s, 7, "version"))
        return if_version(f, s, n);
    /* GNU's name for a program that set none is "other". */
    if (kart__line_name_eq(s, w, env->app_name ? env->app_name : "other"))
        return true;
    size_t name_end = 0;
    while (name_end < n && !blank(s[name_end]) && s[name_end] != '=' && s[name_end] != '!')
        name_end++;
    if (kart__line_setting_type(s, name_end) > 0)
        return if_variable(f, s, n, name_end);
    return false; /* another program's name */
}

/* ---- $include ---- */

/* path with a leading ~ or ~user expanded, into out (cap bytes). */
static int tilde_expand(const char *path, char *out, size_t cap)
{
    const char *home = NULL, *rest = path;
    char buf[4096];
    struct passwd pw, *res = NULL;
    if (path[0] == '~') {
        size_t ulen = strcspn(path + 1, "/");
        rest = path + 1 + ulen;
        if (ulen == 0) {
            home = getenv("HOME");
            if ((!home || !*home) && getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
                home = pw.pw_dir;
        } else {
            char user[256];
            if (ulen < sizeof(user)) {
                memcpy(user, path + 1, ulen);
                user[ulen] = '\0';
                if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) == 0 && res)
                    home = pw.pw_dir;
            }
        }
        if (!home)
            rest = path; /* no such user: the name as written, as GNU's tilde_expand */
    }
    int len = snprintf(out, cap, "%s%s", home ? home : "", rest);
    return len < 0 || (size_t)len >= cap ? -ENAMETOOLONG : 0;
}

/* Reads a whole file (at most FILE_MAX bytes) into a new buffer. */
static int slurp(const char *path, char **out, size_t *out_len, file_id *id)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    int err = 0;
    char *buf = NULL;
    size_t len = 0, cap;
    if (fstat(fd, &st) != 0) {
        err = -errno;
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        err = -EISDIR;
        goto out;
    }
    if (S_ISREG(st.st_mode) && st.st_size > FILE_MAX) {
        err = -EFBIG;
        goto out;
    }
    /* One byte more than the file, so that a file that grew is seen. */
    cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
    buf = malloc(cap);
    if (!buf) {
        err = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap > FILE_MAX) {
                err = -EFBIG;
                goto out;
            }
            size_t ncap = cap * 2 > FILE_MAX + 1 ? FILE_MAX + 1 : cap * 2;
            char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                err = -ENOMEM;
                goto out;
            }
            buf = nbuf, cap = ncap;
        }
        ssize_t r = kart__sys_read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = -errno;
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > FILE_MAX)
        err = -EFBIG;
out:
    close(fd);
    if (err) {
        free(buf);
        return err;
    }
    *out = buf;
    *out_len = len;
    *id = (file_id){st.st_dev, st.st_ino};
    return 0;
}

static void parse_text(parser *p, const char *text, size_t len, const char *name);

/* Reads path and parses it as one more open file. Returns 0, a -errno
 * from reading it, or IN_LOOP if it is already open. */
#define IN_LOOP 1
static int read_file(parser *p, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    file_id id;
    int err = slurp(path, &buf, &len, &id);
    if (err)
        return err;
    for (int i = 0; i < p->nopen; i++) {
        if (p->open[i].dev == id.dev && p->open[i].ino == id.ino) {
            free(buf);
            return IN_LOOP;
        }
    }
    p->open[p->nopen++] = id;
    parse_text(p, buf, len, path);
    p->nopen--;
    free(buf);
    return 0;
}

static void include(file *f, const char *s, size_t n)
{
    parser *p = f->p;
    while (n && blank(s[n - 1]))
        n--;
    if (n == 0) {
        report(f, "$include without a file name", NULL, 0, NULL);
        return;
    }
    if (p->depth >= INCLUDE_DEPTH) {
        report(f, "$include nested more than 16 deep: ", s, n, NULL);
        return;
    }
    if (memchr(s, '\0', n)) {
        report(f, "$include: a NUL byte in the file name", NULL, 0, NULL);
        return;
    }
    /* A relative name is relative to the including file's folder. */
    char written[PATH_MAX], path[PATH_MAX];
    const char *slash = strrchr(f->name, '/');
    int len;
    if (s[0] == '/' || s[0] == '~' || !slash)
        len = snprintf(written, sizeof(written), "%.*s", (int)n, s);
    else
        len = snprintf(written, sizeof(written), "%.*s/%.*s", (int)(slash - f->name), f->name,
                       (int)n, s);
    if (len < 0 || (size_t)len >= sizeof(written) || tilde_expand(written, path, sizeof(path))) {
        report(f, "$include: file name too long: ", s, n, NULL);
        return;
    }
    p->depth++;
    int err = read_file(p, path);
    p->depth--;
    if (err == -ENOMEM) {
        p->err = err;
    } else if (err == IN_LOOP) {
        report(f, "$include loop: ", s, n, " is already being read");
    } else if (err) {
        char suffix[128];
        snprintf(suffix, sizeof(suffix), ": %s", kart_strerror(err));
        report(f, "$include: cannot read ", s, n, suffix);
    }
}

/* ---- directives and lines ---- */

static void directive(file *f, const char *s, size_t n)
{
    size_t i = skip_blanks(s, n, 0), w = word_end(s, n, i);
    size_t a = skip_blanks(s, n, w), an = n;
    while (an > a && blank(s[an - 1]))
        an--;
    const char *word = s + i, *args = s + a;
    size_t wlen = w - i, alen = an - a;
    if (kart__line_name_eq(word, wlen, "if")) {
        if (f->nconds == f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 8;
            cond *c = realloc(f->conds, cap * sizeof(*c));
            if (!c) {
                f->p->err = -ENOMEM;
                return;
            }
            f->conds = c, f->cap = cap;
        }
        bool holds = !f->out && if_holds(f, args, alen);
        f->conds[f->nconds++] = (cond){.line = f->line, .parent_out = f->out, .taken = holds};
        f->out = f->out || !holds;
    } else if (kart__line_name_eq(word, wlen, "else")) {
        if (f->nconds == 0) {
            report(f, "$else without $if", NULL, 0, NULL);
            return;
        }
        cond *c = &f->conds[f->nconds - 1];
        if (c->seen_else) {
            report(f, "a second $else for the same $if", NULL, 0, NULL);
            return;
        }
        c->seen_else = true;
        f->out = c->parent_out || c->taken;
    } else if (kart__line_name_eq(word, wlen, "endif")) {
        if (f->nconds == 0) {
            report(f, "$endif without $if", NULL, 0, NULL);
            return;
        }
        f->out = f->conds[--f->nconds].parent_out;
    } else if (kart__line_name_eq(word, wlen, "include")) {
        if (!f->out)
            include(f, args, alen);
    } else {
        report(f, "unknown directive: $", word, wlen, NULL);
    }
}

static void parse_line(file *f, const char *s, size_t n)
{
    size_t i = skip_blanks(s, n, 0);
    s += i, n -= i;
    if (n == 0 || s[0] == '#')
        return;
    if (s[0] == '$') {
        directive(f, s + 1, n - 1);
        return;
    }
    if (f->out)
        return;
    if (n >= 3 && kart__line_name_eq(s, 3, "set") && (n == 3 || blank(s[3]))) {
        set_line(f, s + 3, n - 3);
        return;
    }
    binding_line(f, s, n);
}

static void parse_text(parser *p, const char *text, size_t len, const char *name)
{
    file f = {.p = p, .name = name};
    size_t pos = 0;
    while (pos < len && !p->err) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - pos;
        if (n && text[pos + n - 1] == '\r')
            n--;
        f.line++;
        parse_line(&f, text + pos, n);
        pos = end + 1;
    }
    for (size_t i = 0; i < f.nconds && !p->err; i++) {
        f.line = f.conds[i].line;
        report(&f, "$if without $endif", NULL, 0, NULL);
    }
    free(f.conds);
}

int kart__inputrc_parse(kart__inputrc_env *env, const char *text, size_t len, const char *name)
{
    if (!env || !env->settings || (!text && len))
        return -EINVAL;
    parser p = {.env = env};
    parse_text(&p, text, len, name ? name : "(string)");
    return p.err ? p.err : p.reported;
}

int kart__inputrc_read(kart__inputrc_env *env, const char *path)
{
    if (!env || !env->settings || !path)
        return -EINVAL;
    char full[PATH_MAX];
    if (tilde_expand(path, full, sizeof(full)))
        return -ENAMETOOLONG;
    parser p = {.env = env};
    int err = read_file(&p, full);
    if (err < 0)
        return err;
    return p.err ? p.err : p.reported;
}

int kart__inputrc_read_default(kart__inputrc_env *env)
{
    const char *path = getenv("INPUTRC");
    if (path && *path)
        return kart__inputrc_read(env, path);
    int r = kart__inputrc_read(env, "~/.inputrc");
    if (r != -ENOENT)
        return r;
    return kart__inputrc_read(env, "/etc/inputrc");
}

/*
 * core/line/history_expand.c — csh-style history expansion
 * (kart_history_expand), with bash's defaults: single quotes and a
 * word-starting '#' stop it, the shell's own '!'s ([!a], ${!x}, $!) are
 * left alone, ";&()|<>" end a !prefix, and the messages are bash's
 * ("!foo: event not found").
 *
 * Written from the behaviour of GNU readline's history_expand and bash's
 * `history -p` (tests/check_history.c compares the two where bash is
 * installed); the code is kart's own. Lines are byte strings with a
 * length, never scanned past it.
 */
#include "history_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing output string. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n + 1 > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (n + 1 > cap - b->len)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_addc(sbuf *b, char c)
{
    sb_add(b, &c, 1);
}

/* A byte of s, 0 past its end. */
#define AT(i) ((i) < n ? s[(i)] : 0)

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool in(char c, const char *set)
{
    return c && strchr(set, c);
}

#define WORD_DELIMS " \t\n;&()|<>"

/* The end of the shell word at s[i] (GNU's tokenizer rules: operators,
 * redirections with their descriptors, quotes, backslashes, $( ) and
 * other parenthesized groups). */
static size_t word_end(const char *s, size_t n, size_t i)
{
    char delim = 0, open = 0;
    int nest = 0;
    if (in(AT(i), "()\n"))
        return i + 1;
    if (is_digit(AT(i))) {
        size_t j = i;
        while (is_digit(AT(j)))
            j++;
        if (j == n)
            return j;
        i = j; /* a descriptor before < or >, or the start of a word */
        if (!in(AT(j), "<>"))
            goto word;
    }
    if (in(AT(i), "<>;&|")) {
        char c = AT(i), peek = AT(i + 1);
        if (peek == c) {
            if (c == '<' && (AT(i + 2) == '-' || AT(i + 2) == '<'))
                i++;
            return i + 2;
        }
        if (peek == '&' && (c == '>' || c == '<')) {
            size_t j = i + 2;
            while (is_digit(AT(j)))
                j++;
            if (AT(j) == '-')
                j++;
            return j;
        }
        if ((peek == '>' && c == '&') || (peek == '|' && c == '>'))
            return i + 2;
        if (peek == '(' && (c == '>' || c == '<')) {
            i += 2;
            open = '(';
            delim = ')';
            nest = 1;
            goto word;
        }
        return i + 1;
    }
word:
    if (!delim && in(AT(i), "\"'`"))
        delim = s[i++];
    for (; i < n; i++) {
        char c = s[i];
        if (c == '\\' && delim != '\'' && i + 1 < n) {
            i++;
            continue;
        }
        if (nest && c == open) {
            nest++;
            continue;
        }
        if (nest && c == delim) {
            if (--nest == 0)
                delim = 0;
            continue;
        }
        if (delim && c == delim) {
            delim = 0;
            continue;
        }
        if (!nest && !delim && in(c, "<>$!@?+*") && AT(i + 1) == '(') {
            i++;
            open = '(';
            delim = ')';
            nest = 1;
            continue;
        }
        if (!delim && in(c, WORD_DELIMS))
            break;
        if (!delim && in(c, "\"'`"))
            delim = c;
    }
    return i;
}

/* Splits s into words: start and end offsets in w[2k], w[2k + 1]
 * (malloc'd); *nw words. A '#' starting a word ends the line. -ENOMEM. */
static int split_words(const char *s, size_t n, size_t **w, size_t *nw)
{
    size_t *v = NULL, cap = 0, k = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'))
            i++;
        if (i == n || s[i] == '#')
            break;
        size_t e = word_end(s, n, i);
        if (e == i)
            e = i + 1;
        if (k == cap) {
            cap = cap ? cap * 2 : 16;
            size_t *nv = realloc(v, cap * 2 * sizeof(*v));
            if (!nv) {
                free(v);
                return -ENOMEM;
            }
            v = nv;
        }
        v[2 * k] = i;
        v[2 * k + 1] = e;
        k++;
        i = e;
    }
    *w = v;
    *nw = k;
    return 0;
}

/* Word range sentinels: "the last word", and "x-" (up to the one before
 * the last). */
#define W_LAST (-2L)
#define W_BUTLAST (-1L)

/* Words first..last of ev joined by spaces into out; 1 if there are no
 * such words, -ENOMEM. */
static int extract(const char *ev, size_t evlen, long first, long last, sbuf *out)
{
    size_t *w, nw;
    if (split_words(ev, evlen, &w, &nw) != 0)
        return -ENOMEM;
    long len = (long)nw;
    if (last == W_BUTLAST)
        last = len - 2;
    if (last == W_LAST)
        last = len - 1;
    if (first == W_LAST)
        first = len - 1;
    last++;
    int r = 1;
    if (!(first >= len || last > len || first < 0 || last < 0 || first > last)) {
        r = 0;
        sb_add(out, "", 0);
        for (long i = first; i < last; i++) {
            sb_add(out, ev + w[2 * i], w[2 * i + 1] - w[2 * i]);
            if (i + 1 < last)
                sb_addc(out, ' ');
        }
    }
    free(w);
    return r;
}

/* Replaces *dst with a copy of s. */
static int set_str(char **dst, size_t *dlen, const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return -ENOMEM;
    memcpy(p, s, n);
    p[n] = 0;
    free(*dst);
    *dst = p;
    *dlen = n;
    return 0;
}

/* One expansion's failure. */
typedef struct failure {
    int code;
    size_t from, to; /* the text the message quotes */
} failure;

typedef struct expander {
    kart_history *h;
    const char *s; /* the line (after ^ rewriting) */
    size_t n;
    sbuf *out; /* the expansion so far, for !# */
    failure fail;
    bool print_only;
} expander;

static int fail(expander *x, int code, size_t from, size_t to)
{
    x->fail = (failure){code, from, to};
    return code;
}

/* The event at s[*i] (just after the '!'): its text in *ev (pointing into
 * the history or into *own), *i moved past it. 0, KART_EHISTEVENT or
 * -ENOMEM. */
static int get_event(expander *x, size_t start, size_t *i, char dq, const char **ev, size_t *evlen,
                     sbuf *own)
{
    kart_history *h = x->h;
    const char *s = x->s;
    size_t n = x->n, j = *i;
    const char *t = NULL;
    size_t tl = 0;
    char c = AT(j);
    if (c == '#') {
        *i = j + 1;
        sb_add(own, x->out->p ? x->out->p : "", x->out->len);
        *ev = own->p;
        *evlen = x->out->len;
        return own->oom ? -ENOMEM : 0;
    }
    if (in(c, ":$*%^") || c == '!') {
        if (c == '!')
            j++;
        *i = j;
        t = kart_history_text(h, h->len - 1, &tl);
    } else if (is_digit(c) || (c == '-' && is_digit(AT(j + 1)))) {
        bool neg = c == '-';
        size_t v = 0;
        for (j += neg; is_digit(AT(j)); j++)
            v = v > (SIZE_MAX - 9) / 10 ? SIZE_MAX : v * 10 + (size_t)(s[j] - '0');
        *i = j;
        if (neg)
            t = v >= 1 && v <= h->len ? kart_history_text(h, h->len - v, &tl) : NULL;
        else
            t = v >= h->base ? kart_history_text(h, v - h->base, &tl) : NULL;
    } else {
        bool sub = c == '?';
        size_t from = j += sub, to;
        for (; j < n; j++) {
            char d = s[j];
            if (d == '\n' || (sub && d == '?'))
                break;
            if (!sub && (d == ' ' || d == '\t' || d == ':' || (j > from && d == '-') ||
                         in(d, "^$*%") || in(d, ";&()|<>") || (dq && d == dq)))
                break;
        }
        to = j;
        if (sub && AT(j) == '?')
            j++;
        *i = j;
        const char *pat = s + from;
        size_t plen = to - from;
        if (sub && plen == 0 && h->search) {
            pat = h->search;
            plen = h->search_len;
        }
        size_t idx, at;
        if (plen && kart_history_search(h, SIZE_MAX, pat, plen,
                                        sub ? 0 : KART_HISTORY_SEARCH_PREFIX, &idx, &at) == 0) {
            t = kart_history_text(h, idx, &tl);
            if (sub) {
                /* Remember the string, and the word it was found in (:%). */
                if (pat != h->search && set_str(&h->search, &h->search_len, pat, plen) != 0)
                    return -ENOMEM;
                size_t *w, nw;
                if (split_words(t, tl, &w, &nw) != 0)
                    return -ENOMEM;
                free(h->search_word);
                h->search_word = NULL;
                h->search_word_len = 0;
                for (size_t k = 0; k < nw; k++) {
                    if (at >= w[2 * k] && at < w[2 * k + 1]) {
                        if (set_str(&h->search_word, &h->search_word_len, t + w[2 * k],
                                    w[2 * k + 1] - w[2 * k]) != 0) {
                            free(w);
                            return -ENOMEM;
                        }
                        break;
                    }
                }
                free(w);
            }
        }
    }
    if (!t)
        return fail(x, KART_EHISTEVENT, start, *i);
    *ev = t;
    *evlen = tl;
    return 0;
}

/* A word designator at s[*i], if one is there: the words into out, 1 if
 * there is none (the whole event stands), 0, KART_EHISTWORD, -ENOMEM. */
static int get_words(expander *x, size_t *i, const char *ev, size_t evlen, sbuf *out)
{
    const char *s = x->s;
    size_t n = x->n, start = *i, j = *i;
    bool colon = AT(j) == ':';
    j += colon;
    long first, last;
    char c = AT(j);
    int r;
    switch (c) {
    case '%':
        *i = j + 1;
        sb_add(out, x->h->search_word ? x->h->search_word : "", x->h->search_word_len);
        return out->oom ? -ENOMEM : 0;
    case '*':
        *i = j + 1;
        r = extract(ev, evlen, 1, W_LAST, out);
        if (r > 0)
            sb_add(out, "", 0);
        return out->oom ? -ENOMEM : r < 0 ? r : 0;
    case '$':
        *i = j + 1;
        first = last = W_LAST;
        goto words;
    case '-':
        first = 0;
        break;
    case '^':
        first = 1;
        j++;
        break;
    default:
        if (!colon || !is_digit(c))
            return 1;
        for (first = 0; is_digit(AT(j)); j++)
            first = first > 100000000 ? first : first * 10 + (s[j] - '0');
    }
    if (AT(j) == '^' || AT(j) == '*') {
        last = AT(j) == '^' ? 1 : W_LAST;
        j++;
    } else if (AT(j) != '-') {
        last = first;
    } else {
        j++;
        if (is_digit(AT(j))) {
            for (last = 0; is_digit(AT(j)); j++)
                last = last > 100000000 ? last : last * 10 + (s[j] - '0');
        } else if (AT(j) == '$') {
            j++;
            last = W_LAST;
        } else if (AT(j) == '^') {
            j++;
            last = 1;
        } else {
            last = W_BUTLAST;
        }
    }
    *i = j;
    if (last >= 0 && last < first)
        return fail(x, KART_EHISTWORD, start, j);
words:
    r = extract(ev, evlen, first, last, out);
    if (r < 0 || out->oom)
        return -ENOMEM;
    return r ? fail(x, KART_EHISTWORD, start, *i) : 0;
}

/* A :s pattern from s[*i] to the delimiter (a backslash quotes it), or
 * the end; *i moves past the delimiter. */
static void get_pattern(expander *x, size_t *i, char delim, sbuf *pat)
{
    const char *s = x->s;
    size_t n = x->n, j = *i;
    sb_add(pat, "", 0);
    for (; j < n && s[j] != delim; j++) {
        if (s[j] == '\\' && AT(j + 1) == delim)
            j++;
        sb_addc(pat, s[j]);
    }
    *i = j < n ? j + 1 : j;
}

/* :s or :& on t (in place). */
static int substitute(expander *x, sbuf *t, bool global, size_t from, size_t to)
{
    kart_history *h = x->h;
    if (h->subst_old_len == 0)
        return fail(x, KART_EHISTSUBST, from, to);
    /* The replacement: & is the old text, \& a '&'. */
    sbuf rep = {0};
    sb_add(&rep, "", 0);
    for (size_t k = 0; k < h->subst_new_len; k++) {
        char c = h->subst_new[k];
        if (c == '&')
            sb_add(&rep, h->subst_old, h->subst_old_len);
        else if (c == '\\' && k + 1 < h->subst_new_len && h->subst_new[k + 1] == '&')
            sb_addc(&rep, h->subst_new[++k]);
        else
            sb_addc(&rep, c);
    }
    sbuf res = {0};
    sb_add(&res, "", 0);
    bool done = false;
    size_t k = 0;
    while (k + h->subst_old_len <= t->len && (!done || global)) {
        if (memcmp(t->p + k, h->subst_old, h->subst_old_len) == 0) {
            sb_add(&res, rep.p, rep.len);
            k += h->subst_old_len;
            done = true;
        } else {
            sb_addc(&res, t->p[k++]);
        }
    }
    sb_add(&res, t->p + k, t->len - k);
    bool oom = rep.oom || res.oom;
    free(rep.p);
    if (oom || !done) {
        free(res.p);
        return oom ? -ENOMEM : fail(x, KART_EHISTSUBST, from, to);
    }
    free(t->p);
    *t = res;
    return 0;
}

/* Quotes t for :q (one single-quoted word) or :x (a word per blank). */
static int quote(sbuf *t, char how)
{
    sbuf q = {0};
    sb_addc(&q, '\'');
    for (size_t k = 0; k < t->len; k++) {
        char c = t->p[k];
        if (c == '\'')
            sb_add(&q, "'\\''", 4);
        else if (how == 'x' && (c == ' ' || c == '\t' || c == '\n')) {
            sb_addc(&q, '\'');
            sb_addc(&q, c);
            sb_addc(&q, '\'');
        } else
            sb_addc(&q, c);
    }
    sb_addc(&q, '\'');
    if (q.oom) {
        free(q.p);
        return -ENOMEM;
    }
    free(t->p);
    *t = q;
    return 0;
}

/* The modifiers at s[*i] applied to t. */
static int modifiers(expander *x, size_t *i, sbuf *t)
{
    kart_history *h = x->h;
    const char *s = x->s;
    size_t n = x->n, j = *i, start = *i;
    char quoting = 0;
    int err = 0;
    while (!err && AT(j) == ':') {
        char c = AT(j + 1);
        bool global = false;
        if (c == 'g' || c == 'a') {
            global = true;
            j++;
            c = AT(j + 1);
        }
        char *p;
        switch (c) {
        case 'q':
        case 'x':
            quoting = c;
            break;
        case 'p':
            x->print_only = true;
            break;
        case 't':
            if ((p = memrchr(t->p, '/', t->len)) != NULL) {
                size_t k = (size_t)(p + 1 - t->p);
                memmove(t->p, p + 1, t->len - k + 1);
                t->len -= k;
            }
            break;
        case 'h':
        case 'r':
            if ((p = memrchr(t->p, c == 'h' ? '/' : '.', t->len)) != NULL) {
                t->len = (size_t)(p - t->p);
                t->p[t->len] = 0;
            }
            break;
        case 'e':
            if ((p = memrchr(t->p, '.', t->len)) != NULL) {
                size_t k = (size_t)(p - t->p);
                memmove(t->p, p, t->len - k + 1);
                t->len -= k;
            }
            break;
        case 's':
        case '&':
            if (c == 's') {
                if (j + 2 >= n)
                    break; /* no delimiter: ignored, as GNU does */
                char delim = s[j + 2];
                sbuf old = {0}, rep = {0};
                j += 3;
                get_pattern(x, &j, delim, &old);
                get_pattern(x, &j, delim, &rep);
                if (old.oom || rep.oom)
                    err = -ENOMEM;
                else if (old.len)
                    err = set_str(&h->subst_old, &h->subst_old_len, old.p, old.len);
                else if (!h->subst_old && h->search_len)
                    err = set_str(&h->subst_old, &h->subst_old_len, h->search, h->search_len);
                if (!err)
                    err = set_str(&h->subst_new, &h->subst_new_len, rep.p, rep.len);
                free(old.p);
                free(rep.p);
            } else {
                j += 2;
            }
            if (!err)
                err = substitute(x, t, global, start, j);
            continue;
        default:
            return fail(x, KART_EHISTMODIFIER, j + 1, j + 2 <= n ? j + 2 : n);
        }
        j += 2;
    }
    if (!err && quoting)
        err = quote(t, quoting);
    *i = j;
    return err;
}

/* One expansion at s[start] == '!': appended to x->out; *end receives
 * where the line goes on. */
static int expand_one(expander *x, size_t start, char dq, size_t *end)
{
    size_t i = start + 1;
    const char *ev;
    size_t evlen;
    sbuf own = {0}, t = {0};
    int err = get_event(x, start, &i, dq, &ev, &evlen, &own);
    if (!err) {
        err = get_words(x, &i, ev, evlen, &t);
        if (err == 1) {
            sb_add(&t, ev, evlen);
            err = t.oom ? -ENOMEM : 0;
        }
    }
    free(own.p);
    if (!err)
        err = modifiers(x, &i, &t);
    if (!err)
        sb_add(x->out, t.p, t.len);
    free(t.p);
    *end = i;
    return err ? err : x->out->oom ? -ENOMEM : 0;
}

/* bash's exceptions for the shell's own uses of '!': a [!...] pattern, a
 * ${!name} indirection, $!. */
static bool shell_bang(const char *s, size_t n, size_t i)
{
    if (i > 0 && s[i - 1] == '[' && memchr(s + i + 1, ']', n - i - 1))
        return true;
    if (i > 1 && s[i - 1] == '{' && s[i - 2] == '$' && memchr(s + i + 1, '}', n - i - 1))
        return true;
    return i > 1 && s[i - 1] == '$';
}

static int expand(expander *x, bool *expanded)
{
    const char *s = x->s;
    size_t n = x->n;
    bool dquote = false;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c == '\\') {
            sb_add(x->out, s + i, i + 1 < n ? 2 : 1);
            i += 2;
        } else if (c == '"') {
            dquote = !dquote;
            sb_addc(x->out, c);
            i++;
        } else if (c == '\'' && !dquote) {
            /* Single quotes stop expansion ($'...' takes backslashes). */
            bool dollar = i > 0 && s[i - 1] == '$';
            size_t j = i + 1;
            for (; j < n && s[j] != '\''; j++)
                if (dollar && s[j] == '\\' && j + 1 < n)
                    j++;
            j = j < n ? j + 1 : n;
            sb_add(x->out, s + i, j - i);
            i = j;
        } else if (c == '#' && !dquote && (i == 0 || in(s[i - 1], WORD_DELIMS))) {
            sb_add(x->out, s + i, n - i); /* a comment: the rest stays */
            break;
        } else if (c == '!' && i + 1 < n && !in(s[i + 1], " \t\n\r=") && s[i + 1] &&
                   !(dquote && s[i + 1] == '"') && !shell_bang(s, n, i)) {
            int err = expand_one(x, i, dquote ? '"' : 0, &i);
            if (err)
                return err;
            *expanded = true;
        } else {
            sb_addc(x->out, c);
            i++;
        }
    }
    return x->out->oom ? -ENOMEM : 0;
}

KART_API int kart_history_expand(kart_history *h, const char *line, size_t len,
                                 kart_history_expansion *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!line && len)
        return -EINVAL;
    /* ^old^new^ is !!:s^old^new^. */
    char *quick = NULL;
    size_t shift = 0;
    if (len && line[0] == '^') {
        quick = malloc(len + 4);
        if (!quick)
            return -ENOMEM;
        memcpy(quick, "!!:s", 4);
        memcpy(quick + 4, line, len);
        line = quick;
        len += 4;
        shift = 4;
    }
    sbuf o = {0};
    sb_add(&o, "", 0);
    expander x = {.h = h, .s = line, .n = len, .out = &o};
    bool expanded = false;
    int err = o.oom ? -ENOMEM : expand(&x, &expanded);
    if (err == 0) {
        out->text = o.p;
        out->len = o.len;
        out->expanded = expanded;
        out->print_only = x.print_only;
    } else {
        free(o.p);
        if (err != -ENOMEM) {
            static const char *const what[] = {"event not found", "bad word specifier",
                                               "unrecognized history modifier",
                                               "substitution failed"};
            const char *msg = what[KART_EHISTEVENT - err];
            if (err == KART_EHISTSUBST && h->subst_old_len == 0)
                msg = "no previous substitution";
            failure f = x.fail;
            snprintf(out->message, sizeof(out->message), "%.*s: %s", (int)(f.to - f.from),
                     line + f.from, msg);
            out->error_offset = f.from > shift ? f.from - shift : 0;
        }
    }
    free(quick);
    return err;
}

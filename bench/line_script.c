/*
 * bench/line_script.c — the keystroke script, its expected line and the
 * history file of the `line` scenarios (bench/line_script.h). Also
 * compiled into each peer program (bench/peers/), so every editor gets the
 * same bytes.
 */
#include "line_script.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTRL(c) ((char)((c)&0x1f))

static const char *const words[] = {"echo", "grep",   "status", "make",  "build",  "kart",
                                    "line", "editor", "value",  "print", "socket", "loop"};

/* The model of the editing commands the script uses: GNU's emacs
 * bindings, words being runs of letters and digits (the text has only
 * letters and spaces, where readline and libedit agree). */
typedef struct model {
    char *buf;
    size_t len, point;
} model;

static bool word_char(char c)
{
    return isalnum((unsigned char)c);
}

static int push(line_script *s, size_t *cap, char b0, char b1, unsigned char n)
{
    if (s->nkeys == *cap) {
        size_t ncap = *cap ? *cap * 2 : 1024;
        line_key *k = realloc(s->keys, ncap * sizeof(*k));
        if (!k)
            return -1;
        s->keys = k;
        *cap = ncap;
    }
    s->keys[s->nkeys++] = (line_key){{b0, b1}, n};
    return 0;
}

/* One key through the model. */
static void apply(model *m, const line_key *k)
{
    char c = k->bytes[0];
    if (k->len == 2) { /* M-f, M-b */
        if (k->bytes[1] == 'f') {
            while (m->point < m->len && !word_char(m->buf[m->point]))
                m->point++;
            while (m->point < m->len && word_char(m->buf[m->point]))
                m->point++;
        } else {
            while (m->point > 0 && !word_char(m->buf[m->point - 1]))
                m->point--;
            while (m->point > 0 && word_char(m->buf[m->point - 1]))
                m->point--;
        }
        return;
    }
    switch (c) {
    case CTRL('a'):
        m->point = 0;
        break;
    case CTRL('e'):
        m->point = m->len;
        break;
    case CTRL('b'):
        if (m->point > 0)
            m->point--;
        break;
    case CTRL('f'):
        if (m->point < m->len)
            m->point++;
        break;
    case 0x7f: /* backward-delete-char */
        if (m->point > 0) {
            memmove(m->buf + m->point - 1, m->buf + m->point, m->len - m->point);
            m->point--;
            m->len--;
        }
        break;
    case CTRL('d'): /* delete-char (never on an empty line here) */
        if (m->point < m->len) {
            memmove(m->buf + m->point, m->buf + m->point + 1, m->len - m->point - 1);
            m->len--;
        }
        break;
    case '\r':
        break;
    default: /* self-insert */
        memmove(m->buf + m->point + 1, m->buf + m->point, m->len - m->point);
        m->buf[m->point++] = c;
        m->len++;
        break;
    }
}

/* One key into the script and through the model. */
static int key(line_script *s, size_t *cap, model *m, char c)
{
    if (push(s, cap, c, 0, 1) != 0)
        return -1;
    apply(m, &s->keys[s->nkeys - 1]);
    return 0;
}

/* M-f (forward) or M-b: ESC and the letter. */
static int meta_word(line_script *s, size_t *cap, model *m, bool forward)
{
    if (push(s, cap, 0x1b, forward ? 'f' : 'b', 2) != 0)
        return -1;
    apply(m, &s->keys[s->nkeys - 1]);
    return 0;
}

int line_script_build(line_script *s, size_t chars)
{
    memset(s, 0, sizeof(*s));
    size_t cap = 0;
    model m = {malloc(chars + 16), 0, 0};
    if (!m.buf)
        return -1;
    int err = 0;
    /* Insert: words and spaces up to `chars` characters, all but the
     * last LINE_TYPED of them given as the prefill. */
    size_t typed = chars < LINE_TYPED ? chars : LINE_TYPED;
    s->prefill_len = chars - typed;
    if (!(s->prefill = malloc(s->prefill_len + 1))) {
        free(m.buf);
        return -1;
    }
    for (size_t i = 0, w = 0; i < chars && !err; w++) {
        const char *word = words[w % (sizeof(words) / sizeof(words[0]))];
        for (size_t j = 0; i < chars && !err; j++, i++) {
            char c = word[j] ? word[j] : ' ';
            if (i < s->prefill_len) {
                line_key k = {{c, 0}, 1};
                s->prefill[i] = c;
                apply(&m, &k);
            } else {
                err = key(s, &cap, &m, c);
            }
            if (!word[j]) {
                i++;
                break;
            }
        }
    }
    s->prefill[s->prefill_len] = '\0';
    /* Move: to the start, a hundred right, words both ways (and type
     * there), to the end, a hundred left. */
    size_t steps = chars / 2 < 100 ? chars / 2 : 100;
    err = err ? err : key(s, &cap, &m, CTRL('a'));
    for (size_t i = 0; i < steps && !err; i++)
        err = key(s, &cap, &m, CTRL('f'));
    for (int i = 0; i < 5 && !err; i++)
        err = meta_word(s, &cap, &m, true);
    for (int i = 0; i < 5 && !err; i++)
        err = meta_word(s, &cap, &m, false);
    /* Typed near the start: on a wrapped line, all the rows after it
     * move. */
    for (const char *p = "abc"; *p && !err; p++)
        err = key(s, &cap, &m, *p);
    err = err ? err : key(s, &cap, &m, CTRL('e'));
    for (size_t i = 0; i < steps && !err; i++)
        err = key(s, &cap, &m, CTRL('b'));
    /* Delete: twenty back, twenty forward, then type three in the gap. */
    for (int i = 0; i < 20 && !err; i++)
        err = key(s, &cap, &m, 0x7f);
    for (int i = 0; i < 20 && !err; i++)
        err = key(s, &cap, &m, CTRL('d'));
    for (const char *p = "xyz"; *p && !err; p++)
        err = key(s, &cap, &m, *p);
    err = err ? err : key(s, &cap, &m, '\r');
    if (err) {
        free(m.buf);
        line_script_free(s);
        return -1;
    }
    m.buf[m.len] = '\0';
    s->expect = m.buf;
    s->expect_len = m.len;
    return 0;
}

void line_script_free(line_script *s)
{
    free(s->keys);
    free(s->prefill);
    free(s->expect);
    memset(s, 0, sizeof(*s));
}

uint64_t line_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* ---- the history file ---- */

static const char *const commands[] = {
    "git commit -m 'fix the %s of issue %zu'", "ls -la /usr/lib/%s-%zu",
    "make -j2 build/tests/check_%s",           "cd ~/src/%s/v%zu",
    "grep -rn %s core/ | head -%zu",           "ssh build%zu.example.net tail -f /var/log/%s",
    "python3 -c 'print(%zu * %zu)'",           "vim src/%s.c +%zu",
};
static const char *const things[] = {"parser", "render", "socket", "history", "timer", "queue"};

size_t line_history_entry(size_t i, char *buf)
{
    const char *thing = things[(i / 8) % 6];
    size_t n = (i * 7919) % 10007;
    int len;
    switch (i % 8) {
    case 5:
        len = snprintf(buf, 128, commands[5], n % 64, thing);
        break;
    case 6:
        len = snprintf(buf, 128, commands[6], n, i % 1000);
        break;
    default:
        len = snprintf(buf, 128, commands[i % 8], thing, n);
        break;
    }
    return (size_t)len;
}

static const char *const queries[] = {
    "commit", "check_history", "/usr/lib/socket-1",    "tail -f", "print(77",
    "v99",    "no such thing", "vim src/timer.c +100", "-j2",     "example.net",
};

const char *line_history_query(size_t i)
{
    return queries[i % (sizeof(queries) / sizeof(queries[0]))];
}

uint64_t line_found_hash(uint64_t h, size_t index, size_t offset)
{
    const uint64_t pair[2] = {index, offset};
    return line_hash(h, pair, sizeof(pair));
}

int line_history_file(const char *path, size_t n, int stamps)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    char buf[128];
    for (size_t i = 0; i < n; i++) {
        if (stamps)
            fprintf(f, "#%zu\n", (size_t)1700000000 + i * 3);
        size_t len = line_history_entry(i, buf);
        fwrite(buf, 1, len, f);
        fputc('\n', f);
    }
    int err = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && !err)
        err = -errno;
    return err;
}

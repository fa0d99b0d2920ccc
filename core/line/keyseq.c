/*
 * core/line/keyseq.c — inputrc's key notations: the quoted form
 * ("\C-x\C-r", "\e[A", "\M-f", octal and hex escapes), the key names of the
 * unquoted form (Control-u, Meta-Rubout), and the quoted form written back
 * for dumps.
 *
 * As with GNU readline's convert-meta, a meta key is the ESC prefix: "\M-f"
 * and Meta-f are the bytes ESC f, which is what terminals send for Alt-f
 * (GNU binds the byte 0xe6 instead when convert-meta is off, which is
 * never what an xterm sends; readline 8.3 added force-meta-prefix for
 * that). GNU strips the backslash of an escape it does not know ("\q" is
 * q); here a backslash before a letter or digit that is not an escape is
 * an error, so that "\E[A" (terminfo's spelling) is reported instead of
 * quietly binding "E[A". A backslash before punctuation stays GNU's: the
 * character itself ("\[" is [, "\'" is ').
 */
#include "line_keymap.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define ESC 0x1b
#define DEL 0x7f

/* Control of c, as GNU's CTRL(toupper(c)), except that ? is DEL. */
static unsigned char control(unsigned char c)
{
    if (c == '?')
        return DEL;
    if (c >= 'a' && c <= 'z')
        c = (unsigned char)(c - ('a' - 'A'));
    return c & 0x1f;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Appends one key (c, with meta as an ESC prefix) to out. */
static int put(char *out, size_t cap, size_t *n, unsigned char c, bool meta)
{
    if (*n + meta + 1 > cap)
        return -ENAMETOOLONG;
    if (meta)
        out[(*n)++] = ESC;
    out[(*n)++] = (char)c;
    return 0;
}

int kart__keyseq_parse(const char *text, size_t len, char *out, size_t cap, size_t *out_len)
{
    size_t n = 0;
    bool ctl = false, meta = false;
    if (!text || len == 0)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\\') {
            if (++i == len)
                return -EINVAL; /* a lone backslash at the end */
            c = (unsigned char)text[i];
            if ((c == 'C' || c == 'M') && i + 1 < len && text[i + 1] == '-') {
                i++;
                *(c == 'C' ? &ctl : &meta) = true;
                continue;
            }
            static const char letters[] = "abdefnrtv", bytes[] = "\a\b\x7f\x1b\f\n\r\t\v";
            const char *simple = c ? strchr(letters, c) : NULL;
            if (simple) {
                c = (unsigned char)bytes[simple - letters];
            } else if (c >= '0' && c <= '7') {
                unsigned v = c - '0';
                for (int k = 0; k < 2 && i + 1 < len && text[i + 1] >= '0' && text[i + 1] <= '7';
                     k++)
                    v = v * 8 + (unsigned)(text[++i] - '0');
                c = (unsigned char)v; /* \400 and up keep their low 8 bits, as GNU */
            } else if (c == 'x') {
                int v = 0, k = 0;
                for (; k < 2 && i + 1 < len && hexval((unsigned char)text[i + 1]) >= 0; k++)
                    v = v * 16 + hexval((unsigned char)text[++i]);
                if (k == 0)
                    return -EINVAL;
                c = (unsigned char)v;
            } else if (is_alnum(c) || c >= 0x80) {
                return -EINVAL;
            } /* else \\ \" \' and other punctuation: the character itself */
        }
        if (ctl)
            c = control(c);
        int err = put(out, cap, &n, c, meta);
        if (err)
            return err;
        ctl = meta = false;
    }
    if (ctl || meta)
        return -EINVAL; /* "\C-" or "\M-" with no key after it */
    *out_len = n;
    return 0;
}

static const struct {
    const char *name;
    unsigned char key;
} key_names[] = {
    {"DEL", DEL},      {"ESC", ESC},   {"Escape", ESC},  {"LFD", '\n'},
    {"Newline", '\n'}, {"RET", '\r'},  {"Return", '\r'}, {"Rubout", DEL},
    {"SPC", ' '},      {"Space", ' '}, {"Tab", '\t'},
};

/* The length of the UTF-8 character that starts at s (1 for anything that
 * does not start a valid one). */
static size_t utf8_char_len(const unsigned char *s, size_t len)
{
    size_t need = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
                  : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                  : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                 : 1;
    if (need > len)
        return 1;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 1;
    return need;
}

int kart__keyname_parse(const char *text, size_t len, char *out, size_t cap, size_t *out_len)
{
    static const char *const ctl_prefixes[] = {"Control-", "Ctrl-", "C-"};
    static const char *const meta_prefixes[] = {"Meta-", "M-"};
    bool ctl = false, meta = false;
    if (!text || len == 0)
        return -EINVAL;
    /* Modifiers in any order; what follows the last one is the key, which
     * may itself be "-" (C--). */
    for (bool more = true; more && len > 1;) {
        more = false;
        for (size_t k = 0; k < 5 && !more; k++) {
            const char *p = k < 3 ? ctl_prefixes[k] : meta_prefixes[k - 3];
            size_t plen = strlen(p);
            if (len > plen && kart__line_name_eq(text, plen, p)) {
                *(k < 3 ? &ctl : &meta) = true;
                text += plen;
                len -= plen;
                more = true;
            }
        }
    }
    unsigned char key = 0;
    bool named = false;
    for (size_t k = 0; k < sizeof(key_names) / sizeof(key_names[0]); k++) {
        if (kart__line_name_eq(text, len, key_names[k].name)) {
            key = key_names[k].key;
            named = true;
            break;
        }
    }
    size_t n = 0;
    if (!named) {
        /* One character: a byte, or one whole UTF-8 character when no
         * control modifier applies to it. */
        size_t clen = utf8_char_len((const unsigned char *)text, len);
        if (clen != len || (clen > 1 && ctl))
            return -EINVAL;
        if (clen > 1) {
            if (meta + clen > cap)
                return -ENAMETOOLONG;
            if (meta)
                out[n++] = ESC;
            memcpy(out + n, text, clen);
            *out_len = n + clen;
            return 0;
        }
        key = (unsigned char)text[0];
    }
    if (ctl)
        key = control(key);
    int err = put(out, cap, &n, key, meta);
    if (err)
        return err;
    *out_len = n;
    return 0;
}

/* Appends s to out if it fits; counts it either way. */
static void emit(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++, (*n)++)
        if (*n + 1 < cap)
            out[*n] = s[i];
}

size_t kart__keyseq_format(const char *seq, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)seq[i];
        char buf[8];
        size_t blen;
        if (c == ESC) {
            blen = 2, memcpy(buf, "\\e", 2);
        } else if (c < 0x20) {
            /* \C- and the lower-case letter, as GNU's dumps write it. */
            unsigned char k = (unsigned char)(c | 0x40);
            if (k >= 'A' && k <= 'Z')
                k = (unsigned char)(k + ('a' - 'A'));
            memcpy(buf, "\\C-", 3);
            blen = 3;
            if (k == '\\')
                buf[blen++] = '\\';
            buf[blen++] = (char)k;
        } else if (c == DEL) {
            blen = 4, memcpy(buf, "\\C-?", 4);
        } else if (c == '\\' || c == '"') {
            buf[0] = '\\', buf[1] = (char)c, blen = 2;
        } else if (c >= 0x80) {
            buf[0] = '\\';
            buf[1] = (char)('0' + (c >> 6));
            buf[2] = (char)('0' + ((c >> 3) & 7));
            buf[3] = (char)('0' + (c & 7));
            blen = 4;
        } else {
            buf[0] = (char)c, blen = 1;
        }
        emit(out, cap, &n, buf, blen);
    }
    if (cap)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

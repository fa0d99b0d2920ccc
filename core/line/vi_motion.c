/*
 * core/line/vi_motion.c — the vi mode's motions (GNU readline's
 * vi_mode.c: rl_vi_fword, rl_vi_eword, rl_vi_match, the character search
 * ...): where each takes the cursor, without moving it. The motion
 * commands (vi.c) move there; the operators d, c and y act on the text
 * between the cursor and there.
 *
 * Word motions follow GNU's two kinds of word: w b e stop where an
 * identifier (letters, digits, '_'; any non-ASCII letter) meets other
 * non-blank characters, W B E only at blanks (space and tab, GNU's
 * whitespace()). For an operator GNU appends a blank to the line while
 * the motion runs, so that "dw" on the last word reaches the end; here
 * position len reads as that blank when op is set, and positions are
 * allowed to go one past it before being clamped back to len.
 */
#include "line_private.h"

#include <string.h>

bool kart__vi_blank(uint32_t c)
{
    return c == ' ' || c == '\t';
}

/* The character at p; a blank past the end. */
static uint32_t ch(const kart_line *ed, size_t p)
{
    return p >= ed->line.len ? ' ' : kart__char_at(ed, p, NULL);
}

static bool ident(uint32_t c)
{
    return c == '_' || kart__is_word_char(c);
}

/* One character forward; past the end, one (imaginary blank) byte. */
static size_t adv(const kart_line *ed, size_t p)
{
    return p < ed->line.len ? kart__next_char(ed, p) : p + 1;
}

static size_t back(const kart_line *ed, size_t p)
{
    if (p > ed->line.len)
        return p - 1;
    return p > 0 ? kart__prev_char(ed, p) : 0;
}

/* w: to the start of the next word (end: the line's length, plus one for
 * an operator's blank). */
static size_t fword(const kart_line *ed, size_t p, int count, size_t end)
{
    while (count-- > 0 && p + 1 < end) {
        if (ident(ch(ed, p))) {
            while (p < end && ident(ch(ed, p)))
                p = adv(ed, p);
        } else {
            while (p < end && !ident(ch(ed, p)) && !kart__vi_blank(ch(ed, p)))
                p = adv(ed, p);
        }
        while (p < end && kart__vi_blank(ch(ed, p)))
            p = adv(ed, p);
    }
    return p;
}

static size_t fbigword(const kart_line *ed, size_t p, int count, size_t end)
{
    while (count-- > 0 && p + 1 < end) {
        while (p < end && !kart__vi_blank(ch(ed, p)))
            p = adv(ed, p);
        while (p < end && kart__vi_blank(ch(ed, p)))
            p = adv(ed, p);
    }
    return p;
}

/* b: to the start of this or the previous word. */
static size_t bword(const kart_line *ed, size_t p, int count)
{
    while (count-- > 0 && p > 0) {
        /* at a word's start: step off it so that the previous is found */
        if (!kart__vi_blank(ch(ed, p)) && kart__vi_blank(ch(ed, back(ed, p)))) {
            p = back(ed, p);
            if (p == 0)
                break;
        }
        /* between two kinds of word ("l;"): start from the previous one */
        size_t q = back(ed, p);
        if (ident(ch(ed, p)) != ident(ch(ed, q)))
            p = q;
        while (p > 0 && kart__vi_blank(ch(ed, p)))
            p = back(ed, p);
        if (p > 0) {
            bool id = ident(ch(ed, p));
            size_t o;
            do {
                o = p;
                p = back(ed, p);
            } while (p > 0 &&
                     (id ? ident(ch(ed, p)) : !ident(ch(ed, p)) && !kart__vi_blank(ch(ed, p))));
            /* the loop stopped on another kind: the word starts after it */
            if (p > 0 || (id ? !ident(ch(ed, 0)) : ident(ch(ed, 0)) || kart__vi_blank(ch(ed, 0))))
                p = o;
        }
    }
    return p;
}

static size_t bbigword(const kart_line *ed, size_t p, int count)
{
    while (count-- > 0 && p > 0) {
        if (!kart__vi_blank(ch(ed, p)) && kart__vi_blank(ch(ed, back(ed, p))))
            p = back(ed, p);
        while (p > 0 && kart__vi_blank(ch(ed, p)))
            p = back(ed, p);
        if (p > 0) {
            do
                p = back(ed, p);
            while (p > 0 && !kart__vi_blank(ch(ed, p)));
            if (kart__vi_blank(ch(ed, p)))
                p = adv(ed, p);
        }
    }
    return p;
}

/* e: to the last character of this or the next word. */
static size_t eword(const kart_line *ed, size_t p, int count, size_t end, bool big)
{
    while (count-- > 0 && p + 1 < end) {
        if (!kart__vi_blank(ch(ed, p)))
            p = adv(ed, p);
        while (p < end && kart__vi_blank(ch(ed, p)))
            p = adv(ed, p);
        size_t o = p;
        if (p < end) {
            bool id = ident(ch(ed, p));
            do {
                o = p;
                p = adv(ed, p);
            } while (p < end && (big  ? !kart__vi_blank(ch(ed, p))
                                 : id ? ident(ch(ed, p))
                                      : !ident(ch(ed, p)) && !kart__vi_blank(ch(ed, p))));
        }
        p = o;
    }
    return p;
}

/* f F t T: the count-th c after (before) p. */
static bool char_search(const kart_line *ed, size_t p, int count, char kind, const char *c,
                        size_t n, size_t *out)
{
    bool fwd = kind == 'f' || kind == 't';
    if (n == 0)
        return false;
    size_t q = p;
    while (count-- > 0) {
        bool found = false;
        if (fwd) {
            for (q = q < ed->line.len ? kart__next_char(ed, q) : q; q + n <= ed->line.len;
                 q = kart__next_char(ed, q))
                if (memcmp(ed->line.p + q, c, n) == 0) {
                    found = true;
                    break;
                }
        } else {
            while (q > 0) {
                q = kart__prev_char(ed, q);
                if (q + n <= ed->line.len && memcmp(ed->line.p + q, c, n) == 0) {
                    found = true;
                    break;
                }
            }
        }
        if (!found)
            return false;
    }
    /* t and T stop next to the character */
    if (kind == 't')
        q = kart__prev_char(ed, q);
    else if (kind == 'T')
        q = kart__next_char(ed, q);
    *out = q;
    return true;
}

static int bracket(char c)
{
    switch (c) {
    case '(':
        return 1;
    case ')':
        return -1;
    case '[':
        return 2;
    case ']':
        return -2;
    case '{':
        return 3;
    case '}':
        return -3;
    default:
        return 0;
    }
}

/* %: the bracket matching the one under the cursor, or the first one
 * after it (GNU's rl_vi_match). */
static bool match(const kart_line *ed, size_t p, size_t *out)
{
    while (p < ed->line.len && bracket(ed->line.p[p]) == 0)
        p++;
    if (p >= ed->line.len)
        return false;
    int b = bracket(ed->line.p[p]);
    int depth = 1;
    if (b > 0) {
        for (size_t q = p + 1; q < ed->line.len; q++) {
            int x = bracket(ed->line.p[q]);
            depth += x == b ? 1 : x == -b ? -1 : 0;
            if (depth == 0) {
                *out = q;
                return true;
            }
        }
    } else {
        for (size_t q = p; q-- > 0;) {
            int x = bracket(ed->line.p[q]);
            depth += x == b ? 1 : x == -b ? -1 : 0;
            if (depth == 0) {
                *out = q;
                return true;
            }
        }
    }
    return false;
}

bool kart__vi_motion(kart_line *ed, char m, int count, const char *arg, size_t arg_len, bool op,
                     size_t *out)
{
    size_t len = ed->line.len, p = ed->point, end = op ? len + 1 : len;
    if (count < 1)
        count = 1;
    switch (m) {
    case 'h':
        while (count-- > 0 && p > 0)
            p = kart__prev_char(ed, p);
        break;
    case 'l':
    case ' ':
        while (count-- > 0 && p < len)
            p = kart__next_char(ed, p);
        break;
    case '0':
        p = 0;
        break;
    case '^':
        p = 0;
        while (p < len && kart__vi_blank(ch(ed, p)))
            p++;
        break;
    case '$':
        p = len;
        break;
    case '|':
        p = 0;
        while (--count > 0 && p < len)
            p = kart__next_char(ed, p);
        break;
    case 'w':
        p = fword(ed, p, count, end);
        break;
    case 'W':
        p = fbigword(ed, p, count, end);
        break;
    case 'b':
        p = bword(ed, p, count);
        break;
    case 'B':
        p = bbigword(ed, p, count);
        break;
    case 'e':
    case 'E':
        p = eword(ed, p, count, end, m == 'E');
        break;
    case 'f':
    case 'F':
    case 't':
    case 'T':
        if (!char_search(ed, p, count, m, arg, arg_len, &p))
            return false;
        ed->vi.cs_cmd = m;
        memcpy(ed->vi.cs_char, arg, arg_len);
        ed->vi.cs_len = arg_len;
        break;
    case ';':
    case ',': {
        char k = ed->vi.cs_cmd;
        if (!k)
            return false;
        if (m == ',') /* the other way */
            k = k == 'f' ? 'F' : k == 'F' ? 'f' : k == 't' ? 'T' : 't';
        if (!char_search(ed, p, count, k, ed->vi.cs_char, ed->vi.cs_len, &p))
            return false;
        break;
    }
    case '%':
        if (!match(ed, p, &p))
            return false;
        break;
    case '`': {
        int i = arg_len == 1 ? arg[0] - 'a' : -1;
        if (i < 0 || i >= 26 || !(ed->vi.marks_set & (1u << i)))
            return false;
        p = ed->vi.marks[i] <= len ? ed->vi.marks[i] : len;
        break;
    }
    default:
        return false;
    }
    *out = p > len ? len : p;
    return true;
}

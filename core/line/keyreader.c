/*
 * core/line/keyreader.c — input bytes to keys: the longest bound sequence,
 * whole UTF-8 characters, and unknown terminal sequences swallowed whole.
 *
 * The reader keeps the bytes it has not handed out and decides from them
 * alone, scanning from the first each time (at most KART__KEYSEQ_MAX bytes,
 * so a rescan is cheap): a sequence is handed out once no longer bound
 * sequence can start with what is pending. That makes any chunking of the
 * input give the same keys, and lets the bytes left after a key be looked
 * up in whatever map the editor switched to by running it (ESC in
 * vi-insert, then "x" in vi-command).
 *
 * Two rules go beyond GNU readline. An escape sequence that no binding
 * knows (CSI "\e[" or SS3 "\eO", then parameter and intermediate bytes,
 * then a final byte; the Linux console's "\e[[A" too) comes out as one
 * UNBOUND key, where GNU would run ESC's binding and insert the rest
 * (";5D" typed by an unbound Ctrl-Left). And bytes that a timeout has
 * resolved stay resolved: the ones left after the key it produced do not
 * wait for a second timeout.
 */
#include "line_keymap.h"

#include <kart/common.h>

#include <string.h>

#define ESC 0x1b

void kart__keyreader_init(kart__keyreader *r)
{
    memset(r, 0, sizeof(*r));
}

bool kart__keyreader_pending(const kart__keyreader *r)
{
    return r->npending > 0;
}

/* The length of the UTF-8 character that lead starts, 0 if it starts
 * none. */
static size_t utf8_need(unsigned char lead)
{
    if (lead >= 0xc2 && lead <= 0xdf)
        return 2;
    if (lead >= 0xe0 && lead <= 0xef)
        return 3;
    if (lead >= 0xf0 && lead <= 0xf4)
        return 4;
    return 0;
}

/* Whether c may be byte i (1..3) of the character that lead starts: no
 * overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_follows(unsigned char lead, size_t i, unsigned char c)
{
    if ((c & 0xc0) != 0x80)
        return false;
    if (i > 1)
        return true;
    switch (lead) {
    case 0xe0:
        return c >= 0xa0;
    case 0xed:
        return c <= 0x9f;
    case 0xf0:
        return c >= 0x90;
    case 0xf4:
        return c <= 0x8f;
    default:
        return true;
    }
}

static bool is_self_insert(const kart__binding *b)
{
    return b->kind == KART__BIND_FN && b->fn == KART__FN_SELF_INSERT;
}

/* Hands out the first len pending bytes as one key. */
static kart__key_kind emit(kart__keyreader *r, kart__key *key, kart__key_kind kind, size_t len,
                           const kart__binding *b)
{
    key->kind = kind;
    key->binding = b ? *b : (kart__binding){.kind = KART__BIND_NONE};
    memcpy(key->bytes, r->pending, len);
    key->len = len;
    memmove(r->pending, r->pending + len, r->npending - len);
    r->npending -= len;
    r->ready = r->npending;
    r->timed_out = r->timed_out > len ? r->timed_out - len : 0;
    return kind;
}

/* Nothing to hand out until more input comes (or the timeout). */
static kart__key_kind wait(kart__keyreader *r, kart__key *key)
{
    r->ready = 0;
    r->since = kart_now_ns();
    key->kind = KART__KEY_NONE;
    key->len = 0;
    return KART__KEY_NONE;
}

/* The first pending byte is a key of its own, bound to b (self-insert) or
 * to nothing: a UTF-8 lead byte takes its character's other bytes with it,
 * when they are there and valid. */
static kart__key_kind one_char(kart__keyreader *r, kart__key *key, const kart__binding *b,
                               bool force)
{
    unsigned char c = (unsigned char)r->pending[0];
    bool insert = is_self_insert(b);
    if (c < 0x80)
        return insert ? emit(r, key, KART__KEY_BOUND, 1, b)
                      : emit(r, key, KART__KEY_UNBOUND, 1, NULL);
    kart__key_kind kind = insert ? KART__KEY_INSERT : KART__KEY_UNBOUND;
    size_t need = utf8_need(c);
    for (size_t i = 1; i < need; i++) {
        if (i >= r->npending)
            return force ? emit(r, key, kind, 1, insert ? b : NULL) : wait(r, key);
        if (!utf8_follows(c, i, (unsigned char)r->pending[i]))
            return emit(r, key, kind, 1, insert ? b : NULL);
    }
    return emit(r, key, kind, need ? need : 1, insert ? b : NULL);
}

/* A key of len bytes bound to b; a single self-inserting byte goes
 * through one_char for its UTF-8 character. */
static kart__key_kind bound(kart__keyreader *r, kart__key *key, size_t len, const kart__binding *b,
                            bool force)
{
    if (len == 1 && is_self_insert(b))
        return one_char(r, key, b, force);
    return emit(r, key, KART__KEY_BOUND, len, b);
}

static kart__key_kind decide(kart__keyreader *r, const kart__keymap *map, kart__key *key);

/* pending holds an escape sequence that nothing binds (from its ESC), or
 * the rest of one longer than KART__KEYSEQ_MAX: swallow it up to its final
 * byte. */
static kart__key_kind escape_tail(kart__keyreader *r, const kart__keymap *map, kart__key *key,
                                  bool force)
{
    const unsigned char *p = (const unsigned char *)r->pending;
    size_t n = r->npending, i = 0;
    unsigned lo = 0x20; /* the lowest parameter or intermediate byte */
    if (r->esc_seq == 1) {
        i = 2;
        if (p[1] == 'O')
            lo = 0x30; /* SS3 takes parameters (xterm's "\eO5P"), no intermediates */
        else if (n > 2 && p[2] == '[')
            i = 3, lo = 0x40; /* the Linux console's F1-F5, "\e[[A": one final byte */
    }
    for (; i < n; i++) {
        if (p[i] >= lo && p[i] <= 0x3f)
            continue;
        r->esc_seq = 0;
        if (p[i] >= 0x40 && p[i] <= 0x7e)
            return emit(r, key, KART__KEY_UNBOUND, i + 1, NULL);
        /* Not a sequence byte: the sequence is broken off before it. */
        if (i > 0)
            return emit(r, key, KART__KEY_UNBOUND, i, NULL);
        return decide(r, map, key);
    }
    if (n == KART__KEYSEQ_MAX) {
        r->esc_seq = 2; /* the rest follows */
        return emit(r, key, KART__KEY_UNBOUND, n, NULL);
    }
    if (force) {
        r->esc_seq = 0;
        return emit(r, key, KART__KEY_UNBOUND, n, NULL);
    }
    return wait(r, key);
}

/* The first key of pending, or NONE if it needs more input. A timed-out
 * stretch resolves without waiting: the longest bound prefix, else the
 * first byte (or character) alone. */
static kart__key_kind decide(kart__keyreader *r, const kart__keymap *map, kart__key *key)
{
    size_t n = r->npending;
    if (n == 0) {
        r->ready = 0;
        key->kind = KART__KEY_NONE;
        key->len = 0;
        return KART__KEY_NONE;
    }
    bool force = r->timed_out >= n;
    if (r->esc_seq)
        return escape_tail(r, map, key, force);
    const unsigned char *p = (const unsigned char *)r->pending;
    kart__binding b, best_b = {.kind = KART__BIND_NONE};
    size_t best = 0, len;
    int mask = 0;
    for (len = 1; len <= n; len++) {
        mask = kart__keymap_lookup(map, r->pending, len, &b);
        if (mask & KART__SEQ_BOUND)
            best = len, best_b = b;
        if (!(mask & KART__SEQ_PREFIX))
            break;
    }
    bool escape = best <= 2 && n >= 2 && p[0] == ESC && (p[1] == '[' || p[1] == 'O');
    if (len > n) {
        /* All of pending starts longer bound sequences. */
        if (!force)
            return wait(r, key);
        /* An escape sequence cut short by the timeout (a slow link): all
         * of it, unbound, rather than its tail typed in. */
        if (escape && n >= 3) {
            r->esc_seq = 1;
            return escape_tail(r, map, key, force);
        }
        if (best)
            return bound(r, key, best, &best_b, force);
        return one_char(r, key, &(kart__binding){.kind = KART__BIND_NONE}, force);
    }
    if (mask & KART__SEQ_BOUND)
        return bound(r, key, len, &b, force);
    /* An escape sequence no binding knows: swallowed whole (to a byte that
     * cannot be in one, if that comes first), even where ESC or M-O alone
     * is bound. */
    if (escape && len >= 2) {
        r->esc_seq = 1;
        return escape_tail(r, map, key, force);
    }
    if (best)
        return bound(r, key, best, &best_b, force);
    return one_char(r, key, &(kart__binding){.kind = KART__BIND_NONE}, force);
}

kart__key_kind kart__keyreader_feed(kart__keyreader *r, const kart__keymap *map, unsigned char byte,
                                    kart__key *key)
{
    if (r->npending == KART__KEYSEQ_MAX) {
        /* Only when bytes were fed without draining next(): make room by
         * handing out the first key as a timeout would. */
        r->timed_out = r->npending;
        kart__key_kind kind = decide(r, map, key);
        r->pending[r->npending++] = (char)byte;
        r->ready = r->npending;
        return kind;
    }
    r->pending[r->npending++] = (char)byte;
    return decide(r, map, key);
}

kart__key_kind kart__keyreader_next(kart__keyreader *r, const kart__keymap *map, kart__key *key)
{
    if (r->ready == 0) {
        key->kind = KART__KEY_NONE;
        key->len = 0;
        return KART__KEY_NONE;
    }
    return decide(r, map, key);
}

kart__key_kind kart__keyreader_timeout(kart__keyreader *r, const kart__keymap *map, kart__key *key)
{
    r->timed_out = r->npending;
    return decide(r, map, key);
}

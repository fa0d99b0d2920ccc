/*
 * fuzz/fuzz_keyreader.c — libFuzzer target for the line editor's key
 * reader: random bytes through GNU's default maps, switching maps as the
 * editor would (ESC in vi-insert leads to vi-command, i back), with
 * keyseq-timeouts passing at points the first byte's bits choose. Every
 * byte must come out exactly once, in order, in some key; nothing may stay
 * pending past KART__KEYSEQ_MAX; an INSERT is one byte from 0x80 or a
 * whole valid UTF-8 character; a BOUND key has a binding.
 */
#include "line_keymap.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kart__keymap *maps[KART__MAP_COUNT];

static const uint8_t *in;
static size_t in_len, out_at;

static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t need = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
                  : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                  : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                 : 0;
    if (need != n)
        return false;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return false;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return false;
    return true;
}

/* Checks one key against the input and returns the map to go on in. */
static int check(const kart__keyreader *r, const kart__key *k, int map)
{
    if (r->npending > KART__KEYSEQ_MAX || r->ready > r->npending)
        abort();
    if (k->kind == KART__KEY_NONE)
        return map;
    if (k->len < 1 || k->len > KART__KEYSEQ_MAX || out_at + k->len > in_len ||
        memcmp(k->bytes, in + out_at, k->len) != 0)
        abort();
    out_at += k->len;
    const unsigned char *b = (const unsigned char *)k->bytes;
    switch (k->kind) {
    case KART__KEY_INSERT:
        if (!(k->len == 1 && b[0] >= 0x80) && !valid_utf8(b, k->len))
            abort();
        break;
    case KART__KEY_BOUND:
        if (k->binding.kind == KART__BIND_NONE)
            abort();
        if (k->binding.kind == KART__BIND_FN) {
            if (k->binding.fn == KART__FN_VI_MOVEMENT_MODE)
                return KART__MAP_VI_COMMAND;
            if (k->binding.fn == KART__FN_VI_INSERTION_MODE ||
                k->binding.fn == KART__FN_VI_EDITING_MODE)
                return KART__MAP_VI_INSERT;
            if (k->binding.fn == KART__FN_EMACS_EDITING_MODE)
                return KART__MAP_EMACS;
        }
        break;
    case KART__KEY_UNBOUND:
        break;
    default:
        abort();
    }
    return map;
}

static int drain(kart__keyreader *r, const kart__key *first, int map)
{
    kart__key k;
    map = check(r, first, map);
    while (kart__keyreader_next(r, maps[map], &k) != KART__KEY_NONE)
        map = check(r, &k, map);
    return map;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!maps[0])
        for (int i = 0; i < KART__MAP_COUNT; i++)
            if (kart__keymap_create_default(&maps[i], (kart__map_id)i))
                abort();
    if (size < 1)
        return 0;
    /* data[0]: the first map (bits 0-1) and how often the timeout passes
     * (bits 2-7: after every byte whose index it divides, 0 never). */
    int map = (data[0] & 3) % KART__MAP_COUNT;
    unsigned every = data[0] >> 2;
    in = data + 1;
    in_len = size - 1;
    out_at = 0;
    kart__keyreader r;
    kart__keyreader_init(&r);
    for (size_t i = 0; i < in_len; i++) {
        kart__key k;
        if (kart__keyreader_feed(&r, maps[map], in[i], &k) != k.kind)
            abort();
        map = drain(&r, &k, map);
        if (every && i % every == 0) {
            kart__keyreader_timeout(&r, maps[map], &k);
            map = drain(&r, &k, map);
        }
    }
    /* The end of input: timeouts until nothing is left. */
    for (int n = 0; kart__keyreader_pending(&r); n++) {
        if (n > KART__KEYSEQ_MAX)
            abort();
        kart__key k;
        kart__keyreader_timeout(&r, maps[map], &k);
        map = drain(&r, &k, map);
    }
    if (out_at != in_len)
        abort();
    return 0;
}

/*
 * core/line/line_keymap.h — keymaps and the key reader of the line editor.
 *
 * As in GNU readline, a key is not decoded into a symbolic name: a keymap
 * maps byte sequences ("\C-a" is 0x01, the xterm Up arrow is "\e[A", M-f is
 * "\ef" with convert-meta's ESC prefix) to a binding, and the default maps
 * bind the common sequences of xterm, VT100, rxvt, the Linux console and
 * tmux (arrows, Home/End/Delete/Insert/PgUp/PgDn, with and without
 * Shift/Alt/Ctrl modifiers) and the bracketed-paste start "\e[200~".
 *
 * The key reader takes input bytes one at a time and says when they make a
 * bound sequence, a character to insert (a whole UTF-8 character, or an
 * invalid byte on its own), or an unbound sequence. A sequence that is
 * both bound and the prefix of a longer one (ESC alone vs "\e[A") waits for
 * the next byte or for keyseq-timeout, as GNU readline does.
 *
 * Thread safety: a keymap and a reader are used by one thread at a time;
 * the editor that owns them serializes.
 */
#ifndef KART_LINE_KEYMAP_H
#define KART_LINE_KEYMAP_H

#include "line_fn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest key sequence a keymap accepts (bytes); a bind of a longer one
 * fails with -ENAMETOOLONG. */
#define KART__KEYSEQ_MAX 32

typedef struct kart__keymap kart__keymap;

/* What a sequence is bound to. macro points into the keymap and lives
 * until that binding changes or the keymap is freed. */
typedef struct kart__binding {
    enum { KART__BIND_NONE, KART__BIND_FN, KART__BIND_MACRO } kind;
    enum kart__line_fn fn; /* KART__BIND_FN */
    const char *macro;     /* KART__BIND_MACRO: the bytes to feed back */
    size_t macro_len;
} kart__binding;

/* Which map: the editor has three, GNU readline's names for $if/`set
 * keymap`: emacs (also "emacs-standard"), vi-insert, vi-command (also
 * "vi-move", "vi"). "emacs-meta" and "emacs-ctlx" name the ESC- and
 * C-x-prefixed parts of the emacs map. */
typedef enum {
    KART__MAP_EMACS,
    KART__MAP_VI_INSERT,
    KART__MAP_VI_COMMAND,
    KART__MAP_COUNT
} kart__map_id;

/* An empty keymap. -ENOMEM. */
int kart__keymap_create(kart__keymap **out);
/* A keymap holding GNU readline's default bindings for that map, and the
 * terminal sequences above. It reads the process's one copy of those
 * defaults (built on first use, never freed) until it is first changed,
 * when it gets its own. -ENOMEM, -EINVAL (bad id). */
int kart__keymap_create_default(kart__keymap **out, kart__map_id id);
/* A keymap that reads `shared` (which must outlive it and never change)
 * until its first change. -ENOMEM. */
int kart__keymap_share(kart__keymap **out, const kart__keymap *shared);
/* A deep copy (editors share nothing). -ENOMEM. */
int kart__keymap_copy(kart__keymap **out, const kart__keymap *src);
/* NULL is accepted. */
void kart__keymap_free(kart__keymap *map);

/* Binds seq (len bytes, 1..KART__KEYSEQ_MAX) to a function or a macro,
 * replacing what it was bound to. A sequence may be both bound and the
 * prefix of longer bound ones. -EINVAL (len 0, fn out of range),
 * -ENAMETOOLONG, -ENOMEM; on error the map is unchanged. */
int kart__keymap_bind_fn(kart__keymap *map, const char *seq, size_t len, enum kart__line_fn fn);
int kart__keymap_bind_macro(kart__keymap *map, const char *seq, size_t len, const char *macro,
                            size_t macro_len);
/* Removes the binding of seq (longer sequences under it stay). 0 even if
 * it was not bound; -EINVAL for len 0. */
int kart__keymap_unbind(kart__keymap *map, const char *seq, size_t len);

/* Looks seq up: *out receives its binding (KART__BIND_NONE if none).
 * Returns a mask: KART__SEQ_BOUND if seq itself is bound, KART__SEQ_PREFIX
 * if some longer bound sequence starts with it; 0 if neither. */
#define KART__SEQ_BOUND 1
#define KART__SEQ_PREFIX 2
int kart__keymap_lookup(const kart__keymap *map, const char *seq, size_t len, kart__binding *out);

/* Calls fn for each bound sequence, in byte order (for dump-functions,
 * dump-macros and tests); stops and returns fn's value when it is not 0. */
int kart__keymap_each(const kart__keymap *map,
                      int (*fn)(void *arg, const char *seq, size_t len, const kart__binding *b),
                      void *arg);

/* ---- the key reader ---- */

typedef enum {
    KART__KEY_NONE,    /* nothing yet: more bytes needed (or the timeout) */
    KART__KEY_BOUND,   /* bytes[0..len) is bound: run binding */
    KART__KEY_INSERT,  /* bytes[0..len) is one character to insert: a whole
                        * UTF-8 character, or one byte that is not valid
                        * UTF-8 (inserted as is, shown as \ooo) */
    KART__KEY_UNBOUND, /* bytes[0..len) matches nothing: ring the bell */
} kart__key_kind;

typedef struct kart__key {
    kart__key_kind kind;
    kart__binding binding; /* KART__KEY_BOUND */
    char bytes[KART__KEYSEQ_MAX];
    size_t len;
} kart__key;

typedef struct kart__keyreader {
    char pending[KART__KEYSEQ_MAX]; /* bytes read, not yet resolved */
    size_t npending;
    size_t ready;  /* bytes of pending already resolved, still to hand out */
    int64_t since; /* kart_now_ns() when pending became ambiguous: set each
                    * time a call leaves bytes waiting, so the timeout counts
                    * from the last byte, as GNU's keyseq-timeout does */
    /* The reader's own state. */
    size_t timed_out;      /* the first timed_out bytes of pending resolve
                            * without waiting (a timeout passed over them) */
    unsigned char esc_seq; /* 1: pending is an escape sequence no binding
                            * knows, being swallowed to its final byte; 2:
                            * the rest of one longer than KART__KEYSEQ_MAX */
} kart__keyreader;

void kart__keyreader_init(kart__keyreader *r);

/* Feeds one byte looked up in map; *key receives at most one result. When
 * a byte ends an ambiguous or failed prefix, the bytes it leaves
 * unresolved are handed out by the following calls of
 * kart__keyreader_next() before more input is fed: always drain with
 * next() until it returns KART__KEY_NONE. A self-insert binding of a byte
 * >= 0x80 (or of a UTF-8 lead byte) is reported as KART__KEY_INSERT once
 * the character is whole. Returns key->kind. */
kart__key_kind kart__keyreader_feed(kart__keyreader *r, const kart__keymap *map, unsigned char byte,
                                    kart__key *key);
/* The next result that earlier bytes already decide, without new input. */
kart__key_kind kart__keyreader_next(kart__keyreader *r, const kart__keymap *map, kart__key *key);
/* true while bytes wait for more input or for the timeout. */
bool kart__keyreader_pending(const kart__keyreader *r);
/* keyseq-timeout passed with a sequence pending: resolves it as the
 * longest bound prefix (ESC alone as ESC), the rest to follow through
 * next() without waiting again. An escape sequence cut short ("\e[1;",
 * a slow link) comes out whole as KART__KEY_UNBOUND instead, and so does
 * any escape sequence no binding knows, at once, without the timeout
 * (docs/inputrc.md, "From bytes to keys"). Returns key->kind. */
kart__key_kind kart__keyreader_timeout(kart__keyreader *r, const kart__keymap *map, kart__key *key);

/* ---- key sequence notation ---- */

/* Translates inputrc key-sequence text, the quoted form's inside
 * ("\C-x\C-r", "\e[5~", "\M-a", "\\", "\"", octal \ooo, hex \xHH, \a \b
 * \d \f \n \r \t \v), into bytes. -EINVAL (bad escape, empty),
 * -ENAMETOOLONG (longer than cap). */
int kart__keyseq_parse(const char *text, size_t len, char *out, size_t cap, size_t *out_len);
/* Translates a key name of the unquoted form ("Control-u", "C-u",
 * "Meta-Rubout", "M-DEL", "ESC", "Escape", "LFD", "NEWLINE", "RET",
 * "RETURN", "RUBOUT", "DEL", "SPACE", "SPC", "TAB", a single character)
 * into bytes. Same errors. */
int kart__keyname_parse(const char *text, size_t len, char *out, size_t cap, size_t *out_len);
/* Writes seq in the quoted notation ("\C-a", "\e[A") for dumps; returns
 * the length it needs, writing at most cap bytes with a NUL. */
size_t kart__keyseq_format(const char *seq, size_t len, char *out, size_t cap);

#endif

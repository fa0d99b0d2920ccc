/*
 * core/line/history_private.h — the history's state, shared by its files:
 * history.c (the list), history_file.c (files) and history_expand.c.
 *
 * The text of entries lives in reference-counted blocks. An entry added
 * by kart_history_add has a block of its own; a file is read into large
 * blocks, split in place, and each entry points into its block, which is
 * freed when its last entry goes. So loading costs one allocation per
 * block, not per line, and a limited history that drops its oldest
 * entries while a file streams in frees the blocks behind them: memory
 * stays bounded by what is kept.
 *
 * The entries are an array used as a queue: the live ones are
 * e[off .. off + len), so that dropping the oldest is off++ and the array
 * is compacted (one memmove) only when half of it is dead.
 */
#ifndef KART_HISTORY_PRIVATE_H
#define KART_HISTORY_PRIVATE_H

#include <kart/history.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kart__hist_block {
    size_t refs; /* entries pointing into data, plus one while being filled */
    size_t size; /* bytes of data */
    char data[];
} kart__hist_block;

/* 24 bytes: the length (up to KART_HISTORY_MAX_LEN, 21 bits) and the time
 * share a word, for the memory a long history touches. */
typedef struct kart__hist_entry {
    char *text; /* NUL-terminated */
    kart__hist_block *block;
    uint64_t meta; /* time << 21 | length */
} kart__hist_entry;

#define KART__HIST_LEN_BITS 21

static inline size_t kart__hist_len(const kart__hist_entry *e)
{
    return (size_t)(e->meta & ((UINT64_C(1) << KART__HIST_LEN_BITS) - 1));
}

static inline int64_t kart__hist_time(const kart__hist_entry *e)
{
    return (int64_t)(e->meta >> KART__HIST_LEN_BITS);
}

/* len <= KART_HISTORY_MAX_LEN; time in [0, KART_HISTORY_TIME_MAX]. */
static inline uint64_t kart__hist_meta(size_t len, int64_t time)
{
    return (uint64_t)time << KART__HIST_LEN_BITS | len;
}

struct kart_history {
    kart__hist_entry *e;
    size_t off, len, cap;
    size_t max;  /* KART_HISTORY_UNLIMITED */
    size_t base; /* the number of e[off] */
    kart_history_options opts;
    /* Expansion state, GNU's: the last :s pattern and replacement, the
     * last !?string? and the word it matched (for :%). */
    char *subst_old, *subst_new, *search, *search_word;
    size_t subst_old_len, subst_new_len, search_len, search_word_len;
};

/* malloc and free, or for 2 MiB and more a mapping of huge pages; free
 * needs the size given to alloc. */
void *kart__hist_big_alloc(size_t bytes);
void kart__hist_big_free(void *p, size_t bytes);

/* A block of size bytes (plus a NUL's room), refs 1. NULL on ENOMEM. */
kart__hist_block *kart__hist_block_new(size_t size);

/* An empty history with h's limit and no options (a reader's staging
 * list); kart__hist_fini frees its entries and state, not h. */
void kart__hist_init(kart_history *h, size_t max);
void kart__hist_fini(kart_history *h);

/* Appends an entry taking one reference of block (the caller has added
 * it); when the limit drops an entry (this one included, at limit 0) its
 * reference is released and the base moves. Returns 1 if kept, 0 if
 * dropped at once, -ENOMEM (nothing changed; the reference is still the
 * caller's). */
int kart__hist_push(kart_history *h, char *text, size_t len, int64_t time, kart__hist_block *block);
/* Makes room for n entries in all (a hint: pushes grow it anyway).
 * -ENOMEM. */
int kart__hist_reserve(kart_history *h, size_t n);
/* Moves every entry of from after h's (from is left empty), as if each
 * had been pushed; h->base advances over those the limit drops. -ENOMEM
 * (nothing moved). */
int kart__hist_splice(kart_history *h, kart_history *from);

static inline kart__hist_entry *kart__hist_at(const kart_history *h, size_t i)
{
    return &h->e[h->off + i];
}

/* Releases one reference; the last frees the block. */
static inline void kart__hist_block_put(kart__hist_block *b)
{
    if (--b->refs == 0)
        kart__hist_big_free(b, sizeof(*b) + b->size + 1);
}

#ifdef KART_FAULTS
/* The test library's choice of kart_history_search's backward scan: 0
 * the best the CPU has (AVX2, else SSE2), 1 SSE2 (x86-64), 2 the portable
 * one, so that a machine with AVX2 tests all three. Set it between calls,
 * from one thread. */
extern int kart__hist_search_scan;
#endif

/* Whether a line (CRs already stripped) is a timestamp line, "#" and one
 * or more digits; *t receives its value, saturated at
 * KART_HISTORY_TIME_MAX. */
bool kart__hist_is_timestamp(const char *s, size_t len, int64_t *t);

#endif

/*
 * core/line/history.c — the history list (kart/history.h): entries,
 * numbering, the length limit, the HISTCONTROL options, searching.
 *
 * An entry's text sits in a reference-counted block (history_private.h):
 * its own when added here, a shared one when read from a file. Every
 * change that could fail allocates first and changes the list after, so
 * that a failed call leaves the history as it was.
 */
#include "fault.h"
#include "history_private.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

/* Buffers of 2 MiB and more (the block of a whole file, the entries of a
 * long history) are mapped 2 MiB-aligned and marked for transparent huge
 * pages: a 5 MB history then costs three page faults instead of twelve
 * hundred, which on virtual machines is most of the time a read takes. */
#define BIG_MIN ((size_t)2 << 20)

void *kart__hist_big_alloc(size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (bytes >= BIG_MIN) {
        size_t len = (bytes + BIG_MIN - 1) & ~(BIG_MIN - 1);
        if (len < bytes || len + BIG_MIN < len)
            return NULL;
        char *p = kart__sys_mmap(NULL, len + BIG_MIN, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        char *a = (char *)(((uintptr_t)p + BIG_MIN - 1) & ~(uintptr_t)(BIG_MIN - 1));
        if (a > p)
            kart__sys_munmap(p, (size_t)(a - p));
        if (p + BIG_MIN > a)
            kart__sys_munmap(a + len, (size_t)(p + BIG_MIN - a));
        madvise(a, len, MADV_HUGEPAGE);
        return a;
    }
#endif
    return malloc(bytes);
}

void kart__hist_big_free(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (p && bytes >= BIG_MIN) {
        kart__sys_munmap(p, (bytes + BIG_MIN - 1) & ~(BIG_MIN - 1));
        return;
    }
#endif
    free(p);
}

kart__hist_block *kart__hist_block_new(size_t size)
{
    kart__hist_block *b = kart__hist_big_alloc(sizeof(*b) + size + 1);
    if (!b)
        return NULL;
    b->refs = 1;
    b->size = size;
    return b;
}

static size_t ebytes(size_t cap)
{
    return cap * sizeof(kart__hist_entry);
}

/* Moves the live entries into an array of cap (>= len) slots, from 0. */
static int resize(kart_history *h, size_t cap)
{
    if (cap > SIZE_MAX / sizeof(kart__hist_entry))
        return -ENOMEM;
    kart__hist_entry *e;
    if (ebytes(cap) < BIG_MIN && ebytes(h->cap) < BIG_MIN) {
        if (h->off) {
            memmove(h->e, h->e + h->off, h->len * sizeof(*e));
            h->off = 0;
        }
        if (!(e = realloc(h->e, ebytes(cap))))
            return -ENOMEM;
    } else {
        if (!(e = kart__hist_big_alloc(ebytes(cap))))
            return -ENOMEM;
        if (h->len)
            memcpy(e, h->e + h->off, h->len * sizeof(*e));
        kart__hist_big_free(h->e, ebytes(h->cap));
        h->off = 0;
    }
    h->e = e;
    h->cap = cap;
    return 0;
}

void kart__hist_init(kart_history *h, size_t max)
{
    memset(h, 0, sizeof(*h));
    h->max = max;
    h->base = 1;
}

static void release_all(kart_history *h)
{
    for (size_t i = 0; i < h->len; i++)
        kart__hist_block_put(kart__hist_at(h, i)->block);
    h->off = h->len = 0;
}

void kart__hist_fini(kart_history *h)
{
    release_all(h);
    kart__hist_big_free(h->e, ebytes(h->cap));
    free(h->subst_old);
    free(h->subst_new);
    free(h->search);
    free(h->search_word);
    h->e = NULL;
    h->cap = 0;
}

/* Drops the oldest entry (the limit's doing: the numbers move on). */
static void drop_oldest(kart_history *h)
{
    kart__hist_block_put(h->e[h->off].block);
    h->off++;
    h->len--;
    h->base++;
    if (h->len == 0)
        h->off = 0;
}

/* Makes e[off + len] usable. Grows the array while less than half of it
 * is dead; otherwise, or when growing fails, moves the live entries down
 * (amortized O(1) per entry either way). -ENOMEM only when nothing is
 * dead and the array cannot grow; nothing changes then. */
static int make_room(kart_history *h)
{
    if (h->off + h->len < h->cap)
        return 0;
    if (h->off == 0 || h->off < h->cap / 2) {
        if (resize(h, h->cap ? h->cap * 2 : 16) == 0)
            return 0;
        if (h->off == 0)
            return -ENOMEM;
    }
    memmove(h->e, h->e + h->off, h->len * sizeof(*h->e));
    h->off = 0;
    return 0;
}

int kart__hist_reserve(kart_history *h, size_t n)
{
    return n <= h->cap ? 0 : resize(h, n);
}

int kart__hist_push(kart_history *h, char *text, size_t len, int64_t time, kart__hist_block *block)
{
    if (h->max == 0) {
        kart__hist_block_put(block);
        h->base++;
        return 0;
    }
    if (h->len >= h->max)
        drop_oldest(h); /* make_room cannot fail after this: off > 0 */
    if (make_room(h) != 0)
        return -ENOMEM;
    h->e[h->off + h->len++] = (kart__hist_entry){text, block, kart__hist_meta(len, time)};
    return 1;
}

int kart__hist_splice(kart_history *h, kart_history *from)
{
    size_t read = from->base - 1 + from->len; /* every entry from saw */
    size_t total = h->len + from->len;
    size_t keep = total < h->max ? total : h->max;
    size_t dropped = total - keep;
    size_t dh = dropped < h->len ? dropped : h->len, df = dropped - dh;
    if (from->len == 0) {
        h->base += read; /* all of them dropped, if any */
        return 0;
    }
    if (h->len - dh == 0) {
        /* None of h's entries stays: take from's array as it is. */
        for (size_t i = 0; i < df; i++)
            kart__hist_block_put(kart__hist_at(from, i)->block);
        release_all(h);
        kart__hist_big_free(h->e, ebytes(h->cap));
        h->e = from->e;
        h->cap = from->cap;
        h->off = from->off + df;
        h->len = from->len - df;
    } else {
        kart__hist_entry *e = kart__hist_big_alloc(ebytes(keep));
        if (!e)
            return -ENOMEM;
        for (size_t i = 0; i < dh; i++)
            kart__hist_block_put(kart__hist_at(h, i)->block);
        memcpy(e, kart__hist_at(h, dh), (h->len - dh) * sizeof(*e));
        memcpy(e + h->len - dh, kart__hist_at(from, 0), from->len * sizeof(*e));
        kart__hist_big_free(h->e, ebytes(h->cap));
        kart__hist_big_free(from->e, ebytes(from->cap));
        h->e = e;
        h->cap = keep;
        h->off = 0;
        h->len = keep;
    }
    h->base += total - from->len + read - keep;
    from->e = NULL;
    from->off = from->len = from->cap = 0;
    return 0;
}

bool kart__hist_is_timestamp(const char *s, size_t len, int64_t *t)
{
    if (len < 2 || s[0] != '#')
        return false;
    int64_t v = 0;
    for (size_t i = 1; i < len; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return false;
        v = v > (KART_HISTORY_TIME_MAX - 9) / 10 ? KART_HISTORY_TIME_MAX : v * 10 + d;
    }
    *t = v;
    return true;
}

KART_API int kart_history_create(kart_history **out, const kart_history_options *opts)
{
    if (!out)
        return -EINVAL;
    kart_history *h = malloc(sizeof(*h));
    if (!h)
        return -ENOMEM;
    kart__hist_init(h, KART_HISTORY_UNLIMITED);
    if (opts)
        h->opts = *opts;
    *out = h;
    return 0;
}

KART_API void kart_history_free(kart_history *h)
{
    if (!h)
        return;
    kart__hist_fini(h);
    free(h);
}

KART_API void kart_history_set_options(kart_history *h, const kart_history_options *opts)
{
    if (opts)
        h->opts = *opts;
    else
        memset(&h->opts, 0, sizeof(h->opts));
}

KART_API void kart_history_get_options(const kart_history *h, kart_history_options *out)
{
    *out = h->opts;
}

/* add's and replace's rules for a line. */
static int check_line(const char *line, size_t len)
{
    if (!line && len)
        return -EINVAL;
    if (len > KART_HISTORY_MAX_LEN)
        return -EMSGSIZE;
    if (len && (memchr(line, '\n', len) || line[len - 1] == '\r'))
        return -EINVAL;
    return 0;
}

static kart__hist_block *copy_line(const char *line, size_t len)
{
    kart__hist_block *b = kart__hist_block_new(len);
    if (b) {
        if (len)
            memcpy(b->data, line, len);
        b->data[len] = 0;
    }
    return b;
}

static bool same(const kart__hist_entry *e, const char *line, size_t len)
{
    return kart__hist_len(e) == len && (len == 0 || memcmp(e->text, line, len) == 0);
}

static int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec < 0 ? 0 : (int64_t)ts.tv_sec; /* far below the maximum */
}

KART_API int kart_history_add(kart_history *h, const char *line, size_t len)
{
    int err = check_line(line, len);
    if (err)
        return err;
    if (h->opts.ignore_space && len && line[0] == ' ')
        return 0;
    if (h->opts.ignore_dups && h->len && same(kart__hist_at(h, h->len - 1), line, len))
        return 0;
    if (h->max == 0) {
        h->base++;
        return 0;
    }
    kart__hist_block *b = copy_line(line, len);
    if (!b)
        return -ENOMEM;
    /* Room first: erasing the duplicates below is then the last step that
     * changes anything before the push, which cannot fail any more. */
    if (make_room(h) != 0) {
        kart__hist_block_put(b);
        return -ENOMEM;
    }
    if (h->opts.erase_dups) {
        size_t w = 0;
        for (size_t i = 0; i < h->len; i++) {
            kart__hist_entry *e = kart__hist_at(h, i);
            if (same(e, line, len))
                kart__hist_block_put(e->block);
            else
                h->e[h->off + w++] = *e;
        }
        h->len = w;
    }
    return kart__hist_push(h, b->data, len, now_s(), b);
}

KART_API int kart_history_get(const kart_history *h, size_t number, char *buf, size_t cap,
                              size_t *len)
{
    if (number < h->base || number - h->base >= h->len)
        return -ENOENT;
    const kart__hist_entry *e = kart__hist_at(h, number - h->base);
    if (cap <= kart__hist_len(e) || !buf) {
        if (len)
            *len = kart__hist_len(e);
        return -ENOBUFS;
    }
    memcpy(buf, e->text, kart__hist_len(e));
    buf[kart__hist_len(e)] = 0;
    if (len)
        *len = kart__hist_len(e);
    return 0;
}

KART_API size_t kart_history_base(const kart_history *h)
{
    return h->base;
}

KART_API size_t kart_history_length(const kart_history *h)
{
    return h->len;
}

KART_API const char *kart_history_text(const kart_history *h, size_t index, size_t *len)
{
    if (index >= h->len)
        return NULL;
    const kart__hist_entry *e = kart__hist_at(h, index);
    if (len)
        *len = kart__hist_len(e);
    return e->text;
}

KART_API int64_t kart_history_time(const kart_history *h, size_t index)
{
    if (index >= h->len)
        return -ENOENT;
    return kart__hist_time(kart__hist_at(h, index));
}

KART_API int kart_history_set_time(kart_history *h, size_t index, int64_t seconds)
{
    if (index >= h->len)
        return -ENOENT;
    if (seconds < 0 || seconds > KART_HISTORY_TIME_MAX)
        return -EINVAL;
    kart__hist_entry *e = kart__hist_at(h, index);
    e->meta = kart__hist_meta(kart__hist_len(e), seconds);
    return 0;
}

KART_API int kart_history_remove(kart_history *h, size_t index)
{
    if (index >= h->len)
        return -ENOENT;
    kart__hist_entry *e = kart__hist_at(h, 0);
    kart__hist_block_put(e[index].block);
    /* Close the gap from the shorter side. */
    if (index < h->len / 2) {
        memmove(e + 1, e, index * sizeof(*e));
        h->off++;
    } else {
        memmove(e + index, e + index + 1, (h->len - index - 1) * sizeof(*e));
    }
    if (--h->len == 0)
        h->off = 0;
    return 0;
}

KART_API int kart_history_replace(kart_history *h, size_t index, const char *line, size_t len)
{
    if (index >= h->len)
        return -ENOENT;
    int err = check_line(line, len);
    if (err)
        return err;
    kart__hist_block *b = copy_line(line, len);
    if (!b)
        return -ENOMEM;
    kart__hist_entry *e = kart__hist_at(h, index);
    kart__hist_block_put(e->block);
    e->text = b->data;
    e->meta = kart__hist_meta(len, kart__hist_time(e));
    e->block = b;
    return 0;
}

KART_API void kart_history_clear(kart_history *h)
{
    release_all(h);
    h->base = 1;
}

KART_API void kart_history_stifle(kart_history *h, size_t max)
{
    h->max = max;
    while (h->len > max)
        drop_oldest(h);
}

KART_API size_t kart_history_max(const kart_history *h)
{
    return h->max;
}

/* Searching. A prefix is a compare per entry. A substring is looked for
 * in bulk where it can be: entries read from a file lie in their block one
 * after the other, so a run of them is searched in one pass over the bytes
 * they span (search_back's scan from the end when searching back,
 * memmem(3) forward: several GB/s, where a call per entry would cost more
 * than the search), and a match is kept only when it lies within one
 * entry (not across the NUL between two, nor in a timestamp line).
 * Entries of their own (added, replaced) are runs of one. */

/* Forward, the runs are cut into windows that start small and double,
 * after the first entries are looked at one by one, so that a pattern
 * found in the oldest entries looked at costs little. */
#define WINDOW_FIRST ((size_t)1 << 8)
#define ONE_BY_ONE 2
#define WINDOW_MAX ((size_t)1 << 18)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2_SCAN 1
static bool have_avx2(void)
{
    static int have = -1; /* a benign race: every thread computes the same */
    if (have < 0)
        have = __builtin_cpu_supports("avx2") ? 1 : 0;
    return have;
}
#endif

/* The first place in s[0, n) where pat (m > 0 bytes) is, or NULL. */
static const char *find_first(const char *s, size_t n, const char *pat, size_t m)
{
    if (m > n)
        return NULL;
    for (const char *q = s, *end = s + n - m + 1; q < end; q++) {
        if (!(q = memchr(q, pat[0], (size_t)(end - q))))
            return NULL;
        if (memcmp(q + 1, pat + 1, m - 1) == 0)
            return q;
    }
    return NULL;
}

/* Whether e[k + 1] follows e[k] in the same block. */
static bool follows(const kart__hist_entry *e, size_t k)
{
    return e[k + 1].block == e[k].block && e[k + 1].text > e[k].text;
}

/* Searching back is one pass over the bytes from the end of entry i down,
 * through the run of entries that lie one after the other in their block,
 * the run discovered as the scan goes (no window to size, nothing looked
 * at twice): thirty-two places at a time with AVX2 (sixteen with SSE2,
 * sixty-four byte compares without),
 * each candidate (pat's first and last bytes in place) compared whole,
 * and kept when it lies within one entry. A call that finds its match
 * eight entries back (C-r repeated, kart-bench line_history) then costs a
 * few hundred bytes of scan and nothing else. */

/* Whether the candidate q (pat's first and last bytes match there) is a
 * match that lies within one entry; *kq moves down to q's entry (the
 * candidates come newest first), which is in e[lo .. *kq], entries that
 * follow each other: a step at a time when it is near, else by halves (a
 * rare pattern's match may lie thousands of entries below the last, and
 * the run's extension has walked them once already). */
static inline bool back_hit(const kart__hist_entry *e, size_t lo, size_t *kq, const char *q,
                            const char *pat, size_t m)
{
    /* The bytes between the first and the last: a short pattern's (the
     * usual query) compared here, cheaper than a call. */
    if (m <= 18) {
        for (size_t j = 1; j + 1 < m; j++)
            if (q[j] != pat[j])
                return false;
    } else if (memcmp(q + 1, pat + 1, m - 2) != 0) {
        return false;
    }
    size_t hi = *kq;
    for (int n = 0; n < 16 && e[hi].text > q; n++)
        hi--;
    while (e[hi].text > q) { /* the last entry in [lo, hi] that starts at or before q */
        size_t mid = lo + (hi - lo + 1) / 2;
        if (e[mid].text > q)
            hi = mid - 1;
        else
            lo = mid;
        if (lo == hi)
            break;
    }
    *kq = hi;
    return q + m <= e[*kq].text + kart__hist_len(&e[*kq]);
}

/* Moves *k down (and *lo, e[*k].text, with it) until the run from e[*k]
 * up holds want bytes below t, or it starts at e[*k]. */
static inline void run_extend(const kart__hist_entry *e, size_t *k, const char **lo, const char *t,
                              size_t want)
{
    size_t kk = *k;
    const char *l = *lo;
    while ((size_t)(t - l) < want && kk > 0 && follows(e, kk - 1))
        l = e[--kk].text;
    *k = kk;
    *lo = l;
}

/* The body of search_back for one width: the run that ends with entry i
 * (e[k] its lowest entry known so far, lo its text; e[kq] the entry of
 * the latest candidate) is scanned from its end t down, W places at a
 * time, while the run holds W of them; it is extended ahead of the scan by
 * a stretch that doubles (a few entries at first, where most repeated
 * searches end, then up to 64 KiB), so that the walk over the entries
 * stays out of the scan's loop. The fewer than W places left at the run's
 * start are looked at one by one; then the next run, below. MASK(a, b,
 * first, last) has a bit for each place p = a + bit where pat's first byte
 * is and its last at b + bit. One function per width, so that the AVX2
 * one runs whole with AVX2 (no call per run); the typedef after it takes
 * the semicolon of the macro's use. */
#define SEARCH_BACK(ATTR, NAME, W, VEC, SET1, MASK)                                                \
    ATTR static int NAME(const kart__hist_entry *e, size_t i, const char *pat, size_t m,           \
                         size_t *found, size_t *at)                                                \
    {                                                                                              \
        const VEC first = SET1(pat[0]), last = SET1(pat[m - 1]);                                   \
        const size_t need = (W)-1 + m; /* the bytes W places span */                               \
        for (;;) {                                                                                 \
            size_t k = i, kq = i, ahead = 2 * (W);                                                 \
            const char *lo = e[i].text, *t = lo + kart__hist_len(&e[i]);                           \
            for (;;) {                                                                             \
                if ((size_t)(t - lo) < need) {                                                     \
                    run_extend(e, &k, &lo, t, need + ahead);                                       \
                    ahead = ahead < ((size_t)1 << 16) ? ahead * 2 : ahead;                         \
                    if ((size_t)(t - lo) < need)                                                   \
                        break;                                                                     \
                }                                                                                  \
                const char *p = t - need;                                                          \
                uint64_t mask = MASK(p, p + m - 1, first, last);                                   \
                while (mask) {                                                                     \
                    int bit = 63 - __builtin_clzll(mask);                                          \
                    if (back_hit(e, k, &kq, p + bit, pat, m))                                      \
                        return back_found(e, kq, p + bit, found, at);                              \
                    mask &= ~((uint64_t)1 << bit);                                                 \
                }                                                                                  \
                t -= (W);                                                                          \
            }                                                                                      \
            if (t - lo >= (ptrdiff_t)m) {                                                          \
                for (const char *q = t - m;; q--) {                                                \
                    if (q[0] == pat[0] && q[m - 1] == pat[m - 1] &&                                \
                        back_hit(e, k, &kq, q, pat, m))                                            \
                        return back_found(e, kq, q, found, at);                                    \
                    if (q == lo)                                                                   \
                        break;                                                                     \
                }                                                                                  \
            }                                                                                      \
            if (k == 0)                                                                            \
                return -ENOENT;                                                                    \
            i = k - 1;                                                                             \
        }                                                                                          \
    }                                                                                              \
    typedef int NAME##_defined

static inline int back_found(const kart__hist_entry *e, size_t k, const char *q, size_t *found,
                             size_t *at)
{
    *found = k;
    *at = (size_t)(q - e[k].text);
    return 0;
}

#ifdef HAVE_AVX2_SCAN
__attribute__((target("avx2"))) static inline uint64_t mask_avx2(const char *a, const char *b,
                                                                 __m256i first, __m256i last)
{
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)a);
    __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)b);
    return (uint32_t)_mm256_movemask_epi8(
        _mm256_and_si256(_mm256_cmpeq_epi8(x, first), _mm256_cmpeq_epi8(y, last)));
}

SEARCH_BACK(__attribute__((target("avx2"))), search_back_avx2, 32, __m256i, _mm256_set1_epi8,
            mask_avx2);
#endif

#ifdef __SSE2__
static inline uint64_t mask_sse2(const char *a, const char *b, __m128i first, __m128i last)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)a);
    __m128i y = _mm_loadu_si128((const __m128i *)(const void *)b);
    return (uint32_t)_mm_movemask_epi8(
        _mm_and_si128(_mm_cmpeq_epi8(x, first), _mm_cmpeq_epi8(y, last)));
}

SEARCH_BACK(, search_back_sse2, 16, __m128i, _mm_set1_epi8, mask_sse2);
#endif

#if !defined(__SSE2__) || defined(KART_FAULTS)
/* Without SIMD: 64 places at a time, a byte compare each (built in the
 * test library too, where kart__hist_search_scan picks it). */
static inline char set1_plain(char c)
{
    return c;
}

static inline uint64_t mask_plain(const char *a, const char *b, char first, char last)
{
    uint64_t mask = 0;
    for (int j = 0; j < 64; j++)
        mask |= (uint64_t)(a[j] == first && b[j] == last) << j;
    return mask;
}

SEARCH_BACK(, search_back_plain, 64, char, set1_plain, mask_plain);
#endif

#ifdef KART_FAULTS
int kart__hist_search_scan;
#endif

static int search_back(const kart__hist_entry *e, size_t i, const char *pat, size_t m,
                       size_t *found, size_t *at)
{
#ifdef KART_FAULTS
    if (kart__hist_search_scan == 2)
        return search_back_plain(e, i, pat, m, found, at);
#ifdef __SSE2__
    if (kart__hist_search_scan == 1)
        return search_back_sse2(e, i, pat, m, found, at);
#endif
#endif
#ifdef HAVE_AVX2_SCAN
    if (have_avx2())
        return search_back_avx2(e, i, pat, m, found, at);
#endif
#ifdef __SSE2__
    return search_back_sse2(e, i, pat, m, found, at);
#else
    return search_back_plain(e, i, pat, m, found, at);
#endif
}

static int search_forward(const kart__hist_entry *e, size_t len, size_t i, const char *pat,
                          size_t m, size_t *found, size_t *at)
{
    for (int n = 0; n < ONE_BY_ONE; n++, i++) {
        const char *q = find_first(e[i].text, kart__hist_len(&e[i]), pat, m);
        if (q) {
            *found = i;
            *at = (size_t)(q - e[i].text);
            return 0;
        }
        if (i + 1 == len)
            return -ENOENT;
    }
    for (size_t w = WINDOW_FIRST;; w = w < WINDOW_MAX ? w * 2 : w) {
        const char *start = e[i].text;
        size_t j = i;
        while (j + 1 < len && follows(e, j) &&
               (size_t)(e[j + 1].text + kart__hist_len(&e[j + 1]) - start) <= w)
            j++;
        if (j == i) {
            const char *q = find_first(start, kart__hist_len(&e[i]), pat, m);
            if (q) {
                *found = i;
                *at = (size_t)(q - start);
                return 0;
            }
        } else {
            const char *end = e[j].text + kart__hist_len(&e[j]);
            size_t k = i;
            for (const char *q = start; (q = memmem(q, (size_t)(end - q), pat, m)); q++) {
                while (k < j && e[k + 1].text <= q)
                    k++;
                if (q + m <= e[k].text + kart__hist_len(&e[k])) {
                    *found = k;
                    *at = (size_t)(q - e[k].text);
                    return 0;
                }
            }
        }
        if (j + 1 >= len)
            return -ENOENT;
        i = j + 1;
    }
}

KART_API int kart_history_search(const kart_history *h, size_t index, const char *pat, size_t plen,
                                 unsigned flags, size_t *found, size_t *offset)
{
    if (!found || (!pat && plen) ||
        (flags & ~(KART_HISTORY_SEARCH_PREFIX | KART_HISTORY_SEARCH_FORWARD)))
        return -EINVAL;
    bool fwd = flags & KART_HISTORY_SEARCH_FORWARD;
    if (h->len == 0 || (fwd && index >= h->len))
        return -ENOENT;
    if (!fwd && index >= h->len)
        index = h->len - 1;
    const kart__hist_entry *e = kart__hist_at(h, 0);
    size_t at = 0;
    int err = -ENOENT;
    if (plen == 0) {
        *found = index;
        err = 0;
    } else if (plen > KART_HISTORY_MAX_LEN) {
        err = -ENOENT; /* longer than any entry (and the scans' sums stay small) */
    } else if (!(flags & KART_HISTORY_SEARCH_PREFIX)) {
        err = fwd ? search_forward(e, h->len, index, pat, plen, found, &at)
                  : search_back(e, index, pat, plen, found, &at);
    } else {
        for (size_t i = index; i < h->len; fwd ? i++ : i--) {
            if (kart__hist_len(&e[i]) >= plen && e[i].text[0] == pat[0] &&
                memcmp(e[i].text, pat, plen) == 0) {
                *found = i;
                err = 0;
                break;
            }
            if (!fwd && i == 0)
                break;
        }
    }
    if (err == 0 && offset)
        *offset = at;
    return err;
}

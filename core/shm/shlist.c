/*
 * core/shlist.c — ShareableList (kart/shared.h): Python 3.13's
 * multiprocessing.shared_memory.ShareableList in C, in Python's own layout
 * so that a Python process can attach a list kart made and the other way
 * round. The segment holds, in native byte order (Python packs with
 * struct's native mode):
 *
 *   8 bytes          N, the number of items (int64)
 *   (N + 1) × 8      each item's offset into the data area, then its end
 *   K bytes          the data area: 8 bytes per int/float/bool/None item,
 *                    8 × (len / 8 + 1) per str/bytes item
 *   N × 8            each item's struct format, NUL-padded: "q", "d",
 *                    "xxxxxxx?" (bool), "xxxxxx?x" (None), "<n>s"
 *   N bytes          each item's back-transform code: 0 as unpacked, 1 str
 *                    (trailing NULs stripped, UTF-8), 2 bytes (stripped),
 *                    3 None
 *
 * The offsets never change after creation, so a handle copies them when it
 * is made (after checking them) and never reads them from the segment
 * again; formats and codes can change with every set, so each get checks
 * the item's format against its slot before reading it.
 */
#include <kart/shared.h>
#include <kart/shm.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 8
#define FMT_BOOL "xxxxxxx?"
#define FMT_NONE "xxxxxx?x"

struct kart_shlist {
    kart_shm *seg;
    unsigned char *base;
    size_t n;
    uint64_t *offs;  /* n + 1 offsets into the data area, checked */
    size_t data_at;  /* (n + 2) × 8 */
    size_t fmts_at;  /* data_at + offs[n] */
    size_t codes_at; /* fmts_at + n × 8 */
};

/* ---- values ---- */

/* Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF): what
 * Python's decode accepts, so that a Python reader never raises. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += k + 1;
    }
    return true;
}

/* Checks an item the caller gives (create, set, count, index). */
static int item_check(const kart_shlist_item *it)
{
    if (!it)
        return -EINVAL;
    switch (it->type) {
    case KART_SHLIST_INT:
    case KART_SHLIST_FLOAT:
    case KART_SHLIST_BOOL:
    case KART_SHLIST_NONE:
        return 0;
    case KART_SHLIST_STR:
    case KART_SHLIST_BYTES:
        if (!it->data && it->len)
            return -EINVAL;
        if (it->type == KART_SHLIST_STR && !utf8_ok(it->data, it->len))
            return -EILSEQ;
        return 0;
    default:
        return -EINVAL;
    }
}

/* The slot a new item takes: Python's 8 × (len / 8 + 1) for str/bytes. */
static int slot_of(const kart_shlist_item *it, uint64_t *slot)
{
    if (it->type != KART_SHLIST_STR && it->type != KART_SHLIST_BYTES) {
        *slot = ALIGN;
        return 0;
    }
    if (it->len > KART_SHLIST_MAX_BYTES)
        return -EMSGSIZE; /* its format "<slot>s" would pass 8 characters */
    *slot = ALIGN * (it->len / ALIGN + 1);
    return 0;
}

static unsigned char *fmt_at(const kart_shlist *l, size_t i)
{
    return l->base + l->fmts_at + i * 8;
}

/* Writes item i: its format and code first, then its bytes, as Python's
 * __setitem__ does (a reader racing a writer may see a mix: see the
 * header). The slot has been checked to hold it. */
static void item_store(kart_shlist *l, size_t i, const kart_shlist_item *it)
{
    char fmt[32] = {0};
    signed char code = 0;
    unsigned char *dst = l->base + l->data_at + l->offs[i];
    uint64_t slot = l->offs[i + 1] - l->offs[i];
    unsigned char val[8] = {0};
    switch (it->type) {
    case KART_SHLIST_INT:
        memcpy(fmt, "q", 1);
        memcpy(val, &it->i, 8);
        break;
    case KART_SHLIST_FLOAT:
        memcpy(fmt, "d", 1);
        memcpy(val, &it->f, 8);
        break;
    case KART_SHLIST_BOOL:
        memcpy(fmt, FMT_BOOL, 8);
        val[7] = it->b ? 1 : 0;
        break;
    case KART_SHLIST_NONE:
        memcpy(fmt, FMT_NONE, 8);
        code = 3;
        break;
    default: /* STR, BYTES: the whole slot, NUL-padded ("<slot>s") */
        snprintf(fmt, sizeof(fmt), "%llus", (unsigned long long)slot);
        code = it->type == KART_SHLIST_STR ? 1 : 2;
        break;
    }
    memcpy(fmt_at(l, i), fmt, 8);
    l->base[l->codes_at + i] = (unsigned char)code;
    if (it->type == KART_SHLIST_STR || it->type == KART_SHLIST_BYTES) {
        if (it->len)
            memcpy(dst, it->data, it->len);
        memset(dst + it->len, 0, slot - it->len);
    } else {
        memcpy(dst, val, 8);
    }
}

/* Reads item i's type and, for str/bytes, where its bytes are and how
 * many (trailing NULs stripped). -EPROTO when the format, the code or the
 * size does not fit the slot (a foreign or damaged segment). */
static int item_load(const kart_shlist *l, size_t i, kart_shlist_item *out,
                     const unsigned char **bytes)
{
    char fmt[9] = {0};
    memcpy(fmt, fmt_at(l, i), 8);
    signed char code = (signed char)l->base[l->codes_at + i];
    const unsigned char *src = l->base + l->data_at + l->offs[i];
    uint64_t slot = l->offs[i + 1] - l->offs[i];
    *out = (kart_shlist_item){0};
    if (code == 3) {
        out->type = KART_SHLIST_NONE;
        return 0;
    }
    if (code == 0) {
        if (strcmp(fmt, "q") == 0) {
            out->type = KART_SHLIST_INT;
            memcpy(&out->i, src, 8);
        } else if (strcmp(fmt, "d") == 0) {
            out->type = KART_SHLIST_FLOAT;
            memcpy(&out->f, src, 8);
        } else if (strcmp(fmt, FMT_BOOL) == 0) {
            out->type = KART_SHLIST_BOOL;
            out->b = src[7] != 0;
        } else if (strcmp(fmt, FMT_NONE) == 0) {
            out->type = KART_SHLIST_BOOL; /* Python unpacks False */
            out->b = src[6] != 0;
        } else {
            return -EPROTO;
        }
        return 0;
    }
    if (code != 1 && code != 2)
        return -EPROTO;
    char *end;
    unsigned long long n = strtoull(fmt, &end, 10);
    if (end == fmt || strcmp(end, "s") != 0 || n > slot)
        return -EPROTO;
    while (n && src[n - 1] == 0)
        n--;
    if (code == 1 && !utf8_ok(src, n))
        return -EPROTO;
    out->type = code == 1 ? KART_SHLIST_STR : KART_SHLIST_BYTES;
    out->len = (size_t)n;
    *bytes = src;
    return 0;
}

/* ---- create, attach, free ---- */

static void list_free(kart_shlist *l)
{
    if (l->seg)
        kart_shm_close(l->seg);
    free(l->offs);
    free(l);
}

/* Fills in the positions from n and the offsets. */
static void place(kart_shlist *l)
{
    l->data_at = (l->n + 2) * 8;
    l->fmts_at = l->data_at + l->offs[l->n];
    l->codes_at = l->fmts_at + l->n * 8;
}

KART_API int kart_shlist_create(kart_shlist **out, const char *name, const kart_shlist_item *items,
                                size_t n, unsigned flags)
{
    if (!out || (!items && n) || (flags & ~KART_SHARED_TRACK) || n > SIZE_MAX / 32)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        uint64_t slot = ALIGN;
        int err = item_check(&items[i]);
        if (!err)
            err = slot_of(&items[i], &slot);
        if (err)
            return err;
    }
    kart_shlist *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->n = n;
    l->offs = malloc((n + 1) * sizeof(*l->offs));
    if (!l->offs) {
        free(l);
        return -ENOMEM;
    }
    l->offs[0] = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t slot = ALIGN;
        slot_of(&items[i], &slot); /* checked above */
        if (__builtin_add_overflow(l->offs[i], slot, &l->offs[i + 1])) {
            list_free(l);
            return -ENOMEM;
        }
    }
    place(l);
    size_t size;
    if (__builtin_add_overflow(l->codes_at, n, &size)) {
        list_free(l);
        return -ENOMEM;
    }
    int err =
        kart_shm_create(&l->seg, name, size, (flags & KART_SHARED_TRACK) ? KART_SHM_TRACK : 0);
    if (err) {
        l->seg = NULL;
        list_free(l);
        return err;
    }
    l->base = kart_shm_addr(l->seg);
    int64_t count = (int64_t)n;
    memcpy(l->base, &count, 8);
    memcpy(l->base + 8, l->offs, (n + 1) * 8);
    for (size_t i = 0; i < n; i++)
        item_store(l, i, &items[i]);
    *out = l;
    return 0;
}

KART_API int kart_shlist_attach(kart_shlist **out, const char *name, unsigned flags)
{
    if (!out || flags)
        return -EINVAL;
    kart_shlist *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    int err = kart_shm_attach(&l->seg, name, 0);
    if (err) {
        l->seg = NULL;
        list_free(l);
        return err;
    }
    l->base = kart_shm_addr(l->seg);
    size_t size = kart_shm_size(l->seg);
    int64_t count = -1;
    if (size >= 8)
        memcpy(&count, l->base, 8);
    /* Each item needs at least 8 offset + 8 data + 8 format + 1 code bytes. */
    if (size < 16 || count < 0 || (uint64_t)count > (size - 16) / 25) {
        list_free(l);
        return -EPROTO;
    }
    l->n = (size_t)count;
    l->offs = malloc((l->n + 1) * sizeof(*l->offs));
    if (!l->offs) {
        list_free(l);
        return -ENOMEM;
    }
    memcpy(l->offs, l->base + 8, (l->n + 1) * 8);
    /* Offsets: from 0, each slot at least 8 bytes, all inside the segment. */
    bool ok = l->offs[0] == 0;
    for (size_t i = 0; ok && i < l->n; i++)
        ok = l->offs[i + 1] >= l->offs[i] + ALIGN && l->offs[i + 1] <= size;
    if (ok) {
        place(l);
        ok = l->fmts_at >= l->data_at && l->codes_at + l->n <= size;
    }
    if (!ok) {
        list_free(l);
        return -EPROTO;
    }
    *out = l;
    return 0;
}

KART_API void kart_shlist_free(kart_shlist *l)
{
    if (l)
        list_free(l);
}

KART_API int kart_shlist_unlink(kart_shlist *l)
{
    return l ? kart_shm_unlink(l->seg) : -EINVAL;
}

KART_API const char *kart_shlist_name(const kart_shlist *l)
{
    return l ? kart_shm_name(l->seg) : NULL;
}

KART_API size_t kart_shlist_len(const kart_shlist *l)
{
    return l ? l->n : 0;
}

/* ---- items ---- */

KART_API int kart_shlist_get(kart_shlist *l, size_t i, kart_shlist_item *out, void *buf, size_t cap)
{
    if (!l || !out || (!buf && cap))
        return -EINVAL;
    if (i >= l->n)
        return -ERANGE;
    kart_shlist_item it;
    const unsigned char *bytes = NULL;
    int err = item_load(l, i, &it, &bytes);
    if (err)
        return err;
    if (it.type == KART_SHLIST_STR || it.type == KART_SHLIST_BYTES) {
        if (it.len > cap) {
            out->type = it.type;
            out->len = it.len;
            return -ENOBUFS;
        }
        if (it.len)
            memcpy(buf, bytes, it.len);
        if (cap > it.len)
            ((char *)buf)[it.len] = '\0';
        it.data = buf;
    }
    *out = it;
    return 0;
}

KART_API int kart_shlist_set(kart_shlist *l, size_t i, const kart_shlist_item *item)
{
    if (!l)
        return -EINVAL;
    int err = item_check(item);
    if (err)
        return err;
    if (i >= l->n)
        return -ERANGE;
    if ((item->type == KART_SHLIST_STR || item->type == KART_SHLIST_BYTES) &&
        item->len > l->offs[i + 1] - l->offs[i])
        return -EMSGSIZE;
    item_store(l, i, item);
    return 0;
}

/* Python's ==: int, float and bool compare as numbers (1 == 1.0 == True),
 * str only with str, bytes only with bytes, None only with None. */
static bool equal(const kart_shlist_item *a, const unsigned char *abytes, const kart_shlist_item *b)
{
    bool anum = a->type <= KART_SHLIST_BOOL, bnum = b->type <= KART_SHLIST_BOOL;
    if (anum && bnum) {
        bool af = a->type == KART_SHLIST_FLOAT, bf = b->type == KART_SHLIST_FLOAT;
        int64_t ai = a->type == KART_SHLIST_BOOL ? a->b : a->i;
        int64_t bi = b->type == KART_SHLIST_BOOL ? b->b : b->i;
        if (af && bf)
            return a->f == b->f;
        if (!af && !bf)
            return ai == bi;
        /* One float, one integer: equal only when the float is exactly it. */
        double f = af ? a->f : b->f;
        int64_t n = af ? bi : ai;
        if (!isfinite(f) || f != floor(f) || f < -0x1p63 || f >= 0x1p63)
            return false;
        return (int64_t)f == n;
    }
    if (a->type != b->type)
        return false;
    if (a->type == KART_SHLIST_NONE)
        return true;
    return a->len == b->len && (a->len == 0 || memcmp(abytes, b->data, a->len) == 0);
}

/* Scans for value: *count gets how many items equal it, *first the index
 * of the first (l->n when none). */
static int scan(kart_shlist *l, const kart_shlist_item *value, size_t *count, size_t *first)
{
    if (!l)
        return -EINVAL;
    int err = item_check(value);
    if (err)
        return err;
    *count = 0;
    *first = l->n;
    for (size_t i = 0; i < l->n; i++) {
        kart_shlist_item it;
        const unsigned char *bytes = NULL;
        if ((err = item_load(l, i, &it, &bytes)) != 0)
            return err;
        if (equal(&it, bytes, value)) {
            if (*count == 0)
                *first = i;
            ++*count;
        }
    }
    return 0;
}

KART_API int kart_shlist_count(kart_shlist *l, const kart_shlist_item *value, size_t *n)
{
    size_t count, first;
    if (!n)
        return -EINVAL;
    int err = scan(l, value, &count, &first);
    if (!err)
        *n = count;
    return err;
}

KART_API int kart_shlist_index(kart_shlist *l, const kart_shlist_item *value, size_t *index)
{
    size_t count, first;
    if (!index)
        return -EINVAL;
    int err = scan(l, value, &count, &first);
    if (!err && count == 0)
        err = -ENOENT;
    if (!err)
        *index = first;
    return err;
}

/*
 * fuzz/fuzz_history.c — libFuzzer target for the history: the input is a
 * history file. It is read (with a length limit the first byte picks) and
 * compared with a plain reference parser of the format; every entry must
 * be one the history could hold (no newline, no trailing CR, at most the
 * maximum, NUL-terminated). The entries are then written with timestamps
 * and read back, which must give them back exactly, and the file is
 * truncated to a few entries, which must leave the newest. The bulk
 * search is compared with a search entry by entry. Last, each
 * line of the input is expanded against the history (errors are fine,
 * crashes and leaks are not).
 */
#include "history_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void cleanup(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/in", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/out", dir);
    unlink(p);
    rmdir(dir);
}

static const char *file(const char *name)
{
    static char p[2][128];
    static int k;
    char *s = p[k++ & 1];
    if (!dir[0]) {
        /* tmpfs when there is one: the target writes files every run. */
        strcpy(dir, access("/dev/shm", W_OK) == 0 ? "/dev/shm/kart-fuzz-XXXXXX"
                                                  : "/tmp/kart-fuzz-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        atexit(cleanup);
    }
    snprintf(s, 128, "%s/%s", dir, name);
    return s;
}

static void put(const char *p, const uint8_t *d, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f) != 0)
        abort();
}

/* The reference: split at '\n', drop the CRs before it, skip empty lines,
 * '#digits' stamps the next line, lines over the maximum (one CR allowed
 * past it) are skipped with their stamp. Checks h against it. */
static void check_reference(const kart_history *h, const char *d, size_t n)
{
    size_t i = 0, k = 0;
    bool pending = false;
    int64_t ts = 0;
    while (i < n) {
        const char *nl = memchr(d + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - d) : n, l = e - i;
        bool too_long =
            l > KART_HISTORY_MAX_LEN && (l > KART_HISTORY_MAX_LEN + 1 || d[i + l - 1] != '\r');
        while (l && d[i + l - 1] == '\r')
            l--;
        int64_t t;
        if (too_long) {
            pending = false;
        } else if (l && !pending && kart__hist_is_timestamp(d + i, l, &t)) {
            pending = true;
            ts = t;
        } else if (l) {
            size_t got;
            const char *g = kart_history_text(h, k, &got);
            if (!g || got != l || memcmp(g, d + i, l) != 0 ||
                kart_history_time(h, k) != (pending ? ts : 0))
                abort();
            k++;
            pending = false;
        }
        i = e + 1;
    }
    if (kart_history_length(h) != k)
        abort();
}

static void check_entries(const kart_history *h)
{
    for (size_t i = 0; i < kart_history_length(h); i++) {
        size_t len;
        const char *t = kart_history_text(h, i, &len);
        if (!t || len == 0 || len > KART_HISTORY_MAX_LEN || memchr(t, '\n', len) ||
            t[len - 1] == '\r' || t[len] != 0 || kart_history_time(h, i) < 0)
            abort();
    }
}

static bool same(const kart_history *a, size_t ai, const kart_history *b, size_t bi)
{
    size_t la, lb;
    const char *ta = kart_history_text(a, ai, &la), *tb = kart_history_text(b, bi, &lb);
    return ta && tb && la == lb && memcmp(ta, tb, la) == 0 &&
           kart_history_time(a, ai) == kart_history_time(b, bi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    data++, size--;
    static const size_t limits[] = {KART_HISTORY_UNLIMITED, 0, 1, 3};
    size_t max = limits[mode & 3];
    const char *in = file("in"), *out = file("out");
    put(in, data, size);

    kart_history_options o = {.write_timestamps = true};
    kart_history *h;
    if (kart_history_create(&h, &o) != 0)
        abort();
    kart_history_stifle(h, max);
    kart_history_read_info info;
    if (kart_history_read(h, in, &info) != 0)
        abort();
    check_entries(h);
    size_t len = kart_history_length(h);
    if (len > max || len > info.entries || kart_history_base(h) != info.entries - len + 1)
        abort();
    if (max == KART_HISTORY_UNLIMITED)
        check_reference(h, (const char *)data, size);

    /* A search from each end for the input's first bytes, against one
     * entry by entry. */
    size_t m = 1 + (mode >> 6 & 1) + (mode >> 7 & 1);
    if (size >= m) {
        for (unsigned flags = 0; flags < 4; flags++) {
            bool fwd = flags & KART_HISTORY_SEARCH_FORWARD;
            size_t want = SIZE_MAX, want_at = 0;
            for (size_t k = 0; k < len && want == SIZE_MAX; k++) {
                size_t i = fwd ? k : len - 1 - k, l;
                const char *t = kart_history_text(h, i, &l);
                for (size_t off = 0; off + m <= l; off++) {
                    if ((flags & KART_HISTORY_SEARCH_PREFIX) && off > 0)
                        break;
                    if (memcmp(t + off, data, m) == 0) {
                        want = i;
                        want_at = off;
                        if (fwd)
                            break;
                    }
                }
            }
            size_t found, at;
            int err = kart_history_search(h, fwd ? 0 : SIZE_MAX, (const char *)data, m, flags,
                                          &found, &at);
            if (want == SIZE_MAX ? err != -ENOENT : (err || found != want || at != want_at))
                abort();
        }
    }

    /* Written and read back: the same entries and times. */
    if (kart_history_write(h, out) != 0)
        abort();
    kart_history *r;
    if (kart_history_create(&r, NULL) != 0 || kart_history_read(r, out, NULL) != 0 ||
        kart_history_length(r) != len)
        abort();
    for (size_t i = 0; i < len; i++)
        if (!same(h, i, r, i))
            abort();

    /* Truncated: the newest n of the input file's entries. */
    if (max == KART_HISTORY_UNLIMITED) {
        size_t n = mode >> 2 & 7;
        if (kart_history_truncate_file(in, n) != 0)
            abort();
        kart_history_clear(r);
        if (kart_history_read(r, in, NULL) != 0)
            abort();
        size_t want = n < len ? n : len;
        if (kart_history_length(r) != want)
            abort();
        for (size_t i = 0; i < want; i++)
            if (!same(h, len - want + i, r, i))
                abort();
    }
    kart_history_free(r);

    /* Each input line expanded against the history. */
    if (mode & 0x20) {
        const char *d = (const char *)data;
        for (size_t i = 0; i < size;) {
            const char *nl = memchr(d + i, '\n', size - i);
            size_t e = nl ? (size_t)(nl - d) : size;
            kart_history_expansion x;
            int err = kart_history_expand(h, d + i, e - i, &x);
            if (err == 0 ? (!x.text || x.text[x.len] != 0)
                         : (x.text || (err != -ENOMEM && !x.message[0])))
                abort();
            free(x.text);
            i = e + 1;
        }
    }
    kart_history_free(h);
    return 0;
}

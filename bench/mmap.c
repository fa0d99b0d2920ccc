/*
 * bench/mmap.c — sequential read and find over a large file in the page
 * cache: kart's map against read(2) into a buffer and against memcpy /
 * memmem over a plain mapping (the baseline).
 *
 * The file (256 MiB, 64 MiB with --quick) is a temporary one, unlinked as
 * soon as it is open so that nothing is left behind, filled with seeded
 * pseudo-random lowercase letters, with a 16-byte needle that occurs only
 * in its last 16 bytes. It is written and read once before the rounds, so
 * the page cache holds it, and its checksum is taken then.
 *
 * What is timed: passes over the whole file, repeated for the round's
 * duration, and nothing that a program would do once: every
 * implementation's setup is made before the clock starts. kart's map
 * (KART_MMAP_POPULATE) and the plain mapping (MAP_POPULATE) are set up,
 * pages present, so that the figure is the cost of the access path and not
 * of page faults; read(2)'s file is open and its buffer allocated. A pass
 * of kart starts with kart_mmap_seek(0); read(2) needs no seek: pread() at
 * each chunk's offset.
 *  - read case: copy the file into a 64 KiB buffer chunk by chunk
 *    (kart_mmap_read / memcpy / pread(2)), every chunk added to a running
 *    checksum (Fletcher-style, over 64-bit words) as it lands: each pass
 *    must see the whole file's, taken at its creation, and the byte count.
 *  - find case: find the needle (kart_mmap_find / memmem over the mapping
 *    / memmem over each chunk read, carrying 15 bytes across chunks); the
 *    offset found is checked.
 */
#include "harness.h"

#include <kart.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define NEEDLE_LEN 16
static const char needle[NEEDLE_LEN + 1] = "KART-NEEDLE-0001";

/* A running checksum of bytes fed in any pieces: two sums over the
 * 64-bit words (a + w, then b + a: the order of the words counts), a word
 * cut between two pieces carried over. */
typedef struct checksum {
    uint64_t a, b;
    unsigned char part[8];
    size_t npart;
} checksum;

static void checksum_word(checksum *c, const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    c->a += w;
    c->b += c->a;
}

static void checksum_add(checksum *c, const unsigned char *p, size_t n)
{
    while (c->npart > 0 && c->npart < 8 && n > 0) {
        c->part[c->npart++] = *p++;
        n--;
    }
    if (c->npart == 8) {
        checksum_word(c, c->part);
        c->npart = 0;
    }
    uint64_t a = c->a, b = c->b, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        a += w;
        b += a;
    }
    c->a = a;
    c->b = b;
    memcpy(c->part + c->npart, p, n);
    c->npart += n;
}

/* The checksum of all that was fed: a and b, the tail word zero-padded. */
static uint64_t checksum_end(checksum *c)
{
    if (c->npart > 0) {
        memset(c->part + c->npart, 0, 8 - c->npart);
        checksum_word(c, c->part);
        c->npart = 0;
    }
    return c->a ^ (c->b * 0x9e3779b97f4a7c15u);
}

static struct {
    int fd;
    size_t size;
    uint64_t sum; /* checksum of the whole file */
} file = {.fd = -1};

static unsigned char buf[CHUNK + NEEDLE_LEN];

/* Makes (once per size) the temporary file and warms the page cache. */
static void ensure_file(size_t size)
{
    if (file.fd >= 0 && file.size == size)
        return;
    if (file.fd >= 0)
        close(file.fd);
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/kart-bench-mmap-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        bench_fail("mkstemp %s: %s", path, strerror(errno));
    unlink(path);
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t off = 0; off < size; off += CHUNK) {
        size_t n = size - off < CHUNK ? size - off : CHUNK;
        for (size_t i = 0; i < n; i++) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            buf[i] = (unsigned char)('a' + (x * 0x2545f4914f6cdd1du >> 40) % 26);
        }
        if (off + n == size)
            memcpy(buf + n - NEEDLE_LEN, needle, NEEDLE_LEN);
        if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
            bench_fail("writing the file: %s", strerror(errno));
    }
    checksum c = {0};
    for (size_t off = 0; off < size; off += CHUNK) {
        ssize_t n = pread(fd, buf, CHUNK, (off_t)off);
        if (n < 0)
            bench_fail("reading the file: %s", strerror(errno));
        checksum_add(&c, buf, (size_t)n);
    }
    file.sum = checksum_end(&c);
    file.fd = fd;
    file.size = size;
}

static size_t case_size(const bench_case *c)
{
    return (size_t)bench_param_get(c, "mib") << 20;
}

/* A pass that read total bytes with checksum c, or the first error of the
 * round: the metric is not given. */
static void check_read(bench_ctx *ctx, size_t total, checksum *c)
{
    uint64_t sum = checksum_end(c);
    if (total != file.size || sum != file.sum)
        bench_metric_error(ctx, 0, "read %zu of %zu bytes, checksum %016llx where %016llx was due",
                           total, file.size, (unsigned long long)sum, (unsigned long long)file.sum);
}

static void check_find(bench_ctx *ctx, int64_t at)
{
    if (at != (int64_t)(file.size - NEEDLE_LEN))
        bench_metric_error(ctx, 0, "needle found at %lld, not %zu", (long long)at,
                           file.size - NEEDLE_LEN);
}

/* Runs the statements (one pass over the file) until the round's time
 * is up, at least once; GiB/s into ctx. */
#define TIMED_PASSES(ctx, ...)                                                                     \
    do {                                                                                           \
        long passes_ = 0;                                                                          \
        int64_t t0_ = bench_now_ns(), t1_;                                                         \
        do {                                                                                       \
            __VA_ARGS__;                                                                           \
            passes_++;                                                                             \
            t1_ = bench_now_ns();                                                                  \
        } while ((double)(t1_ - t0_) < (ctx)->seconds * 1e9);                                      \
        if (!(ctx)->error[0])                                                                      \
            (ctx)->value[0] = (double)file.size * (double)passes_ / (double)(1 << 30) /            \
                              ((double)(t1_ - t0_) / 1e9);                                         \
    } while (0)

/* ---- kart ---- */

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    ensure_file(case_size(ctx->c));
    bool find = bench_param_get(ctx->c, "find");
    kart_mmap *m;
    int err = kart_mmap_open(&m, file.fd, 0, 0, KART_MMAP_READ, KART_MMAP_POPULATE);
    if (err < 0)
        bench_fail("kart_mmap_open: %s", kart_strerror(err));
    if (find) {
        TIMED_PASSES(ctx, check_find(ctx, kart_mmap_find(m, needle, NEEDLE_LEN, 0, KART_MMAP_END)));
    } else {
        TIMED_PASSES(ctx, {
            kart_mmap_seek(m, 0, SEEK_SET);
            size_t total = 0;
            checksum c = {0};
            size_t n;
            int r;
            while ((r = kart_mmap_read(m, buf, CHUNK, &n)) == 0 && n > 0) {
                checksum_add(&c, buf, n);
                total += n;
            }
            if (r < 0)
                bench_fail("kart_mmap_read: %s", kart_strerror(r));
            check_read(ctx, total, &c);
        });
    }
    kart_mmap_close(m);
    return 0;
}

/* ---- a plain mapping ---- */

static int run_plain(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    ensure_file(case_size(ctx->c));
    bool find = bench_param_get(ctx->c, "find");
    unsigned char *p = mmap(NULL, file.size, PROT_READ, MAP_SHARED | MAP_POPULATE, file.fd, 0);
    if (p == MAP_FAILED)
        bench_fail("mmap: %s", strerror(errno));
    if (find) {
        TIMED_PASSES(ctx, {
            const unsigned char *hit = memmem(p, file.size, needle, NEEDLE_LEN);
            check_find(ctx, hit ? hit - p : -1);
        });
    } else {
        TIMED_PASSES(ctx, {
            size_t off = 0;
            checksum c = {0};
            while (off < file.size) {
                size_t n = file.size - off < CHUNK ? file.size - off : CHUNK;
                memcpy(buf, p + off, n);
                checksum_add(&c, buf, n);
                off += n;
            }
            check_read(ctx, off, &c);
        });
    }
    munmap(p, file.size);
    return 0;
}

/* ---- read(2) ---- */

static int run_read(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    ensure_file(case_size(ctx->c));
    bool find = bench_param_get(ctx->c, "find");
    if (find) {
        /* Chunks land after the last NEEDLE_LEN - 1 bytes of the previous
         * one, so that a needle across two chunks is found. */
        TIMED_PASSES(ctx, {
            size_t keep = 0, base = 0, off = 0;
            int64_t at = -1;
            ssize_t n;
            while (at < 0 && (n = pread(file.fd, buf + keep, CHUNK, (off_t)off)) > 0) {
                off += (size_t)n;
                const unsigned char *hit = memmem(buf, keep + (size_t)n, needle, NEEDLE_LEN);
                if (hit) {
                    at = (int64_t)(base + (size_t)(hit - buf));
                    break;
                }
                size_t have = keep + (size_t)n;
                size_t k = have < NEEDLE_LEN - 1 ? have : NEEDLE_LEN - 1;
                memmove(buf, buf + have - k, k);
                base += have - k;
                keep = k;
            }
            check_find(ctx, at);
        });
    } else {
        TIMED_PASSES(ctx, {
            size_t total = 0;
            checksum c = {0};
            ssize_t n;
            while ((n = pread(file.fd, buf, CHUNK, (off_t)total)) > 0) {
                checksum_add(&c, buf, (size_t)n);
                total += (size_t)n;
            }
            if (n < 0)
                bench_fail("pread: %s", strerror(errno));
            check_read(ctx, total, &c);
        });
    }
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"gib_per_s", "GiB/s", true},
};

static int cases(bench_case *out, bool quick)
{
    long mib = quick ? 64 : 256;
    out[0] = (bench_case){3, {{"mib", mib}, {"find", 0}, {"chunk_kib", CHUNK / 1024}}};
    out[1] = (bench_case){3, {{"mib", mib}, {"find", 1}, {"chunk_kib", CHUNK / 1024}}};
    return 2;
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){.name = "kart", .run = run_kart};
    out[n++] = (bench_impl){.name = "read", .run = run_read};
    out[n++] = (bench_impl){.name = "plain-mmap", .run = run_plain};
    return n;
}

const bench_scenario bench_mmap = {
    .name = "mmap",
    .summary = "sequential read (64 KiB chunks, every byte checksummed) and find over a file "
               "in the page cache: kart's map vs pread(2) vs a plain mapping, set-up untimed",
    .baseline = "plain-mmap",
    .nmetrics = 1,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 0.5,
    .quick_seconds = 0.2,
};

/*
 * bench/peers/line_peer.c — the timed loops every `line` peer program
 * shares (line_peer.h).
 */
#include "line_peer.h"

#include <line_script.h> /* bench/, shared with kart-bench (-Ibench) */

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const line_script *script;
static size_t accepted, bad;
static uint64_t last_hash;

void line_peer_accept(const char *line, size_t len)
{
    accepted++;
    if (len != script->expect_len || memcmp(line, script->expect, len) != 0)
        bad++;
    last_hash = line_hash(LINE_HASH_INIT, line, len);
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int run_keys(const line_peer *p, size_t chars, double seconds)
{
    line_script s;
    if (line_script_build(&s, chars) != 0 || p->editor_init() != 0) {
        fprintf(stderr, "line peer: setup failed\n");
        return 1;
    }
    script = &s;
    size_t keys = 0;
    int64_t limit = (int64_t)(seconds * 1e9), ns = 0, cpu = 0;
    do {
        p->prefill(s.prefill, s.prefill_len);
        int64_t t0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        for (size_t i = 0; i < s.nkeys; i++)
            p->feed(s.keys[i].bytes, s.keys[i].len);
        int64_t c1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), t1 = clock_ns(CLOCK_MONOTONIC);
        ns += t1 - t0;
        cpu += c1 - c0;
        keys += s.nkeys;
    } while (ns < limit);
    printf("keys=%zu lines=%zu bad=%zu ns=%" PRId64 " cpu_ns=%" PRId64 " hash=%016" PRIx64 "\n",
           keys, accepted, bad, ns, cpu, last_hash);
    line_script_free(&s);
    return 0;
}

/* The hash of a file's bytes, to compare what each peer wrote. */
static uint64_t file_hash(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint64_t h = LINE_HASH_INIT;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        h = line_hash(h, buf, n);
    fclose(f);
    return h;
}

static int run_history(const line_peer *p, const char *path, int stamps)
{
    if (!p->hist_read) {
        fprintf(stderr, "line peer: no history here\n");
        return 1;
    }
    char out[4096];
    snprintf(out, sizeof(out), "%s.out", path);
    size_t entries = 0, matches = 0;
    int64_t t[3], c[3];
    t[0] = clock_ns(CLOCK_MONOTONIC);
    c[0] = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    int err = p->hist_read(path, &entries);
    c[1] = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    t[1] = clock_ns(CLOCK_MONOTONIC);
    if (err) {
        fprintf(stderr, "line peer: reading %s failed (%d)\n", path, err);
        return 1;
    }
    err = p->hist_write(out, stamps);
    c[2] = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    t[2] = clock_ns(CLOCK_MONOTONIC);
    if (err) {
        fprintf(stderr, "line peer: writing %s failed (%d)\n", out, err);
        return 1;
    }
    /* Where each query's matches go: touched before the timer, and hashed
     * outside it, one query at a time. */
    size_t cap = entries ? entries : 1;
    size_t *found = malloc(cap * sizeof(*found)), *offset = malloc(cap * sizeof(*offset));
    if (!found || !offset) {
        fprintf(stderr, "line peer: out of memory\n");
        return 1;
    }
    memset(found, 0xff, cap * sizeof(*found));
    memset(offset, 0xff, cap * sizeof(*offset));
    uint64_t found_hash = LINE_HASH_INIT;
    int64_t search_ns = 0, search_cpu = 0;
    for (size_t q = 0; q < 10; q++) {
        int64_t t0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        size_t n = p->hist_count(line_history_query(q), found, offset, cap);
        search_cpu += clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
        search_ns += clock_ns(CLOCK_MONOTONIC) - t0;
        matches += n;
        for (size_t i = 0; i < n && i < cap; i++)
            found_hash = line_found_hash(found_hash, found[i], offset[i]);
    }
    free(found);
    free(offset);
    uint64_t written = file_hash(out);
    remove(out);
    printf("entries=%zu read_ns=%" PRId64 " write_ns=%" PRId64 " search_ns=%" PRId64
           " read_cpu_ns=%" PRId64 " write_cpu_ns=%" PRId64 " search_cpu_ns=%" PRId64
           " matches=%zu found=%016" PRIx64 " written=%016" PRIx64 "\n",
           entries, t[1] - t[0], t[2] - t[1], search_ns, c[1] - c[0], c[2] - c[1], search_cpu,
           matches, found_hash, written);
    return 0;
}

int line_peer_main(const line_peer *p, int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "keys") == 0)
        return run_keys(p, strtoul(argv[2], NULL, 10), strtod(argv[3], NULL));
    if (argc == 4 && strcmp(argv[1], "history") == 0)
        return run_history(p, argv[2], atoi(argv[3]));
    if (argc >= 2 && p->other) {
        int rc = p->other(argc, argv);
        if (rc >= 0)
            return rc;
    }
    fprintf(stderr, "usage: %s keys CHARS SECONDS | history FILE STAMPS%s\n", argv[0],
            p->other ? " | sessions N KEYS" : "");
    return 2;
}

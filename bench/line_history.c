/*
 * bench/line_history.c — the `line_history` scenario: loading, writing and
 * searching a history file of 100,000 shell-like entries, kart's
 * kart/history.h against GNU readline's history library (read_history,
 * write_history, history_search).
 *
 * The file is made once per case in $TMPDIR (or /tmp) by
 * bench/line_script.c: entries of 10 to 70 bytes (git, make, grep, ssh,
 * ... with varying arguments), in one case each after a "#<seconds>"
 * timestamp line, which both read and write back
 * (history_write_timestamps, kart's write_timestamps, on in that case
 * only). A peer program
 * (bench/peers/: line-kart-peer, line-readline-peer) runs once per round
 * and measures the process's CPU time (CLOCK_PROCESS_CPUTIME_ID: these
 * steps take milliseconds, and on a shared machine their wall time is
 * mostly waiting for a CPU) of each, alone: the load of the file into an empty history, the
 * write of the whole history to a new file beside it, and ten searches,
 * each counting every entry that holds its query from the newest entry
 * back (the search call repeated from one entry before each match, as
 * C-r repeated does), each query timed alone and the ten summed. Checked:
 * the entries loaded, the written file's bytes (its hash must be the
 * source file's), and the matches, counted here with strstr(3) over the
 * generated entries: how many, and each one's entry and offset (the last
 * place of the query in the entry, which both libraries' backward
 * searches return), hashed in order. libedit is not a peer
 * here: its history file format is not GNU's.
 */
#include "harness.h"
#include "line_run.h"
#include "line_script.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char kart_path[PATH_MAX], readline_path[PATH_MAX];

/* The file of the current case, and what the peers must find in it. */
static struct {
    char path[PATH_MAX];
    long entries, stamps;
    size_t matches;
    uint64_t hash, found; /* the file's bytes; every match (line_found_hash) */
} file;

static void remove_file(void)
{
    if (file.path[0])
        unlink(file.path);
}

static uint64_t hash_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        bench_fail("%s: cannot read it back", path);
    uint64_t h = LINE_HASH_INIT;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        h = line_hash(h, buf, n);
    fclose(f);
    return h;
}

static void ensure_file(long entries, long stamps)
{
    if (file.path[0] && file.entries == entries && file.stamps == stamps)
        return;
    remove_file();
    const char *dir = getenv("TMPDIR");
    snprintf(file.path, sizeof(file.path), "%s/kart-bench-history-%ld", dir && *dir ? dir : "/tmp",
             (long)getpid());
    static bool registered;
    if (!registered)
        atexit(remove_file);
    registered = true;
    int err = line_history_file(file.path, (size_t)entries, (int)stamps);
    if (err)
        bench_fail("writing %s: %s", file.path, strerror(-err));
    file.entries = entries;
    file.stamps = stamps;
    file.hash = hash_file(file.path);
    file.matches = 0;
    file.found = LINE_HASH_INIT;
    char buf[128];
    for (size_t q = 0; q < 10; q++) {
        const char *query = line_history_query(q);
        /* Newest first, and the last place in each entry: what a search
         * back finds. */
        for (long i = entries - 1; i >= 0; i--) {
            buf[line_history_entry((size_t)i, buf)] = '\0';
            const char *last = NULL;
            for (const char *s = buf; (s = strstr(s, query)); s++)
                last = s;
            if (last) {
                file.matches++;
                file.found = line_found_hash(file.found, (size_t)i, (size_t)(last - buf));
            }
        }
    }
}

static int run(const bench_impl *impl, bench_ctx *ctx)
{
    /* A warm-up or --smoke run reads a tenth of the file. */
    long entries = bench_param_get(ctx->c, "entries") / (ctx->light ? 10 : 1);
    long stamps = bench_param_get(ctx->c, "stamps");
    ensure_file(entries, stamps);
    char out[512];
    const char *args[] = {"history", file.path, stamps ? "1" : "0", NULL};
    if (!line_peer_run(impl->arg, args, out, sizeof(out)))
        bench_fail("%s failed: %s", impl->arg, out);
    double n = line_field(out, "entries"), matches = line_field(out, "matches");
    /* The process's CPU time of each step: on a shared machine the wall
     * time of a step this short is mostly waiting for a CPU. */
    double r = line_field(out, "read_cpu_ns"), w = line_field(out, "write_cpu_ns");
    double s = line_field(out, "search_cpu_ns");
    uint64_t written, found;
    if (isnan(n) || isnan(matches) || isnan(r) || isnan(w) || isnan(s) ||
        !line_hex_field(out, "written", &written) || !line_hex_field(out, "found", &found))
        bench_fail("%s printed: %s", impl->arg, out);
    if (n != (double)entries)
        bench_fail("%s loaded %.0f entries of %ld", impl->name, n, entries);
    if (written != file.hash)
        bench_fail("%s wrote a file that differs from the one it read", impl->name);
    if (matches != (double)file.matches)
        bench_fail("%s found %.0f matches; there are %zu", impl->name, matches, file.matches);
    if (found != file.found)
        bench_fail("%s found other entries or other places in them than strstr(3) does",
                   impl->name);
    const double cpu[3] = {r, w, s};
    for (int m = 0; m < 3; m++) {
        if (cpu[m] > 0)
            ctx->value[m] = cpu[m] / 1e6;
        else
            bench_metric_error(ctx, m, "%s: its CPU clock read 0 over a step (%s)", impl->name,
                               out);
    }
    return 0;
}

static const bench_metric metrics[] = {
    {"read_cpu_ms", "ms", false},
    {"write_cpu_ms", "ms", false},
    {"search_cpu_ms", "ms", false},
};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    out[0] = (bench_case){2, {{"entries", 100000}, {"stamps", 0}}};
    out[1] = (bench_case){2, {{"entries", 100000}, {"stamps", 1}}};
    return 2;
}

static int impls(bench_impl *out)
{
    const char *why = NULL;
    int n = 0;
    out[n] = (bench_impl){.name = "kart", .run = run};
    out[n].arg = line_peer_path("line-kart-peer", kart_path, sizeof(kart_path), &why);
    out[n].skip = out[n].arg ? NULL : why;
    n++;
    out[n] = (bench_impl){.name = "readline", .run = run};
    out[n].arg = line_peer_path("line-readline-peer", readline_path, sizeof(readline_path), &why);
    out[n].skip = out[n].arg ? NULL : why;
    n++;
    return n;
}

const bench_scenario bench_line_history = {
    .name = "line_history",
    .summary = "a 100,000-entry history file loaded, written and searched: kart, GNU readline",
    .baseline = "readline",
    .nmetrics = 3,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 1.0,
    .quick_seconds = 0.3,
    .metric_note = {"CPU time: loading the file into an empty history",
                    "CPU time: writing the whole history to a new file",
                    "CPU time: 10 queries, each counting every matching entry, newest to oldest"},
};

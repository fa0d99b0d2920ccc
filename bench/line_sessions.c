/*
 * bench/line_sessions.c — the `line_sessions` scenario: 1,000 kart line
 * editors on one kart_loop, each on its own socketpair (terminal forced
 * on, an 80x24 screen), all typing at once. There is no peer: GNU
 * readline and libedit keep one editor per process (global state), so the
 * figures are absolute, against the targets of issue 13: at most 16 KiB
 * of memory per session.
 *
 * The work runs in kart's peer program (line-kart-peer sessions N KEYS,
 * bench/peers/line_kart.c), a fresh process per round: a loop thread
 * creates and attaches the editors; the main thread writes one key to
 * every session at once, waits until every one has echoed, records each
 * key-to-echo time, and goes on to the next key; the last key is RET, and
 * every session must then have accepted the typed line. Memory per
 * session: the growth of the heap (mallinfo2: uordblks + hblkhd) and of
 * the resident set (/proc/self/statm) from before the editors were
 * created to after the line was typed, over N.
 */
#include "harness.h"
#include "line_run.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static char kart_path[PATH_MAX];

static int run(const bench_impl *impl, bench_ctx *ctx)
{
    /* A warm-up or --smoke run: a tenth of the sessions, five keys. */
    long sessions = bench_param_get(ctx->c, "sessions") / (ctx->light ? 10 : 1);
    long keys = ctx->light ? 5 : bench_param_get(ctx->c, "keys");
    char n_s[32], keys_s[32], out[512];
    snprintf(n_s, sizeof(n_s), "%ld", sessions);
    snprintf(keys_s, sizeof(keys_s), "%ld", keys);
    const char *args[] = {"sessions", n_s, keys_s, NULL};
    if (!line_peer_run(impl->arg, args, out, sizeof(out)))
        bench_fail("%s failed: %s", impl->arg, out);
    double good = line_field(out, "good"), heap = line_field(out, "heap_per_session");
    double rss = line_field(out, "rss_per_session"), p50 = line_field(out, "p50_ns");
    double p99 = line_field(out, "p99_ns");
    if (isnan(good) || isnan(heap) || isnan(rss) || isnan(p50) || isnan(p99))
        bench_fail("%s printed: %s", impl->arg, out);
    if (good != (double)sessions)
        bench_fail("%.0f of %ld sessions accepted the line they typed", good, sessions);
    /* mallinfo2 says nothing under a sanitizer's allocator, and a resident
     * set can fail to grow where pages were already resident: no figure
     * then, rather than a made-up zero. */
    if (heap > 0)
        ctx->value[0] = heap;
    else
        bench_metric_error(ctx, 0, "mallinfo2 showed no heap growth (another allocator?)");
    if (rss > 0)
        ctx->value[1] = rss;
    else
        bench_metric_error(ctx, 1, "the resident set did not grow");
    ctx->value[2] = p50 / 1e3;
    ctx->value[3] = p99 / 1e3;
    return 0;
}

static const bench_metric metrics[] = {
    {"heap_per_session", "B", false},
    {"rss_per_session", "B", false},
    {"echo_p50_us", "us", false},
    {"echo_p99_us", "us", false},
};

static int cases(bench_case *out, bool quick)
{
    out[0] = (bench_case){2, {{"sessions", 1000}, {"keys", quick ? 11 : 61}}};
    return 1;
}

static int impls(bench_impl *out)
{
    const char *why = NULL;
    out[0] = (bench_impl){.name = "kart", .run = run};
    out[0].arg = line_peer_path("line-kart-peer", kart_path, sizeof(kart_path), &why);
    out[0].skip = out[0].arg ? NULL : why;
    return 1;
}

const bench_scenario bench_line_sessions = {
    .name = "line_sessions",
    .summary = "1,000 kart line editors on one loop over socketpairs, all typing: memory per "
               "session (target: at most 16 KiB) and key-to-echo latency",
    .baseline = "kart",
    .nmetrics = 4,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 1.0,
    .quick_seconds = 0.3,
    .metric_note = {"heap growth (mallinfo2) per session: editor, watcher, buffers",
                    "resident-set growth (/proc/self/statm) per session",
                    "key written to all 1,000 at once, to each one's echo: median",
                    "the same, 99th percentile"},
};

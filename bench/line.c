/*
 * bench/line.c — the `line` scenario: keystrokes per second through a line
 * editor whose output goes to /dev/null, kart against GNU readline's
 * callback interface and libedit, and the CPU each keystroke costs.
 *
 * Each implementation is a program of its own (bench/peers/, built beside
 * kart-bench: line-kart-peer, line-readline-peer, line-libedit-peer),
 * started once per round, so that kart-bench never links readline or
 * libedit and every editor starts from a fresh process timed by the same
 * code (bench/peers/line_peer.c). Every peer types the same script
 * (bench/line_script.c) on an 80x24 screen in emacs mode: a line of
 * `chars` characters, the last 200 of them typed (the rest put in
 * beforehand outside the timer, as rl_insert_text does), then moves (C-a,
 * C-f, M-f, M-b, C-e, C-b), typing near the start, deletes (DEL, C-d),
 * typing near the end and RET; line after line for the round's time.
 * Only the keys are timed (CLOCK_MONOTONIC and the process's CPU clock).
 * Every accepted line must equal the line a model of those commands
 * leaves, or the run fails.
 *
 * How each is driven: kart in fed mode (kart_line_feed one key at a time,
 * terminal forced on), readline through rl_callback_read_char with
 * rl_getc_function reading from memory, libedit through el_gets in
 * EL_UNBUFFERED mode with EL_GETCFN reading from memory (what its
 * readline emulation's rl_callback_read_char does); readline and libedit
 * start on a pseudo-terminal (they only edit and draw on one) and write
 * to /dev/null, kart writes to /dev/null. Details in bench/peers/.
 */
#include "harness.h"
#include "line_run.h"
#include "line_script.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char kart_path[PATH_MAX], readline_path[PATH_MAX], libedit_path[PATH_MAX];

static int run(const bench_impl *impl, bench_ctx *ctx)
{
    long chars = bench_param_get(ctx->c, "chars");
    char chars_s[32], secs[32], out[512];
    snprintf(chars_s, sizeof(chars_s), "%ld", chars);
    snprintf(secs, sizeof(secs), "%g", ctx->seconds);
    const char *args[] = {"keys", chars_s, secs, NULL};
    if (!line_peer_run(impl->arg, args, out, sizeof(out)))
        bench_fail("%s failed: %s", impl->arg, out);
    double keys = line_field(out, "keys"), lines = line_field(out, "lines");
    double bad = line_field(out, "bad"), ns = line_field(out, "ns");
    double cpu = line_field(out, "cpu_ns");
    uint64_t hash;
    if (isnan(keys) || isnan(lines) || isnan(bad) || isnan(ns) || isnan(cpu) ||
        !line_hex_field(out, "hash", &hash) || keys <= 0 || ns <= 0)
        bench_fail("%s printed: %s", impl->arg, out);
    /* The line every accepted one must be: checked here too, from the
     * hash of the last, so that a peer cannot pass by its own check. */
    static line_script script;
    static long script_chars;
    if (script_chars != chars) {
        line_script_free(&script);
        if (line_script_build(&script, (size_t)chars) != 0)
            bench_fail("out of memory");
        script_chars = chars;
    }
    if (bad != 0 || lines < 1 ||
        hash != line_hash(LINE_HASH_INIT, script.expect, script.expect_len))
        bench_fail("%s: %.0f of %.0f accepted lines differ from the expected one (%s)", impl->name,
                   bad, lines, out);
    ctx->value[0] = keys * 1e9 / ns;
    if (cpu > 0)
        ctx->value[1] = cpu / keys;
    else
        bench_metric_error(ctx, 1, "%s: its CPU clock read 0 over %.0f keys", impl->name, keys);
    return 0;
}

static const bench_metric metrics[] = {
    {"keys_per_s", "key/s", true},
    {"cpu_ns_per_key", "ns/key", false},
};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    out[0] = (bench_case){1, {{"chars", 200}}};
    out[1] = (bench_case){1, {{"chars", 10000}}};
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
    out[n] = (bench_impl){.name = "libedit", .run = run};
    out[n].arg = line_peer_path("line-libedit-peer", libedit_path, sizeof(libedit_path), &why);
    out[n].skip = out[n].arg ? NULL : why;
    n++;
    return n;
}

const bench_scenario bench_line = {
    .name = "line",
    .summary = "keystrokes per second and CPU per key through a line editor drawing to /dev/null "
               "(80x24, emacs mode): kart, GNU readline's callback interface, libedit",
    .baseline = "readline",
    .nmetrics = 2,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 1.0,
    .quick_seconds = 0.3,
    .metric_note = {"keys typed (insert, move, delete, RET) per second of the timed part",
                    "the editor process's CPU time per key"},
};

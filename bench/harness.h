/*
 * bench/harness.h — the shape of a kart-bench scenario, and the harness
 * that runs scenarios against implementations.
 *
 * A scenario is a set of cases (each with its parameters, so that results
 * compare like with like) and a set of implementations of the same work:
 * kart on each backend and the peers. An implementation's run function does
 * one short timed round and fills in the scenario's metrics. The harness
 * interleaves implementations round by round (these machines drift by a
 * quarter within seconds) and reports, per implementation, the median over
 * rounds and the median of the per-round ratios to a baseline (the
 * scenario's, or the implementation's own peer: kart-shared against
 * pthread-shared). A case may run only some of the implementations.
 *
 * An implementation may offer modes (level- or edge-triggered, libuv's poll
 * handle or its stream API): the harness tries each briefly before the
 * rounds and keeps the fastest, so that every contender runs its best
 * honest variant, and the report says which. One without modes gets one
 * short warm-up run instead; either way every implementation has run
 * before its first counted round.
 *
 * The order within each round is a fresh random permutation, drawn from
 * the run's seed (printed and recorded), so that no implementation keeps
 * the same neighbour round after round and `--seed N` repeats an order.
 * Beside each median ratio the report gives the lowest and highest
 * per-round ratio; a ratio whose range holds 1.0 is marked "~" (no
 * difference: at least one round went the other way).
 *
 * --smoke runs each implementation (each mode) once, briefly, to prove
 * that everything runs: no figures, non-zero exit on any error.
 */
#ifndef KART_BENCH_HARNESS_H
#define KART_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_PARAMS 4
#define BENCH_MAX_METRICS 10
#define BENCH_MAX_MODES 3
#define BENCH_MAX_CASES 8
#define BENCH_MAX_IMPLS 16

typedef struct bench_param {
    const char *key;
    long value;
} bench_param;

typedef struct bench_case {
    int nparams;
    bench_param params[BENCH_MAX_PARAMS];
} bench_case;

typedef struct bench_metric {
    const char *name; /* "ops_per_s" */
    const char *unit; /* "op/s" */
    bool higher_better;
} bench_metric;

/* Above this share of its core, a process counts as saturating it. */
#define BENCH_SATURATED 0.90

/* What a run function gets, and where it leaves its metrics. */
typedef struct bench_ctx {
    const bench_case *c;
    int mode;       /* index into the implementation's modes; 0 if none */
    double seconds; /* how long a duration-bound round should last */
    bool quick;
    /* A warm-up or --smoke run: nothing of it is reported, so a scenario
     * whose work is a fixed count rather than a duration may do less. */
    bool light;
    double value[BENCH_MAX_METRICS];
    /* The share (0..1) of its own core that the load generator, and the
     * server, kept busy over the measured window, each with the softirq
     * work of that core; NaN (the default) where there is no load
     * generator. A round whose generator saturated its core while the
     * server did not is client-bound. */
    double load_busy, server_busy;
    /* Set by bench_metric_error(): why a metric is NaN. */
    char error[192];
} bench_ctx;

typedef struct bench_impl bench_impl;
/* Returns 0, or -ENOTSUP when this mode does not apply here (the harness
 * then drops the mode). A failed correctness check calls bench_fail(). */
typedef int (*bench_run_fn)(const bench_impl *impl, bench_ctx *ctx);

struct bench_impl {
    char name[32];
    const char *skip;                       /* NULL: available; else why not */
    const char *modes[BENCH_MAX_MODES + 1]; /* NULL-terminated; may be empty */
    bench_run_fn run;
    const char *arg; /* kart's backend name, for the kart-<backend> impls */
    /* The implementation this one's ratios divide by, when that is not the
     * scenario's baseline: a variant (process-shared, robust) is compared
     * with the same variant of the peer. A comma-separated list names
     * several like-for-like peers ("spin-futex,pthread-adaptive", or
     * "best:a,b,c", here or as the scenario's baseline): the ratios then
     * divide by whichever of them that ran has the best median of
     * metrics[0] in this case, and the report names it. */
    const char *peer;
};

typedef struct bench_scenario {
    const char *name;
    const char *summary;
    const char *baseline; /* implementation the ratios divide by */
    int nmetrics;
    const bench_metric *metrics; /* metrics[0] is the one modes are chosen by */
    /* Fills out[] with the cases, fewer or smaller ones when quick (also
     * under --smoke, whose runs have ctx->light set). */
    int (*cases)(bench_case *out, bool quick);
    /* Fills out[] with every implementation, available or not. */
    int (*impls)(bench_impl *out);
    /* Whether a case runs this implementation (an RWLock case among mutex
     * cases); NULL: every case runs every implementation. */
    bool (*runs)(const bench_case *c, const bench_impl *impl);
    /* Whether an implementation that runs here and belongs to a case
     * cannot run that case on this host: NULL when it can, else why not
     * (mqueue with messages over fs.mqueue.msgsize_max). The case then
     * reports it skipped, with the reason, in the table and in one JSON
     * line, as it does an implementation skipped everywhere; `runs` is
     * for what is no part of a case. NULL: every case can run. */
    const char *(*unavailable)(const bench_case *c, const bench_impl *impl);
    /* Seconds per duration-bound round, full and quick. */
    double seconds, quick_seconds;
    /* Rounds with --quick: 0 for the default (5); at least 3 otherwise, so
     * that a ratio still has a range. For the scenarios that dominate
     * --quick's time (`make bench`: under five minutes on two cores). */
    int quick_rounds;
    /* Bit m: metrics[m] is a throughput that a saturated load generator
     * caps (echo, http). In a case that ran client-bound (see
     * bench_ctx.load_busy) its ratio is not a result, and the report says
     * "client-bound" instead. */
    unsigned client_capped;
    /* What metrics[m] counts, for the table's header; NULL for none. */
    const char *metric_note[BENCH_MAX_METRICS];
    /* Bit m: metrics[m] describes how a run went (the CPUs it kept busy,
     * how evenly threads shared a lock) rather than scoring it: the table
     * and the JSON give its value and no ratio. */
    unsigned descriptive;
    /* Bit m: 0 is a true reading of metrics[m], not a failed run (the
     * manager's server CPU under kart-shm: the server may run nothing at
     * all while its clients work in shared memory). */
    unsigned may_be_zero;
    /* A median of metrics[m] above flag_above[m] (when that is > 0) earns
     * the word flag[m] beside it in the table and "flag" in the JSON
     * ("unfair"). */
    double flag_above[BENCH_MAX_METRICS];
    const char *flag[BENCH_MAX_METRICS];
} bench_scenario;

#define BENCH_SCENARIO(name) extern const bench_scenario bench_##name;
#include "scenarios.h"
#undef BENCH_SCENARIO

/* ---- helpers for scenarios ---- */

/* Prints "kart-bench: <scenario>/<impl>: message" and exits with status 1:
 * a benchmark that computed the wrong thing must not report a number. */
__attribute__((noreturn, format(printf, 1, 2))) void bench_fail(const char *fmt, ...);

/* A metric that could not be measured this round (a CPU clock that read
 * zero over a window that served requests): sets ctx->value[m] to NaN and
 * records why. The harness reports the metric as an error, prints the
 * message and makes kart-bench exit non-zero at the end, instead of
 * reporting a made-up figure. */
__attribute__((format(printf, 3, 4))) void bench_metric_error(bench_ctx *ctx, int m,
                                                              const char *fmt, ...);

/* The value of a case's parameter; bench_fail() if it has none. */
long bench_param_get(const bench_case *c, const char *key);

/* The path of a program on $PATH (or /usr/sbin, /sbin) in buf, or NULL. */
const char *bench_find_program(const char *name, char *buf, size_t size);

/* CLOCK_MONOTONIC in nanoseconds, independent of kart. */
int64_t bench_now_ns(void);

/* Adds kart-<backend> for uring, epoll, poll, select and any other
 * compiled-in backend; the ones that do not start here carry the reason
 * from kart_backend_probe(). When edge_mode is set, backends that honour
 * KART_EDGE get the modes {"level", "edge"}. Returns the count added. */
int bench_add_kart_backends(bench_impl *out, bench_run_fn run, bool edge_mode);

/* ---- the harness ---- */

typedef struct bench_options {
    bool quick;
    bool smoke;              /* each implementation once, briefly: no figures */
    uint64_t seed;           /* of the round orders (main.c draws one if not given) */
    int rounds;              /* 0: the default */
    const char *baseline;    /* NULL: each scenario's own */
    const char *const *only; /* NULL-terminated impl names, or NULL for all */
    FILE *table;             /* stdout, or stderr when JSON goes to stdout */
} bench_options;

/* Runs every case of a scenario and writes its tables (and JSON lines to
 * json, when not NULL). */
void bench_run_scenario(const bench_scenario *s, const bench_options *o, FILE *json);

/* How many metrics could not be measured (bench_metric_error) so far; each
 * was printed as it happened. kart-bench exits 1 when there were any. */
int bench_errors(void);

/* ---- reporting (report.c) ---- */

typedef struct bench_result {
    const bench_impl *impl;
    const char *mode; /* chosen mode, or NULL */
    int rounds;
    double median[BENCH_MAX_METRICS]; /* NaN: not measured (error[] says why) */
    double ratio[BENCH_MAX_METRICS];  /* NaN when there is no baseline */
    /* The lowest and highest per-round ratio. */
    double ratio_min[BENCH_MAX_METRICS], ratio_max[BENCH_MAX_METRICS];
    const char *baseline; /* what ratio divides by; NULL when it did not run */
    /* impl->peer when it lists several peers (baseline is the best of
     * them that ran), else NULL. */
    const char *baseline_of;
    /* Medians over rounds of bench_ctx.load_busy / server_busy (NaN when
     * not measured), and how many rounds were client-bound. */
    double load_busy, server_busy;
    int client_bound_rounds;
    /* This row or its baseline ran client-bound in most rounds: the ratios
     * of client_capped metrics are not results. */
    bool client_bound;
    char error[224]; /* the first measurement error, or "" */
} bench_result;

/* Whether metric m of the row is flagged (bench_scenario.flag). */
bool bench_flagged(const bench_scenario *s, const bench_result *r, int m);

/* Whether a ratio's per-round range holds 1.0: no difference shown. */
bool bench_no_difference(const bench_result *r, int m);

/* The environment (env.c): machine, build, peers. Collected once. */
void bench_env_print(FILE *out);
/* One JSON object (no newline) with the same, and the run's options. */
void bench_env_json(FILE *out, const bench_options *o);

void bench_print_table(FILE *out, const bench_scenario *s, const bench_case *c,
                       const bench_result *r, int n);
void bench_print_json(FILE *out, const bench_scenario *s, const bench_case *c,
                      const bench_result *r, int n, const bench_options *o);
/* --smoke's report of a case: one line, every implementation run or the
 * reason it was skipped. */
void bench_print_smoke(FILE *out, const bench_scenario *s, const bench_case *c,
                       const bench_result *r, int n);
/* "pairs=1 timers=200000" into buf. */
const char *bench_case_label(const bench_case *c, char *buf, int size);

#endif

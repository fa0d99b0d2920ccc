/*
 * bench/harness.c — runs one scenario: for each case, warms every
 * implementation up (picking the best mode of those that have modes), then
 * runs every implementation once per round, in a random order drawn afresh
 * each round from the run's seed, and reduces the rounds to medians and
 * paired ratios with their range.
 *
 * Why paired ratios: on a two-core VM whose speed drifts by a quarter
 * within seconds, two medians taken at different moments disagree by more
 * than the differences being measured. Within one round the contenders run
 * back to back, so the ratio of their results is mostly free of the drift;
 * the median of those per-round ratios is what the tables report, with the
 * lowest and the highest of them. A range that holds 1.0 means that at
 * least one round went the other way: the table marks that ratio "~", no
 * difference shown (with five rounds, all five agreeing by chance alone
 * happens one time in sixteen).
 *
 * Why a random order: a rotation keeps every implementation behind the
 * same neighbour in all but one round, so whatever the neighbour leaves
 * behind (a warm cache, a CPU clocked up, a socket in TIME_WAIT) lands on
 * the same victim every time. A fresh permutation per round spreads it.
 */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* "pingpong/kart-epoll", named in bench_fail()'s message. */
static char current[96] = "kart-bench";
static int nerrors;
/* Time this scenario spent in warm-ups, and in the modes' trials. */
static int64_t warm_ns, trial_ns;

int bench_errors(void)
{
    return nerrors;
}

void bench_metric_error(bench_ctx *ctx, int m, const char *fmt, ...)
{
    ctx->value[m] = NAN;
    if (ctx->error[0])
        return; /* the first reason of the round is the one kept */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
    va_end(ap);
}

void bench_fail(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "\nkart-bench: %s: ", current);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

long bench_param_get(const bench_case *c, const char *key)
{
    for (int i = 0; i < c->nparams; i++)
        if (strcmp(c->params[i].key, key) == 0)
            return c->params[i].value;
    bench_fail("case has no parameter '%s'", key);
}

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place; NaN if any value is NaN (not measured). */
static double median(double *v, int n)
{
    for (int i = 0; i < n; i++)
        if (isnan(v[i]))
            return NAN;
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool better(const bench_metric *m, double a, double b)
{
    return m->higher_better ? a > b : a < b;
}

/* One run of impl. label names the case and the round in messages. */
static int run_one(const bench_scenario *s, const bench_impl *impl, bench_ctx *ctx,
                   const char *label)
{
    snprintf(current, sizeof(current), "%s/%s", s->name, impl->name);
    for (int m = 0; m < BENCH_MAX_METRICS; m++)
        ctx->value[m] = NAN;
    ctx->load_busy = ctx->server_busy = NAN;
    ctx->error[0] = '\0';
    int err = impl->run(impl, ctx);
    if (err != 0)
        return err;
    if (ctx->error[0]) {
        /* A measurement that failed: said now, counted, reported as an
         * error in the table; the run goes on. */
        nerrors++;
        fprintf(stderr, "\nkart-bench: %s %s: %s\n", current, label, ctx->error);
    }
    for (int m = 0; m < s->nmetrics; m++)
        if (!(isnan(ctx->value[m]) && ctx->error[0]) &&
            (!isfinite(ctx->value[m]) || ctx->value[m] < 0 ||
             (ctx->value[m] == 0 && !(s->may_be_zero >> m & 1))))
            bench_fail("run returned no valid %s", s->metrics[m].name);
    return 0;
}

/*
 * Warms impl up before the counted rounds and returns the index of the
 * mode to run. An implementation with several modes tries each a few times,
 * alternating, with short rounds, and keeps the one with the best median
 * of the first metric (these trials are its warm-up); one without runs
 * once, light (a short round, a small count), and the result is dropped.
 * --smoke tries each mode once and warms nothing else up: the one counted
 * round is each implementation's run.
 */
static int warm_up(const bench_scenario *s, const bench_impl *impl, const bench_case *c,
                   const bench_options *o, double seconds, const char *label)
{
    /* Five short alternating trials: fewer let one noisy moment on a
     * shared two-core machine pick the slower mode. */
    enum { TRIALS = 5 };
    int trials = o->smoke ? 1 : TRIALS;
    int nmodes = 0;
    while (impl->modes[nmodes])
        nmodes++;
    /* Short trials, a quarter round (at least 50 ms); --smoke's own length. */
    double trial_seconds = o->smoke ? seconds : seconds / 4 > 0.05 ? seconds / 4 : 0.05;
    bench_ctx ctx = {.c = c, .seconds = trial_seconds, .quick = o->quick};
    char what[160];
    if (nmodes < 2) {
        if (o->smoke)
            return 0;
        ctx.light = true;
        snprintf(what, sizeof(what), "%s (warm-up)", label);
        if (run_one(s, impl, &ctx, what) < 0)
            bench_fail("its warm-up run failed");
        return 0;
    }
    double v[BENCH_MAX_MODES][TRIALS];
    bool dead[BENCH_MAX_MODES] = {false};
    ctx.light = o->smoke;
    for (int t = 0; t < trials; t++) {
        for (int i = 0; i < nmodes; i++) {
            int m = (i + t) % nmodes;
            if (dead[m])
                continue;
            ctx.mode = m;
            snprintf(what, sizeof(what), "%s (trial of mode %s)", label, impl->modes[m]);
            if (run_one(s, impl, &ctx, what) == -ENOTSUP)
                dead[m] = true;
            else
                v[m][t] = ctx.value[0];
        }
    }
    int best = -1;
    double bestv = 0, med[BENCH_MAX_MODES];
    for (int m = 0; m < nmodes; m++) {
        if (dead[m])
            continue;
        med[m] = median(v[m], trials);
        /* A trial that could not be measured (NaN) never wins. */
        if (best < 0 ||
            (!isnan(med[m]) && (isnan(bestv) || better(&s->metrics[0], med[m], bestv)))) {
            best = m;
            bestv = med[m];
        }
    }
    if (best < 0)
        bench_fail("no mode of %s runs here", impl->name);
    if (o->smoke)
        return best;
    fprintf(stderr, "%s %s: %s", s->name, label, impl->name);
    for (int m = 0; m < nmodes; m++)
        if (!dead[m])
            fprintf(stderr, " %s %.4g", impl->modes[m], med[m]);
    fprintf(stderr, " %s -> %s\n", s->metrics[0].unit, impl->modes[best]);
    return best;
}

static bool selected(const bench_options *o, const char *name)
{
    if (!o->only)
        return true;
    for (const char *const *p = o->only; *p; p++)
        if (strcmp(*p, name) == 0)
            return true;
    return false;
}

/* The index in run[] of the implementation named, or -1 if it did not run. */
static int find_run(const bench_result *res, const int *run, int nrun, const char *name)
{
    for (int k = 0; name && k < nrun; k++)
        if (strcmp(res[run[k]].impl->name, name) == 0)
            return k;
    return -1;
}

/*
 * Of the comma-separated peers in list, the one that ran with the best
 * median of metrics[0] over the rounds: the index in run[], or -1 if none
 * ran. vals is run_case's table of values; tmp has room for `rounds`.
 * Choosing the best of several peers after the fact can only favour the
 * peer, never kart.
 */
static int best_peer(const bench_scenario *s, const bench_result *res, const int *run, int nrun,
                     const char *list, const double *vals, int rounds, double *tmp)
{
    int best = -1;
    double bestv = NAN;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)len, p);
        p += len + (p[len] == ',');
        int k = find_run(res, run, nrun, name);
        if (k < 0)
            continue;
        for (int r = 0; r < rounds; r++)
            tmp[r] = vals[((size_t)k * rounds + r) * BENCH_MAX_METRICS];
        double v = median(tmp, rounds);
        if (best < 0 || (!isnan(v) && (isnan(bestv) || better(&s->metrics[0], v, bestv)))) {
            best = k;
            bestv = v;
        }
    }
    return best;
}

/* splitmix64: the round orders' generator, small and the same everywhere. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The generator of one case: the run's seed, the scenario and the case,
 * so that `--seed N` repeats a case's orders even when other scenarios
 * are left out of the run. */
static uint64_t case_stream(uint64_t seed, const char *scenario, int case_index)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const char *p = scenario; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    uint64_t st = seed ^ h ^ ((uint64_t)case_index << 48);
    next_random(&st);
    return st;
}

/* order[0..n) := a uniformly random permutation of 0..n-1. */
static void shuffle(int *order, int n, uint64_t *state)
{
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(next_random(state) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static bool client_bound_round(const bench_ctx *ctx)
{
    return ctx->load_busy >= BENCH_SATURATED && ctx->server_busy < BENCH_SATURATED;
}

bool bench_flagged(const bench_scenario *s, const bench_result *r, int m)
{
    return s->flag[m] && s->flag_above[m] > 0 && r->median[m] > s->flag_above[m];
}

bool bench_no_difference(const bench_result *r, int m)
{
    return r->rounds > 1 && r->baseline && strcmp(r->baseline, r->impl->name) != 0 &&
           !isnan(r->ratio[m]) && r->ratio_min[m] <= 1.0 && r->ratio_max[m] >= 1.0;
}

/* Seconds per duration-bound round with --smoke: enough to start, connect
 * and move some data, no more. */
#define SMOKE_SECONDS 0.03

static void run_case(const bench_scenario *s, const bench_case *c, int case_index,
                     const bench_impl *impls, int nimpls, const bench_options *o, FILE *json)
{
    const char *baseline = o->baseline ? o->baseline : s->baseline;
    int quick_rounds = s->quick_rounds >= 3 ? s->quick_rounds : 5;
    int rounds = o->smoke ? 1 : o->rounds > 0 ? o->rounds : (o->quick ? quick_rounds : 7);
    double seconds = o->quick || o->smoke ? s->quick_seconds : s->seconds;
    if (o->smoke && seconds > SMOKE_SECONDS)
        seconds = SMOKE_SECONDS;
    char label[128];
    bench_case_label(c, label, sizeof(label));

    bench_result res[BENCH_MAX_IMPLS];
    int run[BENCH_MAX_IMPLS], mode[BENCH_MAX_IMPLS], nrun = 0, nres = 0;
    for (int i = 0; i < nimpls; i++) {
        if (!selected(o, impls[i].name) || (s->runs && !s->runs(c, &impls[i])))
            continue;
        res[nres] = (bench_result){.impl = &impls[i]};
        if (!impls[i].skip) {
            int64_t w0 = bench_now_ns();
            mode[nrun] = warm_up(s, &impls[i], c, o, seconds, label);
            *(impls[i].modes[0] && impls[i].modes[1] ? &trial_ns : &warm_ns) += bench_now_ns() - w0;
            res[nres].mode = impls[i].modes[mode[nrun]];
            res[nres].rounds = rounds;
            run[nrun++] = nres;
        }
        nres++;
    }

    /* vals[(k * rounds + r) * BENCH_MAX_METRICS + m]: impl k, round r;
     * busy[(k * rounds + r) * 2 + 0/1]: its load_busy, server_busy. */
    size_t cells = (size_t)(nrun ? nrun : 1) * (size_t)rounds;
    double *vals = calloc(cells * BENCH_MAX_METRICS, sizeof(*vals));
    double *busy = calloc(cells * 2, sizeof(*busy));
    double *tmp = calloc((size_t)rounds, sizeof(*tmp));
    if (!vals || !busy || !tmp)
        bench_fail("out of memory");
    uint64_t rng = case_stream(o->seed, s->name, case_index);
    int order[BENCH_MAX_IMPLS];
    bool tty = isatty(STDERR_FILENO);
    for (int r = 0; r < rounds && nrun > 0; r++) {
        /* A terminal gets one line rewritten in place; a log gets the
         * rounds appended to one line. */
        if (o->smoke)
            ;
        else if (tty)
            fprintf(stderr, "\r%s %s round %d/%d\033[K", s->name, label, r + 1, rounds);
        else if (r == 0)
            fprintf(stderr, "%s %s: round 1/%d", s->name, label, rounds);
        else
            fprintf(stderr, " %d/%d", r + 1, rounds);
        shuffle(order, nrun, &rng);
        for (int i = 0; i < nrun; i++) {
            int k = order[i];
            bench_result *rs = &res[run[k]];
            const bench_impl *impl = rs->impl;
            bench_ctx ctx = {
                .c = c, .mode = mode[k], .seconds = seconds, .quick = o->quick, .light = o->smoke};
            char what[160];
            snprintf(what, sizeof(what), "%s (round %d)", label, r + 1);
            if (run_one(s, impl, &ctx, what) < 0)
                bench_fail("mode %s failed after it ran in the trials",
                           impl->modes[mode[k]] ? impl->modes[mode[k]] : "default");
            if (ctx.error[0] && !rs->error[0])
                snprintf(rs->error, sizeof(rs->error), "round %d: %s", r + 1, ctx.error);
            memcpy(&vals[((size_t)k * rounds + r) * BENCH_MAX_METRICS], ctx.value,
                   sizeof(ctx.value));
            busy[((size_t)k * rounds + r) * 2] = ctx.load_busy;
            busy[((size_t)k * rounds + r) * 2 + 1] = ctx.server_busy;
            rs->client_bound_rounds += client_bound_round(&ctx);
        }
    }
    if (nrun > 0 && !o->smoke)
        fprintf(stderr, tty ? "\r\033[K" : "\n");

#define VAL(k, r, m) vals[((size_t)(k)*rounds + (r)) * BENCH_MAX_METRICS + (m)]
    for (int k = 0; k < nrun; k++) {
        bench_result *rs = &res[run[k]];
        for (int b = 0; b < 2; b++) {
            int have = 0;
            for (int r = 0; r < rounds; r++)
                if (!isnan(busy[((size_t)k * rounds + r) * 2 + b]))
                    tmp[have++] = busy[((size_t)k * rounds + r) * 2 + b];
            double med = have ? median(tmp, have) : NAN;
            *(b ? &rs->server_busy : &rs->load_busy) = med;
        }
    }
    for (int k = 0; k < nrun; k++) {
        bench_result *rs = &res[run[k]];
        /* --baseline overrides all; else the variant's own peer, if any
         * (the best of its peers, when it lists several). */
        const char *bname = !o->baseline && rs->impl->peer ? rs->impl->peer : baseline;
        const char *list = strncmp(bname, "best:", 5) == 0 ? bname + 5 : bname;
        int base;
        if (list != bname || strchr(list, ',')) {
            base = best_peer(s, res, run, nrun, list, vals, rounds, tmp);
            rs->baseline_of = list;
        } else {
            base = find_run(res, run, nrun, bname);
        }
        rs->baseline = base >= 0 ? res[run[base]].impl->name : NULL;
        /* Client-bound in most rounds, this row or the one it divides by. */
        rs->client_bound = 2 * rs->client_bound_rounds > rounds ||
                           (base >= 0 && 2 * res[run[base]].client_bound_rounds > rounds);
        for (int m = 0; m < s->nmetrics; m++) {
            for (int r = 0; r < rounds; r++)
                tmp[r] = VAL(k, r, m);
            rs->median[m] = median(tmp, rounds);
            rs->ratio[m] = rs->ratio_min[m] = rs->ratio_max[m] = NAN;
            if (base < 0 || (s->descriptive >> m & 1))
                continue;
            for (int r = 0; r < rounds; r++)
                tmp[r] = VAL(k, r, m) / VAL(base, r, m);
            rs->ratio[m] = median(tmp, rounds); /* sorts tmp */
            if (!isnan(rs->ratio[m])) {
                rs->ratio_min[m] = tmp[0];
                rs->ratio_max[m] = tmp[rounds - 1];
            }
        }
    }
#undef VAL
    free(vals);
    free(busy);
    free(tmp);
    if (o->smoke)
        bench_print_smoke(o->table, s, c, res, nres);
    else
        bench_print_table(o->table, s, c, res, nres);
    if (json)
        bench_print_json(json, s, c, res, nres, o);
}

void bench_run_scenario(const bench_scenario *s, const bench_options *o, FILE *json)
{
    bench_case cases[BENCH_MAX_CASES];
    bench_impl impls[BENCH_MAX_IMPLS];
    int ncases = s->cases(cases, o->quick || o->smoke);
    int nimpls = s->impls(impls);
    int64_t t0 = bench_now_ns();
    warm_ns = trial_ns = 0;
    for (int i = 0; i < ncases; i++) {
        /* This case's view of the implementations: skipped where the
         * scenario says it cannot run the case here. */
        bench_impl here[BENCH_MAX_IMPLS];
        memcpy(here, impls, (size_t)nimpls * sizeof(*impls));
        for (int k = 0; k < nimpls && s->unavailable; k++)
            if (!here[k].skip)
                here[k].skip = s->unavailable(&cases[i], &here[k]);
        run_case(s, &cases[i], i, here, nimpls, o, json);
    }
    fprintf(stderr, "%s: %.1f s (warm-ups %.1f s, mode trials %.1f s)\n", s->name,
            (double)(bench_now_ns() - t0) / 1e9, (double)warm_ns / 1e9, (double)trial_ns / 1e9);
}

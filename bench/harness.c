/*
 * bench/harness.c — runs one scenario: for each case, picks each
 * implementation's best mode, then runs every implementation once per
 * round, in an order rotated each round, and reduces the rounds to medians
 * and paired ratios.
 *
 * Why paired ratios: on a two-core VM whose speed drifts by a quarter
 * within seconds, two medians taken at different moments disagree by more
 * than the differences being measured. Within one round the contenders run
 * back to back, so the ratio of their results is mostly free of the drift;
 * the median of those per-round ratios is what the tables report. Rotating
 * the order keeps any one implementation from always running right after
 * the same neighbour (warm caches, a CPU that just clocked up).
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

/* Sorts v in place. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool better(const bench_metric *m, double a, double b)
{
    return m->higher_better ? a > b : a < b;
}

static int run_one(const bench_scenario *s, const bench_impl *impl, bench_ctx *ctx)
{
    snprintf(current, sizeof(current), "%s/%s", s->name, impl->name);
    for (int m = 0; m < BENCH_MAX_METRICS; m++)
        ctx->value[m] = NAN;
    int err = impl->run(impl, ctx);
    if (err == 0)
        for (int m = 0; m < s->nmetrics; m++)
            if (!isfinite(ctx->value[m]) || ctx->value[m] <= 0)
                bench_fail("run returned no valid %s", s->metrics[m].name);
    return err;
}

/*
 * Tries each mode of an implementation a few times, alternating, with
 * short rounds, and returns the index of the one with the best median of
 * the first metric. Doubles as the warm-up of that implementation.
 */
static int choose_mode(const bench_scenario *s, const bench_impl *impl, const bench_case *c,
                       const bench_options *o, double seconds, const char *label)
{
    /* Five short alternating trials: fewer let one noisy moment on a
     * shared two-core machine pick the slower mode. */
    enum { TRIALS = 5 };
    int nmodes = 0;
    while (impl->modes[nmodes])
        nmodes++;
    if (nmodes < 2)
        return 0;
    double v[BENCH_MAX_MODES][TRIALS];
    bool dead[BENCH_MAX_MODES] = {false};
    bench_ctx ctx = {.c = c, .seconds = seconds / 4 > 0.05 ? seconds / 4 : 0.05, .quick = o->quick};
    for (int t = 0; t < TRIALS; t++) {
        for (int i = 0; i < nmodes; i++) {
            int m = (i + t) % nmodes;
            if (dead[m])
                continue;
            ctx.mode = m;
            if (run_one(s, impl, &ctx) == -ENOTSUP)
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
        med[m] = median(v[m], TRIALS);
        if (best < 0 || better(&s->metrics[0], med[m], bestv)) {
            best = m;
            bestv = med[m];
        }
    }
    if (best < 0)
        bench_fail("no mode of %s runs here", impl->name);
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

static void run_case(const bench_scenario *s, const bench_case *c, const bench_impl *impls,
                     int nimpls, const bench_options *o, FILE *json)
{
    const char *baseline = o->baseline ? o->baseline : s->baseline;
    int rounds = o->rounds > 0 ? o->rounds : (o->quick ? 5 : 7);
    double seconds = o->quick ? s->quick_seconds : s->seconds;
    char label[128];
    bench_case_label(c, label, sizeof(label));

    bench_result res[BENCH_MAX_IMPLS];
    int run[BENCH_MAX_IMPLS], mode[BENCH_MAX_IMPLS], nrun = 0, nres = 0;
    for (int i = 0; i < nimpls; i++) {
        if (!selected(o, impls[i].name) || (s->runs && !s->runs(c, &impls[i])))
            continue;
        res[nres] = (bench_result){.impl = &impls[i]};
        if (!impls[i].skip) {
            mode[nrun] = choose_mode(s, &impls[i], c, o, seconds, label);
            res[nres].mode = impls[i].modes[mode[nrun]];
            res[nres].rounds = rounds;
            run[nrun++] = nres;
        }
        nres++;
    }

    /* vals[(k * rounds + r) * BENCH_MAX_METRICS + m]: impl k, round r. */
    double *vals =
        calloc((size_t)(nrun ? nrun : 1) * (size_t)rounds * BENCH_MAX_METRICS, sizeof(*vals));
    double *tmp = calloc((size_t)rounds, sizeof(*tmp));
    if (!vals || !tmp)
        bench_fail("out of memory");
    bool tty = isatty(STDERR_FILENO);
    for (int r = 0; r < rounds && nrun > 0; r++) {
        /* A terminal gets one line rewritten in place; a log gets the
         * rounds appended to one line. */
        if (tty)
            fprintf(stderr, "\r%s %s round %d/%d\033[K", s->name, label, r + 1, rounds);
        else if (r == 0)
            fprintf(stderr, "%s %s: round 1/%d", s->name, label, rounds);
        else
            fprintf(stderr, " %d/%d", r + 1, rounds);
        for (int i = 0; i < nrun; i++) {
            int k = (i + r) % nrun;
            const bench_impl *impl = res[run[k]].impl;
            bench_ctx ctx = {.c = c, .mode = mode[k], .seconds = seconds, .quick = o->quick};
            if (run_one(s, impl, &ctx) < 0)
                bench_fail("mode %s failed after it ran in the trials",
                           impl->modes[mode[k]] ? impl->modes[mode[k]] : "default");
            memcpy(&vals[((size_t)k * rounds + r) * BENCH_MAX_METRICS], ctx.value,
                   sizeof(ctx.value));
        }
    }
    if (nrun > 0)
        fprintf(stderr, tty ? "\r\033[K" : "\n");

    for (int k = 0; k < nrun; k++) {
        bench_result *rs = &res[run[k]];
        /* --baseline overrides all; else the variant's own peer, if any. */
        const char *bname = !o->baseline && rs->impl->peer ? rs->impl->peer : baseline;
        int base = find_run(res, run, nrun, bname);
        rs->baseline = base >= 0 ? bname : NULL;
        for (int m = 0; m < s->nmetrics; m++) {
            for (int r = 0; r < rounds; r++)
                tmp[r] = vals[((size_t)k * rounds + r) * BENCH_MAX_METRICS + m];
            rs->median[m] = median(tmp, rounds);
            rs->ratio[m] = NAN;
            if (base < 0)
                continue;
            for (int r = 0; r < rounds; r++)
                tmp[r] = vals[((size_t)k * rounds + r) * BENCH_MAX_METRICS + m] /
                         vals[((size_t)base * rounds + r) * BENCH_MAX_METRICS + m];
            rs->ratio[m] = median(tmp, rounds);
        }
    }
    free(vals);
    free(tmp);
    bench_print_table(o->table, s, c, res, nres);
    if (json)
        bench_print_json(json, s, c, res, nres);
}

void bench_run_scenario(const bench_scenario *s, const bench_options *o, FILE *json)
{
    bench_case cases[BENCH_MAX_CASES];
    bench_impl impls[BENCH_MAX_IMPLS];
    int ncases = s->cases(cases, o->quick);
    int nimpls = s->impls(impls);
    for (int i = 0; i < ncases; i++)
        run_case(s, &cases[i], impls, nimpls, o, json);
}

/*
 * bench/main.c — kart-bench's command line.
 *
 *   kart-bench [--quick | --smoke] [--seed N] [--json FILE|-] [--list]
 *              [--impl A,B,...] [--rounds N] [--baseline IMPL] [--plot DIR]
 *              [SCENARIO ...]
 *
 * Runs the named scenarios (all of them by default), each against every
 * implementation that starts here, and prints a table per case. With
 * --json, one JSON object per line per (case, implementation, metric) goes
 * to FILE, or to stdout with "-" (the tables then go to stderr so that
 * stdout stays parseable); the first line is the run's: seed, machine,
 * build and peers. --seed repeats a run's round orders (its header prints
 * the seed it drew). --plot DIR then draws the JSON (--json FILE, or
 * DIR/bench.json) as one SVG chart per scenario in DIR (scripts/bench-plot,
 * gnuplot; bench/plot.h). --smoke runs every implementation of every case once,
 * briefly, and prints what ran and what was skipped and why: a check that
 * everything works, not a measurement. Exit status: 0; 1 when a run failed
 * its correctness check (named as scenario/implementation) or a
 * measurement failed, or --plot could not draw; 2 for a bad command line.
 */
#include "harness.h"
#include "plot.h"

#include <errno.h>
#include <kart.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const bench_scenario *const scenarios[] = {
#define BENCH_SCENARIO(name) &bench_##name,
#include "scenarios.h"
#undef BENCH_SCENARIO
};
#define NSCENARIOS ((int)(sizeof(scenarios) / sizeof(*scenarios)))

static void usage(FILE *out)
{
    fprintf(out, "usage: kart-bench [--quick | --smoke] [--seed N] [--json FILE|-] [--list]\n"
                 "                  [--impl A,B,...] [--rounds N] [--baseline IMPL] [--plot DIR]\n"
                 "                  [SCENARIO ...]\n"
                 "  --quick   fewer, shorter rounds (make bench)\n"
                 "  --smoke   every implementation once, briefly: does it all run? (make "
                 "bench-smoke)\n"
                 "  --seed N  the round orders' seed, 0 to 2^53-1 (default: drawn, and printed)\n"
                 "  --plot DIR  then draw the JSON (--json FILE, or DIR/bench.json) as SVG charts\n"
                 "            in DIR, one per scenario (scripts/bench-plot; needs gnuplot)\n"
                 "scenarios:");
    for (int i = 0; i < NSCENARIOS; i++)
        fprintf(out, " %s", scenarios[i]->name);
    fprintf(out, "\n");
}

__attribute__((noreturn, format(printf, 1, 2))) static void bad_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "kart-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    usage(stderr);
    exit(2);
}

static const bench_scenario *find_scenario(const char *name)
{
    for (int i = 0; i < NSCENARIOS; i++)
        if (strcmp(scenarios[i]->name, name) == 0)
            return scenarios[i];
    return NULL;
}

static void list(const bench_scenario *const *sel, int n)
{
    for (int i = 0; i < n; i++) {
        const bench_scenario *s = sel[i];
        bench_case cases[BENCH_MAX_CASES];
        bench_impl impls[BENCH_MAX_IMPLS];
        char label[128];
        printf("%s: %s\n  baseline: %s\n  cases:", s->name, s->summary, s->baseline);
        int nc = s->cases(cases, false);
        for (int c = 0; c < nc; c++)
            printf("%s %s", c ? "," : "", bench_case_label(&cases[c], label, sizeof(label)));
        nc = s->cases(cases, true);
        printf("\n  quick cases:");
        for (int c = 0; c < nc; c++)
            printf("%s %s", c ? "," : "", bench_case_label(&cases[c], label, sizeof(label)));
        printf("\n  implementations (ratios to the baseline unless a peer is named):\n");
        int ni = s->impls(impls), w = 0;
        for (int k = 0; k < ni; k++)
            w = (int)strlen(impls[k].name) > w ? (int)strlen(impls[k].name) : w;
        nc = s->cases(cases, false);
        for (int k = 0; k < ni; k++) {
            const bench_impl *im = &impls[k];
            printf("    %-*s %s", w, im->name, im->skip ? "unavailable here: " : "available");
            if (im->skip) {
                printf("%s\n", im->skip);
                continue;
            }
            if (im->modes[0]) {
                printf(", modes:");
                for (int m = 0; im->modes[m]; m++)
                    printf(" %s", im->modes[m]);
            }
            if (im->peer)
                printf(", ratios to %s%s", strncmp(im->peer, "best:", 5) == 0 ? "the best of " : "",
                       strncmp(im->peer, "best:", 5) == 0 ? im->peer + 5
                       : strchr(im->peer, ',')            ? ""
                                                          : im->peer);
            if (im->peer && strncmp(im->peer, "best:", 5) != 0 && strchr(im->peer, ','))
                printf("the best of %s", im->peer);
            int in = 0;
            for (int c = 0; c < nc; c++)
                in += !s->runs || s->runs(&cases[c], im);
            if (in < nc)
                printf(", runs %d of the %d cases", in, nc);
            printf("\n");
            /* Cases it belongs to but cannot run here, and why. */
            for (int c = 0; c < nc && s->unavailable; c++) {
                const char *why =
                    (!s->runs || s->runs(&cases[c], im)) ? s->unavailable(&cases[c], im) : NULL;
                if (why)
                    printf("    %-*s   unavailable here for %s: %s\n", w, "",
                           bench_case_label(&cases[c], label, sizeof(label)), why);
            }
        }
    }
}

/* Splits "a,b,c" into a NULL-terminated array (the string is modified). */
static const char **split(char *s)
{
    size_t n = 2;
    for (char *p = s; *p; p++)
        n += *p == ',';
    const char **v = calloc(n, sizeof(*v));
    if (!v)
        bad_usage("out of memory");
    size_t k = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
        v[k++] = tok;
    return v;
}

/* Whether some selected scenario has an implementation of this name. */
static bool impl_known(const bench_scenario *const *sel, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        bench_impl impls[BENCH_MAX_IMPLS];
        int ni = sel[i]->impls(impls);
        for (int k = 0; k < ni; k++)
            if (strcmp(impls[k].name, name) == 0)
                return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    bench_options o = {.table = stdout};
    const char **only = NULL;
    const char *json_path = NULL, *plot_dir = NULL;
    char *plot_json = NULL;
    bool do_list = false, seeded = false;
    const bench_scenario *sel[NSCENARIOS];
    int nsel = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) {
            o.quick = true;
        } else if (strcmp(a, "--smoke") == 0) {
            o.smoke = true;
        } else if (strcmp(a, "--list") == 0) {
            do_list = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0 || strcmp(a, "--impl") == 0 ||
                   strcmp(a, "--rounds") == 0 || strcmp(a, "--baseline") == 0 ||
                   strcmp(a, "--seed") == 0 || strcmp(a, "--plot") == 0) {
            if (i + 1 >= argc)
                bad_usage("%s needs a value", a);
            char *v = argv[++i];
            if (a[2] == 's') {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(v, &end, 10);
                /* Below 2^53, so that a JSON reader keeps every digit. */
                if (*v < '0' || *v > '9' || *end != '\0' || errno || n >= (1ull << 53))
                    bad_usage("--seed takes a number from 0 to 2^53-1, not '%s'", v);
                o.seed = n;
                seeded = true;
            } else if (a[2] == 'j') {
                json_path = v;
            } else if (a[2] == 'p') {
                plot_dir = v;
            } else if (a[2] == 'i') {
                free(only);
                o.only = only = split(v);
                if (!only[0])
                    bad_usage("--impl needs at least one name");
            } else if (a[2] == 'b') {
                o.baseline = v;
            } else {
                char *end;
                long r = strtol(v, &end, 10);
                if (*v == '\0' || *end != '\0' || r < 1 || r > 1000)
                    bad_usage("--rounds takes a number from 1 to 1000, not '%s'", v);
                o.rounds = (int)r;
            }
        } else if (a[0] == '-') {
            bad_usage("unknown option '%s'", a);
        } else {
            const bench_scenario *s = find_scenario(a);
            if (!s)
                bad_usage("unknown scenario '%s'", a);
            bool dup = false;
            for (int k = 0; k < nsel; k++)
                dup |= sel[k] == s;
            if (!dup)
                sel[nsel++] = s;
        }
    }
    if (nsel == 0)
        for (int i = 0; i < NSCENARIOS; i++)
            sel[nsel++] = scenarios[i];

    for (const char *const *p = o.only; p && *p; p++)
        if (!impl_known(sel, nsel, *p))
            bad_usage("unknown implementation '%s' for the scenarios chosen "
                      "(--list names them)",
                      *p);
    if (o.baseline && !impl_known(sel, nsel, o.baseline))
        bad_usage("unknown baseline implementation '%s'", o.baseline);

    if (do_list) {
        list(sel, nsel);
        return 0;
    }

    /* --plot: a smoke run measures nothing to draw, and the script reads
     * a file; whether gnuplot is there is asked before the run, not after. */
    if (plot_dir && o.smoke)
        bad_usage("--plot draws measurements: --smoke takes none");
    if (plot_dir && json_path && strcmp(json_path, "-") == 0)
        bad_usage("--plot reads the JSON from a file: --json FILE, or no --json (DIR/bench.json)");
    if (plot_dir && (bench_plot_check() != 0 ||
                     (!json_path && !(json_path = plot_json = bench_plot_json_path(plot_dir))))) {
        free(only);
        return 1;
    }

    FILE *json = NULL;
    if (json_path && strcmp(json_path, "-") == 0) {
        json = stdout;
        o.table = stderr;
    } else if (json_path) {
        json = fopen(json_path, "w");
        if (!json) {
            fprintf(stderr, "kart-bench: cannot write %s: %s\n", json_path, kart_strerror(-errno));
            free(plot_json);
            free(only);
            return 2;
        }
    }

    if (!seeded) /* below 10^9: short enough to type back */
        o.seed = ((uint64_t)bench_now_ns() ^ ((uint64_t)getpid() << 20)) % 1000000000u;
    const char *mode = o.smoke ? " --smoke" : o.quick ? " --quick" : "";
    fprintf(o.table,
            "kart-bench%s, seed %llu (kart-bench%s --seed %llu repeats the round orders)\n", mode,
            (unsigned long long)o.seed, mode, (unsigned long long)o.seed);
    bench_env_print(o.table);
    if (json)
        bench_env_json(json, &o);
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < nsel; i++)
        bench_run_scenario(sel[i], &o, json);
    if (json && json != stdout && fclose(json) != 0) {
        fprintf(stderr, "kart-bench: writing %s failed\n", json_path);
        free(plot_json);
        free(only);
        return 1;
    }
    /* Drawn even when a measurement failed: the chart marks it "error". */
    bool plot_failed = plot_dir && bench_plot(json_path, plot_dir) != 0;
    free(plot_json);
    free(only);
    double took = (double)(bench_now_ns() - t0) / 1e9;
    if (bench_errors() > 0) {
        fprintf(stderr, "kart-bench: %d measurement%s failed (each named above); %.0f s\n",
                bench_errors(), bench_errors() == 1 ? "" : "s", took);
        return 1;
    }
    if (plot_failed) {
        fprintf(stderr, "kart-bench: --plot: no charts drawn in %s (said why above); %.0f s\n",
                plot_dir, took);
        return 1;
    }
    if (o.smoke)
        fprintf(o.table,
                "kart-bench --smoke: every implementation that is not skipped ran, "
                "without an error (%.0f s)\n",
                took);
    else
        fprintf(stderr, "kart-bench: %.0f s\n", took);
    return 0;
}

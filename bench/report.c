/*
 * bench/report.c — what kart-bench prints: a table per case for people,
 * one JSON object per line per (case, implementation, metric) for tools,
 * and --smoke's one line per case. (The header, where the figures come
 * from, is env.c's.)
 *
 * Ratios are always value / baseline value (the median of the per-round
 * ratios), followed by the lowest and highest per-round ratio; "~" marks a
 * ratio whose range holds 1.0 (no difference shown), "client-bound"
 * replaces the throughput ratio of a case the load generator capped. Each
 * metric says whether higher or lower is better, so a ratio reads the
 * right way round without guessing.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

const char *bench_case_label(const bench_case *c, char *buf, int size)
{
    int len = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->nparams && len < size; i++)
        len += snprintf(buf + len, (size_t)(size - len), "%s%s=%ld", i ? " " : "", c->params[i].key,
                        c->params[i].value);
    return buf;
}

/* 1234567.8 -> "1,234,568"; small values keep decimals. */
static const char *fmt_value(double v, char *buf, size_t size)
{
    if (fabs(v) < 100) {
        snprintf(buf, size, "%.2f", v);
        return buf;
    }
    char raw[64];
    snprintf(raw, sizeof(raw), "%.0f", v);
    size_t n = strlen(raw), j = 0;
    for (size_t i = 0; i < n && j + 2 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = raw[i];
    }
    buf[j] = '\0';
    return buf;
}

/* The ratio cell of row r, metric m: "1.02x ~ 0.97-1.08". */
static const char *fmt_ratio(const bench_scenario *s, const bench_result *r, int m, char *buf,
                             size_t size)
{
    if (isnan(r->median[m]))
        snprintf(buf, size, "%s", "");
    else if (s->descriptive >> m & 1)
        snprintf(buf, size, "%s", bench_flagged(s, r, m) ? s->flag[m] : "");
    else if (r->client_bound && (s->client_capped >> m & 1))
        snprintf(buf, size, "client-bound");
    else if (isnan(r->ratio[m]))
        snprintf(buf, size, "-");
    else if (strcmp(r->baseline, r->impl->name) == 0 || r->rounds < 2)
        snprintf(buf, size, "%.2fx", r->ratio[m]);
    else
        snprintf(buf, size, "%.2fx %c %.2f-%.2f", r->ratio[m],
                 bench_no_difference(r, m) ? '~' : ' ', r->ratio_min[m], r->ratio_max[m]);
    return buf;
}

void bench_print_table(FILE *out, const bench_scenario *s, const bench_case *c,
                       const bench_result *r, int n)
{
    char label[128], v[64], q[64];
    int rounds = 0;
    /* One baseline for every row that has one, or each row's own peer
     * (then named at the end of the row). */
    const char *baseline = NULL;
    bool mixed = false, tilde = false, capped = false, errors = false, busy = false;
    for (int i = 0; i < n; i++) {
        rounds = r[i].rounds > rounds ? r[i].rounds : rounds;
        if (r[i].baseline && baseline && strcmp(r[i].baseline, baseline) != 0)
            mixed = true;
        if (r[i].baseline && !baseline)
            baseline = r[i].baseline;
        if (r[i].impl->skip)
            continue;
        errors |= r[i].error[0] != '\0';
        busy |= !isnan(r[i].load_busy) || !isnan(r[i].server_busy);
        for (int m = 0; m < s->nmetrics; m++) {
            bool cb = r[i].client_bound && (s->client_capped >> m & 1);
            capped |= cb;
            tilde |= !cb && bench_no_difference(&r[i], m);
        }
    }
    fprintf(out, "\n%s %s (%d round%s; ", s->name, bench_case_label(c, label, sizeof(label)),
            rounds, rounds == 1 ? "" : "s");
    if (mixed)
        fprintf(out, "ratio: median of per-round ratios to the peer after 'vs', "
                     "then the lowest-highest)\n");
    else if (baseline)
        fprintf(out, "ratio: median of per-round ratios to %s, then the lowest-highest)\n",
                baseline);
    else
        fprintf(out, "no ratios: the baseline did not run)\n");
    for (int m = 0; m < s->nmetrics; m++)
        fprintf(out, "  %s: %s, %s is better%s%s%s\n", s->metrics[m].name, s->metrics[m].unit,
                s->metrics[m].higher_better ? "higher" : "lower", s->metric_note[m] ? " (" : "",
                s->metric_note[m] ? s->metric_note[m] : "", s->metric_note[m] ? ")" : "");
    int w = 12; /* the name column: as wide as the longest name */
    for (int i = 0; i < n; i++)
        w = (int)strlen(r[i].impl->name) > w ? (int)strlen(r[i].impl->name) : w;
    /* Each ratio column as wide as its widest cell. */
    int rw[BENCH_MAX_METRICS];
    for (int m = 0; m < s->nmetrics; m++) {
        /* A descriptive metric's cell holds its flag, if any. */
        rw[m] = s->descriptive >> m & 1 ? 0 : 17;
        for (int i = 0; i < n; i++)
            if (!r[i].impl->skip && (int)strlen(fmt_ratio(s, &r[i], m, q, sizeof(q))) > rw[m])
                rw[m] = (int)strlen(q);
    }
    fprintf(out, "  %-*s", w, "impl");
    for (int m = 0; m < s->nmetrics; m++)
        fprintf(out, " %14s %-*s", s->metrics[m].name, rw[m],
                s->descriptive >> m & 1 ? "" : "ratio  range");
    fprintf(out, " mode%s\n", busy ? " (CPU busy: load generator, server)" : "");
    for (int i = 0; i < n; i++) {
        fprintf(out, "  %-*s", w, r[i].impl->name);
        if (r[i].impl->skip) {
            fprintf(out, " skipped (%s)\n", r[i].impl->skip);
            continue;
        }
        for (int m = 0; m < s->nmetrics; m++)
            fprintf(out, " %14s %-*s",
                    isnan(r[i].median[m]) ? "error" : fmt_value(r[i].median[m], v, sizeof(v)),
                    rw[m], fmt_ratio(s, &r[i], m, q, sizeof(q)));
        fprintf(out, " %s", r[i].mode ? r[i].mode : "");
        if (mixed && r[i].baseline && strcmp(r[i].baseline, r[i].impl->name) != 0)
            fprintf(out, "%svs %s", r[i].mode ? " " : "", r[i].baseline);
        if (r[i].baseline && r[i].baseline_of)
            fprintf(out, " (the best of %s)", r[i].baseline_of);
        if (!isnan(r[i].load_busy) || !isnan(r[i].server_busy))
            fprintf(out, " (%.0f%%, %.0f%%)", 100 * r[i].load_busy, 100 * r[i].server_busy);
        fprintf(out, "\n");
    }
    if (tilde)
        fprintf(out, "  ~ the per-round ratios fall on both sides of 1.00: no difference shown\n");
    for (int m = 0; m < s->nmetrics; m++) {
        bool flagged = false;
        for (int i = 0; i < n; i++)
            flagged |= !r[i].impl->skip && bench_flagged(s, &r[i], m);
        if (flagged)
            fprintf(out, "  %s: %s above %.2f\n", s->flag[m], s->metrics[m].name, s->flag_above[m]);
    }
    if (capped)
        fprintf(out,
                "  client-bound: the load generator kept its CPU %.0f%% busy and the server did "
                "not, in most rounds (of this row or its baseline): the throughput ratio is not "
                "a result\n",
                100 * BENCH_SATURATED);
    if (errors)
        for (int i = 0; i < n; i++)
            if (!r[i].impl->skip && r[i].error[0])
                fprintf(out, "  error: %s: %s\n", r[i].impl->name, r[i].error);
    fflush(out);
}

void bench_print_smoke(FILE *out, const bench_scenario *s, const bench_case *c,
                       const bench_result *r, int n)
{
    char label[128];
    fprintf(out, "%s %s:", s->name, bench_case_label(c, label, sizeof(label)));
    for (int i = 0; i < n; i++)
        if (!r[i].impl->skip) {
            /* Every mode ran once: "kart-epoll(level+edge)". */
            fprintf(out, " %s", r[i].impl->name);
            for (int m = 0; r[i].impl->modes[m]; m++)
                fprintf(out, "%s%s", m ? "+" : "(", r[i].impl->modes[m]);
            fprintf(out, "%s", r[i].impl->modes[0] ? ")" : "");
        }
    fprintf(out, " ran");
    for (int i = 0; i < n; i++)
        if (r[i].impl->skip)
            fprintf(out, "; %s skipped: %s", r[i].impl->name, r[i].impl->skip);
    for (int i = 0; i < n; i++)
        if (!r[i].impl->skip && r[i].error[0])
            fprintf(out, "; %s FAILED: %s", r[i].impl->name, r[i].error);
    fprintf(out, "\n");
    fflush(out);
}

/* Strings in the output are names and error texts; escape what JSON
 * requires anyway, so that an odd skip reason cannot break a line. */
static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static void json_head(FILE *out, const bench_scenario *s, const bench_result *r)
{
    fprintf(out, "{\"scenario\":");
    json_str(out, s->name);
    fprintf(out, ",\"impl\":");
    json_str(out, r->impl->name);
}

static void json_params(FILE *out, const bench_case *c)
{
    fprintf(out, ",\"params\":{");
    for (int i = 0; i < c->nparams; i++) {
        fprintf(out, "%s", i ? "," : "");
        json_str(out, c->params[i].key);
        fprintf(out, ":%ld", c->params[i].value);
    }
    fprintf(out, "}");
}

/* A number, or null where it is NaN (JSON has no NaN). */
static void json_num(FILE *out, const char *key, const char *fmt, double v)
{
    fprintf(out, ",\"%s\":", key);
    if (isnan(v))
        fprintf(out, "null");
    else
        fprintf(out, fmt, v);
}

/*
 * One line per (case, impl, metric). An implementation that was skipped
 * gets one line with "skipped" and no value, so that a consumer can tell
 * "not run here" from "not part of the scenario". A metric that could not
 * be measured has "value":null and "error". The run's own line (env.c)
 * comes first and carries the same "seed".
 */
void bench_print_json(FILE *out, const bench_scenario *s, const bench_case *c,
                      const bench_result *r, int n, const bench_options *o)
{
    for (int i = 0; i < n; i++) {
        if (r[i].impl->skip) {
            json_head(out, s, &r[i]);
            json_params(out, c);
            fprintf(out, ",\"skipped\":");
            json_str(out, r[i].impl->skip);
            fprintf(out, ",\"seed\":%llu}\n", (unsigned long long)o->seed);
            continue;
        }
        for (int m = 0; m < s->nmetrics; m++) {
            const bench_metric *mt = &s->metrics[m];
            json_head(out, s, &r[i]);
            fprintf(out, ",\"metric\":\"%s\"", mt->name);
            json_num(out, "value", "%.3f", r[i].median[m]);
            fprintf(out, ",\"unit\":\"%s\",\"better\":\"%s\"", mt->unit,
                    mt->higher_better ? "higher" : "lower");
            json_params(out, c);
            if (r[i].baseline && !isnan(r[i].ratio[m])) {
                fprintf(out, ",\"ratio\":%.4f,\"ratio_min\":%.4f,\"ratio_max\":%.4f", r[i].ratio[m],
                        r[i].ratio_min[m], r[i].ratio_max[m]);
                fprintf(out, ",\"no_difference\":%s",
                        bench_no_difference(&r[i], m) ? "true" : "false");
                fprintf(out, ",\"baseline\":");
                json_str(out, r[i].baseline);
                if (r[i].baseline_of) {
                    fprintf(out, ",\"baseline_best_of\":");
                    json_str(out, r[i].baseline_of);
                }
            }
            if (s->descriptive >> m & 1)
                fprintf(out, ",\"descriptive\":true");
            if (bench_flagged(s, &r[i], m)) {
                fprintf(out, ",\"flag\":");
                json_str(out, s->flag[m]);
            }
            if (!isnan(r[i].load_busy) || !isnan(r[i].server_busy)) {
                json_num(out, "load_busy", "%.3f", r[i].load_busy);
                json_num(out, "server_busy", "%.3f", r[i].server_busy);
                fprintf(out, ",\"client_bound_rounds\":%d", r[i].client_bound_rounds);
                if (s->client_capped >> m & 1)
                    fprintf(out, ",\"client_bound\":%s", r[i].client_bound ? "true" : "false");
            }
            if (isnan(r[i].median[m]) && r[i].error[0]) {
                fprintf(out, ",\"error\":");
                json_str(out, r[i].error);
            }
            fprintf(out, ",\"rounds\":%d", r[i].rounds);
            if (r[i].mode)
                fprintf(out, ",\"mode\":\"%s\"", r[i].mode);
            fprintf(out, ",\"seed\":%llu%s}\n", (unsigned long long)o->seed,
                    o->smoke ? ",\"smoke\":true" : "");
        }
    }
    fflush(out);
}

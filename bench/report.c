/*
 * bench/report.c — what kart-bench prints: a table per case for people,
 * one JSON object per line per (case, implementation, metric) for tools,
 * and the machine line that says where the figures come from.
 *
 * Ratios are always value / baseline value (the median of the per-round
 * ratios); each metric says whether higher or lower is better, so a ratio
 * reads the right way round without guessing.
 */
#include "harness.h"

#include <kart.h>
#include <math.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

const char *bench_case_label(const bench_case *c, char *buf, int size)
{
    int len = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->nparams && len < size; i++)
        len += snprintf(buf + len, (size_t)(size - len), "%s%s=%ld", i ? " " : "", c->params[i].key,
                        c->params[i].value);
    return buf;
}

static void cpu_model(char *buf, size_t size)
{
    snprintf(buf, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        /* x86 says "model name", arm64 only "CPU part"; take the first. */
        if (strncmp(line, "model name", 10) != 0)
            continue;
        char *v = strchr(line, ':');
        if (v) {
            v += strspn(v + 1, " \t") + 1;
            v[strcspn(v, "\n")] = '\0';
            snprintf(buf, size, "%s", v);
        }
        break;
    }
    fclose(f);
}

const char *bench_machine(void)
{
    static char buf[512];
    char cpu[200];
    struct utsname u;
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    cpu_model(cpu, sizeof(cpu));
    if (uname(&u) != 0)
        snprintf(u.release, sizeof(u.release), "?");
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    snprintf(buf, sizeof(buf), "%s, %ld CPUs, %s %s, %s, kart %s", cpu,
             sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, date, kart_version_string());
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

void bench_print_table(FILE *out, const bench_scenario *s, const bench_case *c,
                       const bench_result *r, int n)
{
    char label[128], v[64];
    int rounds = 0;
    /* One baseline for every row that has one, or each row's own peer
     * (then named at the end of the row). */
    const char *baseline = NULL;
    bool mixed = false;
    for (int i = 0; i < n; i++) {
        rounds = r[i].rounds > rounds ? r[i].rounds : rounds;
        if (r[i].baseline && baseline && strcmp(r[i].baseline, baseline) != 0)
            mixed = true;
        if (r[i].baseline && !baseline)
            baseline = r[i].baseline;
    }
    fprintf(out, "\n%s %s (%d round%s; ", s->name, bench_case_label(c, label, sizeof(label)),
            rounds, rounds == 1 ? "" : "s");
    if (mixed)
        fprintf(out, "ratio: median of per-round ratios to the peer after 'vs')\n");
    else if (baseline)
        fprintf(out, "ratio: median of per-round ratios to %s)\n", baseline);
    else
        fprintf(out, "no ratios: the baseline did not run)\n");
    for (int m = 0; m < s->nmetrics; m++)
        fprintf(out, "  %s: %s, %s is better\n", s->metrics[m].name, s->metrics[m].unit,
                s->metrics[m].higher_better ? "higher" : "lower");
    int w = 12; /* the name column: as wide as the longest name */
    for (int i = 0; i < n; i++)
        w = (int)strlen(r[i].impl->name) > w ? (int)strlen(r[i].impl->name) : w;
    fprintf(out, "  %-*s", w, "impl");
    for (int m = 0; m < s->nmetrics; m++)
        fprintf(out, " %18s %6s", s->metrics[m].name, "ratio");
    fprintf(out, "  mode\n");
    for (int i = 0; i < n; i++) {
        fprintf(out, "  %-*s", w, r[i].impl->name);
        if (r[i].impl->skip) {
            fprintf(out, " skipped (%s)\n", r[i].impl->skip);
            continue;
        }
        for (int m = 0; m < s->nmetrics; m++) {
            fprintf(out, " %18s", fmt_value(r[i].median[m], v, sizeof(v)));
            if (isnan(r[i].ratio[m]))
                fprintf(out, " %6s", "-");
            else
                fprintf(out, " %5.2fx", r[i].ratio[m]);
        }
        fprintf(out, "  %s", r[i].mode ? r[i].mode : "");
        if (mixed && r[i].baseline && strcmp(r[i].baseline, r[i].impl->name) != 0)
            fprintf(out, "vs %s", r[i].baseline);
        fprintf(out, "\n");
    }
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

/*
 * One line per (case, impl, metric). An implementation that was skipped
 * gets one line with "skipped" and no value, so that a consumer can tell
 * "not run here" from "not part of the scenario".
 */
void bench_print_json(FILE *out, const bench_scenario *s, const bench_case *c,
                      const bench_result *r, int n)
{
    for (int i = 0; i < n; i++) {
        if (r[i].impl->skip) {
            json_head(out, s, &r[i]);
            json_params(out, c);
            fprintf(out, ",\"skipped\":");
            json_str(out, r[i].impl->skip);
            fprintf(out, "}\n");
            continue;
        }
        for (int m = 0; m < s->nmetrics; m++) {
            const bench_metric *mt = &s->metrics[m];
            json_head(out, s, &r[i]);
            fprintf(out, ",\"metric\":\"%s\",\"value\":%.3f,\"unit\":\"%s\",\"better\":\"%s\"",
                    mt->name, r[i].median[m], mt->unit, mt->higher_better ? "higher" : "lower");
            json_params(out, c);
            if (r[i].baseline && !isnan(r[i].ratio[m])) {
                fprintf(out, ",\"ratio\":%.4f,\"baseline\":", r[i].ratio[m]);
                json_str(out, r[i].baseline);
            }
            fprintf(out, ",\"rounds\":%d", r[i].rounds);
            if (r[i].mode)
                fprintf(out, ",\"mode\":\"%s\"", r[i].mode);
            fprintf(out, "}\n");
        }
    }
    fflush(out);
}

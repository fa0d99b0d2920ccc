/*
 * bench/plot.h — kart-bench --plot DIR: the run's JSON drawn as one SVG
 * chart per scenario in DIR, by scripts/bench-plot (Python and gnuplot;
 * docs/bench.md, "Charts"). kart-bench only runs the script: the charts
 * are the script's, the same as `make bench-plot` draws.
 *
 * The script is the one of the source tree kart-bench was built from
 * (KART_BENCH_PLOT_SCRIPT, set by the Makefile); KART_BENCH_PLOT in the
 * environment names another.
 */
#ifndef KART_BENCH_PLOT_H
#define KART_BENCH_PLOT_H

/* Asks the script whether it can draw here (gnuplot installed, new enough)
 * before the run, so that a missing gnuplot is said in a second, not after
 * the run's minutes. Returns 0, or -1 once the script (or this, when the
 * script does not start) has said why on stderr. */
int bench_plot_check(void);

/* The JSON file of a --plot run without --json: DIR/bench.json, making DIR
 * (one level) when it is not there. Returns a malloc'd path, or NULL after
 * saying why on stderr (DIR cannot be made, out of memory). */
char *bench_plot_json_path(const char *dir);

/* Draws json into dir: DIR/<scenario>.svg. Returns 0, or -1 once the
 * script (or this) has said why on stderr. */
int bench_plot(const char *json, const char *dir);

#endif

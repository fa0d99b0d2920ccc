/*
 * bench/servers.h — server processes for the echo and http scenarios.
 *
 * Each implementation under test runs as a process of its own, pinned to
 * CPU 0, started once (lazily, when its first round comes) and kept up
 * across rounds so that the harness can interleave implementations; every
 * one still running is killed when kart-bench exits. A server is either a
 * function run in a forked child (the hand-written peers) or a program
 * exec'd (kart's own examples, nginx), so that what is measured for kart
 * is the shipped example itself.
 *
 * Its CPU time is read from the process's CPU clock (clock_getcpuclockid:
 * every thread, in nanoseconds, where /proc/<pid>/stat has clock ticks).
 * The softirq work of its CPU (the network stack's receive and transmit
 * processing, inline or in ksoftirqd) is read beside it from /proc/stat
 * and added to the server's CPU figure: it is the server's load on its
 * core, and a server that makes more of it is not cheaper for hiding it
 * there. The two are reported apart as well.
 */
#ifndef KART_BENCH_SERVERS_H
#define KART_BENCH_SERVERS_H

#include "harness.h"

#include <stdint.h>
#include <sys/types.h>

typedef struct bench_server {
    char key[64]; /* "echo/raw-epoll": one instance per key */
    pid_t pid;    /* the process whose CPU counts (nginx: its worker) */
    pid_t leader; /* the process started (and killed at exit); negative:
                    * a process group */
    int port;
    int64_t rss_fresh_kib; /* resident memory right after it started */
    bool graceful;         /* kart's example servers: stopped with SIGTERM, they
                    * print their I/O counters (--stats) as they exit */
} bench_server;

/* A server body for a forked child: serves the listening socket lfd
 * forever (it is killed at exit). */
typedef void (*bench_server_fn)(int lfd);

/* The instance under key, or NULL if not started yet. */
bench_server *bench_server_find(const char *key);

/* Starts fn in a child pinned to CPU 0 on a fresh listening socket on
 * 127.0.0.1 (an ephemeral port), once per key. */
bench_server *bench_server_fork(const char *key, bench_server_fn fn);

/* The same for a server whose set-up (rings, buffer pools) belongs in its
 * "fresh" memory, as an exec'd server's does: fn calls
 * bench_server_ready() once set up, and the fresh resident memory is read
 * then. A fn that exits before that fails the start. */
bench_server *bench_server_fork_late(const char *key, bench_server_fn fn);

/* In a server started by bench_server_fork_late(): it is set up and
 * serving from now on. Does nothing after the first call, or elsewhere. */
void bench_server_ready(void);

/* Execs argv in a child pinned to CPU 0, once per key; the program prints
 * its port as the first line on stdout when it is ready (that line must
 * hold a number, possibly after other words). */
bench_server *bench_server_exec(const char *key, char *const argv[]);

/* Records an already started process (pid; leader is what to kill). */
bench_server *bench_server_adopt(const char *key, pid_t leader, pid_t pid, int port);

/* The CPU time of a process so far, in ns, over all its threads; -1 when
 * it is gone. */
int64_t bench_proc_cpu_ns(pid_t pid);

/* The softirq time of a CPU so far, ns, from /proc/stat (whose unit is
 * the clock tick, USER_HZ: 10 ms on Linux); cpu is taken modulo the CPUs
 * online, as bench_pin_cpu() takes it. -1 when it cannot be read. */
int64_t bench_cpu_softirq_ns(int cpu);

/* The notes of the two CPU metrics (bench_metric.note). */
#define BENCH_NOTE_CPU "the server process's CPU time + its CPU's softirq time"
#define BENCH_NOTE_PROC "the server process's CPU time alone"

/* The figures of one measured window of a server under load. */
typedef struct bench_window {
    double seconds;      /* the window's length */
    double requests;     /* completed in it */
    int64_t server_ns;   /* the server process's CPU time */
    int64_t server_sirq; /* softirq time of the server's CPU (-1: unknown) */
    int64_t load_ns;     /* the load generator's CPU time (-1: unknown) */
    int64_t load_sirq;   /* softirq time of the load generator's CPU */
} bench_window;

/* Fills ctx->value[cpu_m] with the server's CPU (process + softirq of its
 * CPU) per request in microseconds, ctx->value[proc_m] with the process's
 * alone, and ctx->server_busy / load_busy with the shares of their cores
 * each side kept busy. A process clock that did not move over a window
 * that served requests is a failed measurement (bench_metric_error), not
 * a tiny figure. */
void bench_window_report(bench_ctx *ctx, const bench_window *w, int cpu_m, int proc_m);

/* Resident memory of a process, KiB; -1 when it is gone. */
int64_t bench_proc_rss_kib(pid_t pid);

/* Pins the calling thread to cpu (modulo the CPUs there are); returns 0 or
 * -errno. */
int bench_pin_cpu(int cpu);

/* Path of a program built next to kart-bench (build/<rel>), in buf; NULL
 * if it is not there. */
const char *bench_sibling_path(const char *rel, char *buf, size_t size);

/* Marks kart-select skipped among the n implementations: select(2) is
 * bounded by FD_SETSIZE, no backend for servers of many connections. The
 * echo and http scenarios run kart on uring, epoll and poll. */
void bench_skip_select(bench_impl *impls, int n);

/* Raises RLIMIT_NOFILE's soft limit to at least want (up to the hard
 * limit); returns the new soft limit. */
long bench_raise_nofile(long want);

#endif

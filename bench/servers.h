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
 * Its CPU time is read from /proc/<pid>/task/<tid>/schedstat, summed over
 * its threads: nanoseconds, where /proc/<pid>/stat has clock ticks.
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

/* Execs argv in a child pinned to CPU 0, once per key; the program prints
 * its port as the first line on stdout when it is ready (that line must
 * hold a number, possibly after other words). */
bench_server *bench_server_exec(const char *key, char *const argv[]);

/* Records an already started process (pid; leader is what to kill). */
bench_server *bench_server_adopt(const char *key, pid_t leader, pid_t pid, int port);

/* The CPU time of a process so far, in ns, over all its threads; -1 when
 * it is gone. */
int64_t bench_proc_cpu_ns(pid_t pid);

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

/*
 * bench/loadgen.h — the echo load generator: a separate process pinned to
 * CPU 1 (the servers run on CPU 0) that drives many non-blocking TCP
 * connections from one epoll loop, keeps `pipeline` requests in flight on
 * each, and checks every byte that comes back.
 *
 * Every connection sends a stream cut from one fixed pseudo-random pattern
 * at its own phase, so a byte lost, duplicated, reordered or crossed over
 * from another connection fails the run (bench_fail) instead of counting.
 * A request is `size` bytes; it is complete when its last byte is back.
 *
 * The generator, not kart-bench, reads the server's CPU time, right where
 * its measured window starts and ends, so that connecting and priming stay
 * out of it; beside it the softirq time of both CPUs and its own CPU time,
 * so that the report can add the network stack's work on the server's
 * core to the server's figure and tell a saturated generator (a
 * client-bound round) from a saturated server.
 */
#ifndef KART_BENCH_LOADGEN_H
#define KART_BENCH_LOADGEN_H

#include "harness.h"

#include <stdint.h>
#include <sys/types.h>

typedef struct lg_params {
    int port; /* 127.0.0.1:port */
    int conns;
    int size;       /* bytes per request */
    int pipeline;   /* requests in flight per connection */
    double seconds; /* length of the measured window */
    pid_t server;   /* the process whose CPU time and memory are read */
} lg_params;

typedef struct lg_result {
    uint64_t requests;      /* completed in the window */
    int64_t ns;             /* the window's length */
    int64_t server_cpu_ns;  /* server CPU time over the window */
    int64_t server_sirq_ns; /* softirq time of the server's CPU (0); -1: unknown */
    int64_t load_cpu_ns;    /* the generator's own CPU time */
    int64_t load_sirq_ns;   /* softirq time of the generator's CPU (1) */
    int64_t server_rss_kib; /* server resident memory with every connection
                             * open and primed (one echo each), before the
                             * window */
    int64_t kernel_kib;     /* growth of the kernel's socket-related slab
                             * caches (/proc/slabinfo) over connecting and
                             * priming, machine-wide: both ends' sockets,
                             * files, epoll and io_uring items. Machine-wide,
                             * so another process freeing such objects
                             * meanwhile can make it negative: a figure to
                             * measure again. LG_KERNEL_UNKNOWN: no
                             * /proc/slabinfo (root only) */
} lg_result;

#define LG_KERNEL_UNKNOWN INT64_MIN

/* Runs one round in a forked child pinned to CPU 1: connects, primes each
 * connection with one checked echo, then measures. bench_fail() on any
 * error or wrong byte. */
void lg_run(const lg_params *p, lg_result *out);

#endif

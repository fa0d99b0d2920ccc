/*
 * bench/echo.c — the `echo` and `echo_hold` scenarios: TCP echo servers on
 * CPU 0 under the load generator (loadgen.c) on CPU 1.
 *
 * On two cores the generator saturates its own, so requests per second
 * alone hardly tells servers apart; each round therefore also reports the
 * server's CPU time per request over the same window, read from the
 * server process's own CPU clock. kart's servers are the shipped example,
 * build/examples/echo-server, exec'd once per backend; the peers
 * (echo_peers.c, and raw-uring in echo_uring_peer.c) are forked. Every
 * server stays up across rounds, so the harness can interleave them round
 * by round. kart-uring's ratios are to raw-uring, the hand-written io_uring
 * server; kart-poll's to raw-poll, the hand-written poll(2) server; every
 * other row's to raw-epoll.
 *
 * `echo_hold` holds many connections at once (10,000 and 100,000; 2,000
 * with --quick), each primed with a checked echo, and reports the
 * server's resident memory per connection (with every connection open,
 * less the fresh server's: user space only), the kernel's apart (the
 * growth of the socket-related slab caches over connecting and priming,
 * both ends of each connection; loadgen.c), and throughput and CPU per request over all of them. The
 * 100,000 need RLIMIT_NOFILE above it (the scenario raises the hard limit
 * where it may) and several loopback source addresses (loadgen.c).
 */
#include "echo_peers.h"
#include "loadgen.h"
#include "servers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* Metrics in echo's order: req/s, CPU (process + softirq), process CPU,
 * and memory per connection (echo_hold reorders them). */
static void run_round(const bench_server *srv, bench_ctx *ctx, int conns, int size, int pipeline)
{
    lg_params p = {.port = srv->port,
                   .conns = conns,
                   .size = size,
                   .pipeline = pipeline,
                   .seconds = ctx->seconds,
                   .server = srv->pid};
    lg_result r;
    /* The kernel's figure is machine-wide: a shrink means another process
     * freed slab objects while this one connected (seen in CI beside a
     * build), so the round is run again, up to twice, and fails only if
     * the figure still cannot be read. */
    for (int attempt = 0; attempt < 3; attempt++) {
        lg_run(&p, &r);
        if (r.kernel_kib >= 0 || r.kernel_kib == LG_KERNEL_UNKNOWN)
            break;
    }
    if (r.requests == 0)
        bench_fail("no request completed");
    ctx->value[0] = (double)r.requests * 1e9 / (double)r.ns;
    bench_window w = {.seconds = (double)r.ns / 1e9,
                      .requests = (double)r.requests,
                      .server_ns = r.server_cpu_ns,
                      .server_sirq = r.server_sirq_ns,
                      .load_ns = r.load_cpu_ns,
                      .load_sirq = r.load_sirq_ns};
    bench_window_report(ctx, &w, 1, 2);
    ctx->value[3] = (double)(r.server_rss_kib - srv->rss_fresh_kib) / conns;
    ctx->value[4] = r.kernel_kib >= 0 ? (double)r.kernel_kib / conns : NAN;
    if (!(ctx->value[4] >= 0)) {
        ctx->value[4] = NAN;
        snprintf(
            ctx->error, sizeof(ctx->error),
            r.kernel_kib == LG_KERNEL_UNKNOWN
                ? "the kernel's memory: /proc/slabinfo unreadable (root only)"
                : "the kernel's memory: the slab caches shrank in 3 tries (%lld KiB the last): "
                  "another process freeing sockets or files meanwhile",
            (long long)r.kernel_kib);
    }
}

static bench_server_fn peer_fn(const char *name)
{
#if KART_BENCH_HAVE_LIBUV
    if (strcmp(name, "libuv") == 0)
        return echo_serve_libuv;
#endif
#if KART_BENCH_HAVE_LIBEVENT
    if (strcmp(name, "libevent") == 0)
        return echo_serve_libevent;
#endif
    if (strcmp(name, "raw-epoll") == 0)
        return echo_serve_raw_epoll;
    if (strcmp(name, "raw-poll") == 0)
        return echo_serve_raw_poll;
    bench_fail("no echo server for %s", name);
}

/* The server of impl for scenario `scen`, started on first use. */
static const bench_server *server_for(const char *scen, const bench_impl *impl)
{
    char key[64];
    snprintf(key, sizeof(key), "%s/%s", scen, impl->name);
    bench_server *s = bench_server_find(key);
    if (s)
        return s;
    if (impl->arg) {
        char path[512];
        if (!bench_sibling_path("examples/echo-server", path, sizeof(path)))
            bench_fail("build/examples/echo-server is not built (make)");
        char backend[32];
        snprintf(backend, sizeof(backend), "%s", impl->arg);
        char *argv[] = {path,        "--port", "0",       "--threads", "1",
                        "--backend", backend,  "--stats", NULL};
        return bench_server_exec(key, argv);
    }
#if KART_HAVE_URING
    /* Its ring and buffer pool count in its fresh memory. */
    if (strcmp(impl->name, "raw-uring") == 0)
        return bench_server_fork_late(key, echo_serve_raw_uring);
#endif
    return bench_server_fork(key, peer_fn(impl->name));
}

static int run_echo(const bench_impl *impl, bench_ctx *ctx)
{
    const bench_server *s = server_for("echo", impl);
    run_round(s, ctx, (int)bench_param_get(ctx->c, "conns"), (int)bench_param_get(ctx->c, "size"),
              (int)bench_param_get(ctx->c, "pipeline"));
    return 0;
}

/* echo_hold's largest case, and the descriptors each process needs for
 * n connections (the generator and the server each hold one per
 * connection, plus their own). */
#define HOLD_MAX 100000
#define HOLD_FDS(n) ((n) + 256)

/* Raises RLIMIT_NOFILE, the hard limit too where allowed (root, up to
 * fs.nr_open), to what HOLD_MAX needs, once: the servers stay up across
 * cases and keep the limit they were started with. Returns the soft
 * limit now. */
static long hold_nofile(void)
{
    static long got;
    if (got)
        return got;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        rl.rlim_max < (rlim_t)HOLD_FDS(HOLD_MAX)) {
        struct rlimit want = {.rlim_cur = rl.rlim_cur, .rlim_max = (rlim_t)HOLD_FDS(HOLD_MAX)};
        setrlimit(RLIMIT_NOFILE, &want); /* EPERM when not root: the cases say so */
    }
    got = bench_raise_nofile(HOLD_FDS(HOLD_MAX));
    return got;
}

/* A case whose connections the descriptor limit cannot take is skipped,
 * with the limit in the reason. */
static const char *hold_unavailable(const bench_case *c, const bench_impl *impl)
{
    (void)impl;
    static char why[160];
    long conns = (long)bench_param_get(c, "conns");
    long lim = hold_nofile();
    if (lim >= HOLD_FDS(conns))
        return NULL;
    snprintf(why, sizeof(why),
             "RLIMIT_NOFILE is %ld and cannot be raised to %ld here (hard limit: root, "
             "fs.nr_open)",
             lim, (long)HOLD_FDS(conns));
    return why;
}

static int run_hold(const bench_impl *impl, bench_ctx *ctx)
{
    int conns = (int)bench_param_get(ctx->c, "conns");
    if (hold_nofile() < HOLD_FDS(conns))
        bench_fail("RLIMIT_NOFILE cannot be raised to %d", HOLD_FDS(conns));
    const bench_server *s = server_for("echo_hold", impl);
    run_round(s, ctx, conns, (int)bench_param_get(ctx->c, "size"), 1);
    if (!(ctx->value[3] > 0))
        bench_fail("the server's memory did not grow with %d connections open", conns);
    /* Metrics in the scenario's order: memory first, the server's own,
     * then the kernel's. */
    double v[5] = {ctx->value[3], ctx->value[4], ctx->value[0], ctx->value[1], ctx->value[2]};
    memcpy(ctx->value, v, sizeof(v));
    return 0;
}

/* cpu_us_per_req: the server process's CPU time plus the softirq time of
 * its CPU over the window; proc_us_per_req: the process's alone. */
static const bench_metric echo_metrics[] = {
    {"req_per_s", "req/s", true},
    {"cpu_us_per_req", "us/req", false},
    {"proc_us_per_req", "us/req", false},
};

#define BENCH_NOTE_KERNEL                                                                          \
    "growth of the socket slab caches (/proc/slabinfo: TCP, sock_inode_cache, filp, eventpoll, "   \
    "io_kiocb) over connecting and priming, per connection, both ends"

/* kib_per_conn: the server's resident (user-space) memory; the kernel's
 * is apart, in kernel_kib_per_conn (BENCH_NOTE_KERNEL). */
static const bench_metric hold_metrics[] = {
    {"kib_per_conn", "KiB/conn", false},  {"kernel_kib_per_conn", "KiB/conn", false},
    {"req_per_s", "req/s", true},         {"cpu_us_per_req", "us/req", false},
    {"proc_us_per_req", "us/req", false},
};

static int echo_cases(bench_case *out, bool quick)
{
    (void)quick;
    static const long c[][3] = {
        {1, 64, 1}, {50, 128, 1}, {300, 128, 1}, {50, 16384, 1}, {300, 128, 16}};
    for (int i = 0; i < 5; i++)
        out[i] = (bench_case){3, {{"conns", c[i][0]}, {"size", c[i][1]}, {"pipeline", c[i][2]}}};
    return 5;
}

static int hold_cases(bench_case *out, bool quick)
{
    if (quick) {
        out[0] = (bench_case){2, {{"conns", 2000}, {"size", 64}}};
        return 1;
    }
    out[0] = (bench_case){2, {{"conns", 10000}, {"size", 64}}};
    out[1] = (bench_case){2, {{"conns", HOLD_MAX}, {"size", 64}}};
    return 2;
}

static int impls_with(bench_impl *out, bench_run_fn run)
{
    int n = bench_add_kart_backends(out, run, false);
    bench_skip_select(out, n);
    /* kart-uring against the hand-written io_uring server, its floor;
     * kart-poll against the hand-written poll(2) one, its own kind; the
     * rest against raw-epoll, the scenario's baseline. */
    for (int i = 0; i < n; i++) {
        if (strcmp(out[i].name, "kart-uring") == 0)
            out[i].peer = "raw-uring";
        if (strcmp(out[i].name, "kart-poll") == 0)
            out[i].peer = "raw-poll";
    }
    out[n++] = (bench_impl){.name = "raw-epoll", .run = run};
    out[n++] = (bench_impl){.name = "raw-poll", .run = run};
#if KART_HAVE_URING
    out[n++] = (bench_impl){.name = "raw-uring", .skip = echo_raw_uring_skip(), .run = run};
#else
    out[n++] = (bench_impl){.name = "raw-uring", .skip = "kart built without io_uring"};
#endif
#if KART_BENCH_HAVE_LIBUV
    out[n++] = (bench_impl){.name = "libuv", .run = run};
#else
    out[n++] = (bench_impl){.name = "libuv", .skip = "libuv not installed"};
#endif
#if KART_BENCH_HAVE_LIBEVENT
    out[n++] = (bench_impl){.name = "libevent", .run = run};
#else
    out[n++] = (bench_impl){.name = "libevent", .skip = "libevent not installed"};
#endif
    return n;
}

static int echo_impls(bench_impl *out)
{
    return impls_with(out, run_echo);
}

static int hold_impls(bench_impl *out)
{
    return impls_with(out, run_hold);
}


const bench_scenario bench_echo = {
    .name = "echo",
    .summary = "TCP echo servers on CPU 0 under a checking load generator on CPU 1: "
               "requests/s and server CPU per request (process + softirq of CPU 0, and the "
               "process alone)",
    .baseline = "raw-epoll",
    .nmetrics = 3,
    .metrics = echo_metrics,
    .cases = echo_cases,
    .impls = echo_impls,
    .seconds = 1.0,
    .quick_seconds = 0.25,
    .quick_rounds = 4, /* 5 cases x 8 servers: the longest of --quick */
    .client_capped = 1u << 0,
    .metric_note = {NULL, BENCH_NOTE_CPU, BENCH_NOTE_PROC},
};

const bench_scenario bench_echo_hold = {
    .name = "echo_hold",
    .summary = "many concurrent echo connections, each checked: server memory per "
               "connection, requests/s and CPU per request",
    .baseline = "raw-epoll",
    .nmetrics = 5,
    .metrics = hold_metrics,
    .cases = hold_cases,
    .impls = hold_impls,
    .unavailable = hold_unavailable,
    .seconds = 1.0,
    .quick_seconds = 0.25,
    /* Each round opens and primes 2,000 connections per server; the
     * memory per connection hardly moves between rounds. */
    .quick_rounds = 3,
    .client_capped = 1u << 2,
    .metric_note = {NULL, BENCH_NOTE_KERNEL, NULL, BENCH_NOTE_CPU, BENCH_NOTE_PROC},
};

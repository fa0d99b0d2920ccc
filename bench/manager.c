/*
 * bench/manager.c — the `manager` scenario: synchronous operations on a
 * manager's shared objects across processes (the client in one process,
 * the manager server in another, over a unix socket), every result
 * checked:
 *
 *  - `python`, the baseline: a python3 client against Python's own
 *    SyncManager (multiprocessing.managers, started by the script with
 *    SyncManager().start(): a forked server process), the standard library
 *    only;
 *  - `kart`: kart's C proxies (kart_mdict_set/get, kart_mqueue_put/get)
 *    against a kart manager in a forked child (kart_manager_fork), over
 *    the socket (the client's options say no_shm);
 *  - `kart-shm`: the same proxies and server with the same-host fast path
 *    (kart_proxy_shared: the calls work on the object in shared memory;
 *    the server process does nothing per call);
 *  - `kart-pipelined`: the same server, the calls sent PIPELINE at a time
 *    with kart_mbatch_run (one round trip per batch, kart/manager.h);
 *  - `python-kart`: the python3 SyncManager client against the kart
 *    manager (what interop costs a Python client).
 *
 * Cases: dict (d[k] = i then d[k], checked) and queue (q.put(i) then
 * q.get(), checked). An operation is one call (a set, a get, a put or a
 * get): each iteration does two. The client's CPU is its thread's (kart)
 * or process's (python) CPU clock over the timed window; the server's is
 * the server process's CPU clock: clock_getcpuclockid() of the forked kart
 * server from C; in the rows timed in Python, the same clock id
 * (((~pid) << 3) | 2, what glibc's clock_getcpuclockid() returns on Linux)
 * read with time.clock_gettime (/proc/PID/stat's 10 ms ticks where that is
 * refused). Each round starts its own server.
 */
#include "harness.h"
#include "python.h"

#include <errno.h>
#include <kart.h>
#include <kart/manager.h>
#include <kart/obj.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PIPELINE 64 /* iterations (128 calls) per kart_mbatch_run */
#define CHECK_EVERY 32
#define STR_(x) #x
#define STR(x) STR_(x)
#define KEY "kart-bench-manager"

static int64_t cpu_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static kart_obj *int_obj(int64_t v)
{
    kart_obj *o = NULL;
    if (kart_obj_int(v, &o) != 0)
        bench_fail("kart_obj_int: out of memory");
    return o;
}

static void expect_int(const kart_obj *o, int64_t want, const char *what)
{
    int64_t got = -1;
    if (!o || kart_obj_get_int(o, &got) != 0 || got != want)
        bench_fail("%s returned %lld where %lld was due", what, (long long)got, (long long)want);
}

/* One iteration, synchronous: two calls, checked. */
static void sync_iter(bool dict, kart_proxy *p, const kart_obj *key, int64_t i)
{
    kart_obj *v = int_obj(i), *got = NULL;
    int r = dict ? kart_mdict_set(p, key, v) : kart_mqueue_put(p, v, -1);
    if (r != 0)
        bench_fail("%s: %s", dict ? "dict set" : "queue put", kart_strerror(r));
    r = dict ? kart_mdict_get(p, key, &got) : kart_mqueue_get(p, -1, &got);
    if (r != 0)
        bench_fail("%s: %s", dict ? "dict get" : "queue get", kart_strerror(r));
    expect_int(got, i, dict ? "dict get" : "queue get");
    kart_obj_free(v);
    kart_obj_free(got);
}

/* PIPELINE iterations in one batch, checked. */
static void batch_iters(bool dict, kart_mbatch *b, kart_proxy *p, const kart_obj *key, int64_t i0)
{
    kart_mbatch_reset(b);
    for (int64_t i = i0; i < i0 + PIPELINE; i++) {
        kart_obj *items[2] = {NULL, int_obj(i)}, *args = NULL;
        int r;
        if (dict) {
            if (kart_obj_copy(key, &items[0]) != 0 || kart_obj_tuple(items, 2, &args) != 0)
                bench_fail("out of memory");
            r = kart_mbatch_add(b, p, "__setitem__", args, NULL);
            kart_obj_free(args);
            if (r == 0 && kart_obj_copy(key, &items[0]) == 0 &&
                kart_obj_tuple(items, 1, &args) == 0) {
                r = kart_mbatch_add(b, p, "__getitem__", args, NULL);
                kart_obj_free(args);
            }
        } else {
            if (kart_obj_tuple(&items[1], 1, &args) != 0)
                bench_fail("out of memory");
            r = kart_mbatch_add(b, p, "put", args, NULL);
            kart_obj_free(args);
            if (r == 0)
                r = kart_mbatch_add(b, p, "get", NULL, NULL);
        }
        if (r != 0)
            bench_fail("kart_mbatch_add: %s", kart_strerror(r));
    }
    int r = kart_mbatch_run(b);
    if (r != 0)
        bench_fail("kart_mbatch_run: %d (%s)", r, r < 0 ? kart_strerror(r) : "calls failed");
    for (size_t j = 1; j < kart_mbatch_size(b); j += 2) {
        kart_obj *got = NULL;
        if (kart_mbatch_result(b, j, &got) != 0)
            bench_fail("batch result %zu", j);
        expect_int(got, i0 + (int64_t)(j / 2), dict ? "batched dict get" : "batched queue get");
        kart_obj_free(got);
    }
}

typedef struct server {
    char addr[256];
    pid_t pid;
    clockid_t clock;
} server;

static void server_start(server *s)
{
    kart_manager_options o = {.authkey = KEY, .authkey_len = strlen(KEY)};
    int r = kart_manager_fork(NULL, &o, s->addr, sizeof s->addr, &s->pid);
    if (r != 0)
        bench_fail("kart_manager_fork: %s", kart_strerror(r));
    int cerr = clock_getcpuclockid(s->pid, &s->clock);
    if (cerr)
        bench_fail("clock_getcpuclockid: %s", strerror(cerr));
}

static void server_stop(server *s, kart_manager *m)
{
    int r = m ? kart_manager_shutdown(m) : kill(s->pid, SIGTERM);
    int st = 0;
    if (r != 0)
        kill(s->pid, SIGKILL);
    if (waitpid(s->pid, &st, 0) != s->pid)
        bench_fail("waitpid: %s", strerror(errno));
}

static const char *op_name(const bench_ctx *ctx)
{
    return bench_param_get(ctx->c, "queue") ? "queue" : "dict";
}

/* ---- kart and kart-pipelined ---- */

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    bool pipelined = strcmp(impl->arg, "pipelined") == 0;
    bool shm = strcmp(impl->arg, "shm") == 0;
    bool dict = strcmp(op_name(ctx), "dict") == 0;
    server s;
    server_start(&s);
    kart_manager_options o = {.authkey = KEY, .authkey_len = strlen(KEY), .no_shm = !shm};
    kart_manager *m = NULL;
    int r = kart_manager_connect(&m, s.addr, &o);
    if (r != 0)
        bench_fail("kart_manager_connect: %s", kart_strerror(r));
    kart_proxy *p = NULL;
    r = dict ? kart_manager_dict(m, &p) : kart_manager_queue(m, 0, &p);
    if (r != 0)
        bench_fail("creating the %s: %s", op_name(ctx), kart_strerror(r));
    if (kart_proxy_shared(p) != shm)
        bench_fail("the %s proxy %s the fast path", op_name(ctx), shm ? "did not take" : "took");
    kart_obj *key = NULL;
    if (kart_obj_strz("key", &key) != 0)
        bench_fail("out of memory");
    kart_mbatch *b = NULL;
    if (kart_mbatch_create(&b) != 0)
        bench_fail("out of memory");
    /* warm: the thread's connection is open, the server thread running */
    for (int64_t i = 0; i < 16; i++)
        sync_iter(dict, p, key, i);
    int64_t n = 0, t0 = bench_now_ns(), end = t0 + (int64_t)(ctx->seconds * 1e9), t1;
    int64_t c0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID), s0 = cpu_ns(s.clock);
    do {
        if (pipelined) {
            batch_iters(dict, b, p, key, n);
            n += PIPELINE;
        } else {
            for (int j = 0; j < CHECK_EVERY; j++, n++)
                sync_iter(dict, p, key, n);
        }
        t1 = bench_now_ns();
    } while (t1 < end);
    int64_t c1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID), s1 = cpu_ns(s.clock);
    kart_mbatch_free(b);
    kart_obj_free(key);
    kart_proxy_free(p);
    server_stop(&s, m);
    kart_manager_free(m);
    double ops = 2.0 * (double)n;
    ctx->value[0] = ops / ((double)(t1 - t0) / 1e9);
    ctx->value[1] = (double)(c1 - c0) / ops;
    if (s0 < 0 || s1 < s0 || (s1 == s0 && !shm)) /* kart-shm: the server may idle */
        bench_metric_error(ctx, 2, "the server's CPU clock read %lld then %lld", (long long)s0,
                           (long long)s1);
    else
        ctx->value[2] = (double)(s1 - s0) / ops;
    return 0;
}

/* ---- python and python-kart: the client timed in python3 ---- */

static const char python_main[] =
    "import sys, time, os\n"
    "from multiprocessing.managers import SyncManager\n"
    "def srv_cpu(pid):\n"
    "    # the process's CPU clock, as glibc's clock_getcpuclockid() makes it\n"
    "    try: return time.clock_gettime(((~pid) << 3) | 2)\n"
    "    except OSError: pass\n"
    "    with open('/proc/%d/stat' % pid) as f: st = f.read()\n"
    "    fl = st[st.rindex(')') + 2:].split()\n"
    "    return (int(fl[11]) + int(fl[12])) / os.sysconf('SC_CLK_TCK')\n"
    "op, seconds, key = sys.argv[1], float(sys.argv[2]), bytes.fromhex(sys.argv[3])\n"
    "if len(sys.argv) > 4:\n"
    "    addr = sys.argv[4]\n"
    "    if addr.startswith('@'): addr = '\\0' + addr[1:]\n"
    "    m = SyncManager(address=addr, authkey=key); m.connect(); pid = int(sys.argv[5])\n"
    "else:\n"
    "    import multiprocessing as mp\n"
    "    m = SyncManager(authkey=key, ctx=mp.get_context('fork')); m.start(); pid = "
    "m._process.pid\n"
    "o = m.dict() if op == 'dict' else m.Queue()\n"
    "def it_dict(i):\n"
    "    o['key'] = i\n"
    "    if o['key'] != i: raise SystemExit('error dict get returned a wrong value')\n"
    "def it_queue(i):\n"
    "    o.put(i)\n"
    "    if o.get() != i: raise SystemExit('error queue get returned a wrong value')\n"
    "it = it_dict if op == 'dict' else it_queue\n"
    "for i in range(16): it(i)\n"
    "n = 0; t0 = time.monotonic(); end = t0 + seconds\n"
    "c0 = time.process_time(); s0 = srv_cpu(pid)\n"
    "while True:\n"
    "    for _ in range(" STR(CHECK_EVERY) "): it(n); n += 1\n"
                                           "    t1 = time.monotonic()\n"
                                           "    if t1 >= end: break\n"
                                           "c1 = time.process_time(); s1 = srv_cpu(pid)\n"
                                           "print(2 * n, t1 - t0, c1 - c0, s1 - s0)\n"
                                           "del o\n"
                                           "if len(sys.argv) == 4: m.shutdown()\n";

static int run_python(const bench_impl *impl, bench_ctx *ctx)
{
    bool on_kart = strcmp(impl->arg, "kart") == 0;
    char secs[32], hex[2 * sizeof KEY], pidbuf[32] = "", out[512];
    snprintf(secs, sizeof secs, "%.3f", ctx->seconds);
    for (size_t i = 0; i < strlen(KEY); i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)KEY[i]);
    server s = {0};
    if (on_kart) {
        server_start(&s);
        snprintf(pidbuf, sizeof pidbuf, "%d", (int)s.pid);
    }
    const char *const args[] = {op_name(ctx), secs, hex, on_kart ? s.addr : NULL, pidbuf, NULL};
    bool ok = bench_python_run(python_main, args, out, sizeof out);
    if (on_kart) {
        kart_manager_options o = {.authkey = KEY, .authkey_len = strlen(KEY)};
        kart_manager *m = NULL;
        if (kart_manager_connect(&m, s.addr, &o) != 0)
            m = NULL;
        server_stop(&s, m);
        kart_manager_free(m);
    }
    if (!ok)
        bench_fail("python3 failed: %s", out);
    unsigned long long ops = 0;
    double elapsed = 0, ccpu = 0, scpu = 0;
    if (sscanf(out, "%llu %lf %lf %lf", &ops, &elapsed, &ccpu, &scpu) != 4 || elapsed <= 0 ||
        ops == 0)
        bench_fail("python3 printed %s", out);
    ctx->value[0] = (double)ops / elapsed;
    ctx->value[1] = ccpu * 1e9 / (double)ops;
    if (scpu <= 0)
        bench_metric_error(ctx, 2, "the server's CPU time read 0 over %.3f s", elapsed);
    else
        ctx->value[2] = scpu * 1e9 / (double)ops;
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"ops_per_s", "op/s", true},
    {"client_cpu_ns_per_op", "ns/op", false},
    {"server_cpu_ns_per_op", "ns/op", false},
};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    out[0] = (bench_case){1, {{"queue", 0}}};
    out[1] = (bench_case){1, {{"queue", 1}}};
    return 2;
}

static int impls(bench_impl *out)
{
    const char *py = bench_python_skip();
    out[0] = (bench_impl){.name = "python", .run = run_python, .arg = "python", .skip = py};
    out[1] = (bench_impl){.name = "kart", .run = run_kart, .arg = "sync"};
    out[2] = (bench_impl){.name = "kart-pipelined", .run = run_kart, .arg = "pipelined"};
    out[3] = (bench_impl){.name = "python-kart", .run = run_python, .arg = "kart", .skip = py};
    out[4] = (bench_impl){.name = "kart-shm", .run = run_kart, .arg = "shm"};
    return 5;
}

const bench_scenario bench_manager = {
    .name = "manager",
    .summary = "manager operations/s across processes (dict set+get, queue put+get, each checked; "
               "unix socket): kart C proxies -> kart manager vs python3 -> Python SyncManager, "
               "kart-pipelined (kart_mbatch_run, 128 calls per batch), python3 -> kart manager, "
               "kart-shm (the same-host fast path: shared memory, no round trip); "
               "client and server CPU per operation",
    .baseline = "python",
    .nmetrics = 3,
    .metrics = metrics,
    .may_be_zero = 1u << 2, /* kart-shm: the server may idle through a run */
    .cases = cases,
    .impls = impls,
    .seconds = 0.5,
    .quick_seconds = 0.2,
    .quick_rounds = 3,
    .metric_note = {"calls (a set, a get, a put or a get) over the timed window",
                    "the client's CPU time (kart: its thread's clock; python: process_time) per "
                    "call",
                    "the server process's CPU time per call (its process CPU clock, read from C "
                    "or from the Python client)"},
};

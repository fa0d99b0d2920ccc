/*
 * bench/spawn.c — the `spawn` scenario: processes started and joined per
 * second.
 *
 * kart-fork makes a kart_process around a function that returns 0, starts
 * it, joins it and frees it; kart-spawn does the same with /bin/true
 * through posix_spawn. Their peers: raw-fork (fork, _exit, waitpid: the
 * floor under kart-fork) and posix-spawn (posix_spawn and waitpid of
 * /bin/true: the floor under kart-spawn), and python, Python's
 * multiprocessing.Process with the fork start method (a python3 started by
 * the bench for each round, timing itself, so that its start-up is not
 * counted). A case starts `batch` children before joining them: 1 (one at a
 * time) and 16 (the children run side by side).
 *
 * Every child's exit code is checked (0), so a failed start cannot count.
 */
#include "harness.h"
#include "python.h"

#include <errno.h>
#include <fcntl.h>
#include <kart.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_BATCH 16

static void check(int err, const char *what)
{
    if (err != 0)
        bench_fail("%s: %s", what, kart_strerror(err));
}

static int child_fn(void *arg)
{
    (void)arg;
    return 0;
}

static char *true_argv[] = {"/bin/true", NULL};

/* Runs batches of `start` then `finish` until the round's time is up, and
 * stores the rate. */
typedef void (*start_fn)(int i);
typedef void (*finish_fn)(int i);

static void timed(bench_ctx *ctx, start_fn start, finish_fn finish)
{
    int batch = (int)bench_param_get(ctx->c, "batch");
    long n = 0;
    int64_t t0 = bench_now_ns(), now;
    do {
        for (int i = 0; i < batch; i++)
            start(i);
        for (int i = 0; i < batch; i++)
            finish(i);
        n += batch;
        now = bench_now_ns();
    } while (now - t0 < (int64_t)(ctx->seconds * 1e9));
    ctx->value[0] = (double)n * 1e9 / (double)(now - t0);
}

/* ---- kart ---- */

static kart_process *procs[MAX_BATCH];

static void kart_fork_start(int i)
{
    check(kart_process_create(&procs[i], child_fn, NULL, NULL), "kart_process_create");
    check(kart_process_start(procs[i]), "kart_process_start");
}

static void kart_spawn_start(int i)
{
    check(kart_process_create_program(&procs[i], "/bin/true", true_argv, NULL, NULL),
          "kart_process_create_program");
    check(kart_process_start(procs[i]), "kart_process_start");
}

static void kart_finish(int i)
{
    int code = -1;
    check(kart_process_join(procs[i], -1), "kart_process_join");
    if (kart_process_exitcode(procs[i], &code) != 1 || code != 0)
        bench_fail("child exited with %d", code);
    kart_process_free(procs[i]);
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    bool fork_ = strcmp(impl->arg, "fork") == 0;
    timed(ctx, fork_ ? kart_fork_start : kart_spawn_start, kart_finish);
    return 0;
}

/* ---- raw fork and posix_spawn ---- */

static pid_t pids[MAX_BATCH];

static void raw_fork_start(int i)
{
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(0);
    pids[i] = pid;
}

static void raw_spawn_start(int i)
{
    int err = posix_spawn(&pids[i], "/bin/true", NULL, NULL, true_argv, environ);
    if (err)
        bench_fail("posix_spawn: %s", strerror(err));
}

static void raw_finish(int i)
{
    int status;
    if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) || WEXITSTATUS(status))
        bench_fail("child %d did not exit with 0", (int)pids[i]);
}

static int run_raw(const bench_impl *impl, bench_ctx *ctx)
{
    bool fork_ = strcmp(impl->arg, "fork") == 0;
    timed(ctx, fork_ ? raw_fork_start : raw_spawn_start, raw_finish);
    return 0;
}

/* ---- Python ---- */

static const char python_script[] = "import multiprocessing as mp, sys, time\n"
                                    "def f():\n"
                                    "    pass\n"
                                    "ctx = mp.get_context('fork')\n"
                                    "secs, batch = float(sys.argv[1]), int(sys.argv[2])\n"
                                    "n = 0\n"
                                    "t0 = time.perf_counter()\n"
                                    "while True:\n"
                                    "    ps = [ctx.Process(target=f) for _ in range(batch)]\n"
                                    "    for p in ps:\n"
                                    "        p.start()\n"
                                    "    for p in ps:\n"
                                    "        p.join()\n"
                                    "        assert p.exitcode == 0, p.exitcode\n"
                                    "    n += batch\n"
                                    "    t = time.perf_counter() - t0\n"
                                    "    if t >= secs:\n"
                                    "        break\n"
                                    "print(n / t)\n";

/* python3 on the script, one round: its rate. */
static int run_python(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    char secs[32], batch[32], out[128];
    snprintf(secs, sizeof(secs), "%g", ctx->seconds);
    snprintf(batch, sizeof(batch), "%ld", bench_param_get(ctx->c, "batch"));
    const char *args[] = {secs, batch, NULL};
    if (!bench_python_run(python_script, args, out, sizeof(out)))
        bench_fail("python3 failed: %s", out);
    ctx->value[0] = strtod(out, NULL);
    if (ctx->value[0] <= 0)
        bench_fail("python3 printed %s", out);
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"procs_per_s", "proc/s", true},
};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    out[0] = (bench_case){1, {{"batch", 1}}};
    out[1] = (bench_case){1, {{"batch", MAX_BATCH}}};
    return 2;
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){.name = "kart-fork", .run = run_kart, .arg = "fork"};
    out[n++] =
        (bench_impl){.name = "kart-spawn", .run = run_kart, .arg = "spawn", .peer = "posix-spawn"};
    out[n++] = (bench_impl){.name = "raw-fork", .run = run_raw, .arg = "fork"};
    out[n++] =
        (bench_impl){.name = "posix-spawn", .run = run_raw, .arg = "spawn", .peer = "posix-spawn"};
    out[n++] = (bench_impl){.name = "python", .run = run_python, .skip = bench_python_skip()};
    return n;
}

const bench_scenario bench_spawn = {
    .name = "spawn",
    .summary = "processes started and joined per second: fork of a function, spawn of /bin/true",
    .baseline = "python",
    .nmetrics = 1,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 1.0,
    .quick_seconds = 0.2,
};

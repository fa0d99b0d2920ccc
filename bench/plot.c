/*
 * bench/plot.c — kart-bench --plot: runs scripts/bench-plot (plot.h).
 *
 * posix_spawn with an argument vector, no shell: DIR and the JSON path go
 * to the script as they were typed, whatever characters they hold.
 */
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef KART_BENCH_PLOT_SCRIPT
#define KART_BENCH_PLOT_SCRIPT "scripts/bench-plot"
#endif

extern char **environ;

static const char *script(void)
{
    const char *s = getenv("KART_BENCH_PLOT");
    return s && *s ? s : KART_BENCH_PLOT_SCRIPT;
}

/* Runs the script with args (argv[0] filled in here), its stdout to
 * /dev/null when quiet; 0 when it exits 0. */
static int run_script(const char **args, bool quiet)
{
    const char *argv[5] = {script()};
    for (int i = 0; i < 3 && args[i]; i++)
        argv[i + 1] = args[i];
    posix_spawn_file_actions_t fa;
    int err = posix_spawn_file_actions_init(&fa);
    if (!err && quiet)
        err = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    fflush(NULL); /* the tables before the script's lines */
    if (!err)
        err = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err) {
        fprintf(stderr,
                "kart-bench: --plot cannot run %s: %s (KART_BENCH_PLOT names the chart "
                "script)\n",
                argv[0], strerror(err));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "kart-bench: waiting for %s: %s\n", argv[0], strerror(errno));
            return -1;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    /* The script has said why (a script that says nothing still fails
     * with its command named). */
    if (WIFSIGNALED(status))
        fprintf(stderr, "kart-bench: --plot: %s %s was killed by signal %d\n", argv[0], argv[1],
                WTERMSIG(status));
    else
        fprintf(stderr, "kart-bench: --plot: %s %s exited with status %d\n", argv[0], argv[1],
                WEXITSTATUS(status));
    return -1;
}

int bench_plot_check(void)
{
    const char *args[] = {"--check", NULL};
    return run_script(args, true);
}

char *bench_plot_json_path(const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "kart-bench: --plot cannot make %s: %s\n", dir, strerror(errno));
        return NULL;
    }
    size_t n = strlen(dir) + sizeof("/bench.json");
    char *path = malloc(n);
    if (!path) {
        fprintf(stderr, "kart-bench: out of memory\n");
        return NULL;
    }
    snprintf(path, n, "%s/bench.json", dir);
    return path;
}

int bench_plot(const char *json, const char *dir)
{
    const char *args[] = {json, dir, NULL};
    return run_script(args, false);
}

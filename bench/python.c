/*
 * bench/python.c — the runner of the Python peers (bench/python.h). The
 * interpreter is resolved once (the `python3` on $PATH asked for
 * sys.executable), then each run starts that file directly with
 * kart_process_create_program (its standard output on a pipe) and reaps it
 * with kart_process_join.
 */
#include "python.h"

#include "harness.h"

#include <fcntl.h>
#include <kart.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* script into a new file under $TMPDIR (or /tmp); path gets its name. */
static bool write_script(const char *script, char *path, size_t size)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/kart-bench-py-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    size_t len = strlen(script), done = 0;
    while (done < len) {
        ssize_t w = write(fd, script + done, len - done);
        if (w <= 0) {
            close(fd);
            unlink(path);
            return false;
        }
        done += (size_t)w;
    }
    close(fd);
    return true;
}

/* Runs the program at prog (a path: no $PATH search) with argv, and
 * collects its standard output into out. True when it exited with 0. */
static bool run_program(const char *prog, char *const argv[], char *out, size_t size)
{
    out[0] = '\0';
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return false;
    fflush(NULL); /* nothing buffered here is printed twice */
    kart_program_fd fds[] = {{1, pfd[1]}};
    kart_program_options o = {.fds = fds, .nfds = 1};
    kart_process *p = NULL;
    if (kart_process_create_program(&p, prog, argv, NULL, &o) != 0) {
        p = NULL;
    } else if (kart_process_start(p) != 0) {
        kart_process_free(p);
        p = NULL;
    }
    close(pfd[1]);
    size_t len = 0;
    ssize_t r;
    while (p && len + 1 < size && (r = read(pfd[0], out + len, size - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(pfd[0]); /* a python3 still printing gets EPIPE, not a hang */
    int code = -1;
    if (p) {
        kart_process_join(p, -1);
        kart_process_exitcode(p, &code);
        kart_process_free(p);
    }
    return code == 0;
}

/* Whether the file at path is a script (starts with "#!"): a shim. */
static bool is_script(const char *path)
{
    char head[2] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool script = read(fd, head, 2) == 2 && head[0] == '#' && head[1] == '!';
    close(fd);
    return script;
}

static struct {
    bool done;
    char path[PATH_MAX], version[64], found[PATH_MAX], why[96];
    bench_python_info info;
} py;

/* Sets py.path to the real file of candidate when it is an executable. */
static bool take(const char *candidate)
{
    char real[PATH_MAX];
    if (!candidate[0] || !realpath(candidate, real) || access(real, X_OK) != 0)
        return false;
    snprintf(py.path, sizeof(py.path), "%s", real);
    return true;
}

static void resolve(void)
{
    if (py.done)
        return;
    py.done = true;
    py.info = (bench_python_info){py.path, py.version, py.found, py.why, false};
    if (!bench_find_program("python3", py.found, sizeof(py.found))) {
        py.found[0] = '\0';
        snprintf(py.why, sizeof(py.why), "python3 not installed");
        return;
    }
    py.info.shim = is_script(py.found);
    /* One start of whatever $PATH names (the shim's price, paid once). */
    char *argv[] = {"python3", "-c",
                    "import sys, platform; print(sys.executable); "
                    "print(platform.python_version())",
                    NULL};
    char out[PATH_MAX + 128];
    bool ran = run_program(py.found, argv, out, sizeof(out));
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
    /* sys.executable; else the $PATH file itself when it is no script;
     * else the system's python3. */
    if (!ran || !nl || (!take(out) && (py.info.shim || !take(py.found)))) {
        if (!take("/usr/bin/python3")) {
            snprintf(py.why, sizeof(py.why), "python3 (%.60s) does not run", py.found);
            return;
        }
    }
    /* The version of the file chosen, asked of it (not of the shim). */
    char *vargv[] = {py.path, "-c", "import platform; print(platform.python_version())", NULL};
    if (!run_program(py.path, vargv, out, sizeof(out)) || !out[0]) {
        snprintf(py.why, sizeof(py.why), "%.70s does not run", py.path);
        py.path[0] = '\0';
        return;
    }
    out[strcspn(out, "\n")] = '\0';
    snprintf(py.version, sizeof(py.version), "%.60s", out);
}

const bench_python_info *bench_python_info_get(void)
{
    resolve();
    return &py.info;
}

bool bench_python_run(const char *script, const char *const args[], char *out, size_t size)
{
    out[0] = '\0';
    resolve();
    if (!py.path[0])
        return false;
    char path[4096];
    if (!write_script(script, path, sizeof(path)))
        return false;
    /* argv[0] the interpreter's own path: Python derives sys.prefix from
     * it, and a bare "python3" would be looked up on $PATH (the shim). */
    char *argv[11] = {py.path, path};
    int n = 2;
    for (int i = 0; args && args[i] && n < 10; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    bool ok = run_program(py.path, argv, out, size);
    unlink(path);
    return ok;
}

const char *bench_python_skip(void)
{
    static int have = -1;
    static char why[160];
    if (have < 0) {
        char out[16];
        const char *const none[] = {NULL};
        have = bench_python_run("import multiprocessing\n", none, out, sizeof(out));
        if (!have)
            snprintf(why, sizeof(why), "%s",
                     py.why[0] ? py.why : "python3 runs, but without multiprocessing");
    }
    return have ? NULL : why;
}

/*
 * bench/python.c — the runner of the Python peers (bench/python.h). python3
 * is started with kart_process_create_spawn (PATH searched, its standard
 * output on a pipe) and reaped with kart_process_join.
 */
#include "python.h"

#include <fcntl.h>
#include <kart.h>
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

/* Starts python3 on path with args, its standard output on wfd. */
static kart_process *start(const char *path, const char *const args[], int wfd)
{
    char *argv[11] = {"python3", (char *)path};
    int n = 2;
    for (int i = 0; args && args[i] && n < 10; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    kart_spawn_fd fds[] = {{1, wfd}};
    kart_spawn_options o = {.search_path = true, .fds = fds, .nfds = 1};
    kart_process *p;
    if (kart_process_create_spawn(&p, "python3", argv, NULL, &o) != 0)
        return NULL;
    if (kart_process_start(p) != 0) {
        kart_process_free(p);
        return NULL;
    }
    return p;
}

bool bench_python_run(const char *script, const char *const args[], char *out, size_t size)
{
    out[0] = '\0';
    char path[4096];
    if (!write_script(script, path, sizeof(path)))
        return false;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        unlink(path);
        return false;
    }
    fflush(NULL); /* nothing buffered here is printed twice */
    kart_process *p = start(path, args, pfd[1]);
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
    unlink(path);
    return code == 0;
}

const char *bench_python_skip(void)
{
    static int have = -1;
    if (have < 0) {
        char out[16];
        const char *const none[] = {NULL};
        have = bench_python_run("import multiprocessing\n", none, out, sizeof(out));
    }
    return have ? NULL : "python3 with multiprocessing not found";
}

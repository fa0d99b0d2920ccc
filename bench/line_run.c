/*
 * bench/line_run.c — the runner of the `line` peer programs
 * (bench/line_run.h): kart_process_create_program with the program's
 * standard output on a pipe, kart_process_join.
 */
#include "line_run.h"

#include "servers.h"

#include <fcntl.h>
#include <kart.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *line_peer_path(const char *name, char *buf, size_t size, const char **why)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "bench/%s", name);
    const char *p = bench_sibling_path(rel, buf, size);
    if (!p) {
        if (strstr(name, "readline"))
            *why = "not built: no GNU readline headers at build time (libreadline-dev)";
        else if (strstr(name, "libedit"))
            *why = "not built: no libedit at build time (libedit-dev)";
        else
            *why = "not built beside kart-bench (make build/bench/line-kart-peer)";
    }
    return p;
}

bool line_peer_run(const char *path, const char *const args[], char *out, size_t size)
{
    out[0] = '\0';
    char *argv[8] = {(char *)path};
    int n = 1;
    for (int i = 0; args && args[i] && n < 7; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return false;
    fflush(NULL);
    kart_program_fd fds[] = {{1, pfd[1]}};
    kart_program_options o = {.fds = fds, .nfds = 1};
    kart_process *p = NULL;
    if (kart_process_create_program(&p, path, argv, NULL, &o) != 0)
        p = NULL;
    else if (kart_process_start(p) != 0) {
        kart_process_free(p);
        p = NULL;
    }
    close(pfd[1]);
    size_t len = 0;
    ssize_t r;
    while (p && len + 1 < size && (r = read(pfd[0], out + len, size - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(pfd[0]);
    int code = -1;
    if (p) {
        kart_process_join(p, -1);
        kart_process_exitcode(p, &code);
        kart_process_free(p);
    }
    return code == 0;
}

/* Where the value of key starts in out, or NULL. */
static const char *field(const char *out, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = out; (p = strstr(p, key)); p++)
        if ((p == out || p[-1] == ' ') && p[klen] == '=')
            return p + klen + 1;
    return NULL;
}

double line_field(const char *out, const char *key)
{
    const char *v = field(out, key);
    char *end;
    double d = v ? strtod(v, &end) : NAN;
    return v && end > v ? d : NAN;
}

bool line_hex_field(const char *out, const char *key, uint64_t *v)
{
    const char *s = field(out, key);
    char *end;
    if (!s)
        return false;
    *v = strtoull(s, &end, 16);
    return end > s;
}

/*
 * bench/python.h — running the Python peers: the scenarios that compare
 * kart with Python's multiprocessing (conn, pool, queue, spawn) hand their
 * script to one runner instead of each starting python3 its own way.
 *
 * The interpreter is resolved once per process: the `python3` on $PATH is
 * asked for sys.executable, and every run then execs that file directly.
 * So a version manager's shim on $PATH (pyenv's is a shell script that
 * costs about 0.8 s per start on the development VM) is paid once, not in
 * every timed round, and the interpreter that runs is the one the shim
 * would have chosen. The run's header and JSON name it (env.c).
 */
#ifndef KART_BENCH_PYTHON_H
#define KART_BENCH_PYTHON_H

#include <stdbool.h>
#include <stddef.h>

/* Runs `PYTHON FILE args...` (PYTHON the resolved interpreter), FILE a
 * temporary copy of script (a file, not -c, so that a multiprocessing
 * start method that imports the main module, spawn or forkserver, finds
 * it), and collects what it prints on standard output into out
 * (NUL-terminated, cut at size - 1 bytes). args ends with NULL; at most 8.
 * Returns true when python3 ran and exited with status 0; false otherwise
 * (out holds whatever it printed; "" when no interpreter was found). */
bool bench_python_run(const char *script, const char *const args[], char *out, size_t size);

/* NULL when python3 with multiprocessing runs here; otherwise the reason,
 * for bench_impl.skip. Asked once per process. */
const char *bench_python_skip(void);

/* The interpreter the Python peers run, resolved once: its real path
 * (symbolic links resolved), its version ("3.11.2"), and the `python3`
 * found on $PATH that named it. Each is "" when there is none; then
 * *why says why (else ""). */
typedef struct bench_python_info {
    const char *path, *version, *found, *why;
    bool shim; /* the $PATH one is a script (a shim), not the interpreter */
} bench_python_info;
const bench_python_info *bench_python_info_get(void);

#endif

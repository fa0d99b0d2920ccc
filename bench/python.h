/*
 * bench/python.h — running the Python peers: the scenarios that compare
 * kart with Python's multiprocessing (conn, pool, queue, spawn) hand their
 * script to one runner instead of each starting python3 its own way.
 */
#ifndef KART_BENCH_PYTHON_H
#define KART_BENCH_PYTHON_H

#include <stdbool.h>
#include <stddef.h>

/* Runs `python3 FILE args...`, FILE a temporary copy of script (a file, not
 * -c, so that a multiprocessing start method that imports the main module,
 * spawn or forkserver, finds it), and collects what it prints on standard
 * output into out (NUL-terminated, cut at size - 1 bytes). args ends with
 * NULL; at most 8. Returns true when python3 ran and exited with status 0;
 * false otherwise (out holds whatever it printed). */
bool bench_python_run(const char *script, const char *const args[], char *out, size_t size);

/* NULL when python3 with multiprocessing runs here; otherwise the reason,
 * for bench_impl.skip. Asked once per process. */
const char *bench_python_skip(void);

#endif

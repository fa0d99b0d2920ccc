/*
 * bench/line_run.h — running the `line` scenarios' peer programs
 * (bench/peers/: line-kart-peer, line-readline-peer, line-libedit-peer,
 * built beside kart-bench in build/bench/) and reading what they print.
 */
#ifndef KART_BENCH_LINE_RUN_H
#define KART_BENCH_LINE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The peer program `name` (e.g. "line-readline-peer") beside kart-bench
 * into buf, or NULL (with *why set to the reason, for bench_impl.skip)
 * when it was not built. */
const char *line_peer_path(const char *name, char *buf, size_t size, const char **why);

/* Runs path with args (NULL-terminated, at most 6) and collects its
 * standard output into out (NUL-terminated, cut at size - 1). Returns
 * true when it exited with status 0. */
bool line_peer_run(const char *path, const char *const args[], char *out, size_t size);

/* The number after "key=" in a peer's output ("keys=123 ns=456"), or NaN
 * when it is not there. */
double line_field(const char *out, const char *key);

/* The hexadecimal number after "key=" into *v; false when not there. */
bool line_hex_field(const char *out, const char *key, uint64_t *v);

#endif

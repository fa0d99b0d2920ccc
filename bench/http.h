/*
 * bench/http.h — what the `http` scenario (bench/http.c) lends the
 * `hostile` one (bench/hostile.c): starting kart's http-server and nginx,
 * checking their answer, and one wrk run with its steady-state window.
 */
#ifndef KART_BENCH_HTTP_H
#define KART_BENCH_HTTP_H

#include "servers.h"

/* Starts build/examples/http-server on backend (once per key), with the
 * extra flags (NULL-terminated, may be NULL), and checks its answer. */
const bench_server *bench_http_start_kart(const char *key, const char *backend,
                                          const char *const *extra);

/* Starts nginx (one worker, once per key) with extra_conf in its http
 * block (NULL: "keepalive_timeout 600s;"), and checks its answer. */
const bench_server *bench_http_start_nginx(const char *key, const char *extra_conf);

/* GET / once, by hand: bench_fail() unless it is 200 "Hello, World!". */
void bench_http_check_hello(const char *who, int port);

/* wrk -t1 -c conns -d seconds pinned to CPU 1; its rate, its request
 * count, and the CPU figures of its steady-state window (w, all but
 * requests). bench_fail() on socket errors or non-2xx answers. */
void bench_http_wrk(int port, int conns, int seconds, pid_t server, double *rps, uint64_t *requests,
                    bench_window *w);

/* The implementations of an HTTP scenario: every kart backend but select
 * (its 1,024-descriptor limit), then nginx, each running run; wrk or
 * nginx missing skips those that need it, with the reason. */
int bench_http_impls(bench_impl *out, int (*run)(const bench_impl *, bench_ctx *));

#endif

/*
 * bench/echo_peers.h — the echo servers of the peers (echo_peers.c), each
 * a bench_server_fn: it serves a listening socket forever.
 */
#ifndef KART_BENCH_ECHO_PEERS_H
#define KART_BENCH_ECHO_PEERS_H

void echo_serve_raw_epoll(int lfd);
void echo_serve_raw_poll(int lfd);
#if KART_HAVE_URING
/* raw-uring (echo_uring_peer.c): started with bench_server_fork_late(),
 * as its set-up is part of its fresh memory. */
void echo_serve_raw_uring(int lfd);
/* NULL when raw-uring can run here; else why not. */
const char *echo_raw_uring_skip(void);
#endif
#if KART_BENCH_HAVE_LIBUV
void echo_serve_libuv(int lfd);
#endif
#if KART_BENCH_HAVE_LIBEVENT
void echo_serve_libevent(int lfd);
#endif

#endif

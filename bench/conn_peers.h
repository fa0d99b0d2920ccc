/*
 * bench/conn_peers.h — the raw socketpair peers of the conn scenario
 * (conn_peers.c): what a C programmer writes by hand in place of a kart
 * connection, in the two shapes the scenario compares kart with.
 *
 * - exact: no framing; a receive reads exactly the message's known size,
 *   one read() per message (the old baseline: the least a stream can do).
 * - framed: kart's framing (a 4-byte big-endian length before each
 *   message: Python's, for messages under 2 GiB), sent as kart sends it
 *   (a message of up to 1 KiB copied behind its header, one write; a
 *   larger one a two-part writev), received as kart receives it: reading
 *   ahead into a 64 KiB buffer and parsing messages out of it, a large
 *   message's rest read straight into its destination.
 */
#ifndef KART_BENCH_CONN_PEERS_H
#define KART_BENCH_CONN_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

typedef struct raw_chan raw_chan;

/* A connected AF_UNIX stream socketpair's two ends; bench_fail() if none. */
void raw_chan_pair(raw_chan **a, raw_chan **b, bool framed);

/* Sends one message of n bytes. Returns 0 or -errno (-EPIPE once the
 * other end is closed). */
int raw_chan_send(raw_chan *c, const void *p, size_t n);

/* Framed only: sends msgs[0..n) with one writev of 2n parts (each header,
 * then its message), repeated only for what a short write left. */
int raw_chan_send_many(raw_chan *c, const struct iovec *msgs, int n);

/* Receives one message into p (cap bytes); *len gets its length (exact:
 * always cap). Returns 0, -EPIPE at end of stream, -EMSGSIZE (framed: a
 * message longer than cap), -EPROTO (a stream cut inside a message), or
 * -errno. */
int raw_chan_recv(raw_chan *c, void *p, size_t cap, size_t *len);

void raw_chan_close(raw_chan *c);

#endif

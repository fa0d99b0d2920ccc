/*
 * bench/pingpong.h — the protocol every pingpong implementation runs, so
 * that they differ only in how they wait for readiness.
 *
 * Each pair is a non-blocking AF_UNIX stream socketpair with one token in
 * flight: the ping end sends a byte, the pong end echoes it, the ping end
 * checks it, counts a round trip and sends the next byte. Tokens are a
 * per-pair sequence, and both ends check every byte, so a lost, duplicated
 * or reordered wake-up fails the run instead of inflating it.
 *
 * The helpers are inline so that the hand-written epoll loop pays no call
 * it would not pay if written in one piece; every implementation uses the
 * same ones.
 */
#ifndef KART_BENCH_PINGPONG_H
#define KART_BENCH_PINGPONG_H

#include "harness.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

typedef struct pp_run {
    int npairs;
    int (*fd)[2];    /* [pair][0]: ping end, [pair][1]: pong end; -1 once closed */
    uint8_t *sent;   /* ping side: the token in flight */
    uint8_t *expect; /* pong side: the token it must see next */
    uint64_t trips;
    int64_t start, deadline, stop_at;
    uint64_t trips_at_stop;
    int inflight;
    int stopping;
} pp_run;

/* Opens npairs socketpairs; bench_fail() on error. */
void pp_open(pp_run *r, int npairs);
/* Closes the fds still open and frees the run's memory. */
void pp_close(pp_run *r);
/* Starts the clock and sends every pair's first token. */
void pp_begin(pp_run *r, double seconds);
/* Checks that the run ended, and stores the round trips per second. */
void pp_finish(pp_run *r, bench_ctx *ctx);

/* The pong end of pair p received b: checks it, returns the byte to echo. */
static inline uint8_t pp_pong_got(pp_run *r, int p, int b)
{
    if (b != r->expect[p])
        bench_fail("pair %d: pong got token %d, expected %d", p, b, r->expect[p]);
    return r->expect[p]++;
}

/*
 * The ping end of pair p received b back. Returns 1 to send the next token
 * (r->sent[p]), 0 to hold it because time is up, -1 when time is up and
 * every token is home: the run is over. The clock is read every 64 round
 * trips, often enough for 0.3 s rounds and cheap next to the syscalls.
 */
static inline int pp_ping_got(pp_run *r, int p, int b)
{
    if (b != r->sent[p])
        bench_fail("pair %d: ping got token %d back, sent %d", p, b, r->sent[p]);
    r->sent[p]++;
    if (!r->stopping) {
        r->trips++;
        if ((r->trips & 63) != 0 || bench_now_ns() < r->deadline)
            return 1;
        r->stopping = 1;
        r->stop_at = bench_now_ns();
        r->trips_at_stop = r->trips;
    }
    return --r->inflight == 0 ? -1 : 0;
}

/*
 * Reads one token; -1 if there was none (a spurious wake-up, which is
 * allowed). Reading into 64 bytes and getting 1 also proves the socket is
 * drained, which is what lets edge-triggered watchers skip the read that
 * would return EAGAIN (epoll(7): a short read on a stream socket means the
 * input is exhausted).
 */
static inline int pp_read_token(int fd)
{
    unsigned char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n == 1)
        return buf[0];
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return -1;
    if (n < 0)
        bench_fail("read fd %d: %s", fd, strerror(errno));
    bench_fail("read fd %d: %zd bytes where one token was in flight", fd, n);
}

static inline void pp_write_token(int fd, uint8_t b)
{
    ssize_t n = write(fd, &b, 1);
    if (n != 1)
        bench_fail("write fd %d: %s", fd, n < 0 ? strerror(errno) : "short write");
}

/* Readiness callbacks: the pong end of pair p is readable. */
static inline void pp_pong_ready(pp_run *r, int p)
{
    int b = pp_read_token(r->fd[p][1]);
    if (b >= 0)
        pp_write_token(r->fd[p][1], pp_pong_got(r, p, b));
}

/* The ping end of pair p is readable; true when the run is over. */
static inline int pp_ping_ready(pp_run *r, int p)
{
    int b = pp_read_token(r->fd[p][0]);
    if (b < 0)
        return 0;
    int k = pp_ping_got(r, p, b);
    if (k > 0)
        pp_write_token(r->fd[p][0], r->sent[p]);
    return k < 0;
}

/* The peers, in pingpong_peers.c, built when their packages are found. */
#if KART_BENCH_HAVE_LIBUV
int pp_run_libuv(const bench_impl *impl, bench_ctx *ctx);
#endif
#if KART_BENCH_HAVE_LIBEVENT
/* impl->arg: NULL for libevent's default backend (epoll), or "poll". */
int pp_run_libevent(const bench_impl *impl, bench_ctx *ctx);
#endif
#if KART_BENCH_HAVE_LIBEV
/* In pingpong_libev.c; impl->arg: "epoll" or "poll". */
int pp_run_libev(const bench_impl *impl, bench_ctx *ctx);
struct ev_loop;
/* A new libev loop on backend ("epoll" or "poll"), checked to run on it;
 * bench_fail() otherwise. The timers scenario's libev uses it too. */
struct ev_loop *bench_libev_loop(const char *backend);
#endif

#endif

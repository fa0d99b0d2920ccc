/*
 * bench/pingpong_libev.c — the pingpong protocol on libev, on the backend
 * its implementation names: libev-epoll (EVBACKEND_EPOLL) and libev-poll
 * (EVBACKEND_POLL). libev watches level-triggered only; the run checks
 * that libev really runs on the backend asked for, and fails if not.
 *
 * A file of its own: libev's ev.h and libevent's event2/event.h define the
 * same names (EV_READ, EV_TIMEOUT) with different values.
 */
#include "pingpong.h"

#include <stdlib.h>

#if KART_BENCH_HAVE_LIBEV
#include <ev.h>

typedef struct lev_end {
    ev_io io; /* first, so that the callbacks' watcher pointer is the end */
    pp_run *r;
    int pair;
} lev_end;

static void lev_ping_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    lev_end *e = (lev_end *)w;
    if (revents != EV_READ)
        bench_fail("ping end of pair %d: events 0x%x", e->pair, (unsigned)revents);
    if (pp_ping_ready(e->r, e->pair))
        ev_break(loop, EVBREAK_ALL);
}

static void lev_pong_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    lev_end *e = (lev_end *)w;
    (void)loop;
    if (revents != EV_READ)
        bench_fail("pong end of pair %d: events 0x%x", e->pair, (unsigned)revents);
    pp_pong_ready(e->r, e->pair);
}

/* libev's backend flag for impl->arg ("epoll", "poll"). */
static unsigned lev_backend(const char *name)
{
    if (strcmp(name, "epoll") == 0)
        return EVBACKEND_EPOLL;
    if (strcmp(name, "poll") == 0)
        return EVBACKEND_POLL;
    bench_fail("no libev backend %s", name);
}

struct ev_loop *bench_libev_loop(const char *backend)
{
    unsigned want = lev_backend(backend);
    /* EVFLAG_NOENV: LIBEV_FLAGS in the environment must not pick another. */
    struct ev_loop *loop = ev_loop_new(want | EVFLAG_NOENV);
    if (!loop)
        bench_fail("ev_loop_new(%s) failed", backend);
    if (ev_backend(loop) != want)
        bench_fail("libev runs on backend 0x%x, not %s", ev_backend(loop), backend);
    return loop;
}

int pp_run_libev(const bench_impl *impl, bench_ctx *ctx)
{
    int npairs = (int)bench_param_get(ctx->c, "pairs");
    struct ev_loop *loop = bench_libev_loop(impl->arg);
    pp_run r;
    pp_open(&r, npairs);
    lev_end *ends = calloc((size_t)npairs * 2, sizeof(*ends));
    if (!ends)
        bench_fail("out of memory");
    for (int i = 0; i < npairs * 2; i++) {
        lev_end *e = &ends[i];
        e->r = &r;
        e->pair = i / 2;
        ev_io_init(&e->io, i % 2 ? lev_pong_cb : lev_ping_cb, r.fd[i / 2][i % 2], EV_READ);
        ev_io_start(loop, &e->io);
    }
    pp_begin(&r, ctx->seconds);
    ev_run(loop, 0);
    pp_finish(&r, ctx);
    for (int i = 0; i < npairs * 2; i++)
        ev_io_stop(loop, &ends[i].io);
    ev_loop_destroy(loop);
    free(ends);
    pp_close(&r);
    return 0;
}
#endif

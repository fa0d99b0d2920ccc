/*
 * bench/pingpong.c — round trips per second of a one-byte token over one
 * socketpair, and over 100 socketpairs with a token each, both ends in one
 * thread and one loop.
 *
 * This is the cost of the loop itself: one wait, one dispatch and two
 * syscalls per wake-up, nothing else. kart runs it on every backend through
 * kart_watch watchers. The peers are grouped by the kernel interface they
 * wait on, and each row's ratio is to its group's hand-written loop:
 *
 *  - poll(2): raw-poll (here), libevent-poll, libev-poll; kart-poll, and
 *    kart-select (select(2) is poll's older twin);
 *  - epoll: raw-epoll (here), libuv, libevent, libev-epoll; kart-epoll,
 *    and kart-uring, which has no readiness-loop twin.
 *
 * raw-poll and raw-epoll are the floors: what kart's abstraction costs
 * over the same syscalls written out by hand. libuv, libevent and libev
 * are in pingpong_peers.c and pingpong_libev.c. Level- and edge-triggered
 * modes are both tried where they exist, and the faster one runs.
 */
#include "pingpong.h"

#include <kart.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

void pp_open(pp_run *r, int npairs)
{
    *r = (pp_run){.npairs = npairs};
    r->fd = calloc((size_t)npairs, sizeof(*r->fd));
    r->sent = calloc((size_t)npairs, 1);
    r->expect = calloc((size_t)npairs, 1);
    if (!r->fd || !r->sent || !r->expect)
        bench_fail("out of memory");
    for (int p = 0; p < npairs; p++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, r->fd[p]) < 0)
            bench_fail("socketpair: %s", strerror(errno));
        /* Distinct starting tokens, so that pairs crossed by a bug differ. */
        r->sent[p] = r->expect[p] = (uint8_t)(p * 37 + 1);
    }
}

void pp_close(pp_run *r)
{
    for (int p = 0; p < r->npairs; p++)
        for (int s = 0; s < 2; s++)
            if (r->fd[p][s] >= 0)
                close(r->fd[p][s]);
    free(r->fd);
    free(r->sent);
    free(r->expect);
}

void pp_begin(pp_run *r, double seconds)
{
    r->start = bench_now_ns();
    r->deadline = r->start + (int64_t)(seconds * 1e9);
    r->inflight = r->npairs;
    for (int p = 0; p < r->npairs; p++)
        pp_write_token(r->fd[p][0], r->sent[p]);
}

void pp_finish(pp_run *r, bench_ctx *ctx)
{
    if (!r->stopping || r->inflight != 0)
        bench_fail("the loop returned with %d tokens in flight", r->inflight);
    ctx->value[0] = (double)r->trips_at_stop * 1e9 / (double)(r->stop_at - r->start);
}

/* ---- kart ---- */

typedef struct kart_end {
    kart_watch io; /* first, so that the callback's kart_watch * is the end */
    pp_run *r;
    int pair;
} kart_end;

static void kart_ping_cb(kart_watch *io, uint32_t events)
{
    kart_end *e = (kart_end *)io;
    if (events != KART_READABLE)
        bench_fail("ping end of pair %d: events 0x%x", e->pair, events);
    if (pp_ping_ready(e->r, e->pair))
        kart_loop_stop(io->base.loop);
}

static void kart_pong_cb(kart_watch *io, uint32_t events)
{
    kart_end *e = (kart_end *)io;
    if (events != KART_READABLE)
        bench_fail("pong end of pair %d: events 0x%x", e->pair, events);
    pp_pong_ready(e->r, e->pair);
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    int npairs = (int)bench_param_get(ctx->c, "pairs");
    kart_loop_options lo = {.selector = {.backend = impl->arg}};
    kart_loop *loop;
    int err = kart_loop_create(&loop, &lo);
    if (err < 0)
        bench_fail("kart_loop_create(%s): %s", impl->arg, kart_strerror(err));
    pp_run r;
    pp_open(&r, npairs);
    kart_end *ends = calloc((size_t)npairs * 2, sizeof(*ends));
    if (!ends)
        bench_fail("out of memory");
    uint32_t events = KART_READABLE | (ctx->mode == 1 ? KART_EDGE : 0);
    for (int i = 0; i < npairs * 2 && err == 0; i++) {
        kart_end *e = &ends[i];
        e->r = &r;
        e->pair = i / 2;
        err = kart_watch_init(loop, &e->io, r.fd[i / 2][i % 2]);
        if (err == 0)
            err = kart_watch_start(&e->io, events, i % 2 ? kart_pong_cb : kart_ping_cb);
    }
    if (err == 0) {
        pp_begin(&r, ctx->seconds);
        err = kart_loop_run(loop, KART_RUN_DEFAULT);
        if (err < 0)
            bench_fail("kart_loop_run: %s", kart_strerror(err));
        pp_finish(&r, ctx);
        err = 0;
    } else if (err != -ENOTSUP) {
        bench_fail("kart_watch_start: %s", kart_strerror(err));
    }
    for (int i = 0; i < npairs * 2; i++)
        if (ends[i].r)
            kart_watch_stop(&ends[i].io);
    if (kart_loop_active_handles(loop) != 0)
        bench_fail("kart_loop_free: %d handles still active", kart_loop_active_handles(loop));
    kart_loop_free(loop);
    free(ends);
    pp_close(&r);
    return err;
}

/* ---- raw epoll: what a careful programmer writes by hand ---- */

static int run_raw_epoll(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    int npairs = (int)bench_param_get(ctx->c, "pairs");
    pp_run r;
    pp_open(&r, npairs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        bench_fail("epoll_create1: %s", strerror(errno));
    for (int i = 0; i < npairs * 2; i++) {
        /* The tag is the pair and the side: no lookup on dispatch. */
        struct epoll_event ev = {.events = EPOLLIN | (ctx->mode == 1 ? EPOLLET : 0),
                                 .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, r.fd[i / 2][i % 2], &ev) < 0)
            bench_fail("epoll_ctl: %s", strerror(errno));
    }
    pp_begin(&r, ctx->seconds);
    struct epoll_event evs[256];
    for (int done = 0; !done;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno != EINTR)
            bench_fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n && !done; i++) {
            uint32_t tag = evs[i].data.u32;
            if (evs[i].events != EPOLLIN)
                bench_fail("fd of pair %u: events 0x%x", tag / 2, evs[i].events);
            if (tag & 1)
                pp_pong_ready(&r, (int)(tag / 2));
            else
                done = pp_ping_ready(&r, (int)(tag / 2));
        }
    }
    pp_finish(&r, ctx);
    close(ep);
    pp_close(&r);
    return 0;
}

/* ---- raw poll: the same by hand over poll(2) ---- */

/* The floor of the poll(2) group: kart-poll, libevent-poll and libev-poll
 * divide by it. One pollfd array, indexed like raw-epoll's tags, scanned
 * whole after every wake-up, as poll(2) makes every user do. */
static int run_raw_poll(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    int npairs = (int)bench_param_get(ctx->c, "pairs");
    pp_run r;
    pp_open(&r, npairs);
    struct pollfd *pfd = calloc((size_t)npairs * 2, sizeof(*pfd));
    if (!pfd)
        bench_fail("out of memory");
    for (int i = 0; i < npairs * 2; i++)
        pfd[i] = (struct pollfd){.fd = r.fd[i / 2][i % 2], .events = POLLIN};
    pp_begin(&r, ctx->seconds);
    for (int done = 0; !done;) {
        int n = poll(pfd, (nfds_t)npairs * 2, -1);
        if (n < 0 && errno != EINTR)
            bench_fail("poll: %s", strerror(errno));
        for (int i = 0; i < npairs * 2 && n > 0 && !done; i++) {
            if (!pfd[i].revents)
                continue;
            n--;
            if (pfd[i].revents != POLLIN)
                bench_fail("fd of pair %d: revents 0x%x", i / 2, (unsigned)pfd[i].revents);
            if (i & 1)
                pp_pong_ready(&r, i / 2);
            else
                done = pp_ping_ready(&r, i / 2);
        }
    }
    pp_finish(&r, ctx);
    free(pfd);
    pp_close(&r);
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {{"ops_per_s", "op/s", true}};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    out[0] = (bench_case){1, {{"pairs", 1}}};
    out[1] = (bench_case){1, {{"pairs", 100}}};
    return 2;
}

/* The row each one divides by: its own kind of wait's floor, so that the
 * table compares backend with backend (kart-poll with raw-poll, not with
 * an epoll loop). select(2), like poll(2), hands the kernel the whole set
 * on every call: kart-select divides by raw-poll too. kart-uring, whose
 * peers here are all readiness loops, divides by raw-epoll, the fastest
 * hand-written one. */
static const char *floor_of(const char *backend)
{
    return backend && (strcmp(backend, "poll") == 0 || strcmp(backend, "select") == 0)
               ? "raw-poll"
               : "raw-epoll";
}

static int impls(bench_impl *out)
{
    int n = bench_add_kart_backends(out, run_kart, true);
    for (int i = 0; i < n; i++)
        out[i].peer = floor_of(out[i].arg);
    out[n++] = (bench_impl){.name = "raw-epoll", .modes = {"level", "edge"}, .run = run_raw_epoll};
    out[n++] = (bench_impl){.name = "raw-poll", .run = run_raw_poll, .peer = "raw-poll"};
#if KART_BENCH_HAVE_LIBUV
    out[n++] = (bench_impl){
        .name = "libuv", .modes = {"poll", "stream"}, .run = pp_run_libuv, .peer = "raw-epoll"};
#else
    out[n++] = (bench_impl){.name = "libuv", .skip = "libuv not installed"};
#endif
#if KART_BENCH_HAVE_LIBEVENT
    out[n++] = (bench_impl){.name = "libevent",
                            .modes = {"level", "edge"},
                            .run = pp_run_libevent,
                            .peer = "raw-epoll"};
    out[n++] = (bench_impl){.name = "libevent-poll",
                            .modes = {"level"},
                            .run = pp_run_libevent,
                            .arg = "poll",
                            .peer = "raw-poll"};
#else
    out[n++] = (bench_impl){.name = "libevent", .skip = "libevent not installed"};
    out[n++] = (bench_impl){.name = "libevent-poll", .skip = "libevent not installed"};
#endif
#if KART_BENCH_HAVE_LIBEV
    out[n++] = (bench_impl){
        .name = "libev-epoll", .run = pp_run_libev, .arg = "epoll", .peer = "raw-epoll"};
    out[n++] =
        (bench_impl){.name = "libev-poll", .run = pp_run_libev, .arg = "poll", .peer = "raw-poll"};
#else
    out[n++] = (bench_impl){.name = "libev-epoll", .skip = "libev not installed (libev-dev)"};
    out[n++] = (bench_impl){.name = "libev-poll", .skip = "libev not installed (libev-dev)"};
#endif
    return n;
}

const bench_scenario bench_pingpong = {
    .name = "pingpong",
    .summary = "round trips/s of a 1-byte token over 1 socketpair, and over 100 at once; "
               "each row against its backend's hand-written loop (raw-poll or raw-epoll)",
    .baseline = "raw-epoll",
    .nmetrics = 1,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 1.0,
    .quick_seconds = 0.2, /* tens of thousands of round trips even at 100 pairs */
};

/*
 * bench/pingpong_peers.c — the pingpong protocol on libuv and libevent,
 * each used the fastest way it honestly offers.
 *
 * libuv has two ways to be told a socket has a byte: a uv_poll_t (bare
 * readiness, then our own read and write: kart's model) and a stream
 * (uv_read_start() reads for us, uv_try_write() writes without queueing).
 * libevent has level- and edge-triggered persistent events. Each is a mode
 * of its implementation, and the harness keeps whichever is faster here.
 *
 * libevent-poll is libevent made to run on poll(2), checked at start: a
 * run on another backend fails. libev is in pingpong_libev.c (its ev.h and
 * libevent's event.h define the same names).
 */
#include "pingpong.h"

#include <stdlib.h>

#if KART_BENCH_HAVE_LIBUV
#include <uv.h>

typedef struct luv_end {
    union {
        uv_poll_t poll;
        uv_pipe_t pipe;
    } h; /* first, so that the callbacks' handle pointer is the end */
    pp_run *r;
    int pair;
    char buf[64];
} luv_end;

static void luv_ping_poll_cb(uv_poll_t *h, int status, int events)
{
    luv_end *e = (luv_end *)h;
    if (status < 0 || events != UV_READABLE)
        bench_fail("ping end of pair %d: status %s, events 0x%x", e->pair,
                   status < 0 ? uv_strerror(status) : "0", events);
    if (pp_ping_ready(e->r, e->pair))
        uv_stop(h->loop);
}

static void luv_pong_poll_cb(uv_poll_t *h, int status, int events)
{
    luv_end *e = (luv_end *)h;
    if (status < 0 || events != UV_READABLE)
        bench_fail("pong end of pair %d: status %s, events 0x%x", e->pair,
                   status < 0 ? uv_strerror(status) : "0", events);
    pp_pong_ready(e->r, e->pair);
}

/* A small buffer: a 1-byte read into it is short, which tells libuv the
 * socket is drained, as with a 64 KiB one, with less cache touched. */
static void luv_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    *buf = uv_buf_init(((luv_end *)h)->buf, sizeof(((luv_end *)h)->buf));
}

static void luv_try_write_token(uv_stream_t *s, int pair, uint8_t b)
{
    uv_buf_t buf = uv_buf_init((char *)&b, 1);
    int n = uv_try_write(s, &buf, 1);
    if (n != 1)
        bench_fail("pair %d: uv_try_write: %s", pair, n < 0 ? uv_strerror(n) : "short");
}

static void luv_check_read(luv_end *e, ssize_t nread)
{
    if (nread < 0 || nread > 1)
        bench_fail("pair %d: read %s", e->pair,
                   nread < 0 ? uv_strerror((int)nread) : "more than the one token in flight");
}

static void luv_ping_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    luv_end *e = (luv_end *)s;
    luv_check_read(e, nread);
    if (nread == 0) /* EAGAIN */
        return;
    int k = pp_ping_got(e->r, e->pair, (unsigned char)buf->base[0]);
    if (k > 0)
        luv_try_write_token(s, e->pair, e->r->sent[e->pair]);
    else if (k < 0)
        uv_stop(s->loop);
}

static void luv_pong_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    luv_end *e = (luv_end *)s;
    luv_check_read(e, nread);
    if (nread > 0)
        luv_try_write_token(s, e->pair, pp_pong_got(e->r, e->pair, (unsigned char)buf->base[0]));
}

int pp_run_libuv(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    int npairs = (int)bench_param_get(ctx->c, "pairs");
    bool stream = ctx->mode == 1;
    uv_loop_t loop;
    int err = uv_loop_init(&loop);
    if (err < 0)
        bench_fail("uv_loop_init: %s", uv_strerror(err));
    pp_run r;
    pp_open(&r, npairs);
    luv_end *ends = calloc((size_t)npairs * 2, sizeof(*ends));
    if (!ends)
        bench_fail("out of memory");
    for (int i = 0; i < npairs * 2; i++) {
        luv_end *e = &ends[i];
        int fd = r.fd[i / 2][i % 2];
        bool pong = i % 2;
        e->r = &r;
        e->pair = i / 2;
        if (stream) {
            err = uv_pipe_init(&loop, &e->h.pipe, 0);
            if (err == 0)
                err = uv_pipe_open(&e->h.pipe, fd);
            if (err == 0)
                err = uv_read_start((uv_stream_t *)&e->h.pipe, luv_alloc_cb,
                                    pong ? luv_pong_read_cb : luv_ping_read_cb);
        } else {
            err = uv_poll_init_socket(&loop, &e->h.poll, fd);
            if (err == 0)
                err = uv_poll_start(&e->h.poll, UV_READABLE,
                                    pong ? luv_pong_poll_cb : luv_ping_poll_cb);
        }
        if (err < 0)
            bench_fail("setting up %s handle: %s", stream ? "pipe" : "poll", uv_strerror(err));
    }
    /* pp_begin() writes the first tokens on the raw fds, which the pipes
     * share: libuv does not mind a write it did not make while its own
     * write queue is empty. */
    pp_begin(&r, ctx->seconds);
    uv_run(&loop, UV_RUN_DEFAULT);
    pp_finish(&r, ctx);
    for (int i = 0; i < npairs * 2; i++)
        uv_close((uv_handle_t *)&ends[i].h, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Closing a pipe closed its fd. */
    for (int i = 0; stream && i < npairs * 2; i++)
        r.fd[i / 2][i % 2] = -1;
    err = uv_loop_close(&loop);
    if (err < 0)
        bench_fail("uv_loop_close: %s", uv_strerror(err));
    free(ends);
    pp_close(&r);
    return 0;
}
#endif

#if KART_BENCH_HAVE_LIBEVENT
#include <event2/event.h>

typedef struct ev_end {
    struct event *ev;
    struct event_base *base;
    pp_run *r;
    int pair;
} ev_end;

static void ev_ping_cb(evutil_socket_t fd, short what, void *arg)
{
    ev_end *e = arg;
    (void)fd;
    if ((what & ~EV_ET) != EV_READ)
        bench_fail("ping end of pair %d: events 0x%x", e->pair, (unsigned)what);
    if (pp_ping_ready(e->r, e->pair))
        event_base_loopbreak(e->base);
}

static void ev_pong_cb(evutil_socket_t fd, short what, void *arg)
{
    ev_end *e = arg;
    (void)fd;
    if ((what & ~EV_ET) != EV_READ)
        bench_fail("pong end of pair %d: events 0x%x", e->pair, (unsigned)what);
    pp_pong_ready(e->r, e->pair);
}

/* libevent on the backend impl->arg names ("poll"), or on its default
 * (epoll on Linux) when NULL. libevent has no call that picks a backend,
 * only ones that rule backends out, so the others are avoided and the
 * outcome is checked: a run on some other backend would compare the wrong
 * things. */
static struct event_base *ev_base_on(const char *method)
{
    if (!method)
        return event_base_new();
    static const char *const others[] = {"epoll", "select", "devpoll", "kqueue", "evport", "win32"};
    struct event_config *cfg = event_config_new();
    if (!cfg)
        bench_fail("event_config_new failed");
    for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++)
        if (strcmp(others[i], method) != 0 && event_config_avoid_method(cfg, others[i]) < 0)
            bench_fail("event_config_avoid_method(%s) failed", others[i]);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (base && strcmp(event_base_get_method(base), method) != 0)
        bench_fail("libevent runs on %s, not %s", event_base_get_method(base), method);
    return base;
}

int pp_run_libevent(const bench_impl *impl, bench_ctx *ctx)
{
    int npairs = (int)bench_param_get(ctx->c, "pairs");
    struct event_base *base = ev_base_on(impl->arg);
    if (!base)
        bench_fail("event_base_new failed");
    if (!impl->arg && strcmp(event_base_get_method(base), "epoll") != 0)
        bench_fail("libevent runs on %s, not its Linux default epoll", event_base_get_method(base));
    pp_run r;
    pp_open(&r, npairs);
    ev_end *ends = calloc((size_t)npairs * 2, sizeof(*ends));
    if (!ends)
        bench_fail("out of memory");
    short flags = EV_READ | EV_PERSIST | (ctx->mode == 1 ? EV_ET : 0);
    int err = 0;
    for (int i = 0; i < npairs * 2 && err == 0; i++) {
        ev_end *e = &ends[i];
        *e = (ev_end){.base = base, .r = &r, .pair = i / 2};
        e->ev = event_new(base, r.fd[i / 2][i % 2], flags, i % 2 ? ev_pong_cb : ev_ping_cb, e);
        if (!e->ev)
            bench_fail("event_new failed");
        /* A backend without edge triggering refuses EV_ET here. */
        if (event_add(e->ev, NULL) < 0)
            err = -ENOTSUP;
    }
    if (err == 0) {
        pp_begin(&r, ctx->seconds);
        if (event_base_loop(base, 0) < 0)
            bench_fail("event_base_loop failed");
        pp_finish(&r, ctx);
    }
    for (int i = 0; i < npairs * 2; i++)
        if (ends[i].ev)
            event_free(ends[i].ev);
    event_base_free(base);
    free(ends);
    pp_close(&r);
    return err;
}
#endif

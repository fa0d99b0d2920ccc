/*
 * bench/echo_peers.c — the echo servers kart's example is measured
 * against, each run by bench_server_fork() in a process of its own:
 *
 *  - raw-epoll: what a careful programmer writes by hand. Edge-triggered,
 *    each connection registered once for input and output, read into one
 *    shared 64 KiB buffer and written straight back; a short read ends the
 *    reading (with edge triggering, bytes that arrive later raise a new
 *    edge), and a write the socket cannot take whole parks the rest and
 *    stops reading that connection until it is out.
 *  - raw-poll: the same by hand over poll(2), the peer of kart-poll. One
 *    pollfd array, kept dense (a closed connection's slot takes the last
 *    one's) beside an array of connections; level-triggered, so each
 *    connection asks for POLLIN, or for POLLOUT alone while a remainder is
 *    parked; only the entries with revents are touched, and the scan stops
 *    once poll's count of ready entries is used up.
 *  - libuv: its stream API (uv_tcp_t), the way libuv is meant to be used,
 *    with its fast path: the read callback's bytes go back with
 *    uv_try_write(), and only a remainder is queued with uv_write().
 *  - libevent: its raw event API (faster than bufferevents, which copy into
 *    evbuffers), edge-triggered, with the same read/write logic as
 *    raw-epoll.
 *
 * All set TCP_NODELAY on accepted connections, as kart's example does.
 */
#include "echo_peers.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#if KART_BENCH_HAVE_LIBUV
#include <uv.h>
#endif
#if KART_BENCH_HAVE_LIBEVENT
#include <event2/event.h>
#endif

enum { BUFSIZE = 1 << 16 };
static char shared_buf[BUFSIZE];

/* A connection of raw-epoll and libevent. */
typedef struct peer_conn {
    int fd;
    char *pend; /* bytes not yet written back, or NULL */
    size_t plen, poff;
    void *ev; /* libevent: the connection's event */
} peer_conn;

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void conn_free(peer_conn *c)
{
    close(c->fd);
    free(c->pend);
    free(c);
}

/* Writes the parked bytes; 1 when all are out, 0 when the socket is full,
 * -1 on error. */
static int flush_pending(peer_conn *c)
{
    while (c->poff < c->plen) {
        ssize_t n = send(c->fd, c->pend + c->poff, c->plen - c->poff, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : errno == EINTR ? flush_pending(c) : -1;
        c->poff += (size_t)n;
    }
    free(c->pend);
    c->pend = NULL;
    return 1;
}

/* Reads and echoes until the input is drained or the output is full.
 * Returns -1 when the connection is to be closed. */
static int echo_ready(peer_conn *c)
{
    if (c->pend) {
        int r = flush_pending(c);
        if (r <= 0)
            return r;
    }
    for (;;) {
        ssize_t n = recv(c->fd, shared_buf, BUFSIZE, 0);
        if (n <= 0)
            return n < 0 && errno == EAGAIN ? 0 : n < 0 && errno == EINTR ? echo_ready(c) : -1;
        ssize_t w = send(c->fd, shared_buf, (size_t)n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN)
            return -1;
        if (w < n) {
            size_t off = w > 0 ? (size_t)w : 0;
            c->plen = (size_t)n - off;
            c->poff = 0;
            c->pend = malloc(c->plen);
            if (!c->pend)
                return -1;
            memcpy(c->pend, shared_buf + off, c->plen);
            return 0;
        }
        if (n < BUFSIZE)
            return 0;
    }
}

/* ---- raw epoll ---- */

void echo_serve_raw_epoll(int lfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        _exit(1);
    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < n; i++) {
            peer_conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    nodelay(fd);
                    peer_conn *nc = calloc(1, sizeof(*nc));
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                              .data.ptr = nc};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0)
                        conn_free(nc);
                }
                continue;
            }
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                conn_free(c); /* close() also takes it out of the epoll set */
                continue;
            }
            /* EPOLLRDHUP: the read below sees the EOF and closes. */
            if (echo_ready(c) < 0)
                conn_free(c);
        }
    }
}

/* ---- raw poll ---- */

void echo_serve_raw_poll(int lfd)
{
    size_t cap = 64, n = 1;
    struct pollfd *pfd = calloc(cap, sizeof(*pfd));
    peer_conn **conn = calloc(cap, sizeof(*conn)); /* conn[i] serves pfd[i]; [0] listens */
    if (!pfd || !conn)
        _exit(1);
    pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
    for (;;) {
        int ready = poll(pfd, (nfds_t)n, -1);
        if (ready < 0 && errno != EINTR)
            _exit(1);
        ready -= ready > 0 && pfd[0].revents; /* the listener: last */
        /* Connections from the end down: a closed one's slot takes the
         * last entry, which has been looked at already. */
        for (size_t i = n - 1; ready > 0 && i >= 1; i--) {
            if (!pfd[i].revents)
                continue;
            ready--;
            peer_conn *c = conn[i];
            if ((pfd[i].revents & (POLLERR | POLLNVAL)) || echo_ready(c) < 0) {
                conn_free(c);
                n--;
                pfd[i] = pfd[n];
                conn[i] = conn[n];
                continue;
            }
            /* POLLHUP with bytes still to read: the read sees the EOF. */
            pfd[i].events = c->pend ? POLLOUT : POLLIN;
        }
        if (!(pfd[0].revents & POLLIN))
            continue;
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            if (n == cap) {
                struct pollfd *np = realloc(pfd, 2 * cap * sizeof(*pfd));
                if (np)
                    pfd = np;
                peer_conn **nc = np ? realloc(conn, 2 * cap * sizeof(*conn)) : NULL;
                if (!nc) {
                    close(fd);
                    continue;
                }
                conn = nc;
                cap *= 2;
            }
            peer_conn *c = calloc(1, sizeof(*c));
            if (!c) {
                close(fd);
                continue;
            }
            nodelay(fd);
            c->fd = fd;
            pfd[n] = (struct pollfd){.fd = fd, .events = POLLIN};
            conn[n++] = c;
        }
    }
}

/* ---- libuv ---- */

#if KART_BENCH_HAVE_LIBUV
typedef struct uv_conn {
    uv_tcp_t tcp;
    uv_write_t wr;
    char *pend;
} uv_conn;

static void echo_uv_closed(uv_handle_t *h)
{
    uv_conn *c = (uv_conn *)h;
    free(c->pend);
    free(c);
}

static void echo_uv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    /* One buffer for all: the bytes leave again inside the read callback
     * (uv_try_write), or are copied out when they cannot. */
    *buf = uv_buf_init(shared_buf, BUFSIZE);
}

static void echo_uv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void echo_uv_written(uv_write_t *wr, int status)
{
    uv_conn *c = wr->data;
    free(c->pend);
    c->pend = NULL;
    if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, echo_uv_alloc, echo_uv_read) < 0)
        uv_close((uv_handle_t *)&c->tcp, echo_uv_closed);
}

static void echo_uv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    uv_conn *c = (uv_conn *)s;
    if (n == 0)
        return;
    if (n < 0) {
        uv_close((uv_handle_t *)s, echo_uv_closed);
        return;
    }
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
    int w = uv_try_write(s, &b, 1);
    if (w == n)
        return;
    if (w < 0 && w != UV_EAGAIN) {
        uv_close((uv_handle_t *)s, echo_uv_closed);
        return;
    }
    size_t off = w > 0 ? (size_t)w : 0;
    c->pend = malloc((size_t)n - off);
    if (!c->pend) {
        uv_close((uv_handle_t *)s, echo_uv_closed);
        return;
    }
    memcpy(c->pend, buf->base + off, (size_t)n - off);
    b = uv_buf_init(c->pend, (unsigned)((size_t)n - off));
    c->wr.data = c;
    uv_read_stop(s);
    if (uv_write(&c->wr, s, &b, 1, echo_uv_written) < 0)
        uv_close((uv_handle_t *)s, echo_uv_closed);
}

static void echo_uv_on_conn(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, echo_uv_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, echo_uv_alloc, echo_uv_read);
}

void echo_serve_libuv(int lfd)
{
    uv_loop_t *loop = uv_default_loop();
    static uv_tcp_t server;
    uv_tcp_init(loop, &server);
    if (uv_tcp_open(&server, lfd) < 0 ||
        uv_listen((uv_stream_t *)&server, 4096, echo_uv_on_conn) < 0)
        _exit(1);
    uv_run(loop, UV_RUN_DEFAULT);
}
#endif

/* ---- libevent ---- */

#if KART_BENCH_HAVE_LIBEVENT
static struct event_base *ev_base;

static void ev_conn_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    peer_conn *c = arg;
    if (echo_ready(c) < 0) {
        event_free(c->ev);
        conn_free(c);
    }
}

static void ev_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    (void)arg;
    int fd;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        nodelay(fd);
        peer_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->ev = event_new(ev_base, fd, EV_READ | EV_WRITE | EV_PERSIST | EV_ET, ev_conn_cb, c);
        if (!c->ev || event_add(c->ev, NULL) < 0) {
            if (c->ev)
                event_free(c->ev);
            conn_free(c);
        }
    }
}

void echo_serve_libevent(int lfd)
{
    ev_base = event_base_new();
    struct event *lev =
        ev_base ? event_new(ev_base, lfd, EV_READ | EV_PERSIST, ev_accept_cb, NULL) : NULL;
    if (!lev || event_add(lev, NULL) < 0)
        _exit(1);
    event_base_dispatch(ev_base);
}
#endif

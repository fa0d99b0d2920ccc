/*
 * examples/http-server.c — a minimal HTTP/1.1 keep-alive server on kart's
 * completion I/O (kart/io.h): `GET /` answers 200 "Hello, World!".
 *
 *   build/examples/http-server --port P [--host H] [--threads N] [--backend B]
 *                              [--header-timeout S] [--keepalive-timeout S]
 *                              [--max-conns N] [--max-header B] [--max-body B]
 *                              [--console ADDRESS --console-authkey-file F]
 *
 * The frame (loops per thread, SO_REUSEPORT, pinning, signals) is
 * examples/server.h; the request parser is examples/http_parse.h (fuzzed by
 * fuzz/fuzz_http.c). Behaviour:
 *  - GET or HEAD of / → 200 with "Hello, World!"; another target → 404;
 *    another method → 405. Keep-alive by default for HTTP/1.1, on request
 *    for HTTP/1.0; "Connection: close" is honoured.
 *  - Pipelined requests are answered in order, and every response a
 *    received buffer produces goes out in one send.
 *  - A malformed request gets 400, a head over --max-header (8 KiB) gets
 *    431, a body over --max-body (1 MiB) gets 413; each closes the
 *    connection once the response is out. Request bodies (Content-Length)
 *    are read and discarded; chunked bodies are refused (400).
 *  - It defends itself as nginx does by default (docs/servers.md, "Hostile
 *    peers"): a request head must arrive whole within --header-timeout
 *    (60 s, client_header_timeout), an idle keep-alive connection is closed
 *    after --keepalive-timeout (75 s), a body being discarded must keep
 *    moving (the header timeout, between reads), and past --max-conns open
 *    connections a new one gets 503 and is closed. The deadlines are one
 *    kart_sock_set_idle_timeout() per connection, changed only when the
 *    connection changes state: a keep-alive client that sends whole
 *    requests costs no timer operation per request.
 *
 * The data path: requests are parsed straight from the buffer the receive
 * lends (only a request split across two receives is copied, into the
 * connection's own buffer), responses are copied from a prebuilt one into
 * the connection's output buffer, and nothing is allocated per request.
 * Two output buffers alternate: one being sent, one filling.
 *
 * This is the very program kart-bench's `http` scenario measures.
 */
#include "console.h"
#include "http_parse.h"
#include "server.h"

#include <sys/resource.h>
#include <time.h>

/* The defences, and their defaults (nginx's where it has one). */
static int64_t opt_header_ns = INT64_C(60) * 1000000000;    /* client_header_timeout */
static int64_t opt_keepalive_ns = INT64_C(75) * 1000000000; /* keepalive_timeout */
static size_t opt_max_head = 8192;                          /* large_client_header_buffers */
static uint64_t opt_max_body = 1u << 20;                    /* client_max_body_size */
static long opt_max_conns = -1; /* -1: the descriptor limit less a reserve (main) */
/* How long a closing connection (after 400, 413, 431, 503) may take to
 * read its last response and close, from its last response on, whatever
 * it sends meanwhile (nginx's lingering_time, shorter). */
#define LINGER_NS (INT64_C(5) * 1000000000)
/* Refusals being sent at once; past this a connection is closed at once,
 * without its 503 (a flood must not hold descriptors through refusals). */
#define MAX_REFUSING 256
/* Output held back before the connection stops reading: a client that
 * pipelines without reading its responses cannot grow it without bound. */
#define MAX_OUT (256 * 1024)

typedef struct outbuf {
    char *p;
    size_t len, cap;
} outbuf;

typedef struct http_conn {
    srv_conn base; /* first: a kart_sock * is an http_conn * */
    kart_req send_req, shut_req;
    outbuf out[2];
    int filling;   /* the out[] being appended to */
    int sending;   /* out[!filling] is in flight */
    int paused;    /* receive stopped: too much output pending */
    int finishing; /* close after the responses queued so far */
    int shut;      /* the write side's shutdown is queued */
    uint64_t skip; /* body bytes still to discard */
    char *in;      /* a request split across receives */
    size_t in_len, in_cap;
    int refused;       /* over --max-conns: a 503, then closed */
    int tmode;         /* the deadline armed now (T_*) */
    int64_t head_from; /* loop time the head being read (or the linger) began */
} http_conn;

/* The deadline a connection has, by what it waits for. */
enum { T_NONE, T_HEADER, T_KEEPALIVE, T_BODY, T_LINGER };

/* Connections open (not counting refusals) and refusals in progress, over
 * every worker thread. */
static long http_open, http_refusing;

/* Per worker: the prebuilt responses, redone when the second changes
 * (the Date header). */
typedef struct http_worker {
    int64_t second;
    char ok[256], ok_head[256];
    size_t ok_len, ok_head_len;
    char date[64];
} http_worker;

static void on_recv(kart_sock *sock, int nread, kart_buf *buf);

static void refresh(http_worker *hw, kart_loop *loop)
{
    int64_t now = kart_loop_now(loop) / 1000000000;
    if (now == hw->second)
        return;
    hw->second = now;
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(hw->date, sizeof(hw->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    static const char body[] = "Hello, World!";
    hw->ok_head_len = (size_t)snprintf(hw->ok_head, sizeof(hw->ok_head),
                                       "HTTP/1.1 200 OK\r\nServer: kart\r\nDate: %s\r\n"
                                       "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
                                       hw->date, sizeof(body) - 1);
    memcpy(hw->ok, hw->ok_head, hw->ok_head_len);
    memcpy(hw->ok + hw->ok_head_len, body, sizeof(body) - 1);
    hw->ok_len = hw->ok_head_len + sizeof(body) - 1;
}

static int append(outbuf *o, const char *p, size_t n)
{
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 2048;
        while (cap < o->len + n)
            cap *= 2;
        char *q = realloc(o->p, cap);
        if (!q)
            return -1;
        o->p = q;
        o->cap = cap;
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
    return 0;
}

/* Appends a whole response. Extra headers (Connection) go in before the
 * blank line that ends the head. */
static int respond(http_conn *c, int status, const char *reason, const char *extra, bool head_only)
{
    outbuf *o = &c->out[c->filling];
    http_worker *hw = c->base.w->data;
    if (status == 200 && !extra)
        return head_only ? append(o, hw->ok_head, hw->ok_head_len) : append(o, hw->ok, hw->ok_len);
    char hdr[512];
    const char *body = status == 200 ? "Hello, World!" : reason;
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nServer: kart\r\nDate: %s\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %zu\r\n%s%s\r\n",
                     status, reason, hw->date, strlen(body) + (status == 200 ? 0 : 1),
                     status == 405 ? "Allow: GET, HEAD\r\n" : "", extra ? extra : "");
    if (append(o, hdr, (size_t)n) < 0)
        return -1;
    if (head_only)
        return 0;
    return status == 200                       ? append(o, body, strlen(body))
           : append(o, body, strlen(body)) < 0 ? -1
                                               : append(o, "\n", 1);
}

static void on_sent(kart_req *req, int result);

static void on_shut(kart_req *req, int result)
{
    if (result < 0)
        srv_conn_close(req->data);
}

/* Sends what has been appended, if no send is in flight; queues the
 * write side's shutdown behind the last response of a closing
 * connection. */
static void flush(http_conn *c)
{
    if (c->base.closing)
        return;
    outbuf *o = &c->out[c->filling];
    if (!c->sending && o->len > 0) {
        if (kart_sock_send(&c->base.sock, &c->send_req, o->p, o->len, -1, on_sent) < 0) {
            srv_conn_close(&c->base);
            return;
        }
        c->sending = 1;
        c->filling ^= 1;
    }
    if (c->finishing && !c->shut && c->out[c->filling].len == 0) {
        /* A half-close, not a close: the client reads every response
         * before it sees the end, and no reset from unread input can
         * overtake them. The receive goes on, discarding, until EOF. */
        c->shut = 1;
        if (kart_sock_shutdown(&c->base.sock, &c->shut_req, SHUT_WR, on_shut) < 0)
            srv_conn_close(&c->base);
    }
}

static void on_sent(kart_req *req, int result)
{
    http_conn *c = (http_conn *)req->sock;
    c->sending = 0;
    c->out[c->filling ^ 1].len = 0;
    if (result < 0) {
        srv_conn_close(&c->base);
        return;
    }
    flush(c);
    if (c->paused && !c->base.closing && c->out[c->filling].len < MAX_OUT) {
        c->paused = 0;
        if (kart_sock_recv_start(&c->base.sock, on_recv) < 0)
            srv_conn_close(&c->base);
    }
}

static void on_idle(kart_sock *sock)
{
    srv_conn_close((srv_conn *)sock);
}

/* Arms the deadline for what the connection waits for now. The header's
 * is absolute (the whole head within --header-timeout of its first byte,
 * or of the accept): re-armed for the time left at each piece of a head,
 * so a client trickling a byte at a time cannot stretch it. The others are
 * idle deadlines that move with each byte, and are left alone while the
 * mode stays the same: nothing per request on a busy keep-alive
 * connection. */
static void arm(http_conn *c, int mode)
{
    if (c->base.closing)
        return;
    int64_t ns;
    kart_loop *loop = c->base.sock.base.loop;
    if (mode == T_HEADER || mode == T_LINGER) {
        /* Absolute: a peer sending garbage after its 400 cannot hold the
         * connection by sending, any more than a trickled head can. */
        if (c->tmode != mode)
            c->head_from = kart_loop_now(loop);
        ns = (mode == T_HEADER ? opt_header_ns : LINGER_NS) - (kart_loop_now(loop) - c->head_from);
        if (ns <= 0) {
            srv_conn_close(&c->base);
            return;
        }
    } else if (mode == c->tmode) {
        return;
    } else {
        ns = mode == T_KEEPALIVE ? opt_keepalive_ns : opt_header_ns;
    }
    c->tmode = mode;
    if (kart_sock_set_idle_timeout(&c->base.sock, ns, on_idle) < 0)
        srv_conn_close(&c->base); /* -ENOMEM: a connection without a deadline is not kept */
}

/* Answers the requests in data[0, len); returns the bytes consumed (the
 * rest is the start of a request not complete yet), or -1 to close. */
static long process(http_conn *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len && !c->finishing) {
        if (c->skip) {
            size_t k = len - off < c->skip ? len - off : (size_t)c->skip;
            off += k;
            c->skip -= k;
            continue;
        }
        http_request r;
        int n = http_parse_request(data + off, len - off, opt_max_head, &r);
        if (n == HTTP_INCOMPLETE)
            break;
        if (n < 0) {
            c->finishing = 1;
            off = len;
            if (n == HTTP_TOO_LARGE
                    ? respond(c, 431, "Request Header Fields Too Large", "Connection: close\r\n",
                              false)
                    : respond(c, 400, "Bad Request", "Connection: close\r\n", false))
                return -1;
            break;
        }
        if (r.content_length > opt_max_body) {
            /* Refused before a byte of it is read: 413, and close. */
            c->finishing = 1;
            off = len;
            if (respond(c, 413, "Content Too Large", "Connection: close\r\n", false))
                return -1;
            break;
        }
        off += (size_t)n;
        c->skip = r.content_length;
        bool get = r.method_len == 3 && memcmp(r.method, "GET", 3) == 0;
        bool head = r.method_len == 4 && memcmp(r.method, "HEAD", 4) == 0;
        const char *extra = NULL;
        if (!r.keep_alive || opt_keepalive_ns == 0) {
            c->finishing = 1;
            extra = "Connection: close\r\n";
        } else if (r.minor == 0) {
            extra = "Connection: keep-alive\r\n";
        }
        int err;
        if (!get && !head)
            err = respond(c, 405, "Method Not Allowed", extra, false);
        else if (r.target_len == 1 && r.target[0] == '/')
            err = respond(c, 200, "OK", extra, head);
        else
            err = respond(c, 404, "Not Found", extra, head);
        if (err < 0)
            return -1;
    }
    return (long)off;
}

static void on_recv(kart_sock *sock, int nread, kart_buf *buf)
{
    http_conn *c = (http_conn *)sock;
    if (nread <= 0) { /* EOF or an error: the receive has stopped */
        srv_conn_close(&c->base);
        return;
    }
    if (c->finishing) { /* after the last response: discard until EOF */
        kart_buf_release(buf);
        arm(c, T_LINGER);
        return;
    }
    refresh(c->base.w->data, sock->base.loop);
    const char *data = buf->base;
    size_t len = (size_t)nread;
    if (c->in_len > 0) {
        /* The start of a request came earlier: append, parse the whole. */
        if (c->in_len + len > c->in_cap) {
            size_t cap = c->in_len + len;
            char *q = realloc(c->in, cap);
            if (!q) {
                kart_buf_release(buf);
                srv_conn_close(&c->base);
                return;
            }
            c->in = q;
            c->in_cap = cap;
        }
        memcpy(c->in + c->in_len, data, len);
        kart_buf_release(buf);
        buf = NULL;
        data = c->in;
        len = c->in_len + len;
    }
    long used = process(c, data, len);
    if (used < 0) {
        kart_buf_release(buf);
        srv_conn_close(&c->base);
        return;
    }
    size_t rest = len - (size_t)used;
    if (rest > 0 && !c->finishing) {
        /* Less than --max-header: a longer head got its 431 in
         * process(), so c->in never holds more than that. */
        if (buf) {
            if (rest > c->in_cap) {
                /* Sized to what is held (a power of two from 256), not to
                 * --max-header: 5,000 slow heads of 34 bytes each held
                 * 8 KiB, 40 MB, and under churn every new one was a fresh
                 * 8 KiB from malloc (page faults, its bins walked). */
                size_t cap = 256;
                while (cap < rest)
                    cap *= 2;
                char *q = realloc(c->in, cap);
                if (!q) {
                    kart_buf_release(buf);
                    srv_conn_close(&c->base);
                    return;
                }
                c->in = q;
                c->in_cap = cap;
            }
            memcpy(c->in, data + used, rest);
        } else {
            memmove(c->in, c->in + used, rest);
        }
    }
    c->in_len = c->finishing ? 0 : rest;
    kart_buf_release(buf);
    arm(c, c->finishing ? T_LINGER : c->skip ? T_BODY : c->in_len ? T_HEADER : T_KEEPALIVE);
    flush(c);
    if (!c->base.closing && c->out[c->filling].len >= MAX_OUT) {
        c->paused = 1;
        kart_sock_recv_stop(sock);
    }
}

static srv_conn *conn_new(srv_worker *w, int fd)
{
    /* Over the cap: a refusal (503, then close), unless too many are
     * being refused already. */
    int refused = 0;
    if (opt_max_conns >= 0 && __atomic_load_n(&http_open, __ATOMIC_RELAXED) >= opt_max_conns) {
        if (__atomic_fetch_add(&http_refusing, 1, __ATOMIC_RELAXED) >= MAX_REFUSING) {
            __atomic_fetch_sub(&http_refusing, 1, __ATOMIC_RELAXED);
            close(fd);
            return NULL;
        }
        refused = 1;
    } else {
        __atomic_fetch_add(&http_open, 1, __ATOMIC_RELAXED);
    }
    http_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        __atomic_fetch_sub(refused ? &http_refusing : &http_open, 1, __ATOMIC_RELAXED);
        close(fd);
        return NULL;
    }
    srv_conn_link(w, &c->base);
    c->shut_req.data = c;
    c->refused = refused;
    if (kart_sock_init(w->loop, &c->base.sock, fd) < 0 ||
        kart_sock_recv_start(&c->base.sock, on_recv) < 0) {
        srv_conn_close(&c->base);
        return &c->base;
    }
    if (refused) {
        refresh(w->data, w->loop);
        c->finishing = 1;
        if (respond(c, 503, "Service Unavailable", "Connection: close\r\n", false) < 0) {
            srv_conn_close(&c->base);
            return &c->base;
        }
        arm(c, T_LINGER);
        flush(c);
    } else {
        arm(c, T_HEADER);
    }
    return &c->base;
}

static void conn_free(srv_conn *base)
{
    http_conn *c = (http_conn *)base;
    __atomic_fetch_sub(c->refused ? &http_refusing : &http_open, 1, __ATOMIC_RELAXED);
    free(c->out[0].p);
    free(c->out[1].p);
    free(c->in);
    free(c);
}

static int worker_init(srv_worker *w)
{
    http_worker *hw = calloc(1, sizeof(*hw));
    if (!hw)
        return -ENOMEM;
    hw->second = -1;
    w->data = hw;
    refresh(hw, w->loop);
    return console_worker_init(w);
}

/* Seconds (a decimal: "2", "0.5") to nanoseconds; -1 when not one. */
static int64_t parse_seconds(const char *v)
{
    char *end = NULL;
    double d = v ? strtod(v, &end) : -1;
    if (!v || end == v || *end || !(d >= 0) || d > 1e6)
        return -1;
    return (int64_t)(d * 1e9);
}

static int parse_option(const char *flag, const char *value)
{
    char *end = NULL;
    if (strcmp(flag, "--header-timeout") == 0 || strcmp(flag, "--keepalive-timeout") == 0) {
        int64_t ns = parse_seconds(value);
        bool header = flag[2] == 'h';
        if (ns < 0 || (header && ns == 0)) {
            fprintf(stderr, "http-server: bad value for %s: %s (seconds%s)\n", flag,
                    value ? value : "(none)", header ? ", above 0" : "");
            return -1;
        }
        *(header ? &opt_header_ns : &opt_keepalive_ns) = ns;
        return 1;
    }
    if (strcmp(flag, "--max-conns") == 0 || strcmp(flag, "--max-header") == 0 ||
        strcmp(flag, "--max-body") == 0) {
        unsigned long long n = value && *value != '-' ? strtoull(value, &end, 10) : 0;
        bool conns = flag[6] == 'c', head = flag[6] == 'h';
        if (!value || !end || *end || end == value || (conns && n > 10000000) ||
            (head && (n < 64 || n > (16u << 20)))) {
            fprintf(stderr, "http-server: bad value for %s: %s\n", flag, value ? value : "(none)");
            return -1;
        }
        if (conns)
            opt_max_conns = (long)n;
        else if (head)
            opt_max_head = (size_t)n;
        else
            opt_max_body = n;
        return 1;
    }
    return console_parse_option(flag, value);
}

#define HTTP_USAGE                                                                                 \
    "  --header-timeout S            a request head must arrive whole within S seconds (60)\n"     \
    "  --keepalive-timeout S         close a keep-alive connection idle for S seconds (75;\n"      \
    "                                0: no keep-alive)\n"                                          \
    "  --max-conns N                 past N open connections, answer 503 and close (the\n"         \
    "                                descriptor limit less 64)\n"                                  \
    "  --max-header B                a request head over B bytes gets 431 (8192)\n"                \
    "  --max-body B                  a request body over B bytes gets 413 "                        \
    "(1048576)\n" CONSOLE_USAGE

int main(int argc, char **argv)
{
    static const srv_program prog = {.name = "http-server",
                                     .conn_new = conn_new,
                                     .conn_free = conn_free,
                                     .worker_init = worker_init,
                                     .parse_option = parse_option,
                                     .usage_extra = HTTP_USAGE,
                                     .worker_stop = console_worker_stop,
                                     /* Thousands of connections (the hostile
                                      * scenario holds 6,000): see server.h. */
                                     .uring_entries = 4096};
    /* The default cap: refuse cleanly (503) before the descriptor limit
     * makes the kernel refuse rudely; 64 are kept for listeners, the
     * console, the loops' own descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        opt_max_conns = rl.rlim_cur > 128 ? (long)rl.rlim_cur - 64 : 64;
    int status = srv_main(&prog, argc, argv);
    for (int i = 0; i < srv_nworkers; i++)
        free(srv_workers[i].data);
    return status;
}

/*
 * examples/echo-server.c — a TCP echo server on kart's completion I/O
 * (kart/io.h): whatever a client sends comes back, in order.
 *
 *   build/examples/echo-server --port P [--host H] [--threads N] [--backend B]
 *                              [--console ADDRESS --console-authkey-file F]
 *
 * One loop per thread, each with its own SO_REUSEPORT listener and pinned
 * to a CPU (examples/server.h); prints "listening on port P ..." when
 * ready (--port 0 picks a free port); exits 0 after SIGINT or SIGTERM.
 *
 * The data path copies nothing: a receive lends a buffer from the loop's
 * pool, the same buffer is sent back, and the send's completion hands it
 * back to the pool. On io_uring that is a multishot receive into the
 * provided-buffer ring and one send per received buffer, all submitted in
 * the loop's one io_uring_enter per turn; on epoll, poll and select kart
 * emulates the same calls over readiness. Nothing is allocated per
 * request; a connection is one allocation of 320 bytes (the send requests
 * are the pool's, one per buffer: kart_sock_send_buf). A connection that has
 * SEND_SLOTS buffers still being sent stops receiving until one is done,
 * so a client that sends without reading cannot make the server hoard
 * buffers: the kernel's socket buffers hold the rest.
 *
 * This is the very program kart-bench's `echo` scenario measures.
 */
#include "console.h"
#include "server.h"

/* Sends in flight per connection before its receive pauses. */
#define SEND_SLOTS 4

/* What a connection holds: the frame's part and two counters. The sends
 * use kart_sock_send_buf(), whose requests belong to the loop's pool (one
 * per buffer), so an idle connection carries no send request of its own:
 * four kart_req here made a connection 1,024 bytes against 320. */
typedef struct echo_conn {
    srv_conn base;    /* first: a kart_sock * is an echo_conn * */
    uint8_t inflight; /* buffers being sent back */
    uint8_t paused;   /* receiving stopped: SEND_SLOTS in flight */
} echo_conn;

static void on_recv(kart_sock *sock, int nread, kart_buf *buf);

static void on_sent(kart_sock *sock, int result)
{
    echo_conn *c = (echo_conn *)sock;
    c->inflight--; /* the pool has taken the buffer back */
    if (result < 0) {
        srv_conn_close(&c->base);
        return;
    }
    if (c->paused && !c->base.closing) {
        c->paused = 0;
        if (kart_sock_recv_start(&c->base.sock, on_recv) < 0)
            srv_conn_close(&c->base);
    }
}

static void on_recv(kart_sock *sock, int nread, kart_buf *buf)
{
    echo_conn *c = (echo_conn *)sock;
    if (nread == 0) {
        /* EOF: the client is done sending, not necessarily reading. The
         * close is graceful: what is still queued goes back first (an
         * abortive close here lost the tail of a large echo on io_uring). */
        srv_conn_close(&c->base);
        return;
    }
    if (nread < 0) { /* an error: nobody will read the rest */
        srv_conn_abort(&c->base);
        return;
    }
    if (kart_sock_send_buf(sock, buf, (size_t)nread, on_sent) < 0) {
        kart_buf_release(buf); /* on an error the buffer stays ours */
        srv_conn_close(&c->base);
        return;
    }
    if (++c->inflight == SEND_SLOTS) {
        c->paused = 1;
        kart_sock_recv_stop(sock);
    }
}

static srv_conn *conn_new(srv_worker *w, int fd)
{
    echo_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return NULL;
    }
    srv_conn_link(w, &c->base);
    if (kart_sock_init(w->loop, &c->base.sock, fd) < 0 ||
        kart_sock_recv_start(&c->base.sock, on_recv) < 0)
        srv_conn_close(&c->base);
    return &c->base;
}

static void conn_free(srv_conn *c)
{
    free(c);
}

/*
 * The receive buffer pool. A buffer stays lent while its bytes are being
 * sent back, so the pool must outnumber the buffers in flight at once, or
 * receives pause until one comes back (kart_loop_io_stats(): enobufs).
 *  - io_uring: the kernel hands buffers out in ring order, so every buffer
 *    in the ring cycles through the caches and becomes resident (the ring
 *    holds only part of the pool since 2026-12-07, grown as receives find
 *    it empty: uring/uring_io.c); these figures are from when it held the
 *    whole pool. 256 x 16 KiB (4 MiB): 512 (8 MiB) cost about a fifth of the
 *    16 KiB echo's throughput in kart-bench echo (98k-118k req/s against
 *    128k-139k with 128 buffers, interleaved runs); 128 ran dry 392 times
 *    with 10,000 busy connections, 256 never (a receive only takes a buffer
 *    when data is there, and sends complete within the same enter).
 *  - readiness backends: kart emulates the receives, and a readable socket
 *    takes its buffer before the loop delivers the send completions that
 *    return earlier ones, so one turn can hold a buffer per ready socket
 *    (thousands of the 10,000). 512 ran dry there, and each pause and
 *    resume costs two epoll_ctl calls: 4096. The emulation's free buffers
 *    are a stack, so only the peak in use ever becomes resident.
 * 16 KiB: a 16 KiB request fits one buffer.
 */
static int worker_init(srv_worker *w)
{
    kart_io_stats st;
    int err = kart_loop_io_stats(w->loop, &st);
    if (err < 0)
        return err;
    if ((err = kart_loop_set_bufpool(w->loop, st.native ? 256 : 4096, 16384)) < 0)
        return err;
    return console_worker_init(w);
}

int main(int argc, char **argv)
{
    static const srv_program prog = {.name = "echo-server",
                                     .conn_new = conn_new,
                                     .conn_free = conn_free,
                                     .worker_init = worker_init,
                                     .parse_option = console_parse_option,
                                     .usage_extra = CONSOLE_USAGE,
                                     .worker_stop = console_worker_stop};
    return srv_main(&prog, argc, argv);
}

/*
 * core/conn_private.h — what the connection files (conn.c, conn_loop.c,
 * conn_frame.c, auth.c, listener.c, wait.c) share: the connection's
 * layout, the pure frame decoder, and the deadline-bound I/O the handshake
 * uses.
 */
#ifndef KART_CONN_PRIVATE_H
#define KART_CONN_PRIVATE_H

#include "deadline.h"

#include <kart/conn.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/* The read-ahead buffer: one read takes in this much at most. */
#define KART__CONN_RBUF 65536
/* From this length on a message is "large" (see struct kart_conn.big). */
#define KART__CONN_BIG ((size_t)16384)
/* The longest frame header. */
#define KART__CONN_HDR_MAX 12
/* A payload's first allocation, doubled as more of it arrives. */
#define KART__CONN_ASM_FIRST ((size_t)1 << 20)
/* Messages up to this size are copied behind their header and sent with
 * one send(); larger ones go out as a two-part writev. */
#define KART__CONN_COPY_MAX 1024

enum kart__conn_state {
    KART__CONN_OK = 0,
    KART__CONN_EOF = 1,     /* the peer closed it between messages */
    KART__CONN_ABORTED = 2, /* a protocol or I/O error: nothing more */
};

typedef struct kart__send_req kart__send_req;
struct kart__send_req {
    kart__send_req *next;
    const uint8_t *buf;
    size_t len;
    size_t done; /* bytes of header + payload written */
    kart_conn_send_cb cb;
    void *arg;
    uint8_t hdr[12];
    uint8_t hlen;
};

struct kart_conn {
    int fd;
    unsigned flags; /* KART_CONN_READABLE | WRITABLE | EXACT */
    bool is_socket; /* send() with MSG_NOSIGNAL, shutdown() on abort */
    bool is_unix;   /* AF_UNIX: reads take fds (handles) in as well */
    /* A unix stream socket: a blocking receive waits in poll(), not in
     * read() (see read_iov in conn.c). */
    bool wait_in_poll;
    bool nonblock;      /* O_NONBLOCK is set (attached to a loop) */
    bool orig_nonblock; /* as it was when the connection took the fd */
    int state;          /* enum kart__conn_state */
    /* Read-ahead: the unread bytes are rbuf[rpos, rend). */
    uint8_t *rbuf;
    size_t rcap, rpos, rend;
    /* The next message's length, once its header is read. */
    bool have_len;
    /* That message (or, before its header, the last one) is large: read
     * payloads straight into their destination and only headers ahead. */
    bool big;
    uint64_t len;
    /* A payload being assembled across loop iterations (loop receives). */
    uint8_t *asm_buf;
    size_t asm_got, asm_cap;
    /* Loop state (conn_loop.c). */
    kart_loop *loop;
    kart_watch io;
    kart_timer kick; /* delivers buffered messages after recv_start */
    uint32_t watching;
    kart__send_req *sq_head, *sq_tail;
    kart_conn_recv_cb rcb;
    void *rarg;
    size_t rmax;
    bool receiving;
    int in_cb;          /* > 0 while a completion callback of this conn runs */
    bool close_pending; /* kart_conn_close ran inside a callback */
    /* Handles (fds) that arrived with the bytes read ahead, oldest first:
     * each belongs to a one-byte handle token in rbuf (handle.c). */
    int *hfds;
    size_t nhfd, hcap;
};

/* Decodes a frame header from the n bytes at p. Returns 4 or 12 (the
 * header's size) with *len set, 0 when more bytes are needed (*need says
 * how many in all), or KART_EBADFRAME. Pure: no state, no I/O. */
int kart__frame_decode(const uint8_t *p, size_t n, uint64_t *len, size_t *need);

/* Writes the header for a len-byte message into hdr[12]; returns its size
 * (4, or 12 from 2 GiB up). */
size_t kart__frame_encode(uint8_t hdr[12], uint64_t len);

/* Deadline-bound send and receive (absolute CLOCK_MONOTONIC ns, or
 * KART__NO_DEADLINE): the blocking calls and the handshake. A receive that
 * runs out of time returns -ETIMEDOUT with any partial message kept. */
int kart__conn_send_dl(kart_conn *c, const void *buf, size_t len, int64_t deadline);
int kart__conn_recv_dl(kart_conn *c, void **out, size_t *len, size_t maxlen, int64_t deadline);

/* The receive state machine, one step (conn.c). With nowait it never
 * blocks and returns -EAGAIN when the fd has nothing; otherwise it waits
 * until deadline. */
int kart__conn_need_header(kart_conn *c, int64_t deadline, bool nowait);
int kart__conn_read_payload(kart_conn *c, uint8_t *dst, size_t len, size_t *got, int64_t deadline,
                            bool nowait);

/* Assembles the current message (its header read) in c->asm_buf, which
 * grows as bytes arrive: a peer that announces a long message and sends
 * little makes us hold about what it sent, not what it announced.
 * Returns 0 when all of it is in; -EAGAIN, -ETIMEDOUT, -ENOMEM leave the
 * partial message for the next call. */
int kart__conn_assemble(kart_conn *c, int64_t deadline, bool nowait);

/* Aborts the connection after a protocol or I/O error and returns err. */
int kart__conn_abort(kart_conn *c, int err);

/* Whether a receive can proceed without blocking on the fd: buffered bytes
 * or a recorded EOF/abort. */
static inline bool kart__conn_buffered(const kart_conn *c)
{
    return c->rend > c->rpos || (c->have_len && c->len == 0);
}

/* One writev without SIGPIPE (see conn.c); the raw result and errno. */
ssize_t kart__conn_do_writev(kart_conn *c, const struct iovec *iov, int n);

/* Writes all of iov through partial writes, EINTR and (non-blocking fd)
 * EAGAIN, until deadline. */
int kart__conn_writev_all(kart_conn *c, struct iovec *iov, int iovcnt, int64_t deadline);

/* The loop side's clean-up on close (conn_loop.c). */
void kart__conn_loop_close(kart_conn *c);

/* Leaves a completion callback (in_cb--); when it was the outermost one and
 * kart_conn_close() ran inside it, closes the connection now and returns
 * true: the caller must not touch c again. */
bool kart__conn_cb_leave(kart_conn *c);

/* One read into iov through EINTR (recvmsg on a unix socket, keeping any
 * fds that came along in c->hfds); the raw result and errno. */
ssize_t kart__conn_sys_read(kart_conn *c, struct iovec *iov, int n);

/* Reads at least one byte into the read-ahead buffer (blocking, or -EAGAIN
 * with nowait); 0 at EOF. */
ssize_t kart__conn_fill1(kart_conn *c, bool nowait);

/* The checks every send makes of the connection itself, in this order:
 * -EBADF (not opened for writing), -ECONNABORTED (an earlier error
 * ended it); 0 when it may send. */
int kart__conn_can_send(const kart_conn *c);

/* Sends one message as kart__conn_send_dl(c, buf, len, no deadline) does
 * (same results, same errors) and, where it can, waits in the same system
 * call until the next message's first bytes are in c's read-ahead buffer
 * (conn_prefetch.c: io_uring), so that the receive which follows reads
 * nothing more for a small reply. For a request/reply round trip only: it
 * blocks until the peer sends something or closes. */
int kart__conn_send_prefetch(kart_conn *c, const void *buf, size_t len);

/* A backend's send-and-receive in one system call (uring/uring_sendrecv.c;
 * core reaches it only through this table). send_recv sends out (all of
 * it, MSG_NOSIGNAL) and, if that worked, receives once into in: 0 with
 * *sent (0, or the send's negative error: then nothing was received) and
 * *got (the receive's count, 0 at EOF, or its negative error); it returns
 * only when both are over. -ENOTSUP: not done (unavailable on this
 * thread); the caller does it the plain way. */
typedef struct kart__sendrecv_ops {
    const char *name;
    int (*send_recv)(int fd, const void *out, size_t outlen, void *in, size_t incap, int *sent,
                     ssize_t *got);
} kart__sendrecv_ops;

#ifdef KART_HAVE_URING
extern const kart__sendrecv_ops kart__sendrecv_uring;
#endif

/* Waits in poll() for events on fd until deadline: 1 ready, -ETIMEDOUT, or
 * a negative errno. */
int kart__poll_fd(int fd, short events, int64_t deadline);

#endif

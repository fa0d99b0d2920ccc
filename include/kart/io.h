/*
 * kart/io.h — completion-based I/O on the loop: accept, connect, recv,
 * send, shutdown and close on sockets; read and write at an offset on
 * files. Start an operation, and its callback runs on the loop thread when
 * it is done, with the result.
 *
 * On the io_uring backend the operations go through the ring: a multishot
 * accept, a multishot recv into buffers the kernel picks from a provided-
 * buffer ring, sends, connects, reads and writes as ring requests, a linked
 * timeout per operation, everything submitted in the one io_uring_enter
 * that each loop turn makes anyway. On epoll, poll and select (and kqueue)
 * the same API is emulated with non-blocking system calls driven by
 * readiness (a send is tried at once when the socket's queue is empty).
 * Behaviour is the same on every backend; kart_loop_io_stats() says which
 * way a loop goes.
 *
 * Objects (all caller-allocated, nothing is allocated per operation):
 *  - kart_sock: a socket on the loop. It holds what operations on one
 *    socket share: the ordered send queue and the receive. Embed it in your
 *    connection struct.
 *  - kart_req: one operation in flight (like libuv's uv_write_t). Embed it
 *    too; it must stay valid, unmoved and unused by another start until its
 *    callback has run its final time.
 *  - kart_buf: a receive buffer, lent by the loop's buffer pool to the
 *    receive callback and handed back with kart_buf_release().
 *
 * Rules every operation keeps:
 *  - A callback never runs inside the call that started the operation; it
 *    runs from kart_loop_run(). When a start fails (it returns a negative
 *    error), the callback never runs.
 *  - Exactly one final callback per started operation, whatever happens:
 *    success, error, timeout (-ETIMEDOUT), cancel (-ECANCELED). A cancel or
 *    a timeout that races with completion yields one or the other, never
 *    both. After the final callback the request is free for reuse or
 *    freeing (the callback itself may reuse it).
 *  - Every pending operation (and an active receive) keeps the loop running
 *    and counts in kart_loop_active_handles(); kart_loop_free() refuses
 *    (-EBUSY) while any is pending, or while a buffer is lent.
 *  - Errors are negative errnos (or KART_E* codes), never left in errno.
 *    SIGPIPE is never raised by a send (MSG_NOSIGNAL).
 *
 * Threads: kart_sock, kart_req and kart_buf are *loop thread* objects:
 * every call on them is for the loop's own thread; buffers too must be
 * released on it. kart_rcbuf is thread-safe (its references are atomic):
 * one may be sent on several loops' sockets at once. kart_listen() keeps
 * no state: any thread. On io_uring (Linux 6.0 and later) a loop's ring is
 * single-issuer: the first thread that runs the loop (or enters its ring)
 * owns it for good. Fork: a child must not touch the parent's loop, its
 * sockets or its buffers.
 */
#ifndef KART_IO_H
#define KART_IO_H

#include <kart/common.h>
#include <kart/loop.h>
#include <stdbool.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_sock kart_sock;
typedef struct kart_req kart_req;
typedef struct kart_buf kart_buf;
typedef struct kart__idle kart__idle; /* private: an idle deadline */

/* ---- the buffer pool ---- */

/* One buffer of the loop's pool, or a slice of one. base and size are
 * read-only; the rest is private. The struct itself belongs to the pool:
 * do not copy it to release it. On io_uring with incremental buffer
 * consumption (Linux 6.12; docs/io.md) receives share pool buffers: each
 * is lent a slice, whose size is the bytes it received, and which you
 * release (or send with kart_sock_send_buf) like a whole buffer. */
struct kart_buf {
    char *base;      /* the memory: size bytes */
    uint32_t size;   /* the pool's buffer size, or the slice's bytes */
    uint32_t id_;    /* private */
    uint32_t len_;   /* private: bytes held back after a receive stop */
    uint32_t flags_; /* private */
    kart_buf *next_; /* private */
    void *pool_;     /* private */
};

/*
 * Sizes the loop's receive buffer pool: count buffers of size bytes each.
 * Without this call a loop gets buffers of 16 KiB the first time a
 * receive starts: 256 of them with native io_uring completions, 512 on
 * the readiness backends. The pool's memory is allocated here, once; receives
 * never allocate, except on io_uring with incremental consumption, where
 * the slices' descriptors (232 bytes each) are allocated in blocks
 * as the most slices lent at once grows, and kept with the pool (without
 * memory for one, that receive ends with -ENOMEM). When every buffer is
 * lent out, receives pause (no data is lost, the kernel keeps it) and
 * resume as soon as a buffer is released.
 * Errors: -EINVAL (NULL loop; count not a power of two in [1, 32768]; size
 * 0, above 16 MiB or not a multiple of 64), -EBUSY (a receive is active, a
 * stopped one is still being cancelled in the kernel, or a buffer is lent:
 * the pool stays as it was; run the loop and retry), -ENOMEM (the old pool
 * stays, or on io_uring, where the old pool goes first, the next receive
 * makes one of the old size again).
 */
KART_API int kart_loop_set_bufpool(kart_loop *loop, uint32_t count, uint32_t size);

/* Hands a buffer lent by a receive callback back to its pool, at any time
 * and in any order (after the data was sent on, for instance). Releasing
 * a buffer twice, or one that is not lent, is a no-op. NULL is a no-op. */
KART_API void kart_buf_release(kart_buf *buf);

/* ---- sockets ---- */

/* The receive callback. nread > 0: buf->base holds nread new bytes and buf
 * is lent to you until kart_buf_release(buf). nread == 0: the peer shut
 * down its writing side (EOF), buf is NULL, and the receive is stopped.
 * nread < 0: an error (-ECONNRESET, ...), buf is NULL, the receive is
 * stopped. The callback may stop the receive, close the socket, start
 * sends, and so on. */
typedef void (*kart_recv_cb)(kart_sock *sock, int nread, kart_buf *buf);

/* A socket on the loop. Public: base.data. Read-only: base.loop, fd.
 * The handle calls of kart/loop.h (ref, unref, is_active) do not apply to
 * it: its operations count as the loop's active handles instead. */
struct kart_sock {
    kart_handle base;
    int fd;
    uint32_t flags_;       /* private */
    uint32_t events_;      /* private: readiness registered (emulation), or io_uring's kick list */
    uint32_t nops_;        /* private: operations not yet delivered */
    kart_recv_cb recv_cb_; /* private */
    kart_req *sendq_;      /* private: head of the ordered send queue */
    kart_req *sendq_tail_; /* private */
    kart_req *accept_;     /* private: the active accept */
    kart_req *connect_;    /* private: the pending connect */
    kart_req *close_;      /* private: the pending close */
    kart_buf *stash_;      /* private: received after a stop, delivered first */
    kart_sock *next_;      /* private: the loop's list of paused receives */
    kart__idle *idle_;     /* private: kart_sock_set_idle_timeout's deadline */
};

/*
 * Puts socket fd on the loop. The socket must be a connected or listening
 * stream socket, or one to connect; kart makes it non-blocking if it is
 * not (accepted sockets already are). Nothing is registered with the
 * kernel until an operation starts. base.data is kept; the rest of *sock
 * is overwritten.
 * Lifetime: end a socket with kart_sock_close(), and free its memory in
 * the close callback, never from any other callback of the socket (the
 * loop may still be working on it). A socket on which no operation was
 * ever started may simply be dropped (its fd closed with close(2)).
 * Errors: -EINVAL (NULL loop or sock), -EBADF (fd negative or not open).
 */
KART_API int kart_sock_init(kart_loop *loop, kart_sock *sock, int fd);

/* An operation's callback. result: what the operation returns (below) or a
 * negative error. */
typedef void (*kart_req_cb)(kart_req *req, int result);

/* What a request is for (kart_req.type). */
typedef enum kart_req_type {
    KART_REQ_NONE = 0,
    KART_REQ_ACCEPT,
    KART_REQ_CONNECT,
    KART_REQ_SEND,
    KART_REQ_SHUTDOWN,
    KART_REQ_CLOSE,
    KART_REQ_READ,
    KART_REQ_WRITE,
} kart_req_type;

/* One operation. Public: data. Read-only: loop, sock (NULL for file
 * operations), type. The rest is private. Set it up once with
 * kart_req_init() (an all-zero request is set up too); a start fills
 * everything but data. */
struct kart_req {
    void *data;
    kart_loop *loop;
    kart_sock *sock;
    kart_req_type type;
    uint8_t state_;    /* private */
    uint16_t flags_;   /* private */
    int32_t fd_;       /* private */
    kart_req_cb cb_;   /* private */
    kart_req *next_;   /* private */
    const void *buf_;  /* private */
    size_t len_;       /* private */
    size_t done_;      /* private */
    int64_t off_;      /* private */
    int64_t deadline_; /* private */
    int32_t res_;      /* private */
    union {
        int64_t ts_[2];    /* private: io_uring's linked timeout */
        kart_timer timer_; /* private: the emulation's timeout */
    } t_;
};

/* Sets up a request for its first start: zeroes it, keeping data. A
 * request owns nothing: when it is not pending (never started, or its
 * final callback has run) its memory may be freed or reused as is, so
 * there is no _destroy. Errors: -EINVAL (NULL). */
KART_API int kart_req_init(kart_req *req);

/*
 * Accepts connections on listening socket `listener`, until cancelled or
 * failed: cb runs once per accepted connection with its fd (non-blocking,
 * close-on-exec; put it on a loop with kart_sock_init()), and finally once
 * with a negative result, after which req is free. On io_uring this is one
 * multishot accept, re-armed whenever the kernel ends it.
 * Running out of file descriptors (EMFILE, ENFILE) never reaches cb and
 * never spins the loop: kart holds a spare descriptor, and when the limit
 * is hit it frees it to accept and at once close the waiting connections
 * (their clients see the connection closed) rather than leave them to
 * wake the loop forever; if even that fails, accepting pauses and is
 * retried with a growing delay (1 ms to 1 s). Accepting resumes by itself
 * once descriptors are free again (kart_loop_io_stats() counts the hits).
 * Transient errors (ECONNABORTED, EPROTO, EPERM from a firewall) are
 * skipped too.
 * Final results: -ECANCELED (kart_req_cancel() or kart_sock_close()),
 * -EINVAL (the socket is not listening), -ENOTSOCK, -EBADF, -ENOMEM.
 * Errors: -EINVAL (NULL argument; req is pending), -EBUSY (an accept is
 * already active on this socket), -EPIPE (the socket is being closed),
 * -EMFILE or -ENFILE (the loop's spare descriptor, opened by its first
 * accept, could not be opened), -ENOMEM.
 */
KART_API int kart_sock_accept(kart_sock *listener, kart_req *req, kart_req_cb cb);

/*
 * Connects sock to addr (addrlen bytes; the address must stay valid until
 * cb runs). cb runs once with 0 when connected, or a negative error:
 * -ECONNREFUSED, -ENETUNREACH, -EHOSTUNREACH, -ETIMEDOUT (the kernel's, or
 * timeout_ns elapsed), -ECANCELED, ... timeout_ns < 0: no timeout of
 * kart's own.
 * Errors: -EINVAL (NULL sock, req, addr or cb; req pending; addrlen 0 or
 * larger than struct sockaddr_storage), -EBUSY (a connect is already
 * pending on sock), -EPIPE (the socket is being closed).
 */
KART_API int kart_sock_connect(kart_sock *sock, kart_req *req, const struct sockaddr *addr,
                               socklen_t addrlen, int64_t timeout_ns, kart_req_cb cb);

/*
 * Starts receiving: cb runs each time data arrives, with a buffer lent
 * from the loop's pool (see kart_recv_cb), until kart_sock_recv_stop(),
 * EOF or an error. On io_uring this is one multishot recv into the
 * provided-buffer ring, re-armed whenever the kernel ends it. Fairness: a
 * socket gets at most one buffer per loop turn on the readiness backends,
 * and the kernel's own bound on io_uring, so a busy peer cannot starve
 * the others. Data is delivered in order, never lost: what arrives after
 * a stop is kept and delivered first when the receive starts again.
 * Starting an active receive changes its callback.
 * Errors: -EINVAL (NULL sock or cb), -EPIPE (the socket is being closed),
 * -ENOMEM (the default pool could not be allocated), and the selector's
 * register errors on readiness backends (-EEXIST when a kart_watch watcher
 * watches the same fd).
 */
KART_API int kart_sock_recv_start(kart_sock *sock, kart_recv_cb cb);

/* Stops receiving; cb will not run again until the next start. A no-op
 * returning 0 when not receiving. Errors: -EINVAL (NULL). */
KART_API int kart_sock_recv_stop(kart_sock *sock);

/*
 * Sends len bytes from buf (which must stay valid and unchanged until cb
 * runs). Sends on one socket complete in order, each in full: a partial
 * send is finished before the next starts. cb runs once with len, or a
 * negative error: -EPIPE or -ECONNRESET (the peer is gone), -ETIMEDOUT
 * (not all sent within timeout_ns of this call; timeout_ns < 0: none),
 * -ECANCELED (kart_req_cancel(), kart_sock_close()). After an error the
 * bytes sent so far are unknown to the peer's order: close the socket.
 * len 0 completes with 0.
 * On native io_uring a send to an idle queue starts at the end of the
 * loop's turn, when the ring is entered anyway, together with whatever
 * else the turn queues on the socket (one gathered send); the readiness
 * backends write at once.
 * Errors: -EINVAL (NULL sock, req or cb; buf NULL with len > 0; req
 * pending; len above INT32_MAX), -EPIPE (the socket is being closed or was
 * shut down for writing by kart_sock_shutdown()).
 */
KART_API int kart_sock_send(kart_sock *sock, kart_req *req, const void *buf, size_t len,
                            int64_t timeout_ns, kart_req_cb cb);

/* The callback of kart_sock_send_buf(): result as kart_sock_send's. */
typedef void (*kart_send_buf_cb)(kart_sock *sock, int result);

/*
 * Sends the first len bytes of a buffer lent by a receive callback and
 * releases the buffer once the send is done: the zero-copy echo, with no
 * request of yours to manage (the pool keeps one per buffer). Ordered with
 * the socket's other sends as kart_sock_send() is. cb (NULL for none) runs
 * once with len or a negative error, the buffer already released.
 * Errors: -EINVAL (NULL sock or buf, buf not lent, len larger than
 * buf->size, or the buffer already being sent), -EPIPE (the socket is
 * being closed or was shut down for writing). On an error the buffer
 * stays lent to you.
 */
KART_API int kart_sock_send_buf(kart_sock *sock, kart_buf *buf, size_t len, kart_send_buf_cb cb);

/*
 * shutdown(2) in order with the sends: queued sends go out first, then the
 * socket is shut down (how: SHUT_RD, SHUT_WR or SHUT_RDWR). cb runs with 0
 * or a negative error (-ENOTCONN, -ECANCELED, ...). After SHUT_WR or
 * SHUT_RDWR further sends are refused with -EPIPE.
 * Errors: -EINVAL (NULL argument, req pending, bad how), -EPIPE (the
 * socket is being closed, or was already shut down for writing).
 */
KART_API int kart_sock_shutdown(kart_sock *sock, kart_req *req, int how, kart_req_cb cb);

/*
 * Closes the socket at once, abortively: stops the receive, cancels every
 * pending operation on it, queued sends included (their callbacks run
 * with -ECANCELED, or with their result if they completed first: bytes
 * still queued in kart never reach the peer), closes the fd, and finally
 * runs cb with 0 (or the error of close(2), the fd being closed all the
 * same). Once cb has run, no callback for this socket or its requests
 * will run again, and its memory may be freed: cb is the place to free a
 * connection struct. Buffers lent earlier stay valid until released.
 * To let queued sends finish first, use kart_sock_close_graceful().
 * Errors: -EINVAL (NULL sock, req or cb; req pending), -EALREADY (a close,
 * graceful or not, is already pending).
 */
KART_API int kart_sock_close(kart_sock *sock, kart_req *req, kart_req_cb cb);

/*
 * Closes the socket once its queued sends are done: libuv's uv_shutdown
 * followed by uv_close, asyncio's transport.close(). At once the receive
 * stops (data arriving later is dropped), a pending accept or connect is
 * cancelled, and new sends, shutdowns and receives are refused (-EPIPE);
 * the sends and shutdowns already queued go out in order, each callback
 * running with its own result as usual. When the queue is empty the fd is
 * closed and cb runs with 0 (or the error of close(2)), with the same
 * guarantees as kart_sock_close()'s cb: the last callback of the socket,
 * the place to free it. The kernel then delivers what it holds, as
 * close(2) does (data the peer sent that was never read makes Linux reset
 * the connection instead).
 * Bounded: when the queue is not empty within timeout_ns (< 0: no limit;
 * 0: do not wait), the close turns abortive: what is still queued is
 * cancelled (-ECANCELED) as kart_sock_close() does, the fd is closed, and
 * cb runs with -ETIMEDOUT. kart_req_cancel(req) turns it abortive at once
 * in the same way (cb then runs with -ECANCELED); once the fd is being
 * closed it returns -EALREADY. The fd is closed whatever cb's result.
 * Errors: -EINVAL (NULL sock, req or cb; req pending), -EALREADY (a close,
 * graceful or not, is already pending).
 */
KART_API int kart_sock_close_graceful(kart_sock *sock, kart_req *req, int64_t timeout_ns,
                                      kart_req_cb cb);

/*
 * The bytes waiting to leave a socket, to push back on a slow peer (asyncio's
 * transport.get_write_buffer_size()): *queued (if not NULL) gets the bytes
 * of sends started on it whose callbacks have not run yet (what kart still
 * holds, in flight included); *kernel (if not NULL) the bytes in the
 * socket's kernel send buffer that the peer has not acknowledged yet
 * (SIOCOUTQ; 0 for a socket type that has no such count).
 * Errors: -EINVAL (NULL sock), -EBADF (its fd is closed); on an error
 * nothing is written.
 */
KART_API int kart_sock_queued(const kart_sock *sock, size_t *queued, size_t *kernel);

/* ---- one buffer, many sockets ---- */

/* A reference-counted send buffer: filled once, sent to any number of
 * sockets without a copy; freed when its creator has dropped it and the
 * last send of it has completed. base and size are read-only. */
typedef struct kart_rcbuf {
    char *base;
    size_t size;
    _Atomic size_t refs_; /* private */
} kart_rcbuf;

/* Allocates a buffer of size bytes (uninitialised: fill base before
 * sending), holding the creator's reference.
 * Errors: -EINVAL (out NULL, size 0 or above INT32_MAX), -ENOMEM. */
KART_API int kart_rcbuf_create(kart_rcbuf **out, size_t size);

/* Drops the creator's reference: the memory goes once the sends still
 * pending have completed. Do not touch the buffer afterwards. NULL is a
 * no-op. */
KART_API void kart_rcbuf_free(kart_rcbuf *buf);

/*
 * Sends the first len bytes of buf on sock, ordered with the socket's
 * other sends as kart_sock_send() is, holding a reference until it is
 * done: the broadcast of one message to many peers (call it once per
 * socket; the request each send needs is kart's, allocated here). cb
 * (NULL for none) runs once with len or a negative error, as
 * kart_sock_send's callback; the buffer must not be changed until every
 * send of it has completed. timeout_ns < 0: none.
 * Errors: -EINVAL (NULL sock or buf, len larger than buf->size), -EPIPE
 * (the socket is being closed or was shut down for writing), -ENOMEM.
 */
KART_API int kart_sock_send_rcbuf(kart_sock *sock, kart_rcbuf *buf, size_t len, int64_t timeout_ns,
                                  kart_send_buf_cb cb);

/* ---- listening sockets ---- */

typedef struct kart_listen_options {
    int backlog;        /* listen(2)'s backlog; 0: SOMAXCONN */
    bool no_reuse_addr; /* do not set SO_REUSEADDR (set by default) */
    bool reuse_port;    /* set SO_REUSEPORT: several sockets share the port */
    bool v6only;        /* an IPv6 socket takes no IPv4 connections */
} kart_listen_options;

/*
 * Creates a listening TCP socket bound to host:port, non-blocking and
 * close-on-exec, ready for kart_sock_init() and kart_sock_accept() (or
 * any other use): asyncio's create_server() socket. host: a numeric IPv4
 * or IPv6 address or a name (resolved with getaddrinfo, the first address
 * that binds wins); NULL or "" listens on every address, IPv6 and IPv4
 * both where the system allows ("::" with IPV6_V6ONLY off), else IPv4.
 * port 0 picks a free port: *port_out (if not NULL) gets the one bound.
 * opts may be NULL.
 * Errors: -EINVAL (fd_out NULL, port above 65535 or negative, backlog
 * negative), -ENOENT (host does not resolve), -EADDRINUSE, -EADDRNOTAVAIL
 * (no such local address), -EACCES (a privileged port), -EMFILE, -ENFILE,
 * -ENOMEM. On an error no descriptor is left open.
 */
KART_API int kart_listen(const char *host, int port, const kart_listen_options *opts, int *fd_out,
                         int *port_out);

/* ---- files ---- */

/*
 * Reads up to len bytes at offset from fd (a regular file, a block device:
 * anything pread(2) takes; offset < 0 reads at the file position, as
 * read(2)). cb runs with the bytes read (0 at end of file) or a negative
 * error (-EBADF, -EISDIR, -EINVAL, -ETIMEDOUT, -ECANCELED, ...). The
 * readiness backends do the pread(2) inside the call (a regular file is
 * always ready) and deliver the result from the loop, as io_uring does.
 * timeout_ns < 0: none.
 * Errors: -EINVAL (NULL loop, req or cb; buf NULL with len > 0; req
 * pending; len above INT32_MAX), -EBADF (fd negative).
 */
KART_API int kart_file_read(kart_loop *loop, kart_req *req, int fd, void *buf, size_t len,
                            int64_t offset, int64_t timeout_ns, kart_req_cb cb);

/* Writes len bytes from buf at offset (offset < 0: at the file position,
 * as write(2)); cb runs with the bytes written (which may be short, as
 * with pwrite(2)) or a negative error (-EBADF, -ENOSPC, -EFBIG, -EIO, ...).
 * Errors as kart_file_read(). */
KART_API int kart_file_write(kart_loop *loop, kart_req *req, int fd, const void *buf, size_t len,
                             int64_t offset, int64_t timeout_ns, kart_req_cb cb);

/* ---- cancel ---- */

/*
 * Asks for a pending request to end: its callback runs once more, from
 * the loop, with -ECANCELED, or with its real result if that won the race
 * (then it was done anyway). A multishot accept ends with -ECANCELED. A
 * close cannot be cancelled, except a graceful close still waiting for its
 * sends, which turns abortive (see kart_sock_close_graceful()).
 * Errors: -EINVAL (NULL), -EALREADY (not pending: never started, or its
 * final callback has run or is already being delivered; or a close whose
 * fd is being closed).
 */
KART_API int kart_req_cancel(kart_req *req);

/* 1 while the request is pending (started, final callback not yet run),
 * else 0. */
KART_API int kart_req_is_active(const kart_req *req);

/* ---- introspection ---- */

typedef struct kart_io_stats {
    /* true when operations go through io_uring, false when they are
     * emulated over readiness. */
    bool native;
    /* Times the completion ring overflowed into the kernel's overflow list
     * (io_uring). Nothing is lost: the completions are flushed and handled
     * in order at the next enter. */
    uint64_t cq_overflows;
    /* Completions the kernel reports as dropped: 0 unless the kernel ran
     * out of memory for its overflow list. */
    uint64_t cq_dropped;
    /* Times a receive found no free buffer and paused (io_uring: ENOBUFS
     * from the provided-buffer ring), each resumed once a buffer came back. */
    uint64_t enobufs;
    /* Multishot requests (accept, recv) re-armed after the kernel ended
     * them. */
    uint64_t rearms;
    /* Accepts that hit EMFILE or ENFILE. */
    uint64_t accept_fd_limit;
    /* Connections accepted and closed at once to drain the backlog at the
     * descriptor limit. */
    uint64_t accept_dropped;
    /* System calls that entered the ring (submit and wait). */
    uint64_t enters;
    /* Buffers now lent to callbacks (slices, each counted, with io_uring's
     * incremental consumption: it may exceed the pool's size), and the
     * pool's size. */
    uint32_t bufs_lent;
    uint32_t bufs_total;
} kart_io_stats;

/* Fills *out. Errors: -EINVAL (NULL argument). Setting the environment
 * variable KART_URING_NATIVE_IO=0 before a loop is created makes an
 * io_uring loop emulate the operations too (native is then 0). */
KART_API int kart_loop_io_stats(const kart_loop *loop, kart_io_stats *out);

/* ---- idle deadlines (per connection) ---- */

/* The callback of kart_sock_set_idle_timeout(): the socket has been idle
 * for its timeout. It runs once, from the loop, with the deadline already
 * removed: close the socket, set a new deadline, or do nothing. */
typedef void (*kart_sock_idle_cb)(kart_sock *sock);

/*
 * Sets the socket's idle deadline, the one call a server needs against
 * peers that connect and then stall (half a request header, a keep-alive
 * connection never used): cb runs once, from the loop, when nothing has
 * happened on the socket for timeout_ns. What counts as activity: bytes
 * received (delivered to the receive callback, or held after a stop) and
 * each send that completes with bytes sent. Nothing else does: a receive
 * that is started but gets no bytes, a send the peer does not read (its
 * slowness is what the deadline is for), the passing of time. Bytes moved
 * re-arm the deadline without a system call or a timer operation (a store
 * of the loop's cached time); one loop timer per socket re-checks when it
 * fires, so a busy socket costs one timer restart per timeout period.
 * Calling it again replaces cb and timeout_ns and restarts the clock from
 * now (a header timeout, then a keep-alive timeout on the same socket).
 * timeout_ns < 0 removes the deadline (a no-op returning 0 when none);
 * 0 fires at the next loop turn whatever happens. The clock starts at
 * the call (not at the loop's cached time). An armed deadline counts in
 * kart_loop_active_handles() but does not keep the loop running by
 * itself, and kart_sock_close() removes it (no idle callback runs after a
 * close was started): a socket given a deadline must be ended with
 * kart_sock_close(), not dropped, since the deadline holds a small
 * allocation. Same on every backend. Loop thread.
 * Errors: -EINVAL (NULL sock; cb NULL with timeout_ns >= 0), -EPIPE (the
 * socket is being closed), -ENOMEM (the old deadline, if any, is removed).
 */
KART_API int kart_sock_set_idle_timeout(kart_sock *sock, int64_t timeout_ns, kart_sock_idle_cb cb);

#ifdef __cplusplus
}
#endif
#endif

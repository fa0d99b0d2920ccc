/*
 * kart/conn.h — message connections, wire-compatible with Python's
 * multiprocessing.connection: Pipe (kart_conn_pipe), Listener and Client with
 * the authkey handshake, and wait() over connections, listeners and fds.
 *
 * Framing is Python's exactly: each message is a 4-byte big-endian signed
 * length and the payload; a message of 2 GiB or more is sent as the length
 * -1 followed by an 8-byte big-endian length. A Python Connection on the
 * other end of a kart connection's socket or pipe reads and writes the same
 * bytes.
 *
 * A connection is opaque; kart_conn_close() closes its fd and frees it.
 * Calls on one connection must not run concurrently in several threads
 * (lock around them, as Python's Queue does); different connections are
 * independent.
 *
 * Receiving reads ahead: one read() takes in as many queued messages as fit
 * a 64 KiB buffer, and later receives are served from it without a system
 * call. A message therefore may sit in the connection's buffer, not in the
 * fd: use kart_conn_poll() or kart_conn_wait(), never poll(2) on
 * kart_conn_fileno(), to learn whether one is there. When several processes
 * share one reading end (taking turns under a lock, as Python's Queue does),
 * create the connection with KART_CONN_EXACT: it then reads each frame
 * exactly, never past its end, and buffers nothing between calls.
 *
 * Fork: a forked child inherits the fd and a copy of the read-ahead buffer;
 * only one of the two processes may go on using a given connection (the
 * other closes it), unless KART_CONN_EXACT is set.
 *
 * SIGPIPE: writing to a socket whose peer is gone returns -EPIPE and never
 * raises SIGPIPE (send with MSG_NOSIGNAL). On a one-way pipe's writing end,
 * kart blocks SIGPIPE in the calling thread around the write and discards
 * the one the write raised, so that too returns -EPIPE without a signal.
 *
 * Protocol errors (a bad length, a message longer than the receiver's
 * maximum, a frame cut short by EOF) abort the connection: the socket is
 * shut down so that the peer sees the end, and every later send or receive
 * returns KART_ECONNABORTED. The fd stays open until kart_conn_close(), so
 * a loop watcher on it stays valid until it is stopped.
 */
#ifndef KART_CONN_H
#define KART_CONN_H

#include <kart/common.h>
#include <kart/loop.h>

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_conn kart_conn;
typedef struct kart_listener kart_listener;

/* Connection flags (kart_conn_from_fd, kart_conn_pipe). */
#define KART_CONN_READABLE 0x1u /* the connection receives */
#define KART_CONN_WRITABLE 0x2u /* the connection sends */
#define KART_CONN_EXACT 0x4u    /* no read-ahead: see above */

/* The largest message kart_conn_send_bytes accepts (Python's limit is the
 * 8-byte length; kart keeps lengths within ssize_t). */
#define KART_CONN_MAX_MESSAGE ((size_t)INT64_MAX)

/*
 * A pair of connected connections, like Python's Pipe(duplex).
 * duplex != 0: a socketpair; both ends send and receive.
 * duplex == 0: a pipe(2); *a is the reading end and *b the writing end
 * (Python's order: r, w = Pipe(duplex=False)).
 * flags: 0 or KART_CONN_EXACT (applies to both ends).
 * Both fds are close-on-exec. Errors: -EINVAL (NULL out pointer, unknown
 * flag), -EMFILE, -ENFILE, -ENOMEM.
 */
KART_API int kart_conn_pipe(kart_conn **a, kart_conn **b, int duplex, unsigned flags);

/*
 * Wraps an open fd (a socket, a pipe end, a FIFO, a terminal) in a
 * connection that owns it from then on (kart_conn_close() closes it).
 * flags: KART_CONN_READABLE and/or KART_CONN_WRITABLE (at least one), plus
 * KART_CONN_EXACT. On error the fd is left open and still the caller's.
 * Errors: -EINVAL (NULL out, no direction, unknown flag), -EBADF (fd not
 * open), -ENOMEM.
 */
KART_API int kart_conn_from_fd(kart_conn **out, int fd, unsigned flags);

/* Closes the fd and frees the connection; pending loop operations end
 * (see kart_conn_attach). NULL returns 0. Errors: -EBUSY (called from a
 * completion callback of this connection: close after it returns). */
KART_API int kart_conn_close(kart_conn *c);

/* The fd (for poll-free uses such as passing it on); -EINVAL for NULL. */
KART_API int kart_conn_fileno(const kart_conn *c);

/*
 * Sends one message of len bytes (len may be 0). Blocks until all of it is
 * in the kernel, through partial writes and EINTR. Header and payload go
 * out in one system call unless the kernel takes them in parts: a message
 * up to 1 KiB is copied behind its header, a larger one is a two-part
 * writev.
 * Errors: -EINVAL (NULL c, or NULL buf with len > 0), -EBADF (not a
 * writable connection), -EBUSY (loop sends are pending on it), -EPIPE (the
 * peer closed its end), -ECONNRESET, -EMSGSIZE (len > KART_CONN_MAX_MESSAGE),
 * KART_ECONNABORTED, and other write(2) errors. After an error part of the
 * message may have been sent: the connection is then aborted.
 */
KART_API int kart_conn_send_bytes(kart_conn *c, const void *buf, size_t len);

/*
 * Sends n messages (msgs[i].iov_base, msgs[i].iov_len), in order, with as
 * few system calls as the kernel allows: small messages are packed with
 * their headers into one buffer and everything goes out in writevs of up to
 * 1024 parts. The receiver sees n ordinary messages. Blocks until all are
 * in the kernel. Returns 0. Errors: those of kart_conn_send_bytes, and
 * -EINVAL for NULL msgs with n > 0, n < 0, or a NULL base with a length;
 * after an error some of the messages may have been sent (the connection
 * is then aborted).
 */
KART_API int kart_conn_send_many(kart_conn *c, const struct iovec *msgs, int n);

/*
 * Receives one whole message into a new malloc()ed buffer (*out; free() it;
 * an empty message gives a non-NULL 1-byte allocation and *len 0). Blocks
 * until the message is in. maxlen bounds what the peer may make us
 * allocate: a longer message aborts the connection (Python's "bad message
 * length"). Past 1 MiB the buffer grows as the payload arrives, so a peer
 * that announces more than it sends costs about what it sent.
 * Errors: -EINVAL (NULL argument), -EBADF (not a readable connection),
 * -EBUSY (a loop receive is active on it), KART_EEOF (the peer closed the
 * connection between messages), KART_ETRUNCATED (it closed in the middle
 * of one), KART_EBADFRAME (a negative length other than -1, or an 8-byte
 * length past INT64_MAX), KART_ETOOLONG (longer than maxlen),
 * KART_ECONNABORTED (an earlier error aborted it), -ENOMEM (the message
 * stays queued: retry), -ECONNRESET and other read(2) errors.
 * KART_ETRUNCATED, KART_EBADFRAME, KART_ETOOLONG and read errors leave the
 * connection aborted; KART_EEOF leaves it at EOF (later calls return
 * KART_EEOF again).
 */
KART_API int kart_conn_recv_bytes(kart_conn *c, void **out, size_t *len, size_t maxlen);

/*
 * Receives one whole message into buf (cap bytes) and sets *len to its
 * length. If the message is longer than cap, returns -EMSGSIZE with *len
 * set to the length needed and leaves the message queued: call again with
 * a bigger buffer (Python's BufferTooShort, without losing the message).
 * buf may be NULL when cap is 0 (to learn the next message's length).
 * Errors: those of kart_conn_recv_bytes() except KART_ETOOLONG, plus
 * -EMSGSIZE as above.
 */
KART_API int kart_conn_recv_bytes_into(kart_conn *c, void *buf, size_t cap, size_t *len);

/*
 * Whether data can be received without blocking: 1 if it can (bytes of a
 * message are buffered or the fd is readable, or the peer closed it, so
 * that a receive returns at once), 0 once timeout_ns passed without
 * (negative: wait forever; 0: just look). Restarted after EINTR with the
 * time left. Errors: -EINVAL (NULL), -EBADF (not readable),
 * KART_ECONNABORTED.
 */
KART_API int kart_conn_poll(kart_conn *c, int64_t timeout_ns);

/* ---- event loop use ---- */

/* Called once per sent message, on the loop thread, with 0 when the whole
 * message is in the kernel or a negative error (that of send_bytes, or
 * -ECANCELED when the connection was detached or closed first). */
typedef void (*kart_conn_send_cb)(kart_conn *c, int status, void *arg);

/* Called once per received message with status 0, msg and len (msg valid
 * during the call only; copy what you keep); or once with a negative
 * status (the errors of kart_conn_recv_bytes, or -ENOMEM) after which
 * receiving has stopped. The callback may call kart_conn_recv_stop(),
 * kart_conn_send_async() and kart_conn_detach(), not kart_conn_close(). */
typedef void (*kart_conn_recv_cb)(kart_conn *c, int status, const void *msg, size_t len, void *arg);

/*
 * Attaches the connection to a loop: from then on its fd is non-blocking
 * and watched by a kart_watch of that loop whenever a send is queued or a
 * receive is active. The blocking calls keep working (they wait in poll()
 * when the fd is not ready), but not while loop operations on the same
 * direction are pending (-EBUSY). Loop thread only. Detach (or close) the
 * connection before freeing the loop. The message pointer a receive
 * callback gets stays valid until the callback returns or calls a receive
 * function of the same connection.
 * Errors: -EINVAL (NULL), -EBUSY (already attached), and those of
 * fcntl(F_SETFL).
 */
KART_API int kart_conn_attach(kart_conn *c, kart_loop *loop);

/* Stops the loop operations (pending sends complete with -ECANCELED,
 * their callbacks running inside this call,
 * unsent parts lost: the connection is aborted if a message was cut), and
 * puts the fd back in blocking mode. Errors: -EINVAL (NULL or not
 * attached). */
KART_API int kart_conn_detach(kart_conn *c);

/*
 * Queues one message; cb(c, status, arg) runs on the loop thread once it
 * is all written (or failed). buf must stay valid and unchanged until then
 * (no copy is made). Messages go out in queue order, several in one
 * writev when they are queued together. cb is never called from inside
 * this function. cb may be NULL.
 * Errors: -EINVAL (NULL c, NULL buf with len > 0), -EBADF (not writable),
 * -ENOTCONN (not attached), -EMSGSIZE, KART_ECONNABORTED, -ENOMEM.
 */
KART_API int kart_conn_send_async(kart_conn *c, const void *buf, size_t len, kart_conn_send_cb cb,
                                  void *arg);

/*
 * Receives messages as they arrive: cb runs for each (see
 * kart_conn_recv_cb) until kart_conn_recv_stop(). maxlen as in
 * kart_conn_recv_bytes. Messages already in the read-ahead buffer are
 * delivered in the next loop iteration. Errors: -EINVAL (NULL c or cb),
 * -EBADF (not readable), -ENOTCONN (not attached), -EBUSY (already
 * receiving), KART_ECONNABORTED, -ENOMEM, and kart_watch_start's.
 */
KART_API int kart_conn_recv_start(kart_conn *c, size_t maxlen, kart_conn_recv_cb cb, void *arg);

/* Stops receiving; a message half in stays buffered for the next receive.
 * Errors: -EINVAL (NULL). */
KART_API int kart_conn_recv_stop(kart_conn *c);

/* ---- authentication (Python's deliver_challenge / answer_challenge) ---- */

/*
 * How a handshake is done, for Listener, Client and the challenge calls.
 * Zero-initialised means: no authkey; sha256 challenges; 10 s timeout.
 *  authkey, authkey_len: the shared secret; NULL (or length 0 with NULL)
 *    means no authentication (Listener/Client skip the handshake).
 *  digest: the digest of the challenges we deliver: "sha256" (NULL: the
 *    default, Python 3.12+'s), "md5", "sha384", "sha3_256", "sha3_384"
 *    (the 3.12+ form: b"{name}" + 40 random bytes, the reply is
 *    b"{name}" + HMAC over the whole challenge), or "legacy" (Python
 *    3.11's form: 20 random bytes, the reply a raw 16-byte HMAC-MD5).
 *    Either way replies are checked as CPython 3.12 does: a 16-byte reply
 *    is a legacy HMAC-MD5 (so 3.11 clients get in), a "{name}" reply names
 *    the digest the peer chose. Answers follow the challenge received: a
 *    20-byte challenge (a 3.11 server) gets a raw HMAC-MD5, a "{name}"
 *    one a prefixed HMAC of that digest.
 *  require_modern: nonzero refuses a legacy (raw MD5) reply.
 *  timeout_ns: the longest the whole handshake may take; 0 means the
 *    default of 10 s, negative means no limit.
 */
typedef struct kart_auth {
    const void *authkey;
    size_t authkey_len;
    const char *digest;
    int require_modern;
    int64_t timeout_ns;
} kart_auth;

/*
 * Python's deliver_challenge: sends a challenge, checks the reply, sends
 * "#WELCOME#" or "#FAILURE#". On any error the connection is aborted
 * (KART_ECONNABORTED from then on): an unauthenticated stream is not to be
 * used. Errors: -EINVAL (NULL c or auth, no authkey,
 * unknown digest), -ENOTSUP (built without OpenSSL), KART_EAUTH (the digest
 * was wrong or of a refused kind), KART_EHANDSHAKE (the reply is not a
 * digest: wrong length, bad prefix, unknown digest name), -ETIMEDOUT, and
 * the send/receive errors (KART_ETOOLONG: a reply over 256 bytes).
 */
KART_API int kart_conn_deliver_challenge(kart_conn *c, const kart_auth *auth);

/*
 * Python's answer_challenge: receives a challenge, sends the digest, reads
 * the verdict; on any error the connection is aborted. Errors: -EINVAL, -ENOTSUP as above; KART_EHANDSHAKE (not a
 * "#CHALLENGE#" message, a challenge under 20 bytes, an unknown digest
 * name); KART_EAUTH (the peer refused our digest); -ETIMEDOUT; the
 * send/receive errors.
 */
KART_API int kart_conn_answer_challenge(kart_conn *c, const kart_auth *auth);

/* ---- Listener and Client ---- */

/*
 * Addresses are strings:
 *  "/path/sock", "./sock", "sock"  a unix socket path (anything that is not
 *                                  one of the forms below);
 *  "@name"                         the Linux abstract namespace (Python
 *                                  writes it "\0name", which C strings
 *                                  cannot hold; nothing is created or
 *                                  unlinked in the file system);
 *  "127.0.0.1:port", "host:port"   TCP over IPv4 (a name is resolved);
 *  "[::1]:port"                    TCP over IPv6.
 * Port 0 lets the system pick one: kart_listener_address() tells it.
 */
typedef struct kart_listener_options {
    int backlog;    /* 0: the default, 128 (Python's Listener defaults to 1) */
    kart_auth auth; /* the handshake every accepted connection goes through */
} kart_listener_options;

/*
 * Binds and listens at address. opts may be NULL. TCP listeners set
 * SO_REUSEADDR, as Python's do. A unix path must not exist yet (-EADDRINUSE).
 * Errors: -EINVAL (NULL, empty or malformed address, a port past 65535,
 * a path too long for sockaddr_un, negative backlog), -ENOTSUP (auth
 * requested but built without OpenSSL), -EADDRINUSE, -EACCES,
 * -EADDRNOTAVAIL, -ENOENT (the directory does not exist), -EHOSTUNREACH
 * (a name that does not resolve), -EMFILE, -ENOMEM.
 */
KART_API int kart_listener_create(kart_listener **out, const char *address,
                                  const kart_listener_options *opts);

/*
 * Accepts one connection and runs the handshake if the listener has an
 * authkey (deliver_challenge then answer_challenge, as Python's Listener).
 * Several threads (or forked processes) may accept on one listener at
 * once; each peer goes to one of them. From an event loop: watch
 * kart_listener_fileno() for KART_READABLE and accept with timeout 0 (the
 * handshake itself then blocks, within its own timeout).
 * Waits up to timeout_ns for a peer (negative: forever); the handshake has
 * its own timeout. A peer that fails the handshake is closed.
 * Errors: -EINVAL (NULL), -ETIMEDOUT (no peer came), -EMFILE, -ENFILE,
 * -ENOMEM, -ECONNABORTED, and the handshake's errors (KART_EAUTH,
 * KART_EHANDSHAKE, -ETIMEDOUT, KART_EEOF...).
 */
KART_API int kart_listener_accept(kart_listener *l, kart_conn **out, int64_t timeout_ns);

/* Writes the bound address, in the notation above ("127.0.0.1:41234",
 * "[::1]:5000", "/tmp/s", "@name"), NUL-terminated. Returns its length, or
 * -EINVAL (NULL), -ENOSPC (size too small). */
KART_API int kart_listener_address(const kart_listener *l, char *buf, size_t size);

/* The listening fd (for kart_conn_wait or a loop watcher); -EINVAL for NULL. */
KART_API int kart_listener_fileno(const kart_listener *l);

/* Closes the listening socket, unlinks a unix socket path it created, and
 * frees the listener. NULL returns 0. */
KART_API int kart_listener_free(kart_listener *l);

/*
 * Connects to address and, if auth has an authkey, runs the handshake
 * (answer_challenge then deliver_challenge, as Python's Client). auth may
 * be NULL. auth->timeout_ns bounds the connect and the handshake together.
 * A unix listener whose backlog is full makes the connect wait, up to the
 * same deadline.
 * Errors: -EINVAL (NULL out, malformed address), -ENOTSUP (no OpenSSL),
 * -ECONNREFUSED, -ENOENT, -ETIMEDOUT, -EHOSTUNREACH, -EMFILE, -ENOMEM, and
 * the handshake's errors.
 */
KART_API int kart_conn_connect(kart_conn **out, const char *address, const kart_auth *auth);

/* ---- wait ---- */

typedef enum kart_waitable_kind {
    KART_WAIT_CONN = 1,     /* ready: a receive would not block */
    KART_WAIT_LISTENER = 2, /* ready: a peer is waiting to be accepted */
    KART_WAIT_FD = 3,       /* ready: readable, or hung up (a process
                               sentinel such as a pidfd, a pipe, any
                               pollable fd) */
} kart_waitable_kind;

typedef struct kart_waitable {
    kart_waitable_kind kind;
    union {
        kart_conn *conn;
        kart_listener *listener;
        int fd;
    } u;
    int ready; /* out: 1 if ready, else 0 */
} kart_waitable;

/*
 * Python's multiprocessing.connection.wait: waits until at least one of the
 * n objects is ready or timeout_ns passes, and marks every ready one.
 * Returns the number ready (0 on timeout). Restarts after EINTR with the
 * time left. A connection with a message in its read-ahead buffer is ready
 * at once. Errors: -EINVAL (NULL w with n > 0, negative n, a bad kind, a
 * NULL object, a negative fd), -EBADF (a connection that does not receive,
 * or an fd that is not open), -ENOMEM.
 */
KART_API int kart_conn_wait(kart_waitable *w, int n, int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif

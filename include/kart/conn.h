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
 *
 * Thread safety: a connection is *one thread at a time* (the caller
 * serializes; lock around it, as Python's Queue does), and once attached to
 * a loop, *loop thread* only. Different connections are independent. A
 * listener is *thread-safe* for kart_listener_accept, _address,
 * _last_accepted and _fileno; kart_listener_free may run while other
 * threads block in kart_listener_accept on it (they return -ECANCELED
 * before free returns); its loop calls (kart_listener_accept_start/_stop)
 * are *loop thread* only, and free then must run on that thread too.
 *
 * Errors, one meaning each: -ETIMEDOUT, nothing came within the timeout
 * (no message, no peer); -ENOBUFS, the caller's buffer is too small (the
 * size needed goes out, nothing is consumed); -EMSGSIZE, a message that can
 * never fit (a send past KART_CONN_MAX_MESSAGE: nothing is sent; a receive
 * past its maxlen: the connection is aborted); -ECONNABORTED, unusable after
 * an earlier error; KART_EEOF, the peer closed between messages;
 * KART_EHANDSHAKE, the peer broke the authkey handshake or did not finish
 * it within its timeout; KART_EAUTH, a wrong digest.
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
 * returns -ECONNABORTED. The fd stays open until kart_conn_close(), so
 * a loop watcher on it stays valid until it is stopped.
 */
#ifndef KART_CONN_H
#define KART_CONN_H

#include <kart/common.h>
#include <kart/loop.h>

#include <stdbool.h>
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
 * duplex true: a socketpair; both ends send and receive.
 * duplex false: a pipe(2); *a is the reading end and *b the writing end
 * (Python's order: r, w = Pipe(duplex=False)).
 * flags: 0 or KART_CONN_EXACT (applies to both ends).
 * Both fds are close-on-exec. Errors: -EINVAL (NULL out pointer, unknown
 * flag), -EMFILE, -ENFILE, -ENOMEM.
 */
KART_API int kart_conn_pipe(kart_conn **a, kart_conn **b, bool duplex, unsigned flags);

/*
 * Wraps an open fd (a socket, a pipe end, a FIFO, a terminal) in a
 * connection. Ownership (rule 8): the fd is taken on success only, and
 * kart_conn_close() closes it from then on; on any error it is left open
 * and is still the caller's to close.
 * flags: KART_CONN_READABLE and/or KART_CONN_WRITABLE (at least one), plus
 * KART_CONN_EXACT.
 * Errors: -EINVAL (NULL out, no direction, unknown flag), -EBADF (fd
 * negative or not open), -ENOMEM.
 */
KART_API int kart_conn_from_fd(kart_conn **out, int fd, unsigned flags);

/* Closes the fd and frees the connection, always; NULL is a no-op. Loop
 * operations end first (as kart_conn_detach: pending sends complete with
 * -ECANCELED, their callbacks running inside this call). Called from a
 * callback of this connection, it stops receiving at once and frees the
 * connection when that callback returns: do not use c after the call
 * either way. Handles received ahead and not taken are closed. */
KART_API void kart_conn_close(kart_conn *c);

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
 * peer closed its end), -ECONNRESET, -EMSGSIZE (len > KART_CONN_MAX_MESSAGE:
 * nothing is sent), -ECONNABORTED, and other write(2) errors. After an error part of the
 * message may have been sent: the connection is then aborted.
 */
KART_API int kart_conn_send_bytes(kart_conn *c, const void *buf, size_t len);

/*
 * Sends n messages (msgs[i].iov_base, msgs[i].iov_len), in order, with as
 * few system calls as the kernel allows: small messages are packed with
 * their headers into one buffer and everything goes out in writevs of up to
 * 1024 parts. The receiver sees n ordinary messages. Blocks until all are
 * in the kernel. Returns 0. Errors: those of kart_conn_send_bytes, and
 * -EINVAL for NULL msgs with n > 0, n > INT_MAX, or a NULL base with a length;
 * after an error some of the messages may have been sent (the connection
 * is then aborted).
 */
KART_API int kart_conn_send_many(kart_conn *c, const struct iovec *msgs, size_t n);

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
 * length past INT64_MAX), -EMSGSIZE (longer than maxlen: it can never
 * fit; nothing is allocated for it),
 * -ECONNABORTED (an earlier error aborted it), -ENOMEM (the message
 * stays queued: retry), -ECONNRESET and other read(2) errors.
 * KART_ETRUNCATED, KART_EBADFRAME, -EMSGSIZE and read errors leave the
 * connection aborted; KART_EEOF leaves it at EOF (later calls return
 * KART_EEOF again).
 */
KART_API int kart_conn_recv_bytes(kart_conn *c, void **out, size_t *len, size_t maxlen);

/*
 * Receives one whole message into buf (cap bytes) and sets *len to its
 * length. If the message is longer than cap, returns -ENOBUFS with *len
 * set to the length needed and leaves the message queued (nothing is
 * consumed): call again with a bigger buffer (Python's BufferTooShort,
 * without losing the message). buf may be NULL when cap is 0 (to learn the
 * next message's length).
 * Errors: those of kart_conn_recv_bytes() except -EMSGSIZE, plus
 * -ENOBUFS as above.
 */
KART_API int kart_conn_recv_bytes_into(kart_conn *c, void *buf, size_t cap, size_t *len);

/*
 * Whether data can be received without blocking: 1 if it can (bytes of a
 * message are buffered or the fd is readable, or the peer closed it, so
 * that a receive returns at once). timeout_ns 0 is a pure readiness
 * question: 1 or 0. Any other timeout is a wait (negative: forever): 1, or
 * -ETIMEDOUT once timeout_ns passed without data. Restarted after EINTR
 * with the time left. Errors: -EINVAL (NULL), -EBADF (not readable),
 * -ECONNABORTED, -ETIMEDOUT as above.
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
 * kart_conn_send_async(), kart_conn_detach() and kart_conn_close() (the
 * connection is then freed when the callback returns). */
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
 * -ENOTCONN (not attached), -EMSGSIZE, -ECONNABORTED, -ENOMEM.
 */
KART_API int kart_conn_send_async(kart_conn *c, const void *buf, size_t len, kart_conn_send_cb cb,
                                  void *arg);

/*
 * Receives messages as they arrive: cb runs for each (see
 * kart_conn_recv_cb) until kart_conn_recv_stop(). maxlen as in
 * kart_conn_recv_bytes. Messages already in the read-ahead buffer are
 * delivered in the next loop iteration. Errors: -EINVAL (NULL c or cb),
 * -EBADF (not readable), -ENOTCONN (not attached), -EBUSY (already
 * receiving), -ECONNABORTED, -ENOMEM, and kart_watch_start's.
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
 *  require_modern: true refuses a legacy (raw MD5) reply.
 *  timeout_ns: the longest the whole handshake may take; 0 means the
 *    default of 10 s, negative means no limit. A handshake that runs out
 *    of it fails with KART_EHANDSHAKE (never -ETIMEDOUT, which the
 *    listener keeps for "no peer came").
 */
typedef struct kart_auth {
    const void *authkey;
    size_t authkey_len;
    const char *digest;
    bool require_modern;
    int64_t timeout_ns;
} kart_auth;

/*
 * Python's deliver_challenge: sends a challenge, checks the reply, sends
 * "#WELCOME#" or "#FAILURE#". On any error the connection is aborted
 * (-ECONNABORTED from then on): an unauthenticated stream is not to be
 * used. Errors: -EINVAL (NULL c or auth, no authkey,
 * unknown digest), -ENOTSUP (built without OpenSSL), KART_EAUTH (the digest
 * was wrong or of a refused kind), KART_EHANDSHAKE (the reply is not a
 * digest: wrong length, bad prefix, unknown digest name; or the peer did
 * not finish within auth->timeout_ns), and the send/receive errors
 * (-EMSGSIZE: a reply over 256 bytes).
 */
KART_API int kart_conn_deliver_challenge(kart_conn *c, const kart_auth *auth);

/*
 * Python's answer_challenge: receives a challenge, sends the digest, reads
 * the verdict; on any error the connection is aborted. Errors: -EINVAL,
 * -ENOTSUP as above; KART_EHANDSHAKE (not a "#CHALLENGE#" message, a
 * challenge under 20 bytes, an unknown digest name, or not finished within
 * auth->timeout_ns); KART_EAUTH (the peer refused our digest); the
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
 * SO_REUSEADDR, as Python's do. A unix path must not exist yet (-EADDRINUSE;
 * a symlink there is never followed) and is created with mode 0600, so
 * only its owner can connect (chmod it afterwards to open it to others;
 * docs/SECURITY.md).
 * Errors: -EINVAL (NULL, empty or malformed address, a port past 65535,
 * a path too long for sockaddr_un, negative backlog), -ENOTSUP (auth
 * requested but built without OpenSSL), -EADDRINUSE, -EACCES,
 * -EADDRNOTAVAIL, -ENOENT (the directory does not exist), -EHOSTUNREACH
 * (a name that does not resolve), -EMFILE, -ENFILE, -ENOMEM.
 */
KART_API int kart_listener_create(kart_listener **out, const char *address,
                                  const kart_listener_options *opts);

/*
 * Accepts one connection and runs the handshake if the listener has an
 * authkey (deliver_challenge then answer_challenge, as Python's Listener).
 * Several threads (or forked processes) may accept on one listener at
 * once; each peer goes to one of them. From an event loop use
 * kart_listener_accept_start, which never blocks the loop.
 * Waits up to timeout_ns for a peer (negative: forever; 0: only a peer
 * already waiting); the handshake has its own timeout (auth.timeout_ns). A
 * peer that fails the handshake is closed. The accepted connection is
 * blocking.
 * Errors: -EINVAL (NULL), -ETIMEDOUT (no peer came within timeout_ns),
 * -ECANCELED (kart_listener_free ran in another thread meanwhile: l is gone
 * once this returns), -EMFILE, -ENFILE, -ENOMEM, -ENOBUFS, and the
 * handshake's errors (KART_EAUTH, KART_EHANDSHAKE, KART_EEOF, -ECONNRESET,
 * -EPIPE...).
 */
KART_API int kart_listener_accept(kart_listener *l, kart_conn **out, int64_t timeout_ns);

/*
 * Called on the loop thread for each connection accepted by
 * kart_listener_accept_start: status 0 and c a new, authenticated,
 * blocking connection that is the callback's to keep (attach it, close
 * it...); or status < 0 and c NULL: either one peer failed its handshake
 * (KART_EAUTH, KART_EHANDSHAKE, KART_EEOF, -ECONNRESET, -EPIPE, ...: that
 * peer is closed and accepting goes on), or accept(2) ran out of a
 * resource (-EMFILE, -ENFILE, -ENOBUFS, -ENOMEM: accepting has stopped;
 * call kart_listener_accept_start again to resume). The callback may call
 * kart_listener_accept_stop, not kart_listener_free.
 */
typedef void (*kart_listener_accept_cb)(kart_listener *l, int status, kart_conn *c, void *arg);

/*
 * Accepts on loop: every peer that connects is accepted when the listening
 * fd is readable and, with an authkey, taken through the handshake by the
 * loop, one message at a time as the peer's socket becomes ready, each peer
 * with its own deadline (auth.timeout_ns from its accept; 0: 10 s). A slow
 * or silent peer therefore delays no one: the loop never blocks in it.
 * Each result reaches cb (see kart_listener_accept_cb), never from inside
 * this call. Loop thread only.
 * Errors: -EINVAL (NULL l, loop or cb), -EBUSY (already accepting, or
 * peers of another loop still in their handshake), and those of
 * kart_watch_init / kart_watch_start.
 */
KART_API int kart_listener_accept_start(kart_listener *l, kart_loop *loop,
                                        kart_listener_accept_cb cb, void *arg);

/* Stops accepting on the loop and closes the peers still in their
 * handshake (no callback for them). Returns 0 (also when not accepting);
 * -EINVAL for NULL. Loop thread only. */
KART_API int kart_listener_accept_stop(kart_listener *l);

/* Writes the bound address, in the notation above ("127.0.0.1:41234",
 * "[::1]:5000", "/tmp/s", "@name"), NUL-terminated. Returns its length, or
 * -EINVAL (NULL), -ENOSPC (size too small). */
KART_API int kart_listener_address(const kart_listener *l, char *buf, size_t size);

/* The listening fd, non-blocking (for kart_conn_wait or a loop watcher);
 * -EINVAL for NULL. */
KART_API int kart_listener_fileno(const kart_listener *l);

/* Python's Listener.last_accepted: the address of the peer most recently
 * accepted (by any thread, blocking or on the loop), in the notation above:
 * "127.0.0.1:41234", "[::1]:5000", "/tmp/client" or "@name" for a unix
 * peer bound to a name, and "" (length 0) for an unnamed unix peer (a
 * kart_conn_connect client). Returns its length, or -EINVAL (NULL l, NULL
 * buf with size > 0), -ENOSPC (size too small), -ENOTCONN (no peer
 * accepted yet). */
KART_API int kart_listener_last_accepted(kart_listener *l, char *buf, size_t size);

/* Stops loop accepting (see kart_listener_accept_stop), wakes every
 * blocking kart_listener_accept on it in other threads and waits until
 * they have returned (-ECANCELED; a handshake in progress is cut short),
 * then closes the listening socket, unlinks a unix socket path it created
 * and frees the listener. NULL is a no-op. Never call it from an accept
 * callback. */
KART_API void kart_listener_free(kart_listener *l);

/*
 * Connects to address and, if auth has an authkey, runs the handshake
 * (answer_challenge then deliver_challenge, as Python's Client). auth may
 * be NULL. auth->timeout_ns bounds the connect and the handshake together.
 * A unix listener whose backlog is full makes the connect wait, up to the
 * same deadline.
 * Errors: -EINVAL (NULL out, malformed address), -ENOTSUP (no OpenSSL),
 * -ECONNREFUSED, -ENOENT, -ETIMEDOUT (the connect itself did not complete
 * in time), -EHOSTUNREACH, -EMFILE, -ENOMEM, and the handshake's errors
 * (KART_EHANDSHAKE when it did not finish in time).
 */
KART_API int kart_conn_connect(kart_conn **out, const char *address, const kart_auth *auth);

/* ---- passing fds (Python's send_handle / recv_handle) ---- */

/*
 * Python's multiprocessing.reduction.send_handle: sends a duplicate of fd
 * to the process at the other end of a unix-socket connection (a duplex
 * kart_conn_pipe, a unix Listener/Client connection), between messages, in
 * Python's wire form (one byte, the fd as SCM_RIGHTS), so a Python peer's
 * recv_handle takes it. The caller still owns fd. Blocks while the socket
 * is full. A failure sends nothing and leaves the connection usable.
 * Errors: -EINVAL (NULL c), -EBADF (fd negative or not open, or c does not
 * send), -ECONNABORTED, -EOPNOTSUPP (not a unix socket: a pipe, TCP),
 * -EBUSY (loop sends are pending on c), -EPIPE, -ECONNRESET, -ENOMEM,
 * -ENOBUFS, -ETOOMANYREFS.
 */
KART_API int kart_conn_send_handle(kart_conn *c, int fd);

/*
 * Python's recv_handle: receives the fd the peer sent next with
 * kart_conn_send_handle (or Python's send_handle) into *fd, close-on-exec;
 * the caller owns it. Blocks until it comes. A handle that arrived while
 * messages were read ahead is kept by the connection for this call.
 * Errors: -EINVAL (NULL argument), -EBADF (c does not receive),
 * -EOPNOTSUPP (not a unix socket), -EBUSY (a loop receive is active),
 * -ECONNABORTED, KART_EEOF (the peer closed first), -EPROTO (a message is
 * next, not a handle: nothing is consumed when its header was already
 * read; otherwise the stream is out of step and the connection aborted),
 * -ENOMEM, and read errors (which abort the connection).
 */
KART_API int kart_conn_recv_handle(kart_conn *c, int *fd);

/*
 * The same over a plain connected AF_UNIX socket, for callers without a
 * kart_conn (Python's sendfds / recvfds with one fd; the same wire form, so
 * either side may be a kart_conn). kart_unix_send_fd sends a duplicate of
 * fd; the caller still owns fd. It never raises SIGPIPE and does not wait
 * on a non-blocking socket (-EAGAIN).
 * Errors: -EBADF (sock or fd negative or not open), -ENOTSOCK, -EPIPE /
 * -ECONNRESET (the peer is gone), -EAGAIN, -ENOMEM / -ENOBUFS,
 * -ETOOMANYREFS.
 */
KART_API int kart_unix_send_fd(int sock, int fd);

/*
 * Receives one fd sent by kart_unix_send_fd (or kart_conn_send_handle, or
 * Python's send_handle) into *fd (O_CLOEXEC); the caller owns it.
 * Errors: -EINVAL (fd NULL), -EBADF (sock negative or not open),
 * -ENOTSOCK, KART_EEOF (the peer closed: nothing came), -EPROTO (a message
 * that is not one handle; any fds it carried are closed), -EAGAIN
 * (non-blocking socket, nothing there), -EMFILE, -ECONNRESET.
 */
KART_API int kart_unix_recv_fd(int sock, int *fd);

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
    bool ready; /* out: whether it is ready */
} kart_waitable;

/*
 * Python's multiprocessing.connection.wait: waits until at least one of the
 * n objects is ready or timeout_ns passes, and marks every ready one.
 * Returns the number ready. As kart_conn_poll: timeout_ns 0 is a pure
 * look (0 when none is ready); any other timeout that passes with none
 * ready gives -ETIMEDOUT. n 0 returns 0 at once. Restarts after EINTR with
 * the time left. A connection with a message in its read-ahead buffer is
 * ready at once. Errors: -EINVAL (NULL w with n > 0, n > INT_MAX, a bad
 * kind, a NULL object, a negative fd), -EBADF (a connection that does not
 * receive, or an fd that is not open), -ENOMEM, -ETIMEDOUT as above.
 */
KART_API int kart_conn_wait(kart_waitable *w, size_t n, int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif

/*
 * core/io_private.h — completion-based I/O (kart/io.h) inside the library:
 * the state the front end (core/io.c) shares with the two ways of doing
 * the operations: natively through io_uring (uring/uring_io.c) and
 * emulated over readiness (compat/io_emul.c).
 *
 * Division of labour: core/io.c validates, counts pending operations,
 * owns the buffer pool and the queue of results waiting to be delivered,
 * and delivers every final callback (kart__req_finish). A mode only starts
 * operations and turns what the kernel says into kart__req_finish() calls
 * (from the loop's dispatch) or kart__req_defer() calls (from inside a
 * start, where a callback must not run yet).
 */
#ifndef KART_IO_PRIVATE_H
#define KART_IO_PRIVATE_H

#include "fault.h"
#include "loop_private.h"

#include <kart/io.h>
#include <sys/socket.h>

/* kart_sock.flags_ */
#define KS_RECV 0x001u          /* the user receives (recv_cb_ set) */
#define KS_RECV_INFLIGHT 0x002u /* io_uring holds a multishot recv */
#define KS_RECV_CANCEL 0x004u   /* ... and a cancel for it was submitted */
#define KS_LISTED 0x008u        /* on the loop's resume list */
#define KS_CLOSING 0x010u       /* kart_sock_close() was called */
#define KS_WR_SHUT 0x020u       /* a SHUT_WR/RDWR is queued or done */
#define KS_SEND_INFLIGHT 0x040u /* io_uring holds the send queue's head */
#define KS_SEND_WAIT 0x080u     /* emulation: the head waits for writable */
#define KS_CLOSE_DONE 0x100u    /* the close's own result is known */
#define KS_STARVED 0x200u       /* the receive waits for a free buffer */
#define KS_DRAINING 0x400u      /* a graceful close waits for the send queue */
#define KS_KICK 0x800u          /* io_uring: the send queue waits for the turn's end */
/* A close of either kind was asked for: no new operation starts. */
#define KS_ENDING (KS_CLOSING | KS_DRAINING)

/* kart_req.state_ */
#define KR_IDLE 0
#define KR_PENDING 1
#define KR_DONE 2 /* result set, on the loop's delivery queue */

/* kart_req.flags_ */
#define KR_CANCEL 0x01u   /* kart_req_cancel() (or a close) asked to end it */
#define KR_TIMEDOUT 0x02u /* its timeout fired */
#define KR_INFLIGHT 0x04u /* io_uring holds it */
#define KR_TIMER 0x08u    /* emulation: t_.timer_ is running */
#define KR_BACKOFF 0x10u  /* accept paused at the fd limit */
#define KR_POLLWAIT 0x20u /* io_uring: accept waits for readiness at the limit */

/* kart_buf.flags_ */
#define KB_LENT 0x1u
#define KB_SLICE 0x2u /* a kart__slice: part of a pool buffer (io_uring, uring_pbuf.c) */

/* The request kart_sock_send_buf() uses for one buffer. */
typedef struct kart__bufsend {
    kart_req req;
    kart_send_buf_cb cb;
    kart_buf *buf;
} kart__bufsend;

/* A slice of a pool buffer, lent by io_uring's incremental consumption
 * (uring/uring_pbuf.c): several receives share one buffer, so each needs
 * its own kart_buf (base and size name the slice; id_ is the buffer's)
 * and its own kart_sock_send_buf() request. The backend owns them. */
typedef struct kart__slice {
    kart_buf buf; /* first: a kart_buf * with KB_SLICE is a kart__slice * */
    kart__bufsend send;
    struct kart__slice *next; /* the backend's free list */
} kart__slice;

typedef struct kart__bufpool {
    kart_loop *loop;
    char *mem;
    size_t memsz;
    uint32_t count, size;
    kart_buf *bufs;
    kart__bufsend *sends; /* one per buffer, for kart_sock_send_buf() */
    uint32_t *free;       /* a stack of free buffer ids (io_uring: those outside the ring) */
    uint32_t nfree;
    uint32_t lent;
    /* io_uring's provided-buffer ring, when native. */
    void *br;
    size_t brsz;
    bool registered;
    /* The backend's own state of the pool (io_uring's slices), freed by
     * ext_free with the pool, registered or not (a forked child). */
    void *ext;
    void (*ext_free)(struct kart__bufpool *pool);
} kart__bufpool;

/* io_uring's gathered send: the iovec of the requests at the front of a
 * socket's send queue, sent as one IORING_OP_SENDMSG (uring_io.c). Kept
 * in per-size free lists on the loop, so a busy socket allocates nothing
 * once the lists hold what its queue depth needs; sized to what is queued
 * (8, 64 or 1024 requests), so an idle or lightly loaded connection holds
 * none. */
#define KART__SENDV_CLASSES 3
typedef struct kart__sendv {
    struct msghdr msg;
    struct kart__sendv *next; /* the free list */
    struct kart__sendv *all;  /* every block of the loop, in flight or not */
    uint32_t n;               /* requests gathered */
    uint32_t cap;             /* iov's length */
    uint8_t cls;              /* its free list */
    struct iovec iov[];
} kart__sendv;

typedef struct kart__io {
    const struct kart__io_mode *mode;
    bool native;                /* mode->native */
    int reserve_fd;             /* the spare descriptor for EMFILE; -1 when none */
    kart_req *done, *done_tail; /* results waiting to be delivered */
    kart_sock *resume;          /* receives to (re)arm or feed a stash */
    kart_sock *starved;         /* receives waiting for a free buffer */
    int nrecv;                  /* sockets receiving (KS_RECV) */
    int nrecv_held;             /* multishot receives io_uring holds */
    uint32_t pool_count, pool_size;
    kart__bufpool *pool;
    kart_io_stats stats;
    struct kart__rcsend *rcsends;                 /* kart_sock_send_rcbuf's requests in flight */
    kart__sendv *sendv_free[KART__SENDV_CLASSES]; /* io_uring's gathered sends, idle */
    kart__sendv *sendv_all; /* ... all of them: freed with the loop, in flight or not */
} kart__io;

/* accept(2) of a non-blocking, close-on-exec connection; macOS has no
 * accept4, nor MSG_NOSIGNAL (kart_sock_init sets SO_NOSIGPIPE there). */
#ifdef __APPLE__
#include <fcntl.h>
#define MSG_NOSIGNAL 0
static inline int kart__accept_nb(int fd)
{
    int c = accept(fd, NULL, NULL);
    if (c >= 0) {
        fcntl(c, F_SETFD, FD_CLOEXEC);
        fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
    }
    return c;
}
#else
static inline int kart__accept_nb(int fd)
{
    return kart__sys_accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
#endif

/* io_share.c: frees the requests of kart_sock_send_rcbuf still pending
 * when the loop is freed, and their references. */
void kart__rcsends_drop(kart__io *io);

/* core/io.c */
kart__io *kart__io_get(kart_loop *loop);               /* lazily created; NULL: -ENOMEM */
void kart__io_fini(kart_loop *loop, bool forked);      /* forked: touch no kernel object */
bool kart__io_has_work(const kart_loop *loop);         /* the loop must not block */
void kart__io_flush(kart_loop *loop);                  /* deliver and resume */
void kart__io_ready(kart_sock *sock, uint32_t events); /* loop dispatch */
void kart__io_complete(kart_loop *loop);               /* the completions the wait collected */
int kart__pool_ready(kart_loop *loop);                 /* creates the pool if need be */
kart_buf *kart__pool_take(kart__bufpool *pool);        /* emulation; NULL when empty */
void kart__req_finish(kart_req *req, int res);         /* final callback, now */
void kart__req_defer(kart_req *req, int res);          /* final callback, from the loop */
void kart__sock_resume(kart_sock *sock);               /* put on the resume list */
void kart__sock_starve(kart_sock *sock);               /* wait for a buffer release */
bool kart__io_busy(const kart_loop *loop);             /* buffers are lent */
void kart__recv_deliver(kart_sock *sock, int n, kart_buf *buf);
void kart__recv_end(kart_sock *sock, int res); /* EOF or error: final */
void kart__sock_maybe_closed(kart_sock *sock); /* close cb once all is done */
void kart__sendq_pop(kart_sock *sock);         /* the head is done */
int kart__accept_fd_limit(kart_req *req);      /* EMFILE/ENFILE: drain, back off */
void kart__accept_backoff(kart_req *req);      /* pause accepting a while */

/* io_deadline.c: the idle deadline (kart_sock_set_idle_timeout). touch:
 * activity now (sock->idle_ set); drop: remove it, if any. */
void kart__idle_touch(kart_sock *sock);
void kart__idle_drop(kart_sock *sock);

/* Arms a request's timeout on a loop timer (KR_TIMER), and stops it: the
 * way every send and shutdown times out in both modes (natively a connect
 * or a file operation in flight uses a linked timeout instead). On
 * expiry the request is cancelled through its mode with KR_TIMEDOUT set. */
void kart__req_timer_start(kart_req *req);
void kart__req_timer_stop(kart_req *req);

/*
 * The completion mode: how the operations are done. uring/ fills one
 * natively (the selector's backend offers it through its io_mode op); the
 * emulation over readiness (compat/io_emul.c) is the mode of every other
 * backend. core/io.c and core/loop.c call a mode only through this table.
 * Starts return 0 or a negative errno (nothing started, no callback).
 */
typedef struct kart__io_mode {
    const char *name;
    bool native;                  /* io_uring: pools are rings */
    int (*accept)(kart_req *req); /* also resumes an accept after a back-off */
    int (*connect)(kart_req *req, const struct sockaddr *addr, socklen_t len);
    int (*recv_arm)(kart_sock *sock);   /* receive (again), unless already armed */
    void (*recv_stop)(kart_sock *sock); /* KS_RECV was cleared */
    /* The send queue was idle: start its head (io_uring: at turn_end). */
    void (*send_kick)(kart_sock *sock);
    /* The turn's callbacks are done and the loop is about to wait: start
     * what the mode put off until then (NULL: nothing). */
    void (*turn_end)(kart_loop *loop);
    int (*file)(kart_req *req); /* KART_REQ_READ or KART_REQ_WRITE */
    /* Ends the socket's operations and closes its fd; when it fails the
     * core closes the fd itself. */
    int (*close)(kart_sock *sock);
    int (*cancel)(kart_req *req); /* KR_CANCEL or KR_TIMEDOUT is set */
    /* Dispatch: readiness of a socket the mode registered with the
     * selector (emulation), and the completions the last wait collected
     * (native). Either may be NULL. */
    void (*ready)(kart_sock *sock, uint32_t events);
    void (*complete)(kart_loop *loop);
    /* The receive buffer pool handed to the kernel (NULL: the pool stays a
     * stack of free ids in core/io.c). */
    int (*pool_register)(kart__bufpool *pool);
    void (*pool_unregister)(kart__bufpool *pool);
    /* A released buffer: true when a buffer is free again (false: a
     * slice whose buffer still has others out, or the kernel's). */
    bool (*buf_return)(kart__bufpool *pool, kart_buf *buf);
    void (*stats)(kart_selector *sel, kart_io_stats *out); /* NULL: none */
} kart__io_mode;

/* The mode a loop's sockets use: the selector backend's native one, when
 * it has one for this kernel, or the emulation. */
const kart__io_mode *kart__io_mode_for(kart_selector *sel);

/* compat/io_emul.c: the emulation over readiness. */
extern const kart__io_mode kart__io_emulated;

#endif

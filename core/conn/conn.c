/*
 * core/conn.c — a message connection over a socket or pipe, framed as
 * Python's multiprocessing.connection frames it: creation, blocking send
 * and receive, poll, close.
 *
 * Receiving reads ahead into a 64 KiB buffer (unless KART_CONN_EXACT), so
 * that a stream of small messages costs about one read() per buffer-full,
 * not two per message (header, then payload) as in Python. A large payload
 * is read straight into its destination, with the buffer as a second iovec
 * so that the same readv also takes in what follows. The receive state
 * (the next message's length once its header is in, and a payload being
 * assembled) lives in the connection, so that a receive interrupted by a
 * timeout, a short buffer or a loop callback resumes where it stopped.
 */
#include "conn_private.h"
#include "deadline.h"
#include "fault.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int kart__poll_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        struct timespec ts, *tsp = NULL;
        int64_t left = 0;
        if (deadline != KART__NO_DEADLINE) {
            left = deadline - kart_now_ns();
            if (left < 0)
                left = 0;
            ts = kart__timespec(left);
            tsp = &ts;
        }
        int r = kart__sys_ppoll(&p, 1, tsp, NULL);
        if (r > 0)
            return (p.revents & POLLNVAL) ? -EBADF : 1;
        if (r == 0) {
            if (left == 0)
                return -ETIMEDOUT;
            continue; /* woke a little early: look at the clock again */
        }
        if (errno != EINTR)
            return -errno;
    }
}

/* ---- creation and teardown ---- */

static int conn_new(kart_conn **out, int fd, unsigned flags)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    kart_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->fd = fd;
    c->flags = flags;
    c->is_socket = S_ISSOCK(st.st_mode);
    if (c->is_socket) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int type = 0;
        socklen_t tl = sizeof type;
        c->is_unix = getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_UNIX;
        c->wait_in_poll = c->is_unix && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
                          type == SOCK_STREAM;
    }
    c->nonblock = (fl & O_NONBLOCK) != 0;
    c->orig_nonblock = c->nonblock;
    *out = c;
    return 0;
}

KART_API int kart_conn_from_fd(kart_conn **out, int fd, unsigned flags)
{
    if (!out || !(flags & (KART_CONN_READABLE | KART_CONN_WRITABLE)) ||
        (flags & ~(KART_CONN_READABLE | KART_CONN_WRITABLE | KART_CONN_EXACT)))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    return conn_new(out, fd, flags);
}

KART_API int kart_conn_pipe(kart_conn **a, kart_conn **b, bool duplex, unsigned flags)
{
    if (!a || !b || (flags & ~KART_CONN_EXACT))
        return -EINVAL;
    int fds[2];
    unsigned fa, fb;
    if (duplex) {
        if (kart__sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
            return -errno;
        fa = fb = KART_CONN_READABLE | KART_CONN_WRITABLE;
    } else {
        if (kart__sys_pipe2(fds, O_CLOEXEC) != 0)
            return -errno;
        fa = KART_CONN_READABLE;
        fb = KART_CONN_WRITABLE;
    }
    int err = conn_new(a, fds[0], fa | flags);
    if (err == 0) {
        err = conn_new(b, fds[1], fb | flags);
        if (err != 0)
            free(*a);
    }
    if (err != 0) {
        close(fds[0]);
        close(fds[1]);
    }
    return err;
}

static void conn_free(kart_conn *c)
{
    /* The detach inside may run send callbacks: in_cb keeps a close they
     * call from freeing c under our feet. */
    c->in_cb++;
    kart__conn_loop_close(c);
    close(c->fd);
    for (size_t i = 0; i < c->nhfd; i++)
        close(c->hfds[i]);
    free(c->hfds);
    free(c->rbuf);
    free(c->asm_buf);
    free(c);
}

KART_API void kart_conn_close(kart_conn *c)
{
    if (!c)
        return;
    if (c->in_cb) {
        /* Inside one of its callbacks: stop receiving now, free when the
         * outermost callback returns (kart__conn_cb_leave). */
        c->close_pending = true;
        c->receiving = false;
        return;
    }
    conn_free(c);
}

bool kart__conn_cb_leave(kart_conn *c)
{
    if (--c->in_cb == 0 && c->close_pending) {
        conn_free(c);
        return true;
    }
    return false;
}

KART_API int kart_conn_fileno(const kart_conn *c)
{
    return c ? c->fd : -EINVAL;
}

int kart__conn_abort(kart_conn *c, int err)
{
    if (c->state != KART__CONN_ABORTED) {
        c->state = KART__CONN_ABORTED;
        /* The peer sees the end at once; the fd itself stays open so that
         * watchers on it remain valid until the owner closes it. */
        if (c->is_socket)
            shutdown(c->fd, SHUT_RDWR);
        free(c->asm_buf);
        c->asm_buf = NULL;
        c->asm_got = 0;
        c->have_len = false;
        c->rpos = c->rend = 0;
    }
    return err;
}

/* ---- writing ---- */

/* One writev, without SIGPIPE: MSG_NOSIGNAL on sockets; on pipes SIGPIPE is
 * blocked in this thread for the call, and the one the write raised (if the
 * thread did not block it already) is taken back before unblocking. */
ssize_t kart__conn_do_writev(kart_conn *c, const struct iovec *iov, int n)
{
    if (c->is_socket) {
        if (n == 1)
            return kart__sys_send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
        return kart__sys_sendmsg(c->fd, &m, MSG_NOSIGNAL);
    }
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r = kart__sys_writev(c->fd, iov, n);
    int e = errno;
    if (r < 0 && e == EPIPE && !sigismember(&old, SIGPIPE)) {
        sigset_t pending;
        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
            struct timespec zero = {0, 0};
            sigtimedwait(&pipe_set, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return r;
}

int kart__conn_writev_all(kart_conn *c, struct iovec *iov, int iovcnt, int64_t deadline)
{
    while (iovcnt > 0) {
        if (deadline != KART__NO_DEADLINE && !c->nonblock) {
            int p = kart__poll_fd(c->fd, POLLOUT, deadline);
            if (p < 0)
                return p;
        }
        ssize_t r = kart__conn_do_writev(c, iov, iovcnt);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int p = kart__poll_fd(c->fd, POLLOUT, deadline);
                if (p < 0)
                    return p;
                continue;
            }
            return -errno;
        }
        size_t n = (size_t)r;
        while (iovcnt > 0 && n >= iov->iov_len) {
            n -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= n;
        }
    }
    return 0;
}

int kart__conn_can_send(const kart_conn *c)
{
    if (!(c->flags & KART_CONN_WRITABLE))
        return -EBADF;
    if (c->state == KART__CONN_ABORTED)
        return -ECONNABORTED;
    return 0;
}

int kart__conn_send_dl(kart_conn *c, const void *buf, size_t len, int64_t deadline)
{
    if (!c || (!buf && len > 0))
        return -EINVAL;
    int err = kart__conn_can_send(c);
    if (err)
        return err;
    if (c->sq_head)
        return -EBUSY;
    if (len > KART_CONN_MAX_MESSAGE)
        return -EMSGSIZE;
    struct iovec iov[2];
    int n;
    uint8_t small[12 + KART__CONN_COPY_MAX];
    if (len <= KART__CONN_COPY_MAX) {
        size_t h = kart__frame_encode(small, len);
        if (len)
            memcpy(small + h, buf, len);
        iov[0] = (struct iovec){small, h + len};
        n = 1;
    } else {
        size_t h = kart__frame_encode(small, len);
        iov[0] = (struct iovec){small, h};
        iov[1] = (struct iovec){(void *)buf, len};
        n = 2;
    }
    err = kart__conn_writev_all(c, iov, n, deadline);
    return err ? kart__conn_abort(c, err) : 0;
}

KART_API int kart_conn_send_bytes(kart_conn *c, const void *buf, size_t len)
{
    return kart__conn_send_dl(c, buf, len, KART__NO_DEADLINE);
}

/* send_many packs small messages with their headers here; larger ones
 * keep their own iovec. */
#define PACK_BYTES 16384
#define PACK_IOVS 1024

KART_API int kart_conn_send_many(kart_conn *c, const struct iovec *msgs, size_t n)
{
    if (!c || n > INT_MAX || (!msgs && n > 0))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].iov_base && msgs[i].iov_len > 0)
            return -EINVAL;
        if (msgs[i].iov_len > KART_CONN_MAX_MESSAGE)
            return -EMSGSIZE;
    }
    int err = kart__conn_can_send(c);
    if (err)
        return err;
    if (c->sq_head)
        return -EBUSY;
    uint8_t *pack = malloc(PACK_BYTES);
    struct iovec *iov = malloc(PACK_IOVS * sizeof(*iov));
    err = pack && iov ? 0 : -ENOMEM;
    size_t used = 0;
    int niov = 0;
    for (size_t i = 0; i < n && !err; i++) {
        size_t len = msgs[i].iov_len;
        bool small = len <= KART__CONN_COPY_MAX;
        size_t room = small ? 12 + len : 12;
        if (used + room > PACK_BYTES || niov + 2 > PACK_IOVS) {
            err = kart__conn_writev_all(c, iov, niov, KART__NO_DEADLINE);
            used = 0;
            niov = 0;
        }
        if (err)
            break;
        uint8_t *at = pack + used;
        size_t h = kart__frame_encode(at, len);
        if (small && len)
            memcpy(at + h, msgs[i].iov_base, len);
        size_t packed = small ? h + len : h;
        /* Extend the last part when it ends where this one starts. */
        if (niov > 0 && (uint8_t *)iov[niov - 1].iov_base + iov[niov - 1].iov_len == at)
            iov[niov - 1].iov_len += packed;
        else
            iov[niov++] = (struct iovec){at, packed};
        used += packed;
        if (!small)
            iov[niov++] = msgs[i];
    }
    if (!err && niov > 0)
        err = kart__conn_writev_all(c, iov, niov, KART__NO_DEADLINE);
    free(pack);
    free(iov);
    if (err == -ENOMEM && used == 0 && niov == 0)
        return err;
    return err ? kart__conn_abort(c, err) : 0;
}

/* ---- reading ---- */

static int ensure_rbuf(kart_conn *c)
{
    if (!c->rbuf) {
        /* An exact connection only ever holds a header. */
        c->rcap = (c->flags & KART_CONN_EXACT) ? 12 : KART__CONN_RBUF;
        c->rbuf = malloc(c->rcap);
        if (!c->rbuf)
            return -ENOMEM;
    }
    return 0;
}

/* Keeps the fds a read brought in, for kart_conn_recv_handle. */
static void keep_fds(kart_conn *c, struct msghdr *m)
{
    for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h; h = CMSG_NXTHDR(m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
            if (c->nhfd == c->hcap) {
                size_t cap = c->hcap ? c->hcap * 2 : 4;
                int *p = realloc(c->hfds, cap * sizeof(int));
                if (!p) {
                    close(fd); /* its token then reads as -EPROTO */
                    continue;
                }
                c->hfds = p;
                c->hcap = cap;
            }
            c->hfds[c->nhfd++] = fd;
        }
    }
}

ssize_t kart__conn_sys_read(kart_conn *c, struct iovec *iov, int n)
{
    if (!c->is_unix)
        return n == 1 ? kart__sys_read(c->fd, iov[0].iov_base, iov[0].iov_len)
                      : kart__sys_readv(c->fd, iov, n);
    /* A unix socket may carry handles (kart_conn_send_handle): a plain
     * read would make the kernel close them, so take them in with the
     * bytes. The kernel ends a read at the byte an fd came with. */
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = {.msg_iov = iov,
                       .msg_iovlen = (size_t)n,
                       .msg_control = u.buf,
                       .msg_controllen = sizeof(u.buf)};
    ssize_t r = kart__sys_recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);
    if (r >= 0 && m.msg_controllen > 0) {
        int e = errno;
        keep_fds(c, &m);
        errno = e;
    }
    return r;
}

/* One readv, through EINTR; when the fd is not ready: -EAGAIN if nowait,
 * else a wait in poll() until deadline. Returns the count, 0 at EOF.
 *
 * On a unix stream socket a blocking receive waits in poll() first, not in
 * read(): Linux wakes every sleeper on a unix socket's wait queue when the
 * peer reads what this end sent (unix_write_space, an EPOLLOUT wakeup),
 * and a thread asleep in read() takes that wakeup, finds nothing and
 * sleeps again, while a poll() waiter is woken by POLLIN only. In a round
 * trip (send a request, wait for the reply) the peer always reads the
 * request while we wait, so read() costs a spurious context switch per
 * message: 3 switches per round trip instead of 2 (a C client's manager
 * dict set/get, both processes on 2 CPUs: 7-10% less CPU per call). */
static ssize_t read_iov(kart_conn *c, struct iovec *iov, int n, int64_t deadline, bool nowait)
{
    if (!nowait && !c->nonblock && (deadline != KART__NO_DEADLINE || c->wait_in_poll)) {
        int p = kart__poll_fd(c->fd, POLLIN, deadline);
        if (p < 0)
            return p;
    }
    for (;;) {
        ssize_t r = kart__conn_sys_read(c, iov, n);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        if (nowait)
            return -EAGAIN;
        int p = kart__poll_fd(c->fd, POLLIN, deadline);
        if (p < 0)
            return p;
    }
}

/* Reads more into the read-ahead buffer, which must end up holding `want`
 * unread bytes in all (an exact connection reads no further than that). */
static ssize_t fill(kart_conn *c, size_t want, int64_t deadline, bool nowait)
{
    size_t avail = c->rend - c->rpos;
    if (avail == 0) {
        c->rpos = c->rend = 0;
    } else if (c->rcap - c->rpos < want) {
        memmove(c->rbuf, c->rbuf + c->rpos, avail);
        c->rpos = 0;
        c->rend = avail;
    }
    size_t room = c->rcap - c->rend;
    if ((c->flags & KART_CONN_EXACT) && room > want - avail)
        room = want - avail;
    else if (c->big && room > KART__CONN_HDR_MAX - avail)
        room = KART__CONN_HDR_MAX - avail; /* a header, not the payload */
    struct iovec iov = {c->rbuf + c->rend, room};
    ssize_t r = read_iov(c, &iov, 1, deadline, nowait);
    if (r > 0)
        c->rend += (size_t)r;
    return r;
}

/* Errors that leave the receive state as it was: the call may be repeated. */
static bool resumable(int err)
{
    return err == -EAGAIN || err == -ETIMEDOUT || err == -ENOMEM;
}

ssize_t kart__conn_fill1(kart_conn *c, bool nowait)
{
    int err = ensure_rbuf(c);
    if (err)
        return err;
    return fill(c, 1, KART__NO_DEADLINE, nowait);
}

int kart__conn_need_header(kart_conn *c, int64_t deadline, bool nowait)
{
    if (c->state == KART__CONN_ABORTED)
        return -ECONNABORTED;
    if (c->have_len)
        return 0;
    if (c->state == KART__CONN_EOF)
        return KART_EEOF;
    int err = ensure_rbuf(c);
    if (err)
        return err;
    for (;;) {
        size_t avail = c->rend - c->rpos, need = 0;
        uint64_t len;
        int h = kart__frame_decode(c->rbuf + c->rpos, avail, &len, &need);
        if (h > 0) {
            c->rpos += (size_t)h;
            c->len = len;
            c->have_len = true;
            c->big = !(c->flags & KART_CONN_EXACT) && len >= KART__CONN_BIG;
            return 0;
        }
        if (h < 0)
            return kart__conn_abort(c, h);
        ssize_t r = fill(c, need, deadline, nowait);
        if (r == 0) {
            if (avail > 0)
                return kart__conn_abort(c, KART_ETRUNCATED);
            c->state = KART__CONN_EOF;
            return KART_EEOF;
        }
        if (r < 0)
            return resumable((int)r) ? (int)r : kart__conn_abort(c, (int)r);
    }
}

int kart__conn_read_payload(kart_conn *c, uint8_t *dst, size_t len, size_t *got, int64_t deadline,
                            bool nowait)
{
    bool exact = (c->flags & KART_CONN_EXACT) != 0;
    while (*got < len) {
        size_t avail = c->rend - c->rpos, left = len - *got;
        if (avail > 0) {
            size_t k = avail < left ? avail : left;
            memcpy(dst + *got, c->rbuf + c->rpos, k);
            c->rpos += k;
            *got += k;
            continue;
        }
        ssize_t r;
        if (!exact && !c->big && left < KART__CONN_RBUF / 2) {
            r = fill(c, left, deadline, nowait);
        } else {
            /* Straight into the destination; the rest of the readv's room
             * is the read-ahead buffer, for what follows (after a large
             * message, just the next header: its payload is likely large
             * too, and had better land in its own destination). */
            c->rpos = c->rend = 0;
            size_t spill = exact ? 0 : c->big ? KART__CONN_HDR_MAX : c->rcap;
            struct iovec iov[2] = {{dst + *got, left}, {c->rbuf, spill}};
            r = read_iov(c, iov, exact ? 1 : 2, deadline, nowait);
            if (r > 0) {
                size_t n = (size_t)r;
                if (n > left) {
                    c->rend = n - left;
                    n = left;
                }
                *got += n;
            }
        }
        if (r == 0)
            return kart__conn_abort(c, KART_ETRUNCATED);
        if (r < 0)
            return resumable((int)r) ? (int)r : kart__conn_abort(c, (int)r);
    }
    return 0;
}

int kart__conn_assemble(kart_conn *c, int64_t deadline, bool nowait)
{
    size_t len = (size_t)c->len;
    for (;;) {
        if (!c->asm_buf || (c->asm_got == c->asm_cap && c->asm_cap < len)) {
            size_t cap = c->asm_buf ? c->asm_cap * 2 : KART__CONN_ASM_FIRST;
            if (cap > len)
                cap = len;
            uint8_t *p = realloc(c->asm_buf, cap ? cap : 1);
            if (!p)
                return -ENOMEM;
            if (!c->asm_buf)
                c->asm_got = 0;
            c->asm_buf = p;
            c->asm_cap = cap;
        }
        int err = kart__conn_read_payload(c, c->asm_buf, c->asm_cap, &c->asm_got, deadline, nowait);
        if (err || c->asm_got == len)
            return err;
    }
}

static int recv_checks(kart_conn *c)
{
    if (!(c->flags & KART_CONN_READABLE))
        return -EBADF;
    if (c->receiving)
        return -EBUSY;
    return 0;
}

int kart__conn_recv_dl(kart_conn *c, void **out, size_t *len, size_t maxlen, int64_t deadline)
{
    int err = recv_checks(c);
    if (err)
        return err;
    err = kart__conn_need_header(c, deadline, false);
    if (err)
        return err;
    if (c->len > maxlen)
        return kart__conn_abort(c, -EMSGSIZE);
    err = kart__conn_assemble(c, deadline, false);
    if (err)
        return err;
    *out = c->asm_buf;
    *len = (size_t)c->len;
    c->asm_buf = NULL;
    c->have_len = false;
    return 0;
}

KART_API int kart_conn_recv_bytes(kart_conn *c, void **out, size_t *len, size_t maxlen)
{
    if (!c || !out || !len)
        return -EINVAL;
    return kart__conn_recv_dl(c, out, len, maxlen, KART__NO_DEADLINE);
}

KART_API int kart_conn_recv_bytes_into(kart_conn *c, void *buf, size_t cap, size_t *len)
{
    if (!c || !len || (!buf && cap > 0))
        return -EINVAL;
    int err = recv_checks(c);
    if (err)
        return err;
    err = kart__conn_need_header(c, KART__NO_DEADLINE, false);
    if (err)
        return err;
    if (c->len > cap) {
        *len = (size_t)c->len;
        return -ENOBUFS;
    }
    if (c->asm_buf) {
        /* A loop receive stopped half-way through this message. */
        err = kart__conn_assemble(c, KART__NO_DEADLINE, false);
        if (err)
            return err;
        memcpy(buf, c->asm_buf, (size_t)c->len);
        free(c->asm_buf);
        c->asm_buf = NULL;
    } else {
        size_t got = 0;
        err = kart__conn_read_payload(c, buf, (size_t)c->len, &got, KART__NO_DEADLINE, false);
        if (err)
            return err;
    }
    *len = (size_t)c->len;
    c->have_len = false;
    return 0;
}

KART_API int kart_conn_poll(kart_conn *c, int64_t timeout_ns)
{
    if (!c)
        return -EINVAL;
    if (!(c->flags & KART_CONN_READABLE))
        return -EBADF;
    if (c->state == KART__CONN_ABORTED)
        return -ECONNABORTED;
    if (c->state == KART__CONN_EOF || kart__conn_buffered(c))
        return 1;
    int r = kart__poll_fd(c->fd, POLLIN, kart__deadline(timeout_ns));
    /* Rule 3: a look answers 0; a wait that ran out is -ETIMEDOUT. */
    return r == -ETIMEDOUT && timeout_ns == 0 ? 0 : r;
}

/*
 * core/handle.c — passing fds between processes over unix sockets
 * (SCM_RIGHTS), as Python's multiprocessing.reduction does: send_handle /
 * recv_handle over a connection, sendfds / recvfds over a plain socket.
 *
 * The wire form is Python's on Linux: one byte holding the number of fds
 * (1), with the fd as ancillary data, and no acknowledgement. Over a
 * kart_conn the byte sits in the stream between messages; the connection's
 * reads take in any fds that come with the bytes they read ahead
 * (conn.c: kart__conn_sys_read), so that a handle sent after a message is
 * never lost to the read-ahead.
 */
#include "conn_private.h"
#include "deadline.h"
#include "fault.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANDLE_BYTE 1 /* len(fds) % 256, as Python's sendfds writes it */
#define MAXFD 8

/* One sendmsg of the handle byte with fd; waits on a non-blocking socket. */
static int send_fd(int sock, int fd, bool wait_when_full)
{
    char byte = HANDLE_BYTE;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    for (;;) {
        if (kart__sys_sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (wait_when_full && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int p = kart__poll_fd(sock, POLLOUT, KART__NO_DEADLINE);
            if (p < 0)
                return p;
            continue;
        }
        return -errno;
    }
}

KART_API int kart_unix_send_fd(int sock, int fd)
{
    if (sock < 0 || fd < 0)
        return -EBADF;
    return send_fd(sock, fd, false);
}

KART_API int kart_unix_recv_fd(int sock, int *fd)
{
    if (!fd)
        return -EINVAL;
    if (sock < 0)
        return -EBADF;
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(MAXFD * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    while ((n = kart__sys_recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -errno;
    int got[MAXFD], ngot = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && ngot < MAXFD; i++)
            memcpy(&got[ngot++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    if (n == 0 && ngot == 0)
        return KART_EEOF;
    if (ngot != 1 || n != 1 || byte != HANDLE_BYTE || (msg.msg_flags & MSG_CTRUNC)) {
        for (int i = 0; i < ngot; i++)
            close(got[i]);
        return -EPROTO;
    }
    *fd = got[0];
    return 0;
}

KART_API int kart_conn_send_handle(kart_conn *c, int fd)
{
    if (!c)
        return -EINVAL;
    int err = kart__conn_can_send(c);
    if (err)
        return err;
    if (fd < 0)
        return -EBADF;
    if (!c->is_unix)
        return -EOPNOTSUPP;
    if (c->sq_head)
        return -EBUSY;
    /* One byte goes whole or not at all: a failure leaves the stream as
     * it was, so the connection is not aborted. */
    return send_fd(c->fd, fd, true);
}

KART_API int kart_conn_recv_handle(kart_conn *c, int *fd)
{
    if (!c || !fd)
        return -EINVAL;
    if (!(c->flags & KART_CONN_READABLE))
        return -EBADF;
    if (!c->is_unix)
        return -EOPNOTSUPP;
    if (c->receiving)
        return -EBUSY;
    if (c->state == KART__CONN_ABORTED)
        return -ECONNABORTED;
    if (c->have_len)
        return -EPROTO; /* a message's header is in: a message is next */
    if (c->rend == c->rpos) {
        if (c->state == KART__CONN_EOF)
            return KART_EEOF;
        ssize_t r = kart__conn_fill1(c, false);
        if (r == 0) {
            c->state = KART__CONN_EOF;
            return KART_EEOF;
        }
        if (r < 0)
            return r == -ENOMEM ? -ENOMEM : kart__conn_abort(c, (int)r);
    }
    /* The next byte of the stream must be a handle's, and its fd the
     * oldest one kept. Anything else: the two sides disagree about what
     * comes next, and the stream is no longer usable. */
    uint8_t byte = c->rbuf[c->rpos++];
    if (byte != HANDLE_BYTE || c->nhfd == 0)
        return kart__conn_abort(c, -EPROTO);
    *fd = c->hfds[0];
    memmove(c->hfds, c->hfds + 1, (c->nhfd - 1) * sizeof(int));
    c->nhfd--;
    return 0;
}

/*
 * bench/conn_peers.c — raw socketpair channels, exact or framed with read
 * ahead (bench/conn_peers.h). The framed one follows kart's choices where
 * they matter to the cost: one write for a small message and its header,
 * a 64 KiB read-ahead buffer, and for a large message a readv whose first
 * part is the message's destination and whose second takes only the next
 * header (its payload is likely large too, better read where it goes).
 */
#include "conn_peers.h"

#include "harness.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF 65536
#define COPY_MAX 1024 /* a message up to this goes out behind its header */
#define BIG 16384     /* a message from this on is read into its place */
#define MAX_MANY 64   /* messages per raw_chan_send_many */
#define HDR 4

struct raw_chan {
    int fd;
    bool framed;
    size_t rpos, rend;
    unsigned char rbuf[RBUF];
    unsigned char sbuf[HDR + COPY_MAX];
};

static raw_chan *chan_new(int fd, bool framed)
{
    raw_chan *c = malloc(sizeof(*c));
    if (!c)
        bench_fail("out of memory");
    *c = (raw_chan){.fd = fd, .framed = framed};
    return c;
}

void raw_chan_pair(raw_chan **a, raw_chan **b, bool framed)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        bench_fail("socketpair: %s", strerror(errno));
    *a = chan_new(sv[0], framed);
    *b = chan_new(sv[1], framed);
}

void raw_chan_close(raw_chan *c)
{
    close(c->fd);
    free(c);
}

/* Writes all of iov[0..n), through short writes and EINTR. MSG_NOSIGNAL:
 * a closed peer is -EPIPE, not a signal. */
static int writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static void put_header(unsigned char *h, size_t n)
{
    h[0] = (unsigned char)(n >> 24);
    h[1] = (unsigned char)(n >> 16);
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
}

int raw_chan_send(raw_chan *c, const void *p, size_t n)
{
    if (!c->framed) {
        struct iovec v = {(void *)p, n};
        return writev_all(c->fd, &v, 1);
    }
    put_header(c->sbuf, n);
    if (n <= COPY_MAX) {
        memcpy(c->sbuf + HDR, p, n);
        struct iovec v = {c->sbuf, HDR + n};
        return writev_all(c->fd, &v, 1);
    }
    struct iovec v[2] = {{c->sbuf, HDR}, {(void *)p, n}};
    return writev_all(c->fd, v, 2);
}

int raw_chan_send_many(raw_chan *c, const struct iovec *msgs, int n)
{
    if (!c->framed || n < 1 || n > MAX_MANY)
        return -EINVAL;
    unsigned char h[MAX_MANY][HDR];
    struct iovec v[2 * MAX_MANY];
    for (int i = 0; i < n; i++) {
        put_header(h[i], msgs[i].iov_len);
        v[2 * i] = (struct iovec){h[i], HDR};
        v[2 * i + 1] = msgs[i];
    }
    return writev_all(c->fd, v, 2 * n);
}

/* One readv, through EINTR: its count, 0 at end of stream, or -errno. */
static ssize_t read_iov(int fd, struct iovec *v, int n)
{
    for (;;) {
        ssize_t r = readv(fd, v, n);
        if (r >= 0 || errno != EINTR)
            return r < 0 ? -errno : r;
    }
}

/* Reads into p until n bytes are there. */
static int read_exact(int fd, unsigned char *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        struct iovec v = {p + got, n - got};
        ssize_t r = read_iov(fd, &v, 1);
        if (r <= 0)
            return r < 0 ? (int)r : got ? -EPROTO : -EPIPE;
        got += (size_t)r;
    }
    return 0;
}

/* Reads ahead until the buffer holds want unread bytes (want <= RBUF). */
static int fill(raw_chan *c, size_t want)
{
    if (c->rpos == c->rend)
        c->rpos = c->rend = 0;
    while (c->rend - c->rpos < want) {
        if (c->rpos > 0 && RBUF - c->rpos < want) {
            memmove(c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
            c->rend -= c->rpos;
            c->rpos = 0;
        }
        struct iovec v = {c->rbuf + c->rend, RBUF - c->rend};
        ssize_t r = read_iov(c->fd, &v, 1);
        if (r <= 0)
            return r < 0 ? (int)r : c->rend > c->rpos ? -EPROTO : -EPIPE;
        c->rend += (size_t)r;
    }
    return 0;
}

int raw_chan_recv(raw_chan *c, void *p, size_t cap, size_t *len)
{
    if (!c->framed) {
        *len = cap;
        return read_exact(c->fd, p, cap);
    }
    int err = fill(c, HDR);
    if (err)
        return err;
    const unsigned char *h = c->rbuf + c->rpos;
    size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    if (n > cap)
        return -ENOBUFS; /* as kart_conn_recv_bytes_into */
    c->rpos += HDR;
    *len = n;
    if (n < BIG) {
        err = fill(c, n);
        if (err)
            return err == -EPIPE ? -EPROTO : err;
        memcpy(p, c->rbuf + c->rpos, n);
        c->rpos += n;
        return 0;
    }
    /* Large: what is buffered, then the rest straight into p, the next
     * header (only) into the buffer. */
    size_t got = c->rend - c->rpos < n ? c->rend - c->rpos : n;
    memcpy(p, c->rbuf + c->rpos, got);
    c->rpos += got;
    if (got == n)
        return 0;
    c->rpos = c->rend = 0;
    while (got < n) {
        struct iovec v[2] = {{(unsigned char *)p + got, n - got}, {c->rbuf, HDR}};
        ssize_t r = read_iov(c->fd, v, 2);
        if (r <= 0)
            return r < 0 ? (int)r : -EPROTO;
        if ((size_t)r > n - got) {
            c->rend = (size_t)r - (n - got);
            r = (ssize_t)(n - got);
        }
        got += (size_t)r;
    }
    return 0;
}

/*
 * fuzz/fuzz_handle.c — libFuzzer target for what a unix-socket peer can
 * send a kart_conn: message frames mixed with passed descriptors
 * (SCM_RIGHTS, core/conn/handle.c), which the connection's read-ahead takes
 * in with the bytes (conn.c). The input is cut into chunks, each written
 * with sendmsg; the chunk's first byte says how many descriptors ride with
 * it (0-11: more than kart keeps, so the extra ones must be closed) and its
 * length. The receiver then alternates recv_bytes and recv_handle as the
 * first input byte's bits say, until the stream ends (an input of odd
 * length is read with kart_unix_recv_fd on the bare socket instead, as
 * kart_shm_recv does). Every descriptor that came in must be handed out
 * once or closed: the count of open descriptors is the same afterwards (a
 * leak of a peer's fds would let it exhaust ours).
 */
#include "conn_private.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        abort();
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Sends one chunk with nfd copies of fd attached. */
static void send_chunk(int sock, const uint8_t *p, size_t n, int nfd, int fd)
{
    struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
    union {
        char buf[CMSG_SPACE(12 * sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfd > 0) {
        msg.msg_control = u.buf;
        msg.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
        for (int i = 0; i < nfd; i++)
            memcpy(CMSG_DATA(c) + (size_t)i * sizeof(int), &fd, sizeof(int));
    }
    if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384) /* a socket buffer holds it all */
        return 0;
    unsigned mode = data[0];
    data++, size--;
    int before = count_fds();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    int payload = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (payload < 0)
        abort();
    /* chunks: [ctl][body...], ctl's low 4 bits = fds (mod 12), high 4 bits
     * = body length / 16 + 1 (so 1..241 bytes) */
    size_t i = 0;
    while (i < size) {
        unsigned ctl = data[i++];
        size_t n = ((ctl >> 4) * 16) + 1;
        if (n > size - i)
            n = size - i;
        int nfd = (int)(ctl & 15) % 12;
        /* a chunk with no bytes cannot carry descriptors on a stream */
        if (n)
            send_chunk(sv[0], data + i, n, nfd, payload);
        i += n;
    }
    close(payload);
    close(sv[0]);
    if (size % 2) {
        /* the bare-socket form: kart_unix_recv_fd until the stream ends */
        for (unsigned step = 0; step < 4096; step++) {
            int fd = -1, err = kart_unix_recv_fd(sv[1], &fd);
            if (err == 0) {
                if (fd < 0)
                    abort();
                close(fd);
            } else if (err == KART_EEOF) {
                break;
            } else if (err != -EPROTO) {
                abort();
            }
        }
        close(sv[1]);
        if (count_fds() != before)
            abort();
        return 0;
    }
    kart_conn *c;
    if (kart_conn_from_fd(&c, sv[1], KART_CONN_READABLE))
        abort();
    for (unsigned step = 0; step < 4096; step++) {
        int err;
        if (mode >> (step % 8) & 1) {
            int fd = -1;
            err = kart_conn_recv_handle(c, &fd);
            if (err == 0) {
                if (fd < 0)
                    abort();
                close(fd);
            } else if (err != -EPROTO && err != KART_EEOF && err != -ECONNABORTED &&
                       err != KART_EBADFRAME && err != KART_ETRUNCATED) {
                abort();
            }
        } else {
            void *m = NULL;
            size_t n = 0;
            err = kart_conn_recv_bytes(c, &m, &n, 1 << 16);
            free(m);
            if (err && err != KART_EEOF && err != KART_ETRUNCATED && err != KART_EBADFRAME &&
                err != -EMSGSIZE && err != -EPROTO && err != -ECONNABORTED)
                abort();
        }
        if (err == KART_EEOF || err == -ECONNABORTED || err == KART_ETRUNCATED)
            break;
        if (err == KART_EBADFRAME || err == -EMSGSIZE) {
            /* the stream is past saving; try the other call once more */
            mode = ~mode;
        }
    }
    kart_conn_close(c);
    if (count_fds() != before)
        abort();
    return 0;
}

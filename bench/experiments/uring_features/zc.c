/* Experiment 1: bulk TCP send with IORING_OP_SEND vs SEND_ZC vs SEND_ZC+fixed buffer.
 *
 *   zc recv PORT BUFSZ [verify]        receiver: plain blocking recv() into 1 MiB, until EOF
 *   zc send HOST PORT MODE BUFSZ MB [NBUF [MAXSEND]]
 *        MODE = send | zc | zcfix ; NBUF buffers (default 4) rotate.  At most MAXSEND
 *        (default 1) send requests are pending at a time: more than one send in flight on
 *        one TCP socket can reorder/interleave the stream (seen with plain SEND), so the
 *        default keeps sends ordered; with SEND_ZC the buffer stays busy after the result
 *        until its notification, so the NBUF buffers still overlap the notifications.
 *
 * Stream format: chunk j (BUFSZ bytes) = 8-byte little-endian j, then pat(k) for k>=8.
 * The receiver always checks the 8-byte sequence of every chunk (catches reordering /
 * partial sends); with "verify" it checks every byte.
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static void ru(double *u, double *s)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    *u = r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6;
    *s = r.ru_stime.tv_sec + r.ru_stime.tv_usec * 1e-6;
}
static inline unsigned char pat(size_t k)
{
    return (unsigned char)(k * 131 + (k >> 9) + 7);
}

static int do_recv(int port, size_t bsz, int verify)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(ls, (void *)&a, sizeof a) || listen(ls, 1)) {
        perror("bind/listen");
        return 1;
    }
    int s = accept(ls, NULL, NULL);
    if (s < 0) {
        perror("accept");
        return 1;
    }
    size_t cap = 1 << 20, off = 0, bad = 0;
    unsigned char *b = malloc(cap);
    double c0 = cpu();
    for (;;) {
        ssize_t n = recv(s, b, cap, 0);
        if (n < 0) {
            perror("recv");
            return 1;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            size_t o = off + i, j = o / bsz, k = o % bsz;
            unsigned char want;
            if (k < 8)
                want = (unsigned char)(j >> (8 * k));
            else if (verify)
                want = pat(k);
            else {
                i += bsz - k - 1;
                continue;
            } /* skip to next chunk header */
            if (b[i] != want && bad++ < 5)
                fprintf(stderr, "recv: mismatch at %zu: %u != %u\n", o, b[i], want);
        }
        off += n;
    }
    close(s);
    printf("recv bytes=%zu bad=%zu verify=%d recv_cpu=%.3f\n", off, bad, verify, cpu() - c0);
    return bad != 0;
}

enum { FREE, BUSY };

static int do_send(const char *host, int port, const char *mode, size_t bsz, size_t mb, int nbuf,
                   int maxsend)
{
    int zc = strcmp(mode, "send") != 0, fixed = strcmp(mode, "zcfix") == 0;
    size_t total = mb << 20;
    total -= total % bsz;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int s = -1;
    for (int i = 0; i < 50; i++) { /* receiver may still be starting */
        s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (void *)&a, sizeof a) == 0)
            break;
        close(s), s = -1;
        usleep(20000);
    }
    if (s < 0) {
        perror("connect");
        return 1;
    }

    struct io_uring ring;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    int r = io_uring_queue_init_params(64, &ring, &p);
    if (r) {
        fprintf(stderr, "queue_init: %s\n", strerror(-r));
        return 1;
    }
    unsigned char *buf[64];
    int state[64];
    struct iovec iov[64];
    for (int i = 0; i < nbuf; i++) {
        if (posix_memalign((void **)&buf[i], 4096, bsz))
            return 1;
        for (size_t k = 0; k < bsz; k++)
            buf[i][k] = pat(k);
        iov[i] = (struct iovec){buf[i], bsz};
        state[i] = FREE;
    }
    if (fixed && (r = io_uring_register_buffers(&ring, iov, nbuf))) {
        fprintf(stderr, "register_buffers: %s\n", strerror(-r));
        return 1;
    }
    size_t queued = 0, done = 0, seq = 0, notifs = 0, copied = 0;
    int inflight = 0, sending = 0; /* buffers not yet reusable; sends without result */
    double t0 = now(), c0 = cpu(), u0, s0, u1, s1;
    ru(&u0, &s0);
    while (done < total || inflight) {
        for (int i = 0; i < nbuf && queued < total && sending < maxsend; i++) {
            if (state[i] != FREE)
                continue;
            memcpy(buf[i], &seq, 8); /* little endian */
            seq++;
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            if (!zc)
                io_uring_prep_send(sqe, s, buf[i], bsz, MSG_WAITALL);
            else if (!fixed)
                io_uring_prep_send_zc(sqe, s, buf[i], bsz, MSG_WAITALL,
                                      IORING_SEND_ZC_REPORT_USAGE);
            else
                io_uring_prep_send_zc_fixed(sqe, s, buf[i], bsz, MSG_WAITALL,
                                            IORING_SEND_ZC_REPORT_USAGE, i);
            io_uring_sqe_set_data64(sqe, i);
            state[i] = BUSY;
            inflight++, sending++;
            queued += bsz;
        }
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR) {
            fprintf(stderr, "submit_and_wait: %s\n", strerror(-r));
            return 1;
        }
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            int i = (int)cqe->user_data;
            n++;
            if (cqe->flags & IORING_CQE_F_NOTIF) {
                notifs++;
                if ((unsigned)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
                    copied++;
                state[i] = FREE, inflight--;
                continue;
            }
            if (cqe->res != (int)bsz) {
                fprintf(stderr, "send buf %d: res=%d (%s)\n", i, cqe->res,
                        cqe->res < 0 ? strerror(-cqe->res) : "short");
                return 1;
            }
            done += cqe->res;
            sending--;
            if (!(cqe->flags & IORING_CQE_F_MORE))
                state[i] = FREE, inflight--;
        }
        io_uring_cq_advance(&ring, n);
    }
    shutdown(s, SHUT_WR);
    char c;
    while (recv(s, &c, 1, 0) > 0) {
    } /* wait until receiver has read everything and closed */
    double dt = now() - t0, dc = cpu() - c0, gb = done / 1e9;
    ru(&u1, &s1);
    printf("send mode=%s bsz=%zu nbuf=%d maxsend=%d bytes=%zu secs=%.3f GBps=%.3f cpu=%.3f "
           "usr=%.3f sys=%.3f "
           "cpu_s_per_GB=%.4f notifs=%zu copied=%zu\n",
           mode, bsz, nbuf, maxsend, done, dt, gb / dt, dc, u1 - u0, s1 - s0, dc / gb, notifs,
           copied);
    io_uring_queue_exit(&ring);
    close(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "recv"))
        return do_recv(atoi(argv[2]), strtoul(argv[3], 0, 0), argc > 4);
    if (argc >= 7 && !strcmp(argv[1], "send"))
        return do_send(argv[2], atoi(argv[3]), argv[4], strtoul(argv[5], 0, 0),
                       strtoul(argv[6], 0, 0), argc > 7 ? atoi(argv[7]) : 4,
                       argc > 8 ? atoi(argv[8]) : 1);
    fprintf(stderr, "usage: zc recv PORT BUFSZ [verify] | zc send HOST PORT send|zc|zcfix BUFSZ MB "
                    "[NBUF [MAXSEND]]\n");
    return 2;
}

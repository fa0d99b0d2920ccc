/* Experiments 2 and 3: single-ring io_uring TCP echo server.
 *
 *   echo PORT [-d] [-t] [-b 1|2]
 *     -d   direct descriptors: register_files_sparse(4096), multishot_accept_direct,
 *          IOSQE_FIXED_FILE on recv/send, close_direct.  Default: normal fds.
 *     -t   start one idle extra thread (makes the process multi-threaded).
 *     -b 1 receive bundles (IORING_RECVSEND_BUNDLE), echo each CQE with ONE sendmsg (iovec)
 *     -b 2 receive bundles, echo with one send per 16 KiB buffer
 *     -b 3 NO bundles, but echo everything queued for the connection with one sendmsg
 *
 * Ring: SINGLE_ISSUER|DEFER_TASKRUN, one io_uring_submit_and_wait(1) per turn.
 * Multishot accept; multishot recv with a provided-buffer ring (NB x 16 KiB); the received
 * buffer is sent back, then returned to the ring.  At most one send is in flight per
 * connection (a per-connection FIFO keeps the stream in order).
 * Server CPU (CLOCK_PROCESS_CPUTIME_ID) is measured from the first accept until the number
 * of open connections drops back to 0; then it prints one line and exits.
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif

#define BS 16384  /* provided buffer size */
#define NB 1024   /* provided buffers (ring entries) */
#define MAXC 4096 /* connection slots (fd number or direct index) */
#define MAXIOV 64
enum { T_ACCEPT = 1, T_RECV, T_SEND, T_CLOSE };
#define UD(t, c) (((uint64_t)(t) << 32) | (uint32_t)(c))

struct ent {
    uint16_t bid;
    uint16_t last;
    uint32_t len;
};
struct conn {
    int open, closing, sending, nsend; /* nsend: FIFO entries covered by the send in flight */
    struct ent *q;                     /* FIFO of received buffers to echo */
    unsigned qh, qt;
    struct iovec iov[MAXIOV];
    struct msghdr msg;
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static unsigned rhead; /* our copy of how many ring entries the kernel consumed */
static int nadd;       /* buffers added to the ring this turn, not yet advanced */
static int direct, bundle, lfd, nopen, started;
static struct conn conns[MAXC];
static unsigned long long n_recv_cqe, n_send, n_bytes, n_turns, n_enobufs;

static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&ring);
    if (!s) {
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
    }
    return s;
}
static void give_back(unsigned bid)
{
    io_uring_buf_ring_add(br, bufs + (size_t)bid * BS, BS, bid, NB - 1, nadd++);
}
static void arm_accept(void)
{
    struct io_uring_sqe *s = sqe_get();
    if (direct)
        io_uring_prep_multishot_accept_direct(s, lfd, NULL, NULL, 0);
    else
        io_uring_prep_multishot_accept(s, lfd, NULL, NULL, 0);
    io_uring_sqe_set_data64(s, UD(T_ACCEPT, 0));
}
static void arm_recv(int c)
{
    struct io_uring_sqe *s = sqe_get();
    io_uring_prep_recv_multishot(s, c, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT | (direct ? IOSQE_FIXED_FILE : 0);
    s->buf_group = 0;
    if (bundle == 1 || bundle == 2)
        s->ioprio |= IORING_RECVSEND_BUNDLE;
    io_uring_sqe_set_data64(s, UD(T_RECV, c));
}
static void do_close(int c)
{
    struct io_uring_sqe *s = sqe_get();
    if (direct)
        io_uring_prep_close_direct(s, c);
    else
        io_uring_prep_close(s, c);
    io_uring_sqe_set_data64(s, UD(T_CLOSE, c));
    conns[c].open = 0;
    free(conns[c].q);
    conns[c].q = NULL;
}
/* start the next send for connection c from its FIFO (if idle) */
static void kick_send(int c)
{
    struct conn *k = &conns[c];
    if (k->sending || k->qh == k->qt) {
        if (!k->sending && k->closing && k->open)
            do_close(c);
        return;
    }
    struct io_uring_sqe *s = sqe_get();
    struct ent *e = &k->q[k->qh % NB];
    if (bundle == 1 || bundle == 3) { /* one sendmsg: the CQE group (1) or all queued (3) */
        int n = 0;
        size_t tot = 0;
        for (unsigned i = k->qh; i != k->qt && n < MAXIOV; i++) {
            struct ent *x = &k->q[i % NB];
            k->iov[n++] = (struct iovec){bufs + (size_t)x->bid * BS, x->len};
            tot += x->len;
            if (x->last && bundle == 1)
                break;
        }
        k->msg = (struct msghdr){.msg_iov = k->iov, .msg_iovlen = n};
        io_uring_prep_sendmsg(s, c, &k->msg, MSG_WAITALL);
        k->nsend = n;
        (void)tot;
    } else {
        io_uring_prep_send(s, c, bufs + (size_t)e->bid * BS, e->len, MSG_WAITALL);
        k->nsend = 1;
    }
    if (direct)
        s->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(s, UD(T_SEND, c));
    k->sending = 1;
    n_send++;
}

static void on_cqe(struct io_uring_cqe *cqe)
{
    int t = cqe->user_data >> 32, c = (uint32_t)cqe->user_data, res = cqe->res;
    switch (t) {
    case T_ACCEPT:
        if (res >= 0) {
            if (res >= MAXC) {
                fprintf(stderr, "slot %d too big\n", res);
                exit(1);
            }
            if (!started) {
                started = 1;
                if (!direct) { /* check TCP_NODELAY was inherited from the listener */
                    int v = 0;
                    socklen_t l = sizeof v;
                    getsockopt(res, IPPROTO_TCP, TCP_NODELAY, &v, &l);
                    if (!v)
                        fprintf(stderr, "warning: TCP_NODELAY not inherited\n");
                }
            }
            conns[res] = (struct conn){.open = 1, .q = malloc(NB * sizeof(struct ent))};
            nopen++;
            arm_recv(res);
        } else
            fprintf(stderr, "accept: %s\n", strerror(-res));
        if (!(cqe->flags & IORING_CQE_F_MORE))
            arm_accept();
        break;
    case T_RECV: {
        struct conn *k = &conns[c];
        n_recv_cqe++;
        if (res > 0) {
            if (!(cqe->flags & IORING_CQE_F_BUFFER)) {
                fprintf(stderr, "no buffer flag\n");
                exit(1);
            }
            unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT, n = (res + BS - 1) / BS;
            if (br->bufs[rhead & (NB - 1)].bid != bid) {
                fprintf(stderr, "ring order mismatch: cqe bid %u, ring has %u\n", bid,
                        br->bufs[rhead & (NB - 1)].bid);
                exit(1);
            }
            if (n > 1 && bundle != 1 && bundle != 2) {
                fprintf(stderr, "res %d > BS without bundle\n", res);
                exit(1);
            }
            for (unsigned i = 0; i < n; i++) {
                unsigned b = br->bufs[(rhead + i) & (NB - 1)].bid;
                unsigned len = i + 1 < n ? BS : res - (n - 1) * BS;
                k->q[k->qt++ % NB] = (struct ent){b, i + 1 == n, len};
            }
            rhead += n;
            n_bytes += res;
            kick_send(c);
            if (!(cqe->flags & IORING_CQE_F_MORE))
                arm_recv(c);
        } else if (res == -ENOBUFS) {
            n_enobufs++;
            arm_recv(c);                                /* buffers come back as sends complete */
        } else if (!(cqe->flags & IORING_CQE_F_MORE)) { /* EOF or error: close after sends */
            if (res < 0 && res != -ECONNRESET)
                fprintf(stderr, "recv: %s\n", strerror(-res));
            k->closing = 1;
            kick_send(c);
        }
        break;
    }
    case T_SEND: {
        struct conn *k = &conns[c];
        if (res < 0)
            fprintf(stderr, "send: %s\n", strerror(-res));
        for (int i = 0; i < k->nsend; i++)
            give_back(k->q[k->qh++ % NB].bid);
        k->sending = 0;
        kick_send(c);
        break;
    }
    case T_CLOSE:
        if (res < 0)
            fprintf(stderr, "close: %s\n", strerror(-res));
        nopen--;
        break;
    }
}

static void *idle(void *a)
{
    (void)a;
    for (;;)
        sleep(1000);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: echo PORT [-d] [-t] [-b 1|2]\n");
        return 2;
    }
    int port = atoi(argv[1]), thread = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-d"))
            direct = 1;
        else if (!strcmp(argv[i], "-t"))
            thread = 1;
        else if (!strcmp(argv[i], "-b") && i + 1 < argc)
            bundle = atoi(argv[++i]);
    }
    if (thread) {
        pthread_t th;
        pthread_create(&th, NULL, idle, NULL);
    }
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* inherited by accepted sockets */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(lfd, (void *)&a, sizeof a) || listen(lfd, 512)) {
        perror("bind/listen");
        return 1;
    }

    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    int r = io_uring_queue_init_params(1024, &ring, &p);
    if (r) {
        fprintf(stderr, "queue_init: %s\n", strerror(-r));
        return 1;
    }
    if ((bundle == 1 || bundle == 2) && !(p.features & IORING_FEAT_RECVSEND_BUNDLE)) {
        fprintf(stderr, "kernel lacks IORING_FEAT_RECVSEND_BUNDLE (features=0x%x)\n", p.features);
        return 1;
    }
    if (direct && (r = io_uring_register_files_sparse(&ring, MAXC))) {
        fprintf(stderr, "register_files_sparse: %s\n", strerror(-r));
        return 1;
    }
    br = mmap(NULL, NB * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bufs = aligned_alloc(4096, (size_t)NB * BS);
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = NB, .bgid = 0};
    if ((r = io_uring_register_buf_ring(&ring, &reg, 0))) {
        fprintf(stderr, "register_buf_ring: %s\n", strerror(-r));
        return 1;
    }
    io_uring_buf_ring_init(br);
    for (int i = 0; i < NB; i++)
        give_back(i);
    io_uring_buf_ring_advance(br, nadd);
    nadd = 0;
    arm_accept();

    double c0 = 0, t0 = 0;
    for (;;) {
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
            fprintf(stderr, "submit_and_wait: %s\n", strerror(-r));
            return 1;
        }
        n_turns++;
        int was_started = started;
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            on_cqe(cqe);
            n++;
        }
        io_uring_cq_advance(&ring, n);
        if (nadd)
            io_uring_buf_ring_advance(br, nadd), nadd = 0;
        if (!was_started && started)
            c0 = cpu(), t0 = now(), n_turns = 0;
        if (started && nopen == 0)
            break;
    }
    double dc = cpu() - c0, dt = now() - t0;
    printf("server direct=%d thread=%d bundle=%d cpu=%.4f wall=%.3f bytes=%llu recv_cqes=%llu "
           "sends=%llu turns=%llu enobufs=%llu\n",
           direct, thread, bundle, dc, dt, n_bytes, n_recv_cqe, n_send, n_turns, n_enobufs);
    return 0;
}

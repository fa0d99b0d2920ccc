/*
 * bench/queue.c — the `queue` scenario: messages per second through a
 * cross-process queue, 64 B, 1 KiB and 64 KiB messages, one producer
 * process to one consumer process and two to two.
 *
 * Implementations: kart's Queue one message per call (`kart`) and with
 * put_many/get_many in batches (`kart-batch`); a pipe (`pipe`, the
 * baseline: one write() and one read() per message); a unix socket
 * (`unix-socket`, SOCK_SEQPACKET: one send()/recv() per message, which
 * keeps messages whole with two readers); POSIX message queues
 * (`mqueue`); and Python's multiprocessing.Queue (`python`, a python3
 * subprocess doing the same work with its own processes, in the same run).
 *
 * Buffers: kart's queue holds 1 MiB; the pipe is raised to 1 MiB
 * (F_SETPIPE_SZ, the unprivileged maximum) and the socket asks for 1 MiB
 * (the kernel caps it at net.core.wmem_max); a message queue holds 64
 * messages where the system allows (root), else the default 10. With two
 * readers of a pipe and messages over PIPE_BUF, writers and readers each
 * hold a process-shared mutex around a message (what multiprocessing's
 * Queue does with its locks), since the pipe would otherwise interleave
 * them.
 *
 * A round: every side is a forked process; they meet at a start line, the
 * producers send for the round's seconds, then each sends one stop message
 * per consumer (after all its data, so FIFO order per producer delivers
 * everything first); a consumer leaves after as many stops as there are
 * producers. (A batch could take more than its share of stops, so
 * kart-batch ends with kart_queue_close() by the last producer instead,
 * and consumers drain to -EPIPE.) The rate is all data messages received
 * over the time from the start to the last consumer's finish, and sent
 * must equal received. Data messages start with byte 0, stops with byte 1.
 */
#include "python.h"
#include "sync_util.h"

#include <errno.h>
#include <fcntl.h>
#include <kart.h>
#include <limits.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_BYTES (1 << 20)
#define CHECK_EVERY 64 /* messages between two looks at the clock */
#define MAX_BATCH 32

typedef struct qb_mem {
    sync_clock clock;
    int nprod, ncons;
    size_t size;
    _Atomic uint64_t sent, received;
    _Atomic int64_t finish;
    _Atomic int producers_done; /* kart-batch: the last one closes the queue */
    bool lock_msgs;             /* pipe: hold wlock/rlock around each message */
    pthread_mutex_t wlock, rlock;
    kart_queue *q;
    int fd[2];
    mqd_t mq;
} qb_mem;

static void check(int err, const char *what)
{
    if (err < 0)
        bench_fail("%s: %s", what, kart_strerror(err));
}

/* ---- transports: send one, receive one ---- */

typedef struct transport {
    void (*send)(qb_mem *m, const char *buf);
    void (*recv)(qb_mem *m, char *buf);
} transport;

static void kart_send(qb_mem *m, const char *buf)
{
    check(kart_queue_put(m->q, buf, m->size, -1), "kart_queue_put");
}

static void kart_recv(qb_mem *m, char *buf)
{
    size_t len;
    check(kart_queue_get(m->q, buf, m->size, &len, -1), "kart_queue_get");
    if (len != m->size)
        bench_fail("kart_queue_get: %zu bytes, not %zu", len, m->size);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            bench_fail("write: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

static void read_all(int fd, char *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            bench_fail("read: %s", r ? strerror(errno) : "end of file");
        p += r;
        n -= (size_t)r;
    }
}

static void pipe_send(qb_mem *m, const char *buf)
{
    if (m->lock_msgs)
        pthread_mutex_lock(&m->wlock);
    write_all(m->fd[1], buf, m->size);
    if (m->lock_msgs)
        pthread_mutex_unlock(&m->wlock);
}

static void pipe_recv(qb_mem *m, char *buf)
{
    if (m->lock_msgs)
        pthread_mutex_lock(&m->rlock);
    read_all(m->fd[0], buf, m->size);
    if (m->lock_msgs)
        pthread_mutex_unlock(&m->rlock);
}

static void sock_send(qb_mem *m, const char *buf)
{
    ssize_t n;
    while ((n = send(m->fd[1], buf, m->size, 0)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)m->size)
        bench_fail("send: %s", n < 0 ? strerror(errno) : "short");
}

static void sock_recv(qb_mem *m, char *buf)
{
    ssize_t n;
    while ((n = recv(m->fd[0], buf, m->size, 0)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)m->size)
        bench_fail("recv: %s", n < 0 ? strerror(errno) : "short message");
}

static void mq_send_one(qb_mem *m, const char *buf)
{
    while (mq_send(m->mq, buf, m->size, 0) != 0)
        if (errno != EINTR)
            bench_fail("mq_send: %s", strerror(errno));
}

static void mq_recv_one(qb_mem *m, char *buf)
{
    ssize_t n;
    while ((n = mq_receive(m->mq, buf, m->size, NULL)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)m->size)
        bench_fail("mq_receive: %s", n < 0 ? strerror(errno) : "short message");
}

static const transport t_kart = {kart_send, kart_recv};
static const transport t_pipe = {pipe_send, pipe_recv};
static const transport t_sock = {sock_send, sock_recv};
static const transport t_mq = {mq_send_one, mq_recv_one};

/* ---- the sides ---- */

static void finished(qb_mem *m)
{
    int64_t now = bench_now_ns(), f = atomic_load(&m->finish);
    while (now > f && !atomic_compare_exchange_weak(&m->finish, &f, now))
        ;
}

static void producer(qb_mem *m, const transport *t)
{
    char *buf = calloc(1, m->size);
    if (!buf)
        bench_fail("out of memory");
    sync_clock_start(&m->clock, m->nprod + m->ncons);
    uint64_t n = 0;
    while (n % CHECK_EVERY || !sync_clock_done(&m->clock)) {
        t->send(m, buf);
        n++;
    }
    buf[0] = 1;
    for (int i = 0; i < m->ncons; i++)
        t->send(m, buf);
    atomic_fetch_add(&m->sent, n);
    free(buf);
}

static void consumer(qb_mem *m, const transport *t)
{
    char *buf = malloc(m->size);
    if (!buf)
        bench_fail("out of memory");
    sync_clock_start(&m->clock, m->nprod + m->ncons);
    uint64_t n = 0;
    for (int stops = 0; stops < m->nprod;) {
        t->recv(m, buf);
        if (buf[0])
            stops++;
        else
            n++;
    }
    finished(m);
    atomic_fetch_add(&m->received, n);
    free(buf);
}

/* kart-batch: as many messages per call as MAX_BATCH and 256 KiB allow. */
static int batch_of(size_t size)
{
    size_t b = ((size_t)256 << 10) / size;
    return b < 1 ? 1 : b > MAX_BATCH ? MAX_BATCH : (int)b;
}

static void batch_producer(qb_mem *m)
{
    int b = batch_of(m->size);
    char *buf = calloc(1, m->size);
    if (!buf)
        bench_fail("out of memory");
    struct iovec v[MAX_BATCH];
    for (int i = 0; i < b; i++)
        v[i] = (struct iovec){buf, m->size};
    sync_clock_start(&m->clock, m->nprod + m->ncons);
    uint64_t n = 0, calls = 0;
    while (calls++ % 4 || !sync_clock_done(&m->clock)) {
        int k = kart_queue_put_many(m->q, v, b, -1);
        check(k, "kart_queue_put_many");
        n += (uint64_t)k;
    }
    atomic_fetch_add(&m->sent, n);
    if (atomic_fetch_add(&m->producers_done, 1) + 1 == m->nprod)
        check(kart_queue_close(m->q), "kart_queue_close");
    free(buf);
}

static void batch_consumer(qb_mem *m)
{
    int b = batch_of(m->size);
    char *buf = malloc(m->size * (size_t)b);
    if (!buf)
        bench_fail("out of memory");
    struct iovec v[MAX_BATCH];
    sync_clock_start(&m->clock, m->nprod + m->ncons);
    uint64_t n = 0;
    int k;
    while ((k = kart_queue_get_many(m->q, buf, m->size * (size_t)b, v, b, -1)) > 0) {
        for (int i = 0; i < k; i++)
            if (v[i].iov_len != m->size || ((char *)v[i].iov_base)[0])
                bench_fail("kart_queue_get_many: a %zu-byte message, not %zu zeros", v[i].iov_len,
                           m->size);
        n += (uint64_t)k;
    }
    if (k != -EPIPE)
        check(k, "kart_queue_get_many");
    finished(m);
    atomic_fetch_add(&m->received, n);
    free(buf);
}

/* ---- one round ---- */

typedef struct side {
    qb_mem *m;
    const transport *t; /* NULL: kart-batch */
    bool produce;
} side;

static int run_side(void *arg)
{
    side *s = arg;
    if (s->t)
        (s->produce ? producer : consumer)(s->m, s->t);
    else
        (s->produce ? batch_producer : batch_consumer)(s->m);
    return 0;
}

static qb_mem *open_mem(bench_ctx *ctx)
{
    qb_mem *m = sync_map(sizeof(*m));
    m->nprod = m->ncons = (int)bench_param_get(ctx->c, "producers");
    m->size = (size_t)bench_param_get(ctx->c, "bytes");
    m->clock.seconds = ctx->seconds;
    return m;
}

static void drive(bench_ctx *ctx, qb_mem *m, const transport *t)
{
    pid_t pids[8];
    side sides[8];
    int n = 0;
    for (int i = 0; i < m->nprod + m->ncons; i++) {
        sides[n] = (side){m, t, i < m->nprod};
        pids[n] = sync_fork(run_side, &sides[n]);
        n++;
    }
    for (int i = 0; i < n; i++)
        sync_reap(pids[i]);
    uint64_t sent = atomic_load(&m->sent), received = atomic_load(&m->received);
    if (sent != received || sent == 0)
        bench_fail("%llu messages sent, %llu received", (unsigned long long)sent,
                   (unsigned long long)received);
    ctx->value[0] = (double)received * 1e9 / (double)(atomic_load(&m->finish) - m->clock.start);
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    qb_mem *m = open_mem(ctx);
    kart_queue_options o = {.capacity = BUFFER_BYTES};
    check(kart_queue_create(&m->q, &o), "kart_queue_create");
    drive(ctx, m, strcmp(impl->arg, "batch") == 0 ? NULL : &t_kart);
    check(kart_queue_free(m->q), "kart_queue_free");
    sync_unmap(m, sizeof(*m));
    return 0;
}

static void shared_mutex(pthread_mutex_t *mu)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    int err = pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
    if (err)
        bench_fail("pthread_mutex_init: %s", strerror(err));
}

static int run_pipe(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    qb_mem *m = open_mem(ctx);
    if (pipe2(m->fd, O_CLOEXEC) != 0)
        bench_fail("pipe2: %s", strerror(errno));
    if (fcntl(m->fd[1], F_SETPIPE_SZ, BUFFER_BYTES) < 0)
        bench_fail("F_SETPIPE_SZ: %s", strerror(errno));
    m->lock_msgs = m->size > PIPE_BUF && m->nprod > 1;
    shared_mutex(&m->wlock);
    shared_mutex(&m->rlock);
    drive(ctx, m, &t_pipe);
    close(m->fd[0]);
    close(m->fd[1]);
    sync_unmap(m, sizeof(*m));
    return 0;
}

static int run_socket(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    qb_mem *m = open_mem(ctx);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, m->fd) != 0)
        bench_fail("socketpair: %s", strerror(errno));
    int bytes = BUFFER_BYTES;
    setsockopt(m->fd[1], SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    setsockopt(m->fd[0], SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    drive(ctx, m, &t_sock);
    close(m->fd[0]);
    close(m->fd[1]);
    sync_unmap(m, sizeof(*m));
    return 0;
}

static long mq_msgsize_max(void)
{
    FILE *f = fopen("/proc/sys/fs/mqueue/msgsize_max", "r");
    long v = 8192;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 8192;
        fclose(f);
    }
    return v;
}

static int run_mqueue(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    qb_mem *m = open_mem(ctx);
    char name[64];
    snprintf(name, sizeof(name), "/kart-bench-queue-%d", (int)getpid());
    struct mq_attr a = {.mq_maxmsg = 64, .mq_msgsize = (long)m->size};
    m->mq = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
    if (m->mq == (mqd_t)-1 && errno == EINVAL) {
        a.mq_maxmsg = 10; /* the unprivileged default limit */
        m->mq = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
    }
    if (m->mq == (mqd_t)-1)
        bench_fail("mq_open: %s", strerror(errno));
    mq_unlink(name); /* the descriptor, inherited over fork, keeps it */
    drive(ctx, m, &t_mq);
    mq_close(m->mq);
    sync_unmap(m, sizeof(*m));
    return 0;
}

/* ---- python: multiprocessing.Queue, the same protocol ----
 *
 * Bounded (maxsize: 1 MiB of messages, at most PYTHON_MAXSIZE of them) like
 * the others: unbounded, its put only appends to the producer's own list
 * and a feeder thread writes it out later, so a round would queue up
 * seconds of messages in 0.15 s and spend them draining. */
#define PYTHON_MAXSIZE 1024

static const char python_script[] =
    "import multiprocessing as mp, sys, time\n"
    "def producer(q, bar, size, seconds, ncons, sent):\n"
    "    msg = bytes(size); stop = b'\\x01' + bytes(size - 1)\n"
    "    bar.wait(); end = time.monotonic() + seconds; n = 0\n"
    "    while n % 64 or time.monotonic() < end:\n"
    "        q.put(msg); n += 1\n"
    "    for _ in range(ncons): q.put(stop)\n"
    "    with sent.get_lock(): sent.value += n\n"
    "def consumer(q, bar, nprod, received, finish):\n"
    "    bar.wait(); stops = 0; n = 0\n"
    "    while stops < nprod:\n"
    "        if q.get()[0]: stops += 1\n"
    "        else: n += 1\n"
    "    now = time.monotonic()\n"
    "    with received.get_lock(): received.value += n\n"
    "    with finish.get_lock(): finish.value = max(finish.value, now)\n"
    "if __name__ == '__main__':\n"
    "    nprod, size, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])\n"
    "    ctx = mp.get_context('fork'); q = ctx.Queue(int(sys.argv[4]))\n"
    "    bar = ctx.Barrier(2 * nprod + 1)\n"
    "    sent, received = ctx.Value('q', 0), ctx.Value('q', 0); finish = ctx.Value('d', 0.0)\n"
    "    ps = [ctx.Process(target=producer, args=(q, bar, size, seconds, nprod, sent)) for _ in "
    "range(nprod)]\n"
    "    ps += [ctx.Process(target=consumer, args=(q, bar, nprod, received, finish)) for _ in "
    "range(nprod)]\n"
    "    for p in ps: p.start()\n"
    "    bar.wait(); start = time.monotonic()\n"
    "    for p in ps: p.join()\n"
    "    print(sent.value, received.value, finish.value - start)\n";

static int run_python(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    long size = bench_param_get(ctx->c, "bytes");
    long maxsize = BUFFER_BYTES / size > PYTHON_MAXSIZE ? PYTHON_MAXSIZE : BUFFER_BYTES / size;
    char producers[32], bytes[32], secs[32], max[32], out[256];
    snprintf(producers, sizeof(producers), "%ld", bench_param_get(ctx->c, "producers"));
    snprintf(bytes, sizeof(bytes), "%ld", size);
    snprintf(secs, sizeof(secs), "%.3f", ctx->seconds);
    snprintf(max, sizeof(max), "%ld", maxsize);
    const char *const args[] = {producers, bytes, secs, max, NULL};
    if (!bench_python_run(python_script, args, out, sizeof(out)))
        bench_fail("python3 failed: %s", out);
    unsigned long long sent = 0, received = 0;
    double elapsed = 0;
    if (sscanf(out, "%llu %llu %lf", &sent, &received, &elapsed) != 3)
        bench_fail("python3 printed %s", out);
    if (sent != received || sent == 0 || elapsed <= 0)
        bench_fail("%llu messages sent, %llu received", sent, received);
    ctx->value[0] = (double)received / elapsed;
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"msgs_per_s", "msg/s", true},
};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    static const long sizes[] = {64, 1024, 65536};
    int n = 0;
    for (int p = 1; p <= 2; p++)
        for (int i = 0; i < 3; i++)
            out[n++] = (bench_case){2, {{"producers", p}, {"bytes", sizes[i]}}};
    return n;
}

/* A message queue refuses messages over fs.mqueue.msgsize_max (8192 by
 * default): that case leaves mqueue out, saying so once. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    if (strcmp(impl->name, "mqueue") != 0)
        return true;
    long size = bench_param_get(c, "bytes"), max = mq_msgsize_max();
    if (size <= max)
        return true;
    static bool said;
    if (!said)
        fprintf(stderr,
                "queue: mqueue skipped for %ld-byte messages: fs.mqueue.msgsize_max "
                "is %ld (as root: sysctl fs.mqueue.msgsize_max=%ld)\n",
                size, max, size);
    said = true;
    return false;
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){.name = "kart", .run = run_kart, .arg = "one"};
    out[n++] = (bench_impl){.name = "kart-batch", .run = run_kart, .arg = "batch"};
    out[n++] = (bench_impl){.name = "pipe", .run = run_pipe, .arg = ""};
    out[n++] = (bench_impl){.name = "unix-socket", .run = run_socket, .arg = ""};
    out[n++] = (bench_impl){.name = "mqueue", .run = run_mqueue, .arg = ""};
    out[n++] =
        (bench_impl){.name = "python", .run = run_python, .arg = "", .skip = bench_python_skip()};
    return n;
}

const bench_scenario bench_queue = {
    .name = "queue",
    .summary = "messages/s through a cross-process queue (64 B, 1 KiB, 64 KiB; 1->1 and 2->2 "
               "processes): kart Queue vs pipe, unix socket, POSIX mqueue, Python "
               "multiprocessing.Queue",
    .baseline = "pipe",
    .nmetrics = 1,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 0.5,
    .quick_seconds = 0.15,
};

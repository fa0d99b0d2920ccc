/*
 * bench/queue.c — the `queue` scenario: messages per second, and CPU time
 * per message, through a cross-process queue, 64 B, 1 KiB and 64 KiB
 * messages, one producer process to one consumer process and two to two.
 *
 * Implementations, each kart mode against its like-for-like peer:
 *  - `kart` (kart_queue_put/get, one message per call) against `pipe` (the
 *    scenario's baseline: one write() and one read() per message);
 *  - `kart-batch` (kart_queue_put_many/get_many) against `pipe-batch`: the
 *    same batch per call (batch_of(): up to 32 messages and 256 KiB), one
 *    write() of the whole batch and reads of up to a batch, parsed into
 *    messages;
 *  - and, against pipe, a unix socket (`unix-socket`, SOCK_SEQPACKET: one
 *    send()/recv() per message, which keeps messages whole with two
 *    readers), POSIX message queues (`mqueue`) and Python's
 *    multiprocessing.Queue (`python`, a python3 subprocess doing the same
 *    work with its own processes, in the same run).
 *
 * Every message of every implementation is a bench/msgcheck.h message
 * (producer id, sequence number, a payload derived from both), written
 * whole by its producer and checked whole by its consumer, with the order
 * of each producer's messages (consecutive with one consumer, increasing
 * with two), and each producer's count sent against the count received.
 * A mismatch is an error of the round (bench_metric_error), not a rate.
 *
 * Buffers: kart's queue holds 1 MiB; the pipe is raised to 1 MiB
 * (F_SETPIPE_SZ, the unprivileged maximum) and the socket asks for 1 MiB
 * (the kernel caps it at net.core.wmem_max); a message queue holds 64
 * messages where the system allows (root), else the default 10. Where a
 * pipe would interleave or split messages (two writers of more than
 * PIPE_BUF at once; two readers of batches, whose reads end anywhere),
 * writers or readers hold a process-shared mutex around their call (what
 * multiprocessing's Queue does with its locks; kart's queue has its own).
 *
 * A round: every side is a forked process; they meet at a start line, the
 * producers send for the round's seconds, then each sends one stop message
 * per consumer (after all its data, so FIFO order per producer delivers
 * everything first); a consumer leaves after as many stops as there are
 * producers. A batch could take more than its share of stops, so the
 * batched ones end as a closed channel instead: kart-batch with
 * kart_queue_shutdown() by the last producer (consumers drain to -ESHUTDOWN),
 * pipe-batch with end of file once every producer has closed its end. The
 * rate is all data messages received over the time from the start to the
 * last consumer's finish. The CPU time is every side's process CPU clock
 * from the start line to its end, summed, over the messages received.
 */
#include "msgcheck.h"
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
#include <time.h>
#include <unistd.h>

#define BUFFER_BYTES (1 << 20)
#define CHECK_EVERY 64 /* messages between two looks at the clock */
#define MAX_BATCH 32

typedef struct qb_mem {
    sync_clock clock;
    int nprod, ncons;
    size_t size;
    int batch; /* messages per call of the batched implementations */
    _Atomic uint64_t sent[MSG_MAX_PRODUCERS], received[MSG_MAX_PRODUCERS];
    _Atomic int64_t cpu_ns; /* every side's, summed */
    _Atomic int64_t finish;
    _Atomic int producers_done; /* kart-batch: the last one closes the queue */
    _Atomic int bad;            /* a consumer found a wrong message: why[] */
    char why[160];
    bool lock_writes, lock_reads; /* pipes: hold wlock/rlock around each call */
    pthread_mutex_t wlock, rlock;
    kart_queue *q;
    int fd[2];
    bool ends_at_eof; /* pipe-batch: each side keeps only its own end */
    mqd_t mq;
} qb_mem;

static void check(int err, const char *what)
{
    if (err < 0)
        bench_fail("%s: %s", what, kart_strerror(err));
}

static int64_t process_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        bench_fail("clock_gettime(CLOCK_PROCESS_CPUTIME_ID): %s", strerror(errno));
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- transports: send one, receive one (its length) ---- */

typedef struct transport {
    void (*send)(qb_mem *m, const char *buf);
    size_t (*recv)(qb_mem *m, char *buf);
} transport;

static void kart_send(qb_mem *m, const char *buf)
{
    check(kart_queue_put(m->q, buf, m->size, -1), "kart_queue_put");
}

static size_t kart_recv(qb_mem *m, char *buf)
{
    size_t len;
    check(kart_queue_get(m->q, buf, m->size, &len, -1), "kart_queue_get");
    return len;
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

/* One read() of up to n bytes, through EINTR: 0 at end of file. */
static size_t read_some(int fd, char *p, size_t n)
{
    ssize_t r;
    while ((r = read(fd, p, n)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        bench_fail("read: %s", strerror(errno));
    return (size_t)r;
}

static void read_all(int fd, char *p, size_t n)
{
    while (n) {
        size_t r = read_some(fd, p, n);
        if (r == 0)
            bench_fail("read: end of file inside a message");
        p += r;
        n -= r;
    }
}

static void pipe_send(qb_mem *m, const char *buf)
{
    if (m->lock_writes)
        pthread_mutex_lock(&m->wlock);
    write_all(m->fd[1], buf, m->size);
    if (m->lock_writes)
        pthread_mutex_unlock(&m->wlock);
}

static size_t pipe_recv(qb_mem *m, char *buf)
{
    if (m->lock_reads)
        pthread_mutex_lock(&m->rlock);
    read_all(m->fd[0], buf, m->size);
    if (m->lock_reads)
        pthread_mutex_unlock(&m->rlock);
    return m->size;
}

static void sock_send(qb_mem *m, const char *buf)
{
    ssize_t n;
    while ((n = send(m->fd[1], buf, m->size, 0)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)m->size)
        bench_fail("send: %s", n < 0 ? strerror(errno) : "short");
}

static size_t sock_recv(qb_mem *m, char *buf)
{
    ssize_t n;
    while ((n = recv(m->fd[0], buf, m->size, 0)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        bench_fail("recv: %s", strerror(errno));
    return (size_t)n;
}

static void mq_send_one(qb_mem *m, const char *buf)
{
    while (mq_send(m->mq, buf, m->size, 0) != 0)
        if (errno != EINTR)
            bench_fail("mq_send: %s", strerror(errno));
}

static size_t mq_recv_one(qb_mem *m, char *buf)
{
    ssize_t n;
    while ((n = mq_receive(m->mq, buf, m->size, NULL)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        bench_fail("mq_receive: %s", strerror(errno));
    return (size_t)n;
}

static const transport t_kart = {kart_send, kart_recv};
static const transport t_pipe = {pipe_send, pipe_recv};
static const transport t_sock = {sock_send, sock_recv};
static const transport t_mq = {mq_send_one, mq_recv_one};

/* ---- what every side does at its start and its end ---- */

static void *alloc(size_t size)
{
    void *p = malloc(size);
    if (!p)
        bench_fail("out of memory");
    return p;
}

/* Meets the others at the start line; returns the CPU clock there. */
static int64_t start_line(qb_mem *m)
{
    sync_clock_start(&m->clock, m->nprod + m->ncons);
    return process_cpu_ns();
}

static void producer_done(qb_mem *m, uint32_t id, uint64_t sent, int64_t cpu0)
{
    atomic_fetch_add(&m->cpu_ns, process_cpu_ns() - cpu0);
    atomic_fetch_add(&m->sent[id], sent);
}

static void consumer_done(qb_mem *m, const msg_checker *ck, int64_t cpu0)
{
    int64_t now = bench_now_ns(), f = atomic_load(&m->finish);
    while (now > f && !atomic_compare_exchange_weak(&m->finish, &f, now))
        ;
    atomic_fetch_add(&m->cpu_ns, process_cpu_ns() - cpu0);
    for (int p = 0; p < m->nprod; p++)
        atomic_fetch_add(&m->received[p], ck->count[p]);
    int no = 0;
    if (ck->bad && atomic_compare_exchange_strong(&m->bad, &no, 1))
        snprintf(m->why, sizeof(m->why), "%s", ck->why);
}

/* With one consumer it sees every message of every producer in order;
 * with two, each sees an increasing part of each producer's. */
static void checker(const qb_mem *m, msg_checker *ck)
{
    msg_checker_init(ck, m->nprod, m->size, m->ncons == 1);
}

/* ---- one message per call ---- */

static void producer(qb_mem *m, const transport *t, uint32_t id)
{
    char *buf = alloc(m->size);
    int64_t cpu0 = start_line(m);
    uint64_t n = 0;
    while (n % CHECK_EVERY || !sync_clock_done(&m->clock)) {
        msg_fill(buf, m->size, MSG_DATA, id, n);
        t->send(m, buf);
        n++;
    }
    msg_fill(buf, m->size, MSG_STOP, id, n);
    for (int i = 0; i < m->ncons; i++)
        t->send(m, buf);
    producer_done(m, id, n, cpu0);
    free(buf);
}

static void consumer(qb_mem *m, const transport *t)
{
    char *buf = alloc(m->size);
    msg_checker ck;
    checker(m, &ck);
    int64_t cpu0 = start_line(m);
    for (int stops = 0; stops < m->nprod;) {
        size_t len = t->recv(m, buf);
        msg_check(&ck, buf, len);
        /* The header says stop, even where the check failed: the round
         * must end all the same. */
        uint32_t kind = MSG_DATA;
        if (len >= 4)
            memcpy(&kind, buf, 4);
        stops += kind == MSG_STOP;
    }
    consumer_done(m, &ck, cpu0);
    free(buf);
}

/* ---- a batch per call: kart-batch and pipe-batch ---- */

/* As many messages per call as MAX_BATCH and 256 KiB allow. */
static int batch_of(size_t size)
{
    size_t b = ((size_t)256 << 10) / size;
    return b < 1 ? 1 : b > MAX_BATCH ? MAX_BATCH : (int)b;
}

/* The next batch, numbered from *n, into buf (batch messages in a row). */
static void fill_batch(const qb_mem *m, char *buf, uint32_t id, uint64_t *n)
{
    for (int i = 0; i < m->batch; i++, (*n)++)
        msg_fill(buf + (size_t)i * m->size, m->size, MSG_DATA, id, *n);
}

static void kart_batch_producer(qb_mem *m, uint32_t id)
{
    char *buf = alloc(m->size * (size_t)m->batch);
    struct iovec v[MAX_BATCH];
    for (int i = 0; i < m->batch; i++)
        v[i] = (struct iovec){buf + (size_t)i * m->size, m->size};
    int64_t cpu0 = start_line(m);
    uint64_t n = 0, calls = 0;
    while (calls++ % 4 || !sync_clock_done(&m->clock)) {
        fill_batch(m, buf, id, &n);
        /* put_many puts what fits without waiting: the rest goes next. */
        for (int done = 0; done < m->batch;) {
            int k = kart_queue_put_many(m->q, v + done, m->batch - done, -1);
            check(k, "kart_queue_put_many");
            done += k;
        }
    }
    producer_done(m, id, n, cpu0);
    if (atomic_fetch_add(&m->producers_done, 1) + 1 == m->nprod)
        check(kart_queue_shutdown(m->q, false), "kart_queue_shutdown");
    free(buf);
}

static void kart_batch_consumer(qb_mem *m)
{
    size_t cap = m->size * (size_t)m->batch;
    char *buf = alloc(cap);
    struct iovec v[MAX_BATCH];
    msg_checker ck;
    checker(m, &ck);
    int64_t cpu0 = start_line(m);
    int k;
    while ((k = kart_queue_get_many(m->q, buf, cap, v, m->batch, -1)) > 0)
        for (int i = 0; i < k; i++)
            msg_check(&ck, v[i].iov_base, v[i].iov_len);
    if (k != -ESHUTDOWN)
        check(k, "kart_queue_get_many");
    consumer_done(m, &ck, cpu0);
    free(buf);
}

static void pipe_batch_producer(qb_mem *m, uint32_t id)
{
    close(m->fd[0]);
    size_t bytes = m->size * (size_t)m->batch;
    char *buf = alloc(bytes);
    int64_t cpu0 = start_line(m);
    uint64_t n = 0, calls = 0;
    while (calls++ % 4 || !sync_clock_done(&m->clock)) {
        fill_batch(m, buf, id, &n);
        if (m->lock_writes)
            pthread_mutex_lock(&m->wlock);
        write_all(m->fd[1], buf, bytes);
        if (m->lock_writes)
            pthread_mutex_unlock(&m->wlock);
    }
    producer_done(m, id, n, cpu0);
    close(m->fd[1]); /* the last producer's close is the consumers' EOF */
    free(buf);
}

/* Reads up to a batch at a time and parses the messages out of it. Alone,
 * a consumer keeps a message cut at the end of a read for the next one;
 * with two, it completes that message before it lets go of the lock, or
 * the other would read the rest. */
static void pipe_batch_consumer(qb_mem *m)
{
    close(m->fd[1]);
    size_t bytes = m->size * (size_t)m->batch, have = 0;
    char *buf = alloc(bytes);
    msg_checker ck;
    checker(m, &ck);
    int64_t cpu0 = start_line(m);
    for (;;) {
        if (m->lock_reads)
            pthread_mutex_lock(&m->rlock);
        size_t r = read_some(m->fd[0], buf + have, bytes - have);
        if (r > 0 && m->lock_reads && (have + r) % m->size) {
            size_t cut = m->size - (have + r) % m->size;
            read_all(m->fd[0], buf + have + r, cut);
            r += cut;
        }
        if (m->lock_reads)
            pthread_mutex_unlock(&m->rlock);
        if (r == 0) {
            if (have)
                bench_fail("read: end of file inside a message");
            break;
        }
        have += r;
        size_t whole = have - have % m->size;
        for (size_t off = 0; off < whole; off += m->size)
            msg_check(&ck, buf + off, m->size);
        memmove(buf, buf + whole, have - whole);
        have -= whole;
    }
    consumer_done(m, &ck, cpu0);
    close(m->fd[0]);
    free(buf);
}

/* ---- one round ---- */

typedef enum { ONE_BY_ONE, KART_BATCH, PIPE_BATCH } style;

typedef struct side {
    qb_mem *m;
    const transport *t; /* ONE_BY_ONE's */
    style how;
    uint32_t id; /* a producer's */
    bool produce;
} side;

static int run_side(void *arg)
{
    side *s = arg;
    switch (s->how) {
    case ONE_BY_ONE:
        if (s->produce)
            producer(s->m, s->t, s->id);
        else
            consumer(s->m, s->t);
        break;
    case KART_BATCH:
        if (s->produce)
            kart_batch_producer(s->m, s->id);
        else
            kart_batch_consumer(s->m);
        break;
    case PIPE_BATCH:
        if (s->produce)
            pipe_batch_producer(s->m, s->id);
        else
            pipe_batch_consumer(s->m);
        break;
    }
    return 0;
}

static qb_mem *open_mem(bench_ctx *ctx)
{
    qb_mem *m = sync_map(sizeof(*m));
    m->nprod = m->ncons = (int)bench_param_get(ctx->c, "producers");
    m->size = (size_t)bench_param_get(ctx->c, "bytes");
    m->batch = batch_of(m->size);
    m->clock.seconds = ctx->seconds;
    return m;
}

/* Runs the sides, then checks every producer's count against what the
 * consumers received and fills in the metrics (or the error). */
static void drive(bench_ctx *ctx, qb_mem *m, const transport *t, style how)
{
    pid_t pids[2 * MSG_MAX_PRODUCERS];
    side sides[2 * MSG_MAX_PRODUCERS];
    int n = 0;
    for (int i = 0; i < m->nprod + m->ncons; i++) {
        sides[n] = (side){m, t, how, (uint32_t)i, i < m->nprod};
        pids[n] = sync_fork(run_side, &sides[n]);
        n++;
    }
    if (m->ends_at_eof) {
        close(m->fd[0]);
        close(m->fd[1]);
    }
    for (int i = 0; i < n; i++)
        sync_reap(pids[i]);
    uint64_t total = 0;
    for (int p = 0; p < m->nprod; p++) {
        uint64_t sent = atomic_load(&m->sent[p]), received = atomic_load(&m->received[p]);
        int no = 0;
        if (sent != received && atomic_compare_exchange_strong(&m->bad, &no, 1))
            snprintf(m->why, sizeof(m->why), "producer %d: %llu messages sent, %llu received", p,
                     (unsigned long long)sent, (unsigned long long)received);
        total += received;
    }
    /* A producer descheduled past a short round may send nothing; all of
     * them together must have. */
    int no = 0;
    if (total == 0 && atomic_compare_exchange_strong(&m->bad, &no, 1))
        snprintf(m->why, sizeof(m->why), "no message sent");
    if (atomic_load(&m->bad)) {
        for (int i = 0; i < 2; i++)
            bench_metric_error(ctx, i, "%s", m->why);
        return;
    }
    ctx->value[0] = (double)total * 1e9 / (double)(atomic_load(&m->finish) - m->clock.start);
    ctx->value[1] = (double)atomic_load(&m->cpu_ns) / (double)total;
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    qb_mem *m = open_mem(ctx);
    kart_queue_options o = {.capacity = BUFFER_BYTES};
    check(kart_queue_create(&m->q, &o), "kart_queue_create");
    bool batch = strcmp(impl->arg, "batch") == 0;
    drive(ctx, m, &t_kart, batch ? KART_BATCH : ONE_BY_ONE);
    kart_queue_free(m->q);
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
    qb_mem *m = open_mem(ctx);
    bool batch = strcmp(impl->arg, "batch") == 0;
    if (pipe2(m->fd, O_CLOEXEC) != 0)
        bench_fail("pipe2: %s", strerror(errno));
    if (fcntl(m->fd[1], F_SETPIPE_SZ, BUFFER_BYTES) < 0)
        bench_fail("F_SETPIPE_SZ: %s", strerror(errno));
    /* A write of up to PIPE_BUF is atomic; a read of exactly one message
     * among messages of one size takes one whole message; a read of up to
     * a batch may end inside one. */
    size_t write_bytes = m->size * (size_t)(batch ? m->batch : 1);
    m->lock_writes = write_bytes > PIPE_BUF && m->nprod > 1;
    m->lock_reads = batch && m->ncons > 1;
    m->ends_at_eof = batch;
    shared_mutex(&m->wlock);
    shared_mutex(&m->rlock);
    drive(ctx, m, &t_pipe, batch ? PIPE_BATCH : ONE_BY_ONE);
    if (!batch) {
        close(m->fd[0]);
        close(m->fd[1]);
    }
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
    drive(ctx, m, &t_sock, ONE_BY_ONE);
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
    drive(ctx, m, &t_mq, ONE_BY_ONE);
    mq_close(m->mq);
    sync_unmap(m, sizeof(*m));
    return 0;
}

/* ---- python: multiprocessing.Queue, the same protocol ----
 *
 * Bounded (maxsize: 1 MiB of messages, at most PYTHON_MAXSIZE of them) like
 * the others: unbounded, its put only appends to the producer's own list
 * and a feeder thread writes it out later, so a round would queue up
 * seconds of messages in 0.15 s and spend them draining. A producer's CPU
 * time includes its feeder thread's: it is read after q.join_thread(). */
#define PYTHON_MAXSIZE 1024

static const char python_main[] =
    "import multiprocessing as mp, sys, time\n"
    "def producer(q, bar, me, size, seconds, ncons, sent, cpu):\n"
    "    bar.wait(); c0 = time.process_time(); end = time.monotonic() + seconds; n = 0\n"
    "    while n % 64 or time.monotonic() < end:\n"
    "        q.put(fill(0, me, n, size)); n += 1\n"
    "    stop = fill(1, me, n, size)\n"
    "    for _ in range(ncons): q.put(stop)\n"
    "    q.close(); q.join_thread(); sent[me] = n\n"
    "    with cpu.get_lock(): cpu.value += time.process_time() - c0\n"
    "def consumer(q, bar, nprod, size, received, finish, cpu, why):\n"
    "    bar.wait(); c0 = time.process_time(); stops = 0; got = [0] * nprod; nxt = [0] * nprod\n"
    "    alone = nprod == 1; err = ''\n"
    "    while stops < nprod:\n"
    "        m = q.get(); kind, p, seq = hdr.unpack_from(m)\n"
    "        if kind == 1: stops += 1\n"
    "        if err: continue\n"
    "        if p >= nprod or kind > 1 or not payload_ok(m, p, seq, size):\n"
    "            err = 'producer %d message %d: wrong header, length or payload' % (p, seq)\n"
    "        elif kind == 1:\n"
    "            if alone and seq != got[p]: err = 'producer %d stopped after %d, %d received' % "
    "(p, seq, got[p])\n"
    "        elif seq != nxt[p] if alone else seq < nxt[p]:\n"
    "            err = 'producer %d message %d where %d was due' % (p, seq, nxt[p])\n"
    "        else: nxt[p] = seq + 1; got[p] += 1\n"
    "    now = time.monotonic()\n"
    "    with received.get_lock():\n"
    "        for p in range(nprod): received[p] += got[p]\n"
    "    with finish.get_lock(): finish.value = max(finish.value, now)\n"
    "    with cpu.get_lock(): cpu.value += time.process_time() - c0\n"
    "    if err: why.value = err.encode()[:190]\n"
    "if __name__ == '__main__':\n"
    "    nprod, size, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])\n"
    "    ctx = mp.get_context('fork'); q = ctx.Queue(int(sys.argv[4]))\n"
    "    bar = ctx.Barrier(2 * nprod + 1)\n"
    "    sent, received = ctx.Array('q', nprod), ctx.Array('q', nprod)\n"
    "    finish, cpu, why = ctx.Value('d', 0.0), ctx.Value('d', 0.0), ctx.Array('c', 200)\n"
    "    ps = [ctx.Process(target=producer, args=(q, bar, i, size, seconds, nprod, sent, cpu)) "
    "for i in range(nprod)]\n"
    "    ps += [ctx.Process(target=consumer, args=(q, bar, nprod, size, received, finish, cpu, "
    "why)) for _ in range(nprod)]\n"
    "    for p in ps: p.start()\n"
    "    bar.wait(); start = time.monotonic()\n"
    "    for p in ps: p.join()\n"
    "    lost = [p for p in range(nprod) if sent[p] != received[p]]\n"
    "    if why.value: print('error', why.value.decode())\n"
    "    elif lost: print('error producer %d: %d messages sent, %d received' % (lost[0], "
    "sent[lost[0]], received[lost[0]]))\n"
    "    elif sum(received) == 0: print('error no message sent')\n"
    "    else: print(sum(received), finish.value - start, cpu.value)\n";

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
    char *script = msg_python_script(python_main);
    if (!bench_python_run(script, args, out, sizeof(out)))
        bench_fail("python3 failed: %s", out);
    free(script);
    if (strncmp(out, "error ", 6) == 0) {
        out[strcspn(out, "\n")] = '\0';
        for (int m = 0; m < 2; m++)
            bench_metric_error(ctx, m, "%s", out + 6);
        return 0;
    }
    unsigned long long received = 0;
    double elapsed = 0, cpu = 0;
    if (sscanf(out, "%llu %lf %lf", &received, &elapsed, &cpu) != 3 || elapsed <= 0)
        bench_fail("python3 printed %s", out);
    ctx->value[0] = (double)received / elapsed;
    ctx->value[1] = cpu * 1e9 / (double)received;
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"msgs_per_s", "msg/s", true},
    {"cpu_ns_per_msg", "ns/msg", false},
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
 * default): that case reports mqueue skipped, saying why. */
static const char *unavailable(const bench_case *c, const bench_impl *impl)
{
    if (strcmp(impl->name, "mqueue") != 0)
        return NULL;
    long size = bench_param_get(c, "bytes"), max = mq_msgsize_max();
    if (size <= max)
        return NULL;
    static char why[160];
    snprintf(why, sizeof(why),
             "fs.mqueue.msgsize_max is %ld, under %ld-byte messages (as root: sysctl "
             "fs.mqueue.msgsize_max=%ld)",
             max, size, size);
    return why;
}

/* NULL when POSIX message queues work here (a kernel without
 * CONFIG_POSIX_MQUEUE, or a sandbox, refuses mq_open); else why not. */
static const char *mqueue_skip(void)
{
    static char why[128];
    static int probed;
    if (probed++)
        return why[0] ? why : NULL;
    char name[64];
    snprintf(name, sizeof(name), "/kart-bench-probe-%d", (int)getpid());
    struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 64};
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
    if (q == (mqd_t)-1) {
        snprintf(why, sizeof(why), "POSIX message queues unavailable here: mq_open: %s",
                 strerror(errno));
        return why;
    }
    mq_close(q);
    mq_unlink(name);
    return NULL;
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){.name = "kart", .run = run_kart, .arg = "one"};
    out[n++] =
        (bench_impl){.name = "kart-batch", .run = run_kart, .arg = "batch", .peer = "pipe-batch"};
    out[n++] = (bench_impl){.name = "pipe", .run = run_pipe, .arg = "one"};
    out[n++] = (bench_impl){.name = "pipe-batch", .run = run_pipe, .arg = "batch"};
    out[n++] = (bench_impl){.name = "unix-socket", .run = run_socket, .arg = ""};
    out[n++] = (bench_impl){.name = "mqueue", .run = run_mqueue, .arg = "", .skip = mqueue_skip()};
    out[n++] =
        (bench_impl){.name = "python", .run = run_python, .arg = "", .skip = bench_python_skip()};
    return n;
}

const bench_scenario bench_queue = {
    .name = "queue",
    .summary = "messages/s and CPU per message through a cross-process queue (64 B, 1 KiB, "
               "64 KiB; 1->1 and 2->2 processes), every message checked: kart Queue vs pipe, "
               "kart-batch vs pipe-batch (the same batches), unix socket, POSIX mqueue, Python "
               "multiprocessing.Queue",
    .baseline = "pipe",
    .nmetrics = 2,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .unavailable = unavailable,
    .seconds = 0.5,
    .quick_seconds = 0.15,
    .quick_rounds = 4, /* 6 cases x 7 implementations, each round forking */
    .metric_note = {"data messages received over the time from the start line to the last "
                    "consumer's end",
                    "every producer's and consumer's process CPU time over the round, summed, "
                    "per message received"},
};

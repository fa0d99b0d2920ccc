/*
 * bench/conn.c — the `conn` scenario: messages per second across a fork,
 * over a kart Pipe (kart_conn_pipe, duplex: a socketpair), over a raw socketpair
 * with read/write of exactly one message's bytes (`raw-socketpair`, the
 * baseline: framing-free), and over Python's multiprocessing Pipe with
 * send_bytes/recv_bytes (`python`: a python3 started by the bench, timing
 * itself, the same shape of run).
 *
 * `kart-batch` is the same kart Pipe with the sender handing 16 messages at
 * a time to kart_conn_send_many (one writev), in the streams only: what a
 * sender that has several messages ready can get; the receiver is the same.
 *
 * Cases: round trips of 64-byte messages (the parent sends, the child
 * echoes); one-way streams of 64-byte and 64 KiB messages (the child sends
 * as fast as it can, the parent receives). The parent counts what it
 * receives, checks each message (a stream carries its sequence number in
 * the first 8 bytes, an echo must come back unchanged), and ends the run by
 * closing its end: the child sees EPIPE or EOF and exits.
 */
#include "harness.h"
#include "python.h"

#include <errno.h>
#include <kart.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BATCH 64 /* messages between two looks at the clock */

typedef struct chan {
    int (*send)(void *h, const void *p, size_t n);
    int (*recv)(void *h, void *p, size_t n); /* exactly n bytes expected */
    void *mine, *theirs;
    void (*close)(void *h);
} chan;

/* ---- kart ---- */

static int k_send(void *h, const void *p, size_t n)
{
    return kart_conn_send_bytes(h, p, n);
}

static int k_recv(void *h, void *p, size_t n)
{
    size_t got;
    int err = kart_conn_recv_bytes_into(h, p, n, &got);
    return err ? err : got == n ? 0 : -EPROTO;
}

static void k_close(void *h)
{
    kart_conn_close(h);
}

/* ---- raw socketpair ---- */

static int r_send(void *h, const void *p, size_t n)
{
    int fd = (int)(intptr_t)h;
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int r_recv(void *h, void *p, size_t n)
{
    int fd = (int)(intptr_t)h;
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EPIPE;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static void r_close(void *h)
{
    close((int)(intptr_t)h);
}

static void open_chan(const bench_impl *impl, chan *ch)
{
    if (strncmp(impl->arg, "kart", 4) == 0) {
        kart_conn *a, *b;
        int err = kart_conn_pipe(&a, &b, 1, 0);
        if (err)
            bench_fail("kart_conn_pipe: %s", kart_strerror(err));
        *ch = (chan){k_send, k_recv, a, b, k_close};
    } else {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            bench_fail("socketpair: %s", strerror(errno));
        *ch = (chan){r_send, r_recv, (void *)(intptr_t)sv[0], (void *)(intptr_t)sv[1], r_close};
    }
}

#define SEND_BATCH 16 /* kart-batch: messages per kart_conn_send_many */

/* kart-batch's sender: numbered messages, SEND_BATCH per call. */
static void send_batches(kart_conn *c, size_t size)
{
    struct iovec msgs[SEND_BATCH];
    for (int i = 0; i < SEND_BATCH; i++)
        msgs[i] = (struct iovec){calloc(1, size), size};
    for (uint64_t seq = 0;;) {
        for (int i = 0; i < SEND_BATCH; i++, seq++)
            memcpy(msgs[i].iov_base, &seq, sizeof(seq));
        if (kart_conn_send_many(c, msgs, SEND_BATCH) != 0)
            _exit(0);
    }
}

/* The child: echo (round trips) or send numbered messages (stream) until
 * the parent closes its end. */
static void child(chan *ch, size_t size, int stream, bool batch)
{
    signal(SIGPIPE, SIG_IGN);
    ch->close(ch->mine);
    if (batch)
        send_batches(ch->theirs, size);
    uint8_t *buf = calloc(1, size);
    if (stream) {
        for (uint64_t seq = 0;; seq++) {
            memcpy(buf, &seq, sizeof(seq));
            if (ch->send(ch->theirs, buf, size) != 0)
                _exit(0);
        }
    }
    for (;;) {
        if (ch->recv(ch->theirs, buf, size) != 0 || ch->send(ch->theirs, buf, size) != 0)
            _exit(0);
    }
}

static int run_native(const bench_impl *impl, bench_ctx *ctx)
{
    size_t size = (size_t)bench_param_get(ctx->c, "size");
    int stream = (int)bench_param_get(ctx->c, "stream");
    chan ch;
    open_chan(impl, &ch);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0)
        child(&ch, size, stream, strcmp(impl->arg, "kart-batch") == 0);
    ch.close(ch.theirs);
    uint8_t *out = calloc(1, size), *in = calloc(1, size);
    uint64_t n = 0;
    int64_t t0 = bench_now_ns(), limit = (int64_t)(ctx->seconds * 1e9), el;
    if (stream) {
        /* Start the clock once the child is sending. */
        if (ch.recv(ch.mine, in, size) != 0)
            bench_fail("first receive failed");
        t0 = bench_now_ns();
        uint64_t want = 1;
        for (;;) {
            for (int i = 0; i < BATCH; i++, want++) {
                int err = ch.recv(ch.mine, in, size);
                uint64_t seq;
                memcpy(&seq, in, sizeof(seq));
                if (err || seq != want)
                    bench_fail("stream: message %llu: %s", (unsigned long long)want,
                               err ? strerror(-err) : "out of sequence");
            }
            n += BATCH;
            if ((el = bench_now_ns() - t0) >= limit)
                break;
        }
    } else {
        for (;;) {
            for (int i = 0; i < BATCH; i++) {
                memcpy(out, &n, sizeof(n));
                if (ch.send(ch.mine, out, size) != 0 || ch.recv(ch.mine, in, size) != 0 ||
                    memcmp(in, out, size) != 0)
                    bench_fail("round trip %llu failed", (unsigned long long)n);
                n++;
            }
            if ((el = bench_now_ns() - t0) >= limit)
                break;
        }
    }
    ch.close(ch.mine);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_fail("the child failed");
    free(out);
    free(in);
    ctx->value[0] = (double)n / ((double)el / 1e9);
    return 0;
}

/* ---- python ---- */

static const char py_script[] =
    "import os, sys, time\n"
    "from multiprocessing import Pipe\n"
    "size, stream, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])\n"
    "a, b = Pipe()\n"
    "msg = bytes(size)\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    a.close()\n"
    "    try:\n"
    "        if stream:\n"
    "            while True: b.send_bytes(msg)\n"
    "        while True: b.send_bytes(b.recv_bytes())\n"
    "    except (EOFError, OSError): pass\n"
    "    os._exit(0)\n"
    "b.close()\n"
    "n = 0\n"
    "if stream: a.recv_bytes()\n"
    "t0 = time.monotonic()\n"
    "while True:\n"
    "    for _ in range(64):\n"
    "        if stream: m = a.recv_bytes()\n"
    "        else: a.send_bytes(msg); m = a.recv_bytes()\n"
    "        if len(m) != size: sys.exit('bad length')\n"
    "    n += 64\n"
    "    el = time.monotonic() - t0\n"
    "    if el >= secs: break\n"
    "a.close()\n"
    "os.waitpid(pid, 0)\n"
    "print(n / el)\n";

static int run_python(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    char size[32], stream[8], secs[32], out[128];
    snprintf(size, sizeof(size), "%ld", bench_param_get(ctx->c, "size"));
    snprintf(stream, sizeof(stream), "%ld", bench_param_get(ctx->c, "stream"));
    snprintf(secs, sizeof(secs), "%g", ctx->seconds);
    const char *const args[] = {size, stream, secs, NULL};
    if (!bench_python_run(py_script, args, out, sizeof(out)))
        bench_fail("python3 failed: %s", out);
    ctx->value[0] = strtod(out, NULL);
    if (ctx->value[0] <= 0)
        bench_fail("python3 printed %s", out);
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {
    {"msgs_per_s", "msg/s", true},
};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    out[0] = (bench_case){2, {{"size", 64}, {"stream", 0}}};
    out[1] = (bench_case){2, {{"size", 64}, {"stream", 1}}};
    out[2] = (bench_case){2, {{"size", 65536}, {"stream", 1}}};
    return 3;
}

/* kart-batch (kart_conn_send_many, 16 messages a call) is a one-way
 * sender: streams only. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    return strcmp(impl->arg, "kart-batch") != 0 || bench_param_get(c, "stream") == 1;
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){.name = "kart", .run = run_native, .arg = "kart"};
    out[n++] = (bench_impl){.name = "kart-batch", .run = run_native, .arg = "kart-batch"};
    out[n++] = (bench_impl){.name = "raw-socketpair", .run = run_native, .arg = "raw"};
    out[n++] = (bench_impl){
        .name = "python", .run = run_python, .arg = "python", .skip = bench_python_skip()};
    return n;
}

const bench_scenario bench_conn = {
    .name = "conn",
    .summary = "messages/s across a fork: 64 B round trips, one-way streams of 64 B and "
               "64 KiB; kart Pipe vs a raw socketpair vs Python's multiprocessing Pipe",
    .baseline = "raw-socketpair",
    .nmetrics = 1,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 1.0,
    .quick_seconds = 0.3,
};

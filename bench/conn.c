/*
 * bench/conn.c — the `conn` scenario: messages per second, and CPU time
 * per message, across a fork, over a kart Pipe (kart_conn_pipe, duplex: a
 * socketpair) and over raw socketpairs written by hand (bench/conn_peers.h),
 * each kart mode against its like-for-like peer:
 *
 *  - `kart` (kart_conn_send_bytes / kart_conn_recv_bytes_into: framed,
 *    reading ahead) against `raw-socketpair-readahead` (the same framing,
 *    the same 64 KiB read-ahead, parsed by hand);
 *  - `kart-batch` (the sender hands 16 messages at a time to
 *    kart_conn_send_many; streams only) against `raw-writev16` (16 framed
 *    messages per writev, the read-ahead receiver);
 *  - `raw-socketpair`, the scenario's baseline, as before: no framing, each
 *    message read exactly (one read() of its known size), the least a
 *    stream can cost; and Python's multiprocessing Pipe with
 *    send_bytes/recv_bytes (`python`: a python3 started by the bench,
 *    timing itself, the same shape of run).
 *
 * Cases: round trips of 64-byte messages (the parent sends, the child
 * checks and echoes); one-way streams of 64-byte and 64 KiB messages (the
 * child sends as fast as it can, the parent receives). Every message is a
 * bench/msgcheck.h message (sequence number, patterned payload), checked
 * whole and in order by whoever receives it; a wrong one is an error of
 * the round. The parent ends the run by closing its end: the child sees
 * EPIPE or EOF and exits. The CPU time is the parent's process CPU clock
 * and the child's (read through clock_getcpuclockid()) over the timed
 * window, summed, per message received (per round trip).
 */
#include "conn_peers.h"
#include "harness.h"
#include "msgcheck.h"
#include "python.h"

#include <errno.h>
#include <kart.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64        /* messages between two looks at the clock */
#define SEND_BATCH 16   /* kart-batch and raw-writev16: messages per call */
#define WRONG_MESSAGE 3 /* the echoing child's exit status on a bad message */

typedef struct chan {
    int (*send)(void *h, const void *p, size_t n);
    int (*send_many)(void *h, const struct iovec *msgs, int n); /* batch senders */
    int (*recv)(void *h, void *p, size_t cap, size_t *len);
    void (*close)(void *h);
    void *mine, *theirs;
} chan;

/* ---- kart ---- */

static int k_send(void *h, const void *p, size_t n)
{
    return kart_conn_send_bytes(h, p, n);
}

static int k_send_many(void *h, const struct iovec *msgs, int n)
{
    return kart_conn_send_many(h, msgs, n);
}

static int k_recv(void *h, void *p, size_t cap, size_t *len)
{
    return kart_conn_recv_bytes_into(h, p, cap, len);
}

static void k_close(void *h)
{
    kart_conn_close(h);
}

/* ---- the raw peers ---- */

static int r_send(void *h, const void *p, size_t n)
{
    return raw_chan_send(h, p, n);
}

static int r_send_many(void *h, const struct iovec *msgs, int n)
{
    return raw_chan_send_many(h, msgs, n);
}

static int r_recv(void *h, void *p, size_t cap, size_t *len)
{
    return raw_chan_recv(h, p, cap, len);
}

static void r_close(void *h)
{
    raw_chan_close(h);
}

/* impl->arg: "kart", "kart-batch", "raw", "raw-readahead", "raw-writev16". */
static void open_chan(const bench_impl *impl, chan *ch)
{
    if (strncmp(impl->arg, "kart", 4) == 0) {
        kart_conn *a, *b;
        int err = kart_conn_pipe(&a, &b, 1, 0);
        if (err)
            bench_fail("kart_conn_pipe: %s", kart_strerror(err));
        *ch = (chan){k_send, k_send_many, k_recv, k_close, a, b};
    } else {
        raw_chan *a, *b;
        raw_chan_pair(&a, &b, strcmp(impl->arg, "raw") != 0);
        *ch = (chan){r_send, r_send_many, r_recv, r_close, a, b};
    }
}

static bool batched(const bench_impl *impl)
{
    return strcmp(impl->arg, "kart-batch") == 0 || strcmp(impl->arg, "raw-writev16") == 0;
}

/* ---- the child ---- */

/* Numbered messages, SEND_BATCH per call, until the parent closes. */
static void send_batches(chan *ch, size_t size)
{
    struct iovec msgs[SEND_BATCH];
    for (int i = 0; i < SEND_BATCH; i++)
        msgs[i] = (struct iovec){malloc(size), size};
    for (uint64_t seq = 0;;) {
        for (int i = 0; i < SEND_BATCH; i++, seq++)
            msg_fill(msgs[i].iov_base, size, MSG_DATA, 0, seq);
        if (ch->send_many(ch->theirs, msgs, SEND_BATCH) != 0)
            _exit(0);
    }
}

/* The child: send numbered messages (stream) or check and echo the
 * parent's (round trips) until the parent closes its end. */
static void child(chan *ch, size_t size, bool stream, bool batch)
{
    signal(SIGPIPE, SIG_IGN);
    ch->close(ch->mine);
    if (batch)
        send_batches(ch, size);
    uint8_t *buf = malloc(size);
    if (!buf)
        _exit(1);
    if (stream) {
        for (uint64_t seq = 0;; seq++) {
            msg_fill(buf, size, MSG_DATA, 0, seq);
            if (ch->send(ch->theirs, buf, size) != 0)
                _exit(0);
        }
    }
    msg_checker ck;
    msg_checker_init(&ck, 1, size, true);
    for (;;) {
        size_t len;
        if (ch->recv(ch->theirs, buf, size, &len) != 0)
            _exit(0);
        if (msg_check(&ck, buf, len) != MSG_DATA)
            _exit(WRONG_MESSAGE);
        if (ch->send(ch->theirs, buf, size) != 0)
            _exit(0);
    }
}

/* ---- the parent ---- */

static int64_t cpu_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        bench_fail("clock_gettime(a CPU clock): %s", strerror(errno));
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Both processes' CPU time so far. */
static int64_t both_cpu_ns(clockid_t child_clock)
{
    return cpu_ns(CLOCK_PROCESS_CPUTIME_ID) + cpu_ns(child_clock);
}

/* Receives one message and checks it: 0, or a description in why. */
static int receive_checked(chan *ch, uint8_t *in, size_t size, msg_checker *ck, char *why,
                           size_t wsize)
{
    size_t len;
    int err = ch->recv(ch->mine, in, size, &len);
    if (err) {
        snprintf(why, wsize, "receive: %s", kart_strerror(err));
        return -1;
    }
    if (msg_check(ck, in, len) != MSG_DATA) {
        snprintf(why, wsize, "%s", ck->bad ? ck->why : "a stop message");
        return -1;
    }
    return 0;
}

static int run_native(const bench_impl *impl, bench_ctx *ctx)
{
    size_t size = (size_t)bench_param_get(ctx->c, "size");
    bool stream = bench_param_get(ctx->c, "stream") != 0;
    chan ch;
    open_chan(impl, &ch);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0)
        child(&ch, size, stream, batched(impl));
    ch.close(ch.theirs);
    clockid_t child_clock;
    int cerr = clock_getcpuclockid(pid, &child_clock);
    if (cerr)
        bench_fail("clock_getcpuclockid: %s", strerror(cerr));
    uint8_t *out = malloc(size), *in = malloc(size);
    if (!out || !in)
        bench_fail("out of memory");
    msg_checker ck;
    msg_checker_init(&ck, 1, size, true);
    char why[192] = "";
    uint64_t n = 0;
    /* A stream starts the clock once the child is sending. */
    bool ok = !stream || receive_checked(&ch, in, size, &ck, why, sizeof(why)) == 0;
    int64_t t0 = bench_now_ns(), limit = (int64_t)(ctx->seconds * 1e9), el = 0;
    int64_t cpu0 = both_cpu_ns(child_clock), cpu1 = cpu0;
    while (ok) {
        for (int i = 0; i < BATCH && ok; i++) {
            if (!stream) {
                msg_fill(out, size, MSG_DATA, 0, n + (uint64_t)i);
                if (ch.send(ch.mine, out, size) != 0) {
                    snprintf(why, sizeof(why), "send %llu failed", (unsigned long long)n);
                    ok = false;
                    break;
                }
            }
            ok = receive_checked(&ch, in, size, &ck, why, sizeof(why)) == 0;
        }
        n += BATCH;
        if ((el = bench_now_ns() - t0) >= limit)
            break;
    }
    if (ok)
        cpu1 = both_cpu_ns(child_clock);
    ch.close(ch.mine);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        bench_fail("the child failed");
    free(out);
    free(in);
    if (WEXITSTATUS(st) == WRONG_MESSAGE)
        snprintf(why, sizeof(why), "the echoing child received a wrong message");
    else if (WEXITSTATUS(st) != 0)
        bench_fail("the child exited with status %d", WEXITSTATUS(st));
    if (!ok || WEXITSTATUS(st) != 0) {
        for (int m = 0; m < 2; m++)
            bench_metric_error(ctx, m, "%s", why);
        return 0;
    }
    ctx->value[0] = (double)n / ((double)el / 1e9);
    ctx->value[1] = (double)(cpu1 - cpu0) / (double)n;
    return 0;
}

/* ---- python ----
 *
 * The parent's CPU time is its own over the window; the child's is its
 * whole life (getrusage of the children after it is reaped: Python has no
 * clock_getcpuclockid), a little more than the window. */

static const char py_main[] =
    "import os, sys, time, resource\n"
    "from multiprocessing import Pipe\n"
    "size, stream, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])\n"
    "def ok(m, seq): return hdr.unpack_from(m) == (0, 0, seq) and payload_ok(m, 0, seq, size)\n"
    "a, b = Pipe()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    a.close(); code = 0; seq = 0\n"
    "    try:\n"
    "        if stream:\n"
    "            while True: b.send_bytes(fill(0, 0, seq, size)); seq += 1\n"
    "        while True:\n"
    "            m = b.recv_bytes()\n"
    "            if not ok(m, seq): code = 3; break\n"
    "            b.send_bytes(m); seq += 1\n"
    "    except (EOFError, OSError): pass\n"
    "    os._exit(code)\n"
    "b.close()\n"
    "n = 0; want = 0; err = ''\n"
    "try:\n"
    "    if stream:\n"
    "        if not ok(a.recv_bytes(), 0): err = 'message 0: wrong header, length or payload'\n"
    "        want = 1\n"
    "    t0 = time.monotonic(); c0 = time.process_time()\n"
    "    while not err:\n"
    "        for _ in range(64):\n"
    "            if stream: m = a.recv_bytes()\n"
    "            else: a.send_bytes(fill(0, 0, want, size)); m = a.recv_bytes()\n"
    "            if not ok(m, want): err = 'message %d: wrong header, length or payload' % want; "
    "break\n"
    "            want += 1\n"
    "        n += 64\n"
    "        el = time.monotonic() - t0\n"
    "        if el >= secs: break\n"
    "    cpu = time.process_time() - c0\n"
    "except (EOFError, OSError) as e: err = 'the child went away: %s' % e\n"
    "a.close()\n"
    "_, status = os.waitpid(pid, 0)\n"
    "if os.WEXITSTATUS(status) == 3: err = 'the echoing child received a wrong message'\n"
    "child = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "if err: print('error', err)\n"
    "else: print(n / el, (cpu + child.ru_utime + child.ru_stime) / n)\n";

static int run_python(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    char size[32], stream[8], secs[32], out[256];
    snprintf(size, sizeof(size), "%ld", bench_param_get(ctx->c, "size"));
    snprintf(stream, sizeof(stream), "%ld", bench_param_get(ctx->c, "stream"));
    snprintf(secs, sizeof(secs), "%g", ctx->seconds);
    const char *const args[] = {size, stream, secs, NULL};
    char *script = msg_python_script(py_main);
    bool ran = bench_python_run(script, args, out, sizeof(out));
    free(script);
    if (!ran)
        bench_fail("python3 failed: %s", out);
    if (strncmp(out, "error ", 6) == 0) {
        out[strcspn(out, "\n")] = '\0';
        for (int m = 0; m < 2; m++)
            bench_metric_error(ctx, m, "%s", out + 6);
        return 0;
    }
    double rate = 0, cpu = 0;
    if (sscanf(out, "%lf %lf", &rate, &cpu) != 2 || rate <= 0)
        bench_fail("python3 printed %s", out);
    ctx->value[0] = rate;
    ctx->value[1] = cpu * 1e9;
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
    out[0] = (bench_case){2, {{"size", 64}, {"stream", 0}}};
    out[1] = (bench_case){2, {{"size", 64}, {"stream", 1}}};
    out[2] = (bench_case){2, {{"size", 65536}, {"stream", 1}}};
    return 3;
}

/* The batch senders are one-way: streams only. */
static bool runs(const bench_case *c, const bench_impl *impl)
{
    return !batched(impl) || bench_param_get(c, "stream") == 1;
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] = (bench_impl){
        .name = "kart", .run = run_native, .arg = "kart", .peer = "raw-socketpair-readahead"};
    out[n++] = (bench_impl){
        .name = "kart-batch", .run = run_native, .arg = "kart-batch", .peer = "raw-writev16"};
    out[n++] = (bench_impl){.name = "raw-socketpair", .run = run_native, .arg = "raw"};
    out[n++] =
        (bench_impl){.name = "raw-socketpair-readahead", .run = run_native, .arg = "raw-readahead"};
    out[n++] = (bench_impl){.name = "raw-writev16", .run = run_native, .arg = "raw-writev16"};
    out[n++] = (bench_impl){
        .name = "python", .run = run_python, .arg = "python", .skip = bench_python_skip()};
    return n;
}

const bench_scenario bench_conn = {
    .name = "conn",
    .summary = "messages/s and CPU per message across a fork, every message checked: 64 B "
               "round trips, one-way streams of 64 B and 64 KiB; kart Pipe vs a raw socketpair "
               "reading ahead, kart-batch vs raw-writev16, a framing-free raw socketpair, "
               "Python's multiprocessing Pipe",
    .baseline = "raw-socketpair",
    .nmetrics = 2,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 1.0,
    .quick_seconds = 0.2,
    .quick_rounds = 4,
    .metric_note = {"messages (round trips) received over the timed window",
                    "the parent's and the child's process CPU time over the window, summed, per "
                    "message (round trip)"},
};

/*
 * bench/sendq.c — queued sends on one socket: `depth` sends of 64 bytes
 * queued with kart_sock_send(), then the loop runs until every callback
 * has run; again, until `sends` have gone. A reader thread on the other end
 * of a loopback TCP connection keeps up (it reads and counts; the total is
 * checked). What it measures is the send path at each queue depth: native
 * io_uring once took one loop turn and one ring enter per queued send (one
 * send per socket in flight), where the readiness backends wrote the whole
 * queue in one turn; it now gathers the queue into one sendmsg.
 *
 * Implementations: kart on each backend, and kart on io_uring with its
 * native operations off (KART_URING_NATIVE_IO=0: the emulation, on the same
 * ring). Metrics: sends per second (the time from the first queued send to
 * the last callback, setup and the reader's start left out), loop turns
 * and ring enters per 1,000 sends (no enters where there is no ring).
 */
#include "harness.h"

#include <errno.h>
#include <kart.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define EACH 64

typedef struct sq_reader {
    int fd;
    size_t got;
} sq_reader;

static void *reader_main(void *arg)
{
    sq_reader *r = arg;
    static __thread char buf[1 << 16];
    ssize_t n;
    while ((n = read(r->fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            r->got += (size_t)n;
    return NULL;
}

static long done_calls;

static void on_sent(kart_req *r, int res)
{
    (void)r;
    if (res != EACH)
        bench_fail("a send completed with %d", res);
    done_calls++;
}

static int closed;

static void on_closed(kart_req *r, int res)
{
    (void)r;
    (void)res;
    closed = 1;
}

static void tcp_pair(int sv[2])
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) < 0)
        bench_fail("listen: %s", strerror(errno));
    sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof(a)) < 0)
        bench_fail("connect: %s", strerror(errno));
    sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (sv[1] < 0)
        bench_fail("accept: %s", strerror(errno));
    close(l);
}

static uint64_t enters_of(kart_loop *loop)
{
    kart_io_stats st;
    kart_loop_io_stats(loop, &st);
    return st.enters;
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    long depth = bench_param_get(ctx->c, "depth");
    long total = bench_param_get(ctx->c, "sends");
    if (ctx->light)
        total = total / 10 > depth ? total / 10 : depth;
    bool emulated = strcmp(impl->name, "kart-uring-emul") == 0;
    if (emulated)
        setenv("KART_URING_NATIVE_IO", "0", 1);
    kart_loop_options lo = {.selector = {.backend = impl->arg}};
    kart_loop *loop;
    int err = kart_loop_create(&loop, &lo);
    if (emulated)
        unsetenv("KART_URING_NATIVE_IO");
    if (err < 0)
        bench_fail("kart_loop_create(%s): %s", impl->arg, kart_strerror(err));
    int sv[2];
    tcp_pair(sv);
    kart_sock sock;
    if ((err = kart_sock_init(loop, &sock, sv[1])) < 0)
        bench_fail("kart_sock_init: %s", kart_strerror(err));
    kart_req *req = calloc((size_t)depth, sizeof(*req));
    static const char msg[EACH];
    if (!req)
        bench_fail("out of memory");
    sq_reader rd = {.fd = sv[0]};
    pthread_t th;
    if (pthread_create(&th, NULL, reader_main, &rd) != 0)
        bench_fail("pthread_create failed");
    long turns = 0;
    done_calls = 0;
    uint64_t e0 = enters_of(loop);
    int64_t t0 = bench_now_ns();
    for (long sent = 0; sent < total; sent += depth) {
        long target = done_calls + depth;
        for (long k = 0; k < depth; k++)
            if ((err = kart_sock_send(&sock, &req[k], msg, EACH, -1, on_sent)) < 0)
                bench_fail("kart_sock_send: %s", kart_strerror(err));
        while (done_calls < target) {
            if ((err = kart_loop_run(loop, KART_RUN_ONCE)) < 0)
                bench_fail("kart_loop_run: %s", kart_strerror(err));
            turns++;
        }
    }
    int64_t t1 = bench_now_ns();
    uint64_t e = enters_of(loop) - e0;
    long n = done_calls;
    kart_req creq;
    kart_req_init(&creq);
    closed = 0;
    kart_sock_close(&sock, &creq, on_closed);
    while (!closed)
        kart_loop_run(loop, KART_RUN_ONCE);
    pthread_join(th, NULL);
    close(sv[0]);
    if (rd.got != (size_t)n * EACH)
        bench_fail("the reader got %zu of %zu bytes", rd.got, (size_t)n * EACH);
    kart_loop_free(loop);
    free(req);
    ctx->value[0] = (double)n * 1e9 / (double)(t1 - t0);
    ctx->value[1] = 1000.0 * (double)turns / (double)n;
    ctx->value[2] = 1000.0 * (double)e / (double)n;
    return 0;
}

static const bench_metric metrics[] = {
    {"sends_per_s", "send/s", true},
    {"turns_per_1k", "turns/1000 sends", false},
    {"enters_per_1k", "enters/1000 sends", false},
};

static int cases(bench_case *out, bool quick)
{
    static const long depths[] = {1, 16, 1000, 100000};
    int n = 0;
    for (int i = 0; i < 4; i++) {
        long sends = depths[i] == 1 ? 20000 : depths[i] < 100000 ? 200000 : 200000;
        if (quick)
            sends = depths[i] == 1 ? 2000 : depths[i] < 100000 ? 20000 : 100000;
        out[n++] = (bench_case){2, {{"depth", depths[i]}, {"sends", sends}}};
    }
    return n;
}

static int impls(bench_impl *out)
{
    int n = bench_add_kart_backends(out, run_kart, false);
    for (int i = 0; i < n; i++)
        if (strcmp(out[i].name, "kart-uring") == 0) {
            out[n] = out[i];
            snprintf(out[n].name, sizeof(out[n].name), "kart-uring-emul");
            n++;
            break;
        }
    return n;
}

const bench_scenario bench_sendq = {
    .name = "sendq",
    .summary = "depth sends of 64 B queued on one socket, then run until all are done",
    .baseline = "kart-epoll",
    .nmetrics = 3,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 0,
    .quick_seconds = 0,
    .quick_rounds = 3, /* make bench's budget: about 40 s on two cores */
    .descriptive = 0x6,
    .may_be_zero = 0x4, /* no ring, no enters */
};

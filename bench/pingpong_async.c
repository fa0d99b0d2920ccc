/*
 * bench/pingpong_async.c — round trips/s of a wake-up between two loops on
 * two threads: each loop's async callback sends to the other's async
 * handle (kart_async_send), for the cross-thread wake-up path itself.
 *
 * On io_uring a loop thread wakes another io_uring loop by posting into
 * its ring (MSG_RING, Linux 5.18); elsewhere, and with
 * KART_URING_FEATURES=-msg_ring in the environment, by writing its
 * eventfd. The floor, raw-eventfd, is two threads each blocked in read(2)
 * on its own eventfd and writing the other's: the least a wake-up costs.
 */
#include "harness.h"

#include <kart.h>
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct ap_side {
    kart_loop *loop;
    kart_async in;
    struct ap_side *peer;
    _Atomic int *stop; /* set by side a once the time is up */
    int64_t deadline;
    uint64_t trips;
    bool is_a;
} ap_side;

static void ap_cb(kart_async *a)
{
    ap_side *s = a->base.data;
    if (s->is_a) {
        s->trips++;
        if ((s->trips & 63) == 0 && bench_now_ns() >= s->deadline)
            atomic_store(s->stop, 1);
    }
    if (atomic_load(s->stop)) {
        kart_async_stop(&s->in);
        kart_async_send(&s->peer->in); /* the peer sees stop and ends too */
        return;
    }
    if (kart_async_send(&s->peer->in) < 0)
        bench_fail("kart_async_send failed");
}

static void *ap_thread(void *arg)
{
    ap_side *s = arg;
    int err = kart_loop_run(s->loop, KART_RUN_DEFAULT);
    if (err < 0)
        bench_fail("kart_loop_run: %s", kart_strerror(err));
    return NULL;
}

static int run_kart(const bench_impl *impl, bench_ctx *ctx)
{
    _Atomic int stop = 0;
    ap_side sides[2] = {{.is_a = true}, {0}};
    sides[0].peer = &sides[1];
    sides[1].peer = &sides[0];
    for (int i = 0; i < 2; i++) {
        kart_loop_options lo = {.selector = {.backend = impl->arg}};
        int err = kart_loop_create(&sides[i].loop, &lo);
        if (err < 0)
            bench_fail("kart_loop_create(%s): %s", impl->arg, kart_strerror(err));
        sides[i].stop = &stop;
        kart_async_init(sides[i].loop, &sides[i].in);
        sides[i].in.base.data = &sides[i];
        kart_async_start(&sides[i].in, ap_cb);
    }
    int64_t start = bench_now_ns();
    sides[0].deadline = start + (int64_t)(ctx->seconds * 1e9);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, ap_thread, &sides[i]) != 0)
            bench_fail("pthread_create failed");
    kart_async_send(&sides[0].in);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int64_t end = bench_now_ns();
    ctx->value[0] = (double)sides[0].trips * 1e9 / (double)(end - start);
    for (int i = 0; i < 2; i++)
        kart_loop_free(sides[i].loop);
    return 0;
}

/* ---- raw-eventfd ---- */

typedef struct raw_side {
    int in, out;
    _Atomic int *stop;
    int64_t deadline;
    uint64_t trips;
    bool is_a;
} raw_side;

static void *raw_thread(void *arg)
{
    raw_side *s = arg;
    uint64_t v, one = 1;
    for (;;) {
        if (read(s->in, &v, 8) != 8)
            bench_fail("read: %s", strerror(errno));
        if (s->is_a && (++s->trips & 63) == 0 && bench_now_ns() >= s->deadline)
            atomic_store(s->stop, 1);
        bool done = atomic_load(s->stop);
        if (write(s->out, &one, 8) != 8)
            bench_fail("write: %s", strerror(errno));
        if (done)
            return NULL;
    }
}

static int run_raw(const bench_impl *impl, bench_ctx *ctx)
{
    (void)impl;
    _Atomic int stop = 0;
    int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC);
    if (a < 0 || b < 0)
        bench_fail("eventfd: %s", strerror(errno));
    raw_side s[2] = {{.in = a, .out = b, .stop = &stop, .is_a = true},
                     {.in = b, .out = a, .stop = &stop}};
    int64_t start = bench_now_ns();
    s[0].deadline = start + (int64_t)(ctx->seconds * 1e9);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, raw_thread, &s[i]) != 0)
            bench_fail("pthread_create failed");
    uint64_t one = 1;
    if (write(a, &one, 8) != 8)
        bench_fail("write: %s", strerror(errno));
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int64_t end = bench_now_ns();
    ctx->value[0] = (double)s[0].trips * 1e9 / (double)(end - start);
    close(a);
    close(b);
    return 0;
}

/* ---- the scenario ---- */

static const bench_metric metrics[] = {{"trips_per_s", "trip/s", true}};

static int cases(bench_case *out, bool quick)
{
    (void)quick;
    out[0] = (bench_case){0};
    return 1;
}

static int impls(bench_impl *out)
{
    int n = bench_add_kart_backends(out, run_kart, false);
    out[n++] = (bench_impl){.name = "raw-eventfd", .run = run_raw};
    return n;
}

const bench_scenario bench_pingpong_async = {
    .name = "pingpong_async",
    .summary = "round trips/s of kart_async_send between two loops on two threads (io_uring: "
               "MSG_RING; KART_URING_FEATURES=-msg_ring: the eventfd), against two threads "
               "blocked on eventfds",
    .baseline = "raw-eventfd",
    .nmetrics = 1,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 1.0,
    .quick_seconds = 0.3,
};

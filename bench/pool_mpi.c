/*
 * bench/pool_mpi.c — the `pool_mpi` scenario: the per-item cost of a map
 * on the MPI pool (kart/pool_mpi.h) against a kart process pool and two
 * hand-written MPI programs doing the same map, in one run.
 *
 * One file, two programs. Compiled into kart-bench (always, MPI or not):
 * the scenario, which runs every MPI implementation as
 *   mpirun -n (W + 1) pool-mpi-peer IMPL ITEMS CHUNK W
 * (rank 0 hands out the work and collects it; W ranks work) and reads the
 * time of the map alone from its output; kart-processes runs in
 * kart-bench itself, W worker processes. Compiled again with mpicc and
 * KART_BENCH_MPI_PEER_MAIN (make MPI=1): pool-mpi-peer, which runs one
 * round and checks every result against a serial run.
 *
 * The implementations (W: one per usable CPU, at least 2):
 *  - kart-mpi: kart_mpi_pool_map from rank 0 to W serving ranks, each
 *    with an inline local pool (its chunks run in its serving thread: one
 *    rank per core, as the hand-written programs have);
 *  - mpi-master-worker: rank 0 sends each worker a chunk, and the next
 *    one as each result comes back (MPI_Send/MPI_Recv, MPI_ANY_SOURCE);
 *  - mpi-scatter-gather: MPI_Scatterv of n / W items to each worker, the
 *    map, MPI_Gatherv back (the default-chunk case only: it has no chunk);
 *  - kart-processes: kart_pool_map on a process pool of W workers.
 * Cases: chunk 1 (one item per message: the per-item overhead) and the
 * default chunk (0: the MPI pool's guided sizes; ceil(n / (4 x W)) for
 * master-worker and kart-processes, as kart_pool_map's default).
 * Ratios: to the best of the hand-written MPI programs in each case.
 * Rate: items per second.
 */
#include "harness.h"
#include "pool_peers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef KART_BENCH_MPI_PEER_MAIN
#include <kart.h>

#if KART_BENCH_HAVE_MPI
#define MPI_SKIP NULL
#else
#define MPI_SKIP "built without MPI (make MPI=1; openmpi-bin, libopenmpi-dev)"
#endif
#ifndef KART_BENCH_MPIRUN
#define KART_BENCH_MPIRUN "mpirun"
#endif
#ifndef KART_BENCH_MPI_PEER
#define KART_BENCH_MPI_PEER "pool-mpi-peer"
#endif

static int workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 2 ? 2 : n > 8 ? 8 : (int)n;
}

static size_t items_of(const bench_ctx *ctx)
{
    size_t n = (size_t)bench_param_get(ctx->c, "items");
    return ctx->light ? n / 10 : n;
}

static int run_mpi(const bench_impl *impl, bench_ctx *ctx)
{
    char cmd[1024], line[256];
    /* Open MPI: shared memory between the ranks; TCP on loopback only. */
    snprintf(cmd, sizeof(cmd),
             "OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp} "
             "OMPI_MCA_btl_tcp_if_include=${OMPI_MCA_btl_tcp_if_include:-lo} "
             "OMPI_MCA_oob_tcp_if_include=${OMPI_MCA_oob_tcp_if_include:-lo} "
             "%s -n %d %s %s %zu %ld %d 2>&1",
             KART_BENCH_MPIRUN, workers() + 1, KART_BENCH_MPI_PEER, impl->arg, items_of(ctx),
             bench_param_get(ctx->c, "chunk"), workers());
    FILE *p = popen(cmd, "r");
    if (!p)
        bench_fail("popen: %s", strerror(errno));
    long long ns = -1;
    char last[256] = "";
    while (fgets(line, sizeof(line), p)) {
        if (sscanf(line, "ns=%lld", &ns) != 1)
            snprintf(last, sizeof(last), "%s", line);
    }
    int st = pclose(p);
    if (st != 0 || ns <= 0)
        bench_fail("%s failed (status %#x): %s", cmd, st, last);
    ctx->value[0] = (double)items_of(ctx) * 1e9 / (double)ns;
    return 0;
}

static int k_item(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    memcpy(&x, arg, sizeof(x));
    x = pool_work(x);
    memcpy(res, &x, sizeof(x));
    return 0;
}

static int run_procs(const bench_impl *impl, bench_ctx *ctx)
{
    size_t n = items_of(ctx);
    uint64_t *in = malloc(n * 8), *out = calloc(n, 8);
    if (!in || !out)
        bench_fail("out of memory");
    for (size_t i = 0; i < n; i++)
        in[i] = i * 2654435761u;
    kart_pool_options o = {.kind = KART_POOL_PROCESSES, .workers = (size_t)workers()};
    kart_pool *pool;
    int rc = kart_pool_create(&pool, &o);
    if (rc)
        bench_fail("kart_pool_create: %s", kart_strerror(rc));
    kart_pool_map_options mo = {.chunk = (size_t)bench_param_get(ctx->c, "chunk")};
    kart_pool_failure fl;
    int64_t t0 = bench_now_ns();
    rc = kart_pool_map(pool, k_item, in, 8, out, 8, n, &mo, &fl);
    int64_t t1 = bench_now_ns();
    if (rc || fl.err)
        bench_fail("kart_pool_map: %s", kart_strerror(rc ? rc : fl.err));
    for (size_t i = 0; i < n; i++)
        if (out[i] != pool_work(in[i]))
            bench_fail("item %zu is wrong", i);
    kart_pool_free(pool);
    free(in);
    free(out);
    ctx->value[0] = (double)n * 1e9 / (double)(t1 - t0);
    return 0;
}

static const bench_metric metrics[] = {
    {"per_s", "op/s", true}, /* items per second */
};

static int cases(bench_case *out, bool quick)
{
    out[0] = (bench_case){2, {{"items", quick ? 20000 : 50000}, {"chunk", 1}}};
    out[1] = (bench_case){2, {{"items", quick ? 250000 : 1000000}, {"chunk", 0}}};
    return 2;
}

static bool runs(const bench_case *c, const bench_impl *impl)
{
    return strcmp(impl->name, "mpi-scatter-gather") != 0 || bench_param_get(c, "chunk") == 0;
}

static int impls(bench_impl *out)
{
    int n = 0;
    out[n++] =
        (bench_impl){.name = "kart-mpi", .run = run_mpi, .arg = "kart-mpi", .skip = MPI_SKIP};
    out[n++] = (bench_impl){
        .name = "mpi-master-worker", .run = run_mpi, .arg = "master-worker", .skip = MPI_SKIP};
    out[n++] = (bench_impl){
        .name = "mpi-scatter-gather", .run = run_mpi, .arg = "scatter-gather", .skip = MPI_SKIP};
    out[n++] = (bench_impl){.name = "kart-processes", .run = run_procs, .arg = ""};
    return n;
}

const bench_scenario bench_pool_mpi = {
    .name = "pool_mpi",
    .summary = "a map on the MPI pool (W serving ranks) against hand-written MPI master-worker "
               "and scatter/gather programs and a kart process pool: items/s at chunk 1 and "
               "the default chunk; ratios to the best hand-written MPI program",
    .baseline = "best:mpi-master-worker,mpi-scatter-gather",
    .nmetrics = 1,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .runs = runs,
    .seconds = 1.0,
    .quick_seconds = 0.3,
    .quick_rounds = 3,
};

#else /* the MPI peer program */

#include <kart/pool_mpi.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int k_item(const void *arg, size_t len, void *res, size_t *res_len)
{
    uint64_t x;
    memcpy(&x, arg, sizeof(x));
    x = pool_work(x);
    memcpy(res, &x, sizeof(x));
    return 0;
}

static const kart_mpi_task tasks[] = {{"item", k_item}};

enum { TAG_CHUNK = 1, TAG_STOP = 2, TAG_RESULT = 3 };

/* Rank 0: hands out chunks of `chunk` items, the next to whichever
 * worker answers. Message: [offset, count] then the items. */
static void master(const uint64_t *in, uint64_t *out, size_t n, size_t chunk, int size)
{
    size_t next = 0, busy = 0;
    uint64_t *buf = malloc((2 + chunk) * 8);
    for (int r = 1; r < size; r++) {
        if (next < n) {
            size_t k = n - next < chunk ? n - next : chunk;
            buf[0] = next;
            buf[1] = k;
            memcpy(buf + 2, in + next, k * 8);
            MPI_Send(buf, (int)(2 + k) * 8, MPI_BYTE, r, TAG_CHUNK, MPI_COMM_WORLD);
            next += k;
            busy++;
        }
    }
    while (busy) {
        MPI_Status st;
        MPI_Recv(buf, (int)(2 + chunk) * 8, MPI_BYTE, MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD,
                 &st);
        memcpy(out + buf[0], buf + 2, buf[1] * 8);
        busy--;
        if (next < n) {
            size_t k = n - next < chunk ? n - next : chunk;
            buf[0] = next;
            buf[1] = k;
            memcpy(buf + 2, in + next, k * 8);
            MPI_Send(buf, (int)(2 + k) * 8, MPI_BYTE, st.MPI_SOURCE, TAG_CHUNK, MPI_COMM_WORLD);
            next += k;
            busy++;
        }
    }
    for (int r = 1; r < size; r++)
        MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
    free(buf);
}

static void worker(size_t chunk)
{
    uint64_t *buf = malloc((2 + chunk) * 8);
    for (;;) {
        MPI_Status st;
        MPI_Recv(buf, (int)(2 + chunk) * 8, MPI_BYTE, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        if (st.MPI_TAG == TAG_STOP)
            break;
        for (uint64_t i = 0; i < buf[1]; i++)
            buf[2 + i] = pool_work(buf[2 + i]);
        MPI_Send(buf, (int)(2 + buf[1]) * 8, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
    }
    free(buf);
}

static void scatter_gather(const uint64_t *in, uint64_t *out, size_t n, int rank, int size)
{
    int *counts = calloc((size_t)size, sizeof(int)), *displs = calloc((size_t)size, sizeof(int));
    size_t w = (size_t)size - 1, at = 0;
    for (int r = 1; r < size; r++) {
        size_t k = n / w + ((size_t)r - 1 < n % w);
        counts[r] = (int)(k * 8);
        displs[r] = (int)(at * 8);
        at += k;
    }
    size_t mine = (size_t)counts[rank] / 8;
    uint64_t *part = malloc(mine ? mine * 8 : 8);
    MPI_Scatterv(in, counts, displs, MPI_BYTE, part, counts[rank], MPI_BYTE, 0, MPI_COMM_WORLD);
    for (size_t i = 0; i < mine; i++)
        part[i] = pool_work(part[i]);
    MPI_Gatherv(part, counts[rank], MPI_BYTE, out, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD);
    free(part);
    free(counts);
    free(displs);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: pool-mpi-peer IMPL ITEMS CHUNK WORKERS\n");
        return 2;
    }
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *impl = argv[1];
    size_t n = strtoull(argv[2], NULL, 10), chunk = strtoull(argv[3], NULL, 10);
    int w = atoi(argv[4]);
    uint64_t *in = NULL, *out = NULL;
    if (rank == 0) {
        in = malloc(n * 8);
        out = calloc(n, 8);
        for (size_t i = 0; i < n; i++)
            in[i] = i * 2654435761u;
    }
    int64_t t0 = 0, t1 = 0;
    int status = 0;
    if (strcmp(impl, "kart-mpi") == 0) {
        /* Every serving rank runs its chunks itself (an inline pool). */
        kart_mpi_pool_options o = {.tasks = tasks, .ntasks = 1};
        o.local.kind = KART_POOL_INLINE;
        kart_mpi_pool *pool;
        int rc = kart_mpi_pool_create(&pool, &o);
        if (rc) {
            fprintf(stderr, "rank %d: kart_mpi_pool_create: %s\n", rank, kart_strerror(rc));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (rank == 0) {
            kart_pool_map_options mo = {.chunk = chunk};
            kart_pool_failure fl;
            t0 = now_ns();
            rc = kart_mpi_pool_map(pool, "item", in, 8, out, 8, n, &mo, &fl);
            t1 = now_ns();
            if (rc || fl.err) {
                fprintf(stderr, "kart_mpi_pool_map: %s\n", kart_strerror(rc ? rc : fl.err));
                status = 1;
            }
            kart_mpi_pool_close(pool);
            kart_mpi_pool_join(pool, -1);
        } else {
            kart_mpi_pool_serve(pool);
        }
        kart_mpi_pool_free(pool);
    } else if (strcmp(impl, "master-worker") == 0) {
        if (!chunk)
            chunk = (n + 4 * (size_t)w - 1) / (4 * (size_t)w);
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = now_ns();
        if (rank == 0)
            master(in, out, n, chunk, size);
        else
            worker(chunk);
        t1 = now_ns();
    } else if (strcmp(impl, "scatter-gather") == 0) {
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = now_ns();
        scatter_gather(in, out, n, rank, size);
        t1 = now_ns();
    } else {
        fprintf(stderr, "pool-mpi-peer: unknown implementation %s\n", impl);
        status = 2;
    }
    if (rank == 0 && !status) {
        for (size_t i = 0; i < n; i++)
            if (out[i] != pool_work(in[i])) {
                fprintf(stderr, "pool-mpi-peer: %s: item %zu is wrong\n", impl, i);
                status = 1;
                break;
            }
        if (!status)
            printf("ns=%lld\n", (long long)(t1 - t0));
    }
    free(in);
    free(out);
    MPI_Finalize();
    return status;
}
#endif

/*
 * tests/mpi/deadrank.c — what happens when a serving rank dies mid-map
 * (scripts/mpi-deadrank.sh runs it under mpirun and checks the outcome).
 *
 * Every serving rank runs its chunks inline (in its serving thread), so a
 * task that raises SIGKILL kills the whole rank: the last rank does so on
 * its 50th item. Rank 0 starts a map_async of ITEMS items at chunk 1 and
 * waits on its future in one-second slices, printing "waiting" each
 * time, then "done rc=... err=..." once the future completes. The pool's
 * communicator has MPI_ERRORS_RETURN: where the MPI library lets the job
 * go on and reports the failure, the future fails with -EHOSTDOWN; where
 * it does neither, mpirun ends the job (Open MPI 4.1 without ULFM: see
 * docs/pool_mpi.md, "A rank that dies").
 */
#include <kart/pool_mpi.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_rank, g_size, g_ran;

static int t_item(const void *arg, size_t len, void *res, size_t *res_len)
{
    if (g_rank == g_size - 1 && ++g_ran == 50) {
        /* The wall-clock time of the kill, for the script's timing. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        printf("killing rank %d at %lld.%03ld\n", g_rank, (long long)now.tv_sec,
               now.tv_nsec / 1000000);
        fflush(stdout);
        raise(SIGKILL);
    }
    /* A little work, so that the map is still running when it dies. */
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
    memcpy(res, arg, 8);
    *res_len = 8;
    return 0;
}

static const kart_mpi_task tasks[] = {{"item", t_item}};

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000;
    kart_mpi_pool_options o = {.tasks = tasks, .ntasks = 1};
    o.local.kind = KART_POOL_INLINE;
    kart_mpi_pool *pool;
    int rc = kart_mpi_pool_create(&pool, &o);
    if (rc) {
        fprintf(stderr, "rank %d: create: %s\n", g_rank, kart_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (g_rank != 0) {
        rc = kart_mpi_pool_serve(pool);
        printf("rank %d: serve returned %d\n", g_rank, rc);
        kart_mpi_pool_free(pool);
        MPI_Finalize();
        return rc ? 1 : 0;
    }
    uint64_t *in = calloc(n, 8), *out = calloc(n, 8);
    for (size_t i = 0; i < n; i++)
        in[i] = i;
    kart_pool_map_options mo = {.chunk = 1};
    kart_mpi_future *f;
    rc = kart_mpi_pool_map_async(pool, "item", in, 8, out, 8, n, &mo, &f);
    if (rc) {
        printf("map_async: %s\n", kart_strerror(rc));
        return 1;
    }
    while (kart_future_wait(kart_mpi_future_get(f), 1000000000) == -ETIMEDOUT) {
        printf("waiting\n");
        fflush(stdout);
    }
    kart_pool_failure fl;
    kart_future_failure(kart_mpi_future_get(f), 0, &fl);
    printf("done err=%d item=%zu\n", fl.err, fl.item);
    fflush(stdout);
    kart_mpi_future_free(f);
    kart_mpi_pool_close(pool);
    kart_mpi_pool_join(pool, -1);
    kart_mpi_pool_free(pool);
    free(in);
    free(out);
    MPI_Finalize();
    return fl.err == -EHOSTDOWN ? 0 : 1;
}

/*
 * tests/soak/soak.c — `make soak`: runs every component of soak.h for the
 * given time and samples, every second, the resident memory and the
 * descriptors of the soak process and of each server, the /dev/shm entries
 * it made, and each component's operations; writes them as CSV.
 *
 *   soak --seconds S --examples DIR [--csv FILE] [--rate N] [--warmup W]
 *
 * It fails (exit 1, each reason on stderr) on any error of a component, on
 * a message sent and never answered, on a component that did nothing, on
 * resident memory that grew by more than 2% between the window after the
 * warm-up and the window that ends the run (the soak process and each
 * server apart), and on descriptors or /dev/shm entries that are not back
 * to their baseline once everything stopped: the servers to the
 * descriptors they held before any client came, the soak process to those
 * it held before it started anything.
 *
 * Resident memory is read from /proc/PID/status in its parts. Anonymous
 * memory (heap, stacks, private mappings: where a leaked allocation goes)
 * is checked, by its mean over each window; a window is a twentieth of the
 * run, at least 5 s. Shared memory is recorded, not checked that way: it
 * holds the segments and queues mapped at the instant of the sample (up to
 * half a MiB comes and goes from one second to the next) and the process
 * pool's arena, whose pages stay resident once touched and reach their
 * working set over minutes. A leaked shared mapping is caught instead by
 * counting, once everything stopped, the mappings of this run's /dev/shm
 * names in /proc/self/maps: back to none. File-backed pages (code, touched
 * as paths first run) are recorded only.
 */
#include "soak.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_MIN 5 /* seconds: the shortest window of the memory check */
#define RSS_GROWTH 0.02

soak_ctx soak;

static _Atomic int errors_printed;

void soak_error(soak_comp *c, const char *fmt, ...)
{
    atomic_fetch_add(&c->errors, 1);
    if (atomic_fetch_add(&errors_printed, 1) >= 20)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("soak: ERROR ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int64_t soak_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

void soak_pace(int64_t start_ns, uint64_t n)
{
    int64_t due = start_ns + (int64_t)(n * 1000000000ull / (uint64_t)soak.rate);
    int64_t now = soak_now_ns();
    if (due > now) {
        struct timespec ts = {.tv_sec = (due - now) / 1000000000ll,
                              .tv_nsec = (due - now) % 1000000000ll};
        nanosleep(&ts, NULL);
    }
}

uint64_t soak_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x2545F4914F6CDD1Dull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

void soak_pattern(unsigned char *buf, size_t len, uint64_t seed, uint64_t off)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull + (off + i) / 8;
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        buf[i] = (unsigned char)(x >> (8 * ((off + i) % 8)));
    }
}

/* The readers below run every second on the main thread: they allocate
 * nothing (soak_proc.c says why). */
int soak_mem(pid_t pid, soak_mem_kib *m)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (soak_read(path, buf, sizeof(buf)) < 0)
        return -1;
    int found = 0;
    *m = (soak_mem_kib){0};
    for (char *line = buf; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        long long v;
        if (sscanf(line, "VmRSS: %lld", &v) == 1)
            m->rss = v, found++;
        else if (sscanf(line, "RssAnon: %lld", &v) == 1)
            m->anon = v, found++;
        else if (sscanf(line, "RssShmem: %lld", &v) == 1)
            m->shmem = v, found++;
    }
    return found == 3 ? 0 : -1;
}

long soak_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    long n = soak_dir_count(path, NULL, NULL, NULL);
    return n < 0 ? -1 : pid == soak.self ? n - 1 : n; /* less the directory's own */
}

/* /dev/shm entries: all of them, and those this run made (named
 * kart-soak-<pid>-..., or kart-<pid>-... by the library on its own). */
static void shm_count(long *all, long *ours)
{
    char p1[64], p2[64];
    snprintf(p1, sizeof(p1), "kart-soak-%d-", (int)soak.self);
    snprintf(p2, sizeof(p2), "kart-%d-", (int)soak.self);
    *all = soak_dir_count("/dev/shm", p1, p2, ours);
    if (*all < 0)
        *all = *ours = 0;
}

static uint64_t sum_ops(soak_server *s, int n, bool http)
{
    uint64_t t = 0;
    for (int i = 0; i < n; i++)
        if (s[i].http == http)
            t += atomic_load(&s[i].comp.ops);
    return t;
}

static double mean_anon(const soak_mem_kib *v, int from, int to)
{
    double t = 0;
    for (int i = from; i < to; i++)
        t += (double)v[i].anon;
    return to > from ? t / (to - from) : 0;
}

/* Mappings of this run's segments and queues (/dev/shm names) left in
 * this process. */
static long shm_mappings(void)
{
    char p1[64], p2[64], line[512];
    snprintf(p1, sizeof(p1), "/dev/shm/kart-soak-%d-", (int)soak.self);
    snprintf(p2, sizeof(p2), "/dev/shm/kart-%d-", (int)soak.self);
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    long n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, p1) || strstr(line, p2))
            n++;
    fclose(f);
    return n;
}

/* One memory check of one process: false (and a line on stderr) on
 * growth past RSS_GROWTH. */
static bool mem_check(const char *who, const char *what, double a, double b)
{
    printf("%-14s %-17s %9.0f KiB after warm-up, %9.0f KiB at the end (%+.2f%%)\n", who, what, a, b,
           100.0 * (b - a) / a);
    if (b > a * (1 + RSS_GROWTH)) {
        fprintf(stderr, "soak: FAIL %s's %s grew by %.2f%% (over %.0f%%)\n", who, what,
                100.0 * (b - a) / a, 100 * RSS_GROWTH);
        return false;
    }
    return true;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: soak --seconds S --examples DIR [--csv FILE] [--rate N] [--warmup W]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int seconds = 60, warmup = -1;
    const char *csv_path = NULL;
    soak.rate = 1000;
    /* Options come in pairs: --name value. */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (strcmp(a, "--seconds") == 0)
            seconds = atoi(v);
        else if (strcmp(a, "--examples") == 0)
            soak.examples = v;
        else if (strcmp(a, "--csv") == 0)
            csv_path = v;
        else if (strcmp(a, "--rate") == 0)
            soak.rate = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atoi(v);
        else
            return usage();
    }
    if (warmup < 0) /* a quarter of the run, 20 s to 5 min */
        warmup = seconds / 4 < 20 ? 20 : seconds / 4 > 300 ? 300 : seconds / 4;
    int window = seconds / 20 < WINDOW_MIN ? WINDOW_MIN : seconds / 20;
    if (!soak.examples || soak.rate <= 0 || seconds < warmup + 2 * window) {
        fprintf(stderr, "soak: --seconds must be at least the warm-up (%d s) + %d s\n", warmup,
                2 * window);
        return usage();
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    soak.self = getpid();

    FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv_path && !csv) {
        fprintf(stderr, "soak: %s: %s\n", csv_path, strerror(errno));
        return 1;
    }
    if (csv)
        setvbuf(csv, NULL, _IONBF, 0);
    long fds_base = soak_fd_count(soak.self) - (csv ? 1 : 0), shm_all, shm_base;
    shm_count(&shm_all, &shm_base);

    soak.warm_until = soak_now_ns() + (int64_t)warmup * 1000000000ll;
    static soak_server srv[SOAK_MAX_SERVERS];
    int nsrv = soak_servers_start(srv, SOAK_MAX_SERVERS);
    soak_comp *ipc[] = {&soak_pool_comp, &soak_queue_comp, &soak_conn_comp, &soak_shm_comp};
    int rc = soak_clients_start(srv, nsrv);
    if (rc == 0)
        rc = soak_ipc_start();
    if (rc < 0) {
        fprintf(stderr, "soak: cannot start its threads: %s\n", strerror(-rc));
        return 1;
    }
    printf("soak: %d s (warm-up %d s), %d servers, at most %d operations/s per component, "
           "pid %d\n",
           seconds, warmup, nsrv, soak.rate, (int)soak.self);
    if (csv)
        fprintf(csv,
                "t,rss_kib,anon_kib,shmem_kib,servers_rss_kib,servers_anon_kib,fds,servers_fds,"
                "shm_ours,shm_all,echo_ops,http_ops,pool_ops,pool_kills,queue_ops,conn_ops,"
                "shm_ops,heap_inuse_kib,anon_heap_kib,anon_arena_kib,anon_stack_kib,anon_other_kib,"
                "malloc_system_kib,malloc_free_kib,malloc_mmap_kib,arenas,threads\n");

    soak_mem_kib *mem[SOAK_MAX_SERVERS + 1]; /* [0]: the soak process; [1 + i]: server i */
    for (int i = 0; i <= nsrv; i++) {
        if (!(mem[i] = malloc((size_t)seconds * sizeof(soak_mem_kib)))) {
            fprintf(stderr, "soak: out of memory\n");
            return 1;
        }
        /* Every page touched now, before the baseline. Left to be filled
         * a sample (24 bytes) a second, fresh heap pages (calloc does not
         * write them, being zero already) became resident one every
         * 4096/24 = 171 s: +4 KiB of the soak process's anonymous memory
         * every 171 s, the whole +2.95% that a 30-minute run flagged. */
        memset(mem[i], 0xff, (size_t)seconds * sizeof(soak_mem_kib));
    }
    uint64_t prev[7] = {0};
    /* The soak process's mappings after the warm-up and at the end. */
    enum { MAPS_MAX = 2048 };
    static soak_mapping maps_warm[MAPS_MAX], maps_last[MAPS_MAX];
    int nmaps_warm = 0, nmaps_end = 0;
    long sampler_allocs = 0;
    /* Touched now, so that filling them later adds no resident page of
     * this program's own to what is measured (392 KiB of .bss). */
    memset(maps_warm, 0xff, sizeof(maps_warm));
    memset(maps_last, 0xff, sizeof(maps_last));
    int64_t t0 = soak_now_ns();
    for (int t = 0; t < seconds; t++) {
        int64_t due = t0 + (int64_t)(t + 1) * 1000000000ll, now = soak_now_ns();
        if (due > now) {
            struct timespec ts = {.tv_sec = (due - now) / 1000000000ll,
                                  .tv_nsec = (due - now) % 1000000000ll};
            nanosleep(&ts, NULL);
        }
        long allocs_before = soak_thread_mallocs();
        if (soak_mem(soak.self, &mem[0][t]) < 0) {
            fprintf(stderr, "soak: cannot read /proc/self/status\n");
            return 1;
        }
        int64_t srv_rss = 0, srv_anon = 0;
        long srv_fds = 0, shm_ours;
        for (int i = 0; i < nsrv; i++) {
            if (soak_mem(srv[i].pid, &mem[1 + i][t]) < 0) {
                fprintf(stderr, "soak: FAIL %s is gone\n", srv[i].name);
                return 1;
            }
            srv_rss += mem[1 + i][t].rss;
            srv_anon += mem[1 + i][t].anon;
            srv_fds += soak_fd_count(srv[i].pid);
        }
        shm_count(&shm_all, &shm_ours);
        uint64_t cur[7] = {sum_ops(srv, nsrv, false),         sum_ops(srv, nsrv, true),
                           atomic_load(&soak_pool_comp.ops),  atomic_load(&soak_pool_comp.events),
                           atomic_load(&soak_queue_comp.ops), atomic_load(&soak_conn_comp.ops),
                           atomic_load(&soak_shm_comp.ops)};
        /* Where the anonymous memory is, by kind of mapping, and what
         * malloc holds: every second into the CSV, the mappings themselves
         * after the warm-up and at the end. */
        soak_smaps_sample sm;
        soak_mapping *snap = t == warmup ? maps_warm : t == seconds - 1 ? maps_last : NULL;
        static soak_mapping scratch[1];
        int nm = soak_smaps(&sm, snap ? snap : scratch, snap ? MAPS_MAX : 0);
        if (snap == maps_warm)
            nmaps_warm = nm;
        else if (snap == maps_last)
            nmaps_end = nm;
        if (csv) {
            soak_malloc_sample ms;
            soak_malloc_stats(&ms);
            /* One line, one write(2), no stdio buffer: a child forked by
             * another thread finds no half line to flush at its exit. */
            char line[512];
            int n = snprintf(line, sizeof(line), "%d,%lld,%lld,%lld,%lld,%lld,%ld,%ld,%ld,%ld",
                             t + 1, (long long)mem[0][t].rss, (long long)mem[0][t].anon,
                             (long long)mem[0][t].shmem, (long long)srv_rss, (long long)srv_anon,
                             soak_fd_count(soak.self) - 1, srv_fds, shm_ours, shm_all);
            for (int k = 0; k < 7; k++)
                n += snprintf(line + n, sizeof(line) - (size_t)n, ",%llu",
                              (unsigned long long)(cur[k] - prev[k]));
            /* The C library's heap in use (all arenas; tells a leak, where
             * it grows, from the allocator's own growth, where it does
             * not), then anonymous memory by kind of mapping and the rest
             * of malloc's view. */
            snprintf(line + n, sizeof(line) - (size_t)n,
                     ",%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%d,%d\n", (long long)ms.inuse_kib,
                     (long long)sm.anon_kib[SOAK_MAP_HEAP], (long long)sm.anon_kib[SOAK_MAP_ARENA],
                     (long long)sm.anon_kib[SOAK_MAP_STACK], (long long)sm.anon_kib[SOAK_MAP_ANON],
                     (long long)ms.system_kib, (long long)ms.free_kib, (long long)ms.mmap_kib,
                     ms.arenas, ms.threads);
            if (write(fileno(csv), line, strlen(line)) < 0)
                fprintf(stderr, "soak: writing the CSV: %s\n", strerror(errno));
        }
        /* The sampler allocates nothing once its first sample opened its
         * streams: the main heap it would churn is measured. */
        if (t > 0 && allocs_before >= 0)
            sampler_allocs += soak_thread_mallocs() - allocs_before;
        memcpy(prev, cur, sizeof(prev));
        if ((t + 1) % 60 == 0)
            printf("soak: %d s: rss %lld KiB, servers %lld KiB, %llu echoes, %llu http requests\n",
                   t + 1, (long long)mem[0][t].rss, (long long)srv_rss, (unsigned long long)cur[0],
                   (unsigned long long)cur[1]);
    }
    atomic_store(&soak.stop, true);
    soak_clients_join();
    soak_ipc_join();
    bool ok = soak_servers_stop(srv, nsrv);

    /* Each component: did something, no error, nothing lost. */
    double secs = (double)(soak_now_ns() - t0) / 1e9;
    printf("%-14s %12s %9s %7s %6s %10s\n", "component", "operations", "per s", "errors", "lost",
           "events");
    for (int i = 0; i < nsrv + 4; i++) {
        soak_comp *c = i < nsrv ? &srv[i].comp : ipc[i - nsrv];
        uint64_t ops = atomic_load(&c->ops), errs = atomic_load(&c->errors);
        uint64_t lost = atomic_load(&c->sent) - atomic_load(&c->done);
        printf("%-14s %12llu %9.0f %7llu %6llu %10llu\n", c->name, (unsigned long long)ops,
               (double)ops / secs, (unsigned long long)errs, (unsigned long long)lost,
               (unsigned long long)atomic_load(&c->events));
        if (ops == 0 || errs != 0 || lost != 0) {
            fprintf(stderr, "soak: FAIL %s: %llu operations, %llu errors, %llu lost\n", c->name,
                    (unsigned long long)ops, (unsigned long long)errs, (unsigned long long)lost);
            ok = false;
        }
    }
    if (atomic_load(&soak_pool_comp.events) == 0) {
        fprintf(stderr, "soak: FAIL no pool worker was killed\n");
        ok = false;
    }

    /* Resident memory: the window after the warm-up against the last. */
    int w0 = warmup, w1 = seconds - window;
    printf("memory: windows of %d s, from %d s and from %d s\n", window, w0, w1);
    for (int i = 0; i <= nsrv; i++) {
        const soak_mem_kib *v = mem[i];
        const char *who = i == 0 ? "soak process" : srv[i - 1].name;
        double a = mean_anon(v, w0, w0 + window), b = mean_anon(v, w1, seconds);
        /* A sanitizer's allocator keeps what is freed in a quarantine
         * that only grows (256 MiB under AddressSanitizer): in a
         * sanitizer build (make soak SAN=..., the servers built alike)
         * memory is reported, not checked. */
        if (soak_thread_mallocs() < 0)
            printf("%-14s %-17s %9.0f KiB after warm-up, %9.0f KiB at the end: not checked "
                   "(a sanitizer build)\n",
                   who, "anonymous (mean)", a, b);
        else
            ok &= mem_check(who, "anonymous (mean)", a, b);
    }
    for (int i = 0; i <= nsrv; i++)
        free(mem[i]);

    if (soak_thread_mallocs() < 0)
        printf("sampler: allocations not counted (a sanitizer build)\n");
    else if (sampler_allocs != 0) {
        fprintf(stderr, "soak: FAIL the sampler allocated %ld blocks after its first sample\n",
                sampler_allocs);
        ok = false;
    } else
        printf("sampler: no allocation after its first sample\n");
    if (nmaps_warm > 0 && nmaps_end > 0)
        soak_smaps_diff(maps_warm, nmaps_warm, maps_last, nmaps_end);

    /* Descriptors and segments: back to where they were. */
    long maps_end = shm_mappings();
    if (maps_end != 0) {
        fprintf(stderr, "soak: FAIL %ld mappings of this run's segments left\n", maps_end);
        ok = false;
    }
    long shm_end, fds_end = soak_fd_count(soak.self) - (csv ? 1 : 0);
    shm_count(&shm_all, &shm_end);
    printf("descriptors: %ld before, %ld after; /dev/shm entries of this run: %ld before, %ld "
           "after; its mappings left: %ld\n",
           fds_base, fds_end, shm_base, shm_end, maps_end);
    if (fds_end != fds_base) {
        fprintf(stderr, "soak: FAIL the soak process holds %ld descriptors, %ld before it began\n",
                fds_end, fds_base);
        ok = false;
    }
    if (shm_end != shm_base) {
        fprintf(stderr, "soak: FAIL %ld /dev/shm entries of this run left, %ld before\n", shm_end,
                shm_base);
        ok = false;
    }
    if (csv)
        fclose(csv);
    printf("soak: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}

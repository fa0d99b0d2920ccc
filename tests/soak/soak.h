/*
 * tests/soak/soak.h — `make soak`: kart under steady load for a given time
 * (echo and http servers on every backend, a process pool whose workers are
 * killed at random, queues and connections between processes, shared
 * segments created and torn down), sampled every second for growth.
 *
 * Each component is a thread of the soak process (its children are
 * processes) that runs operations at a bounded rate until told to stop and
 * counts them. An operation whose outcome is wrong (a byte that differs, a
 * message out of order, a call that fails where it must not) is an error:
 * counted, its first instance printed, and the run fails. A message sent and
 * never answered by the end is a lost message: the run fails too.
 */
#ifndef KART_SOAK_H
#define KART_SOAK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SOAK_MAX_SERVERS 8

/* One component's counters, read by the sampler every second. */
typedef struct soak_comp {
    const char *name;
    _Atomic uint64_t ops;    /* operations completed and checked */
    _Atomic uint64_t errors; /* wrong outcomes (the run fails) */
    _Atomic uint64_t sent;   /* messages sent (requests, tasks, puts) */
    _Atomic uint64_t done;   /* of those, answered (ok or accounted for) */
    _Atomic uint64_t events; /* component-specific: kills, reconnects... */
} soak_comp;

/* What every component reads. */
typedef struct soak_ctx {
    _Atomic bool stop; /* set when the run's time is up */
    int rate;          /* operations per second per component, at most */
    pid_t self;
    const char *examples; /* folder of the example servers */
    int64_t warm_until;   /* soak_now_ns() at the end of the warm-up */
} soak_ctx;

extern soak_ctx soak;

/* Counts an error of c and prints it (the first 20 of the run). */
void soak_error(soak_comp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Monotonic nanoseconds. */
int64_t soak_now_ns(void);

/* Paces a loop to soak.rate operations per second: call once per
 * operation with the loop's start time and its count so far. */
void soak_pace(int64_t start_ns, uint64_t n);

/* A cheap per-thread random number (xorshift). */
uint64_t soak_rand(uint64_t *state);

/* Fills buf with the bytes of stream `seed` from offset off. */
void soak_pattern(unsigned char *buf, size_t len, uint64_t seed, uint64_t off);

/* ---- the network servers (soak_net.c) ---- */

typedef struct soak_server {
    char name[32]; /* "echo/uring" */
    bool http;
    const char *backend;
    pid_t pid;
    int port;
    long fds_idle; /* its descriptors after start, before any client */
    soak_comp comp;
} soak_server;

/* Starts an echo and an http server on each backend this kernel has
 * (uring when the library has it). Returns how many, or exits on failure. */
int soak_servers_start(soak_server *s, int max);
/* Runs one client thread per server (started by soak_clients_start). */
int soak_clients_start(soak_server *s, int n);
void soak_clients_join(void);
/* After the clients closed: every server back to its idle descriptors
 * (waits up to 3 s); then SIGTERM and a clean exit. false on failure. */
bool soak_servers_stop(soak_server *s, int n);

/* ---- processes, queues, connections, segments (soak_ipc.c) ---- */

extern soak_comp soak_pool_comp, soak_queue_comp, soak_conn_comp, soak_shm_comp;

int soak_ipc_start(void);
void soak_ipc_join(void);

/* ---- sampling (soak.c) ---- */

/* Resident memory of a process in KiB, from /proc/PID/status: all of it
 * (VmRSS) and its anonymous (RssAnon) and shared (RssShmem) parts. */
typedef struct soak_mem_kib {
    int64_t rss, anon, shmem;
} soak_mem_kib;

/* 0, or -1 when the process is gone. */
int soak_mem(pid_t pid, soak_mem_kib *m);
long soak_fd_count(pid_t pid);


/* ---- reading /proc without malloc (soak_proc.c) ---- */

/* Reads path into buf (at most cap - 1 bytes, NUL-terminated); its length
 * or -1. */
ssize_t soak_read(const char *path, char *buf, size_t cap);

/* A file read line by line through a buffer of its own. */
typedef struct soak_lines {
    int fd;
    size_t len, pos;
    char buf[8192];
} soak_lines;
int soak_lines_open(soak_lines *l, const char *path); /* 0 or -1 */
char *soak_lines_next(soak_lines *l);                 /* the next line, or NULL */
void soak_lines_close(soak_lines *l);

/* Entries of a directory (not . or ..), -1 when it cannot be read; in
 * *ours (when not NULL) those whose names begin with p1 or p2. */
long soak_dir_count(const char *path, const char *p1, const char *p2, long *ours);

/* Allocations (malloc, calloc, realloc, aligned) made so far by the
 * calling thread; -1 in a sanitizer build, where they are not counted
 * (soak_alloc.c). */
long soak_thread_mallocs(void);

/* ---- where the soak process's memory is (soak_mem.c) ---- */

/* Kinds of mapping: the main heap, a malloc arena of another thread, a
 * thread stack (the main one or one under a guard page), other anonymous
 * read-write memory (an io_uring ring, a large malloc block), shared
 * (/dev/shm, memfd), everything else (files, code). */
enum {
    SOAK_MAP_HEAP,
    SOAK_MAP_ARENA,
    SOAK_MAP_STACK,
    SOAK_MAP_ANON,
    SOAK_MAP_SHM,
    SOAK_MAP_OTHER,
    SOAK_MAP_KINDS
};

typedef struct soak_smaps_sample {
    int64_t anon_kib[SOAK_MAP_KINDS]; /* smaps' Anonymous: summed by kind */
} soak_smaps_sample;

typedef struct soak_mapping {
    unsigned long long start;
    int64_t size_kib, anon_kib;
    int kind;
    char name[64];
} soak_mapping;

typedef struct soak_malloc_sample {
    int64_t system_kib; /* mallinfo2 arena: bytes the heaps took from the system */
    int64_t inuse_kib;  /* uordblks: live allocations */
    int64_t free_kib;   /* fordblks: held free by the allocator */
    int64_t mmap_kib;   /* hblkhd: blocks mmapped on their own */
    int arenas;         /* malloc_info's heaps */
    int threads;        /* of the process, /proc/self/status */
} soak_malloc_sample;

const char *soak_map_kind_name(int kind);
/* Reads /proc/self/smaps: sums into s, and the first max mappings into
 * maps. Returns how many mappings were stored, or -1. */
int soak_smaps(soak_smaps_sample *s, soak_mapping *maps, int max);
void soak_malloc_stats(soak_malloc_sample *m);
/* Prints the mappings whose anonymous memory differs from a to b. */
void soak_smaps_diff(const soak_mapping *a, int na, const soak_mapping *b, int nb);

#endif

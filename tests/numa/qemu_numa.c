/*
 * tests/numa/qemu_numa.c — the facts of the two-node QEMU guest that
 * tests/numa/qemu-run.sh boots (`make check-numa`), checked through kart
 * and verified with the kernel's own answers (move_pages, getcpu):
 *   - two nodes, node 0 with CPU 0 and node 1 with CPU 1, distance 20,
 *     about 256 MiB each;
 *   - memory kart places on node 1 lands there, page by page, even when
 *     the allocating thread runs on node 0 (and the other way round);
 *     interleaved memory alternates; a bound range moves;
 *   - a thread bound to node 1 runs on CPU 1, node 1, every time asked.
 * Prints "ok …" or "FAIL …" per check; exits 1 if any failed. Plain C
 * (no Check) so that its lines read straight off the console.
 */
#include <kart/numa.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        printf((cond) ? "ok   " : "FAIL ");                                                        \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
        failures += !(cond);                                                                       \
    } while (0)

#define PAGES 64

/* The kernel's node of each page of p (move_pages, query mode): how many
 * of the PAGES pages are on `node`; -1 if the query failed. */
static int pages_on(void *p, int node, int *other)
{
    long pg = sysconf(_SC_PAGESIZE);
    void *addr[PAGES];
    int status[PAGES];
    for (int i = 0; i < PAGES; i++)
        addr[i] = (char *)p + i * pg;
    if (syscall(SYS_move_pages, 0, (unsigned long)PAGES, addr, NULL, status, 0) != 0)
        return -1;
    int n = 0;
    *other = 0;
    for (int i = 0; i < PAGES; i++) {
        n += status[i] == node;
        *other += status[i] != node;
    }
    return n;
}

static void raw_getcpu(unsigned *cpu, unsigned *node)
{
    *cpu = *node = 999;
    syscall(SYS_getcpu, cpu, node, NULL);
}

static void pin_to_cpu(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET((size_t)cpu, &s);
    int rc = kart_numa_bind_thread(0, &s);
    unsigned c, n;
    raw_getcpu(&c, &n);
    CHECK(rc == 0 && (int)c == cpu, "pinned to CPU %d (rc %d, getcpu says CPU %u node %u)", cpu, rc,
          c, n);
}

static void topology(void)
{
    CHECK(kart_numa_node_count() == 2, "two nodes (kart says %d, source %s)",
          kart_numa_node_count(), kart_numa_source());
#ifdef KART_HAVE_NUMA
    CHECK(strcmp(kart_numa_source(), "libnuma") == 0, "facts from libnuma (%s)",
          kart_numa_source());
#else
    CHECK(strcmp(kart_numa_source(), "sysfs") == 0, "facts from sysfs (%s)", kart_numa_source());
#endif
    for (int node = 0; node < 2; node++) {
        cpu_set_t s;
        int rc = kart_numa_node_cpus(node, &s);
        CHECK(rc == 0 && CPU_COUNT(&s) == 1 && CPU_ISSET((size_t)node, &s),
              "node %d holds exactly CPU %d (rc %d, %d CPUs)", node, node, rc,
              rc == 0 ? CPU_COUNT(&s) : 0);
        CHECK(kart_numa_cpu_node(node) == node, "CPU %d is on node %d (kart says %d)", node, node,
              kart_numa_cpu_node(node));
        uint64_t total = 0, free_ = 0;
        rc = kart_numa_node_memory(node, &total, &free_);
        CHECK(rc == 0 && total > (UINT64_C(200) << 20) && total <= (UINT64_C(256) << 20) &&
                  free_ > 0 && free_ <= total,
              "node %d has about 256 MiB (rc %d, total %llu MiB, free %llu MiB)", node, rc,
              (unsigned long long)(total >> 20), (unsigned long long)(free_ >> 20));
        int order[2] = {-1, -1};
        rc = kart_numa_nodes_by_distance(node, order, 2);
        CHECK(rc == 2 && order[0] == node && order[1] == 1 - node,
              "nearest first from node %d: %d, %d", node, order[0], order[1]);
    }
    CHECK(kart_numa_distance(0, 1) == 20 && kart_numa_distance(1, 0) == 20,
          "distance 0-1 is 20 both ways (%d, %d)", kart_numa_distance(0, 1),
          kart_numa_distance(1, 0));
    CHECK(kart_numa_distance(0, 0) == 10 && kart_numa_distance(1, 1) == 10,
          "distance to self is 10");
    CHECK(kart_numa_policy_available() == 1, "memory policies available");
}

/* Allocates on `node` from a thread pinned to the other node's CPU:
 * first touch alone would put the pages on the wrong node. */
static void alloc_on(int node)
{
    pin_to_cpu(1 - node);
    long pg = sysconf(_SC_PAGESIZE);
    void *p = NULL;
    bool bound = false;
    int rc = kart_numa_alloc_onnode(&p, (size_t)(PAGES * pg), node, &bound);
    CHECK(rc == 0 && p && bound, "alloc_onnode(%d) from CPU %d: rc %d, bound %d", node, 1 - node,
          rc, bound);
    if (!p)
        return;
    memset(p, 0x5a, (size_t)(PAGES * pg));
    int other, on = pages_on(p, node, &other);
    CHECK(on == PAGES, "all %d pages on node %d (%d there, %d elsewhere)", PAGES, node, on, other);
    CHECK(kart_numa_memory_node(p) == node, "kart_numa_memory_node says %d",
          kart_numa_memory_node(p));
    kart_numa_free(p, (size_t)(PAGES * pg));
}

static void interleave(void)
{
    pin_to_cpu(0);
    long pg = sysconf(_SC_PAGESIZE);
    void *p = NULL;
    bool bound = false;
    int rc = kart_numa_alloc_interleaved(&p, (size_t)(PAGES * pg), NULL, 0, &bound);
    CHECK(rc == 0 && p && bound, "alloc_interleaved over both nodes: rc %d, bound %d", rc, bound);
    if (!p)
        return;
    memset(p, 1, (size_t)(PAGES * pg));
    int other, on1 = pages_on(p, 1, &other);
    CHECK(on1 >= PAGES / 2 - 2 && on1 <= PAGES / 2 + 2 && other == PAGES - on1,
          "interleaved pages split: %d on node 1, %d elsewhere", on1, other);
    kart_numa_free(p, (size_t)(PAGES * pg));
}

/* A range touched on node 0 moves to node 1 when bound there. */
static void bind_range(void)
{
    pin_to_cpu(0);
    long pg = sysconf(_SC_PAGESIZE);
    size_t len = (size_t)(PAGES * pg);
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        CHECK(0, "mmap");
        return;
    }
    memset(p, 2, len);
    int other, on0 = pages_on(p, 0, &other);
    CHECK(on0 == PAGES, "first touch on CPU 0 puts the range on node 0 (%d of %d)", on0, PAGES);
    bool bound = false;
    int rc = kart_numa_bind_memory(p, len, 1, &bound);
    int on1 = pages_on(p, 1, &other);
    CHECK(rc == 0 && bound && on1 == PAGES,
          "bind_memory(node 1) moved it: rc %d, bound %d, %d pages on node 1", rc, bound, on1);
    int intact = 1;
    for (size_t i = 0; i < len; i++)
        intact &= p[i] == 2;
    CHECK(intact, "the moved range kept its contents");
    munmap(p, len);
}

static void *on_node1(void *arg)
{
    int *bad = arg;
    if (kart_numa_bind_thread_node(0, 1) != 0) {
        *bad = -1;
        return NULL;
    }
    for (int i = 0; i < 2000; i++) {
        unsigned c, n;
        raw_getcpu(&c, &n);
        *bad += c != 1 || n != 1 || kart_numa_current_node() != 1;
        if (i % 100 == 0)
            sched_yield();
    }
    return NULL;
}

static void threads(void)
{
    pin_to_cpu(0);
    int bad[4] = {0};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, on_node1, &bad[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(bad[i] == 0,
              "thread %d bound to node 1 ran on CPU 1 / node 1 every time (%d "
              "misses)",
              i, bad[i]);
    }
    /* By kernel thread id, from outside. */
    cpu_set_t s;
    CHECK(kart_numa_bind_thread_node(getpid(), 1) == 0 && kart_numa_thread_cpus(0, &s) == 0 &&
              CPU_COUNT(&s) == 1 && CPU_ISSET(1, &s),
          "the main thread bound to node 1 by its id");
    unsigned c, n;
    raw_getcpu(&c, &n);
    CHECK(c == 1 && n == 1 && kart_numa_current_node() == 1 && kart_numa_current_cpu() == 1,
          "and runs on CPU %u node %u", c, n);
}

int main(void)
{
    topology();
    alloc_on(1);
    alloc_on(0);
    interleave();
    bind_range();
    threads();
    printf("qemu_numa: %d failed\n", failures);
    return failures ? 1 : 0;
}

/* Description: kart/numa.h — topology (nodes, CPUs, memory, distances,
 * steal order, the node of a CPU, the current CPU and node) on the real
 * machine and on the test trees under tests/numa/topo-* (two nodes; four
 * with an asymmetric table and a tie; a memory-only node with sparse ids; a
 * malformed tree), thread binding, node-local and interleaved memory, the
 * fallback when a container refuses memory policies (a seccomp filter
 * makes mbind and its kin fail with EPERM, as Docker's does), and every
 * documented error. The real-machine cases hold on any shape: under
 * `make check-numa` they run again on a two-node QEMU guest. */
#include "testutil.h"

#include "numa_private.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <pwd.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define MAXN 64

/* ---- helpers ---- */

/* Switches to the test tree tests/numa/<name> (NULL: the real machine). */
static void use_topo(const char *name)
{
    if (name) {
        char dir[4096];
        const char *slash = strrchr(__FILE__, '/');
        int len = slash ? (int)(slash - __FILE__) : 1;
        snprintf(dir, sizeof(dir), "%.*s/numa/%s", len, slash ? __FILE__ : ".", name);
        ck_assert_msg(access(dir, R_OK) == 0, "no test tree %s (run from the repository root)",
                      dir);
        setenv("KART_NUMA_SYSFS", dir, 1);
    } else {
        unsetenv("KART_NUMA_SYSFS");
    }
    kart__numa_reload();
}

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* The CPUs this process may run on. */
static cpu_set_t allowed_cpus(void)
{
    cpu_set_t s;
    ck_assert_int_eq(sched_getaffinity(0, sizeof(s), &s), 0);
    return s;
}

static cpu_set_t one_cpu(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET((size_t)cpu, &s);
    return s;
}

/* A node id certainly absent. */
#define NO_NODE 100000

/* The placement calls' outcomes in one int, for one assertion each: 0
 * (the policy applied: *bound true), UNBOUND (ordinary memory: *bound
 * false), or the call's error. */
#define UNBOUND 1
static int onnode(void **p, size_t size, int node)
{
    bool b = false;
    int rc = kart_numa_alloc_onnode(p, size, node, &b);
    return rc ? rc : b ? 0 : UNBOUND;
}
static int interleaved(void **p, size_t size, const int *nodes, size_t n)
{
    bool b = false;
    int rc = kart_numa_alloc_interleaved(p, size, nodes, n, &b);
    return rc ? rc : b ? 0 : UNBOUND;
}
static int bind_mem(void *p, size_t len, int node)
{
    bool b = false;
    int rc = kart_numa_bind_memory(p, len, node, &b);
    return rc ? rc : b ? 0 : UNBOUND;
}

/* The real nodes. */
static int real_nodes(int *ids)
{
    int n = kart_numa_nodes(ids, MAXN);
    ck_assert_int_ge(n, 1);
    ck_assert_int_le(n, MAXN);
    return n;
}

/* ---- topology: the real machine ---- */

START_TEST(real_source_and_count)
{
    use_topo(NULL);
    const char *src = kart_numa_source();
    ck_assert(strcmp(src, "libnuma") == 0 || strcmp(src, "sysfs") == 0 || strcmp(src, "none") == 0);
#ifndef KART_HAVE_NUMA
    ck_assert_str_ne(src, "libnuma");
#endif
    ck_assert_int_eq(kart_numa_available(), strcmp(src, "none") != 0);
    int n = kart_numa_node_count();
    ck_assert_int_ge(n, 1);
    if (strcmp(src, "none") != 0 && access("/sys/devices/system/node/node0", F_OK) == 0) {
        /* The same nodes as sysfs lists. */
        int dirs = 0;
        for (int id = 0; id < 4096; id++) {
            char p[64];
            snprintf(p, sizeof(p), "/sys/devices/system/node/node%d", id);
            dirs += access(p, F_OK) == 0;
        }
        ck_assert_int_eq(n, dirs);
    }
}
END_TEST

START_TEST(real_nodes_list)
{
    use_topo(NULL);
    int ids[MAXN], n = real_nodes(ids);
    ck_assert_int_eq(n, kart_numa_node_count());
    for (int i = 1; i < n; i++)
        ck_assert_int_lt(ids[i - 1], ids[i]);
    /* A short array: filled as far as it goes, the count still whole. */
    int one[1] = {-7};
    ck_assert_int_eq(kart_numa_nodes(one, 1), n);
    ck_assert_int_eq(one[0], ids[0]);
    ck_assert_int_eq(kart_numa_nodes(NULL, 0), n);
    ck_assert_int_eq(kart_numa_nodes(NULL, 1), -EINVAL);
}
END_TEST

START_TEST(real_node_cpus)
{
    use_topo(NULL);
    int ids[MAXN], n = real_nodes(ids);
    cpu_set_t all, s;
    CPU_ZERO(&all);
    int with_cpus = 0;
    for (int i = 0; i < n; i++) {
        int rc = kart_numa_node_cpus(ids[i], &s);
        ck_assert_msg(rc == 0 || rc == -ENODEV, "node %d: %d", ids[i], rc);
        if (rc == 0) {
            ck_assert_int_ge(CPU_COUNT(&s), 1);
            /* No CPU in two nodes. */
            cpu_set_t both;
            CPU_AND(&both, &all, &s);
            ck_assert_int_eq(CPU_COUNT(&both), 0);
            CPU_OR(&all, &all, &s);
            with_cpus++;
        }
    }
    ck_assert_int_ge(with_cpus, 1);
    /* Every CPU we may run on belongs to a node. */
    cpu_set_t mine = allowed_cpus(), missing;
    CPU_XOR(&missing, &mine, &all);
    CPU_AND(&missing, &missing, &mine);
    ck_assert_int_eq(CPU_COUNT(&missing), 0);
    ck_assert_int_eq(kart_numa_node_cpus(ids[0], NULL), -EINVAL);
    ck_assert_int_eq(kart_numa_node_cpus(-1, &s), -EINVAL);
    ck_assert_int_eq(kart_numa_node_cpus(NO_NODE, &s), -ENOENT);
}
END_TEST

START_TEST(real_node_memory)
{
    use_topo(NULL);
    int ids[MAXN], n = real_nodes(ids);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        uint64_t total = 0, free_ = 0;
        ck_assert_int_eq(kart_numa_node_memory(ids[i], &total, &free_), 0);
        ck_assert_uint_le(free_, total);
        sum += total;
        ck_assert_int_eq(kart_numa_node_memory(ids[i], NULL, NULL), 0);
        uint64_t t2 = 0;
        ck_assert_int_eq(kart_numa_node_memory(ids[i], &t2, NULL), 0);
        ck_assert_uint_eq(t2, total);
    }
    /* Some node holds memory (sysconf's total is no yardstick: in
     * containers it may report the host's). */
    ck_assert_uint_gt(sum, 0);
    uint64_t t;
    ck_assert_int_eq(kart_numa_node_memory(-1, &t, &t), -EINVAL);
    ck_assert_int_eq(kart_numa_node_memory(NO_NODE, &t, &t), -ENOENT);
}
END_TEST

START_TEST(real_distances)
{
    use_topo(NULL);
    int ids[MAXN], n = real_nodes(ids);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int d = kart_numa_distance(ids[i], ids[j]);
            if (i == j)
                ck_assert_int_eq(d, KART_NUMA_LOCAL_DISTANCE);
            else
                ck_assert_int_gt(d, KART_NUMA_LOCAL_DISTANCE);
        }
    ck_assert_int_eq(kart_numa_distance(-1, ids[0]), -EINVAL);
    ck_assert_int_eq(kart_numa_distance(ids[0], -1), -EINVAL);
    ck_assert_int_eq(kart_numa_distance(NO_NODE, ids[0]), -ENOENT);
    ck_assert_int_eq(kart_numa_distance(ids[0], NO_NODE), -ENOENT);
}
END_TEST

START_TEST(real_nodes_by_distance)
{
    use_topo(NULL);
    int ids[MAXN], n = real_nodes(ids);
    for (int i = 0; i < n; i++) {
        int order[MAXN];
        ck_assert_int_eq(kart_numa_nodes_by_distance(ids[i], order, MAXN), n);
        ck_assert_int_eq(order[0], ids[i]);
        for (int k = 2; k < n; k++)
            ck_assert_int_le(kart_numa_distance(ids[i], order[k - 1]),
                             kart_numa_distance(ids[i], order[k]));
    }
    int one[1];
    ck_assert_int_eq(kart_numa_nodes_by_distance(ids[0], one, 1), n);
    ck_assert_int_eq(one[0], ids[0]);
    ck_assert_int_eq(kart_numa_nodes_by_distance(ids[0], NULL, 0), n);
    ck_assert_int_eq(kart_numa_nodes_by_distance(ids[0], NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_numa_nodes_by_distance(-1, one, 1), -EINVAL);
    ck_assert_int_eq(kart_numa_nodes_by_distance(NO_NODE, one, 1), -ENOENT);
}
END_TEST

START_TEST(real_cpu_node)
{
    use_topo(NULL);
    int ids[MAXN], n = real_nodes(ids);
    for (int i = 0; i < n; i++) {
        cpu_set_t s;
        if (kart_numa_node_cpus(ids[i], &s) != 0)
            continue;
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET((size_t)c, &s))
                ck_assert_int_eq(kart_numa_cpu_node(c), ids[i]);
    }
    ck_assert_int_eq(kart_numa_cpu_node(-1), -EINVAL);
    ck_assert_int_eq(kart_numa_cpu_node(CPU_SETSIZE), -EINVAL);
    ck_assert_int_eq(kart_numa_cpu_node(CPU_SETSIZE - 1), -ENOENT);
}
END_TEST

/* Pinned to each CPU in turn, the current CPU is that one, and the current
 * node the one that lists it. */
START_TEST(real_current_cpu_and_node)
{
    use_topo(NULL);
    cpu_set_t mine = allowed_cpus();
    int cpu = kart_numa_current_cpu();
    ck_assert_int_ge(cpu, 0);
    ck_assert(CPU_ISSET((size_t)cpu, &mine));
    ck_assert_int_ge(kart_numa_current_node(), 0);
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET((size_t)c, &mine))
            continue;
        cpu_set_t s = one_cpu(c);
        ck_assert_int_eq(kart_numa_bind_thread(0, &s), 0);
        ck_assert_int_eq(kart_numa_current_cpu(), c);
        ck_assert_int_eq(kart_numa_current_node(), kart_numa_cpu_node(c));
    }
}
END_TEST

/* Threads racing to the first use all see the same topology. */
static void *count_nodes(void *arg)
{
    int ids[MAXN];
    int n = kart_numa_nodes(ids, MAXN);
    return (void *)(intptr_t)(n * 1000 + kart_numa_node_count());
}

static const char *const trees[] = {NULL, "topo-2node", "topo-4node", "topo-memonly"};

START_TEST(first_use_from_many_threads)
{
    use_topo(trees[_i]);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, count_nodes, NULL), 0);
    for (int i = 0; i < 8; i++) {
        void *r;
        ck_assert_int_eq(pthread_join(t[i], &r), 0);
        int n = kart_numa_node_count();
        ck_assert_int_eq((intptr_t)r, n * 1000 + n);
    }
}
END_TEST

/* ---- topology: test trees ---- */

START_TEST(tree_two_nodes)
{
    use_topo("topo-2node");
    ck_assert_str_eq(kart_numa_source(), "test");
    ck_assert_int_eq(kart_numa_available(), 1);
    ck_assert_int_eq(kart_numa_node_count(), 2);
    int ids[4];
    ck_assert_int_eq(kart_numa_nodes(ids, 4), 2);
    ck_assert_int_eq(ids[0], 0);
    ck_assert_int_eq(ids[1], 1);
    for (int node = 0; node < 2; node++) {
        cpu_set_t s;
        ck_assert_int_eq(kart_numa_node_cpus(node, &s), 0);
        ck_assert_int_eq(CPU_COUNT(&s), 1);
        ck_assert(CPU_ISSET((size_t)node, &s));
        ck_assert_int_eq(kart_numa_cpu_node(node), node);
        ck_assert_int_eq(kart_numa_distance(node, node), 10);
        ck_assert_int_eq(kart_numa_distance(node, 1 - node), 20);
        int order[2];
        ck_assert_int_eq(kart_numa_nodes_by_distance(node, order, 2), 2);
        ck_assert_int_eq(order[0], node);
        ck_assert_int_eq(order[1], 1 - node);
    }
    uint64_t total, free_;
    ck_assert_int_eq(kart_numa_node_memory(1, &total, &free_), 0);
    ck_assert_uint_eq(total, UINT64_C(262144) * 1024);
    ck_assert_uint_eq(free_, UINT64_C(250000) * 1024);
    ck_assert_int_eq(kart_numa_cpu_node(2), -ENOENT);
    ck_assert_int_eq(kart_numa_node_cpus(2, &(cpu_set_t){0}), -ENOENT);
    ck_assert_int_eq(kart_numa_distance(0, 2), -ENOENT);
    /* Back to the machine. */
    use_topo(NULL);
    ck_assert_str_ne(kart_numa_source(), "test");
}
END_TEST

/* Four nodes: 0→3 is 31 but 3→0 is 30 (rows are "from"), and node 1 is
 * equally far (20) from 2 and 3. */
START_TEST(tree_four_nodes_asymmetric)
{
    use_topo("topo-4node");
    ck_assert_int_eq(kart_numa_node_count(), 4);
    ck_assert_int_eq(kart_numa_distance(0, 3), 31);
    ck_assert_int_eq(kart_numa_distance(3, 0), 30);
    ck_assert_int_eq(kart_numa_distance(2, 1), 31);
    static const int want[4][4] = {{0, 1, 2, 3}, {1, 0, 2, 3}, {2, 3, 0, 1}, {3, 2, 1, 0}};
    for (int node = 0; node < 4; node++) {
        int order[4] = {-1, -1, -1, -1};
        ck_assert_int_eq(kart_numa_nodes_by_distance(node, order, 4), 4);
        for (int k = 0; k < 4; k++)
            ck_assert_msg(order[k] == want[node][k], "from %d: place %d is %d, not %d", node, k,
                          order[k], want[node][k]);
        /* A short array holds the nearest ones. */
        int two[2];
        ck_assert_int_eq(kart_numa_nodes_by_distance(node, two, 2), 4);
        ck_assert_int_eq(two[0], want[node][0]);
        ck_assert_int_eq(two[1], want[node][1]);
    }
    for (int c = 0; c < 8; c++)
        ck_assert_int_eq(kart_numa_cpu_node(c), c % 4);
    ck_assert_int_eq(kart_numa_cpu_node(8), -ENOENT);
    cpu_set_t s;
    ck_assert_int_eq(kart_numa_node_cpus(2, &s), 0);
    ck_assert_int_eq(CPU_COUNT(&s), 2);
    ck_assert(CPU_ISSET(2, &s) && CPU_ISSET(6, &s));
    uint64_t total, free_;
    ck_assert_int_eq(kart_numa_node_memory(2, &total, &free_), 0);
    ck_assert_uint_eq(total, UINT64_C(1) << 30);
    ck_assert_uint_eq(free_, 0);
}
END_TEST

/* Nodes 0 and 2; node 2 has memory and no CPUs. */
START_TEST(tree_memory_only_node)
{
    use_topo("topo-memonly");
    ck_assert_int_eq(kart_numa_node_count(), 2);
    int ids[2];
    ck_assert_int_eq(kart_numa_nodes(ids, 2), 2);
    ck_assert_int_eq(ids[0], 0);
    ck_assert_int_eq(ids[1], 2);
    cpu_set_t s;
    ck_assert_int_eq(kart_numa_node_cpus(0, &s), 0);
    ck_assert_int_eq(CPU_COUNT(&s), 2);
    ck_assert_int_eq(kart_numa_node_cpus(2, &s), -ENODEV);
    ck_assert_int_eq(kart_numa_node_cpus(1, &s), -ENOENT);
    ck_assert_int_eq(kart_numa_distance(0, 2), 17);
    ck_assert_int_eq(kart_numa_distance(2, 0), 17);
    ck_assert_int_eq(kart_numa_distance(0, 1), -ENOENT);
    int order[2];
    ck_assert_int_eq(kart_numa_nodes_by_distance(2, order, 2), 2);
    ck_assert_int_eq(order[0], 2);
    ck_assert_int_eq(order[1], 0);
    ck_assert_int_eq(kart_numa_nodes_by_distance(1, order, 2), -ENOENT);
    uint64_t total;
    ck_assert_int_eq(kart_numa_node_memory(2, &total, NULL), 0);
    ck_assert_uint_eq(total, UINT64_C(2) << 30);
    ck_assert_int_eq(kart_numa_cpu_node(1), 0);
    ck_assert_int_eq(kart_numa_bind_thread_node(0, 2), -ENODEV);
    ck_assert_int_eq(kart_numa_bind_thread_node(0, 1), -ENOENT);
}
END_TEST

/* A malformed tree: an unparsable CPU list (no CPUs), a distance row of the
 * wrong length (10 and 20 stand in), meminfo missing or garbled. */
START_TEST(tree_malformed)
{
    use_topo("topo-broken");
    ck_assert_int_eq(kart_numa_node_count(), 2);
    cpu_set_t s;
    ck_assert_int_eq(kart_numa_node_cpus(0, &s), -ENODEV);
    ck_assert_int_eq(kart_numa_node_cpus(1, &s), 0);
    ck_assert_int_eq(kart_numa_distance(0, 0), 10);
    ck_assert_int_eq(kart_numa_distance(0, 1), 20);
    ck_assert_int_eq(kart_numa_distance(1, 0), 20);
    uint64_t total;
    ck_assert_int_eq(kart_numa_node_memory(0, &total, NULL), -EIO);
    ck_assert_int_eq(kart_numa_node_memory(1, &total, NULL), -EIO);
}
END_TEST

/* A directory without nodeN entries is ignored: the machine's facts. */
START_TEST(tree_empty_is_ignored)
{
    char dir[] = "/tmp/kart-numa-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("KART_NUMA_SYSFS", dir, 1);
    kart__numa_reload();
    ck_assert_str_ne(kart_numa_source(), "test");
    setenv("KART_NUMA_SYSFS", "/nonexistent/kart", 1);
    kart__numa_reload();
    ck_assert_str_ne(kart_numa_source(), "test");
    rmdir(dir);
    use_topo(NULL);
}
END_TEST

/* Under a test tree the current node is the tree's node of the current
 * CPU, not the kernel's. */
START_TEST(tree_current_node)
{
    use_topo("topo-2node");
    cpu_set_t mine = allowed_cpus();
    for (int c = 0; c < 2; c++) {
        if (!CPU_ISSET((size_t)c, &mine))
            continue;
        ck_assert_int_eq(kart_numa_bind_thread_node(0, c), 0);
        ck_assert_int_eq(kart_numa_current_cpu(), c);
        ck_assert_int_eq(kart_numa_current_node(), c);
    }
    /* The four-node tree names CPUs 0-7; CPUs past it belong to none. */
    use_topo("topo-4node");
    for (int c = 8; c < CPU_SETSIZE; c++)
        if (CPU_ISSET((size_t)c, &mine)) {
            cpu_set_t s = one_cpu(c);
            ck_assert_int_eq(kart_numa_bind_thread(0, &s), 0);
            ck_assert_int_eq(kart_numa_current_node(), -ENOENT);
            break;
        }
}
END_TEST

/* ---- thread binding ---- */

START_TEST(bind_calling_thread)
{
    use_topo(NULL);
    cpu_set_t mine = allowed_cpus(), got;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET((size_t)c, &mine))
            continue;
        cpu_set_t s = one_cpu(c);
        ck_assert_int_eq(kart_numa_bind_thread(0, &s), 0);
        ck_assert_int_eq(kart_numa_thread_cpus(0, &got), 0);
        ck_assert(CPU_EQUAL(&got, &s));
        ck_assert_int_eq(kart_numa_current_cpu(), c);
    }
    /* CPUs the machine lacks are dropped while one exists. */
    cpu_set_t s = mine;
    CPU_SET(CPU_SETSIZE - 1, &s);
    ck_assert_int_eq(kart_numa_bind_thread(0, &s), 0);
    ck_assert_int_eq(kart_numa_thread_cpus(0, &got), 0);
    ck_assert(CPU_EQUAL(&got, &mine));
}
END_TEST

START_TEST(bind_to_each_node)
{
    use_topo(NULL);
    int ids[MAXN], n = real_nodes(ids);
    cpu_set_t mine = allowed_cpus();
    for (int i = 0; i < n; i++) {
        cpu_set_t s, usable;
        int rc = kart_numa_node_cpus(ids[i], &s);
        if (rc == -ENODEV) {
            ck_assert_int_eq(kart_numa_bind_thread_node(0, ids[i]), -ENODEV);
            continue;
        }
        ck_assert_int_eq(rc, 0);
        CPU_AND(&usable, &s, &mine);
        if (CPU_COUNT(&usable) == 0) {
            ck_assert_int_eq(kart_numa_bind_thread_node(0, ids[i]), -EINVAL);
            continue;
        }
        ck_assert_int_eq(kart_numa_bind_thread_node(0, ids[i]), 0);
        ck_assert_int_eq(kart_numa_current_node(), ids[i]);
        cpu_set_t got;
        ck_assert_int_eq(kart_numa_thread_cpus(0, &got), 0);
        ck_assert(CPU_EQUAL(&got, &usable));
    }
    ck_assert_int_eq(kart_numa_bind_thread_node(0, -1), -EINVAL);
    ck_assert_int_eq(kart_numa_bind_thread_node(-1, ids[0]), -EINVAL);
    ck_assert_int_eq(kart_numa_bind_thread_node(0, NO_NODE), -ENOENT);
}
END_TEST

/* The four-node tree names CPUs 0-7: a node whose CPUs this machine lacks
 * cannot be bound to (-EINVAL); the others can. */
START_TEST(bind_tree_node_cpus_missing_here)
{
    cpu_set_t mine = allowed_cpus();
    use_topo("topo-4node");
    for (int node = 0; node < 4; node++) {
        cpu_set_t s, usable;
        ck_assert_int_eq(kart_numa_node_cpus(node, &s), 0);
        CPU_AND(&usable, &s, &mine);
        int want = CPU_COUNT(&usable) ? 0 : -EINVAL;
        ck_assert_int_eq(kart_numa_bind_thread_node(0, node), want);
        if (want == 0)
            ck_assert_int_eq(kart_numa_current_node(), node);
    }
}
END_TEST

struct other {
    _Atomic pid_t tid;
    _Atomic int go;
    _Atomic int cpu;
};

static void *other_thread(void *arg)
{
    struct other *o = arg;
    atomic_store(&o->tid, (pid_t)syscall(SYS_gettid));
    while (!atomic_load(&o->go))
        usleep(1000);
    atomic_store(&o->cpu, kart_numa_current_cpu());
    return NULL;
}

/* Binding another thread by its kernel id. */
START_TEST(bind_other_thread)
{
    use_topo(NULL);
    cpu_set_t mine = allowed_cpus();
    int last = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET((size_t)c, &mine))
            last = c;
    struct other o = {0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &o), 0);
    while (atomic_load(&o.tid) == 0)
        usleep(1000);
    cpu_set_t s = one_cpu(last), got;
    ck_assert_int_eq(kart_numa_bind_thread(atomic_load(&o.tid), &s), 0);
    ck_assert_int_eq(kart_numa_thread_cpus(atomic_load(&o.tid), &got), 0);
    ck_assert(CPU_EQUAL(&got, &s));
    /* The caller's own binding is untouched. */
    ck_assert_int_eq(kart_numa_thread_cpus(0, &got), 0);
    ck_assert(CPU_EQUAL(&got, &mine));
    atomic_store(&o.go, 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(atomic_load(&o.cpu), last);
}
END_TEST

START_TEST(bind_errors)
{
    use_topo(NULL);
    cpu_set_t mine = allowed_cpus(), empty, got;
    CPU_ZERO(&empty);
    ck_assert_int_eq(kart_numa_bind_thread(0, NULL), -EINVAL);
    ck_assert_int_eq(kart_numa_bind_thread(0, &empty), -EINVAL);
    ck_assert_int_eq(kart_numa_bind_thread(-1, &mine), -EINVAL);
    cpu_set_t none_here = one_cpu(CPU_SETSIZE - 1);
    ck_assert_int_eq(kart_numa_bind_thread(0, &none_here), -EINVAL);
    ck_assert_int_eq(kart_numa_thread_cpus(0, NULL), -EINVAL);
    ck_assert_int_eq(kart_numa_thread_cpus(-1, &got), -EINVAL);
    /* A thread that is gone. */
    pid_t pid = kt_fork();
    if (pid == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    ck_assert_int_eq(kart_numa_bind_thread(pid, &mine), -ESRCH);
    ck_assert_int_eq(kart_numa_thread_cpus(pid, &got), -ESRCH);
    ck_assert_int_eq(kart_numa_bind_thread_node(pid, kart_numa_cpu_node(kart_numa_current_cpu())),
                     -ESRCH);
}
END_TEST

/* Another user's process may not be bound: a child drops to nobody (when
 * root) and tries init's. */
START_TEST(bind_other_user_eperm)
{
    use_topo(NULL);
    cpu_set_t mine = allowed_cpus();
    pid_t pid = kt_fork();
    if (pid == 0) {
        if (getuid() == 0 && setuid(65534) != 0)
            _exit(2);
        if (getpid() == 1)
            _exit(3);
        _exit(kart_numa_bind_thread(1, &mine) == -EPERM ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

/* ---- memory ---- */

/* Whether node has memory the kernel can place pages in. */
static bool has_memory(int node)
{
    uint64_t total = 0, free_ = 0;
    return kart_numa_node_memory(node, &total, &free_) == 0 && free_ > (UINT64_C(16) << 20);
}

START_TEST(alloc_onnode_each_node)
{
    use_topo(NULL);
    int ids[MAXN], n = real_nodes(ids);
    size_t pg = page_size(), size = 8 * pg + 1;
    for (int i = 0; i < n; i++) {
        void *p = (void *)1;
        int rc = onnode(&p, size, ids[i]);
        ck_assert_msg(rc == 0 || rc == UNBOUND, "node %d: %d", ids[i], rc);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq((uintptr_t)p % pg, 0);
        if (kart_numa_policy_available() && has_memory(ids[i]))
            ck_assert_int_eq(rc, 0);
        if (!kart_numa_policy_available())
            ck_assert_int_eq(rc, UNBOUND);
        unsigned char *b = p;
        KT_ASSERT_EACH(k, size, b[k] == 0);
        memset(b, 0xa5, size);
        if (rc == 0)
            for (size_t k = 0; k < size; k += pg) {
                int where = kart_numa_memory_node(b + k);
                ck_assert_msg(where == ids[i], "page %zu of node %d's memory is on %d", k / pg,
                              ids[i], where);
            }
        kart_numa_free(p, size);
    }
}
END_TEST

START_TEST(alloc_onnode_errors)
{
    use_topo(NULL);
    void *p = (void *)1;
    /* bound may be NULL; on failure it is left alone */
    bool b = true;
    ck_assert_int_eq(kart_numa_alloc_onnode(&p, 4096, -1, &b), -EINVAL);
    ck_assert(b);
    ck_assert_int_eq(kart_numa_alloc_onnode(&p, 4096, 0, NULL), 0);
    ck_assert_ptr_nonnull(p);
    kart_numa_free(p, 4096);
    p = (void *)1;
    ck_assert_int_eq(onnode(NULL, 4096, 0), -EINVAL);
    ck_assert_int_eq(onnode(&p, 0, 0), -EINVAL);
    ck_assert_ptr_null(p);
    p = (void *)1;
    ck_assert_int_eq(onnode(&p, 4096, -1), -EINVAL);
    ck_assert_ptr_null(p);
    p = (void *)1;
    ck_assert_int_eq(onnode(&p, 4096, NO_NODE), -ENOENT);
    ck_assert_ptr_null(p);
    p = (void *)1;
    ck_assert_int_eq(onnode(&p, SIZE_MAX, 0), -ENOMEM);
    ck_assert_ptr_null(p);
    p = (void *)1;
    ck_assert_int_eq(onnode(&p, SIZE_MAX / 2, 0), -ENOMEM);
    ck_assert_ptr_null(p);
}
END_TEST

START_TEST(alloc_interleaved_spreads)
{
    use_topo(NULL);
    int ids[MAXN], n = real_nodes(ids), mem[MAXN], nmem = 0;
    for (int i = 0; i < n; i++)
        if (has_memory(ids[i]))
            mem[nmem++] = ids[i];
    size_t pg = page_size(), size = 32 * pg;
    void *p;
    int rc = interleaved(&p, size, NULL, 0);
    ck_assert_int_eq(rc, kart_numa_policy_available() ? 0 : UNBOUND);
    memset(p, 1, size);
    if (rc == 0) {
        /* Every page on a node kart knows; with two nodes or more that
         * have room, pages on more than one. */
        int seen[MAXN] = {0}, distinct = 0;
        for (size_t k = 0; k < size; k += pg) {
            int where = kart_numa_memory_node((char *)p + k), idx = -1;
            for (int i = 0; i < n; i++)
                if (ids[i] == where)
                    idx = i;
            ck_assert_msg(idx >= 0, "page %zu on node %d", k / pg, where);
            distinct += !seen[idx]++;
        }
        ck_assert_int_ge(distinct, nmem >= 2 ? 2 : 1);
    }
    kart_numa_free(p, size);
    /* An explicit list of one node: all pages there. */
    if (nmem == 0)
        return;
    int last = mem[nmem - 1];
    rc = interleaved(&p, size, &last, 1);
    ck_assert_int_eq(rc, kart_numa_policy_available() ? 0 : UNBOUND);
    memset(p, 1, size);
    if (rc == 0)
        for (size_t k = 0; k < size; k += pg)
            ck_assert_int_eq(kart_numa_memory_node((char *)p + k), last);
    kart_numa_free(p, size);
}
END_TEST

START_TEST(alloc_interleaved_errors)
{
    use_topo(NULL);
    void *p = (void *)1;
    int node0 = 0, bad = -1, absent = NO_NODE;
    kart_numa_nodes(&node0, 1);
    ck_assert_int_eq(interleaved(NULL, 4096, NULL, 0), -EINVAL);
    ck_assert_int_eq(interleaved(&p, 0, NULL, 0), -EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(interleaved(&p, 4096, NULL, 1), -EINVAL);
    ck_assert_int_eq(interleaved(&p, 4096, &node0, 0), -EINVAL);
    ck_assert_int_eq(interleaved(&p, 4096, &bad, 1), -EINVAL);
    ck_assert_int_eq(interleaved(&p, 4096, &absent, 1), -ENOENT);
    int mixed[2] = {node0, NO_NODE};
    ck_assert_int_eq(interleaved(&p, 4096, mixed, 2), -ENOENT);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(interleaved(&p, SIZE_MAX, NULL, 0), -ENOMEM);
    ck_assert_ptr_null(p);
}
END_TEST

START_TEST(free_errors)
{
    use_topo(NULL);
    void *p;
    int node = 0;
    kart_numa_nodes(&node, 1);
    ck_assert_int_ge(onnode(&p, 2 * page_size(), node), 0);
    kart_numa_free(NULL, 0);
    kart_numa_free(NULL, 4096);
    kart_numa_free((char *)p + 1, page_size());
    kart_numa_free(p, 0);
    kart_numa_free(p, SIZE_MAX);
    /* Still mapped after the calls it ignored. */
    memset(p, 1, 2 * page_size());
    kart_numa_free(p, 2 * page_size());
}
END_TEST

START_TEST(bind_memory_moves_pages)
{
    use_topo(NULL);
    int ids[MAXN], n = real_nodes(ids), target = -1;
    for (int i = n - 1; i >= 0 && target < 0; i--)
        if (has_memory(ids[i]))
            target = ids[i];
    ck_assert_int_ge(target, 0);
    size_t pg = page_size(), len = 6 * pg;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    memset(p, 7, len);
    /* The length rounds up to whole pages. */
    int rc = bind_mem(p, len - 100, target);
    ck_assert_int_eq(rc, kart_numa_policy_available() ? 0 : UNBOUND);
    KT_ASSERT_EACH(k, len, p[k] == 7);
    if (rc == 0)
        for (size_t k = 0; k < len; k += pg)
            ck_assert_int_eq(kart_numa_memory_node(p + k), target);
    ck_assert_int_eq(munmap(p, len), 0);
}
END_TEST

START_TEST(bind_memory_errors)
{
    for (int tree = 0; tree < 2; tree++) {
        use_topo(tree ? "topo-2node" : NULL);
        size_t pg = page_size();
        char *p = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ck_assert_ptr_ne(p, MAP_FAILED);
        ck_assert_int_eq(bind_mem(NULL, pg, 0), -EINVAL);
        ck_assert_int_eq(bind_mem(p + 1, pg, 0), -EINVAL);
        ck_assert_int_eq(bind_mem(p, 0, 0), -EINVAL);
        ck_assert_int_eq(bind_mem(p, pg, -1), -EINVAL);
        ck_assert_int_eq(bind_mem(p, pg, NO_NODE), -ENOENT);
        ck_assert_int_eq(bind_mem(p, SIZE_MAX, 0), -EINVAL);
        /* A hole in the middle. */
        ck_assert_int_eq(munmap(p + pg, pg), 0);
        ck_assert_int_eq(bind_mem(p, 3 * pg, 0), -EFAULT);
        ck_assert_int_eq(bind_mem(p, pg, 0), tree                           ? UNBOUND
                                             : kart_numa_policy_available() ? 0
                                                                            : UNBOUND);
        munmap(p, pg);
        munmap(p + 2 * pg, pg);
    }
}
END_TEST

START_TEST(memory_node_query)
{
    use_topo(NULL);
    size_t pg = page_size();
    char *p = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    ck_assert_int_eq(kart_numa_memory_node(NULL), -EINVAL);
    int probe = kart_numa_memory_node(p);
    if (probe == -EPERM || probe == -ENOSYS)
        KART_SKIP("the memory-node query is refused here (%s)", kart_strerror(probe));
    /* Never touched: -ENOENT, or -EFAULT from kernels before 6.5. */
    ck_assert_msg(probe == -ENOENT || probe == -EFAULT, "untouched page: %d", probe);
    volatile char c = p[pg]; /* read: the shared zero page */
    (void)c;
    /* Refused on most kernels; placed (on its node) by some, 6.18 here. */
    int zero = kart_numa_memory_node(p + pg);
    ck_assert_msg(zero == -EFAULT || zero >= 0, "zero page: %d", zero);
    p[2 * pg] = 1;
    int node = kart_numa_memory_node(p + 2 * pg + 17);
    ck_assert_int_ge(node, 0);
    ck_assert_int_ge(kart_numa_node_memory(node, NULL, NULL), 0);
    ck_assert_int_eq(munmap(p, 3 * pg), 0);
    ck_assert_int_eq(kart_numa_memory_node(p + 2 * pg), -EFAULT);
}
END_TEST

/* Under a test tree no policy is applied, and the memory is ordinary. */
START_TEST(tree_memory_is_unbound)
{
    use_topo("topo-4node");
    ck_assert_int_eq(kart_numa_policy_available(), 0);
    void *p;
    ck_assert_int_eq(onnode(&p, 10000, 3), UNBOUND);
    memset(p, 3, 10000);
    kart_numa_free(p, 10000);
    int two[2] = {1, 2};
    ck_assert_int_eq(interleaved(&p, 10000, two, 2), UNBOUND);
    memset(p, 3, 10000);
    ck_assert_int_eq(bind_mem(p, 10000, 3), UNBOUND);
    kart_numa_free(p, 10000);
    ck_assert_int_eq(onnode(&p, 10000, 4), -ENOENT);
    use_topo(NULL);
    ck_assert_int_eq(kart_numa_policy_available(), kart_numa_policy_available());
}
END_TEST

/* As in a container without CAP_SYS_NICE: a seccomp filter answers EPERM
 * to the memory-policy calls. Memory still comes, UNBOUND says
 * the policy is missing, and KART_DEBUG explains. */
static void deny_mempolicy(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mbind, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_set_mempolicy, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_get_mempolicy, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_move_pages, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
    ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

START_TEST(eperm_falls_back)
{
    setenv("KART_DEBUG", "1", 1);
    char log[] = "/tmp/kart-numa-log-XXXXXX";
    int fd = mkstemp(log);
    ck_assert_int_ge(fd, 0);
    unlink(log);
    int saved = dup(2);
    ck_assert_int_eq(dup2(fd, 2), 2);
    deny_mempolicy();
    use_topo(NULL);
    ck_assert_int_eq(kart_numa_policy_available(), 0);
    int node = 0;
    kart_numa_nodes(&node, 1);
    void *p = NULL;
    size_t size = 5 * page_size();
    ck_assert_int_eq(onnode(&p, size, node), UNBOUND);
    ck_assert_ptr_nonnull(p);
    memset(p, 9, size);
    ck_assert_int_eq(bind_mem(p, size, node), UNBOUND);
    ck_assert_int_eq(kart_numa_memory_node(p), -EPERM);
    kart_numa_free(p, size);
    ck_assert_int_eq(interleaved(&p, size, NULL, 0), UNBOUND);
    memset(p, 9, size);
    kart_numa_free(p, size);
    /* Errors of the caller's own making still come first. */
    ck_assert_int_eq(onnode(&p, size, NO_NODE), -ENOENT);
    /* Threads still bind: affinity is not a memory policy. */
    cpu_set_t mine = allowed_cpus();
    ck_assert_int_eq(kart_numa_bind_thread(0, &mine), 0);
    dup2(saved, 2);
    close(saved);
    char buf[4096] = "";
    ck_assert_int_gt(pread(fd, buf, sizeof(buf) - 1, 0), 0);
    close(fd);
    ck_assert_msg(strstr(buf, "[WARNING/MainProcess] alloc_onnode: mbind refused") &&
                      strstr(buf, "Operation not permitted") && strstr(buf, "not applied"),
                  "KART_DEBUG said: %s", buf);
}
END_TEST

static Suite *numa_suite(void)
{
    Suite *s = suite_create("numa");
    TCase *tc = tcase_create("topology");
    tcase_add_test(tc, real_source_and_count);
    tcase_add_test(tc, real_nodes_list);
    tcase_add_test(tc, real_node_cpus);
    tcase_add_test(tc, real_node_memory);
    tcase_add_test(tc, real_distances);
    tcase_add_test(tc, real_nodes_by_distance);
    tcase_add_test(tc, real_cpu_node);
    tcase_add_test(tc, real_current_cpu_and_node);
    tcase_add_loop_test(tc, first_use_from_many_threads, 0,
                        (int)(sizeof(trees) / sizeof(trees[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("test_trees");
    tcase_add_test(tc, tree_two_nodes);
    tcase_add_test(tc, tree_four_nodes_asymmetric);
    tcase_add_test(tc, tree_memory_only_node);
    tcase_add_test(tc, tree_malformed);
    tcase_add_test(tc, tree_empty_is_ignored);
    tcase_add_test(tc, tree_current_node);
    tcase_add_test(tc, tree_memory_is_unbound);
    suite_add_tcase(s, tc);

    tc = tcase_create("binding");
    tcase_add_test(tc, bind_calling_thread);
    tcase_add_test(tc, bind_to_each_node);
    tcase_add_test(tc, bind_tree_node_cpus_missing_here);
    tcase_add_test(tc, bind_other_thread);
    tcase_add_test(tc, bind_errors);
    tcase_add_test(tc, bind_other_user_eperm);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_add_test(tc, alloc_onnode_each_node);
    tcase_add_test(tc, alloc_onnode_errors);
    tcase_add_test(tc, alloc_interleaved_spreads);
    tcase_add_test(tc, alloc_interleaved_errors);
    tcase_add_test(tc, free_errors);
    tcase_add_test(tc, bind_memory_moves_pages);
    tcase_add_test(tc, bind_memory_errors);
    tcase_add_test(tc, memory_node_query);
    tcase_add_test(tc, eperm_falls_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(numa_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

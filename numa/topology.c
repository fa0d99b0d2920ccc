/*
 * numa/topology.c — the machine's NUMA shape: nodes, their CPUs and memory,
 * distances, the node of a CPU. Read once, from libnuma when built with it,
 * else from the node directories in sysfs (what libnuma reads too), else
 * one node; or from a test tree named by KART_NUMA_SYSFS. numa/ uses
 * nothing else in the library but kart__log (the runtime's log).
 */
#define KART_BUILDING 1
#include "debug.h"
#include "topo.h"

#include "numa_private.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef KART_HAVE_NUMA
#include <numa.h>
#endif

#define SYSFS_NODES "/sys/devices/system/node"

/* ---- parsing ---- */

/* Parses a kernel CPU list ("0-3,8,10-11", or empty) into cpus; false if
 * malformed. */
static bool parse_cpulist(const char *s, cpu_set_t *cpus)
{
    CPU_ZERO(cpus);
    while (*s && *s != '\n') {
        char *end;
        long lo = strtol(s, &end, 10), hi = lo;
        if (end == s || lo < 0)
            return false;
        if (*end == '-') {
            s = end + 1;
            hi = strtol(s, &end, 10);
            if (end == s || hi < lo)
                return false;
        }
        for (long c = lo; c <= hi && c < CPU_SETSIZE; c++)
            CPU_SET((size_t)c, cpus);
        if (*end != ',' && *end != '\n' && *end != '\0')
            return false;
        s = *end == ',' ? end + 1 : end;
    }
    return true;
}

/* Reads the first line of root/nodeN/name into buf; false if unreadable. */
static bool read_node_file(const char *root, int node, const char *name, char *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/node%d/%s", root, node, name);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    if (!ok)
        buf[0] = '\0'; /* an empty file: an empty CPU list */
    return true;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The ids of the nodeN directories under root, ascending, in a malloc'd
 * array; *n their number (0 when root is unreadable). NULL on no memory. */
static int *list_node_dirs(const char *root, int *n)
{
    *n = 0;
    int cap = 8, *ids = malloc(sizeof(int) * (size_t)cap);
    DIR *d = opendir(root);
    if (!d || !ids) {
        if (d)
            closedir(d);
        return ids;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        if (strncmp(e->d_name, "node", 4) != 0 || e->d_name[4] < '0' || e->d_name[4] > '9')
            continue;
        long id = strtol(e->d_name + 4, &end, 10);
        if (*end != '\0' || id > 1 << 20)
            continue;
        if (*n == cap) {
            int *more = realloc(ids, sizeof(int) * (size_t)(cap *= 2));
            if (!more) {
                free(ids);
                closedir(d);
                return NULL;
            }
            ids = more;
        }
        ids[(*n)++] = (int)id;
    }
    closedir(d);
    qsort(ids, (size_t)*n, sizeof(int), cmp_int);
    return ids;
}

/* ---- building a topology ---- */

static kart__numa_topo *topo_new(const char *source, int n)
{
    kart__numa_topo *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->source = source;
    t->n = n;
    t->policy = -1;
    t->nodes = calloc((size_t)n, sizeof(*t->nodes));
    t->dist = calloc((size_t)n * (size_t)n, sizeof(int));
    if (!t->nodes || !t->dist) {
        free(t->nodes);
        free(t->dist);
        free(t);
        return NULL;
    }
    return t;
}

static void topo_free(kart__numa_topo *t)
{
    free(t->nodes);
    free(t->dist);
    free(t->root);
    free(t);
}

/* Fills what follows from the nodes' CPU sets: the CPU → node map, CPU
 * counts, and distances left 0 (10 to itself, 20 to others). */
static void topo_finish(kart__numa_topo *t)
{
    for (int c = 0; c < CPU_SETSIZE; c++)
        t->cpu_node[c] = -1;
    for (int i = 0; i < t->n; i++) {
        kart__numa_node *nd = &t->nodes[i];
        nd->ncpus = CPU_COUNT(&nd->cpus);
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET((size_t)c, &nd->cpus) && t->cpu_node[c] < 0)
                t->cpu_node[c] = nd->id;
        for (int j = 0; j < t->n; j++) {
            int *d = &t->dist[i * t->n + j];
            if (*d <= 0)
                *d = i == j ? KART_NUMA_LOCAL_DISTANCE : 2 * KART_NUMA_LOCAL_DISTANCE;
        }
    }
}

/* One node 0 with every configured CPU: a machine without NUMA facts. */
static kart__numa_topo *load_none(void)
{
    kart__numa_topo *t = topo_new("none", 1);
    if (!t)
        return NULL;
    long n = sysconf(_SC_NPROCESSORS_CONF);
    CPU_ZERO(&t->nodes[0].cpus);
    for (long c = 0; c < (n > 0 ? n : 1) && c < CPU_SETSIZE; c++)
        CPU_SET((size_t)c, &t->nodes[0].cpus);
    topo_finish(t);
    return t;
}

/* The nodes under root (/sys/devices/system/node or a test tree): NULL
 * when it holds none, or on no memory. */
static kart__numa_topo *load_sysfs(const char *root, const char *source)
{
    int n;
    int *ids = list_node_dirs(root, &n);
    if (!ids || n == 0) {
        free(ids);
        return NULL;
    }
    kart__numa_topo *t = topo_new(source, n);
    if (t)
        t->root = strdup(root);
    if (!t || !t->root) {
        if (t)
            topo_free(t);
        free(ids);
        return NULL;
    }
    char buf[8192];
    for (int i = 0; i < n; i++) {
        kart__numa_node *nd = &t->nodes[i];
        nd->id = ids[i];
        if (!read_node_file(root, nd->id, "cpulist", buf, sizeof(buf)) ||
            !parse_cpulist(buf, &nd->cpus)) {
            kart__log(KART_LOG_WARNING, "numa",
                      "%s/node%d/cpulist unreadable or malformed: no CPUs", root, nd->id);
            CPU_ZERO(&nd->cpus);
        }
        /* The row lists the distance to each node, in ascending id. */
        if (!read_node_file(root, nd->id, "distance", buf, sizeof(buf)))
            continue;
        int row[n + 1], k = 0;
        char *s = buf, *end;
        for (; k <= n; k++, s = end) {
            long v = strtol(s, &end, 10);
            if (end == s || v <= 0 || v > 255)
                break;
            row[k] = (int)v;
        }
        if (k == n)
            memcpy(&t->dist[i * n], row, sizeof(int) * (size_t)n);
        else
            kart__log(KART_LOG_WARNING, "numa",
                      "%s/node%d/distance has %d entries for %d nodes: ignored", root, nd->id, k,
                      n);
    }
    free(ids);
    topo_finish(t);
    return t;
}

#ifdef KART_HAVE_NUMA
/* The nodes libnuma knows (it read sysfs in its constructor). */
static kart__numa_topo *load_libnuma(void)
{
    if (numa_available() < 0)
        return NULL;
    int max = numa_max_node(), n = 0;
    for (int id = 0; id <= max; id++)
        n += numa_bitmask_isbitset(numa_nodes_ptr, (unsigned)id) != 0;
    if (n == 0)
        return NULL;
    kart__numa_topo *t = topo_new("libnuma", n);
    struct bitmask *cpus = numa_allocate_cpumask();
    if (!t || !cpus) {
        if (t)
            topo_free(t);
        if (cpus)
            numa_free_cpumask(cpus);
        return NULL;
    }
    for (int id = 0, i = 0; id <= max; id++) {
        if (!numa_bitmask_isbitset(numa_nodes_ptr, (unsigned)id))
            continue;
        kart__numa_node *nd = &t->nodes[i++];
        nd->id = id;
        CPU_ZERO(&nd->cpus);
        if (numa_node_to_cpus(id, cpus) == 0)
            for (unsigned c = 0; c < cpus->size && c < CPU_SETSIZE; c++)
                if (numa_bitmask_isbitset(cpus, c))
                    CPU_SET(c, &nd->cpus);
    }
    numa_free_cpumask(cpus);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            t->dist[i * n + j] = numa_distance(t->nodes[i].id, t->nodes[j].id);
    topo_finish(t);
    return t;
}
#endif

static kart__numa_topo *load(void)
{
    const char *test = getenv("KART_NUMA_SYSFS");
    if (test && *test) {
        kart__numa_topo *t = load_sysfs(test, "test");
        if (t) {
            t->fake = true;
            kart__log(KART_LOG_INFO, "numa", "test topology from %s: %d nodes", test, t->n);
            return t;
        }
        kart__log(KART_LOG_WARNING, "numa",
                  "KART_NUMA_SYSFS=%s holds no nodeN directories: ignored", test);
    }
    kart__numa_topo *t = NULL;
#ifdef KART_HAVE_NUMA
    t = load_libnuma();
#endif
    if (!t)
        t = load_sysfs(SYSFS_NODES, "sysfs");
    if (!t)
        t = load_none();
    return t;
}

/* ---- the shared copy ---- */

static _Atomic(kart__numa_topo *) current;
static kart__numa_topo *retired; /* earlier ones, by reloads */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
/* Stands in when there is no memory for a topology: one node, no CPUs
 * known beyond CPU 0. */
static kart__numa_topo fallback;
static kart__numa_node fallback_node;
static int fallback_dist = KART_NUMA_LOCAL_DISTANCE;

kart__numa_topo *kart__numa_topo_get(void)
{
    kart__numa_topo *t = atomic_load_explicit(&current, memory_order_acquire);
    if (t)
        return t;
    pthread_mutex_lock(&load_lock);
    t = atomic_load_explicit(&current, memory_order_relaxed);
    if (!t) {
        t = load();
        if (!t) {
            t = &fallback;
            t->source = "none";
            t->n = 1;
            t->policy = -1;
            t->nodes = &fallback_node;
            t->dist = &fallback_dist;
            CPU_ZERO(&fallback_node.cpus);
            CPU_SET(0, &fallback_node.cpus);
            topo_finish(t);
        }
        atomic_store_explicit(&current, t, memory_order_release);
    }
    pthread_mutex_unlock(&load_lock);
    return t;
}

void kart__numa_reload(void)
{
    pthread_mutex_lock(&load_lock);
    kart__numa_topo *t = atomic_exchange(&current, NULL);
    if (t && t != &fallback) {
        t->older = retired;
        retired = t;
    }
    pthread_mutex_unlock(&load_lock);
}

int kart__numa_index(const kart__numa_topo *t, int node)
{
    if (node < 0)
        return -EINVAL;
    int lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->nodes[mid].id == node)
            return mid;
        if (t->nodes[mid].id < node)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -ENOENT;
}

/* ---- the public calls ---- */

KART_API const char *kart_numa_source(void)
{
    return kart__numa_topo_get()->source;
}

KART_API int kart_numa_available(void)
{
    return strcmp(kart_numa_source(), "none") != 0;
}

KART_API int kart_numa_node_count(void)
{
    return kart__numa_topo_get()->n;
}

KART_API int kart_numa_nodes(int *nodes, size_t max)
{
    if (!nodes && max > 0)
        return -EINVAL;
    const kart__numa_topo *t = kart__numa_topo_get();
    for (int i = 0; i < t->n && (size_t)i < max; i++)
        nodes[i] = t->nodes[i].id;
    return t->n;
}

KART_API int kart_numa_node_cpus(int node, cpu_set_t *cpus)
{
    if (!cpus)
        return -EINVAL;
    const kart__numa_topo *t = kart__numa_topo_get();
    int i = kart__numa_index(t, node);
    if (i < 0)
        return i;
    if (t->nodes[i].ncpus == 0)
        return -ENODEV;
    *cpus = t->nodes[i].cpus;
    return 0;
}

/* Reads "MemTotal:" and "MemFree:" (kB) from a node's meminfo. */
static int sysfs_node_memory(const char *root, int node, uint64_t *total, uint64_t *free_)
{
    char path[4096], line[256];
    snprintf(path, sizeof(path), "%s/node%d/meminfo", root, node);
    FILE *f = fopen(path, "re");
    if (!f)
        return -EIO;
    int found = 0;
    while (found != 3 && fgets(line, sizeof(line), f)) {
        /* "Node 0 MemTotal:        5597388 kB" */
        char key[64];
        unsigned long long kb;
        int id;
        if (sscanf(line, "Node %d %63s %llu", &id, key, &kb) != 3)
            continue;
        if (strcmp(key, "MemTotal:") == 0) {
            *total = (uint64_t)kb * 1024;
            found |= 1;
        } else if (strcmp(key, "MemFree:") == 0) {
            *free_ = (uint64_t)kb * 1024;
            found |= 2;
        }
    }
    fclose(f);
    return found == 3 ? 0 : -EIO;
}

KART_API int kart_numa_node_memory(int node, uint64_t *total, uint64_t *free_)
{
    const kart__numa_topo *t = kart__numa_topo_get();
    int i = kart__numa_index(t, node);
    if (i < 0)
        return i;
    uint64_t tot = 0, fr = 0;
    if (t->root) {
        int err = sysfs_node_memory(t->root, node, &tot, &fr);
        if (err < 0)
            return err;
    }
#ifdef KART_HAVE_NUMA
    else if (strcmp(t->source, "libnuma") == 0) {
        long long f = 0, s = numa_node_size64(node, &f);
        if (s < 0)
            return -EIO;
        tot = (uint64_t)s;
        fr = f > 0 ? (uint64_t)f : 0;
    }
#endif
    else {
        long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES);
        long page = sysconf(_SC_PAGESIZE);
        if (pages < 0 || avail < 0 || page <= 0)
            return -EIO;
        tot = (uint64_t)pages * (uint64_t)page;
        fr = (uint64_t)avail * (uint64_t)page;
    }
    if (total)
        *total = tot;
    if (free_)
        *free_ = fr;
    return 0;
}

KART_API int kart_numa_distance(int from, int to)
{
    const kart__numa_topo *t = kart__numa_topo_get();
    int i = kart__numa_index(t, from), j = kart__numa_index(t, to);
    if (i < 0 || j < 0)
        return i == -EINVAL || j == -EINVAL ? -EINVAL : -ENOENT;
    return t->dist[i * t->n + j];
}

KART_API int kart_numa_nodes_by_distance(int node, int *nodes, size_t max)
{
    if (!nodes && max > 0)
        return -EINVAL;
    const kart__numa_topo *t = kart__numa_topo_get();
    int from = kart__numa_index(t, node);
    if (from < 0)
        return from;
    /* Selection by (distance, id), the node itself first — n is small —
     * so that only max entries are written and no scratch array is needed. */
    const int *row = &t->dist[from * t->n];
#define KEY(j) ((j) == from ? -1 : row[j])
#define BEFORE(j, k) (KEY(j) < KEY(k) || (KEY(j) == KEY(k) && (j) < (k)))
    int last = -1;
    for (int k = 0; k < t->n && (size_t)k < max; k++) {
        int best = -1;
        for (int j = 0; j < t->n; j++)
            if ((last < 0 || BEFORE(last, j)) && (best < 0 || BEFORE(j, best)))
                best = j;
        nodes[k] = t->nodes[best].id;
        last = best;
    }
#undef BEFORE
#undef KEY
    return t->n;
}

KART_API int kart_numa_cpu_node(int cpu)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE)
        return -EINVAL;
    int node = kart__numa_topo_get()->cpu_node[cpu];
    return node >= 0 ? node : -ENOENT;
}

static int getcpu_raw(unsigned *cpu, unsigned *node)
{
    if (syscall(SYS_getcpu, cpu, node, NULL) != 0)
        return -errno;
    return 0;
}

KART_API int kart_numa_current_cpu(void)
{
    unsigned cpu, node;
    int err = getcpu_raw(&cpu, &node);
    return err < 0 ? err : (int)cpu;
}

KART_API int kart_numa_current_node(void)
{
    unsigned cpu, node;
    int err = getcpu_raw(&cpu, &node);
    if (err < 0)
        return err;
    const kart__numa_topo *t = kart__numa_topo_get();
    if (!t->fake)
        return (int)node;
    return cpu < CPU_SETSIZE && t->cpu_node[cpu] >= 0 ? t->cpu_node[cpu] : -ENOENT;
}

/*
 * numa/topology.c — how many NUMA nodes this machine has. libnuma when
 * built with it; otherwise the node directories in sysfs, which is what
 * libnuma reads too; otherwise one node. numa/ depends on nothing else in
 * the library.
 */
#define KART_BUILDING 1
#include <kart/numa.h>

#include <stdbool.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef KART_HAVE_NUMA
#include <numa.h>
#endif

static int sysfs_node_count(void)
{
    DIR *d = opendir("/sys/devices/system/node");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        if (strncmp(e->d_name, "node", 4) == 0 && e->d_name[4] &&
            (strtol(e->d_name + 4, &end, 10), *end == '\0'))
            n++;
    }
    closedir(d);
    return n;
}

KART_API const char *kart_numa_source(void)
{
#ifdef KART_HAVE_NUMA
    if (numa_available() >= 0)
        return "libnuma";
#endif
    return sysfs_node_count() > 0 ? "sysfs" : "none";
}

KART_API int kart_numa_available(void)
{
    return strcmp(kart_numa_source(), "none") != 0;
}

KART_API int kart_numa_node_count(void)
{
#ifdef KART_HAVE_NUMA
    if (numa_available() >= 0) {
        int n = numa_num_configured_nodes();
        return n > 0 ? n : 1;
    }
#endif
    int n = sysfs_node_count();
    return n > 0 ? n : 1;
}

/* Parses a kernel CPU list ("0-3,8,10-11") into cpus; false if malformed. */
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
        s = *end == ',' ? end + 1 : end;
    }
    return true;
}

KART_API int kart_numa_node_cpus(int node, cpu_set_t *cpus)
{
    if (!cpus || node < 0)
        return -EINVAL;
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", node);
    FILE *f = fopen(path, "re");
    if (f) {
        bool ok = fgets(buf, sizeof(buf), f) && parse_cpulist(buf, cpus);
        fclose(f);
        return ok && CPU_COUNT(cpus) > 0 ? 0 : -ENOENT;
    }
    /* No node directories at all: the machine is one node. */
    if (node != 0 || sysfs_node_count() > 0)
        return -ENOENT;
    long n = sysconf(_SC_NPROCESSORS_CONF);
    CPU_ZERO(cpus);
    for (long c = 0; c < n && c < CPU_SETSIZE; c++)
        CPU_SET((size_t)c, cpus);
    return CPU_COUNT(cpus) > 0 ? 0 : -ENOENT;
}

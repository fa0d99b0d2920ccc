/*
 * numa/topology.c — how many NUMA nodes this machine has. libnuma when
 * built with it; otherwise the node directories in sysfs, which is what
 * libnuma reads too; otherwise one node. numa/ depends on nothing else in
 * the library.
 */
#define KART_BUILDING 1
#include <kart/numa.h>

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

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

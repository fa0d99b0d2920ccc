/*
 * core/cpucount.c — how many CPUs this process may really use.
 *
 * The affinity mask says which CPUs the scheduler may run it on; a cgroup
 * v2 CPU quota (cpu.max: "QUOTA PERIOD", or "max PERIOD" for none) caps how
 * much CPU time it gets per period, whatever the mask. A container given
 * "200000 100000" on a 64-CPU host can use 2 CPUs' worth: a pool sized 64
 * would be throttled. The count is the smaller of the two, the quota
 * rounded up (1.5 CPUs of quota still let 2 threads make progress), and
 * every cgroup from the process's own up to the root may set a quota: the
 * smallest wins.
 *
 * The cgroup path comes from /proc/self/cgroup's "0::PATH" line (cgroup
 * v2; v1's controller lines are skipped), the files from /sys/fs/cgroup.
 * Inside a cgroup namespace both are relative to the namespace's root, which
 * is what a container sees.
 */
#include "process_private.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The process's cgroup v2 path ("/a/b") into buf; false when none. */
static bool cgroup_path(const char *root, char *buf, size_t size)
{
    char file[PATH_MAX];
    snprintf(file, sizeof(file), "%s/proc/self/cgroup", root);
    FILE *f = fopen(file, "re");
    if (!f)
        return false;
    char line[PATH_MAX + 32];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "0::", 3) != 0)
            continue;
        char *path = line + 3;
        path[strcspn(path, "\n")] = '\0';
        if (path[0] == '/' && strlen(path) < size) {
            strcpy(buf, path);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* The quota in CPUs (rounded up) set by dir's cpu.max, or INT_MAX for no
 * quota, no file, or one that does not parse. */
static int quota_cpus(const char *root, const char *dir)
{
    char file[PATH_MAX + 64];
    snprintf(file, sizeof(file), "%s/sys/fs/cgroup%s/cpu.max", root, dir);
    FILE *f = fopen(file, "re");
    if (!f)
        return INT_MAX;
    char quota[32];
    long long period;
    int n = fscanf(f, "%31s %lld", quota, &period);
    fclose(f);
    if (n != 2 || period <= 0 || strcmp(quota, "max") == 0)
        return INT_MAX;
    char *end;
    long long q = strtoll(quota, &end, 10);
    if (*end || q <= 0)
        return INT_MAX;
    long long cpus = (q + period - 1) / period;
    return cpus > INT_MAX ? INT_MAX : (int)cpus;
}

int kart__cpu_count_at(const char *root, int affinity_cpus)
{
    int count = affinity_cpus > 0 ? affinity_cpus : 1;
    char path[PATH_MAX];
    if (!cgroup_path(root, path, sizeof(path)))
        return count;
    /* From the process's own cgroup up to the root, "/" included. */
    for (;;) {
        int q = quota_cpus(root, strcmp(path, "/") == 0 ? "" : path);
        if (q < count)
            count = q;
        if (strcmp(path, "/") == 0)
            break;
        char *slash = strrchr(path, '/');
        if (slash == path)
            path[1] = '\0';
        else
            *slash = '\0';
    }
    return count;
}

static int affinity_count(void)
{
    /* Machines with more CPUs than a cpu_set_t holds need a bigger mask. */
    for (size_t ncpu = CPU_SETSIZE; ncpu <= (size_t)1 << 20; ncpu *= 2) {
        size_t size = CPU_ALLOC_SIZE(ncpu);
        cpu_set_t *set = CPU_ALLOC(ncpu);
        if (!set)
            break;
        if (sched_getaffinity(0, size, set) == 0) {
            int n = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return n;
        }
        CPU_FREE(set);
        if (errno != EINVAL)
            break;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

KART_API int kart_cpu_count(void)
{
    return kart__cpu_count_at("", affinity_count());
}

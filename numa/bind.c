/*
 * numa/bind.c — binding a thread to CPUs or to a node's CPUs
 * (sched_setaffinity). The kernel drops CPUs the machine lacks or the
 * cpuset forbids, and refuses (EINVAL) a set left empty.
 */
#define KART_BUILDING 1
#include "topo.h"

#include <errno.h>

KART_API int kart_numa_bind_thread(pid_t tid, const cpu_set_t *cpus)
{
    if (!cpus || tid < 0 || CPU_COUNT(cpus) == 0)
        return -EINVAL;
    if (sched_setaffinity(tid, sizeof(*cpus), cpus) != 0)
        return -errno;
    return 0;
}

KART_API int kart_numa_bind_thread_node(pid_t tid, int node)
{
    if (tid < 0)
        return -EINVAL;
    cpu_set_t cpus;
    int err = kart_numa_node_cpus(node, &cpus);
    if (err < 0)
        return err;
    return kart_numa_bind_thread(tid, &cpus);
}

KART_API int kart_numa_thread_cpus(pid_t tid, cpu_set_t *cpus)
{
    if (!cpus || tid < 0)
        return -EINVAL;
    if (sched_getaffinity(tid, sizeof(*cpus), cpus) != 0)
        return -errno;
    return 0;
}

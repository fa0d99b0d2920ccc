/*
 * kart/numa.h — the machine's NUMA shape, as far as the foundation needs
 * it: whether NUMA is available and how many memory nodes there are. The
 * NUMA-aware pools build on this module.
 *
 * The numbers come from libnuma when kart was built with it (NUMA=1, the
 * default when libnuma is found), else from /sys/devices/system/node, else
 * the machine counts as one node.
 */
#ifndef KART_NUMA_H
#define KART_NUMA_H

#include <kart/common.h>
#include <sched.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if the kernel reports NUMA nodes (even just one), 0 if not. */
KART_API int kart_numa_available(void);

/* The number of memory nodes, at least 1. */
KART_API int kart_numa_node_count(void);

/*
 * Stores in *cpus the CPUs of memory node `node` (from
 * /sys/devices/system/node/nodeN/cpulist; on a machine without NUMA
 * information, node 0 holds every configured CPU).
 * Errors: -EINVAL (cpus NULL, node negative), -ENOENT (no such node, or a
 * node without CPUs).
 */
KART_API int kart_numa_node_cpus(int node, cpu_set_t *cpus);

/* "libnuma", "sysfs" or "none": where the figures above come from. */
KART_API const char *kart_numa_source(void);

#ifdef __cplusplus
}
#endif
#endif

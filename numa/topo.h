/*
 * numa/topo.h — the topology numa/topology.c reads once and the other
 * numa/ files share. Private to numa/, which uses nothing else in the
 * library but kart__log (the runtime's log).
 */
#ifndef KART_NUMA_TOPO_H
#define KART_NUMA_TOPO_H

#include <kart/numa.h>

#include <stdbool.h>

/* One memory node. */
typedef struct kart__numa_node {
    int id;
    int ncpus;
    cpu_set_t cpus;
} kart__numa_node;

/* What kart_numa_* answer from; immutable once published but for the
 * policy probe's cache. */
typedef struct kart__numa_topo {
    const char *source;            /* "libnuma", "sysfs", "none", "test" */
    char *root;                    /* the node directory for meminfo (sysfs, test) */
    bool fake;                     /* a "test" tree: no real placement */
    int n;                         /* number of nodes */
    kart__numa_node *nodes;        /* ascending id */
    int *dist;                     /* n × n, by index: dist[i * n + j] */
    int cpu_node[CPU_SETSIZE];     /* node id of each CPU, -1 for none */
    _Atomic int policy;            /* kart_numa_policy_available: -1 until probed */
    struct kart__numa_topo *older; /* earlier ones, kept by reloads */
} kart__numa_topo;

/* The topology, read at the first call. Never NULL: when even memory for
 * it is lacking, a static one-node topology stands in. */
kart__numa_topo *kart__numa_topo_get(void);

/* The index of node id `node` in t->nodes: -EINVAL when negative, -ENOENT
 * when absent. */
int kart__numa_index(const kart__numa_topo *t, int node);

/* Lines in the runtime's log (kart/log.h) under "numa": kart__log. */
#include "debug.h"

#endif

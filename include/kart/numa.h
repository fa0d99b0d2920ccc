/*
 * kart/numa.h — the machine's NUMA shape and placement: memory nodes, the
 * CPUs and memory of each, the distances between them, which node a CPU
 * belongs to and where the caller runs now; binding threads to CPUs or to
 * a node; memory allocated on a node or interleaved over nodes. The
 * NUMA-aware pools build on this module.
 *
 * Where the facts come from (kart_numa_source()):
 *   - "libnuma" when kart was built with it (NUMA=1, the default when
 *     libnuma is found) and numa_available() says the kernel has NUMA;
 *   - "sysfs": /sys/devices/system/node, what libnuma reads too;
 *   - "none": neither; the machine counts as one node 0 holding every
 *     configured CPU and all memory;
 *   - "test": the environment variable KART_NUMA_SYSFS names a directory
 *     shaped like /sys/devices/system/node (nodeN/cpulist, nodeN/distance,
 *     nodeN/meminfo); its nodes replace the machine's, so that multi-node
 *     logic runs on a one-node machine. tests/numa/topo-* are such trees.
 * The topology is read once, at the first call of any function here, and
 * kept: CPU or node hotplug later is not seen. Memory figures
 * (kart_numa_node_memory) are read afresh on each call.
 *
 * Node ids are the kernel's; they need not be contiguous (kart_numa_nodes
 * lists them). A node may have memory and no CPUs (a memory-only node,
 * such as CXL memory), or CPUs and no memory.
 *
 * Errors, the same for every function taking a node: a negative node is
 * -EINVAL; a node id the topology does not hold is -ENOENT.
 *
 * Memory placement (kart_numa_alloc_*, kart_numa_bind_memory) uses the
 * mbind(2) system call directly, in every build. Where the kernel refuses
 * memory policies — containers deny mbind without CAP_SYS_NICE (EPERM), a
 * kernel without NUMA (ENOSYS) — or under a "test" topology (its nodes are
 * not the machine's), the memory is still given, the call returns 0 and
 * its `bound` out parameter (which may be NULL) says false; with
 * KART_DEBUG set, a line on stderr says why. Memory is never the worse for it: it is ordinary memory,
 * placed where the kernel's default policy (first touch) puts it.
 *
 * Threads (API rule 10): every function is thread-safe; the first call
 * reads the topology under a lock, later ones only read it. Fork: the child inherits the
 * topology read so far, CPU bindings (the calling thread's) and the memory
 * policy of inherited mappings; memory from kart_numa_alloc_* is private
 * (copy-on-write) like malloc's.
 */
#ifndef KART_NUMA_H
#define KART_NUMA_H

#include <kart/common.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The distance of a node to itself, as ACPI SLIT and the kernel report it;
 * other nodes are farther (typically 12–40). */
#define KART_NUMA_LOCAL_DISTANCE 10

/* ---- topology ---- */

/* 1 if the node facts come from the kernel or a test tree (source
 * "libnuma", "sysfs" or "test"), 0 if kart assumes one node ("none"). */
KART_API int kart_numa_available(void);

/* The number of memory nodes, at least 1. */
KART_API int kart_numa_node_count(void);

/* "libnuma", "sysfs", "none" or "test": where the facts come from. */
KART_API const char *kart_numa_source(void);

/*
 * Stores the ids of the nodes, ascending, in nodes[0 .. min(max, count)),
 * and returns count, the number of nodes (so a short array can be sized
 * and called again, as with snprintf).
 * Errors: -EINVAL (nodes NULL with max > 0).
 */
KART_API int kart_numa_nodes(int *nodes, size_t max);

/*
 * Stores in *cpus the CPUs of node `node` (on a machine without NUMA
 * information, node 0 holds every configured CPU).
 * Errors: -EINVAL (cpus NULL, node negative), -ENOENT (no such node),
 * -ENODEV (a node without CPUs: a memory-only node).
 */
KART_API int kart_numa_node_cpus(int node, cpu_set_t *cpus);

/*
 * The memory of node `node` in bytes: *total (MemTotal) and *free
 * (MemFree), read now from nodeN/meminfo (or libnuma; for source "none",
 * the whole machine's). Either pointer may be NULL. A CPU-only node has
 * total 0.
 * Errors: -EINVAL (node negative), -ENOENT (no such node), -EIO (the
 * node's meminfo could not be read or parsed).
 */
KART_API int kart_numa_node_memory(int node, uint64_t *total, uint64_t *free);

/*
 * The distance from node `from` to node `to`, as the firmware's SLIT gives
 * it: KART_NUMA_LOCAL_DISTANCE (10) from a node to itself, more for
 * farther nodes. The table may be asymmetric; this is from's row. Without
 * a distance table: 10 to itself, 20 to any other node.
 * Errors: -EINVAL (a node negative), -ENOENT (no such node).
 */
KART_API int kart_numa_distance(int from, int to);

/*
 * Stores the ids of all nodes, nearest to `node` first (`node` itself
 * leads; ties in ascending id), in nodes[0 .. min(max, count)) and returns
 * count, the number of nodes. The order in which a worker of `node` should
 * look for work or memory elsewhere.
 * Errors: -EINVAL (node negative, or nodes NULL with max > 0), -ENOENT
 * (no such node).
 */
KART_API int kart_numa_nodes_by_distance(int node, int *nodes, size_t max);

/*
 * The node that CPU `cpu` belongs to.
 * Errors: -EINVAL (cpu negative or not below CPU_SETSIZE), -ENOENT (no
 * node lists that CPU).
 */
KART_API int kart_numa_cpu_node(int cpu);

/* The CPU the calling thread runs on now (getcpu(2); it may move right
 * after). Errors: the negative errno of getcpu(2) (-ENOSYS). */
KART_API int kart_numa_current_cpu(void);

/*
 * The node the calling thread runs on now: the kernel's answer (getcpu),
 * or under a "test" topology the node that lists the current CPU.
 * Errors: the negative errno of getcpu(2); -ENOENT under a "test"
 * topology that lists no node for the current CPU.
 */
KART_API int kart_numa_current_node(void);

/* ---- thread binding ---- */

/*
 * Binds thread `tid` (0: the calling thread; else a kernel thread id, as
 * gettid() gives, or a process id, which names that process's main thread
 * only) to the CPUs in *cpus (sched_setaffinity). CPUs in the set that the
 * machine lacks are ignored while at least one exists.
 * Errors: -EINVAL (cpus NULL or empty, tid negative, or no CPU of the set
 * exists or may be used here), -ESRCH (no such thread), -EPERM (not
 * allowed to change another process's thread).
 */
KART_API int kart_numa_bind_thread(pid_t tid, const cpu_set_t *cpus);

/*
 * Binds thread `tid` (as above) to the CPUs of node `node`.
 * Errors: -EINVAL (node or tid negative, or none of the node's CPUs exists
 * on this machine, as with a "test" topology naming CPUs it lacks),
 * -ENOENT (no such node), -ENODEV (a node without CPUs), -ESRCH, -EPERM
 * (as above).
 */
KART_API int kart_numa_bind_thread_node(pid_t tid, int node);

/*
 * Stores in *cpus the CPUs thread `tid` (0: the caller) may run on
 * (sched_getaffinity): to restore a binding later.
 * Errors: -EINVAL (cpus NULL, tid negative), -ESRCH (no such thread).
 */
KART_API int kart_numa_thread_cpus(pid_t tid, cpu_set_t *cpus);

/* ---- memory ---- */

/*
 * Maps `size` bytes of zeroed private anonymous memory (mmap; a multiple
 * of the page size is used) whose pages are to come from node `node`
 * (mbind MPOL_PREFERRED: from that node while it has free memory, else
 * from the nearest that has). Pages are placed when first touched. Sets
 * *out, to be given back with kart_numa_free(*out, size), and *bound (if
 * bound is not NULL): true when the node policy was applied, false when
 * the memory is ordinary memory (see the top of this file).
 * Errors (*out is then NULL and nothing is left mapped): -EINVAL (out
 * NULL, size 0, node negative), -ENOENT (no such node), -ENOMEM (mmap
 * failed).
 */
KART_API int kart_numa_alloc_onnode(void **out, size_t size, int node, bool *bound);

/*
 * As kart_numa_alloc_onnode, but pages are spread page by page over the
 * `nnodes` nodes in `nodes` (MPOL_INTERLEAVE); nodes NULL and nnodes 0
 * mean every node that has memory. *bound as above.
 * Errors (*out is then NULL): -EINVAL (out NULL, size 0, nodes NULL with
 * nnodes > 0, nodes not NULL with nnodes 0, a node negative), -ENOENT (a
 * node that does not exist), -ENOMEM.
 */
KART_API int kart_numa_alloc_interleaved(void **out, size_t size, const int *nodes, size_t nnodes,
                                         bool *bound);

/*
 * Unmaps memory from kart_numa_alloc_*; size as given there. NULL, size
 * 0 and a pointer that is not page-aligned (none that kart_numa_alloc_*
 * gave) do nothing.
 */
KART_API void kart_numa_free(void *p, size_t size);

/*
 * Makes node `node` the preferred node of the existing mapped range
 * [addr, addr + len) (len rounded up to whole pages) — for shared memory,
 * files mapped by kart's mmap, pool buffers — and moves the pages already
 * touched there when the kernel allows (MPOL_MF_MOVE: pages this process
 * alone maps). *bound (if not NULL): true when the policy was applied,
 * false when it was refused here (the pages stay where they are).
 * Errors: -EINVAL (addr NULL or not page-aligned, len 0 or past the end
 * of the address space, node negative), -ENOENT (no such node), -EFAULT
 * (part of the range is not mapped),
 * -ENOMEM (the kernel ran out of memory).
 */
KART_API int kart_numa_bind_memory(void *addr, size_t len, int node, bool *bound);

/*
 * The node that holds the page at addr now (move_pages(2) in query mode;
 * nothing moves). Always the machine's real node, also under a "test"
 * topology. To check where memory landed.
 * Errors: -EINVAL (addr NULL), -ENOENT (the page was never touched;
 * kernels before 6.5 say -EFAULT), -EFAULT (addr not mapped; also a page
 * only read so far, the shared zero page, on the kernels that refuse to
 * place it; others, 6.18 for one, report the zero page's node),
 * -ENOSYS / -EPERM (the kernel or a container refuses the query).
 */
KART_API int kart_numa_memory_node(const void *addr);

/* 1 if this process may set memory policies (mbind works here), 0 if the
 * kernel or a container refuses them, so that the placement calls report
 * *bound false. Probed once. Under a "test" topology: 0. */
KART_API int kart_numa_policy_available(void);

#ifdef __cplusplus
}
#endif
#endif

/*
 * numa/memory.c — memory placed on a node or interleaved over nodes:
 * mmap, then mbind(2) through the raw system call (the same in builds
 * with and without libnuma). A refused policy (EPERM in containers
 * without CAP_SYS_NICE, ENOSYS without NUMA, EINVAL for a node with no
 * memory this process may use) leaves ordinary memory and says so through
 * the calls' `bound` out parameter; a test topology never applies
 * policies (its nodes are not the machine's).
 */
#define KART_BUILDING 1
#include "debug.h"
#include "topo.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* <numaif.h>'s values, which are the kernel ABI; spelled out so that a
 * build without libnuma's headers has them. */
enum {
    MODE_DEFAULT = 0,
    MODE_PREFERRED = 1,
    MODE_INTERLEAVE = 3,
    FLAG_MOVE = 1 << 1,
};

/* Node masks as mbind takes them: 1024 bits, the kernel's largest
 * MAX_NUMNODES (NODES_SHIFT 10). */
#define MASK_BITS 1024
#define LONG_BITS (8 * (int)sizeof(unsigned long))
typedef struct {
    unsigned long bits[MASK_BITS / (8 * sizeof(unsigned long))];
} nodemask;

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static size_t round_pages(size_t len)
{
    size_t p = page_size();
    return len > SIZE_MAX - (p - 1) ? 0 : (len + p - 1) & ~(p - 1);
}

/* mbind(addr, len, mode, mask); 0 or a negative errno. */
static int do_mbind(void *addr, size_t len, int mode, const nodemask *mask, unsigned flags)
{
    long r = syscall(SYS_mbind, addr, len, mode, mask ? mask->bits : NULL,
                     mask ? (unsigned long)MASK_BITS + 1 : 0UL, flags);
    return r == 0 ? 0 : -errno;
}

/* Whether a failed mbind means "no policy here" (fall back) rather than a
 * fault of the caller's range. */
static bool refused(int err)
{
    return err == -EPERM || err == -ENOSYS || err == -EINVAL || err == -EACCES;
}

/* ---- the probe ---- */

KART_API int kart_numa_policy_available(void)
{
    kart__numa_topo *t = kart__numa_topo_get();
    int v = atomic_load(&t->policy);
    if (v >= 0)
        return v;
    v = 0;
    if (!t->fake) {
        /* MPOL_DEFAULT on a page of our own: refused only where policies
         * are (seccomp's EPERM, ENOSYS). */
        size_t p = page_size();
        void *m = mmap(NULL, p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            int err = do_mbind(m, p, MODE_DEFAULT, NULL, 0);
            v = err == 0;
            if (err < 0)
                kart__log(KART_LOG_INFO, "numa", "memory policies refused here (mbind: %s)",
                          strerror(-err));
            munmap(m, p);
        }
    }
    atomic_store(&t->policy, v);
    return v;
}

/* ---- placement ---- */

/* Applies mode/mask to [addr, len). 0 with *bound true when applied, or
 * false when refused (or a test topology), else the negative errno. */
static int place(void *addr, size_t len, int mode, const nodemask *mask, unsigned flags,
                 const char *what, bool *bound)
{
    *bound = false;
    if (kart__numa_topo_get()->fake) {
        kart__log(KART_LOG_DEBUG, "numa", "%s: test topology, memory policy not applied", what);
        return 0;
    }
    int err = do_mbind(addr, len, mode, mask, flags);
    if (err == 0) {
        *bound = true;
        return 0;
    }
    if (refused(err)) {
        kart__log(KART_LOG_WARNING, "numa", "%s: mbind refused (%s), memory policy not applied",
                  what, strerror(-err));
        return 0;
    }
    return err;
}

/* Adds node to mask after checking it against the topology. */
static int mask_add(nodemask *mask, int node)
{
    int i = kart__numa_index(kart__numa_topo_get(), node);
    if (i < 0)
        return i;
    if (node >= MASK_BITS)
        return -EINVAL;
    mask->bits[node / LONG_BITS] |= 1UL << (node % LONG_BITS);
    return 0;
}

static int alloc_with(void **out, size_t size, int mode, const nodemask *mask, const char *what,
                      bool *bound)
{
    size_t len = round_pages(size);
    if (len == 0)
        return -ENOMEM;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    bool b;
    int rc = place(p, len, mode, mask, 0, what, &b);
    if (rc < 0) {
        munmap(p, len);
        return rc;
    }
    *out = p;
    if (bound)
        *bound = b;
    return 0;
}

KART_API int kart_numa_alloc_onnode(void **out, size_t size, int node, bool *bound)
{
    if (out)
        *out = NULL;
    if (!out || size == 0)
        return -EINVAL;
    nodemask mask = {{0}};
    int err = mask_add(&mask, node);
    if (err < 0)
        return err;
    return alloc_with(out, size, MODE_PREFERRED, &mask, "alloc_onnode", bound);
}

KART_API int kart_numa_alloc_interleaved(void **out, size_t size, const int *nodes, size_t nnodes,
                                         bool *bound)
{
    if (out)
        *out = NULL;
    if (!out || size == 0 || (!nodes) != (nnodes == 0))
        return -EINVAL;
    nodemask mask = {{0}};
    const kart__numa_topo *t = kart__numa_topo_get();
    for (size_t i = 0; i < (nodes ? nnodes : (size_t)t->n); i++) {
        int err = mask_add(&mask, nodes ? nodes[i] : t->nodes[i].id);
        if (err < 0)
            return err;
    }
    return alloc_with(out, size, MODE_INTERLEAVE, &mask, "alloc_interleaved", bound);
}

KART_API void kart_numa_free(void *p, size_t size)
{
    /* Teardown returns nothing (API rule 7): a pointer or size that
     * kart_numa_alloc_* never gave is ignored rather than unmapping
     * what is not ours. */
    size_t len = round_pages(size);
    if (!p || len == 0 || ((uintptr_t)p & (page_size() - 1)) != 0)
        return;
    munmap(p, len);
}

KART_API int kart_numa_bind_memory(void *addr, size_t len, int node, bool *bound)
{
    if (!addr || len == 0 || ((uintptr_t)addr & (page_size() - 1)) != 0)
        return -EINVAL;
    nodemask mask = {{0}};
    int err = mask_add(&mask, node);
    if (err < 0)
        return err;
    size_t rlen = round_pages(len);
    if (rlen == 0)
        return -EINVAL;
    /* An unmapped hole is the caller's fault, even where policies are
     * refused: check it the same way everywhere (msync MS_ASYNC does
     * nothing else on Linux). */
    if (msync(addr, rlen, MS_ASYNC) != 0)
        return errno == ENOMEM ? -EFAULT : -errno;
    bool b;
    int rc = place(addr, rlen, MODE_PREFERRED, &mask, FLAG_MOVE, "bind_memory", &b);
    if (rc == 0 && bound)
        *bound = b;
    return rc;
}

KART_API int kart_numa_memory_node(const void *addr)
{
    if (!addr)
        return -EINVAL;
    void *page = (void *)((uintptr_t)addr & ~(uintptr_t)(page_size() - 1));
    int status = -1;
    if (syscall(SYS_move_pages, 0, 1UL, &page, NULL, &status, 0) != 0)
        return -errno;
    return status;
}

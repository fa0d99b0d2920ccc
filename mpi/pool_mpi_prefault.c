/*
 * mpi/pool_mpi_prefault.c — the root readies the pages a map's results
 * will be written to while it waits for them.
 *
 * Why: a map's output is often fresh memory (calloc, a new mapping), and
 * the first write to each page faults. The root's progress thread, the
 * only thread of the root that calls MPI, copies every result into
 * place; on this VM a fault costs ~10 us, 3.6-4.5 ms for 1.5 MB, during
 * which no rank's message moves (traced across two namespaces over TCP:
 * 16 ms between taking a 1.5 MB result and sending that rank its next
 * chunk). While results are due and nothing has arrived, the thread is
 * idle anyway: it populates the output of the chunks in flight, a bounded
 * slice per idle turn, with MADV_POPULATE_WRITE (Linux 5.14), which maps
 * the pages writable without changing their contents. Elsewhere, or when
 * the kernel refuses, nothing happens and the faults come with the copy.
 */
#include "pool_mpi_private.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__linux__) && !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23
#endif

/* Bytes populated per idle turn: ~128 pages, a fraction of a millisecond,
 * so that a result that arrives meanwhile waits little. */
#define SLICE (512 * 1024)

bool kart__mpi_prefault_some(kart_mpi_pool *p)
{
#ifdef MADV_POPULATE_WRITE
    static _Atomic int unsupported;
    if (unsupported)
        return false;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    size_t budget = SLICE;
    bool did = false;
    for (int r = 0; r < p->size && budget; r++) {
        for (kart__mpi_chunk *c = p->ranks[r].chunks; c && budget; c = c->next) {
            kart__mpi_job *j = c->job;
            if (c->prefaulted || !j->out || !j->out_size)
                continue;
            uintptr_t from = (uintptr_t)(j->out + c->first * j->out_size) + c->prefault_done;
            uintptr_t end = (uintptr_t)(j->out + (c->first + c->n) * j->out_size);
            uintptr_t to = end - from > budget ? from + budget : end;
            uintptr_t a = from & ~(page - 1), b = (to + page - 1) & ~(page - 1);
            if (madvise((void *)a, b - a, MADV_POPULATE_WRITE) != 0 && errno == EINVAL) {
                unsupported = 1; /* before 5.14: not a known advice */
                return did;
            }
            /* Other errors (a read-only or file-backed range the kernel
             * will not populate): the copy faults as it would have. */
            budget -= to - from;
            c->prefault_done += to - from;
            c->prefaulted = to == end;
            did = true;
        }
    }
    return did;
#else
    (void)p;
    return false;
#endif
}

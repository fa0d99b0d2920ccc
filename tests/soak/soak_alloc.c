/*
 * tests/soak/soak_alloc.c — counts the allocations of the calling thread,
 * so that the soak can check that its own sampler allocates nothing: the
 * sampler runs on the main thread, alone on the C library's main heap, and
 * that heap's resident pages are part of what it measures (soak_proc.c).
 *
 * The counting is tests/kt_alloc.c's, shared with check_pool. Not under
 * AddressSanitizer or ThreadSanitizer, which replace the allocator
 * themselves: there soak_thread_mallocs() returns -1 and the check is
 * skipped (said so in the output).
 */
#include "soak.h"

#include "../kt_alloc.h"

long soak_thread_mallocs(void)
{
#if KT_COUNT_MALLOC
    return kt_mallocs_thread();
#else
    return -1;
#endif
}

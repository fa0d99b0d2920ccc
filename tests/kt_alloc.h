/*
 * tests/kt_alloc.h — counting a program's allocations, for the checks
 * that a path allocates nothing (check_pool's steady submit, the soak's
 * sampler). kt_alloc.c replaces glibc's malloc family (the documented way:
 * an executable that defines malloc, free, calloc and realloc; glibc then
 * calls them too) with wrappers that count each call and hand it to
 * glibc's own. Not under AddressSanitizer, ThreadSanitizer or
 * MemorySanitizer, which replace the allocator themselves, nor in a static
 * link (KART_TEST_STATIC, the QEMU NUMA guest's), where libc.a's malloc.o
 * defines the same names: there KT_COUNT_MALLOC is 0 and none of this
 * exists. Linked into each program that uses it (the Makefile's tidy
 * block, and the soak's rule).
 */
#ifndef KART_TESTS_KT_ALLOC_H
#define KART_TESTS_KT_ALLOC_H

#include <stdbool.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(KART_TEST_STATIC)
#define KT_COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define KT_COUNT_MALLOC 0
#endif
#endif
#ifndef KT_COUNT_MALLOC
#define KT_COUNT_MALLOC 1
#endif

#if KT_COUNT_MALLOC
/* Turns the process-wide count on or off: while on, every allocation by
 * any thread adds one. */
void kt_mallocs_count(bool on);

/* The process-wide count, set back to zero. */
long kt_mallocs_take(void);

/* The allocations the calling thread has made since it started, counted
 * always (a thread-local count: reading it allocates nothing). */
long kt_mallocs_thread(void);
#endif

#endif

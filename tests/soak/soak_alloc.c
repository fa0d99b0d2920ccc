/*
 * tests/soak/soak_alloc.c — counts the allocations of the calling thread,
 * so that the soak can check that its own sampler allocates nothing: the
 * sampler runs on the main thread, alone on the C library's main heap, and
 * that heap's resident pages are part of what it measures (soak_proc.c).
 *
 * malloc and its kin are defined here and handed to glibc's own, as
 * check_pool does. Not under AddressSanitizer or ThreadSanitizer, which
 * replace the allocator themselves: there soak_thread_mallocs() returns
 * -1 and the check is skipped (said so in the output).
 */
#include "soak.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define COUNT_MALLOC 0
#endif
#endif
#ifndef COUNT_MALLOC
#define COUNT_MALLOC 1
#endif

#if COUNT_MALLOC
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t count, size_t n);
extern void *__libc_realloc(void *ptr, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *ptr);

/* initial-exec: the executable's own TLS, at a fixed offset from the
 * thread pointer from the first instruction on (no allocation to reach
 * it, which a malloc could not afford). */
static __thread long mallocs __attribute__((tls_model("initial-exec")));

void *malloc(size_t n)
{
    mallocs++;
    return __libc_malloc(n);
}

void *calloc(size_t count, size_t n)
{
    mallocs++;
    return __libc_calloc(count, n);
}

void *realloc(void *ptr, size_t n)
{
    mallocs++;
    return __libc_realloc(ptr, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    mallocs++;
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    mallocs++;
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    mallocs++;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *ptr)
{
    __libc_free(ptr);
}

long soak_thread_mallocs(void)
{
    return mallocs;
}
#else
long soak_thread_mallocs(void)
{
    return -1;
}
#endif

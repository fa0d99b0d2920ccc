/* tests/kt_alloc.c — see kt_alloc.h. */
#include "kt_alloc.h"

#if KT_COUNT_MALLOC
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t count, size_t n);
extern void *__libc_realloc(void *ptr, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *ptr);

static _Atomic int counting;
static _Atomic long mallocs;

/* initial-exec: the executable's own TLS, at a fixed offset from the
 * thread pointer from the first instruction on (no allocation to reach
 * it, which a malloc could not afford). */
static __thread long thread_mallocs __attribute__((tls_model("initial-exec")));

static inline void count_one(void)
{
    thread_mallocs++;
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
}

void *malloc(size_t n)
{
    count_one();
    return __libc_malloc(n);
}

void *calloc(size_t count, size_t n)
{
    count_one();
    return __libc_calloc(count, n);
}

void *realloc(void *ptr, size_t n)
{
    count_one();
    return __libc_realloc(ptr, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    count_one();
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    count_one();
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    count_one();
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

void kt_mallocs_count(bool on)
{
    atomic_store(&counting, on);
}

long kt_mallocs_take(void)
{
    return atomic_exchange(&mallocs, 0);
}

long kt_mallocs_thread(void)
{
    return thread_mallocs;
}
#endif

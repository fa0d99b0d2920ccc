/*
 * core/futex.c — the per-thread id cache of core/futex.h, and its reset
 * in fork children: the child's only thread has a new kernel id, and a
 * stale one would make it look like the owner of locks its parent holds.
 */
#include "futex.h"

#include <sys/syscall.h>

#include <pthread.h>

_Thread_local uint32_t kart__tid_cache __attribute__((tls_model("initial-exec")));

uint32_t kart__tid_slow(void)
{
#if defined(__linux__)
    return (uint32_t)syscall(SYS_gettid);
#else
    static _Atomic uint32_t next = 1;
    return atomic_fetch_add(&next, 1);
#endif
}

static void forget_tid(void)
{
    kart__tid_cache = 0;
}

/* A priority: a function spawned from a statically linked program runs in
 * the program's first constructor without one (kart/process.h). */
__attribute__((constructor(104))) static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, forget_tid);
}

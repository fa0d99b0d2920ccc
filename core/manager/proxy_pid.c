/*
 * core/manager/proxy_pid.c — the process id for proxy.c's fork checks,
 * without a system call per method call (glibc's getpid() asks the kernel
 * every time, which on a paravirtualised VM costs about a microsecond).
 * Cached on first use; a pthread_atfork child handler, registered before
 * the cache is first filled, clears it in every fork()ed child. kart's own
 * children that run code come from fork() (core/process/process.c); one
 * made by a raw clone() that then used a manager would see its parent's
 * id, as it would glibc's before 2.25.
 */
#include "proxy_hook.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static _Atomic pid_t cached;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void forked_child(void)
{
    atomic_store_explicit(&cached, 0, memory_order_relaxed);
}

static void register_handler(void)
{
    pthread_atfork(NULL, NULL, forked_child);
}

pid_t mgr__getpid(void)
{
    pid_t p = atomic_load_explicit(&cached, memory_order_relaxed);
    if (p)
        return p;
    pthread_once(&once, register_handler);
    p = getpid();
    atomic_store_explicit(&cached, p, memory_order_relaxed);
    return p;
}

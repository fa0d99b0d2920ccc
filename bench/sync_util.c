/*
 * bench/sync_util.c — shared memory, threads, fork and the start/stop
 * clock of the locks, cond and sem scenarios (see sync_util.h).
 *
 * The clock's one idea: the contenders watch the deadline themselves (each
 * every so many operations, so that reading the clock stays out of what is
 * measured) instead of a third thread that would tell them to stop: on two
 * cores, that thread would steal a core from the contenders.
 */
#include "sync_util.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void *sync_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        bench_fail("mmap: %s", strerror(errno));
    return p;
}

void sync_unmap(void *p, size_t size)
{
    if (munmap(p, size) != 0)
        bench_fail("munmap: %s", strerror(errno));
}

int sync_cpus_allowed(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        bench_fail("sched_getaffinity: %s", strerror(errno));
    return CPU_COUNT(&set);
}

/* The first `cpus` CPUs of this process's affinity mask in *out. */
static void first_cpus(int cpus, cpu_set_t *out)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        bench_fail("sched_getaffinity: %s", strerror(errno));
    CPU_ZERO(out);
    for (int cpu = 0, got = 0; cpu < CPU_SETSIZE && got < cpus; cpu++)
        if (CPU_ISSET(cpu, &set)) {
            CPU_SET(cpu, out);
            got++;
        }
    if (CPU_COUNT(out) < cpus)
        bench_fail("this process may run on %d CPUs, the case needs %d", CPU_COUNT(&set), cpus);
}

void sync_threads(int n, void *(*fn)(void *), void *const *arg, int cpus)
{
    pthread_t t[SYNC_MAX_THREADS];
    if (n < 1 || n > SYNC_MAX_THREADS)
        bench_fail("sync_threads: %d threads", n);
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err != 0)
        bench_fail("pthread_attr_init: %s", strerror(err));
    if (cpus > 0) {
        cpu_set_t set;
        first_cpus(cpus, &set);
        err = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
        if (err != 0)
            bench_fail("pthread_attr_setaffinity_np: %s", strerror(err));
    }
    for (int i = 0; i < n; i++) {
        err = pthread_create(&t[i], &attr, fn, arg[i]);
        if (err != 0)
            bench_fail("pthread_create: %s", strerror(err));
    }
    pthread_attr_destroy(&attr);
    for (int i = 0; i < n; i++) {
        err = pthread_join(t[i], NULL);
        if (err != 0)
            bench_fail("pthread_join: %s", strerror(err));
    }
}

pid_t sync_fork(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

void sync_reap(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            bench_fail("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_fail("the child process failed (status 0x%x)", status);
}

int64_t sync_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        bench_fail("clock_gettime(CLOCK_THREAD_CPUTIME_ID): %s", strerror(errno));
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool sync_case_has(const bench_case *c, const char *key)
{
    for (int i = 0; i < c->nparams; i++)
        if (strcmp(c->params[i].key, key) == 0)
            return true;
    return false;
}

int sync_case_pairs(const bench_case *c)
{
    return sync_case_has(c, "pairs") ? (int)bench_param_get(c, "pairs") : 1;
}

int sync_case_cpus(const bench_case *c)
{
    return sync_case_has(c, "cpus") ? (int)bench_param_get(c, "cpus") : 0;
}

void sync_clock_start(sync_clock *k, int parties)
{
    if (atomic_fetch_add(&k->arrived, 1) + 1 == parties) {
        k->start = bench_now_ns();
        atomic_store(&k->arrived, parties + 1); /* publishes start */
    } else {
        while (atomic_load(&k->arrived) <= parties)
            sched_yield();
    }
}

bool sync_clock_done(sync_clock *k)
{
    if (atomic_load_explicit(&k->stop, memory_order_relaxed))
        return true;
    int64_t now = bench_now_ns();
    if (now - k->start < (int64_t)(k->seconds * 1e9))
        return false;
    int expected = 0;
    if (atomic_compare_exchange_strong(&k->stop, &expected, 1))
        k->stop_at = now;
    return true;
}

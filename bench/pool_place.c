/*
 * bench/pool_place.c — where the `pool` scenario's placed tasks cases put
 * the threads of a runtime (bench/pool.c, "cpus"): every runtime there has
 * the submitting thread and one worker thread, and
 *  - cpus=1 puts both on one CPU: nothing crosses between CPUs, what is
 *    measured is the submit, claim and wait paths themselves;
 *  - cpus=2 puts the submitter on one CPU and the worker on another: every
 *    task the worker takes crosses between the two CPUs' caches.
 * Unplaced, a two-CPU machine's scheduler decides between those two modes
 * from round to round, for every runtime alike (docs/pool.md), and the
 * bursts' figures are bimodal; placed, each mode is measured on its own.
 *
 * Placement is done after the runtime's warm-up has started its threads
 * and before the clock: the calling thread is the submitter, every other
 * thread of the process is a worker. No runtime starts threads after its
 * warm-up here, so none escapes the placement.
 */
#include "pool_peers.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The calling thread's mask before the first placement: what
 * pool_place_undo gives every thread back. */
static cpu_set_t saved;
static int have_saved;

/* The n-th CPU (from 0) of mask, or -1. */
static int nth_cpu(const cpu_set_t *mask, int n)
{
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, mask) && n-- == 0)
            return c;
    return -1;
}

/* Sets every thread of the process: the caller to *mine, the others to
 * *theirs. A thread that exits meanwhile (ESRCH) is no error. */
static int set_all(const cpu_set_t *mine, const cpu_set_t *theirs, char *err, size_t errlen)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) {
        snprintf(err, errlen, "opendir /proc/self/task: %s", strerror(errno));
        return -1;
    }
    pid_t self = gettid();
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        pid_t tid = (pid_t)strtol(e->d_name, NULL, 10);
        if (tid <= 0)
            continue;
        const cpu_set_t *m = tid == self ? mine : theirs;
        if (sched_setaffinity(tid, sizeof(*m), m) < 0 && errno != ESRCH) {
            snprintf(err, errlen, "sched_setaffinity(%d): %s", (int)tid, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

int pool_place(int cpus, char *err, size_t errlen)
{
    if (!have_saved) {
        if (sched_getaffinity(0, sizeof(saved), &saved) < 0) {
            snprintf(err, errlen, "sched_getaffinity: %s", strerror(errno));
            return -1;
        }
        have_saved = 1;
    }
    int a = nth_cpu(&saved, 0), b = nth_cpu(&saved, cpus == 2 ? 1 : 0);
    if (cpus < 1 || cpus > 2 || a < 0 || b < 0) {
        snprintf(err, errlen, "cannot place on %d CPUs: %d usable", cpus, CPU_COUNT(&saved));
        return -1;
    }
    cpu_set_t submitter, workers;
    CPU_ZERO(&submitter);
    CPU_ZERO(&workers);
    CPU_SET(a, &submitter);
    CPU_SET(b, &workers);
    return set_all(&submitter, &workers, err, errlen);
}

int pool_place_undo(char *err, size_t errlen)
{
    if (!have_saved)
        return 0;
    return set_all(&saved, &saved, err, errlen);
}

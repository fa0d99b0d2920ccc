/*
 * core/process/process_self.c — who the calling process is: Python's
 * current_process() and parent_process(), and the identity that default
 * child names are built from.
 *
 * A child kart starts with a function (fork or spawn) takes its identity
 * and name before the function runs (kart__proc_become), on its only
 * thread; after that they never change, so they are read without a lock.
 */
#include "process_private.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Python's process identity, which default names show: a child's number
 * among its parent's children after its parent's own identity ("Process-2"
 * is this process's second child, "Process-2:1" that child's first). */
char kart__proc_identity[128]; /* "" in the first process */
_Atomic unsigned kart__proc_name_counter;

static char current_name[256] = "MainProcess";
static bool have_parent;
static pid_t parent_pid;
static char parent_name[256];

void kart__proc_become(const char *ident, const char *name, pid_t ppid, const char *pname)
{
    snprintf(kart__proc_identity, sizeof(kart__proc_identity), "%s", ident);
    snprintf(current_name, sizeof(current_name), "%s", name);
    snprintf(parent_name, sizeof(parent_name), "%s", pname);
    parent_pid = ppid;
    have_parent = true;
    atomic_store_explicit(&kart__proc_name_counter, 0, memory_order_relaxed);
}

const char *kart__proc_current_name(void)
{
    return current_name;
}

KART_API int kart_process_current(kart_process_info *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->pid = getpid();
    out->daemon = kart__proc_is_daemon();
    snprintf(out->name, sizeof(out->name), "%s", current_name);
    return 0;
}

KART_API int kart_process_parent(kart_process_info *out)
{
    if (!out)
        return -EINVAL;
    if (!have_parent)
        return -ESRCH;
    memset(out, 0, sizeof(*out));
    out->pid = parent_pid;
    snprintf(out->name, sizeof(out->name), "%s", parent_name);
    return 0;
}

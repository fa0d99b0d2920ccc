/* tests/kt_threads.c — see kt_threads.h. */
#include "kt_threads.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* Reads /proc/self/task/<name>/comm into buf; "" if it cannot. */
static void comm_at(const char *name, char *buf, size_t size)
{
    char path[300];
    snprintf(path, sizeof(path), "/proc/self/task/%s/comm", name);
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f) {
        if (fgets(buf, (int)size, f))
            buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
    }
}

void kt_thread_comm(pid_t tid, char *buf, size_t size)
{
    char name[24];
    snprintf(name, sizeof(name), "%d", (int)tid);
    comm_at(name, buf, size);
}

int kt_threads_named(const char *prefix)
{
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char comm[64];
        comm_at(e->d_name, comm, sizeof(comm));
        if (strncmp(comm, prefix, strlen(prefix)) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/*
 * tests/soak/soak_mem.c — where the soak process's anonymous memory is:
 * /proc/self/smaps split by kind of mapping, and the C library's own view
 * of its heap (mallinfo2, malloc_info's arena count). Written per second
 * into the CSV and compared mapping by mapping at the end, so that growth
 * is pinned to a mapping (the main heap, a thread's malloc arena, a thread
 * stack, an io_uring ring, a memfd) and told apart: live allocations
 * (uordblks) from memory the allocator holds free (fordblks).
 */
#include "soak.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* glibc's non-main arenas are heaps of HEAP_MAX_SIZE (64 MiB on 64-bit)
 * aligned to their size: the read-write part of one starts on that
 * boundary. */
#define ARENA_ALIGN (64ull << 20)

static const char *const kind_names[SOAK_MAP_KINDS] = {"heap", "arena", "stack",
                                                       "anon", "shm",   "other"};

const char *soak_map_kind_name(int k)
{
    return k >= 0 && k < SOAK_MAP_KINDS ? kind_names[k] : "?";
}

/* Kind of one mapping from its smaps header line. prev_guard: the mapping
 * just below it is an anonymous PROT_NONE one ending where it starts (a
 * thread stack's guard page). */
static int classify(unsigned long long start, const char *perms, const char *name, bool prev_guard)
{
    if (strcmp(name, "[heap]") == 0)
        return SOAK_MAP_HEAP;
    if (strcmp(name, "[stack]") == 0)
        return SOAK_MAP_STACK;
    if (name[0] == '\0' && perms[0] == 'r' && perms[1] == 'w') {
        if (start % ARENA_ALIGN == 0)
            return SOAK_MAP_ARENA;
        return prev_guard ? SOAK_MAP_STACK : SOAK_MAP_ANON;
    }
    if (strncmp(name, "/dev/shm/", 9) == 0 || strncmp(name, "/memfd:", 7) == 0)
        return SOAK_MAP_SHM;
    return SOAK_MAP_OTHER;
}

int soak_smaps(soak_smaps_sample *s, soak_mapping *maps, int max)
{
    static soak_lines l; /* 8 KiB: not on the stack */
    if (soak_lines_open(&l, "/proc/self/smaps") < 0)
        return -1;
    int n = 0, cur = -1, kind = SOAK_MAP_OTHER;
    unsigned long long prev_end = 0;
    bool prev_none = false;
    memset(s, 0, sizeof(*s));
    for (char *line; (line = soak_lines_next(&l));) {
        unsigned long long a, b, kib;
        char perms[8];
        int name_at = 0;
        if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %n", &a, &b, perms, &name_at) == 3 &&
            name_at > 0) {
            char *name = line + name_at;
            int k = classify(a, perms, name, prev_none && prev_end == a);
            prev_none = strcmp(perms, "---p") == 0 && name[0] == '\0';
            prev_end = b;
            cur = -1;
            if (n < max) {
                cur = n++;
                maps[cur] = (soak_mapping){.start = a, .size_kib = (b - a) / 1024, .kind = k};
                snprintf(maps[cur].name, sizeof(maps[cur].name), "%s", name);
            }
            kind = k;
            continue;
        }
        if (sscanf(line, "Anonymous: %llu kB", &kib) == 1) {
            s->anon_kib[kind] += (int64_t)kib;
            if (cur >= 0)
                maps[cur].anon_kib = (int64_t)kib;
        }
    }
    soak_lines_close(&l);
    return n;
}

void soak_malloc_stats(soak_malloc_sample *m)
{
    struct mallinfo2 mi = mallinfo2();
    m->system_kib = (int64_t)(mi.arena / 1024);
    m->inuse_kib = (int64_t)(mi.uordblks / 1024);
    m->free_kib = (int64_t)(mi.fordblks / 1024);
    m->mmap_kib = (int64_t)(mi.hblkhd / 1024);
    m->arenas = 0;
    /* malloc_info writes one <heap nr="..."> per arena; into a static
     * buffer, through one stream opened once (its FILE and stdio buffer
     * are allocated at the first sample, never again). */
    static char xml[1 << 16];
    static FILE *f;
    if (!f)
        f = fmemopen(xml, sizeof(xml), "w");
    if (f) {
        rewind(f);
        malloc_info(0, f);
        fflush(f);
        long len = ftell(f);
        xml[len > 0 && len < (long)sizeof(xml) ? len : (long)sizeof(xml) - 1] = '\0';
        for (char *p = xml; (p = strstr(p, "<heap nr=")); p++)
            m->arenas++;
    }
    m->threads = 0;
    char buf[4096];
    if (soak_read("/proc/self/status", buf, sizeof(buf)) >= 0) {
        char *t = strstr(buf, "\nThreads:");
        if (t)
            sscanf(t + 1, "Threads: %d", &m->threads);
    }
}

/* The mappings of b whose anonymous memory is above what they had in a
 * (by start address; a mapping new in b counts from zero), largest growth
 * first, at most 20 printed. */
void soak_smaps_diff(const soak_mapping *a, int na, const soak_mapping *b, int nb)
{
    int64_t by_kind[SOAK_MAP_KINDS] = {0};
    printf("mappings whose anonymous memory grew after the warm-up:\n");
    int printed = 0;
    for (int j = 0; j < nb; j++) {
        int64_t before = 0;
        bool found = false;
        for (int i = 0; i < na; i++)
            if (a[i].start == b[j].start) {
                before = a[i].anon_kib;
                found = true;
                break;
            }
        int64_t d = b[j].anon_kib - before;
        if (d == 0)
            continue;
        by_kind[b[j].kind] += d;
        if (printed++ < 20)
            printf("  %012llx %8lld KiB %-5s %6lld -> %6lld KiB (%+lld)%s %s\n", b[j].start,
                   (long long)b[j].size_kib, soak_map_kind_name(b[j].kind), (long long)before,
                   (long long)b[j].anon_kib, (long long)d, found ? "" : " new", b[j].name);
    }
    for (int i = 0; i < na; i++) {
        bool kept = false;
        for (int j = 0; j < nb && !kept; j++)
            kept = a[i].start == b[j].start;
        if (!kept && a[i].anon_kib) {
            by_kind[a[i].kind] -= a[i].anon_kib;
            if (printed++ < 20)
                printf("  %012llx %8lld KiB %-5s %6lld KiB gone %s\n", a[i].start,
                       (long long)a[i].size_kib, soak_map_kind_name(a[i].kind),
                       (long long)a[i].anon_kib, a[i].name);
        }
    }
    printf("  by kind:");
    for (int k = 0; k < SOAK_MAP_KINDS; k++)
        printf(" %s %+lld KiB", soak_map_kind_name(k), (long long)by_kind[k]);
    printf("\n");
}

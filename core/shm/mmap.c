/*
 * core/mmap.c — Python's mmap object in C (kart/mmap.h): open, the
 * position-based calls, find, move, resize, flush, madvise.
 *
 * The hot calls (read, write) are one bounds check and one memcpy, so that
 * reading through the handle costs what memcpy over a plain mapping does.
 */
#include "fault.h"

#include <kart/mmap.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct kart_mmap {
    unsigned char *addr;
    size_t len;     /* what the user sees */
    size_t map_len; /* what is mapped: len rounded up for hugetlb */
    size_t pos;
    int fd; /* our duplicate of the file, the anonymous memfd, or -1 */
    bool anon;
    int64_t offset;
    kart_mmap_mode access;
    unsigned flags;
};

static size_t page_size(void)
{
    static size_t ps;
    if (!ps)
        ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

KART_API size_t kart_mmap_granularity(void)
{
    return page_size();
}

#define ALL_FLAGS (KART_MMAP_HUGE | KART_MMAP_POPULATE | KART_MMAP_EXEC | KART_MMAP_NORESERVE)

/* The protection the access mode and flags ask for. */
static int prot_of(const kart_mmap *m)
{
    int prot = m->access == KART_MMAP_READ ? PROT_READ : PROT_READ | PROT_WRITE;
    return prot | ((m->flags & KART_MMAP_EXEC) ? PROT_EXEC : 0);
}

/* The mmap flags the kart flags add (MAP_SHARED/PRIVATE aside). */
static int extra_of(const kart_mmap *m)
{
    return ((m->flags & KART_MMAP_POPULATE) ? MAP_POPULATE : 0) |
           ((m->flags & KART_MMAP_NORESERVE) ? MAP_NORESERVE : 0);
}

/* The default huge page size from /proc/meminfo (2 MiB if unreadable). */
static size_t huge_page_size(void)
{
    size_t kb = 2048;
    FILE *f = fopen("/proc/meminfo", "re");
    if (f) {
        char line[128];
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "Hugepagesize: %zu kB", &kb) == 1)
                break;
        fclose(f);
    }
    return kb * 1024;
}

/* Checks fd, offset and length against the file; fills *length when 0. */
static int check_file(int fd, size_t *length, int64_t offset)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return *length ? 0 : -EINVAL;
    int64_t size = st.st_size;
    if (*length == 0) {
        if (size == 0 || offset >= size)
            return -EINVAL;
        if ((uint64_t)(size - offset) > SIZE_MAX)
            return -ENOMEM;
        *length = (size_t)(size - offset);
        return 0;
    }
    if (offset > size || *length > (uint64_t)(size - offset))
        return -EINVAL;
    return 0;
}

static int map_anon(kart_mmap *m, size_t length)
{
    int prot = prot_of(m);
    int pop = extra_of(m);
    void *p;
    m->map_len = length;
    if (m->flags & KART_MMAP_HUGE) {
        size_t hp = huge_page_size();
        m->map_len = (length + hp - 1) / hp * hp;
        int share = m->access == KART_MMAP_COPY ? MAP_PRIVATE : MAP_SHARED;
        p = kart__sys_mmap(NULL, m->map_len, prot, share | MAP_ANONYMOUS | MAP_HUGETLB | pop, -1,
                           0);
    } else if (m->access == KART_MMAP_WRITE) {
        /* A memfd rather than MAP_ANONYMOUS: a shared anonymous mapping
         * cannot grow (its shmem object's size is fixed), a memfd can. */
        m->fd = kart__sys_memfd_create("kart-mmap", MFD_CLOEXEC);
        if (m->fd < 0)
            return -errno;
        if (kart__sys_ftruncate(m->fd, (off_t)length) != 0)
            return -errno;
        p = kart__sys_mmap(NULL, length, prot, MAP_SHARED | pop, m->fd, 0);
    } else {
        p = kart__sys_mmap(NULL, length, prot, MAP_PRIVATE | MAP_ANONYMOUS | pop, -1, 0);
    }
    if (p == MAP_FAILED)
        return -errno;
    m->addr = p;
    return 0;
}

static int map_file(kart_mmap *m, int fd, size_t length)
{
    m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (m->fd < 0)
        return -errno;
    int share = m->access == KART_MMAP_COPY ? MAP_PRIVATE : MAP_SHARED;
    void *p =
        kart__sys_mmap(NULL, length, prot_of(m), share | extra_of(m), m->fd, (off_t)m->offset);
    if (p == MAP_FAILED)
        return -errno;
    m->addr = p;
    m->map_len = length;
    if ((m->flags & KART_MMAP_HUGE) && madvise(p, length, MADV_HUGEPAGE) != 0)
        return -errno;
    return 0;
}

KART_API int kart_mmap_open(kart_mmap **out, int fd, size_t length, int64_t offset,
                            kart_mmap_mode access, unsigned flags)
{
    if (!out || access < KART_MMAP_READ || access > KART_MMAP_COPY || (flags & ~ALL_FLAGS))
        return -EINVAL;
    if (fd < 0 && fd != -1)
        return -EBADF;
    if (offset < 0 || (uint64_t)offset % page_size() != 0)
        return -EINVAL;
    if (fd == -1 && (length == 0 || offset != 0))
        return -EINVAL;
    if (fd >= 0) {
        int err = check_file(fd, &length, offset);
        if (err)
            return err;
    }
    kart_mmap *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->fd = -1;
    m->anon = fd == -1;
    m->offset = offset;
    m->access = access;
    m->flags = flags;
    m->len = length;
    int err = m->anon ? map_anon(m, length) : map_file(m, fd, length);
    if (err) {
        if (m->addr)
            kart__sys_munmap(m->addr, m->map_len);
        if (m->fd >= 0)
            close(m->fd);
        free(m);
        return err;
    }
    *out = m;
    return 0;
}

KART_API void kart_mmap_close(kart_mmap *m)
{
    if (!m)
        return;
    kart__sys_munmap(m->addr, m->map_len);
    if (m->fd >= 0)
        close(m->fd);
    free(m);
}

KART_API void *kart_mmap_addr(const kart_mmap *m)
{
    return m ? m->addr : NULL;
}

KART_API size_t kart_mmap_len(const kart_mmap *m)
{
    return m ? m->len : 0;
}

KART_API kart_mmap_mode kart_mmap_access(const kart_mmap *m)
{
    return m ? m->access : (kart_mmap_mode)0;
}

KART_API int kart_mmap_file_size(const kart_mmap *m, int64_t *size)
{
    if (!m || !size)
        return -EINVAL;
    if (m->anon)
        return -EBADF;
    struct stat st;
    if (fstat(m->fd, &st) != 0)
        return -errno;
    *size = st.st_size;
    return 0;
}

KART_API int kart_mmap_read(kart_mmap *m, void *buf, size_t n, size_t *got)
{
    if (!m || !got || (!buf && n))
        return -EINVAL;
    size_t left = m->len - m->pos;
    if (n > left)
        n = left;
    if (n)
        memcpy(buf, m->addr + m->pos, n);
    m->pos += n;
    *got = n;
    return 0;
}

KART_API int kart_mmap_read_byte(kart_mmap *m)
{
    if (!m)
        return -EINVAL;
    if (m->pos >= m->len)
        return -ERANGE;
    return m->addr[m->pos++];
}

KART_API int kart_mmap_readline(kart_mmap *m, void *buf, size_t cap, size_t *got)
{
    if (!m || !got || (!buf && cap))
        return -EINVAL;
    size_t left = m->len - m->pos;
    const unsigned char *start = m->addr + m->pos;
    const unsigned char *nl = memchr(start, '\n', left);
    size_t n = nl ? (size_t)(nl - start) + 1 : left;
    if (n > cap)
        n = cap;
    if (n)
        memcpy(buf, start, n);
    m->pos += n;
    *got = n;
    return 0;
}

KART_API int kart_mmap_write(kart_mmap *m, const void *buf, size_t n)
{
    if (!m || (!buf && n))
        return -EINVAL;
    if (m->access == KART_MMAP_READ)
        return -EACCES;
    if (n > m->len - m->pos)
        return -ERANGE;
    if (n)
        memcpy(m->addr + m->pos, buf, n);
    m->pos += n;
    return 0;
}

KART_API int kart_mmap_write_byte(kart_mmap *m, uint8_t byte)
{
    if (!m)
        return -EINVAL;
    if (m->access == KART_MMAP_READ)
        return -EACCES;
    if (m->pos >= m->len)
        return -ERANGE;
    m->addr[m->pos++] = byte;
    return 0;
}

KART_API int64_t kart_mmap_seek(kart_mmap *m, int64_t offset, int whence)
{
    if (!m)
        return -EINVAL;
    int64_t base;
    /* clang-format off */ /* a table: one case per line */
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)m->pos; break;
    case SEEK_END: base = (int64_t)m->len; break;
    default: return -EINVAL;
    }
    /* clang-format on */
    int64_t to;
    if (__builtin_add_overflow(base, offset, &to) || to < 0 || to > (int64_t)m->len)
        return -EINVAL;
    m->pos = (size_t)to;
    return to;
}

KART_API int64_t kart_mmap_tell(const kart_mmap *m)
{
    return m ? (int64_t)m->pos : -EINVAL;
}

/* Python's slice-index rule: negative counts from the end; clamp. */
static size_t clamp_index(int64_t i, size_t len)
{
    if (i < 0) {
        i += (int64_t)len;
        return i < 0 ? 0 : (size_t)i;
    }
    return (uint64_t)i > len ? len : (size_t)i;
}

KART_API int64_t kart_mmap_find(const kart_mmap *m, const void *needle, size_t n, int64_t start,
                                int64_t end)
{
    if (!m || (!needle && n))
        return -EINVAL;
    size_t s = clamp_index(start, m->len), e = clamp_index(end, m->len);
    if (s > e || n > e - s)
        return -ENOENT;
    if (n == 0)
        return (int64_t)s;
    const unsigned char *hit = memmem(m->addr + s, e - s, needle, n);
    return hit ? hit - m->addr : -ENOENT;
}

KART_API int64_t kart_mmap_rfind(const kart_mmap *m, const void *needle, size_t n, int64_t start,
                                 int64_t end)
{
    if (!m || (!needle && n))
        return -EINVAL;
    size_t s = clamp_index(start, m->len), e = clamp_index(end, m->len);
    if (s > e || n > e - s)
        return -ENOENT;
    if (n == 0)
        return (int64_t)e;
    const unsigned char first = *(const unsigned char *)needle;
    /* Candidates start in [s, e - n]: scan backwards for the first byte. */
    size_t span = e - n - s + 1;
    const unsigned char *base = m->addr + s;
    while (span) {
        const unsigned char *p = memrchr(base, first, span);
        if (!p)
            break;
        if (memcmp(p, needle, n) == 0)
            return p - m->addr;
        span = (size_t)(p - base);
    }
    return -ENOENT;
}

KART_API int kart_mmap_move(kart_mmap *m, size_t dest, size_t src, size_t count)
{
    if (!m)
        return -EINVAL;
    if (m->access == KART_MMAP_READ)
        return -EACCES;
    if (src > m->len || dest > m->len || count > m->len - src || count > m->len - dest)
        return -ERANGE;
    memmove(m->addr + dest, m->addr + src, count);
    return 0;
}

static int set_file_size(int fd, int64_t size)
{
    while (kart__sys_ftruncate(fd, (off_t)size) != 0)
        if (errno != EINTR)
            return errno == EINVAL ? -EFBIG : -errno;
    return 0;
}

KART_API int kart_mmap_resize(kart_mmap *m, size_t newsize)
{
    if (!m || newsize == 0)
        return -EINVAL;
    if (m->access != KART_MMAP_WRITE)
        return -EACCES;
    if (m->map_len != m->len || (m->anon && m->fd < 0))
        return -EINVAL; /* hugetlb */
    if (newsize > (uint64_t)(INT64_MAX - m->offset))
        return -EFBIG;
    int64_t old_file = -1;
    if (!m->anon) {
        struct stat st;
        if (fstat(m->fd, &st) != 0)
            return -errno;
        old_file = st.st_size;
    }
    int err = set_file_size(m->fd, m->offset + (int64_t)newsize);
    if (err)
        return err;
    void *p = kart__sys_mremap(m->addr, m->len, newsize, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) {
        err = -errno;
        set_file_size(m->fd, m->anon ? (int64_t)m->len : old_file);
        return err;
    }
    m->addr = p;
    m->len = m->map_len = newsize;
    if (m->pos > newsize)
        m->pos = newsize;
    return 0;
}

KART_API int kart_mmap_flush_range(kart_mmap *m, size_t offset, size_t n)
{
    if (!m || offset % page_size() != 0)
        return -EINVAL;
    if (offset > m->len || n > m->len - offset)
        return -ERANGE;
    if (n == 0)
        n = m->len - offset;
    if (m->access != KART_MMAP_WRITE || m->anon || n == 0)
        return 0;
    return msync(m->addr + offset, n, MS_SYNC) == 0 ? 0 : -errno;
}

KART_API int kart_mmap_flush(kart_mmap *m)
{
    return kart_mmap_flush_range(m, 0, 0);
}

KART_API int kart_mmap_madvise(kart_mmap *m, int advice, size_t start, size_t n)
{
    if (!m || start % page_size() != 0)
        return -EINVAL;
    if (start > m->len)
        return -ERANGE;
    if (n == 0 || n > m->len - start)
        n = m->len - start;
    if (n == 0)
        return 0;
    return madvise(m->addr + start, n, advice) == 0 ? 0 : -errno;
}

/*
 * tests/soak/soak_proc.c — reading /proc and /dev/shm without malloc.
 *
 * The sampler runs on the main thread, the only user of the C library's
 * main heap (every other thread of the soak process has an arena of its
 * own). Read through stdio (a FILE and its buffer per fopen, a 32 KiB
 * buffer per opendir, a dozen of each a second), its own churn touched
 * pages of that heap never touched before, a page every few minutes, with
 * the heap's size and the bytes in use unchanged: the instrument made the
 * growth it measured (docs/bench/soak.md). These read with read(2) and
 * getdents64(2) into buffers on the stack.
 */
#include "soak.h"

#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

ssize_t soak_read(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

int soak_lines_open(soak_lines *l, const char *path)
{
    l->fd = open(path, O_RDONLY | O_CLOEXEC);
    l->len = l->pos = 0;
    return l->fd < 0 ? -1 : 0;
}

char *soak_lines_next(soak_lines *l)
{
    for (;;) {
        char *nl = memchr(l->buf + l->pos, '\n', l->len - l->pos);
        if (nl) {
            *nl = '\0';
            char *line = l->buf + l->pos;
            l->pos = (size_t)(nl - l->buf) + 1;
            return line;
        }
        /* Move the partial line to the front and read more. */
        memmove(l->buf, l->buf + l->pos, l->len - l->pos);
        l->len -= l->pos;
        l->pos = 0;
        if (l->len == sizeof(l->buf) - 1) /* a line longer than the buffer: cut */
            l->len = 0;
        ssize_t n = read(l->fd, l->buf + l->len, sizeof(l->buf) - 1 - l->len);
        if (n <= 0) {
            if (l->len == 0)
                return NULL;
            l->buf[l->len] = '\0'; /* a last line without a newline */
            l->pos = l->len;
            return l->buf;
        }
        l->len += (size_t)n;
    }
}

void soak_lines_close(soak_lines *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

long soak_dir_count(const char *path, const char *p1, const char *p2, long *ours)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096] __attribute__((aligned(8)));
    long n = 0, m = 0;
    size_t l1 = p1 ? strlen(p1) : 0, l2 = p2 ? strlen(p2) : 0;
    for (;;) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (got <= 0)
            break;
        for (long off = 0; off < got;) {
            /* struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name */
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof(reclen));
            const char *name = buf + off + 19;
            off += reclen;
            if (name[0] == '.')
                continue;
            n++;
            if ((p1 && strncmp(name, p1, l1) == 0) || (p2 && strncmp(name, p2, l2) == 0))
                m++;
        }
    }
    close(fd);
    if (ours)
        *ours = m;
    return n;
}

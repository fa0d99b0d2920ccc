/*
 * core/queue_mem.c — where a queue's memory comes from: an anonymous
 * shared mapping (inherited over fork) or a named POSIX shared-memory
 * segment (attached by name). The rest of the queue sees only these five
 * calls, so the memory layer can change without touching it.
 */
#include "fault.h"
#include "queue_private.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

int kart__queue_name_check(const char *name)
{
    if (!name || name[0] != '/' || name[1] == '\0')
        return -EINVAL;
    size_t n = strnlen(name, 252);
    if (n > 250 || strchr(name + 1, '/'))
        return -EINVAL;
    return 0;
}

/* MAP_NORESERVE: a large SimpleQueue costs only the pages it touches. */
static int map_fd(int fd, size_t size, void **out)
{
    void *p = kart__sys_mmap(NULL, size, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_NORESERVE | (fd < 0 ? MAP_ANONYMOUS : 0), fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *out = p;
    return 0;
}

int kart__queue_map_new(const char *name, mode_t mode, size_t size, void **out)
{
    if (!name)
        return map_fd(-1, size, out);
    int fd = kart__sys_shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode ? mode : 0600);
    if (fd < 0)
        return -errno;
    int r = kart__sys_ftruncate(fd, (off_t)size) == 0 ? map_fd(fd, size, out) : -errno;
    close(fd);
    if (r < 0)
        shm_unlink(name);
    return r;
}

int kart__queue_map_memfd(size_t size, void **out, int *fdp)
{
    int fd = kart__sys_memfd_create("kart-queue", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = kart__sys_ftruncate(fd, (off_t)size) == 0 ? map_fd(fd, size, out) : -errno;
    if (r < 0) {
        close(fd);
        return r;
    }
    *fdp = fd;
    return 0;
}

int kart__queue_map_open(const char *name, void **out, size_t *size)
{
    int fd = kart__sys_shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = fstat(fd, &st) == 0 ? 0 : -errno;
    if (r == 0 && st.st_size == 0)
        r = -EAGAIN; /* created, not yet sized */
    else if (r == 0 && (size_t)st.st_size < sizeof(struct kart_queue))
        r = -EINVAL;
    if (r == 0)
        r = map_fd(fd, (size_t)st.st_size, out);
    close(fd);
    if (r == 0)
        *size = (size_t)st.st_size;
    return r;
}

int kart__queue_unmap(void *p, size_t size)
{
    return kart__sys_munmap(p, size) == 0 ? 0 : -errno;
}

int kart__queue_name_unlink(const char *name)
{
    return shm_unlink(name) == 0 ? 0 : -errno;
}

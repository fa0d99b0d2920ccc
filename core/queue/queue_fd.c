/*
 * core/queue/queue_fd.c — queues that reach children by a descriptor: a
 * queue made under a spawn or forkserver context (kart_queue_options.
 * context) lives in a memfd, since a fresh exec inherits no mapping. The
 * creator names the fd in kart_process_options.fds (the child gets it at
 * the same number) and its number in the child's argument; the child maps
 * it with kart_queue_from_fd().
 *
 * The header keeps the creator's fd number and the memfd's identity
 * (device, inode): a process that has the queue's memfd at that number
 * (its creator, fork children, children handed it through options.fds)
 * can pass it on and closes it at kart_queue_free(); one that has some
 * other file there does neither.
 */
#include "fault.h"
#include "queue_private.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether fd is, in this process, the queue's memfd. */
static bool is_queue_fd(const kart_queue *q, int fd)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_dev == q->fd_dev &&
           (uint64_t)st.st_ino == q->fd_ino;
}

int kart__queue_fd_record(kart_queue *q, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    q->fd = fd;
    q->fd_dev = (uint64_t)st.st_dev;
    q->fd_ino = (uint64_t)st.st_ino;
    q->flags |= KART__QUEUE_MEMFD;
    return 0;
}

void kart__queue_fd_release(kart_queue *q)
{
    if (is_queue_fd(q, q->fd))
        close(q->fd);
}

KART_API int kart_queue_fd(const kart_queue *q)
{
    if (!q ||
        atomic_load_explicit(&((kart_queue *)q)->magic, memory_order_acquire) != KART__QUEUE_MAGIC)
        return -EINVAL;
    if (!(q->flags & KART__QUEUE_MEMFD))
        return -ENOTSUP;
    return is_queue_fd(q, q->fd) ? q->fd : -EBADF;
}

KART_API int kart_queue_from_fd(kart_queue **out, int fd)
{
    if (!out || fd < 0)
        return -EINVAL;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size < sizeof(kart_queue))
        return -EINVAL;
    size_t size = (size_t)st.st_size;
    void *p = kart__sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED)
        return errno == EACCES ? -EINVAL : -errno;
    kart_queue *q = p;
    uint64_t magic = atomic_load_explicit(&q->magic, memory_order_acquire);
    int r = 0;
    if (magic == 0)
        r = -EAGAIN;
    else if (magic != KART__QUEUE_MAGIC || q->map_size != size || !(q->flags & KART__QUEUE_MEMFD) ||
             (uint64_t)st.st_ino != q->fd_ino || (uint64_t)st.st_dev != q->fd_dev)
        r = -EINVAL;
    if (r) {
        kart__queue_unmap(p, size);
        return r;
    }
    /* Taken (API rule 8): kept when it has the creator's number, so that
     * this process can hand the queue on; else the mapping is enough. */
    if (fd != q->fd)
        close(fd);
    *out = q;
    return 0;
}

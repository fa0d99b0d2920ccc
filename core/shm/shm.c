/*
 * core/shm.c — named (shm_open) and anonymous (memfd_create) shared memory
 * segments, mapped whole, and fd passing over unix sockets (SCM_RIGHTS).
 * The lifetime rules are in include/kart/shm.h; the tracker behind
 * KART_SHM_TRACK is core/shm_tracker.c.
 */
#include "fault.h"
#include "shm_private.h"

#include <kart/conn.h>

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct kart_shm {
    void *addr;
    size_t size;
    int fd;
    char *name; /* NULL for anonymous segments */
};

KART_API int kart_shm_name_check(const char *name)
{
    if (!name || name[0] != '/' || name[1] == '\0')
        return -EINVAL;
    size_t len = strnlen(name, KART_SHM_NAME_MAX + 1);
    if (len > KART_SHM_NAME_MAX || strchr(name + 1, '/'))
        return -EINVAL;
    return 0;
}

/* Maps all of fd into a new handle that owns fd and name (on success). */
static int wrap(kart_shm **out, int fd, size_t size, bool rdonly, char *name)
{
    kart_shm *shm = malloc(sizeof(*shm));
    if (!shm)
        return -ENOMEM;
    void *p = kart__sys_mmap(NULL, size, PROT_READ | (rdonly ? 0 : PROT_WRITE), MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int err = -errno;
        free(shm);
        return err;
    }
    shm->addr = p;
    shm->size = size;
    shm->fd = fd;
    shm->name = name;
    *out = shm;
    return 0;
}

/* Sizes a fresh (empty) segment; larger than a file can be → -EFBIG. */
static int set_size(int fd, size_t size)
{
    if (size > (size_t)INT64_MAX)
        return -EFBIG;
    while (kart__sys_ftruncate(fd, (off_t)size) != 0) {
        if (errno != EINTR)
            return errno == EINVAL ? -EFBIG : -errno;
    }
    return 0;
}

/* "/kart-<pid>-<random hex>" into buf. */
static void make_name(char buf[64])
{
    static _Atomic uint32_t counter;
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint64_t)kart_now_ns() * 0x9e3779b97f4a7c15u;
    r ^= atomic_fetch_add(&counter, 1);
    snprintf(buf, 64, "/kart-%ld-%016llx", (long)getpid(), (unsigned long long)r);
}

/*
 * Creates and maps one name. With KART_SHM_TRACK the name is registered
 * with the tracker before it exists when it is a generated one (nobody
 * else can own it, so a creator killed at any instant leaves no leak),
 * and just after it is created when the caller chose it (registering it
 * first could, should the creator die before O_EXCL refused it, let the
 * tracker unlink somebody else's segment).
 */
static int create_named(kart_shm **out, const char *name, size_t size, unsigned flags,
                        bool generated)
{
    bool track = flags & KART_SHM_TRACK, tracked = false;
    int err;
    if (track && generated) {
        if ((err = kart_shm_track(name)) != 0)
            return err;
        tracked = true;
    }
    int fd = kart__sys_shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        err = -errno;
        if (tracked)
            kart__shm_tracker_send('U', name);
        return err;
    }
    err = 0;
    if (track && !tracked)
        tracked = (err = kart_shm_track(name)) == 0;
    char *copy = NULL;
    if (!err)
        err = set_size(fd, size);
    if (!err && !(copy = strdup(name)))
        err = -ENOMEM;
    if (!err)
        err = wrap(out, fd, size, false, copy);
    if (err) {
        free(copy);
        close(fd);
        shm_unlink(name);
        if (tracked)
            kart__shm_tracker_send('U', name);
    }
    return err;
}

KART_API int kart_shm_create(kart_shm **out, const char *name, size_t size, unsigned flags)
{
    if (!out || size == 0 || (flags & ~KART_SHM_TRACK))
        return -EINVAL;
    if (name) {
        int err = kart_shm_name_check(name);
        if (err)
            return err;
    }
    /* Start the tracker first: if it cannot start, no name is made. */
    if (flags & KART_SHM_TRACK) {
        int err = kart__shm_tracker_ensure();
        if (err)
            return err;
    }
    if (name)
        return create_named(out, name, size, flags, false);
    int err = -EEXIST;
    for (int tries = 0; tries < 64 && err == -EEXIST; tries++) {
        char gen[64];
        make_name(gen);
        err = create_named(out, gen, size, flags, true);
    }
    return err;
}

KART_API int kart_shm_attach(kart_shm **out, const char *name, unsigned flags)
{
    if (!out || (flags & ~(KART_SHM_RDONLY | KART_SHM_UNLINK)))
        return -EINVAL;
    int err = kart_shm_name_check(name);
    if (err)
        return err;
    bool rdonly = flags & KART_SHM_RDONLY;
    int fd = kart__sys_shm_open(name, rdonly ? O_RDONLY : O_RDWR, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    char *copy = NULL;
    if (fstat(fd, &st) != 0)
        err = -errno;
    else if (st.st_size <= 0)
        err = -EINVAL;
    else if (!(copy = strdup(name)))
        err = -ENOMEM;
    else
        err = wrap(out, fd, (size_t)st.st_size, rdonly, copy);
    if (err) {
        free(copy);
        close(fd);
        return err;
    }
    if (flags & KART_SHM_UNLINK)
        kart_shm_unlink(*out); /* -ENOENT: somebody else already did */
    return 0;
}

KART_API int kart_shm_create_anon(kart_shm **out, size_t size, unsigned flags)
{
    if (!out || size == 0 || flags)
        return -EINVAL;
    int fd = kart__sys_memfd_create("kart-shm", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = set_size(fd, size);
    if (!err)
        err = wrap(out, fd, size, false, NULL);
    if (err)
        close(fd);
    return err;
}

KART_API int kart_shm_from_fd(kart_shm **out, int fd, unsigned flags)
{
    if (!out || (flags & ~KART_SHM_RDONLY))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    bool rdonly = flags & KART_SHM_RDONLY;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -ENODEV;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if ((fl & O_ACCMODE) == O_WRONLY || (!rdonly && (fl & O_ACCMODE) == O_RDONLY))
        return -EACCES;
    if (st.st_size <= 0)
        return -EINVAL;
    return wrap(out, fd, (size_t)st.st_size, rdonly, NULL);
}

KART_API void *kart_shm_addr(const kart_shm *shm)
{
    return shm ? shm->addr : NULL;
}

KART_API size_t kart_shm_size(const kart_shm *shm)
{
    return shm ? shm->size : 0;
}

KART_API const char *kart_shm_name(const kart_shm *shm)
{
    return shm ? shm->name : NULL;
}

KART_API int kart_shm_fd(const kart_shm *shm)
{
    return shm ? shm->fd : -EINVAL;
}

KART_API int kart_shm_close(kart_shm *shm)
{
    if (!shm)
        return -EINVAL;
    kart__sys_munmap(shm->addr, shm->size);
    close(shm->fd);
    free(shm->name);
    free(shm);
    return 0;
}

KART_API int kart_shm_unlink_name(const char *name)
{
    int err = kart_shm_name_check(name);
    if (err)
        return err;
    err = shm_unlink(name) == 0 ? 0 : -errno;
    /* Gone either way: the tracker must not unlink a later namesake. */
    if (err == 0 || err == -ENOENT)
        kart__shm_tracker_send('U', name);
    return err;
}

KART_API int kart_shm_unlink(kart_shm *shm)
{
    if (!shm || !shm->name)
        return -EINVAL;
    return kart_shm_unlink_name(shm->name);
}

/* ---- passing a segment (the fd passing itself is conn/handle.c) ---- */

KART_API int kart_shm_send(int sock, const kart_shm *shm)
{
    if (!shm)
        return -EINVAL;
    return kart_unix_send_fd(sock, shm->fd);
}

KART_API int kart_shm_recv(int sock, kart_shm **out, unsigned flags)
{
    if (!out || (flags & ~KART_SHM_RDONLY))
        return -EINVAL;
    int fd, err = kart_unix_recv_fd(sock, &fd);
    if (err)
        return err;
    err = kart_shm_from_fd(out, fd, flags);
    if (err)
        close(fd);
    return err;
}

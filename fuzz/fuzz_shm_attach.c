/*
 * fuzz/fuzz_shm_attach.c — libFuzzer target for the manager's same-host
 * fast path as a peer reaches it (core/manager/shm_server.c,
 * shm_seg.c). A client's first frame is looked at by
 * mgr__shm_is_attach, which must answer for any bytes without reading past
 * them; and a client maps whatever descriptor the server passes back
 * (mgr__shm_map), which must refuse a segment whose header is not one of
 * kart's (magic, kind, size) with -EPROTO, never map a wrong one. The first
 * input byte picks the kind asked for and whether the segment is grown to
 * the minimum size; the rest is the frame and the segment's first bytes.
 */
#include "shm_path.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    unsigned mode = data[0];
    data++, size--;
    /* the frame: a heap copy of exactly its bytes, so ASan sees overreads */
    uint8_t *frame = malloc(size ? size : 1);
    if (!frame)
        abort();
    memcpy(frame, data, size);
    (void)mgr__shm_is_attach(frame, size);
    free(frame);

    int fd = memfd_create("fuzz-shm", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    size_t seg = (mode & 8) ? MSHM_MIN_SIZE + (size_t)(mode >> 4) * 4096 : size;
    if (seg < size)
        seg = size;
    if (ftruncate(fd, (off_t)seg) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();
    int kind = (int)(mode & 7);
    mshm *s = NULL;
    int err = mgr__shm_map(&s, fd, kind);
    if (err == 0) {
        /* only a header that says exactly this is taken */
        /* (the segment past the input reads as zeros, as h does) */
        mshm_hdr h;
        memset(&h, 0, sizeof h);
        memcpy(&h, data, size < sizeof h ? size : sizeof h);
        if (h.magic != MSHM_MAGIC || h.kind != (uint32_t)kind || h.size != seg)
            abort();
        mgr__shm_unmap(s); /* the map took the fd */
    } else {
        if (err != -EPROTO && err != -ENOMEM && err != -EINVAL)
            abort();
        close(fd);
    }
    return 0;
}

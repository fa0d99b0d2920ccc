/*
 * uring/uring_pbuf.c — incremental consumption of the provided-buffer
 * ring's buffers (IOU_PBUF_RING_INC, Linux 6.12): the bookkeeping of the
 * slices lent from one buffer (uring_io.c does the ring).
 *
 * With the flag the kernel takes from the buffer at the ring's head only
 * the bytes a receive needs: the completion names the buffer, and says
 * IORING_CQE_F_BUF_MORE while the buffer keeps the head (the next receive
 * continues where this one ended). Without BUF_MORE the kernel has moved
 * past the buffer (filled to its end, or committed whole). So the data
 * of a completion is at the buffer's start plus what earlier completions
 * of that buffer took: a consumed offset per buffer, reset when the
 * buffer re-enters the ring. Completions of one ring come in the order
 * the kernel consumed (it commits and posts under the ring's lock, and
 * kart runs one issuer with DEFER_TASKRUN).
 *
 * Each completion is lent as a slice, a kart__slice of its own (base and
 * size name the slice, so a user is never told it may write past it; its
 * own send request for kart_sock_send_buf). The buffer goes back to the
 * ring, or to the pool's stack, once the kernel is done with it and every
 * slice of it is released: a count of slices out per buffer.
 *
 * Slices are allocated in blocks as a loop first needs them and kept for
 * the pool's life on a free list (last released, first reused, so only the
 * peak in use is touched). 64-byte messages fill a 16 KiB buffer with 256
 * receives, so the bound is bytes, not buffers: a fixed table would either
 * be large or run out.
 */
#include "fault.h" /* kart__sys_calloc: tests make it fail */
#include "uring_private.h"

#include "io_private.h"

#include <stdlib.h>

/* Slices per block: 64 x ~240 bytes, a few pages. */
#define SLICE_BLOCK 64u

typedef struct slice_block {
    struct slice_block *next;
    kart__slice s[SLICE_BLOCK];
} slice_block;

static void pbuf_free(kart__bufpool *p)
{
    kart__pbuf *pb = p->ext;
    if (!pb)
        return;
    while (pb->blocks) {
        slice_block *b = pb->blocks;
        pb->blocks = b->next;
        free(b);
    }
    free(pb->per);
    free(pb);
    p->ext = NULL;
    p->ext_free = NULL;
}

int kart__pbuf_init(kart__bufpool *p)
{
    kart__pbuf *pb = kart__sys_calloc(1, sizeof(*pb));
    if (!pb)
        return -ENOMEM;
    pb->per = kart__sys_calloc(p->count, sizeof(*pb->per));
    if (!pb->per) {
        free(pb);
        return -ENOMEM;
    }
    p->ext = pb;
    p->ext_free = pbuf_free;
    return 0;
}

/* A free slice: the free list's first, else the next unused one of the
 * newest block, else a new block; NULL when none can be allocated. */
static kart__slice *slice_get(kart__pbuf *pb)
{
    kart__slice *s = pb->free;
    if (s) {
        pb->free = s->next;
        return s;
    }
    if (!pb->blocks || pb->block_used == SLICE_BLOCK) {
        /* calloc: the send requests must start idle (state_ 0) */
        slice_block *b = kart__sys_calloc(1, sizeof(*b));
        if (!b)
            return NULL;
        b->next = pb->blocks;
        pb->blocks = b;
        pb->block_used = 0;
    }
    return &((slice_block *)pb->blocks)->s[pb->block_used++];
}

kart_buf *kart__pbuf_take(kart__bufpool *p, uint32_t id, uint32_t n, bool more, bool *retired)
{
    kart__pbuf *pb = p->ext;
    kart__pbuf_per *b = &pb->per[id];
    uint32_t off = b->off;
    b->off += n;
    if (!more) {
        b->done = true;
        pb->in_ring--;
    }
    kart__slice *s = slice_get(pb);
    *retired = false;
    if (!s) {
        /* The bytes are consumed all the same: the buffer must not wait
         * for a slice that was never lent. */
        if (b->done && b->out == 0) {
            b->done = false;
            b->off = 0;
            *retired = true;
        }
        return NULL;
    }
    b->out++;
    s->buf = (kart_buf){.base = p->bufs[id].base + off,
                        .size = n,
                        .id_ = id,
                        .flags_ = KB_LENT | KB_SLICE,
                        .pool_ = p};
    s->next = NULL;
    p->lent++;
    return &s->buf;
}

bool kart__pbuf_release(kart__bufpool *p, kart_buf *buf)
{
    kart__pbuf *pb = p->ext;
    kart__slice *s = (kart__slice *)buf;
    kart__pbuf_per *b = &pb->per[buf->id_];
    s->next = pb->free;
    pb->free = s;
    if (--b->out > 0 || !b->done)
        return false;
    b->done = false;
    b->off = 0;
    return true;
}

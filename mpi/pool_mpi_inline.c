/*
 * mpi/pool_mpi_inline.c — a serving rank whose local pool is inline: its
 * link to the root (the next message, received while a chunk runs; the
 * results on their way back) and the chunks it runs in its serving
 * thread.
 *
 * Why the overlap: MPI moves a large message only inside MPI calls of
 * both ends (a transport without a progress thread of its own: Open MPI's
 * TCP between hosts, and a rendezvous message on any transport). A rank
 * that computed a chunk, then sent its result with a blocking send, then
 * received the next chunk (already waiting at the root: depth 2) paid
 * both transfers in full between two chunks: traced across two network
 * namespaces over TCP, 4 to 9 ms per result and as much again for the
 * next chunk, whatever its size, while the hand-written master-worker's
 * ranks (one chunk at a time) paid ~2 ms. Now the rank polls MPI between
 * blocks of items (about every 200 us of work): it posts the receive of
 * the next message as soon as the root has sent one, and its last result
 * travels while it computes.
 */
#include "pool_mpi_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Work between two polls of MPI. While a message is on its way, a poll
 * moves a fragment or a few (shared memory without single-copy: 32 KiB;
 * TCP: up to 128 KiB), so the sender's polls pace the transfer: every
 * 25 us, a poll (~1 us) costs at most 4%. With nothing on its way, a
 * poll only looks for the root's next chunk: every 200 us. */
#define POLL_BUSY_NS 25000
#define POLL_IDLE_NS 200000

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap && *buf)
        return 0;
    char *b = realloc(*buf, need ? need : 1);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = need ? need : 1;
    return 0;
}

int kart__mpi_link_poll(kart_mpi_pool *p, kart__mpi_link *l)
{
    bool moving = false;
    for (int i = 0; i < 2; i++) {
        int done = 0;
        if (l->out[i].busy) {
            if (MPI_Test(&l->out[i].req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
                return -EIO;
            l->out[i].busy = !done;
            moving |= !done;
        }
    }
    if (l->pre_posted) {
        int done = 0;
        if (!l->pre_done && MPI_Test(&l->pre_req, &done, &l->pre_status) != MPI_SUCCESS)
            return -EIO;
        l->pre_done |= done != 0;
        return moving || !l->pre_done;
    }
    if (l->pre_stop)
        return moving;
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(p->root, MPI_ANY_TAG, p->comm, &flag, &st) != MPI_SUCCESS)
        return -EIO;
    if (!flag)
        return moving;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    if (grow(&l->pre_buf, &l->pre_cap, count > 0 ? (size_t)count : 0) != 0)
        return 0; /* no memory now: the serving loop receives it later */
    if (MPI_Irecv(l->pre_buf, count, MPI_BYTE, p->root, st.MPI_TAG, p->comm, &l->pre_req) !=
        MPI_SUCCESS)
        return -EIO;
    l->pre_posted = true;
    l->pre_done = false;
    l->pre_stop = st.MPI_TAG == TAG_STOP; /* the root sends nothing after it */
    return 1;
}

int kart__mpi_link_take(kart_mpi_pool *p, kart__mpi_link *l, bool block, char **msg, size_t *len,
                        int *tag)
{
    MPI_Status st;
    int flag = 0, count = 0;
    if (l->pre_posted) {
        int rc = MPI_SUCCESS;
        if (l->pre_done) /* a poll completed it: MPI_Test must not be asked again */
            flag = 1, st = l->pre_status;
        else
            rc = block ? (flag = 1, MPI_Wait(&l->pre_req, &st)) : MPI_Test(&l->pre_req, &flag, &st);
        if (rc != MPI_SUCCESS)
            return -EIO;
        if (!flag)
            return 0;
        l->pre_posted = false;
        l->pre_done = false;
        /* The message becomes the current one; the old current buffer
         * (NULL if a job took it) receives the next. */
        char *b = p->rbuf;
        size_t c = p->rcap;
        p->rbuf = l->pre_buf;
        p->rcap = l->pre_cap;
        l->pre_buf = b;
        l->pre_cap = b ? c : 0;
    } else {
        /* With nothing running, a blocking probe: nothing else can
         * happen until the root speaks. (Not the matched MPI_Mprobe and
         * MPI_Mrecv: see receive() in pool_mpi_progress.c.) */
        int rc = block ? (flag = 1, MPI_Probe(p->root, MPI_ANY_TAG, p->comm, &st))
                       : MPI_Iprobe(p->root, MPI_ANY_TAG, p->comm, &flag, &st);
        if (rc != MPI_SUCCESS)
            return -EIO;
        if (!flag)
            return 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        if (grow(&p->rbuf, &p->rcap, count > 0 ? (size_t)count : 0) != 0)
            return -ENOMEM;
        if (MPI_Recv(p->rbuf, count, MPI_BYTE, p->root, st.MPI_TAG, p->comm, &st) != MPI_SUCCESS)
            return -EIO;
    }
    MPI_Get_count(&st, MPI_BYTE, &count);
    *msg = p->rbuf;
    *len = count > 0 ? (size_t)count : 0;
    *tag = st.MPI_TAG;
    return 1;
}

/* A free result buffer: the one not sent last, or, when both are still
 * on their way, the older once its send is done. */
static int out_slot(kart__mpi_link *l, int *slot)
{
    int i = l->next_out;
    if (l->out[i].busy) {
        if (MPI_Wait(&l->out[i].req, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -EIO;
        l->out[i].busy = false;
    }
    *slot = i;
    l->next_out = 1 - i;
    return 0;
}

static int send_result(kart_mpi_pool *p, kart__mpi_link *l, int slot, size_t len)
{
    if (MPI_Isend(l->out[slot].buf, (int)len, MPI_BYTE, p->root, TAG_RESULT, p->comm,
                  &l->out[slot].req) != MPI_SUCCESS)
        return -EIO;
    l->out[slot].busy = true;
    return 0;
}

int kart__mpi_run_inline(kart_mpi_pool *p, kart__mpi_link *l, const wire_work *h, const char *in)
{
    wire_result r = {h->id, 0, 0, 0};
    size_t in_size = h->in_size, out_size = h->out_size, n = h->n;
    size_t bytes = n * out_size, need = sizeof(r) + bytes;
    if ((out_size && n > (SIZE_MAX - sizeof(r)) / out_size) || need > INT32_MAX)
        need = SIZE_MAX;
    int slot, rc = out_slot(l, &slot);
    if (rc)
        return rc;
    if (need == SIZE_MAX || grow(&l->out[slot].buf, &l->out[slot].cap, need) != 0) {
        /* The chunk fails whole, nothing is lost: the header alone. */
        r.err = -ENOMEM;
        if (grow(&l->out[slot].buf, &l->out[slot].cap, sizeof(r)) != 0)
            return -ENOMEM;
        memcpy(l->out[slot].buf, &r, sizeof(r));
        return send_result(p, l, slot, sizeof(r));
    }
    char *out = l->out[slot].buf + sizeof(r);
    kart_task_fn fn = p->tasks[h->task].fn;
    size_t chunk = h->chunk ? h->chunk : (n + 3) / 4;
    if (!chunk)
        chunk = 1;
    if (n / chunk >= KART_POOL_MAX_CHUNKS) /* as kart_pool_map would split it */
        chunk = (n + KART_POOL_MAX_CHUNKS - 1) / KART_POOL_MAX_CHUNKS;
    /* Items between polls: grown while polls come too often, shrunk
     * when they come too seldom (the work per item is unknown). */
    size_t stride = 64, since = 0;
    int64_t last = now_ns(), every = POLL_BUSY_NS;
    for (size_t first = 0; first < n; first += chunk) {
        size_t end = n - first > chunk ? first + chunk : n;
        for (size_t i = first; i < end; i++) {
            size_t len = out_size;
            int frc = fn(in + i * in_size, in_size, out + i * out_size, &len);
            if (frc == 0 && len > out_size)
                frc = -EMSGSIZE;
            if (frc) {
                /* Items run in index order: the first failure is the
                 * lowest failing item of the lowest failing sub-chunk. */
                if (!r.err)
                    r.err = frc, r.item = i;
                memset(out + i * out_size, 0, (end - i) * out_size);
                break;
            }
            if (++since < stride)
                continue;
            since = 0;
            int64_t t = now_ns();
            if (t - last < every / 2 && stride < (1u << 20))
                stride *= 2;
            else if (t - last > every * 2 && stride > 1)
                stride /= 2;
            last = t;
            if ((rc = kart__mpi_link_poll(p, l)) < 0)
                return rc;
            every = rc ? POLL_BUSY_NS : POLL_IDLE_NS;
        }
    }
    r.len = bytes;
    memcpy(l->out[slot].buf, &r, sizeof(r));
    return send_result(p, l, slot, need);
}

int kart__mpi_link_close(kart__mpi_link *l)
{
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        if (l->out[i].busy && MPI_Wait(&l->out[i].req, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            rc = -EIO;
        free(l->out[i].buf);
    }
    /* A posted receive is for a message the root sent: it completes. */
    if (l->pre_posted && MPI_Wait(&l->pre_req, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        rc = -EIO;
    free(l->pre_buf);
    memset(l, 0, sizeof(*l));
    return rc;
}

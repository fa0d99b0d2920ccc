/*
 * mpi/pool_mpi_send.c — the pool's sends in flight: each one's request,
 * what it must keep alive until MPI is done with it, and its job.
 *
 * A chunk leaves the root without being copied when it is large: one
 * message made of two blocks, the header (kept in the send's record) and
 * the items where the caller's input already holds them (a struct
 * datatype on absolute addresses, sent from MPI_BOTTOM). Copying them
 * into a fresh message cost the root's only MPI thread ~6 ms per 2 MB
 * on this VM (page faults on the new buffer, then the copy): across two
 * hosts over TCP, while it copied, nothing of the chunks already posted
 * moved, and the first ranks waited ~25 ms longer for their first chunk
 * than a hand-written master-worker's ranks did (docs/pool_mpi.md). The
 * price: a job's input must outlive its sends, so a job waits for its
 * sends before it completes (kart__mpi_send_wait_job), which costs
 * nothing in practice (its results came back: the items were sent).
 */
#include "pool_mpi_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Below this, the header and the items go in one copied message: MPI
 * sends a small message eagerly in one fragment, and a datatype costs
 * more than the copy. */
#define ZERO_COPY_MIN (64 * 1024)

static kart__mpi_send *record(kart__mpi_send **list, int rank, const kart__mpi_job *job)
{
    kart__mpi_send *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->rank = rank;
    s->job = job;
    s->next = *list;
    *list = s;
    return s;
}

static void unrecord(kart__mpi_send **list, kart__mpi_send *s)
{
    *list = s->next; /* it was put at the head just now */
    free(s);
}

int kart__mpi_isend(kart__mpi_send **list, MPI_Comm comm, int rank, int tag, void *buf, size_t len)
{
    kart__mpi_send *s = record(list, rank, NULL);
    if (!s)
        return -ENOMEM;
    if (MPI_Isend(buf, (int)len, MPI_BYTE, rank, tag, comm, &s->req) != MPI_SUCCESS) {
        unrecord(list, s);
        return -EIO;
    }
    s->buf = buf;
    return 0;
}

/* The two blocks as one datatype: MPI_BYTE runs at absolute addresses,
 * so the receiver sees one message of hdr_len + len bytes. */
static int two_blocks(const void *hdr, size_t hdr_len, const void *data, size_t len,
                      MPI_Datatype *type)
{
    int lens[2] = {(int)hdr_len, (int)len};
    MPI_Aint at[2];
    MPI_Datatype types[2] = {MPI_BYTE, MPI_BYTE};
    if (MPI_Get_address(hdr, &at[0]) != MPI_SUCCESS ||
        MPI_Get_address(data, &at[1]) != MPI_SUCCESS ||
        MPI_Type_create_struct(2, lens, at, types, type) != MPI_SUCCESS)
        return -EIO;
    if (MPI_Type_commit(type) != MPI_SUCCESS) {
        MPI_Type_free(type);
        return -EIO;
    }
    return 0;
}

int kart__mpi_isend_work(kart__mpi_send **list, MPI_Comm comm, int rank, const wire_work *h,
                         const void *items, size_t len, const kart__mpi_job *job)
{
    if (len > (size_t)INT32_MAX - sizeof(*h))
        return -EMSGSIZE;
    if (len < ZERO_COPY_MIN) {
        char *msg = malloc(sizeof(*h) + len);
        if (!msg)
            return -ENOMEM;
        memcpy(msg, h, sizeof(*h));
        if (len)
            memcpy(msg + sizeof(*h), items, len);
        int rc = kart__mpi_isend(list, comm, rank, TAG_WORK, msg, sizeof(*h) + len);
        if (rc)
            free(msg);
        return rc;
    }
    kart__mpi_send *s = record(list, rank, job);
    if (!s)
        return -ENOMEM;
    s->hdr = *h;
    MPI_Datatype type;
    int rc = two_blocks(&s->hdr, sizeof(s->hdr), items, len, &type);
    if (rc) {
        unrecord(list, s);
        return rc;
    }
    /* Freeing the type at once is allowed: MPI keeps it for the send. */
    rc = MPI_Isend(MPI_BOTTOM, 1, type, rank, TAG_WORK, comm, &s->req) == MPI_SUCCESS ? 0 : -EIO;
    MPI_Type_free(&type);
    if (rc)
        unrecord(list, s);
    return rc;
}

void kart__mpi_send_reap(kart__mpi_send **list, bool wait)
{
    for (kart__mpi_send **pp = list; *pp;) {
        kart__mpi_send *s = *pp;
        int done = 0;
        int rc = wait ? MPI_Wait(&s->req, MPI_STATUS_IGNORE)
                      : MPI_Test(&s->req, &done, MPI_STATUS_IGNORE);
        if (wait || done || rc != MPI_SUCCESS) {
            *pp = s->next;
            free(s->buf);
            free(s);
        } else {
            pp = &s->next;
        }
    }
}

/* Called before a job completes, when its owner may free its input: MPI
 * must be done reading it. Its results are in (or its chunks failed), so
 * its sends have completed or failed, and the waits return at once; a
 * send to a rank MPI reported failed returns that failure (with
 * MPI_ERRORS_RETURN, which the pool sets). */
void kart__mpi_send_wait_job(kart__mpi_send **list, const kart__mpi_job *job)
{
    for (kart__mpi_send **pp = list; *pp;) {
        kart__mpi_send *s = *pp;
        if (s->job != job) {
            pp = &s->next;
            continue;
        }
        MPI_Wait(&s->req, MPI_STATUS_IGNORE);
        *pp = s->next;
        free(s->buf);
        free(s);
    }
}

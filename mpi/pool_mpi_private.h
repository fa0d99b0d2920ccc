/*
 * mpi/pool_mpi_private.h — what the MPI pool's files share: the wire
 * format between the root and the serving ranks, the pool, its jobs.
 */
#ifndef KART_POOL_MPI_PRIVATE_H
#define KART_POOL_MPI_PRIVATE_H

#include <kart/pool_mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Message tags on the pool's own communicator (a duplicate: no clash
 * with the program's traffic). */
enum { TAG_WORK = 1, TAG_RESULT = 2, TAG_STOP = 3 };

#define KART__MPI_NAME_MAX 64
#define KART__MPI_MAX_TASKS 4096

/* Root -> rank: a chunk (n items of in_size bytes, results of out_size
 * bytes), or a submitted task (n 1, in_size its argument's length,
 * out_size its result capacity). The items follow the header. */
typedef struct wire_work {
    uint64_t id; /* the root's chunk record, echoed back */
    uint64_t n, in_size, out_size;
    uint64_t chunk;  /* the map's own chunk (0: the local pool's default):
                      * the rank's local map uses it, so that a failing
                      * item stops the same items as kart_pool_map would */
    uint32_t task;   /* index into the registry */
    uint32_t submit; /* 1: a submitted task, else a map chunk */
} wire_work;

/* Rank -> root: the results of a chunk (n x out_size bytes, the failing
 * item's and the rest of its chunk zeroed) or a task's result (len bytes). */
typedef struct wire_result {
    uint64_t id;
    uint64_t len;  /* payload bytes */
    int64_t err;   /* 0, or the first failing item's error */
    uint64_t item; /* that item's index in the chunk */
} wire_result;

enum { JOB_SUBMIT = 0, JOB_MAP = 1 };

typedef struct kart__mpi_job kart__mpi_job;

struct kart_mpi_future {
    kart_future *f;
    atomic_int refs; /* the caller's hold and the pool's */
};

struct kart__mpi_job {
    int kind;
    uint32_t task;
    kart__mpi_job *next; /* in the pool's queue */
    const char *in;      /* map items, or the submitted argument */
    char *out;           /* map results */
    size_t in_size, out_size, n;
    size_t chunk;           /* 0: guided */
    size_t next_item;       /* the first item not yet sent */
    size_t done;            /* items returned (ran, failed or cancelled) */
    size_t outstanding;     /* chunks at the ranks */
    kart_pool_failure fail; /* the first failing item by index */
    kart_mpi_future *fut;   /* submit and map_async: completed, then released */
    bool finished;          /* sync map and imap chunks: the owner waits for it */
    bool owned;             /* the owner frees it (sync map, imap) */
    bool started;           /* set_running done */
    bool queued;            /* on the pool's queue (mu): taken off once its
                             * last item is sent, or before it completes */
    void *arg_copy;         /* submit: the argument, freed with the job */
};

/* A chunk at a rank. */
typedef struct kart__mpi_chunk {
    kart__mpi_job *job;
    size_t first, n;
    int rank;
    size_t prefault_done;                /* bytes of its output populated so far */
    bool prefaulted;                     /* all of it (mpi/pool_mpi_prefault.c) */
    struct kart__mpi_chunk *prev, *next; /* the rank's list */
} kart__mpi_chunk;

/* A send in flight and its buffer. */
typedef struct kart__mpi_send {
    MPI_Request req;
    void *buf; /* a copied message, freed when the send is done */
    int rank;
    const kart__mpi_job *job; /* a chunk sent from its job's input */
    wire_work hdr;            /* that chunk's header */
    struct kart__mpi_send *next;
} kart__mpi_send;

typedef struct kart__mpi_rank {
    int workers;   /* its local pool's workers */
    size_t credit; /* chunks it may have in flight */
    size_t outstanding;
    bool alive;
    kart__mpi_chunk *chunks;
} kart__mpi_rank;

struct kart_mpi_pool {
    MPI_Comm comm;
    int rank, size, root;
    size_t ntasks;
    kart_mpi_task *tasks; /* names copied */
    int total_workers;
    size_t depth;
    size_t result_size;
    /* serving ranks */
    kart_pool *local;
    bool served;
    bool local_inline; /* map chunks run in the serving thread itself */
    /* the root */
    pthread_t thread;
    bool thread_started, joined;
    /* set (under mu, with wake) once kart_mpi_pool_create's collectives
     * are done: until then the progress thread makes no MPI call */
    bool progress_go;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* the owners of jobs: something finished */
    pthread_cond_t wake; /* the progress thread: work queued, closing */
    kart__mpi_job *head, *tail;
    bool closed, terminated, stopped;
    int alive_ranks;
    kart__mpi_rank *ranks;
    kart__mpi_send *sends;
    kart__mpi_chunk *spare; /* freed chunk records, for reuse */
    char *rbuf;             /* the received message (reused) */
    size_t rcap;
};

/* A serving rank's link to the root on the inline path
 * (mpi/pool_mpi_inline.c): the next message, its receive posted while a
 * chunk runs, and two result buffers, one on its way while the next
 * fills. */
typedef struct kart__mpi_link {
    MPI_Request pre_req;
    MPI_Status pre_status; /* once pre_done */
    bool pre_posted, pre_done, pre_stop;
    char *pre_buf;
    size_t pre_cap;
    struct {
        char *buf;
        size_t cap;
        MPI_Request req;
        bool busy;
    } out[2];
    int next_out;
} kart__mpi_link;

/* Progress: result sends tested, the next message's receive posted once
 * the root has sent one. 1 while a message is on its way, 0 when none
 * is, -EIO. */
int kart__mpi_link_poll(kart_mpi_pool *p, kart__mpi_link *l);
/* The next message from the root into p->rbuf (the posted one first):
 * 1 with *msg, *len, *tag set; 0 when none is there (block false);
 * -EIO, -ENOMEM. */
int kart__mpi_link_take(kart_mpi_pool *p, kart__mpi_link *l, bool block, char **msg, size_t *len,
                        int *tag);
/* Runs a well-formed map chunk here, polling the link as it goes, and
 * sends its result without waiting. 0, -EIO, -ENOMEM. */
int kart__mpi_run_inline(kart_mpi_pool *p, kart__mpi_link *l, const wire_work *h, const char *in);
/* Waits for the sends and the posted receive, frees the buffers. */
int kart__mpi_link_close(kart__mpi_link *l);

/* The root, idle while results are due: populates a slice of the
 * output pages of the chunks in flight. Whether it did any. */
bool kart__mpi_prefault_some(kart_mpi_pool *p);

int kart__mpi_task_index(const kart_mpi_pool *pool, const char *name);
int kart__mpi_enqueue(kart_mpi_pool *pool, kart__mpi_job *job);
void *kart__mpi_progress(void *arg);
int kart__mpi_deadline_wait(kart_mpi_pool *pool, int64_t deadline);
int kart__mpi_future_new(kart_mpi_future **out);
void kart__mpi_future_unref(kart_mpi_future *f);
void kart__mpi_send_reap(kart__mpi_send **list, bool wait);
/* mpi/pool_mpi_send.c. kart__mpi_isend sends buf (freed once sent);
 * kart__mpi_isend_work a chunk's header and its items, large items from
 * where they are (the job must then wait for its sends before its input
 * may go: kart__mpi_send_wait_job). 0, -ENOMEM, -EMSGSIZE or -EIO. */
int kart__mpi_isend(kart__mpi_send **list, MPI_Comm comm, int rank, int tag, void *buf, size_t len);
int kart__mpi_isend_work(kart__mpi_send **list, MPI_Comm comm, int rank, const wire_work *h,
                         const void *items, size_t len, const kart__mpi_job *job);
void kart__mpi_send_wait_job(kart__mpi_send **list, const kart__mpi_job *job);

#endif

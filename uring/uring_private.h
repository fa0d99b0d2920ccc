/*
 * uring/uring_private.h — the io_uring backend's state, shared by the
 * readiness side (uring.c) and the native I/O operations (uring_io.c).
 */
#ifndef KART_URING_PRIVATE_H
#define KART_URING_PRIVATE_H

#include "backend.h"

#include <liburing.h>

/* A completion of a native I/O operation, collected by the wait for the
 * loop to hand to the completion mode (uring_io.c). */
typedef struct kart__cqe {
    uint64_t ud;
    int32_t res;
    uint32_t flags;
} kart__cqe;

/* user_data bit 63 marks a native I/O operation: the rest is a pointer
 * (8-aligned, so its low 3 bits carry a kind). Poll requests keep bit 63
 * clear. */
#define KART__UD_OP (UINT64_C(1) << 63)
/* The kinds of native operations that uring.c's reap keeps from the loop's
 * completion list (uring_io.c uses kinds 1 and 2): a child's WAITID
 * (uring_waitid.c). */
#define KART__UDK_MASK UINT64_C(7)
#define KART__UDK_WAITID UINT64_C(3)
/* A futex wait (uring_futex.c). */
#define KART__UDK_FUTEX UINT64_C(4)
/* A wake-up posted by another loop's thread with MSG_RING
 * (uring_msgring.c): sequence 0 with fd 2, which no poll has. */
#define KART__UD_WAKE UINT64_C(2)

typedef struct kart__ur_waitid kart__ur_waitid;
typedef struct kart__ur_futex kart__ur_futex;

typedef struct ur_fd {
    uint32_t seq; /* the poll request the kernel may hold, 0: none */
    bool parked;  /* that request is a parking multishot poll */
    int pos;      /* where this wait stored the fd's entry, to merge */
} ur_fd;

/* Work for the next wait: arm or park the registration (fd, gen) if it is
 * still current, or cancel the request (fd, seq). */
enum { TODO_ARM, TODO_PARK, TODO_CANCEL };
typedef struct ur_todo {
    int fd;
    uint32_t id; /* gen, or seq for TODO_CANCEL */
    int kind;
} ur_todo;

typedef struct uring_state {
    struct io_uring ring;
    uint32_t seq;
    ur_fd *fds;
    int nfds;
    ur_todo *todo;
    int ntodo, todo_cap;
    /* The ring starts disabled (IORING_SETUP_R_DISABLED) when it is single-
     * issuer, and is enabled by the first thread that enters it, which
     * then owns it (and registers the ring fd). */
    bool enabled;
    bool single_issuer;
    bool sqpoll;        /* a kernel thread takes the SQEs (IORING_SETUP_SQPOLL) */
    bool native_io;     /* completion-based operations go through the ring */
    uint64_t enters;    /* io_uring_enter calls made */
    uint64_t overflows; /* times the completion ring was seen overflowed */
    bool overflowing;   /* it was at the last reap: logged once per run */
    /* Native I/O completions collected by the waits, for the loop. */
    kart__cqe *cqes;
    int ncqes, cqe_cap;
    /* Kernel features (uring_msgring.c, uring_waitid.c): the ring is
     * enabled, so other threads' MSG_RINGs reach it; the last wait reaped
     * a wake-up or a child's exit, news for the loop; the WAITID requests
     * the kernel holds or has completed. */
    _Atomic bool msg_ok;
    bool woken;
    kart__ur_waitid *waitids;
    /* The provided-buffer ring (uring_io.c): how many of the pool's
     * buffers it is kept filled with, besides those lent. The rest wait on
     * the pool's stack of free ids, untouched; the fill grows when a
     * receive finds the ring empty while the stack is not. */
    uint32_t br_fill;
    kart__ur_futex *futexes;         /* uring_futex.c's requests the kernel holds */
    kart__ur_futex *futex_done;      /* and those completed, for futex_next */
    kart__ur_futex *futex_done_last; /* its tail (stale while it is empty) */
    /* Sockets whose idle send queue got a request this turn: their sends
     * start at the turn's end (uring_io.c), each socket's place + 1 in its
     * events_ (which only the emulation uses otherwise). */
    struct kart_sock **kicks;
    uint32_t nkicks, kicks_cap;
} uring_state;


/* uring.c: an SQE, entering the kernel to submit what is queued when the
 * ring is full (NULL and *err on failure); room for n SQEs at once; a
 * submission of what is queued. Each enables the ring first if need be. */
struct io_uring_sqe *kart__ur_sqe(uring_state *st, int *err);
int kart__ur_reserve(uring_state *st, unsigned n);
int kart__ur_submit(uring_state *st);

/* uring_io.c: completion-based I/O as io_uring requests (the completion
 * mode of core/io/io_private.h). */
extern const struct kart__io_mode kart__uring_io_mode;

/* uring_msgring.c: posts a wake-up to the loop selector `to` from `from`,
 * the selector of the loop this thread is running, with IORING_OP_MSG_RING:
 * to's next (or current) wait returns with sel->completions set, as if
 * its wake-up fd had been written. 0 when posted; -ENOTSUP when either is
 * not an io_uring loop (from's owned by this thread, to's enabled), they
 * are the same, or MSG_RING is off; or the submission's error. The caller
 * then writes the wake-up fd (kart_selector_wake). */
int kart__ur_msg_wake(kart_selector *from, kart_selector *to);

/* uring_waitid.c: child-exit watching with IORING_OP_WAITID (WEXITED |
 * WNOWAIT, so the kernel never reaps: child.c does, as on its other
 * paths). start queues the request for child (pid set) on the loop's
 * ring: 0, -ENOTSUP, or -ENOMEM. stop cancels it; its completion is then
 * dropped. next hands over a child whose request completed (its result in
 * *res: 0, the child exited; -ECHILD, it is gone; another error, the ring
 * could not watch it), or NULL when none is left. */
int kart__ur_waitid_start(kart_selector *sel, struct kart_child *child);
void kart__ur_waitid_stop(kart_selector *sel, struct kart_child *child);
struct kart_child *kart__ur_waitid_next(kart_selector *sel, int *res);

/* uring_waitid.c: a WAITID completion (reap), and the records left when
 * the ring is closed (after io_uring_queue_exit). */
void kart__ur_waitid_done(uring_state *st, uint64_t ud, int res);
void kart__ur_waitid_fini(uring_state *st);

/* uring_futex.c: futex waits on the ring (IORING_OP_FUTEX_WAIT, 6.7), the
 * backend's futex_start, futex_stop and futex_next (core/loop/backend.h);
 * a FUTEX_WAIT completion (reap); the records left when the ring is
 * closed (after io_uring_queue_exit). */
int kart__ur_futex_start(kart_selector *sel, const _Atomic uint32_t *word, uint32_t val, void *tag);
void kart__ur_futex_stop(kart_selector *sel, void *tag);
void *kart__ur_futex_next(kart_selector *sel, int *res);
void kart__ur_futex_done(uring_state *st, uint64_t ud, int res);
void kart__ur_futex_fini(uring_state *st);

/* uring_pbuf.c: the receive ring's incremental consumption
 * (IOU_PBUF_RING_INC): per buffer, the bytes the kernel has filled, the
 * slices of it lent, and whether the kernel has moved past it (a
 * completion without IORING_CQE_F_BUF_MORE); the buffers in the ring
 * (the one being filled included); the slices, free and in blocks. The
 * pool's ext when the ring was registered with the flag. */
typedef struct kart__pbuf_per {
    uint32_t off;
    uint32_t out;
    bool done;
} kart__pbuf_per;

typedef struct kart__pbuf {
    kart__pbuf_per *per;
    uint32_t in_ring;
    struct kart__slice *free;
    void *blocks;        /* the newest block of slices (each links the one before) */
    uint32_t block_used; /* slices of the newest block handed out so far */
} kart__pbuf;

struct kart__bufpool;
struct kart_buf;
/* init: the pool's ext (0 or -ENOMEM); freed with the pool. take: the
 * slice of a completion (n bytes from buffer id; more: BUF_MORE), lent
 * (the pool's lent counts it); NULL when no slice could be allocated, the
 * bytes then lost. release: a released slice back to the free list; true
 * when that was the buffer's last and the kernel is done with it: the
 * buffer is free again. *retired of take says the same for a lost one. */
int kart__pbuf_init(struct kart__bufpool *p);
struct kart_buf *kart__pbuf_take(struct kart__bufpool *p, uint32_t id, uint32_t n, bool more,
                                 bool *retired);
bool kart__pbuf_release(struct kart__bufpool *p, struct kart_buf *buf);

#endif

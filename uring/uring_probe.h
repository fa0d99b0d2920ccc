/*
 * uring/uring_probe.h — what the running kernel's io_uring offers, asked
 * once per process: the one place the io_uring backend asks "does this
 * kernel have X". Debian's liburing 2.3 and kernel headers 6.1 predate
 * most of these features, so what they lack is defined here (each guarded
 * by #ifndef, with the kernel that brought it).
 */
#ifndef KART_URING_PROBE_H
#define KART_URING_PROBE_H

#include <liburing.h>
#include <stdbool.h>

/* Opcodes newer than the 6.1 headers (values fixed by the kernel ABI). */
#ifndef IORING_OP_WAITID
#define IORING_OP_WAITID 50 /* 6.7 */
#endif
#ifndef IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51 /* 6.7 */
#endif
#ifndef IORING_OP_FUTEX_WAKE
#define IORING_OP_FUTEX_WAKE 52 /* 6.7 */
#endif
/* params.features bits newer than the 6.1 headers. */
#ifndef IORING_FEAT_REG_REG_RING
#define IORING_FEAT_REG_REG_RING (1U << 13) /* 6.3 */
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14) /* 6.10 */
#endif
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15) /* 6.12 */
#endif
/* Flags of a provided-buffer ring's registration (struct io_uring_buf_reg's
 * 16-bit field after bgid: `pad` in the 6.1 headers, `flags` since 6.4). */
#ifndef IOU_PBUF_RING_MMAP
#define IOU_PBUF_RING_MMAP 1 /* 6.4 */
#endif
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2 /* 6.12: incremental consumption */
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4) /* 6.12: the buffer has room left */
#endif
/* futex2 flags for IORING_OP_FUTEX_* (linux/futex.h of 6.7). */
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE 128
#endif
#ifndef FUTEX_BITSET_MATCH_ANY
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu
#endif

/* The features kart asks about. Each is off when the kernel lacks it, and
 * may be turned off by KART_URING_FEATURES (see kart__ur_has). */
typedef enum kart__ur_feature {
    KART__UR_MSG_RING,   /* IORING_OP_MSG_RING, 5.18 (CQE_SKIP_SUCCESS 5.17) */
    KART__UR_WAITID,     /* IORING_OP_WAITID, 6.7 */
    KART__UR_FUTEX_WAIT, /* IORING_OP_FUTEX_WAIT, 6.7 */
    KART__UR_FUTEX_WAKE, /* IORING_OP_FUTEX_WAKE, 6.7 */
    KART__UR_SEND_ZC,    /* IORING_OP_SEND_ZC, 6.0 */
    KART__UR_BUNDLE,     /* IORING_FEAT_RECVSEND_BUNDLE, 6.10 */
    KART__UR_PBUF_INC,   /* IOU_PBUF_RING_INC, 6.12: a buffer ring it registers */
    KART__UR_NFEATURES
} kart__ur_feature;

/* Whether this kernel has feature f and it is not turned off. The kernel is
 * asked once per process, on a small ring of a thread of its own (see
 * uring_probe.c); a kernel that could not be asked (no io_uring, no memory)
 * has nothing. The environment variable KART_URING_FEATURES, read at that
 * time, turns features off: "0" or "none" turns all off, and a comma-
 * separated list of names with a leading '-' ("-msg_ring,-waitid") those
 * named; unknown names are ignored. */
bool kart__ur_has(kart__ur_feature f);

/* A test hook: turns off the features whose bits (1u << f) are set in
 * mask, besides those KART_URING_FEATURES turns off; 0 turns them back on.
 * For tests of the fallbacks, from any thread. */
void kart__ur_features_off(unsigned mask);

/* The feature's name as KART_URING_FEATURES spells it ("msg_ring"), or
 * NULL for a value outside the enum. */
const char *kart__ur_feature_name(kart__ur_feature f);

/* What the kernel itself said, before KART_URING_FEATURES: whether it has
 * f; and the params.features bits of a ring it made (0 if none could be
 * made). For tests, which check the answers against the kernel. */
bool kart__ur_kernel_has(kart__ur_feature f);
unsigned kart__ur_kernel_features(void);

#endif

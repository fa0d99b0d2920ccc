/*
 * uring/uring_probe.c — the kernel feature probe (uring_probe.h).
 *
 * Opcodes are asked with IORING_REGISTER_PROBE, which lists every opcode
 * the kernel knows; feature bits come from the params a ring setup fills
 * in; a buffer-ring flag by registering a one-entry ring with it (a kernel
 * without the flag refuses it with -EINVAL). All are asked on a two-entry ring made for the question, from a
 * thread of its own: closing a ring queues task work to the threads that
 * used it, and that work interrupts the thread's next blocking call (see
 * probe_multishot in uring.c), so the caller's thread never touches it.
 * The answers are kept for the process once the kernel has answered; a
 * question that could not be put (no memory, no thread, a descriptor
 * limit) is put again next time.
 */
#include "uring_probe.h"

#include "compiler.h"
#include "fault.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int opcode;        /* -1: a feature bit or a buffer-ring flag instead */
    unsigned feat_bit; /* params.features bit, when opcode is -1 */
    unsigned pbuf;     /* a buffer ring's registration flag, when both are 0 */
} table[KART__UR_NFEATURES] = {
    [KART__UR_MSG_RING] = {"msg_ring", IORING_OP_MSG_RING, 0, 0},
    [KART__UR_WAITID] = {"waitid", IORING_OP_WAITID, 0, 0},
    [KART__UR_FUTEX_WAIT] = {"futex_wait", IORING_OP_FUTEX_WAIT, 0, 0},
    [KART__UR_FUTEX_WAKE] = {"futex_wake", IORING_OP_FUTEX_WAKE, 0, 0},
    [KART__UR_SEND_ZC] = {"send_zc", IORING_OP_SEND_ZC, 0, 0},
    [KART__UR_BUNDLE] = {"bundle", -1, IORING_FEAT_RECVSEND_BUNDLE, 0},
    [KART__UR_PBUF_INC] = {"pbuf_inc", -1, 0, IOU_PBUF_RING_INC},
};

/* Whether the kernel registers a one-entry buffer ring with flags (group
 * 0 of the probe's own ring, unregistered at once). */
static bool pbuf_flag_ok(struct io_uring *ring, unsigned flags)
{
    long page = sysconf(_SC_PAGESIZE);
    void *mem =
        mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return false;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)mem, .ring_entries = 1, .bgid = 0};
    reg.pad = (uint16_t)flags; /* `flags` in headers since 6.4 */
    bool ok = io_uring_register_buf_ring(ring, &reg, 0) == 0;
    if (ok)
        io_uring_unregister_buf_ring(ring, 0);
    munmap(mem, (size_t)page);
    return ok;
}

typedef struct answer {
    bool answered;
    unsigned features; /* params.features */
    unsigned kernel;   /* bit f: the kernel has feature f */
} answer;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int known; /* 1 once kernel_bits and allowed are set */
static unsigned kernel_bits, allowed, features;
static _Atomic unsigned forced_off; /* kart__ur_features_off */

static void *ask(void *arg)
{
    answer *a = arg;
    struct io_uring ring;
    struct io_uring_params p = {0};
    if (kart__sys_io_uring_queue_init_params(2, &ring, &p) < 0)
        return NULL;
    struct io_uring_probe *pr = io_uring_get_probe_ring(&ring);
    if (pr) {
        a->answered = true;
        a->features = p.features;
        for (int f = 0; f < KART__UR_NFEATURES; f++) {
            bool has = table[f].opcode >= 0 ? io_uring_opcode_supported(pr, table[f].opcode)
                       : table[f].feat_bit  ? (p.features & table[f].feat_bit) != 0
                                            : pbuf_flag_ok(&ring, table[f].pbuf);
            if (has)
                a->kernel |= 1u << f;
        }
        io_uring_free_probe(pr);
    }
    io_uring_queue_exit(&ring);
    return NULL;
}

/* KART_URING_FEATURES: the features left on. */
static unsigned from_env(void)
{
    const char *env = getenv("KART_URING_FEATURES");
    unsigned on = (1u << KART__UR_NFEATURES) - 1;
    if (!env)
        return on;
    if (strcmp(env, "0") == 0 || strcmp(env, "none") == 0)
        return 0;
    for (const char *s = env; *s;) {
        size_t n = strcspn(s, ",");
        if (n > 1 && s[0] == '-')
            for (int f = 0; f < KART__UR_NFEATURES; f++)
                if (strlen(table[f].name) == n - 1 && strncmp(s + 1, table[f].name, n - 1) == 0)
                    on &= ~(1u << f);
        s += n;
        if (*s == ',')
            s++;
    }
    return on;
}

static bool probe(void)
{
    if (atomic_load_explicit(&known, memory_order_acquire))
        return true;
    pthread_mutex_lock(&lock);
    if (!atomic_load_explicit(&known, memory_order_relaxed)) {
        answer a = {0};
        pthread_t t;
        if (pthread_create(&t, NULL, ask, &a) == 0)
            pthread_join(t, NULL);
        if (a.answered) {
            kernel_bits = a.kernel;
            features = a.features;
            allowed = a.kernel & from_env();
            atomic_store_explicit(&known, 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&lock);
    return atomic_load_explicit(&known, memory_order_relaxed);
}

bool kart__ur_has(kart__ur_feature f)
{
    return (unsigned)f < KART__UR_NFEATURES && probe() &&
           ((allowed & ~atomic_load_explicit(&forced_off, memory_order_relaxed)) >> f & 1u);
}

void kart__ur_features_off(unsigned mask)
{
    atomic_store_explicit(&forced_off, mask, memory_order_relaxed);
}

bool kart__ur_kernel_has(kart__ur_feature f)
{
    return (unsigned)f < KART__UR_NFEATURES && probe() && (kernel_bits >> f & 1u);
}

unsigned kart__ur_kernel_features(void)
{
    return probe() ? features : 0;
}

const char *kart__ur_feature_name(kart__ur_feature f)
{
    return (unsigned)f < KART__UR_NFEATURES ? table[f].name : NULL;
}

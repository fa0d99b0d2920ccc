/* Description: crash safety of kart queues. Deterministic: a child put or
 * get SIGKILLs itself at each step (lock taken, half written or copied,
 * written, committed, woken: the queue_put_* and queue_get_* fault points
 * of core/base/fault.h), with the message inside the ring or split across its
 * end, and the queue must then hold exactly the committed messages, none
 * torn, and work on (the dead holder's lock is recovered, also when
 * holders die one after another); a sleeper whose
 * waker died between commit and wake-up still wakes. Random: producers and
 * consumers forked over one queue are SIGKILLed at random instants,
 * hundreds of times, then every message whose put returned must be
 * delivered once (or lie in a dead consumer's buffer, taken as it died),
 * none twice, none torn, and the queue still usable. */
#include "testutil.h"

#include "fault.h"
#include "queue_private.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>

/* ---- messages: id, bytes derived from it, checksum; 12..300 bytes ---- */

static size_t msg_len(uint32_t id)
{
    return 12 + (id * 2654435761u) % 289;
}

static size_t make_msg(uint32_t id, unsigned char *m)
{
    size_t n = msg_len(id);
    memcpy(m, &id, 4);
    uint32_t sum = id;
    for (size_t i = 4; i < n - 4; i++) {
        m[i] = (unsigned char)(id * 31 + i);
        sum = sum * 16777619u ^ m[i];
    }
    memcpy(m + n - 4, &sum, 4);
    return n;
}

/* The id of a well-formed message of at most n bytes at m, or -1. */
static long check_msg(const unsigned char *m, size_t n, uint32_t max_id)
{
    if (n < 12)
        return -1;
    uint32_t id;
    memcpy(&id, m, 4);
    if (id >= max_id || msg_len(id) > n)
        return -1;
    unsigned char want[300];
    size_t len = make_msg(id, want);
    return memcmp(want, m, len) == 0 ? (long)id : -1L;
}

static void *shared_map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    return p;
}

static void expect_killed(pid_t pid)
{
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child not killed (status %#x)", st);
}

/* Waits up to ms for a child to exit 0. */
static void expect_exit0_within(pid_t pid, int ms)
{
    int st;
    for (int i = 0; i < ms; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        ck_assert_int_ge(r, 0);
        if (r == pid) {
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (%#x)", st);
            return;
        }
        usleep(1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    ck_abort_msg("child still blocked after %d ms", ms);
}

static size_t qsize_of(kart_queue *q)
{
    size_t n = 12345;
    ck_assert_int_eq(kart_queue_qsize(q, &n), 0);
    return n;
}

static void put_id(kart_queue *q, uint32_t id)
{
    unsigned char m[300];
    ck_assert_int_eq(kart_queue_put(q, m, make_msg(id, m), 0), 0);
}

/* Gets every message left and checks they are exactly want[0..n). */
static void expect_ids(kart_queue *q, const uint32_t *want, int n)
{
    unsigned char b[300];
    size_t len;
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, 0), 0);
        ck_assert_int_eq(check_msg(b, len, 1000), (long)want[i]);
    }
    ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, 0), -ETIMEDOUT);
    ck_assert_int_eq(qsize_of(q), 0);
}

/* A queue of 256 bytes whose next message starts `at` bytes in. */
static kart_queue *ring_at(uint32_t at)
{
    kart_queue *q;
    kart_queue_options o = {.capacity = 256};
    ck_assert_int_eq(kart_queue_create(&q, &o), 0);
    if (at) {
        static char pad[256];
        unsigned char b[256];
        size_t len;
        ck_assert_int_eq(kart_queue_put(q, pad, at - 4, 0), 0);
        ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, 0), 0);
    }
    return q;
}

/* ---- deterministic: each step of a put ---- */

/* _i: step * 2 + (message split across the ring's end). Message 4 is 82
 * bytes (88 in the ring): from offset 200 it wraps; 10 and 2 are 33 and
 * 47 bytes. */
START_TEST(producer_dies_at_each_step)
{
    int step = KART__FP_queue_put_locked + _i / 2;
    bool split = _i % 2;
    kart_queue *q = ring_at(split ? 200 : 0);
    ck_assert_uint_eq(msg_len(4), 82);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart__fault_kill(step, 1);
        unsigned char m[300];
        if ((step - KART__FP_queue_put_locked) % 2 == 0) {
            kart_queue_put(q, m, make_msg(4, m), -1);
        } else {
            struct iovec v = {m, make_msg(4, m)};
            kart_queue_put_many(q, &v, 1, -1);
        }
        _exit(0); /* not reached: the fault kills it */
    }
    expect_killed(pid);
    /* The dead producer may have held the producers' lock: this put
     * recovers it. */
    put_id(q, 10);
    uint32_t committed[] = {4, 10}, lost[] = {10};
    if (step >= KART__FP_queue_put_committed)
        expect_ids(q, committed, 2);
    else
        expect_ids(q, lost, 1);
    put_id(q, 2);
    uint32_t after[] = {2};
    expect_ids(q, after, 1);
    kart_queue_free(q);
}
END_TEST

START_TEST(consumer_dies_at_each_step)
{
    int step = KART__FP_queue_get_locked + _i / 2;
    bool split = _i % 2;
    kart_queue *q = ring_at(split ? 200 : 0);
    put_id(q, 4);
    put_id(q, 10);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart__fault_kill(step, 1);
        unsigned char b[300];
        size_t len;
        struct iovec v;
        if ((step - KART__FP_queue_get_locked) % 2)
            kart_queue_get(q, b, sizeof(b), &len, -1);
        else
            kart_queue_get_many(q, b, sizeof(b), &v, 1, -1);
        _exit(0);
    }
    expect_killed(pid);
    uint32_t kept[] = {4, 10}, taken[] = {10};
    if (step >= KART__FP_queue_get_committed)
        expect_ids(q, taken, 1);
    else
        expect_ids(q, kept, 2);
    put_id(q, 2);
    uint32_t after[] = {2};
    expect_ids(q, after, 1);
    kart_queue_free(q);
}
END_TEST

/* Holders die one after another, each having just recovered the lock its
 * predecessor left: every lock stays recoverable (owner-dead again, never
 * unrecoverable), qsize and full recover them as well as put and get do,
 * and nothing queued is lost. */
START_TEST(locks_recover_after_successive_dead_holders)
{
    kart_queue *q = ring_at(0);
    put_id(q, 4);
    for (int i = 0; i < 6; i++) {
        pid_t pid = kt_fork();
        if (pid == 0) {
            unsigned char m[300];
            size_t len;
            kart__fault_kill(i % 2 ? KART__FP_queue_get_locked : KART__FP_queue_put_locked, 1);
            if (i % 2)
                kart_queue_get(q, m, sizeof(m), &len, -1);
            else
                kart_queue_put(q, m, make_msg(2, m), -1);
            _exit(0);
        }
        expect_killed(pid);
    }
    ck_assert_int_eq(qsize_of(q), 1);
    ck_assert_int_eq(kart_queue_full(q), 0);
    put_id(q, 10);
    uint32_t want[] = {4, 10};
    expect_ids(q, want, 2);
    ck_assert_int_eq(kart_queue_shutdown(q, false), 0);
    unsigned char m[300];
    ck_assert_int_eq(kart_queue_put(q, m, make_msg(2, m), 0), -ESHUTDOWN);
    kart_queue_free(q);
}
END_TEST

/* A consumer sleeps on an empty queue; the producer dies after its commit
 * and before its wake-up: the consumer must still get the message. */
START_TEST(sleeper_wakes_when_waker_dies)
{
    kart_queue *q = ring_at(0);
    pid_t consumer = kt_fork();
    if (consumer == 0) {
        unsigned char b[300];
        size_t len;
        int r = kart_queue_get(q, b, sizeof(b), &len, -1);
        _exit(r == 0 && check_msg(b, len, 1000) == 4 ? 0 : 1);
    }
    usleep(50000); /* asleep by now, most likely */
    pid_t producer = kt_fork();
    if (producer == 0) {
        kart__fault_kill(KART__FP_queue_put_committed, 1);
        unsigned char m[300];
        kart_queue_put(q, m, make_msg(4, m), -1);
        _exit(0);
    }
    expect_killed(producer);
    expect_exit0_within(consumer, 5000);

    /* The other way round: a producer sleeps on a full queue and the
     * consumer dies after taking a message, before waking it. */
    static char fill[252];
    ck_assert_int_eq(kart_queue_put(q, fill, sizeof(fill), 0), 0);
    pid_t producer2 = kt_fork();
    if (producer2 == 0)
        _exit(kart_queue_put(q, fill, 100, -1) == 0 ? 0 : 1);
    usleep(50000);
    pid_t consumer2 = kt_fork();
    if (consumer2 == 0) {
        kart__fault_kill(KART__FP_queue_get_committed, 1);
        unsigned char b[300];
        size_t len;
        kart_queue_get(q, b, sizeof(b), &len, -1);
        _exit(0);
    }
    expect_killed(consumer2);
    expect_exit0_within(producer2, 5000);
    ck_assert_int_eq(qsize_of(q), 1);
    kart_queue_free(q);
}
END_TEST

/* ---- re-entry ---- */

/* A put called again by the thread inside a put (from a signal handler)
 * gets -EDEADLK, not a hang: the handler fires while the outer put sleeps
 * holding the producers' lock (a DELAY at queue_put_locked). */
static kart_queue *reentry_q;
static volatile sig_atomic_t reentry_r = 1;
static void reenter(int sig)
{
    (void)sig;
    reentry_r = kart_queue_put(reentry_q, "in", 2, 0);
}

START_TEST(put_from_a_signal_handler_inside_put_is_edeadlk)
{
    ck_assert_int_eq(kart_queue_create(&reentry_q, NULL), 0);
    kart__fault_rule rule = {.action = KART__FAULT_DELAY, .nth = 1, .times = 1, .arg = 100 * KT_MS};
    ck_assert_int_eq(kart__fault_arm(KART__FP_queue_put_locked, &rule), 0);
    struct sigaction al = {.sa_handler = reenter}, old;
    sigemptyset(&al.sa_mask);
    ck_assert_int_eq(sigaction(SIGALRM, &al, &old), 0);
    struct itimerval it = {.it_value = {0, 30000}}; /* fires inside the delay */
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
    ck_assert_int_eq(kart_queue_put(reentry_q, "out", 3, 0), 0);
    kart__fault_reset();
    ck_assert_int_eq(reentry_r, -EDEADLK);
    ck_assert_int_eq(qsize_of(reentry_q), 1); /* the outer put only */
    ck_assert_int_eq(sigaction(SIGALRM, &old, NULL), 0);
    kart_queue_free(reentry_q);
}
END_TEST

/* ---- random kills ---- */

#define NPROD 2
#define NCONS 2
#define MAXID (1u << 20)
#define SLOT_BYTES 1200 /* four messages of up to 300 bytes */
#define KILLS 300
#define KILL_SECONDS 10

typedef struct arena {
    kart_queue *q;
    _Atomic uint32_t next_id;
    _Atomic int torn;
    _Atomic uint8_t state[MAXID]; /* 0 never put, 1 put called, 2 put returned */
    _Atomic uint8_t delivered[MAXID];
    uint8_t lost_ok[MAXID]; /* the parent's: in a dead consumer's buffer */
    struct {
        _Atomic int busy; /* from before the get until all is recorded */
        unsigned char buf[SLOT_BYTES];
    } slot[NCONS];
} arena;

static void producer(arena *a, unsigned seed)
{
    unsigned char m[4][300];
    struct iovec v[4];
    for (;;) {
        int n = 1 + (int)(rand_r(&seed) % 4);
        uint32_t id = atomic_fetch_add(&a->next_id, (uint32_t)n);
        if (id + (uint32_t)n > MAXID)
            pause(); /* enough: wait to be killed */
        for (int i = 0; i < n; i++) {
            v[i] = (struct iovec){m[i], make_msg(id + (uint32_t)i, m[i])};
            atomic_store(&a->state[id + (uint32_t)i], 1);
        }
        int k = n == 1 ? (kart_queue_put(a->q, m[0], v[0].iov_len, -1) == 0 ? 1 : -1)
                       : kart_queue_put_many(a->q, v, n, -1);
        if (k < 1)
            _exit(3);
        for (int i = 0; i < n; i++)
            atomic_store(&a->state[id + (uint32_t)i], i < k ? 2 : 0);
    }
}

static void consumer(arena *a, int me, unsigned seed)
{
    unsigned char *buf = a->slot[me].buf;
    struct iovec v[4];
    for (;;) {
        atomic_store(&a->slot[me].busy, 1);
        memset(buf, 0xff, 4); /* no valid id until a get writes one */
        int max = 1 + (int)(rand_r(&seed) % 4);
        int k = kart_queue_get_many(a->q, buf, SLOT_BYTES, v, max, -1);
        if (k < 1)
            _exit(4);
        for (int i = 0; i < k; i++) {
            long id = check_msg(v[i].iov_base, v[i].iov_len, MAXID);
            if (id < 0 || msg_len((uint32_t)id) != v[i].iov_len)
                atomic_fetch_add(&a->torn, 1);
            else
                atomic_fetch_add(&a->delivered[id], 1);
        }
        atomic_store(&a->slot[me].busy, 0);
    }
}

/* After consumer me died: what its buffer holds may have left the queue
 * without being recorded. */
static void harvest(arena *a, int me)
{
    if (!atomic_load(&a->slot[me].busy))
        return;
    const unsigned char *p = a->slot[me].buf;
    size_t off = 0;
    long id;
    while (off < SLOT_BYTES && (id = check_msg(p + off, SLOT_BYTES - off, MAXID)) >= 0) {
        a->lost_ok[id] = 1;
        off += msg_len((uint32_t)id);
    }
    atomic_store(&a->slot[me].busy, 0);
}

static pid_t spawn(arena *a, int role, unsigned seed)
{
    pid_t pid = kt_fork();
    if (pid == 0) {
        if (role < NPROD)
            producer(a, seed);
        else
            consumer(a, role - NPROD, seed);
        _exit(0);
    }
    return pid;
}

static void kill_role(arena *a, pid_t *pids, int role)
{
    kill(pids[role], SIGKILL);
    int st;
    ck_assert_int_eq(waitpid(pids[role], &st, 0), pids[role]);
    ck_assert_msg(WIFSIGNALED(st), "role %d exited by itself (status %#x)", role, st);
    if (role >= NPROD)
        harvest(a, role - NPROD);
}

START_TEST(random_kills_lose_nothing)
{
    arena *a = shared_map(sizeof(*a));
    kart_queue_options o = {.capacity = 4096}; /* small: full and empty often */
    ck_assert_int_eq(kart_queue_create(&a->q, &o), 0);
    unsigned seed = (unsigned)getpid();
    pid_t pids[NPROD + NCONS];
    for (int r = 0; r < NPROD + NCONS; r++)
        pids[r] = spawn(a, r, seed + (unsigned)r);
    int kills = 0;
    int64_t began = kart_now_ns(), end = began + KILL_SECONDS * INT64_C(1000000000);
    while (kills < KILLS && kart_now_ns() < end) {
        usleep(rand_r(&seed) % 3000);
        int r = (int)(rand_r(&seed) % (NPROD + NCONS));
        kill_role(a, pids, r);
        pids[r] = spawn(a, r, seed + (unsigned)kills);
        kills++;
    }
    for (int r = 0; r < NPROD + NCONS; r++)
        kill_role(a, pids, r);

    /* Drain what is left (this process's gets recover the consumers'
     * lock if its holder died). */
    unsigned char b[300];
    size_t len;
    int r, left = 0;
    while ((r = kart_queue_get(a->q, b, sizeof(b), &len, 0)) == 0) {
        long id = check_msg(b, len, MAXID);
        ck_assert_msg(id >= 0 && msg_len((uint32_t)id) == len, "torn message left in the queue");
        atomic_fetch_add(&a->delivered[id], 1);
        left++;
    }
    ck_assert_int_eq(r, -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&a->torn), 0);

    uint32_t n = atomic_load(&a->next_id);
    if (n > MAXID)
        n = MAXID;
    uint32_t returned = 0, delivered = 0, excused = 0;
    /* Plain ifs: a million ck_assert calls are slow under the sanitizers. */
    for (uint32_t id = 0; id < n; id++) {
        int d = atomic_load(&a->delivered[id]), st = atomic_load(&a->state[id]);
        if (d > 1)
            ck_abort_msg("message %u delivered %d times", id, d);
        if (st == 0 && d != 0)
            ck_abort_msg("message %u delivered but never put", id);
        if (st == 2) {
            returned++;
            if (d == 0 && !a->lost_ok[id])
                ck_abort_msg("message %u put but never delivered", id);
            excused += d == 0;
        }
        delivered += (uint32_t)d;
    }
    printf("random kills: %d kills in %.1f s, %u messages put, %u delivered, %d drained at "
           "the end, %u taken by consumers as they died\n",
           kills + NPROD + NCONS, (double)(kart_now_ns() - began) / 1e9, returned, delivered, left,
           excused);
    ck_assert_int_ge(kills, 100);
    ck_assert_uint_gt(delivered, 1000);

    /* Still usable. */
    ck_assert_int_eq(kart_queue_put(a->q, "after", 5, 0), 0);
    ck_assert_int_eq(kart_queue_get(a->q, b, sizeof(b), &len, 0), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(qsize_of(a->q), 0);
    kart_queue_free(a->q);
    munmap(a, sizeof(*a));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_crash");
    TCase *tc = tcase_create("fault_steps");
    int nput = KART__FP_queue_put_woken - KART__FP_queue_put_locked + 1;
    int nget = KART__FP_queue_get_woken - KART__FP_queue_get_locked + 1;
    tcase_add_loop_test(tc, producer_dies_at_each_step, 0, nput * 2);
    tcase_add_loop_test(tc, consumer_dies_at_each_step, 0, nget * 2);
    tcase_add_test(tc, locks_recover_after_successive_dead_holders);
    tcase_add_test(tc, sleeper_wakes_when_waker_dies);
    tcase_add_test(tc, put_from_a_signal_handler_inside_put_is_edeadlk);
    suite_add_tcase(s, tc);

    tc = tcase_create("random_kills");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, random_kills_lose_nothing);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: Semaphore, BoundedSemaphore, Event (kart_flag), Barrier and
 * RWLock of kart/sync.h: each documented error, every timeout path (never
 * early), wake-up counts, stress with 8 threads, and the shared forms
 * across fork. Some cases peek at private fields (waiters_, state_) to
 * know that threads are asleep, or to reach a limit no test could fill. */
#include "testutil.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define NTHREADS 8

/* ---- helpers ---- */

static void spawn(pthread_t *t, int n, void *(*fn)(void *), void *arg)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, fn, arg), 0);
}

/* Joins n threads and returns the sum of their results (intptr_t). */
static intptr_t join_sum(pthread_t *t, int n)
{
    intptr_t sum = 0;
    for (int i = 0; i < n; i++) {
        void *r;
        ck_assert_int_eq(pthread_join(t[i], &r), 0);
        sum += (intptr_t)r;
    }
    return sum;
}

/* Waits (up to 10 s) until *word reaches want: the threads counted in a
 * waiters_ field are asleep or about to be. */
static void await_count(_Atomic uint32_t *word, uint32_t want)
{
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (atomic_load(word) < want) {
        ck_assert_msg(kart_now_ns() < end, "waiters never reached %u", want);
        usleep(1000);
    }
}

static void *shared_map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    return p;
}

/* Waits for n children; fails unless each exited 0. */
static void reap(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        int st;
        kt_wait_child(pids[i], &st);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed (status %#x)", i, st);
    }
}

#define ASSERT_NOT_EARLY(t0, ns) ck_assert_int_ge(kart_now_ns() - (t0), (ns))

/* ---- Semaphore ---- */

START_TEST(sem_init_rejects_bad_arguments)
{
    kart_sem s;
    ck_assert_int_eq(kart_sem_init(NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_sem_init(&s, KART_SEM_VALUE_MAX + 1, 0), -EINVAL);
    ck_assert_int_eq(kart_sem_init(&s, 1, KART_SYNC_ROBUST), -EINVAL);
    ck_assert_int_eq(kart_sem_init(&s, 1, 0x100), -EINVAL);
    ck_assert_int_eq(kart_sem_init_bounded(NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_sem_init_bounded(&s, (size_t)-1, 0), -EINVAL);
    ck_assert_int_eq(kart_sem_init_bounded(&s, 1, KART_SYNC_ROBUST), -EINVAL);
    ck_assert_int_eq(kart_sem_init(&s, INT32_MAX, KART_SYNC_SHARED), 0);
    ck_assert_int_eq(kart_sem_value(&s), INT32_MAX);
}
END_TEST

START_TEST(sem_null_and_bad_counts)
{
    kart_sem s;
    ck_assert_int_eq(kart_sem_init(&s, 0, 0), 0);
    ck_assert_int_eq(kart_sem_acquire(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_sem_release(NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_sem_release(&s, 0), -EINVAL);
    ck_assert_int_eq(kart_sem_release(&s, KART_SEM_VALUE_MAX + 1), -EOVERFLOW);
    ck_assert_int_eq(kart_sem_release(&s, (size_t)-1), -EOVERFLOW);
    ck_assert_int_eq(kart_sem_value(&s), 0);
    ck_assert_int_eq(kart_sem_value(NULL), -EINVAL);
    ck_assert_int_eq(kart_sem_value(&s), 0);
}
END_TEST

START_TEST(sem_counts_units)
{
    kart_sem s;
    ck_assert_int_eq(kart_sem_init(&s, 3, 0), 0);
    ck_assert_int_eq(kart_sem_value(&s), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_sem_acquire(&s, 0), 0);
    ck_assert_int_eq(kart_sem_value(&s), 0);
    ck_assert_int_eq(kart_sem_acquire(&s, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_sem_release(&s, 5), 0);
    ck_assert_int_eq(kart_sem_value(&s), 5);
    ck_assert_int_eq(kart_sem_acquire(&s, -1), 0);
    ck_assert_int_eq(kart_sem_acquire(&s, 10 * KT_MS), 0);
    ck_assert_int_eq(kart_sem_value(&s), 3);
}
END_TEST

START_TEST(sem_acquire_times_out_not_early)
{
    kart_sem s;
    ck_assert_int_eq(kart_sem_init(&s, 0, 0), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_sem_acquire(&s, 50 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 50 * KT_MS);
    ck_assert_int_eq(kart_sem_value(&s), 0);
}
END_TEST

START_TEST(sem_bounded_refuses_overflow)
{
    kart_sem s;
    ck_assert_int_eq(kart_sem_init_bounded(&s, 2, 0), 0);
    ck_assert_int_eq(kart_sem_release(&s, 1), -EOVERFLOW);
    ck_assert_int_eq(kart_sem_value(&s), 2);
    ck_assert_int_eq(kart_sem_acquire(&s, 0), 0);
    ck_assert_int_eq(kart_sem_release(&s, 2), -EOVERFLOW);
    ck_assert_int_eq(kart_sem_value(&s), 1);
    ck_assert_int_eq(kart_sem_release(&s, 1), 0);
    ck_assert_int_eq(kart_sem_value(&s), 2);

    ck_assert_int_eq(kart_sem_init_bounded(&s, 0, 0), 0);
    ck_assert_int_eq(kart_sem_release(&s, 1), -EOVERFLOW);
    ck_assert_int_eq(kart_sem_value(&s), 0);

    /* Unbounded: the value stops at INT32_MAX. */
    ck_assert_int_eq(kart_sem_init(&s, INT32_MAX - 1, 0), 0);
    ck_assert_int_eq(kart_sem_release(&s, 2), -EOVERFLOW);
    ck_assert_int_eq(kart_sem_release(&s, 1), 0);
    ck_assert_int_eq(kart_sem_value(&s), INT32_MAX);
}
END_TEST

static kart_sem wake_sem;
static atomic_int wake_passed;

static void *sem_waiter(void *arg)
{
    (void)arg;
    if (kart_sem_acquire(&wake_sem, -1) != 0)
        return (void *)1;
    atomic_fetch_add(&wake_passed, 1);
    return NULL;
}

START_TEST(sem_release_n_wakes_n_waiters)
{
    pthread_t t[NTHREADS];
    ck_assert_int_eq(kart_sem_init(&wake_sem, 0, 0), 0);
    spawn(t, NTHREADS, sem_waiter, NULL);
    await_count(&wake_sem.waiters_, NTHREADS);
    ck_assert_int_eq(kart_sem_release(&wake_sem, 3), 0);
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (atomic_load(&wake_passed) < 3)
        ck_assert(kart_now_ns() < end);
    usleep(50000);
    ck_assert_int_eq(atomic_load(&wake_passed), 3);
    ck_assert_int_eq(kart_sem_release(&wake_sem, NTHREADS - 3), 0);
    ck_assert_int_eq(join_sum(t, NTHREADS), 0);
    ck_assert_int_eq(atomic_load(&wake_passed), NTHREADS);
    ck_assert_int_eq(kart_sem_value(&wake_sem), 0);
}
END_TEST

#define SEM_K 3
#define SEM_ITERS 20000
static kart_sem stress_sem, mutex_sem;
static atomic_int inside, max_inside;
static long plain_counter; /* guarded by mutex_sem */

static void *sem_stress_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < SEM_ITERS; i++) {
        int64_t timeout = i % 3 == 0 ? -1 : i % 3 == 1 ? 0 : 1000 * KT_MS;
        int r = kart_sem_acquire(&stress_sem, timeout);
        if (r != 0 && r != -ETIMEDOUT)
            return (void *)1;
        if (r == 0) {
            int now = atomic_fetch_add(&inside, 1) + 1;
            int m = atomic_load(&max_inside);
            while (now > m && !atomic_compare_exchange_weak(&max_inside, &m, now))
                ;
            atomic_fetch_sub(&inside, 1);
            if (kart_sem_release(&stress_sem, 1) != 0)
                return (void *)1;
        }

        if (kart_sem_acquire(&mutex_sem, -1) != 0)
            return (void *)1;
        plain_counter++;
        if (kart_sem_release(&mutex_sem, 1) != 0)
            return (void *)1;
    }
    return NULL;
}

START_TEST(sem_stress_8_threads)
{
    pthread_t t[NTHREADS];
    ck_assert_int_eq(kart_sem_init(&stress_sem, SEM_K, 0), 0);
    ck_assert_int_eq(kart_sem_init_bounded(&mutex_sem, 1, 0), 0);
    spawn(t, NTHREADS, sem_stress_thread, NULL);
    ck_assert_int_eq(join_sum(t, NTHREADS), 0);
    ck_assert_int_le(atomic_load(&max_inside), SEM_K);
    ck_assert_int_ge(atomic_load(&max_inside), 1);
    ck_assert_int_eq(plain_counter, (long)NTHREADS * SEM_ITERS);
    ck_assert_int_eq(kart_sem_value(&stress_sem), SEM_K);
    ck_assert_int_eq(kart_sem_value(&mutex_sem), 1);
}
END_TEST

struct shared_sem {
    kart_sem sem;
    atomic_int inside, max_inside, violations;
};

START_TEST(sem_shared_across_fork)
{
    struct shared_sem *sh = shared_map(sizeof(*sh));
    ck_assert_int_eq(kart_sem_init(&sh->sem, 2, KART_SYNC_SHARED), 0);
    pid_t pids[4];
    for (int c = 0; c < 4; c++) {
        pids[c] = kt_fork();
        if (pids[c] == 0) {
            for (int i = 0; i < 2000; i++) {
                if (kart_sem_acquire(&sh->sem, -1) != 0)
                    _exit(1);
                int now = atomic_fetch_add(&sh->inside, 1) + 1;
                if (now > 2)
                    atomic_fetch_add(&sh->violations, 1);
                int m = atomic_load(&sh->max_inside);
                while (now > m && !atomic_compare_exchange_weak(&sh->max_inside, &m, now))
                    ;
                if (i % 64 == 0)
                    usleep(100);
                atomic_fetch_sub(&sh->inside, 1);
                if (kart_sem_release(&sh->sem, 1) != 0)
                    _exit(1);
            }
            _exit(0);
        }
    }
    reap(pids, 4);
    ck_assert_int_eq(atomic_load(&sh->violations), 0);
    ck_assert_int_le(atomic_load(&sh->max_inside), 2);
    ck_assert_int_eq(kart_sem_value(&sh->sem), 2);
    munmap(sh, sizeof(*sh));
}
END_TEST

/* ---- Event ---- */

START_TEST(flag_rejects_bad_arguments)
{
    kart_flag f;
    ck_assert_int_eq(kart_flag_init(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_flag_init(&f, KART_SYNC_ROBUST), -EINVAL);
    ck_assert_int_eq(kart_flag_set(NULL), -EINVAL);
    ck_assert_int_eq(kart_flag_clear(NULL), -EINVAL);
    ck_assert_int_eq(kart_flag_is_set(NULL), -EINVAL);
    ck_assert_int_eq(kart_flag_wait(NULL, 0), -EINVAL);
}
END_TEST

START_TEST(flag_set_clear_is_set)
{
    kart_flag f;
    ck_assert_int_eq(kart_flag_init(&f, KART_SYNC_SHARED), 0);
    ck_assert_int_eq(kart_flag_is_set(&f), 0);
    ck_assert_int_eq(kart_flag_wait(&f, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_flag_set(&f), 0);
    ck_assert_int_eq(kart_flag_is_set(&f), 1);
    ck_assert_int_eq(kart_flag_set(&f), 0);
    ck_assert_int_eq(kart_flag_is_set(&f), 1);
    ck_assert_int_eq(kart_flag_wait(&f, 0), 0);
    ck_assert_int_eq(kart_flag_wait(&f, -1), 0);
    ck_assert_int_eq(kart_flag_wait(&f, 10 * KT_MS), 0);
    ck_assert_int_eq(kart_flag_clear(&f), 0);
    ck_assert_int_eq(kart_flag_is_set(&f), 0);
    ck_assert_int_eq(kart_flag_clear(&f), 0);
    ck_assert_int_eq(kart_flag_is_set(&f), 0);
    ck_assert_int_eq(kart_flag_wait(&f, 0), -ETIMEDOUT);
}
END_TEST

START_TEST(flag_wait_times_out_not_early)
{
    kart_flag f;
    ck_assert_int_eq(kart_flag_init(&f, 0), 0);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_flag_wait(&f, 50 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 50 * KT_MS);
    ck_assert_int_eq(kart_flag_is_set(&f), 0);
}
END_TEST

static kart_flag wake_flag;

static void *flag_waiter(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)(kart_flag_wait(&wake_flag, 10000 * KT_MS) != 0);
}

START_TEST(flag_set_wakes_all_waiters)
{
    pthread_t t[NTHREADS];
    ck_assert_int_eq(kart_flag_init(&wake_flag, 0), 0);
    spawn(t, NTHREADS, flag_waiter, NULL);
    await_count(&wake_flag.waiters_, NTHREADS);
    ck_assert_int_eq(kart_flag_set(&wake_flag), 0);
    ck_assert_int_eq(join_sum(t, NTHREADS), 0);
}
END_TEST

START_TEST(flag_pulse_wakes_all_waiters)
{
    /* A set cleared at once still releases those waiting (Python's
     * Event does the same). */
    pthread_t t[NTHREADS];
    ck_assert_int_eq(kart_flag_init(&wake_flag, 0), 0);
    spawn(t, NTHREADS, flag_waiter, NULL);
    await_count(&wake_flag.waiters_, NTHREADS);
    ck_assert_int_eq(kart_flag_set(&wake_flag), 0);
    ck_assert_int_eq(kart_flag_clear(&wake_flag), 0);
    ck_assert_int_eq(join_sum(t, NTHREADS), 0);
    ck_assert_int_eq(kart_flag_is_set(&wake_flag), 0);
}
END_TEST

#define FLAG_ROUNDS 300
static kart_flag round_flags[FLAG_ROUNDS];
static long round_data[FLAG_ROUNDS];

static void *flag_consumer(void *arg)
{
    (void)arg;
    for (int r = 0; r < FLAG_ROUNDS; r++) {
        if (kart_flag_wait(&round_flags[r], -1) != 0 || round_data[r] != r * 7)
            return (void *)1;
    }
    return NULL;
}

START_TEST(flag_stress_8_threads)
{
    pthread_t t[NTHREADS];
    for (int r = 0; r < FLAG_ROUNDS; r++)
        ck_assert_int_eq(kart_flag_init(&round_flags[r], 0), 0);
    spawn(t, NTHREADS, flag_consumer, NULL);
    for (int r = 0; r < FLAG_ROUNDS; r++) {
        round_data[r] = r * 7; /* published by the set */
        ck_assert_int_eq(kart_flag_set(&round_flags[r]), 0);
        if (r % 16 == 0)
            usleep(200);
    }
    ck_assert_int_eq(join_sum(t, NTHREADS), 0);
}
END_TEST

START_TEST(flag_shared_across_fork)
{
    kart_flag *f = shared_map(sizeof(*f));
    ck_assert_int_eq(kart_flag_init(f, KART_SYNC_SHARED), 0);
    pid_t pids[4];
    for (int c = 0; c < 4; c++) {
        pids[c] = kt_fork();
        if (pids[c] == 0)
            _exit(kart_flag_wait(f, 10000 * KT_MS) == 0 && kart_flag_is_set(f) == 1 ? 0 : 1);
    }
    await_count(&f->waiters_, 4);
    ck_assert_int_eq(kart_flag_set(f), 0);
    reap(pids, 4);
    munmap(f, sizeof(*f));
}
END_TEST

/* ---- Barrier ---- */

START_TEST(barrier_rejects_bad_arguments)
{
    kart_barrier b;
    ck_assert_int_eq(kart_barrier_init(NULL, 2, 0, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_barrier_init(&b, 0, 0, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_barrier_init(&b, (size_t)-1, 0, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_barrier_init(&b, KART_BARRIER_MAX_PARTIES + 1, 0, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_barrier_init(&b, 2, KART_SYNC_ROBUST, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_barrier_init(&b, KART_BARRIER_MAX_PARTIES, 0, NULL, NULL), 0);
    ck_assert_int_eq(kart_barrier_wait(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_barrier_abort(NULL), -EINVAL);
    ck_assert_int_eq(kart_barrier_reset(NULL), -EINVAL);
    ck_assert_int_eq(kart_barrier_parties(NULL), -EINVAL);
    ck_assert_int_eq(kart_barrier_n_waiting(NULL), -EINVAL);
    ck_assert_int_eq(kart_barrier_broken(NULL), -EINVAL);
}
END_TEST

static void count_action(void *arg)
{
    (*(int *)arg)++;
}

START_TEST(barrier_one_party_runs_action)
{
    kart_barrier b;
    int runs = 0;
    ck_assert_int_eq(kart_barrier_init(&b, 1, 0, count_action, &runs), 0);
    ck_assert_int_eq(kart_barrier_parties(&b), 1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_barrier_wait(&b, 0), 0);
    ck_assert_int_eq(runs, 3);
    ck_assert_int_eq(kart_barrier_n_waiting(&b), 0);
    ck_assert_int_eq(kart_barrier_broken(&b), 0);
}
END_TEST

#define BARRIER_ROUNDS 1000
static kart_barrier round_barrier;
static int action_runs; /* written by the action only */
static atomic_uint index_seen[BARRIER_ROUNDS];
static int slots[2][NTHREADS];

static void *barrier_rounds_thread(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int r = 0; r < BARRIER_ROUNDS; r++) {
        slots[r % 2][me] = r;
        int idx = kart_barrier_wait(&round_barrier, -1);
        if (idx < 0 || idx >= NTHREADS)
            return (void *)1;
        atomic_fetch_or(&index_seen[r], 1u << idx);
        if (action_runs != r + 1)
            return (void *)2;
        for (int i = 0; i < NTHREADS; i++)
            if (slots[r % 2][i] != r)
                return (void *)4;
    }
    return NULL;
}

START_TEST(barrier_8_threads_1000_rounds)
{
    pthread_t t[NTHREADS];
    ck_assert_int_eq(kart_barrier_init(&round_barrier, NTHREADS, 0, count_action, &action_runs), 0);
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, barrier_rounds_thread, (void *)(intptr_t)i),
                         0);
    ck_assert_int_eq(join_sum(t, NTHREADS), 0);
    ck_assert_int_eq(action_runs, BARRIER_ROUNDS);
    for (int r = 0; r < BARRIER_ROUNDS; r++)
        ck_assert_uint_eq(atomic_load(&index_seen[r]), (1u << NTHREADS) - 1);
    ck_assert_int_eq(kart_barrier_broken(&round_barrier), 0);
    ck_assert_int_eq(kart_barrier_n_waiting(&round_barrier), 0);
}
END_TEST

static kart_barrier grp_barrier;
static atomic_int idx_count[2];

/* Passes in pairs until the barrier is aborted: a thread's last wait may
 * find no partner, so the end is an abort, not a count. */
static void *barrier_group_thread(void *arg)
{
    (void)arg;
    for (;;) {
        int idx = kart_barrier_wait(&grp_barrier, -1);
        if (idx == KART_EBROKEN)
            return NULL;
        if (idx < 0 || idx > 1)
            return (void *)1;
        atomic_fetch_add(&idx_count[idx], 1);
    }
}

START_TEST(barrier_more_threads_than_parties)
{
    pthread_t t[NTHREADS];
    ck_assert_int_eq(kart_barrier_init(&grp_barrier, 2, 0, NULL, NULL), 0);
    spawn(t, NTHREADS, barrier_group_thread, NULL);
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (atomic_load(&idx_count[1]) < 800) {
        ck_assert(kart_now_ns() < end);
        usleep(1000);
    }
    ck_assert_int_eq(kart_barrier_abort(&grp_barrier), 0);
    ck_assert_int_eq(join_sum(t, NTHREADS), 0);
    /* Every round released one party with each index. */
    ck_assert_int_eq(atomic_load(&idx_count[0]), atomic_load(&idx_count[1]));
    ck_assert_int_eq(kart_barrier_broken(&grp_barrier), 1);
}
END_TEST

static kart_barrier brk_barrier;

static void *barrier_waiter(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)kart_barrier_wait(&brk_barrier, -1);
}

static void *barrier_result(pthread_t t)
{
    void *r;
    ck_assert_int_eq(pthread_join(t, &r), 0);
    return r;
}

static void run_full_round(kart_barrier *b, int parties)
{
    pthread_t t[NTHREADS];
    spawn(t, parties - 1, barrier_waiter, NULL);
    int mine = kart_barrier_wait(b, 10000 * KT_MS);
    unsigned seen = 1u << mine;
    for (int i = 0; i < parties - 1; i++) {
        intptr_t r = (intptr_t)barrier_result(t[i]);
        ck_assert_int_ge(r, 0);
        seen |= 1u << r;
    }
    ck_assert_uint_eq(seen, (1u << parties) - 1);
}

START_TEST(barrier_timeout_breaks_it_for_all)
{
    pthread_t t[2];
    ck_assert_int_eq(kart_barrier_init(&brk_barrier, 4, 0, NULL, NULL), 0);
    spawn(t, 2, barrier_waiter, NULL);
    await_count(&brk_barrier.waiters_, 2);
    ck_assert_int_eq(kart_barrier_n_waiting(&brk_barrier), 2);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_barrier_wait(&brk_barrier, 50 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 50 * KT_MS);
    ck_assert_int_eq((intptr_t)barrier_result(t[0]), KART_EBROKEN);
    ck_assert_int_eq((intptr_t)barrier_result(t[1]), KART_EBROKEN);
    ck_assert_int_eq(kart_barrier_broken(&brk_barrier), 1);
    ck_assert_int_eq(kart_barrier_n_waiting(&brk_barrier), 0);
    ck_assert_int_eq(kart_barrier_wait(&brk_barrier, -1), KART_EBROKEN);
    ck_assert_int_eq(kart_barrier_reset(&brk_barrier), 0);
    ck_assert_int_eq(kart_barrier_broken(&brk_barrier), 0);
    run_full_round(&brk_barrier, 4);
}
END_TEST

START_TEST(barrier_timeout_zero_breaks_it)
{
    ck_assert_int_eq(kart_barrier_init(&brk_barrier, 2, 0, NULL, NULL), 0);
    ck_assert_int_eq(kart_barrier_wait(&brk_barrier, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_barrier_broken(&brk_barrier), 1);
    ck_assert_int_eq(kart_barrier_wait(&brk_barrier, 0), KART_EBROKEN);
    ck_assert_int_eq(kart_barrier_reset(&brk_barrier), 0);
    run_full_round(&brk_barrier, 2);
}
END_TEST

START_TEST(barrier_abort_breaks_waiters_and_future_waits)
{
    pthread_t t[2];
    ck_assert_int_eq(kart_barrier_init(&brk_barrier, 3, 0, NULL, NULL), 0);
    spawn(t, 2, barrier_waiter, NULL);
    await_count(&brk_barrier.waiters_, 2);
    ck_assert_int_eq(kart_barrier_abort(&brk_barrier), 0);
    ck_assert_int_eq((intptr_t)barrier_result(t[0]), KART_EBROKEN);
    ck_assert_int_eq((intptr_t)barrier_result(t[1]), KART_EBROKEN);
    ck_assert_int_eq(kart_barrier_broken(&brk_barrier), 1);
    ck_assert_int_eq(kart_barrier_wait(&brk_barrier, -1), KART_EBROKEN);
    ck_assert_int_eq(kart_barrier_abort(&brk_barrier), 0);
    ck_assert_int_eq(kart_barrier_broken(&brk_barrier), 1);
    ck_assert_int_eq(kart_barrier_reset(&brk_barrier), 0);
    run_full_round(&brk_barrier, 3);
}
END_TEST

START_TEST(barrier_reset_breaks_waiters_then_works)
{
    pthread_t t[2];
    ck_assert_int_eq(kart_barrier_init(&brk_barrier, 3, 0, NULL, NULL), 0);
    ck_assert_int_eq(kart_barrier_reset(&brk_barrier), 0); /* empty: no-op */
    spawn(t, 2, barrier_waiter, NULL);
    await_count(&brk_barrier.waiters_, 2);
    ck_assert_int_eq(kart_barrier_reset(&brk_barrier), 0);
    ck_assert_int_eq((intptr_t)barrier_result(t[0]), KART_EBROKEN);
    ck_assert_int_eq((intptr_t)barrier_result(t[1]), KART_EBROKEN);
    ck_assert_int_eq(kart_barrier_broken(&brk_barrier), 0);
    ck_assert_int_eq(kart_barrier_n_waiting(&brk_barrier), 0);
    run_full_round(&brk_barrier, 3);
    run_full_round(&brk_barrier, 3);
}
END_TEST

static void abort_action(void *arg)
{
    ck_assert_int_eq(kart_barrier_abort(arg), 0);
}

static void reset_action(void *arg)
{
    ck_assert_int_eq(kart_barrier_abort(arg), 0);
    ck_assert_int_eq(kart_barrier_reset(arg), 0);
}

START_TEST(barrier_abort_during_action_breaks_next_round)
{
    ck_assert_int_eq(kart_barrier_init(&brk_barrier, 3, 0, abort_action, &brk_barrier), 0);
    run_full_round(&brk_barrier, 3);
    ck_assert_int_eq(kart_barrier_broken(&brk_barrier), 1);
    ck_assert_int_eq(kart_barrier_wait(&brk_barrier, -1), KART_EBROKEN);

    ck_assert_int_eq(kart_barrier_init(&brk_barrier, 3, 0, reset_action, &brk_barrier), 0);
    run_full_round(&brk_barrier, 3);
    ck_assert_int_eq(kart_barrier_broken(&brk_barrier), 0);
    run_full_round(&brk_barrier, 3);
}
END_TEST

static kart_barrier chaos_barrier;
static atomic_int chaos_idx[NTHREADS], chaos_done;

/* Waits with short and endless timeouts, resetting after each break;
 * ends when the test aborts the barrier for good. */
static void *barrier_chaos_thread(void *arg)
{
    unsigned seed = (unsigned)(intptr_t)arg;
    intptr_t bad = 0;
    for (int i = 0; i < 400; i++) {
        seed = seed * 1103515245 + 12345;
        int64_t timeout = (seed >> 16) % 4 == 0 ? 200000 : -1;
        int r = kart_barrier_wait(&chaos_barrier, timeout);
        if (r >= 0 && r < NTHREADS)
            atomic_fetch_add(&chaos_idx[r], 1);
        else if (r == -ETIMEDOUT || r == KART_EBROKEN)
            kart_barrier_reset(&chaos_barrier);
        else
            bad = 1;
    }
    atomic_fetch_add(&chaos_done, 1);
    return (void *)bad;
}

START_TEST(barrier_stress_timeouts_and_resets)
{
    pthread_t t[NTHREADS];
    ck_assert_int_eq(kart_barrier_init(&chaos_barrier, NTHREADS, 0, NULL, NULL), 0);
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(
            pthread_create(&t[i], NULL, barrier_chaos_thread, (void *)(intptr_t)(i + 1)), 0);
    /* A thread whose partners have all finished would wait for ever:
     * aborting frees it, and again after any reset it makes. */
    int64_t end = kart_now_ns() + 30000 * KT_MS;
    while (atomic_load(&chaos_done) < NTHREADS) {
        ck_assert(kart_now_ns() < end);
        usleep(20000);
        if (atomic_load(&chaos_done) > 0)
            ck_assert_int_eq(kart_barrier_abort(&chaos_barrier), 0);
    }
    ck_assert_int_eq(join_sum(t, NTHREADS), 0);
    /* A round hands out every index or none. */
    for (int i = 1; i < NTHREADS; i++)
        ck_assert_int_eq(atomic_load(&chaos_idx[i]), atomic_load(&chaos_idx[0]));
    ck_assert_int_eq(kart_barrier_reset(&chaos_barrier), 0);
    ck_assert_int_eq(kart_barrier_n_waiting(&chaos_barrier), 0);
    ck_assert_int_eq(kart_barrier_broken(&chaos_barrier), 0);
}
END_TEST

#define FORK_ROUNDS 100
struct shared_barrier {
    kart_barrier b;
    int actions; /* written by the action, read after each round */
    atomic_uint seen[FORK_ROUNDS];
};

static void shared_action(void *arg)
{
    ((struct shared_barrier *)arg)->actions++;
}

START_TEST(barrier_shared_across_fork)
{
    struct shared_barrier *sh = shared_map(sizeof(*sh));
    ck_assert_int_eq(kart_barrier_init(&sh->b, 4, KART_SYNC_SHARED, shared_action, sh), 0);
    pid_t pids[4];
    for (int c = 0; c < 4; c++) {
        pids[c] = kt_fork();
        if (pids[c] == 0) {
            for (int r = 0; r < FORK_ROUNDS; r++) {
                int idx = kart_barrier_wait(&sh->b, 10000 * KT_MS);
                if (idx < 0 || idx > 3 || sh->actions != r + 1)
                    _exit(1);
                atomic_fetch_or(&sh->seen[r], 1u << idx);
            }
            _exit(0);
        }
    }
    reap(pids, 4);
    ck_assert_int_eq(sh->actions, FORK_ROUNDS);
    for (int r = 0; r < FORK_ROUNDS; r++)
        ck_assert_uint_eq(atomic_load(&sh->seen[r]), 0xf);
    munmap(sh, sizeof(*sh));
}
END_TEST

/* ---- RWLock ---- */

START_TEST(rwlock_rejects_bad_arguments)
{
    kart_rwlock rw;
    ck_assert_int_eq(kart_rwlock_init(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_rwlock_init(&rw, KART_SYNC_ROBUST), -EINVAL);
    ck_assert_int_eq(kart_rwlock_rdlock(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_rwlock_wrlock(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_rwlock_unlock(NULL), -EINVAL);
    ck_assert_int_eq(kart_rwlock_init(&rw, KART_SYNC_SHARED), 0);
    ck_assert_int_eq(kart_rwlock_unlock(&rw), -EPERM);
}
END_TEST

START_TEST(rwlock_unlock_releases_what_is_held)
{
    kart_rwlock rw;
    ck_assert_int_eq(kart_rwlock_init(&rw, 0), 0);
    ck_assert_int_eq(kart_rwlock_wrlock(&rw, 0), 0);
    ck_assert_int_eq(kart_rwlock_wrlock(&rw, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_rwlock_rdlock(&rw, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_rwlock_unlock(&rw), 0);
    ck_assert_int_eq(kart_rwlock_unlock(&rw), -EPERM);
    ck_assert_int_eq(kart_rwlock_rdlock(&rw, 0), 0);
    ck_assert_int_eq(kart_rwlock_rdlock(&rw, -1), 0);
    ck_assert_int_eq(kart_rwlock_wrlock(&rw, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_rwlock_unlock(&rw), 0);
    ck_assert_int_eq(kart_rwlock_wrlock(&rw, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_rwlock_unlock(&rw), 0);
    ck_assert_int_eq(kart_rwlock_unlock(&rw), -EPERM);
    ck_assert_int_eq(kart_rwlock_wrlock(&rw, 10 * KT_MS), 0);
    ck_assert_int_eq(kart_rwlock_unlock(&rw), 0);
}
END_TEST

START_TEST(rwlock_rdlock_refuses_past_max_readers)
{
    kart_rwlock rw;
    ck_assert_int_eq(kart_rwlock_init(&rw, 0), 0);
    /* No test can take 2^30 - 1 holds: start one short of the limit. */
    atomic_store(&rw.state_, KART_RWLOCK_MAX_READERS - 1);
    ck_assert_int_eq(kart_rwlock_rdlock(&rw, 0), 0);
    ck_assert_int_eq(kart_rwlock_rdlock(&rw, 0), -EOVERFLOW);
    ck_assert_int_eq(kart_rwlock_rdlock(&rw, -1), -EOVERFLOW);
    ck_assert_int_eq(kart_rwlock_unlock(&rw), 0);
    ck_assert_int_eq(kart_rwlock_rdlock(&rw, 0), 0);
}
END_TEST

static kart_rwlock the_rw;

static void *try_rd(void *arg)
{
    return (void *)(intptr_t)kart_rwlock_rdlock(&the_rw, (int64_t)(intptr_t)arg);
}

static void *try_wr(void *arg)
{
    return (void *)(intptr_t)kart_rwlock_wrlock(&the_rw, (int64_t)(intptr_t)arg);
}

/* Runs fn(timeout) in another thread and returns its result. */
static int in_thread(void *(*fn)(void *), int64_t timeout)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, (void *)(intptr_t)timeout), 0);
    return (int)(intptr_t)barrier_result(t);
}

START_TEST(rwlock_readers_share_writers_exclude)
{
    ck_assert_int_eq(kart_rwlock_init(&the_rw, 0), 0);
    ck_assert_int_eq(kart_rwlock_rdlock(&the_rw, 0), 0);
    ck_assert_int_eq(in_thread(try_rd, 0), 0); /* two readers at once */
    ck_assert_int_eq(in_thread(try_wr, 0), -ETIMEDOUT);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(in_thread(try_wr, 50 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 50 * KT_MS);
    /* The writer that gave up no longer holds readers off. */
    ck_assert_int_eq(in_thread(try_rd, 0), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_rwlock_unlock(&the_rw), 0);
    ck_assert_int_eq(kart_rwlock_unlock(&the_rw), -EPERM);

    ck_assert_int_eq(kart_rwlock_wrlock(&the_rw, -1), 0);
    ck_assert_int_eq(in_thread(try_rd, 0), -ETIMEDOUT);
    t0 = kart_now_ns();
    ck_assert_int_eq(in_thread(try_rd, 50 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 50 * KT_MS);
    t0 = kart_now_ns();
    ck_assert_int_eq(in_thread(try_wr, 50 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 50 * KT_MS);
    ck_assert_int_eq(kart_rwlock_unlock(&the_rw), 0);
    ck_assert_int_eq(in_thread(try_wr, 0), 0);
    ck_assert_int_eq(kart_rwlock_unlock(&the_rw), 0);
}
END_TEST

START_TEST(rwlock_waiting_writer_holds_off_readers)
{
    pthread_t w;
    ck_assert_int_eq(kart_rwlock_init(&the_rw, 0), 0);
    ck_assert_int_eq(kart_rwlock_rdlock(&the_rw, 0), 0);
    ck_assert_int_eq(pthread_create(&w, NULL, try_wr, (void *)(intptr_t)-1), 0);
    await_count(&the_rw.wwait_, 1);
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (!(atomic_load(&the_rw.state_) & (1u << 31)))
        ck_assert(kart_now_ns() < end);
    ck_assert_int_eq(in_thread(try_rd, 0), -ETIMEDOUT);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(in_thread(try_rd, 30 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 30 * KT_MS);
    ck_assert_int_eq(kart_rwlock_unlock(&the_rw), 0);
    ck_assert_int_eq((intptr_t)barrier_result(w), 0); /* the writer got in */
    ck_assert_int_eq(kart_rwlock_rdlock(&the_rw, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_rwlock_unlock(&the_rw), 0);
    ck_assert_int_eq(kart_rwlock_rdlock(&the_rw, 0), 0);
    ck_assert_int_eq(kart_rwlock_unlock(&the_rw), 0);
}
END_TEST

static atomic_int readers_inside, readers_max, writers_inside;
static atomic_bool stop_readers;

static void *busy_reader(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_readers)) {
        if (kart_rwlock_rdlock(&the_rw, -1) != 0)
            return (void *)1;
        int n = atomic_fetch_add(&readers_inside, 1) + 1;
        if (atomic_load(&writers_inside) != 0)
            return (void *)2;
        int m = atomic_load(&readers_max);
        while (n > m && !atomic_compare_exchange_weak(&readers_max, &m, n))
            ;
        for (int i = 0; i < 200; i++)
            __asm__ __volatile__("" ::: "memory");
        atomic_fetch_sub(&readers_inside, 1);
        if (kart_rwlock_unlock(&the_rw) != 0)
            return (void *)1;
    }
    return NULL;
}

START_TEST(rwlock_writer_not_starved_by_readers)
{
    pthread_t t[NTHREADS - 1];
    ck_assert_int_eq(kart_rwlock_init(&the_rw, 0), 0);
    spawn(t, NTHREADS - 1, busy_reader, NULL);
    /* Readers overlap: the count of readers inside passes 1. */
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (atomic_load(&readers_max) < 2) {
        ck_assert(kart_now_ns() < end);
        usleep(1000);
    }
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(kart_rwlock_wrlock(&the_rw, 10000 * KT_MS), 0);
        atomic_fetch_add(&writers_inside, 1);
        ck_assert_int_eq(atomic_load(&readers_inside), 0);
        atomic_fetch_sub(&writers_inside, 1);
        ck_assert_int_eq(kart_rwlock_unlock(&the_rw), 0);
        usleep(1000);
    }
    atomic_store(&stop_readers, true);
    ck_assert_int_eq(join_sum(t, NTHREADS - 1), 0);
}
END_TEST

#define RW_ITERS 20000
static struct {
    long a, b; /* a + b == 0 outside the write hold */
} guarded;

static void *rw_mixer(void *arg)
{
    unsigned seed = (unsigned)(intptr_t)arg;
    for (int i = 0; i < RW_ITERS; i++) {
        seed = seed * 1103515245 + 12345;
        int pick = (seed >> 16) % 8;
        /* Short timeouts too, so that writers give up while readers and
         * other writers wait on them. */
        int64_t timeout = pick == 7 ? 0 : pick == 6 || pick == 1 ? 20000 : -1;
        if (pick < 2) {
            int r = kart_rwlock_wrlock(&the_rw, timeout);
            if (r == -ETIMEDOUT)
                continue;
            if (r != 0)
                return (void *)1;
            guarded.a++;
            guarded.b--;
            kart_rwlock_unlock(&the_rw);
        } else {
            int r = kart_rwlock_rdlock(&the_rw, timeout);
            if (r == -ETIMEDOUT)
                continue;
            if (r != 0)
                return (void *)1;
            long a = guarded.a, b = guarded.b;
            kart_rwlock_unlock(&the_rw);
            if (a + b != 0)
                return (void *)2;
        }
    }
    return NULL;
}

START_TEST(rwlock_stress_invariant_holds)
{
    pthread_t t[NTHREADS];
    ck_assert_int_eq(kart_rwlock_init(&the_rw, 0), 0);
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, rw_mixer, (void *)(intptr_t)(i + 1)), 0);
    ck_assert_int_eq(join_sum(t, NTHREADS), 0);
    ck_assert_int_eq(guarded.a + guarded.b, 0);
    ck_assert_int_gt(guarded.a, 0);
    ck_assert_int_eq(kart_rwlock_unlock(&the_rw), -EPERM);
}
END_TEST

struct shared_rw {
    kart_rwlock rw;
    long a, b; /* a + b == 0 outside the write hold */
    atomic_int broken;
};

START_TEST(rwlock_shared_across_fork)
{
    struct shared_rw *sh = shared_map(sizeof(*sh));
    ck_assert_int_eq(kart_rwlock_init(&sh->rw, KART_SYNC_SHARED), 0);
    pid_t pids[4];
    for (int c = 0; c < 4; c++) {
        pids[c] = kt_fork();
        if (pids[c] == 0) {
            for (int i = 0; i < 3000; i++) {
                if ((i + c) % 4 == 0) {
                    if (kart_rwlock_wrlock(&sh->rw, -1) != 0)
                        _exit(1);
                    sh->a++;
                    sh->b--;
                } else {
                    if (kart_rwlock_rdlock(&sh->rw, -1) != 0)
                        _exit(1);
                    if (sh->a + sh->b != 0)
                        atomic_fetch_add(&sh->broken, 1);
                }
                if (kart_rwlock_unlock(&sh->rw) != 0)
                    _exit(1);
            }
            _exit(0);
        }
    }
    reap(pids, 4);
    ck_assert_int_eq(atomic_load(&sh->broken), 0);
    ck_assert_int_eq(sh->a, 3000);
    ck_assert_int_eq(sh->b, -3000);
    munmap(sh, sizeof(*sh));
}
END_TEST

/* Two mappings of one memfd stand for two unrelated processes: shared
 * futexes key on the page, not the address. */
static kart_sem *twin_sem;

static void *twin_waiter(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)kart_sem_acquire(twin_sem, 10000 * KT_MS);
}

START_TEST(sem_shared_through_two_mappings)
{
    int fd = memfd_create("kart-sync", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 4096), 0);
    kart_sem *one = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    kart_sem *two = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(one, MAP_FAILED);
    ck_assert_ptr_ne(two, MAP_FAILED);
    ck_assert_ptr_ne(one, two);
    ck_assert_int_eq(kart_sem_init(one, 0, KART_SYNC_SHARED), 0);
    twin_sem = one;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, twin_waiter, NULL), 0);
    await_count(&two->waiters_, 1);
    ck_assert_int_eq(kart_sem_release(two, 1), 0);
    ck_assert_int_eq((intptr_t)barrier_result(t), 0);
    ck_assert_int_eq(kart_sem_value(two), 0);
    munmap(one, 4096);
    munmap(two, 4096);
    close(fd);
}
END_TEST

/* ---- Interruptions: signals and spurious wake-ups ---- */

static kart_sem intr_sem;
static kart_flag intr_flag;
static kart_barrier intr_barrier;

struct intr_case {
    int which;
    int result;
    int64_t elapsed;
};

static void *intr_waiter(void *arg)
{
    struct intr_case *c = arg;
    int64_t t0 = kart_now_ns(), timeout = 150 * KT_MS;
    switch (c->which) {
    case 0:
        c->result = kart_sem_acquire(&intr_sem, timeout);
        break;
    case 1:
        c->result = kart_flag_wait(&intr_flag, timeout);
        break;
    case 2:
        c->result = kart_barrier_wait(&intr_barrier, timeout);
        break;
    case 3:
        c->result = kart_rwlock_rdlock(&the_rw, timeout);
        break;
    default:
        c->result = kart_rwlock_wrlock(&the_rw, timeout);
        break;
    }
    c->elapsed = kart_now_ns() - t0;
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* Pokes a waiter with signals (no SA_RESTART) and with futex wake-ups on
 * every word it might sleep on; it must wait out its whole timeout. */
START_TEST(signals_and_spurious_wakeups_do_not_end_waits)
{
    struct sigaction sa = {.sa_handler = on_usr1};
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    ck_assert_int_eq(kart_sem_init(&intr_sem, 0, 0), 0);
    ck_assert_int_eq(kart_flag_init(&intr_flag, 0), 0);
    ck_assert_int_eq(kart_barrier_init(&intr_barrier, 2, 0, NULL, NULL), 0);
    ck_assert_int_eq(kart_rwlock_init(&the_rw, 0), 0);
    ck_assert_int_eq(kart_rwlock_wrlock(&the_rw, 0), 0);
    _Atomic uint32_t *words[] = {&intr_sem.value_, &intr_flag.word_, &intr_barrier.state_,
                                 &the_rw.rseq_, &the_rw.wseq_};
    for (int which = 0; which < 5; which++) {
        struct intr_case c = {.which = which};
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, intr_waiter, &c), 0);
        for (int i = 0; i < 10; i++) {
            usleep(10000);
            pthread_kill(t, SIGUSR1);
            for (int w = 0; w < 5; w++)
                syscall(SYS_futex, (uint32_t *)words[w], FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL,
                        0);
        }
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_msg(c.result == -ETIMEDOUT, "case %d: %d", which, c.result);
        ck_assert_int_ge(c.elapsed, 150 * KT_MS);
    }
    ck_assert_int_eq(kart_barrier_broken(&intr_barrier), 1);
    ck_assert_int_eq(kart_rwlock_unlock(&the_rw), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sync");
    TCase *tc = tcase_create("sem");
    tcase_add_test(tc, sem_init_rejects_bad_arguments);
    tcase_add_test(tc, sem_null_and_bad_counts);
    tcase_add_test(tc, sem_counts_units);
    tcase_add_test(tc, sem_acquire_times_out_not_early);
    tcase_add_test(tc, sem_bounded_refuses_overflow);
    tcase_add_test(tc, sem_release_n_wakes_n_waiters);
    tcase_add_test(tc, sem_stress_8_threads);
    tcase_add_test(tc, sem_shared_across_fork);
    tcase_add_test(tc, sem_shared_through_two_mappings);
    suite_add_tcase(s, tc);

    tc = tcase_create("flag");
    tcase_add_test(tc, flag_rejects_bad_arguments);
    tcase_add_test(tc, flag_set_clear_is_set);
    tcase_add_test(tc, flag_wait_times_out_not_early);
    tcase_add_test(tc, flag_set_wakes_all_waiters);
    tcase_add_test(tc, flag_pulse_wakes_all_waiters);
    tcase_add_test(tc, flag_stress_8_threads);
    tcase_add_test(tc, flag_shared_across_fork);
    suite_add_tcase(s, tc);

    tc = tcase_create("barrier");
    tcase_add_test(tc, barrier_rejects_bad_arguments);
    tcase_add_test(tc, barrier_one_party_runs_action);
    tcase_add_test(tc, barrier_8_threads_1000_rounds);
    tcase_add_test(tc, barrier_more_threads_than_parties);
    tcase_add_test(tc, barrier_timeout_breaks_it_for_all);
    tcase_add_test(tc, barrier_timeout_zero_breaks_it);
    tcase_add_test(tc, barrier_abort_breaks_waiters_and_future_waits);
    tcase_add_test(tc, barrier_reset_breaks_waiters_then_works);
    tcase_add_test(tc, barrier_abort_during_action_breaks_next_round);
    tcase_add_test(tc, barrier_stress_timeouts_and_resets);
    tcase_add_test(tc, barrier_shared_across_fork);
    suite_add_tcase(s, tc);

    tc = tcase_create("rwlock");
    tcase_add_test(tc, rwlock_rejects_bad_arguments);
    tcase_add_test(tc, rwlock_unlock_releases_what_is_held);
    tcase_add_test(tc, rwlock_rdlock_refuses_past_max_readers);
    tcase_add_test(tc, rwlock_readers_share_writers_exclude);
    tcase_add_test(tc, rwlock_waiting_writer_holds_off_readers);
    tcase_add_test(tc, rwlock_writer_not_starved_by_readers);
    tcase_add_test(tc, rwlock_stress_invariant_holds);
    tcase_add_test(tc, rwlock_shared_across_fork);
    suite_add_tcase(s, tc);

    tc = tcase_create("interruptions");
    tcase_add_test(tc, signals_and_spurious_wakeups_do_not_end_waits);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

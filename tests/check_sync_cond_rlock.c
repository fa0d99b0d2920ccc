/* Description: Condition over an RLock (kart_cond_*_rlock), Python's
 * default threading.Condition: each documented error, the wait releasing
 * every level of the caller's hold and restoring it, timeouts (0
 * included) on every lock kind, notify of n and of all (after
 * test_threading's ConditionTests.test_notify), the robust owner-died case,
 * and a bounded buffer whose producers nest their holds. */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static const unsigned kinds[] = {0, KART_SYNC_SHARED, KART_SYNC_ROBUST,
                                 KART_SYNC_ROBUST | KART_SYNC_SHARED};
#define NKINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

static intptr_t join(pthread_t t)
{
    void *ret;
    ck_assert_int_eq(pthread_join(t, &ret), 0);
    return (intptr_t)ret;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static bool always(void *arg)
{
    (void)arg;
    return true;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* ---- arguments and errors ---- */

START_TEST(cond_rlock_calls_reject_null_and_bad_n)
{
    kart_cond c;
    kart_rlock r;
    ck_assert_int_eq(kart_cond_init(&c, 0), 0);
    ck_assert_int_eq(kart_rlock_init(&r, 0), 0);
    ck_assert_int_eq(kart_rlock_acquire(&r, -1), 1);
    ck_assert_int_eq(kart_cond_wait_rlock(NULL, &r, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_wait_rlock(&c, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_wait_for_rlock(NULL, &r, always, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_wait_for_rlock(&c, NULL, always, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_wait_for_rlock(&c, &r, NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_notify_rlock(NULL, &r, 1), -EINVAL);
    ck_assert_int_eq(kart_cond_notify_rlock(&c, NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_cond_notify_rlock(&c, &r, 0), -EINVAL);
    ck_assert_int_eq(kart_cond_notify_all_rlock(NULL, &r), -EINVAL);
    ck_assert_int_eq(kart_cond_notify_all_rlock(&c, NULL), -EINVAL);
    /* Nobody waits: notifying is fine, and nothing changed the hold. */
    ck_assert_int_eq(kart_cond_notify_rlock(&c, &r, 1), 0);
    ck_assert_int_eq(kart_cond_notify_all_rlock(&c, &r), 0);
    ck_assert_int_eq(kart_rlock_depth(&r), 1);
    ck_assert_int_eq(kart_rlock_release(&r), 0);
}
END_TEST

typedef struct {
    kart_cond *c;
    kart_rlock *r;
    int wait, wait_for, notify, notify_all;
} probe;

static void *probe_cond(void *p)
{
    probe *a = p;
    a->wait = kart_cond_wait_rlock(a->c, a->r, 10 * KT_MS);
    a->wait_for = kart_cond_wait_for_rlock(a->c, a->r, always, NULL, 10 * KT_MS);
    a->notify = kart_cond_notify_rlock(a->c, a->r, 1);
    a->notify_all = kart_cond_notify_all_rlock(a->c, a->r);
    return NULL;
}

/* Without the RLock, and with it held by another thread. */
START_TEST(cond_rlock_without_the_rlock_is_eperm)
{
    kart_cond c;
    kart_rlock r;
    ck_assert_int_eq(kart_cond_init(&c, 0), 0);
    ck_assert_int_eq(kart_rlock_init(&r, kinds[_i]), 0);
    probe a = {.c = &c, .r = &r};
    probe_cond(&a);
    ck_assert_int_eq(a.wait, -EPERM);
    ck_assert_int_eq(a.wait_for, -EPERM);
    ck_assert_int_eq(a.notify, -EPERM);
    ck_assert_int_eq(a.notify_all, -EPERM);
    ck_assert_int_eq(kart_rlock_acquire(&r, -1), 1);
    ck_assert_int_eq(kart_rlock_acquire(&r, -1), 2);
    probe b = {.c = &c, .r = &r};
    join(spawn(probe_cond, &b));
    ck_assert_int_eq(b.wait, -EPERM);
    ck_assert_int_eq(b.wait_for, -EPERM);
    ck_assert_int_eq(b.notify, -EPERM);
    ck_assert_int_eq(b.notify_all, -EPERM);
    ck_assert_int_eq(kart_rlock_depth(&r), 2);
    ck_assert_int_eq(kart_rlock_release(&r), 1);
    ck_assert_int_eq(kart_rlock_release(&r), 0);
    kart_rlock_destroy(&r);
}
END_TEST

/* ---- timeouts keep the depth ---- */

START_TEST(cond_rlock_wait_times_out_with_depth_restored)
{
    kart_cond c;
    kart_rlock r;
    ck_assert_int_eq(kart_cond_init(&c, kinds[_i] & KART_SYNC_SHARED), 0);
    ck_assert_int_eq(kart_rlock_init(&r, kinds[_i]), 0);
    for (int d = 1; d <= 3; d++)
        ck_assert_int_eq(kart_rlock_acquire(&r, -1), d);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_cond_wait_rlock(&c, &r, 50 * KT_MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 50 * KT_MS);
    ck_assert_int_eq(kart_rlock_depth(&r), 3);
    ck_assert_int_eq(kart_rlock_owner(&r), gettid());
    ck_assert_int_eq(kart_cond_wait_rlock(&c, &r, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_rlock_depth(&r), 3);
    ck_assert_int_eq(kart_cond_wait_for_rlock(&c, &r, always, NULL, 0), 0);
    ck_assert_int_eq(kart_cond_wait_for_rlock(&c, &r, never, NULL, 0), -ETIMEDOUT);
    t0 = kart_now_ns();
    ck_assert_int_eq(kart_cond_wait_for_rlock(&c, &r, never, NULL, 50 * KT_MS), -ETIMEDOUT);
    ck_assert_int_ge(kart_now_ns() - t0, 50 * KT_MS);
    ck_assert_int_eq(kart_rlock_depth(&r), 3);
    for (int d = 2; d >= 0; d--)
        ck_assert_int_eq(kart_rlock_release(&r), d);
    kart_rlock_destroy(&r);
}
END_TEST

/* ---- the wait releases every level ---- */

typedef struct {
    kart_rlock r;
    kart_cond c;
    int flag; /* under r */
    int seen_depth, seen_owner_is_me;
    _Atomic int waiting, woken, returned;
    int result;
} box;

/* Takes the RLock (depth 1) while the main thread waits at depth 3,
 * which it can only do if the wait released all three levels. */
static void *take_and_notify(void *p)
{
    box *b = p;
    if (kart_rlock_acquire(&b->r, 5000 * KT_MS) != 1)
        return (void *)1;
    b->seen_depth = kart_rlock_depth(&b->r);
    b->seen_owner_is_me = kart_rlock_owner(&b->r) == gettid();
    b->flag = 1;
    int r = kart_cond_notify_rlock(&b->c, &b->r, 1);
    if (kart_rlock_release(&b->r) != 0)
        return (void *)2;
    return (void *)(intptr_t)r;
}

START_TEST(cond_rlock_wait_releases_every_level)
{
    static box b;
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(kart_rlock_init(&b.r, kinds[_i]), 0);
    ck_assert_int_eq(kart_cond_init(&b.c, kinds[_i] & KART_SYNC_SHARED), 0);
    for (int d = 1; d <= 3; d++)
        ck_assert_int_eq(kart_rlock_acquire(&b.r, -1), d);
    pthread_t t = spawn(take_and_notify, &b);
    int r;
    do
        r = kart_cond_wait_rlock(&b.c, &b.r, 5000 * KT_MS);
    while (r == 0 && !b.flag);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(b.flag, 1);
    ck_assert_int_eq(kart_rlock_depth(&b.r), 3);
    ck_assert_int_eq(kart_rlock_owner(&b.r), gettid());
    for (int d = 2; d >= 0; d--)
        ck_assert_int_eq(kart_rlock_release(&b.r), d);
    ck_assert_int_eq(join(t), 0);
    ck_assert_int_eq(b.seen_depth, 1);
    ck_assert_int_eq(b.seen_owner_is_me, 1);
    kart_rlock_destroy(&b.r);
}
END_TEST

/* ---- notify n and notify all (test_threading's test_notify) ---- */

enum { WAITERS = 5 };

static bool flag_is_set(void *p)
{
    return ((box *)p)->flag > 0;
}

/* Waits at depth 2 until a notify hands it a token (flag counts tokens). */
static void *token_waiter(void *p)
{
    box *b = p;
    if (kart_rlock_acquire(&b->r, -1) != 1 || kart_rlock_acquire(&b->r, -1) != 2)
        return (void *)1;
    atomic_fetch_add(&b->waiting, 1);
    int r = kart_cond_wait_for_rlock(&b->c, &b->r, flag_is_set, b, 10000 * KT_MS);
    if (r == 0) {
        b->flag--;
        if (kart_rlock_depth(&b->r) != 2)
            r = 3;
    }
    atomic_fetch_add(&b->woken, 1);
    kart_rlock_release(&b->r);
    kart_rlock_release(&b->r);
    return (void *)(intptr_t)r;
}

static void await_int(_Atomic int *v, int want)
{
    for (int i = 0; i < 10000 && atomic_load(v) < want; i++)
        sleep_ms(1);
    ck_assert_int_ge(atomic_load(v), want);
}

START_TEST(cond_rlock_notify_n_then_all)
{
    static box b;
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(kart_rlock_init(&b.r, kinds[_i]), 0);
    ck_assert_int_eq(kart_cond_init(&b.c, kinds[_i] & KART_SYNC_SHARED), 0);
    pthread_t t[WAITERS];
    for (int i = 0; i < WAITERS; i++)
        t[i] = spawn(token_waiter, &b);
    await_int(&b.waiting, WAITERS);
    sleep_ms(20); /* into their waits */
    ck_assert_int_eq(kart_rlock_acquire(&b.r, -1), 1);
    b.flag = 3;
    ck_assert_int_eq(kart_cond_notify_rlock(&b.c, &b.r, 3), 0);
    ck_assert_int_eq(kart_rlock_release(&b.r), 0);
    await_int(&b.woken, 3);
    sleep_ms(20);
    ck_assert_int_eq(atomic_load(&b.woken), 3);
    ck_assert_int_eq(kart_rlock_acquire(&b.r, -1), 1);
    ck_assert_int_eq(kart_rlock_acquire(&b.r, -1), 2); /* notify at any depth */
    b.flag = 2;
    ck_assert_int_eq(kart_cond_notify_all_rlock(&b.c, &b.r), 0);
    ck_assert_int_eq(kart_rlock_release(&b.r), 1);
    ck_assert_int_eq(kart_rlock_release(&b.r), 0);
    for (int i = 0; i < WAITERS; i++)
        ck_assert_int_eq(join(t[i]), 0);
    ck_assert_int_eq(b.flag, 0);
    kart_rlock_destroy(&b.r);
}
END_TEST

/* ---- robust: the holder dies while the caller waits ---- */

static void *take_and_die(void *p)
{
    box *b = p;
    int r = kart_rlock_acquire(&b->r, 5000 * KT_MS);
    atomic_store(&b->returned, 1);
    return (void *)(intptr_t)r; /* ends holding it */
}

START_TEST(cond_rlock_wait_reports_dead_holder_with_depth_restored)
{
    static box b;
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(kart_rlock_init(&b.r, KART_SYNC_ROBUST), 0);
    ck_assert_int_eq(kart_cond_init(&b.c, 0), 0);
    ck_assert_int_eq(kart_rlock_acquire(&b.r, -1), 1);
    ck_assert_int_eq(kart_rlock_acquire(&b.r, -1), 2);
    pthread_t t = spawn(take_and_die, &b);
    /* Times out while the other thread holds the lock; re-acquiring it
     * then finds its holder gone. */
    ck_assert_int_eq(kart_cond_wait_rlock(&b.c, &b.r, 100 * KT_MS), -EOWNERDEAD);
    ck_assert_int_eq(join(t), 1);
    ck_assert_int_eq(kart_rlock_depth(&b.r), 2);
    ck_assert_int_eq(kart_rlock_owner(&b.r), gettid());
    ck_assert_int_eq(kart_rlock_consistent(&b.r), 0);
    ck_assert_int_eq(kart_rlock_release(&b.r), 1);
    ck_assert_int_eq(kart_rlock_release(&b.r), 0);
    kart_rlock_destroy(&b.r);
}
END_TEST

/* ---- a bounded buffer with nested holds ---- */

enum { CAP = 4, ITEMS = 2000, PRODUCERS = 3 };

typedef struct {
    kart_rlock r;
    kart_cond not_full, not_empty;
    int buf[CAP];
    int n, head, produced, consumed;
    long sum;
} ring;

static bool has_room(void *p)
{
    return ((ring *)p)->n < CAP;
}

static bool has_item(void *p)
{
    ring *g = p;
    return g->n > 0 || g->consumed == PRODUCERS * ITEMS;
}

/* Puts under a nested hold: the wait inside must release both levels. */
static int put(ring *g, int v)
{
    if (kart_rlock_acquire(&g->r, -1) != 1 || kart_rlock_acquire(&g->r, -1) != 2)
        return 1;
    int r = kart_cond_wait_for_rlock(&g->not_full, &g->r, has_room, g, 10000 * KT_MS);
    if (r == 0) {
        g->buf[(g->head + g->n) % CAP] = v;
        g->n++;
        r = kart_cond_notify_rlock(&g->not_empty, &g->r, 1);
    }
    kart_rlock_release(&g->r);
    kart_rlock_release(&g->r);
    return r;
}

static void *producer(void *p)
{
    for (int i = 1; i <= ITEMS; i++)
        if (put(p, i) != 0)
            return (void *)1;
    return NULL;
}

static void *consumer(void *p)
{
    ring *g = p;
    for (;;) {
        if (kart_rlock_acquire(&g->r, -1) != 1)
            return (void *)1;
        int r = kart_cond_wait_for_rlock(&g->not_empty, &g->r, has_item, g, 10000 * KT_MS);
        if (r != 0 || g->consumed == PRODUCERS * ITEMS) {
            kart_cond_notify_all_rlock(&g->not_empty, &g->r);
            kart_rlock_release(&g->r);
            return (void *)(intptr_t)(r ? 2 : 0);
        }
        g->sum += g->buf[g->head];
        g->head = (g->head + 1) % CAP;
        g->n--;
        g->consumed++;
        kart_cond_notify_rlock(&g->not_full, &g->r, 1);
        if (g->consumed == PRODUCERS * ITEMS)
            kart_cond_notify_all_rlock(&g->not_empty, &g->r);
        kart_rlock_release(&g->r);
    }
}

START_TEST(cond_rlock_bounded_buffer_passes_every_item)
{
    static ring g;
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(kart_rlock_init(&g.r, kinds[_i]), 0);
    ck_assert_int_eq(kart_cond_init(&g.not_full, 0), 0);
    ck_assert_int_eq(kart_cond_init(&g.not_empty, 0), 0);
    pthread_t p[PRODUCERS], c[2];
    for (int i = 0; i < PRODUCERS; i++)
        p[i] = spawn(producer, &g);
    for (int i = 0; i < 2; i++)
        c[i] = spawn(consumer, &g);
    for (int i = 0; i < PRODUCERS; i++)
        ck_assert_int_eq(join(p[i]), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(join(c[i]), 0);
    ck_assert_int_eq(g.consumed, PRODUCERS * ITEMS);
    ck_assert_int_eq(g.sum, (long)PRODUCERS * ITEMS * (ITEMS + 1) / 2);
    kart_rlock_destroy(&g.r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sync_cond_rlock");
    TCase *tc = tcase_create("cond_rlock");
    tcase_add_test(tc, cond_rlock_calls_reject_null_and_bad_n);
    tcase_add_loop_test(tc, cond_rlock_without_the_rlock_is_eperm, 0, NKINDS);
    tcase_add_loop_test(tc, cond_rlock_wait_times_out_with_depth_restored, 0, NKINDS);
    tcase_add_loop_test(tc, cond_rlock_wait_releases_every_level, 0, NKINDS);
    tcase_add_loop_test(tc, cond_rlock_notify_n_then_all, 0, NKINDS);
    tcase_add_test(tc, cond_rlock_wait_reports_dead_holder_with_depth_restored);
    tcase_add_loop_test(tc, cond_rlock_bounded_buffer_passes_every_item, 0, NKINDS);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

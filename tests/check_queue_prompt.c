/* Description: a queue's sleeping getter is woken by the put that feeds it
 * (the word it sleeps on moves), not left to its periodic nap
 * (KART__QUEUE_NAP_NS, 100 ms); a timed get ends at its deadline, not at
 * the end of a nap (the quickest of five tries, so that one descheduled on
 * a loaded machine does not decide). make mutate: with put's wake-up
 * removed, or the nap not cut at the deadline, every other suite passed. */
#include "testutil.h"

#include "queue_private.h" /* KART__QUEUE_NAP_NS */

#include <pthread.h>
#include <stdatomic.h>

#define TRIES 5

typedef struct getter {
    kart_queue *q;
    int64_t returned_ns;
    int rc;
} getter;

static void *get_one(void *arg)
{
    getter *g = arg;
    char buf[16];
    size_t len;
    g->rc = kart_queue_get(g->q, buf, sizeof(buf), &len, 10000 * KT_MS);
    g->returned_ns = kart_now_ns();
    return NULL;
}

START_TEST(a_put_wakes_a_sleeping_getter)
{
    /* Timing cannot tell (a getter that is not woken still wakes at its
     * nap's end, at a random moment after the put), so this looks at the
     * protocol through the private layout: once the getter has announced
     * that it sleeps (c_wait), the put must move the word it sleeps on
     * (data_seq), which is what wakes it. */
    kart_queue *q;
    ck_assert_int_eq(kart_queue_create(&q, NULL), 0);
    for (int i = 0; i < TRIES; i++) {
        getter g = {.q = q};
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, get_one, &g), 0);
        while (!atomic_load(&q->c_wait))
            usleep(1000);
        uint32_t seq = atomic_load(&q->data_seq);
        ck_assert_int_eq(kart_queue_put(q, "x", 1, 0), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(g.rc, 0);
        ck_assert_uint_ne(atomic_load(&q->data_seq), seq);
    }
    kart_queue_free(q);
}
END_TEST

START_TEST(a_timed_get_ends_at_its_deadline)
{
    kart_queue *q;
    ck_assert_int_eq(kart_queue_create(&q, NULL), 0);
    char buf[16];
    size_t len;
    int64_t best = INT64_MAX;
    for (int i = 0; i < TRIES; i++) {
        int64_t t0 = kart_now_ns();
        ck_assert_int_eq(kart_queue_get(q, buf, sizeof(buf), &len, 10 * KT_MS), -ETIMEDOUT);
        int64_t took = kart_now_ns() - t0;
        ck_assert_int_ge(took, 10 * KT_MS);
        if (took < best)
            best = took;
    }
    /* A nap not cut at the deadline makes every timeout 100 ms. */
    ck_assert_msg(best < 10 * KT_MS + KART__QUEUE_NAP_NS / 2,
                  "the quickest of %d 10 ms timeouts took %lld us", TRIES,
                  (long long)(best / 1000));
    kart_queue_free(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_prompt");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, a_put_wakes_a_sleeping_getter);
    tcase_add_test(tc, a_timed_get_ends_at_its_deadline);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

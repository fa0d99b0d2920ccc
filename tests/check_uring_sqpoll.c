/* Description: the io_uring backend's opt-in SQPOLL ring
 * (kart_selector_options.uring_sqpoll_ms): granted where the kernel allows
 * it (a kernel thread of the process then polls the ring, and
 * KART_CAP_SQPOLL says so), working for fd watchers and timers on a loop
 * and for a bare selector, and falling back to the ordinary ring when the
 * kernel refuses it. Every case skips, with a message, where io_uring does
 * not start. */
#include "fault.h"
#include "testutil.h"
#include "kt_threads.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>

/* Linux 5.11 lets an unprivileged process ask for SQPOLL; before it only
 * root may. */
static bool kernel_grants_sqpoll(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return false;
    return major > 5 || (major == 5 && minor >= 11) || geteuid() == 0;
}

/* The SQPOLL thread names itself "iou-sqp-<pid>" when it first runs,
 * which on a loaded machine can be a while after io_uring_setup returned:
 * waits up to 5 s for it to show. */
static int sqpoll_threads_soon(void)
{
    int64_t end = kart_now_ns() + 5000 * KT_MS;
    int n;
    while ((n = kt_threads_named("iou-sqp-")) == 0 && kart_now_ns() < end)
        usleep(1000);
    return n;
}

static kart_loop *sqpoll_loop(unsigned ms)
{
    kart_loop *loop;
    kart_loop_options o = {.selector = {.backend = "uring", .uring_sqpoll_ms = ms}};
    ck_assert_int_eq(kart_loop_create(&loop, &o), 0);
    ck_assert_str_eq(kart_loop_backend_name(loop), "uring");
    return loop;
}

typedef struct echo_state {
    int fd, rounds, left;
    kart_loop *loop;
} echo_state;

/* Reads what the peer wrote and writes it back, `rounds` times. */
static void echo_cb(kart_watch *w, uint32_t events)
{
    echo_state *e = w->base.data;
    ck_assert(events & KART_READABLE);
    char buf[64];
    ssize_t n = read(e->fd, buf, sizeof(buf));
    ck_assert_int_eq(n, 64);
    ck_assert_int_eq(write(e->fd, buf, 64), 64);
    if (--e->left == 0)
        kart_watch_stop(w);
}

static void *peer(void *arg)
{
    echo_state *e = arg;
    char buf[64];
    for (int i = 0; i < e->rounds; i++) {
        memset(buf, i & 0xff, sizeof(buf));
        ck_assert_int_eq(write(e->fd, buf, 64), 64);
        char back[64];
        size_t got = 0;
        while (got < 64) {
            ssize_t n = read(e->fd, back + got, 64 - got);
            ck_assert_int_gt(n, 0);
            got += (size_t)n;
        }
        ck_assert_int_eq(memcmp(buf, back, 64), 0);
    }
    return NULL;
}

/* Runs `rounds` 64 B echoes through an fd watcher of loop. */
static void echo_through(kart_loop *loop, int rounds)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    echo_state srv = {.fd = sv[0], .rounds = rounds, .left = rounds, .loop = loop};
    echo_state cli = {.fd = sv[1], .rounds = rounds};
    kart_watch w;
    ck_assert_int_eq(kart_watch_init(loop, &w, sv[0]), 0);
    w.base.data = &srv;
    ck_assert_int_eq(kart_watch_start(&w, KART_READABLE, echo_cb), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, peer, &cli), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(srv.left, 0);
    close(sv[0]);
    close(sv[1]);
}

static void timer_cb(kart_timer *t)
{
    (*(int *)t->base.data)++;
}

START_TEST(loop_gets_sqpoll_and_runs_watchers_and_timers)
{
    kart_loop *loop = sqpoll_loop(20);
    if (!(kart_loop_caps(loop) & KART_CAP_SQPOLL)) {
        ck_assert_msg(!kernel_grants_sqpoll(), "this kernel refused SQPOLL");
        kart_loop_free(loop);
        KART_SKIP("SQPOLL refused by this kernel");
    }
    ck_assert_int_ge(sqpoll_threads_soon(), 1);
    echo_through(loop, 2000);
    /* A timer's wait (a timed enter on the SQPOLL ring). */
    kart_timer t;
    int fired = 0;
    ck_assert_int_eq(kart_timer_init(loop, &t), 0);
    t.base.data = &fired;
    ck_assert_int_eq(kart_timer_start(&t, timer_cb, 2 * 1000 * 1000, 0), 0);
    int64_t start = kart_loop_now(loop);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(fired, 1);
    kart_loop_update_time(loop);
    ck_assert_int_ge(kart_loop_now(loop) - start, 2 * 1000 * 1000);
    /* After the thread's idle time (20 ms) it sleeps; the next submission
     * wakes it. */
    usleep(50 * 1000);
    echo_through(loop, 10);
    kart_loop_free(loop);
}
END_TEST

START_TEST(default_loop_has_no_sqpoll)
{
    kart_loop *loop = sqpoll_loop(0);
    ck_assert(!(kart_loop_caps(loop) & KART_CAP_SQPOLL));
    ck_assert_int_eq(kt_threads_named("iou-sqp-"), 0);
    echo_through(loop, 50);
    kart_loop_free(loop);
}
END_TEST

START_TEST(refused_sqpoll_falls_back_to_the_ordinary_ring)
{
    /* Both SQPOLL setups refused (as an unprivileged process before 5.11
     * is); the ring after them is made. */
    ck_assert_int_eq(kart__fault_fail(KART__SYS_io_uring_setup, 1, 2, EPERM), 0);
    kart_loop *loop = sqpoll_loop(20);
    ck_assert_int_ge(kart__fault_count(KART__SYS_io_uring_setup), 3);
    ck_assert(!(kart_loop_caps(loop) & KART_CAP_SQPOLL));
    ck_assert_int_eq(kt_threads_named("iou-sqp-"), 0);
    echo_through(loop, 50);
    kart_loop_free(loop);
    kart__fault_reset();
}
END_TEST

START_TEST(bare_selector_with_sqpoll)
{
    kart_selector *s;
    kart_selector_options o = {.backend = "uring", .uring_sqpoll_ms = 10};
    ck_assert_int_eq(kart_selector_create(&s, &o), 0);
    if (!(kart_selector_caps(s) & KART_CAP_SQPOLL)) {
        ck_assert_msg(!kernel_grants_sqpoll(), "this kernel refused SQPOLL");
        kart_selector_free(s);
        KART_SKIP("SQPOLL refused by this kernel");
    }
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, &sv[0]), 0);
    kart_event ev[4];
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 10 * 1000 * 1000), 0);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(write(sv[1], "x", 1), 1);
        ck_assert_int_eq(kart_selector_wait(s, ev, 4, -1), 1);
        ck_assert_int_eq(ev[0].fd, sv[0]);
        ck_assert(ev[0].events & KART_READABLE);
        char c;
        ck_assert_int_eq(read(sv[0], &c, 1), 1);
    }
    ck_assert_int_eq(kart_selector_unregister(s, sv[0]), 0);
    kart_selector_free(s);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

int main(void)
{
    int err = kart_backend_probe("uring");
    if (err != 0) {
        KART_SKIP_GROUP("the SQPOLL cases: io_uring cannot start here (%s)", kart_strerror(err));
        fflush(stdout);
    }
    Suite *s = suite_create("uring_sqpoll");
    TCase *tc = tcase_create("uring_sqpoll");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, loop_gets_sqpoll_and_runs_watchers_and_timers);
    tcase_add_test(tc, default_loop_has_no_sqpoll);
    tcase_add_test(tc, refused_sqpoll_falls_back_to_the_ordinary_ring);
    tcase_add_test(tc, bare_selector_with_sqpoll);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

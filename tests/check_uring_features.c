/* Description: the io_uring backend's use of newer kernel features
 * (uring/uring_probe.c, uring_msgring.c, uring_waitid.c): the probe's
 * answers against what the kernel does when each operation is tried (an
 * absent one fails with -EINVAL), KART_URING_FEATURES, child exits
 * through IORING_OP_WAITID and through the pidfd path with WAITID off,
 * and async wake-ups between two io_uring loops through MSG_RING and
 * through the eventfd with MSG_RING off. Every case skips, with a message,
 * where io_uring does not start. */
#include "testutil.h"

#if !KART_HAVE_URING
/* Built without liburing (URING=0): nothing of this exists. */
int main(void)
{
    KART_SKIP_GROUP("the uring feature cases: built without liburing");
    return 0;
}
#else

#include "../uring/uring_probe.h"
#include "loop_private.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define URING_OR_SKIP()                                                                            \
    if (kart_backend_probe("uring") != 0)                                                          \
        KART_SKIP("io_uring cannot start here");

/* One operation on a ring of its own: its result. */
static int try_op(struct io_uring *ring, struct io_uring_sqe *sqe)
{
    io_uring_sqe_set_data64(sqe, 77);
    ck_assert_int_eq(io_uring_submit(ring), 1);
    struct io_uring_cqe *cqe;
    ck_assert_int_eq(io_uring_wait_cqe(ring, &cqe), 0);
    ck_assert_int_eq(cqe->user_data, 77);
    int res = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    return res;
}

/* Each answer is what the kernel does: the operation works where the probe
 * says so, and fails with -EINVAL where it says not. */
START_TEST(probe_matches_the_kernel)
{
    URING_OR_SKIP();
    struct io_uring a, b;
    ck_assert_int_eq(io_uring_queue_init(4, &a, 0), 0);
    ck_assert_int_eq(io_uring_queue_init(4, &b, 0), 0);
    struct io_uring_cqe *cqe;

    /* MSG_RING: a completion appears in the other ring. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&a);
    io_uring_prep_msg_ring(sqe, b.ring_fd, 5, 0x1234, 0);
    int res = try_op(&a, sqe);
    if (kart__ur_kernel_has(KART__UR_MSG_RING)) {
        ck_assert_int_eq(res, 0);
        ck_assert_int_eq(io_uring_peek_cqe(&b, &cqe), 0);
        ck_assert_int_eq(cqe->user_data, 0x1234);
        ck_assert_int_eq(cqe->res, 5);
        io_uring_cqe_seen(&b, cqe);
    } else {
        ck_assert_int_eq(res, -EINVAL);
    }

    /* WAITID: the child's exit, its status in the siginfo. */
    pid_t pid = kt_fork();
    if (pid == 0)
        _exit(5);
    siginfo_t si = {0};
    sqe = io_uring_get_sqe(&a);
    io_uring_prep_rw(IORING_OP_WAITID, sqe, (int)pid, NULL, P_PID, 0);
    sqe->file_index = WEXITED;
    sqe->addr2 = (uint64_t)(uintptr_t)&si;
    res = try_op(&a, sqe);
    if (kart__ur_kernel_has(KART__UR_WAITID)) {
        ck_assert_int_eq(res, 0);
        ck_assert_int_eq(si.si_pid, pid);
        ck_assert_int_eq(si.si_code, CLD_EXITED);
        ck_assert_int_eq(si.si_status, 5);
    } else {
        ck_assert_int_eq(res, -EINVAL);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    }

    /* FUTEX_WAIT on a word that does not hold the value: -EAGAIN at once;
     * FUTEX_WAKE with nobody waiting: 0 woken. */
    uint32_t word = 1;
    sqe = io_uring_get_sqe(&a);
    io_uring_prep_rw(IORING_OP_FUTEX_WAIT, sqe, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE, &word, 0, 0);
    sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
    res = try_op(&a, sqe);
    ck_assert_int_eq(res, kart__ur_kernel_has(KART__UR_FUTEX_WAIT) ? -EAGAIN : -EINVAL);
    sqe = io_uring_get_sqe(&a);
    io_uring_prep_rw(IORING_OP_FUTEX_WAKE, sqe, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE, &word, 0, 1);
    sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
    res = try_op(&a, sqe);
    ck_assert_int_eq(res, kart__ur_kernel_has(KART__UR_FUTEX_WAKE) ? 0 : -EINVAL);

    /* PBUF_INC: a buffer ring registered with IOU_PBUF_RING_INC consumes
     * its one buffer by parts (two receives into it, the first flagged
     * IORING_CQE_F_BUF_MORE, the second at the next offset); a kernel
     * without it refuses the registration. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    struct io_uring_buf_ring *br =
        mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(br, MAP_FAILED);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = 1, .bgid = 3};
    reg.pad = IOU_PBUF_RING_INC;
    res = io_uring_register_buf_ring(&a, &reg, 0);
    if (kart__ur_kernel_has(KART__UR_PBUF_INC)) {
        ck_assert_int_eq(res, 0);
        static char mem[64];
        io_uring_buf_ring_init(br);
        io_uring_buf_ring_add(br, mem, sizeof(mem), 9, io_uring_buf_ring_mask(1), 0);
        io_uring_buf_ring_advance(br, 1);
        int sv[2];
        kt_socketpair(sv);
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(write(sv[0], k ? "bb" : "aaa", k ? 2 : 3), k ? 2 : 3);
            sqe = io_uring_get_sqe(&a);
            io_uring_prep_recv(sqe, sv[1], NULL, 0, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = 3;
            io_uring_sqe_set_data64(sqe, 77);
            ck_assert_int_eq(io_uring_submit(&a), 1);
            ck_assert_int_eq(io_uring_wait_cqe(&a, &cqe), 0);
            ck_assert_int_eq(cqe->res, k ? 2 : 3);
            ck_assert(cqe->flags & IORING_CQE_F_BUFFER);
            ck_assert_int_eq(cqe->flags >> IORING_CQE_BUFFER_SHIFT, 9);
            ck_assert(cqe->flags & IORING_CQE_F_BUF_MORE);
            io_uring_cqe_seen(&a, cqe);
        }
        ck_assert_mem_eq(mem, "aaabb", 5); /* the second took up after the first */
        close(sv[0]);
        close(sv[1]);
        ck_assert_int_eq(io_uring_unregister_buf_ring(&a, 3), 0);
    } else {
        ck_assert_int_eq(res, -EINVAL);
    }
    munmap(br, page);

    /* A feature bit is the kernel's params.features. */
    ck_assert_int_eq(kart__ur_kernel_has(KART__UR_BUNDLE),
                     (kart__ur_kernel_features() & IORING_FEAT_RECVSEND_BUNDLE) != 0);
    ck_assert(kart__ur_kernel_features() & IORING_FEAT_NODROP);
    io_uring_queue_exit(&a);
    io_uring_queue_exit(&b);
}
END_TEST

START_TEST(feature_names_and_the_test_hook)
{
    URING_OR_SKIP();
    ck_assert_str_eq(kart__ur_feature_name(KART__UR_MSG_RING), "msg_ring");
    ck_assert_str_eq(kart__ur_feature_name(KART__UR_WAITID), "waitid");
    ck_assert_ptr_null(kart__ur_feature_name(KART__UR_NFEATURES));
    ck_assert_ptr_null(kart__ur_feature_name((kart__ur_feature)-1));
    ck_assert(!kart__ur_has(KART__UR_NFEATURES));
    ck_assert(!kart__ur_kernel_has(KART__UR_NFEATURES));
    for (int f = 0; f < KART__UR_NFEATURES; f++) {
        ck_assert_int_eq(kart__ur_has(f), kart__ur_kernel_has(f));
        kart__ur_features_off(1u << f);
        ck_assert(!kart__ur_has(f));
        ck_assert_int_eq(kart__ur_kernel_has(f), kart__ur_kernel_has(f)); /* unchanged */
        kart__ur_features_off(0);
        ck_assert_int_eq(kart__ur_has(f), kart__ur_kernel_has(f));
    }
}
END_TEST

/* KART_URING_FEATURES is read when the kernel is first asked: each case
 * runs in a process of its own (Check's fork mode), asked afresh. */
START_TEST(env_turns_features_off)
{
    URING_OR_SKIP();
    if (getenv("CK_FORK") && strcmp(getenv("CK_FORK"), "no") == 0)
        KART_SKIP("needs Check's fork mode (the probe is asked once per process)");
    static const char *const envs[] = {"-msg_ring,-waitid,-bogus", "0", "none", "-", ",,", ""};
    const char *env = envs[_i];
    ck_assert_int_eq(setenv("KART_URING_FEATURES", env, 1), 0);
    for (int f = 0; f < KART__UR_NFEATURES; f++) {
        bool off = strcmp(env, "0") == 0 || strcmp(env, "none") == 0 ||
                   (_i == 0 && (f == KART__UR_MSG_RING || f == KART__UR_WAITID));
        ck_assert_int_eq(kart__ur_has(f), !off && kart__ur_kernel_has(f));
    }
}
END_TEST

/* ---- child exits ---- */

static int got_status, got_calls;

static void on_exit_cb(kart_child *c, int status)
{
    (void)c;
    got_status = status;
    got_calls++;
}

static kart_loop *uring_loop(void)
{
    kart_loop *loop;
    kart_loop_options o = {.selector = {.backend = "uring"}};
    ck_assert_int_eq(kart_loop_create(&loop, &o), 0);
    return loop;
}

/* _i 0: WAITID (where the kernel has it), 1: WAITID off, the pidfd. */
START_TEST(child_exit_status_both_ways)
{
    URING_OR_SKIP();
    bool ring = _i == 0 && kart__ur_kernel_has(KART__UR_WAITID);
    kart__ur_features_off(_i ? 1u << KART__UR_WAITID : 0);
    kart_loop *loop = uring_loop();
    kart_child c;
    ck_assert_int_eq(kart_child_init(loop, &c), 0);
    for (int round = 0; round < 3; round++) {
        pid_t pid = kt_fork();
        if (pid == 0) {
            if (round == 2)
                for (;;)
                    pause();
            _exit(round == 0 ? 7 : 0);
        }
        got_calls = 0;
        ck_assert_int_eq(kart_child_start(&c, on_exit_cb, pid), 0);
        /* The ring holds the watch: no descriptor; else a pidfd. */
        if (ring)
            ck_assert_int_eq(c.fd_, -2);
        else
            ck_assert_int_ge(c.fd_, 0);
        if (round == 2)
            ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
        ck_assert_int_eq(got_calls, 1);
        ck_assert_int_eq(got_status, round == 0 ? 7 : round == 1 ? 0 : -SIGKILL);
        ck_assert_int_eq(kart_handle_is_active(&c.base), 0);
        errno = 0;
        ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), -1); /* reaped */
        ck_assert_int_eq(errno, ECHILD);
    }
    ck_assert_int_eq(loop->ring_children, 0);
    kart_loop_free(loop);
    kart__ur_features_off(0);
}
END_TEST

/* A stopped watcher never reaps its child, even when it exits while the
 * ring's request is being cancelled; a loop freed with a request in
 * flight frees its record (the sanitizer build checks the leak). */
START_TEST(child_stop_cancels_without_reaping)
{
    URING_OR_SKIP();
    kart_loop *loop = uring_loop();
    kart_child c, c2;
    kart_child_init(loop, &c);
    kart_child_init(loop, &c2);
    pid_t pid = kt_fork();
    if (pid == 0)
        for (;;)
            pause();
    got_calls = 0;
    ck_assert_int_eq(kart_child_start(&c, on_exit_cb, pid), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1); /* the request goes in */
    ck_assert_int_eq(kart_child_stop(&c), 0);
    ck_assert_int_eq(kart_child_stop(&c), 0);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    siginfo_t si = {0};
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    for (int i = 0; i < 5; i++)
        kart_loop_run(loop, KART_RUN_NOWAIT);
    ck_assert_int_eq(got_calls, 0);
    ck_assert_int_eq(loop->ring_children, 0);
    /* Still a zombie for its parent: watched again, it is reported. */
    ck_assert_int_eq(kart_child_start(&c, on_exit_cb, pid), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(got_calls, 1);
    ck_assert_int_eq(got_status, -SIGKILL);
    /* In flight at the loop's free. */
    pid = kt_fork();
    if (pid == 0)
        for (;;)
            pause();
    ck_assert_int_eq(kart_child_start(&c2, on_exit_cb, pid), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(kart_child_stop(&c2), 0);
    kart_loop_free(loop);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}
END_TEST

/* ---- async wake-ups between loops ---- */

#define ROUNDS 2000

typedef struct side {
    kart_loop *loop;
    kart_async in;
    struct side *peer;
    int count;
    int wake_from_result; /* the backend's wake_from, asked in a callback */
    bool asked;
    atomic_bool peer_failed; /* the peer's run returned an error */
} side;

static void on_ping(kart_async *a)
{
    side *s = a->base.data;
    if (atomic_load(&s->peer_failed)) {
        kart_async_stop(&s->in);
        return;
    }
    if (!s->asked) {
        s->asked = true;
        kart_selector *mine = s->loop->sel, *theirs = s->peer->loop->sel;
        s->wake_from_result = mine->ops->wake_from(mine, theirs);
        /* Not to itself: that is no wake-up of another ring. */
        ck_assert_int_eq(mine->ops->wake_from(mine, mine), -ENOTSUP);
    }
    if (++s->count >= ROUNDS) {
        kart_async_stop(&s->in);
        if (s->peer->count < ROUNDS)
            kart_async_send(&s->peer->in);
        return;
    }
    ck_assert_int_eq(kart_async_send(&s->peer->in), 0);
}

static void *run_side(void *arg)
{
    side *s = arg;
    intptr_t r = kart_loop_run(s->loop, KART_RUN_DEFAULT);
    /* A run that failed (a backend error, e.g. under check-faults) sends
     * no more pings: the peer is told to stop instead of waiting for one
     * without end, and the test fails on this side's error. */
    if (r != 0) {
        atomic_store(&s->peer->peer_failed, true);
        kart_async_send(&s->peer->in);
    }
    return (void *)r;
}

/* _i 0: MSG_RING (where the kernel has it), 1: MSG_RING off, the eventfd. */
START_TEST(async_ping_pong_between_uring_loops)
{
    URING_OR_SKIP();
    kart__ur_features_off(_i ? 1u << KART__UR_MSG_RING : 0);
    side a = {0}, b = {0};
    a.peer = &b;
    b.peer = &a;
    side *sides[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        sides[i]->loop = uring_loop();
        ck_assert_int_eq(kart_async_init(sides[i]->loop, &sides[i]->in), 0);
        sides[i]->in.base.data = sides[i];
        ck_assert_int_eq(kart_async_start(&sides[i]->in, on_ping), 0);
    }
    /* Before either runs, from a thread without a loop: the eventfd. */
    ck_assert_ptr_null(kart__running_loop);
    ck_assert_int_eq(kart_async_send(&a.in), 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, run_side, sides[i]), 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        ck_assert_int_eq(pthread_join(t[i], &r), 0);
        ck_assert_int_eq((intptr_t)r, 0);
    }
    ck_assert_int_ge(a.count, ROUNDS);
    ck_assert_int_ge(b.count, ROUNDS);
    bool msg = _i == 0 && kart__ur_kernel_has(KART__UR_MSG_RING);
    /* a's first callback may run before b's ring is enabled (b's thread
     * has not waited yet): then the eventfd, -ENOTSUP. b's always finds
     * a's enabled, a having waited to hear b. */
    ck_assert_int_eq(b.wake_from_result, msg ? 0 : -ENOTSUP);
    if (!msg)
        ck_assert_int_eq(a.wake_from_result, -ENOTSUP);
    for (int i = 0; i < 2; i++)
        kart_loop_free(sides[i]->loop);
    kart__ur_features_off(0);
}
END_TEST

/* A loop of another backend is woken through its eventfd, and an epoll
 * loop's thread sends through the eventfd too. */
START_TEST(msg_ring_only_between_uring_loops)
{
    URING_OR_SKIP();
    kart_loop *u = uring_loop(), *e;
    kart_loop_options o = {.selector = {.backend = "epoll"}};
    ck_assert_int_eq(kart_loop_create(&e, &o), 0);
    ck_assert_ptr_null(e->sel->ops->wake_from);
    ck_assert_ptr_nonnull(u->sel->ops->wake_from);
    /* Not yet run: u's ring is not this thread's yet. */
    ck_assert_int_eq(u->sel->ops->wake_from(u->sel, e->sel), -ENOTSUP);
    kart_selector *bare;
    kart_selector_options so = {.backend = "uring"};
    ck_assert_int_eq(kart_selector_create(&bare, &so), 0);
    ck_assert_int_eq(u->sel->ops->wake_from(u->sel, bare), -ENOTSUP);
    ck_assert_int_eq(u->sel->ops->wake_from(bare, u->sel), -ENOTSUP);
    kart_selector_free(bare);
    kart_loop_free(u);
    kart_loop_free(e);
}
END_TEST

int main(void)
{
    int err = kart_backend_probe("uring");
    if (err != 0) {
        KART_SKIP_GROUP("the uring feature cases: io_uring cannot start here (%s)",
                        kart_strerror(err));
        fflush(stdout);
    }
    Suite *s = suite_create("uring_features");
    TCase *tc = tcase_create("features");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, probe_matches_the_kernel);
    tcase_add_test(tc, feature_names_and_the_test_hook);
    tcase_add_loop_test(tc, env_turns_features_off, 0, 6);
    tcase_add_loop_test(tc, child_exit_status_both_ways, 0, 2);
    tcase_add_test(tc, child_stop_cancels_without_reaping);
    tcase_add_loop_test(tc, async_ping_pong_between_uring_loops, 0, 2);
    tcase_add_test(tc, msg_ring_only_between_uring_loops);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

#endif

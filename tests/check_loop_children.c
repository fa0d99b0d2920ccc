/* Description: the event loop's child watchers (kart_child, kart/loop.h):
 * exit codes and killing signals, children that exited before the start or
 * are reaped elsewhere, stop without reaping, the errors, each through
 * pidfd and through the SIGCHLD path (forced by failing pidfd_open),
 * under a seccomp filter that refuses pidfd_open, and signal and child
 * watchers started without free descriptors. In every check_loop* suite,
 * each case that runs a loop runs once per compiled-in backend (forced
 * through KART_BACKEND, skipped where it cannot start), and every error
 * that the header documents has a case, except those only a failing
 * allocator or kernel produces (-ENOMEM, -ENFILE, a backend's or a write's
 * failure). */
#define KT_LOOP_HELPERS
#include "testutil.h"

#include "fault.h"
#if KART_HAVE_URING
#include "../uring/uring_probe.h"
#endif

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* Forces the child watchers' SIGCHLD path, as on kernels without
 * pidfd_open: every pidfd_open fails with ENOSYS (core/base/fault.h), and
 * io_uring's WAITID (6.7, so absent there too) is off. */
static bool no_pidfd;

static void set_no_pidfd(bool on)
{
    no_pidfd = on;
#if KART_HAVE_URING
    kart__ur_features_off(on ? 1u << KART__UR_WAITID : 0);
#endif
    if (on)
        ck_assert_int_eq(kart__fault_fail(KART__SYS_pidfd_open, 1, KART__FAULT_ALWAYS, ENOSYS), 0);
    else
        ck_assert_int_eq(kart__fault_arm(KART__SYS_pidfd_open, NULL), 0);
}

static void child_rec_cb(kart_child *c, int status)
{
    rec *r = c->base.data;
    r->calls++;
    r->value = status;
    r->active = kart_handle_is_active(&c->base);
}

static pid_t fork_exit(int code)
{
    pid_t pid = kt_fork();
    if (pid == 0)
        _exit(code);
    return pid;
}

/* A child that waits to be killed; it is ready for SIGTERM on return. */
static pid_t fork_pause(void)
{
    int p[2];
    kt_pipe(p);
    pid_t pid = kt_fork();
    if (pid == 0) {
        /* Check's SIGTERM handler would forward the signal to the test. */
        signal(SIGTERM, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (write(p[1], "r", 1) != 1)
            _exit(99);
        for (;;)
            pause();
    }
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    ck_assert_int_eq(poll(&pf, 1, -1), 1);
    close2(p);
    return pid;
}

/* Waits until pid has exited, without reaping it. */
static void wait_exited(pid_t pid)
{
    siginfo_t si;
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

static void child_exit_status(kart_loop *loop)
{
    rec r = {0};
    kart_child c;
    ck_assert_int_eq(kart_child_init(loop, &c), 0);
    c.base.data = &r;
    ck_assert_int_eq(c.base.type, KART_HANDLE_CHILD);
    pid_t pid = fork_exit(3);
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(c.pid, pid);
    ck_assert_int_eq(kart_handle_is_active(&c.base), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, 3);
    ck_assert_int_eq(r.active, 0);
    /* Reaped: no zombie is left. */
    ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}

static void child_killed_by_signal(kart_loop *loop)
{
    rec r = {0};
    kart_child c;
    kart_child_init(loop, &c);
    c.base.data = &r;
    pid_t pid = fork_pause();
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, -SIGKILL);
}

static void child_exited_before_start(kart_loop *loop)
{
    rec r = {0};
    kart_child c;
    kart_child_init(loop, &c);
    c.base.data = &r;
    pid_t pid = fork_exit(5);
    wait_exited(pid);
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, 5);
}

static void two_children_at_once(kart_loop *loop)
{
    rec r1 = {0}, r2 = {0};
    kart_child c1, c2;
    kart_child_init(loop, &c1);
    kart_child_init(loop, &c2);
    c1.base.data = &r1;
    c2.base.data = &r2;
    pid_t p1 = fork_pause(), p2 = fork_exit(2);
    ck_assert_int_eq(kart_child_start(&c1, child_rec_cb, p1), 0);
    ck_assert_int_eq(kart_child_start(&c2, child_rec_cb, p2), 0);
    wait_exited(p2);
    kill(p1, SIGTERM);
    wait_exited(p1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_int_eq(r1.value, -SIGTERM);
    ck_assert_int_eq(r2.calls, 1);
    ck_assert_int_eq(r2.value, 2);
}

static void child_stop_does_not_reap(kart_loop *loop)
{
    rec r = {0};
    kart_child c;
    kart_child_init(loop, &c);
    c.base.data = &r;
    pid_t pid = fork_exit(7);
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(kart_child_stop(&c), 0);
    ck_assert_int_eq(kart_child_stop(&c), 0);
    ck_assert_int_eq(kart_handle_is_active(&c.base), 0);
    wait_exited(pid);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 7);
}

START_TEST(child_exit_code_is_reported)
{
    LOOP_OR_SKIP(_i);
    child_exit_status(loop);
    close_loop(loop);
}
END_TEST

START_TEST(child_killed_is_minus_signal)
{
    LOOP_OR_SKIP(_i);
    child_killed_by_signal(loop);
    close_loop(loop);
}
END_TEST

START_TEST(child_that_exited_before_start_is_reported)
{
    LOOP_OR_SKIP(_i);
    child_exited_before_start(loop);
    two_children_at_once(loop);
    close_loop(loop);
}
END_TEST

START_TEST(child_stop_leaves_it_unreaped)
{
    LOOP_OR_SKIP(_i);
    child_stop_does_not_reap(loop);
    close_loop(loop);
}
END_TEST


static void child_never_cb(kart_child *c, int status)
{
    (void)c;
    ck_abort_msg("child callback ran (status %d) after its start failed", status);
}

static void assert_child_start_fails(kart_child *c, kart_child_cb cb, pid_t pid, int err)
{
    int before = kart_loop_active_handles(c->base.loop);
    ck_assert_int_eq(kart_child_start(c, cb, pid), err);
    ck_assert_int_eq(kart_handle_is_active(&c->base), 0);
    ck_assert_int_eq(kart_loop_active_handles(c->base.loop), before);
}

/* Reaped behind the watcher's back, or auto-reaped with SIGCHLD ignored:
 * the status is INT_MIN. */
static void child_reaped_elsewhere(kart_loop *loop)
{
    rec r = {0};
    kart_child c;
    kart_child_init(loop, &c);
    c.base.data = &r;
    pid_t pid = fork_exit(8);
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, INT_MIN);

    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    ck_assert_int_eq(sigaction(SIGCHLD, &ign, &old), 0);
    r.calls = 0;
    pid = fork_pause();
    if (no_pidfd) {
        /* The kernel sends no SIGCHLD for a child it reaps itself, so the
         * SIGCHLD path could never see the exit: refused. */
        assert_child_start_fails(&c, child_never_cb, pid, -ECHILD);
        kill(pid, SIGKILL);
    } else {
        ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
        kill(pid, SIGKILL);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
        ck_assert_int_eq(r.calls, 1);
        ck_assert_int_eq(r.value, INT_MIN);
    }
    ck_assert_int_eq(sigaction(SIGCHLD, &old, NULL), 0);
}

static void child_errors(kart_loop *loop)
{
    kart_child c, c2;
    ck_assert_int_eq(kart_child_init(NULL, &c), -EINVAL);
    ck_assert_int_eq(kart_child_init(loop, NULL), -EINVAL);
    ck_assert_int_eq(kart_child_init(loop, &c), 0);
    kart_child_init(loop, &c2);
    ck_assert_int_eq(kart_child_start(NULL, child_never_cb, getpid()), -EINVAL);
    assert_child_start_fails(&c, NULL, fork_exit(0), -EINVAL);
    assert_child_start_fails(&c, child_never_cb, 0, -EINVAL);
    assert_child_start_fails(&c, child_never_cb, -1, -EINVAL);

    /* No such process: beyond pid_max, and one just reaped. */
    long pid_max = 4194304;
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    if (f) {
        ck_assert_int_eq(fscanf(f, "%ld", &pid_max), 1);
        fclose(f);
    }
    assert_child_start_fails(&c, child_never_cb, (pid_t)(pid_max + 1), -ESRCH);
    pid_t gone = fork_exit(0);
    ck_assert_int_eq(waitpid(gone, NULL, 0), gone);
    assert_child_start_fails(&c, child_never_cb, gone, -ESRCH);

    /* Processes that are not our children. */
    assert_child_start_fails(&c, child_never_cb, 1, -ECHILD);
    assert_child_start_fails(&c, child_never_cb, getppid(), -ECHILD);
    assert_child_start_fails(&c, child_never_cb, getpid(), -ECHILD);

    /* Two watchers of one pid: the second is refused, the first works. */
    rec r = {0};
    c.base.data = &r;
    pid_t pid = fork_exit(4);
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    assert_child_start_fails(&c2, child_never_cb, pid, -EEXIST);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.value, 4);
    ck_assert_int_eq(kart_child_stop(&c2), 0);
    /* Reap the child of the NULL-callback case. */
    while (waitpid(-1, NULL, 0) > 0)
        ;
}

START_TEST(child_reaped_elsewhere_is_int_min)
{
    LOOP_OR_SKIP(_i);
    child_reaped_elsewhere(loop);
    close_loop(loop);
}
END_TEST

START_TEST(child_errors_with_pidfd)
{
    LOOP_OR_SKIP(_i);
    child_errors(loop);
    close_loop(loop);
}
END_TEST

/* The SIGCHLD path, as on kernels without pidfd_open. */
START_TEST(child_via_sigchld)
{
    LOOP_OR_SKIP(_i);
    set_no_pidfd(true);
    set_blocked(SIGCHLD, false);
    sigset_t before;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    child_exit_status(loop);
    child_killed_by_signal(loop);
    child_exited_before_start(loop);
    two_children_at_once(loop);
    child_stop_does_not_reap(loop);
    child_reaped_elsewhere(loop);
    child_errors(loop);
    /* SIGCHLD is unblocked again once no child is watched. */
    assert_same_mask(&before);
    close_loop(loop);
}
END_TEST

/* A container whose seccomp profile refuses pidfd_open with EPERM (Docker
 * before 20.10 did so for system calls it did not know) must still see
 * its children exit. */
#ifdef __linux__
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#if defined(__x86_64__)
#define KT_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define KT_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#endif

START_TEST(child_when_seccomp_refuses_pidfd)
{
#if defined(KT_AUDIT_ARCH) && defined(SYS_pidfd_open)
    LOOP_OR_SKIP(_i);
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KT_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = {.len = sizeof(prog) / sizeof(prog[0]), .filter = prog};
    ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog), 0);
    ck_assert_int_eq(syscall(SYS_pidfd_open, getpid(), 0), -1);
    ck_assert_int_eq(errno, EPERM);
    child_exit_status(loop);
    child_killed_by_signal(loop);
    close_loop(loop);
#else
    (void)_i;
#endif
}
END_TEST

/* Lowers RLIMIT_NOFILE so that no new descriptor can be opened; returns
 * the old limit. */
static struct rlimit no_more_fds(void)
{
    struct rlimit old, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(lowest, 0);
    close(lowest);
    rl = old;
    rl.rlim_cur = (rlim_t)lowest;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    return old;
}

/* The first signal watcher needs a signalfd, a child watcher a pidfd (or,
 * on the SIGCHLD path, the signalfd). */
START_TEST(signal_and_child_start_without_free_fds_is_emfile)
{
    LOOP_OR_SKIP(_i);
    kart_signal s;
    kart_child c;
    kart_signal_init(loop, &s);
    kart_child_init(loop, &c);
    set_blocked(SIGUSR1, false);
    set_blocked(SIGCHLD, false);
    sigset_t before;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    pid_t pid = fork_exit(6);
    for (int path = 0; path < 2; path++) {
        set_no_pidfd(path == 1);
        struct rlimit old = no_more_fds();
        ck_assert_int_eq(kart_signal_start(&s, signal_never_cb, SIGUSR1), -EMFILE);
        ck_assert_int_eq(kart_handle_is_active(&s.base), 0);
        assert_child_start_fails(&c, child_never_cb, pid, -EMFILE);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
        assert_same_mask(&before);
        ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    }
    /* With descriptors to spare, both work. */
    rec r = {0};
    c.base.data = &r;
    ck_assert_int_eq(kart_child_start(&c, child_rec_cb, pid), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.value, 6);
    close_loop(loop);
}
END_TEST

int main(void)
{
    kt_print_backends();
    int nb = kt_nbackends();
    Suite *s = suite_create("loop_children");

    TCase *tc = tcase_create("child");
    tcase_add_loop_test(tc, child_exit_code_is_reported, 0, nb);
    tcase_add_loop_test(tc, child_killed_is_minus_signal, 0, nb);
    tcase_add_loop_test(tc, child_that_exited_before_start_is_reported, 0, nb);
    tcase_add_loop_test(tc, child_stop_leaves_it_unreaped, 0, nb);
    tcase_add_loop_test(tc, child_reaped_elsewhere_is_int_min, 0, nb);
    tcase_add_loop_test(tc, child_errors_with_pidfd, 0, nb);
    tcase_add_loop_test(tc, child_via_sigchld, 0, nb);
    tcase_add_loop_test(tc, child_when_seccomp_refuses_pidfd, 0, nb);
    tcase_add_loop_test(tc, signal_and_child_start_without_free_fds_is_emfile, 0, nb);
    suite_add_tcase(s, tc);

    return kt_run(s);
}

/* Description: a host that forbids io_uring still gets a working selector.
 * Each case installs a seccomp filter (raw BPF, no libseccomp) that makes
 * io_uring_setup fail with EPERM, as Docker's default profile and the
 * kernel.io_uring_disabled sysctl do, or with ENOSYS, as a kernel built
 * without io_uring does; the default selector must then be epoll and work,
 * and forcing "uring" must report the filter's errno. Check runs every case
 * in its own child, so the filter never outlives its case. */
#include "testutil.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define KT_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define KT_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* Makes io_uring_setup fail with err in this process; other system calls,
 * and calls made under another ABI, are allowed. Returns 0, or -ENOTSUP
 * (after saying so) where the filter cannot be written for this arch. */
static int deny_io_uring_setup(int err)
{
#if defined(KT_AUDIT_ARCH) && defined(__NR_io_uring_setup)
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KT_AUDIT_ARCH, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f};
    ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
    return 0;
#else
    (void)err;
    kt_skip_print_(__func__, "no seccomp filter for this architecture");
    return -ENOTSUP;
#endif
}

/* What every backend must do: report readable and writable fds, time out,
 * stop reporting an unregistered fd. */
static void selector_works(kart_selector *s)
{
    int sv[2], a, b;
    kart_event ev[4];
    kt_socketpair(sv);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, &a), 0);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0);
    kt_write(sv[1], "x");
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 1000 * KT_MS), 1);
    ck_assert_int_eq(ev[0].fd, sv[0]);
    ck_assert_uint_eq(ev[0].events, KART_READABLE);
    ck_assert_ptr_eq(ev[0].data, &a);
    ck_assert_int_eq(kart_selector_register(s, sv[1], KART_WRITABLE, &b), 0);
    ck_assert_int_eq(kart_selector_unregister(s, sv[0]), 0);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 1000 * KT_MS), 1);
    ck_assert_int_eq(ev[0].fd, sv[1]);
    ck_assert_uint_eq(ev[0].events, KART_WRITABLE);
    ck_assert_ptr_eq(ev[0].data, &b);
    ck_assert_int_eq(kart_selector_unregister(s, sv[1]), 0);
    ck_assert_int_eq(kart_selector_count(s), 0);
    ck_assert_int_eq(kart_selector_wait(s, ev, 4, 0), 0);
    close(sv[0]);
    close(sv[1]);
}

static void default_falls_back_to_epoll(int err)
{
    unsetenv("KART_BACKEND");
    if (deny_io_uring_setup(err) < 0)
        return;
    kart_selector *s;
    ck_assert_int_eq(kart_selector_create(&s, NULL), 0);
    ck_assert_str_eq(kart_selector_backend(s), "epoll");
    selector_works(s);
    kart_selector_free(s);
}

static void forced_uring_reports_the_error(int err)
{
    unsetenv("KART_BACKEND");
    if (deny_io_uring_setup(err) < 0)
        return;
#ifdef KART_HAVE_URING
    int want = -err;
#else
    int want = KART_EUNKNOWNBACKEND;
#endif
    kart_selector *s = NULL;
    kart_selector_options o = {.backend = "uring"};
    ck_assert_int_eq(kart_selector_create(&s, &o), want);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(kart_backend_probe("uring"), want);
    ck_assert_int_eq(kart_backend_probe("epoll"), 0);
}

START_TEST(eperm_falls_back_to_epoll)
{
    default_falls_back_to_epoll(EPERM);
}
END_TEST

START_TEST(enosys_falls_back_to_epoll)
{
    default_falls_back_to_epoll(ENOSYS);
}
END_TEST

START_TEST(forced_uring_reports_eperm)
{
    forced_uring_reports_the_error(EPERM);
}
END_TEST

START_TEST(forced_uring_reports_enosys)
{
    forced_uring_reports_the_error(ENOSYS);
}
END_TEST

START_TEST(env_forced_uring_reports_eperm)
{
    if (deny_io_uring_setup(EPERM) < 0)
        return; /* the SKIP line is printed */
    setenv("KART_BACKEND", "uring", 1);
    kart_selector *s = NULL;
#ifdef KART_HAVE_URING
    ck_assert_int_eq(kart_selector_create(&s, NULL), -EPERM);
#else
    ck_assert_int_eq(kart_selector_create(&s, NULL), KART_EUNKNOWNBACKEND);
#endif
    ck_assert_ptr_null(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fallback");
    TCase *tc = tcase_create("seccomp");
    tcase_add_test(tc, eperm_falls_back_to_epoll);
    tcase_add_test(tc, enosys_falls_back_to_epoll);
    tcase_add_test(tc, forced_uring_reports_eperm);
    tcase_add_test(tc, forced_uring_reports_enosys);
    tcase_add_test(tc, env_forced_uring_reports_eperm);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

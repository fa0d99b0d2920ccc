/* Description: arming the fault table from the environment, as
 * scripts/check-faults (make check-faults) does with unmodified suites:
 * KART_FAULT=site:nth:errno makes the nth call of the site fail in each
 * test of a case, since each test child starts from the armed state, not
 * from what the tests before it consumed; short=N cuts reads and writes; a
 * malformed rule stops the suite with exit status 2 and says why, before
 * any test runs; KART_FAULT_REPORT lists the calls per site, the rules
 * that fired and each process's open descriptors. And short rules leave
 * alone what a kernel never cuts short (datagrams, eventfd records).
 *
 * The suite runs itself (/proc/self/exe) with those variables and with
 * KT_FAULT_ENV_PROBE set, which adds the "probe" case that the child runs
 * and the parent checks from outside. */
#include "testutil.h"

#include "fault.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- the probe: what the re-run suite does ---- */

/* Two tests alike: each must see its first pipe2 pass and its second fail
 * (KART_FAULT=pipe2:2:EMFILE), the second test as much as the first. */
static void pipe2_second_fails(void)
{
    int p[2];
    ck_assert_int_eq(kart__sys_pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    close(p[1]);
    ck_assert_int_eq(kart__sys_pipe2(p, O_CLOEXEC), -1);
    ck_assert_int_eq(errno, EMFILE);
    ck_assert_int_eq(kart__sys_pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    close(p[1]);
}

START_TEST(probe_first)
{
    pipe2_second_fails();
}
END_TEST

START_TEST(probe_second)
{
    pipe2_second_fails();
}
END_TEST

/* KART_FAULT=write:1:short=3: the first write moves 3 bytes, the next all. */
START_TEST(probe_short)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(kart__sys_write(p[1], "abcdef", 6), 3);
    ck_assert_int_eq(kart__sys_write(p[1], "def", 3), 3);
    char buf[8];
    ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 6);
    ck_assert_int_eq(memcmp(buf, "abcdef", 6), 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- the checks: the suite re-run from outside ---- */

/* Runs this suite with the probe case and KART_FAULT=spec (and a report in
 * report when it is not NULL); returns its exit status and leaves its
 * output in out (the start of it, NUL-terminated). */
static int rerun(const char *spec, const char *report, char *out, size_t cap)
{
    char log[] = "/tmp/kart-fault-env-XXXXXX";
    int fd = mkstemp(log);
    ck_assert_int_ge(fd, 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("KT_FAULT_ENV_PROBE", "1", 1);
        setenv("CK_RUN_CASE", "probe", 1);
        setenv("CK_FORK", "yes", 1);
        setenv("KART_FAULT", spec, 1);
        if (report)
            setenv("KART_FAULT_REPORT", report, 1);
        else
            unsetenv("KART_FAULT_REPORT");
        execl("/proc/self/exe", "check_fault_env", (char *)NULL);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(log);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* How many lines of the report start with prefix and contain word. */
static int report_lines(const char *report, const char *prefix, const char *word)
{
    FILE *f = fopen(report, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, word) != NULL;
    fclose(f);
    return n;
}

START_TEST(each_test_starts_from_the_armed_state)
{
    char report[] = "/tmp/kart-fault-report-XXXXXX";
    int fd = mkstemp(report);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char out[4096];
    /* Without the probe_short rule: that test fails, the other two pass. */
    int rc = rerun("pipe2:2:EMFILE", report, out, sizeof(out));
    ck_assert_msg(strstr(out, "Checks: 3, Failures: 1, Errors: 0") != NULL, "%s", out);
    ck_assert_msg(strstr(out, ":probe_short:") != NULL, "%s", out);
    ck_assert_int_eq(rc, 1);
    /* Each of the two pipe2 tests: one fire, three calls, descriptors. */
    ck_assert_int_eq(report_lines(report, "F ", " pipe2"), 2);
    ck_assert_int_eq(report_lines(report, "C ", " pipe2 3"), 2);
    ck_assert_int_ge(report_lines(report, "D ", ""), 2);
    unlink(report);
}
END_TEST

START_TEST(rules_combine_and_short_cuts_writes)
{
    char out[4096];
    ck_assert_int_eq(rerun("pipe2:2:EMFILE,write:1:short=3", NULL, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "Checks: 3, Failures: 0, Errors: 0") != NULL, "%s", out);
    /* errnos by number too, and a run of one */
    ck_assert_int_eq(rerun("pipe2:2:24:1,write:1:short=3", NULL, out, sizeof(out)), 0);
}
END_TEST

START_TEST(bad_rules_stop_the_suite)
{
    static const char *const bad[] = {
        "nosuch:1:EIO",      /* no such site */
        "pipe2:0:EMFILE",    /* nth 0 */
        "pipe2:x:EMFILE",    /* nth not a number */
        "pipe2:1:EWHATEVER", /* no such errno */
        "pipe2:1:short=5",   /* pipe2 moves no bytes */
        "write:1:short=0",   /* a short of nothing */
        "pipe2:1",           /* no errno */
        "pipe2:1:EIO:1:2",   /* too many fields */
        "pipe2:1:EIO,",      /* an empty rule */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[4096];
        int rc = rerun(bad[i], NULL, out, sizeof(out));
        ck_assert_msg(rc == 2, "%s: exit %d", bad[i], rc);
        ck_assert_msg(strstr(out, "KART_FAULT: bad rule") != NULL, "%s: %s", bad[i], out);
        ck_assert_msg(strstr(out, "Checks:") == NULL, "%s ran tests: %s", bad[i], out);
    }
}
END_TEST

/* ---- short transfers that a kernel never makes ---- */

START_TEST(short_rules_leave_whole_messages_whole)
{
    kart__fault_reset();
    /* A stream moves what the rule allows... */
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(kart__fault_short(KART__SYS_send, 1, 1, 1), 0);
    ck_assert_int_eq(kart__sys_send(sv[0], "abcdef", 6, 0), 1);
    close(sv[0]);
    close(sv[1]);
    /* ...a datagram or an eventfd record goes whole or not at all. */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
    ck_assert_int_eq(kart__fault_short(KART__SYS_send, 1, 1, 1), 0);
    ck_assert_int_eq(kart__sys_send(sv[0], "abcdef", 6, 0), 6);
    char buf[8];
    ck_assert_int_eq(kart__fault_short(KART__SYS_recv, 1, 1, 1), 0);
    ck_assert_int_eq(kart__sys_recv(sv[1], buf, sizeof(buf), 0), 6);
    close(sv[0]);
    close(sv[1]);
    int efd = eventfd(0, EFD_CLOEXEC);
    ck_assert_int_ge(efd, 0);
    uint64_t v = 1;
    ck_assert_int_eq(kart__fault_short(KART__SYS_write, 1, 1, 1), 0);
    ck_assert_int_eq(kart__sys_write(efd, &v, sizeof(v)), 8);
    ck_assert_int_eq(kart__fault_short(KART__SYS_read, 1, 1, 1), 0);
    ck_assert_int_eq(kart__sys_read(efd, &v, sizeof(v)), 8);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(kart__fault_fired(KART__SYS_write), 1);
    close(efd);
    kart__fault_reset();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fault_env");
    TCase *tc;
    if (getenv("KT_FAULT_ENV_PROBE")) {
        /* The suite's own process makes a call first, as some suites'
         * main() does: the tests must not start from what it consumed. */
        int p[2];
        if (kart__sys_pipe2(p, O_CLOEXEC) == 0) {
            close(p[0]);
            close(p[1]);
        }
        tc = tcase_create("probe");
        tcase_add_test(tc, probe_first);
        tcase_add_test(tc, probe_second);
        tcase_add_test(tc, probe_short);
        suite_add_tcase(s, tc);
    }
    tc = tcase_create("environment");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, each_test_starts_from_the_armed_state);
    tcase_add_test(tc, rules_combine_and_short_cuts_writes);
    tcase_add_test(tc, bad_rules_stop_the_suite);
    tcase_add_test(tc, short_rules_leave_whole_messages_whole);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: tests/childutil.h and kt_fork, the harness that keeps a
 * test that forks bounded in time under make check-faults: a bounded read
 * returns what a child wrote, sees a child's early end at once, and stops
 * at its deadline when nothing comes; a bounded wait returns a child's
 * status, and kills and reaps one still running at its deadline; a child
 * made by kt_fork dies with the process that forked it. */
#include "testutil.h"

#include <time.h>
#include <sys/wait.h>

static int64_t now_ms(void)
{
    return kart_now_ns() / KT_MS;
}

START_TEST(read_for_reads_what_the_child_writes)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        close(p[0]);
        /* Two writes: the read gathers them. */
        if (write(p[1], "ab", 2) != 2 || write(p[1], "cd", 2) != 2)
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    char buf[4];
    kt_read_child(p[0], buf, sizeof(buf));
    ck_assert(memcmp(buf, "abcd", 4) == 0);
    int st = -1;
    kt_wait_child(pid, &st);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(p[0]);
}
END_TEST

START_TEST(read_for_sees_an_early_end)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        close(p[0]);
        if (write(p[1], "a", 1) != 1)
            _exit(1);
        _exit(2); /* ends before writing the rest */
    }
    close(p[1]);
    char buf[8];
    int64_t t0 = now_ms();
    ck_assert_int_eq(kt_read_for(p[0], buf, sizeof(buf), 20000), 1);
    ck_assert_int_lt(now_ms() - t0, 10000); /* the end, not the deadline */
    int st = -1;
    ck_assert_int_eq(kt_waitpid_for(pid, &st, 20000), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    close(p[0]);
}
END_TEST

START_TEST(read_for_stops_at_its_deadline)
{
    int p[2];
    kt_pipe(p); /* non-blocking: EAGAIN is waited through */
    int64_t t0 = now_ms();
    char buf[4];
    ck_assert_int_eq(kt_read_for(p[0], buf, sizeof(buf), 200), 0);
    ck_assert_int_ge(now_ms() - t0, 200);
    kt_write(p[1], "x");
    ck_assert_int_eq(kt_read_for(p[0], buf, sizeof(buf), 100), 1);
    ck_assert_int_eq(buf[0], 'x');
    /* A closed descriptor: the error, nothing read. */
    close(p[0]);
    close(p[1]);
    ck_assert_int_eq(kt_read_for(p[0], buf, sizeof(buf), 100), -EBADF);
}
END_TEST

START_TEST(waitpid_for_kills_a_child_still_running)
{
    pid_t pid = kt_fork();
    if (pid == 0)
        for (;;)
            pause();
    int64_t t0 = now_ms();
    int st = 12345;
    ck_assert_int_eq(kt_waitpid_for(pid, &st, 200), -ETIMEDOUT);
    ck_assert_int_ge(now_ms() - t0, 200);
    ck_assert_int_eq(st, 12345); /* not stored */
    /* Killed and reaped: nothing left to wait for. */
    errno = 0;
    ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
    ck_assert_int_eq(kt_waitpid_for(pid, NULL, 100), -ECHILD);
}
END_TEST

/* A child of kt_fork dies with its parent: here a forked middle process
 * that kt_forks a grandchild holding a pipe's write end, then ends. The
 * pipe's end comes at once, not at the read's deadline. */
START_TEST(kt_fork_child_dies_with_its_parent)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t mid = fork();
    ck_assert_int_ge(mid, 0);
    if (mid == 0) {
        close(p[0]);
        int ready[2];
        if (pipe(ready) != 0)
            _exit(1);
        if (kt_fork() == 0) {
            /* Past kt_fork's own check that its parent still runs. */
            if (write(ready[1], "r", 1) != 1)
                _exit(1);
            for (;;)
                pause(); /* holds p[1] until killed */
        }
        close(ready[1]);
        char r;
        _exit(kt_read_for(ready[0], &r, 1, 3000) == 1 ? 0 : 1);
    }
    close(p[1]);
    int st = -1;
    kt_wait_child(mid, &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the grandchild did not start");
    char c;
    int64_t t0 = now_ms();
    /* Within Check's default 4 s: without the death signal, the read
     * returns at its deadline and the test fails, it does not time out. */
    ck_assert_int_eq(kt_read_for(p[0], &c, 1, 3500), 0);
    ck_assert_int_lt(now_ms() - t0, 3000);
    close(p[0]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fault_child");
    TCase *tc = tcase_create("childutil");
    tcase_add_test(tc, read_for_reads_what_the_child_writes);
    tcase_add_test(tc, read_for_sees_an_early_end);
    tcase_add_test(tc, read_for_stops_at_its_deadline);
    tcase_add_test(tc, waitpid_for_kills_a_child_still_running);
    tcase_add_test(tc, kt_fork_child_dies_with_its_parent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kt_run(suite());
}

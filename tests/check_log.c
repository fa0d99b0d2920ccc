/* Description: the runtime's log (kart/log.h): silent by default, levels,
 * handlers, the stderr format, KART_DEBUG, truncation, threads and fork,
 * and the library's own lines reaching it. */
#include "fault.h"
#include "testutil.h"

#include <kart/log.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define MAX_SEEN 8

typedef struct {
    int n;
    kart_log_record rec[MAX_SEEN];
    char msg[MAX_SEEN][KART_LOG_MESSAGE_MAX + 1];
    char module[MAX_SEEN][32];
} seen_lines;

static void remember(const kart_log_record *r, void *arg)
{
    seen_lines *s = arg;
    if (s->n == MAX_SEEN)
        return;
    s->rec[s->n] = *r;
    memcpy(s->msg[s->n], r->message, r->len + 1);
    snprintf(s->module[s->n], sizeof(s->module[0]), "%s", r->module);
    s->n++;
}

/* Reads what the process wrote to stderr while fn ran. */
static void capture_stderr(void (*fn)(void), char *out, size_t cap)
{
    int p[2];
    kt_pipe(p);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(p[1], STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    size_t n = 0;
    ssize_t k;
    while (n < cap - 1 && (k = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(p[0]);
}

START_TEST(silent_by_default)
{
    unsetenv("KART_DEBUG");
    ck_assert_int_eq(kart_log_enabled(KART_LOG_CRITICAL), 0);
    ck_assert_int_eq(kart_log(KART_LOG_CRITICAL, NULL, "nobody hears %d", 1), 0);
    ck_assert_int_eq(kart_log_get_level(), KART_LOG_WARNING);
}
END_TEST

START_TEST(handler_gets_each_field)
{
    seen_lines s = {0};
    int64_t before = (int64_t)time(NULL) * 1000000000;
    ck_assert_int_eq(kart_log_set_handler(remember, &s, KART_LOG_INFO, NULL, NULL), 0);
    ck_assert_int_eq(kart_log(KART_LOG_INFO, "mine", "value %d and %s", 42, "text"), 1);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.rec[0].level, KART_LOG_INFO);
    ck_assert_str_eq(s.msg[0], "value 42 and text");
    ck_assert_uint_eq(s.rec[0].len, strlen("value 42 and text"));
    ck_assert_str_eq(s.module[0], "mine");
    ck_assert_int_eq(s.rec[0].truncated, 0);
    ck_assert_int_eq(s.rec[0].pid, getpid());
    ck_assert_int_eq(s.rec[0].tid, (pid_t)syscall(SYS_gettid));
    ck_assert_int_ge(s.rec[0].time_ns, before);
    /* module NULL: "app" */
    ck_assert_int_eq(kart_log(KART_LOG_ERROR, NULL, "x"), 1);
    ck_assert_str_eq(s.module[1], "app");
}
END_TEST

START_TEST(lines_below_the_level_are_dropped)
{
    seen_lines s = {0};
    ck_assert_int_eq(kart_log_set_handler(remember, &s, KART_LOG_WARNING, NULL, NULL), 0);
    ck_assert_int_eq(kart_log(KART_LOG_DEBUG, NULL, "d"), 0);
    ck_assert_int_eq(kart_log(KART_LOG_INFO, NULL, "i"), 0);
    ck_assert_int_eq(kart_log(KART_LOG_WARNING, NULL, "w"), 1);
    ck_assert_int_eq(kart_log(KART_LOG_CRITICAL, NULL, "c"), 1);
    ck_assert_int_eq(s.n, 2);
    ck_assert_int_eq(kart_log_enabled(KART_LOG_INFO), 0);
    /* The level itself is enabled, as kart_log wrote "w" above (make
     * mutate: a '>' for '>=' in kart_log_enabled survived without it). */
    ck_assert_int_eq(kart_log_enabled(KART_LOG_WARNING), 1);
    ck_assert_int_eq(kart_log_enabled(KART_LOG_ERROR), 1);
    ck_assert_int_eq(kart_log_set_level(KART_LOG_DEBUG), 0);
    ck_assert_int_eq(kart_log_get_level(), KART_LOG_DEBUG);
    ck_assert_int_eq(kart_log(KART_LOG_DEBUG, NULL, "d"), 1);
    ck_assert_int_eq(s.n, 3);
}
END_TEST

START_TEST(set_handler_returns_the_previous_one)
{
    seen_lines a = {0}, b = {0};
    kart_log_handler old = remember;
    void *old_arg = &a;
    ck_assert_int_eq(kart_log_set_handler(remember, &a, KART_LOG_DEBUG, &old, &old_arg), 0);
    ck_assert_ptr_null((void *)old);
    ck_assert_ptr_null(old_arg);
    ck_assert_int_eq(kart_log_set_handler(remember, &b, KART_LOG_DEBUG, &old, &old_arg), 0);
    ck_assert_ptr_eq((void *)old, (void *)remember);
    ck_assert_ptr_eq(old_arg, &a);
    kart_log(KART_LOG_INFO, NULL, "to b");
    ck_assert_int_eq(a.n, 0);
    ck_assert_int_eq(b.n, 1);
    /* NULL makes the log silent again */
    ck_assert_int_eq(kart_log_set_handler(NULL, NULL, KART_LOG_DEBUG, NULL, NULL), 0);
    ck_assert_int_eq(kart_log(KART_LOG_CRITICAL, NULL, "nobody"), 0);
    ck_assert_int_eq(b.n, 1);
}
END_TEST

START_TEST(bad_levels_and_formats_are_refused)
{
    seen_lines s = {0};
    ck_assert_int_eq(kart_log_set_handler(remember, &s, (kart_log_level)15, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_log_set_handler(remember, &s, KART_LOG_ERROR, NULL, NULL), 0);
    ck_assert_int_eq(kart_log_set_level((kart_log_level)0), -EINVAL);
    ck_assert_int_eq(kart_log_set_level((kart_log_level)60), -EINVAL);
    ck_assert_int_eq(kart_log_get_level(), KART_LOG_ERROR); /* unchanged */
    ck_assert_int_eq(kart_log_to_stderr((kart_log_level)-1), -EINVAL);
    ck_assert_int_eq(kart_log((kart_log_level)11, NULL, "x"), -EINVAL);
    ck_assert_int_eq(kart_log(KART_LOG_ERROR, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_log_enabled((kart_log_level)99), 0);
    ck_assert_int_eq(s.n, 0);
    ck_assert_ptr_null(kart_log_level_name((kart_log_level)21));
    ck_assert_str_eq(kart_log_level_name(KART_LOG_CRITICAL), "CRITICAL");
}
END_TEST

START_TEST(long_messages_are_cut_on_a_character_and_marked)
{
    seen_lines s = {0};
    kart_log_set_handler(remember, &s, KART_LOG_DEBUG, NULL, NULL);
    static char big[3000];
    for (size_t i = 0; i + 2 <= sizeof(big) - 1; i += 2)
        memcpy(big + i, "\xc3\xa9", 2); /* é */
    ck_assert_int_eq(kart_log(KART_LOG_INFO, NULL, "%s", big), 1);
    ck_assert_int_eq(s.rec[0].truncated, 1);
    size_t len = s.rec[0].len;
    ck_assert_uint_le(len, KART_LOG_MESSAGE_MAX);
    ck_assert_uint_eq(strlen(s.msg[0]), len);
    ck_assert_str_eq(s.msg[0] + len - 3, "...");
    /* whole characters before the marker: an even number of bytes of é */
    ck_assert_uint_eq((len - 3) % 2, 0);
    ck_assert_int_eq((unsigned char)s.msg[0][len - 4], 0xa9);
    /* exactly at the limit: not cut */
    memset(big, 'a', KART_LOG_MESSAGE_MAX);
    big[KART_LOG_MESSAGE_MAX] = '\0';
    kart_log(KART_LOG_INFO, NULL, "%s", big);
    ck_assert_int_eq(s.rec[1].truncated, 0);
    ck_assert_uint_eq(s.rec[1].len, KART_LOG_MESSAGE_MAX);
}
END_TEST

static void log_three(void)
{
    kart_log(KART_LOG_DEBUG, "x", "hidden");
    kart_log(KART_LOG_INFO, "x", "shown %d", 1);
    kart_log(KART_LOG_CRITICAL, "x", "shown %s", "too");
}

START_TEST(to_stderr_uses_pythons_format)
{
    ck_assert_int_eq(kart_log_to_stderr(KART_LOG_INFO), 0);
    char out[512];
    capture_stderr(log_three, out, sizeof(out));
    ck_assert_str_eq(out, "[INFO/MainProcess] shown 1\n[CRITICAL/MainProcess] shown too\n");
}
END_TEST

static void log_debug_line(void)
{
    kart_log(KART_LOG_DEBUG, NULL, "from the environment");
}

START_TEST(kart_debug_means_debug_to_stderr)
{
    setenv("KART_DEBUG", "1", 1);
    char out[256];
    capture_stderr(log_debug_line, out, sizeof(out));
    ck_assert_str_eq(out, "[DEBUG/MainProcess] from the environment\n");
    ck_assert_int_eq(kart_log_get_level(), KART_LOG_DEBUG);
}
END_TEST

START_TEST(kart_debug_zero_stays_silent)
{
    setenv("KART_DEBUG", "0", 1);
    ck_assert_int_eq(kart_log(KART_LOG_CRITICAL, NULL, "no"), 0);
}
END_TEST

START_TEST(a_handler_set_by_the_program_wins_over_kart_debug)
{
    setenv("KART_DEBUG", "1", 1);
    seen_lines s = {0};
    kart_log_set_handler(remember, &s, KART_LOG_ERROR, NULL, NULL);
    char out[256];
    capture_stderr(log_debug_line, out, sizeof(out));
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(kart_log_get_level(), KART_LOG_ERROR);
}
END_TEST

/* ---- threads and fork ---- */

static _Atomic long count_a, count_b;
static void count_into(const kart_log_record *r, void *arg)
{
    (void)r;
    atomic_fetch_add((_Atomic long *)arg, 1);
}

#define LOGGERS 4
#define LINES 5000
static _Atomic bool loggers_done;

static void *logger(void *arg)
{
    (void)arg;
    for (int i = 0; i < LINES; i++)
        ck_assert_int_eq(kart_log(KART_LOG_INFO, "t", "line %d", i), 1);
    return NULL;
}

START_TEST(lines_from_many_threads_reach_one_handler_each)
{
    atomic_store(&count_a, 0);
    atomic_store(&count_b, 0);
    kart_log_set_handler(count_into, &count_a, KART_LOG_DEBUG, NULL, NULL);
    pthread_t t[LOGGERS];
    for (int i = 0; i < LOGGERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, logger, NULL), 0);
    /* Swap handlers while they log: each line lands in exactly one. */
    for (int k = 0; k < 2000; k++)
        kart_log_set_handler(count_into, k % 2 ? &count_a : &count_b, KART_LOG_DEBUG, NULL, NULL);
    for (int i = 0; i < LOGGERS; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&count_a) + atomic_load(&count_b), LOGGERS * LINES);
}
END_TEST

static void *setter(void *arg)
{
    (void)arg;
    while (!atomic_load(&loggers_done))
        kart_log_set_level(KART_LOG_DEBUG);
    return NULL;
}

START_TEST(a_child_forked_while_the_handler_changes_logs)
{
    atomic_store(&count_a, 0);
    kart_log_set_handler(count_into, &count_a, KART_LOG_DEBUG, NULL, NULL);
    atomic_store(&loggers_done, false);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, setter, NULL), 0);
    for (int k = 0; k < 20; k++) {
        pid_t pid = kt_fork();
        if (pid == 0) {
            /* The setter is not in the child; a write it had in flight
             * must not leave the child waiting. */
            alarm(10);
            int ok = kart_log(KART_LOG_INFO, NULL, "child") == 1 &&
                     kart_log_set_level(KART_LOG_INFO) == 0 && atomic_load(&count_a) >= 1;
            _exit(ok ? 0 : 1);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&loggers_done, true);
    pthread_join(t, NULL);
}
END_TEST

/* ---- the library's own lines ---- */

START_TEST(a_backend_that_cannot_start_is_logged)
{
    seen_lines s = {0};
    kart_log_set_handler(remember, &s, KART_LOG_DEBUG, NULL, NULL);
    kart__fault_reset();
    /* io_uring first, then epoll: both refused, poll takes over. */
    ck_assert_int_eq(kart__fault_fail(KART__SYS_io_uring_setup, 1, KART__FAULT_ALWAYS, ENOMEM), 0);
    ck_assert_int_eq(kart__fault_fail(KART__SYS_epoll_create1, 1, 1, EMFILE), 0);
    kart_selector *sel;
    ck_assert_int_eq(kart_selector_create(&sel, NULL), 0);
    kart__fault_reset();
    ck_assert_str_eq(kart_selector_backend(sel), "poll");
    kart_selector_free(sel);
    bool epoll_seen = false;
    for (int i = 0; i < s.n; i++) {
        ck_assert_str_eq(s.module[i], "loop");
        ck_assert_int_eq(s.rec[i].level, KART_LOG_DEBUG);
        if (strstr(s.msg[i], "backend epoll unavailable: Too many open files"))
            epoll_seen = true;
    }
    ck_assert_msg(epoll_seen, "no line for epoll among %d", s.n);
}
END_TEST


/* The pool's watcher thread logs: a handler that locks. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static void remember_locked(const kart_log_record *r, void *arg)
{
    pthread_mutex_lock(&seen_lock);
    remember(r, arg);
    pthread_mutex_unlock(&seen_lock);
}

START_TEST(a_pool_worker_that_died_and_was_replaced_is_logged)
{
    seen_lines s = {0};
    kart_log_set_handler(remember_locked, &s, KART_LOG_INFO, NULL, NULL);
    kart_pool *p;
    kart_pool_options o = {.kind = KART_POOL_PROCESSES, .workers = 1};
    ck_assert_int_eq(kart_pool_create(&p, &o), 0);
    kart_pool_worker_info info;
    ck_assert_int_eq(kart_pool_worker_info_get(p, 0, &info), 0);
    ck_assert_int_eq(kill(info.pid, SIGKILL), 0);
    char want[96];
    snprintf(want, sizeof(want), "worker 0 (pid %d) killed by signal %d: replaced", (int)info.pid,
             SIGKILL);
    bool found = false;
    for (int i = 0; i < 1000 && !found; i++) {
        pthread_mutex_lock(&seen_lock);
        for (int k = 0; k < s.n; k++)
            found |= strcmp(s.msg[k], want) == 0 && strcmp(s.module[k], "pool") == 0 &&
                     s.rec[k].level == KART_LOG_WARNING;
        pthread_mutex_unlock(&seen_lock);
        usleep(5000);
    }
    ck_assert_msg(found, "no line \"%s\"", want);
    kart_pool_close(p);
    ck_assert_int_eq(kart_pool_join(p, 10000 * KT_MS), 0);
    kart_pool_free(p);
    kart_log_set_handler(NULL, NULL, KART_LOG_WARNING, NULL, NULL);
}
END_TEST

START_TEST(a_skipped_inputrc_line_is_logged)
{
    seen_lines s = {0};
    kart_log_set_handler(remember, &s, KART_LOG_WARNING, NULL, NULL);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(devnull, 0);
    kart_line *ed;
    ck_assert_int_eq(kart_line_create(&ed, devnull, devnull, NULL), 0);
    ck_assert_int_eq(kart_line_parse_and_bind(ed, "set no-such-variable on"), -EINVAL);
    ck_assert_int_eq(kart_line_parse_and_bind(ed, "set bell-style none"), 0);
    kart_line_free(ed);
    close(devnull);
    ck_assert_int_eq(s.n, 1);
    ck_assert_str_eq(s.module[0], "line");
    ck_assert_int_eq(s.rec[0].level, KART_LOG_WARNING);
    ck_assert_msg(strstr(s.msg[0], "no-such-variable") && strstr(s.msg[0], "skipped"), "%s",
                  s.msg[0]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, silent_by_default);
    tcase_add_test(tc, handler_gets_each_field);
    tcase_add_test(tc, lines_below_the_level_are_dropped);
    tcase_add_test(tc, set_handler_returns_the_previous_one);
    tcase_add_test(tc, bad_levels_and_formats_are_refused);
    tcase_add_test(tc, long_messages_are_cut_on_a_character_and_marked);
    tcase_add_test(tc, to_stderr_uses_pythons_format);
    tcase_add_test(tc, kart_debug_means_debug_to_stderr);
    tcase_add_test(tc, kart_debug_zero_stays_silent);
    tcase_add_test(tc, a_handler_set_by_the_program_wins_over_kart_debug);
    tcase_add_test(tc, lines_from_many_threads_reach_one_handler_each);
    tcase_add_test(tc, a_child_forked_while_the_handler_changes_logs);
    tcase_add_test(tc, a_backend_that_cannot_start_is_logged);
    tcase_add_test(tc, a_pool_worker_that_died_and_was_replaced_is_logged);
    tcase_add_test(tc, a_skipped_inputrc_line_is_logged);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

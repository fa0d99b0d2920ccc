/* Description: kart/process.h — what a child gets from the process that
 * started it under every start method: descriptors named in the options
 * (options.fds), the parent's sentinel and liveness
 * (kart_process_parent_sentinel / _alive), the authentication key; and a
 * fork server's daemon child dying with its caller (issue 15). */
#include "testutil.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

static const kart_context *ctx_of(int i)
{
    static const kart_start_method m[] = {KART_START_FORK, KART_START_SPAWN, KART_START_FORKSERVER};
    const kart_context *ctx;
    ck_assert_int_eq(kart_context_get(m[i], &ctx), 0);
    return ctx;
}

static int join_code(kart_process *p)
{
    int code = INT32_MIN;
    ck_assert_int_eq(kart_process_join(p, 20000 * KT_MS), 0);
    ck_assert_int_eq(kart_process_exitcode(p, &code), 1);
    return code;
}

/* What a child is told: an fd to write to, a file, a pid. */
typedef struct msg {
    int fd;
    char path[64];
} msg;

/* A new empty file, for children of a fork server (none of the
 * caller's descriptors unless passed). */
static void make_file(msg *m)
{
    snprintf(m->path, sizeof(m->path), "/tmp/kart-check-ctx-XXXXXX");
    int fd = mkstemp(m->path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

/* Waits up to timeout_ms for the file to hold something; returns it. */
static void file_text(const msg *m, char *buf, size_t size, int timeout_ms)
{
    ssize_t n = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        int fd = open(m->path, O_RDONLY);
        ck_assert_int_ge(fd, 0);
        n = read(fd, buf, size - 1);
        close(fd);
        if (n > 0)
            break;
        usleep(10000);
    }
    buf[n > 0 ? n : 0] = '\0';
}

static void append(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd >= 0) {
        ssize_t r = write(fd, text, strlen(text));
        (void)r;
        close(fd);
    }
}

/* ---- descriptors passed to the child ---- */

/* Writes "ok" to the fd it is told, which must be open in the child. */
static int write_fd(void *arg)
{
    const msg *m = arg;
    return write(m->fd, "ok", 2) == 2 ? 0 : 1;
}
KART_PROCESS_FUNCTION(write_fd)

START_TEST(fds_reach_the_child)
{
    int pfd[2];
    ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
    /* A number of its own, far from what the child opens itself. */
    int wfd = fcntl(pfd[1], F_DUPFD_CLOEXEC, 200);
    ck_assert_int_ge(wfd, 200);
    close(pfd[1]);
    msg m = {.fd = wfd};
    kart_process_options o = {.context = ctx_of(_i), .arg_size = sizeof(m), .fds = &wfd, .nfds = 1};
    kart_process *p;
    ck_assert_int_eq(kart_process_create(&p, write_fd, &m, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 0);
    kart_process_free(p);
    close(wfd); /* the caller kept its own copy: the read sees the end */
    char buf[8] = {0};
    ck_assert_int_eq(read(pfd[0], buf, sizeof(buf)), 2);
    ck_assert_str_eq(buf, "ok");
    ck_assert_int_eq(read(pfd[0], buf, sizeof(buf)), 0);
    close(pfd[0]);
}
END_TEST

START_TEST(fds_errors)
{
    kart_process *p = NULL;
    msg m = {0};
    int fds[KART_PROCESS_MAX_FDS + 1];
    for (int i = 0; i <= KART_PROCESS_MAX_FDS; i++)
        fds[i] = 1;
    kart_process_options o = {.context = ctx_of(_i), .arg_size = sizeof(m), .fds = fds};
    o.nfds = KART_PROCESS_MAX_FDS + 1;
    ck_assert_int_eq(kart_process_create(&p, write_fd, &m, &o), -EINVAL);
    o.fds = NULL;
    o.nfds = 1;
    ck_assert_int_eq(kart_process_create(&p, write_fd, &m, &o), -EINVAL);
    int bad = -1;
    o.fds = &bad;
    ck_assert_int_eq(kart_process_create(&p, write_fd, &m, &o), -EINVAL);
    int closed = dup(1);
    close(closed);
    o.fds = &closed;
    ck_assert_int_eq(kart_process_create(&p, write_fd, &m, &o), -EBADF);
    ck_assert_ptr_null(p);
    /* KART_PROCESS_MAX_FDS is allowed. */
    o.fds = fds;
    o.nfds = KART_PROCESS_MAX_FDS;
    m.fd = 1;
    ck_assert_int_eq(kart_process_create(&p, write_fd, &m, &o), 0);
    kart_process_free(p);
}
END_TEST

/* ---- the parent's sentinel and authkey ---- */

/* Reports in its file whether its parent runs, and its sentinel's state. */
static int report_parent(void *arg)
{
    const msg *m = arg;
    int fd = kart_process_parent_sentinel();
    int again = kart_process_parent_sentinel();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char text[64];
    snprintf(text, sizeof(text), "%d %d %d", kart_process_parent_alive(), fd >= 0 && fd == again,
             poll(&pfd, 1, 0));
    append(m->path, text);
    return 0;
}
KART_PROCESS_FUNCTION(report_parent)

START_TEST(parent_alive_while_it_runs)
{
    ck_assert_int_eq(kart_process_parent_sentinel(), -ESRCH);
    ck_assert_int_eq(kart_process_parent_alive(), -ESRCH);
    msg m = {0};
    make_file(&m);
    kart_process_options o = {.context = ctx_of(_i), .arg_size = sizeof(m)};
    kart_process *p;
    ck_assert_int_eq(kart_process_create(&p, report_parent, &m, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 0);
    kart_process_free(p);
    char buf[64];
    file_text(&m, buf, sizeof(buf), 0);
    unlink(m.path);
    ck_assert_str_eq(buf, "1 1 0");
}
END_TEST

/* Waits for its parent's end on the sentinel, then says so. */
static int await_parent(void *arg)
{
    const msg *m = arg;
    int fd = kart_process_parent_sentinel();
    if (fd < 0)
        return 1;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, 10000);
    char text[32];
    snprintf(text, sizeof(text), "gone %d %d", n, kart_process_parent_alive());
    append(m->path, text);
    return 0;
}
KART_PROCESS_FUNCTION(await_parent)

/* A parent (a plain fork of the test) starts the child, then ends: the
 * child's sentinel becomes readable and is_alive turns 0. */
START_TEST(parent_sentinel_readable_when_it_dies)
{
    msg m = {0};
    make_file(&m);
    pid_t mid = fork();
    ck_assert_int_ge(mid, 0);
    if (mid == 0) {
        kart_process_options o = {.context = ctx_of(_i), .arg_size = sizeof(m)};
        kart_process *p;
        if (kart_process_create(&p, await_parent, &m, &o) != 0 || kart_process_start(p) != 0)
            _exit(1);
        usleep(200000); /* the child is waiting on its sentinel by then */
        _exit(0);
    }
    int status;
    kt_wait_child(mid, &status);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char buf[64];
    file_text(&m, buf, sizeof(buf), 5000);
    unlink(m.path);
    ck_assert_str_eq(buf, "gone 1 0");
}
END_TEST

static int report_key(void *arg)
{
    const msg *m = arg;
    unsigned char key[KART_PROCESS_AUTHKEY_MAX];
    size_t len = sizeof(key);
    if (kart_process_authkey(key, &len) != 0)
        return 1;
    char text[2 * KART_PROCESS_AUTHKEY_MAX + 1];
    for (size_t i = 0; i < len; i++)
        snprintf(text + 2 * i, 3, "%02x", key[i]);
    text[2 * len] = '\0';
    append(m->path, text);
    return 0;
}
KART_PROCESS_FUNCTION(report_key)

static void child_key(int method, char *buf, size_t size)
{
    msg m = {0};
    make_file(&m);
    kart_process_options o = {.context = ctx_of(method), .arg_size = sizeof(m)};
    kart_process *p;
    ck_assert_int_eq(kart_process_create(&p, report_key, &m, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 0);
    kart_process_free(p);
    file_text(&m, buf, size, 0);
    unlink(m.path);
}

static void hex(const unsigned char *k, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", k[i]);
    out[2 * len] = '\0';
}

START_TEST(authkey_inherited)
{
    unsigned char key[64];
    size_t len = sizeof(key);
    ck_assert_int_eq(kart_process_authkey(key, &len), 0);
    ck_assert_uint_eq(len, KART_PROCESS_AUTHKEY_SIZE);
    static const unsigned char zero[KART_PROCESS_AUTHKEY_SIZE];
    ck_assert(memcmp(key, zero, len) != 0); /* random, not nothing */
    char want[2 * KART_PROCESS_AUTHKEY_MAX + 1], got[2 * KART_PROCESS_AUTHKEY_MAX + 1];
    hex(key, len, want);
    child_key(_i, got, sizeof(got));
    ck_assert_str_eq(got, want);
    /* Set: children started afterwards get the new key. */
    unsigned char mine[KART_PROCESS_AUTHKEY_MAX];
    for (size_t i = 0; i < sizeof(mine); i++)
        mine[i] = (unsigned char)(i * 7 + 1);
    ck_assert_int_eq(kart_process_set_authkey(mine, sizeof(mine)), 0);
    hex(mine, sizeof(mine), want);
    child_key(_i, got, sizeof(got));
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(kart_process_set_authkey(key, len), 0);
}
END_TEST

START_TEST(authkey_errors)
{
    unsigned char key[KART_PROCESS_AUTHKEY_MAX + 1] = {1};
    size_t len = 4;
    ck_assert_int_eq(kart_process_authkey(key, &len), -ENOBUFS);
    ck_assert_uint_eq(len, KART_PROCESS_AUTHKEY_SIZE);
    len = 0;
    ck_assert_int_eq(kart_process_authkey(NULL, &len), -ENOBUFS);
    ck_assert_uint_eq(len, KART_PROCESS_AUTHKEY_SIZE);
    len = 1;
    ck_assert_int_eq(kart_process_authkey(NULL, &len), -EINVAL);
    ck_assert_int_eq(kart_process_authkey(key, NULL), -EINVAL);
    unsigned char before[KART_PROCESS_AUTHKEY_SIZE], after[KART_PROCESS_AUTHKEY_SIZE];
    len = sizeof(before);
    ck_assert_int_eq(kart_process_authkey(before, &len), 0);
    ck_assert_int_eq(kart_process_set_authkey(NULL, 4), -EINVAL);
    ck_assert_int_eq(kart_process_set_authkey(key, 0), -EINVAL);
    ck_assert_int_eq(kart_process_set_authkey(key, KART_PROCESS_AUTHKEY_MAX + 1), -EINVAL);
    len = sizeof(after);
    ck_assert_int_eq(kart_process_authkey(after, &len), 0);
    ck_assert_mem_eq(before, after, sizeof(before));
}
END_TEST

/* ---- a fork server's daemon child dies with its caller ---- */

__attribute__((noreturn)) static int block(void *arg)
{
    (void)arg;
    for (;;)
        pause();
}
KART_PROCESS_FUNCTION(block)

static bool gone_within(pid_t pid, int ms)
{
    for (int waited = 0; waited <= ms; waited += 5) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return true;
        usleep(5000);
    }
    return false;
}

/* The caller (a plain fork of the test) starts a daemon and a non-daemon
 * child through the fork server, reports their pids, and is SIGKILLed:
 * the daemon is gone within 1 s (the fork server reaps it, so its pid
 * disappears), the other runs on, as in Python. _i 0: the server was
 * started by the test before the fork (shared with the caller); 1: the
 * caller starts its own. */
START_TEST(forkserver_daemon_dies_with_its_caller)
{
    const kart_context *fs = ctx_of(2);
    if (_i == 0) {
        kart_process *p;
        kart_process_options o = {.context = fs};
        ck_assert_int_eq(kart_process_create(&p, block, NULL, &o), 0);
        ck_assert_int_eq(kart_process_start(p), 0);
        ck_assert_int_eq(kart_process_kill(p), 0);
        ck_assert_int_eq(kart_process_join(p, -1), 0);
        kart_process_free(p);
    }
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t caller = fork();
    ck_assert_int_ge(caller, 0);
    if (caller == 0) {
        close(pfd[0]);
        kart_process *d, *n;
        kart_process_options od = {.context = fs, .daemon = true}, on = {.context = fs};
        if (kart_process_create(&d, block, NULL, &od) || kart_process_start(d) ||
            kart_process_create(&n, block, NULL, &on) || kart_process_start(n))
            _exit(1);
        pid_t pids[2] = {kart_process_pid(d), kart_process_pid(n)};
        if (write(pfd[1], pids, sizeof(pids)) != sizeof(pids))
            _exit(1);
        for (;;)
            pause();
    }
    close(pfd[1]);
    pid_t pids[2];
    ck_assert_int_eq(read(pfd[0], pids, sizeof(pids)), sizeof(pids));
    close(pfd[0]);
    ck_assert_int_eq(kill(pids[0], 0), 0);
    ck_assert_int_eq(kill(caller, SIGKILL), 0);
    kt_wait_child(caller, NULL);
    int64_t t0 = kart_now_ns();
    ck_assert_msg(gone_within(pids[0], 1000), "the daemon child outlived its caller");
    ck_assert_int_lt(kart_now_ns() - t0, 1000 * KT_MS);
    usleep(50000);
    ck_assert_int_eq(kill(pids[1], 0), 0); /* not a daemon: it runs on */
    ck_assert_int_eq(kill(pids[1], SIGKILL), 0);
    ck_assert(gone_within(pids[1], 5000));
}
END_TEST

static Suite *ctx_suite(void)
{
    Suite *s = suite_create("process-ctx");
    TCase *tc = tcase_create("ctx");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, fds_reach_the_child, 0, 3);
    tcase_add_loop_test(tc, fds_errors, 0, 3);
    tcase_add_loop_test(tc, parent_alive_while_it_runs, 0, 3);
    tcase_add_loop_test(tc, parent_sentinel_readable_when_it_dies, 0, 3);
    tcase_add_loop_test(tc, authkey_inherited, 0, 3);
    tcase_add_test(tc, authkey_errors);
    tcase_add_loop_test(tc, forkserver_daemon_dies_with_its_caller, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kt_run(ctx_suite());
}

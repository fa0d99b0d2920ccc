/* Description: kart connections against the real python3 (3.11 here: the
 * legacy handshake on its side): Python's multiprocessing.connection
 * Client with an authkey connecting to a kart Listener (blocking, and
 * accepting on a loop), a kart Client connecting to a Python Listener,
 * Python's Connection over a kart Pipe's fd, and fds passed both ways
 * (kart_conn_send_handle / Python's recv_handle and back); messages empty,
 * small and over 16 KiB; right and wrong keys; unix sockets and TCP. The
 * Python side is tests/py/conn_peer.py. */
#include "testutil.h"

#include <kart/loop.h>

#include <signal.h>
#include <sys/wait.h>

#define PEER "tests/py/conn_peer.py"
static const char KEY[] = "interop key";
#define KEY_HEX "696e7465726f70206b6579"

/* Starts python3 PEER args... with stdout on a pipe (*out, when not NULL). */
static pid_t py_start(const char *const *args, FILE **out)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        const char *argv[8] = {"python3", PEER};
        int n = 2;
        for (; args[n - 2] && n < 7; n++)
            argv[n] = args[n - 2];
        argv[n] = NULL;
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    if (out)
        *out = fdopen(p[0], "r");
    else
        close(p[0]);
    return pid;
}

static int py_wait(pid_t pid)
{
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static const size_t sizes[] = {0, 5, 16384, 16385, 100000};

static void exchange(kart_conn *c)
{
    static uint8_t buf[100000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        ck_assert_int_eq(kart_conn_send_bytes(c, buf, sizes[i]), 0);
        void *m;
        size_t n;
        ck_assert_int_eq(kart_conn_recv_bytes(c, &m, &n, sizeof(buf)), 0);
        ck_assert_uint_eq(n, sizes[i]);
        ck_assert_mem_eq(m, buf, n);
        free(m);
    }
}

/* Python's Client (3.11: answers our sha256 challenge with raw MD5, then
 * sends a legacy challenge) → kart Listener. */
START_TEST(python_client_to_kart_listener)
{
    char unix_path[64], abstract[64];
    snprintf(unix_path, sizeof(unix_path), "/tmp/kart-interop-%d.sock", (int)getpid());
    snprintf(abstract, sizeof(abstract), "@kart-interop-%d", (int)getpid());
    unlink(unix_path);
    const char *addrs[] = {"127.0.0.1:0", unix_path, abstract};
    kart_listener_options o = {.auth = {.authkey = KEY, .authkey_len = strlen(KEY)}};
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, addrs[_i], &o), 0);
    char addr[128];
    ck_assert_int_gt(kart_listener_address(l, addr, sizeof(addr)), 0);
    /* Right key: Python sends its messages, kart echoes them. */
    pid_t pid = py_start((const char *[]){"connect", addr, KEY_HEX, NULL}, NULL);
    kart_conn *c;
    ck_assert_int_eq(kart_listener_accept(l, &c, 30000 * KT_MS), 0);
    for (;;) {
        void *m;
        size_t n;
        int r = kart_conn_recv_bytes(c, &m, &n, 1 << 20);
        if (r == KART_EEOF)
            break;
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(kart_conn_send_bytes(c, m, n), 0);
        free(m);
    }
    kart_conn_close(c);
    ck_assert_int_eq(py_wait(pid), 0);
    /* Wrong key: an AuthenticationError there, KART_EAUTH here. */
    pid = py_start((const char *[]){"connect", addr, "00", NULL}, NULL);
    ck_assert_int_eq(kart_listener_accept(l, &c, 30000 * KT_MS), KART_EAUTH);
    ck_assert_int_eq(py_wait(pid), 3);
    kart_listener_free(l);
}
END_TEST

/* kart Client → Python's Listener (3.11: a legacy challenge to us). */
START_TEST(kart_client_to_python_listener)
{
    char unix_path[64], abstract[64];
    snprintf(unix_path, sizeof(unix_path), "/tmp/kart-interop-%d.sock", (int)getpid());
    snprintf(abstract, sizeof(abstract), "@kart-interop-%d", (int)getpid());
    unlink(unix_path);
    const char *addrs[] = {"127.0.0.1:0", unix_path, abstract};
    for (int wrong = 0; wrong < 2; wrong++) {
        FILE *out;
        pid_t pid = py_start((const char *[]){"listen", addrs[_i], KEY_HEX, NULL}, &out);
        char addr[128];
        ck_assert_ptr_nonnull(fgets(addr, sizeof(addr), out));
        addr[strcspn(addr, "\n")] = 0;
        fclose(out);
        kart_auth a = {.authkey = wrong ? "bad" : KEY, .authkey_len = wrong ? 3 : strlen(KEY)};
        kart_conn *c;
        if (wrong) {
            ck_assert_int_eq(kart_conn_connect(&c, addr, &a), KART_EAUTH);
            ck_assert_int_eq(py_wait(pid), 3);
            continue;
        }
        ck_assert_int_eq(kart_conn_connect(&c, addr, &a), 0);
        exchange(c);
        kart_conn_close(c);
        ck_assert_int_eq(py_wait(pid), 0);
    }
}
END_TEST

/* kart's modern form cannot be checked against 3.11, but a kart Client
 * set to require the modern form must refuse a 3.11 listener's raw MD5. */
START_TEST(require_modern_refuses_python_311)
{
    FILE *out;
    pid_t pid = py_start((const char *[]){"listen", "127.0.0.1:0", KEY_HEX, NULL}, &out);
    char addr[128];
    ck_assert_ptr_nonnull(fgets(addr, sizeof(addr), out));
    addr[strcspn(addr, "\n")] = 0;
    fclose(out);
    kart_auth a = {.authkey = KEY, .authkey_len = strlen(KEY), .require_modern = 1};
    kart_conn *c;
    ck_assert_int_eq(kart_conn_connect(&c, addr, &a), KART_EAUTH);
    ck_assert_int_eq(py_wait(pid), 3);
}
END_TEST

/* Python's Connection over the other end of a kart Pipe. */
START_TEST(python_connection_over_kart_pipe)
{
    int sv[2];
    /* Only the Python end goes to the child: the kart end must close. */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(fcntl(sv[1], F_SETFD, 0), 0);
    char fd[16];
    snprintf(fd, sizeof(fd), "%d", sv[1]);
    pid_t pid = py_start((const char *[]){"fd", fd, NULL}, NULL);
    close(sv[1]);
    kart_conn *c;
    ck_assert_int_eq(kart_conn_from_fd(&c, sv[0], KART_CONN_READABLE | KART_CONN_WRITABLE), 0);
    exchange(c);
    kart_conn_close(c);
    ck_assert_int_eq(py_wait(pid), 0);
}
END_TEST

typedef struct loop_accepted {
    kart_loop *loop;
    int status;
    kart_conn *c;
} loop_accepted;

static void on_loop_accept(kart_listener *l, int status, kart_conn *c, void *arg)
{
    (void)l;
    loop_accepted *a = arg;
    a->status = status;
    a->c = c;
    kart_loop_stop(a->loop);
}

/* Python's Client → a kart Listener accepting on a loop: the handshake
 * the loop drives speaks Python's (3.11's legacy answers) too. */
START_TEST(python_client_to_kart_loop_listener)
{
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    kart_listener_options o = {.auth = {.authkey = KEY, .authkey_len = strlen(KEY)}};
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", &o), 0);
    char addr[128];
    ck_assert_int_gt(kart_listener_address(l, addr, sizeof(addr)), 0);
    loop_accepted a = {.loop = loop, .status = 1};
    ck_assert_int_eq(kart_listener_accept_start(l, loop, on_loop_accept, &a), 0);
    pid_t pid = py_start((const char *[]){"connect", addr, KEY_HEX, NULL}, NULL);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(a.status, 0);
    for (;;) {
        void *m;
        size_t n;
        int r = kart_conn_recv_bytes(a.c, &m, &n, 1 << 20);
        if (r == KART_EEOF)
            break;
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(kart_conn_send_bytes(a.c, m, n), 0);
        free(m);
    }
    kart_conn_close(a.c);
    ck_assert_int_eq(py_wait(pid), 0);
    pid = py_start((const char *[]){"connect", addr, "00", NULL}, NULL);
    a.status = 1;
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(a.status, KART_EAUTH);
    ck_assert_ptr_null(a.c);
    ck_assert_int_eq(py_wait(pid), 3);
    kart_listener_free(l);
    kart_loop_free(loop);
}
END_TEST

/* kart_conn_send_handle → Python's recv_handle, and Python's send_handle
 * → kart_conn_recv_handle, between messages (read-ahead included). */
START_TEST(handles_to_python_and_back)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(fcntl(sv[1], F_SETFD, 0), 0);
    char fd[16];
    snprintf(fd, sizeof(fd), "%d", sv[1]);
    pid_t pid = py_start((const char *[]){"handles", fd, NULL}, NULL);
    close(sv[1]);
    kart_conn *c;
    ck_assert_int_eq(kart_conn_from_fd(&c, sv[0], KART_CONN_READABLE | KART_CONN_WRITABLE), 0);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    ck_assert_int_eq(kart_conn_send_bytes(c, "before", 6), 0);
    ck_assert_int_eq(kart_conn_send_handle(c, p[1]), 0);
    int back;
    ck_assert_int_eq(kart_conn_recv_handle(c, &back), 0);
    char buf[8];
    ck_assert_int_eq(read(p[0], buf, 2), 2); /* Python wrote through it */
    ck_assert_mem_eq(buf, "py", 2);
    ck_assert_int_eq(write(back, "ok", 2), 2); /* and it came back whole */
    ck_assert_int_eq(read(p[0], buf, 2), 2);
    ck_assert_mem_eq(buf, "ok", 2);
    close(back);
    ck_assert_int_eq(kart_conn_send_bytes(c, "after", 5), 0);
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes_into(c, buf, sizeof(buf), &n), 0);
    ck_assert_mem_eq(buf, "after", 5);
    kart_conn_close(c);
    close(p[0]);
    close(p[1]);
    ck_assert_int_eq(py_wait(pid), 0);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("conn_interop");
    TCase *tc = tcase_create("python");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, python_client_to_kart_listener, 0, 3);
    tcase_add_loop_test(tc, kart_client_to_python_listener, 0, 3);
    tcase_add_test(tc, require_modern_refuses_python_311);
    tcase_add_test(tc, python_connection_over_kart_pipe);
    tcase_add_test(tc, python_client_to_kart_loop_listener);
    tcase_add_test(tc, handles_to_python_and_back);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

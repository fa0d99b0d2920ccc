/* Description: the admin console of the example servers
 * (examples/console.h) and its client, build/kart-console, run as an
 * operator runs them: echo-server (and http-server) started with
 * --console on a unix path, an abstract name and TCP; the real client
 * under a pty (the operator's terminal) or with pipes (a script). The
 * commands' outputs; completion; two operators at once with their own
 * history files; one client killed with SIGKILL in the middle of a line
 * while the other goes on and the echo traffic too; a wrong authkey
 * refused with the server unharmed; a window size change reaching the
 * server's editor; `watch stats` printing above a half-typed line that
 * survives; the terminal restored when the server stops and on SIGTERM;
 * no descriptor leaked over 20 sessions; the wire abused directly (a bad
 * hello, a frame cut short); the command lines' errors. */
#include "testutil.h"
#include "kt_net.h"

#include <kart/conn.h>

#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

/* ---- files and programs ---- */

static char dir[64]; /* a fresh directory per test */
static char keyfile[128], badkey[128], histdir[128];

static const char *build_path(const char *rel)
{
    static char path[2][PATH_MAX + 64];
    static int which;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    ck_assert_int_gt(n, 0);
    self[n] = 0;
    /* build[/san-...]/tests/check_console -> build[/san-...]/REL */
    *strrchr(self, '/') = 0;
    *strrchr(self, '/') = 0;
    char *p = path[which ^= 1];
    snprintf(p, sizeof(path[0]), "%s/%s", self, rel);
    ck_assert_msg(access(p, X_OK) == 0, "%s is not built", p);
    return p;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ck_assert_int_ge(fd, 0);
    kt_write(fd, text);
    close(fd);
    chmod(path, mode);
}

static char *read_file(const char *path)
{
    static char buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    return buf;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kart-console-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(keyfile, sizeof(keyfile), "%s/key", dir);
    snprintf(badkey, sizeof(badkey), "%s/badkey", dir);
    snprintf(histdir, sizeof(histdir), "%s/hist", dir);
    write_file(keyfile, "sesame\n", 0600);
    write_file(badkey, "not-sesame\n", 0600);
    ck_assert_int_eq(mkdir(histdir, 0700), 0);
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* Waits (5 s at most) for pid; returns its raw status. */
#define reap(pid) reap_at(pid, __LINE__)
static int reap_at(pid_t pid, int line)
{
    int status = 0;
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ck_abort_msg("process %d did not end within 5 s (line %d)", (int)pid, line);
    return -1;
}

/* ---- the server ---- */

typedef struct server {
    pid_t pid;
    int port;
    char console[PATH_MAX]; /* the address it says it listens on */
} server;

/* Starts an example with --console addr; extra: more arguments (NULL
 * ended). Returns the exit status when it exits before it is ready
 * (s->pid 0 then), else -1. */
static int start_server(server *s, const char *name, const char *addr, const char *const *extra)
{
    const char *path = build_path(name[0] == 'e' ? "examples/echo-server" : "examples/http-server");
    int out[2], err[2];
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        const char *argv[32] = {name, "--port", "0", "--console", addr};
        int n = 5;
        for (int i = 0; extra && extra[i]; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    char text[1024] = "";
    size_t n = 0;
    while (n < sizeof(text) - 1 && !strstr(text, "listening on port")) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        ck_assert_msg(poll(&pfd, 1, 10000) == 1, "%s printed nothing in 10 s", name);
        ssize_t k = read(out[0], text + n, sizeof(text) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        text[n] = 0;
    }
    text[n] = 0;
    close(out[0]);
    close(err[0]);
    if (!strstr(text, "listening on port")) {
        int status = reap(pid);
        s->pid = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    const char *c = strstr(text, "console on ");
    ck_assert_msg(c != NULL, "no console line: %s", text);
    ck_assert_int_eq(sscanf(c, "console on %4095s", s->console), 1);
    ck_assert_int_eq(sscanf(strstr(text, "listening on port"), "listening on port %d", &s->port),
                     1);
    s->pid = pid;
    return -1;
}

static void stop_server(server *s)
{
    ck_assert_int_eq(kill(s->pid, SIGTERM), 0);
    int status = reap(s->pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the server ended with 0x%x",
                  status);
}

static void start_echo(server *s, const char *addr)
{
    const char *extra[] = {"--console-authkey-file", keyfile, "--console-history", histdir, NULL};
    ck_assert_int_eq(start_server(s, "echo-server", addr, extra), -1);
}

static void unix_addr(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/console.sock", dir);
}

/* Echoes a few bytes through the server's TCP port. */
static void check_echo(const server *s)
{
    int fd = kt_dial_loopback(s->port, 5);
    ck_assert_int_eq(send(fd, "ping", 4, MSG_NOSIGNAL), 4);
    char b[8];
    size_t got = 0;
    while (got < 4) {
        ssize_t k = recv(fd, b + got, 4 - got, 0);
        ck_assert_int_gt(k, 0);
        got += (size_t)k;
    }
    ck_assert_int_eq(memcmp(b, "ping", 4), 0);
    close(fd);
}

/* ---- the client with pipes ---- */

typedef struct result {
    int status; /* raw wait status */
    char out[16384], err[2048];
} result;

static void drain_into(int fd, char *buf, size_t cap, size_t *n)
{
    ssize_t k = read(fd, buf + *n, cap - 1 - *n);
    if (k > 0)
        *n += (size_t)k;
    buf[*n] = 0;
}

/* Runs kart-console with input on its stdin (a pipe); extra arguments
 * after the address. */
static void run_client(result *r, const char *addr, const char *key, const char *name,
                       const char *input)
{
    const char *path = build_path("kart-console");
    int in[2], out[2], err[2];
    ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        execl(path, "kart-console", addr, "--authkey-file", key, "--name", name, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    kt_write(in[1], input);
    close(in[1]);
    size_t no = 0, ne = 0;
    r->out[0] = r->err[0] = 0;
    for (int open = 2; open > 0;) {
        struct pollfd p[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
        ck_assert_msg(poll(p, 2, 10000) > 0, "kart-console said nothing for 10 s: %s", r->out);
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            size_t before = i ? ne : no;
            if (i)
                drain_into(err[0], r->err, sizeof(r->err), &ne);
            else
                drain_into(out[0], r->out, sizeof(r->out), &no);
            if ((i ? ne : no) == before) {
                close(i ? err[0] : out[0]);
                if (i)
                    err[0] = -1;
                else
                    out[0] = -1;
                open--;
            }
        }
        if (out[0] < 0 && err[0] < 0)
            break;
        if (out[0] < 0 || err[0] < 0) {
            /* poll ignores negative fds: keep going on the other one */
        }
    }
    r->status = reap(pid);
}

static int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- the client under a pty ---- */

typedef struct term {
    pid_t pid;
    int m, s; /* master; the slave kept open to read its termios */
    char buf[65536];
    size_t n;    /* bytes read so far */
    size_t mark; /* expect() searches from here */
} term;

static void term_open(term *t, const char *addr, const char *key, const char *name,
                      unsigned short cols, unsigned short rows)
{
    const char *path = build_path("kart-console");
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    ck_assert_int_eq(openpty(&t->m, &t->s, NULL, NULL, &ws), 0);
    fcntl(t->m, F_SETFD, FD_CLOEXEC);
    t->n = t->mark = 0;
    t->buf[0] = 0;
    t->pid = kt_fork();
    if (t->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setsid();
        ioctl(t->s, TIOCSCTTY, 0); /* SIGWINCH comes to the session */
        dup2(t->s, 0);
        dup2(t->s, 1);
        dup2(t->s, 2);
        setenv("TERM", "xterm", 1);
        execl(path, "kart-console", addr, "--authkey-file", key, "--name", name, (char *)NULL);
        _exit(127);
    }
}

static void term_type(term *t, const char *s)
{
    kt_write(t->m, s);
}

/* Reads what the pty shows until text appears after the mark (10 s at
 * most); the mark moves past it. */
static void expect(term *t, const char *text)
{
    for (int waited = 0;;) {
        char *at = strstr(t->buf + t->mark, text);
        if (at) {
            t->mark = (size_t)(at - t->buf) + strlen(text);
            return;
        }
        struct pollfd p = {.fd = t->m, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r <= 0) {
            ck_assert_msg((waited += 100) < 10000, "'%s' not shown; the pty shows:\n%s", text,
                          t->buf + t->mark);
            continue;
        }
        ssize_t k = read(t->m, t->buf + t->n, sizeof(t->buf) - 1 - t->n);
        ck_assert_msg(k > 0, "the pty ended before '%s'; it showed:\n%s", text, t->buf + t->mark);
        t->n += (size_t)k;
        t->buf[t->n] = 0;
    }
}

/* Reads what comes for ms milliseconds. */
static void soak(term *t, int ms)
{
    for (int waited = 0; waited < ms; waited += 50) {
        struct pollfd p = {.fd = t->m, .events = POLLIN};
        if (poll(&p, 1, 50) == 1) {
            ssize_t k = read(t->m, t->buf + t->n, sizeof(t->buf) - 1 - t->n);
            if (k <= 0)
                return;
            t->n += (size_t)k;
            t->buf[t->n] = 0;
        }
    }
}

/* Whether text was shown between from and the mark. */
static int seen_since(const term *t, size_t from, const char *text)
{
    size_t len = strlen(text);
    for (size_t i = from; i + len <= t->mark; i++)
        if (memcmp(t->buf + i, text, len) == 0)
            return 1;
    return 0;
}

static void term_close(term *t)
{
    close(t->m);
    close(t->s);
}

static int count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- the cases ---- */

START_TEST(commands)
{
    server s;
    char addr[PATH_MAX];
    unix_addr(addr, sizeof(addr));
    start_echo(&s, addr);
    ck_assert_str_eq(s.console, addr);
    result r;
    run_client(&r, addr, keyfile, "alice",
               "help\nstats\nconns\nbackend\nloglevel\nloglevel info\nloglevel loud\n"
               "help watch\nbogus\nquit\nstats\n");
    ck_assert_msg(exit_code(r.status) == 0, "status %d: %s", exit_code(r.status), r.err);
    const char *o = r.out;
    ck_assert_ptr_nonnull(strstr(o, "echo-server admin console, session #1"));
    ck_assert_ptr_nonnull(strstr(o, "  loglevel [LEVEL]    show or set kart's log level"));
    ck_assert_ptr_nonnull(strstr(o, "  quit "));
    ck_assert_ptr_nonnull(strstr(o, "connections: 0 open, 0 accepted"));
    ck_assert_ptr_nonnull(strstr(o, "consoles: 1 open"));
    ck_assert_ptr_nonnull(strstr(o, "ring enters"));
    ck_assert_ptr_nonnull(strstr(o, "KiB resident"));
    ck_assert_ptr_nonnull(strstr(o, "worker 0 (cpu "));
    ck_assert_ptr_nonnull(strstr(o, "console #1 alice from pid "));
    ck_assert_ptr_nonnull(strstr(o, "80x24"));
    ck_assert_ptr_nonnull(strstr(o, "(you)"));
    ck_assert_ptr_nonnull(strstr(o, "completions), 1 loop\n"));
    ck_assert_ptr_nonnull(strstr(o, "log level WARNING"));
    ck_assert_ptr_nonnull(strstr(o, "log level INFO"));
    ck_assert_ptr_nonnull(strstr(o, "loglevel: unknown level 'loud'"));
    ck_assert_ptr_nonnull(strstr(o, "  watch    stats|off"));
    ck_assert_ptr_nonnull(strstr(o, "bogus: no such command"));
    /* quit ended the session: the stats after it never ran */
    ck_assert_ptr_eq(strstr(strstr(o, "> quit"), "uptime"), NULL);
    /* an echo connection shows in the counters */
    check_echo(&s);
    run_client(&r, addr, keyfile, "alice", "stats\n");
    ck_assert_int_eq(exit_code(r.status), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "connections: 0 open, 1 accepted"));
    /* the history file holds alice's commands, mode 0600, not "quit"'s
     * successors */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/alice.history", histdir);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    const char *h = read_file(path);
    ck_assert_msg(strstr(h, "help\nstats\nconns\nbackend\nloglevel\nloglevel info\n") != NULL, "%s",
                  h);
    ck_assert_msg(strstr(h, "quit\nstats\n") != NULL, "%s", h);
    stop_server(&s);
    ck_assert_int_eq(access(addr, F_OK), -1); /* the socket path is gone */
}
END_TEST

/* The http server embeds the same console, here on an abstract name. */
START_TEST(http_abstract)
{
    server s;
    char addr[64];
    snprintf(addr, sizeof(addr), "@kart-console-test-%d", (int)getpid());
    const char *extra[] = {"--console-authkey-file", keyfile, NULL};
    ck_assert_int_eq(start_server(&s, "http-server", addr, extra), -1);
    ck_assert_str_eq(s.console, addr);
    result r;
    run_client(&r, addr, keyfile, "ops", "backend\nstats\n");
    ck_assert_msg(exit_code(r.status) == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "http-server admin console"));
    ck_assert_ptr_nonnull(strstr(r.out, "uptime "));
    ck_assert_ptr_nonnull(strstr(r.out, "ops@http-server> "));
    stop_server(&s);
}
END_TEST

/* TCP, with a port the system picks, on each readiness backend (the
 * other cases run kart's choice, io_uring where the kernel has it). */
START_TEST(tcp)
{
    static const char *const backends[] = {"epoll", "poll", "select"};
    server s;
    const char *extra[] = {"--console-authkey-file", keyfile, "--backend", backends[_i], NULL};
    ck_assert_int_eq(start_server(&s, "echo-server", "127.0.0.1:0", extra), -1);
    ck_assert_ptr_nonnull(strstr(s.console, "127.0.0.1:"));
    ck_assert_int_gt(atoi(strchr(s.console, ':') + 1), 0);
    result r;
    run_client(&r, s.console, keyfile, "tcpop", "conns\nbackend\n");
    ck_assert_msg(exit_code(r.status) == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "console #1 tcpop from 127.0.0.1:"));
    char want[64];
    snprintf(want, sizeof(want), "%s (emulated completions), 1 loop", backends[_i]);
    ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
    check_echo(&s);
    stop_server(&s);
}
END_TEST

START_TEST(wrong_authkey)
{
    server s;
    char addr[PATH_MAX];
    unix_addr(addr, sizeof(addr));
    start_echo(&s, addr);
    result r;
    run_client(&r, addr, badkey, "mallory", "loglevel debug\n");
    ck_assert_int_eq(exit_code(r.status), 1);
    ck_assert_msg(strstr(r.err, "the server refused the authkey") != NULL, "%s", r.err);
    ck_assert_str_eq(r.out, "");
    /* unharmed: the right key gets in, the level was not changed */
    run_client(&r, addr, keyfile, "alice", "loglevel\nconns\n");
    ck_assert_int_eq(exit_code(r.status), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "log level WARNING"));
    ck_assert_ptr_nonnull(strstr(r.out, "console #1 alice"));
    check_echo(&s);
    stop_server(&s);
}
END_TEST

/* Two operators at once, each with a terminal; one killed mid-line. */
START_TEST(two_operators)
{
    server s;
    char addr[PATH_MAX];
    unix_addr(addr, sizeof(addr));
    start_echo(&s, addr);
    term a, b;
    term_open(&a, addr, keyfile, "alice", 80, 24);
    term_open(&b, addr, keyfile, "bob", 80, 24);
    expect(&a, "alice@echo-server> ");
    expect(&b, "bob@echo-server> ");
    term_type(&a, "backend\r");
    expect(&a, "completions), 1 loop");
    term_type(&b, "stats\r");
    expect(&b, "consoles: 2 open");
    /* completion: a command, then its argument */
    term_type(&b, "logl\t");
    expect(&b, "loglevel ");
    term_type(&b, "cr\t\r");
    expect(&b, "log level CRITICAL");
    term_type(&b, "loglevel warning\r");
    expect(&b, "log level WARNING");
    /* alice types half a command that would change the level, and dies */
    term_type(&a, "loglevel deb");
    expect(&a, "loglevel deb");
    kill(a.pid, SIGKILL);
    ck_assert_int_eq(exit_code(reap(a.pid)), 128 + SIGKILL);
    term_close(&a);
    /* bob goes on; alice's session is gone; her half line never ran */
    for (int i = 0;; i++) {
        size_t from = b.mark;
        term_type(&b, "conns\r");
        expect(&b, "(you)");
        if (!seen_since(&b, from, "alice"))
            break;
        ck_assert_msg(i < 100, "alice's session stays");
        usleep(20000);
    }
    term_type(&b, "loglevel\r");
    expect(&b, "log level WARNING");
    check_echo(&s);
    term_type(&b, "quit\r");
    ck_assert_int_eq(exit_code(reap(b.pid)), 0);
    term_close(&b);
    /* their histories: bob's file has his, alice's what she entered */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/bob.history", histdir);
    const char *h = read_file(path);
    ck_assert_ptr_nonnull(h);
    ck_assert_msg(strstr(h, "stats\nloglevel critical \nloglevel warning\n") != NULL, "%s", h);
    ck_assert_ptr_eq(strstr(h, "backend"), NULL);
    snprintf(path, sizeof(path), "%s/alice.history", histdir);
    h = read_file(path);
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(h, "backend\n");
    /* a new session of bob's reads his history: up-arrow recalls it */
    term_open(&b, addr, keyfile, "bob", 80, 24);
    expect(&b, "bob@echo-server> ");
    term_type(&b, "\033[A");
    expect(&b, "quit");
    term_type(&b, "\025help backend\r"); /* C-u kills the recalled line */
    expect(&b, "the loops' backend");
    term_type(&b, "\004"); /* C-d on an empty line */
    ck_assert_int_eq(exit_code(reap(b.pid)), 0);
    term_close(&b);
    stop_server(&s);
}
END_TEST

START_TEST(window_size)
{
    server s;
    char addr[PATH_MAX];
    unix_addr(addr, sizeof(addr));
    start_echo(&s, addr);
    term t;
    term_open(&t, addr, keyfile, "win", 100, 30);
    expect(&t, "win@echo-server> ");
    term_type(&t, "conns\r");
    expect(&t, "100x30,");
    /* a long line at 100 columns stays on one row: going to its start
     * (C-a) moves no row up */
    term_type(&t, "help xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    expect(&t, "xxxxxxxxxx");
    soak(&t, 200);
    t.mark = t.n;
    term_type(&t, "\001");
    soak(&t, 300);
    ck_assert_msg(strstr(t.buf + t.mark, "\033[1A") == NULL &&
                      strstr(t.buf + t.mark, "\033[A") == NULL,
                  "a row up at 100 columns: %s", t.buf + t.mark);
    term_type(&t, "\013"); /* C-k: the line is empty again */
    struct winsize ws = {.ws_row = 12, .ws_col = 30};
    ck_assert_int_eq(ioctl(t.m, TIOCSWINSZ, &ws), 0); /* SIGWINCH to the client */
    for (int i = 0;; i++) {
        size_t from = t.mark;
        term_type(&t, "conns\r");
        expect(&t, "(you)");
        if (seen_since(&t, from, "30x12,"))
            break;
        ck_assert_msg(i < 100, "the size did not change");
        usleep(20000);
    }
    /* the same line at 30 columns wraps: its start is a row up */
    term_type(&t, "help xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    expect(&t, "xxxxxxxxxx");
    soak(&t, 200);
    t.mark = t.n;
    term_type(&t, "\001");
    soak(&t, 300);
    ck_assert_msg(strstr(t.buf + t.mark, "\033[1A") != NULL ||
                      strstr(t.buf + t.mark, "\033[A") != NULL,
                  "no row up at 30 columns: %s", t.buf + t.mark);
    term_type(&t, "\013quit\r");
    ck_assert_int_eq(exit_code(reap(t.pid)), 0);
    term_close(&t);
    stop_server(&s);
}
END_TEST

START_TEST(watch_above_prompt)
{
    server s;
    char addr[PATH_MAX];
    unix_addr(addr, sizeof(addr));
    start_echo(&s, addr);
    term t;
    term_open(&t, addr, keyfile, "w", 80, 24);
    expect(&t, "w@echo-server> ");
    term_type(&t, "wat\ts\t\r");
    expect(&t, "stats every second");
    term_type(&t, "con");
    expect(&t, "con");
    /* two ticks above the prompt, each followed by the prompt and the
     * half-typed line drawn again */
    expect(&t, "uptime ");
    expect(&t, "KiB resident");
    expect(&t, "w@echo-server> con");
    expect(&t, "uptime ");
    expect(&t, "w@echo-server> con");
    term_type(&t, "ns\r"); /* the line kept its text: conns runs */
    expect(&t, "console #1 w from");
    term_type(&t, "\003"); /* C-c stops the watch */
    expect(&t, "watch off");
    soak(&t, 1500);
    ck_assert_ptr_eq(strstr(t.buf + t.mark, "uptime "), NULL);
    /* and `watch off` does too */
    term_type(&t, "watch stats\r");
    expect(&t, "uptime ");
    term_type(&t, "watch off\r");
    soak(&t, 300);
    t.mark = t.n;
    soak(&t, 1500);
    ck_assert_ptr_eq(strstr(t.buf + t.mark, "uptime "), NULL);
    term_type(&t, "quit\r");
    ck_assert_int_eq(exit_code(reap(t.pid)), 0);
    term_close(&t);
    stop_server(&s);
}
END_TEST

static void assert_same_termios(const struct termios *a, const struct termios *b)
{
    ck_assert_uint_eq(a->c_lflag, b->c_lflag);
    ck_assert_uint_eq(a->c_iflag, b->c_iflag);
    ck_assert_uint_eq(a->c_oflag, b->c_oflag);
    ck_assert_int_eq(memcmp(a->c_cc, b->c_cc, sizeof(a->c_cc)), 0);
}

START_TEST(terminal_restored)
{
    server s;
    char addr[PATH_MAX];
    unix_addr(addr, sizeof(addr));
    start_echo(&s, addr);
    term t;
    term_open(&t, addr, keyfile, "t", 80, 24);
    struct termios before, during, after;
    ck_assert_int_eq(tcgetattr(t.s, &before), 0);
    expect(&t, "t@echo-server> ");
    ck_assert_int_eq(tcgetattr(t.s, &during), 0);
    ck_assert_uint_eq(during.c_lflag & (ICANON | ECHO | ISIG), 0);
    /* the client killed with SIGTERM */
    kill(t.pid, SIGTERM);
    int st = reap(t.pid);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    ck_assert_int_eq(tcgetattr(t.s, &after), 0);
    assert_same_termios(&before, &after);
    term_close(&t);
    /* the server stopping */
    term_open(&t, addr, keyfile, "t", 80, 24);
    ck_assert_int_eq(tcgetattr(t.s, &before), 0);
    expect(&t, "t@echo-server> ");
    term_type(&t, "sta");
    expect(&t, "sta");
    stop_server(&s);
    expect(&t, "the server is stopping");
    ck_assert_int_eq(exit_code(reap(t.pid)), 0);
    ck_assert_int_eq(tcgetattr(t.s, &after), 0);
    assert_same_termios(&before, &after);
    term_close(&t);
}
END_TEST

START_TEST(no_fd_leak)
{
    server s;
    char addr[PATH_MAX];
    unix_addr(addr, sizeof(addr));
    start_echo(&s, addr);
    result r;
    run_client(&r, addr, keyfile, "warmup", "stats\n");
    /* the server frees a session once it sees the client's end, a moment
     * after the client exits: count when the number holds for 200 ms */
    int fds = count_fds(s.pid);
    for (int same = 0, i = 0; same < 10; i++, usleep(20000)) {
        int now = count_fds(s.pid);
        same = now == fds ? same + 1 : 0;
        fds = now;
        ck_assert_int_lt(i, 500);
    }
    for (int i = 0; i < 20; i++) {
        if (i % 2) {
            run_client(&r, addr, keyfile, "cycle", "backend\n");
            ck_assert_int_eq(exit_code(r.status), 0);
        } else {
            term t;
            term_open(&t, addr, keyfile, "cycle", 80, 24);
            expect(&t, "cycle@echo-server> ");
            term_type(&t, "sta");
            expect(&t, "sta");
            kill(t.pid, SIGKILL);
            reap(t.pid);
            term_close(&t);
        }
    }
    run_client(&r, addr, badkey, "x", "");
    ck_assert_int_eq(exit_code(r.status), 1);
    /* the killed sessions go once the server sees their end */
    for (int i = 0; i < 200 && count_fds(s.pid) != fds; i++)
        usleep(10000);
    ck_assert_int_eq(count_fds(s.pid), fds);
    run_client(&r, addr, keyfile, "last", "conns\n");
    ck_assert_ptr_nonnull(strstr(r.out, "console #22 last"));
    ck_assert_ptr_eq(strstr(r.out, "cycle"), NULL);
    stop_server(&s);
}
END_TEST

/* The wire abused with kart's own Client: a bad hello, a frame cut
 * short, a session ended by 'E' runs its last line. */
START_TEST(wire_abuse)
{
    server s;
    char addr[PATH_MAX];
    unix_addr(addr, sizeof(addr));
    start_echo(&s, addr);
    kart_auth auth = {.authkey = "sesame", .authkey_len = 6};
    kart_conn *c;
    ck_assert_int_eq(kart_conn_connect(&c, addr, &auth), 0);
    ck_assert_int_eq(kart_conn_send_bytes(c, "Hbad", 4), 0);
    void *msg;
    size_t len;
    ck_assert_int_eq(kart_conn_recv_bytes(c, &msg, &len, 1 << 20), KART_EEOF);
    kart_conn_close(c);
    /* a name the server refuses */
    ck_assert_int_eq(kart_conn_connect(&c, addr, &auth), 0);
    ck_assert_int_eq(kart_conn_send_bytes(c, "H\1\0\0\0\0\0../x\0", 12), 0);
    ck_assert_int_eq(kart_conn_recv_bytes(c, &msg, &len, 1 << 20), KART_EEOF);
    kart_conn_close(c);
    /* half a frame, then the end */
    ck_assert_int_eq(kart_conn_connect(&c, addr, &auth), 0);
    ck_assert_int_eq(kart_conn_send_bytes(c, "H\1\0\0\0\0\0raw\0", 11), 0);
    int fd = kart_conn_fileno(c);
    ck_assert_int_eq(write(fd,
                           "\0\0\0\x10"
                           "Dloglevel",
                           13),
                     13);
    kart_conn_close(c);
    /* a plain session ended by 'E': its unfinished last line runs */
    ck_assert_int_eq(kart_conn_connect(&c, addr, &auth), 0);
    ck_assert_int_eq(kart_conn_send_bytes(c, "H\1\0\0\0\0\0raw\0", 11), 0);
    ck_assert_int_eq(kart_conn_send_bytes(c, "Dconns", 6), 0);
    ck_assert_int_eq(kart_conn_send_bytes(c, "E", 1), 0);
    char all[8192] = "";
    size_t n = 0;
    int got_x = 0;
    for (;;) {
        int err = kart_conn_recv_bytes(c, &msg, &len, 1 << 20);
        if (err == KART_EEOF)
            break;
        ck_assert_int_eq(err, 0);
        const char *m = msg;
        if (m[0] == 'X')
            got_x = 1;
        else if (len - 1 < sizeof(all) - n - 1) {
            memcpy(all + n, m + 1, len - 1);
            n += len - 1;
            all[n] = 0;
        }
        free(msg);
    }
    kart_conn_close(c);
    ck_assert(got_x);
    ck_assert_msg(strstr(all, "raw@echo-server> conns\n") != NULL, "%s", all);
    ck_assert_msg(strstr(all, "console #4 raw") != NULL, "%s", all);
    ck_assert_ptr_eq(strstr(all, "#3"), NULL); /* the cut session is gone */
    check_echo(&s);
    stop_server(&s);
}
END_TEST

/* A peer that connects and never answers the challenge is dropped after
 * the handshake's 2 s; meanwhile the loop serves on (the handshake runs on
 * the loop: docs/console.md): a session opened while the silent peer
 * waits gets its answer before the silent peer is dropped. */
START_TEST(silent_peer)
{
    server s;
    char addr[PATH_MAX];
    unix_addr(addr, sizeof(addr));
    start_echo(&s, addr);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    ck_assert_uint_lt(strlen(addr), sizeof(a.sun_path));
    memcpy(a.sun_path, addr, strlen(addr) + 1);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char b[256];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 5000), 1);
    ssize_t k = read(fd, b, sizeof(b)); /* the challenge, left unanswered */
    ck_assert_int_gt(k, 0);
    result r;
    run_client(&r, addr, keyfile, "during", "conns\n");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_int_eq(exit_code(r.status), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "console #1 during"));
    ck_assert_msg(took < 1.5, "a session beside the silent peer took %.2f s", took);
    while (k > 0) { /* the end */
        ck_assert_int_eq(poll(&p, 1, 5000), 1);
        k = read(fd, b, sizeof(b));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(took > 1.5 && took < 4, "dropped after %.2f s", took);
    close(fd);
    run_client(&r, addr, keyfile, "after", "conns\n");
    ck_assert_int_eq(exit_code(r.status), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "console #2 after"));
    check_echo(&s);
    stop_server(&s);
}
END_TEST

START_TEST(command_lines)
{
    server s;
    char addr[PATH_MAX];
    unix_addr(addr, sizeof(addr));
    /* no key: refused */
    ck_assert_int_eq(start_server(&s, "echo-server", addr, NULL), 2);
    /* a key others may read: refused */
    char loose[PATH_MAX + 16];
    snprintf(loose, sizeof(loose), "%s/loose", dir);
    write_file(loose, "sesame\n", 0644);
    const char *e1[] = {"--console-authkey-file", loose, NULL};
    ck_assert_int_eq(start_server(&s, "echo-server", addr, e1), 1);
    const char *e2[] = {"--console-authkey-file", keyfile, NULL};
    ck_assert_int_eq(start_server(&s, "echo-server", "/nonexistent-dir/sock", e2), 1);
    const char *e3[] = {"--console-authkey-file", keyfile, "--console-history", "/nonexistent-dir",
                        NULL};
    ck_assert_int_eq(start_server(&s, "echo-server", addr, e3), 1);
    ck_assert_int_eq(access(addr, F_OK), -1);
    /* the client: unreachable, a missing key, a bad name */
    result r;
    run_client(&r, addr, keyfile, "alice", "");
    ck_assert_int_eq(exit_code(r.status), 1);
    ck_assert_msg(strstr(r.err, addr) != NULL, "%s", r.err);
    run_client(&r, addr, loose, "alice", "");
    ck_assert_int_eq(exit_code(r.status), 2);
    ck_assert_ptr_nonnull(strstr(r.err, "chmod 600"));
    run_client(&r, addr, keyfile, "../etc", "");
    ck_assert_int_eq(exit_code(r.status), 2);
    ck_assert_ptr_nonnull(strstr(r.err, "bad --name"));
}
END_TEST

static Suite *console_suite(void)
{
    Suite *s = suite_create("console");
    TCase *tc = tcase_create("console");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, commands);
    tcase_add_test(tc, http_abstract);
    tcase_add_loop_test(tc, tcp, 0, 3);
    tcase_add_test(tc, wrong_authkey);
    tcase_add_test(tc, two_operators);
    tcase_add_test(tc, window_size);
    tcase_add_test(tc, watch_above_prompt);
    tcase_add_test(tc, terminal_restored);
    tcase_add_test(tc, no_fd_leak);
    tcase_add_test(tc, wire_abuse);
    tcase_add_test(tc, silent_peer);
    tcase_add_test(tc, command_lines);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return kt_run(console_suite());
}

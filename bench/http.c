/*
 * bench/http.c — the `http` scenario: wrk (one thread, pinned to CPU 1)
 * against kart's build/examples/http-server and against nginx (one
 * worker), both on CPU 0, each answering `GET /` with 200 "Hello, World!".
 *
 * Throughput is wrk's Requests/sec. CPU per request is taken over the
 * steady state only: a window that opens a while after wrk starts (past
 * its start-up and connecting) and closes a while before its duration is
 * up (before its teardown), over which kart-bench reads the server
 * process's CPU time (for nginx, its worker's: the master only waits),
 * the softirq time of the server's CPU and of wrk's, and wrk's own CPU
 * time; the requests of the window are wrk's rate times its length. A wrk
 * run that reports socket errors or non-2xx responses fails the
 * benchmark. Before its first round each server is asked once, by hand,
 * and its answer checked.
 *
 * nginx gets a configuration of its own in a temporary directory: one
 * worker, access log off, keep-alive requests without a practical limit,
 * its pid file, error log and temp paths there; it runs as the current
 * user. Missing wrk or nginx skips the implementations that need it.
 */
#include "http.h"
#include "servers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Each nginx started (the http and hostile scenarios have one each) gets a
 * directory of its own, all removed at exit. */
static char nginx_dirs[4][64];
static int nginx_ndirs;

static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Asks GET / once and checks the answer: a server that answers wrong must
 * not get a number. */
void bench_http_check_hello(const char *who, int port)
{
    int fd = connect_local(port);
    if (fd < 0)
        bench_fail("%s: connect: %s", who, strerror(errno));
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
        bench_fail("%s: write: %s", who, strerror(errno));
    char buf[4096];
    size_t n = 0;
    ssize_t k;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)k;
    close(fd);
    buf[n] = 0;
    const char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0 || !body || strcmp(body + 4, "Hello, World!") != 0)
        bench_fail("%s answered GET / with: %.200s", who, buf);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_nginx_dirs(void)
{
    for (int i = 0; i < nginx_ndirs; i++)
        nftw(nginx_dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A port free right now (nginx needs one in its configuration). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        bench_fail("free port: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

/* nginx's worker: the master's child. */
static pid_t nginx_worker(pid_t master)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)master, (int)master);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    return (pid_t)atoi(buf);
}

const bench_server *bench_http_start_nginx(const char *key, const char *extra_conf)
{
    bench_server *s = bench_server_find(key);
    if (s)
        return s;
    char nginx[512];
    if (!bench_find_program("nginx", nginx, sizeof(nginx)))
        bench_fail("nginx is gone");
    if (nginx_ndirs == 4)
        bench_fail("more than 4 nginx instances");
    char *nginx_dir = nginx_dirs[nginx_ndirs];
    snprintf(nginx_dir, sizeof(nginx_dirs[0]), "/tmp/kart-bench-nginx-XXXXXX");
    if (!mkdtemp(nginx_dir))
        bench_fail("mkdtemp: %s", strerror(errno));
    if (nginx_ndirs++ == 0)
        atexit(remove_nginx_dirs);
    int port = free_port();
    /* As root, nginx would hand its worker to "nobody": name ourselves. */
    char user[300] = "";
    if (geteuid() == 0) {
        struct passwd *pw = getpwuid(geteuid());
        struct group *gr = getgrgid(getegid());
        if (pw && gr)
            snprintf(user, sizeof(user), "user %s %s;\n", pw->pw_name, gr->gr_name);
    }
    char conf[512];
    snprintf(conf, sizeof(conf), "%s/nginx.conf", nginx_dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        bench_fail("%s: %s", conf, strerror(errno));
    fprintf(f,
            "%s"
            "worker_processes 1;\n"
            "daemon off;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/error.log;\n"
            "events { worker_connections 20000; }\n"
            "http {\n"
            "  access_log off;\n"
            "  keepalive_requests 1000000000;\n"
            "%s"
            "  client_body_temp_path %s/body;\n"
            "  proxy_temp_path %s/proxy;\n"
            "  fastcgi_temp_path %s/fastcgi;\n"
            "  uwsgi_temp_path %s/uwsgi;\n"
            "  scgi_temp_path %s/scgi;\n"
            "  server {\n"
            "    listen 127.0.0.1:%d backlog=4096;\n"
            "    location / { default_type text/plain; return 200 \"Hello, World!\"; }\n"
            "  }\n"
            "}\n",
            user, nginx_dir, nginx_dir, extra_conf ? extra_conf : "  keepalive_timeout 600s;\n",
            nginx_dir, nginx_dir, nginx_dir, nginx_dir, nginx_dir, port);
    fclose(f);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0); /* killed as a group, its worker with it */
        bench_pin_cpu(0);
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        char errlog[128];
        snprintf(errlog, sizeof(errlog), "%s/error.log", nginx_dir);
        execl(nginx, "nginx", "-p", nginx_dir, "-c", conf, "-e", errlog, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    pid_t worker = -1;
    for (int i = 0; i < 500; i++) {
        int fd = connect_local(port);
        if (fd >= 0) {
            close(fd);
            worker = nginx_worker(pid);
            if (worker > 0)
                break;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            bench_fail("nginx exited at start (see its error log, %s/error.log)", nginx_dir);
        usleep(10000);
    }
    if (worker <= 0) {
        kill(-pid, SIGKILL);
        bench_fail("nginx did not start listening on port %d", port);
    }
    s = bench_server_adopt(key, -pid, worker, port);
    bench_http_check_hello("nginx", port);
    return s;
}

const bench_server *bench_http_start_kart(const char *key, const char *backend,
                                          const char *const *extra)
{
    bench_server *s = bench_server_find(key);
    if (s)
        return s;
    char path[512], b[32];
    if (!bench_sibling_path("examples/http-server", path, sizeof(path)))
        bench_fail("build/examples/http-server is not built (make)");
    snprintf(b, sizeof(b), "%s", backend);
    char *argv[24] = {path, "--port", "0", "--threads", "1", "--backend", b, "--stats"};
    for (int i = 0; extra && extra[i] && i < 15; i++)
        argv[8 + i] = (char *)extra[i];
    s = bench_server_exec(key, argv);
    bench_http_check_hello(key, s->port);
    return s;
}

/* The steady-state window inside a wrk run of `seconds`: from `head`
 * seconds after wrk is started to `head` seconds before its end. */
static double window_head(int seconds)
{
    return seconds * 0.15 > 0.15 ? seconds * 0.15 : 0.15;
}

static void sleep_until_ns(int64_t t)
{
    for (int64_t now; (now = bench_now_ns()) < t;) {
        struct timespec ts = {.tv_sec = (t - now) / 1000000000, .tv_nsec = (t - now) % 1000000000};
        nanosleep(&ts, NULL);
    }
}

/* One reading at an edge of the window. */
typedef struct http_mark {
    int64_t t, server, server_sirq, wrk, wrk_sirq;
} http_mark;

static void mark(http_mark *m, pid_t server, pid_t wrk)
{
    m->server = bench_proc_cpu_ns(server);
    m->wrk = bench_proc_cpu_ns(wrk);
    m->server_sirq = bench_cpu_softirq_ns(0);
    m->wrk_sirq = bench_cpu_softirq_ns(1);
    m->t = bench_now_ns();
}

/* Runs wrk pinned to CPU 1 and parses its report; reads the steady-state
 * window's CPU figures on the way (w, all but requests). */
void bench_http_wrk(int port, int conns, int seconds, pid_t server, double *rps, uint64_t *requests,
                    bench_window *w)
{
    char wrk[512];
    if (!bench_find_program("wrk", wrk, sizeof(wrk)))
        bench_fail("wrk is gone");
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        bench_fail("pipe: %s", strerror(errno));
    char c[16], d[16], url[64];
    snprintf(c, sizeof(c), "-c%d", conns);
    snprintf(d, sizeof(d), "-d%ds", seconds);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    fflush(NULL);
    int64_t start = bench_now_ns();
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        bench_pin_cpu(1);
        dup2(p[1], STDOUT_FILENO);
        execl(wrk, "wrk", "-t1", c, d, url, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    /* wrk prints only at its end: the pipe can wait while we measure. */
    int64_t head = (int64_t)(window_head(seconds) * 1e9);
    http_mark m0, m1;
    sleep_until_ns(start + head);
    mark(&m0, server, pid);
    sleep_until_ns(start + (int64_t)seconds * 1000000000 - head);
    mark(&m1, server, pid);
    char out[8192];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof(out) - 1 &&
           ((k = read(p[0], out + n, sizeof(out) - 1 - n)) > 0 || (k < 0 && errno == EINTR)))
        if (k > 0)
            n += (size_t)k;
    close(p[0]);
    out[n] = 0;
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_fail("wrk failed (status 0x%x): %.300s", status, out);
    if (strstr(out, "Socket errors") || strstr(out, "Non-2xx"))
        bench_fail("wrk saw errors: %.600s", out);
    const char *r = strstr(out, "Requests/sec:");
    const char *q = strstr(out, " requests in ");
    if (!r || !q)
        bench_fail("cannot read wrk's report: %.300s", out);
    const char *line = q;
    while (line > out && line[-1] != '\n')
        line--;
    *requests = strtoull(line, NULL, 10);
    *rps = strtod(r + 13, NULL);
    if (m0.server < 0 || m1.server < 0)
        bench_fail("the server process is gone");
    *w = (bench_window){
        .seconds = (double)(m1.t - m0.t) / 1e9,
        .server_ns = m1.server - m0.server,
        .server_sirq =
            m0.server_sirq >= 0 && m1.server_sirq >= 0 ? m1.server_sirq - m0.server_sirq : -1,
        .load_ns = m0.wrk >= 0 && m1.wrk >= 0 ? m1.wrk - m0.wrk : -1,
        .load_sirq = m0.wrk_sirq >= 0 && m1.wrk_sirq >= 0 ? m1.wrk_sirq - m0.wrk_sirq : -1,
    };
}

static int run_http(const bench_impl *impl, bench_ctx *ctx)
{
    int conns = (int)bench_param_get(ctx->c, "conns");
    char key[64];
    snprintf(key, sizeof(key), "http/%s", impl->name);
    bench_raise_nofile(conns + 256);
    const bench_server *s =
        impl->arg ? bench_http_start_kart(key, impl->arg, NULL) : bench_http_start_nginx(key, NULL);
    /* wrk counts in whole seconds. */
    int seconds = ctx->seconds < 1 ? 1 : (int)(ctx->seconds + 0.5);
    double rps;
    uint64_t requests;
    bench_window w;
    bench_http_wrk(s->port, conns, seconds, s->pid, &rps, &requests, &w);
    if (requests == 0 || !(rps > 0))
        bench_fail("wrk completed no request");
    ctx->value[0] = rps;
    /* wrk's rate held over the steady-state window. */
    w.requests = rps * w.seconds;
    bench_window_report(ctx, &w, 1, 2);
    return 0;
}

static const bench_metric metrics[] = {
    {"req_per_s", "req/s", true},
    {"cpu_us_per_req", "us/req", false},
    {"proc_us_per_req", "us/req", false},
};

static int cases(bench_case *out, bool quick)
{
    out[0] = (bench_case){1, {{"conns", 50}}};
    if (quick)
        return 1;
    out[1] = (bench_case){1, {{"conns", 300}}};
    return 2;
}

int bench_http_impls(bench_impl *out, int (*run)(const bench_impl *, bench_ctx *))
{
    char buf[512];
    const char *no_wrk = bench_find_program("wrk", buf, sizeof(buf))
                             ? NULL
                             : "wrk not installed (apt-get install wrk)";
    int n = bench_add_kart_backends(out, run, false);
    bench_skip_select(out, n);
    for (int i = 0; i < n; i++)
        if (!out[i].skip && no_wrk)
            out[i].skip = no_wrk;
    out[n++] = (bench_impl){.name = "nginx",
                            .run = run,
                            .skip = no_wrk ? no_wrk
                                    : bench_find_program("nginx", buf, sizeof(buf))
                                        ? NULL
                                        : "nginx not installed (apt-get install nginx-light)"};
    return n;
}

static int impls(bench_impl *out)
{
    return bench_http_impls(out, run_http);
}


const bench_scenario bench_http = {
    .name = "http",
    .summary = "wrk on CPU 1 against kart's http-server and nginx (one worker) on CPU 0: "
               "requests/s and server CPU per request (process + softirq of CPU 0, and the "
               "process alone) over wrk's steady state",
    .baseline = "nginx",
    .nmetrics = 3,
    .metrics = metrics,
    .cases = cases,
    .impls = impls,
    .seconds = 2.0,
    .quick_seconds = 1.0,
    .quick_rounds = 4, /* wrk's rounds are a second each */
    .client_capped = 1u << 0,
    .metric_note = {NULL, BENCH_NOTE_CPU, BENCH_NOTE_PROC},
};

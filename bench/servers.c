/*
 * bench/servers.c — starting, measuring and stopping the server processes
 * of the echo and http scenarios (see servers.h).
 */
#include "servers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVERS 32

static bench_server servers[MAX_SERVERS];
static int nservers;
static bool atexit_set;

/* Waits up to ms for pid to exit; true if it did (and was reaped). */
static bool reaped_within(pid_t pid, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return true;
        usleep(1000);
    }
    return false;
}

/* Stops every server still up; registered with atexit(), so that it also
 * runs when bench_fail() exits. kart's example servers get SIGTERM first:
 * they exit cleanly and print their I/O counters (--stats: CQ overflows,
 * buffer shortages, accepts at the descriptor limit) into kart-bench's
 * output. Everything else, or a server that does not stop within 2 s, gets
 * SIGKILL. */
static void kill_all(void)
{
    for (int i = 0; i < nservers; i++) {
        /* A negative leader is a process group (nginx and its worker). */
        pid_t l = servers[i].leader;
        if (l == 0)
            continue;
        if (servers[i].graceful && kill(l, SIGTERM) == 0 && reaped_within(l, 2000)) {
            servers[i].leader = 0;
            continue;
        }
        kill(l, SIGKILL);
        waitpid(l > 0 ? l : -l, NULL, 0);
        servers[i].leader = 0;
    }
    nservers = 0;
}

bench_server *bench_server_find(const char *key)
{
    for (int i = 0; i < nservers; i++)
        if (strcmp(servers[i].key, key) == 0)
            return &servers[i];
    return NULL;
}

int bench_pin_cpu(int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(n > 0 ? cpu % (int)n : 0, &set);
    return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

long bench_raise_nofile(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if ((long)rl.rlim_cur < want) {
        rl.rlim_cur =
            rl.rlim_max == RLIM_INFINITY || (long)rl.rlim_max > want ? (rlim_t)want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

int64_t bench_proc_cpu_ns(pid_t pid)
{
    clockid_t cid;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &cid) != 0 || clock_gettime(cid, &ts) < 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_cpu_softirq_ns(int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu = n > 0 ? cpu % (int)n : 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[512], want[32];
    int len = snprintf(want, sizeof(want), "cpu%d ", cpu);
    int64_t ns = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, want, (size_t)len) != 0)
            continue;
        /* user nice system idle iowait irq softirq ... */
        unsigned long long v[7];
        if (sscanf(line + len, "%llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6]) == 7)
            ns = (int64_t)(v[6] * (1000000000.0 / (double)sysconf(_SC_CLK_TCK)));
        break;
    }
    fclose(f);
    return ns;
}

void bench_window_report(bench_ctx *ctx, const bench_window *w, int cpu_m, int proc_m)
{
    if (w->server_ns <= 0) {
        bench_metric_error(ctx, cpu_m,
                           "the server's CPU clock read %lld ns over a %.3f s window that "
                           "served %.0f requests: no CPU figure",
                           (long long)w->server_ns, w->seconds, w->requests);
        ctx->value[proc_m] = NAN;
        return;
    }
    if (w->server_sirq < 0) {
        bench_metric_error(ctx, cpu_m, "/proc/stat gave no softirq time for the server's CPU");
        ctx->value[proc_m] = (double)w->server_ns / 1e3 / w->requests;
        return;
    }
    double server = (double)(w->server_ns + w->server_sirq);
    ctx->value[cpu_m] = server / 1e3 / w->requests;
    ctx->value[proc_m] = (double)w->server_ns / 1e3 / w->requests;
    /* On one CPU the two share it: neither share says anything. */
    if (sysconf(_SC_NPROCESSORS_ONLN) >= 2 && w->seconds > 0) {
        ctx->server_busy = server / 1e9 / w->seconds;
        if (w->load_ns >= 0 && w->load_sirq >= 0)
            ctx->load_busy = (double)(w->load_ns + w->load_sirq) / 1e9 / w->seconds;
    }
}

int64_t bench_proc_rss_kib(pid_t pid)
{
    char path[64], buf[128];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    long size, resident;
    if (sscanf(buf, "%ld %ld", &size, &resident) != 2)
        return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

const char *bench_sibling_path(const char *rel, char *buf, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = 0;
    if ((size_t)snprintf(buf, size, "%s/%s", self, rel) >= size)
        return NULL;
    return access(buf, X_OK) == 0 ? buf : NULL;
}

static bench_server *add(const char *key, pid_t leader, pid_t pid, int port)
{
    if (nservers == MAX_SERVERS)
        bench_fail("too many servers");
    if (!atexit_set) {
        atexit(kill_all);
        atexit_set = true;
    }
    bench_server *s = &servers[nservers++];
    *s = (bench_server){.leader = leader, .pid = pid, .port = port};
    snprintf(s->key, sizeof(s->key), "%s", key);
    s->rss_fresh_kib = bench_proc_rss_kib(pid);
    return s;
}

bench_server *bench_server_adopt(const char *key, pid_t leader, pid_t pid, int port)
{
    return add(key, leader, pid, port);
}

/* In a child: dies with kart-bench, runs on CPU 0. */
static void child_setup(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(1);
    bench_pin_cpu(0);
}

/* The forked server's end of its "ready" pipe, until it has said so. */
static int ready_fd = -1;

void bench_server_ready(void)
{
    if (ready_fd < 0)
        return;
    if (write(ready_fd, "r", 1) != 1)
        _exit(1);
    close(ready_fd);
    ready_fd = -1;
}

/* fn_says_ready: fn calls bench_server_ready() itself, once set up. */
static bench_server *fork_server(const char *key, bench_server_fn fn, bool fn_says_ready)
{
    bench_server *s = bench_server_find(key);
    if (s)
        return s;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (lfd < 0)
        bench_fail("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
        bench_fail("listen: %s", strerror(errno));
    /* The child says when it is ready: its fresh memory (echo_hold's
     * baseline) is read then, not while it is still kart-bench's copy. */
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        bench_fail("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        close(ready[0]);
        child_setup();
        /* Give back the free heap inherited from kart-bench, or the
         * server's first frees would, and its resident memory would drop
         * below the "fresh" figure that memory per connection subtracts. */
        malloc_trim(0);
        ready_fd = ready[1];
        if (!fn_says_ready)
            bench_server_ready();
        fn(lfd);
        _exit(0);
    }
    close(ready[1]);
    close(lfd);
    char r;
    ssize_t n;
    while ((n = read(ready[0], &r, 1)) < 0 && errno == EINTR)
        ;
    close(ready[0]);
    if (n != 1) {
        waitpid(pid, NULL, 0);
        bench_fail("the server %s exited at start", key);
    }
    return add(key, pid, pid, ntohs(sa.sin_port));
}

bench_server *bench_server_fork(const char *key, bench_server_fn fn)
{
    return fork_server(key, fn, false);
}

bench_server *bench_server_fork_late(const char *key, bench_server_fn fn)
{
    return fork_server(key, fn, true);
}

bench_server *bench_server_exec(const char *key, char *const argv[])
{
    bench_server *s = bench_server_find(key);
    if (s)
        return s;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        bench_fail("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        child_setup();
        dup2(p[1], STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    /* The first line: the port. Bounded wait, so a server that never gets
     * ready fails the run instead of hanging it. */
    char line[256];
    size_t n = 0;
    int64_t deadline = bench_now_ns() + 10 * INT64_C(1000000000);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    while (n < sizeof(line) - 1 && !memchr(line, '\n', n)) {
        ssize_t k = read(p[0], line + n, sizeof(line) - 1 - n);
        if (k > 0) {
            n += (size_t)k;
        } else if (k == 0 || (errno != EAGAIN && errno != EINTR) || bench_now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            bench_fail("%s did not print its port", argv[0]);
        } else {
            usleep(1000);
        }
    }
    close(p[0]);
    line[n] = 0;
    char *d = line;
    while (*d && (*d < '0' || *d > '9'))
        d++;
    int port = atoi(d);
    if (port <= 0 || port > 65535) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        bench_fail("%s printed no port: %s", argv[0], line);
    }
    s = add(key, pid, pid, port);
    s->graceful = true;
    return s;
}

void bench_skip_select(bench_impl *impls, int n)
{
    for (int i = 0; i < n; i++)
        if (impls[i].arg && strcmp(impls[i].arg, "select") == 0 && !impls[i].skip)
            impls[i].skip = "select(2) holds at most FD_SETSIZE fds: not a server backend";
}

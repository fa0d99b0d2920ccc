/*
 * bench/loadgen.c — the echo load generator (see loadgen.h).
 *
 * One epoll loop, level-triggered: a readable connection is read until
 * EAGAIN into one shared buffer, checked against the pattern with memcmp
 * (the check must cost the generator little, or it, not the server, sets
 * the pace), and topped up to `pipeline` requests in flight with one send
 * straight out of the pattern. A send the socket cannot take whole waits
 * for EPOLLOUT.
 */
#include "loadgen.h"

#include "servers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The pattern's period: prime, so that no request size lines it up with
 * itself; the buffer holds it twice so that any window of up to PERIOD
 * bytes is contiguous. */
#define PERIOD 65521

/* Connections per loopback source address (see connect_all). */
#define LG_PER_SRC 20000

/* The memory of the kernel's slab caches that a held connection's
 * objects come from (/proc/slabinfo, allocated objects x size), KiB; -1:
 * unreadable. Named caches, not /proc/meminfo's Slab, which the
 * machine's other work (dentries of every build) moves by more than
 * 2,000 connections take. Left out: dentries (one per socket, 192 bytes,
 * but the cache is the file system's) and skbs (an idle socket holds
 * none). */
static int64_t slab_kib(void)
{
    static const char *const caches[] = {
        "TCP", "sock_inode_cache", "filp", "eventpoll_epi", "eventpoll_pwq", "ep_head", "io_kiocb"};
    FILE *f = fopen("/proc/slabinfo", "r");
    if (!f)
        return -1;
    char line[512], name[64];
    long long bytes = 0, active, num, size;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%63s %lld %lld %lld", name, &active, &num, &size) != 4)
            continue;
        for (size_t i = 0; i < sizeof(caches) / sizeof(caches[0]); i++)
            if (strcmp(name, caches[i]) == 0)
                bytes += active * size; /* not num: the slabs keep the
                                         * freed objects of earlier rounds */
    }
    fclose(f);
    return bytes / 1024;
}

typedef struct lg_conn {
    int fd;
    uint32_t phase;
    bool out_armed;
    uint64_t sent, recvd; /* bytes of the stream */
    uint64_t target;      /* bytes to have sent */
} lg_conn;

typedef struct lg_state {
    const lg_params *p;
    unsigned char *pat;
    lg_conn *c;
    int ep;
    uint64_t requests;
    int busy; /* connections with bytes in flight */
    bool stopping;
} lg_state;

static void make_pattern(unsigned char *pat)
{
    uint32_t x = 2463534242u;
    for (int i = 0; i < PERIOD; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pat[i] = pat[i + PERIOD] = (unsigned char)(x >> 24);
    }
}

static void arm(lg_state *s, lg_conn *c, bool out)
{
    if (c->out_armed == out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        bench_fail("loadgen: epoll_ctl: %s", strerror(errno));
    c->out_armed = out;
}

/* Sends what is due on c, straight from the pattern. */
static void flush(lg_state *s, lg_conn *c)
{
    while (c->sent < c->target) {
        uint64_t left = c->target - c->sent;
        size_t len = left > PERIOD ? PERIOD : (size_t)left;
        ssize_t n = send(c->fd, s->pat + (c->phase + c->sent) % PERIOD, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) {
                arm(s, c, true);
                return;
            }
            if (errno == EINTR)
                continue;
            bench_fail("loadgen: send: %s", strerror(errno));
        }
        c->sent += (uint64_t)n;
    }
    arm(s, c, false);
}

static void top_up(lg_state *s, lg_conn *c)
{
    uint64_t size = (uint64_t)s->p->size;
    uint64_t want = (c->recvd / size + (uint64_t)s->p->pipeline) * size;
    if (c->target == c->recvd && want > c->target)
        s->busy++;
    if (want > c->target)
        c->target = want;
    flush(s, c);
}

static void readable(lg_state *s, lg_conn *c, unsigned char *buf, size_t bufsize)
{
    uint64_t size = (uint64_t)s->p->size;
    for (;;) {
        ssize_t n = recv(c->fd, buf, bufsize, 0);
        if (n < 0) {
            if (errno == EAGAIN)
                break;
            if (errno == EINTR)
                continue;
            bench_fail("loadgen: recv: %s", strerror(errno));
        }
        if (n == 0)
            bench_fail("loadgen: the server closed a connection");
        if (c->recvd + (uint64_t)n > c->sent)
            bench_fail("loadgen: %zd bytes back where %llu were in flight", n,
                       (unsigned long long)(c->sent - c->recvd));
        uint32_t at = (uint32_t)((c->phase + c->recvd) % PERIOD);
        for (size_t done = 0; done < (size_t)n;) {
            size_t k = (size_t)n - done > PERIOD ? PERIOD : (size_t)n - done;
            if (memcmp(buf + done, s->pat + at, k) != 0)
                bench_fail("loadgen: a wrong byte at offset %llu of connection %d's stream",
                           (unsigned long long)(c->recvd + done), (int)(c - s->c));
            done += k;
            at = (uint32_t)((at + k) % PERIOD);
        }
        s->requests += (c->recvd + (uint64_t)n) / size - c->recvd / size;
        c->recvd += (uint64_t)n;
        if ((size_t)n < bufsize)
            break; /* a short read on a stream socket: drained */
    }
    if (c->recvd == c->target) {
        s->busy--;
        if (!s->stopping)
            top_up(s, c);
    } else if (!s->stopping) {
        top_up(s, c);
    }
}

/* Runs the loop until every connection has nothing in flight; while not
 * stopping it keeps topping them up, until deadline (0: no deadline, stop
 * topping up at once). */
static void drive(lg_state *s, int64_t deadline)
{
    enum { MAXEV = 512 };
    struct epoll_event ev[MAXEV];
    static unsigned char buf[1 << 16];
    while (s->busy > 0) {
        if (!s->stopping && bench_now_ns() >= deadline)
            s->stopping = true;
        int n = epoll_wait(s->ep, ev, MAXEV, 10000);
        if (n == 0)
            bench_fail("loadgen: no reply for 10 s (%d connections waiting)", s->busy);
        if (n < 0 && errno != EINTR)
            bench_fail("loadgen: epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            lg_conn *c = ev[i].data.ptr;
            if (ev[i].events & (EPOLLERR | EPOLLHUP))
                bench_fail("loadgen: connection %d: error or hang-up", (int)(c - s->c));
            if (ev[i].events & EPOLLOUT)
                flush(s, c);
            if (ev[i].events & EPOLLIN)
                readable(s, c, buf, sizeof(buf));
        }
    }
}

static void connect_all(lg_state *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)s->p->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < s->p->conns; i++) {
        lg_conn *c = &s->c[i];
        /* Blocking connect: it returns once the handshake is done (the
         * server need not have accepted yet), so a burst of 10,000 cannot
         * overrun the listen backlog the way a non-blocking one would. */
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
            bench_fail("loadgen: socket (connection %d): %s", i, strerror(errno));
        /* echo_hold's 100,000: one source address has ~28,000 ephemeral
         * ports to 127.0.0.1:port, so every LG_PER_SRC connections take
         * the next loopback source (127.0.0.2, ...); the port is chosen
         * at connect (IP_BIND_ADDRESS_NO_PORT), per 4-tuple. */
        if (i >= LG_PER_SRC) {
            int one = 1;
            struct sockaddr_in src = {.sin_family = AF_INET,
                                      .sin_addr.s_addr = htonl(INADDR_LOOPBACK + i / LG_PER_SRC)};
            setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
            if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
                bench_fail("loadgen: bind (connection %d): %s", i, strerror(errno));
        }
        int err;
        while ((err = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 && errno == EINTR)
            ;
        if (err < 0)
            bench_fail("loadgen: connect (connection %d): %s", i, strerror(errno));
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* Closed with a reset when the generator exits: no TIME_WAIT, so
         * rounds of 10,000 connections do not run out of ports. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0)
            bench_fail("loadgen: non-blocking: %s", strerror(errno));
        c->phase = (uint32_t)((uint64_t)i * 7919 % PERIOD);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            bench_fail("loadgen: epoll_ctl: %s", strerror(errno));
    }
}

static int64_t self_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void child(const lg_params *p, int out)
{
    bench_pin_cpu(1);
    lg_state s = {.p = p};
    s.pat = malloc(2 * PERIOD);
    s.c = calloc((size_t)p->conns, sizeof(*s.c));
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!s.pat || !s.c || s.ep < 0)
        bench_fail("loadgen: out of memory or fds");
    make_pattern(s.pat);
    int64_t slab0 = slab_kib();
    connect_all(&s);

    /* Prime: one checked echo of one request on every connection, so that
     * the server has accepted and served each before the clock starts. */
    s.stopping = true;
    for (int i = 0; i < p->conns; i++) {
        s.c[i].target = (uint64_t)p->size;
        s.busy++;
        flush(&s, &s.c[i]);
    }
    drive(&s, 0);
    lg_result r = {.server_rss_kib = bench_proc_rss_kib(p->server)};
    int64_t slab1 = slab_kib();
    r.kernel_kib = slab0 >= 0 && slab1 >= 0 ? slab1 - slab0 : LG_KERNEL_UNKNOWN;

    s.stopping = false;
    s.requests = 0;
    int64_t cpu0 = bench_proc_cpu_ns(p->server);
    int64_t sirq0 = bench_cpu_softirq_ns(0), lsirq0 = bench_cpu_softirq_ns(1);
    int64_t own0 = self_cpu_ns();
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < p->conns; i++)
        top_up(&s, &s.c[i]);
    drive(&s, t0 + (int64_t)(p->seconds * 1e9));
    r.ns = bench_now_ns() - t0;
    r.server_cpu_ns = bench_proc_cpu_ns(p->server) - cpu0;
    r.load_cpu_ns = self_cpu_ns() - own0;
    int64_t sirq1 = bench_cpu_softirq_ns(0), lsirq1 = bench_cpu_softirq_ns(1);
    r.server_sirq_ns = sirq0 >= 0 && sirq1 >= 0 ? sirq1 - sirq0 : -1;
    r.load_sirq_ns = lsirq0 >= 0 && lsirq1 >= 0 ? lsirq1 - lsirq0 : -1;
    r.requests = s.requests;
    if (cpu0 < 0 || r.server_cpu_ns < 0)
        bench_fail("loadgen: the server process %d is gone", (int)p->server);
    if (write(out, &r, sizeof(r)) != (ssize_t)sizeof(r))
        bench_fail("loadgen: report: %s", strerror(errno));
}

void lg_run(const lg_params *p, lg_result *out)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        bench_fail("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        child(p, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    ssize_t n;
    while ((n = read(fds[0], out, sizeof(*out))) < 0 && errno == EINTR)
        ;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (n != (ssize_t)sizeof(*out) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_fail("the load generator failed (status 0x%x)", status);
}

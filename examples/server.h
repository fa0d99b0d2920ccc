/*
 * examples/server.h — the frame that examples/echo-server.c and
 * examples/http-server.c share: the command line, one kart loop per thread
 * with a SO_REUSEPORT listener each, threads pinned to CPUs, the list of
 * open connections, and a clean stop on SIGINT/SIGTERM.
 *
 * Why a header of its own: both servers need exactly this, and what
 * differs between them is only what a connection does with its bytes. It
 * is header-only and uses only kart's public headers, so that each example
 * still builds alone:
 *   cc echo-server.c $(pkg-config --cflags --libs kart) -o echo-server
 *
 * A program defines a connection struct that begins with srv_conn, and
 * passes srv_main() the function that makes one for an accepted fd. It
 * closes connections with srv_conn_close() (gracefully: what it queued
 * still goes out) or srv_conn_abort(), and frees them in the free callback
 * it gave, which runs once kart has closed the socket.
 */
#ifndef KART_EXAMPLES_SERVER_H
#define KART_EXAMPLES_SERVER_H

#include <kart.h>
#include <kart/io.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SRV_MAX_THREADS 256

typedef struct srv_worker srv_worker;
typedef struct srv_conn srv_conn;

/* The part every connection starts with. */
struct srv_conn {
    kart_sock sock; /* first: a kart_sock * is the connection */
    kart_req close_req;
    srv_worker *w;
    srv_conn *prev, *next;
    int closing;
};

typedef struct srv_program {
    const char *name; /* for messages: "echo-server" */
    /* Makes a connection for accepted socket fd: allocates it, calls
     * srv_conn_link(), kart_sock_init() and starts receiving. Returns NULL
     * (having closed fd) on failure. */
    srv_conn *(*conn_new)(srv_worker *w, int fd);
    /* Frees a connection once its socket is closed. */
    void (*conn_free)(srv_conn *c);
    /* Optional: per-worker set-up on its loop thread (0 or -errno). */
    int (*worker_init)(srv_worker *w);
    /* Optional: a flag srv_main does not know, with its value (NULL when
     * it is the last argument). Returns 1 when it took the flag and its
     * value, 0 when the flag is unknown too, -1 after printing why the
     * value is bad. (The admin console's --console flags: console.h.) */
    int (*parse_option)(const char *flag, const char *value);
    /* Optional: lines added to --help for those flags. */
    const char *usage_extra;
    /* Optional: called on a worker's loop thread when it stops, so that
     * handles of the program's own (a console) close and the loop ends. */
    void (*worker_stop)(srv_worker *w);
    /* Optional: the io_uring submission queue size of each loop (0: the
     * library's 256; the completion queue is twice as large). A server
     * holding thousands of connections wants more: with 6,000 of them
     * (kart-bench hostile) a 512-entry completion queue overflowed (the
     * kernel then queues completions on a list the loop must flush), and
     * the server spent 30% more CPU per re-opened connection than with
     * 4,096 entries (measured; the cause is not pinned down). */
    unsigned uring_entries;
} srv_program;

struct srv_worker {
    const srv_program *prog;
    int index;
    int cpu; /* the CPU it is pinned to, or -1 */
    int lfd; /* its listening socket */
    kart_loop *loop;
    kart_sock listener;
    kart_req accept_req;
    kart_req listener_close_req;
    kart_async stop;
    kart_signal sigint, sigterm; /* worker 0 only */
    srv_conn head;               /* the list of open connections (a sentinel) */
    int stopping;
    int err; /* set-up error, reported to main */
    kart_sem *ready;
    kart_thread *thread;
    void *data;          /* the program's per-worker state */
    kart_io_stats stats; /* its loop's, taken just before the loop is freed */
    /* Connections accepted and open now: written by the worker's thread,
     * read by any (the console's stats) with __atomic loads. */
    unsigned long long accepted, open;
};

static srv_worker srv_workers[SRV_MAX_THREADS];
static int srv_nworkers;
static const char *srv_backend;

static void srv_close_cb(kart_req *req, int result)
{
    (void)result; /* the fd is closed either way */
    srv_conn *c = req->data;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    __atomic_fetch_sub(&c->w->open, 1, __ATOMIC_RELAXED);
    c->w->prog->conn_free(c);
}

/* How long a closing connection may take to send what it queued: a peer
 * that stops reading must not hold it (and its descriptor) for good. */
#define SRV_CLOSE_TIMEOUT_NS (5 * 1000000000LL)

/* Closes a connection (once), gracefully: the sends already queued go out
 * first (an echo that closes at the client's EOF must still send back
 * what it received), within SRV_CLOSE_TIMEOUT_NS. Its free callback runs
 * when kart is done with it. */
static inline void srv_conn_close(srv_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->close_req.data = c;
    if (kart_sock_close_graceful(&c->sock, &c->close_req, SRV_CLOSE_TIMEOUT_NS, srv_close_cb) < 0) {
        /* Only a request misuse fails here; there is none, but never
         * leave the connection half-done: free it now. */
        close(c->sock.fd);
        c->prev->next = c->next;
        c->next->prev = c->prev;
        __atomic_fetch_sub(&c->w->open, 1, __ATOMIC_RELAXED);
        c->w->prog->conn_free(c);
    }
}

/* Closes a connection at once, dropping what it still had to send (a stop,
 * or a graceful close that must not wait any longer). */
static inline void srv_conn_abort(srv_conn *c)
{
    if (c->closing) {
        kart_req_cancel(&c->close_req); /* -EALREADY: the fd is going anyway */
        return;
    }
    c->closing = 1;
    c->close_req.data = c;
    if (kart_sock_close(&c->sock, &c->close_req, srv_close_cb) < 0) {
        close(c->sock.fd);
        c->prev->next = c->next;
        c->next->prev = c->prev;
        __atomic_fetch_sub(&c->w->open, 1, __ATOMIC_RELAXED);
        c->w->prog->conn_free(c);
    }
}

/* Links a new connection into its worker's list; the program calls this
 * from conn_new before starting any operation. */
static inline void srv_conn_link(srv_worker *w, srv_conn *c)
{
    c->w = w;
    c->closing = 0;
    c->next = w->head.next;
    c->prev = &w->head;
    w->head.next->prev = c;
    w->head.next = c;
    __atomic_fetch_add(&w->accepted, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&w->open, 1, __ATOMIC_RELAXED);
}

static void srv_accept_cb(kart_req *req, int fd)
{
    srv_worker *w = req->data;
    if (fd < 0) {
        if (fd != -ECANCELED)
            fprintf(stderr, "%s: accept: %s\n", w->prog->name, kart_strerror(fd));
        return;
    }
    if (w->stopping) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    w->prog->conn_new(w, fd);
}

static void srv_listener_closed(kart_req *req, int result)
{
    (void)req;
    (void)result;
}

/* Stops a worker: no more accepts, every connection closed, the loop
 * runs out of handles and returns. */
static void srv_worker_stop(srv_worker *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    kart_sock_close(&w->listener, &w->listener_close_req, srv_listener_closed);
    for (srv_conn *c = w->head.next; c != &w->head;) {
        srv_conn *next = c->next;
        srv_conn_abort(c);
        c = next;
    }
    kart_async_stop(&w->stop);
    if (w->prog->worker_stop)
        w->prog->worker_stop(w);
    if (w->index == 0) {
        kart_signal_stop(&w->sigint);
        kart_signal_stop(&w->sigterm);
    }
}

static void srv_stop_cb(kart_async *a)
{
    srv_worker_stop(a->base.data);
}

static void srv_signal_cb(kart_signal *s, int signum)
{
    (void)signum;
    for (int i = 1; i < srv_nworkers; i++)
        kart_async_send(&srv_workers[i].stop);
    srv_worker_stop(s->base.data);
}

/* Pins the calling thread to cpu. */
static inline void srv_pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
}

/* Sets a worker up on its own thread: its loop (an io_uring loop belongs
 * to the thread that made it), its accept, its stop handle. */
static int srv_worker_setup(srv_worker *w)
{
    if (w->cpu >= 0)
        srv_pin(w->cpu);
    w->head.next = w->head.prev = &w->head;
    kart_loop_options lo = {
        .selector = {.backend = srv_backend, .uring_entries = w->prog->uring_entries}};
    int err = kart_loop_create(&w->loop, &lo);
    if (err < 0)
        return err;
    if (w->prog->worker_init && (err = w->prog->worker_init(w)) < 0)
        return err;
    if ((err = kart_sock_init(w->loop, &w->listener, w->lfd)) < 0)
        return err;
    w->accept_req.data = w;
    if ((err = kart_sock_accept(&w->listener, &w->accept_req, srv_accept_cb)) < 0)
        return err;
    w->stop.base.data = w;
    if ((err = kart_async_init(w->loop, &w->stop)) < 0)
        return err;
    return kart_async_start(&w->stop, srv_stop_cb);
}

static int srv_run(srv_worker *w)
{
    int err = kart_loop_run(w->loop, KART_RUN_DEFAULT);
    if (err < 0) {
        fprintf(stderr, "%s: loop %d: %s\n", w->prog->name, w->index, kart_strerror(err));
        return err;
    }
    kart_loop_io_stats(w->loop, &w->stats);
    kart_loop_free(w->loop);
    return 0;
}

/* --stats: the loops' I/O counters summed, one line on stderr at a clean
 * exit, so that whoever runs the server (kart-bench) sees whether the
 * completion ring overflowed, receives ran out of buffers, or accepts hit
 * the descriptor limit while it was measured. */
static void srv_print_stats(const srv_program *prog, int threads, const char *backend)
{
    kart_io_stats t = {0};
    for (int i = 0; i < threads; i++) {
        const kart_io_stats *s = &srv_workers[i].stats;
        t.native |= s->native;
        t.enters += s->enters;
        t.cq_overflows += s->cq_overflows;
        t.cq_dropped += s->cq_dropped;
        t.enobufs += s->enobufs;
        t.rearms += s->rearms;
        t.accept_fd_limit += s->accept_fd_limit;
        t.accept_dropped += s->accept_dropped;
    }
    fprintf(stderr,
            "%s (%s, %s): %llu ring enters, %llu CQ overflows (%llu completions dropped), "
            "%llu receives paused without a buffer, %llu multishot re-arms, "
            "%llu accepts at the descriptor limit (%llu connections dropped)\n",
            prog->name, backend, t.native ? "native completions" : "emulated completions",
            (unsigned long long)t.enters, (unsigned long long)t.cq_overflows,
            (unsigned long long)t.cq_dropped, (unsigned long long)t.enobufs,
            (unsigned long long)t.rearms, (unsigned long long)t.accept_fd_limit,
            (unsigned long long)t.accept_dropped);
}

static int srv_thread(void *arg)
{
    srv_worker *w = arg;
    w->err = srv_worker_setup(w);
    kart_sem_release(w->ready, 1);
    return w->err < 0 ? 1 : srv_run(w) < 0;
}

/* A listening socket on host:port with SO_REUSEPORT, so that every
 * worker's listener shares the port and the kernel spreads connections. */
static int srv_listen(const char *host, int port, int *bound_port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        len = sizeof(*sin6);
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *bound_port = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
    return fd;
}

static void srv_usage(const srv_program *prog)
{
    const char *name = prog->name;
    fprintf(stderr,
            "usage: %s --port P [--host H] [--threads N] [--backend B] [--stats]\n"
            "  --port P     TCP port (0: pick one; the port is printed when ready)\n"
            "  --host H     numeric IPv4 or IPv6 address to listen on (127.0.0.1)\n"
            "  --threads N  loops, one per thread, each pinned to a CPU (1)\n"
            "  --backend B  kart backend: uring, epoll, poll, select (kart's choice)\n"
            "  --stats      at a clean exit, print the loops' I/O counters on stderr\n",
            name);
    if (prog->usage_extra)
        fputs(prog->usage_extra, stderr);
}

/*
 * Parses the command line, starts the workers, prints
 * "listening on port P (host, N threads, backend)" on stdout when every
 * loop is ready, and runs until SIGINT or SIGTERM. Returns the exit
 * status: 0 after a clean stop.
 */
static int srv_main(const srv_program *prog, int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = -1, threads = 1, stats = 0, took;
    /* Each flag but --help and --stats takes a value: the loop steps over
     * both. */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            srv_usage(prog);
            return 0;
        } else if (strcmp(a, "--stats") == 0) {
            stats = 1;
            i--;
            continue;
        } else if (prog->parse_option && (took = prog->parse_option(a, v)) != 0) {
            if (took < 0)
                return 2;
            continue;
        } else if (!v) {
            srv_usage(prog);
            return 2;
        } else if (strcmp(a, "--port") == 0) {
            port = (int)strtol(v, &end, 10);
        } else if (strcmp(a, "--host") == 0) {
            host = v;
        } else if (strcmp(a, "--threads") == 0) {
            threads = (int)strtol(v, &end, 10);
        } else if (strcmp(a, "--backend") == 0) {
            srv_backend = v;
        } else {
            srv_usage(prog);
            return 2;
        }
        if (end && (*end || port > 65535 || threads < 1 || threads > SRV_MAX_THREADS)) {
            fprintf(stderr, "%s: bad value for %s: %s\n", prog->name, a, v);
            return 2;
        }
    }
    if (port < 0) {
        srv_usage(prog);
        return 2;
    }

    /* The listeners first, so that a port taken or a bad host fails before
     * any thread starts; port 0 picks one for the first and the others
     * share it. */
    for (int i = 0; i < threads; i++) {
        int fd = srv_listen(host, port, &port);
        if (fd < 0) {
            fprintf(stderr, "%s: listen on %s: %s\n", prog->name, host,
                    fd == -EINVAL ? "not a numeric address" : strerror(-fd));
            while (i-- > 0)
                close(srv_workers[i].lfd);
            return 1;
        }
        cpu_set_t allowed;
        int cpu = -1;
        if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0 && CPU_COUNT(&allowed) > 0) {
            /* The i-th CPU this process may run on, round robin. */
            for (int k = 0, seen = 0; k < CPU_SETSIZE; k++)
                if (CPU_ISSET(k, &allowed) && seen++ == i % CPU_COUNT(&allowed)) {
                    cpu = k;
                    break;
                }
        }
        srv_workers[i] = (srv_worker){.prog = prog, .index = i, .cpu = cpu, .lfd = fd};
    }
    srv_nworkers = threads;

    /* SIGINT and SIGTERM are heard by worker 0's loop; blocked before any
     * thread starts so that every thread inherits the block. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    kart_sem ready;
    kart_sem_init(&ready, 0, 0);
    srv_worker *w0 = &srv_workers[0];
    int err = srv_worker_setup(w0);
    if (err == 0) {
        w0->sigint.base.data = w0->sigterm.base.data = w0;
        kart_signal_init(w0->loop, &w0->sigint);
        kart_signal_init(w0->loop, &w0->sigterm);
        if ((err = kart_signal_start(&w0->sigint, srv_signal_cb, SIGINT)) == 0)
            err = kart_signal_start(&w0->sigterm, srv_signal_cb, SIGTERM);
    }
    int started = 1;
    for (; err == 0 && started < threads; started++) {
        srv_worker *w = &srv_workers[started];
        w->ready = &ready;
        char name[16];
        snprintf(name, sizeof(name), "loop-%d", started);
        kart_thread_options to = {.name = name};
        if ((err = kart_thread_start(&w->thread, srv_thread, w, &to)) < 0)
            break;
        kart_sem_acquire(&ready, -1);
        err = w->err;
    }
    if (err < 0) {
        fprintf(stderr, "%s: %s\n", prog->name, kart_strerror(err));
        _exit(1); /* half-started loops on other threads: no clean way back */
    }
    printf("listening on port %d (%s, %d thread%s, %s)\n", port, host, threads,
           threads == 1 ? "" : "s", kart_loop_backend_name(w0->loop));
    fflush(stdout);

    const char *backend = kart_loop_backend_name(w0->loop);
    int status = srv_run(w0) < 0;
    for (int i = 1; i < threads; i++) {
        int result = 0;
        kart_thread_join(srv_workers[i].thread, -1, &result);
        status |= result != 0;
    }
    if (stats)
        srv_print_stats(prog, threads, backend);
    return status;
}

#endif

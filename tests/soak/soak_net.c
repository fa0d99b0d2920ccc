/*
 * tests/soak/soak_net.c — the example servers (examples/echo-server and
 * examples/http-server, the shipped programs) on every backend, each under
 * a client thread of the soak process that checks every byte it gets back.
 *
 * A client keeps a few connections to its server, sends requests of
 * varied sizes over them in turn, and closes and reopens one of them every
 * RECONNECT_EVERY requests, so that accepts and closes go on all run long:
 * a server that leaks a descriptor or a buffer per connection shows it.
 */
#include "soak.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_CONNS 4
#define RECONNECT_EVERY 97
#define ECHO_MAX 16384

static pthread_t client_threads[SOAK_MAX_SERVERS];
static int nclients;

/* Forks and execs one server with its stdout on a pipe; reads "listening
 * on port P" from it. The child dies with the soak process. */
static int server_exec(soak_server *s)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", soak.examples, s->http ? "http-server" : "echo-server");
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 1);
        char *argv[] = {path,        "--port", "0",         "--host",           "127.0.0.1",
                        "--threads", "1",      "--backend", (char *)s->backend, NULL};
        execv(path, argv);
        _exit(127);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    char line[256];
    int port = -1;
    if (f && fgets(line, sizeof(line), f)) {
        const char *q = strstr(line, "port ");
        if (q)
            port = atoi(q + 5);
    }
    if (f)
        fclose(f);
    else
        close(p[0]);
    s->pid = pid;
    if (port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -EPROTO;
    }
    s->port = port;
    return 0;
}

int soak_servers_start(soak_server *s, int max)
{
    static const char *backends[] = {
#ifdef KART_HAVE_URING
        "uring",
#endif
        "epoll", "poll", "select"};
    int n = 0;
    for (size_t b = 0; b < sizeof(backends) / sizeof(backends[0]); b++) {
        for (int http = 0; http <= 1 && n < max; http++) {
            soak_server *v = &s[n];
            memset(v, 0, sizeof(*v));
            v->http = http;
            v->backend = backends[b];
            snprintf(v->name, sizeof(v->name), "%s/%s", http ? "http" : "echo", backends[b]);
            v->comp.name = v->name;
            int rc = server_exec(v);
            if (rc < 0) {
                fprintf(stderr, "soak: %s did not start (%s)\n", v->name, strerror(-rc));
                exit(1);
            }
            n++;
        }
    }
    /* Its descriptors once serving, before any client came. */
    usleep(100000);
    for (int i = 0; i < n; i++)
        s[i].fds_idle = soak_fd_count(s[i].pid);
    return n;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t r = recv(fd, p, len, 0);
        if (r == 0)
            return -ECONNRESET;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* One echo: len bytes of the connection's stream out, the same back. */
static int echo_once(soak_server *s, int fd, uint64_t *off, uint64_t seed, size_t len,
                     unsigned char *out, unsigned char *in)
{
    soak_pattern(out, len, seed, *off);
    int rc = write_all(fd, out, len);
    if (rc == 0)
        rc = read_all(fd, in, len);
    if (rc < 0) {
        soak_error(&s->comp, "%s: echo of %zu bytes: %s", s->name, len, strerror(-rc));
        return rc;
    }
    if (memcmp(in, out, len) != 0) {
        soak_error(&s->comp, "%s: echo of %zu bytes at offset %llu came back different", s->name,
                   len, (unsigned long long)*off);
        return -EPROTO;
    }
    *off += len;
    return 0;
}

/* One request on a keep-alive connection: the 200 response, its headers
 * up to the blank line, then the Content-Length bytes of its body. */
static int http_once(soak_server *s, int fd)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    int rc = write_all(fd, req, sizeof(req) - 1);
    char head[1024];
    size_t n = 0;
    while (rc == 0) {
        if (n == sizeof(head) - 1) {
            rc = -EMSGSIZE;
            break;
        }
        rc = read_all(fd, head + n, 1);
        if (rc == 0 && ++n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (rc < 0) {
        soak_error(&s->comp, "%s: request: %s", s->name, strerror(-rc));
        return rc;
    }
    head[n] = '\0';
    const char *cl = strstr(head, "Content-Length: ");
    if (strncmp(head, "HTTP/1.1 200 ", 13) != 0 || !cl) {
        soak_error(&s->comp, "%s: unexpected response head: %.60s", s->name, head);
        return -EPROTO;
    }
    size_t len = (size_t)strtoul(cl + 16, NULL, 10);
    char body[256];
    if (len == 0 || len >= sizeof(body) || (rc = read_all(fd, body, len)) < 0) {
        soak_error(&s->comp, "%s: body of %zu bytes: %s", s->name, len, strerror(-rc));
        return -EPROTO;
    }
    body[len] = '\0';
    if (strcmp(body, "Hello, World!") != 0) {
        soak_error(&s->comp, "%s: wrong body '%s'", s->name, body);
        return -EPROTO;
    }
    return 0;
}

static void *client_main(void *arg)
{
    soak_server *s = arg;
    int fd[CLIENT_CONNS];
    uint64_t off[CLIENT_CONNS], seed[CLIENT_CONNS];
    uint64_t rnd = (uint64_t)s->port * 0x9E3779B97F4A7C15ull | 1;
    unsigned char *out = malloc(ECHO_MAX), *in = malloc(ECHO_MAX);
    if (!out || !in) {
        soak_error(&s->comp, "%s: out of memory", s->name);
        return NULL;
    }
    for (int i = 0; i < CLIENT_CONNS; i++) {
        fd[i] = -1;
        off[i] = 0;
        seed[i] = soak_rand(&rnd);
    }
    int64_t start = soak_now_ns();
    uint64_t n = 0;
    while (!atomic_load(&soak.stop)) {
        int i = (int)(n % CLIENT_CONNS);
        if (fd[i] < 0) {
            fd[i] = tcp_connect(s->port);
            if (fd[i] < 0) {
                soak_error(&s->comp, "%s: connect: %s", s->name, strerror(-fd[i]));
                fd[i] = -1;
                usleep(100000);
                continue;
            }
            off[i] = 0;
            seed[i] = soak_rand(&rnd);
        }
        atomic_fetch_add(&s->comp.sent, 1);
        int rc;
        if (s->http) {
            rc = http_once(s, fd[i]);
        } else {
            /* Mostly small requests, now and then one of many segments.
             * The warm-up sends only the largest: a server's receive
             * buffers (on io_uring 256 of 16 KiB, taken in ring order)
             * are allocated once but their pages are touched as data
             * first lands in them; with small requests that filling-in
             * goes on for minutes and would read as growth. */
            size_t len = soak_now_ns() < soak.warm_until
                             ? ECHO_MAX
                             : 1 + soak_rand(&rnd) % ((soak_rand(&rnd) % 16) == 0 ? ECHO_MAX : 512);
            rc = echo_once(s, fd[i], &off[i], seed[i], len, out, in);
        }
        if (rc == 0) {
            atomic_fetch_add(&s->comp.done, 1);
            atomic_fetch_add(&s->comp.ops, 1);
        }
        n++;
        /* The warm-up reconnects ten times as often: a server's memory
         * for connections (its allocator's free lists, the http server's
         * reply buffers) reaches its steady state by the number of
         * connections it has served, not by the time. */
        bool warm = soak_now_ns() < soak.warm_until;
        if (rc < 0 || soak_rand(&rnd) % (warm ? RECONNECT_EVERY / 10 : RECONNECT_EVERY) == 0) {
            close(fd[i]);
            fd[i] = -1;
            atomic_fetch_add(&s->comp.events, 1);
        }
        soak_pace(start, n);
    }
    for (int i = 0; i < CLIENT_CONNS; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    free(out);
    free(in);
    return NULL;
}

int soak_clients_start(soak_server *s, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&client_threads[i], NULL, client_main, &s[i]);
        if (rc != 0)
            return -rc;
        nclients++;
    }
    return 0;
}

void soak_clients_join(void)
{
    for (int i = 0; i < nclients; i++)
        pthread_join(client_threads[i], NULL);
    nclients = 0;
}

bool soak_servers_stop(soak_server *s, int n)
{
    bool ok = true;
    for (int i = 0; i < n; i++) {
        long fds = -1;
        /* The server sees the clients' closes a moment after they are made. */
        for (int t = 0; t < 300; t++) {
            fds = soak_fd_count(s[i].pid);
            if (fds == s[i].fds_idle)
                break;
            usleep(10000);
        }
        if (fds != s[i].fds_idle) {
            fprintf(stderr, "soak: FAIL %s holds %ld descriptors with no client, %ld when idle\n",
                    s[i].name, fds, s[i].fds_idle);
            ok = false;
        }
        kill(s[i].pid, SIGTERM);
    }
    for (int i = 0; i < n; i++) {
        int st = 0;
        int64_t end = soak_now_ns() + 5000000000ll;
        pid_t r;
        while ((r = waitpid(s[i].pid, &st, WNOHANG)) == 0 && soak_now_ns() < end)
            usleep(10000);
        if (r == 0) {
            kill(s[i].pid, SIGKILL);
            waitpid(s[i].pid, &st, 0);
            fprintf(stderr, "soak: FAIL %s did not exit within 5 s of SIGTERM\n", s[i].name);
            ok = false;
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "soak: FAIL %s ended with status %#x after SIGTERM\n", s[i].name, st);
            ok = false;
        }
    }
    return ok;
}

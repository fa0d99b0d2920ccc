/*
 * core/listener.c — Python's Listener and Client: unix sockets (paths and
 * the abstract namespace) and TCP over IPv4 and IPv6, with the authkey
 * handshake of auth.c on every connection when a key is given.
 *
 * Addresses are strings (see kart/conn.h). A listener copies its authkey,
 * so the caller's may go away; it unlinks the socket path it bound when it
 * closes, as Python's does.
 */
#include "auth_private.h"
#include "conn_private.h"
#include "deadline.h"
#include "fault.h"
#include "listener_private.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_BACKLOG 128


/* "65535" and nothing else after the colon. */
static int parse_port(const char *s, in_port_t *port)
{
    if (!*s || strlen(s) > 5)
        return -EINVAL;
    unsigned v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *port = htons((in_port_t)v);
    return 0;
}

/* Whether s is "host:digits" (a TCP address) rather than a unix path. */
static const char *tcp_colon(const char *s)
{
    if (strchr(s, '/'))
        return NULL;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1])
        return NULL;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return NULL;
    return colon;
}

int kart__parse_address(const char *a, struct sockaddr_storage *ss, socklen_t *len);
int kart__parse_address(const char *a, struct sockaddr_storage *ss, socklen_t *len)
{
    if (!a || !*a)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (a[0] == '[') {
        const char *close = strstr(a, "]:");
        if (!close || close - a - 1 >= INET6_ADDRSTRLEN)
            return -EINVAL;
        char host[INET6_ADDRSTRLEN];
        memcpy(host, a + 1, (size_t)(close - a - 1));
        host[close - a - 1] = 0;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -EINVAL;
        *len = sizeof(*s6);
        return parse_port(close + 2, &s6->sin6_port);
    }
    const char *colon = tcp_colon(a);
    if (a[0] != '@' && colon) {
        char host[256];
        if ((size_t)(colon - a) >= sizeof(host))
            return -EINVAL;
        memcpy(host, a, (size_t)(colon - a));
        host[colon - a] = 0;
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        in_port_t port;
        int err = parse_port(colon + 1, &port);
        if (err)
            return err;
        if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = port;
            *len = sizeof(*s4);
            return 0;
        }
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
        if (getaddrinfo(host, NULL, &hints, &res) != 0)
            return -EHOSTUNREACH;
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *len = res->ai_addrlen;
        freeaddrinfo(res);
        if (ss->ss_family == AF_INET)
            ((struct sockaddr_in *)ss)->sin_port = port;
        else
            ((struct sockaddr_in6 *)ss)->sin6_port = port;
        return 0;
    }
    struct sockaddr_un *su = (struct sockaddr_un *)ss;
    su->sun_family = AF_UNIX;
    size_t n = strlen(a);
    if (n >= sizeof(su->sun_path))
        return -EINVAL;
    memcpy(su->sun_path, a, n);
    if (a[0] == '@') {
        /* The abstract namespace: a leading NUL, and no terminator. */
        su->sun_path[0] = 0;
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

static int format_address(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t size)
{
    char tmp[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
    int n;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        char h[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &s4->sin_addr, h, sizeof(h));
        n = snprintf(tmp, sizeof(tmp), "%s:%u", h, ntohs(s4->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        char h[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &s6->sin6_addr, h, sizeof(h));
        n = snprintf(tmp, sizeof(tmp), "[%s]:%u", h, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_un *su = (const struct sockaddr_un *)ss;
        size_t plen = len - offsetof(struct sockaddr_un, sun_path);
        if (plen > 0 && su->sun_path[0] == 0) {
            tmp[0] = '@';
            memcpy(tmp + 1, su->sun_path + 1, plen - 1);
            tmp[plen] = 0;
            n = (int)plen;
        } else {
            n = snprintf(tmp, sizeof(tmp), "%.*s", (int)plen, su->sun_path);
            n = (int)strlen(tmp);
        }
    }
    if ((size_t)n >= size)
        return -ENOSPC;
    memcpy(buf, tmp, (size_t)n + 1);
    return n;
}

KART_API int kart_listener_create(kart_listener **out, const char *address,
                                  const kart_listener_options *opts)
{
    if (!out || !address)
        return -EINVAL;
    kart_listener_options none = {0};
    if (!opts)
        opts = &none;
    if (opts->backlog < 0)
        return -EINVAL;
    int err = kart__auth_check(&opts->auth);
    if (err)
        return err;
    if (opts->auth.digest && strlen(opts->auth.digest) >= 16)
        return -EINVAL;
    kart_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->fd = -1;
    l->wake_fd = -1;
    err = kart__parse_address(address, &l->addr, &l->addrlen);
    if (err)
        goto fail;
    if (opts->auth.authkey) {
        l->key = malloc(opts->auth.authkey_len ? opts->auth.authkey_len : 1);
        if (!l->key) {
            err = -ENOMEM;
            goto fail;
        }
        memcpy(l->key, opts->auth.authkey, opts->auth.authkey_len);
        l->auth = opts->auth;
        l->auth.authkey = l->key;
        if (opts->auth.digest) {
            strcpy(l->digest, opts->auth.digest);
            l->auth.digest = l->digest;
        }
    }
    /* Non-blocking: accepters wait in poll(), and when several wake for
     * one peer the losers' accept4 must say EAGAIN, not block (past their
     * timeout, and out of free's reach). */
    l->fd = kart__sys_socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd < 0) {
        err = -errno;
        goto fail;
    }
    if (l->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    /* A unix path is made 0600 (docs/SECURITY.md): Linux gives the path
     * the socket's own mode less the umask, so the mode is set on the
     * socket before the bind and the path never exists more open. Where
     * fchmod on a socket is refused (BSD), the path is narrowed after the
     * bind, still before the listen, so nobody can connect in between.
     * The bind itself never follows a planted symlink (-EADDRINUSE). */
    const struct sockaddr_un *su = (const struct sockaddr_un *)&l->addr;
    bool made_path = l->addr.ss_family == AF_UNIX && su->sun_path[0];
    bool narrowed = made_path && fchmod(l->fd, 0600) == 0;
    if (kart__sys_bind(l->fd, (struct sockaddr *)&l->addr, l->addrlen) != 0) {
        err = -errno;
        goto fail;
    }
    /* From here on a unix path exists, made by the bind: a failure must
     * remove it, or the address stays taken (-EADDRINUSE) for good. */
    if (made_path && !narrowed && chmod(su->sun_path, 0600) != 0)
        err = -errno;
    else if (kart__sys_listen(l->fd, opts->backlog ? opts->backlog : DEFAULT_BACKLOG) != 0)
        err = -errno;
    else if (made_path && !(l->unlink_path = strdup(su->sun_path)))
        err = -ENOMEM;
    if (err) {
        if (made_path)
            unlink(su->sun_path);
        goto fail;
    }
    if (l->addr.ss_family != AF_UNIX) {
        /* Port 0 picked one: read the bound address back. */
        l->addrlen = sizeof(l->addr);
        getsockname(l->fd, (struct sockaddr *)&l->addr, &l->addrlen);
    }
    /* The fd that free uses to wake blocking accepts: made now, so that
     * accepting holds no more fds than the listener already does. */
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wake_fd < 0) {
        err = -errno;
        if (l->unlink_path)
            unlink(l->unlink_path);
        goto fail;
    }
    l->wake_pid = getpid();
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->idle, NULL);
    *out = l;
    return 0;
fail:
    if (l->fd >= 0)
        close(l->fd);
    free(l->unlink_path);
    free(l->key);
    free(l);
    return err;
}

void kart__listener_note_peer(kart_listener *l, const struct sockaddr_storage *ss, socklen_t len)
{
    pthread_mutex_lock(&l->mu);
    memcpy(&l->last, ss, len <= sizeof(l->last) ? len : sizeof(l->last));
    l->lastlen = len;
    l->have_last = true;
    pthread_mutex_unlock(&l->mu);
}

/* Enters an accept: the wake fd of this process (a forked child makes its
 * own: the inherited one is the parent's, which its free would wake).
 * Returns it, or a negative errno. */
static int accept_enter(kart_listener *l)
{
    pthread_mutex_lock(&l->mu);
    int err = 0;
    pid_t me = getpid();
    if (l->wake_fd < 0 || l->wake_pid != me) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) {
            err = -errno;
        } else {
            if (l->wake_fd >= 0)
                close(l->wake_fd);
            l->wake_fd = fd;
            l->wake_pid = me;
        }
    }
    if (err == 0) {
        l->active++;
        err = l->wake_fd;
    }
    pthread_mutex_unlock(&l->mu);
    return err;
}

static void accept_leave(kart_listener *l)
{
    pthread_mutex_lock(&l->mu);
    if (--l->active == 0 && l->closing)
        pthread_cond_broadcast(&l->idle);
    pthread_mutex_unlock(&l->mu);
}

/* Waits for a peer on the listening fd or for free on the wake fd:
 * 1 (a peer may be there), -ECANCELED, -ETIMEDOUT or an errno. */
static int wait_peer(kart_listener *l, int wake, int64_t deadline)
{
    struct pollfd p[2] = {{.fd = l->fd, .events = POLLIN}, {.fd = wake, .events = POLLIN}};
    for (;;) {
        struct timespec ts, *tsp = NULL;
        int64_t left = 0;
        if (deadline != KART__NO_DEADLINE) {
            left = deadline - kart_now_ns();
            if (left < 0)
                left = 0;
            ts = kart__timespec(left);
            tsp = &ts;
        }
        int r = kart__sys_ppoll(p, 2, tsp, NULL);
        if (r > 0)
            return p[1].revents ? -ECANCELED : (p[0].revents & POLLNVAL) ? -EBADF : 1;
        if (r == 0) {
            if (left == 0)
                return -ETIMEDOUT;
            continue;
        }
        if (errno != EINTR)
            return -errno;
    }
}

/* Accepts one peer and runs the handshake; between accept_enter and
 * accept_leave. */
static int accept_one(kart_listener *l, int wake, kart_conn **out, int64_t timeout_ns)
{
    int64_t deadline = kart__deadline(timeout_ns);
    int fd;
    struct sockaddr_storage peer;
    socklen_t plen;
    for (;;) {
        int p = wait_peer(l, wake, deadline);
        if (p < 0)
            return p;
        plen = sizeof(peer);
        fd =
            kart__sys_accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0)
            break;
        /* Another thread or process took it first, or the peer left. */
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
            continue;
        return -errno;
    }
    kart__listener_note_peer(l, &peer, plen);
    /* accept4 made it non-blocking so that the listener's O_NONBLOCK state
     * never matters; connections are blocking. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    kart_conn *c;
    int err = kart_conn_from_fd(&c, fd, KART_CONN_READABLE | KART_CONN_WRITABLE);
    if (err) {
        close(fd);
        return err;
    }
    if (l->auth.authkey) {
        kart__accepting me = {.fd = fd};
        pthread_mutex_lock(&l->mu);
        bool closing = l->closing;
        if (!closing) {
            me.next = l->accepting;
            l->accepting = &me;
        }
        pthread_mutex_unlock(&l->mu);
        if (closing) {
            kart_conn_close(c);
            return -ECANCELED;
        }
        int64_t hd = kart__auth_deadline(&l->auth);
        err = kart__auth_deliver(c, &l->auth, hd);
        if (err == 0)
            err = kart__auth_answer(c, &l->auth, hd);
        pthread_mutex_lock(&l->mu);
        for (kart__accepting **pp = &l->accepting; *pp; pp = &(*pp)->next) {
            if (*pp == &me) {
                *pp = me.next;
                break;
            }
        }
        closing = l->closing;
        pthread_mutex_unlock(&l->mu);
        if (closing && err)
            err = -ECANCELED; /* free cut the handshake short */
        if (err) {
            kart_conn_close(c);
            return err;
        }
    }
    *out = c;
    return 0;
}

KART_API int kart_listener_accept(kart_listener *l, kart_conn **out, int64_t timeout_ns)
{
    if (!l || !out)
        return -EINVAL;
    int wake = accept_enter(l);
    if (wake < 0)
        return wake;
    int err = accept_one(l, wake, out, timeout_ns);
    accept_leave(l);
    return err;
}

KART_API int kart_listener_address(const kart_listener *l, char *buf, size_t size)
{
    if (!l || (!buf && size > 0))
        return -EINVAL;
    return format_address(&l->addr, l->addrlen, buf, size);
}

KART_API int kart_listener_fileno(const kart_listener *l)
{
    return l ? l->fd : -EINVAL;
}

KART_API int kart_listener_last_accepted(kart_listener *l, char *buf, size_t size)
{
    if (!l || (!buf && size > 0))
        return -EINVAL;
    pthread_mutex_lock(&l->mu);
    struct sockaddr_storage ss = l->last;
    socklen_t len = l->lastlen;
    bool have = l->have_last;
    pthread_mutex_unlock(&l->mu);
    if (!have)
        return -ENOTCONN;
    return format_address(&ss, len, buf, size);
}

KART_API void kart_listener_free(kart_listener *l)
{
    if (!l)
        return;
    kart__listener_loop_stop(l);
    /* Blocking accepts in other threads: wake them (the eventfd), cut
     * their handshakes short, and wait until they have left. */
    pthread_mutex_lock(&l->mu);
    l->closing = true;
    if (l->active > 0) {
        uint64_t one = 1;
        if (l->wake_fd >= 0 && write(l->wake_fd, &one, sizeof(one)) < 0) {
            /* Full (never: one write per free); the accepters still leave
             * within their timeouts. */
        }
        for (kart__accepting *a = l->accepting; a; a = a->next)
            shutdown(a->fd, SHUT_RDWR);
        while (l->active > 0)
            pthread_cond_wait(&l->idle, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->idle);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    close(l->fd);
    if (l->unlink_path)
        unlink(l->unlink_path);
    free(l->unlink_path);
    free(l->key);
    free(l);
}

/* A unix connect waits (when the listener's backlog is full) for at most
 * SO_SNDTIMEO: set it to the time left, connect blocking, clear it. */
static int connect_unix_dl(int fd, const struct sockaddr_storage *ss, socklen_t len,
                           int64_t deadline)
{
    struct timeval tv = {0, 0};
    if (deadline != KART__NO_DEADLINE) {
        int64_t left = deadline - kart_now_ns();
        if (left < 1000)
            left = 1000; /* 0 would mean no limit */
        struct timespec ts = kart__timespec(left);
        tv = (struct timeval){ts.tv_sec, (suseconds_t)(ts.tv_nsec / 1000)};
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int err = 0;
    while (kart__sys_connect(fd, (const struct sockaddr *)ss, len) != 0) {
        err = -errno;
        if (err != -EINTR)
            break;
        err = 0;
    }
    if (err == -EISCONN) /* an interrupted connect went through after all */
        err = 0;
    if (err == -EAGAIN || err == -EINPROGRESS)
        err = -ETIMEDOUT;
    struct timeval zero = {0, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof(zero));
    return err;
}

static int connect_dl(int fd, const struct sockaddr_storage *ss, socklen_t len, int64_t deadline)
{
    if (ss->ss_family == AF_UNIX)
        return connect_unix_dl(fd, ss, len, deadline);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    int err = 0;
    if (kart__sys_connect(fd, (const struct sockaddr *)ss, len) != 0) {
        err = -errno;
        if (err == -EINPROGRESS || err == -EINTR) {
            err = kart__poll_fd(fd, POLLOUT, deadline);
            if (err > 0) {
                int so = 0;
                socklen_t sl = sizeof(so);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
                err = -so;
            }
        }
    }
    if (err == 0 && fcntl(fd, F_SETFL, fl) < 0)
        err = -errno;
    return err;
}

KART_API int kart_conn_connect(kart_conn **out, const char *address, const kart_auth *auth)
{
    if (!out || !address)
        return -EINVAL;
    kart_auth none = {0};
    if (!auth)
        auth = &none;
    int err = kart__auth_check(auth);
    if (err)
        return err;
    struct sockaddr_storage ss;
    socklen_t len;
    err = kart__parse_address(address, &ss, &len);
    if (err)
        return err;
    int64_t deadline = kart__auth_deadline(auth);
    int fd = kart__sys_socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    err = connect_dl(fd, &ss, len, deadline);
    if (err) {
        close(fd);
        return err;
    }
    kart_conn *c;
    err = kart_conn_from_fd(&c, fd, KART_CONN_READABLE | KART_CONN_WRITABLE);
    if (err) {
        close(fd);
        return err;
    }
    if (auth->authkey) {
        err = kart__auth_answer(c, auth, deadline);
        if (err == 0)
            err = kart__auth_deliver(c, auth, deadline);
        if (err) {
            kart_conn_close(c);
            return err;
        }
    }
    *out = c;
    return 0;
}

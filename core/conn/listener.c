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

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_BACKLOG 128

struct kart_listener {
    int fd;
    char *unlink_path; /* the socket file to remove on close, or NULL */
    kart_auth auth;    /* authkey points at key below */
    void *key;
    char digest[16];
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

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
    l->fd = kart__sys_socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        err = -errno;
        goto fail;
    }
    if (l->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (kart__sys_bind(l->fd, (struct sockaddr *)&l->addr, l->addrlen) != 0) {
        err = -errno;
        goto fail;
    }
    /* From here on a unix path exists, made by the bind: a failure must
     * remove it, or the address stays taken (-EADDRINUSE) for good. */
    const struct sockaddr_un *su = (const struct sockaddr_un *)&l->addr;
    bool made_path = l->addr.ss_family == AF_UNIX && su->sun_path[0];
    if (kart__sys_listen(l->fd, opts->backlog ? opts->backlog : DEFAULT_BACKLOG) != 0)
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
    *out = l;
    return 0;
fail:
    if (l->fd >= 0)
        close(l->fd);
    free(l->key);
    free(l);
    return err;
}

KART_API int kart_listener_accept(kart_listener *l, kart_conn **out, int64_t timeout_ns)
{
    if (!l || !out)
        return -EINVAL;
    int64_t deadline = kart__deadline(timeout_ns);
    int fd;
    for (;;) {
        int p = kart__poll_fd(l->fd, POLLIN, deadline);
        if (p < 0)
            return p;
        fd = kart__sys_accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0)
            break;
        /* Another thread or process took it first, or the peer left. */
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
            continue;
        return -errno;
    }
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
        int64_t hd = kart__auth_deadline(&l->auth);
        err = kart__auth_deliver(c, &l->auth, hd);
        if (err == 0)
            err = kart__auth_answer(c, &l->auth, hd);
        if (err) {
            kart_conn_close(c);
            return err;
        }
    }
    *out = c;
    return 0;
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

KART_API int kart_listener_free(kart_listener *l)
{
    if (!l)
        return 0;
    close(l->fd);
    if (l->unlink_path)
        unlink(l->unlink_path);
    free(l->unlink_path);
    free(l->key);
    free(l);
    return 0;
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

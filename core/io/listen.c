/*
 * core/io/listen.c — kart_listen(): the listening socket every server
 * starts with, made the way asyncio's create_server() makes it
 * (SO_REUSEADDR on, dual-stack "::" when no host is given).
 */
#include "fault.h"

#include <kart/io.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A non-blocking, close-on-exec stream socket; macOS has no SOCK_NONBLOCK. */
static int stream_socket(int family)
{
#ifdef SOCK_NONBLOCK
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd >= 0) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
#endif
    return fd < 0 ? -errno : fd;
}

/* One candidate address: a socket bound and listening, or a negative errno. */
static int try_addr(const struct sockaddr *sa, socklen_t len, const kart_listen_options *o)
{
    int fd = stream_socket(sa->sa_family);
    if (fd < 0)
        return fd;
    int one = 1, err = 0;
    if (!o->no_reuse_addr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        err = -errno;
#ifdef SO_REUSEPORT
    if (!err && o->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        err = -errno;
#else
    if (!err && o->reuse_port)
        err = -ENOTSUP;
#endif
    if (!err && sa->sa_family == AF_INET6) {
        int v6only = o->v6only ? 1 : 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    }
    if (!err && bind(fd, sa, len) < 0)
        err = -errno;
    if (!err && listen(fd, o->backlog ? o->backlog : SOMAXCONN) < 0)
        err = -errno;
    if (err) {
        close(fd);
        return err;
    }
    return fd;
}

static int resolve_error(int gai)
{
    switch (gai) {
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return errno ? -errno : -ENOENT;
    default:
        return -ENOENT;
    }
}

KART_API int kart_listen(const char *host, int port, const kart_listen_options *opts, int *fd_out,
                         int *port_out)
{
    kart_listen_options o = opts ? *opts : (kart_listen_options){0};
    if (!fd_out || port < 0 || port > 65535 || o.backlog < 0)
        return -EINVAL;
    int fd = -1;
    if (!host || !*host) {
        /* Every address: dual-stack IPv6 where there is IPv6, else IPv4. */
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
                                  .sin6_port = htons((uint16_t)port),
                                  .sin6_addr = IN6ADDR_ANY_INIT};
        fd = try_addr((struct sockaddr *)&a6, sizeof(a6), &o);
        if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL) {
            struct sockaddr_in a4 = {.sin_family = AF_INET,
                                     .sin_port = htons((uint16_t)port),
                                     .sin_addr.s_addr = htonl(INADDR_ANY)};
            fd = try_addr((struct sockaddr *)&a4, sizeof(a4), &o);
        }
    } else {
        char service[8];
        snprintf(service, sizeof(service), "%d", port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        int gai = getaddrinfo(host, service, &hints, &res);
        if (gai != 0)
            return resolve_error(gai);
        fd = -ENOENT;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            fd = try_addr(ai->ai_addr, ai->ai_addrlen, &o);
            if (fd >= 0)
                break;
        }
        freeaddrinfo(res);
    }
    if (fd < 0)
        return fd;
    if (port_out) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    }
    *fd_out = fd;
    return 0;
}

/*
 * fuzz/fuzz_address.c — libFuzzer target for the address parser every
 * listener and client goes through (core/conn/listener.c:
 * kart__parse_address): "host:port", "[v6]:port", "/unix/path" and
 * "@abstract". An address may come from a peer (a manager's address
 * handed on by another process, a config file), so the parser must never
 * read or write past its buffers, and what it accepts must be a socket
 * address of the declared length and family. A TCP form whose host is not
 * a dotted IPv4 address is skipped: it would go to the resolver (no
 * network here, and a resolver is not kart's to fuzz).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int kart__parse_address(const char *a, struct sockaddr_storage *ss, socklen_t *len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Would the parser ask the resolver? A TCP form ("host:digits", not '@'
 * or '[') whose host inet_pton does not take. */
static int needs_resolver(const char *a)
{
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a || a[0] == '@' || a[0] == '[' || !colon[1])
        return 0;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    char host[256];
    struct in_addr in;
    if ((size_t)(colon - a) >= sizeof host)
        return 0; /* refused before any lookup */
    memcpy(host, a, (size_t)(colon - a));
    host[colon - a] = 0;
    return inet_pton(AF_INET, host, &in) != 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *a = malloc(size + 1);
    if (!a)
        return 0;
    memcpy(a, data, size);
    a[size] = 0;
    if (needs_resolver(a)) {
        free(a);
        return 0;
    }
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int err = kart__parse_address(a, &ss, &len);
    if (err == 0) {
        if (len == 0 || len > sizeof ss)
            abort();
        if (ss.ss_family == AF_INET && len != sizeof(struct sockaddr_in))
            abort();
        if (ss.ss_family == AF_INET6 && len != sizeof(struct sockaddr_in6))
            abort();
        if (ss.ss_family == AF_UNIX) {
            /* the path as given (NUL first for '@'), within sun_path */
            size_t n = strlen(a);
            if (n >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
                len < offsetof(struct sockaddr_un, sun_path) + n)
                abort();
        }
        if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6 && ss.ss_family != AF_UNIX)
            abort();
    } else if (err != -EINVAL && err != -EHOSTUNREACH) {
        abort();
    }
    free(a);
    return 0;
}

/*
 * examples/console_wire.h — the messages between build/kart-console and
 * the admin console of the example servers (examples/console.h), after
 * kart's authkey handshake (kart/conn.h). docs/console.md describes them.
 *
 * Every message is one kart_conn message (Python's multiprocessing framing:
 * a 4-byte length, then the payload), whose first byte says what it is.
 * The framing makes partial reads the library's business and a peer killed
 * in the middle of a message a clean error (KART_ETRUNCATED) instead of
 * half a key or half a window size.
 *
 * Client to server:
 *   'H' hello, first and once: version (1 byte, CONSOLE_WIRE_VERSION),
 *       flags (1 byte: CONSOLE_HELLO_TTY when the client's terminal is a
 *       tty, which makes the server's editor a terminal editor), cols and
 *       rows (2 bytes each, big-endian, 0 0 when unknown), then
 *       "NAME\0TERM" (the operator's name, 1-32 of [A-Za-z0-9._-] and not
 *       starting with '.', and $TERM, possibly empty).
 *   'D' terminal bytes, as typed (any length up to CONSOLE_WIRE_MAX - 1).
 *   'W' window size: cols and rows, 2 bytes each, big-endian, nonzero.
 *   'E' end of input (the client's stdin ended): the line typed so far
 *       runs, then the session ends. A connection that ends without 'E'
 *       drops the half-typed line instead of running it.
 * Server to client:
 *   'D' terminal bytes, to write as they are.
 *   'X' the session is over: the text that follows (may be empty) is why,
 *       for the client to print; the server closes the connection next.
 *       A connection that ends without 'X' was lost.
 */
#ifndef KART_EXAMPLES_CONSOLE_WIRE_H
#define KART_EXAMPLES_CONSOLE_WIRE_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define CONSOLE_WIRE_VERSION 1
/* The longest message either side accepts. */
#define CONSOLE_WIRE_MAX 65536
#define CONSOLE_HELLO_TTY 0x1
#define CONSOLE_NAME_MAX 32
/* The longest authkey file (bytes). */
#define CONSOLE_AUTHKEY_MAX 4096

/* 1 when name is an operator name the server accepts (see above). */
static inline int console_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > CONSOLE_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/*
 * Reads an authkey file into buf (cap bytes): its bytes as they are, less
 * one trailing newline (so that `echo secret > f` and a file written with
 * printf give the same key). Refuses a file that others than its owner may
 * read or write (as ssh refuses such a key), an empty key, and a key over
 * cap bytes. Returns the key's length, or -1 with a message in why.
 */
static inline ssize_t console_read_authkey(const char *path, unsigned char *buf, size_t cap,
                                           char *why, size_t whycap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whycap, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whycap, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(why, whycap, "%s: mode %03o lets others read or change the key (chmod 600 it)",
                 path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            snprintf(why, whycap, "%s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n == cap) {
            char extra;
            if (read(fd, &extra, 1) != 0) {
                snprintf(why, whycap, "%s: a key longer than %zu bytes", path, cap - 1);
                close(fd);
                return -1;
            }
            break;
        }
    }
    close(fd);
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n == 0) {
        snprintf(why, whycap, "%s: the key is empty", path);
        return -1;
    }
    return (ssize_t)n;
}

#endif

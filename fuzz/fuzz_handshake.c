/*
 * fuzz/fuzz_handshake.c — libFuzzer target for the authkey handshake: the
 * pure parts (Python's digest-prefix split, the response and its check) on
 * the raw input, then both halves of the handshake, answer_challenge and
 * deliver_challenge, against a peer whose every byte is the input (written
 * into a socketpair before the call, then the peer's side shut). Whatever
 * comes in, each must end with 0 or a documented error, never crash, and
 * never read past a 256-byte message.
 */
#include "auth_private.h"
#include "conn_private.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char KEY[] = "fuzz";

static int documented(int err)
{
    return err == 0 || err == KART_EAUTH || err == KART_EHANDSHAKE || err == KART_EEOF ||
           err == KART_ETRUNCATED || err == KART_EBADFRAME || err == -EMSGSIZE || err == -EPIPE ||
           err == -ECONNRESET; /* a timeout is KART_EHANDSHAKE */
}

static void pure(const uint8_t *data, size_t size)
{
    size_t off;
    int d = kart__auth_split(data, size, &off);
    if (d != KART_EHANDSHAKE && d != KART__AUTH_LEGACY && (d < 0 || d > 4 || off > size))
        abort();
    uint8_t resp[KART__AUTH_MAX_RESPONSE];
    size_t rn;
    int err = kart__auth_response(KEY, 4, data, size, resp, &rn);
    if (err == 0) {
        if (rn > sizeof(resp) || kart__auth_verify(KEY, 4, data, size, resp, rn, 0) != 0)
            abort();
    } else if (err != KART_EHANDSHAKE) {
        abort();
    }
    err = kart__auth_verify(KEY, 4, (const uint8_t *)"challenge", 9, data, size, 0);
    if (err != 0 && err != KART_EAUTH && err != KART_EHANDSHAKE)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pure(data, size);
    if (size > 60000)
        return 0;
    for (int side = 0; side < 2; side++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            return 0;
        /* Room for the input and for whatever we send back. */
        int big = 1 << 20;
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
        if (size && write(sv[1], data, size) != (ssize_t)size)
            abort();
        shutdown(sv[1], SHUT_WR);
        kart_conn *c;
        if (kart_conn_from_fd(&c, sv[0], KART_CONN_READABLE | KART_CONN_WRITABLE))
            abort();
        kart_auth a = {.authkey = KEY, .authkey_len = 4, .timeout_ns = 1000000000};
        int err = side ? kart_conn_deliver_challenge(c, &a) : kart_conn_answer_challenge(c, &a);
        if (!documented(err))
            abort();
        kart_conn_close(c);
        close(sv[1]);
    }
    return 0;
}

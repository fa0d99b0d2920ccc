/*
 * fuzz/fuzz_frame.c — libFuzzer target for the receive side of a
 * connection: the pure header decoder on the raw input, then the whole
 * receive state machine (read-ahead, headers split across reads, payloads
 * read straight into the destination, EOF in any place) over a pipe that
 * holds the input. The first byte picks the mode (exact or read-ahead;
 * recv_bytes or recv_bytes_into with a short buffer first) and the maximum
 * length, so that "too long" is reached too. Every message must come out
 * whole or the connection must end with one of the documented errors, and
 * nothing may be allocated past the maximum.
 */
#include "conn_private.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decoder(const uint8_t *data, size_t size)
{
    uint64_t len = 0;
    size_t need = 0;
    int h = kart__frame_decode(data, size, &len, &need);
    if (h == 0 && (need <= size || (need != 4 && need != 12)))
        abort();
    if (h > 0) {
        if ((h != 4 && h != 12) || len > (uint64_t)INT64_MAX)
            abort();
        uint8_t hdr[12];
        size_t n = kart__frame_encode(hdr, len);
        /* Lengths re-encode to the same value (a small length in the
         * 8-byte form is legal input but encodes short). */
        uint64_t back;
        if (kart__frame_decode(hdr, n, &back, &need) != (int)n || back != len)
            abort();
    }
    if (h < 0 && h != KART_EBADFRAME)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_decoder(data, size);
    if (size < 1 || size > 60000) /* a pipe holds 64 KiB */
        return 0;
    unsigned mode = data[0];
    data++, size--;
    int p[2];
    if (pipe(p) != 0)
        return 0;
    if (size && write(p[1], data, size) != (ssize_t)size)
        abort();
    close(p[1]);
    kart_conn *c;
    if (kart_conn_from_fd(&c, p[0], KART_CONN_READABLE | ((mode & 1) ? KART_CONN_EXACT : 0)))
        abort();
    size_t maxlen = (size_t)1 << (mode >> 3 & 31);
    size_t total = 0;
    for (;;) {
        int err;
        size_t n = 0;
        if (mode & 2) {
            void *m = NULL;
            err = kart_conn_recv_bytes(c, &m, &n, maxlen);
            if (err == 0 && (n > maxlen || !m))
                abort();
            free(m);
        } else {
            static uint8_t buf[65536];
            err = -ENOBUFS;
            if (mode & 4) {
                /* A short buffer first: the message must stay queued. */
                err = kart_conn_recv_bytes_into(c, buf, 1, &n);
                if (err == -ENOBUFS && n <= 1)
                    abort();
            }
            if (err == -ENOBUFS)
                err = kart_conn_recv_bytes_into(c, buf, sizeof(buf), &n);
            if (err == -ENOBUFS)
                break; /* too long for us; it stays queued */
        }
        if (err) {
            if (err != KART_EEOF && err != KART_ETRUNCATED && err != KART_EBADFRAME &&
                err != -EMSGSIZE)
                abort();
            break;
        }
        total += n + 4;
        if (total > size)
            abort(); /* more out than went in */
    }
    kart_conn_close(c);
    return 0;
}

/*
 * fuzz/fuzz_http.c — libFuzzer target for examples/http_parse.h, the
 * request parser of examples/http-server.c.
 *
 * Feeds the input as a stream of pipelined requests, the way the server
 * does, under several head limits, and checks what the server relies on:
 * a parsed head lies within the bytes given and within the limit, its
 * pointers point into them, and an incomplete head stays incomplete (or
 * becomes complete, never bad) as more bytes of the same stream arrive.
 */
#include "../examples/http_parse.h"

#include <stdint.h>
#include <stdlib.h>

static void check(int ok)
{
    if (!ok)
        abort();
}

static void run(const char *buf, size_t len, size_t max_head)
{
    size_t off = 0;
    while (off < len) {
        http_request r;
        int n = http_parse_request(buf + off, len - off, max_head, &r);
        if (n == HTTP_BAD || n == HTTP_TOO_LARGE)
            return;
        if (n == HTTP_INCOMPLETE) {
            check(len - off < max_head);
            /* Every prefix of an incomplete head is incomplete too. */
            for (size_t k = 1; k < len - off; k += 7)
                check(http_parse_request(buf + off, k, max_head, &r) == HTTP_INCOMPLETE);
            return;
        }
        check(n > 0 && (size_t)n <= len - off && (size_t)n <= max_head);
        check((size_t)n == r.head_len);
        check(r.method == buf + off && r.method_len > 0);
        check(r.target > r.method && r.target + r.target_len <= buf + off + (size_t)n);
        check(r.minor == 0 || r.minor == 1);
        /* Every proper prefix of a complete head is incomplete. */
        for (size_t k = 1; k < (size_t)n; k += 5)
            check(http_parse_request(buf + off, k, max_head, &r) == HTTP_INCOMPLETE);
        off += (size_t)n;
        if (r.content_length > len - off)
            return;
        off += (size_t)r.content_length;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so that ASan sees any read past it. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    run(buf, size, 8192);
    run(buf, size, 64);
    run(buf, size, 16);
    free(buf);
    return 0;
}

/*
 * core/conn_frame.c — Python's multiprocessing.connection framing, as pure
 * functions over bytes (the fuzz target fuzz/fuzz_frame.c drives them
 * directly): a 4-byte big-endian signed length, or -1 and an 8-byte
 * big-endian length for messages over 0x7fffffff bytes.
 */
#include "conn_private.h"

int kart__frame_decode(const uint8_t *p, size_t n, uint64_t *len, size_t *need)
{
    if (n < 4) {
        *need = 4;
        return 0;
    }
    int32_t l = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                          (uint32_t)p[3]);
    if (l >= 0) {
        *len = (uint64_t)l;
        return 4;
    }
    if (l != -1)
        return KART_EBADFRAME;
    if (n < 12) {
        *need = 12;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 4; i < 12; i++)
        v = v << 8 | p[i];
    /* Lengths stay within ssize_t, so that no size arithmetic can wrap. */
    if (v > (uint64_t)INT64_MAX)
        return KART_EBADFRAME;
    *len = v;
    return 12;
}

size_t kart__frame_encode(uint8_t hdr[12], uint64_t len)
{
    if (len <= 0x7fffffffu) {
        hdr[0] = (uint8_t)(len >> 24);
        hdr[1] = (uint8_t)(len >> 16);
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        return 4;
    }
    hdr[0] = hdr[1] = hdr[2] = hdr[3] = 0xff;
    for (int i = 0; i < 8; i++)
        hdr[4 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 12;
}

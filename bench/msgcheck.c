/*
 * bench/msgcheck.c — numbered, patterned messages and their checker
 * (bench/msgcheck.h). The pattern is built once per process, so that a
 * message costs one memcpy to write and one memcmp to check.
 */
#include "msgcheck.h"

#include "harness.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char pattern[MSG_PERIOD + MSG_MAX_SIZE];
static uint64_t corrupt_seq = UINT64_MAX;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void)
{
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (unsigned char)((i % MSG_PERIOD) * 167 + 13);
    const char *e = getenv("KART_BENCH_CORRUPT_SEQ");
    if (e && *e)
        corrupt_seq = strtoull(e, NULL, 10);
}

static const unsigned char *payload(uint32_t producer, uint64_t seq)
{
    pthread_once(&once, build);
    return pattern + (seq + 101u * (uint64_t)producer) % MSG_PERIOD;
}

void msg_fill(void *buf, size_t size, uint32_t kind, uint32_t producer, uint64_t seq)
{
    unsigned char *p = buf;
    memcpy(p, &kind, 4);
    memcpy(p + 4, &producer, 4);
    memcpy(p + 8, &seq, 8);
    memcpy(p + MSG_HEADER, payload(producer, seq), size - MSG_HEADER);
    if (kind == MSG_DATA && producer == 0 && seq == corrupt_seq)
        p[size - 1] ^= 1;
}

void msg_checker_init(msg_checker *c, int nprod, size_t size, bool contiguous)
{
    memset(c, 0, sizeof(*c));
    c->nprod = nprod;
    c->size = size;
    c->contiguous = contiguous;
}

__attribute__((format(printf, 2, 3))) static int mismatch(msg_checker *c, const char *fmt, ...)
{
    if (!c->bad) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof(c->why), fmt, ap);
        va_end(ap);
        c->bad = true;
    }
    return -1;
}

int msg_check(msg_checker *c, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t kind, producer;
    uint64_t seq;
    if (len != c->size)
        return mismatch(c, "a %zu-byte message, not %zu", len, c->size);
    memcpy(&kind, p, 4);
    memcpy(&producer, p + 4, 4);
    memcpy(&seq, p + 8, 8);
    if ((kind != MSG_DATA && kind != MSG_STOP) || producer >= (uint32_t)c->nprod)
        return mismatch(c, "a message of kind %" PRIu32 " from producer %" PRIu32, kind, producer);
    if (memcmp(p + MSG_HEADER, payload(producer, seq), len - MSG_HEADER) != 0)
        return mismatch(c, "producer %" PRIu32 "'s message %" PRIu64 ": wrong payload", producer,
                        seq);
    uint64_t *next = &c->next[producer];
    if (kind == MSG_STOP) {
        if (c->contiguous && seq != c->count[producer])
            return mismatch(
                c, "producer %" PRIu32 " stopped after %" PRIu64 " messages, %" PRIu64 " received",
                producer, seq, c->count[producer]);
        return MSG_STOP;
    }
    if (c->contiguous ? seq != *next : seq < *next)
        return mismatch(c, "producer %" PRIu32 "'s message %" PRIu64 " where %s%" PRIu64 " was due",
                        producer, seq, c->contiguous ? "" : "at least ", *next);
    *next = seq + 1;
    c->count[producer]++;
    return MSG_DATA;
}

static const char python_defs[] =
    "import os, struct\n"
    "hdr = struct.Struct('=IIQ')\n"
    "_pattern = bytes(((k * 167 + 13) & 255) for k in range(251)) * (65536 // 251 + 2)\n"
    "CORRUPT = int(os.environ.get('KART_BENCH_CORRUPT_SEQ') or -1)\n"
    "def fill(kind, producer, seq, size):\n"
    "    o = (seq + 101 * producer) % 251\n"
    "    m = hdr.pack(kind, producer, seq) + _pattern[o:o + size - 16]\n"
    "    if kind == 0 and producer == 0 and seq == CORRUPT: m = m[:-1] + bytes([m[-1] ^ 1])\n"
    "    return m\n"
    "def payload_ok(m, producer, seq, size):\n"
    "    o = (seq + 101 * producer) % 251\n"
    "    return len(m) == size and m[16:] == _pattern[o:o + size - 16]\n";

char *msg_python_script(const char *main)
{
    size_t a = strlen(python_defs), b = strlen(main);
    char *s = malloc(a + b + 1);
    if (!s)
        bench_fail("out of memory");
    memcpy(s, python_defs, a);
    memcpy(s + a, main, b + 1);
    return s;
}

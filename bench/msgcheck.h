/*
 * bench/msgcheck.h — the messages of the queue and conn scenarios, the same
 * for kart and for every peer: a 16-byte header (kind, producer id,
 * sequence number) and a payload derived from producer and sequence, which
 * every sender writes whole and every receiver checks whole, with the order
 * of each producer's messages. A benchmark that loses, repeats, reorders or
 * damages a message must not report a rate.
 *
 * The payload is a window into one fixed pattern (a table of period 251
 * repeated), starting at (seq + 101 * producer) mod 251: so it is written
 * with one memcpy and checked with one memcmp, in C as in the Python peers
 * (bytes slicing and ==), and two consecutive messages never match.
 *
 * KART_BENCH_CORRUPT_SEQ=N in the environment makes producer 0's message
 * number N go out with its last byte flipped (C and Python senders alike):
 * the check of the checker, which must turn into an error of the round.
 */
#ifndef KART_BENCH_MSGCHECK_H
#define KART_BENCH_MSGCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_HEADER 16      /* u32 kind, u32 producer, u64 seq; host order */
#define MSG_MAX_SIZE 65536 /* the largest message of these scenarios */
#define MSG_PERIOD 251     /* of the payload pattern: a prime */
#define MSG_MAX_PRODUCERS 8

enum { MSG_DATA = 0, MSG_STOP = 1 };

/* Writes message (kind, producer, seq) of size bytes (MSG_HEADER to
 * MSG_MAX_SIZE) into buf. */
void msg_fill(void *buf, size_t size, uint32_t kind, uint32_t producer, uint64_t seq);

/* A receiver's view of its producers. contiguous: it receives every
 * message of every producer (one consumer), so each must be the previous
 * one plus 1; otherwise (several consumers share them) each must only be
 * later than the previous one of its producer. */
typedef struct msg_checker {
    int nprod;
    bool contiguous;
    size_t size;
    uint64_t next[MSG_MAX_PRODUCERS];  /* the lowest acceptable seq */
    uint64_t count[MSG_MAX_PRODUCERS]; /* data messages received */
    bool bad;
    char why[160]; /* the first mismatch */
} msg_checker;

void msg_checker_init(msg_checker *c, int nprod, size_t size, bool contiguous);

/* Checks one received message of len bytes: MSG_DATA or MSG_STOP when it
 * is right (a data message is counted), -1 when it is not (c->bad set, the
 * first reason in c->why). A stop's seq is the count of data messages its
 * producer sent; a contiguous checker holds it to that. */
int msg_check(msg_checker *c, const void *buf, size_t len);

/* A Python peer's script: main (its own code) after the Python version
 * of the above, which defines hdr (a struct.Struct of the header),
 * fill(kind, producer, seq, size) -> bytes, payload_ok(msg, producer, seq,
 * size) -> bool (the length and payload; the order is main's to check) and
 * CORRUPT. malloc()ed: free() it; bench_fail() when out of memory. */
char *msg_python_script(const char *main);

#endif

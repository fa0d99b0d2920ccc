/*
 * core/auth_private.h — the handshake's pieces (auth.c), shared with the
 * listener and client (listener.c) and reached by fuzz/fuzz_handshake.c.
 * The parsing and HMAC functions are pure: bytes in, bytes out.
 */
#ifndef KART_AUTH_PRIVATE_H
#define KART_AUTH_PRIVATE_H

#include <kart/conn.h>

#include <stddef.h>
#include <stdint.h>

#define KART__AUTH_LEGACY (-1)     /* a digest index: the legacy form */
#define KART__AUTH_MAX_MAC 64      /* the longest HMAC (room to spare) */
#define KART__AUTH_MAX_RESPONSE 80 /* "{sha3_384}" + 48 bytes, rounded up */
/* "#CHALLENGE#" + "{sha3_384}" + 40 random bytes, rounded up. */
#define KART__AUTH_MAX_CHALLENGE 64
#define KART__AUTH_HANDSHAKE_MAX 256 /* every handshake message: recv_bytes(256) */
#define KART__AUTH_WELCOME "#WELCOME#"
#define KART__AUTH_FAILURE "#FAILURE#"

/* The index of a digest name ("sha256"...; NULL is sha256, "legacy" is
 * KART__AUTH_LEGACY), or -EINVAL. */
int kart__auth_digest_index(const char *name);

/* Python's _get_digest_name_and_payload: the digest index of a challenge
 * or response (KART__AUTH_LEGACY for 16 and 20 bytes) and where its
 * payload starts, or KART_EHANDSHAKE. */
int kart__auth_split(const uint8_t *m, size_t n, size_t *payload_off);

/* HMAC of msg with digest d; -ENOTSUP without OpenSSL or the digest. */
int kart__auth_hmac(int d, const void *key, size_t keylen, const uint8_t *msg, size_t n,
                    uint8_t out[KART__AUTH_MAX_MAC], size_t *outlen);

/* Python's _create_response: the answer to a challenge (without
 * "#CHALLENGE#"). Errors: KART_EHANDSHAKE, -ENOTSUP. */
int kart__auth_response(const void *key, size_t keylen, const uint8_t *msg, size_t n,
                        uint8_t out[KART__AUTH_MAX_RESPONSE], size_t *outlen);

/* Python's _verify_challenge: 0, KART_EAUTH, KART_EHANDSHAKE or -ENOTSUP. */
int kart__auth_verify(const void *key, size_t keylen, const uint8_t *msg, size_t n,
                      const uint8_t *resp, size_t rn, int require_modern);

/* The handshake's steps as messages, for the blocking calls below and the
 * loop's accept (listener_loop.c). A challenge to deliver (with its
 * "#CHALLENGE#"): 0 or an error of getrandom. */
int kart__auth_challenge(const kart_auth *a, uint8_t msg[KART__AUTH_MAX_CHALLENGE], size_t *len);
/* Checks the reply to our challenge chal (n bytes, as made above):
 * 0, KART_EAUTH, KART_EHANDSHAKE, -ENOTSUP. */
int kart__auth_check_reply(const kart_auth *a, const uint8_t *chal, size_t n, const uint8_t *resp,
                           size_t rn);
/* The reply to a received "#CHALLENGE#..." message: KART_EHANDSHAKE when
 * it is not one, -ENOTSUP. */
int kart__auth_reply(const kart_auth *a, const uint8_t *m, size_t n,
                     uint8_t out[KART__AUTH_MAX_RESPONSE], size_t *outlen);
/* The peer's verdict on our reply: 0 for "#WELCOME#", else KART_EAUTH. */
int kart__auth_verdict(const uint8_t *m, size_t n);

/* The two halves of the handshake, on one deadline; they leave the
 * connection as it is on error (the callers abort or close it). Running
 * out of time is KART_EHANDSHAKE (never -ETIMEDOUT). */
int kart__auth_deliver(kart_conn *c, const kart_auth *a, int64_t deadline);
int kart__auth_answer(kart_conn *c, const kart_auth *a, int64_t deadline);

/* Validates an auth description: -EINVAL, -ENOTSUP, or 0. */
int kart__auth_check(const kart_auth *a);

/* The deadline of a handshake starting now (timeout_ns 0: 10 s). */
int64_t kart__auth_deadline(const kart_auth *a);

#endif

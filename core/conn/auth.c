/*
 * core/auth.c — Python's multiprocessing.connection authkey handshake
 * (deliver_challenge / answer_challenge), both forms:
 *  - 3.12+: the challenge is b"{digest}" + 40 random bytes; the answer is
 *    b"{digest}" + HMAC(authkey, whole challenge) with the digest it names;
 *  - legacy (3.11 and before): a 20-byte challenge, a raw 16-byte HMAC-MD5.
 * Forms are told apart by length as CPython 3.12 does
 * (_get_digest_name_and_payload): a 20-byte challenge or a 16-byte answer
 * is legacy, anything else must carry a known "{digest}" prefix. HMACs come
 * from OpenSSL's libcrypto and are compared in constant time.
 *
 * Every message of the handshake is received with a 256-byte limit, as
 * Python does, and the whole handshake runs against one deadline.
 */
#include "conn_private.h"
#include "auth_private.h"
#include "deadline.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#ifdef KART_HAVE_OPENSSL
#include <openssl/crypto.h>
#include <openssl/evp.h>
#endif

#define CHALLENGE "#CHALLENGE#"
#define NONCE_LEN 40        /* Python 3.12's MESSAGE_LENGTH */
#define LEGACY_NONCE_LEN 20 /* _MD5ONLY_MESSAGE_LENGTH */
#define MD5_LEN 16          /* _MD5_DIGEST_LEN */
#define MAX_DIGEST_NAME 8   /* "sha3_256" */
#define HANDSHAKE_MAX KART__AUTH_HANDSHAKE_MAX
#define DEFAULT_TIMEOUT_NS (10 * KART__NS_PER_SEC)

static const struct {
    const char *name;    /* Python's */
    const char *openssl; /* OpenSSL's */
    size_t len;
} digests[] = {
    {"md5", "MD5", 16},           {"sha256", "SHA256", 32},     {"sha384", "SHA384", 48},
    {"sha3_256", "SHA3-256", 32}, {"sha3_384", "SHA3-384", 48},
};
#define NDIGESTS ((int)(sizeof(digests) / sizeof(digests[0])))
#define MD5 0

int kart__auth_digest_index(const char *name)
{
    if (!name)
        return 1; /* sha256 */
    if (strcmp(name, "legacy") == 0)
        return KART__AUTH_LEGACY;
    for (int i = 0; i < NDIGESTS; i++)
        if (strcmp(name, digests[i].name) == 0)
            return i;
    return -EINVAL;
}

int kart__auth_split(const uint8_t *m, size_t n, size_t *payload_off)
{
    if (n == LEGACY_NONCE_LEN || n == MD5_LEN) {
        *payload_off = 0;
        return KART__AUTH_LEGACY;
    }
    if (n > 0 && m[0] == '{') {
        /* b'}' within message[1:MAX_DIGEST_NAME + 2], as Python looks. */
        size_t end = n < MAX_DIGEST_NAME + 2 ? n : MAX_DIGEST_NAME + 2;
        for (size_t i = 1; i < end; i++) {
            if (m[i] != '}')
                continue;
            for (int d = 0; d < NDIGESTS; d++) {
                if (strlen(digests[d].name) == i - 1 &&
                    memcmp(m + 1, digests[d].name, i - 1) == 0) {
                    *payload_off = i + 1;
                    return d;
                }
            }
            break;
        }
    }
    return KART_EHANDSHAKE;
}

int kart__auth_hmac(int d, const void *key, size_t keylen, const uint8_t *msg, size_t n,
                    uint8_t out[KART__AUTH_MAX_MAC], size_t *outlen)
{
#ifdef KART_HAVE_OPENSSL
    static const uint8_t empty_key[1];
    if (!EVP_Q_mac(NULL, "HMAC", NULL, digests[d].openssl, NULL, keylen ? key : empty_key, keylen,
                   msg, n, out, KART__AUTH_MAX_MAC, outlen))
        return -ENOTSUP; /* the digest is not available (FIPS mode refuses MD5) */
    return 0;
#else
    (void)d, (void)key, (void)keylen, (void)msg, (void)n, (void)out, (void)outlen;
    return -ENOTSUP;
#endif
}

int kart__auth_response(const void *key, size_t keylen, const uint8_t *msg, size_t n,
                        uint8_t out[KART__AUTH_MAX_RESPONSE], size_t *outlen)
{
    size_t off;
    int d = kart__auth_split(msg, n, &off);
    if (d == KART_EHANDSHAKE)
        return d;
    if (d == KART__AUTH_LEGACY)
        return kart__auth_hmac(MD5, key, keylen, msg, n, out, outlen);
    size_t name = strlen(digests[d].name), mac;
    out[0] = '{';
    memcpy(out + 1, digests[d].name, name);
    out[1 + name] = '}';
    int err = kart__auth_hmac(d, key, keylen, msg, n, out + name + 2, &mac);
    *outlen = name + 2 + mac;
    return err;
}

int kart__auth_verify(const void *key, size_t keylen, const uint8_t *msg, size_t n,
                      const uint8_t *resp, size_t rn, int require_modern)
{
    size_t off;
    int d = kart__auth_split(resp, rn, &off);
    if (d == KART_EHANDSHAKE)
        return d;
    if (d == KART__AUTH_LEGACY) {
        if (require_modern)
            return KART_EAUTH;
        d = MD5;
    }
    uint8_t expected[KART__AUTH_MAX_MAC];
    size_t elen;
    int err = kart__auth_hmac(d, key, keylen, msg, n, expected, &elen);
    if (err)
        return err;
    /* A digest of the wrong length is no digest: KART_EHANDSHAKE, as
     * conn.h documents ("wrong length"), the same refusal as a reply with
     * no prefix; KART_EAUTH is kept for a digest that is the right size
     * and wrong. */
    if (rn - off != elen)
        return KART_EHANDSHAKE;
#ifdef KART_HAVE_OPENSSL
    return CRYPTO_memcmp(expected, resp + off, elen) == 0 ? 0 : KART_EAUTH;
#else
    return KART_EAUTH;
#endif
}

static int64_t auth_deadline(const kart_auth *a)
{
    return kart__deadline(a->timeout_ns == 0 ? DEFAULT_TIMEOUT_NS : a->timeout_ns);
}

static int fill_random(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int kart__auth_challenge(const kart_auth *a, uint8_t msg[KART__AUTH_MAX_CHALLENGE], size_t *len)
{
    int d = kart__auth_digest_index(a->digest);
    if (d == -EINVAL)
        return d;
    size_t n = sizeof(CHALLENGE) - 1;
    memcpy(msg, CHALLENGE, n);
    size_t nonce = LEGACY_NONCE_LEN;
    if (d != KART__AUTH_LEGACY) {
        size_t name = strlen(digests[d].name);
        msg[n++] = '{';
        memcpy(msg + n, digests[d].name, name);
        n += name;
        msg[n++] = '}';
        nonce = NONCE_LEN;
    }
    int err = fill_random(msg + n, nonce);
    if (err)
        return err;
    *len = n + nonce;
    return 0;
}

int kart__auth_check_reply(const kart_auth *a, const uint8_t *chal, size_t n, const uint8_t *resp,
                           size_t rn)
{
    size_t pre = sizeof(CHALLENGE) - 1;
    return kart__auth_verify(a->authkey, a->authkey_len, chal + pre, n - pre, resp, rn,
                             a->require_modern);
}

int kart__auth_reply(const kart_auth *a, const uint8_t *m, size_t n,
                     uint8_t out[KART__AUTH_MAX_RESPONSE], size_t *outlen)
{
    size_t pre = sizeof(CHALLENGE) - 1;
    if (n < pre || memcmp(m, CHALLENGE, pre) != 0 || n - pre < LEGACY_NONCE_LEN)
        return KART_EHANDSHAKE;
    return kart__auth_response(a->authkey, a->authkey_len, m + pre, n - pre, out, outlen);
}

int kart__auth_verdict(const uint8_t *m, size_t n)
{
    return n == sizeof(KART__AUTH_WELCOME) - 1 && memcmp(m, KART__AUTH_WELCOME, n) == 0
               ? 0
               : KART_EAUTH;
}

/* Rule 3: -ETIMEDOUT is "nobody came"; a handshake the peer did not finish
 * in time is one it broke. */
static int hs_err(int err)
{
    return err == -ETIMEDOUT ? KART_EHANDSHAKE : err;
}

int kart__auth_deliver(kart_conn *c, const kart_auth *a, int64_t deadline)
{
    uint8_t msg[KART__AUTH_MAX_CHALLENGE];
    size_t n;
    int err = kart__auth_challenge(a, msg, &n);
    if (err)
        return err;
    err = kart__conn_send_dl(c, msg, n, deadline);
    if (err)
        return hs_err(err);
    void *resp;
    size_t rn;
    err = kart__conn_recv_dl(c, &resp, &rn, HANDSHAKE_MAX, deadline);
    if (err)
        return hs_err(err);
    err = kart__auth_check_reply(a, msg, n, resp, rn);
    free(resp);
    if (err) {
        kart__conn_send_dl(c, KART__AUTH_FAILURE, sizeof(KART__AUTH_FAILURE) - 1, deadline);
        return err;
    }
    return hs_err(
        kart__conn_send_dl(c, KART__AUTH_WELCOME, sizeof(KART__AUTH_WELCOME) - 1, deadline));
}

int kart__auth_answer(kart_conn *c, const kart_auth *a, int64_t deadline)
{
    void *m;
    size_t n;
    int err = kart__conn_recv_dl(c, &m, &n, HANDSHAKE_MAX, deadline);
    if (err)
        return hs_err(err);
    uint8_t resp[KART__AUTH_MAX_RESPONSE];
    size_t rn = 0;
    err = kart__auth_reply(a, m, n, resp, &rn);
    free(m);
    if (err)
        return err;
    err = kart__conn_send_dl(c, resp, rn, deadline);
    if (err)
        return hs_err(err);
    err = kart__conn_recv_dl(c, &m, &n, HANDSHAKE_MAX, deadline);
    if (err)
        return hs_err(err);
    err = kart__auth_verdict(m, n);
    free(m);
    return err;
}

int kart__auth_check(const kart_auth *a)
{
    if (!a || (!a->authkey && a->authkey_len > 0))
        return -EINVAL;
#ifndef KART_HAVE_OPENSSL
    if (a->authkey)
        return -ENOTSUP;
#endif
    if (kart__auth_digest_index(a->digest) == -EINVAL)
        return -EINVAL;
    return 0;
}

/* A failed handshake leaves the stream in an unknown state: abort it. */
static int finish(kart_conn *c, int err)
{
    return err ? kart__conn_abort(c, err) : 0;
}

KART_API int kart_conn_deliver_challenge(kart_conn *c, const kart_auth *auth)
{
    int err = kart__auth_check(auth);
    if (err)
        return err;
    if (!c || !auth->authkey)
        return -EINVAL;
    return finish(c, kart__auth_deliver(c, auth, auth_deadline(auth)));
}

KART_API int kart_conn_answer_challenge(kart_conn *c, const kart_auth *auth)
{
    int err = kart__auth_check(auth);
    if (err)
        return err;
    if (!c || !auth->authkey)
        return -EINVAL;
    return finish(c, kart__auth_answer(c, auth, auth_deadline(auth)));
}

int64_t kart__auth_deadline(const kart_auth *a)
{
    return auth_deadline(a);
}

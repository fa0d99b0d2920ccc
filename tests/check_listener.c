/* Description: the authkey handshake of kart/conn.h (deliver_challenge,
 * answer_challenge: the 3.12+ form with every digest, the legacy form,
 * wrong keys, refused legacy replies, garbage and oversize messages,
 * replies cut short, padded or empty from a raw peer, a silent peer)
 * checked against HMACs computed by python3's hmac module;
 * Listener and Client over unix paths, the abstract namespace, TCP over
 * IPv4 and IPv6, with their documented errors; and kart_conn_wait over a
 * listener. Python's own multiprocessing against kart is check_conn_interop.c. */
#include "testutil.h"

#include "auth_private.h"
#include "conn_private.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define PEER "tests/py/conn_peer.py"
static const char KEY[] = "secret key";

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

/* Python's hmac.new(key, msg, digest).digest() for n (digest, msg) pairs
 * under one key, through one python3: out[i] gets each, outlen[i] its
 * length. */
static void py_hmacs(int n, const char *const *digest, const uint8_t *const *msg,
                     const size_t *msglen, const void *key, size_t kn, uint8_t (*out)[64],
                     size_t *outlen)
{
    static char cmd[16384];
    char kx[256];
    hex(key, kn, kx);
    int at = snprintf(cmd, sizeof(cmd), "python3 %s hmac", PEER);
    for (int i = 0; i < n; i++) {
        char mx[512];
        hex(msg[i], msglen[i], mx);
        at += snprintf(cmd + at, sizeof(cmd) - (size_t)at, " %s '%s' '%s'", digest[i], kx, mx);
    }
    ck_assert_int_lt(at, (int)sizeof(cmd));
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < n; i++) {
        char line[256];
        ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
        outlen[i] = strlen(line) / 2;
        for (size_t j = 0; j < outlen[i]; j++)
            sscanf(line + 2 * j, "%2hhx", &out[i][j]);
    }
    ck_assert_int_eq(pclose(f), 0);
}

static const char *const digests[] = {"md5", "sha256", "sha384", "sha3_256", "sha3_384"};

START_TEST(responses_match_pythons_hmac)
{
    /* Five modern challenges, a legacy one, and a 3.12 challenge that a
     * 3.11 client answers with a raw HMAC-MD5 of it all. */
    static uint8_t msgs[7][60];
    size_t lens[7];
    const char *names[7];
    const uint8_t *mp[7];
    for (int d = 0; d < 5; d++) {
        int pre = sprintf((char *)msgs[d], "{%s}", digests[d]);
        for (int i = 0; i < 40; i++)
            msgs[d][pre + i] = (uint8_t)(i * 13 + d);
        lens[d] = (size_t)pre + 40;
        names[d] = digests[d];
    }
    for (int i = 0; i < 20; i++)
        msgs[5][i] = (uint8_t)(200 - i);
    lens[5] = 20;
    names[5] = "md5";
    memcpy(msgs[6], msgs[1], lens[1]);
    lens[6] = lens[1];
    names[6] = "md5";
    for (int i = 0; i < 7; i++)
        mp[i] = msgs[i];
    uint8_t want[7][64];
    size_t wn[7];
    py_hmacs(7, names, mp, lens, KEY, strlen(KEY), want, wn);

    uint8_t resp[KART__AUTH_MAX_RESPONSE];
    size_t rn;
    for (int d = 0; d < 5; d++) {
        size_t pre = lens[d] - 40;
        ck_assert_int_eq(kart__auth_response(KEY, strlen(KEY), msgs[d], lens[d], resp, &rn), 0);
        ck_assert_uint_eq(rn, pre + wn[d]);
        ck_assert_mem_eq(resp, msgs[d], pre); /* the reply names the digest */
        ck_assert_mem_eq(resp + pre, want[d], wn[d]);
        ck_assert_int_eq(kart__auth_verify(KEY, strlen(KEY), msgs[d], lens[d], resp, rn, 1), 0);
        resp[rn - 1] ^= 1;
        ck_assert_int_eq(kart__auth_verify(KEY, strlen(KEY), msgs[d], lens[d], resp, rn, 0),
                         KART_EAUTH);
    }
    /* Legacy: a 20-byte challenge gets a raw 16-byte HMAC-MD5. */
    ck_assert_int_eq(kart__auth_response(KEY, strlen(KEY), msgs[5], 20, resp, &rn), 0);
    ck_assert_uint_eq(rn, 16);
    ck_assert_uint_eq(wn[5], 16);
    ck_assert_mem_eq(resp, want[5], 16);
    ck_assert_int_eq(kart__auth_verify(KEY, strlen(KEY), msgs[5], 20, resp, 16, 0), 0);
    ck_assert_int_eq(kart__auth_verify(KEY, strlen(KEY), msgs[5], 20, resp, 16, 1), KART_EAUTH);
    /* 3.11's raw MD5 answer to a modern challenge is accepted. */
    ck_assert_uint_eq(wn[6], 16);
    ck_assert_int_eq(kart__auth_verify(KEY, strlen(KEY), msgs[6], lens[6], want[6], 16, 0), 0);
}
END_TEST

START_TEST(split_follows_pythons_rules)
{
    size_t off;
    uint8_t m[64] = "{sha256}";
    ck_assert_int_eq(kart__auth_split(m, 48, &off), 1);
    ck_assert_uint_eq(off, 8);
    ck_assert_int_eq(kart__auth_split(m, 20, &off), KART__AUTH_LEGACY);
    ck_assert_int_eq(kart__auth_split(m, 16, &off), KART__AUTH_LEGACY);
    ck_assert_int_eq(kart__auth_split(m, 8, &off), 1);
    ck_assert_int_eq(kart__auth_split(m, 7, &off), KART_EHANDSHAKE);
    ck_assert_int_eq(kart__auth_split((const uint8_t *)"{sha1}xxxxxxxxxxxxxxxxxxx", 25, &off),
                     KART_EHANDSHAKE);
    ck_assert_int_eq(kart__auth_split((const uint8_t *)"sha256xxxxxxxxxxxxxxxxxxx", 25, &off),
                     KART_EHANDSHAKE);
    ck_assert_int_eq(kart__auth_split((const uint8_t *)"{sha3_384}", 10, &off), 4);
    ck_assert_int_eq(kart__auth_split((const uint8_t *)"{}xxxxxxxxxxxxxxxxxxxxx", 23, &off),
                     KART_EHANDSHAKE);
    ck_assert_int_eq(kart__auth_split(m, 0, &off), KART_EHANDSHAKE);
    ck_assert_int_eq(kart__auth_digest_index(NULL), 1);
    ck_assert_int_eq(kart__auth_digest_index("legacy"), KART__AUTH_LEGACY);
    ck_assert_int_eq(kart__auth_digest_index("sha1"), -EINVAL);
}
END_TEST

/* ---- deliver/answer over a socketpair, the peer in a child ---- */

typedef int (*side_fn)(kart_conn *c, const kart_auth *a);

/* Runs deliver in this process and answer in a child (or the other way
 * round), each with its auth; returns this side's result and stores the
 * child's in *child_rc. */
static int handshake(side_fn here, const kart_auth *ha, side_fn there, const kart_auth *ta,
                     int *child_rc)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_conn_close(a);
        int r = there(b, ta);
        _exit(r == 0 ? 0 : r == KART_EAUTH ? 3 : r == KART_EHANDSHAKE ? 4 : 5);
    }
    kart_conn_close(b);
    int r = here(a, ha);
    kart_conn_close(a);
    int st;
    kt_wait_child(pid, &st);
    ck_assert(WIFEXITED(st));
    *child_rc = WEXITSTATUS(st);
    return r;
}

START_TEST(handshake_every_digest_and_legacy)
{
    static const char *const forms[] = {NULL,       "md5",      "sha256", "sha384",
                                        "sha3_256", "sha3_384", "legacy"};
    for (int i = 0; i < 7; i++) {
        kart_auth a = {.authkey = KEY, .authkey_len = strlen(KEY), .digest = forms[i]};
        int rc;
        ck_assert_int_eq(
            handshake(kart_conn_deliver_challenge, &a, kart_conn_answer_challenge, &a, &rc), 0);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(
            handshake(kart_conn_answer_challenge, &a, kart_conn_deliver_challenge, &a, &rc), 0);
        ck_assert_int_eq(rc, 0);
    }
    /* An empty key is a key. */
    kart_auth e = {.authkey = "", .authkey_len = 0};
    int rc;
    ck_assert_int_eq(
        handshake(kart_conn_deliver_challenge, &e, kart_conn_answer_challenge, &e, &rc), 0);
    ck_assert_int_eq(rc, 0);
}
END_TEST

START_TEST(handshake_wrong_key_fails_both_sides)
{
    kart_auth a = {.authkey = KEY, .authkey_len = strlen(KEY), .digest = _i ? "legacy" : NULL};
    kart_auth b = {.authkey = "other", .authkey_len = 5};
    int rc;
    ck_assert_int_eq(
        handshake(kart_conn_deliver_challenge, &a, kart_conn_answer_challenge, &b, &rc),
        KART_EAUTH);
    ck_assert_int_eq(rc, 3);
    ck_assert_int_eq(
        handshake(kart_conn_answer_challenge, &a, kart_conn_deliver_challenge, &b, &rc),
        KART_EAUTH);
    ck_assert_int_eq(rc, 3);
}
END_TEST

START_TEST(handshake_require_modern_refuses_legacy_replies)
{
    kart_auth strict = {.authkey = KEY, .authkey_len = strlen(KEY), .require_modern = 1};
    kart_auth legacy = {.authkey = KEY, .authkey_len = strlen(KEY), .digest = "legacy"};
    int rc;
    /* Our legacy-form challenge is answered with raw MD5: refused. */
    kart_auth strict_legacy = strict;
    strict_legacy.digest = "legacy";
    ck_assert_int_eq(handshake(kart_conn_deliver_challenge, &strict_legacy,
                               kart_conn_answer_challenge, &legacy, &rc),
                     KART_EAUTH);
    ck_assert_int_eq(rc, 3);
    ck_assert_int_eq(
        handshake(kart_conn_deliver_challenge, &strict, kart_conn_answer_challenge, &legacy, &rc),
        0);
    ck_assert_int_eq(rc, 0);
}
END_TEST

START_TEST(handshake_rejects_bad_arguments)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    kart_auth ok = {.authkey = KEY, .authkey_len = 3};
    kart_auth nokey = {0};
    kart_auth badlen = {.authkey = NULL, .authkey_len = 3};
    kart_auth baddigest = {.authkey = KEY, .authkey_len = 3, .digest = "sha1"};
    ck_assert_int_eq(kart_conn_deliver_challenge(NULL, &ok), -EINVAL);
    ck_assert_int_eq(kart_conn_deliver_challenge(a, NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_deliver_challenge(a, &nokey), -EINVAL);
    ck_assert_int_eq(kart_conn_deliver_challenge(a, &badlen), -EINVAL);
    ck_assert_int_eq(kart_conn_deliver_challenge(a, &baddigest), -EINVAL);
    ck_assert_int_eq(kart_conn_answer_challenge(NULL, &ok), -EINVAL);
    ck_assert_int_eq(kart_conn_answer_challenge(a, NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_answer_challenge(a, &nokey), -EINVAL);
    kart_conn_close(a);
    kart_conn_close(b);
}
END_TEST

/* The peer sends raw frames; the handshake side must fail with want and
 * leave the connection aborted. */
static void answer_gets(const char *raw, size_t n, int want, int64_t timeout)
{
    int sv[2];
    kt_socketpair(sv);
    kart_conn *c;
    ck_assert_int_eq(kart_conn_from_fd(&c, sv[0], KART_CONN_READABLE | KART_CONN_WRITABLE), 0);
    ck_assert_int_eq(write(sv[1], raw, n), (ssize_t)n);
    kart_auth a = {.authkey = KEY, .authkey_len = strlen(KEY), .timeout_ns = timeout};
    ck_assert_int_eq(kart_conn_answer_challenge(c, &a), want);
    ck_assert_int_eq(kart_conn_send_bytes(c, "x", 1), -ECONNABORTED);
    kart_conn_close(c);
    close(sv[1]);
}

START_TEST(handshake_garbage_is_refused)
{
    answer_gets("\0\0\0\5hello", 9, KART_EHANDSHAKE, 0);
    answer_gets("\0\0\0\x0d#CHALLENGE#ab", 17, KART_EHANDSHAKE, 0);
    answer_gets("\0\0\0\x24#CHALLENGE#{sha1}xxxxxxxxxxxxxxxxxxx", 40, KART_EHANDSHAKE, 0);
    answer_gets("\0\0\x10\0", 4, -EMSGSIZE, 0);
    answer_gets("\xff\xff\0\0", 4, KART_EBADFRAME, 0);
    answer_gets("\0\0\0\x14#CHALL", 10, KART_EHANDSHAKE, 50 * KT_MS);
    /* A right challenge, then a verdict that is not "#WELCOME#". */
    int sv[2];
    kt_socketpair(sv);
    kart_conn *c, *peer;
    ck_assert_int_eq(kart_conn_from_fd(&c, sv[0], KART_CONN_READABLE | KART_CONN_WRITABLE), 0);
    ck_assert_int_eq(kart_conn_from_fd(&peer, sv[1], KART_CONN_READABLE | KART_CONN_WRITABLE), 0);
    ck_assert_int_eq(kart_conn_send_bytes(peer, "#CHALLENGE#01234567890123456789", 31), 0);
    ck_assert_int_eq(kart_conn_send_bytes(peer, "#WELCOMX#", 9), 0);
    kart_auth a = {.authkey = KEY, .authkey_len = strlen(KEY)};
    ck_assert_int_eq(kart_conn_answer_challenge(c, &a), KART_EAUTH);
    kart_conn_close(c);
    kart_conn_close(peer);
}
END_TEST

START_TEST(handshake_silent_peer_times_out)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    kart_auth au = {.authkey = KEY, .authkey_len = 3, .timeout_ns = 50 * KT_MS};
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_conn_deliver_challenge(a, &au), KART_EHANDSHAKE);
    ck_assert_int_ge(kart_now_ns() - t0, 50 * KT_MS);
    ck_assert_int_lt(kart_now_ns() - t0, 5000 * KT_MS);
    kart_conn_close(a);
    kart_conn_close(b);
}
END_TEST

/* ---- replies cut short, padded or empty (a raw peer) ---- */

/* How the raw peer spoils the right reply ("{sha256}" + 32-byte HMAC). */
typedef struct spoil {
    const char *what;
    size_t keep;       /* bytes of the right reply sent (then extra) */
    const char *extra; /* appended after them */
    size_t extra_len;
    int want; /* deliver_challenge's result */
} spoil;

typedef struct raw_peer {
    int fd;
    const spoil *s;
    int ok; /* 1: it read the challenge and wrote its reply */
} raw_peer;

static void *raw_peer_run(void *arg)
{
    raw_peer *p = arg;
    uint8_t hdr[4], chal[KART__AUTH_MAX_CHALLENGE], resp[KART__AUTH_MAX_RESPONSE + 300];
    if (recv(p->fd, hdr, 4, MSG_WAITALL) != 4)
        return NULL;
    uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (n > sizeof(chal) || recv(p->fd, chal, n, MSG_WAITALL) != (ssize_t)n)
        return NULL;
    kart_auth a = {.authkey = KEY, .authkey_len = strlen(KEY)};
    size_t rn = 0;
    if (kart__auth_reply(&a, chal, n, resp, &rn) != 0 || p->s->keep > rn)
        return NULL;
    size_t len = p->s->keep;
    memcpy(resp + len, p->s->extra, p->s->extra_len);
    len += p->s->extra_len;
    uint8_t out[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    /* A refused reply may meet a connection already aborted (the one over
     * 256 bytes is refused from its header): EPIPE then, and no SIGPIPE. */
    bool sent = send(p->fd, out, 4, MSG_NOSIGNAL) == 4 &&
                send(p->fd, resp, len, MSG_NOSIGNAL) == (ssize_t)len;
    p->ok = sent || p->s->want != 0;
    return NULL;
}

/* Sends one spoiled reply to deliver_challenge (sha256, the default) and
 * checks its result, and that the connection is aborted after a refusal. */
static void deliver_to_raw_peer(const spoil *s)
{
    int sv[2];
    kt_socketpair(sv);
    kart_conn *c;
    ck_assert_int_eq(kart_conn_from_fd(&c, sv[0], KART_CONN_READABLE | KART_CONN_WRITABLE), 0);
    ck_assert_int_eq(fcntl(sv[1], F_SETFL, 0), 0); /* the raw peer blocks */
    raw_peer p = {.fd = sv[1], .s = s};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, raw_peer_run, &p), 0);
    kart_auth a = {.authkey = KEY, .authkey_len = strlen(KEY), .timeout_ns = 5000 * KT_MS};
    int r = kart_conn_deliver_challenge(c, &a);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(p.ok, "%s: the raw peer failed", s->what);
    ck_assert_msg(r == s->want, "%s: deliver_challenge returned %d (%s), want %d (%s)", s->what, r,
                  kart_err_name(r), s->want, kart_err_name(s->want));
    if (s->want != 0)
        ck_assert_int_eq(kart_conn_send_bytes(c, "x", 1), -ECONNABORTED);
    kart_conn_close(c);
    close(sv[1]);
}

START_TEST(replies_cut_short_are_refused)
{
    static char big[300];
    memset(big, 'x', sizeof(big));
    const size_t full = 8 + 32; /* "{sha256}" + HMAC-SHA256 */
    const spoil cases[] = {
        {"the right reply", full, "", 0, 0},
        {"an empty reply", 0, "", 0, KART_EHANDSHAKE},
        {"a brace alone", 1, "", 0, KART_EHANDSHAKE},
        {"a digest name cut short", 5, "", 0, KART_EHANDSHAKE},
        {"a name without its closing brace", 7, "", 0, KART_EHANDSHAKE},
        {"the prefix alone", 8, "", 0, KART_EHANDSHAKE},
        {"the prefix and one byte", 9, "", 0, KART_EHANDSHAKE},
        {"the prefix and half the HMAC", 8 + 16, "", 0, KART_EHANDSHAKE},
        {"the HMAC one byte short", full - 1, "", 0, KART_EHANDSHAKE},
        {"the HMAC one byte long", full, "x", 1, KART_EHANDSHAKE},
        {"the HMAC doubled", full, "0123456789abcdef0123456789abcdef", 32, KART_EHANDSHAKE},
        /* 16 bytes: the legacy form, a raw HMAC-MD5, and this one is wrong. */
        {"16 bytes of the reply", 16, "", 0, KART_EAUTH},
        {"a reply over 256 bytes", 0, big, 257, -EMSGSIZE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        deliver_to_raw_peer(&cases[i]);
}
END_TEST

/* ---- Listener and Client ---- */

/* A child that connects to addr with auth, echoes one message, exits 0;
 * or exits with 3 (KART_EAUTH), 4 (other handshake error), 5. */
static pid_t client_child(const char *addr, const kart_auth *auth)
{
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_conn *c;
        int r = kart_conn_connect(&c, addr, auth);
        if (r)
            _exit(r == KART_EAUTH ? 3 : r == KART_EHANDSHAKE ? 4 : 5);
        void *m;
        size_t n;
        if (kart_conn_recv_bytes(c, &m, &n, 1 << 20) || kart_conn_send_bytes(c, m, n))
            _exit(6);
        free(m);
        kart_conn_close(c);
        _exit(0);
    }
    return pid;
}

static int child_status(pid_t pid)
{
    int st;
    kt_wait_child(pid, &st);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* Accepts the peer that child pid connects, within 10 s. A child that
 * ends without connecting (its connect failed: under check-faults, an
 * injected error) ends the wait at once instead of after the 10 s, so a
 * suite whose clients all fail does not outlast its run's time: the
 * accept waits 100 ms at a time, and once the child has ended (seen
 * without reaping it) takes only a peer already waiting. */
static int accept_child(kart_listener *l, kart_conn **c, pid_t pid)
{
    int64_t end = kt_child_now_ms_() + 10000;
    for (;;) {
        siginfo_t si = {0};
        bool ended =
            waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
        int r = kart_listener_accept(l, c, ended ? 0 : 100 * KT_MS);
        if (r != -ETIMEDOUT || ended || kt_child_now_ms_() >= end)
            return r;
    }
}

static void serve_one(kart_listener *l, const kart_auth *auth)
{
    char addr[128];
    ck_assert_int_gt(kart_listener_address(l, addr, sizeof(addr)), 0);
    pid_t pid = client_child(addr, auth);
    kart_conn *c;
    ck_assert_int_eq(accept_child(l, &c, pid), 0);
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    ck_assert_int_eq(kart_conn_send_bytes(c, big, sizeof(big)), 0);
    void *m;
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes(c, &m, &n, sizeof(big)), 0);
    ck_assert_uint_eq(n, sizeof(big));
    ck_assert_mem_eq(m, big, n);
    free(m);
    kart_conn_close(c);
    ck_assert_int_eq(child_status(pid), 0);
}

START_TEST(listener_unix_path)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/kart-test-%d.sock", (int)getpid());
    unlink(path);
    kart_listener_options o = {.auth = {.authkey = KEY, .authkey_len = strlen(KEY)}};
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, path, &o), 0);
    char addr[128];
    ck_assert_int_eq(kart_listener_address(l, addr, sizeof(addr)), (int)strlen(path));
    ck_assert_str_eq(addr, path);
    ck_assert_int_eq(kart_listener_address(l, addr, 5), -ENOSPC);
    ck_assert_int_eq(kart_listener_address(NULL, addr, 5), -EINVAL);
    kart_listener *l2;
    ck_assert_int_eq(kart_listener_create(&l2, path, NULL), -EADDRINUSE);
    serve_one(l, &o.auth);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    kart_listener_free(l);
    ck_assert_int_eq(stat(path, &st), -1); /* unlinked */
    kart_listener_free(NULL);
}
END_TEST

START_TEST(listener_abstract_and_tcp)
{
    char abstract[64];
    snprintf(abstract, sizeof(abstract), "@kart-test-%d", (int)getpid());
    const char *addrs[] = {abstract, "127.0.0.1:0", "localhost:0", "[::1]:0"};
    const char *addr = addrs[_i];
    kart_listener_options o = {
        .backlog = 4, .auth = {.authkey = KEY, .authkey_len = strlen(KEY), .digest = "sha3_384"}};
    kart_listener *l;
    int r = kart_listener_create(&l, addr, &o);
    if (_i == 3 && (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT))
        KART_SKIP("no IPv6 loopback here (%s)", kart_strerror(r));
    ck_assert_int_eq(r, 0);
    char got[128];
    ck_assert_int_gt(kart_listener_address(l, got, sizeof(got)), 0);
    if (_i == 0)
        ck_assert_str_eq(got, abstract);
    else if (_i == 3)
        ck_assert(strncmp(got, "[::1]:", 6) == 0 && strcmp(got, "[::1]:0") != 0);
    else if (_i == 1)
        ck_assert(strncmp(got, "127.0.0.1:", 10) == 0 && strcmp(got, "127.0.0.1:0") != 0);
    ck_assert_int_ge(kart_listener_fileno(l), 0);
    serve_one(l, &o.auth);
    kart_listener_free(l);
}
END_TEST

START_TEST(listener_without_auth)
{
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", NULL), 0);
    serve_one(l, NULL);
    kart_listener_free(l);
}
END_TEST

START_TEST(listener_wrong_key_fails_both_sides)
{
    kart_listener_options o = {.auth = {.authkey = KEY, .authkey_len = strlen(KEY)}};
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", &o), 0);
    char addr[64];
    kart_listener_address(l, addr, sizeof(addr));
    kart_auth wrong = {.authkey = "nope", .authkey_len = 4};
    pid_t pid = client_child(addr, &wrong);
    kart_conn *c = NULL;
    ck_assert_int_eq(accept_child(l, &c, pid), KART_EAUTH);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(child_status(pid), 3);
    /* The listener goes on serving. */
    serve_one(l, &o.auth);
    kart_listener_free(l);
}
END_TEST

START_TEST(listener_silent_peer_cannot_hold_it)
{
    kart_listener_options o = {
        .auth = {.authkey = KEY, .authkey_len = strlen(KEY), .timeout_ns = 100 * KT_MS}};
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", &o), 0);
    char addr[64];
    kart_listener_address(l, addr, sizeof(addr));
    /* A client that connects and says nothing (no authkey). */
    kart_conn *silent;
    ck_assert_int_eq(kart_conn_connect(&silent, addr, NULL), 0);
    kart_conn *c;
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_listener_accept(l, &c, 10000 * KT_MS),
                     KART_EHANDSHAKE); /* not -ETIMEDOUT: a peer came */
    ck_assert_int_lt(kart_now_ns() - t0, 5000 * KT_MS);
    /* The silent one was closed: it sees the challenge, then the end. */
    void *m;
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes(silent, &m, &n, 256), 0);
    free(m);
    ck_assert_int_eq(kart_conn_recv_bytes(silent, &m, &n, 256), KART_EEOF);
    kart_conn_close(silent);
    kart_listener_free(l);
}
END_TEST

START_TEST(listener_and_client_errors)
{
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(NULL, "x", NULL), -EINVAL);
    ck_assert_int_eq(kart_listener_create(&l, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_listener_create(&l, "", NULL), -EINVAL);
    ck_assert_int_eq(kart_listener_create(&l, "[::1]", NULL), -EINVAL);
    ck_assert_int_eq(kart_listener_create(&l, "[nothing]:80", NULL), -EINVAL);
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:65536", NULL), -EINVAL);
    ck_assert_int_eq(kart_listener_create(&l, "[::1]:123456", NULL), -EINVAL);
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = 0;
    ck_assert_int_eq(kart_listener_create(&l, longpath, NULL), -EINVAL);
    ck_assert_int_eq(kart_listener_create(&l, "/nonexistent-dir/x.sock", NULL), -ENOENT);
    ck_assert_int_eq(kart_listener_create(&l, "no-such-host.invalid:80", NULL), -EHOSTUNREACH);
    kart_listener_options o = {.backlog = -1};
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", &o), -EINVAL);
    o = (kart_listener_options){.auth = {.authkey = KEY, .authkey_len = 1, .digest = "sha1"}};
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", &o), -EINVAL);
    ck_assert_int_eq(kart_listener_fileno(NULL), -EINVAL);
    ck_assert_int_eq(kart_listener_accept(NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", NULL), 0);
    kart_conn *c;
    ck_assert_int_eq(kart_listener_accept(l, &c, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_listener_accept(l, &c, 20 * KT_MS), -ETIMEDOUT);
    char addr[64];
    kart_listener_address(l, addr, sizeof(addr));
    kart_listener_free(l);
    ck_assert_int_eq(kart_conn_connect(NULL, addr, NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_connect(&c, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_connect(&c, "", NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_connect(&c, addr, NULL), -ECONNREFUSED);
    ck_assert_int_eq(kart_conn_connect(&c, "/nonexistent-dir/x.sock", NULL), -ENOENT);
    kart_auth bad = {.authkey = NULL, .authkey_len = 2};
    ck_assert_int_eq(kart_conn_connect(&c, addr, &bad), -EINVAL);
}
END_TEST

/* A unix listener that accepts no one: once its backlog is full, a
 * connect waits, and gives up with -ETIMEDOUT at the deadline. */
START_TEST(client_times_out_on_a_full_backlog)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/kart-backlog-%d.sock", (int)getpid());
    unlink(path);
    kart_listener_options o = {.backlog = 1};
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, path, &o), 0);
    kart_conn *c[8];
    kart_auth quick = {.timeout_ns = 50 * KT_MS};
    int n = 0, r = 0;
    while (n < 8 && (r = kart_conn_connect(&c[n], path, &quick)) == 0)
        n++;
    ck_assert_int_eq(r, -ETIMEDOUT);
    ck_assert_int_ge(n, 1);
    ck_assert_int_le(n, 3);
    for (int i = 0; i < n; i++)
        kart_conn_close(c[i]);
    kart_listener_free(l);
}
END_TEST

static void *accept_one(void *arg)
{
    kart_listener *l = arg;
    kart_conn *c;
    int r = kart_listener_accept(l, &c, 20000 * KT_MS);
    if (r == 0) {
        r = kart_conn_send_bytes(c, "hi", 2);
        kart_conn_close(c);
    }
    return (void *)(intptr_t)r;
}

START_TEST(listener_accepts_in_several_threads)
{
    kart_listener_options o = {.auth = {.authkey = KEY, .authkey_len = strlen(KEY)}};
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", &o), 0);
    char addr[64];
    kart_listener_address(l, addr, sizeof(addr));
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, accept_one, l), 0);
    kart_conn *c[2];
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(kart_conn_connect(&c[i], addr, &o.auth), 0);
        char buf[2];
        size_t n;
        ck_assert_int_eq(kart_conn_recv_bytes_into(c[i], buf, 2, &n), 0);
        ck_assert_mem_eq(buf, "hi", 2);
    }
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        ck_assert_int_eq((int)(intptr_t)r, 0);
        kart_conn_close(c[i]);
    }
    kart_listener_free(l);
}
END_TEST

START_TEST(wait_over_a_listener)
{
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", NULL), 0);
    kart_waitable w = {.kind = KART_WAIT_LISTENER, .u.listener = l};
    ck_assert_int_eq(kart_conn_wait(&w, 1, 0), 0);
    char addr[64];
    kart_listener_address(l, addr, sizeof(addr));
    kart_conn *cl, *sv;
    ck_assert_int_eq(kart_conn_connect(&cl, addr, NULL), 0);
    ck_assert_int_eq(kart_conn_wait(&w, 1, 5000 * KT_MS), 1);
    ck_assert_int_eq(w.ready, 1);
    ck_assert_int_eq(kart_listener_accept(l, &sv, 0), 0);
    kart_conn_close(cl);
    kart_conn_close(sv);
    kart_listener_free(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("listener");
    TCase *tc = tcase_create("auth");
    tcase_set_timeout(tc, 60); /* python3 starts, and handshakes fork */
    tcase_add_test(tc, responses_match_pythons_hmac);
    tcase_add_test(tc, split_follows_pythons_rules);
    tcase_add_test(tc, handshake_every_digest_and_legacy);
    tcase_add_loop_test(tc, handshake_wrong_key_fails_both_sides, 0, 2);
    tcase_add_test(tc, handshake_require_modern_refuses_legacy_replies);
    tcase_add_test(tc, handshake_rejects_bad_arguments);
    tcase_add_test(tc, handshake_garbage_is_refused);
    tcase_add_test(tc, handshake_silent_peer_times_out);
    tcase_add_test(tc, replies_cut_short_are_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("listener");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, listener_unix_path);
    tcase_add_loop_test(tc, listener_abstract_and_tcp, 0, 4);
    tcase_add_test(tc, listener_without_auth);
    tcase_add_test(tc, listener_wrong_key_fails_both_sides);
    tcase_add_test(tc, listener_silent_peer_cannot_hold_it);
    tcase_add_test(tc, listener_and_client_errors);
    tcase_add_test(tc, wait_over_a_listener);
    tcase_add_test(tc, listener_accepts_in_several_threads);
    tcase_add_test(tc, client_times_out_on_a_full_backlog);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

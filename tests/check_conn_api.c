/*
 * check_conn_api.c — the connection API of 0.2 (issue 15): fd passing over
 * a connection and over a plain socket (Python's send_handle/recv_handle),
 * closing from inside a callback, a listener's last_accepted, freeing a
 * listener while other threads block in accept, and accepting on a loop
 * with the handshake driven by the loop (a silent peer delays no one).
 */
#define KT_LOOP_HELPERS
#include "testutil.h"

#include "listener_private.h"

#include <kart/conn.h>
#include <kart/loop.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static const char KEY[] = "api key";

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

/* Whether a and b are the same open file (a received handle). */
static bool same_file(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
           sa.st_dev == sb.st_dev;
}

/* ---- fd passing ---- */

START_TEST(handle_over_a_connection)
{
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    int p[2];
    kt_pipe(p);
    /* Messages, a handle, a message: the receiver's first read takes all
     * of them ahead; the handle must survive the read-ahead. */
    ck_assert_int_eq(kart_conn_send_bytes(a, "one", 3), 0);
    ck_assert_int_eq(kart_conn_send_bytes(a, "two", 3), 0);
    ck_assert_int_eq(kart_conn_send_handle(a, p[1]), 0);
    ck_assert_int_eq(kart_conn_send_bytes(a, "three", 5), 0);
    char buf[8];
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, buf, sizeof(buf), &n), 0);
    ck_assert_mem_eq(buf, "one", 3);
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, buf, sizeof(buf), &n), 0);
    ck_assert_mem_eq(buf, "two", 3);
    int fd = -1;
    ck_assert_int_eq(kart_conn_recv_handle(b, &fd), 0);
    ck_assert_int_ge(fd, 0);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ck_assert(same_file(fd, p[1]));
    ck_assert_int_eq(write(fd, "z", 1), 1); /* it writes into our pipe */
    ck_assert_int_eq(read(p[0], buf, 1), 1);
    ck_assert_int_eq(buf[0], 'z');
    close(fd);
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, buf, sizeof(buf), &n), 0);
    ck_assert_uint_eq(n, 5);
    /* Nothing read ahead: the handle comes straight from the socket. */
    ck_assert_int_eq(kart_conn_send_handle(b, p[0]), 0);
    ck_assert_int_eq(kart_conn_recv_handle(a, &fd), 0);
    ck_assert(same_file(fd, p[0]));
    close(fd);
    /* The plain-socket form speaks the same wire form both ways. */
    ck_assert_int_eq(kart_unix_send_fd(kart_conn_fileno(a), p[1]), 0);
    ck_assert_int_eq(kart_conn_recv_handle(b, &fd), 0);
    ck_assert(same_file(fd, p[1]));
    close(fd);
    ck_assert_int_eq(kart_conn_send_handle(b, p[1]), 0);
    ck_assert_int_eq(kart_unix_recv_fd(kart_conn_fileno(a), &fd), 0);
    ck_assert(same_file(fd, p[1]));
    close(fd);
    kart_conn_close(a);
    kart_conn_close(b);
    close2(p);
}
END_TEST

START_TEST(handle_errors)
{
    kart_conn *a, *b, *r, *w;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    ck_assert_int_eq(kart_conn_pipe(&r, &w, 0, 0), 0);
    int fd = 12345;
    ck_assert_int_eq(kart_conn_send_handle(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_conn_recv_handle(NULL, &fd), -EINVAL);
    ck_assert_int_eq(kart_conn_recv_handle(b, NULL), -EINVAL);
    ck_assert_int_eq(kart_conn_send_handle(a, -1), -EBADF);
    int p[2];
    kt_pipe(p);
    int closed = dup(p[0]);
    close(closed);
    ck_assert_int_eq(kart_conn_send_handle(a, closed), -EBADF);
    /* Direction: a reading end does not send, a writing end not receive. */
    ck_assert_int_eq(kart_conn_send_handle(r, p[0]), -EBADF);
    ck_assert_int_eq(kart_conn_recv_handle(w, &fd), -EBADF);
    /* Not a unix socket: a one-way pipe, a TCP connection. */
    ck_assert_int_eq(kart_conn_send_handle(w, p[0]), -EOPNOTSUPP);
    ck_assert_int_eq(kart_conn_recv_handle(r, &fd), -EOPNOTSUPP);
    int tv[2];
    kt_tcp_pair(tv);
    kart_conn *t;
    ck_assert_int_eq(kart_conn_from_fd(&t, tv[0], KART_CONN_READABLE | KART_CONN_WRITABLE), 0);
    ck_assert_int_eq(kart_conn_send_handle(t, p[0]), -EOPNOTSUPP);
    ck_assert_int_eq(kart_conn_recv_handle(t, &fd), -EOPNOTSUPP);
    kart_conn_close(t);
    close(tv[1]);
    /* A message is next, its header already read: -EPROTO, and the
     * message is still there. */
    ck_assert_int_eq(kart_conn_send_bytes(a, "msg", 3), 0);
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, NULL, 0, &n), -ENOBUFS);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(kart_conn_recv_handle(b, &fd), -EPROTO);
    char buf[4];
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, buf, sizeof(buf), &n), 0);
    ck_assert_mem_eq(buf, "msg", 3);
    ck_assert_int_eq(fd, 12345); /* never written on failure */
    /* A message next, nothing read yet: the stream is out of step. */
    ck_assert_int_eq(kart_conn_send_bytes(a, "msg", 3), 0);
    ck_assert_int_eq(kart_conn_recv_handle(b, &fd), -EPROTO);
    ck_assert_int_eq(kart_conn_recv_handle(b, &fd), -ECONNABORTED);
    ck_assert_int_eq(kart_conn_send_handle(b, p[0]), -ECONNABORTED);
    kart_conn_close(a);
    kart_conn_close(b);
    /* The peer closed first. */
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    kart_conn_close(a);
    ck_assert_int_eq(kart_conn_recv_handle(b, &fd), KART_EEOF);
    ck_assert_int_eq(kart_conn_recv_handle(b, &fd), KART_EEOF);
    ck_assert_int_eq(kart_conn_send_handle(b, p[0]), -EPIPE);
    kart_conn_close(b);
    kart_conn_close(r);
    kart_conn_close(w);
    close2(p);
}
END_TEST

static void never_sent(kart_conn *c, int status, void *arg)
{
    (void)c, (void)status, (void)arg;
}

static void never_recv(kart_conn *c, int status, const void *m, size_t n, void *arg)
{
    (void)c, (void)status, (void)m, (void)n, (void)arg;
}

START_TEST(handle_busy_on_a_loop)
{
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    ck_assert_int_eq(kart_conn_attach(a, loop), 0);
    ck_assert_int_eq(kart_conn_attach(b, loop), 0);
    ck_assert_int_eq(kart_conn_send_async(a, "x", 1, never_sent, NULL), 0);
    ck_assert_int_eq(kart_conn_send_handle(a, 0), -EBUSY);
    ck_assert_int_eq(kart_conn_recv_start(b, 10, never_recv, NULL), 0);
    int fd;
    ck_assert_int_eq(kart_conn_recv_handle(b, &fd), -EBUSY);
    kart_conn_close(a);
    kart_conn_close(b);
    kart_loop_free(loop);
}
END_TEST

START_TEST(unclaimed_handles_are_closed_with_the_connection)
{
    int before = count_fds();
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    ck_assert_int_eq(kart_conn_send_bytes(a, "m", 1), 0);
    ck_assert_int_eq(kart_conn_send_handle(a, 0), 0);
    ck_assert_int_eq(kart_conn_send_handle(a, 1), 0);
    char buf[2];
    size_t n;
    ck_assert_int_eq(kart_conn_poll(b, 1000 * KT_MS), 1);
    usleep(20000); /* let everything arrive, so that the reads take it */
    ck_assert_int_eq(kart_conn_recv_bytes_into(b, buf, sizeof(buf), &n), 0);
    ck_assert_int_eq(kart_conn_poll(b, 0), 1); /* a handle is next */
    kart_conn_close(a);
    kart_conn_close(b);
    ck_assert_int_eq(count_fds(), before);
}
END_TEST

START_TEST(plain_socket_handle_errors)
{
    int sv[2], fd = 7;
    kt_socketpair(sv);
    ck_assert_int_eq(kart_unix_send_fd(-1, 0), -EBADF);
    ck_assert_int_eq(kart_unix_send_fd(sv[0], -1), -EBADF);
    ck_assert_int_eq(kart_unix_recv_fd(-1, &fd), -EBADF);
    ck_assert_int_eq(kart_unix_recv_fd(sv[0], NULL), -EINVAL);
    /* Bytes that are not a handle. */
    ck_assert_int_eq(write(sv[0], "x", 1), 1);
    ck_assert_int_eq(kart_unix_recv_fd(sv[1], &fd), -EPROTO);
    ck_assert_int_eq(fd, 7);
    close(sv[0]);
    ck_assert_int_eq(kart_unix_recv_fd(sv[1], &fd), KART_EEOF);
    close(sv[1]);
}
END_TEST

/* ---- closing from inside a callback ---- */

static int recv_calls;
static void close_in_recv(kart_conn *c, int status, const void *m, size_t n, void *arg)
{
    (void)status, (void)m, (void)n, (void)arg;
    recv_calls++;
    kart_conn_close(c); /* freed when this returns */
}

static int sent_calls;
static void close_in_send(kart_conn *c, int status, void *arg)
{
    (void)status, (void)arg; /* -EPIPE: the reading end is closed by now */
    sent_calls++;
    kart_conn_close(c);
}

START_TEST(close_inside_a_callback_is_deferred)
{
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    kart_conn *a, *b;
    ck_assert_int_eq(kart_conn_pipe(&a, &b, 1, 0), 0);
    ck_assert_int_eq(kart_conn_attach(a, loop), 0);
    ck_assert_int_eq(kart_conn_attach(b, loop), 0);
    /* Three messages already queued: after the close in the first
     * callback, no other is delivered and nothing touches b. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(kart_conn_send_bytes(a, "abc", 3), 0);
    recv_calls = 0;
    ck_assert_int_eq(kart_conn_recv_start(b, 10, close_in_recv, NULL), 0);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(recv_calls, 1);
    /* A send callback that closes: the later sends end with -ECANCELED
     * inside that close, and their callbacks see it. */
    sent_calls = 0;
    ck_assert_int_eq(kart_conn_send_async(a, "x", 1, close_in_send, NULL), 0);
    ck_assert_int_eq(kart_conn_send_async(a, "y", 1, close_in_send, NULL), 0);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(sent_calls, 2); /* both closed it: freed once, after the last */
    kart_loop_free(loop);
}
END_TEST

/* ---- last_accepted ---- */

static void accept_peer(kart_listener *l, const char *expect)
{
    kart_conn *c;
    ck_assert_int_eq(kart_listener_accept(l, &c, 5000 * KT_MS), 0);
    char buf[128];
    int n = kart_listener_last_accepted(l, buf, sizeof(buf));
    ck_assert_int_eq(n, (int)strlen(expect));
    ck_assert_str_eq(buf, expect);
    kart_conn_close(c);
}

static void tmp_path(char *buf, size_t size, const char *what)
{
    snprintf(buf, size, "/tmp/kart-api-%d-%s", (int)getpid(), what);
    unlink(buf);
}

/* A raw unix client bound to `name` (a path, or "@abstract"). */
static int unix_client_bound(const char *listener, const char *name)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_un me = {.sun_family = AF_UNIX};
    socklen_t len;
    if (name[0] == '@') {
        memcpy(me.sun_path + 1, name + 1, strlen(name) - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
    } else {
        strcpy(me.sun_path, name);
        len = (socklen_t)sizeof(me);
    }
    ck_assert_int_eq(bind(s, (struct sockaddr *)&me, len), 0);
    struct sockaddr_un to = {.sun_family = AF_UNIX};
    strcpy(to.sun_path, listener);
    ck_assert_int_eq(connect(s, (struct sockaddr *)&to, sizeof(to)), 0);
    return s;
}

START_TEST(last_accepted_of_each_family)
{
    char lpath[108], cpath[108], buf[8];
    tmp_path(lpath, sizeof(lpath), "l");
    tmp_path(cpath, sizeof(cpath), "c");
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, lpath, NULL), 0);
    ck_assert_int_eq(kart_listener_last_accepted(l, buf, sizeof(buf)), -ENOTCONN);
    ck_assert_int_eq(kart_listener_last_accepted(NULL, buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(kart_listener_last_accepted(l, NULL, 4), -EINVAL);
    /* Unnamed (what kart_conn_connect makes): "". */
    kart_conn *cl;
    ck_assert_int_eq(kart_conn_connect(&cl, lpath, NULL), 0);
    accept_peer(l, "");
    kart_conn_close(cl);
    /* A client bound to a path, then to an abstract name. */
    int s = unix_client_bound(lpath, cpath);
    accept_peer(l, cpath);
    ck_assert_int_eq(kart_listener_last_accepted(l, buf, sizeof(buf)), -ENOSPC);
    close(s);
    unlink(cpath);
    char abs[64];
    snprintf(abs, sizeof(abs), "@kart-api-%d", (int)getpid());
    s = unix_client_bound(lpath, abs);
    accept_peer(l, abs);
    close(s);
    kart_listener_free(l);
    /* TCP over IPv4: the client's own address and port. */
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", NULL), 0);
    char addr[64];
    ck_assert_int_gt(kart_listener_address(l, addr, sizeof(addr)), 0);
    ck_assert_int_eq(kart_conn_connect(&cl, addr, NULL), 0);
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    ck_assert_int_eq(getsockname(kart_conn_fileno(cl), (struct sockaddr *)&me, &ml), 0);
    char expect[64];
    snprintf(expect, sizeof(expect), "127.0.0.1:%u", ntohs(me.sin_port));
    accept_peer(l, expect);
    kart_conn_close(cl);
    kart_listener_free(l);
    /* IPv6, where the host has it. */
    if (kart_listener_create(&l, "[::1]:0", NULL) == 0) {
        ck_assert_int_gt(kart_listener_address(l, addr, sizeof(addr)), 0);
        ck_assert_int_eq(kart_conn_connect(&cl, addr, NULL), 0);
        struct sockaddr_in6 me6;
        ml = sizeof(me6);
        ck_assert_int_eq(getsockname(kart_conn_fileno(cl), (struct sockaddr *)&me6, &ml), 0);
        snprintf(expect, sizeof(expect), "[::1]:%u", ntohs(me6.sin6_port));
        accept_peer(l, expect);
        kart_conn_close(cl);
        kart_listener_free(l);
    }
}
END_TEST

/* ---- free against blocked accepts ---- */

typedef struct blocked {
    kart_listener *l;
    atomic_int result;
} blocked;

/* The number of threads inside kart_listener_accept (the private count
 * that free waits on): free can only wait for accepts that have begun. */
static int accepts_inside(kart_listener *l)
{
    pthread_mutex_lock(&l->mu);
    int n = l->active;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static void *accept_forever(void *arg)
{
    blocked *b = arg;
    kart_conn *c = NULL;
    int r = kart_listener_accept(b->l, &c, -1);
    if (r == 0)
        kart_conn_close(c);
    atomic_store(&b->result, r);
    return NULL;
}

static void free_against_accepts(const kart_listener_options *o, bool silent_peer)
{
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", o), 0);
    char addr[64];
    ck_assert_int_gt(kart_listener_address(l, addr, sizeof(addr)), 0);
    enum { N = 3 };
    blocked b[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        b[i] = (blocked){.l = l, .result = 1};
        ck_assert_int_eq(pthread_create(&t[i], NULL, accept_forever, &b[i]), 0);
    }
    while (accepts_inside(l) < N)
        usleep(1000);
    kart_conn *silent = NULL;
    if (silent_peer) { /* one accepter takes it and waits in the handshake */
        ck_assert_int_eq(kart_conn_connect(&silent, addr, NULL), 0);
        for (;;) {
            pthread_mutex_lock(&l->mu);
            bool in_handshake = l->accepting != NULL;
            pthread_mutex_unlock(&l->mu);
            if (in_handshake)
                break;
            usleep(1000);
        }
    }
    usleep(20000); /* let them block in poll */
    int64_t t0 = kart_now_ns();
    kart_listener_free(l);
    /* Free returns once every accept has left the listener; the threads
     * store their results just after, so join before reading them. */
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_lt(kart_now_ns() - t0, 3000 * KT_MS);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&b[i].result), -ECANCELED);
    kart_conn_close(silent);
}

static void *accept_briefly(void *arg)
{
    blocked *b = arg;
    kart_conn *c = NULL;
    /* Long enough that the winner, which may have waited inside for a
     * while before the peer connects (a loaded sanitizer run), still takes
     * it; the losers' bug this catches would block them forever. */
    int r = kart_listener_accept(b->l, &c, 1500 * KT_MS);
    if (r == 0)
        kart_conn_close(c);
    atomic_store(&b->result, r);
    return NULL;
}

/* Three accepters wake for one peer: the two that lose the race go back
 * to waiting and time out, instead of blocking in accept(2) for the next
 * peer (the listening fd is non-blocking). */
START_TEST(accepters_that_lose_the_race_still_time_out)
{
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", NULL), 0);
    char addr[64];
    ck_assert_int_gt(kart_listener_address(l, addr, sizeof(addr)), 0);
    blocked b[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        b[i] = (blocked){.l = l, .result = 1};
        ck_assert_int_eq(pthread_create(&t[i], NULL, accept_briefly, &b[i]), 0);
    }
    while (accepts_inside(l) < 3)
        usleep(1000);
    kart_conn *c;
    ck_assert_int_eq(kart_conn_connect(&c, addr, NULL), 0);
    int ok = 0, timed_out = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        int r = atomic_load(&b[i].result);
        ok += r == 0;
        timed_out += r == -ETIMEDOUT;
    }
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(timed_out, 2);
    kart_conn_close(c);
    kart_listener_free(l);
}
END_TEST

START_TEST(free_wakes_blocked_accepts)
{
    free_against_accepts(NULL, false);
}
END_TEST

START_TEST(free_cuts_a_handshake_short)
{
    kart_listener_options o = {.auth = {.authkey = KEY, .authkey_len = strlen(KEY)}};
    free_against_accepts(&o, true); /* the handshake's timeout is 10 s */
}
END_TEST

/* ---- accepting on a loop ---- */

typedef struct accepted {
    int n_ok, n_err, last_err;
    int order[8]; /* 0 ok, else the error, in the order they came */
    int norder;
    kart_conn *conns[8];
    int64_t ok_at, err_at;
    int stop_after;
    kart_loop *loop;
} accepted;

static void on_accept(kart_listener *l, int status, kart_conn *c, void *arg)
{
    (void)l;
    accepted *a = arg;
    if (a->norder < 8)
        a->order[a->norder++] = status;
    if (status == 0) {
        ck_assert_ptr_nonnull(c);
        a->conns[a->n_ok++] = c;
        a->ok_at = kart_now_ns();
    } else {
        ck_assert_ptr_null(c);
        a->n_err++;
        a->last_err = status;
        a->err_at = kart_now_ns();
    }
    if (a->n_ok + a->n_err == a->stop_after)
        kart_loop_stop(a->loop);
}

typedef struct client {
    char addr[64];
    kart_auth auth;
    int64_t delay_ns;
    int result;
    int64_t done_at;
} client;

/* Connects with auth, sends "hi" and waits for "ok". */
static void *client_fn(void *arg)
{
    client *c = arg;
    if (c->delay_ns)
        sleep_ns(c->delay_ns);
    kart_conn *conn;
    c->result = kart_conn_connect(&conn, c->addr, &c->auth);
    if (c->result == 0) {
        c->result = kart_conn_send_bytes(conn, "hi", 2);
        char buf[4];
        size_t n;
        if (c->result == 0)
            c->result = kart_conn_recv_bytes_into(conn, buf, sizeof(buf), &n);
        kart_conn_close(conn);
    }
    c->done_at = kart_now_ns();
    return NULL;
}

static void answer_hi(kart_conn *c)
{
    char buf[4];
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes_into(c, buf, sizeof(buf), &n), 0);
    ck_assert_mem_eq(buf, "hi", 2);
    ck_assert_int_eq(kart_conn_send_bytes(c, "ok", 2), 0);
}

START_TEST(a_silent_peer_delays_no_one)
{
    LOOP_OR_SKIP(_i);
    kart_listener_options o = {
        .auth = {.authkey = KEY, .authkey_len = strlen(KEY), .timeout_ns = 2000 * KT_MS}};
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", &o), 0);
    accepted a = {.stop_after = 2, .loop = loop};
    ck_assert_int_eq(kart_listener_accept_start(l, loop, on_accept, &a), 0);
    client c = {.auth = o.auth};
    ck_assert_int_gt(kart_listener_address(l, c.addr, sizeof(c.addr)), 0);
    /* The silent peer comes first; the good one 100 ms later. */
    kart_conn *silent;
    ck_assert_int_eq(kart_conn_connect(&silent, c.addr, NULL), 0);
    c.delay_ns = 100 * KT_MS;
    int64_t t0 = kart_now_ns();
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, client_fn, &c), 0);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    /* The good peer was accepted and authenticated first, well before the
     * silent one's deadline; the silent one then failed on its own. */
    ck_assert_int_eq(a.n_ok, 1);
    ck_assert_int_eq(a.order[0], 0);
    ck_assert_int_eq(a.order[1], KART_EHANDSHAKE);
    ck_assert_int_lt(a.ok_at - t0, 1900 * KT_MS);
    ck_assert_int_ge(a.err_at - t0, 1900 * KT_MS);
    answer_hi(a.conns[0]); /* a blocking connection, ready to use */
    pthread_join(t, NULL);
    ck_assert_int_eq(c.result, 0);
    kart_conn_close(a.conns[0]);
    /* The silent peer saw the challenge, then the end. */
    void *m;
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes(silent, &m, &n, 256), 0);
    free(m);
    ck_assert_int_eq(kart_conn_recv_bytes(silent, &m, &n, 256), KART_EEOF);
    kart_conn_close(silent);
    char peer[64];
    ck_assert_int_gt(kart_listener_last_accepted(l, peer, sizeof(peer)), 0);
    kart_listener_free(l);
    close_loop(loop);
}
END_TEST

START_TEST(loop_accept_results)
{
    kart_loop *loop;
    ck_assert_int_eq(kart_loop_create(&loop, NULL), 0);
    kart_listener_options o = {.auth = {.authkey = KEY, .authkey_len = strlen(KEY)}};
    kart_listener *l;
    ck_assert_int_eq(kart_listener_create(&l, "127.0.0.1:0", &o), 0);
    accepted a = {.stop_after = 3, .loop = loop};
    ck_assert_int_eq(kart_listener_accept_start(NULL, loop, on_accept, &a), -EINVAL);
    ck_assert_int_eq(kart_listener_accept_start(l, NULL, on_accept, &a), -EINVAL);
    ck_assert_int_eq(kart_listener_accept_start(l, loop, NULL, &a), -EINVAL);
    ck_assert_int_eq(kart_listener_accept_stop(NULL), -EINVAL);
    ck_assert_int_eq(kart_listener_accept_stop(l), 0); /* not accepting */
    ck_assert_int_eq(kart_listener_accept_start(l, loop, on_accept, &a), 0);
    ck_assert_int_eq(kart_listener_accept_start(l, loop, on_accept, &a), -EBUSY);
    client good = {.auth = o.auth}, bad = {.auth = {.authkey = "nope", .authkey_len = 4}},
           good2 = {.auth = o.auth};
    good2.auth.digest = "legacy"; /* a 3.11-style client */
    ck_assert_int_gt(kart_listener_address(l, good.addr, sizeof(good.addr)), 0);
    strcpy(bad.addr, good.addr);
    strcpy(good2.addr, good.addr);
    pthread_t t[3];
    ck_assert_int_eq(pthread_create(&t[0], NULL, client_fn, &good), 0);
    ck_assert_int_eq(pthread_create(&t[1], NULL, client_fn, &bad), 0);
    ck_assert_int_eq(pthread_create(&t[2], NULL, client_fn, &good2), 0);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    for (int i = 0; i < a.n_ok; i++)
        answer_hi(a.conns[i]);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(a.n_ok, 2);
    ck_assert_int_eq(a.n_err, 1);
    ck_assert_int_eq(a.last_err, KART_EAUTH);
    for (int i = 0; i < a.n_ok; i++)
        kart_conn_close(a.conns[i]);
    ck_assert_int_eq(good.result, 0);
    ck_assert_int_eq(good2.result, 0);
    ck_assert_int_eq(bad.result, KART_EAUTH);
    /* Stop with a peer in its handshake: it is closed, no callback. */
    kart_conn *silent;
    ck_assert_int_eq(kart_conn_connect(&silent, good.addr, NULL), 0);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0); /* it is accepted */
    for (int i = 0; i < 50 && kart_conn_poll(silent, 0) == 0; i++)
        ck_assert_int_ge(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_eq(kart_listener_accept_stop(l), 0);
    int before = a.n_ok + a.n_err;
    void *m;
    size_t n;
    ck_assert_int_eq(kart_conn_recv_bytes(silent, &m, &n, 256), 0); /* the challenge */
    free(m);
    ck_assert_int_eq(kart_conn_recv_bytes(silent, &m, &n, 256), KART_EEOF);
    kart_conn_close(silent);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(a.n_ok + a.n_err, before);
    /* A listener without a key hands peers over at once; free stops it. */
    kart_listener *plain;
    ck_assert_int_eq(kart_listener_create(&plain, "127.0.0.1:0", NULL), 0);
    accepted b = {.stop_after = 1, .loop = loop};
    ck_assert_int_eq(kart_listener_accept_start(plain, loop, on_accept, &b), 0);
    char addr[64];
    ck_assert_int_gt(kart_listener_address(plain, addr, sizeof(addr)), 0);
    kart_conn *cl;
    ck_assert_int_eq(kart_conn_connect(&cl, addr, NULL), 0);
    ck_assert_int_ge(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(b.n_ok, 1);
    ck_assert_int_eq(kart_conn_send_bytes(cl, "x", 1), 0);
    char buf[2];
    ck_assert_int_eq(kart_conn_recv_bytes_into(b.conns[0], buf, sizeof(buf), &n), 0);
    kart_conn_close(b.conns[0]);
    kart_conn_close(cl);
    kart_listener_free(plain);
    kart_listener_free(l);
    kart_loop_free(loop);
}
END_TEST

START_TEST(from_fd_takes_the_fd_on_success_only)
{
    int sv[2];
    kt_socketpair(sv);
    kart_conn *c;
    ck_assert_int_eq(kart_conn_from_fd(&c, sv[0], 0), -EINVAL);
    ck_assert_int_eq(kart_conn_from_fd(NULL, sv[0], KART_CONN_READABLE), -EINVAL);
    ck_assert_int_ge(fcntl(sv[0], F_GETFD), 0); /* still open, still ours */
    ck_assert_int_eq(kart_conn_from_fd(&c, sv[0], KART_CONN_READABLE), 0);
    kart_conn_close(c);
    ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1); /* the connection closed it */
    close(sv[1]);
}
END_TEST

int main(void)
{
    kt_print_backends();
    Suite *s = suite_create("conn_api");
    TCase *tc = tcase_create("handles");
    tcase_add_test(tc, handle_over_a_connection);
    tcase_add_test(tc, handle_errors);
    tcase_add_test(tc, handle_busy_on_a_loop);
    tcase_add_test(tc, unclaimed_handles_are_closed_with_the_connection);
    tcase_add_test(tc, plain_socket_handle_errors);
    tcase_add_test(tc, close_inside_a_callback_is_deferred);
    tcase_add_test(tc, from_fd_takes_the_fd_on_success_only);
    suite_add_tcase(s, tc);
    tc = tcase_create("listener");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, last_accepted_of_each_family);
    tcase_add_test(tc, accepters_that_lose_the_race_still_time_out);
    tcase_add_test(tc, free_wakes_blocked_accepts);
    tcase_add_test(tc, free_cuts_a_handshake_short);
    tcase_add_loop_test(tc, a_silent_peer_delays_no_one, 0, kt_nbackends());
    tcase_add_test(tc, loop_accept_results);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

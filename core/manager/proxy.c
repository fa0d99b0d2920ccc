/*
 * core/manager/proxy.c — the client side: a manager handle with one
 * connection per thread for method calls (as Python's BaseProxy keeps one
 * per thread) and one "session" connection, under a mutex, for create,
 * incref and decref, so that the references of a process live and die with
 * its handle. A forked child opens its own connections on first use, and
 * takes its own reference for each inherited proxy it uses.
 */
#include "conn_private.h"
#include "deadline.h"
#include "mgr_private.h"
#include "server_replies.h"
#include "shm_path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* mgrbench hook: the pid without a system call per call (proxy_pid.c) */
#include "proxy_hook.h"
#define getpid() mgr__getpid()


typedef struct tconn {
    kart_conn *c;
    kart_manager *m;
    pid_t pid;
    struct tconn *next, *prev;
} tconn;

struct kart_manager {
    char address[256];
    kart_manager_options opts;
    void *key;
    pthread_mutex_t mu;
    pid_t pid;       /* the process the connections below belong to */
    kart_conn *sess; /* create/incref/decref, under mu */
    bool python;     /* a server without kart's extensions (python3's) */
    pthread_key_t tls;
    tconn conns;                       /* every thread's connection, under mu */
    kart_manager *reg_next, *reg_prev; /* the fork registry, under reg_mu */
};

/* Every handle's mutex is taken around fork (pthread_atfork), so that a
 * child never inherits one locked by a thread that does not exist there. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static kart_manager reg_head = {.reg_next = &reg_head, .reg_prev = &reg_head};
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&reg_mu);
    for (kart_manager *m = reg_head.reg_next; m != &reg_head; m = m->reg_next)
        pthread_mutex_lock(&m->mu);
}

static void fork_done(void)
{
    for (kart_manager *m = reg_head.reg_next; m != &reg_head; m = m->reg_next)
        pthread_mutex_unlock(&m->mu);
    pthread_mutex_unlock(&reg_mu);
}

static void reg_init(void)
{
    pthread_atfork(fork_prepare, fork_done, fork_done);
}

struct kart_proxy {
    kart_manager *m;
    pid_t pid; /* the process whose session holds our reference */
    char typeid[64];
    char ident[32];
    mshm_slot fast; /* the same-host fast path (shm_client.c) */
};

/* ---- wire ---- */

/* Whether v is a str that contains text (the server's refusal and idle
 * notices, server_replies.h). */
static bool says(const kart_obj *v, const char *text)
{
    size_t n = 0;
    const char *p = mv_kind(v) == MV_STR ? mv_get_str(v, &n) : NULL;
    return p && memmem(p, n, text, strlen(text)) != NULL;
}

static int open_conn(kart_manager *m, kart_conn **out)
{
    kart_auth auth = {.authkey = m->opts.authkey,
                      .authkey_len = m->opts.authkey_len,
                      .timeout_ns = m->opts.timeout_ns};
    kart_conn *c = NULL;
    int r = kart_conn_connect(&c, m->address, m->opts.authkey ? &auth : NULL);
    if (r < 0)
        return r;
    char name[64];
    snprintf(name, sizeof name, "kart-%d", (int)getpid());
    /* kart=True: tell me when a lock's holder died (a kart server) */
    kart_obj *kw = mv_dict_new();
    if (kw && !m->python && mv_dict_set(kw, mv_strz("kart"), mv_bool(true)) < 0) {
        mv_free(kw);
        kw = NULL;
    }
    kart_obj *req =
        mv_tuple(4, mv_none(), mv_strz("accept_connection"), mv_tuple(1, mv_strz(name)), kw);
    kart_obj *reply = NULL;
    r = req ? 0 : -ENOMEM;
    void *buf = NULL;
    size_t len = 0;
    if (r == 0)
        r = mv_pickle(req, m->opts.pickle_protocol, &buf, &len);
    mv_free(req);
    if (r == 0)
        r = kart_conn_send_bytes(c, buf, len);
    free(buf);
    buf = NULL;
    if (r == 0)
        r = kart_conn_recv_bytes(c, &buf, &len, m->opts.max_message);
    if (r == 0) {
        r = mv_unpickle(buf, len, &reply, NULL, 0) < 0 ? KART_EBADREPLY : 0;
        free(buf);
    }
    if (r == 0 && !(mv_kind(reply) == MV_TUPLE && mv_len(reply) == 2 &&
                    mv_is_str(mv_item(reply, 0), "#RETURN")))
        r = mv_kind(reply) == MV_TUPLE && mv_len(reply) == 2 &&
                    mv_is_str(mv_item(reply, 0), "#TRACEBACK")
                ? (says(mv_item(reply, 1), MGR_REFUSED_TEXT) ? -EUSERS : KART_EREMOTE)
                : KART_EBADREPLY;
    mv_free(reply);
    if (r < 0) {
        kart_conn_close(c);
        return r;
    }
    *out = c;
    return 0;
}

/* Sends (ident, method, args, kwds) on *cp and reads the reply. args and
 * kwds are taken (NULL: empty). Returns 0 with the value, KART_EREMOTE
 * with the exception or text, 1 with (exposed, token) for '#PROXY'. When
 * the request did not reach the server (it had closed *cp: the send fails
 * with -EPIPE or -ECONNRESET, or the reply is its notice that it closed
 * *cp for idleness, idle_timeout_ns, without running the call), *cp is
 * replaced by a new connection and the call sent again, once; if none
 * can be made, the error is returned and *cp left as it was. */
static int roundtrip(kart_manager *m, kart_conn **cp, const char *ident, const char *method,
                     kart_obj *args, kart_obj *kwds, kart_obj **result)
{
    if (!args)
        args = mv_tuple(0);
    if (!kwds)
        kwds = mv_dict_new();
    kart_obj *req = mv_tuple(4, ident ? mv_strz(ident) : mv_none(), mv_strz(method), args, kwds);
    if (!req)
        return -ENOMEM;
    void *buf = NULL;
    size_t len = 0;
    int r = mv_pickle(req, m->opts.pickle_protocol, &buf, &len);
    mv_free(req);
    if (r < 0)
        return r;
    if (len > m->opts.max_message) {
        free(buf);
        return -EMSGSIZE;
    }
    void *req_buf = buf;
    size_t req_len = len;
    kart_obj *reply = NULL;
    for (int tries = 0;; tries++) {
        /* the send, and the wait for the reply's first bytes, in one
         * system call where io_uring allows (conn_prefetch.c) */
        r = kart__conn_send_prefetch(*cp, req_buf, req_len);
        bool again = false;
        if (r == -EPIPE || r == -ECONNRESET) {
            /* the server had closed it (for idleness, say): the request
             * never reached it; a new connection, where one can be made.
             * Not a session's decref: a new session holds nothing to drop
             * (a session closed for idleness held nothing), and a plain
             * decref could take a reference that another client counts
             * on. Not to a Python server (no idle timeout; its public
             * calls go on fresh connections, never accepted ones). */
            again = tries == 0 && !m->python && (ident || strcmp(method, "decref") != 0);
        } else if (r == 0) {
            r = kart_conn_recv_bytes(*cp, &buf, &len, m->opts.max_message);
            if (r < 0)
                break;
            r = mv_unpickle(buf, len, &reply, NULL, 0);
            free(buf);
            if (r < 0) {
                r = r == -ENOMEM ? r : KART_EBADREPLY;
                break;
            }
            again = tries == 0 && mv_kind(reply) == MV_TUPLE && mv_len(reply) == 2 &&
                    mv_is_str(mv_item(reply, 0), "#TRACEBACK") &&
                    says(mv_item(reply, 1), MGR_IDLE_TEXT);
            if (again) {
                mv_free(reply);
                reply = NULL;
            }
        }
        if (!again)
            break;
        kart_conn *fresh = NULL;
        int e = open_conn(m, &fresh);
        if (e < 0) {
            r = r < 0 ? r : e; /* a send's error stays the call's */
            break;
        }
        kart_conn_close(*cp);
        *cp = fresh;
    }
    free(req_buf);
    if (r < 0)
        return r;
    const char *kind = mv_kind(reply) == MV_TUPLE && mv_len(reply) == 2
                           ? mv_get_str(mv_item(reply, 0), NULL)
                           : NULL;
    if (!kind) {
        mv_free(reply);
        return KART_EBADREPLY;
    }
    kart_obj *v = NULL;
    if (kart_obj_remove(reply, 1, &v) < 0) {
        mv_free(reply);
        return -ENOMEM;
    }
    if (strcmp(kind, "#RETURN") == 0)
        r = 0;
    else if (strcmp(kind, "#PROXY") == 0)
        r = 1;
    else if (strcmp(kind, "#ERROR") == 0 || strcmp(kind, "#TRACEBACK") == 0 ||
             strcmp(kind, "#UNSERIALIZABLE") == 0)
        r = KART_EREMOTE;
    else
        r = KART_EBADREPLY;
    mv_free(reply);
    if (r == KART_EBADREPLY) {
        mv_free(v);
        return r;
    }
    *result = v;
    return r;
}

/* In a forked child (m->mu held): forget the parent's connections. */
static void fork_reset_locked(kart_manager *m)
{
    if (m->pid != getpid()) {
        /* a forked child: the parent's connections are not ours */
        kart_conn_close(m->sess);
        m->sess = NULL;
        while (m->conns.next != &m->conns) {
            tconn *t = m->conns.next;
            t->next->prev = t->prev;
            t->prev->next = t->next;
            t->next = t->prev = t;
            t->m = NULL; /* a stale key value: its thread does not exist here */
        }
        m->pid = getpid();
    }
}

/* Called with m->mu held: the session connection of this process. */
static int session_locked(kart_manager *m, kart_conn **out)
{
    fork_reset_locked(m);
    if (!m->sess) {
        int r = open_conn(m, &m->sess);
        if (r < 0)
            return r;
    }
    *out = m->sess;
    return 0;
}

static int fresh_call(kart_manager *m, const char *fn, kart_obj *args, kart_obj *kwds,
                      kart_obj **res);

/* A public function on the session (args and kwds taken), or against a
 * Python server on a connection of its own, as Python's proxies do. */
static int session_call_kw(kart_manager *m, const char *fn, kart_obj *args, kart_obj *kwds,
                           kart_obj **result)
{
    if (m->python)
        return fresh_call(m, fn, args, kwds, result);
    pthread_mutex_lock(&m->mu);
    kart_conn *c = NULL;
    int r = session_locked(m, &c);
    if (r == 0) {
        r = roundtrip(m, &m->sess, NULL, fn, args, kwds, result);
        args = kwds = NULL;
        if (r < 0 && r != KART_EREMOTE && r != -ENOMEM) {
            kart_conn_close(m->sess);
            m->sess = NULL;
        }
    }
    pthread_mutex_unlock(&m->mu);
    mv_free(args);
    mv_free(kwds);
    return r;
}

static int session_call(kart_manager *m, const char *fn, kart_obj *args, kart_obj **result)
{
    if (m->python)
        return fresh_call(m, fn, args, NULL, result);
    pthread_mutex_lock(&m->mu);
    kart_conn *c = NULL;
    int r = session_locked(m, &c);
    if (r == 0) {
        r = roundtrip(m, &m->sess, NULL, fn, args, NULL, result);
        args = NULL;
        if (r < 0 && r != KART_EREMOTE && r != -ENOMEM) {
            /* the session is unusable: the server dropped what it held */
            kart_conn_close(m->sess);
            m->sess = NULL;
        }
    }
    pthread_mutex_unlock(&m->mu);
    mv_free(args);
    return r;
}

static void tconn_destroy(void *arg)
{
    tconn *t = arg;
    kart_manager *m = t->m;
    if (m) {
        pthread_mutex_lock(&m->mu);
        t->next->prev = t->prev;
        t->prev->next = t->next;
        pthread_mutex_unlock(&m->mu);
    }
    if (!m || t->pid == getpid())
        kart_conn_close(t->c);
    free(t);
}

/* The calling thread's connection. */
static int thread_conn(kart_manager *m, tconn **out)
{
    tconn *t = pthread_getspecific(m->tls);
    if (t && t->pid == getpid()) {
        *out = t;
        return 0;
    }
    pthread_mutex_lock(&m->mu);
    fork_reset_locked(m);
    pthread_mutex_unlock(&m->mu);
    if (t) { /* inherited over fork: not ours to use */
        free(t);
        pthread_setspecific(m->tls, NULL);
    }
    t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    int r = open_conn(m, &t->c);
    if (r < 0) {
        free(t);
        return r;
    }
    t->m = m;
    t->pid = getpid();
    pthread_mutex_lock(&m->mu);
    t->next = m->conns.next;
    t->prev = &m->conns;
    m->conns.next->prev = t;
    m->conns.next = t;
    pthread_mutex_unlock(&m->mu);
    pthread_setspecific(m->tls, t);
    *out = t;
    return 0;
}

/* ---- manager handle ---- */

KART_API int kart_manager_connect(kart_manager **out, const char *address,
                                  const kart_manager_options *opts)
{
    if (!out || !address || strlen(address) >= sizeof((kart_manager *)0)->address)
        return -EINVAL;
    kart_manager_options o;
    void *key;
    int kerr = mgr__options_take(opts, &o, &key);
    if (kerr < 0)
        return kerr;
    kart_manager *m = calloc(1, sizeof *m);
    if (!m) {
        free(key);
        return -ENOMEM;
    }
    m->key = key;
    m->opts = o;
    snprintf(m->address, sizeof m->address, "%s", address);
    if (pthread_key_create(&m->tls, tconn_destroy) != 0) {
        free(m->key);
        free(m);
        return -EAGAIN;
    }
    pthread_mutex_init(&m->mu, NULL);
    m->conns.next = m->conns.prev = &m->conns;
    m->pid = getpid();
    pthread_once(&reg_once, reg_init);
    pthread_mutex_lock(&reg_mu);
    m->reg_next = reg_head.reg_next;
    m->reg_prev = &reg_head;
    reg_head.reg_next->reg_prev = m;
    reg_head.reg_next = m;
    pthread_mutex_unlock(&reg_mu);
    kart_obj *res = NULL;
    int r = session_call(m, "dummy", NULL, &res);
    mv_free(res);
    res = NULL;
    if (r == KART_EREMOTE) {
        /* kart's extensions refused (accept_connection's kart=True, a
         * request with ident None): a Python server; use Python's scheme */
        pthread_mutex_lock(&m->mu);
        kart_conn_close(m->sess);
        m->sess = NULL;
        m->python = true;
        pthread_mutex_unlock(&m->mu);
        r = session_call(m, "dummy", NULL, &res);
        mv_free(res);
    }
    if (r != 0) {
        kart_manager_free(m);
        return r == KART_EREMOTE || r == 1 ? KART_EBADREPLY : r;
    }
    *out = m;
    return 0;
}

KART_API void kart_manager_free(kart_manager *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&reg_mu);
    m->reg_prev->reg_next = m->reg_next;
    m->reg_next->reg_prev = m->reg_prev;
    pthread_mutex_unlock(&reg_mu);
    tconn *mine = pthread_getspecific(m->tls);
    pthread_key_delete(m->tls);
    pthread_mutex_lock(&m->mu);
    bool ours = m->pid == getpid();
    while (m->conns.next != &m->conns) {
        tconn *t = m->conns.next;
        t->next->prev = t->prev;
        t->prev->next = t->next;
        if (ours)
            kart_conn_close(t->c);
        free(t);
        if (t == mine)
            mine = NULL;
    }
    if (ours)
        kart_conn_close(m->sess);
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_destroy(&m->mu);
    free(m->key);
    free(m);
}

/* A public function on a connection of its own, as Python's BaseManager
 * and BaseProxy call them (args and kwds taken). */
static int fresh_call(kart_manager *m, const char *fn, kart_obj *args, kart_obj *kwds,
                      kart_obj **res)
{
    kart_conn *c = NULL;
    kart_auth auth = {.authkey = m->opts.authkey,
                      .authkey_len = m->opts.authkey_len,
                      .timeout_ns = m->opts.timeout_ns};
    int r = kart_conn_connect(&c, m->address, m->opts.authkey ? &auth : NULL);
    if (r < 0) {
        mv_free(args);
        mv_free(kwds);
        return r;
    }
    r = roundtrip(m, &c, NULL, fn, args, kwds, res);
    kart_conn_close(c);
    if (r == KART_EREMOTE && says(*res, MGR_REFUSED_TEXT)) {
        mv_free(*res);
        *res = NULL;
        r = -EUSERS;
    }
    return r;
}

static int simple_public(kart_manager *m, const char *fn, kart_obj **res)
{
    int r = fresh_call(m, fn, NULL, NULL, res);
    if (r == 1) {
        mv_free(*res);
        return KART_EBADREPLY;
    }
    return r;
}

KART_API int kart_manager_shutdown(kart_manager *m)
{
    if (!m)
        return -EINVAL;
    kart_obj *res = NULL;
    int r = simple_public(m, "shutdown", &res);
    mv_free(res);
    return r == KART_EREMOTE ? KART_EBADREPLY : r;
}

KART_API int kart_manager_objects(kart_manager *m)
{
    if (!m)
        return -EINVAL;
    kart_obj *res = NULL;
    int r = simple_public(m, "number_of_objects", &res);
    int64_t n = 0;
    if (r == 0 && mv_get_int(res, &n) < 0)
        r = KART_EBADREPLY;
    mv_free(res);
    return r < 0 ? (r == KART_EREMOTE ? KART_EBADREPLY : r) : (int)n;
}

/* ---- proxies ---- */

static int proxy_new(kart_manager *m, const char *typeid, const char *ident, kart_proxy **out)
{
    if (strlen(typeid) >= sizeof((kart_proxy *)0)->typeid ||
        strlen(ident) >= sizeof((kart_proxy *)0)->ident)
        return KART_EBADREPLY;
    kart_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->m = m;
    p->pid = getpid();
    snprintf(p->typeid, sizeof p->typeid, "%s", typeid);
    snprintf(p->ident, sizeof p->ident, "%s", ident);
    *out = p;
    return 0;
}

KART_API int kart_manager_create(kart_manager *m, const char *typeid, const kart_obj *args,
                                 const kart_obj *kwds, kart_proxy **out, kart_obj **err)
{
    if (!m || !typeid || !out || (args && mv_kind(args) != MV_TUPLE) ||
        (kwds && mv_kind(kwds) != MV_DICT))
        return -EINVAL;
    size_t na = args ? mv_len(args) : 0;
    kart_obj *a = mv_tuple(1, mv_strz(typeid));
    for (size_t i = 0; a && i < na; i++)
        if (kart_obj_append(a, mv_copy(mv_item(args, i))) < 0) {
            mv_free(a);
            a = NULL;
        }
    if (!a)
        return -ENOMEM;
    kart_obj *k = kwds ? mv_copy(kwds) : NULL;
    if (kwds && !k) {
        mv_free(a);
        return -ENOMEM;
    }
    kart_obj *res = NULL;
    int r = session_call_kw(m, "create", a, k, &res);
    if (r == KART_EREMOTE) {
        if (err)
            *err = res;
        else
            mv_free(res);
        return r;
    }
    if (r != 0) {
        if (r == 1)
            mv_free(res);
        return r == 1 ? KART_EBADREPLY : r;
    }
    const char *ident =
        mv_kind(res) == MV_TUPLE && mv_len(res) == 2 ? mv_get_str(mv_item(res, 0), NULL) : NULL;
    r = ident ? proxy_new(m, typeid, ident, out) : KART_EBADREPLY;
    if (r < 0 && ident) {
        kart_obj *ign = NULL;
        session_call(m, "decref", mv_tuple(1, mv_strz(ident)), &ign);
        mv_free(ign);
    }
    mv_free(res);
    return r;
}

static int create0(kart_manager *m, const char *typeid, kart_obj *args, kart_proxy **out)
{
    if (!m || !out) {
        mv_free(args);
        return -EINVAL;
    }
    int r = kart_manager_create(m, typeid, args, NULL, out, NULL);
    mv_free(args);
    return r;
}

KART_API int kart_manager_dict(kart_manager *m, kart_proxy **out)
{
    return create0(m, "dict", NULL, out);
}

KART_API int kart_manager_list(kart_manager *m, kart_proxy **out)
{
    return create0(m, "list", NULL, out);
}

KART_API int kart_manager_namespace(kart_manager *m, kart_proxy **out)
{
    return create0(m, "Namespace", NULL, out);
}

KART_API int kart_manager_event(kart_manager *m, kart_proxy **out)
{
    return create0(m, "Event", NULL, out);
}

KART_API int kart_manager_lock(kart_manager *m, kart_proxy **out)
{
    return create0(m, "Lock", NULL, out);
}

KART_API int kart_manager_rlock(kart_manager *m, kart_proxy **out)
{
    return create0(m, "RLock", NULL, out);
}

KART_API int kart_manager_value(kart_manager *m, const char *typecode, const kart_obj *value,
                                kart_proxy **out)
{
    if (!typecode || !value)
        return -EINVAL;
    kart_obj *a = mv_tuple(2, mv_strz(typecode), mv_copy(value));
    return a ? create0(m, "Value", a, out) : -ENOMEM;
}

KART_API int kart_manager_queue(kart_manager *m, size_t maxsize, kart_proxy **out)
{
    if (maxsize > INT64_MAX)
        return -EINVAL;
    kart_obj *a = mv_tuple(1, mv_int((int64_t)maxsize));
    return a ? create0(m, "Queue", a, out) : -ENOMEM;
}

KART_API int kart_manager_semaphore(kart_manager *m, size_t value, bool bounded, kart_proxy **out)
{
    if (value > INT64_MAX)
        return -EINVAL;
    kart_obj *a = mv_tuple(1, mv_int((int64_t)value));
    return a ? create0(m, bounded ? "BoundedSemaphore" : "Semaphore", a, out) : -ENOMEM;
}

KART_API int kart_manager_condition(kart_manager *m, kart_proxy **out)
{
    return create0(m, "Condition", NULL, out);
}

KART_API int kart_manager_barrier(kart_manager *m, size_t parties, kart_proxy **out)
{
    if (parties == 0 || parties > INT64_MAX)
        return -EINVAL;
    kart_obj *a = mv_tuple(1, mv_int((int64_t)parties));
    return a ? create0(m, "Barrier", a, out) : -ENOMEM;
}

KART_API int kart_manager_array(kart_manager *m, const char *typecode, const kart_obj *items,
                                kart_proxy **out)
{
    if (!typecode || !items)
        return -EINVAL;
    kart_obj *a = mv_tuple(2, mv_strz(typecode), mv_copy(items));
    return a ? create0(m, "Array", a, out) : -ENOMEM;
}

/* A proxy used in a forked child takes the child's own reference first. */
static int proxy_adopt(kart_proxy *p)
{
    if (p->pid == getpid())
        return 0;
    kart_obj *res = NULL;
    int r = session_call(p->m, "incref", mv_tuple(1, mv_strz(p->ident)), &res);
    mv_free(res);
    if (r == 0)
        p->pid = getpid();
    return r;
}

/* The ident of a '#PROXY' reply's (exposed, Token), and its typeid. */
static const char *proxy_token(const kart_obj *res, const char **typeid)
{
    const kart_obj *tok = mv_kind(res) == MV_TUPLE && mv_len(res) == 2 ? mv_item(res, 1) : NULL;
    const kart_obj *st = tok && mv_kind(tok) == MV_INSTANCE ? mv_payload(tok) : NULL;
    if (!st || mv_kind(st) != MV_TUPLE || mv_len(st) != 3)
        return NULL;
    *typeid = mv_get_str(mv_item(st, 0), NULL);
    const char *id = mv_get_str(mv_item(st, 2), NULL);
    return *typeid && id ? id : NULL;
}

/* Drops the reference the server made for a '#PROXY' reply (Python's
 * client decrefs it once its proxy has its own): on the thread's
 * connection for a kart server (not the session, whose references are
 * counted), on a connection of its own for a Python server. */
static void proxy_drop_extra(kart_manager *m, tconn *t, const kart_obj *res)
{
    const char *typeid = NULL;
    const char *id = proxy_token(res, &typeid);
    if (!id)
        return;
    kart_obj *ign = NULL;
    int r = m->python ? fresh_call(m, "decref", mv_tuple(1, mv_strz(id)), NULL, &ign)
                      : roundtrip(m, &t->c, NULL, "decref", mv_tuple(1, mv_strz(id)), NULL, &ign);
    if (r == 0 || r == 1 || r == KART_EREMOTE)
        mv_free(ign);
}

/* Sends the call on the calling thread's connection: 0 value, 1 '#PROXY'
 * (with *tp for proxy_drop_extra), KART_EREMOTE, negative. */
static int call_on_thread(kart_proxy *p, const char *method, const kart_obj *args,
                          const kart_obj *kwds, kart_obj **result, tconn **tp)
{
    if (!p || !method || !result || (args && mv_kind(args) != MV_TUPLE) ||
        (kwds && mv_kind(kwds) != MV_DICT))
        return -EINVAL;
    int r = proxy_adopt(p);
    if (r != 0)
        return r;
    tconn *t = NULL;
    r = thread_conn(p->m, &t);
    if (r < 0)
        return r;
    kart_obj *a = args ? mv_copy(args) : NULL, *k = kwds ? mv_copy(kwds) : NULL;
    if ((args && !a) || (kwds && !k)) {
        mv_free(a);
        mv_free(k);
        return -ENOMEM;
    }
    kart_obj *res = NULL;
    r = roundtrip(p->m, &t->c, p->ident, method, a, k, &res);
    if (r == 0 || r == 1 || r == KART_EREMOTE) {
        *result = res;
        *tp = t;
    } else if (r != -ENOMEM && r != KART_EBADREPLY) {
        /* a broken connection: the next call opens a new one */
        pthread_setspecific(p->m->tls, NULL);
        tconn_destroy(t);
    }
    return r;
}

KART_API int kart_proxy_call_proxy(kart_proxy *p, const char *method, const kart_obj *args,
                                   const kart_obj *kwds, kart_proxy **out, kart_obj **err)
{
    if (!out)
        return -EINVAL;
    kart_obj *res = NULL;
    tconn *t = NULL;
    int r = call_on_thread(p, method, args, kwds, &res, &t);
    if (r == KART_EREMOTE) {
        if (err)
            *err = res;
        else
            mv_free(res);
        return r;
    }
    if (r == 0) {
        mv_free(res);
        return -ENOMSG;
    }
    if (r < 0)
        return r;
    const char *typeid = NULL;
    const char *id = proxy_token(res, &typeid);
    kart_proxy *np = NULL;
    r = id ? proxy_new(p->m, typeid, id, &np) : KART_EBADREPLY;
    if (r == 0) { /* our own reference, then the server's extra one goes */
        kart_obj *ign = NULL;
        r = session_call(p->m, "incref", mv_tuple(1, mv_strz(id)), &ign);
        if (r == 0 || r == 1 || r == KART_EREMOTE)
            mv_free(ign);
        if (r != 0) {
            free(np);
            np = NULL;
            r = r == 1 ? KART_EBADREPLY : r;
        }
    }
    proxy_drop_extra(p->m, t, res);
    mv_free(res);
    if (r == 0)
        *out = np;
    return r;
}

KART_API int kart_proxy_call(kart_proxy *p, const char *method, const kart_obj *args,
                             const kart_obj *kwds, kart_obj **result)
{
    kart_obj *res = NULL;
    tconn *t = NULL;
    int r = call_on_thread(p, method, args, kwds, &res, &t);
    if (r == 1) {
        /* '#PROXY' where a value was asked for: release the reference made
         * for us (kart_proxy_call_proxy is the call for these) */
        proxy_drop_extra(p->m, t, res);
        mv_free(res);
        return -ENOTSUP;
    }
    if (r == 0 || r == KART_EREMOTE)
        *result = res;
    return r;
}

KART_API const char *kart_proxy_typeid(const kart_proxy *p)
{
    return p ? p->typeid : NULL;
}

KART_API const char *kart_proxy_ident(const kart_proxy *p)
{
    return p ? p->ident : NULL;
}

KART_API int kart_manager_attach(kart_manager *m, const char *typeid, const char *ident,
                                 kart_proxy **out)
{
    if (!m || !typeid || !ident || !out)
        return -EINVAL;
    kart_proxy *p = NULL;
    int r = proxy_new(m, typeid, ident, &p);
    if (r == KART_EBADREPLY)
        return -EINVAL;
    if (r < 0)
        return r;
    kart_obj *res = NULL;
    r = session_call(m, "incref", mv_tuple(1, mv_strz(ident)), &res);
    mv_free(res);
    if (r != 0) {
        free(p);
        return r == 1 ? KART_EBADREPLY : r;
    }
    *out = p;
    return 0;
}

KART_API int kart_proxy_dup(kart_proxy *p, kart_proxy **out)
{
    if (!p || !out)
        return -EINVAL;
    return kart_manager_attach(p->m, p->typeid, p->ident, out);
}

KART_API void kart_proxy_free(kart_proxy *p)
{
    if (!p)
        return;
    mgr__proxy_fast_drop(p, MSLOT_REFUSED);
    if (p->pid == getpid()) {
        kart_obj *res = NULL;
        session_call(p->m, "decref", mv_tuple(1, mv_strz(p->ident)), &res);
        mv_free(res);
    }
    free(p);
}

/* ---- typed calls ---- */

/* The exception's class name, or "" for a traceback. */
static const char *exc_name(const kart_obj *e)
{
    const char *name = NULL;
    if (mv_kind(e) == MV_ERROR && mv_class(e, NULL, &name) == 0 && name)
        return name;
    return "";
}

/* Calls method with n borrowed args; maps the listed exceptions. */
static int callv(kart_proxy *p, const char *method, kart_obj **result, size_t n, const kart_obj *a0,
                 const kart_obj *a1)
{
    kart_obj *items[2] = {n > 0 ? mv_copy(a0) : NULL, n > 1 ? mv_copy(a1) : NULL};
    kart_obj *args = mv_tuple_v(n, items);
    if (!args)
        return -ENOMEM;
    kart_obj *res = NULL;
    int r = kart_proxy_call(p, method, args, NULL, &res);
    mv_free(args);
    if (r == KART_EREMOTE) {
        const char *e = exc_name(res);
        if (strcmp(e, "KeyError") == 0 || strcmp(e, "AttributeError") == 0)
            r = -ENOENT;
        else if (strcmp(e, "IndexError") == 0)
            r = -ERANGE;
        else if (strcmp(e, "Empty") == 0 || strcmp(e, "Full") == 0)
            r = -ETIMEDOUT;
        else if (strcmp(e, "RuntimeError") == 0)
            r = -EPERM;
        else if (strcmp(e, "TypeError") == 0)
            r = -EINVAL;
        mv_free(res);
        return r;
    }
    if (r < 0)
        return r;
    if (result)
        *result = res;
    else
        mv_free(res);
    return 0;
}

static int call_bool(kart_proxy *p, const char *method, const kart_obj *a0)
{
    kart_obj *res = NULL;
    int r = callv(p, method, &res, a0 ? 1 : 0, a0, NULL);
    if (r < 0)
        return r;
    r = mv_kind(res) == MV_BOOL ? (mv_get_bool(res) ? 1 : 0) : KART_EBADREPLY;
    mv_free(res);
    return r;
}

static int call_size(kart_proxy *p, const char *method, size_t *n)
{
    if (!n)
        return -EINVAL;
    kart_obj *res = NULL;
    int r = callv(p, method, &res, 0, NULL, NULL);
    if (r < 0)
        return r;
    int64_t v;
    r = mv_kind(res) == MV_INT && mv_get_int(res, &v) == 0 && v >= 0 ? 0 : KART_EBADREPLY;
    mv_free(res);
    if (r == 0)
        *n = (size_t)v;
    return r;
}

#define NEED(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return -EINVAL;                                                                        \
    } while (0)

/* FAST(p): the proxy's shared segment when the fast path is on, else
 * NULL (the protocol). */
#define FAST(p) mgr__proxy_fast(p)

KART_API int kart_mdict_get(kart_proxy *d, const kart_obj *key, kart_obj **value)
{
    NEED(d && key && value);
    mshm *s = FAST(d);
    if (s)
        return mgr__shmd_get(s, key, value);
    return callv(d, "__getitem__", value, 1, key, NULL);
}

KART_API int kart_mdict_set(kart_proxy *d, const kart_obj *key, const kart_obj *value)
{
    NEED(d && key && value);
    mshm *s = FAST(d);
    if (s)
        return mgr__shmd_set(s, key, value, false, NULL);
    return callv(d, "__setitem__", NULL, 2, key, value);
}

KART_API int kart_mdict_del(kart_proxy *d, const kart_obj *key)
{
    NEED(d && key);
    mshm *s = FAST(d);
    if (s)
        return mgr__shmd_pop(s, key, NULL);
    return callv(d, "__delitem__", NULL, 1, key, NULL);
}

KART_API int kart_mdict_contains(kart_proxy *d, const kart_obj *key)
{
    NEED(d && key);
    mshm *s = FAST(d);
    if (s) {
        int r = mgr__shmd_get(s, key, NULL);
        return r == 0 ? 1 : r == -ENOENT ? 0 : r;
    }
    return call_bool(d, "__contains__", key);
}

KART_API int kart_mdict_len(kart_proxy *d, size_t *len)
{
    NEED(d && len);
    mshm *s = FAST(d);
    if (s)
        return mgr__shmd_len(s, len);
    return call_size(d, "__len__", len);
}

KART_API int kart_mdict_copy(kart_proxy *d, kart_obj **value)
{
    NEED(d && value);
    mshm *s = FAST(d);
    if (s)
        return mgr__shmd_list(s, MSHMD_DICT, value);
    return callv(d, "copy", value, 0, NULL, NULL);
}

static kart_obj *int_obj(int64_t i)
{
    return mv_int(i);
}

KART_API int kart_mlist_append(kart_proxy *l, const kart_obj *item)
{
    NEED(l && item);
    return callv(l, "append", NULL, 1, item, NULL);
}

KART_API int kart_mlist_get(kart_proxy *l, int64_t index, kart_obj **item)
{
    NEED(l && item);
    kart_obj *i = int_obj(index);
    int r = i ? callv(l, "__getitem__", item, 1, i, NULL) : -ENOMEM;
    mv_free(i);
    return r;
}

KART_API int kart_mlist_set(kart_proxy *l, int64_t index, const kart_obj *item)
{
    NEED(l && item);
    kart_obj *i = int_obj(index);
    int r = i ? callv(l, "__setitem__", NULL, 2, i, item) : -ENOMEM;
    mv_free(i);
    return r;
}

KART_API int kart_mlist_pop(kart_proxy *l, int64_t index, kart_obj **item)
{
    NEED(l && item);
    kart_obj *i = int_obj(index);
    int r = i ? callv(l, "pop", item, 1, i, NULL) : -ENOMEM;
    mv_free(i);
    return r;
}

KART_API int kart_mlist_len(kart_proxy *l, size_t *len)
{
    NEED(l && len);
    return call_size(l, "__len__", len);
}

KART_API int kart_mns_get(kart_proxy *ns, const char *name, kart_obj **value)
{
    NEED(ns && name && value);
    kart_obj *n = mv_strz(name);
    mshm *s = n ? FAST(ns) : NULL;
    int r = !n  ? -ENOMEM
            : s ? mgr__shmd_get(s, n, value)
                : callv(ns, "__getattribute__", value, 1, n, NULL);
    mv_free(n);
    return r;
}

KART_API int kart_mns_set(kart_proxy *ns, const char *name, const kart_obj *value)
{
    NEED(ns && name && value);
    kart_obj *n = mv_strz(name);
    mshm *s = n ? FAST(ns) : NULL;
    int r = !n  ? -ENOMEM
            : s ? mgr__shmd_set(s, n, value, false, NULL)
                : callv(ns, "__setattr__", NULL, 2, n, value);
    mv_free(n);
    return r;
}

KART_API int kart_mns_del(kart_proxy *ns, const char *name)
{
    NEED(ns && name);
    kart_obj *n = mv_strz(name);
    mshm *s = n ? FAST(ns) : NULL;
    int r = !n  ? -ENOMEM
            : s ? mgr__shmd_pop(s, n, NULL)
                : callv(ns, "__delattr__", NULL, 1, n, NULL);
    mv_free(n);
    return r;
}

KART_API int kart_mvalue_get(kart_proxy *v, kart_obj **value)
{
    NEED(v && value);
    mshm *s = FAST(v);
    if (s) {
        kart_obj *one = mv_int(1);
        int r = one ? mgr__shmd_get(s, one, value) : -ENOMEM;
        mv_free(one);
        return r == -ENOENT ? KART_EBADREPLY : r;
    }
    return callv(v, "get", value, 0, NULL, NULL);
}

KART_API int kart_mvalue_set(kart_proxy *v, const kart_obj *value)
{
    NEED(v && value);
    mshm *s = FAST(v);
    if (s) {
        kart_obj *one = mv_int(1);
        int r = one ? mgr__shmd_set(s, one, value, false, NULL) : -ENOMEM;
        mv_free(one);
        return r;
    }
    return callv(v, "set", NULL, 1, value, NULL);
}

KART_API int kart_mevent_set(kart_proxy *e)
{
    NEED(e);
    return callv(e, "set", NULL, 0, NULL, NULL);
}

KART_API int kart_mevent_clear(kart_proxy *e)
{
    NEED(e);
    return callv(e, "clear", NULL, 0, NULL, NULL);
}

KART_API int kart_mevent_is_set(kart_proxy *e)
{
    NEED(e);
    return call_bool(e, "is_set", NULL);
}

/* seconds as Python takes them; negative: None */
static kart_obj *timeout_obj(int64_t ns)
{
    return ns < 0 ? mv_none() : mv_float((double)ns / 1e9);
}

KART_API int kart_mevent_wait(kart_proxy *e, int64_t timeout_ns)
{
    NEED(e);
    kart_obj *t = timeout_obj(timeout_ns);
    int r = t ? call_bool(e, "wait", t) : -ENOMEM;
    mv_free(t);
    return r == 0 ? -ETIMEDOUT : r;
}

KART_API int kart_mlock_acquire(kart_proxy *l, int64_t timeout_ns)
{
    NEED(l);
    kart_obj *args = timeout_ns == 0  ? mv_tuple(1, mv_bool(false))
                     : timeout_ns < 0 ? mv_tuple(0)
                                      : mv_tuple(2, mv_bool(true), timeout_obj(timeout_ns));
    if (!args)
        return -ENOMEM;
    kart_obj *res = NULL;
    int r = kart_proxy_call(l, "acquire", args, NULL, &res);
    mv_free(args);
    if (r == KART_EREMOTE) {
        mv_free(res);
        return r;
    }
    if (r < 0)
        return r;
    r = mv_kind(res) == MV_BOOL       ? (mv_get_bool(res) ? 0 : -ETIMEDOUT)
        : mv_is_str(res, "ownerdead") ? -EOWNERDEAD
                                      : KART_EBADREPLY;
    mv_free(res);
    return r;
}

KART_API int kart_mlock_release(kart_proxy *l)
{
    NEED(l);
    return callv(l, "release", NULL, 0, NULL, NULL);
}

KART_API int kart_mcond_wait(kart_proxy *c, int64_t timeout_ns)
{
    NEED(c);
    kart_obj *t = timeout_obj(timeout_ns), *res = NULL;
    int r = t ? callv(c, "wait", &res, 1, t, NULL) : -ENOMEM;
    mv_free(t);
    if (r < 0)
        return r;
    r = mv_kind(res) == MV_BOOL       ? (mv_get_bool(res) ? 0 : -ETIMEDOUT)
        : mv_is_str(res, "ownerdead") ? -EOWNERDEAD
                                      : KART_EBADREPLY;
    mv_free(res);
    return r;
}

KART_API int kart_mcond_notify(kart_proxy *c, size_t n)
{
    NEED(c && n <= INT64_MAX);
    kart_obj *a = mv_int((int64_t)n);
    int r = a ? callv(c, "notify", NULL, 1, a, NULL) : -ENOMEM;
    mv_free(a);
    return r;
}

KART_API int kart_mcond_notify_all(kart_proxy *c)
{
    NEED(c);
    return callv(c, "notify_all", NULL, 0, NULL, NULL);
}

KART_API int kart_mbarrier_wait(kart_proxy *b, int64_t timeout_ns)
{
    NEED(b);
    kart_obj *args = mv_tuple(1, timeout_obj(timeout_ns));
    if (!args)
        return -ENOMEM;
    kart_obj *res = NULL;
    int r = kart_proxy_call(b, "wait", args, NULL, &res);
    mv_free(args);
    if (r == KART_EREMOTE) {
        if (strcmp(exc_name(res), "BrokenBarrierError") == 0)
            r = KART_EBROKEN;
        mv_free(res);
        return r;
    }
    if (r < 0)
        return r;
    int64_t i = -1;
    r = mv_get_int(res, &i) == 0 && i >= 0 && i <= INT32_MAX ? (int)i : KART_EBADREPLY;
    mv_free(res);
    return r;
}

KART_API int kart_mbarrier_abort(kart_proxy *b)
{
    NEED(b);
    return callv(b, "abort", NULL, 0, NULL, NULL);
}

KART_API int kart_mbarrier_reset(kart_proxy *b)
{
    NEED(b);
    return callv(b, "reset", NULL, 0, NULL, NULL);
}

static int queue_op(kart_proxy *q, const char *op, const kart_obj *item, int64_t timeout_ns,
                    kart_obj **out)
{
    kart_obj *args;
    if (timeout_ns == 0)
        args = item ? mv_tuple(2, mv_copy(item), mv_bool(false)) : mv_tuple(1, mv_bool(false));
    else if (item)
        args = mv_tuple(3, mv_copy(item), mv_bool(true), timeout_obj(timeout_ns));
    else
        args = mv_tuple(2, mv_bool(true), timeout_obj(timeout_ns));
    if (!args)
        return -ENOMEM;
    kart_obj *res = NULL;
    int r = kart_proxy_call(q, op, args, NULL, &res);
    mv_free(args);
    if (r == KART_EREMOTE) {
        const char *e = exc_name(res);
        if (strcmp(e, "Empty") == 0 || strcmp(e, "Full") == 0)
            r = -ETIMEDOUT;
        mv_free(res);
        return r;
    }
    if (r < 0)
        return r;
    if (out)
        *out = res;
    else
        mv_free(res);
    return 0;
}

KART_API int kart_mqueue_put(kart_proxy *q, const kart_obj *item, int64_t timeout_ns)
{
    NEED(q && item);
    mshm *s = FAST(q);
    if (s)
        return mgr__shmq_put(s, item, timeout_ns != 0, kart__deadline(timeout_ns), NULL);
    return queue_op(q, "put", item, timeout_ns, NULL);
}

KART_API int kart_mqueue_get(kart_proxy *q, int64_t timeout_ns, kart_obj **item)
{
    NEED(q && item);
    mshm *s = FAST(q);
    if (s)
        return mgr__shmq_get(s, timeout_ns != 0, kart__deadline(timeout_ns), NULL, item);
    return queue_op(q, "get", NULL, timeout_ns, item);
}

KART_API int kart_mqueue_qsize(kart_proxy *q, size_t *n)
{
    NEED(q && n);
    mshm *s = FAST(q);
    if (s)
        return mgr__shmq_size(s, n, NULL);
    return call_size(q, "qsize", n);
}

/* ---- hook for proxy_batch.c (pipelined calls; see proxy_hook.h) ---- */

kart_manager *mgr__proxy_manager(const kart_proxy *p)
{
    return p->m;
}

const char *mgr__proxy_ident_of(const kart_proxy *p)
{
    return p->ident;
}

int mgr__proxy_adopt(kart_proxy *p)
{
    return proxy_adopt(p);
}

int mgr__thread_conn(kart_manager *m, kart_conn **out)
{
    tconn *t = NULL;
    int r = thread_conn(m, &t);
    if (r == 0)
        *out = t->c;
    return r;
}

void mgr__thread_conn_drop(kart_manager *m)
{
    tconn *t = pthread_getspecific(m->tls);
    if (t && t->pid == getpid()) {
        pthread_setspecific(m->tls, NULL);
        tconn_destroy(t);
    }
}

mshm_slot *mgr__proxy_slot(kart_proxy *p)
{
    return &p->fast;
}

const char *mgr__manager_address(const kart_manager *m, const kart_manager_options **opts,
                                 bool *python)
{
    *opts = &m->opts;
    *python = m->python;
    return m->address;
}

void mgr__manager_limits(const kart_manager *m, int *protocol, size_t *max_message)
{
    *protocol = m->opts.pickle_protocol;
    *max_message = m->opts.max_message;
}

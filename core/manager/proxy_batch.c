/*
 * core/manager/proxy_batch.c — pipelined method calls (kart_mbatch_*): the
 * requests of a batch go out on the calling thread's connection without
 * waiting for replies, at most BATCH_WINDOW bytes of them in flight, and
 * the replies, which a manager server sends in request order, are read
 * back as they come. One round trip for the batch instead of one per call.
 */
#include "mgr_private.h"
#include "proxy_hook.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* Request bytes sent and not yet answered, at most: well under a unix or
 * loopback TCP socket's buffers, so that sending never blocks on a server
 * that is itself blocked writing replies we have not read yet. */
#define BATCH_WINDOW (64u << 10)
/* Requests handed to one kart_conn_send_many. */
#define BATCH_SEND_MAX 256

typedef struct mcall {
    kart_proxy *p;
    void *req; /* the pickled request; freed once sent */
    size_t len;
    int status;
    kart_obj *result;
    char *proxy_ident; /* a '#PROXY' reply's new object, to release */
} mcall;

struct kart_mbatch {
    mcall *calls;
    size_t n, cap;
    kart_manager *m;
    bool ran;
};

KART_API int kart_mbatch_create(kart_mbatch **out)
{
    if (!out)
        return -EINVAL;
    kart_mbatch *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    *out = b;
    return 0;
}

KART_API size_t kart_mbatch_size(const kart_mbatch *b)
{
    return b ? b->n : 0;
}

KART_API int kart_mbatch_add(kart_mbatch *b, kart_proxy *p, const char *method,
                             const kart_obj *args, const kart_obj *kwds)
{
    if (!b || !p || !method || b->ran || (args && mv_kind(args) != MV_TUPLE) ||
        (kwds && mv_kind(kwds) != MV_DICT))
        return -EINVAL;
    kart_manager *m = mgr__proxy_manager(p);
    if (b->n > 0 && m != b->m)
        return -EINVAL;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        mcall *c = realloc(b->calls, cap * sizeof *c);
        if (!c)
            return -ENOMEM;
        b->calls = c;
        b->cap = cap;
    }
    kart_obj *req =
        mv_tuple(4, mv_strz(mgr__proxy_ident_of(p)), mv_strz(method),
                 args ? mv_copy(args) : mv_tuple(0), kwds ? mv_copy(kwds) : mv_dict_new());
    if (!req)
        return -ENOMEM;
    int protocol = 0;
    size_t max = 0;
    mgr__manager_limits(m, &protocol, &max);
    void *buf = NULL;
    size_t len = 0;
    int r = mv_pickle(req, protocol, &buf, &len);
    mv_free(req);
    if (r < 0)
        return r;
    if (len > max || len > KART_CONN_MAX_MESSAGE) {
        free(buf);
        return -EMSGSIZE;
    }
    b->calls[b->n++] = (mcall){.p = p, .req = buf, .len = len};
    b->m = m;
    return 0;
}

/* Decodes one reply into call c: its status and result. Returns 0, or
 * KART_EBADREPLY / -ENOMEM for a frame that is no reply (which ends the
 * batch: the stream can no longer be trusted to be in step). */
static int take_reply(mcall *c, const void *buf, size_t len)
{
    kart_obj *reply = NULL;
    int r = mv_unpickle(buf, len, &reply, NULL, 0);
    if (r < 0)
        return r == -ENOMEM ? r : KART_EBADREPLY;
    const char *kind = mv_kind(reply) == MV_TUPLE && mv_len(reply) == 2
                           ? mv_get_str(mv_item(reply, 0), NULL)
                           : NULL;
    int status;
    if (!kind)
        status = KART_EBADREPLY;
    else if (strcmp(kind, "#RETURN") == 0)
        status = 0;
    else if (strcmp(kind, "#PROXY") == 0)
        status = -ENOTSUP;
    else if (strcmp(kind, "#ERROR") == 0 || strcmp(kind, "#TRACEBACK") == 0 ||
             strcmp(kind, "#UNSERIALIZABLE") == 0)
        status = KART_EREMOTE;
    else
        status = KART_EBADREPLY;
    if (status == KART_EBADREPLY) {
        mv_free(reply);
        return status;
    }
    kart_obj *v = NULL;
    if (kart_obj_remove(reply, 1, &v) < 0) {
        mv_free(reply);
        return -ENOMEM;
    }
    mv_free(reply);
    if (status == -ENOTSUP) {
        /* ('#PROXY', (exposed, token)): remember the new object's id */
        const kart_obj *tok = mv_len(v) == 2 ? mv_item(v, 1) : NULL;
        const kart_obj *st = tok ? mv_payload(tok) : NULL;
        const char *id = st && mv_len(st) == 3 ? mv_get_str(mv_item(st, 2), NULL) : NULL;
        if (id && !(c->proxy_ident = strdup(id))) {
            mv_free(v);
            return -ENOMEM;
        }
        mv_free(v);
        v = NULL;
    }
    c->status = status;
    c->result = v;
    return 0;
}

/* Releases the objects that '#PROXY' replies made for us (on the same
 * connection, now that the pipeline is drained). */
static void release_proxies(kart_mbatch *b, kart_conn *conn)
{
    int protocol = 0;
    size_t max = 0;
    mgr__manager_limits(b->m, &protocol, &max);
    for (size_t i = 0; i < b->n; i++) {
        mcall *c = &b->calls[i];
        if (!c->proxy_ident)
            continue;
        kart_obj *req = mv_tuple(4, mv_none(), mv_strz("decref"),
                                 mv_tuple(1, mv_strz(c->proxy_ident)), mv_dict_new());
        free(c->proxy_ident);
        c->proxy_ident = NULL;
        void *buf = NULL;
        size_t len = 0;
        if (!req || mv_pickle(req, protocol, &buf, &len) < 0) {
            mv_free(req);
            continue;
        }
        mv_free(req);
        int r = kart_conn_send_bytes(conn, buf, len);
        free(buf);
        buf = NULL;
        if (r == 0)
            r = kart_conn_recv_bytes(conn, &buf, &len, max);
        free(buf);
        if (r < 0)
            return;
    }
}

KART_API int kart_mbatch_run(kart_mbatch *b)
{
    if (!b || b->ran)
        return -EINVAL;
    b->ran = true;
    if (b->n == 0)
        return 0;
    int err = 0;
    /* each proxy once per run of calls on it (adopt asks getpid(), a
     * system call, every time) */
    for (size_t i = 0; i < b->n && err == 0; i++)
        if (i == 0 || b->calls[i].p != b->calls[i - 1].p)
            err = mgr__proxy_adopt(b->calls[i].p);
    if (err > 0) /* a '#PROXY' reply to incref */
        err = KART_EBADREPLY;
    kart_conn *conn = NULL;
    if (err == 0)
        err = mgr__thread_conn(b->m, &conn);
    int protocol = 0;
    size_t max = 0;
    mgr__manager_limits(b->m, &protocol, &max);
    size_t sent = 0, got = 0, inflight = 0;
    struct iovec iov[BATCH_SEND_MAX];
    while (err == 0 && got < b->n) {
        /* send what the window allows (at least one request when nothing
         * is in flight, however large) */
        int k = 0;
        size_t add = 0;
        while (sent + (size_t)k < b->n && k < BATCH_SEND_MAX) {
            size_t len = b->calls[sent + (size_t)k].len;
            if (inflight + add > 0 && inflight + add + len > BATCH_WINDOW)
                break;
            iov[k].iov_base = b->calls[sent + (size_t)k].req;
            iov[k].iov_len = len;
            add += len;
            k++;
        }
        if (k > 0) {
            err = kart_conn_send_many(conn, iov, k);
            if (err < 0)
                break;
            for (int j = 0; j < k; j++) {
                free(b->calls[sent + (size_t)j].req);
                b->calls[sent + (size_t)j].req = NULL;
            }
            sent += (size_t)k;
            inflight += add;
        }
        /* read replies until half the window is free, or all sent are in */
        do {
            void *buf = NULL;
            size_t len = 0;
            err = kart_conn_recv_bytes(conn, &buf, &len, max);
            if (err < 0)
                break;
            err = take_reply(&b->calls[got], buf, len);
            free(buf);
            if (err < 0)
                break;
            inflight -= b->calls[got].len;
            got++;
        } while (got < sent && (sent == b->n || inflight > BATCH_WINDOW / 2));
    }
    if (err < 0) {
        for (size_t i = got; i < b->n; i++)
            b->calls[i].status = err;
        if (conn) /* broken, or out of step with the server */
            mgr__thread_conn_drop(b->m);
        for (size_t i = 0; i < b->n; i++) {
            free(b->calls[i].proxy_ident);
            b->calls[i].proxy_ident = NULL;
        }
        return err;
    }
    release_proxies(b, conn);
    int failed = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->calls[i].status != 0)
            failed++;
    return failed;
}

KART_API int kart_mbatch_result(kart_mbatch *b, size_t i, kart_obj **result)
{
    if (!b || !b->ran || i >= b->n)
        return -EINVAL;
    mcall *c = &b->calls[i];
    if (result) {
        *result = c->result;
        c->result = NULL;
    }
    return c->status;
}

KART_API void kart_mbatch_reset(kart_mbatch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->calls[i].req);
        mv_free(b->calls[i].result);
        free(b->calls[i].proxy_ident);
    }
    b->n = 0;
    b->m = NULL;
    b->ran = false;
}

KART_API void kart_mbatch_free(kart_mbatch *b)
{
    if (!b)
        return;
    kart_mbatch_reset(b);
    free(b->calls);
    free(b);
}

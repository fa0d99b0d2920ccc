/*
 * core/manager/server.c — the manager server: Python's
 * multiprocessing.managers.Server. An accept thread takes connections; each
 * gets its own thread, which runs the authkey handshake, reads one request
 * and, after accept_connection, serves method calls until the client goes.
 * Bad input (a frame that is not a request, an unknown id or method, a
 * client that stops mid-frame) is answered or ends that client alone.
 */
#include "conn_private.h"
#include "deadline.h"
#include "mgr_private.h"
#include "server_replies.h"
#include "shm_path.h"

#include <kart/log.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define NBUCKETS 1024
#define DEFAULT_MAX_MESSAGE (64u << 20)
#define ACCEPT_SLICE_NS (100 * INT64_C(1000000))
/* Refused connections answered at once (each on a short-lived thread, for
 * the handshake and the reply); past this many the rest are just closed. */
#define REFUSING_MAX 16
/* How long a refused client has to send its first request. */
#define REFUSE_WAIT_NS (10 * INT64_C(1000000000))

struct kart_manager_server {
    kart_listener *listener;
    char address[256];
    kart_manager_options opts;
    void *key;
    pthread_mutex_t table_mu;
    mobj *buckets[NBUCKETS];
    mobj all; /* list head of live objects */
    size_t nobjects;
    uint64_t next_id;
    /* connections */
    pthread_mutex_t cx_mu;
    pthread_cond_t cx_cv;
    mcx cxs;        /* list head: every connection's thread, refused ones too */
    size_t ncx;     /* threads in cxs */
    size_t nserved; /* of those, served (max_connections counts these) */
    size_t nrefusing;
    mcx *ended; /* sessions over, their threads still to be joined */
    uint64_t next_serial;
    _Atomic int stopping;
    _Atomic int serving;
    pthread_t thread;
    bool has_thread;
    /* user-registered types (kart_manager_server_register), before serving */
    struct utype **utypes;
    size_t nutypes;
};

static const char *const public_names[] = {
    "shutdown",    "create",     "accept_connection",
    "get_methods", "debug_info", "number_of_objects",
    "dummy",       "incref",     "decref",
    NULL,
};

bool mgr__stopping(const kart_manager_server *s)
{
    return atomic_load(&((kart_manager_server *)s)->stopping) != 0;
}

/* ---- errors ---- */

kart_obj *mgr__exc(const char *module, const char *name, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kart_obj *t = mv_tuple(1, mv_strz(msg));
    return t ? mv_error(module, name, t) : NULL;
}

kart_obj *mgr__exc_obj(const char *module, const char *name, const kart_obj *arg)
{
    kart_obj *t = mv_tuple(1, mv_copy(arg));
    return t ? mv_error(module, name, t) : NULL;
}

/* ---- arguments ---- */

int mgr__args(const char *fname, const kart_obj *args, const kart_obj *kwds,
              const char *const *names, size_t nreq, size_t nnames, const kart_obj **out,
              kart_obj **err)
{
    size_t na = args ? mv_len(args) : 0;
    for (size_t i = 0; i < nnames; i++)
        out[i] = NULL;
    if (na > nnames) {
        *err = mgr__exc("builtins", "TypeError", "%s() takes at most %zu arguments (%zu given)",
                        fname, nnames, na);
        return MCALL_ERROR;
    }
    for (size_t i = 0; i < na; i++)
        out[i] = mv_item(args, i);
    size_t nk = kwds ? mv_len(kwds) : 0;
    for (size_t j = 0; j < nk; j++) {
        const kart_obj *k, *v;
        mv_dict_entry(kwds, j, &k, &v);
        size_t kl;
        const char *ks = mv_get_str(k, &kl);
        size_t i = 0;
        while (ks && i < nnames && !(strlen(names[i]) == kl && memcmp(names[i], ks, kl) == 0))
            i++;
        if (!ks || i == nnames) {
            *err =
                mgr__exc("builtins", "TypeError", "%s() got an unexpected keyword argument '%.*s'",
                         fname, ks ? (int)kl : 1, ks ? ks : "?");
            return MCALL_ERROR;
        }
        if (out[i]) {
            *err = mgr__exc("builtins", "TypeError", "%s() got multiple values for argument '%s'",
                            fname, names[i]);
            return MCALL_ERROR;
        }
        out[i] = v;
    }
    for (size_t i = 0; i < nreq; i++)
        if (!out[i]) {
            *err = mgr__exc("builtins", "TypeError", "%s() missing required argument '%s'", fname,
                            names[i]);
            return MCALL_ERROR;
        }
    return 0;
}

int mgr__timeout(const kart_obj *t, int64_t *deadline, bool neg_ok, kart_obj **err)
{
    if (!t || mv_kind(t) == MV_NONE) {
        *deadline = KART__NO_DEADLINE;
        return 0;
    }
    double secs;
    if (mv_get_float(t, &secs) != 0) {
        *err = mgr__exc("builtins", "TypeError", "timeout must be a number or None");
        return MCALL_ERROR;
    }
    if (secs != secs) {
        *err = mgr__exc("builtins", "ValueError", "Invalid value NaN (not a number)");
        return MCALL_ERROR;
    }
    if (secs < 0) {
        if (!neg_ok) {
            *err = mgr__exc("builtins", "ValueError", "'timeout' must be a non-negative number");
            return MCALL_ERROR;
        }
        secs = 0;
    }
    if (secs > 1e9)
        *deadline = KART__NO_DEADLINE;
    else
        *deadline = kart__deadline((int64_t)(secs * 1e9));
    return 0;
}

int mgr__wait(mobj *o, int64_t deadline)
{
    if (mgr__stopping(o->srv))
        return -ECANCELED;
    /* Waits in slices so that a shutdown is seen even if its broadcast
     * raced with us. */
    int64_t slice = kart_now_ns() + 200 * INT64_C(1000000);
    int64_t until = deadline == KART__NO_DEADLINE || deadline > slice ? slice : deadline;
    struct timespec ts = kart__timespec(until);
    int r = pthread_cond_timedwait(&o->cv, &o->mu, &ts);
    if (mgr__stopping(o->srv))
        return -ECANCELED;
    if (r == ETIMEDOUT && deadline != KART__NO_DEADLINE && kart_now_ns() >= deadline)
        return -ETIMEDOUT;
    return 0;
}

/* ---- the object table ---- */

static unsigned bucket_of(const char *ident)
{
    uint64_t h = 1469598103934665603u;
    for (; *ident; ident++)
        h = (h ^ (unsigned char)*ident) * 1099511628211u;
    return (unsigned)(h % NBUCKETS);
}

int mgr__obj_create(kart_manager_server *s, const mtype *t, const kart_obj *args,
                    const kart_obj *kwds, mobj **out, kart_obj **err)
{
    mobj *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&o->mu, NULL);
    o->type = t;
    o->srv = s;
    int r = t->create ? t->create(o, args, kwds, err) : 0;
    if (r != 0) {
        pthread_cond_destroy(&o->cv);
        pthread_mutex_destroy(&o->mu);
        free(o);
        return r;
    }
    pthread_mutex_lock(&s->table_mu);
    snprintf(o->ident, sizeof o->ident, "%" PRIx64, s->next_id);
    s->next_id += 0x30;
    unsigned b = bucket_of(o->ident);
    o->next = s->buckets[b];
    s->buckets[b] = o;
    o->all_next = s->all.all_next;
    o->all_prev = &s->all;
    s->all.all_next->all_prev = o;
    s->all.all_next = o;
    s->nobjects++;
    pthread_mutex_unlock(&s->table_mu);
    *out = o;
    return 0;
}

static void obj_destroy(mobj *o)
{
    mgr__shm_obj_free(o); /* the fast path's segment, if any */
    if (o->type->destroy)
        o->type->destroy(o);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

/* Unlinks o (table_mu held); it is freed when no call holds it. */
static bool obj_unlink_locked(kart_manager_server *s, mobj *o)
{
    mobj **pp = &s->buckets[bucket_of(o->ident)];
    while (*pp && *pp != o)
        pp = &(*pp)->next;
    if (*pp)
        *pp = o->next;
    o->all_prev->all_next = o->all_next;
    o->all_next->all_prev = o->all_prev;
    o->dead = true;
    s->nobjects--;
    return o->holds == 0;
}

/* Looks ident up and holds it (a call in flight). */
static mobj *obj_hold(kart_manager_server *s, const char *ident)
{
    pthread_mutex_lock(&s->table_mu);
    mobj *o = s->buckets[bucket_of(ident)];
    while (o && strcmp(o->ident, ident) != 0)
        o = o->next;
    if (o)
        o->holds++;
    pthread_mutex_unlock(&s->table_mu);
    return o;
}

static void obj_release(mobj *o)
{
    kart_manager_server *s = o->srv;
    pthread_mutex_lock(&s->table_mu);
    bool free_it = --o->holds == 0 && o->dead;
    pthread_mutex_unlock(&s->table_mu);
    if (free_it)
        obj_destroy(o);
}

/* For shm_server.c (the fast path's attach). */
mobj *mgr__obj_hold(kart_manager_server *s, const char *ident)
{
    return obj_hold(s, ident);
}

void mgr__obj_release(mobj *o)
{
    obj_release(o);
}

const kart_manager_options *mgr__server_options(const kart_manager_server *s)
{
    return &s->opts;
}

/* refs += 1 (incref). */
static void obj_incref_locked(mobj *o)
{
    o->refs++;
}

/* refs -= 1; unlinks at 0. Returns true if the caller must destroy it. */
static bool obj_decref_locked(kart_manager_server *s, mobj *o)
{
    if (o->refs > 0)
        o->refs--;
    if (o->refs == 0 && !o->dead)
        return obj_unlink_locked(s, o);
    return false;
}

/* ---- per-connection (session) references ---- */

static int session_add(mcx *cx, mobj *o)
{
    for (size_t i = 0; i < cx->nrefs; i++)
        if (cx->refs[i].o == o) {
            cx->refs[i].n++;
            o->session_refs++;
            return 0;
        }
    if (cx->nrefs == cx->caprefs) {
        size_t cap = cx->caprefs ? cx->caprefs * 2 : 8;
        void *p = realloc(cx->refs, cap * sizeof *cx->refs);
        if (!p)
            return -ENOMEM;
        cx->refs = p;
        cx->caprefs = cap;
    }
    cx->refs[cx->nrefs].o = o;
    cx->refs[cx->nrefs].n = 1;
    cx->nrefs++;
    o->session_refs++;
    return 0;
}

/* Drops one of the session's references to o; false if it has none. */
static bool session_drop(mcx *cx, mobj *o)
{
    for (size_t i = 0; i < cx->nrefs; i++)
        if (cx->refs[i].o == o) {
            o->session_refs--;
            if (--cx->refs[i].n == 0)
                cx->refs[i] = cx->refs[--cx->nrefs];
            return true;
        }
    return false;
}

/* The connection ended: its references go, and the types release what it
 * held (RLocks). */
static void session_end(mcx *cx)
{
    kart_manager_server *s = cx->srv;
    pthread_mutex_lock(&s->table_mu);
    mobj *dead_list = NULL;
    for (size_t i = 0; i < cx->nrefs; i++) {
        mobj *o = cx->refs[i].o;
        for (unsigned long n = cx->refs[i].n; n > 0; n--)
            if (o->session_refs--, obj_decref_locked(s, o)) {
                o->next = dead_list;
                dead_list = o;
            }
    }
    cx->nrefs = 0;
    /* client_gone on every live object that cares (RLocks, Locks) */
    size_t ng = 0, capg = 0;
    mobj **gone = NULL;
    for (mobj *o = s->all.all_next; o != &s->all; o = o->all_next) {
        if (!o->type->client_gone)
            continue;
        if (ng == capg) {
            size_t cap = capg ? capg * 2 : 16;
            mobj **g = realloc(gone, cap * sizeof *g);
            if (!g)
                break;
            gone = g;
            capg = cap;
        }
        o->holds++;
        gone[ng++] = o;
    }
    pthread_mutex_unlock(&s->table_mu);
    for (size_t i = 0; i < ng; i++) {
        gone[i]->type->client_gone(gone[i], cx);
        obj_release(gone[i]);
    }
    free(gone);
    while (dead_list) {
        mobj *n = dead_list->next;
        obj_destroy(dead_list);
        dead_list = n;
    }
}

/* ---- replies ---- */

/* then_wait: the thread's next step is a receive with no deadline. */
static int send_obj(mcx *cx, kart_obj *msg, bool then_wait)
{
    if (!msg)
        return -ENOMEM;
    void *buf;
    size_t len;
    int r = mv_pickle(msg, cx->srv->opts.pickle_protocol, &buf, &len);
    mv_free(msg);
    if (r < 0)
        return r;
    /* mgrbench hook: replies to pipelined requests go out together */
    return mgr__reply_send(&cx->replies, cx->conn, buf, len, then_wait);
}

static kart_obj *exposed_tuple(const mtype *t)
{
    size_t n = 0;
    while (t->exposed[n])
        n++;
    kart_obj **items = calloc(n ? n : 1, sizeof *items);
    if (!items)
        return NULL;
    for (size_t i = 0; i < n; i++)
        items[i] = mv_strz(t->exposed[i]);
    kart_obj *r = mv_tuple_v(n, items);
    free(items);
    return r;
}

static bool is_exposed(const mtype *t, const char *m)
{
    for (size_t i = 0; t->exposed[i]; i++)
        if (strcmp(t->exposed[i], m) == 0)
            return true;
    return false;
}

/* '#PROXY' (exposed, Token) for a new object, referenced once for the
 * client (which increfs in its proxy and decrefs this one, as Python's
 * BaseProxy._callmethod does) */
static kart_obj *proxy_reply(mcx *cx, mobj *no)
{
    kart_obj *tok = mv_token(no->type->typeid, cx->srv->address, no->ident);
    return mv_tuple(2, exposed_tuple(no->type), tok);
}

/* ---- user-registered types ---- */

typedef struct utype {
    mtype t; /* first: the mtype the table uses */
    kart_manager_type def;
    kart_manager_method *methods;
    char **exposed; /* NULL-terminated */
    char *typeid;
    void *arg;
} utype;

static const mtype *server_find_type(const kart_manager_server *s, const char *typeid)
{
    for (size_t i = 0; i < s->nutypes; i++)
        if (strcmp(s->utypes[i]->typeid, typeid) == 0)
            return &s->utypes[i]->t;
    return mgr__find_type(typeid);
}

/* A callback's failure as the exception to send: KART_EREMOTE with an
 * exception object is sent as it is; anything else becomes a RuntimeError. */
static int user_failure(int r, kart_obj *e, const char *typeid, const char *what, kart_obj **out)
{
    if (r == -ENOMEM) {
        mv_free(e);
        return -ENOMEM;
    }
    if (r == KART_EREMOTE && mv_kind(e) == MV_ERROR) {
        *out = e;
        return MCALL_ERROR;
    }
    mv_free(e);
    *out = mgr__exc("builtins", "RuntimeError", "kart: %s.%s failed: %s", typeid, what,
                    r == KART_EREMOTE ? "no exception object" : kart_strerror(r));
    return *out ? MCALL_ERROR : -ENOMEM;
}

static int user_create(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err)
{
    const kart_manager_type *d = o->type->user;
    kart_obj *e = NULL, *noargs = args ? NULL : mv_tuple(0), *nokw = kwds ? NULL : mv_dict_new();
    void *self = NULL;
    int r = (args || noargs) && (kwds || nokw)
                ? d->create(d->arg, args ? args : noargs, kwds ? kwds : nokw, &self, &e)
                : -ENOMEM;
    mv_free(noargs);
    mv_free(nokw);
    if (r < 0)
        return user_failure(r, e, d->typeid, "__init__", err);
    mv_free(e);
    o->data = self;
    return 0;
}

static void user_destroy(mobj *o)
{
    const kart_manager_type *d = o->type->user;
    if (d->destroy)
        d->destroy(d->arg, o->data);
}

static int user_call(mobj *o, mcx *cx, const char *method, const kart_obj *args,
                     const kart_obj *kwds, kart_obj **result, mobj **newobj)
{
    (void)cx;
    const kart_manager_type *d = o->type->user;
    const kart_manager_method *mm = NULL;
    for (size_t i = 0; i < d->nmethods && !mm; i++)
        if (strcmp(d->methods[i].name, method) == 0)
            mm = &d->methods[i];
    if (!mm) /* exposed names are methods (checked at registration) */
        return -ENOMEM;
    kart_obj *res = NULL;
    pthread_mutex_lock(&o->mu); /* one method of an object at a time */
    int r = mm->fn(o->data, args, kwds, &res);
    pthread_mutex_unlock(&o->mu);
    if (r < 0)
        return user_failure(r, res, d->typeid, method, result);
    if (!mm->returns) {
        *result = res ? res : mv_none();
        return *result ? MCALL_OK : -ENOMEM;
    }
    /* a new shared object: res is its constructor's args */
    if (!res && !(res = mv_tuple(0)))
        return -ENOMEM;
    if (mv_kind(res) != MV_TUPLE) {
        mv_free(res);
        *result = mgr__exc("builtins", "TypeError",
                           "kart: %s.%s must give a tuple of constructor args", d->typeid, method);
        return *result ? MCALL_ERROR : -ENOMEM;
    }
    const mtype *t = server_find_type(o->srv, mm->returns);
    kart_obj *err = NULL;
    mobj *no = NULL;
    r = t ? mgr__obj_create(o->srv, t, res, NULL, &no, &err) : -ENOMEM;
    mv_free(res);
    if (r == MCALL_ERROR) {
        *result = err;
        return r;
    }
    if (r < 0)
        return r;
    *newobj = no;
    return MCALL_PROXY;
}

static void utype_free(utype *u)
{
    if (!u)
        return;
    for (size_t i = 0; u->methods && i < u->def.nmethods; i++) {
        free((char *)u->methods[i].name);
        free((char *)u->methods[i].returns);
    }
    for (size_t i = 0; u->exposed && u->exposed[i]; i++)
        free(u->exposed[i]);
    free(u->exposed);
    free(u->methods);
    free(u->typeid);
    free(u);
}

static bool name_ok(const char *n)
{
    return n && *n && strlen(n) < 64;
}

KART_API int kart_manager_server_register(kart_manager_server *s, const kart_manager_type *t)
{
    if (!s || !t || !name_ok(t->typeid) || !t->create || (t->nmethods && !t->methods))
        return -EINVAL;
    if (server_find_type(s, t->typeid))
        return -EEXIST;
    for (size_t i = 0; i < t->nmethods; i++) {
        const kart_manager_method *m = &t->methods[i];
        if (!name_ok(m->name) || !m->fn || (m->returns && !name_ok(m->returns)))
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->methods[j].name, m->name) == 0)
                return -EINVAL;
        if (m->returns && strcmp(m->returns, t->typeid) != 0 && !server_find_type(s, m->returns))
            return -ENOENT;
    }
    size_t nexp = 0;
    if (t->exposed)
        for (; t->exposed[nexp]; nexp++) {
            bool found = false;
            for (size_t j = 0; j < t->nmethods && !found; j++)
                found = strcmp(t->methods[j].name, t->exposed[nexp]) == 0;
            if (!found)
                return -EINVAL;
        }
    else
        nexp = t->nmethods;
    if (atomic_load(&s->serving) || s->has_thread)
        return -EBUSY;
    utype *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->def = *t;
    u->typeid = strdup(t->typeid);
    u->methods = calloc(t->nmethods ? t->nmethods : 1, sizeof *u->methods);
    u->exposed = calloc(nexp + 1, sizeof *u->exposed);
    bool ok = u->typeid && u->methods && u->exposed;
    for (size_t i = 0; ok && i < t->nmethods; i++) {
        u->methods[i] = t->methods[i];
        u->methods[i].name = strdup(t->methods[i].name);
        u->methods[i].returns = t->methods[i].returns ? strdup(t->methods[i].returns) : NULL;
        ok = u->methods[i].name && (!t->methods[i].returns || u->methods[i].returns);
    }
    for (size_t i = 0; ok && i < nexp; i++)
        ok = (u->exposed[i] = strdup(t->exposed ? t->exposed[i] : t->methods[i].name)) != NULL;
    utype **grown = ok ? realloc(s->utypes, (s->nutypes + 1) * sizeof *grown) : NULL;
    if (!grown) {
        u->def.nmethods = u->methods ? t->nmethods : 0;
        utype_free(u);
        return -ENOMEM;
    }
    u->def.typeid = u->typeid;
    u->def.methods = u->methods;
    u->def.exposed = (const char *const *)u->exposed;
    u->t.typeid = u->typeid;
    u->t.exposed = (const char *const *)u->exposed;
    u->t.create = user_create;
    u->t.destroy = user_destroy;
    u->t.call = user_call;
    u->t.user = &u->def;
    s->utypes = grown;
    s->utypes[s->nutypes++] = u;
    return 0;
}

/* ---- public functions ---- */

/* Runs a public function; returns the reply to send (or NULL: -ENOMEM).
 * session: references belong to cx (kart clients), else global. */
static kart_obj *run_public(mcx *cx, const char *fn, const kart_obj *args, const kart_obj *kwds,
                            bool session)
{
    kart_manager_server *s = cx->srv;
    size_t na = mv_len(args);
    char tb[400];
    if (strcmp(fn, "dummy") == 0)
        return mv_tuple(2, mv_strz("#RETURN"), mv_none());
    if (strcmp(fn, "number_of_objects") == 0) {
        pthread_mutex_lock(&s->table_mu);
        size_t n = s->nobjects;
        pthread_mutex_unlock(&s->table_mu);
        return mv_tuple(2, mv_strz("#RETURN"), mv_int((int64_t)n));
    }
    if (strcmp(fn, "debug_info") == 0) {
        char *text = NULL;
        size_t tl = 0;
        FILE *f = open_memstream(&text, &tl);
        if (!f)
            return NULL;
        pthread_mutex_lock(&s->table_mu);
        for (mobj *o = s->all.all_next; o != &s->all; o = o->all_next)
            fprintf(f, "  %s:       refcount=%lu\n    <%s object>\n", o->ident, o->refs,
                    o->type->typeid);
        pthread_mutex_unlock(&s->table_mu);
        fclose(f);
        kart_obj *r = mv_tuple(2, mv_strz("#RETURN"), mv_str(text, tl));
        free(text);
        return r;
    }
    if (strcmp(fn, "shutdown") == 0) {
        cx->stop_after_reply = true;
        return mv_tuple(2, mv_strz("#RETURN"), mv_none());
    }
    if (strcmp(fn, "create") == 0) {
        const char *typeid = na >= 1 ? mv_get_str(mv_item(args, 0), NULL) : NULL;
        const mtype *t = typeid ? server_find_type(s, typeid) : NULL;
        if (!t) {
            snprintf(tb, sizeof tb,
                     "Traceback (most recent call last):\nKeyError: %s (kart: unknown or missing "
                     "typeid)\n",
                     typeid ? typeid : "(none)");
            return mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz(tb));
        }
        kart_obj **rest = calloc(na ? na : 1, sizeof *rest);
        if (!rest)
            return NULL;
        for (size_t i = 1; i < na; i++)
            rest[i - 1] = mv_copy(mv_item(args, i));
        kart_obj *cargs = mv_tuple_v(na - 1, rest);
        free(rest);
        if (!cargs)
            return NULL;
        mobj *o = NULL;
        kart_obj *err = NULL;
        int r = mgr__obj_create(s, t, cargs, kwds, &o, &err);
        mv_free(cargs);
        if (r == MCALL_ERROR) {
            char rep[300] = "?";
            mv_repr(err, rep, sizeof rep);
            mv_free(err);
            snprintf(tb, sizeof tb, "Traceback (most recent call last):\n%s\n", rep);
            return mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz(tb));
        }
        if (r < 0)
            return NULL;
        pthread_mutex_lock(&s->table_mu);
        obj_incref_locked(o);
        int sr = session ? session_add(cx, o) : 0;
        bool destroy = sr != 0 && obj_decref_locked(s, o);
        pthread_mutex_unlock(&s->table_mu);
        if (sr != 0) {
            if (destroy)
                obj_destroy(o);
            return NULL;
        }
        return mv_tuple(2, mv_strz("#RETURN"), mv_tuple(2, mv_strz(o->ident), exposed_tuple(t)));
    }
    if (strcmp(fn, "incref") == 0 || strcmp(fn, "decref") == 0) {
        const char *ident = na == 1 ? mv_get_str(mv_item(args, 0), NULL) : NULL;
        bool inc = fn[0] == 'i';
        if (!ident) {
            snprintf(tb, sizeof tb, "TypeError: %s() takes one ident (a str)\n", fn);
            return mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz(tb));
        }
        pthread_mutex_lock(&s->table_mu);
        mobj *o = s->buckets[bucket_of(ident)];
        while (o && strcmp(o->ident, ident) != 0)
            o = o->next;
        bool destroy = false;
        int sr = 0;
        if (o && inc) {
            sr = session ? session_add(cx, o) : 0;
            if (sr == 0)
                obj_incref_locked(o);
        } else if (o) {
            /* A session's decref releases one of its own references only;
             * a plain one (Python's) only a reference no session holds: a
             * decref may never free what a session still points at. */
            bool dropped = session && session_drop(cx, o);
            if (dropped || o->refs > o->session_refs)
                destroy = obj_decref_locked(s, o);
        }
        pthread_mutex_unlock(&s->table_mu);
        if (destroy)
            obj_destroy(o);
        if (sr != 0)
            return NULL;
        if (!o) {
            snprintf(tb, sizeof tb, "Traceback (most recent call last):\nKeyError: '%.64s'\n",
                     ident);
            return mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz(tb));
        }
        return mv_tuple(2, mv_strz("#RETURN"), mv_none());
    }
    if (strcmp(fn, "get_methods") == 0) {
        const kart_obj *tok = na == 1 ? mv_item(args, 0) : NULL;
        const kart_obj *st = tok && mv_kind(tok) == MV_INSTANCE ? mv_payload(tok) : NULL;
        const char *ident = st && mv_kind(st) == MV_TUPLE && mv_len(st) == 3
                                ? mv_get_str(mv_item(st, 2), NULL)
                                : NULL;
        mobj *o = ident ? obj_hold(s, ident) : NULL;
        if (!o)
            return mv_tuple(2, mv_strz("#TRACEBACK"),
                            mv_strz("KeyError: get_methods: no such object (or not a Token)\n"));
        kart_obj *r = mv_tuple(2, mv_strz("#RETURN"), exposed_tuple(o->type));
        obj_release(o);
        return r;
    }
    snprintf(tb, sizeof tb,
             "Traceback (most recent call last):\nAssertionError: '%.64s' unrecognized\n", fn);
    return mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz(tb));
}

/* ---- requests ---- */

/* Checks the request shape (ident, name, args, kwds); NULL if it fits,
 * else why not. */
static const char *request_shape(const kart_obj *req)
{
    if (mv_kind(req) != MV_TUPLE || mv_len(req) != 4)
        return "a request is a 4-tuple (ident, methodname, args, kwds)";
    int ik = mv_kind(mv_item(req, 0));
    if (ik != MV_NONE && ik != MV_STR)
        return "the ident must be None or a str";
    if (mv_kind(mv_item(req, 1)) != MV_STR)
        return "the method name must be a str";
    if (mv_kind(mv_item(req, 2)) != MV_TUPLE)
        return "args must be a tuple";
    if (mv_kind(mv_item(req, 3)) != MV_DICT)
        return "kwds must be a dict";
    return NULL;
}

/* Decodes one request frame: 0 with *req; 1 with *reply (a '#TRACEBACK':
 * the frame is not a request); -ENOMEM. */
static int decode_request(mcx *cx, const void *buf, size_t len, kart_obj **req, kart_obj **reply)
{
    char why[160] = "";
    char tb[400];
    kart_obj *o = NULL;
    int r = mv_unpickle(buf, len, &o, why, sizeof why);
    if (r == -ENOMEM)
        return r;
    if (r < 0) {
        kart_log(KART_LOG_INFO, "manager", "client %s sent a bad request: %s", cx->name, why);
        snprintf(tb, sizeof tb, "Traceback (most recent call last):\nkart: bad request: %s (%s)\n",
                 why, kart_strerror(r));
        *reply = mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz(tb));
        return *reply ? 1 : -ENOMEM;
    }
    const char *bad = request_shape(o);
    if (bad) {
        mv_free(o);
        snprintf(tb, sizeof tb, "Traceback (most recent call last):\nkart: bad request: %s\n", bad);
        *reply = mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz(tb));
        return *reply ? 1 : -ENOMEM;
    }
    *req = o;
    return 0;
}

static kart_obj *call_method(mcx *cx, const char *ident, const char *method, const kart_obj *args,
                             const kart_obj *kwds)
{
    mobj *o = obj_hold(cx->srv, ident);
    if (!o)
        return mv_tuple(2, mv_strz("#TRACEBACK"),
                        mv_strz("Traceback (most recent call last):\nKeyError: no such object\n"));
    kart_obj *reply = NULL;
    if (!is_exposed(o->type, method)) {
        char text[512];
        if (strcmp(method, "__repr__") == 0 || strcmp(method, "__str__") == 0) {
            if (o->type->repr)
                o->type->repr(o, text, sizeof text);
            else
                snprintf(text, sizeof text, "<%s object>", o->type->typeid);
            reply = mv_tuple(2, mv_strz("#RETURN"), mv_strz(text));
        } else if (strcmp(method, "#GETVALUE") == 0 && o->type->getvalue) {
            kart_obj *v = NULL;
            reply = o->type->getvalue(o, &v) == 0 ? mv_tuple(2, mv_strz("#RETURN"), v) : NULL;
        } else {
            snprintf(text, sizeof text,
                     "Traceback (most recent call last):\nAttributeError: method '%.64s' of "
                     "'%s' object is not in exposed\n",
                     method, o->type->typeid);
            reply = mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz(text));
        }
        obj_release(o);
        return reply;
    }
    kart_obj *result = NULL;
    mobj *no = NULL;
    int r = o->type->call(o, cx, method, args, kwds, &result, &no);
    if (r == MCALL_OK)
        reply = mv_tuple(2, mv_strz("#RETURN"), result);
    else if (r == MCALL_ERROR)
        reply = mv_tuple(2, mv_strz("#ERROR"), result);
    else if (r == MCALL_PROXY) {
        pthread_mutex_lock(&cx->srv->table_mu);
        obj_incref_locked(no);
        pthread_mutex_unlock(&cx->srv->table_mu);
        reply = mv_tuple(2, mv_strz("#PROXY"), proxy_reply(cx, no));
    } else if (r == -ECANCELED)
        reply = mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz("kart: the manager is shutting down\n"));
    else
        reply = NULL;
    obj_release(o);
    return reply;
}

static bool truthy_kwd(const kart_obj *kwds, const char *name)
{
    for (size_t i = 0; i < mv_len(kwds); i++) {
        const kart_obj *k, *v;
        if (mv_dict_entry(kwds, i, &k, &v) == 0 && mv_is_str(k, name))
            return mv_get_bool(v);
    }
    return false;
}

int mgr__handle_frame(mcx *cx, const void *buf, size_t len, bool accepted, bool *accept,
                      kart_obj **reply)
{
    kart_obj *req = NULL;
    *reply = NULL;
    if (accept)
        *accept = false;
    int r = decode_request(cx, buf, len, &req, reply);
    if (r != 0)
        return r < 0 ? r : 0;
    const kart_obj *id = mv_item(req, 0);
    const char *fn = mv_get_str(mv_item(req, 1), NULL);
    const kart_obj *args = mv_item(req, 2), *kwds = mv_item(req, 3);
    if (accepted) {
        if (mv_kind(id) == MV_NONE) {
            cx->kart = true; /* only kart clients send these */
            *reply = run_public(cx, fn, args, kwds, true);
        } else
            *reply = call_method(cx, mv_get_str(id, NULL), fn, args, kwds);
    } else {
        bool known = false;
        for (size_t i = 0; public_names[i]; i++)
            known = known || strcmp(public_names[i], fn) == 0;
        char tb[200];
        if (!known || mv_kind(id) != MV_NONE) {
            snprintf(tb, sizeof tb,
                     "Traceback (most recent call last):\nAssertionError: '%.64s' unrecognized\n",
                     fn);
            *reply = mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz(tb));
        } else if (strcmp(fn, "accept_connection") == 0) {
            /* accept_connection(name); kart clients add kart=True */
            const char *nm = mv_len(args) == 1 ? mv_get_str(mv_item(args, 0), NULL) : NULL;
            if (nm)
                snprintf(cx->name, sizeof cx->name, "%.60s", nm);
            cx->kart = truthy_kwd(kwds, "kart");
            *reply = mv_tuple(2, mv_strz("#RETURN"), mv_none());
            if (accept)
                *accept = *reply != NULL;
        } else
            *reply = run_public(cx, fn, args, kwds, false);
    }
    mv_free(req);
    if (!*reply)
        *reply = mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz("MemoryError\n"));
    return *reply ? 0 : -ENOMEM;
}

/* Reads a frame, handles it, sends the reply: 0 (and *accept), or
 * negative when the connection is over. */
static int serve_one(mcx *cx, bool accepted, bool *accept)
{
    void *buf = NULL;
    size_t len = 0;
    int64_t idle = cx->srv->opts.idle_timeout_ns;
    int r;
    for (;;) {
        int64_t dl = idle > 0 ? kart__deadline(idle) : KART__NO_DEADLINE;
        r = kart__conn_recv_dl(cx->conn, &buf, &len, cx->srv->opts.max_message, dl);
        /* a kart client's session holding references stays: closing it
         * would free objects that its live proxies name */
        if (r != -ETIMEDOUT || cx->nrefs == 0 || mgr__stopping(cx->srv))
            break;
    }
    if (r == -ETIMEDOUT) {
        kart_log(KART_LOG_INFO, "manager", "client %s idle for %" PRId64 " ms: closed", cx->name,
                 idle / 1000000);
        /* told, so that its next request (unread: never run) can be sent
         * again on a new connection */
        send_obj(cx,
                 mv_tuple(2, mv_strz("#TRACEBACK"),
                          mv_strz("Traceback (most recent call last):\n" MGR_IDLE_TEXT "\n")),
                 false);
        return r;
    }
    if (r < 0) {
        if (r != KART_EEOF && !mgr__stopping(cx->srv))
            kart_log(KART_LOG_WARNING, "manager", "client %s dropped: %s", cx->name,
                     kart_strerror(r));
        return r;
    }
    if (!accepted && mgr__shm_is_attach(buf, len)) {
        /* kart's fast-path attach: answered, then the connection ends */
        r = mgr__shm_serve_attach(cx, buf, len);
        free(buf);
        return r < 0 ? r : 1;
    }
    kart_obj *reply = NULL;
    r = mgr__handle_frame(cx, buf, len, accepted, accept, &reply);
    free(buf);
    if (r < 0)
        return r;
    /* an accepted connection's thread reads the next request at once
     * (with no idle deadline: the prefetch's wait has none) */
    r = send_obj(cx, reply, accepted && cx->srv->opts.idle_timeout_ns <= 0);
    if (r < 0)
        kart_log(KART_LOG_INFO, "manager", "client %s: reply not sent: %s", cx->name,
                 kart_strerror(r));
    return r;
}

/* A connection's thread ends: out of the list, closed, freed. */
static void cx_leave(mcx *cx, bool served)
{
    kart_manager_server *s = cx->srv;
    pthread_mutex_lock(&s->cx_mu);
    cx->prev->next = cx->next;
    cx->next->prev = cx->prev;
    kart_conn_close(cx->conn);
    s->ncx--;
    if (served)
        s->nserved--;
    else
        s->nrefusing--;
    free(cx->refs);
    cx->refs = NULL;
    cx->ended_next = s->ended;
    s->ended = cx; /* freed by reap_ended, after its thread is joined */
    pthread_cond_broadcast(&s->cx_cv);
    pthread_mutex_unlock(&s->cx_mu);
}

/* Joins the threads of the sessions that have ended (each is past
 * cx_leave, on its way out) and frees their sessions. Serve loop only. */
static void reap_ended(kart_manager_server *s)
{
    pthread_mutex_lock(&s->cx_mu);
    mcx *cx = s->ended;
    s->ended = NULL;
    pthread_mutex_unlock(&s->cx_mu);
    while (cx) {
        mcx *next = cx->ended_next;
        if (cx->has_thread)
            pthread_join(cx->thread, NULL);
        free(cx);
        cx = next;
    }
}

static void *client_thread(void *arg)
{
    mcx *cx = arg;
    kart_manager_server *s = cx->srv;
    int r = 0;
    if (s->opts.authkey) {
        kart_auth auth = {.authkey = s->opts.authkey,
                          .authkey_len = s->opts.authkey_len,
                          .timeout_ns = s->opts.timeout_ns};
        r = kart_conn_deliver_challenge(cx->conn, &auth);
        if (r == 0)
            r = kart_conn_answer_challenge(cx->conn, &auth);
        if (r < 0)
            kart_log(KART_LOG_WARNING, "manager", "client %s refused: handshake: %s", cx->name,
                     kart_strerror(r));
    }
    bool accept = false;
    if (r == 0 && serve_one(cx, false, &accept) == 0 && accept)
        while (!mgr__stopping(s) && serve_one(cx, true, NULL) == 0)
            ;
    mgr__reply_flush(&cx->replies,
                     cx->conn); /* replies the batching still keeps (server_replies.c) */
    if (cx->stop_after_reply)
        kart_manager_server_shutdown(s);
    session_end(cx);
    cx_leave(cx, true);
    return NULL;
}

/* A connection over max_connections: the handshake (so that the client
 * can read a reply), then its first request, whatever it is, answered
 * with the refusal; Python's client raises it as a RemoteError. */
static void *refuse_thread(void *arg)
{
    mcx *cx = arg;
    kart_manager_server *s = cx->srv;
    int r = 0;
    if (s->opts.authkey) {
        kart_auth auth = {.authkey = s->opts.authkey,
                          .authkey_len = s->opts.authkey_len,
                          .timeout_ns = s->opts.timeout_ns};
        r = kart_conn_deliver_challenge(cx->conn, &auth);
        if (r == 0)
            r = kart_conn_answer_challenge(cx->conn, &auth);
    }
    void *buf = NULL;
    size_t len = 0;
    if (r == 0)
        r = kart__conn_recv_dl(cx->conn, &buf, &len, s->opts.max_message,
                               kart__deadline(REFUSE_WAIT_NS));
    if (r == 0) {
        free(buf);
        char tb[200];
        snprintf(tb, sizeof tb,
                 "Traceback (most recent call last):\n" MGR_REFUSED_TEXT
                 " (the manager serves %zu at most)\n",
                 s->opts.max_connections);
        send_obj(cx, mv_tuple(2, mv_strz("#TRACEBACK"), mv_strz(tb)), false);
        mgr__reply_flush(&cx->replies, cx->conn);
    }
    cx_leave(cx, false);
    return NULL;
}

/* ---- server lifecycle ---- */

/* The options checked and completed, with a private copy of the authkey
 * (*key, the caller's to free; o->authkey points at it). For the server
 * and the client alike. Errors: -EINVAL, -ENOMEM. */
int mgr__options_take(const kart_manager_options *opts, kart_manager_options *out, void **key)
{
    kart_manager_options o = opts ? *opts : (kart_manager_options){0};
    *key = NULL;
    if ((o.authkey && o.authkey_len == 0) || (!o.authkey && o.authkey_len) ||
        (o.pickle_protocol != 0 && (o.pickle_protocol < 2 || o.pickle_protocol > 5)))
        return -EINVAL;
    if (o.max_message == 0)
        o.max_message = DEFAULT_MAX_MESSAGE;
    if (o.authkey) {
        if (!(*key = malloc(o.authkey_len)))
            return -ENOMEM;
        memcpy(*key, o.authkey, o.authkey_len);
        o.authkey = *key;
    }
    *out = o;
    return 0;
}

int mgr__server_new(kart_manager_server **out, const kart_manager_options *opts)
{
    kart_manager_options o;
    void *key;
    int err = mgr__options_take(opts, &o, &key);
    if (err < 0)
        return err;
    kart_manager_server *s = calloc(1, sizeof *s);
    if (!s) {
        free(key);
        return -ENOMEM;
    }
    s->key = key;
    s->opts = o;
    pthread_mutex_init(&s->table_mu, NULL);
    pthread_mutex_init(&s->cx_mu, NULL);
    pthread_cond_init(&s->cx_cv, NULL);
    s->all.all_next = s->all.all_prev = &s->all;
    s->cxs.next = s->cxs.prev = &s->cxs;
    s->next_id = 0x7f3a00001000u;
    *out = s;
    return 0;
}

mcx *mgr__cx_new(kart_manager_server *s)
{
    mcx *cx = calloc(1, sizeof *cx);
    if (!cx)
        return NULL;
    cx->srv = s;
    pthread_mutex_lock(&s->cx_mu);
    cx->serial = ++s->next_serial;
    pthread_mutex_unlock(&s->cx_mu);
    snprintf(cx->name, sizeof cx->name, "conn-%" PRIu64, cx->serial);
    return cx;
}

void mgr__cx_end(mcx *cx)
{
    if (!cx)
        return;
    if (cx->stop_after_reply)
        kart_manager_server_shutdown(cx->srv);
    session_end(cx);
    free(cx->refs);
    free(cx);
}

KART_API int kart_manager_server_create(kart_manager_server **out, const char *address,
                                        const kart_manager_options *opts)
{
    if (!out || !address)
        return -EINVAL;
    kart_manager_server *s = NULL;
    int r = mgr__server_new(&s, opts);
    if (r < 0)
        return r;
    r = kart_listener_create(&s->listener, address, NULL);
    if (r < 0) {
        kart_manager_server_free(s);
        return r;
    }
    kart_listener_address(s->listener, s->address, sizeof s->address);
    *out = s;
    return 0;
}

KART_API int kart_manager_server_address(const kart_manager_server *s, char *buf, size_t size)
{
    if (!s || !buf)
        return -EINVAL;
    size_t n = strlen(s->address);
    if (n >= size)
        return -ENOSPC;
    memcpy(buf, s->address, n + 1);
    return (int)n;
}

KART_API int kart_manager_server_serve(kart_manager_server *s)
{
    if (!s)
        return -EINVAL;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&s->serving, &expect, 1))
        return -EALREADY;
    while (!mgr__stopping(s)) {
        reap_ended(s);
        kart_conn *c = NULL;
        int r = kart_listener_accept(s->listener, &c, ACCEPT_SLICE_NS);
        if (r == -ETIMEDOUT || r == -ECONNABORTED || r == -EINTR)
            continue;
        if (r < 0) {
            kart_log(KART_LOG_WARNING, "manager", "accept: %s", kart_strerror(r));
            if (r == -EMFILE || r == -ENFILE || r == -ENOMEM)
                usleep(10000);
            continue;
        }
        mcx *cx = calloc(1, sizeof *cx);
        if (!cx) {
            kart_conn_close(c);
            continue;
        }
        cx->srv = s;
        cx->conn = c;
        pthread_mutex_lock(&s->cx_mu);
        cx->serial = ++s->next_serial;
        snprintf(cx->name, sizeof cx->name, "conn-%" PRIu64, cx->serial);
        if (mgr__stopping(s)) {
            pthread_mutex_unlock(&s->cx_mu);
            kart_conn_close(c);
            free(cx);
            break;
        }
        bool served = s->opts.max_connections == 0 || s->nserved < s->opts.max_connections;
        if (!served && s->nrefusing >= REFUSING_MAX) {
            pthread_mutex_unlock(&s->cx_mu);
            kart_log(KART_LOG_WARNING, "manager",
                     "client %s refused (max_connections %zu), unanswered: %d refusals pending",
                     cx->name, s->opts.max_connections, REFUSING_MAX);
            kart_conn_close(c);
            free(cx);
            continue;
        }
        if (!served)
            kart_log(KART_LOG_WARNING, "manager", "client %s refused: max_connections %zu reached",
                     cx->name, s->opts.max_connections);
        cx->next = s->cxs.next;
        cx->prev = &s->cxs;
        s->cxs.next->prev = cx;
        s->cxs.next = cx;
        s->ncx++;
        if (served)
            s->nserved++;
        else
            s->nrefusing++;
        pthread_mutex_unlock(&s->cx_mu);
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, 256 * 1024);
        /* The thread may end (and cx go on the ended list) before
         * pthread_create returns; only this thread reaps, after it. */
        cx->has_thread = true;
        int e = pthread_create(&cx->thread, &at, served ? client_thread : refuse_thread, cx);
        pthread_attr_destroy(&at);
        if (e != 0) {
            cx->has_thread = false;
            kart_log(KART_LOG_WARNING, "manager", "no thread for a client: %s", strerror(e));
            cx_leave(cx, served);
        }
    }
    /* stop every client: their threads see EOF or the stop flag */
    pthread_mutex_lock(&s->cx_mu);
    for (mcx *cx = s->cxs.next; cx != &s->cxs; cx = cx->next)
        shutdown(kart_conn_fileno(cx->conn), SHUT_RDWR);
    pthread_mutex_unlock(&s->cx_mu);
    pthread_mutex_lock(&s->table_mu);
    for (mobj *o = s->all.all_next; o != &s->all; o = o->all_next) {
        pthread_mutex_lock(&o->mu);
        pthread_cond_broadcast(&o->cv);
        pthread_mutex_unlock(&o->mu);
    }
    pthread_mutex_unlock(&s->table_mu);
    pthread_mutex_lock(&s->cx_mu);
    while (s->ncx > 0)
        pthread_cond_wait(&s->cx_cv, &s->cx_mu);
    pthread_mutex_unlock(&s->cx_mu);
    reap_ended(s);
    return 0;
}

static void *serve_thread(void *arg)
{
    kart_manager_server_serve(arg);
    return NULL;
}

KART_API int kart_manager_server_start(kart_manager_server *s)
{
    if (!s)
        return -EINVAL;
    if (atomic_load(&s->serving) || s->has_thread)
        return -EALREADY;
    int e = pthread_create(&s->thread, NULL, serve_thread, s);
    if (e != 0)
        return -EAGAIN;
    s->has_thread = true;
    return 0;
}

KART_API int kart_manager_server_shutdown(kart_manager_server *s)
{
    if (!s)
        return -EINVAL;
    atomic_store(&s->stopping, 1);
    return 0;
}

KART_API int kart_manager_server_stopped(const kart_manager_server *s)
{
    return s && mgr__stopping(s) ? 1 : 0;
}

KART_API int kart_manager_server_objects(kart_manager_server *s)
{
    if (!s)
        return -EINVAL;
    pthread_mutex_lock(&s->table_mu);
    int n = (int)s->nobjects;
    pthread_mutex_unlock(&s->table_mu);
    return n;
}

KART_API void kart_manager_server_free(kart_manager_server *s)
{
    if (!s)
        return;
    kart_manager_server_shutdown(s);
    if (s->has_thread)
        pthread_join(s->thread, NULL);
    kart_listener_free(s->listener);
    while (s->all.all_next != &s->all) {
        mobj *o = s->all.all_next;
        obj_unlink_locked(s, o);
        obj_destroy(o);
    }
    pthread_mutex_destroy(&s->table_mu);
    pthread_mutex_destroy(&s->cx_mu);
    pthread_cond_destroy(&s->cx_cv);
    for (size_t i = 0; i < s->nutypes; i++)
        utype_free(s->utypes[i]);
    free(s->utypes);
    free(s->key);
    free(s);
}

/* ---- forked server ---- */

KART_API int kart_manager_fork(const char *address, const kart_manager_options *opts, char *addr,
                               size_t size, pid_t *pid)
{
    if (!addr || !pid || size == 0)
        return -EINVAL;
    char gen[64];
    if (!address) {
        static _Atomic unsigned seq;
        snprintf(gen, sizeof gen, "@kart-manager-%d-%u", (int)getpid(), atomic_fetch_add(&seq, 1));
        address = gen;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    pid_t parent = getpid();
    pid_t c = fork();
    if (c < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return e == ENOMEM ? -ENOMEM : -EAGAIN;
    }
    if (c == 0) {
        close(p[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        kart_manager_server *s = NULL;
        int r = kart_manager_server_create(&s, address, opts);
        char msg[300];
        int n = r < 0 ? snprintf(msg, sizeof msg, "E%d", r)
                      : snprintf(msg, sizeof msg, "A%s", s->address);
        if (write(p[1], msg, (size_t)n + 1) < 0)
            _exit(1);
        close(p[1]);
        if (r < 0)
            _exit(1);
        kart_manager_server_serve(s);
        kart_manager_server_free(s);
        _exit(0);
    }
    close(p[1]);
    char msg[300];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(p[0], msg + got, sizeof msg - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p[0]);
    msg[got] = 0;
    if (got < 2 || msg[0] != 'A') {
        int r = got >= 2 && msg[0] == 'E' ? atoi(msg + 1) : -ECHILD;
        waitpid(c, NULL, 0);
        return r;
    }
    size_t n = strlen(msg + 1);
    if (n >= size) {
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
        return -ENOSPC;
    }
    memcpy(addr, msg + 1, n + 1);
    *pid = c;
    return 0;
}

/*
 * core/manager/mgr_private.h — the manager server's and proxies' private
 * vocabulary: the value adapter over kart_obj (mv_*: the only place that
 * names kart/obj.h's calls, so that the rest reads the same whatever that
 * API spells), the object table, and the shared-object types.
 */
#ifndef KART_MGR_PRIVATE_H
#define KART_MGR_PRIVATE_H

#include "server_replies.h"

#include <kart/conn.h>
#include <kart/manager.h>
#include <kart/obj.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- values (mgr_value.c) ---- */

enum mv_kind {
    MV_NONE,
    MV_BOOL,
    MV_INT,
    MV_BIGINT,
    MV_FLOAT,
    MV_STR,
    MV_BYTES,
    MV_TUPLE,
    MV_LIST,
    MV_DICT,
    MV_INSTANCE, /* a class instance: module, name, state */
    MV_ERROR,    /* an exception: module, name, args */
    MV_OTHER,
};

int mv_kind(const kart_obj *o);
/* Constructors: NULL on -ENOMEM. */
kart_obj *mv_none(void);
kart_obj *mv_bool(bool b);
kart_obj *mv_int(int64_t v);
kart_obj *mv_float(double v);
kart_obj *mv_str(const char *s, size_t len); /* must be valid UTF-8 */
kart_obj *mv_strz(const char *s);
kart_obj *mv_bytes(const void *p, size_t len);
/* A tuple of n items, taking every item (also on failure, where they are
 * freed; a NULL item makes it fail). */
kart_obj *mv_tuple(size_t n, ...);
kart_obj *mv_tuple_v(size_t n, kart_obj **items);
kart_obj *mv_list_new(void);
/* Appends, taking item (freed on failure). */
int mv_list_append(kart_obj *l, kart_obj *item);
kart_obj *mv_dict_new(void);
/* Sets, taking key and value (freed on failure). */
int mv_dict_set(kart_obj *d, kart_obj *k, kart_obj *v);
/* An exception: module.name(*args), taking args (a tuple). */
kart_obj *mv_error(const char *module, const char *name, kart_obj *args);
/* multiprocessing.managers.Token(typeid, address, id). */
kart_obj *mv_token(const char *typeid, const char *address, const char *id);

size_t mv_len(const kart_obj *o); /* tuple, list, dict, str, bytes */
const kart_obj *mv_item(const kart_obj *o, size_t i);
int mv_dict_entry(const kart_obj *d, size_t i, const kart_obj **k, const kart_obj **v);
int mv_get_int(const kart_obj *o, int64_t *v); /* int or bool; -ERANGE, -EINVAL */
int mv_get_float(const kart_obj *o, double *v);
bool mv_get_bool(const kart_obj *o);
/* str or bytes contents, NULL otherwise */
const char *mv_get_str(const kart_obj *o, size_t *len);
const void *mv_get_bytes(const kart_obj *o, size_t *len);
/* Bigint as little-endian two's complement. */
const void *mv_get_bigint(const kart_obj *o, size_t *len);
/* Instance / error parts. */
int mv_class(const kart_obj *o, const char **module, const char **name);
const kart_obj *mv_payload(const kart_obj *o); /* instance state or error args */
bool mv_is_str(const kart_obj *o, const char *s);

kart_obj *mv_copy(const kart_obj *o);
bool mv_equal(const kart_obj *a, const kart_obj *b);
void mv_free(kart_obj *o);
int mv_repr(const kart_obj *o, char *buf, size_t cap);

int mv_pickle(const kart_obj *o, int protocol, void **buf, size_t *len);
int mv_unpickle(const void *buf, size_t len, kart_obj **out, char *why, size_t whycap);

/* ---- the server ---- */

typedef struct mobj mobj;
typedef struct mcx mcx; /* one client connection (server side) */

/* A method's outcome. */
enum {
    MCALL_OK = 0,    /* *result: the value */
    MCALL_ERROR = 1, /* *result: an exception object ('#ERROR') */
    MCALL_PROXY = 2, /* *newobj: a new shared object ('#PROXY') */
};

typedef struct mtype {
    const char *typeid;
    const char *const *exposed; /* NULL-terminated */
    int (*create)(mobj *o, const kart_obj *args, const kart_obj *kwds, kart_obj **err);
    void (*destroy)(mobj *o);
    /* Runs method (already checked against exposed) with o->mu NOT held. */
    int (*call)(mobj *o, mcx *cx, const char *method, const kart_obj *args, const kart_obj *kwds,
                kart_obj **result, mobj **newobj);
    /* repr() text into buf; NULL: the generic "<typeid object>". */
    int (*repr)(mobj *o, char *buf, size_t cap);
    /* '#GETVALUE': a copy of the referent; NULL: unsupported. */
    int (*getvalue)(mobj *o, kart_obj **out);
    /* a client connection ends: release what it holds (locks) */
    void (*client_gone)(mobj *o, mcx *cx);
    /* a user-registered type's kart_manager_type (server.c); NULL: built-in */
    const kart_manager_type *user;
} mtype;

struct mobj {
    char ident[24];
    const mtype *type;
    kart_manager_server *srv;
    unsigned long refs;         /* under srv->table_mu */
    unsigned long session_refs; /* of refs, those connections' sessions hold */
    unsigned long holds;        /* calls in flight, under srv->table_mu */
    bool dead;                  /* left the table */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    mobj *next;        /* hash chain */
    mobj *all_next, *all_prev;
    void *data;
    /* the shared segment once a same-host kart client attached (dict,
     * Queue, JoinableQueue: shm_server.c); set once, under mu */
    struct mshm *shm;
};

/* Server-side connection state the types may look at. */
struct mcx {
    kart_manager_server *srv;
    kart_conn *conn;
    uint64_t serial; /* unique per connection: owner of RLocks */
    bool kart;       /* a kart client (told of a dead lock holder) */
    mcx *next, *prev;
    /* references this session holds (kart clients' extension) */
    struct {
        mobj *o;
        unsigned long n;
    } * refs;
    size_t nrefs, caprefs;
    char name[64];
    mgr_replies replies; /* kept while pipelined requests wait (server_replies.h) */
    /* The thread serving it, joined by the serve loop once the session has
     * ended (cx_leave puts it on the server's `ended` list): so that no
     * thread of a server still runs (its exit path, TLS destructors) after
     * kart_manager_server_serve returns. */
    pthread_t thread;
    bool has_thread;
    mcx *ended_next;
    /* it asked for 'shutdown': the server stops once the reply is out
     * (Python's order: reply, then stop_event.set()); stopping first would
     * cut the connection under the unsent reply */
    bool stop_after_reply;
};

const mtype *mgr__find_type(const char *typeid);
extern const mtype *const mgr__types[];

/* A server with no listener (the request fuzzer's): it serves nothing by
 * itself; kart_manager_server_free frees it. */
int mgr__options_take(const kart_manager_options *opts, kart_manager_options *out, void **key);
int mgr__server_new(kart_manager_server **out, const kart_manager_options *opts);
/* A connection of s that is no socket (conn NULL: nothing is sent). */
mcx *mgr__cx_new(kart_manager_server *s);
/* Ends it: its references and locks go, as when a client disconnects. */
void mgr__cx_end(mcx *cx);
/* The server's request handling, with no socket: one request frame (a
 * pickle) in, the reply to send out. accepted: the connection has had
 * accept_connection (it carries method calls); otherwise the frame is a
 * connection's first request, and *accept is set when it is
 * accept_connection (the connection goes on). Returns 0 with *reply, or
 * -ENOMEM. */
int mgr__handle_frame(mcx *cx, const void *buf, size_t len, bool accepted, bool *accept,
                      kart_obj **reply);

/* Waits on o->cv (o->mu held) until deadline (KART__NO_DEADLINE: none);
 * returns 0 woken, -ETIMEDOUT, -ECANCELED (server stopping). */
int mgr__wait(mobj *o, int64_t deadline);
bool mgr__stopping(const kart_manager_server *s);

/* Exceptions: a new error object module.name(msg) / module.name(arg). */
kart_obj *mgr__exc(const char *module, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
kart_obj *mgr__exc_obj(const char *module, const char *name, const kart_obj *arg);

/* Argument parsing as Python binds them: names[i] with positional args
 * then keywords; out[i] NULL where absent (the default applies). Returns
 * 0, or MCALL_ERROR with a TypeError in *err. */
int mgr__args(const char *fname, const kart_obj *args, const kart_obj *kwds,
              const char *const *names, size_t nreq, size_t nnames, const kart_obj **out,
              kart_obj **err);

/* A method body's argument binding, for types.c and shm_server.c: BIND
 * fills a[] (declared by the caller) or returns the TypeError; NOARGS
 * refuses any argument. Both need args, kwds and result in scope. */
#define NAMES(...) ((const char *const[]){__VA_ARGS__})
#define NNAMES(...) (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define BIND(fname, nreq, ...)                                                                     \
    do {                                                                                           \
        int br_ = mgr__args(fname, args, kwds, NAMES(__VA_ARGS__), nreq, NNAMES(__VA_ARGS__), a,   \
                            result);                                                               \
        if (br_)                                                                                   \
            return br_;                                                                            \
    } while (0)
#define NOARGS(fname)                                                                              \
    do {                                                                                           \
        if (mv_len(args) || mv_len(kwds)) {                                                        \
            *result = mgr__exc("builtins", "TypeError", "%s() takes no arguments", fname);         \
            return *result ? MCALL_ERROR : -ENOMEM;                                                \
        }                                                                                          \
    } while (0)
/* A timeout argument (None or a number, seconds) as a deadline; Python's
 * rules: None forever; negative is an error where neg_ok is false. */
int mgr__timeout(const kart_obj *t, int64_t *deadline, bool neg_ok, kart_obj **err);

/* Creates a new object of type t in s with 0 references. */
int mgr__obj_create(kart_manager_server *s, const mtype *t, const kart_obj *args,
                    const kart_obj *kwds, mobj **out, kart_obj **err);

/* Python's ordering for sort(): <0, 0, >0; *bad set if not comparable. */
int mgr__compare(const kart_obj *a, const kart_obj *b, bool *bad);

#endif

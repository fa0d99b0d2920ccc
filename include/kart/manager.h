/*
 * kart/manager.h — managers: a server that holds shared objects (dict,
 * list, Namespace, Value, Event, Lock, RLock, Queue, JoinableQueue) which
 * other threads and processes, here or on another host, use through
 * proxies (also Semaphore, BoundedSemaphore, Condition, Barrier, Array).
 * The wire protocol is Python's multiprocessing.managers, so a
 * real python3 SyncManager(address=..., authkey=...).connect() can use a
 * kart manager; see docs/manager.md for what exists and what does not yet.
 *
 * Protocol. Every connection is a kart_conn (Python's Connection framing)
 * authenticated with the authkey handshake, and carries pickled requests
 * (ident, method, args, kwds) and replies ('#RETURN', value), ('#ERROR',
 * exception), ('#TRACEBACK', text), ('#PROXY', (exposed, token)). The first
 * request on a connection is one of the server's public functions
 * (create, incref, decref, accept_connection, get_methods, shutdown,
 * number_of_objects, debug_info, dummy); after accept_connection the
 * connection carries method calls, each served by the connection's own
 * server thread, so that a blocking call (Lock.acquire, Queue.get,
 * Event.wait) blocks only its client.
 *
 * kart clients' extension: on an accepted connection a request whose ident
 * is None calls a public function (create, incref, decref, ...), and the
 * references it makes belong to that connection: they are released when
 * the connection ends, so that a client that dies leaves nothing behind.
 * Python clients never send such a request. kart clients also open each
 * connection with accept_connection(name, kart=True), which tells the
 * server to report a dead lock holder (-EOWNERDEAD) to them; against a
 * server that refuses either (python3's), kart falls back to Python's
 * scheme (see kart_manager_connect).
 *
 * Values are kart_obj trees (kart/obj.h): None, bool, int, big int, float,
 * str, bytes, tuple, list, dict. Exceptions raised by a method come back
 * as KART_EREMOTE with the exception object.
 */
#ifndef KART_MANAGER_H
#define KART_MANAGER_H

#include <kart/common.h>
#include <kart/obj.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The remote method raised: the exception (or '#TRACEBACK' text, as a
 * str) is in the call's result out parameter. */
#define KART_EREMOTE (-21000)
/* The reply was not a manager reply (a peer that does not speak the
 * protocol, or a value kart cannot decode). */
#define KART_EBADREPLY (-21001)

typedef struct kart_manager_server kart_manager_server;
typedef struct kart_manager kart_manager;
typedef struct kart_proxy kart_proxy;

typedef struct kart_manager_options {
    const void *authkey; /* NULL: no handshake (Python always sends one) */
    size_t authkey_len;
    size_t max_message;  /* largest request or reply; 0: 64 MiB */
    int64_t timeout_ns;  /* handshake bound; 0: 10 s */
    int pickle_protocol; /* of what kart sends, 2..5; 0: 4 (python3.11's) */
    /* The same-host fast path (see kart_proxy_shared): a server with
     * no_shm never offers it, a client with no_shm never asks. */
    bool no_shm;
    /* Server: the bytes reserved for each shared object's segment (sparse:
     * pages cost only once used); 0: 256 MiB, at least 64 KiB. A dict or
     * queue that outgrows it refuses the change (-ENOSPC, Python's
     * MemoryError). */
    size_t shm_size;
    /* The server's (a client ignores them): */
    /* Connections served at once; 0: no cap (Python's). A client over the
     * cap is refused: after the handshake its first request is answered
     * with the error "kart: connection refused: too many connections"
     * (kart clients: -EUSERS; Python's: a RemoteError) and closed. */
    size_t max_connections;
    /* A connection that sends no request for this long is closed (a
     * request sent half-way counts as none); <= 0: never (Python's). It
     * ends as any connection does: the locks it holds are released, the
     * next acquirer told. Not a kart client's session connection while it
     * holds references. A kart client whose thread connection was closed
     * so reconnects and sends its call again on a new one (the server
     * tells it, with "kart: idle connection closed", that the call was
     * not run); a Python client's next call raises that RemoteError. */
    int64_t idle_timeout_ns;
} kart_manager_options;

/* ---- server ---- */

/*
 * Creates a server listening on address (as kart_listener_create takes it:
 * "/path", "@abstract", "127.0.0.1:0", "[::1]:0"). It serves nothing until
 * kart_manager_server_serve or _start. opts may be NULL.
 * Errors: -EINVAL (NULL out or address, bad options), -ENOMEM, and
 * kart_listener_create's errors.
 */
KART_API int kart_manager_server_create(kart_manager_server **out, const char *address,
                                        const kart_manager_options *opts);
/* The bound address ("127.0.0.1:41234"); the length, or -EINVAL, -ENOSPC. */
KART_API int kart_manager_server_address(const kart_manager_server *s, char *buf, size_t size);
/* Serves in the calling thread until shut down (by
 * kart_manager_server_shutdown or by a client's shutdown request).
 * Errors: -EINVAL (NULL), -EALREADY (already serving). */
KART_API int kart_manager_server_serve(kart_manager_server *s);
/* Serves in a new thread of the caller. Errors: -EINVAL, -EALREADY,
 * -EAGAIN (no thread). */
KART_API int kart_manager_server_start(kart_manager_server *s);
/* Stops serving: no more connections are accepted, every client
 * connection is closed, blocked calls return. Idempotent. -EINVAL (NULL). */
KART_API int kart_manager_server_shutdown(kart_manager_server *s);
/* 1 once the server has been told to stop (by the owner or a client). */
KART_API int kart_manager_server_stopped(const kart_manager_server *s);
/* The number of live shared objects (Python's number_of_objects), or
 * -EINVAL. */
KART_API int kart_manager_server_objects(kart_manager_server *s);
/*
 * User-registered types (Python's BaseManager.register(typeid, callable,
 * exposed=..., method_to_typeid=...)). A type is a constructor and named
 * methods, C callbacks that run in the server: values in and out are
 * kart_obj trees (bytes are a KART_OBJ_BYTES). The methods of one object
 * run one at a time (under the object's mutex); different objects' run in
 * parallel, each in its client's server thread.
 *
 * create(arg, args, kwds, &self, &err) makes the object's state (args a
 * tuple, kwds a dict, both borrowed): 0, or KART_EREMOTE with an exception
 * object in *err (kart_obj_error: sent to the client as Python's '#ERROR'
 * would be), or another negative code (the client gets a RuntimeError).
 * destroy(arg, self), which may be NULL, frees it when the last reference
 * goes.
 *
 * A method fn(self, args, kwds, &result) returns 0 with *result the value
 * (NULL: None), KART_EREMOTE with an exception object, or another negative
 * code (a RuntimeError for the client). A method whose returns is a typeid
 * (a built-in one, this type's own or one registered before) gives in
 * *result the args tuple (NULL: ()) of that type's constructor: the server
 * makes a new shared object of that type and the client gets a proxy to it
 * (Python's '#PROXY'; from C: kart_proxy_call_proxy).
 */
typedef struct kart_manager_method {
    const char *name;
    int (*fn)(void *self, const kart_obj *args, const kart_obj *kwds, kart_obj **result);
    const char *returns; /* NULL: a value; else the typeid of the new object */
} kart_manager_method;

typedef struct kart_manager_type {
    const char *typeid;
    int (*create)(void *arg, const kart_obj *args, const kart_obj *kwds, void **self,
                  kart_obj **err);
    void (*destroy)(void *arg, void *self); /* may be NULL */
    const kart_manager_method *methods;
    size_t nmethods;
    /* the methods clients may call (NULL-terminated); NULL: every method */
    const char *const *exposed;
    void *arg; /* passed to create and destroy */
} kart_manager_type;

/* Registers a type with server s before it serves (everything in t is
 * copied but arg). Errors: -EINVAL (NULL s or t, an empty or 64-byte name,
 * no create, a method without fn, two methods of one name, an exposed name
 * that is no method), -ENOENT (a returns typeid not known), -EEXIST (the
 * typeid is taken, built-in ones included), -EBUSY (s is serving or
 * started), -ENOMEM. */
KART_API int kart_manager_server_register(kart_manager_server *s, const kart_manager_type *t);

/* Shuts down, waits for the thread of kart_manager_server_start, frees
 * everything. NULL ok. A server run by kart_manager_server_serve in a
 * thread of the caller's is freed only after that call returned. */
KART_API void kart_manager_server_free(kart_manager_server *s);

/*
 * Python's Manager(): forks a child that serves on address (a NULL address
 * means a fresh abstract unix address) until a client shuts it down or its
 * owner dies (PR_SET_PDEATHSIG: the child gets SIGKILL when the thread
 * that called kart_manager_fork exits, or its process). Writes the address into addr (size bytes) and
 * the child's pid into *pid. Reap the child with waitpid.
 * Errors: -EINVAL (NULL addr or pid, size 0), -ENOSPC, -ENOMEM, -EAGAIN
 * (fork failed), and the server's creation errors (from the child).
 */
KART_API int kart_manager_fork(const char *address, const kart_manager_options *opts, char *addr,
                               size_t size, pid_t *pid);

/* ---- client ---- */

/*
 * Connects to a manager at address with the options' authkey (Python's
 * BaseManager.connect: the "dummy" request checks the server). A server
 * that refuses kart's extensions (python3's own SyncManager server) is
 * used as Python's proxies use it: references are taken and dropped by
 * incref/decref requests on connections of their own, so they outlive a
 * client that is killed (as a Python client's do). The handle
 * may be used from many threads: each thread gets its own connection, as
 * Python's proxies do. After fork, the child opens its own connections.
 * Errors: -EINVAL, -ENOMEM, KART_EBADREPLY, and kart_conn_connect's errors.
 */
KART_API int kart_manager_connect(kart_manager **out, const char *address,
                                  const kart_manager_options *opts);
/* Asks the server to stop (Python's manager.shutdown for a server started
 * elsewhere). Errors: -EINVAL, connection errors, KART_EBADREPLY. */
KART_API int kart_manager_shutdown(kart_manager *m);
/* The server's object count. Errors as kart_manager_shutdown. */
KART_API int kart_manager_objects(kart_manager *m);
/* Closes every connection of the handle (the server releases the
 * references they held); proxies made from it must be freed first.
 * NULL ok. */
KART_API void kart_manager_free(kart_manager *m);

/*
 * Creates a shared object of typeid with the constructor's args (a tuple,
 * NULL for none) and kwds (a dict, NULL for none); the proxy holds one
 * reference to it. Errors: -EINVAL, -ENOMEM, KART_EREMOTE (the server
 * refused: unknown typeid, bad arguments; *err gets the exception when err
 * is not NULL), KART_EBADREPLY, connection errors.
 */
KART_API int kart_manager_create(kart_manager *m, const char *typeid, const kart_obj *args,
                                 const kart_obj *kwds, kart_proxy **out, kart_obj **err);
/* Typed creators (SyncManager's typeids). */
KART_API int kart_manager_dict(kart_manager *m, kart_proxy **out);
KART_API int kart_manager_list(kart_manager *m, kart_proxy **out);
KART_API int kart_manager_namespace(kart_manager *m, kart_proxy **out);
/* Value(typecode, value): typecode as Python's ("i", "d", ...). */
KART_API int kart_manager_value(kart_manager *m, const char *typecode, const kart_obj *value,
                                kart_proxy **out);
KART_API int kart_manager_event(kart_manager *m, kart_proxy **out);
KART_API int kart_manager_lock(kart_manager *m, kart_proxy **out);
KART_API int kart_manager_rlock(kart_manager *m, kart_proxy **out);
/* Queue(maxsize): 0 means unbounded. */
KART_API int kart_manager_queue(kart_manager *m, size_t maxsize, kart_proxy **out);
/* Semaphore(value), or BoundedSemaphore(value) when bounded. -EINVAL: value
 * over INT64_MAX. */
KART_API int kart_manager_semaphore(kart_manager *m, size_t value, bool bounded, kart_proxy **out);
/* Condition() (with its own RLock). */
KART_API int kart_manager_condition(kart_manager *m, kart_proxy **out);
/* Barrier(parties). -EINVAL: parties 0. */
KART_API int kart_manager_barrier(kart_manager *m, size_t parties, kart_proxy **out);
/* Array(typecode, items): items a list or tuple of values the typecode
 * takes (array.array's rules; "L"/"Q" up to 2**63-1). -EINVAL: NULL
 * typecode or items; KART_EREMOTE: a bad typecode or item. */
KART_API int kart_manager_array(kart_manager *m, const char *typecode, const kart_obj *items,
                                kart_proxy **out);

/*
 * Calls method on the referent with args (tuple or NULL) and kwds (dict or
 * NULL). On success *result gets the returned value (the caller frees it).
 * On KART_EREMOTE *result gets the exception object (or the traceback text
 * as a str). Errors: -EINVAL (NULL p, method or result; args not a tuple,
 * kwds not a dict), -ENOMEM, KART_EREMOTE, KART_EBADREPLY, -EMSGSIZE (the
 * request is over max_message), -ENOTSUP (the method returns a new shared
 * object: call it with kart_proxy_call_proxy; the reference made for it is
 * released), connection errors (-ECONNRESET, KART_EEOF, ...).
 */
KART_API int kart_proxy_call(kart_proxy *p, const char *method, const kart_obj *args,
                             const kart_obj *kwds, kart_obj **result);
/*
 * Calls a method that returns a new shared object (Python's '#PROXY':
 * dict's __iter__, a registered method with returns): *out gets a proxy to
 * it (holding its own reference). A method that returns a plain value
 * instead is -ENOMSG (the value is dropped). On KART_EREMOTE *err gets the
 * exception (when err is not NULL). Errors: kart_proxy_call's, -ENOMSG.
 */
KART_API int kart_proxy_call_proxy(kart_proxy *p, const char *method, const kart_obj *args,
                                   const kart_obj *kwds, kart_proxy **out, kart_obj **err);
/* The referent's typeid and ident (server-side id); NULL for NULL p. */
KART_API const char *kart_proxy_typeid(const kart_proxy *p);
KART_API const char *kart_proxy_ident(const kart_proxy *p);
/* A second proxy to p's referent (a new reference). Errors: -EINVAL,
 * -ENOMEM, connection errors, KART_EREMOTE (the object is gone). */
KART_API int kart_proxy_dup(kart_proxy *p, kart_proxy **out);
/* A proxy to an object by its ident (from any process's proxy, Python's
 * Token.id), taking a new reference. Errors as kart_proxy_dup. */
KART_API int kart_manager_attach(kart_manager *m, const char *typeid, const char *ident,
                                 kart_proxy **out);
/* Releases the proxy's reference and frees it. NULL ok. */
KART_API void kart_proxy_free(kart_proxy *p);

/*
 * The same-host fast path. A dict, Queue, JoinableQueue, Namespace or
 * Value proxy of a kart server reached over a unix socket, by a process of
 * the server's user, works on the object in shared memory: the typed calls
 * kart_mdict_get, _set, _del, _contains, _len, _copy, kart_mqueue_put,
 * _get, _qsize, kart_mns_get, _set, _del and kart_mvalue_get, _set then
 * cost no round trip (the segment is mapped on the proxy's first
 * typed call; the object lives on in the server, where Python's and
 * remote clients keep using it through the protocol at the same time).
 * kart_proxy_call by name always takes the protocol. The results are the
 * protocol's, with one more error: -ENOSPC when the object's segment
 * (kart_manager_options.shm_size) is full; a blocked queue call whose
 * server dies returns -ECONNRESET. Not for TCP addresses, python3's
 * server, or when either side's options say no_shm.
 *
 * kart_proxy_shared: 1 if p uses the fast path (attaching now if it has
 * not tried yet), 0 if it uses the protocol. Errors: -EINVAL (NULL).
 */
KART_API int kart_proxy_shared(kart_proxy *p);
/*
 * use false: p takes the protocol from now on (its mapping goes); true:
 * p may try the fast path again. Not while other threads use p.
 * Errors: -EINVAL (NULL), -EBUSY (another thread is attaching p).
 */
KART_API int kart_proxy_set_shared(kart_proxy *p, bool use);

/*
 * Typed calls. Values are passed as borrowed kart_obj; returned ones
 * belong to the caller. Each returns 0 or a negative code; besides the
 * ones listed, every call can return kart_proxy_call's errors (a remote
 * exception not listed comes back as KART_EREMOTE and is dropped).
 */
/* dict: -ENOENT for a missing key (KeyError); -EINVAL for an unhashable
 * key (TypeError) */
KART_API int kart_mdict_get(kart_proxy *d, const kart_obj *key, kart_obj **value);
KART_API int kart_mdict_set(kart_proxy *d, const kart_obj *key, const kart_obj *value);
KART_API int kart_mdict_del(kart_proxy *d, const kart_obj *key);
KART_API int kart_mdict_contains(kart_proxy *d, const kart_obj *key); /* 1 or 0 */
KART_API int kart_mdict_len(kart_proxy *d, size_t *len);
/* the whole dict, as a dict value ('#GETVALUE' / copy) */
KART_API int kart_mdict_copy(kart_proxy *d, kart_obj **value);
/* list: -ERANGE for an index out of range (IndexError); negative indices
 * count from the end */
KART_API int kart_mlist_append(kart_proxy *l, const kart_obj *item);
KART_API int kart_mlist_get(kart_proxy *l, int64_t index, kart_obj **item);
KART_API int kart_mlist_set(kart_proxy *l, int64_t index, const kart_obj *item);
KART_API int kart_mlist_pop(kart_proxy *l, int64_t index, kart_obj **item);
KART_API int kart_mlist_len(kart_proxy *l, size_t *len);
/* Namespace: -ENOENT for a missing name (AttributeError) */
KART_API int kart_mns_get(kart_proxy *ns, const char *name, kart_obj **value);
KART_API int kart_mns_set(kart_proxy *ns, const char *name, const kart_obj *value);
KART_API int kart_mns_del(kart_proxy *ns, const char *name);
/* Value */
KART_API int kart_mvalue_get(kart_proxy *v, kart_obj **value);
KART_API int kart_mvalue_set(kart_proxy *v, const kart_obj *value);
/* Event: wait returns 1 if set, -ETIMEDOUT if not within timeout_ns
 * (negative: forever) */
KART_API int kart_mevent_set(kart_proxy *e);
KART_API int kart_mevent_clear(kart_proxy *e);
KART_API int kart_mevent_is_set(kart_proxy *e); /* 1 or 0 */
KART_API int kart_mevent_wait(kart_proxy *e, int64_t timeout_ns);
/* Lock, RLock, Semaphore, BoundedSemaphore and Condition: acquire returns 0, or -ETIMEDOUT (timeout 0: a try);
 * -EOWNERDEAD: acquired, and the previous holder's connection ended
 * while it held the Lock, RLock or Condition (the server released it; the
 * state it guarded may need repair). Python clients get True then.
 * release returns -EPERM where Python raises RuntimeError (not held) */
KART_API int kart_mlock_acquire(kart_proxy *l, int64_t timeout_ns);
KART_API int kart_mlock_release(kart_proxy *l);
/* Condition: wait returns 0 when notified, -ETIMEDOUT; -EPERM when the
 * calling thread does not hold it; -EOWNERDEAD when, taking the lock back
 * (it always does, notified or timed out), it found that the last holder's
 * connection had ended while holding it (the server released it; the state
 * it guarded may need repair; Python clients get their bool). notify wakes
 * up to n waiters (-EPERM as wait). */
KART_API int kart_mcond_wait(kart_proxy *c, int64_t timeout_ns);
KART_API int kart_mcond_notify(kart_proxy *c, size_t n);
KART_API int kart_mcond_notify_all(kart_proxy *c);
/* Barrier: wait returns the arrival index (0 .. parties-1); KART_EBROKEN
 * when the barrier is or becomes broken (abort, or a waiter's timeout:
 * the one that timed out gets KART_EBROKEN too, as Python's). */
KART_API int kart_mbarrier_wait(kart_proxy *b, int64_t timeout_ns);
KART_API int kart_mbarrier_abort(kart_proxy *b);
KART_API int kart_mbarrier_reset(kart_proxy *b);
/* Queue: put returns -ETIMEDOUT when full past timeout_ns (queue.Full), get
 * -ETIMEDOUT when empty past it (queue.Empty); timeout 0 is put_nowait /
 * get_nowait, negative waits forever */
KART_API int kart_mqueue_put(kart_proxy *q, const kart_obj *item, int64_t timeout_ns);
KART_API int kart_mqueue_get(kart_proxy *q, int64_t timeout_ns, kart_obj **item);
KART_API int kart_mqueue_qsize(kart_proxy *q, size_t *n);

/* ---- pipelined calls (batches) ----
 *
 * A batch queues method calls on proxies of one manager handle and sends
 * them on the calling thread's connection without waiting for each reply
 * (the server answers a connection's requests in order, Python's as
 * kart's), then reads every reply: one round trip, not one per call.
 * Requests are pickled when added. At most 64 KiB of requests are in
 * flight at once (the rest are sent as replies come back), so that
 * neither side blocks writing while the other does. A batch is used by one
 * thread at a time; it may be reset and reused.
 */
typedef struct kart_mbatch kart_mbatch;

/* An empty batch. Errors: -EINVAL (NULL out), -ENOMEM. */
KART_API int kart_mbatch_create(kart_mbatch **out);
/*
 * Queues p.method(*args, **kwds) (args a tuple or NULL, kwds a dict or
 * NULL; both borrowed). Errors, after which the batch is as before:
 * -EINVAL (NULL b, p or method; args not a tuple, kwds not a dict; p of
 * another manager handle than the calls already queued; the batch has run
 * and was not reset), -ENOMEM, -EMSGSIZE (the request is over the
 * handle's max_message).
 */
KART_API int kart_mbatch_add(kart_mbatch *b, kart_proxy *p, const char *method,
                             const kart_obj *args, const kart_obj *kwds);
/* The number of calls queued. 0 for NULL. */
KART_API size_t kart_mbatch_size(const kart_mbatch *b);
/*
 * Sends every queued call and reads every reply. Returns the number of
 * calls that did not return a value (0: all did; see kart_mbatch_result
 * for each), or a negative error for the batch as a whole: -EINVAL (NULL,
 * or already run), -ENOMEM, the errors of opening the thread's connection
 * (-ECONNREFUSED, -ENOENT, ...), and connection errors while sending or
 * receiving (-EPIPE, -ECONNRESET, KART_EEOF, KART_EBADREPLY for a frame
 * that is not a reply...): the calls answered before keep their results,
 * the others get that error as their status, and the connection is
 * dropped (the next call opens a new one). An empty batch returns 0.
 */
KART_API int kart_mbatch_run(kart_mbatch *b);
/*
 * Call i's outcome, after kart_mbatch_run: 0 with *result the returned
 * value; KART_EREMOTE with *result the exception object (or traceback
 * text); -ENOTSUP where the method returned a proxy (released, as
 * kart_proxy_call does); the batch's error for a call not answered. The
 * result is handed over once (the caller frees it; a second call gives
 * NULL); result may be NULL to look at the status only. Errors: -EINVAL
 * (NULL b, i out of range, the batch has not run).
 */
KART_API int kart_mbatch_result(kart_mbatch *b, size_t i, kart_obj **result);
/* Empties the batch (frees results not taken) for reuse. NULL ok. */
KART_API void kart_mbatch_reset(kart_mbatch *b);
/* Frees the batch and what it holds. NULL ok. */
KART_API void kart_mbatch_free(kart_mbatch *b);

#ifdef __cplusplus
}
#endif
#endif

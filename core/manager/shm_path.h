/*
 * core/manager/shm_path.h — the same-host fast path of manager proxies:
 * the operations on a dict or Queue that lives in a shared segment
 * (shm_dict.c, shm_queue.c), used alike by kart clients that mapped it and
 * by the server serving the protocol on it (shm_server.c); the attach
 * handshake (shm_server.c, shm_client.c). Private to core/manager.
 */
#ifndef KART_MGR_SHM_PATH_H
#define KART_MGR_SHM_PATH_H

#include "shm_seg.h"

/* ---- dict (every call takes the segment's lock) ----
 * Errors besides those listed: -EINVAL (an unhashable key, a value that
 * does not pickle), -ENOMEM, KART_EBADREPLY (a blob that does not unpickle). */
enum { MSHMD_KEYS, MSHMD_VALUES, MSHMD_ITEMS, MSHMD_DICT };
/* -ENOENT: no such key. value NULL: only look. */
int mgr__shmd_get(mshm *s, const kart_obj *key, kart_obj **value);
/* Sets key (the first key is kept, the value replaced); only_new: Python's
 * setdefault, *current gets the present value (NULL if key was new).
 * -ENOSPC: the segment is full (nothing changed). */
int mgr__shmd_set(mshm *s, const kart_obj *key, const kart_obj *value, bool only_new,
                  kart_obj **current);
/* Removes key (its value into *value unless NULL). -ENOENT. */
int mgr__shmd_pop(mshm *s, const kart_obj *key, kart_obj **value);
/* The last entry. -ENOENT: empty. */
int mgr__shmd_popitem(mshm *s, kart_obj **key, kart_obj **value);
int mgr__shmd_clear(mshm *s);
int mgr__shmd_len(mshm *s, size_t *len);
/* keys / values / (key, value) tuples as a list, or a dict copy. */
int mgr__shmd_list(mshm *s, int what, kart_obj **out);

/* ---- Queue ----
 * block false: -ETIMEDOUT at once when full / empty; else waits until
 * deadline (absolute, KART__NO_DEADLINE: forever). srv: the server's
 * (its shutdown ends the wait, -ECANCELED), NULL in a client (a dead
 * server or object ends it: -ECONNRESET). -ENOSPC: the segment is full. */
int mgr__shmq_put(mshm *s, const kart_obj *item, bool block, int64_t deadline,
                  const kart_manager_server *srv);
int mgr__shmq_get(mshm *s, bool block, int64_t deadline, const kart_manager_server *srv,
                  kart_obj **item);
/* qsize; *full: maxsize reached (may be NULL). */
int mgr__shmq_size(mshm *s, size_t *n, bool *full);
/* -EINVAL: called more times than items were put (Python's ValueError). */
int mgr__shmq_task_done(mshm *s);
int mgr__shmq_join(mshm *s, const kart_manager_server *srv);
/* A fresh queue segment's settings (the server, at promotion). */
void mgr__shmq_setup(mshm *s, int64_t maxsize, uint64_t unfinished);

/* ---- the server (shm_server.c) ---- */

/* The protocol on a promoted object (the mtype call's contract). */
int mgr__shm_call(mobj *o, mcx *cx, const char *m, const kart_obj *args, const kart_obj *kwds,
                  kart_obj **result, mobj **newobj);
int mgr__shm_repr(mobj *o, char *buf, size_t cap);
int mgr__shm_getvalue(mobj *o, kart_obj **out);
/* The object dies: its segment is closed (waiters woken) and unmapped
 * here (clients keep their mappings until they free their proxies). */
void mgr__shm_obj_free(mobj *o);
/* A connection's first frame: is it the kart-only attach request? */
bool mgr__shm_is_attach(const void *buf, size_t len);
/* Serves it: 0 (the connection then ends) or a send error. */
int mgr__shm_serve_attach(mcx *cx, const void *buf, size_t len);

/* types.c lends its queue to the promotion (o->mu held): push each item
 * in order, then empties the plain queue. */
int mgr__queue_export(mobj *o, int (*push)(void *arg, const kart_obj *item), void *arg,
                      int64_t *maxsize, uint64_t *unfinished);
/* server.c lends its object table, options and serving state. */
mobj *mgr__obj_hold(kart_manager_server *s, const char *ident);
void mgr__obj_release(mobj *o);
const kart_manager_options *mgr__server_options(const kart_manager_server *s);

/* ---- the client (shm_client.c) ---- */

/* A proxy's fast-path state (embedded in kart_proxy). */
typedef struct mshm_slot {
    _Atomic int state; /* MSLOT_* */
    mshm *s;
} mshm_slot;
enum { MSLOT_UNTRIED = 0, MSLOT_TRYING, MSLOT_MAPPED, MSLOT_REFUSED };

/* The segment to use for p, attaching on first use; NULL: the protocol. */
mshm *mgr__proxy_fast(kart_proxy *p);
/* Unmaps (proxy free, or the caller refused the fast path). */
void mgr__proxy_fast_drop(kart_proxy *p, int new_state);

#endif

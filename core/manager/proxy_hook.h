/*
 * core/manager/proxy_hook.h — what proxy.c lends proxy_batch.c (the
 * pipelined calls): the calling thread's connection of a manager handle,
 * a proxy's manager and ident, and the handle's limits. Private.
 */
#ifndef KART_MGR_PROXY_HOOK_H
#define KART_MGR_PROXY_HOOK_H

#include <kart/conn.h>
#include <kart/manager.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The proxy's handle and ident (borrowed). */
kart_manager *mgr__proxy_manager(const kart_proxy *p);
const char *mgr__proxy_ident_of(const kart_proxy *p);
/* A proxy used in a forked child takes the child's own reference first
 * (as kart_proxy_call does); 0 or the session call's error. */
int mgr__proxy_adopt(kart_proxy *p);
/* The calling thread's method-call connection, opened on first use;
 * 0 or open errors. */
int mgr__thread_conn(kart_manager *m, kart_conn **out);
/* Drops the calling thread's connection (it broke): the next call opens
 * a new one. */
void mgr__thread_conn_drop(kart_manager *m);
/* The handle's pickle protocol and largest message. */
void mgr__manager_limits(const kart_manager *m, int *protocol, size_t *max_message);

/* The fast path's state in p (shm_client.c). */
struct mshm_slot *mgr__proxy_slot(kart_proxy *p);
/* The handle's address, options and whether its server is python3's. */
const char *mgr__manager_address(const kart_manager *m, const kart_manager_options **opts,
                                 bool *python);

/* getpid(), cached per process (proxy_pid.c); proxy.c's fork checks use
 * it through a #define. */
pid_t mgr__getpid(void);

#endif

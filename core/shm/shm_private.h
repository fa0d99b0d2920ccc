/*
 * core/shm_private.h — what the shared-memory files share inside the
 * library: the tracker's client side (core/shm_tracker.c).
 */
#ifndef KART_SHM_PRIVATE_H
#define KART_SHM_PRIVATE_H

#include <kart/shm.h>

/* Starts this process's tracker unless one is running (or inherited).
 * Errors: -EAGAIN / -ENOMEM (fork), -EMFILE / -ENFILE (socketpair). */
int kart__shm_tracker_ensure(void);

/* Sends 'R' (register) or 'U' (unregister) with a valid name to the
 * tracker. Errors: -ESRCH (no tracker here), -EPIPE (it is gone). */
int kart__shm_tracker_send(char op, const char *name);

#endif

/*
 * core/sync/robust_mutex.h — the robust mutex kart_lock's KART_SYNC_ROBUST
 * and the queue's locks stand on (core/sync/lock.c).
 */
#ifndef KART_ROBUST_MUTEX_H
#define KART_ROBUST_MUTEX_H

#include <pthread.h>
#include <stdbool.h>

/* Initializes a robust, error-checking pthread mutex (process-shared when
 * shared). 0 or -errno. */
int kart__robust_mutex_init(pthread_mutex_t *m, bool shared);

#endif

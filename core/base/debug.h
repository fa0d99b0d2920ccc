/*
 * core/base/debug.h — how the library writes to the runtime's log
 * (kart/log.h): what it noticed and worked around (a backend skipped, a
 * NUMA call refused, a worker replaced). core/base/log.c.
 */
#ifndef KART_DEBUG_H
#define KART_DEBUG_H

#include <kart/log.h>

/* A line in the runtime's log under module ("loop", "uring", "numa"...):
 * dropped at once unless a handler takes that level (kart/log.h). */
void kart__log(kart_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

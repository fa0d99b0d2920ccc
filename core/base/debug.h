/*
 * core/base/debug.h — the runtime's debug hook: what kart noticed and
 * worked around (a backend skipped, a NUMA call refused), told on stderr
 * when the KART_DEBUG environment variable is set, and otherwise nowhere.
 */
#ifndef KART_DEBUG_H
#define KART_DEBUG_H

/* A line on stderr, prefixed "kart: ", printed only when KART_DEBUG is set
 * (and not "0"). core/base/clock.c. */
void kart__debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

/*
 * core/thread/thread_hooks.h — what core/thread/thread.c asks of
 * core/thread/thread_hooks.c: the excepthook and the start/end hook, and
 * the process-wide default stack size.
 */
#ifndef KART_THREAD_HOOKS_H
#define KART_THREAD_HOOKS_H

#include <kart/thread.h>

/* Calls the excepthook (the user's, or the default that prints to
 * stderr) for a thread whose function returned result != 0. */
void kart__thread_report_failure(const kart_thread_info *info, int result);

/* Calls the start/end hook, if one is set, for t on t's own thread. */
void kart__thread_run_hook(kart_thread *t, kart_thread_event event);

/* The default stack size of new threads: 0 for the C library's. */
size_t kart__thread_default_stack(void);

#endif

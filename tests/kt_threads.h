/*
 * tests/kt_threads.h — the kernel's view of this process's threads
 * (/proc/self/task), for the suites that check thread names (kart_thread's
 * names, io_uring's SQPOLL threads). Linked into each suite that uses it
 * (the Makefile's tidy block).
 */
#ifndef KART_TESTS_KT_THREADS_H
#define KART_TESTS_KT_THREADS_H

#include <stddef.h>
#include <sys/types.h>

/* The kernel's name (comm) of thread tid of this process, without the
 * newline; "" when it cannot be read (the thread is gone). */
void kt_thread_comm(pid_t tid, char *buf, size_t size);

/* How many threads of this process have a name that starts with prefix
 * (io_uring's SQPOLL threads: "iou-sqp-"). */
int kt_threads_named(const char *prefix);

#endif

/*
 * tests/io_backends.h — the backends the completion-I/O suites run on:
 * every backend kart has here, plus io_uring with its native operations
 * turned off (the emulation over its polls), shared by check_io,
 * check_io_close, check_io_send and check_io_deadline, with the loop helpers
 * those suites share.
 */
#ifndef KART_TESTS_IO_BACKENDS_H
#define KART_TESTS_IO_BACKENDS_H

#include "kt_loop.h"
#include "testutil.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static int nb_io(void)
{
    return kt_nbackends() + 1;
}

/* Backend i, or for the extra index io_uring with emulated operations;
 * NULL when there is no io_uring here. */
static const char *io_backend(int i)
{
    if (i < kt_nbackends())
        return kt_use_backend(i);
    for (int k = 0; k < kt_nbackends(); k++)
        if (strcmp(kt_backend(k), "uring") == 0) {
            setenv("KART_URING_NATIVE_IO", "0", 1);
            return kt_use_backend(k);
        }
    return NULL;
}

/* A loop on backend (uring_entries 0: the default size), checked to be
 * that backend. */
__attribute__((unused)) static kart_loop *io_open_loop(const char *backend, unsigned entries)
{
    kart_loop *loop = NULL;
    kart_loop_options o = {.selector.uring_entries = entries};
    ck_assert_int_eq(kart_loop_create(&loop, &o), 0);
    ck_assert_str_eq(kart_loop_backend_name(loop), backend);
    return loop;
}

/* Declares backend and loop for backend index i, or skips the test
 * visibly where that backend cannot start here. */
#define IO_LOOP_OR_SKIP(i, entries)                                                                \
    const char *backend = io_backend(i);                                                           \
    if (!backend)                                                                                  \
        KART_SKIP("backend %d (uring without native io past the last) cannot start here", i);      \
    kart_loop *loop = io_open_loop(backend, entries)

/* Frees a loop that must have nothing left active. */
__attribute__((unused)) static void io_close_loop(kart_loop *loop)
{
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    kart_loop_free(loop);
}

/* A heartbeat timer's callback: the timer only keeps KART_RUN_ONCE from
 * blocking for good. */
__attribute__((unused)) static void hb_cb(kart_timer *t)
{
    (void)t;
}

/* Runs the loop until *flag reaches want, failing after limit_ms; returns
 * the loop turns it took. */
__attribute__((unused)) static long io_run_until(kart_loop *loop, const atomic_int *flag, int want,
                                                 int limit_ms)
{
    return kt_run_until_atomic(loop, flag, want, 5, limit_ms);
}

#endif

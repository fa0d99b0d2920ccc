/*
 * tests/kt_loop.h — running a loop until a callback has counted enough,
 * for the loop and I/O suites. Linked into each suite that uses it (the
 * Makefile's tidy block).
 */
#ifndef KART_TESTS_KT_LOOP_H
#define KART_TESTS_KT_LOOP_H

#include <kart/loop.h>
#include <stdatomic.h>

/* Runs loop with KART_RUN_ONCE until *flag reaches want, failing the test
 * ("timed out: n of want") after limit_ms; a heartbeat timer every hb_ms
 * keeps a turn from blocking for good. Returns the turns it took. */
long kt_run_until(kart_loop *loop, const int *flag, int want, int hb_ms, int limit_ms);

/* The same for a counter that other threads update. */
long kt_run_until_atomic(kart_loop *loop, const atomic_int *flag, int want, int hb_ms,
                         int limit_ms);

#endif

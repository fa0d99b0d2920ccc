/*
 * bench/scenarios.h — every kart-bench scenario, one line each, in the order
 * kart-bench runs them. harness.h declares them from this list and main.c
 * builds its table from it, so adding a scenario is one line here (and its
 * file). Kept one entry per line so parallel branches merge cleanly
 * (.gitattributes: merge=union).
 */
BENCH_SCENARIO(pingpong)
BENCH_SCENARIO(pingpong_async)
BENCH_SCENARIO(timers)
BENCH_SCENARIO(locks)
BENCH_SCENARIO(cond)
BENCH_SCENARIO(sem)
BENCH_SCENARIO(mmap)
BENCH_SCENARIO(spawn)
BENCH_SCENARIO(queue)
BENCH_SCENARIO(conn)
BENCH_SCENARIO(echo)
BENCH_SCENARIO(echo_hold)
BENCH_SCENARIO(http)
BENCH_SCENARIO(pool)
BENCH_SCENARIO(line)
BENCH_SCENARIO(line_history)
BENCH_SCENARIO(line_sessions)
BENCH_SCENARIO(manager)
BENCH_SCENARIO(hostile)
BENCH_SCENARIO(pool_mpi)
BENCH_SCENARIO(sendq)
BENCH_SCENARIO(loop_future)

/*
 * kart/log.h — the runtime's log: multiprocessing's get_logger() and
 * log_to_stderr() for C.
 *
 * One process-wide log. kart writes to it what it notices and works around
 * instead of printing or swallowing it: a backend skipped and why, a pool
 * worker that died and was replaced, a tracked shared segment cleaned up, a
 * NUMA policy refused, accepts dropped at the descriptor limit, completion
 * queue overflows. A program may log to it too (kart_log()).
 *
 * Silent by default: nothing is formatted or written until a handler is set
 * (kart_log_set_handler) or kart_log_to_stderr() is called — except that
 * the environment variable KART_DEBUG, set and not "0" when the first line
 * is logged, means kart_log_to_stderr(KART_LOG_DEBUG).
 *
 * Levels are Python's logging numbers. A line below the log's level is
 * dropped before it is formatted, so a disabled level costs one atomic
 * load.
 *
 * Threads, fork, signals: every function is thread-safe. Logging takes no
 * lock (the handler is read with a sequence counter), so a child forked
 * while another thread logs or sets the handler logs normally. The handler
 * runs on the thread that logs, possibly on several threads at once; it
 * must be thread-safe itself. A line is formatted into a buffer on the
 * stack (no allocation); kart never logs from a signal handler.
 */
#ifndef KART_LOG_H
#define KART_LOG_H

#include <kart/common.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum kart_log_level {
    KART_LOG_DEBUG = 10,
    KART_LOG_INFO = 20,
    KART_LOG_WARNING = 30,
    KART_LOG_ERROR = 40,
    KART_LOG_CRITICAL = 50,
} kart_log_level;

/* A line's longest message, in bytes: a longer one is cut at this length
 * (on a UTF-8 character boundary) and ends with "...", and its record says
 * truncated. */
#define KART_LOG_MESSAGE_MAX 1024

/* One logged line, valid only during the handler's call. */
typedef struct kart_log_record {
    kart_log_level level;
    const char *module;  /* "loop", "io", "pool", "shm", "numa", ... or the
                          * program's own for kart_log() */
    const char *message; /* NUL-terminated, no trailing newline */
    size_t len;          /* strlen(message) */
    int truncated;       /* 1 if the message was cut at KART_LOG_MESSAGE_MAX */
    int64_t time_ns;     /* CLOCK_REALTIME, nanoseconds since the epoch */
    pid_t pid;
    pid_t tid;
} kart_log_record;

typedef void (*kart_log_handler)(const kart_log_record *record, void *arg);

/* Sets the handler, its argument and the log's level (lines below it are
 * dropped). fn NULL makes the log silent again. The previous handler and
 * argument go to *old_fn and *old_arg when those are not NULL. A line being
 * logged on another thread while the handler changes may still reach the
 * previous one: do not free what old_arg points at until those threads are
 * done logging. Errors: -EINVAL (level not one of the five). */
KART_API int kart_log_set_handler(kart_log_handler fn, void *arg, kart_log_level level,
                                  kart_log_handler *old_fn, void **old_arg);

/* Changes only the level. Errors: -EINVAL (level not one of the five). */
KART_API int kart_log_set_level(kart_log_level level);

/* The level lines must reach to be handled; with no handler, what a line
 * would need once one is set. */
KART_API kart_log_level kart_log_get_level(void);

/* 1 if a line at this level would reach a handler now, 0 otherwise. */
KART_API int kart_log_enabled(kart_log_level level);

/* Python's log_to_stderr(level): lines at level and above go to standard
 * error, one write(2) each, as "[LEVEL/process-name] message\n" (the
 * process name as kart_process_current() says it: "MainProcess", or
 * the child's name). Replaces any handler. Errors: -EINVAL (bad level). */
KART_API int kart_log_to_stderr(kart_log_level level);

/* The handler kart_log_to_stderr() sets, for a program that wants to chain
 * to it from its own handler. arg is unused. */
KART_API void kart_log_stderr_handler(const kart_log_record *record, void *arg);

/* Logs a line (printf format) under module (NULL: "app"). Returns the
 * number of lines handled: 1, or 0 when the line was dropped (below the
 * level, or no handler). -EINVAL for a bad level or a NULL fmt. */
KART_API int kart_log(kart_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"; "LEVEL<n>" is never
 * returned: NULL for a value that is not one of the five. */
KART_API const char *kart_log_level_name(kart_log_level level);

#endif

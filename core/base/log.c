/*
 * core/base/log.c — the runtime's log (kart/log.h).
 *
 * The handler, its argument and the level are read without a lock, under
 * a sequence counter (a seqlock): logging never blocks, and a child forked
 * while another thread was logging logs normally. Setters serialize among
 * themselves by taking the counter odd with a compare-and-swap; a fork
 * child clears a write that was in flight in its parent (pthread_atfork),
 * so the child never waits for a thread it does not have.
 */
#include "debug.h"
#include "futex.h"

#include <kart/log.h>
#include <kart/process.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    _Atomic uint32_t seq; /* odd while a setter writes */
    _Atomic(kart_log_handler) fn;
    _Atomic(void *) arg;
    _Atomic int level;
    _Atomic bool set_by_program; /* KART_DEBUG no longer applies */
    _Atomic bool env_read;
} cfg = {.level = KART_LOG_WARNING};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void clear_write_in_child(void)
{
    uint32_t s = atomic_load_explicit(&cfg.seq, memory_order_relaxed);
    if (s & 1)
        atomic_store_explicit(&cfg.seq, s + 1, memory_order_relaxed);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, clear_write_in_child);
}

static bool valid_level(kart_log_level level)
{
    return level == KART_LOG_DEBUG || level == KART_LOG_INFO || level == KART_LOG_WARNING ||
           level == KART_LOG_ERROR || level == KART_LOG_CRITICAL;
}

/* Writes the fields a setter changes; fn_too false leaves fn and arg. */
static void store(bool fn_too, kart_log_handler fn, void *arg, kart_log_level level,
                  kart_log_handler *old_fn, void **old_arg)
{
    pthread_once(&atfork_once, register_atfork);
    uint32_t s;
    for (;;) {
        s = atomic_load_explicit(&cfg.seq, memory_order_relaxed);
        if (!(s & 1) && atomic_compare_exchange_weak_explicit(
                            &cfg.seq, &s, s + 1, memory_order_acquire, memory_order_relaxed))
            break;
    }
    atomic_thread_fence(memory_order_release);
    if (old_fn)
        *old_fn = atomic_load_explicit(&cfg.fn, memory_order_relaxed);
    if (old_arg)
        *old_arg = atomic_load_explicit(&cfg.arg, memory_order_relaxed);
    if (fn_too) {
        atomic_store_explicit(&cfg.fn, fn, memory_order_relaxed);
        atomic_store_explicit(&cfg.arg, arg, memory_order_relaxed);
    }
    atomic_store_explicit(&cfg.level, (int)level, memory_order_relaxed);
    atomic_store_explicit(&cfg.seq, s + 2, memory_order_release);
}

/* One consistent reading of handler, argument and level. */
static void load(kart_log_handler *fn, void **arg, int *level)
{
    for (;;) {
        uint32_t s = atomic_load_explicit(&cfg.seq, memory_order_acquire);
        if (s & 1)
            continue;
        *fn = atomic_load_explicit(&cfg.fn, memory_order_relaxed);
        *arg = atomic_load_explicit(&cfg.arg, memory_order_relaxed);
        *level = atomic_load_explicit(&cfg.level, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&cfg.seq, memory_order_relaxed) == s)
            return;
    }
}

/* KART_DEBUG, read when the first line is logged, unless the program has
 * set a handler by then. */
static void read_env_once(void)
{
    if (atomic_load_explicit(&cfg.env_read, memory_order_acquire))
        return;
    bool expected = false;
    if (!atomic_compare_exchange_strong(&cfg.env_read, &expected, true))
        return;
    const char *v = getenv("KART_DEBUG");
    if (v && *v && strcmp(v, "0") != 0 && !atomic_load(&cfg.set_by_program))
        store(true, kart_log_stderr_handler, NULL, KART_LOG_DEBUG, NULL, NULL);
}

KART_API int kart_log_set_handler(kart_log_handler fn, void *arg, kart_log_level level,
                                  kart_log_handler *old_fn, void **old_arg)
{
    if (!valid_level(level))
        return -EINVAL;
    atomic_store(&cfg.set_by_program, true);
    store(true, fn, arg, level, old_fn, old_arg);
    return 0;
}

KART_API int kart_log_set_level(kart_log_level level)
{
    if (!valid_level(level))
        return -EINVAL;
    store(false, NULL, NULL, level, NULL, NULL);
    return 0;
}

KART_API kart_log_level kart_log_get_level(void)
{
    read_env_once();
    return (kart_log_level)atomic_load_explicit(&cfg.level, memory_order_relaxed);
}

KART_API int kart_log_enabled(kart_log_level level)
{
    read_env_once();
    kart_log_handler fn;
    void *arg;
    int min;
    load(&fn, &arg, &min);
    return fn && valid_level(level) && (int)level >= min;
}

KART_API int kart_log_to_stderr(kart_log_level level)
{
    return kart_log_set_handler(kart_log_stderr_handler, NULL, level, NULL, NULL);
}

KART_API const char *kart_log_level_name(kart_log_level level)
{
    switch (level) {
    case KART_LOG_DEBUG:
        return "DEBUG";
    case KART_LOG_INFO:
        return "INFO";
    case KART_LOG_WARNING:
        return "WARNING";
    case KART_LOG_ERROR:
        return "ERROR";
    case KART_LOG_CRITICAL:
        return "CRITICAL";
    }
    return NULL;
}

/* Writes all of buf, or gives up on an error other than EINTR (a log line
 * is not worth more). */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

KART_API void kart_log_stderr_handler(const kart_log_record *r, void *arg)
{
    (void)arg;
    char line[KART_LOG_MESSAGE_MAX + 256];
    const char *name = kart_log_level_name(r->level);
    kart_process_info self;
    kart_process_current(&self);
    int n = snprintf(line, sizeof(line), "[%s/%s] %s\n", name ? name : "?", self.name, r->message);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (len && line[len - 1] != '\n') /* a process name long enough to cut the line */
        line[len - 1] = '\n';
    write_all(STDERR_FILENO, line, len);
}

/* Cuts buf (holding len bytes of a message that was longer) so that it
 * ends on a UTF-8 character boundary followed by "...". */
static size_t cut(char *buf, size_t cap)
{
    size_t end = cap - 4; /* room for "..." and the NUL */
    while (end > 0 && ((unsigned char)buf[end] & 0xC0) == 0x80)
        end--;
    memcpy(buf + end, "...", 4);
    return end + 3;
}

static int vlog(kart_log_level level, const char *module, const char *fmt, va_list ap)
{
    read_env_once();
    kart_log_handler fn;
    void *arg;
    int min;
    load(&fn, &arg, &min);
    if (!fn || (int)level < min)
        return 0;
    char msg[KART_LOG_MESSAGE_MAX + 1];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        return 0;
    kart_log_record r = {.level = level, .module = module ? module : "app", .message = msg};
    if ((size_t)n >= sizeof(msg)) {
        r.len = cut(msg, sizeof(msg));
        r.truncated = 1;
    } else {
        r.len = (size_t)n;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    r.pid = getpid();
    r.tid = (pid_t)kart__tid();
    fn(&r, arg);
    return 1;
}

KART_API int kart_log(kart_log_level level, const char *module, const char *fmt, ...)
{
    if (!valid_level(level) || !fmt)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    int rc = vlog(level, module, fmt, ap);
    va_end(ap);
    return rc;
}

void kart__log(kart_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, module, fmt, ap);
    va_end(ap);
}

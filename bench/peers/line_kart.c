/*
 * bench/peers/line_kart.c — kart's side of the `line` scenarios
 * (build/bench/line-kart-peer, linked with libkart.a), run as a program of
 * its own like GNU readline's and libedit's peers, so that every editor
 * starts from a fresh process and is timed by the same code
 * (line_peer.c).
 *
 * Keys: one kart_line in fed mode (kart_line_start, kart_line_feed one key
 * at a time), terminal forced on (KART_LINE_TERMINAL_ON, TERM xterm, no
 * init file, no signals), the screen set to 80x24 (kart_line_set_size),
 * its output on /dev/null.
 *
 * History: kart_history_read, kart_history_write (write_timestamps on in
 * the case whose file has timestamps, as GNU's history_write_timestamps:
 * with it on, kart writes "#0" before an entry of unknown time, GNU writes
 * nothing), and kart_history_search from the
 * newest entry back, one past each match.
 *
 * Sessions (`sessions N KEYS`): N editors attached to one kart_loop (loop
 * mode), each on its own socketpair with terminal forced on and an 80x24
 * screen; the loop runs in a thread of its own, which creates, attaches
 * and frees the editors. The main thread is the N typists: it writes one
 * key to every session at once, waits until every session has echoed,
 * and records each key-to-echo time; KEYS keys, the last RET, after which
 * every session must have accepted the typed line. Memory per session is
 * the growth of the heap (mallinfo2: uordblks + hblkhd) and of the
 * resident set (/proc/self/statm) from before the editors were created to
 * after the line was typed, divided by N. Prints "sessions=N keys=K
 * good=G heap_per_session=B rss_per_session=B p50_ns= p99_ns= max_ns=".
 */
#include "line_peer.h"
#include <line_script.h> /* bench/, shared with kart-bench (-Ibench) */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <kart.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static kart_line *ed;

static void on_line(kart_line *e, int result, const char *line, size_t len, void *arg)
{
    (void)e;
    (void)arg;
    if (result == 0)
        line_peer_accept(line, len);
}

static kart_line_options editor_options(void)
{
    return (kart_line_options){.prompt = LINE_PROMPT,
                               .no_inputrc = true,
                               .terminal = KART_LINE_TERMINAL_ON,
                               .term = "xterm",
                               .no_signals = true};
}

static int editor_init(void)
{
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    kart_line_options o = editor_options();
    if (out < 0 || kart_line_create(&ed, -1, out, &o) != 0 ||
        kart_line_set_size(ed, LINE_COLS, LINE_ROWS) != 0 ||
        kart_line_start(ed, on_line, NULL) != 0)
        return -1;
    return 0;
}

static void feed(const char *bytes, size_t len)
{
    int err = kart_line_feed(ed, bytes, len);
    if (err) {
        fprintf(stderr, "kart_line_feed: %s\n", kart_strerror(err));
        exit(1);
    }
}

static void prefill(const char *text, size_t len)
{
    if (len && kart_line_insert_text(ed, text, len) != 0) {
        fprintf(stderr, "kart_line_insert_text failed\n");
        exit(1);
    }
}

/* ---- history ---- */

static kart_history *hist;

static int hist_read(const char *path, size_t *entries)
{
    kart_history_read_info info;
    int err = kart_history_create(&hist, NULL);
    if (err == 0)
        err = kart_history_read(hist, path, &info);
    *entries = err == 0 ? info.entries : 0;
    return err;
}

static int hist_write(const char *path, int stamps)
{
    kart_history_options o = {.write_timestamps = stamps != 0};
    kart_history_set_options(hist, &o);
    return kart_history_write(hist, path);
}

static size_t hist_count(const char *q, size_t *found_at, size_t *offset_at, size_t cap)
{
    size_t n = 0, at = SIZE_MAX, found, offset;
    while (kart_history_search(hist, at, q, strlen(q), 0, &found, &offset) == 0) {
        if (n < cap) {
            found_at[n] = found;
            offset_at[n] = offset;
        }
        n++;
        if (found == 0)
            break;
        at = found - 1;
    }
    return n;
}

/* ---- sessions ---- */

typedef struct session {
    kart_line *ed;
    int fd, peer; /* the editor's end, the typist's */
    int64_t sent; /* when the latest key was written; 0 once echoed */
    size_t good;  /* lines accepted as typed */
} session;

static session *sess;
static size_t nsess;
static const char *typed; /* the line every session types */
static size_t typed_len;
static kart_loop *loop;
static kart_async async;
static sem_t done;
static enum { PHASE_SETUP, PHASE_TEARDOWN } phase;
static int setup_err;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void session_line(kart_line *e, int result, const char *line, size_t len, void *arg)
{
    (void)e;
    session *s = arg;
    if (result == 0 && len == typed_len && memcmp(line, typed, len) == 0)
        s->good++;
}

/* On the loop's thread: create and attach every editor, or free them. */
static void on_async(kart_async *a)
{
    if (phase == PHASE_SETUP) {
        kart_line_options o = editor_options();
        for (size_t i = 0; i < nsess && !setup_err; i++) {
            session *s = &sess[i];
            setup_err = kart_line_create(&s->ed, s->fd, s->fd, &o);
            if (!setup_err)
                setup_err = kart_line_set_size(s->ed, LINE_COLS, LINE_ROWS);
            if (!setup_err)
                setup_err = kart_line_attach(s->ed, loop, session_line, s);
        }
    } else {
        for (size_t i = 0; i < nsess; i++)
            kart_line_free(sess[i].ed);
        kart_async_stop(a);
    }
    sem_post(&done);
}

static void *loop_thread(void *arg)
{
    (void)arg;
    kart_loop_run(loop, KART_RUN_DEFAULT);
    return NULL;
}

static void loop_do(int what)
{
    phase = what;
    kart_async_send(&async);
    while (sem_wait(&done) != 0 && errno == EINTR)
        ;
}

static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static size_t rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Reads what fd has; whether anything came. */
static int drain(int fd)
{
    char buf[4096];
    int got = 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        got = 1;
    return got;
}

/* epoll_wait, again after a signal: the peer runs under kart-bench, whose
 * children may be sent signals this program does not handle (EINTR is
 * not a session that failed to echo). */
static int wait_peers(int ep, struct epoll_event *evs, int n, int timeout_ms)
{
    int k;
    while ((k = epoll_wait(ep, evs, n, timeout_ms)) < 0 && errno == EINTR)
        ;
    return k;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int run_sessions(size_t n, size_t keys)
{
    if (n == 0 || keys < 2)
        return 2;
    nsess = n;
    static char line[256];
    typed_len = keys - 1 < sizeof(line) - 1 ? keys - 1 : sizeof(line) - 1;
    keys = typed_len + 1;
    for (size_t i = 0; i < typed_len; i++)
        line[i] = "kart line session "[i % 18];
    typed = line;
    /* Two descriptors per session: past the usual soft limit of 1024. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int64_t *lat = malloc(n * keys * sizeof(*lat));
    struct epoll_event *evs = malloc(n * sizeof(*evs));
    sess = calloc(n, sizeof(*sess));
    if (ep < 0 || !lat || !evs || !sess || sem_init(&done, 0, 0) != 0) {
        fprintf(stderr, "line peer: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
            fprintf(stderr, "socketpair: %s (raise the fd limit: ulimit -n)\n", strerror(errno));
            return 1;
        }
        sess[i].fd = sv[0];
        sess[i].peer = sv[1];
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev);
    }
    pthread_t th;
    int err = kart_loop_create(&loop, NULL);
    if (!err)
        err = kart_async_init(loop, &async);
    if (!err)
        err = kart_async_start(&async, on_async);
    if (err || pthread_create(&th, NULL, loop_thread, NULL) != 0) {
        fprintf(stderr, "line peer: loop: %s\n", kart_strerror(err));
        return 1;
    }
    size_t heap0 = heap_bytes(), rss0 = rss_bytes();
    loop_do(PHASE_SETUP);
    if (setup_err) {
        fprintf(stderr, "line peer: editor setup: %s\n", kart_strerror(setup_err));
        return 1;
    }
    /* Every prompt shown before the first key. */
    for (size_t shown = 0; shown < n;) {
        int k = wait_peers(ep, evs, (int)n, 5000);
        if (k <= 0) {
            fprintf(stderr, "line peer: %zu of %zu prompts shown (%s)\n", shown, n,
                    k < 0 ? strerror(errno) : "5 s without one");
            return 1;
        }
        for (int j = 0; j < k; j++)
            if (drain(sess[evs[j].data.u64].peer) && sess[evs[j].data.u64].sent == 0) {
                sess[evs[j].data.u64].sent = -1;
                shown++;
            }
    }
    size_t nlat = 0;
    for (size_t k = 0; k < keys; k++) {
        char c = k < typed_len ? typed[k] : '\r';
        for (size_t i = 0; i < n; i++) {
            sess[i].sent = now_ns();
            if (write(sess[i].peer, &c, 1) != 1) {
                fprintf(stderr, "line peer: write: %s\n", strerror(errno));
                return 1;
            }
        }
        for (size_t waiting = n; waiting > 0;) {
            int got = wait_peers(ep, evs, (int)n, 5000);
            if (got <= 0) {
                fprintf(stderr, "line peer: %zu sessions did not echo key %zu (%s)\n", waiting, k,
                        got < 0 ? strerror(errno) : "5 s without one");
                return 1;
            }
            int64_t t = now_ns();
            for (int j = 0; j < got; j++) {
                session *s = &sess[evs[j].data.u64];
                if (drain(s->peer) && s->sent > 0) {
                    lat[nlat++] = t - s->sent;
                    s->sent = 0;
                    waiting--;
                }
            }
        }
    }
    /* The RET's new prompt may still be on its way: let the loop finish. */
    usleep(20000);
    size_t heap1 = heap_bytes(), rss1 = rss_bytes();
    loop_do(PHASE_TEARDOWN);
    pthread_join(th, NULL);
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        good += sess[i].good;
        close(sess[i].fd);
        close(sess[i].peer);
    }
    kart_loop_free(loop);
    qsort(lat, nlat, sizeof(*lat), cmp_i64);
    printf("sessions=%zu keys=%zu good=%zu heap_per_session=%zu rss_per_session=%zu p50_ns=%" PRId64
           " p99_ns=%" PRId64 " max_ns=%" PRId64 "\n",
           n, keys, good, heap1 > heap0 ? (heap1 - heap0) / n : 0,
           rss1 > rss0 ? (rss1 - rss0) / n : 0, lat[nlat / 2], lat[nlat * 99 / 100], lat[nlat - 1]);
    free(lat);
    free(evs);
    free(sess);
    close(ep);
    return 0;
}

static int other(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "sessions") == 0)
        return run_sessions(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10));
    return -1;
}

int main(int argc, char **argv)
{
    line_peer p = {.editor_init = editor_init,
                   .feed = feed,
                   .prefill = prefill,
                   .hist_read = hist_read,
                   .hist_write = hist_write,
                   .hist_count = hist_count,
                   .other = other};
    return line_peer_main(&p, argc, argv);
}

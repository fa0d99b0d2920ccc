/* Description: the event loop's fd watchers (kart_watch, kart/loop.h):
 * readiness reported level- and edge-triggered or one-shot, start and init
 * errors, watchers stopped, freed, modified or whose fd is reused while a
 * batch of events is being delivered, more ready fds than one batch holds,
 * restarting with other events, hangup and RDHUP, a loop set up on one
 * thread and run on another. In every check_loop*
 * suite, each case that runs a loop runs once per compiled-in backend
 * (forced through KART_BACKEND, skipped where it cannot start), and every
 * error that the header documents has a case, except those only a failing
 * allocator or kernel produces (-ENOMEM, -ENFILE, a backend's or a write's
 * failure). */
#define KT_LOOP_HELPERS
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/select.h>

/* Capability bits of the backend KART_BACKEND names. */
static unsigned backend_caps(void)
{
    kart_selector *s;
    ck_assert_int_eq(kart_selector_create(&s, NULL), 0);
    unsigned caps = kart_selector_caps(s);
    kart_selector_free(s);
    return caps;
}

START_TEST(io_reports_readable_and_writable)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_watch io;
    ck_assert_int_eq(kart_watch_init(loop, &io, sv[0]), 0);
    io.base.data = &r;
    ck_assert_int_eq(io.fd, sv[0]);
    ck_assert_ptr_eq(io.base.loop, loop);
    ck_assert_int_eq(io.base.type, KART_HANDLE_WATCH);

    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_handle_is_active(&io.base), 1);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 0);
    kt_write(sv[1], "ping");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.events, KART_READABLE);
    ck_assert_int_eq(r.active, 1);
    /* Level-triggered: reported again while unread. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 2);

    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE | KART_WRITABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 3);
    ck_assert_uint_eq(r.events, KART_READABLE | KART_WRITABLE);
    ck_assert_int_eq(kt_drain(sv[0]), 4);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 4);
    ck_assert_uint_eq(r.events, KART_WRITABLE);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_watch_stop(&io), 0);
    ck_assert_int_eq(kart_watch_stop(&io), 0);
    ck_assert_int_eq(kart_handle_is_active(&io.base), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 4);
    close_loop(loop);
    close2(sv);
}
END_TEST

START_TEST(io_init_errors)
{
    LOOP_OR_SKIP(_i);
    kart_watch io;
    ck_assert_int_eq(kart_watch_init(NULL, &io, 0), -EINVAL);
    ck_assert_int_eq(kart_watch_init(loop, NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_watch_init(loop, &io, -1), -EBADF);
    ck_assert_int_eq(kart_watch_init(loop, &io, INT_MIN), -EBADF);
    close_loop(loop);
}
END_TEST

static void io_never_cb(kart_watch *io, uint32_t events)
{
    (void)io;
    ck_abort_msg("io callback ran (events %#x) after its start failed", events);
}

/* Asserts that a failed kart_watch_start left the watcher inactive. */
static void assert_io_start_fails(kart_watch *io, uint32_t events, kart_watch_cb cb, int err)
{
    int before = kart_loop_active_handles(io->base.loop);
    ck_assert_int_eq(kart_watch_start(io, events, cb), err);
    ck_assert_int_eq(kart_handle_is_active(&io->base), 0);
    ck_assert_int_eq(kart_loop_active_handles(io->base.loop), before);
}

START_TEST(io_start_errors)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    kt_write(sv[1], "x");
    kart_watch io, io2;
    kart_watch_init(loop, &io, sv[0]);
    ck_assert_int_eq(kart_watch_start(NULL, KART_READABLE, io_never_cb), -EINVAL);
    assert_io_start_fails(&io, KART_READABLE, NULL, -EINVAL);
    assert_io_start_fails(&io, 0, io_never_cb, -EINVAL);
    assert_io_start_fails(&io, 0x8000, io_never_cb, -EINVAL);
    assert_io_start_fails(&io, KART_HANGUP, io_never_cb, -EINVAL);
    assert_io_start_fails(&io, KART_EDGE, io_never_cb, -EINVAL);
    assert_io_start_fails(&io, KART_READABLE | KART_ONESHOT | KART_EXCLUSIVE, io_never_cb, -EINVAL);

    /* A second watcher on a watched fd. */
    rec r = {0};
    io.base.data = &r;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
    kart_watch_init(loop, &io2, sv[0]);
    assert_io_start_fails(&io2, KART_READABLE, io_never_cb, -EEXIST);
    assert_io_start_fails(&io2, KART_WRITABLE, io_never_cb, -EEXIST);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 1);
    /* Once the first stops, the fd is free. */
    ck_assert_int_eq(kart_watch_stop(&io), 0);
    rec r2 = {0};
    io2.base.data = &r2;
    ck_assert_int_eq(kart_watch_start(&io2, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r2.calls, 1);
    ck_assert_int_eq(r.calls, 1);
    kart_watch_stop(&io2);

    /* A closed fd. */
    int closed = dup(sv[0]);
    close(closed);
    ck_assert_int_eq(kart_watch_init(loop, &io, closed), 0);
    assert_io_start_fails(&io, KART_READABLE, io_never_cb, -EBADF);

    /* A regular file and a directory cannot be waited on. */
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    kart_watch_init(loop, &io, fileno(f));
    assert_io_start_fails(&io, KART_READABLE, io_never_cb, -EPERM);
    int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dir, 0);
    kart_watch_init(loop, &io, dir);
    assert_io_start_fails(&io, KART_READABLE, io_never_cb, -EPERM);
    fclose(f);
    close(dir);

    /* select(2) cannot take an fd at or above FD_SETSIZE: -ERANGE there,
     * fine everywhere else. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max > FD_SETSIZE + 10) {
        rl.rlim_cur = FD_SETSIZE + 11;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        int high = dup2(sv[0], FD_SETSIZE + 10);
        ck_assert_int_eq(high, FD_SETSIZE + 10);
        kart_watch_init(loop, &io, high);
        if (backend_caps() & KART_CAP_FDSET_LIMIT) {
            assert_io_start_fails(&io, KART_READABLE, io_never_cb, -ERANGE);
        } else {
            r.calls = 0;
            io.base.data = &r;
            ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
            ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
            ck_assert_int_eq(r.calls, 1);
            kart_watch_stop(&io);
        }
        close(high);
    }
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    close_loop(loop);
    close2(sv);
}
END_TEST

START_TEST(io_edge_triggered_or_enotsup)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_watch io;
    kart_watch_init(loop, &io, sv[0]);
    io.base.data = &r;
    if (!(backend_caps() & KART_CAP_EDGE)) {
        ck_assert(strcmp(backend, "poll") == 0 || strcmp(backend, "select") == 0);
        assert_io_start_fails(&io, KART_READABLE | KART_EDGE, io_never_cb, -ENOTSUP);
        /* Asked of an active watcher, it changes nothing. */
        ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
        ck_assert_int_eq(kart_watch_start(&io, KART_READABLE | KART_EDGE, io_never_cb), -ENOTSUP);
        ck_assert_int_eq(kart_handle_is_active(&io.base), 1);
        kt_write(sv[1], "a");
        for (int k = 1; k <= 3; k++) {
            ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
            ck_assert_int_eq(r.calls, k);
        }
    } else {
        ck_assert_int_eq(kart_watch_start(&io, KART_READABLE | KART_EDGE, io_rec_cb), 0);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
        ck_assert_int_eq(r.calls, 0);
        for (int k = 1; k <= 3; k++) {
            kt_write(sv[1], "a"); /* new readiness, left unread */
            ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
            ck_assert_int_eq(r.calls, k);
            ck_assert_uint_eq(r.events, KART_READABLE);
            for (int j = 0; j < 3; j++)
                ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
            ck_assert_int_eq(r.calls, k);
        }
        ck_assert_int_eq(kt_drain(sv[0]), 3);
    }
    kart_watch_stop(&io);
    close_loop(loop);
    close2(sv);
}
END_TEST

static void io_stop_self_cb(kart_watch *io, uint32_t events)
{
    rec *r = io->base.data;
    r->calls++;
    r->events = events;
    ck_assert_int_eq(kart_watch_stop(io), 0);
    ck_assert_int_eq(kart_watch_stop(io), 0);
    r->active = kart_handle_is_active(&io->base);
}

static int freed_self_calls;

static void io_stop_free_self_cb(kart_watch *io, uint32_t events)
{
    (void)events;
    freed_self_calls++;
    ck_assert_int_eq(kart_watch_stop(io), 0);
    free(io);
}

START_TEST(io_stop_inside_own_callback)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_watch io;
    kart_watch_init(loop, &io, sv[0]);
    io.base.data = &r;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_stop_self_cb), 0);
    kt_write(sv[1], "x");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.active, 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 1);

    /* Stopped and freed by itself: the loop never touches it again. */
    kart_watch *heap = malloc(sizeof(*heap));
    kart_watch_init(loop, heap, sv[0]);
    ck_assert_int_eq(kart_watch_start(heap, KART_READABLE | KART_WRITABLE, io_stop_free_self_cb),
                     0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(freed_self_calls, 1);
    close_loop(loop);
    close2(sv);
}
END_TEST

/* Watchers that, when the first of them runs, stop and free all the
 * others, although their fds are ready in the same batch. */
#define NPAIRS 4
static kart_watch *batch_w[NPAIRS];
static int batch_calls;

static void stop_free_others_cb(kart_watch *io, uint32_t events)
{
    (void)events;
    batch_calls++;
    for (int k = 0; k < NPAIRS; k++) {
        if (batch_w[k] && batch_w[k] != io) {
            ck_assert_int_eq(kart_watch_stop(batch_w[k]), 0);
            free(batch_w[k]);
            batch_w[k] = NULL;
        }
    }
}

START_TEST(io_watchers_stopped_and_freed_in_a_batch_never_run)
{
    LOOP_OR_SKIP(_i);
    for (int round = 0; round < 8; round++) {
        int sv[NPAIRS][2];
        for (int k = 0; k < NPAIRS; k++) {
            kt_socketpair(sv[k]);
            kt_write(sv[k][1], "x");
        }
        /* Start them in a different order each round, so that whichever
         * order the backend reports them in, each position gets its turn
         * to be first. */
        batch_calls = 0;
        for (int j = 0; j < NPAIRS; j++) {
            int k = (j + round) % NPAIRS;
            if (round & 4)
                k = NPAIRS - 1 - k;
            batch_w[k] = malloc(sizeof(kart_watch));
            ck_assert_int_eq(kart_watch_init(loop, batch_w[k], sv[k][0]), 0);
            ck_assert_int_eq(kart_watch_start(batch_w[k], KART_READABLE, stop_free_others_cb), 0);
        }
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
        ck_assert_int_eq(batch_calls, 1);
        ck_assert_int_eq(kart_loop_active_handles(loop), 1);
        for (int k = 0; k < NPAIRS; k++) {
            if (batch_w[k]) {
                kart_watch_stop(batch_w[k]);
                free(batch_w[k]);
                batch_w[k] = NULL;
            }
            close2(sv[k]);
        }
    }
    close_loop(loop);
}
END_TEST

/* Two watchers whose fds are both ready: the first to run stops the
 * other, closes its fd by putting a quiet pipe under the same number
 * (dup2), and starts the same struct on it. The old readiness, already in
 * the batch, must not reach the new watcher. */
static kart_watch reuse_w[2];
static int reuse_quiet = -1;
static int reuse_first_calls, reuse_stale_calls;

static void reuse_stale_cb(kart_watch *io, uint32_t events)
{
    (void)io;
    (void)events;
    reuse_stale_calls++;
}

static void reuse_first_cb(kart_watch *io, uint32_t events)
{
    (void)events;
    reuse_first_calls++;
    kt_drain(io->fd);
    kart_watch *other = &reuse_w[io == &reuse_w[0]];
    if (other->base.data)
        return; /* already swapped */
    int fd = other->fd;
    ck_assert_int_eq(kart_watch_stop(other), 0);
    ck_assert_int_eq(dup2(reuse_quiet, fd), fd);
    ck_assert_int_eq(kart_watch_init(io->base.loop, other, fd), 0);
    other->base.data = other;
    ck_assert_int_eq(kart_watch_start(other, KART_READABLE, reuse_stale_cb), 0);
}

START_TEST(io_fd_closed_and_reused_in_a_batch_gets_no_stale_event)
{
    LOOP_OR_SKIP(_i);
    int q[2];
    kt_pipe(q);
    reuse_quiet = q[0];
    for (int round = 0; round < 8; round++) {
        int a[2], b[2];
        kt_socketpair(a);
        kt_socketpair(b);
        kt_write(a[1], "x");
        kt_write(b[1], "x");
        reuse_first_calls = reuse_stale_calls = 0;
        int first = round & 1;
        memset(reuse_w, 0, sizeof(reuse_w));
        kart_watch_init(loop, &reuse_w[first], (round & 2) ? b[0] : a[0]);
        kart_watch_init(loop, &reuse_w[!first], (round & 2) ? a[0] : b[0]);
        ck_assert_int_eq(kart_watch_start(&reuse_w[first], KART_READABLE, reuse_first_cb), 0);
        ck_assert_int_eq(kart_watch_start(&reuse_w[!first], KART_READABLE, reuse_first_cb), 0);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
        ck_assert_int_eq(reuse_first_calls, 1);
        ck_assert_int_eq(reuse_stale_calls, 0);
        kart_watch_stop(&reuse_w[0]);
        kart_watch_stop(&reuse_w[1]);
        close2(a);
        close2(b);
    }
    close_loop(loop);
    close2(q);
}
END_TEST

/* Two ready watchers; the first to run changes the other's registration
 * (kart_watch_start again). The batch's old event for it is dropped, but its
 * readiness must not be lost, even edge-triggered. */
static kart_watch mod_w[2];
static int mod_calls[2];
static uint32_t mod_flags;

static void modify_other_cb(kart_watch *io, uint32_t events)
{
    (void)events;
    int self = io == &mod_w[1];
    if (mod_calls[0] + mod_calls[1] == 0)
        ck_assert_int_eq(
            kart_watch_start(&mod_w[!self], KART_READABLE | mod_flags, modify_other_cb), 0);
    mod_calls[self]++;
}

START_TEST(io_watcher_modified_in_a_batch_keeps_its_readiness)
{
    LOOP_OR_SKIP(_i);
    mod_flags = (backend_caps() & KART_CAP_EDGE) ? KART_EDGE : 0;
    int a[2], b[2];
    kt_socketpair(a);
    kt_socketpair(b);
    kt_write(a[1], "x");
    kt_write(b[1], "x");
    kart_watch_init(loop, &mod_w[0], a[0]);
    kart_watch_init(loop, &mod_w[1], b[0]);
    ck_assert_int_eq(kart_watch_start(&mod_w[0], KART_READABLE | mod_flags, modify_other_cb), 0);
    ck_assert_int_eq(kart_watch_start(&mod_w[1], KART_READABLE | mod_flags, modify_other_cb), 0);
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    if (mod_flags) {
        ck_assert_int_eq(mod_calls[0], 1);
        ck_assert_int_eq(mod_calls[1], 1);
    } else {
        ck_assert_int_ge(mod_calls[0], 1);
        ck_assert_int_ge(mod_calls[1], 1);
    }
    kart_watch_stop(&mod_w[0]);
    kart_watch_stop(&mod_w[1]);
    close_loop(loop);
    close2(a);
    close2(b);
}
END_TEST

static void oneshot_rearm_cb(kart_watch *io, uint32_t events)
{
    rec *r = io->base.data;
    r->calls++;
    r->events = events;
    r->active = kart_handle_is_active(&io->base);
    if (r->calls < 3)
        ck_assert_int_eq(kart_watch_start(io, KART_READABLE | KART_ONESHOT, oneshot_rearm_cb), 0);
}

START_TEST(io_oneshot_runs_once_until_restarted)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_watch io;
    kart_watch_init(loop, &io, sv[0]);
    io.base.data = &r;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE | KART_ONESHOT, io_rec_cb), 0);
    kt_write(sv[1], "x");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.events, KART_READABLE);
    ck_assert_int_eq(r.active, 0); /* stopped before its callback */
    ck_assert_int_eq(kart_handle_is_active(&io.base), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    /* Still readable, but silent. */
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 1);
    /* Restarting re-arms it. */
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE | KART_ONESHOT, io_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_eq(r.calls, 2);
    /* And from inside its callback. */
    r.calls = 0;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE | KART_ONESHOT, oneshot_rearm_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.calls, 3);
    ck_assert_int_eq(kart_handle_is_active(&io.base), 0);
    close_loop(loop);
    close2(sv);
}
END_TEST

static void switch_to_readable_cb(kart_watch *io, uint32_t events)
{
    rec *r = io->base.data;
    r->calls++;
    r->events = events;
    ck_assert_int_eq(kart_watch_start(io, KART_READABLE, io_rec_cb), 0);
}

/* More ready fds than one batch holds (the loop starts with room for 64
 * and grows): every watcher still runs exactly once. */
#define NMANY_FDS 300
static int many_io_calls[NMANY_FDS];

static void many_io_cb(kart_watch *io, uint32_t events)
{
    (void)events;
    many_io_calls[(intptr_t)io->base.data]++;
    ck_assert_int_eq(kart_watch_stop(io), 0);
}

START_TEST(io_more_ready_fds_than_a_batch_all_run_once)
{
    LOOP_OR_SKIP(_i);
    typedef int fd_pair[2]; /* clang-format mangles int (*sv)[2] */
    fd_pair *sv = calloc(NMANY_FDS, sizeof(*sv));
    kart_watch *io = calloc(NMANY_FDS, sizeof(*io));
    ck_assert(sv && io);
    for (int k = 0; k < NMANY_FDS; k++) {
        kt_socketpair(sv[k]);
        kt_write(sv[k][1], "x");
        kart_watch_init(loop, &io[k], sv[k][0]);
        io[k].base.data = (void *)(intptr_t)k;
        ck_assert_int_eq(kart_watch_start(&io[k], KART_READABLE, many_io_cb), 0);
    }
    /* Every round: ONCE, then all watchers must still be consistent. */
    while (kart_loop_run(loop, KART_RUN_ONCE) == 1)
        ;
    for (int k = 0; k < NMANY_FDS; k++) {
        ck_assert_int_eq(many_io_calls[k], 1);
        close2(sv[k]);
    }
    close_loop(loop);
    free(sv);
    free(io);
}
END_TEST

/* A loop set up on one thread and run on another (the io_uring backend's
 * ring belongs to the first thread that enters it): more watchers started
 * than its submission queue holds, one stopped, all before the run. The
 * setting-up thread once filled the queue, entered the ring to make room
 * and so became its owner: the run then failed with -EINVAL after 511
 * events. */
enum { NSETUP = 700 };
static _Atomic int setup_calls;
static int setup_n;
static void setup_io_cb(kart_watch *io, uint32_t events)
{
    (void)events;
    char b[8];
    if (read(io->fd, b, sizeof(b)) > 0 && ++setup_calls == setup_n - 1)
        kart_loop_stop(io->base.loop);
}

static void *run_loop_thread(void *arg)
{
    return (void *)(intptr_t)kart_loop_run(arg, KART_RUN_DEFAULT);
}

START_TEST(io_watchers_set_up_on_one_thread_run_on_another)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2 * NSETUP + 64 && rl.rlim_max >= 2 * NSETUP + 64) {
        rl.rlim_cur = 2 * NSETUP + 64;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    ck_assert_msg(rl.rlim_cur >= 2 * NSETUP + 64, "descriptor limit %lu too low",
                  (unsigned long)rl.rlim_cur);
    LOOP_OR_SKIP(_i);
    /* select(2) takes descriptors below FD_SETSIZE only. */
    int n = setup_n = strcmp(backend, "select") == 0 ? FD_SETSIZE / 2 - 32 : NSETUP;
    typedef int fd_pair[2];
    fd_pair *sv = calloc((size_t)n, sizeof(*sv));
    kart_watch *io = calloc((size_t)n, sizeof(*io));
    ck_assert(sv && io);
    setup_calls = 0;
    for (int k = 0; k < n; k++) {
        kt_socketpair(sv[k]);
        kt_write(sv[k][1], "x");
        ck_assert_int_eq(kart_watch_init(loop, &io[k], sv[k][0]), 0);
        ck_assert_int_eq(kart_watch_start(&io[k], KART_READABLE, setup_io_cb), 0);
    }
    ck_assert_int_eq(kart_watch_stop(&io[0]), 0);
    pthread_t th;
    void *ret;
    ck_assert_int_eq(pthread_create(&th, NULL, run_loop_thread, loop), 0);
    ck_assert_int_eq(pthread_join(th, &ret), 0);
    ck_assert_int_ge((int)(intptr_t)ret, 0);
    ck_assert_int_eq(setup_calls, n - 1);
    for (int k = 0; k < n; k++) {
        kart_watch_stop(&io[k]);
        close2(sv[k]);
    }
    close_loop(loop);
    free(sv);
    free(io);
}
END_TEST

START_TEST(io_start_again_changes_events)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_watch io;
    kart_watch_init(loop, &io, sv[0]);
    io.base.data = &r;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(kart_watch_start(&io, KART_WRITABLE, switch_to_readable_cb), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.events, KART_WRITABLE);
    /* The callback switched it back to reading with io_rec_cb. */
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 1);
    kt_write(sv[1], "x");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 2);
    ck_assert_uint_eq(r.events, KART_READABLE);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    kart_watch_stop(&io);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    close_loop(loop);
    close2(sv);
}
END_TEST

START_TEST(io_reports_hangup_and_rdhup)
{
    LOOP_OR_SKIP(_i);
    rec r = {0};
    kart_watch io;
    int sv[2], p[2];

    /* The peer shuts its writing side: RDHUP, no HANGUP. */
    kt_socketpair(sv);
    kart_watch_init(loop, &io, sv[0]);
    io.base.data = &r;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.events, KART_READABLE | KART_RDHUP);
    /* The peer closes: HANGUP too. */
    close(sv[1]);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_uint_eq(r.events, KART_READABLE | KART_RDHUP | KART_HANGUP);
    kart_watch_stop(&io);
    close(sv[0]);

    /* A pipe's writer closes. */
    kt_pipe(p);
    kart_watch_init(loop, &io, p[0]);
    io.base.data = &r;
    ck_assert_int_eq(kart_watch_start(&io, KART_READABLE, io_rec_cb), 0);
    close(p[1]);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert(r.events & KART_HANGUP);
    kart_watch_stop(&io);
    close(p[0]);

    /* A pipe's reader closes: the writer sees an error. */
    kt_pipe(p);
    kart_watch_init(loop, &io, p[1]);
    io.base.data = &r;
    ck_assert_int_eq(kart_watch_start(&io, KART_WRITABLE, io_rec_cb), 0);
    close(p[0]);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert(r.events & KART_ERROR);
    ck_assert(r.events & KART_WRITABLE);
    kart_watch_stop(&io);
    close(p[1]);
    close_loop(loop);
}
END_TEST

/* kart_watch_modify: new events, same callback; the errors. */
START_TEST(io_modify_changes_events_and_keeps_the_callback)
{
    LOOP_OR_SKIP(_i);
    int sv[2];
    kt_socketpair(sv);
    rec r = {0};
    kart_watch w;
    ck_assert_int_eq(kart_watch_init(loop, &w, sv[0]), 0);
    w.base.data = &r;
    ck_assert_int_eq(kart_watch_modify(&w, KART_READABLE), -ENOENT);
    ck_assert_int_eq(kart_watch_modify(NULL, KART_READABLE), -EINVAL);
    ck_assert_int_eq(kart_watch_start(&w, KART_READABLE, io_rec_cb), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(kart_watch_modify(&w, KART_WRITABLE), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.events, KART_WRITABLE);
    /* A failed modify keeps the old registration. */
    ck_assert_int_eq(kart_watch_modify(&w, 0x8000), -EINVAL);
    ck_assert_int_eq(kart_watch_modify(&w, KART_EDGE), -EINVAL);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 1);
    ck_assert_int_eq(r.calls, 2);
    ck_assert_uint_eq(r.events, KART_WRITABLE);
    /* A one-shot watcher, stopped before its callback, is not active:
     * modify says so (start re-arms it). */
    ck_assert_int_eq(kart_watch_modify(&w, KART_WRITABLE | KART_ONESHOT), 0);
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_ONCE), 0);
    ck_assert_int_eq(r.calls, 3);
    ck_assert_int_eq(kart_watch_modify(&w, KART_WRITABLE), -ENOENT);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    close_loop(loop);
    close2(sv);
}
END_TEST

int main(void)
{
    kt_print_backends();
    int nb = kt_nbackends();
    Suite *s = suite_create("loop_io");

    TCase *tc = tcase_create("io");
    tcase_add_loop_test(tc, io_reports_readable_and_writable, 0, nb);
    tcase_add_loop_test(tc, io_init_errors, 0, nb);
    tcase_add_loop_test(tc, io_start_errors, 0, nb);
    tcase_add_loop_test(tc, io_edge_triggered_or_enotsup, 0, nb);
    tcase_add_loop_test(tc, io_stop_inside_own_callback, 0, nb);
    tcase_add_loop_test(tc, io_watchers_stopped_and_freed_in_a_batch_never_run, 0, nb);
    tcase_add_loop_test(tc, io_fd_closed_and_reused_in_a_batch_gets_no_stale_event, 0, nb);
    tcase_add_loop_test(tc, io_watcher_modified_in_a_batch_keeps_its_readiness, 0, nb);
    tcase_add_loop_test(tc, io_oneshot_runs_once_until_restarted, 0, nb);
    tcase_add_loop_test(tc, io_more_ready_fds_than_a_batch_all_run_once, 0, nb);
    tcase_add_loop_test(tc, io_watchers_set_up_on_one_thread_run_on_another, 0, nb);
    tcase_add_loop_test(tc, io_start_again_changes_events, 0, nb);
    tcase_add_loop_test(tc, io_reports_hangup_and_rdhup, 0, nb);
    tcase_add_loop_test(tc, io_modify_changes_events_and_keeps_the_callback, 0, nb);
    suite_add_tcase(s, tc);

    return kt_run(s);
}

/* Description: the loop's file watchers (kart_fswatch, kart/loop.h:
 * kqueue's EVFILT_VNODE, inotify on Linux) on every backend the suite
 * runs: a write (and an extend) of a file, its attributes, a rename (the
 * watcher follows the file), a delete (once), a directory's entries, only
 * the events asked for, two watchers of one file, a stop from the
 * callback, the loop freed with a watcher active, and every documented
 * error a test can cause (-EINVAL, -ENOENT, -ENOTDIR). */
#define KT_LOOP_HELPERS
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

typedef struct fsrec {
    int calls;
    unsigned all; /* every event seen, ORed */
    unsigned last;
    bool stop_in_cb;
} fsrec;

static void fs_cb(kart_fswatch *w, unsigned events)
{
    fsrec *r = w->base.data;
    r->calls++;
    r->all |= events;
    r->last = events;
    if (r->stop_in_cb)
        ck_assert_int_eq(kart_fswatch_stop(w), 0);
}

/* A fresh directory for one case, and a file in it. */
static char dir[64], path[96], path2[96];

static void make_files(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kart-fswatch-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a", dir);
    snprintf(path2, sizeof(path2), "%s/b", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void remove_files(void)
{
    unlink(path);
    unlink(path2);
    rmdir(dir);
}

/* Runs the loop until r has seen all of `want` or ms pass. */
static void run_until_ms(kart_loop *loop, const fsrec *r, unsigned want, int64_t ms)
{
    int64_t end = kart_now_ns() + ms * KT_MS;
    kart_timer t; /* bounds each wait */
    kart_timer_init(loop, &t);
    kart_timer_start(&t, timer_rec_cb, 10 * KT_MS, 10 * KT_MS);
    rec tr = {0};
    t.base.data = &tr;
    while ((r->all & want) != want && kart_now_ns() < end)
        kart_loop_run(loop, KART_RUN_ONCE);
    kart_timer_stop(&t);
}

static void run_until_seen(kart_loop *loop, const fsrec *r, unsigned want)
{
    run_until_ms(loop, r, want, 2000);
}

/* Runs the loop a little: for events that must not come. */
static void run_a_while(kart_loop *loop, const fsrec *r)
{
    run_until_ms(loop, r, ~0u, 100);
}

static void append(const char *p, const char *s)
{
    int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
    close(fd);
}

START_TEST(write_and_extend)
{
    LOOP_OR_SKIP(_i);
    make_files();
    fsrec r = {0};
    kart_fswatch w;
    ck_assert_int_eq(kart_fswatch_init(loop, &w), 0);
    w.base.data = &r;
    ck_assert_int_eq(w.base.type, KART_HANDLE_FSWATCH);
    ck_assert_int_eq(kart_fswatch_start(&w, path, KART_FS_ALL, fs_cb), 0);
    ck_assert_int_eq(kart_handle_is_active(&w.base), 1);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    append(path, "hello");
    run_until_seen(loop, &r, KART_FS_WRITE | KART_FS_EXTEND);
    ck_assert_uint_eq(r.all, KART_FS_WRITE | KART_FS_EXTEND);
    /* Overwriting in place writes without extending. */
    r = (fsrec){0};
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ck_assert_int_eq(pwrite(fd, "J", 1, 0), 1);
    close(fd);
    run_until_seen(loop, &r, KART_FS_WRITE);
    ck_assert_uint_eq(r.all, KART_FS_WRITE);
    ck_assert_int_eq(kart_fswatch_stop(&w), 0);
    ck_assert_int_eq(kart_fswatch_stop(&w), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    /* Stopped: nothing more. */
    r = (fsrec){0};
    append(path, "more");
    ck_assert_int_eq(kart_loop_run(loop, KART_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 0);
    close_loop(loop);
    remove_files();
}
END_TEST

START_TEST(attrib_rename_and_delete)
{
    LOOP_OR_SKIP(_i);
    make_files();
    fsrec r = {0};
    kart_fswatch w;
    ck_assert_int_eq(kart_fswatch_init(loop, &w), 0);
    w.base.data = &r;
    ck_assert_int_eq(kart_fswatch_start(&w, path, KART_FS_ALL, fs_cb), 0);
    ck_assert_int_eq(chmod(path, 0600), 0);
    run_until_seen(loop, &r, KART_FS_ATTRIB);
    ck_assert_uint_eq(r.all, KART_FS_ATTRIB);
    /* The watcher follows the file, not the name. */
    r = (fsrec){0};
    ck_assert_int_eq(rename(path, path2), 0);
    run_until_seen(loop, &r, KART_FS_RENAME);
    ck_assert_uint_eq(r.all, KART_FS_RENAME);
    r = (fsrec){0};
    append(path2, "x");
    run_until_seen(loop, &r, KART_FS_WRITE);
    ck_assert(r.all & KART_FS_WRITE);
    /* The last link goes: one delete, no attribute change. */
    r = (fsrec){0};
    ck_assert_int_eq(unlink(path2), 0);
    run_until_seen(loop, &r, KART_FS_DELETE);
    ck_assert_uint_eq(r.all, KART_FS_DELETE);
    ck_assert_int_eq(r.calls, 1);
    /* Still active until stopped. */
    ck_assert_int_eq(kart_handle_is_active(&w.base), 1);
    ck_assert_int_eq(kart_fswatch_stop(&w), 0);
    close_loop(loop);
    remove_files();
}
END_TEST

START_TEST(directory_entries_are_writes)
{
    LOOP_OR_SKIP(_i);
    make_files();
    fsrec r = {0};
    kart_fswatch w;
    ck_assert_int_eq(kart_fswatch_init(loop, &w), 0);
    w.base.data = &r;
    ck_assert_int_eq(kart_fswatch_start(&w, dir, KART_FS_WRITE, fs_cb), 0);
    int fd = open(path2, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);
    run_until_seen(loop, &r, KART_FS_WRITE);
    ck_assert_uint_eq(r.all, KART_FS_WRITE);
    r = (fsrec){0};
    ck_assert_int_eq(unlink(path2), 0);
    run_until_seen(loop, &r, KART_FS_WRITE);
    ck_assert_uint_eq(r.all, KART_FS_WRITE);
    ck_assert_int_eq(kart_fswatch_stop(&w), 0);
    close_loop(loop);
    remove_files();
}
END_TEST

START_TEST(only_the_events_asked_for)
{
    LOOP_OR_SKIP(_i);
    make_files();
    fsrec r = {0};
    kart_fswatch w;
    ck_assert_int_eq(kart_fswatch_init(loop, &w), 0);
    w.base.data = &r;
    ck_assert_int_eq(kart_fswatch_start(&w, path, KART_FS_ATTRIB, fs_cb), 0);
    append(path, "data");
    run_a_while(loop, &r);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(chmod(path, 0600), 0);
    run_until_seen(loop, &r, KART_FS_ATTRIB);
    ck_assert_uint_eq(r.all, KART_FS_ATTRIB);
    /* A restart on the same file with other events replaces them. */
    r = (fsrec){0};
    ck_assert_int_eq(kart_fswatch_start(&w, path, KART_FS_WRITE, fs_cb), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 1);
    ck_assert_int_eq(chmod(path, 0644), 0);
    append(path, "more");
    run_until_seen(loop, &r, KART_FS_WRITE);
    ck_assert_uint_eq(r.all, KART_FS_WRITE);
    ck_assert_int_eq(kart_fswatch_stop(&w), 0);
    close_loop(loop);
    remove_files();
}
END_TEST

START_TEST(two_watchers_of_one_file)
{
    LOOP_OR_SKIP(_i);
    make_files();
    fsrec r1 = {0}, r2 = {0};
    kart_fswatch w1, w2;
    ck_assert_int_eq(kart_fswatch_init(loop, &w1), 0);
    ck_assert_int_eq(kart_fswatch_init(loop, &w2), 0);
    w1.base.data = &r1;
    w2.base.data = &r2;
    ck_assert_int_eq(kart_fswatch_start(&w1, path, KART_FS_WRITE, fs_cb), 0);
    ck_assert_int_eq(kart_fswatch_start(&w2, path, KART_FS_WRITE | KART_FS_ATTRIB, fs_cb), 0);
    append(path, "x");
    run_until_seen(loop, &r1, KART_FS_WRITE);
    run_until_seen(loop, &r2, KART_FS_WRITE);
    ck_assert_uint_eq(r1.all, KART_FS_WRITE);
    ck_assert_uint_eq(r2.all, KART_FS_WRITE);
    /* The first stops from its own callback; the second goes on. */
    r1 = (fsrec){.stop_in_cb = true};
    r2 = (fsrec){0};
    append(path, "y");
    run_until_seen(loop, &r2, KART_FS_WRITE);
    ck_assert_int_eq(r1.calls, 1);
    ck_assert_int_eq(kart_handle_is_active(&w1.base), 0);
    r1 = (fsrec){0};
    r2 = (fsrec){0};
    ck_assert_int_eq(chmod(path, 0600), 0);
    run_until_seen(loop, &r2, KART_FS_ATTRIB);
    ck_assert_uint_eq(r2.all, KART_FS_ATTRIB);
    ck_assert_int_eq(r1.calls, 0);
    ck_assert_int_eq(kart_fswatch_stop(&w2), 0);
    close_loop(loop);
    remove_files();
}
END_TEST

/* Freed with a watcher active: stopped without its callback, its file
 * closed (ASan and the fd count: nothing leaks). */
START_TEST(loop_free_stops_a_watcher)
{
    LOOP_OR_SKIP(_i);
    make_files();
    fsrec r = {0};
    kart_fswatch w;
    ck_assert_int_eq(kart_fswatch_init(loop, &w), 0);
    w.base.data = &r;
    int before = dup(0);
    close(before);
    ck_assert_int_eq(kart_fswatch_start(&w, path, KART_FS_ALL, fs_cb), 0);
    append(path, "x");
    kart_loop_free(loop);
    ck_assert_int_eq(kart_handle_is_active(&w.base), 0);
    ck_assert_int_eq(r.calls, 0);
    int after = dup(0);
    close(after);
    ck_assert_int_le(after, before); /* the loop's own fds went too */
    remove_files();
}
END_TEST

START_TEST(fswatch_errors)
{
    LOOP_OR_SKIP(_i);
    make_files();
    kart_fswatch w;
    ck_assert_int_eq(kart_fswatch_init(NULL, &w), -EINVAL);
    ck_assert_int_eq(kart_fswatch_init(loop, NULL), -EINVAL);
    ck_assert_int_eq(kart_fswatch_init(loop, &w), 0);
    ck_assert_int_eq(kart_fswatch_start(NULL, path, KART_FS_ALL, fs_cb), -EINVAL);
    ck_assert_int_eq(kart_fswatch_start(&w, NULL, KART_FS_ALL, fs_cb), -EINVAL);
    ck_assert_int_eq(kart_fswatch_start(&w, path, KART_FS_ALL, NULL), -EINVAL);
    ck_assert_int_eq(kart_fswatch_start(&w, path, 0, fs_cb), -EINVAL);
    ck_assert_int_eq(kart_fswatch_start(&w, path, 0x100, fs_cb), -EINVAL);
    ck_assert_int_eq(kart_fswatch_start(&w, "/nonexistent/kart/file", KART_FS_ALL, fs_cb), -ENOENT);
    char notdir[128];
    snprintf(notdir, sizeof(notdir), "%s/x", path);
    ck_assert_int_eq(kart_fswatch_start(&w, notdir, KART_FS_ALL, fs_cb), -ENOTDIR);
    ck_assert_int_eq(kart_fswatch_stop(NULL), -EINVAL);
    ck_assert_int_eq(kart_handle_is_active(&w.base), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    /* A failed restart leaves the watcher stopped. */
    fsrec r = {0};
    w.base.data = &r;
    ck_assert_int_eq(kart_fswatch_start(&w, path, KART_FS_ALL, fs_cb), 0);
    ck_assert_int_eq(kart_fswatch_start(&w, "/nonexistent/kart/file", KART_FS_ALL, fs_cb), -ENOENT);
    ck_assert_int_eq(kart_handle_is_active(&w.base), 0);
    ck_assert_int_eq(kart_loop_active_handles(loop), 0);
    close_loop(loop);
    remove_files();
}
END_TEST

int main(void)
{
    kt_print_backends();
    int nb = kt_nbackends();
    Suite *s = suite_create("loop_fswatch");
    TCase *tc = tcase_create("fswatch");
    tcase_add_loop_test(tc, write_and_extend, 0, nb);
    tcase_add_loop_test(tc, attrib_rename_and_delete, 0, nb);
    tcase_add_loop_test(tc, directory_entries_are_writes, 0, nb);
    tcase_add_loop_test(tc, only_the_events_asked_for, 0, nb);
    tcase_add_loop_test(tc, two_watchers_of_one_file, 0, nb);
    tcase_add_loop_test(tc, loop_free_stops_a_watcher, 0, nb);
    tcase_add_loop_test(tc, fswatch_errors, 0, nb);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

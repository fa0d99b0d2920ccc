/* Description: kart/shm.h — segment names (Python's rules), named
 * segments (create exclusive, attach read-write, read-only and
 * unlink-after-attach, size, unlink), anonymous memfd segments across
 * fork, wrapping fds, fd passing over unix sockets (SCM_RIGHTS) with each
 * documented error, and the tracker: creators killed with SIGKILL (or
 * exiting) leave nothing in /dev/shm, a fork child keeps the names alive
 * while it lives, unlinking unregisters, and the tracker holds none of its
 * creator's fds. Every name used starts with /kart-test-<pid>. */
#include "testutil.h"

#include <kart/conn.h>
#include <kart/shm.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* A fresh name for this process. */
static const char *tname(const char *tag)
{
    static char buf[8][96];
    static int n;
    char *b = buf[n++ % 8];
    snprintf(b, 96, "/kart-test-%ld-%s-%d", (long)getpid(), tag, n);
    return b;
}

static bool exists(const char *name)
{
    char path[300];
    snprintf(path, sizeof(path), "/dev/shm%s", name);
    return access(path, F_OK) == 0;
}

/* Waits up to 10 s for a name to disappear. */
static bool gone_soon(const char *name)
{
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    while (exists(name)) {
        if (kart_now_ns() > end)
            return false;
        usleep(2000);
    }
    return true;
}

static void reap_ok(pid_t pid)
{
    int st;
    kt_wait_child(pid, &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
}

/* ---- names ---- */

START_TEST(name_rules)
{
    char long_name[300];
    long_name[0] = '/';
    memset(long_name + 1, 'a', 255);
    long_name[256] = '\0';
    ck_assert_int_eq(kart_shm_name_check(long_name), -EINVAL); /* 256 bytes */
    long_name[255] = '\0';
    ck_assert_int_eq(kart_shm_name_check(long_name), 0); /* 255 bytes */
    ck_assert_int_eq(kart_shm_name_check(NULL), -EINVAL);
    ck_assert_int_eq(kart_shm_name_check(""), -EINVAL);
    ck_assert_int_eq(kart_shm_name_check("/"), -EINVAL);
    ck_assert_int_eq(kart_shm_name_check("noslash"), -EINVAL);
    ck_assert_int_eq(kart_shm_name_check("/a/b"), -EINVAL);
    ck_assert_int_eq(kart_shm_name_check("/ok.name-1"), 0);
    kart_shm *s = NULL;
    ck_assert_int_eq(kart_shm_create(&s, "/a/b", 10, 0), -EINVAL);
    ck_assert_int_eq(kart_shm_attach(&s, "x", 0), -EINVAL);
    ck_assert_int_eq(kart_shm_unlink_name("/"), -EINVAL);
    ck_assert_int_eq(kart_shm_track("nope"), -EINVAL);
    ck_assert_int_eq(kart_shm_untrack("/x/y"), -EINVAL);
    ck_assert_ptr_null(s);
}
END_TEST

/* ---- named segments ---- */

START_TEST(create_rejects_bad_arguments)
{
    kart_shm *s = NULL;
    const char *n = tname("bad");
    ck_assert_int_eq(kart_shm_create(NULL, n, 10, 0), -EINVAL);
    ck_assert_int_eq(kart_shm_create(&s, n, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_shm_create(&s, n, 10, 0x80), -EINVAL);
    ck_assert_int_eq(kart_shm_create(&s, n, SIZE_MAX, 0), -EFBIG);
    ck_assert(!exists(n)); /* nothing left behind */
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(create_attach_share_bytes)
{
    const char *n = tname("share");
    kart_shm *a, *b;
    ck_assert_int_eq(kart_shm_create(&a, n, 10000, 0), 0);
    ck_assert(exists(n));
    ck_assert_int_eq(kart_shm_size(a), 10000);
    ck_assert_str_eq(kart_shm_name(a), n);
    ck_assert_int_ge(kart_shm_fd(a), 0);
    unsigned char *pa = kart_shm_addr(a);
    ck_assert_int_eq(pa[9999], 0);
    ck_assert_int_eq(kart_shm_create(&b, n, 10, 0), -EEXIST);
    ck_assert_int_eq(kart_shm_attach(&b, n, 0), 0);
    ck_assert_int_eq(kart_shm_size(b), 10000);
    unsigned char *pb = kart_shm_addr(b);
    ck_assert_ptr_ne(pa, pb);
    pa[5000] = 42;
    ck_assert_int_eq(pb[5000], 42);
    ck_assert_int_eq(kart_shm_close(b), 0);
    ck_assert_int_eq(kart_shm_unlink(a), 0);
    ck_assert(!exists(n));
    ck_assert_int_eq(kart_shm_unlink(a), -ENOENT);
    ck_assert_int_eq(pa[5000], 42); /* the bytes outlive the name */
    ck_assert_int_eq(kart_shm_close(a), 0);
}
END_TEST

START_TEST(generated_names_are_unique)
{
    kart_shm *a, *b;
    ck_assert_int_eq(kart_shm_create(&a, NULL, 100, 0), 0);
    ck_assert_int_eq(kart_shm_create(&b, NULL, 100, 0), 0);
    ck_assert_int_eq(strncmp(kart_shm_name(a), "/kart-", 6), 0);
    ck_assert_int_eq(kart_shm_name_check(kart_shm_name(a)), 0);
    ck_assert_str_ne(kart_shm_name(a), kart_shm_name(b));
    ck_assert(exists(kart_shm_name(a)));
    ck_assert_int_eq(kart_shm_unlink(a), 0);
    ck_assert_int_eq(kart_shm_unlink(b), 0);
    ck_assert_int_eq(kart_shm_close(a), 0);
    ck_assert_int_eq(kart_shm_close(b), 0);
}
END_TEST

START_TEST(attach_errors)
{
    kart_shm *s = NULL;
    const char *n = tname("att");
    ck_assert_int_eq(kart_shm_attach(NULL, n, 0), -EINVAL);
    ck_assert_int_eq(kart_shm_attach(&s, n, 0x80), -EINVAL);
    ck_assert_int_eq(kart_shm_attach(&s, n, 0), -ENOENT);
    /* a segment of size 0 cannot be mapped */
    int fd = shm_open(n, O_CREAT | O_EXCL | O_RDWR, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(kart_shm_attach(&s, n, 0), -EINVAL);
    close(fd);
    ck_assert_int_eq(kart_shm_unlink_name(n), 0);
    ck_assert_int_eq(kart_shm_unlink_name(n), -ENOENT);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(attach_read_only_refuses_writes)
{
    const char *n = tname("ro");
    kart_shm *a, *r;
    ck_assert_int_eq(kart_shm_create(&a, n, 4096, 0), 0);
    ((char *)kart_shm_addr(a))[0] = 'w';
    ck_assert_int_eq(kart_shm_attach(&r, n, KART_SHM_RDONLY), 0);
    ck_assert_int_eq(((char *)kart_shm_addr(r))[0], 'w');
    /* the kernel writing into the read-only mapping (read(2) from a pipe)
     * gets EFAULT, where a store would fault with SIGSEGV */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    errno = 0;
    ck_assert_int_eq(read(p[0], kart_shm_addr(r), 1), -1);
    ck_assert_int_eq(errno, EFAULT);
    ck_assert_int_eq(read(p[0], kart_shm_addr(a), 1), 1);
    ck_assert_int_eq(((char *)kart_shm_addr(r))[0], 'x');
    close(p[0]);
    close(p[1]);
    ck_assert_int_eq(kart_shm_close(r), 0);
    ck_assert_int_eq(kart_shm_unlink(a), 0);
    ck_assert_int_eq(kart_shm_close(a), 0);
}
END_TEST

START_TEST(attach_unlink_is_a_private_handoff)
{
    const char *n = tname("hand");
    kart_shm *a, *b;
    ck_assert_int_eq(kart_shm_create(&a, n, 4096, 0), 0);
    ck_assert_int_eq(kart_shm_attach(&b, n, KART_SHM_UNLINK), 0);
    ck_assert(!exists(n));
    ((char *)kart_shm_addr(a))[1] = 'h';
    ck_assert_int_eq(((char *)kart_shm_addr(b))[1], 'h');
    ck_assert_int_eq(kart_shm_unlink(a), -ENOENT);
    ck_assert_int_eq(kart_shm_close(b), 0);
    ck_assert_int_eq(kart_shm_close(a), 0);
}
END_TEST

START_TEST(named_across_fork_by_name)
{
    const char *n = tname("fork");
    kart_shm *a;
    ck_assert_int_eq(kart_shm_create(&a, n, 4096, 0), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_shm *c;
        int ok = kart_shm_attach(&c, n, 0) == 0;
        if (ok) {
            memcpy(kart_shm_addr(c), "by name", 8);
            kart_shm_close(c);
        }
        _exit(ok ? 0 : 1);
    }
    reap_ok(pid);
    ck_assert_str_eq(kart_shm_addr(a), "by name");
    ck_assert_int_eq(kart_shm_unlink(a), 0);
    ck_assert_int_eq(kart_shm_close(a), 0);
}
END_TEST

START_TEST(null_handles)
{
    ck_assert_ptr_null(kart_shm_addr(NULL));
    ck_assert_int_eq(kart_shm_size(NULL), 0);
    ck_assert_ptr_null(kart_shm_name(NULL));
    ck_assert_int_eq(kart_shm_fd(NULL), -EINVAL);
    ck_assert_int_eq(kart_shm_close(NULL), -EINVAL);
    ck_assert_int_eq(kart_shm_unlink(NULL), -EINVAL);
    ck_assert_int_eq(kart_shm_send(0, NULL), -EINVAL);
}
END_TEST

/* ---- anonymous segments, fds ---- */

START_TEST(anonymous_inherited_over_fork)
{
    kart_shm *s = NULL;
    ck_assert_int_eq(kart_shm_create_anon(NULL, 10, 0), -EINVAL);
    ck_assert_int_eq(kart_shm_create_anon(&s, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_shm_create_anon(&s, 10, KART_SHM_TRACK), -EINVAL);
    ck_assert_int_eq(kart_shm_create_anon(&s, SIZE_MAX, 0), -EFBIG);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(kart_shm_create_anon(&s, 1 << 20, 0), 0);
    ck_assert_ptr_null(kart_shm_name(s));
    ck_assert_int_eq(kart_shm_unlink(s), -EINVAL);
    pid_t pid = kt_fork();
    if (pid == 0) {
        ((char *)kart_shm_addr(s))[(1 << 20) - 1] = 'k';
        kart_shm_close(s);
        _exit(0);
    }
    reap_ok(pid);
    ck_assert_int_eq(((char *)kart_shm_addr(s))[(1 << 20) - 1], 'k');
    ck_assert_int_eq(kart_shm_close(s), 0);
}
END_TEST

START_TEST(from_fd_checks_the_fd)
{
    kart_shm *s = NULL;
    ck_assert_int_eq(kart_shm_from_fd(NULL, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_shm_from_fd(&s, 0, 0x80), -EINVAL);
    ck_assert_int_eq(kart_shm_from_fd(&s, -1, 0), -EBADF);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(kart_shm_from_fd(&s, p[0], KART_SHM_RDONLY), -ENODEV);
    close(p[0]);
    ck_assert_int_eq(kart_shm_from_fd(&s, p[0], 0), -EBADF);
    close(p[1]);
    int empty = memfd_create("t", MFD_CLOEXEC);
    ck_assert_int_eq(kart_shm_from_fd(&s, empty, 0), -EINVAL);
    ck_assert_int_eq(ftruncate(empty, 8192), 0);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", empty);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    int wo = open(path, O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(ro, 0);
    ck_assert_int_ge(wo, 0);
    ck_assert_int_eq(kart_shm_from_fd(&s, ro, 0), -EACCES);
    ck_assert_int_eq(kart_shm_from_fd(&s, wo, 0), -EACCES);
    close(wo);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(kart_shm_from_fd(&s, ro, KART_SHM_RDONLY), 0);
    ck_assert_int_eq(kart_shm_fd(s), ro);
    ck_assert_int_eq(kart_shm_size(s), 8192);
    ck_assert_int_eq(kart_shm_close(s), 0);
    ck_assert_int_eq(fcntl(ro, F_GETFD), -1); /* the handle owned it */
    ck_assert_int_eq(kart_shm_from_fd(&s, empty, 0), 0);
    ck_assert_int_eq(kart_shm_close(s), 0);
}
END_TEST

START_TEST(segment_passed_over_a_unix_socket)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        close(sv[0]);
        kart_shm *c;
        if (kart_shm_recv(sv[1], &c, 0) != 0 || kart_shm_size(c) != 65536)
            _exit(1);
        memcpy((char *)kart_shm_addr(c) + 60000, "passed", 7);
        /* and a second, read-only */
        kart_shm *r;
        if (kart_shm_recv(sv[1], &r, KART_SHM_RDONLY) != 0 || strcmp(kart_shm_addr(r), "ro") != 0)
            _exit(2);
        kart_shm_close(c);
        kart_shm_close(r);
        _exit(0);
    }
    close(sv[1]);
    kart_shm *s, *t;
    ck_assert_int_eq(kart_shm_create_anon(&s, 65536, 0), 0);
    ck_assert_int_eq(kart_shm_create(&t, NULL, 100, 0), 0);
    strcpy(kart_shm_addr(t), "ro");
    ck_assert_int_eq(kart_shm_send(sv[0], s), 0);
    ck_assert_int_eq(kart_shm_send(sv[0], t), 0);
    reap_ok(pid);
    ck_assert_str_eq((char *)kart_shm_addr(s) + 60000, "passed");
    /* the peer is gone now */
    ck_assert_int_eq(kart_shm_send(sv[0], s), -EPIPE);
    ck_assert_int_eq(kart_shm_unlink(t), 0);
    ck_assert_int_eq(kart_shm_close(t), 0);
    ck_assert_int_eq(kart_shm_close(s), 0);
    close(sv[0]);
}
END_TEST

START_TEST(fd_passing_errors)
{
    int sv[2], fd;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(kart_unix_send_fd(-1, 0), -EBADF);
    ck_assert_int_eq(kart_unix_send_fd(sv[0], -1), -EBADF);
    ck_assert_int_eq(kart_unix_recv_fd(-1, &fd), -EBADF);
    ck_assert_int_eq(kart_unix_recv_fd(sv[0], NULL), -EINVAL);
    kart_shm *s;
    ck_assert_int_eq(kart_shm_recv(sv[0], NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_shm_recv(sv[0], &s, 0x80), -EINVAL);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(kart_unix_send_fd(p[1], 0), -ENOTSOCK);
    ck_assert_int_eq(kart_unix_recv_fd(p[0], &fd), -ENOTSOCK);
    /* a message without an fd */
    ck_assert_int_eq(write(sv[0], "x", 1), 1);
    ck_assert_int_eq(kart_unix_recv_fd(sv[1], &fd), -EPROTO);
    /* an fd that cannot be mapped: recv closes it */
    ck_assert_int_eq(kart_unix_send_fd(sv[0], p[0]), 0);
    ck_assert_int_eq(kart_shm_recv(sv[1], &s, 0), -ENODEV);
    /* nothing there on a non-blocking socket */
    ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(kart_unix_recv_fd(sv[1], &fd), -EAGAIN);
    /* the peer closed */
    close(sv[0]);
    ck_assert_int_eq(kart_unix_recv_fd(sv[1], &fd), KART_EEOF);
    ck_assert_int_eq(kart_unix_send_fd(sv[1], p[0]), -EPIPE);
    close(sv[1]);
    ck_assert_int_eq(kart_unix_send_fd(sv[1], p[0]), -EBADF);
    ck_assert_int_eq(kart_unix_recv_fd(sv[1], &fd), -EBADF);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- the tracker ---- */

/* Reads one line of names from a child: what it created. */
static void read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        ck_assert_int_ge(n, 0);
        if (n == 0)
            break;
        got += (size_t)n;
        if (buf[got - 1] == '\n')
            break;
    }
    buf[got] = '\0';
}

START_TEST(tracker_unlinks_after_sigkill)
{
    enum { CREATORS = 4, EACH = 3 };
    char names[CREATORS][EACH][KART_SHM_NAME_MAX + 1];
    pid_t pids[CREATORS];
    for (int c = 0; c < CREATORS; c++) {
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        pids[c] = kt_fork();
        if (pids[c] == 0) {
            close(p[0]);
            char line[EACH * 300] = "";
            for (int i = 0; i < EACH; i++) {
                kart_shm *s;
                /* one with a name of ours, the others generated */
                const char *n = i == 0 ? tname("kill") : NULL;
                if (kart_shm_create(&s, n, 4096, KART_SHM_TRACK) != 0)
                    _exit(1);
                strcat(line, kart_shm_name(s));
                strcat(line, " ");
            }
            strcat(line, "\n");
            (void)!write(p[1], line, strlen(line));
            pause();
            _exit(0);
        }
        close(p[1]);
        char line[EACH * 300];
        read_all(p[0], line, sizeof(line));
        close(p[0]);
        char *save, *tok = strtok_r(line, " \n", &save);
        for (int i = 0; i < EACH; i++) {
            ck_assert_ptr_nonnull(tok);
            snprintf(names[c][i], sizeof(names[c][i]), "%s", tok);
            ck_assert_msg(exists(tok), "%s not created", tok);
            tok = strtok_r(NULL, " \n", &save);
        }
    }
    for (int c = 0; c < CREATORS; c++) {
        ck_assert_int_eq(kill(pids[c], SIGKILL), 0);
        int st;
        kt_wait_child(pids[c], &st);
        ck_assert(WIFSIGNALED(st));
    }
    for (int c = 0; c < CREATORS; c++)
        for (int i = 0; i < EACH; i++)
            ck_assert_msg(gone_soon(names[c][i]), "%s leaked", names[c][i]);
}
END_TEST

START_TEST(tracker_unlinks_after_exit_and_waits_for_children)
{
    const char *n = tname("exit");
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_shm *s;
        if (kart_shm_create(&s, n, 4096, KART_SHM_TRACK) != 0)
            _exit(1);
        kart_shm_close(s);
        /* a grandchild inherits the tracker connection and lives on until
         * the test closes p[1] (a plain fork: kt_fork's death signal
         * would kill it with this child, which exits at once; it ends on
         * its own when the test's end of the pipe closes) */
        pid_t g = fork();
        if (g == 0) {
            close(p[1]);
            char c;
            (void)!read(p[0], &c, 1);
            _exit(0);
        }
        _exit(g > 0 ? 0 : 1);
    }
    close(p[0]);
    reap_ok(pid);
    usleep(200 * 1000);
    ck_assert_msg(exists(n), "unlinked while a fork child still held the tracker");
    close(p[1]); /* the grandchild exits */
    ck_assert_msg(gone_soon(n), "%s leaked", n);
}
END_TEST

START_TEST(unlink_unregisters)
{
    const char *n = tname("unreg");
    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        close(go[1]);
        kart_shm *s;
        if (kart_shm_create(&s, n, 4096, KART_SHM_TRACK) != 0 || kart_shm_unlink(s) != 0)
            _exit(1);
        kart_shm_close(s);
        (void)!write(ready[1], "r", 1);
        char c;
        (void)!read(go[0], &c, 1);
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    /* a namesake made by somebody else: the child's tracker must leave it */
    kart_shm *mine;
    ck_assert_int_eq(kart_shm_create(&mine, n, 100, 0), 0);
    close(go[1]);
    reap_ok(pid);
    usleep(300 * 1000);
    ck_assert(exists(n));
    ck_assert_int_eq(kart_shm_unlink(mine), 0);
    ck_assert_int_eq(kart_shm_close(mine), 0);
    close(ready[0]);
}
END_TEST

START_TEST(track_and_untrack_by_name)
{
    const char *kept = tname("kept"), *dropped = tname("dropped");
    ck_assert_int_eq(kart_shm_tracker_pid(), 0);
    ck_assert_int_eq(kart_shm_untrack(kept), -ESRCH);
    kart_shm *a, *b;
    ck_assert_int_eq(kart_shm_create(&a, kept, 100, 0), 0);
    ck_assert_int_eq(kart_shm_create(&b, dropped, 100, 0), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        int ok = kart_shm_track(kept) == 0 && kart_shm_track(dropped) == 0 &&
                 kart_shm_track(dropped) == 0 && kart_shm_tracker_pid() > 0 &&
                 kart_shm_untrack(kept) == 0;
        _exit(ok ? 0 : 1);
    }
    reap_ok(pid);
    ck_assert_msg(gone_soon(dropped), "tracked name not unlinked");
    usleep(100 * 1000);
    ck_assert(exists(kept));
    ck_assert_int_eq(kart_shm_unlink(a), 0);
    ck_assert_int_eq(kart_shm_close(a), 0);
    ck_assert_int_eq(kart_shm_close(b), 0);
}
END_TEST

START_TEST(tracker_holds_no_fds_of_its_creator)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0); /* not O_CLOEXEC: fork would keep it */
    kart_shm *s;
    ck_assert_int_eq(kart_shm_create(&s, NULL, 100, KART_SHM_TRACK), 0);
    pid_t t = kart_shm_tracker_pid();
    ck_assert_int_gt(t, 0);
    ck_assert_int_ne(t, getpid());
    kart_shm *s2;
    ck_assert_int_eq(kart_shm_create(&s2, NULL, 100, KART_SHM_TRACK), 0);
    ck_assert_int_eq(kart_shm_tracker_pid(), t); /* one tracker per process */
    close(p[1]);
    char c;
    ck_assert_int_eq(read(p[0], &c, 1), 0); /* EOF: nobody else holds p[1] */
    close(p[0]);
    ck_assert_int_eq(kart_shm_unlink(s), 0);
    ck_assert_int_eq(kart_shm_unlink(s2), 0);
    ck_assert_int_eq(kart_shm_close(s), 0);
    ck_assert_int_eq(kart_shm_close(s2), 0);
}
END_TEST

/* Names /dev/shm holds that kart generated for pid ("/kart-<pid>-…"). */
static int generated_left(pid_t pid)
{
    char prefix[64];
    int len = snprintf(prefix, sizeof(prefix), "kart-%ld-", (long)pid);
    DIR *d = opendir("/dev/shm");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, (size_t)len) == 0;
    closedir(d);
    return n;
}

START_TEST(tracker_survives_kills_at_random_instants)
{
    enum { KILLS = 20 };
    pid_t pids[KILLS];
    unsigned seed = (unsigned)getpid();
    for (int k = 0; k < KILLS; k++) {
        pids[k] = kt_fork();
        if (pids[k] == 0) {
            /* create (generated names, tracked), sometimes unlink, never
             * stop: the kill lands anywhere in this */
            for (unsigned i = 0;; i++) {
                kart_shm *s;
                if (kart_shm_create(&s, NULL, 4096, KART_SHM_TRACK) != 0)
                    _exit(1);
                if (i % 3 == 0)
                    kart_shm_unlink(s);
                kart_shm_close(s);
            }
        }
        usleep(1000 + rand_r(&seed) % 15000);
        ck_assert_int_eq(kill(pids[k], SIGKILL), 0);
        int st;
        kt_wait_child(pids[k], &st);
        ck_assert_msg(WIFSIGNALED(st), "creator %d failed before the kill", k);
    }
    int64_t end = kart_now_ns() + 10000 * KT_MS;
    for (int k = 0; k < KILLS; k++) {
        int left;
        while ((left = generated_left(pids[k])) > 0 && kart_now_ns() < end)
            usleep(5000);
        ck_assert_msg(left == 0, "%d names of creator %d leaked", left, k);
    }
}
END_TEST

static atomic_bool hammer_stop;

static void *hammer(void *arg)
{
    const char *name = arg;
    while (!atomic_load(&hammer_stop))
        if (kart_shm_track(name) != 0 || kart_shm_untrack(name) != 0)
            return (void *)1;
    return NULL;
}

START_TEST(fork_while_another_thread_uses_the_tracker)
{
    /* the name is never created: tracking it costs the tracker an ENOENT */
    char name[96];
    snprintf(name, sizeof(name), "%s", tname("busy"));
    ck_assert_int_eq(kart_shm_track(name), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hammer, name), 0);
    for (int i = 0; i < 100; i++) {
        pid_t pid = kt_fork();
        if (pid == 0) {
            alarm(5); /* a deadlock fails the test instead of hanging it */
            _exit(kart_shm_track(name) == 0 && kart_shm_untrack(name) == 0 ? 0 : 1);
        }
        reap_ok(pid);
    }
    atomic_store(&hammer_stop, true);
    void *r;
    ck_assert_int_eq(pthread_join(t, &r), 0);
    ck_assert_ptr_null(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shm");
    TCase *tc = tcase_create("named");
    tcase_add_test(tc, name_rules);
    tcase_add_test(tc, create_rejects_bad_arguments);
    tcase_add_test(tc, create_attach_share_bytes);
    tcase_add_test(tc, generated_names_are_unique);
    tcase_add_test(tc, attach_errors);
    tcase_add_test(tc, attach_read_only_refuses_writes);
    tcase_add_test(tc, attach_unlink_is_a_private_handoff);
    tcase_add_test(tc, named_across_fork_by_name);
    tcase_add_test(tc, null_handles);
    suite_add_tcase(s, tc);

    tc = tcase_create("anonymous");
    tcase_add_test(tc, anonymous_inherited_over_fork);
    tcase_add_test(tc, from_fd_checks_the_fd);
    tcase_add_test(tc, segment_passed_over_a_unix_socket);
    tcase_add_test(tc, fd_passing_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("tracker");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, tracker_unlinks_after_sigkill);
    tcase_add_test(tc, tracker_survives_kills_at_random_instants);
    tcase_add_test(tc, tracker_unlinks_after_exit_and_waits_for_children);
    tcase_add_test(tc, unlink_unregisters);
    tcase_add_test(tc, track_and_untrack_by_name);
    tcase_add_test(tc, tracker_holds_no_fds_of_its_creator);
    tcase_add_test(tc, fork_while_another_thread_uses_the_tracker);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

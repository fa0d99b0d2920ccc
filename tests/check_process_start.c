/* Description: kart/process.h — start methods and the end of a process:
 * contexts, the spawn method (registered functions in a fresh exec of the
 * program: arguments as bytes, names, the parent, daemons, a parent thread
 * holding a lock), arguments copied at create, kart_process_exit, the
 * bounded join at exit (the log line, SIGTERM then SIGKILL, the option),
 * and objects freed while their child runs (detached). */
#include "testutil.h"
#include "kt_fds.h"

#include "fault.h"

#include <kart/log.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* ---- helpers ---- */

/* Reads what a pipe holds until EOF into buf (NUL-terminated). */
static void read_all(int fd, char *buf, size_t size)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
}

static int join_code(kart_process *p)
{
    int code = INT32_MIN;
    ck_assert_int_eq(kart_process_join(p, 20000 * KT_MS), 0);
    ck_assert_int_eq(kart_process_exitcode(p, &code), 1);
    return code;
}

static const kart_context *spawn_ctx(void)
{
    const kart_context *ctx;
    ck_assert_int_eq(kart_context_get(KART_START_SPAWN, &ctx), 0);
    return ctx;
}

/* The loop tests run once per method that needs no fork of the caller:
 * _i 0 spawn, 1 fork server. */
static const kart_context *method_ctx(int i)
{
    const kart_context *ctx;
    ck_assert_int_eq(kart_context_get(i ? KART_START_FORKSERVER : KART_START_SPAWN, &ctx), 0);
    return ctx;
}

/* What a spawned test function is told: where to write, what to return. */
typedef struct job {
    int fd; /* unused when path is set */
    int code;
    char text[32];
    char path[64]; /* a file to append to: a fork server's child has none
                    * of the caller's descriptors */
} job;

/* Where a job's output goes: a new empty file, removed at once. */
static void job_file(job *j)
{
    snprintf(j->path, sizeof(j->path), "/tmp/kart-check-process-XXXXXX");
    int fd = mkstemp(j->path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

/* What the job wrote; removes the file. */
static void job_output(const job *j, char *buf, size_t size)
{
    int fd = open(j->path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    unlink(j->path);
    ssize_t n = read(fd, buf, size - 1);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    close(fd);
}

static int job_fd(const job *j)
{
    return j->path[0] ? open(j->path, O_WRONLY | O_APPEND) : j->fd;
}

static kart_process *start_job(const kart_context *ctx, kart_process_fn fn, const job *j,
                               bool daemon)
{
    kart_process *p;
    kart_process_options o = {.context = ctx, .arg_size = sizeof(*j), .daemon = daemon};
    ck_assert_int_eq(kart_process_create(&p, fn, (void *)j, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    return p;
}

/* Set by the parent before a spawn: a fresh exec never sees it. */
static int touched_in_parent;

/* ---- spawn functions ---- */

/* Writes who it is, who its parent is, and what it was given. */
static int spawn_report(void *arg)
{
    const job *j = arg;
    kart_process_info self, up;
    if (kart_process_current(&self) != 0 || kart_process_parent(&up) != 0)
        return 90;
    /* A child made here is named after this one. */
    kart_process *c;
    if (kart_process_create(&c, spawn_report, NULL, NULL) != 0)
        return 91;
    dprintf(job_fd(j), "%s|%s|%d|%d|%s|%d|%s|%d", j->text, self.name, (int)self.pid, (int)up.pid,
            up.name, touched_in_parent, kart_process_name(c), (int)self.daemon);
    kart_process_free(c);
    return j->code;
}
KART_PROCESS_FUNCTION(spawn_report)

static int spawn_raise(void *arg)
{
    (void)arg;
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
    return 0;
}
KART_PROCESS_FUNCTION(spawn_raise)

static int spawn_no_arg(void *arg)
{
    return arg == NULL ? 6 : 1;
}
KART_PROCESS_FUNCTION(spawn_no_arg)

/* In a fork child this mutex would stay locked by the parent's thread. */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static int spawn_trylock(void *arg)
{
    (void)arg;
    if (pthread_mutex_trylock(&held) != 0)
        return 1;
    pthread_mutex_unlock(&held);
    return 0;
}
KART_PROCESS_FUNCTION(spawn_trylock)

/* A daemon may not have children, whatever the start method. */
static int spawn_daemon_child(void *arg)
{
    (void)arg;
    kart_process *c;
    if (kart_process_create(&c, spawn_no_arg, NULL, NULL) != 0)
        return 1;
    int err = kart_process_start(c);
    kart_process_free(c);
    kart_process_info self;
    kart_process_current(&self);
    return err == -EPERM && self.daemon ? 0 : 2;
}
KART_PROCESS_FUNCTION(spawn_daemon_child)

/* A spawned child may fork children of its own (kart's fork handlers were
 * registered before it ran, even in this statically linked test). */
static int return_three(void *arg)
{
    (void)arg;
    return 3;
}

static int spawn_forks(void *arg)
{
    (void)arg;
    kart_process *c;
    int code = -1;
    if (kart_process_create(&c, return_three, NULL, NULL) != 0 || kart_process_start(c) != 0 ||
        kart_process_join(c, -1) != 0 || kart_process_exitcode(c, &code) != 1)
        return 1;
    kart_process_free(c);
    return 10 + code;
}
KART_PROCESS_FUNCTION(spawn_forks)

/* Never registered. */
static int not_registered(void *arg)
{
    (void)arg;
    return 0;
}

/* Two functions registered by hand under one name. */
static int same_a(void *arg)
{
    (void)arg;
    return 0;
}
static int same_b(void *arg)
{
    (void)arg;
    return 0;
}

/* ---- contexts ---- */

START_TEST(contexts)
{
    const kart_context *fork_ctx, *sp, *again;
    ck_assert_int_eq(kart_context_get(KART_START_FORK, &fork_ctx), 0);
    ck_assert_int_eq(kart_context_get(KART_START_SPAWN, &sp), 0);
    ck_assert_int_eq(kart_context_get(KART_START_SPAWN, &again), 0);
    ck_assert_ptr_eq(sp, again); /* one object per method, as Python's */
    ck_assert_ptr_ne(fork_ctx, sp);
    ck_assert_int_eq(kart_context_start_method(fork_ctx), KART_START_FORK);
    ck_assert_int_eq(kart_context_start_method(sp), KART_START_SPAWN);
    ck_assert_int_eq(kart_context_start_method(NULL), KART_START_FORK);
    ck_assert_int_eq(kart_context_get(KART_START_FORK, NULL), -EINVAL);
    ck_assert_int_eq(kart_context_get((kart_start_method)7, &again), -EINVAL);
    ck_assert_int_eq(kart_context_get((kart_start_method)-1, &again), -EINVAL);
    ck_assert_ptr_eq(again, sp); /* untouched on error */
}
END_TEST

/* Reports the default start method it was given. */
static int spawn_default_method(void *arg)
{
    (void)arg;
    return 10 + (int)kart_process_start_method();
}
KART_PROCESS_FUNCTION(spawn_default_method)

START_TEST(default_start_method)
{
    ck_assert_int_eq(kart_process_start_method(), KART_START_FORK);
    ck_assert_int_eq(kart_process_set_start_method((kart_start_method)3), -EINVAL);
    ck_assert_int_eq(kart_process_start_method(), KART_START_FORK);
    ck_assert_int_eq(kart_process_set_start_method(KART_START_SPAWN), 0);
    ck_assert_int_eq(kart_process_start_method(), KART_START_SPAWN);
    ck_assert_int_eq(kart_context_start_method(NULL), KART_START_SPAWN);
    /* A NULL context now means spawn: registration is needed. */
    kart_process *p;
    ck_assert_int_eq(kart_process_create(&p, not_registered, NULL, NULL), -ENOENT);
    ck_assert_int_eq(kart_process_create(&p, spawn_default_method, NULL, NULL), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 10 + KART_START_SPAWN); /* passed on */
    kart_process_free(p);
    /* An explicit context wins. */
    const kart_context *fork_ctx;
    ck_assert_int_eq(kart_context_get(KART_START_FORK, &fork_ctx), 0);
    kart_process_options o = {.context = fork_ctx};
    ck_assert_int_eq(kart_process_create(&p, not_registered, NULL, &o), 0);
    kart_process_free(p);
    ck_assert_int_eq(kart_process_set_start_method(KART_START_FORK), 0);
    ck_assert_int_eq(kart_process_create(&p, spawn_default_method, NULL, NULL), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 10 + KART_START_FORK);
    kart_process_free(p);
}
END_TEST

START_TEST(create_errors)
{
    kart_process *p = NULL;
    job j = {0};
    kart_process_options sp = {.context = spawn_ctx()};
    /* A pointer cannot cross an exec: bytes only. */
    ck_assert_int_eq(kart_process_create(&p, spawn_report, &j, &sp), -EINVAL);
    /* arg_size without arg, under either method. */
    kart_process_options sized = {.context = spawn_ctx(), .arg_size = 4};
    ck_assert_int_eq(kart_process_create(&p, spawn_report, NULL, &sized), -EINVAL);
    sized.context = NULL;
    ck_assert_int_eq(kart_process_create(&p, spawn_report, NULL, &sized), -EINVAL);
    ck_assert_int_eq(kart_process_create(&p, not_registered, NULL, &sp), -ENOENT);
    static kart_process_entry a = {"same", same_a, NULL}, b = {"same", same_b, NULL};
    kart_process_register(&a);
    kart_process_register(&b);
    kart_process_register(NULL); /* ignored */
    ck_assert_int_eq(kart_process_create(&p, same_a, NULL, &sp), -EEXIST);
    ck_assert_ptr_null(p);
    /* Under fork, neither matters. */
    ck_assert_int_eq(kart_process_create(&p, not_registered, NULL, NULL), 0);
    kart_process_free(p);
}
END_TEST

/* ---- spawn ---- */

START_TEST(spawn_runs_registered_function)
{
    touched_in_parent = 1;
    job j = {.code = 42};
    job_file(&j);
    snprintf(j.text, sizeof(j.text), "hello");
    kart_process *p = start_job(method_ctx(_i), spawn_report, &j, false);
    job saved = j;
    memset(&j, 0, sizeof(j)); /* copied at create */
    ck_assert_int_eq(join_code(p), 42);
    char buf[512], name[300], pname[300], cname[300], text[64];
    int pid, ppid, touched, daemon;
    job_output(&saved, buf, sizeof(buf));
    ck_assert_int_eq(sscanf(buf, "%63[^|]|%299[^|]|%d|%d|%299[^|]|%d|%299[^|]|%d", text, name, &pid,
                            &ppid, pname, &touched, cname, &daemon),
                     8);
    ck_assert_str_eq(text, "hello");
    ck_assert_str_eq(name, kart_process_name(p));
    ck_assert_int_eq(pid, kart_process_pid(p));
    ck_assert_int_eq(ppid, getpid());
    ck_assert_str_eq(pname, "MainProcess");
    ck_assert_int_eq(touched, 0); /* a fresh exec, not a copy */
    char want[320];
    snprintf(want, sizeof(want), "%s:1", name);
    ck_assert_str_eq(cname, want);
    ck_assert_int_eq(daemon, 0);
    kart_process_free(p);
}
END_TEST

START_TEST(spawn_exit_codes_and_signals)
{
    kart_process *p;
    kart_process_options o = {.context = method_ctx(_i), .name = "no-arg"};
    ck_assert_int_eq(kart_process_create(&p, spawn_no_arg, NULL, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 6);
    ck_assert_str_eq(kart_process_name(p), "no-arg");
    kart_process_free(p);
    o.name = NULL;
    ck_assert_int_eq(kart_process_create(&p, spawn_raise, NULL, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), -SIGABRT);
    ck_assert_int_eq(kart_process_kill(p), 0); /* ended: nothing sent */
    kart_process_free(p);
    ck_assert_int_eq(kart_process_create(&p, spawn_forks, NULL, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 13);
    kart_process_free(p);
}
END_TEST

static void *hold(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&held);
    pause();
    return NULL;
}

/* A thread of the parent holds a lock for ever: a fork child would find it
 * locked, a spawned one does not. */
START_TEST(spawn_with_a_thread_holding_a_lock)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hold, NULL), 0);
    while (pthread_mutex_trylock(&held) == 0) {
        pthread_mutex_unlock(&held);
        usleep(1000);
    }
    kart_process *p;
    kart_process_options o = {.context = method_ctx(_i)};
    ck_assert_int_eq(kart_process_create(&p, spawn_trylock, NULL, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 0);
    kart_process_free(p);
    /* The same function forked finds it held. */
    ck_assert_int_eq(kart_process_create(&p, spawn_trylock, NULL, NULL), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 1);
    kart_process_free(p);
    pthread_cancel(t);
    pthread_join(t, NULL);
}
END_TEST

START_TEST(spawn_daemon)
{
    kart_process *p;
    kart_process_options o = {.context = method_ctx(_i), .daemon = true};
    ck_assert_int_eq(kart_process_create(&p, spawn_daemon_child, NULL, &o), 0);
    ck_assert(kart_process_daemon(p));
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 0);
    kart_process_free(p);
}
END_TEST

/* The memfd, the sentinel pipe and posix_spawn fail: the error, no fd
 * left, no child, and the object starts afterwards. */
START_TEST(spawn_start_failures)
{
    kart_process *p;
    kart_process_options o = {.context = spawn_ctx()};
    ck_assert_int_eq(kart_process_create(&p, spawn_no_arg, NULL, &o), 0);
    struct {
        enum kart__fault_site site;
        int err;
        bool no_pidfd;
    } steps[] = {
        {KART__SYS_memfd_create, EMFILE, false},
        {KART__SYS_posix_spawn, ENOMEM, false},
        {KART__SYS_pipe2, EMFILE, true},
        {KART__SYS_posix_spawn, EAGAIN, true},
    };
    int fds = kt_open_fds();
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        kart__fault_reset();
        if (steps[i].no_pidfd)
            kart__fault_fail(KART__SYS_pidfd_open, 1, KART__FAULT_ALWAYS, ENOSYS);
        ck_assert_int_eq(kart__fault_fail(steps[i].site, 1, 1, steps[i].err), 0);
        ck_assert_int_eq(kart_process_start(p), -steps[i].err);
        ck_assert_uint_eq(kart__fault_fired(steps[i].site), 1);
        ck_assert_int_eq(kt_open_fds(), fds);
        ck_assert_int_eq(kart_process_active_children(NULL, 0), 0);
        ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
        ck_assert_int_eq(errno, ECHILD);
    }
    /* The pipe sentinel (no pidfd_open) works for a spawned child too. */
    kart__fault_reset();
    kart__fault_fail(KART__SYS_pidfd_open, 1, KART__FAULT_ALWAYS, ENOSYS);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 6);
    kart__fault_reset();
    kart_process_free(p);
    ck_assert_int_eq(kt_open_fds(), fds);
}
END_TEST

/* A program started with a KART_PROCESS_SPAWN that kart did not write
 * stops before main() with 70 (EX_SOFTWARE) and a line on stderr. */
START_TEST(spawn_bad_marker)
{
    const char *values[] = {"KART_PROCESS_SPAWN=abc", "KART_PROCESS_SPAWN=900",
                            "KART_PROCESS_SPAWN=0"};
    for (size_t i = 0; i < 3; i++) {
        int err[2];
        ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
        kart_program_fd fds[] = {{2, err[1]}, {0, KART_PROGRAM_DEVNULL}};
        kart_program_options o = {.fds = fds, .nfds = 2};
        char *envp[] = {(char *)values[i], NULL};
        kart_process *p;
        ck_assert_int_eq(kart_process_create_program(&p, "/proc/self/exe", NULL, envp, &o), 0);
        ck_assert_int_eq(kart_process_start(p), 0);
        close(err[1]);
        ck_assert_int_eq(join_code(p), 70);
        char buf[256];
        read_all(err[0], buf, sizeof(buf));
        close(err[0]);
        ck_assert_msg(strstr(buf, "kart: spawned child:"), "stderr: %s", buf);
        kart_process_free(p);
    }
}
END_TEST

/* ---- the fork server ---- */

static int report_ppid(void *arg)
{
    const job *j = arg;
    return dprintf(job_fd(j), "%d", (int)getppid()) > 0 ? 0 : 1;
}
KART_PROCESS_FUNCTION(report_ppid)

__attribute__((noreturn)) static int fs_block(void *arg)
{
    (void)arg;
    for (;;)
        pause();
}
KART_PROCESS_FUNCTION(fs_block)

static pid_t server_of_next_child(void)
{
    job j = {0};
    job_file(&j);
    kart_process *p = start_job(method_ctx(1), report_ppid, &j, false);
    ck_assert_int_eq(join_code(p), 0);
    kart_process_free(p);
    char buf[32];
    job_output(&j, buf, sizeof(buf));
    return (pid_t)atoi(buf);
}

/* One server forks every child; a server that died is replaced. */
START_TEST(forkserver_one_server)
{
    pid_t server = server_of_next_child();
    ck_assert_int_ne(server, getpid());
    ck_assert_int_eq(server_of_next_child(), server);
    ck_assert_int_eq(kill(server, SIGKILL), 0);
    ck_assert_int_eq(waitpid(server, NULL, 0), server);
    pid_t again = server_of_next_child();
    ck_assert_int_ne(again, server);
    ck_assert_int_eq(server_of_next_child(), again);
}
END_TEST

/* A fork server's child is joined, timed out, terminated and killed as
 * any other. */
START_TEST(forkserver_join_and_signals)
{
    kart_process *p;
    kart_process_options o = {.context = method_ctx(1)};
    ck_assert_int_eq(kart_process_create(&p, fs_block, NULL, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(kart_process_is_alive(p), 1);
    ck_assert_int_eq(kart_process_join(p, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_process_join(p, 30 * KT_MS), -ETIMEDOUT);
    kart_process *list[2];
    ck_assert_int_eq(kart_process_active_children(list, 2), 1);
    ck_assert_ptr_eq(list[0], p);
    ck_assert_int_eq(kart_process_terminate(p), 0);
    ck_assert_int_eq(join_code(p), -SIGTERM);
    ck_assert_int_eq(kart_process_is_alive(p), 0);
    ck_assert_int_eq(kart_process_kill(p), 0);
    ck_assert_int_eq(kart_process_signal(p, 0), -ESRCH);
    ck_assert(kart_process_sentinel(p) >= 0);
    kart_process_free(p);
    ck_assert_int_eq(kart_process_create(&p, fs_block, NULL, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(kart_process_kill(p), 0);
    ck_assert_int_eq(kart_process_join(p, -1), 0);
    int code;
    ck_assert_int_eq(kart_process_exitcode(p, &code), 1);
    ck_assert_int_eq(code, -SIGKILL);
    kart_process_free(p);
}
END_TEST

/* The request's memfd and status socket fail: the error, no fd left. */
START_TEST(forkserver_start_failures)
{
    kart_process *p;
    kart_process_options o = {.context = method_ctx(1)};
    ck_assert_int_eq(kart_process_create(&p, spawn_no_arg, NULL, &o), 0);
    ck_assert_int_eq(kart_process_start(p), 0); /* the server starts */
    ck_assert_int_eq(join_code(p), 6);
    kart_process_free(p);
    ck_assert_int_eq(kart_process_create(&p, spawn_no_arg, NULL, &o), 0);
    int fds = kt_open_fds();
    kart__fault_reset();
    ck_assert_int_eq(kart__fault_fail(KART__SYS_memfd_create, 1, 1, EMFILE), 0);
    ck_assert_int_eq(kart_process_start(p), -EMFILE);
    ck_assert_int_eq(kt_open_fds(), fds);
    kart__fault_reset();
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 6);
    kart_process_free(p);
}
END_TEST

/* ---- arguments copied at create (fork) ---- */

static int check_bytes(void *arg)
{
    const job *j = arg;
    return strcmp(j->text, "original") == 0 ? j->code : 1;
}

START_TEST(fork_arg_copied)
{
    job j = {.code = 9};
    snprintf(j.text, sizeof(j.text), "original");
    kart_process *p;
    kart_process_options o = {.arg_size = sizeof(j)};
    ck_assert_int_eq(kart_process_create(&p, check_bytes, &j, &o), 0);
    snprintf(j.text, sizeof(j.text), "changed");
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(join_code(p), 9);
    kart_process_free(p);
}
END_TEST

/* ---- kart_process_exit ---- */

static int atexit_fd = -1;

static void parent_atexit(void)
{
    if (atexit_fd >= 0)
        kt_write(atexit_fd, "atexit;");
}

static int slow_writer(void *arg)
{
    usleep(100 * 1000);
    kt_write((int)(intptr_t)arg, "grandchild;");
    return 0;
}

/* Leaves output in stdio's buffer and a running child, then ends. */
static int ends_with(void *arg)
{
    int how = (int)(intptr_t)arg;
    kart_process *g;
    if (kart_process_create(&g, slow_writer, (void *)(intptr_t)atexit_fd, NULL) != 0 ||
        kart_process_start(g) != 0)
        return 1;
    FILE *f = fdopen(dup(atexit_fd), "w");
    if (!f)
        return 1;
    fputs("buffered;", f);
    if (how == 0)
        kart_process_exit(5);
    exit(4); /* runs the parent's atexit handler: why kart_process_exit exists */
}

static void run_ending(int how, const char *want, int want_code)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t helper = kt_fork();
    if (helper == 0) {
        close(out[0]);
        atexit_fd = out[1];
        atexit(parent_atexit);
        kart_process *p;
        if (kart_process_create(&p, ends_with, (void *)(intptr_t)how, NULL) != 0 ||
            kart_process_start(p) != 0)
            _exit(90);
        int code = -1;
        if (kart_process_join(p, 20000 * KT_MS) != 0 || kart_process_exitcode(p, &code) != 1)
            _exit(91);
        atexit_fd = -1;
        _exit(code == want_code ? 0 : 92);
    }
    close(out[1]);
    int status;
    ck_assert_int_eq(waitpid(helper, &status, 0), helper);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    char buf[128];
    read_all(out[0], buf, sizeof(buf));
    close(out[0]);
    ck_assert_str_eq(buf, want);
}

START_TEST(process_exit_skips_atexit)
{
    /* The grandchild is joined first, then stdio flushed; no atexit. */
    run_ending(0, "grandchild;buffered;", 5);
}
END_TEST

START_TEST(plain_exit_runs_atexit)
{
    /* exit(): the inherited handler runs (after kart's, which joins:
     * handlers run in reverse order), stdio is flushed last. */
    run_ending(1, "grandchild;atexit;buffered;", 4);
}
END_TEST

/* ---- the bounded join at exit ---- */

static int log_fd = -1;

static void to_pipe(const kart_log_record *r, void *arg)
{
    (void)arg;
    dprintf(log_fd, "%s: %s\n", r->module, r->message);
}

/* Blocks for ever (as in a queue get); ignoring SIGTERM when arg is set. */
__attribute__((noreturn)) static int blocked(void *arg)
{
    signal(SIGTERM, arg ? SIG_IGN : SIG_DFL);
    for (;;)
        pause();
}

START_TEST(exit_timeout_setting)
{
    ck_assert_int_eq(kart_process_exit_timeout(), KART_PROCESS_EXIT_TIMEOUT_DEFAULT);
    ck_assert_int_eq(KART_PROCESS_EXIT_TIMEOUT_DEFAULT, 30000 * KT_MS);
    kart_process_set_exit_timeout(5 * KT_MS);
    ck_assert_int_eq(kart_process_exit_timeout(), 5 * KT_MS);
    kart_process_set_exit_timeout(-7);
    ck_assert_int_eq(kart_process_exit_timeout(), -1);
    kart_process_set_exit_timeout(0);
    ck_assert_int_eq(kart_process_exit_timeout(), 0);
}
END_TEST

/* A helper process starts a blocked child and calls exit(): the exit ends
 * after the timeout, the child is terminated, the log names it. */
static void exit_with_blocked_child(bool ignore_term)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int logp[2], pids[2];
    ck_assert_int_eq(pipe(logp), 0);
    ck_assert_int_eq(pipe(pids), 0);
    int64_t t0 = kart_now_ns();
    pid_t helper = kt_fork();
    if (helper == 0) {
        close(logp[0]);
        close(pids[0]);
        log_fd = logp[1];
        kart_log_set_handler(to_pipe, NULL, KART_LOG_WARNING, NULL, NULL);
        kart_process_set_exit_timeout(200 * KT_MS);
        kart_process *p;
        kart_process_options o = {.name = "stuck"};
        if (kart_process_create(&p, blocked, ignore_term ? (void *)1 : NULL, &o) != 0 ||
            kart_process_start(p) != 0)
            _exit(90);
        pid_t pid = kart_process_pid(p);
        if (write(pids[1], &pid, sizeof(pid)) != sizeof(pid))
            _exit(91);
        usleep(50 * 1000); /* let it set its SIGTERM disposition */
        exit(0);
    }
    /* The write end is the helper's alone: a helper whose start failed
     * (make check-faults: fork:1:EAGAIN) ends it, and the read says so
     * instead of waiting for ever for a pid that cannot come. */
    close(logp[1]);
    close(pids[1]);
    pid_t child = 0;
    ssize_t got = read(pids[0], &child, sizeof(child));
    int status;
    ck_assert_int_eq(waitpid(helper, &status, 0), helper);
    ck_assert_msg(got == (ssize_t)sizeof(child), "the helper sent no pid (exit status 0x%x)",
                  status);
    int64_t took = kart_now_ns() - t0;
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_ge(took, 200 * KT_MS);
    ck_assert_int_lt(took, (ignore_term ? 6000 : 5000) * KT_MS);
    if (ignore_term)
        ck_assert_int_ge(took, 1200 * KT_MS); /* the second of grace */
    /* The helper reaped it: it is gone. */
    ck_assert_int_eq(kill(child, 0), -1);
    ck_assert_int_eq(errno, ESRCH);
    char buf[2048];
    read_all(logp[0], buf, sizeof(buf));
    close(logp[0]);
    close(pids[0]);
    char want[128];
    snprintf(want, sizeof(want), "process: exit: child stuck (pid %d) still running", (int)child);
    ck_assert_msg(strstr(buf, want), "log: %s", buf);
    ck_assert_msg(strstr(buf, "(200 ms): sending SIGTERM"), "log: %s", buf);
    ck_assert_int_eq(strstr(buf, "SIGKILL") != NULL, ignore_term);
}

START_TEST(exit_terminates_a_blocked_child)
{
    exit_with_blocked_child(false);
}
END_TEST

START_TEST(exit_kills_a_child_ignoring_sigterm)
{
    exit_with_blocked_child(true);
}
END_TEST

/* Negative: Python's unbounded join; a slow child is waited for. */
START_TEST(exit_waits_forever_when_asked)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t helper = kt_fork();
    if (helper == 0) {
        close(out[0]);
        kart_process_set_exit_timeout(-1);
        kart_process *p;
        if (kart_process_create(&p, slow_writer, (void *)(intptr_t)out[1], NULL) != 0 ||
            kart_process_start(p) != 0)
            _exit(90);
        exit(0);
    }
    close(out[1]);
    int status;
    ck_assert_int_eq(waitpid(helper, &status, 0), helper);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char buf[64];
    read_all(out[0], buf, sizeof(buf));
    close(out[0]);
    ck_assert_str_eq(buf, "grandchild;");
}
END_TEST

/* ---- freeing a running child's object ---- */

static int wait_fd(void *arg)
{
    char c;
    return read((int)(intptr_t)arg, &c, 1) == 1 ? c : 99;
}

START_TEST(free_detaches_a_running_child)
{
    int go[2];
    ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
    kart_process *p, *q;
    ck_assert_int_eq(kart_process_create(&p, wait_fd, (void *)(intptr_t)go[0], NULL), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(kart_process_create(&q, wait_fd, (void *)(intptr_t)go[0], NULL), 0);
    ck_assert_int_eq(kart_process_start(q), 0);
    pid_t pid = kart_process_pid(p);
    kart_process_free(p); /* runs on, not listed */
    ck_assert_int_eq(kill(pid, 0), 0);
    kart_process *list[4] = {0};
    ck_assert_int_eq(kart_process_active_children(list, 4), 1);
    ck_assert_ptr_eq(list[0], q);
    kt_write(go[1], "ab");
    int c = join_code(q); /* p and q each read one byte */
    ck_assert(c == 'a' || c == 'b');
    kart_process_free(q);
    /* Once it ends, kart reaps it: the pid is no longer a child. */
    int64_t until = kart_now_ns() + 10000 * KT_MS;
    siginfo_t info;
    for (;;) {
        ck_assert_int_eq(kart_process_active_children(NULL, 0), 0);
        memset(&info, 0, sizeof(info));
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
            break;
        ck_assert_int_lt(kart_now_ns(), until);
        usleep(1000);
    }
    ck_assert_int_eq(errno, ECHILD);
    close(go[0]);
    close(go[1]);
}
END_TEST

/* The next start reaps a detached child that has ended. */
START_TEST(start_reaps_detached_children)
{
    int go[2];
    ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
    kart_process *p, *q;
    ck_assert_int_eq(kart_process_create(&p, wait_fd, (void *)(intptr_t)go[0], NULL), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    pid_t pid = kart_process_pid(p);
    kart_process_free(p); /* still runs: detached */
    kt_write(go[1], "x");
    close(go[0]);
    close(go[1]);
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    /* Wait for its end without reaping it. */
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);
    ck_assert_int_eq(info.si_pid, pid);
    ck_assert_int_eq(kart_process_create(&q, return_three, NULL, NULL), 0);
    ck_assert_int_eq(kart_process_start(q), 0);
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT), -1);
    ck_assert_int_eq(errno, ECHILD);
    ck_assert_int_eq(join_code(q), 3);
    kart_process_free(q);
}
END_TEST

/* A detached child is still joined at exit. */
START_TEST(detached_child_joined_at_exit)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t helper = kt_fork();
    if (helper == 0) {
        close(out[0]);
        kart_process *p;
        if (kart_process_create(&p, slow_writer, (void *)(intptr_t)out[1], NULL) != 0 ||
            kart_process_start(p) != 0)
            _exit(90);
        kart_process_free(p);
        exit(0);
    }
    close(out[1]);
    int status;
    ck_assert_int_eq(waitpid(helper, &status, 0), helper);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char buf[64];
    read_all(out[0], buf, sizeof(buf));
    close(out[0]);
    ck_assert_str_eq(buf, "grandchild;");
}
END_TEST

static Suite *start_suite(void)
{
    Suite *s = suite_create("process-start");
    TCase *ctx = tcase_create("contexts");
    tcase_add_test(ctx, contexts);
    tcase_add_test(ctx, create_errors);
    tcase_add_test(ctx, default_start_method);
    tcase_add_test(ctx, fork_arg_copied);
    suite_add_tcase(s, ctx);

    TCase *sp = tcase_create("spawn");
    tcase_add_loop_test(sp, spawn_runs_registered_function, 0, 2);
    tcase_add_loop_test(sp, spawn_exit_codes_and_signals, 0, 2);
    tcase_add_loop_test(sp, spawn_with_a_thread_holding_a_lock, 0, 2);
    tcase_add_loop_test(sp, spawn_daemon, 0, 2);
    tcase_add_test(sp, spawn_start_failures);
    tcase_add_test(sp, spawn_bad_marker);
    tcase_add_test(sp, forkserver_one_server);
    tcase_add_test(sp, forkserver_join_and_signals);
    tcase_add_test(sp, forkserver_start_failures);
    suite_add_tcase(s, sp);

    TCase *end = tcase_create("exit");
    tcase_set_timeout(end, 30);
    tcase_add_test(end, process_exit_skips_atexit);
    tcase_add_test(end, plain_exit_runs_atexit);
    tcase_add_test(end, exit_timeout_setting);
    tcase_add_test(end, exit_terminates_a_blocked_child);
    tcase_add_test(end, exit_kills_a_child_ignoring_sigterm);
    tcase_add_test(end, exit_waits_forever_when_asked);
    tcase_add_test(end, free_detaches_a_running_child);
    tcase_add_test(end, detached_child_joined_at_exit);
    tcase_add_test(end, start_reaps_detached_children);
    suite_add_tcase(s, end);
    return s;
}

int main(void)
{
    return kt_run(start_suite());
}

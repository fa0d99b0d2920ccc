/*
 * core/process/process_spawn.c — start methods as context objects, and the
 * spawn method: a registered function run in a fresh exec of this program.
 *
 * The parent writes what the child needs (the function's registered name,
 * the child's name and identity, its parent's pid and name, the daemon
 * flag, the argument's bytes) into a memfd, and starts /proc/self/exe with
 * posix_spawn (no fork handlers, no copy of a threaded parent's memory:
 * safe whatever the parent's threads hold), the memfd inherited and its
 * number in the environment variable KART_PROCESS_SPAWN. In the child,
 * KART_PROCESS_FUNCTION()'s constructors register the program's functions
 * and then call kart_process_dispatch(), which finds the function by name,
 * runs it, and ends the process before main() would run.
 */
#include "fault.h"
#include "process_private.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#include <sys/mman.h>
#include <unistd.h>

extern char **environ;

#define SPAWN_ENV "KART_PROCESS_SPAWN"
#define SPAWN_MAGIC "KARTSPW2"
#define NAME_MAX_ 4096 /* a registered function's name, in the message */

/* ---- contexts ---- */

struct kart_context {
    kart_start_method method;
};

static const struct kart_context contexts[] = {
    {KART_START_FORK},
    {KART_START_SPAWN},
    {KART_START_FORKSERVER},
};

KART_API int kart_context_get(kart_start_method method, const kart_context **out)
{
    if (!out || (unsigned)method >= sizeof(contexts) / sizeof(contexts[0]))
        return -EINVAL;
    *out = &contexts[method];
    return 0;
}

static _Atomic int default_method = KART_START_FORK;

KART_API kart_start_method kart_context_start_method(const kart_context *ctx)
{
    return ctx ? ctx->method : kart_process_start_method();
}

KART_API int kart_process_set_start_method(kart_start_method method)
{
    if ((unsigned)method >= sizeof(contexts) / sizeof(contexts[0]))
        return -EINVAL;
    atomic_store(&default_method, (int)method);
    return 0;
}

KART_API kart_start_method kart_process_start_method(void)
{
    return (kart_start_method)atomic_load(&default_method);
}

/* ---- the registry ---- */

/* Pushed by constructors (one thread), read by any: a lock-free stack. */
static _Atomic(kart_process_entry *) registry;

KART_API void kart_process_register(kart_process_entry *e)
{
    if (!e || !e->name || !e->fn)
        return;
    kart_process_entry *head = atomic_load(&registry);
    do
        e->next_ = head;
    while (!atomic_compare_exchange_weak(&registry, &head, e));
}

int kart__proc_spawn_lookup(kart_process_fn fn, const kart_process_entry **out)
{
    const kart_process_entry *found = NULL;
    for (kart_process_entry *e = atomic_load(&registry); e; e = e->next_)
        if (e->fn == fn) {
            found = e;
            break;
        }
    if (!found)
        return -ENOENT;
    if (strlen(found->name) > NAME_MAX_)
        return -ENOENT;
    for (kart_process_entry *e = atomic_load(&registry); e; e = e->next_)
        if (e->fn != fn && strcmp(e->name, found->name) == 0)
            return -EEXIST;
    *out = found;
    return 0;
}

kart_process_entry *kart__proc_registry_head(void)
{
    return atomic_load(&registry);
}

static const kart_process_entry *find_name(const char *name)
{
    for (kart_process_entry *e = atomic_load(&registry); e; e = e->next_)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* ---- the message ---- */

struct spawn_msg {
    char magic[8];
    int32_t parent_pid;
    uint32_t daemon;
    uint32_t start_method; /* the parent's default */
    uint32_t fn_len, name_len, ident_len, pname_len;
    uint64_t arg_size;
    uint32_t key_len; /* the authentication key, after the argument */
    uint32_t pad_;
};

static int write_all(int fd, const void *buf, size_t len)
{
    const char *b = buf;
    while (len) {
        ssize_t n = write(fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int kart__proc_write_msg(int fd, const kart_process *p)
{
    const char *pname = kart__proc_current_name();
    unsigned char key[KART_PROCESS_AUTHKEY_MAX];
    size_t key_len = sizeof(key);
    if (kart_process_authkey(key, &key_len) < 0)
        key_len = 0;
    struct spawn_msg m = {
        .parent_pid = (int32_t)getpid(),
        .daemon = p->daemon,
        .start_method = (uint32_t)kart_process_start_method(),
        .fn_len = (uint32_t)strlen(p->entry->name),
        .name_len = (uint32_t)strlen(p->name),
        .ident_len = (uint32_t)strlen(p->ident),
        .pname_len = (uint32_t)strlen(pname),
        .arg_size = p->arg_size,
        .key_len = (uint32_t)key_len,
    };
    memcpy(m.magic, SPAWN_MAGIC, sizeof(m.magic));
    int err = write_all(fd, &m, sizeof(m));
    if (!err)
        err = write_all(fd, p->entry->name, m.fn_len);
    if (!err)
        err = write_all(fd, p->name, m.name_len);
    if (!err)
        err = write_all(fd, p->ident, m.ident_len);
    if (!err)
        err = write_all(fd, pname, m.pname_len);
    if (!err && p->arg_size)
        err = write_all(fd, p->arg_copy, p->arg_size);
    if (!err && key_len)
        err = write_all(fd, key, key_len);
    explicit_bzero(key, sizeof(key));
    return err;
}

char **kart__proc_child_env(const char *var, int fd)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    size_t len = strlen(var);
    char **env = malloc((n + 2) * sizeof(char *) + len + 16);
    if (!env)
        return NULL;
    char *marker = (char *)(env + n + 2);
    snprintf(marker, len + 16, "%s=%d", var, fd);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], SPAWN_ENV "=", sizeof(SPAWN_ENV)) != 0 &&
            strncmp(environ[i], KART__FORKSERVER_ENV "=", sizeof(KART__FORKSERVER_ENV)) != 0)
            env[k++] = environ[i];
    env[k++] = marker;
    env[k] = NULL;
    return env;
}

int kart__proc_start_spawn_fn(kart_process *p)
{
    int fd = kart__sys_memfd_create("kart-spawn", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = kart__proc_write_msg(fd, p);
    char **env = err ? NULL : kart__proc_child_env(SPAWN_ENV, fd);
    if (!err && !env)
        err = -ENOMEM;
    if (!err) {
        char *const argv[] = {program_invocation_name, NULL};
        err = kart__proc_start_exec(p, "/proc/self/exe", argv, env, fd);
    }
    free(env);
    close(fd);
    return err;
}

/* ---- the child ---- */

/* What the child read, kept between the dispatchers of several images. */
static struct {
    bool read, done;
    struct spawn_msg m;
    char *fn, *name, *ident, *pname;
    void *arg;
} in;

__attribute__((noreturn)) static void spawn_failed(const char *why)
{
    /* The log is silent by default, and this child can do nothing else:
     * say it on stderr, with an exit code of its own (EX_SOFTWARE). */
    dprintf(STDERR_FILENO, "kart: spawned child: %s\n", why);
    _exit(70);
}

static char *read_str(int fd, off_t *off, uint32_t len)
{
    char *s = malloc((size_t)len + 1);
    if (!s || pread(fd, s, len, *off) != (ssize_t)len)
        spawn_failed("cannot read the parent's message");
    s[len] = '\0';
    *off += len;
    return s;
}

static void read_msg_fd(long fd)
{
    if (pread((int)fd, &in.m, sizeof(in.m), 0) != (ssize_t)sizeof(in.m) ||
        memcmp(in.m.magic, SPAWN_MAGIC, sizeof(in.m.magic)) != 0)
        spawn_failed("cannot read the parent's message");
    if (in.m.fn_len > NAME_MAX_ || in.m.name_len > 255 || in.m.ident_len > 127 ||
        in.m.pname_len > 255 || in.m.arg_size > SIZE_MAX / 2 ||
        in.m.key_len > KART_PROCESS_AUTHKEY_MAX)
        spawn_failed("malformed message from the parent");
    off_t off = sizeof(in.m);
    in.fn = read_str((int)fd, &off, in.m.fn_len);
    in.name = read_str((int)fd, &off, in.m.name_len);
    in.ident = read_str((int)fd, &off, in.m.ident_len);
    in.pname = read_str((int)fd, &off, in.m.pname_len);
    if (in.m.arg_size) {
        /* malloc's alignment suits any type. */
        in.arg = malloc((size_t)in.m.arg_size);
        size_t got = 0;
        while (in.arg && got < in.m.arg_size) {
            ssize_t n =
                pread((int)fd, (char *)in.arg + got, (size_t)in.m.arg_size - got, off + (off_t)got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (!in.arg || got != in.m.arg_size)
            spawn_failed("cannot read the argument");
    }
    if (in.m.key_len) {
        unsigned char key[KART_PROCESS_AUTHKEY_MAX];
        if (pread((int)fd, key, in.m.key_len, off + (off_t)in.m.arg_size) != (ssize_t)in.m.key_len)
            spawn_failed("cannot read the authentication key");
        kart_process_set_authkey(key, in.m.key_len);
        explicit_bzero(key, sizeof(key));
    }
    close((int)fd);
    in.read = true;
}

static void read_msg(const char *value)
{
    char *end;
    long fd = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || fd < 0 || fd > INT32_MAX)
        spawn_failed("bad " SPAWN_ENV " value");
    read_msg_fd(fd);
    /* Programs this child starts must not take themselves for spawned. */
    unsetenv(SPAWN_ENV);
}

/* Runs the function the message names, then ends the process. parent_is_
 * ppid: the message's parent made this process (spawn), so a daemon's
 * death signal can be tied to it; a fork server's child has the server for
 * a parent instead. */
__attribute__((noreturn)) static void run_child(const kart_process_entry *e, bool parent_is_ppid)
{
    in.done = true;
    pid_t parent = (pid_t)in.m.parent_pid;
    if (in.m.daemon && parent_is_ppid) {
#if defined(__linux__)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        if (getppid() != parent)
            raise(SIGKILL);
    }
    kart__proc_child_setup(in.m.daemon != 0, -1);
    kart_process_set_start_method((kart_start_method)in.m.start_method);
    kart__proc_become(in.ident, in.name, parent, in.pname);
    int code = e->fn(in.arg);
    kart_process_exit(code);
}

void kart__proc_run_message(int fd)
{
    read_msg_fd(fd);
    const kart_process_entry *e = find_name(in.fn);
    if (!e)
        spawn_failed("the function is not registered in the fork server");
    run_child(e, false);
}

KART_API void kart_process_dispatch(void)
{
    if (in.done)
        return;
    kart__proc_forkserver_dispatch(); /* returns unless this is the server */
    if (!in.read) {
        const char *value = getenv(SPAWN_ENV);
        if (!value)
            return;
        read_msg(value);
    }
    const kart_process_entry *e = find_name(in.fn);
    if (!e)
        return; /* registered by a later image's constructors */
    run_child(e, true);
}

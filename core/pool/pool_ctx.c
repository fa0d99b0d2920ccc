/*
 * core/pool/pool_ctx.c — process pools whose workers a spawn or
 * forkserver context starts (kart_pool_options.context), as Python's
 * get_context("spawn").Pool() does: safe in a threaded program, since no
 * worker is a fork of the caller.
 *
 * A spawned worker shares nothing with the caller but what it is sent:
 *  - the arena (jobs, rings, arguments, results) lives in a memfd, which
 *    the worker gets through kart_process_options.fds and maps at the
 *    caller's address (MAP_FIXED_NOREPLACE): the arena holds pointers
 *    into itself, which then mean the same in every process;
 *  - a copy of the kart_pool structure, whose process-local pointers the
 *    worker replaces with its own (the engine's hooks, the initializer);
 *  - the watcher's eventfd, at the same number (kart__pool_proc_notify);
 *  - task functions by name: a job holds the caller's address of its
 *    function, which means nothing in a fresh exec (another load
 *    address). Tasks must be registered with KART_POOL_TASK(); the worker
 *    is sent the registry as (caller's address, name) pairs and maps each
 *    address to its own function of that name. Submitting an unregistered
 *    function is refused (-ENOENT) before anything is queued, and a
 *    worker that meets an address it cannot map fails the item with
 *    -ENOENT instead of calling it.
 * Workers are kart processes (daemons: they die with the caller); the
 * watcher (pool_proc.c) watches their sentinels and reaps them through
 * kart_process_join, so crash handling and replacement are the same as
 * for forked workers.
 */
#include "fault.h"
#include "pool_private.h"

#include <kart/process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct kart__pool_fnmap {
    uint64_t theirs; /* the caller's address */
    kart_task_fn ours;
} kart__pool_fnmap;

/* The registry of spawn functions (core/process/process_spawn.c). */
kart_process_entry *kart__proc_registry_head(void);

static const kart_process_entry *entry_of(const void *fn)
{
    for (kart_process_entry *e = kart__proc_registry_head(); e; e = e->next_)
        if ((const void *)(uintptr_t)e->fn == fn)
            return e;
    return NULL;
}

static const kart_process_entry *entry_named(const char *name)
{
    for (kart_process_entry *e = kart__proc_registry_head(); e; e = e->next_)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

bool kart__pool_task_ok(const kart_pool *p, kart_task_fn fn)
{
    return !p->procs || entry_of((const void *)(uintptr_t)fn) != NULL;
}

int kart__pool_ctx_setup(kart_pool *p, const kart_pool_options *o)
{
    p->method = (int)kart_context_start_method(o->context);
    bool spawned = o->kind == KART_POOL_PROCESSES && p->method != KART_START_FORK;
    if (spawned && o->initializer && !entry_of((const void *)(uintptr_t)o->initializer))
        return -ENOENT;
    /* A pointer means nothing in a fresh exec: bytes, or nothing. */
    if ((spawned && o->initarg && !o->initarg_size) || (o->initarg_size && !o->initarg))
        return -EINVAL;
    /* Bytes are copied under every method, so that code can switch. */
    if (o->initarg_size) {
        if (!o->initarg)
            return -EINVAL;
        p->initarg_copy = malloc(o->initarg_size);
        if (!p->initarg_copy)
            return -ENOMEM;
        memcpy(p->initarg_copy, o->initarg, o->initarg_size);
        p->initarg_size = o->initarg_size;
        p->initarg = p->initarg_copy;
    }
    return 0;
}

int kart__pool_ctx_map(kart_pool *p, size_t size, void **out)
{
    int fd = kart__sys_memfd_create("kart-pool", MFD_CLOEXEC);
    if (fd < 0)
        return errno == ENOMEM ? -ENOMEM : -EMFILE;
    if (kart__sys_ftruncate(fd, (off_t)size) < 0) {
        close(fd);
        return -ENOMEM;
    }
    void *a = kart__sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (a == MAP_FAILED) {
        close(fd);
        return -ENOMEM;
    }
    p->arena_fd = fd;
    *out = a;
    return 0;
}

void kart__pool_ctx_free(kart_pool *p)
{
    if (p->procs)
        for (int w = 0; w <= p->nworkers; w++)
            if (p->procs[w]) { /* the watcher never started, or is gone */
                kart_process_kill(p->procs[w]);
                kart_process_join(p->procs[w], -1);
                kart_process_free(p->procs[w]);
            }
    free(p->procs);
    p->procs = NULL;
    if (p->arena_fd >= 0)
        close(p->arena_fd);
    p->arena_fd = -1;
    free(p->initarg_copy);
    p->initarg_copy = NULL;
    free(p->image);
    p->image = NULL;
}

/* ---- the worker's start message ---- */

typedef struct ctx_msg {
    uint64_t arena, arena_size;
    int32_t arena_fd, w;
    uint64_t init; /* the caller's address of the initializer, or 0 */
    uint64_t initarg_size;
    uint32_t nfn;       /* (address, name) pairs after the initarg */
    uint32_t pool_size; /* sizeof(kart_pool): the same program */
} ctx_msg;

static int worker_main(void *arg);
static kart_process_entry worker_entry = {"kart__pool_worker", worker_main, NULL};

__attribute__((constructor(102))) static void register_worker(void)
{
    kart_process_register(&worker_entry);
}

/* The message: ctx_msg, the pool's bytes, the initarg's, then per
 * registered function: its address (8 bytes), name length (4), name. */
static void *build_msg(kart_pool *p, int w, size_t *len)
{
    size_t n = sizeof(ctx_msg) + sizeof(kart_pool) + p->initarg_size;
    uint32_t nfn = 0;
    for (kart_process_entry *e = kart__proc_registry_head(); e; e = e->next_, nfn++)
        n += 12 + strlen(e->name);
    char *buf = malloc(n);
    if (!buf)
        return NULL;
    ctx_msg m = {
        .arena = (uint64_t)(uintptr_t)p->arena,
        .arena_size = p->arena_size,
        .arena_fd = p->arena_fd,
        .w = w,
        .init = (uint64_t)(uintptr_t)p->init,
        .initarg_size = p->initarg_size,
        .nfn = nfn,
        .pool_size = sizeof(kart_pool),
    };
    char *at = buf;
    memcpy(at, &m, sizeof(m));
    at += sizeof(m);
    memcpy(at, p->image, sizeof(kart_pool)); /* set before the watcher started */
    at += sizeof(kart_pool);
    if (p->initarg_size)
        memcpy(at, p->initarg_copy, p->initarg_size);
    at += p->initarg_size;
    for (kart_process_entry *e = kart__proc_registry_head(); e; e = e->next_) {
        uint64_t addr = (uint64_t)(uintptr_t)e->fn;
        uint32_t l = (uint32_t)strlen(e->name);
        memcpy(at, &addr, 8);
        memcpy(at + 8, &l, 4);
        memcpy(at + 12, e->name, l);
        at += 12 + l;
    }
    *len = n;
    return buf;
}

int kart__pool_ctx_spawn(kart_pool *p, int w)
{
    size_t len;
    void *msg = build_msg(p, w, &len);
    if (!msg)
        return -ENOMEM;
    const kart_context *ctx;
    kart_context_get((kart_start_method)p->method, &ctx);
    char name[48];
    snprintf(name, sizeof(name), "%sPoolWorker-%d",
             p->method == KART_START_SPAWN ? "Spawn" : "ForkServer", w);
    /* The arena, and the watcher's eventfd, which a worker that finishes
     * a job writes (pool_proc.c), at the same numbers. */
    int fds[2] = {p->arena_fd, p->sh->mgr_efd};
    kart_process_options o = {
        .name = name, .daemon = true, .context = ctx, .arg_size = len, .fds = fds, .nfds = 2};
    kart_process *proc;
    int rc = kart_process_create(&proc, worker_entry.fn, msg, &o);
    free(msg);
    if (rc == 0 && (rc = kart_process_start(proc)) < 0)
        kart_process_free(proc);
    if (rc < 0)
        return rc == -ENOMEM ? -ENOMEM : -EAGAIN;
    kart__pool_worker *me = &p->workers[w];
    p->procs[w] = proc;
    atomic_store(&me->pid, (int32_t)kart_process_pid(proc));
    me->pidfd = kart_process_sentinel(proc);
    me->reaped = false;
    return 0;
}

bool kart__pool_ctx_ended(kart_pool *p, int w, int *status)
{
    kart_process *proc = p->procs[w];
    if (!proc)
        return false;
    int rc = kart_process_join(proc, 0);
    if (rc == -ETIMEDOUT)
        return false;
    int code = 0;
    if (rc == 0 && kart_process_exitcode(proc, &code) == 1)
        *status = code >= 0 ? (code & 0xff) << 8 : (-code & 0x7f);
    else
        *status = SIGKILL; /* its code is lost (a fork server died) */
    return true;
}

void kart__pool_ctx_reaped(kart_pool *p, int w)
{
    kart_process_free(p->procs[w]);
    p->procs[w] = NULL;
}

void kart__pool_ctx_kill(kart_pool *p, int w)
{
    if (p->procs[w])
        kart_process_kill(p->procs[w]);
}

/* ---- in the worker ---- */

__attribute__((noreturn)) static void worker_failed(const char *why)
{
    dprintf(STDERR_FILENO, "kart: pool worker: %s\n", why);
    _exit(72);
}

static kart_task_fn local_of(const kart_pool *p, uint64_t theirs)
{
    for (size_t i = 0; i < p->nfnmap; i++)
        if (p->fnmap[i].theirs == theirs)
            return p->fnmap[i].ours;
    return NULL;
}

kart_task_fn kart__pool_task_local(const kart_pool *p, kart_task_fn theirs)
{
    return local_of(p, (uint64_t)(uintptr_t)theirs);
}

static int worker_main(void *arg)
{
    const char *at = arg;
    ctx_msg m;
    memcpy(&m, at, sizeof(m));
    at += sizeof(m);
    if (m.pool_size != sizeof(kart_pool))
        worker_failed("the parent runs another program");
    void *want = (void *)(uintptr_t)m.arena;
    void *a = mmap(want, m.arena_size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE | MAP_FIXED_NOREPLACE, m.arena_fd, 0);
    if (a != want)
        worker_failed("cannot map the arena at the parent's address");
    close(m.arena_fd);
    size_t psize = (sizeof(kart_pool) + KART__POOL_LINE - 1) & ~(size_t)(KART__POOL_LINE - 1);
    kart_pool *p = aligned_alloc(KART__POOL_LINE, psize);
    if (!p)
        worker_failed("out of memory");
    memcpy(p, at, sizeof(kart_pool));
    at += sizeof(kart_pool);
    p->hooks = &kart__pool_proc_hooks;
    p->procs = NULL;
    p->busy_snap = NULL;
    p->slot_ids = p->free_ids = p->limbo_ids = NULL;
    p->has_bufs = NULL;
    p->watcher = NULL;
    p->arena_fd = -1;
    p->initarg = NULL;
    p->initarg_copy = NULL;
    p->image = NULL;
    if (m.initarg_size) {
        p->initarg = malloc(m.initarg_size);
        if (!p->initarg)
            worker_failed("out of memory");
        memcpy(p->initarg, at, m.initarg_size);
    }
    at += m.initarg_size;
    p->fnmap = calloc(m.nfn ? m.nfn : 1, sizeof(*p->fnmap));
    if (!p->fnmap)
        worker_failed("out of memory");
    p->nfnmap = 0;
    for (uint32_t i = 0; i < m.nfn; i++) {
        uint64_t addr;
        uint32_t l;
        memcpy(&addr, at, 8);
        memcpy(&l, at + 8, 4);
        char name[4097];
        if (l >= sizeof(name))
            worker_failed("malformed message");
        memcpy(name, at + 12, l);
        name[l] = '\0';
        at += 12 + l;
        const kart_process_entry *e = entry_named(name);
        if (e)
            p->fnmap[p->nfnmap++] = (kart__pool_fnmap){addr, (kart_task_fn)(void (*)(void))e->fn};
    }
    kart_task_fn init = m.init ? local_of(p, m.init) : NULL;
    if (m.init && !init)
        worker_failed("the initializer is not registered in this program");
    p->init = (kart_pool_init_fn)(void (*)(void))init;
    kart__pool_worker_run(p, m.w);
}

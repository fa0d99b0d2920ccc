/*
 * core/pool_proc.c — process pools: forking workers, and the watcher
 * thread that the parent keeps for them.
 *
 * The watcher forks every worker (so that their parent-death signal is
 * tied to a thread that lives as long as the pool), publishes the jobs
 * workers finish (they set a bit per slot in the arena's done map and
 * write the watcher's eventfd when it sleeps), and notices deaths through
 * a pidfd per worker (waitpid polling every 50 ms where pidfd_open is
 * missing). A worker that dies while busy on a job flags it; the job is
 * swept (its lost chunks fail with KART_EWORKERDIED) once no live worker
 * is busy on it. Dead workers are replaced unless the pool is terminated,
 * and, once closed, unless they ended normally (drained). When no worker
 * is left and none will be started, whatever is still unfinished is
 * failed, the last jobs are published, and the watcher ends: that is
 * what kart_pool_join() waits for.
 */
#include "debug.h"
#include "fault.h"
#include "pool_private.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define KART__POOL_EXIT_DRAINED 0
#define KART__POOL_EXIT_RETIRED 3

/* The status a drained worker exits with (tests set it to make workers
 * end as valgrind's --error-exitcode makes them: non-zero after close). */
int kart__pool_drained_exit = KART__POOL_EXIT_DRAINED;

static int open_pidfd(pid_t pid)
{
    int fd = kart__sys_pidfd_open(pid, 0);
    return fd < 0 ? -1 : fd;
}

void kart__pool_proc_notify(kart_pool *p)
{
    if (p->kind != KART_POOL_PROCESSES)
        return;
    if (atomic_load(&p->sh->mgr_armed) && atomic_exchange(&p->sh->mgr_armed, 0)) {
        uint64_t one = 1;
        /* EAGAIN: the counter is already non-zero, the watcher wakes. Any
         * other failure (EINTR) is tried again: the flag is cleared, so no
         * later finish would write and the watcher would sleep on (a lost
         * result). Still failing: the flag is set back for the next one. */
        ssize_t r = -1;
        for (int tries = 0; tries < 8 && r < 0; tries++)
            if ((r = kart__sys_write(p->sh->mgr_efd, &one, sizeof(one))) < 0 && errno == EAGAIN)
                r = 0;
        if (r < 0)
            atomic_store(&p->sh->mgr_armed, 1);
    }
}

/* The engine's hooks (kart__pool_hooks, pool_job.h), which pool.c gives
 * to every process pool. */

/* A worker finished j (pool_job.c claimed j->finished): mark it in the
 * done map for the watcher, the only publisher, and wake the watcher. */
static void proc_finished(kart_pool *p, struct kart_future *j)
{
    /* A worker killed here leaves j finished with no done bit: the
     * watcher finds that and publishes j itself (rescue_finished). */
    KART__FAULT_POINT(pool_finish_claimed);
    atomic_fetch_or(&p->sh->donemap[j->slot / 64], UINT64_C(1) << (j->slot % 64));
    kart__pool_proc_notify(p);
}

const kart__pool_hooks kart__pool_proc_hooks = {
    .finished = proc_finished,
    .dead_seen = kart__pool_proc_notify,
    .local_fn = kart__pool_task_local,
};

/* ---- workers ---- */

static __attribute__((noreturn)) void child_main(kart_pool *p, int w, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(KART__POOL_EXIT_DRAINED);
    kart__pool_worker_run(p, w);
}

void kart__pool_worker_run(kart_pool *p, int w)
{
    kart__pool_worker *me = &p->workers[w];
    kart__pool_self = me;
    atomic_store(&me->pid, (int32_t)getpid());
    atomic_store(&me->tid, (int32_t)getpid());
    if (atomic_load(&me->bound) && kart_numa_bind_thread_node(0, p->node_ids[me->node]) < 0)
        atomic_store(&me->bound, 0);
    if (p->init)
        p->init(p->initarg);
    kart__pool_worker_loop(p, w);
    bool retired = p->max_tasks && atomic_load(&me->tasks) >= (uint64_t)p->max_tasks;
    _exit(retired ? KART__POOL_EXIT_RETIRED : kart__pool_drained_exit);
}

/* Forks the worker of slot w (from the watcher thread). */
int kart__pool_proc_spawn(kart_pool *p, int w)
{
    kart__pool_worker *me = &p->workers[w];
    atomic_store(&me->busy, 0);
    atomic_store(&me->tasks, 0);
    atomic_store(&me->asleep, 0);
    atomic_store(&me->pid, 0);
    atomic_store(&me->alive, 1); /* before the child can become busy */
    if (p->procs) {
        int rc = kart__pool_ctx_spawn(p, w);
        if (rc < 0)
            atomic_store(&me->alive, 0);
        return rc;
    }
    pid_t parent = getpid();
    pid_t pid = kart__sys_fork();
    if (pid < 0) {
        int e = errno;
        atomic_store(&me->alive, 0);
        return e == ENOMEM ? -ENOMEM : -EAGAIN;
    }
    if (pid == 0)
        child_main(p, w, parent);
    atomic_store(&me->pid, (int32_t)pid);
    me->pidfd = open_pidfd(pid);
    me->reaped = false;
    return 0;
}

/* Watcher thread only (it alone reaps, so a pid marked alive here is
 * still this pool's child). */
void kart__pool_proc_kill_all(kart_pool *p)
{
    for (int w = 0; w < p->nworkers; w++) {
        pid_t pid = atomic_load(&p->workers[w].pid);
        if (p->procs && atomic_load(&p->workers[w].alive))
            kart__pool_ctx_kill(p, w);
        else if (pid > 0 && atomic_load(&p->workers[w].alive))
            kill(pid, SIGKILL);
    }
}

/* ---- the watcher ---- */

typedef struct watch {
    uint64_t *flagged; /* references of jobs to sweep */
    size_t nflagged, cap;
    bool *respawn; /* slots waiting for a new worker */
} watch;

static void publish_done(kart_pool *p)
{
    uint32_t words = (p->max_jobs + 63) / 64;
    for (uint32_t i = 0; i < words; i++) {
        if (!atomic_load_explicit(&p->sh->donemap[i], memory_order_relaxed))
            continue;
        uint64_t bits = atomic_exchange(&p->sh->donemap[i], 0);
        while (bits) {
            int b = __builtin_ctzll(bits);
            bits &= bits - 1;
            kart__pool_publish(p, &p->jobs[i * 64 + (uint32_t)b]);
        }
    }
}

static bool any_done(kart_pool *p)
{
    uint32_t words = (p->max_jobs + 63) / 64;
    for (uint32_t i = 0; i < words; i++)
        if (atomic_load(&p->sh->donemap[i]))
            return true;
    return false;
}

/* Whether the done bit of the job in slot `slot` is set. Taken from the
 * reference, not from the job: a job already published may be released
 * and its slot set up again for a new job meanwhile (TSan caught a read
 * of j->slot here racing with kart__pool_slot_alloc's write). */
static bool done_bit(kart_pool *p, uint32_t slot)
{
    return atomic_load(&p->sh->donemap[slot / 64]) & (UINT64_C(1) << (slot % 64));
}

/* A worker that wins the race to finish a job (finished 0 -> 1) sets the
 * job's done bit next; killed between the two, it leaves a job that is
 * finished but that nobody will ever publish. The winner is busy on the
 * job from before its claim to after the bit, so a finished job of
 * generation ref with no live worker busy on it, no done bit and still
 * unpublished is such a job: the watcher, the only publisher, publishes
 * it. (Unpublished, the job keeps the pool's reference, so its slot
 * cannot be released meanwhile; gen is read again after state because a
 * slot released and taken again gets its new generation before it is
 * queued.) Watcher only. Returns false while a live worker is busy on
 * the job (look again later), true when there is nothing left to do. */
static bool rescue_finished(kart_pool *p, struct kart_future *j, uint64_t ref)
{
    if (kart__pool_live_worker_busy_on(p, ref))
        return false;
    if (done_bit(p, (uint32_t)(ref >> 16)) || atomic_load(&j->state) != KS_QUEUED ||
        (atomic_load(&j->gen) & 0xffff) != (ref & 0xffff))
        return true;
    kart__pool_publish(p, j);
    return true;
}

static void recheck_flagged(kart_pool *p, watch *wt)
{
    size_t k = 0;
    for (size_t i = 0; i < wt->nflagged; i++) {
        uint64_t ref = wt->flagged[i];
        struct kart_future *j = &p->jobs[ref >> 16];
        KART__TSAN_ACQUIRE(j);
        if ((atomic_load(&j->gen) & 0xffff) != (ref & 0xffff))
            continue;
        if (atomic_load(&j->finished)) {
            if (!rescue_finished(p, j, ref))
                wt->flagged[k++] = ref;
            continue;
        }
        if (atomic_load(&p->sh->state) == KART__POOL_TERMINATED)
            kart__pool_cancel_rest(p, j, (uint32_t)ref, -ECANCELED);
        kart__pool_sweep_check(p, j);
        if (!atomic_load(&j->finished))
            wt->flagged[k++] = ref;
    }
    wt->nflagged = k;
}

/* Whether a job is still queued and unfinished (watcher only). */
static bool work_left(kart_pool *p)
{
    uint64_t *refs;
    uint32_t n = kart__pool_collect_pushed(p, &refs);
    bool left = false;
    for (uint32_t i = 0; i < n && !left; i++)
        left = !atomic_load(&p->jobs[refs[i] >> 16].finished);
    free(refs);
    return left || !refs; /* out of memory: assume there is */
}

static void on_death(kart_pool *p, watch *wt, int w, int status)
{
    kart__pool_worker *me = &p->workers[w];
    atomic_store(&me->alive, 0);
    if (p->procs)
        kart__pool_ctx_reaped(p, w); /* its sentinel goes with it */
    else if (me->pidfd >= 0)
        close(me->pidfd);
    me->pidfd = -1;
    me->reaped = true;
    uint64_t b = atomic_load(&me->busy);
    if (b) {
        uint64_t ref = b & ~KART__POOL_BUSY;
        struct kart_future *j = &p->jobs[ref >> 16];
        if ((atomic_load(&j->gen) & 0xffff) == (ref & 0xffff)) {
            /* What kart_pool_failure reports: the item it died on (its
             * last mark, which the sweep uses only if it lies in a chunk
             * it lost) and, for the first death, its pid and status.
             * Only this thread writes these, after the job's setup,
             * which the busy mark of a worker orders before us (through
             * a process TSan cannot see). */
            KART__TSAN_ACQUIRE(j);
            uint64_t item = atomic_load(&me->item);
            if (item < atomic_load(&j->dead_item))
                atomic_store(&j->dead_item, item);
            if (!j->dead_pid) {
                j->dead_pid = atomic_load(&me->pid);
                j->dead_status = status;
            }
            atomic_store(&j->dead_seen, 1);
            if (wt->nflagged == wt->cap) {
                size_t cap = wt->cap ? wt->cap * 2 : 16;
                uint64_t *n = realloc(wt->flagged, cap * sizeof(uint64_t));
                if (n) {
                    wt->flagged = n;
                    wt->cap = cap;
                }
            }
            if (wt->nflagged < wt->cap)
                wt->flagged[wt->nflagged++] = ref;
        }
    }
    atomic_store(&me->busy, 0);
    atomic_fetch_add(&p->sh->deaths, 1);
    /* It may have died woken but before it cleared its node's `waking`
     * flag (which stops further wake-ups): clear it, and wake the node. */
    kart__pool_node *q = &p->nodes[me->node];
    /* Killed asleep: it is still counted among the node's sleepers, which
     * would send later wake-ups to nobody (and, with several nodes, away
     * from a node whose workers do sleep). */
    if (atomic_exchange(&me->asleep, 0))
        atomic_fetch_sub(&q->sleepers, 1);
    atomic_store(&q->waking, 0);
    atomic_fetch_add(&q->seq, 1);
    kart__futex_wake(&q->seq, INT32_MAX, true);
    kart__pool_repush_worker(p, w);
    uint32_t state = atomic_load(&p->sh->state);
    bool normal = WIFEXITED(status) && WEXITSTATUS(status) == KART__POOL_EXIT_DRAINED;
    /* A closed pool replaces a worker only while work is left for it: a
     * worker whose exit path ends with a non-zero status after draining
     * (valgrind's --error-exitcode, an exit path that fails) must not be
     * replaced by one that drains, exits the same way, and so on for ever
     * (issue 16: kart_pool_join never returned). */
    if (state == KART__POOL_RUNNING || (state == KART__POOL_CLOSED && !normal && work_left(p))) {
        atomic_fetch_add(&me->generation, 1);
        wt->respawn[w] = true;
        if (WIFSIGNALED(status))
            kart__log(KART_LOG_WARNING, "pool", "worker %d (pid %d) killed by signal %d: replaced",
                      w, (int)atomic_load(&me->pid), WTERMSIG(status));
        else
            kart__log(KART_LOG_WARNING, "pool",
                      "worker %d (pid %d) exited with status %d: replaced", w,
                      (int)atomic_load(&me->pid), WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
}

/* Whether worker w has ended; reaps it. */
static bool ended(kart_pool *p, int w, int *status)
{
    kart__pool_worker *me = &p->workers[w];
    if (p->procs)
        return kart__pool_ctx_ended(p, w, status);
    pid_t pid = atomic_load(&me->pid);
    if (pid <= 0)
        return false;
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid)
        return true;
    if (r < 0 && errno == ECHILD) { /* reaped by someone else */
        *status = 0;
        return kill(pid, 0) != 0;
    }
    return false;
}

/* Nothing runs any more: fail whatever is unfinished. */
static void final_sweep(kart_pool *p)
{
    int err = atomic_load(&p->sh->state) == KART__POOL_TERMINATED ? -ECANCELED : KART_EWORKERDIED;
    uint64_t *refs;
    uint32_t n = kart__pool_collect_pushed(p, &refs);
    /* Only this thread publishes jobs of a process pool, so none of these
     * can be released meanwhile. */
    for (uint32_t i = 0; i < n; i++) {
        struct kart_future *j = &p->jobs[refs[i] >> 16];
        KART__TSAN_ACQUIRE(j);
        if ((atomic_load(&j->gen) & 0xffff) != (refs[i] & 0xffff))
            continue;
        if (atomic_load(&j->finished)) {
            rescue_finished(p, j, refs[i]); /* nobody is alive to be busy */
            continue;
        }
        kart__pool_cancel_rest(p, j, (uint32_t)refs[i], err);
        for (uint32_t c = 0; c < j->nchunks && j->st; c++)
            if (!atomic_load(&j->st[c]))
                kart__pool_fail_lost(j, c, err);
        kart__pool_finish(p, j);
    }
    free(refs);
}

static int watcher_main(void *arg)
{
    kart_pool *p = arg;
    int W = p->nworkers;
    watch wt = {0};
    wt.respawn = calloc((size_t)W, sizeof(bool));
    struct pollfd *fds = calloc((size_t)W + 1, sizeof(*fds));
    int *fdw = calloc((size_t)W + 1, sizeof(int));
    int rc = wt.respawn && fds && fdw ? 0 : -ENOMEM;
    for (int w = 0; w < W && rc == 0; w++)
        rc = kart__pool_proc_spawn(p, w);
    p->spawn_rc = rc;
    atomic_store(&p->spawned, 1);
    kart__futex_wake(&p->spawned, INT32_MAX, false);
    if (rc < 0) {
        atomic_store(&p->sh->state, KART__POOL_TERMINATED);
        kart__pool_proc_kill_all(p);
    }
    for (;;) {
        uint64_t drain;
        while (kart__sys_read(p->sh->mgr_efd, &drain, sizeof(drain)) > 0)
            ;
        publish_done(p);
        uint32_t state = atomic_load(&p->sh->state);
        if (state == KART__POOL_TERMINATED)
            kart__pool_proc_kill_all(p);
        int alive = 0;
        bool polling = false;
        for (int w = 0; w < W; w++) {
            kart__pool_worker *me = &p->workers[w];
            int status;
            if (atomic_load(&me->alive) && ended(p, w, &status))
                on_death(p, &wt, w, status);
            if (wt.respawn[w] && atomic_load(&p->sh->state) != KART__POOL_TERMINATED) {
                if (kart__pool_proc_spawn(p, w) == 0)
                    wt.respawn[w] = false;
                else
                    polling = true; /* try again shortly */
            } else {
                wt.respawn[w] = false;
            }
            if (atomic_load(&me->alive)) {
                alive++;
                if (me->pidfd < 0)
                    polling = true;
            }
        }
        recheck_flagged(p, &wt);
        publish_done(p);
        if (atomic_load(&p->sh->state) != KART__POOL_RUNNING && alive == 0) {
            final_sweep(p);
            publish_done(p);
            break;
        }
        int n = 0;
        fds[n] = (struct pollfd){.fd = p->sh->mgr_efd, .events = POLLIN};
        fdw[n++] = -1;
        for (int w = 0; w < W; w++)
            if (atomic_load(&p->workers[w].alive) && p->workers[w].pidfd >= 0) {
                fds[n] = (struct pollfd){.fd = p->workers[w].pidfd, .events = POLLIN};
                fdw[n++] = w;
            }
        atomic_store(&p->sh->mgr_armed, 1);
        if (any_done(p) || atomic_load(&p->sh->state) != state) {
            atomic_store(&p->sh->mgr_armed, 0);
            continue;
        }
        kart__sys_poll(fds, (nfds_t)n, polling || wt.nflagged ? 50 : -1);
        atomic_store(&p->sh->mgr_armed, 0);
    }
    free(wt.flagged);
    free(wt.respawn);
    free(fds);
    free(fdw);
    atomic_store(&p->watcher_done, 1);
    kart__futex_wake(&p->watcher_done, INT32_MAX, false);
    return 0;
}

/* Starts the watcher, which forks the workers. When it cannot start,
 * there is no watcher to wait for: watcher_done says so, or the
 * kart_pool_free() that follows would wait in its join forever. */
int kart__pool_proc_start(kart_pool *p)
{
    int rc = 0, efd = kart__sys_eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
        rc = errno == ENOMEM ? -ENOMEM : -EMFILE;
    } else {
        p->sh->mgr_efd = efd;
        if (p->procs && !(p->image = malloc(sizeof(*p)))) {
            close(efd);
            p->sh->mgr_efd = -1;
            atomic_store(&p->watcher_done, 1);
            return -ENOMEM;
        }
        if (p->image)
            memcpy(p->image, p, sizeof(*p)); /* no other thread yet */
        kart_thread_options o = {.name = "kart-pool-watch"};
        rc = kart_thread_start(&p->watcher, watcher_main, p, &o);
    }
    if (rc < 0) {
        atomic_store(&p->watcher_done, 1);
        return rc;
    }
    while (!atomic_load(&p->spawned))
        kart__futex_wait(&p->spawned, 0, -1, false);
    if (p->spawn_rc < 0) {
        kart_thread_join(p->watcher, -1, NULL);
        p->watcher = NULL;
        atomic_store(&p->watcher_done, 1);
        return p->spawn_rc;
    }
    return 0;
}

/*
 * core/process/process_wait.c — reaping, joining, polling and signalling
 * process objects (made and started in process.c).
 *
 * Reaping is waitid(P_PID) for exactly the child's pid, done under
 * kart__proc_lock, and so is signalling: a signal is only ever sent to a
 * child known not to have been reaped, whose pid therefore is still its
 * own. A fork server's child is not this process's: its status comes from
 * the server (process_forkserver.c).
 */
#include "deadline.h"
#include "fault.h"
#include "process_private.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- reaping, joining, polling ---- */

int kart__proc_reap_locked(kart_process *p)
{
    if (p->state != KART_PROC_RUNNING)
        return p->state;
    if (p->method == KART_START_FORKSERVER && !p->path)
        return kart__proc_forkserver_reap_locked(p);
    siginfo_t info;
    for (;;) {
        memset(&info, 0, sizeof(info));
        if (waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG) == 0)
            break;
        if (errno == EINTR)
            continue;
        /* ECHILD: someone else reaped it (waitpid(-1), SIGCHLD ignored). */
        p->state = KART_PROC_LOST;
        kart__proc_list_remove(p);
        return p->state;
    }
    if (info.si_pid == 0)
        return KART_PROC_RUNNING;
    p->exitcode = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
    p->state = KART_PROC_ENDED;
    kart__proc_list_remove(p);
    return p->state;
}

/* Reaps if ended; returns the state, or an error for objects that cannot
 * be polled. */
static int poll_state(kart_process *p)
{
    if (!p)
        return -EINVAL;
    if (kart__proc_inherited(p))
        return -ECHILD;
    pthread_mutex_lock(&kart__proc_lock);
    int state = kart__proc_reap_locked(p);
    pthread_mutex_unlock(&kart__proc_lock);
    return state;
}

static int state_result(int state)
{
    switch (state) {
    case KART_PROC_ENDED:
        return 0;
    case KART_PROC_LOST:
        return -ECHILD;
    case KART_PROC_RUNNING:
        return -ETIMEDOUT;
    default:
        return KART_ENOTSTARTED;
    }
}

/* Waits for the sentinel at most until deadline (-1: forever): true when
 * it became readable. EINTR does not end the wait. */
static bool wait_sentinel(int fd, int64_t deadline)
{
    for (;;) {
        int64_t left = kart__time_left(deadline);
        struct timespec ts = kart__timespec(left);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = kart__sys_ppoll(&pfd, 1, left < 0 ? NULL : &ts, NULL);
        if (n > 0)
            return true;
        if (n == 0 || errno != EINTR)
            return false;
    }
}

/* Without a timeout the kernel's own wait is best: it wakes the joiner
 * as the child ends, whatever the sentinel is. WNOWAIT leaves the child a
 * zombie, so its pid stays its own until it is reaped under the lock (and
 * other threads may join it at the same time). */
static int join_forever(kart_process *p)
{
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof(info));
        int r = waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        /* Ended, or ECHILD: reaped by another thread or another reaper,
         * which poll_state tells apart. */
        int state = poll_state(p);
        if (state != KART_PROC_RUNNING)
            return state_result(state);
        if (r < 0)
            return 1; /* no wait this way: the caller waits on the sentinel */
    }
}

KART_API int kart_process_join(kart_process *p, int64_t timeout_ns)
{
    int state = poll_state(p);
    if (state < 0)
        return state;
    if (state != KART_PROC_RUNNING || timeout_ns == 0)
        return state_result(state);
    if (timeout_ns < 0) {
        int r = join_forever(p);
        if (r != 1)
            return r;
    }
    int64_t deadline = kart__deadline(timeout_ns);
    /* A pipe sentinel can close early, when the child execs (its write end
     * is close-on-exec): then only polling with a growing pause is left.
     * It can also close late, when a child another thread forked at the
     * same moment inherited the write end: so it is waited on in slices,
     * looking at the child between them. */
    int64_t pause = 100000; /* ns */
    for (;;) {
        pthread_mutex_lock(&kart__proc_lock);
        bool stale = p->sentinel_stale;
        pthread_mutex_unlock(&kart__proc_lock);
        if (!stale) {
            int64_t until = deadline;
            if (!p->sentinel_is_pidfd) {
                int64_t slice = kart__deadline(50 * 1000000);
                if (until < 0 || slice < until)
                    until = slice;
            }
            bool ready = wait_sentinel(p->sentinel, until);
            state = poll_state(p);
            if (state != KART_PROC_RUNNING)
                return state_result(state);
            if (ready) {
                pthread_mutex_lock(&kart__proc_lock);
                p->sentinel_stale = true;
                pthread_mutex_unlock(&kart__proc_lock);
            } else if (kart__time_left(deadline) == 0) {
                return -ETIMEDOUT;
            }
            continue;
        }
        int64_t left = kart__time_left(deadline);
        if (left == 0)
            return -ETIMEDOUT;
        int64_t nap = left > 0 && left < pause ? left : pause;
        struct timespec ts = kart__timespec(nap);
        nanosleep(&ts, NULL);
        if (pause < 20 * 1000000)
            pause *= 2;
        state = poll_state(p);
        if (state != KART_PROC_RUNNING)
            return state_result(state);
    }
}

KART_API int kart_process_is_alive(kart_process *p)
{
    int state = poll_state(p);
    if (state < 0)
        return state;
    return state == KART_PROC_RUNNING;
}

KART_API int kart_process_exitcode(kart_process *p, int *code)
{
    if (!code)
        return -EINVAL;
    int state = poll_state(p);
    if (state < 0)
        return state;
    if (state == KART_PROC_LOST)
        return -ECHILD;
    if (state != KART_PROC_ENDED)
        return 0;
    *code = p->exitcode;
    return 1;
}

/* ---- signals ---- */

int kart__proc_signal_locked(kart_process *p, int signum)
{
    int state = kart__proc_reap_locked(p);
    if (state == KART_PROC_ENDED || state == KART_PROC_LOST)
        return -ESRCH;
    if (state != KART_PROC_RUNNING)
        return KART_ENOTSTARTED;
    int r;
#ifdef SYS_pidfd_send_signal
    if (p->sentinel_is_pidfd)
        r = (int)syscall(SYS_pidfd_send_signal, p->sentinel, signum, NULL, 0);
    else
#endif
        r = kill(p->pid, signum);
    return r < 0 ? -errno : 0;
}

KART_API int kart_process_signal(kart_process *p, int signum)
{
    if (!p || signum < 0 || signum >= _NSIG)
        return -EINVAL;
    if (kart__proc_inherited(p))
        return -ECHILD;
    pthread_mutex_lock(&kart__proc_lock);
    int err = kart__proc_signal_locked(p, signum);
    pthread_mutex_unlock(&kart__proc_lock);
    return err;
}

/* Python's terminate() and kill() do nothing to a child that has ended. */
KART_API int kart_process_terminate(kart_process *p)
{
    int err = kart_process_signal(p, SIGTERM);
    return err == -ESRCH ? 0 : err;
}

KART_API int kart_process_kill(kart_process *p)
{
    int err = kart_process_signal(p, SIGKILL);
    return err == -ESRCH ? 0 : err;
}

/*
 * core/signal.c — signal watchers through one signalfd per loop.
 *
 * A signalfd only sees signals that are blocked, so starting the first
 * watcher of a signal blocks it in the calling (loop) thread and the last
 * stop, counted over every loop of that thread, restores the thread's mask
 * as it was. The signalfd's mask is the union of the watched signals; it
 * is widened and narrowed in place by calling signalfd() on the same fd
 * again, so the fd stays registered in the selector the whole time any
 * watcher is active.
 */
#include "loop_private.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

KART_API int kart_signal_init(kart_loop *loop, kart_signal *sig)
{
    if (!loop || !sig)
        return -EINVAL;
    kart__handle_init(&sig->base, loop, KART_HANDLE_SIGNAL);
    sig->signum = 0;
    sig->cb_ = NULL;
    sig->next_ = NULL;
    return 0;
}

static bool catchable(int signum)
{
    if (signum <= 0 || signum >= _NSIG || signum == SIGKILL || signum == SIGSTOP)
        return false;
#ifdef SIGRTMIN
    /* The C library keeps the numbers between the standard signals and
     * SIGRTMIN (glibc's 32 and 33, musl's 32 to 34) for its threads, and
     * its pthread_sigmask() silently refuses to block them: a signalfd
     * would never see them, and they would reach the process unblocked. */
    if (signum >= 32 && signum < SIGRTMIN)
        return false;
#endif
    return true;
}

static int update_sigfd(kart_loop *loop)
{
    int fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (loop->sigfd < 0) {
        int err = kart_selector_register(loop->sel, fd, KART_READABLE, &loop->sig_tag);
        if (err < 0) {
            close(fd);
            return err;
        }
        loop->sigfd = fd;
    }
    return 0;
}

/* The signal mask belongs to the thread, and one thread may run several
 * loops: blocking is counted per thread, so that one loop's last stop does
 * not unblock a signal that another loop of the thread still watches (its
 * signalfd would go deaf, and the default action would run). Handles are
 * started and stopped on their loop's thread, so the counts stay paired. */
static _Thread_local unsigned thread_watched[_NSIG];
static _Thread_local bool thread_was_blocked[_NSIG];

static void thread_block(int signum)
{
    if (thread_watched[signum]++ > 0)
        return;
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, signum);
    pthread_sigmask(SIG_BLOCK, &one, &old);
    thread_was_blocked[signum] = sigismember(&old, signum) == 1;
}

static void thread_unblock(int signum)
{
    if (--thread_watched[signum] > 0 || thread_was_blocked[signum])
        return;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signum);
    /* An occurrence that arrived while watched but was not read yet
     * belonged to the watchers: consume it, or unblocking would hand it to
     * the default action (which ends the process for most signals). */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&one, NULL, &zero) == signum)
        ;
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

/* Adds signum to the watched set: blocks it and widens the signalfd. */
int kart__signum_watch(kart_loop *loop, int signum)
{
    if (loop->sigcount[signum]++ > 0)
        return 0;
    thread_block(signum);
    sigaddset(&loop->sigmask, signum);
    int err = update_sigfd(loop);
    if (err < 0) {
        sigdelset(&loop->sigmask, signum);
        thread_unblock(signum);
        loop->sigcount[signum]--;
    }
    return err;
}

void kart__signum_unwatch(kart_loop *loop, int signum)
{
    if (--loop->sigcount[signum] > 0)
        return;
    sigdelset(&loop->sigmask, signum);
    if (sigisemptyset(&loop->sigmask)) {
        kart_selector_unregister(loop->sel, loop->sigfd);
        close(loop->sigfd);
        loop->sigfd = -1;
    } else {
        update_sigfd(loop); /* narrowing an existing signalfd cannot fail */
    }
    thread_unblock(signum);
}

static int signal_start(kart_signal *sig, kart_signal_cb cb, int signum)
{
    kart_loop *loop = sig->base.loop;
    int err = kart__signum_watch(loop, signum);
    if (err < 0)
        return err;
    sig->signum = signum;
    sig->cb_ = cb;
    sig->next_ = loop->signals;
    loop->signals = sig;
    kart__handle_start(&sig->base);
    return 0;
}

KART_API int kart_signal_start(kart_signal *sig, kart_signal_cb cb, int signum)
{
    if (!sig || !cb || !catchable(signum))
        return -EINVAL;
    if (kart__handle_active(&sig->base)) {
        if (sig->signum == signum) {
            sig->cb_ = cb;
            return 0;
        }
        kart_signal_stop(sig);
    }
    return signal_start(sig, cb, signum);
}

KART_API int kart_signal_stop(kart_signal *sig)
{
    if (!sig)
        return -EINVAL;
    if (!kart__handle_active(&sig->base))
        return 0;
    kart_loop *loop = sig->base.loop;
    if (loop->sig_cursor == sig)
        loop->sig_cursor = sig->next_;
    for (kart_signal **p = &loop->signals; *p; p = &(*p)->next_)
        if (*p == sig) {
            *p = sig->next_;
            break;
        }
    kart__handle_stop(&sig->base);
    kart__signum_unwatch(loop, sig->signum);
    return 0;
}

void kart__signals_dispatch(kart_loop *loop)
{
    struct signalfd_siginfo info[16];
    ssize_t n;
    while (loop->sigfd >= 0 && (n = read(loop->sigfd, info, sizeof(info))) > 0) {
        for (size_t i = 0; i < (size_t)n / sizeof(info[0]); i++) {
            int signum = (int)info[i].ssi_signo;
            if (signum == SIGCHLD && loop->sigchld_users > 0)
                kart__children_reap(loop);
            /* The cursor lets a callback stop any watcher, the next one
             * included, while this list is being walked. */
            for (kart_signal *s = loop->signals; s; s = loop->sig_cursor) {
                loop->sig_cursor = s->next_;
                if (s->signum == signum)
                    s->cb_(s, signum);
            }
            loop->sig_cursor = NULL;
        }
    }
}

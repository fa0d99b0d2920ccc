/*
 * core/signal.c — signal watchers: the bookkeeping every system shares.
 *
 * Each loop counts its watchers per signal number and hears the signals
 * through one fd registered in its selector: a signalfd on Linux
 * (core/signal_signalfd.c), a kqueue with EVFILT_SIGNAL filters on the BSDs
 * and macOS (core/signal_kqueue.c). This file keeps the watcher lists and
 * dispatches; the two sources only start, stop and read signal numbers.
 */
#include "loop_private.h"

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

/* Adds signum to the loop's watched set (the loop's own SIGCHLD use
 * included). */
int kart__signum_watch(kart_loop *loop, int signum)
{
    if (loop->sigcount[signum]++ > 0)
        return 0;
    loop->nsignums++;
    int err = kart__sigsource_add(loop, signum);
    if (err < 0) {
        loop->sigcount[signum]--;
        loop->nsignums--;
    }
    return err;
}

void kart__signum_unwatch(kart_loop *loop, int signum)
{
    if (--loop->sigcount[signum] > 0)
        return;
    loop->nsignums--;
    kart__sigsource_del(loop, signum);
}

void kart__signals_dispatch(kart_loop *loop)
{
    int got[16], n;
    while (loop->sigfd >= 0 && (n = kart__sigsource_read(loop, got, 16)) > 0) {
        for (int i = 0; i < n; i++) {
            int signum = got[i];
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

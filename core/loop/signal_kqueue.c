/*
 * core/signal_kqueue.c — where signals come from on the BSDs and macOS: a
 * kqueue per loop holding one EVFILT_SIGNAL filter per watched signal.
 *
 * The kqueue fd itself is registered in the loop's selector as readable
 * (a kqueue is pollable, so this works under any backend: kqueue, poll or
 * select). EVFILT_SIGNAL records delivery attempts even for an ignored
 * signal, so while a signal is watched its disposition is SIG_IGN — the
 * default action (usually death) must not run — and the previous one is
 * restored after the last watcher in the process stops (libevent does the
 * same). SIGCHLD is the exception: ignoring it makes the kernel reap
 * children itself and the filter skip it, so it gets an empty handler.
 * Dispositions belong to the process, so their counts are under a lock.
 */
#include "loop_private.h"

#ifndef KART_SIGNAL_KQUEUE
#error "signal_kqueue.c is the BSD/macOS signal source: the Makefile builds it there only"
#endif

#include <fcntl.h>
#include <pthread.h>
#include <sys/event.h>
#include <unistd.h>

static pthread_mutex_t disposition_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned disposition_users[_NSIG];
static struct sigaction disposition_saved[_NSIG];

static void sigchld_noted(int signum)
{
    (void)signum;
}

static int take_disposition(int signum)
{
    int err = 0;
    pthread_mutex_lock(&disposition_lock);
    if (disposition_users[signum]++ == 0) {
        struct sigaction sa = {0};
        sa.sa_handler = signum == SIGCHLD ? sigchld_noted : SIG_IGN;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(signum, &sa, &disposition_saved[signum]) < 0) {
            err = -errno;
            disposition_users[signum]--;
        }
    }
    pthread_mutex_unlock(&disposition_lock);
    return err;
}

static void release_disposition(int signum)
{
    pthread_mutex_lock(&disposition_lock);
    if (--disposition_users[signum] == 0)
        sigaction(signum, &disposition_saved[signum], NULL);
    pthread_mutex_unlock(&disposition_lock);
}

static int change_filter(int kq, int signum, int flags)
{
    struct kevent kev;
    EV_SET(&kev, (uintptr_t)signum, EVFILT_SIGNAL, flags, 0, 0, 0);
    return kevent(kq, &kev, 1, NULL, 0, NULL) < 0 ? -errno : 0;
}

static void close_source(kart_loop *loop)
{
    kart_selector_unregister(loop->sel, loop->sigfd);
    close(loop->sigfd);
    loop->sigfd = -1;
}

int kart__sigsource_add(kart_loop *loop, int signum)
{
    if (loop->sigfd < 0) {
        int kq = kqueue();
        if (kq < 0)
            return -errno;
        fcntl(kq, F_SETFD, FD_CLOEXEC);
        int err = kart_selector_register(loop->sel, kq, KART_READABLE, &loop->sig_tag);
        if (err < 0) {
            close(kq);
            return err;
        }
        loop->sigfd = kq;
    }
    int err = take_disposition(signum);
    if (err == 0 && (err = change_filter(loop->sigfd, signum, EV_ADD | EV_ENABLE)) < 0)
        release_disposition(signum);
    if (err < 0 && loop->nsignums == 1)
        close_source(loop); /* it was opened for this signal alone */
    return err;
}

void kart__sigsource_del(kart_loop *loop, int signum)
{
    change_filter(loop->sigfd, signum, EV_DELETE);
    release_disposition(signum);
    if (loop->nsignums == 0)
        close_source(loop);
}

int kart__sigsource_read(kart_loop *loop, int *signums, int max)
{
    struct kevent ev[16];
    struct timespec zero = {0, 0};
    if (max > 16)
        max = 16;
    int n = kevent(loop->sigfd, NULL, 0, ev, max, &zero);
    int got = 0;
    for (int i = 0; i < n; i++)
        if (ev[i].filter == EVFILT_SIGNAL)
            signums[got++] = (int)ev[i].ident;
    return got;
}

void kart__sigsource_kick(int signum)
{
    /* EVFILT_SIGNAL sees signals sent to the process. */
    kill(getpid(), signum);
}

/*
 * core/signal_signalfd.c — where signals come from on Linux: one signalfd
 * per loop.
 *
 * A signalfd only sees signals that are blocked, so the first watched
 * occurrence of a signal on a thread blocks it there, and the last stop,
 * counted over every loop of that thread, restores the thread's mask as it
 * was. The signalfd's mask is the union of the loop's watched signals; it
 * is widened and narrowed in place by calling signalfd() on the same fd
 * again, so the fd stays registered in the selector the whole time any
 * watcher is active.
 */
#include "fault.h"
#include "loop_private.h"

#ifndef KART_SIGNAL_SIGNALFD
#error "signal_signalfd.c is the Linux signal source: the Makefile builds it there only"
#endif

#include <pthread.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static int update_sigfd(kart_loop *loop)
{
    int fd = kart__sys_signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
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

int kart__sigsource_add(kart_loop *loop, int signum)
{
    thread_block(signum);
    sigaddset(&loop->sigmask, signum);
    int err = update_sigfd(loop);
    if (err < 0) {
        sigdelset(&loop->sigmask, signum);
        thread_unblock(signum);
    }
    return err;
}

void kart__sigsource_del(kart_loop *loop, int signum)
{
    sigdelset(&loop->sigmask, signum);
    if (loop->nsignums == 0) {
        kart_selector_unregister(loop->sel, loop->sigfd);
        close(loop->sigfd);
        loop->sigfd = -1;
    } else {
        update_sigfd(loop); /* narrowing an existing signalfd cannot fail */
    }
    thread_unblock(signum);
}

int kart__sigsource_read(kart_loop *loop, int *signums, int max)
{
    struct signalfd_siginfo info[16];
    if (max > 16)
        max = 16;
    ssize_t n = kart__sys_read(loop->sigfd, info, (size_t)max * sizeof(info[0]));
    if (n <= 0)
        return 0;
    int got = (int)((size_t)n / sizeof(info[0]));
    for (int i = 0; i < got; i++)
        signums[i] = (int)info[i].ssi_signo;
    return got;
}

void kart__sigsource_kick(int signum)
{
    /* Thread-directed: this thread has it blocked, so its signalfd sees it
     * even when other threads would have taken a process-directed one. */
    pthread_kill(pthread_self(), signum);
}

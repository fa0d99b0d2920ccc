/*
 * core/select_calls.c — kart_poll() and kart_select(): Python's
 * select.poll() and select.select() as single calls over arrays of fds.
 *
 * Both are built on ppoll(2), not select(2), so they have no FD_SETSIZE
 * limit and nanosecond timeouts, and both retry on EINTR with the time
 * that is left. Up to 64 fds need no allocation.
 */
#include "deadline.h"
#include "fault.h"
#include "backend.h"

#include <limits.h>
#include <stdlib.h>
#include <time.h>

#define STACK_FDS 64

static struct pollfd *pollfds(struct pollfd *stack, int n)
{
    return n <= STACK_FDS ? stack : malloc((size_t)n * sizeof(struct pollfd));
}

/* ppoll with EINTR retried for the time left. */
static int ppoll_all(struct pollfd *p, int n, int64_t timeout_ns)
{
    int64_t deadline = kart__deadline(timeout_ns);
    for (;;) {
        struct timespec ts = kart__timespec(timeout_ns);
        int r = kart__sys_ppoll(p, (nfds_t)n, timeout_ns < 0 ? NULL : &ts, NULL);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
        timeout_ns = kart__time_left(deadline);
    }
}

KART_API int kart_poll(kart_pollfd *fds, size_t nfds, int64_t timeout_ns)
{
    /* The return is a count of entries: an int. */
    if (nfds > INT_MAX || (nfds > 0 && !fds))
        return -EINVAL;
    int n = (int)nfds;
    for (int i = 0; i < n; i++)
        if (fds[i].events & ~(uint32_t)KART_EVENT_MASK)
            return -EINVAL;
    struct pollfd stack[STACK_FDS], *p = pollfds(stack, n);
    if (!p)
        return -ENOMEM;
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = fds[i].fd, .events = kart__to_poll(fds[i].events)};
    int r = ppoll_all(p, n, timeout_ns);
    if (r >= 0) {
        r = 0;
        for (int i = 0; i < n; i++) {
            fds[i].revents =
                (kart__from_poll((unsigned)p[i].revents) & kart__wanted(fds[i].events)) |
                ((p[i].revents & POLLNVAL) ? KART_ERROR : 0);
            r += fds[i].revents != 0;
        }
    }
    if (p != stack)
        free(p);
    return r;
}

static int count_of(const int *arr, const size_t *count)
{
    if (!count)
        return 0;
    /* A third of INT_MAX: the three counts add up to the int returned. */
    if (*count > INT_MAX / 3 || (*count > 0 && !arr))
        return -1;
    return (int)*count;
}

/* Keeps the entries of arr[0..n) whose pollfd (from p[base]) is ready in
 * the sense of `mask`; returns how many. */
static int compact(int *arr, int n, const struct pollfd *p, short mask)
{
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (p[i].revents & mask)
            arr[kept++] = arr[i];
    return kept;
}

KART_API int kart_select(int *rfds, size_t *nread, int *wfds, size_t *nwrite, int *xfds,
                         size_t *nexcept, int64_t timeout_ns)
{
    int nr = count_of(rfds, nread), nw = count_of(wfds, nwrite), nx = count_of(xfds, nexcept);
    if (nr < 0 || nw < 0 || nx < 0)
        return -EINVAL;
    int n = nr + nw + nx;
    struct pollfd stack[STACK_FDS], *p = pollfds(stack, n);
    if (!p)
        return -ENOMEM;
    int k = 0, r = 0;
    for (int i = 0; i < nr; i++)
        p[k++] = (struct pollfd){.fd = rfds[i], .events = POLLIN};
    for (int i = 0; i < nw; i++)
        p[k++] = (struct pollfd){.fd = wfds[i], .events = POLLOUT};
    for (int i = 0; i < nx; i++)
        p[k++] = (struct pollfd){.fd = xfds[i], .events = POLLPRI};
    for (int i = 0; i < n; i++)
        if (p[i].fd < 0)
            r = -EBADF;
    if (r == 0)
        r = ppoll_all(p, n, timeout_ns);
    for (int i = 0; r >= 0 && i < n; i++)
        if (p[i].revents & POLLNVAL)
            r = -EBADF; /* as select(2): nothing is reported */
    if (r >= 0) {
        /* select(2) counts hang-up and error as readable and error as
         * writable: a read or write then returns the condition. */
        const struct pollfd *pw = p + nr, *px = p + nr + nw;
        nr = compact(rfds, nr, p, POLLIN | POLLHUP | POLLERR);
        nw = compact(wfds, nw, pw, POLLOUT | POLLERR);
        nx = compact(xfds, nx, px, POLLPRI);
        if (nread)
            *nread = (size_t)nr;
        if (nwrite)
            *nwrite = (size_t)nw;
        if (nexcept)
            *nexcept = (size_t)nx;
        r = nr + nw + nx;
    }
    if (p != stack)
        free(p);
    return r;
}

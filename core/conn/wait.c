/*
 * core/wait.c — Python's multiprocessing.connection.wait over connections,
 * listeners and plain fds (a process sentinel is an fd). A connection whose
 * read-ahead buffer holds data, or that is at EOF, is ready without asking
 * the kernel; the others are polled together.
 */
#include "conn_private.h"
#include "deadline.h"
#include "fault.h"

#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#define STACK_FDS 32

KART_API int kart_conn_wait(kart_waitable *w, size_t n, int64_t timeout_ns)
{
    if (n > INT_MAX || (!w && n > 0))
        return -EINVAL;
    struct pollfd stack[STACK_FDS], *p = stack;
    if (n > STACK_FDS) {
        p = calloc((size_t)n, sizeof(*p));
        if (!p)
            return -ENOMEM;
    }
    int ready = 0, err = 0;
    for (size_t i = 0; i < n && !err; i++) {
        w[i].ready = false;
        p[i] = (struct pollfd){.fd = -1, .events = POLLIN};
        switch (w[i].kind) {
        case KART_WAIT_CONN: {
            kart_conn *c = w[i].u.conn;
            if (!c)
                err = -EINVAL;
            else if (!(c->flags & KART_CONN_READABLE))
                err = -EBADF;
            else if (c->state != KART__CONN_OK || kart__conn_buffered(c))
                w[i].ready = true, ready++;
            else
                p[i].fd = c->fd;
            break;
        }
        case KART_WAIT_LISTENER:
            if (!w[i].u.listener)
                err = -EINVAL;
            else
                p[i].fd = kart_listener_fileno(w[i].u.listener);
            break;
        case KART_WAIT_FD:
            if (w[i].u.fd < 0)
                err = -EINVAL;
            else
                p[i].fd = w[i].u.fd;
            break;
        default:
            err = -EINVAL;
        }
    }
    /* With something ready already, only look at the rest. */
    int64_t deadline = ready ? kart__deadline(0) : kart__deadline(timeout_ns);
    while (!err) {
        struct timespec ts, *tsp = NULL;
        int64_t left = 0;
        if (deadline != KART__NO_DEADLINE) {
            left = deadline - kart_now_ns();
            if (left < 0)
                left = 0;
            ts = kart__timespec(left);
            tsp = &ts;
        }
        int r = kart__sys_ppoll(p, (nfds_t)n, tsp, NULL);
        if (r < 0) {
            if (errno != EINTR)
                err = -errno;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (p[i].fd >= 0 && p[i].revents) {
                if (p[i].revents & POLLNVAL) {
                    err = -EBADF;
                    break;
                }
                w[i].ready = true;
                ready++;
            }
        }
        if (ready || left == 0)
            break;
    }
    if (p != stack)
        free(p);
    if (err)
        return err;
    /* Rule 3: a look answers 0; a wait that ran out is -ETIMEDOUT. */
    return ready || timeout_ns == 0 || n == 0 ? ready : -ETIMEDOUT;
}

/*
 * core/manager/server_replies.c — coalesced replies (server_replies.h).
 */
#include "server_replies.h"

#include "conn_private.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>

int mgr__reply_flush(mgr_replies *kept, kart_conn *c)
{
    if (kept->n == 0)
        return 0;
    int r = kart_conn_send_many(c, kept->iov, kept->n);
    for (int i = 0; i < kept->n; i++)
        free(kept->iov[i].iov_base);
    kept->n = 0;
    kept->bytes = 0;
    return r;
}

int mgr__reply_send(mgr_replies *kept, kart_conn *c, void *buf, size_t len, bool then_wait)
{
    if (then_wait && kept->n == 0 && !kart__conn_buffered(c)) {
        /* a synchronous client: the reply, and the wait for its next
         * request, in one system call where io_uring allows */
        int r = kart__conn_send_prefetch(c, buf, len);
        free(buf);
        return r;
    }
    kept->iov[kept->n].iov_base = buf;
    kept->iov[kept->n].iov_len = len;
    kept->n++;
    kept->bytes += len;
    /* another request is already here: answer it first, send both then */
    if (kept->n < MGR_REPLIES_KEEP_MAX && kept->bytes < MGR_REPLIES_KEEP_BYTES &&
        kart__conn_buffered(c))
        return 0;
    return mgr__reply_flush(kept, c);
}

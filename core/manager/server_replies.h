/*
 * core/manager/server_replies.h — the server's replies, coalesced: while
 * more of a client's requests are already buffered on its connection (a
 * pipelining client: kart_mbatch_run), a reply is kept and sent with the
 * next ones in one kart_conn_send_many, instead of one send(2) each. The
 * replies kept belong to the connection (its mcx holds them), not to a
 * thread: a thread-local would put their 1 KiB of iovecs in the static TLS
 * of every thread of every program that links libkart. Private to
 * core/manager.
 */
#ifndef KART_MGR_SERVER_REPLIES_H
#define KART_MGR_SERVER_REPLIES_H

#include <kart/conn.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#define MGR_REPLIES_KEEP_MAX 64 /* replies kept at most, and bytes: */
#define MGR_REPLIES_KEEP_BYTES (64u << 10)

/* The replies kept for one connection; zeroed is empty. */
typedef struct mgr_replies {
    struct iovec iov[MGR_REPLIES_KEEP_MAX];
    int n;
    size_t bytes;
} mgr_replies;

/* The texts of the '#TRACEBACK' replies a connection gets when the server
 * refuses it (its max_connections reached) or closes it for idleness
 * (idle_timeout_ns); proxy.c recognizes them. */
#define MGR_REFUSED_TEXT "kart: connection refused: too many connections"
#define MGR_IDLE_TEXT "kart: idle connection closed"

/* Sends the pickled reply buf (len bytes, taken: freed here), or keeps it
 * in kept while more requests are buffered on c (at most 64 replies or
 * 64 KiB).
 * then_wait: the caller's next step is a blocking receive on c (no
 * deadline); a reply sent alone then also waits for the next request's
 * first bytes (kart__conn_send_prefetch). 0, or the send's errors (the
 * replies kept are dropped). */
int mgr__reply_send(mgr_replies *kept, kart_conn *c, void *buf, size_t len, bool then_wait);
/* Sends the replies kept for c, if any (kept is empty afterwards, sent or
 * not). 0 or send errors. */
int mgr__reply_flush(mgr_replies *kept, kart_conn *c);

#endif

/*
 * core/manager/server_replies.h — the server's replies, coalesced: while
 * more of a client's requests are already buffered on its connection (a
 * pipelining client: kart_mbatch_run), a reply is kept and sent with the
 * next ones in one kart_conn_send_many, instead of one send(2) each. A
 * connection is served by one thread, so the kept replies are that
 * thread's. Private to core/manager.
 */
#ifndef KART_MGR_SERVER_REPLIES_H
#define KART_MGR_SERVER_REPLIES_H

#include <kart/conn.h>

#include <stdbool.h>
#include <stddef.h>

/* The texts of the '#TRACEBACK' replies a connection gets when the server
 * refuses it (its max_connections reached) or closes it for idleness
 * (idle_timeout_ns); proxy.c recognizes them. */
#define MGR_REFUSED_TEXT "kart: connection refused: too many connections"
#define MGR_IDLE_TEXT "kart: idle connection closed"

/* Sends the pickled reply buf (len bytes, taken: freed here), or keeps it
 * while more requests are buffered on c (at most 64 replies or 64 KiB).
 * then_wait: the caller's next step is a blocking receive on c (no
 * deadline); a reply sent alone then also waits for the next request's
 * first bytes (kart__conn_send_prefetch). 0, or the send's errors (the
 * replies kept are dropped). */
int mgr__reply_send(kart_conn *c, void *buf, size_t len, bool then_wait);
/* Sends the replies kept for c, if any. 0 or send errors. */
int mgr__reply_flush(kart_conn *c);

#endif

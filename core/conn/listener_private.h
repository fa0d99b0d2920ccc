/*
 * core/listener_private.h — the listener's layout, shared by the blocking
 * side (listener.c: create, accept, free) and the loop side
 * (listener_loop.c: accepting with the handshake driven by the loop).
 */
#ifndef KART_LISTENER_PRIVATE_H
#define KART_LISTENER_PRIVATE_H

#include <kart/conn.h>

#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

/* A blocking accept's connection while its handshake runs: free shuts it
 * down so that the handshake ends at once. Lives on the accepter's stack. */
typedef struct kart__accepting kart__accepting;
struct kart__accepting {
    kart__accepting *next;
    int fd;
};

/* A peer whose handshake the loop drives (listener_loop.c). */
typedef struct kart__hs_peer kart__hs_peer;

struct kart_listener {
    int fd;
    char *unlink_path; /* the socket file to remove on close, or NULL */
    kart_auth auth;    /* authkey points at key below */
    void *key;
    char digest[16];
    struct sockaddr_storage addr;
    socklen_t addrlen;
    /* Blocking accepts against free (listener.c), under mu. */
    pthread_mutex_t mu;
    pthread_cond_t idle; /* signalled when active drops to 0 while closing */
    int active;          /* accept calls inside */
    bool closing;        /* kart_listener_free is waiting for them */
    int wake_fd;         /* an eventfd free makes readable */
    pid_t wake_pid;      /* the process wake_fd was made in (fork) */
    kart__accepting *accepting;
    /* Python's last_accepted, under mu. */
    struct sockaddr_storage last;
    socklen_t lastlen;
    bool have_last;
    /* Loop accepting (listener_loop.c); loop thread only. */
    kart_loop *loop;
    kart_watch io;
    kart_listener_accept_cb acb;
    void *aarg;
    kart__hs_peer *peers; /* handshakes in progress */
};

/* Records a peer's address as the last accepted one. */
void kart__listener_note_peer(kart_listener *l, const struct sockaddr_storage *ss, socklen_t len);

/* Stops loop accepting and drops the handshakes in progress. */
void kart__listener_loop_stop(kart_listener *l);

#endif

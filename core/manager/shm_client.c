/*
 * core/manager/shm_client.c — the client's side of the fast path: on a
 * proxy's first typed call (or kart_proxy_shared), a dict, Queue or
 * JoinableQueue proxy of a kart server asks, on a connection of its own,
 * for the object's segment (shm_server.c says how) and maps it; every
 * typed call then works in the segment. A proxy that cannot (a TCP
 * address, python3's server, another user, no_shm on either side, any
 * failure) keeps the protocol for good. The proxy still holds its
 * server-side reference, so the object outlives the mapping's users.
 */
#include "proxy_hook.h"
#include "shm_path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int kind_of(const char *typeid)
{
    if (strcmp(typeid, "dict") == 0)
        return MSHM_DICT;
    if (strcmp(typeid, "Queue") == 0 || strcmp(typeid, "JoinableQueue") == 0)
        return MSHM_QUEUE;
    if (strcmp(typeid, "Namespace") == 0)
        return MSHM_NS;
    if (strcmp(typeid, "Value") == 0)
        return MSHM_VALUE;
    return 0;
}

/* Reads the server's one byte, and the fd that comes with 'F'. */
static int recv_byte(int sock, char *byte, int *fd)
{
    struct iovec iov = {.iov_base = byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t n;
    while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -errno;
    if (n == 0)
        return KART_EEOF;
    *fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*fd < 0)
                *fd = got;
            else
                close(got); /* never more than one: refuse the rest */
        }
    }
    return 0;
}

static int attach(kart_proxy *p, mshm **out)
{
    int kind = kind_of(kart_proxy_typeid(p));
    const kart_manager_options *opts;
    bool python;
    kart_manager *m = mgr__proxy_manager(p);
    const char *address = mgr__manager_address(m, &opts, &python);
    if (!kind || python || opts->no_shm)
        return -ENOTSUP;
    kart_auth auth = {
        .authkey = opts->authkey, .authkey_len = opts->authkey_len, .timeout_ns = opts->timeout_ns};
    kart_conn *c = NULL;
    int r = kart_conn_connect(&c, address, opts->authkey ? &auth : NULL);
    if (r < 0)
        return r;
    int sock = kart_conn_fileno(c);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(sock, (struct sockaddr *)&ss, &sl) < 0 || ss.ss_family != AF_UNIX) {
        kart_conn_close(c);
        return -ENOTSUP; /* TCP: another host, maybe; the protocol it is */
    }
    kart_obj *req = mv_tuple(4, mv_none(), mv_strz("kart_shm_attach"),
                             mv_tuple(1, mv_strz(mgr__proxy_ident_of(p))), mv_dict_new());
    void *buf = NULL;
    size_t len = 0;
    r = req ? mv_pickle(req, 4, &buf, &len) : -ENOMEM;
    mv_free(req);
    if (r == 0)
        r = kart_conn_send_bytes(c, buf, len);
    free(buf);
    char byte = 0;
    int fd = -1;
    if (r == 0)
        r = recv_byte(sock, &byte, &fd);
    if (r == 0 && byte != 'F')
        r = -ENOTSUP; /* 'E': refused, the reply says why */
    if (r == 0 && fd < 0)
        r = -EPROTO;
    /* the reply frame, for the record (refusals are not errors) */
    buf = NULL;
    if (r == 0 && kart_conn_recv_bytes(c, &buf, &len, 4096) == 0)
        free(buf);
    kart_conn_close(c);
    mshm *s = NULL;
    if (r == 0 && (r = mgr__shm_map(&s, fd, kind)) < 0)
        close(fd);
    else if (fd >= 0 && r < 0)
        close(fd);
    if (r == 0)
        *out = s;
    return r;
}

mshm *mgr__proxy_fast(kart_proxy *p)
{
    mshm_slot *sl = mgr__proxy_slot(p);
    int st = atomic_load_explicit(&sl->state, memory_order_acquire);
    if (st == MSLOT_MAPPED)
        /* a forked child takes its own reference first, as calls do */
        return mgr__proxy_adopt(p) == 0 ? sl->s : NULL;
    if (st != MSLOT_UNTRIED)
        return NULL;
    int expect = MSLOT_UNTRIED;
    if (!atomic_compare_exchange_strong(&sl->state, &expect, MSLOT_TRYING))
        return NULL; /* another thread attaches: this call takes the protocol */
    mshm *s = NULL;
    int r = mgr__proxy_adopt(p);
    if (r == 0)
        r = attach(p, &s);
    if (r == 0)
        sl->s = s;
    atomic_store_explicit(&sl->state, r == 0 ? MSLOT_MAPPED : MSLOT_REFUSED, memory_order_release);
    return r == 0 ? s : NULL;
}

void mgr__proxy_fast_drop(kart_proxy *p, int new_state)
{
    mshm_slot *sl = mgr__proxy_slot(p);
    if (atomic_load(&sl->state) == MSLOT_MAPPED) {
        mgr__shm_unmap(sl->s);
        sl->s = NULL;
    }
    atomic_store(&sl->state, new_state);
}

KART_API int kart_proxy_shared(kart_proxy *p)
{
    if (!p)
        return -EINVAL;
    return mgr__proxy_fast(p) ? 1 : 0;
}

KART_API int kart_proxy_set_shared(kart_proxy *p, bool use)
{
    if (!p)
        return -EINVAL;
    int st = atomic_load(&mgr__proxy_slot(p)->state);
    if (st == MSLOT_TRYING)
        return -EBUSY;
    if (!use)
        mgr__proxy_fast_drop(p, MSLOT_REFUSED);
    else if (st == MSLOT_REFUSED)
        atomic_store(&mgr__proxy_slot(p)->state, MSLOT_UNTRIED);
    return 0;
}

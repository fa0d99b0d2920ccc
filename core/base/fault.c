/*
 * core/base/fault.c — the test build's half of core/base/fault.h: a count
 * and a rule per site, the wrappers that library code calls as
 * kart__sys_<name>, and the tests' controls. Only libkart-faults.a has it.
 *
 * A rule is a window [first, last] over the calls its site sees from the
 * moment it is armed: each call takes a ticket (one atomic add), and a
 * ticket inside the window fires. So among threads, or processes sharing
 * the state, exactly the nth call fires, whoever makes it, without locks.
 * Everything a call does here is async-signal-safe (atomics, getpid,
 * raise, nanosleep): routed calls run in fork children and handlers too.
 */
#include "fault.h"

#if !KART_FAULTS
#error "core/base/fault.c is for the test build (-DKART_FAULTS=1)"
#endif

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <time.h>
#ifdef KART_HAVE_URING
#include <liburing.h>
#endif

typedef struct site_state {
    _Atomic uint64_t count; /* calls since the reset */
    _Atomic uint64_t fired; /* calls the rules hit */
    _Atomic uint64_t seen;  /* tickets taken since the rule was armed */
    _Atomic uint64_t first; /* the window of tickets that fire; 0: none */
    _Atomic uint64_t last;
    _Atomic int32_t action;
    _Atomic int32_t err;
    _Atomic int32_t skip_pid; /* calls in this process take no ticket */
    _Atomic int64_t arg;
} site_state;

typedef struct fault_state {
    site_state site[KART__FAULT_NSITES];
} fault_state;

static fault_state local_state;
static fault_state *_Atomic state = &local_state;

#define NAME_SYS(name, io) #name,
#define NAME_POINT(name) #name,
static const char *const site_names[KART__FAULT_NSITES] = {KART__FAULT_SYSCALLS(NAME_SYS)
                                                               KART__FAULT_POINTS(NAME_POINT)};
#define IO_SYS(name, io) io,
static const unsigned char site_io[KART__FAULT_NSYS] = {KART__FAULT_SYSCALLS(IO_SYS)};

/* The environment's report (the end of this file). */
static const char *env_report;
static void env_fired(enum kart__fault_site site);

static site_state *site_at(enum kart__fault_site site)
{
    return &atomic_load_explicit(&state, memory_order_acquire)->site[site];
}

static void pause_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* One call of a routed call, or one pass of a point: counts it and
 * applies the site's rule. Returns the errno to fail with, or 0 to go on;
 * a SHORT rule lowers *max (when the call has one). */
static int enter(enum kart__fault_site site, size_t *max)
{
    site_state *s = site_at(site);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    uint64_t first = atomic_load_explicit(&s->first, memory_order_acquire);
    if (first == 0)
        return 0;
    int32_t skip = atomic_load_explicit(&s->skip_pid, memory_order_relaxed);
    if (skip && skip == (int32_t)getpid())
        return 0;
    uint64_t n = atomic_fetch_add_explicit(&s->seen, 1, memory_order_relaxed) + 1;
    if (n < first || n > atomic_load_explicit(&s->last, memory_order_relaxed))
        return 0;
    atomic_fetch_add_explicit(&s->fired, 1, memory_order_relaxed);
    if (env_report)
        env_fired(site);
    int64_t arg = atomic_load_explicit(&s->arg, memory_order_relaxed);
    switch (atomic_load_explicit(&s->action, memory_order_relaxed)) {
    case KART__FAULT_FAIL:
        return atomic_load_explicit(&s->err, memory_order_relaxed);
    case KART__FAULT_SHORT:
        if (max && *max > (uint64_t)arg)
            *max = (size_t)arg;
        return 0;
    case KART__FAULT_KILL:
        raise(SIGKILL);
        return 0;
    case KART__FAULT_DELAY:
        pause_ns(arg);
        return 0;
    default:
        return 0;
    }
}

/* ---- the tests' side ---- */

int kart__fault_arm(enum kart__fault_site site, const kart__fault_rule *r)
{
    if ((unsigned)site >= KART__FAULT_NSITES)
        return -EINVAL;
    site_state *s = site_at(site);
    if (!r) {
        atomic_store_explicit(&s->first, 0, memory_order_release);
        return 0;
    }
    if (r->nth == 0)
        return -EINVAL;
    switch (r->action) {
    case KART__FAULT_FAIL:
        if ((unsigned)site >= KART__FAULT_NSYS || r->err <= 0)
            return -EINVAL;
        break;
    case KART__FAULT_SHORT:
        if ((unsigned)site >= KART__FAULT_NSYS || !site_io[site] || r->arg < 1)
            return -EINVAL;
        break;
    case KART__FAULT_KILL:
        break;
    case KART__FAULT_DELAY:
        if (r->arg < 0)
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }
    /* Off while the rule changes; first, stored last, publishes it. */
    atomic_store_explicit(&s->first, 0, memory_order_release);
    atomic_store_explicit(&s->seen, 0, memory_order_relaxed);
    atomic_store_explicit(&s->action, r->action, memory_order_relaxed);
    atomic_store_explicit(&s->err, r->err, memory_order_relaxed);
    atomic_store_explicit(&s->arg, r->arg, memory_order_relaxed);
    atomic_store_explicit(&s->skip_pid, r->in_children ? (int32_t)getpid() : 0,
                          memory_order_relaxed);
    uint64_t last = r->times == KART__FAULT_ALWAYS ? UINT64_MAX : (uint64_t)r->nth + r->times - 1;
    atomic_store_explicit(&s->last, last, memory_order_relaxed);
    atomic_store_explicit(&s->first, r->nth, memory_order_release);
    return 0;
}

void kart__fault_reset(void)
{
    for (int i = 0; i < KART__FAULT_NSITES; i++) {
        site_state *s = site_at((enum kart__fault_site)i);
        atomic_store_explicit(&s->first, 0, memory_order_release);
        atomic_store_explicit(&s->seen, 0, memory_order_relaxed);
        atomic_store_explicit(&s->count, 0, memory_order_relaxed);
        atomic_store_explicit(&s->fired, 0, memory_order_relaxed);
    }
}

uint64_t kart__fault_count(enum kart__fault_site site)
{
    if ((unsigned)site >= KART__FAULT_NSITES)
        return 0;
    return atomic_load_explicit(&site_at(site)->count, memory_order_relaxed);
}

uint64_t kart__fault_fired(enum kart__fault_site site)
{
    if ((unsigned)site >= KART__FAULT_NSITES)
        return 0;
    return atomic_load_explicit(&site_at(site)->fired, memory_order_relaxed);
}

int kart__fault_share(void)
{
    if (atomic_load(&state) != &local_state) {
        kart__fault_reset();
        return 0;
    }
    void *p =
        mmap(NULL, sizeof(fault_state), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    atomic_store_explicit(&state, (fault_state *)p, memory_order_release);
    return 0;
}

const char *kart__fault_name(enum kart__fault_site site)
{
    return (unsigned)site < KART__FAULT_NSITES ? site_names[site] : NULL;
}

int kart__fault_site_of(const char *name)
{
    for (int i = 0; name && i < KART__FAULT_NSITES; i++)
        if (strcmp(site_names[i], name) == 0)
            return i;
    return -1;
}

/* ---- fault points ---- */

void kart__fault_point(enum kart__fault_site site)
{
    (void)enter(site, NULL);
}

bool kart__fault_armed(enum kart__fault_site site)
{
    return atomic_load_explicit(&site_at(site)->first, memory_order_acquire) != 0;
}

/* ---- the routed calls ---- */

/* For calls that fail with -1 (or `fails`) and errno. */
#define ROUTE(name, fails)                                                                         \
    do {                                                                                           \
        int e_ = enter(KART__SYS_##name, NULL);                                                    \
        if (e_) {                                                                                  \
            errno = e_;                                                                            \
            return fails;                                                                          \
        }                                                                                          \
    } while (0)

/* For calls that return the error: posix_spawn's errno, liburing's -errno. */
#define ROUTE_RET(name, sign)                                                                      \
    do {                                                                                           \
        int e_ = enter(KART__SYS_##name, NULL);                                                    \
        if (e_)                                                                                    \
            return sign e_;                                                                        \
    } while (0)

/* readlink of /proc/self/fd/<fd> (async-signal-safe). */
static ssize_t fd_target(int fd, char *target, size_t cap)
{
    char path[32] = "/proc/self/fd/", digits[12];
    size_t at = strlen(path), nd = 0;
    for (unsigned v = (unsigned)fd; v || nd == 0; v /= 10)
        digits[nd++] = (char)('0' + v % 10);
    while (nd)
        path[at++] = digits[--nd];
    path[at] = '\0';
    return readlink(path, target, cap);
}

/* Whether fd moves whole messages: a datagram or seqpacket socket, or an
 * anonymous inode (eventfd, signalfd, timerfd, inotify: fixed records, an
 * eventfd write of fewer than 8 bytes is EINVAL). A kernel never cuts one
 * of those short, it truncates or refuses it, so a SHORT rule leaves their
 * transfers whole rather than invent a loss. Async-signal-safe. */
static bool whole_messages(int fd)
{
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
        return type != SOCK_STREAM;
    char target[16];
    ssize_t n = fd_target(fd, target, sizeof(target));
    return n >= 11 && memcmp(target, "anon_inode:", 11) == 0;
}

/* An eventfd's write fails with EAGAIN only when its counter is full, and
 * its reader is then woken: the loop's and the process pool's wake-ups
 * take EAGAIN as "a wake-up is pending already". An injected EAGAIN on an
 * eventfd therefore writes first, as that kernel state would be, then
 * fails; without the write it made a state no kernel makes (a wake-up
 * lost behind a success: make check-faults found 2 hangs, write:1:EAGAIN
 * in check_pool and write:3:EAGAIN in check_loop_future). */
static void eagain_as_the_kernel(int fd, int e, const void *buf, size_t n)
{
    char target[24];
    if (e == EAGAIN && fd_target(fd, target, sizeof(target)) == 20 &&
        memcmp(target, "anon_inode:[eventfd]", 20) == 0) {
        ssize_t w = write(fd, buf, n); /* failing: the counter is full */
        (void)w;
    }
}

/* For the reads and writes, which may also be cut short: *max. */
#define ROUTE_IO(name, fd, max)                                                                    \
    do {                                                                                           \
        size_t was_ = *(max);                                                                      \
        int e_ = enter(KART__SYS_##name, (max));                                                   \
        if (e_) {                                                                                  \
            errno = e_;                                                                            \
            return -1;                                                                             \
        }                                                                                          \
        if (*(max) != was_ && whole_messages(fd))                                                  \
            *(max) = was_;                                                                         \
    } while (0)

/* Copies the first max bytes of iov[0..n) into out[0..cap); returns the
 * count of entries. A short transfer may stop at an entry, so cap is not
 * a limit that matters. */
#define CLIP_CAP 64
static int clip(const struct iovec *iov, int n, size_t max, struct iovec *out)
{
    int k = 0;
    for (int i = 0; i < n && k < CLIP_CAP && max > 0; i++) {
        size_t len = iov[i].iov_len < max ? iov[i].iov_len : max;
        out[k++] = (struct iovec){iov[i].iov_base, len};
        max -= len;
    }
    return k;
}

int kart__sys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    ROUTE(accept4, -1);
    return accept4(fd, addr, len, flags);
}

int kart__sys_socket(int domain, int type, int protocol)
{
    ROUTE(socket, -1);
    return socket(domain, type, protocol);
}

int kart__sys_socketpair(int domain, int type, int protocol, int sv[2])
{
    ROUTE(socketpair, -1);
    return socketpair(domain, type, protocol, sv);
}

int kart__sys_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    ROUTE(bind, -1);
    return bind(fd, addr, len);
}

int kart__sys_listen(int fd, int backlog)
{
    ROUTE(listen, -1);
    return listen(fd, backlog);
}

int kart__sys_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    ROUTE(connect, -1);
    return connect(fd, addr, len);
}

ssize_t kart__sys_read(int fd, void *buf, size_t n)
{
    ROUTE_IO(read, fd, &n);
    return read(fd, buf, n);
}

ssize_t kart__sys_write(int fd, const void *buf, size_t n)
{
    size_t was = n;
    int e = enter(KART__SYS_write, &n);
    if (e) {
        eagain_as_the_kernel(fd, e, buf, n);
        errno = e;
        return -1;
    }
    if (n != was && whole_messages(fd))
        n = was;
    return write(fd, buf, n);
}

ssize_t kart__sys_pread(int fd, void *buf, size_t n, off_t off)
{
    ROUTE_IO(read, fd, &n);
    return pread(fd, buf, n, off);
}

ssize_t kart__sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    ROUTE_IO(write, fd, &n);
    return pwrite(fd, buf, n, off);
}

ssize_t kart__sys_readv(int fd, const struct iovec *iov, int n)
{
    size_t max = SIZE_MAX;
    ROUTE_IO(readv, fd, &max);
    if (max == SIZE_MAX)
        return readv(fd, iov, n);
    struct iovec c[CLIP_CAP];
    return readv(fd, c, clip(iov, n, max, c));
}

ssize_t kart__sys_writev(int fd, const struct iovec *iov, int n)
{
    size_t max = SIZE_MAX;
    ROUTE_IO(writev, fd, &max);
    if (max == SIZE_MAX)
        return writev(fd, iov, n);
    struct iovec c[CLIP_CAP];
    return writev(fd, c, clip(iov, n, max, c));
}

ssize_t kart__sys_send(int fd, const void *buf, size_t n, int flags)
{
    ROUTE_IO(send, fd, &n);
    return send(fd, buf, n, flags);
}

ssize_t kart__sys_recv(int fd, void *buf, size_t n, int flags)
{
    ROUTE_IO(recv, fd, &n);
    return recv(fd, buf, n, flags);
}

ssize_t kart__sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    size_t max = SIZE_MAX;
    ROUTE_IO(sendmsg, fd, &max);
    if (max == SIZE_MAX)
        return sendmsg(fd, msg, flags);
    struct iovec c[CLIP_CAP];
    struct msghdr m = *msg;
    m.msg_iov = c;
    m.msg_iovlen = (size_t)clip(msg->msg_iov, (int)msg->msg_iovlen, max, c);
    return sendmsg(fd, &m, flags);
}

ssize_t kart__sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
    size_t max = SIZE_MAX;
    ROUTE_IO(recvmsg, fd, &max);
    if (max == SIZE_MAX)
        return recvmsg(fd, msg, flags);
    struct iovec c[CLIP_CAP];
    struct msghdr m = *msg;
    m.msg_iov = c;
    m.msg_iovlen = (size_t)clip(msg->msg_iov, (int)msg->msg_iovlen, max, c);
    ssize_t r = recvmsg(fd, &m, flags);
    msg->msg_namelen = m.msg_namelen;
    msg->msg_controllen = m.msg_controllen;
    msg->msg_flags = m.msg_flags;
    return r;
}

void *kart__sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    ROUTE(mmap, MAP_FAILED);
    return mmap(addr, len, prot, flags, fd, off);
}

int kart__sys_munmap(void *addr, size_t len)
{
    ROUTE(munmap, -1);
    return munmap(addr, len);
}

void *kart__sys_mremap(void *old, size_t old_len, size_t new_len, int flags)
{
    ROUTE(mremap, MAP_FAILED);
    return mremap(old, old_len, new_len, flags);
}

int kart__sys_ftruncate(int fd, off_t len)
{
    ROUTE(ftruncate, -1);
    return ftruncate(fd, len);
}

int kart__sys_memfd_create(const char *name, unsigned flags)
{
    ROUTE(memfd_create, -1);
    return memfd_create(name, flags);
}

int kart__sys_shm_open(const char *name, int oflag, mode_t mode)
{
    ROUTE(shm_open, -1);
    return shm_open(name, oflag, mode);
}

pid_t kart__sys_fork(void)
{
    ROUTE(fork, -1);
    return fork();
}

int kart__sys_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    ROUTE_RET(posix_spawn, +);
    return posix_spawn(pid, path, fa, attr, argv, envp);
}

int kart__sys_posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    ROUTE_RET(posix_spawn, +);
    return posix_spawnp(pid, file, fa, attr, argv, envp);
}

int kart__sys_pidfd_open(pid_t pid, unsigned flags)
{
    ROUTE(pidfd_open, -1);
    return kart__pidfd_open(pid, flags);
}

int kart__sys_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                             void *arg)
{
    ROUTE_RET(pthread_create, +);
    return pthread_create(t, attr, fn, arg);
}

int kart__sys_pipe2(int fds[2], int flags)
{
    ROUTE(pipe2, -1);
    return pipe2(fds, flags);
}

int kart__sys_pipe(int fds[2])
{
    ROUTE(pipe2, -1);
    return pipe(fds);
}

int kart__sys_eventfd(unsigned initval, int flags)
{
    ROUTE(eventfd, -1);
    return eventfd(initval, flags);
}

int kart__sys_signalfd(int fd, const sigset_t *mask, int flags)
{
    ROUTE(signalfd, -1);
    return signalfd(fd, mask, flags);
}

int kart__sys_epoll_create1(int flags)
{
    ROUTE(epoll_create1, -1);
    return epoll_create1(flags);
}

int kart__sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    ROUTE(epoll_ctl, -1);
    return epoll_ctl(epfd, op, fd, ev);
}

int kart__sys_epoll_wait(int epfd, struct epoll_event *evs, int max, int ms)
{
    ROUTE(epoll_wait, -1);
    return epoll_wait(epfd, evs, max, ms);
}

int kart__sys_epoll_pwait2(int epfd, struct epoll_event *evs, int max, const struct timespec *ts)
{
    ROUTE(epoll_wait, -1);
#ifdef SYS_epoll_pwait2
    return (int)syscall(SYS_epoll_pwait2, epfd, evs, max, ts, NULL, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int kart__sys_poll(struct pollfd *fds, nfds_t n, int ms)
{
    ROUTE(poll, -1);
    return poll(fds, n, ms);
}

int kart__sys_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    ROUTE(poll, -1);
    return ppoll(fds, n, ts, mask);
}

int kart__sys_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts,
                      const sigset_t *mask)
{
    ROUTE(pselect, -1);
    return pselect(nfds, rd, wr, ex, ts, mask);
}

#ifdef KART_HAVE_URING
int kart__sys_io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags)
{
    ROUTE_RET(io_uring_setup, -);
    return io_uring_queue_init(entries, ring, flags);
}

int kart__sys_io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
                                         struct io_uring_params *p)
{
    ROUTE_RET(io_uring_setup, -);
    return io_uring_queue_init_params(entries, ring, p);
}

int kart__sys_io_uring_submit(struct io_uring *ring)
{
    ROUTE_RET(io_uring_enter, -);
    return io_uring_submit(ring);
}

int kart__sys_io_uring_submit_and_wait_timeout(struct io_uring *ring, struct io_uring_cqe **cqe,
                                               unsigned wait_nr, struct __kernel_timespec *ts,
                                               sigset_t *mask)
{
    ROUTE_RET(io_uring_enter, -);
    return io_uring_submit_and_wait_timeout(ring, cqe, wait_nr, ts, mask);
}

int kart__sys_io_uring_submit_and_get_events(struct io_uring *ring)
{
    ROUTE_RET(io_uring_enter, -);
    return io_uring_submit_and_get_events(ring);
}

int kart__sys_io_uring_wait_cqe(struct io_uring *ring, struct io_uring_cqe **cqe)
{
    ROUTE_RET(io_uring_enter, -);
    return io_uring_wait_cqe(ring, cqe);
}

int kart__sys_io_uring_register_ring_fd(struct io_uring *ring)
{
    ROUTE_RET(io_uring_register, -);
    return io_uring_register_ring_fd(ring);
}

int kart__sys_io_uring_register_buf_ring(struct io_uring *ring, struct io_uring_buf_reg *reg,
                                         unsigned flags)
{
    ROUTE_RET(io_uring_register, -);
    return io_uring_register_buf_ring(ring, reg, flags);
}

int kart__sys_io_uring_enable_rings(int ring_fd)
{
    ROUTE(io_uring_register, -1);
    return (int)syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
}
#endif

void *kart__sys_malloc(size_t n)
{
    ROUTE(malloc, NULL);
    return malloc(n);
}

void *kart__sys_calloc(size_t count, size_t size)
{
    ROUTE(malloc, NULL);
    return calloc(count, size);
}

/* A failed realloc leaves the block as it was, as realloc does. */
void *kart__sys_realloc(void *p, size_t n)
{
    ROUTE(malloc, NULL);
    return realloc(p, n);
}

/* ---- arming from the environment (scripts/check-faults) ----
 *
 * An unmodified suite runs with faults injected when KART_FAULT is set:
 * "site:nth:errno[:times]" fails the nth call of site (and the times-1
 * after it; times 0 is every call from the nth on) with errno, given by
 * name (EINTR) or number; "site:nth:short=N[:times]" cuts a read or write
 * to at most N bytes. Several rules are separated by commas. The rules
 * are armed before main, in the process that the suite starts as (the
 * "root"), and each process that the root forks starts from that armed
 * state again with counts of 0: Check runs each test in a child forked
 * from the root, so each test sees the nth call of its own fail, whatever
 * the tests before it did. Processes that a test forks inherit the test's
 * counts, so "the nth call" spans the test and its children.
 *
 * KART_FAULT_REPORT=path: each process appends what it saw to path, one
 * line per record, so that the driver learns the range of nth to try and
 * whether the fault was reached: "F pid site" when a rule fires (written
 * at once, so that it survives a crash), and at a normal exit "C pid site
 * count" for each site called and "D pid fds" with the process's open
 * descriptors (a test that leaks one on an error path has more than the
 * same test without the fault). Nothing of this runs unless one of the
 * two variables is set. */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>

static pid_t env_root; /* the process that armed from env */
static kart__fault_rule env_rule[KART__FAULT_NSITES];
static bool env_armed[KART__FAULT_NSITES];

#define ERRNO_NAME(e) {#e, e},
static const struct {
    const char *name;
    int err;
} errno_names[] = {
    /* The errors that the routed calls can return (their man pages). */
    ERRNO_NAME(EPERM) ERRNO_NAME(ENOENT) ERRNO_NAME(ESRCH) ERRNO_NAME(EINTR) ERRNO_NAME(EIO)
        ERRNO_NAME(EBADF) ERRNO_NAME(EAGAIN) ERRNO_NAME(ENOMEM) ERRNO_NAME(EACCES) ERRNO_NAME(EBUSY)
            ERRNO_NAME(EEXIST) ERRNO_NAME(ENODEV) ERRNO_NAME(EINVAL) ERRNO_NAME(ENFILE)
                ERRNO_NAME(EMFILE) ERRNO_NAME(EFBIG) ERRNO_NAME(ENOSPC) ERRNO_NAME(EPIPE)
                    ERRNO_NAME(ENAMETOOLONG) ERRNO_NAME(ENOSYS) ERRNO_NAME(ETIME) ERRNO_NAME(EPROTO)
                        ERRNO_NAME(EOPNOTSUPP) ERRNO_NAME(EAFNOSUPPORT) ERRNO_NAME(EADDRINUSE)
                            ERRNO_NAME(EADDRNOTAVAIL) ERRNO_NAME(ENETUNREACH)
                                ERRNO_NAME(ECONNABORTED) ERRNO_NAME(ECONNRESET) ERRNO_NAME(ENOBUFS)
                                    ERRNO_NAME(ETIMEDOUT) ERRNO_NAME(ECONNREFUSED)
                                        ERRNO_NAME(EINPROGRESS)};

static int errno_of(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (strlen(errno_names[i].name) == len && strncmp(errno_names[i].name, s, len) == 0)
            return errno_names[i].err;
    char *end;
    long v = strtol(s, &end, 10);
    return end == s + len && v > 0 && v < 4096 ? (int)v : -1;
}

/* Parses one "site:nth:what[:times]" of KART_FAULT into its site's rule;
 * returns -1 on a malformed one. */
static int env_parse_one(const char *s, size_t len)
{
    char buf[128];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *save = NULL;
    char *name = strtok_r(buf, ":", &save), *nth = strtok_r(NULL, ":", &save);
    char *what = strtok_r(NULL, ":", &save), *times = strtok_r(NULL, ":", &save);
    if (!name || !nth || !what || strtok_r(NULL, ":", &save))
        return -1;
    int site = kart__fault_site_of(name);
    char *end;
    unsigned long n = strtoul(nth, &end, 10);
    if (site < 0 || *end || n == 0 || n > UINT32_MAX)
        return -1;
    kart__fault_rule r = {.nth = (unsigned)n, .times = 1};
    if (times) {
        unsigned long t = strtoul(times, &end, 10);
        if (*end || t > UINT32_MAX)
            return -1;
        r.times = (unsigned)t;
    }
    if (strncmp(what, "short=", 6) == 0) {
        long long max = strtoll(what + 6, &end, 10);
        if (*end || max < 1)
            return -1;
        r.action = KART__FAULT_SHORT;
        r.arg = max;
    } else {
        r.action = KART__FAULT_FAIL;
        r.err = errno_of(what, strlen(what));
    }
    if (kart__fault_arm((enum kart__fault_site)site, &r) != 0)
        return -1;
    env_rule[site] = r;
    env_armed[site] = true;
    return 0;
}

/* Appends one line to the report; async-signal-safe (open, write). */
static void env_say(const char *line, size_t len)
{
    int fd = open(env_report, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    ssize_t r = write(fd, line, len);
    (void)r;
    close(fd);
}

/* Formats "F pid site\n" without stdio (a rule fires in handlers and in
 * children that must not take stdio's locks). */
static void env_fired(enum kart__fault_site site)
{
    char line[96], digits[16];
    size_t len = 0, nd = 0;
    line[len++] = 'F';
    line[len++] = ' ';
    for (unsigned v = (unsigned)getpid(); v || nd == 0; v /= 10)
        digits[nd++] = (char)('0' + v % 10);
    while (nd)
        line[len++] = digits[--nd];
    line[len++] = ' ';
    for (const char *p = site_names[site]; *p && len < sizeof(line) - 1; p++)
        line[len++] = *p;
    line[len++] = '\n';
    env_say(line, len);
}

/* A process forked by the root starts from the armed state again. */
static void env_after_fork(void)
{
    if (getppid() != env_root || atomic_load(&state) != &local_state)
        return;
    kart__fault_reset();
    for (int i = 0; i < KART__FAULT_NSITES; i++)
        if (env_armed[i])
            (void)kart__fault_arm((enum kart__fault_site)i, &env_rule[i]);
}

/* core/process/process_registry.c; weak, so that this layer names no
 * function of a higher one at link time. */
__attribute__((weak)) int kart__proc_sentinel_wfd(void);

/* The descriptors open at exit, less the one kart holds by design: the
 * write end of a child's pipe sentinel (a child started where pidfd_open
 * failed keeps it until it ends), which a pidfd-started child does not
 * have, so a fault that takes pidfd_open away is not an fd leak. */
static int env_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    n--; /* not the directory's own */
    int sentinel = kart__proc_sentinel_wfd ? kart__proc_sentinel_wfd() : -1;
    if (sentinel >= 0 && fcntl(sentinel, F_GETFD) >= 0)
        n--;
    return n;
}

__attribute__((destructor)) static void env_exit(void)
{
    if (!env_report)
        return;
    char buf[8192];
    int len = 0, pid = (int)getpid();
    for (int i = 0; i < KART__FAULT_NSITES; i++) {
        uint64_t c = kart__fault_count((enum kart__fault_site)i);
        if (c && len < (int)sizeof(buf) - 128)
            len += snprintf(buf + len, sizeof(buf) - (size_t)len, "C %d %s %llu\n", pid,
                            site_names[i], (unsigned long long)c);
    }
    len += snprintf(buf + len, sizeof(buf) - (size_t)len, "D %d %d\n", pid, env_open_fds());
    env_say(buf, (size_t)len);
}

__attribute__((constructor)) static void env_start(void)
{
    const char *spec = getenv("KART_FAULT"), *report = getenv("KART_FAULT_REPORT");
    if ((!spec || !*spec) && (!report || !*report))
        return;
    env_root = getpid();
    env_report = report && *report ? report : NULL;
    for (const char *p = spec && *spec ? spec : NULL; p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (env_parse_one(p, len) != 0) {
            fprintf(stderr,
                    "KART_FAULT: bad rule \"%.*s\" (site:nth:ERRNO[:times] or "
                    "site:nth:short=N[:times])\n",
                    (int)len, p);
            exit(2);
        }
        p = comma ? comma + 1 : NULL;
    }
    pthread_atfork(NULL, NULL, env_after_fork);
}

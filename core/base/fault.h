/*
 * core/base/fault.h — fault injection for tests: one table of the system
 * calls that matter, and named fault points. SQLite's aSyscall[] (os_unix.c)
 * is the model: error paths that real kernels rarely take are tested by
 * making the kernel "fail" on demand.
 *
 * Library code makes a routed system call as kart__sys_<name>(...) with
 * the call's own arguments and conventions (kart__sys_accept4(fd, NULL,
 * NULL, flags) returns -1 and sets errno like accept4), and marks a place
 * where a test may want the process to die with KART__FAULT_POINT(name).
 * Every routed call and every point is a "site", listed once below.
 *
 * In the library (KART_FAULTS undefined or 0) kart__sys_accept4 is the
 * macro accept4 and KART__FAULT_POINT expands to nothing that runs: no
 * table, no load, no symbol. libkart.a and libkart.so are built that way.
 * The test build (-DKART_FAULTS=1: $(OUT)/libkart-faults.a, which the
 * suites link) sends each call through fault.c, which counts it and, when
 * a test armed its site, makes it fail with an errno, return short, stall,
 * or SIGKILL the process, on the Nth call from the arming on:
 *
 *   kart__fault_fail(KART__SYS_accept4, 1, 1, EMFILE);   next accept4 fails
 *   kart__fault_fail(KART__SYS_pidfd_open, 1, KART__FAULT_ALWAYS, ENOSYS);
 *   kart__fault_short(KART__SYS_sendmsg, 2, 1, 100);     2nd sends <= 100 B
 *   kart__fault_kill(KART__FP_queue_put_committed, 1);   die right there
 *   n = kart__fault_count(KART__SYS_mmap);               calls since reset
 *   kart__fault_reset();                                 all off, counts 0
 *
 * Counting first and then failing each call in turn (nth = 1 .. count) is
 * the loop that walks every error path of an operation. The state is
 * atomic (threads may call and arm at once; a rule armed while its site is
 * busy may be off by a call), and a fork child inherits a copy of it.
 * kart__fault_share() moves it into shared memory first, so that the
 * counts and rules span the children forked afterwards: "the first pool
 * worker to get there dies, exactly one" is kart__fault_share() and then
 * kart__fault_kill_in_child(site, 1).
 */
#ifndef KART_FAULT_H
#define KART_FAULT_H

#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef KART_FAULTS
#define KART_FAULTS 0
#endif

/* The routed system calls: X(name, io), io 1 where a short transfer is a
 * fault that can be injected. One site may stand for a family: read for
 * read and pread, write for write and pwrite, pipe2 for pipe2 and pipe,
 * poll for poll and ppoll, epoll_wait for epoll_pwait2, posix_spawn for
 * posix_spawnp, and the io_uring ones for the liburing calls that make
 * those system calls. malloc is not a system call, but running out of
 * memory is an error path like the others: the site stands for malloc,
 * calloc and realloc where a module routes them (the line editor's). */
/* One family per row: clang-format would bin-pack them. */
/* clang-format off */
#define KART__FAULT_SYSCALLS(X)                                                                \
    X(accept4, 0) X(socket, 0) X(socketpair, 0) X(bind, 0) X(listen, 0) X(connect, 0)          \
    X(read, 1) X(write, 1) X(readv, 1) X(writev, 1) X(send, 1) X(recv, 1) X(sendmsg, 1)        \
    X(recvmsg, 1)                                                                              \
    X(mmap, 0) X(munmap, 0) X(mremap, 0) X(ftruncate, 0) X(memfd_create, 0) X(shm_open, 0)     \
    X(fork, 0) X(posix_spawn, 0) X(pidfd_open, 0) X(pthread_create, 0)                         \
    X(pipe2, 0) X(eventfd, 0) X(signalfd, 0)                                                   \
    X(epoll_create1, 0) X(epoll_ctl, 0) X(epoll_wait, 0) X(poll, 0) X(pselect, 0)              \
    X(io_uring_setup, 0) X(io_uring_enter, 0) X(io_uring_register, 0)                          \
    X(malloc, 0)

/* The fault points: places where a test may SIGKILL the process (or stall
 * it) to check that what it leaves behind is consistent. */
#define KART__FAULT_POINTS(X)                                                                  \
    /* A queue put (core/queue/queue.c): the producers' lock held and      \
     * nothing written; the header and half the bytes written; all written \
     * but not committed; tail stored but consumers not woken; woken with  \
     * the lock still held. The points of a get are the same steps. */     \
    X(queue_put_locked) X(queue_put_half) X(queue_put_written) X(queue_put_committed)          \
    X(queue_put_woken)                                                                         \
    X(queue_get_locked) X(queue_get_half) X(queue_get_copied) X(queue_get_committed)           \
    X(queue_get_woken)                                                                         \
    /* A process pool worker that won a job's finish, its done bit not set \
     * (core/pool/pool_job.c). */                                          \
    X(pool_finish_claimed)                                                                     \
    /* A submitter that saw a node's sleepers, before it wakes one         \
     * (core/pool/pool_job.c): a delay here widens that race. */           \
    X(pool_wake_sleeper)                                                                       \
    /* A worker that found nothing to run, before it reads the pool's     \
     * state to learn whether to leave (core/pool/pool_job.c). */          \
    X(pool_worker_leaving)                                                                     \
    /* A look at a node's ring that read the head, before it reads the     \
     * tail (core/pool/pool_job.c): a delay makes the head it holds stale. */\
    X(pool_look_head_read)                                                                     \
    /* A submit that reserved its ring position, before it reads the       \
     * pool's state and writes the entry (core/pool/pool_submit.c). */     \
    X(pool_ring_reserved)

/* The sites: KART__SYS_<call> first, then KART__FP_<point>. */
#define KART__FAULT_SYS_ID(name, io) KART__SYS_##name,
#define KART__FAULT_POINT_ID(name) KART__FP_##name,
#define KART__FAULT_ONE(name, io) +1
enum kart__fault_site {
    KART__FAULT_SYSCALLS(KART__FAULT_SYS_ID)
    KART__FAULT_POINTS(KART__FAULT_POINT_ID)
    KART__FAULT_NSITES
};
enum { KART__FAULT_NSYS = 0 KART__FAULT_SYSCALLS(KART__FAULT_ONE) };
/* clang-format on */
#undef KART__FAULT_SYS_ID
#undef KART__FAULT_POINT_ID
#undef KART__FAULT_ONE

/* pidfd_open(2) has no wrapper in older C libraries. */
static inline int kart__pidfd_open(pid_t pid, unsigned flags)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, flags);
#else
    (void)pid;
    (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

#if !KART_FAULTS

/* The library: each routed call is the call itself. */
#define kart__sys_accept4 accept4
#define kart__sys_socket socket
#define kart__sys_socketpair socketpair
#define kart__sys_bind bind
#define kart__sys_listen listen
#define kart__sys_connect connect
#define kart__sys_read read
#define kart__sys_write write
#define kart__sys_pread pread
#define kart__sys_pwrite pwrite
#define kart__sys_readv readv
#define kart__sys_writev writev
#define kart__sys_send send
#define kart__sys_recv recv
#define kart__sys_sendmsg sendmsg
#define kart__sys_recvmsg recvmsg
#define kart__sys_mmap mmap
#define kart__sys_munmap munmap
#define kart__sys_mremap mremap
#define kart__sys_ftruncate ftruncate
#define kart__sys_memfd_create memfd_create
#define kart__sys_shm_open shm_open
#define kart__sys_fork fork
#define kart__sys_posix_spawn posix_spawn
#define kart__sys_posix_spawnp posix_spawnp
#define kart__sys_pidfd_open kart__pidfd_open
#define kart__sys_pthread_create pthread_create
#define kart__sys_pipe2 pipe2
#define kart__sys_pipe pipe
#define kart__sys_eventfd eventfd
#define kart__sys_signalfd signalfd
#define kart__sys_epoll_create1 epoll_create1
#define kart__sys_epoll_ctl epoll_ctl
#define kart__sys_epoll_wait epoll_wait
#define kart__sys_epoll_pwait2(epfd, evs, max, ts)                                                 \
    ((int)syscall(SYS_epoll_pwait2, (epfd), (evs), (max), (ts), NULL, 0))
#define kart__sys_poll poll
#define kart__sys_ppoll ppoll
#define kart__sys_pselect pselect
#define kart__sys_io_uring_queue_init io_uring_queue_init
#define kart__sys_io_uring_queue_init_params io_uring_queue_init_params
#define kart__sys_io_uring_submit io_uring_submit
#define kart__sys_io_uring_submit_and_wait_timeout io_uring_submit_and_wait_timeout
#define kart__sys_io_uring_submit_and_get_events io_uring_submit_and_get_events
#define kart__sys_io_uring_wait_cqe io_uring_wait_cqe
#define kart__sys_io_uring_register_ring_fd io_uring_register_ring_fd
#define kart__sys_io_uring_register_buf_ring io_uring_register_buf_ring
#define kart__sys_malloc malloc
#define kart__sys_calloc calloc
#define kart__sys_realloc realloc
#define kart__sys_io_uring_enable_rings(ring_fd)                                                   \
    ((int)syscall(__NR_io_uring_register, (ring_fd), IORING_REGISTER_ENABLE_RINGS, NULL, 0))

/* A point that is never armed: the name is checked, nothing runs. */
#define KART__FAULT_POINT(name) ((void)KART__FP_##name)
#define KART__FAULT_ARMED(name) ((void)KART__FP_##name, 0)

#else /* KART_FAULTS: the test build */

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct epoll_event;
struct io_uring;
struct io_uring_buf_reg;
struct io_uring_cqe;
struct io_uring_params;
struct __kernel_timespec;

int kart__sys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int kart__sys_socket(int domain, int type, int protocol);
int kart__sys_socketpair(int domain, int type, int protocol, int sv[2]);
int kart__sys_bind(int fd, const struct sockaddr *addr, socklen_t len);
int kart__sys_listen(int fd, int backlog);
int kart__sys_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t kart__sys_read(int fd, void *buf, size_t n);
ssize_t kart__sys_write(int fd, const void *buf, size_t n);
ssize_t kart__sys_pread(int fd, void *buf, size_t n, off_t off);
ssize_t kart__sys_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t kart__sys_readv(int fd, const struct iovec *iov, int n);
ssize_t kart__sys_writev(int fd, const struct iovec *iov, int n);
ssize_t kart__sys_send(int fd, const void *buf, size_t n, int flags);
ssize_t kart__sys_recv(int fd, void *buf, size_t n, int flags);
ssize_t kart__sys_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t kart__sys_recvmsg(int fd, struct msghdr *msg, int flags);
void *kart__sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int kart__sys_munmap(void *addr, size_t len);
void *kart__sys_mremap(void *old, size_t old_len, size_t new_len, int flags);
int kart__sys_ftruncate(int fd, off_t len);
int kart__sys_memfd_create(const char *name, unsigned flags);
int kart__sys_shm_open(const char *name, int oflag, mode_t mode);
pid_t kart__sys_fork(void);
int kart__sys_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
int kart__sys_posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
int kart__sys_pidfd_open(pid_t pid, unsigned flags);
int kart__sys_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                             void *arg);
int kart__sys_pipe2(int fds[2], int flags);
int kart__sys_pipe(int fds[2]);
int kart__sys_eventfd(unsigned initval, int flags);
int kart__sys_signalfd(int fd, const sigset_t *mask, int flags);
int kart__sys_epoll_create1(int flags);
int kart__sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int kart__sys_epoll_wait(int epfd, struct epoll_event *evs, int max, int ms);
int kart__sys_epoll_pwait2(int epfd, struct epoll_event *evs, int max, const struct timespec *ts);
int kart__sys_poll(struct pollfd *fds, nfds_t n, int ms);
int kart__sys_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask);
int kart__sys_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts,
                      const sigset_t *mask);
/* liburing's calls, which return a negative errno (built with liburing). */
int kart__sys_io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags);
int kart__sys_io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
                                         struct io_uring_params *p);
int kart__sys_io_uring_submit(struct io_uring *ring);
int kart__sys_io_uring_submit_and_wait_timeout(struct io_uring *ring, struct io_uring_cqe **cqe,
                                               unsigned wait_nr, struct __kernel_timespec *ts,
                                               sigset_t *mask);
int kart__sys_io_uring_submit_and_get_events(struct io_uring *ring);
int kart__sys_io_uring_wait_cqe(struct io_uring *ring, struct io_uring_cqe **cqe);
int kart__sys_io_uring_register_ring_fd(struct io_uring *ring);
int kart__sys_io_uring_register_buf_ring(struct io_uring *ring, struct io_uring_buf_reg *reg,
                                         unsigned flags);
/* The raw IORING_REGISTER_ENABLE_RINGS (liburing 2.3 declares
 * io_uring_enable_rings but does not export it): -1 and errno. */
int kart__sys_io_uring_enable_rings(int ring_fd);
/* The allocator: NULL and errno ENOMEM (or the rule's errno). */
void *kart__sys_malloc(size_t n);
void *kart__sys_calloc(size_t count, size_t size);
void *kart__sys_realloc(void *p, size_t n);

void kart__fault_point(enum kart__fault_site site);
bool kart__fault_armed(enum kart__fault_site site);
#define KART__FAULT_POINT(name) kart__fault_point(KART__FP_##name)
/* Whether the point has a rule: code that splits a step in two only to
 * put a point between the halves does so only then. */
#define KART__FAULT_ARMED(name) kart__fault_armed(KART__FP_##name)

/* ---- the tests' side ---- */

/* times: how many calls in a row the rule hits, or every call from the
 * nth on. */
#define KART__FAULT_ALWAYS 0u

/* What an armed site does when its turn comes. */
enum kart__fault_action {
    KART__FAULT_FAIL = 1, /* a routed call fails with err, doing nothing */
    KART__FAULT_SHORT,    /* an I/O call moves at most arg bytes */
    KART__FAULT_KILL,     /* the process SIGKILLs itself there */
    KART__FAULT_DELAY,    /* the thread sleeps arg nanoseconds, then goes on */
};

typedef struct kart__fault_rule {
    int action;       /* enum kart__fault_action */
    unsigned nth;     /* the first call that it hits, 1 = the next one */
    unsigned times;   /* how many in a row, or KART__FAULT_ALWAYS */
    int err;          /* FAIL: the errno */
    int64_t arg;      /* SHORT: the most bytes; DELAY: nanoseconds */
    bool in_children; /* only calls in processes forked later count */
} kart__fault_rule;

/* Arms site with rule (replacing its rule; its counts go on). Returns 0,
 * or -EINVAL: no such site, nth 0, err not positive, FAIL at a point, or
 * SHORT at a call that is not a read or write. */
int kart__fault_arm(enum kart__fault_site site, const kart__fault_rule *rule);

static inline int kart__fault_fail(enum kart__fault_site site, unsigned nth, unsigned times,
                                   int err)
{
    kart__fault_rule r = {.action = KART__FAULT_FAIL, .nth = nth, .times = times, .err = err};
    return kart__fault_arm(site, &r);
}

static inline int kart__fault_short(enum kart__fault_site site, unsigned nth, unsigned times,
                                    size_t max)
{
    kart__fault_rule r = {
        .action = KART__FAULT_SHORT, .nth = nth, .times = times, .arg = (int64_t)max};
    return kart__fault_arm(site, &r);
}

static inline int kart__fault_kill(enum kart__fault_site site, unsigned nth)
{
    kart__fault_rule r = {.action = KART__FAULT_KILL, .nth = nth, .times = 1};
    return kart__fault_arm(site, &r);
}

/* The nth pass in the processes forked after this call (this one never
 * counts nor dies) kills that process: with kart__fault_share(), exactly
 * one of them; without, each child counts for itself. */
static inline int kart__fault_kill_in_child(enum kart__fault_site site, unsigned nth)
{
    kart__fault_rule r = {.action = KART__FAULT_KILL, .nth = nth, .times = 1, .in_children = true};
    return kart__fault_arm(site, &r);
}

static inline int kart__fault_delay(enum kart__fault_site site, unsigned nth, int64_t ns)
{
    kart__fault_rule r = {.action = KART__FAULT_DELAY, .nth = nth, .times = 1, .arg = ns};
    return kart__fault_arm(site, &r);
}

/* Disarms every site and zeroes every count. */
void kart__fault_reset(void);
/* Calls of a routed call, or passes of a point, since the last reset. */
uint64_t kart__fault_count(enum kart__fault_site site);
/* How many of those the rules hit (failed, shortened, delayed). */
uint64_t kart__fault_fired(enum kart__fault_site site);
/* Moves the state (reset) into an anonymous shared mapping, so that it is
 * one for this process and every child it forks afterwards. Returns 0 or
 * a negative errno; once shared it stays shared. */
int kart__fault_share(void);
/* A site's name ("accept4", "queue_put_half"), and back (-1: none). */
const char *kart__fault_name(enum kart__fault_site site);
int kart__fault_site_of(const char *name);

#endif /* KART_FAULTS */
#endif

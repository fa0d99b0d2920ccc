/*
 * kart/shm.h — shared memory segments (Python's
 * multiprocessing.shared_memory.SharedMemory, plus anonymous ones):
 *  - named segments (POSIX shm_open, under /dev/shm on Linux) that unrelated
 *    processes attach by name;
 *  - anonymous segments (memfd_create) that fork children inherit, or that
 *    travel to another process over a unix socket (SCM_RIGHTS).
 *
 * A kart_shm is a process-local handle: the segment's fd and a MAP_SHARED
 * mapping of all of it, read-write unless KART_SHM_RDONLY. Every process
 * that maps the segment sees the same bytes; place kart/sync.h objects
 * initialised with KART_SYNC_SHARED in it to coordinate.
 *
 * Lifetime rules:
 *  - The bytes live while a name refers to the segment or any process
 *    holds its fd or a mapping of it. kart_shm_close() drops this
 *    process's fd and mapping; it never removes the name.
 *  - A name lives until somebody unlinks it (kart_shm_unlink(),
 *    kart_shm_unlink_name()) — or, with KART_SHM_TRACK, until the tracker
 *    does: the first tracked create starts a small tracker process (as
 *    Python's resource_tracker) that holds one end of a socket; the
 *    creator holds the other. When every process holding that end has
 *    gone — the creator and the fork children that inherited it, whether
 *    they exited, were killed (SIGKILL too) or exec'd — the tracker unlinks
 *    every name registered and not yet unlinked, then exits. Unlinking a
 *    tracked name through kart_shm_unlink*() unregisters it. A generated
 *    name (name NULL) is registered before it is created, so a creator
 *    killed at any instant leaks nothing; a name the caller chose is
 *    registered just after it is created (registering first could let the
 *    tracker of a creator that died before O_EXCL refused the name unlink
 *    somebody else's segment), which leaves a window of a few
 *    instructions.
 *  - For a private handoff (one creator, one attacher), attach with
 *    KART_SHM_UNLINK: the name goes at once and the bytes live on while
 *    the two hold them.
 *  - An anonymous segment has no name: it lives while an fd or a mapping
 *    of it does, so nothing can leak.
 *
 * Fork: the child inherits the handle's memory (the same kart_shm pointer
 * works there, mapping and fd shared with the parent), and the tracker
 * connection; it must call kart_shm_close() on its copy like the parent.
 * The fds are O_CLOEXEC: exec drops them (and the tracker connection).
 *
 * Threads: a handle is immutable between create and close; any thread may
 * use it and its bytes. kart_shm_close() must not race other uses of the
 * same handle. The tracker is started once per process, thread-safely,
 * and a fork at any moment (even while another thread talks to the
 * tracker) leaves the child able to use it.
 *
 * Errors are negative errnos; every failing call leaves nothing behind (no
 * name, fd, mapping or memory).
 */
#ifndef KART_SHM_H
#define KART_SHM_H

#include <kart/common.h>
#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_shm kart_shm;

/* kart_shm_create: register the name with the tracker, which unlinks it
 * when the creator (and every fork child holding the tracker) has gone. */
#define KART_SHM_TRACK 0x1u
/* kart_shm_attach / kart_shm_from_fd / kart_shm_recv: map read-only;
 * writes to the bytes fault (SIGSEGV), as with any read-only mapping. */
#define KART_SHM_RDONLY 0x2u
/* kart_shm_attach: unlink the name right after mapping it (private
 * handoff: the creator and this attacher keep the bytes). */
#define KART_SHM_UNLINK 0x4u

/* The longest name, its leading '/' included (NAME_MAX). */
#define KART_SHM_NAME_MAX 255

/*
 * Checks a segment name against Python's (and POSIX's portable) rules: a
 * leading '/', at least one more character, no other '/', at most
 * KART_SHM_NAME_MAX bytes. Returns 0 when valid. Errors: -EINVAL (NULL,
 * or any rule broken, length included).
 */
KART_API int kart_shm_name_check(const char *name);

/*
 * Creates a named segment of size bytes (zero-filled) and maps it; the
 * name must not exist yet (O_EXCL). name NULL makes a fresh unique name
 * ("/kart-<pid>-<random>"; read it with kart_shm_name()). The segment is
 * created with mode 0600. flags: KART_SHM_TRACK.
 * Errors: -EINVAL (out NULL, size 0, unknown flags, invalid name),
 * -EEXIST (the name exists), -EACCES, -EMFILE, -ENFILE,
 * -ENOMEM, -ENOSPC / -EFBIG (no room for size bytes), -ENOSYS (no POSIX
 * shared memory), and with KART_SHM_TRACK the errors of starting the
 * tracker (-EAGAIN, -ENOMEM from fork; -EMFILE). On failure the name is
 * not left behind.
 */
KART_API int kart_shm_create(kart_shm **out, const char *name, size_t size, unsigned flags);

/*
 * Attaches an existing named segment and maps all of it (its size is the
 * segment's size now). flags: KART_SHM_RDONLY, KART_SHM_UNLINK.
 * Errors: -EINVAL (out NULL, unknown flags, invalid name, or a segment of
 * size 0, which cannot be mapped), -ENOENT (no such
 * segment), -EACCES, -EMFILE, -ENFILE, -ENOMEM.
 */
KART_API int kart_shm_attach(kart_shm **out, const char *name, unsigned flags);

/*
 * Creates an anonymous segment (memfd_create) of size zero-filled bytes
 * and maps it. It has no name: fork children inherit it, and
 * kart_shm_send() hands it to another process. flags: 0.
 * Errors: -EINVAL (out NULL, size 0, flags), -EMFILE, -ENFILE, -ENOMEM,
 * -ENOSPC / -EFBIG, -ENOSYS (no memfd_create).
 */
KART_API int kart_shm_create_anon(kart_shm **out, size_t size, unsigned flags);

/*
 * Wraps an fd of a shared-memory object or regular file (one received by
 * kart_unix_recv_fd() or kart_conn_recv_handle() of kart/conn.h, say) and
 * maps all of it. On success the handle owns fd (kart_shm_close closes
 * it); on failure the caller still does.
 * flags: KART_SHM_RDONLY (required when fd is read-only).
 * Errors: -EINVAL (out NULL, unknown flags, size 0), -EBADF (fd not open),
 * -EACCES (fd not writable without KART_SHM_RDONLY, or not mappable),
 * -ENODEV (fd cannot be mapped: a pipe, a socket), -ENOMEM.
 */
KART_API int kart_shm_from_fd(kart_shm **out, int fd, unsigned flags);

/* The first byte of the mapping (page-aligned), valid until close. NULL if
 * shm is NULL. */
KART_API void *kart_shm_addr(const kart_shm *shm);

/* The mapped size in bytes; 0 if shm is NULL. For a created segment it is
 * the size asked for. */
KART_API size_t kart_shm_size(const kart_shm *shm);

/* The segment's name ("/..."), or NULL for an anonymous segment (and for
 * a NULL shm). Valid until close. */
KART_API const char *kart_shm_name(const kart_shm *shm);

/* The segment's fd, owned by the handle (do not close it); -EINVAL for a
 * NULL shm. */
KART_API int kart_shm_fd(const kart_shm *shm);

/*
 * Unmaps the segment, closes its fd and frees the handle. Never unlinks
 * the name (see kart_shm_unlink). Errors: -EINVAL (NULL).
 */
KART_API int kart_shm_close(kart_shm *shm);

/*
 * Removes the segment's name (the bytes live on while mapped anywhere) and
 * unregisters it from this process's tracker. The handle stays usable.
 * Errors: -EINVAL (NULL, or an anonymous segment), -ENOENT (the name is
 * already gone), -EACCES.
 */
KART_API int kart_shm_unlink(kart_shm *shm);

/* As kart_shm_unlink, by name. Errors: -EINVAL (invalid name), -ENOENT,
 * -EACCES. */
KART_API int kart_shm_unlink_name(const char *name);

/*
 * Registers a name with this process's tracker (starting it if needed),
 * as KART_SHM_TRACK does at create: for a segment this process did not
 * create but must not leak. Registering a name twice is harmless.
 * Errors: -EINVAL (invalid name), and the tracker's start errors
 * (-EAGAIN, -ENOMEM, -EMFILE).
 */
KART_API int kart_shm_track(const char *name);

/* Unregisters a name from this process's tracker without unlinking it
 * (ownership handed to another process). Errors: -EINVAL (invalid
 * name), -ESRCH (no tracker running here). */
KART_API int kart_shm_untrack(const char *name);

/* The pid of the tracker this process talks to, or 0 when none has been
 * started (or inherited). Never fails. */
KART_API pid_t kart_shm_tracker_pid(void);

/* Sends the segment's fd over a connected AF_UNIX socket (kart_unix_send_fd
 * of kart/conn.h, which passes any fd; over a kart_conn use
 * kart_conn_send_handle(c, kart_shm_fd(shm)) and, on the other side,
 * kart_conn_recv_handle then kart_shm_from_fd). Errors: -EINVAL (shm NULL),
 * then those of kart_unix_send_fd. */
KART_API int kart_shm_send(int sock, const kart_shm *shm);

/* Receives a segment sent by kart_shm_send and maps it (all of it) into a
 * new handle. flags: KART_SHM_RDONLY. Errors: -EINVAL (out NULL, unknown
 * flags), those of kart_unix_recv_fd,
 * then those of kart_shm_from_fd (the received fd is closed on failure). */
KART_API int kart_shm_recv(int sock, kart_shm **out, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif

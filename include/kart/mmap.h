/*
 * kart/mmap.h — memory-mapped files and anonymous memory (Python's mmap
 * module): a mapping with a file-like position, every access
 * bounds-checked (an error, never a crash), plus the raw address for
 * zero-copy use.
 *
 * Access modes:
 *  - KART_MMAP_READ: read-only (PROT_READ); writes are -EACCES.
 *  - KART_MMAP_WRITE: write-through (MAP_SHARED): the file sees writes,
 *    and so does every process mapping it (fork children included).
 *  - KART_MMAP_COPY: copy-on-write (MAP_PRIVATE): writes stay in this
 *    process's pages; the file never sees them.
 *
 * Anonymous maps (fd -1): KART_MMAP_WRITE memory is shared with fork
 * children (it is a memfd, so that it can grow); KART_MMAP_COPY memory is
 * private (each process has its own copy after fork); KART_MMAP_READ is
 * read-only zeros.
 *
 * Fork: the child inherits the mapping (shared or private as above) and
 * its own copy of the handle, with the position as it was; each process
 * calls kart_mmap_close() on its copy.
 *
 * Thread safety: one thread at a time. read, write, seek and the other
 * calls that move the position, and resize (which may move the mapping),
 * must not run concurrently on one handle: lock around them, or give each
 * thread its own handle (the bytes may still be shared). Exceptions: the
 * calls on a const handle (addr, len, access, tell, find, rfind,
 * file_size) may run together from any threads while no call that changes
 * the handle runs; the pointer from kart_mmap_addr() can be used from any
 * thread until a resize or close.
 *
 * Types: sizes and byte counts are size_t (counts go out through an out
 * parameter, the return value being 0 or a negative errno); positions and
 * file offsets are int64_t, and calls that return a position return it
 * (≥ 0) or a negative errno.
 *
 * NUMA: pages land where the first touch happens; to place them on a node,
 * pass kart_mmap_addr() and kart_mmap_len() to kart_numa_bind_memory()
 * (kart/numa.h) before touching them.
 */
#ifndef KART_MMAP_H
#define KART_MMAP_H

#include <kart/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_mmap kart_mmap;

/* Access modes (kart_mmap_open's access argument; Python's ACCESS_*). */
typedef enum kart_mmap_mode {
    KART_MMAP_READ = 1, /* PROT_READ: writes are -EACCES */
    KART_MMAP_WRITE,    /* MAP_SHARED, read-write: write-through */
    KART_MMAP_COPY,     /* MAP_PRIVATE, read-write: copy-on-write */
} kart_mmap_mode;

/* Flags (Python's prot= and flags= beyond what access implies).
 * KART_MMAP_HUGE: huge pages — MAP_HUGETLB for anonymous maps (needs
 * pages reserved in /proc/sys/vm/nr_hugepages; the length is rounded up
 * to the huge page size in memory, not in kart_mmap_len), MADV_HUGEPAGE
 * (transparent huge pages) for file maps. */
#define KART_MMAP_HUGE 0x1u
/* KART_MMAP_POPULATE: fault every page in at open (MAP_POPULATE), so that
 * the first accesses do not pay for page faults. */
#define KART_MMAP_POPULATE 0x2u
/* KART_MMAP_EXEC: the pages may also be executed (PROT_EXEC), for code
 * generated into the map or loaded from a file: a file map needs an fd on
 * a file system not mounted noexec (else -EPERM). */
#define KART_MMAP_EXEC 0x4u
/* KART_MMAP_NORESERVE: reserve no swap for the map (MAP_NORESERVE): a
 * large map costs only the pages touched, and a write may then meet
 * SIGSEGV when memory runs out (with vm.overcommit_memory 2 the kernel
 * ignores it). */
#define KART_MMAP_NORESERVE 0x8u

/* For find/rfind's end: up to the end of the map. */
#define KART_MMAP_END INT64_MAX

/*
 * Maps length bytes of fd from offset, or anonymous memory when fd is -1.
 *  - File: offset must be ≥ 0 and a multiple of
 *    kart_mmap_granularity(); length 0 maps from offset to the end of the
 *    file. The handle keeps its own duplicate of fd (the caller may close
 *    theirs). access: KART_MMAP_READ, _WRITE or _COPY.
 *  - Anonymous: length > 0, offset 0.
 * flags: KART_MMAP_HUGE, _POPULATE, _EXEC, _NORESERVE (any together).
 * Errors: -EINVAL (out NULL, unknown access or flags, offset negative or
 * not a multiple of the granularity, an empty file with length 0, offset
 * past the end of the file, length past the end of the file, anonymous
 * with length 0 or an offset), -EBADF (fd not open), -EACCES (fd not open
 * for what access needs: reading, and writing for KART_MMAP_WRITE),
 * -ENODEV (fd cannot be mapped), -EPERM (KART_MMAP_EXEC on a file from a
 * noexec mount, or where policy forbids executable maps), -ENOMEM (also:
 * no huge pages reserved),
 * -EMFILE, and with KART_MMAP_HUGE on a file -EINVAL when the kernel has
 * no transparent huge pages. Nothing is left mapped or open on failure.
 */
KART_API int kart_mmap_open(kart_mmap **out, int fd, size_t length, int64_t offset,
                            kart_mmap_mode access, unsigned flags);

/* Unmaps, closes the handle's fd and frees it (writes through a
 * KART_MMAP_WRITE map are in the page cache; kart_mmap_flush() forces them
 * to disk, and is the call to make first where that must be known to
 * have worked). NULL is ignored. */
KART_API void kart_mmap_close(kart_mmap *m);

/* The allocation granularity: offsets must be multiples of it (the page
 * size on Linux). */
KART_API size_t kart_mmap_granularity(void);

/* The first mapped byte, or NULL for NULL. Changes after a resize. */
KART_API void *kart_mmap_addr(const kart_mmap *m);

/* The map's length in bytes (Python's len(m)); 0 for NULL. */
KART_API size_t kart_mmap_len(const kart_mmap *m);

/* The access mode; 0 (no mode) for NULL. */
KART_API kart_mmap_mode kart_mmap_access(const kart_mmap *m);

/* *size gets the size of the mapped file now (fstat; Python's m.size()).
 * Errors: -EINVAL (m or size NULL), -EBADF (an anonymous map). */
KART_API int kart_mmap_file_size(const kart_mmap *m, int64_t *size);

/*
 * Copies up to n bytes from the position into buf and advances it; *got
 * gets the count: less than n near the end, 0 at the end. Returns 0.
 * Errors: -EINVAL (m or got NULL, or buf NULL with n > 0).
 */
KART_API int kart_mmap_read(kart_mmap *m, void *buf, size_t n, size_t *got);

/* The byte at the position (0..255), advancing it. Errors: -EINVAL (NULL),
 * -ERANGE (at the end). */
KART_API int kart_mmap_read_byte(kart_mmap *m);

/*
 * Copies a line — up to and including the next '\n', or to the end of the
 * map — into buf and advances past it; *got gets its length, 0 at the
 * end. A line longer than cap is cut at cap bytes (Python's readline has
 * no cap); the rest comes with the next call. Returns 0. Errors: -EINVAL
 * (m or got NULL, or buf NULL with cap > 0).
 */
KART_API int kart_mmap_readline(kart_mmap *m, void *buf, size_t cap, size_t *got);

/* Copies n bytes at the position, all or nothing, and advances it.
 * Returns 0. Errors: -EINVAL (m NULL, buf NULL with n > 0), -EACCES
 * (KART_MMAP_READ), -ERANGE (past the end: nothing written). */
KART_API int kart_mmap_write(kart_mmap *m, const void *buf, size_t n);

/* Stores one byte at the position and advances it. Errors: -EINVAL
 * (NULL), -EACCES (KART_MMAP_READ), -ERANGE (at the end). */
KART_API int kart_mmap_write_byte(kart_mmap *m, uint8_t byte);

/* Moves the position: whence SEEK_SET, SEEK_CUR or SEEK_END. Returns the
 * new position. Errors: -EINVAL (NULL, unknown whence, or a result
 * outside [0, len]: the position is unchanged). */
KART_API int64_t kart_mmap_seek(kart_mmap *m, int64_t offset, int whence);

/* The position; -EINVAL for NULL. */
KART_API int64_t kart_mmap_tell(const kart_mmap *m);

/*
 * The lowest index ≥ start where needle (n bytes) lies wholly in
 * [start, end). start and end are Python slice indices: negative counts
 * from the end, and both are clamped to [0, len] (KART_MMAP_END: the
 * end). An empty needle is found at start when start ≤ end.
 * Errors: -EINVAL (m NULL, or needle NULL with n > 0), -ENOENT (not found).
 */
KART_API int64_t kart_mmap_find(const kart_mmap *m, const void *needle, size_t n, int64_t start,
                                int64_t end);

/* As kart_mmap_find, the highest such index. */
KART_API int64_t kart_mmap_rfind(const kart_mmap *m, const void *needle, size_t n, int64_t start,
                                 int64_t end);

/* Copies count bytes from src to dest within the map (overlap allowed).
 * Errors: -EINVAL (NULL), -EACCES (KART_MMAP_READ), -ERANGE (either range
 * past the end: nothing moved). */
KART_API int kart_mmap_move(kart_mmap *m, size_t dest, size_t src, size_t count);

/*
 * Changes the map's length to newsize (mremap; the address may move).
 * A file map grows or shrinks its file to offset + newsize first
 * (ftruncate), and puts the old size back if the remap fails. An
 * anonymous KART_MMAP_WRITE map grows its memfd. The position is clamped
 * to the new length. Fork children keep their old mapping of the
 * original bytes.
 * Errors: -EINVAL (NULL, newsize 0, a huge-page anonymous map), -EACCES
 * (KART_MMAP_READ or KART_MMAP_COPY, as Python's TypeError), -ENOMEM,
 * -EFBIG / -ENOSPC (the file cannot grow), -EPERM (a sealed or
 * append-only file).
 */
KART_API int kart_mmap_resize(kart_mmap *m, size_t newsize);

/* Writes dirty pages of the whole map back to the file (msync MS_SYNC);
 * nothing to do (0) for KART_MMAP_READ/COPY and anonymous maps.
 * Errors: -EINVAL (NULL), -EIO. */
KART_API int kart_mmap_flush(kart_mmap *m);

/* As kart_mmap_flush over [offset, offset + n) (n 0: to the end).
 * Errors: -EINVAL (NULL, offset not a multiple of the page size), -ERANGE
 * (the range passes the end), -EIO. */
KART_API int kart_mmap_flush_range(kart_mmap *m, size_t offset, size_t n);

/*
 * madvise(advice) over [start, start + n) (n 0, or past the end: to the
 * end). advice: MADV_NORMAL, MADV_SEQUENTIAL, MADV_WILLNEED, … as
 * <sys/mman.h> names them. Errors: -EINVAL (NULL, start not a multiple of
 * the page size, advice unknown to the kernel or not allowed on this map),
 * -ERANGE (start past the end), -EAGAIN, -ENOMEM, -EPERM.
 */
KART_API int kart_mmap_madvise(kart_mmap *m, int advice, size_t start, size_t n);

#ifdef __cplusplus
}
#endif
#endif

/*
 * core/line/history_file.c — history files in GNU readline's format
 * (kart/history.h): read, write, append, truncate.
 *
 * Reading streams the file through large blocks and splits the lines in
 * place: the entries point into the blocks (history_private.h), so that a
 * 100,000-line file costs a few read(2)s and a few allocations, and a
 * limited history keeps only the blocks of the entries it keeps. A file is
 * read into a staging list first and spliced in when the whole file went
 * well, so that a failed read changes nothing.
 *
 * Replacing a file (write, truncate) goes through a temporary file beside
 * it and rename(2); appending is one write(2) on an O_APPEND descriptor.
 * All three hold an exclusive flock(2) of the file while they work, and an
 * appender that finds the path pointing to a new file once it has the
 * lock (a rename happened while it waited) reopens it: appends are never
 * interleaved, and never lost to a concurrent rewrite.
 */
#include "fault.h"
#include "history_private.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read block size: large enough that the system calls do not matter,
 * small enough that a limited history does not pin much behind it. */
#define BLOCK_SIZE ((size_t)1 << 20)
/* An unlimited history keeps every line, so a file up to this size is read
 * into one block of its size with one read(2). */
#define WHOLE_MAX ((size_t)64 << 20)
/* The most a line may hold before its newline to be an entry: the maximum
 * and one CR. */
#define LINE_LIMIT (KART_HISTORY_MAX_LEN + 1)
#define WRITE_BUF ((size_t)256 << 10)

/* ---- paths ---- */

/* path as the header defines it, malloc'd. -ENOENT (no $HOME), -ENOMEM. */
static int expand_path(const char *path, char **out)
{
    if (!path)
        path = "~/.history";
    if (path[0] != '~' || path[1] != '/') {
        *out = strdup(path);
        return *out ? 0 : -ENOMEM;
    }
    const char *home = getenv("HOME");
    if (!home || !*home)
        return -ENOENT;
    size_t hl = strlen(home), pl = strlen(path + 1);
    char *s = malloc(hl + pl + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, home, hl);
    memcpy(s + hl, path + 1, pl + 1);
    *out = s;
    return 0;
}

/* The file to replace: a symbolic link's target (GNU readline does the
 * same), or path itself when it is not a link or the link dangles. */
static int target_path(const char *path, char **out)
{
    char *p;
    int err = expand_path(path, &p);
    if (err)
        return err;
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode)) {
        char *real = realpath(p, NULL);
        if (real) {
            free(p);
            p = real;
        }
    }
    *out = p;
    return 0;
}

/* flock that survives signals. A file system without locks leaves the
 * caller unlocked, which is what GNU readline always is. */
static void lock_fd(int fd)
{
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
        ;
}

/* ---- the line scanner ---- */

typedef struct scanner {
    int fd;
    kart__hist_block *blk; /* the block being filled (one reference ours) */
    size_t pos, end;       /* data[pos, end) not yet split */
    size_t scanned;        /* data[pos, scanned) holds no newline */
    int64_t base_off;      /* file offset of data[0] */
    size_t bsize;
    bool eof;
} scanner;

typedef struct line {
    char *s; /* in sc->blk; NULL for a line too long to keep */
    size_t len;
    int64_t off; /* where the line starts in the file */
} line;

static ssize_t read_some(int fd, void *buf, size_t n)
{
    ssize_t r;
    while ((r = kart__sys_read(fd, buf, n)) < 0 && errno == EINTR)
        ;
    return r < 0 ? -errno : r;
}

/* Reads more after data[end]; a new block (the unsplit tail carried over)
 * when this one is full. */
static int fill(scanner *sc)
{
    kart__hist_block *b = sc->blk;
    if (sc->end == b->size) {
        size_t tail = sc->end - sc->pos;
        size_t size = tail < sc->bsize / 2 ? sc->bsize : tail * 2;
        kart__hist_block *nb = kart__hist_block_new(size);
        if (!nb)
            return -ENOMEM;
        memcpy(nb->data, b->data + sc->pos, tail);
        sc->base_off += (int64_t)sc->pos;
        sc->scanned -= sc->pos;
        sc->pos = 0;
        sc->end = tail;
        kart__hist_block_put(b);
        sc->blk = b = nb;
    }
    ssize_t n = read_some(sc->fd, b->data + sc->end, b->size - sc->end);
    if (n < 0)
        return (int)n;
    if (n == 0)
        sc->eof = true;
    sc->end += (size_t)n;
    return 0;
}

/* Skips the rest of a line too long to keep, reading over the unsplit
 * part of the block, which nothing points into. */
static int skip_line(scanner *sc)
{
    for (;;) {
        char *d = sc->blk->data;
        char *nl = memchr(d + sc->scanned, '\n', sc->end - sc->scanned);
        if (nl) {
            sc->pos = sc->scanned = (size_t)(nl - d) + 1;
            return 0;
        }
        if (sc->eof) {
            sc->pos = sc->scanned = sc->end;
            return 0;
        }
        /* Drop data[pos, end) and read over it. */
        sc->base_off += (int64_t)(sc->end - sc->pos);
        sc->end = sc->scanned = sc->pos;
        if (sc->blk->size - sc->pos < sc->bsize / 4) {
            sc->end = sc->scanned = sc->blk->size; /* full: fill() moves on */
            sc->base_off -= (int64_t)(sc->end - sc->pos);
            sc->pos = sc->end;
        }
        int err = fill(sc);
        if (err)
            return err;
    }
}

/* The first '\n' in [p, end), or NULL. History lines are short, where a
 * call of memchr costs more than its search: the first bytes are looked
 * at eight at a time in place (a word's first zero byte after XOR with
 * "\n\n\n\n\n\n\n\n" is its lowest high bit of (x - 0x01..) & ~x & 0x80..,
 * exactly: borrows only run upwards), then memchr takes over. */
static inline char *find_nl(char *p, char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (int k = 0; k < 8 && end - p >= 8; k++, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t x = w ^ UINT64_C(0x0a0a0a0a0a0a0a0a);
        uint64_t t = (x - UINT64_C(0x0101010101010101)) & ~x & UINT64_C(0x8080808080808080);
        if (t)
            return p + (__builtin_ctzll(t) >> 3);
    }
#endif
    return memchr(p, '\n', (size_t)(end - p));
}

/* The next line: 1, 0 at the end of the file, or -errno. */
static int next_line(scanner *sc, line *ln)
{
    for (;;) {
        char *d = sc->blk->data;
        char *nl = find_nl(d + sc->scanned, d + sc->end);
        if (nl) {
            ln->s = d + sc->pos;
            ln->len = (size_t)(nl - ln->s);
            ln->off = sc->base_off + (int64_t)sc->pos;
            sc->pos = sc->scanned = (size_t)(nl - d) + 1;
            return 1;
        }
        sc->scanned = sc->end;
        if (sc->eof) {
            if (sc->pos == sc->end)
                return 0;
            ln->s = d + sc->pos; /* the last line, without a newline */
            ln->len = sc->end - sc->pos;
            ln->off = sc->base_off + (int64_t)sc->pos;
            sc->pos = sc->end;
            return 1;
        }
        if (sc->end - sc->pos > LINE_LIMIT) {
            ln->s = NULL;
            ln->len = 0;
            ln->off = sc->base_off + (int64_t)sc->pos;
            int err = skip_line(sc);
            return err ? err : 1;
        }
        int err = fill(sc);
        if (err)
            return err;
    }
}

/* One item of the file: an entry (s set, NUL-terminated in the block) or
 * a line too long (s NULL). off is where it starts, its timestamp line
 * included. */
typedef struct item {
    char *s;
    size_t len;
    int64_t time;
    bool has_time;
    int64_t off;
} item;

/* The format's rules over the lines (kart/history.h): 1, 0 at the end,
 * or -errno. */
static int next_item(scanner *sc, item *it)
{
    bool pending = false;
    int64_t ts = 0, ts_off = 0;
    for (;;) {
        line ln = {0};
        int r = next_line(sc, &ln);
        if (r <= 0)
            return r; /* a timestamp with no entry after it is dropped */
        it->off = pending ? ts_off : ln.off;
        it->time = pending ? ts : 0;
        it->has_time = pending;
        if (!ln.s ||
            (ln.len > KART_HISTORY_MAX_LEN && (ln.len > LINE_LIMIT || ln.s[ln.len - 1] != '\r'))) {
            it->s = NULL;
            it->len = 0;
            return 1;
        }
        while (ln.len && ln.s[ln.len - 1] == '\r')
            ln.len--;
        if (ln.len == 0)
            continue;
        if (!pending && kart__hist_is_timestamp(ln.s, ln.len, &ts)) {
            pending = true;
            ts_off = ln.off;
            continue;
        }
        ln.s[ln.len] = 0;
        it->s = ln.s;
        it->len = ln.len;
        return 1;
    }
}

/* Starts scanning fd: blocks of BLOCK_SIZE, or of the file's size (the +1:
 * seeing EOF) when it is smaller or, with whole, up to WHOLE_MAX.
 * -errno; -EISDIR for a directory. */
static int scan_open(scanner *sc, int fd, bool whole)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    memset(sc, 0, sizeof(*sc));
    sc->fd = fd;
    sc->bsize = BLOCK_SIZE;
    if (S_ISREG(st.st_mode) && st.st_size >= 0 &&
        (uint64_t)st.st_size < (whole ? WHOLE_MAX : BLOCK_SIZE))
        sc->bsize = (size_t)st.st_size + 1 > 4096 ? (size_t)st.st_size + 1 : 4096;
    sc->blk = kart__hist_block_new(sc->bsize);
    return sc->blk ? 0 : -ENOMEM;
}

static void scan_close(scanner *sc)
{
    if (sc->blk)
        kart__hist_block_put(sc->blk);
    sc->blk = NULL;
}

static int open_read(const char *path, int *fd)
{
    char *p;
    int err = expand_path(path, &p);
    if (err)
        return err;
    *fd = open(p, O_RDONLY | O_CLOEXEC);
    err = *fd < 0 ? -errno : 0;
    free(p);
    return err;
}

KART_API int kart_history_read(kart_history *h, const char *path, kart_history_read_info *info)
{
    int fd;
    int err = open_read(path, &fd);
    if (err)
        return err;
    scanner sc;
    bool whole = h->max == KART_HISTORY_UNLIMITED;
    err = scan_open(&sc, fd, whole);
    if (err) {
        close(fd);
        return err;
    }
    kart_history staged;
    kart__hist_init(&staged, h->max);
    kart_history_read_info n = {0};
    item it;
    int r = 0;
    if (whole && sc.blk->size > 4096) {
        /* An array for the lines a file of this size likely holds, so that
         * it is not regrown and copied as they come (what is reserved and
         * not used is never touched: it costs address space only). */
        r = kart__hist_reserve(&staged, sc.blk->size / 16);
    }
    while (r == 0 && (r = next_item(&sc, &it)) > 0) {
        r = 0;
        if (!it.s) {
            n.too_long++;
            continue;
        }
        sc.blk->refs++;
        if (kart__hist_push(&staged, it.s, it.len, it.time, sc.blk) < 0) {
            sc.blk->refs--;
            r = -ENOMEM;
            break;
        }
        n.entries++;
        n.timestamps += it.has_time;
    }
    scan_close(&sc);
    close(fd);
    if (r == 0)
        r = kart__hist_splice(h, &staged);
    kart__hist_fini(&staged);
    if (r == 0 && info)
        *info = n;
    return r;
}

/* ---- writing ---- */

typedef struct writer {
    int fd;
    char *buf;
    size_t used;
    int err;
} writer;

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = kart__sys_write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void flush(writer *w)
{
    if (!w->err && w->used)
        w->err = write_all(w->fd, w->buf, w->used);
    w->used = 0;
}

static void put(writer *w, const char *s, size_t n)
{
    if (n > WRITE_BUF - w->used) {
        flush(w);
        if (n >= WRITE_BUF) {
            if (!w->err)
                w->err = write_all(w->fd, s, n);
            return;
        }
    }
    memcpy(w->buf + w->used, s, n);
    w->used += n;
}

/* "#<seconds>\n" into buf (at least 22 bytes); returns its length. */
static size_t format_time(char *buf, int64_t t)
{
    /* Two digits per division, from a table, and one copy: the digit loop
     * was half of a write with timestamps. */
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char tmp[24];
    size_t n = sizeof(tmp);
    uint64_t v = t < 0 ? 0 : (uint64_t)t;
    while (v >= 100) {
        size_t r = (size_t)(v % 100);
        v /= 100;
        n -= 2;
        memcpy(tmp + n, pairs + 2 * r, 2);
    }
    if (v >= 10) {
        n -= 2;
        memcpy(tmp + n, pairs + 2 * v, 2);
    } else {
        tmp[--n] = (char)('0' + v);
    }
    size_t digits = sizeof(tmp) - n;
    buf[0] = '#';
    memcpy(buf + 1, tmp + n, digits);
    buf[digits + 1] = '\n';
    return digits + 2;
}

/* The bytes of entries [from, h->len) as the file holds them; the sink is
 * w (buffered) or, when w->buf is NULL, only counted into *size. */
static void emit(const kart_history *h, size_t from, writer *w, char *out, size_t *size)
{
    size_t total = 0;
    char ts[24];
    for (size_t i = from; i < h->len; i++) {
        const kart__hist_entry *e = kart__hist_at(h, i);
        size_t len = kart__hist_len(e);
        if (len == 0)
            continue;
        size_t tn = h->opts.write_timestamps ? format_time(ts, kart__hist_time(e)) : 0;
        if (w && tn + len < WRITE_BUF - w->used) {
            char *d = w->buf + w->used;
            memcpy(d, ts, tn);
            memcpy(d + tn, e->text, len);
            d[tn + len] = '\n';
            w->used += tn + len + 1;
        } else if (w) {
            put(w, ts, tn);
            put(w, e->text, len);
            put(w, "\n", 1);
        } else if (out) {
            memcpy(out + total, ts, tn);
            memcpy(out + total + tn, e->text, len);
            out[total + tn + len] = '\n';
        }
        total += tn + len + 1;
    }
    if (size)
        *size = total;
}

/* A temporary file beside target: "<target>-XXXXXX.tmp", mode 0600. */
static int make_temp(const char *target, char **tmp, int *fd)
{
    size_t n = strlen(target);
    char *t = malloc(n + 12);
    if (!t)
        return -ENOMEM;
    memcpy(t, target, n);
    memcpy(t + n, "-XXXXXX.tmp", 12);
    *fd = mkostemps(t, 4, O_CLOEXEC);
    if (*fd < 0) {
        int err = -errno;
        free(t);
        return err;
    }
    *tmp = t;
    return 0;
}

/* Ends a temporary file: fsync if asked, close, rename over target; on
 * any error (err already set included) the temporary file is removed. */
static int finish_temp(int fd, char *tmp, const char *target, bool sync, int err)
{
    if (!err && sync && fsync(fd) != 0)
        err = -errno;
    if (close(fd) != 0 && !err)
        err = -errno;
    if (!err && rename(tmp, target) != 0)
        err = -errno;
    if (err)
        unlink(tmp);
    free(tmp);
    return err;
}

/* Opens the regular file target for its lock (-1 when it cannot be
 * read: replaced all the same, unlocked). */
static int open_lock(const char *target)
{
    int fd = open(target, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0)
        lock_fd(fd);
    return fd;
}

KART_API int kart_history_write(const kart_history *h, const char *path)
{
    char *target, *tmp;
    int err = target_path(path, &target);
    if (err)
        return err;
    writer w = {.buf = malloc(WRITE_BUF), .fd = -1};
    struct stat st;
    bool exists = stat(target, &st) == 0;
    int lfd = -1;
    if (!w.buf) {
        err = -ENOMEM;
    } else if (exists && S_ISDIR(st.st_mode)) {
        err = -EISDIR;
    } else if (exists && !S_ISREG(st.st_mode)) {
        /* A device or a FIFO (/dev/null) is written to, never replaced,
         * as GNU readline does. */
        w.fd = open(target, O_WRONLY | O_TRUNC | O_CLOEXEC);
        err = w.fd < 0 ? -errno : 0;
        if (!err) {
            emit(h, 0, &w, NULL, NULL);
            flush(&w);
            err = w.err;
            if (close(w.fd) != 0 && !err)
                err = -errno;
        }
    } else {
        lfd = exists ? open_lock(target) : -1;
        err = make_temp(target, &tmp, &w.fd);
        if (!err) {
            emit(h, 0, &w, NULL, NULL);
            flush(&w);
            err = finish_temp(w.fd, tmp, target, h->opts.fsync, w.err);
        }
    }
    if (lfd >= 0)
        close(lfd);
    free(w.buf);
    free(target);
    return err;
}

/* Opens path for appending under the lock, the lock taken on the file the
 * path names once it is held. */
static int open_append(const char *path, int *out)
{
    for (int tries = 0;; tries++) {
        /* Readable too, to see how the file ends (a write-only file is
         * appended to blind). */
        int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EACCES)
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return -errno;
        lock_fd(fd);
        struct stat a, b;
        if (fstat(fd, &a) != 0 || stat(path, &b) != 0 ||
            (a.st_dev == b.st_dev && a.st_ino == b.st_ino) || tries == 100) {
            *out = fd;
            return 0;
        }
        close(fd); /* replaced while we waited: the new file is the one */
    }
}

KART_API int kart_history_append(const kart_history *h, const char *path, size_t n)
{
    size_t from = n < h->len ? h->len - n : 0, size;
    emit(h, from, NULL, NULL, &size);
    if (size == 0)
        return 0;
    /* buf[0] is room for a newline, when the file does not end in one
     * (GNU would glue the first entry to its last line). */
    char *buf = malloc(size + 1);
    if (!buf)
        return -ENOMEM;
    emit(h, from, NULL, buf + 1, NULL);
    char *p;
    int err = expand_path(path, &p);
    if (!err) {
        int fd = -1;
        err = open_append(p, &fd);
        if (!err) {
            struct stat st;
            char last = '\n';
            bool glue = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
                        kart__sys_pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n';
            buf[0] = '\n';
            err = write_all(fd, buf + !glue, size + glue);
            if (close(fd) != 0 && !err)
                err = -errno;
        }
        free(p);
    }
    free(buf);
    return err;
}

/* Copies fd from off to its end into out. */
static int copy_tail(int fd, int64_t off, int out)
{
    char *buf = malloc(WRITE_BUF);
    if (!buf)
        return -ENOMEM;
    int err = 0;
    for (;;) {
        ssize_t r;
        while ((r = kart__sys_pread(fd, buf, WRITE_BUF, off)) < 0 && errno == EINTR)
            ;
        if (r <= 0) {
            err = r < 0 ? -errno : 0;
            break;
        }
        off += r;
        if ((err = write_all(out, buf, (size_t)r)) != 0)
            break;
    }
    free(buf);
    return err;
}

/* Where the newest n items start: the offsets of the last n entries seen,
 * in a ring that grows up to n. */
typedef struct ring {
    int64_t *v;
    size_t cap, n, head; /* head: the oldest when full */
} ring;

static int ring_push(ring *r, size_t limit, int64_t off)
{
    if (r->n < limit && r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        if (cap > limit)
            cap = limit;
        int64_t *v = realloc(r->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    if (r->n < limit) {
        r->v[r->n++] = off;
    } else {
        r->v[r->head] = off;
        r->head = (r->head + 1) % r->n;
    }
    return 0;
}

/* The offset where the newest n entries start in the file, or -1 when it
 * holds no more than n. */
static int find_cut(int fd, size_t n, int64_t *cut)
{
    scanner sc;
    int err = scan_open(&sc, fd, false);
    if (err)
        return err;
    ring r = {0};
    size_t count = 0;
    item it;
    while ((err = next_item(&sc, &it)) > 0) {
        if (!it.s)
            continue;
        count++;
        if (n && (err = ring_push(&r, n, it.off)) != 0)
            break;
    }
    scan_close(&sc);
    if (!err) {
        if (count <= n)
            *cut = -1;
        else if (n == 0)
            *cut = sc.base_off + (int64_t)sc.end; /* everything goes */
        else
            *cut = r.v[r.head];
    }
    free(r.v);
    return err;
}

KART_API int kart_history_truncate_file(const char *path, size_t n)
{
    char *target, *tmp;
    int err = target_path(path, &target);
    if (err)
        return err;
    int fd = open(target, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        /* Only a regular file is cut, as in GNU readline. */
        err = fd < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        if (fd >= 0)
            close(fd);
        free(target);
        return err;
    }
    lock_fd(fd);
    int64_t cut;
    err = find_cut(fd, n, &cut);
    if (!err && cut >= 0) {
        int out;
        err = make_temp(target, &tmp, &out);
        if (!err)
            err = finish_temp(out, tmp, target, false, copy_tail(fd, cut, out));
    }
    close(fd);
    free(target);
    return err;
}

/* Description: kart/mmap.h — opening file and anonymous maps (every
 * documented argument error), the position calls with their bounds
 * (read, read_byte, readline, write, write_byte, seek, tell), find and
 * rfind with Python's slice indices, move, resize of files and anonymous
 * memory, flush, madvise, file size, huge pages (accepted, or refused
 * cleanly where the system has none), NULL handles, and what a fork child
 * shares. Files live in a temporary directory removed at the end. */
#include "testutil.h"

#include <kart/mmap.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

static char dir[] = "/tmp/kart-mmap-XXXXXX";

/* A fresh file of size bytes holding the pattern "0123456789..." (or
 * text when given), opened with flags. */
static int make_file(const char *text, size_t size, int flags)
{
    static int n;
    char path[128];
    snprintf(path, sizeof(path), "%s/f%d", dir, n++);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    if (text) {
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    } else {
        for (size_t i = 0; i < size; i++) {
            char c = (char)('0' + i % 10);
            ck_assert_int_eq(write(fd, &c, 1), 1);
        }
    }
    if (flags != O_RDWR) {
        int fd2 = open(path, flags | O_CLOEXEC);
        ck_assert_int_ge(fd2, 0);
        close(fd);
        fd = fd2;
    }
    return fd;
}

/* kart_mmap_read / readline as one number: the count, or the error. */
static int64_t rd(kart_mmap *m, void *buf, size_t n)
{
    size_t got = 12345;
    int r = kart_mmap_read(m, buf, n, &got);
    return r ? r : (int64_t)got;
}

static int64_t rdl(kart_mmap *m, void *buf, size_t cap)
{
    size_t got = 12345;
    int r = kart_mmap_readline(m, buf, cap, &got);
    return r ? r : (int64_t)got;
}

static int64_t fsize(const kart_mmap *m)
{
    int64_t size = -12345;
    int r = kart_mmap_file_size(m, &size);
    return r ? r : size;
}

/* ---- open ---- */

START_TEST(open_rejects_bad_arguments)
{
    kart_mmap *m = NULL;
    int fd = make_file(NULL, 100, O_RDWR);
    int64_t g = (int64_t)kart_mmap_granularity();
    ck_assert_int_ge(g, 4096);
    ck_assert_int_eq(kart_mmap_open(NULL, fd, 0, 0, KART_MMAP_READ, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, 4, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_READ, 0x80), -EINVAL);
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_READ, 0x10), -EINVAL);
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, -g, KART_MMAP_READ, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 100, KART_MMAP_READ, 0), -EINVAL);
    /* offset aligned but past the end; length past the end */
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, g, KART_MMAP_READ, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_open(&m, fd, 101, 0, KART_MMAP_READ, 0), -EINVAL);
    /* anonymous: a length, no offset */
    ck_assert_int_eq(kart_mmap_open(&m, -1, 0, 0, KART_MMAP_WRITE, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_open(&m, -1, 100, g, KART_MMAP_WRITE, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_open(&m, -2, 100, 0, KART_MMAP_WRITE, 0), -EBADF);
    ck_assert_ptr_null(m);
    close(fd);
}
END_TEST

START_TEST(open_empty_file_is_einval)
{
    kart_mmap *m = NULL;
    int fd = make_file("", 0, O_RDWR);
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_WRITE, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_open(&m, fd, 10, 0, KART_MMAP_WRITE, 0), -EINVAL);
    close(fd);
}
END_TEST

START_TEST(open_fd_errors)
{
    kart_mmap *m = NULL;
    int fd = make_file(NULL, 100, O_RDWR);
    int fd2 = dup(fd);
    close(fd2);
    ck_assert_int_eq(kart_mmap_open(&m, fd2, 0, 0, KART_MMAP_READ, 0), -EBADF);
    close(fd);
    int ro = make_file(NULL, 100, O_RDONLY);
    ck_assert_int_eq(kart_mmap_open(&m, ro, 0, 0, KART_MMAP_WRITE, 0), -EACCES);
    /* read-only fds may still be mapped read-only or copy-on-write */
    ck_assert_int_eq(kart_mmap_open(&m, ro, 0, 0, KART_MMAP_COPY, 0), 0);
    kart_mmap_close(m);
    close(ro);
    int wo = make_file(NULL, 100, O_WRONLY);
    ck_assert_int_eq(kart_mmap_open(&m, wo, 0, 0, KART_MMAP_READ, 0), -EACCES);
    close(wo);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(kart_mmap_open(&m, p[0], 4096, 0, KART_MMAP_READ, 0), -ENODEV);
    ck_assert_int_eq(kart_mmap_open(&m, p[0], 0, 0, KART_MMAP_READ, 0), -EINVAL);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(open_whole_file_and_window)
{
    int64_t g = (int64_t)kart_mmap_granularity();
    size_t size = (size_t)g * 3 + 17;
    int fd = make_file(NULL, size, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_READ, 0), 0);
    close(fd); /* the handle holds its own duplicate */
    ck_assert_uint_eq(kart_mmap_len(m), size);
    ck_assert_int_eq(fsize(m), (int64_t)size);
    ck_assert_int_eq(kart_mmap_access(m), KART_MMAP_READ);
    ck_assert_int_eq(((char *)kart_mmap_addr(m))[size - 1], '0' + (size - 1) % 10);
    kart_mmap_close(m);

    fd = make_file(NULL, size, O_RDWR);
    /* offset g, the rest of the file */
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, g, KART_MMAP_READ, KART_MMAP_POPULATE), 0);
    ck_assert_uint_eq(kart_mmap_len(m), size - (size_t)g);
    ck_assert_int_eq(kart_mmap_read_byte(m), '0' + g % 10);
    kart_mmap_close(m);
    /* offset 2g, 10 bytes; exactly to the end is allowed too */
    ck_assert_int_eq(kart_mmap_open(&m, fd, 10, 2 * g, KART_MMAP_READ, 0), 0);
    ck_assert_uint_eq(kart_mmap_len(m), 10);
    ck_assert_int_eq(kart_mmap_read_byte(m), '0' + (2 * g) % 10);
    kart_mmap_close(m);
    ck_assert_int_eq(kart_mmap_open(&m, fd, size - 3 * (size_t)g, 3 * g, KART_MMAP_READ, 0), 0);
    kart_mmap_close(m);
    close(fd);
}
END_TEST

START_TEST(null_handle_is_einval)
{
    char b[4];
    kart_mmap_close(NULL); /* ignored */
    ck_assert_ptr_null(kart_mmap_addr(NULL));
    ck_assert_uint_eq(kart_mmap_len(NULL), 0);
    ck_assert_int_eq(kart_mmap_access(NULL), 0);
    int64_t size;
    size_t got;
    ck_assert_int_eq(kart_mmap_file_size(NULL, &size), -EINVAL);
    ck_assert_int_eq(kart_mmap_read(NULL, b, 1, &got), -EINVAL);
    ck_assert_int_eq(kart_mmap_read_byte(NULL), -EINVAL);
    ck_assert_int_eq(kart_mmap_readline(NULL, b, 4, &got), -EINVAL);
    ck_assert_int_eq(kart_mmap_write(NULL, b, 1), -EINVAL);
    ck_assert_int_eq(kart_mmap_write_byte(NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_mmap_seek(NULL, 0, SEEK_SET), -EINVAL);
    ck_assert_int_eq(kart_mmap_tell(NULL), -EINVAL);
    ck_assert_int_eq(kart_mmap_find(NULL, "a", 1, 0, KART_MMAP_END), -EINVAL);
    ck_assert_int_eq(kart_mmap_rfind(NULL, "a", 1, 0, KART_MMAP_END), -EINVAL);
    ck_assert_int_eq(kart_mmap_move(NULL, 0, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_resize(NULL, 10), -EINVAL);
    ck_assert_int_eq(kart_mmap_flush(NULL), -EINVAL);
    ck_assert_int_eq(kart_mmap_flush_range(NULL, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_madvise(NULL, MADV_NORMAL, 0, 0), -EINVAL);
}
END_TEST

/* ---- position calls ---- */

START_TEST(read_and_read_byte_stop_at_the_end)
{
    int fd = make_file("hello world", 0, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_READ, 0), 0);
    char buf[32] = {0};
    ck_assert_int_eq(rd(m, NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_mmap_read(m, buf, 1, NULL), -EINVAL);
    ck_assert_int_eq(kart_mmap_tell(m), 0); /* nothing read */
    ck_assert_int_eq(rd(m, NULL, 0), 0);
    ck_assert_int_eq(rd(m, buf, 5), 5);
    ck_assert_str_eq(buf, "hello");
    ck_assert_int_eq(kart_mmap_tell(m), 5);
    ck_assert_int_eq(kart_mmap_read_byte(m), ' ');
    ck_assert_int_eq(rd(m, buf, sizeof(buf)), 5); /* short at the end */
    ck_assert_int_eq(memcmp(buf, "world", 5), 0);
    ck_assert_int_eq(rd(m, buf, sizeof(buf)), 0);
    ck_assert_int_eq(kart_mmap_read_byte(m), -ERANGE);
    ck_assert_int_eq(kart_mmap_tell(m), 11);
    kart_mmap_close(m);
    close(fd);
}
END_TEST

START_TEST(readline_splits_lines_and_respects_cap)
{
    int fd = make_file("one\ntwo two\n\nlast", 0, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_COPY, 0), 0);
    char buf[32];
    ck_assert_int_eq(rdl(m, NULL, 4), -EINVAL);
    ck_assert_int_eq(kart_mmap_readline(m, buf, sizeof(buf), NULL), -EINVAL);
    ck_assert_int_eq(rdl(m, buf, sizeof(buf)), 4);
    ck_assert_int_eq(memcmp(buf, "one\n", 4), 0);
    ck_assert_int_eq(rdl(m, buf, 3), 3); /* cut */
    ck_assert_int_eq(memcmp(buf, "two", 3), 0);
    ck_assert_int_eq(rdl(m, buf, sizeof(buf)), 5);
    ck_assert_int_eq(memcmp(buf, " two\n", 5), 0);
    ck_assert_int_eq(rdl(m, buf, sizeof(buf)), 1);
    ck_assert_int_eq(rdl(m, buf, sizeof(buf)), 4);
    ck_assert_int_eq(memcmp(buf, "last", 4), 0);
    ck_assert_int_eq(rdl(m, buf, sizeof(buf)), 0);
    kart_mmap_close(m);
    close(fd);
}
END_TEST

START_TEST(write_is_bounds_checked_and_write_through)
{
    int fd = make_file("abcdefghij", 0, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_WRITE, 0), 0);
    ck_assert_int_eq(kart_mmap_write(m, NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_mmap_seek(m, 2, SEEK_SET), 2);
    ck_assert_int_eq(kart_mmap_write(m, "XYZ", 3), 0);
    ck_assert_int_eq(kart_mmap_tell(m), 5);
    ck_assert_int_eq(kart_mmap_write(m, "123456", 6), -ERANGE); /* all or nothing */
    ck_assert_int_eq(kart_mmap_tell(m), 5);
    ck_assert_int_eq(kart_mmap_write(m, "12345", 5), 0);
    ck_assert_int_eq(kart_mmap_write_byte(m, '!'), -ERANGE);
    ck_assert_int_eq(kart_mmap_seek(m, -1, SEEK_END), 9);
    ck_assert_int_eq(kart_mmap_write_byte(m, '!'), 0);
    ck_assert_int_eq(kart_mmap_flush(m), 0);
    char buf[11] = {0};
    ck_assert_int_eq(pread(fd, buf, 10, 0), 10);
    ck_assert_str_eq(buf, "abXYZ1234!");
    kart_mmap_close(m);
    close(fd);
}
END_TEST

START_TEST(write_to_read_only_is_eacces)
{
    int fd = make_file("abcdefghij", 0, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_READ, 0), 0);
    ck_assert_int_eq(kart_mmap_write(m, "x", 1), -EACCES);
    ck_assert_int_eq(kart_mmap_write_byte(m, 'x'), -EACCES);
    ck_assert_int_eq(kart_mmap_move(m, 0, 1, 1), -EACCES);
    ck_assert_int_eq(kart_mmap_resize(m, 20), -EACCES);
    ck_assert_int_eq(kart_mmap_flush(m), 0); /* nothing to write back */
    ck_assert_int_eq(kart_mmap_tell(m), 0);
    kart_mmap_close(m);
    close(fd);
}
END_TEST

START_TEST(copy_on_write_leaves_the_file_alone)
{
    int fd = make_file("abcdefghij", 0, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_COPY, 0), 0);
    ck_assert_int_eq(kart_mmap_write(m, "ZZ", 2), 0);
    ck_assert_int_eq(kart_mmap_seek(m, 0, SEEK_SET), 0);
    ck_assert_int_eq(kart_mmap_read_byte(m), 'Z');
    ck_assert_int_eq(kart_mmap_flush(m), 0);
    ck_assert_int_eq(kart_mmap_resize(m, 20), -EACCES);
    char buf[3] = {0};
    ck_assert_int_eq(pread(fd, buf, 2, 0), 2);
    ck_assert_str_eq(buf, "ab");
    kart_mmap_close(m);
    close(fd);
}
END_TEST

START_TEST(seek_whence_and_range)
{
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, -1, 100, 0, KART_MMAP_WRITE, 0), 0);
    ck_assert_int_eq(kart_mmap_seek(m, 10, SEEK_SET), 10);
    ck_assert_int_eq(kart_mmap_seek(m, 5, SEEK_CUR), 15);
    ck_assert_int_eq(kart_mmap_seek(m, -5, SEEK_CUR), 10);
    ck_assert_int_eq(kart_mmap_seek(m, 0, SEEK_END), 100);
    ck_assert_int_eq(kart_mmap_seek(m, -100, SEEK_END), 0);
    ck_assert_int_eq(kart_mmap_seek(m, 50, SEEK_SET), 50);
    ck_assert_int_eq(kart_mmap_seek(m, -1, SEEK_SET), -EINVAL);
    ck_assert_int_eq(kart_mmap_seek(m, 101, SEEK_SET), -EINVAL);
    ck_assert_int_eq(kart_mmap_seek(m, 1, SEEK_END), -EINVAL);
    ck_assert_int_eq(kart_mmap_seek(m, -51, SEEK_CUR), -EINVAL);
    ck_assert_int_eq(kart_mmap_seek(m, INT64_MAX, SEEK_CUR), -EINVAL);
    ck_assert_int_eq(kart_mmap_seek(m, 0, 42), -EINVAL);
    ck_assert_int_eq(kart_mmap_tell(m), 50);
    ck_assert_int_eq(fsize(m), -EBADF);
    int64_t size;
    ck_assert_int_eq(kart_mmap_file_size(m, NULL), -EINVAL);
    ck_assert_int_eq(kart_mmap_file_size(m, &size), -EBADF);
    kart_mmap_close(m);
}
END_TEST

/* ---- find, move ---- */

START_TEST(find_and_rfind_with_slices)
{
    int fd = make_file("abcabcXabc", 0, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_READ, 0), 0);
    ck_assert_int_eq(kart_mmap_find(m, "abc", 3, 0, KART_MMAP_END), 0);
    ck_assert_int_eq(kart_mmap_find(m, "abc", 3, 1, KART_MMAP_END), 3);
    ck_assert_int_eq(kart_mmap_find(m, "abc", 3, 4, KART_MMAP_END), 7);
    ck_assert_int_eq(kart_mmap_find(m, "abc", 3, 4, 9), -ENOENT); /* must fit wholly */
    ck_assert_int_eq(kart_mmap_find(m, "abc", 3, -3, KART_MMAP_END), 7);
    ck_assert_int_eq(kart_mmap_find(m, "X", 1, -100, -3), 6);
    ck_assert_int_eq(kart_mmap_find(m, "zz", 2, 0, KART_MMAP_END), -ENOENT);
    ck_assert_int_eq(kart_mmap_find(m, "", 0, 4, 2), -ENOENT);
    ck_assert_int_eq(kart_mmap_find(m, "", 0, 4, KART_MMAP_END), 4);
    ck_assert_int_eq(kart_mmap_find(m, "", 0, 50, KART_MMAP_END), 10);
    ck_assert_int_eq(kart_mmap_find(m, NULL, 1, 0, KART_MMAP_END), -EINVAL);
    ck_assert_int_eq(kart_mmap_rfind(m, "abc", 3, 0, KART_MMAP_END), 7);
    ck_assert_int_eq(kart_mmap_rfind(m, "abc", 3, 0, 9), 3);
    ck_assert_int_eq(kart_mmap_rfind(m, "abc", 3, 0, -4), 3);
    ck_assert_int_eq(kart_mmap_rfind(m, "abc", 3, 1, 5), -ENOENT);
    ck_assert_int_eq(kart_mmap_rfind(m, "a", 1, 0, 1), 0);
    ck_assert_int_eq(kart_mmap_rfind(m, "zz", 2, 0, KART_MMAP_END), -ENOENT);
    ck_assert_int_eq(kart_mmap_rfind(m, "", 0, 0, 5), 5);
    ck_assert_int_eq(kart_mmap_rfind(m, "", 0, 6, 5), -ENOENT);
    ck_assert_int_eq(kart_mmap_rfind(m, NULL, 1, 0, KART_MMAP_END), -EINVAL);
    kart_mmap_close(m);
    close(fd);
}
END_TEST

START_TEST(move_overlapping_and_bounds)
{
    int fd = make_file("0123456789", 0, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_WRITE, 0), 0);
    char *p = kart_mmap_addr(m);
    ck_assert_int_eq(kart_mmap_move(m, 2, 0, 5), 0);
    ck_assert_int_eq(memcmp(p, "0101234789", 10), 0);
    ck_assert_int_eq(kart_mmap_move(m, 0, 5, 5), 0);
    ck_assert_int_eq(memcmp(p, "3478934789", 10), 0);
    ck_assert_int_eq(kart_mmap_move(m, 6, 0, 5), -ERANGE);
    ck_assert_int_eq(kart_mmap_move(m, 0, 6, 5), -ERANGE);
    ck_assert_int_eq(kart_mmap_move(m, 11, 0, 0), -ERANGE);
    ck_assert_int_eq(kart_mmap_move(m, 0, SIZE_MAX, 2), -ERANGE);
    ck_assert_int_eq(kart_mmap_move(m, 10, 0, 0), 0);
    ck_assert_int_eq(memcmp(p, "3478934789", 10), 0);
    kart_mmap_close(m);
    close(fd);
}
END_TEST

/* ---- resize, flush, madvise ---- */

START_TEST(resize_grows_and_shrinks_the_file)
{
    int64_t g = (int64_t)kart_mmap_granularity();
    int fd = make_file(NULL, (size_t)g + 10, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 10, g, KART_MMAP_WRITE, 0), 0);
    ck_assert_int_eq(kart_mmap_resize(m, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_seek(m, 0, SEEK_END), 10);
    ck_assert_int_eq(kart_mmap_resize(m, 3 * (size_t)g), 0);
    ck_assert_uint_eq(kart_mmap_len(m), 3 * (size_t)g);
    ck_assert_int_eq(fsize(m), 4 * g);
    ck_assert_int_eq(kart_mmap_tell(m), 10);
    /* the new bytes are zeros and writable, and reach the file */
    ck_assert_int_eq(((char *)kart_mmap_addr(m))[2 * g], 0);
    ck_assert_int_eq(kart_mmap_seek(m, -1, SEEK_END), 3 * g - 1);
    ck_assert_int_eq(kart_mmap_write_byte(m, 'E'), 0);
    char c;
    ck_assert_int_eq(pread(fd, &c, 1, 4 * g - 1), 1);
    ck_assert_int_eq(c, 'E');
    ck_assert_int_eq(kart_mmap_resize(m, 5), 0);
    ck_assert_uint_eq(kart_mmap_len(m), 5);
    ck_assert_int_eq(kart_mmap_tell(m), 5); /* clamped */
    ck_assert_int_eq(fsize(m), g + 5);
    ck_assert_int_eq(kart_mmap_read_byte(m), -ERANGE);
    kart_mmap_close(m);
    close(fd);
}
END_TEST

START_TEST(resize_anonymous)
{
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, -1, 100, 0, KART_MMAP_WRITE, 0), 0);
    ck_assert_int_eq(kart_mmap_write(m, "keep", 4), 0);
    ck_assert_int_eq(kart_mmap_resize(m, 1 << 20), 0);
    char *p = kart_mmap_addr(m);
    ck_assert_int_eq(memcmp(p, "keep", 4), 0);
    p[(1 << 20) - 1] = 'z'; /* the grown part is really there */
    ck_assert_int_eq(kart_mmap_resize(m, 2), 0);
    ck_assert_uint_eq(kart_mmap_len(m), 2);
    kart_mmap_close(m);
    ck_assert_int_eq(kart_mmap_open(&m, -1, 100, 0, KART_MMAP_COPY, 0), 0);
    ck_assert_int_eq(kart_mmap_resize(m, 200), -EACCES);
    kart_mmap_close(m);
    ck_assert_int_eq(kart_mmap_open(&m, -1, 100, 0, KART_MMAP_READ, 0), 0);
    ck_assert_int_eq(kart_mmap_read_byte(m), 0);
    ck_assert_int_eq(kart_mmap_write_byte(m, 1), -EACCES);
    ck_assert_int_eq(kart_mmap_resize(m, 200), -EACCES);
    kart_mmap_close(m);
}
END_TEST

START_TEST(flush_ranges)
{
    int64_t g = (int64_t)kart_mmap_granularity();
    int fd = make_file(NULL, 2 * (size_t)g, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_WRITE, 0), 0);
    ck_assert_int_eq(kart_mmap_write(m, "F", 1), 0);
    ck_assert_int_eq(kart_mmap_flush(m), 0);
    ck_assert_int_eq(kart_mmap_flush_range(m, (size_t)g, 0), 0);
    ck_assert_int_eq(kart_mmap_flush_range(m, (size_t)g, (size_t)g), 0);
    ck_assert_int_eq(kart_mmap_flush_range(m, 0, 1), 0);
    ck_assert_int_eq(kart_mmap_flush_range(m, 1, 1), -EINVAL);
    ck_assert_int_eq(kart_mmap_flush_range(m, (size_t)g, (size_t)g + 1), -ERANGE);
    ck_assert_int_eq(kart_mmap_flush_range(m, 4 * (size_t)g, 0), -ERANGE);
    kart_mmap_close(m);
    close(fd);
    ck_assert_int_eq(kart_mmap_open(&m, -1, 100, 0, KART_MMAP_WRITE, 0), 0);
    ck_assert_int_eq(kart_mmap_flush(m), 0);
    kart_mmap_close(m);
}
END_TEST

START_TEST(madvise_ranges)
{
    int64_t g = (int64_t)kart_mmap_granularity();
    int fd = make_file(NULL, 4 * (size_t)g, O_RDWR);
    kart_mmap *m;
    ck_assert_int_eq(kart_mmap_open(&m, fd, 0, 0, KART_MMAP_READ, 0), 0);
    ck_assert_int_eq(kart_mmap_madvise(m, MADV_SEQUENTIAL, 0, 0), 0);
    ck_assert_int_eq(kart_mmap_madvise(m, MADV_WILLNEED, (size_t)g, (size_t)g), 0);
    ck_assert_int_eq(kart_mmap_madvise(m, MADV_NORMAL, (size_t)g, 100 * (size_t)g), 0);
    ck_assert_int_eq(kart_mmap_madvise(m, MADV_NORMAL, 4 * (size_t)g, 0), 0);
    ck_assert_int_eq(kart_mmap_madvise(m, MADV_NORMAL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_mmap_madvise(m, MADV_NORMAL, 5 * (size_t)g, 0), -ERANGE);
    ck_assert_int_eq(kart_mmap_madvise(m, 12345, 0, 0), -EINVAL);
    kart_mmap_close(m);
    close(fd);
}
END_TEST

START_TEST(huge_pages_work_or_fail_cleanly)
{
    kart_mmap *m = NULL;
    int err = kart_mmap_open(&m, -1, 3 << 20, 0, KART_MMAP_WRITE, KART_MMAP_HUGE);
    if (err == 0) {
        ck_assert_uint_eq(kart_mmap_len(m), 3 << 20);
        ck_assert_int_eq(kart_mmap_seek(m, -1, SEEK_END), (3 << 20) - 1);
        ck_assert_int_eq(kart_mmap_write_byte(m, 7), 0);
        ck_assert_int_eq(kart_mmap_resize(m, 4 << 20), -EINVAL);
        kart_mmap_close(m);
    } else {
        ck_assert_msg(err == -ENOMEM || err == -EINVAL, "anonymous huge: %s", kart_strerror(err));
        ck_assert_ptr_null(m);
    }
    int fd = make_file(NULL, 3 * (size_t)kart_mmap_granularity(), O_RDWR);
    err = kart_mmap_open(&m, fd, 0, 0, KART_MMAP_WRITE, KART_MMAP_HUGE);
    if (err == 0) {
        ck_assert_int_eq(kart_mmap_write(m, "h", 1), 0);
        kart_mmap_close(m);
    } else {
        ck_assert_int_eq(err, -EINVAL);
    }
    close(fd);
}
END_TEST

/* ---- fork ---- */

/* From /proc/self/smaps, the mapping that starts at addr: its resident
 * kilobytes (*rss_kb) and whether its VmFlags hold flag ("ex", "nr"). */
static bool smaps_has(const void *addr, const char *flag, long *rss_kb)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    ck_assert_ptr_nonnull(f);
    char line[512], want[32];
    snprintf(want, sizeof(want), "%lx-", (unsigned long)(uintptr_t)addr);
    bool in = false, found = false, seen = false;
    while (fgets(line, sizeof(line), f)) {
        if (!in) {
            in = strncmp(line, want, strlen(want)) == 0;
            continue;
        }
        if (rss_kb && strncmp(line, "Rss:", 4) == 0)
            *rss_kb = strtol(line + 4, NULL, 10);
        if (strncmp(line, "VmFlags:", 8) == 0) {
            char *tok = strtok(line + 8, " \n");
            for (; tok; tok = strtok(NULL, " \n"))
                found |= strcmp(tok, flag) == 0;
            seen = true;
            break;
        }
    }
    fclose(f);
    ck_assert_msg(seen, "no smaps entry for %p", addr);
    return found;
}

/* Python's prot= and flags=: PROT_EXEC, MAP_NORESERVE, MAP_POPULATE reach
 * the kernel (seen in /proc/self/smaps), and only when asked for. */
START_TEST(prot_and_flags_reach_the_kernel)
{
    kart_mmap *m;
    size_t len = 1 << 20;
    long rss = -1;
    ck_assert_int_eq(kart_mmap_open(&m, -1, len, 0, KART_MMAP_COPY, 0), 0);
    ck_assert(!smaps_has(kart_mmap_addr(m), "ex", &rss));
    ck_assert(!smaps_has(kart_mmap_addr(m), "nr", NULL));
    ck_assert_int_eq(rss, 0); /* nothing touched */
    kart_mmap_close(m);

    ck_assert_int_eq(kart_mmap_open(&m, -1, len, 0, KART_MMAP_COPY, KART_MMAP_POPULATE), 0);
    ck_assert(!smaps_has(kart_mmap_addr(m), "ex", &rss));
    ck_assert_int_eq(rss, (long)(len / 1024)); /* every page in at open */
    kart_mmap_close(m);

    unsigned ex_nr = KART_MMAP_EXEC | KART_MMAP_NORESERVE;
    ck_assert_int_eq(kart_mmap_open(&m, -1, len, 0, KART_MMAP_COPY, ex_nr), 0);
    ck_assert(smaps_has(kart_mmap_addr(m), "ex", NULL));
    ck_assert(smaps_has(kart_mmap_addr(m), "nr", NULL));
    ck_assert_int_eq(kart_mmap_write_byte(m, 0xc3), 0); /* still writable */
    kart_mmap_close(m);

    /* A shared anonymous map (a memfd), executable; READ + EXEC on a file,
     * refused with -EPERM where the file system is mounted noexec. */
    ck_assert_int_eq(kart_mmap_open(&m, -1, len, 0, KART_MMAP_WRITE, KART_MMAP_EXEC), 0);
    ck_assert(smaps_has(kart_mmap_addr(m), "ex", NULL));
    kart_mmap_close(m);
    int fd = make_file(NULL, 8192, O_RDONLY);
    struct statvfs vfs;
    ck_assert_int_eq(fstatvfs(fd, &vfs), 0);
    int r = kart_mmap_open(&m, fd, 0, 0, KART_MMAP_READ, KART_MMAP_EXEC);
    if (vfs.f_flag & ST_NOEXEC) {
        ck_assert_int_eq(r, -EPERM);
    } else {
        ck_assert_int_eq(r, 0);
        ck_assert(smaps_has(kart_mmap_addr(m), "ex", NULL));
        ck_assert_int_eq(kart_mmap_access(m), KART_MMAP_READ);
        ck_assert_int_eq(kart_mmap_write(m, "x", 1), -EACCES); /* EXEC adds no write */
        kart_mmap_close(m);
    }
    close(fd);
}
END_TEST

START_TEST(fork_shares_write_maps_not_copy_maps)
{
    kart_mmap *shared, *priv;
    ck_assert_int_eq(kart_mmap_open(&shared, -1, 4096, 0, KART_MMAP_WRITE, 0), 0);
    ck_assert_int_eq(kart_mmap_open(&priv, -1, 4096, 0, KART_MMAP_COPY, 0), 0);
    int fd = make_file("........", 0, O_RDWR);
    kart_mmap *file;
    ck_assert_int_eq(kart_mmap_open(&file, fd, 0, 0, KART_MMAP_WRITE, 0), 0);
    ck_assert_int_eq(kart_mmap_write(priv, "P", 1), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        /* the child's handle starts where the parent's was */
        int ok = kart_mmap_tell(priv) == 1 && kart_mmap_write(shared, "child", 5) == 0 &&
                 kart_mmap_write(priv, "C", 1) == 0 && kart_mmap_write(file, "kid", 3) == 0;
        kart_mmap_close(shared);
        kart_mmap_close(priv);
        kart_mmap_close(file);
        _exit(ok ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(memcmp(kart_mmap_addr(shared), "child", 5), 0);
    ck_assert_int_eq(((char *)kart_mmap_addr(priv))[1], 0);
    ck_assert_int_eq(kart_mmap_tell(shared), 0);
    char buf[4] = {0};
    ck_assert_int_eq(pread(fd, buf, 3, 0), 3);
    ck_assert_str_eq(buf, "kid");
    kart_mmap_close(shared);
    kart_mmap_close(priv);
    kart_mmap_close(file);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mmap");
    TCase *tc = tcase_create("open");
    tcase_add_test(tc, open_rejects_bad_arguments);
    tcase_add_test(tc, open_empty_file_is_einval);
    tcase_add_test(tc, open_fd_errors);
    tcase_add_test(tc, open_whole_file_and_window);
    tcase_add_test(tc, null_handle_is_einval);
    suite_add_tcase(s, tc);

    tc = tcase_create("position");
    tcase_add_test(tc, read_and_read_byte_stop_at_the_end);
    tcase_add_test(tc, readline_splits_lines_and_respects_cap);
    tcase_add_test(tc, write_is_bounds_checked_and_write_through);
    tcase_add_test(tc, write_to_read_only_is_eacces);
    tcase_add_test(tc, copy_on_write_leaves_the_file_alone);
    tcase_add_test(tc, seek_whence_and_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("find_move");
    tcase_add_test(tc, find_and_rfind_with_slices);
    tcase_add_test(tc, move_overlapping_and_bounds);
    suite_add_tcase(s, tc);

    tc = tcase_create("resize_flush_advise");
    tcase_add_test(tc, resize_grows_and_shrinks_the_file);
    tcase_add_test(tc, resize_anonymous);
    tcase_add_test(tc, flush_ranges);
    tcase_add_test(tc, madvise_ranges);
    tcase_add_test(tc, huge_pages_work_or_fail_cleanly);
    tcase_add_test(tc, prot_and_flags_reach_the_kernel);
    suite_add_tcase(s, tc);

    tc = tcase_create("fork");
    tcase_add_test(tc, fork_shares_write_maps_not_copy_maps);
    suite_add_tcase(s, tc);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    int rc = kt_run(s);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? rc : 1;
}

/* Description: the history (kart/history.h): entries, numbering (1-based
 * get, 0-based remove/replace, as Python's readline), timestamps, the
 * length limit, ignorespace/ignoredups/erasedups, the editor's accessor
 * and search; files in GNU readline's format, with timestamps, and bad
 * ones (binary garbage, CRLF, no final newline, 10 million lines, 1 MiB
 * lines, a directory, unreadable, missing, a full disk); two processes
 * appending at once, and appends racing a truncation; history expansion,
 * checked against bash's `history -p` where bash is installed; and files
 * read and written by the real GNU readline through Python's readline
 * module (tests/py/history_peer.py), skipped with a note when python3 or
 * its GNU readline is missing. */
#include "testutil.h"

#include "fault.h"
#include "history_private.h" /* kart__hist_search_scan */

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define PEER "tests/py/history_peer.py"

/* ---- helpers ---- */

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/kart-hist-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    chmod(dir, 0777);
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char p[PATH_MAX];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    closedir(d);
    rmdir(dir);
}

/* A path in the test's directory (a rotating set of static buffers). */
static const char *path(const char *name)
{
    static char bufs[8][PATH_MAX];
    static int k;
    char *p = bufs[k++ % 8];
    snprintf(p, PATH_MAX, "%s/%s", dir, name);
    return p;
}

/* How many files the test's directory holds. */
static int dir_files(void)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.' || (de->d_name[1] && (de->d_name[1] != '.' || de->d_name[2]));
    closedir(d);
    return n;
}

static void put_file(const char *p, const void *data, size_t len)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    const char *s = data;
    while (len) {
        ssize_t w = write(fd, s, len);
        ck_assert_int_gt(w, 0);
        s += w;
        len -= (size_t)w;
    }
    close(fd);
}

static void put_str(const char *p, const char *s)
{
    put_file(p, s, strlen(s));
}

/* The file's bytes (malloc'd, NUL-terminated), its length in *len. */
static char *get_file(const char *p, size_t *len)
{
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf + n, (size_t)st.st_size - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

static void file_is(const char *p, const char *want)
{
    size_t n;
    char *got = get_file(p, &n);
    ck_assert_msg(n == strlen(want) && memcmp(got, want, n) == 0, "file %s: got [%s] want [%s]", p,
                  got, want);
    free(got);
}

static kart_history *mk(const kart_history_options *o)
{
    kart_history *h;
    ck_assert_int_eq(kart_history_create(&h, o), 0);
    return h;
}

static int add(kart_history *h, const char *s)
{
    return kart_history_add(h, s, strlen(s));
}

static void entry_is(const kart_history *h, size_t i, const char *want)
{
    size_t len;
    const char *t = kart_history_text(h, i, &len);
    ck_assert_msg(t != NULL, "entry %zu missing (length %zu)", i, kart_history_length(h));
    ck_assert_msg(len == strlen(want) && memcmp(t, want, len) == 0 && t[len] == 0,
                  "entry %zu: got [%.*s] want [%s]", i, (int)len, t, want);
}

/* The entries, joined by '|', for compact comparisons. */
static const char *joined(const kart_history *h)
{
    static char buf[4096];
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < kart_history_length(h); i++) {
        size_t len;
        const char *t = kart_history_text(h, i, &len);
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%.*s", i ? "|" : "", (int)len, t);
    }
    return buf;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---- entries ---- */

/* CPython's test_readline testHistoryUpdates, in C. */
START_TEST(python_history_updates)
{
    kart_history *h = mk(NULL);
    ck_assert_int_eq(add(h, "first line"), 1);
    ck_assert_int_eq(add(h, "second line"), 1);
    char buf[64];
    size_t len;
    ck_assert_int_eq(kart_history_get(h, 0, buf, sizeof(buf), &len), -ENOENT);
    ck_assert_int_eq(kart_history_get(h, 1, buf, sizeof(buf), &len), 0);
    ck_assert_str_eq(buf, "first line");
    ck_assert_uint_eq(len, 10);
    ck_assert_int_eq(kart_history_get(h, 2, buf, sizeof(buf), &len), 0);
    ck_assert_str_eq(buf, "second line");
    ck_assert_int_eq(kart_history_get(h, 3, buf, sizeof(buf), &len), -ENOENT);
    ck_assert_int_eq(kart_history_replace(h, 0, "replaced line", 13), 0);
    ck_assert_int_eq(kart_history_get(h, 1, buf, sizeof(buf), &len), 0);
    ck_assert_str_eq(buf, "replaced line");
    ck_assert_uint_eq(kart_history_length(h), 2);
    ck_assert_int_eq(kart_history_remove(h, 0), 0);
    ck_assert_int_eq(kart_history_get(h, 1, buf, sizeof(buf), &len), 0);
    ck_assert_str_eq(buf, "second line");
    ck_assert_uint_eq(kart_history_length(h), 1);
    ck_assert_int_eq(kart_history_remove(h, 1), -ENOENT);
    ck_assert_int_eq(kart_history_replace(h, 1, "x", 1), -ENOENT);
    kart_history_clear(h);
    ck_assert_uint_eq(kart_history_length(h), 0);
    ck_assert_int_eq(kart_history_get(h, 1, buf, sizeof(buf), &len), -ENOENT);
    kart_history_free(h);
    kart_history_free(NULL);
}
END_TEST

START_TEST(get_needs_room)
{
    kart_history *h = mk(NULL);
    add(h, "hello");
    char buf[8];
    size_t len = 0;
    ck_assert_int_eq(kart_history_get(h, 1, buf, 5, &len), -ENOBUFS);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(kart_history_get(h, 1, NULL, 0, &len), -ENOBUFS);
    ck_assert_int_eq(kart_history_get(h, 1, buf, 6, &len), 0);
    ck_assert_str_eq(buf, "hello");
    kart_history_free(h);
}
END_TEST

START_TEST(bad_lines_refused)
{
    kart_history *h = mk(NULL);
    ck_assert_int_eq(kart_history_add(h, "a\nb", 3), -EINVAL);
    ck_assert_int_eq(kart_history_add(h, "ab\r", 3), -EINVAL);
    ck_assert_int_eq(kart_history_add(h, NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_history_add(h, "a\rb", 3), 1); /* a CR inside is fine */
    ck_assert_int_eq(kart_history_add(h, "a\0b", 3), 1); /* so is a NUL */
    ck_assert_int_eq(kart_history_add(h, NULL, 0), 1);   /* and an empty line */
    ck_assert_int_eq(kart_history_replace(h, 0, "x\n", 2), -EINVAL);
    ck_assert_int_eq(kart_history_replace(h, 0, "x\r", 2), -EINVAL);
    char *big = malloc(KART_HISTORY_MAX_LEN + 1);
    memset(big, 'x', KART_HISTORY_MAX_LEN + 1);
    ck_assert_int_eq(kart_history_add(h, big, KART_HISTORY_MAX_LEN + 1), -EMSGSIZE);
    ck_assert_int_eq(kart_history_replace(h, 0, big, KART_HISTORY_MAX_LEN + 1), -EMSGSIZE);
    ck_assert_uint_eq(kart_history_length(h), 3);
    ck_assert_int_eq(kart_history_add(h, big, KART_HISTORY_MAX_LEN), 1);
    size_t len;
    ck_assert_ptr_nonnull(kart_history_text(h, 3, &len));
    ck_assert_uint_eq(len, KART_HISTORY_MAX_LEN);
    /* A pattern as long as the longest entry is found in it; one longer
     * is in no entry. */
    size_t found = 0, off = 1;
    ck_assert_int_eq(kart_history_search(h, SIZE_MAX, big, KART_HISTORY_MAX_LEN, 0, &found, &off),
                     0);
    ck_assert_uint_eq(found, 3);
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(
        kart_history_search(h, SIZE_MAX, big, KART_HISTORY_MAX_LEN + 1, 0, &found, &off), -ENOENT);
    const char *t = kart_history_text(h, 1, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(t, "a\0b", 3);
    free(big);
    ck_assert_int_eq(kart_history_create(NULL, NULL), -EINVAL);
    kart_history_free(h);
}
END_TEST

START_TEST(timestamps)
{
    kart_history *h = mk(NULL);
    int64_t t0 = now_s();
    add(h, "a");
    add(h, "b");
    int64_t t1 = now_s();
    ck_assert_int_ge(kart_history_time(h, 0), t0);
    ck_assert_int_le(kart_history_time(h, 1), t1);
    ck_assert_int_eq(kart_history_time(h, 2), -ENOENT);
    ck_assert_int_eq(kart_history_set_time(h, 0, 1700000000), 0);
    ck_assert_int_eq(kart_history_time(h, 0), 1700000000);
    ck_assert_int_eq(kart_history_set_time(h, 0, -1), -EINVAL);
    ck_assert_int_eq(kart_history_set_time(h, 0, KART_HISTORY_TIME_MAX + 1), -EINVAL);
    ck_assert_int_eq(kart_history_set_time(h, 1, KART_HISTORY_TIME_MAX), 0);
    ck_assert_int_eq(kart_history_time(h, 1), KART_HISTORY_TIME_MAX);
    entry_is(h, 1, "b");
    ck_assert_int_eq(kart_history_set_time(h, 2, 5), -ENOENT);
    /* replace keeps the time; remove takes it along. */
    ck_assert_int_eq(kart_history_replace(h, 0, "A", 1), 0);
    ck_assert_int_eq(kart_history_time(h, 0), 1700000000);
    ck_assert_int_eq(kart_history_set_time(h, 1, 42), 0);
    ck_assert_int_eq(kart_history_remove(h, 0), 0);
    ck_assert_int_eq(kart_history_time(h, 0), 42);
    kart_history_free(h);
}
END_TEST

START_TEST(stifle_keeps_newest)
{
    kart_history *h = mk(NULL);
    ck_assert_uint_eq(kart_history_max(h), KART_HISTORY_UNLIMITED);
    char s[16];
    for (int i = 1; i <= 10; i++) {
        snprintf(s, sizeof(s), "e%d", i);
        ck_assert_int_eq(add(h, s), 1);
    }
    kart_history_stifle(h, 4);
    ck_assert_uint_eq(kart_history_max(h), 4);
    ck_assert_str_eq(joined(h), "e7|e8|e9|e10");
    /* The numbers stay those of the entries: e7 is still number 7. */
    ck_assert_uint_eq(kart_history_base(h), 7);
    char buf[16];
    ck_assert_int_eq(kart_history_get(h, 7, buf, sizeof(buf), NULL), 0);
    ck_assert_str_eq(buf, "e7");
    ck_assert_int_eq(kart_history_get(h, 6, buf, sizeof(buf), NULL), -ENOENT);
    add(h, "e11");
    ck_assert_str_eq(joined(h), "e8|e9|e10|e11");
    ck_assert_uint_eq(kart_history_base(h), 8);
    ck_assert_int_eq(kart_history_get(h, 11, buf, sizeof(buf), NULL), 0);
    ck_assert_str_eq(buf, "e11");
    /* Removing does not renumber the base (GNU's remove_history). */
    ck_assert_int_eq(kart_history_remove(h, 0), 0);
    ck_assert_uint_eq(kart_history_base(h), 8);
    kart_history_stifle(h, KART_HISTORY_UNLIMITED);
    for (int i = 12; i <= 20; i++) {
        snprintf(s, sizeof(s), "e%d", i);
        add(h, s);
    }
    ck_assert_uint_eq(kart_history_length(h), 12);
    kart_history_stifle(h, 0);
    ck_assert_uint_eq(kart_history_length(h), 0);
    ck_assert_int_eq(add(h, "kept?"), 0);
    ck_assert_uint_eq(kart_history_length(h), 0);
    kart_history_stifle(h, 2);
    kart_history_clear(h);
    ck_assert_uint_eq(kart_history_base(h), 1);
    ck_assert_uint_eq(kart_history_max(h), 2);
    kart_history_free(h);
}
END_TEST

START_TEST(histcontrol_options)
{
    kart_history_options o = {.ignore_space = true, .ignore_dups = true};
    kart_history *h = mk(&o);
    ck_assert_int_eq(add(h, " secret"), 0);
    ck_assert_int_eq(add(h, "\tnot secret"), 1); /* bash: a space only */
    ck_assert_int_eq(add(h, "ls"), 1);
    ck_assert_int_eq(add(h, "ls"), 0);
    ck_assert_int_eq(add(h, "pwd"), 1);
    ck_assert_int_eq(add(h, "ls"), 1); /* only the previous entry counts */
    ck_assert_str_eq(joined(h), "\tnot secret|ls|pwd|ls");
    kart_history_options got;
    kart_history_get_options(h, &got);
    ck_assert(got.ignore_space && got.ignore_dups && !got.erase_dups && !got.expand);
    /* erasedups: older copies go before the line is added. */
    kart_history_set_options(h, &(kart_history_options){.erase_dups = true});
    ck_assert_int_eq(add(h, "pwd"), 1);
    ck_assert_str_eq(joined(h), "\tnot secret|ls|ls|pwd");
    ck_assert_int_eq(add(h, "ls"), 1);
    ck_assert_str_eq(joined(h), "\tnot secret|pwd|ls");
    /* With a limit, erasing first leaves room: bash's order. */
    kart_history_stifle(h, 3);
    ck_assert_int_eq(add(h, "pwd"), 1);
    ck_assert_str_eq(joined(h), "\tnot secret|ls|pwd");
    kart_history_set_options(h, NULL);
    kart_history_get_options(h, &got);
    ck_assert(!got.ignore_space && !got.ignore_dups && !got.erase_dups);
    ck_assert_int_eq(add(h, " pwd"), 1);
    ck_assert_int_eq(add(h, " pwd"), 1);
    kart_history_free(h);
}
END_TEST

START_TEST(accessor_and_search)
{
    kart_history *h = mk(NULL);
    /* 0 to 4: */
    add(h, "make check");
    add(h, "git commit -a");
    add(h, "make check-house");
    add(h, "echo check check");
    ck_assert_int_eq(kart_history_add(h, "bin\0check", 9), 1);
    size_t len, found, off;
    ck_assert_ptr_null(kart_history_text(h, 5, &len));
    ck_assert_ptr_nonnull(kart_history_text(h, 0, NULL));
    /* Substring, towards the oldest: the newest match, its last place. */
    ck_assert_int_eq(kart_history_search(h, SIZE_MAX, "check", 5, 0, &found, &off), 0);
    ck_assert_uint_eq(found, 4);
    ck_assert_uint_eq(off, 4);
    ck_assert_int_eq(kart_history_search(h, 3, "check", 5, 0, &found, &off), 0);
    ck_assert_uint_eq(found, 3);
    ck_assert_uint_eq(off, 11);
    ck_assert_int_eq(kart_history_search(h, 1, "check", 5, 0, &found, &off), 0);
    ck_assert_uint_eq(found, 0);
    ck_assert_uint_eq(off, 5);
    ck_assert_int_eq(kart_history_search(h, 1, "commit", 6, 0, &found, NULL), 0);
    ck_assert_uint_eq(found, 1);
    ck_assert_int_eq(kart_history_search(h, 0, "commit", 6, 0, &found, NULL), -ENOENT);
    /* Forward: the first place. */
    ck_assert_int_eq(
        kart_history_search(h, 3, "check", 5, KART_HISTORY_SEARCH_FORWARD, &found, &off), 0);
    ck_assert_uint_eq(found, 3);
    ck_assert_uint_eq(off, 5);
    ck_assert_int_eq(
        kart_history_search(h, 1, "check", 5, KART_HISTORY_SEARCH_FORWARD, &found, &off), 0);
    ck_assert_uint_eq(found, 2);
    ck_assert_int_eq(
        kart_history_search(h, 5, "check", 5, KART_HISTORY_SEARCH_FORWARD, &found, &off), -ENOENT);
    /* Prefix (history-search-backward / -forward). */
    ck_assert_int_eq(
        kart_history_search(h, SIZE_MAX, "make", 4, KART_HISTORY_SEARCH_PREFIX, &found, &off), 0);
    ck_assert_uint_eq(found, 2);
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(kart_history_search(h, 1, "make", 4, KART_HISTORY_SEARCH_PREFIX, &found, &off),
                     0);
    ck_assert_uint_eq(found, 0);
    ck_assert_int_eq(kart_history_search(h, 1, "make", 4,
                                         KART_HISTORY_SEARCH_PREFIX | KART_HISTORY_SEARCH_FORWARD,
                                         &found, &off),
                     0);
    ck_assert_uint_eq(found, 2);
    ck_assert_int_eq(
        kart_history_search(h, SIZE_MAX, "check", 5, KART_HISTORY_SEARCH_PREFIX, &found, &off),
        -ENOENT);
    /* Any bytes, NUL included. */
    ck_assert_int_eq(kart_history_search(h, SIZE_MAX, "n\0c", 3, 0, &found, &off), 0);
    ck_assert_uint_eq(found, 4);
    ck_assert_uint_eq(off, 2);
    /* An empty pattern matches the first entry looked at. */
    ck_assert_int_eq(kart_history_search(h, 2, "", 0, 0, &found, &off), 0);
    ck_assert_uint_eq(found, 2);
    ck_assert_int_eq(kart_history_search(h, 0, NULL, 1, 0, &found, &off), -EINVAL);
    ck_assert_int_eq(kart_history_search(h, 0, "x", 1, 0, NULL, &off), -EINVAL);
    ck_assert_int_eq(kart_history_search(h, 0, "x", 1, 0x80, &found, &off), -EINVAL);
    kart_history_clear(h);
    ck_assert_int_eq(kart_history_search(h, SIZE_MAX, "", 0, 0, &found, &off), -ENOENT);
    kart_history_free(h);
}
END_TEST

/* Random adds, removes, replaces, limits and clears against a plain model:
 * the queue-in-an-array and its numbering must agree with it. */
START_TEST(random_operations_match_model)
{
    enum { N = 200 };
    char *model[N * 40];
    size_t mlen = 0, base = 1, max = SIZE_MAX;
    kart_history *h = mk(NULL);
    srand(7);
    char s[32];
    for (int step = 0; step < 20000; step++) {
        int op = rand() % 100;
        if (op < 60) {
            snprintf(s, sizeof(s), "s%d", step);
            int r = add(h, s);
            if (max == 0) {
                ck_assert_int_eq(r, 0);
                base++;
            } else {
                ck_assert_int_eq(r, 1);
                if (mlen == max) {
                    free(model[0]);
                    memmove(model, model + 1, --mlen * sizeof(*model));
                    base++;
                }
                model[mlen++] = strdup(s);
            }
        } else if (op < 75 && mlen) {
            size_t i = (size_t)rand() % mlen;
            ck_assert_int_eq(kart_history_remove(h, i), 0);
            free(model[i]);
            memmove(model + i, model + i + 1, (--mlen - i) * sizeof(*model));
        } else if (op < 85 && mlen) {
            size_t i = (size_t)rand() % mlen;
            snprintf(s, sizeof(s), "r%d", step);
            ck_assert_int_eq(kart_history_replace(h, i, s, strlen(s)), 0);
            free(model[i]);
            model[i] = strdup(s);
        } else if (op < 95) {
            max = rand() % 4 == 0 ? SIZE_MAX : (size_t)(rand() % N);
            kart_history_stifle(h, max);
            while (mlen > max) {
                free(model[0]);
                memmove(model, model + 1, --mlen * sizeof(*model));
                base++;
            }
        } else if (op == 99) {
            kart_history_clear(h);
            while (mlen)
                free(model[--mlen]);
            base = 1;
        }
        ck_assert_uint_eq(kart_history_length(h), mlen);
        ck_assert_uint_eq(kart_history_base(h), base);
        if (step % 97 == 0 || mlen < 3)
            for (size_t i = 0; i < mlen; i++)
                entry_is(h, i, model[i]);
    }
    char buf[32];
    for (size_t i = 0; i < mlen; i++) {
        ck_assert_int_eq(kart_history_get(h, base + i, buf, sizeof(buf), NULL), 0);
        ck_assert_str_eq(buf, model[i]);
        free(model[i]);
    }
    kart_history_free(h);
}
END_TEST

/* ---- files ---- */

START_TEST(write_read_round_trip)
{
    static const char *const lines[] = {
        "ls -l",
        "echo 'héllo' 日本",
        "\xff\xfe invalid utf-8",
        "\ttab start",
        " space start",
        "# comment",
        "#12abc",
        "#1",
        "#99999999999999999999999",
        "a\rb",
    };
    for (int ts = 0; ts < 2; ts++) {
        kart_history_options o = {.write_timestamps = ts};
        kart_history *h = mk(&o);
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
            ck_assert_int_eq(add(h, lines[i]), 1);
            kart_history_set_time(h, i, 1700000000 + (int64_t)i);
        }
        ck_assert_int_eq(kart_history_add(h, "nul\0inside", 10), 1);
        ck_assert_int_eq(add(h, ""), 1); /* never written */
        const char *p = path("h");
        ck_assert_int_eq(kart_history_write(h, p), 0);
        struct stat st;
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        kart_history *r = mk(NULL);
        kart_history_read_info info;
        ck_assert_int_eq(kart_history_read(r, p, &info), 0);
        size_t n = sizeof(lines) / sizeof(lines[0]);
        /* Without timestamps, an entry made of '#' and digits alone reads
         * back as a timestamp (the format's ambiguity, GNU's too); the
         * line after it is an entry whatever it looks like. */
        size_t want = ts ? n + 1 : n + 1 - 1;
        ck_assert_uint_eq(info.entries, want);
        ck_assert_uint_eq(kart_history_length(r), want);
        ck_assert_uint_eq(info.timestamps, ts ? want : 1);
        ck_assert_uint_eq(info.too_long, 0);
        if (ts) {
            for (size_t i = 0; i < n; i++) {
                entry_is(r, i, lines[i]);
                ck_assert_int_eq(kart_history_time(r, i), 1700000000 + (int64_t)i);
            }
            size_t len;
            const char *t = kart_history_text(r, n, &len);
            ck_assert_uint_eq(len, 10);
            ck_assert_mem_eq(t, "nul\0inside", 10);
            ck_assert_int_eq(kart_history_time(r, n), kart_history_time(h, n));
        } else {
            ck_assert_str_eq(joined(r), "ls -l|echo 'héllo' 日本|\xff\xfe invalid utf-8|\ttab "
                                        "start| space start|# comment|#12abc|"
                                        "#99999999999999999999999|a\rb|nul");
            ck_assert_int_eq(kart_history_time(r, 0), 0);
            ck_assert_int_eq(kart_history_time(r, 7), 1); /* "#1" stamped "#999..." */
            ck_assert_int_eq(kart_history_time(r, 8), 0);
        }
        kart_history_free(r);
        kart_history_free(h);
    }
}
END_TEST

START_TEST(file_format_exact)
{
    kart_history_options o = {.write_timestamps = true};
    kart_history *h = mk(&o);
    add(h, "one");
    add(h, "two");
    kart_history_set_time(h, 0, 1700000000);
    kart_history_set_time(h, 1, 0);
    const char *p = path("h");
    ck_assert_int_eq(kart_history_write(h, p), 0);
    file_is(p, "#1700000000\none\n#0\ntwo\n");
    kart_history_set_options(h, NULL);
    ck_assert_int_eq(kart_history_write(h, p), 0);
    file_is(p, "one\ntwo\n");
    kart_history_free(h);
    /* Every count of digits, odd and even (the digits go two at a time). */
    h = mk(&o);
    const int64_t times[] = {7, 42, 100, 1234, 99999, 1000000, KART_HISTORY_TIME_MAX};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        add(h, "x");
        kart_history_set_time(h, i, times[i]);
    }
    ck_assert_int_eq(kart_history_write(h, p), 0);
    file_is(p, "#7\nx\n#42\nx\n#100\nx\n#1234\nx\n#99999\nx\n#1000000\nx\n#8796093022207\nx\n");
    kart_history_free(h);
}
END_TEST

START_TEST(read_adds_and_limits)
{
    const char *p = path("h");
    put_str(p, "f1\nf2\nf3\nf4\n");
    kart_history *h = mk(NULL);
    add(h, "m1");
    add(h, "m2");
    ck_assert_int_eq(kart_history_read(h, p, NULL), 0);
    ck_assert_str_eq(joined(h), "m1|m2|f1|f2|f3|f4");
    kart_history_stifle(h, 3);
    ck_assert_uint_eq(kart_history_base(h), 4);
    ck_assert_int_eq(kart_history_read(h, p, NULL), 0);
    ck_assert_str_eq(joined(h), "f2|f3|f4");
    ck_assert_uint_eq(kart_history_base(h), 8);
    /* Some of the held entries stay. */
    kart_history_clear(h);
    kart_history_stifle(h, 5);
    add(h, "m1");
    add(h, "m2");
    add(h, "m3");
    ck_assert_int_eq(kart_history_read(h, p, NULL), 0);
    ck_assert_str_eq(joined(h), "m3|f1|f2|f3|f4");
    ck_assert_uint_eq(kart_history_base(h), 3);
    char buf[8];
    ck_assert_int_eq(kart_history_get(h, 7, buf, sizeof(buf), NULL), 0);
    ck_assert_str_eq(buf, "f4");
    /* The options do not filter what is read. */
    kart_history_options o = {.ignore_dups = true, .ignore_space = true};
    kart_history *d = mk(&o);
    put_str(p, "x\nx\n y\n");
    ck_assert_int_eq(kart_history_read(d, p, NULL), 0);
    ck_assert_str_eq(joined(d), "x|x| y");
    kart_history_free(d);
    kart_history_free(h);
}
END_TEST

START_TEST(read_binary_garbage)
{
    const char *p = path("h");
    /* NULs, invalid UTF-8, control bytes, lone CRs: kept as they are. */
    static const char data[] = "\x00\x01\x02\n\xff\xfe\xfd\x80\n\xc3\x28\r\x1b[A\n\x00\n\r\r\n#";
    put_file(p, data, sizeof(data) - 1);
    kart_history *h = mk(NULL);
    kart_history_read_info info;
    ck_assert_int_eq(kart_history_read(h, p, &info), 0);
    ck_assert_uint_eq(info.entries, 5);
    size_t len;
    const char *t = kart_history_text(h, 0, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(t, "\x00\x01\x02", 3);
    t = kart_history_text(h, 1, &len);
    ck_assert_uint_eq(len, 4);
    ck_assert_mem_eq(t, "\xff\xfe\xfd\x80", 4);
    t = kart_history_text(h, 2, &len);
    ck_assert_uint_eq(len, 6);
    ck_assert_mem_eq(t, "\xc3\x28\r\x1b[A", 6);
    t = kart_history_text(h, 3, &len);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(t[0], 0);
    entry_is(h, 4, "#"); /* a lone '#' is no timestamp */
    /* Random bytes: never a crash, and the same as a plain reference
     * parser (below, in fuzz/fuzz_history.c too). */
    srand(11);
    char *buf = malloc(65536);
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)rand() % 65536;
        for (size_t i = 0; i < n; i++) {
            int k = rand() % 16;
            buf[i] = k < 3   ? '\n'
                     : k < 4 ? '\r'
                     : k < 6 ? '#'
                     : k < 9 ? (char)('0' + rand() % 10)
                             : (char)rand();
        }
        put_file(p, buf, n);
        kart_history *r = mk(NULL);
        ck_assert_int_eq(kart_history_read(r, p, &info), 0);
        /* Reference: split at '\n', drop trailing CRs, skip empty lines,
         * '#digits' lines stamp the next line. */
        size_t i = 0, k = 0, bad = 0; /* one assertion a round: each costs a write */
        bool pending = false;
        while (i < n) {
            char *nl = memchr(buf + i, '\n', n - i);
            size_t e = nl ? (size_t)(nl - buf) : n, l = e - i;
            while (l && buf[i + l - 1] == '\r')
                l--;
            bool is_ts = l >= 2 && buf[i] == '#';
            for (size_t j = 1; is_ts && j < l; j++)
                is_ts = buf[i + j] >= '0' && buf[i + j] <= '9';
            if (l && !pending && is_ts) {
                pending = true;
            } else if (l) {
                size_t got;
                const char *g = kart_history_text(r, k++, &got);
                bad += !g || got != l || memcmp(g, buf + i, l) != 0;
                pending = false;
            }
            i = e + 1;
        }
        ck_assert_msg(bad == 0 && kart_history_length(r) == k, "round %d: %zu entries differ",
                      round, bad);
        kart_history_free(r);
    }
    free(buf);
    kart_history_free(h);
}
END_TEST

START_TEST(read_crlf_and_no_final_newline)
{
    const char *p = path("h");
    put_str(p, "#1700000000\r\none\r\ntwo\r\r\n\r\nthree");
    kart_history *h = mk(NULL);
    kart_history_read_info info;
    ck_assert_int_eq(kart_history_read(h, p, &info), 0);
    ck_assert_str_eq(joined(h), "one|two|three");
    ck_assert_int_eq(kart_history_time(h, 0), 1700000000);
    ck_assert_int_eq(kart_history_time(h, 1), 0);
    ck_assert_uint_eq(info.timestamps, 1);
    /* A timestamp past the maximum reads as the maximum. */
    put_str(p, "#99999999999999999999999\nfar\n");
    kart_history *f = mk(NULL);
    ck_assert_int_eq(kart_history_read(f, p, NULL), 0);
    ck_assert_int_eq(kart_history_time(f, 0), KART_HISTORY_TIME_MAX);
    entry_is(f, 0, "far");
    kart_history_free(f);
    /* A timestamp with nothing after it, and an empty file. */
    put_str(p, "one\n#1700000000\n");
    ck_assert_int_eq(kart_history_read(h, p, &info), 0);
    ck_assert_uint_eq(info.entries, 1);
    put_str(p, "");
    ck_assert_int_eq(kart_history_read(h, p, &info), 0);
    ck_assert_uint_eq(info.entries, 0);
    ck_assert_str_eq(joined(h), "one|two|three|one");
    kart_history_free(h);
}
END_TEST

/* 10 million lines: read in one streaming pass, only the newest 1,000
 * kept, and the memory used bounded by them, not by the file. */
START_TEST(read_ten_million_lines)
{
    const char *p = path("big");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    enum { LINES = 10000000, CHUNK = 1 << 16 };
    static char buf[CHUNK + 64];
    size_t used = 0;
    for (int i = 0; i < LINES; i++) {
        if (i % 1000 == 0)
            used += (size_t)sprintf(buf + used, "#%d\n", 1600000000 + i);
        used += (size_t)sprintf(buf + used, "cmd %d\n", i);
        if (used >= CHUNK) {
            ck_assert_int_eq(write(fd, buf, used), (ssize_t)used);
            used = 0;
        }
    }
    ck_assert_int_eq(write(fd, buf, used), (ssize_t)used);
    close(fd);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    kart_history *h = mk(NULL);
    kart_history_stifle(h, 1000);
    kart_history_read_info info;
    ck_assert_int_eq(kart_history_read(h, p, &info), 0);
    getrusage(RUSAGE_SELF, &after);
    ck_assert_uint_eq(info.entries, LINES);
    ck_assert_uint_eq(info.timestamps, LINES / 1000);
    ck_assert_uint_eq(kart_history_length(h), 1000);
    ck_assert_uint_eq(kart_history_base(h), LINES - 1000 + 1);
    entry_is(h, 0, "cmd 9999000");
    entry_is(h, 999, "cmd 9999999");
    ck_assert_int_eq(kart_history_time(h, 0), 1600000000 + 9999000);
    ck_assert_int_eq(kart_history_time(h, 1), 0);
#ifndef KT_ASAN /* ASan's quarantine holds freed blocks */
    long grew_kb = after.ru_maxrss - before.ru_maxrss;
    ck_assert_msg(grew_kb < 16 * 1024, "reading a 1,000-entry limited history grew by %ld KiB",
                  grew_kb);
    printf("10 million lines, limit 1,000: the process grew by %ld KiB\n", grew_kb);
#endif
    kart_history_free(h);
}
END_TEST

START_TEST(read_long_lines)
{
    const char *p = path("h");
    size_t max = KART_HISTORY_MAX_LEN;
    size_t cap = 7 * max;
    char *buf = malloc(cap);
    size_t n = 0;
    n += (size_t)sprintf(buf + n, "short 1\n");
    memset(buf + n, 'a', max); /* exactly the maximum: kept */
    n += max;
    buf[n++] = '\n';
    memset(buf + n, 'b', max); /* the maximum and a CR: kept */
    n += max;
    buf[n++] = '\r';
    buf[n++] = '\n';
    n += (size_t)sprintf(buf + n, "#1700000000\n");
    memset(buf + n, 'c', max + 1); /* one over: skipped, with its timestamp */
    n += max + 1;
    buf[n++] = '\n';
    n += (size_t)sprintf(buf + n, "short 2\n");
    memset(buf + n, 'd', 3 * max); /* far over */
    n += 3 * max;
    buf[n++] = '\n';
    n += (size_t)sprintf(buf + n, "short 3");
    put_file(p, buf, n);
    kart_history *h = mk(NULL);
    kart_history_read_info info;
    ck_assert_int_eq(kart_history_read(h, p, &info), 0);
    ck_assert_uint_eq(info.entries, 5);
    ck_assert_uint_eq(info.too_long, 2);
    ck_assert_uint_eq(info.timestamps, 0);
    entry_is(h, 0, "short 1");
    size_t len;
    const char *t = kart_history_text(h, 1, &len);
    ck_assert_uint_eq(len, max);
    ck_assert(t[0] == 'a' && t[max - 1] == 'a' && t[max] == 0);
    t = kart_history_text(h, 2, &len);
    ck_assert_uint_eq(len, max);
    ck_assert(t[0] == 'b' && t[max - 1] == 'b');
    entry_is(h, 3, "short 2");
    ck_assert_int_eq(kart_history_time(h, 3), 0);
    entry_is(h, 4, "short 3");
    /* A file that is one long line, no newline at all. */
    memset(buf, 'x', 2 * max);
    put_file(p, buf, 2 * max);
    ck_assert_int_eq(kart_history_read(h, p, &info), 0);
    ck_assert_uint_eq(info.entries, 0);
    ck_assert_uint_eq(info.too_long, 1);
    /* The long entries write and read back. */
    kart_history *r = mk(NULL);
    kart_history_stifle(h, 3);
    ck_assert_int_eq(kart_history_write(h, path("w")), 0);
    ck_assert_int_eq(kart_history_read(r, path("w"), &info), 0);
    ck_assert_uint_eq(info.entries, 3);
    t = kart_history_text(r, 0, &len);
    ck_assert_uint_eq(len, max);
    kart_history_free(r);
    free(buf);
    kart_history_free(h);
}
END_TEST

/* The bulk substring search over entries read from a file (one pass over
 * a run of them) against a plain search entry by entry, with patterns of
 * 1 to 4 random bytes and of up to 71 taken from an entry (longer than
 * the scan's 32 places), entries of 6 bytes on average, of 40 (odd
 * rounds) and of 120 (every fourth), matches
 * that would cross two entries, timestamp lines between them, removed and
 * replaced entries in the middle of runs, and entries added after; and
 * the repeated search of the line_history bench (from one entry before
 * each match back to the oldest), whose every step must be the plain
 * search's; with each of the three backward scans. */
/* The entry kart_history_search should find: a plain compare at every
 * place of every entry from index on; SIZE_MAX when none matches. */
static size_t plain_search(kart_history *h, size_t index, const char *pat, size_t m, unsigned flags,
                           size_t *at)
{
    size_t len = kart_history_length(h);
    bool fwd = flags & KART_HISTORY_SEARCH_FORWARD;
    size_t start = !fwd && index >= len ? len - 1 : index;
    for (size_t i = start; i < len; fwd ? i++ : i--) {
        size_t l;
        const char *t = kart_history_text(h, i, &l);
        bool hit = false;
        for (size_t o = 0; o + m <= l && !(hit && (fwd || (flags & 1))); o++) {
            if ((flags & KART_HISTORY_SEARCH_PREFIX) && o > 0)
                break;
            if (memcmp(t + o, pat, m) == 0) {
                hit = true;
                *at = o;
            }
        }
        if (hit)
            return i;
        if (!fwd && i == 0)
            break;
    }
    return SIZE_MAX;
}

START_TEST(search_matches_naive)
{
    static const char alpha[] = "ab \0#1\r";
    static const char palpha[] = "ab \0\n#1";
    srand(5);
    for (int round = 0; round < 21; round++) {
        /* Each backward scan in turn: AVX2 where the CPU has it (else
         * SSE2), SSE2, the portable one. */
        kart__hist_search_scan = round % 3;
        size_t n = 20000 + (size_t)(rand() % 40000);
        char *buf = malloc(n);
        for (size_t i = 0; i < n; i++)
            buf[i] = rand() % (round % 4 == 3 ? 120
                               : round % 2    ? 40
                                              : 6) ==
                             0
                         ? '\n'
                         : alpha[rand() % 7];
        const char *p = path("h");
        put_file(p, buf, n);
        free(buf);
        kart_history *h = mk(NULL);
        ck_assert_int_eq(kart_history_read(h, p, NULL), 0);
        for (int k = 0; k < 50 && kart_history_length(h) > 2; k++) {
            size_t i = (size_t)rand() % kart_history_length(h);
            if (k % 3 == 0)
                kart_history_remove(h, i);
            else if (k % 3 == 1)
                kart_history_replace(h, i, "ab ab", 5);
            else
                kart_history_add(h, "b a\0b", 5);
        }
        size_t len = kart_history_length(h);
        int bad = 0;
        for (int q = 0; q < 300; q++) {
            char pat[72];
            size_t m = 1 + (size_t)(rand() % 4);
            for (size_t i = 0; i < m; i++)
                pat[i] = palpha[rand() % 7];
            if (q % 2) {
                /* A longer one taken from an entry, which occurs: the
                 * 16-places-at-a-time scan with its compare of the rest. */
                size_t l;
                const char *t = kart_history_text(h, (size_t)rand() % len, &l);
                if (l >= 2) {
                    size_t o = (size_t)rand() % (l - 1);
                    m = 2 + (size_t)rand() % (l - o - 1 < 70 ? l - o - 1 : 70);
                    memcpy(pat, t + o, m);
                }
            }
            unsigned flags = (unsigned)(rand() % 4);
            size_t index = rand() % 8 == 0 ? SIZE_MAX : (size_t)rand() % (len + 1);
            size_t want_at = 0, want = plain_search(h, index, pat, m, flags, &want_at);
            size_t found = SIZE_MAX, at = SIZE_MAX;
            int r = kart_history_search(h, index, pat, m, flags, &found, &at);
            if (want == SIZE_MAX)
                bad += r != -ENOENT;
            else
                bad += r != 0 || found != want || at != want_at;
            /* Repeated back from one entry before each match, to the
             * oldest (C-r again and again). */
            if (q % 10 == 0 && !(flags & KART_HISTORY_SEARCH_FORWARD)) {
                size_t from = SIZE_MAX;
                for (;;) {
                    want = plain_search(h, from, pat, m, 0, &want_at);
                    r = kart_history_search(h, from, pat, m, 0, &found, &at);
                    if (want == SIZE_MAX) {
                        bad += r != -ENOENT;
                        break;
                    }
                    if (r != 0 || found != want || at != want_at) {
                        bad++;
                        break;
                    }
                    if (found == 0)
                        break;
                    from = found - 1;
                }
            }
        }
        ck_assert_msg(bad == 0, "round %d (scan %d): %d searches differ", round,
                      kart__hist_search_scan, bad);
        kart_history_free(h);
    }
    kart__hist_search_scan = 0;
}
END_TEST

START_TEST(bad_paths)
{
    kart_history *h = mk(NULL);
    add(h, "x");
    ck_assert_int_eq(kart_history_read(h, path("missing"), NULL), -ENOENT);
    ck_assert_int_eq(kart_history_truncate_file(path("missing"), 1), -ENOENT);
    ck_assert_int_eq(kart_history_read(h, dir, NULL), -EISDIR);
    ck_assert_int_eq(kart_history_write(h, dir), -EISDIR);
    ck_assert_int_eq(kart_history_append(h, dir, 1), -EISDIR);
    ck_assert_int_eq(kart_history_truncate_file(dir, 1), -EISDIR);
    ck_assert_int_eq(kart_history_write(h, path("no/such/dir")), -ENOENT);
    /* A device is written to, never replaced (as root, a rename would put
     * a regular file in /dev). */
    struct stat st;
    ck_assert_int_eq(kart_history_write(h, "/dev/full"), -ENOSPC);
    ck_assert_int_eq(kart_history_write(h, "/dev/null"), 0);
    ck_assert_int_eq(kart_history_truncate_file("/dev/null", 0), -EINVAL);
    ck_assert_int_eq(stat("/dev/full", &st), 0);
    ck_assert(S_ISCHR(st.st_mode));
    ck_assert_int_eq(stat("/dev/null", &st), 0);
    ck_assert(S_ISCHR(st.st_mode));
    ck_assert_int_eq(kart_history_read(h, "/dev/null", NULL), 0);
    ck_assert_int_eq(dir_files(), 0);
    /* "~/" is $HOME's. */
    setenv("HOME", dir, 1);
    ck_assert_int_eq(kart_history_write(h, "~/hist"), 0);
    file_is(path("hist"), "x\n");
    ck_assert_int_eq(kart_history_write(h, NULL), 0);
    file_is(path(".history"), "x\n");
    ck_assert_int_eq(kart_history_read(h, "~/hist", NULL), 0);
    ck_assert_str_eq(joined(h), "x|x");
    ck_assert_uint_eq(kart_history_length(h), 2);
    kart_history_free(h);
}
END_TEST

START_TEST(unreadable_file)
{
    const char *p = path("h");
    put_str(p, "secret\n");
    chmod(p, 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        /* root reads anything: be nobody. */
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(2);
        kart_history *h;
        if (kart_history_create(&h, NULL) != 0)
            _exit(3);
        int r = kart_history_read(h, p, NULL);
        int t = kart_history_truncate_file(p, 0);
        _exit(r == -EACCES && t == -EACCES && kart_history_length(h) == 0 ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

static kart_history *big_history(size_t n)
{
    kart_history *h = mk(&(kart_history_options){.write_timestamps = true});
    char s[128];
    for (size_t i = 0; i < n; i++) {
        snprintf(s, sizeof(s), "entry %zu %0*d", i, (int)(i % 100), 0);
        ck_assert_int_eq(add(h, s), 1);
    }
    return h;
}

/* A full disk on every write of a replacement: the old file stays whole,
 * and no temporary file is left behind. */
START_TEST(full_disk_keeps_old_file)
{
    const char *p = path("h");
    put_str(p, "old 1\nold 2\n");
    kart_history *h = big_history(20000); /* over 1 MiB: several writes */
    kart__fault_reset();
    ck_assert_int_eq(kart_history_write(h, path("count")), 0);
    uint64_t writes = kart__fault_count(KART__SYS_write);
    ck_assert_uint_gt(writes, 2);
    unlink(path("count"));
    for (unsigned nth = 1; nth <= writes; nth++) {
        kart__fault_reset();
        kart__fault_fail(KART__SYS_write, nth, 1, ENOSPC);
        ck_assert_int_eq(kart_history_write(h, p), -ENOSPC);
        file_is(p, "old 1\nold 2\n");
        ck_assert_int_eq(dir_files(), 1);
    }
    kart__fault_reset();
    /* A short write is not an error: the rest follows. */
    kart__fault_short(KART__SYS_write, 1, KART__FAULT_ALWAYS, 1000);
    ck_assert_int_eq(kart_history_write(h, p), 0);
    kart__fault_reset();
    kart_history *r = mk(NULL);
    ck_assert_int_eq(kart_history_read(r, p, NULL), 0);
    ck_assert_uint_eq(kart_history_length(r), 20000);
    /* Truncation through a full disk, too. */
    kart__fault_fail(KART__SYS_write, 1, KART__FAULT_ALWAYS, ENOSPC);
    ck_assert_int_eq(kart_history_truncate_file(p, 10), -ENOSPC);
    kart__fault_reset();
    ck_assert_int_eq(dir_files(), 1);
    kart_history_clear(r);
    ck_assert_int_eq(kart_history_read(r, p, NULL), 0);
    ck_assert_uint_eq(kart_history_length(r), 20000);
    /* A real full device: appends to /dev/full. */
    ck_assert_int_eq(kart_history_append(h, "/dev/full", 5), -ENOSPC);
    kart_history_free(r);
    kart_history_free(h);
}
END_TEST

START_TEST(failed_read_changes_nothing)
{
    const char *p = path("h");
    kart_history *big = big_history(60000); /* over 1 MiB: several reads */
    ck_assert_int_eq(kart_history_write(big, p), 0);
    kart_history_free(big);
    kart_history *h = mk(NULL);
    kart_history_stifle(h, 10);
    add(h, "mine");
    kart__fault_reset();
    kart__fault_fail(KART__SYS_read, 2, 1, EIO);
    ck_assert_int_eq(kart_history_read(h, p, NULL), -EIO);
    kart__fault_reset();
    ck_assert_str_eq(joined(h), "mine");
    ck_assert_uint_eq(kart_history_base(h), 1);
#ifdef MADV_HUGEPAGE
    /* Out of memory for the block of a whole file (unlimited: one block of
     * the file's size, over 2 MiB, mapped). */
    kart_history *u = mk(NULL);
    add(u, "mine");
    kart__fault_fail(KART__SYS_mmap, 1, KART__FAULT_ALWAYS, ENOMEM);
    ck_assert_int_eq(kart_history_read(u, p, NULL), -ENOMEM);
    kart__fault_reset();
    ck_assert_str_eq(joined(u), "mine");
    ck_assert_int_eq(kart_history_read(u, p, NULL), 0);
    ck_assert_uint_eq(kart_history_length(u), 60001);
    kart_history_free(u);
#endif
    ck_assert_int_eq(kart_history_read(h, p, NULL), 0);
    entry_is(h, 9,
             "entry 59999 " /* then 99 zeros */
             "000000000000000000000000000000000000000000000000000000000000000000000000000000"
             "000000000000000000000");
    kart_history_free(h);
}
END_TEST

START_TEST(write_mode_and_symlink)
{
    kart_history *h = mk(NULL);
    add(h, "new");
    const char *p = path("h");
    put_str(p, "old\n");
    chmod(p, 0644);
    mode_t old = umask(0);
    ck_assert_int_eq(kart_history_write(h, p), 0);
    umask(old);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    file_is(p, "new\n");
    /* Through a symbolic link: the target is replaced, the link stays. */
    const char *link = path("link");
    ck_assert_int_eq(symlink(p, link), 0);
    add(h, "newer");
    ck_assert_int_eq(kart_history_write(h, link), 0);
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    file_is(p, "new\nnewer\n");
    ck_assert_int_eq(kart_history_truncate_file(link, 1), 0);
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    file_is(p, "newer\n");
    ck_assert_int_eq(dir_files(), 2);
    kart_history_free(h);
}
END_TEST

START_TEST(append_and_truncate)
{
    kart_history *h = mk(NULL);
    add(h, "a");
    add(h, "b");
    add(h, "");
    add(h, "c");
    const char *p = path("h");
    ck_assert_int_eq(kart_history_append(h, p, 2), 0); /* "" and c */
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    file_is(p, "c\n");
    ck_assert_int_eq(kart_history_append(h, p, 100), 0);
    file_is(p, "c\na\nb\nc\n");
    ck_assert_int_eq(kart_history_append(h, p, 0), 0);
    file_is(p, "c\na\nb\nc\n");
    kart_history_options o = {.write_timestamps = true};
    kart_history_set_options(h, &o);
    kart_history_set_time(h, 3, 1700000003);
    ck_assert_int_eq(kart_history_append(h, p, 1), 0);
    file_is(p, "c\na\nb\nc\n#1700000003\nc\n");
    /* A file without a final newline gets one first. */
    put_str(p, "x");
    ck_assert_int_eq(kart_history_append(h, p, 1), 0);
    file_is(p, "x\n#1700000003\nc\n");
    kart_history_set_options(h, NULL);
    /* Truncation counts entries, keeps their timestamps, and copies the
     * bytes as they are. */
    put_str(p, "#1\r\none\r\n\r\n#2\ntwo\n" /* too long: */ "#3\nthree\nfour");
    ck_assert_int_eq(kart_history_truncate_file(p, 3), 0);
    file_is(p, "#2\ntwo\n#3\nthree\nfour");
    ino_t ino = (stat(p, &st), st.st_ino);
    ck_assert_int_eq(kart_history_truncate_file(p, 3), 0); /* already short: untouched */
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_uint_eq(st.st_ino, ino);
    ck_assert_int_eq(kart_history_truncate_file(p, 1), 0);
    file_is(p, "four");
    ck_assert_int_eq(kart_history_truncate_file(p, 0), 0);
    file_is(p, "");
    ck_assert_int_eq(dir_files(), 1);
    kart_history_free(h);
}
END_TEST

/* docs/history.md's session pattern: count the adds that returned 1 and
 * append that many at exit. An add the options ignore leaves an older
 * entry newest (here, one read from the file itself): appending "the
 * newest 1" then would write it twice, as GNU's append_history(1) does;
 * appending the count writes only this session's lines. */
START_TEST(append_this_session)
{
    const char *p = path("h");
    put_str(p, "make check\n");
    kart_history_options o = {.ignore_dups = true, .ignore_space = true};
    kart_history *h = mk(&o);
    ck_assert_int_eq(kart_history_read(h, p, NULL), 0);
    size_t added = 0;
    added += kart_history_add(h, "make check", 10) == 1; /* a duplicate: ignored */
    added += kart_history_add(h, " secret", 7) == 1;     /* a leading space: ignored */
    ck_assert_uint_eq(added, 0);
    ck_assert_int_eq(kart_history_append(h, p, added), 0);
    file_is(p, "make check\n");
    added += kart_history_add(h, "ls", 2) == 1;
    ck_assert_int_eq(kart_history_append(h, p, added), 0);
    file_is(p, "make check\nls\n");
    /* The pitfall: after an ignored add, the newest entry is an old one. */
    ck_assert_int_eq(kart_history_add(h, "ls", 2), 0);
    ck_assert_int_eq(kart_history_append(h, p, 1), 0);
    file_is(p, "make check\nls\nls\n");
    kart_history_free(h);
}
END_TEST

/* One of two appenders: n entries, one append call each, with timestamps
 * (so that an entry is two lines) and sizes up to 8 KiB. */
static void appender(const char *p, char tag, int n)
{
    kart_history *h;
    kart_history_options o = {.write_timestamps = true};
    if (kart_history_create(&h, &o) != 0)
        _exit(2);
    kart_history_stifle(h, 1);
    static char s[9000];
    for (int i = 0; i < n; i++) {
        int pad = (i * 7919) % 8192;
        int k = snprintf(s, sizeof(s), "%c %d ", tag, i);
        memset(s + k, tag, (size_t)pad);
        if (kart_history_add(h, s, (size_t)(k + pad)) != 1 ||
            kart_history_set_time(h, 0, 1000000 + i) != 0 || kart_history_append(h, p, 1) != 0)
            _exit(3);
    }
    kart_history_free(h);
    _exit(0);
}

/* Checks entry text s (len) of appender tag: its number is next, its
 * padding whole, its timestamp its own. */
static void check_appended(const char *s, size_t len, int64_t t, char tag, int *next)
{
    ck_assert_int_eq(s[0], tag);
    int i = atoi(s + 2);
    ck_assert_int_eq(i, *next);
    *next = i + 1;
    int pad = (i * 7919) % 8192;
    const char *q = strchr(s + 2, ' ') + 1;
    int bad = 0; /* one assertion, not one per byte: each costs a write */
    for (int k = 0; k < pad; k++)
        bad += q[k] != tag;
    ck_assert(len == (size_t)(q - s) + (size_t)pad && bad == 0 && t == 1000000 + i);
}

START_TEST(concurrent_appends_never_interleave)
{
    const char *p = path("h");
    enum { N = 10000 };
    pid_t a = kt_fork();
    if (a == 0)
        appender(p, 'A', N);
    pid_t b = kt_fork();
    if (b == 0)
        appender(p, 'B', N);
    int st;
    ck_assert_int_eq(waitpid(a, &st, 0), a);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(waitpid(b, &st, 0), b);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    kart_history *h = mk(NULL);
    kart_history_read_info info;
    ck_assert_int_eq(kart_history_read(h, p, &info), 0);
    ck_assert_uint_eq(info.entries, 2 * N);
    ck_assert_uint_eq(info.timestamps, 2 * N);
    int next[2] = {0, 0}, switches = 0;
    char last = 0;
    for (size_t i = 0; i < 2 * N; i++) {
        size_t len;
        const char *s = kart_history_text(h, i, &len);
        check_appended(s, len, kart_history_time(h, i), s[0], &next[s[0] == 'B']);
        switches += last && s[0] != last;
        last = s[0];
    }
    ck_assert_int_eq(next[0], N);
    ck_assert_int_eq(next[1], N);
    printf("concurrent appends: %d switches between the two writers\n", switches);
    kart_history_free(h);
}
END_TEST

/* Appends racing truncations: the rename under an appender never loses
 * an append, so the file always ends with the newest ones, unbroken. */
START_TEST(appends_survive_concurrent_truncation)
{
    const char *p = path("h");
    enum { N = 3000 };
    pid_t a = kt_fork();
    if (a == 0)
        appender(p, 'A', N);
    pid_t t = kt_fork();
    if (t == 0) {
        for (int i = 0; i < 300; i++) {
            int r = kart_history_truncate_file(p, 50);
            if (r != 0 && r != -ENOENT)
                _exit(4);
            usleep(500);
        }
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(a, &st, 0), a);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(waitpid(t, &st, 0), t);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    kart_history *h = mk(NULL);
    ck_assert_int_eq(kart_history_read(h, p, NULL), 0);
    size_t n = kart_history_length(h);
    ck_assert_uint_gt(n, 0);
    int next = atoi(kart_history_text(h, 0, NULL) + 2);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = kart_history_text(h, i, &len);
        check_appended(s, len, kart_history_time(h, i), 'A', &next);
    }
    ck_assert_int_eq(next, N);
    ck_assert_int_eq(dir_files(), 1);
    kart_history_free(h);
}
END_TEST

/* ---- expansion ---- */

static kart_history *expansion_history(void)
{
    kart_history *h = mk(NULL);
    add(h, "echo a b c");
    add(h, "ls -l /usr/lib/x.tar.gz");
    return h;
}

typedef struct xcase {
    const char *line, *want; /* want NULL: an error */
    int err;
    const char *message;
} xcase;

/* In order: the :s and !? state carries over. Results from bash 5.2. */
static const xcase xcases[] = {
    {"!!", "ls -l /usr/lib/x.tar.gz", 0, NULL},
    {"!!:2", "/usr/lib/x.tar.gz", 0, NULL},
    {"!$", "/usr/lib/x.tar.gz", 0, NULL},
    {"!^", "-l", 0, NULL},
    {"!*", "-l /usr/lib/x.tar.gz", 0, NULL},
    {"!ech", "echo a b c", 0, NULL},
    {"!?x.t?%", "/usr/lib/x.tar.gz", 0, NULL},
    {"!-2:1-$", "a b c", 0, NULL},
    {"!!:h", "ls -l /usr/lib", 0, NULL},
    {"!!:$:t", "x.tar.gz", 0, NULL},
    {"!!:$:r", "/usr/lib/x.tar", 0, NULL},
    {"!!:$:e", ".gz", 0, NULL},
    {"!!:s/l/L/", "Ls -l /usr/lib/x.tar.gz", 0, NULL},
    {"!!:gs/l/L/", "Ls -L /usr/Lib/x.tar.gz", 0, NULL},
    {"!!:0-", "ls -l", 0, NULL},
    {"!!:2-", "", 0, NULL},
    {"!!:q", "'ls -l /usr/lib/x.tar.gz'", 0, NULL},
    {"!!:x", "'ls' '-l' '/usr/lib/x.tar.gz'", 0, NULL},
    {"!nope", NULL, KART_EHISTEVENT, "!nope: event not found"},
    {"!!:9", NULL, KART_EHISTWORD, ":9: bad word specifier"},
    {"!!:z", NULL, KART_EHISTMODIFIER, "z: unrecognized history modifier"},
    {"!1", "echo a b c", 0, NULL},
    {"!3", NULL, KART_EHISTEVENT, "!3: event not found"},
    {"!0", NULL, KART_EHISTEVENT, "!0: event not found"},
    {"!-0", NULL, KART_EHISTEVENT, "!-0: event not found"},
    {"!-1", "ls -l /usr/lib/x.tar.gz", 0, NULL},
    {"^ls^LS^", "LS -l /usr/lib/x.tar.gz", 0, NULL},
    {"^zz^yy", NULL, KART_EHISTSUBST, ":s^zz^yy: substitution failed"},
    {"echo !!:s/zz/y/", NULL, KART_EHISTSUBST, ":s/zz/y/: substitution failed"},
    {"echo !!:&", NULL, KART_EHISTSUBST, ":&: substitution failed"},
    {"echo '!!' \"!!\"", "echo '!!' \"ls -l /usr/lib/x.tar.gz\"", 0, NULL},
    {"echo \"!ec\"", "echo \"echo a b c\"", 0, NULL},
    {"a # !!", "a # !!", 0, NULL},
    {"a#!!", "a#ls -l /usr/lib/x.tar.gz", 0, NULL},
    {"\\!!", "\\!!", 0, NULL},
    {"!!$", "/usr/lib/x.tar.gz", 0, NULL},
    {"echo !;", NULL, KART_EHISTEVENT, "!: event not found"},
    {"echo !#", "echo echo ", 0, NULL},
    {"echo x !#:0", "echo x echo", 0, NULL},
    {"x != y ! z!", "x != y ! z!", 0, NULL},
    {"!!:s/x/[&]/", "ls -l /usr/lib/[x].tar.gz", 0, NULL},
    {"!!:s/l/\\&/", "&s -l /usr/lib/x.tar.gz", 0, NULL},
    {"!?tar", "ls -l /usr/lib/x.tar.gz", 0, NULL},
    {"!?", "ls -l /usr/lib/x.tar.gz", 0, NULL},
    {"!ls:1 !2:0 !-2", "-l ls echo a b c", 0, NULL},
    {"!! && !!", "ls -l /usr/lib/x.tar.gz && ls -l /usr/lib/x.tar.gz", 0, NULL},
    {"!!:1-2:s/-l/-a/", "-a /usr/lib/x.tar.gz", 0, NULL},
    {"!!:^-$", "-l /usr/lib/x.tar.gz", 0, NULL},
    {"!!:1*", "-l /usr/lib/x.tar.gz", 0, NULL},
    {"!!:2^", NULL, KART_EHISTWORD, ":2^: bad word specifier"},
    {"!!:s/l/L", "Ls -l /usr/lib/x.tar.gz", 0, NULL},
    {"!!:&", "Ls -l /usr/lib/x.tar.gz", 0, NULL},
    {"!!:g&", "Ls -L /usr/Lib/x.tar.gz", 0, NULL},
    {"!!:s", "ls -l /usr/lib/x.tar.gz", 0, NULL},
    {"$'!!'", "$'!!'", 0, NULL},
    {"echo '!!", "echo '!!", 0, NULL},
    {"!e:1:s/a/X/:p", "X", 0, NULL},
    {"echo $! ${!x} [!a] ${!y [!b", NULL, KART_EHISTEVENT, "!y: event not found"},
    {"echo $! ${!x} [!a]", "echo $! ${!x} [!a]", 0, NULL},
};

START_TEST(expansion_cases)
{
    kart_history *h = expansion_history();
    for (size_t i = 0; i < sizeof(xcases) / sizeof(xcases[0]); i++) {
        const xcase *c = &xcases[i];
        kart_history_expansion x;
        int r = kart_history_expand(h, c->line, strlen(c->line), &x);
        if (c->want) {
            ck_assert_msg(r == 0, "[%s]: %s (%s)", c->line, kart_strerror(r), x.message);
            ck_assert_msg(strcmp(x.text, c->want) == 0 && x.len == strlen(c->want),
                          "[%s]: got [%s] want [%s]", c->line, x.text, c->want);
            ck_assert_int_eq(x.expanded, strcmp(c->line, c->want) != 0 || strchr(c->line, ':'));
        } else {
            ck_assert_msg(r == c->err, "[%s]: got %d (%s) want %s", c->line, r, x.text,
                          kart_err_name(c->err));
            ck_assert_ptr_null(x.text);
            ck_assert_msg(strcmp(x.message, c->message) == 0, "[%s]: message [%s] want [%s]",
                          c->line, x.message, c->message);
        }
        free(x.text);
    }
    kart_history_free(h);
}
END_TEST

START_TEST(expansion_flags_and_errors)
{
    kart_history *h = expansion_history();
    kart_history_expansion x;
    ck_assert_int_eq(kart_history_expand(h, "plain", 5, &x), 0);
    ck_assert_str_eq(x.text, "plain");
    ck_assert(!x.expanded && !x.print_only);
    free(x.text);
    ck_assert_int_eq(kart_history_expand(h, "!!:p", 4, &x), 0);
    ck_assert(x.expanded && x.print_only);
    ck_assert_str_eq(x.text, "ls -l /usr/lib/x.tar.gz");
    free(x.text);
    ck_assert_int_eq(kart_history_expand(h, "ok !nope", 8, &x), KART_EHISTEVENT);
    ck_assert_uint_eq(x.error_offset, 3);
    ck_assert_int_eq(kart_history_expand(h, "^zz^yy", 6, &x), KART_EHISTSUBST);
    ck_assert_uint_eq(x.error_offset, 0);
    ck_assert_int_eq(kart_history_expand(h, NULL, 1, &x), -EINVAL);
    ck_assert_int_eq(kart_history_expand(h, "x", 1, NULL), -EINVAL);
    ck_assert_int_eq(kart_history_expand(h, NULL, 0, &x), 0);
    ck_assert_str_eq(x.text, "");
    free(x.text);
    /* The bytes after a NUL are still the line's. */
    ck_assert_int_eq(kart_history_expand(h, "a\0!!", 4, &x), 0);
    ck_assert_uint_eq(x.len, 2 + strlen("ls -l /usr/lib/x.tar.gz"));
    free(x.text);
    /* A new history: nothing to substitute yet, nothing to find. */
    kart_history *e = mk(NULL);
    ck_assert_int_eq(kart_history_expand(e, "!!", 2, &x), KART_EHISTEVENT);
    ck_assert_str_eq(x.message, "!!: event not found");
    ck_assert_int_eq(kart_history_expand(e, "!?", 2, &x), KART_EHISTEVENT);
    add(e, "word");
    ck_assert_int_eq(kart_history_expand(e, "!!:&", 4, &x), KART_EHISTSUBST);
    ck_assert_str_eq(x.message, ":&: no previous substitution");
    ck_assert_int_eq(kart_history_expand(e, "!!:$ !!:%", 9, &x), 0);
    ck_assert_str_eq(x.text, "word ");
    free(x.text);
    kart_history_free(e);
    kart_history_free(h);
}
END_TEST

/* Runs bash over the cases (`history -p`, one case a call), and compares:
 * the same text, or both an error. */
START_TEST(expansion_matches_bash)
{
    if (access("/bin/bash", X_OK) != 0) {
        KART_SKIP("expansion vs bash: no /bin/bash");
    }
    /* More cases than the table: shell words and operators. */
    static const char *const extra[] = {
        "!!:$",    "!!:0",    "!!:1", "!!:2",   "!!:3",  "!!:4",   "!!:5",
        "!!:6",    "!!:7",    "!!:8", "!!:9",   "!!:*",  "!!:%",   "!?grep?:%",
        "!ca:$:q", "!-1:2-3", "!c:x", "!!:1-$", "!!:3-", "!cat:h",
    };
    size_t nx = sizeof(xcases) / sizeof(xcases[0]), ne = sizeof(extra) / sizeof(extra[0]);
    const char *hist[] = {"echo a b c", "ls -l /usr/lib/x.tar.gz"};
    const char *hist2[] = {"echo a b c", "cat 'a b'|grep \"x y\" >out 2>&1 ;echo $(date) x"};
    for (int round = 0; round < 2; round++) {
        const char **hh = round ? hist2 : hist;
        const char *out = path("bash.out");
        const char *argv[256] = {"/bin/bash",
                                 "-c",
                                 "set -o history -H; history -c; history -s -- \"$1\"; "
                                 "history -s -- \"$2\"; shift 2; for c; do "
                                 "if history -p -- \"$c\"; then echo @ok; else echo @err; fi; "
                                 "done >\"$OUTFILE\" 2>/dev/null",
                                 "bash",
                                 hh[0],
                                 hh[1]};
        size_t na = 6;
        for (size_t i = 0; i < nx && !round; i++)
            argv[na++] = xcases[i].line;
        for (size_t i = 0; i < ne && round; i++)
            argv[na++] = extra[i];
        argv[na] = NULL;
        pid_t pid = kt_fork();
        if (pid == 0) {
            setenv("OUTFILE", out, 1);
            execv("/bin/bash", (char *const *)argv);
            _exit(127);
        }
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        char *res = get_file(out, NULL);
        kart_history *h = mk(NULL);
        add(h, hh[0]);
        add(h, hh[1]);
        char *cur = res;
        for (size_t i = 6; i < na; i++) {
            /* bash prints the expansion then @ok, or only @err. */
            char *mark = strstr(cur, "@ok\n"), *err = strstr(cur, "@err\n");
            bool ok = mark && (!err || mark < err);
            char *end = ok ? mark : err;
            ck_assert_ptr_nonnull(end);
            kart_history_expansion x;
            int r = kart_history_expand(h, argv[i], strlen(argv[i]), &x);
            if (ok) {
                ck_assert_msg(end > cur && end[-1] == '\n', "bash output for [%s]", argv[i]);
                end[-1] = 0;
                ck_assert_msg(r == 0, "[%s]: bash gives [%s], kart %s: %s", argv[i], cur,
                              kart_err_name(r), x.message);
                ck_assert_msg(strcmp(x.text, cur) == 0, "[%s]: bash gives [%s], kart [%s]", argv[i],
                              cur, x.text);
                cur = mark + 4;
            } else {
                ck_assert_msg(r < 0, "[%s]: bash fails, kart gives [%s]", argv[i], x.text);
                cur = err + 5;
            }
            free(x.text);
        }
        kart_history_free(h);
        free(res);
    }
}
END_TEST

/* ---- the real GNU readline, through Python ---- */

static char python[64];
static char py_why[512];

/* python3 with GNU readline's module: /usr/bin/python3 (Debian's, linked
 * with libreadline.so.8), else the first on PATH. */
static bool find_python(void)
{
    const char *cands[] = {"/usr/bin/python3", "python3"};
    for (size_t i = 0; i < 2; i++) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "LC_ALL=C.UTF-8 TERM=dumb %s %s probe 2>&1", cands[i], PEER);
        FILE *f = popen(cmd, "r");
        if (!f)
            continue;
        char line[200] = "";
        if (!fgets(line, sizeof(line), f))
            line[0] = 0;
        line[strcspn(line, "\n")] = 0;
        int st = pclose(f);
        if (st == 0) {
            snprintf(python, sizeof(python), "%s", cands[i]);
            printf("interop: %s, %s\n", python, line);
            return true;
        }
        size_t o = strlen(py_why);
        snprintf(py_why + o, sizeof(py_why) - o, "%s%s: %s", o ? "; " : "", cands[i],
                 WIFEXITED(st) && WEXITSTATUS(st) == 127 ? "not found" : line);
    }
    return false;
}

/* Runs the peer with args; its exit status. */
static int py(const char *a1, const char *a2, const char *a3, const char *a4)
{
    pid_t pid = kt_fork();
    if (pid == 0) {
        setenv("LC_ALL", "C.UTF-8", 1);
        setenv("TERM", "dumb", 1);
        const char *argv[] = {python, PEER, a1, a2, a3, a4, NULL};
        execvp(python, (char *const *)argv);
        _exit(127);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void hex_line(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02x", (unsigned char)s[i]);
    fputc('\n', f);
}

/* The entries the peer wrote to out (hex lines) equal h's. */
static void py_entries_are(const char *out, const kart_history *h)
{
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    static char line[1 << 20];
    size_t i = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\n") / 2, len;
        const char *t = kart_history_text(h, i, &len);
        ck_assert_msg(t != NULL, "GNU readline read more entries than kart has (%zu)", i);
        ck_assert_msg(n == len, "entry %zu: GNU %zu bytes, kart %zu", i, n, len);
        size_t k = 0;
        for (unsigned v; k < n && sscanf(line + 2 * k, "%2x", &v) == 1; k++)
            if ((unsigned char)t[k] != v)
                break;
        ck_assert_msg(k == n, "entry %zu differs at byte %zu", i, k);
        i++;
    }
    fclose(f);
    ck_assert_uint_eq(i, kart_history_length(h));
}

/* Entries GNU readline stores as kart does: no NULs, and no '#'+digit
 * lines (GNU takes "#12abc" for a timestamp in a file that has them). */
static const char *const interop_lines[] = {
    "ls -l",       "echo 'héllo' 日本 ✓", "\xff\xfe\x80 invalid",
    "\ttab start", "  two spaces",        "# comment",
    "a\rb",        "x = !! ^a^b^",        "trailing space ",
};

static kart_history *interop_history(bool ts, bool hash_digits)
{
    kart_history_options o = {.write_timestamps = ts};
    kart_history *h = mk(&o);
    for (size_t i = 0; i < sizeof(interop_lines) / sizeof(interop_lines[0]); i++)
        add(h, interop_lines[i]);
    if (hash_digits)
        add(h, "#12abc");
    static char big[100001];
    memset(big, 'z', sizeof(big) - 1);
    add(h, big);
    for (size_t i = 0; i < kart_history_length(h); i++)
        kart_history_set_time(h, i, 1700000000 + (int64_t)i * 60);
    return h;
}

START_TEST(gnu_reads_kart_files)
{
    for (int ts = 0; ts < 2; ts++) {
        kart_history *h = interop_history(ts, !ts);
        const char *p = path("kart.hist"), *out = path("py.out");
        ck_assert_int_eq(kart_history_write(h, p), 0);
        ck_assert_int_eq(py("read", p, out, NULL), 0);
        py_entries_are(out, h);
        /* And appended to. */
        ck_assert_int_eq(kart_history_append(h, p, 3), 0);
        ck_assert_int_eq(py("read", p, out, NULL), 0);
        kart_history *r = mk(NULL);
        ck_assert_int_eq(kart_history_read(r, p, NULL), 0);
        ck_assert_uint_eq(kart_history_length(r), kart_history_length(h) + 3);
        py_entries_are(out, r);
        kart_history_free(r);
        kart_history_free(h);
    }
}
END_TEST

START_TEST(kart_reads_gnu_files)
{
    kart_history *h = interop_history(false, true);
    const char *in = path("py.in"), *p = path("gnu.hist");
    FILE *f = fopen(in, "w");
    for (size_t i = 0; i < kart_history_length(h); i++) {
        size_t len;
        const char *t = kart_history_text(h, i, &len);
        hex_line(f, t, len);
    }
    fclose(f);
    ck_assert_int_eq(py("write", p, in, NULL), 0);
    kart_history *r = mk(NULL);
    ck_assert_int_eq(kart_history_read(r, p, NULL), 0);
    ck_assert_str_eq(joined(r), joined(h));
    /* append_history_file(2, ...) on top. */
    ck_assert_int_eq(py("append", p, in, "2"), 0);
    kart_history_clear(r);
    ck_assert_int_eq(kart_history_read(r, p, NULL), 0);
    ck_assert_uint_eq(kart_history_length(r), kart_history_length(h) + 2);
    entry_is(r, kart_history_length(h) + 1, kart_history_text(h, kart_history_length(h) - 1, NULL));
    kart_history_free(r);
    kart_history_free(h);
}
END_TEST

/* GNU's timestamp format: crafted by hand as GNU writes it (Python has no
 * call for history_write_timestamps), and written by GNU itself with the
 * variables set through ctypes. */
START_TEST(gnu_timestamps)
{
    const char *p = path("ts.hist"), *out = path("py.out");
    put_str(p, "#1700000000\nls -l\n#1700000060\necho 'héllo'\n#1700000120\n# comment\n");
    kart_history *h = mk(NULL);
    kart_history_read_info info;
    ck_assert_int_eq(kart_history_read(h, p, &info), 0);
    ck_assert_str_eq(joined(h), "ls -l|echo 'héllo'|# comment");
    ck_assert_uint_eq(info.timestamps, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(kart_history_time(h, i), 1700000000 + 60 * (int64_t)i);
    ck_assert_int_eq(py("read", p, out, NULL), 0);
    py_entries_are(out, h); /* the crafted file is GNU's format */
    kart_history_free(h);
    /* GNU writing timestamps itself. */
    h = interop_history(true, false);
    const char *in = path("py.in");
    FILE *f = fopen(in, "w");
    for (size_t i = 0; i < kart_history_length(h); i++) {
        size_t len;
        const char *t = kart_history_text(h, i, &len);
        fprintf(f, "%lld ", (long long)kart_history_time(h, i));
        hex_line(f, t, len);
    }
    fclose(f);
    ck_assert_int_eq(py("write-ts", p, in, NULL), 0);
    /* Byte for byte what kart writes. */
    const char *kp = path("kart.hist");
    ck_assert_int_eq(kart_history_write(h, kp), 0);
    size_t gl, kl;
    char *g = get_file(p, &gl), *k = get_file(kp, &kl);
    ck_assert_uint_eq(gl, kl);
    ck_assert_mem_eq(g, k, gl);
    free(g);
    free(k);
    kart_history *r = mk(NULL);
    ck_assert_int_eq(kart_history_read(r, p, &info), 0);
    ck_assert_uint_eq(info.timestamps, kart_history_length(h));
    for (size_t i = 0; i < kart_history_length(h); i++)
        ck_assert_int_eq(kart_history_time(r, i), kart_history_time(h, i));
    ck_assert_str_eq(joined(r), joined(h));
    kart_history_free(r);
    kart_history_free(h);
}
END_TEST

/* GNU's history_truncate_file and kart's cut the same file the same way.
 * With timestamps (GNU's history_comment_char set to '#', as bash sets it)
 * GNU drops the timestamp of the first entry it keeps, a bug of 8.2: the
 * entries must agree, and kart keeps every timestamp. */
START_TEST(truncate_like_gnu)
{
    for (int ts = 0; ts < 2; ts++) {
        kart_history *h = interop_history(ts, false);
        size_t len = kart_history_length(h);
        const char *g = path("g.hist"), *k = path("k.hist");
        for (int n = 0; n <= 12; n += 3) {
            ck_assert_int_eq(kart_history_write(h, g), 0);
            ck_assert_int_eq(kart_history_write(h, k), 0);
            char ns[8];
            snprintf(ns, sizeof(ns), "%d", n);
            ck_assert_int_eq(py(ts ? "truncate-ts" : "truncate", g, ns, NULL), 0);
            ck_assert_int_eq(kart_history_truncate_file(k, (size_t)n), 0);
            size_t gl, kl;
            char *gb = get_file(g, &gl), *kb = get_file(k, &kl);
            if (!ts)
                ck_assert_msg(gl == kl && memcmp(gb, kb, gl) == 0,
                              "truncate to %d: GNU %zu bytes, kart %zu", n, gl, kl);
            free(gb);
            free(kb);
            kart_history *rg = mk(NULL), *rk = mk(NULL);
            kart_history_read_info ig, ik;
            ck_assert_int_eq(kart_history_read(rg, g, &ig), 0);
            ck_assert_int_eq(kart_history_read(rk, k, &ik), 0);
            size_t want = (size_t)n < len ? (size_t)n : len;
            ck_assert_uint_eq(ik.entries, want);
            ck_assert_str_eq(joined(rg), joined(rk));
            for (size_t i = 0; i < want; i++) {
                entry_is(rk, i, kart_history_text(h, len - want + i, NULL));
                ck_assert_int_eq(kart_history_time(rk, i),
                                 ts ? kart_history_time(h, len - want + i) : 0);
            }
            if (ts && n > 0 && (size_t)n < len)
                ck_assert_uint_eq(ig.timestamps, want - 1);
            kart_history_free(rg);
            kart_history_free(rk);
        }
        kart_history_free(h);
    }
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("list");
    tcase_add_test(tc, python_history_updates);
    tcase_add_test(tc, get_needs_room);
    tcase_add_test(tc, bad_lines_refused);
    tcase_add_test(tc, timestamps);
    tcase_add_test(tc, stifle_keeps_newest);
    tcase_add_test(tc, histcontrol_options);
    tcase_add_test(tc, accessor_and_search);
    tcase_add_test(tc, random_operations_match_model);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, write_read_round_trip);
    tcase_add_test(tc, file_format_exact);
    tcase_add_test(tc, read_adds_and_limits);
    tcase_add_test(tc, read_binary_garbage);
    tcase_add_test(tc, read_crlf_and_no_final_newline);
    tcase_add_test(tc, read_ten_million_lines);
    tcase_add_test(tc, read_long_lines);
    tcase_add_test(tc, search_matches_naive);
    tcase_add_test(tc, bad_paths);
    tcase_add_test(tc, unreadable_file);
    tcase_add_test(tc, full_disk_keeps_old_file);
    tcase_add_test(tc, failed_read_changes_nothing);
    tcase_add_test(tc, write_mode_and_symlink);
    tcase_add_test(tc, append_and_truncate);
    tcase_add_test(tc, append_this_session);
    tcase_add_test(tc, concurrent_appends_never_interleave);
    tcase_add_test(tc, appends_survive_concurrent_truncation);
    suite_add_tcase(s, tc);

    tc = tcase_create("expand");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, expansion_cases);
    tcase_add_test(tc, expansion_flags_and_errors);
    tcase_add_test(tc, expansion_matches_bash);
    suite_add_tcase(s, tc);

    if (find_python()) {
        tc = tcase_create("gnu_readline");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, gnu_reads_kart_files);
        tcase_add_test(tc, kart_reads_gnu_files);
        tcase_add_test(tc, gnu_timestamps);
        tcase_add_test(tc, truncate_like_gnu);
        suite_add_tcase(s, tc);
    } else {
        KART_SKIP_GROUP("GNU readline interop (%s)", py_why);
    }
    fflush(stdout);
    return kt_run(s);
}

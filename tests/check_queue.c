/* Description: Queue, SimpleQueue and JoinableQueue of kart/queue.h: every
 * public function's success path and each documented error; FIFO order
 * across the ring's wrap, and a queue that never writes past its memory (a
 * guard page, every length from every offset); put_many/get_many packing
 * and partial counts;
 * exact qsize/empty/full; shutdown draining; timeouts never early; blocked
 * callers woken by put, get, shutdown and task_done; named queues attached by
 * name, and queues in caller memory mapped at two addresses; the 32-bit
 * counts wrapping (set through the private layout); threads and forked
 * processes exchanging checksummed messages, each delivered exactly once.
 * (Crashes: check_queue_crash.c.) */
#include "testutil.h"

#include "queue_private.h" /* counts_wrap sets the counters near 2^32 */

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define ASSERT_NOT_EARLY(t0, ns) ck_assert_int_ge(kart_now_ns() - (t0), (ns))

/* ---- helpers ---- */

#define JOINABLE true

static kart_queue *make(size_t cap, bool joinable)
{
    kart_queue *q = NULL;
    kart_queue_options o = {.capacity = cap, .joinable = joinable};
    ck_assert_int_eq(kart_queue_create(&q, &o), 0);
    ck_assert_ptr_nonnull(q);
    return q;
}

static size_t qsize_of(kart_queue *q)
{
    size_t n = 12345;
    ck_assert_int_eq(kart_queue_qsize(q, &n), 0);
    return n;
}

static size_t unfinished_of(kart_queue *q)
{
    size_t n = 12345;
    ck_assert_int_eq(kart_queue_unfinished(q, &n), 0);
    return n;
}

static void put_str(kart_queue *q, const char *s)
{
    ck_assert_int_eq(kart_queue_put(q, s, strlen(s), 0), 0);
}

static void get_str(kart_queue *q, const char *want)
{
    char buf[256];
    size_t len = 999;
    ck_assert_int_eq(kart_queue_get(q, buf, sizeof(buf), &len, 0), 0);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_int_eq(memcmp(buf, want, len), 0);
}

static void *shared_map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    return p;
}

static void reap(pid_t pid)
{
    int st;
    kt_wait_child(pid, &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
}

static char test_name[64];

static const char *unique_name(const char *tag)
{
    snprintf(test_name, sizeof(test_name), "/kart-check-queue-%s-%d", tag, (int)getpid());
    return test_name;
}

/* ---- create, open, free ---- */

START_TEST(create_rejects_bad_arguments)
{
    kart_queue *q;
    kart_queue_options o = {0};
    ck_assert_int_eq(kart_queue_create(NULL, NULL), -EINVAL);
    o.capacity = KART_QUEUE_MIN_CAPACITY - 1;
    ck_assert_int_eq(kart_queue_create(&q, &o), -EINVAL);
    o.capacity = (size_t)KART_QUEUE_MAX_CAPACITY + 1;
    ck_assert_int_eq(kart_queue_create(&q, &o), -EINVAL);
    o.capacity = 0;
    const char *bad[] = {"", "/", "noslash", "/a/b", NULL};
    for (int i = 0; bad[i]; i++) {
        o.name = bad[i];
        ck_assert_int_eq(kart_queue_create(&q, &o), -EINVAL);
    }
    char longname[300];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[0] = '/';
    longname[sizeof(longname) - 1] = '\0';
    o.name = longname;
    ck_assert_int_eq(kart_queue_create(&q, &o), -EINVAL);
    ck_assert_int_eq(kart_simplequeue_create(NULL), -EINVAL);
    ck_assert_int_eq(kart_joinablequeue_create(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_joinablequeue_create(&q, 3), -EINVAL);
}
END_TEST

START_TEST(create_defaults_and_kinds)
{
    kart_queue *q;
    ck_assert_int_eq(kart_queue_create(&q, NULL), 0);
    ck_assert_uint_eq(kart_queue_capacity(q), KART_QUEUE_DEFAULT_CAPACITY);
    ck_assert_int_eq(kart_queue_task_done(q), -ENOTSUP);
    ck_assert_int_eq(kart_queue_join(q, 0), -ENOTSUP);
    size_t n;
    ck_assert_int_eq(kart_queue_unfinished(q, &n), -ENOTSUP);
    kart_queue_free(q);

    ck_assert_int_eq(kart_simplequeue_create(&q), 0);
    ck_assert_uint_eq(kart_queue_capacity(q), KART_SIMPLEQUEUE_CAPACITY);
    ck_assert_int_eq(kart_queue_task_done(q), -ENOTSUP);
    put_str(q, "simple");
    get_str(q, "simple");
    kart_queue_free(q);

    ck_assert_int_eq(kart_joinablequeue_create(&q, 0), 0);
    ck_assert_uint_eq(kart_queue_capacity(q), KART_QUEUE_DEFAULT_CAPACITY);
    ck_assert_int_eq(unfinished_of(q), 0);
    kart_queue_free(q);

    /* Capacity is rounded up to a multiple of 8. */
    q = make(21, 0);
    ck_assert_uint_eq(kart_queue_capacity(q), 24);
    kart_queue_free(q);
}
END_TEST

START_TEST(null_queue_everywhere)
{
    char buf[8] = {0};
    size_t len;
    struct iovec v = {buf, 1};
    ck_assert_int_eq(kart_queue_put(NULL, buf, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_put_many(NULL, &v, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_get(NULL, buf, 8, &len, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_get_many(NULL, buf, 8, &v, 1, 0), -EINVAL);
    size_t n;
    ck_assert_int_eq(kart_queue_qsize(NULL, &n), -EINVAL);
    ck_assert_int_eq(kart_queue_empty(NULL), -EINVAL);
    ck_assert_int_eq(kart_queue_full(NULL), -EINVAL);
    ck_assert_uint_eq(kart_queue_capacity(NULL), 0);
    ck_assert_int_eq(kart_queue_shutdown(NULL, false), -EINVAL);
    ck_assert_int_eq(kart_queue_shutdown(NULL, true), -EINVAL);
    ck_assert_int_eq(kart_queue_is_shutdown(NULL), -EINVAL);
    ck_assert_int_eq(kart_queue_task_done(NULL), -EINVAL);
    ck_assert_int_eq(kart_queue_join(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_unfinished(NULL, &n), -EINVAL);
    kart_queue_free(NULL); /* ignored */
    /* Not a queue (its magic is missing): ignored, nothing unmapped. */
    static _Alignas(64) uint64_t junk[64];
    junk[1] = 64;
    kart_queue_free((kart_queue *)junk);
    ck_assert_uint_eq(junk[1], 64);
    /* NULL out parameters. */
    kart_queue *q = make(64, JOINABLE);
    ck_assert_int_eq(kart_queue_qsize(q, NULL), -EINVAL);
    ck_assert_int_eq(kart_queue_unfinished(q, NULL), -EINVAL);
    kart_queue_free(q);
}
END_TEST

START_TEST(named_create_open_unlink)
{
    const char *name = unique_name("named");
    kart_queue *a, *b;
    kart_queue_options o = {.capacity = 4096, .name = name, .joinable = true};
    ck_assert_int_eq(kart_queue_create(&a, &o), 0);
    ck_assert_int_eq(kart_queue_create(&b, &o), -EEXIST);
    ck_assert_int_eq(kart_queue_open(&b, name), 0);
    ck_assert_ptr_ne(a, b); /* two mappings of one queue */
    ck_assert_uint_eq(kart_queue_capacity(b), 4096);
    put_str(a, "through a name");
    ck_assert_int_eq(qsize_of(b), 1);
    get_str(b, "through a name");
    ck_assert_int_eq(unfinished_of(a), 1);
    ck_assert_int_eq(kart_queue_task_done(b), 0);
    ck_assert_int_eq(kart_queue_join(a, 0), 0);
    kart_queue_free(b);
    ck_assert_int_eq(kart_queue_unlink(name), 0);
    ck_assert_int_eq(kart_queue_unlink(name), -ENOENT);
    ck_assert_int_eq(kart_queue_open(&b, name), -ENOENT);
    /* The creator's mapping outlives the name. */
    put_str(a, "still here");
    get_str(a, "still here");
    kart_queue_free(a);
}
END_TEST

START_TEST(open_rejects_bad_names_and_segments)
{
    kart_queue *q;
    ck_assert_int_eq(kart_queue_open(NULL, "/x"), -EINVAL);
    ck_assert_int_eq(kart_queue_open(&q, NULL), -EINVAL);
    ck_assert_int_eq(kart_queue_open(&q, "bad"), -EINVAL);
    ck_assert_int_eq(kart_queue_unlink(NULL), -EINVAL);
    ck_assert_int_eq(kart_queue_unlink("/a/b"), -EINVAL);
    ck_assert_int_eq(kart_queue_open(&q, unique_name("none")), -ENOENT);

    /* A segment that exists but is empty (its creator is still at it),
     * too small, or not a queue. */
    const char *name = unique_name("foreign");
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(kart_queue_open(&q, name), -EAGAIN);
    ck_assert_int_eq(ftruncate(fd, 16), 0);
    ck_assert_int_eq(kart_queue_open(&q, name), -EINVAL);
    ck_assert_int_eq(ftruncate(fd, 65536), 0);
    ck_assert_int_eq(kart_queue_open(&q, name), -EAGAIN); /* zeroed: not set up yet */
    ck_assert_int_eq(pwrite(fd, "garbage!", 8, 0), 8);
    ck_assert_int_eq(kart_queue_open(&q, name), -EINVAL);
    close(fd);
    ck_assert_int_eq(kart_queue_unlink(name), 0);
}
END_TEST

/* A queue in caller-provided memory: a memfd mapped twice, at two
 * addresses, stands for memory shared by other means. */
START_TEST(init_and_attach_in_caller_memory)
{
    size_t need = 0, dflt = 0, max = 0;
    ck_assert_int_eq(kart_queue_footprint(4096, &need), 0);
    ck_assert_uint_gt(need, 4096);
    ck_assert_int_eq(kart_queue_footprint(0, &dflt), 0);
    ck_assert_int_eq(kart_queue_footprint(KART_QUEUE_DEFAULT_CAPACITY, &max), 0);
    ck_assert_uint_eq(dflt, max);
    ck_assert_int_eq(kart_queue_footprint(3, &max), -EINVAL);
    ck_assert_int_eq(kart_queue_footprint(4096, NULL), -EINVAL);
    int fd = memfd_create("kart-queue-test", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, need), 0);
    char *a = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *b = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(a, MAP_FAILED);
    ck_assert_ptr_ne(b, MAP_FAILED);
    ck_assert_ptr_ne(a, b);

    kart_queue *qa, *qb;
    ck_assert_int_eq(kart_queue_attach(&qb, b, need), -EAGAIN); /* zeroed */
    kart_queue_options o = {.capacity = 4096};
    ck_assert_int_eq(kart_queue_init(NULL, a, need, &o), -EINVAL);
    ck_assert_int_eq(kart_queue_init(&qa, NULL, need, &o), -EINVAL);
    ck_assert_int_eq(kart_queue_init(&qa, a + 8, need, &o), -EINVAL);
    o.capacity = 3;
    ck_assert_int_eq(kart_queue_init(&qa, a, need, &o), -EINVAL);
    o.capacity = 4096;
    o.name = "/a-name";
    ck_assert_int_eq(kart_queue_init(&qa, a, need, &o), -EINVAL);
    o.name = NULL;
    o.mode = 0600;
    ck_assert_int_eq(kart_queue_init(&qa, a, need, &o), -EINVAL);
    o.mode = 0;
    ck_assert_int_eq(kart_queue_init(&qa, a, need - 1, &o), -ENOSPC);
    o.joinable = true;
    ck_assert_int_eq(kart_queue_init(&qa, a, need, &o), 0);
    ck_assert_ptr_eq(qa, (kart_queue *)a);

    ck_assert_int_eq(kart_queue_attach(NULL, b, need), -EINVAL);
    ck_assert_int_eq(kart_queue_attach(&qb, NULL, need), -EINVAL);
    ck_assert_int_eq(kart_queue_attach(&qb, b + 8, need), -EINVAL);
    ck_assert_int_eq(kart_queue_attach(&qb, b, 64), -ENOSPC);
    ck_assert_int_eq(kart_queue_attach(&qb, b, need - 8), -ENOSPC);
    ck_assert_int_eq(kart_queue_attach(&qb, b, need), 0);
    ck_assert_uint_eq(kart_queue_capacity(qb), 4096);
    put_str(qa, "from a");
    get_str(qb, "from a");
    ck_assert_int_eq(kart_queue_task_done(qb), 0);
    ck_assert_int_eq(kart_queue_join(qa, 0), 0);

    /* A process that maps the memfd on its own. */
    pid_t pid = kt_fork();
    if (pid == 0) {
        char *c = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        kart_queue *qc;
        if (c == MAP_FAILED || kart_queue_attach(&qc, c, need) != 0)
            _exit(1);
        _exit(kart_queue_put(qc, "from c", 6, -1) == 0 ? 0 : 2);
    }
    reap(pid);
    get_str(qa, "from c");

    /* free leaves caller memory mapped. */
    kart_queue_free(qa);
    kart_queue_free(qb);
    put_str(qb, "still mapped");
    get_str(qa, "still mapped");
    ck_assert_int_eq(munmap(a, need), 0);
    ck_assert_int_eq(munmap(b, need), 0);
    close(fd);

    /* Not a queue; a queue kart_queue_create made (attach it by name). */
    static _Alignas(64) char junk[8192];
    memset(junk, 0x5a, sizeof(junk));
    ck_assert_int_eq(kart_queue_attach(&qb, junk, sizeof(junk)), -EINVAL);
    kart_queue *made = make(64, 0);
    size_t foot;
    ck_assert_int_eq(kart_queue_footprint(64, &foot), 0);
    ck_assert_int_eq(kart_queue_attach(&qb, made, foot), -EINVAL);
    kart_queue_free(made);
}
END_TEST

/* ---- put and get ---- */

START_TEST(fifo_and_sizes)
{
    kart_queue *q = make(4096, 0);
    put_str(q, "one");
    put_str(q, "");
    put_str(q, "three");
    ck_assert_int_eq(qsize_of(q), 3);
    get_str(q, "one");
    get_str(q, "");
    get_str(q, "three");
    ck_assert_int_eq(kart_queue_empty(q), 1);
    /* The largest message that fits: capacity - 4. */
    static char big[4092], out[4096];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    ck_assert_int_eq(kart_queue_put(q, big, sizeof(big), 0), 0);
    ck_assert_int_eq(kart_queue_full(q), 1);
    size_t len;
    ck_assert_int_eq(kart_queue_get(q, out, sizeof(out), &len, 0), 0);
    ck_assert_uint_eq(len, sizeof(big));
    ck_assert_int_eq(memcmp(big, out, len), 0);
    kart_queue_free(q);
}
END_TEST

/* Thousands of odd-sized messages through a small ring: every offset,
 * every split of a message across the end. */
START_TEST(wraps_around)
{
    kart_queue *q = make(256, 0);
    unsigned char msg[100], out[100];
    for (int i = 0; i < 5000; i++) {
        size_t n = (size_t)(i * 13) % 100;
        for (size_t j = 0; j < n; j++)
            msg[j] = (unsigned char)(i + j);
        ck_assert_int_eq(kart_queue_put(q, msg, n, 0), 0);
        if (i % 2 == 0)
            ck_assert_int_eq(kart_queue_put(q, msg, n, 0), 0);
        for (int k = 0; k < (i % 2 == 0 ? 2 : 1); k++) {
            size_t len;
            ck_assert_int_eq(kart_queue_get(q, out, sizeof(out), &len, 0), 0);
            ck_assert_uint_eq(len, n);
            ck_assert_int_eq(memcmp(msg, out, n), 0);
        }
    }
    ck_assert_int_eq(qsize_of(q), 0);
    kart_queue_free(q);
}
END_TEST

/* The ring never writes outside its memory: a queue in caller memory with
 * a PROT_NONE page right after its last ring byte (capacities that are a
 * multiple of 64, so the queue can end on the page boundary) and guard
 * bytes after it otherwise. Messages of every length a capacity takes are
 * put and got with one or two others in flight, so the offset lands on
 * every position and reaches the ring's end exactly, by a header and by
 * data; each message is checked byte for byte. An offset that wrapped one
 * byte late would write the next header at ring + cap: into the guard
 * page (SIGSEGV) or the guard bytes (checked at the end). */
#define GUARD_BYTES 256

static void fill_msg(unsigned char *m, size_t len, unsigned i)
{
    for (size_t k = 0; k < len; k++)
        m[k] = (unsigned char)(i * 31u + k * 7u + 1u);
}

/* Messages put and not yet got: their lengths and numbers, oldest first. */
typedef struct inflight {
    size_t len[2];
    unsigned id[2];
    size_t n;
} inflight;

/* Gets the oldest message and compares it with what was put; returns 0
 * when it is intact (one Check assertion per churn, not per message:
 * see KT_ASSERT_EACH). */
static unsigned take_oldest(kart_queue *q, inflight *f, unsigned char *in, unsigned char *out)
{
    size_t got = 0;
    int r = kart_queue_get(q, out, 4096, &got, 0);
    fill_msg(in, f->len[0], f->id[0]);
    unsigned bad = r != 0 || got != f->len[0] || memcmp(in, out, got) != 0;
    f->len[0] = f->len[1];
    f->id[0] = f->id[1];
    f->n--;
    return bad;
}

static void churn(kart_queue *q, size_t cap)
{
    size_t maxlen = cap - KART__QUEUE_HDR;
    unsigned char in[4096], out[4096];
    ck_assert_uint_le(maxlen, sizeof(in));
    unsigned bad = 0, puts = 0;
    inflight f = {.n = 0};
    /* Every length, from cap / 8 + 1 starting offsets (each round ends
     * 8 bytes further on), with a message in flight most of the time. */
    for (size_t round = 0; round < cap / 8 + 1; round++) {
        for (size_t len = 0; len <= maxlen; len++) {
            fill_msg(in, len, puts);
            int r = kart_queue_put(q, in, len, 0);
            if (r == -ETIMEDOUT && f.n) { /* full: take the oldest out first */
                bad += take_oldest(q, &f, in, out);
                fill_msg(in, len, puts);
                r = kart_queue_put(q, in, len, 0);
            }
            bad += r != 0;
            f.len[f.n] = len;
            f.id[f.n++] = puts++;
            while (f.n > 1 || (f.n && (len + puts) % 3 == 0))
                bad += take_oldest(q, &f, in, out);
        }
        while (f.n)
            bad += take_oldest(q, &f, in, out);
        size_t got = 1;
        bad += kart_queue_put(q, in, 0, 0) != 0;
        bad += kart_queue_get(q, out, sizeof(out), &got, 0) != 0 || got != 0;
        puts++;
    }
    ck_assert_msg(bad == 0, "%u of %u messages lost or damaged at capacity %zu", bad, puts, cap);
    ck_assert_int_eq(kart_queue_empty(q), 1);
}

START_TEST(stays_inside_its_memory)
{
    static const size_t caps[] = {16, 24, 40, 64, 72, 128, 200, 256, 1000, 1024};
    long pg = sysconf(_SC_PAGESIZE);
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        size_t need = 0;
        ck_assert_int_eq(kart_queue_footprint(caps[c], &need), 0);
        size_t span = (need + GUARD_BYTES + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
        unsigned char *base = mmap(NULL, span + (size_t)pg, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ck_assert_ptr_ne(base, MAP_FAILED);
        ck_assert_int_eq(mprotect(base + span, (size_t)pg, PROT_NONE), 0);
        /* Ending on the guard page where alignment allows, else guard bytes. */
        bool paged = (span - need) % 64 == 0;
        unsigned char *mem = paged ? base + span - need : base;
        size_t after = (size_t)(base + span - (mem + need));
        memset(mem + need, 0xA5, after);
        kart_queue *q = NULL;
        kart_queue_options o = {.capacity = caps[c]};
        ck_assert_int_eq(kart_queue_init(&q, mem, need, &o), 0);
        ck_assert_uint_eq(kart_queue_capacity(q), caps[c]);
        churn(q, caps[c]);
        KT_ASSERT_EACH(i, after, mem[need + i] == 0xA5);
        kart_queue_free(q);
        ck_assert_int_eq(munmap(base, span + (size_t)pg), 0);
    }
}
END_TEST

START_TEST(put_errors)
{
    kart_queue *q = make(64, 0);
    char buf[64] = {0};
    ck_assert_int_eq(kart_queue_put(q, NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_put(q, NULL, 0, 0), 0); /* an empty message */
    ck_assert_int_eq(kart_queue_put(q, buf, 61, 0), -EMSGSIZE);
    ck_assert_int_eq(kart_queue_put(q, buf, (size_t)-1, 0), -EMSGSIZE);
    ck_assert_int_eq(qsize_of(q), 1);
    /* 8 + 56 = 64 bytes: full. */
    ck_assert_int_eq(kart_queue_put(q, buf, 52, 0), 0);
    ck_assert_int_eq(kart_queue_full(q), 1);
    ck_assert_int_eq(kart_queue_put(q, NULL, 0, 0), -ETIMEDOUT);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_queue_put(q, buf, 1, 30 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 30 * KT_MS);
    ck_assert_int_eq(qsize_of(q), 2);
    kart_queue_free(q);
}
END_TEST

START_TEST(get_errors)
{
    kart_queue *q = make(256, 0);
    char buf[16];
    size_t len = 0;
    struct iovec v;
    ck_assert_int_eq(kart_queue_get(q, buf, sizeof(buf), NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_get(q, NULL, 4, &len, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_get_many(q, buf, sizeof(buf), NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_get_many(q, buf, sizeof(buf), &v, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_get(q, buf, sizeof(buf), &len, 0), -ETIMEDOUT);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_queue_get(q, buf, sizeof(buf), &len, 30 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 30 * KT_MS);
    /* Too small a buffer: the needed size, and the message stays. */
    put_str(q, "twenty bytes exactly");
    ck_assert_int_eq(kart_queue_get(q, buf, sizeof(buf), &len, 0), -ENOBUFS);
    ck_assert_uint_eq(len, 20);
    ck_assert_int_eq(kart_queue_get(q, NULL, 0, &len, -1), -ENOBUFS);
    ck_assert_int_eq(kart_queue_get_many(q, buf, sizeof(buf), &v, 4, 0), -ENOBUFS);
    ck_assert_uint_eq(v.iov_len, 20);
    ck_assert_int_eq(qsize_of(q), 1);
    get_str(q, "twenty bytes exactly");
    /* A zero-length message fits a NULL buffer. */
    ck_assert_int_eq(kart_queue_put(q, NULL, 0, 0), 0);
    ck_assert_int_eq(kart_queue_get(q, NULL, 0, &len, 0), 0);
    ck_assert_uint_eq(len, 0);
    kart_queue_free(q);
}
END_TEST

START_TEST(put_many_and_get_many)
{
    kart_queue *q = make(128, 0);
    char big[200] = {0};
    struct iovec in[4] = {{"alpha", 5}, {"be", 2}, {"", 0}, {"delta", 5}};
    ck_assert_int_eq(kart_queue_put_many(q, NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_put_many(q, in, 0, 0), -EINVAL);
    struct iovec bad[2] = {{"ok", 2}, {NULL, 3}};
    ck_assert_int_eq(kart_queue_put_many(q, bad, 2, 0), -EINVAL);
    struct iovec huge[2] = {{"ok", 2}, {big, sizeof(big)}};
    ck_assert_int_eq(kart_queue_put_many(q, huge, 2, 0), -EMSGSIZE);
    ck_assert_int_eq(qsize_of(q), 0); /* nothing put */
    ck_assert_int_eq(kart_queue_put_many(q, in, 4, 0), 4);
    ck_assert_int_eq(qsize_of(q), 4);

    /* get_many packs them; a too-small buffer stops after what fits. */
    char buf[64];
    struct iovec out[8];
    ck_assert_int_eq(kart_queue_get_many(q, buf, 7, out, 8, 0), 3); /* "" still fits */
    ck_assert_uint_eq(out[0].iov_len, 5);
    ck_assert_uint_eq(out[1].iov_len, 2);
    ck_assert_uint_eq(out[2].iov_len, 0);
    ck_assert_ptr_eq(out[0].iov_base, buf);
    ck_assert_ptr_eq(out[1].iov_base, buf + 5);
    ck_assert_int_eq(memcmp(buf, "alphabe", 7), 0);
    ck_assert_int_eq(kart_queue_put(q, "echo", 4, 0), 0);
    ck_assert_int_eq(kart_queue_get_many(q, buf, sizeof(buf), out, 1, 0), 1); /* max 1 */
    ck_assert_int_eq(memcmp(out[0].iov_base, "delta", 5), 0);
    ck_assert_int_eq(kart_queue_get_many(q, buf, sizeof(buf), out, 8, 0), 1);
    ck_assert_int_eq(memcmp(out[0].iov_base, "echo", 4), 0);
    ck_assert_int_eq(kart_queue_get_many(q, buf, sizeof(buf), out, 8, 0), -ETIMEDOUT);

    /* put_many stops at the first that does not fit: 128 bytes hold two
     * 60-byte messages (64 each) and not a third. */
    struct iovec three[3] = {{big, 60}, {big, 60}, {big, 60}};
    ck_assert_int_eq(kart_queue_put_many(q, three, 3, 0), 2);
    ck_assert_int_eq(kart_queue_put_many(q, three, 3, 0), -ETIMEDOUT);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_queue_put_many(q, three, 1, 20 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 20 * KT_MS);
    kart_queue_free(q);
}
END_TEST

START_TEST(qsize_empty_full_exact)
{
    kart_queue *q = make(64, 0);
    ck_assert_int_eq(kart_queue_empty(q), 1);
    ck_assert_int_eq(kart_queue_full(q), 0);
    ck_assert_int_eq(qsize_of(q), 0);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(kart_queue_full(q), 0);
        ck_assert_int_eq(kart_queue_put(q, "abcd", 4, 0), 0);
        ck_assert_int_eq(qsize_of(q), i + 1);
        ck_assert_int_eq(kart_queue_empty(q), 0);
    }
    ck_assert_int_eq(kart_queue_full(q), 1);
    char b[8];
    size_t len;
    ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, 0), 0);
    ck_assert_int_eq(kart_queue_full(q), 0);
    ck_assert_int_eq(qsize_of(q), 7);
    kart_queue_free(q);
}
END_TEST

/* The counts of puts, gets and dones are 32-bit and wrap: qsize, full and
 * the joinable count must not notice. */
START_TEST(counts_wrap)
{
    kart_queue *q = make(256, JOINABLE);
    uint64_t start = (uint64_t)0xfffffff0u << 32;
    atomic_store(&q->tail, start);
    atomic_store(&q->head, start);
    atomic_store(&q->head_seen, start);
    atomic_store(&q->tail_seen, start);
    atomic_store(&q->dones, 0xfffffff0u);
    char b[8];
    size_t len;
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(kart_queue_put(q, &i, 4, 0), 0);
        ck_assert_int_eq(kart_queue_put(q, &i, 4, 0), 0);
        ck_assert_int_eq(qsize_of(q), 2);
        ck_assert_int_eq(unfinished_of(q), 2);
        ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, 0), 0);
        ck_assert_int_eq(memcmp(b, &i, 4), 0);
        ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, 0), 0);
        ck_assert_int_eq(kart_queue_empty(q), 1);
        ck_assert_int_eq(kart_queue_task_done(q), 0);
        ck_assert_int_eq(kart_queue_task_done(q), 0);
        ck_assert_int_eq(kart_queue_task_done(q), KART_ETASKDONE);
        ck_assert_int_eq(kart_queue_join(q, 0), 0);
    }
    /* Fill it across the wrap: 32 messages of 8 bytes. */
    for (int i = 0; i < 32; i++)
        ck_assert_int_eq(kart_queue_put(q, &i, 4, 0), 0);
    ck_assert_int_eq(kart_queue_full(q), 1);
    ck_assert_int_eq(qsize_of(q), 32);
    ck_assert_int_eq(kart_queue_put(q, b, 0, 0), -ETIMEDOUT);
    kart_queue_free(q);
}
END_TEST

/* ---- shutdown ---- */

START_TEST(shutdown_drains_then_eshutdown)
{
    kart_queue *q = make(256, 0);
    put_str(q, "left");
    put_str(q, "over");
    ck_assert_int_eq(kart_queue_is_shutdown(q), 0);
    ck_assert_int_eq(kart_queue_shutdown(q, false), 0);
    ck_assert_int_eq(kart_queue_shutdown(q, false), 0);
    ck_assert_int_eq(kart_queue_is_shutdown(q), 1);
    ck_assert_int_eq(kart_queue_put(q, "x", 1, -1), -ESHUTDOWN);
    struct iovec v = {"x", 1};
    ck_assert_int_eq(kart_queue_put_many(q, &v, 1, 0), -ESHUTDOWN);
    get_str(q, "left");
    get_str(q, "over");
    char b[8];
    size_t len;
    ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, -1), -ESHUTDOWN);
    ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, 0), -ESHUTDOWN);
    kart_queue_free(q);
}
END_TEST

START_TEST(immediate_shutdown_drops_what_is_left)
{
    kart_queue *q = make(256, 0);
    put_str(q, "dropped");
    put_str(q, "too");
    ck_assert_int_eq(kart_queue_shutdown(q, true), 0);
    ck_assert_int_eq(kart_queue_is_shutdown(q), 1);
    ck_assert_uint_eq(qsize_of(q), 0);
    char b[16];
    size_t len;
    ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, 0), -ESHUTDOWN);
    ck_assert_int_eq(kart_queue_put(q, "x", 1, 0), -ESHUTDOWN);
    kart_queue_free(q);

    /* A plain shutdown, then an immediate one: what was left goes. */
    q = make(256, 0);
    put_str(q, "kept");
    put_str(q, "then dropped");
    ck_assert_int_eq(kart_queue_shutdown(q, false), 0);
    get_str(q, "kept");
    ck_assert_int_eq(kart_queue_shutdown(q, true), 0);
    ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, -1), -ESHUTDOWN);
    kart_queue_free(q);

    /* JoinableQueue: the dropped ones count as done, the taken one not
     * until its task_done (Python 3.13's shutdown(immediate=True)). */
    q = make(256, JOINABLE);
    put_str(q, "taken");
    put_str(q, "dropped 1");
    put_str(q, "dropped 2");
    get_str(q, "taken");
    ck_assert_int_eq(kart_queue_shutdown(q, true), 0);
    ck_assert_uint_eq(unfinished_of(q), 1);
    ck_assert_int_eq(kart_queue_join(q, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_queue_task_done(q), 0);
    ck_assert_int_eq(kart_queue_join(q, 0), 0);
    ck_assert_int_eq(kart_queue_task_done(q), KART_ETASKDONE);
    kart_queue_free(q);
}
END_TEST

typedef struct waiter {
    kart_queue *q;
    int r;
    size_t len;
    char buf[64];
} waiter;

static void *blocked_get(void *arg)
{
    waiter *w = arg;
    w->r = kart_queue_get(w->q, w->buf, sizeof(w->buf), &w->len, -1);
    return NULL;
}

static void *blocked_put(void *arg)
{
    waiter *w = arg;
    w->r = kart_queue_put(w->q, "late", 4, -1);
    return NULL;
}

static void *blocked_join(void *arg)
{
    waiter *w = arg;
    w->r = kart_queue_join(w->q, -1);
    return NULL;
}

/* An immediate shutdown wakes a joiner once nothing taken is pending. */
START_TEST(immediate_shutdown_wakes_join)
{
    kart_queue *q = make(256, JOINABLE);
    put_str(q, "never taken");
    waiter j = {q, 1, 0, {0}};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, blocked_join, &j), 0);
    usleep(20000);
    ck_assert_int_eq(j.r, 1); /* still waiting */
    ck_assert_int_eq(kart_queue_shutdown(q, true), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(j.r, 0);
    kart_queue_free(q);
}
END_TEST

START_TEST(shutdown_wakes_blocked_callers)
{
    kart_queue *q = make(16, 0);
    waiter g = {q, 1, 0, {0}}, p = {q, 1, 0, {0}};
    pthread_t tg, tp;
    ck_assert_int_eq(pthread_create(&tg, NULL, blocked_get, &g), 0);
    usleep(20000);
    ck_assert_int_eq(kart_queue_shutdown(q, false), 0);
    ck_assert_int_eq(pthread_join(tg, NULL), 0);
    ck_assert_int_eq(g.r, -ESHUTDOWN);

    kart_queue *q2 = make(16, 0);
    ck_assert_int_eq(kart_queue_put(q2, "12345678", 8, 0), 0); /* 16: full */
    p.q = q2;
    ck_assert_int_eq(pthread_create(&tp, NULL, blocked_put, &p), 0);
    usleep(20000);
    ck_assert_int_eq(kart_queue_shutdown(q2, false), 0);
    ck_assert_int_eq(pthread_join(tp, NULL), 0);
    ck_assert_int_eq(p.r, -ESHUTDOWN);
    kart_queue_free(q);
    kart_queue_free(q2);
}
END_TEST

START_TEST(put_and_get_wake_each_other)
{
    kart_queue *q = make(16, 0);
    waiter g = {q, 1, 0, {0}}, p = {q, 1, 0, {0}};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, blocked_get, &g), 0);
    usleep(20000); /* asleep by now, most likely */
    put_str(q, "wake");
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(g.r, 0);
    ck_assert_uint_eq(g.len, 4);

    ck_assert_int_eq(kart_queue_put(q, "12345678", 8, 0), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, blocked_put, &p), 0);
    usleep(20000);
    get_str(q, "12345678");
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(p.r, 0);
    get_str(q, "late");
    kart_queue_free(q);
}
END_TEST

/* ---- JoinableQueue ---- */

START_TEST(task_done_past_puts)
{
    kart_queue *q = make(256, JOINABLE);
    ck_assert_int_eq(kart_queue_task_done(q), KART_ETASKDONE);
    ck_assert_str_eq(kart_err_name(KART_ETASKDONE), "KART_ETASKDONE");
    ck_assert_str_ne(kart_strerror(KART_ETASKDONE), "unknown error");
    put_str(q, "a");
    put_str(q, "b");
    ck_assert_int_eq(unfinished_of(q), 2);
    ck_assert_int_eq(kart_queue_join(q, 0), -ETIMEDOUT);
    int64_t t0 = kart_now_ns();
    ck_assert_int_eq(kart_queue_join(q, 30 * KT_MS), -ETIMEDOUT);
    ASSERT_NOT_EARLY(t0, 30 * KT_MS);
    /* As in Python, task_done counts puts, not gets. */
    ck_assert_int_eq(kart_queue_task_done(q), 0);
    ck_assert_int_eq(kart_queue_task_done(q), 0);
    ck_assert_int_eq(kart_queue_task_done(q), KART_ETASKDONE);
    ck_assert_int_eq(unfinished_of(q), 0);
    ck_assert_int_eq(kart_queue_join(q, 0), 0);
    ck_assert_int_eq(kart_queue_join(q, -1), 0);
    kart_queue_free(q);
}
END_TEST

static void *worker_done(void *arg)
{
    kart_queue *q = arg;
    char b[16];
    size_t len;
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(kart_queue_get(q, b, sizeof(b), &len, -1), 0);
        usleep(100);
        ck_assert_int_eq(kart_queue_task_done(q), 0);
    }
    return NULL;
}

START_TEST(join_waits_for_all)
{
    kart_queue *q = make(4096, JOINABLE);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, worker_done, q), 0);
    for (int i = 0; i < 100; i++)
        put_str(q, "job");
    ck_assert_int_eq(kart_queue_join(q, -1), 0);
    ck_assert_int_eq(unfinished_of(q), 0);
    ck_assert_int_eq(qsize_of(q), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    kart_queue_free(q);
}
END_TEST

/* ---- many producers, many consumers ---- */

/* A message: its id, then bytes derived from it, then a checksum; 8..300
 * bytes. */
static size_t make_msg(uint32_t id, unsigned char *m)
{
    size_t n = 8 + (id * 2654435761u) % 293;
    memcpy(m, &id, 4);
    uint32_t sum = id;
    for (size_t i = 4; i < n - 4; i++) {
        m[i] = (unsigned char)(id * 31 + i);
        sum = sum * 16777619u ^ m[i];
    }
    memcpy(m + n - 4, &sum, 4);
    return n;
}

/* The id of a well-formed message, or -1. */
static long check_msg(const unsigned char *m, size_t n)
{
    if (n < 8)
        return -1;
    uint32_t id;
    memcpy(&id, m, 4);
    unsigned char want[300];
    if (make_msg(id, want) != n || memcmp(want, m, n) != 0)
        return -1;
    return id;
}

#define NPROD 4
#define NCONS 4
#define PER_PRODUCER 5000
#define TOTAL (NPROD * PER_PRODUCER)

typedef struct mpmc {
    kart_queue *q;
    _Atomic uint32_t next;
    _Atomic uint8_t seen[TOTAL];
    _Atomic int bad;
} mpmc;

static void produce(mpmc *m, int me)
{
    unsigned char buf[300];
    for (uint32_t i = 0; i < PER_PRODUCER; i++) {
        uint32_t id = (uint32_t)me * PER_PRODUCER + i;
        if (i % 3 == 0 && i + 1 < PER_PRODUCER) {
            /* Two at once, with put_many. */
            unsigned char b2[300];
            struct iovec v[2] = {{buf, make_msg(id, buf)}, {b2, make_msg(id + 1, b2)}};
            int k = kart_queue_put_many(m->q, v, 2, -1);
            if (k < 1)
                atomic_store(&m->bad, 1);
            i += (uint32_t)k - 1;
            continue;
        }
        if (kart_queue_put(m->q, buf, make_msg(id, buf), -1) != 0)
            atomic_store(&m->bad, 1);
    }
}

static void consume(mpmc *m)
{
    unsigned char buf[1024];
    struct iovec v[4];
    for (int n = 0;; n++) {
        int k = n % 2 ? kart_queue_get_many(m->q, buf, sizeof(buf), v, 4, -1)
                      : kart_queue_get_many(m->q, buf, 300, v, 1, -1);
        if (k == -ESHUTDOWN)
            return;
        if (k < 1) {
            atomic_store(&m->bad, 2);
            return;
        }
        for (int i = 0; i < k; i++) {
            long id = check_msg(v[i].iov_base, v[i].iov_len);
            if (id < 0 || id >= TOTAL || atomic_fetch_add(&m->seen[id], 1) != 0)
                atomic_store(&m->bad, 3);
        }
    }
}

typedef struct role {
    mpmc *m;
    int me;
} role;

static void *producer_thread(void *arg)
{
    role *r = arg;
    produce(r->m, r->me);
    return NULL;
}

static void *consumer_thread(void *arg)
{
    consume(((role *)arg)->m);
    return NULL;
}

static void check_all_seen(mpmc *m)
{
    ck_assert_int_eq(atomic_load(&m->bad), 0);
    for (int i = 0; i < TOTAL; i++)
        ck_assert_msg(atomic_load(&m->seen[i]) == 1, "message %d seen %d times", i,
                      atomic_load(&m->seen[i]));
}

START_TEST(threads_exchange_exactly_once)
{
    mpmc *m = calloc(1, sizeof(*m));
    m->q = make(2048, 0); /* small: producers wait for room often */
    pthread_t t[NPROD + NCONS];
    role r[NPROD + NCONS];
    for (int i = 0; i < NPROD + NCONS; i++) {
        r[i] = (role){m, i};
        ck_assert_int_eq(
            pthread_create(&t[i], NULL, i < NPROD ? producer_thread : consumer_thread, &r[i]), 0);
    }
    for (int i = 0; i < NPROD; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_int_eq(kart_queue_shutdown(m->q, false), 0);
    for (int i = NPROD; i < NPROD + NCONS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    check_all_seen(m);
    kart_queue_free(m->q);
    free(m);
}
END_TEST

START_TEST(processes_exchange_exactly_once)
{
    mpmc *m = shared_map(sizeof(*m));
    m->q = make(2048, 0); /* inherited over fork */
    pid_t pid[NPROD + NCONS];
    for (int i = 0; i < NPROD + NCONS; i++) {
        pid[i] = kt_fork();
        if (pid[i] == 0) {
            if (i < NPROD)
                produce(m, i);
            else
                consume(m);
            _exit(0);
        }
    }
    for (int i = 0; i < NPROD; i++)
        reap(pid[i]);
    ck_assert_int_eq(kart_queue_shutdown(m->q, false), 0);
    for (int i = NPROD; i < NPROD + NCONS; i++)
        reap(pid[i]);
    check_all_seen(m);
    kart_queue_free(m->q);
    munmap(m, sizeof(*m));
}
END_TEST

/* An unrelated process (a fork child that unmaps its inherited views and
 * maps the queues anew by name) echoes what the creator sends. */
START_TEST(process_attached_by_name)
{
    char req_name[64], rep_name[64];
    snprintf(req_name, sizeof(req_name), "%s", unique_name("req"));
    snprintf(rep_name, sizeof(rep_name), "%s", unique_name("rep"));
    kart_queue *req, *rep;
    kart_queue_options o = {.capacity = 1024, .name = req_name};
    ck_assert_int_eq(kart_queue_create(&req, &o), 0);
    o.name = rep_name;
    ck_assert_int_eq(kart_queue_create(&rep, &o), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_queue *in, *out;
        kart_queue_free(req);
        kart_queue_free(rep);
        if (kart_queue_open(&in, req_name) || kart_queue_open(&out, rep_name))
            _exit(1);
        char b[64];
        size_t len;
        for (int i = 0; i < 1000; i++) {
            if (kart_queue_get(in, b, sizeof(b), &len, -1) != 0 || len != 4 ||
                memcmp(b, &i, 4) != 0)
                _exit(2);
            if (kart_queue_put(out, &i, 4, -1) != 0)
                _exit(3);
        }
        kart_queue_free(in);
        kart_queue_free(out);
        _exit(0);
    }
    char b[64];
    size_t len;
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(kart_queue_put(req, &i, 4, -1), 0);
        ck_assert_int_eq(kart_queue_get(rep, b, sizeof(b), &len, 5000 * KT_MS), 0);
        ck_assert_int_eq(memcmp(b, &i, 4), 0);
    }
    reap(pid);
    ck_assert_int_eq(kart_queue_unlink(req_name), 0);
    ck_assert_int_eq(kart_queue_unlink(rep_name), 0);
    kart_queue_free(req);
    kart_queue_free(rep);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = tcase_create("lifetime");
    tcase_add_test(tc, create_rejects_bad_arguments);
    tcase_add_test(tc, create_defaults_and_kinds);
    tcase_add_test(tc, null_queue_everywhere);
    tcase_add_test(tc, named_create_open_unlink);
    tcase_add_test(tc, open_rejects_bad_names_and_segments);
    tcase_add_test(tc, init_and_attach_in_caller_memory);
    suite_add_tcase(s, tc);

    tc = tcase_create("put_get");
    tcase_add_test(tc, fifo_and_sizes);
    tcase_add_test(tc, wraps_around);
    tcase_add_test(tc, stays_inside_its_memory);
    tcase_add_test(tc, put_errors);
    tcase_add_test(tc, get_errors);
    tcase_add_test(tc, put_many_and_get_many);
    tcase_add_test(tc, immediate_shutdown_drops_what_is_left);
    tcase_add_test(tc, immediate_shutdown_wakes_join);
    tcase_add_test(tc, qsize_empty_full_exact);
    tcase_add_test(tc, counts_wrap);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown_and_wake");
    tcase_add_test(tc, shutdown_drains_then_eshutdown);
    tcase_add_test(tc, shutdown_wakes_blocked_callers);
    tcase_add_test(tc, put_and_get_wake_each_other);
    suite_add_tcase(s, tc);

    tc = tcase_create("joinable");
    tcase_add_test(tc, task_done_past_puts);
    tcase_add_test(tc, join_waits_for_all);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, threads_exchange_exactly_once);
    tcase_add_test(tc, processes_exchange_exactly_once);
    tcase_add_test(tc, process_attached_by_name);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

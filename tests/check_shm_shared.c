/* Description: kart/shared.h — Value and Array: every element type, get
 * and set (raw bytes, as integers with range checks, as doubles), slices
 * and index bounds, the lock (held across a read-modify-write, -EDEADLK,
 * robust take-over after a holder dies), counters incremented by 4 fork
 * children and by 4 threads with no update lost, named objects attached
 * by name (and refused when the segment holds something else), and every
 * documented argument error. */
#include "testutil.h"

#include <kart/shared.h>
#include <kart/shm.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static const char *tname(const char *tag)
{
    static char buf[4][96];
    static int n;
    char *b = buf[n++ % 4];
    snprintf(b, 96, "/kart-test-%ld-%s-%d", (long)getpid(), tag, n);
    return b;
}

static void reap_ok(pid_t pid)
{
    int st;
    kt_wait_child(pid, &st);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
}

/* ---- creation ---- */

START_TEST(create_rejects_bad_arguments)
{
    kart_array *a = NULL;
    kart_value *v = NULL;
    ck_assert_int_eq(kart_array_create(NULL, KART_CT_INT32, 0, 4, 0), -EINVAL);
    ck_assert_int_eq(kart_array_create(&a, 0, 0, 4, 0), -EINVAL);
    ck_assert_int_eq(kart_array_create(&a, 99, 0, 4, 0), -EINVAL);
    ck_assert_int_eq(kart_array_create(&a, KART_CT_INT32, 8, 4, 0), -EINVAL);
    ck_assert_int_eq(kart_array_create(&a, KART_CT_BYTES, 0, 4, 0), -EINVAL);
    ck_assert_int_eq(kart_array_create(&a, KART_CT_INT32, 0, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_array_create(&a, KART_CT_INT32, 0, 4, 0x80), -EINVAL);
    ck_assert_int_eq(kart_array_create(&a, KART_CT_INT32, 0, 4, KART_SHARED_ROBUST), -EINVAL);
    ck_assert_int_eq(kart_array_create(&a, KART_CT_INT32, 0, 4, KART_SHARED_TRACK), -EINVAL);
    ck_assert_int_eq(kart_array_create(&a, KART_CT_INT64, 0, SIZE_MAX / 4, 0), -ENOMEM);
    ck_assert_int_eq(kart_array_create_named(NULL, NULL, KART_CT_INT32, 0, 4, 0), -EINVAL);
    ck_assert_int_eq(kart_array_create_named(&a, "bad", KART_CT_INT32, 0, 4, 0), -EINVAL);
    ck_assert_int_eq(kart_array_create_named(&a, NULL, KART_CT_INT32, 0, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_value_create(NULL, KART_CT_INT32, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_value_create(&v, KART_CT_DOUBLE, 4, 0), -EINVAL);
    ck_assert_int_eq(kart_value_create_named(NULL, NULL, KART_CT_INT8, 0, 0), -EINVAL);
    ck_assert_int_eq(kart_value_create_named(&v, "/x/y", KART_CT_INT8, 0, 0), -EINVAL);
    ck_assert_ptr_null(a);
    ck_assert_ptr_null(v);
}
END_TEST

START_TEST(null_handles)
{
    char b[8];
    int64_t i;
    double d;
    kart_array_free(NULL); /* ignored */
    ck_assert_int_eq(kart_array_unlink(NULL), -EINVAL);
    ck_assert_ptr_null(kart_array_name(NULL));
    ck_assert_int_eq(kart_array_len(NULL), 0);
    ck_assert_int_eq(kart_array_type(NULL), 0);
    ck_assert_int_eq(kart_array_elem_size(NULL), 0);
    ck_assert_ptr_null(kart_array_data(NULL));
    ck_assert_ptr_null(kart_array_get_lock(NULL));
    ck_assert_int_eq(kart_array_get(NULL, 0, b), -EINVAL);
    ck_assert_int_eq(kart_array_set(NULL, 0, b), -EINVAL);
    ck_assert_int_eq(kart_array_get_slice(NULL, 0, 1, b), -EINVAL);
    ck_assert_int_eq(kart_array_set_slice(NULL, 0, 1, b), -EINVAL);
    ck_assert_int_eq(kart_array_get_int(NULL, 0, &i), -EINVAL);
    ck_assert_int_eq(kart_array_set_int(NULL, 0, 1), -EINVAL);
    ck_assert_int_eq(kart_array_get_double(NULL, 0, &d), -EINVAL);
    ck_assert_int_eq(kart_array_set_double(NULL, 0, 1), -EINVAL);
    ck_assert_int_eq(kart_array_lock(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_array_unlock(NULL), -EINVAL);
    kart_value_free(NULL); /* ignored */
    ck_assert_int_eq(kart_value_unlink(NULL), -EINVAL);
    ck_assert_ptr_null(kart_value_name(NULL));
    ck_assert_int_eq(kart_value_type(NULL), 0);
    ck_assert_int_eq(kart_value_size(NULL), 0);
    ck_assert_ptr_null(kart_value_data(NULL));
    ck_assert_ptr_null(kart_value_get_lock(NULL));
    ck_assert_int_eq(kart_value_get(NULL, b), -EINVAL);
    ck_assert_int_eq(kart_value_set(NULL, b), -EINVAL);
    ck_assert_int_eq(kart_value_get_int(NULL, &i), -EINVAL);
    ck_assert_int_eq(kart_value_set_int(NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_value_get_double(NULL, &d), -EINVAL);
    ck_assert_int_eq(kart_value_set_double(NULL, 1), -EINVAL);
    ck_assert_int_eq(kart_value_add(NULL, 1, NULL), -EINVAL);
    ck_assert_int_eq(kart_value_lock(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_value_unlock(NULL), -EINVAL);
}
END_TEST

/* ---- typed access ---- */

static const struct {
    kart_ctype type;
    size_t size;
    int64_t lo, hi;
} ints[] = {
    /* clang-format off */
    {KART_CT_INT8, 1, INT8_MIN, INT8_MAX},
    {KART_CT_UINT8, 1, 0, UINT8_MAX},
    {KART_CT_INT16, 2, INT16_MIN, INT16_MAX},
    {KART_CT_UINT16, 2, 0, UINT16_MAX},
    {KART_CT_INT32, 4, INT32_MIN, INT32_MAX},
    {KART_CT_UINT32, 4, 0, UINT32_MAX},
    {KART_CT_INT64, 8, INT64_MIN, INT64_MAX},
    {KART_CT_UINT64, 8, 0, INT64_MAX},
    /* clang-format on */
};

START_TEST(integer_types_and_ranges)
{
    for (size_t t = 0; t < sizeof(ints) / sizeof(ints[0]); t++) {
        for (unsigned locked = 0; locked < 2; locked++) {
            kart_array *a;
            ck_assert_int_eq(kart_array_create(&a, ints[t].type, 0, 3, locked), 0);
            ck_assert_int_eq(kart_array_len(a), 3);
            ck_assert_int_eq(kart_array_type(a), ints[t].type);
            ck_assert_int_eq(kart_array_elem_size(a), ints[t].size);
            ck_assert(locked ? kart_array_get_lock(a) != NULL : kart_array_get_lock(a) == NULL);
            ck_assert_ptr_null(kart_array_name(a));
            ck_assert_int_eq(((uintptr_t)kart_array_data(a)) % 64, 0);
            int64_t x;
            ck_assert_int_eq(kart_array_get_int(a, 2, &x), 0);
            ck_assert_int_eq(x, 0);
            ck_assert_int_eq(kart_array_set_int(a, 0, ints[t].lo), 0);
            ck_assert_int_eq(kart_array_set_int(a, 2, ints[t].hi), 0);
            ck_assert_int_eq(kart_array_get_int(a, 0, &x), 0);
            ck_assert_int_eq(x, ints[t].lo);
            ck_assert_int_eq(kart_array_get_int(a, 2, &x), 0);
            ck_assert_int_eq(x, ints[t].hi);
            if (ints[t].hi < INT64_MAX)
                ck_assert_int_eq(kart_array_set_int(a, 1, ints[t].hi + 1), -ERANGE);
            if (ints[t].lo > INT64_MIN)
                ck_assert_int_eq(kart_array_set_int(a, 1, ints[t].lo - 1), -ERANGE);
            ck_assert_int_eq(kart_array_get_int(a, 1, &x), 0);
            ck_assert_int_eq(x, 0); /* nothing stored */
            ck_assert_int_eq(kart_array_get_int(a, 3, &x), -ERANGE);
            ck_assert_int_eq(kart_array_set_int(a, 3, 0), -ERANGE);
            ck_assert_int_eq(kart_array_get_int(a, 0, NULL), -EINVAL);
            double d;
            ck_assert_int_eq(kart_array_get_double(a, 2, &d), 0);
            ck_assert(d == (double)ints[t].hi);
            ck_assert_int_eq(kart_array_set_double(a, 0, 1.5), -EINVAL);
            kart_array_free(a);
        }
    }
    /* a uint64 above INT64_MAX cannot be read as int64 */
    kart_value *v;
    ck_assert_int_eq(kart_value_create(&v, KART_CT_UINT64, 8, 0), 0);
    uint64_t big = UINT64_MAX;
    ck_assert_int_eq(kart_value_set(v, &big), 0);
    int64_t x;
    ck_assert_int_eq(kart_value_get_int(v, &x), -ERANGE);
    double d;
    ck_assert_int_eq(kart_value_get_double(v, &d), 0);
    ck_assert(d == (double)UINT64_MAX);
    ck_assert_int_eq(kart_value_set_int(v, -1), -ERANGE);
    kart_value_free(v);
}
END_TEST

START_TEST(float_double_and_bytes)
{
    kart_value *f, *d, *b;
    ck_assert_int_eq(kart_value_create(&f, KART_CT_FLOAT, 0, KART_SHARED_LOCK), 0);
    ck_assert_int_eq(kart_value_create(&d, KART_CT_DOUBLE, 8, 0), 0);
    ck_assert_int_eq(kart_value_create(&b, KART_CT_BYTES, 12, KART_SHARED_LOCK), 0);
    ck_assert_int_eq(kart_value_size(f), 4);
    ck_assert_int_eq(kart_value_type(d), KART_CT_DOUBLE);
    ck_assert_int_eq(kart_value_size(b), 12);
    double x;
    ck_assert_int_eq(kart_value_set_double(f, 2.5), 0);
    ck_assert_int_eq(kart_value_get_double(f, &x), 0);
    ck_assert(x == 2.5);
    ck_assert_int_eq(kart_value_set_double(d, 1e300), 0);
    ck_assert_int_eq(kart_value_get_double(d, &x), 0);
    ck_assert(x == 1e300);
    int64_t i;
    ck_assert_int_eq(kart_value_get_int(d, &i), -EINVAL);
    ck_assert_int_eq(kart_value_set_int(f, 1), -EINVAL);
    ck_assert_int_eq(kart_value_add(d, 1, NULL), -EINVAL);
    ck_assert_int_eq(kart_value_set(b, "hello world"), 0);
    char out[12];
    ck_assert_int_eq(kart_value_get(b, out), 0);
    ck_assert_str_eq(out, "hello world");
    ck_assert_str_eq(kart_value_data(b), "hello world");
    ck_assert_int_eq(kart_value_get_double(b, &x), -EINVAL);
    ck_assert_int_eq(kart_value_set_double(b, 1), -EINVAL);
    ck_assert_int_eq(kart_value_get_int(b, &i), -EINVAL);
    ck_assert_int_eq(kart_value_get(b, NULL), -EINVAL);
    ck_assert_int_eq(kart_value_set(b, NULL), -EINVAL);
    kart_value_free(f);
    kart_value_free(d);
    kart_value_free(b);
}
END_TEST

START_TEST(array_get_set_and_slices)
{
    kart_array *a;
    ck_assert_int_eq(kart_array_create(&a, KART_CT_INT32, 0, 10, KART_SHARED_LOCK), 0);
    int32_t in[10], out[10];
    for (int i = 0; i < 10; i++)
        in[i] = i * i;
    ck_assert_int_eq(kart_array_set_slice(a, 0, 10, in), 0);
    ck_assert_int_eq(kart_array_get_slice(a, 3, 6, out), 0);
    ck_assert_int_eq(out[0], 9);
    ck_assert_int_eq(out[2], 25);
    ck_assert_int_eq(kart_array_get_slice(a, 4, 4, NULL), 0); /* empty */
    ck_assert_int_eq(kart_array_get_slice(a, 5, 4, out), -ERANGE);
    ck_assert_int_eq(kart_array_get_slice(a, 0, 11, out), -ERANGE);
    ck_assert_int_eq(kart_array_set_slice(a, 9, 11, in), -ERANGE);
    ck_assert_int_eq(kart_array_get_slice(a, 0, 1, NULL), -EINVAL);
    ck_assert_int_eq(kart_array_set_slice(a, 0, 1, NULL), -EINVAL);
    int32_t one = -7;
    ck_assert_int_eq(kart_array_set(a, 9, &one), 0);
    ck_assert_int_eq(kart_array_set(a, 10, &one), -ERANGE);
    ck_assert_int_eq(kart_array_set(a, 0, NULL), -EINVAL);
    ck_assert_int_eq(kart_array_get(a, 9, &one), 0);
    ck_assert_int_eq(one, -7);
    ck_assert_int_eq(kart_array_get(a, SIZE_MAX, &one), -ERANGE);
    ck_assert_int_eq(kart_array_get(a, 0, NULL), -EINVAL);
    ck_assert_int_eq(((int32_t *)kart_array_data(a))[9], -7);
    double d;
    ck_assert_int_eq(kart_array_get_double(a, 10, &d), -ERANGE);
    kart_array_free(a);
    ck_assert_int_eq(kart_array_create(&a, KART_CT_DOUBLE, 0, 2, 0), 0);
    ck_assert_int_eq(kart_array_set_double(a, 1, -0.25), 0);
    ck_assert_int_eq(kart_array_set_double(a, 2, 1), -ERANGE);
    ck_assert_int_eq(kart_array_get_double(a, 1, &d), 0);
    ck_assert(d == -0.25);
    kart_array_free(a);
}
END_TEST

/* ---- the lock ---- */

START_TEST(lock_errors_and_deadlock)
{
    kart_value *raw, *v;
    ck_assert_int_eq(kart_value_create(&raw, KART_CT_INT64, 0, 0), 0);
    ck_assert_int_eq(kart_value_lock(raw, -1), -EINVAL);
    ck_assert_int_eq(kart_value_unlock(raw), -EINVAL);
    ck_assert_int_eq(kart_value_add(raw, 1, NULL), -EINVAL);
    ck_assert_int_eq(kart_value_create(&v, KART_CT_INT8, 0, KART_SHARED_LOCK), 0);
    ck_assert_int_eq(kart_value_unlock(v), -EPERM);
    ck_assert_int_eq(kart_value_lock(v, -1), 0);
    ck_assert_int_eq(kart_value_lock(v, 0), -EDEADLK);
    ck_assert_int_eq(kart_value_set_int(v, 1), -EDEADLK); /* not a hang */
    ck_assert_int_eq(kart_value_add(v, 1, NULL), -EDEADLK);
    ck_assert_int_eq(((int8_t *)kart_value_data(v))[0], 0);
    ((int8_t *)kart_value_data(v))[0] = 120; /* raw access while held */
    ck_assert_int_eq(kart_value_unlock(v), 0);
    int64_t out;
    ck_assert_int_eq(kart_value_add(v, 7, &out), 0);
    ck_assert_int_eq(out, 127);
    ck_assert_int_eq(kart_value_add(v, 1, &out), -ERANGE);
    ck_assert_int_eq(kart_value_add(v, -256, NULL), -ERANGE);
    ck_assert_int_eq(kart_value_get_int(v, &out), 0);
    ck_assert_int_eq(out, 127);
    kart_array *a;
    ck_assert_int_eq(kart_array_create(&a, KART_CT_UINT8, 0, 2, KART_SHARED_LOCK), 0);
    ck_assert_int_eq(kart_array_lock(a, 0), 0);
    ck_assert_int_eq(kart_array_lock(a, 0), -EDEADLK);
    ck_assert_int_eq(kart_array_unlock(a), 0);
    ck_assert_int_eq(kart_array_unlock(a), -EPERM);
    kart_array_free(a);
    ck_assert_int_eq(kart_array_create(&a, KART_CT_UINT8, 0, 2, 0), 0);
    ck_assert_int_eq(kart_array_lock(a, 0), -EINVAL);
    ck_assert_int_eq(kart_array_unlock(a), -EINVAL);
    kart_array_free(a);
    kart_value_free(raw);
    kart_value_free(v);
}
END_TEST

START_TEST(lock_times_out_while_another_process_holds_it)
{
    kart_value *v;
    ck_assert_int_eq(kart_value_create(&v, KART_CT_INT32, 0, KART_SHARED_LOCK), 0);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        close(p[0]);
        if (kart_value_lock(v, -1) != 0)
            _exit(1);
        (void)!write(p[1], "l", 1);
        usleep(300 * 1000);
        kart_value_unlock(v);
        _exit(0);
    }
    close(p[1]);
    char c;
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    ck_assert_int_eq(kart_value_lock(v, 0), -ETIMEDOUT);
    ck_assert_int_eq(kart_value_lock(v, 10 * KT_MS), -ETIMEDOUT);
    ck_assert_int_eq(kart_value_set_int(v, 5), 0); /* waits for the child */
    reap_ok(pid);
    kart_value_free(v);
    close(p[0]);
}
END_TEST

START_TEST(robust_lock_survives_a_dead_holder)
{
    kart_value *v, *w;
    ck_assert_int_eq(kart_value_create(&v, KART_CT_INT32, 0, KART_SHARED_LOCK | KART_SHARED_ROBUST),
                     0);
    ck_assert_int_eq(kart_value_create(&w, KART_CT_INT32, 0, KART_SHARED_LOCK | KART_SHARED_ROBUST),
                     0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        if (kart_value_lock(v, -1) != 0 || kart_value_lock(w, -1) != 0)
            _exit(1);
        _exit(0); /* dies holding both */
    }
    reap_ok(pid);
    ck_assert_int_eq(kart_value_consistent(v), -EPERM); /* not held by us */
    ck_assert_int_eq(kart_value_lock(v, -1), -EOWNERDEAD);
    ck_assert_int_eq(kart_value_consistent(v), 0);
    ck_assert_int_eq(kart_value_consistent(v), -EINVAL); /* consistent now */
    ck_assert_int_eq(kart_value_unlock(v), 0);
    ck_assert_int_eq(kart_value_set_int(v, 3), 0);
    /* A set reports the dead holder instead of writing: nothing stored,
     * the caller holds the lock and recovers it explicitly. */
    ck_assert_int_eq(kart_value_set_int(w, 9), -EOWNERDEAD);
    ck_assert_int_eq(kart_lock_held_by_me(kart_value_get_lock(w)), 1);
    ck_assert_int_eq(((int32_t *)kart_value_data(w))[0], 0);
    ((int32_t *)kart_value_data(w))[0] = 4; /* the repair */
    ck_assert_int_eq(kart_value_consistent(w), 0);
    ck_assert_int_eq(kart_value_unlock(w), 0);
    int64_t x;
    ck_assert_int_eq(kart_value_get_int(w, &x), 0);
    ck_assert_int_eq(x, 4);
    kart_value_free(v);
    kart_value_free(w);
}
END_TEST

/* Issue 16: kart_value_add used to take over a dead holder silently. It
 * reports -EOWNERDEAD; unlocking without kart_value_consistent bricks the
 * Value for every process (-ENOTRECOVERABLE), as shared.h says. */
START_TEST(add_reports_a_dead_holder_and_unlock_without_consistent_bricks)
{
    kart_value *v, *u;
    unsigned f = KART_SHARED_LOCK | KART_SHARED_ROBUST;
    ck_assert_int_eq(kart_value_create(&v, KART_CT_INT64, 0, f), 0);
    ck_assert_int_eq(kart_value_create(&u, KART_CT_INT64, 0, f), 0);
    pid_t pid = kt_fork();
    if (pid == 0)
        _exit(kart_value_lock(v, -1) || kart_value_lock(u, -1)); /* dies holding */
    reap_ok(pid);
    int64_t out = -1;
    ck_assert_int_eq(kart_value_add(v, 5, &out), -EOWNERDEAD);
    ck_assert_int_eq(out, -1); /* nothing added, nothing written */
    ck_assert_int_eq(((int64_t *)kart_value_data(v))[0], 0);
    ck_assert_int_eq(kart_value_consistent(v), 0);
    ck_assert_int_eq(kart_value_unlock(v), 0);
    ck_assert_int_eq(kart_value_add(v, 5, &out), 0);
    ck_assert_int_eq(out, 5);

    /* The other one: unlocked without kart_value_consistent. */
    ck_assert_int_eq(kart_value_add(u, 1, NULL), -EOWNERDEAD);
    ck_assert_int_eq(kart_value_unlock(u), 0);
    ck_assert_int_eq(kart_value_add(u, 1, NULL), -ENOTRECOVERABLE);
    ck_assert_int_eq(kart_value_lock(u, -1), -ENOTRECOVERABLE);
    ck_assert_int_eq(kart_value_get_int(u, &out), -ENOTRECOVERABLE);
    pid = kt_fork();
    if (pid == 0)
        _exit(kart_value_set_int(u, 2) == -ENOTRECOVERABLE ? 0 : 1);
    reap_ok(pid);
    kart_value_free(v);
    kart_value_free(u);
}
END_TEST

/* get, slices and copy report a dead holder too, and leave the lock held. */
START_TEST(array_calls_report_a_dead_holder)
{
    kart_array *a, *c;
    ck_assert_int_eq(
        kart_array_create(&a, KART_CT_INT32, 0, 4, KART_SHARED_LOCK | KART_SHARED_ROBUST), 0);
    ck_assert_int_eq(kart_array_set_int(a, 2, 7), 0);
    for (int step = 0; step < 3; step++) {
        pid_t pid = kt_fork();
        if (pid == 0)
            _exit(kart_array_lock(a, -1) != 0);
        reap_ok(pid);
        int32_t buf[4];
        int64_t x;
        if (step == 0)
            ck_assert_int_eq(kart_array_get_int(a, 2, &x), -EOWNERDEAD);
        else if (step == 1)
            ck_assert_int_eq(kart_array_get_slice(a, 0, 4, buf), -EOWNERDEAD);
        else
            ck_assert_int_eq(kart_array_copy(&c, a), -EOWNERDEAD);
        ck_assert_int_eq(kart_array_consistent(a), 0);
        ck_assert_int_eq(kart_array_unlock(a), 0);
    }
    ck_assert_int_eq(kart_array_consistent(NULL), -EINVAL);
    kart_array *raw;
    ck_assert_int_eq(kart_array_create(&raw, KART_CT_INT32, 0, 4, 0), 0);
    ck_assert_int_eq(kart_array_consistent(raw), -EINVAL); /* no lock */
    kart_array_free(raw);
    kart_array_free(a);
}
END_TEST

/* ---- an existing lock, synchronized(), copy() ---- */

START_TEST(one_lock_for_two_objects)
{
    kart_value *owner, *v;
    kart_array *a;
    ck_assert_int_eq(kart_value_create(&owner, KART_CT_INT32, 0, KART_SHARED_LOCK), 0);
    kart_lock *l = kart_value_get_lock(owner);
    ck_assert_int_eq(kart_value_create_with_lock(NULL, KART_CT_INT32, 0, l), -EINVAL);
    ck_assert_int_eq(kart_value_create_with_lock(&v, KART_CT_INT32, 0, NULL), -EINVAL);
    ck_assert_int_eq(kart_value_create_with_lock(&v, 99, 0, l), -EINVAL);
    ck_assert_int_eq(kart_array_create_with_lock(&a, KART_CT_INT8, 0, 0, l), -EINVAL);
    ck_assert_int_eq(kart_array_create_with_lock(&a, KART_CT_INT8, 0, 4, NULL), -EINVAL);
    ck_assert_int_eq(kart_value_create_with_lock(&v, KART_CT_INT64, 0, l), 0);
    ck_assert_int_eq(kart_array_create_with_lock(&a, KART_CT_INT8, 0, 4, l), 0);
    ck_assert_ptr_eq(kart_value_get_lock(v), l);
    ck_assert_ptr_eq(kart_array_get_lock(a), l);
    /* Holding it through one object guards the others. */
    ck_assert_int_eq(kart_array_lock(a, -1), 0);
    ck_assert_int_eq(kart_value_set_int(v, 1), -EDEADLK);
    ck_assert_int_eq(kart_value_set_int(owner, 1), -EDEADLK);
    ck_assert_int_eq(kart_value_unlock(v), 0);
    /* Between processes: two children add to both under the one lock. */
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = kt_fork();
        if (kids[k] == 0) {
            for (int i = 0; i < 2000; i++) {
                if (kart_value_lock(v, -1))
                    _exit(1);
                ((int64_t *)kart_value_data(v))[0]++;
                ((int8_t *)kart_array_data(a))[1] = (int8_t)(i & 63);
                kart_value_unlock(v);
            }
            _exit(0);
        }
    }
    reap_ok(kids[0]);
    reap_ok(kids[1]);
    int64_t x;
    ck_assert_int_eq(kart_value_get_int(v, &x), 0);
    ck_assert_int_eq(x, 4000);
    kart_value_free(v);
    kart_array_free(a);
    /* The lock outlives them: freeing them left it alone. */
    ck_assert_int_eq(kart_value_add(owner, 2, &x), 0);
    ck_assert_int_eq(x, 2);
    kart_value_free(owner);
}
END_TEST

START_TEST(synchronized_wraps_a_raw_object)
{
    kart_array *raw, *s, *s2;
    ck_assert_int_eq(kart_array_create(&raw, KART_CT_INT32, 0, 3, 0), 0);
    ck_assert_ptr_null(kart_array_get_lock(raw));
    ck_assert_int_eq(kart_array_synchronized(NULL, raw, NULL), -EINVAL);
    ck_assert_int_eq(kart_array_synchronized(&s, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_array_synchronized(&s, raw, NULL), 0);
    ck_assert_int_eq(kart_array_synchronized(&s2, s, NULL), -EINVAL); /* has a lock */
    ck_assert_ptr_nonnull(kart_array_get_lock(s));
    ck_assert_ptr_null(kart_array_get_lock(raw)); /* raw stays raw */
    ck_assert_ptr_eq(kart_array_data(s), kart_array_data(raw));
    ck_assert_uint_eq(kart_array_len(s), 3);
    ck_assert_int_eq(kart_array_type(s), KART_CT_INT32);
    ck_assert_int_eq(kart_array_set_int(s, 1, 42), 0);
    int64_t x;
    ck_assert_int_eq(kart_array_get_int(raw, 1, &x), 0);
    ck_assert_int_eq(x, 42);
    /* Its new lock is shared with fork children made afterwards. */
    ck_assert_int_eq(kart_array_lock(s, -1), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        int r = kart_array_lock(s, 20 * KT_MS);
        _exit(r == -ETIMEDOUT || r == -EBUSY ? 0 : 1);
    }
    reap_ok(pid);
    ck_assert_int_eq(kart_array_unlock(s), 0);
    /* Either handle may go first: the bytes stay while one maps them. */
    kart_array_free(raw);
    ck_assert_int_eq(kart_array_get_int(s, 1, &x), 0);
    ck_assert_int_eq(x, 42);
    kart_array_free(s);

    /* With a lock of the caller's; a Value. */
    kart_value *owner, *vr, *vs;
    ck_assert_int_eq(kart_value_create(&owner, KART_CT_INT8, 0, KART_SHARED_LOCK), 0);
    ck_assert_int_eq(kart_value_create(&vr, KART_CT_DOUBLE, 0, 0), 0);
    ck_assert_int_eq(kart_value_synchronized(NULL, vr, NULL), -EINVAL);
    ck_assert_int_eq(kart_value_synchronized(&vs, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_value_synchronized(&vs, owner, NULL), -EINVAL);
    ck_assert_int_eq(kart_value_synchronized(&vs, vr, kart_value_get_lock(owner)), 0);
    ck_assert_ptr_eq(kart_value_get_lock(vs), kart_value_get_lock(owner));
    ck_assert_int_eq(kart_value_set_double(vs, 2.5), 0);
    double d;
    ck_assert_int_eq(kart_value_get_double(vr, &d), 0);
    ck_assert(d == 2.5);
    kart_value_free(vs);
    kart_value_free(vr);
    kart_value_free(owner);

    /* A named raw array: the synchronized handle keeps its name. */
    const char *name = tname("sync");
    kart_array *n, *ns;
    ck_assert_int_eq(kart_array_create_named(&n, name, KART_CT_UINT8, 0, 8, 0), 0);
    ck_assert_int_eq(kart_array_synchronized(&ns, n, NULL), 0);
    ck_assert_str_eq(kart_array_name(ns), name);
    kart_array_free(n);
    ck_assert_int_eq(kart_array_unlink(ns), 0);
    kart_array_free(ns);
}
END_TEST

START_TEST(copy_makes_a_raw_copy)
{
    kart_array *a, *c;
    ck_assert_int_eq(kart_array_create(&a, KART_CT_BYTES, 5, 2, KART_SHARED_LOCK), 0);
    ck_assert_int_eq(kart_array_set(a, 1, "hello"), 0);
    ck_assert_int_eq(kart_array_copy(NULL, a), -EINVAL);
    ck_assert_int_eq(kart_array_copy(&c, NULL), -EINVAL);
    ck_assert_int_eq(kart_array_copy(&c, a), 0);
    ck_assert_ptr_null(kart_array_get_lock(c));
    ck_assert_ptr_null(kart_array_name(c));
    ck_assert_uint_eq(kart_array_len(c), 2);
    ck_assert_uint_eq(kart_array_elem_size(c), 5);
    ck_assert_ptr_ne(kart_array_data(c), kart_array_data(a));
    ck_assert_mem_eq((char *)kart_array_data(c) + 5, "hello", 5);
    ck_assert_int_eq(kart_array_set(a, 1, "world"), 0); /* independent */
    ck_assert_mem_eq((char *)kart_array_data(c) + 5, "hello", 5);
    /* Read under the source's lock: held by the caller, -EDEADLK. */
    kart_array *c2 = NULL;
    ck_assert_int_eq(kart_array_lock(a, -1), 0);
    ck_assert_int_eq(kart_array_copy(&c2, a), -EDEADLK);
    ck_assert_ptr_null(c2);
    ck_assert_int_eq(kart_array_unlock(a), 0);
    kart_array_free(c);
    kart_array_free(a);

    kart_value *v, *vc;
    ck_assert_int_eq(kart_value_create(&v, KART_CT_UINT16, 0, 0), 0);
    ck_assert_int_eq(kart_value_set_int(v, 65535), 0);
    ck_assert_int_eq(kart_value_copy(NULL, v), -EINVAL);
    ck_assert_int_eq(kart_value_copy(&vc, NULL), -EINVAL);
    ck_assert_int_eq(kart_value_copy(&vc, v), 0);
    int64_t x;
    ck_assert_int_eq(kart_value_get_int(vc, &x), 0);
    ck_assert_int_eq(x, 65535);
    ck_assert_int_eq(kart_value_type(vc), KART_CT_UINT16);
    kart_value_free(v);
    kart_value_free(vc);
}
END_TEST

enum { WORKERS = 4, ROUNDS = 5000 };

START_TEST(counter_across_fork_loses_no_update)
{
    kart_value *v;
    ck_assert_int_eq(kart_value_create(&v, KART_CT_INT64, 0, KART_SHARED_LOCK), 0);
    kart_array *a;
    ck_assert_int_eq(kart_array_create(&a, KART_CT_UINT32, 0, WORKERS, 0), 0);
    pid_t pids[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = kt_fork();
        if (pids[w] == 0) {
            for (int i = 0; i < ROUNDS; i++) {
                if (kart_value_add(v, 1, NULL) != 0)
                    _exit(1);
                /* each child owns one raw slot */
                if (kart_array_set_int(a, (size_t)w, i + 1) != 0)
                    _exit(2);
            }
            kart_value_free(v);
            kart_array_free(a);
            _exit(0);
        }
    }
    for (int w = 0; w < WORKERS; w++)
        reap_ok(pids[w]);
    int64_t x;
    ck_assert_int_eq(kart_value_get_int(v, &x), 0);
    ck_assert_int_eq(x, WORKERS * ROUNDS);
    for (int w = 0; w < WORKERS; w++) {
        ck_assert_int_eq(kart_array_get_int(a, (size_t)w, &x), 0);
        ck_assert_int_eq(x, ROUNDS);
    }
    kart_value_free(v);
    kart_array_free(a);
}
END_TEST

static void *bump(void *arg)
{
    kart_array *a = arg;
    for (int i = 0; i < ROUNDS; i++) {
        /* read-modify-write under the array's lock, raw access inside */
        if (kart_array_lock(a, -1) != 0)
            return (void *)1;
        ((int64_t *)kart_array_data(a))[1]++;
        kart_array_unlock(a);
    }
    return NULL;
}

START_TEST(counter_across_threads_loses_no_update)
{
    kart_array *a;
    ck_assert_int_eq(kart_array_create(&a, KART_CT_INT64, 0, 2, KART_SHARED_LOCK), 0);
    pthread_t t[WORKERS];
    for (int w = 0; w < WORKERS; w++)
        ck_assert_int_eq(pthread_create(&t[w], NULL, bump, a), 0);
    for (int w = 0; w < WORKERS; w++) {
        void *r;
        ck_assert_int_eq(pthread_join(t[w], &r), 0);
        ck_assert_ptr_null(r);
    }
    int64_t x;
    ck_assert_int_eq(kart_array_get_int(a, 1, &x), 0);
    ck_assert_int_eq(x, WORKERS * ROUNDS);
    kart_array_free(a);
}
END_TEST

/* ---- named ---- */

START_TEST(named_array_attached_by_name)
{
    const char *n = tname("arr");
    kart_array *a;
    ck_assert_int_eq(kart_array_create_named(&a, n, KART_CT_BYTES, 5, 3, KART_SHARED_LOCK), 0);
    ck_assert_str_eq(kart_array_name(a), n);
    ck_assert_int_eq(kart_array_set(a, 2, "abcd"), 0);
    pid_t pid = kt_fork();
    if (pid == 0) {
        kart_array *c;
        char e[5];
        int ok = kart_array_attach(&c, n, 0) == 0 && kart_array_len(c) == 3 &&
                 kart_array_type(c) == KART_CT_BYTES && kart_array_elem_size(c) == 5 &&
                 kart_array_get_lock(c) != NULL && kart_array_get(c, 2, e) == 0 &&
                 strcmp(e, "abcd") == 0 && kart_array_set(c, 0, "kid!") == 0;
        if (ok)
            kart_array_free(c);
        _exit(ok ? 0 : 1);
    }
    reap_ok(pid);
    char e[5];
    ck_assert_int_eq(kart_array_get(a, 0, e), 0);
    ck_assert_str_eq(e, "kid!");
    kart_value *v;
    ck_assert_int_eq(kart_value_attach(&v, n, 0), -EPROTO); /* 3 elements */
    ck_assert_int_eq(kart_array_unlink(a), 0);
    ck_assert_int_eq(kart_array_unlink(a), -ENOENT);
    kart_array_free(a);
    ck_assert_int_eq(kart_array_attach(&a, n, 0), -ENOENT);
}
END_TEST

START_TEST(named_value_generated_name_and_tracking)
{
    kart_value *v, *w;
    ck_assert_int_eq(
        kart_value_create_named(&v, NULL, KART_CT_DOUBLE, 0, KART_SHARED_LOCK | KART_SHARED_TRACK),
        0);
    const char *n = kart_value_name(v);
    ck_assert_ptr_nonnull(n);
    ck_assert_int_gt(kart_shm_tracker_pid(), 0);
    ck_assert_int_eq(kart_value_set_double(v, 3.25), 0);
    ck_assert_int_eq(kart_value_attach(&w, n, 0), 0);
    double d;
    ck_assert_int_eq(kart_value_get_double(w, &d), 0);
    ck_assert(d == 3.25);
    ck_assert_int_eq(kart_value_attach(NULL, n, 0), -EINVAL);
    ck_assert_int_eq(kart_value_attach(&w, n, 1), -EINVAL);
    ck_assert_int_eq(kart_value_unlink(w), 0);
    kart_value_free(w);
    ck_assert_int_eq(kart_value_unlink(v), -ENOENT);
    kart_value_free(v);
    kart_value *anon;
    ck_assert_int_eq(kart_value_create(&anon, KART_CT_INT8, 0, 0), 0);
    ck_assert_int_eq(kart_value_unlink(anon), -EINVAL);
    kart_value_free(anon);
}
END_TEST

START_TEST(attach_refuses_foreign_segments)
{
    kart_array *a;
    kart_shm *s;
    const char *n = tname("foreign");
    ck_assert_int_eq(kart_array_attach(NULL, n, 0), -EINVAL);
    ck_assert_int_eq(kart_array_attach(&a, n, 0x1), -EINVAL);
    /* too small for a header */
    ck_assert_int_eq(kart_shm_create(&s, n, 8, 0), 0);
    ck_assert_int_eq(kart_array_attach(&a, n, 0), -EPROTO);
    ck_assert_int_eq(kart_shm_unlink(s), 0);
    ck_assert_int_eq(kart_shm_close(s), 0);
    /* zeros: a creator that has not finished */
    ck_assert_int_eq(kart_shm_create(&s, n, 4096, 0), 0);
    ck_assert_int_eq(kart_array_attach(&a, n, 0), -EAGAIN);
    /* garbage */
    memset(kart_shm_addr(s), 0x5a, 4096);
    ck_assert_int_eq(kart_array_attach(&a, n, 0), -EPROTO);
    ck_assert_int_eq(kart_shm_unlink(s), 0);
    ck_assert_int_eq(kart_shm_close(s), 0);
    /* a header that claims more than the segment holds */
    kart_array *big;
    ck_assert_int_eq(kart_array_create_named(&big, n, KART_CT_INT64, 0, 1000, 0), 0);
    kart_shm *t;
    const char *n2 = tname("short");
    ck_assert_int_eq(kart_shm_create(&t, n2, 256, 0), 0);
    kart_shm *view;
    ck_assert_int_eq(kart_shm_attach(&view, n, 0), 0);
    memcpy(kart_shm_addr(t), kart_shm_addr(view), 256);
    ck_assert_int_eq(kart_array_attach(&a, n2, 0), -EPROTO);
    ck_assert_int_eq(kart_shm_close(view), 0);
    ck_assert_int_eq(kart_shm_unlink(t), 0);
    ck_assert_int_eq(kart_shm_close(t), 0);
    ck_assert_int_eq(kart_array_unlink(big), 0);
    kart_array_free(big);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shm_shared");
    TCase *tc = tcase_create("create");
    tcase_add_test(tc, create_rejects_bad_arguments);
    tcase_add_test(tc, null_handles);
    suite_add_tcase(s, tc);

    tc = tcase_create("access");
    tcase_add_test(tc, integer_types_and_ranges);
    tcase_add_test(tc, float_double_and_bytes);
    tcase_add_test(tc, array_get_set_and_slices);
    suite_add_tcase(s, tc);

    tc = tcase_create("lock");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, lock_errors_and_deadlock);
    tcase_add_test(tc, lock_times_out_while_another_process_holds_it);
    tcase_add_test(tc, robust_lock_survives_a_dead_holder);
    tcase_add_test(tc, add_reports_a_dead_holder_and_unlock_without_consistent_bricks);
    tcase_add_test(tc, array_calls_report_a_dead_holder);
    tcase_add_test(tc, one_lock_for_two_objects);
    tcase_add_test(tc, synchronized_wraps_a_raw_object);
    tcase_add_test(tc, copy_makes_a_raw_copy);
    tcase_add_test(tc, counter_across_fork_loses_no_update);
    tcase_add_test(tc, counter_across_threads_loses_no_update);
    suite_add_tcase(s, tc);

    tc = tcase_create("named");
    tcase_add_test(tc, named_array_attached_by_name);
    tcase_add_test(tc, named_value_generated_name_and_tracking);
    tcase_add_test(tc, attach_refuses_foreign_segments);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: kart/queue.h — queues made under a start method's context
 * (Python's ctx.Queue()): under spawn and forkserver a queue lives in a
 * memfd that a child receives through kart_process_options.fds and maps
 * with kart_queue_from_fd; messages both ways, the fd's ownership, and
 * the errors. */
#include "testutil.h"
#include "kt_fds.h"

#include <sys/mman.h>

static const kart_context *ctx_of(int i)
{
    static const kart_start_method m[] = {KART_START_FORK, KART_START_SPAWN, KART_START_FORKSERVER};
    const kart_context *ctx;
    ck_assert_int_eq(kart_context_get(m[i], &ctx), 0);
    return ctx;
}

/* Echoes the parent's message back with a prefix, through the queues
 * whose fds it is told (the same queue both ways here). */
static int echo_child(void *arg)
{
    int fd;
    memcpy(&fd, arg, sizeof(fd));
    kart_queue *q;
    if (kart_queue_from_fd(&q, fd) != 0)
        return 1;
    if (kart_queue_fd(q) != fd) /* kept: it has the creator's number */
        return 2;
    char buf[64] = "child:";
    size_t len;
    if (kart_queue_get(q, buf + 6, sizeof(buf) - 6, &len, 10000 * KT_MS) != 0)
        return 3;
    if (kart_queue_put(q, buf, len + 6, 10000 * KT_MS) != 0)
        return 4;
    kart_queue_free(q);
    return 0;
}
KART_PROCESS_FUNCTION(echo_child)

START_TEST(queue_shared_with_a_child)
{
    int before = kt_open_fds();
    kart_queue *q;
    kart_queue_options o = {.capacity = 4096, .context = ctx_of(_i)};
    ck_assert_int_eq(kart_queue_create(&q, &o), 0);
    int fd = kart_queue_fd(q);
    if (_i == 0) {
        ck_assert_int_eq(fd, -ENOTSUP); /* fork: inherited as a mapping */
        kart_queue_free(q);
        return;
    }
    ck_assert_int_ge(fd, 0);
    kart_process_options po = {
        .context = ctx_of(_i), .arg_size = sizeof(fd), .fds = &fd, .nfds = 1};
    kart_process *p;
    ck_assert_int_eq(kart_process_create(&p, echo_child, &fd, &po), 0);
    ck_assert_int_eq(kart_process_start(p), 0);
    ck_assert_int_eq(kart_queue_put(q, "ping", 4, 1000 * KT_MS), 0);
    ck_assert_int_eq(kart_process_join(p, 20000 * KT_MS), 0);
    int code = -1;
    ck_assert_int_eq(kart_process_exitcode(p, &code), 1);
    ck_assert_int_eq(code, 0);
    kart_process_free(p);
    char buf[64];
    size_t len;
    ck_assert_int_eq(kart_queue_get(q, buf, sizeof(buf), &len, 1000 * KT_MS), 0);
    ck_assert_uint_eq(len, 10);
    ck_assert_mem_eq(buf, "child:ping", 10);
    int held = kt_open_fds(); /* (the fork server's socket stays) */
    kart_queue_free(q);
    ck_assert_int_eq(kt_open_fds(), held - 1); /* free closed the memfd */
    if (_i == 1)
        ck_assert_int_eq(held - 1, before);
}
END_TEST

/* The default start method picks the memfd too. */
START_TEST(default_method_spawn)
{
    ck_assert_int_eq(kart_process_set_start_method(KART_START_SPAWN), 0);
    kart_queue *q;
    ck_assert_int_eq(kart_queue_create(&q, NULL), 0);
    ck_assert_int_ge(kart_queue_fd(q), 0);
    kart_queue_free(q);
    ck_assert_int_eq(kart_process_set_start_method(KART_START_FORK), 0);
    ck_assert_int_eq(kart_queue_create(&q, NULL), 0);
    ck_assert_int_eq(kart_queue_fd(q), -ENOTSUP);
    kart_queue_free(q);
}
END_TEST

START_TEST(from_fd_in_the_same_process)
{
    kart_queue *q, *q2;
    kart_queue_options o = {.capacity = 4096, .context = ctx_of(1)};
    ck_assert_int_eq(kart_queue_create(&q, &o), 0);
    /* Another number: taken and closed at once; the mapping is enough. */
    int other = dup(kart_queue_fd(q));
    ck_assert_int_ge(other, 0);
    int before = kt_open_fds();
    ck_assert_int_eq(kart_queue_from_fd(&q2, other), 0);
    ck_assert_int_eq(kt_open_fds(), before - 1);
    ck_assert_int_eq(kart_queue_put(q2, "x", 1, 0), 0);
    char c;
    size_t len;
    ck_assert_int_eq(kart_queue_get(q, &c, 1, &len, 0), 0);
    ck_assert_int_eq(c, 'x');
    kart_queue_free(q2);
    kart_queue_free(q);
}
END_TEST

START_TEST(fd_errors)
{
    kart_queue *q = NULL;
    ck_assert_int_eq(kart_queue_fd(NULL), -EINVAL);
    ck_assert_int_eq(kart_queue_from_fd(NULL, 0), -EINVAL);
    ck_assert_int_eq(kart_queue_from_fd(&q, -1), -EINVAL);
    int closed = dup(1);
    close(closed);
    ck_assert_int_eq(kart_queue_from_fd(&q, closed), -EBADF);
    /* A memfd that is no queue, and a pipe: -EINVAL, and kept. */
    int mfd = memfd_create("not-a-queue", MFD_CLOEXEC);
    ck_assert_int_ge(mfd, 0);
    ck_assert_int_eq(ftruncate(mfd, 65536), 0);
    ck_assert_int_eq(kart_queue_from_fd(&q, mfd), -EAGAIN); /* zeros: not set up yet */
    ck_assert_int_eq(pwrite(mfd, "garbage!", 8, 0), 8);
    ck_assert_int_eq(kart_queue_from_fd(&q, mfd), -EINVAL);
    ck_assert_int_eq(fcntl(mfd, F_GETFD) >= 0, 1);
    close(mfd);
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    ck_assert_int_eq(kart_queue_from_fd(&q, pfd[0]), -EINVAL);
    close(pfd[0]);
    close(pfd[1]);
    ck_assert_ptr_null(q);
    /* A named queue and a fork-context one have no fd to hand out. */
    kart_queue_options o = {
        .capacity = 4096, .name = "/kart-check-queue-ctx", .context = ctx_of(1)};
    kart_queue_unlink(o.name);
    ck_assert_int_eq(kart_queue_create(&q, &o), 0);
    ck_assert_int_eq(kart_queue_fd(q), -ENOTSUP);
    kart_queue_free(q);
    kart_queue_unlink(o.name);
    /* The number reused by another file in this process: -EBADF. */
    o = (kart_queue_options){.capacity = 4096, .context = ctx_of(2)};
    ck_assert_int_eq(kart_queue_create(&q, &o), 0);
    int fd = kart_queue_fd(q);
    ck_assert_int_ge(fd, 0);
    int saved = dup(fd);
    int devnull = open("/dev/null", O_RDONLY);
    ck_assert_int_eq(dup2(devnull, fd), fd);
    close(devnull);
    ck_assert_int_eq(kart_queue_fd(q), -EBADF);
    kart_queue_free(q); /* leaves that other file open */
    ck_assert_int_eq(fcntl(fd, F_GETFD) >= 0, 1);
    close(fd);
    close(saved);
}
END_TEST

static Suite *queue_ctx_suite(void)
{
    Suite *s = suite_create("queue-ctx");
    TCase *tc = tcase_create("ctx");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, queue_shared_with_a_child, 0, 3);
    tcase_add_test(tc, default_method_spawn);
    tcase_add_test(tc, from_fd_in_the_same_process);
    tcase_add_test(tc, fd_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kt_run(queue_ctx_suite());
}

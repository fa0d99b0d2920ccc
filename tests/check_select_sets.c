/* Description: kart_select's three sets, where make mutate found two
 * behaviours no suite looked at: an fd counts as readable on hang-up, as
 * select(2) does and selector.h says (the read end of a pipe whose writer
 * closed: poll reports POLLHUP alone there, no POLLIN); and the except set
 * reports priority data (TCP urgent data) while the write set is not empty
 * too, each set read from its own entries. */
#include "testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

START_TEST(a_pipe_whose_writer_closed_is_readable)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    int r[1] = {p[0]};
    size_t nr = 1;
    /* Open writer, nothing written: not ready. */
    ck_assert_int_eq(kart_select(r, &nr, NULL, NULL, NULL, NULL, 0), 0);
    ck_assert_uint_eq(nr, 0);
    close(p[1]);
    r[0] = p[0];
    nr = 1;
    ck_assert_int_eq(kart_select(r, &nr, NULL, NULL, NULL, NULL, 1000 * KT_MS), 1);
    ck_assert_uint_eq(nr, 1);
    ck_assert_int_eq(r[0], p[0]);
    char c;
    ck_assert_int_eq(read(p[0], &c, 1), 0);
    close(p[0]);
}
END_TEST

/* A connected TCP pair over loopback: *a connects, *b is accepted. */
static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(l, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(connect(*a, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(*b, 0);
    close(l);
}

START_TEST(urgent_data_is_reported_beside_a_write_set)
{
    int a, b;
    tcp_pair(&a, &b);
    ck_assert_int_eq(send(a, "!", 1, MSG_OOB), 1);
    /* Both sets given: a (writable) to write, b (urgent data) for
     * exceptions; each must be read from its own poll entry. */
    int w[1] = {a}, x[1] = {b};
    size_t nw = 1, nx = 1;
    int64_t end = kart_now_ns() + 2000 * KT_MS;
    int r;
    while ((r = kart_select(NULL, NULL, w, &nw, x, &nx, 100 * KT_MS)) >= 0 && nx == 0 &&
           kart_now_ns() < end) {
        w[0] = a, x[0] = b, nw = 1, nx = 1; /* the urgent byte is on its way */
    }
    ck_assert_int_eq(r, 2);
    ck_assert_uint_eq(nw, 1);
    ck_assert_uint_eq(nx, 1);
    ck_assert_int_eq(x[0], b);
    close(a);
    close(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("select_sets");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, a_pipe_whose_writer_closed_is_readable);
    tcase_add_test(tc, urgent_data_is_reported_beside_a_write_set);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

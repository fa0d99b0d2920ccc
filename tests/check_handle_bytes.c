/* Description: kart_unix_recv_fd refuses a message that carries one fd but
 * not the byte Python's sendfds writes with it (len(fds) % 256, 1 for one
 * handle): -EPROTO, and the fd it carried is closed, not leaked. (make
 * mutate: with the byte unchecked, every suite passed.) */
#include "testutil.h"

#include <fcntl.h>
#include <sys/socket.h>

/* Sends fd over sock with `byte` as the one data byte, as sendmsg(2)
 * would from a peer that is not kart. */
static void send_fd_with_byte(int sock, int fd, char byte)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ck_assert_int_eq(sendmsg(sock, &msg, 0), 1);
}

static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

START_TEST(a_wrong_marker_byte_is_refused_and_its_fd_closed)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    static const char bytes[] = {0, 2, 'x'};
    for (size_t i = 0; i < sizeof(bytes); i++) {
        send_fd_with_byte(sv[0], p[0], bytes[i]);
        int before = open_fds(), fd = -1;
        ck_assert_int_eq(kart_unix_recv_fd(sv[1], &fd), -EPROTO);
        ck_assert_int_eq(fd, -1);
        ck_assert_int_eq(open_fds(), before); /* the fd that came was closed */
    }
    /* The right byte still passes it. */
    send_fd_with_byte(sv[0], p[0], 1);
    int fd = -1;
    ck_assert_int_eq(kart_unix_recv_fd(sv[1], &fd), 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(p[1], "k", 1), 1);
    char c;
    ck_assert_int_eq(read(fd, &c, 1), 1);
    ck_assert_int_eq(c, 'k');
    close(fd);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("handle_bytes");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, a_wrong_marker_byte_is_refused_and_its_fd_closed);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

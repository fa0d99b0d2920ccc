/* Description: the epoll backend's generation (compat/epoll.c keeps each
 * registration's generation in the event's data): an fd closed while
 * registered, whose file another descriptor keeps open, stays in the epoll
 * set (epoll watches the file, and EPOLL_CTL_DEL can no longer name it), so
 * its events keep coming with the old fd number. Once that number is
 * registered again for another file, those events must not be reported as
 * the new registration's: only its generation tells them apart. (make
 * mutate: with the generation dropped from epoll's events, every suite
 * passed; check_selector's fd-reuse case unregisters before closing, which
 * removes the old entry, so no old event is left to confuse.) */
#include "testutil.h"

START_TEST(epoll_event_of_an_old_file_is_not_the_reused_numbers)
{
    kart_selector *s = NULL;
    kart_selector_options o = {.backend = "epoll"};
    ck_assert_int_eq(kart_selector_create(&s, &o), 0);
    ck_assert_str_eq(kart_selector_backend(s), "epoll");
    int old_tag, new_tag;
    int sv[2], p[2];
    kt_socketpair(sv);
    int keep = dup(sv[0]); /* keeps the old file, and so its epoll entry, alive */
    ck_assert_int_ge(keep, 0);
    ck_assert_int_eq(kart_selector_register(s, sv[0], KART_READABLE, &old_tag), 0);
    int num = sv[0];
    close(sv[0]); /* before unregistering: the entry outlives the number */
    ck_assert_int_eq(kart_selector_unregister(s, num), 0);
    /* The same number, another file. */
    kt_pipe(p);
    if (p[0] != num) {
        ck_assert_int_eq(dup2(p[0], num), num);
        close(p[0]);
        p[0] = num;
    }
    ck_assert_int_eq(kart_selector_register(s, p[0], KART_READABLE, &new_tag), 0);
    /* The old file becomes readable: its entry fires with the number and
     * the old generation, and the new registration hears nothing. */
    kt_write(sv[1], "old");
    kart_event ev[8];
    ck_assert_int_eq(kart_selector_wait(s, ev, 8, 100 * KT_MS), 0);
    /* The new file's own readiness is reported, for the new registration. */
    kt_write(p[1], "new");
    ck_assert_int_eq(kart_selector_wait(s, ev, 8, 1000 * KT_MS), 1);
    ck_assert_int_eq(ev[0].fd, num);
    ck_assert_ptr_eq(ev[0].data, &new_tag);
    ck_assert_int_eq(kart_selector_unregister(s, p[0]), 0);
    kart_selector_free(s);
    close(p[0]);
    close(p[1]);
    close(keep);
    close(sv[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("compat_mut");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, epoll_event_of_an_old_file_is_not_the_reused_numbers);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: kart__timeout_ms (core/base/deadline.h), the conversion of a
 * nanosecond timeout to poll(2)/epoll_wait(2) milliseconds, rounds up so
 * that a wait never returns before its timeout: 1 ns is 1 ms, not 0 (a
 * zero-millisecond wait returns at once, and the caller that re-checks its
 * deadline spins until it passes); -1 stays -1 (forever); a huge timeout
 * clamps to INT_MAX instead of wrapping negative (forever, or an error).
 * (make mutate: with the rounding dropped, every suite passed: epoll uses
 * epoll_pwait2 for timeouts that are not whole milliseconds on this
 * kernel, so only the fallback reaches the conversion.) */
#include "testutil.h"

#include "deadline.h"

#include <limits.h>

START_TEST(timeout_ms_rounds_up_and_clamps)
{
    ck_assert_int_eq(kart__timeout_ms(-1), -1);
    ck_assert_int_eq(kart__timeout_ms(INT64_MIN), -1);
    ck_assert_int_eq(kart__timeout_ms(0), 0);
    ck_assert_int_eq(kart__timeout_ms(1), 1);
    ck_assert_int_eq(kart__timeout_ms(999999), 1);
    ck_assert_int_eq(kart__timeout_ms(1000000), 1);
    ck_assert_int_eq(kart__timeout_ms(1000001), 2);
    ck_assert_int_eq(kart__timeout_ms(2500000), 3);
    ck_assert_int_eq(kart__timeout_ms((int64_t)INT_MAX * 1000000), INT_MAX);
    ck_assert_int_eq(kart__timeout_ms((int64_t)INT_MAX * 1000000 + 1), INT_MAX);
    ck_assert_int_eq(kart__timeout_ms(INT64_MAX), INT_MAX);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("base_mut");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, timeout_ms_rounds_up_and_clamps);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

/* Description: kart_strerror, kart_err_name and the version string name
 * every code the library returns. */
#include "testutil.h"

START_TEST(strerror_names_errno_codes)
{
    ck_assert_str_eq(kart_strerror(0), "success");
    ck_assert_str_eq(kart_strerror(-EINVAL), "Invalid argument");
    ck_assert_str_eq(kart_err_name(-EEXIST), "EEXIST");
    ck_assert_str_eq(kart_err_name(0), "OK");
}
END_TEST

START_TEST(strerror_names_kart_codes)
{
    ck_assert_str_eq(kart_err_name(KART_ENOBACKEND), "KART_ENOBACKEND");
    ck_assert_str_eq(kart_err_name(KART_EUNKNOWNBACKEND), "KART_EUNKNOWNBACKEND");
    ck_assert_ptr_nonnull(strstr(kart_strerror(KART_ENOBACKEND), "backend"));
}
END_TEST

START_TEST(strerror_unknown_codes_never_null)
{
    ck_assert_str_eq(kart_strerror(-19999), "unknown error");
    ck_assert_str_eq(kart_strerror(12345), "unknown error");
    ck_assert_str_eq(kart_err_name(-19999), "UNKNOWN");
    ck_assert_str_eq(kart_strerror(KART_EBASE - 999), "unknown error");
}
END_TEST

START_TEST(version_matches_macros)
{
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", KART_VERSION_MAJOR, KART_VERSION_MINOR,
             KART_VERSION_PATCH);
    ck_assert_str_eq(kart_version_string(), want);
}
END_TEST

START_TEST(now_is_monotonic)
{
    int64_t a = kart_now_ns(), b = kart_now_ns();
    ck_assert_int_gt(a, 0);
    ck_assert_int_ge(b, a);
}
END_TEST

START_TEST(numa_reports_at_least_one_node)
{
    ck_assert_int_ge(kart_numa_node_count(), 1);
    const char *src = kart_numa_source();
    ck_assert(strcmp(src, "libnuma") == 0 || strcmp(src, "sysfs") == 0 || strcmp(src, "none") == 0);
    ck_assert_int_eq(kart_numa_available(), strcmp(src, "none") != 0);
}
END_TEST

START_TEST(numa_node_cpus_of_node_zero)
{
    cpu_set_t cpus;
    ck_assert_int_eq(kart_numa_node_cpus(0, &cpus), 0);
    ck_assert_int_ge(CPU_COUNT(&cpus), 1);
    ck_assert_int_eq(kart_numa_node_cpus(0, NULL), -EINVAL);
    ck_assert_int_eq(kart_numa_node_cpus(-1, &cpus), -EINVAL);
    ck_assert_int_eq(kart_numa_node_cpus(100000, &cpus), -ENOENT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, strerror_names_errno_codes);
    tcase_add_test(tc, strerror_names_kart_codes);
    tcase_add_test(tc, strerror_unknown_codes_never_null);
    tcase_add_test(tc, version_matches_macros);
    tcase_add_test(tc, now_is_monotonic);
    tcase_add_test(tc, numa_reports_at_least_one_node);
    tcase_add_test(tc, numa_node_cpus_of_node_zero);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

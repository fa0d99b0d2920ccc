/*
 * tests/skip.h — visible skips. A test that cannot run its real check here
 * (a backend that cannot start, no /bin/bash, no python3, a kernel without
 * a feature) says so with KART_SKIP("why") instead of returning quietly:
 * it prints one line, "SKIP: <test>: <why>", and returns. Check still
 * counts the test as run and passed; scripts/run-tests.sh counts the SKIP
 * lines and moves them from passed to skipped, so the closing count reads
 * "N passed, M failed, K skipped" with each reason listed.
 *
 * KART_SKIP_GROUP("why") is for tests a suite does not even add (a group
 * that needs python3, say): one line, "SKIP: (not run) <why>", counted as
 * one skip and not taken from passed.
 *
 * The line is flushed at once: Check runs each test in a child that may end
 * with _exit (a timeout, a fork child), which would lose buffered output.
 */
#ifndef KART_TEST_SKIP_H
#define KART_TEST_SKIP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Prints the SKIP line for test fn (Check names a test's function
 * "<test>_fn"; the suffix is dropped). */
static inline void kt_skip_print_(const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void kt_skip_print_(const char *fn, const char *fmt, ...)
{
    size_t n = strlen(fn);
    if (n > 3 && strcmp(fn + n - 3, "_fn") == 0)
        n -= 3;
    if (fn[0] == '(')
        printf("SKIP: %s ", fn);
    else
        printf("SKIP: %.*s: ", (int)n, fn);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* Skips the rest of the test (a void test function) with its reason. */
#define KART_SKIP(...)                                                                             \
    do {                                                                                           \
        kt_skip_print_(__func__, __VA_ARGS__);                                                     \
        return;                                                                                    \
    } while (0)

/* The same from a helper that returns a value to its test: prints the
 * line for the test and returns val (the test then returns too). */
#define KART_SKIP_RET(val, ...)                                                                    \
    do {                                                                                           \
        kt_skip_print_(__func__, __VA_ARGS__);                                                     \
        return (val);                                                                              \
    } while (0)

/* A group of tests the suite does not add here, and why. */
#define KART_SKIP_GROUP(...) kt_skip_print_("(not run)", __VA_ARGS__)

#endif

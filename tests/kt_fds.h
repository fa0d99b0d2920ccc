/*
 * tests/kt_fds.h — how many descriptors this process holds, for the
 * suites that check a call leaves none behind (a leak shows as a count
 * that differs from the one taken before). Linked into each suite that
 * uses it (the Makefile's tidy block).
 */
#ifndef KART_TESTS_KT_FDS_H
#define KART_TESTS_KT_FDS_H

/* The entries of /proc/self/fd, "." and ".." and the listing's own
 * descriptor included: compare two counts, never a count with a number. */
int kt_open_fds(void);

#endif

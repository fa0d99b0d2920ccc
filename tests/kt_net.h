/*
 * tests/kt_net.h — a client's connection to a server this test started on
 * 127.0.0.1 (the example servers of check_servers and check_console).
 * Linked into each suite that uses it (the Makefile's tidy block).
 */
#ifndef KART_TESTS_KT_NET_H
#define KART_TESTS_KT_NET_H

/* A blocking TCP connection to 127.0.0.1:port whose receives give up
 * (EAGAIN) after timeout_s seconds, so that a server that never answers
 * fails the test instead of hanging it. Fails the test if it cannot
 * connect. */
int kt_dial_loopback(int port, int timeout_s);

#endif

/* Load generator for the echo server (same for every server variant).
 *
 *   client HOST PORT NCONN SIZE DEPTH SECS
 *
 * NCONN blocking TCP sockets (TCP_NODELAY), one epoll thread.  Each connection runs rounds:
 * write DEPTH messages of SIZE bytes in one write(), then read SIZE*DEPTH bytes back and
 * verify every byte (message = 8-byte sequence number + per-connection pattern).
 * Counts requests (messages echoed) completed within SECS seconds; exits 1 on any mismatch.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct cl {
    int fd;
    size_t got;
    uint64_t seq;
    unsigned char *tmpl, *w, *r;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: client HOST PORT NCONN SIZE DEPTH SECS\n");
        return 2;
    }
    int nc = atoi(argv[3]), depth = atoi(argv[5]);
    size_t sz = strtoul(argv[4], 0, 0), tot = sz * depth;
    double secs = atof(argv[6]);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    int ep = epoll_create1(0), one = 1;
    struct cl *c = calloc(nc, sizeof *c);
    for (int i = 0; i < nc; i++) {
        int fd = -1;
        for (int t = 0; t < 100; t++) { /* server may still be starting */
            fd = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(fd, (void *)&a, sizeof a) == 0)
                break;
            close(fd), fd = -1;
            usleep(20000);
        }
        if (fd < 0) {
            perror("connect");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c[i] = (struct cl){.fd = fd, .tmpl = malloc(sz), .w = malloc(tot), .r = malloc(tot)};
        for (size_t k = 0; k < sz; k++)
            c[i].tmpl[k] = (unsigned char)(k * 7 + i * 13 + (k >> 8));
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    unsigned long long reqs = 0, bad = 0;
    int active = 0;
    double t0 = now(), tend = t0 + secs;
    for (int i = 0; i < nc; i++) { /* start a round: DEPTH messages in one write */
        struct cl *k = &c[i];
        for (int d = 0; d < depth; d++) {
            memcpy(k->w + d * sz, k->tmpl, sz);
            uint64_t s = k->seq + d;
            memcpy(k->w + d * sz, &s, sz < 8 ? sz : 8);
        }
        if (write(k->fd, k->w, tot) != (ssize_t)tot) {
            perror("write");
            return 1;
        }
        active++;
    }
    struct epoll_event evs[64];
    while (active) {
        int n = epoll_wait(ep, evs, 64, 1000);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        if (n == 0 && now() > tend + 5) {
            fprintf(stderr, "stalled, %d active\n", active);
            return 1;
        }
        for (int e = 0; e < n; e++) {
            struct cl *k = &c[evs[e].data.u32];
            ssize_t r = recv(k->fd, k->r + k->got, tot - k->got, MSG_DONTWAIT);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                fprintf(stderr, "recv: %zd %s\n", r, r ? strerror(errno) : "EOF");
                return 1;
            }
            k->got += r;
            if (k->got < tot)
                continue;
            if (memcmp(k->r, k->w, tot) && bad++ < 3) /* verify every byte */
                fprintf(stderr, "mismatch conn %u seq %llu\n", evs[e].data.u32,
                        (unsigned long long)k->seq);
            k->got = 0;
            k->seq += depth;
            reqs += depth;
            if (now() < tend) {
                for (int d = 0; d < depth; d++) {
                    uint64_t s = k->seq + d;
                    memcpy(k->w + d * sz, &s, sz < 8 ? sz : 8);
                }
                if (write(k->fd, k->w, tot) != (ssize_t)tot) {
                    perror("write");
                    return 1;
                }
            } else
                active--;
        }
    }
    double dt = now() - t0;
    for (int i = 0; i < nc; i++)
        close(c[i].fd);
    printf("client nconn=%d size=%zu depth=%d reqs=%llu secs=%.3f rps=%.0f bad=%llu\n", nc, sz,
           depth, reqs, dt, reqs / dt, bad);
    return bad != 0;
}

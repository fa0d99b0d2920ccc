/*
 * tests/soak/soak_ipc.c — the soak's inter-process components, one thread
 * each:
 *  - pool:  a process pool running checked tasks while one of its workers
 *           is SIGKILLed at random every second or two (a task it held
 *           fails with KART_EWORKERDIED, which is accounted, not lost);
 *  - queue: a child process echoing messages between two named queues,
 *           the queues and the child made afresh every CYCLE_S seconds;
 *  - conn:  a child process that connects with an authkey (alternately
 *           over an abstract unix socket and TCP loopback) and echoes
 *           messages, made afresh every CYCLE_S seconds;
 *  - shm:   named segments created, attached read-only, checked, closed
 *           and unlinked.
 * Every message carries its sequence number and a pattern derived from
 * it, so that a lost, repeated, reordered or damaged one is an error.
 */
#include "soak.h"

#include <kart.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CYCLE_S 3
#define MSG_MAX 512
#define BATCH 8
#define SEC 1000000000ll

soak_comp soak_pool_comp = {.name = "pool"};
soak_comp soak_queue_comp = {.name = "queue"};
soak_comp soak_conn_comp = {.name = "conn"};
soak_comp soak_shm_comp = {.name = "shm"};

static pthread_t threads[4];
static int nthreads;

/* A message: its sequence number, then pattern bytes seeded by it. */
static size_t msg_make(unsigned char *buf, uint64_t seq, uint64_t *rnd)
{
    size_t len = 8 + soak_rand(rnd) % (MSG_MAX - 8);
    memcpy(buf, &seq, 8);
    soak_pattern(buf + 8, len - 8, seq, 0);
    return len;
}

static bool msg_check(soak_comp *c, const unsigned char *buf, size_t len, uint64_t want)
{
    unsigned char exp[MSG_MAX];
    uint64_t seq;
    if (len < 8 || len > MSG_MAX) {
        soak_error(c, "%s: message %llu has length %zu", c->name, (unsigned long long)want, len);
        return false;
    }
    memcpy(&seq, buf, 8);
    if (seq != want) {
        soak_error(c, "%s: message %llu where %llu was next", c->name, (unsigned long long)seq,
                   (unsigned long long)want);
        return false;
    }
    soak_pattern(exp, len - 8, seq, 0);
    if (memcmp(exp, buf + 8, len - 8) != 0) {
        soak_error(c, "%s: message %llu damaged", c->name, (unsigned long long)seq);
        return false;
    }
    return true;
}

/* ---- pool ---- */

static int pool_task(const void *arg, size_t arg_len, void *result, size_t *result_len)
{
    uint64_t x;
    if (arg_len != sizeof(x) || *result_len < sizeof(x))
        return -EINVAL;
    memcpy(&x, arg, sizeof(x));
    /* Some microseconds of work, so that a kill often finds it busy. */
    uint64_t h = x;
    for (int i = 0; i < 2000; i++)
        h = h * 6364136223846793005ull + 1442695040888963407ull;
    memcpy(result, &h, sizeof(h));
    *result_len = sizeof(h);
    return 0;
}

static uint64_t pool_expect(uint64_t x)
{
    for (int i = 0; i < 2000; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

static void *pool_main(void *arg)
{
    soak_comp *c = &soak_pool_comp;
    kart_pool *pool;
    kart_pool_options o = {.kind = KART_POOL_PROCESSES, .workers = 2, .max_tasks_per_child = 5000};
    int rc = kart_pool_create(&pool, &o);
    if (rc < 0) {
        soak_error(c, "pool: create: %s", kart_strerror(rc));
        return NULL;
    }
    uint64_t rnd = 0x5eed1234 ^ (uint64_t)soak.self, seq = 0;
    int64_t start = soak_now_ns(), next_kill = start + SEC;
    uint64_t n = 0;
    while (!atomic_load(&soak.stop)) {
        kart_future *f[BATCH];
        uint64_t x[BATCH];
        int k = 0;
        for (; k < BATCH; k++) {
            x[k] = seq++;
            rc = kart_pool_submit(pool, pool_task, &x[k], sizeof(x[k]), &f[k]);
            if (rc < 0) {
                soak_error(c, "pool: submit: %s", kart_strerror(rc));
                break;
            }
            atomic_fetch_add(&c->sent, 1);
        }
        if (soak_now_ns() >= next_kill) {
            /* A worker at random, busy or idle. */
            kart_pool_worker_info info;
            size_t w = soak_rand(&rnd) % (size_t)kart_pool_workers(pool);
            if (kart_pool_worker_info_get(pool, w, &info) == 0 && info.pid > 0 &&
                kill(info.pid, SIGKILL) == 0)
                atomic_fetch_add(&c->events, 1);
            next_kill = soak_now_ns() + SEC / 2 + (int64_t)(soak_rand(&rnd) % (uint64_t)(SEC * 2));
        }
        for (int i = 0; i < k; i++) {
            uint64_t r = 0;
            size_t len = sizeof(r);
            int err = 0;
            rc = kart_future_result(f[i], 30 * SEC, &r, &len, &err);
            if (rc < 0) {
                soak_error(c, "pool: task %llu: result: %s", (unsigned long long)x[i],
                           kart_strerror(rc));
            } else if (err == KART_EWORKERDIED) {
                atomic_fetch_add(&c->done, 1); /* killed under it: accounted */
            } else if (err != 0) {
                soak_error(c, "pool: task %llu failed: %s", (unsigned long long)x[i],
                           kart_strerror(err));
            } else if (len != sizeof(r) || r != pool_expect(x[i])) {
                soak_error(c, "pool: task %llu returned a wrong result", (unsigned long long)x[i]);
            } else {
                atomic_fetch_add(&c->done, 1);
                atomic_fetch_add(&c->ops, 1);
            }
            kart_future_free(f[i]);
        }
        n += (uint64_t)k;
        soak_pace(start, n);
    }
    if ((rc = kart_pool_close(pool)) < 0 || (rc = kart_pool_join(pool, 10 * SEC)) < 0)
        soak_error(c, "pool: close and join: %s", kart_strerror(rc));
    kart_pool_free(pool);
    return NULL;
}

/* ---- queues between processes ---- */

/* Joins a started child within 10 s; one still running then (a join that
 * timed out or failed) is killed and joined again, so that freeing it never
 * detaches a live child that would outlive the soak (and hold its queues'
 * or connections' ends). Returns the first join's result. */
static int join_or_kill(kart_process *p)
{
    int rc = kart_process_join(p, 10 * SEC);
    if (rc < 0 || kart_process_is_alive(p) == 1) {
        kart_process_kill(p);
        kart_process_join(p, 10 * SEC);
    }
    return rc;
}

typedef struct qpair {
    kart_queue *to, *back;
} qpair;

static int queue_child(void *arg)
{
    qpair *qp = arg;
    unsigned char buf[MSG_MAX];
    for (;;) {
        size_t len;
        int rc = kart_queue_get(qp->to, buf, sizeof(buf), &len, 20 * SEC);
        if (rc < 0)
            return 2;
        if (len == 0)
            return 0;
        if (kart_queue_put(qp->back, buf, len, 20 * SEC) < 0)
            return 3;
    }
}

static void *queue_main(void *arg)
{
    soak_comp *c = &soak_queue_comp;
    uint64_t rnd = 0x9e7e ^ (uint64_t)soak.self, seq = 0, n = 0;
    int64_t start = soak_now_ns();
    unsigned char buf[MSG_MAX];
    for (unsigned cycle = 0; !atomic_load(&soak.stop); cycle++) {
        char to_name[64], back_name[64];
        snprintf(to_name, sizeof(to_name), "/kart-soak-%d-qt%u", (int)soak.self, cycle);
        snprintf(back_name, sizeof(back_name), "/kart-soak-%d-qb%u", (int)soak.self, cycle);
        qpair qp = {0};
        kart_queue_options o1 = {.capacity = 64 * 1024, .name = to_name};
        kart_queue_options o2 = {.capacity = 64 * 1024, .name = back_name};
        int rc = kart_queue_create(&qp.to, &o1);
        if (rc == 0 && (rc = kart_queue_create(&qp.back, &o2)) < 0) {
            kart_queue_free(qp.to);
            kart_queue_unlink(to_name);
        }
        if (rc < 0) {
            soak_error(c, "queue: create: %s", kart_strerror(rc));
            sleep(1);
            continue;
        }
        kart_process *p = NULL;
        kart_process_options po = {.name = "soak-queue", .daemon = true};
        if ((rc = kart_process_create(&p, queue_child, &qp, &po)) < 0 ||
            (rc = kart_process_start(p)) < 0) {
            soak_error(c, "queue: child: %s", kart_strerror(rc));
        } else {
            int64_t end = soak_now_ns() + CYCLE_S * SEC;
            while (!atomic_load(&soak.stop) && soak_now_ns() < end) {
                uint64_t first = seq;
                int k = 0;
                for (; k < BATCH; k++) {
                    size_t len = msg_make(buf, seq, &rnd);
                    if ((rc = kart_queue_put(qp.to, buf, len, 10 * SEC)) < 0) {
                        soak_error(c, "queue: put: %s", kart_strerror(rc));
                        break;
                    }
                    atomic_fetch_add(&c->sent, 1);
                    seq++;
                }
                for (int i = 0; i < k; i++) {
                    size_t len;
                    if ((rc = kart_queue_get(qp.back, buf, sizeof(buf), &len, 10 * SEC)) < 0) {
                        soak_error(c, "queue: get of message %llu: %s",
                                   (unsigned long long)(first + (uint64_t)i), kart_strerror(rc));
                        break;
                    }
                    if (msg_check(c, buf, len, first + (uint64_t)i)) {
                        atomic_fetch_add(&c->done, 1);
                        atomic_fetch_add(&c->ops, 1);
                    }
                }
                if (rc < 0) {
                    seq = first + (uint64_t)k;
                    break;
                }
                n += (uint64_t)k;
                soak_pace(start, n);
            }
            int code = -1;
            /* The child is joined (or killed) even when the closing put fails. */
            int put = kart_queue_put(qp.to, "", 0, 10 * SEC);
            rc = join_or_kill(p);
            if (put < 0)
                rc = put;
            if (rc < 0 || kart_process_exitcode(p, &code) != 1 || code != 0)
                soak_error(c, "queue: child's end: %s, exit code %d", kart_strerror(rc), code);
        }
        kart_process_free(p);
        kart_queue_free(qp.to);
        kart_queue_free(qp.back);
        if ((rc = kart_queue_unlink(to_name)) < 0 || (rc = kart_queue_unlink(back_name)) < 0)
            soak_error(c, "queue: unlink: %s", kart_strerror(rc));
        atomic_fetch_add(&c->events, 1);
    }
    return NULL;
}

/* ---- connections between processes ---- */

static const char authkey[] = "soak-secret-key";

static int conn_child(void *arg)
{
    const char *addr = arg;
    kart_auth auth = {
        .authkey = authkey, .authkey_len = sizeof(authkey) - 1, .timeout_ns = 20 * SEC};
    kart_conn *cn;
    if (kart_conn_connect(&cn, addr, &auth) < 0)
        return 2;
    unsigned char buf[MSG_MAX];
    int code = 0;
    for (;;) {
        size_t len;
        if (kart_conn_recv_bytes_into(cn, buf, sizeof(buf), &len) < 0) {
            code = 3;
            break;
        }
        if (len == 0)
            break;
        if (kart_conn_send_bytes(cn, buf, len) < 0) {
            code = 4;
            break;
        }
    }
    kart_conn_close(cn);
    return code;
}

static void *conn_main(void *arg)
{
    soak_comp *c = &soak_conn_comp;
    kart_auth auth = {
        .authkey = authkey, .authkey_len = sizeof(authkey) - 1, .timeout_ns = 20 * SEC};
    kart_listener_options lo = {.auth = auth};
    kart_listener *l[2] = {NULL, NULL};
    char addr[2][128];
    char unix_addr[64];
    snprintf(unix_addr, sizeof(unix_addr), "@kart-soak-%d", (int)soak.self);
    int rc = kart_listener_create(&l[0], unix_addr, &lo);
    if (rc == 0 && (rc = kart_listener_create(&l[1], "127.0.0.1:0", &lo)) == 0)
        for (int i = 0; i < 2 && rc >= 0; i++)
            rc = kart_listener_address(l[i], addr[i], sizeof(addr[i]));
    if (rc < 0) {
        soak_error(c, "conn: listeners: %s", kart_strerror(rc));
        kart_listener_free(l[0]);
        kart_listener_free(l[1]);
        return NULL;
    }
    uint64_t rnd = 0xc0ffee ^ (uint64_t)soak.self, seq = 0, n = 0;
    int64_t start = soak_now_ns();
    unsigned char buf[MSG_MAX];
    for (unsigned cycle = 0; !atomic_load(&soak.stop); cycle++) {
        int which = (int)(cycle % 2);
        kart_process *p = NULL;
        kart_conn *cn = NULL;
        kart_process_options po = {.name = "soak-conn", .daemon = true};
        if ((rc = kart_process_create(&p, conn_child, addr[which], &po)) < 0 ||
            (rc = kart_process_start(p)) < 0) {
            soak_error(c, "conn: child: %s", kart_strerror(rc));
            kart_process_free(p);
            sleep(1);
            continue;
        }
        if ((rc = kart_listener_accept(l[which], &cn, 20 * SEC)) < 0) {
            soak_error(c, "conn: accept on %s: %s", addr[which], kart_strerror(rc));
        } else {
            int64_t end = soak_now_ns() + CYCLE_S * SEC;
            while (rc == 0 && !atomic_load(&soak.stop) && soak_now_ns() < end) {
                uint64_t first = seq;
                struct iovec v[BATCH];
                unsigned char out[BATCH][MSG_MAX];
                for (int k = 0; k < BATCH; k++)
                    v[k] = (struct iovec){out[k], msg_make(out[k], seq++, &rnd)};
                /* One message alone or the batch in one send_many. */
                if (soak_rand(&rnd) % 2)
                    rc = kart_conn_send_many(cn, v, BATCH);
                else
                    for (int k = 0; k < BATCH && rc == 0; k++)
                        rc = kart_conn_send_bytes(cn, v[k].iov_base, v[k].iov_len);
                if (rc < 0) {
                    soak_error(c, "conn: send: %s", kart_strerror(rc));
                    break;
                }
                atomic_fetch_add(&c->sent, BATCH);
                for (int k = 0; k < BATCH; k++) {
                    size_t len;
                    if ((rc = kart_conn_recv_bytes_into(cn, buf, sizeof(buf), &len)) < 0) {
                        soak_error(c, "conn: receive of message %llu: %s",
                                   (unsigned long long)(first + (uint64_t)k), kart_strerror(rc));
                        break;
                    }
                    if (msg_check(c, buf, len, first + (uint64_t)k)) {
                        atomic_fetch_add(&c->done, 1);
                        atomic_fetch_add(&c->ops, 1);
                    }
                }
                n += BATCH;
                soak_pace(start, n);
            }
            if (rc == 0 && (rc = kart_conn_send_bytes(cn, "", 0)) < 0)
                soak_error(c, "conn: the closing message: %s", kart_strerror(rc));
            kart_conn_close(cn);
        }
        int code = -1;
        if ((rc = join_or_kill(p)) < 0 || kart_process_exitcode(p, &code) != 1 || code != 0)
            soak_error(c, "conn: child's end: %s, exit code %d", kart_strerror(rc), code);
        kart_process_free(p);
        atomic_fetch_add(&c->events, 1);
    }
    kart_listener_free(l[0]);
    kart_listener_free(l[1]);
    return NULL;
}

/* ---- shared segments ---- */

static void *shm_main(void *arg)
{
    soak_comp *c = &soak_shm_comp;
    uint64_t rnd = 0x54e3 ^ (uint64_t)soak.self, n = 0;
    int64_t start = soak_now_ns();
    while (!atomic_load(&soak.stop)) {
        char name[64];
        snprintf(name, sizeof(name), "/kart-soak-%d-s%llu", (int)soak.self, (unsigned long long)n);
        size_t size = 4096 * (1 + soak_rand(&rnd) % 64);
        kart_shm *a = NULL, *b = NULL;
        atomic_fetch_add(&c->sent, 1);
        int rc = kart_shm_create(&a, name, size, 0);
        if (rc < 0) {
            soak_error(c, "shm: create %s: %s", name, kart_strerror(rc));
        } else {
            soak_pattern(kart_shm_addr(a), size, n, 0);
            if ((rc = kart_shm_attach(&b, name, KART_SHM_RDONLY)) < 0) {
                soak_error(c, "shm: attach %s: %s", name, kart_strerror(rc));
            } else {
                unsigned char exp[4096];
                const unsigned char *p = kart_shm_addr(b);
                bool same = kart_shm_size(b) == size;
                for (size_t off = 0; same && off < size; off += sizeof(exp)) {
                    soak_pattern(exp, sizeof(exp), n, off);
                    same = memcmp(p + off, exp, sizeof(exp)) == 0;
                }
                if (!same)
                    soak_error(c, "shm: %s read back different", name);
                if ((rc = kart_shm_close(b)) < 0)
                    soak_error(c, "shm: close: %s", kart_strerror(rc));
                else if (same) {
                    atomic_fetch_add(&c->ops, 1);
                    atomic_fetch_add(&c->done, 1);
                }
            }
            if ((rc = kart_shm_unlink(a)) < 0 || (rc = kart_shm_close(a)) < 0)
                soak_error(c, "shm: unlink and close %s: %s", name, kart_strerror(rc));
        }
        n++;
        /* A tenth of the others' rate: each is a few system calls and
         * up to 256 KiB touched. */
        soak_pace(start, n * 10);
    }
    return NULL;
}

int soak_ipc_start(void)
{
    void *(*fns[])(void *) = {pool_main, queue_main, conn_main, shm_main};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        int rc = pthread_create(&threads[i], NULL, fns[i], NULL);
        if (rc != 0)
            return -rc;
        nthreads++;
    }
    return 0;
}

void soak_ipc_join(void)
{
    for (int i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    nthreads = 0;
}

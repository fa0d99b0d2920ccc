/* A tiny program built against an installed kart with nothing but
 * `cc hello.c $(pkg-config --cflags --libs kart)`: it runs a loop with a
 * timer and an fd watcher and prints what it saw. */
#include <kart.h>
#include <stdio.h>
#include <unistd.h>

static int fired;

static void on_timer(kart_timer *t)
{
    (void)t;
    fired++;
}

static void on_readable(kart_watch *io, uint32_t events)
{
    char buf[8];
    if ((events & KART_READABLE) && read(io->fd, buf, sizeof(buf)) > 0)
        fired++;
    kart_watch_stop(io);
}

int main(void)
{
    kart_loop *loop;
    int err = kart_loop_create(&loop, NULL);
    if (err < 0) {
        fprintf(stderr, "kart_loop_create: %s\n", kart_strerror(err));
        return 1;
    }
    int p[2];
    if (pipe(p) < 0 || write(p[1], "hi", 2) != 2)
        return 1;
    kart_timer t;
    kart_watch io;
    kart_timer_init(loop, &t);
    kart_timer_start(&t, on_timer, 1000000, 0);
    kart_watch_init(loop, &io, p[0]);
    kart_watch_start(&io, KART_READABLE, on_readable);
    kart_loop_run(loop, KART_RUN_DEFAULT);
    printf("kart %s on %s: %d callbacks\n", kart_version_string(), kart_loop_backend_name(loop),
           fired);
    kart_loop_free(loop);
    return fired == 2 ? 0 : 1;
}

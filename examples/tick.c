/*
 * examples/tick.c — an event loop in forty lines: echo what arrives on
 * stdin, print a heartbeat every second, stop cleanly on SIGINT/SIGTERM.
 *
 * Build alone:  cc tick.c $(pkg-config --cflags --libs kart) -o tick
 * Try:          (echo hello; sleep 2; echo bye) | build/examples/tick
 */
#include <kart.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static kart_watch input;
static kart_timer heartbeat;
static kart_signal sigint, sigterm;

static void stop_all(kart_loop *loop)
{
    kart_watch_stop(&input);
    kart_timer_stop(&heartbeat);
    kart_signal_stop(&sigint);
    kart_signal_stop(&sigterm);
    (void)loop;
}

static void on_input(kart_watch *io, uint32_t events)
{
    char buf[4096];
    ssize_t n = read(io->fd, buf, sizeof(buf));
    if (n > 0) {
        printf("%.3f s: %.*s", kart_loop_now(io->base.loop) / 1e9, (int)n, buf);
        fflush(stdout);
    } else if (n == 0 || (events & (KART_HANGUP | KART_ERROR))) {
        printf("end of input\n");
        stop_all(io->base.loop);
    }
}

static void on_heartbeat(kart_timer *t)
{
    printf("tick (%s backend)\n", kart_loop_backend_name(t->base.loop));
    fflush(stdout);
}

static void on_signal(kart_signal *s, int signum)
{
    printf("signal %d: stopping\n", signum);
    stop_all(s->base.loop);
}

int main(void)
{
    kart_loop *loop;
    int err = kart_loop_create(&loop, NULL);
    if (err < 0) {
        fprintf(stderr, "tick: %s\n", kart_strerror(err));
        return 1;
    }
    kart_watch_init(loop, &input, STDIN_FILENO);
    err = kart_watch_start(&input, KART_READABLE, on_input);
    if (err < 0) /* -EPERM: stdin is a regular file, which cannot be waited on */
        fprintf(stderr, "tick: cannot watch stdin: %s\n", kart_strerror(err));
    kart_timer_init(loop, &heartbeat);
    kart_timer_start(&heartbeat, on_heartbeat, 1000000000, 1000000000);
    kart_signal_init(loop, &sigint);
    kart_signal_init(loop, &sigterm);
    kart_signal_start(&sigint, on_signal, SIGINT);
    kart_signal_start(&sigterm, on_signal, SIGTERM);
    kart_loop_run(loop, KART_RUN_DEFAULT);
    kart_loop_free(loop);
    return 0;
}

/*
 * examples/kart-console.c — the client of the example servers' admin
 * console (examples/console.h, docs/console.md), built as
 * build/kart-console:
 *
 *   kart-console ADDRESS --authkey-file F [--name NAME]
 *
 * Connects through kart's Client with the authkey handshake, puts the
 * local terminal in raw mode, and relays: the bytes typed go to the
 * server's line editor, its output comes back to the terminal, a window
 * size change (SIGWINCH) goes as a 'W' message. The terminal is restored
 * however it ends: the session over, the server gone, stdin at its end,
 * SIGINT, SIGTERM, SIGHUP, SIGQUIT, an error.
 *
 * With stdin not a tty it is a plain pipe: `echo stats | kart-console ...`
 * runs the commands read and ends after the last.
 *
 * Exit status: 0 when the server ended the session (quit, C-d, the server
 * stopping: its reason is printed); 1 when the address cannot be reached,
 * the authkey is refused, or the connection is lost; 2 for a bad command
 * line or key file; a signal's own status for SIGINT/SIGTERM/SIGHUP/SIGQUIT.
 */
#include "console_wire.h"

#include <kart.h>
#include <kart/conn.h>

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static const char *prog = "kart-console";

/* The terminal as it was, put back by restore_terminal() and, from a
 * signal handler, by the same two async-signal-safe calls. */
static struct termios saved;
static volatile sig_atomic_t raw_on;
static int wakeup[2] = {-1, -1}; /* SIGWINCH -> the main loop */

static void restore_terminal(void)
{
    if (raw_on) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        raw_on = 0;
    }
}

/* GNU readline's raw mode, as kart's editor sets it: no canonical input,
 * echo, signals, extended input, flow control or CR/NL translation; output
 * processing left as it was. */
static int enter_raw(void)
{
    if (tcgetattr(STDIN_FILENO, &saved) < 0)
        return -errno;
    struct termios t = saved;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
    t.c_iflag &= ~(tcflag_t)(IXON | ICRNL | INLCR);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0)
        return -errno;
    raw_on = 1;
    return 0;
}

static void on_fatal_signal(int sig)
{
    if (raw_on)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    raw_on = 0;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_winch(int sig)
{
    (void)sig;
    int e = errno;
    char b = 'w';
    if (write(wakeup[1], &b, 1) < 0) {
        /* full: a wakeup is already pending */
    }
    errno = e;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static void window_size(unsigned *cols, unsigned *rows)
{
    struct winsize ws;
    *cols = *rows = 0;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
        *cols = ws.ws_col;
        *rows = ws.ws_row;
    }
}

static int send_size(kart_conn *c)
{
    unsigned cols, rows;
    window_size(&cols, &rows);
    if (!cols)
        return 0;
    unsigned char m[5] = {'W', (unsigned char)(cols >> 8), (unsigned char)cols,
                          (unsigned char)(rows >> 8), (unsigned char)rows};
    return kart_conn_send_bytes(c, m, sizeof(m));
}

static int send_hello(kart_conn *c, const char *name, int tty)
{
    const char *term = getenv("TERM");
    if (!term || strlen(term) > 63)
        term = "";
    unsigned cols = 0, rows = 0;
    if (tty)
        window_size(&cols, &rows);
    unsigned char m[7 + CONSOLE_NAME_MAX + 1 + 64];
    size_t nl = strlen(name), tl = strlen(term);
    m[0] = 'H';
    m[1] = CONSOLE_WIRE_VERSION;
    m[2] = tty ? CONSOLE_HELLO_TTY : 0;
    m[3] = (unsigned char)(cols >> 8);
    m[4] = (unsigned char)cols;
    m[5] = (unsigned char)(rows >> 8);
    m[6] = (unsigned char)rows;
    memcpy(m + 7, name, nl + 1);
    memcpy(m + 8 + nl, term, tl);
    return kart_conn_send_bytes(c, m, 8 + nl + tl);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s ADDRESS --authkey-file F [--name NAME]\n"
            "  ADDRESS           the server's --console: /path, @abstract-name, host:port\n"
            "  --authkey-file F  the shared key (the server's --console-authkey-file)\n"
            "  --name NAME       the operator's name, which picks the history file\n"
            "                    (default: $USER)\n",
            prog);
}

/* Relays until the session ends. Returns the exit status. */
static int relay(kart_conn *c, const char *address, int tty)
{
    int stdin_open = 1, got_exit = 0;
    char reason[512] = "";
    unsigned char buf[4096 + 1];
    for (;;) {
        kart_waitable w[3] = {{.kind = KART_WAIT_CONN, .u.conn = c},
                              {.kind = KART_WAIT_FD, .u.fd = wakeup[0]},
                              {.kind = KART_WAIT_FD, .u.fd = STDIN_FILENO}};
        int n = kart_conn_wait(w, stdin_open ? 3 : 2, -1);
        if (n < 0) {
            restore_terminal();
            fprintf(stderr, "%s: wait: %s\n", prog, kart_strerror(n));
            return 1;
        }
        if (w[1].ready) {
            char drain[64];
            while (read(wakeup[0], drain, sizeof(drain)) > 0) {
            }
            if (stdin_open && send_size(c) < 0)
                stdin_open = 0;
        }
        if (stdin_open && w[2].ready) {
            ssize_t k = read(STDIN_FILENO, buf + 1, sizeof(buf) - 1);
            if (k < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            /* A send that fails (the server ended the session) stops the
             * input; what the server said before that is still read. */
            if (k <= 0) { /* end of input, or the terminal hung up (EIO) */
                stdin_open = 0;
                kart_conn_send_bytes(c, "E", 1);
            } else {
                buf[0] = 'D';
                if (kart_conn_send_bytes(c, buf, (size_t)k + 1) < 0)
                    stdin_open = 0;
            }
        }
        if (w[0].ready) {
            void *msg = NULL;
            size_t len = 0;
            int err = kart_conn_recv_bytes(c, &msg, &len, CONSOLE_WIRE_MAX);
            if (err < 0)
                break; /* the end: with 'X' first, a session over */
            const unsigned char *m = msg;
            if (len > 0 && m[0] == 'D') {
                if (write_all(STDOUT_FILENO, m + 1, len - 1) < 0) {
                    free(msg);
                    break;
                }
            } else if (len > 0 && m[0] == 'X') {
                got_exit = 1;
                size_t r = len - 1 < sizeof(reason) - 1 ? len - 1 : sizeof(reason) - 1;
                memcpy(reason, m + 1, r);
                reason[r] = 0;
            }
            free(msg);
        }
    }
    restore_terminal();
    if (!got_exit) {
        fprintf(stderr, "%s%s: %s: connection lost\n", tty ? "\r\n" : "", prog, address);
        return 1;
    }
    if (reason[0])
        fprintf(stderr, "%s: %s\n", prog, reason);
    return 0;
}

int main(int argc, char **argv)
{
    const char *address = NULL, *keyfile = NULL, *name = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        } else if ((strcmp(a, "--authkey-file") == 0 || strcmp(a, "--name") == 0) && i + 1 < argc) {
            *(a[2] == 'a' ? &keyfile : &name) = argv[++i];
        } else if (a[0] != '-' && !address) {
            address = a;
        } else {
            usage();
            return 2;
        }
    }
    if (!address || !keyfile) {
        usage();
        return 2;
    }
    if (!name) {
        name = getenv("USER");
        struct passwd *pw = name ? NULL : getpwuid(getuid());
        if (pw)
            name = pw->pw_name;
        if (!name || !console_name_ok(name, strlen(name)))
            name = "operator";
    }
    if (!console_name_ok(name, strlen(name))) {
        fprintf(stderr, "%s: bad --name '%s': 1-%d of A-Z a-z 0-9 . _ -, not starting with '.'\n",
                prog, name, CONSOLE_NAME_MAX);
        return 2;
    }
    static unsigned char key[CONSOLE_AUTHKEY_MAX];
    char why[4200];
    ssize_t keylen = console_read_authkey(keyfile, key, sizeof(key), why, sizeof(why));
    if (keylen < 0) {
        fprintf(stderr, "%s: %s\n", prog, why);
        return 2;
    }

    kart_auth auth = {
        .authkey = key, .authkey_len = (size_t)keylen, .timeout_ns = INT64_C(5000000000)};
    kart_conn *c = NULL;
    int err = kart_conn_connect(&c, address, &auth);
    if (err < 0) {
        if (err == KART_EAUTH)
            fprintf(stderr, "%s: %s: the server refused the authkey\n", prog, address);
        else
            fprintf(stderr, "%s: %s: %s\n", prog, address, kart_strerror(err));
        return 1;
    }

    int tty = isatty(STDIN_FILENO);
    if (pipe2(wakeup, O_CLOEXEC | O_NONBLOCK) < 0) {
        fprintf(stderr, "%s: pipe: %s\n", prog, strerror(errno));
        kart_conn_close(c);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_winch;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = 0;
    int fatal[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        sigaction(fatal[i], &sa, NULL);

    if ((err = send_hello(c, name, tty)) < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, address, kart_strerror(err));
        kart_conn_close(c);
        return 1;
    }
    if (tty && (err = enter_raw()) < 0) {
        fprintf(stderr, "%s: raw mode: %s\n", prog, strerror(-err));
        kart_conn_close(c);
        return 1;
    }
    int status = relay(c, address, tty);
    kart_conn_close(c);
    return status;
}

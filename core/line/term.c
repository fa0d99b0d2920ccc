/*
 * core/line/term.c — the line editor's terminal: raw mode and its
 * restoration, the window size, the output queue, and the signal handlers
 * of the blocking mode (GNU readline's: restore the terminal, raise the
 * signal again for the previous handler, take the terminal back and
 * redraw if the process goes on).
 */
#include "line_private.h"

#include "fault.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- setup ---- */

static unsigned char cc_or(const struct termios *t, int idx, unsigned char dflt)
{
    cc_t c = t->c_cc[idx];
#ifdef _POSIX_VDISABLE
    if (c == _POSIX_VDISABLE)
        return 0;
#endif
    (void)dflt;
    return (unsigned char)c;
}

static void read_specials(kart_line *ed, const struct termios *t)
{
    ed->c_intr = cc_or(t, VINTR, 3);
    ed->c_eof = cc_or(t, VEOF, 4);
    ed->c_susp = cc_or(t, VSUSP, 26);
    ed->c_quit = cc_or(t, VQUIT, 28);
}

static bool same_tty(int a, int b)
{
    struct stat sa, sb;
    if (a < 0 || b < 0 || fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
        return false;
    return sa.st_rdev == sb.st_rdev && S_ISCHR(sa.st_mode) && S_ISCHR(sb.st_mode);
}

void kart__term_setup(kart_line *ed)
{
    ed->in_tty = ed->in_fd >= 0 && isatty(ed->in_fd);
    ed->out_tty = ed->out_fd >= 0 && !ed->write_fn && isatty(ed->out_fd);
    const char *t = ed->term;
    bool dumb = !t || !*t || strcmp(t, "dumb") == 0;
    /* the defaults of a terminal that is not ours to ask */
    ed->c_intr = 3;
    ed->c_eof = 4;
    ed->c_susp = 0;
    ed->c_quit = 0;
    ed->specials = false;
    if (ed->in_tty) {
        struct termios tio;
        if (tcgetattr(ed->in_fd, &tio) == 0) {
            read_specials(ed, &tio);
            ed->specials = true;
        }
    }
    if (!ed->terminal) {
        /* plain lines: echo the line when the terminal did not */
        bool echoed = false;
        if (ed->in_tty && ed->out_tty && same_tty(ed->in_fd, ed->out_fd)) {
            struct termios tio;
            echoed = tcgetattr(ed->in_fd, &tio) == 0 && (tio.c_lflag & ECHO);
        }
        ed->plain_echo = !echoed;
    }
    (void)dumb;
}

/* ---- raw mode ---- */

static void make_raw(const struct termios *in, struct termios *raw)
{
    *raw = *in;
    raw->c_lflag &= ~(tcflag_t)(ICANON | ECHO | ECHONL | ISIG | IEXTEN);
    raw->c_iflag &= ~(tcflag_t)(IXON | ICRNL | INLCR | IGNCR | ISTRIP);
    raw->c_cc[VMIN] = 1;
    raw->c_cc[VTIME] = 0;
}

int kart__term_prep(kart_line *ed)
{
    if (ed->prepped)
        return 0;
    if (ed->in_tty) {
        struct termios tio, raw;
        if (tcgetattr(ed->in_fd, &tio) == 0) {
            ed->saved = tio;
            ed->have_saved = true;
            read_specials(ed, &tio);
            make_raw(&tio, &raw);
            while (tcsetattr(ed->in_fd, TCSANOW, &raw) < 0 && errno == EINTR)
                ;
        }
    }
    ed->prepped = true;
    if (ed->terminal && ed->set.enable_bracketed_paste) {
        kart__outs(ed, "\033[?2004h");
        ed->paste_on = true;
    }
    return 0;
}

void kart__term_deprep(kart_line *ed)
{
    if (!ed->prepped)
        return;
    if (ed->paste_on) {
        kart__outs(ed, "\033[?2004l");
        ed->paste_on = false;
    }
    /* the terminal's modes change after what was written before */
    kart__out_flush(ed, ed->drive == KART__DRIVE_BLOCK);
    if (ed->have_saved) {
        while (tcsetattr(ed->in_fd, TCSANOW, &ed->saved) < 0 && errno == EINTR)
            ;
        ed->have_saved = false;
    }
    ed->prepped = false;
}

/* Raw mode again after the process was continued (the shell may have put
 * its own modes back meanwhile). */
static void reprep(kart_line *ed)
{
    if (!ed->prepped || !ed->in_tty)
        return;
    struct termios tio, raw;
    if (tcgetattr(ed->in_fd, &tio) == 0) {
        if (!ed->have_saved) {
            ed->saved = tio;
            ed->have_saved = true;
        }
        make_raw(&ed->saved, &raw);
        tcsetattr(ed->in_fd, TCSANOW, &raw);
    }
}

/* ---- size ---- */

void kart__term_update_size(kart_line *ed)
{
    if (ed->size_fixed)
        return;
    struct winsize ws;
    int fds[2] = {ed->write_fn ? -1 : ed->out_fd, ed->in_fd};
    for (int i = 0; i < 2; i++) {
        if (fds[i] < 0)
            continue;
        memset(&ws, 0, sizeof(ws));
        if (ioctl(fds[i], TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
            ed->cols = ws.ws_col;
            ed->rows = ws.ws_row > 0 ? ws.ws_row : 24;
            return;
        }
    }
    const char *c = getenv("COLUMNS"), *l = getenv("LINES");
    long cv = c ? strtol(c, NULL, 10) : 0, lv = l ? strtol(l, NULL, 10) : 0;
    ed->cols = cv > 0 && cv < 100000 ? (unsigned)cv : 80;
    ed->rows = lv > 0 && lv < 100000 ? (unsigned)lv : 24;
}

/* ---- output ---- */

int kart__outs(kart_line *ed, const char *s)
{
    return kart__lbuf_add(&ed->out, s, strlen(s));
}

/* Writes what it can of data; returns bytes written or a negative error
 * (-EAGAIN included). */
static ssize_t write_some(kart_line *ed, const char *data, size_t len)
{
    if (ed->write_fn) {
        int r = ed->write_fn(ed->write_arg, data, len);
        return r < 0 ? r : (ssize_t)len;
    }
    for (;;) {
        ssize_t n;
        if (ed->out_sock != 0) {
            n = ed->out_sock == 2 ? kart__sys_write(ed->out_fd, data, len)
                                  : kart__sys_send(ed->out_fd, data, len, MSG_NOSIGNAL);
            if (n < 0 && errno == ENOTSOCK) {
                /* Only a pipe (or FIFO) raises SIGPIPE; a tty, a file or
                 * /dev/null never does, and is written to without the
                 * three signal-mask system calls below (they were most
                 * of a key's cost on such an output). */
                struct stat st;
                ed->out_sock = fstat(ed->out_fd, &st) == 0 && !S_ISFIFO(st.st_mode) ? 2 : 0;
                continue;
            }
            if (n >= 0 && ed->out_sock < 0)
                ed->out_sock = 1;
        } else {
            /* a pipe or tty: no SIGPIPE for a reader that went away */
            sigset_t pipe_set, old, pending;
            sigemptyset(&pipe_set);
            sigaddset(&pipe_set, SIGPIPE);
            sigpending(&pending);
            bool was_pending = sigismember(&pending, SIGPIPE);
            pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
            n = kart__sys_write(ed->out_fd, data, len);
            int e = errno;
            if (n < 0 && e == EPIPE && !was_pending) {
                struct timespec zero = {0, 0};
                while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                    ;
            }
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            errno = e;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        return n;
    }
}

static int wait_writable(kart_line *ed)
{
    struct pollfd p = {.fd = ed->out_fd, .events = POLLOUT};
    int r = poll(&p, 1, -1);
    if (r < 0 && errno != EINTR)
        return -errno;
    return 0;
}

/* Writes buf[*pos..len); returns 0, -EAGAIN (some left), or an error. */
static int write_all(kart_line *ed, const char *p, size_t len, size_t *pos, bool wait)
{
    while (*pos < len) {
        ssize_t n = write_some(ed, p + *pos, len - *pos);
        if (n == -EAGAIN) {
            if (!wait || ed->write_fn)
                return -EAGAIN;
            int r = wait_writable(ed);
            if (r < 0)
                return r;
            continue;
        }
        if (n < 0)
            return (int)n;
        if (n == 0) {
            /* nothing taken and no error: try again after waiting */
            if (!wait)
                return -EAGAIN;
            int r = wait_writable(ed);
            if (r < 0)
                return r;
            continue;
        }
        *pos += (size_t)n;
    }
    return 0;
}

int kart__out_flush(kart_line *ed, bool wait)
{
    if (ed->out_err) {
        ed->out.len = 0;
        return ed->out_err;
    }
    if (ed->outq.len > 0) {
        /* the queue first; what this batch made goes behind it */
        if (ed->out.len > 0) {
            if (kart__lbuf_add(&ed->outq, ed->out.p, ed->out.len) < 0) {
                ed->out.len = 0;
                return -ENOMEM;
            }
            ed->out.len = 0;
        }
        size_t pos = 0;
        int r = write_all(ed, ed->outq.p, ed->outq.len, &pos, wait);
        memmove(ed->outq.p, ed->outq.p + pos, ed->outq.len - pos);
        ed->outq.len -= pos;
        if (r < 0 && r != -EAGAIN) {
            ed->out_err = r;
            ed->outq.len = 0;
        }
        return r;
    }
    if (ed->out.len == 0)
        return 0;
    size_t pos = 0;
    int r = write_all(ed, ed->out.p, ed->out.len, &pos, wait);
    if (r == -EAGAIN) {
        if (kart__lbuf_add(&ed->outq, ed->out.p + pos, ed->out.len - pos) < 0)
            r = -ENOMEM;
    } else if (r < 0) {
        ed->out_err = r;
    }
    ed->out.len = 0;
    return r;
}

/* ---- signals of the blocking mode ---- */

static const int kart__line_sigs[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT, SIGALRM,
                                      SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGWINCH};
#define NSIGS (sizeof(kart__line_sigs) / sizeof(kart__line_sigs[0]))

/* The one piece of process-wide state: what the handlers saw, and which
 * thread reads (signals taken by another thread are passed on to it). */
/* (Lock-free atomics: safe in a handler, and ordered between threads.) */
static _Atomic int kart__line_sigflag[NSIGS];
static pthread_mutex_t kart__line_sig_lock = PTHREAD_MUTEX_INITIALIZER;
static bool kart__line_sig_owned;
static _Atomic pthread_t kart__line_sig_thread;
static _Atomic int kart__line_sig_thread_set;

struct kart__sigsave {
    struct sigaction old[NSIGS];
    bool installed[NSIGS];
    sigset_t oldmask;
    sigset_t ours;
    int reraise; /* SIGINT to raise again once the terminal is restored */
};

static void kart__line_sig_handler(int sig)
{
    int saved = errno;
    for (size_t i = 0; i < NSIGS; i++)
        if (kart__line_sigs[i] == sig)
            atomic_store(&kart__line_sigflag[i], 1);
    if (atomic_load(&kart__line_sig_thread_set)) {
        pthread_t reader = atomic_load(&kart__line_sig_thread);
        if (!pthread_equal(pthread_self(), reader))
            pthread_kill(reader, sig);
    }
    errno = saved;
}

static void set_handlers(kart__sigsave *s)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kart__line_sig_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the wait must end */
    for (size_t i = 0; i < NSIGS; i++)
        if (s->installed[i])
            sigaction(kart__line_sigs[i], &sa, NULL);
    pthread_sigmask(SIG_BLOCK, &s->ours, NULL);
}

static void put_back_handlers(kart__sigsave *s)
{
    for (size_t i = 0; i < NSIGS; i++)
        if (s->installed[i])
            sigaction(kart__line_sigs[i], &s->old[i], NULL);
    pthread_sigmask(SIG_SETMASK, &s->oldmask, NULL);
}

kart__sigsave *kart__term_signals_install(kart_line *ed)
{
    (void)ed;
    pthread_mutex_lock(&kart__line_sig_lock);
    if (kart__line_sig_owned) {
        pthread_mutex_unlock(&kart__line_sig_lock);
        return NULL;
    }
    kart__sigsave *s = calloc(1, sizeof(*s));
    if (!s) {
        pthread_mutex_unlock(&kart__line_sig_lock);
        return NULL;
    }
    kart__line_sig_owned = true;
    atomic_store(&kart__line_sig_thread, pthread_self());
    atomic_store(&kart__line_sig_thread_set, 1);
    pthread_mutex_unlock(&kart__line_sig_lock);
    sigemptyset(&s->ours);
    pthread_sigmask(SIG_BLOCK, NULL, &s->oldmask);
    for (size_t i = 0; i < NSIGS; i++) {
        atomic_store(&kart__line_sigflag[i], 0);
        if (sigaction(kart__line_sigs[i], NULL, &s->old[i]) < 0)
            continue;
        if (!(s->old[i].sa_flags & SA_SIGINFO) && s->old[i].sa_handler == SIG_IGN)
            continue; /* GNU leaves an ignored signal alone */
        s->installed[i] = true;
        sigaddset(&s->ours, kart__line_sigs[i]);
    }
    set_handlers(s);
    return s;
}

void kart__term_signals_remove(kart__sigsave *s)
{
    if (!s)
        return;
    put_back_handlers(s);
    pthread_mutex_lock(&kart__line_sig_lock);
    atomic_store(&kart__line_sig_thread_set, 0);
    kart__line_sig_owned = false;
    pthread_mutex_unlock(&kart__line_sig_lock);
    int re = s->reraise;
    free(s);
    if (re)
        raise(re);
}

int kart__term_wait(kart_line *ed, kart__sigsave *s, int64_t timeout_ns)
{
    struct pollfd p = {.fd = ed->in_fd, .events = POLLIN};
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    int r = kart__sys_ppoll(&p, 1, tsp, s ? &s->oldmask : NULL);
    if (r < 0)
        return errno == EINTR ? -EINTR : -errno;
    return r > 0 ? 1 : 0;
}

/* The cursor goes below the text, the terminal back to normal, the
 * previous handler runs for the signal (which may stop or end the
 * process), and if the process goes on the terminal is taken back: after a
 * stop the line is drawn again (on the row the shell left the cursor on),
 * after another signal the screen is as it was. */
static void pass_on(kart_line *ed, kart__sigsave *s, int sig, bool stop)
{
    bool was = ed->prepped;
    kart__display_move_end(ed);
    kart__term_deprep(ed);
    put_back_handlers(s);
    raise(sig);
    /* still here: continued, or the handler returned */
    set_handlers(s);
    if (was) {
        kart__term_prep(ed);
        if (stop) {
            kart__term_update_size(ed);
            kart__out(ed, "\r", 1);
            kart__display_reset(ed);
            kart__display_refresh(ed);
        }
        kart__out_flush(ed, true);
    }
}

int kart__term_handle_signals(kart_line *ed, kart__sigsave *s)
{
    int result = 0;
    if (!s)
        return 0;
    for (size_t i = 0; i < NSIGS; i++) {
        if (!atomic_exchange(&kart__line_sigflag[i], 0))
            continue;
        int sig = kart__line_sigs[i];
        switch (sig) {
        case SIGWINCH: {
            unsigned c = ed->cols, r = ed->rows;
            kart__term_update_size(ed);
            if (c != ed->cols || r != ed->rows) {
                kart__display_resize(ed);
                kart__display_refresh(ed);
                kart__out_flush(ed, true);
            }
            break;
        }
        case SIGCONT:
            kart__term_continued(ed);
            break;
        case SIGINT:
            s->reraise = SIGINT;
            result = -EINTR;
            break;
        case SIGTSTP:
        case SIGTTIN:
        case SIGTTOU:
            pass_on(ed, s, sig, true);
            break;
        default: /* SIGTERM, SIGHUP, SIGQUIT, SIGALRM */
            pass_on(ed, s, sig, false);
            break;
        }
    }
    return result;
}

/* ---- the tty's special keys ---- */

void kart__term_suspend(kart_line *ed, bool handled)
{
    if (handled) {
        /* a handler or watcher of ours restores and redraws */
        kill(0, SIGTSTP);
        return;
    }
    bool was = ed->prepped;
    kart__display_move_end(ed);
    kart__term_deprep(ed);
    kill(0, SIGTSTP);
    if (was) {
        kart__term_prep(ed);
        kart__term_update_size(ed);
        kart__out(ed, "\r", 1);
        kart__display_reset(ed);
        kart__display_refresh(ed);
    }
}

void kart__term_quit(kart_line *ed)
{
    bool was = ed->prepped;
    kart__display_move_end(ed);
    kart__term_deprep(ed);
    kill(0, SIGQUIT);
    if (was)
        kart__term_prep(ed);
}

/* Loop mode's SIGTSTP watcher: restore, stop, and take the terminal back
 * when continued. */
void kart__term_stop_self(kart_line *ed)
{
    bool was = ed->prepped;
    kart__display_move_end(ed);
    kart__term_deprep(ed);
    kill(getpid(), SIGSTOP);
    if (was) {
        kart__term_prep(ed);
        kart__term_update_size(ed);
        kart__out(ed, "\r", 1);
        kart__display_reset(ed);
        kart__display_refresh(ed);
        kart__out_flush(ed, false);
    }
}

/* SIGCONT (loop mode's watcher): raw mode again and a redraw. */
void kart__term_continued(kart_line *ed)
{
    reprep(ed);
    kart__term_update_size(ed);
    if (ed->d.shown) {
        kart__out(ed, "\r", 1);
        kart__display_reset(ed);
        kart__display_refresh(ed);
        kart__out_flush(ed, false);
    }
}

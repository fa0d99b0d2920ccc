/* Description: the line editor's screen as a real terminal emulator shows
 * it. Each case runs tests/line_demo.c (build/tests/line_demo) inside tmux
 * on a private server (-L kart-test-<pid>-<case>, killed at the end of the
 * case; its session ends by itself within a minute if a case dies first),
 * types with send-keys and reads the screen with capture-pane and the
 * cursor with display-message: wrapping with wide characters, a resize
 * (tmux resize-window), horizontal scrolling, printing above the line
 * (loop mode), completion lists, bracketed paste (paste-buffer -p),
 * interrupt and end of input, clear-screen. Every wait is bounded: the
 * screen is polled until the text is there, 5 s at most. Without tmux the
 * suite says so and passes no case (scripts/deps.sh installs it). */
#include "testutil.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

static char sock[64];
static char demo[PATH_MAX];
static bool have_tmux;

static int tmux(const char *fmt, ...)
{
    char cmd[4096], args[3800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "tmux -L %s %s >/dev/null 2>&1", sock, args);
    return system(cmd);
}

/* Whether the last tmux_out's command succeeded: it fails once the
 * server is gone (the demo ended, its session and the server with it). */
static bool tmux_ok;

/* The output of a tmux command (static buffer). */
static const char *tmux_out(const char *args)
{
    static char out[1 << 16];
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "tmux -L %s %s 2>/dev/null", sock, args);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;
    tmux_ok = f && pclose(f) == 0;
    out[n] = '\0';
    return out;
}

static const char *screen(void)
{
    return tmux_out("capture-pane -p");
}

/* Row r of the screen, trailing blanks cut. */
static const char *row(int r)
{
    static char line[1024];
    const char *s = screen();
    for (int i = 0; i < r && s; i++) {
        s = strchr(s, '\n');
        if (s)
            s++;
    }
    line[0] = '\0';
    if (!s)
        return line;
    size_t n = strcspn(s, "\n");
    if (n >= sizeof(line))
        n = sizeof(line) - 1;
    memcpy(line, s, n);
    while (n > 0 && line[n - 1] == ' ')
        n--;
    line[n] = '\0';
    return line;
}

static void cursor(int *x, int *y)
{
    const char *s = tmux_out("display-message -p '#{cursor_x} #{cursor_y}'");
    ck_assert_int_eq(sscanf(s, "%d %d", x, y), 2);
}

static void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    return kart_now_ns() / 1000000;
}

/* Waits until the screen shows text: 5 s at most by the clock, not by a
 * count of polls (each starts a shell and tmux, which a loaded machine
 * made take 200 ms: "250 polls" was a minute per wait), and not at all
 * once the server is gone (the demo ended: the text can never come). */
static bool wait_for(const char *text)
{
    int64_t until = now_ms() + 5000;
    for (;;) {
        if (strstr(screen(), text))
            return true;
        if (!tmux_ok || now_ms() >= until)
            return false;
        msleep(20);
    }
}

#define SHOWS(text) ck_assert_msg(wait_for(text), "screen lacks \"%s\":\n%s", text, screen())

/* Waits until the cursor is at x, y. */
#define CURSOR_AT(cx, cy)                                                                          \
    do {                                                                                           \
        int x_, y_;                                                                                \
        for (int64_t until_ = now_ms() + 5000; now_ms() < until_;) {                               \
            cursor(&x_, &y_);                                                                      \
            if (x_ == (cx) && y_ == (cy))                                                          \
                break;                                                                             \
            msleep(20);                                                                            \
        }                                                                                          \
        ck_assert_msg(x_ == (cx) && y_ == (cy), "cursor at %d,%d, want %d,%d:\n%s", x_, y_, (cx),  \
                      (cy), screen());                                                             \
    } while (0)

static void keys(const char *k)
{
    ck_assert_int_eq(tmux("send-keys %s", k), 0);
    msleep(30);
}

static void text(const char *t)
{
    char q[1024];
    /* single-quoted for the shell */
    size_t n = 0;
    q[n++] = '\'';
    for (const char *p = t; *p && n < sizeof(q) - 8; p++) {
        if (*p == '\'') {
            memcpy(q + n, "'\\''", 4);
            n += 4;
        } else {
            q[n++] = *p;
        }
    }
    q[n++] = '\'';
    q[n] = '\0';
    ck_assert_int_eq(tmux("send-keys -l %s", q), 0);
    msleep(30);
}

/* Kills the server this case started and removes its socket. */
static void stop(void)
{
    if (!sock[0])
        return;
    tmux("kill-server");
    const char *dir = getenv("TMUX_TMPDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/tmux-%d/%s", dir && *dir ? dir : "/tmp", (int)getuid(), sock);
    unlink(path);
    sock[0] = '\0';
}

/* Starts the demo with args, and env (VAR=value ...) in its environment. */
static void start_env(int w, int h, const char *env, const char *args)
{
    static int n;
    static bool registered;
    /* a failed assertion ends the case's process: stop() runs then too */
    if (!registered) {
        atexit(stop);
        registered = true;
    }
    snprintf(sock, sizeof(sock), "kart-test-%d-%d", (int)getpid(), n++);
    /* the demo ends by itself after a minute, and the server with it */
    ck_assert_int_eq(
        tmux("-f /dev/null new-session -d -x %d -y %d "
             "\"env TERM=xterm LANG=C.UTF-8 %s timeout --foreground 60 %s %s; sleep 3\"",
             w, h, env, demo, args),
        0);
    ck_assert_msg(wait_for(">"), "no prompt:\n%s", screen());
}

static void start(int w, int h, const char *args)
{
    start_env(w, h, "", args);
}

#define NEED_TMUX                                                                                  \
    if (!have_tmux)                                                                                \
        return;

START_TEST(tmux_types_and_accepts)
{
    NEED_TMUX;
    start(40, 10, "");
    text("hello world");
    SHOWS("> hello world");
    CURSOR_AT(13, 0);
    keys("C-a");
    CURSOR_AT(2, 0);
    keys("M-f");
    CURSOR_AT(7, 0);
    text(",");
    SHOWS("> hello, world");
    keys("Enter");
    SHOWS("got[hello, world]");
    ck_assert_str_eq(row(2), ">");
    CURSOR_AT(2, 2);
    /* the history and an edit of it */
    keys("Up");
    SHOWS("> hello, world");
    keys("M-BSpace");
    text("again");
    keys("Enter");
    SHOWS("got[hello, again]");
    stop();
}
END_TEST

START_TEST(tmux_wraps_wide_characters)
{
    NEED_TMUX;
    start(20, 8, "");
    text("abcdefghijklmnopq");
    CURSOR_AT(19, 0);
    text("中文字");
    SHOWS("中文字");
    ck_assert_str_eq(row(0), "> abcdefghijklmnopq");
    ck_assert_str_eq(row(1), "中文字");
    CURSOR_AT(6, 1);
    keys("C-a");
    CURSOR_AT(2, 0);
    text("Z");
    SHOWS("> Zabcdefghijklmnopq");
    ck_assert_str_eq(row(1), "中文字");
    text("Y");
    /* now the first wide character does not fit on row 0 either */
    SHOWS("> ZYabcdefghijklmnop");
    ck_assert_str_eq(row(1), "q中文字");
    keys("BSpace BSpace End");
    SHOWS("> abcdefghijklmnopq");
    CURSOR_AT(6, 1);
    text("e\xcc\x81");
    SHOWS("中文字e\xcc\x81");
    CURSOR_AT(7, 1);
    keys("Enter");
    SHOWS("got[abcdefghijklmnop"); /* the demo's output wraps too */
    SHOWS("q中文字e\xcc\x81]");
    stop();
}
END_TEST

START_TEST(tmux_resize)
{
    NEED_TMUX;
    start(40, 10, "");
    keys("Enter");
    SHOWS("got[]");
    text("abcdefghijklmnopqrstuvwxyz");
    SHOWS("> abcdefghijklmnopqrstuvwxyz");
    tmux("resize-window -x 20");
    SHOWS("stuvwxyz");
    /* the line, rewrapped at 20 columns, with the cursor after it */
    int x, y;
    cursor(&x, &y);
    ck_assert_str_eq(row(y), "stuvwxyz");
    ck_assert_str_eq(row(y - 1), "> abcdefghijklmnopqr");
    ck_assert_int_eq(x, 8);
    text("0");
    SHOWS("stuvwxyz0");
    keys("C-a");
    CURSOR_AT(2, y - 1);
    tmux("resize-window -x 30");
    SHOWS("> abcdefghijklmnopqrstuvwxyz0");
    keys("Enter");
    SHOWS("got[abcdefghijklmnopqrstuvwxyz\n0]");
    stop();
}
END_TEST

START_TEST(tmux_horizontal_scroll)
{
    NEED_TMUX;
    start(20, 6, "-b 'set horizontal-scroll-mode on'");
    text("abcdefghijklmnopqrstuvwxyz0123456789");
    SHOWS("6789");
    ck_assert_int_eq(row(0)[0], '<');
    ck_assert_str_eq(row(1), "");
    int x, y;
    cursor(&x, &y);
    ck_assert_int_eq(y, 0);
    ck_assert_int_lt(x, 20);
    keys("C-a");
    SHOWS("> abcdefghijklmnop>");
    CURSOR_AT(2, 0);
    keys("Enter");
    SHOWS("got[abcdefghijklmnop\nqrstuvwxyz0123456789\n]");
    stop();
}
END_TEST

START_TEST(tmux_print_above_in_loop_mode)
{
    NEED_TMUX;
    start(30, 8, "-l -A 300");
    text("partial 中");
    SHOWS("tick 2");
    /* the ticks go above; the line is drawn again below them */
    const char *s = screen();
    const char *t2 = strstr(s, "tick 2");
    const char *line = strstr(s, "> partial 中");
    ck_assert_ptr_nonnull(line);
    ck_assert(t2 < line);
    /* (a tick may come between two reads of the screen: read again) */
    int x = 0, y = 0, k;
    for (k = 0; k < 50; k++) {
        cursor(&x, &y);
        if (strcmp(row(y), "> partial 中") == 0 && x == 12)
            break;
        msleep(20);
    }
    ck_assert_msg(k < 50, "cursor %d,%d:\n%s", x, y, screen());
    keys("Enter");
    SHOWS("got[partial 中]");
    keys("C-d");
    SHOWS("eof");
    stop();
}
END_TEST

START_TEST(tmux_completion_list)
{
    NEED_TMUX;
    start(40, 10, "-c apple,apricot,avocado,banana");
    text("eat a");
    keys("Tab");
    keys("Tab");
    SHOWS("apple    apricot  avocado");
    ck_assert_str_eq(row(1), "apple    apricot  avocado");
    ck_assert_str_eq(row(2), "> eat a");
    CURSOR_AT(7, 2);
    text("v");
    keys("Tab");
    SHOWS("> eat avocado");
    CURSOR_AT(14, 2);
    keys("Enter");
    SHOWS("got[eat avocado ]");
    stop();
}
END_TEST

/* What a small REPL does with a user's init file: vi mode from an inputrc
 * line, a history file preloaded, completion, the screen after each step
 * (written first as a program from docs/line.md and docs/history.md). */
START_TEST(tmux_vi_mode_history_and_completion)
{
    NEED_TMUX;
    char hist[] = "/tmp/kart-tmux-hist-XXXXXX";
    int fd = mkstemp(hist);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "make check\n", 11), 11);
    close(fd);
    char args[256];
    snprintf(args, sizeof(args), "-b 'set editing-mode vi' -H %s -c help,history,quit", hist);
    start(40, 10, args);
    /* insert mode first; ESC, 0, cw changes the first word */
    text("foo bar");
    keys("Escape");
    keys("0");
    CURSOR_AT(2, 0);
    keys("c w");
    text("baz");
    SHOWS("> baz bar");
    keys("Enter");
    SHOWS("got[baz bar]");
    /* k k: back through the history (the file's entry last), the cursor
     * at the start */
    keys("Escape");
    keys("k");
    SHOWS("> baz bar");
    keys("k");
    SHOWS("> make check");
    CURSOR_AT(2, 2);
    keys("Enter");
    SHOWS("got[make check]");
    /* Tab in insert mode completes */
    text("he");
    keys("Tab");
    SHOWS("> help");
    keys("Enter");
    SHOWS("got[help ]");
    /* / searches the history back */
    keys("Escape");
    text("/baz");
    keys("Enter");
    SHOWS("> baz bar");
    keys("Enter");
    SHOWS("got[baz bar]");
    stop();
    unlink(hist);
}
END_TEST

START_TEST(tmux_paste_interrupt_clear)
{
    NEED_TMUX;
    start(40, 10, "");
    ck_assert_int_eq(tmux("set-buffer 'line1\nline2'"), 0);
    ck_assert_int_eq(tmux("paste-buffer -p"), 0);
    SHOWS("> line1^Jline2");
    keys("C-c");
    SHOWS("> line1^Jline2^C");
    SHOWS("intr");
    text("abc");
    keys("C-l");
    msleep(100);
    SHOWS("> abc");
    ck_assert_str_eq(row(0), "> abc");
    CURSOR_AT(5, 0);
    keys("C-u C-d");
    SHOWS("eof");
    stop();
}
END_TEST

START_TEST(tmux_long_line_taller_than_screen)
{
    NEED_TMUX;
    start(20, 5, "");
    char t[301];
    for (int i = 0; i < 300; i++)
        t[i] = (char)('a' + i % 26);
    t[300] = '\0';
    text(t);
    SHOWS("\nmn\n"); /* its end, on the last row */
    ck_assert_str_eq(row(4), "mn");
    CURSOR_AT(2, 4);
    keys("C-a");
    text("X");
    keys("End");
    text("!");
    SHOWS("!");
    int x, y;
    cursor(&x, &y);
    ck_assert_int_eq(y, 4);
    keys("Enter");
    SHOWS("jklmn!]");
    stop();
}
END_TEST

/* A terminal write that fails (ECONNRESET, injected into the demo) ends
 * the edit with that error, in the blocking and in the loop mode; and a
 * wait for a screen that can no longer come (the demo ended, its server
 * with it) returns at once: check-faults' write:6:ECONNRESET in this case
 * waited a minute per test, polling a dead server 250 times. */
START_TEST(tmux_write_error_ends_line)
{
    NEED_TMUX;
    for (int loop = 0; loop < 2; loop++) {
        /* write 1 is the prompt, 2 the first echo: 3 fails, at the
         * latest on Enter's line */
        start_env(40, 10, "KART_FAULT=write:3:ECONNRESET", loop ? "-l" : "");
        text("a");
        text("b");
        text("c");
        keys("Enter");
        SHOWS("error Connection reset by peer");
        /* The demo ends, and its session 3 s later. */
        int64_t until = now_ms() + 20000;
        while (tmux("has-session") == 0 && now_ms() < until)
            msleep(50);
        ck_assert_msg(tmux("has-session") != 0, "the demo did not end:\n%s", screen());
        int64_t t0 = now_ms();
        ck_assert(!wait_for("never shown"));
        ck_assert_int_lt(now_ms() - t0, 1000);
        stop();
    }
}
END_TEST

int main(void)
{
    have_tmux = system("command -v tmux >/dev/null 2>&1") == 0;
    ssize_t n = readlink("/proc/self/exe", demo, sizeof(demo) - 32);
    if (n > 0) {
        demo[n] = '\0';
        char *slash = strrchr(demo, '/');
        strcpy(slash ? slash + 1 : demo, "line_demo");
    }
    struct stat st;
    if (stat(demo, &st) != 0)
        have_tmux = false;
    if (!have_tmux)
        KART_SKIP_GROUP("the tmux cases: tmux or %s missing", demo);
    Suite *s = suite_create("line_tmux");
    TCase *tc = tcase_create("screen");
    tcase_add_test(tc, tmux_write_error_ends_line);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tmux_types_and_accepts);
    tcase_add_test(tc, tmux_wraps_wide_characters);
    tcase_add_test(tc, tmux_resize);
    tcase_add_test(tc, tmux_horizontal_scroll);
    tcase_add_test(tc, tmux_print_above_in_loop_mode);
    tcase_add_test(tc, tmux_completion_list);
    tcase_add_test(tc, tmux_vi_mode_history_and_completion);
    tcase_add_test(tc, tmux_paste_interrupt_clear);
    tcase_add_test(tc, tmux_long_line_taller_than_screen);
    suite_add_tcase(s, tc);
    return kt_run(s);
}

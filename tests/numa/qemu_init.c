/*
 * tests/numa/qemu_init.c — /init of the initramfs that `make check-numa`
 * boots under QEMU (tests/numa/qemu-run.sh). Linked statically, it mounts
 * /proc, /sys and /dev (the kernel mounts nothing), takes the serial
 * console as stdin/out/err, runs every program listed in /kart-tests/LIST
 * in order (each from /, with a time limit), then prints one verdict line
 * and powers the machine off.
 *
 * The host reads the console: each program's output, a line
 * "kart-qemu: <name> exit <status>", and finally
 * "kart-qemu: result PASS" or "kart-qemu: result FAIL (<n> failed)".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Seconds one program may run before it is killed and counted failed. */
#define PROGRAM_LIMIT_S 150

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("kart-qemu: ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

static void mount_one(const char *src, const char *dir, const char *type)
{
    mkdir(dir, 0755);
    if (mount(src, dir, type, 0, NULL) != 0 && errno != EBUSY)
        say("mount %s failed (errno %d)", dir, errno);
}

static void console(void)
{
    int fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd < 0)
        fd = open("/dev/ttyS0", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return;
    for (int i = 0; i < 3; i++)
        dup2(fd, i);
    if (fd > 2)
        close(fd);
}

/* Runs /kart-tests/<name>; its exit status, or 128+signal, or 255 when
 * it ran out of time or could not start. */
static int run(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "/kart-tests/%s", name);
    pid_t pid = fork();
    if (pid < 0)
        return 255;
    if (pid == 0) {
        char *argv[] = {path, NULL};
        char *envp[] = {"PATH=/", "HOME=/", "CK_DEFAULT_TIMEOUT=120", "CK_VERBOSITY=normal", NULL};
        execve(path, argv, envp);
        _exit(127);
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > PROGRAM_LIMIT_S) {
            say("%s ran past %d s: killed", name, PROGRAM_LIMIT_S);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 255;
        }
        usleep(20000);
    }
}

int main(void)
{
    mount_one("proc", "/proc", "proc");
    mount_one("sysfs", "/sys", "sysfs");
    mount_one("devtmpfs", "/dev", "devtmpfs");
    mount_one("tmpfs", "/tmp", "tmpfs");
    console();
    if (chdir("/") != 0)
        return 1;
    say("init up");

    int failed = 0, ran = 0;
    FILE *list = fopen("/kart-tests/LIST", "re");
    char line[256];
    while (list && fgets(line, sizeof(line), list)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        say("running %s", line);
        int rc = run(line);
        say("%s exit %d", line, rc);
        failed += rc != 0;
        ran++;
    }
    if (list)
        fclose(list);
    if (ran == 0) {
        say("no programs listed in /kart-tests/LIST");
        failed = 1;
    }
    if (failed)
        printf("kart-qemu: result FAIL (%d failed)\n", failed);
    else
        printf("kart-qemu: result PASS\n");
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    return 0; /* not reached: init exiting panics the kernel (panic=-1 reboots, -no-reboot ends QEMU) */
}

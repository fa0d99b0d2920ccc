/*
 * bench/env.c — where the figures come from: the machine, the build and
 * the peers, collected once per run, printed at the head of the tables and
 * recorded as the first line of the JSON.
 *
 *  - machine: CPU model, CPUs online, kernel, whether it is a VM, each
 *    CPU's cpufreq governor (none on most VMs), and how the kernel accounts
 *    softirq time (which decides what the servers' "+ softirq" CPU means).
 *  - build: kart's version and git commit, the compiler, and the flags of
 *    the library and of kart-bench (the Makefile passes them in).
 *  - peers: the version of every peer present — libuv, libevent and libev
 *    from their runtime calls, liburing from pkg-config at build time, OpenMP's
 *    runtime (gcc's libgomp) from the package that holds it, oneTBB from
 *    TBB_runtime_version(), GNU readline and libedit (linked only into the
 *    line peers, bench/peers/) from pkg-config at build time with the
 *    library file the peer program loads (ldd), nginx and wrk from their
 *    own version output, python3 from the interpreter the Python peers run
 *    (python.h: resolved once from $PATH) — and, where dpkg knows the
 *    file that runs, the Debian package and its version. The libraries
 *    are the ones mapped into this process (/proc/self/maps), the programs
 *    the ones on $PATH, so the record names what ran, not what a header
 *    said. Debian builds its packages as shared libraries with its
 *    hardening flags (dpkg-buildflags: -fstack-protector-strong,
 *    _FORTIFY_SOURCE, RELRO); a peer that no package holds is marked so.
 */
#include "harness.h"
#include "line_run.h"
#include "python.h"

#include <kart.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#if KART_BENCH_HAVE_LIBUV
#include <uv.h>
#endif
#if KART_BENCH_HAVE_LIBEVENT
#include <event2/event.h>
#endif
#if KART_BENCH_HAVE_LIBEV
/* From libev's ev.h, which cannot be included beside libevent's event.h
 * (both define EV_READ, EV_TIMEOUT...). */
int ev_version_major(void);
int ev_version_minor(void);
#endif
#if KART_BENCH_HAVE_TBB
/* oneTBB's C entry (oneapi/tbb/version.h, a C++ header): "2021.8.0". */
const char *TBB_runtime_version(void);
#endif

/* The Makefile's record of the build; absent when built some other way. */
#ifndef KART_BENCH_CC_VERSION
#define KART_BENCH_CC_VERSION ""
#endif
#ifndef KART_BENCH_LIB_FLAGS
#define KART_BENCH_LIB_FLAGS "unknown"
#endif
#ifndef KART_BENCH_FLAGS
#define KART_BENCH_FLAGS "unknown"
#endif
#ifndef KART_BENCH_GIT
#define KART_BENCH_GIT ""
#endif
/* pkg-config's versions of the line peers' libraries, at build time. */
#ifndef KART_BENCH_READLINE_VERSION
#define KART_BENCH_READLINE_VERSION ""
#endif
#ifndef KART_BENCH_LIBEDIT_VERSION
#define KART_BENCH_LIBEDIT_VERSION ""
#endif

typedef struct peer {
    const char *name;
    char version[128]; /* "" when absent */
    char path[PATH_MAX];
    char package[160]; /* "libuv1 1.44.2-1+deb12u1", or "" */
    char absent[96];   /* why it is absent, when it is */
    char note[256];    /* how it was found, when that needs saying; or "" */
} peer;

enum {
    P_LIBUV,
    P_LIBEVENT,
    P_LIBEV,
    P_LIBURING,
    P_OPENMP,
    P_TBB,
    P_READLINE,
    P_LIBEDIT,
    P_NGINX,
    P_WRK,
    P_PYTHON,
    NPEERS
};

static struct {
    bool done;
    char date[32];
    char cpu[200];
    long ncpus;
    char kernel[400];
    bool vm;
    char governor[160];
    char softirq[200];
    char compiler[200];
    char dpkg[64]; /* "" when dpkg answered; else why not */
    peer peers[NPEERS];
} env = {.peers = {{.name = "libuv"},
                   {.name = "libevent"},
                   {.name = "libev"},
                   {.name = "liburing"},
                   {.name = "openmp"},
                   {.name = "tbb"},
                   {.name = "readline"},
                   {.name = "libedit"},
                   {.name = "nginx"},
                   {.name = "wrk"},
                   {.name = "python3"}}};

const char *bench_find_program(const char *name, char *buf, size_t size)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, size, "%s/%s", d, name);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

/* What `sh -c cmd` prints (stdout; the command redirects stderr itself),
 * NUL-terminated, with trailing newlines cut; false if it would not run. */
static bool cmd_output(const char *cmd, char *buf, size_t size)
{
    buf[0] = '\0';
    fflush(NULL);
    FILE *f = popen(cmd, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, size - 1, f);
    char sink[4096];
    while (fread(sink, 1, sizeof(sink), f) > 0)
        ; /* the rest, so that the command does not die of SIGPIPE */
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    return pclose(f) != -1;
}

/* s inside single quotes for sh, appended to buf. */
static void sh_quote(char *buf, size_t size, const char *s)
{
    size_t len = strlen(buf);
    if (len + 1 < size)
        buf[len++] = '\'';
    for (; *s && len + 5 < size; s++) {
        if (*s == '\'') {
            memcpy(buf + len, "'\\''", 4);
            len += 4;
        } else {
            buf[len++] = *s;
        }
    }
    if (len + 1 < size)
        buf[len++] = '\'';
    buf[len] = '\0';
}

static void first_line(char *s)
{
    s[strcspn(s, "\n")] = '\0';
}

static void read_cpu(void)
{
    snprintf(env.cpu, sizeof(env.cpu), "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[4096];
    bool model = false;
    while (fgets(line, sizeof(line), f)) {
        char *v = strchr(line, ':');
        if (!v)
            continue;
        v += strspn(v + 1, " \t") + 1;
        v[strcspn(v, "\n")] = '\0';
        /* x86 says "model name", arm64 only "CPU part"; take the first. */
        if (!model && (strncmp(line, "model name", 10) == 0 || strncmp(line, "CPU part", 8) == 0)) {
            snprintf(env.cpu, sizeof(env.cpu), "%s", v);
            model = true;
        }
        if (strncmp(line, "flags", 5) == 0 && strstr(v, " hypervisor"))
            env.vm = true;
    }
    fclose(f);
}

/* Every online CPU's governor: one word when they agree. */
static void read_governor(void)
{
    env.governor[0] = '\0';
    bool mixed = false;
    for (long cpu = 0; cpu < env.ncpus && cpu < 1024; cpu++) {
        char path[96], g[64] = "";
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%ld/cpufreq/scaling_governor",
                 cpu);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (!fgets(g, sizeof(g), f))
            g[0] = '\0';
        fclose(f);
        first_line(g);
        if (!env.governor[0])
            snprintf(env.governor, sizeof(env.governor), "%s", g);
        else if (strcmp(env.governor, g) != 0)
            mixed = true;
    }
    if (mixed)
        snprintf(env.governor, sizeof(env.governor), "differs between CPUs (cpu0: see sysfs)");
}

/* CONFIG_IRQ_TIME_ACCOUNTING decides whether /proc/stat's softirq time is
 * measured (and kept out of the tasks' own CPU clocks) or tick-sampled
 * (and also inside the clock of whatever task it interrupted). */
static void read_softirq_accounting(const char *release)
{
    char cmd[600], out[512];
    snprintf(cmd, sizeof(cmd),
             "{ gzip -dc /proc/config.gz 2>/dev/null || cat /boot/config-%s 2>/dev/null; } | "
             "grep -E '^(# )?CONFIG_IRQ_TIME_ACCOUNTING[ =]'",
             release);
    cmd_output(cmd, out, sizeof(out));
    if (strstr(out, "CONFIG_IRQ_TIME_ACCOUNTING=y"))
        snprintf(env.softirq, sizeof(env.softirq),
                 "measured (CONFIG_IRQ_TIME_ACCOUNTING=y): apart from the process's clock");
    else if (strstr(out, "is not set"))
        snprintf(env.softirq, sizeof(env.softirq),
                 "tick-sampled (no CONFIG_IRQ_TIME_ACCOUNTING): softirq run in the server's "
                 "context is in its process CPU too");
    else
        snprintf(env.softirq, sizeof(env.softirq), "unknown (no kernel config to read)");
}

/* The file of the first mapping whose path holds needle, into buf. */
static bool mapped(const char *needle, char *buf, size_t size)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return false;
    char line[PATH_MAX + 128];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        char *p = strchr(line, '/');
        if (!p || !strstr(p, needle))
            continue;
        first_line(p);
        snprintf(buf, size, "%s", p);
        found = true;
    }
    fclose(f);
    return found;
}

/* `prog args` through sh, its first line of output (stdout and stderr). */
static void program_version(peer *p, const char *prog, const char *args, const char *strip)
{
    char path[PATH_MAX];
    if (!bench_find_program(prog, path, sizeof(path))) {
        snprintf(p->absent, sizeof(p->absent), "%s not installed", prog);
        return;
    }
    char cmd[PATH_MAX + 200] = "", out[512];
    sh_quote(cmd, sizeof(cmd), path);
    snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s 2>&1", args);
    cmd_output(cmd, out, sizeof(out));
    first_line(out);
    char *v = out;
    if (strip && strncmp(v, strip, strlen(strip)) == 0)
        v += strlen(strip);
    v[strcspn(v, "[")] = '\0'; /* wrk: "4.1.0 [epoll] Copyright ..." */
    for (size_t n = strlen(v); n > 0 && v[n - 1] == ' ';)
        v[--n] = '\0';
    snprintf(p->version, sizeof(p->version), "%.120s", *v ? v : "unknown version");
    if (!realpath(path, p->path))
        snprintf(p->path, sizeof(p->path), "%s", path);
}

/* A library only a line peer program links (readline, libedit): the
 * version pkg-config gave at build time, and the file the peer program
 * loads, as ldd resolves it (for its Debian package). */
static void line_lib_version(peer *p, const char *prog, const char *lib, const char *version)
{
    char bin[PATH_MAX];
    const char *why = NULL;
    if (!line_peer_path(prog, bin, sizeof(bin), &why)) {
        snprintf(p->absent, sizeof(p->absent), "%.90s", why ? why : "not built");
        return;
    }
    char cmd[PATH_MAX + 40] = "ldd ", out[4096];
    sh_quote(cmd, sizeof(cmd), bin);
    strcat(cmd, " 2>/dev/null");
    cmd_output(cmd, out, sizeof(out));
    /* "\tlibreadline.so.8 => /lib/x86_64-linux-gnu/libreadline.so.8 (0x...)" */
    const char *at = strstr(out, lib), *arrow = at ? strstr(at, "=> /") : NULL;
    if (arrow) {
        char file[PATH_MAX];
        snprintf(file, sizeof(file), "%.*s", (int)strcspn(arrow + 3, " \n"), arrow + 3);
        if (!realpath(file, p->path))
            snprintf(p->path, sizeof(p->path), "%s", file);
    }
    snprintf(p->version, sizeof(p->version), "%s", version[0] ? version : "unknown version");
    snprintf(p->note, sizeof(p->note), "%s%s%s%s", version[0] ? "pkg-config at build time" : "",
             version[0] && !arrow ? "; " : "", arrow ? "" : "ldd did not name the library of ",
             arrow ? "" : prog);
}

static void read_peers(void)
{
    peer *p = env.peers;
#if KART_BENCH_HAVE_LIBUV
    snprintf(p[P_LIBUV].version, sizeof(p[P_LIBUV].version), "%s", uv_version_string());
    mapped("/libuv.so", p[P_LIBUV].path, sizeof(p[P_LIBUV].path));
#else
    snprintf(p[P_LIBUV].absent, sizeof(p[P_LIBUV].absent), "not installed at build time");
#endif
#if KART_BENCH_HAVE_LIBEVENT
    snprintf(p[P_LIBEVENT].version, sizeof(p[P_LIBEVENT].version), "%s", event_get_version());
    mapped("/libevent", p[P_LIBEVENT].path, sizeof(p[P_LIBEVENT].path));
#else
    snprintf(p[P_LIBEVENT].absent, sizeof(p[P_LIBEVENT].absent), "not installed at build time");
#endif
#if KART_BENCH_HAVE_LIBEV
    snprintf(p[P_LIBEV].version, sizeof(p[P_LIBEV].version), "%d.%d", ev_version_major(),
             ev_version_minor());
    mapped("/libev.so", p[P_LIBEV].path, sizeof(p[P_LIBEV].path));
#else
    snprintf(p[P_LIBEV].absent, sizeof(p[P_LIBEV].absent), "not installed at build time");
#endif
#ifdef KART_BENCH_LIBURING_VERSION
    snprintf(p[P_LIBURING].version, sizeof(p[P_LIBURING].version), "%s",
             KART_BENCH_LIBURING_VERSION);
    mapped("/liburing.so", p[P_LIBURING].path, sizeof(p[P_LIBURING].path));
#else
    snprintf(p[P_LIBURING].absent, sizeof(p[P_LIBURING].absent), "kart built without io_uring");
#endif
#if KART_BENCH_HAVE_OPENMP && defined(_OPENMP)
    /* The runtime's own version is its package's (gcc's, for libgomp);
     * _OPENMP is the specification the compiler implements. */
    const char *rt = "libgomp";
    if (!mapped("/libgomp.so", p[P_OPENMP].path, sizeof(p[P_OPENMP].path)) &&
        mapped("/libomp.so", p[P_OPENMP].path, sizeof(p[P_OPENMP].path)))
        rt = "libomp";
    snprintf(p[P_OPENMP].version, sizeof(p[P_OPENMP].version), "%s (OpenMP %d)", rt, _OPENMP);
#else
    snprintf(p[P_OPENMP].absent, sizeof(p[P_OPENMP].absent), "built without -fopenmp");
#endif
    program_version(&p[P_NGINX], "nginx", "-v", "nginx version: nginx/");
    program_version(&p[P_WRK], "wrk", "--version", "wrk ");
#if KART_BENCH_HAVE_TBB
    snprintf(p[P_TBB].version, sizeof(p[P_TBB].version), "%.120s", TBB_runtime_version());
    mapped("/libtbb.so", p[P_TBB].path, sizeof(p[P_TBB].path));
#else
    snprintf(p[P_TBB].absent, sizeof(p[P_TBB].absent), "not installed at build time (libtbb-dev)");
#endif
    line_lib_version(&p[P_READLINE], "line-readline-peer", "libreadline.so",
                     KART_BENCH_READLINE_VERSION);
    line_lib_version(&p[P_LIBEDIT], "line-libedit-peer", "libedit.so", KART_BENCH_LIBEDIT_VERSION);
    program_version(&p[P_NGINX], "nginx", "-v", "nginx version: nginx/");
    program_version(&p[P_WRK], "wrk", "--version", "wrk ");
    /* The interpreter the Python peers exec (python.c resolved it once:
     * a shim on $PATH is asked for sys.executable). */
    const bench_python_info *py = bench_python_info_get();
    if (py->path[0]) {
        snprintf(p[P_PYTHON].version, sizeof(p[P_PYTHON].version), "%s", py->version);
        snprintf(p[P_PYTHON].path, sizeof(p[P_PYTHON].path), "%s", py->path);
        if (py->shim)
            snprintf(p[P_PYTHON].note, sizeof(p[P_PYTHON].note),
                     "started directly, not through $PATH's shim %.150s (asked once)", py->found);
    } else {
        snprintf(p[P_PYTHON].absent, sizeof(p[P_PYTHON].absent), "%.90s", py->why);
    }
}

/* /usr/lib/x <-> /lib/x and the like: merged-/usr systems map one, while
 * dpkg may have registered the other. */
static bool usr_twin(const char *path, char *buf, size_t size)
{
    static const char *const dirs[] = {"/lib", "/bin", "/sbin", "/lib64"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
        size_t n = strlen(dirs[i]);
        if (strncmp(path, "/usr", 4) == 0 && strncmp(path + 4, dirs[i], n) == 0 &&
            path[4 + n] == '/') {
            snprintf(buf, size, "%s", path + 4);
            return true;
        }
        if (strncmp(path, dirs[i], n) == 0 && path[n] == '/') {
            snprintf(buf, size, "/usr%s", path);
            return true;
        }
    }
    return false;
}

/* Which Debian package holds each peer's file, and its version. */
static void read_packages(void)
{
    char q[PATH_MAX + 8];
    if (!bench_find_program("dpkg-query", q, sizeof(q))) {
        snprintf(env.dpkg, sizeof(env.dpkg), "no dpkg here");
        return;
    }
    static char cmd[16384], out[16384];
    snprintf(cmd, sizeof(cmd), "dpkg-query -S");
    int asked = 0;
    for (int i = 0; i < NPEERS; i++) {
        peer *p = &env.peers[i];
        char twin[PATH_MAX];
        if (!p->version[0] || !p->path[0])
            continue;
        strcat(cmd, " ");
        sh_quote(cmd, sizeof(cmd), p->path);
        if (usr_twin(p->path, twin, sizeof(twin))) {
            strcat(cmd, " ");
            sh_quote(cmd, sizeof(cmd), twin);
        }
        asked++;
    }
    if (!asked)
        return;
    strcat(cmd, " 2>/dev/null");
    cmd_output(cmd, out, sizeof(out));
    /* "libuv1:amd64: /usr/lib/x86_64-linux-gnu/libuv.so.1.0.0" */
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *sep = strstr(line, ": /");
        if (!sep)
            continue;
        *sep = '\0';
        const char *file = sep + 2;
        line[strcspn(line, ":,")] = '\0'; /* the first package, no arch */
        for (int i = 0; i < NPEERS; i++) {
            peer *p = &env.peers[i];
            char twin[PATH_MAX];
            if (!p->version[0] || p->package[0])
                continue;
            if (strcmp(p->path, file) == 0 ||
                (usr_twin(p->path, twin, sizeof(twin)) && strcmp(twin, file) == 0))
                snprintf(p->package, sizeof(p->package), "%s", line);
        }
    }
    for (int i = 0; i < NPEERS; i++) {
        peer *p = &env.peers[i];
        if (!p->package[0])
            continue;
        char vcmd[400] = "dpkg-query -W -f '${Version}' ", v[128];
        sh_quote(vcmd, sizeof(vcmd), p->package);
        strcat(vcmd, " 2>/dev/null");
        cmd_output(vcmd, v, sizeof(v));
        first_line(v);
        size_t len = strlen(p->package);
        snprintf(p->package + len, sizeof(p->package) - len, " %s", v[0] ? v : "?");
    }
}

static void collect(void)
{
    if (env.done)
        return;
    env.done = true;
    time_t t = time(NULL);
    struct tm tm;
    strftime(env.date, sizeof(env.date), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    env.ncpus = sysconf(_SC_NPROCESSORS_ONLN);
    read_cpu();
    struct utsname u;
    if (uname(&u) != 0)
        snprintf(u.sysname, sizeof(u.sysname), "?");
    else
        snprintf(env.kernel, sizeof(env.kernel), "%s %s %s", u.sysname, u.release, u.machine);
    read_governor();
    read_softirq_accounting(u.release);
#if defined(__clang__)
    snprintf(env.compiler, sizeof(env.compiler), "clang %s", __clang_version__);
#elif defined(__GNUC__)
    snprintf(env.compiler, sizeof(env.compiler), "gcc %s", __VERSION__);
#else
    snprintf(env.compiler, sizeof(env.compiler), "unknown compiler");
#endif
    if (KART_BENCH_CC_VERSION[0]) /* `cc --version`, with the distribution's build */
        snprintf(env.compiler, sizeof(env.compiler), "%s", KART_BENCH_CC_VERSION);
    read_peers();
    read_packages();
}

void bench_env_print(FILE *out)
{
    collect();
    fprintf(out, "machine: %s, %ld CPUs online, %s%s, cpufreq governor: %s\n", env.cpu, env.ncpus,
            env.kernel, env.vm ? ", a VM" : "",
            env.governor[0] ? env.governor : "none (no cpufreq here)");
    fprintf(out, "  softirq time: %s\n", env.softirq);
    fprintf(out, "build: kart %s%s%s, %s\n", kart_version_string(),
            KART_BENCH_GIT[0] ? " git " : "", KART_BENCH_GIT, env.compiler);
    fprintf(out, "  kart's flags: %s\n  kart-bench's: %s\n", KART_BENCH_LIB_FLAGS,
            KART_BENCH_FLAGS);
    fprintf(out,
            "peers: %s; each with the Debian package that holds it, Debian's build "
            "(shared libraries, Debian's hardening flags) unless marked\n",
            env.dpkg[0] ? env.dpkg : "as installed");
    for (int i = 0; i < NPEERS; i++) {
        const peer *p = &env.peers[i];
        if (!p->version[0]) {
            fprintf(out, "  %-17s absent: %s\n", p->name, p->absent);
            continue;
        }
        fprintf(out, "  %-17s %s", p->name, p->version);
        if (p->package[0])
            fprintf(out, " (Debian %s)", p->package);
        else if (p->path[0])
            fprintf(out, " (%s: NOT a Debian package's build)", p->path);
        else
            fprintf(out, " (file not found)");
        if (p->note[0])
            fprintf(out, "; %s", p->note);
        if (i == P_PYTHON && p->package[0])
            fprintf(out, "; runs %s", p->path);
        fprintf(out, "\n");
    }
    fflush(out);
}

static void json_s(FILE *out, const char *key, const char *v, bool comma)
{
    fprintf(out, "%s\"%s\":\"", comma ? "," : "", key);
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

void bench_env_json(FILE *out, const bench_options *o)
{
    collect();
    fprintf(out, "{\"run\":{");
    json_s(out, "tool", "kart-bench", false);
    json_s(out, "mode", o->smoke ? "smoke" : o->quick ? "quick" : "full", true);
    fprintf(out, ",\"seed\":%llu", (unsigned long long)o->seed);
    json_s(out, "date", env.date, true);
    fprintf(out, ",\"machine\":{");
    json_s(out, "cpu", env.cpu, false);
    fprintf(out, ",\"cpus\":%ld", env.ncpus);
    json_s(out, "kernel", env.kernel, true);
    fprintf(out, ",\"vm\":%s", env.vm ? "true" : "false");
    if (env.governor[0])
        json_s(out, "governor", env.governor, true);
    else
        fprintf(out, ",\"governor\":null");
    json_s(out, "softirq_accounting", env.softirq, true);
    fprintf(out, "},\"build\":{");
    json_s(out, "kart", kart_version_string(), false);
    json_s(out, "git", KART_BENCH_GIT, true);
    json_s(out, "compiler", env.compiler, true);
    json_s(out, "kart_flags", KART_BENCH_LIB_FLAGS, true);
    json_s(out, "bench_flags", KART_BENCH_FLAGS, true);
    fprintf(out, "},\"peers\":{");
    for (int i = 0; i < NPEERS; i++) {
        const peer *p = &env.peers[i];
        fprintf(out, "%s\"%s\":{", i ? "," : "", env.peers[i].name);
        if (!p->version[0]) {
            json_s(out, "absent", p->absent, false);
        } else {
            json_s(out, "version", p->version, false);
            json_s(out, "path", p->path, true);
            if (p->package[0])
                json_s(out, "debian_package", p->package, true);
            fprintf(out, ",\"debian_build\":%s", p->package[0] ? "true" : "false");
            if (p->note[0])
                json_s(out, "note", p->note, true);
        }
        fprintf(out, "}");
    }
    fprintf(out, "}");
    json_s(out, "peer_builds",
           "Debian's packages where debian_build is true: shared libraries built with "
           "Debian's hardening flags",
           true);
    fprintf(out, "}}\n");
    fflush(out);
}

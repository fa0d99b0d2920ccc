/*
 * bench/backends.c — the kart-<backend> implementations of a scenario: one
 * per backend kart knows on Linux, plus any other it has compiled in.
 *
 * A backend that does not start here (io_uring disabled by sysctl or
 * seccomp, a placeholder not yet written) stays in the list as skipped,
 * with kart's own reason, so that a table never silently loses a row.
 */
#include "harness.h"

#include <kart.h>
#include <stdio.h>
#include <string.h>

/* The names DESIGN.md promises on Linux, in kart's order of preference. */
static const char *const linux_backends[] = {"uring", "epoll", "poll", "select"};

static int add(bench_impl *out, const char *backend, bench_run_fn run, bool edge_mode)
{
    *out = (bench_impl){.run = run, .arg = backend};
    snprintf(out->name, sizeof(out->name), "kart-%s", backend);
    int err = kart_backend_probe(backend);
    if (err < 0) {
        out->skip = kart_strerror(err);
        return 1;
    }
    kart_selector *sel;
    kart_selector_options so = {.backend = backend};
    if (edge_mode && kart_selector_create(&sel, &so) == 0) {
        if (kart_selector_caps(sel) & KART_CAP_EDGE) {
            out->modes[0] = "level";
            out->modes[1] = "edge";
        }
        kart_selector_free(sel);
    }
    return 1;
}

int bench_add_kart_backends(bench_impl *out, bench_run_fn run, bool edge_mode)
{
    int n = 0;
    for (size_t i = 0; i < sizeof(linux_backends) / sizeof(*linux_backends); i++)
        n += add(&out[n], linux_backends[i], run, edge_mode);
    for (const char *const *b = kart_backends(); *b; b++) {
        bool known = false;
        for (size_t i = 0; i < sizeof(linux_backends) / sizeof(*linux_backends); i++)
            known |= strcmp(*b, linux_backends[i]) == 0;
        if (!known && n < BENCH_MAX_IMPLS - 4)
            n += add(&out[n], *b, run, edge_mode);
    }
    return n;
}

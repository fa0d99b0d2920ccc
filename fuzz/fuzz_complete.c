/*
 * fuzz/fuzz_complete.c — libFuzzer target for the completer: the input is
 * a script, one operation per line, the first byte naming it and the rest
 * its argument — 'a'/'c'/'v'/'n' add a name (namespace, callable, value,
 * callable without arguments), 'p' adds one with a provider, 'r' removes
 * one, 'k' adds a keyword (the second byte picks the suffix), 'K' removes
 * one; any other line is a text to complete. Every call must answer one
 * of its documented codes, and every completion must hold candidates that
 * start with the text, strictly sorted, NULL-terminated, and the same
 * through kart_completer_next().
 */
#include <kart/complete.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int provide(void *arg, const char *path, const char *prefix, kart_complete_sink *sink)
{
    static const char *const names[] = {"a", "ab", "_x", "__y__", "b", "7", "a.b", "", "a b"};
    (void)arg;
    (void)prefix;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int r = kart_complete_sink_add(sink, names[i], (kart_complete_kind)(i % 4));
        if (r != 0 && r != -EINVAL)
            abort();
    }
    /* The path's own last component comes back as an attribute, so that
     * deeper paths have something to complete. */
    const char *dot = strrchr(path, '.');
    int r = kart_complete_sink_add(sink, dot ? dot + 1 : path, KART_COMPLETE_NAMESPACE);
    if (r != 0)
        abort();
    return path[0] == 'F'; /* a provider that fails, sometimes */
}

static void check_completion(kart_completer *c, const char *text, size_t len)
{
    kart_completions *m = NULL;
    int n = kart_completer_complete(c, text, len, &m);
    if (n < 0 || !m || m->count != (size_t)n || m->items[n] != NULL)
        abort();
    for (int i = 0; i < n; i++) {
        if (strlen(m->items[i]) < len || memcmp(m->items[i], text, len) != 0)
            abort();
        if (i > 0 && strcmp(m->items[i - 1], m->items[i]) >= 0)
            abort();
    }
    for (size_t state = 0;; state++) {
        char *s = NULL;
        int r = kart_completer_next(c, text, len, state, &s);
        if (r < 0 || (r == 0) != (state == (size_t)n))
            abort();
        if (r == 0) {
            if (s)
                abort();
            break;
        }
        if (strcmp(s, m->items[state]) != 0)
            abort();
        free(s);
    }
    kart_completions_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kart_completer *c;
    if (kart_completer_create(&c) != 0)
        abort();
    const char *p = (const char *)data, *end = p + size;
    char arg[256];
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        char op = len ? p[0] : '?';
        /* The argument as a C string (a NUL inside cuts it short). */
        size_t alen = len > 1 ? len - 1 : 0;
        if (alen >= sizeof(arg))
            alen = sizeof(arg) - 1;
        memcpy(arg, p + (len ? 1 : 0), alen);
        arg[alen] = '\0';
        int r;
        switch (op) {
        case 'a':
        case 'c':
        case 'v':
        case 'n': {
            kart_complete_kind kind = op == 'a'   ? KART_COMPLETE_NAMESPACE
                                      : op == 'c' ? KART_COMPLETE_CALLABLE
                                      : op == 'v' ? KART_COMPLETE_VALUE
                                                  : KART_COMPLETE_CALLABLE_NOARGS;
            r = kart_completer_add(c, arg, kind);
            if (r != 0 && r != -EINVAL && r != -EEXIST)
                abort();
            break;
        }
        case 'p':
            r = kart_completer_add_provider(c, arg, KART_COMPLETE_NAMESPACE, provide, NULL);
            if (r != 0 && r != -EINVAL && r != -EEXIST)
                abort();
            break;
        case 'r':
            r = kart_completer_remove(c, arg);
            if (r != 0 && r != -EINVAL && r != -ENOENT)
                abort();
            break;
        case 'k': {
            static const char *const sfx[] = {NULL, "", " ", ":", "(", "1234567890123456"};
            const char *s = sfx[alen ? (unsigned char)arg[0] % 6 : 0];
            r = kart_completer_add_keyword(c, alen ? arg + 1 : arg, s);
            if (r != 0 && r != -EINVAL && r != -EEXIST)
                abort();
            break;
        }
        case 'K':
            r = kart_completer_remove_keyword(c, arg);
            if (r != 0 && r != -ENOENT)
                abort();
            break;
        default:
            /* The whole line, NULs and all, as the text. */
            check_completion(c, p, len);
            break;
        }
        p += len + 1;
    }
    kart_completer_free(c);
    return 0;
}

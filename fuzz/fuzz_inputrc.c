/*
 * fuzz/fuzz_inputrc.c — libFuzzer target for the inputrc parser: random
 * text parsed into fresh settings and copies of GNU's default maps, then
 * every variable read back and every binding written in key notation
 * (which must parse back to the same bytes); all of it freed,
 * so that LeakSanitizer sees any leak. The text is also taken whole as a
 * quoted key sequence, which must survive the same round trip.
 *
 * $include must not reach the machine's files (/dev/tty would block, a
 * 1 MiB file would be slow): each $include line's file name is replaced by
 * one of a few files in a scratch folder, picked by the name's bytes:
 * bindings, a file that includes itself, two that include each other, one
 * with an open $if, and one that does not exist.
 */
#include "inputrc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static kart__keymap *defaults[KART__MAP_COUNT]; /* copied for each input */

static void put(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f))
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/kart-fuzz-inputrc-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    put("inc0.rc",
        "set editing-mode vi\n\"\\C-xa\": yank\nC-b: \"macro\"\nset keymap emacs-meta\nq: abort\n");
    put("inc1.rc", "$include inc1.rc\n");
    put("inc2.rc", "$include inc3.rc\n\"x\": abort\n");
    put("inc3.rc", "$include inc2.rc\n");
    put("inc4.rc", "$if mode=emacs\nset bell-style none\n");
    for (int i = 0; i < KART__MAP_COUNT; i++)
        if (kart__keymap_create_default(&defaults[i], (kart__map_id)i))
            abort();
    return 0;
}

static int nop_each(void *arg, const char *seq, size_t len, const kart__binding *b)
{
    (void)arg, (void)b;
    char text[KART__KEYSEQ_MAX * 5 + 1], back[KART__KEYSEQ_MAX];
    size_t n = kart__keyseq_format(seq, len, text, sizeof(text)), back_len;
    if (n >= sizeof(text) || kart__keyseq_parse(text, n, back, sizeof(back), &back_len) ||
        back_len != len || memcmp(back, seq, len))
        abort();
    return 0;
}

static bool is_include(const char *s, size_t n, size_t *arg)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == n || s[i] != '$')
        return false;
    for (i++; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
        ;
    if (n - i < 7 || !kart__line_name_eq(s + i, 7, "include"))
        return false;
    if (i + 7 < n && s[i + 7] != ' ' && s[i + 7] != '\t')
        return false;
    *arg = i + 7;
    return true;
}

/* The input with each $include's name replaced by a scratch file's. */
static char *sandbox(const uint8_t *data, size_t size, size_t *out_len)
{
    /* An $include line grows by at most the path of a scratch file. */
    size_t includes = 0;
    for (size_t i = 0; i < size; i++)
        includes += data[i] == '$';
    char *out = malloc(size + includes * (sizeof(dir) + 16) + 1);
    if (!out)
        abort();
    size_t o = 0, pos = 0;
    while (pos < size) {
        const char *s = (const char *)data + pos;
        const char *nl = memchr(s, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - s) : size - pos, arg;
        if (is_include(s, n, &arg)) {
            unsigned sum = 0;
            for (size_t i = arg; i < n; i++)
                sum += (unsigned char)s[i];
            memcpy(out + o, s, arg);
            o += arg;
            o += (size_t)sprintf(out + o, " %s/inc%u.rc", dir, sum % 6);
        } else {
            memcpy(out + o, s, n);
            o += n;
        }
        if (nl)
            out[o++] = '\n';
        pos += n + 1;
    }
    *out_len = o;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* The whole input as one key sequence. */
    char seq[KART__KEYSEQ_MAX];
    size_t seq_len;
    if (kart__keyseq_parse((const char *)data, size, seq, sizeof(seq), &seq_len) == 0)
        nop_each(NULL, seq, seq_len, NULL);
    if (kart__keyname_parse((const char *)data, size, seq, sizeof(seq), &seq_len) == 0 &&
        (seq_len == 0 || seq_len > KART__KEYSEQ_MAX))
        abort();

    kart__line_settings settings;
    if (kart__line_settings_init(&settings))
        abort();
    kart__inputrc_env env = {.settings = &settings, .term = "xterm-256color", .app_name = "fuzz"};
    for (int i = 0; i < KART__MAP_COUNT; i++)
        if (kart__keymap_copy(&env.maps[i], defaults[i]))
            abort();
    size_t len;
    char *text = sandbox(data, size, &len);
    int r = kart__inputrc_parse(&env, text, len, "fuzz.inputrc");
    free(text);
    if (r < 0)
        abort();
    char buf[256];
    for (const char *const *name = kart__line_setting_names; *name; name++)
        if (kart__line_setting_get(&settings, *name, buf, sizeof(buf)) < 0)
            abort();
    kart__line_settings copy;
    if (kart__line_settings_copy(&copy, &settings))
        abort();
    kart__line_settings_destroy(&copy);
    for (int i = 0; i < KART__MAP_COUNT; i++) {
        kart__keymap_each(env.maps[i], nop_each, NULL);
        kart__keymap_free(env.maps[i]);
    }
    kart__line_settings_destroy(&settings);
    return 0;
}

/*
 * core/line/line_fn.c — the bindable functions' names (GNU readline's
 * funmap) and the lookup of a name.
 *
 * GNU's rl_named_function compares without case and takes the first match,
 * so that in GNU "vi-bword" finds vi-bWord, which comes first in its table.
 * Here an exact match wins over a match that ignores case, so both names
 * of each such pair reach their own function.
 */
#include "line_fn.h"

#include <stdbool.h>
#include <string.h>

#define KART__LINE_FN_NAME(id, name) [KART__FN_##id] = name,
static const char *const fn_names[KART__FN_COUNT] = {KART__LINE_FUNCTIONS(KART__LINE_FN_NAME)};
#undef KART__LINE_FN_NAME

const char *kart__line_fn_name(enum kart__line_fn fn)
{
    if ((int)fn <= KART__FN_NONE || fn >= KART__FN_COUNT)
        return NULL;
    return fn_names[fn];
}

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

bool kart__line_name_eq(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (; i < alen; i++) {
        if (!b[i] || ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return false;
    }
    return b[i] == '\0';
}

enum kart__line_fn kart__line_fn_lookup(const char *name, size_t len)
{
    if (!name)
        return KART__FN_NONE;
    for (int fn = KART__FN_NONE + 1; fn < KART__FN_COUNT; fn++) {
        if (strlen(fn_names[fn]) == len && memcmp(fn_names[fn], name, len) == 0)
            return (enum kart__line_fn)fn;
    }
    for (int fn = KART__FN_NONE + 1; fn < KART__FN_COUNT; fn++) {
        if (kart__line_name_eq(name, len, fn_names[fn]))
            return (enum kart__line_fn)fn;
    }
    return KART__FN_NONE;
}

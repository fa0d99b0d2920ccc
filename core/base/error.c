/*
 * core/error.c — names for every code a kart function returns: negative
 * errnos through strerror's table (thread-safely, via strerrordesc_np when
 * glibc has it) and kart's own KART_E* codes.
 */
#include "compiler.h"

#include <kart/common.h>

#include <string.h>

struct kart_code {
    int code;
    const char *name;
    const char *text;
};

static const struct kart_code kart_codes[] = {
    {KART_ENOBACKEND, "KART_ENOBACKEND", "no event backend could be started"},
    {KART_EUNKNOWNBACKEND, "KART_EUNKNOWNBACKEND", "unknown or not compiled-in event backend"},
    {KART_EBROKEN, "KART_EBROKEN", "barrier is broken"},
    {KART_ENOTSTARTED, "KART_ENOTSTARTED", "process not started"},
    {KART_ETASKDONE, "KART_ETASKDONE", "task_done() called more times than messages were put"},
    {KART_EAUTH, "KART_EAUTH", "authentication failed: wrong digest"},
    {KART_EEOF, "KART_EEOF", "end of file: the peer closed the connection"},
    {KART_ETRUNCATED, "KART_ETRUNCATED", "end of file in the middle of a message"},
    {KART_EBADFRAME, "KART_EBADFRAME", "malformed message length"},
    {KART_EHANDSHAKE, "KART_EHANDSHAKE",
     "authentication handshake failed (protocol error or timeout)"},
    {KART_EWORKERDIED, "KART_EWORKERDIED", "the pool worker running the task died"},
    {KART_EHISTEVENT, "KART_EHISTEVENT", "history expansion: event not found"},
    {KART_EHISTWORD, "KART_EHISTWORD", "history expansion: bad word specifier"},
    {KART_EHISTMODIFIER, "KART_EHISTMODIFIER", "history expansion: unrecognized modifier"},
    {KART_EHISTSUBST, "KART_EHISTSUBST", "history expansion: substitution failed"},
};

static const struct kart_code *find_kart_code(int err)
{
    for (size_t i = 0; i < KART__ARRAY_LEN(kart_codes); i++)
        if (kart_codes[i].code == err)
            return &kart_codes[i];
    return NULL;
}

KART_API const char *kart_strerror(int err)
{
    if (err == 0)
        return "success";
    const struct kart_code *k = find_kart_code(err);
    if (k)
        return k->text;
    if (err < 0 && err > KART_EBASE) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
#else
        /* strerror() of a valid errno returns a static table entry on the
         * systems kart supports. */
        const char *s = strerror(-err);
        if (s)
            return s;
#endif
    }
    return "unknown error";
}

KART_API const char *kart_err_name(int err)
{
    if (err == 0)
        return "OK";
    const struct kart_code *k = find_kart_code(err);
    if (k)
        return k->name;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    if (err < 0 && err > KART_EBASE) {
        const char *s = strerrorname_np(-err);
        if (s)
            return s;
    }
#endif
    return "UNKNOWN";
}

KART_API const char *kart_version_string(void)
{
#define KART_STR2(x) #x
#define KART_STR(x) KART_STR2(x)
    return KART_STR(KART_VERSION_MAJOR) "." KART_STR(KART_VERSION_MINOR) "." KART_STR(
        KART_VERSION_PATCH);
}

/*
 * kart/complete.h — rlcompleter's job in C: completing names from a
 * namespace the program registers, for a line editor's Tab key (or any
 * other caller).
 *
 * The program registers dotted names ("pool.workers", "loop.stats"), each
 * with a kind, and keywords (command words, kept apart from the names).
 * Completing a text then answers as Python 3.13's rlcompleter.Completer
 * does with a namespace:
 *  - Text without a dot ("po"): the top-level names and the keywords that
 *    start with it.
 *  - Text with a dot ("pool.wo"): the attributes of the object named
 *    before the last dot ("pool") that start with what follows it ("wo"),
 *    each as the full dotted text ("pool.workers"). A text whose part
 *    before the last dot is not a well-formed dotted name ("a..b", ".x")
 *    or names nothing known has no candidates (rlcompleter returns [] when
 *    its eval fails).
 *  - Names starting with '_' are hidden unless the last component of the
 *    text starts with '_' — rlcompleter's attr_matches rule, exactly: with
 *    an empty last component, names starting with '_' are left out unless
 *    that would leave nothing, and then every name is shown; with "_",
 *    names starting with "__" are left out unless that would leave
 *    nothing. kart applies the rule at the top level too (rlcompleter
 *    shows every global), so that "<Tab>" on an empty word lists the
 *    public names only.
 *  - A callable gets "(" appended, or "()" when it takes no arguments
 *    (rlcompleter appends "()" when the signature has no parameters); a
 *    keyword gets the suffix it was registered with (rlcompleter appends
 *    " " to most keywords, ":" to try and finally, nothing to True, pass
 *    and a few others: in C the program says which). The editor inserts a
 *    candidate as it is and appends nothing of its own, as Python's
 *    readline module does.
 *  - The candidates are sorted (byte order of the whole candidate, suffix
 *    included, as rlcompleter's matches.sort()) and without duplicates. A
 *    keyword hides a name spelled the same (rlcompleter's `seen` set).
 *
 * A name whose attributes change while the program runs (the open
 * connections under "conns") gets a provider: a callback that lists the
 * attributes of its name, and of every path below it, when a completion
 * asks for them ("conns.<Tab>", "conns.7.<Tab>").
 *
 * Names. A name is one or more components joined by '.'; a component is
 * one or more bytes, each printable ASCII other than '.' (0x21..0x7e: no
 * space, no control character) or any byte from 0x80 (UTF-8 is passed
 * through as bytes). "", ".x", "x.", "a..b" and "a b" are not names
 * (-EINVAL). A keyword is a single component.
 *
 * Memory: nothing is global; each completer owns its names. Candidates
 * come back in one allocation that kart_completions_free() releases.
 *
 * Thread safety: one thread at a time. A completer is the state of one
 * console: it is filled while the program sets up and read by the thread
 * that runs its editor. Data that other threads change (connections
 * coming and going) is read through a provider at completion time, under
 * the program's own lock, instead of being pushed into the completer from
 * those threads; a lock inside the completer would be held across the
 * providers' calls into the program, which is where deadlocks come from.
 * Separate completers share nothing and may be used by different threads
 * at once.
 */
#ifndef KART_COMPLETE_H
#define KART_COMPLETE_H

#include <kart/common.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_completer kart_completer;

/* What a name is, which decides what its candidate ends with. Any name
 * may have attributes, whatever its kind. */
typedef enum kart_complete_kind {
    KART_COMPLETE_VALUE = 0,       /* "name" */
    KART_COMPLETE_CALLABLE,        /* "name(" */
    KART_COMPLETE_CALLABLE_NOARGS, /* "name()": a callable without parameters */
    KART_COMPLETE_NAMESPACE,       /* "name": an object for its attributes */
} kart_complete_kind;

/* The longest keyword suffix, in bytes. */
#define KART_COMPLETE_SUFFIX_MAX 15

/*
 * The candidates of one completion, in one allocation: items[0..count)
 * are NUL-terminated strings, sorted and distinct, and items[count] is
 * NULL (an argv-style array, as readline's rl_completion_matches takes).
 * Read-only; kart_completions_free() releases it all.
 */
typedef struct kart_completions {
    size_t count;
    char **items;
    /* 0, or the nonzero value the provider returned (its candidates are
     * left out; the registered names' stay). A provider's failure is its
     * own result, never the call's. */
    int provider_result;
} kart_completions;

/* Where a provider puts the attributes it lists (kart_complete_sink_add).
 * Valid only during the provider's call: it must not be kept. */
typedef struct kart_complete_sink kart_complete_sink;

/*
 * A provider lists the attributes of path: the name it was registered on,
 * or a path below it ("conns", "conns.7"). prefix is the part of the text
 * after the last dot (possibly ""): the provider may list only the
 * attributes that start with it, or all of them (the completer filters).
 * It adds each with kart_complete_sink_add() and returns 0, or a nonzero
 * value of its own to say it failed (kart_completions.provider_result).
 * It runs on the thread that asked for the completion, inside
 * kart_completer_complete() or kart_completer_next(); it must not call
 * the functions of this completer, other than through the sink (they
 * return -EBUSY), nor free it.
 */
typedef int (*kart_complete_provider)(void *arg, const char *path, const char *prefix,
                                      kart_complete_sink *sink);

/* A new, empty completer in *out. Errors: -EINVAL (out NULL), -ENOMEM. */
KART_API int kart_completer_create(kart_completer **out);

/* Frees the completer and everything it holds. NULL is accepted. Not from
 * inside one of its providers. */
KART_API void kart_completer_free(kart_completer *c);

/*
 * Registers name ("pool.workers") with kind. The names before it
 * ("pool") that are not registered yet come into being as namespaces
 * (implicit ones: they go away with their last attribute, and registering
 * one later gives it its kind without -EEXIST).
 * Errors: -EINVAL (c or name NULL, name not a name, kind unknown),
 * -EEXIST (name is registered already), -ENOMEM, -EBUSY (called from one
 * of c's providers). On error nothing changed.
 */
KART_API int kart_completer_add(kart_completer *c, const char *name, kart_complete_kind kind);

/*
 * Registers name as kart_completer_add() does, with fn(arg, ...) as the
 * provider of its attributes and of the attributes of every path below
 * it (a nearer provider below takes over its own subtree). Attributes
 * registered under name with kart_completer_add() are listed too; where
 * both have one, the registered name's kind wins. fn is called only
 * during completions, never from this call.
 * Errors: as kart_completer_add(), and -EINVAL for fn NULL.
 */
KART_API int kart_completer_add_provider(kart_completer *c, const char *name,
                                         kart_complete_kind kind, kart_complete_provider fn,
                                         void *arg);

/*
 * Removes name, with every name below it (as Python's `del` takes the
 * object's attributes with it) and its provider; implicit names left
 * without attributes go too.
 * Errors: -EINVAL (c or name NULL, name not a name), -ENOENT (name is not
 * there, registered or implicit), -EBUSY (called from a provider).
 */
KART_API int kart_completer_remove(kart_completer *c, const char *name);

/*
 * Registers a keyword: a word offered with the top-level names and
 * completed as word + suffix. suffix NULL or "" adds nothing; " " is the
 * usual choice for a word that takes arguments. Keywords and names are
 * separate: a keyword may be spelled as a name (the keyword's candidate
 * is the one offered).
 * Errors: -EINVAL (c or word NULL, word not a single component, suffix
 * longer than KART_COMPLETE_SUFFIX_MAX or holding a control byte),
 * -EEXIST (word is a keyword already), -ENOMEM, -EBUSY.
 */
KART_API int kart_completer_add_keyword(kart_completer *c, const char *word, const char *suffix);

/* Removes a keyword. Errors: -EINVAL (c or word NULL), -ENOENT (not a
 * keyword), -EBUSY. */
KART_API int kart_completer_remove_keyword(kart_completer *c, const char *word);

/*
 * Completes text (len bytes; it need not be NUL-terminated): *out
 * receives the candidates (as described at the top), to be released with
 * kart_completions_free(), even when there are none. Returns the count.
 * For a line editor's hook (line, begin, end): text = line + begin, len =
 * end - begin; each candidate replaces that span.
 * Errors: -EINVAL (c or out NULL, text NULL with len > 0), -ENOMEM (also
 * when a provider's kart_complete_sink_add failed for memory), -EBUSY
 * (called from a provider). *out is written only on success.
 */
KART_API int kart_completer_complete(kart_completer *c, const char *text, size_t len,
                                     kart_completions **out);

/* Releases candidates. NULL is accepted. */
KART_API void kart_completions_free(kart_completions *m);

/*
 * Python's complete(text, state) protocol, which is also GNU readline's
 * generator protocol: state 0 computes the candidates of text and keeps
 * them; state 1, 2, ... return the next ones. *match receives a malloc'd
 * copy of candidate number state, which the caller frees with free().
 * Returns 1 with *match set, 0 when state is past the last candidate
 * (Python's None; *match is set to NULL). The kept list is computed again
 * when state is 0, when text differs from the kept one, or when names or
 * keywords changed since. A provider's result is not reported here (use
 * kart_completer_complete() to see it).
 * Errors: -EINVAL (c or match NULL, text NULL with len > 0), -ENOMEM,
 * -EBUSY.
 */
KART_API int kart_completer_next(kart_completer *c, const char *text, size_t len, size_t state,
                                 char **match);

/*
 * From a provider: offers name, one component ("7", "close"), of kind.
 * Names that do not start with the prefix, or that repeat one already
 * offered, are accepted and dropped.
 * Errors: -EINVAL (sink or name NULL, name not a single component, kind
 * unknown: the name is skipped), -ENOMEM (the completion then fails with
 * -ENOMEM).
 */
KART_API int kart_complete_sink_add(kart_complete_sink *sink, const char *name,
                                    kart_complete_kind kind);

#ifdef __cplusplus
}
#endif

#endif

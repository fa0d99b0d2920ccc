/*
 * kart/history.h — the line editor's history (GNU readline's history
 * library, Python's readline history calls): a list of entries with
 * timestamps, a length limit, the HISTCONTROL options of shells, files in
 * GNU readline's format, searching, and csh-style history expansion (!!,
 * !n, !-n, !prefix, !?substr?, !$, !^, !*, ^old^new).
 *
 * Entries are byte strings of at most KART_HISTORY_MAX_LEN bytes: any byte
 * but a newline, NUL and invalid UTF-8 included, and not ending in a
 * carriage return. The file format cannot hold a newline inside an entry
 * (GNU readline writes it as is and reads it back as two entries) nor a
 * trailing CR (a CRLF line end): kart refuses both when they are added
 * (-EINVAL), so that whatever the history holds survives a write and a
 * read, entry for entry. Lines read from files are cut at their newline
 * and lose every CR before it.
 *
 * Numbering: kart_history_get() takes the 1-based history number of
 * Python's get_history_item and of `!n` (the oldest entry is number
 * kart_history_base(), 1 until the length limit drops entries, GNU's
 * history_base); every other call takes a 0-based index into the entries
 * held now (0 is the oldest, length - 1 the newest), as Python's
 * remove_history_item and replace_history_item do.
 *
 * Timestamps are seconds since the epoch (time(2)); an entry gets the
 * current time when it is added; entries read from a file without a
 * timestamp line have time 0, "unknown", which bash shows as "??".
 *
 * Thread safety: one thread at a time. Several editors may share one
 * history (each holds a pointer; the history must outlive them) when they
 * run in one thread, or when the caller serializes every call. Files are
 * safe across processes: see kart_history_append().
 *
 * Fork: a child gets its own copy, as of any memory.
 */
#ifndef KART_HISTORY_H
#define KART_HISTORY_H

#include <kart/common.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kart_history kart_history;

/* The longest entry, in bytes (1 MiB). kart_history_add of a longer one is
 * -EMSGSIZE; a longer line in a file is skipped and counted. */
#define KART_HISTORY_MAX_LEN ((size_t)1 << 20)

/* The largest timestamp an entry holds, 2^43 - 1 seconds (some 278,000
 * years): kart_history_set_time refuses more, and a larger one in a file
 * reads as this. */
#define KART_HISTORY_TIME_MAX ((int64_t)((UINT64_C(1) << 43) - 1))

/* kart_history_stifle()'s "no limit", and kart_history_max()'s answer when
 * the history is not stifled. */
#define KART_HISTORY_UNLIMITED SIZE_MAX

/* Options: the all-zero value (or NULL) is every default, all off. */
typedef struct kart_history_options {
    /* HISTCONTROL=ignorespace: kart_history_add ignores a line that starts
     * with a space. */
    bool ignore_space;
    /* HISTCONTROL=ignoredups: kart_history_add ignores a line equal to the
     * newest entry. */
    bool ignore_dups;
    /* HISTCONTROL=erasedups: kart_history_add first removes every older
     * entry equal to the line. */
    bool erase_dups;
    /* The editor runs kart_history_expand() on each accepted line (bash's
     * `set -H`). The history itself only stores this flag:
     * kart_history_expand() always expands when called. */
    bool expand;
    /* Writes and appends put a "#<seconds>" line before each entry
     * (GNU's history_write_timestamps, bash's HISTTIMEFORMAT). */
    bool write_timestamps;
    /* kart_history_write fsyncs the new file before renaming it into
     * place (GNU readline does not). */
    bool fsync;
} kart_history_options;

/* A new, empty, unlimited history; opts may be NULL. -EINVAL (out NULL),
 * -ENOMEM. */
KART_API int kart_history_create(kart_history **out, const kart_history_options *opts);
/* NULL is accepted. Every pointer from kart_history_text() dies with it. */
KART_API void kart_history_free(kart_history *h);
/* Replaces the options (NULL: the defaults); applies to later calls only
 * (turning erase_dups on does not dedupe what is there). */
KART_API void kart_history_set_options(kart_history *h, const kart_history_options *opts);
KART_API void kart_history_get_options(const kart_history *h, kart_history_options *out);

/* ---- entries ---- */

/* Adds line (len bytes) as the newest entry, with the current time,
 * unless the options say to ignore it; with a length limit the oldest
 * entry makes room (a limit of 0 keeps nothing). Returns 1 when it was
 * added and kept, 0 when ignored (ignore_space, ignore_dups, a limit of
 * 0); -EINVAL (line NULL with len > 0, a newline in it, a CR at its end),
 * -EMSGSIZE (len > KART_HISTORY_MAX_LEN), -ENOMEM; on error the history is
 * unchanged. An empty line is an entry like any other, but is never
 * written to a file (GNU readline skips empty lines when reading). */
KART_API int kart_history_add(kart_history *h, const char *line, size_t len);

/* Python's get_history_item(number): copies the entry numbered number
 * (1-based, from kart_history_base()) and a terminating NUL into buf (cap
 * bytes), *len receiving its length (without the NUL). -ENOENT (no entry
 * has that number), -ENOBUFS (cap <= its length: *len receives the length,
 * nothing is copied). */
KART_API int kart_history_get(const kart_history *h, size_t number, char *buf, size_t cap,
                              size_t *len);
/* The number of the oldest entry: 1, plus every entry the length limit
 * dropped since the history was created or cleared. */
KART_API size_t kart_history_base(const kart_history *h);
/* How many entries there are now. */
KART_API size_t kart_history_length(const kart_history *h);

/* The editor's accessor: the text of entry index (0-based) and its length
 * in *len (may be NULL), or NULL when index >= length. The text is
 * NUL-terminated (and may hold NULs of its own: use *len). The pointer is
 * valid until the next call that changes the list of entries (add,
 * replace, remove, clear, stifle, read, free); the other calls (get,
 * set_time, search, expand, set_options, write, append) keep it. */
KART_API const char *kart_history_text(const kart_history *h, size_t index, size_t *len);
/* The timestamp of entry index (>= 0; 0: unknown), or -ENOENT. */
KART_API int64_t kart_history_time(const kart_history *h, size_t index);
/* Sets it. -ENOENT, -EINVAL (negative, or over KART_HISTORY_TIME_MAX). */
KART_API int kart_history_set_time(kart_history *h, size_t index, int64_t seconds);

/* Python's remove_history_item(index): removes entry index (0-based);
 * later entries move down one. -ENOENT (index >= length). */
KART_API int kart_history_remove(kart_history *h, size_t index);
/* Python's replace_history_item(index, line): new text for entry index,
 * which keeps its time. -ENOENT, and add's -EINVAL, -EMSGSIZE, -ENOMEM;
 * the options (ignore_*, erase_dups) do not apply. */
KART_API int kart_history_replace(kart_history *h, size_t index, const char *line, size_t len);
/* Removes every entry; the base goes back to 1. The limit stays. */
KART_API void kart_history_clear(kart_history *h);

/* Limits the history to its newest max entries (GNU's stifle_history),
 * dropping the oldest ones now and on every later add or read;
 * KART_HISTORY_UNLIMITED lifts the limit (unstifle_history). */
KART_API void kart_history_stifle(kart_history *h, size_t max);
/* The limit, or KART_HISTORY_UNLIMITED. */
KART_API size_t kart_history_max(const kart_history *h);

/* ---- searching ---- */

/* Flags of kart_history_search. */
/* The entry must start with the pattern (history-search-backward), rather
 * than contain it anywhere (C-r, C-s). */
#define KART_HISTORY_SEARCH_PREFIX 0x1u
/* Search from index towards the newest entry (index, index + 1, ...)
 * rather than towards the oldest (index, index - 1, ..., 0). */
#define KART_HISTORY_SEARCH_FORWARD 0x2u

/* Finds the first entry, starting at index (0-based) and going the way
 * flags say, whose text contains pat (plen bytes; any bytes), or starts
 * with it. *found receives the entry's index and *offset (may be NULL)
 * where pat is in it: the last place in the entry when searching towards
 * the oldest, the first when searching forward (0 for a prefix). A
 * backward search from an index past the end starts at the newest entry:
 * SIZE_MAX means "from the newest". Returns 0 or -ENOENT (no entry
 * matches); -EINVAL (pat NULL with plen > 0, found NULL, unknown flags). */
KART_API int kart_history_search(const kart_history *h, size_t index, const char *pat, size_t plen,
                                 unsigned flags, size_t *found, size_t *offset);

/* ---- files ----
 *
 * GNU readline's format: one entry per line; with timestamps, a line
 * "#<seconds>" before its entry. Reading follows GNU (and bash): CRs
 * before a newline are dropped, empty lines are skipped, a missing final
 * newline is fine, bytes are kept as they are (NULs, invalid UTF-8).
 * A line of '#' and digits alone is the timestamp of the entry on the next
 * line, wherever it is in the file, as in bash; the line right after a
 * timestamp is always an entry, so that an entry such as "#1" written with
 * timestamps on comes back. (Without timestamps, such an entry reads back
 * as a timestamp; GNU readline has the same ambiguity.)
 *
 * path NULL means "~/.history" (GNU's default); a path starting with "~/"
 * is under $HOME.
 */

/* What kart_history_read found. */
typedef struct kart_history_read_info {
    size_t entries;    /* entries read (the limit may have dropped some) */
    size_t timestamps; /* of those, how many had a timestamp line */
    size_t too_long;   /* lines longer than KART_HISTORY_MAX_LEN, skipped */
} kart_history_read_info;

/* Reads the file's entries and adds them after those already held (the
 * options do not apply; the limit does: only the newest are kept, and
 * memory stays bounded by what is kept, whatever the file's length). The
 * file is read in one pass, in large blocks (one of the file's size when
 * the history is unlimited), and the entries point into those blocks: no
 * allocation per line. info may be NULL. -ENOENT,
 * -EACCES, -EISDIR, -ENOMEM, or another -errno of open or read; on error
 * the history is unchanged. */
KART_API int kart_history_read(kart_history *h, const char *path, kart_history_read_info *info);

/* Writes every entry to path, replacing it: the file is written to a
 * temporary file beside it (mode 0600) and renamed over it, so that a
 * reader never sees half a file and an error (a full disk: -ENOSPC) leaves
 * the old file as it was and no temporary file behind. A symbolic link is
 * followed (its target is replaced); a path that is not a regular file (a
 * device, a FIFO) is written to directly, never replaced. Empty entries
 * are left out. -EISDIR, -EACCES, -ENOSPC, -EDQUOT, -ENOMEM, another
 * -errno. */
KART_API int kart_history_write(const kart_history *h, const char *path);

/* Appends the newest n entries (all if n >= length; empty ones left out)
 * to path, creating it (mode 0600) if missing (GNU's append_history fails
 * then), after a newline when the file does not end in one. The bytes of
 * one call go out in one write(2) on an O_APPEND descriptor, under an
 * exclusive flock(2) of the file: two processes appending at once never
 * interleave their entries, and kart_history_write and
 * kart_history_truncate_file, which take the same lock and replace the
 * file, lose no append (an appender that finds the file replaced under it
 * reopens it). -ENOSPC etc.; -ENOMEM. A failed append may have written
 * part of its entries. */
KART_API int kart_history_append(const kart_history *h, const char *path, size_t n);

/* Cuts the file down to its newest n entries (with their timestamp lines),
 * GNU's history_truncate_file: the kept bytes are copied as they are into
 * a temporary file renamed over the old one, under the append lock. A file
 * already that short is not touched. The entries are counted as
 * kart_history_read counts them. -ENOENT, -EISDIR, -EINVAL (not a regular
 * file), -EACCES, -ENOSPC, ... */
KART_API int kart_history_truncate_file(const char *path, size_t n);

/* ---- expansion ---- */

/* What kart_history_expand produced. */
typedef struct kart_history_expansion {
    /* On success, the expanded line (malloc'd, NUL-terminated; free()
     * it), even when nothing was expanded. */
    char *text;
    size_t len;
    bool expanded;   /* at least one expansion took place */
    bool print_only; /* a :p modifier: show the line, do not run it */
    /* On a KART_EHIST* error: bash's message, such as
     * "!foo: event not found", NUL-terminated (cut to fit), and the byte
     * offset in the line where the failed expansion starts. */
    char message[160];
    size_t error_offset;
} kart_history_expansion;

/* History expansion of line (len bytes), as bash does it by default:
 *   !!  !n  !-n  !prefix  !?substr[?]  !#    events (!# is the line so far)
 *   :0 :n :^ :$ :% :x-y :x- :x* :*, and !$ !^ !* (of !!)   word designators
 *   :h :t :r :e :p :q :x :s/old/new/ :& :g (:gs, :g&)     modifiers
 *   ^old^new^ at the start of the line (!!:s^old^new^)
 * '!' followed by a space, tab, newline, CR, '=' or the end, or by '"'
 * inside double quotes, is left alone, as are the shell's own ($!, ${!x},
 * [!a]) and anything in single quotes, after a backslash (kept), or after
 * a '#' that starts a word. Words are split as the shell splits them
 * (quotes, ; & | ( ) < > and their pairs). The :s and !? state carries
 * over from call to call, in the history. *out is cleared first (so
 * free(out->text) is always safe). Returns 0 (out->text set);
 * KART_EHISTEVENT, KART_EHISTWORD, KART_EHISTMODIFIER or KART_EHISTSUBST
 * with out->message and out->error_offset set; -EINVAL (out NULL, line
 * NULL with len > 0), -ENOMEM. */
KART_API int kart_history_expand(kart_history *h, const char *line, size_t len,
                                 kart_history_expansion *out);

#ifdef __cplusplus
}
#endif
#endif

/*
 * bench/line_script.h — what the `line` scenarios feed every line editor:
 * the keystroke script (insert, move, delete on one long line, then RET),
 * the line it must leave, and the history file the history case reads.
 *
 * kart-bench and every peer program (bench/peers/: kart, GNU readline,
 * libedit) build the same bytes from the same code, so that each editor
 * types exactly the same keys, and kart-bench checks each one's accepted
 * line against the line a plain model of the editing commands leaves.
 */
#ifndef KART_BENCH_LINE_SCRIPT_H
#define KART_BENCH_LINE_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

/* The screen every editor is given: 80 columns, 24 rows. */
#define LINE_COLS 80
#define LINE_ROWS 24
#define LINE_PROMPT "$ "

/* One key: 1 or 2 bytes (ESC and a letter for M-f, M-b). */
typedef struct line_key {
    char bytes[2];
    unsigned char len;
} line_key;

/* The characters typed at the end of a line; those before them are put in
 * as the line's prefill (readline's rl_insert_text, libedit's
 * el_insertstr, kart_line_insert_text), outside the timer. */
#define LINE_TYPED 200

/* The script of one line of `chars` characters: the prefill (the first
 * chars - LINE_TYPED of them, or none), the keys in order (typing the
 * rest, moving, deleting, typing in the middle; the last key is RET), and
 * the line they leave. */
typedef struct line_script {
    char *prefill; /* NUL-terminated */
    size_t prefill_len;
    line_key *keys;
    size_t nkeys;
    char *expect; /* NUL-terminated */
    size_t expect_len;
} line_script;

/* Builds the script; 0, or -1 when out of memory. */
int line_script_build(line_script *s, size_t chars);
void line_script_free(line_script *s);


/* FNV-1a over len bytes, continuing from h (start with LINE_HASH_INIT). */
#define LINE_HASH_INIT UINT64_C(14695981039346656037)
uint64_t line_hash(uint64_t h, const void *data, size_t len);

/* The i-th entry of the benchmark's history file (i from 0): shell-like
 * command lines of 10 to 70 bytes, into buf (>= 128 bytes); its length. */
size_t line_history_entry(size_t i, char *buf);

/* The i-th search query (a word that occurs in some entries, or in none). */
const char *line_history_query(size_t i);

/* h continued with one match of a history search: the entry's index (from
 * 0, the oldest) and the place of the query in it (the last place: a
 * backward search's, in both libraries). */
uint64_t line_found_hash(uint64_t h, size_t index, size_t offset);

/* Writes n entries to path in GNU readline's format, each after a
 * "#<seconds>" timestamp line when stamps is set. 0, or -errno. */
int line_history_file(const char *path, size_t n, int stamps);

#endif

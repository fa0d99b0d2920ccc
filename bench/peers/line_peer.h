/*
 * bench/peers/line_peer.h — what the `line` scenarios' peer programs have
 * in common (line_peer.c): the command line, the timed loops, the report
 * kart-bench reads. Each peer (kart, GNU readline, libedit) fills a
 * line_peer with its editor and history calls and hands it to
 * line_peer_main().
 *
 * Every program is run by kart-bench once per round:
 *
 *   PEER keys CHARS SECONDS
 *       for each line: puts in the prefill of the script of
 *       bench/line_script.h (outside the timer), then types its keys (the
 *       last LINE_TYPED characters, moves, deletes, RET) one key at a
 *       time, timed; line after line until SECONDS of timed keys have
 *       passed (at least one line). Prints "keys=K lines=L bad=B ns=N
 *       cpu_ns=C hash=H": B accepted lines that differ from the expected
 *       one, H the hash of the last one.
 *   PEER history FILE STAMPS
 *       loads FILE, writes it back to FILE.out (with timestamp lines when
 *       STAMPS is 1), and counts the entries
 *       that match each query of line_history_query() (0..9), searching
 *       from the newest to the oldest; prints "entries=E read_ns=..
 *       write_ns=.. search_ns=.. read_cpu_ns=.. write_cpu_ns=..
 *       search_cpu_ns=.. matches=M found=F written=H" (wall and CPU time of
 *       each step: the searches timed one query at a time and summed), F
 *       the hash of every match's entry and offset (line_found_hash), H
 *       the hash of the file written.
 *
 * Only the keys (or the history call) are inside the timer; creating the
 * editor, building the script, the prefill and checking results are
 * outside. Time
 * is CLOCK_MONOTONIC, CPU is CLOCK_PROCESS_CPUTIME_ID (one thread).
 */
#ifndef KART_BENCH_LINE_PEER_H
#define KART_BENCH_LINE_PEER_H

#include <stddef.h>

typedef struct line_peer {
    /* Creates the editor (the screen LINE_COLS x LINE_ROWS, emacs mode,
     * output to /dev/null, prompt LINE_PROMPT). 0 or -1. */
    int (*editor_init)(void);
    /* Feeds the bytes of one key; a line accepted by it goes to
     * line_peer_accept() before this returns. */
    void (*feed)(const char *bytes, size_t len);
    /* Inserts text (len bytes) at the cursor without redisplay, as
     * rl_insert_text does: the prefill of a long line. */
    void (*prefill)(const char *text, size_t len);
    /* History calls; NULL where the peer has none (libedit). */
    int (*hist_read)(const char *path, size_t *entries);
    int (*hist_write)(const char *path, int stamps);
    /* How many entries contain q, searched from the newest back; the n-th
     * match's entry (0-based) and the place of q in it (the last place)
     * go to found[n] and offset[n] while n < cap. */
    size_t (*hist_count)(const char *q, size_t *found, size_t *offset, size_t cap);
    /* Extra commands (kart's `sessions`): returns the exit status, or -1
     * when cmd is not one of them. */
    int (*other)(int argc, char **argv);
} line_peer;

/* Called by the peer with each accepted line (len bytes). */
void line_peer_accept(const char *line, size_t len);

int line_peer_main(const line_peer *p, int argc, char **argv);

#endif

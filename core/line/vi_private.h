/*
 * core/line/vi_private.h — what the vi mode's files share: vi.c (the
 * commands and their table) and vi_change.c (insert sessions, the
 * operators, the characters read raw, the changes '.' repeats). The
 * state is struct kart_line's vi member (line_private.h).
 */
#ifndef KART_LINE_VI_PRIVATE_H
#define KART_LINE_VI_PRIVATE_H

#include "line_private.h"

/* Counts stop growing here (edit.c's numeric argument does the same). */
#define KART__VI_MAX_COUNT 1000000

/* n clamped to 1 .. KART__VI_MAX_COUNT. */
int kart__vi_count(long long n);
/* Records the change '.' repeats (not while '.' runs one). */
void kart__vi_set_last(kart_line *ed, char cmd, char motion, int count, const char *arg, size_t n);
/* Into insert mode for command key (i a I A R c _ ...), opening the undo
 * group ESC closes; under '.', inserts the last insert's text instead. */
void kart__vi_start_inserting(kart_line *ed, char key);
/* ESC: keeps the text typed for '.' and closes the undo group. */
void kart__vi_done_inserting(kart_line *ed);
/* Inserts s count times at the cursor (over: replacing as many
 * characters). Returns 0, or 1 after the bell (too large), -1 (memory). */
int kart__vi_insert_text(kart_line *ed, const char *s, size_t n, int count, bool over);
/* Operator op (d c y) over motion m with count (m == op: the whole
 * line). Returns 0, or 1 after the bell. */
int kart__vi_apply_op(kart_line *ed, char op, int count, char m, const char *arg, size_t n);
/* Operator op waits for its motion key. */
int kart__vi_start_op(kart_line *ed, char op, int count);
/* f F t T r m `: the next character is read raw, then used. */
int kart__vi_want_char(kart_line *ed, char want, int count);
/* r ~ p P. */
void kart__vi_change_char(kart_line *ed, int count, const char *c, size_t n);
int kart__vi_change_case(kart_line *ed, int count);
int kart__vi_put(kart_line *ed, char key, int count);
/* Ends a pending operator or raw character. */
void kart__vi_change_cancel(kart_line *ed);

#endif

/*
 * core/process/fork_gen.h — the fork generation, kept by the process
 * registry's fork handlers (process_registry.c).
 */
#ifndef KART_FORK_GEN_H
#define KART_FORK_GEN_H

/* How many forks (through fork(), which runs fork handlers) lie between
 * the first process and this one: an object made in an ancestor carries a
 * smaller number than the current one. Processes use it to refuse parent
 * objects in a child, loops to refuse being run there (their io_uring ring
 * is the parent's). */
unsigned kart__fork_gen(void);

#endif

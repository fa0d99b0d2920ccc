/*
 * tests/io_backends.h — the backends the completion-I/O suites run on:
 * every backend kart has here, plus io_uring with its native operations
 * turned off (the emulation over its polls), shared by check_io,
 * check_io_close, check_io_send and check_io_deadline.
 */
#ifndef KART_TESTS_IO_BACKENDS_H
#define KART_TESTS_IO_BACKENDS_H

#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static int nb_io(void)
{
    return kt_nbackends() + 1;
}

/* Backend i, or for the extra index io_uring with emulated operations;
 * NULL when there is no io_uring here. */
static const char *io_backend(int i)
{
    if (i < kt_nbackends())
        return kt_use_backend(i);
    for (int k = 0; k < kt_nbackends(); k++)
        if (strcmp(kt_backend(k), "uring") == 0) {
            setenv("KART_URING_NATIVE_IO", "0", 1);
            return kt_use_backend(k);
        }
    return NULL;
}

#endif

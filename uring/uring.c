/* uring/uring.c — placeholder until the io_uring backend lands. */
#include "internal.h"
static int ur_init(kart_selector *sel, const kart_selector_options *opts)
{
    (void)sel;
    (void)opts;
    return -ENOSYS;
}
const kart__backend_ops kart__backend_uring = {.name = "uring", .init = ur_init};

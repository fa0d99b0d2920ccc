/* compat/select.c — placeholder until the select backend lands. */
#include "internal.h"
static int sl_init(kart_selector *sel, const kart_selector_options *opts)
{
    (void)sel;
    (void)opts;
    return -ENOSYS;
}
const kart__backend_ops kart__backend_select = {.name = "select", .init = sl_init};

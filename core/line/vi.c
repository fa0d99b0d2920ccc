/*
 * core/line/vi.c — the vi mode's commands (GNU readline's vi_mode.c): the
 * functions named vi-* in line_fn.h, one entry each in kart__line_vi_cmds.
 *
 * Not written yet: the table is empty, so a key bound to a vi function
 * rings the bell. `set editing-mode vi` (and M-C-j) already switch the
 * editor to the vi-insert keymap, whose self-inserting keys, moves and
 * deletes are shared with emacs mode and work. What the vi mode needs is
 * described in line_private.h, beside the table's declaration.
 */
#include "line_private.h"

const kart__line_cmd kart__line_vi_cmds[KART__FN_COUNT] = {
    [KART__FN_NONE] = NULL,
};

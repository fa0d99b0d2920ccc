/*
 * core/line/edit.c — the line buffer and GNU readline's emacs commands:
 * moves, deletes, the kill ring, transposes, case changes, undo, quoted
 * insert, numeric arguments, bracketed paste, keyboard macros; and the
 * command table that the dispatcher (line.c) runs from.
 *
 * Every change of the buffer goes through kart__edit_insert and
 * kart__edit_delete, which record undo (one group per command, the typing
 * of consecutive self-inserts merged into one record, as GNU does), keep
 * mark and point inside the line, and tell the display from where the line
 * changed.
 */
#include "line_private.h"

#include <ctype.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- byte buffers ---- */

int kart__lbuf_reserve(kart__lbuf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int kart__lbuf_add(kart__lbuf *b, const void *data, size_t n)
{
    if (kart__lbuf_reserve(b, n) < 0)
        return -ENOMEM;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int kart__lbuf_adds(kart__lbuf *b, const char *s)
{
    return kart__lbuf_add(b, s, strlen(s));
}

int kart__lbuf_addf(kart__lbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof(small))
        return kart__lbuf_add(b, small, (size_t)n);
    if (kart__lbuf_reserve(b, (size_t)n) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void kart__lbuf_free(kart__lbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- undo ---- */

void kart__undo_list_free(kart__undo_list *u)
{
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i].text);
    free(u->v);
    u->v = NULL;
    u->n = u->cap = 0;
}

static int undo_push(kart_line *ed, kart__undo_kind kind, size_t start, size_t end, char *text)
{
    kart__undo_list *u = &ed->undo;
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 32;
        kart__undo *v = realloc(u->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        u->v = v;
        u->cap = cap;
    }
    u->v[u->n].kind = kind;
    u->v[u->n].start = start;
    u->v[u->n].end = end;
    u->v[u->n].text = text;
    u->n++;
    return 0;
}

static void group_touch(kart_line *ed)
{
    if (ed->group_open || ed->undoing)
        return;
    if (undo_push(ed, KART__UNDO_BEGIN, 0, 0, NULL) == 0) {
        ed->group_open = true;
        ed->group_at = ed->undo.n - 1;
    }
}

void kart__edit_begin_command(kart_line *ed)
{
    ed->group_open = false;
    ed->vi.cmd_hpos = ed->hpos;
}

static void close_group(kart_line *ed);

void kart__edit_end_command(kart_line *ed)
{
    close_group(ed);
    if (ed->set.vi_mode)
        kart__vi_after_command(ed);
}

static void close_group(kart_line *ed)
{
    if (!ed->group_open)
        return;
    ed->group_open = false;
    kart__undo_list *u = &ed->undo;
    size_t inside = u->n - ed->group_at - 1;
    if (inside == 0) {
        u->n--;
    } else if (inside == 1) {
        u->v[ed->group_at] = u->v[ed->group_at + 1];
        u->n--;
    } else {
        undo_push(ed, KART__UNDO_END, 0, 0, NULL);
    }
}

/* A BEGIN opened by kart__edit_undo_open carries this in start and end,
 * so that close finds its own and not a command's BEGIN at that index. */
#define SPAN_MARK SIZE_MAX

size_t kart__edit_undo_open(kart_line *ed)
{
    if (undo_push(ed, KART__UNDO_BEGIN, SPAN_MARK, SPAN_MARK, NULL) < 0)
        return SIZE_MAX;
    return ed->undo.n - 1;
}

void kart__edit_undo_close(kart_line *ed, size_t at)
{
    kart__undo_list *u = &ed->undo;
    if (at >= u->n || u->v[at].kind != KART__UNDO_BEGIN || u->v[at].start != SPAN_MARK)
        return; /* undone, or the list was replaced (a history move) */
    size_t inside = u->n - at - 1;
    if (inside == 0) {
        u->n--;
    } else if (inside == 1 && !ed->group_open) {
        u->v[at] = u->v[at + 1];
        u->n--;
    } else {
        undo_push(ed, KART__UNDO_END, 0, 0, NULL);
    }
}

bool kart__edit_undo_last_insert(const kart_line *ed, size_t *start, size_t *end)
{
    const kart__undo_list *u = &ed->undo;
    if (u->n == 0 || u->v[u->n - 1].kind != KART__UNDO_INSERT)
        return false;
    *start = u->v[u->n - 1].start;
    *end = u->v[u->n - 1].end;
    return *start <= *end && *end <= ed->line.len;
}

static void record_insert(kart_line *ed, size_t at, size_t n)
{
    if (ed->undoing)
        return;
    kart__undo_list *u = &ed->undo;
    /* the typing of consecutive self-inserts is one record */
    if (!ed->group_open && ed->this_fn == KART__FN_SELF_INSERT &&
        ed->last_fn == KART__FN_SELF_INSERT && u->n > 0 &&
        u->v[u->n - 1].kind == KART__UNDO_INSERT && u->v[u->n - 1].end == at) {
        u->v[u->n - 1].end += n;
        return;
    }
    group_touch(ed);
    undo_push(ed, KART__UNDO_INSERT, at, at + n, NULL);
}

static void record_delete(kart_line *ed, size_t from, size_t to)
{
    if (ed->undoing)
        return;
    char *t = malloc(to - from + 1);
    if (!t)
        return;
    memcpy(t, ed->line.p + from, to - from);
    t[to - from] = '\0';
    group_touch(ed);
    if (undo_push(ed, KART__UNDO_DELETE, from, to, t) < 0)
        free(t);
}

/* ---- buffer primitives ---- */

int kart__edit_insert(kart_line *ed, size_t at, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (at > ed->line.len)
        at = ed->line.len;
    if (kart__lbuf_reserve(&ed->line, n) < 0)
        return -ENOMEM;
    memmove(ed->line.p + at + n, ed->line.p + at, ed->line.len - at);
    memcpy(ed->line.p + at, s, n);
    ed->line.len += n;
    ed->line.p[ed->line.len] = '\0';
    record_insert(ed, at, n);
    if (ed->point >= at)
        ed->point += n;
    if (ed->mark > ed->line.len)
        ed->mark = ed->line.len;
    kart__display_dirty(ed, at);
    return 0;
}

int kart__edit_delete(kart_line *ed, size_t from, size_t to)
{
    if (to > ed->line.len)
        to = ed->line.len;
    if (from >= to)
        return 0;
    uint32_t first = kart__char_at(ed, from, NULL);
    bool mark = first != (uint32_t)-1 && kart__wcwidth(first) == 0;
    record_delete(ed, from, to);
    memmove(ed->line.p + from, ed->line.p + to, ed->line.len - to);
    ed->line.len -= to - from;
    ed->line.p[ed->line.len] = '\0';
    if (ed->point >= to)
        ed->point -= to - from;
    else if (ed->point > from)
        ed->point = from;
    if (ed->mark > ed->line.len)
        ed->mark = ed->line.len;
    if (mark)
        kart__display_dirty_mark(ed, from);
    else
        kart__display_dirty(ed, from);
    return 0;
}

int kart__edit_set_line(kart_line *ed, const char *s, size_t n)
{
    size_t common = 0;
    size_t lim = n < ed->line.len ? n : ed->line.len;
    while (common < lim && ed->line.p[common] == s[common])
        common++;
    if (common == n && n == ed->line.len) {
        ed->point = n;
        return 0;
    }
    ed->line.len = common;
    if (kart__lbuf_add(&ed->line, s + common, n - common) < 0)
        return -ENOMEM;
    ed->point = n;
    if (ed->mark > n)
        ed->mark = n;
    kart__display_dirty(ed, common);
    return 0;
}

void kart__edit_reset_line(kart_line *ed)
{
    ed->line.len = 0;
    if (kart__lbuf_reserve(&ed->line, 0) == 0)
        ed->line.p[0] = '\0';
    ed->point = ed->mark = 0;
    ed->mark_set = false;
    kart__undo_list_free(&ed->undo);
    ed->group_open = false;
    kart__vi_reset_line(ed);
    kart__display_dirty(ed, 0);
}

static void undo_apply(kart_line *ed, kart__undo *e)
{
    switch (e->kind) {
    case KART__UNDO_INSERT:
        kart__edit_delete(ed, e->start, e->end);
        ed->point = e->start;
        break;
    case KART__UNDO_DELETE:
        ed->point = e->start;
        kart__edit_insert(ed, e->start, e->text, e->end - e->start);
        break;
    default:
        break;
    }
    free(e->text);
    e->text = NULL;
}

static bool undo_one(kart_line *ed)
{
    kart__undo_list *u = &ed->undo;
    if (u->n == 0)
        return false;
    ed->undoing = true;
    kart__undo e = u->v[--u->n];
    if (e.kind == KART__UNDO_END) {
        int depth = 1;
        while (depth > 0 && u->n > 0) {
            kart__undo x = u->v[--u->n];
            if (x.kind == KART__UNDO_END)
                depth++;
            else if (x.kind == KART__UNDO_BEGIN)
                depth--;
            else
                undo_apply(ed, &x);
        }
    } else {
        undo_apply(ed, &e);
    }
    ed->undoing = false;
    if (ed->point > ed->line.len)
        ed->point = ed->line.len;
    return true;
}

void kart__edit_undo_all(kart_line *ed)
{
    while (undo_one(ed))
        ;
}

/* ---- the kill ring ---- */

#define MAX_KILLS 10

int kart__edit_kill(kart_line *ed, size_t from, size_t to, bool backward)
{
    if (from > to) {
        size_t t = from;
        from = to;
        to = t;
    }
    if (to > ed->line.len)
        to = ed->line.len;
    const char *text = ed->line.p + from;
    size_t n = to - from;
    if (ed->last_kill && ed->nkills > 0) {
        kart__lbuf *k = &ed->kills[ed->kill_top];
        if (backward) {
            if (kart__lbuf_reserve(k, n) < 0)
                return -ENOMEM;
            memmove(k->p + n, k->p, k->len + 1);
            memcpy(k->p, text, n);
            k->len += n;
        } else if (kart__lbuf_add(k, text, n) < 0) {
            return -ENOMEM;
        }
    } else {
        size_t slot;
        if (ed->nkills < MAX_KILLS) {
            slot = ed->nkills++;
        } else {
            slot = (ed->kill_top + 1) % MAX_KILLS;
        }
        ed->kills[slot].len = 0;
        if (kart__lbuf_add(&ed->kills[slot], text, n) < 0)
            return -ENOMEM;
        ed->kill_top = slot;
    }
    ed->this_kill = true;
    kart__edit_delete(ed, from, to);
    ed->point = from;
    return 0;
}

/* Copies [from, to) into the kill ring without deleting. */
static int copy_as_kill(kart_line *ed, size_t from, size_t to)
{
    if (from > to) {
        size_t t = from;
        from = to;
        to = t;
    }
    size_t slot = ed->nkills < MAX_KILLS ? ed->nkills++ : (ed->kill_top + 1) % MAX_KILLS;
    ed->kills[slot].len = 0;
    if (kart__lbuf_add(&ed->kills[slot], ed->line.p + from, to - from) < 0)
        return -ENOMEM;
    ed->kill_top = slot;
    return 0;
}

int kart__edit_copy(kart_line *ed, size_t from, size_t to)
{
    if (to > ed->line.len)
        to = ed->line.len;
    if (from > to)
        from = to;
    return copy_as_kill(ed, from, to);
}

/* ---- words ---- */

bool kart__is_word_char(uint32_t c)
{
    if (c == (uint32_t)-1)
        return false;
    if (c < 0x80)
        return isalnum((int)c) != 0;
    if (c >= 0xa0 && c <= 0xbf)
        return false;
    if (c == 0xd7 || c == 0xf7)
        return false;
    if ((c >= 0x2000 && c <= 0x206f) || (c >= 0x3000 && c <= 0x303f) ||
        (c >= 0xff00 && c <= 0xff0f))
        return false;
    return true;
}

static bool word_at(const kart_line *ed, size_t pos)
{
    return kart__is_word_char(kart__char_at(ed, pos, NULL));
}

static size_t fwd_word(const kart_line *ed, size_t p, int count)
{
    while (count-- > 0) {
        while (p < ed->line.len && !word_at(ed, p))
            p = kart__next_char(ed, p);
        while (p < ed->line.len && word_at(ed, p))
            p = kart__next_char(ed, p);
    }
    return p;
}

static size_t bwd_word(const kart_line *ed, size_t p, int count)
{
    while (count-- > 0) {
        while (p > 0 && !word_at(ed, kart__prev_char(ed, p)))
            p = kart__prev_char(ed, p);
        while (p > 0 && word_at(ed, kart__prev_char(ed, p)))
            p = kart__prev_char(ed, p);
    }
    return p;
}

static bool is_space(const kart_line *ed, size_t pos)
{
    char c = ed->line.p[pos];
    return c == ' ' || c == '\t' || c == '\n';
}

/* ---- commands ---- */

#define CMD(name) static int name(kart_line *ed, int count, const kart__key *key)
#define UNUSED_KEY (void)key

static int bell(kart_line *ed)
{
    kart__line_bell(ed);
    return 1;
}

CMD(cmd_forward_char);
CMD(cmd_backward_char)
{
    UNUSED_KEY;
    if (count < 0)
        return cmd_forward_char(ed, -count, key);
    while (count-- > 0) {
        if (ed->point == 0)
            return bell(ed);
        ed->point = kart__prev_char(ed, ed->point);
    }
    return 0;
}

CMD(cmd_forward_char)
{
    if (count < 0)
        return cmd_backward_char(ed, -count, key);
    while (count-- > 0) {
        if (ed->point >= ed->line.len)
            return bell(ed);
        ed->point = kart__next_char(ed, ed->point);
    }
    return 0;
}

CMD(cmd_forward_byte)
{
    UNUSED_KEY;
    long p = (long)ed->point + count;
    if (p < 0 || (size_t)p > ed->line.len) {
        ed->point = p < 0 ? 0 : ed->line.len;
        return bell(ed);
    }
    ed->point = (size_t)p;
    return 0;
}

CMD(cmd_backward_byte)
{
    return cmd_forward_byte(ed, -count, key);
}

CMD(cmd_beginning_of_line)
{
    (void)count;
    UNUSED_KEY;
    ed->point = 0;
    return 0;
}

CMD(cmd_end_of_line)
{
    (void)count;
    UNUSED_KEY;
    ed->point = ed->line.len;
    return 0;
}

CMD(cmd_backward_word);
CMD(cmd_forward_word)
{
    if (count < 0)
        return cmd_backward_word(ed, -count, key);
    ed->point = fwd_word(ed, ed->point, count);
    return 0;
}

CMD(cmd_backward_word)
{
    if (count < 0)
        return cmd_forward_word(ed, -count, key);
    ed->point = bwd_word(ed, ed->point, count);
    return 0;
}

CMD(cmd_screen_line)
{
    UNUSED_KEY;
    bool up = ed->this_fn == KART__FN_PREVIOUS_SCREEN_LINE;
    if (count < 0) {
        up = !up;
        count = -count;
    }
    if (ed->set.horizontal_scroll_mode)
        return bell(ed);
    kart__pos p = kart__display_pos(ed, ed->point);
    uint32_t row = p.row;
    if (up)
        row = row >= (uint32_t)count ? row - (uint32_t)count : 0;
    else
        row += (uint32_t)count;
    kart__pos start = kart__display_pos(ed, 0);
    if (row < start.row)
        row = start.row;
    ed->point = kart__display_offset_at(ed, row, p.col);
    return 0;
}

/* self-insert: the key's bytes (a whole character), count times */
static int insert_chars(kart_line *ed, const char *s, size_t n, int count)
{
    if (count <= 0)
        return 0;
    if (ed->overwrite) {
        for (int i = 0; i < count; i++) {
            size_t end = ed->point < ed->line.len ? kart__next_char(ed, ed->point) : ed->point;
            kart__edit_delete(ed, ed->point, end);
            if (kart__edit_insert(ed, ed->point, s, n) < 0)
                return -ENOMEM;
        }
        return 0;
    }
    if (count == 1)
        return kart__edit_insert(ed, ed->point, s, n);
    kart__lbuf tmp = {0};
    for (int i = 0; i < count; i++)
        if (kart__lbuf_add(&tmp, s, n) < 0) {
            kart__lbuf_free(&tmp);
            return -ENOMEM;
        }
    int r = kart__edit_insert(ed, ed->point, tmp.p, tmp.len);
    kart__lbuf_free(&tmp);
    return r;
}

CMD(cmd_self_insert)
{
    if (!key || key->len == 0)
        return bell(ed);
    return insert_chars(ed, key->bytes, key->len, count);
}

CMD(cmd_tab_insert)
{
    UNUSED_KEY;
    return insert_chars(ed, "\t", 1, count);
}

CMD(cmd_backward_delete_char);
CMD(cmd_delete_char)
{
    if (count < 0)
        return cmd_backward_delete_char(ed, -count, key);
    if (ed->point >= ed->line.len)
        return bell(ed);
    size_t end = ed->point;
    for (int i = 0; i < count && end < ed->line.len; i++)
        end = kart__next_char(ed, end);
    if (count > 1 || ed->explicit_arg)
        return kart__edit_kill(ed, ed->point, end, false);
    return kart__edit_delete(ed, ed->point, end);
}

CMD(cmd_backward_delete_char)
{
    if (count < 0)
        return cmd_delete_char(ed, -count, key);
    if (ed->point == 0)
        return bell(ed);
    size_t start = ed->point;
    for (int i = 0; i < count && start > 0; i++)
        start = kart__prev_char(ed, start);
    if (ed->overwrite) {
        /* overwrite mode's rubout: the characters become spaces */
        size_t n = 0;
        for (size_t p = start; p < ed->point; p = kart__next_char(ed, p))
            n++;
        size_t at = start;
        kart__edit_delete(ed, start, ed->point);
        for (size_t i = 0; i < n; i++)
            kart__edit_insert(ed, at + i, " ", 1);
        ed->point = start;
        return 0;
    }
    if (count > 1 || ed->explicit_arg)
        return kart__edit_kill(ed, start, ed->point, true);
    return kart__edit_delete(ed, start, ed->point);
}

CMD(cmd_forward_backward_delete_char)
{
    if (ed->point >= ed->line.len)
        return cmd_backward_delete_char(ed, count, key);
    return cmd_delete_char(ed, count, key);
}

CMD(cmd_backward_kill_line);
CMD(cmd_kill_line)
{
    if (count < 0)
        return cmd_backward_kill_line(ed, 1, key);
    return kart__edit_kill(ed, ed->point, ed->line.len, false);
}

CMD(cmd_backward_kill_line)
{
    if (count < 0)
        return cmd_kill_line(ed, 1, key);
    if (ed->point == 0)
        return bell(ed);
    return kart__edit_kill(ed, 0, ed->point, true);
}

CMD(cmd_kill_whole_line)
{
    (void)count;
    UNUSED_KEY;
    return kart__edit_kill(ed, 0, ed->line.len, false);
}

CMD(cmd_unix_line_discard)
{
    (void)count;
    UNUSED_KEY;
    if (ed->point == 0)
        return bell(ed);
    return kart__edit_kill(ed, 0, ed->point, true);
}

CMD(cmd_unix_word_rubout)
{
    UNUSED_KEY;
    if (ed->point == 0)
        return bell(ed);
    size_t p = ed->point;
    bool slash = ed->this_fn == KART__FN_UNIX_FILENAME_RUBOUT;
    while (count-- > 0) {
        while (p > 0 && (is_space(ed, p - 1) || (slash && ed->line.p[p - 1] == '/')))
            p--;
        while (p > 0 && !is_space(ed, p - 1) && !(slash && ed->line.p[p - 1] == '/'))
            p = kart__prev_char(ed, p);
    }
    return kart__edit_kill(ed, p, ed->point, true);
}

CMD(cmd_backward_kill_word);
CMD(cmd_kill_word)
{
    if (count < 0)
        return cmd_backward_kill_word(ed, -count, key);
    size_t end = fwd_word(ed, ed->point, count);
    return kart__edit_kill(ed, ed->point, end, false);
}

CMD(cmd_backward_kill_word)
{
    if (count < 0)
        return cmd_kill_word(ed, -count, key);
    size_t start = bwd_word(ed, ed->point, count);
    return kart__edit_kill(ed, start, ed->point, true);
}

CMD(cmd_kill_region)
{
    (void)count;
    UNUSED_KEY;
    if (!ed->mark_set)
        return 0;
    size_t m = ed->mark > ed->line.len ? ed->line.len : ed->mark;
    int r = kart__edit_kill(ed, m < ed->point ? m : ed->point, m < ed->point ? ed->point : m,
                            m < ed->point);
    ed->mark = ed->point;
    return r;
}

CMD(cmd_copy_region_as_kill)
{
    (void)count;
    UNUSED_KEY;
    if (!ed->mark_set)
        return 0;
    size_t m = ed->mark > ed->line.len ? ed->line.len : ed->mark;
    return copy_as_kill(ed, m, ed->point);
}

CMD(cmd_copy_word)
{
    UNUSED_KEY;
    bool fwd = ed->this_fn == KART__FN_COPY_FORWARD_WORD;
    if (count < 0) {
        fwd = !fwd;
        count = -count;
    }
    size_t other = fwd ? fwd_word(ed, ed->point, count) : bwd_word(ed, ed->point, count);
    return copy_as_kill(ed, other, ed->point);
}

CMD(cmd_yank)
{
    (void)count;
    UNUSED_KEY;
    if (ed->nkills == 0)
        return bell(ed);
    kart__lbuf *k = &ed->kills[ed->kill_top];
    ed->mark = ed->point;
    ed->mark_set = true;
    ed->yank_start = ed->point;
    if (kart__edit_insert(ed, ed->point, k->p ? k->p : "", k->len) < 0)
        return -ENOMEM;
    ed->yank_end = ed->point;
    ed->this_yank = true;
    return 0;
}

CMD(cmd_yank_pop)
{
    (void)count;
    UNUSED_KEY;
    if (!ed->last_yank || ed->nkills == 0 || ed->yank_end > ed->line.len)
        return bell(ed);
    kart__edit_delete(ed, ed->yank_start, ed->yank_end);
    ed->point = ed->yank_start;
    ed->kill_top = (ed->kill_top + ed->nkills - 1) % ed->nkills;
    kart__lbuf *k = &ed->kills[ed->kill_top];
    if (kart__edit_insert(ed, ed->point, k->p ? k->p : "", k->len) < 0)
        return -ENOMEM;
    ed->yank_end = ed->point;
    ed->this_yank = true;
    return 0;
}

CMD(cmd_transpose_chars)
{
    UNUSED_KEY;
    if (ed->point == 0 || ed->line.len < 2)
        return bell(ed);
    if (ed->point >= ed->line.len) {
        ed->point = kart__prev_char(ed, ed->line.len);
        count = 1;
    }
    size_t a = kart__prev_char(ed, ed->point);
    size_t alen = ed->point - a;
    char tmp[64];
    char *t = alen <= sizeof(tmp) ? tmp : malloc(alen);
    if (!t)
        return -ENOMEM;
    memcpy(t, ed->line.p + a, alen);
    kart__edit_delete(ed, a, a + alen);
    ed->point = a;
    for (int i = 0; i < count && ed->point < ed->line.len; i++)
        ed->point = kart__next_char(ed, ed->point);
    kart__edit_insert(ed, ed->point, t, alen);
    if (t != tmp)
        free(t);
    return 0;
}

CMD(cmd_transpose_words)
{
    UNUSED_KEY;
    size_t orig = ed->point;
    size_t w2_end = fwd_word(ed, ed->point, count > 0 ? count : 1);
    size_t w2_beg = bwd_word(ed, w2_end, 1);
    size_t w1_beg = bwd_word(ed, w2_beg, count > 0 ? count : 1);
    size_t w1_end = fwd_word(ed, w1_beg, 1);
    if (w1_beg == w2_beg || w2_beg < w1_end) {
        ed->point = orig;
        return bell(ed);
    }
    size_t l1 = w1_end - w1_beg, l2 = w2_end - w2_beg;
    char *w1 = malloc(l1 + 1), *w2 = malloc(l2 + 1);
    if (!w1 || !w2) {
        free(w1);
        free(w2);
        return -ENOMEM;
    }
    memcpy(w1, ed->line.p + w1_beg, l1);
    memcpy(w2, ed->line.p + w2_beg, l2);
    kart__edit_delete(ed, w2_beg, w2_end);
    kart__edit_insert(ed, w2_beg, w1, l1);
    kart__edit_delete(ed, w1_beg, w1_end);
    kart__edit_insert(ed, w1_beg, w2, l2);
    ed->point = w2_end;
    free(w1);
    free(w2);
    return 0;
}

/* Simple case mapping that keeps a character's UTF-8 length: ASCII,
 * Latin-1, Greek, Cyrillic. */
static uint32_t to_upper(uint32_t c)
{
    if (c >= 'a' && c <= 'z')
        return c - 32;
    if ((c >= 0xe0 && c <= 0xfe && c != 0xf7))
        return c - 32;
    if (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2)
        return c - 32;
    if (c >= 0x430 && c <= 0x44f)
        return c - 32;
    if (c >= 0x450 && c <= 0x45f)
        return c - 80;
    return c;
}

static uint32_t to_lower(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if ((c >= 0xc0 && c <= 0xde && c != 0xd7))
        return c + 32;
    if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2)
        return c + 32;
    if (c >= 0x410 && c <= 0x42f)
        return c + 32;
    if (c >= 0x400 && c <= 0x40f)
        return c + 80;
    return c;
}

CMD(cmd_change_case)
{
    UNUSED_KEY;
    enum {
        UP,
        DOWN,
        CAP
    } op = ed->this_fn == KART__FN_UPCASE_WORD     ? UP
           : ed->this_fn == KART__FN_DOWNCASE_WORD ? DOWN
                                                   : CAP;
    size_t start = ed->point, end;
    if (count < 0) {
        end = start;
        start = bwd_word(ed, ed->point, -count);
    } else {
        end = fwd_word(ed, ed->point, count);
    }
    bool inword = false;
    size_t p = start;
    while (p < end) {
        size_t n;
        uint32_t c = kart__char_at(ed, p, &n);
        if (!kart__is_word_char(c)) {
            inword = false;
            p += n;
            continue;
        }
        uint32_t nc = c;
        if (op == UP || (op == CAP && !inword))
            nc = to_upper(c);
        else
            nc = to_lower(c);
        inword = true;
        if (nc != c) {
            char b[4];
            size_t l = kart__utf8_encode(nc, b);
            if (l == n) {
                size_t keep = ed->point;
                kart__edit_delete(ed, p, p + n);
                kart__edit_insert(ed, p, b, l);
                ed->point = keep;
            }
        }
        p += n;
    }
    ed->point = count < 0 ? ed->point : end;
    return 0;
}

CMD(cmd_delete_horizontal_space)
{
    (void)count;
    UNUSED_KEY;
    size_t a = ed->point, b = ed->point;
    while (a > 0 && (ed->line.p[a - 1] == ' ' || ed->line.p[a - 1] == '\t'))
        a--;
    while (b < ed->line.len && (ed->line.p[b] == ' ' || ed->line.p[b] == '\t'))
        b++;
    kart__edit_delete(ed, a, b);
    ed->point = a;
    return 0;
}

CMD(cmd_undo)
{
    UNUSED_KEY;
    if (count < 0)
        count = -count;
    while (count-- > 0)
        if (!undo_one(ed))
            return bell(ed);
    return 0;
}

CMD(cmd_revert_line)
{
    (void)count;
    UNUSED_KEY;
    if (ed->undo.n == 0)
        return bell(ed);
    kart__edit_undo_all(ed);
    return 0;
}

CMD(cmd_set_mark)
{
    UNUSED_KEY;
    ed->mark =
        ed->explicit_arg && count >= 0 && (size_t)count <= ed->line.len ? (size_t)count : ed->point;
    ed->mark_set = true;
    return 0;
}

CMD(cmd_exchange_point_and_mark)
{
    (void)count;
    UNUSED_KEY;
    if (!ed->mark_set || ed->mark > ed->line.len)
        return bell(ed);
    size_t t = ed->point;
    ed->point = ed->mark;
    ed->mark = t;
    return 0;
}

CMD(cmd_overwrite_mode)
{
    UNUSED_KEY;
    if (!ed->explicit_arg)
        ed->overwrite = !ed->overwrite;
    else
        ed->overwrite = count > 0;
    return 0;
}

CMD(cmd_insert_comment)
{
    UNUSED_KEY;
    (void)count;
    const char *c = ed->set.comment_begin ? ed->set.comment_begin : "#";
    size_t n = strlen(c);
    ed->point = 0;
    if (ed->explicit_arg && ed->line.len >= n && memcmp(ed->line.p, c, n) == 0)
        kart__edit_delete(ed, 0, n);
    else
        kart__edit_insert(ed, 0, c, n);
    kart__line_finish(ed, KART__DONE_LINE, 0);
    return 0;
}

CMD(cmd_accept_line)
{
    (void)count;
    UNUSED_KEY;
    kart__line_finish(ed, KART__DONE_LINE, 0);
    return 0;
}

CMD(cmd_end_of_file)
{
    if (ed->line.len == 0) {
        kart__line_finish(ed, KART__DONE_EOF, 0);
        return 0;
    }
    return cmd_delete_char(ed, count, key);
}

CMD(cmd_abort)
{
    (void)count;
    UNUSED_KEY;
    ed->recording = false;
    return bell(ed);
}

CMD(cmd_clear_screen)
{
    (void)count;
    UNUSED_KEY;
    if (!ed->terminal)
        return 0;
    if (ed->explicit_arg && ed->this_fn == KART__FN_CLEAR_SCREEN) {
        kart__display_clear(ed);
        return 0;
    }
    kart__outs(ed,
               ed->this_fn == KART__FN_CLEAR_DISPLAY ? "\033[H\033[2J\033[3J" : "\033[H\033[2J");
    kart__display_reset(ed);
    return 0;
}

CMD(cmd_redraw_current_line)
{
    (void)count;
    UNUSED_KEY;
    kart__display_clear(ed);
    return 0;
}

/* ---- numeric arguments (GNU's rl_digit_loop) ---- */

#define MAX_ARG 1000000

static void arg_prompt(kart_line *ed)
{
    char b[48];
    snprintf(b, sizeof(b), "(arg: %d) ", ed->arg_sign * ed->count);
    free(ed->mode_prompt);
    ed->mode_prompt = strdup(b);
    kart__display_invalidate(ed);
}

static int key_digit(const kart__key *k)
{
    if (k->len == 0)
        return -1;
    unsigned char c = (unsigned char)k->bytes[k->len - 1];
    if (k->len > 2 || (k->len == 2 && k->bytes[0] != '\033'))
        return -1;
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c == '-')
        return -2;
    return -1;
}

static void arg_end(kart_line *ed)
{
    ed->in_arg = false;
    ed->mode_fn = NULL;
    free(ed->mode_prompt);
    ed->mode_prompt = NULL;
    kart__display_invalidate(ed);
}

static bool arg_mode(kart_line *ed, const kart__key *k)
{
    bool digit_key = k->kind == KART__KEY_BOUND && k->binding.kind == KART__BIND_FN &&
                     (k->binding.fn == KART__FN_DIGIT_ARGUMENT ||
                      (k->binding.fn == KART__FN_SELF_INSERT && k->len == 1));
    /* vi command mode: every digit goes on with the count, whatever it is
     * bound to ('0' is beginning-of-line), as GNU's rl_digit_loop1 */
    if (ed->map == KART__MAP_VI_COMMAND && k->kind == KART__KEY_BOUND && k->len == 1 &&
        k->bytes[0] >= '0' && k->bytes[0] <= '9')
        digit_key = true;
    if (k->kind == KART__KEY_BOUND && k->binding.kind == KART__BIND_FN &&
        k->binding.fn == KART__FN_UNIVERSAL_ARGUMENT) {
        if (ed->arg_digits) {
            /* C-u after digits ends the argument; the next key takes it */
            arg_end(ed);
            ed->in_arg = true;
            return true;
        }
        if (ed->count < MAX_ARG / 4)
            ed->count *= 4;
        arg_prompt(ed);
        return true;
    }
    int d = digit_key ? key_digit(k) : -1;
    if (d >= 0) {
        if (!ed->arg_digits)
            ed->count = d;
        else if (ed->count < MAX_ARG / 10)
            ed->count = ed->count * 10 + d;
        ed->arg_digits = true;
        arg_prompt(ed);
        return true;
    }
    if (d == -2 && !ed->arg_digits) {
        ed->arg_sign = -ed->arg_sign;
        ed->count = 1;
        arg_prompt(ed);
        return true;
    }
    /* any other key runs with the argument */
    arg_end(ed);
    ed->in_arg = true;
    return false;
}

CMD(cmd_digit_argument)
{
    (void)count;
    int d = key ? key_digit(key) : -1;
    ed->in_arg = true;
    ed->arg_sign = 1;
    ed->arg_digits = false;
    ed->count = 1;
    if (d >= 0) {
        ed->count = d;
        ed->arg_digits = true;
    } else if (d == -2) {
        ed->arg_sign = -1;
    }
    ed->mode_fn = arg_mode;
    arg_prompt(ed);
    return 0;
}

CMD(cmd_universal_argument)
{
    (void)count;
    UNUSED_KEY;
    ed->in_arg = true;
    ed->arg_sign = 1;
    ed->arg_digits = false;
    ed->count = 4;
    ed->mode_fn = arg_mode;
    arg_prompt(ed);
    return 0;
}

/* ---- raw byte readers: quoted insert, character search, paste ---- */

/* Collects one UTF-8 character (or an invalid byte) in mode_data's
 * buffer; returns its length once whole, else 0. */
typedef struct charbuf {
    char b[4];
    size_t n;
    int count;
    bool backward;
} charbuf;

static size_t charbuf_add(charbuf *cb, unsigned char c)
{
    cb->b[cb->n++] = (char)c;
    unsigned char lead = (unsigned char)cb->b[0];
    size_t need = lead < 0x80                    ? 1
                  : lead >= 0xc2 && lead <= 0xdf ? 2
                  : lead >= 0xe0 && lead <= 0xef ? 3
                  : lead >= 0xf0 && lead <= 0xf4 ? 4
                                                 : 1;
    if (cb->n > 1 && ((unsigned char)cb->b[cb->n - 1] & 0xc0) != 0x80) {
        /* broken: take the lead byte alone (the rest is dropped) */
        cb->n = 1;
        return 1;
    }
    return cb->n >= need ? cb->n : 0;
}

static charbuf *new_charbuf(kart_line *ed, int count, bool backward)
{
    free(ed->mode_data);
    charbuf *cb = calloc(1, sizeof(*cb));
    ed->mode_data = cb;
    if (cb) {
        cb->count = count;
        cb->backward = backward;
    }
    return cb;
}

static void raw_quoted(kart_line *ed, unsigned char c)
{
    charbuf *cb = ed->mode_data;
    size_t n = cb ? charbuf_add(cb, c) : 1;
    if (!n)
        return;
    ed->raw_fn = NULL;
    kart__edit_begin_command(ed);
    if (cb)
        insert_chars(ed, cb->b, n, cb->count);
    else
        insert_chars(ed, (char *)&c, 1, 1);
    kart__edit_end_command(ed);
    free(ed->mode_data);
    ed->mode_data = NULL;
    ed->last_fn = KART__FN_QUOTED_INSERT;
}

CMD(cmd_quoted_insert)
{
    UNUSED_KEY;
    new_charbuf(ed, count, false);
    ed->raw_fn = raw_quoted;
    return 0;
}

static void raw_char_search(kart_line *ed, unsigned char c)
{
    charbuf *cb = ed->mode_data;
    size_t n = cb ? charbuf_add(cb, c) : 0;
    if (!cb) {
        ed->raw_fn = NULL;
        return;
    }
    if (!n)
        return;
    ed->raw_fn = NULL;
    int count = cb->count;
    bool back = cb->backward;
    if (count < 0) {
        back = !back;
        count = -count;
    }
    size_t p = ed->point;
    bool found = false;
    while (count-- > 0) {
        found = false;
        if (!back) {
            size_t q = p < ed->line.len ? kart__next_char(ed, p) : p;
            for (; q + n <= ed->line.len; q = kart__next_char(ed, q))
                if (memcmp(ed->line.p + q, cb->b, n) == 0) {
                    found = true;
                    break;
                }
            if (found)
                p = q;
        } else {
            size_t q = p;
            while (q > 0) {
                q = kart__prev_char(ed, q);
                if (q + n <= ed->line.len && memcmp(ed->line.p + q, cb->b, n) == 0) {
                    found = true;
                    break;
                }
            }
            if (found)
                p = q;
        }
        if (!found)
            break;
    }
    free(ed->mode_data);
    ed->mode_data = NULL;
    if (found)
        ed->point = p;
    else
        kart__line_bell(ed);
}

CMD(cmd_character_search)
{
    UNUSED_KEY;
    new_charbuf(ed, count, ed->this_fn == KART__FN_CHARACTER_SEARCH_BACKWARD);
    ed->raw_fn = raw_char_search;
    return 0;
}

static void raw_skip_csi(kart_line *ed, unsigned char c)
{
    if (c >= 0x40 && c <= 0x7e)
        ed->raw_fn = NULL;
}

CMD(cmd_skip_csi_sequence)
{
    (void)count;
    UNUSED_KEY;
    ed->raw_fn = raw_skip_csi;
    return 0;
}

/* Bracketed paste: everything up to "\e[201~" is text. CRs become
 * newlines (GNU); newlines are inserted as text, and a paste that ends
 * with one accepts the line (without that last newline). */
static const char paste_end[] = "\033[201~";

static void raw_paste(kart_line *ed, unsigned char c)
{
    kart__lbuf *b = ed->mode_data;
    if (!b || kart__lbuf_add(b, &c, 1) < 0) {
        ed->raw_fn = NULL;
        return;
    }
    size_t el = sizeof(paste_end) - 1;
    if (b->len < el || memcmp(b->p + b->len - el, paste_end, el) != 0)
        return;
    b->len -= el;
    ed->raw_fn = NULL;
    /* CR LF and CR alone are newlines */
    size_t w = 0;
    for (size_t i = 0; i < b->len; i++) {
        char ch = b->p[i];
        if (ch == '\r') {
            if (i + 1 < b->len && b->p[i + 1] == '\n')
                continue;
            ch = '\n';
        }
        b->p[w++] = ch;
    }
    b->len = w;
    bool accept = w > 0 && b->p[w - 1] == '\n';
    if (accept)
        b->len--;
    ed->this_fn = KART__FN_BRACKETED_PASTE_BEGIN;
    kart__edit_begin_command(ed);
    ed->mark = ed->point;
    ed->mark_set = true;
    kart__edit_insert(ed, ed->point, b->p, b->len);
    kart__edit_end_command(ed);
    ed->last_fn = KART__FN_BRACKETED_PASTE_BEGIN;
    kart__lbuf_free(b);
    free(b);
    ed->mode_data = NULL;
    if (accept)
        kart__line_finish(ed, KART__DONE_LINE, 0);
}

CMD(cmd_bracketed_paste_begin)
{
    (void)count;
    UNUSED_KEY;
    free(ed->mode_data);
    ed->mode_data = calloc(1, sizeof(kart__lbuf));
    if (!ed->mode_data)
        return -ENOMEM;
    ed->raw_fn = raw_paste;
    return 0;
}

/* ---- keyboard macros ---- */

CMD(cmd_start_kbd_macro)
{
    (void)count;
    UNUSED_KEY;
    if (ed->recording)
        return bell(ed);
    ed->recording = true;
    ed->macro_rec.len = 0;
    return 0;
}

CMD(cmd_end_kbd_macro)
{
    (void)count;
    if (!ed->recording)
        return bell(ed);
    ed->recording = false;
    size_t strip = key ? key->len : 0;
    if (strip > ed->macro_rec.len)
        strip = ed->macro_rec.len;
    ed->macro_rec.len -= strip;
    ed->macro.len = 0;
    kart__lbuf_add(&ed->macro, ed->macro_rec.p ? ed->macro_rec.p : "", ed->macro_rec.len);
    return 0;
}

CMD(cmd_call_last_kbd_macro)
{
    UNUSED_KEY;
    if (ed->macro.len == 0 || ed->recording)
        return bell(ed);
    for (int i = 0; i < count && i < 1000; i++)
        kart__line_push_input(ed, ed->macro.p, ed->macro.len);
    return 0;
}

/* Prints lines below the line being edited, then draws it again. */
static void print_lines(kart_line *ed, const char *text, size_t len)
{
    if (!ed->terminal) {
        kart__out(ed, text, len);
        return;
    }
    kart__display_refresh(ed);
    kart__display_finish(ed, true);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n')
            kart__out(ed, "\r\n", 2);
        else
            kart__out(ed, text + i, 1);
    }
    kart__display_reset(ed);
}

CMD(cmd_print_last_kbd_macro)
{
    (void)count;
    UNUSED_KEY;
    if (ed->macro.len == 0)
        return bell(ed);
    size_t need = kart__keyseq_format(ed->macro.p, ed->macro.len, NULL, 0);
    char *t = malloc(need + 2);
    if (!t)
        return -ENOMEM;
    kart__keyseq_format(ed->macro.p, ed->macro.len, t, need + 1);
    strcat(t, "\n");
    print_lines(ed, t, strlen(t));
    free(t);
    return 0;
}

/* ---- dumps ---- */

typedef struct dumpctx {
    kart__lbuf out;
    kart_line *ed;
    bool macros;
} dumpctx;

static int dump_cb(void *arg, const char *seq, size_t len, const kart__binding *b)
{
    dumpctx *c = arg;
    char ks[KART__KEYSEQ_MAX * 6 + 8];
    kart__keyseq_format(seq, len, ks, sizeof(ks));
    if (!c->macros && b->kind == KART__BIND_FN && b->fn != KART__FN_SELF_INSERT) {
        const char *name = kart__line_fn_name(b->fn);
        if (name)
            kart__lbuf_addf(&c->out, "\"%s\": %s\n", ks, name);
    } else if (c->macros && b->kind == KART__BIND_MACRO) {
        size_t need = kart__keyseq_format(b->macro, b->macro_len, NULL, 0);
        char *m = malloc(need + 1);
        if (m) {
            kart__keyseq_format(b->macro, b->macro_len, m, need + 1);
            kart__lbuf_addf(&c->out, "\"%s\": \"%s\"\n", ks, m);
            free(m);
        }
    }
    return 0;
}

CMD(cmd_dump)
{
    (void)count;
    UNUSED_KEY;
    dumpctx c = {.ed = ed};
    if (ed->this_fn == KART__FN_DUMP_VARIABLES) {
        for (const char *const *n = kart__line_setting_names; *n; n++) {
            char v[256];
            if (kart__line_setting_get(&ed->set, *n, v, sizeof(v)) >= 0)
                kart__lbuf_addf(&c.out, "set %s %s\n", *n, v);
        }
    } else {
        c.macros = ed->this_fn == KART__FN_DUMP_MACROS;
        kart__keymap_each(kart__line_keymap(ed), dump_cb, &c);
    }
    if (c.out.len)
        print_lines(ed, c.out.p, c.out.len);
    kart__lbuf_free(&c.out);
    return 0;
}

/* ---- modes and the rest ---- */

CMD(cmd_do_lowercase_version)
{
    (void)count;
    if (!key || key->len == 0)
        return bell(ed);
    char seq[KART__KEYSEQ_MAX];
    memcpy(seq, key->bytes, key->len);
    unsigned char last = (unsigned char)seq[key->len - 1];
    if (last < 'A' || last > 'Z')
        return bell(ed);
    seq[key->len - 1] = (char)(last + 32);
    kart__binding b;
    int m = kart__keymap_lookup(kart__line_keymap(ed), seq, key->len, &b);
    if (!(m & KART__SEQ_BOUND))
        return bell(ed);
    if (b.kind == KART__BIND_MACRO)
        return kart__line_push_input(ed, b.macro, b.macro_len);
    if (b.kind != KART__BIND_FN || b.fn == KART__FN_DO_LOWERCASE_VERSION)
        return bell(ed);
    kart__key k = *key;
    k.bytes[k.len - 1] = (char)(last + 32);
    k.binding = b;
    kart__line_run(ed, b.fn, ed->explicit_arg ? count : 1, &k);
    return 0;
}

CMD(cmd_editing_mode)
{
    (void)count;
    UNUSED_KEY;
    if (ed->this_fn == KART__FN_VI_EDITING_MODE) {
        ed->map = KART__MAP_VI_INSERT;
        ed->set.vi_mode = true;
    } else {
        ed->map = KART__MAP_EMACS;
        ed->set.vi_mode = false;
    }
    return 0;
}

CMD(cmd_re_read_init_file)
{
    (void)count;
    UNUSED_KEY;
    ed->inputrc_tried = false;
    kart__line_load_inputrc(ed);
    return 0;
}

CMD(cmd_tilde_expand)
{
    (void)count;
    UNUSED_KEY;
    size_t start = ed->point;
    while (start > 0 && !is_space(ed, start - 1))
        start--;
    if (start >= ed->line.len || ed->line.p[start] != '~')
        return 0;
    size_t end = start + 1;
    while (end < ed->line.len && ed->line.p[end] != '/' && !is_space(ed, end))
        end++;
    const char *home = NULL;
    if (end == start + 1) {
        home = getenv("HOME");
        if (!home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
    } else {
        char user[256];
        size_t ul = end - start - 1;
        if (ul >= sizeof(user))
            return bell(ed);
        memcpy(user, ed->line.p + start + 1, ul);
        user[ul] = '\0';
        struct passwd *pw = getpwnam(user);
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home)
        return bell(ed);
    size_t keep = ed->point;
    kart__edit_delete(ed, start, end);
    kart__edit_insert(ed, start, home, strlen(home));
    ed->point = keep - (end - start) + strlen(home);
    return 0;
}

/* The table: one entry per function; vi.c adds the vi-* ones. */
const kart__line_cmd kart__line_cmds[KART__FN_COUNT] = {
    [KART__FN_ABORT] = cmd_abort,
    [KART__FN_ACCEPT_LINE] = cmd_accept_line,
    [KART__FN_BACKWARD_BYTE] = cmd_backward_byte,
    [KART__FN_BACKWARD_CHAR] = cmd_backward_char,
    [KART__FN_BACKWARD_DELETE_CHAR] = cmd_backward_delete_char,
    [KART__FN_BACKWARD_KILL_LINE] = cmd_backward_kill_line,
    [KART__FN_BACKWARD_KILL_WORD] = cmd_backward_kill_word,
    [KART__FN_BACKWARD_WORD] = cmd_backward_word,
    [KART__FN_BEGINNING_OF_HISTORY] = kart__cmd_history_move,
    [KART__FN_BEGINNING_OF_LINE] = cmd_beginning_of_line,
    [KART__FN_BRACKETED_PASTE_BEGIN] = cmd_bracketed_paste_begin,
    [KART__FN_CALL_LAST_KBD_MACRO] = cmd_call_last_kbd_macro,
    [KART__FN_CAPITALIZE_WORD] = cmd_change_case,
    [KART__FN_CHARACTER_SEARCH] = cmd_character_search,
    [KART__FN_CHARACTER_SEARCH_BACKWARD] = cmd_character_search,
    [KART__FN_CLEAR_DISPLAY] = cmd_clear_screen,
    [KART__FN_CLEAR_SCREEN] = cmd_clear_screen,
    [KART__FN_COMPLETE] = kart__cmd_complete,
    [KART__FN_COPY_BACKWARD_WORD] = cmd_copy_word,
    [KART__FN_COPY_FORWARD_WORD] = cmd_copy_word,
    [KART__FN_COPY_REGION_AS_KILL] = cmd_copy_region_as_kill,
    [KART__FN_DELETE_CHAR] = cmd_delete_char,
    [KART__FN_DELETE_CHAR_OR_LIST] = kart__cmd_complete,
    [KART__FN_DELETE_HORIZONTAL_SPACE] = cmd_delete_horizontal_space,
    [KART__FN_DIGIT_ARGUMENT] = cmd_digit_argument,
    [KART__FN_DO_LOWERCASE_VERSION] = cmd_do_lowercase_version,
    [KART__FN_DOWNCASE_WORD] = cmd_change_case,
    [KART__FN_DUMP_FUNCTIONS] = cmd_dump,
    [KART__FN_DUMP_MACROS] = cmd_dump,
    [KART__FN_DUMP_VARIABLES] = cmd_dump,
    [KART__FN_EMACS_EDITING_MODE] = cmd_editing_mode,
    [KART__FN_END_KBD_MACRO] = cmd_end_kbd_macro,
    [KART__FN_END_OF_FILE] = cmd_end_of_file,
    [KART__FN_END_OF_HISTORY] = kart__cmd_history_move,
    [KART__FN_END_OF_LINE] = cmd_end_of_line,
    [KART__FN_EXCHANGE_POINT_AND_MARK] = cmd_exchange_point_and_mark,
    [KART__FN_FETCH_HISTORY] = kart__cmd_fetch_history,
    [KART__FN_FORWARD_BACKWARD_DELETE_CHAR] = cmd_forward_backward_delete_char,
    [KART__FN_FORWARD_BYTE] = cmd_forward_byte,
    [KART__FN_FORWARD_CHAR] = cmd_forward_char,
    [KART__FN_FORWARD_SEARCH_HISTORY] = kart__cmd_isearch,
    [KART__FN_FORWARD_WORD] = cmd_forward_word,
    [KART__FN_HISTORY_SEARCH_BACKWARD] = kart__cmd_history_search,
    [KART__FN_HISTORY_SEARCH_FORWARD] = kart__cmd_history_search,
    [KART__FN_HISTORY_SUBSTRING_SEARCH_BACKWARD] = kart__cmd_history_search,
    [KART__FN_HISTORY_SUBSTRING_SEARCH_FORWARD] = kart__cmd_history_search,
    [KART__FN_INSERT_COMMENT] = cmd_insert_comment,
    [KART__FN_INSERT_COMPLETIONS] = kart__cmd_complete,
    [KART__FN_KILL_LINE] = cmd_kill_line,
    [KART__FN_KILL_REGION] = cmd_kill_region,
    [KART__FN_KILL_WHOLE_LINE] = cmd_kill_whole_line,
    [KART__FN_KILL_WORD] = cmd_kill_word,
    [KART__FN_MENU_COMPLETE] = kart__cmd_complete,
    [KART__FN_MENU_COMPLETE_BACKWARD] = kart__cmd_complete,
    [KART__FN_NEXT_HISTORY] = kart__cmd_history_move,
    [KART__FN_NEXT_SCREEN_LINE] = cmd_screen_line,
    [KART__FN_NON_INCREMENTAL_FORWARD_SEARCH_HISTORY] = kart__cmd_nsearch,
    [KART__FN_NON_INCREMENTAL_FORWARD_SEARCH_HISTORY_AGAIN] = kart__cmd_nsearch_again,
    [KART__FN_NON_INCREMENTAL_REVERSE_SEARCH_HISTORY] = kart__cmd_nsearch,
    [KART__FN_NON_INCREMENTAL_REVERSE_SEARCH_HISTORY_AGAIN] = kart__cmd_nsearch_again,
    [KART__FN_OLD_MENU_COMPLETE] = kart__cmd_complete,
    [KART__FN_OPERATE_AND_GET_NEXT] = kart__cmd_operate_and_get_next,
    [KART__FN_OVERWRITE_MODE] = cmd_overwrite_mode,
    [KART__FN_POSSIBLE_COMPLETIONS] = kart__cmd_complete,
    [KART__FN_PREVIOUS_HISTORY] = kart__cmd_history_move,
    [KART__FN_PREVIOUS_SCREEN_LINE] = cmd_screen_line,
    [KART__FN_PRINT_LAST_KBD_MACRO] = cmd_print_last_kbd_macro,
    [KART__FN_QUOTED_INSERT] = cmd_quoted_insert,
    [KART__FN_RE_READ_INIT_FILE] = cmd_re_read_init_file,
    [KART__FN_REDRAW_CURRENT_LINE] = cmd_redraw_current_line,
    [KART__FN_REVERSE_SEARCH_HISTORY] = kart__cmd_isearch,
    [KART__FN_REVERT_LINE] = cmd_revert_line,
    [KART__FN_SELF_INSERT] = cmd_self_insert,
    [KART__FN_SET_MARK] = cmd_set_mark,
    [KART__FN_SKIP_CSI_SEQUENCE] = cmd_skip_csi_sequence,
    [KART__FN_START_KBD_MACRO] = cmd_start_kbd_macro,
    [KART__FN_TAB_INSERT] = cmd_tab_insert,
    [KART__FN_TILDE_EXPAND] = cmd_tilde_expand,
    [KART__FN_TRANSPOSE_CHARS] = cmd_transpose_chars,
    [KART__FN_TRANSPOSE_WORDS] = cmd_transpose_words,
    [KART__FN_UNDO] = cmd_undo,
    [KART__FN_UNIVERSAL_ARGUMENT] = cmd_universal_argument,
    [KART__FN_UNIX_FILENAME_RUBOUT] = cmd_unix_word_rubout,
    [KART__FN_UNIX_LINE_DISCARD] = cmd_unix_line_discard,
    [KART__FN_UNIX_WORD_RUBOUT] = cmd_unix_word_rubout,
    [KART__FN_UPCASE_WORD] = cmd_change_case,
    [KART__FN_VI_EDITING_MODE] = cmd_editing_mode,
    [KART__FN_YANK] = cmd_yank,
    [KART__FN_YANK_LAST_ARG] = kart__cmd_yank_arg,
    [KART__FN_YANK_NTH_ARG] = kart__cmd_yank_arg,
    [KART__FN_YANK_POP] = cmd_yank_pop,
};

void kart__edit_cancel(kart_line *ed)
{
    if (ed->raw_fn == raw_paste && ed->mode_data)
        kart__lbuf_free(ed->mode_data);
    free(ed->mode_data);
    ed->mode_data = NULL;
    ed->raw_fn = NULL;
    if (ed->mode_fn == arg_mode)
        arg_end(ed);
    ed->in_arg = false;
    kart__vi_cancel(ed);
}

void kart__edit_free(kart_line *ed)
{
    kart__vi_free(ed);
    kart__undo_list_free(&ed->undo);
    for (size_t i = 0; i < MAX_KILLS; i++)
        kart__lbuf_free(&ed->kills[i]);
    kart__lbuf_free(&ed->line);
}

/*
 * core/line/search.c — the history as the editor sees it: moving through
 * it (edits of history lines kept until the line is accepted, then left in
 * the history as GNU does, or reverted with revert-all-at-newline),
 * incremental search (C-r, C-s), non-incremental search (M-p, M-n),
 * prefix and substring search, yank-nth-arg and yank-last-arg,
 * operate-and-get-next and fetch-history.
 *
 * The lines searched are the history's entries (0 .. hlen0 - 1, the
 * length when the line started) and the line being edited (hlen0), each
 * as the user sees it now (with its edits).
 */
#include "line_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t kart__hist_length(const kart_line *ed)
{
    return ed->hist ? ed->hlen0 : 0;
}

static bool hlines_ready(kart_line *ed)
{
    if (ed->hlines)
        return true;
    size_t n = kart__hist_length(ed) + 1;
    ed->hlines = calloc(n, sizeof(*ed->hlines));
    if (!ed->hlines)
        return false;
    ed->nhlines = n;
    return true;
}

const char *kart__hist_text(kart_line *ed, size_t index, size_t *len)
{
    if (index == ed->hpos) {
        *len = ed->line.len;
        return ed->line.p ? ed->line.p : "";
    }
    if (ed->hlines && index < ed->nhlines && ed->hlines[index].used) {
        *len = ed->hlines[index].len;
        return ed->hlines[index].text;
    }
    const char *t =
        ed->hist && index < kart__hist_length(ed) ? kart_history_text(ed->hist, index, len) : NULL;
    if (!t) {
        *len = 0;
        return "";
    }
    return t;
}

static void hline_clear(kart__hline *h)
{
    free(h->text);
    h->text = NULL;
    h->len = 0;
    kart__undo_list_free(&h->undo);
    h->used = false;
}

void kart__hist_reset(kart_line *ed)
{
    if (ed->hlines) {
        for (size_t i = 0; i < ed->nhlines; i++)
            hline_clear(&ed->hlines[i]);
        free(ed->hlines);
    }
    ed->hlines = NULL;
    ed->nhlines = 0;
    ed->hlen0 = ed->hist ? kart_history_length(ed->hist) : 0;
    ed->hpos = ed->hlen0;
}

int kart__hist_goto(kart_line *ed, size_t index)
{
    size_t n = kart__hist_length(ed);
    if (index > n)
        index = n;
    if (index == ed->hpos)
        return 0;
    if (!hlines_ready(ed))
        return -ENOMEM;
    /* keep the line left, if it is the new line or was edited */
    kart__hline *h = &ed->hlines[ed->hpos];
    hline_clear(h);
    if (ed->hpos == n || ed->undo.n > 0) {
        h->text = malloc(ed->line.len + 1);
        if (!h->text)
            return -ENOMEM;
        memcpy(h->text, ed->line.p ? ed->line.p : "", ed->line.len + 1);
        h->len = ed->line.len;
        h->undo = ed->undo;
        memset(&ed->undo, 0, sizeof(ed->undo));
        h->used = true;
    } else {
        kart__undo_list_free(&ed->undo);
    }
    size_t old_point = ed->point;
    kart__hline *t = &ed->hlines[index];
    size_t len;
    const char *text;
    char *own = NULL;
    if (t->used) {
        own = t->text;
        text = own;
        len = t->len;
        ed->undo = t->undo;
        memset(&t->undo, 0, sizeof(t->undo));
        t->text = NULL;
        t->used = false;
    } else {
        text = kart_history_text(ed->hist, index, &len);
        if (!text) {
            text = "";
            len = 0;
        }
    }
    ed->hpos = index;
    int r = kart__edit_set_line(ed, text, len);
    free(own);
    ed->group_open = false;
    if (ed->set.history_preserve_point && old_point <= ed->line.len) {
        ed->point = old_point;
        while (ed->point > 0 && ed->point < ed->line.len && (ed->line.p[ed->point] & 0xc0) == 0x80)
            ed->point--;
    }
    return r;
}

void kart__hist_accept(kart_line *ed)
{
    if (ed->hlines && ed->hist) {
        size_t n = kart__hist_length(ed);
        for (size_t i = 0; i < ed->nhlines && i < n; i++) {
            kart__hline *h = &ed->hlines[i];
            if (!h->used)
                continue;
            /* GNU leaves edited history lines edited, unless
             * revert-all-at-newline; the accepted one goes back */
            if (!ed->set.revert_all_at_newline && i != ed->hpos &&
                i < kart_history_length(ed->hist))
                kart_history_replace(ed->hist, i, h->text, h->len);
        }
    }
    kart__hist_reset(ed);
}

/* ---- moves ---- */

int kart__cmd_history_move(kart_line *ed, int count, const kart__key *key)
{
    (void)key;
    size_t n = kart__hist_length(ed);
    long target;
    switch (ed->this_fn) {
    case KART__FN_BEGINNING_OF_HISTORY:
        target = 0;
        break;
    case KART__FN_END_OF_HISTORY:
        target = (long)n;
        break;
    case KART__FN_PREVIOUS_HISTORY:
        target = (long)ed->hpos - count;
        break;
    default:
        target = (long)ed->hpos + count;
        break;
    }
    if (target < 0 || target > (long)n) {
        if ((ed->this_fn == KART__FN_PREVIOUS_HISTORY && ed->hpos == 0) ||
            (ed->this_fn == KART__FN_NEXT_HISTORY && ed->hpos == n)) {
            kart__line_bell(ed);
            return 1;
        }
        target = target < 0 ? 0 : (long)n;
    }
    if (n == 0 && ed->this_fn == KART__FN_PREVIOUS_HISTORY) {
        kart__line_bell(ed);
        return 1;
    }
    return kart__hist_goto(ed, (size_t)target);
}

int kart__cmd_fetch_history(kart_line *ed, int count, const kart__key *key)
{
    (void)key;
    size_t n = kart__hist_length(ed);
    if (n == 0) {
        kart__line_bell(ed);
        return 1;
    }
    long want;
    if (!ed->explicit_arg)
        want = 0;
    else if (count <= 0)
        want = (long)ed->hpos + count;
    else
        want = (long)count - (long)kart_history_base(ed->hist);
    if (want < 0 || want >= (long)n) {
        kart__line_bell(ed);
        return 1;
    }
    return kart__hist_goto(ed, (size_t)want);
}

int kart__cmd_operate_and_get_next(kart_line *ed, int count, const kart__key *key)
{
    (void)count;
    (void)key;
    size_t n = kart__hist_length(ed);
    ed->next_hist = ed->hpos < n ? ed->hpos + 1 : SIZE_MAX;
    kart__line_finish(ed, KART__DONE_LINE, 0);
    return 0;
}

/* ---- matching ---- */

static bool eq_at(const kart_line *ed, const char *t, const char *s, size_t n)
{
    if (!ed->set.search_ignore_case)
        return memcmp(t, s, n) == 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)t[i], b = (unsigned char)s[i];
        if (a >= 'A' && a <= 'Z')
            a += 32;
        if (b >= 'A' && b <= 'Z')
            b += 32;
        if (a != b)
            return false;
    }
    return true;
}

/* Finds s (n bytes) in the lines from (*idx, *pos) on, inclusive, going
 * dir (-1 towards older lines and earlier offsets, +1 the other way).
 * prefix: only at offset 0. */
static bool find(kart_line *ed, const char *s, size_t n, int dir, bool prefix, size_t *idx,
                 size_t *pos)
{
    size_t last = kart__hist_length(ed);
    long i = (long)*idx;
    long p = (long)*pos;
    while (i >= 0 && i <= (long)last) {
        size_t len;
        const char *t = kart__hist_text(ed, (size_t)i, &len);
        if (n <= len) {
            long maxoff = prefix ? 0 : (long)(len - n);
            if (dir < 0) {
                long o = p > maxoff ? maxoff : p;
                for (; o >= 0; o--)
                    if (eq_at(ed, t + o, s, n)) {
                        *idx = (size_t)i;
                        *pos = (size_t)o;
                        return true;
                    }
            } else {
                for (long o = p < 0 ? 0 : p; o <= maxoff; o++)
                    if (eq_at(ed, t + o, s, n)) {
                        *idx = (size_t)i;
                        *pos = (size_t)o;
                        return true;
                    }
            }
        }
        i += dir;
        if (i < 0 || i > (long)last)
            break;
        if (dir < 0) {
            size_t l2;
            kart__hist_text(ed, (size_t)i, &l2);
            p = (long)l2;
        } else {
            p = 0;
        }
    }
    return false;
}

/* ---- incremental search ---- */

typedef struct isearch_step {
    size_t slen, idx, pos;
    bool failed;
} isearch_step;

typedef struct isearch {
    int dir;
    size_t orig_hpos, orig_point;
    size_t idx, pos;
    bool failed;
    isearch_step *steps;
    size_t nsteps, cap;
} isearch;

static void isearch_prompt(kart_line *ed, isearch *s)
{
    kart__lbuf b = {0};
    kart__lbuf_addf(&b, "(%s%si-search)`", s->failed ? "failed " : "",
                    s->dir < 0 ? "reverse-" : "");
    kart__lbuf_add(&b, ed->isearch.p ? ed->isearch.p : "", ed->isearch.len);
    kart__lbuf_adds(&b, "': ");
    free(ed->mode_prompt);
    ed->mode_prompt = b.p ? b.p : strdup("");
    kart__display_invalidate(ed);
}

static void isearch_show(kart_line *ed, isearch *s)
{
    kart__hist_goto(ed, s->idx);
    ed->point = s->pos <= ed->line.len ? s->pos : ed->line.len;
}

static void isearch_end(kart_line *ed, bool restore)
{
    isearch *s = ed->search_state;
    if (s) {
        if (restore) {
            kart__hist_goto(ed, s->orig_hpos);
            ed->point = s->orig_point <= ed->line.len ? s->orig_point : ed->line.len;
        }
        free(s->steps);
        free(s);
    }
    ed->search_state = NULL;
    if (ed->isearch.len) {
        ed->last_isearch.len = 0;
        kart__lbuf_add(&ed->last_isearch, ed->isearch.p, ed->isearch.len);
    }
    ed->isearch.len = 0;
    free(ed->mode_prompt);
    ed->mode_prompt = NULL;
    ed->mode_fn = NULL;
    kart__display_invalidate(ed);
}

static void isearch_push(isearch *s, size_t slen)
{
    if (s->nsteps == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        isearch_step *v = realloc(s->steps, cap * sizeof(*v));
        if (!v)
            return;
        s->steps = v;
        s->cap = cap;
    }
    s->steps[s->nsteps++] = (isearch_step){slen, s->idx, s->pos, s->failed};
}

/* Searches for the string from the current match (next: strictly past
 * it). */
static void isearch_search(kart_line *ed, isearch *s, bool next)
{
    size_t idx = s->idx, pos = s->pos;
    if (next) {
        if (s->dir < 0) {
            if (pos == 0) {
                if (idx == 0) {
                    s->failed = true;
                    kart__line_bell(ed);
                    return;
                }
                idx--;
                size_t l;
                kart__hist_text(ed, idx, &l);
                pos = l;
            } else {
                pos--;
            }
        } else {
            pos++;
        }
    }
    if (find(ed, ed->isearch.p, ed->isearch.len, s->dir, false, &idx, &pos)) {
        s->idx = idx;
        s->pos = pos;
        s->failed = false;
        isearch_show(ed, s);
    } else {
        s->failed = true;
        kart__line_bell(ed);
    }
}

static bool key_is_fn(const kart__key *k, enum kart__line_fn fn)
{
    return k->kind == KART__KEY_BOUND && k->binding.kind == KART__BIND_FN && k->binding.fn == fn;
}

static bool is_terminator(kart_line *ed, const kart__key *k)
{
    if (k->len == 0)
        return false;
    const char *t = ed->set.isearch_terminators ? ed->set.isearch_terminators : "\033\n";
    if (k->len == 1 && strchr(t, k->bytes[0]) && k->bytes[0] != '\0')
        return true;
    return false;
}

static bool isearch_key(kart_line *ed, const kart__key *k)
{
    isearch *s = ed->search_state;
    if (!s) {
        ed->mode_fn = NULL;
        return false;
    }
    if (key_is_fn(k, KART__FN_REVERSE_SEARCH_HISTORY) ||
        key_is_fn(k, KART__FN_FORWARD_SEARCH_HISTORY)) {
        int dir = key_is_fn(k, KART__FN_REVERSE_SEARCH_HISTORY) ? -1 : 1;
        bool turned = dir != s->dir;
        s->dir = dir;
        if (ed->isearch.len == 0) {
            if (ed->last_isearch.len == 0) {
                isearch_prompt(ed, s);
                return true;
            }
            kart__lbuf_add(&ed->isearch, ed->last_isearch.p, ed->last_isearch.len);
            isearch_push(s, 0);
            isearch_search(ed, s, false);
        } else {
            isearch_push(s, ed->isearch.len);
            isearch_search(ed, s, !turned || true);
        }
        isearch_prompt(ed, s);
        return true;
    }
    if (key_is_fn(k, KART__FN_ABORT)) {
        isearch_end(ed, true);
        kart__line_bell(ed);
        return true;
    }
    if (key_is_fn(k, KART__FN_BACKWARD_DELETE_CHAR)) {
        /* the last character goes: back to where the shorter string
         * matched */
        while (s->nsteps > 0 && s->steps[s->nsteps - 1].slen >= ed->isearch.len &&
               ed->isearch.len > 0)
            s->nsteps--;
        if (s->nsteps == 0 || ed->isearch.len == 0) {
            kart__line_bell(ed);
            return true;
        }
        isearch_step st = s->steps[--s->nsteps];
        ed->isearch.len = st.slen;
        s->idx = st.idx;
        s->pos = st.pos;
        s->failed = st.failed;
        isearch_show(ed, s);
        isearch_prompt(ed, s);
        return true;
    }
    if (key_is_fn(k, KART__FN_UNIX_WORD_RUBOUT) || key_is_fn(k, KART__FN_YANK)) {
        /* C-w: the word after the cursor joins the string; C-y: the rest
         * of the line */
        size_t from = ed->point, to = ed->line.len;
        if (key_is_fn(k, KART__FN_UNIX_WORD_RUBOUT)) {
            to = from;
            while (to < ed->line.len && !kart__is_word_char(kart__char_at(ed, to, NULL)))
                to = kart__next_char(ed, to);
            while (to < ed->line.len && kart__is_word_char(kart__char_at(ed, to, NULL)))
                to = kart__next_char(ed, to);
        }
        if (to > from) {
            isearch_push(s, ed->isearch.len);
            kart__lbuf_add(&ed->isearch, ed->line.p + from, to - from);
            isearch_search(ed, s, false);
        }
        isearch_prompt(ed, s);
        return true;
    }
    bool insert = k->kind == KART__KEY_INSERT || key_is_fn(k, KART__FN_SELF_INSERT);
    if (insert && !(k->len == 1 && (unsigned char)k->bytes[0] < 0x20)) {
        isearch_push(s, ed->isearch.len);
        kart__lbuf_add(&ed->isearch, k->bytes, k->len);
        if (!s->failed)
            isearch_search(ed, s, false);
        else
            kart__line_bell(ed);
        isearch_prompt(ed, s);
        return true;
    }
    if (is_terminator(ed, k) || (k->len == 1 && k->bytes[0] == '\033')) {
        isearch_end(ed, false);
        return true;
    }
    /* anything else ends the search and runs as usual */
    isearch_end(ed, false);
    return false;
}

int kart__cmd_isearch(kart_line *ed, int count, const kart__key *key)
{
    (void)key;
    isearch *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->dir = ed->this_fn == KART__FN_REVERSE_SEARCH_HISTORY ? -1 : 1;
    if (count < 0)
        s->dir = -s->dir;
    s->orig_hpos = ed->hpos;
    s->orig_point = ed->point;
    s->idx = ed->hpos;
    s->pos = ed->point;
    ed->search_state = s;
    ed->isearch.len = 0;
    ed->mode_fn = isearch_key;
    isearch_prompt(ed, s);
    return 0;
}

/* ---- non-incremental search ---- */

typedef struct nsearch {
    int dir;
    size_t orig_hpos, orig_point;
    char *orig_text;
    size_t orig_len;
    kart__undo_list orig_undo;
} nsearch;

static void nsearch_end(kart_line *ed, nsearch *s, bool restore)
{
    if (restore) {
        kart__edit_set_line(ed, s->orig_text, s->orig_len);
        kart__undo_list_free(&ed->undo);
        ed->undo = s->orig_undo;
        memset(&s->orig_undo, 0, sizeof(s->orig_undo));
        ed->point = s->orig_point <= ed->line.len ? s->orig_point : ed->line.len;
    }
    kart__undo_list_free(&s->orig_undo);
    free(s->orig_text);
    free(s);
    ed->search_state = NULL;
    free(ed->mode_prompt);
    ed->mode_prompt = NULL;
    ed->mode_fn = NULL;
    kart__display_invalidate(ed);
}

/* Searches history from the line the search started on; the line
 * buffer (the search string) is replaced by the found line. */
static bool nsearch_do(kart_line *ed, int dir, const char *str, size_t n, size_t from)
{
    size_t last = kart__hist_length(ed);
    if (n == 0 || last == 0)
        return false;
    long i = (long)from + dir;
    for (; i >= 0 && i < (long)last; i += dir) {
        size_t len;
        const char *t = ed->hist ? kart_history_text(ed->hist, (size_t)i, &len) : NULL;
        if (!t || n > len)
            continue;
        for (size_t o = 0; o + n <= len; o++)
            if (eq_at(ed, t + o, str, n)) {
                kart__hist_goto(ed, (size_t)i);
                ed->point = o;
                return true;
            }
    }
    return false;
}

static bool nsearch_key(kart_line *ed, const kart__key *k)
{
    nsearch *s = ed->search_state;
    if (!s) {
        ed->mode_fn = NULL;
        return false;
    }
    if (key_is_fn(k, KART__FN_ABORT) ||
        (key_is_fn(k, KART__FN_BACKWARD_DELETE_CHAR) && ed->line.len == 0)) {
        nsearch_end(ed, s, true);
        kart__line_bell(ed);
        return true;
    }
    if (key_is_fn(k, KART__FN_ACCEPT_LINE)) {
        if (ed->line.len > 0) {
            ed->nsearch.len = 0;
            kart__lbuf_add(&ed->nsearch, ed->line.p, ed->line.len);
        }
        /* back to the original line first, then search from it */
        size_t from = s->orig_hpos;
        int dir = s->dir;
        nsearch_end(ed, s, true);
        if (!nsearch_do(ed, dir, ed->nsearch.p, ed->nsearch.len, from))
            kart__line_bell(ed);
        return true;
    }
    if (k->kind == KART__KEY_INSERT || key_is_fn(k, KART__FN_SELF_INSERT) ||
        key_is_fn(k, KART__FN_BACKWARD_DELETE_CHAR) || key_is_fn(k, KART__FN_UNIX_WORD_RUBOUT) ||
        key_is_fn(k, KART__FN_UNIX_LINE_DISCARD) || key_is_fn(k, KART__FN_QUOTED_INSERT) ||
        key_is_fn(k, KART__FN_BACKWARD_CHAR) || key_is_fn(k, KART__FN_FORWARD_CHAR) ||
        key_is_fn(k, KART__FN_BEGINNING_OF_LINE) || key_is_fn(k, KART__FN_END_OF_LINE))
        return false; /* edits the search string as usual */
    kart__line_bell(ed);
    return true;
}

int kart__cmd_nsearch(kart_line *ed, int count, const kart__key *key)
{
    (void)key;
    nsearch *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->dir = ed->this_fn == KART__FN_NON_INCREMENTAL_REVERSE_SEARCH_HISTORY ? -1 : 1;
    if (count < 0)
        s->dir = -s->dir;
    s->orig_hpos = ed->hpos;
    s->orig_point = ed->point;
    s->orig_text = malloc(ed->line.len + 1);
    if (!s->orig_text) {
        free(s);
        return -ENOMEM;
    }
    memcpy(s->orig_text, ed->line.p ? ed->line.p : "", ed->line.len + 1);
    s->orig_len = ed->line.len;
    s->orig_undo = ed->undo;
    memset(&ed->undo, 0, sizeof(ed->undo));
    ed->search_state = s;
    ed->line.len = 0;
    ed->line.p[0] = '\0';
    ed->point = 0;
    kart__display_dirty(ed, 0);
    free(ed->mode_prompt);
    ed->mode_prompt = strdup(":");
    ed->mode_fn = nsearch_key;
    kart__display_invalidate(ed);
    return 0;
}

int kart__cmd_nsearch_again(kart_line *ed, int count, const kart__key *key)
{
    (void)key;
    int dir = ed->this_fn == KART__FN_NON_INCREMENTAL_REVERSE_SEARCH_HISTORY_AGAIN ? -1 : 1;
    if (count < 0)
        dir = -dir;
    if (ed->nsearch.len == 0 || !nsearch_do(ed, dir, ed->nsearch.p, ed->nsearch.len, ed->hpos)) {
        kart__line_bell(ed);
        return 1;
    }
    return 0;
}

/* ---- history-search-backward/forward and the substring ones ---- */

int kart__cmd_history_search(kart_line *ed, int count, const kart__key *key)
{
    (void)key;
    bool substr = ed->this_fn == KART__FN_HISTORY_SUBSTRING_SEARCH_BACKWARD ||
                  ed->this_fn == KART__FN_HISTORY_SUBSTRING_SEARCH_FORWARD;
    int dir = (ed->this_fn == KART__FN_HISTORY_SEARCH_BACKWARD ||
               ed->this_fn == KART__FN_HISTORY_SUBSTRING_SEARCH_BACKWARD)
                  ? -1
                  : 1;
    if (count < 0) {
        dir = -dir;
        count = -count;
    }
    bool again = ed->last_fn == KART__FN_HISTORY_SEARCH_BACKWARD ||
                 ed->last_fn == KART__FN_HISTORY_SEARCH_FORWARD ||
                 ed->last_fn == KART__FN_HISTORY_SUBSTRING_SEARCH_BACKWARD ||
                 ed->last_fn == KART__FN_HISTORY_SUBSTRING_SEARCH_FORWARD;
    if (!again) {
        ed->hsearch.len = 0;
        kart__lbuf_add(&ed->hsearch, ed->line.p ? ed->line.p : "", ed->point);
    }
    size_t last = kart__hist_length(ed);
    size_t n = ed->hsearch.len;
    const char *str = ed->hsearch.p ? ed->hsearch.p : "";
    long i = (long)ed->hpos;
    size_t cur_len;
    const char *cur = kart__hist_text(ed, ed->hpos, &cur_len);
    char *curcopy = malloc(cur_len + 1);
    if (!curcopy)
        return -ENOMEM;
    memcpy(curcopy, cur, cur_len);
    while (count-- > 0) {
        long found = -1;
        size_t at = 0;
        for (long j = i + dir; j >= 0 && j <= (long)last; j += dir) {
            size_t len;
            const char *t = kart__hist_text(ed, (size_t)j, &len);
            if (j == (long)last && dir > 0 && n == 0) {
                found = j;
                break;
            }
            if (n > len)
                continue;
            /* GNU skips lines equal to the one shown */
            if (len == cur_len && memcmp(t, curcopy, len) == 0)
                continue;
            bool ok = false;
            if (!substr) {
                ok = eq_at(ed, t, str, n);
                at = n;
            } else {
                for (size_t o = 0; o + n <= len; o++)
                    if (eq_at(ed, t + o, str, n)) {
                        ok = true;
                        at = o + n;
                        break;
                    }
            }
            if (ok) {
                found = j;
                (void)at;
                break;
            }
        }
        if (found < 0) {
            free(curcopy);
            kart__line_bell(ed);
            return 1;
        }
        i = found;
    }
    free(curcopy);
    kart__hist_goto(ed, (size_t)i);
    ed->point = substr ? ed->line.len : (n <= ed->line.len ? n : ed->line.len);
    return 0;
}

/* ---- yank-nth-arg, yank-last-arg ---- */

/* The words of a history line, split as a shell would: blanks separate,
 * quotes and backslashes hold words together, ; & | < > ( ) are words of
 * their own. Returns word n (negative: from the end) as [*ws, *we). */
static bool nth_word(const char *t, size_t len, long n, size_t *ws, size_t *we)
{
    size_t starts[256], ends[256];
    size_t nw = 0, i = 0;
    while (i < len && nw < 256) {
        while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n'))
            i++;
        if (i >= len)
            break;
        size_t s = i;
        if (strchr(";&|<>()", t[i])) {
            i++;
            while (i < len && t[i] == t[s] && strchr("&|<>", t[i]) && i - s < 2)
                i++;
        } else {
            char q = 0;
            while (i < len) {
                char c = t[i];
                if (q) {
                    if (c == '\\' && q == '"' && i + 1 < len)
                        i++;
                    else if (c == q)
                        q = 0;
                } else if (c == '\\' && i + 1 < len) {
                    i++;
                } else if (c == '\'' || c == '"') {
                    q = c;
                } else if (c == ' ' || c == '\t' || c == '\n' || strchr(";&|<>()", c)) {
                    break;
                }
                i++;
            }
        }
        starts[nw] = s;
        ends[nw] = i;
        nw++;
    }
    if (nw == 0)
        return false;
    long k = n < 0 ? (long)nw + n : n;
    if (k < 0 || k >= (long)nw)
        return false;
    *ws = starts[k];
    *we = ends[k];
    return true;
}

int kart__cmd_yank_arg(kart_line *ed, int count, const kart__key *key)
{
    (void)key;
    bool last = ed->this_fn == KART__FN_YANK_LAST_ARG;
    size_t hn = kart__hist_length(ed);
    if (hn == 0 || !ed->hist) {
        kart__line_bell(ed);
        return 1;
    }
    long word;
    long back = 1; /* entries before the current line */
    if (last) {
        if (ed->last_yla) {
            /* again: replace the text inserted before with the next
             * older entry's */
            kart__edit_delete(ed, ed->yank_start, ed->yank_end);
            ed->point = ed->yank_start;
            ed->yla_index++;
            back = ed->yla_index;
            word = ed->yla_count;
        } else {
            ed->yla_index = 1;
            word = ed->explicit_arg ? count : -1;
            ed->yla_count = (int)word;
        }
    } else {
        word = ed->explicit_arg ? count : 1;
    }
    long idx = (long)ed->hpos - back;
    if (idx < 0 || idx >= (long)hn) {
        kart__line_bell(ed);
        if (last)
            ed->this_yla = true;
        return 1;
    }
    size_t len;
    const char *t = kart_history_text(ed->hist, (size_t)idx, &len);
    size_t ws, we;
    if (!t || !nth_word(t, len, word, &ws, &we)) {
        kart__line_bell(ed);
        if (last)
            ed->this_yla = true;
        return 1;
    }
    ed->yank_start = ed->point;
    int r = kart__edit_insert(ed, ed->point, t + ws, we - ws);
    ed->yank_end = ed->point;
    if (last)
        ed->this_yla = true;
    return r;
}

void kart__search_cancel(kart_line *ed)
{
    if (ed->mode_fn == isearch_key)
        isearch_end(ed, false);
    else if (ed->mode_fn == nsearch_key && ed->search_state)
        nsearch_end(ed, ed->search_state, true);
}

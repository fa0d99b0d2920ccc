/*
 * core/line/complete_ui.c — completion as GNU readline does it: the word
 * before the cursor (ended by the completer's delimiters), the
 * candidates from the hook or from the file system, their common prefix
 * inserted, a second Tab listing them in columns (after "Display all N
 * possibilities? (y or n)" past completion-query-items, with a --More--
 * pager when they fill the screen), insert-completions, menu-complete.
 *
 * Ownership: the hook adds candidates with kart_line_add_completion, which
 * copies them; the editor frees them after the command.
 */
#include "line_private.h"

#include <dirent.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void kart__completion_clear(kart__completion *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i]);
    free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
    c->filenames = false;
}

static int comp_add(kart__completion *c, const char *s, size_t n)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        char **v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    char *t = malloc(n + 1);
    if (!t)
        return -ENOMEM;
    memcpy(t, s, n);
    t[n] = '\0';
    c->v[c->n++] = t;
    return 0;
}

KART_API int kart_line_add_completion(kart_line *ed, const char *candidate, size_t len)
{
    if (!ed || !ed->comp.in_hook || (!candidate && len))
        return -EINVAL;
    return comp_add(&ed->comp, candidate ? candidate : "", len);
}

/* ---- filename completion ---- */

KART_API int kart_line_complete_filenames(kart_line *ed, const char *text, size_t len)
{
    if (!ed || !ed->comp.in_hook || (!text && len))
        return -EINVAL;
    if (!text)
        text = "";
    size_t slash = SIZE_MAX;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '/')
            slash = i;
    size_t dlen = slash == SIZE_MAX ? 0 : slash + 1;
    const char *base = text + dlen;
    size_t blen = len - dlen;
    /* the directory to read: the typed one, "~/" under $HOME */
    char *dir = malloc(dlen + 4096 + 2);
    if (!dir)
        return -ENOMEM;
    if (dlen == 0) {
        strcpy(dir, ".");
    } else if (text[0] == '~' && (dlen == 2 || text[1] == '/')) {
        const char *home = getenv("HOME");
        if (!home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : "";
        }
        snprintf(dir, dlen + 4096 + 2, "%s%.*s", home, (int)(dlen - 1), text + 1);
    } else {
        memcpy(dir, text, dlen);
        dir[dlen] = '\0';
    }
    DIR *d = opendir(dir);
    if (!d) {
        free(dir);
        return 0;
    }
    int added = 0;
    struct dirent *e;
    kart__lbuf cand = {0}, path = {0};
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t nl = strlen(nm);
        if (blen == 0) {
            if (!ed->set.match_hidden_files && nm[0] == '.')
                continue;
            if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
                continue;
        }
        if (nl < blen)
            continue;
        if (ed->set.completion_ignore_case ? strncasecmp(nm, base, blen) != 0
                                           : memcmp(nm, base, blen) != 0)
            continue;
        cand.len = 0;
        kart__lbuf_add(&cand, text, dlen);
        kart__lbuf_add(&cand, nm, nl);
        if (ed->set.mark_directories) {
            path.len = 0;
            kart__lbuf_adds(&path, dir);
            if (path.len && path.p[path.len - 1] != '/')
                kart__lbuf_add(&path, "/", 1);
            kart__lbuf_add(&path, nm, nl);
            struct stat st, lst;
            if (path.p && stat(path.p, &st) == 0 && S_ISDIR(st.st_mode)) {
                bool link = lstat(path.p, &lst) == 0 && S_ISLNK(lst.st_mode);
                if (!link || ed->set.mark_symlinked_directories)
                    kart__lbuf_add(&cand, "/", 1);
            }
        }
        if (!cand.p || comp_add(&ed->comp, cand.p, cand.len) < 0)
            break;
        added++;
    }
    closedir(d);
    kart__lbuf_free(&cand);
    kart__lbuf_free(&path);
    free(dir);
    ed->comp.filenames = true;
    return added;
}

/* ---- gathering ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void comp_sort_unique(kart__completion *c)
{
    if (c->n < 2)
        return;
    qsort(c->v, c->n, sizeof(*c->v), cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < c->n; i++) {
        if (strcmp(c->v[i], c->v[w - 1]) == 0)
            free(c->v[i]);
        else
            c->v[w++] = c->v[i];
    }
    c->n = w;
}

/* The word to complete: [*begin, point). */
static size_t word_start(kart_line *ed)
{
    const char *delims = ed->delims ? ed->delims : " \t\n\"\\'`@$><=;|&{(";
    size_t s = ed->point;
    while (s > 0 && !strchr(delims, ed->line.p[s - 1]))
        s--;
    return s;
}

static int gather(kart_line *ed)
{
    kart__completion_clear(&ed->comp);
    if (ed->set.disable_completion)
        return 0;
    size_t b = word_start(ed);
    ed->comp_begin = b;
    ed->comp_end = ed->point;
    ed->cw_begin = b;
    ed->cw_end = ed->point;
    size_t n = ed->point - b;
    char *text = malloc(n + 1);
    if (!text)
        return -ENOMEM;
    memcpy(text, ed->line.p + b, n);
    text[n] = '\0';
    ed->comp.in_hook = true;
    ed->depth++;
    if (ed->hooks.complete)
        ed->hooks.complete(ed, text, b, ed->point, ed->hooks.arg);
    else
        kart_line_complete_filenames(ed, text, n);
    ed->depth--;
    ed->comp.in_hook = false;
    free(text);
    /* the hook may have edited the line: keep the word's bounds inside */
    if (ed->cw_end > ed->line.len)
        ed->cw_end = ed->line.len;
    if (ed->cw_begin > ed->cw_end)
        ed->cw_begin = ed->cw_end;
    comp_sort_unique(&ed->comp);
    return 0;
}

static size_t common_prefix(kart__completion *c, bool icase)
{
    if (c->n == 0)
        return 0;
    size_t l = strlen(c->v[0]);
    for (size_t i = 1; i < c->n; i++) {
        size_t k = 0;
        const char *a = c->v[0], *b = c->v[i];
        while (k < l && b[k]) {
            unsigned char x = (unsigned char)a[k], y = (unsigned char)b[k];
            if (icase) {
                if (x >= 'A' && x <= 'Z')
                    x += 32;
                if (y >= 'A' && y <= 'Z')
                    y += 32;
            }
            if (x != y)
                break;
            k++;
        }
        l = k;
    }
    /* not in the middle of a UTF-8 character */
    while (l > 0 && l < strlen(c->v[0]) && ((unsigned char)c->v[0][l] & 0xc0) == 0x80)
        l--;
    return l;
}

/* Replaces the word with s; returns whether the line changed. */
static bool replace_word(kart_line *ed, const char *s, size_t n)
{
    size_t b = ed->cw_begin, e = ed->cw_end;
    if (e - b == n && memcmp(ed->line.p + b, s, n) == 0) {
        ed->point = e;
        return false;
    }
    kart__edit_delete(ed, b, e);
    ed->point = b;
    kart__edit_insert(ed, b, s, n);
    ed->cw_end = b + n;
    return true;
}

/* ---- listing ---- */

typedef struct listing {
    char **v;
    size_t n;
    size_t width; /* column width */
    size_t ncols, nrows;
    size_t next; /* next row to print */
    size_t page; /* rows printed since the last --More-- */
    bool filenames;
} listing;

static const char *display_name(const char *s, bool filenames)
{
    if (!filenames)
        return s;
    size_t l = strlen(s);
    size_t end = l;
    if (end > 0 && s[end - 1] == '/')
        end--;
    size_t k = end;
    while (k > 0 && s[k - 1] != '/')
        k--;
    return s + k;
}

static void listing_free(kart_line *ed)
{
    listing *L = ed->list_state;
    if (!L)
        return;
    for (size_t i = 0; i < L->n; i++)
        free(L->v[i]);
    free(L->v);
    free(L);
    ed->list_state = NULL;
}

/* Prints rows until the list or the page ends; true when done. */
static bool listing_rows(kart_line *ed, listing *L)
{
    unsigned rows = ed->rows ? ed->rows : 24;
    size_t page_len = rows > 1 ? rows - 1 : 1;
    while (L->next < L->nrows) {
        if (ed->set.page_completions && L->page >= page_len && L->nrows > page_len) {
            kart__outs(ed, "--More--");
            return false;
        }
        size_t r = L->next++;
        for (size_t c = 0; c < L->ncols; c++) {
            size_t i = ed->set.print_completions_horizontally ? r * L->ncols + c : c * L->nrows + r;
            if (i >= L->n)
                break;
            const char *nm = display_name(L->v[i], L->filenames);
            size_t w = kart__str_width(nm, strlen(nm));
            kart__outs(ed, nm);
            bool last =
                c + 1 >= L->ncols ||
                (ed->set.print_completions_horizontally ? i + 1 >= L->n : i + L->nrows >= L->n);
            if (!last)
                for (size_t k = w; k < L->width; k++)
                    kart__out(ed, " ", 1);
        }
        kart__out(ed, "\r\n", 2);
        L->page++;
    }
    return true;
}

static void listing_done(kart_line *ed)
{
    listing_free(ed);
    ed->mode_fn = NULL;
    kart__display_reset(ed);
}

static bool more_key(kart_line *ed, const kart__key *k)
{
    listing *L = ed->list_state;
    unsigned char c = k->len ? (unsigned char)k->bytes[0] : 0;
    if (!L) {
        ed->mode_fn = NULL;
        return true;
    }
    if (c == ' ' || c == 'y' || c == 'Y') {
        kart__outs(ed, "\r\033[K");
        L->page = 0;
    } else if (c == '\r' || c == '\n') {
        kart__outs(ed, "\r\033[K");
        L->page = L->page > 0 ? L->page - 1 : 0;
    } else if (c == 'q' || c == 'Q' || c == 'n' || c == 'N' || c == 7 || c == 0x7f) {
        kart__outs(ed, "\r\033[K");
        listing_done(ed);
        return true;
    } else {
        kart__line_bell(ed);
        return true;
    }
    if (listing_rows(ed, L))
        listing_done(ed);
    return true;
}

static void listing_start(kart_line *ed, listing *L)
{
    ed->list_state = L;
    if (listing_rows(ed, L))
        listing_done(ed);
    else
        ed->mode_fn = more_key;
}

static bool query_key(kart_line *ed, const kart__key *k)
{
    listing *L = ed->list_state;
    unsigned char c = k->len ? (unsigned char)k->bytes[0] : 0;
    if (c == 'y' || c == 'Y' || c == ' ') {
        kart__out(ed, "\r\n", 2);
        ed->mode_fn = NULL;
        listing_start(ed, L);
        return true;
    }
    if (c == 'n' || c == 'N' || c == 0x7f || c == 7) {
        kart__out(ed, "\r\n", 2);
        listing_done(ed);
        return true;
    }
    kart__line_bell(ed);
    return true;
}

/* Lists the candidates below the line (the line is drawn again after). */
static void display_matches(kart_line *ed)
{
    kart__completion *c = &ed->comp;
    if (c->n == 0)
        return;
    kart__display_refresh(ed);
    size_t lcp = common_prefix(c, ed->set.completion_ignore_case);
    size_t longest = 0;
    for (size_t i = 0; i < c->n; i++) {
        const char *nm = display_name(c->v[i], c->filenames);
        size_t w = kart__str_width(nm, strlen(nm));
        if (w > longest)
            longest = w;
    }
    if (ed->hooks.display_matches) {
        kart__display_finish(ed, true);
        kart__out_flush(ed, false);
        char *sub = malloc(lcp + 1);
        if (!sub)
            return;
        memcpy(sub, c->v[0], lcp);
        sub[lcp] = '\0';
        ed->depth++;
        ed->hooks.display_matches(ed, sub, (const char *const *)c->v, c->n, longest, ed->hooks.arg);
        ed->depth--;
        free(sub);
        kart__display_reset(ed);
        return;
    }
    if (!ed->terminal)
        return;
    listing *L = calloc(1, sizeof(*L));
    if (!L)
        return;
    /* the listing takes the candidates */
    L->v = c->v;
    L->n = c->n;
    L->filenames = c->filenames;
    c->v = NULL;
    c->n = c->cap = 0;
    unsigned cols = ed->cols ? ed->cols : 80;
    L->width = longest + 2;
    size_t dw =
        ed->set.completion_display_width >= 0 ? (size_t)ed->set.completion_display_width : cols;
    if (dw > cols)
        dw = cols;
    L->ncols = dw / L->width;
    if (L->ncols == 0)
        L->ncols = 1;
    L->nrows = (L->n + L->ncols - 1) / L->ncols;
    kart__display_finish(ed, true);
    listing_free(ed);
    ed->list_state = L;
    if (ed->set.completion_query_items > 0 && L->n >= (size_t)ed->set.completion_query_items) {
        kart__lbuf_addf(&ed->out, "Display all %zu possibilities? (y or n)", L->n);
        ed->mode_fn = query_key;
        return;
    }
    listing_start(ed, L);
}

/* ---- the commands ---- */

static void insert_all(kart_line *ed)
{
    kart__lbuf b = {0};
    for (size_t i = 0; i < ed->comp.n; i++) {
        kart__lbuf_adds(&b, ed->comp.v[i]);
        kart__lbuf_add(&b, " ", 1);
    }
    if (b.p)
        replace_word(ed, b.p, b.len);
    kart__lbuf_free(&b);
}

static void append_after_unique(kart_line *ed, const char *m)
{
    size_t l = strlen(m);
    if (ed->comp.filenames && l > 0 && m[l - 1] == '/')
        return;
    int ch = ed->comp_append;
    if (ch <= 0)
        return;
    char c = (char)ch;
    if (ed->point < ed->line.len && ed->line.p[ed->point] == c)
        ed->point++;
    else
        kart__edit_insert(ed, ed->point, &c, 1);
}

static int menu(kart_line *ed, int dir)
{
    bool again = ed->menu_active && (ed->last_fn == KART__FN_MENU_COMPLETE ||
                                     ed->last_fn == KART__FN_MENU_COMPLETE_BACKWARD ||
                                     ed->last_fn == KART__FN_OLD_MENU_COMPLETE);
    if (!again) {
        if (gather(ed) < 0)
            return -ENOMEM;
        if (ed->comp.n == 0) {
            ed->menu_active = false;
            kart__line_bell(ed);
            return 1;
        }
        /* the text typed is the last entry of the cycle */
        size_t n = ed->cw_end - ed->cw_begin;
        comp_add(&ed->comp, ed->line.p + ed->cw_begin, n);
        ed->menu_active = true;
        ed->menu_index = dir > 0 ? 0 : ed->comp.n - 2;
    } else {
        size_t total = ed->comp.n;
        ed->menu_index = (ed->menu_index + total + (size_t)(dir > 0 ? 1 : total - 1)) % total;
        if (ed->menu_index == total - 1)
            kart__line_bell(ed);
    }
    const char *m = ed->comp.v[ed->menu_index];
    replace_word(ed, m, strlen(m));
    return 0;
}

int kart__cmd_complete(kart_line *ed, int count, const kart__key *key)
{
    enum kart__line_fn fn = ed->this_fn;
    if (fn == KART__FN_DELETE_CHAR_OR_LIST) {
        if (ed->point < ed->line.len) {
            kart__line_run(ed, KART__FN_DELETE_CHAR, count, key);
            return 0;
        }
        fn = KART__FN_POSSIBLE_COMPLETIONS;
    }
    if (fn == KART__FN_MENU_COMPLETE || fn == KART__FN_OLD_MENU_COMPLETE)
        return menu(ed, count < 0 ? -1 : 1);
    if (fn == KART__FN_MENU_COMPLETE_BACKWARD)
        return menu(ed, count < 0 ? 1 : -1);
    ed->menu_active = false;
    /* a second Tab, the first having changed nothing, lists (GNU) */
    bool second = fn == KART__FN_COMPLETE && ed->last_fn == KART__FN_COMPLETE && !ed->comp_changed;
    ed->comp_changed = false;
    if (gather(ed) < 0)
        return -ENOMEM;
    kart__completion *c = &ed->comp;
    if (c->n == 0) {
        kart__line_bell(ed);
        return 1;
    }
    if (fn == KART__FN_POSSIBLE_COMPLETIONS) {
        display_matches(ed);
        kart__completion_clear(c);
        return 0;
    }
    if (fn == KART__FN_INSERT_COMPLETIONS) {
        insert_all(ed);
        kart__completion_clear(c);
        return 0;
    }
    if (c->n == 1) {
        ed->comp_changed = true;
        replace_word(ed, c->v[0], strlen(c->v[0]));
        append_after_unique(ed, c->v[0]);
        kart__completion_clear(c);
        return 0;
    }
    size_t lcp = common_prefix(c, ed->set.completion_ignore_case);
    size_t typed = ed->cw_end - ed->cw_begin;
    bool changed = false;
    if (lcp > typed || (lcp == typed && memcmp(c->v[0], ed->line.p + ed->cw_begin, lcp) != 0))
        changed = replace_word(ed, c->v[0], lcp);
    ed->comp_changed = changed;
    if (second || ed->set.show_all_if_ambiguous || (!changed && ed->set.show_all_if_unmodified)) {
        if (!changed || ed->set.show_all_if_ambiguous)
            display_matches(ed);
    } else if (!changed) {
        kart__line_bell(ed);
    }
    kart__completion_clear(c);
    return 0;
}

void kart__complete_free(kart_line *ed)
{
    kart__completion_clear(&ed->comp);
    listing_free(ed);
    free(ed->delims);
    ed->delims = NULL;
}

void kart__complete_cancel(kart_line *ed)
{
    if (ed->mode_fn == more_key || ed->mode_fn == query_key) {
        ed->mode_fn = NULL;
        kart__outs(ed, "\r\033[K");
        kart__display_reset(ed);
    }
    listing_free(ed);
    ed->menu_active = false;
}

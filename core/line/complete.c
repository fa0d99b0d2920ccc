/*
 * core/line/complete.c — the completer of kart/complete.h: rlcompleter's
 * rules over a tree of registered names.
 *
 * The one idea: every name keeps its attributes in an array sorted by
 * bytes, so that the candidates for "a.b.pre" are found by two binary
 * searches down the tree ("a", then "b") and a third for the first
 * attribute of "b" not below "pre"; the matches are the run that follows.
 * A completion costs O(depth · log n + matches) however many names are
 * registered.
 *
 * Keywords live in a sorted array of their own (nodes too, with their
 * suffix), merged with the top-level names as they are gathered. A provider's attributes are gathered at
 * completion time into an arena and sorted in: of a name, the first is
 * kept (keyword, then registered name, then provider). Then
 * rlcompleter's '_' rule, and the candidates are written into one block,
 * in the order of whole strings (a suffix can reorder them: "a!" < "a(";
 * a sort runs only when a pass finds them out of order).
 *
 * Memory goes through kart__sys_malloc/realloc, which the test build's
 * fault table can fail on demand: every -ENOMEM path is walked by the
 * suite.
 */
#include <kart/complete.h>

#include "fault.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct node node;

/* A sorted array of names (one level of the tree). */
typedef struct kids {
    node **v;
    size_t n, cap;
} kids;

/* A name's component, or a keyword (in a tree of its own, one level
 * deep). */
struct node {
    node *parent; /* NULL at the top level */
    kids kids;
    kart_complete_provider fn; /* NULL: none */
    void *arg;
    const char *suffix; /* what its candidate ends with: from the kind, or
                         * a keyword's own, after name in the same block */
    size_t suffix_len;
    bool registered; /* false: implicit, there only for its attributes */
    size_t len;
    char name[]; /* this component, NUL-terminated */
};

struct kart_completer {
    kids top;
    kids keywords;
    uint64_t generation; /* bumped by every change of names or keywords */
    bool busy;           /* a provider is running */
    /* What kart_completer_next() keeps between calls. */
    kart_completions *kept;
    char *kept_text;
    size_t kept_len;
    uint64_t kept_gen;
};

/* ---- names ---- */

/* Printable ASCII but space and '.', or any byte of a UTF-8 sequence. */
static bool name_byte(unsigned char b)
{
    return (b > 0x20 && b < 0x7f && b != '.') || b >= 0x80;
}

static bool bytes_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!name_byte((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_component(const char *s, size_t len)
{
    return len > 0 && bytes_ok(s, len);
}

/* Components joined by single dots, none empty. */
static bool is_name(const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (i == start)
                return false;
            start = i + 1;
        } else if (!name_byte((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* Byte order, a prefix first. */
static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r)
        return r;
    return alen < blen ? -1 : alen > blen;
}

static bool starts_with(const char *s, size_t len, const char *prefix, size_t plen)
{
    return len >= plen && memcmp(s, prefix, plen) == 0;
}

/* The last dot of s, or NULL (memrchr is a GNU extension). */
static const char *last_dot(const char *s, size_t len)
{
    while (len > 0)
        if (s[--len] == '.')
            return s + len;
    return NULL;
}

/* The length of the component that starts at s (up to a dot or end). */
static size_t component_len(const char *s, const char *end)
{
    const char *dot = memchr(s, '.', (size_t)(end - s));
    return (size_t)((dot ? dot : end) - s);
}

/* ---- the tree ---- */

/* The index of the first name in k not below s. */
static size_t lower_bound(const kids *k, const char *s, size_t len)
{
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_bytes(k->v[mid]->name, k->v[mid]->len, s, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static node *find(const kids *k, const char *s, size_t len)
{
    size_t i = lower_bound(k, s, len);
    if (i < k->n && cmp_bytes(k->v[i]->name, k->v[i]->len, s, len) == 0)
        return k->v[i];
    return NULL;
}

/* The node a whole name stands for, or NULL. */
static node *lookup(const kart_completer *c, const char *name, size_t len)
{
    const kids *at = &c->top;
    const char *p = name, *end = name + len;
    for (;;) {
        size_t clen = component_len(p, end);
        node *n = find(at, p, clen);
        if (!n || p + clen == end)
            return n;
        at = &n->kids;
        p += clen + 1;
    }
}

static kids *owner_of(kart_completer *c, node *n)
{
    return n->parent ? &n->parent->kids : &c->top;
}

/* Room for one more in k (a grown array stays grown: no change anyone
 * sees). -ENOMEM. */
static int reserve(kids *k)
{
    if (k->n < k->cap)
        return 0;
    size_t cap = k->cap ? k->cap * 2 : 4;
    node **v = kart__sys_realloc(k->v, cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    k->v = v;
    k->cap = cap;
    return 0;
}

/* Puts n at index i of k, which has room (reserve). */
static void insert_at(kids *k, size_t i, node *n)
{
    memmove(&k->v[i + 1], &k->v[i], (k->n - i) * sizeof(k->v[0]));
    k->v[i] = n;
    k->n++;
}

static void detach(kids *k, node *n)
{
    size_t i = lower_bound(k, n->name, n->len);
    memmove(&k->v[i], &k->v[i + 1], (k->n - i - 1) * sizeof(k->v[0]));
    k->n--;
}

/* Frees n and everything below it. Iterative: a name may be deep. */
static void free_subtree(node *n)
{
    node *cur = n;
    while (cur) {
        if (cur->kids.n > 0) {
            cur = cur->kids.v[--cur->kids.n];
            continue;
        }
        node *up = cur == n ? NULL : cur->parent;
        free(cur->kids.v);
        free(cur);
        cur = up;
    }
}

static void free_kids(kids *k)
{
    for (size_t i = 0; i < k->n; i++)
        free_subtree(k->v[i]);
    free(k->v);
}

static const char *const kind_suffix[] = {"", "(", "()", ""};

static void set_kind(node *n, kart_complete_kind kind)
{
    n->suffix = kind_suffix[kind];
    n->suffix_len = strlen(n->suffix);
}

/* An implicit namespace; extra bytes after its name for a keyword's
 * suffix. */
static node *new_node(node *parent, const char *name, size_t len, size_t extra)
{
    node *n = kart__sys_malloc(sizeof(*n) + len + 1 + extra);
    if (!n)
        return NULL;
    *n = (node){.parent = parent, .suffix = "", .len = len};
    memcpy(n->name, name, len);
    n->name[len] = '\0';
    return n;
}

/* Builds the chain of nodes for the components in [p, end) and puts its
 * head into at (at index i) under parent; the last node is the
 * registered one. All or nothing: -ENOMEM leaves the tree as it was. */
static int attach_chain(kids *at, size_t i, node *parent, const char *p, const char *end,
                        kart_complete_kind kind, kart_complete_provider fn, void *arg)
{
    if (reserve(at) < 0)
        return -ENOMEM;
    node *head = NULL, *last = NULL;
    while (p < end) {
        size_t clen = component_len(p, end);
        if (last) {
            last->kids.v = kart__sys_malloc(sizeof(node *));
            if (!last->kids.v)
                goto nomem;
            last->kids.cap = 1;
        }
        node *n = new_node(last ? last : parent, p, clen, 0);
        if (!n)
            goto nomem;
        if (last) {
            last->kids.v[0] = n;
            last->kids.n = 1;
        } else {
            head = n;
        }
        last = n;
        p += clen + 1;
    }
    set_kind(last, kind);
    last->registered = true;
    last->fn = fn;
    last->arg = arg;
    insert_at(at, i, head);
    return 0;
nomem:
    free_subtree(head);
    return -ENOMEM;
}

static int add_name(kart_completer *c, const char *name, kart_complete_kind kind,
                    kart_complete_provider fn, void *arg)
{
    if (!c || !name || (unsigned)kind > KART_COMPLETE_NAMESPACE)
        return -EINVAL;
    size_t len = strlen(name);
    if (!is_name(name, len))
        return -EINVAL;
    if (c->busy)
        return -EBUSY;
    kids *at = &c->top;
    node *parent = NULL;
    const char *p = name, *end = name + len;
    for (;;) {
        size_t clen = component_len(p, end);
        size_t i = lower_bound(at, p, clen);
        if (i == at->n || cmp_bytes(at->v[i]->name, at->v[i]->len, p, clen) != 0) {
            int err = attach_chain(at, i, parent, p, end, kind, fn, arg);
            if (err == 0)
                c->generation++;
            return err;
        }
        parent = at->v[i];
        if (p + clen == end)
            break;
        at = &parent->kids;
        p += clen + 1;
    }
    /* The whole name is there: implicit, it becomes registered. */
    if (parent->registered)
        return -EEXIST;
    parent->registered = true;
    set_kind(parent, kind);
    parent->fn = fn;
    parent->arg = arg;
    c->generation++;
    return 0;
}

/* ---- gathering candidates ---- */

typedef struct cand {
    const char *name; /* NULL while it lives in the arena, at off */
    size_t off, len;
    const char *suffix;
    size_t suffix_len;
    unsigned rank; /* which wins a name: 0 keyword, 1 registered, 2 provider */
} cand;

typedef struct cands {
    cand *v;
    size_t n, cap;
    char *arena; /* the providers' names */
    size_t alen, acap;
} cands;

struct kart_complete_sink {
    cands *out;
    const char *prefix;
    size_t prefix_len;
    int err; /* -ENOMEM once an add failed for memory */
};

static int push(cands *cs, cand cd)
{
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? cs->cap * 2 : 16;
        cand *v = kart__sys_realloc(cs->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        cs->v = v;
        cs->cap = cap;
    }
    cs->v[cs->n++] = cd;
    return 0;
}

static cand node_cand(const node *n, unsigned rank)
{
    return (cand){.name = n->name,
                  .len = n->len,
                  .suffix = n->suffix,
                  .suffix_len = n->suffix_len,
                  .rank = rank};
}

/* The registered names of k that start with prefix: a run from its lower
 * bound. */
static int gather_kids(cands *cs, const kids *k, const char *prefix, size_t plen)
{
    for (size_t i = lower_bound(k, prefix, plen); i < k->n; i++) {
        const node *n = k->v[i];
        if (!starts_with(n->name, n->len, prefix, plen))
            break;
        if (push(cs, node_cand(n, 1)) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* The top level: the names and the keywords that start with prefix, two
 * sorted runs merged into one, a keyword before a name spelled the same. */
static int gather_top(cands *cs, const kart_completer *c, const char *prefix, size_t plen)
{
    const kids *names = &c->top, *words = &c->keywords;
    size_t i = lower_bound(names, prefix, plen), j = lower_bound(words, prefix, plen);
    for (;;) {
        const node *n = i < names->n ? names->v[i] : NULL;
        const node *w = j < words->n ? words->v[j] : NULL;
        if (n && !starts_with(n->name, n->len, prefix, plen))
            n = NULL;
        if (w && !starts_with(w->name, w->len, prefix, plen))
            w = NULL;
        cand cd;
        if (w && (!n || cmp_bytes(w->name, w->len, n->name, n->len) <= 0)) {
            cd = node_cand(w, 0);
            j++;
        } else if (n) {
            cd = node_cand(n, 1);
            i++;
        } else {
            return 0;
        }
        if (push(cs, cd) < 0)
            return -ENOMEM;
    }
}

/* Asks the provider p for the attributes of path (the text before its
 * last dot, elen bytes) that start with prefix. Its candidates are
 * dropped if it fails; returns -ENOMEM, or 0 with *result its value. */
static int gather_provider(kart_completer *c, cands *cs, const node *p, const char *text,
                           size_t elen, const char *prefix, size_t plen, int *result)
{
    /* path and prefix NUL-terminated, in one copy of the text. */
    char *buf = kart__sys_malloc(elen + plen + 2);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, text, elen);
    buf[elen] = '\0';
    memcpy(buf + elen + 1, prefix, plen);
    buf[elen + 1 + plen] = '\0';
    kart_complete_sink sink = {.out = cs, .prefix = prefix, .prefix_len = plen};
    size_t mark_n = cs->n, mark_a = cs->alen;
    c->busy = true;
    int r = p->fn(p->arg, buf, buf + elen + 1, &sink);
    c->busy = false;
    free(buf);
    if (sink.err)
        return sink.err;
    if (r != 0) {
        cs->n = mark_n;
        cs->alen = mark_a;
    }
    *result = r;
    return 0;
}

int kart_complete_sink_add(kart_complete_sink *sink, const char *name, kart_complete_kind kind)
{
    if (!sink || !name || (unsigned)kind > KART_COMPLETE_NAMESPACE)
        return -EINVAL;
    size_t len = strlen(name);
    if (!is_component(name, len))
        return -EINVAL;
    if (!starts_with(name, len, sink->prefix, sink->prefix_len))
        return 0;
    cands *cs = sink->out;
    if (cs->acap - cs->alen < len) {
        size_t cap = cs->acap ? cs->acap : 256;
        while (cap - cs->alen < len)
            cap *= 2;
        char *a = kart__sys_realloc(cs->arena, cap);
        if (!a)
            return sink->err = -ENOMEM;
        cs->arena = a;
        cs->acap = cap;
    }
    const char *sfx = kind_suffix[kind];
    cand cd = {.off = cs->alen, .len = len, .suffix = sfx, .suffix_len = strlen(sfx), .rank = 2};
    if (push(cs, cd) < 0)
        return sink->err = -ENOMEM;
    memcpy(cs->arena + cs->alen, name, len);
    cs->alen += len;
    return 0;
}

/* ---- from candidates to completions ---- */

static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    int r = cmp_bytes(a->name, a->len, b->name, b->len);
    if (r)
        return r;
    return a->rank < b->rank ? -1 : a->rank > b->rank;
}

/* Drops, in place, every candidate that repeats the name before it (the
 * first is the one that wins). Returns the new count, and *sorted false
 * if v turned out not to be in cand_cmp order (it is then compacted only
 * up to there). */
static size_t uniq_cands(cand *v, size_t n, bool *sorted)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        int r = u ? cand_cmp(&v[u - 1], &v[i]) : -1;
        if (r > 0) {
            memmove(&v[u], &v[i], (n - i) * sizeof(*v));
            *sorted = false;
            return u + n - i;
        }
        if (u == 0 || cmp_bytes(v[u - 1].name, v[u - 1].len, v[i].name, v[i].len) != 0)
            v[u++] = v[i];
    }
    *sorted = true;
    return u;
}

static int str_cmp(const void *pa, const void *pb)
{
    return strcmp(*(char *const *)pa, *(char *const *)pb);
}

/* uniq_cands for the candidate strings. */
static size_t uniq_strings(char **v, size_t n, bool *sorted)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        int r = u ? strcmp(v[u - 1], v[i]) : -1;
        if (r > 0) {
            memmove(&v[u], &v[i], (n - i) * sizeof(*v));
            *sorted = false;
            return u + n - i;
        }
        if (r < 0)
            v[u++] = v[i];
    }
    *sorted = true;
    return u;
}

/* rlcompleter's attr_matches: with an empty last component, names that
 * start with '_' are hidden; with "_", names that start with "__"; in
 * either case none are when that would hide everything. (Its second
 * round for an empty component, noprefix "__", compares word[:1] with
 * "__" and so hides nothing.) */
static bool hidden(const cand *cd, const char *attr, size_t alen)
{
    if (alen == 0)
        return cd->name[0] == '_';
    if (alen == 1 && attr[0] == '_')
        return cd->len >= 2 && cd->name[1] == '_';
    return false;
}

/* Sorts, merges and filters cs, and writes the candidates — the text's
 * first elen bytes and a dot (when it had one), the name, the suffix —
 * into one block. Registered names and keywords come in order, and in
 * name order the candidates nearly always are in string order too: each
 * sort runs only when a pass finds them out of order. */
static int finish(cands *cs, const char *text, size_t elen, bool dotted, const char *attr,
                  size_t alen, kart_completions **out)
{
    for (size_t i = 0; i < cs->n; i++)
        if (!cs->v[i].name)
            cs->v[i].name = cs->arena + cs->v[i].off;
    bool sorted;
    size_t n = uniq_cands(cs->v, cs->n, &sorted);
    if (!sorted) {
        qsort(cs->v, n, sizeof(cs->v[0]), cand_cmp);
        n = uniq_cands(cs->v, n, &sorted);
    }
    size_t head = elen + dotted, visible = 0, all_bytes = 0, visible_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t b = head + cs->v[i].len + cs->v[i].suffix_len + 1;
        all_bytes += b;
        if (!hidden(&cs->v[i], attr, alen)) {
            visible++;
            visible_bytes += b;
        }
    }
    bool filter = visible > 0;
    size_t k = filter ? visible : n;
    size_t bytes = sizeof(kart_completions) + (k + 1) * sizeof(char *);
    bytes += filter ? visible_bytes : all_bytes;
    kart_completions *m = kart__sys_malloc(bytes);
    if (!m)
        return -ENOMEM;
    m->items = (char **)(m + 1);
    m->provider_result = 0;
    char *s = (char *)(m->items + k + 1);
    k = 0;
    for (size_t i = 0; i < n; i++) {
        const cand *cd = &cs->v[i];
        if (filter && hidden(cd, attr, alen))
            continue;
        m->items[k++] = s;
        memcpy(s, text, elen);
        s += elen;
        if (dotted)
            *s++ = '.';
        memcpy(s, cd->name, cd->len);
        s += cd->len;
        memcpy(s, cd->suffix, cd->suffix_len);
        s += cd->suffix_len;
        *s++ = '\0';
    }
    k = uniq_strings(m->items, k, &sorted);
    if (!sorted) {
        qsort(m->items, k, sizeof(char *), str_cmp);
        k = uniq_strings(m->items, k, &sorted);
    }
    m->items[k] = NULL;
    m->count = k;
    *out = m;
    return 0;
}

static int complete(kart_completer *c, const char *text, size_t len, kart_completions **out)
{
    cands cs = {0};
    int err = 0, result = 0;
    const char *dot = last_dot(text, len);
    size_t elen = dot ? (size_t)(dot - text) : 0;
    const char *attr = dot ? dot + 1 : text;
    size_t alen = len - (dot ? elen + 1 : 0);
    if (!bytes_ok(attr, alen)) {
        /* No name holds such a byte: no candidates. */
    } else if (!dot) {
        err = gather_top(&cs, c, attr, alen);
    } else if (is_name(text, elen)) {
        /* Down the registered names as far as they go, noting the
         * nearest provider on the way. */
        const kids *at = &c->top;
        const node *n = NULL, *prov = NULL;
        const char *p = text, *end = text + elen;
        while (p < end) {
            size_t clen = component_len(p, end);
            n = at ? find(at, p, clen) : NULL;
            at = n ? &n->kids : NULL;
            if (n && n->fn)
                prov = n;
            p += clen + 1;
        }
        if (at)
            err = gather_kids(&cs, at, attr, alen);
        if (!err && prov)
            err = gather_provider(c, &cs, prov, text, elen, attr, alen, &result);
    }
    if (!err)
        err = finish(&cs, text, elen, dot != NULL, attr, alen, out);
    free(cs.v);
    free(cs.arena);
    if (err)
        return err;
    (*out)->provider_result = result;
    return (int)(*out)->count;
}

/* ---- the API ---- */

int kart_completer_create(kart_completer **out)
{
    if (!out)
        return -EINVAL;
    kart_completer *c = kart__sys_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    *out = c;
    return 0;
}

void kart_completer_free(kart_completer *c)
{
    if (!c)
        return;
    free_kids(&c->top);
    free_kids(&c->keywords);
    free(c->kept);
    free(c->kept_text);
    free(c);
}

int kart_completer_add(kart_completer *c, const char *name, kart_complete_kind kind)
{
    return add_name(c, name, kind, NULL, NULL);
}

int kart_completer_add_provider(kart_completer *c, const char *name, kart_complete_kind kind,
                                kart_complete_provider fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    return add_name(c, name, kind, fn, arg);
}

int kart_completer_remove(kart_completer *c, const char *name)
{
    if (!c || !name)
        return -EINVAL;
    size_t len = strlen(name);
    if (!is_name(name, len))
        return -EINVAL;
    if (c->busy)
        return -EBUSY;
    node *n = lookup(c, name, len);
    if (!n)
        return -ENOENT;
    node *up = n->parent;
    detach(owner_of(c, n), n);
    free_subtree(n);
    /* Implicit names that were there only for it. */
    while (up && !up->registered && up->kids.n == 0) {
        node *next = up->parent;
        detach(owner_of(c, up), up);
        free_subtree(up);
        up = next;
    }
    c->generation++;
    return 0;
}

int kart_completer_add_keyword(kart_completer *c, const char *word, const char *suffix)
{
    if (!c || !word)
        return -EINVAL;
    size_t len = strlen(word);
    size_t slen = suffix ? strnlen(suffix, KART_COMPLETE_SUFFIX_MAX + 1) : 0;
    if (!is_component(word, len) || slen > KART_COMPLETE_SUFFIX_MAX)
        return -EINVAL;
    for (size_t i = 0; i < slen; i++)
        if ((unsigned char)suffix[i] < 0x20 || suffix[i] == 0x7f)
            return -EINVAL;
    if (c->busy)
        return -EBUSY;
    kids *k = &c->keywords;
    if (find(k, word, len))
        return -EEXIST;
    if (reserve(k) < 0)
        return -ENOMEM;
    node *w = new_node(NULL, word, len, slen + 1);
    if (!w)
        return -ENOMEM;
    char *sfx = w->name + len + 1;
    if (slen)
        memcpy(sfx, suffix, slen);
    sfx[slen] = '\0';
    w->suffix = sfx;
    w->suffix_len = slen;
    w->registered = true;
    insert_at(k, lower_bound(k, word, len), w);
    c->generation++;
    return 0;
}

int kart_completer_remove_keyword(kart_completer *c, const char *word)
{
    if (!c || !word)
        return -EINVAL;
    if (c->busy)
        return -EBUSY;
    node *w = find(&c->keywords, word, strlen(word));
    if (!w)
        return -ENOENT;
    detach(&c->keywords, w);
    free(w);
    c->generation++;
    return 0;
}

int kart_completer_complete(kart_completer *c, const char *text, size_t len, kart_completions **out)
{
    if (!c || !out || (!text && len))
        return -EINVAL;
    if (c->busy)
        return -EBUSY;
    return complete(c, text ? text : "", len, out);
}

void kart_completions_free(kart_completions *m)
{
    free(m);
}

int kart_completer_next(kart_completer *c, const char *text, size_t len, size_t state, char **match)
{
    if (!c || !match || (!text && len))
        return -EINVAL;
    if (c->busy)
        return -EBUSY;
    if (!text)
        text = "";
    if (state == 0 || !c->kept || c->kept_gen != c->generation || c->kept_len != len ||
        memcmp(c->kept_text, text, len) != 0) {
        char *copy = kart__sys_malloc(len + 1);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, text, len);
        copy[len] = '\0';
        kart_completions *m;
        int err = complete(c, text, len, &m);
        if (err < 0) {
            free(copy);
            return err;
        }
        free(c->kept);
        free(c->kept_text);
        c->kept = m;
        c->kept_text = copy;
        c->kept_len = len;
        c->kept_gen = c->generation;
    }
    if (state >= c->kept->count) {
        *match = NULL;
        return 0;
    }
    size_t n = strlen(c->kept->items[state]) + 1;
    char *s = kart__sys_malloc(n);
    if (!s)
        return -ENOMEM;
    memcpy(s, c->kept->items[state], n);
    *match = s;
    return 1;
}

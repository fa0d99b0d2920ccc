/*
 * core/line/keymap.c — a keymap: a trie of byte sequences, each node with
 * its binding and its children sorted by byte.
 *
 * GNU readline nests 257-entry arrays (a keymap per prefix byte, with a
 * "shadow" entry for a prefix that is also bound). A trie with sorted
 * children holds the same thing in a few kilobytes per map, in a few dozen
 * allocations, and a sequence that is both bound and a prefix is just a
 * node with a binding and children. Nodes that lose their last binding
 * below them are pruned, so "has children" is exactly KART__SEQ_PREFIX.
 *
 * The default maps are built once per process and shared, read-only, by
 * every map made from them (kart__keymap_create_default): an editor
 * copies a default trie only when its first binding changes (an inputrc,
 * parse-and-bind). Three private copies were 48 KB of an idle editor's
 * 49 KB, and a server holds one editor per console session.
 */
#include "line_keymap.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A node holds its children by value, sorted by byte: one allocation per
 * node that has children (the root's 256 single bytes are one array), not
 * one per node. Nothing outside the trie points at a node, so children
 * may move when a sibling comes or goes. */
typedef struct kart__keynode {
    kart__binding b; /* b.macro is this node's own copy */
    struct kart__keynode *kids;
    unsigned short nkids, cap;
    unsigned char byte;
} kart__keynode;

struct kart__keymap {
    kart__keynode root; /* never bound: sequences are 1 byte or longer */
    /* A read-only map this one reads until its first change (then copied
     * into root); NULL once it has its own trie. */
    const struct kart__keymap *shared;
};

/* The trie a map reads. */
static const kart__keynode *trie(const kart__keymap *map)
{
    return map->shared ? &map->shared->root : &map->root;
}

static void node_clear(kart__keynode *n)
{
    for (unsigned i = 0; i < n->nkids; i++)
        node_clear(&n->kids[i]);
    free(n->kids);
    free((char *)n->b.macro);
    unsigned char byte = n->byte;
    memset(n, 0, sizeof(*n));
    n->byte = byte;
}

int kart__keymap_create(kart__keymap **out)
{
    kart__keymap *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    *out = m;
    return 0;
}

void kart__keymap_free(kart__keymap *map)
{
    if (!map)
        return;
    node_clear(&map->root);
    free(map);
}

/* The index of byte among n's children, or where it would go (*found
 * false). */
static unsigned kid_index(const kart__keynode *n, unsigned char byte, bool *found)
{
    unsigned lo = 0, hi = n->nkids;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (n->kids[mid].byte < byte)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < n->nkids && n->kids[lo].byte == byte;
    return lo;
}

static kart__keynode *kid(const kart__keynode *n, unsigned char byte)
{
    bool found;
    unsigned i = kid_index(n, byte, &found);
    return found ? &n->kids[i] : NULL;
}

static kart__keynode *find(const kart__keymap *map, const char *seq, size_t len)
{
    const kart__keynode *n = trie(map);
    for (size_t i = 0; n && i < len; i++)
        n = kid(n, (unsigned char)seq[i]);
    return (kart__keynode *)n;
}

/* Removes the empty nodes (no binding, no children) on seq's path, from
 * the deepest up. */
static void prune(kart__keymap *map, const char *seq, size_t len)
{
    kart__keynode *path[KART__KEYSEQ_MAX + 1];
    size_t depth = 0;
    path[0] = &map->root;
    while (depth < len) {
        kart__keynode *next = kid(path[depth], (unsigned char)seq[depth]);
        if (!next)
            break;
        path[++depth] = next;
    }
    for (; depth > 0; depth--) {
        kart__keynode *n = path[depth], *parent = path[depth - 1];
        if (n->b.kind != KART__BIND_NONE || n->nkids)
            return;
        free(n->kids);
        unsigned i = (unsigned)(n - parent->kids);
        memmove(&parent->kids[i], &parent->kids[i + 1],
                (parent->nkids - i - 1) * sizeof(parent->kids[0]));
        if (--parent->nkids == 0) {
            free(parent->kids);
            parent->kids = NULL;
            parent->cap = 0;
        }
    }
}

/* The node of seq, created with its path. NULL: out of memory, with the
 * nodes this call created removed again. */
static kart__keynode *reach(kart__keymap *map, const char *seq, size_t len)
{
    kart__keynode *n = &map->root;
    for (size_t i = 0; i < len; i++) {
        unsigned char byte = (unsigned char)seq[i];
        bool found;
        unsigned at = kid_index(n, byte, &found);
        if (found) {
            n = &n->kids[at];
            continue;
        }
        if (n->nkids == n->cap) {
            unsigned cap = n->cap ? n->cap * 2u : 4u;
            if (cap > 256)
                cap = 256;
            kart__keynode *k = realloc(n->kids, cap * sizeof(*k));
            if (!k) {
                prune(map, seq, len);
                return NULL;
            }
            n->kids = k;
            n->cap = (unsigned short)cap;
        }
        memmove(&n->kids[at + 1], &n->kids[at], (n->nkids - at) * sizeof(n->kids[0]));
        n->kids[at] = (kart__keynode){.byte = byte};
        n->nkids++;
        n = &n->kids[at];
    }
    return n;
}

static int check_seq(const char *seq, size_t len)
{
    if (!seq || len == 0)
        return -EINVAL;
    if (len > KART__KEYSEQ_MAX)
        return -ENAMETOOLONG;
    return 0;
}

static int copy_node(kart__keynode *dst, const kart__keynode *src);

/* Gives a map that reads a shared trie its own copy, before a change. */
static int own(kart__keymap *map)
{
    if (!map->shared)
        return 0;
    int err = copy_node(&map->root, &map->shared->root);
    if (err) {
        node_clear(&map->root);
        return err;
    }
    map->shared = NULL;
    return 0;
}

static void set_binding(kart__keynode *n, const kart__binding *b)
{
    free((char *)n->b.macro);
    n->b = *b;
}

int kart__keymap_bind_fn(kart__keymap *map, const char *seq, size_t len, enum kart__line_fn fn)
{
    int err = check_seq(seq, len);
    if (err)
        return err;
    if ((int)fn <= KART__FN_NONE || fn >= KART__FN_COUNT)
        return -EINVAL;
    err = own(map);
    if (err)
        return err;
    kart__keynode *n = reach(map, seq, len);
    if (!n)
        return -ENOMEM;
    set_binding(n, &(kart__binding){.kind = KART__BIND_FN, .fn = fn});
    return 0;
}

int kart__keymap_bind_macro(kart__keymap *map, const char *seq, size_t len, const char *macro,
                            size_t macro_len)
{
    int err = check_seq(seq, len);
    if (err)
        return err;
    if (!macro && macro_len)
        return -EINVAL;
    err = own(map);
    if (err)
        return err;
    /* One byte more than asked, so that an empty macro has a pointer and
     * every macro ends in a NUL for the dumps. */
    char *copy = malloc(macro_len + 1);
    if (!copy)
        return -ENOMEM;
    if (macro_len)
        memcpy(copy, macro, macro_len);
    copy[macro_len] = '\0';
    kart__keynode *n = reach(map, seq, len);
    if (!n) {
        free(copy);
        return -ENOMEM;
    }
    set_binding(n,
                &(kart__binding){.kind = KART__BIND_MACRO, .macro = copy, .macro_len = macro_len});
    return 0;
}

int kart__keymap_unbind(kart__keymap *map, const char *seq, size_t len)
{
    if (!seq || len == 0)
        return -EINVAL;
    kart__keynode *n = len <= KART__KEYSEQ_MAX ? find(map, seq, len) : NULL;
    if (!n)
        return 0;
    int err = own(map);
    if (err)
        return err;
    n = find(map, seq, len); /* in the map's own trie now */
    set_binding(n, &(kart__binding){.kind = KART__BIND_NONE});
    prune(map, seq, len);
    return 0;
}

int kart__keymap_lookup(const kart__keymap *map, const char *seq, size_t len, kart__binding *out)
{
    const kart__keynode *n = len ? find(map, seq, len) : NULL;
    if (!n) {
        *out = (kart__binding){.kind = KART__BIND_NONE};
        return 0;
    }
    *out = n->b;
    return (n->b.kind != KART__BIND_NONE ? KART__SEQ_BOUND : 0) | (n->nkids ? KART__SEQ_PREFIX : 0);
}

/* Copies src's binding and children into dst (zeroed but for its byte);
 * on failure dst holds what was copied, for node_clear. */
static int copy_node(kart__keynode *dst, const kart__keynode *src)
{
    if (src->b.kind == KART__BIND_MACRO) {
        char *m = malloc(src->b.macro_len + 1);
        if (!m)
            return -ENOMEM;
        memcpy(m, src->b.macro, src->b.macro_len + 1);
        dst->b = src->b;
        dst->b.macro = m;
    } else {
        dst->b = src->b;
    }
    if (!src->nkids)
        return 0;
    dst->kids = malloc(src->nkids * sizeof(dst->kids[0]));
    if (!dst->kids)
        return -ENOMEM;
    dst->cap = src->nkids;
    for (unsigned i = 0; i < src->nkids; i++) {
        dst->kids[i] = (kart__keynode){.byte = src->kids[i].byte};
        dst->nkids = (unsigned short)(i + 1);
        int err = copy_node(&dst->kids[i], &src->kids[i]);
        if (err)
            return err;
    }
    return 0;
}

int kart__keymap_copy(kart__keymap **out, const kart__keymap *src)
{
    kart__keymap *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    /* A failed copy is whole up to where it stopped: node_clear frees it. */
    int err = copy_node(&m->root, trie(src));
    if (err) {
        kart__keymap_free(m);
        return err;
    }
    *out = m;
    return 0;
}

typedef int (*each_fn)(void *arg, const char *seq, size_t len, const kart__binding *b);

static int each_node(const kart__keynode *n, char *seq, size_t depth, each_fn fn, void *arg)
{
    if (depth && n->b.kind != KART__BIND_NONE) {
        int r = fn(arg, seq, depth, &n->b);
        if (r)
            return r;
    }
    for (unsigned i = 0; i < n->nkids; i++) {
        seq[depth] = (char)n->kids[i].byte;
        int r = each_node(&n->kids[i], seq, depth + 1, fn, arg);
        if (r)
            return r;
    }
    return 0;
}

int kart__keymap_each(const kart__keymap *map, each_fn fn, void *arg)
{
    char seq[KART__KEYSEQ_MAX];
    return each_node(trie(map), seq, 0, fn, arg);
}

int kart__keymap_share(kart__keymap **out, const kart__keymap *shared)
{
    kart__keymap *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->shared = shared;
    *out = m;
    return 0;
}

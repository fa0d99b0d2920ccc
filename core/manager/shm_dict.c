/*
 * core/manager/shm_dict.c — a dict in a shared segment, as CPython lays
 * its own out: an insertion-ordered entry array (hash, key blob, value
 * blob; a removed entry's key is 0) and an open-addressing index of
 * uint32 entry numbers (0 empty, UINT32_MAX removed). Keys are found by
 * their canonical bytes (shm_seg.c: Python's == on the simple types);
 * the key blob keeps the first key's pickle too, so keys() gives back the
 * key as first inserted (Python keeps the first key). Values are pickles.
 *
 * The entry array and the table pointer are the truth; the index, `used`
 * past a half-written entry and `live` are rebuilt by
 * mgr__shm_dict_repair after a holder died. Each change is ordered so that
 * an entry is complete before `used` counts it, and unlinked (key 0)
 * before its blocks are freed.
 */
#include "shm_path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TOMB UINT32_MAX
/* Keeps the compiler from moving a store across it: a holder killed here
 * has done every store before and none after. */
#define ORDER() __asm__ __volatile__("" ::: "memory")

typedef struct dtab {
    uint64_t cap, ecap, used, live;
} dtab;

typedef struct dent {
    uint64_t hash, key, val;
} dent;

static uint32_t *d_idx(dtab *t)
{
    return (uint32_t *)(t + 1);
}

static dent *d_ent(dtab *t)
{
    return (dent *)(d_idx(t) + t->cap);
}

static dtab *d_tab(mshm *s)
{
    uint64_t off = s->h->u.d.table;
    return off ? MSHM_AT(s, off) : NULL;
}

static bool d_keyeq(mshm *s, uint64_t koff, const mshm_key *k)
{
    const uint32_t *kb = MSHM_AT(s, koff);
    return kb[0] == k->n && memcmp(kb + 2, k->p, k->n) == 0;
}

/* The entry of k, or -1 (then *slot: where to insert it). */
static int64_t d_find(mshm *s, dtab *t, const mshm_key *k, uint64_t h, size_t *slot)
{
    uint32_t *idx = d_idx(t);
    dent *e = d_ent(t);
    size_t mask = t->cap - 1, i = h & mask, free_at = SIZE_MAX;
    for (size_t n = 0; n < t->cap; n++, i = (i + 1) & mask) {
        uint32_t x = idx[i];
        if (x == 0) {
            *slot = free_at != SIZE_MAX ? free_at : i;
            return -1;
        }
        if (x == TOMB || x > t->used) {
            if (free_at == SIZE_MAX)
                free_at = i;
            continue;
        }
        dent *d = &e[x - 1];
        if (d->key && d->hash == h && d_keyeq(s, d->key, k)) {
            *slot = i;
            return x - 1;
        }
    }
    *slot = free_at;
    return -1;
}

static void d_place(dtab *t, uint64_t h, uint32_t no)
{
    uint32_t *idx = d_idx(t);
    size_t mask = t->cap - 1, i = h & mask;
    while (idx[i] != 0)
        i = (i + 1) & mask;
    idx[i] = no;
}

/* A new table for at least need entries, the live ones moved over in
 * order, swapped in by one store. */
static int d_resize(mshm *s, uint64_t need)
{
    dtab *old = d_tab(s);
    uint64_t old_off = s->h->u.d.table;
    uint64_t ecap = 8;
    while (ecap < need * 2)
        ecap *= 2;
    uint64_t cap = ecap * 2;
    if (cap > UINT32_MAX)
        return -ENOSPC;
    uint64_t off = mgr__shm_alloc(s, sizeof(dtab) + cap * 4 + ecap * sizeof(dent));
    if (!off)
        return -ENOSPC;
    dtab *t = MSHM_AT(s, off);
    t->cap = cap;
    t->ecap = ecap;
    t->used = 0;
    memset(d_idx(t), 0, cap * 4);
    dent *ne = d_ent(t);
    if (old) {
        dent *oe = d_ent(old);
        for (uint64_t i = 0; i < old->used; i++)
            if (oe[i].key) {
                ne[t->used] = oe[i];
                t->used++;
                d_place(t, oe[i].hash, (uint32_t)t->used);
            }
    }
    t->live = t->used;
    ORDER();
    s->h->u.d.table = off;
    ORDER();
    if (old)
        mgr__shm_free(s, old_off);
    return 0;
}

void mgr__shm_dict_repair(mshm *s)
{
    dtab *t = d_tab(s);
    if (!t)
        return;
    if (t->used > t->ecap)
        t->used = t->ecap;
    memset(d_idx(t), 0, t->cap * 4);
    t->live = 0;
    dent *e = d_ent(t);
    for (uint64_t i = 0; i < t->used; i++) {
        if (!e[i].key)
            continue;
        if (e[i].key >= s->size || !e[i].val || e[i].val >= s->size) {
            e[i].key = 0;
            continue;
        }
        d_place(t, e[i].hash, (uint32_t)(i + 1));
        t->live++;
    }
}

/* A new entry (k not present). */
static int d_insert(mshm *s, const mshm_key *k, uint64_t h, const void *pk, size_t pkn,
                    const void *pv, size_t pvn)
{
    dtab *t = d_tab(s);
    if (!t || t->used == t->ecap) {
        int r = d_resize(s, (t ? t->live : 0) + 1);
        if (r)
            return r;
        t = d_tab(s);
    }
    size_t slot;
    d_find(s, t, k, h, &slot);
    uint64_t koff = mgr__shm_alloc(s, 8 + k->n + pkn);
    if (!koff)
        return -ENOSPC;
    uint64_t voff = mgr__shm_blob(s, pv, pvn);
    if (!voff) {
        mgr__shm_free(s, koff);
        return -ENOSPC;
    }
    uint32_t *kb = MSHM_AT(s, koff);
    kb[0] = (uint32_t)k->n;
    kb[1] = (uint32_t)pkn;
    memcpy(kb + 2, k->p, k->n);
    memcpy((char *)(kb + 2) + k->n, pk, pkn);
    dent *e = &d_ent(t)[t->used];
    e->hash = h;
    e->key = koff;
    e->val = voff;
    ORDER();
    t->used++;
    ORDER();
    d_idx(t)[slot] = (uint32_t)t->used;
    t->live++;
    return 0;
}

static void d_remove(mshm *s, dtab *t, size_t slot, uint64_t ei)
{
    dent *e = &d_ent(t)[ei];
    uint64_t k = e->key, v = e->val;
    e->key = 0;
    ORDER();
    d_idx(t)[slot] = TOMB;
    t->live--;
    ORDER();
    mgr__shm_free(s, k);
    mgr__shm_free(s, v);
}

static int key_obj(mshm *s, uint64_t koff, kart_obj **out)
{
    const uint32_t *kb = MSHM_AT(s, koff);
    int r = mv_unpickle((const char *)(kb + 2) + kb[0], kb[1], out, NULL, 0);
    return r == -ENOMEM ? r : r < 0 ? KART_EBADREPLY : 0;
}

/* ---- operations (each takes and releases the lock) ---- */

typedef struct kh {
    mshm_key k;
    uint64_t h;
} kh;

static int kh_make(mshm *s, const kart_obj *key, kh *out)
{
    int r = mgr__shm_key(key, &out->k);
    if (r == 0)
        out->h = mgr__shm_hash(s, &out->k);
    return r;
}

static int pickle(mshm *s, const kart_obj *o, void **buf, size_t *len)
{
    int r = mv_pickle(o, (int)s->h->protocol, buf, len);
    return r < 0 ? (r == -ENOMEM ? r : -EINVAL) : 0;
}

int mgr__shmd_get(mshm *s, const kart_obj *key, kart_obj **value)
{
    kh k;
    int r = kh_make(s, key, &k);
    if (r)
        return r;
    if ((r = mgr__shm_lock(s)) == 0) {
        dtab *t = d_tab(s);
        size_t slot;
        int64_t ei = t ? d_find(s, t, &k.k, k.h, &slot) : -1;
        r = ei < 0 ? -ENOENT : value ? mgr__shm_blob_obj(s, d_ent(t)[ei].val, value) : 0;
        mgr__shm_unlock(s);
    }
    mgr__shm_key_done(&k.k);
    return r;
}

int mgr__shmd_set(mshm *s, const kart_obj *key, const kart_obj *value, bool only_new,
                  kart_obj **current)
{
    kh k;
    int r = kh_make(s, key, &k);
    if (r)
        return r;
    void *pk = NULL, *pv = NULL;
    size_t pkn = 0, pvn = 0;
    r = pickle(s, key, &pk, &pkn);
    if (r == 0)
        r = pickle(s, value, &pv, &pvn);
    if (r == 0 && (r = mgr__shm_lock(s)) == 0) {
        dtab *t = d_tab(s);
        size_t slot;
        int64_t ei = t ? d_find(s, t, &k.k, k.h, &slot) : -1;
        if (ei < 0)
            r = d_insert(s, &k.k, k.h, pk, pkn, pv, pvn);
        else if (only_new)
            r = current ? mgr__shm_blob_obj(s, d_ent(t)[ei].val, current) : 0;
        else {
            /* the key stays the first one; the value is swapped by one
             * store, the old block freed after */
            uint64_t nv = mgr__shm_blob(s, pv, pvn);
            if (!nv)
                r = -ENOSPC;
            else {
                dent *e = &d_ent(t)[ei];
                uint64_t old = e->val;
                e->val = nv;
                ORDER();
                mgr__shm_free(s, old);
            }
        }
        if (only_new && ei < 0 && r == 0 && current)
            *current = NULL;
        mgr__shm_unlock(s);
    }
    free(pk);
    free(pv);
    mgr__shm_key_done(&k.k);
    return r;
}

int mgr__shmd_pop(mshm *s, const kart_obj *key, kart_obj **value)
{
    kh k;
    int r = kh_make(s, key, &k);
    if (r)
        return r;
    if ((r = mgr__shm_lock(s)) == 0) {
        dtab *t = d_tab(s);
        size_t slot;
        int64_t ei = t ? d_find(s, t, &k.k, k.h, &slot) : -1;
        if (ei < 0)
            r = -ENOENT;
        else {
            r = value ? mgr__shm_blob_obj(s, d_ent(t)[ei].val, value) : 0;
            if (r == 0)
                d_remove(s, t, slot, (uint64_t)ei);
        }
        mgr__shm_unlock(s);
    }
    mgr__shm_key_done(&k.k);
    return r;
}

int mgr__shmd_popitem(mshm *s, kart_obj **key, kart_obj **value)
{
    int r = mgr__shm_lock(s);
    if (r)
        return r;
    dtab *t = d_tab(s);
    r = -ENOENT;
    for (uint64_t i = t ? t->used : 0; i-- > 0;) {
        dent *e = &d_ent(t)[i];
        if (!e->key)
            continue;
        r = key_obj(s, e->key, key);
        if (r == 0 && (r = mgr__shm_blob_obj(s, e->val, value)) != 0)
            mv_free(*key);
        if (r == 0) {
            /* its index slot: probe by hash for entry number i + 1 */
            uint32_t *idx = d_idx(t);
            size_t mask = t->cap - 1, j = e->hash & mask;
            while (idx[j] != (uint32_t)(i + 1) && idx[j] != 0)
                j = (j + 1) & mask;
            if (idx[j] == (uint32_t)(i + 1))
                d_remove(s, t, j, i);
            else
                r = KART_EBADREPLY; /* cannot be: repair keeps the index whole */
        }
        break;
    }
    mgr__shm_unlock(s);
    return r;
}

int mgr__shmd_clear(mshm *s)
{
    int r = mgr__shm_lock(s);
    if (r)
        return r;
    dtab *t = d_tab(s);
    uint64_t off = s->h->u.d.table;
    s->h->u.d.table = 0; /* one store: empty; the rest is freeing */
    ORDER();
    if (t) {
        dent *e = d_ent(t);
        for (uint64_t i = 0; i < t->used; i++)
            if (e[i].key) {
                mgr__shm_free(s, e[i].key);
                mgr__shm_free(s, e[i].val);
            }
        mgr__shm_free(s, off);
    }
    mgr__shm_unlock(s);
    return 0;
}

int mgr__shmd_len(mshm *s, size_t *len)
{
    int r = mgr__shm_lock(s);
    if (r)
        return r;
    dtab *t = d_tab(s);
    *len = t ? (size_t)t->live : 0;
    mgr__shm_unlock(s);
    return 0;
}

int mgr__shmd_list(mshm *s, int what, kart_obj **out)
{
    kart_obj *l = what == MSHMD_DICT ? mv_dict_new() : mv_list_new();
    if (!l)
        return -ENOMEM;
    int r = mgr__shm_lock(s);
    if (r) {
        mv_free(l);
        return r;
    }
    dtab *t = d_tab(s);
    for (uint64_t i = 0; r == 0 && t && i < t->used; i++) {
        dent *e = &d_ent(t)[i];
        if (!e->key)
            continue;
        kart_obj *k = NULL, *v = NULL;
        if (what != MSHMD_VALUES)
            r = key_obj(s, e->key, &k);
        if (r == 0 && what != MSHMD_KEYS)
            r = mgr__shm_blob_obj(s, e->val, &v);
        if (r) {
            mv_free(k);
            break;
        }
        if (what == MSHMD_DICT)
            r = mv_dict_set(l, k, v) < 0 ? -ENOMEM : 0;
        else
            r = mv_list_append(l, what == MSHMD_KEYS     ? k
                                  : what == MSHMD_VALUES ? v
                                                         : mv_tuple(2, k, v)) < 0
                    ? -ENOMEM
                    : 0;
    }
    mgr__shm_unlock(s);
    if (r) {
        mv_free(l);
        return r;
    }
    *out = l;
    return 0;
}

int mgr__shm_dict_fill(mshm *s, const kart_obj *d)
{
    size_t pos = 0;
    const kart_obj *k, *v;
    int r = 0;
    while (r == 0 && kart_obj_next(d, &pos, &k, &v) == 1)
        r = mgr__shmd_set(s, k, v, false, NULL);
    return r;
}

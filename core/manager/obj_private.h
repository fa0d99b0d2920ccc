/*
 * core/manager/obj_private.h — the layout of kart_obj and the helpers that
 * obj.c and pickle.c share (the value tree and its pickle codec).
 */
#ifndef KART_OBJ_PRIVATE_H
#define KART_OBJ_PRIVATE_H

#include <kart/obj.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal kinds, never a tree item: a class named by GLOBAL or
 * STACK_GLOBAL while unpickling (module and name in u.cls, the kind of the
 * allowed class in u.cls.kind). */
#define KART__OBJ_CLASSREF ((kart_obj_type)100)

/* What a class reference does when called (REDUCE / NEWOBJ). */
enum kart__classref_kind {
    KART__CLASSREF_ERROR = KART_OBJ_CLASS_ERROR,
    KART__CLASSREF_INSTANCE = KART_OBJ_CLASS_INSTANCE,
    KART__CLASSREF_CODECS_ENCODE = 10, /* _codecs.encode(str, 'latin1') */
    KART__CLASSREF_BYTES = 11,         /* builtins.bytes() */
};

struct kart__dict_entry {
    uint64_t hash;
    kart_obj *key; /* NULL: a removed entry */
    kart_obj *value;
};

struct kart_obj {
    kart_obj_type type;
    /* 1 for a scalar, 1 + the tallest item for a container. */
    uint32_t height;
    /* Set by the unpickler on an object a memo GET or DUP copied: a later
     * change to it is refused (a recursive structure). */
    bool frozen;
    kart_obj *parent;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            /* str: UTF-8 plus a NUL; bytes; bigint: normalised
             * little-endian two's complement (more than 8 bytes). */
            char *p;
            size_t n;
        } s;
        struct {
            kart_obj **v;
            size_t n, cap;
        } seq;
        struct {
            struct kart__dict_entry *e;
            size_t n;    /* entries used, removed ones included */
            size_t live; /* entries in use */
            size_t cap;
            size_t *index; /* open addressing: 0 empty, else entry + 1 */
            size_t index_cap;
        } d;
        struct {
            char *module;
            char *name;
            kart_obj *payload; /* error: args; instance: state */
            kart_obj *state;   /* error: the BUILD dict or NULL */
            int kind;          /* classref: enum kart__classref_kind */
        } cls;
    } u;
};

/* Allocates an object of a kind with nothing in it. */
kart_obj *kart__obj_new(kart_obj_type type);
/* Frees a tree whatever its parent (the unpickler's stack and graveyard). */
void kart__obj_free_tree(kart_obj *obj);
/* Inserts item at i in a sequence, or checks only (check_only), with the
 * given depth limit. */
int kart__obj_seq_insert(kart_obj *seq, size_t i, kart_obj *item, size_t max_depth);
/* Sets d[key] = value with a depth limit; a replaced key and value are
 * handed back in *old_key / *old_value (roots now) instead of being freed
 * when those are not NULL. */
int kart__obj_dict_set(kart_obj *d, kart_obj *key, kart_obj *value, size_t max_depth,
                       kart_obj **old_key, kart_obj **old_value);
/* A deep copy that charges each node's size to *budget and fails with
 * -E2BIG when it runs out (budget NULL: no limit). */
int kart__obj_copy(const kart_obj *src, size_t *budget, kart_obj **out);
/* The bytes one node takes, for the unpickler's size budget. */
size_t kart__obj_weight(const kart_obj *obj);
/* 0 when s[0..n) is valid UTF-8 without surrogates, else -EILSEQ. */
int kart__utf8_check(const uint8_t *s, size_t n);
/* A str, bytes or bigint holding a copy of p[0..n) plus a NUL, in the
 * object's own allocation; NULL for want of memory. */
kart_obj *kart__obj_new_bytes(kart_obj_type type, const void *p, size_t n);
/* Normalises little-endian two's complement: the fewest bytes (at least
 * 1); returns the new length. */
size_t kart__bigint_trim(const uint8_t *b, size_t n);
/* A double with an integral value of at least 2^63 in magnitude as
 * normalised two's complement bytes (out: at least 130 bytes). */
size_t kart__float_bigint(double f, uint8_t *out);
/* The minimal two's complement of an int64 in out[8]; returns its length. */
size_t kart__int_bytes(int64_t v, uint8_t out[8]);

#endif /* KART_OBJ_PRIVATE_H */

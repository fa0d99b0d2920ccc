/*
 * kart/obj.h — typed values as Python exchanges them, and a safe pickle
 * codec for them (protocols 2 to 5).
 *
 * A kart_obj is an opaque, heap-allocated tree node of one of the simple
 * types below. Containers own their items: an object is in at most one
 * container (inserting one that already has a parent is -EINVAL), so a tree
 * has no sharing and no cycles, and freeing the root frees everything.
 * Trees are at most KART_OBJ_MAX_DEPTH deep (insertions that would go deeper
 * fail with -E2BIG), so every recursive walk (free, equal, copy, repr,
 * pickle) has a bounded depth.
 *
 * Ownership: a call that takes an object (kart_obj_append, _dict_set,
 * _tuple, _error, ...) takes it on success only; on failure the caller
 * still owns it. Returned kart_obj pointers from readers (_item, _dict_get,
 * _next, _get_class) are borrowed: valid until the object is removed from
 * its container or the tree is freed.
 *
 * Numbers follow Python's ==: True == 1 == 1.0, and a big int equals the
 * float of the same integral value; NaN equals nothing, itself included
 * (Python's [nan] == [nan] is True only for the same object; decoded values
 * never share objects). Ints are normalised: a value that fits int64 is
 * always KART_OBJ_INT, never KART_OBJ_BIGINT, so kart_obj_get_int on a
 * KART_OBJ_BIGINT is always -ERANGE.
 *
 * Thread safety: one thread at a time per tree for writers; readers (every
 * const function) may run concurrently with each other.
 */
#ifndef KART_OBJ_H
#define KART_OBJ_H

#include <kart/common.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The deepest a tree may be: a lone scalar has depth 1, [[1]] depth 3.
 * Python's own pickler stops near 1000 (its recursion limit). The walks
 * over a tree this deep take up to about 256 KiB of stack (measured at -O2
 * on x86-64): run them on threads with at least that much. */
#define KART_OBJ_MAX_DEPTH 1000

typedef struct kart_obj kart_obj;

typedef enum kart_obj_type {
    KART_OBJ_NONE = 0,
    KART_OBJ_BOOL,
    KART_OBJ_INT,    /* fits int64_t */
    KART_OBJ_BIGINT, /* any other integer (never fits int64_t) */
    KART_OBJ_FLOAT,  /* double */
    KART_OBJ_STR,    /* valid UTF-8, no surrogates; may contain NUL */
    KART_OBJ_BYTES,
    KART_OBJ_TUPLE,
    KART_OBJ_LIST,
    KART_OBJ_DICT, /* insertion-ordered; keys of hashable kinds */
    /* An exception object: class (module, name), its args tuple and an
     * optional state (the dict of BaseException.__reduce__'s third item,
     * or NULL). Pickled as Python pickles exceptions: class, args, REDUCE
     * (and BUILD with the state when there is one). */
    KART_OBJ_ERROR,
    /* An instance of a plain class: class (module, name) and its state
     * (what __getstate__ returns). Pickled as copyreg.__newobj__ pickles:
     * class, (), NEWOBJ, state, BUILD. multiprocessing.managers.Token is
     * one: its state is the tuple (typeid, address, id). */
    KART_OBJ_INSTANCE,
} kart_obj_type;

/* ---- Constructors: each returns 0 and a new object in *out, or -ENOMEM
 * (and -EINVAL for a NULL out or as stated). ---- */

KART_API int kart_obj_none(kart_obj **out);
KART_API int kart_obj_bool(bool v, kart_obj **out);
KART_API int kart_obj_int(int64_t v, kart_obj **out);
/* An integer from its little-endian two's-complement bytes (Python's
 * int.to_bytes(n, 'little', signed=True), LONG1/LONG4's payload); n == 0 is
 * 0. The result is KART_OBJ_INT when the value fits int64_t.
 * -EINVAL: bytes NULL with n > 0. */
KART_API int kart_obj_bigint(const void *bytes, size_t n, kart_obj **out);
KART_API int kart_obj_float(double v, kart_obj **out);
/* A str from len bytes of UTF-8 (copied). -EILSEQ: not valid UTF-8
 * (overlong forms, surrogates, code points past U+10FFFF are refused);
 * -EINVAL: s NULL with len > 0. */
KART_API int kart_obj_str(const char *s, size_t len, kart_obj **out);
/* The same for a NUL-terminated string. -EINVAL: s NULL. */
KART_API int kart_obj_strz(const char *s, kart_obj **out);
/* A bytes object (copied). -EINVAL: p NULL with n > 0. */
KART_API int kart_obj_bytes(const void *p, size_t n, kart_obj **out);
/* A tuple of the n objects items[0..n-1], taken on success (none of them
 * may have a parent: -EINVAL; one deeper than the limit: -E2BIG). n == 0
 * makes the empty tuple (items may then be NULL). */
KART_API int kart_obj_tuple(kart_obj *const *items, size_t n, kart_obj **out);
/* An empty list; an empty dict. */
KART_API int kart_obj_list(kart_obj **out);
KART_API int kart_obj_dict(kart_obj **out);
/* An exception: module and name (copied, each non-empty: -EINVAL), args a
 * tuple (-EINVAL otherwise; NULL means ()), state NULL or a dict. args
 * and state are taken on success. */
KART_API int kart_obj_error(const char *module, const char *name, kart_obj *args, kart_obj *state,
                            kart_obj **out);
/* An instance of module.name with the given state (any kind, taken on
 * success; NULL means None). -EINVAL: empty or NULL names. */
KART_API int kart_obj_instance(const char *module, const char *name, kart_obj *state,
                               kart_obj **out);
/* A deep copy of src (a new root). */
KART_API int kart_obj_copy(const kart_obj *src, kart_obj **out);

/* Frees obj and everything in it; accepts NULL. obj must be a root (not in
 * a container): freeing an item still in one is a caller bug (the call
 * then does nothing, to keep the tree consistent). */
KART_API void kart_obj_free(kart_obj *obj);

/* ---- Readers. -EINVAL: NULL obj or out, or the wrong kind. ---- */

/* The kind of obj (KART_OBJ_NONE for NULL). */
KART_API kart_obj_type kart_obj_type_of(const kart_obj *obj);
/* The name of a kind ("none", "bool", "int", ...), static. */
KART_API const char *kart_obj_type_name(kart_obj_type type);
/* A bool. */
KART_API int kart_obj_get_bool(const kart_obj *obj, bool *v);
/* An int or a bool (True is 1). -ERANGE: a KART_OBJ_BIGINT. */
KART_API int kart_obj_get_int(const kart_obj *obj, int64_t *v);
/* An int, big int or bool as little-endian two's-complement bytes, the
 * fewest that hold it (0 is one zero byte). -ENOBUFS: size too small, the
 * size needed in *len (len may not be NULL). */
KART_API int kart_obj_get_bigint(const kart_obj *obj, void *buf, size_t size, size_t *len);
/* A float; an int or bool is converted (as float(x)); a big int whose
 * magnitude overflows a double is -ERANGE. */
KART_API int kart_obj_get_float(const kart_obj *obj, double *v);
/* A str's UTF-8 bytes and length (len may be NULL); the text is followed
 * by a NUL byte. Valid while obj lives. */
KART_API int kart_obj_get_str(const kart_obj *obj, const char **s, size_t *len);
/* A bytes object's data and length. Valid while obj lives. */
KART_API int kart_obj_get_bytes(const kart_obj *obj, const void **p, size_t *len);
/* The class of an error or instance (module, name: either out may be
 * NULL) and its payload: the args tuple of an error, the state of an
 * instance (payload may be NULL). */
KART_API int kart_obj_get_class(const kart_obj *obj, const char **module, const char **name,
                                const kart_obj **payload);
/* The state dict of an error, or NULL when it has none. */
KART_API int kart_obj_get_error_state(const kart_obj *obj, const kart_obj **state);

/* ---- Containers ---- */

/* The number of items of a tuple, list or dict. -EINVAL: another kind. */
KART_API int kart_obj_len(const kart_obj *obj, size_t *len);
/* Item i of a tuple or list (borrowed). -ERANGE: i >= length. */
KART_API int kart_obj_item(const kart_obj *obj, size_t i, const kart_obj **item);
/* Iteration over a tuple, list or dict in order: start with *pos = 0;
 * returns 1 with the next item (a dict's key and value; key is NULL for
 * a sequence; either out may be NULL), or 0 at the end. Positions stay
 * valid while the container is not changed. -EINVAL: another kind. */
KART_API int kart_obj_next(const kart_obj *obj, size_t *pos, const kart_obj **key,
                           const kart_obj **value);
/* Appends item to a list or tuple (tuples too, for building), taken on
 * success. -EINVAL: wrong kind, item NULL or already in a container;
 * -ELOOP: item is obj or one of its ancestors; -E2BIG: the tree would be
 * deeper than KART_OBJ_MAX_DEPTH. */
KART_API int kart_obj_append(kart_obj *seq, kart_obj *item);
/* Inserts item before index i (i == length appends). Errors as
 * kart_obj_append, and -ERANGE: i > length. */
KART_API int kart_obj_insert(kart_obj *seq, size_t i, kart_obj *item);
/* Replaces item i of a list or tuple with item (taken on success; the old
 * one is freed). Errors as kart_obj_insert; -ERANGE: i >= length. */
KART_API int kart_obj_set_item(kart_obj *seq, size_t i, kart_obj *item);
/* Removes item i of a list or tuple; hands it to the caller in *item (a
 * new root) or frees it when item is NULL. -ERANGE: i >= length. */
KART_API int kart_obj_remove(kart_obj *seq, size_t i, kart_obj **item);
/* True when obj is a kind Python can hash: None, bool, int, big int,
 * float, str, bytes, and tuples of those. */
KART_API bool kart_obj_hashable(const kart_obj *obj);
/* Sets d[key] = value, both taken on success. When an equal key is there
 * already (1, 1.0 and True are one key) its value is replaced and freed,
 * the new key is freed and the old key and its position kept (Python's
 * rule). -EINVAL: d not a dict, key or value NULL or in a container, key
 * not hashable; -ELOOP, -E2BIG as kart_obj_append. */
KART_API int kart_obj_dict_set(kart_obj *d, kart_obj *key, kart_obj *value);
/* d[key] (borrowed). -ENOENT: no such key; -EINVAL: not a dict, key
 * NULL or not hashable. */
KART_API int kart_obj_dict_get(const kart_obj *d, const kart_obj *key, const kart_obj **value);
/* d[key] for a str key given as a NUL-terminated string. */
KART_API int kart_obj_dict_get_str(const kart_obj *d, const char *key, const kart_obj **value);
/* Removes d[key]: the value goes to *value (a new root) or is freed when
 * value is NULL; the key is freed. -ENOENT, -EINVAL as kart_obj_dict_get. */
KART_API int kart_obj_dict_pop(kart_obj *d, const kart_obj *key, kart_obj **value);
/* Removes every item of a list, tuple or dict. */
KART_API int kart_obj_clear(kart_obj *obj);

/* ---- Comparison and printing ---- */

/* Python's a == b over the trees (see the top of this file for numbers;
 * a tuple never equals a list; dicts are equal with the same items in any
 * order; errors and instances are equal with the same class and equal
 * payloads). NULL equals only NULL. */
KART_API bool kart_obj_equal(const kart_obj *a, const kart_obj *b);
/* A hash consistent with kart_obj_equal for hashable objects (equal
 * objects hash alike); 0 for others. Not Python's hash(), and seeded per
 * process (so that a peer cannot send keys made to collide): never store
 * it or send it elsewhere. */
KART_API uint64_t kart_obj_hash(const kart_obj *obj);
/* Writes Python's repr() of obj into buf (NUL-terminated) and returns its
 * length. Errors are KeyError('x'), instances module.Name(state).
 * -ENOBUFS: size too small: buf holds what fits, cut and ending in "...",
 * NUL-terminated (when size > 0), and *needed (may be NULL) the size
 * needed, the NUL included. -EINVAL: buf NULL with size > 0. */
KART_API int kart_obj_repr(const kart_obj *obj, char *buf, size_t size, size_t *needed);

/* ---- Pickle ---- */

/* What an allowed class becomes when a pickle names it. */
typedef enum kart_obj_class_kind {
    /* REDUCE with an args tuple (and an optional BUILD with a dict):
     * KART_OBJ_ERROR. */
    KART_OBJ_CLASS_ERROR = 1,
    /* NEWOBJ with () followed by BUILD with the state (what protocol 2+
     * writes for copyreg.__newobj__): KART_OBJ_INSTANCE. */
    KART_OBJ_CLASS_INSTANCE = 2,
} kart_obj_class_kind;

typedef struct kart_obj_class {
    const char *module;
    const char *name;
    kart_obj_class_kind kind;
} kart_obj_class;

typedef struct kart_obj_unpickle_options {
    /* Classes a pickle may name, besides the ones pickle itself needs for
     * simple values (protocol 2's _codecs.encode and builtins.bytes for
     * bytes). Matched on the module as written, after protocol 2's
     * renames (__builtin__ and exceptions to builtins, copy_reg to copyreg,
     * Queue to queue). Names are at most 255 bytes. */
    const kart_obj_class *classes;
    size_t nclasses;
    /* Also allow what multiprocessing.managers sends: Token (instance),
     * RemoteError and the builtins exceptions, _queue.Empty, queue.Empty,
     * queue.Full, queue.ShutDown, threading.BrokenBarrierError,
     * multiprocessing.context's TimeoutError, AuthenticationError and
     * ProcessError (errors). */
    bool managers;
    /* The deepest tree accepted (0 or more than KART_OBJ_MAX_DEPTH:
     * KART_OBJ_MAX_DEPTH). */
    size_t max_depth;
    /* The most bytes the decoded value may take (0: 64 times the input
     * plus 1 MiB). Bounds what shared references (memo GETs, which are
     * copied) can expand to. */
    size_t max_size;
} kart_obj_unpickle_options;

/* Why a decode failed, filled on failure when a pointer is given. */
typedef struct kart_obj_pickle_error {
    size_t offset;     /* the input offset of the opcode that failed */
    int opcode;        /* that opcode's byte, or -1 (end of input) */
    char message[160]; /* what went wrong, NUL-terminated */
} kart_obj_pickle_error;

/* Encodes obj as a pickle of the given protocol (2 to 5; Python's
 * multiprocessing sends pickle.DEFAULT_PROTOCOL: 4 on 3.8 to 3.13, 5 on
 * 3.14). The buffer is malloc'd, *buf and *len set on success; the caller
 * frees it with free(). Errors become what Python pickles for them,
 * instances likewise; protocol 2 writes bytes as Python does
 * (_codecs.encode of a latin-1 str). No memo and no frames are written
 * (Python reads either way). -EINVAL: obj, buf or len NULL, protocol
 * outside 2..5, or a class name with a newline in protocol 2 or 3;
 * -EMSGSIZE: a str or bytes of 4 GiB or more in protocol 2 or 3 (no
 * opcode holds it); -ENOMEM. */
KART_API int kart_obj_pickle(const kart_obj *obj, int protocol, void **buf, size_t *len);

/* Decodes one pickle (protocols 2 to 5, framed or not; data past STOP is
 * an error) into a new tree in *out. Runs no code: it accepts the opcodes
 * of the simple values (PROTO, FRAME, STOP, MARK, POP, POP_MARK, DUP, the
 * memo opcodes PUT/GET/BINPUT/BINGET/LONG_BINPUT/LONG_BINGET/MEMOIZE,
 * NONE, NEWTRUE/NEWFALSE, BININT*, LONG1/LONG4, BINFLOAT, the BINUNICODE,
 * BINBYTES and BINSTRING families, EMPTY_TUPLE, TUPLE*, EMPTY_LIST, LIST,
 * APPEND(S), EMPTY_DICT, DICT, SETITEM(S)) and GLOBAL/STACK_GLOBAL, REDUCE,
 * NEWOBJ, BUILD only for the allowed classes. A shared reference (a memo
 * GET, a DUP) is copied; a change to an object after it was shared (a
 * recursive list) is refused, since the copies could not show it. Memo
 * indices must come in order (as Python writes them). Sets, bytearrays,
 * out-of-band buffers, persistent ids, extensions, INST/OBJ, NEWOBJ_EX and
 * the protocol 0 value opcodes (INT, LONG, FLOAT, STRING, UNICODE) are
 * refused; the text PUT/GET are read.
 * Errors (err filled when not NULL): -EPROTO: malformed or truncated
 * input, an unknown opcode, a stack or memo misuse; -EPERM: a refused
 * opcode or a class not allowed; -EILSEQ: a str that is not UTF-8;
 * -E2BIG: deeper than max_depth or larger than max_size (never an
 * allocation from a length field larger than the input); -EINVAL: buf
 * NULL with len > 0, out NULL; -ENOMEM. */
KART_API int kart_obj_unpickle(const void *buf, size_t len,
                               const kart_obj_unpickle_options *options, kart_obj **out,
                               kart_obj_pickle_error *err);

#ifdef __cplusplus
}
#endif

#endif /* KART_OBJ_H */

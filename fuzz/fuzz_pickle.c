/*
 * fuzz/fuzz_pickle.c — libFuzzer target for the pickle decoder of kart_obj
 * (core/manager/pickle.c). The first byte picks the options (the managers'
 * allow-list or none, a user class, a small max_depth or max_size); the
 * rest is decoded. A decode either fails with one of the documented codes
 * (and an error offset inside the input) or gives a tree that must pickle
 * in every protocol 2..5 and decode back to an equal tree (equal by
 * kart_obj_equal, or by repr where NaNs make == false); everything is
 * freed, so LeakSanitizer sees any leak.
 */
#include <kart/obj.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const kart_obj_class user[] = {
    {"m", "E", KART_OBJ_CLASS_ERROR},
    {"m", "C", KART_OBJ_CLASS_INSTANCE},
};

static void same(const kart_obj *a, const kart_obj *b)
{
    if (kart_obj_equal(a, b))
        return;
    /* NaN != NaN: compare the text instead. */
    size_t na = 0, nb = 0;
    char c;
    kart_obj_repr(a, &c, 1, &na);
    kart_obj_repr(b, &c, 1, &nb);
    char *ra = malloc(na), *rb = malloc(nb);
    if (!ra || !rb || kart_obj_repr(a, ra, na, NULL) < 0 || kart_obj_repr(b, rb, nb, NULL) < 0 ||
        strcmp(ra, rb) != 0)
        abort();
    free(ra);
    free(rb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    kart_obj_unpickle_options opt;
    memset(&opt, 0, sizeof opt);
    opt.managers = mode & 1;
    if (mode & 2) {
        opt.classes = user;
        opt.nclasses = 2;
    }
    if (mode & 4)
        opt.max_depth = 1 + (mode >> 4);
    if (mode & 8)
        opt.max_size = 64u << (mode >> 4);
    kart_obj *o = NULL;
    kart_obj_pickle_error err;
    int rc = kart_obj_unpickle(data + 1, size - 1, &opt, &o, &err);
    if (rc < 0) {
        if (o || (rc != -EPROTO && rc != -EPERM && rc != -EILSEQ && rc != -E2BIG) || err.offset > size - 1 ||
            !memchr(err.message, 0, sizeof err.message) || !err.message[0])
            abort();
        return 0;
    }
    for (int p = 2; p <= 5; p++) {
        void *buf;
        size_t len;
        int prc = kart_obj_pickle(o, p, &buf, &len);
        if (prc == -EINVAL && p < 4)
            continue; /* a class name with a newline: protocol 2/3 cannot */
        if (prc < 0)
            abort();
        kart_obj_unpickle_options back = opt;
        /* The re-encoding may be larger and one level deeper: protocol 2
         * spells bytes as _codecs.encode((text, 'latin1')). */
        back.max_size = 0;
        back.max_depth = 0;
        kart_obj *o2 = NULL;
        if (kart_obj_unpickle(buf, len, &back, &o2, &err) < 0)
            abort();
        same(o, o2);
        kart_obj_free(o2);
        free(buf);
    }
    kart_obj_free(o);
    return 0;
}

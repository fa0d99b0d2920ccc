/* Description: kart/complete.h — registering names, implicit parents,
 * keywords and providers, with every documented error (bad names,
 * duplicates, missing names, NULLs, calls from inside a provider, and
 * -ENOMEM at each allocation, the completer unchanged after each);
 * completion as Python 3.13's rlcompleter answers (top level and dotted,
 * full dotted candidates, "(" and "()" for callables, keyword suffixes,
 * the '_' and '__' rule with its fall-backs, sorted whole candidates
 * without duplicates, a keyword hiding a name); providers (path, prefix,
 * nearest provider for a subtree, merging with registered names, a
 * failing provider); the complete(text, state) protocol; a randomized
 * comparison with a brute-force model; and the time of a completion over
 * 10,000 names. */
#include "testutil.h"

#include "fault.h"

#include <kart/complete.h>
#include <time.h>

/* The candidates of text joined with '|' (static buffer), or "ERR <n>". */
static const char *got(kart_completer *c, const char *text)
{
    static char buf[8192];
    kart_completions *m = NULL;
    int n = kart_completer_complete(c, text, strlen(text), &m);
    if (n < 0) {
        snprintf(buf, sizeof(buf), "ERR %d", n);
        return buf;
    }
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->count, (size_t)n);
    ck_assert_ptr_null(m->items[n]);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i)
            strcat(buf, "|");
        strcat(buf, m->items[i]);
    }
    kart_completions_free(m);
    return buf;
}

static kart_completer *new_completer(void)
{
    kart_completer *c = NULL;
    ck_assert_int_eq(kart_completer_create(&c), 0);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* The namespace of the example: a pool, a loop, keywords. */
static kart_completer *sample(void)
{
    kart_completer *c = new_completer();
    ck_assert_int_eq(kart_completer_add(c, "pool", KART_COMPLETE_NAMESPACE), 0);
    ck_assert_int_eq(kart_completer_add(c, "pool.workers", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_add(c, "pool.resize", KART_COMPLETE_CALLABLE), 0);
    ck_assert_int_eq(kart_completer_add(c, "pool.close", KART_COMPLETE_CALLABLE_NOARGS), 0);
    ck_assert_int_eq(kart_completer_add(c, "pool._queue", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_add(c, "pool.__doc__", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_add(c, "loop.stats", KART_COMPLETE_CALLABLE_NOARGS), 0);
    ck_assert_int_eq(kart_completer_add(c, "loop.backend", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_add(c, "print", KART_COMPLETE_CALLABLE), 0);
    ck_assert_int_eq(kart_completer_add(c, "_secret", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_add_keyword(c, "pass", NULL), 0);
    ck_assert_int_eq(kart_completer_add_keyword(c, "import", " "), 0);
    ck_assert_int_eq(kart_completer_add_keyword(c, "try", ":"), 0);
    return c;
}

/* ---- registering ---- */

START_TEST(create_and_free_null)
{
    ck_assert_int_eq(kart_completer_create(NULL), -EINVAL);
    kart_completer_free(NULL);
    kart_completions_free(NULL);
    kart_completer *c = new_completer();
    ck_assert_str_eq(got(c, ""), "");
    kart_completer_free(c);
}
END_TEST

START_TEST(add_rejects_bad_names)
{
    kart_completer *c = sample();
    const char *before = "import |loop|pass|pool|print(|try:";
    ck_assert_str_eq(got(c, ""), before);
    const char *bad[] = {"",     ".",     ".x",    "x.", "a..b", "pool.", "a b",
                         "a\tb", "tab\t", "a\x7f", " x", "x.y.", "..",    "pool..workers"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(kart_completer_add(c, bad[i], KART_COMPLETE_VALUE), -EINVAL);
        ck_assert_int_eq(kart_completer_remove(c, bad[i]), -EINVAL);
        ck_assert_int_eq(kart_completer_add_keyword(c, bad[i], NULL), -EINVAL);
    }
    ck_assert_int_eq(kart_completer_add(c, NULL, KART_COMPLETE_VALUE), -EINVAL);
    ck_assert_int_eq(kart_completer_add(NULL, "x", KART_COMPLETE_VALUE), -EINVAL);
    ck_assert_int_eq(kart_completer_add(c, "x", (kart_complete_kind)4), -EINVAL);
    ck_assert_int_eq(kart_completer_add(c, "x", (kart_complete_kind)-1), -EINVAL);
    ck_assert_int_eq(kart_completer_remove(NULL, "x"), -EINVAL);
    ck_assert_int_eq(kart_completer_remove(c, NULL), -EINVAL);
    ck_assert_str_eq(got(c, ""), before);
    ck_assert_str_eq(got(c, "pool."), "pool.close()|pool.resize(|pool.workers");
    kart_completer_free(c);
}
END_TEST

START_TEST(names_take_utf8_and_punctuation)
{
    kart_completer *c = new_completer();
    ck_assert_int_eq(kart_completer_add(c, "caf\xc3\xa9.cr\xc3\xa8me", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_add(c, "conn-42.peer:port", KART_COMPLETE_VALUE), 0);
    ck_assert_str_eq(got(c, "caf\xc3\xa9."), "caf\xc3\xa9.cr\xc3\xa8me");
    ck_assert_str_eq(got(c, "conn-"), "conn-42");
    ck_assert_str_eq(got(c, "conn-42.p"), "conn-42.peer:port");
    kart_completer_free(c);
}
END_TEST

START_TEST(duplicate_is_eexist)
{
    kart_completer *c = sample();
    ck_assert_int_eq(kart_completer_add(c, "pool.workers", KART_COMPLETE_CALLABLE), -EEXIST);
    ck_assert_int_eq(kart_completer_add(c, "pool", KART_COMPLETE_VALUE), -EEXIST);
    ck_assert_int_eq(kart_completer_add_keyword(c, "pass", " "), -EEXIST);
    /* The first registration stands. */
    ck_assert_str_eq(got(c, "pool.w"), "pool.workers");
    ck_assert_str_eq(got(c, "pa"), "pass");
    kart_completer_free(c);
}
END_TEST

START_TEST(implicit_parents_come_and_go)
{
    kart_completer *c = new_completer();
    ck_assert_int_eq(kart_completer_add(c, "a.b.c", KART_COMPLETE_CALLABLE), 0);
    ck_assert_str_eq(got(c, ""), "a");
    ck_assert_str_eq(got(c, "a."), "a.b");
    ck_assert_str_eq(got(c, "a.b."), "a.b.c(");
    /* An implicit name can be registered once, with its own kind. */
    ck_assert_int_eq(kart_completer_add(c, "a.b", KART_COMPLETE_CALLABLE), 0);
    ck_assert_int_eq(kart_completer_add(c, "a.b", KART_COMPLETE_CALLABLE), -EEXIST);
    ck_assert_str_eq(got(c, "a."), "a.b(");
    /* Removing the last attribute takes the implicit "a" along, not the
     * registered "a.b". */
    ck_assert_int_eq(kart_completer_remove(c, "a.b.c"), 0);
    ck_assert_str_eq(got(c, "a."), "a.b(");
    ck_assert_int_eq(kart_completer_remove(c, "a.b"), 0);
    ck_assert_str_eq(got(c, ""), "");
    ck_assert_int_eq(kart_completer_remove(c, "a"), -ENOENT);
    kart_completer_free(c);
}
END_TEST

START_TEST(remove_takes_the_subtree)
{
    kart_completer *c = sample();
    ck_assert_int_eq(kart_completer_add(c, "pool.workers.count", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_remove(c, "pool.nothing"), -ENOENT);
    ck_assert_int_eq(kart_completer_remove(c, "nothing.at.all"), -ENOENT);
    ck_assert_int_eq(kart_completer_remove(c, "pool.workers.count.x"), -ENOENT);
    ck_assert_int_eq(kart_completer_remove(c, "pool"), 0);
    ck_assert_str_eq(got(c, "po"), "");
    ck_assert_str_eq(got(c, "pool."), "");
    ck_assert_str_eq(got(c, "pool.workers."), "");
    ck_assert_int_eq(kart_completer_remove(c, "pool.workers"), -ENOENT);
    ck_assert_int_eq(kart_completer_remove(c, "pool"), -ENOENT);
    /* And it can come back, empty. */
    ck_assert_int_eq(kart_completer_add(c, "pool", KART_COMPLETE_NAMESPACE), 0);
    ck_assert_str_eq(got(c, "pool."), "");
    /* An implicit name is there and can be removed, its subtree with it. */
    ck_assert_int_eq(kart_completer_remove(c, "loop"), 0);
    ck_assert_str_eq(got(c, "loop."), "");
    kart_completer_free(c);
}
END_TEST

START_TEST(keywords_register_and_remove)
{
    kart_completer *c = new_completer();
    ck_assert_int_eq(kart_completer_add_keyword(NULL, "x", NULL), -EINVAL);
    ck_assert_int_eq(kart_completer_add_keyword(c, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kart_completer_add_keyword(c, "a.b", NULL), -EINVAL);
    ck_assert_int_eq(kart_completer_add_keyword(c, "x", "1234567890123456"), -EINVAL);
    ck_assert_int_eq(kart_completer_add_keyword(c, "x", "\t"), -EINVAL);
    ck_assert_int_eq(kart_completer_add_keyword(c, "x", " \n"), -EINVAL);
    ck_assert_int_eq(kart_completer_add_keyword(c, "x", "\x7f"), -EINVAL);
    ck_assert_str_eq(got(c, ""), "");
    ck_assert_int_eq(kart_completer_add_keyword(c, "x", "123456789012345"), 0);
    ck_assert_int_eq(kart_completer_add_keyword(c, "with", " "), 0);
    ck_assert_int_eq(kart_completer_add_keyword(c, "finally", ":"), 0);
    ck_assert_int_eq(kart_completer_add_keyword(c, "True", ""), 0);
    ck_assert_str_eq(got(c, ""), "True|finally:|with |x123456789012345");
    ck_assert_int_eq(kart_completer_remove_keyword(c, "nope"), -ENOENT);
    ck_assert_int_eq(kart_completer_remove_keyword(c, NULL), -EINVAL);
    ck_assert_int_eq(kart_completer_remove_keyword(NULL, "x"), -EINVAL);
    ck_assert_int_eq(kart_completer_remove_keyword(c, "x"), 0);
    ck_assert_int_eq(kart_completer_remove_keyword(c, "x"), -ENOENT);
    ck_assert_str_eq(got(c, ""), "True|finally:|with ");
    /* Keywords are not names: a dotted text never reaches them. */
    ck_assert_str_eq(got(c, "with."), "");
    kart_completer_free(c);
}
END_TEST

/* ---- completing ---- */

START_TEST(top_level_names_and_keywords)
{
    kart_completer *c = sample();
    ck_assert_str_eq(got(c, "p"), "pass|pool|print(");
    ck_assert_str_eq(got(c, "pr"), "print(");
    ck_assert_str_eq(got(c, "i"), "import ");
    ck_assert_str_eq(got(c, "t"), "try:");
    ck_assert_str_eq(got(c, "print"), "print(");
    ck_assert_str_eq(got(c, "printer"), "");
    ck_assert_str_eq(got(c, "z"), "");
    kart_completer_free(c);
}
END_TEST

START_TEST(dotted_text_gives_full_dotted_candidates)
{
    kart_completer *c = sample();
    ck_assert_str_eq(got(c, "pool.wo"), "pool.workers");
    ck_assert_str_eq(got(c, "pool.workers"), "pool.workers");
    ck_assert_str_eq(got(c, "loop."), "loop.backend|loop.stats()");
    ck_assert_str_eq(got(c, "loop.s"), "loop.stats()");
    ck_assert_str_eq(got(c, "pool.r"), "pool.resize(");
    /* No such object, or attributes of a leaf: nothing. */
    ck_assert_str_eq(got(c, "nope."), "");
    ck_assert_str_eq(got(c, "nope.x"), "");
    ck_assert_str_eq(got(c, "pool.workers."), "");
    ck_assert_str_eq(got(c, "print."), "");
    kart_completer_free(c);
}
END_TEST

START_TEST(malformed_text_has_no_candidates)
{
    kart_completer *c = sample();
    const char *texts[] = {".",     ".p",    "..",         "pool..", "pool..w", "pool .w",
                           "po ol", "a b.c", "pool.w\x01", "\t",     " "};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        ck_assert_msg(strcmp(got(c, texts[i]), "") == 0, "text \"%s\"", texts[i]);
    /* A NUL inside the text is a byte like the others. */
    kart_completions *m;
    ck_assert_int_eq(kart_completer_complete(c, "po\0l", 4, &m), 0);
    kart_completions_free(m);
    ck_assert_int_eq(kart_completer_complete(c, "pool.\0", 6, &m), 0);
    kart_completions_free(m);
    kart_completer_free(c);
}
END_TEST

START_TEST(text_is_taken_by_length)
{
    kart_completer *c = sample();
    kart_completions *m = NULL;
    /* "pool.workers and more", 6 bytes of it: "pool.w". */
    ck_assert_int_eq(kart_completer_complete(c, "pool.workers and more", 6, &m), 1);
    ck_assert_str_eq(m->items[0], "pool.workers");
    kart_completions_free(m);
    /* NULL with length 0 is the empty text. */
    ck_assert_int_eq(kart_completer_complete(c, NULL, 0, &m), 6);
    kart_completions_free(m);
    ck_assert_int_eq(kart_completer_complete(c, NULL, 1, &m), -EINVAL);
    ck_assert_int_eq(kart_completer_complete(NULL, "p", 1, &m), -EINVAL);
    ck_assert_int_eq(kart_completer_complete(c, "p", 1, NULL), -EINVAL);
    kart_completer_free(c);
}
END_TEST

START_TEST(underscore_names_follow_rlcompleter)
{
    kart_completer *c = sample();
    /* Empty last component: '_' names hidden. */
    ck_assert_str_eq(got(c, "pool."), "pool.close()|pool.resize(|pool.workers");
    /* "_": '__' names hidden. */
    ck_assert_str_eq(got(c, "pool._"), "pool._queue");
    /* "__" and "_q": nothing hidden. */
    ck_assert_str_eq(got(c, "pool.__"), "pool.__doc__");
    ck_assert_str_eq(got(c, "pool._q"), "pool._queue");
    /* The same at the top level. */
    ck_assert_str_eq(got(c, ""), "import |loop|pass|pool|print(|try:");
    ck_assert_str_eq(got(c, "_"), "_secret");
    /* Only private names: rather all of them than nothing. Python's
     * second round for an empty component hides nothing, dunders
     * included. */
    kart_completer *p = new_completer();
    ck_assert_int_eq(kart_completer_add(p, "o._a", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_add(p, "o.__b__", KART_COMPLETE_CALLABLE), 0);
    ck_assert_str_eq(got(p, "o."), "o.__b__(|o._a");
    ck_assert_str_eq(got(p, "o._"), "o._a");
    ck_assert_int_eq(kart_completer_remove(p, "o._a"), 0);
    ck_assert_str_eq(got(p, "o."), "o.__b__(");
    ck_assert_str_eq(got(p, "o._"), "o.__b__(");
    /* A private component already typed does not hide what is below it. */
    ck_assert_int_eq(kart_completer_add(p, "_x.y", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_add(p, "_x._z", KART_COMPLETE_VALUE), 0);
    ck_assert_str_eq(got(p, "_x."), "_x.y");
    ck_assert_str_eq(got(p, ""), "o");
    kart_completer_free(p);
    kart_completer_free(c);
}
END_TEST

START_TEST(candidates_sorted_whole_and_distinct)
{
    kart_completer *c = new_completer();
    /* By name "a" < "a!", but as candidates "a!" < "a(". */
    ck_assert_int_eq(kart_completer_add(c, "a", KART_COMPLETE_CALLABLE), 0);
    ck_assert_int_eq(kart_completer_add(c, "a!", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_add(c, "B", KART_COMPLETE_VALUE), 0);
    ck_assert_str_eq(got(c, ""), "B|a!|a(");
    /* Two names that make the same candidate: it is offered once. */
    ck_assert_int_eq(kart_completer_add(c, "a(", KART_COMPLETE_VALUE), 0);
    ck_assert_str_eq(got(c, "a"), "a!|a(");
    kart_completer_free(c);
}
END_TEST

START_TEST(keyword_hides_a_name_spelled_the_same)
{
    kart_completer *c = new_completer();
    ck_assert_int_eq(kart_completer_add(c, "print", KART_COMPLETE_CALLABLE), 0);
    ck_assert_int_eq(kart_completer_add_keyword(c, "print", " "), 0);
    ck_assert_str_eq(got(c, "pr"), "print ");
    /* The name's attributes are still there. */
    ck_assert_int_eq(kart_completer_add(c, "print.x", KART_COMPLETE_VALUE), 0);
    ck_assert_str_eq(got(c, "print."), "print.x");
    ck_assert_int_eq(kart_completer_remove_keyword(c, "print"), 0);
    ck_assert_str_eq(got(c, "pr"), "print(");
    kart_completer_free(c);
}
END_TEST

START_TEST(deep_names)
{
    kart_completer *c = new_completer();
    char name[4096];
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        name[n++] = 'x';
        name[n++] = '.';
    }
    strcpy(name + n, "leaf");
    ck_assert_int_eq(kart_completer_add(c, name, KART_COMPLETE_CALLABLE), 0);
    strcpy(name + n, "le");
    kart_completions *m;
    ck_assert_int_eq(kart_completer_complete(c, name, strlen(name), &m), 1);
    ck_assert_int_eq(strncmp(m->items[0], name, n), 0);
    ck_assert_str_eq(m->items[0] + n, "leaf(");
    kart_completions_free(m);
    /* Freed whole, iteratively, by remove and by free. */
    ck_assert_int_eq(kart_completer_add(c, "x.x.y", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_remove(c, "x.x.x"), 0);
    ck_assert_str_eq(got(c, "x.x."), "x.x.y");
    ck_assert_int_eq(kart_completer_add(c, name, KART_COMPLETE_VALUE), 0);
    kart_completer_free(c);
}
END_TEST

/* ---- providers ---- */

typedef struct conns {
    int ids[8];
    int n;
    int calls;
    char path[64], prefix[64];
    int fail;     /* returned after adding (nonzero: a failure) */
    int bad_adds; /* sink_add results that were -EINVAL */
    kart_completer *c;
    int reentry[6]; /* what the completer's calls answered from inside */
} conns;

/* A provider's add: 0, or -ENOMEM under the fault table. */
static void offer(kart_complete_sink *sink, const char *name, kart_complete_kind kind)
{
    int r = kart_complete_sink_add(sink, name, kind);
    ck_assert_msg(r == 0 || r == -ENOMEM, "sink_add(%s): %d", name, r);
}

static int list_conns(void *arg, const char *path, const char *prefix, kart_complete_sink *sink)
{
    conns *s = arg;
    s->calls++;
    snprintf(s->path, sizeof(s->path), "%s", path);
    snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
    if (strcmp(path, "conns") == 0) {
        for (int i = 0; i < s->n; i++) {
            char id[16];
            snprintf(id, sizeof(id), "%d", s->ids[i]);
            offer(sink, id, KART_COMPLETE_NAMESPACE);
        }
        offer(sink, "_lock", KART_COMPLETE_VALUE);
        /* A repeat of a registered name: the registered one wins. */
        offer(sink, "count", KART_COMPLETE_CALLABLE);
    } else if (strncmp(path, "conns.", 6) == 0) {
        offer(sink, "peer", KART_COMPLETE_VALUE);
        offer(sink, "close", KART_COMPLETE_CALLABLE_NOARGS);
        offer(sink, "close", KART_COMPLETE_CALLABLE_NOARGS);
    }
    const char *bad[] = {"", "a.b", "a b", "x\n"};
    for (size_t i = 0; i < 4; i++)
        s->bad_adds += kart_complete_sink_add(sink, bad[i], KART_COMPLETE_VALUE) == -EINVAL;
    s->bad_adds += kart_complete_sink_add(sink, NULL, KART_COMPLETE_VALUE) == -EINVAL;
    s->bad_adds += kart_complete_sink_add(NULL, "x", KART_COMPLETE_VALUE) == -EINVAL;
    s->bad_adds += kart_complete_sink_add(sink, "x", (kart_complete_kind)9) == -EINVAL;
    if (s->c) {
        kart_completions *m = NULL;
        char *match = NULL;
        s->reentry[0] = kart_completer_add(s->c, "zzz", KART_COMPLETE_VALUE);
        s->reentry[1] = kart_completer_remove(s->c, "conns");
        s->reentry[2] = kart_completer_add_keyword(s->c, "kw", NULL);
        s->reentry[3] = kart_completer_remove_keyword(s->c, "kw");
        s->reentry[4] = kart_completer_complete(s->c, "c", 1, &m);
        s->reentry[5] = kart_completer_next(s->c, "c", 1, 0, &match);
        ck_assert_ptr_null(m);
        ck_assert_ptr_null(match);
    }
    return s->fail;
}

static kart_completer *with_conns(conns *s)
{
    kart_completer *c = new_completer();
    ck_assert_int_eq(kart_completer_add_provider(c, "conns", KART_COMPLETE_NAMESPACE, NULL, s),
                     -EINVAL);
    ck_assert_int_eq(
        kart_completer_add_provider(c, "conns", KART_COMPLETE_NAMESPACE, list_conns, s), 0);
    ck_assert_int_eq(kart_completer_add(c, "conns.count", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(s->calls, 0); /* never from the call that registers it */
    return c;
}

START_TEST(provider_lists_attributes_at_completion_time)
{
    conns s = {.ids = {7, 12, 70}, .n = 3};
    kart_completer *c = with_conns(&s);
    ck_assert_str_eq(got(c, "conns."), "conns.12|conns.7|conns.70|conns.count");
    ck_assert_int_eq(s.calls, 1);
    ck_assert_str_eq(s.path, "conns");
    ck_assert_str_eq(s.prefix, "");
    ck_assert_int_eq(s.bad_adds, 7);
    ck_assert_str_eq(got(c, "conns.7"), "conns.7|conns.70");
    ck_assert_str_eq(s.prefix, "7");
    ck_assert_str_eq(got(c, "conns._"), "conns._lock");
    /* The data changed: the next completion sees it. */
    s.n = 1;
    ck_assert_str_eq(got(c, "conns."), "conns.7|conns.count");
    /* Below the provider's name: it is asked about the path. */
    ck_assert_str_eq(got(c, "conns.7."), "conns.7.close()|conns.7.peer");
    ck_assert_str_eq(s.path, "conns.7");
    ck_assert_str_eq(got(c, "conns.7.p"), "conns.7.peer");
    ck_assert_str_eq(s.prefix, "p");
    /* Top-level completion does not ask it. */
    int calls = s.calls;
    ck_assert_str_eq(got(c, "co"), "conns");
    ck_assert_int_eq(s.calls, calls);
    kart_completer_free(c);
}
END_TEST

START_TEST(provider_failure_is_its_own_result)
{
    conns s = {.ids = {1, 2}, .n = 2, .fail = -EIO};
    kart_completer *c = with_conns(&s);
    kart_completions *m = NULL;
    /* Its candidates are dropped; the registered ones stay; the call
     * works. */
    ck_assert_int_eq(kart_completer_complete(c, "conns.", 6, &m), 1);
    ck_assert_str_eq(m->items[0], "conns.count");
    ck_assert_int_eq(m->provider_result, -EIO);
    kart_completions_free(m);
    s.fail = 3;
    ck_assert_int_eq(kart_completer_complete(c, "conns.9.", 8, &m), 0);
    ck_assert_int_eq(m->provider_result, 3);
    kart_completions_free(m);
    s.fail = 0;
    ck_assert_int_eq(kart_completer_complete(c, "conns.", 6, &m), 3);
    ck_assert_int_eq(m->provider_result, 0);
    kart_completions_free(m);
    kart_completer_free(c);
}
END_TEST

START_TEST(provider_cannot_reenter)
{
    conns s = {.n = 0};
    kart_completer *c = with_conns(&s);
    s.c = c;
    ck_assert_str_eq(got(c, "conns."), "conns.count");
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(s.reentry[i], -EBUSY);
    /* And nothing changed. */
    ck_assert_str_eq(got(c, "z"), "");
    s.c = NULL;
    ck_assert_int_eq(kart_completer_add(c, "zzz", KART_COMPLETE_VALUE), 0);
    kart_completer_free(c);
}
END_TEST

static int list_inner(void *arg, const char *path, const char *prefix, kart_complete_sink *sink)
{
    int *calls = arg;
    (*calls)++;
    ck_assert_str_eq(path, "conns.7.stats");
    return kart_complete_sink_add(sink, "bytes", KART_COMPLETE_VALUE);
}

START_TEST(nearest_provider_takes_its_subtree)
{
    conns s = {.ids = {7}, .n = 1};
    kart_completer *c = with_conns(&s);
    int inner = 0;
    ck_assert_int_eq(kart_completer_add_provider(c, "conns.7.stats", KART_COMPLETE_NAMESPACE,
                                                 list_inner, &inner),
                     0);
    ck_assert_str_eq(got(c, "conns.7.stats."), "conns.7.stats.bytes");
    ck_assert_int_eq(inner, 1);
    /* conns.7 is registered now (implicit, under conns): the outer
     * provider is still asked about it, and the two lists merge. */
    ck_assert_str_eq(got(c, "conns.7."), "conns.7.close()|conns.7.peer|conns.7.stats");
    /* A second provider on a registered name is -EEXIST; on an implicit
     * one it is taken. */
    ck_assert_int_eq(
        kart_completer_add_provider(c, "conns", KART_COMPLETE_NAMESPACE, list_conns, &s), -EEXIST);
    ck_assert_int_eq(
        kart_completer_add_provider(c, "conns.7", KART_COMPLETE_NAMESPACE, list_inner, &inner), 0);
    /* Removing the provider's name removes the provider. */
    ck_assert_int_eq(kart_completer_remove(c, "conns"), 0);
    int calls = s.calls;
    ck_assert_str_eq(got(c, "conns."), "");
    ck_assert_str_eq(got(c, "conns.7.stats."), "");
    ck_assert_int_eq(s.calls, calls);
    ck_assert_int_eq(inner, 1);
    kart_completer_free(c);
}
END_TEST

/* ---- complete(text, state) ---- */

START_TEST(next_follows_pythons_protocol)
{
    kart_completer *c = sample();
    char *m = (char *)"unset";
    const char *want[] = {"pass", "pool", "print("};
    for (size_t state = 0; state < 3; state++) {
        ck_assert_int_eq(kart_completer_next(c, "p", 1, state, &m), 1);
        ck_assert_str_eq(m, want[state]);
        free(m);
    }
    ck_assert_int_eq(kart_completer_next(c, "p", 1, 3, &m), 0);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(kart_completer_next(c, "p", 1, 99, &m), 0);
    /* A change between states is seen at the next state. */
    ck_assert_int_eq(kart_completer_next(c, "p", 1, 0, &m), 1);
    free(m);
    ck_assert_int_eq(kart_completer_add(c, "pa", KART_COMPLETE_VALUE), 0);
    ck_assert_int_eq(kart_completer_next(c, "p", 1, 1, &m), 1);
    ck_assert_str_eq(m, "pass");
    free(m);
    /* Another text at state > 0 is completed afresh. */
    ck_assert_int_eq(kart_completer_next(c, "loop.", 5, 1, &m), 1);
    ck_assert_str_eq(m, "loop.stats()");
    free(m);
    ck_assert_int_eq(kart_completer_next(c, NULL, 0, 0, &m), 1);
    ck_assert_str_eq(m, "import ");
    free(m);
    ck_assert_int_eq(kart_completer_next(NULL, "p", 1, 0, &m), -EINVAL);
    ck_assert_int_eq(kart_completer_next(c, "p", 1, 0, NULL), -EINVAL);
    ck_assert_int_eq(kart_completer_next(c, NULL, 1, 0, &m), -EINVAL);
    kart_completer_free(c);
}
END_TEST

/* ---- out of memory ---- */

/* Runs op with the nth allocation failing, for n = 1, 2, ... until it
 * works: each failure must be -ENOMEM and leave the completer as before
 * (compared through a listing), and the run must end. */
typedef int (*op_fn)(kart_completer *c, void *arg);

static void walk_enomem(kart_completer *c, op_fn op, void *arg, const char *const *probes)
{
    char before[8][1024];
    for (int i = 0; probes[i]; i++)
        snprintf(before[i], sizeof(before[i]), "%s", got(c, probes[i]));
    for (unsigned nth = 1;; nth++) {
        ck_assert_uint_lt(nth, 100);
        kart__fault_reset();
        ck_assert_int_eq(kart__fault_fail(KART__SYS_malloc, nth, 1, ENOMEM), 0);
        int r = op(c, arg);
        uint64_t fired = kart__fault_fired(KART__SYS_malloc);
        kart__fault_reset();
        if (fired == 0) {
            ck_assert_int_ge(r, 0);
            return;
        }
        ck_assert_msg(r == -ENOMEM, "allocation %u failed: %d", nth, r);
        for (int i = 0; probes[i]; i++)
            ck_assert_str_eq(got(c, probes[i]), before[i]);
    }
}

static int op_add_deep(kart_completer *c, void *arg)
{
    return kart_completer_add(c, "pool.new.deeper.leaf", KART_COMPLETE_VALUE);
}

static int op_add_keyword(kart_completer *c, void *arg)
{
    return kart_completer_add_keyword(c, "raise", " ");
}

static int op_complete(kart_completer *c, void *arg)
{
    kart_completions *m = NULL;
    int r = kart_completer_complete(c, arg, strlen(arg), &m);
    if (r < 0)
        ck_assert_ptr_null(m);
    kart_completions_free(m);
    return r;
}

static int op_next(kart_completer *c, void *arg)
{
    char *m = NULL;
    int r = kart_completer_next(c, arg, strlen(arg), 1, &m);
    free(m);
    return r;
}

START_TEST(out_of_memory_everywhere)
{
    kart_completer *c = NULL;
    kart__fault_reset();
    ck_assert_int_eq(kart__fault_fail(KART__SYS_malloc, 1, 1, ENOMEM), 0);
    ck_assert_int_eq(kart_completer_create(&c), -ENOMEM);
    ck_assert_ptr_null(c);
    kart__fault_reset();
    c = sample();
    conns s = {.ids = {1, 2, 3, 4, 5, 6, 7, 8}, .n = 8};
    ck_assert_int_eq(
        kart_completer_add_provider(c, "conns", KART_COMPLETE_NAMESPACE, list_conns, &s), 0);
    const char *probes[] = {"", "pool.", "pool.new.deeper.", "conns.", NULL};
    walk_enomem(c, op_add_deep, NULL, probes);
    ck_assert_str_eq(got(c, "pool.new.deeper."), "pool.new.deeper.leaf");
    walk_enomem(c, op_add_keyword, NULL, probes);
    ck_assert_str_eq(got(c, "r"), "raise ");
    walk_enomem(c, op_complete, "", probes);
    walk_enomem(c, op_complete, "conns.", probes);
    walk_enomem(c, op_complete, "pool._", probes);
    walk_enomem(c, op_next, "p", probes);
    walk_enomem(c, op_next, "conns.", probes);
    /* Many registrations, so that the arrays grow under the faults. */
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof(name), "pool.n%02d", i);
        ck_assert_int_eq(kart_completer_add(c, name, KART_COMPLETE_VALUE), 0);
        snprintf(name, sizeof(name), "kw%02d", i);
        ck_assert_int_eq(kart_completer_add_keyword(c, name, NULL), 0);
    }
    walk_enomem(c, op_complete, "pool.", probes);
    walk_enomem(c, op_complete, "", probes);
    kart_completer_free(c);

    /* Full arrays, so that the first allocation is their growth: four
     * top-level names (the first array holds four), eight keywords. */
    c = new_completer();
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(kart_completer_add(c, names[i], KART_COMPLETE_VALUE), 0);
    for (int i = 0; i < 8; i++) {
        char kw[8];
        snprintf(kw, sizeof(kw), "k%d", i);
        ck_assert_int_eq(kart_completer_add_keyword(c, kw, NULL), 0);
    }
    const char *probes2[] = {"", "pool.", "pool.new.", "pool.new.deeper.", NULL};
    walk_enomem(c, op_add_deep, NULL, probes2);
    ck_assert_str_eq(got(c, "pool.new.deeper."), "pool.new.deeper.leaf");
    walk_enomem(c, op_add_keyword, NULL, probes2);
    kart_completer_free(c);
}
END_TEST

static int sink_fill(void *arg, const char *path, const char *prefix, kart_complete_sink *sink)
{
    int *res = arg;
    for (int i = 0; i < 200; i++) {
        char id[32];
        snprintf(id, sizeof(id), "conn_with_a_long_name_%03d", i);
        int r = kart_complete_sink_add(sink, id, KART_COMPLETE_VALUE);
        if (r < 0) {
            *res = r;
            return 0; /* it says it worked: the call fails all the same */
        }
    }
    return 0;
}

START_TEST(sink_out_of_memory_fails_the_completion)
{
    kart_completer *c = new_completer();
    int res = 0;
    ck_assert_int_eq(
        kart_completer_add_provider(c, "conns", KART_COMPLETE_NAMESPACE, sink_fill, &res), 0);
    int allocs_seen = 0;
    for (unsigned nth = 1;; nth++) {
        ck_assert_uint_lt(nth, 100);
        res = 0;
        kart__fault_reset();
        ck_assert_int_eq(kart__fault_fail(KART__SYS_malloc, nth, 1, ENOMEM), 0);
        kart_completions *m = NULL;
        int r = kart_completer_complete(c, "conns.", 6, &m);
        uint64_t fired = kart__fault_fired(KART__SYS_malloc);
        kart__fault_reset();
        if (!fired) {
            ck_assert_int_eq(r, 200);
            kart_completions_free(m);
            break;
        }
        ck_assert_int_eq(r, -ENOMEM);
        ck_assert_ptr_null(m);
        allocs_seen += res == -ENOMEM;
    }
    ck_assert_int_gt(allocs_seen, 2); /* the arena and the list both grew */
    kart_completer_free(c);
}
END_TEST

/* ---- against a brute-force model ---- */

#define MODEL_MAX 400

typedef struct model {
    char names[MODEL_MAX][24];
    kart_complete_kind kinds[MODEL_MAX];
    int n;
    char kws[16][8];
    char sfx[16][4];
    int nkw;
} model;

static const char *const kind_sfx[] = {"", "(", "()", ""};

static bool model_has(const model *md, const char *name)
{
    for (int i = 0; i < md->n; i++)
        if (strcmp(md->names[i], name) == 0)
            return true;
    return false;
}

/* Whether name exists, registered or as the parent of a registered one;
 * *kind gets its kind (implicit: a namespace). */
static bool model_exists(const model *md, const char *name, size_t len, kart_complete_kind *kind)
{
    bool found = false;
    for (int i = 0; i < md->n; i++) {
        const char *r = md->names[i];
        if (strlen(r) == len && memcmp(r, name, len) == 0) {
            *kind = md->kinds[i];
            return true;
        }
        if (strlen(r) > len && memcmp(r, name, len) == 0 && r[len] == '.') {
            *kind = KART_COMPLETE_NAMESPACE;
            found = true;
        }
    }
    return found;
}

static int str_qcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The candidates, computed the slow way from the rules. */
static void model_complete(const model *md, const char *text, char *out, size_t cap)
{
    static char store[2 * MODEL_MAX + 16][64];
    char *list[2 * MODEL_MAX + 16];
    bool is_kw[2 * MODEL_MAX + 16];
    char names[2 * MODEL_MAX + 16][32];
    int n = 0;
    const char *dot = strrchr(text, '.');
    size_t elen = dot ? (size_t)(dot - text) : 0;
    const char *attr = dot ? dot + 1 : text;
    kart_complete_kind k;
    if (dot && !model_exists(md, text, elen, &k)) {
        out[0] = '\0';
        return;
    }
    /* Every attribute of the object: each registered name one level
     * below it, or the component one level below on the way to one. */
    for (int i = 0; i < md->n; i++) {
        const char *r = md->names[i];
        const char *rest;
        if (dot) {
            if (strncmp(r, text, elen) != 0 || r[elen] != '.')
                continue;
            rest = r + elen + 1;
        } else {
            rest = r;
        }
        size_t clen = strcspn(rest, ".");
        char comp[32];
        snprintf(comp, sizeof(comp), "%.*s", (int)clen, rest);
        if (strncmp(comp, attr, strlen(attr)) != 0)
            continue;
        bool dup = false;
        for (int j = 0; j < n; j++)
            dup |= strcmp(names[j], comp) == 0;
        if (dup)
            continue;
        snprintf(names[n], sizeof(names[n]), "%s", comp);
        is_kw[n] = false;
        n++;
    }
    if (!dot) {
        for (int i = 0; i < md->nkw; i++) {
            if (strncmp(md->kws[i], attr, strlen(attr)) != 0)
                continue;
            int j = 0;
            while (j < n && strcmp(names[j], md->kws[i]) != 0)
                j++;
            snprintf(names[j], sizeof(names[j]), "%s", md->kws[i]);
            is_kw[j] = true;
            if (j == n)
                n++;
        }
    }
    /* The '_' rule. */
    int mode = attr[0] == '\0' ? 1 : strcmp(attr, "_") == 0 ? 2 : 0;
    int visible = 0;
    for (int i = 0; i < n; i++)
        visible += !(mode == 1 ? names[i][0] == '_' : mode == 2 ? names[i][1] == '_' : false);
    if (!visible)
        mode = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (mode == 1 ? names[i][0] == '_' : mode == 2 ? names[i][1] == '_' : false)
            continue;
        const char *sfx;
        if (is_kw[i]) {
            int w = 0;
            while (strcmp(md->kws[w], names[i]) != 0)
                w++;
            sfx = md->sfx[w];
        } else {
            char full[64];
            int fl =
                snprintf(full, sizeof(full), "%.*s%s%s", (int)elen, text, dot ? "." : "", names[i]);
            ck_assert_int_lt(fl, (int)sizeof(full));
            model_exists(md, full, strlen(full), &k);
            sfx = kind_sfx[k];
        }
        int sl = snprintf(store[m], sizeof(store[m]), "%.*s%s%s%s", (int)elen, text, dot ? "." : "",
                          names[i], sfx);
        ck_assert_int_lt(sl, (int)sizeof(store[m]));
        list[m] = store[m];
        m++;
    }
    qsort(list, m, sizeof(list[0]), str_qcmp);
    out[0] = '\0';
    for (int i = 0; i < m; i++) {
        if (i && strcmp(list[i], list[i - 1]) == 0)
            continue;
        if (out[0])
            strncat(out, "|", cap - strlen(out) - 1);
        strncat(out, list[i], cap - strlen(out) - 1);
    }
}

static void random_component(unsigned *seed, char *out)
{
    static const char *const parts[] = {"a", "b", "ab", "_", "__", "_a", "ba", "a_", "c!", "c"};
    snprintf(out, 8, "%s", parts[rand_r(seed) % 10]);
}

START_TEST(matches_a_brute_force_model)
{
    unsigned seed = 1234;
    for (int round = 0; round < 20; round++) {
        model md = {0};
        kart_completer *c = new_completer();
        for (int i = 0; i < 300; i++) {
            char name[24] = "";
            int depth = 1 + rand_r(&seed) % 3;
            for (int d = 0; d < depth; d++) {
                char comp[8];
                random_component(&seed, comp);
                if (d)
                    strcat(name, ".");
                strcat(name, comp);
            }
            kart_complete_kind kind = (kart_complete_kind)(rand_r(&seed) % 4);
            int r = kart_completer_add(c, name, kind);
            if (model_has(&md, name)) {
                ck_assert_int_eq(r, -EEXIST);
            } else {
                ck_assert_int_eq(r, 0);
                snprintf(md.names[md.n], sizeof(md.names[0]), "%s", name);
                md.kinds[md.n++] = kind;
            }
            if (rand_r(&seed) % 8 == 0 && md.n > 0) {
                /* Remove a registered name and what is below it. */
                int v = rand_r(&seed) % md.n;
                char gone[24];
                snprintf(gone, sizeof(gone), "%s", md.names[v]);
                ck_assert_int_eq(kart_completer_remove(c, gone), 0);
                size_t gl = strlen(gone);
                int w = 0;
                for (int j = 0; j < md.n; j++) {
                    const char *r2 = md.names[j];
                    if (strncmp(r2, gone, gl) == 0 && (r2[gl] == '\0' || r2[gl] == '.'))
                        continue;
                    if (w != j) {
                        memcpy(md.names[w], md.names[j], sizeof(md.names[0]));
                        md.kinds[w] = md.kinds[j];
                    }
                    w++;
                }
                md.n = w;
            }
        }
        for (int i = 0; i < 6; i++) {
            char w[8];
            random_component(&seed, w);
            static const char *const sfx[] = {"", " ", ":"};
            const char *s = sfx[rand_r(&seed) % 3];
            bool dup = false;
            for (int j = 0; j < md.nkw; j++)
                dup |= strcmp(md.kws[j], w) == 0;
            ck_assert_int_eq(kart_completer_add_keyword(c, w, s), dup ? -EEXIST : 0);
            if (!dup) {
                snprintf(md.kws[md.nkw], sizeof(md.kws[0]), "%s", w);
                snprintf(md.sfx[md.nkw++], sizeof(md.sfx[0]), "%s", s);
            }
        }
        /* Every text of up to three components drawn from the parts,
         * each cut at every length. */
        for (int t = 0; t < 300; t++) {
            char text[32] = "";
            int depth = 1 + rand_r(&seed) % 3;
            for (int d = 0; d < depth; d++) {
                char comp[8];
                random_component(&seed, comp);
                if (d)
                    strcat(text, ".");
                strcat(text, comp);
            }
            for (size_t cut = 0; cut <= strlen(text); cut++) {
                char part[32];
                snprintf(part, sizeof(part), "%.*s", (int)cut, text);
                static char want[16384];
                model_complete(&md, part, want, sizeof(want));
                ck_assert_msg(strcmp(got(c, part), want) == 0,
                              "text \"%s\": got \"%s\", want \"%s\"", part, got(c, part), want);
            }
        }
        kart_completer_free(c);
    }
}
END_TEST

/* ---- speed ---- */

/* The thread's CPU time: what a completion costs, without the waits for
 * a core on a busy machine. */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The best of 5 runs of rounds completions of text: ns per completion. */
static double best_ns(kart_completer *c, const char *text, int rounds, int want)
{
    double best = 1e18;
    for (int rep = 0; rep < 5; rep++) {
        /* No ck_assert in the loop: each one writes to Check's pipe. */
        int bad = 0;
        int64_t t0 = cpu_ns();
        for (int r = 0; r < rounds; r++) {
            kart_completions *m = NULL; /* written only on success */
            bad += kart_completer_complete(c, text, strlen(text), &m) != want;
            kart_completions_free(m);
        }
        double t = (double)(cpu_ns() - t0) / rounds;
        ck_assert_int_eq(bad, 0);
        if (t < best)
            best = t;
    }
    return best;
}

/* A flat namespace of n names "name00000" ..., registered in a scrambled
 * order. */
static kart_completer *flat(int n)
{
    kart_completer *c = new_completer();
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "name%05d", (int)(((unsigned)i * 7919u) % (unsigned)n));
        ck_assert_int_eq(kart_completer_add(c, name, KART_COMPLETE_VALUE), 0);
    }
    return c;
}

START_TEST(completion_over_10000_names_is_fast)
{
    /* 10,000 names: 100 objects of 99 attributes each, and the 100
     * objects, registered in a scrambled order. */
    enum { N = 10000 };
    kart_completer *c = new_completer();
    int bad = 0;
    int64_t t0 = cpu_ns();
    for (int i = 0; i < N; i++) {
        int k = (int)(((unsigned)i * 7919u) % N);
        char name[32];
        if (k % 100 == 0)
            snprintf(name, sizeof(name), "object%02d", k / 100);
        else
            snprintf(name, sizeof(name), "object%02d.attr%02d", k / 100, k % 100);
        bad += kart_completer_add(c, name, KART_COMPLETE_CALLABLE) != 0;
    }
    int64_t t_add = cpu_ns() - t0;
    ck_assert_int_eq(bad, 0);
    const char *texts[] = {"object42.attr42", "object42.attr4", "object4", "object42.", "objectx"};
    int want[] = {1, 10, 10, 99, 0};
    printf("complete: %d names registered in %.1f ms of CPU\n", N, t_add / 1e6);
    for (int i = 0; i < 5; i++)
        printf("complete: '%s', %d candidates: %.0f ns\n", texts[i], want[i],
               best_ns(c, texts[i], 2000, want[i]));
    kart_completer_free(c);

    /* The cost of a completion is that of its candidates, not of the
     * namespace: one candidate among 10,000 names costs about what it
     * does among 100 (a log factor). A completion that scanned the names
     * would be about 100 times slower; the bound leaves room for noise. */
    kart_completer *small = flat(100), *big = flat(N);
    double t_small = best_ns(small, "name00042", 5000, 1);
    double t_big = best_ns(big, "name00042", 5000, 1);
    printf("complete: one candidate among 100 names %.0f ns, among %d %.0f ns\n", t_small, N,
           t_big);
    ck_assert_msg(t_big < 10 * t_small, "%.0f ns among %d names, %.0f ns among 100", t_big, N,
                  t_small);
    kart_completer_free(small);
    kart_completer_free(big);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("complete");
    TCase *tc = tcase_create("register");
    tcase_add_test(tc, create_and_free_null);
    tcase_add_test(tc, add_rejects_bad_names);
    tcase_add_test(tc, names_take_utf8_and_punctuation);
    tcase_add_test(tc, duplicate_is_eexist);
    tcase_add_test(tc, implicit_parents_come_and_go);
    tcase_add_test(tc, remove_takes_the_subtree);
    tcase_add_test(tc, keywords_register_and_remove);
    suite_add_tcase(s, tc);

    tc = tcase_create("complete");
    tcase_add_test(tc, top_level_names_and_keywords);
    tcase_add_test(tc, dotted_text_gives_full_dotted_candidates);
    tcase_add_test(tc, malformed_text_has_no_candidates);
    tcase_add_test(tc, text_is_taken_by_length);
    tcase_add_test(tc, underscore_names_follow_rlcompleter);
    tcase_add_test(tc, candidates_sorted_whole_and_distinct);
    tcase_add_test(tc, keyword_hides_a_name_spelled_the_same);
    tcase_add_test(tc, deep_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("provider");
    tcase_add_test(tc, provider_lists_attributes_at_completion_time);
    tcase_add_test(tc, provider_failure_is_its_own_result);
    tcase_add_test(tc, provider_cannot_reenter);
    tcase_add_test(tc, nearest_provider_takes_its_subtree);
    suite_add_tcase(s, tc);

    tc = tcase_create("next");
    tcase_add_test(tc, next_follows_pythons_protocol);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_add_test(tc, out_of_memory_everywhere);
    tcase_add_test(tc, sink_out_of_memory_fails_the_completion);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, matches_a_brute_force_model);
    tcase_add_test(tc, completion_over_10000_names_is_fast);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

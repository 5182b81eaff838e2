// train/bakeoff_recipe.c — the bake-off recipe (train/bakeoff.h): YAML read by libyaml's event parser into a small
// tree (size, depth and node limits, aliases refused), then checked key by key. Every message starts with
// FILE:LINE:COLUMN and names the key and what was expected.
//
// The training recipes' reader (train/recipe.c) applies keys straight onto hn_train_config from its table; the
// bake-off's keys are nested per method and checked against the build's method list, so they are read from a tree.
#include "train/bakeoff_impl.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define RECIPE_MAX_BYTES (1u << 20) // a recipe is a page of settings
#define RECIPE_MAX_DEPTH 6          // options: {lora: {rank: 8}} needs 3
#define RECIPE_MAX_NODES 20000
#define MAX_METHODS 32

typedef enum { Y_SCALAR, Y_LIST, Y_MAP } ykind;

typedef struct ynode {
    ykind kind;
    char *text;         // scalar: the value (null scalars: "")
    bool null;          // a plain empty, ~ or null
    int line, col;      // 1-based
    struct ynode *kids; // list: the items; map: key, value, key, value, ...
    int n, cap;
} ynode;

typedef struct {
    yaml_parser_t p;
    const char *name, *dir;
    int nodes;
} reader;

static void ynode_free(ynode *y) {
    for (int i = 0; i < y->n; i++) ynode_free(&y->kids[i]);
    free(y->kids), free(y->text);
}

static hn_status next(reader *r, yaml_event_t *ev) {
    if (yaml_parser_parse(&r->p, ev)) return HN_OK;
    yaml_mark_t m = r->p.problem_mark;
    if (r->p.error == YAML_MEMORY_ERROR) return hn_fail(HN_ERR_NOMEM, "%s: out of memory reading YAML", r->name);
    return hn_fail(HN_ERR_FORMAT, "%s:%zu:%zu: YAML syntax error: %s%s%s", r->name, m.line + 1, m.column + 1,
                   r->p.problem ? r->p.problem : "malformed", r->p.context ? " " : "",
                   r->p.context ? r->p.context : "");
}

// The node that begins with ev (consumed here); its children are read to the matching end event.
static hn_status read_node(reader *r, yaml_event_t *ev, ynode *y, int depth) {
    memset(y, 0, sizeof *y);
    y->line = (int)ev->start_mark.line + 1, y->col = (int)ev->start_mark.column + 1;
    if (++r->nodes > RECIPE_MAX_NODES)
        return hn_fail(HN_ERR_RANGE, "%s:%d:%d: more than %d values: a recipe holds settings, not data", r->name,
                       y->line, y->col, RECIPE_MAX_NODES);
    if (ev->type == YAML_ALIAS_EVENT)
        return hn_fail(HN_ERR_FORMAT, "%s:%d:%d: YAML aliases (*%s) are not supported in recipes", r->name, y->line,
                       y->col, (const char *)ev->data.alias.anchor);
    if (ev->type == YAML_SCALAR_EVENT) {
        const char *v = (const char *)ev->data.scalar.value;
        y->kind = Y_SCALAR;
        y->null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                  (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"));
        y->text = strdup(y->null ? "" : v);
        return y->text ? HN_OK : hn_fail(HN_ERR_NOMEM, "%s: out of memory", r->name);
    }
    bool map = ev->type == YAML_MAPPING_START_EVENT;
    y->kind = map ? Y_MAP : Y_LIST;
    if (depth >= RECIPE_MAX_DEPTH)
        return hn_fail(HN_ERR_FORMAT, "%s:%d:%d: values nested deeper than any key (%d levels)", r->name, y->line,
                       y->col, RECIPE_MAX_DEPTH);
    for (;;) {
        yaml_event_t e;
        hn_status s = next(r, &e);
        if (s) return s;
        if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            return HN_OK;
        }
        if (y->n == y->cap) {
            int cap = y->cap ? 2 * y->cap : 8;
            ynode *k = realloc(y->kids, (size_t)cap * sizeof *k);
            if (!k) {
                yaml_event_delete(&e);
                return hn_fail(HN_ERR_NOMEM, "%s: out of memory", r->name);
            }
            y->kids = k, y->cap = cap;
        }
        ynode *kid = &y->kids[y->n++];
        if (map && y->n % 2 == 1 && e.type != YAML_SCALAR_EVENT && e.type != YAML_ALIAS_EVENT) {
            memset(kid, 0, sizeof *kid);
            s = hn_fail(HN_ERR_FORMAT, "%s:%zu:%zu: a key must be a plain name, got %s", r->name, e.start_mark.line + 1,
                        e.start_mark.column + 1, e.type == YAML_SEQUENCE_START_EVENT ? "a list" : "a mapping");
        } else {
            s = read_node(r, &e, kid, depth + 1);
        }
        yaml_event_delete(&e);
        if (s) return s;
    }
}

static hn_status read_tree(reader *r, ynode *root) {
    yaml_event_t ev;
    hn_status s;
    memset(root, 0, sizeof *root);
    if ((s = next(r, &ev))) return s; // stream start
    yaml_event_delete(&ev);
    if ((s = next(r, &ev))) return s;
    bool empty = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (empty)
        return hn_fail(HN_ERR_FORMAT, "%s:1:1: the recipe is empty (expected a mapping of keys to values)", r->name);
    if ((s = next(r, &ev))) return s;
    if (ev.type != YAML_MAPPING_START_EVENT) {
        s = hn_fail(HN_ERR_FORMAT, "%s:%zu:%zu: the recipe must be a mapping of keys to values (model: ..., data: ...)",
                    r->name, ev.start_mark.line + 1, ev.start_mark.column + 1);
        yaml_event_delete(&ev);
        return s;
    }
    s = read_node(r, &ev, root, 1);
    yaml_event_delete(&ev);
    if (s) return s;
    if ((s = next(r, &ev))) return s; // document end
    yaml_event_delete(&ev);
    if ((s = next(r, &ev))) return s;
    bool more = ev.type == YAML_DOCUMENT_START_EVENT;
    yaml_mark_t m = ev.start_mark;
    yaml_event_delete(&ev);
    if (more)
        return hn_fail(HN_ERR_FORMAT, "%s:%zu:%zu: a second YAML document ('---'): a recipe is one mapping", r->name,
                       m.line + 1, m.column + 1);
    return HN_OK;
}

// ---- typed values

#define BAD(y, key, ...) bad(r, y, key, __VA_ARGS__)

static hn_status bad(const reader *r, const ynode *y, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static hn_status bad(const reader *r, const ynode *y, const char *key, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hn_fail(HN_ERR_ARG, "%s:%d:%d: %s: %s", r->name, y->line, y->col, key, msg);
}

static const char *kind_name(const ynode *y) {
    return y->kind == Y_MAP ? "a mapping" : y->kind == Y_LIST ? "a list" : y->null ? "nothing" : "a value";
}

static hn_status get_str(const reader *r, const ynode *y, const char *key, const char **out) {
    if (y->kind != Y_SCALAR || y->null || !*y->text) return BAD(y, key, "expected a text value, got %s", kind_name(y));
    *out = y->text;
    return HN_OK;
}

static hn_status get_int(const reader *r, const ynode *y, const char *key, int lo, int *out) {
    const char *t;
    if (get_str(r, y, key, &t)) return BAD(y, key, "expected a whole number >= %d, got %s", lo, kind_name(y));
    char *end;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (*end || errno || v < lo || v > 1000000000)
        return BAD(y, key, "expected a whole number >= %d, got '%.80s'", lo, t);
    *out = (int)v;
    return HN_OK;
}

static hn_status get_double(const reader *r, const ynode *y, const char *key, double lo, double hi, double *out) {
    const char *t;
    if (get_str(r, y, key, &t)) return BAD(y, key, "expected a number in [%g, %g], got %s", lo, hi, kind_name(y));
    char *end;
    double v = strtod(t, &end);
    if (*end || !isfinite(v) || v < lo || v > hi)
        return BAD(y, key, "expected a number in [%g, %g], got '%.80s'", lo, hi, t);
    *out = v;
    return HN_OK;
}

static hn_status get_bool(const reader *r, const ynode *y, const char *key, bool *out) {
    const char *t = y->kind == Y_SCALAR ? y->text : "";
    const char *yes[] = {"true", "True", "TRUE", "yes", "Yes", "on"},
               *no[] = {"false", "False", "FALSE", "no", "No", "off"};
    for (int i = 0; i < 6; i++) {
        if (!strcmp(t, yes[i])) return *out = true, HN_OK;
        if (!strcmp(t, no[i])) return *out = false, HN_OK;
    }
    return BAD(y, key, "expected true or false, got %s%.80s%s", y->kind == Y_SCALAR && *t ? "'" : "",
               y->kind == Y_SCALAR && *t ? t : kind_name(y), y->kind == Y_SCALAR && *t ? "'" : "");
}

// A list of text values, or one value standing for a list of one; *items borrowed from the tree.
static hn_status get_list(const reader *r, const ynode *y, const char *key, const ynode **items, int *n) {
    if (y->kind == Y_SCALAR && !y->null) return *items = y, *n = 1, HN_OK;
    if (y->kind != Y_LIST || !y->n)
        return BAD(y, key, "expected a list of values, got %s", y->kind == Y_LIST ? "an empty list" : kind_name(y));
    for (int i = 0; i < y->n; i++)
        if (y->kids[i].kind != Y_SCALAR || y->kids[i].null)
            return BAD(&y->kids[i], key, "a list item must be a text value, got %s", kind_name(&y->kids[i]));
    *items = y->kids, *n = y->n;
    return HN_OK;
}

// "DIR/p" unless p is absolute.
static char *beside(const char *dir, const char *p) {
    size_t n = strlen(dir) + strlen(p) + 2;
    char *s = malloc(n);
    if (!s) return NULL;
    if (p[0] == '/') snprintf(s, n, "%s", p);
    else snprintf(s, n, "%s/%s", dir, p);
    return s;
}

static hn_status get_paths(const reader *r, const ynode *y, const char *key, char ***out, int *n) {
    const ynode *items;
    int k;
    hn_status s = get_list(r, y, key, &items, &k);
    if (s) return s;
    if (!(*out = calloc((size_t)k, sizeof **out))) return HN_ERR_NOMEM;
    *n = k;
    for (int i = 0; i < k; i++)
        if (!((*out)[i] = beside(r->dir, items[i].text))) return HN_ERR_NOMEM;
    return HN_OK;
}

// A model beside the recipe (a path, a .gguf, or a file or folder that exists there) is made absolute; otherwise
// the value is a name for `hone pull`.
static char *model_path(const reader *r, const char *v) {
    size_t n = strlen(v);
    bool path = strchr(v, '/') || (n > 5 && !strcmp(v + n - 5, ".gguf"));
    char *p = beside(r->dir, v);
    struct stat st;
    if (p && !path && stat(p, &st) != 0) {
        free(p);
        return strdup(v);
    }
    return p;
}

// ---- the method options

typedef enum { O_INT, O_FLOAT, O_BOOL } otype;
static const struct {
    const char *key;
    otype type;
    size_t off;
    double lo;
} opt_keys[] = {
    {"epochs", O_INT, offsetof(hn_cls_options, epochs), 0},
    {"lr", O_FLOAT, offsetof(hn_cls_options, lr), 0},
    {"batch", O_INT, offsetof(hn_cls_options, batch), 1},
    {"weight_decay", O_FLOAT, offsetof(hn_cls_options, weight_decay), 0},
    {"shots", O_INT, offsetof(hn_cls_options, shots), 0},
    {"nearest", O_BOOL, offsetof(hn_cls_options, nearest), 0},
    {"rank", O_INT, offsetof(hn_cls_options, lora_r), 1},
    {"alpha", O_FLOAT, offsetof(hn_cls_options, lora_alpha), 0},
    {"last_k", O_INT, offsetof(hn_cls_options, last_k), 1},
    {"unfreeze_every", O_INT, offsetof(hn_cls_options, unfreeze_every), 1},
};
#define N_OPT_KEYS (int)(sizeof opt_keys / sizeof opt_keys[0])
#define OPT_KEY_LIST                                                                                                   \
    "epochs, lr, batch, weight_decay, shots, nearest, label_words, calibrate, rank, alpha, last_k, unfreeze_every"

static hn_status apply_options(const reader *r, const ynode *map, const char *label, hn_cls_options *o) {
    char key[96];
    for (int i = 0; i + 1 < map->n; i += 2) {
        const ynode *k = &map->kids[i], *v = &map->kids[i + 1];
        snprintf(key, sizeof key, "options.%.40s.%.40s", label, k->text);
        for (int j = 0; j < i; j += 2)
            if (!strcmp(map->kids[j].text, k->text))
                return BAD(k, key, "given twice (first on line %d)", map->kids[j].line);
        hn_status s = HN_OK;
        int j = 0;
        while (j < N_OPT_KEYS && strcmp(opt_keys[j].key, k->text)) j++;
        if (j < N_OPT_KEYS) {
            char *p = (char *)o + opt_keys[j].off;
            double d;
            if (opt_keys[j].type == O_INT) s = get_int(r, v, key, (int)opt_keys[j].lo, (int *)p);
            else if (opt_keys[j].type == O_BOOL) s = get_bool(r, v, key, (bool *)p);
            else if (!(s = get_double(r, v, key, opt_keys[j].lo, 1e9, &d))) *(float *)p = (float)d;
        } else if (!strcmp(k->text, "method")) { // a variant's method: read by read_options
        } else if (!strcmp(k->text, "calibrate")) {
            bool cal;
            if (!(s = get_bool(r, v, key, &cal))) o->no_calibrate = !cal;
        } else if (!strcmp(k->text, "label_words")) { // ["pos=great|good", "neg=awful"], as --label-words takes them
            const ynode *items;
            int n;
            if ((s = get_list(r, v, key, &items, &n))) return s;
            for (int w = 0; w < n; w++)
                if (!strchr(items[w].text, '=') || items[w].text[0] == '=')
                    return BAD(&items[w], key, "expected CLASS=WORD[|WORD...], got '%.80s'", items[w].text);
            char **words = n > 0 ? calloc((size_t)n, sizeof *words) : NULL;
            if (!words) return HN_ERR_NOMEM;
            free((void *)o->label_words); // a method's options are read once; this is NULL
            o->label_words = (const char *const *)words, o->n_label_words = n;
            for (int w = 0; w < n; w++)
                if (!(words[w] = strdup(items[w].text))) return HN_ERR_NOMEM;
        } else {
            return BAD(k, key, "unknown option (expected one of " OPT_KEY_LIST ", or method: NAME in a variant)");
        }
        if (s) return s;
    }
    return HN_OK;
}

// ---- the recipe

static const char *const top_keys[] = {"title", "model",  "data",    "test",    "test_split", "text_col", "label_col",
                                       "seed",  "budget", "methods", "options", "task",       "qa",       "format"};
#define N_TOP (int)(sizeof top_keys / sizeof top_keys[0])
#define TOP_KEY_LIST                                                                                                   \
    "title, model, data, test, test_split, text_col, label_col, seed, budget, methods, options, task, qa, format"

// ---- methods and their variants

// The methods a recipe may name: classification's (train/classify.h), or for generation the parameter-efficient
// methods of adapt/method.h, by the names `hone train --method` takes (whether this build has them or not: those it
// lacks are not-applicable rows).
typedef struct {
    const char *names[MAX_METHODS];
    const hn_cls_method *cls[MAX_METHODS]; // classify
    int n;
    bool gen;
} mtable;

static void mtable_init(mtable *t, bool gen) {
    memset(t, 0, sizeof *t);
    t->gen = gen;
    if (gen) {
        for (int i = 0; i < HN_METHOD_COUNT && t->n < MAX_METHODS; i++)
            if (i != HN_METHOD_FULL) t->names[t->n++] = hn_train_method_names[i]; // the LM objective trains no full
        return;
    }
    t->n = hn_cls_method_list(t->cls, MAX_METHODS);
    if (t->n > MAX_METHODS) t->n = MAX_METHODS;
    for (int i = 0; i < t->n; i++) t->names[i] = t->cls[i]->name;
}

static int mtable_find(const mtable *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->names[i], name)) return i;
    return -1;
}

static void method_names(const mtable *t, char *buf, size_t cap) { // "feature, head, ..."
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < t->n && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", t->names[i]);
}

static bool label_ok(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return n >= 1 && n < sizeof(((hn_bakeoff_entry *)0)->label) && strcmp(s, "all");
}

// One key of `options`: a method's name (that method's options) or a variant's label (the method that `method:`
// names, run under that label with options of its own).
typedef struct {
    const ynode *key;
    int mi; // the method's place in the mtable
    bool variant;
    hn_cls_options o;    // classify: the budget, then the key's options; label_words owned until an entry takes them
    hn_train_config *tc; // generate: likewise; owned until an entry takes it
} odef;

static void free_words(hn_cls_options *o) {
    char **w = (char **)o->label_words;
    for (int j = 0; w && j < o->n_label_words; j++) free(w[j]);
    free(w);
    o->label_words = NULL, o->n_label_words = 0;
}

static void odefs_free(odef *d, int n) {
    for (int i = 0; d && i < n; i++) free_words(&d[i].o), hn_bakeoff_gen_config_free(d[i].tc);
    free(d);
}

// options.LABEL of a generation method: any key of `hone train`'s optimisation or method settings.
static hn_status apply_gen_options(const reader *r, const ynode *map, const char *label, hn_train_config *tc) {
    char key[96], where[600];
    for (int i = 0; i + 1 < map->n; i += 2) {
        const ynode *k = &map->kids[i], *v = &map->kids[i + 1];
        snprintf(key, sizeof key, "options.%.40s.%.40s", label, k->text);
        for (int j = 0; j < i; j += 2)
            if (!strcmp(map->kids[j].text, k->text))
                return BAD(k, key, "given twice (first on line %d)", map->kids[j].line);
        if (!strcmp(k->text, "method")) continue; // a variant's method: read by read_options
        char text[1024] = "";
        if (v->kind == Y_MAP || (v->kind == Y_SCALAR && v->null))
            return BAD(v, key, "expected a value or a list of values, got %s", kind_name(v));
        if (v->kind == Y_LIST) { // as --set takes a list: "a,b"
            const ynode *items;
            int n;
            hn_status s = get_list(r, v, key, &items, &n);
            if (s) return s;
            for (int j = 0; j < n; j++)
                snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", j ? "," : "", items[j].text);
        } else {
            snprintf(text, sizeof text, "%s", v->text);
        }
        snprintf(where, sizeof where, "%s:%d:%d", r->name, v->line, v->col);
        hn_status s = hn_bakeoff_gen_option(tc, k->text, text, r->dir, where, key);
        if (s == HN_ERR_NOTFOUND)
            return BAD(k, key, "unknown option (expected one of " HN_BAKEOFF_GEN_OPTIONS ", a hone train key of "
                               "lora., prompt., ia3. or adapter., or method: NAME in a variant)");
        if (s) return s;
    }
    return HN_OK;
}

// Every key of `options` checked, and its options read over the base (even when `methods` does not list it).
static hn_status read_options(const reader *r, const mtable *t, const ynode *opts, const hn_cls_options *base,
                              const hn_train_config *gbase, odef *d, int *n_d) {
    char names[512];
    method_names(t, names, sizeof names);
    for (int i = 0; i + 1 < opts->n; i += 2) {
        const ynode *k = &opts->kids[i], *v = &opts->kids[i + 1], *mv = NULL;
        odef *e = &d[(*n_d)++];
        e->key = k, e->o = *base;
        char key[80], mkey[96];
        snprintf(key, sizeof key, "options.%.40s", k->text);
        snprintf(mkey, sizeof mkey, "%s.method", key);
        for (int j = 0; j < i; j += 2)
            if (!strcmp(opts->kids[j].text, k->text))
                return BAD(k, key, "given twice (first on line %d)", opts->kids[j].line);
        e->mi = mtable_find(t, k->text);
        e->variant = e->mi < 0;
        if (e->variant && !label_ok(k->text))
            return BAD(k, key, "not a variant label (1 to 31 of A-Z a-z 0-9 _ . -, not 'all') nor a method %s (%s)",
                       t->gen ? "to generate with" : "of this build", names);
        if (v->kind == Y_SCALAR && v->null && !e->variant) { // `lora:` with nothing: the defaults
            hn_status s = t->gen ? hn_bakeoff_gen_config(gbase, t->names[e->mi], &e->tc) : HN_OK;
            if (s) return s;
            continue;
        }
        if (v->kind != Y_MAP && !(v->kind == Y_SCALAR && v->null))
            return BAD(v, key, "expected a mapping of options (%s), got %s",
                       t->gen ? HN_BAKEOFF_GEN_OPTIONS ", ..." : OPT_KEY_LIST, kind_name(v));
        for (int j = 0; j + 1 < v->n && v->kind == Y_MAP; j += 2)
            if (!strcmp(v->kids[j].text, "method")) mv = &v->kids[j + 1];
        if (!mv && e->variant)
            return BAD(k, key, "a variant label needs method: NAME (not a method %s: %s)",
                       t->gen ? "to generate with" : "of this build", names);
        if (mv) {
            const char *m;
            hn_status s = get_str(r, mv, mkey, &m);
            if (s) return s;
            int mi = mtable_find(t, m);
            if (mi < 0) return BAD(mv, mkey, "unknown method '%.60s' (%s: %s)", m,
                                   t->gen ? "the methods to generate with" : "this build has", names);
            if (!e->variant && mi != e->mi)
                return BAD(mv, mkey, "'%s' is a method's name, so its method is %s: give the variant of %s a label "
                                     "of its own (e.g. %s-2)",
                           k->text, k->text, t->names[mi], t->names[mi]);
            e->mi = mi;
        }
        hn_status s = HN_OK;
        if (t->gen && !(s = hn_bakeoff_gen_config(gbase, t->names[e->mi], &e->tc)))
            s = apply_gen_options(r, v, k->text, e->tc);
        else if (!t->gen)
            s = apply_options(r, v, k->text, &e->o);
        if (s) return s;
    }
    return HN_OK;
}

static hn_status add_entry(hn_bakeoff_recipe *rc, const mtable *t, int mi, const char *label, odef *d,
                           const hn_cls_options *base, const hn_train_config *gbase) {
    hn_bakeoff_entry *e = &rc->methods[rc->n_methods++];
    snprintf(e->label, sizeof e->label, "%s", label);
    if (t->gen) {
        e->gen = t->names[mi];
        if (d && d->tc) e->tc = d->tc, d->tc = NULL; // the entry owns it now
        else return hn_bakeoff_gen_config(gbase, e->gen, &e->tc);
        return HN_OK;
    }
    e->me = t->cls[mi];
    e->o = d ? d->o : *base;
    if (d) d->o.label_words = NULL, d->o.n_label_words = 0; // the entry owns them now
    return HN_OK;
}

// `methods`: method names and variant labels, or `all` (every method, each followed by its variants in the order
// options defines them).
static hn_status read_methods(const reader *r, const mtable *t, const ynode *y, odef *d, int n_d,
                              const hn_cls_options *base, const hn_train_config *gbase, hn_bakeoff_recipe *rc) {
    const ynode *items;
    int n;
    hn_status s = get_list(r, y, "methods", &items, &n);
    if (s) return s;
    int n_var = 0;
    for (int i = 0; i < n_d; i++) n_var += d[i].variant;
    bool is_all = n == 1 && !strcmp(items[0].text, "all");
    int count = is_all ? t->n + n_var : n;
    if (!(rc->methods = calloc((size_t)(count ? count : 1), sizeof *rc->methods))) return HN_ERR_NOMEM;
    if (is_all) {
        for (int i = 0; !s && i < t->n; i++) {
            odef *own = NULL;
            for (int j = 0; j < n_d; j++)
                if (!strcmp(d[j].key->text, t->names[i])) own = &d[j];
            s = add_entry(rc, t, i, t->names[i], own, base, gbase);
            for (int j = 0; !s && j < n_d; j++)
                if (d[j].variant && d[j].mi == i) s = add_entry(rc, t, i, d[j].key->text, &d[j], base, gbase);
        }
        return s;
    }
    char names[512];
    method_names(t, names, sizeof names);
    for (int i = 0; i < n; i++) {
        const char *m = items[i].text;
        if (!strcmp(m, "all")) return BAD(&items[i], "methods", "'all' stands alone (methods: all)");
        odef *def = NULL;
        for (int j = 0; j < n_d; j++)
            if (!strcmp(d[j].key->text, m)) def = &d[j];
        int mi = def ? def->mi : mtable_find(t, m);
        if (mi < 0)
            return BAD(&items[i], "methods",
                       "unknown method '%.60s' (%s: all, %s), nor a variant that options defines "
                       "(LABEL: {method: NAME, ...})",
                       m, t->gen ? "the methods to generate with" : "this build has", names);
        for (int j = 0; j < rc->n_methods; j++)
            if (!strcmp(rc->methods[j].label, m)) return BAD(&items[i], "methods", "'%s' is listed twice", m);
        if ((s = add_entry(rc, t, mi, m, def, base, gbase))) return s;
    }
    return HN_OK;
}

static hn_status read_budget(const reader *r, const ynode *y, hn_bakeoff_recipe *rc) {
    bool gen = rc->task == HN_BAKEOFF_GENERATE;
    const char *expect = gen ? "max_train, max_test, max_qa, epochs, max_steps, max_len, batch or max_new_tokens"
                             : "max_train, max_test, epochs, max_len or batch";
    if (y->kind != Y_MAP) return BAD(y, "budget", "expected a mapping (%s), got %s", expect, kind_name(y));
    static const char *const keys[] = {"max_train", "max_test", "epochs", "max_len",
                                       "batch",     "max_qa",   "max_steps", "max_new_tokens"};
    int *dst[] = {&rc->max_train, &rc->max_test, &rc->epochs,    &rc->max_len,
                  &rc->batch,     &rc->max_qa,   &rc->max_steps, &rc->max_new_tokens};
    // max_train, max_test, max_qa, max_steps and (classify) epochs: 0 is all / the method's default / off
    const int lo[] = {0, 0, gen ? 1 : 0, 1, 1, 0, 0, 1};
    for (int i = 0; i + 1 < y->n; i += 2) {
        const ynode *k = &y->kids[i];
        char key[80];
        snprintf(key, sizeof key, "budget.%.40s", k->text);
        int j = 0;
        while (j < 8 && strcmp(keys[j], k->text)) j++;
        if (j == 8 || (j >= 5 && !gen))
            return BAD(k, key, "unknown key (expected %s%s)", expect,
                       j < 8 ? "; max_qa, max_steps and max_new_tokens are for task: generate" : "");
        for (int p = 0; p < i; p += 2)
            if (!strcmp(y->kids[p].text, k->text))
                return BAD(k, key, "given twice (first on line %d)", y->kids[p].line);
        hn_status s = get_int(r, &y->kids[i + 1], key, lo[j], dst[j]);
        if (s) return s;
        if (j == 0 && rc->max_train == 1 && !gen)
            return BAD(&y->kids[i + 1], key, "expected 0 (all) or 2 or more (one example a class at least), got 1");
    }
    return HN_OK;
}

static const ynode *top(const ynode *const *v, const char *key) {
    for (int j = 0; j < N_TOP; j++)
        if (!strcmp(top_keys[j], key)) return v[j];
    return NULL;
}

static hn_status read_recipe(const reader *r, const ynode *root, hn_bakeoff_recipe *rc) {
    const ynode *v[N_TOP] = {0};
    for (int i = 0; i + 1 < root->n; i += 2) {
        const ynode *k = &root->kids[i];
        int j = 0;
        while (j < N_TOP && strcmp(top_keys[j], k->text)) j++;
        if (j == N_TOP) return BAD(k, k->text, "unknown key (expected " TOP_KEY_LIST ")");
        if (v[j]) return BAD(k, k->text, "given twice (first on line %d)", v[j][-1].line);
        v[j] = &root->kids[i + 1];
    }
    const char *t;
    hn_status s = HN_OK;
    const ynode *task = top(v, "task");
    if (task) {
        if ((s = get_str(r, task, "task", &t))) return BAD(task, "task", "expected classify or generate, got %s",
                                                          kind_name(task));
        if (!strcmp(t, "generate")) rc->task = HN_BAKEOFF_GENERATE;
        else if (strcmp(t, "classify")) return BAD(task, "task", "expected classify or generate, got '%.80s'", t);
    }
    bool gen = rc->task == HN_BAKEOFF_GENERATE;
    static const char *const need[] = {"model", "data", "methods"};
    const char *what[] = {"a pulled model name or a model path",
                          gen ? "a list of SFT or SQuAD files" : "a list of FILE or FILE:LABEL",
                          "a list of method names, or all"};
    for (int i = 0; i < 3; i++) {
        const ynode *y = top(v, need[i]);
        if (!y || (y->kind == Y_SCALAR && y->null)) return BAD(y ? y : root, need[i], "missing (expected %s)", what[i]);
    }
    static const char *const cls_only[] = {"text_col", "label_col"}, *const gen_only[] = {"qa", "format"};
    for (int i = 0; i < 2; i++) {
        const char *key = gen ? cls_only[i] : gen_only[i];
        const ynode *y = top(v, key);
        if (y) return BAD(&y[-1], key, "only for task: %s (this recipe's task is %s)", gen ? "classify" : "generate",
                          gen ? "generate" : "classify");
    }
    rc->test_split = 0.2, rc->seed = 42;
    rc->max_len = gen ? 512 : 128, rc->batch = gen ? 4 : 16, rc->epochs = gen ? 1 : 0, rc->max_new_tokens = 32;
    for (int j = 0; j < N_TOP && !s; j++) {
        const ynode *y = v[j];
        const char *key = top_keys[j];
        if (!y) continue;
        if (!strcmp(key, "title")) {
            if (!(s = get_str(r, y, key, &t)) && !(rc->title = strdup(t))) s = HN_ERR_NOMEM;
        } else if (!strcmp(key, "model")) {
            if (!(s = get_str(r, y, key, &t)) && !(rc->model = model_path(r, t))) s = HN_ERR_NOMEM;
        } else if (!strcmp(key, "data")) {
            s = get_paths(r, y, key, &rc->data, &rc->n_data);
        } else if (!strcmp(key, "test")) {
            s = get_paths(r, y, key, &rc->test, &rc->n_test);
        } else if (!strcmp(key, "qa")) {
            s = get_paths(r, y, key, &rc->qa, &rc->n_qa);
        } else if (!strcmp(key, "format")) {
            if (!(s = get_str(r, y, key, &t)) && !strcmp(t, "squad")) rc->squad = true;
            else if (!s && hn_data_format_parse(t, &rc->format))
                s = BAD(y, key, "expected auto, squad, text, prompt_completion, alpaca, messages or sharegpt, got "
                                "'%.80s'", t);
        } else if (!strcmp(key, "test_split")) {
            s = get_double(r, y, key, 0, 1, &rc->test_split);
            if (!s && (rc->test_split <= 0 || rc->test_split >= 1))
                s = BAD(y, key, "expected a fraction strictly between 0 and 1, got '%s'", y->text);
        } else if (!strcmp(key, "text_col") || !strcmp(key, "label_col")) {
            char **dst = key[0] == 't' ? &rc->text_col : &rc->label_col;
            if (!(s = get_str(r, y, key, &t)) && !(*dst = strdup(t))) s = HN_ERR_NOMEM;
        } else if (!strcmp(key, "seed")) {
            char *end;
            if (!(s = get_str(r, y, key, &t))) {
                errno = 0;
                rc->seed = strtoull(t, &end, 10);
                if (*end || errno || t[0] == '-') s = BAD(y, key, "expected a whole number >= 0, got '%.80s'", t);
            }
        } else if (!strcmp(key, "budget")) {
            s = read_budget(r, y, rc);
        }
    }
    if (s) return s;
    if (rc->test && top(v, "test_split"))
        return BAD(top(v, "test_split"), "test_split", "a recipe with test files holds nothing out of data");
    // Every method: the budget, then its options (options.NAME, or its variant's), then its defaults.
    mtable mt;
    mtable_init(&mt, gen);
    hn_cls_options base = hn_cls_default_options();
    base.seed = rc->seed, base.max_len = rc->max_len, base.batch = rc->batch, base.epochs = rc->epochs;
    hn_train_config gbase;
    hn_train_config_init(&gbase);
    gbase.seed = (int)(rc->seed & 0x7fffffff), gbase.max_len = rc->max_len, gbase.batch_size = rc->batch;
    gbase.epochs = rc->epochs, gbase.max_steps = rc->max_steps;
    const ynode *opts = top(v, "options");
    bool none = !opts || (opts->kind == Y_SCALAR && opts->null);
    if (!none && opts->kind != Y_MAP)
        s = BAD(opts, "options", "expected a mapping of method names or variant labels to options, got %s",
                kind_name(opts));
    odef *defs = s ? NULL : calloc(none ? 1 : (size_t)opts->n / 2 + 1, sizeof *defs);
    int n_defs = 0;
    if (!s && !defs) s = HN_ERR_NOMEM;
    if (!s && !none) s = read_options(r, &mt, opts, &base, &gbase, defs, &n_defs);
    if (!s) s = read_methods(r, &mt, top(v, "methods"), defs, n_defs, &base, &gbase, rc);
    odefs_free(defs, n_defs);
    hn_train_config_deinit(&gbase);
    if (s) return s;
    for (int i = 0; i < rc->n_methods; i++)
        if (rc->methods[i].me) hn_cls_resolve_options(rc->methods[i].me, &rc->methods[i].o);
    return HN_OK;
}

hn_status hn_bakeoff_recipe_load_text(hn_bakeoff_recipe *rc, const char *text, size_t len, const char *name,
                                      const char *base_dir) {
    memset(rc, 0, sizeof *rc);
    reader *r = calloc(1, sizeof *r);
    if (!r) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", name);
    r->name = name, r->dir = base_dir;
    if (!yaml_parser_initialize(&r->p)) {
        free(r);
        return hn_fail(HN_ERR_NOMEM, "%s: out of memory for the YAML parser", name);
    }
    yaml_parser_set_input_string(&r->p, (const unsigned char *)text, len);
    ynode root;
    hn_status s = read_tree(r, &root);
    if (!s) s = read_recipe(r, &root, rc);
    if (s == HN_ERR_NOMEM && !strstr(hn_errmsg(), name)) hn_fail(s, "%s: out of memory", name);
    if (!s && !(rc->path = strdup(name))) s = hn_fail(HN_ERR_NOMEM, "%s: out of memory", name);
    if (!s && !rc->title) { // the file's name without its folder and extension
        const char *b = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
        const char *dot = strrchr(b, '.');
        if (!(rc->title = strndup(b, dot && dot > b ? (size_t)(dot - b) : strlen(b)))) s = HN_ERR_NOMEM;
    }
    ynode_free(&root);
    yaml_parser_delete(&r->p);
    free(r);
    if (s) hn_bakeoff_recipe_deinit(rc);
    return s;
}

hn_status hn_bakeoff_recipe_load(hn_bakeoff_recipe *rc, const char *path) {
    memset(rc, 0, sizeof *rc);
    FILE *f = fopen(path, "rb");
    if (!f) return hn_fail(HN_ERR_IO, "%s: cannot read the recipe: %s", path, strerror(errno));
    char *text = malloc(RECIPE_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, RECIPE_MAX_BYTES + 1, f) : 0;
    bool err = !text || ferror(f);
    fclose(f);
    if (err || n > RECIPE_MAX_BYTES) {
        free(text);
        return !text ? hn_fail(HN_ERR_NOMEM, "%s: out of memory", path)
               : err ? hn_fail(HN_ERR_IO, "%s: read error", path)
                     : hn_fail(HN_ERR_FORMAT, "%s: larger than %u bytes (a recipe holds settings, not data)", path,
                               RECIPE_MAX_BYTES);
    }
    // Relative paths inside are the recipe's folder's, made absolute here.
    char cwd[4096], *dir = NULL;
    const char *slash = strrchr(path, '/');
    if (path[0] == '/') dir = strndup(path, slash > path ? (size_t)(slash - path) : 1);
    else if (getcwd(cwd, sizeof cwd)) {
        size_t m = strlen(cwd) + strlen(path) + 2;
        if ((dir = malloc(m)))
            snprintf(dir, m, "%s%s%.*s", cwd, slash ? "/" : "", slash ? (int)(slash - path) : 0, path);
    }
    hn_status s = dir ? hn_bakeoff_recipe_load_text(rc, text, n, path, dir)
                      : hn_fail(HN_ERR_IO, "%s: the current directory is unknown", path);
    free(dir), free(text);
    return s;
}

void hn_bakeoff_recipe_deinit(hn_bakeoff_recipe *r) {
    for (int i = 0; i < r->n_data; i++) free(r->data[i]);
    for (int i = 0; i < r->n_test; i++) free(r->test[i]);
    for (int i = 0; i < r->n_qa; i++) free(r->qa[i]);
    for (int i = 0; i < r->n_methods; i++)
        free_words(&r->methods[i].o), hn_bakeoff_gen_config_free(r->methods[i].tc);
    free(r->data), free(r->test), free(r->qa), free(r->methods);
    free(r->path), free(r->title), free(r->model), free(r->text_col), free(r->label_col);
    memset(r, 0, sizeof *r);
}

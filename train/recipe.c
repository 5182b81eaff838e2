// train/recipe.c — YAML recipes (libyaml's event parser) applied onto a training configuration.
//
// A recipe is one YAML mapping. Nested mappings are flattened to dotted keys (`lora: {r: 16}` is `lora.r: 16`);
// a sequence gives a list key its items. Events are consumed one by one with a depth limit, so a deep or huge file
// costs bounded work and never recurses far; aliases are refused (no expansion bombs). Every message starts with
// FILE:LINE:COLUMN.
#include "train/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define RECIPE_MAX_BYTES (1u << 20) // a recipe is a page of settings; more is a mistake (a dataset named by error)
#define RECIPE_MAX_DEPTH 4          // `a: {b: {c: ...}}`; the table needs 2

typedef struct {
    yaml_parser_t p;
    const char *name, *base_dir;
    hn_train_config *c;
    int line[256]; // where each key was set (0: not yet), to refuse a key given twice
} recipe;

static const char *at(const recipe *r, yaml_mark_t m, char buf[64 + 4096]) {
    snprintf(buf, 64 + 4096, "%.4096s:%zu:%zu", r->name, m.line + 1, m.column + 1);
    return buf;
}

static hn_status next(recipe *r, yaml_event_t *ev) {
    if (yaml_parser_parse(&r->p, ev)) return HN_OK;
    yaml_mark_t m = r->p.problem_mark;
    if (r->p.error == YAML_MEMORY_ERROR) return hn_fail(HN_ERR_NOMEM, "%s: out of memory reading YAML", r->name);
    return hn_fail(HN_ERR_FORMAT, "%s:%zu:%zu: YAML syntax error: %s%s%s", r->name, m.line + 1, m.column + 1,
                   r->p.problem ? r->p.problem : "malformed", r->p.context ? " " : "",
                   r->p.context ? r->p.context : "");
}

static const char *what(const yaml_event_t *ev) {
    switch (ev->type) {
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_ALIAS_EVENT: return "an alias";
    default: return "nothing";
    }
}

static const char *scalar(const yaml_event_t *ev) { return (const char *)ev->data.scalar.value; }

// A plain (unquoted) empty or `~`/`null` scalar is YAML's null; quoted, it is text.
static bool is_null_scalar(const yaml_event_t *ev) {
    const char *v = scalar(ev);
    return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"));
}

static hn_status refuse_alias(recipe *r, const yaml_event_t *ev) {
    char w[64 + 4096];
    return hn_fail(HN_ERR_FORMAT, "%s: YAML aliases (*%s) are not supported in recipes", at(r, ev->start_mark, w),
                   (const char *)ev->data.alias.anchor);
}

// The items of a sequence for list key k; the sequence's start event is consumed.
static hn_status read_list(recipe *r, const hn_cfg_key *k) {
    char w[64 + 4096];
    hn_train_config_clear(r->c, k->name);
    for (;;) {
        yaml_event_t ev;
        hn_status s = next(r, &ev);
        if (s) return s;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return HN_OK;
        }
        if (ev.type == YAML_ALIAS_EVENT) s = refuse_alias(r, &ev);
        else if (ev.type != YAML_SCALAR_EVENT)
            s = hn_fail(HN_ERR_FORMAT, "%s: %s: a list item must be a plain value, got %s", at(r, ev.start_mark, w),
                        k->name, what(&ev));
        else
            s = hn_train_config_append(r->c, k->name, is_null_scalar(&ev) ? "" : scalar(&ev), r->base_dir,
                                       at(r, ev.start_mark, w));
        yaml_event_delete(&ev);
        if (s) return s;
    }
}

static bool is_section(const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < hn_train_key_count; i++)
        if (!strncmp(hn_train_keys[i].name, name, n) && hn_train_keys[i].name[n] == '.') return true;
    return false;
}

// The pairs of a mapping whose start event was consumed; keys get `prefix.` in front.
static hn_status read_mapping(recipe *r, const char *prefix, int depth) {
    char w[64 + 4096];
    for (;;) {
        yaml_event_t kev, vev;
        hn_status s = next(r, &kev);
        if (s) return s;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return HN_OK;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            s = kev.type == YAML_ALIAS_EVENT ? refuse_alias(r, &kev)
                                             : hn_fail(HN_ERR_FORMAT, "%s: a key must be a plain name, got %s",
                                                       at(r, kev.start_mark, w), what(&kev));
            yaml_event_delete(&kev);
            return s;
        }
        char key[256];
        int n = snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", scalar(&kev));
        yaml_mark_t kmark = kev.start_mark;
        yaml_event_delete(&kev);
        const hn_cfg_key *k = n < (int)sizeof key ? hn_train_key_find(key) : NULL;
        if ((s = next(r, &vev))) return s;

        if (vev.type == YAML_MAPPING_START_EVENT && !k) { // a section: its keys are read with the longer prefix
            yaml_event_delete(&vev);
            if (depth >= RECIPE_MAX_DEPTH || n >= (int)sizeof key)
                return hn_fail(HN_ERR_FORMAT, "%s: mappings nested deeper than any key (under '%.60s')",
                               at(r, kmark, w), key);
            if ((s = read_mapping(r, key, depth + 1))) return s;
            continue;
        }
        if (!k && vev.type == YAML_SCALAR_EVENT && is_null_scalar(&vev) && is_section(key)) {
            yaml_event_delete(&vev); // `lora:` with nothing under it
            continue;
        }
        if (!k) {
            yaml_event_delete(&vev);
            char kw[200];
            snprintf(kw, sizeof kw, "%.160s", key);
            const char *sug = hn_train_key_suggest(kw);
            if (sug) return hn_fail(HN_ERR_ARG, "%s: unknown key '%s' (did you mean '%s'?)", at(r, kmark, w), kw, sug);
            return hn_fail(HN_ERR_ARG, "%s: unknown key '%s' (hone train --help-recipe lists the keys)",
                           at(r, kmark, w), kw);
        }
        int ix = (int)(k - hn_train_keys);
        if (r->line[ix]) {
            yaml_event_delete(&vev);
            return hn_fail(HN_ERR_ARG, "%s: %s is given twice (first on line %d)", at(r, kmark, w), k->name,
                           r->line[ix]);
        }
        r->line[ix] = (int)kmark.line + 1;
        if (vev.type == YAML_SCALAR_EVENT) {
            s = hn_train_config_set(r->c, k->name, is_null_scalar(&vev) ? "" : scalar(&vev), r->base_dir,
                                    at(r, vev.start_mark, w));
            // A quoted empty string is text, but no key takes an empty value: the same as null.
        } else if (vev.type == YAML_SEQUENCE_START_EVENT && k->type == HN_CFG_LIST) {
            s = read_list(r, k);
        } else if (vev.type == YAML_ALIAS_EVENT) {
            s = refuse_alias(r, &vev);
        } else {
            char e[400];
            s = hn_fail(HN_ERR_ARG, "%s: %s: expected %s, got %s", at(r, vev.start_mark, w), k->name,
                        hn_train_key_expected(k, e), what(&vev));
        }
        yaml_event_delete(&vev);
        if (s) return s;
    }
}

static hn_status read_stream(recipe *r) {
    char w[64 + 4096];
    yaml_event_t ev;
    hn_status s;
    if ((s = next(r, &ev))) return s; // stream start
    yaml_event_delete(&ev);
    if ((s = next(r, &ev))) return s;
    bool empty = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (empty) return hn_fail(HN_ERR_FORMAT, "%s: the recipe is empty (expected a mapping of keys to values)", r->name);
    if ((s = next(r, &ev))) return s; // the document's root
    if (ev.type != YAML_MAPPING_START_EVENT) {
        bool null = ev.type == YAML_SCALAR_EVENT && is_null_scalar(&ev);
        s = null ? hn_fail(HN_ERR_FORMAT, "%s: the recipe is empty (expected a mapping of keys to values)", r->name)
                 : hn_fail(HN_ERR_FORMAT, "%s: the recipe must be a mapping of keys to values, not %s",
                           at(r, ev.start_mark, w), ev.type == YAML_SCALAR_EVENT ? "a single value" : what(&ev));
        yaml_event_delete(&ev);
        return s;
    }
    yaml_event_delete(&ev);
    if ((s = read_mapping(r, "", 1))) return s;
    if ((s = next(r, &ev))) return s; // document end
    yaml_event_delete(&ev);
    if ((s = next(r, &ev))) return s;
    bool more = ev.type == YAML_DOCUMENT_START_EVENT;
    yaml_mark_t m = ev.start_mark;
    yaml_event_delete(&ev);
    if (more)
        return hn_fail(HN_ERR_FORMAT, "%s: a second YAML document ('---'): a recipe is one mapping", at(r, m, w));
    return HN_OK;
}

hn_status hn_train_config_load_text(hn_train_config *c, const char *text, size_t len, const char *name,
                                    const char *base_dir) {
    recipe *r = calloc(1, sizeof *r);
    if (!r) return hn_fail(HN_ERR_NOMEM, "%s: out of memory", name);
    if (hn_train_key_count > (int)(sizeof r->line / sizeof r->line[0])) abort(); // the table outgrew line[]
    r->name = name;
    r->base_dir = base_dir;
    r->c = c;
    if (!yaml_parser_initialize(&r->p)) {
        free(r);
        return hn_fail(HN_ERR_NOMEM, "%s: out of memory for the YAML parser", name);
    }
    yaml_parser_set_input_string(&r->p, (const unsigned char *)text, len);
    hn_status s = read_stream(r);
    yaml_parser_delete(&r->p);
    free(r);
    return s;
}

hn_status hn_train_config_load(hn_train_config *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return hn_fail(HN_ERR_IO, "recipe %s: %s", path, strerror(errno));
    char *text = malloc(RECIPE_MAX_BYTES + 1);
    if (!text) {
        fclose(f);
        return hn_fail(HN_ERR_NOMEM, "recipe %s: out of memory", path);
    }
    size_t n = fread(text, 1, RECIPE_MAX_BYTES + 1, f);
    bool err = ferror(f);
    fclose(f);
    if (err || n > RECIPE_MAX_BYTES) {
        free(text);
        return err ? hn_fail(HN_ERR_IO, "recipe %s: read error", path)
                   : hn_fail(HN_ERR_FORMAT, "recipe %s: larger than %u bytes (a recipe holds settings, not data)",
                             path, RECIPE_MAX_BYTES);
    }
    // Relative paths inside are taken from the recipe's own directory, made absolute here.
    char *dir = NULL;
    const char *slash = strrchr(path, '/');
    char cwd[4096];
    if (path[0] == '/') dir = strndup(path, slash > path ? (size_t)(slash - path) : 1);
    else if (getcwd(cwd, sizeof cwd)) {
        size_t m = strlen(cwd) + strlen(path) + 2;
        if ((dir = malloc(m))) snprintf(dir, m, "%s/%.*s", cwd, slash ? (int)(slash - path) : 0, path);
    } else {
        free(text);
        return hn_fail(HN_ERR_IO, "recipe %s: the current directory is unknown", path);
    }
    if (!dir) {
        free(text);
        return hn_fail(HN_ERR_NOMEM, "recipe %s: out of memory", path);
    }
    hn_status s = hn_train_config_load_text(c, text, n, path, dir);
    free(dir);
    free(text);
    return s;
}

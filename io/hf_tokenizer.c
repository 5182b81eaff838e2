// io/hf_tokenizer.c — a tokenizer from a Hugging Face directory: tokenizer.json (the `tokenizers` serialisation:
// model, normalizer, pre_tokenizer, post_processor, added_tokens) with tokenizer_config.json's overrides, GPT-2's
// older vocab.json + merges.txt, or a BERT vocab.txt alone. The parts hone implements (io/bpe.c, io/wordpiece.c)
// are listed where they are parsed; anything else is refused with the file and the field, so that a tokenizer never
// silently encodes differently.
//
// The family follows from the model and pre-tokenizer: WordPiece → bert; BPE with a ByteLevel pre-tokenizer → gpt2
// (byte-level); any other BPE → llama (characters, byte_fallback).
#include "io/tokenizer_impl.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    hn_tokenizer *tk;
    const char *path; // the file being read, for messages
    bool byte_level;  // a ByteLevel pre-tokenizer was seen
} hf_ctx;

static json_t *load_json(const char *path, hn_status *s) {
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) *s = hn_fail(HN_ERR_FORMAT, "%s: not JSON (line %d: %s)", path, err.line, err.text);
    else if (!json_is_object(j)) {
        *s = hn_fail(HN_ERR_FORMAT, "%s: expected a JSON object at the top", path);
        json_decref(j);
        j = NULL;
    }
    return j;
}

static bool jbool(const json_t *o, const char *key, bool dflt) {
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

// A token named in a config: "[CLS]" or {"content": "[CLS]", ...}; NULL if absent.
static const char *token_name(const json_t *v) {
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static hn_status bad(const hf_ctx *c, const char *field, const char *expected) {
    return hn_fail(HN_ERR_FORMAT, "%s: %s: expected %s", c->path, field, expected);
}

static hn_status unsupported(const hf_ctx *c, const char *field, const char *value, const char *known) {
    return hn_fail(HN_ERR_UNSUPPORTED, "%s: %s = \"%.60s\" (hone reads %s)", c->path, field, value, known);
}

// ---- normalizer ----

static hn_status add_norm(hf_ctx *c, hn_norm_step st, const char *field) {
    if (c->tk->n_norm == HN_TOK_MAX_STEPS) return bad(c, field, "at most 8 normalizer steps");
    if ((st.from && !(st.from = strdup(st.from))) || (st.to && !(st.to = strdup(st.to))))
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    c->tk->norm[c->tk->n_norm++] = st;
    return HN_OK;
}

static hn_status parse_normalizer(hf_ctx *c, const json_t *n, const char *field) {
    if (json_is_null(n) || !n) return HN_OK;
    const char *type = json_string_value(json_object_get(n, "type"));
    char sub[96];
    snprintf(sub, sizeof sub, "%s.type", field);
    if (!json_is_object(n) || !type) return bad(c, sub, "a normalizer object with a \"type\"");
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list)) return bad(c, field, "\"normalizers\": [...]");
        for (size_t i = 0; i < json_array_size(list); i++) {
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", field, i);
            hn_status s = parse_normalizer(c, json_array_get(list, i), sub);
            if (s) return s;
        }
        return HN_OK;
    }
    if (!strcmp(type, "BertNormalizer")) {
        bool lower = jbool(n, "lowercase", true);
        json_t *sa = json_object_get(n, "strip_accents");
        bool strip = json_is_boolean(sa) ? json_is_true(sa) : lower; // null: as lowercase
        hn_norm_step st = {HN_NORM_BERT, jbool(n, "clean_text", true), jbool(n, "handle_chinese_chars", true), strip,
                           lower, NULL, NULL};
        return add_norm(c, st, field);
    }
    if (!strcmp(type, "Prepend")) {
        const char *p = json_string_value(json_object_get(n, "prepend"));
        if (!p) return bad(c, field, "\"prepend\": a string");
        return add_norm(c, (hn_norm_step){.kind = HN_NORM_PREPEND, .to = (char *)p}, field);
    }
    if (!strcmp(type, "Replace")) {
        const char *from = json_string_value(json_object_get(json_object_get(n, "pattern"), "String"));
        const char *to = json_string_value(json_object_get(n, "content"));
        if (!from || !to)
            return bad(c, field, "\"pattern\": {\"String\": ...} and \"content\" (Regex patterns are not read)");
        return add_norm(c, (hn_norm_step){.kind = HN_NORM_REPLACE, .from = (char *)from, .to = (char *)to}, field);
    }
    static const struct {
        const char *name;
        hn_norm_kind kind;
    } simple[] = {{"NFC", HN_NORM_NFC}, {"NFD", HN_NORM_NFD}, {"NFKC", HN_NORM_NFKC}, {"NFKD", HN_NORM_NFKD},
                  {"Lowercase", HN_NORM_LOWERCASE}, {"StripAccents", HN_NORM_STRIP_ACCENTS}};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (!strcmp(type, simple[i].name)) return add_norm(c, (hn_norm_step){.kind = simple[i].kind}, field);
    return unsupported(c, sub, type,
                       "BertNormalizer, Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents");
}

// ---- pre-tokenizer ----

// Regexes are compiled here, so that a pattern PCRE2 refuses is reported with the file and the field.
static hn_status add_pre(hf_ctx *c, hn_pre_step st, const char *field) {
    if (c->tk->n_pre == HN_TOK_MAX_STEPS) return bad(c, field, "at most 8 pre-tokenizer steps");
    if (st.pattern && !(st.pattern = strdup(st.pattern))) return hn_fail(HN_ERR_NOMEM, "out of memory");
    c->tk->pre[c->tk->n_pre++] = st;
    if (st.kind != HN_PRE_SPLIT) return HN_OK;
    char what[4200];
    snprintf(what, sizeof what, "%s: %s (Split)", c->path, field);
    return (c->tk->pre[c->tk->n_pre - 1].re = hn_tok_compile_regex(st.pattern, true, what)) ? HN_OK
                                                                                           : HN_ERR_UNSUPPORTED;
}

// A literal string as a pattern: every character that is not a letter or digit escaped.
static char *quote(const char *s) {
    size_t n = strlen(s);
    char *q = malloc(2 * n + 1), *o = q;
    if (!q) return NULL;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || (*s & 0x80)))
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return q;
}

static hn_status parse_pre(hf_ctx *c, const json_t *p, const char *field) {
    if (json_is_null(p) || !p) return HN_OK;
    const char *type = json_string_value(json_object_get(p, "type"));
    char sub[96];
    snprintf(sub, sizeof sub, "%s.type", field);
    if (!json_is_object(p) || !type) return bad(c, sub, "a pre-tokenizer object with a \"type\"");
    hn_status s;
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(p, "pretokenizers");
        if (!json_is_array(list)) return bad(c, field, "\"pretokenizers\": [...]");
        for (size_t i = 0; i < json_array_size(list); i++) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", field, i);
            if ((s = parse_pre(c, json_array_get(list, i), sub))) return s;
        }
        return HN_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        c->byte_level = true;
        if (jbool(p, "add_prefix_space", false) && (s = add_pre(c, (hn_pre_step){.kind = HN_PRE_PREFIX_SPACE}, field)))
            return s;
        if (jbool(p, "use_regex", true))
            return add_pre(c, (hn_pre_step){.kind = HN_PRE_SPLIT, .pattern = (char *)hn_gpt2_split_pattern}, field);
        return HN_OK;
    }
    if (!strcmp(type, "Split")) {
        json_t *pat = json_object_get(p, "pattern");
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        const char *lit = json_string_value(json_object_get(pat, "String"));
        const char *beh = json_string_value(json_object_get(p, "behavior"));
        if (!re && !lit) return bad(c, field, "\"pattern\": {\"Regex\": ...} or {\"String\": ...}");
        if (jbool(p, "invert", false)) return unsupported(c, field, "invert: true", "invert false");
        if (!beh || (strcmp(beh, "Isolated") && strcmp(beh, "Removed")))
            return unsupported(c, field, beh ? beh : "(no behavior)", "the behaviors Isolated and Removed");
        char *q = lit ? quote(lit) : NULL;
        if (lit && !q) return HN_ERR_NOMEM;
        s = add_pre(c, (hn_pre_step){.kind = HN_PRE_SPLIT, .pattern = q ? q : (char *)re,
                                     .removed = !strcmp(beh, "Removed")}, field);
        free(q);
        return s;
    }
    if (!strcmp(type, "Digits"))
        return add_pre(c, (hn_pre_step){.kind = HN_PRE_SPLIT,
                                        .pattern = jbool(p, "individual_digits", false) ? "\\p{N}" : "\\p{N}+"},
                       field);
    if (!strcmp(type, "WhitespaceSplit"))
        return add_pre(c, (hn_pre_step){.kind = HN_PRE_SPLIT, .pattern = "\\s+", .removed = true}, field);
    if (!strcmp(type, "BertPreTokenizer")) return add_pre(c, (hn_pre_step){.kind = HN_PRE_BERT}, field);
    if (!strcmp(type, "Metaspace")) {
        const char *rep = json_string_value(json_object_get(p, "replacement"));
        if (rep && strcmp(rep, "\xE2\x96\x81")) return unsupported(c, field, rep, "the replacement \"\xE2\x96\x81\"");
        const char *scheme = json_string_value(json_object_get(p, "prepend_scheme"));
        bool always = scheme ? !strcmp(scheme, "always") : jbool(p, "add_prefix_space", true);
        bool first = scheme && !strcmp(scheme, "first");
        return add_pre(c, (hn_pre_step){.kind = HN_PRE_METASPACE, .prepend_always = always, .prepend_first = first,
                                        .split = jbool(p, "split", true)},
                       field);
    }
    return unsupported(c, sub, type,
                       "ByteLevel, Split, Sequence, Digits, WhitespaceSplit, BertPreTokenizer, Metaspace");
}

// ---- vocabulary ----

// model.vocab ({piece: id}) and added_tokens into one id-ordered list.
static hn_status parse_vocab(hf_ctx *c, const json_t *model, const json_t *added) {
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab) || !json_object_size(vocab)) return bad(c, "model.vocab", "a non-empty object");
    int64_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX / 2)
            return hn_fail(HN_ERR_FORMAT, "%s: model.vocab[\"%.40s\"]: expected a token id", c->path, k);
        if (json_integer_value(v) + 1 > n) n = json_integer_value(v) + 1;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX / 2 ||
            !json_is_string(json_object_get(v, "content")))
            return hn_fail(HN_ERR_FORMAT, "%s: added_tokens[%zu]: expected {\"id\": ..., \"content\": ...}", c->path,
                           i);
        if (json_integer_value(id) + 1 > n) n = json_integer_value(id) + 1;
    }
    // ids run from 0 without holes, so there are no more than the entries (checked before allocating for them)
    if ((size_t)n > json_object_size(vocab) + json_array_size(added))
        return hn_fail(HN_ERR_FORMAT, "%s: model.vocab: ids reach %lld but there are %zu tokens (ids must run from 0)",
                       c->path, (long long)n - 1, json_object_size(vocab) + json_array_size(added));
    const char **pieces = hn_calloc((size_t)n, sizeof *pieces, "token list");
    uint8_t *types = hn_calloc((size_t)n, 1, "token types");
    hn_status s = HN_OK;
    if (!pieces || !types) {
        s = HN_ERR_NOMEM;
        goto done;
    }
    json_object_foreach(vocab, k, v) pieces[json_integer_value(v)] = k;
    int n_unapplied = 0;
    size_t first_unapplied = 0;
    for (int64_t t = 0; t < n; t++) types[t] = HN_TT_NORMAL;
    json_array_foreach(added, i, v) {
        int64_t id = json_integer_value(json_object_get(v, "id"));
        const char *content = json_string_value(json_object_get(v, "content"));
        if (pieces[id] && strcmp(pieces[id], content)) {
            s = hn_fail(HN_ERR_FORMAT, "%s: added_tokens[%zu]: id %lld is \"%.40s\" in model.vocab, not \"%.40s\"",
                        c->path, i, (long long)id, pieces[id], content);
            goto done;
        }
        pieces[id] = content;
        types[id] = jbool(v, "special", false) ? HN_TT_CONTROL : HN_TT_USER;
        // hone matches added tokens in the raw text, exactly; these options change where Hugging Face matches them
        if ((jbool(v, "lstrip", false) || jbool(v, "rstrip", false) || jbool(v, "single_word", false) ||
             (jbool(v, "normalized", types[id] == HN_TT_USER) && c->tk->n_norm)) &&
            !n_unapplied++)
            first_unapplied = i;
    }
    if (n_unapplied)
        hn_warn("%s: added_tokens[%zu] and %d more: lstrip/rstrip/single_word/normalized are not applied (hone "
                "matches the exact text)", c->path, first_unapplied, n_unapplied - 1);
    for (int64_t t = 0; t < n; t++) {
        if (!pieces[t]) {
            s = hn_fail(HN_ERR_FORMAT, "%s: model.vocab: no token has id %lld (ids must run from 0 to %lld)", c->path,
                        (long long)t, (long long)n - 1);
            goto done;
        }
        // SentencePiece's byte tokens are typed as GGUF's byte tokens.
        if (c->tk->kind == HN_TOKENIZER_LLAMA && types[t] == HN_TT_NORMAL && strlen(pieces[t]) == 6 &&
            !memcmp(pieces[t], "<0x", 3) && pieces[t][5] == '>')
            types[t] = HN_TT_BYTE;
    }
    s = hn_tok_set_vocab(c->tk, pieces, types, (int32_t)n, c->path);
done:
    free(pieces);
    free(types);
    return s;
}

static hn_status parse_merges(hf_ctx *c, const json_t *merges) {
    if (!json_is_array(merges)) return bad(c, "model.merges", "an array");
    hn_status s = hn_tok_alloc_merges(c->tk, (int64_t)json_array_size(merges));
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m) {
        if (s) return s;
        const char *l, *r;
        size_t ln, rn;
        if (json_is_string(m)) { // "left right": the first space after the first character separates them
            const char *t = json_string_value(m);
            size_t n = strlen(t);
            const char *sp = n > 1 ? memchr(t + 1, ' ', n - 1) : NULL;
            if (!sp || sp == t + n - 1)
                return hn_fail(HN_ERR_FORMAT, "%s: model.merges[%zu] = \"%.60s\": expected \"LEFT RIGHT\"", c->path, i,
                               t);
            l = t, ln = (size_t)(sp - t), r = sp + 1, rn = n - ln - 1;
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            l = json_string_value(json_array_get(m, 0)), r = json_string_value(json_array_get(m, 1));
            ln = strlen(l), rn = strlen(r);
        } else {
            return hn_fail(HN_ERR_FORMAT, "%s: model.merges[%zu]: expected \"LEFT RIGHT\" or [LEFT, RIGHT]", c->path,
                           i);
        }
        s = hn_tok_add_merge(c->tk, l, ln, r, rn, (int32_t)i, c->path, "model.merges");
    }
    return s;
}

static int32_t named_id(const hn_tokenizer *tk, const char *name) { return name ? hn_tokenizer_find(tk, name) : -1; }

// post_processor: the tokens that frame a single sequence.
static hn_status parse_post(hf_ctx *c, const json_t *p, const char *field) {
    if (!p || json_is_null(p)) return HN_OK;
    hn_tokenizer *tk = c->tk;
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) return bad(c, field, "a post-processor object with a \"type\"");
    bool bert = tk->kind == HN_TOKENIZER_BERT;
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(p, "processors");
        for (size_t i = 0; i < json_array_size(list); i++) {
            hn_status s = parse_post(c, json_array_get(list, i), field);
            if (s) return s;
        }
        return HN_OK;
    }
    if (!strcmp(type, "ByteLevel")) return HN_OK;
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        json_t *cls = json_object_get(p, "cls"), *sep = json_object_get(p, "sep");
        json_t *ci = json_array_get(cls, 1), *si = json_array_get(sep, 1);
        int64_t cv = json_is_integer(ci) ? json_integer_value(ci) : -1;
        int64_t sv = json_is_integer(si) ? json_integer_value(si) : -1;
        if (cv < 0 || cv >= tk->n_vocab || sv < 0 || sv >= tk->n_vocab)
            return bad(c, field, "\"cls\": [TOKEN, ID] and \"sep\": [TOKEN, ID] with ids in the vocabulary");
        *(bert ? &tk->cls : &tk->bos) = (int32_t)json_integer_value(ci);
        *(bert ? &tk->sep : &tk->eos) = (int32_t)json_integer_value(si);
        tk->add_bos = tk->add_eos = true;
        return HN_OK;
    }
    if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(p, "single");
        if (!json_is_array(single)) return bad(c, field, "\"single\": [...]");
        bool seen_seq = false;
        size_t i;
        json_t *item;
        json_array_foreach(single, i, item) {
            if (json_object_get(item, "Sequence")) {
                seen_seq = true;
                continue;
            }
            const char *name = json_string_value(json_object_get(json_object_get(item, "SpecialToken"), "id"));
            // the special_tokens map gives the ids; one id per framing token is what hone supports
            json_t *specials = json_object_get(p, "special_tokens");
            json_t *ids = json_object_get(json_object_get(specials, name ? name : ""), "ids");
            if (!name || json_array_size(ids) != 1 || !json_is_integer(json_array_get(ids, 0)))
                return bad(c, field, "\"single\": [{\"SpecialToken\": {\"id\": NAME}}, ...], one id each");
            int64_t id = json_integer_value(json_array_get(ids, 0));
            if (id < 0 || id >= tk->n_vocab) return bad(c, field, "special_tokens ids in the vocabulary");
            if (!seen_seq) {
                *(bert ? &tk->cls : &tk->bos) = (int32_t)id;
                tk->add_bos = true;
            } else {
                *(bert ? &tk->sep : &tk->eos) = (int32_t)id;
                tk->add_eos = true;
            }
        }
        return HN_OK;
    }
    char sub[96];
    snprintf(sub, sizeof sub, "%s.type", field);
    return unsupported(c, sub, type, "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence");
}

// tokenizer_config.json: the special tokens by name, add_bos_token / add_eos_token, the chat template.
static hn_status apply_config(hn_tokenizer *tk, const json_t *cfg, const char *path) {
    static const struct {
        const char *key;
        size_t off;
    } names[] = {{"bos_token", offsetof(hn_tokenizer, bos)}, {"eos_token", offsetof(hn_tokenizer, eos)},
                 {"unk_token", offsetof(hn_tokenizer, unk)}, {"pad_token", offsetof(hn_tokenizer, pad)},
                 {"cls_token", offsetof(hn_tokenizer, cls)}, {"sep_token", offsetof(hn_tokenizer, sep)},
                 {"mask_token", offsetof(hn_tokenizer, mask)}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *name = token_name(json_object_get(cfg, names[i].key));
        if (!name) continue;
        int32_t id = named_id(tk, name);
        if (id < 0)
            return hn_fail(HN_ERR_FORMAT, "%s: %s = \"%.40s\" is not in the vocabulary", path, names[i].key, name);
        *(int32_t *)((char *)tk + names[i].off) = id;
    }
    json_t *v;
    if (json_is_boolean(v = json_object_get(cfg, "add_bos_token"))) tk->add_bos = json_is_true(v);
    if (json_is_boolean(v = json_object_get(cfg, "add_eos_token"))) tk->add_eos = json_is_true(v);
    json_t *tmpl = json_object_get(cfg, "chat_template");
    if (json_is_array(tmpl)) { // [{"name": "default", "template": ...}, ...]
        size_t i;
        json_t *t;
        json_t *pick = NULL;
        json_array_foreach(tmpl, i, t) if (!pick || !strcmp(json_string_value(json_object_get(t, "name")) ?: "",
                                                            "default")) pick = json_object_get(t, "template");
        tmpl = pick;
    }
    if (json_is_string(tmpl) && !tk->chat_template && !(tk->chat_template = strdup(json_string_value(tmpl))))
        return hn_fail(HN_ERR_NOMEM, "out of memory");
    return HN_OK;
}

static hn_status from_tokenizer_json(hn_tokenizer *tk, const char *path) {
    hn_status s = HN_OK;
    json_t *j = load_json(path, &s);
    if (!j) return s;
    hf_ctx c = {tk, path, false};
    json_t *model = json_object_get(j, "model");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!json_is_object(model)) {
        s = bad(&c, "model", "an object");
        goto done;
    }
    if (!type && json_object_get(model, "merges")) type = "BPE"; // older files omit the type
    if (!type) {
        s = bad(&c, "model.type", "\"BPE\" or \"WordPiece\"");
        goto done;
    }
    json_t *added = json_object_get(j, "added_tokens");
    if (added && !json_is_array(added)) {
        s = bad(&c, "added_tokens", "an array");
        goto done;
    }
    if ((s = parse_normalizer(&c, json_object_get(j, "normalizer"), "normalizer")) ||
        (s = parse_pre(&c, json_object_get(j, "pre_tokenizer"), "pre_tokenizer")))
        goto done;
    strcpy(tk->wp_prefix, "##");
    tk->wp_max_chars = 100;
    if (!strcmp(type, "WordPiece")) {
        tk->kind = HN_TOKENIZER_BERT;
        const char *prefix = json_string_value(json_object_get(model, "continuing_subword_prefix"));
        if (prefix && strlen(prefix) >= sizeof tk->wp_prefix) {
            s = bad(&c, "model.continuing_subword_prefix", "at most 7 bytes");
            goto done;
        }
        if (prefix) strcpy(tk->wp_prefix, prefix);
        json_t *mx = json_object_get(model, "max_input_chars_per_word");
        if (json_is_integer(mx)) tk->wp_max_chars = (int)json_integer_value(mx);
    } else if (!strcmp(type, "BPE")) {
        tk->kind = c.byte_level ? HN_TOKENIZER_GPT2 : HN_TOKENIZER_LLAMA;
        const char *suffix = json_string_value(json_object_get(model, "end_of_word_suffix"));
        const char *prefix = json_string_value(json_object_get(model, "continuing_subword_prefix"));
        if ((suffix && *suffix) || (prefix && *prefix)) {
            s = unsupported(&c, suffix && *suffix ? "model.end_of_word_suffix" : "model.continuing_subword_prefix",
                            suffix && *suffix ? suffix : prefix, "BPE without word affixes");
            goto done;
        }
        tk->byte_fallback = jbool(model, "byte_fallback", false);
        tk->fuse_unk = jbool(model, "fuse_unk", false);
        tk->ignore_merges = jbool(model, "ignore_merges", false);
    } else {
        s = unsupported(&c, "model.type", type, "BPE and WordPiece");
        goto done;
    }
    if ((s = parse_vocab(&c, model, added))) goto done;
    if (!strcmp(type, "BPE") && (s = parse_merges(&c, json_object_get(model, "merges")))) goto done;
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    if (unk && (tk->unk = named_id(tk, unk)) < 0) {
        s = hn_fail(HN_ERR_FORMAT, "%s: model.unk_token = \"%.40s\" is not in the vocabulary", path, unk);
        goto done;
    }
    tk->byte_unk = unk && tk->kind == HN_TOKENIZER_GPT2;
    if ((s = parse_post(&c, json_object_get(j, "post_processor"), "post_processor"))) goto done;
    // SentencePiece's decoder strips the space of the prepended "▁".
    for (int i = 0; i < tk->n_norm; i++)
        if (tk->norm[i].kind == HN_NORM_PREPEND && !strcmp(tk->norm[i].to, "\xE2\x96\x81")) tk->strip_space = true;
    for (int i = 0; i < tk->n_pre; i++)
        if (tk->pre[i].kind == HN_PRE_METASPACE && (tk->pre[i].prepend_first || tk->pre[i].prepend_always))
            tk->strip_space = true;
done:
    json_decref(j);
    return s;
}

// vocab.txt: one WordPiece entry a line, configured as BertTokenizer's defaults.
static hn_status from_vocab_txt(hn_tokenizer *tk, const char *path, bool lower) {
    hn_map m;
    hn_status s = hn_map_open(&m, path);
    if (s) return s;
    const char *d = (const char *)m.data;
    size_t n = m.size, lines = 0;
    for (size_t i = 0; i < n; i++) lines += d[i] == '\n';
    if (n && d[n - 1] != '\n') lines++;
    char *copy = hn_alloc(n + 1, "vocab.txt");
    const char **pieces = hn_calloc(lines ? lines : 1, sizeof *pieces, "token list");
    uint8_t *types = hn_calloc(lines ? lines : 1, 1, "token types");
    if (!copy || !pieces || !types) {
        s = HN_ERR_NOMEM;
        goto done;
    }
    if (!lines) {
        s = hn_fail(HN_ERR_FORMAT, "%s: empty, expected one vocabulary entry a line", path);
        goto done;
    }
    memcpy(copy, d, n);
    copy[n] = '\0';
    size_t k = 0;
    for (char *p = copy; k < lines; k++) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        size_t len = strlen(p);
        if (len && p[len - 1] == '\r') p[len - 1] = '\0';
        pieces[k] = p;
        types[k] = HN_TT_NORMAL;
        if (!strcmp(p, "[PAD]") || !strcmp(p, "[UNK]") || !strcmp(p, "[CLS]") || !strcmp(p, "[SEP]") ||
            !strcmp(p, "[MASK]"))
            types[k] = HN_TT_CONTROL;
        p = nl ? nl + 1 : p + len;
    }
    tk->kind = HN_TOKENIZER_BERT;
    strcpy(tk->wp_prefix, "##");
    tk->wp_max_chars = 100;
    if ((s = hn_tok_set_vocab(tk, pieces, types, (int32_t)lines, path))) goto done;
    tk->norm[tk->n_norm++] = (hn_norm_step){HN_NORM_BERT, true, true, lower, lower, NULL, NULL};
    tk->pre[tk->n_pre++] = (hn_pre_step){.kind = HN_PRE_BERT};
    tk->unk = named_id(tk, "[UNK]");
    tk->cls = named_id(tk, "[CLS]");
    tk->sep = named_id(tk, "[SEP]");
    tk->add_bos = tk->cls >= 0;
    tk->add_eos = tk->sep >= 0;
done:
    free(copy);
    free(pieces);
    free(types);
    hn_map_close(&m);
    return s;
}

// GPT-2's older files: vocab.json ({piece: id}) and merges.txt ("#version" line, then "LEFT RIGHT" a line), byte-level
// with GPT-2's split pattern; tokenizer_config.json's added_tokens_decoder and its bos/eos/unk/pad names mark the
// special tokens, as transformers does when it converts them.
static hn_status from_vocab_merges(hn_tokenizer *tk, const char *vj, const char *mt, const json_t *cfg) {
    hn_status s = HN_OK;
    json_t *vocab = load_json(vj, &s);
    if (!vocab) return s;
    hn_map m = {0};
    hf_ctx c = {tk, vj, true};
    json_t *fake = json_pack("{s:s, s:o}", "type", "BPE", "vocab", json_incref(vocab));
    json_t *added = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(cfg, "added_tokens_decoder"), k, v) {
        const char *content = token_name(v);
        char *end;
        long id = strtol(k, &end, 10);
        if (content && !*end && id >= 0)
            json_array_append_new(added, json_pack("{s:i, s:s, s:b}", "id", (int)id, "content", content,
                                                   "special", jbool(v, "special", false)));
    }
    static const char *names[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *name = token_name(json_object_get(cfg, names[i]));
        json_t *id = name ? json_object_get(vocab, name) : NULL;
        if (json_is_integer(id))
            json_array_append_new(added, json_pack("{s:I, s:s, s:b}", "id", json_integer_value(id), "content", name,
                                                   "special", 1));
    }
    tk->kind = HN_TOKENIZER_GPT2;
    if (!fake || !added) s = hn_fail(HN_ERR_NOMEM, "out of memory");
    if (!s) s = add_pre(&c, (hn_pre_step){.kind = HN_PRE_SPLIT, .pattern = (char *)hn_gpt2_split_pattern}, "vocab");
    if (!s) s = parse_vocab(&c, fake, added);
    if (!s) s = hn_map_open(&m, mt);
    if (!s) {
        const char *d = (const char *)m.data, *end = d + m.size;
        int64_t lines = 1;
        for (size_t i = 0; i < m.size; i++) lines += d[i] == '\n';
        s = hn_tok_alloc_merges(tk, lines);
        int32_t rank = 0;
        for (const char *p = d; p < end && !s;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = (size_t)((nl ? nl : end) - p);
            if (len && p[len - 1] == '\r') len--;
            bool skip = !len || (rank == 0 && len >= 8 && !memcmp(p, "#version", 8));
            const char *sp = len > 1 ? memchr(p + 1, ' ', len - 1) : NULL;
            if (!skip && (!sp || sp == p + len - 1))
                s = hn_fail(HN_ERR_FORMAT, "%s: merge %d = \"%.*s\": expected \"LEFT RIGHT\"", mt, rank,
                            (int)(len > 60 ? 60 : len), p);
            else if (!skip)
                s = hn_tok_add_merge(tk, p, (size_t)(sp - p), sp + 1, len - (size_t)(sp - p) - 1, rank++, mt, "merges");
            p = nl ? nl + 1 : end;
        }
    }
    hn_map_close(&m);
    json_decref(fake);
    json_decref(added);
    json_decref(vocab);
    return s;
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static hn_status load_dir(hn_tokenizer *tk, const char *dir) {
    char tj[4096], cf[4096], vt[4096], vj[4096], mt[4096];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    snprintf(cf, sizeof cf, "%s/tokenizer_config.json", dir);
    snprintf(vt, sizeof vt, "%s/vocab.txt", dir);
    snprintf(vj, sizeof vj, "%s/vocab.json", dir);
    snprintf(mt, sizeof mt, "%s/merges.txt", dir);
    hn_status s = HN_OK;
    json_t *cfg = exists(cf) ? load_json(cf, &s) : NULL;
    if (s) return s;
    if (exists(tj)) s = from_tokenizer_json(tk, tj);
    else if (exists(vj) && exists(mt)) s = from_vocab_merges(tk, vj, mt, cfg);
    else if (exists(vt)) s = from_vocab_txt(tk, vt, jbool(cfg, "do_lower_case", true));
    else s = hn_fail(HN_ERR_NOTFOUND, "%s: no tokenizer.json, vocab.json + merges.txt, or vocab.txt", dir);
    if (!s && cfg) s = apply_config(tk, cfg, cf);
    json_decref(cfg);
    if (s) return s;
    if (tk->kind == HN_TOKENIZER_BERT) { // BertTokenizer's names where the files do not say
        if (tk->cls < 0) tk->cls = named_id(tk, "[CLS]");
        if (tk->sep < 0) tk->sep = named_id(tk, "[SEP]");
        if (tk->pad < 0) tk->pad = named_id(tk, "[PAD]");
        if (tk->mask < 0) tk->mask = named_id(tk, "[MASK]");
        if (tk->unk < 0) tk->unk = named_id(tk, "[UNK]");
    }
    return hn_tok_finish(tk);
}

hn_status hn_tokenizer_from_hf_dir(hn_tokenizer **out, const char *dir) {
    *out = NULL;
    hn_tokenizer *tk = hn_tok_new();
    if (!tk) return HN_ERR_NOMEM;
    hn_status s = load_dir(tk, dir);
    if (s) {
        hn_tokenizer_destroy(tk);
        return s;
    }
    *out = tk;
    return HN_OK;
}

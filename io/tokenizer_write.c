// io/tokenizer_write.c — a tokenizer written out: the GGUF tokenizer.ggml.* keys (llama.cpp's names and
// conventions) and a Hugging Face tokenizer.json + tokenizer_config.json. Both read back (io/tokenizer.c,
// io/hf_tokenizer.c) to a tokenizer that encodes the same; tests/test_tokenizer_hf.c checks that on every golden.
//
// What GGUF cannot say: a gpt2 pre-tokenizer is stored by llama.cpp's name for its regexes (gpt2, smollm, llama-bpe,
// qwen2), so other regex sequences are refused; a llama tokenizer is SentencePiece's behaviour in llama.cpp (a "▁"
// before every piece of text, after special tokens too), so a Metaspace(prepend_scheme "first") tokenizer becomes the
// legacy one there; merges are written as well as scores, and hone reads the merges back.
#include "io/tokenizer_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char llama3_pat[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                 "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char qwen2_pat[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// llama.cpp's name for a gpt2 tokenizer's pre-tokenizer steps, or NULL.
static const char *pre_name(const hn_tokenizer *tk) {
    const hn_pre_step *p = tk->pre;
    for (int i = 0; i < tk->n_pre; i++)
        if (p[i].kind != HN_PRE_SPLIT || p[i].removed) return NULL;
    if (tk->n_pre == 1 && !strcmp(p[0].pattern, hn_gpt2_split_pattern)) return "gpt-2"; // llama.cpp refuses "gpt2"
    if (tk->n_pre == 2 && !strcmp(p[0].pattern, "\\p{N}") && !strcmp(p[1].pattern, hn_gpt2_split_pattern))
        return "smollm";
    if (tk->n_pre == 1 && !strcmp(p[0].pattern, llama3_pat)) return "llama-bpe";
    if (tk->n_pre == 1 && !strcmp(p[0].pattern, qwen2_pat)) return "qwen2";
    return NULL;
}

typedef struct {
    int32_t rank, left, right;
} merge_row;

static int cmp_rank(const void *a, const void *b) {
    const merge_row *x = a, *y = b;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

// The merges in rank order (malloc'd), *n of them.
static merge_row *merge_list(const hn_tokenizer *tk, int32_t *n) {
    *n = 0;
    merge_row *rows = hn_calloc(tk->n_merges ? (size_t)tk->n_merges : 1, sizeof *rows, "merge list");
    if (!rows || !tk->merges) return rows;
    for (uint64_t h = 0; h <= tk->merge_mask; h++) {
        const hn_merge_slot *s = &tk->merges[h];
        if (!s->key || *n == tk->n_merges) continue;
        uint64_t k = s->key - 1;
        rows[(*n)++] = (merge_row){s->rank, (int32_t)(k >> 32), (int32_t)(uint32_t)k};
    }
    qsort(rows, (size_t)*n, sizeof *rows, cmp_rank);
    return rows;
}

static const char *piece(const hn_tokenizer *tk, int32_t id) { return tk->pieces + tk->piece_off[id]; }

static bool has_prepend(const hn_tokenizer *tk) {
    for (int i = 0; i < tk->n_norm; i++)
        if (tk->norm[i].kind == HN_NORM_PREPEND) return true;
    for (int i = 0; i < tk->n_pre; i++)
        if (tk->pre[i].kind == HN_PRE_METASPACE && (tk->pre[i].prepend_first || tk->pre[i].prepend_always))
            return true;
    return false;
}

static const hn_norm_step *bert_norm(const hn_tokenizer *tk) {
    for (int i = 0; i < tk->n_norm; i++)
        if (tk->norm[i].kind == HN_NORM_BERT) return &tk->norm[i];
    return NULL;
}

// The tokens as GGUF writes them: bert in llama.cpp's spelling ("▁word", continuations bare).
static hn_status gguf_tokens(const hn_tokenizer *tk, char ***out) {
    char **t = hn_calloc((size_t)tk->n_vocab, sizeof *t, "token list");
    if (!t) return HN_ERR_NOMEM;
    size_t pl = strlen(tk->wp_prefix);
    for (int32_t i = 0; i < tk->n_vocab; i++) {
        const char *p = piece(tk, i);
        size_t len = strlen(p);
        t[i] = malloc(len + 4);
        if (!t[i]) {
            for (int32_t k = 0; k < i; k++) free(t[k]);
            free(t);
            return hn_fail(HN_ERR_NOMEM, "out of memory");
        }
        if (tk->kind == HN_TOKENIZER_BERT && tk->type[i] != HN_TT_CONTROL) {
            if (pl && len > pl && !memcmp(p, tk->wp_prefix, pl)) memcpy(t[i], p + pl, len - pl + 1);
            else memcpy(t[i], "\xE2\x96\x81", 3), memcpy(t[i] + 3, p, len + 1);
        } else {
            memcpy(t[i], p, len + 1);
        }
    }
    *out = t;
    return HN_OK;
}

static hn_status set_id(hn_gguf_writer *w, const char *key, int32_t id) {
    return id >= 0 ? hn_gguf_writer_set_u32(w, key, (uint32_t)id) : HN_OK;
}

hn_status hn_tokenizer_to_gguf(const hn_tokenizer *tk, hn_gguf_writer *w) {
    static const char *models[] = {"gpt2", "llama", "bert"};
    const char *pre = tk->kind == HN_TOKENIZER_GPT2 ? pre_name(tk) : "default";
    if (!pre)
        return hn_fail(HN_ERR_UNSUPPORTED, "tokenizer: its pre-tokenizer (%d steps, first \"%.60s\") has no llama.cpp "
                                           "name (hone writes gpt2, smollm, llama-bpe and qwen2)",
                       tk->n_pre, tk->n_pre ? (tk->pre[0].pattern ? tk->pre[0].pattern : "?") : "");
    hn_status s;
    if ((s = hn_gguf_writer_set_str(w, "tokenizer.ggml.model", models[tk->kind])) ||
        (s = hn_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre)))
        return s;
    char **tokens = NULL;
    if ((s = gguf_tokens(tk, &tokens))) return s;
    s = hn_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", HN_GGUF_STRING, tokens, (uint64_t)tk->n_vocab);
    for (int32_t i = 0; i < tk->n_vocab; i++) free(tokens[i]);
    free(tokens);
    if (s) return s;
    int32_t *types = hn_calloc((size_t)tk->n_vocab, sizeof *types, "token types");
    if (!types) return HN_ERR_NOMEM;
    for (int32_t i = 0; i < tk->n_vocab; i++) types[i] = tk->type[i] ? tk->type[i] : HN_TT_NORMAL;
    s = hn_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", HN_GGUF_I32, types, (uint64_t)tk->n_vocab);
    free(types);
    if (s) return s;

    if (tk->kind != HN_TOKENIZER_BERT) {
        int32_t n;
        merge_row *rows = merge_list(tk, &n);
        if (!rows) return HN_ERR_NOMEM;
        // llama: scores too (llama.cpp merges by them): the file's, or minus the rank of the merge making the token.
        float *scores = tk->kind == HN_TOKENIZER_LLAMA ? hn_calloc((size_t)tk->n_vocab, sizeof *scores, "scores")
                                                       : NULL;
        char **ms = hn_calloc(n ? (size_t)n : 1, sizeof *ms, "merge strings");
        s = !ms || (tk->kind == HN_TOKENIZER_LLAMA && !scores) ? HN_ERR_NOMEM : HN_OK;
        if (scores) {
            for (int32_t i = 0; i < tk->n_vocab; i++) scores[i] = tk->scores ? tk->scores[i] : -1e9f;
            for (int32_t r = n - 1; r >= 0 && !tk->scores; r--) {
                int32_t rank, id = hn_bpe_merge_find(tk, rows[r].left, rows[r].right, &rank);
                if (id >= 0) scores[id] = -(float)rows[r].rank;
            }
            for (int32_t i = 0; i < tk->n_vocab && !tk->scores; i++)
                if (scores[i] == -1e9f) scores[i] = 0; // single characters, bytes, specials
        }
        for (int32_t r = 0; r < n && !s; r++) {
            const char *a = piece(tk, rows[r].left), *b = piece(tk, rows[r].right);
            size_t la = strlen(a), lb = strlen(b);
            if (!(ms[r] = malloc(la + lb + 2))) s = hn_fail(HN_ERR_NOMEM, "out of memory");
            else memcpy(ms[r], a, la), ms[r][la] = ' ', memcpy(ms[r] + la + 1, b, lb + 1);
        }
        if (!s && !tk->merges_from_scores)
            s = hn_gguf_writer_set_arr(w, "tokenizer.ggml.merges", HN_GGUF_STRING, ms, (uint64_t)n);
        if (!s && scores)
            s = hn_gguf_writer_set_arr(w, "tokenizer.ggml.scores", HN_GGUF_F32, scores, (uint64_t)tk->n_vocab);
        for (int32_t r = 0; ms && r < n; r++) free(ms[r]);
        free(ms);
        free(scores);
        free(rows);
        if (s) return s;
    }

    bool bert = tk->kind == HN_TOKENIZER_BERT;
    if ((s = set_id(w, "tokenizer.ggml.bos_token_id", bert ? tk->cls : tk->bos)) || // llama.cpp: BERT's bos is [CLS]
        (s = set_id(w, "tokenizer.ggml.eos_token_id", bert ? tk->sep : tk->eos)) || // and [SEP] its eos
        (s = set_id(w, "tokenizer.ggml.unknown_token_id", tk->unk)) ||
        (s = set_id(w, "tokenizer.ggml.seperator_token_id", tk->sep)) ||
        (s = set_id(w, "tokenizer.ggml.padding_token_id", tk->pad)) ||
        (s = set_id(w, "tokenizer.ggml.mask_token_id", tk->mask)) ||
        (s = hn_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", tk->add_bos)) ||
        (s = hn_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", tk->add_eos)))
        return s;
    if (tk->kind == HN_TOKENIZER_LLAMA &&
        (s = hn_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", has_prepend(tk))))
        return s;
    const hn_norm_step *bn = bert_norm(tk);
    if (bert && (s = hn_gguf_writer_set_bool(w, "tokenizer.ggml.normalizer.lowercase", bn && bn->lowercase))) return s;
    if (tk->chat_template && (s = hn_gguf_writer_set_str(w, "tokenizer.chat_template", tk->chat_template))) return s;
    return HN_OK;
}

// ---- tokenizer.json ----

static json_t *split_step(const hn_pre_step *p) {
    return json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", p->pattern, "behavior",
                     p->removed ? "Removed" : "Isolated", "invert", 0);
}

static json_t *normalizer_json(const hn_tokenizer *tk) {
    json_t *list = json_array();
    static const char *simple[] = {[HN_NORM_NFC] = "NFC", [HN_NORM_NFD] = "NFD", [HN_NORM_NFKC] = "NFKC",
                                   [HN_NORM_NFKD] = "NFKD", [HN_NORM_LOWERCASE] = "Lowercase",
                                   [HN_NORM_STRIP_ACCENTS] = "StripAccents"};
    for (int i = 0; i < tk->n_norm; i++) {
        const hn_norm_step *n = &tk->norm[i];
        json_t *o;
        if (n->kind == HN_NORM_BERT)
            o = json_pack("{s:s, s:b, s:b, s:b, s:b}", "type", "BertNormalizer", "clean_text", n->clean_text,
                          "handle_chinese_chars", n->chinese, "strip_accents", n->strip_accents, "lowercase",
                          n->lowercase);
        else if (n->kind == HN_NORM_PREPEND) o = json_pack("{s:s, s:s}", "type", "Prepend", "prepend", n->to);
        else if (n->kind == HN_NORM_REPLACE)
            o = json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", n->from, "content", n->to);
        else o = json_pack("{s:s}", "type", simple[n->kind]);
        json_array_append_new(list, o);
    }
    if (json_array_size(list) == 0) {
        json_decref(list);
        return json_null();
    }
    if (json_array_size(list) == 1) {
        json_t *one = json_incref(json_array_get(list, 0));
        json_decref(list);
        return one;
    }
    return json_pack("{s:s, s:o}", "type", "Sequence", "normalizers", list);
}

static json_t *pre_tokenizer_json(const hn_tokenizer *tk, hn_status *s) {
    json_t *list = json_array();
    bool prefix = false;
    for (int i = 0; i < tk->n_pre; i++) {
        const hn_pre_step *p = &tk->pre[i];
        switch (p->kind) {
        case HN_PRE_SPLIT: json_array_append_new(list, split_step(p)); break;
        case HN_PRE_BERT: json_array_append_new(list, json_pack("{s:s}", "type", "BertPreTokenizer")); break;
        case HN_PRE_METASPACE:
            json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement",
                                                  "\xE2\x96\x81", "prepend_scheme",
                                                  p->prepend_always ? "always" : p->prepend_first ? "first" : "never",
                                                  "split", p->split));
            break;
        case HN_PRE_PREFIX_SPACE:
            if (i != 0) {
                *s = hn_fail(HN_ERR_UNSUPPORTED, "tokenizer: a prefix space after other pre-tokenizer steps cannot be "
                                                 "written as tokenizer.json");
                json_decref(list);
                return NULL;
            }
            prefix = true;
            break;
        }
    }
    if (tk->kind == HN_TOKENIZER_GPT2) {
        // ByteLevel last; with the GPT-2 pattern alone, ByteLevel's own regex (as GPT-2's file has it)
        bool own = json_array_size(list) == 1 && !strcmp(tk->pre[tk->n_pre - 1].pattern, hn_gpt2_split_pattern);
        if (own) json_array_clear(list);
        json_array_append_new(list, json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", prefix,
                                              "trim_offsets", 1, "use_regex", own));
    }
    if (json_array_size(list) == 0) {
        json_decref(list);
        return json_null();
    }
    if (json_array_size(list) == 1) {
        json_t *one = json_incref(json_array_get(list, 0));
        json_decref(list);
        return one;
    }
    return json_pack("{s:s, s:o}", "type", "Sequence", "pretokenizers", list);
}

static json_t *decoder_json(const hn_tokenizer *tk) {
    if (tk->kind == HN_TOKENIZER_GPT2)
        return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1,
                         "use_regex", 1);
    if (tk->kind == HN_TOKENIZER_BERT)
        return json_pack("{s:s, s:s, s:b}", "type", "WordPiece", "prefix", tk->wp_prefix, "cleanup", 1);
    // llama, with the Prepend normaliser or Metaspace alike: the decoder transformers' LlamaConverter writes
    json_t *seq = json_pack("[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}]", "type", "Replace", "pattern", "String",
                            "\xE2\x96\x81", "content", " ", "type", "ByteFallback", "type", "Fuse");
    if (tk->strip_space)
        json_array_append_new(seq, json_pack("{s:s, s:s, s:i, s:i}", "type", "Strip", "content", " ", "start", 1,
                                             "stop", 0));
    return json_pack("{s:s, s:o}", "type", "Sequence", "decoders", seq);
}

static json_t *post_processor_json(const hn_tokenizer *tk) {
    bool bert = tk->kind == HN_TOKENIZER_BERT;
    int32_t first = tk->add_bos ? (bert ? tk->cls : tk->bos) : -1, last = tk->add_eos ? (bert ? tk->sep : tk->eos) : -1;
    if (first < 0 && last < 0) return json_null();
    json_t *single = json_array(), *pair = json_array(), *specials = json_object();
    json_t *a = json_pack("{s:{s:s, s:i}}", "Sequence", "id", "A", "type_id", 0);
    json_t *b = json_pack("{s:{s:s, s:i}}", "Sequence", "id", "B", "type_id", 1);
    const char *st = "{s:{s:s, s:i}}";
    if (first >= 0) {
        json_array_append_new(single, json_pack(st, "SpecialToken", "id", piece(tk, first), "type_id", 0));
        json_array_append_new(pair, json_pack(st, "SpecialToken", "id", piece(tk, first), "type_id", 0));
        json_object_set_new(specials, piece(tk, first),
                            json_pack("{s:s, s:[i], s:[s]}", "id", piece(tk, first), "ids", first, "tokens",
                                      piece(tk, first)));
    }
    json_array_append(single, a);
    json_array_append_new(pair, a);
    if (last >= 0) {
        json_array_append_new(single, json_pack(st, "SpecialToken", "id", piece(tk, last), "type_id", 0));
        json_array_append_new(pair, json_pack(st, "SpecialToken", "id", piece(tk, last), "type_id", 0));
        json_object_set_new(specials, piece(tk, last),
                            json_pack("{s:s, s:[i], s:[s]}", "id", piece(tk, last), "ids", last, "tokens",
                                      piece(tk, last)));
    }
    if (first >= 0 && !bert) // as hn_tokenizer_encode_pair: BOS a EOS BOS b EOS, BERT [CLS] a [SEP] b [SEP]
        json_array_append_new(pair, json_pack(st, "SpecialToken", "id", piece(tk, first), "type_id", 1));
    json_array_append_new(pair, b);
    if (last >= 0)
        json_array_append_new(pair, json_pack(st, "SpecialToken", "id", piece(tk, last), "type_id", 1));
    return json_pack("{s:s, s:o, s:o, s:o}", "type", "TemplateProcessing", "single", single, "pair", pair,
                     "special_tokens", specials);
}

static json_t *model_json(const hn_tokenizer *tk, hn_status *s) {
    json_t *vocab = json_object();
    for (int32_t i = 0; i < tk->n_vocab; i++)
        if (!json_object_get(vocab, piece(tk, i))) json_object_set_new(vocab, piece(tk, i), json_integer(i));
    // byte-level BPE names its unk only where missing bytes become it (hone drops them otherwise)
    bool unk_used = tk->unk >= 0 && (tk->kind != HN_TOKENIZER_GPT2 || tk->byte_unk);
    json_t *unk = unk_used ? json_string(piece(tk, tk->unk)) : json_null();
    if (tk->kind == HN_TOKENIZER_BERT)
        return json_pack("{s:s, s:o, s:s, s:i, s:o}", "type", "WordPiece", "unk_token", unk,
                         "continuing_subword_prefix", tk->wp_prefix, "max_input_chars_per_word", tk->wp_max_chars,
                         "vocab", vocab);
    int32_t n;
    merge_row *rows = merge_list(tk, &n);
    json_t *merges = json_array();
    for (int32_t r = 0; rows && r < n; r++)
        json_array_append_new(merges, json_pack("[s, s]", piece(tk, rows[r].left), piece(tk, rows[r].right)));
    free(rows);
    if (!rows) *s = HN_ERR_NOMEM;
    return json_pack("{s:s, s:n, s:o, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout", "unk_token",
                     unk, "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", tk->fuse_unk,
                     "byte_fallback", tk->byte_fallback, "ignore_merges", tk->ignore_merges, "vocab", vocab,
                     "merges", merges);
}

static hn_status write_json(json_t *j, const char *path) {
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text) return hn_fail(HN_ERR_NOMEM, "%s: out of memory writing JSON", path);
    hn_afile f;
    hn_status s = hn_afile_open(&f, path);
    if (!s) s = hn_afile_write(&f, text, strlen(text));
    if (!s) s = hn_afile_write(&f, "\n", 1);
    if (!s) s = hn_afile_commit(&f);
    else hn_afile_abort(&f);
    free(text);
    return s;
}

hn_status hn_tokenizer_to_hf_dir(const hn_tokenizer *tk, const char *dir) {
    hn_status s = HN_OK;
    json_t *added = json_array();
    for (int32_t i = 0; i < tk->n_vocab; i++)
        if (tk->type[i] == HN_TT_CONTROL || tk->type[i] == HN_TT_USER || tk->type[i] == HN_TT_UNKNOWN)
            json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", i, "content",
                                                   piece(tk, i), "single_word", 0, "lstrip", 0, "rstrip", 0,
                                                   "normalized", 0, "special", tk->type[i] != HN_TT_USER));
    json_t *pre = pre_tokenizer_json(tk, &s);
    if (s) {
        json_decref(added);
        return s;
    }
    json_t *model = model_json(tk, &s);
    json_t *j = s ? NULL
                  : json_pack("{s:s, s:n, s:n, s:o, s:o, s:o, s:o, s:o, s:o}", "version", "1.0", "truncation",
                              "padding", "added_tokens", added, "normalizer", normalizer_json(tk), "pre_tokenizer",
                              pre, "post_processor", post_processor_json(tk), "decoder", decoder_json(tk), "model",
                              model);
    if (!j) {
        if (!s) s = hn_fail(HN_ERR_NOMEM, "%s: out of memory building tokenizer.json", dir);
        return s;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    s = write_json(j, path);
    json_decref(j);
    if (s) return s;

    // tokenizer_config.json: the special tokens by name, and the chat template. PreTrainedTokenizerFast takes the
    // tokenizer.json as it is (a model-specific class would rebuild the post-processor from its own flags).
    json_t *cfg = json_pack("{s:s, s:b}", "tokenizer_class", "PreTrainedTokenizerFast",
                            "clean_up_tokenization_spaces", 0);
    const struct {
        const char *key;
        int32_t id;
    } names[] = {{"bos_token", tk->bos}, {"eos_token", tk->eos}, {"unk_token", tk->unk}, {"pad_token", tk->pad},
                 {"cls_token", tk->cls}, {"sep_token", tk->sep}, {"mask_token", tk->mask}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].id >= 0) json_object_set_new(cfg, names[i].key, json_string(piece(tk, names[i].id)));
    if (tk->kind != HN_TOKENIZER_BERT) {
        json_object_set_new(cfg, "add_bos_token", json_boolean(tk->add_bos));
        json_object_set_new(cfg, "add_eos_token", json_boolean(tk->add_eos));
    }
    if (tk->chat_template) json_object_set_new(cfg, "chat_template", json_string(tk->chat_template));
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    s = write_json(cfg, path);
    json_decref(cfg);
    return s;
}

// io/hf_arch.c — one name table and one config.json reader per Hugging Face architecture hone loads (llama, qwen2,
// gpt2, bert, distilbert). GGUF names and metadata keys are llama.cpp's (gguf-py constants, convert_hf_to_gguf.py), so a
// directory and its converted GGUF look the same to the model code.
#define _GNU_SOURCE
#include "io/hf_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// ---- llama ----

static const hf_name llama_globals[] = {
    {"model.embed_tokens.weight", "token_embd.weight", HF_AS_IS},
    {"model.norm.weight", "output_norm.weight", HF_AS_IS},
    {"lm_head.weight", "output.weight", HF_AS_IS},
};

static const hf_name llama_layers[] = {
    {"input_layernorm.weight", "attn_norm.weight", HF_AS_IS},
    {"post_attention_layernorm.weight", "ffn_norm.weight", HF_AS_IS},
    {"self_attn.q_proj.weight", "attn_q.weight", HF_PERMUTE_Q},
    {"self_attn.k_proj.weight", "attn_k.weight", HF_PERMUTE_K},
    {"self_attn.v_proj.weight", "attn_v.weight", HF_AS_IS},
    {"self_attn.o_proj.weight", "attn_output.weight", HF_AS_IS},
    {"self_attn.q_proj.bias", "attn_q.bias", HF_PERMUTE_Q},
    {"self_attn.k_proj.bias", "attn_k.bias", HF_PERMUTE_K},
    {"self_attn.v_proj.bias", "attn_v.bias", HF_AS_IS},
    {"mlp.gate_proj.weight", "ffn_gate.weight", HF_AS_IS},
    {"mlp.up_proj.weight", "ffn_up.weight", HF_AS_IS},
    {"mlp.down_proj.weight", "ffn_down.weight", HF_AS_IS},
};

// Rotary buffers older checkpoints saved (per layer or once): recomputed by hone.
static const char *const llama_ignore[] = {"self_attn.rotary_emb.inv_freq", "model.rotary_emb.inv_freq", NULL};

// Rotary scaling: transformers 4 writes it as rope_scaling {"type" or "rope_type", "factor", ...} beside a top-level
// rope_theta, transformers 5 as rope_parameters {"rope_type", "rope_theta", ...}. "linear" becomes
// <arch>.rope.scaling.type/factor; "llama3" becomes the per-pair frequency factors that llama.cpp's converter
// stores as rope_freqs.weight (computed here the same way); other types are refused.
static hn_status rope_config(hf_loader *L, const char *arch, uint32_t head_dim, double *theta) {
    json_t *c = L->cfg, *rp = json_object_get(c, "rope_parameters"), *rs = json_object_get(c, "rope_scaling");
    if ((rp && !json_is_object(rp) && !json_is_null(rp)) || (rs && !json_is_object(rs) && !json_is_null(rs)))
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: rope_parameters / rope_scaling must be objects", L->dir);
    json_t *sc = json_is_object(rs) ? rs : json_is_object(rp) ? rp : NULL;
    hn_status s = hf_cfg_num(L, json_is_object(rp) && json_object_get(rp, "rope_theta") ? rp : c, "rope_theta",
                             10000, theta);
    if (s) return s;
    json_t *type = sc ? json_object_get(sc, "rope_type") : NULL;
    if (!type && sc) type = json_object_get(sc, "type");
    const char *t = json_is_string(type) ? json_string_value(type) : type ? NULL : "default";
    if (!t) return hn_fail(HN_ERR_FORMAT, "%s/config.json: rope_type must be a string", L->dir);
    if (!strcmp(t, "default")) return HN_OK;
    double factor, lo, hi, old_ctx;
    if (strcmp(t, "linear") && strcmp(t, "llama3"))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: rope scaling '%.32s' is not supported (hone knows "
                       "default, linear and llama3)", L->dir, t);
    if ((s = hf_cfg_num(L, sc, "factor", !strcmp(t, "llama3") ? 8.0 : -1, &factor))) return s;
    char key[64];
    if (!strcmp(t, "linear")) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        hf_put_str(L, key, "linear");
        snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
        hf_put_f32(L, key, (float)factor);
        return HN_OK;
    }
    if ((s = hf_cfg_num(L, sc, "low_freq_factor", 1.0, &lo)) || (s = hf_cfg_num(L, sc, "high_freq_factor", 4.0, &hi)) ||
        (s = hf_cfg_num(L, sc, "original_max_position_embeddings", 8192, &old_ctx)))
        return s;
    if (lo >= hi)
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: low_freq_factor %g must be below high_freq_factor %g", L->dir,
                       lo, hi);
    int n = (int)head_dim / 2;
    if (!(L->rope_freqs = hn_calloc((size_t)n, sizeof(float), "rope factors"))) return HN_ERR_NOMEM;
    L->n_rope_freqs = n;
    for (int i = 0; i < n; i++) {
        float freq = 1.0f / powf((float)*theta, (float)(2 * i) / (float)head_dim); // as torch computes it, in fp32
        double wavelen = 2 * M_PI / freq, lo_wl = old_ctx / lo, hi_wl = old_ctx / hi;
        if (wavelen < hi_wl) L->rope_freqs[i] = 1.0f;
        else if (wavelen > lo_wl) L->rope_freqs[i] = (float)factor;
        else {
            double smooth = (old_ctx / wavelen - lo) / (hi - lo);
            L->rope_freqs[i] = (float)(1 / ((1 - smooth) / factor + smooth));
        }
    }
    return HN_OK;
}

// The Llama family's config.json: llama (q/k rows permuted by the table) and qwen2 (q/k/v biases, rows as they are).
static hn_status family_config(hf_loader *L, const char *arch) {
    json_t *c = L->cfg;
    static const char *const silu[] = {"silu", NULL};
    const char *act;
    hn_status s = hf_cfg_choice(L, "hidden_act", silu, "silu", &act);
    if (s) return s;
    if (json_is_true(json_object_get(c, "mlp_bias")))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: mlp_bias is not supported", L->dir);
    if (json_is_true(json_object_get(c, "use_sliding_window")))
        return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: use_sliding_window is not supported", L->dir);
    uint32_t n_embd, n_ff, n_layer, n_ctx, head_dim;
    if ((s = hf_cfg_int(L, "hidden_size", -1, &n_embd)) || (s = hf_cfg_int(L, "intermediate_size", -1, &n_ff)) ||
        (s = hf_cfg_int(L, "num_hidden_layers", -1, &n_layer)) ||
        (s = hf_cfg_int(L, "num_attention_heads", -1, &L->n_head)) ||
        (s = hf_cfg_int(L, "vocab_size", -1, &L->n_vocab)) ||
        (s = hf_cfg_int(L, "num_key_value_heads", L->n_head, &L->n_head_kv)) ||
        (s = hf_cfg_int(L, "max_position_embeddings", 2048, &n_ctx)) ||
        (s = hf_cfg_int(L, "head_dim", n_embd / L->n_head, &head_dim)))
        return s;
    if (head_dim * L->n_head != n_embd)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s/config.json: head_dim %u x %u heads differs from hidden_size %u",
                       L->dir, head_dim, L->n_head, n_embd);
    if (head_dim % 2 || L->n_head_kv > L->n_head || L->n_head % L->n_head_kv)
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: %u heads of size %u with %u key/value heads: expected an "
                       "even head size and a divisor of the heads", L->dir, L->n_head, head_dim, L->n_head_kv);
    double eps, theta;
    if ((s = hf_cfg_num(L, c, "rms_norm_eps", -1, &eps)) || (s = rope_config(L, arch, head_dim, &theta))) return s;
    json_t *tie = json_object_get(c, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie))
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: tie_word_embeddings must be true or false", L->dir);
    L->tied = tie && json_is_true(tie); // LlamaConfig's and Qwen2Config's default is false
    char key[64];
#define PUT(kind, field, v) (snprintf(key, sizeof key, "%s." field, arch), hf_put_##kind(L, key, v))
    PUT(u32, "block_count", n_layer);
    PUT(u32, "embedding_length", n_embd);
    PUT(u32, "feed_forward_length", n_ff);
    PUT(u32, "attention.head_count", L->n_head);
    PUT(u32, "attention.head_count_kv", L->n_head_kv);
    PUT(u32, "context_length", n_ctx);
    PUT(u32, "vocab_size", L->n_vocab);
    PUT(u32, "rope.dimension_count", head_dim);
    PUT(f32, "attention.layer_norm_rms_epsilon", (float)eps);
    PUT(f32, "rope.freq_base", (float)theta);
#undef PUT
    return HN_OK;
}

static hn_status llama_config(hf_loader *L) { return family_config(L, "llama"); }
static hn_status qwen2_config(hf_loader *L) { return family_config(L, "qwen2"); }

// Qwen2: Llama's names, q/k/v biases, and no row permutation (llama.cpp's converter keeps the rows; the rotary pairs
// are the halves of each head).
static const hf_name qwen2_layers[] = {
    {"input_layernorm.weight", "attn_norm.weight", HF_AS_IS},
    {"post_attention_layernorm.weight", "ffn_norm.weight", HF_AS_IS},
    {"self_attn.q_proj.weight", "attn_q.weight", HF_AS_IS},
    {"self_attn.k_proj.weight", "attn_k.weight", HF_AS_IS},
    {"self_attn.v_proj.weight", "attn_v.weight", HF_AS_IS},
    {"self_attn.o_proj.weight", "attn_output.weight", HF_AS_IS},
    {"self_attn.q_proj.bias", "attn_q.bias", HF_AS_IS},
    {"self_attn.k_proj.bias", "attn_k.bias", HF_AS_IS},
    {"self_attn.v_proj.bias", "attn_v.bias", HF_AS_IS},
    {"mlp.gate_proj.weight", "ffn_gate.weight", HF_AS_IS},
    {"mlp.up_proj.weight", "ffn_up.weight", HF_AS_IS},
    {"mlp.down_proj.weight", "ffn_down.weight", HF_AS_IS},
};

// ---- gpt2 (Conv1D weights are (in, out): transposed into GGUF's rows) ----

static const hf_name gpt2_globals[] = {
    {"wte.weight", "token_embd.weight", HF_AS_IS},
    {"wpe.weight", "position_embd.weight", HF_AS_IS},
    {"ln_f.weight", "output_norm.weight", HF_AS_IS},
    {"ln_f.bias", "output_norm.bias", HF_AS_IS},
    {"lm_head.weight", "output.weight", HF_AS_IS},
};

static const hf_name gpt2_layers[] = {
    {"ln_1.weight", "attn_norm.weight", HF_AS_IS},         {"ln_1.bias", "attn_norm.bias", HF_AS_IS},
    {"attn.c_attn.weight", "attn_qkv.weight", HF_TRANSPOSE}, {"attn.c_attn.bias", "attn_qkv.bias", HF_AS_IS},
    {"attn.c_proj.weight", "attn_output.weight", HF_TRANSPOSE}, {"attn.c_proj.bias", "attn_output.bias", HF_AS_IS},
    {"ln_2.weight", "ffn_norm.weight", HF_AS_IS},          {"ln_2.bias", "ffn_norm.bias", HF_AS_IS},
    {"mlp.c_fc.weight", "ffn_up.weight", HF_TRANSPOSE},     {"mlp.c_fc.bias", "ffn_up.bias", HF_AS_IS},
    {"mlp.c_proj.weight", "ffn_down.weight", HF_TRANSPOSE}, {"mlp.c_proj.bias", "ffn_down.bias", HF_AS_IS},
};

// The causal-mask buffers older checkpoints saved.
static const char *const gpt2_ignore[] = {"attn.bias", "attn.masked_bias", NULL};

static hn_status gpt2_config(hf_loader *L) {
    static const char *const acts[] = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast", NULL};
    const char *act;
    uint32_t n_embd, n_layer, n_ctx, n_ff;
    double eps;
    hn_status s;
    if ((s = hf_cfg_choice(L, "activation_function", acts, "gelu_new", &act)) ||
        (s = hf_cfg_int(L, "n_embd", -1, &n_embd)) || (s = hf_cfg_int(L, "n_layer", -1, &n_layer)) ||
        (s = hf_cfg_int(L, "n_head", -1, &L->n_head)) || (s = hf_cfg_int(L, "vocab_size", -1, &L->n_vocab)) ||
        (s = hf_cfg_int(L, "n_positions", 1024, &n_ctx)) || (s = hf_cfg_int(L, "n_inner", 4ll * n_embd, &n_ff)) ||
        (s = hf_cfg_num(L, L->cfg, "layer_norm_epsilon", 1e-5, &eps)))
        return s;
    if (n_embd % L->n_head)
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: n_embd %u is not a multiple of n_head %u", L->dir, n_embd,
                       L->n_head);
    // Old configs have n_ctx beside (or instead of) n_positions: they must agree.
    json_t *n_ctx_old = json_object_get(L->cfg, "n_ctx");
    if (json_is_integer(n_ctx_old) && !json_object_get(L->cfg, "n_positions") && (s = hf_cfg_int(L, "n_ctx", -1, &n_ctx)))
        return s;
    if (json_is_integer(n_ctx_old) && json_integer_value(n_ctx_old) != n_ctx)
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: n_ctx %lld contradicts n_positions %u", L->dir,
                       (long long)json_integer_value(n_ctx_old), n_ctx);
    json_t *tie = json_object_get(L->cfg, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie))
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: tie_word_embeddings must be true or false", L->dir);
    L->tied = !tie || json_is_true(tie); // GPT2Config's default is true
    L->n_head_kv = L->n_head;
    hf_put_u32(L, "gpt2.block_count", n_layer);
    hf_put_u32(L, "gpt2.embedding_length", n_embd);
    hf_put_u32(L, "gpt2.feed_forward_length", n_ff);
    hf_put_u32(L, "gpt2.attention.head_count", L->n_head);
    hf_put_u32(L, "gpt2.context_length", n_ctx);
    hf_put_f32(L, "gpt2.attention.layer_norm_epsilon", (float)eps);
    return HN_OK;
}

// ---- bert and distilbert (encoders: no output head) ----

static const hf_name bert_globals[] = {
    {"embeddings.word_embeddings.weight", "token_embd.weight", HF_AS_IS},
    {"embeddings.token_type_embeddings.weight", "token_types.weight", HF_AS_IS},
    {"embeddings.position_embeddings.weight", "position_embd.weight", HF_AS_IS},
    {"embeddings.LayerNorm.weight", "token_embd_norm.weight", HF_AS_IS},
    {"embeddings.LayerNorm.bias", "token_embd_norm.bias", HF_AS_IS},
    // BERT's pooler, tanh(dense(h[CLS])), which BertForSequenceClassification classifies from: llama.cpp's "cls"
    // (its BERT graph applies cls.weight/bias then tanh to [CLS]); optional (sentence-transformers copies often keep
    // it, BertModel(add_pooling_layer=False) has none).
    {"pooler.dense.weight", "cls.weight", HF_AS_IS},
    {"pooler.dense.bias", "cls.bias", HF_AS_IS},
};

static const hf_name bert_layers[] = {
    {"attention.self.query.weight", "attn_q.weight", HF_AS_IS},
    {"attention.self.query.bias", "attn_q.bias", HF_AS_IS},
    {"attention.self.key.weight", "attn_k.weight", HF_AS_IS},
    {"attention.self.key.bias", "attn_k.bias", HF_AS_IS},
    {"attention.self.value.weight", "attn_v.weight", HF_AS_IS},
    {"attention.self.value.bias", "attn_v.bias", HF_AS_IS},
    {"attention.output.dense.weight", "attn_output.weight", HF_AS_IS},
    {"attention.output.dense.bias", "attn_output.bias", HF_AS_IS},
    {"attention.output.LayerNorm.weight", "attn_output_norm.weight", HF_AS_IS},
    {"attention.output.LayerNorm.bias", "attn_output_norm.bias", HF_AS_IS},
    {"intermediate.dense.weight", "ffn_up.weight", HF_AS_IS},
    {"intermediate.dense.bias", "ffn_up.bias", HF_AS_IS},
    {"output.dense.weight", "ffn_down.weight", HF_AS_IS},
    {"output.dense.bias", "ffn_down.bias", HF_AS_IS},
    {"output.LayerNorm.weight", "layer_output_norm.weight", HF_AS_IS},
    {"output.LayerNorm.bias", "layer_output_norm.bias", HF_AS_IS},
};

// Buffers and heads that are not the encoder's: the masked-LM and next-sentence heads, and a trained
// classification head (BertForSequenceClassification's classifier belongs to a classification run, not the base).
static const char *const bert_ignore[] = {"embeddings.position_ids", "cls.*", "classifier.*", NULL};

static const hf_name distilbert_globals[] = {
    {"embeddings.word_embeddings.weight", "token_embd.weight", HF_AS_IS},
    {"embeddings.position_embeddings.weight", "position_embd.weight", HF_AS_IS},
    {"embeddings.LayerNorm.weight", "token_embd_norm.weight", HF_AS_IS},
    {"embeddings.LayerNorm.bias", "token_embd_norm.bias", HF_AS_IS},
};

static const hf_name distilbert_layers[] = {
    {"attention.q_lin.weight", "attn_q.weight", HF_AS_IS},
    {"attention.q_lin.bias", "attn_q.bias", HF_AS_IS},
    {"attention.k_lin.weight", "attn_k.weight", HF_AS_IS},
    {"attention.k_lin.bias", "attn_k.bias", HF_AS_IS},
    {"attention.v_lin.weight", "attn_v.weight", HF_AS_IS},
    {"attention.v_lin.bias", "attn_v.bias", HF_AS_IS},
    {"attention.out_lin.weight", "attn_output.weight", HF_AS_IS},
    {"attention.out_lin.bias", "attn_output.bias", HF_AS_IS},
    {"sa_layer_norm.weight", "attn_output_norm.weight", HF_AS_IS},
    {"sa_layer_norm.bias", "attn_output_norm.bias", HF_AS_IS},
    {"ffn.lin1.weight", "ffn_up.weight", HF_AS_IS},
    {"ffn.lin1.bias", "ffn_up.bias", HF_AS_IS},
    {"ffn.lin2.weight", "ffn_down.weight", HF_AS_IS},
    {"ffn.lin2.bias", "ffn_down.bias", HF_AS_IS},
    {"output_layer_norm.weight", "layer_output_norm.weight", HF_AS_IS},
    {"output_layer_norm.bias", "layer_output_norm.bias", HF_AS_IS},
};

static const char *const distilbert_ignore[] = {"embeddings.position_ids", "vocab_*", "pre_classifier.*",
                                                "classifier.*", "qa_outputs.*", NULL};

// sentence-transformers' 1_Pooling/config.json -> llama.cpp's pooling enum (0 none, 1 mean, 2 cls, 3 last);
// *stated false when there is none (a plain BERT: no bert.pooling_type key, as llama.cpp's converter writes it; hone
// then pools sentence embeddings by mean, and classifies through the pooler when there is one, adapt/cls_head.h).
static hn_status pooling(hf_loader *L, uint32_t *out, bool *stated) {
    char path[4096];
    snprintf(path, sizeof path, "%s/1_Pooling/config.json", L->dir);
    *out = 1, *stated = false;
    struct stat st;
    if (stat(path, &st)) return HN_OK;
    *stated = true;
    json_error_t err;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!j) return hn_fail(HN_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    static const struct {
        const char *key;
        uint32_t type;
    } modes[] = {{"pooling_mode_cls_token", 2}, {"pooling_mode_mean_tokens", 1}, {"pooling_mode_lasttoken", 3},
                 {"pooling_mode_max_tokens", 0}};
    int n = 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        json_t *v = json_object_get(j, modes[i].key);
        if (v && !json_is_boolean(v)) {
            json_decref(j);
            return hn_fail(HN_ERR_FORMAT, "%s: '%s' must be true or false", path, modes[i].key);
        }
        if (json_is_true(v)) *out = modes[i].type, n++;
    }
    json_decref(j);
    if (n != 1)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: expected exactly one pooling_mode_* set to true, got %d", path, n);
    if (*out == 0) // llama.cpp's enum has no max pooling: keep "none" so the user picks with --pool
        hn_warn("%s: max pooling is recorded as pooling type 0 (none)", path);
    return HN_OK;
}

static hn_status bert_put(hf_loader *L, uint32_t n_embd, uint32_t n_layer, uint32_t n_ff, uint32_t n_ctx,
                          double eps, uint32_t n_types) {
    uint32_t pool;
    bool stated;
    hn_status s = pooling(L, &pool, &stated);
    if (s) return s;
    if (n_embd % L->n_head)
        return hn_fail(HN_ERR_FORMAT, "%s/config.json: hidden size %u is not a multiple of %u heads", L->dir, n_embd,
                       L->n_head);
    L->n_head_kv = L->n_head;
    hf_put_u32(L, "bert.block_count", n_layer);
    hf_put_u32(L, "bert.embedding_length", n_embd);
    hf_put_u32(L, "bert.feed_forward_length", n_ff);
    hf_put_u32(L, "bert.attention.head_count", L->n_head);
    hf_put_u32(L, "bert.context_length", n_ctx);
    hf_put_f32(L, "bert.attention.layer_norm_epsilon", (float)eps);
    hf_put_bool(L, "bert.attention.causal", false);
    if (stated) hf_put_u32(L, "bert.pooling_type", pool);
    hf_put_u32(L, "tokenizer.ggml.token_type_count", n_types);
    return HN_OK;
}

static hn_status bert_config(hf_loader *L) {
    static const char *const acts[] = {"gelu", NULL}, *const pos[] = {"absolute", NULL};
    const char *act, *pe;
    uint32_t n_embd, n_layer, n_ff, n_ctx, n_types;
    double eps;
    hn_status s;
    if ((s = hf_cfg_choice(L, "hidden_act", acts, "gelu", &act)) ||
        (s = hf_cfg_choice(L, "position_embedding_type", pos, "absolute", &pe)) ||
        (s = hf_cfg_int(L, "hidden_size", -1, &n_embd)) || (s = hf_cfg_int(L, "num_hidden_layers", -1, &n_layer)) ||
        (s = hf_cfg_int(L, "num_attention_heads", -1, &L->n_head)) ||
        (s = hf_cfg_int(L, "intermediate_size", -1, &n_ff)) || (s = hf_cfg_int(L, "vocab_size", -1, &L->n_vocab)) ||
        (s = hf_cfg_int(L, "max_position_embeddings", 512, &n_ctx)) ||
        (s = hf_cfg_int(L, "type_vocab_size", 2, &n_types)) ||
        (s = hf_cfg_num(L, L->cfg, "layer_norm_eps", 1e-12, &eps)))
        return s;
    return bert_put(L, n_embd, n_layer, n_ff, n_ctx, eps, n_types);
}

static hn_status distilbert_config(hf_loader *L) {
    static const char *const acts[] = {"gelu", NULL};
    const char *act;
    uint32_t n_embd, n_layer, n_ff, n_ctx;
    hn_status s;
    if ((s = hf_cfg_choice(L, "activation", acts, "gelu", &act)) || (s = hf_cfg_int(L, "dim", -1, &n_embd)) ||
        (s = hf_cfg_int(L, "n_layers", -1, &n_layer)) || (s = hf_cfg_int(L, "n_heads", -1, &L->n_head)) ||
        (s = hf_cfg_int(L, "hidden_dim", -1, &n_ff)) || (s = hf_cfg_int(L, "vocab_size", -1, &L->n_vocab)) ||
        (s = hf_cfg_int(L, "max_position_embeddings", 512, &n_ctx)))
        return s;
    // DistilBERT's LayerNorms are built with eps 1e-12 whatever the config says; it has no token types (llama.cpp
    // records a count of 1 and no token_types tensor).
    return bert_put(L, n_embd, n_layer, n_ff, n_ctx, 1e-12, 1);
}

#define N(a) (sizeof a / sizeof a[0])

static const hf_arch archs[] = {
    {"llama", {"llama"}, NULL, "model.layers.", llama_globals, llama_layers, N(llama_globals), N(llama_layers),
     llama_ignore, true, llama_config},
    {"qwen2", {"qwen2"}, NULL, "model.layers.", llama_globals, qwen2_layers, N(llama_globals), N(qwen2_layers),
     llama_ignore, true, qwen2_config},
    {"gpt2", {"gpt2"}, "transformer.", "h.", gpt2_globals, gpt2_layers, N(gpt2_globals), N(gpt2_layers),
     gpt2_ignore, true, gpt2_config},
    {"bert", {"bert"}, "bert.", "encoder.layer.", bert_globals, bert_layers, N(bert_globals), N(bert_layers),
     bert_ignore, false, bert_config},
    {"bert", {"distilbert"}, "distilbert.", "transformer.layer.", distilbert_globals, distilbert_layers,
     N(distilbert_globals), N(distilbert_layers), distilbert_ignore, false, distilbert_config},
};

const hf_arch *hf_arch_by_model_type(const char *model_type) {
    for (size_t i = 0; i < N(archs); i++)
        for (size_t k = 0; k < N(archs[i].model_types) && archs[i].model_types[k]; k++)
            if (!strcmp(archs[i].model_types[k], model_type)) return &archs[i];
    return NULL;
}

const hf_arch *hf_arch_by_name(const char *arch) {
    for (size_t i = 0; i < N(archs); i++)
        if (!strcmp(archs[i].name, arch)) return &archs[i]; // bert: the first (BERT's own names) wins
    return NULL;
}

const char *hf_arch_known(void) { return "llama, qwen2, gpt2, bert, distilbert"; }

// "N.rest" with N a decimal layer index: *layer = N, returns rest (NULL if the shape differs).
static const char *layer_rest(const char *p, int *layer) {
    if (*p < '0' || *p > '9') return NULL;
    long v = 0;
    while (*p >= '0' && *p <= '9' && v < 1000000) v = v * 10 + (*p++ - '0');
    if (*p != '.' || v >= 1000000) return NULL;
    *layer = (int)v;
    return p + 1;
}

static bool ignored(const hf_arch *a, const char *name) {
    for (const char *const *ig = a->ignore; ig && *ig; ig++) {
        size_t n = strlen(*ig);
        if ((*ig)[n - 1] == '*' ? !strncmp(name, *ig, n - 1) : !strcmp(name, *ig)) return true;
    }
    return false;
}

int hf_map_to_gguf(const hf_arch *a, const char *hf, char *out, size_t cap, hf_transform *tr) {
    char buf[512];
    size_t sl = a->strip ? strlen(a->strip) : 0;
    if (sl && !strncmp(hf, a->strip, sl) && strcmp(hf + sl, "lm_head.weight")) hf += sl;
    // Old BERT checkpoints (TensorFlow's names) call LayerNorm's weight and bias gamma and beta.
    size_t hl = strlen(hf);
    if (hl >= sizeof buf) return 0;
    memcpy(buf, hf, hl + 1);
    if (hl > 6 && !strcmp(buf + hl - 6, ".gamma")) strcpy(buf + hl - 6, ".weight");
    else if (hl > 5 && !strcmp(buf + hl - 5, ".beta")) strcpy(buf + hl - 5, ".bias");
    for (size_t i = 0; i < a->n_globals; i++)
        if (!strcmp(buf, a->globals[i].hf)) {
            *tr = a->globals[i].tr;
            return (size_t)snprintf(out, cap, "%s", a->globals[i].gguf) < cap;
        }
    size_t pl = strlen(a->layer_prefix);
    int layer;
    const char *rest = strncmp(buf, a->layer_prefix, pl) ? NULL : layer_rest(buf + pl, &layer);
    if (rest)
        for (size_t i = 0; i < a->n_layers; i++)
            if (!strcmp(rest, a->layers[i].hf)) {
                *tr = a->layers[i].tr;
                return (size_t)snprintf(out, cap, "blk.%d.%s", layer, a->layers[i].gguf) < cap;
            }
    return ignored(a, buf) || (rest && ignored(a, rest)) ? -1 : 0;
}

bool hf_map_from_gguf(const hf_arch *a, const char *gguf, char *out, size_t cap, hf_transform *tr) {
    for (size_t i = 0; i < a->n_globals; i++)
        if (!strcmp(gguf, a->globals[i].gguf)) {
            *tr = a->globals[i].tr;
            return (size_t)snprintf(out, cap, "%s", a->globals[i].hf) < cap;
        }
    int layer;
    const char *rest = strncmp(gguf, "blk.", 4) ? NULL : layer_rest(gguf + 4, &layer);
    if (rest)
        for (size_t i = 0; i < a->n_layers; i++)
            if (!strcmp(rest, a->layers[i].gguf)) {
                *tr = a->layers[i].tr;
                return (size_t)snprintf(out, cap, "%s%d.%s", a->layer_prefix, layer, a->layers[i].hf) < cap;
            }
    return false;
}

// ---- the Llama table's public names (io/hf.h; PEFT adapters use them) ----

static const struct {
    const char *hf, *gguf;
} kinds[] = {
    {"q_proj", "attn_q"},       {"k_proj", "attn_k"}, {"v_proj", "attn_v"},    {"o_proj", "attn_output"},
    {"gate_proj", "ffn_gate"}, {"up_proj", "ffn_up"}, {"down_proj", "ffn_down"},
};

const char *hn_hf_kind_to_gguf(const char *hf_kind) {
    for (size_t i = 0; i < N(kinds); i++)
        if (!strcmp(kinds[i].hf, hf_kind)) return kinds[i].gguf;
    return NULL;
}

const char *hn_hf_kind_from_gguf(const char *gguf_kind) {
    for (size_t i = 0; i < N(kinds); i++)
        if (!strcmp(kinds[i].gguf, gguf_kind)) return kinds[i].hf;
    return NULL;
}

bool hn_hf_name_to_gguf(const char *hf, char *out, size_t cap) {
    hf_transform tr;
    return hf_map_to_gguf(&archs[0], hf, out, cap, &tr) == 1;
}

bool hn_hf_name_from_gguf(const char *gguf, char *out, size_t cap) {
    hf_transform tr;
    return hf_map_from_gguf(&archs[0], gguf, out, cap, &tr);
}

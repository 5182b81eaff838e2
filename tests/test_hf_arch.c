// tests/test_hf_arch.c — the name tables and config.json readers of io/hf_arch.c on tiny random checkpoints saved by
// transformers (tests/data/hf_arch, tools/reference/hf_roundtrip_ref.py): GPT-2 (Conv1D weights transposed, fused
// c_attn -> attn_qkv, tied head), BERT (sentence-transformers layout with 1_Pooling; and the same weights with the
// "bert." prefix, gamma/beta names and an MLM head in a pytorch_model.bin, whole and in two shards), DistilBERT. Every GGUF tensor is
// checked against the file's own bytes (through io/safetensors.h, independently of io/hf.c), every metadata key
// against config.json; then broken config.json files give one-line errors naming the file and the field.
#include "io/hf.h"
#include "io/safetensors.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARCH_DIR "tests/data/hf_arch"

static char tmp[256];

static uint32_t u32_of(const hn_gguf *g, const char *key) {
    uint32_t v = 0xdeadbeef;
    hn_gguf_get_u32(g, key, &v);
    return v;
}

static float f32_of(const hn_gguf *g, const char *key) {
    float v = NAN;
    hn_gguf_get_f32(g, key, &v);
    return v;
}

static bool str_is(const hn_gguf *g, const char *key, const char *want) {
    hn_gguf_str s;
    return !hn_gguf_get_str(g, key, &s) && s.len == strlen(want) && !memcmp(s.str, want, s.len);
}

// The view's tensor gguf equals the file's tensor hf (F32), transposed when asked.
static void same(const hn_gguf *g, const hn_safetensors *st, const char *gguf, const char *hf, bool transpose) {
    const hn_tensor *v = hn_gguf_tensor(g, gguf), *f = hn_safetensors_tensor(st, hf);
    CHECK(v && f, "%s (%s) present", gguf, hf);
    if (!v || !f) return;
    CHECK(v->type == HN_F32 && f->type == HN_F32 && hn_nelem(v) == hn_nelem(f), "%s: type and size", gguf);
    if (hn_nelem(v) != hn_nelem(f)) return;
    const float *a = v->data, *b = f->data;
    bool ok = true;
    if (transpose) {
        CHECK(v->ne[0] == f->ne[1] && v->ne[1] == f->ne[0], "%s: transposed shape", gguf);
        for (int64_t r = 0; r < v->ne[1]; r++)
            for (int64_t c = 0; c < v->ne[0]; c++) ok &= a[r * v->ne[0] + c] == b[c * f->ne[0] + r];
    } else {
        CHECK(v->ne[0] == f->ne[0] && v->ne[1] == f->ne[1], "%s: shape", gguf);
        ok = !memcmp(a, b, (size_t)hn_nelem(v) * 4);
    }
    CHECK(ok, "%s: values", gguf);
}

static void test_gpt2(void) {
    hn_gguf g;
    hn_safetensors st;
    CHECK(!hn_hf_open(&g, ARCH_DIR "/gpt2"), "open: %s", hn_errmsg());
    CHECK(!hn_safetensors_open(&st, ARCH_DIR "/gpt2/model.safetensors"), "raw: %s", hn_errmsg());
    CHECK(str_is(&g, "general.architecture", "gpt2"), "arch");
    CHECK(u32_of(&g, "gpt2.block_count") == 2 && u32_of(&g, "gpt2.embedding_length") == 16 &&
          u32_of(&g, "gpt2.feed_forward_length") == 64 && u32_of(&g, "gpt2.attention.head_count") == 2 &&
          u32_of(&g, "gpt2.context_length") == 24 && f32_of(&g, "gpt2.attention.layer_norm_epsilon") == 1e-5f,
          "gpt2 metadata");
    CHECK(g.n_tensors == 28 && !hn_gguf_tensor(&g, "output.weight"), "%llu tensors, tied head",
          (unsigned long long)g.n_tensors);
    same(&g, &st, "token_embd.weight", "transformer.wte.weight", false);
    same(&g, &st, "position_embd.weight", "transformer.wpe.weight", false);
    same(&g, &st, "output_norm.bias", "transformer.ln_f.bias", false);
    for (int l = 0; l < 2; l++) {
        static const char *const pairs[][2] = {
            {"attn_norm.weight", "ln_1.weight"}, {"attn_norm.bias", "ln_1.bias"}, {"attn_qkv.weight", "attn.c_attn.weight"},
            {"attn_qkv.bias", "attn.c_attn.bias"}, {"attn_output.weight", "attn.c_proj.weight"},
            {"attn_output.bias", "attn.c_proj.bias"}, {"ffn_norm.weight", "ln_2.weight"}, {"ffn_norm.bias", "ln_2.bias"},
            {"ffn_up.weight", "mlp.c_fc.weight"}, {"ffn_up.bias", "mlp.c_fc.bias"},
            {"ffn_down.weight", "mlp.c_proj.weight"}, {"ffn_down.bias", "mlp.c_proj.bias"}};
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
            char a[96], b[96];
            snprintf(a, sizeof a, "blk.%d.%s", l, pairs[i][0]);
            snprintf(b, sizeof b, "transformer.h.%d.%s", l, pairs[i][1]);
            same(&g, &st, a, b, strstr(a, ".weight") && !strstr(a, "norm"));
        }
    }
    const hn_tensor *qkv = hn_gguf_tensor(&g, "blk.0.attn_qkv.weight");
    CHECK(qkv && qkv->ne[0] == 16 && qkv->ne[1] == 48, "attn_qkv ne = {C, 3C}");
    hn_safetensors_close(&st);
    hn_gguf_close(&g);
}

// The GPT-2 weights re-written in F16: Conv1D weights are transposed in their own dtype (2-byte elements).
static void test_gpt2_f16(void) {
    hn_safetensors st;
    CHECK(!hn_safetensors_open(&st, ARCH_DIR "/gpt2/model.safetensors"), "raw: %s", hn_errmsg());
    char dir[300], path[800];
    snprintf(dir, sizeof dir, "%s_f16", tmp);
    snprintf(path, sizeof path, "mkdir -p '%s' && cp " ARCH_DIR "/gpt2/config.json '%s'/", dir, dir);
    CHECK(system(path) == 0, "mkdir");
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    hn_f16 **conv = calloc(st.n_tensors, sizeof *conv);
    for (size_t i = 0; i < st.n_tensors; i++) {
        const hn_tensor *t = &st.tensors[i];
        int64_t n = hn_nelem(t);
        conv[i] = malloc((size_t)n * 2);
        for (int64_t k = 0; k < n; k++) conv[i][k] = hn_f32_to_f16(((const float *)t->data)[k]);
        hn_safetensors_writer_add(w, st.names[i], HN_F16, t->ndim, t->ne, conv[i]);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(!hn_safetensors_writer_write(w, path), "write: %s", hn_errmsg());
    hn_safetensors_writer_destroy(w);
    hn_gguf g;
    CHECK(!hn_hf_open(&g, dir), "open f16: %s", hn_errmsg());
    const hn_tensor *v = hn_gguf_tensor(&g, "blk.1.ffn_down.weight"), *f = hn_safetensors_tensor(&st, "transformer.h.1.mlp.c_proj.weight");
    CHECK(v && f && v->type == HN_F16 && v->ne[0] == 64 && v->ne[1] == 16, "ffn_down f16, ne = {64, 16}");
    if (v && f && v->type == HN_F16) {
        const hn_f16 *a = v->data;
        bool ok = true;
        for (int64_t r = 0; r < v->ne[1]; r++) // GGUF row r, column c = HF (c, r)
            for (int64_t c = 0; c < v->ne[0]; c++)
                ok &= a[r * v->ne[0] + c] == hn_f32_to_f16(((const float *)f->data)[c * f->ne[0] + r]);
        CHECK(ok, "f16 transposed values");
    }
    const hn_tensor *nb = hn_gguf_tensor(&g, "blk.1.ffn_down.bias");
    CHECK(nb && nb->type == HN_F32, "biases become f32");
    hn_gguf_close(&g);
    for (size_t i = 0; i < st.n_tensors; i++) free(conv[i]);
    free(conv);
    hn_safetensors_close(&st);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CHECK(system(path) == 0, "rm");
}

static const char *const bert_pairs[][2] = {
    {"attn_q", "attention.self.query"}, {"attn_k", "attention.self.key"}, {"attn_v", "attention.self.value"},
    {"attn_output", "attention.output.dense"}, {"attn_output_norm", "attention.output.LayerNorm"},
    {"ffn_up", "intermediate.dense"}, {"ffn_down", "output.dense"}, {"layer_output_norm", "output.LayerNorm"}};

static void test_bert(void) {
    hn_gguf g, gb;
    hn_safetensors st;
    CHECK(!hn_hf_open(&g, ARCH_DIR "/bert"), "open: %s", hn_errmsg());
    CHECK(!hn_safetensors_open(&st, ARCH_DIR "/bert/model.safetensors"), "raw: %s", hn_errmsg());
    bool causal = true;
    CHECK(str_is(&g, "general.architecture", "bert") && u32_of(&g, "bert.block_count") == 2 &&
          u32_of(&g, "bert.embedding_length") == 16 && u32_of(&g, "bert.feed_forward_length") == 24 &&
          u32_of(&g, "bert.attention.head_count") == 2 && u32_of(&g, "bert.context_length") == 20 &&
          f32_of(&g, "bert.attention.layer_norm_epsilon") == 1e-12f &&
          !hn_gguf_get_bool(&g, "bert.attention.causal", &causal) && !causal &&
          u32_of(&g, "tokenizer.ggml.token_type_count") == 2, "bert metadata");
    CHECK(u32_of(&g, "bert.pooling_type") == 2, "CLS pooling from 1_Pooling/config.json");
    CHECK(g.n_tensors == 39, "%llu tensors (the pooler kept as cls.weight/bias)", (unsigned long long)g.n_tensors);
    same(&g, &st, "cls.weight", "pooler.dense.weight", false);
    same(&g, &st, "cls.bias", "pooler.dense.bias", false);
    same(&g, &st, "token_embd.weight", "embeddings.word_embeddings.weight", false);
    same(&g, &st, "token_types.weight", "embeddings.token_type_embeddings.weight", false);
    same(&g, &st, "position_embd.weight", "embeddings.position_embeddings.weight", false);
    same(&g, &st, "token_embd_norm.weight", "embeddings.LayerNorm.weight", false);
    same(&g, &st, "token_embd_norm.bias", "embeddings.LayerNorm.bias", false);
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < sizeof bert_pairs / sizeof bert_pairs[0]; i++)
            for (int w = 0; w < 2; w++) {
                char a[96], b[128];
                snprintf(a, sizeof a, "blk.%d.%s.%s", l, bert_pairs[i][0], w ? "bias" : "weight");
                snprintf(b, sizeof b, "encoder.layer.%d.%s.%s", l, bert_pairs[i][1], w ? "bias" : "weight");
                same(&g, &st, a, b, false);
            }
    // The same weights as BertForMaskedLM names them, in a pytorch_model.bin: the same view.
    CHECK(!hn_hf_open(&gb, ARCH_DIR "/bert_bin"), "open bin: %s", hn_errmsg());
    // no 1_Pooling/config.json: no pooling stated (as llama.cpp's converter leaves it; hone pools by mean)
    CHECK(gb.n_tensors == g.n_tensors && !hn_gguf_find(&gb, "bert.pooling_type"), "bin: %llu tensors, no pooling key",
          (unsigned long long)gb.n_tensors);
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const hn_tensor *a = &g.tensors[i], *b = hn_gguf_tensor(&gb, a->name);
        CHECK(b && b->nbytes == a->nbytes && !memcmp(a->data, b->data, a->nbytes), "bin: %s", a->name);
    }
    hn_gguf_close(&gb);
    // ... and split in two torch.save shards with pytorch_model.bin.index.json.
    CHECK(!hn_hf_open(&gb, ARCH_DIR "/bert_bin_sharded"), "open sharded bin: %s", hn_errmsg());
    CHECK(gb.n_tensors == g.n_tensors, "sharded bin: %llu tensors", (unsigned long long)gb.n_tensors);
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const hn_tensor *a = &g.tensors[i], *b = hn_gguf_tensor(&gb, a->name);
        CHECK(b && b->nbytes == a->nbytes && !memcmp(a->data, b->data, a->nbytes), "sharded bin: %s", a->name);
    }
    hn_gguf_close(&gb);
    hn_safetensors_close(&st);
    hn_gguf_close(&g);
}

static void test_distilbert(void) {
    hn_gguf g;
    hn_safetensors st;
    CHECK(!hn_hf_open(&g, ARCH_DIR "/distilbert"), "open: %s", hn_errmsg());
    CHECK(!hn_safetensors_open(&st, ARCH_DIR "/distilbert/model.safetensors"), "raw: %s", hn_errmsg());
    CHECK(str_is(&g, "general.architecture", "bert") && u32_of(&g, "bert.block_count") == 2 &&
          u32_of(&g, "bert.embedding_length") == 16 && u32_of(&g, "bert.feed_forward_length") == 24 &&
          u32_of(&g, "bert.attention.head_count") == 2 && u32_of(&g, "tokenizer.ggml.token_type_count") == 1 &&
          !hn_gguf_find(&g, "bert.pooling_type"), "distilbert metadata");
    CHECK(g.n_tensors == 36 && !hn_gguf_tensor(&g, "token_types.weight"), "%llu tensors",
          (unsigned long long)g.n_tensors);
    static const char *const pairs[][2] = {
        {"attn_q", "attention.q_lin"}, {"attn_k", "attention.k_lin"}, {"attn_v", "attention.v_lin"},
        {"attn_output", "attention.out_lin"}, {"attn_output_norm", "sa_layer_norm"}, {"ffn_up", "ffn.lin1"},
        {"ffn_down", "ffn.lin2"}, {"layer_output_norm", "output_layer_norm"}};
    same(&g, &st, "position_embd.weight", "embeddings.position_embeddings.weight", false);
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
            char a[96], b[128];
            snprintf(a, sizeof a, "blk.%d.%s.weight", l, pairs[i][0]);
            snprintf(b, sizeof b, "transformer.layer.%d.%s.weight", l, pairs[i][1]);
            same(&g, &st, a, b, false);
        }
    hn_safetensors_close(&st);
    hn_gguf_close(&g);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = calloc(1, 1 << 16);
    size_t n = fread(b, 1, (1 << 16) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

// A copy of model directory `src` (weights linked) whose config.json has `what` replaced by `with`; the load must
// fail with a message holding `needle` and the config's path.
static void bad_config(const char *src, const char *what, const char *with, const char *needle) {
    char cmd[1024], path[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && ln -s \"$PWD\"/%s/model.safetensors '%s'/", tmp, tmp,
             src, tmp);
    CHECK(system(cmd) == 0, "setup");
    snprintf(path, sizeof path, "%s/config.json", src);
    char *orig = read_text(path), *at = orig ? strstr(orig, what) : NULL;
    CHECK(at, "'%s' in %s", what, path);
    if (!at) return free(orig);
    char *c = calloc(1, strlen(orig) + strlen(with) + 1);
    memcpy(c, orig, (size_t)(at - orig));
    strcat(c, with);
    strcat(c, at + strlen(what));
    snprintf(path, sizeof path, "%s/config.json", tmp);
    write_file(path, c);
    hn_gguf g;
    hn_status s = hn_hf_open(&g, tmp);
    const char *msg = hn_errmsg();
    CHECK(s && strstr(msg, needle) && strstr(msg, tmp) && !strchr(msg, '\n'), "%s -> %s: '%s' lacks '%s'", what,
          with, msg, needle);
    if (!s) hn_gguf_close(&g);
    free(c);
    free(orig);
}

// The same, for a change that must load: returns the view (closed by the caller).
static bool good_config(const char *src, const char *what, const char *with, hn_gguf *g) {
    char cmd[1024], path[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && ln -s \"$PWD\"/%s/model.safetensors '%s'/", tmp, tmp,
             src, tmp);
    CHECK(system(cmd) == 0, "setup");
    snprintf(path, sizeof path, "%s/config.json", src);
    char *orig = read_text(path), *at = orig ? strstr(orig, what) : NULL;
    CHECK(at, "'%s' in %s", what, path);
    if (!at) return free(orig), false;
    char *c = calloc(1, strlen(orig) + strlen(with) + 1);
    memcpy(c, orig, (size_t)(at - orig));
    strcat(c, with);
    strcat(c, at + strlen(what));
    snprintf(path, sizeof path, "%s/config.json", tmp);
    write_file(path, c);
    free(c), free(orig);
    hn_status s = hn_hf_open(g, tmp);
    CHECK(!s, "%s -> %s loads: %s", what, with, hn_errmsg());
    return !s;
}

static void test_bad(void) {
    const char *G = ARCH_DIR "/gpt2", *B = ARCH_DIR "/bert", *D = ARCH_DIR "/distilbert";
    bad_config(G, "\"n_head\": 2", "\"n_head\": 3", "n_embd 16 is not a multiple of n_head 3");
    bad_config(G, "\"n_positions\": 24", "\"n_positions\": 24, \"n_ctx\": 32", "n_ctx 32 contradicts n_positions 24");
    hn_gguf ok;
    if (good_config(G, "\"n_positions\": 24", "\"n_ctx\": 20", &ok)) { // an old config: n_ctx alone
        CHECK(u32_of(&ok, "gpt2.context_length") == 20, "n_ctx read as the context");
        hn_gguf_close(&ok);
    }
    bad_config(G, "\"activation_function\": \"gelu_new\"", "\"activation_function\": \"relu\"",
               "'activation_function' must be");
    bad_config(G, "\"n_embd\": 16", "\"n_embd_\": 16", "'n_embd' is missing");
    bad_config(G, "\"vocab_size\": 32", "\"vocab_size\": 33", "vocab_size is 33 but");
    bad_config(G, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false", "no lm_head.weight");
    bad_config(B, "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"relu\"", "'hidden_act' must be \"gelu\"");
    bad_config(B, "\"num_attention_heads\": 2", "\"num_attention_heads\": 5", "not a multiple of 5 heads");
    bad_config(B, "\"intermediate_size\": 24", "\"intermediate_size\": \"24\"", "'intermediate_size' must be a positive");
    bad_config(B, "\"model_type\": \"bert\"", "\"model_type\": \"roberta\"", "model_type 'roberta' is not supported");
    bad_config(D, "\"dim\": 16", "\"dims\": 16", "'dim' is missing");
    bad_config(D, "\"activation\": \"gelu\"", "\"activation\": 7", "'activation' must be");
    // 1_Pooling/config.json with two modes, or a broken one.
    char cmd[2048], path[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/1_Pooling' && ln -s \"$PWD\"/%s/model.safetensors '%s'/ && "
             "cp %s/config.json '%s'/", tmp, tmp, B, tmp, B, tmp);
    CHECK(system(cmd) == 0, "setup");
    snprintf(path, sizeof path, "%s/1_Pooling/config.json", tmp);
    write_file(path, "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": true}");
    hn_gguf g;
    CHECK(hn_hf_open(&g, tmp) && strstr(hn_errmsg(), "1_Pooling/config.json: expected exactly one"), "%s",
          hn_errmsg());
    write_file(path, "{\"pooling_mode_cls_token\": 1}");
    CHECK(hn_hf_open(&g, tmp) && strstr(hn_errmsg(), "'pooling_mode_cls_token' must be true or false"), "%s",
          hn_errmsg());
    write_file(path, "{\"pooling_mode_lasttoken\": true}");
    CHECK(!hn_hf_open(&g, tmp), "last-token pooling: %s", hn_errmsg());
    CHECK(u32_of(&g, "bert.pooling_type") == 3, "pooling type 3");
    hn_gguf_close(&g);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/hone_test_hf_arch_%d", (int)getpid());
    test_gpt2();
    test_gpt2_f16();
    test_bert();
    test_distilbert();
    test_bad();
    return test_done();
}

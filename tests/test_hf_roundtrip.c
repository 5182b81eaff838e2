// tests/test_hf_roundtrip.c — conversion both ways through the hone binary built beside this test:
//   HF -> `hone convert` -> GGUF -> hone  gives the same logits (bit for bit at --type f32 / f16 as stored) as
//   HF -> hone, for the tiny Llama (safetensors, fp32; and pytorch_model.bin, f16), the tiny GPT-2 (Conv1D) and
//   the tiny BERT (embeddings);
//   GGUF / HF -> `hone export` -> HF writes back exactly the tensors transformers saved (same names, shapes and
//   bytes; q/k un-permuted, Conv1D transposed back) and a config.json with the same hyper-parameters, so
//   transformers computes the golden logits from it (tools/reference/hf_roundtrip_ref.py --hone checks that with
//   transformers itself); the exported directory loads in hone with the same logits.
#include "io/hf.h"
#include "io/safetensors.h"
#include "model/embed.h"
#include "model/model.h"
#include "test.h"
#include "tiny_golden.h"

#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <unistd.h>

static char hone[4096], tmp[256];

static int sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static hn_model *load(const char *path) {
    hn_model_params p = hn_model_default_params();
    p.mm_mode = HN_MM_EXACT;
    p.allow_no_tokenizer = true;
    hn_model *m = NULL;
    CHECK(!hn_model_load(&m, path, &p), "load %s: %s", path, hn_errmsg());
    return m;
}

// All-token logits of ids (T) in a fresh cache: malloc'd (T, V), NULL on failure.
static float *logits(hn_model *m, const int32_t *ids, int T) {
    hn_kv_cache *kv = hn_kv_cache_create(m, T);
    float *lg, *out = NULL;
    if (kv && !hn_model_forward(m, kv, ids, T, HN_LOGITS_ALL, &lg)) {
        out = malloc((size_t)T * m->hp.n_vocab * sizeof *out);
        memcpy(out, lg, (size_t)T * m->hp.n_vocab * sizeof *out);
    }
    hn_kv_cache_destroy(kv);
    return out;
}

// A decoder directory and its conversion give the same logits on ids.
static void decoder_roundtrip(const char *dir, const char *type, const int32_t *ids, int T, const char *what) {
    char gguf[512];
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", tmp, what);
    CHECK(sh("'%s' convert '%s' -o '%s' --type %s 2>/dev/null", hone, dir, gguf, type) == 0, "%s: convert", what);
    hn_model *a = load(dir), *b = load(gguf);
    if (a && b) {
        float *la = logits(a, ids, T), *lb = logits(b, ids, T);
        CHECK(la && lb, "%s: forward: %s", what, hn_errmsg());
        if (la && lb) {
            double d = max_diff(la, lb, (int64_t)T * a->hp.n_vocab);
            printf("%s: HF dir vs converted GGUF (%s): max abs logit diff %g\n", what, type, d);
            CHECK(d == 0, "%s: logits differ by %g", what, d);
        }
        free(la), free(lb);
    }
    hn_model_destroy(a), hn_model_destroy(b);
}

static void test_convert(const tg_file *gold) {
    const tg_array *ids = tg_get(gold, "input_ids");
    if (!ids) return;
    int T = (int)ids->dims[1];
    decoder_roundtrip("tests/data/tiny_llama", "f32", ids->i, T, "llama_f32");
    decoder_roundtrip("tests/data/hf_torch/tiny_llama_f16", "f16", ids->i, T, "llama_bin_f16");
    int32_t g_ids[12];
    for (int i = 0; i < 12; i++) g_ids[i] = (i * 7 + 3) % 32; // the tiny GPT-2 has 32 tokens
    decoder_roundtrip("tests/data/hf_arch/gpt2", "f32", g_ids, 12, "gpt2_f32");
    int32_t f_ids[40];
    for (int i = 0; i < 40; i++) f_ids[i] = (i * 13 + 5) % 64; // the family models have 64 tokens
    decoder_roundtrip("tests/data/hf_family/qwen2", "f32", f_ids, 40, "qwen2_f32");
    decoder_roundtrip("tests/data/hf_family/llama3_rope", "f32", f_ids, 40, "llama3_rope_f32");
    decoder_roundtrip("tests/data/hf_family/llama_linear", "f32", f_ids, 40, "llama_linear_f32");

    // BERT: embeddings of two padded rows, pooled as the model says (CLS from 1_Pooling, carried as metadata).
    char gguf[512];
    snprintf(gguf, sizeof gguf, "%s/bert.gguf", tmp);
    CHECK(sh("'%s' convert tests/data/hf_arch/bert -o '%s' --type f32 2>/dev/null", hone, gguf) == 0, "bert convert");
    hn_model *a = load("tests/data/hf_arch/bert"), *b = load(gguf);
    if (a && b) {
        int32_t bids[2 * 6] = {2, 5, 9, 11, 3, 0, 2, 7, 8, 3, 0, 0}, lens[2] = {5, 4};
        float ea[2 * 16], eb[2 * 16];
        CHECK(!hn_model_embed_ids(a, bids, lens, 2, 6, HN_POOL_MODEL, false, ea) &&
              !hn_model_embed_ids(b, bids, lens, 2, 6, HN_POOL_MODEL, false, eb), "embed: %s", hn_errmsg());
        double d = max_diff(ea, eb, 2 * 16);
        printf("bert: HF dir vs converted GGUF (f32): max abs embedding diff %g\n", d);
        CHECK(d == 0, "bert embeddings differ by %g", d);
    }
    hn_model_destroy(a), hn_model_destroy(b);
}

// Every tensor of the original file (except those in `skip_prefix`) is in the exported one, byte for byte.
static void same_tensors(const char *orig, const char *exported, const char *skip_prefix, int expect_extra) {
    hn_safetensors o, e;
    CHECK(!hn_safetensors_open(&o, orig), "%s: %s", orig, hn_errmsg());
    CHECK(!hn_safetensors_open(&e, exported), "%s: %s", exported, hn_errmsg());
    size_t compared = 0;
    for (size_t i = 0; i < o.n_tensors; i++) {
        if (skip_prefix && !strncmp(o.names[i], skip_prefix, strlen(skip_prefix))) continue;
        const hn_tensor *a = &o.tensors[i], *b = hn_safetensors_tensor(&e, o.names[i]);
        CHECK(b, "%s: '%s' exported", exported, o.names[i]);
        if (!b) continue;
        CHECK(a->ndim == b->ndim && !memcmp(a->ne, b->ne, sizeof a->ne) && a->type == b->type &&
              !memcmp(a->data, b->data, a->nbytes), "%s: '%s' identical", exported, o.names[i]);
        compared++;
    }
    CHECK(compared + (size_t)expect_extra == e.n_tensors, "%s: %zu tensors, compared %zu", exported, e.n_tensors,
          compared);
    hn_safetensors_close(&o);
    hn_safetensors_close(&e);
}

// config.json keys that must agree between the original and the export.
static void same_config(const char *orig_dir, const char *exp_dir, const char *const *keys) {
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/config.json", orig_dir);
    snprintf(p2, sizeof p2, "%s/config.json", exp_dir);
    json_t *a = json_load_file(p1, 0, NULL), *b = json_load_file(p2, 0, NULL);
    CHECK(a && b, "configs");
    for (const char *const *k = keys; a && b && *k; k++) {
        json_t *x = json_object_get(a, *k), *y = json_object_get(b, *k);
        bool eq = x && y && (json_is_number(x) ? fabs(json_number_value(x) - json_number_value(y)) <=
                                                     1e-6 * fabs(json_number_value(x))
                                               : json_equal(x, y));
        CHECK(eq, "%s: config '%s' agrees", exp_dir, *k);
    }
    json_decref(a), json_decref(b);
}

static void test_export(const tg_file *gold) {
    static const char *const llama_keys[] = {
        "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "vocab_size",
        "tie_word_embeddings", "hidden_act", NULL};
    char gguf[512], out[512], file[600];
    snprintf(gguf, sizeof gguf, "%s/llama_f32.gguf", tmp);
    snprintf(out, sizeof out, "%s/llama_export", tmp);
    CHECK(sh("'%s' export '%s' -o '%s' 2>/dev/null", hone, gguf, out) == 0, "export llama");
    snprintf(file, sizeof file, "%s/model.safetensors", out);
    same_tensors("tests/data/tiny_llama/model.safetensors", file, NULL, 0);
    same_config("tests/data/tiny_llama", out, llama_keys);
    // The exported directory is a model hone loads, with transformers' golden logits.
    const tg_array *ids = tg_get(gold, "input_ids"), *ref = tg_get(gold, "base.logits");
    hn_model *m = load(out);
    if (m && ids && ref) {
        int T = (int)ids->dims[1];
        float *lg = logits(m, ids->i, T);
        double d = lg ? max_diff(lg, ref->f, (int64_t)T * m->hp.n_vocab) : INFINITY;
        printf("llama export: hone on the exported directory vs transformers' golden logits %.3g\n", d);
        CHECK(d <= 1e-4, "exported logits differ by %g", d);
        free(lg);
    }
    hn_model_destroy(m);

    static const char *const gpt2_keys[] = {"model_type", "n_embd", "n_layer", "n_head", "n_positions",
                                            "layer_norm_epsilon", "vocab_size", "tie_word_embeddings", NULL};
    snprintf(out, sizeof out, "%s/gpt2_export", tmp);
    CHECK(sh("'%s' export tests/data/hf_arch/gpt2 -o '%s' 2>/dev/null", hone, out) == 0, "export gpt2");
    snprintf(file, sizeof file, "%s/model.safetensors", out);
    same_tensors("tests/data/hf_arch/gpt2/model.safetensors", file, NULL, 0);
    same_config("tests/data/hf_arch/gpt2", out, gpt2_keys);

    static const char *const bert_keys[] = {"model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                            "intermediate_size", "max_position_embeddings", "type_vocab_size",
                                            "layer_norm_eps", "vocab_size", NULL};
    snprintf(out, sizeof out, "%s/bert_export", tmp);
    CHECK(sh("'%s' export tests/data/hf_arch/bert -o '%s' 2>/dev/null", hone, out) == 0, "export bert");
    snprintf(file, sizeof file, "%s/model.safetensors", out);
    same_tensors("tests/data/hf_arch/bert/model.safetensors", file, NULL, 0); // the pooler too
    same_config("tests/data/hf_arch/bert", out, bert_keys);
    // Qwen2 and linear rotary scaling export as they came; Llama 3's computed rope_freqs cannot be, and is refused.
    static const char *const family_keys[] = {"model_type", "hidden_size", "num_key_value_heads",
                                              "tie_word_embeddings", "vocab_size", NULL}; // rope: by the logits
    static const char *const fam[] = {"qwen2", "llama_linear"};
    for (int i = 0; i < 2; i++) {
        char src[256];
        snprintf(src, sizeof src, "tests/data/hf_family/%s", fam[i]);
        snprintf(out, sizeof out, "%s/%s_export", tmp, fam[i]);
        CHECK(sh("'%s' export '%s' -o '%s' 2>/dev/null", hone, src, out) == 0, "export %s", fam[i]);
        snprintf(file, sizeof file, "%s/model.safetensors", out);
        snprintf(gguf, sizeof gguf, "%s/model.safetensors", src);
        same_tensors(gguf, file, NULL, 0);
        same_config(src, out, family_keys);
        hn_model *x = load(src), *y = load(out);
        if (x && y) {
            int32_t f_ids[40];
            for (int k = 0; k < 40; k++) f_ids[k] = (k * 13 + 5) % 64;
            float *lx = logits(x, f_ids, 40), *ly = logits(y, f_ids, 40);
            CHECK(lx && ly && max_diff(lx, ly, 40 * 64) == 0, "%s: the export gives the same logits", fam[i]);
            free(lx), free(ly);
        }
        hn_model_destroy(x), hn_model_destroy(y);
    }
    CHECK(sh("'%s' export tests/data/hf_family/llama3_rope -o '%s/l3' 2>&1 | grep -q 'rope_freqs.weight'", hone, tmp)
          == 0, "llama3 rope scaling refused on export");
    snprintf(gguf, sizeof gguf, "%s/llama_f32.gguf", tmp);
    // Refusals: one line on stderr, non-zero exit.
    CHECK(sh("'%s' export tests/data/hf_arch/nothing -o '%s/x' 2>/dev/null", hone, tmp) != 0, "missing model");
    CHECK(sh("'%s' export '%s' 2>/dev/null", hone, gguf) != 0, "no -o");
}

static bool str_is(const hn_gguf *g, const char *key, const char *want) {
    hn_gguf_str v;
    return !hn_gguf_get_str(g, key, &v) && v.len == strlen(want) && !memcmp(v.str, want, v.len);
}

static int32_t *encode(hn_model *m, const char *text, int64_t *n) {
    int32_t *ids = NULL;
    if (!m->tok || hn_tokenizer_encode(m->tok, text, -1, 0, &ids, n)) return NULL;
    return ids;
}

// The tokenizer, chat template (from a list of named templates), special tokens and licence travel HF -> GGUF ->
// HF: a copy of tests/data/tiny_gpt2 (which has tokenizer.json) with a tokenizer_config.json and a model card.
static void test_tokenizer_travels(void) {
    static const char *tpl = "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|>"
                             "{% endfor %}";
    char dir[512], path[600], gguf[512], out[512];
    snprintf(dir, sizeof dir, "%s/gpt2_tok", tmp);
    CHECK(sh("mkdir -p '%s' && cp tests/data/tiny_gpt2/config.json tests/data/tiny_gpt2/tokenizer.json '%s'/ && "
             "ln -s \"$PWD\"/tests/data/tiny_gpt2/model.safetensors '%s'/", dir, dir, dir) == 0, "copy");
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"bos_token\": \"<|endoftext|>\", \"eos_token\": \"<|endoftext|>\", \"chat_template\": "
               "[{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", \"template\": \"%s\"}]}",
            tpl);
    fclose(f);
    snprintf(path, sizeof path, "%s/README.md", dir);
    f = fopen(path, "w");
    fputs("---\nlanguage: en\nlicense: apache-2.0\n---\n# tiny\n", f);
    fclose(f);
    const char *want_tpl = tpl;
    hn_gguf v;
    CHECK(!hn_hf_open(&v, dir), "view: %s", hn_errmsg());
    CHECK(str_is(&v, "tokenizer.chat_template", want_tpl), "chat template 'default' from the list");
    CHECK(str_is(&v, "general.license", "apache-2.0"), "licence from README.md");
    hn_gguf_close(&v);

    snprintf(gguf, sizeof gguf, "%s/gpt2_tok.gguf", tmp);
    CHECK(sh("'%s' convert '%s' -o '%s' --type f32 2>/dev/null", hone, dir, gguf) == 0, "convert with a tokenizer");
    hn_model *a = NULL, *b = NULL;
    hn_model_params p = hn_model_default_params();
    p.mm_mode = HN_MM_EXACT;
    CHECK(!hn_model_load(&a, dir, &p) && !hn_model_load(&b, gguf, &p), "load with tokenizers: %s", hn_errmsg());
    if (a && b) {
        CHECK(str_is(&b->gguf, "tokenizer.chat_template", want_tpl) && str_is(&b->gguf, "general.license", "apache-2.0")
              && hn_gguf_find(&b->gguf, "tokenizer.ggml.tokens") && hn_gguf_find(&b->gguf, "tokenizer.ggml.merges"),
              "the GGUF carries tokenizer, chat template and licence");
        int64_t na, nb;
        const char *text = "Hello world, this is hone converting 123 things!";
        int32_t *ia = encode(a, text, &na), *ib = encode(b, text, &nb);
        CHECK(ia && ib && na == nb && !memcmp(ia, ib, (size_t)na * sizeof *ia), "same token ids");
        CHECK(hn_tokenizer_eos(a->tok) == hn_tokenizer_eos(b->tok) && hn_tokenizer_eos(b->tok) >= 0, "same eos");
        if (ia && ib && na == nb) {
            float *la = logits(a, ia, (int)na), *lb = logits(b, ib, (int)nb);
            CHECK(la && lb && max_diff(la, lb, na * a->hp.n_vocab) == 0, "same logits");
            free(la), free(lb);
        }
        // ... and back out as a directory whose tokenizer encodes the same.
        snprintf(out, sizeof out, "%s/gpt2_tok_export", tmp);
        CHECK(sh("'%s' export '%s' -o '%s' 2>/dev/null", hone, gguf, out) == 0, "export with a tokenizer");
        hn_model *c = NULL;
        CHECK(!hn_model_load(&c, out, &p), "exported loads: %s", hn_errmsg());
        int64_t nc;
        int32_t *ic = c ? encode(c, text, &nc) : NULL;
        CHECK(ic && ia && nc == na && !memcmp(ic, ia, (size_t)na * sizeof *ia), "exported tokenizer: same ids");
        free(ic);
        hn_model_destroy(c);
        free(ia), free(ib);
    }
    hn_model_destroy(a), hn_model_destroy(b);
}

// An embedding padded past the tokenizer (vocab_size 300, 287 tokens): the directory loads, and hone convert pads
// the GGUF's vocabulary with [PAD<id>] tokens of type UNUSED as llama.cpp's converter does.
static void test_padded_vocab(void) {
    char dir[512], path[600], gguf[512];
    hn_safetensors st;
    CHECK(!hn_safetensors_open(&st, "tests/data/tiny_gpt2/model.safetensors"), "%s", hn_errmsg());
    const hn_tensor *e = hn_safetensors_tensor(&st, "transformer.wte.weight");
    CHECK(e && e->ndim == 2, "wte");
    if (!e) return hn_safetensors_close(&st);
    int V0 = (int)e->ne[1], V = V0 + 13;
    snprintf(dir, sizeof dir, "%s/gpt2_pad", tmp);
    CHECK(sh("mkdir -p '%s' && cp tests/data/tiny_gpt2/tokenizer.json tests/data/tiny_gpt2/tokenizer_config.json '%s'/ "
             "&& sed 's/\"vocab_size\": [0-9]*/\"vocab_size\": %d/' tests/data/tiny_gpt2/config.json > "
             "'%s/config.json'", dir, dir, V, dir) == 0, "copy");
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    float *wte = NULL;
    for (size_t i = 0; i < st.n_tensors; i++) {
        const hn_tensor *t = &st.tensors[i];
        if (t == e) {
            int64_t ne[2] = {t->ne[0], V};
            wte = calloc((size_t)(ne[0] * V), sizeof *wte);
            memcpy(wte, t->data, t->nbytes);
            hn_safetensors_writer_add(w, st.names[i], HN_F32, 2, ne, wte);
        } else {
            hn_safetensors_writer_add(w, st.names[i], t->type, t->ndim, t->ne, t->data);
        }
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(!hn_safetensors_writer_write(w, path), "write: %s", hn_errmsg());
    hn_safetensors_writer_destroy(w);
    free(wte);
    hn_safetensors_close(&st);
    snprintf(gguf, sizeof gguf, "%s/gpt2_pad.gguf", tmp);
    CHECK(sh("'%s' convert '%s' -o '%s' --type f32 2>/dev/null", hone, dir, gguf) == 0, "convert padded");
    hn_model_params p = hn_model_default_params();
    p.mm_mode = HN_MM_EXACT;
    hn_model *a = NULL, *b = NULL;
    CHECK(!hn_model_load(&a, dir, &p), "padded directory loads: %s", hn_errmsg());
    CHECK(!hn_model_load(&b, gguf, &p), "padded GGUF loads: %s", hn_errmsg());
    if (a && b) {
        const hn_gguf_kv *toks = hn_gguf_find(&b->gguf, "tokenizer.ggml.tokens"),
                         *types = hn_gguf_find(&b->gguf, "tokenizer.ggml.token_type");
        hn_gguf_str last = toks ? hn_gguf_arr_str(toks, (uint64_t)V - 1) : (hn_gguf_str){"", 0};
        char want[32];
        snprintf(want, sizeof want, "[PAD%d]", V - 1);
        CHECK(toks && toks->arr_n == (uint64_t)V && last.len == strlen(want) && !memcmp(last.str, want, last.len) &&
              types && hn_gguf_arr_num(types, (uint64_t)V - 1) == 5 && hn_gguf_arr_num(types, 0) != 5,
              "padded vocabulary");
        int64_t na, nb;
        const char *text = "Padding the vocabulary keeps every id.";
        int32_t *ia = encode(a, text, &na), *ib = encode(b, text, &nb);
        CHECK(ia && ib && na == nb && !memcmp(ia, ib, (size_t)na * sizeof *ia), "same ids");
        if (ia && ib && na == nb) {
            float *la = logits(a, ia, (int)na), *lb = logits(b, ib, (int)nb);
            CHECK(la && lb && max_diff(la, lb, na * V) == 0, "same logits");
            free(la), free(lb);
        }
        free(ia), free(ib);
    }
    hn_model_destroy(a), hn_model_destroy(b);
}

int main(void) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return test_skip("cannot find this test's directory");
    self[n] = 0;
    snprintf(hone, sizeof hone, "%s/hone", dirname(self));
    if (access(hone, X_OK)) return test_skip("the hone binary is not built beside the test");
    tg_file gold;
    if (!tg_load(&gold, TINY_DIR "/golden.bin")) return test_skip("run from the source root");
    snprintf(tmp, sizeof tmp, "/tmp/hone_test_hf_roundtrip_%d", (int)getpid());
    CHECK(sh("mkdir -p '%s'", tmp) == 0, "mkdir");
    test_convert(&gold);
    test_export(&gold);
    test_tokenizer_travels();
    test_padded_vocab();
    sh("rm -rf '%s'", tmp);
    tg_free(&gold);
    return test_done();
}

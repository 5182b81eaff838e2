// tests/test_llama_family.c — the Llama family's variants against transformers (tests/data/tiny_family, made by
// tools/reference/tiny_family_ref.py): Qwen2 (q/k/v biases, unpermuted rows rotated as halves, tied head), Llama
// with linear rope scaling, Llama with Llama 3's rope_freqs, and a Llama with tied embeddings as a Hugging Face
// checkpoint (F16 safetensors without lm_head). Logits of 40 positions (past the original context of
// 16) by the KV-cache forward and by the training forward (hn_model_hidden, no cache), DESIGN.md 7's tiny-model row
// (max abs diff <= 1e-4). Then metadata the loader must refuse: an unknown scaling type, a bad rope_freqs.
#include "model/model.h"
#include "tensor/nn.h"
#include "test.h"
#include "tiny_golden.h"

#include <math.h>
#include <unistd.h>

#define DIR "tests/data/tiny_family"

static void check_model(const char *name, const tg_file *g) {
    char path[256], key[64];
    snprintf(path, sizeof path, DIR "/%s.gguf", name);
    if (access(path, R_OK)) snprintf(path, sizeof path, DIR "/%s", name); // a Hugging Face directory
    snprintf(key, sizeof key, "%s.logits", name);
    const tg_array *ids = tg_get(g, "input_ids"), *want = tg_get(g, key);
    CHECK(ids && want, "%s: golden arrays missing", name);
    if (!ids || !want) return;
    const int T = (int)ids->dims[1], V = (int)want->dims[2];
    hn_model_params p = hn_model_default_params();
    p.mm_mode = HN_MM_EXACT;
    p.allow_no_tokenizer = true; // the directory has weights and config.json only
    hn_model *m;
    hn_status s = hn_model_load(&m, path, &p);
    CHECK(s == HN_OK, "load %s: %s", path, hn_errmsg());
    if (s) return;
    CHECK(m->hp.n_vocab == V, "%s: vocabulary %d, golden %d", name, m->hp.n_vocab, V);

    hn_kv_cache *kv = hn_kv_cache_create(m, T);
    float *logits = NULL;
    s = kv ? hn_model_forward(m, kv, ids->i, T, HN_LOGITS_ALL, &logits) : HN_ERR_NOMEM;
    CHECK(s == HN_OK, "%s: forward: %s", name, hn_errmsg());
    float d = s ? INFINITY : max_diff(logits, want->f, (int64_t)T * V);
    CHECK(d <= 1e-4f, "%s: KV-cache forward: max |logit diff| %.3g > 1e-4", name, d);
    printf("%-13s cached forward: max |diff| %.2e over %d positions\n", name, d, T);
    hn_kv_cache_destroy(kv);

    // The training body (B rows, no cache) with the model's own rotary table.
    hn_arena arena = {0}, scratch = {0};
    hn_ctx c = {.arena = &arena, .scratch = &scratch, .mm = HN_MM_EXACT};
    float *rope = malloc((size_t)T * m->hp.head_dim * sizeof *rope), *out = malloc((size_t)T * V * sizeof *out);
    hn_model_rope_table(m, rope, T);
    hn_var *h = hn_model_hidden(&c, m, ids->i, 1, T, rope, false);
    s = h ? hn_matmul(out, h->d, m->output.w, T, HN_MM_EXACT) : c.err;
    CHECK(s == HN_OK, "%s: hidden: %s", name, hn_errmsg());
    d = s ? INFINITY : max_diff(out, want->f, (int64_t)T * V);
    CHECK(d <= 1e-4f, "%s: training forward: max |logit diff| %.3g > 1e-4", name, d);
    printf("%-13s training forward: max |diff| %.2e\n", name, d);
    free(rope);
    free(out);
    hn_arena_deinit(&arena);
    hn_arena_deinit(&scratch);
    hn_model_destroy(m);
}

// A copy of SRC with one metadata key set (STRING when sval, else F32 fval) and rope_freqs.weight's first value
// replaced by bad_freq when it is not 0; returns the loader's status and keeps its message in msg.
static hn_status load_variant(const char *src, const char *key, const char *sval, float fval, float bad_freq,
                              char *msg, size_t cap) {
    char path[256];
    snprintf(path, sizeof path, "%s/hone_test_family_%d.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    hn_gguf g;
    hn_status s = hn_gguf_open(&g, src);
    CHECK(s == HN_OK, "open %s: %s", src, hn_errmsg());
    if (s) return s;
    hn_gguf_writer *w = hn_gguf_writer_create();
    for (uint64_t i = 0; i < g.n_kv; i++) hn_gguf_writer_copy_kv(w, &g.kv[i]);
    if (key && sval) hn_gguf_writer_set_str(w, key, sval);
    else if (key) hn_gguf_writer_set_f32(w, key, fval);
    float *freqs = NULL;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const hn_tensor *t = &g.tensors[i];
        const void *data = t->data;
        if (bad_freq != 0 && !strcmp(t->name, "rope_freqs.weight")) {
            freqs = malloc(t->nbytes);
            memcpy(freqs, t->data, t->nbytes);
            freqs[0] = bad_freq;
            data = freqs;
        }
        hn_gguf_writer_add_tensor(w, t->name, t->type, t->ndim, t->ne, data);
    }
    s = hn_gguf_writer_write(w, path);
    hn_gguf_writer_destroy(w);
    hn_gguf_close(&g);
    free(freqs);
    CHECK(s == HN_OK, "write %s: %s", path, hn_errmsg());
    if (s) return s;
    hn_model *m = NULL;
    s = hn_model_load(&m, path, NULL);
    snprintf(msg, cap, "%s", s ? hn_errmsg() : "");
    if (!s) hn_model_destroy(m);
    unlink(path);
    return s;
}

static void refusals(void) {
    char msg[512];
    hn_status s = load_variant(DIR "/llama_linear.gguf", "llama.rope.scaling.type", "yarn", 0, 0, msg, sizeof msg);
    CHECK(s == HN_ERR_UNSUPPORTED && strstr(msg, "llama.rope.scaling.type 'yarn'") && !strchr(msg, '\n'),
          "yarn scaling refused, naming the key: '%s'", msg);
    s = load_variant(DIR "/llama_linear.gguf", "llama.rope.scaling.factor", NULL, -3.0f, 0, msg, sizeof msg);
    CHECK(s == HN_ERR_FORMAT && strstr(msg, "rope scaling factor -3"), "a negative factor refused: '%s'", msg);
    s = load_variant(DIR "/llama3_rope.gguf", NULL, NULL, 0, -1.0f, msg, sizeof msg);
    CHECK(s == HN_ERR_FORMAT && strstr(msg, "rope_freqs.weight[0]"), "a negative rope_freqs refused: '%s'", msg);
}

int main(void) {
    tg_file g;
    if (!tg_load(&g, DIR "/golden.bin")) {
        CHECK(0, DIR "/golden.bin is missing or malformed (run from the source root)");
        return test_done();
    }
    check_model("qwen2", &g);
    check_model("llama_linear", &g);
    check_model("llama3_rope", &g);
    check_model("llama_tied", &g);
    tg_free(&g);
    refusals();
    return test_done();
}

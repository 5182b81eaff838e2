// tests/test_hf.c — the tiny random Llama saved by transformers (tests/data/tiny_llama, tools/reference/
// tiny_llama_ref.py) loads as a directory through hn_model_load, and hone's exact fp32 logits match transformers'
// within 1e-4 (DESIGN.md section 7): this checks config.json mapping, the name table and the q/k row permutation.
// Also: the name table both ways, the permutation round trip, the same model sharded (index.json) and in BF16, and
// broken directories (missing or mistyped config keys, unsupported variants, missing files and tensors).
#include "io/hf.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test.h"
#include "tiny_golden.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

// Max abs difference between hone's all-token logits for each batch row and the golden (B, T, V) array.
static double logits_diff(hn_model *m, const tg_array *ids, const tg_array *ref) {
    int B = (int)ids->dims[0], T = (int)ids->dims[1], V = m->hp.n_vocab;
    double worst = INFINITY;
    if (ref->dims[2] != V) return worst;
    worst = 0;
    for (int b = 0; b < B; b++) {
        hn_kv_cache *kv = hn_kv_cache_create(m, T);
        float *lg;
        if (!kv || hn_model_forward(m, kv, ids->i + b * T, T, HN_LOGITS_ALL, &lg)) {
            fprintf(stderr, "forward: %s\n", hn_errmsg());
            hn_kv_cache_destroy(kv);
            return INFINITY;
        }
        for (int64_t k = 0; k < (int64_t)T * V; k++) {
            double d = fabs((double)lg[k] - ref->f[(int64_t)b * T * V + k]);
            if (!(d <= worst)) worst = d; // NaN sticks
        }
        hn_kv_cache_destroy(kv);
    }
    return worst;
}

static hn_model *load_dir(const char *dir) {
    hn_model_params p = hn_model_default_params();
    p.mm_mode = HN_MM_EXACT;
    p.allow_no_tokenizer = true;
    hn_model *m = NULL;
    if (hn_model_load(&m, dir, &p)) return NULL;
    return m;
}

static void test_names(void) {
    char out[96];
    const char *pairs[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
        {"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"},
        {"model.layers.17.self_attn.k_proj.bias", "blk.17.attn_k.bias"},
        {"model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"},
        {"model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight"},
        {"model.layers.120.post_attention_layernorm.weight", "blk.120.ffn_norm.weight"},
        {"model.layers.1.input_layernorm.weight", "blk.1.attn_norm.weight"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        CHECK(hn_hf_name_to_gguf(pairs[i][0], out, sizeof out) && !strcmp(out, pairs[i][1]), "%s -> %s", pairs[i][0],
              out);
        CHECK(hn_hf_name_from_gguf(pairs[i][1], out, sizeof out) && !strcmp(out, pairs[i][0]), "%s <- %s",
              pairs[i][0], out);
    }
    const char *bad[] = {"model.layers.x.mlp.up_proj.weight", "model.layers.1.mlp.up_proj", "model.layers..a",
                         "model.layers.1.self_attn.rotary_emb.inv_freq", "blk.1", "", "model.layers.99999999.mlp"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!hn_hf_name_to_gguf(bad[i], out, sizeof out), "'%s' not mapped", bad[i]);
    CHECK(!hn_hf_name_to_gguf("model.layers.1.mlp.up_proj.weight", out, 8), "too small a buffer");
    CHECK(!strcmp(hn_hf_kind_to_gguf("gate_proj"), "ffn_gate") && !strcmp(hn_hf_kind_from_gguf("attn_output"), "o_proj")
          && !hn_hf_kind_to_gguf("lm_head"), "kinds");

    // GGUF row h*hd + 2i + j = HF row h*hd + j*hd/2 + i; and back.
    enum { H = 2, HD = 6, C = 3 };
    float src[H * HD * C], g[H * HD * C], back[H * HD * C];
    for (int i = 0; i < H * HD * C; i++) src[i] = (float)i;
    hn_hf_permute_rows(g, src, H * HD, C, H, true);
    bool ok = true;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < HD / 2; i++)
            for (int j = 0; j < 2; j++)
                for (int c = 0; c < C; c++)
                    ok &= g[(h * HD + 2 * i + j) * C + c] == src[(h * HD + j * HD / 2 + i) * C + c];
    CHECK(ok, "permutation formula");
    hn_hf_permute_rows(back, g, H * HD, C, H, false);
    CHECK(!memcmp(back, src, sizeof src), "permutation round trip");
}

static void test_tiny(const tg_file *gold) {
    hn_model *m = load_dir(TINY_DIR);
    CHECK(m, "load %s: %s", TINY_DIR, hn_errmsg());
    if (!m) return;
    const hn_hparams *hp = &m->hp;
    CHECK(hp->n_layer == 2 && hp->n_embd == 64 && hp->n_head == 4 && hp->n_head_kv == 2 && hp->head_dim == 16 &&
          hp->n_ff == 128 && hp->n_vocab == 256 && hp->n_ctx_train == 128 && hp->rope_theta == 10000.0f &&
          hp->norm_eps == 1e-5f, "hyper-parameters");
    CHECK(m->tok == NULL && m->output.w != m->tok_embd, "no tokenizer; untied head");
    hn_gguf_str name;
    CHECK(!hn_gguf_get_str(&m->gguf, "general.name", &name) && name.len == 10 && !memcmp(name.str, "tiny_llama", 10),
          "general.name from the directory");
    const hn_tensor *q = hn_gguf_tensor(&m->gguf, "blk.1.attn_q.weight"), *v = hn_gguf_tensor(&m->gguf, "blk.1.attn_v.weight");
    CHECK(q && q->type == HN_F32 && v && v->type == HN_F32, "q (copied) and v (mapped)");
    const tg_array *ids = tg_get(gold, "input_ids"), *ref = tg_get(gold, "base.logits");
    CHECK(ids && ref, "golden arrays");
    if (ids && ref) {
        double d = logits_diff(m, ids, ref);
        printf("tiny llama (directory, fp32): max abs logit diff vs transformers %.3g\n", d);
        CHECK(d <= 1e-4, "logits differ by %g", d);
    }
    hn_model_destroy(m);
    // Without allow_no_tokenizer the directory is refused with a message (the CLI's case).
    CHECK(hn_model_load(&m, TINY_DIR, NULL) == HN_ERR_NOTFOUND && strstr(hn_errmsg(), "no tokenizer"), "%s",
          hn_errmsg());
}

static void write_file(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static void rm_dir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "rm");
}

// The tiny model re-written in two shards with an index (optionally in BF16).
static bool make_sharded(const char *dir, bool bf16) {
    hn_safetensors st;
    if (hn_safetensors_open(&st, TINY_DIR "/model.safetensors")) return false;
    hn_safetensors_writer *w[2] = {hn_safetensors_writer_create(), hn_safetensors_writer_create()};
    hn_bf16 **conv = calloc(st.n_tensors, sizeof *conv);
    char *index = malloc(1 << 16);
    int o = snprintf(index, 1 << 16, "{\"metadata\":{\"total_size\":0},\"weight_map\":{");
    for (size_t i = 0; i < st.n_tensors; i++) {
        const hn_tensor *t = &st.tensors[i];
        int shard = strstr(st.names[i], "layers.1.") ? 1 : 0;
        const void *data = t->data;
        if (bf16) {
            int64_t n = hn_nelem(t);
            conv[i] = malloc(n * 2);
            for (int64_t k = 0; k < n; k++) conv[i][k] = hn_f32_to_bf16(((const float *)t->data)[k]);
            data = conv[i];
        }
        hn_safetensors_writer_add(w[shard], st.names[i], bf16 ? HN_BF16 : HN_F32, t->ndim, t->ne, data);
        o += snprintf(index + o, (1 << 16) - o, "%s\"%s\":\"model-0000%d-of-00002.safetensors\"", i ? "," : "",
                      st.names[i], shard + 1);
    }
    snprintf(index + o, (1 << 16) - o, "}}");
    char p[512];
    bool ok = true;
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/model-0000%d-of-00002.safetensors", dir, s + 1);
        ok &= !hn_safetensors_writer_write(w[s], p);
        hn_safetensors_writer_destroy(w[s]);
    }
    write_file(dir, "model.safetensors.index.json", index);
    for (size_t i = 0; i < st.n_tensors; i++) free(conv[i]);
    free(conv);
    free(index);
    hn_safetensors_close(&st);
    return ok;
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

// config.json with one substring replaced (or the key removed when `with` is NULL and `what` is a "key": line).
static void config_with(const char *dir, const char *orig, const char *what, const char *with) {
    char *c = calloc(1, strlen(orig) + 512);
    const char *at = strstr(orig, what);
    CHECK(at, "'%s' in config.json", what);
    if (!at) return;
    size_t pre = (size_t)(at - orig), cut = strlen(what);
    if (!with) { // remove the whole line
        while (pre > 0 && orig[pre - 1] != '\n') pre--;
        const char *nl = strchr(at, '\n');
        cut = nl ? (size_t)(nl + 1 - (orig + pre)) : strlen(orig + pre);
    }
    memcpy(c, orig, pre);
    strcat(c, with ? with : "");
    strcat(c, orig + pre + cut);
    write_file(dir, "config.json", c);
    free(c);
}

static void test_variants(const tg_file *gold) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp " TINY_DIR "/config.json '%s'/", dir, dir);
    CHECK(system(cmd) == 0, "mkdir");
    CHECK(make_sharded(dir, false), "shards: %s", hn_errmsg());
    hn_model *m = load_dir(dir);
    CHECK(m, "sharded load: %s", hn_errmsg());
    const tg_array *ids = tg_get(gold, "input_ids"), *ref = tg_get(gold, "base.logits");
    if (m && ids && ref) {
        double d = logits_diff(m, ids, ref);
        CHECK(d <= 1e-4, "sharded logits differ by %g", d);
    }
    hn_model_destroy(m);
    // A shard named in the index but absent.
    char p[512];
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    unlink(p);
    CHECK(!load_dir(dir) && strstr(hn_errmsg(), "model-00002-of-00002.safetensors"), "%s", hn_errmsg());
    write_file(dir, "model.safetensors.index.json", "{\"weight_map\": {\"a\": \"../x\"}}");
    CHECK(!load_dir(dir) && strstr(hn_errmsg(), "weight_map"), "%s", hn_errmsg());
    write_file(dir, "model.safetensors.index.json", "{\"weight_map\": 3}");
    CHECK(!load_dir(dir) && strstr(hn_errmsg(), "weight_map"), "%s", hn_errmsg());

    // BF16 weights: mapped as BF16 (q/k and norms as fp32 copies); logits close to fp32's (bf16 has 8 bits).
    rm_dir(dir);
    CHECK(system(cmd) == 0, "mkdir");
    CHECK(make_sharded(dir, true), "bf16 shards");
    m = load_dir(dir);
    CHECK(m, "bf16 load: %s", hn_errmsg());
    if (m && ids && ref) {
        const hn_tensor *up = hn_gguf_tensor(&m->gguf, "blk.0.ffn_up.weight");
        CHECK(up && up->type == HN_BF16, "bf16 stays mapped");
        double d = logits_diff(m, ids, ref);
        printf("bf16 copy: max abs logit diff vs fp32 transformers %.3g\n", d);
        CHECK(d < 0.2, "bf16 logits differ by %g", d);
    }
    hn_model_destroy(m);

    // Broken config.json, one key at a time, on a directory whose weights are a link to the tiny model's.
    rm_dir(dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && ln -s \"$PWD\"/" TINY_DIR "/model.safetensors '%s'/", dir, dir);
    CHECK(system(cmd) == 0, "mkdir");
    char *orig = read_text(TINY_DIR "/config.json");
    CHECK(orig, "config.json");
    if (!orig) return;
    struct {
        const char *what, *with, *needle;
    } cases[] = {
        {"\"hidden_size\": 64", NULL, "'hidden_size' is missing"},
        {"\"num_hidden_layers\": 2", NULL, "'num_hidden_layers' is missing"},
        {"\"vocab_size\": 256", "\"vocab_size_\": 256", "'vocab_size' is missing"},
        {"\"rms_norm_eps\": 1e-05", NULL, "'rms_norm_eps' is missing"},
        {"\"hidden_size\": 64", "\"hidden_size\": \"64\"", "'hidden_size' must be a positive integer"},
        {"\"num_attention_heads\": 4", "\"num_attention_heads\": -4", "'num_attention_heads'"},
        {"\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "key/value heads"},
        {"\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": \"small\"", "'rms_norm_eps' must be a positive number"},
        {"\"head_dim\": 16", "\"head_dim\": 8", "head_dim 8"},
        {"\"model_type\": \"llama\"", "\"model_type\": \"mistral\"", "model_type 'mistral'"},
        {"\"model_type\": \"llama\"", NULL, "model_type"},
        {"\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act"},
        {"\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"", "rope scaling 'yarn' is not supported"},
        {"\"rope_type\": \"default\"", "\"rope_type\": \"linear\"", "'factor' is missing"},
        {"\"tie_word_embeddings\": false", "\"tie_word_embeddings\": 0", "tie_word_embeddings"},
        {"\"vocab_size\": 256", "\"vocab_size\": 300", "vocab_size is 300 but"},
        {"\"intermediate_size\": 128", "\"intermediate_size\": 100", "blk.0.ffn_gate.weight"},
        {"{", "[", "config.json"},
        {"\"vocab_size\": 256", "\"vocab_size\": 256,,", "config.json: line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_with(dir, orig, cases[i].what, cases[i].with);
        hn_model *bad = load_dir(dir);
        CHECK(!bad && strstr(hn_errmsg(), cases[i].needle), "case %zu (%s): '%s' lacks '%s'", i, cases[i].what,
              hn_errmsg(), cases[i].needle);
        hn_model_destroy(bad);
    }
    // Tied embeddings: the file's lm_head is dropped, the head reads token_embd (so logits change).
    config_with(dir, orig, "\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true");
    m = load_dir(dir);
    CHECK(m && m->output.w == m->tok_embd && !hn_gguf_tensor(&m->gguf, "output.weight"), "tied: %s", hn_errmsg());
    hn_model_destroy(m);
    write_file(dir, "config.json", orig);
    m = load_dir(dir);
    CHECK(m, "restored config loads: %s", hn_errmsg());
    hn_model_destroy(m);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    CHECK(!load_dir(dir) && strstr(hn_errmsg(), "model.safetensors"), "no weights: %s", hn_errmsg());
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    CHECK(!load_dir(dir) && strstr(hn_errmsg(), "config.json"), "no config: %s", hn_errmsg());
    free(orig);
    rm_dir(dir);
}

// Llama-family variants (tests/data/hf_family, tools/reference/hf_roundtrip_ref.py): Qwen2 (q/k/v biases, rows not
// permuted, tied head), Llama 3 rotary scaling (rope_freqs computed from config.json as llama.cpp's converter does)
// and linear scaling, against transformers' logits over 40 positions.
static void test_family(void) {
    static const char *const dirs[] = {"tests/data/hf_family/qwen2", "tests/data/hf_family/llama3_rope",
                                       "tests/data/hf_family/llama_linear"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/golden.bin", dirs[i]);
        tg_file gold;
        CHECK(tg_load(&gold, path), "%s", path);
        hn_model *m = load_dir(dirs[i]);
        CHECK(m, "load %s: %s", dirs[i], hn_errmsg());
        const tg_array *ids = tg_get(&gold, "input_ids"), *ref = tg_get(&gold, "logits");
        if (m && ids && ref) {
            double d = logits_diff(m, ids, ref);
            printf("%s: max abs logit diff vs transformers %.3g\n", dirs[i], d);
            CHECK(d <= 1e-4, "%s: logits differ by %g", dirs[i], d);
        }
        if (m && i == 0) CHECK(m->output.w == m->tok_embd && m->layers[0].q.b, "qwen2: tied head, q bias");
        if (m && i == 1) CHECK(m->hp.rope_freqs != NULL, "llama3: rope_freqs");
        if (m && i == 2) CHECK(m->hp.rope_linear == 4.0f, "linear factor 4");
        hn_model_destroy(m);
        tg_free(&gold);
    }
}

int main(void) {
    tg_file gold;
    if (!tg_load(&gold, TINY_DIR "/golden.bin")) {
        fprintf(stderr, "cannot read %s/golden.bin (run from the source root)\n", TINY_DIR);
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hone_test_hf_%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmpdir);
    CHECK(system(cmd) == 0, "mkdir");
    test_names();
    test_tiny(&gold);
    test_variants(&gold);
    test_family();
    rm_dir(tmpdir);
    tg_free(&gold);
    return test_done();
}

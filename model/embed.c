// model/embed.c — sentence embeddings: padded batches through the model's hidden states (no tape), pooled over
// each row's valid tokens, L2-normalised on request; and the model's own pooling and normalisation, read from its
// metadata or from the sentence-transformers files beside an HF directory.
#include "model/embed.h"
#include "io/hf.h"
#include "tensor/nn.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMBED_BATCH 16 // texts per padded batch (taken in order of length)

static const char *const pool_names[] = {[HN_POOL_MEAN] = "mean", [HN_POOL_CLS] = "cls", [HN_POOL_LAST] = "last",
                                         [HN_POOL_MAX] = "max"};

hn_pool hn_pool_parse(const char *name) {
    for (int p = HN_POOL_MEAN; p <= HN_POOL_MAX; p++)
        if (!strcmp(name, pool_names[p])) return (hn_pool)p;
    return HN_POOL_NONE;
}

const char *hn_pool_name(hn_pool p) { return p >= HN_POOL_MEAN && p <= HN_POOL_MAX ? pool_names[p] : "none"; }

// dir/rel as JSON, or NULL (absent or unreadable: the caller falls back to the architecture's default).
static json_t *side_json(const hn_model *m, const char *rel) {
    if (!hn_hf_is_dir(m->path)) return NULL;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", m->path, rel);
    return json_load_file(p, 0, NULL);
}

hn_pool hn_model_default_pool(const hn_model *m) {
    if (m->pooling >= HN_POOL_MEAN && m->pooling <= HN_POOL_LAST) return (hn_pool)m->pooling;
    json_t *j = side_json(m, "1_Pooling/config.json");
    hn_pool p = HN_POOL_NONE;
    if (j) {
        static const struct {
            const char *key;
            hn_pool pool;
        } modes[] = {{"pooling_mode_cls_token", HN_POOL_CLS}, {"pooling_mode_mean_tokens", HN_POOL_MEAN},
                     {"pooling_mode_max_tokens", HN_POOL_MAX}, {"pooling_mode_lasttoken", HN_POOL_LAST}};
        for (size_t i = 0; i < sizeof modes / sizeof modes[0] && !p; i++)
            if (json_is_true(json_object_get(j, modes[i].key))) p = modes[i].pool;
        json_decref(j);
    }
    if (p) return p;
    return m->hp.arch == HN_ARCH_BERT ? HN_POOL_MEAN : HN_POOL_LAST;
}

bool hn_model_default_normalize(const hn_model *m) {
    json_t *j = side_json(m, "modules.json");
    bool norm = false;
    size_t i;
    json_t *mod;
    if (json_is_array(j))
        json_array_foreach(j, i, mod) {
            const char *type = json_string_value(json_object_get(mod, "type"));
            if (type && strstr(type, "Normalize")) norm = true;
        }
    json_decref(j);
    return norm;
}

// One row's pooled vector from its hidden states h (T, C), the first len valid.
static void pool_row(float *out, const float *h, int len, int C, hn_pool pool) {
    switch (pool) {
    case HN_POOL_CLS: memcpy(out, h, (size_t)C * sizeof *out); break;
    case HN_POOL_LAST: memcpy(out, h + (int64_t)(len - 1) * C, (size_t)C * sizeof *out); break;
    case HN_POOL_MAX:
        memcpy(out, h, (size_t)C * sizeof *out);
        for (int t = 1; t < len; t++)
            for (int j = 0; j < C; j++) out[j] = fmaxf(out[j], h[(int64_t)t * C + j]);
        break;
    default: // mean, summed in double as the token count can be large
        for (int j = 0; j < C; j++) {
            double s = 0;
            for (int t = 0; t < len; t++) s += h[(int64_t)t * C + j];
            out[j] = (float)(s / len);
        }
    }
}

static void l2_normalize(float *v, int C) {
    double s = 0;
    for (int j = 0; j < C; j++) s += (double)v[j] * v[j];
    // sentence-transformers divides by max(norm, 1e-12)
    double inv = 1.0 / fmax(sqrt(s), 1e-12);
    for (int j = 0; j < C; j++) v[j] = (float)(v[j] * inv);
}

hn_status hn_model_embed_ids(hn_model *m, const int32_t *ids, const int32_t *lens, int B, int T, hn_pool pool,
                             bool normalize, float *out) {
    if (pool == HN_POOL_MODEL) pool = hn_model_default_pool(m);
    if (pool < HN_POOL_MEAN || pool > HN_POOL_MAX)
        return hn_fail(HN_ERR_ARG, "embed: pooling %d, expected mean, cls, last or max", (int)pool);
    if (B <= 0 || T <= 0) return hn_fail(HN_ERR_ARG, "embed: %d rows of %d tokens", B, T);
    for (int b = 0; b < B; b++) {
        if (lens[b] < 1 || lens[b] > T)
            return hn_fail(HN_ERR_ARG, "embed: row %d has %d valid tokens, expected 1..%d", b, (int)lens[b], T);
        for (int t = 0; t < lens[b]; t++)
            if (ids[(int64_t)b * T + t] < 0 || ids[(int64_t)b * T + t] >= m->hp.n_vocab)
                return hn_fail(HN_ERR_RANGE, "embed: token id %d (row %d, index %d) is outside the vocabulary [0, %d)",
                               (int)ids[(int64_t)b * T + t], b, t, m->hp.n_vocab);
    }
    hn_arena arena = {0}, blocks = {0};
    hn_ctx c = {.arena = &arena, .scratch = &blocks, .mm = m->mm_mode};
    // Padding positions may hold any id; the model sees a valid one (the row's first token) there.
    int32_t *safe = hn_arena_alloc(&arena, (size_t)B * T * sizeof *safe);
    float *rope = m->hp.arch == HN_ARCH_BERT ? NULL : hn_arena_alloc(&arena, (size_t)T * m->hp.head_dim * sizeof *rope);
    hn_status s = HN_OK;
    if (!safe || (m->hp.arch != HN_ARCH_BERT && !rope)) {
        s = HN_ERR_NOMEM;
        goto done;
    }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) safe[(int64_t)b * T + t] = ids[(int64_t)b * T + (t < lens[b] ? t : 0)];
    if (rope) hn_model_rope_table(m, rope, T);
    hn_var *h = hn_model_hidden_ex(&c, m, safe, lens, B, T, rope, false);
    if (!h) {
        s = c.err ? c.err : hn_fail(HN_ERR_ARG, "embed: the model's forward failed");
        goto done;
    }
    int C = m->hp.n_embd;
    for (int b = 0; b < B; b++) {
        pool_row(out + (int64_t)b * C, h->d + (int64_t)b * T * C, lens[b], C, pool);
        if (normalize) l2_normalize(out + (int64_t)b * C, C);
    }
done:
    hn_arena_deinit(&arena);
    hn_arena_deinit(&blocks);
    return s;
}

int hn_model_embed_max_tokens(const hn_model *m) {
    int max = m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 1 << 20;
    // sentence-transformers cuts inputs at its max_seq_length (256 for all-MiniLM-L6-v2), not at the positions.
    json_t *st = side_json(m, "sentence_bert_config.json");
    json_int_t msl = json_integer_value(json_object_get(st, "max_seq_length"));
    if (msl >= 2 && msl < max) max = (int)msl;
    json_decref(st);
    return max;
}

hn_status hn_model_embed_texts(hn_model *m, const char *const *texts, int n, hn_pool pool, bool normalize,
                               float *out) {
    if (!m->tok) return hn_fail(HN_ERR_UNSUPPORTED, "%s: the model has no tokenizer to embed text with", m->path);
    int max = hn_model_embed_max_tokens(m);
    // An encoder frames each text as BERT's post-processor does: [CLS] text [SEP]; a decoder starts a sequence
    // (BOS where its metadata asks for one).
    bool enc = m->hp.arch == HN_ARCH_BERT;
    int32_t cls = enc ? hn_tokenizer_find(m->tok, "[CLS]") : -1, sep = enc ? hn_tokenizer_find(m->tok, "[SEP]") : -1;
    if (enc && (cls < 0 || sep < 0))
        return hn_fail(HN_ERR_FORMAT, "%s: the encoder's vocabulary has no [CLS] or [SEP] token", m->path);
    // Every text is tokenized first, so that batches can take texts of similar lengths (less padding).
    int32_t **tok = hn_calloc((size_t)n, sizeof *tok, "tokens"), *lens = hn_calloc((size_t)n, sizeof *lens, "lengths");
    int *order = hn_calloc((size_t)n, sizeof *order, "order");
    int32_t *ids = NULL;
    float *vec = hn_calloc((size_t)EMBED_BATCH * m->hp.n_embd, sizeof *vec, "embedding batch");
    hn_status s = tok && lens && order && vec ? HN_OK : HN_ERR_NOMEM;
    for (int i = 0; i < n && !s; i++) {
        int64_t len;
        int32_t *t;
        if ((s = hn_tokenizer_encode(m->tok, texts[i], -1, enc ? 0 : HN_TOK_ADD_BOS, &t, &len))) break;
        if (enc) { // room for the framing, then cut to the positions keeping [SEP] last
            tok[i] = hn_calloc((size_t)len + 2, sizeof *t, "tokens");
            if (!tok[i]) {
                free(t);
                s = HN_ERR_NOMEM;
                break;
            }
            tok[i][0] = cls;
            memcpy(tok[i] + 1, t, (size_t)len * sizeof *t);
            free(t);
            len = len + 2 < max ? len + 2 : max;
            tok[i][len - 1] = sep;
        } else {
            tok[i] = t;
            len = len < max ? len : max;
        }
        if (len == 0) { // a decoder without BOS given an empty text: nothing to pool
            s = hn_fail(HN_ERR_ARG, "embed: text %d gives no tokens", i);
            break;
        }
        lens[i] = (int32_t)len;
        order[i] = i;
    }
    // Insertion sort by length (stable; n is a CLI chunk, small): each batch's texts pad to similar lengths.
    for (int i = 1; i < n && !s; i++)
        for (int j = i; j > 0 && lens[order[j - 1]] > lens[order[j]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    int64_t C = m->hp.n_embd;
    for (int b0 = 0; b0 < n && !s; b0 += EMBED_BATCH) {
        int B = n - b0 < EMBED_BATCH ? n - b0 : EMBED_BATCH, T = lens[order[b0 + B - 1]];
        int32_t bl[EMBED_BATCH];
        if (!(ids = hn_calloc((size_t)B * T, sizeof *ids, "embedding batch"))) s = HN_ERR_NOMEM;
        for (int b = 0; b < B && !s; b++) {
            bl[b] = lens[order[b0 + b]];
            memcpy(ids + (int64_t)b * T, tok[order[b0 + b]], (size_t)bl[b] * sizeof *ids);
        }
        if (!s) s = hn_model_embed_ids(m, ids, bl, B, T, pool, normalize, vec);
        for (int b = 0; b < B && !s; b++) memcpy(out + order[b0 + b] * C, vec + b * C, (size_t)C * sizeof *vec);
        free(ids);
        ids = NULL;
    }
    for (int i = 0; tok && i < n; i++) free(tok[i]);
    free(tok), free(lens), free(order), free(vec);
    return s;
}

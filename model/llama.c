// model/llama.c — the Llama family (Llama 2/3, SmolLM, TinyLlama, Mistral, and Qwen2 with its q/k/v biases):
// pre-norm blocks of RMSNorm, grouped-query attention with rotary embedding (optionally scaled), and a SwiGLU MLP;
// the output head is tied to the embedding when the file has no output.weight. Weights stay in the GGUF mapping in
// their own dtype; every linear layer goes through hn_matmul.
//
// GGUF stores Q and K rows permuted by llama.cpp's converter so that rotary embedding pairs ADJACENT dimensions
// (2i, 2i+1) of each head (FORMATS.md section 3); hn_rope does exactly that, so no un-permuting is needed. Qwen2's
// converter leaves the rows as they are, so its rotary pairs are the halves (hn_hparams.rope_neox).
#include "model/arch.h"
#include "tensor/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Rotary scaling from the metadata: rope.scaling.type none / linear (rope.scaling.factor, or the older
// rope.scale_linear), and Llama 3's per-pair frequency factors, which llama.cpp's converter stores as the tensor
// rope_freqs.weight. Other types (yarn, longrope) are refused.
static hn_status rope_scaling(hn_model *m, const char *arch, hn_hparams *hp) {
    char key[128];
    hn_gguf_str type = {0};
    float factor = 1.0f;
    hn_status s;
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (hn_gguf_find(&m->gguf, key) && (s = hn_gguf_get_str(&m->gguf, key, &type))) return s;
    snprintf(key, sizeof key, "%s.rope.scale_linear", arch);
    if ((s = hn_model_opt_f32(m, key, &factor))) return s;
    if (type.len && !(type.len == 4 && !memcmp(type.str, "none", 4))) {
        if (!(type.len == 6 && !memcmp(type.str, "linear", 6)))
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: %s.rope.scaling.type '%.*s' is not supported (hone knows none, "
                           "linear, and Llama 3's rope_freqs)", m->path, arch, (int)(type.len > 32 ? 32 : type.len),
                           type.str);
        snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
        if ((s = hn_model_req_f32(m, key, &factor))) return s;
    }
    if (!(factor >= 1.0f && factor <= 1024.0f))
        return hn_fail(HN_ERR_FORMAT, "%s: rope scaling factor %g out of range [1, 1024]", m->path, (double)factor);
    hp->rope_linear = factor;
    const hn_tensor *freqs;
    if ((s = hn_model_tensor(m, "rope_freqs.weight", hp->head_dim / 2, 0, false, &freqs))) return s;
    if (freqs) {
        if (freqs->type != HN_F32)
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: rope_freqs.weight is %s; expected f32", m->path,
                           hn_dtype_name(freqs->type));
        const float *f = freqs->data;
        for (int i = 0; i < hp->head_dim / 2; i++)
            if (!(f[i] > 0 && f[i] < 1e6f))
                return hn_fail(HN_ERR_FORMAT, "%s: rope_freqs.weight[%d] = %g; expected a positive factor", m->path,
                               i, (double)f[i]);
        hp->rope_freqs = f;
    }
    return HN_OK;
}

// The Llama family in GGUF: general.architecture "llama" (Llama 2/3, SmolLM, TinyLlama, Mistral) or "qwen2" (the
// same blocks with q/k/v biases, its keys under "qwen2.", and rotary pairs over the halves: its converter does not
// permute Q/K rows).
static hn_status family_load(hn_model *m, const char *arch, bool neox) {
    hn_hparams *hp = &m->hp;
    char key[128];
    uint32_t n_layer, n_embd, n_ff, n_head, n_head_kv, n_ctx = 0, rot_dim = 0, vocab = 0;
    float eps, theta = 10000.0f;
    hn_status s;
#define REQ(field, var) (snprintf(key, sizeof key, "%s." field, arch), hn_model_req_u32(m, key, &var))
#define OPT(field, var) (snprintf(key, sizeof key, "%s." field, arch), hn_model_opt_u32(m, key, &var))
    if ((s = REQ("block_count", n_layer)) || (s = REQ("embedding_length", n_embd)) ||
        (s = REQ("feed_forward_length", n_ff)) || (s = REQ("attention.head_count", n_head)))
        return s;
    n_head_kv = n_head;
    if ((s = OPT("attention.head_count_kv", n_head_kv)) || (s = OPT("context_length", n_ctx)) ||
        (s = OPT("rope.dimension_count", rot_dim)) || (s = OPT("vocab_size", vocab)))
        return s;
#undef REQ
#undef OPT
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if ((s = hn_model_req_f32(m, key, &eps))) return s;
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    if ((s = hn_model_opt_f32(m, key, &theta))) return s;

    if (n_layer < 1 || n_layer > 4096 || n_embd < 1 || n_embd > 1 << 16 || n_ff < 1 || n_ff > 1 << 18 ||
        n_head < 1 || n_head > n_embd || n_head_kv < 1 || n_head_kv > n_head)
        return hn_fail(HN_ERR_FORMAT,
                       "%s: implausible sizes: block_count %u, embedding_length %u, feed_forward_length %u, "
                       "head_count %u, head_count_kv %u",
                       m->path, n_layer, n_embd, n_ff, n_head, n_head_kv);
    if (n_embd % n_head || n_head % n_head_kv || (n_embd / n_head) % 2)
        return hn_fail(HN_ERR_FORMAT,
                       "%s: embedding_length %u must split into head_count %u heads of even size, and head_count "
                       "into head_count_kv %u groups",
                       m->path, n_embd, n_head, n_head_kv);
    if (rot_dim && rot_dim != n_embd / n_head)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: %s.rope.dimension_count %u differs from the head size %u", m->path,
                       arch, rot_dim, n_embd / n_head);
    if (!(eps > 0 && eps < 1) || !(theta > 0))
        return hn_fail(HN_ERR_FORMAT, "%s: layer_norm_rms_epsilon %g or rope.freq_base %g out of range", m->path,
                       (double)eps, (double)theta);

    const hn_tensor *emb = hn_gguf_tensor(&m->gguf, "token_embd.weight");
    if (!emb) return hn_fail(HN_ERR_FORMAT, "%s: required tensor 'token_embd.weight' is missing", m->path);
    if (emb->ne[1] < 1 || emb->ne[1] > (1 << 24))
        return hn_fail(HN_ERR_FORMAT, "%s: token_embd.weight has %lld rows, expected 1 to %d", m->path,
                       (long long)emb->ne[1], 1 << 24);
    if (vocab && vocab != emb->ne[1])
        return hn_fail(HN_ERR_FORMAT, "%s: %s.vocab_size %u disagrees with token_embd.weight's %lld rows", m->path,
                       arch, vocab, (long long)emb->ne[1]);
    *hp = (hn_hparams){.arch = hp->arch, .n_vocab = (int)emb->ne[1], .n_embd = (int)n_embd,
                       .n_layer = (int)n_layer, .n_head = (int)n_head, .n_head_kv = (int)n_head_kv,
                       .head_dim = (int)(n_embd / n_head), .n_ff = (int)n_ff, .n_ctx_train = (int)n_ctx,
                       .rope_theta = theta, .norm_eps = eps, .rope_neox = neox, .rope_linear = 1.0f};
    if ((s = rope_scaling(m, arch, hp))) return s;
    int64_t C = n_embd, KD = (int64_t)n_head_kv * hp->head_dim, F = n_ff, V = hp->n_vocab;

    if ((s = hn_model_tensor(m, "token_embd.weight", C, V, true, &m->tok_embd)) ||
        (s = hn_model_tensor(m, "output_norm.weight", C, 0, true, &m->out_norm)) ||
        (s = hn_model_tensor(m, "output.weight", C, V, false, &m->output.w)))
        return s;
    if (!m->output.w) m->output.w = m->tok_embd; // tied head
    m->layers = hn_calloc(n_layer, sizeof *m->layers, "layers");
    if (!m->layers) return HN_ERR_NOMEM;
    for (uint32_t l = 0; l < n_layer; l++) {
        hn_layer *L = &m->layers[l];
        struct {
            const char *name;
            int64_t in, out;
            const hn_tensor **t;
        } want[] = {
            {"attn_norm", C, 0, &L->attn_norm}, {"ffn_norm", C, 0, &L->ffn_norm},
            {"attn_q", C, C, &L->q.w},          {"attn_k", C, KD, &L->k.w},
            {"attn_v", C, KD, &L->v.w},         {"attn_output", C, C, &L->o.w},
            {"ffn_gate", C, F, &L->gate.w},     {"ffn_up", C, F, &L->up.w},
            {"ffn_down", F, C, &L->down.w},
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, want[i].name);
            if ((s = hn_model_tensor(m, name, want[i].in, want[i].out, true, want[i].t))) return s;
        }
        // Optional biases (Qwen-style Llama variants have them on q, k, v).
        struct {
            const char *name;
            int64_t n;
            const hn_tensor **t;
        } bias[] = {{"attn_q", C, &L->q.b}, {"attn_k", KD, &L->k.b}, {"attn_v", KD, &L->v.b}};
        for (size_t i = 0; i < sizeof bias / sizeof bias[0]; i++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%u.%s.bias", l, bias[i].name);
            if ((s = hn_model_tensor(m, name, bias[i].n, 0, false, bias[i].t))) return s;
        }
    }
    // Norm weights and biases are read as plain floats.
    for (uint32_t l = 0; l <= n_layer; l++) {
        const hn_tensor *vecs[5] = {m->out_norm};
        if (l < n_layer) {
            const hn_layer *L = &m->layers[l];
            vecs[0] = L->attn_norm, vecs[1] = L->ffn_norm, vecs[2] = L->q.b, vecs[3] = L->k.b, vecs[4] = L->v.b;
        }
        for (int i = 0; i < 5; i++)
            if (vecs[i] && vecs[i]->type != HN_F32)
                return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; hone expects norm weights and biases in f32",
                               m->path, vecs[i]->name, hn_dtype_name(vecs[i]->type));
    }
    return HN_OK;
}

// One pre-norm block: x + attention(norm(x)), then + MLP(norm(x)). The same code runs inference (a KV cache, no
// tape) and training (B rows, a tape); methods act only through hn_linear_forward.
static hn_var *llama_block(hn_ctx *c, void *user, hn_var *x) {
    const hn_block_args *a = user;
    const hn_hparams *hp = &a->m->hp;
    const hn_layer *L = &a->m->layers[a->l];
    const hn_seq *s = a->s;
    const int hd = hp->head_dim;

    hn_var *h = hn_op_rmsnorm(c, x, L->attn_norm->data, L->attn_norm->grad, hp->norm_eps); // (N, C)
    hn_var *q = hn_linear_forward(c, &L->q, h);                                    // (N, H*hd)
    hn_var *k = hn_linear_forward(c, &L->k, h), *v = hn_linear_forward(c, &L->v, h); // (N, KVH*hd)
    q = hn_op_rope(c, q, hp->n_head, hd, s->rope, s->T, s->pos0, hp->rope_neox);
    k = hn_op_rope(c, k, hp->n_head_kv, hd, s->rope, s->T, s->pos0, hp->rope_neox);
    hn_var *att = hn_arch_attention(c, a, q, k, v, true);
    x = hn_op_add(c, x, hn_linear_forward(c, &L->o, att));

    h = hn_op_rmsnorm(c, x, L->ffn_norm->data, L->ffn_norm->grad, hp->norm_eps);
    hn_var *g = hn_op_swiglu(c, hn_linear_forward(c, &L->gate, h), hn_linear_forward(c, &L->up, h)); // (N, F)
    return hn_op_add(c, x, hn_linear_forward(c, &L->down, g));
}

static hn_var *llama_hidden(hn_ctx *c, const hn_model *m, const int32_t *ids, const hn_seq *s) {
    const hn_hparams *hp = &m->hp;
    hn_seq sv;
    hn_var *x = hn_op_embed(c, m->tok_embd, m->tok_embd->grad, ids, (int64_t)s->B * s->T); // (N, C)
    x = hn_arch_embed(c, m, s, x, &sv);
    x = hn_arch_blocks(c, m, &sv, llama_block, x);
    return hn_op_rmsnorm(c, x, m->out_norm->data, m->out_norm->grad, hp->norm_eps);
}

static hn_status llama_load(hn_model *m) { return family_load(m, "llama", false); }
static hn_status qwen2_load(hn_model *m) { return family_load(m, "qwen2", true); }

const hn_arch_impl hn_arch_llama = {.name = "llama", .load = llama_load, .hidden = llama_hidden};
const hn_arch_impl hn_arch_qwen2 = {.name = "qwen2", .load = qwen2_load, .hidden = llama_hidden};

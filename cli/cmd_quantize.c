// cli/cmd_quantize.c — `hone quantize IN -o OUT --type T`: rewrites a GGUF with its 2-D weights in another type.
//
// Each converted row goes dequantize -> f32 -> quantize through the type traits, one row buffer per thread; the
// writer asks for one tensor at a time, so memory stays at one output tensor however large the model is.
//
// K-quant targets pick a type per tensor as llama.cpp's mostly-Q*_K ftypes do (src/llama-quant.cpp), simplified
// (see k_mix): more bits for the output / tied embedding and for some layers' attn_v and ffn_down, and llama.cpp's
// fallbacks for rows that are not a whole number of 256-wide blocks.
#include "cli/cli.h"
#include "io/gguf.h"
#include "io/hf.h"
#include "model/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static void help(void) {
    printf("usage: hone quantize IN -o OUT --type T [--threads N]\n"
           "  T: f32 f16 q8_0 q4_0 q4_1 q5_0 q5_1, or the K-quants q2_k q3_k q4_k q5_k q6_k\n\n"
           "Rewrites the GGUF model IN (a path or a pulled name) as OUT: every 2-D weight whose row length is a\n"
           "multiple of the type's block becomes the target type, 1-D tensors (norms) are stored as f32, other\n"
           "tensors are copied. All metadata is carried over, with general.file_type set to the target.\n\n"
           "K-quants follow llama.cpp's mostly-K mixes (q4_k = Q4_K_M, q5_k = Q5_K_M, q6_k = Q6_K, q3_k = Q3_K_S,\n"
           "q2_k = Q2_K): the output weight (or the token embedding when it is tied) becomes q6_k (q8_0 when its\n"
           "rows are not 256-wide); for q4_k and q5_k, attn_v and ffn_down of the first and last eighth of the\n"
           "layers and of every third layer between become q6_k (attn_qkv: q5_k / q6_k); for q2_k, attn_output\n"
           "and ffn_down become q3_k, attn_v q3_k (q4_k with 4 or more query heads per key/value head). A tensor\n"
           "whose rows are not a multiple of 256 falls back as llama.cpp does: q4_k -> q5_0, q5_k -> q5_1,\n"
           "q6_k -> q8_0, q2_k/q3_k -> q4_0 (f16 if that does not fit either). A summary goes to stderr.\n");
}

// The target types and llama.cpp's LLAMA_FTYPE number for "mostly that type" (FORMATS.md 1.9).
static const struct {
    hn_dtype type;
    uint32_t ftype;
} targets[] = {{HN_F32, 0},  {HN_F16, 1},  {HN_Q4_0, 2},  {HN_Q4_1, 3},  {HN_Q8_0, 7},  {HN_Q5_0, 8},
               {HN_Q5_1, 9}, {HN_Q2_K, 10}, {HN_Q3_K, 11}, {HN_Q4_K, 15}, {HN_Q5_K, 17}, {HN_Q6_K, 18}};

// What the whole model tells the per-tensor choice: its layer count and whether the output is tied.
typedef struct {
    int n_layer;
    int n_gqa; // query heads per key/value head (1 when the metadata does not say)
    bool tied; // no output.weight: token_embd is the output too
    int fallbacks;
} mix_info;

// <arch>.attention.head_count / head_count_kv, as llama.cpp's n_gqa(); 1 when either is missing.
static int gqa_of(const hn_gguf *g) {
    hn_gguf_str arch;
    if (!hn_gguf_find(g, "general.architecture") || hn_gguf_get_str(g, "general.architecture", &arch)) return 1;
    char key[160];
    double h = 0, kv = 0;
    const hn_gguf_kv *e;
    snprintf(key, sizeof key, "%.*s.attention.head_count", (int)(arch.len < 100 ? arch.len : 100), arch.str);
    if (!(e = hn_gguf_find(g, key)) || !hn_gguf_num(e, &h)) return 1;
    snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)(arch.len < 100 ? arch.len : 100), arch.str);
    if (!(e = hn_gguf_find(g, key)) || !hn_gguf_num(e, &kv) || kv < 1 || h < kv) return 1;
    return (int)(h / kv);
}

typedef struct {
    const hn_gguf *g;
    const hn_tensor *src;
    hn_dtype dst;
} job;

static bool is_kquant(hn_dtype t) { return t == HN_Q2_K || t == HN_Q3_K || t == HN_Q4_K || t == HN_Q5_K || t == HN_Q6_K; }

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// llama.cpp's use_more_bits: the first and last eighth of the layers, and every third layer between.
static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// The type llama.cpp's mostly-K ftype gives a 2-D weight (before the row-width fallback). Simplified: the layer of
// attn_v / ffn_down is read from the name (blk.N.), and the rules for expert, Falcon and 70B models are left out.
static hn_dtype k_mix(const char *name, hn_dtype target, const mix_info *mi) {
    if (!strcmp(name, "output.weight") || (mi->tied && !strcmp(name, "token_embd.weight"))) return HN_Q6_K;
    int layer = -1;
    sscanf(name, "blk.%d.", &layer);
    bool v = ends_with(name, "attn_v.weight"), down = ends_with(name, "ffn_down.weight");
    if (target == HN_Q2_K && v) return mi->n_gqa >= 4 ? HN_Q4_K : HN_Q3_K;
    if (target == HN_Q2_K && (down || ends_with(name, "attn_output.weight"))) return HN_Q3_K;
    if ((target == HN_Q4_K || target == HN_Q5_K) && (v || down) && layer >= 0 && more_bits(layer, mi->n_layer))
        return HN_Q6_K;
    if (ends_with(name, "attn_qkv.weight")) return target == HN_Q4_K ? HN_Q5_K : target == HN_Q5_K ? HN_Q6_K : target;
    return target;
}

// llama.cpp's tensor_type_fallback: rows that are not whole 256-blocks take a 32-block type of about the same size.
static hn_dtype k_fallback(hn_dtype t, int64_t ncols, bool output) {
    size_t row;
    if (hn_row_bytes(t, ncols, &row)) return t;
    hn_dtype f = output ? HN_Q8_0 // llama.cpp: the output weight whose rows do not fit Q6_K is Q8_0
                 : t == HN_Q4_K ? HN_Q5_0 : t == HN_Q5_K ? HN_Q5_1 : t == HN_Q6_K ? HN_Q8_0 : HN_Q4_0;
    return hn_row_bytes(f, ncols, &row) ? f : HN_F16;
}

// What type tensor t gets: the target (or its K mix) for 2-D weights it can hold, f32 for 1-D float tensors, else
// unchanged.
static hn_dtype choose(const hn_tensor *t, hn_dtype target, mix_info *mi) {
    const hn_type_traits *tt = hn_type_traits_of(t->type);
    size_t row;
    if (!tt || !tt->to_f32) return t->type; // not a float type (i32): copied as it is
    if (t->ndim == 1) return HN_F32;
    if (t->ndim == 2 && is_kquant(target)) {
        hn_dtype want = k_mix(t->name, target, mi);
        bool output = !strcmp(t->name, "output.weight") || (mi->tied && !strcmp(t->name, "token_embd.weight"));
        hn_dtype got = k_fallback(want, t->ne[0], output);
        if (got != want) mi->fallbacks++;
        return got;
    }
    if (t->ndim == 2 && hn_row_bytes(target, t->ne[0], &row)) return target;
    return t->type;
}

static hn_status fill(void *user, void *dst, size_t nbytes) {
    const job *j = user;
    const hn_tensor *t = j->src;
    if (t->type == j->dst) {
        memcpy(dst, t->data, nbytes);
        return HN_OK;
    }
    const hn_type_traits *from = hn_type_traits_of(t->type), *to = hn_type_traits_of(j->dst);
    if (!from || !from->to_f32 || !to || !to->from_f32)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: tensor '%s': cannot convert %s to %s", j->g->path, t->name,
                       hn_dtype_name(t->type), hn_dtype_name(j->dst));
    int64_t n = t->ne[0], rows = hn_nelem(t) / n;
    size_t in_row, out_row;
    hn_row_bytes(t->type, n, &in_row);
    hn_row_bytes(j->dst, n, &out_row);
    const uint8_t *src = t->data;
    uint8_t *out = dst;
    int failed = 0;
#pragma omp parallel
    {
        float *row = malloc((size_t)n * sizeof *row); // (n,) one row in f32
        if (!row) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (!row) continue;
            from->to_f32(src + (size_t)r * in_row, row, n);
            to->from_f32(row, out + (size_t)r * out_row, n);
        }
        free(row);
    }
    if (failed) return hn_fail(HN_ERR_NOMEM, "%s: tensor '%s': out of memory for a row buffer", j->g->path, t->name);
    return HN_OK;
}

static hn_status quantize(const hn_gguf *g, const char *out, hn_dtype target, uint32_t ftype, int counts[2],
                          double *bytes_out, mix_info *mi) {
    hn_gguf_writer *w = hn_gguf_writer_create();
    job *jobs = hn_calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *jobs, "quantize jobs");
    hn_status s = w && jobs ? HN_OK : HN_ERR_NOMEM;
    for (uint64_t i = 0; i < g->n_kv && !s; i++) s = hn_gguf_writer_copy_kv(w, &g->kv[i]);
    if (!s) s = hn_gguf_writer_set_u32(w, "general.file_type", ftype);
    if (!s && hn_type_traits_of(target)->quantized && !hn_gguf_find(g, "general.quantization_version"))
        s = hn_gguf_writer_set_u32(w, "general.quantization_version", 2);
    *bytes_out = 0;
    mi->tied = !hn_gguf_tensor(g, "output.weight");
    mi->n_gqa = gqa_of(g);
    for (uint64_t i = 0; i < g->n_tensors; i++) mi->n_layer += ends_with(g->tensors[i].name, "ffn_down.weight");
    for (uint64_t i = 0; i < g->n_tensors && !s; i++) {
        const hn_tensor *t = &g->tensors[i];
        jobs[i] = (job){g, t, choose(t, target, mi)};
        counts[jobs[i].dst != t->type]++;
        size_t nb;
        hn_row_bytes(jobs[i].dst, hn_nelem(t), &nb);
        *bytes_out += (double)nb;
        s = hn_gguf_writer_add_tensor_fn(w, t->name, jobs[i].dst, t->ndim, t->ne, fill, &jobs[i]);
    }
    if (!s) s = hn_gguf_writer_write(w, out);
    hn_gguf_writer_destroy(w);
    free(jobs);
    return s;
}

int cmd_quantize(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *in = NULL, *out = NULL, *type = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (cli_flag_threads(argc, argv, &i, &err) || cli_flag_str(argc, argv, &i, "-o", "--out", &out, &err) ||
            cli_flag_str(argc, argv, &i, "-t", "--type", &type, &err) ||
            cli_flag_str(argc, argv, &i, "-m", "--model", &in, &err)) {
            if (err) return 2;
        } else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("quantize: unknown option '%s' (hone quantize --help)", argv[i]);
        else if (in)
            return cli_usage_error("quantize: one input model at a time, got '%s' and '%s'", in, argv[i]);
        else
            in = argv[i];
    }
    if (!in || !out || !type) return cli_usage_error("quantize: expected IN, -o OUT and --type T (hone quantize --help)");
    hn_dtype target;
    int ti = -1;
    if (hn_dtype_parse(type, &target))
        for (int k = 0; k < (int)(sizeof targets / sizeof targets[0]); k++)
            if (targets[k].type == target) ti = k;
    if (ti < 0 && !strcasecmp(type, "nf4"))
        return cli_usage_error("quantize: nf4 is not a file type (GGUF has none): load a model with --quantize nf4 "
                               "(train, generate, chat, score) to quantize its linear weights in memory");
    if (ti < 0)
        return cli_usage_error("quantize: --type expects f32, f16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, "
                               "q5_k or q6_k, got '%s'", type);

    char *path;
    if (hn_model_resolve(in, &path)) return cli_fail();
    hn_gguf g;
    hn_status s = hn_hf_is_dir(path) ? hn_hf_open_ex(&g, path, true) : hn_gguf_open(&g, path); // HF: hone convert
    free(path);
    if (s) return cli_fail();
    double t0 = hn_now(), bytes_in = 0, bytes_out;
    for (uint64_t i = 0; i < g.n_tensors; i++) bytes_in += (double)g.tensors[i].nbytes;
    int counts[2] = {0, 0};
    mix_info mi = {0};
    s = quantize(&g, out, target, targets[ti].ftype, counts, &bytes_out, &mi);
    if (s) {
        hn_gguf_close(&g);
        return cli_fail();
    }
    struct stat st;
    double file_out = stat(out, &st) == 0 ? (double)st.st_size : 0;
    fprintf(stderr, "quantize: %s -> %s (%s): file %.2f MB -> %.2f MB, tensor data %.2f MB -> %.2f MB; "
                    "%d tensors converted, %d copied; %.2f s\n",
            g.path, out, hn_dtype_name(target), g.map.size / 1e6, file_out / 1e6, bytes_in / 1e6, bytes_out / 1e6,
            counts[1], counts[0], hn_now() - t0);
    if (mi.fallbacks)
        fprintf(stderr, "quantize: %d tensors have rows that are not a multiple of 256 and took llama.cpp's fallback "
                        "type (hone info %s lists them)\n", mi.fallbacks, out);
    hn_gguf_close(&g);
    return 0;
}

// cli/cmd_merge.c — `hone merge -m MODEL --adapter PATH -o OUT.gguf [--type f16|q8_0|f32]`: a model with its
// adapters folded into the weights. Every adapted weight becomes W + scale · B · A, computed in fp32 from the
// dequantized W and stored in --type; every other tensor and all metadata (chat template, special and end-of-turn
// tokens) are copied. The writer asks for one tensor at a time, so memory stays at one weight in fp32.
#include "cli/adapters.h"
#include "cli/cli.h"
#include "io/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void) {
    printf("usage: hone merge -m MODEL --adapter [NAME=]PATH[:SCALE]... -o OUT.gguf [--type f16|q8_0|f32]\n\n"
           "Writes MODEL with its adapters merged: every adapted weight becomes W + scale * B * A, stored as --type\n"
           "(default f16); every other tensor and all metadata are copied. A quantized base is dequantized first.\n\n"
           "  -m, --model MODEL   GGUF file or pulled model name\n"
           "  -o, --out OUT.gguf  the merged model (written atomically)\n"
           "  -t, --type T        f16 (default), q8_0 or f32: the type of the merged weights\n"
           "      --threads N     threads (default: physical cores)\n");
    fputs(cli_adapters_usage, stdout);
}

typedef struct {
    const hn_tensor *src;
    hn_dtype dst;
    int layer;
    hn_proj proj;
    const cli_adapters *ca;
} job;

// (layer, proj) of a block's linear layer tensor "blk.N.<proj>.weight" (or ".bias"); false for any other tensor.
static bool block_tensor(const char *name, const char *kind, int *layer, hn_proj *proj) {
    int n = 0;
    char part[32], fmt[40];
    snprintf(fmt, sizeof fmt, "blk.%%d.%%31[a-z_].%s%%n", kind);
    if (sscanf(name, fmt, layer, part, &n) != 2 || name[n] || !n) return false;
    return hn_proj_parse(part, proj);
}

// An adapted layer's F32 bias, changed by the methods that change it when merged (IA3 scales it with the output).
static hn_status fill_bias(void *user, void *dst, size_t nbytes) {
    const job *j = user;
    memcpy(dst, j->src->data, nbytes);
    hn_status s = HN_OK;
    for (int k = 0; k < j->ca->n && !s; k++)
        if (j->ca->items[k].on) s = hn_method_merge_bias(j->ca->items[k].me, j->layer, j->proj, dst);
    return s;
}



// A layer something is attached to: every attachment in this command is one of its adapters (those --use leaves
// out are off).
static bool adapted(const hn_model *m, int layer, hn_proj proj) {
    const hn_linear *l = hn_method_linear((hn_model *)m, layer, proj);
    for (const hn_linear_ext *e = l ? l->ext : NULL; e; e = e->next)
        if (!e->off) return true;
    return false;
}

static hn_status fill_copy(void *user, void *dst, size_t nbytes) {
    memcpy(dst, ((const job *)user)->src->data, nbytes);
    return HN_OK;
}

static hn_status fill_merged(void *user, void *dst, size_t nbytes) {
    const job *j = user;
    const hn_tensor *t = j->src;
    const hn_type_traits *from = hn_type_traits_of(t->type), *to = hn_type_traits_of(j->dst);
    int64_t in = t->ne[0], out = t->ne[1];
    size_t in_row, out_row;
    hn_row_bytes(t->type, in, &in_row);
    hn_row_bytes(j->dst, in, &out_row);
    if (out_row * (size_t)out != nbytes)
        return hn_fail(HN_ERR_ARG, "merge: tensor '%s': %zu bytes expected, the writer has %zu", t->name,
                       out_row * (size_t)out, nbytes);
    float *w = hn_alloc((size_t)in * (size_t)out * sizeof *w, "a merged weight"); // (out, in)
    if (!w) return HN_ERR_NOMEM;
    const uint8_t *src = t->data;
#pragma omp parallel for num_threads(hn_threads_get())
    for (int64_t r = 0; r < out; r++) from->to_f32(src + (size_t)r * in_row, w + r * in, in);
    hn_status s = HN_OK;
    for (int k = 0; k < j->ca->n && !s; k++)
        if (j->ca->items[k].on) s = hn_method_merge(j->ca->items[k].me, j->layer, j->proj, w);
    uint8_t *o = dst;
    if (!s) {
#pragma omp parallel for num_threads(hn_threads_get())
        for (int64_t r = 0; r < out; r++) to->from_f32(w + r * in, o + (size_t)r * out_row, in);
    }
    free(w);
    return s;
}

static hn_status merge(const hn_model *m, const cli_adapters *ca, hn_dtype type, const char *out, int counts[2],
                       bool *from_quantized) {
    const hn_gguf *g = &m->gguf;
    hn_gguf_writer *w = hn_gguf_writer_create();
    job *jobs = hn_calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *jobs, "merge jobs");
    hn_status s = w && jobs ? HN_OK : hn_fail(HN_ERR_NOMEM, "merge: out of memory");
    for (int k = 0; k < ca->n && !s; k++) // one that cannot be merged is refused before anything is written
        if (ca->items[k].on && !ca->items[k].me->ops->merge)
            s = hn_fail(HN_ERR_UNSUPPORTED, "merge: adapter %s: %s cannot be merged into the base weights (it adds "
                        "positions or layers of its own); use it with --adapter instead", ca->items[k].name,
                        ca->items[k].me->ops->name);
    for (uint64_t i = 0; i < g->n_kv && !s; i++) s = hn_gguf_writer_copy_kv(w, &g->kv[i]);
    for (uint64_t i = 0; i < g->n_tensors && !s; i++) {
        const hn_tensor *t = &g->tensors[i];
        job *j = &jobs[i];
        *j = (job){.src = t, .dst = t->type, .ca = ca};
        bool merged = t->ndim == 2 && block_tensor(t->name, "weight", &j->layer, &j->proj) && adapted(m, j->layer, j->proj);
        if (t->ndim == 1 && t->type == HN_F32 && block_tensor(t->name, "bias", &j->layer, &j->proj) &&
            adapted(m, j->layer, j->proj)) {
            s = hn_gguf_writer_add_tensor_fn(w, t->name, t->type, t->ndim, t->ne, fill_bias, j);
            counts[0]++;
            continue;
        }
        if (merged) {
            size_t rb;
            const hn_type_traits *tt = hn_type_traits_of(t->type);
            if (!tt || !tt->to_f32)
                s = hn_fail(HN_ERR_UNSUPPORTED, "merge: %s: tensor '%s' is %s, which hone cannot dequantize", g->path,
                            t->name, hn_dtype_name(t->type));
            else if (!hn_row_bytes(type, t->ne[0], &rb))
                s = hn_fail(HN_ERR_ARG, "merge: tensor '%s' has rows of %lld values, which %s cannot hold (use "
                            "--type f16 or f32)", t->name, (long long)t->ne[0], hn_dtype_name(type));
            if (s) break;
            *from_quantized |= tt->quantized;
            j->dst = type;
        }
        counts[merged]++;
        s = hn_gguf_writer_add_tensor_fn(w, t->name, j->dst, t->ndim, t->ne, merged ? fill_merged : fill_copy, j);
    }
    if (!s && *from_quantized)
        fprintf(stderr, "merge: the base's adapted weights are quantized: merging starts from their dequantized "
                        "values\n");
    if (!s) s = hn_gguf_writer_write(w, out);
    hn_gguf_writer_destroy(w);
    free(jobs);
    return s;
}

int cmd_merge(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *model = NULL, *out = NULL, *type_name = "f16";
    cli_adapters ca = {0};
    int rc = -1;
    for (int i = 1; i < argc && rc < 0; i++) {
        bool err = false;
        if (cli_flag_str(argc, argv, &i, "-m", "--model", &model, &err) ||
            cli_flag_str(argc, argv, &i, "-o", "--out", &out, &err) ||
            cli_flag_str(argc, argv, &i, "-t", "--type", &type_name, &err) || cli_flag_threads(argc, argv, &i, &err) ||
            cli_adapters_flag(&ca, argc, argv, &i, &err)) {
            if (err) rc = 2;
        } else {
            rc = cli_usage_error("merge: unknown argument '%s' (hone merge --help)", argv[i]);
        }
    }
    hn_dtype type = HN_F16;
    if (rc < 0 && (!model || !out || !ca.n))
        rc = cli_usage_error("merge: expected -m MODEL, --adapter PATH and -o OUT.gguf (hone merge --help)");
    if (rc < 0 && (!hn_dtype_parse(type_name, &type) || (type != HN_F16 && type != HN_F32 && type != HN_Q8_0)))
        rc = cli_usage_error("merge: --type expects f16, q8_0 or f32, got '%s'", type_name);
    if (rc >= 0) {
        cli_adapters_deinit(&ca);
        return rc;
    }
    hn_model *m = NULL;
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    int counts[2] = {0, 0};
    bool from_q = false;
    double t0 = hn_now();
    if (hn_model_load(&m, model, &mp) || cli_adapters_attach(&ca, m) ||
        merge(m, &ca, type, out, counts, &from_q)) {
        rc = cli_fail();
    } else {
        struct stat st;
        fprintf(stderr, "merge: %s + %d adapter(s) -> %s (%.2f MB): %d weights merged as %s, %d tensors copied; "
                        "%.2f s\n", m->path, ca.n, out, stat(out, &st) ? 0.0 : st.st_size / 1e6, counts[1],
                hn_dtype_name(type), counts[0], hn_now() - t0);
        rc = 0;
    }
    cli_adapters_deinit(&ca);
    hn_model_destroy(m);
    return rc;
}

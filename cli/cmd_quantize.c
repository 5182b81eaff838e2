// cli/cmd_quantize.c — `hone quantize IN -o OUT --type T`: rewrites a GGUF with its 2-D weights in another type.
//
// Each converted row goes dequantize -> f32 -> quantize through the type traits, one row buffer per thread; the
// writer asks for one tensor at a time, so memory stays at one output tensor however large the model is.
#include "cli/cli.h"
#include "io/gguf.h"
#include "model/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void) {
    printf("usage: hone quantize IN -o OUT --type f32|f16|q8_0|q4_0|q4_1 [--threads N]\n\n"
           "Rewrites the GGUF model IN (a path or a pulled name) as OUT: every 2-D weight whose row length is a\n"
           "multiple of 32 becomes the target type, 1-D tensors (norms) are stored as f32, other tensors are copied.\n"
           "All metadata is carried over, with general.file_type set to the target. A summary goes to stderr.\n");
}

// The target types and llama.cpp's LLAMA_FTYPE number for "mostly that type" (FORMATS.md 1.9).
static const struct {
    hn_dtype type;
    uint32_t ftype;
} targets[] = {{HN_F32, 0}, {HN_F16, 1}, {HN_Q4_0, 2}, {HN_Q4_1, 3}, {HN_Q8_0, 7}};

typedef struct {
    const hn_gguf *g;
    const hn_tensor *src;
    hn_dtype dst;
} job;

// What type tensor t gets: the target for 2-D weights it can hold, f32 for 1-D float tensors, else unchanged.
static hn_dtype choose(const hn_tensor *t, hn_dtype target) {
    const hn_type_traits *tt = hn_type_traits_of(t->type);
    size_t row;
    if (!tt || !tt->to_f32) return t->type; // not a float type (i32): copied as it is
    if (t->ndim == 1) return HN_F32;
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
                          double *bytes_out) {
    hn_gguf_writer *w = hn_gguf_writer_create();
    job *jobs = hn_calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *jobs, "quantize jobs");
    hn_status s = w && jobs ? HN_OK : HN_ERR_NOMEM;
    for (uint64_t i = 0; i < g->n_kv && !s; i++) s = hn_gguf_writer_copy_kv(w, &g->kv[i]);
    if (!s) s = hn_gguf_writer_set_u32(w, "general.file_type", ftype);
    if (!s && hn_type_traits_of(target)->quantized && !hn_gguf_find(g, "general.quantization_version"))
        s = hn_gguf_writer_set_u32(w, "general.quantization_version", 2);
    *bytes_out = 0;
    for (uint64_t i = 0; i < g->n_tensors && !s; i++) {
        const hn_tensor *t = &g->tensors[i];
        jobs[i] = (job){g, t, choose(t, target)};
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
    if (ti < 0) return cli_usage_error("quantize: --type expects f32, f16, q8_0, q4_0 or q4_1, got '%s'", type);

    char *path;
    if (hn_model_resolve(in, &path)) return cli_fail();
    hn_gguf g;
    hn_status s = hn_gguf_open(&g, path);
    free(path);
    if (s) return cli_fail();
    double t0 = hn_now(), bytes_in = 0, bytes_out;
    for (uint64_t i = 0; i < g.n_tensors; i++) bytes_in += (double)g.tensors[i].nbytes;
    int counts[2] = {0, 0};
    s = quantize(&g, out, target, targets[ti].ftype, counts, &bytes_out);
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
    hn_gguf_close(&g);
    return 0;
}

// cli/cmd_info.c — `hone info MODEL [--json]`: architecture, hyper-parameters, file type, parameter count and size,
// the metadata (arrays summarised), and the tensor table; MODEL a GGUF file, a Hugging Face directory or a name.
#include "cli/cli.h"
#include "io/gguf.h"
#include "io/hf.h"
#include "model/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: hone info MODEL [--json] [--threads N]\n\n"
           "Shows a GGUF model's architecture, hyper-parameters, file type, parameter count and size, its metadata\n"
           "(arrays summarised by type, length and first items) and its tensor table (name, type, shape, offset).\n"
           "MODEL is a GGUF path or a name pulled with `hone pull`.\n\n"
           "  --json       one JSON object on stdout instead of the text report\n"
           "  --threads N  accepted for uniformity (info is single-threaded)\n");
}

// llama.cpp's LLAMA_FTYPE numbers (FORMATS.md 1.9).
static const char *ftype_name(uint32_t ft) {
    static const char *const names[] = {
        [0] = "all f32",     [1] = "mostly f16",   [2] = "mostly q4_0",  [3] = "mostly q4_1",  [7] = "mostly q8_0",
        [8] = "mostly q5_0", [9] = "mostly q5_1",  [10] = "mostly q2_k", [11] = "mostly q3_k_s", [12] = "mostly q3_k_m",
        [13] = "mostly q3_k_l", [14] = "mostly q4_k_s", [15] = "mostly q4_k_m", [16] = "mostly q5_k_s",
        [17] = "mostly q5_k_m", [18] = "mostly q6_k", [32] = "mostly bf16",
    };
    return ft < sizeof names / sizeof names[0] && names[ft] ? names[ft] : "unknown";
}

// Prints s escaped for a terminal (text) or for a JSON string (json), at most `max` bytes of it (0: all).
static void put_str_q(FILE *f, const char *s, uint64_t len, uint64_t max, bool json, bool quote) {
    uint64_t n = max && len > max ? max : len;
    if (quote) fputc('"', f);
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f) fprintf(f, json ? "\\u%04x" : "\\x%02x", c);
        else if (c < 0x80) fputc(c, f);
        else {
            // Copy a whole UTF-8 sequence if it is valid; otherwise one replacement character, so JSON stays valid.
            int k = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            bool ok = k && i + (uint64_t)k <= len;
            for (int j = 1; ok && j < k; j++) ok = ((unsigned char)s[i + j] & 0xc0) == 0x80;
            if (ok) {
                fwrite(s + i, 1, (size_t)k, f);
                i += (uint64_t)k - 1;
            } else if (json)
                fputs("\\ufffd", f);
            else
                fprintf(f, "\\x%02x", c);
        }
    }
    if (quote) fputc('"', f);
    if (n < len && !json) fprintf(f, "...(%llu bytes)", (unsigned long long)len);
}

static void put_str(FILE *f, const char *s, uint64_t len, uint64_t max, bool json) {
    put_str_q(f, s, len, max, json, true);
}

static void put_num(FILE *f, hn_gguf_type t, const uint8_t *p, bool json) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f32; uint64_t u64;
            int64_t i64; double f64; } v;
    memcpy(&v, p, hn_gguf_type_size(t));
    switch (t) {
    case HN_GGUF_U8: fprintf(f, "%u", v.u8); break;
    case HN_GGUF_I8: fprintf(f, "%d", v.i8); break;
    case HN_GGUF_U16: fprintf(f, "%u", v.u16); break;
    case HN_GGUF_I16: fprintf(f, "%d", v.i16); break;
    case HN_GGUF_U32: fprintf(f, "%u", v.u32); break;
    case HN_GGUF_I32: fprintf(f, "%d", v.i32); break;
    case HN_GGUF_U64: fprintf(f, "%llu", (unsigned long long)v.u64); break;
    case HN_GGUF_I64: fprintf(f, "%lld", (long long)v.i64); break;
    case HN_GGUF_F32: v.f32 == v.f32 ? fprintf(f, json ? "%.9g" : "%.7g", v.f32) : fprintf(f, "null"); break;
    case HN_GGUF_F64: v.f64 == v.f64 ? fprintf(f, json ? "%.17g" : "%.15g", v.f64) : fprintf(f, "null"); break;
    case HN_GGUF_BOOL: fputs(v.u8 ? "true" : "false", f); break;
    default: break;
    }
}

// One value: scalars in full (text strings cut at 80 bytes), arrays as their first items.
static void put_value(FILE *f, const hn_gguf_kv *kv, bool json) {
    if (kv->type == HN_GGUF_STRING) {
        uint64_t len;
        memcpy(&len, kv->val, 8);
        put_str(f, (const char *)kv->val + 8, len, json ? 0 : 80, json);
        return;
    }
    if (kv->type != HN_GGUF_ARRAY) {
        put_num(f, kv->type, kv->val, json);
        return;
    }
    uint64_t show = kv->arr_n < 6 ? kv->arr_n : 6;
    if (json) fprintf(f, "{\"type\": \"array\", \"elem\": \"%s\", \"n\": %llu, \"head\": [", hn_gguf_type_name(kv->arr_type),
                      (unsigned long long)kv->arr_n);
    else fprintf(f, "[%s x %llu] ", hn_gguf_type_name(kv->arr_type), (unsigned long long)kv->arr_n);
    size_t es = hn_gguf_type_size(kv->arr_type);
    for (uint64_t i = 0; i < show; i++) {
        if (i) fputs(", ", f);
        if (kv->arr_type == HN_GGUF_STRING) {
            hn_gguf_str s = hn_gguf_arr_str(kv, i);
            put_str(f, s.str, s.len, json ? 0 : 40, json);
        } else
            put_num(f, kv->arr_type, kv->val + i * es, json);
    }
    if (json) fputs("]}", f);
    else if (show < kv->arr_n) fputs(", ...", f);
}

typedef struct {
    const char *label, *key; // key without the "<arch>." prefix
    bool optional;           // a row shown only when the file has the key (the norm of another architecture)
} hparam;

static const hparam hparams[] = {
    {"blocks", "block_count"},
    {"embedding length", "embedding_length"},
    {"heads", "attention.head_count"},
    {"kv heads", "attention.head_count_kv", true},
    {"ff length", "feed_forward_length"},
    {"context length", "context_length"},
    {"rope base", "rope.freq_base", true},
    {"rope dims", "rope.dimension_count", true},
    {"rms norm eps", "attention.layer_norm_rms_epsilon", true},
    {"layer norm eps", "attention.layer_norm_epsilon", true},
    {"vocab size", "vocab_size"},
};

static void print_shape(FILE *f, const hn_tensor *t, bool json) {
    fputc('[', f);
    for (int d = 0; d < t->ndim; d++) fprintf(f, d ? ", %lld" : "%lld", (long long)t->ne[d]);
    fputc(']', f);
}

static void report(FILE *f, const hn_gguf *g, bool json) {
    hn_gguf_str arch = {"", 0};
    hn_gguf_get_str(g, "general.architecture", &arch);
    uint64_t params = 0, tbytes = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        params += (uint64_t)hn_nelem(&g->tensors[i]);
        tbytes += g->tensors[i].nbytes;
    }
    uint32_t ft = 0;
    bool has_ft = hn_gguf_get_u32(g, "general.file_type", &ft) == HN_OK;
    const hn_gguf_kv *tokens = hn_gguf_find(g, "tokenizer.ggml.tokens");

    if (json) {
        fprintf(f, "{\"path\": ");
        put_str(f, g->path, strlen(g->path), 0, true);
        fprintf(f, ", \"version\": %u, \"architecture\": ", g->version);
        put_str(f, arch.str, arch.len, 0, true);
        fprintf(f, ", \"file_type\": ");
        has_ft ? fprintf(f, "%u", ft) : fprintf(f, "null");
        fprintf(f, ", \"file_type_name\": \"%s\", \"parameters\": %llu, \"tensor_bytes\": %llu, \"file_bytes\": %zu, "
                   "\"alignment\": %llu, \"data_offset\": %llu,\n \"hparams\": {",
                has_ft ? ftype_name(ft) : "unknown", (unsigned long long)params, (unsigned long long)tbytes, g->map.size,
                (unsigned long long)g->alignment, (unsigned long long)g->data_offset);
    } else {
        fprintf(f, "file           %s\n", g->path);
        if (!g->tensor_offset) // a view of a Hugging Face directory: its metadata as hone maps it into GGUF keys
            fprintf(f, "format         Hugging Face directory, read as %llu GGUF metadata keys and %llu tensors\n",
                    (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);
        else
            fprintf(f, "format         GGUF v%u, %llu metadata keys, %llu tensors, alignment %llu, data at byte %llu\n",
                    g->version, (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors,
                    (unsigned long long)g->alignment, (unsigned long long)g->data_offset);
        fprintf(f, "architecture   %.*s\n", (int)arch.len, arch.str);
        if (has_ft) fprintf(f, "file type      %u (%s)\n", ft, ftype_name(ft));
        else fprintf(f, "file type      (general.file_type absent)\n");
        fprintf(f, "parameters     %llu (%.2f M)\n", (unsigned long long)params, params / 1e6);
        if (g->tensor_offset)
            fprintf(f, "size           %.2f MB file, %.2f MB tensor data, %.2f bits per parameter\n",
                    g->map.size / 1e6, tbytes / 1e6, params ? 8.0 * tbytes / params : 0.0);
        else
            fprintf(f, "size           %.2f MB tensor data, %.2f bits per parameter\n", tbytes / 1e6,
                    params ? 8.0 * tbytes / params : 0.0);
        fprintf(f, "\nhyper-parameters\n");
    }
    bool first = true;
    for (size_t i = 0; i < sizeof hparams / sizeof hparams[0]; i++) {
        char key[256];
        snprintf(key, sizeof key, "%.*s.%s", (int)(arch.len < 100 ? arch.len : 100), arch.str, hparams[i].key);
        const hn_gguf_kv *kv = hn_gguf_find(g, key);
        bool from_tokens = !kv && !strcmp(hparams[i].key, "vocab_size") && tokens && tokens->type == HN_GGUF_ARRAY;
        if (!kv && hparams[i].optional) continue;
        if (json) {
            if (!kv && !from_tokens) continue;
            fprintf(f, "%s\"%s\": ", first ? "" : ", ", hparams[i].key);
            first = false;
        } else
            fprintf(f, "  %-17s ", hparams[i].label);
        if (kv && kv->type != HN_GGUF_ARRAY) put_value(f, kv, json);
        else if (from_tokens) fprintf(f, json ? "%llu" : "%llu (tokenizer.ggml.tokens)", (unsigned long long)tokens->arr_n);
        else fputs("-", f);
        if (!json) fputc('\n', f);
    }
    fputs(json ? "},\n \"metadata\": {" : "\nmetadata\n", f);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const hn_gguf_kv *kv = &g->kv[i];
        if (json) {
            fputs(i ? ",\n  " : "\n  ", f);
            put_str(f, kv->key.str, kv->key.len, 0, true);
            fputs(": ", f);
        } else {
            fputs("  ", f);
            put_str_q(f, kv->key.str, kv->key.len, 60, false, false);
            int pad = 44 - (int)(kv->key.len < 60 ? kv->key.len : 60);
            fprintf(f, "%*s%-7s ", pad > 0 ? pad : 1, "", hn_gguf_type_name(kv->type));
        }
        put_value(f, kv, json);
        if (!json) fputc('\n', f);
    }
    fputs(json ? "},\n \"tensors\": [" : "\ntensors\n", f);
    if (!json) fprintf(f, "  %-5s %-34s %-6s %-22s %12s %12s\n", "#", "name", "type", "shape", "offset", "bytes");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const hn_tensor *t = &g->tensors[i];
        if (json) {
            fprintf(f, "%s{\"name\": ", i ? ",\n  " : "\n  ");
            put_str(f, t->name, strlen(t->name), 0, true);
            fprintf(f, ", \"type\": \"%s\", \"shape\": ", hn_dtype_name(t->type));
            print_shape(f, t, true);
            // A view (a Hugging Face directory) has no file offsets: null.
            if (g->tensor_offset) fprintf(f, ", \"offset\": %llu", (unsigned long long)g->tensor_offset[i]);
            else fputs(", \"offset\": null", f);
            fprintf(f, ", \"bytes\": %zu}", t->nbytes);
        } else {
            char shape[64];
            int o = 0;
            for (int d = 0; d < t->ndim; d++)
                o += snprintf(shape + o, sizeof shape - (size_t)o, d ? " x %lld" : "%lld", (long long)t->ne[d]);
            char off[24] = "-";
            if (g->tensor_offset) snprintf(off, sizeof off, "%llu", (unsigned long long)g->tensor_offset[i]);
            fprintf(f, "  %-5llu %-34s %-6s %-22s %12s %12zu\n", (unsigned long long)i, t->name,
                    hn_dtype_name(t->type), shape, off, t->nbytes);
        }
    }
    if (json) fputs("]}\n", f);
}

int cmd_info(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *model = NULL;
    bool json = false, err = false;
    for (int i = 1; i < argc; i++) {
        if (cli_flag_threads(argc, argv, &i, &err) || cli_flag_str(argc, argv, &i, "-m", "--model", &model, &err)) {
            if (err) return 2;
        } else if (cli_flag_bool(argv, i, NULL, "--json"))
            json = true;
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("info: unknown option '%s' (hone info --help)", argv[i]);
        else if (model)
            return cli_usage_error("info: one model at a time, got '%s' and '%s'", model, argv[i]);
        else
            model = argv[i];
    }
    if (!model) return cli_usage_error("info: expected a MODEL (hone info --help)");
    char *path;
    if (hn_model_resolve(model, &path)) return cli_fail();
    hn_gguf g;
    // A Hugging Face directory is shown as the GGUF view hone loads it as (no file offsets).
    hn_status s = hn_hf_is_dir(path) ? hn_hf_open_ex(&g, path, true) : hn_gguf_open(&g, path);
    free(path);
    if (s) return cli_fail();
    report(stdout, &g, json);
    hn_gguf_close(&g);
    return fflush(stdout) == 0 ? 0 : 1;
}

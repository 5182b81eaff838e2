// tests/test_torch_bin.c — io/torch_bin.c on real torch.save files (tests/data/hf_torch, written by
// tools/reference/hf_roundtrip_ref.py): every float tensor of mixed.bin (f32, f16, bf16, strided views, storage
// offsets, shared storages, a scalar, 4-D, an nn.Parameter) equals PyTorch's values; the tiny Llama saved as
// pytorch_model.bin (f16) loads as a Hugging Face directory and gives transformers' logits within 1e-4; broken and
// hostile archives (truncated, os.system / eval / INST in the pickle, a storage of the wrong size, a missing or
// compressed entry, the legacy format) are refused with one line naming the file and what is wrong.
#define _GNU_SOURCE // memmem
#include "io/torch_bin.h"
#include "model/model.h"
#include "test.h"
#include "tiny_golden.h"

#include <math.h>
#include <unistd.h>

#define DIR "tests/data/hf_torch"

static void test_mixed(void) {
    tg_file gold;
    CHECK(tg_load(&gold, DIR "/mixed.golden"), "golden");
    hn_torch_bin tb;
    hn_status s = hn_torch_bin_open(&tb, DIR "/mixed.bin");
    CHECK(!s, "open: %s", hn_errmsg());
    if (s) return tg_free(&gold);
    CHECK(tb.n_tensors == (size_t)gold.n, "%zu tensors, golden has %d", tb.n_tensors, gold.n);
    CHECK(!hn_torch_bin_tensor(&tb, "g.position_ids"), "int64 buffer not exposed");
    for (int k = 0; k < gold.n; k++) {
        const tg_array *a = &gold.a[k];
        const hn_tensor *t = hn_torch_bin_tensor(&tb, a->name);
        CHECK(t, "tensor '%s' present", a->name);
        if (!t) continue;
        bool shape = t->ndim == (a->ndim ? a->ndim : 1) && hn_nelem(t) == a->n;
        for (int d = 0; d < a->ndim; d++) shape &= t->ne[d] == a->dims[a->ndim - 1 - d];
        CHECK(shape, "'%s' shape", a->name);
        if (!shape) continue;
        float *f = malloc((size_t)a->n * sizeof *f);
        hn_type_traits_of(t->type)->to_f32(t->data, f, a->n);
        CHECK(!memcmp(f, a->f, (size_t)a->n * sizeof *f), "'%s' values", a->name);
        free(f);
    }
    const hn_tensor *h = hn_torch_bin_tensor(&tb, "b.half"), *b = hn_torch_bin_tensor(&tb, "c.bf16"),
                    *tr = hn_torch_bin_tensor(&tb, "d.transposed"), *a = hn_torch_bin_tensor(&tb, "a.weight");
    CHECK(h && h->type == HN_F16 && b && b->type == HN_BF16 && a && a->type == HN_F32 && !a->owned, "dtypes, mapped");
    CHECK(tr && tr->owned && tr->ne[0] == 4 && tr->ne[1] == 6, "the transposed view is gathered into a copy");
    hn_torch_bin_close(&tb);
    tg_free(&gold);
}

static void test_tiny_llama(void) {
    tg_file gold;
    CHECK(tg_load(&gold, DIR "/tiny_llama_f16.golden"), "golden");
    const tg_array *ids = tg_get(&gold, "input_ids"), *ref = tg_get(&gold, "logits");
    hn_model_params p = hn_model_default_params();
    p.mm_mode = HN_MM_EXACT;
    p.allow_no_tokenizer = true;
    hn_model *m = NULL;
    CHECK(!hn_model_load(&m, DIR "/tiny_llama_f16", &p), "load: %s", hn_errmsg());
    if (m && ids && ref) {
        const hn_tensor *up = hn_gguf_tensor(&m->gguf, "blk.0.ffn_up.weight");
        CHECK(up && up->type == HN_F16, "f16 weights stay f16");
        int B = (int)ids->dims[0], T = (int)ids->dims[1], V = m->hp.n_vocab;
        double worst = 0;
        for (int bi = 0; bi < B; bi++) {
            hn_kv_cache *kv = hn_kv_cache_create(m, T);
            float *lg;
            if (!kv || hn_model_forward(m, kv, ids->i + bi * T, T, HN_LOGITS_ALL, &lg)) {
                worst = INFINITY;
            } else {
                for (int64_t k = 0; k < (int64_t)T * V; k++) {
                    double d = fabs((double)lg[k] - ref->f[(int64_t)bi * T * V + k]);
                    if (!(d <= worst)) worst = d;
                }
            }
            hn_kv_cache_destroy(kv);
        }
        printf("tiny llama from pytorch_model.bin (f16): max abs logit diff vs transformers %.3g\n", worst);
        CHECK(worst <= 1e-4, "logits differ by %g", worst);
    }
    hn_model_destroy(m);
    tg_free(&gold);
}

static void expect_error(const char *path, const char *needle) {
    hn_torch_bin tb;
    hn_status s = hn_torch_bin_open(&tb, path);
    const char *msg = hn_errmsg();
    CHECK(s && strstr(msg, path) && strstr(msg, needle) && !strchr(msg, '\n'), "%s: '%s' lacks '%s'", path, msg,
          needle);
    if (!s) hn_torch_bin_close(&tb);
}

static void test_bad(void) {
    expect_error(DIR "/evil_reduce.bin", "global 'posix.system' is refused");
    expect_error(DIR "/evil_eval.bin", "global 'builtins.eval' is refused");
    expect_error(DIR "/evil_inst.bin", "(INST) is refused");
    expect_error(DIR "/bad_size.bin", "expected 12 elements of 4 bytes");
    expect_error(DIR "/missing_data.bin", "mixed/data/1' is missing");
    expect_error(DIR "/deflated.bin", "compressed");
    expect_error(DIR "/legacy.bin", "legacy torch.save format");
    expect_error(DIR "/absent.bin", "absent.bin");
    expect_error(DIR "/mixed.golden", "not a zip archive");

    // Truncations of mixed.bin: every prefix is refused (never a crash).
    hn_map map;
    if (hn_map_open(&map, DIR "/mixed.bin")) return;
    char path[64];
    snprintf(path, sizeof path, "/tmp/hone_test_torch_bin_%d.bin", (int)getpid());
    int refused = 0, tried = 0;
    for (size_t len = 0; len < map.size; len += len < 64 ? 1 : 97) {
        FILE *f = fopen(path, "wb");
        fwrite(map.data, 1, len, f);
        fclose(f);
        hn_torch_bin tb;
        tried++;
        if (hn_torch_bin_open(&tb, path)) refused++;
        else hn_torch_bin_close(&tb);
    }
    CHECK(refused == tried, "%d of %d truncations refused", refused, tried);
    // A corrupted pickle: each byte of data.pkl in turn set to 0xff; whatever happens, no crash or leak (the
    // sanitizers' build checks that), and the file either loads or fails with a message.
    const uint8_t *pk = memmem(map.data, map.size, "\x80\x02" "c", 3);
    CHECK(pk != NULL, "data.pkl found");
    uint8_t *copy = malloc(map.size);
    for (size_t off = 0; pk && off < 560; off += 7) {
        memcpy(copy, map.data, map.size);
        copy[pk - map.data + off] = 0xff;
        FILE *f = fopen(path, "wb");
        fwrite(copy, 1, map.size, f);
        fclose(f);
        hn_torch_bin tb;
        if (hn_torch_bin_open(&tb, path)) CHECK(*hn_errmsg(), "a message");
        else hn_torch_bin_close(&tb);
    }
    free(copy);
    unlink(path);
    hn_map_close(&map);
}

int main(void) {
    test_mixed();
    test_tiny_llama();
    test_bad();
    return test_done();
}

// bench/bench_train.c — hone's side of `make bench-train` (bench/train_bench.sh builds it against libhone.a): LoRA
// SFT steps on a GGUF model, timed. LoRA r=16, alpha 32, all linear layers, dropout 0; the LM objective over the
// frozen base as stored (Q4_1 for the pulled SmolLM2 file: the input gradient goes through the quantized weights),
// fp32 activations, the objective's default products (as `hone train`: fp32 GEMMs through OpenBLAS); AdamW (lr
// 1e-4, torch's defaults otherwise), clipping at 1.0. One warm-up step, then STEPS timed steps on the same batch:
// B rows of T tokens, every token but the first of a row in the loss.
// The token ids come from the LCG that bench/train_bench_peft.py uses too, so both sides train on the same batch.
//
//   bench_train MODEL.gguf [B T STEPS THREADS CHECKPOINT]      (default 4 512 3 2 0; CHECKPOINT 1: per-block
//                                                               gradient checkpointing)
// Prints a line per step and `tokens/s: X` (B*T*STEPS / the timed steps' wall time).
#include "adapt/lora.h"
#include "train/lm_objective.h"
#include "train/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The batch both sides train on: x <- x * 6364136223846793005 + 1442695040888963407 (mod 2^64), id = (x >> 33) %
// 16000 (a range of ordinary tokens of SmolLM2's vocabulary).
static void make_ids(int32_t *ids, int64_t n) {
    uint64_t x = 12345;
    for (int64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((x >> 33) % 16000);
    }
}

static long rss_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) v = atol(line + n + 1);
    if (f) fclose(f);
    return v;
}

static int fail(void) {
    fprintf(stderr, "bench_train: %s\n", hn_errmsg());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: bench_train MODEL.gguf [B T STEPS THREADS]\n"), 2;
    int B = argc > 2 ? atoi(argv[2]) : 4, T = argc > 3 ? atoi(argv[3]) : 512, steps = argc > 4 ? atoi(argv[4]) : 3;
    hn_threads_set(argc > 5 ? atoi(argv[5]) : 2);
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    hn_model *m;
    if (hn_model_load(&m, argv[1], &mp)) return fail();
    hn_lora_config cfg = hn_lora_default_config();
    cfg.r = 16, cfg.alpha = 32, cfg.targets = HN_LORA_ALL_LINEAR, cfg.seed = 1;
    hn_lora *lo;
    if (hn_lora_attach_new(&lo, m, &cfg)) return fail();
    hn_lm_params lp = hn_lm_default_params();
    lp.checkpoint = argc > 6 && atoi(argv[6]);
    hn_objective obj;
    if (hn_lm_objective_init(&obj, m, hn_lora_params(lo), &lp)) return fail();
    hn_adamw opt;
    hn_adamw_params ap = hn_adamw_default_params();
    if (hn_adamw_init(&opt, obj.params, &ap)) return fail();
    int32_t *ids = malloc((size_t)B * T * sizeof *ids);
    uint8_t *mask = malloc((size_t)B * T);
    if (!ids || !mask) return fprintf(stderr, "bench_train: out of memory\n"), 1;
    make_ids(ids, (int64_t)B * T);
    for (int64_t i = 0; i < (int64_t)B * T; i++) mask[i] = i % T != 0;
    hn_batch b = {.B = B, .T = T, .ids = ids, .mask = mask, .n_loss = (int64_t)B * (T - 1)};
    printf("model %s (%s), LoRA r %d on all linear layers: %lld trainable params; batch %d x %d, %d threads; "
           "checkpointing %s; RSS after load %.0f MiB\n", argv[1], hn_dtype_name(m->layers[0].q.w->type), cfg.r,
           (long long)hn_param_count(obj.params), B, T, hn_threads_get(), lp.checkpoint ? "on" : "off",
           rss_kib("VmRSS:") / 1024.0);
    double timed = 0;
    for (int s = 0; s <= steps; s++) {
        double sum, t0 = hn_now();
        int64_t n;
        hn_param_zero_grads(obj.params);
        if (obj.loss_grad(obj.user, &b, 1.0f / (float)b.n_loss, &sum, &n)) return fail();
        double norm = hn_grad_clip(obj.params, 1.0);
        hn_adamw_step(&opt, 1e-4);
        double dt = hn_now() - t0;
        if (s) timed += dt;
        printf("%s %d: loss %.4f, grad norm %.3f, %.2f s, %.1f tokens/s\n", s ? "step" : "warm-up", s, sum / n, norm,
               dt, B * T / dt);
        fflush(stdout);
    }
    printf("tokens/s: %.1f\n", (double)B * T * steps / timed);
    printf("peak RSS (VmHWM): %.0f MiB; step arenas %.0f MiB\n", rss_kib("VmHWM:") / 1024.0,
           hn_lm_objective_arena_bytes(&obj) / 1048576.0);
    hn_adamw_deinit(&opt);
    hn_lm_objective_deinit(&obj);
    hn_lora_destroy(lo);
    hn_model_destroy(m);
    free(ids), free(mask);
    return 0;
}

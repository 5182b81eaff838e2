// bench/bench_lora_step.c — forward + backward speed of one LoRA SFT step on SmolLM2-135M (not a test; not built
// by CMake): LoRA r=16 on all linear layers, batch B rows of T tokens, every token in the loss, EXACT path.
//
//   gcc -O2 -fopenmp -I. bench/bench_lora_step.c build/libhone.a -ldl -lpcre2-8 -ljansson -lyaml -lm \
//       -o /tmp/bench_lora_step
//   /tmp/bench_lora_step [B T steps threads checkpoint]      (default: 4 512 3 2 0)
#include "adapt/lora.h"
#include "train/lm_objective.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 4, T = argc > 2 ? atoi(argv[2]) : 512, steps = argc > 3 ? atoi(argv[3]) : 3;
    hn_threads_set(argc > 4 ? atoi(argv[4]) : 2);
    bool ckpt = argc > 5 && atoi(argv[5]);
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    hn_model *m;
    if (hn_model_load(&m, "smollm2-135m-instruct", &mp)) return fprintf(stderr, "%s\n", hn_errmsg()), 1;
    hn_lora_config cfg = hn_lora_default_config();
    cfg.r = 16, cfg.alpha = 32;
    hn_lora *lo;
    if (hn_lora_attach_new(&lo, m, &cfg)) return fprintf(stderr, "%s\n", hn_errmsg()), 1;
    hn_lm_params lp = hn_lm_default_params();
    lp.checkpoint = ckpt;
    hn_objective obj;
    hn_lm_objective_init(&obj, m, hn_lora_params(lo), &lp);
    int32_t *ids = malloc((size_t)B * T * 4);
    uint8_t *mask = malloc((size_t)B * T);
    hn_rng r;
    hn_rng_seed(&r, 1);
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)(hn_rng_u64(&r) % 20000), mask[i] = i % T != 0;
    hn_batch b = {.B = B, .T = T, .ids = ids, .mask = mask, .n_loss = (int64_t)B * (T - 1)};
    for (int s = 0; s < steps; s++) {
        double sum;
        int64_t n;
        hn_param_zero_grads(obj.params);
        double t0 = hn_now();
        if (obj.loss_grad(obj.user, &b, 1.0f / b.n_loss, &sum, &n)) return fprintf(stderr, "%s\n", hn_errmsg()), 1;
        double dt = hn_now() - t0;
        printf("step %d: loss %.4f, %.2f s, %.1f tokens/s, arenas %.0f MiB\n", s, sum / n, dt, B * T / dt,
               hn_lm_objective_arena_bytes(&obj) / 1048576.0);
    }
    hn_lm_objective_deinit(&obj);
    hn_lora_destroy(lo);
    hn_model_destroy(m);
    free(ids), free(mask);
    return 0;
}

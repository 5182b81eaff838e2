// tests/test_train_adamw.c — five AdamW steps of the golden training run (DESIGN.md section 7): the tiny random
// Llama (tests/data/tiny_llama) with PEFT's LoRA adapter, trained by hone's objective (EXACT path) and optimizer on
// golden.bin's fixed batch with the hyper-parameters PyTorch used (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay
// 0.01, no schedule, no clipping). Each step's loss must be within relative 1e-5 of PyTorch's, and the adapter after
// the fifth update within 1e-4 x max(1, max |ref|) of PEFT's.
#include "adapt/lora.h"
#include "tests/test.h"
#include "tests/tiny_golden.h"
#include "train/lm_objective.h"
#include "train/optim.h"

#include <math.h>

int main(void) {
    tg_file g;
    if (!tg_load(&g, TINY_DIR "/golden.bin")) return test_skip("tests/data/tiny_llama/golden.bin not readable");
    const tg_array *hp = tg_get(&g, "adamw.hparams"), *losses = tg_get(&g, "adamw.loss"),
                   *final = tg_get(&g, "adamw.final_loss");
    int32_t ids[64];
    uint8_t mask[64];
    hn_batch b;
    if (!hp || !losses || !final || hp->n != 5 || !tg_batch(&g, &b, ids, mask, 64)) {
        tg_free(&g);
        fprintf(stderr, "golden.bin lacks the AdamW arrays\n");
        return 1;
    }
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = HN_MM_EXACT;
    mp.allow_no_tokenizer = true;
    hn_model *m;
    if (hn_model_load(&m, TINY_DIR, &mp)) {
        fprintf(stderr, "load: %s\n", hn_errmsg());
        tg_free(&g);
        return 1;
    }
    hn_adapter *a = NULL;
    hn_lora *lo = NULL;
    CHECK(hn_peft_read(&a, TINY_DIR "/peft_adapter", m->hp.n_head, m->hp.n_head_kv) == HN_OK, "peft: %s",
          hn_errmsg());
    CHECK(a && hn_lora_attach(&lo, m, a) == HN_OK, "attach: %s", hn_errmsg());
    if (!lo) return test_done();

    hn_lm_params lp = hn_lm_default_params();
    lp.mm = HN_MM_EXACT;
    hn_objective obj;
    CHECK(hn_lm_objective_init(&obj, m, hn_lora_params(lo), &lp) == HN_OK, "objective: %s", hn_errmsg());
    hn_adamw_params ap = {.beta1 = hp->f[1], .beta2 = hp->f[2], .eps = hp->f[3], .weight_decay = hp->f[4]};
    hn_adamw opt;
    CHECK(hn_adamw_init(&opt, obj.params, &ap) == HN_OK, "adamw: %s", hn_errmsg());

    double worst = 0;
    for (int step = 0; step <= (int)losses->n; step++) {
        hn_param_zero_grads(obj.params);
        double sum = 0;
        int64_t n = 0;
        CHECK(obj.loss_grad(obj.user, &b, 1.0f / (float)b.n_loss, &sum, &n) == HN_OK, "step %d: %s", step,
              hn_errmsg());
        double loss = sum / (double)n, ref = step < losses->n ? losses->f[step] : final->f[0];
        double rel = fabs(loss - ref) / fabs(ref);
        worst = fmax(worst, rel);
        CHECK(rel <= 1e-5, "step %d: loss %.8f vs PyTorch %.8f (rel %.2e)", step + 1, loss, ref, rel);
        printf("step %d: loss %.7f vs PyTorch %.7f (rel diff %.2e)\n", step + 1, loss, ref, rel);
        if (step < losses->n) hn_adamw_step(&opt, hp->f[0]);
    }
    printf("worst loss rel diff over %lld steps: %.2e (tolerance 1e-5)\n", (long long)losses->n + 1, worst);

    // The adapter after the fifth update.
    int n_checked = 0;
    double wworst = 0;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            hn_param *A, *Bp;
            if (!hn_lora_module_params(lo, l, (hn_proj)p, &A, &Bp)) continue;
            hn_param *ps[2] = {A, Bp};
            for (int k = 0; k < 2; k++) {
                char name[96];
                snprintf(name, sizeof name, "adamw.final.blk.%d.%s.lora_%c", l, hn_proj_gguf_name((hn_proj)p),
                         k ? 'b' : 'a');
                const tg_array *ref = tg_get(&g, name);
                if (!ref || ref->n != ps[k]->n) {
                    CHECK(false, "%s missing or of another size", name);
                    continue;
                }
                double md = 0, mr = 0;
                for (int64_t i = 0; i < ref->n; i++) {
                    md = fmax(md, fabs(ref->f[i] - ps[k]->data[i]));
                    mr = fmax(mr, fabs(ref->f[i]));
                }
                CHECK(md <= 1e-4 * fmax(1, mr), "%s: max abs diff %.3g", name, md);
                wworst = fmax(wworst, md / fmax(1, mr));
                n_checked++;
            }
        }
    CHECK(n_checked == 2 * m->hp.n_layer * (HN_PROJ_COUNT - 1) /* all but GPT-2's fused qkv */,
          "checked %d tensors", n_checked);
    printf("adapter after 5 updates: %d tensors, worst max abs diff / max(1, max |ref|) = %.2e (tolerance 1e-4)\n",
           n_checked, wworst);

    hn_adamw_deinit(&opt);
    hn_lm_objective_deinit(&obj);
    hn_lora_destroy(lo);
    hn_adapter_destroy(a);
    hn_model_destroy(m);
    tg_free(&g);
    return test_done();
}

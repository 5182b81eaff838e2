// bench/lora_convert.c — a PEFT adapter directory to a llama.cpp LoRA GGUF through hone's library (hn_peft_read,
// hn_lora_gguf_write), for bench/lora_llamacpp.sh. MODEL gives the head counts that q/k's B rows are permuted by.
//
//   lora_convert MODEL.gguf PEFT_DIR OUT.gguf
#include "io/adapter.h"
#include "model/model.h"

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 4) return fprintf(stderr, "usage: lora_convert MODEL.gguf PEFT_DIR OUT.gguf\n"), 2;
    hn_model_params mp = hn_model_default_params();
    hn_model *m = NULL;
    hn_adapter *a = NULL;
    hn_status s = hn_model_load(&m, argv[1], &mp);
    if (!s) s = hn_peft_read(&a, argv[2], m->hp.n_head, m->hp.n_head_kv);
    if (!s) s = hn_adapter_check_base(a, &m->gguf, false);
    if (!s) s = hn_lora_gguf_write(a, argv[3]);
    if (s) fprintf(stderr, "lora_convert: %s\n", hn_errmsg());
    else fprintf(stderr, "lora_convert: %s -> %s (%d modules, r %d, scale %g)\n", argv[2], argv[3], a->n_modules, a->r,
                 hn_adapter_scale(a));
    hn_adapter_destroy(a);
    hn_model_destroy(m);
    return s ? 1 : 0;
}

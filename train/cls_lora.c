// train/cls_lora.c — classification by LoRA (adapt/lora.h) on every linear layer + the head trained fully, as PEFT's
// task_type SEQ_CLS does it (the head is in modules_to_save); trained by train/cls_head.c's loop.
//
// Saved in the run directory as PEFT 0.21 saves a SEQ_CLS LoRA: adapter_config.json (task_type "SEQ_CLS",
// modules_to_save ["classifier", "score"], target_modules as PEFT spells them for the architecture) +
// adapter_model.safetensors with the LoRA tensors under transformers' module paths (base_model.model.model.layers.N...
// for Llama, ...transformer.h.N... for GPT-2, ...bert.encoder.layer.N.attention.self.query... for BERT,
// ...distilbert.transformer.layer.N.attention.q_lin... for DistilBERT) and the head as base_model.model.score.weight
// (BERT: base_model.model.classifier.weight + .bias). PEFT's in-memory name ...score.modules_to_save.default.weight
// loses "modules_to_save.default." when saved; checked against peft 0.21.2's save_pretrained. A BERT's pooler, when
// the head reads it (adapt/cls_head.h), stays frozen: hone adapts the blocks' linear layers only, so PEFT adapters
// whose targets reach bert.pooler.dense ('dense', 'all-linear') are refused with a message.
#include "train/cls_impl.h"
#include "adapt/method.h"
#include "io/hf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hn_status lora_applies(const hn_model *m) { return hn_cls_head_applies(m); }

static hn_lora_config lora_config(const hn_cls_options *o) {
    hn_lora_config lc = hn_lora_default_config();
    if (o->lora_r > 0) lc.r = o->lora_r;
    lc.alpha = o->lora_alpha > 0 ? o->lora_alpha : 2.0f * (float)lc.r;
    lc.seed = o->seed + 1; // apart from the head's draw
    return lc;
}

static void free_lora(void *lora) { hn_lora_destroy(lora); }

// Fresh LoRA on every linear layer of the model, as the state's body.
static hn_status attach(hn_cls_state *st, const hn_lora_config *lc) {
    hn_lora *lo;
    hn_status s = hn_lora_attach_new(&lo, st->m, lc);
    if (s) return s;
    st->body = lo, st->body_params = hn_lora_params(lo), st->body_free = free_lora;
    return HN_OK;
}

static hn_status lora_train(hn_model *m, const hn_cls_data *train, const hn_cls_data *val, const hn_cls_options *o,
                            void **state) {
    *state = NULL;
    hn_status s = lora_applies(m);
    if (!s) s = hn_cls_check_data(train, o);
    hn_lora_config lc = lora_config(o);
    hn_cls_state *st = NULL;
    if (!s) s = hn_cls_state_new(&st, m, train->n_classes, o->seed, o->max_len);
    if (!s) s = attach(st, &lc);
    if (!s) s = hn_cls_state_ready(st);
    if (!s) s = hn_cls_train_loop(st, train, val, o);
    if (s) hn_cls_state_free(st);
    else *state = st;
    return s;
}

// adapter_model.safetensors: every module's A and B under its param's name (PEFT's, adapt/lora.h), the head, and
// the base record; then adapter_config.json as PEFT writes a SEQ_CLS adapter.
static hn_status lora_save(const hn_model *m, void *state, const char *dir) {
    hn_cls_state *st = state;
    hn_adapter *a = NULL;
    hn_status s = hn_mkdir_p(dir);
    if (!s) s = hn_lora_export(st->body, &a); // the config and the base record
    hn_safetensors_writer *w = s ? NULL : hn_safetensors_writer_create();
    if (!s && !w) s = HN_ERR_NOMEM;
    float **hf_b = s ? NULL : hn_calloc((size_t)m->hp.n_layer * HN_PROJ_COUNT, sizeof *hf_b, "LoRA B");
    if (!s && !hf_b) s = HN_ERR_NOMEM;
    for (int layer = 0; layer < m->hp.n_layer && !s; layer++)
        for (int p = 0; p < HN_PROJ_COUNT && !s; p++) {
            hn_param *A, *B;
            if (!hn_lora_module_params(st->body, layer, (hn_proj)p, &A, &B)) continue;
            const float *b = B->data;
            int heads = hn_method_permuted_heads(m, (hn_proj)p);
            if (heads) { // back to HF's row order
                float **slot = &hf_b[layer * HN_PROJ_COUNT + p];
                if (!(*slot = hn_alloc((size_t)B->n * sizeof(float), "LoRA B"))) s = HN_ERR_NOMEM;
                else hn_hf_permute_rows(*slot, B->data, B->ne[1], B->ne[0], heads, false), b = *slot;
            }
            if (!s) s = hn_safetensors_writer_add(w, A->name, HN_F32, 2, A->ne, A->data);
            if (!s) s = hn_safetensors_writer_add(w, B->name, HN_F32, 2, B->ne, b);
        }
    char hash[32], path[4096];
    snprintf(hash, sizeof hash, "%016llx", a ? (unsigned long long)a->base_hash : 0ull);
    if (!s) s = hn_cls_add_head(w, st, HN_PEFT_PREFIX);
    if (!s) s = hn_safetensors_writer_set_meta(w, "format", "pt");
    if (!s && a->base_hash) s = hn_safetensors_writer_set_meta(w, "hone.base_hash", hash);
    if (!s && a->base_arch) s = hn_safetensors_writer_set_meta(w, "hone.base_architecture", a->base_arch);
    if (!s && a->base_name) s = hn_safetensors_writer_set_meta(w, "hone.base_name", a->base_name);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (!s) s = hn_safetensors_writer_write(w, path);
    // PEFT's SEQ_CLS default: both names transformers gives a classification head
    static const char *const mts[] = {"classifier", "score"};
    if (!s) s = hn_peft_write_config(a, dir, "SEQ_CLS", mts, 2);
    for (int i = 0; hf_b && i < m->hp.n_layer * HN_PROJ_COUNT; i++) free(hf_b[i]);
    free(hf_b);
    hn_safetensors_writer_destroy(w);
    hn_adapter_destroy(a);
    return s;
}

// LoRA's config from adapter_config.json (r, lora_alpha, use_rslora, target_modules: a list of names or full
// module paths, as hone and PEFT write them); what would change the adapter's output and hone does not apply
// (DoRA, per-module ranks or alphas) is refused.
static hn_status read_lora_config(const char *dir, hn_lora_config *lc) {
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t err;
    json_t *c = json_load_file(path, 0, &err);
    if (!c) return hn_fail(HN_ERR_FORMAT, "%s: %s (line %d)", path, err.text, err.line);
    *lc = hn_lora_default_config();
    hn_status s = HN_OK;
    json_t *tt = json_object_get(c, "task_type"), *r = json_object_get(c, "r"), *al = json_object_get(c, "lora_alpha");
    json_t *rs = json_object_get(c, "use_rslora"), *tm = json_object_get(c, "target_modules");
    json_t *dora = json_object_get(c, "use_dora"), *rp = json_object_get(c, "rank_pattern"),
           *ap = json_object_get(c, "alpha_pattern");
    size_t n_tm = json_is_array(tm) ? json_array_size(tm) : json_is_string(tm) ? 1 : 0;
    if (!json_is_string(tt) || strcmp(json_string_value(tt), "SEQ_CLS"))
        s = hn_fail(HN_ERR_FORMAT, "%s: 'task_type': expected \"SEQ_CLS\"", path);
    else if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 65536)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'r': expected a positive integer", path);
    else if (!json_is_number(al))
        s = hn_fail(HN_ERR_FORMAT, "%s: 'lora_alpha': expected a number", path);
    else if (!n_tm || n_tm > 65536)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'target_modules': expected a list of module names", path);
    else if (json_is_true(dora) || json_object_size(rp) || json_object_size(ap))
        s = hn_fail(HN_ERR_UNSUPPORTED, "%s: '%s' is set; hone does not apply it", path,
                    json_is_true(dora) ? "use_dora" : json_object_size(rp) ? "rank_pattern" : "alpha_pattern");
    const char **names = s ? NULL : hn_calloc(n_tm, sizeof *names, "target names");
    if (!s && !names) s = HN_ERR_NOMEM;
    if (!s) {
        lc->r = (int)json_integer_value(r);
        lc->alpha = (float)json_number_value(al);
        lc->use_rslora = json_is_true(rs);
        for (size_t i = 0; i < n_tm && !s; i++)
            if (!(names[i] = json_string_value(json_is_array(tm) ? json_array_get(tm, i) : tm)))
                s = hn_fail(HN_ERR_FORMAT, "%s: 'target_modules' item %zu: expected a string", path, i);
        if (!s && (s = hn_lora_parse_targets(names, (int)n_tm, &lc->targets))) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", hn_errmsg());
            s = hn_fail(s, "%s: %s", path, msg);
        }
    }
    free(names);
    json_decref(c);
    return s;
}

// Copies LoRA's A and B (Llama's q/k B rows into GGUF's order) from the file into the attached modules.
static hn_status read_lora_tensors(hn_cls_state *st, const hn_safetensors *f, const char *path) {
    const hn_model *m = st->m;
    int n_lora = 0;
    for (size_t i = 0; i < f->n_tensors; i++) {
        bool lora = strstr(f->names[i], ".lora_A.") || strstr(f->names[i], ".lora_B.");
        if (lora && strstr(f->names[i], ".pooler."))
            return hn_fail(HN_ERR_UNSUPPORTED, "%s: '%s': hone does not adapt BERT's pooler (PEFT's target 'dense' "
                           "or 'all-linear' includes it; it stays frozen in hone)", path, f->names[i]);
        n_lora += lora;
    }
    hn_param_list *pl = st->body_params;
    if (n_lora != pl->n)
        return hn_fail(HN_ERR_FORMAT, "%s: %d LoRA tensors, expected %d for the model and adapter_config.json", path,
                       n_lora, pl->n);
    for (int layer = 0; layer < m->hp.n_layer; layer++)
        for (int p = 0; p < HN_PROJ_COUNT; p++) {
            hn_param *A, *B;
            if (!hn_lora_module_params(st->body, layer, (hn_proj)p, &A, &B)) continue;
            hn_param *ab[2] = {A, B};
            for (int k = 0; k < 2; k++) {
                const hn_tensor *t = hn_safetensors_tensor(f, ab[k]->name);
                if (!t) return hn_fail(HN_ERR_FORMAT, "%s: no tensor '%s'", path, ab[k]->name);
                if (t->type != HN_F32 || t->ndim != 2 || t->ne[0] != ab[k]->ne[0] || t->ne[1] != ab[k]->ne[1])
                    return hn_fail(HN_ERR_FORMAT, "%s: '%s' is not F32 [%lld, %lld]", path, ab[k]->name,
                                   (long long)ab[k]->ne[1], (long long)ab[k]->ne[0]);
                int heads = k == 1 ? hn_method_permuted_heads(m, (hn_proj)p) : 0;
                if (heads) hn_hf_permute_rows(ab[k]->data, t->data, ab[k]->ne[1], ab[k]->ne[0], heads, true);
                else memcpy(ab[k]->data, t->data, (size_t)ab[k]->n * sizeof(float));
            }
        }
    return HN_OK;
}

static hn_status lora_load(hn_model *m, const char *dir, void **state) {
    *state = NULL;
    hn_status s = lora_applies(m);
    hn_lora_config lc;
    if (!s) s = read_lora_config(dir, &lc);
    if (s) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors f;
    if ((s = hn_safetensors_open(&f, path))) return s;
    hn_cls_state *st = NULL;
    s = hn_cls_state_new(&st, m, 0, 0, 0);
    if (!s) s = hn_cls_read_head(st, &f, path, HN_PEFT_PREFIX);
    if (!s) s = attach(st, &lc);
    if (!s) s = read_lora_tensors(st, &f, path);
    if (!s) s = hn_cls_state_ready(st);
    hn_safetensors_close(&f);
    if (s) hn_cls_state_free(st);
    else *state = st;
    return s;
}

const hn_cls_method hn_cls_lora = {
    .name = "lora",
    .about = "LoRA on every linear layer of the blocks + a classification head trained fully (PEFT's SEQ_CLS layout)",
    .applies = lora_applies,
    .train = lora_train,
    .predict = hn_cls_state_predict,
    .save = lora_save,
    .load = lora_load,
    .free = hn_cls_state_free,
    .n_trainable = hn_cls_state_n_trainable,
};

// train/cls_lora.c — classification by LoRA (adapt/lora.h) on every linear layer + the head trained fully, as PEFT's
// task_type SEQ_CLS does it (the head is in modules_to_save); trained by train/cls_head.c's loop.
//
// Saved in the run directory as PEFT 0.21 saves a SEQ_CLS LoRA: adapter_config.json (task_type "SEQ_CLS",
// modules_to_save ["classifier", "score"]) + adapter_model.safetensors with the LoRA tensors under
// base_model.model.model.layers.N... and the head as base_model.model.score.weight (PEFT's in-memory name
// base_model.model.score.modules_to_save.default.weight loses "modules_to_save.default." when saved; checked against
// peft 0.21.2's save_pretrained).
#include "train/cls_impl.h"
#include "adapt/lora.h"
#include "io/hf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hn_status lora_applies(const hn_model *m) {
    if (m->hp.arch == HN_ARCH_BERT)
        return hn_fail(HN_ERR_UNSUPPORTED, "%s: LoRA classification on BERT is not written yet (PEFT names BERT's "
                       "modules bert.encoder.layer.N.attention.self.query, ...); use head or feature", m->path);
    return hn_cls_head_applies(m);
}

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

// Rewrites adapter_config.json as PEFT writes a SEQ_CLS adapter.
static hn_status seq_cls_config(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t err;
    json_t *c = json_load_file(path, 0, &err);
    if (!c) return hn_fail(HN_ERR_FORMAT, "%s: %s (line %d)", path, err.text, err.line);
    json_object_set_new(c, "task_type", json_string("SEQ_CLS"));
    json_t *mts = json_array(); // PEFT's SEQ_CLS default: both names transformers gives a classification head
    json_array_append_new(mts, json_string("classifier"));
    json_array_append_new(mts, json_string("score"));
    json_object_set_new(c, "modules_to_save", mts);
    char *text = json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(c);
    if (!text) return hn_fail(HN_ERR_NOMEM, "%s: cannot encode", path);
    hn_afile f;
    hn_status s = hn_afile_open(&f, path);
    if (!s) s = hn_afile_write(&f, text, strlen(text));
    if (!s) s = hn_afile_write(&f, "\n", 1);
    if (!s) s = hn_afile_commit(&f);
    else hn_afile_abort(&f);
    free(text);
    return s;
}

static hn_status lora_save(const hn_model *m, void *state, const char *dir) {
    hn_cls_state *st = state;
    hn_adapter *a;
    hn_status s = hn_lora_export(st->body, &a);
    if (s) return s;
    s = hn_peft_write(a, dir, m->hp.n_head, m->hp.n_head_kv); // the LoRA tensors, B rows back in HF order
    hn_adapter_destroy(a);
    if (s) return s;
    // The same file with the head added under PEFT's saved name.
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    hn_safetensors f;
    if ((s = hn_safetensors_open(&f, path))) return s;
    hn_safetensors_writer *w = hn_safetensors_writer_create();
    s = w ? HN_OK : HN_ERR_NOMEM;
    for (size_t i = 0; i < f.n_tensors && !s; i++)
        s = hn_safetensors_writer_add(w, f.names[i], f.tensors[i].type, f.tensors[i].ndim, f.tensors[i].ne,
                                      f.tensors[i].data);
    for (size_t i = 0; i < f.n_meta && !s; i++) s = hn_safetensors_writer_set_meta(w, f.meta_keys[i], f.meta_vals[i]);
    if (!s) s = hn_cls_add_head(w, st, HN_PEFT_PREFIX);
    if (!s) s = hn_safetensors_writer_write(w, path);
    hn_safetensors_writer_destroy(w);
    hn_safetensors_close(&f);
    if (!s) s = seq_cls_config(dir);
    return s;
}

// LoRA's config from adapter_config.json (what lora_save wrote: r, lora_alpha, use_rslora, target_modules).
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
    if (!json_is_string(tt) || strcmp(json_string_value(tt), "SEQ_CLS"))
        s = hn_fail(HN_ERR_FORMAT, "%s: 'task_type': expected \"SEQ_CLS\"", path);
    else if (!json_is_integer(r) || json_integer_value(r) < 1)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'r': expected a positive integer", path);
    else if (!json_is_number(al))
        s = hn_fail(HN_ERR_FORMAT, "%s: 'lora_alpha': expected a number", path);
    else if (!json_is_array(tm) || !json_array_size(tm) || json_array_size(tm) > 16)
        s = hn_fail(HN_ERR_FORMAT, "%s: 'target_modules': expected a list of 1 to 16 module names", path);
    if (!s) {
        lc->r = (int)json_integer_value(r);
        lc->alpha = (float)json_number_value(al);
        lc->use_rslora = json_is_true(rs);
        const char *names[16];
        for (size_t i = 0; i < json_array_size(tm) && !s; i++)
            if (!(names[i] = json_string_value(json_array_get(tm, i))))
                s = hn_fail(HN_ERR_FORMAT, "%s: 'target_modules' item %zu: expected a string", path, i);
        if (!s && (s = hn_lora_parse_targets(names, (int)json_array_size(tm), &lc->targets))) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", hn_errmsg());
            s = hn_fail(s, "%s: %s", path, msg);
        }
    }
    json_decref(c);
    return s;
}

// Copies LoRA's A and B (B of q/k permuted back to GGUF's row order) from the file into the attached modules.
static hn_status read_lora_tensors(hn_cls_state *st, const hn_safetensors *f, const char *path) {
    const hn_model *m = st->m;
    int n_lora = 0;
    for (size_t i = 0; i < f->n_tensors; i++) n_lora += strstr(f->names[i], ".lora_A.") || strstr(f->names[i], ".lora_B.");
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
                int heads = k == 1 ? (p == HN_PROJ_Q ? m->hp.n_head : p == HN_PROJ_K ? m->hp.n_head_kv : 0) : 0;
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
    .about = "LoRA on every linear layer + a classification head trained fully (PEFT's SEQ_CLS layout)",
    .applies = lora_applies,
    .train = lora_train,
    .predict = hn_cls_state_predict,
    .save = lora_save,
    .load = lora_load,
    .free = hn_cls_state_free,
    .n_trainable = hn_cls_state_n_trainable,
};

// train/lm_run.h — the method side of a language-model (SFT) run, shared by `hone train` (cli/cmd_train.c) and the
// generation bake-off (train/bakeoff_gen.c): the method a configuration names, made fresh on the model through
// adapt/method.h, the LM objective (train/lm_objective.h) over its tensors, and the held-out loss of a loader.
//
//   hn_lm_run r;
//   if (hn_lm_run_init(&r, m, &cfg)) ...;        // attaches cfg->method to m; r.obj trains its tensors
//   hn_train(&r.obj, &loader, NULL, &cfg, &hooks, &res);
//   double loss;
//   hn_lm_eval_loss(&r.obj, &val_loader, NULL, NULL, &loss);
//   hn_lm_run_deinit(&r);                        // detaches the method
//
// hn_lm_run_init_base makes the objective with nothing attached and no trainable tensor: the untrained model's
// held-out loss, for comparison.
#ifndef HN_LM_RUN_H
#define HN_LM_RUN_H

#include "adapt/method.h"
#include "train/config.h"
#include "train/objective.h"

typedef struct {
    hn_objective obj;
    hn_method *me;      // NULL for a base run
    hn_param_list none; // a base run's (empty) list of trainable tensors
    bool have_obj;
} hn_lm_run;

// The configuration's method settings as adapt/method.h takes them (lora.*, prompt.*, ia3.*, adapter.*, seed).
hn_status hn_lm_method_config(const hn_train_config *c, hn_method_config *mc);
// c->method made fresh on m and the LM objective over its tensors. HN_ERR_UNSUPPORTED (with the reason) for full,
// for a method this build lacks, and where the method does not apply to m.
hn_status hn_lm_run_init(hn_lm_run *r, hn_model *m, const hn_train_config *c);
hn_status hn_lm_run_init_base(hn_lm_run *r, hn_model *m);
void hn_lm_run_deinit(hn_lm_run *r); // detaches the method (NULL-safe after a failed init)

// Appends src's examples to dst (src is left empty); the counts add up. dst may be empty ({0}).
hn_status hn_lm_dataset_append(hn_dataset *dst, hn_dataset *src);

// The mean loss per loss token over one pass of lv from its current position to the end of its epoch, in eval mode
// (dropout off); the loader is left where it was. progress (may be NULL) sees (batches done, batches in the pass).
hn_status hn_lm_eval_loss(const hn_objective *o, hn_loader *lv, void (*progress)(void *user, int64_t done,
                          int64_t total), void *user, double *mean);

#endif

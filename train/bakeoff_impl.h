// train/bakeoff_impl.h — what the bake-off's files share (not a public header): a method's child process as the
// task's code sees it (progress of its phases to the parent), and the generation task's entry points, which
// train/bakeoff.c calls where the classification task has its own.
#ifndef HN_BAKEOFF_IMPL_H
#define HN_BAKEOFF_IMPL_H

#include "train/bakeoff.h"

enum { HN_BAKEOFF_PHASE_TRAIN, HN_BAKEOFF_PHASE_EVAL, HN_BAKEOFF_PHASE_QA, HN_BAKEOFF_PHASES };

typedef struct {
    int fd, phase; // the pipe to the parent; the phase now running
    double t0, last; // when the phase began; when progress was last sent
} hn_bakeoff_child;

// Progress of the phase (done of total units; total 0: not known yet), as hn_cls_options.progress takes it (user:
// the hn_bakeoff_child). A few messages a second at most, and always the last.
void hn_bakeoff_child_progress(void *user, int64_t done, int64_t total);
// Starts phase p: its clock, and a first progress message (0 of total).
void hn_bakeoff_child_phase(hn_bakeoff_child *c, int p, int64_t total);

// ---- the generation task (train/bakeoff_gen.c)

// After the model is loaded (b->m): the SFT sets, the questions and their prompts, the token counts.
hn_status hn_bakeoff_gen_prepare(hn_bakeoff *b);
void hn_bakeoff_gen_deinit(hn_bakeoff_gen *g);
// A generation method's configuration (*out malloc'd, free with hn_bakeoff_gen_config_free): base (the budget over
// hone train's defaults) with the method and the bake-off's learning rate for it (a short run's: LoRA and DoRA
// 1e-3, IA3 5e-3, prompt tuning 3e-2, P-tuning and prefix tuning 1e-2, bottleneck adapters 1e-3), and LoRA and
// DoRA on every linear layer (all-linear).
hn_status hn_bakeoff_gen_config(const hn_train_config *base, const char *method, hn_train_config **out);
void hn_bakeoff_gen_config_free(hn_train_config *c); // NULL is fine
// One option of a recipe's options.LABEL (key as written: a short name or a hone train key) set on c from its
// text; where ("FILE:LINE:COLUMN") and shown ("options.LABEL.KEY") start an error message. HN_ERR_NOTFOUND,
// without a message, for a key that is not an option.
#define HN_BAKEOFF_GEN_OPTIONS                                                                                         \
    "epochs, max_steps, lr, batch, weight_decay, warmup_ratio, warmup_steps, grad_accum, max_grad_norm, "              \
    "lr_scheduler, rank, alpha, dropout, target_modules, num_virtual_tokens, reduction_factor"
hn_status hn_bakeoff_gen_option(hn_train_config *c, const char *key, const char *text, const char *base_dir,
                                const char *where, const char *shown);
// NOT_APPLICABLE (row filled) when this build lacks the entry's method; else HN_OK.
hn_status hn_bakeoff_gen_applies(const hn_bakeoff_entry *e, hn_bakeoff_row *row);
// The child's work: entry ix trained and measured, or the untrained model for ix < 0; row filled (state, message,
// numbers) but peak_rss, which the caller adds.
void hn_bakeoff_gen_child(const hn_bakeoff *b, int ix, hn_bakeoff_child *c, hn_bakeoff_row *row);

#endif

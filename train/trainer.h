// train/trainer.h — the training loop: an objective, batches and a configuration in, a run directory out.
//
//   static volatile sig_atomic_t stop;                 // a SIGINT handler sets it
//   hn_train_hooks h = {.stop = &stop, .progress = hn_progress_print, .user = &bar};
//   hn_progress_bar bar = hn_progress_bar_init(stderr);
//   hn_train_result r;
//   hn_status s = hn_train(&obj, &train_loader, val_loader_or_NULL, &cfg, &h, &r);
//   if (s) fprintf(stderr, "hone: %s\n", hn_errmsg());
//   else if (r.end == HN_TRAIN_INTERRUPTED) ...          // checkpoint written: exit 130
//
// A step is grad_accum micro-batches (fewer at the end of an epoch: steps never mix epochs): the trainer draws them
// all, counts their loss tokens L, and calls loss_grad on each with scale 1/L, so the gradient is that of the mean
// loss over every loss token of the step — the same as one batch holding them all. Then: the global norm (reported
// before clipping) and clipping at max_grad_norm (0: off), the lr of hn_lr_at, one AdamW update.
//
// Steps in the run: max_steps when set, else epochs * ceil(batches per epoch / grad_accum). Validation (the whole
// val loader from its position at the start, in eval mode) every eval_every steps and after the last step; with
// early_stopping_patience > 0 the run ends after that many evaluations in a row without a lower validation loss.
// A loss or gradient norm that is NaN or infinite stops the run with a message naming the step (nan_policy stop;
// HN_ERR_RANGE, the step's update is not applied), or skips the step: grads zeroed, no update, counted.
//
// The run directory (c->output_dir, created if needed):
//   config.yaml       the run's configuration (hn_train_config_to_yaml), written at the start
//   metrics.jsonl     one object per step: step, epoch, loss (null when skipped), lr, grad_norm, tokens,
//                     tokens_per_s, elapsed_s, and val_loss after an evaluation (and "skipped": true). Each line is
//                     written with one write(2), so a crash leaves whole lines.
//   checkpoint/       every save_every steps, at the end when save_every > 0, and on an interrupt:
//     state.bin       one file written atomically (temp + fsync + rename): magic "HNCK", format version, the step,
//                     AdamW's t, the loader position, the objective's rng, best validation loss, the config, and
//                     per param (by name) its values and AdamW's m and v; a 64-bit checksum at the end
//     config.yaml     a readable copy of the configuration in state.bin
// A new run refuses a directory that already holds one (a checkpoint or metrics.jsonl); c->resume continues from
// checkpoint/state.bin: it refuses a configuration that differs in a key that changes the result (all keys but
// resume, threads, output_dir, log_every, eval_every, save_every) and a missing checkpoint; metrics.jsonl is cut back
// to the checkpoint's step. With the same thread count the resumed run's losses equal an uninterrupted run's.
//
// *h->stop (set by a signal handler): the current step finishes, a checkpoint is written, and hn_train returns
// HN_OK with end = HN_TRAIN_INTERRUPTED.
#ifndef HN_TRAINER_H
#define HN_TRAINER_H

#include <signal.h>
#include <stdio.h>

#include "train/optim.h"

typedef struct {
    int64_t step, total;     // steps done (this one included), steps in the run
    int64_t epoch;           // the epoch of the step's batches (0-based)
    double loss;             // mean over the step's loss tokens (NAN when skipped)
    double lr, grad_norm;    // grad_norm: before clipping
    double tokens_per_s;     // the step's non-padding tokens / its time
    double elapsed_s, eta_s; // since the start of this process's part of the run; to the last step
    double val_loss;         // NAN unless evaluated after this step
    bool skipped;            // nan_policy skip took this step
    bool last;               // the run's last step (or the one before an interrupt or early stop)
    int log_every;           // the config's
} hn_train_progress;

typedef enum { HN_TRAIN_COMPLETED, HN_TRAIN_EARLY_STOPPED, HN_TRAIN_INTERRUPTED, HN_TRAIN_END_COUNT } hn_train_end;

typedef struct {
    hn_train_end end;
    int64_t step, total;   // steps done at the end, steps in the run
    int64_t start_step;    // where this call started (the checkpoint's step when resuming)
    double loss;           // the last step's loss (NAN if none)
    double val_loss;       // the last validation loss (NAN if none)
    double best_val_loss;  // NAN if none
    int64_t n_skipped;     // steps skipped by nan_policy skip
    int64_t tokens;        // non-padding tokens trained on, over the whole run
} hn_train_result;

typedef struct {
    volatile sig_atomic_t *stop;                               // may be NULL
    void (*progress)(const hn_train_progress *p, void *user); // after every step; may be NULL
    void *user;
} hn_train_hooks;

hn_status hn_train(const hn_objective *obj, hn_loader *train, hn_loader *val, const hn_train_config *c,
                   const hn_train_hooks *h, hn_train_result *res);

// Steps in a run over this loader with this configuration (see above); -1 when out of memory.
int64_t hn_train_total_steps(const hn_loader *train, const hn_train_config *c);

// ---- checkpoints (train/checkpoint.c)

#define HN_CKPT_VERSION 1

typedef struct {
    int64_t step;        // optimizer steps done
    hn_loader_pos pos;   // the training loader's position for the next step
    bool has_rng;        // the objective's rng was saved
    hn_rng rng;
    double best_val;     // NAN: not evaluated yet
    int64_t bad_evals;   // evaluations since the best one (early stopping)
    int64_t n_skipped;
    int64_t tokens;
    char *config_yaml;   // the run's configuration (malloc'd by load; borrowed by save)
} hn_ckpt_state;

// Writes DIR/state.bin (atomically) and DIR/config.yaml, creating DIR.
hn_status hn_ckpt_save(const char *dir, const hn_param_list *params, const hn_adamw *opt, const hn_ckpt_state *st);
// Checks the whole of DIR/state.bin (magic, version, checksum, every length, every param of the list present by
// name with its size and no other) before it changes anything; then fills params, opt (m, v, t) and st.
// HN_ERR_NOTFOUND when there is no checkpoint, HN_ERR_FORMAT for a damaged one, HN_ERR_UNSUPPORTED for a newer
// format version.
hn_status hn_ckpt_load(const char *dir, const hn_param_list *params, hn_adamw *opt, hn_ckpt_state *st);

// ---- metrics and progress (train/metrics.c)

// One metrics.jsonl line for p (with '\n'), into buf; returns its length (< cap) or 0 if it does not fit.
size_t hn_metrics_line(const hn_train_progress *p, int64_t tokens, char *buf, size_t cap);
// Keeps the whole lines of path whose "step" is <= step (a resumed run continues the file where its checkpoint
// was taken); a missing file is fine.
hn_status hn_metrics_truncate(const char *path, int64_t step);

// The progress bar on a stream: on a terminal one line redrawn with '\r' after every step; otherwise one line
// every log_every steps, after an evaluation and at the last step. Use as the progress hook with the bar as user.
typedef struct {
    FILE *fp;
    bool tty;
    bool drawn; // a redrawable line is on the terminal
} hn_progress_bar;

hn_progress_bar hn_progress_bar_init(FILE *fp); // tty from isatty(fileno(fp))
void hn_progress_print(const hn_train_progress *p, void *bar);
// Ends a redrawn line (before other output, and at the end of the run).
void hn_progress_end(hn_progress_bar *bar);

#endif

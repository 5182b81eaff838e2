// train/classify.h — text classification by any route (issue 6): the labelled data, the methods behind one
// interface, the run directory, and the metrics.
//
//   hn_cls_data d;                                            // texts + labels + class names
//   hn_cls_data_load(&d, "train.jsonl", &load_params);        // or FILE:LABEL plain files, CSV/TSV columns
//   hn_cls_data val;
//   hn_cls_data_split(&d, &val, 0.2, 42);
//   const hn_cls_method *me = hn_cls_method_find("icl");      // feature, head, lora, icl, ...
//   void *st;
//   if (me->applies(m) == HN_OK && me->train(m, &d, &val, &opts, &st) == HN_OK) {
//       me->save(m, st, "run/");                              // + hn_cls_run_write(...) for classify.json
//       float *probs = ...;                                   // (n, n_classes)
//       me->predict(m, st, texts, n, probs);
//       me->free(st);
//   }
//
// The run directory of a classification run (`hone train --task classify ... -o DIR`):
//   DIR/classify.json   {"task": "classify", "method": NAME, "classes": [..], "base": {the model record of
//                       io/adapter.h: name, architecture, shapes, content hash}, "options": {...}} — written by
//                       hn_cls_run_write; `hone eval` and `hone classify` read it to find the method
//   DIR/...             what the method saves (its head, adapter, chosen examples, embedding cache, ...)
#ifndef HN_CLASSIFY_H
#define HN_CLASSIFY_H

#include "model/model.h"

// ---- data ----

// Labelled texts. Labels are indices into classes (the names as the data wrote them: strings, or integers written
// as their decimal text), in order of first appearance unless the loader was given the class list.
typedef struct {
    char **texts;   // (n) owned, NUL-terminated UTF-8
    int32_t *labels; // (n) in [0, n_classes)
    int n;
    char **classes; // (n_classes) owned
    int n_classes;
    char *source;   // what was read, for messages ("a.jsonl", "pos.txt:pos + neg.txt:neg")
} hn_cls_data;

typedef struct {
    const char *text_col, *label_col; // CSV/TSV column names (defaults "text" / "label"; also the JSONL keys)
    const char *const *classes;       // a fixed class list (evaluation: the run's), NULL: from the data
    int n_classes;
    bool unseen_ok;                   // a label outside `classes`: counted and skipped (true) or an error
} hn_cls_load_params;

hn_cls_load_params hn_cls_load_default_params(void);
// specs: one "FILE" (JSONL {"text", "label"}, .csv or .tsv with a header naming the columns) or several
// "FILE:LABEL" (plain text, one example a line, all of class LABEL). Errors name the file, the line and the field;
// one class only is an error (nothing to classify).
hn_status hn_cls_data_load(hn_cls_data *d, const char *const *specs, int n_specs, const hn_cls_load_params *p);
// Moves round(frac * n) examples into val by a seeded shuffle, stratified by class; both keep the class list.
hn_status hn_cls_data_split(hn_cls_data *d, hn_cls_data *val, double frac, uint64_t seed);
void hn_cls_data_deinit(hn_cls_data *d);

// ---- methods ----

// Options every method reads the part it needs of (from `hone train` flags or a recipe).
typedef struct {
    uint64_t seed;
    int threads;
    int max_len;            // tokens per text (longer ones are cut)
    // icl
    int shots;              // k examples in the prompt (0: zero-shot)
    bool nearest;           // pick the k nearest training examples by embedding (else seeded random, balanced)
    const char *const *label_words; // per class one or more words "pos=great|good" (NULL: the class names)
    int n_label_words;
    bool no_calibrate;      // icl: compare the raw likelihoods (default: less the prompt's prior over the classes,
                            // measured on 16 training texts)
    // trained methods (feature, head, lora, ...); epochs and lr 0: the method's defaults (hn_cls_resolve_options)
    int epochs, batch;
    float lr, weight_decay;
    int lora_r;
    float lora_alpha;
    bool no_head_first;     // methods that train the body: skip fitting the head on the frozen model first
    int last_k;             // last-k: the blocks unfrozen from the top (default 2)
    int unfreeze_every;     // gradual: optimizer steps between unfreezing one more block, from the top (default 50)
    // Called by train and predict as work proceeds (done of total units: optimizer steps, texts embedded, ...) so that
    // a caller can show progress and an ETA; NULL: none.
    void (*progress)(void *user, int64_t done, int64_t total);
    void *progress_user;
    // The run directory (`-o DIR`), known before train so that a method can cache there (feature: the training
    // texts' embeddings, reused by a rerun into the same DIR); NULL: no cache.
    const char *run_dir;
} hn_cls_options;

hn_cls_options hn_cls_default_options(void);
// o->progress(o->progress_user, done, total) if set.
void hn_cls_progress(const hn_cls_options *o, int64_t done, int64_t total);

typedef struct {
    const char *name;  // "feature", "head", "last-k", "gradual", "bitfit", "full", "lora", "icl"
    const char *about; // one line for --help
    // HN_OK if the method can run on m, else HN_ERR_UNSUPPORTED with a message that says why (icl needs a
    // decoder's language-model head; bitfit needs biases).
    hn_status (*applies)(const hn_model *m);
    // Trains on train (val may be NULL: no early stopping / selection). *state is the method's.
    hn_status (*train)(hn_model *m, const hn_cls_data *train, const hn_cls_data *val, const hn_cls_options *o,
                       void **state);
    // Class probabilities probs (n, n_classes) for n texts.
    hn_status (*predict)(hn_model *m, void *state, const char *const *texts, int n, float *probs);
    hn_status (*save)(const hn_model *m, void *state, const char *dir); // the method's files in the run directory
    hn_status (*load)(hn_model *m, const char *dir, void **state);      // what save wrote (classes: the run's)
    void (*free)(void *state);
    // Trainable parameters the method trained (for the bakeoff's chart); 0 for icl.
    int64_t (*n_trainable)(void *state);
    // Epochs and learning rate when the user names none (0: 3 epochs, lr 1e-3); the head's epochs run on pooled
    // states computed once and cost little, so it takes many; training the body's own weights wants a small lr.
    int default_epochs;
    float default_lr;
} hn_cls_method;

// Fills the options left at 0 (epochs, lr) with the method's defaults.
void hn_cls_resolve_options(const hn_cls_method *me, hn_cls_options *o);

// The methods hone has, by name (NULL + hn_fail naming the known ones if unknown).
const hn_cls_method *hn_cls_method_find(const char *name);
// Every method this build has (up to cap into out, for --help and the bakeoff); returns how many there are.
int hn_cls_method_list(const hn_cls_method **out, int cap);
// Writes / reads DIR/classify.json (atomically); read checks the model against the base record.
hn_status hn_cls_run_write(const char *dir, const hn_model *m, const char *method, const hn_cls_data *d,
                           const hn_cls_options *o);
hn_status hn_cls_run_read(const char *dir, const hn_model *m, char **method, char ***classes, int *n_classes);

// ---- metrics ----

typedef struct {
    double accuracy, macro_f1;
    int64_t *confusion; // (n_classes, n_classes): [gold][predicted], malloc'd
    int n_classes, n;
} hn_cls_metrics;

// pred and gold (n) labels in [0, n_classes).
hn_status hn_cls_metrics_compute(hn_cls_metrics *mt, const int32_t *pred, const int32_t *gold, int n,
                                 int n_classes);
void hn_cls_metrics_deinit(hn_cls_metrics *mt);

#endif

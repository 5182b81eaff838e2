// train/bakeoff.h — the bake-off (issue 6, `hone bakeoff RECIPE.yaml`): several methods on one dataset and one
// budget, each in its own process, measured alike, written up as report.json and report.html. Two tasks:
// classification (task: classify, the default: accuracy and macro-F1 of every classification method) and generation
// (task: generate: every parameter-efficient method of adapt/method.h trained by SFT, scored by held-out loss and by
// the exact match of greedy answers to short-answer questions).
//
//   hn_bakeoff_recipe r;
//   if (hn_bakeoff_recipe_load(&r, "bakeoff.yaml")) ...;   // FILE:LINE:COLUMN: key: what was expected
//   hn_bakeoff b;
//   if (hn_bakeoff_prepare(&b, &r)) ...;                    // model, data, test split, subsample, baseline
//   hn_bakeoff_run(&b, on_event, user);                     // every method, one child process each
//   hn_bakeoff_write(&b, "out/");                           // out/report.json, out/report.html (atomic)
//   hn_bakeoff_deinit(&b), hn_bakeoff_recipe_deinit(&r);
//
// The recipe (YAML; relative paths are taken from the recipe's folder):
//   title: rt-polarity on MiniLM            # optional; default: the recipe's file name
//   task: classify                          # or generate (below); default classify
//   model: all-minilm-l6-v2                 # a pulled name, or a GGUF / Hugging Face directory path
//   data: [pos.txt:pos, neg.txt:neg]        # as `hone train --task classify --data` takes them
//   test: [test.jsonl]                      # optional; else test_split of data (default 0.2), stratified
//   test_split: 0.2
//   text_col: text                          # CSV/TSV columns or JSONL keys (default text / label)
//   label_col: label
//   seed: 42                                # the split, the subsample and every method's seed
//   budget: {max_train: 1000, max_test: 500, epochs: 0, max_len: 64, batch: 16}  # 0: all / the method's default
//   methods: [feature, head, lora, icl-0, icl-4]  # method names and variant labels, or `all` (every method this
//                                                 # build has, each followed by the variants options defines of it)
//   options:                              # per method; any of: epochs lr batch weight_decay shots nearest
//     lora: {rank: 8, alpha: 16}            #   label_words calibrate rank alpha last_k unfreeze_every
//     icl-0: {method: icl, shots: 0}        # a key that is not a method's name is a variant's label: that method
//     icl-4: {method: icl, shots: 4, nearest: true}  # again, under the label, with these options (and not those
//                                           # of options.icl); labels: 1 to 31 of A-Z a-z 0-9 _ . -
//
// A variant's label is what the report and the progress show (report.json: "label", and "method" the method's name).
//
// task: generate (train/bakeoff_gen.c) reads:
//   data: [train.jsonl]       # SFT files as `hone train` reads them (train/data.h: prompt/completion, alpaca,
//                             # messages, ...), or SQuAD-format JSON (train/qa.h: context + question -> answer)
//   test: [val.jsonl]         # held-out SFT files for the held-out loss; else test_split of data: by article for
//                             # SQuAD (the test questions' contexts are never trained on), by example otherwise
//   qa: [questions.jsonl]     # short-answer questions (train/qa.h: {prompt, answer}, alpaca, SQuAD) scored by exact
//                             # match; absent: the held-out SQuAD questions of test / test_split
//   format: auto              # auto, squad, or a train/data.h format name for data and test (auto: SQuAD files are
//                             # told by their content)
//   budget: {max_train: 300, max_test: 100, max_qa: 100, epochs: 1, max_steps: 0, max_len: 384, batch: 4,
//            max_new_tokens: 32}
//   methods: [lora, ia3, prompt-tuning, ...]   # adapt/method.h's names, variant labels, or all (the eight of them)
//   options:                  # over the budget: any hone train key of the optimisation or the method (lr, epochs,
//     lora: {rank: 8, alpha: 16}               # max_steps, batch, weight_decay, warmup_ratio, lora.*, prompt.*,
//     pt-50: {method: prompt-tuning, num_virtual_tokens: 50}  # ia3.*, adapter.*; short names rank, alpha, dropout,
//                                                             # num_virtual_tokens, reduction_factor)
// A method this build does not have, or one that does not attach to the model, is a not-applicable row. The row
// "base" is the untrained model's held-out loss and exact match, measured in a child process like the methods.
//
// Each method runs in a forked child of the process that loaded the model and data, so that its peak resident
// memory (getrusage's ru_maxrss: the model's pages it touched plus its own) is its own, and a crash or error in one
// method is reported while the others run. The parent keeps to one thread from prepare to the end of the runs, so
// that no OpenMP thread team exists when it forks (GNU OpenMP's team does not survive a fork).
#ifndef HN_BAKEOFF_H
#define HN_BAKEOFF_H

#include "train/classify.h"
#include "train/config.h"
#include "train/qa.h"

// ---- the recipe ----

typedef enum { HN_BAKEOFF_CLASSIFY, HN_BAKEOFF_GENERATE } hn_bakeoff_task;

typedef struct {
    const hn_cls_method *me; // classify: the method; NULL for generate
    const char *gen;         // generate: the method's name as adapt/method.h spells it (static); NULL for classify
    char label[32];          // the method's name, or its variant's label
    hn_cls_options o;        // classify: the budget, then the recipe's options for this label, then the method's
                             // defaults
    hn_train_config *tc;     // generate: the run's configuration (the budget, the method's lr, then the options);
                             // owned. model, data and output_dir are left unset (the bake-off's own)
} hn_bakeoff_entry;

typedef struct {
    char *path, *title;
    hn_bakeoff_task task;
    char *model;         // absolute when it names a file or folder beside the recipe, else as written (a name)
    char **data, **test; // FILE[:LABEL] specs, absolute
    int n_data, n_test;
    char *text_col, *label_col; // NULL: the loader's defaults
    double test_split;
    uint64_t seed;
    int max_train, max_test;    // 0: all
    int epochs, max_len, batch; // the budget every method gets (epochs 0: each method's default)
    // generate
    char **qa;                  // question files, absolute
    int n_qa;
    bool squad;                 // format: squad (data, test and qa read as SQuAD)
    hn_data_format format;      // format: a train/data.h format for data and test (AUTO: SQuAD told by content)
    int max_qa, max_new_tokens, max_steps;
    hn_bakeoff_entry *methods;  // (n_methods) in the recipe's order, labels distinct; o.label_words owned here
    int n_methods;
} hn_bakeoff_recipe;

// Errors name FILE:LINE:COLUMN, the key and what was expected. Method names are checked against this build.
hn_status hn_bakeoff_recipe_load(hn_bakeoff_recipe *r, const char *path);
hn_status hn_bakeoff_recipe_load_text(hn_bakeoff_recipe *r, const char *text, size_t len, const char *name,
                                      const char *base_dir);
void hn_bakeoff_recipe_deinit(hn_bakeoff_recipe *r);

// ---- the runs ----

typedef enum { HN_BAKEOFF_RAN, HN_BAKEOFF_NOT_APPLICABLE, HN_BAKEOFF_FAILED, HN_BAKEOFF_BASELINE } hn_bakeoff_state;

// One line of the table. Plain data: a child process sends it to the parent through a pipe as it is.
typedef struct {
    char method[32];           // the method's name ("majority" for the baseline)
    char label[32];            // what the report shows: the method's name, or its variant's label
    hn_bakeoff_state state;
    char message[480];         // why not applicable / what failed
    double accuracy, macro_f1; // classify: on the test set
    double val_loss;           // generate: mean loss per loss token over the test set
    double exact_match;        // generate: the share of qa questions answered exactly (train/qa.h)
    int qa_correct;            // generate: how many
    int64_t n_trainable;       // the method's me->n_trainable
    int64_t peak_rss;          // bytes: ru_maxrss of the method's process at its end
    double train_s, eval_s;    // wall seconds of me->train, and of predicting the test set (generate: of training
                               // and of the held-out loss)
    double qa_s;               // generate: wall seconds of answering the questions
    // Throughput in the data's own tokens (each text as the tokenizer splits it, cut at max_len): the training set's
    // tokens / train_s (however many passes the method makes; generate: the tokens trained on, every epoch's), the
    // test set's / eval_s; generate: the answers' tokens generated / qa_s.
    double train_tok_s, eval_tok_s, gen_tok_s;
    char answers[3][96];       // generate: the first questions' answers as generated (the first line, cut), to look at
} hn_bakeoff_row;

// What the generation task prepares (train/bakeoff_gen.c).
typedef struct {
    hn_dataset train, test; // SFT examples as `hone train` tokenizes them (the chat template where the model has one)
    hn_qa_set qa;           // the questions scored by exact match
    int32_t **prompt;       // (qa.n) each question's prompt, tokenized as training renders it up to where the
    int *n_prompt;          //   answer begins (the assistant turn's opening)
    int max_len;            // the budget's, or the model's learned positions where fewer
    int qa_long;            // questions left out: their prompt is longer than max_len
    char *qa_source;        // where the questions came from, for the report
} hn_bakeoff_gen;

typedef struct {
    const hn_bakeoff_recipe *r; // borrowed
    hn_model *m;
    hn_cls_data train, test;
    char *test_source; // "the test files" or "20% of the data, stratified"
    int64_t train_tokens, test_tokens;
    int64_t model_params;                 // every element of the model's tensors
    char model_name[128], model_arch[64]; // general.name / general.architecture ("" when absent)
    int threads;                          // each method's (hn_threads_get() when prepared)
    char date[32];                        // UTC, ISO 8601, when prepare ran
    double wall_s;                        // the whole run
    hn_bakeoff_row baseline;              // classify: the majority class of the training set, predicted for every
                                          // test text; generate: the untrained model ("base")
    hn_bakeoff_gen gen;                   // generate's data
    hn_bakeoff_row *rows;                 // (r->n_methods), filled by hn_bakeoff_run
} hn_bakeoff;

typedef enum { HN_BAKEOFF_START, HN_BAKEOFF_PROGRESS, HN_BAKEOFF_LOG, HN_BAKEOFF_DONE } hn_bakeoff_event_kind;

typedef struct {
    hn_bakeoff_event_kind kind;
    int index, count; // the method's place (0-based) among count (generate: the base row first)
    const char *method, *label; // the method's name; its variant's label (else the name again)
    const char *phase;         // PROGRESS: "train", "eval" or (generate) "qa"
    int64_t done, total;       // PROGRESS: units of the phase (optimizer steps, texts; total 0: not known yet)
    double phase_s, method_s;  // seconds since the phase and the method began
    const char *text;          // LOG: a warning from the method
    const hn_bakeoff_row *row; // DONE
} hn_bakeoff_event;

typedef void (*hn_bakeoff_event_fn)(const hn_bakeoff_event *e, void *user);

hn_status hn_bakeoff_prepare(hn_bakeoff *b, const hn_bakeoff_recipe *r);
// Runs every method of the recipe. A method that does not apply to the model is not run (its row says why); one
// that fails or crashes gets a FAILED row, and the others still run. fn (may be NULL) sees each method start, its
// progress (also every quarter second while it is silent), its warnings and its row.
hn_status hn_bakeoff_run(hn_bakeoff *b, hn_bakeoff_event_fn fn, void *user);
void hn_bakeoff_deinit(hn_bakeoff *b);

// ---- the report (train/bakeoff_report.c) ----

// DIR/report.json and DIR/report.html (self-contained: inline CSS and SVG, no external URL), each written
// atomically; DIR is created if missing.
hn_status hn_bakeoff_write(const hn_bakeoff *b, const char *dir);
const char *hn_bakeoff_state_name(hn_bakeoff_state s); // "ran", "not-applicable", "failed", "baseline"

#endif

// train/cls_impl.h — what the classification methods that train through the model share (not a public header):
// texts to token ids and padded batches, the state of a head with whatever trains in the body, the training loop,
// prediction, and the head's tensors in a safetensors file.
//
// A method builds its state and trains it:
//   hn_cls_state *st;
//   hn_cls_state_new(&st, m, d->n_classes, o->seed, o->max_len);     // a fresh head (transformers' init)
//   st->body = lora, st->body_params = hn_lora_params(lora), st->body_free = free_lora;  // or nothing: frozen body
//   hn_cls_state_ready(st);                                           // the objective over head + body params
//   hn_cls_train_loop(st, d, val, o);
// The method table's predict / free / n_trainable are hn_cls_state_predict / _free / _n_trainable.
#ifndef HN_CLS_IMPL_H
#define HN_CLS_IMPL_H

#include "io/safetensors.h"
#include "train/classify.h"
#include "train/cls_objective.h"

#define HN_PEFT_PREFIX "base_model.model." // PEFT's saved names: the model's own under this prefix
// The head method's epochs and lr on pooled states computed once, also the "head first" phase of the methods that
// train the body (see hn_cls_train_loop).
#define HN_CLS_HEAD_EPOCHS 40
#define HN_CLS_HEAD_LR 1e-3f

// Texts as token ids, framed as the model reads a sequence (see hn_cls_tokenize).
typedef struct {
    int32_t **ids;
    int32_t *lens;
    int n, max_T;
} hn_cls_tokens;

// [CLS] text [SEP] for BERT (cut keeping [SEP]), BOS + text for a decoder that wants one (cut at the end); at most
// max_len tokens (and the model's positions). A text with no tokens is an error naming it.
hn_status hn_cls_tokenize(const hn_model *m, const char *const *texts, int n, int max_len, hn_cls_tokens *ts);
void hn_cls_tokens_free(hn_cls_tokens *ts);
// The batch of examples idx[0..B) right-padded to the longest; buf holds B * ts->max_T ids; labels from
// all_labels (NULL: none).
hn_cls_batch hn_cls_make_batch(const hn_cls_tokens *ts, const int *idx, int B, const int32_t *all_labels,
                               int32_t *buf, int32_t *lens, int32_t *labels);
// The examples in order of length (stable), so that a batch of neighbours pads little. malloc'd; NULL on failure.
int *hn_cls_length_order(const hn_cls_tokens *ts);

typedef struct hn_cls_state hn_cls_state;
struct hn_cls_state {
    hn_model *m;
    hn_seq_head *head;
    // What trains in the body: the method's attachment (adapt/lora.h, adapt/unfreeze.h) and its trainable tensors;
    // body_params NULL: the body is frozen and the loop trains the head on pooled states computed once.
    void *body;
    hn_param_list *body_params;
    void (*body_free)(void *body);
    // Called after every optimizer step (gradual unfreezing widens the trainable set there); NULL: none.
    void (*on_step)(hn_cls_state *st, int64_t step, const hn_cls_options *o);
    hn_cls_objective obj;
    int max_len;
};

// A state with a fresh head for n_classes (W ~ N(0, 0.02) from seed); no body, no objective yet.
hn_status hn_cls_state_new(hn_cls_state **out, hn_model *m, int n_classes, uint64_t seed, int max_len);
// The objective over the head's params and the body's (call once the body is attached).
hn_status hn_cls_state_ready(hn_cls_state *st);
void hn_cls_state_free(void *state); // frees the body through body_free (which detaches it), then the head
hn_status hn_cls_state_predict(hn_model *m, void *state, const char *const *texts, int n, float *probs);
int64_t hn_cls_state_n_trainable(void *state); // the head's values + the body's not frozen

// Labels in range, two classes or more, and the optimizer's settings sane.
hn_status hn_cls_check_data(const hn_cls_data *d, const hn_cls_options *o);
// AdamW over batches of a seeded shuffle for o->epochs at o->lr, linear decay, clipping at 1.0; logs the loss per
// epoch and the validation accuracy (val may be NULL). A frozen body: the head on pooled states computed once. A body
// that trains: unless o->no_head_first, the head is first fitted on the frozen model's pooled states (as the head
// method: HN_CLS_HEAD_EPOCHS at HN_CLS_HEAD_LR), then head and body train together (linear probing then fine-tuning,
// Kumar et al. 2022: a fresh head's large early gradients would otherwise spoil the body at a small lr).
hn_status hn_cls_train_loop(hn_cls_state *st, const hn_cls_data *d, const hn_cls_data *val, const hn_cls_options *o);

// The head's tensors into w under prefix ("" or HN_PEFT_PREFIX) with the token limit as metadata hone.max_len.
hn_status hn_cls_add_head(hn_safetensors_writer *w, const hn_cls_state *st, const char *prefix);
// The head from an open file (prefix + "score.weight" / "classifier.weight" + ".bias") into st->head, and
// st->max_len from its metadata.
hn_status hn_cls_read_head(hn_cls_state *st, const hn_safetensors *f, const char *path, const char *prefix);
// DIR/head.safetensors (the head with the names of transformers' *ForSequenceClassification), and back into st.
hn_status hn_cls_head_save(const hn_model *m, void *state, const char *dir);
hn_status hn_cls_head_load(hn_cls_state *st, const char *dir);
// A head trains on a pooled state: the model's pooling must have a backward (not max).
hn_status hn_cls_head_applies(const hn_model *m);

#endif

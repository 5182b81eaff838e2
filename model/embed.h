// model/embed.h — sentence embeddings from any model: the final hidden states of a padded batch pooled to one
// vector per input (mean or max over the valid tokens, the first token ([CLS]), or the last valid token) and
// optionally L2-normalised. Encoders (BERT) pool by mean unless the model says otherwise (bert.pooling_type, or
// sentence-transformers' 1_Pooling/config.json beside an HF directory); decoders (Llama) by their last token.
//
//   float *out = malloc(n * m->hp.n_embd * sizeof *out);
//   hn_model_embed_texts(m, texts, n, HN_POOL_MODEL, hn_model_default_normalize(m), out);
#ifndef HN_EMBED_H
#define HN_EMBED_H

#include "model/model.h"

// 0..3 are llama.cpp's pooling_type values.
typedef enum {
    HN_POOL_MODEL = -1, // the model's own (hn_model_default_pool)
    HN_POOL_NONE = 0,   // not a pooling: refused by the embed calls
    HN_POOL_MEAN = 1,
    HN_POOL_CLS = 2,
    HN_POOL_LAST = 3,
    HN_POOL_MAX = 4,
} hn_pool;

hn_pool hn_pool_parse(const char *name); // "mean", "cls", "max", "last"; HN_POOL_NONE if none of them
const char *hn_pool_name(hn_pool p);
// The model's pooling: m->pooling (bert.pooling_type) where set, else an HF directory's 1_Pooling/config.json,
// else mean for encoders and last token for decoders.
hn_pool hn_model_default_pool(const hn_model *m);
// Whether the model's own pipeline L2-normalises (an HF directory whose modules.json lists a Normalize module).
bool hn_model_default_normalize(const hn_model *m);

// The most tokens hn_model_embed_texts keeps of a text, framing included: sentence-transformers' max_seq_length
// (sentence_bert_config.json) where it is below the model's positions.
int hn_model_embed_max_tokens(const hn_model *m);

// out (B, n_embd) from B right-padded rows of T token ids, row b's first lens[b] tokens valid (1..T).
hn_status hn_model_embed_ids(hn_model *m, const int32_t *ids, const int32_t *lens, int B, int T, hn_pool pool,
                             bool normalize, float *out);
// out (n, n_embd) for n NUL-terminated texts, tokenized with the model's framing ([CLS] ... [SEP] for BERT; BOS
// where a decoder wants one), cut to the model's positions or sentence-transformers' max_seq_length
// (sentence_bert_config.json) keeping [SEP], run in padded batches.
hn_status hn_model_embed_texts(hn_model *m, const char *const *texts, int n, hn_pool pool, bool normalize,
                               float *out);

#endif

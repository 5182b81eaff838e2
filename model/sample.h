// model/sample.h — choosing the next token from logits, and the generation loop that streams text.
#ifndef HN_SAMPLE_H
#define HN_SAMPLE_H

#include "model/model.h"

typedef struct {
    float temp;           // 0: greedy
    int top_k;            // 0: off
    float top_p;          // 1: off
    float min_p;          // 0: off
    float repeat_penalty; // 1: off (llama.cpp's rule: divide positive logits, multiply negative ones)
    int repeat_last_n;    // how many recent tokens the penalty looks at
    uint64_t seed;
} hn_sampler_params;
hn_sampler_params hn_sampler_default_params(void); // temp 0.8, top_k 40, top_p 0.95, min_p 0.05, penalty 1, seed 0

typedef struct hn_sampler hn_sampler;
hn_sampler *hn_sampler_create(const hn_sampler_params *p, int n_vocab);
void hn_sampler_destroy(hn_sampler *s);
// Picks a token from logits (n_vocab); `recent`/n_recent are the tokens the repetition penalty looks at.
int32_t hn_sampler_sample(hn_sampler *s, const float *logits, const int32_t *recent, int n_recent);

// Generated text made safe to show: an incomplete UTF-8 character at the end waits for the bytes of the next token,
// and a tail that could begin a stop string waits until it is known not to be one. When a stop string appears, the
// text before it is shown and the rest dropped (stopped set).
//   hn_textstream ts = {.stop = stops, .n_stop = n};
//   hn_textstream_push(&ts, piece, len, &ready);  // show ts.buf[0, ready), then hn_textstream_take(&ts, ready)
//   ... at the end show what is left (ts.len bytes) as it is; hn_textstream_deinit(&ts)
typedef struct {
    const char *const *stop;
    int n_stop;
    char *buf;    // text produced but not yet shown
    size_t len, cap;
    bool stopped; // a stop string appeared: buf holds the text before it, and later pushes add nothing
} hn_textstream;
hn_status hn_textstream_push(hn_textstream *ts, const char *bytes, size_t n, size_t *ready);
void hn_textstream_take(hn_textstream *ts, size_t n); // drops the first n bytes (shown)
void hn_textstream_deinit(hn_textstream *ts);

typedef struct {
    int n_predict;         // maximum new tokens; < 0: until the context is full
    const char **stop;     // stop strings (the text up to a stop string is emitted, the stop string is not)
    int n_stop;
    bool (*on_text)(const char *text, size_t len, void *user); // streamed text; return false to stop
    void *user;
} hn_generate_params;

typedef struct {
    int n_prompt, n_gen;
    double prompt_s, decode_s; // wall seconds of the prompt pass and of decoding
    bool stopped_eog, stopped_string;
} hn_generate_stats;

// Feeds the prompt ids (appended to kv), then samples until an end-of-generation token, a stop string, n_predict
// tokens or a full context. Emits text only at UTF-8 character boundaries (what is left at the end is emitted as
// it is). Every generated token is fed to kv, so a conversation can go on from there; the end-of-generation token
// that ends it is not. stats->decode_s covers sampling and feeding the generated tokens.
hn_status hn_generate(hn_model *m, hn_kv_cache *kv, hn_sampler *s, const int32_t *prompt, int n_prompt,
                      const hn_generate_params *gp, hn_generate_stats *stats);

#endif

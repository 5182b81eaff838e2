// serve/engine.h — many generation requests over one model at once (vLLM's engine, in C): a paged KV cache
// (serve/kv_pool.h), continuous batching (every step runs the next token of every running sequence and chunks of
// waiting prompts in one forward pass: one matmul per weight for the whole batch), per-request adapters (any
// method hn_method_load reads; LoRA-family deltas applied per group of rows, virtual positions per sequence), n
// samples per request sharing their prompt's blocks, preemption by recompute when the pool runs out.
//
// The engine runs its steps on a thread of its own. Callers (HTTP connections, `hone vote`, tests) submit a request
// from any thread and pull its events; every call below is thread-safe.
//
//   hn_engine *e;
//   hn_engine_params p = hn_engine_default_params();
//   if (hn_engine_create(&e, m, &p)) ...;                        // m stays the caller's; starts the step thread
//   hn_engine_load_adapter(e, "sql", "runs/sql/adapter", 1.0f);  // any time, also while serving
//   hn_request r = hn_request_default();
//   r.prompt = ids, r.n_prompt = n, r.adapter = "sql", r.max_tokens = 64;
//   hn_job *j;
//   if (hn_engine_submit(e, &r, &j)) ...;                         // r's arrays are copied
//   hn_event ev;
//   while (hn_job_next(j, &ev, -1) && !ev.done) fwrite(ev.text, 1, ev.len, stdout); // one sample's text, in order
//   hn_job_free(j);
//   hn_engine_destroy(e);                                         // finishes nothing: cancels what is left
#ifndef HN_ENGINE_H
#define HN_ENGINE_H

#include "model/sample.h"

typedef struct {
    int max_batch;        // sequences that run at once (default 16)
    int max_step_tokens;  // tokens in one forward pass, prompts' chunks included (default 512)
    int64_t kv_bytes;     // the KV pool's size; it sets how many tokens are cached at once (default 256 MiB)
    int block_tokens;     // tokens per KV block (default 16)
    int max_ctx;          // a sequence's length at most, prompt + generated (default: the model's n_ctx_train, or
                          // 4096 when it has none)
    bool prefix_cache;    // blocks of a prompt prefix shared between requests (default true)
} hn_engine_params;
hn_engine_params hn_engine_default_params(void);

typedef struct hn_engine hn_engine;

// Starts an engine over m (a decoder; an encoder is refused). m must outlive it, and nothing else may run m or
// attach to it while it lives.
hn_status hn_engine_create(hn_engine **out, hn_model *m, const hn_engine_params *p);
// Cancels every request left (their jobs get a done event with HN_FINISH_CANCEL), stops the thread, detaches and
// frees the adapters. Jobs not yet freed stay valid to read and free.
void hn_engine_destroy(hn_engine *e);

// Adapters by name: loaded from a directory hn_method_load reads (PEFT's, hone's own, a `hone train` run's
// adapter/), LoRA GGUFs too; scale multiplies a LoRA-family adapter's alpha / r. A name already loaded is
// HN_ERR_ARG. Unloading waits until no running request uses it (new requests naming it are refused at once).
hn_status hn_engine_load_adapter(hn_engine *e, const char *name, const char *path, float scale);
hn_status hn_engine_unload_adapter(hn_engine *e, const char *name);
// The names loaded now, in load order: *names is one malloc'd block holding the n pointers and the strings they
// point to (free(*names) frees it all; the strings are not freed one by one).
hn_status hn_engine_adapter_names(hn_engine *e, char ***names, int *n);

typedef enum {
    HN_FINISH_NONE,   // not finished (a text event)
    HN_FINISH_STOP,   // an end-of-generation token or a stop string
    HN_FINISH_LENGTH, // max_tokens, or the sequence reached max_ctx
    HN_FINISH_CANCEL, // hn_job_cancel, the deadline, or the engine shut down
    HN_FINISH_ERROR,  // the step failed (the message is in the event)
} hn_finish;
const char *hn_finish_name(hn_finish f); // "stop", "length", "cancelled", "error" (OpenAI's finish_reason words)

typedef struct {
    const int32_t *prompt; // token ids, already framed (BOS, chat template) as the caller wants them
    int n_prompt;
    const char *adapter;   // a loaded adapter's name; NULL or "": the base model
    hn_sampler_params sp;  // temperature 0: greedy; each sample i draws from seed sp.seed + i
    int max_tokens;        // new tokens per sample (>= 1)
    const char *const *stop; // stop strings (the text before one is returned, the stop string is not)
    int n_stop;
    int n;                 // samples (>= 1), sharing the prompt's KV blocks
    double deadline;       // hn_now() time after which the request is cancelled; 0: none
    bool ignore_eos;       // an end-of-generation token does not end a sample (vLLM's and llama-server's
                           // ignore_eos: every sample runs to max_tokens, as load benchmarks ask)
} hn_request;
hn_request hn_request_default(void); // n 1, max_tokens 16, greedy (temp 0), no stop strings

typedef struct {
    int index;         // which sample (0..n-1)
    const char *text;  // new text of that sample (whole UTF-8 characters; stop strings held back), borrowed until
    size_t len;        // the next hn_job_next / hn_job_free
    bool done;         // this sample finished (finish says why); a job's last event is the last sample's done
    hn_finish finish;
    int n_prompt;      // in a done event: prompt tokens, of which n_cached came from shared blocks, and
    int n_cached;      // tokens generated by this sample
    int n_gen;
    const char *error; // HN_FINISH_ERROR: the message
    bool last;         // no more events after this one
} hn_event;

typedef struct hn_job hn_job;

// Validates r (adapter loaded, ids in the vocabulary, prompt + max_tokens within max_ctx, n and max_tokens >= 1,
// the request fits the pool at all) and queues it: HN_ERR_ARG / HN_ERR_NOTFOUND / HN_ERR_RANGE with the reason,
// nothing queued, otherwise *out to pull events from.
hn_status hn_engine_submit(hn_engine *e, const hn_request *r, hn_job **out);
// The next event, waiting up to timeout_s seconds (< 0: until there is one); false on timeout or after the last
// event. Events of one sample come in order; samples interleave.
bool hn_job_next(hn_job *j, hn_event *ev, double timeout_s);
// Stops the job's samples at the next step (their done events say HN_FINISH_CANCEL). A client gone away.
void hn_job_cancel(hn_job *j);
// Frees the job (cancels it first if it is still running). Every job must be freed.
void hn_job_free(hn_job *j);

// Runs r to the end and returns each sample's whole text (texts[i] malloc'd, the array too; free with
// hn_texts_free) and why each finished (finish: r->n entries, or NULL). For callers that do not stream
// (`hone vote`, tests).
hn_status hn_engine_complete(hn_engine *e, const hn_request *r, char ***texts, hn_finish *finish);
void hn_texts_free(char **texts, int n);

// What the engine has done so far (for /metrics): counters since creation and the state now.
typedef struct {
    int64_t requests, prompt_tokens, cached_tokens, gen_tokens, steps, preemptions;
    int64_t batch_hist[8]; // steps by sequences in the batch: 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64-127, 128+
    int running, waiting;   // sequences now
    int blocks_used, blocks_total, block_tokens;
} hn_engine_stats;
void hn_engine_stats_get(hn_engine *e, hn_engine_stats *out);

#endif

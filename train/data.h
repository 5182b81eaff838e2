// train/data.h — the training data pipeline: dataset files -> token ids + loss masks -> shuffled batches.
//
//   hn_data_params p = hn_data_default_params();
//   p.max_len = 512;
//   p.chat_template = chat;            // the model's, from hn_chat_detect
//   p.system_prompt = default_system;  // likewise (may be NULL)
//   hn_dataset ds;
//   if (hn_dataset_load(&ds, "train.jsonl", tk, &p)) { fprintf(stderr, "hone: %s\n", hn_errmsg()); ... }
//   hn_dataset val;
//   hn_dataset_split(&ds, &val, 0.1, 42);             // or hn_dataset_load a validation file
//   hn_loader_params lp = hn_loader_default_params();
//   lp.batch = 4; lp.seq_len = 512; lp.seed = 42;
//   hn_loader ld;
//   hn_loader_init(&ld, &ds, &lp);
//   hn_batch b = {0};
//   for (int step = 0; step < steps; step++) {
//       hn_loader_next(&ld, &b);                       // b.ids, b.mask: (B, T)
//       ...
//   }
//   hn_batch_deinit(&b); hn_loader_deinit(&ld); hn_dataset_deinit(&val); hn_dataset_deinit(&ds);
//
// Files. JSONL (one object per line; blank lines are ignored) or one JSON array of objects (LLaMA-Factory's files),
// told apart by the first non-blank byte ('[' = array). A UTF-8 byte order mark is skipped. Every line (element) is
// checked for valid UTF-8 by hone before it is parsed. Shapes (`format`, detected from the first valid object
// unless named):
//   text               {"text": S}                                     loss on every token (+ EOS)
//   prompt_completion  {"prompt": S, "completion": S}                  loss on the completion (+ EOS)
//   alpaca             {"instruction": S, "input": S?, "output": S, "system": S?, "history": [[S, S], ...]?}
//                      history: earlier (user, assistant) turns before the instruction. Also self-instruct's
//                      {"instruction": S, "instances": [{"input": S, "output": S}, ...]}: one example per instance.
//   messages           {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": S}, ...]}
//   sharegpt           {"conversations": [{"from": F, "value": S}, ...], "system": S?, "tools": S?}
//                      F: human/user -> user, gpt/assistant -> assistant, function_call -> assistant (the model
//                      writes the call), observation/tool -> tool, system -> system. A non-empty "tools" string is
//                      appended to the system prompt after a blank line and "Tools:\n".
// Preference shapes ({"prompt","chosen","rejected"}) are refused with a message saying so.
//
// Rendering. messages and sharegpt always go through the chat template (p->chat_template, with p->system_prompt
// as the default system turn). prompt_completion and alpaca do too when p->chat (the default, for chat models):
// they become a user turn (prompt; instruction + "\n\n" + input) and an assistant turn (completion; output), after
// alpaca's history turns. Without p->chat they are plain text: prompt tokens, then completion tokens, then EOS;
// alpaca's prompt is [q1 "\n\n" a1 "\n\n" ...] instruction ["\n\n" input] "\n\n". text is never templated.
// Template markup is tokenized with special tokens recognised; message contents are tokenized as plain text, so a
// user who writes "<|im_end|>" gets those characters, never the control token. Each content is tokenized on its
// own, as hone's generation sees an assistant turn (the prompt ends at "<|im_start|>assistant\n", the model writes
// the content). A BOS comes first where the tokenizer's metadata asks for one.
//
// The loss mask. mask[i] == 1 means the loss includes predicting ids[i] from ids[0..i-1] (the logits at position
// i-1), so mask[0] is always 0. By default (p->loss_all false) the masked-in tokens are: the tokens of every
// assistant content and the end-of-turn marker after it (ChatML: <|im_end|>, so a tuned model learns to stop; the
// "\n" the template writes after it is not in the loss: generation stops at <|im_end|> and never produces it),
// or the completion tokens + EOS of an untemplated prompt/completion, or every token of `text`. Not in the loss:
// system and user turns, tool results, the "<|im_start|>assistant\n" header. With p->loss_all every token but the
// first is in the loss.
//
// Limits. An example longer than p->max_len tokens keeps its first max_len tokens and is counted in n_truncated
// (not an error). An example with no token left in the loss (e.g. a prompt longer than max_len, or a conversation
// with no assistant turn) is dropped and counted in n_no_loss. A malformed line (invalid JSON or UTF-8, a missing or
// mistyped field, an unknown role, an empty conversation) fails with HN_ERR_FORMAT and "FILE:LINE: ..." naming the
// field and what was expected — or, with p->skip_bad, is skipped and counted in n_skipped (the first such message is
// kept in skip_msg). A JSON array whose structure breaks (an element that never ends, a missing comma) fails even
// with skip_bad: the next element cannot be found. A missing file is HN_ERR_IO; a file with no example is
// HN_ERR_FORMAT naming the file.
#ifndef HN_DATA_H
#define HN_DATA_H

#include "base/base.h"
#include "io/chat.h"
#include "io/tokenizer.h"

typedef enum {
    HN_DATA_AUTO,
    HN_DATA_TEXT,
    HN_DATA_PROMPT_COMPLETION,
    HN_DATA_ALPACA,
    HN_DATA_MESSAGES,
    HN_DATA_SHAREGPT,
    HN_DATA_FORMAT_COUNT
} hn_data_format;

const char *hn_data_format_name(hn_data_format f); // "auto", "text", "prompt_completion", ...
hn_status hn_data_format_parse(const char *name, hn_data_format *out);

typedef struct {
    hn_data_format format;          // HN_DATA_AUTO: detected from the file's first valid object
    int max_len;                    // tokens per example (longer ones are truncated); default 1024
    bool loss_all;                  // false (default): loss on completion/assistant tokens only
    bool skip_bad;                  // skip and count malformed lines instead of failing; default false
    bool chat;                      // render prompt_completion and alpaca through the chat template; default true
    hn_chat_template chat_template; // default HN_CHAT_CHATML
    const char *system_prompt;      // the template's default system turn (borrowed; NULL: none); default NULL
} hn_data_params;

hn_data_params hn_data_default_params(void);

typedef struct {
    int32_t *ids;  // (n) token ids
    uint8_t *mask; // (n) mask[i] = 1: predicting ids[i] from ids[<i] is in the loss; mask[0] = 0
    int n;
} hn_example;

typedef struct {
    hn_example *ex; // (n) owned; ids and mask of one example share one allocation
    int n;
    hn_data_format format; // the format read (detected or named)
    char *path;            // the file read (malloc'd)
    // Counts of the load (a split divides n, n_tokens and n_loss_tokens; the others stay with the training half).
    int64_t n_loaded;    // examples kept (== n after load)
    int64_t n_truncated; // longer than max_len, cut (kept unless n_no_loss)
    int64_t n_skipped;   // malformed lines skipped (skip_bad)
    int64_t n_no_loss;   // dropped: no token in the loss
    int64_t n_tokens;    // tokens of the kept examples
    int64_t n_loss_tokens;
    char skip_msg[256]; // the first skipped line's message ("" if none)
} hn_dataset;

// Reads a dataset file and tokenizes it. The tokenizer is only borrowed during the call.
hn_status hn_dataset_load(hn_dataset *ds, const char *path, const hn_tokenizer *tk, const hn_data_params *p);
// The same from bytes in memory; name stands for the file in messages.
hn_status hn_dataset_parse(hn_dataset *ds, const char *name, const void *data, size_t size, const hn_tokenizer *tk,
                           const hn_data_params *p);
void hn_dataset_deinit(hn_dataset *ds);
// One line for the user: "FILE: N examples (FORMAT), T tokens, L in the loss; K truncated to M tokens; ..." with
// the truncated, dropped and skipped counts when not zero (and the first skip's message). max_len as loaded.
void hn_dataset_describe(const hn_dataset *ds, int max_len, char *buf, size_t cap);

// Moves a held-out share of ds into val: round(frac * n) examples (at least 1 when frac > 0, and at least one left
// in ds), chosen by a seeded shuffle; both keep their file order. frac == 0 leaves val empty. HN_ERR_ARG if frac is
// outside [0, 1) or ds is too small to split.
hn_status hn_dataset_split(hn_dataset *ds, hn_dataset *val, double frac, uint64_t seed);

// Batches. Padded (pack false): B examples per batch, each row padded to the longest example of the batch (pad_id,
// mask 0); T = that length. Packed (pack true): examples are laid end to end in rows of exactly seq_len tokens; an
// example that does not fit in what is left of a row starts the next row (examples are never split: each has at
// most max_len <= seq_len tokens), and the rest of the row is padding. Attention is NOT blocked at example
// boundaries inside a packed row (as TRL's default packing without position-id resets): positions run 0..T-1
// along the row; seg tells the examples apart for a trainer that wants to block it.
// Epochs: each epoch visits every example once, in a fresh order drawn from the loader's rng (or file order with
// shuffle false); the last batch of an epoch may have fewer rows. Batches never mix two epochs.
typedef struct {
    int batch;      // rows per batch (B); default 4
    int seq_len;    // packed rows: their length T (every example must fit: HN_ERR_ARG otherwise); default 1024
    bool pack;      // default false
    bool shuffle;   // default true
    uint64_t seed;  // default 0
    int32_t pad_id; // default 0 (only ever seen with mask 0)
} hn_loader_params;

hn_loader_params hn_loader_default_params(void);

// Where a loader stands, for checkpoints: save after hn_loader_next, restore with hn_loader_set_pos on a loader
// made with the same dataset and params, and the following batches are the same.
typedef struct {
    int64_t epoch; // the epoch the next batch comes from
    int64_t index; // the next example of that epoch's order
    uint64_t rng[4]; // the loader's rng before it drew that epoch's order
} hn_loader_pos;

typedef struct {
    const hn_dataset *ds; // borrowed
    hn_loader_params p;
    int *order; // (ds->n) this epoch's order
    hn_loader_pos pos;
    hn_rng rng;
} hn_loader;

typedef struct {
    int B, T;          // rows, tokens per row
    int32_t *ids;      // (B, T)
    uint8_t *mask;     // (B, T) as hn_example.mask, per row; 0 on padding
    int32_t *seg;      // (B, T) which example of its row a token belongs to (0, 1, ...); -1 on padding
    int *len;          // (B) tokens before the row's padding
    int64_t n_tokens;  // non-padding tokens
    int64_t n_loss;    // mask == 1 tokens
    int n_examples;    // examples in the batch
    int64_t epoch;     // the epoch the batch belongs to
    bool epoch_end;    // the last batch of its epoch
    size_t cap;        // allocated B*T (internal)
    int cap_rows;      // allocated rows (internal)
} hn_batch;

hn_status hn_loader_init(hn_loader *ld, const hn_dataset *ds, const hn_loader_params *p);
void hn_loader_deinit(hn_loader *ld);
// The next batch into b (whose buffers grow as needed; start with hn_batch b = {0}).
hn_status hn_loader_next(hn_loader *ld, hn_batch *b);
hn_loader_pos hn_loader_get_pos(const hn_loader *ld);
hn_status hn_loader_set_pos(hn_loader *ld, const hn_loader_pos *pos); // HN_ERR_ARG if pos does not fit ds
// Batches in the loader's next `epochs` epochs from the start (not from the current position): exact, packing
// included, by drawing the same orders.
int64_t hn_loader_count_batches(const hn_loader *ld, int64_t epochs);
void hn_batch_deinit(hn_batch *b);

#endif

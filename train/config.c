// train/config.c — the key table and everything derived from it: defaults, setting a key from text (recipes,
// --set, flags), validation, YAML printing, comparison and the --help-recipe text. The YAML reader is recipe.c.
#include "train/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const hn_train_method_names[] = {"lora", "full", "dora", "ia3", "prompt-tuning", "p-tuning", "prefix-tuning",
                                            "adapter-houlsby", "adapter-pfeiffer", NULL};
#define method_names hn_train_method_names
static const char *const encoder_names[] = {"mlp", "lstm", NULL};
const char *const hn_adapter_act_names[] = {"relu", "gelu", "silu", "tanh", NULL};
static const char *const sched_names[] = {"cosine", "linear", "constant", NULL};
static const char *const loss_on_names[] = {"completion", "all", NULL};
static const char *const nan_names[] = {"stop", "skip", NULL};
static const char *const lora_init_names[] = {"default", "gaussian", NULL};
static const char *const quantize_names[] = {"none", "nf4", NULL};
static const char *const format_names[] = {"auto", "text", "prompt_completion", "alpaca", "messages", "sharegpt", NULL};
const char *const hn_lora_target_names[] = {"q_proj", "k_proj",  "v_proj",    "o_proj", "gate_proj", "up_proj",
                                            "down_proj", "all-linear", "c_attn", "c_proj", "c_fc", NULL}; // GPT-2: c_*

#define N_NAMES(a) (sizeof a / sizeof *a - 1)
_Static_assert(N_NAMES(method_names) == HN_METHOD_COUNT, "method names");
_Static_assert(N_NAMES(encoder_names) == HN_ENCODER_COUNT, "encoder names");
_Static_assert(N_NAMES(hn_adapter_act_names) == HN_ACT_COUNT, "activation names");
_Static_assert(N_NAMES(sched_names) == HN_SCHED_COUNT, "scheduler names");
_Static_assert(N_NAMES(loss_on_names) == HN_LOSS_ON_COUNT, "loss_on names");
_Static_assert(N_NAMES(nan_names) == HN_NAN_POLICY_COUNT, "nan_policy names");
_Static_assert(N_NAMES(lora_init_names) == HN_LORA_INIT_COUNT, "lora init names");
_Static_assert(N_NAMES(quantize_names) == HN_LOAD_QUANT_COUNT, "quantize names");
_Static_assert(N_NAMES(format_names) == HN_DATA_FORMAT_COUNT, "format names"); // as hn_data_format_name's
// Enum fields are written through an int pointer.
_Static_assert(sizeof(hn_train_method) == sizeof(int) && sizeof(hn_lr_sched) == sizeof(int) &&
                   sizeof(hn_loss_on) == sizeof(int) && sizeof(hn_nan_policy) == sizeof(int) &&
                   sizeof(hn_lora_init_kind) == sizeof(int) && sizeof(hn_data_format) == sizeof(int) &&
                   sizeof(hn_load_quant) == sizeof(int) && sizeof(hn_prompt_encoder) == sizeof(int) &&
                   sizeof(hn_adapter_act) == sizeof(int),
               "enums are int-sized");

#define F(field) offsetof(hn_train_config, field)
#define INT_ HN_CFG_INT
#define FLT_ HN_CFG_FLOAT
#define BOOL_ HN_CFG_BOOL
#define STR_ HN_CFG_STRING
#define ENUM_ HN_CFG_ENUM
#define LIST_ HN_CFG_LIST

// Defaults follow PEFT's LoraConfig and TRL's SFTConfig where they have one; `aka` lists the names PEFT,
// transformers/TRL, axolotl and LLaMA-Factory use, so that a recipe written with them gets a pointed suggestion.
// Keys of one section are kept together (the YAML printer opens each section once).
const hn_cfg_key hn_train_keys[] = {
    // name, type, field, default, choices, range, flag, short flag, aka, flags, help
    {"model", STR_, F(model), NULL, NULL, NULL, "--model", "-m", "base_model|model_name_or_path|model_path",
     HN_CFG_MODEL | HN_CFG_REQUIRED, "the base model: a GGUF file, or a name pulled with `hone pull`"},
    {"method", ENUM_, F(method), "lora", method_names, NULL, "--method", NULL, "adapter|finetuning_type|peft", 0,
     "what is trained: lora (low-rank adapters over frozen weights), full (every weight), dora (LoRA with a learned "
     "magnitude), ia3 (learned scales), prompt-tuning / p-tuning (virtual tokens), prefix-tuning (key/value prefixes "
     "in every layer), adapter-houlsby / adapter-pfeiffer (bottleneck adapters)"},
    {"output_dir", STR_, F(output_dir), NULL, NULL, NULL, "--out", "-o", "out_dir|output|save_dir",
     HN_CFG_PATH | HN_CFG_REQUIRED, "the run directory: checkpoints, metrics.jsonl, adapter/ and adapter.gguf"},
    {"resume", BOOL_, F(resume), "false", NULL, NULL, "--resume", NULL, "resume_from_checkpoint", 0,
     "continue the run in output_dir from its last checkpoint"},
    {"seed", INT_, F(seed), "42", NULL, "[0,)", "--seed", NULL, "random_seed|data_seed", 0,
     "seed of shuffling, the validation split, dropout and the adapter initialisation"},
    {"threads", INT_, F(threads), "0", NULL, "[0,1024]", "--threads", NULL, "num_threads|n_threads", 0,
     "threads for OpenMP and BLAS together; 0: the number of physical cores"},
    {"log_every", INT_, F(log_every), "1", NULL, "[1,)", "--log-every", NULL, "logging_steps", 0,
     "update the progress line and write a metrics.jsonl line every N optimizer steps"},
    {"eval_every", INT_, F(eval_every), "0", NULL, "[0,)", "--eval-every", NULL, "eval_steps", 0,
     "compute the validation loss every N optimizer steps; 0: only at the end of the run"},
    {"save_every", INT_, F(save_every), "0", NULL, "[0,)", "--save-every", NULL, "save_steps", 0,
     "write a checkpoint every N optimizer steps; 0: only at the end (and on Ctrl-C)"},
    {"quantize", ENUM_, F(quantize), "none", quantize_names, NULL, "--quantize", NULL,
     "load_in_4bit|bnb_4bit_quant_type|quantization", 0,
     "none: the base as stored; nf4: its linear weights re-quantized to 4-bit NormalFloat at load (QLoRA)"},

    {"data", LIST_, F(data), NULL, NULL, NULL, "--data", NULL, "datasets|dataset|train_file|train_data",
     HN_CFG_PATH | HN_CFG_REQUIRED, "training files: JSONL, or JSON arrays as LLaMA-Factory ships them"},
    {"val_data", LIST_, F(val_data), NULL, NULL, NULL, "--val-data", NULL,
     "eval_file|validation_file|eval_dataset|test_datasets", HN_CFG_PATH,
     "validation files, in the training data's format; empty: hold out val_split of the training data"},
    {"val_split", FLT_, F(val_split), "0", NULL, "[0,1)", "--val-split", NULL, "val_set_size|eval_split", 0,
     "fraction of the training examples held out for validation when val_data is empty"},
    {"format", ENUM_, F(format), "auto", format_names, NULL, "--format", NULL, "dataset_format|formatting|type", 0,
     "the examples' shape: text, prompt_completion, alpaca, messages, sharegpt; auto: from the first example"},
    {"max_len", INT_, F(max_len), "512", NULL, "[2,)", "--max-len", NULL,
     "max_seq_length|max_length|sequence_len|cutoff_len", 0,
     "tokens per sequence; longer examples are truncated and counted"},
    {"packing", BOOL_, F(packing), "false", NULL, NULL, "--packing", NULL, "sample_packing", 0,
     "pack several examples into each max_len sequence"},
    {"shuffle", BOOL_, F(shuffle), "true", NULL, NULL, NULL, NULL, "shuffle_dataset", 0,
     "shuffle the training examples every epoch (seeded)"},
    {"loss_on", ENUM_, F(loss_on), "completion", loss_on_names, NULL, "--loss-on", NULL,
     "train_on_inputs|completion_only_loss|assistant_only_loss", 0,
     "completion: loss on the answer / assistant tokens, end-of-turn included; all: on every token"},
    {"skip_bad_lines", BOOL_, F(skip_bad_lines), "false", NULL, NULL, NULL, NULL, "skip_errors", 0,
     "skip and count malformed examples instead of stopping at the first (which is named by file:line)"},

    {"lr", FLT_, F(lr), "2e-4", NULL, "(0,)", "--lr", NULL, "learning_rate", 0, "peak learning rate (AdamW)"},
    {"lr_scheduler", ENUM_, F(lr_scheduler), "cosine", sched_names, NULL, "--lr-scheduler", NULL,
     "lr_scheduler_type|scheduler", 0, "after warmup: cosine or linear decay to 0, or constant"},
    {"warmup_steps", INT_, F(warmup_steps), "0", NULL, "[0,)", "--warmup-steps", NULL, "num_warmup_steps", 0,
     "optimizer steps of linear warmup from 0 to lr"},
    {"warmup_ratio", FLT_, F(warmup_ratio), "0", NULL, "[0,1)", NULL, NULL, "warmup", 0,
     "warmup as a fraction of all optimizer steps (instead of warmup_steps)"},
    {"epochs", INT_, F(epochs), "3", NULL, "[1,)", "--epochs", NULL, "num_train_epochs|num_epochs", 0,
     "passes over the training data (max_steps, when set, stops first)"},
    {"max_steps", INT_, F(max_steps), "0", NULL, "[0,)", "--max-steps", NULL, "total_steps|num_steps", 0,
     "optimizer steps to run; 0: as many as epochs give"},
    {"batch_size", INT_, F(batch_size), "4", NULL, "[1,)", "--batch", NULL,
     "per_device_train_batch_size|micro_batch_size|train_batch_size", 0,
     "sequences per forward/backward pass"},
    {"grad_accum", INT_, F(grad_accum), "1", NULL, "[1,)", "--grad-accum", NULL,
     "gradient_accumulation_steps|accumulate_grad_batches", 0,
     "passes whose gradients add up to one optimizer step (effective batch = batch_size x grad_accum)"},
    {"weight_decay", FLT_, F(weight_decay), "0", NULL, "[0,)", NULL, NULL, "wd", 0,
     "AdamW's decoupled weight decay"},
    {"adam_beta1", FLT_, F(adam_beta1), "0.9", NULL, "[0,1)", NULL, NULL, "beta1|betas", 0,
     "AdamW's decay rate of the gradient's running mean"},
    {"adam_beta2", FLT_, F(adam_beta2), "0.999", NULL, "[0,1)", NULL, NULL, "beta2", 0,
     "AdamW's decay rate of the squared gradient's running mean"},
    {"adam_epsilon", FLT_, F(adam_epsilon), "1e-8", NULL, "(0,)", NULL, NULL, "eps|adam_eps|epsilon", 0,
     "AdamW's denominator guard"},
    {"max_grad_norm", FLT_, F(max_grad_norm), "1", NULL, "[0,)", NULL, NULL, "clip_grad_norm|gradient_clipping", 0,
     "clip the global gradient norm to this; 0: no clipping"},
    {"early_stopping_patience", INT_, F(early_stopping_patience), "0", NULL, "[0,)", NULL, NULL, "patience", 0,
     "stop after N evaluations without a lower validation loss; 0: never"},
    {"grad_checkpointing", BOOL_, F(grad_checkpointing), "false", NULL, NULL, NULL, NULL,
     "gradient_checkpointing|activation_checkpointing", 0,
     "keep only each block's input and recompute the rest in the backward pass: less memory, more time"},
    {"nan_policy", ENUM_, F(nan_policy), "stop", nan_names, NULL, NULL, NULL, "on_nan", 0,
     "on a NaN or infinite loss: stop with a message naming the step, or skip the step"},

    {"lora.r", INT_, F(lora.r), "8", NULL, "[1,)", "--rank", NULL, "r|rank|lora_r|lora_rank", 0,
     "LoRA rank: A is (r x in), B is (out x r)"},
    {"lora.alpha", FLT_, F(lora.alpha), "16", NULL, "(0,)", "--alpha", NULL, "alpha|lora_alpha", 0,
     "LoRA scale numerator: the update is (alpha / r) B A, or (alpha / sqrt(r)) B A with use_rslora"},
    {"lora.dropout", FLT_, F(lora.dropout), "0.05", NULL, "[0,1)", "--dropout", NULL, "dropout|lora_dropout", 0,
     "dropout on the adapter's input during training"},
    {"lora.target_modules", LIST_, F(lora.target_modules), "q_proj,v_proj", hn_lora_target_names, NULL,
     "--target-modules", NULL, "target_modules|lora_target_modules|lora_target|lora_target_linear", 0,
     "linear layers that get an adapter (PEFT's Llama default: q_proj, v_proj; GPT-2: c_attn, c_proj, c_fc); "
     "all-linear: all of a block's"},
    {"lora.use_rslora", BOOL_, F(lora.use_rslora), "false", NULL, NULL, NULL, NULL, "use_rslora|rslora", 0,
     "rank-stabilised scaling alpha / sqrt(r) (Kalajdzievski 2023) instead of alpha / r"},
    {"lora.init", ENUM_, F(lora.init), "default", lora_init_names, NULL, NULL, NULL, "init_lora_weights", 0,
     "A's initialisation, B starts at zero: default is PEFT's Kaiming-uniform, gaussian is N(0, 1/r)"},

    {"prompt.num_virtual_tokens", INT_, F(prompt.num_virtual_tokens), "20", NULL, "[1,)", "--num-virtual-tokens",
     NULL, "num_virtual_tokens|n_virtual|prefix_length", 0,
     "prompt-tuning, p-tuning, prefix-tuning: positions the method puts before the input"},
    {"prompt.init_text", STR_, F(prompt.init_text), NULL, NULL, NULL, "--prompt-init-text", NULL,
     "prompt_tuning_init_text|init_text", 0,
     "prompt-tuning: start the virtual tokens from this text's token embeddings; prefix-tuning: from the keys and "
     "values the text leaves in every layer (unset: random, as PEFT)"},
    {"prompt.encoder_hidden_size", INT_, F(prompt.encoder_hidden_size), "0", NULL, "[0,)", NULL, NULL,
     "encoder_hidden_size", 0,
     "p-tuning's prompt encoder and prefix-tuning's projection: hidden width (0: the model's width)"},
    {"prompt.encoder", ENUM_, F(prompt.encoder), "mlp", encoder_names, NULL, NULL, NULL,
     "encoder_reparameterization_type", 0, "p-tuning's prompt encoder: mlp or lstm (trained, then discarded)"},
    {"prompt.projection", BOOL_, F(prompt.projection), "false", NULL, NULL, NULL, NULL, "prefix_projection", 0,
     "prefix-tuning: reparameterise the prefixes through an MLP while training (PEFT's prefix_projection)"},

    {"ia3.target_modules", LIST_, F(ia3.target_modules), NULL, hn_lora_target_names, NULL, NULL, NULL,
     "ia3_target_modules", 0, "ia3: layers whose output (or, for feed-forward modules, input) is scaled (unset: "
     "PEFT's default, k_proj, v_proj, down_proj for Llama)"},
    {"ia3.feedforward_modules", LIST_, F(ia3.feedforward_modules), NULL, hn_lora_target_names, NULL, NULL, NULL,
     "feedforward_modules", 0, "ia3: the targets whose input is scaled instead of their output (unset: PEFT's "
     "default, down_proj for Llama)"},

    {"adapter.size", INT_, F(adapter.size), "0", NULL, "[0,)", NULL, NULL, "adapter_size|bottleneck_size", 0,
     "bottleneck adapters: the bottleneck width (0: the model's width / adapter.reduction_factor)"},
    {"adapter.reduction_factor", INT_, F(adapter.reduction_factor), "16", NULL, "[1,)", NULL, NULL,
     "reduction_factor", 0, "bottleneck adapters: the model's width over the bottleneck's"},
    {"adapter.non_linearity", ENUM_, F(adapter.non_linearity), "relu", hn_adapter_act_names, NULL, NULL, NULL,
     "non_linearity|adapter_act", 0, "bottleneck adapters: the activation between down- and up-projection"},
};
const int hn_train_key_count = (int)(sizeof hn_train_keys / sizeof hn_train_keys[0]);

const char *hn_cfg_type_name(hn_cfg_type t) {
    static const char *const names[] = {"int", "float", "bool", "string", "enum", "list"};
    _Static_assert(sizeof names / sizeof *names == HN_CFG_TYPE_COUNT, "type names");
    return (unsigned)t < HN_CFG_TYPE_COUNT ? names[t] : "?";
}

const hn_cfg_key *hn_train_key_find(const char *name) {
    for (int i = 0; i < hn_train_key_count; i++)
        if (!strcmp(hn_train_keys[i].name, name)) return &hn_train_keys[i];
    return NULL;
}

// ---- suggestions

// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), case-insensitive, '-' == '_',
// capped at 99 for long strings (a name that long is never a near miss).
static int fold(int ch) { return ch == '-' ? '_' : tolower((unsigned char)ch); }
static int edit_distance(const char *a, size_t na, const char *b, size_t nb) {
    if (na > 64 || nb > 64) return 99;
    int d[65][65];
    for (size_t i = 0; i <= na; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= nb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            int cost = fold(a[i - 1]) != fold(b[j - 1]);
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) && fold(a[i - 2]) == fold(b[j - 1]) &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[na][nb];
}

// Distance of `s` to candidate `c`, also trying the unknown name's last dotted component against it (a key put in
// the wrong section) at a cost of one more edit. Close means within a third of the candidate's length (at least 1).
static void consider(const char *s, const char *c, size_t nc, const char *key, int *best, const char **out) {
    int d = edit_distance(s, strlen(s), c, nc);
    const char *dot = strrchr(s, '.');
    if (dot) {
        int d2 = edit_distance(dot + 1, strlen(dot + 1), c, nc) + 1;
        if (d2 < d) d = d2;
    }
    int limit = (int)nc / 3 > 1 ? (int)nc / 3 : 1;
    size_t ns = strlen(s), shortest = ns < nc ? ns : nc;
    if (d <= limit && (size_t)d < shortest && d < *best) { // replacing every letter is no near miss
        *best = d;
        *out = key;
    }
}

const char *hn_train_key_suggest(const char *unknown) {
    int best = 100;
    const char *out = NULL;
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        consider(unknown, k->name, strlen(k->name), k->name, &best, &out);
        for (const char *a = k->aka; a && *a;) {
            size_t n = strcspn(a, "|");
            consider(unknown, a, n, k->name, &best, &out);
            a += n + (a[n] == '|');
        }
    }
    return out;
}

// ---- values

typedef struct { // a growable string
    char *s;
    size_t n, cap;
    bool failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->s && b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

// `text` made fit for a one-line message: at most 40 bytes, control characters escaped.
static const char *shown(const char *text, char buf[200]) {
    size_t o = 0, i = 0;
    for (; text[i] && i < 40; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch < 0x20 || ch == 0x7f) o += (size_t)snprintf(buf + o, 8, "\\x%02x", ch);
        else buf[o++] = (char)ch;
    }
    if (text[i]) o += (size_t)snprintf(buf + o, 8, "...");
    buf[o] = 0;
    return buf;
}

static bool is_null(const char *v) {
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static void *field(hn_train_config *c, const hn_cfg_key *k) { return (char *)c + k->offset; }
static const void *cfield(const hn_train_config *c, const hn_cfg_key *k) { return (const char *)c + k->offset; }

typedef struct {
    bool has_lo, has_hi, lo_incl, hi_incl;
    double lo, hi;
} range;

static range range_of(const hn_cfg_key *k) {
    range r = {0};
    const char *s = k->range;
    if (!s) return r;
    char *end;
    r.lo_incl = *s++ == '[';
    if (*s != ',') {
        r.has_lo = true;
        r.lo = strtod(s, &end);
        s = end;
    }
    s++; // ','
    if (*s != ']' && *s != ')') {
        r.has_hi = true;
        r.hi = strtod(s, &end);
        s = end;
    }
    r.hi_incl = *s == ']';
    return r;
}

static bool in_range(const hn_cfg_key *k, double v) {
    range r = range_of(k);
    if (r.has_lo && (r.lo_incl ? v < r.lo : v <= r.lo)) return false;
    if (r.has_hi && (r.hi_incl ? v > r.hi : v >= r.hi)) return false;
    return true;
}

// " >= 0 and < 1" for a range "[0,1)"; "" without one.
static const char *range_text(const hn_cfg_key *k, char buf[200]) {
    range r = range_of(k);
    size_t o = 0;
    buf[0] = 0;
    if (r.has_lo) o += (size_t)snprintf(buf, 200, " %s %g", r.lo_incl ? ">=" : ">", r.lo);
    if (r.has_hi) snprintf(buf + o, 200 - o, "%s %s %g", r.has_lo ? " and" : "", r.hi_incl ? "<=" : "<", r.hi);
    return buf;
}

// "an integer >= 1", "a number >= 0 and < 1", "one of cosine, linear, constant", ...
const char *hn_train_key_expected(const hn_cfg_key *k, char buf[400]) {
    char r[200];
    if (k->type == HN_CFG_INT || k->type == HN_CFG_FLOAT) {
        snprintf(buf, 400, "%s%s", k->type == HN_CFG_INT ? "an integer" : "a number", range_text(k, r));
    } else if (k->type == HN_CFG_BOOL) {
        snprintf(buf, 400, "true or false");
    } else if (k->choices) {
        size_t o = (size_t)snprintf(buf, 400, "one of");
        for (int i = 0; k->choices[i] && o < 400; i++)
            o += (size_t)snprintf(buf + o, 400 - o, "%s %s", i ? "," : "", k->choices[i]);
    } else {
        snprintf(buf, 400, k->type == HN_CFG_LIST ? "a list of paths" : "a string");
    }
    return buf;
}

static int n_choices(const hn_cfg_key *k) {
    int n = 0;
    while (k->choices && k->choices[n]) n++;
    return n;
}

static hn_status bad_value(const hn_cfg_key *k, const char *where, const char *text) {
    char e[400], s[200];
    return hn_fail(HN_ERR_ARG, "%s: %s: expected %s, got '%s'", where, k->name, hn_train_key_expected(k, e),
                   shown(text, s));
}

// The index of `v` among `choices` (case-insensitive, '-' == '_'), or -1.
static int choice_index(const char *const *choices, const char *v) {
    for (int i = 0; choices[i]; i++) {
        size_t n = strlen(choices[i]);
        if (strlen(v) == n && edit_distance(v, n, choices[i], n) == 0) return i;
    }
    return -1;
}

static hn_status bad_choice(const hn_cfg_key *k, const char *where, const char *v) {
    char e[400], s[200];
    int best = 100;
    const char *sug = NULL;
    for (int i = 0; k->choices[i]; i++)
        consider(v, k->choices[i], strlen(k->choices[i]), k->choices[i], &best, &sug);
    return hn_fail(HN_ERR_ARG, "%s: %s: expected %s, got '%s'%s%s%s", where, k->name, hn_train_key_expected(k, e),
                   shown(v, s), sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
}

// An absolute path with "//", "/./" and "dir/../" collapsed (lexically, as Python's normpath: a printed
// configuration should show where a file is, not the way there). malloc'd; NULL on no memory.
static char *normalized(const char *p) {
    char *q = malloc(strlen(p) + 2);
    if (!q) return NULL;
    size_t o = 0;
    for (const char *s = p; *s;) {
        s += strspn(s, "/");
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.')) {
        } else if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (o > 0 && q[o - 1] != '/') o--; // drop the last component and its '/'
            if (o > 0) o--;
        } else {
            q[o++] = '/';
            memcpy(q + o, s, n);
            o += n;
        }
        s += n;
    }
    if (o == 0) q[o++] = '/';
    q[o] = 0;
    return q;
}

static char *join_path(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n), *q = NULL;
    if (p) {
        snprintf(p, n, "%s/%s", dir, rel);
        q = normalized(p);
    }
    free(p);
    return q;
}

// A path made absolute against base_dir (NULL: the current directory); "~/" is the home directory. A model value
// that does not look like a path stays a name for the registry.
static hn_status resolve_path(const hn_cfg_key *k, const char *v, const char *base_dir, const char *where,
                              char **out) {
    char cwd[4096];
    if (v[0] == '~' && v[1] == '/' && getenv("HOME")) {
        *out = join_path(getenv("HOME"), v + 2);
    } else if (v[0] == '/') {
        *out = normalized(v);
    } else {
        if (!base_dir) {
            if (!getcwd(cwd, sizeof cwd))
                return hn_fail(HN_ERR_IO, "%s: %s: cannot resolve '%s': the current directory is unknown", where,
                               k->name, v);
            base_dir = cwd;
        }
        *out = join_path(base_dir, v);
        if (*out && (k->flags & HN_CFG_MODEL)) {
            size_t n = strlen(v);
            struct stat st;
            bool pathlike = strchr(v, '/') || (n > 5 && !strcmp(v + n - 5, ".gguf")) || !stat(*out, &st);
            if (!pathlike) {
                free(*out);
                *out = strdup(v);
            }
        }
    }
    return *out ? HN_OK : hn_fail(HN_ERR_NOMEM, "%s: %s: out of memory", where, k->name);
}

static void list_clear(hn_strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static hn_status list_push(hn_strlist *l, char *owned, const char *where) {
    char **items = realloc(l->items, (size_t)(l->n + 1) * sizeof *items);
    if (!items) {
        free(owned);
        return hn_fail(HN_ERR_NOMEM, "%s: out of memory for a list", where);
    }
    l->items = items;
    l->items[l->n++] = owned;
    return HN_OK;
}

static hn_status append_item(hn_train_config *c, const hn_cfg_key *k, const char *item, const char *base_dir,
                             const char *where) {
    hn_strlist *l = field(c, k);
    char *v = NULL;
    if (is_null(item)) return hn_fail(HN_ERR_ARG, "%s: %s: an empty list item", where, k->name);
    if (k->choices) {
        int ix = choice_index(k->choices, item);
        if (ix < 0) return bad_choice(k, where, item);
        for (int i = 0; i < l->n; i++) // the same module twice means it once
            if (!strcmp(l->items[i], k->choices[ix])) return HN_OK;
        v = strdup(k->choices[ix]);
    } else if (k->flags & (HN_CFG_PATH | HN_CFG_MODEL)) {
        hn_status s = resolve_path(k, item, base_dir, where, &v);
        if (s) return s;
    } else {
        v = strdup(item);
    }
    if (!v) return hn_fail(HN_ERR_NOMEM, "%s: %s: out of memory", where, k->name);
    return list_push(l, v, where);
}

static hn_status set_key(hn_train_config *c, const hn_cfg_key *k, const char *v, const char *base_dir,
                         const char *where) {
    void *p = field(c, k);
    char *end;
    switch (k->type) {
    case HN_CFG_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < -2147483647LL || x > 2147483647LL || !in_range(k, (double)x))
            return bad_value(k, where, v);
        *(int *)p = (int)x;
        return HN_OK;
    }
    case HN_CFG_FLOAT: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x) || !in_range(k, x)) return bad_value(k, where, v);
        *(double *)p = x;
        return HN_OK;
    }
    case HN_CFG_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", NULL}, *const no[] = {"false", "no", "off", NULL};
        if (choice_index(yes, v) >= 0) *(bool *)p = true;
        else if (choice_index(no, v) >= 0) *(bool *)p = false;
        else return bad_value(k, where, v);
        return HN_OK;
    }
    case HN_CFG_ENUM: {
        int ix = choice_index(k->choices, v);
        if (ix < 0) return bad_choice(k, where, v);
        *(int *)p = ix;
        return HN_OK;
    }
    case HN_CFG_STRING: {
        char **s = p;
        char *nv = NULL;
        if (!is_null(v)) {
            if (k->flags & (HN_CFG_PATH | HN_CFG_MODEL)) {
                hn_status st = resolve_path(k, v, base_dir, where, &nv);
                if (st) return st;
            } else if (!(nv = strdup(v))) {
                return hn_fail(HN_ERR_NOMEM, "%s: %s: out of memory", where, k->name);
            }
        }
        free(*s);
        *s = nv;
        return HN_OK;
    }
    case HN_CFG_LIST: {
        list_clear(p);
        if (is_null(v)) return HN_OK;
        // "a,b" or "[a, b]": items split on commas, blanks around them dropped.
        size_t n = strlen(v);
        const char *s = v, *e = v + n;
        if (n >= 2 && v[0] == '[' && v[n - 1] == ']') s++, e--;
        while (s <= e) {
            const char *comma = memchr(s, ',', (size_t)(e - s));
            const char *stop = comma ? comma : e, *a = s, *b = stop;
            while (a < b && isspace((unsigned char)*a)) a++;
            while (b > a && isspace((unsigned char)b[-1])) b--;
            char *item = strndup(a, (size_t)(b - a));
            if (!item) return hn_fail(HN_ERR_NOMEM, "%s: %s: out of memory", where, k->name);
            hn_status st = append_item(c, k, item, base_dir, where);
            free(item);
            if (st) return st;
            s = stop + 1;
        }
        return HN_OK;
    }
    default:
        return hn_fail(HN_ERR_ARG, "%s: %s: unknown key type", where, k->name);
    }
}

static hn_status unknown_key(const char *where, const char *key) {
    char s[200];
    const char *sug = hn_train_key_suggest(key);
    if (sug) return hn_fail(HN_ERR_ARG, "%s: unknown key '%s' (did you mean '%s'?)", where, shown(key, s), sug);
    return hn_fail(HN_ERR_ARG, "%s: unknown key '%s' (hone train --help-recipe lists the keys)", where, shown(key, s));
}

hn_status hn_train_config_set(hn_train_config *c, const char *key, const char *value, const char *base_dir,
                              const char *where) {
    const hn_cfg_key *k = hn_train_key_find(key);
    if (!k) return unknown_key(where, key);
    return set_key(c, k, value, base_dir, where);
}

hn_status hn_train_config_set_arg(hn_train_config *c, const char *kv, const char *base_dir) {
    const char *eq = strchr(kv, '=');
    char s[200];
    if (!eq || eq == kv)
        return hn_fail(HN_ERR_ARG, "--set expects key=value, got '%s'", shown(kv, s));
    char key[128];
    size_t n = (size_t)(eq - kv);
    if (n >= sizeof key) return unknown_key("--set", kv);
    memcpy(key, kv, n);
    key[n] = 0;
    return hn_train_config_set(c, key, eq + 1, base_dir, "--set");
}

hn_status hn_train_config_append(hn_train_config *c, const char *key, const char *item, const char *base_dir,
                                 const char *where) {
    const hn_cfg_key *k = hn_train_key_find(key);
    if (!k) return unknown_key(where, key);
    if (k->type != HN_CFG_LIST) return set_key(c, k, item, base_dir, where);
    return append_item(c, k, item, base_dir, where);
}

void hn_train_config_clear(hn_train_config *c, const char *key) {
    const hn_cfg_key *k = hn_train_key_find(key);
    if (!k) return;
    if (k->type == HN_CFG_LIST) list_clear(field(c, k));
    if (k->type == HN_CFG_STRING) {
        free(*(char **)field(c, k));
        *(char **)field(c, k) = NULL;
    }
}

// ---- whole configurations

void hn_train_config_init(hn_train_config *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        // The table's defaults are tested to parse (test_config), so a failure here is a programming error.
        if (k->def && set_key(c, k, k->def, "/", "default")) abort();
    }
}

void hn_train_config_deinit(hn_train_config *c) {
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        if (k->type == HN_CFG_LIST) list_clear(field(c, k));
        if (k->type == HN_CFG_STRING) free(*(char **)field(c, k));
    }
    memset(c, 0, sizeof *c);
}

hn_status hn_train_config_copy(hn_train_config *dst, const hn_train_config *src) {
    memcpy(dst, src, sizeof *dst);
    // Owned pointers first become NULL in dst, so that a failure part-way leaves something deinit can free.
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        if (k->type == HN_CFG_STRING) *(char **)field(dst, k) = NULL;
        if (k->type == HN_CFG_LIST) *(hn_strlist *)field(dst, k) = (hn_strlist){0};
    }
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        if (k->type == HN_CFG_STRING && *(char *const *)cfield(src, k)) {
            if (!(*(char **)field(dst, k) = strdup(*(char *const *)cfield(src, k)))) goto nomem;
        } else if (k->type == HN_CFG_LIST) {
            const hn_strlist *l = cfield(src, k);
            for (int j = 0; j < l->n; j++) {
                char *v = strdup(l->items[j]);
                if (!v || list_push(field(dst, k), v, "copy")) goto nomem;
            }
        }
    }
    return HN_OK;
nomem:
    hn_train_config_deinit(dst);
    return hn_fail(HN_ERR_NOMEM, "out of memory copying a training configuration");
}

hn_status hn_train_config_validate(const hn_train_config *c) {
    char e[400];
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        const void *p = cfield(c, k);
        bool bad = false;
        if (k->type == HN_CFG_INT) bad = !in_range(k, *(const int *)p);
        if (k->type == HN_CFG_FLOAT) bad = !isfinite(*(const double *)p) || !in_range(k, *(const double *)p);
        if (k->type == HN_CFG_ENUM) bad = *(const int *)p < 0 || *(const int *)p >= n_choices(k);
        if (bad) return hn_fail(HN_ERR_ARG, "%s: expected %s", k->name, hn_train_key_expected(k, e));
        bool unset = (k->type == HN_CFG_STRING && !*(char *const *)p) ||
                     (k->type == HN_CFG_LIST && ((const hn_strlist *)p)->n == 0);
        if ((k->flags & HN_CFG_REQUIRED) && unset) {
            // "no model given (set `model` in the recipe or give -m MODEL)"
            char give[64] = "";
            const char *mv = k->type == HN_CFG_LIST ? "FILE" : k->flags & HN_CFG_MODEL ? "MODEL" : "DIR";
            if (k->flag) snprintf(give, sizeof give, " or give %s %s", k->short_flag ? k->short_flag : k->flag, mv);
            return hn_fail(HN_ERR_ARG, "no %s given (set `%s` in the recipe%s)", k->name, k->name, give);
        }
    }
    if ((c->method == HN_METHOD_LORA || c->method == HN_METHOD_DORA) && c->lora.target_modules.n == 0)
        return hn_fail(HN_ERR_ARG, "lora.target_modules is empty: name the layers to adapt (or all-linear)");
    if (c->warmup_steps > 0 && c->warmup_ratio > 0)
        return hn_fail(HN_ERR_ARG, "warmup_steps and warmup_ratio are both set: give one of them");
    if (c->val_data.n > 0 && c->val_split > 0)
        return hn_fail(HN_ERR_ARG, "val_data and val_split are both set: give one of them");
    if (c->early_stopping_patience > 0 && c->val_data.n == 0 && c->val_split == 0)
        return hn_fail(HN_ERR_ARG, "early_stopping_patience needs validation data: set val_data or val_split");
    return HN_OK;
}

const char *hn_train_config_diff(const hn_train_config *a, const hn_train_config *b) {
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        const void *x = cfield(a, k), *y = cfield(b, k);
        bool same = true;
        switch (k->type) {
        case HN_CFG_INT:
        case HN_CFG_ENUM: same = *(const int *)x == *(const int *)y; break;
        case HN_CFG_FLOAT: same = *(const double *)x == *(const double *)y; break;
        case HN_CFG_BOOL: same = *(const bool *)x == *(const bool *)y; break;
        case HN_CFG_STRING: {
            const char *s = *(char *const *)x, *t = *(char *const *)y;
            same = (!s && !t) || (s && t && !strcmp(s, t));
            break;
        }
        case HN_CFG_LIST: {
            const hn_strlist *l = x, *m = y;
            same = l->n == m->n;
            for (int j = 0; same && j < l->n; j++) same = !strcmp(l->items[j], m->items[j]);
            break;
        }
        default: break;
        }
        if (!same) return k->name;
    }
    return NULL;
}

// ---- printing

// The shortest decimal that reads back as exactly v.
static void fmt_double(char buf[40], double v) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, 40, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

// A YAML double-quoted scalar: only '"', '\' and control characters need escapes.
static void yaml_quoted(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') sb_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f) sb_printf(b, "\\x%02x", ch);
        else sb_printf(b, "%c", ch);
    }
    sb_printf(b, "\"");
}

static void value_text(sbuf *b, const hn_train_config *c, const hn_cfg_key *k) {
    const void *p = cfield(c, k);
    char num[40];
    switch (k->type) {
    case HN_CFG_INT: sb_printf(b, "%d", *(const int *)p); break;
    case HN_CFG_FLOAT: fmt_double(num, *(const double *)p), sb_printf(b, "%s", num); break;
    case HN_CFG_BOOL: sb_printf(b, "%s", *(const bool *)p ? "true" : "false"); break;
    case HN_CFG_ENUM: sb_printf(b, "%s", k->choices[*(const int *)p]); break;
    case HN_CFG_STRING:
        if (*(char *const *)p) yaml_quoted(b, *(char *const *)p);
        else sb_printf(b, "null");
        break;
    case HN_CFG_LIST: {
        const hn_strlist *l = p;
        sb_printf(b, "[");
        for (int i = 0; i < l->n; i++) {
            if (i) sb_printf(b, ", ");
            yaml_quoted(b, l->items[i]);
        }
        sb_printf(b, "]");
        break;
    }
    default: break;
    }
}

char *hn_train_config_to_yaml(const hn_train_config *c) {
    sbuf b = {0};
    sb_printf(&b, "# hone train recipe (hone train --help-recipe describes every key)\n");
    const char *section = NULL;
    size_t section_len = 0;
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        const char *dot = strchr(k->name, '.');
        size_t len = dot ? (size_t)(dot - k->name) : 0;
        if (dot && !(section && len == section_len && !strncmp(section, k->name, len)))
            sb_printf(&b, "%.*s:\n", (int)len, k->name);
        section = dot ? k->name : NULL;
        section_len = len;
        sb_printf(&b, "%s%s: ", dot ? "  " : "", dot ? dot + 1 : k->name);
        value_text(&b, c, k);
        sb_printf(&b, "\n");
    }
    if (b.failed) {
        free(b.s);
        hn_fail(HN_ERR_NOMEM, "out of memory printing a training configuration");
        return NULL;
    }
    return b.s;
}

char *hn_train_config_help(void) {
    sbuf b = {0};
    char e[400];
    sb_printf(&b, "Recipe keys (YAML). A dotted key may be nested: `lora.r: 16` is `lora: {r: 16}`. A list takes a\n"
                  "YAML sequence or a comma-separated string. Relative paths are relative to the recipe's directory\n"
                  "(to the current directory in flags and --set).\n\n");
    for (int i = 0; i < hn_train_key_count; i++) {
        const hn_cfg_key *k = &hn_train_keys[i];
        sb_printf(&b, "%s  %s", k->name, hn_cfg_type_name(k->type));
        for (int j = 0; k->choices && k->choices[j]; j++)
            sb_printf(&b, "%s%s", j ? "|" : k->type == HN_CFG_LIST ? " of " : " ", k->choices[j]);
        if (k->range) sb_printf(&b, "%s", range_text(k, e));
        if (k->flags & HN_CFG_REQUIRED) sb_printf(&b, ", required");
        else if (k->def) {
            sb_printf(&b, ", default ");
            hn_train_config d;
            hn_train_config_init(&d);
            value_text(&b, &d, k);
            hn_train_config_deinit(&d);
        } else
            sb_printf(&b, ", default empty");
        if (k->flag)
            sb_printf(&b, "; flag %s%s%s", k->short_flag ? k->short_flag : "", k->short_flag ? "/" : "", k->flag);
        sb_printf(&b, "\n    %s\n", k->help);
    }
    if (b.failed) {
        free(b.s);
        hn_fail(HN_ERR_NOMEM, "out of memory printing the recipe keys");
        return NULL;
    }
    return b.s;
}

// train/config.h — every training setting in one struct, described by one key table.
//
// The table (hn_train_keys) is the single place a key is written: its name, type, field, default, allowed values,
// command-line flag and description. Defaults, recipe parsing, `--set`, the recipe-free flags, validation,
// `hone train --help-recipe`, printing as YAML and comparing two configurations are all derived from it.
//
//   hn_train_config c;
//   hn_train_config_init(&c);                                   // every default from the table
//   hn_status s = hn_train_config_load(&c, "recipe.yaml");      // a recipe over the defaults
//   if (!s) s = hn_train_config_set_arg(&c, "lora.r=16", NULL); // --set, relative paths from the cwd
//   if (!s) s = hn_train_config_validate(&c);
//   if (s) fprintf(stderr, "hone: %s\n", hn_errmsg());
//   hn_train_config_deinit(&c);
//
// Keys are dotted where a section groups them (`lora.r`); a recipe may write them nested (`lora: {r: 16}`) or
// dotted (`lora.r: 16`). Paths are made absolute when set: relative to the recipe's directory in a recipe, to the
// current directory from the command line, so a printed configuration means the same thing wherever it is loaded.
#ifndef HN_TRAIN_CONFIG_H
#define HN_TRAIN_CONFIG_H

#include "base/base.h"
#include "train/data.h" // hn_data_format: the dataset shapes, named as the `format` key names them

// The methods as `method` names them (adapt/method.h has each under the same name; full has none).
typedef enum {
    HN_METHOD_LORA, HN_METHOD_FULL, HN_METHOD_DORA, HN_METHOD_IA3, HN_METHOD_PROMPT_TUNING, HN_METHOD_P_TUNING,
    HN_METHOD_PREFIX_TUNING, HN_METHOD_ADAPTER_HOULSBY, HN_METHOD_ADAPTER_PFEIFFER, HN_METHOD_COUNT
} hn_train_method;
extern const char *const hn_train_method_names[]; // "lora", "full", "dora", "ia3", "prompt-tuning", ...
typedef enum { HN_ENCODER_MLP, HN_ENCODER_LSTM, HN_ENCODER_COUNT } hn_prompt_encoder;
typedef enum { HN_ACT_RELU, HN_ACT_GELU, HN_ACT_SILU, HN_ACT_TANH, HN_ACT_COUNT } hn_adapter_act;
extern const char *const hn_adapter_act_names[]; // "relu", "gelu", "silu", "tanh"
typedef enum { HN_SCHED_COSINE, HN_SCHED_LINEAR, HN_SCHED_CONSTANT, HN_SCHED_COUNT } hn_lr_sched;
typedef enum { HN_LOSS_ON_COMPLETION, HN_LOSS_ON_ALL, HN_LOSS_ON_COUNT } hn_loss_on;
typedef enum { HN_NAN_STOP, HN_NAN_SKIP, HN_NAN_POLICY_COUNT } hn_nan_policy;
typedef enum { HN_LORA_INIT_DEFAULT, HN_LORA_INIT_GAUSSIAN, HN_LORA_INIT_COUNT } hn_lora_init_kind;
typedef enum { HN_LOAD_AS_STORED, HN_LOAD_NF4, HN_LOAD_QUANT_COUNT } hn_load_quant; // hn_model_params.quantize

typedef struct {
    char **items; // each malloc'd
    int n;
} hn_strlist;

// Owned strings and lists are malloc'd; hn_train_config_deinit frees them. NULL string = not set.
typedef struct {
    // run
    char *model;      // an absolute path (GGUF file or Hugging Face directory) or a pulled model name
    hn_load_quant quantize; // nf4: the base's linear weights re-quantized at load (QLoRA)
    hn_train_method method;
    char *output_dir; // absolute
    bool resume;
    int seed;
    int threads;      // 0: the number of physical cores
    int log_every, eval_every, save_every;
    // data
    hn_strlist data, val_data; // absolute paths
    double val_split;
    hn_data_format format;
    int max_len;
    bool packing, shuffle, skip_bad_lines;
    hn_loss_on loss_on;
    // optimization
    double lr, weight_decay, adam_beta1, adam_beta2, adam_epsilon, warmup_ratio, max_grad_norm;
    int warmup_steps, epochs, max_steps, batch_size, grad_accum, early_stopping_patience;
    hn_lr_sched lr_scheduler;
    bool grad_checkpointing;
    hn_nan_policy nan_policy;
    // method: lora
    struct {
        int r;
        double alpha, dropout;
        hn_strlist target_modules; // names from hn_lora_target_names; "all-linear" means all seven
        bool use_rslora;
        hn_lora_init_kind init;
    } lora;
    // methods with virtual positions: prompt tuning, P-tuning, prefix tuning
    struct {
        int num_virtual_tokens;
        char *init_text;         // prompt tuning: initialise from this text's token embeddings (NULL: random)
        int encoder_hidden_size; // P-tuning's encoder, prefix tuning's projection (0: the model's width)
        hn_prompt_encoder encoder;
        bool projection;         // prefix tuning: PEFT's prefix_projection
    } prompt;
    struct {
        hn_strlist target_modules, feedforward_modules; // empty: PEFT's defaults for the architecture
    } ia3;
    struct {
        int size, reduction_factor; // bottleneck width: size, or the model's width / reduction_factor
        hn_adapter_act non_linearity;
    } adapter;
} hn_train_config;

// ---- the key table

typedef enum {
    HN_CFG_INT,
    HN_CFG_FLOAT,
    HN_CFG_BOOL,
    HN_CFG_STRING,
    HN_CFG_ENUM,
    HN_CFG_LIST,
    HN_CFG_TYPE_COUNT
} hn_cfg_type;

enum {
    HN_CFG_PATH = 1u,     // a file or directory: made absolute when set
    HN_CFG_MODEL = 2u,    // a path when it looks like one (has a '/', ends in .gguf, or exists), else a model name
    HN_CFG_REQUIRED = 4u, // validation fails while it is unset / empty
};

typedef struct {
    const char *name;             // "lora.r"
    hn_cfg_type type;             // enums are stored as an int-sized C enum; lists as hn_strlist
    size_t offset;                // of the field in hn_train_config
    const char *def;              // the default as a recipe would write it; NULL: unset
    const char *const *choices;   // ENUM: the names in the C enum's order; LIST: allowed items; NULL-terminated
    const char *range;            // INT/FLOAT: "[1,)", "(0,1)", "[0,1)": brackets include, parentheses exclude
    const char *flag, *short_flag; // the recipe-free flag ("--rank"), or NULL
    const char *aka;              // what other tools call it ("learning_rate|lora_r"): used for suggestions
    unsigned flags;               // HN_CFG_PATH, HN_CFG_MODEL, HN_CFG_REQUIRED
    const char *help;             // one line
} hn_cfg_key;

extern const hn_cfg_key hn_train_keys[];
extern const int hn_train_key_count;
extern const char *const hn_lora_target_names[]; // q_proj k_proj v_proj o_proj gate_proj up_proj down_proj all-linear

const hn_cfg_key *hn_train_key_find(const char *name); // NULL if unknown
const char *hn_cfg_type_name(hn_cfg_type t);           // "int", "float", "bool", "string", "enum", "list"
// What a key takes, for messages: "an integer >= 1", "a number >= 0 and < 1", "one of cosine, linear, constant".
const char *hn_train_key_expected(const hn_cfg_key *k, char buf[400]);
// The known key closest to an unknown name (edit distance, also over other tools' names), or NULL if none is close.
const char *hn_train_key_suggest(const char *unknown);

// ---- the configuration

void hn_train_config_init(hn_train_config *c); // the table's defaults
void hn_train_config_deinit(hn_train_config *c);
hn_status hn_train_config_copy(hn_train_config *dst, const hn_train_config *src); // dst uninitialised

// Sets one key from text, with the recipe's rules (type, range, allowed values; a list value is "a,b" or "[a, b]",
// "" or "null" is null: unset / empty). Relative paths are taken from base_dir (NULL: the current directory).
// `where` starts every error message ("recipe.yaml:3:5", "--set", "--rank").
hn_status hn_train_config_set(hn_train_config *c, const char *key, const char *value, const char *base_dir,
                              const char *where);
// `--set key=value`: an unknown key is named with the closest known one.
hn_status hn_train_config_set_arg(hn_train_config *c, const char *key_eq_value, const char *base_dir);
// Appends one item to a list key (a repeated --data FILE); with the set rules for an item.
hn_status hn_train_config_append(hn_train_config *c, const char *key, const char *item, const char *base_dir,
                                 const char *where);
// Clears a key back to unset/empty (strings and lists) — used before a command line replaces a recipe's list.
void hn_train_config_clear(hn_train_config *c, const char *key);

// Reads a YAML recipe (train/recipe.c) and applies its keys over c. Errors name the file, line and column.
hn_status hn_train_config_load(hn_train_config *c, const char *path);
// The same from text in memory; `name` stands for the file in messages and base_dir resolves relative paths.
hn_status hn_train_config_load_text(hn_train_config *c, const char *text, size_t len, const char *name,
                                    const char *base_dir);

// Ranges and allowed values of every key, required keys, and the rules between keys.
hn_status hn_train_config_validate(const hn_train_config *c);

// The configuration as a YAML recipe that loads back to an equal configuration (malloc'd; NULL on no memory).
char *hn_train_config_to_yaml(const hn_train_config *c);
// The name of the first key whose values differ, or NULL when equal (e.g. a resumed run against its checkpoint).
const char *hn_train_config_diff(const hn_train_config *a, const hn_train_config *b);
// Every key with its type, default, allowed values, flag and description (malloc'd; `hone train --help-recipe`).
char *hn_train_config_help(void);

#endif

// adapt/method.h — an adaptation method as training, the command line and serving see it (DESIGN.md section 10):
// a value with a name, its trainable tensors and what it hangs on the model (hn_linear_ext on linear layers,
// hn_model_ext for virtual positions), made fresh from a configuration or loaded from a saved directory, saved,
// merged into the base where the method allows it, switched off and on, detached. Callers never know which method
// they hold.
//
//   const hn_method_ops *ops = hn_method_find("ia3");
//   hn_method_config cfg = hn_method_default_config();
//   hn_method *me;
//   if (ops->attach_new(&me, m, &cfg)) ...;               // attaches to m
//   ... train hn_method_params(me) ...
//   if (hn_method_save(me, "run/adapter")) ...;            // PEFT's directory, or hone's own format
//   hn_method_destroy(me);                                 // detaches
//   if (hn_method_load(&me, m, "run/adapter")) ...;        // any method's saved directory, found by its config
#ifndef HN_METHOD_H
#define HN_METHOD_H

#include "adapt/lora.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "tensor/param.h"

// Every method's settings in one struct; each method reads its part (PEFT's names in the comments).
typedef struct {
    uint64_t seed; // random initialisation
    // Virtual positions: prompt tuning, P-tuning, prefix tuning.
    int num_virtual_tokens;   // num_virtual_tokens; default 20
    const char *init_text;    // prompt tuning: prompt_tuning_init_text (init from its tokens' embeddings); prefix
                              // tuning: the keys and values its tokens leave in a KV cache (Li & Liang's init from
                              // real activations); NULL: random (PEFT's init)
    int encoder_hidden_size;  // P-tuning's prompt encoder, prefix tuning's projection: encoder_hidden_size;
                              // default 0: the model's width
    bool encoder_lstm;        // P-tuning: encoder_reparameterization_type LSTM (default MLP)
    bool prefix_projection;   // prefix tuning: prefix_projection (a reparameterisation MLP while training)
    // IA3: target_modules / feedforward_modules as masks of hn_proj bits; 0: PEFT's defaults for the architecture.
    unsigned ia3_targets, ia3_feedforward;
    // Bottleneck adapters: the bottleneck width (0: width / reduction_factor), reduction_factor (default 16),
    // non_linearity ("relu" default, "gelu", "silu"/"swish", "tanh"); init_scale of the up-projection (0: zeros).
    int adapter_size, adapter_reduction;
    const char *adapter_act;
    float adapter_init_scale;
    // LoRA and DoRA.
    hn_lora_config lora;
} hn_method_config;

hn_method_config hn_method_default_config(void);

typedef struct hn_method hn_method;
typedef struct {
    const char *name;      // as --method spells it: "ia3", "prompt-tuning", "adapter-houlsby", ...
    const char *peft_type; // adapter_config.json's peft_type for the methods PEFT has, NULL for hone's own formats
    // A fresh adapter on m (attached); HN_ERR_UNSUPPORTED with the reason where the method does not apply to m.
    hn_status (*attach_new)(hn_method **out, hn_model *m, const hn_method_config *cfg);
    // An adapter saved by save (or by PEFT), attached to m; checks the base record and every shape.
    hn_status (*load)(hn_method **out, hn_model *m, const char *dir);
    // Writes dir (created if needed): adapter_config.json + adapter_model.safetensors (PEFT's names and keys, the
    // base record in the safetensors metadata), or hone's own format for methods PEFT lacks.
    hn_status (*save)(const hn_method *me, const char *dir);
    // dense (out, in): the dequantized base weight of (layer, proj) on entry, the merged weight on return (a layer
    // the method does not touch: unchanged, HN_OK); NULL for methods that cannot be merged (hn_method_merge refuses
    // them naming the method and why).
    hn_status (*merge)(const hn_method *me, int layer, hn_proj proj, float *dense);
    // Multiplies the adapter's effect (LoRA-family methods: --adapter PATH:SCALE); NULL: only 1 is accepted.
    void (*set_scale)(hn_method *me, float scale);
    hn_param_list *(*params)(hn_method *me);
    void (*set_enabled)(hn_method *me, bool on); // off: the model computes as if it were not attached
    void (*destroy)(hn_method *me);              // detaches and frees
    // bias (out): the base bias of (layer, proj) on entry, the merged bias on return, for a layer that has one
    // (IA3 scales it with the output); NULL for methods that leave biases alone (hn_method_merge_bias: unchanged).
    hn_status (*merge_bias)(const hn_method *me, int layer, hn_proj proj, float *bias);
} hn_method_ops;

// Every method's state starts with this.
struct hn_method {
    const hn_method_ops *ops;
    hn_model *m;
};

// LoRA as a method (adapt/lora.c): from an adapter already read (a llama.cpp LoRA GGUF, a PEFT directory read with
// hn_peft_read), and the hn_lora inside a LoRA method (NULL for any other method), for its GGUF export.
hn_status hn_method_lora_from(hn_method **out, hn_model *m, const hn_adapter *a);
hn_lora *hn_method_as_lora(hn_method *me);

// The methods hone has, by name (NULL if unknown); hn_method_names lists them ("lora, dora, ia3, ...").
const hn_method_ops *hn_method_find(const char *name);
const char *hn_method_names(void);

// Reads dir's adapter_config.json (peft_type, and for LORA use_dora) or hone_adapter.json (hone's own formats) and
// attaches what it holds to m.
hn_status hn_method_load(hn_method **out, hn_model *m, const char *dir);
static inline hn_status hn_method_save(const hn_method *me, const char *dir) { return me->ops->save(me, dir); }
static inline hn_param_list *hn_method_params(hn_method *me) { return me->ops->params(me); }
static inline void hn_method_set_enabled(hn_method *me, bool on) { me->ops->set_enabled(me, on); }
hn_status hn_method_merge(const hn_method *me, int layer, hn_proj proj, float *dense);
hn_status hn_method_merge_bias(const hn_method *me, int layer, hn_proj proj, float *bias); // after hn_method_merge
hn_status hn_method_set_scale(hn_method *me, float scale); // HN_ERR_UNSUPPORTED for a scale != 1 without set_scale
void hn_method_destroy(hn_method *me);                      // NULL is fine

// ---- for the methods' files

// The linear layer of (layer, proj), or NULL when the architecture has no such layer.
hn_linear *hn_method_linear(hn_model *m, int layer, hn_proj proj);
// The module's path in transformers' model classes (PEFT's tensor names without "base_model.model."): Llama's
// model.layers.N.self_attn.q_proj, GPT-2's transformer.h.N.attn.c_attn, BERT's bert.encoder.layer.N.attention.self.
// query, DistilBERT's distilbert.transformer.layer.N.attention.q_lin.
void hn_method_module_path(char *dst, size_t n, const hn_model *m, int layer, hn_proj proj);
// The module's name as PEFT's target_modules spells it: Llama's q_proj ..., GPT-2's c_attn, c_proj, c_fc; BERT's
// query, key, value, attention.output.dense, intermediate.dense, output.dense (PEFT would also match "dense" on the
// pooler, which hone does not adapt); DistilBERT's q_lin, k_lin, v_lin, out_lin, lin1, lin2. NULL: no such layer.
const char *hn_method_target_name(const hn_model *m, hn_proj proj);
// The heads whose output rows of (layer's) proj hone keeps in GGUF's rotary order and files in HF's (io/hf.h
// hn_hf_permute_rows): Llama's q (n_head) and k (n_head_kv); 0 for every other projection and architecture (Qwen2's
// converter does not permute: its rotary pairs are the halves).
int hn_method_permuted_heads(const hn_model *m, hn_proj proj);
// Parses "base_model.model.<path>.<suffix>" back to (layer, proj) for m's architecture; false if it is not one.
bool hn_method_parse_module(const hn_model *m, const char *name, const char *suffix, int *layer, hn_proj *proj);

// The base record (hone.base_name, hone.base_architecture, hone.base_hash) into a writer's metadata, and checked
// against m from a file read back (a file without one, e.g. PEFT's, is accepted).
hn_status hn_method_write_base(hn_safetensors_writer *w, const hn_model *m);
hn_status hn_method_check_base(const hn_safetensors *st, const hn_model *m);

// adapter_config.json: a new object with the keys every PEFT config has (peft_type, task_type CAUSAL_LM or
// FEATURE_EXTRACTION for encoders, base_model_name_or_path, inference_mode true, revision null), to which a method
// adds its own; written atomically into dir (created if needed). The reader returns the parsed object and checks
// peft_type (one line naming the file and the key on a mismatch). Objects are jansson's json_t.
struct json_t;
struct json_t *hn_method_peft_config(const hn_model *m, const char *peft_type);
hn_status hn_method_write_config(struct json_t *cfg, const char *dir); // consumes cfg
hn_status hn_method_read_config(const char *dir, const char *peft_type, struct json_t **out);

#endif

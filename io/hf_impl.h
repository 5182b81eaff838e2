// io/hf_impl.h — private to io/hf.c and io/hf_arch.c: the loader's state and one descriptor per architecture
// (its config.json reader and its name table).
#ifndef HN_HF_IMPL_H
#define HN_HF_IMPL_H

#include "io/hf.h"

#include <jansson.h>

// What a tensor needs on its way into the GGUF view (and back out, reversed, on export).
typedef enum {
    HF_AS_IS,
    HF_PERMUTE_Q, // Llama q_proj rows into GGUF's rotary order (n_head heads)
    HF_PERMUTE_K, // the same for k_proj (n_head_kv heads)
    HF_TRANSPOSE, // GPT-2's Conv1D keeps weights as (in, out): GGUF wants (out, in) rows
} hf_transform;

typedef struct {
    const char *hf, *gguf;
    hf_transform tr;
} hf_name;

typedef struct {
    char key[64];
    hn_gguf_type type; // U32, F32, BOOL or STRING
    uint32_t u32;
    float f32;
    bool b;
    char *str; // borrowed (from the config JSON or static) until the view's metadata is encoded
} hf_meta;

enum { HF_MAX_META = 40 };

struct hf_arch;

typedef struct {
    const char *dir;
    char base[256]; // the directory's last component: the model's name when config.json has none
    char license[128]; // from README.md's front matter, or ""
    json_t *cfg;
    json_t *extra; // tokenizer_config.json, kept alive until the metadata is encoded (the chat template)
    hf_meta m[HF_MAX_META];
    int n_meta;
    const struct hf_arch *arch;
    // Set by the architecture's config reader:
    bool tied;           // the output head reuses token_embd (an lm_head in the file is dropped)
    uint32_t n_head, n_head_kv, n_vocab;
    float *rope_freqs; // Llama 3 rotary scaling: head_dim/2 factors, the view's rope_freqs.weight (owned), or NULL
    int n_rope_freqs;
} hf_loader;

typedef struct hf_arch {
    const char *name;              // general.architecture
    const char *model_types[3];    // config.json "model_type" values it reads
    const char *strip;             // a prefix HF names may carry (model classes with a head add it), or NULL
    const char *layer_prefix;      // per-layer HF names: layer_prefix N "." rest
    const hf_name *globals, *layers;
    size_t n_globals, n_layers;
    const char *const *ignore;     // names (after strip) or per-layer rests dropped silently; "x*" = prefix x
    bool has_head;                 // a language-model head (output.weight or tied)
    hn_status (*config)(hf_loader *L);
} hf_arch;

const hf_arch *hf_arch_by_model_type(const char *model_type); // NULL if unknown
const hf_arch *hf_arch_by_name(const char *arch);             // by general.architecture; NULL if unknown
const char *hf_arch_known(void); // "llama, qwen2, gpt2, bert, distilbert"
// An HF tensor name to its GGUF name and transform: 1 mapped, 0 unknown, -1 known but not used (ignored).
int hf_map_to_gguf(const hf_arch *a, const char *hf, char *out, size_t cap, hf_transform *tr);
// A GGUF name back to the canonical HF name (as the bare model class saves it, plus lm_head): false if unknown.
bool hf_map_from_gguf(const hf_arch *a, const char *gguf, char *out, size_t cap, hf_transform *tr);

// Metadata and config.json helpers of io/hf.c.
void hf_put_u32(hf_loader *L, const char *key, uint32_t v);
void hf_put_f32(hf_loader *L, const char *key, float v);
void hf_put_bool(hf_loader *L, const char *key, bool v);
void hf_put_str(hf_loader *L, const char *key, const char *v);
// A config integer (required unless def >= 0, which is then the default) in [1, 2^31).
hn_status hf_cfg_int(hf_loader *L, const char *key, long long def, uint32_t *out);
// A positive config number (required unless def >= 0).
hn_status hf_cfg_num(hf_loader *L, json_t *obj, const char *key, double def, double *out);
// A config string that must be one of `allowed` (NULL-terminated) when present; def when absent.
hn_status hf_cfg_choice(hf_loader *L, const char *key, const char *const *allowed, const char *def,
                        const char **out);
// general.name from _name_or_path or the directory name.
void hf_put_name(hf_loader *L);

#endif

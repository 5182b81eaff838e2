// io/chat.h — chat templates: recognised from `tokenizer.chat_template` and rendered in C (no Jinja engine).
//
//   hn_chat_msg msgs[] = {{"user", "What is 2+2?"}};
//   char *prompt;
//   hn_chat_render(HN_CHAT_CHATML, NULL, msgs, 1, true, &prompt);  // adds "<|im_start|>assistant\n"
#ifndef HN_CHAT_H
#define HN_CHAT_H

#include "io/gguf.h"

// The formats hone renders. A template's leading BOS token is not rendered: the tokenizer adds it (add_bos_token),
// so a rendered conversation is tokenized with HN_TOK_ADD_BOS as any prompt is.
typedef enum {
    HN_CHAT_CHATML, // <|im_start|>role\ncontent<|im_end|>\n (SmolLM2, Qwen2)
    HN_CHAT_LLAMA2, // [INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST] assistant </s><s>[INST] ... (Llama 2 chat)
    HN_CHAT_LLAMA3, // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> (Llama 3 instruct)
    HN_CHAT_TEMPLATE_COUNT
} hn_chat_template;

typedef struct {
    const char *role; // "system", "user", "assistant"
    const char *content;
} hn_chat_msg;

// Which template a model's metadata asks for. An unrecognised or absent template falls back to ChatML with a
// warning (hn_warn) that names the fallback. *default_system is the system prompt the template adds when the
// conversation has none (malloc'd, caller frees; NULL if none).
hn_chat_template hn_chat_detect(const hn_gguf *g, char **default_system);
const char *hn_chat_template_name(hn_chat_template t);
// Whether a template (Jinja text) is one of the formats hone renders.
bool hn_chat_known(const char *tmpl, size_t len);

// Renders a conversation to text. add_generation_prompt appends the opening of an assistant turn.
// default_system (may be NULL) is inserted first when msgs has no system message. *out is malloc'd.
hn_status hn_chat_render(hn_chat_template t, const char *default_system, const hn_chat_msg *msgs, int n,
                         bool add_generation_prompt, char **out);

// Where each part of a rendered conversation lies, for training masks: the spans tile the rendered text in order.
typedef enum {
    HN_CHAT_SPAN_MARKUP,  // template text around the messages (role headers, separators, the generation prompt)
    HN_CHAT_SPAN_CONTENT, // a message's content, verbatim (tokenize it as plain text: it is the user's data)
    HN_CHAT_SPAN_END,     // the end-of-turn marker right after a content (ChatML: "<|im_end|>", Llama 3:
                          // "<|eot_id|>", Llama 2: "</s>" after an assistant turn): what a model emits to stop, so
                          // training puts it in the loss of an assistant turn; what follows it is MARKUP
    HN_CHAT_SPAN_KIND_COUNT
} hn_chat_span_kind;

typedef struct {
    size_t off, len; // bytes of the rendered text
    int msg;         // index into msgs; -1 for the default system turn and the generation prompt
    hn_chat_span_kind kind;
} hn_chat_span;

// hn_chat_render, and the spans that tile *out (*spans malloc'd, caller frees; *n_spans its length).
hn_status hn_chat_render_spans(hn_chat_template t, const char *default_system, const hn_chat_msg *msgs, int n,
                               bool add_generation_prompt, char **out, hn_chat_span **spans, int *n_spans);

#endif

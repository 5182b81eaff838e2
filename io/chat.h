// io/chat.h — chat templates: recognised from `tokenizer.chat_template` and rendered in C (no Jinja engine).
//
//   hn_chat_msg msgs[] = {{"user", "What is 2+2?"}};
//   char *prompt;
//   hn_chat_render(HN_CHAT_CHATML, NULL, msgs, 1, true, &prompt);  // adds "<|im_start|>assistant\n"
#ifndef HN_CHAT_H
#define HN_CHAT_H

#include "io/gguf.h"

typedef enum {
    HN_CHAT_CHATML, // <|im_start|>role\ncontent<|im_end|>\n
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

// Renders a conversation to text. add_generation_prompt appends the opening of an assistant turn.
// default_system (may be NULL) is inserted first when msgs has no system message. *out is malloc'd.
hn_status hn_chat_render(hn_chat_template t, const char *default_system, const hn_chat_msg *msgs, int n,
                         bool add_generation_prompt, char **out);

#endif

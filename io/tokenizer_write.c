// io/tokenizer_write.c — a tokenizer written out: the GGUF tokenizer.ggml.* keys (llama.cpp's names and
// conventions) and a Hugging Face tokenizer.json + tokenizer_config.json.
#include "io/tokenizer_impl.h"

hn_status hn_tokenizer_to_gguf(const hn_tokenizer *tk, hn_gguf_writer *w) {
    return hn_fail(HN_ERR_UNSUPPORTED, "tokenizer: writing GGUF keys is not written yet");
}

hn_status hn_tokenizer_to_hf_dir(const hn_tokenizer *tk, const char *dir) {
    return hn_fail(HN_ERR_UNSUPPORTED, "%s: writing tokenizer.json is not written yet", dir);
}

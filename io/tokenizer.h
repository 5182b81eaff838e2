// io/tokenizer.h — tokenizers built from a model's metadata. For now: byte-level BPE (GGUF `tokenizer.ggml.model =
// gpt2`) with the `smollm` pre-tokenizer (every digit split, then the GPT-2 split regex through PCRE2).
//
//   hn_tokenizer *tk;
//   if (hn_tokenizer_from_gguf(&tk, &g)) ...;
//   int32_t *ids; int64_t n;
//   hn_tokenizer_encode(tk, "Hello world", -1, HN_TOK_SPECIAL, &ids, &n);   // ids: malloc'd, caller frees
//   char piece[256]; hn_tokenizer_decode_piece(tk, ids[0], ...);
//   hn_tokenizer_destroy(tk);
#ifndef HN_TOKENIZER_H
#define HN_TOKENIZER_H

#include "io/gguf.h"

typedef struct hn_tokenizer hn_tokenizer;

enum {
    HN_TOK_SPECIAL = 1 << 0, // recognise special-token text (e.g. "<|im_start|>") in the input as that token
                             // (like Hugging Face's encode(text, add_special_tokens=False)); without it, plain text
    HN_TOK_ADD_BOS = 1 << 1, // the text starts a sequence: prepend BOS if the model's metadata asks for it
                             // (tokenizer.ggml.add_bos_token and a bos id; SmolLM2's does not), as llama.cpp's
                             // add_special does. Without the flag, never a BOS.
};

hn_status hn_tokenizer_from_gguf(hn_tokenizer **out, const hn_gguf *g);
void hn_tokenizer_destroy(hn_tokenizer *tk);

// Encode len bytes of text (len < 0: NUL-terminated). *ids is malloc'd (caller frees), *n its length.
// BOS only with HN_TOK_ADD_BOS and where the metadata asks for it. Invalid UTF-8 is not an error: each maximal invalid subsequence becomes
// U+FFFD first, as Python's bytes.decode("utf-8", "replace") does (io/bpe.c says more); so decode(encode(s)) == s
// holds for valid UTF-8 (less the bytes the vocabulary has no token for, which are dropped as in Hugging Face).
hn_status hn_tokenizer_encode(const hn_tokenizer *tk, const char *text, int64_t len, int flags, int32_t **ids,
                              int64_t *n);

// The bytes a token stands for (byte-level BPE: the raw bytes, which may be a partial UTF-8 sequence).
// Returns the number of bytes (written up to cap), or -1 for an id out of range.
int hn_tokenizer_token_bytes(const hn_tokenizer *tk, int32_t id, char *buf, int cap);
// Decode a whole sequence to a malloc'd NUL-terminated string (caller frees).
hn_status hn_tokenizer_decode(const hn_tokenizer *tk, const int32_t *ids, int64_t n, char **out);
// The vocabulary entry as stored (e.g. "Ġworld"), borrowed.
const char *hn_tokenizer_piece(const hn_tokenizer *tk, int32_t id);

int32_t hn_tokenizer_n_vocab(const hn_tokenizer *tk);
int32_t hn_tokenizer_bos(const hn_tokenizer *tk); // -1 if none
int32_t hn_tokenizer_eos(const hn_tokenizer *tk);
bool hn_tokenizer_wants_bos(const hn_tokenizer *tk); // the metadata asks for BOS and the model has one
bool hn_tokenizer_is_control(const hn_tokenizer *tk, int32_t id); // a control token, e.g. <|im_start|>
bool hn_tokenizer_is_eog(const hn_tokenizer *tk, int32_t id); // end of generation: eos, eot, <|im_end|>, ...
int32_t hn_tokenizer_find(const hn_tokenizer *tk, const char *piece); // id of an exact vocabulary entry, or -1

#endif

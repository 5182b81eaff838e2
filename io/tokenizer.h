// io/tokenizer.h — tokenizers built from a model's metadata (GGUF tokenizer.ggml.*) or from a Hugging Face directory
// (tokenizer.json + tokenizer_config.json, vocab.json + merges.txt, or a BERT vocab.txt), and written back to either.
// Three families, each equal to Hugging Face `tokenizers` on the golden corpus (tests/test_tokenizer.c,
// tests/test_tokenizer_hf.c):
//   gpt2  byte-level BPE (SmolLM2, GPT-2, Llama 3, Qwen2): the pre-tokenizer's split regexes run through PCRE2;
//   llama BPE over characters with byte fallback (<0xXX> tokens) and "▁" for spaces (Llama 2, TinyLlama);
//   bert  WordPiece with BERT's normaliser (clean text, CJK splitting, NFD accent stripping, lower case) and
//         pre-tokenizer (whitespace, punctuation), greedy longest match with "##" continuations.
//
//   hn_tokenizer *tk;
//   if (hn_tokenizer_from_hf_dir(&tk, "all-MiniLM-L6-v2")) ...;             // or hn_tokenizer_from_gguf(&tk, &g)
//   int32_t *ids; int64_t n;
//   hn_tokenizer_encode(tk, "Hello world", -1, HN_TOK_SPECIAL | HN_TOK_ADD_SPECIAL, &ids, &n); // malloc'd
//   // ids: [CLS] hello world [SEP] = 101 7592 2088 102; hn_tokenizer_cls(tk) == 101, hn_tokenizer_pad(tk) == 0
//   char *text; hn_tokenizer_decode(tk, ids, n, &text);                      // "[CLS] hello world [SEP]"
//   free(text); free(ids);
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
                             // add_special does; a BERT tokenizer prepends [CLS]. Without the flag, never a BOS.
    HN_TOK_ADD_SPECIAL = 1 << 2, // frame the text as the model's post-processor does (Hugging Face's
                             // add_special_tokens=True): BERT "[CLS] text [SEP]"; Llama BOS (and EOS where
                             // add_eos_token); GPT-2 style nothing, or BOS where add_bos_token. Implies HN_TOK_ADD_BOS.
    HN_TOK_CONTINUE = 1 << 3, // the text goes on from text encoded before it, with no special token between (a
                             // conversation encoded a part at a time): its start gets no SentencePiece space
                             // prefix (the normaliser's Prepend, Metaspace's first-piece "▁"), as the joined text's
                             // middle would not.
};

// Which family a tokenizer is (its GGUF tokenizer.ggml.model name).
typedef enum { HN_TOKENIZER_GPT2, HN_TOKENIZER_LLAMA, HN_TOKENIZER_BERT } hn_tokenizer_kind;

// From GGUF metadata: tokenizer.ggml.model "gpt2" (with tokenizer.ggml.pre "gpt2", "smollm" or another name whose
// regexes hone knows), "llama" (tokens + scores; merges where present, else merged by score as llama.cpp does) or
// "bert" (llama.cpp's convention: word-start pieces written "▁word", continuations without "##").
hn_status hn_tokenizer_from_gguf(hn_tokenizer **out, const hn_gguf *g);
// From a Hugging Face model directory: tokenizer.json (model BPE or WordPiece; its normalizer, pre_tokenizer,
// post_processor and added_tokens), with tokenizer_config.json read for add_bos_token / add_eos_token, the special
// tokens' names and the chat template where present; or, without tokenizer.json, GPT-2's vocab.json + merges.txt, or
// a vocab.txt (one WordPiece entry a line) configured as BertTokenizer's defaults (uncased unless
// tokenizer_config.json says do_lower_case false).
// Errors name the file and the field.
hn_status hn_tokenizer_from_hf_dir(hn_tokenizer **out, const char *dir);
// Writes the tokenizer.ggml.* keys (llama.cpp's names: model, pre, tokens, token_type, merges or scores, the special
// token ids, add_bos/add_eos/add_sep) and tokenizer.chat_template where known, so that a converted model carries it.
hn_status hn_tokenizer_to_gguf(const hn_tokenizer *tk, hn_gguf_writer *w);
// Writes dir/tokenizer.json and dir/tokenizer_config.json that Hugging Face `tokenizers` and transformers load and
// that encode as this tokenizer does. dir must exist.
hn_status hn_tokenizer_to_hf_dir(const hn_tokenizer *tk, const char *dir);
void hn_tokenizer_destroy(hn_tokenizer *tk);

// Encode len bytes of text (len < 0: NUL-terminated). *ids is malloc'd (caller frees), *n its length.
// Framing tokens (BOS, [CLS] ... [SEP]) only with HN_TOK_ADD_BOS / HN_TOK_ADD_SPECIAL and where the tokenizer's
// post-processor or metadata has them. Invalid UTF-8 is not an error: each maximal invalid subsequence becomes U+FFFD
// first, as Python's bytes.decode("utf-8", "replace") does (io/bpe.c says more); so decode(encode(s)) == s holds for
// valid UTF-8 with the byte-level and byte-fallback tokenizers (less the bytes a gpt2 vocabulary has no token for,
// which are dropped as in Hugging Face). A BERT tokenizer normalises (lower case, accents), so it does not round-trip.
hn_status hn_tokenizer_encode(const hn_tokenizer *tk, const char *text, int64_t len, int flags, int32_t **ids,
                              int64_t *n);

// Whether text holds the text of a special token (one that HN_TOK_SPECIAL would turn into that token).
bool hn_tokenizer_has_special_text(const hn_tokenizer *tk, const char *text, size_t len);

// A pair of texts (a sentence pair for a cross-encoder, question + passage): both encoded with flags'
// HN_TOK_SPECIAL, then with HN_TOK_ADD_SPECIAL framed as the post-processor frames pairs — BERT "[CLS] a [SEP] b
// [SEP]", others "BOS a EOS BOS b EOS" with the BOS/EOS the tokenizer adds. *type_ids (malloc'd; pass NULL to skip)
// gets 0 over the first part and 1 over the second (its framing included), Hugging Face's token_type_ids.
hn_status hn_tokenizer_encode_pair(const hn_tokenizer *tk, const char *a, int64_t alen, const char *b, int64_t blen,
                                   int flags, int32_t **ids, int32_t **type_ids, int64_t *n);

// The bytes a token stands for (byte-level BPE: the raw bytes, which may be a partial UTF-8 sequence).
// Returns the number of bytes (written up to cap), or -1 for an id out of range.
int hn_tokenizer_token_bytes(const hn_tokenizer *tk, int32_t id, char *buf, int cap);
// Decode a whole sequence to a malloc'd NUL-terminated string (caller frees). Control tokens decode to their text
// (Hugging Face's decode(ids, skip_special_tokens=False)). llama: "▁" is a space, and the space of the first token is
// dropped (the prepended one); bert: Hugging Face's WordPiece decoder — tokens joined with spaces, continuations
// ("##ing") without, the space before . , ! ? dropped.
hn_status hn_tokenizer_decode(const hn_tokenizer *tk, const int32_t *ids, int64_t n, char **out);
// The vocabulary entry as stored (e.g. "Ġworld"), borrowed.
const char *hn_tokenizer_piece(const hn_tokenizer *tk, int32_t id);

int32_t hn_tokenizer_n_vocab(const hn_tokenizer *tk);
hn_tokenizer_kind hn_tokenizer_kind_of(const hn_tokenizer *tk);
int32_t hn_tokenizer_bos(const hn_tokenizer *tk); // -1 if none
int32_t hn_tokenizer_eos(const hn_tokenizer *tk);
// BERT's framing and padding tokens ([CLS], [SEP], [PAD], [UNK], [MASK]); -1 where the tokenizer has none.
int32_t hn_tokenizer_cls(const hn_tokenizer *tk);
int32_t hn_tokenizer_sep(const hn_tokenizer *tk);
int32_t hn_tokenizer_pad(const hn_tokenizer *tk);
int32_t hn_tokenizer_unk(const hn_tokenizer *tk);
int32_t hn_tokenizer_mask(const hn_tokenizer *tk);
// The chat template (Jinja) from tokenizer_config.json or tokenizer.chat_template, borrowed; NULL if none.
const char *hn_tokenizer_chat_template(const hn_tokenizer *tk);
bool hn_tokenizer_wants_bos(const hn_tokenizer *tk); // the metadata asks for BOS and the model has one (never
                                                     // for BERT, whose framing is hn_tokenizer_cls / _sep)
bool hn_tokenizer_is_control(const hn_tokenizer *tk, int32_t id); // a control token, e.g. <|im_start|>
bool hn_tokenizer_is_eog(const hn_tokenizer *tk, int32_t id); // end of generation: eos, eot, <|im_end|>, ...
int32_t hn_tokenizer_find(const hn_tokenizer *tk, const char *piece); // id of an exact vocabulary entry, or -1

#endif

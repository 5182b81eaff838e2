// io/tokenizer_impl.h — private to the tokenizer files: io/tokenizer.c (vocabulary, GGUF loading, decoding),
// io/hf_tokenizer.c (tokenizer.json, vocab.txt), io/tokenizer_write.c (GGUF keys, tokenizer.json out), io/bpe.c
// (the encoding pipeline and both BPE models) and io/wordpiece.c (BERT's normaliser, pre-tokenizer and WordPiece).
#ifndef HN_TOKENIZER_IMPL_H
#define HN_TOKENIZER_IMPL_H

#include "io/tokenizer.h"

#include <pcre2.h>

// GGUF token types (llama.cpp's numbering).
enum { HN_TT_NORMAL = 1, HN_TT_UNKNOWN = 2, HN_TT_CONTROL = 3, HN_TT_USER = 4, HN_TT_UNUSED = 5, HN_TT_BYTE = 6 };

typedef struct {
    uint64_t key; // ((left id << 32) | right id) + 1, so that 0 marks an empty slot
    int32_t rank; // position in tokenizer.ggml.merges: lower merges first
    int32_t id;   // the merged token
} hn_merge_slot;

typedef struct {
    int32_t id;
    uint32_t len;
    const uint8_t *text; // the token's bytes (into hn_tokenizer.bytes)
} hn_special;

// Normaliser steps, applied in order to the text between special tokens (Hugging Face's normalizers).
typedef enum {
    HN_NORM_BERT,          // BertNormalizer: the four flags below
    HN_NORM_PREPEND,       // Prepend(str): str before non-empty text
    HN_NORM_REPLACE,       // Replace(String from, to)
    HN_NORM_NFC, HN_NORM_NFD, HN_NORM_NFKC, HN_NORM_NFKD,
    HN_NORM_LOWERCASE,
    HN_NORM_STRIP_ACCENTS, // drop combining marks (Mn), meant after NFD
} hn_norm_kind;

typedef struct {
    hn_norm_kind kind;
    bool clean_text, chinese, strip_accents, lowercase; // HN_NORM_BERT
    char *from, *to;                                    // HN_NORM_PREPEND (to), HN_NORM_REPLACE
} hn_norm_step;

// Pre-tokenizer steps: each splits every piece the previous step made.
typedef enum {
    HN_PRE_SPLIT,     // a regex; matches become pieces (Isolated) or are dropped (Removed), text between is kept
    HN_PRE_BERT,      // BertPreTokenizer: split on whitespace (dropped) and on each punctuation character (kept)
    HN_PRE_METASPACE, // Metaspace: " " -> "▁", "▁" prepended (always, or on the text's first piece); split: "▁"
                      // starts a piece
    HN_PRE_PREFIX_SPACE, // ByteLevel(add_prefix_space=true): a space before a piece that does not start with one
} hn_pre_kind;

typedef struct {
    hn_pre_kind kind;
    pcre2_code *re;  // HN_PRE_SPLIT
    char *pattern;   // the pattern as the file wrote it (Oniguruma syntax), for writing it back
    bool removed;    // HN_PRE_SPLIT behaviour Removed (else Isolated)
    bool prepend_first, prepend_always, split; // HN_PRE_METASPACE
} hn_pre_step;

#define HN_TOK_MAX_STEPS 8

struct hn_tokenizer {
    hn_tokenizer_kind kind;
    int32_t n_vocab;
    char *pieces;          // every vocabulary entry as stored (Hugging Face's spelling), NUL-terminated, back to back
    uint32_t *piece_off;   // (n_vocab) offset of entry i in pieces
    uint8_t *bytes;        // the bytes each token stands for, back to back
    uint32_t *bytes_off;   // (n_vocab + 1) token i is bytes[bytes_off[i] .. bytes_off[i+1])
    uint8_t *type;         // (n_vocab) GGUF token type
    uint8_t *eog;          // (n_vocab) 1 for end-of-generation tokens
    float *scores;         // (n_vocab) tokenizer.ggml.scores (llama), else NULL
    int32_t byte_id[256];  // gpt2: the token of a single byte (byte-level alphabet); llama: the <0xXX> token; -1 none

    uint32_t *piece_slots; // open addressing: id + 1 of the entry whose piece hashes here, 0 empty
    uint64_t piece_mask;
    hn_merge_slot *merges; // open addressing over (left, right) pairs
    uint64_t merge_mask;
    int32_t n_merges;
    bool merges_from_scores; // made from tokenizer.ggml.scores (hn_tok_merges_from_scores), not read

    hn_special *special;   // tokens matched in the text before splitting, longest first
    int n_special;
    bool special_first[256]; // some special token starts with this byte

    int32_t bos, eos, unk; // -1 when absent
    int32_t cls, sep, pad, mask;
    bool add_bos, add_eos; // the post-processor's framing: BOS/CLS first; EOS (llama) or SEP (bert) last
    char *pre_name;        // tokenizer.ggml.pre (gpt2), malloc'd; NULL if unknown
    char *chat_template;   // malloc'd or NULL

    hn_norm_step norm[HN_TOK_MAX_STEPS];
    int n_norm;
    hn_pre_step pre[HN_TOK_MAX_STEPS];
    int n_pre;

    // llama (BPE over characters)
    bool byte_fallback;    // a character without a token becomes its <0xXX> byte tokens
    bool fuse_unk;         // consecutive unknown characters become one unk
    bool ignore_merges;    // a pre-token that is itself in the vocabulary is taken whole (Llama 3)
    bool byte_unk;         // gpt2 from a tokenizer.json with model.unk_token: a byte without a token becomes unk
                           // (else it is dropped, as with unk_token null and in llama.cpp)
    bool strip_space;      // decoding drops the space of the first "▁" (the prepended one)
    // bert (WordPiece)
    int wp_max_chars;      // a longer word becomes unk (max_input_chars_per_word)
    char wp_prefix[8];     // continuing_subword_prefix, "##"
};

// io/tokenizer.c: building a vocabulary from any source.
hn_tokenizer *hn_tok_new(void); // zeroed, every special id -1 pieces[i] are the entries as Hugging Face spells them.
hn_status hn_tok_set_vocab(hn_tokenizer *tk, const char *const *pieces, const uint8_t *types, int32_t n,
                           const char *src);
hn_status hn_tok_add_merge(hn_tokenizer *tk, const char *left, size_t ln, const char *right, size_t rn, int32_t rank,
                           const char *src, const char *field);
hn_status hn_tok_alloc_merges(hn_tokenizer *tk, int64_t n);
hn_status hn_tok_finish(hn_tokenizer *tk); // special-token table, end-of-generation flags, regex compilation
int32_t hn_tok_lookup(const hn_tokenizer *tk, const char *s, size_t n);
hn_status hn_tok_merges_from_scores(hn_tokenizer *tk); // llama without merges: every split of a token, by score

// io/bpe.c
hn_status hn_bpe_compile(hn_tokenizer *tk);
int32_t hn_bpe_merge_find(const hn_tokenizer *tk, int32_t left, int32_t right, int32_t *rank);
pcre2_code *hn_tok_compile_regex(const char *pattern, bool oniguruma, const char *what);
extern const char hn_gpt2_split_pattern[]; // the GPT-2 split regex in Oniguruma's syntax (as tokenizer.json has it)

// io/wordpiece.c
typedef hn_status (*hn_piece_fn)(void *user, const uint8_t *s, size_t len);
// skip_prepend: the Prepend steps are left out (text that continues a segment, HN_TOK_CONTINUE).
hn_status hn_tok_normalize(const hn_tokenizer *tk, const uint8_t *s, size_t len, bool skip_prepend, uint8_t **out,
                           size_t *out_len);
hn_status hn_bert_pre_split(const uint8_t *s, size_t len, hn_piece_fn fn, void *user);
hn_status hn_wordpiece(const hn_tokenizer *tk, const uint8_t *s, size_t len, hn_status (*push)(void *, int32_t),
                       void *user);

// UTF-8 helpers shared by the tokenizer files.
int hn_utf8_next(const uint8_t *s, size_t n, uint32_t *cp); // length of the valid sequence at s, or 0
int hn_utf8_put(uint32_t cp, char *out);                    // writes 1 to 4 bytes

#endif

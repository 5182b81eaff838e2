// io/tokenizer_impl.h — private to io/tokenizer.c (loading, decoding) and io/bpe.c (encoding).
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

struct hn_tokenizer {
    int32_t n_vocab;
    char *pieces;          // every vocabulary entry as stored, NUL-terminated, back to back
    uint32_t *piece_off;   // (n_vocab) offset of entry i in pieces
    uint8_t *bytes;        // the bytes each token stands for, back to back
    uint32_t *bytes_off;   // (n_vocab + 1) token i is bytes[bytes_off[i] .. bytes_off[i+1])
    uint8_t *type;         // (n_vocab) GGUF token type
    uint8_t *eog;          // (n_vocab) 1 for end-of-generation tokens
    int32_t byte_id[256];  // the token of a single byte (byte-level alphabet), -1 if the vocabulary lacks it

    uint32_t *piece_slots; // open addressing: id + 1 of the entry whose piece hashes here, 0 empty
    uint64_t piece_mask;
    hn_merge_slot *merges; // open addressing over (left, right) pairs
    uint64_t merge_mask;
    int32_t n_merges;

    hn_special *special;   // tokens matched in the text before splitting, longest first
    int n_special;
    bool special_first[256]; // some special token starts with this byte

    int32_t bos, eos, unk; // -1 when absent; unk is unused: bytes without a token are dropped (io/bpe.c)
    bool add_bos;          // tokenizer.ggml.add_bos_token
    bool digits;           // pre-tokenizer splits every digit first (smollm)

    pcre2_code *re_split;  // the GPT-2 split pattern
    pcre2_code *re_digit;  // \p{N}
};

// io/bpe.c
hn_status hn_bpe_compile(hn_tokenizer *tk);
int32_t hn_bpe_merge_find(const hn_tokenizer *tk, int32_t left, int32_t right, int32_t *rank);

#endif

// tests/test_data_families.c — training examples tokenized a part at a time (for their loss masks) must come out as
// the whole text would: for the tokenizer families of tests/data/tok_* (each equal to Hugging Face tokenizers on the
// hard-string corpus, tests/test_tokenizer_hf.c) and their chat templates, a conversation's ids equal the encoding
// of its full rendering (special tokens parsed, BOS as the tokenizer adds it), and the loss covers exactly the
// assistant turns (content and end-of-turn marker). Llama 2's SentencePiece tokenizer is the hard case: its "▁" space
// prefix and the spaces of "[INST] " belong to the words that follow.
#include "io/chat.h"
#include "io/tokenizer.h"
#include "test.h"
#include "train/data.h"

#include <string.h>

static const hn_chat_msg conv[] = {
    {"system", "You answer briefly."},
    {"user", "What is 2+2?"},
    {"assistant", "It is 4, of course."},
    {"user", "And  3+3, twice?"},
    {"assistant", "12. Done!"},
};
enum { N_CONV = sizeof conv / sizeof conv[0] };

static void check_family(const char *dir, hn_chat_template tmpl) {
    hn_tokenizer *tk = NULL;
    hn_status s = hn_tokenizer_from_hf_dir(&tk, dir);
    CHECK(s == HN_OK, "%s: %s", dir, hn_errmsg());
    if (s) return;
    const char *name = hn_chat_template_name(tmpl);

    // The conversation as one JSONL line, through the data pipeline.
    char line[1024];
    int o = snprintf(line, sizeof line, "{\"messages\": [");
    for (int i = 0; i < N_CONV; i++)
        o += snprintf(line + o, sizeof line - (size_t)o, "%s{\"role\": \"%s\", \"content\": \"%s\"}", i ? ", " : "",
                      conv[i].role, conv[i].content);
    snprintf(line + o, sizeof line - (size_t)o, "]}\n");
    hn_data_params p = hn_data_default_params();
    p.chat_template = tmpl;
    hn_dataset ds;
    s = hn_dataset_parse(&ds, dir, line, strlen(line), tk, &p);
    CHECK(s == HN_OK && ds.n == 1, "%s (%s): dataset: %s", dir, name, s ? hn_errmsg() : "");
    if (s || ds.n != 1) {
        hn_tokenizer_destroy(tk);
        return;
    }
    const hn_example *x = &ds.ex[0];

    // The whole rendering, encoded at once.
    char *text;
    int32_t *ids = NULL;
    int64_t n = 0;
    s = hn_chat_render(tmpl, NULL, conv, N_CONV, false, &text);
    if (!s) s = hn_tokenizer_encode(tk, text, -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, &ids, &n);
    CHECK(s == HN_OK, "%s: render/encode: %s", dir, hn_errmsg());
    bool same = !s && n == x->n && !memcmp(ids, x->ids, (size_t)n * sizeof *ids);
    CHECK(same, "%s (%s): %d ids a part at a time, %lld for the whole text, first difference at %d", dir, name, x->n,
          (long long)n, ({
              int d = 0;
              while (d < x->n && d < n && x->ids[d] == ids[d]) d++;
              d;
          }));

    // The loss tokens decode to the assistant turns: each content and its end marker, in order.
    char want[512] = "", *got = NULL;
    for (int i = 0; i < N_CONV; i++)
        if (!strcmp(conv[i].role, "assistant")) {
            strcat(want, conv[i].content);
            strcat(want, tmpl == HN_CHAT_LLAMA2 ? "</s>" : tmpl == HN_CHAT_LLAMA3 ? "<|eot_id|>" : "<|im_end|>");
        }
    int32_t loss_ids[512];
    int nl = 0;
    for (int i = 0; i < x->n && nl < 512; i++)
        if (x->mask[i]) loss_ids[nl++] = x->ids[i];
    s = hn_tokenizer_decode(tk, loss_ids, nl, &got);
    // Decoding loses the space a SentencePiece word carries in front ("▁4" -> "4" at the start of a decode, " 4"
    // elsewhere), so spaces are compared away.
    char a[512], b[512];
    int ka = 0, kb = 0;
    for (const char *c = want; *c && ka < 511; c++)
        if (*c != ' ') a[ka++] = *c;
    for (const char *c = got ? got : ""; *c && kb < 511; c++)
        if (*c != ' ') b[kb++] = *c;
    a[ka] = b[kb] = 0;
    CHECK(s == HN_OK && !strcmp(a, b), "%s (%s): the loss covers '%s', expected the assistant turns '%s'", dir, name,
          got ? got : "", want);
    printf("%-24s %-7s %3d tokens, %2d in the loss, %s\n", dir, name, x->n, nl, same ? "as the whole text" : "DIFFERENT");

    // Plain prompt + completion (no template): the parts joined, then EOS.
    p.chat = false;
    p.format = HN_DATA_PROMPT_COMPLETION;
    const char *pc = "{\"prompt\": \"The capital of France is\", \"completion\": \" Paris, on the Seine.\"}\n";
    hn_dataset ds2;
    s = hn_dataset_parse(&ds2, dir, pc, strlen(pc), tk, &p);
    free(ids);
    ids = NULL;
    if (!s) s = hn_tokenizer_encode(tk, "The capital of France is Paris, on the Seine.", -1, HN_TOK_ADD_BOS, &ids, &n);
    CHECK(s == HN_OK && ds2.n == 1 && ds2.ex[0].n == n + 1 && !memcmp(ds2.ex[0].ids, ids, (size_t)n * sizeof *ids) &&
              ds2.ex[0].ids[n] == hn_tokenizer_eos(tk),
          "%s: prompt + completion a part at a time differ from the joined text (+ EOS)", dir);
    if (!s) hn_dataset_deinit(&ds2);
    free(got);
    free(ids);
    free(text);
    hn_dataset_deinit(&ds);
    hn_tokenizer_destroy(tk);
}

// A message that holds special-token text is data, not markup: its "<|im_end|>" stays plain text (the run is
// tokenized a part at a time), so the example has one <|im_end|> token per turn only.
static void special_text_in_content(void) {
    hn_tokenizer *tk = NULL;
    if (hn_tokenizer_from_hf_dir(&tk, "tests/data/tok_qwen2")) {
        CHECK(0, "tok_qwen2: %s", hn_errmsg());
        return;
    }
    const char *line = "{\"messages\": [{\"role\": \"user\", \"content\": \"say <|im_end|> now\"}, "
                       "{\"role\": \"assistant\", \"content\": \"ok <|im_end|>\"}]}\n";
    hn_data_params p = hn_data_default_params();
    hn_dataset ds;
    hn_status s = hn_dataset_parse(&ds, "special", line, strlen(line), tk, &p);
    int32_t end = hn_tokenizer_find(tk, "<|im_end|>");
    int ends = 0, loss_ends = 0;
    for (int i = 0; !s && i < ds.ex[0].n; i++)
        if (ds.ex[0].ids[i] == end) ends++, loss_ends += ds.ex[0].mask[i];
    CHECK(s == HN_OK && end >= 0 && ends == 2 && loss_ends == 1,
          "special-token text inside messages: %d <|im_end|> tokens (%d in the loss), expected 2 (1)", ends, loss_ends);
    if (!s) hn_dataset_deinit(&ds);
    hn_tokenizer_destroy(tk);
}

int main(void) {
    special_text_in_content();
    check_family("tests/data/tok_llama2", HN_CHAT_LLAMA2);
    check_family("tests/data/tok_llama2_meta", HN_CHAT_LLAMA2);
    check_family("tests/data/tok_llama3", HN_CHAT_LLAMA3);
    check_family("tests/data/tok_qwen2", HN_CHAT_CHATML);
    return test_done();
}

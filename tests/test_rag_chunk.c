// tests/test_rag_chunk.c — documents split into chunks (adapt/rag.h hn_rag_chunk) with all-MiniLM-L6-v2's
// WordPiece tokenizer: a short text is one chunk; paragraphs are packed to the budget and the next chunk repeats
// the last ones that fit the overlap; a long paragraph splits at sentences (also CJK full stops); a sentence longer
// than the budget splits into overlapping word windows; every chunk stays within the budget when tokenized whole
// (a little slack: counts are summed per sentence or word) and together they cover the text; white space alone
// gives no chunk; bad sizes are refused; the prompt keeps the most sources that fit a budget (hn_rag_prompt_fit).
// Skips when the model has not been pulled.
#include "adapt/rag.h"
#include "model/registry.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static int ntok(const hn_tokenizer *tk, const char *s, int64_t len) {
    int32_t *ids = NULL;
    int64_t n = 0;
    hn_tokenizer_encode(tk, s, len, 0, &ids, &n);
    free(ids);
    return (int)n;
}

// Every byte of text that is not white space lies inside some chunk.
static bool covered(const char *text, const hn_rag_span *sp, int n) {
    for (size_t i = 0; text[i]; i++) {
        if (strchr(" \n\t", text[i])) continue;
        bool in = false;
        for (int k = 0; k < n && !in; k++) in = sp[k].start <= (int64_t)i && (int64_t)i < sp[k].end;
        if (!in) return false;
    }
    return true;
}

int main(void) {
    char *path = NULL;
    if (hn_model_resolve("all-minilm-l6-v2", &path)) return test_skip("all-minilm-l6-v2 has not been pulled");
    hn_tokenizer *tk = NULL;
    CHECK(hn_tokenizer_from_hf_dir(&tk, path) == HN_OK, "MiniLM's tokenizer: %s", hn_errmsg());
    free(path);
    if (!tk) return test_done();
    hn_rag_span *sp = NULL;
    int n = -1;

    const char *shrt = "  \n A short note about turnips.\n\n";
    CHECK(hn_rag_chunk(tk, shrt, strlen(shrt), 64, 8, &sp, &n) == HN_OK && n == 1, "short text: %d chunks", n);
    CHECK(n == 1 && !strncmp(shrt + sp[0].start, "A short note about turnips.", (size_t)(sp[0].end - sp[0].start)) &&
              sp[0].end - sp[0].start == 27 && sp[0].ntok == ntok(tk, "A short note about turnips.", -1),
          "short text: trimmed, its tokens counted");
    free(sp);

    // Three paragraphs of 10 tokens each ("word" x 9 + "."), budget 25, overlap 12: [p1 p2] [p2 p3].
    char para[3][64];
    for (int i = 0; i < 3; i++) snprintf(para[i], sizeof para[i], "p%d a b c d e f g h.", i);
    int pt = ntok(tk, para[0], -1);
    char three[256];
    snprintf(three, sizeof three, "%s\n\n%s\n \n%s", para[0], para[1], para[2]);
    CHECK(hn_rag_chunk(tk, three, strlen(three), 2 * pt + 1, pt + 1, &sp, &n) == HN_OK && n == 2,
          "paragraphs: %d chunks (paragraph %d tokens)", n, pt);
    if (n == 2) {
        CHECK(!strncmp(three + sp[0].start, "p0", 2) && !strncmp(three + sp[0].end - 2, "h.", 2) &&
                  strstr(three, para[1]) + strlen(para[1]) == three + sp[0].end,
              "paragraphs: the first chunk is p0 and p1");
        CHECK(three + sp[1].start == strstr(three, para[1]) && sp[1].end == (int64_t)strlen(three),
              "paragraphs: the second starts with p1 again (the overlap) and ends the text");
    }
    free(sp);
    // Without overlap: [p0 p1] [p2].
    CHECK(hn_rag_chunk(tk, three, strlen(three), 2 * pt + 1, 0, &sp, &n) == HN_OK && n == 2 &&
              three + sp[1].start == strstr(three, para[2]),
          "no overlap: the second chunk is p2 alone");
    free(sp);

    // One long paragraph of sentences, English then Chinese: split at sentence ends, each chunk within budget.
    char *longp = malloc(8192);
    size_t o = 0;
    for (int i = 0; i < 30; i++)
        o += (size_t)snprintf(longp + o, 8192 - o, "Sentence %d tells of river %d. ", i, i * 3);
    for (int i = 0; i < 20; i++) o += (size_t)snprintf(longp + o, 8192 - o, "河流%d很长。", i);
    CHECK(hn_rag_chunk(tk, longp, o, 40, 8, &sp, &n) == HN_OK && n > 4, "long paragraph: %d chunks", n);
    bool within = true, at_ends = true;
    for (int i = 0; i < n; i++) {
        within &= ntok(tk, longp + sp[i].start, sp[i].end - sp[i].start) <= 40 + 2;
        const char *e = longp + sp[i].end;
        at_ends &= e[-1] == '.' || !strncmp(e - 3, "。", 3);
    }
    CHECK(within, "long paragraph: every chunk within 40 tokens");
    CHECK(at_ends, "long paragraph: chunks end at sentence ends");
    CHECK(covered(longp, sp, n), "long paragraph: the chunks cover the text");
    bool overlaps = true;
    for (int i = 1; i < n; i++) overlaps &= sp[i].start < sp[i - 1].end;
    CHECK(overlaps, "long paragraph: each chunk starts inside the one before (overlap 8)");
    free(sp);

    // One sentence of 300 words: overlapping word windows within the budget.
    o = 0;
    for (int i = 0; i < 300; i++) o += (size_t)snprintf(longp + o, 8192 - o, "w%d ", i);
    CHECK(hn_rag_chunk(tk, longp, o, 50, 10, &sp, &n) == HN_OK && n > 6, "long sentence: %d windows", n);
    within = true, overlaps = true;
    for (int i = 0; i < n; i++) {
        within &= ntok(tk, longp + sp[i].start, sp[i].end - sp[i].start) <= 50;
        if (i) overlaps &= sp[i].start < sp[i - 1].end && sp[i].start > sp[i - 1].start;
    }
    CHECK(within && overlaps && covered(longp, sp, n), "long sentence: windows within 50 tokens, overlapping, "
                                                       "covering the text");
    free(sp);
    free(longp);

    CHECK(hn_rag_chunk(tk, " \n\n\t ", 5, 64, 8, &sp, &n) == HN_OK && n == 0 && !sp, "white space: no chunk");
    CHECK(hn_rag_chunk(tk, "x", 1, 8, 2, &sp, &n) == HN_ERR_ARG && strstr(hn_errmsg(), "at least 16"),
          "budget below 16 refused: %s", hn_errmsg());
    CHECK(hn_rag_chunk(tk, "x", 1, 32, 32, &sp, &n) == HN_ERR_ARG, "overlap as large as the budget refused");
    // hn_rag_prompt_fit keeps the most sources that fit, for every budget: the same k as trying each k whole.
    hn_rag_hit hits[6] = {{0}};
    char txt[6][160];
    for (int i = 0; i < 6; i++) {
        snprintf(txt[i], sizeof txt[i], "Source %d says that the river %d runs %s through the valley of %d hills.", i,
                 i * 7, i % 2 ? "slowly" : "fast, and loud,", i + 3);
        hits[i].text = txt[i];
    }
    bool same = true;
    for (int budget = 10; budget <= 160 && same; budget += 3) {
        int used = -1, want = 0;
        for (int k = 6; k > 0 && !want; k--) {
            char *q = hn_rag_prompt(hits, k, "Which river runs fast?", NULL);
            if (ntok(tk, q, -1) <= budget) want = k;
            free(q);
        }
        char *p = hn_rag_prompt_fit(tk, hits, 6, "Which river runs fast?", NULL, budget, &used);
        char *w = hn_rag_prompt(hits, want, "Which river runs fast?", NULL);
        same = p && used == want && !strcmp(p, w);
        if (!same) printf("budget %d: kept %d, expected %d\n", budget, used, want);
        free(p), free(w);
    }
    CHECK(same, "prompt_fit keeps the most sources that fit, for budgets 10..160");
    hn_tokenizer_destroy(tk);
    return test_done();
}

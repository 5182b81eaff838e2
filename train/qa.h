// train/qa.h — short-answer question sets: questions with their gold answers, read from SQuAD-format JSON or from
// JSONL / JSON-array files, as SFT examples for training and held-out loss and as questions scored by exact match
// of a generated answer (the generation bake-off, train/bakeoff_gen.c) or by SQuAD's exact match and token F1
// (hone eval --task rag).
//
//   hn_qa_set q;
//   if (hn_qa_load(&q, "xquad.en.json", HN_QA_AUTO)) { fprintf(stderr, "hone: %s\n", hn_errmsg()); ... }
//   hn_qa_set test;
//   hn_qa_split(&q, &test, 0.2, 42);         // whole articles (SQuAD) move to test: their contexts stay unseen
//   char *jsonl; size_t n;
//   hn_qa_sft_jsonl(&q, &jsonl, &n);         // one prompt/completion line a question, for hn_dataset_parse
//   bool ok = hn_qa_match("Denver Broncos.\nmore text", q.items[0].answers, q.items[0].n_answers);
//   hn_qa_set_deinit(&test), hn_qa_set_deinit(&q);
//
// Files (told apart by their content unless the format is named):
//   SQuAD (v1.1 / v2.0, XQuAD, MLQA): one JSON object {"data": [{"title": S, "paragraphs": [{"context": S,
//           "qas": [{"question": S, "answers": [{"text": S, ...}, ...], "id": S?, "is_impossible": B?}]}]}]}.
//           Each question becomes one item whose prompt is hn_qa_squad_prompt(context, question) and whose answers
//           are the answers' texts (the first is the training completion); its group is its article. Questions
//           without an answer (SQuAD 2.0's impossible ones) are skipped and counted.
//   JSONL, or one JSON array, of objects, one question each:
//           {"prompt": S, "answer": S | [S, ...]}        the answer, or several accepted answers
//           {"prompt": S, "completion": S}               an SFT prompt/completion pair: the completion is the answer
//           {"instruction": S, "input": S?, "output": S} alpaca: rendered as train/data.h renders alpaca
//         Each item is its own group.
// Errors name FILE:LINE (JSONL) or FILE plus the JSON path (data[3].paragraphs[0].qas[2].answers) and what was
// expected. A file with no question is an error.
//
// Exact match (hn_qa_normalize, hn_qa_match): both texts are normalised, then compared byte for byte. Normalising
// keeps the first line only (up to the first '\n'), trims white space at both ends, removes final punctuation
// (any run of . , ; : ! ? at the end, and the white space before it), collapses runs of white space to one space
// and case-folds (Unicode case folding, utf8proc's). A generation matches when its normal form equals any gold
// answer's.
//
// SQuAD's scores (hn_qa_squad_em, hn_qa_f1), as SQuAD v1.1's official evaluate script computes them for English and
// MLQA's (mlqa_evaluation_v1.py) for Chinese. Each text is cut to its first line (up to the first '\n'), then:
//   1. lower-cased (utf8proc's simple lower case of each code point; Python's str.lower);
//   2. punctuation removed: ASCII's 32 punctuation characters (Python's string.punctuation: !"#$%&'()*+,-./:;<=>?@
//      [\]^_`{|}~, symbols among them); in Chinese mode also every character of a Unicode punctuation category (P*);
//   3. English mode only: the articles a, an, the removed where they stand as whole words (a maximal run of letters,
//      digits and '_', Python's \b(a|an|the)\b);
//   4. split into tokens at white space (Unicode's, Python's str.split()); in Chinese mode each CJK ideograph
//      (U+3400..U+4DBF, U+4E00..U+9FFF, U+F900..U+FAFF) is a token of its own, and runs of other characters are split
//      at white space.
// A generation and a gold answer are compared in Chinese mode when either holds a CJK ideograph, else in English
// mode. Exact match: the two token lists are equal (two empty lists too, as the script's string comparison has it).
// F1: with c the tokens the two share (as multisets), precision c / |generated|, recall c / |gold|, F1 their harmonic
// mean; 0 when c == 0 (an empty side included: SQuAD v1.1's rule). Both scores are the best over the gold answers;
// 0 when there is none. Invalid UTF-8 bytes count as characters of their own (not letters, not punctuation).
#ifndef HN_QA_H
#define HN_QA_H

#include "base/base.h"

typedef enum { HN_QA_AUTO, HN_QA_SQUAD, HN_QA_JSONL } hn_qa_format;

typedef struct {
    char *line;     // the SFT example as one JSON object (no newline): {"prompt", "completion"} or the alpaca object
    const char *question; // the question alone, for retrieval: SQuAD's question, a JSONL item's prompt, alpaca's
                          // instruction (then a blank line and its input, when it has one). It lives in line's
                          // allocation, after line's NUL, and goes with it (free(line)).
    char **answers; // (n_answers) gold answers, each malloc'd; answers[0] is the training completion
    int n_answers;
    int group;      // SQuAD: the article's index in the file; else the item's own index
} hn_qa_item;

typedef struct {
    hn_qa_item *items; // (n)
    int n;
    int n_groups;      // distinct groups (articles)
    int n_skipped;     // questions without an answer (SQuAD 2.0)
    hn_qa_format format; // what was read (SQUAD or JSONL)
    char *source;      // the file read
} hn_qa_set;

hn_status hn_qa_load(hn_qa_set *q, const char *path, hn_qa_format format);
// The same from bytes in memory; name stands for the file in messages.
hn_status hn_qa_parse(hn_qa_set *q, const char *name, const char *data, size_t size, hn_qa_format format);
void hn_qa_set_deinit(hn_qa_set *q);
// Appends src's items to dst (src left empty); groups stay apart (src's are renumbered after dst's).
hn_status hn_qa_append(hn_qa_set *dst, hn_qa_set *src);

// Moves whole groups into test, drawn in a seeded order until test holds at least round(frac * n) questions (at
// least one group, and at least one left in q); both keep the file order. HN_ERR_ARG when q has a single group or
// frac is outside (0, 1).
hn_status hn_qa_split(hn_qa_set *q, hn_qa_set *test, double frac, uint64_t seed);
// Keeps a seeded choice of `keep` items (file order kept); keep <= 0 or >= n keeps all.
hn_status hn_qa_subsample(hn_qa_set *q, int keep, uint64_t seed);
// Every item's line, each followed by '\n' (malloc'd): a JSONL file for hn_dataset_parse.
hn_status hn_qa_sft_jsonl(const hn_qa_set *q, char **out, size_t *len);

// The prompt a SQuAD question becomes (malloc'd; NULL when out of memory):
//   "Answer the question with a short span copied from the text.\n\nText: CONTEXT\n\nQuestion: QUESTION"
char *hn_qa_squad_prompt(const char *context, const char *question);

// s normalised as above into out (cap bytes, NUL-terminated, cut at a character boundary when it does not fit);
// returns the normal form's length (>= cap: it was cut).
size_t hn_qa_normalize(const char *s, size_t len, char *out, size_t cap);
bool hn_qa_match(const char *generated, const char *const *answers, int n_answers);
// SQuAD's exact match and token F1 (above), in [0, 1], the best over the answers.
bool hn_qa_squad_em(const char *generated, const char *const *answers, int n_answers);
double hn_qa_f1(const char *generated, const char *const *answers, int n_answers);

#endif

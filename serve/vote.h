// serve/vote.h — majority voting over answers: the answer a text gives (a regex's capture, or the last number in
// it), and the answer most texts (or the most weight) agree on. Used for a request's n samples (self-consistency)
// and by `hone vote` across models and adapters (multi-LLM voting).
//
//   char *a[3];
//   for (int i = 0; i < 3; i++) hn_vote_extract(texts[i], NULL, &a[i]);   // "... so the answer is 42." -> "42"
//   int w = hn_vote_majority((const char *const *)a, NULL, 3);             // index of a winning answer, -1: none
#ifndef HN_VOTE_H
#define HN_VOTE_H

#include "base/base.h"

// The answer in text: with regex (PCRE2 syntax, UTF-8), its first capture group, or the whole match when it has
// none, of the LAST match in the text; without (NULL), the last number in the text, normalised ("1,234.50" ->
// "1234.5", "-3" stays, "7." -> "7"). *answer is malloc'd, NULL when nothing matches. A regex that does not compile is
// HN_ERR_ARG naming the pattern and the offset.
hn_status hn_vote_extract(const char *text, const char *regex, char **answer);

// The index of an answer that wins the vote among n (NULL answers abstain): the one with the largest count, or the
// largest sum of weights when weights is not NULL; a tie goes to the answer seen first. -1 when every answer is NULL.
// Answers compare as strings after trimming surrounding white space.
int hn_vote_majority(const char *const *answers, const float *weights, int n);

#endif

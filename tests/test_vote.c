// tests/test_vote.c — serve/vote.h: the answer a text gives (last number, a regex's group or match) and the
// (weighted) majority among answers.
#include "serve/vote.h"
#include "test.h"

#include <string.h>

// The extracted answer of text under regex, compared with want (NULL: no answer).
static void extract_is(const char *text, const char *regex, const char *want, int line) {
    char *a = (char *)1;
    hn_status s = hn_vote_extract(text, regex, &a);
    bool ok = s == HN_OK && (want ? a && !strcmp(a, want) : a == NULL);
    CHECK(ok, "line %d: \"%s\" with %s: got %s \"%s\", want \"%s\" (%s)", line, text, regex ? regex : "no regex",
          hn_status_name(s), s == HN_OK && a ? a : "(null)", want ? want : "(null)", hn_errmsg());
    if (s == HN_OK) free(a);
}
#define EXTRACT(text, regex, want) extract_is(text, regex, want, __LINE__)

static void numbers(void) {
    EXTRACT("so the answer is 42.", NULL, "42");
    EXTRACT("She pays $1,234.50 in total", NULL, "1234.5");
    EXTRACT("1,234,567 people", NULL, "1234567");
    EXTRACT("The total is 7.", NULL, "7");
    EXTRACT("it is 3.0", NULL, "3");
    EXTRACT("0.50 of them", NULL, "0.5");
    EXTRACT("about .5 of it", NULL, "0.5");
    EXTRACT("007 bonds", NULL, "7");
    EXTRACT("the change is -3", NULL, "-3");
    EXTRACT("x = -12.25 degrees", NULL, "-12.25");
    EXTRACT("(-4)", NULL, "-4");
    EXTRACT("+5 points", NULL, "5");
    EXTRACT("-0", NULL, "0");
    EXTRACT("pages 5-7", NULL, "7");                 // a range's hyphen, not a sign
    EXTRACT("temperature \xE2\x88\x92" "8", NULL, "-8"); // U+2212 MINUS SIGN
    EXTRACT("1, 2, 3", NULL, "3");                   // a list, not a grouped number
    EXTRACT("1,23", NULL, "23");                     // a comma not followed by three digits ends the number
    EXTRACT("2 apples and 3 pears make 5 fruits", NULL, "5"); // the last number wins
    EXTRACT("48/2 = 24\n#### 24", NULL, "24");
    EXTRACT("no number here", NULL, NULL);
    EXTRACT("", NULL, NULL);
    EXTRACT(NULL, NULL, NULL);                       // a voter with no text abstains
    EXTRACT("Le prix est 12 €, soit 1\xE2\x80\xAF" "000 centimes? Non: 1200.", NULL, "1200"); // UTF-8 around numbers
    EXTRACT("答案是 36。", NULL, "36");
}

static void regexes(void) {
    EXTRACT("The answer is (B). Wait, the answer is (C).", "answer is \\(([A-D])\\)", "C"); // group, last match
    EXTRACT("The answer is (B).", "\\([A-D]\\)", "(B)");                                       // no group: the match
    EXTRACT("A then B then C", "[A-D]", "C");
    EXTRACT("nothing to see", "answer: (\\d+)", NULL);
    EXTRACT("#### 18", "is (\\d+)|#### (\\d+)", "18");  // the group that took part in the match
    EXTRACT("so it is 9", "is (\\d+)|#### (\\d+)", "9");
    EXTRACT("Ответ: Б, итог: В", "(?:Ответ|итог): (\\p{L})", "В"); // UTF-8 pattern and text
    EXTRACT("x1y22z333", "\\d*", "333");                // empty matches between characters do not loop
    EXTRACT("caf\xC3\xA9 \xFF 7", "\\d", "7");           // a stray invalid byte in the text is skipped over

    char *a = (char *)1;
    hn_status s = hn_vote_extract("text", "answer (\\d+", &a);
    CHECK(s == HN_ERR_ARG, "an unclosed group: %s", hn_status_name(s));
    CHECK(strstr(hn_errmsg(), "answer (\\d+") && strstr(hn_errmsg(), "offset"), "the message names the pattern and "
          "the offset: %s", hn_errmsg());
    CHECK(a == NULL, "no answer after an error");
    CHECK(hn_vote_extract("x", NULL, NULL) == HN_ERR_ARG, "no place for the answer");
}

static void majority(void) {
    const char *a1[] = {"4", "5", "4"};
    CHECK(hn_vote_majority(a1, NULL, 3) == 0, "two of three");
    const char *a2[] = {"5", "4", "4"};
    CHECK(hn_vote_majority(a2, NULL, 3) == 1, "the first index of the winner: %d", hn_vote_majority(a2, NULL, 3));
    const char *a3[] = {"7", "8"};
    CHECK(hn_vote_majority(a3, NULL, 2) == 0, "a tie goes to the answer seen first");
    const char *a4[] = {"7", "8", "8", "7"};
    CHECK(hn_vote_majority(a4, NULL, 4) == 0, "a tie of two pairs: the first seen");
    const char *a5[] = {NULL, "9", NULL};
    CHECK(hn_vote_majority(a5, NULL, 3) == 1, "NULL answers abstain");
    const char *a6[] = {NULL, NULL, NULL};
    CHECK(hn_vote_majority(a6, NULL, 3) == -1, "everyone abstains");
    CHECK(hn_vote_majority(a6, NULL, 0) == -1, "no voters");
    const char *a7[] = {" 42\n", "41", "42"};
    CHECK(hn_vote_majority(a7, NULL, 3) == 0, "white space around an answer does not count");
    const char *a8[] = {"A", "a", "B"};
    CHECK(hn_vote_majority(a8, NULL, 3) == 0, "case counts: three different answers, the first wins");

    const char *w1[] = {"1", "2", "2"};
    float wt1[] = {3.0f, 1.0f, 1.0f};
    CHECK(hn_vote_majority(w1, wt1, 3) == 0, "one heavy voter outweighs two light ones");
    float wt2[] = {1.0f, 1.0f, 1.0f};
    CHECK(hn_vote_majority(w1, wt2, 3) == 1, "equal weights: the count");
    float wt3[] = {2.0f, 1.0f, 1.0f};
    CHECK(hn_vote_majority(w1, wt3, 3) == 0, "a weighted tie goes to the answer seen first");
    const char *w2[] = {NULL, "2", "3"};
    float wt4[] = {10.0f, 1.0f, 1.5f};
    CHECK(hn_vote_majority(w2, wt4, 3) == 2, "an abstaining voter's weight counts for nothing");
    float wt5[] = {0.0f, 0.0f, 0.0f};
    CHECK(hn_vote_majority(w2, wt5, 3) == 1, "all weights zero: still an answer, the first seen");
}

int main(void) {
    numbers();
    regexes();
    majority();
    return test_done();
}

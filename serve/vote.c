// serve/vote.c — the answer a text gives and the majority among answers (serve/vote.h). A regex is PCRE2 (UTF-8,
// Unicode properties, as the tokenizers compile theirs in io/bpe.c); without one the answer is the last number.
#include "serve/vote.h"

#include <ctype.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

// U+2212 MINUS SIGN, which models and papers write for a negative number as often as '-'.
static bool is_unicode_minus(const char *s) {
    return (unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x88 && (unsigned char)s[2] == 0x92;
}

// Whether a '-' or '+' at s[i] is the number's sign rather than a hyphen or an operator: nothing that could end a
// word or a number stands right before it ("5-7" is a range, "x = -3" and "(-3" are negative).
static bool sign_applies(const char *s, size_t i) {
    if (i == 0) return true;
    unsigned char p = (unsigned char)s[i - 1];
    return !(isalnum(p) || p == ')' || p == ']' || p == '.' || p == '_' || p >= 0x80);
}

// One number found in text: [start, end) with its integer digits (commas included) and fraction digits apart.
typedef struct {
    bool neg;
    const char *int_s, *frac_s; // int_s may be empty (".5"), frac_s NULL when there is no fraction
    size_t int_n, frac_n;
} number;

// Scans the number whose first digit (or '.' before a digit) is at s[i]; returns the index past it. A comma
// groups digits only when exactly three digits follow it ("1,234" is one number, "1, 2" and "1,23" are not), a
// '.' is a decimal point only when a digit follows it ("7." is 7 and the end of a sentence).
static size_t scan_number(const char *s, size_t i, number *n) {
    n->int_s = s + i;
    while (is_digit(s[i])) i++;
    while (i > (size_t)(n->int_s - s) && s[i] == ',' && is_digit(s[i + 1]) && is_digit(s[i + 2]) &&
           is_digit(s[i + 3]) && !is_digit(s[i + 4]))
        i += 4;
    n->int_n = (size_t)(s + i - n->int_s);
    n->frac_s = NULL, n->frac_n = 0;
    if (s[i] == '.' && is_digit(s[i + 1])) {
        n->frac_s = s + ++i;
        while (is_digit(s[i])) i++;
        n->frac_n = (size_t)(s + i - n->frac_s);
    }
    return i;
}

// The number as one canonical string: no commas, no '+', no leading zeros of the integer part, no trailing zeros
// of the fraction (nor its point), "-0" as "0": the forms "1,234.50", "+1234.5" and "01234.500" all give "1234.5".
static char *normalise(const number *n) {
    char *out = hn_alloc(n->int_n + n->frac_n + 4, "vote: answer");
    if (!out) return NULL;
    size_t o = 0;
    if (n->neg) out[o++] = '-';
    size_t digits_at = o;
    for (size_t k = 0; k < n->int_n; k++) {
        char c = n->int_s[k];
        if (c == ',' || (c == '0' && o == digits_at)) continue; // grouping, a leading zero
        out[o++] = c;
    }
    if (o == digits_at) out[o++] = '0';
    size_t frac_n = n->frac_n;
    while (frac_n && n->frac_s[frac_n - 1] == '0') frac_n--;
    if (frac_n) {
        out[o++] = '.';
        memcpy(out + o, n->frac_s, frac_n);
        o += frac_n;
    }
    out[o] = 0;
    if (!strcmp(out, "-0")) strcpy(out, "0");
    return out;
}

// The last number in text, normalised; NULL answer when there is none.
static hn_status last_number(const char *text, char **answer) {
    number last = {0};
    bool found = false;
    size_t i = 0;
    while (text[i]) {
        bool starts = is_digit(text[i]) ||
                      (text[i] == '.' && is_digit(text[i + 1]) && (i == 0 || !is_digit(text[i - 1])));
        if (!starts) {
            i++;
            continue;
        }
        number n;
        size_t end = scan_number(text, i, &n);
        n.neg = false;
        if (i >= 1 && text[i - 1] == '-' && sign_applies(text, i - 1)) n.neg = true;
        else if (i >= 3 && is_unicode_minus(text + i - 3) && sign_applies(text, i - 3)) n.neg = true;
        last = n, found = true;
        i = end;
    }
    if (!found) return HN_OK;
    return (*answer = normalise(&last)) ? HN_OK : HN_ERR_NOMEM;
}

// One character past an empty match at pos (a pattern such as "\d*" matches the empty string between characters).
static size_t step_over(const char *s, size_t len, size_t pos) {
    pos++;
    while (pos < len && ((unsigned char)s[pos] & 0xC0) == 0x80) pos++;
    return pos;
}

static hn_status regex_answer(const char *text, const char *regex, char **answer) {
    int err;
    PCRE2_SIZE off;
    // PCRE2_MATCH_INVALID_UTF: a model's text with a stray byte is still searched (the bad byte matches nothing)
    // instead of failing the whole match.
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return hn_fail(HN_ERR_ARG, "vote: the regex \"%.80s\" does not compile at offset %zu: %s", regex, (size_t)off,
                       (const char *)msg);
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        return hn_fail(HN_ERR_NOMEM, "vote: out of memory for the regex \"%.80s\"", regex);
    }
    uint32_t groups = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &groups);
    size_t len = strlen(text), pos = 0, best_s = 0, best_e = 0;
    bool found = false;
    hn_status st = HN_OK;
    while (pos <= len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = hn_fail(HN_ERR_RANGE, "vote: matching the regex \"%.80s\" failed at byte %zu: %s", regex, pos,
                         (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[0] == ov[1]) { // an empty match ("\\d*" between two letters) says nothing: step over it
            pos = step_over(text, len, ov[1]);
            continue;
        }
        // The first capture group; a pattern of alternatives ("is (\d+)|#### (\d+)") has the others unset in a
        // match, so the first group that took part stands for it. No group took part, or none exists: the match.
        best_s = ov[0], best_e = ov[1];
        for (uint32_t g = 1; g <= groups && (int)g < rc; g++)
            if (ov[2 * g] != PCRE2_UNSET) {
                best_s = ov[2 * g], best_e = ov[2 * g + 1];
                break;
            }
        if (best_e < best_s) best_e = best_s; // \K in a lookahead can put the start after the end
        found = true;
        if (ov[1] < ov[0]) break;             // ... and then stepping on could loop: that match is the last
        pos = ov[1];
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (st || !found) return st;
    char *a = hn_alloc(best_e - best_s + 1, "vote: answer");
    if (!a) return HN_ERR_NOMEM;
    memcpy(a, text + best_s, best_e - best_s);
    a[best_e - best_s] = 0;
    *answer = a;
    return HN_OK;
}

hn_status hn_vote_extract(const char *text, const char *regex, char **answer) {
    if (!answer) return hn_fail(HN_ERR_ARG, "vote: hn_vote_extract needs somewhere to put the answer");
    *answer = NULL;
    if (!text) text = ""; // a voter that produced nothing abstains
    return regex ? regex_answer(text, regex, answer) : last_number(text, answer);
}

// s without its surrounding white space: [*b, *b + *n).
static void trimmed(const char *s, const char **b, size_t *n) {
    size_t e = strlen(s);
    while (*s && isspace((unsigned char)*s)) s++, e--;
    while (e && isspace((unsigned char)s[e - 1])) e--;
    *b = s, *n = e;
}

static bool same_answer(const char *a, const char *b) {
    const char *pa, *pb;
    size_t na, nb;
    trimmed(a, &pa, &na);
    trimmed(b, &pb, &nb);
    return na == nb && !memcmp(pa, pb, na);
}

int hn_vote_majority(const char *const *answers, const float *weights, int n) {
    int best = -1;
    double best_score = 0;
    for (int i = 0; i < n; i++) {
        if (!answers[i]) continue;
        bool seen = false; // counted already with an earlier equal answer
        for (int j = 0; j < i && !seen; j++) seen = answers[j] && same_answer(answers[i], answers[j]);
        if (seen) continue;
        double score = 0;
        for (int j = i; j < n; j++)
            if (answers[j] && same_answer(answers[i], answers[j])) score += weights ? weights[j] : 1.0;
        // Strictly more: a tie keeps the answer seen first, as answers are visited in order of first appearance.
        if (best < 0 || score > best_score) best = i, best_score = score;
    }
    return best;
}

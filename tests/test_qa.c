// tests/test_qa.c — short-answer question sets (train/qa.h): SQuAD-format JSON (questions with their articles, every
// distinct gold answer, unanswerable ones skipped, the prompt built from context and question), JSONL and JSON-array
// files ({prompt, answer} with one or several answers, {prompt, completion}, alpaca kept whole for the data reader),
// each item's question alone, the split by whole articles, seeded subsamples, the JSONL handed to the data reader,
// exact-match normalisation, SQuAD's exact match and token F1 (hand-computed: partial overlap, articles,
// punctuation, repeated tokens, several gold answers, Chinese by characters, empty generations), and
// broken inputs refused with the file, the line or JSON path, the field and what was expected. When the shared data
// is present, XQuAD's English part: 632 questions in 24 articles, split by article with no context on both sides.
#include "test.h"
#include "train/qa.h"

#include <jansson.h>
#include <string.h>

static hn_status parse(hn_qa_set *q, const char *text, hn_qa_format f) {
    return hn_qa_parse(q, "q.json", text, strlen(text), f);
}

static const char squad[] =
    "{\"version\": \"1.1\", \"data\": ["
    " {\"title\": \"A\", \"paragraphs\": ["
    "   {\"context\": \"Cats sleep a lot.\", \"qas\": ["
    "     {\"id\": \"1\", \"question\": \"Who sleeps?\", \"answers\": [{\"text\": \"Cats\", \"answer_start\": 0},"
    "                                                         {\"text\": \"Cats\", \"answer_start\": 0},"
    "                                                         {\"text\": \"cats\", \"answer_start\": 0}]},"
    "     {\"id\": \"2\", \"question\": \"Who flies?\", \"answers\": [], \"is_impossible\": true}]},"
    "   {\"context\": \"Dogs bark.\", \"qas\": [{\"question\": \"What do dogs do?\", \"answers\": [{\"text\": \"bark\"}]}]}]},"
    " {\"title\": \"B\", \"paragraphs\": [{\"context\": \"Fish swim.\", \"qas\": ["
    "     {\"question\": \"What swims?\", \"answers\": [{\"text\": \"Fish\"}]}]}]},"
    " {\"title\": \"C\", \"paragraphs\": [{\"context\": \"Birds sing.\", \"qas\": ["
    "     {\"question\": \"What sings?\", \"answers\": [{\"text\": \"Birds\"}]},"
    "     {\"question\": \"What do birds do?\", \"answers\": [{\"text\": \"sing\"}]}]}]}]}";

static bool norm_is(const char *in, const char *want) {
    char out[256];
    size_t n = hn_qa_normalize(in, strlen(in), out, sizeof out);
    return n == strlen(want) && !strcmp(out, want);
}

int main(void) {
    hn_qa_set q, t;
    // SQuAD
    hn_status s = parse(&q, squad, HN_QA_AUTO);
    CHECK(s == HN_OK, "%s", hn_errmsg());
    if (!s) {
        CHECK(q.format == HN_QA_SQUAD && q.n == 5 && q.n_skipped == 1 && q.n_groups == 3, "squad: %d questions, %d "
              "skipped, %d articles", q.n, q.n_skipped, q.n_groups);
        CHECK(q.items[0].n_answers == 2 && !strcmp(q.items[0].answers[0], "Cats") &&
                  !strcmp(q.items[0].answers[1], "cats"),
              "squad: the distinct answers, the first one first");
        CHECK(q.items[0].group == 0 && q.items[1].group == 0 && q.items[2].group == 1 && q.items[4].group == 2,
              "squad: each question's article");
        CHECK(!strcmp(q.items[0].question, "Who sleeps?") && !strcmp(q.items[4].question, "What do birds do?"),
              "squad: the question alone: '%s', '%s'", q.items[0].question, q.items[4].question);
        json_t *o = json_loads(q.items[0].line, 0, NULL);
        char *want = hn_qa_squad_prompt("Cats sleep a lot.", "Who sleeps?");
        CHECK(o && !strcmp(json_string_value(json_object_get(o, "prompt")), want) &&
                  !strcmp(json_string_value(json_object_get(o, "completion")), "Cats") && !strchr(q.items[0].line, '\n'),
              "squad: the SFT line: %s", q.items[0].line);
        CHECK(!strcmp(want, "Answer the question with a short span copied from the text.\n\nText: Cats sleep a lot."
                            "\n\nQuestion: Who sleeps?"),
              "squad: the prompt: %s", want);
        free(want), json_decref(o);
        // The split moves whole articles: none is on both sides.
        s = hn_qa_split(&q, &t, 0.3, 1);
        CHECK(s == HN_OK && t.n >= 2 && q.n + t.n == 5 && q.n >= 1, "split: %d + %d: %s", q.n, t.n, hn_errmsg());
        for (int i = 0; !s && i < q.n; i++)
            for (int j = 0; j < t.n; j++)
                CHECK(q.items[i].group != t.items[j].group, "split: article %d on both sides", q.items[i].group);
        // The JSONL the data reader reads: one prompt/completion example a question.
        char *jl;
        size_t n;
        if (!s && !hn_qa_sft_jsonl(&t, &jl, &n)) {
            int lines = 0;
            for (size_t i = 0; i < n; i++) lines += jl[i] == '\n';
            CHECK(lines == t.n && n == strlen(jl), "jsonl: %d lines for %d questions", lines, t.n);
            free(jl);
        }
        if (!s) hn_qa_set_deinit(&t);
        hn_qa_set_deinit(&q);
    }
    CHECK(parse(&q, squad, HN_QA_SQUAD) == HN_OK && q.n == 5, "squad named");
    hn_qa_set_deinit(&q);

    // JSONL: {prompt, answer} with one or several answers, {prompt, completion}, alpaca.
    s = parse(&q,
              "{\"prompt\": \"2+2?\", \"answer\": \"4\"}\n\n"
              "{\"prompt\": \"Capital of France?\", \"answer\": [\"Paris\", \"paris, France\"]}\r\n"
              "{\"prompt\": \"Color of the sky?\", \"completion\": \"blue\"}\n"
              "{\"instruction\": \"Name a prime.\", \"input\": \"below 4\", \"output\": \"3\"}\n",
              HN_QA_AUTO);
    CHECK(s == HN_OK && q.format == HN_QA_JSONL && q.n == 4 && q.n_groups == 4, "jsonl: %s", hn_errmsg());
    if (!s) {
        CHECK(q.items[1].n_answers == 2 && !strcmp(q.items[1].answers[1], "paris, France") && q.items[3].group == 3,
              "jsonl: answers and groups");
        CHECK(!strcmp(q.items[0].line, "{\"prompt\": \"2+2?\", \"completion\": \"4\"}") ||
                  !strcmp(q.items[0].line, "{\"prompt\":\"2+2?\",\"completion\":\"4\"}"),
              "jsonl: prompt/answer becomes prompt/completion: %s", q.items[0].line);
        CHECK(strstr(q.items[3].line, "\"instruction\"") && strstr(q.items[3].line, "\"input\"") &&
                  !strcmp(q.items[3].answers[0], "3"),
              "jsonl: alpaca kept whole: %s", q.items[3].line);
        CHECK(!strcmp(q.items[0].question, "2+2?") && !strcmp(q.items[2].question, "Color of the sky?") &&
                  !strcmp(q.items[3].question, "Name a prime.\n\nbelow 4"),
              "jsonl: the question alone (alpaca: instruction, blank line, input): '%s'", q.items[3].question);
        CHECK(hn_qa_subsample(&q, 2, 5) == HN_OK && q.n == 2, "subsample to 2");
        hn_qa_set other;
        if (!parse(&other, "[{\"prompt\": \"a\", \"answer\": \"b\"}, {\"prompt\": \"c\", \"answer\": \"d\"}]",
                   HN_QA_AUTO)) {
            int g = q.items[0].group > q.items[1].group ? q.items[0].group : q.items[1].group;
            CHECK(other.n == 2 && hn_qa_append(&q, &other) == HN_OK && q.n == 4 && q.items[2].group > g &&
                      q.items[3].group > q.items[2].group && !strcmp(q.items[3].question, "c"),
                  "a JSON array appended: its groups after the others, its questions kept");
        }
        hn_qa_set_deinit(&q);
    }

    // Exact match.
    CHECK(norm_is("  Denver Broncos.\nThe Broncos won.", "denver broncos"), "first line, trimmed, final dot");
    CHECK(norm_is("Paris!?  ", "paris"), "final punctuation run");
    CHECK(norm_is("ÉCOLE   Normale", "école normale"), "Unicode case folding, spaces collapsed");
    CHECK(norm_is("Straße", "strasse"), "full case folding");
    CHECK(norm_is("3.5", "3.5") && norm_is("U.S.", "u.s"), "inner punctuation kept");
    CHECK(norm_is("\n4", ""), "an empty first line");
    const char *ans[] = {"Super Bowl 50", "the Super Bowl"};
    CHECK(hn_qa_match("super bowl 50.", ans, 2) && hn_qa_match("The Super Bowl\n\nmore", ans, 2) &&
              !hn_qa_match("Super Bowl", ans, 2) && !hn_qa_match("", ans, 2),
          "match");
    char small[4];
    CHECK(hn_qa_normalize("abcdef", 6, small, sizeof small) == 6 && !strcmp(small, "abc"), "cut to the buffer");
    CHECK(hn_qa_normalize("aé", 3, small, 3) == 3 && !strcmp(small, "a"), "cut at a character boundary");

    // SQuAD's exact match and token F1, computed by hand (SQuAD v1.1's evaluate script gives the same).
    static const struct {
        const char *gen;
        const char *gold[3];
        double f1;
        bool em;
    } sq[] = {
        // partial overlap: 2 shared of 3 generated, 2 gold: P 2/3, R 1
        {"Denver Broncos team", {"Denver Broncos"}, 0.8, false},
        {"Denver Broncos\nThe Broncos won.", {"Denver Broncos"}, 1, true}, // the first line only
        {"The Broncos", {"Broncos"}, 1, true},                               // articles out
        {"a cat and an apple", {"the cat"}, 0.5, false},                     // [cat and apple] / [cat]
        {"Denver, Colorado.", {"denver colorado"}, 1, true},                 // punctuation out, lower case
        {"U.S.", {"US"}, 1, true},                                           // inner punctuation too
        {"state-of-the-art", {"state of the art"}, 0, false},  // "stateoftheart": one token, none shared
        {"\xE2\x80\x9C" "Denver\xE2\x80\x9D", {"Denver"}, 0, false}, // English: only ASCII punctuation goes
        {"theatre", {"atre"}, 0, false},                       // an article only as a whole word
        {"ÉCOLE normale", {"école Normale"}, 1, true},
        // several gold answers, the best: [levis stadium] 0, [santa clara] P 2/3 R 1, [california] P 1/3 R 1
        {"Santa Clara California", {"Levi's Stadium", "Santa Clara", "California"}, 0.8, false},
        {"the the cat cat cat", {"cat cat dog"}, 2.0 / 3, false}, // shared as multisets: 2 cats
        // Chinese: one token a character, Unicode punctuation out, no articles
        {"北京大学", {"北京"}, 2.0 / 3, false},                  // P 2/4, R 1
        {"北京。", {"北京"}, 1, true},
        {"在2008年，", {"2008年"}, 0.8, false},                  // [在 2008 年] / [2008 年]
        {"the 北京", {"北京"}, 0.8, false},                      // "the" stays a token
        {"上海", {"北京", "上海市"}, 0.8, false},                // [上 海] / [上 海 市]: P 1, R 2/3
        // empty generations: nothing shared is 0 (v1.1), but two empty token lists are an exact match
        {"", {"Denver"}, 0, false},
        {"\nDenver", {"Denver"}, 0, false},
        {"...", {"The"}, 0, true},
    };
    for (size_t i = 0; i < sizeof sq / sizeof sq[0]; i++) {
        int na = 0;
        while (na < 3 && sq[i].gold[na]) na++;
        double f1 = hn_qa_f1(sq[i].gen, sq[i].gold, na);
        bool em = hn_qa_squad_em(sq[i].gen, sq[i].gold, na);
        CHECK(f1 > sq[i].f1 - 1e-9 && f1 < sq[i].f1 + 1e-9 && em == sq[i].em, "squad score %zu ('%s'): F1 %.4f EM %d, "
              "want %.4f %d", i, sq[i].gen, f1, em, sq[i].f1, sq[i].em);
    }
    CHECK(hn_qa_f1("Denver", NULL, 0) == 0 && !hn_qa_squad_em("", NULL, 0), "no gold answer: 0");
    double bad_f1 = hn_qa_f1("a \xff\xfe b", (const char *[]){"\xff\xfe"}, 1); // [\xff\xfe b] / [\xff\xfe]
    CHECK(bad_f1 > 2.0 / 3 - 1e-9 && bad_f1 < 2.0 / 3 + 1e-9, "invalid UTF-8 bytes are characters: %f", bad_f1);

    // Broken inputs: the file, the line or path, the field, what was expected.
    static const struct {
        const char *text;
        hn_qa_format f;
        const char *msg;
    } bad[] = {
        {"", HN_QA_AUTO, "q.json: no question in the file"},
        {"{\"prompt\": \"a\"}\n", HN_QA_AUTO, "q.json:1: answer: missing (expected a string or a list of strings"},
        {"{\"prompt\": \"a\", \"answer\": \"b\"}\n{\"prompt\": 3, \"answer\": \"b\"}\n", HN_QA_AUTO,
         "q.json:2: prompt: expected a string"},
        {"{\"prompt\": \"a\", \"answer\": []}\n", HN_QA_AUTO, "q.json:1: answer: expected a string or a non-empty list"},
        {"{\"prompt\": \"a\", \"answer\": [\"b\", 2]}\n", HN_QA_AUTO, "q.json:1: answer[1]: expected a string"},
        {"{\"prompt\": \"a\", \"answer\": 5}\n", HN_QA_AUTO, "q.json:1: answer: expected a string or a list"},
        {"{\"prompt\": \"a\", \"completion\": 5}\n", HN_QA_AUTO, "q.json:1: completion: expected a string"},
        {"{\"question\": \"a\", \"answer\": \"b\"}\n", HN_QA_AUTO, "q.json:1: expected {\"prompt\", \"answer\"}"},
        {"{\"instruction\": \"a\"}\n", HN_QA_AUTO, "q.json:1: output: expected a string"},
        {"{\"prompt\": \"a\", \"answer\": \"b\"}\n{broken\n", HN_QA_AUTO, "q.json:2: invalid JSON: "},
        {"[1]", HN_QA_AUTO, "q.json: item 1: expected a JSON object"},
        {"[{\"prompt\": \"a\", \"answer\": \"b\"}, \"x\"]", HN_QA_AUTO, "q.json: item 2: expected a JSON object"},
        {"{\"prompt\": \"a\", \"answer\": \"b\"}\n", HN_QA_SQUAD, "q.json: data: missing (expected SQuAD's"},
        {"{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n", HN_QA_SQUAD, "q.json: expected one SQuAD JSON object: "},
        {"{\"data\": 3}", HN_QA_AUTO, "q.json: data: expected SQuAD's list of articles"},
        {"{\"data\": [{\"title\": \"t\"}]}", HN_QA_AUTO, "q.json: data[0].paragraphs: expected a list of {context, qas}"},
        {"{\"data\": [{\"paragraphs\": [{\"qas\": []}]}]}", HN_QA_AUTO,
         "q.json: data[0].paragraphs[0].context: expected a string"},
        {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\"}]}]}", HN_QA_AUTO,
         "q.json: data[0].paragraphs[0].qas: expected a list of {question, answers}"},
        {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [{\"answers\": []}]}]}]}", HN_QA_AUTO,
         "q.json: data[0].paragraphs[0].qas[0].question: expected a string"},
        {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [{\"question\": \"q\"}]}]}]}", HN_QA_AUTO,
         "q.json: data[0].paragraphs[0].qas[0].answers: expected a list of {text, answer_start}"},
        {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [{\"question\": \"q\", \"answers\": [{}]}]}]}]}",
         HN_QA_AUTO, "q.json: data[0].paragraphs[0].qas[0].answers[0].text: expected a string"},
        {"{\"data\": [{\"paragraphs\": [{\"context\": \"c\", \"qas\": [{\"question\": \"q\", \"answers\": []}]}]}]}",
         HN_QA_AUTO, "q.json: no question with an answer (every one is unanswerable)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = parse(&q, bad[i].text, bad[i].f);
        CHECK(s == HN_ERR_FORMAT && !strncmp(hn_errmsg(), bad[i].msg, strlen(bad[i].msg)) && !q.items && !q.n,
              "case %zu: got '%s', want '%s'", i, s ? hn_errmsg() : "(accepted)", bad[i].msg);
        if (!s) hn_qa_set_deinit(&q);
    }
    // A split needs two groups; a missing file is named.
    if (!parse(&q, "{\"prompt\": \"a\", \"answer\": \"b\"}", HN_QA_AUTO)) {
        s = hn_qa_split(&q, &t, 0.5, 1);
        CHECK(s == HN_ERR_ARG && strstr(hn_errmsg(), "q.json: 1 question in 1 group: too few to hold out a share"),
              "%s", hn_errmsg());
        hn_qa_set_deinit(&q);
    }
    s = hn_qa_load(&q, "tests/data/no-such-questions.jsonl", HN_QA_AUTO);
    CHECK(s == HN_ERR_IO && strstr(hn_errmsg(), "no-such-questions.jsonl"), "%s", hn_errmsg());

    // XQuAD's English part (the shared data, when present): whole articles held out.
    const char *xq = "../shared/data/xquad/xquad.en.part1.json";
    if (!hn_qa_load(&q, xq, HN_QA_AUTO)) {
        CHECK(q.format == HN_QA_SQUAD && q.n == 632 && q.n_groups == 24, "xquad: %d questions, %d articles", q.n,
              q.n_groups);
        if (!hn_qa_split(&q, &t, 0.2, 42)) {
            bool apart = true;
            for (int i = 0; i < q.n; i++)
                for (int j = 0; j < t.n; j++) apart &= q.items[i].group != t.items[j].group;
            CHECK(apart && t.n >= 126 && t.n < 632 / 2 && q.n + t.n == 632, "xquad: %d held out, by article", t.n);
            printf("xquad: %d training questions, %d held out in %d articles\n", q.n, t.n, t.n_groups);
            hn_qa_set_deinit(&t);
        }
        hn_qa_set_deinit(&q);
    } else {
        printf("xquad part skipped: %s\n", hn_errmsg());
    }
    return test_done();
}

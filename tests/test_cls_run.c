// tests/test_cls_run.c — the run directory's classify.json (train/classify.c): written and read back on the tiny
// GPT-2 (method, classes in order), refused for another model (the tiny BERT) and for broken files, each with a
// one-line message; the method registry's error names the known methods.
#include "test.h"
#include "train/classify.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GPT2 "tests/data/tiny_gpt2/tiny_gpt2.gguf"
#define BERT "tests/data/tiny_bert/tiny_bert.gguf"

static char dir[64];

static void put(const char *content) {
    char p[128];
    snprintf(p, sizeof p, "%s/classify.json", dir);
    FILE *f = fopen(p, "wb");
    fputs(content, f);
    fclose(f);
}

static void read_fails(const hn_model *m, hn_status want, const char *needle) {
    char *method, **classes;
    int n;
    hn_status s = hn_cls_run_read(dir, m, &method, &classes, &n);
    CHECK(s == want, "status %s, expected %s (%s)", hn_status_name(s), hn_status_name(want), hn_errmsg());
    CHECK(strstr(hn_errmsg(), needle) && !strchr(hn_errmsg(), '\n'), "message '%s' lacks '%s'", hn_errmsg(), needle);
    if (!s) {
        for (int i = 0; i < n; i++) free(classes[i]);
        free(classes), free(method);
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/hn_cls_run_XXXXXX");
    if (!mkdtemp(dir)) return test_skip("no temporary directory");
    hn_model *g = NULL, *b = NULL;
    hn_status s = hn_model_load(&g, GPT2, NULL);
    CHECK(s == HN_OK, "%s: %s", GPT2, hn_errmsg());
    if (!s) s = hn_model_load(&b, BERT, NULL);
    CHECK(s == HN_OK, "%s: %s", BERT, hn_errmsg());
    if (s) return test_done();

    char *cl[] = {"neg", "pos", "neutral"};
    hn_cls_data d = {.n_classes = 3, .classes = cl, .source = "x.jsonl", .n = 10};
    hn_cls_options o = hn_cls_default_options();
    const char *words[] = {"pos=great|good"};
    o.label_words = words, o.n_label_words = 1;
    s = hn_cls_run_write(dir, g, "icl", &d, &o);
    CHECK(s == HN_OK, "write: %s", hn_errmsg());

    char *method, **classes;
    int n;
    s = hn_cls_run_read(dir, g, &method, &classes, &n);
    CHECK(s == HN_OK, "read: %s", hn_errmsg());
    if (!s) {
        CHECK(!strcmp(method, "icl") && n == 3 && !strcmp(classes[0], "neg") && !strcmp(classes[2], "neutral"),
              "read back method '%s', %d classes", method, n);
        for (int i = 0; i < n; i++) free(classes[i]);
        free(classes), free(method);
    }
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/classify.json.tmp.%d", dir, (int)getpid());
    CHECK(access(tmp, F_OK) != 0, "the temporary file is gone after the write");

    // Another model: refused, naming both.
    read_fails(b, HN_ERR_ARG, "another model");
    // Broken files.
    put("{\"task\": \"classify\", \"method\": \"icl\", \"classes\": [\"a\"], \"base\": {}}");
    read_fails(g, HN_ERR_FORMAT, "'classes'");
    put("{\"task\": \"lm\"}");
    read_fails(g, HN_ERR_FORMAT, "'task'");
    put("{\"task\": \"classify\", \"method\": \"icl\", \"classes\": [\"a\", \"b\"], \"base\": {\"architecture\": \"gpt2\", "
        "\"hash\": \"0123456789abcdef\", \"n_vocab\": 1, \"n_embd\": 1, \"n_layer\": 1}}");
    read_fails(g, HN_ERR_ARG, "another model");
    put("{\"task\": ");
    read_fails(g, HN_ERR_FORMAT, "invalid JSON");
    char none[96];
    snprintf(none, sizeof none, "%s/classify.json", dir);
    unlink(none);
    read_fails(g, HN_ERR_IO, "classification run directory");

    // The registry: an unknown name lists what this build has.
    CHECK(hn_cls_method_find("no-such-method") == NULL, "an unknown method found");
    CHECK(strstr(hn_errmsg(), "'no-such-method'") && strstr(hn_errmsg(), "expected"), "message: %s", hn_errmsg());

    hn_model_destroy(g), hn_model_destroy(b);
    rmdir(dir);
    return test_done();
}

// tests/test_data_real.c — the data pipeline on the real datasets of ../shared/data (MANIFEST.md there; never
// copied into the repository; set HONE_SHARED_DATA to read them elsewhere). For every example of an Alpaca-shaped
// file the loss covers exactly its output + <|im_end|> and the ids decode to the chat rendering, checked against
// jansson's own reading of the file; the other files load with the expected counts. Skips (77) without the folder
// or the model. Under HONE_SANITIZED only the smaller files are read.
#include "io/chat.h"
#include "model/registry.h"
#include "test.h"
#include "train/data.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static hn_tokenizer *tk;
static char *sys_prompt;
static char dir[512];

static bool load(hn_dataset *ds, const char *file, hn_data_params *p, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, file);
    double t = hn_now();
    hn_status s = hn_dataset_load(ds, path, tk, p);
    CHECK(s == HN_OK, "%s: %s", path, hn_errmsg());
    if (!s)
        printf("%-48s %-17s %5d examples, %8lld tokens (%lld in the loss), %lld truncated, %lld dropped: %.2f s\n",
               file, hn_data_format_name(ds->format), ds->n, (long long)ds->n_tokens, (long long)ds->n_loss_tokens,
               (long long)ds->n_truncated, (long long)ds->n_no_loss, hn_now() - t);
    return s == HN_OK;
}

static char *masked(const hn_example *x) {
    int32_t *ids = malloc((size_t)x->n * sizeof *ids);
    int k = 0;
    for (int i = 0; i < x->n; i++)
        if (x->mask[i]) ids[k++] = x->ids[i];
    char *s = NULL;
    hn_tokenizer_decode(tk, ids, k, &s);
    free(ids);
    return s;
}

// Every element of an Alpaca JSON array, against its example.
// want_whole: every example's ids also equal the tokenization of its whole rendering (special tokens recognised).
// They differ only where a content starts with whitespace that would join the header's "\n" (or spells a control
// token): hone tokenizes each content alone, as generation meets it.
static void alpaca_exact(const char *file, int want_n, bool want_whole) {
    hn_data_params p = hn_data_default_params();
    p.system_prompt = sys_prompt;
    p.max_len = 32768; // nothing truncated, so example i is element i
    hn_dataset ds;
    char path[1024];
    if (!load(&ds, file, &p, path, sizeof path)) return;
    json_error_t e;
    json_t *arr = json_load_file(path, 0, &e);
    CHECK(arr && (int)json_array_size(arr) == want_n && ds.n == want_n && ds.n_truncated == 0 && ds.n_skipped == 0,
          "%s: %d examples, %zu elements, expected %d", file, ds.n, arr ? json_array_size(arr) : 0, want_n);
    int bad = 0, whole = 0;
    for (int i = 0; arr && i < ds.n && i < (int)json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, (size_t)i), *h = json_object_get(o, "history");
        const char *ins = json_string_value(json_object_get(o, "instruction")),
                   *in = json_string_value(json_object_get(o, "input")),
                   *out = json_string_value(json_object_get(o, "output"));
        hn_chat_msg m[64];
        int n = 0;
        size_t want_len = strlen(out) + 16;
        char *want = malloc(want_len * 4 + 4096);
        want[0] = 0;
        for (size_t j = 0; h && j < json_array_size(h) && n < 60; j++) {
            m[n++] = (hn_chat_msg){"user", json_string_value(json_array_get(json_array_get(h, j), 0))};
            m[n++] = (hn_chat_msg){"assistant", json_string_value(json_array_get(json_array_get(h, j), 1))};
        }
        char *query = malloc(strlen(ins) + (in ? strlen(in) : 0) + 3);
        sprintf(query, "%s%s%s", ins, in && *in ? "\n\n" : "", in && *in ? in : "");
        m[n++] = (hn_chat_msg){"user", query};
        m[n++] = (hn_chat_msg){"assistant", out};
        // the masked tokens decode to every assistant content + <|im_end|>, in order
        size_t cap = 0;
        for (int j = 0; j < n; j++)
            if (!strcmp(m[j].role, "assistant")) cap += strlen(m[j].content) + 11;
        free(want);
        want = malloc(cap + 1);
        want[0] = 0;
        for (int j = 0; j < n; j++)
            if (!strcmp(m[j].role, "assistant")) strcat(strcat(want, m[j].content), "<|im_end|>");
        char *got = masked(&ds.ex[i]), *all = NULL, *rendered;
        hn_tokenizer_decode(tk, ds.ex[i].ids, ds.ex[i].n, &all);
        hn_chat_render(HN_CHAT_CHATML, sys_prompt, m, n, false, &rendered);
        int32_t *ids;
        int64_t nw;
        hn_tokenizer_encode(tk, rendered, -1, HN_TOK_SPECIAL, &ids, &nw);
        whole += nw != ds.ex[i].n || memcmp(ids, ds.ex[i].ids, (size_t)nw * sizeof *ids);
        free(ids);
        if (strcmp(got, want) || strcmp(all, rendered)) {
            if (bad++ < 3) CHECK(0, "%s element %d: loss text '%.80s...', expected '%.80s...'", file, i, got, want);
        }
        free(got);
        free(all);
        free(rendered);
        free(want);
        free(query);
    }
    CHECK(bad == 0, "%s: %d examples differ", file, bad);
    printf("%s: %d examples tokenized differently from their whole rendering\n", file, whole);
    CHECK(!want_whole || whole == 0, "%s: %d examples differ from the whole rendering's tokens", file, whole);
    json_decref(arr);
    hn_dataset_deinit(&ds);
}

static void counts(const char *file, hn_data_format want_fmt, int want_examples) {
    hn_data_params p = hn_data_default_params();
    p.system_prompt = sys_prompt;
    p.max_len = 1024;
    hn_dataset ds;
    char path[1024];
    if (!load(&ds, file, &p, path, sizeof path)) return;
    CHECK(ds.format == want_fmt && ds.n + ds.n_no_loss == want_examples && ds.n_skipped == 0,
          "%s: %s, %d + %lld dropped, expected %s with %d", file, hn_data_format_name(ds.format), ds.n,
          (long long)ds.n_no_loss, hn_data_format_name(want_fmt), want_examples);
    // Every example: mask[0] = 0, and unless truncated its last loss token is an end of generation.
    int odd = 0;
    for (int i = 0; i < ds.n; i++) {
        const hn_example *x = &ds.ex[i];
        int last = -1;
        for (int j = 0; j < x->n; j++)
            if (x->mask[j]) last = j;
        if (x->mask[0] || (x->n < p.max_len && !hn_tokenizer_is_eog(tk, x->ids[last]))) odd++;
    }
    CHECK(odd == 0, "%s: %d examples whose loss does not end in an end-of-generation token", file, odd);
    hn_dataset_deinit(&ds);
}

static void refused(const char *file, hn_status want, const char *msg) {
    hn_data_params p = hn_data_default_params();
    hn_dataset ds;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    hn_status s = hn_dataset_load(&ds, path, tk, &p);
    CHECK(s == want && strstr(hn_errmsg(), msg), "%s: %s (%s)", file, hn_errmsg(), hn_status_name(s));
    if (!s) hn_dataset_deinit(&ds);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", getenv("HONE_SHARED_DATA") ? getenv("HONE_SHARED_DATA") : "../shared/data");
    struct stat st;
    char manifest[600];
    snprintf(manifest, sizeof manifest, "%s/MANIFEST.md", dir);
    if (stat(manifest, &st) != 0) {
        char why[700];
        snprintf(why, sizeof why, "no shared datasets at %s (set HONE_SHARED_DATA)", dir);
        return test_skip(why);
    }
    char *path;
    if (hn_model_resolve("smollm2-135m-instruct", &path)) return test_skip(hn_errmsg());
    hn_gguf g;
    if (hn_gguf_open(&g, path) || hn_tokenizer_from_gguf(&tk, &g)) {
        fprintf(stderr, "%s\n", hn_errmsg());
        return 1;
    }
    hn_chat_detect(&g, &sys_prompt);
    bool small = getenv("HONE_SANITIZED") != NULL;

    alpaca_exact("alpaca-demo/alpaca_en_demo.json", 999, true);
    counts("multiturn-chat/glaive_toolcall_en_demo.json", HN_DATA_SHAREGPT, 300);
    counts("self-instruct-seed/seed_tasks.jsonl", HN_DATA_ALPACA, 175); // one instance per task
    refused("gsm8k/train.jsonl", HN_ERR_FORMAT, "train.jsonl:1: cannot tell the data format from the keys {'question', "
                                                "'answer'}");
    refused("preference/dpo_en_demo.json", HN_ERR_UNSUPPORTED, "dpo_en_demo.json:2: element 0: preference data");
    if (!small) {
        alpaca_exact("lima/lima.json", 1029, false);
        alpaca_exact("multiturn-chat/oaast_sft_zh.json", 689, false);
        alpaca_exact("alpaca-demo/alpaca_zh_demo.json", 1000, false);
        counts("self-instruct-seed/user_oriented_instructions.jsonl", HN_DATA_ALPACA, 252);
        counts("preference/kto_en_demo.json", HN_DATA_MESSAGES, 300);
        counts("text-corpus/llamafactory-demo/c4_demo.jsonl", HN_DATA_TEXT, 300);
    }
    free(sys_prompt);
    hn_tokenizer_destroy(tk);
    hn_gguf_close(&g);
    free(path);
    return test_done();
}

// cli/cmd_ask.c — `hone ask`: a question answered from a retrieval database (hone index): the best chunks as
// numbered sources before it, a greedy answer that cites them (adapt/rag.h).
#include "adapt/rag.h"
#include "cli/adapters.h"
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *ask_usage =
    "usage: hone ask --db DIR -m MODEL [--adapter PATH] [--k 5] [--json] [--exact] \"question\"\n"
    "       hone ask --db DIR --no-generate [--k 5] [--json] \"question\"\n\n"
    "Embeds the question with the database's embedding model, retrieves the k best chunks and has MODEL answer\n"
    "from them as numbered sources, citing them as [1], [2]; the sources follow the answer.\n\n"
    "      --db DIR        a database made by hone index\n"
    "  -m, --model MODEL   the model that answers (GGUF, Hugging Face directory or pulled name)\n"
    "      --k K           chunks retrieved (default 5); the prompt keeps as many of the best as the context holds\n"
    "  -n, --max-new N     answer tokens at most (default 256)\n"
    "      --no-generate   retrieve only: print the chunks\n"
    "      --json          one JSON object: {\"answer\", \"chunks\": [{\"id\", \"text\", \"score\", \"source\",\n"
    "                      \"start\", \"end\", \"meta\"}]} (no \"answer\" with --no-generate)\n"
    "      --search-width W  hnsw's search beam / ivfpq's lists probed\n"
    "      --exact         fp32 reference path (both models)\n"
    "      --threads N     threads (default: physical cores)\n";

static int print_json(const char *answer, const hn_rag_hit *h, int n) {
    json_t *o = json_object(), *chunks = json_array();
    if (answer) json_object_set_new(o, "answer", json_string(answer));
    for (int i = 0; i < n; i++) {
        json_t *meta = json_loads(h[i].meta, 0, NULL);
        json_array_append_new(chunks, json_pack("{s:I, s:s, s:f, s:s, s:I, s:I, s:o}", "id", (json_int_t)h[i].id,
                                                "text", h[i].text, "score", (double)h[i].score, "source",
                                                h[i].source, "start", (json_int_t)h[i].start, "end",
                                                (json_int_t)h[i].end, "meta", meta ? meta : json_object()));
    }
    json_object_set_new(o, "chunks", chunks);
    char *t = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(o);
    if (!t) return cli_usage_error("out of memory");
    printf("%s\n", t);
    free(t);
    return 0;
}

int cmd_ask(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(ask_usage, stdout);
        fputs(cli_adapters_usage, stdout);
        return 0;
    }
    const char *db = NULL, *model = NULL, *question = NULL;
    int k = 5, max_new = 256, width = 0, rc = -1;
    bool json = false, no_gen = false, exact = false;
    cli_adapters ca = {0};
    for (int i = 1; i < argc && rc < 0; i++) {
        bool err = false;
        if (cli_flag_str(argc, argv, &i, NULL, "--db", &db, &err) ||
            cli_flag_str(argc, argv, &i, "-m", "--model", &model, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--k", &k, &err) ||
            cli_flag_int(argc, argv, &i, "-n", "--max-new", &max_new, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--search-width", &width, &err) ||
            cli_flag_threads(argc, argv, &i, &err) || cli_adapters_flag(&ca, argc, argv, &i, &err)) {
            if (err) rc = 2;
        } else if (cli_flag_bool(argv, i, NULL, "--json")) json = true;
        else if (cli_flag_bool(argv, i, NULL, "--no-generate")) no_gen = true;
        else if (cli_flag_bool(argv, i, NULL, "--exact")) exact = true;
        else if (argv[i][0] == '-' && argv[i][1])
            rc = cli_usage_error("ask: unknown flag '%s' (hone ask --help)", argv[i]);
        else if (question) rc = cli_usage_error("ask: one question (quote it); '%s' is a second", argv[i]);
        else question = argv[i];
    }
    if (rc < 0 && !db) rc = cli_usage_error("ask: --db DIR is required (hone ask --help)");
    if (rc < 0 && !question) rc = cli_usage_error("ask: no question (hone ask --help)");
    if (rc < 0 && !model && !no_gen) rc = cli_usage_error("ask: -m MODEL is required to answer (or --no-generate)");
    if (rc < 0 && (k < 1 || k > 100)) rc = cli_usage_error("ask: --k %d, expected 1 to 100", k);
    if (rc < 0 && max_new < 1) rc = cli_usage_error("ask: --max-new %d, expected at least 1", max_new);
    if (rc >= 0) {
        cli_adapters_deinit(&ca);
        return rc;
    }
    hn_rag *r = NULL;
    hn_model *m = NULL;
    hn_rag_hit *hits = hn_calloc((size_t)k, sizeof *hits, "hits");
    char *prompt = NULL, *answer = NULL;
    int n = 0, used = 0;
    hn_rag_open_params op = {.exact = exact};
    hn_status s = hits ? hn_rag_open(&r, db, &op) : HN_ERR_NOMEM;
    if (!s && width > 0) hn_rag_set_search_width(r, width);
    if (!s) s = hn_rag_retrieve(r, &question, 1, k, hits, &n);
    if (!s && !no_gen) {
        hn_model_params mp = hn_model_default_params();
        mp.mm_mode = exact ? HN_MM_EXACT : HN_MM_FAST;
        s = hn_model_load(&m, model, &mp);
        if (!s) s = cli_adapters_attach(&ca, m);
        // The sources fit the context less the answer and a margin for the chat template's markup.
        int ctx = m && m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 4096;
        if (!s && !(prompt = hn_rag_prompt_fit(m->tok, hits, n, question, NULL, ctx - max_new - 64, &used)))
            s = HN_ERR_NOMEM;
        if (!s && used < n)
            hn_warn("the context holds %d of the %d sources retrieved; the rest are left out of the prompt", used, n);
        if (!s) s = hn_rag_answer(m, prompt, max_new, &answer);
    }
    if (s) rc = cli_fail();
    else if (json) rc = print_json(answer, hits, no_gen ? n : used);
    else {
        rc = 0;
        if (answer) printf("%s\n\nSources:\n", answer);
        for (int i = 0; i < (no_gen ? n : used); i++) { // the first 200 bytes, cut at a character
            const char *t = hits[i].text;
            size_t len = strlen(t), cut = len > 200 ? 200 : len;
            while (cut < len && cut > 0 && ((unsigned char)t[cut] & 0xC0) == 0x80) cut--;
            printf("[%d] %s (%lld-%lld, score %.4f): %.*s%s\n", i + 1, hits[i].source, (long long)hits[i].start,
                   (long long)hits[i].end, (double)hits[i].score, (int)cut, t, cut < len ? "..." : "");
        }
    }
    free(prompt), free(answer);
    if (hits) hn_rag_hits_free(hits, k);
    free(hits);
    hn_rag_close(r);
    cli_adapters_deinit(&ca);
    hn_model_destroy(m);
    return rc;
}

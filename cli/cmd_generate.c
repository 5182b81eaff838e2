// cli/cmd_generate.c — `hone generate` (continue a prompt, streamed) and `hone chat` (an interactive conversation
// kept in the KV cache: each turn appends only its new text).
#define _GNU_SOURCE // getline
#include "cli/adapters.h"
#include "cli/cli.h"
#include "model/sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_STOP 16

typedef struct {
    const char *model, *prompt, *system;
    int n_predict, n_ctx;
    bool chat, exact;
    hn_dtype quantize;
    const char *stop[MAX_STOP];
    int n_stop;
    hn_sampler_params sp;
    cli_adapters ca;
} gen_opts;

static const char *gen_usage =
    "usage: hone generate -m MODEL -p PROMPT [options]\n"
    "       hone chat -m MODEL [--system TEXT] [options]\n\n"
    "  -m, --model MODEL       GGUF file or pulled model name\n"
    "  -p, --prompt TEXT       the text to continue (generate)\n"
    "  -n, --n-predict N       tokens to generate at most (generate: 128; chat: until the end of the turn)\n"
    "      --temp T            temperature; 0 = greedy (default 0.8)\n"
    "      --top-k K           keep the K most likely tokens; 0 = off (default 40)\n"
    "      --top-p P           keep the most likely tokens up to probability P; 1 = off (default 0.95)\n"
    "      --min-p P           drop tokens below P times the best one's probability; 0 = off (default 0.05)\n"
    "      --repeat-penalty R  llama.cpp's repetition penalty over the last 64 tokens; 1 = off (default 1)\n"
    "      --seed S            random seed (default 0)\n"
    "      --stop STR          stop before this text (repeatable)\n"
    "      --chat              wrap the prompt in the model's chat template (generate)\n"
    "      --system TEXT       system prompt for --chat and chat (default: the template's own)\n"
    "      --exact             fp32 reference path (dequantized weights, fp32 activations)\n"
    CLI_QUANTIZE_USAGE
    "      --ctx N             context size in tokens (default: what the run needs, at most the model's)\n"
    "      --threads N         threads (default: physical cores)\n";
static const char *gen_usage_tail =
    "generate streams the text to stdout; its last line on stderr is `prompt: X tok/s, decode: Y tok/s`.\n"
    "chat reads one user message a line from stdin, until end of input or /exit.\n";

// Parses the flags of both commands; returns -1 to go on, or an exit code.
// A model file without a chat template (a base model) is talked to in ChatML; say so once (a template hone does not
// recognise was already named when the model loaded).
// The ids a sampler may pick: the tokenizer's. A Hugging Face model may pad its embedding past them (rows no text
// ever encodes to), and hone convert pads the vocabulary to match; those rows must never be sampled.
static int sample_vocab(const hn_model *m) {
    int n = m->tok ? hn_tokenizer_n_vocab(m->tok) : m->hp.n_vocab;
    return n < m->hp.n_vocab ? n : m->hp.n_vocab;
}

static void warn_no_template(const hn_model *m) {
    if (!hn_gguf_find(&m->gguf, "tokenizer.chat_template"))
        hn_warn("%s has no chat template; using ChatML, which a base model was not trained on", m->path);
}

static int parse(int argc, char **argv, gen_opts *o, bool is_chat) {
    *o = (gen_opts){.n_predict = is_chat ? -1 : 128, .sp = hn_sampler_default_params()};
    if (cli_wants_help(argc, argv)) {
        fputs(gen_usage, stdout);
        fputs(cli_adapters_usage, stdout);
        fputs(gen_usage_tail, stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        bool err = false;
        const char *stop = NULL;
        if (cli_flag_str(argc, argv, &i, "-m", "--model", &o->model, &err) ||
            cli_flag_str(argc, argv, &i, "-p", "--prompt", &o->prompt, &err) ||
            cli_flag_str(argc, argv, &i, NULL, "--system", &o->system, &err) ||
            cli_flag_int(argc, argv, &i, "-n", "--n-predict", &o->n_predict, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--ctx", &o->n_ctx, &err) ||
            cli_flag_float(argc, argv, &i, NULL, "--temp", &o->sp.temp, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--top-k", &o->sp.top_k, &err) ||
            cli_flag_float(argc, argv, &i, NULL, "--top-p", &o->sp.top_p, &err) ||
            cli_flag_float(argc, argv, &i, NULL, "--min-p", &o->sp.min_p, &err) ||
            cli_flag_float(argc, argv, &i, NULL, "--repeat-penalty", &o->sp.repeat_penalty, &err) ||
            cli_flag_u64(argc, argv, &i, NULL, "--seed", &o->sp.seed, &err) || cli_flag_threads(argc, argv, &i, &err) ||
            cli_flag_quantize(argc, argv, &i, &o->quantize, &err)) {
            if (err) return 2;
        } else if (cli_flag_str(argc, argv, &i, NULL, "--stop", &stop, &err)) {
            if (err) return 2;
            if (o->n_stop == MAX_STOP) return cli_usage_error("at most %d --stop strings", MAX_STOP);
            if (!*stop) return cli_usage_error("--stop expects a non-empty string");
            o->stop[o->n_stop++] = stop;
        } else if (cli_flag_bool(argv, i, NULL, "--chat") && !is_chat) {
            o->chat = true;
        } else if (cli_flag_bool(argv, i, NULL, "--exact")) {
            o->exact = true;
        } else if (cli_adapters_flag(&o->ca, argc, argv, &i, &err)) {
            if (err) return 2;
        } else {
            return cli_usage_error("%s: unknown argument '%s' (hone %s --help)", argv[0], argv[i], argv[0]);
        }
    }
    if (!o->model) return cli_usage_error("%s: -m MODEL is required (hone %s --help)", argv[0], argv[0]);
    if (!is_chat && !o->prompt) return cli_usage_error("generate: -p PROMPT is required (hone generate --help)");
    if (o->n_ctx < 0) return cli_usage_error("--ctx expects a positive count, got %d", o->n_ctx);
    if (o->sp.temp < 0 || o->sp.top_k < 0 || !(o->sp.top_p > 0 && o->sp.top_p <= 1) || o->sp.min_p < 0 ||
        o->sp.min_p > 1 || !(o->sp.repeat_penalty > 0))
        return cli_usage_error("sampling: expected --temp >= 0, --top-k >= 0, 0 < --top-p <= 1, 0 <= --min-p <= 1, "
                               "--repeat-penalty > 0");
    return -1;
}

static hn_status load(gen_opts *o, hn_model **m) {
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = o->exact ? HN_MM_EXACT : HN_MM_FAST;
    mp.quantize = o->quantize;
    hn_status s = hn_model_load(m, o->model, &mp);
    return s ? s : cli_adapters_attach(&o->ca, *m);
}

static bool to_stdout(const char *text, size_t len, void *user) {
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

static void print_speed(int n_prompt, double prompt_s, int n_gen, double decode_s) {
    fprintf(stderr, "prompt: %.1f tok/s, decode: %.1f tok/s\n", prompt_s > 0 ? n_prompt / prompt_s : 0.0,
            decode_s > 0 ? n_gen / decode_s : 0.0);
}

#define FAIL()                                                                                                       \
    do {                                                                                                             \
        rc = cli_fail();                                                                                             \
        goto out;                                                                                                    \
    } while (0)

// The context a run gets unless --ctx says: what it needs, at most what the model was trained for (a prompt that
// does not fit then fails in the forward pass with a message naming both lengths).
static int default_ctx(const hn_model *m, int64_t need) {
    int limit = m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 4096;
    return need < limit ? (int)need : limit;
}

int cmd_generate(int argc, char **argv) {
    gen_opts o;
    int rc = parse(argc, argv, &o, false);
    if (rc >= 0) {
        cli_adapters_deinit(&o.ca);
        return rc;
    }
    hn_model *m = NULL;
    hn_kv_cache *kv = NULL;
    hn_sampler *s = NULL;
    char *text = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    if (load(&o, &m)) FAIL();
    const char *prompt = o.prompt;
    if (o.chat) {
        warn_no_template(m);
        hn_chat_msg msgs[2];
        int nm = 0;
        if (o.system) msgs[nm++] = (hn_chat_msg){"system", o.system};
        msgs[nm++] = (hn_chat_msg){"user", o.prompt};
        if (hn_chat_render(m->chat, m->default_system, msgs, nm, true, &text)) FAIL();
        prompt = text;
    }
    if (hn_tokenizer_encode(m->tok, prompt, -1, HN_TOK_SPECIAL | HN_TOK_ADD_BOS, &ids, &n)) FAIL();
    if (n == 0) {
        rc = cli_usage_error("generate: the prompt is empty");
        goto out;
    }
    int n_ctx = o.n_ctx ? o.n_ctx : default_ctx(m, n + (o.n_predict < 0 ? 0 : o.n_predict));
    if (!(kv = hn_kv_cache_create(m, n_ctx)) || !(s = hn_sampler_create(&o.sp, sample_vocab(m)))) FAIL();
    if (n > INT32_MAX) n = INT32_MAX; // far past any context: the forward pass refuses it
    hn_generate_params gp = {.n_predict = o.n_predict, .stop = o.stop, .n_stop = o.n_stop, .on_text = to_stdout};
    hn_generate_stats st;
    if (hn_generate(m, kv, s, ids, (int)n, &gp, &st)) FAIL();
    fputc('\n', stdout);
    fflush(stdout);
    print_speed(st.n_prompt, st.prompt_s, st.n_gen, st.decode_s);
    rc = 0;
out:
    free(ids);
    free(text);
    hn_sampler_destroy(s);
    hn_kv_cache_destroy(kv);
    cli_adapters_deinit(&o.ca);
    hn_model_destroy(m);
    return rc;
}

// Appends the reply to *reply (chat keeps the text of the turn, to know what the cache holds).
typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} text_buf;

static bool chat_text(const char *text, size_t len, void *user) {
    text_buf *b = user;
    to_stdout(text, len, NULL);
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + len + 1) cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->failed = true;
            return false;
        }
        b->buf = nb, b->cap = cap;
    }
    memcpy(b->buf + b->len, text, len);
    b->len += len;
    b->buf[b->len] = 0;
    return true;
}

// The conversation as messages; the cache holds the rendering of msgs[0..n) plus the last reply's tokens.
typedef struct {
    hn_chat_msg *msgs;
    int n, cap;
} conversation;

static bool conv_add(conversation *c, const char *role, const char *content) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        hn_chat_msg *nm = realloc(c->msgs, cap * sizeof *nm);
        if (!nm) return false;
        c->msgs = nm, c->cap = cap;
    }
    char *copy = strdup(content);
    if (!copy) return false;
    c->msgs[c->n++] = (hn_chat_msg){role, copy};
    return true;
}

int cmd_chat(int argc, char **argv) {
    gen_opts o;
    int rc = parse(argc, argv, &o, true);
    if (rc >= 0) {
        cli_adapters_deinit(&o.ca);
        return rc;
    }
    hn_model *m = NULL;
    hn_kv_cache *kv = NULL;
    hn_sampler *s = NULL;
    conversation conv = {0};
    char *line = NULL, *rendered = NULL, *prev = NULL;
    size_t line_cap = 0, prev_len = 0; // prev: the text the cache holds (rendering + reply)
    int32_t *ids = NULL;
    int n_prompt_tot = 0, n_gen_tot = 0;
    double prompt_s = 0, decode_s = 0;
    bool tty = isatty(0);
    if (load(&o, &m)) FAIL();
    int n_ctx = o.n_ctx ? o.n_ctx : default_ctx(m, 4096);
    if (!(kv = hn_kv_cache_create(m, n_ctx)) || !(s = hn_sampler_create(&o.sp, sample_vocab(m)))) FAIL();
    if (o.system && !conv_add(&conv, "system", o.system)) FAIL();
    warn_no_template(m);
    for (;;) {
        if (tty) fputs("> ", stderr);
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (!strcmp(line, "/exit")) break;
        if (!got) continue;
        if (!conv_add(&conv, "user", line)) FAIL();
        free(rendered);
        rendered = NULL;
        if (hn_chat_render(m->chat, m->default_system, conv.msgs, conv.n, true, &rendered)) FAIL();
        // Only the text after what the cache already holds is run; if the template rendered the history
        // differently (it never should), start over from an empty cache.
        const char *fresh = rendered;
        if (prev && !strncmp(rendered, prev, prev_len)) fresh = rendered + prev_len;
        else hn_kv_cache_truncate(kv, 0);
        int64_t n = 0;
        free(ids);
        ids = NULL;
        if (hn_tokenizer_encode(m->tok, fresh, -1, HN_TOK_SPECIAL, &ids, &n)) FAIL();
        if (n > INT32_MAX) n = INT32_MAX;
        text_buf reply = {0};
        hn_generate_params gp = {.n_predict = o.n_predict, .stop = o.stop, .n_stop = o.n_stop,
                                 .on_text = chat_text, .user = &reply};
        hn_generate_stats st;
        hn_status e = hn_generate(m, kv, s, ids, (int)n, &gp, &st);
        fputc('\n', stdout);
        fflush(stdout);
        if (e || reply.failed || !conv_add(&conv, "assistant", reply.buf ? reply.buf : "")) {
            free(reply.buf);
            FAIL();
        }
        free(reply.buf);
        n_prompt_tot += st.n_prompt, n_gen_tot += st.n_gen;
        prompt_s += st.prompt_s, decode_s += st.decode_s;
        // The cache now holds the rendering up to the assistant's opening plus the reply's tokens.
        size_t rl = strlen(rendered), al = strlen(conv.msgs[conv.n - 1].content);
        char *np = realloc(prev, rl + al + 1);
        if (!np) {
            rc = cli_usage_error("chat: out of memory");
            goto out;
        }
        prev = np;
        memcpy(prev, rendered, rl);
        memcpy(prev + rl, conv.msgs[conv.n - 1].content, al + 1);
        prev_len = rl + al;
    }
    print_speed(n_prompt_tot, prompt_s, n_gen_tot, decode_s);
    rc = 0;
out:
    for (int i = 0; i < conv.n; i++) free((char *)conv.msgs[i].content);
    free(conv.msgs);
    free(line);
    free(rendered);
    free(prev);
    free(ids);
    hn_sampler_destroy(s);
    hn_kv_cache_destroy(kv);
    cli_adapters_deinit(&o.ca);
    hn_model_destroy(m);
    return rc;
}

// cli/main.c — `hone <command>`: dispatch, help, and the log sink that prints the library's warnings.
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"pull", cmd_pull, "download a model by name into the cache and print its path"},
    {"info", cmd_info, "show a model's architecture, sizes, metadata and tensors"},
    {"tokenize", cmd_tokenize, "split text into tokens"},
    {"generate", cmd_generate, "continue a prompt, streaming the text"},
    {"chat", cmd_chat, "talk with a chat model"},
    {"score", cmd_score, "log-probability of every token of a text, and its perplexity"},
    {"embed", cmd_embed, "one vector per line of a file (sentence embeddings), as .npy or JSON lines"},
    {"quantize", cmd_quantize, "rewrite a GGUF with another weight type"},
    {"train", cmd_train, "fine-tune a model from a recipe or flags (LoRA or full)"},
    {"eval", cmd_eval, "score a classification run (accuracy, macro-F1), retrieval (recall@k) or RAG answers (F1)"},
    {"classify", cmd_classify, "label texts with a classification run"},
    {"bakeoff", cmd_bakeoff, "compare classification methods on one dataset and budget: report.html + report.json"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server: completions, chat, embeddings, adapters per request"},
    {"index", cmd_index, "chunk, embed and index documents into a retrieval database (FAISS + SQLite)"},
    {"ask", cmd_ask, "answer a question from a retrieval database, citing the sources"},
    {"vote", cmd_vote, "several models or adapters answer each question; the majority answer wins"},
    {"merge", cmd_merge, "fold LoRA adapters into a model's weights, writing a new GGUF"},
    {"convert", cmd_convert, "write a Hugging Face model directory as a GGUF file"},
    {"export", cmd_export, "write a model as a Hugging Face directory (safetensors, config, tokenizer)"},
};

static void usage(FILE *f) {
    fprintf(f, "hone — adapt pretrained language models to new tasks, and serve them\n\n"
               "usage: hone <command> [options]    (hone <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nEvery command accepts --threads N (default: the number of physical cores).\n"
               "A model is a GGUF path or a name pulled with `hone pull` (cache: $HONE_HOME, default ~/.cache/hone).\n");
}

static void log_to_stderr(hn_log_level level, const char *msg, void *user) {
    fprintf(stderr, "hone: %s%s\n", level == HN_LOG_WARN ? "warning: " : "", msg);
}

int main(int argc, char **argv) {
    hn_log_set(log_to_stderr, NULL, HN_LOG_INFO); // info: one-line reports such as what --quantize saved
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "hone: unknown command '%s' (hone --help lists the commands)\n", argv[1]);
    return 2;
}

// cli/cmd_tokenize.c — `hone tokenize -m MODEL [--plain] [--ids] TEXT`: the tokens of a text, one a line.
#include "cli/cli.h"
#include "io/gguf.h"
#include "io/tokenizer.h"
#include "model/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: hone tokenize -m MODEL [--plain] [--ids] [--threads N] TEXT\n\n"
           "Splits TEXT into the model's tokens and prints one a line: the id, a tab, and the text the token stands\n"
           "for, escaped so that every token is one visible line: \\n \\t \\r and \\\\ for newline, tab, carriage\n"
           "return and backslash, \\xNN for other control bytes and for the bytes of a character that the token\n"
           "holds only part of (byte-level BPE can split a character between tokens). TEXT '-' reads standard input.\n\n"
           "  -m, --model MODEL  a GGUF path or a name pulled with `hone pull`\n"
           "  --plain            treat special-token text such as <|im_start|> as ordinary text (by default it is\n"
           "                     that token, as Hugging Face's encode(text, add_special_tokens=False) does)\n"
           "  --ids              print only the ids, space-separated on one line\n"
           "  --threads N        accepted for uniformity (tokenizing is single-threaded)\n\n"
           "No BOS token is added unless the model's metadata asks for one (tokenizer.ggml.add_bos_token).\n");
}

// Length of the valid UTF-8 sequence at s (2 to 4 bytes), 0 if there is none.
static int utf8_len(const unsigned char *s, int n) {
    int k = s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (!k || k > n) return 0;
    for (int i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) || (s[0] == 0xF0 && s[1] < 0x90) ||
        (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return k;
}

static void put_escaped(FILE *f, const unsigned char *s, int n) {
    for (int i = 0; i < n; i++) {
        unsigned char c = s[i];
        int k;
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\\') fputs("\\\\", f);
        else if (c < 0x20 || c == 0x7F) fprintf(f, "\\x%02x", c);
        else if (c < 0x80) fputc(c, f);
        else if ((k = utf8_len(s + i, n - i))) {
            fwrite(s + i, 1, (size_t)k, f);
            i += k - 1;
        } else {
            fprintf(f, "\\x%02x", c);
        }
    }
}

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0;) {
        n += got;
        if (n == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) free(buf);
            buf = p;
        }
    }
    if (!buf || ferror(stdin)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int cmd_tokenize(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *model = NULL, *text = NULL;
    bool plain = false, ids_only = false, err = false, options = true;
    for (int i = 1; i < argc; i++) {
        if (options && !strcmp(argv[i], "--")) {
            options = false;
        } else if (options && (cli_flag_threads(argc, argv, &i, &err) ||
                               cli_flag_str(argc, argv, &i, "-m", "--model", &model, &err))) {
            if (err) return 2;
        } else if (options && cli_flag_bool(argv, i, NULL, "--plain")) {
            plain = true;
        } else if (options && cli_flag_bool(argv, i, NULL, "--ids")) {
            ids_only = true;
        } else if (options && argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("tokenize: unknown option '%s' (hone tokenize --help)", argv[i]);
        } else if (text) {
            return cli_usage_error("tokenize: one TEXT at a time (quote it), got a second: '%s'", argv[i]);
        } else {
            text = argv[i];
        }
    }
    if (!model) return cli_usage_error("tokenize: expected -m MODEL (hone tokenize --help)");
    if (!text) return cli_usage_error("tokenize: expected a TEXT to tokenize, or '-' for standard input");

    char *path, *input = NULL;
    size_t len = strlen(text);
    if (hn_model_resolve(model, &path)) return cli_fail();
    hn_gguf g;
    hn_status s = hn_gguf_open(&g, path);
    free(path);
    if (s) return cli_fail();
    hn_tokenizer *tk;
    if ((s = hn_tokenizer_from_gguf(&tk, &g))) {
        hn_gguf_close(&g);
        return cli_fail();
    }
    if (!strcmp(text, "-") && !(text = input = read_stdin(&len))) {
        fprintf(stderr, "hone: tokenize: cannot read standard input\n");
        hn_tokenizer_destroy(tk);
        hn_gguf_close(&g);
        return 1;
    }
    int32_t *ids;
    int64_t n;
    s = hn_tokenizer_encode(tk, text, (int64_t)len, HN_TOK_ADD_BOS | (plain ? 0 : HN_TOK_SPECIAL), &ids, &n);
    if (!s) {
        unsigned char buf[256];
        for (int64_t i = 0; i < n; i++) {
            if (ids_only) {
                printf(i ? " %d" : "%d", ids[i]);
                continue;
            }
            int k = hn_tokenizer_token_bytes(tk, ids[i], (char *)buf, sizeof buf);
            printf("%d\t", ids[i]);
            if (k > (int)sizeof buf) printf("%s", hn_tokenizer_piece(tk, ids[i])); // only very long special tokens
            else put_escaped(stdout, buf, k);
            putchar('\n');
        }
        if (ids_only) putchar('\n');
        free(ids);
    }
    free(input);
    hn_tokenizer_destroy(tk);
    hn_gguf_close(&g);
    if (s) return cli_fail();
    return fflush(stdout) == 0 ? 0 : 1;
}

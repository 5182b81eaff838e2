// tests/test_chat.c — chat templates: detection from tokenizer.chat_template (tiny GGUF files written here, and the
// real model when pulled) and rendering against jinja2's rendering of SmolLM2's template
// (tests/data/tokenizer_chat.tsv, made by tools/reference/tokenizer_ref.py) and of Llama 2, Llama 3 and Qwen2's
// (tests/data/chat_templates.tsv, tools/reference/chat_templates_ref.py), spans included.
#include "io/chat.h"
#include "model/registry.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// SmolLM2-135M-Instruct's tokenizer.chat_template, as its GGUF has it.
static const char smollm2_template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' "
    "+ message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt "
    "%}{{ '<|im_start|>assistant\n' }}{% endif %}";
static const char smollm2_system[] = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

static char warned[1024];
static void capture(hn_log_level level, const char *msg, void *user) {
    if (level == HN_LOG_WARN) snprintf(warned, sizeof warned, "%s", msg);
}

static hn_chat_template detect_tiny(const char *tmpl, char **sys) {
    char path[256];
    snprintf(path, sizeof path, "%s/hone_test_chat_%d.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    hn_gguf_writer *w = hn_gguf_writer_create();
    hn_gguf_writer_set_str(w, "general.architecture", "llama");
    if (tmpl) hn_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl);
    hn_status s = hn_gguf_writer_write(w, path);
    hn_gguf_writer_destroy(w);
    CHECK(s == HN_OK, "write %s: %s", path, hn_errmsg());
    hn_gguf g;
    hn_chat_template t = HN_CHAT_TEMPLATE_COUNT;
    *sys = NULL;
    warned[0] = 0;
    if (!s && !(s = hn_gguf_open(&g, path))) {
        t = hn_chat_detect(&g, sys);
        hn_gguf_close(&g);
    }
    unlink(path);
    return t;
}

static void detection(void) {
    char *sys;
    hn_chat_template t = detect_tiny(smollm2_template, &sys);
    CHECK(t == HN_CHAT_CHATML && sys && !strcmp(sys, smollm2_system) && !warned[0],
          "SmolLM2's template: ChatML with its default system prompt (got '%s', warning '%s')", sys ? sys : "(none)",
          warned);
    free(sys);

    // The same default written with Jinja escapes, as other ChatML models (Qwen2) write it.
    t = detect_tiny("{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant."
                    "<|im_end|>\\n' }}{% endif %}{% for m in messages %}{{ '<|im_start|>' + m['role'] }}{% endfor %}",
                    &sys);
    CHECK(t == HN_CHAT_CHATML && sys && !strcmp(sys, "You are a helpful assistant."), "escaped default: '%s'",
          sys ? sys : "(none)");
    free(sys);

    // Plain ChatML with no default system turn.
    t = detect_tiny("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                    "'<|im_end|>' + '\\n'}}{% endfor %}",
                    &sys);
    CHECK(t == HN_CHAT_CHATML && !sys && !warned[0], "ChatML without a default system prompt");
    free(sys);

    // A system turn built from a variable is not a default prompt.
    t = detect_tiny("{{ '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}", &sys);
    CHECK(t == HN_CHAT_CHATML && !sys, "an expression is not a default system prompt ('%s')", sys ? sys : "");
    free(sys);

    // Llama 3 and Llama 2 are recognised by their markers.
    t = detect_tiny("{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + "
                    "'<|eot_id|>' }}", &sys);
    CHECK(t == HN_CHAT_LLAMA3 && !sys && !warned[0], "Llama 3 template (got %s)", hn_chat_template_name(t));
    t = detect_tiny("{% set content = '<<SYS>>\\n' + system_message %}{{ bos_token + '[INST] ' + content.strip() + "
                    "' [/INST]' }}", &sys);
    CHECK(t == HN_CHAT_LLAMA2 && !sys && !warned[0], "Llama 2 template (got %s)", hn_chat_template_name(t));

    // Unknown and absent templates fall back to ChatML, with a warning that names the fallback.
    t = detect_tiny("{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}", &sys);
    CHECK(t == HN_CHAT_CHATML && !sys && strstr(warned, "ChatML"), "unknown template: warning '%s'", warned);
    t = detect_tiny(NULL, &sys);
    CHECK(t == HN_CHAT_CHATML && !sys && strstr(warned, "ChatML") && strstr(warned, "chat_template"),
          "absent template: warning '%s'", warned);
    CHECK(!strcmp(hn_chat_template_name(HN_CHAT_CHATML), "chatml"), "template name");
    const char *known[] = {smollm2_template, "[INST] <<SYS>>", "<|start_header_id|> <|eot_id|>"};
    for (int i = 0; i < 3; i++) CHECK(hn_chat_known(known[i], strlen(known[i])), "known template %d", i);
    CHECK(!hn_chat_known("[INST] {{ m }} [/INST]", 22), "Mistral's [INST] without <<SYS>> is not one of hone's");
}

static size_t unhex(const char *h, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        sscanf(h + i, "%2x", &v);
        out[k++] = (char)v;
    }
    out[k] = 0;
    return k;
}

static void golden(void) {
    FILE *f = fopen("tests/data/tokenizer_chat.tsv", "r");
    CHECK(f != NULL, "tests/data/tokenizer_chat.tsv is missing (run from the source root)");
    if (!f) return;
    static char line[1 << 16], want[1 << 15], content[16][4096];
    char *roles[16];
    int cases = 0;
    CHECK(fgets(line, sizeof line, f) && !strcmp(line, "# hone chat golden v1\n"), "chat golden header");
    while (fgets(line, sizeof line, f)) {
        char *msgs = strchr(line, '\t'), *out = msgs ? strchr(msgs + 1, '\t') : NULL;
        CHECK(msgs && out, "malformed chat golden line");
        if (!msgs || !out) break;
        bool gen = line[0] == '1';
        *out++ = 0;
        msgs++;
        unhex(out, strcspn(out, "\n"), want);
        hn_chat_msg m[16];
        int n = 0;
        for (char *tok = strtok(msgs, ","); tok && n < 16; tok = strtok(NULL, ","), n++) {
            char *colon = strchr(tok, ':');
            *colon = 0;
            roles[n] = tok;
            unhex(colon + 1, strlen(colon + 1), content[n]);
            m[n] = (hn_chat_msg){roles[n], content[n]};
        }
        char *got;
        hn_status s = hn_chat_render(HN_CHAT_CHATML, smollm2_system, m, n, gen, &got);
        CHECK(s == HN_OK && !strcmp(got, want), "case %d (%d messages, generation prompt %d):\n--- hone\n%s\n--- jinja2\n%s",
              cases, n, gen, s ? hn_errmsg() : got, want);
        free(got);
        cases++;
    }
    fclose(f);
    CHECK(cases >= 20, "only %d chat cases", cases);
    printf("chat golden: %d cases\n", cases);
}

static bool contains(const char *hay, const char *needle, size_t len) {
    for (size_t n = strlen(hay), i = 0; i + len <= n; i++)
        if (!memcmp(hay + i, needle, len)) return true;
    return false;
}

// Llama 2, Llama 3 and Qwen2's templates as jinja2 renders them (tests/data/chat_templates.tsv, made by
// tools/reference/chat_templates_ref.py; the template's leading BOS text removed, as hone leaves it to the
// tokenizer). "error" lines are conversations the template refuses (roles out of order): hone must refuse them too.
static void golden_templates(void) {
    FILE *f = fopen("tests/data/chat_templates.tsv", "r");
    CHECK(f != NULL, "tests/data/chat_templates.tsv is missing (run from the source root)");
    if (!f) return;
    static char line[1 << 16], want[1 << 15], content[16][4096];
    int cases = 0, refused = 0;
    CHECK(fgets(line, sizeof line, f) && !strcmp(line, "# hone chat templates v1\n"), "chat templates header");
    while (fgets(line, sizeof line, f)) {
        char *fields[4] = {line};
        for (int i = 1; i < 4 && fields[i - 1]; i++)
            if ((fields[i] = strchr(fields[i - 1], '\t'))) *fields[i]++ = 0;
        CHECK(fields[3] != NULL, "malformed chat templates line");
        if (!fields[3]) break;
        hn_chat_template t = HN_CHAT_TEMPLATE_COUNT;
        for (int i = 0; i < HN_CHAT_TEMPLATE_COUNT; i++)
            if (!strcmp(fields[0], hn_chat_template_name((hn_chat_template)i))) t = (hn_chat_template)i;
        CHECK(t != HN_CHAT_TEMPLATE_COUNT, "unknown template name '%s'", fields[0]);
        bool gen = fields[1][0] == '1', error = !strncmp(fields[3], "error", 5);
        if (!error) unhex(fields[3], strcspn(fields[3], "\n"), want);
        hn_chat_msg m[16];
        int n = 0;
        for (char *tok = strtok(fields[2], ","); tok && n < 16; tok = strtok(NULL, ","), n++) {
            char *colon = strchr(tok, ':');
            *colon = 0;
            unhex(colon + 1, strlen(colon + 1), content[n]);
            m[n] = (hn_chat_msg){tok, content[n]};
        }
        const char *sys = t == HN_CHAT_CHATML ? "You are a helpful assistant." : NULL;
        char *got = NULL;
        hn_chat_span *sp = NULL;
        int nsp = 0;
        hn_status s = hn_chat_render_spans(t, sys, m, n, gen, &got, &sp, &nsp);
        if (error) {
            CHECK(s == HN_ERR_ARG && !got, "%s case %d: the template refuses it, hone rendered it", fields[0], cases);
            refused++;
        } else {
            CHECK(s == HN_OK && !strcmp(got, want), "%s case %d (%d messages, generation prompt %d):\n--- hone\n%s\n"
                  "--- jinja2\n%s", fields[0], cases, n, gen, s ? hn_errmsg() : got, want);
            // The spans tile the text, and every CONTENT span is text of its message.
            size_t at = 0;
            bool tiled = true;
            for (int i = 0; i < nsp && got; i++) {
                tiled = tiled && sp[i].off == at;
                if (sp[i].kind == HN_CHAT_SPAN_CONTENT && sp[i].msg >= 0)
                    tiled = tiled && contains(m[sp[i].msg].content, got + sp[i].off, sp[i].len);
                at += sp[i].len;
            }
            CHECK(!got || (tiled && at == strlen(got)), "%s case %d: spans do not tile the rendering", fields[0], cases);
        }
        free(got);
        free(sp);
        cases++;
    }
    fclose(f);
    CHECK(cases >= 60 && refused >= 4, "only %d template cases (%d refused)", cases, refused);
    printf("chat templates golden: %d cases, %d refused\n", cases, refused);
}

static void errors(void) {
    char *out;
    hn_chat_msg bad[] = {{"user", NULL}};
    CHECK(hn_chat_render(HN_CHAT_CHATML, NULL, bad, 1, true, &out) == HN_ERR_ARG && out == NULL, "NULL content");
    CHECK(hn_chat_render(HN_CHAT_TEMPLATE_COUNT, NULL, NULL, 0, true, &out) == HN_ERR_ARG, "unknown template");
    CHECK(hn_chat_render(HN_CHAT_CHATML, smollm2_system, NULL, 0, true, &out) == HN_OK &&
              !strcmp(out, "<|im_start|>assistant\n"),
          "no messages: only the generation prompt, as the template renders it");
    free(out);
    hn_chat_msg one[] = {{"user", "Hi"}};
    CHECK(hn_chat_render(HN_CHAT_CHATML, NULL, one, 1, false, &out) == HN_OK &&
              !strcmp(out, "<|im_start|>user\nHi<|im_end|>\n"),
          "no default system prompt");
    free(out);
}

int main(void) {
    hn_log_set(capture, NULL, HN_LOG_WARN);
    detection();
    golden();
    golden_templates();
    errors();
    char *path;
    if (!hn_model_resolve("smollm2-135m-instruct", &path)) {
        hn_gguf g;
        char *sys = NULL;
        hn_status s = hn_gguf_open(&g, path);
        CHECK(s == HN_OK, "open %s: %s", path, hn_errmsg());
        if (!s) {
            CHECK(hn_chat_detect(&g, &sys) == HN_CHAT_CHATML && sys && !strcmp(sys, smollm2_system),
                  "the real model's template: default system '%s'", sys ? sys : "(none)");
            hn_gguf_close(&g);
        }
        free(sys);
        free(path);
    } else {
        printf("model absent: the real template is not checked (%s)\n", hn_errmsg());
    }
    return test_done();
}

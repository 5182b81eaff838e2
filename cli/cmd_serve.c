// cli/cmd_serve.c — `hone serve`: an OpenAI-compatible HTTP server over one model (serve/http.h) — a decoder
// through the batching engine (serve/engine.h) with its adapters selectable per request, or an encoder for
// embeddings; with --db, chat requests may ask for retrieval from a database built by `hone index` (adapt/rag.h).
// Runs until SIGTERM or SIGINT, then lets the requests in flight finish and exits 0.
#include "cli/adapters.h"
#include "cli/cli.h"
#include "serve/http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ADAPTERS 64

static const char *serve_usage =
    "usage: hone serve -m MODEL [--adapter NAME=PATH[:SCALE]]... [--embed-model M] [--db DIR] [--host ADDR]\n"
    "                  [--port N] [--api-key KEY] [--max-batch N] [--kv-memory MiB] [--max-tokens N]\n"
    "                  [--max-body BYTES] [--timeout S] [--conn-timeout S] [--ctx N] [--allow-adapter-updates]\n"
    "                  [--exact] [--threads N]\n\n"
    "  -m, --model MODEL       GGUF file, Hugging Face directory or pulled model name: a decoder serves\n"
    "                          /v1/completions and /v1/chat/completions; an encoder (BERT) /v1/embeddings only\n"
    "      --adapter [NAME=]PATH[:SCALE]  load an adapter (repeatable; any method `hone generate --adapter` reads);\n"
    "                          a request picks it with \"model\": \"NAME\" (the base model's id, or no \"model\",\n"
    "                          picks the base); SCALE multiplies a LoRA-family adapter's alpha/r (default 1)\n"
    "      --embed-model M     a second model that answers /v1/embeddings beside a decoder\n"
    "      --db DIR            a database built by `hone index`: a chat request with \"retrieval\": {\"k\": K} (or\n"
    "                          true: 5) gets the K chunks nearest its last user message put before it as numbered\n"
    "                          sources (the prompt `hone ask` writes) and the response lists them as \"sources\"\n"
    "                          (a stream: in its first chunk); the question is embedded with the database's own\n"
    "                          model (--embed-model's, shared, when it is the same); restart after hone index\n"
    "                          changes the database\n"
    "      --host ADDR         address to listen on (default 127.0.0.1; 0.0.0.0 or :: for every interface)\n"
    "      --port N            port (default 8080; 0 picks a free one, printed at start)\n"
    "      --api-key KEY       /v1/* require `Authorization: Bearer KEY` (default: $HONE_API_KEY if set, else none);\n"
    "                          /health and /metrics stay open\n"
    "      --max-batch N       sequences run together in one step (default 16)\n"
    "      --kv-memory MiB     the paged KV cache's size (default 256)\n"
    "      --max-tokens N      the most new tokens a request may ask; chat's default when it asks none\n"
    "                          (default 4096)\n"
    "      --max-body BYTES    larger request bodies are refused with 413, unread (default 1048576)\n"
    "      --timeout S         a generation request is cut after S seconds (default 600)\n"
    "      --conn-timeout S    a connection idle, or still sending its request, after S seconds is dropped\n"
    "                          (default 15)\n"
    "      --ctx N             a sequence's tokens at most, prompt and answer (default: the model's context)\n"
    "      --allow-adapter-updates  POST /v1/load_lora_adapter {\"lora_name\", \"lora_path\"} and\n"
    "                          /v1/unload_lora_adapter {\"lora_name\"} load and unload adapters while serving (vLLM's\n"
    "                          runtime updates; any method's adapter directory on the server's disk)\n"
    "      --exact             fp32 reference path: at temperature 0 an answer is what `hone generate --exact`\n"
    "                          prints for the same prompt\n"
    "      --threads N         threads (default: physical cores)\n\n"
    "The first line on stderr says where it listens: `hone: serving MODEL on http://ADDR:PORT`. SIGTERM or\n"
    "SIGINT stops accepting connections, lets the requests in flight finish, and exits 0.\n";

typedef struct {
    const char *model, *embed_model, *api_key, *db;
    const char *adapters[MAX_ADAPTERS];
    int n_adapters;
    int max_batch, kv_mib, n_ctx;
    bool exact;
    hn_http_params hp;
} serve_opts;

// Parses the flags; returns -1 to go on, or an exit code.
static int parse(int argc, char **argv, serve_opts *o) {
    *o = (serve_opts){.max_batch = 16, .kv_mib = 256, .hp = hn_http_default_params()};
    if (cli_wants_help(argc, argv)) {
        fputs(serve_usage, stdout);
        return 0;
    }
    int max_body = (int)o->hp.max_body, timeout = (int)o->hp.timeout;
    for (int i = 1; i < argc; i++) {
        bool err = false;
        const char *ad = NULL;
        if (cli_flag_str(argc, argv, &i, "-m", "--model", &o->model, &err) ||
            cli_flag_str(argc, argv, &i, NULL, "--embed-model", &o->embed_model, &err) ||
            cli_flag_str(argc, argv, &i, NULL, "--db", &o->db, &err) ||
            cli_flag_str(argc, argv, &i, NULL, "--host", &o->hp.host, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--port", &o->hp.port, &err) ||
            cli_flag_str(argc, argv, &i, NULL, "--api-key", &o->api_key, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--max-batch", &o->max_batch, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--kv-memory", &o->kv_mib, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--max-tokens", &o->hp.max_tokens, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--max-body", &max_body, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--timeout", &timeout, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--conn-timeout", &o->hp.conn_timeout, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--ctx", &o->n_ctx, &err) || cli_flag_threads(argc, argv, &i, &err)) {
            if (err) return 2;
        } else if (cli_flag_str(argc, argv, &i, NULL, "--adapter", &ad, &err) ||
                   cli_flag_str(argc, argv, &i, NULL, "--lora", &ad, &err)) {
            if (err) return 2;
            if (o->n_adapters == MAX_ADAPTERS) return cli_usage_error("serve: at most %d adapters", MAX_ADAPTERS);
            o->adapters[o->n_adapters++] = ad;
        } else if (cli_flag_bool(argv, i, NULL, "--exact")) {
            o->exact = true;
        } else if (cli_flag_bool(argv, i, NULL, "--allow-adapter-updates")) {
            o->hp.adapter_updates = true;
        } else {
            return cli_usage_error("serve: unknown argument '%s' (hone serve --help)", argv[i]);
        }
    }
    if (!o->model) return cli_usage_error("serve: -m MODEL is required (hone serve --help)");
    if (o->hp.port < 0 || o->hp.port > 65535) return cli_usage_error("--port expects 0..65535, got %d", o->hp.port);
    if (o->max_batch < 1 || o->kv_mib < 1 || o->hp.max_tokens < 1 || max_body < 1 || timeout < 1 ||
        o->hp.conn_timeout < 1 || o->n_ctx < 0)
        return cli_usage_error("serve: --max-batch, --kv-memory, --max-tokens, --max-body, --timeout and "
                               "--conn-timeout expect positive numbers, --ctx a count >= 0");
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, o->hp.host, addr) != 1 && inet_pton(AF_INET6, o->hp.host, addr) != 1)
        return cli_usage_error("--host '%s': expected an IPv4 or IPv6 address (e.g. 127.0.0.1, 0.0.0.0, ::1)",
                               o->hp.host);
    if (!o->api_key) o->api_key = getenv("HONE_API_KEY");
    if (o->api_key && !*o->api_key) return cli_usage_error("serve: the API key is empty");
    o->hp.api_key = o->api_key;
    o->hp.max_body = (size_t)max_body;
    o->hp.timeout = timeout;
    return -1;
}

static hn_status load(const char *name, bool exact, hn_model **m) {
    hn_model_params mp = hn_model_default_params();
    mp.mm_mode = exact ? HN_MM_EXACT : HN_MM_FAST;
    return hn_model_load(m, name, &mp);
}

// Opens --db for retrieval. Its embedding model is --embed-model's when that is the same model (the same weights,
// whatever its name: hn_rag_open checks), shared rather than loaded twice; otherwise the database's own, loaded here.
static hn_status open_db(const serve_opts *o, hn_model *em, hn_rag **rag) {
    hn_rag_open_params op = {.exact = o->exact, .embedder = em};
    hn_status s = em ? hn_rag_open(rag, o->db, &op) : HN_ERR_ARG;
    bool shared = !s;
    if (s == HN_ERR_ARG) { // no --embed-model, or another model than the database's
        op.embedder = NULL;
        s = hn_rag_open(rag, o->db, &op);
    }
    if (s) return s;
    fprintf(stderr, "hone: retrieval from %s: %lld chunks, %s index, embedded with %s%s\n", o->db,
            (long long)hn_rag_n_chunks(*rag), hn_vindex_kind_name(hn_rag_index_kind(*rag)), hn_rag_embed_model(*rag),
            shared ? " (shared with /v1/embeddings)" : "");
    return HN_OK;
}

// Registers every --adapter with the engine under its NAME (or its path's last component).
static hn_status load_adapters(const serve_opts *o, hn_engine *e) {
    for (int i = 0; i < o->n_adapters; i++) {
        cli_adapter a;
        if (cli_adapter_parse(o->adapters[i], &a)) return HN_ERR_ARG;
        hn_status s = HN_OK;
        if (!strcmp(a.name, o->model))
            s = hn_fail(HN_ERR_ARG, "--adapter '%s': its name is the base model's id; give it another (NAME=PATH)",
                        o->adapters[i]);
        else if ((s = hn_engine_load_adapter(e, a.name, a.path, a.scale)) == HN_OK)
            fprintf(stderr, "hone: adapter '%s' <- %s (scale %g)\n", a.name, a.path, (double)a.scale);
        free(a.name);
        free(a.path);
        if (s) return s;
    }
    return HN_OK;
}

int cmd_serve(int argc, char **argv) {
    serve_opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    // SIGTERM and SIGINT are taken by sigwait below: blocked here, before any thread starts, so that every thread
    // (the engine's, OpenMP's, libmicrohttpd's) inherits the mask and none of them is interrupted.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); // a client gone away is an error from send, not a signal

    hn_model *m = NULL, *em = NULL;
    hn_rag *rag = NULL;
    hn_engine *e = NULL;
    hn_http *h = NULL;
    rc = 1;
    if (load(o.model, o.exact, &m)) goto fail;
    bool encoder = m->hp.arch == HN_ARCH_BERT;
    o.hp.model = m;
    o.hp.model_id = o.model;
    if (encoder) {
        if (o.n_adapters || o.embed_model || o.db) {
            rc = cli_usage_error("serve: %s is an encoder (embeddings only): --adapter, --embed-model and --db need "
                                 "a decoder as -m", o.model);
            goto out;
        }
        o.hp.embed_model = m, o.hp.embed_id = o.model;
    } else {
        if (!hn_gguf_find(&m->gguf, "tokenizer.chat_template"))
            hn_warn("%s has no chat template; chat requests use ChatML, which a base model was not trained on",
                    m->path);
        hn_engine_params ep = hn_engine_default_params();
        ep.max_batch = o.max_batch;
        ep.kv_bytes = (int64_t)o.kv_mib << 20;
        ep.max_ctx = o.n_ctx ? o.n_ctx : m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 4096;
        o.hp.max_ctx = ep.max_ctx;
        if (hn_engine_create(&e, m, &ep) || load_adapters(&o, e)) goto fail;
        o.hp.engine = e;
        if (o.embed_model) {
            if (load(o.embed_model, o.exact, &em)) goto fail;
            o.hp.embed_model = em, o.hp.embed_id = o.embed_model;
        }
        if (o.db) {
            if (open_db(&o, em, &rag)) goto fail;
            o.hp.rag = rag;
        }
    }
    if (hn_http_start(&h, &o.hp)) goto fail;
    fprintf(stderr, "hone: serving %s on http://%s%s%s:%d (%s%s%s%s)\n", o.model, strchr(o.hp.host, ':') ? "[" : "",
            o.hp.host, strchr(o.hp.host, ':') ? "]" : "", hn_http_port(h),
            encoder ? "embeddings" : "completions, chat", rag ? " with retrieval" : "", em ? ", embeddings" : "",
            o.api_key ? "; API key required" : "");
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "hone: %s: no new connections; finishing the requests in flight\n", sig == SIGINT ? "SIGINT"
                                                                                                     : "SIGTERM");
    int left = hn_http_drain(h, o.hp.timeout + o.hp.conn_timeout);
    if (left) fprintf(stderr, "hone: %d requests still running after the timeout; cancelling them\n", left);
    hn_http_stop(h);
    h = NULL;
    fprintf(stderr, "hone: stopped\n");
    rc = 0;
    goto out;
fail:
    rc = cli_fail();
out:
    hn_http_stop(h);
    if (e) hn_engine_destroy(e);
    hn_rag_close(rag); // before em, which it may share
    hn_model_destroy(em);
    hn_model_destroy(m);
    return rc;
}

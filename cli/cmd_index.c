// cli/cmd_index.c — `hone index`: a user's documents chunked, embedded and indexed into a retrieval database
// (adapt/rag.h), incrementally.
#include "adapt/rag.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *index_usage =
    "usage: hone index PATH... --db DIR [-m EMBED_MODEL] [--index flat|hnsw|ivfpq] [--chunk-tokens N]\n"
    "                  [--overlap N] [--exact] [--threads N]\n"
    "       hone index --remove PATH... --db DIR\n\n"
    "Splits documents into chunks on paragraph and sentence boundaries, embeds them and stores them in DIR\n"
    "(docs.sqlite: text, source, byte range, metadata, vectors; index.faiss: the vector index). Run it again after\n"
    "editing files: unchanged documents are skipped, changed ones replaced, files gone from a folder named removed.\n\n"
    "  PATH               a .txt or .md file (one document), a .jsonl file (one {\"id\", \"text\", ...} record a\n"
    "                     document; its other fields are kept as metadata), a SQuAD-format .json file (one document\n"
    "                     a paragraph), or a folder of them\n"
    "      --db DIR       the database (created when missing)\n"
    "  -m, --model M      the embedding model (default " HN_RAG_DEFAULT_EMBED " for a new database; an existing\n"
    "                     one keeps its own, and another is refused)\n"
    "      --index KIND   flat: exact inner-product search (default); hnsw: a graph, approximate and fast for large\n"
    "                     collections; ivfpq: compressed codes in lists, for millions of chunks (needs thousands of\n"
    "                     chunks to train)\n"
    "      --chunk-tokens N  the embedding model's tokens a chunk (default 256, at most what it embeds)\n"
    "      --overlap N    tokens of a chunk's end repeated at the next one's start (default 32)\n"
    "      --remove       drop these files (or every file under these folders) from the database\n"
    "      --exact        fp32 reference path for the embedding model\n"
    "      --threads N    threads (default: physical cores)\n";

static void progress(const char *what, int64_t done, int64_t total, void *user) {
    double *last = user, now = hn_now();
    if (now - *last < 2 && done < total) return;
    *last = now;
    fprintf(stderr, "hone: embedded %lld/%lld chunks (%s)\n", (long long)done, (long long)total, what);
}

int cmd_index(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        fputs(index_usage, stdout);
        return 0;
    }
    const char **paths = calloc((size_t)argc, sizeof *paths), *db = NULL, *kind = NULL;
    if (!paths) return cli_usage_error("out of memory");
    int n = 0, rc = -1;
    double last = 0;
    hn_rag_index_params p = hn_rag_index_default_params();
    p.progress = progress, p.user = &last;
    for (int i = 1; i < argc && rc < 0; i++) {
        bool err = false;
        if (cli_flag_str(argc, argv, &i, NULL, "--db", &db, &err) ||
            cli_flag_str(argc, argv, &i, "-m", "--model", &p.embed_model, &err) ||
            cli_flag_str(argc, argv, &i, NULL, "--index", &kind, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--chunk-tokens", &p.chunk_tokens, &err) ||
            cli_flag_int(argc, argv, &i, NULL, "--overlap", &p.overlap, &err) ||
            cli_flag_threads(argc, argv, &i, &err)) {
            if (err) rc = 2;
        } else if (cli_flag_bool(argv, i, NULL, "--remove")) p.remove = true;
        else if (cli_flag_bool(argv, i, NULL, "--exact")) p.exact = true;
        else if (argv[i][0] == '-' && argv[i][1])
            rc = cli_usage_error("index: unknown flag '%s' (hone index --help)", argv[i]);
        else paths[n++] = argv[i];
    }
    if (rc < 0 && !db) rc = cli_usage_error("index: --db DIR is required (hone index --help)");
    if (rc < 0 && !n) rc = cli_usage_error("index: no file or folder to index (hone index --help)");
    if (rc < 0 && kind && (p.kind = hn_vindex_kind_parse(kind)) == HN_VINDEX_KIND_COUNT)
        rc = cli_usage_error("index: --index '%s', expected flat, hnsw or ivfpq", kind);
    if (rc < 0 && (p.chunk_tokens < 0 || (p.chunk_tokens > 0 && p.chunk_tokens < 16)))
        rc = cli_usage_error("index: --chunk-tokens %d, expected at least 16", p.chunk_tokens);
    if (rc >= 0) {
        free(paths);
        return rc;
    }
    hn_rag_index_stats st;
    if (hn_rag_index(db, paths, n, &p, &st)) rc = cli_fail();
    else {
        rc = 0;
        if (p.remove)
            fprintf(stderr, "hone: %s: removed %d files (%lld chunks); %lld chunks left\n", db, st.files_removed,
                    (long long)st.chunks_removed, (long long)st.chunks_total);
        else
            fprintf(stderr,
                    "hone: %s: %d files (%d new, %d changed, %d unchanged, %d removed), %lld chunks added, %lld "
                    "removed, %lld in all; embedding %.1f s, total %.1f s\n",
                    db, st.files_seen, st.files_added, st.files_changed, st.files_unchanged, st.files_removed,
                    (long long)st.chunks_added, (long long)st.chunks_removed, (long long)st.chunks_total, st.embed_s,
                    st.total_s);
    }
    free(paths);
    return rc;
}

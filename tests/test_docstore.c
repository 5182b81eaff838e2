// tests/test_docstore.c — the retrieval database's SQLite store (io/docstore.h): settings, documents and chunks
// written in transactions and read back (vectors bit for bit, all or one, text, metadata, byte ranges), the generation raised
// by each commit and not by a rollback, removal returning the chunk ids it dropped, ids never reused, a read-only
// reopen; and what it refuses: a missing database, a file that is not SQLite, another format, a vector of another
// size, an id it does not hold.
#include "io/docstore.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    char dir[] = "/tmp/hone-docstore-XXXXXX";
    if (!mkdtemp(dir)) return test_skip("cannot make a temporary folder");
    char sub[64], path[96];
    snprintf(sub, sizeof sub, "%s/db", dir);
    hn_docstore *d = NULL;
    CHECK(hn_docstore_open(&d, sub, false) == HN_ERR_NOTFOUND && strstr(hn_errmsg(), "no retrieval database"),
          "missing database: %s", hn_errmsg());
    CHECK(hn_docstore_open(&d, sub, true) == HN_OK, "create: %s", hn_errmsg());
    if (!d) return test_done();
    CHECK(hn_docstore_generation(d) == 0 && hn_docstore_n_chunks(d) == 0 && hn_docstore_max_chunk_id(d) == 0,
          "a new database: generation 0, no chunk");

    float v[3][4] = {{1, 2, 3, 4}, {-0.5f, 0.25f, 1e-30f, 7}, {0, 0, 0, 1}};
    int64_t doc = 0, ids[3] = {0};
    CHECK(hn_docstore_begin(d) == HN_OK && hn_docstore_doc_add(d, "a.txt", "a.txt", "h1", &doc) == HN_OK &&
              hn_docstore_chunk_add(d, doc, 0, 0, 5, "hello", 5, "{}", v[0], 4, &ids[0]) == HN_OK &&
              hn_docstore_chunk_add(d, doc, 1, 6, 11, "world", 5, "{}", v[1], 4, &ids[1]) == HN_OK &&
              hn_docstore_doc_add(d, "r.jsonl#1", "r.jsonl", "h2", &doc) == HN_OK &&
              hn_docstore_chunk_add(d, doc, 0, 0, 3, "rec", 3, "{\"k\":1}", v[2], 4, &ids[2]) == HN_OK &&
              hn_docstore_commit(d) == HN_OK,
          "a transaction of two documents, three chunks: %s", hn_errmsg());
    CHECK(hn_docstore_generation(d) == 1 && hn_docstore_n_chunks(d) == 3, "commit raised the generation");
    float *x = NULL;
    int64_t *got = NULL, n = 0;
    CHECK(hn_docstore_vectors(d, 4, 0, &x, &got, &n) == HN_OK && n == 3 && !memcmp(x, v, sizeof v) &&
              got[0] == ids[0] && got[2] == ids[2],
          "vectors read back bit for bit, in id order");
    free(x), free(got);
    CHECK(hn_docstore_vectors(d, 4, ids[1], &x, &got, &n) == HN_OK && n == 1 && got[0] == ids[2] &&
              !memcmp(x, v[2], sizeof v[2]),
          "vectors after an id");
    free(x), free(got);
    CHECK(hn_docstore_vectors(d, 8, 0, &x, &got, &n) == HN_ERR_FORMAT && strstr(hn_errmsg(), "expected 32"),
          "vectors of another size refused: %s", hn_errmsg());
    float one[4];
    CHECK(hn_docstore_chunk_vector(d, ids[1], 4, one) == HN_OK && !memcmp(one, v[1], sizeof one),
          "one chunk's vector");
    CHECK(hn_docstore_chunk_vector(d, 999, 4, one) == HN_ERR_NOTFOUND, "the vector of an id it does not hold");
    CHECK(hn_docstore_chunk_vector(d, ids[1], 3, one) == HN_ERR_FORMAT && strstr(hn_errmsg(), "expected 12"),
          "a vector of another size: %s", hn_errmsg());
    hn_doc_chunk c;
    CHECK(hn_docstore_chunk(d, ids[2], &c) == HN_OK && !strcmp(c.text, "rec") && !strcmp(c.source, "r.jsonl#1") &&
              !strcmp(c.meta, "{\"k\":1}") && c.start == 0 && c.end == 3,
          "a chunk with its document's source and metadata");
    hn_doc_chunk_deinit(&c);
    CHECK(hn_docstore_chunk(d, 999, &c) == HN_ERR_NOTFOUND, "an id it does not hold");
    char *h = NULL;
    CHECK(hn_docstore_doc_hash(d, "a.txt", &h) == HN_OK && h && !strcmp(h, "h1"), "a document's hash");
    free(h);
    CHECK(hn_docstore_doc_hash(d, "b.txt", &h) == HN_OK && !h, "no hash for an unknown document");
    char **s = NULL;
    int ns = 0;
    CHECK(hn_docstore_files(d, &s, &ns) == HN_OK && ns == 2 && !strcmp(s[0], "a.txt") && !strcmp(s[1], "r.jsonl"),
          "files");
    hn_docstore_strings_free(s, ns);

    // Rollback: nothing changes; removal returns the dropped ids; ids are not reused.
    int64_t *rm = NULL, nrm = 0;
    CHECK(hn_docstore_begin(d) == HN_OK && hn_docstore_doc_remove(d, "a.txt", &rm, &nrm) == HN_OK && nrm == 2,
          "removal inside a transaction");
    hn_docstore_rollback(d);
    CHECK(hn_docstore_n_chunks(d) == 3 && hn_docstore_generation(d) == 1, "rollback: nothing changed");
    free(rm), rm = NULL, nrm = 0;
    int64_t again = 0;
    CHECK(hn_docstore_begin(d) == HN_OK && hn_docstore_doc_remove(d, "a.txt", &rm, &nrm) == HN_OK && nrm == 2 &&
              rm[0] == ids[0] && rm[1] == ids[1] && hn_docstore_doc_add(d, "a.txt", "a.txt", "h3", &doc) == HN_OK &&
              hn_docstore_chunk_add(d, doc, 0, 0, 5, "fresh", 5, "{}", v[0], 4, &again) == HN_OK &&
              hn_docstore_commit(d) == HN_OK,
          "replace a document");
    free(rm);
    CHECK(again > ids[2] && hn_docstore_n_chunks(d) == 2 && hn_docstore_generation(d) == 2 &&
              hn_docstore_max_chunk_id(d) == again,
          "a new chunk gets a new id (%lld after %lld)", (long long)again, (long long)ids[2]);
    hn_docstore_close(d);

    // Read-only reopen sees the commits.
    CHECK(hn_docstore_open(&d, sub, false) == HN_OK && hn_docstore_n_chunks(d) == 2, "reopen");
    hn_docstore_close(d);
    // Another format is refused.
    CHECK(hn_docstore_open(&d, sub, true) == HN_OK && hn_docstore_set(d, "format", "hone-docstore-99") == HN_OK,
          "change the format");
    hn_docstore_close(d);
    CHECK(hn_docstore_open(&d, sub, false) == HN_ERR_FORMAT && strstr(hn_errmsg(), "settings.format is "
                                                                                  "'hone-docstore-99'"),
          "another format refused: %s", hn_errmsg());
    // A file that is not SQLite.
    char bad[64];
    snprintf(bad, sizeof bad, "%s/bad", dir);
    snprintf(path, sizeof path, "%s/docs.sqlite", bad);
    mkdir(bad, 0700);
    FILE *f = fopen(path, "w");
    if (f) fputs("this is a text file and not a SQLite database, long enough to hold a header..........", f);
    if (f) fclose(f);
    CHECK(hn_docstore_open(&d, bad, false) == HN_ERR_FORMAT && strstr(hn_errmsg(), "not a hone database"),
          "not SQLite: %s", hn_errmsg());
    CHECK(hn_docstore_open(&d, bad, true) == HN_ERR_FORMAT, "not SQLite, opened for writing: refused too");
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "clean up");
    return test_done();
}

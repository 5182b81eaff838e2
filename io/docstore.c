// io/docstore.c — a retrieval database's documents and chunks in SQLite (io/docstore.h).
#include "io/docstore.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct hn_docstore {
    sqlite3 *db;
    char *path;
};

// The format this code writes; a database with another is refused rather than misread.
#define DOCSTORE_FORMAT "hone-docstore-1"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS docs(id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL UNIQUE,"
    " file TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS docs_file ON docs(file);"
    "CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY AUTOINCREMENT, doc INTEGER NOT NULL,"
    " ord INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL, meta TEXT NOT NULL,"
    " vec BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc);";

static hn_status db_fail(hn_docstore *d, const char *what) {
    return hn_fail(HN_ERR_IO, "%s: %s: %s", d->path, what, sqlite3_errmsg(d->db));
}

static hn_status exec(hn_docstore *d, const char *sql, const char *what) {
    char *err = NULL;
    if (sqlite3_exec(d->db, sql, NULL, NULL, &err) == SQLITE_OK) return HN_OK;
    hn_status s = hn_fail(HN_ERR_IO, "%s: %s: %s", d->path, what, err ? err : sqlite3_errmsg(d->db));
    sqlite3_free(err);
    return s;
}

// A prepared statement; NULL after hn_fail.
static sqlite3_stmt *prep(hn_docstore *d, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_fail(d, "cannot prepare a query");
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

static char *dup_col(sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    char *s = hn_alloc((size_t)n + 1, "a database value");
    if (s) {
        if (n) memcpy(s, t, (size_t)n);
        s[n] = 0;
    }
    return s;
}

hn_status hn_docstore_open(hn_docstore **out, const char *dir, bool create) {
    *out = NULL;
    hn_docstore *d = hn_calloc(1, sizeof *d, "a document store");
    if (!d) return HN_ERR_NOMEM;
    size_t n = strlen(dir) + 16;
    if (!(d->path = hn_alloc(n, "a path"))) {
        free(d);
        return HN_ERR_NOMEM;
    }
    snprintf(d->path, n, "%s/docs.sqlite", dir);
    struct stat sb;
    hn_status s = HN_OK;
    if (!create && stat(d->path, &sb) != 0)
        s = hn_fail(HN_ERR_NOTFOUND, "%s: no retrieval database there (build one with hone index --db %s)", dir, dir);
    else if (create && (s = hn_mkdir_p(dir)))
        ;
    else if (sqlite3_open_v2(d->path, &d->db, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), NULL) !=
             SQLITE_OK) {
        // A reader opens read-write where it can: after a killed writer, SQLite recovers the WAL's index (-shm)
        // on the next open, which a read-only connection may not be allowed to do. It never writes.
        if (!create) {
            sqlite3_close(d->db);
            d->db = NULL;
        }
        if (create || sqlite3_open_v2(d->path, &d->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
            s = hn_fail(HN_ERR_IO, "%s: cannot open the database: %s", d->path,
                        d->db ? sqlite3_errmsg(d->db) : "no memory");
    }
    if (s) {
        hn_docstore_close(d);
        return s;
    }
    sqlite3_busy_timeout(d->db, 10000); // another hone index may hold the write lock for a moment
    // A file that is not SQLite fails the first statement ("file is not a database").
    char *fmt = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    bool empty = rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 0;
    if (rc != SQLITE_ROW)
        s = hn_fail(HN_ERR_FORMAT, "%s: not a hone database (%s)", d->path, sqlite3_errmsg(d->db));
    sqlite3_finalize(st);
    if (!s && create) {
        // WAL: readers (hone ask) see the last commit while hone index writes; NORMAL sync keeps every commit
        // atomic and durable against a killed process (only a power cut may lose the last one).
        s = exec(d, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "cannot set the journal");
        if (!s && empty) s = exec(d, schema, "cannot create the tables");
        if (!s && empty) s = hn_docstore_set(d, "format", DOCSTORE_FORMAT);
    }
    if (!s && empty && !create) s = hn_fail(HN_ERR_FORMAT, "%s: an empty database; expected hone index's", d->path);
    if (!s) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(d->db, "SELECT value FROM settings WHERE key = 'format'", -1, &q, NULL) != SQLITE_OK)
            s = hn_fail(HN_ERR_FORMAT, "%s: not a hone database (no settings table)", d->path);
        else if (sqlite3_step(q) == SQLITE_ROW)
            fmt = dup_col(q, 0);
        sqlite3_finalize(q);
        if (!s && (!fmt || strcmp(fmt, DOCSTORE_FORMAT)))
            s = hn_fail(HN_ERR_FORMAT, "%s: settings.format is '%s'; expected '%s'", d->path, fmt ? fmt : "(none)",
                        DOCSTORE_FORMAT);
    }
    free(fmt);
    if (s) {
        hn_docstore_close(d);
        return s;
    }
    *out = d;
    return HN_OK;
}

void hn_docstore_close(hn_docstore *d) {
    if (!d) return;
    sqlite3_close(d->db);
    free(d->path);
    free(d);
}

const char *hn_docstore_path(const hn_docstore *d) { return d->path; }

// The one text value `sql` selects for `arg` (malloc'd into *out; NULL when no row).
static hn_status select_text(hn_docstore *d, const char *sql, const char *arg, char **out, const char *what) {
    *out = NULL;
    sqlite3_stmt *st = prep(d, sql);
    if (!st) return HN_ERR_IO;
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    hn_status s = HN_OK;
    if (rc == SQLITE_ROW) s = (*out = dup_col(st, 0)) ? HN_OK : HN_ERR_NOMEM;
    else if (rc != SQLITE_DONE) s = db_fail(d, what);
    sqlite3_finalize(st);
    return s;
}

hn_status hn_docstore_get(hn_docstore *d, const char *key, char **value) {
    return select_text(d, "SELECT value FROM settings WHERE key = ?", key, value, "cannot read the settings");
}

hn_status hn_docstore_set(hn_docstore *d, const char *key, const char *value) {
    sqlite3_stmt *st = prep(d, "INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)");
    if (!st) return HN_ERR_IO;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    hn_status s = sqlite3_step(st) == SQLITE_DONE ? HN_OK : db_fail(d, "cannot write the settings");
    sqlite3_finalize(st);
    return s;
}

int64_t hn_docstore_generation(hn_docstore *d) {
    char *v = NULL;
    if (hn_docstore_get(d, "generation", &v)) return -1;
    int64_t g = v ? strtoll(v, NULL, 10) : 0;
    free(v);
    return g;
}

hn_status hn_docstore_begin(hn_docstore *d) { return exec(d, "BEGIN IMMEDIATE", "cannot start a transaction"); }

hn_status hn_docstore_commit(hn_docstore *d) {
    int64_t g = hn_docstore_generation(d);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)g + 1);
    hn_status s = g < 0 ? HN_ERR_IO : hn_docstore_set(d, "generation", buf);
    if (!s) s = exec(d, "COMMIT", "cannot commit");
    if (s) hn_docstore_rollback(d);
    return s;
}

hn_status hn_docstore_end(hn_docstore *d) { return exec(d, "COMMIT", "cannot commit"); }

void hn_docstore_rollback(hn_docstore *d) {
    if (!sqlite3_get_autocommit(d->db)) sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
}

hn_status hn_docstore_doc_hash(hn_docstore *d, const char *source, char **hash) {
    return select_text(d, "SELECT hash FROM docs WHERE source = ?", source, hash, "cannot read a document");
}

// The first column of every row of st, as strings.
static hn_status strings(hn_docstore *d, sqlite3_stmt *st, char ***out, int *n) {
    *out = NULL, *n = 0;
    int cap = 0, rc;
    hn_status s = HN_OK;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            char **g = realloc(*out, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *g);
            if (!g) {
                s = hn_fail(HN_ERR_NOMEM, "out of memory listing documents");
                break;
            }
            *out = g;
        }
        if (!((*out)[*n] = dup_col(st, 0))) s = HN_ERR_NOMEM;
        else (*n)++;
    }
    if (!s && rc != SQLITE_DONE) s = db_fail(d, "cannot list documents");
    sqlite3_finalize(st);
    if (s) {
        hn_docstore_strings_free(*out, *n);
        *out = NULL, *n = 0;
    }
    return s;
}

hn_status hn_docstore_file_sources(hn_docstore *d, const char *file, char ***sources, int *n) {
    sqlite3_stmt *st = prep(d, "SELECT source FROM docs WHERE file = ? ORDER BY id");
    if (!st) return HN_ERR_IO;
    sqlite3_bind_text(st, 1, file, -1, SQLITE_TRANSIENT);
    return strings(d, st, sources, n);
}

hn_status hn_docstore_files(hn_docstore *d, char ***files, int *n) {
    sqlite3_stmt *st = prep(d, "SELECT DISTINCT file FROM docs ORDER BY file");
    return st ? strings(d, st, files, n) : HN_ERR_IO;
}

void hn_docstore_strings_free(char **s, int n) {
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

hn_status hn_docstore_doc_remove(hn_docstore *d, const char *source, int64_t **ids, int64_t *n) {
    sqlite3_stmt *st = prep(d, "SELECT c.id FROM chunks c JOIN docs x ON c.doc = x.id WHERE x.source = ?");
    if (!st) return HN_ERR_IO;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    hn_status s = HN_OK;
    int rc;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t *g = realloc(*ids, (size_t)(*n + 1) * sizeof *g);
        if (!g) s = hn_fail(HN_ERR_NOMEM, "out of memory removing a document");
        else (*ids = g)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    if (!s && rc != SQLITE_DONE) s = db_fail(d, "cannot read a document's chunks");
    sqlite3_finalize(st);
    const char *del[] = {"DELETE FROM chunks WHERE doc IN (SELECT id FROM docs WHERE source = ?)",
                         "DELETE FROM docs WHERE source = ?"};
    for (int i = 0; i < 2 && !s; i++) {
        if (!(st = prep(d, del[i]))) return HN_ERR_IO;
        sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) s = db_fail(d, "cannot remove a document");
        sqlite3_finalize(st);
    }
    return s;
}

hn_status hn_docstore_doc_add(hn_docstore *d, const char *source, const char *file, const char *hash,
                              int64_t *doc_id) {
    sqlite3_stmt *st = prep(d, "INSERT INTO docs(source, file, hash) VALUES (?, ?, ?)");
    if (!st) return HN_ERR_IO;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, file, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    hn_status s = sqlite3_step(st) == SQLITE_DONE ? HN_OK : db_fail(d, "cannot add a document");
    sqlite3_finalize(st);
    *doc_id = sqlite3_last_insert_rowid(d->db);
    return s;
}

hn_status hn_docstore_chunk_add(hn_docstore *d, int64_t doc_id, int ord, int64_t start, int64_t end,
                                const char *text, size_t len, const char *meta, const float *vec, int dim,
                                int64_t *chunk_id) {
    sqlite3_stmt *st = prep(d, "INSERT INTO chunks(doc, ord, start, end, text, meta, vec) VALUES (?,?,?,?,?,?,?)");
    if (!st) return HN_ERR_IO;
    sqlite3_bind_int64(st, 1, doc_id);
    sqlite3_bind_int(st, 2, ord);
    sqlite3_bind_int64(st, 3, start);
    sqlite3_bind_int64(st, 4, end);
    sqlite3_bind_text(st, 5, text, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, meta, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, vec, dim * (int)sizeof *vec, SQLITE_STATIC);
    hn_status s = sqlite3_step(st) == SQLITE_DONE ? HN_OK : db_fail(d, "cannot add a chunk");
    sqlite3_finalize(st);
    *chunk_id = sqlite3_last_insert_rowid(d->db);
    return s;
}

// The one integer `sql` selects; -1 after hn_fail.
static int64_t select_int(hn_docstore *d, const char *sql, const char *what) {
    sqlite3_stmt *st = prep(d, sql);
    int64_t n = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    if (st && n < 0) db_fail(d, what);
    sqlite3_finalize(st);
    return n;
}

int64_t hn_docstore_n_chunks(hn_docstore *d) {
    return select_int(d, "SELECT count(*) FROM chunks", "cannot count the chunks");
}

int64_t hn_docstore_max_chunk_id(hn_docstore *d) {
    return select_int(d, "SELECT coalesce(max(id), 0) FROM chunks", "cannot read the chunk ids");
}

hn_status hn_docstore_vectors(hn_docstore *d, int dim, int64_t after, float **x, int64_t **ids, int64_t *n) {
    *x = NULL, *ids = NULL, *n = 0;
    sqlite3_stmt *st = prep(d, "SELECT count(*) FROM chunks WHERE id > ?");
    if (!st) return HN_ERR_IO;
    sqlite3_bind_int64(st, 1, after);
    int64_t total = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (total < 0) return db_fail(d, "cannot count the chunks");
    *x = hn_calloc((size_t)(total ? total : 1) * (size_t)dim, sizeof **x, "the stored vectors");
    *ids = hn_calloc((size_t)(total ? total : 1), sizeof **ids, "the chunk ids");
    st = *x && *ids ? prep(d, "SELECT id, vec FROM chunks WHERE id > ? ORDER BY id") : NULL;
    if (st) sqlite3_bind_int64(st, 1, after);
    hn_status s = st ? HN_OK : *x && *ids ? HN_ERR_IO : HN_ERR_NOMEM;
    int rc = SQLITE_DONE;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (*n == total || sqlite3_column_bytes(st, 1) != dim * (int)sizeof(float))
            s = hn_fail(HN_ERR_FORMAT, "%s: chunk %lld's vector has %d bytes; expected %d (%d floats)", d->path,
                        (long long)id, sqlite3_column_bytes(st, 1), dim * (int)sizeof(float), dim);
        else {
            memcpy(*x + *n * dim, sqlite3_column_blob(st, 1), (size_t)dim * sizeof(float));
            (*ids)[(*n)++] = id;
        }
    }
    if (!s && rc != SQLITE_DONE) s = db_fail(d, "cannot read the vectors");
    sqlite3_finalize(st);
    if (s) {
        free(*x), free(*ids);
        *x = NULL, *ids = NULL, *n = 0;
    }
    return s;
}

hn_status hn_docstore_chunk_vector(hn_docstore *d, int64_t id, int dim, float *out) {
    sqlite3_stmt *st = prep(d, "SELECT vec FROM chunks WHERE id = ?");
    if (!st) return HN_ERR_IO;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    hn_status s = HN_OK;
    if (rc == SQLITE_DONE) s = hn_fail(HN_ERR_NOTFOUND, "%s: no chunk %lld", d->path, (long long)id);
    else if (rc != SQLITE_ROW) s = db_fail(d, "cannot read a vector");
    else if (sqlite3_column_bytes(st, 0) != dim * (int)sizeof *out)
        s = hn_fail(HN_ERR_FORMAT, "%s: chunk %lld's vector has %d bytes; expected %d (%d floats)", d->path,
                    (long long)id, sqlite3_column_bytes(st, 0), dim * (int)sizeof *out, dim);
    else memcpy(out, sqlite3_column_blob(st, 0), (size_t)dim * sizeof *out);
    sqlite3_finalize(st);
    return s;
}

hn_status hn_docstore_chunk(hn_docstore *d, int64_t id, hn_doc_chunk *c) {
    memset(c, 0, sizeof *c);
    sqlite3_stmt *st =
        prep(d, "SELECT c.text, x.source, c.meta, c.start, c.end FROM chunks c JOIN docs x ON c.doc = x.id"
                " WHERE c.id = ?");
    if (!st) return HN_ERR_IO;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    hn_status s = HN_OK;
    if (rc == SQLITE_ROW) {
        c->text = dup_col(st, 0), c->source = dup_col(st, 1), c->meta = dup_col(st, 2);
        c->start = sqlite3_column_int64(st, 3), c->end = sqlite3_column_int64(st, 4);
        if (!c->text || !c->source || !c->meta) s = HN_ERR_NOMEM;
    } else if (rc == SQLITE_DONE)
        s = hn_fail(HN_ERR_NOTFOUND, "%s: no chunk %lld (the index names a chunk the database lacks)", d->path,
                    (long long)id);
    else
        s = db_fail(d, "cannot read a chunk");
    sqlite3_finalize(st);
    if (s) hn_doc_chunk_deinit(c);
    return s;
}

void hn_doc_chunk_deinit(hn_doc_chunk *c) {
    free(c->text), free(c->source), free(c->meta);
    memset(c, 0, sizeof *c);
}

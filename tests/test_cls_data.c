// tests/test_cls_data.c — classification data (train/cls_data.c): JSONL with string and integer labels, CSV with
// quoted fields, TSV, FILE:LABEL plain files, a fixed class list with unseen labels, empty texts counted, broken
// inputs refused with the file and line named, the stratified split; and rt-polarity from ../shared/data (skipped
// when absent). Small inputs are written by the test into a temporary directory.
#include "test.h"
#include "train/classify.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char last_warn[512];
static int n_warn;

static void on_log(hn_log_level level, const char *msg, void *user) {
    if (level != HN_LOG_WARN) return;
    snprintf(last_warn, sizeof last_warn, "%s", msg);
    n_warn++;
}

// Writes content to dir/name and returns the path (static buffer ring).
static const char *put(const char *name, const char *content) {
    static char paths[8][128];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 128, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fputs(content, f);
    fclose(f);
    return p;
}

static bool load1(hn_cls_data *d, const char *spec, const hn_cls_load_params *p) {
    hn_status s = hn_cls_data_load(d, &spec, 1, p);
    CHECK(s == HN_OK, "%s: %s", spec, hn_errmsg());
    return s == HN_OK;
}

// Loading must fail with status want and a message holding every string given.
static void fails(const char *const *specs, int n, const hn_cls_load_params *p, hn_status want, ...) {
    hn_cls_data d;
    hn_status s = hn_cls_data_load(&d, specs, n, p);
    CHECK(s == want, "%s: status %s, expected %s (%s)", specs[0], hn_status_name(s), hn_status_name(want),
          hn_errmsg());
    CHECK(!strchr(hn_errmsg(), '\n'), "message not one line: %s", hn_errmsg());
    va_list ap;
    va_start(ap, want);
    for (const char *w; (w = va_arg(ap, const char *));)
        CHECK(strstr(hn_errmsg(), w), "message '%s' lacks '%s'", hn_errmsg(), w);
    va_end(ap);
    if (s == HN_OK) hn_cls_data_deinit(&d);
}

static void test_jsonl(void) {
    hn_cls_data d;
    const char *f = put("a.jsonl", "{\"text\": \"good film\", \"label\": \"pos\"}\n"
                                   "\n"
                                   "{\"text\": \"bad film\", \"label\": \"neg\", \"extra\": 1}\r\n"
                                   "{\"label\": \"pos\", \"text\": \"caf\\u00e9 \xc3\xa9\"}\n");
    if (!load1(&d, f, NULL)) return;
    CHECK(d.n == 3 && d.n_classes == 2, "n %d classes %d", d.n, d.n_classes);
    CHECK(!strcmp(d.classes[0], "pos") && !strcmp(d.classes[1], "neg"), "classes in order of first appearance");
    CHECK(d.labels[0] == 0 && d.labels[1] == 1 && d.labels[2] == 0, "labels %d %d %d", d.labels[0], d.labels[1],
          d.labels[2]);
    CHECK(!strcmp(d.texts[2], "caf\xc3\xa9 \xc3\xa9"), "text 2 '%s'", d.texts[2]);
    CHECK(!strcmp(d.source, f), "source '%s'", d.source);
    hn_cls_data_deinit(&d);

    // Integer labels are kept as their decimal text; other keys through text_col / label_col.
    f = put("b.jsonl",
            "{\"sentence\": \"x\", \"y\": 1}\n{\"sentence\": \"z\", \"y\": 0}\n{\"sentence\": \"w\", \"y\": 1}\n");
    hn_cls_load_params p = hn_cls_load_default_params();
    p.text_col = "sentence", p.label_col = "y";
    if (load1(&d, f, &p)) {
        CHECK(d.n == 3 && d.n_classes == 2 && !strcmp(d.classes[0], "1") && !strcmp(d.classes[1], "0"),
              "integer labels: n %d classes %d '%s'", d.n, d.n_classes, d.classes[0]);
        hn_cls_data_deinit(&d);
    }
    // A fixed class list keeps its order and numbering.
    const char *cl[] = {"0", "1"};
    p.classes = cl, p.n_classes = 2;
    if (load1(&d, f, &p)) {
        CHECK(d.labels[0] == 1 && d.labels[1] == 0 && !strcmp(d.classes[0], "0"), "fixed classes: labels %d %d",
              d.labels[0], d.labels[1]);
        hn_cls_data_deinit(&d);
    }
}

static void test_csv_tsv(void) {
    hn_cls_data d;
    const char *f = put("a.csv", "id,label,text\r\n"
                                 "1,pos,\"a \"\"quoted\"\", comma\"\r\n"
                                 "2,neg,plain text\r\n"
                                 "3,pos,\"two\nlines\"\r\n"
                                 "4,neg,\"\"\r\n"
                                 "5,neg,last without newline");
    n_warn = 0;
    if (load1(&d, f, NULL)) {
        CHECK(d.n == 4 && d.n_classes == 2, "csv: n %d classes %d", d.n, d.n_classes);
        CHECK(!strcmp(d.texts[0], "a \"quoted\", comma"), "csv quoted: '%s'", d.texts[0]);
        CHECK(!strcmp(d.texts[2], "two\nlines"), "csv line break in quotes: '%s'", d.texts[2]);
        CHECK(!strcmp(d.texts[3], "last without newline") && d.labels[3] == 1, "csv last: '%s'", d.texts[3]);
        CHECK(n_warn == 1 && strstr(last_warn, "1 empty text"), "warning '%s' (%d)", last_warn, n_warn);
        hn_cls_data_deinit(&d);
    }
    // TSV as GLUE writes it: no quoting, quotes are text.
    f = put("a.tsv", "sentence\tlabel\nhe said \" hi \" \t1\nno \t0\n");
    hn_cls_load_params p = hn_cls_load_default_params();
    p.text_col = "sentence";
    if (load1(&d, f, &p)) {
        CHECK(d.n == 2 && !strcmp(d.texts[0], "he said \" hi \" ") && !strcmp(d.classes[1], "0"), "tsv: '%s'",
              d.texts[0]);
        hn_cls_data_deinit(&d);
    }
}

static void test_plain(void) {
    hn_cls_data d;
    char s1[160], s2[160];
    snprintf(s1, sizeof s1, "%s:pos", put("p.txt", "great\n\n  \nlovely film\r\n"));
    snprintf(s2, sizeof s2, "%s:neg", put("n.txt", "awful\ndull"));
    const char *specs[] = {s1, s2};
    hn_status s = hn_cls_data_load(&d, specs, 2, NULL);
    CHECK(s == HN_OK, "plain: %s", hn_errmsg());
    if (s) return;
    CHECK(d.n == 4 && d.n_classes == 2 && !strcmp(d.classes[0], "pos"), "plain: n %d", d.n);
    CHECK(!strcmp(d.texts[1], "lovely film") && !strcmp(d.texts[3], "dull") && d.labels[3] == 1, "plain texts");
    CHECK(strstr(d.source, " + "), "source '%s'", d.source);
    hn_cls_data_deinit(&d);
}

static void test_unseen(void) {
    const char *f = put("u.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"meh\"}\n"
                                   "{\"text\": \"c\", \"label\": \"neg\"}\n");
    const char *cl[] = {"pos", "neg"};
    hn_cls_load_params p = hn_cls_load_default_params();
    p.classes = cl, p.n_classes = 2;
    fails(&f, 1, &p, HN_ERR_FORMAT, "u.jsonl:2", "'meh'", NULL);
    p.unseen_ok = true;
    n_warn = 0;
    hn_cls_data d;
    if (load1(&d, f, &p)) {
        CHECK(d.n == 2 && d.labels[1] == 1, "unseen_ok: n %d", d.n);
        CHECK(n_warn == 1 && strstr(last_warn, "1 examples skipped"), "warning '%s'", last_warn);
        hn_cls_data_deinit(&d);
    }
}

static void test_broken(void) {
    const char *missing = "/nonexistent/x.jsonl";
    fails(&missing, 1, NULL, HN_ERR_IO, "/nonexistent/x.jsonl", NULL);
    const char *f = put("m.csv", "sentence,label\nhi,1\nho,0\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "m.csv", "no column 'text'", "'sentence', 'label'", "--text-col", NULL);
    f = put("m2.tsv", "text\tlab\nhi\t1\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "no column 'label'", "'text', 'lab'", NULL);
    f = put("one.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"pos\"}\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "one class", "'pos'", NULL);
    f = put("utf.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\xff\", \"label\": \"neg\"}\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "utf.jsonl:2", "UTF-8", "0xFF", NULL);
    f = put("bad.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": }\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "bad.jsonl:2", "invalid JSON", NULL);
    f = put("nolabel.jsonl", "{\"text\": \"a\"}\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "nolabel.jsonl:1", "'label'", NULL);
    f = put("float.jsonl", "{\"text\": \"a\", \"label\": 1.5}\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "float.jsonl:1", "string or an integer", NULL);
    f = put("arr.jsonl", "[1, 2]\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "arr.jsonl:1", "object", NULL);
    f = put("q.csv", "text,label\n\"open,1\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "q.csv:2", "not closed", NULL);
    f = put("fields.csv", "text,label\na,1,extra\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "fields.csv:2", "3 fields", NULL);
    f = put("empty.csv", "");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "empty.csv", "header", NULL);
    f = put("allempty.jsonl", "{\"text\": \"  \", \"label\": \"a\"}\n");
    fails(&f, 1, NULL, HN_ERR_FORMAT, "no examples", NULL);
    char sp[160];
    snprintf(sp, sizeof sp, "%s/nothere.txt:pos", dir);
    const char *spp = sp;
    fails(&spp, 1, NULL, HN_ERR_IO, "nothere.txt", NULL);
}

static void test_split(void) {
    // 30 of class a, 10 of class b, 5 of class c.
    char buf[8192];
    size_t k = 0;
    for (int i = 0; i < 45; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "{\"text\": \"t%d\", \"label\": \"%s\"}\n", i,
                              i % 9 == 8 ? "c" : i % 9 >= 6 ? "b" : "a");
    const char *f = put("split.jsonl", buf);
    hn_cls_data d, v, d2, v2;
    if (!load1(&d, f, NULL) || !load1(&d2, f, NULL)) return;
    CHECK(hn_cls_data_split(&d, &v, 0.2, 7) == HN_OK, "%s", hn_errmsg());
    CHECK(hn_cls_data_split(&d2, &v2, 0.2, 7) == HN_OK, "%s", hn_errmsg());
    CHECK(v.n == 9 && d.n == 36, "split sizes %d + %d", d.n, v.n);
    int per[3] = {0};
    for (int i = 0; i < v.n; i++) per[v.labels[i]]++;
    CHECK(per[0] == 6 && per[1] == 2 && per[2] == 1, "stratified: %d %d %d", per[0], per[1], per[2]);
    CHECK(v.n_classes == 3 && !strcmp(v.classes[2], "c"), "val classes");
    bool same = v.n == v2.n;
    for (int i = 0; same && i < v.n; i++) same = !strcmp(v.texts[i], v2.texts[i]);
    CHECK(same, "the same seed gives the same split");
    // No example lost or doubled.
    int seen[45] = {0};
    for (int i = 0; i < d.n; i++) seen[atoi(d.texts[i] + 1)]++;
    for (int i = 0; i < v.n; i++) seen[atoi(v.texts[i] + 1)]++;
    bool once = true;
    for (int i = 0; i < 45; i++) once &= seen[i] == 1;
    CHECK(once, "every example in exactly one side");
    hn_cls_data_deinit(&v2), hn_cls_data_deinit(&d2);
    hn_cls_data v3;
    if (load1(&d2, f, NULL)) {
        CHECK(hn_cls_data_split(&d2, &v3, 0.2, 8) == HN_OK, "%s", hn_errmsg());
        bool differs = false;
        for (int i = 0; i < v.n && i < v3.n; i++) differs |= strcmp(v.texts[i], v3.texts[i]) != 0;
        CHECK(differs, "another seed gives another split");
        hn_cls_data_deinit(&v3), hn_cls_data_deinit(&d2);
    }
    CHECK(hn_cls_data_split(&d, &v3, 1.5, 7) == HN_ERR_ARG, "fraction 1.5 accepted");
    hn_cls_data_deinit(&v), hn_cls_data_deinit(&d);
}

static void test_rt_polarity(void) {
    const char *pos = "../shared/data/rt-polarity/rt-polarity.pos", *neg = "../shared/data/rt-polarity/rt-polarity.neg";
    if (access(pos, R_OK) || access(neg, R_OK)) {
        printf("rt-polarity check skipped: %s is absent\n", pos);
        return;
    }
    char s1[128], s2[128];
    snprintf(s1, sizeof s1, "%s:pos", pos);
    snprintf(s2, sizeof s2, "%s:neg", neg);
    const char *specs[] = {s1, s2};
    hn_cls_data d, v;
    hn_status s = hn_cls_data_load(&d, specs, 2, NULL);
    CHECK(s == HN_OK, "rt-polarity: %s", hn_errmsg());
    if (s) return;
    CHECK(d.n == 10662 && d.n_classes == 2, "rt-polarity: %d examples, %d classes", d.n, d.n_classes);
    int pos_n = 0;
    for (int i = 0; i < d.n; i++) pos_n += d.labels[i] == 0;
    CHECK(pos_n == 5331, "rt-polarity: %d pos", pos_n);
    CHECK(hn_cls_data_split(&d, &v, 0.2, 42) == HN_OK && v.n == 2132 && d.n == 8530, "split %d %d", d.n, v.n);
    hn_cls_data_deinit(&v), hn_cls_data_deinit(&d);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/hn_cls_data_XXXXXX");
    if (!mkdtemp(dir)) return test_skip("no temporary directory");
    hn_log_set(on_log, NULL, HN_LOG_WARN);
    test_jsonl();
    test_csv_tsv();
    test_plain();
    test_unseen();
    test_broken();
    test_split();
    test_rt_polarity();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return test_done();
}

/* test_data.c — tests of the runtime's data sets (runtime/host/data.c), function
 * by function, on files made byte by byte here.
 *
 * Usage: test_data DIR    (files are made in DIR; tests/data.sh runs it)
 *
 * Each test prints "ok   name" or "FAIL name", after a line for every check
 * that failed; the exit status is 1 if any failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "nnrt_host.h"
#include "../check.h"

static const char *dir;


/* DIR/name, in one of a few rotating static buffers */
static const char *path(const char *name)
{
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static void spew(const char *p, const void *bytes, size_t len)
{
    FILE *fp = fopen(p, "wb");
    if (!fp || fwrite(bytes, 1, len, fp) != len || fclose(fp) != 0) {
        printf("cannot write %s\n", p);
        exit(1);
    }
}

static void spew_gz(const char *p, const void *bytes, size_t len)
{
    gzFile g = gzopen(p, "wb");
    if (!g || gzwrite(g, bytes, (unsigned)len) != (int)len || gzclose(g) != Z_OK) {
        printf("cannot write %s\n", p);
        exit(1);
    }
}

static void spew_text(const char *p, const char *text)
{
    spew(p, text, strlen(text));
}

/* An IDX header: type, dims; returns its length */
static size_t idx_header(unsigned char *b, int type, int ndim, const unsigned *dims)
{
    b[0] = b[1] = 0;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)ndim;
    for (int d = 0; d < ndim; d++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * d + k] = (unsigned char)(dims[d] >> (24 - 8 * k));
    return 4 + 4 * (size_t)ndim;
}

/* ---- tests ---- */

/* 3 images of 2x3 bytes, and their labels: plain and gzip alike */
static void test_idx(void)
{
    unsigned char img[64], lbl[16];
    size_t n = idx_header(img, 0x08, 3, (unsigned[]){3, 2, 3});
    for (int i = 0; i < 18; i++)
        img[n + (size_t)i] = (unsigned char)(i * 15);
    size_t m = idx_header(lbl, 0x08, 1, (unsigned[]){3});
    lbl[m] = 4, lbl[m + 1] = 0, lbl[m + 2] = 9;
    spew(path("img"), img, n + 18);
    spew(path("lbl"), lbl, m + 3);
    spew_gz(path("img.gz"), img, n + 18);
    spew_gz(path("lbl.gz"), lbl, m + 3);
    for (int gz = 0; gz < 2; gz++) {
        char err[1024] = "";
        nnrt_dataset d;
        int rc = nnrt_data_idx(&d, path(gz ? "img.gz" : "img"), path(gz ? "lbl.gz" : "lbl"), err, sizeof err);
        CHECK(rc == 0);
        if (rc) {
            printf("    %s\n", err);
            continue;
        }
        CHECK(d.n == 3 && d.ndim == 2 && d.shape[0] == 2 && d.shape[1] == 3 && d.size == 6);
        CHECK(d.u8 && !d.f32 && d.u8[17] == 255 && d.u8[7] == 105);
        CHECK(d.labels && d.labels[0] == 4 && d.labels[1] == 0 && d.labels[2] == 9 && d.nclasses == 10);
        CHECK(strcmp(d.label_path, path(gz ? "lbl.gz" : "lbl")) == 0);
        nnrt_data_free(&d);
    }

    /* other types, big-endian: int16 images, int32 and float labels */
    unsigned char b[128];
    n = idx_header(b, 0x0B, 2, (unsigned[]){2, 2});
    const unsigned char s16[] = {0xff, 0xfe, 0x01, 0x00, 0x00, 0x07, 0x80, 0x00}; /* -2, 256, 7, -32768 */
    memcpy(b + n, s16, sizeof s16);
    spew(path("s16"), b, n + sizeof s16);
    m = idx_header(lbl, 0x0C, 1, (unsigned[]){2});
    const unsigned char i32[] = {0, 0, 0, 3, 0, 0, 1, 0}; /* 3, 256 */
    memcpy(lbl + m, i32, sizeof i32);
    spew(path("i32"), lbl, m + sizeof i32);
    char err[1024] = "";
    nnrt_dataset d;
    CHECK(nnrt_data_idx(&d, path("s16"), path("i32"), err, sizeof err) == 0);
    CHECK(d.f32 && !d.u8 && d.f32[0] == -2 && d.f32[1] == 256 && d.f32[2] == 7 && d.f32[3] == -32768);
    CHECK(d.labels && d.labels[0] == 3 && d.labels[1] == 256 && d.nclasses == 257);
    nnrt_data_free(&d);
    n = idx_header(b, 0x0D, 1, (unsigned[]){2});
    const unsigned char f32[] = {0x3f, 0xc0, 0, 0, 0x40, 0, 0, 0}; /* 1.5, 2 */
    memcpy(b + n, f32, sizeof f32);
    spew(path("f32"), b, n + sizeof f32);
    CHECK(nnrt_data_idx(&d, path("s16"), path("f32"), err, sizeof err) == -1);
    CHECK_HAS(err, "f32: the label of sample 0 is 1.5, not a class index");
    n = idx_header(b, 0x0E, 2, (unsigned[]){1, 2});
    const unsigned char f64[] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x7f, 0xef, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memcpy(b + n, f64, sizeof f64); /* 1.5 and DBL_MAX (beyond float: inf) */
    spew(path("f64"), b, n + sizeof f64);
    CHECK(nnrt_data_idx(&d, path("f64"), NULL, err, sizeof err) == 0);
    CHECK(d.n == 1 && d.size == 2 && d.f32[0] == 1.5f && isinf(d.f32[1]) && !d.labels);
    nnrt_data_free(&d);
}

/* Each bad IDX file gives a message naming it and what is wrong. */
static void test_idx_errors(void)
{
    unsigned char b[256];
    char err[1024];
    nnrt_dataset d;
    struct { const char *name; size_t len; const char *want; } cases[] = {
        {"empty", 0, "not an IDX file: it starts with nothing"},
        {"magic", 8, "not an IDX file: it starts with 50 4b 03 04"},
        {"type", 8, "not an IDX file: it starts with 00 00 07 01"},
        {"ndim0", 8, "not an IDX file: it starts with 00 00 08 00"},
        {"header", 6, "truncated: the file ends inside its IDX header"},
        {"zero", 12, "the IDX header declares shape [0, 3]: no data"},
        {"short", 14, "truncated: the header declares [2, 3], 6 bytes of data, but the file holds 2"},
        {"long", 19, "more data than the header declares ([2, 3], 6 bytes)"},
        {"huge", 16, "too large"},
        {"dims", 8, "the IDX header declares 9 dimensions, nnrt supports at most 8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(b, 0, sizeof b);
        const char *name = cases[i].name;
        if (strcmp(name, "magic") == 0)
            memcpy(b, "PK\003\004", 4);
        else if (strcmp(name, "type") == 0)
            b[2] = 7, b[3] = 1;
        else if (strcmp(name, "ndim0") == 0)
            b[2] = 8;
        else if (strcmp(name, "header") == 0)
            idx_header(b, 8, 2, (unsigned[]){2, 3});
        else if (strcmp(name, "zero") == 0)
            idx_header(b, 8, 2, (unsigned[]){0, 3});
        else if (strcmp(name, "short") == 0 || strcmp(name, "long") == 0)
            idx_header(b, 8, 2, (unsigned[]){2, 3});
        else if (strcmp(name, "huge") == 0)
            idx_header(b, 0x0E, 3, (unsigned[]){0xffffffffu, 0xffffffffu, 2});
        else if (strcmp(name, "dims") == 0)
            b[2] = 8, b[3] = 9;
        spew(path(name), b, cases[i].len);
        err[0] = '\0';
        CHECK(nnrt_data_idx(&d, path(name), NULL, err, sizeof err) == -1);
        CHECK_HAS(err, path(name));
        CHECK_HAS(err, cases[i].want);
        CHECK(d.n == 0 && !d.u8 && !d.path); /* nothing left behind */
    }
    CHECK(nnrt_data_idx(&d, path("missing"), NULL, err, sizeof err) == -1);
    CHECK_HAS(err, "missing: cannot open: No such file or directory");
    CHECK(nnrt_data_idx(&d, dir, NULL, err, sizeof err) == -1);
    CHECK_HAS(err, "cannot read: it is a directory");

    /* a damaged gzip stream: a flipped byte in the middle, or cut short */
    unsigned char img[4096];
    size_t n = idx_header(img, 8, 2, (unsigned[]){64, 50});
    for (size_t i = 0; i < 3200; i++)
        img[n + i] = (unsigned char)(i * 7919 % 251);
    spew_gz(path("good.gz"), img, n + 3200);
    unsigned char big[8192];
    FILE *fp = fopen(path("good.gz"), "rb");
    size_t len = fp ? fread(big, 1, sizeof big, fp) : 0;
    if (fp)
        fclose(fp);
    CHECK(len > 100 && len < sizeof big);
    spew(path("cut.gz"), big, len / 2);
    CHECK(nnrt_data_idx(&d, path("cut.gz"), NULL, err, sizeof err) == -1);
    CHECK_HAS(err, "cut.gz: the gzip data is cut short (the file is truncated)");
    big[len / 2] ^= 0x55;
    spew(path("flip.gz"), big, len);
    CHECK(nnrt_data_idx(&d, path("flip.gz"), NULL, err, sizeof err) == -1);
    CHECK_HAS(err, "flip.gz: the gzip data is damaged");
    /* labels that do not go with the images */
    unsigned char l[128];
    size_t m = idx_header(l, 8, 2, (unsigned[]){2, 1});
    spew(path("lbl2d"), l, m + 2);
    CHECK(nnrt_data_idx(&d, path("good.gz"), path("lbl2d"), err, sizeof err) == -1);
    CHECK_HAS(err, "lbl2d: labels must be an IDX file of shape [N], this one is [2, 1]");
    m = idx_header(l, 8, 1, (unsigned[]){63});
    spew(path("lbl63"), l, m + 63);
    CHECK(nnrt_data_idx(&d, path("good.gz"), path("lbl63"), err, sizeof err) == -1);
    CHECK_HAS(err, "lbl63: 63 labels, but ");
    CHECK_HAS(err, "good.gz holds 64 samples");
}

static void test_csv(void)
{
    char err[1024] = "";
    nnrt_dataset d;
    /* a BOM, a header, CRLF, blank lines, spaces, exponents; 3 features then a label */
    spew_text(path("a.csv"), "\xef\xbb\xbf" "x,y,z,label\r\n1, 2 ,3,0\r\n\r\n-1.5e1,0.25,+7,2\n\n4,5,6,1");
    CHECK(nnrt_data_csv(&d, path("a.csv"), 3, 0, err, sizeof err) == 0);
    CHECK(d.n == 3 && d.ndim == 1 && d.shape[0] == 3 && d.size == 3 && d.f32 && !d.u8);
    CHECK(d.f32[0] == 1 && d.f32[1] == 2 && d.f32[2] == 3 && d.f32[3] == -15 && d.f32[4] == 0.25f &&
          d.f32[5] == 7 && d.f32[8] == 6);
    CHECK(d.labels && d.labels[0] == 0 && d.labels[1] == 2 && d.labels[2] == 1 && d.nclasses == 3);
    CHECK(!d.targets);
    nnrt_data_free(&d);
    /* a model with target [2]: two targets a row, or a label (one-hot later) */
    spew_text(path("t.csv"), "1,2,0.5,-0.5\n3,4,1,2\n");
    CHECK(nnrt_data_csv(&d, path("t.csv"), 2, 2, err, sizeof err) == 0);
    CHECK(d.n == 2 && !d.labels && d.targets && d.tsize == 2 && d.tndim == 1 && d.tshape[0] == 2);
    CHECK(d.targets[0] == 0.5f && d.targets[1] == -0.5f && d.targets[3] == 2);
    nnrt_data_free(&d);
    spew_text(path("l.csv"), "1,2,1\n3,4,0\n");
    CHECK(nnrt_data_csv(&d, path("l.csv"), 2, 2, err, sizeof err) == 0);
    CHECK(d.labels && !d.targets && d.labels[0] == 1);
    nnrt_data_free(&d);
    /* a regression: one target value, not a label */
    spew_text(path("r.csv"), "1,2,0.5\n");
    CHECK(nnrt_data_csv(&d, path("r.csv"), 2, 1, err, sizeof err) == 0);
    CHECK(!d.labels && d.targets && d.targets[0] == 0.5f);
    nnrt_data_free(&d);

    struct { const char *text; size_t ntargets; const char *want; } bad[] = {
        {"1,2,3,0\n1,2,0\n", 0, "bad.csv:2: 3 fields, but the first row has 4"},
        {"1,2,3,0\n1,2,,0\n", 0, "bad.csv:2: field 3 is '', not a number"},
        {"1,2,3,0\n1,2,nan,0\n", 0, "bad.csv:2: field 3 is 'nan', not a number"},
        {"1,2,3,0\n1,2,1e999,0\n", 0, "bad.csv:2: field 3 is '1e999', beyond the range of a float"},
        {"1,2,3,0\n1,2,-1e39,0\n", 0, "bad.csv:2: field 3 is '-1e39', beyond the range of a float"},
        {"1,2,3,16777216\n", 0, "bad.csv:1: the label (field 4) is 1.67772e+07, not a class index (a whole "
                                 "number from 0 to 16777215)"},
        {"1,2,3,-1\n", 0, "bad.csv:1: the label (field 4) is -1, not a class index"},
        {"1,2,3\n", 0, "bad.csv:1: 3 fields; the model takes 3 features, then a label (4 fields)"},
        {"1,2,3,4,5,6\n", 2, "bad.csv:1: 6 fields; the model takes 3 features, then a label (4 fields) "
                             "or 2 target values (5 fields)"},
        {"a,b,c,d\n\n", 0, "bad.csv: no rows of numbers"},
        {"", 0, "bad.csv: no rows of numbers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spew_text(path("bad.csv"), bad[i].text);
        err[0] = '\0';
        CHECK(nnrt_data_csv(&d, path("bad.csv"), 3, bad[i].ntargets, err, sizeof err) == -1);
        CHECK_HAS(err, bad[i].want);
    }
    CHECK(nnrt_data_csv(&d, path("none.csv"), 3, 0, err, sizeof err) == -1);
    CHECK_HAS(err, "none.csv: cannot open");
}

static void test_pgm(void)
{
    char err[1024] = "";
    nnrt_dataset d;
    spew_text(path("a.pgm"), "P2\n# two rows\n3 2 # width height\n255\n0 128 255\n 1 2 3\n");
    CHECK(nnrt_data_pgm(&d, path("a.pgm"), err, sizeof err) == 0);
    CHECK(d.n == 1 && d.ndim == 2 && d.shape[0] == 2 && d.shape[1] == 3 && d.u8);
    CHECK(d.u8 && d.u8[1] == 128 && d.u8[5] == 3);
    nnrt_data_free(&d);
    const unsigned char p5[] = "P5 2 1 1000\n\x03\xe8\x01\xf4"; /* 1000, 500 of 1000 */
    spew(path("b.pgm"), p5, sizeof p5 - 1);
    CHECK(nnrt_data_load(&d, path("b.pgm"), 0, 0, 0, err, sizeof err) == 0); /* told by its content */
    CHECK(d.f32 && d.f32[0] == 1.0f && d.f32[1] == 0.5f);
    nnrt_data_free(&d);
    spew_text(path("c.pgm"), "P5 4 4 255\n\x01\x02");
    CHECK(nnrt_data_pgm(&d, path("c.pgm"), err, sizeof err) == -1);
    CHECK_HAS(err, "c.pgm: truncated: 4x4 pixels need 16 bytes, the file has 2");
    spew_text(path("d.pgm"), "P2 2 1 255 7 300");
    CHECK(nnrt_data_pgm(&d, path("d.pgm"), err, sizeof err) == -1);
    CHECK_HAS(err, "d.pgm: pixel 2 is 300, above maxval 255");
    spew_text(path("e.pgm"), "P6 2 1 255 ......");
    CHECK(nnrt_data_pgm(&d, path("e.pgm"), err, sizeof err) == -1);
    CHECK_HAS(err, "e.pgm: not a PGM image");
}

static void test_safetensors_data(void)
{
    char err[1024] = "";
    nnrt_dataset d;
    float x[6] = {1, 2, 3, 4, 5, 6}, lab[2] = {1, 0}, tg[4] = {0.5f, 1, 2, 3}, frac[2] = {0.5f, 1};
    nnrt_tensor t[2] = {{"input", 3, {2, 1, 3}, x, NULL}, {"target", 1, {2}, lab, NULL}};
    CHECK(nnrt_save_safetensors(path("l.st"), t, 2, NULL, NULL, 0, err, sizeof err) == 0);
    CHECK(nnrt_data_load(&d, path("l.st"), 0, 3, 0, err, sizeof err) == 0);
    CHECK(d.n == 2 && d.ndim == 2 && d.shape[0] == 1 && d.shape[1] == 3 && d.f32[5] == 6);
    CHECK(d.labels && d.labels[0] == 1 && d.nclasses == 2);
    nnrt_data_free(&d);
    t[1] = (nnrt_tensor){"target", 2, {2, 2}, tg, NULL};
    CHECK(nnrt_save_safetensors(path("t.st"), t, 2, NULL, NULL, 0, err, sizeof err) == 0);
    CHECK(nnrt_data_safetensors(&d, path("t.st"), 0, err, sizeof err) == 0);
    CHECK(!d.labels && d.targets && d.tsize == 2 && d.targets[3] == 3);
    nnrt_data_free(&d);
    t[1] = (nnrt_tensor){"target", 1, {2}, frac, NULL};
    CHECK(nnrt_save_safetensors(path("f.st"), t, 2, NULL, NULL, 0, err, sizeof err) == 0);
    CHECK(nnrt_data_safetensors(&d, path("f.st"), 0, err, sizeof err) == -1);
    CHECK_HAS(err, "f.st: the label of sample 0 is 0.5, not a class index");
    /* the same [N] for a model whose target is one value: its targets */
    CHECK(nnrt_data_safetensors(&d, path("f.st"), 1, err, sizeof err) == 0);
    CHECK(!d.labels && d.targets && d.tsize == 1 && d.targets[0] == 0.5f && d.targets[1] == 1);
    CHECK(nnrt_data_targets_mode(&d, 0, 1, err, sizeof err) == NNRT_TARGET_VALUES);
    nnrt_data_free(&d);
    t[1] = (nnrt_tensor){"target", 1, {1}, frac, NULL};
    CHECK(nnrt_save_safetensors(path("n.st"), t, 2, NULL, NULL, 0, err, sizeof err) == 0);
    CHECK(nnrt_data_safetensors(&d, path("n.st"), 0, err, sizeof err) == -1);
    CHECK_HAS(err, "n.st: 'input' [2, 1, 3] and 'target' [1] do not hold the same number");
    CHECK(nnrt_data_load(&d, "mnsit:dir", 0, 3, 0, err, sizeof err) == -1);
    CHECK_HAS(err, "mnsit:dir: unknown kind of data 'mnsit'");
    CHECK(nnrt_data_load(&d, "idx:onlyone", 0, 3, 0, err, sizeof err) == -1);
    CHECK_HAS(err, "idx:onlyone: expected idx:IMAGES,LABELS");
    CHECK(nnrt_data_spec_has_test("mnist:x") && !nnrt_data_spec_has_test("csv:x"));
}

/* a data set of n samples [H, W] of bytes v[i] = i % 256 */
static void fake_images(nnrt_dataset *d, int n, int h, int w, unsigned char *bytes, int32_t *labels)
{
    memset(d, 0, sizeof *d);
    d->path = "fake";
    d->n = n;
    d->ndim = 2;
    d->shape[0] = h;
    d->shape[1] = w;
    d->size = (size_t)(h * w);
    d->u8 = bytes;
    d->labels = labels;
    for (int i = 0; i < n * h * w; i++)
        bytes[i] = (unsigned char)(i % 256);
    for (int i = 0; i < n; i++)
        labels[i] = i % 3;
    d->nclasses = 3;
}

static void test_fit(void)
{
    static unsigned char bytes[3 * 28 * 28];
    int32_t labels[3];
    nnrt_dataset d;
    fake_images(&d, 3, 28, 28, bytes, labels);
    char err[1024] = "";
    nnrt_transform none = {0, 0, 1}, pad2 = {2, 0, 1};
    CHECK(nnrt_data_fit(&d, &none, 3, (int64_t[]){1, 28, 28}, err, sizeof err) == 0);
    CHECK(nnrt_data_fit(&d, &none, 1, (int64_t[]){784}, err, sizeof err) == 0);
    CHECK(nnrt_data_fit(&d, &pad2, 3, (int64_t[]){1, 32, 32}, err, sizeof err) == 0);
    CHECK(nnrt_data_fit(&d, &none, 3, (int64_t[]){1, 32, 32}, err, sizeof err) == -1);
    CHECK_HAS(err, "fake: its samples are [28, 28], but the model's input is [1, 32, 32]\n"
                   "help: --pad 2 zero-pads 28x28 to 32x32");
    CHECK(nnrt_data_fit(&d, &pad2, 3, (int64_t[]){1, 28, 28}, err, sizeof err) == -1);
    CHECK_HAS(err, "fake: its samples are [28, 28] (after --pad 2: [32, 32]), but the model's input is "
                   "[1, 28, 28]");
    CHECK(nnrt_data_fit(&d, &none, 3, (int64_t[]){3, 28, 28}, err, sizeof err) == -1);
    CHECK(nnrt_data_fit(&d, &none, 2, (int64_t[]){28, 27}, err, sizeof err) == -1);
    d.ndim = 1;
    d.shape[0] = 784;
    CHECK(nnrt_data_fit(&d, &pad2, 3, (int64_t[]){1, 32, 32}, err, sizeof err) == -1);
    CHECK_HAS(err, "fake: --pad needs images, but its samples are [784]");

    /* targets: class indices, one-hot, in range */
    d.ndim = 2;
    CHECK(nnrt_data_targets_mode(&d, 3, 1, err, sizeof err) == NNRT_TARGET_CLASS);
    CHECK(nnrt_data_targets_mode(&d, 0, 3, err, sizeof err) == NNRT_TARGET_ONEHOT);
    CHECK(nnrt_data_targets_mode(&d, 2, 1, err, sizeof err) == -1);
    CHECK_HAS(err, "fake: the label of sample 2 is 2, out of range: the model has 2 classes (0 to 1)");
    CHECK(nnrt_data_targets_mode(&d, 0, 2, err, sizeof err) == -1);
    d.labels = NULL;
    CHECK(nnrt_data_targets_mode(&d, 3, 1, err, sizeof err) == -1);
    CHECK_HAS(err, "fake: no labels or targets");
}

/* padding, scaling and normalisation, exactly as torchvision computes them */
static void test_batch(void)
{
    unsigned char bytes[3 * 2 * 2];
    int32_t labels[3];
    nnrt_dataset d;
    fake_images(&d, 3, 2, 2, bytes, labels);
    nnrt_transform tf = {1, 0.5f, 0.25f};
    float x[2 * 16], t[2 * 3];
    int32_t got[2];
    nnrt_data_batch(x, t, got, &d, (int64_t[]){2, 0}, 2, &tf, NNRT_TARGET_ONEHOT, 3);
    const float border = (0.0f - 0.5f) / 0.25f;
    /* sample 2 (bytes 8..11) padded to 4x4: the border, and the middle */
    for (int i = 0; i < 16; i++) {
        int r = i / 4, c = i % 4;
        int inside = r >= 1 && r <= 2 && c >= 1 && c <= 2;
        float want = inside ? ((float)(8 + (r - 1) * 2 + (c - 1)) / 255.0f - 0.5f) / 0.25f : border;
        CHECK(x[i] == want);
    }
    CHECK(x[16 + 5] == (0.0f / 255.0f - 0.5f) / 0.25f && x[16 + 10] == (3.0f / 255.0f - 0.5f) / 0.25f);
    CHECK(got[0] == 2 && got[1] == 0);
    CHECK(t[0] == 0 && t[1] == 0 && t[2] == 1 && t[3] == 1 && t[4] == 0 && t[5] == 0);
    nnrt_data_batch(x, t, NULL, &d, (int64_t[]){1}, 1, &(nnrt_transform){0, 0, 1}, NNRT_TARGET_CLASS, 1);
    CHECK(x[0] == 4.0f / 255.0f && x[3] == 7.0f / 255.0f && t[0] == 1.0f);
    /* floats are used as they are, then normalised */
    float f[4] = {1, 2, 3, 4}, tg[2] = {9, 8};
    nnrt_dataset e = {.path = "f", .n = 1, .ndim = 1, .shape = {4}, .size = 4, .f32 = f, .targets = tg,
                      .tsize = 2};
    nnrt_data_batch(x, t, got, &e, (int64_t[]){0}, 1, &(nnrt_transform){0, 1, 2}, NNRT_TARGET_VALUES, 2);
    CHECK(x[0] == 0 && x[3] == 1.5f && t[0] == 9 && t[1] == 8 && got[0] == -1);
}

static void test_shuffle(void)
{
    enum { N = 1000 };
    static int64_t a[N], b[N], c[N];
    nnrt_rng r;
    nnrt_rng_seed(&r, 7);
    nnrt_shuffle(a, N, &r);
    nnrt_shuffle(c, N, &r); /* the next epoch: another order */
    nnrt_rng_seed(&r, 7);
    nnrt_shuffle(b, N, &r);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    static char seen[N];
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        CHECK(a[i] >= 0 && a[i] < N && !seen[a[i]]);
        if (a[i] >= 0 && a[i] < N)
            seen[a[i]] = 1;
        fixed += a[i] == i;
    }
    CHECK(fixed < 10); /* a shuffle, not the identity (about 1 fixed point expected) */
    int64_t one[1];
    nnrt_shuffle(one, 1, &r);
    CHECK(one[0] == 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    mkdir(dir, 0700);
    run("data: IDX bytes, plain and gzip, with labels; other IDX types", test_idx);
    run("data: bad IDX files, each named with what is wrong", test_idx_errors);
    run("data: CSV with header, BOM, CRLF; labels, targets; bad rows", test_csv);
    run("data: PGM, P2 and P5", test_pgm);
    run("data: safetensors data sets, and data specs", test_safetensors_data);
    run("data: fitting samples to a model's input; labels in range", test_fit);
    run("data: batches: padding, scaling, normalisation, targets", test_batch);
    run("data: shuffling from the seed", test_shuffle);
    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    return 0;
}

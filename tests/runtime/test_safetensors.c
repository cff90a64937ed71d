/* test_safetensors.c — tests of the runtime's safetensors files (save, open,
 * load), its small helpers and its command-line parser.
 *
 * Usage: test_safetensors DIR    (files are made in DIR/safetensors.d, which
 *                                  is emptied first and left for inspection)
 *
 * Each test prints "ok   name" or "FAIL name", after a line for every check
 * that failed; the exit status is 1 if any failed. The file format is checked
 * by hand here, by rules written out independently of safetensors.c, and
 * hostile files are made byte by byte. nnrt_parse_args exits, so it runs in
 * a child process (fork) with its output captured in files.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "nnrt_host.h"
#include "../check.h"

static const char *tmpdir;


/* ---- files ---- */

/* TMPDIR/name, in one of a few rotating static buffers */
static const char *tmp_path(const char *name)
{
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

/* the bytes of path (malloc'd, with a NUL after them; *len set), or NULL */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *b = malloc(cap);
    size_t k;
    while ((k = fread(b + n, 1, cap - 1 - n, fp)) > 0) {
        n += k;
        if (n == cap - 1)
            b = realloc(b, cap *= 2);
    }
    b[n] = '\0';
    fclose(fp);
    *len = n;
    return b;
}

static void spew(const char *path, const void *bytes, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(bytes, 1, len, fp) != len || fclose(fp) != 0) {
        printf("cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* writes a safetensors file by hand: the header exactly as given (no
 * padding), then datalen bytes of data */
static void spew_st(const char *path, const char *header, const void *data, size_t datalen)
{
    size_t hlen = strlen(header), len = 8 + hlen + datalen;
    unsigned char *b = malloc(len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, header, hlen);
    if (datalen)
        memcpy(b + 8 + hlen, data, datalen);
    spew(path, b, len);
    free(b);
}

/* 1 if the two files exist and hold the same bytes */
static int same_file(const char *path, const unsigned char *bytes, size_t len)
{
    size_t n;
    unsigned char *b = slurp(path, &n);
    int same = b && n == len && memcmp(b, bytes, len) == 0;
    free(b);
    return same;
}

/* number of files in TMPDIR whose name contains ".tmp." */
static int count_temp_files(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* removes what an earlier run left in TMPDIR (files and empty directories) */
static void empty_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            remove(tmp_path(e->d_name));
    if (d)
        closedir(d);
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- a small model used by several tests ---- */

static float w1[6 * 1 * 5 * 5], b1[6], scale[1];

static void fill_model(void)
{
    for (int i = 0; i < 150; i++)
        w1[i] = (float)i * 0.01f - 0.75f;
    /* values a text format or a careless conversion would lose */
    w1[0] = -0.0f;
    w1[1] = INFINITY;
    w1[2] = -INFINITY;
    w1[3] = from_bits(0x7fc00001); /* a NaN with a payload */
    w1[4] = from_bits(0x00000001); /* the smallest subnormal */
    w1[5] = FLT_MAX;
    w1[6] = 0.1f;
    for (int i = 0; i < 6; i++)
        b1[i] = (float)(i + 1) / 3.0f;
    scale[0] = 1.5f;
}

/* conv1.weight [6,1,5,5], conv1.bias [6], scale [] (a scalar), empty [0,3] */
static nnrt_tensor model[4] = {
    {"conv1.weight", 4, {6, 1, 5, 5}, w1, NULL},
    {"conv1.bias", 1, {6}, b1, NULL},
    {"scale", 0, {0}, scale, NULL},
    {"empty", 2, {0, 3}, NULL, NULL},
};
static const char *const meta_keys[] = {"format", "note"};
static const char *const meta_vals[] = {"pt", "quote \" backslash \\ newline \n caf\xc3\xa9"};

/* ---- tests ---- */

static void test_roundtrip(void)
{
    char err[512] = "";
    const char *p = tmp_path("roundtrip.st");
    fill_model();
    CHECK(nnrt_save_safetensors(p, model, 4, meta_keys, meta_vals, 2, err, sizeof err) == 0);
    nnrt_st_file *f = nnrt_st_open(p, err, sizeof err);
    CHECK(f != NULL);
    if (!f) {
        printf("    %s\n", err);
        return;
    }
    CHECK(nnrt_st_count(f) == 4);
    for (int i = 0; i < 4 && i < nnrt_st_count(f); i++) {
        const nnrt_tensor *t = nnrt_st_at(f, i);
        CHECK(strcmp(t->name, model[i].name) == 0); /* the order given */
        CHECK(t->ndim == model[i].ndim);
        CHECK(memcmp(t->shape, model[i].shape, (size_t)t->ndim * sizeof t->shape[0]) == 0);
        CHECK(nnrt_tensor_numel(t) == nnrt_tensor_numel(&model[i]));
        CHECK(t->data != NULL && (uintptr_t)t->data % 64 == 0);
        if (model[i].data) /* bit for bit, NaN payload included */
            CHECK(memcmp(t->data, model[i].data, nnrt_tensor_numel(t) * 4) == 0);
        CHECK(nnrt_st_get(f, model[i].name) == t);
    }
    CHECK(nnrt_st_at(f, 4) == NULL && nnrt_st_at(f, -1) == NULL);
    CHECK(nnrt_st_get(f, "conv1") == NULL);
    CHECK(nnrt_st_get(f, "__metadata__") == NULL);
    CHECK(nnrt_st_meta(f, "format") && strcmp(nnrt_st_meta(f, "format"), "pt") == 0);
    CHECK(nnrt_st_meta(f, "note") && strcmp(nnrt_st_meta(f, "note"), meta_vals[1]) == 0);
    CHECK(nnrt_st_meta(f, "missing") == NULL);
    nnrt_st_close(f);

    /* load into another model's buffers, listed in another order */
    float w[150], b[6], s[1];
    memset(w, 0, sizeof w);
    memset(b, 0, sizeof b);
    s[0] = 0;
    nnrt_tensor other[4] = {
        {"scale", 0, {0}, s, NULL},
        {"empty", 2, {0, 3}, NULL, NULL},
        {"conv1.bias", 1, {6}, b, NULL},
        {"conv1.weight", 4, {6, 1, 5, 5}, w, NULL},
    };
    strcpy(err, "stale");
    CHECK(nnrt_load_safetensors(p, other, 4, err, sizeof err) == 0);
    CHECK(err[0] == '\0');
    CHECK(memcmp(w, w1, sizeof w) == 0);
    CHECK(memcmp(b, b1, sizeof b) == 0);
    CHECK(bits(s[0]) == bits(1.5f));

    /* no tensors, no metadata: still a valid file */
    p = tmp_path("nothing.st");
    CHECK(nnrt_save_safetensors(p, NULL, 0, NULL, NULL, 0, err, sizeof err) == 0);
    f = nnrt_st_open(p, err, sizeof err);
    CHECK(f && nnrt_st_count(f) == 0);
    nnrt_st_close(f);
}

/* The file read back by the format's own rules, not by safetensors.c. */
static void test_layout(void)
{
    char err[512];
    const char *p = tmp_path("layout.st");
    fill_model();
    CHECK(nnrt_save_safetensors(p, model, 4, meta_keys, meta_vals, 2, err, sizeof err) == 0);
    size_t len;
    unsigned char *b = slurp(p, &len);
    CHECK(b && len >= 8);
    if (!b || len < 8)
        return;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    CHECK((8 + n) % 8 == 0);
    CHECK(8 + n <= len);
    if (8 + n > len) {
        free(b);
        return;
    }
    const char *hdr = (const char *)b + 8;
    /* padding: spaces only, fewer than 8 of them */
    size_t end = n;
    while (end > 0 && hdr[end - 1] == ' ')
        end--;
    CHECK(n - end < 8);
    CHECK(end > 0 && hdr[end - 1] == '}');
    cJSON *root = cJSON_ParseWithLength(hdr, n);
    CHECK(cJSON_IsObject(root));
    /* metadata */
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    CHECK(cJSON_IsObject(meta) && cJSON_GetArraySize(meta) == 2);
    cJSON *note = cJSON_GetObjectItemCaseSensitive(meta, "note");
    CHECK(cJSON_IsString(note) && strcmp(note->valuestring, meta_vals[1]) == 0);
    /* the tensors: in the order given, F32, contiguous from offset 0 */
    uint64_t at = 0;
    int k = 0;
    for (cJSON *e = root ? root->child : NULL; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0)
            continue;
        CHECK(k < 4 && strcmp(e->string, model[k].name) == 0);
        if (k >= 4)
            break;
        cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        CHECK(cJSON_IsString(dtype) && strcmp(dtype->valuestring, "F32") == 0);
        CHECK(cJSON_IsArray(shape) && cJSON_GetArraySize(shape) == model[k].ndim);
        for (int d = 0; d < model[k].ndim && d < cJSON_GetArraySize(shape); d++)
            CHECK(cJSON_GetArrayItem(shape, d)->valuedouble == (double)model[k].shape[d]);
        CHECK(cJSON_IsArray(offs) && cJSON_GetArraySize(offs) == 2);
        if (cJSON_GetArraySize(offs) != 2)
            break;
        uint64_t begin = (uint64_t)cJSON_GetArrayItem(offs, 0)->valuedouble;
        uint64_t stop = (uint64_t)cJSON_GetArrayItem(offs, 1)->valuedouble;
        CHECK(begin == at);
        CHECK(stop - begin == 4 * nnrt_tensor_numel(&model[k]));
        /* the data: little-endian float32 */
        for (size_t i = 0; i < nnrt_tensor_numel(&model[k]) && 8 + n + stop <= len; i++) {
            uint32_t u = bits(model[k].data[i]);
            const unsigned char *q = b + 8 + n + begin + 4 * i;
            CHECK(q[0] == (u & 0xff) && q[1] == (u >> 8 & 0xff) && q[2] == (u >> 16 & 0xff) &&
                  q[3] == u >> 24);
        }
        at = stop;
        k++;
    }
    CHECK(k == 4);
    CHECK(len == 8 + n + at); /* nothing after the last tensor */
    cJSON_Delete(root);
    free(b);

    /* one small file, byte for byte */
    float ab[2] = {1.0f, 2.0f};
    nnrt_tensor a = {"a", 1, {2}, ab, NULL};
    p = tmp_path("exact.st");
    CHECK(nnrt_save_safetensors(p, &a, 1, NULL, NULL, 0, err, sizeof err) == 0);
    const char *want_hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    unsigned char want[128] = {0};
    size_t hl = strlen(want_hdr), padded = (hl + 7) / 8 * 8; /* 8 + padded is then a multiple of 8 */
    want[0] = (unsigned char)padded;
    memcpy(want + 8, want_hdr, hl);
    memset(want + 8 + hl, ' ', padded - hl);
    memcpy(want + 8 + padded, "\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
    CHECK(same_file(p, want, 8 + padded + 8));

    /* every padding length: names of 1 to 16 letters */
    for (int len8 = 1; len8 <= 16; len8++) {
        char name[17] = "abcdefghijklmnop";
        name[len8] = '\0';
        nnrt_tensor t = {name, 1, {2}, ab, NULL};
        CHECK(nnrt_save_safetensors(p, &t, 1, NULL, NULL, 0, err, sizeof err) == 0);
        unsigned char *c = slurp(p, &len);
        uint64_t h = c ? c[0] | (uint64_t)c[1] << 8 : 0;
        CHECK(c && (8 + h) % 8 == 0 && len == 8 + h + 8 && c[8 + h - 1] != '\0');
        nnrt_st_file *f = nnrt_st_open(p, err, sizeof err);
        CHECK(f && nnrt_st_get(f, name) && nnrt_st_get(f, name)->data[1] == 2.0f);
        nnrt_st_close(f);
        free(c);
    }
}

/* F64, F16 and BF16 are converted to float32; other dtypes are listed but
 * have no float data. */
static void test_dtypes(void)
{
    char err[512];
    const char *p = tmp_path("dtypes.st");
    unsigned char data[64];
    size_t k = 0;
    double d[3] = {0.1, -1e300, 3.0};
    for (int i = 0; i < 3; i++) { /* F64 [3] at 0..24 */
        uint64_t u;
        memcpy(&u, &d[i], 8);
        for (int j = 0; j < 8; j++)
            data[k++] = (unsigned char)(u >> (8 * j));
    }
    /* F16 [5] at 24..34: 1, -2, inf, the smallest subnormal 2^-24, -0 */
    uint16_t h[5] = {0x3c00, 0xc000, 0x7c00, 0x0001, 0x8000};
    for (int i = 0; i < 5; i++) {
        data[k++] = (unsigned char)(h[i] & 0xff);
        data[k++] = (unsigned char)(h[i] >> 8);
    }
    /* BF16 [2] at 34..38: 1, -3.5 */
    uint16_t bf[2] = {0x3f80, 0xc060};
    for (int i = 0; i < 2; i++) {
        data[k++] = (unsigned char)(bf[i] & 0xff);
        data[k++] = (unsigned char)(bf[i] >> 8);
    }
    /* I64 [1] at 38..46: 7 */
    for (int j = 0; j < 8; j++)
        data[k++] = j == 0 ? 7 : 0;
    spew_st(p, "{\"d\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,24]},"
               "\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[24,34]},"
               "\"bf\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[34,38]},"
               "\"step\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[38,46]}}",
            data, k);
    nnrt_st_file *f = nnrt_st_open(p, err, sizeof err);
    CHECK(f != NULL);
    if (!f) {
        printf("    %s\n", err);
        return;
    }
    const nnrt_tensor *t = nnrt_st_get(f, "d");
    CHECK(t && t->data[0] == 0.1f && isinf(t->data[1]) && t->data[1] < 0 && t->data[2] == 3.0f);
    t = nnrt_st_get(f, "h");
    CHECK(t && t->data[0] == 1.0f && t->data[1] == -2.0f && isinf(t->data[2]) &&
          t->data[3] == 0x1p-24f && bits(t->data[4]) == 0x80000000u);
    t = nnrt_st_get(f, "bf");
    CHECK(t && t->ndim == 2 && t->data[0] == 1.0f && t->data[1] == -3.5f);
    CHECK(nnrt_st_get(f, "step") == NULL);
    CHECK(nnrt_st_count(f) == 4 && strcmp(nnrt_st_at(f, 3)->name, "step") == 0 &&
          nnrt_st_at(f, 3)->data == NULL);
    nnrt_st_close(f);

    /* loading: the converted ones fit, the integer one is refused by name */
    float dd[3] = {9, 9, 9}, step[1] = {9};
    nnrt_tensor m[2] = {{"d", 1, {3}, dd, NULL}, {"step", 1, {1}, step, NULL}};
    CHECK(nnrt_load_safetensors(p, m, 2, err, sizeof err) == -1);
    CHECK_HAS(err, "tensor 'step' has dtype I64, expected F32");
    CHECK(dd[0] == 9 && step[0] == 9);
    /* into an integer tensor (a count), it loads; and a count saved as F32 too */
    int64_t count = 0;
    float hh[5], bb[2];
    nnrt_tensor mi[4] = {{"d", 1, {3}, dd, NULL}, {"h", 1, {5}, hh, NULL}, {"bf", 2, {1, 2}, bb, NULL},
                         {"step", 1, {1}, NULL, &count}};
    CHECK(nnrt_load_safetensors(p, mi, 4, err, sizeof err) == 0 && count == 7 && dd[0] == 0.1f);
    /* written as I64 and read back: a count past float's 2^24 stays exact */
    int64_t big = (1LL << 40) + 3, back = 0;
    nnrt_tensor w[1] = {{.name = "n", .ndim = 0, .i64 = &big}};
    CHECK(nnrt_save_safetensors(p, w, 1, NULL, NULL, 0, err, sizeof err) == 0);
    nnrt_tensor r[1] = {{.name = "n", .ndim = 0, .i64 = &back}};
    CHECK(nnrt_load_safetensors(p, r, 1, err, sizeof err) == 0 && back == big);
}

static void test_load_refuses(void)
{
    char err[1024];
    const char *p = tmp_path("refuse.st");
    float w[12], b[3], x[2], q[6];
    for (int i = 0; i < 12; i++)
        w[i] = (float)i;
    nnrt_tensor file[4] = {
        {"fc1.weight", 2, {3, 4}, w, NULL},
        {"fc1.bias", 1, {3}, b, NULL},
        {"extra", 1, {2}, x, NULL},
        {"fc2.weight", 1, {6}, q, NULL},
    };
    memset(b, 0, sizeof b);
    memset(x, 0, sizeof x);
    memset(q, 0, sizeof q);
    CHECK(nnrt_save_safetensors(p, file, 4, NULL, NULL, 0, err, sizeof err) == 0);

    float mw[15], mb[3], m3[2], mq[6];
    for (int i = 0; i < 15; i++)
        mw[i] = 7;
    for (int i = 0; i < 3; i++)
        mb[i] = 7;
    m3[0] = m3[1] = 7;
    for (int i = 0; i < 6; i++)
        mq[i] = 7;
    nnrt_tensor m[4] = {
        {"fc1.weight", 2, {3, 5}, mw, NULL},
        {"fc1.bias", 1, {3}, mb, NULL},   /* this one fits, but must not be copied */
        {"fc3.bias", 1, {2}, m3, NULL},
        {"fc2.weight", 2, {2, 3}, mq, NULL},
    };
    CHECK(nnrt_load_safetensors(p, m, 4, err, sizeof err) == -1);
    CHECK(strncmp(err, p, strlen(p)) == 0); /* names the file first */
    CHECK_HAS(err, "tensor 'fc1.weight' has shape [3, 4], the model expects [3, 5]");
    CHECK_HAS(err, "missing tensor 'fc3.bias'");
    CHECK_HAS(err, "tensor 'fc2.weight' has shape [6], the model expects [2, 3]");
    CHECK_HAS(err, "unexpected tensor 'extra'");
    CHECK(strstr(err, "fc1.bias") == NULL);
    int unchanged = 1;
    for (int i = 0; i < 15; i++)
        unchanged &= mw[i] == 7;
    for (int i = 0; i < 3; i++)
        unchanged &= mb[i] == 7;
    CHECK(unchanged && m3[0] == 7 && mq[0] == 7);

    /* only an extra tensor: still refused (a checkpoint of another model) */
    m[0].shape[1] = 4;
    m[3].ndim = 1;
    m[3].shape[0] = 6;
    CHECK(nnrt_load_safetensors(p, m, 2, err, sizeof err) == -1);
    CHECK_HAS(err, "unexpected tensor 'extra'");
    CHECK_HAS(err, "unexpected tensor 'fc2.weight'");
    CHECK(mb[0] == 7);
    /* and everything fits when the model matches the file */
    nnrt_tensor all[4] = {m[1], {"extra", 1, {2}, m3, NULL}, m[0], m[3]};
    CHECK(nnrt_load_safetensors(p, all, 4, err, sizeof err) == 0);
    CHECK(mw[11] == 11 && mb[0] == 0);

    /* a message longer than err is cut, not overflowed */
    char small[48];
    CHECK(nnrt_load_safetensors(p, m, 0, small, sizeof small) == -1);
    CHECK(strlen(small) == sizeof small - 1 && strcmp(small + sizeof small - 4, "...") == 0);

    /* no such file */
    const char *none = tmp_path("no-such-file.st");
    CHECK(nnrt_load_safetensors(none, m, 1, err, sizeof err) == -1);
    CHECK_HAS(err, none);
    CHECK_HAS(err, strerror(ENOENT));
    /* a directory */
    CHECK(nnrt_st_open(tmpdir, err, sizeof err) == NULL);
    CHECK_HAS(err, tmpdir);
}

/* Every way a file can be broken gives an error naming the file, never a
 * crash (run this under AddressSanitizer). */
static void test_corrupt(void)
{
    char err[512];
    const char *good = tmp_path("good.st"), *bad = tmp_path("bad.st");
    float a[3] = {1, 2, 3}, b[2] = {4, 5};
    nnrt_tensor t[2] = {{"a", 1, {3}, a, NULL}, {"b", 2, {1, 2}, b, NULL}};
    const char *mk[] = {"k"}, *mv[] = {"v"};
    CHECK(nnrt_save_safetensors(good, t, 2, mk, mv, 1, err, sizeof err) == 0);
    size_t len;
    unsigned char *g = slurp(good, &len);
    if (!g)
        return;

    /* every prefix of a valid file is refused, by open and by load */
    for (size_t n = 0; n < len; n++) {
        spew(bad, g, n);
        err[0] = '\0';
        nnrt_st_file *f = nnrt_st_open(bad, err, sizeof err);
        if (f || strncmp(err, bad, strlen(bad)) != 0) {
            printf("    prefix of %zu bytes: %s\n", n, f ? "accepted" : err);
            failures++;
        }
        nnrt_st_close(f);
        float ma[3] = {7, 7, 7}, mb[2] = {7, 7};
        nnrt_tensor m[2] = {{"a", 1, {3}, ma, NULL}, {"b", 2, {1, 2}, mb, NULL}};
        if (nnrt_load_safetensors(bad, m, 2, err, sizeof err) != -1 || ma[0] != 7 || mb[1] != 7) {
            printf("    prefix of %zu bytes: loaded\n", n);
            failures++;
        }
    }

    /* hand-made headers, each with the problem the message must name */
    static const struct {
        const char *header;
        size_t datalen;
        const char *want;
    } cases[] = {
        {"{not json", 0, "not valid JSON"},
        {"[1, 2]", 0, "not a JSON object"},
        {"{} x", 0, "extra text after its JSON object"},
        {"{\"a\": 5}", 0, "header entry for tensor 'a' is not an object"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a' has no \"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'a' has no \"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'a' has no \"data_offsets\""},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "unknown dtype 'F33'"},
        {"{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "\"dtype\" is not a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
         "dimension 0 of \"shape\" is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1, 1.5],\"data_offsets\":[0,4]}}", 4,
         "dimension 1 of \"shape\" is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
         "dimension 0 of \"shape\" is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", 4,
         "\"shape\" is not an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a' has 9 dimensions, nnrt supports at most 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
         "\"data_offsets\":[0,4]}}", 4, "too many elements"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4,
         "not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
         "\"data_offsets\" is not a pair"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
         "\"data_offsets\" is not a pair"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
         "\"data_offsets\" is not a pair"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
         "begin is after end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 16,
         "beyond the end of the data (16 bytes)"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}",
         4, "\"data_offsets\" is not a pair"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12,
         "shape [2] of F32 needs 8 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
         "4 bytes of data before tensor 'b' belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
         "the data is 8 bytes but the tensors cover only 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
         "tensor 'a' appears twice"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "metadata value for 'k' is not a string"},
        {"{\"__metadata__\":[]}", 0, "\"__metadata__\" is not an object"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "\"__metadata__\" appears twice"},
        {"", 0, "the header is empty"},
    };
    unsigned char zeros[400] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spew_st(bad, cases[i].header, zeros, cases[i].datalen);
        err[0] = '\0';
        nnrt_st_file *f = nnrt_st_open(bad, err, sizeof err);
        CHECK(f == NULL);
        nnrt_st_close(f);
        CHECK_HAS(err, cases[i].want);
        CHECK(strncmp(err, bad, strlen(bad)) == 0);
    }
    /* a NUL byte inside the header */
    spew_st(bad, "{\"a\":{}}", NULL, 0);
    unsigned char *c = slurp(bad, &len);
    c[10] = '\0';
    spew(bad, c, len);
    free(c);
    CHECK(nnrt_st_open(bad, err, sizeof err) == NULL);
    CHECK_HAS(err, "NUL byte");
    /* header lengths larger than the file, up to 2^64 - 1 */
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    spew(bad, huge, 10);
    CHECK(nnrt_st_open(bad, err, sizeof err) == NULL);
    CHECK_HAS(err, "header length 18446744073709551615 is larger than the rest of the file (2 bytes)");
    unsigned char big[10] = {3, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    spew(bad, big, 10);
    CHECK(nnrt_st_open(bad, err, sizeof err) == NULL);
    CHECK_HAS(err, "header length 3 is larger");
    spew(bad, "abc", 3);
    CHECK(nnrt_st_open(bad, err, sizeof err) == NULL);
    CHECK_HAS(err, "only 3 bytes long");
    /* a valid empty file: "{}" padded */
    spew_st(bad, "{}      ", NULL, 0);
    nnrt_st_file *f = nnrt_st_open(bad, err, sizeof err);
    CHECK(f && nnrt_st_count(f) == 0);
    nnrt_st_close(f);

    /* every byte of a valid file replaced by values likely to confuse a
     * parser: no crash, and what opens is self-consistent */
    static const unsigned char subst[] = {0x00, 0xff, '"', '[', '{', '9', '-', ' '};
    for (size_t i = 0; i < len; i++) {
        for (size_t s = 0; s < sizeof subst; s++) {
            unsigned char *m = malloc(len);
            memcpy(m, g, len);
            m[i] = subst[s];
            spew(bad, m, len);
            free(m);
            nnrt_st_file *h = nnrt_st_open(bad, err, sizeof err);
            for (int k = 0; h && k < nnrt_st_count(h); k++) {
                const nnrt_tensor *u = nnrt_st_at(h, k);
                volatile float sink = 0;
                for (size_t e = 0; e < nnrt_tensor_numel(u); e++)
                    sink += u->data[e];
                (void)sink;
            }
            if (!h && strncmp(err, bad, strlen(bad)) != 0) {
                printf("    byte %zu = %02x: bad message '%s'\n", i, subst[s], err);
                failures++;
            }
            nnrt_st_close(h);
        }
    }
    /* random headers built from JSON's alphabet */
    uint64_t r = 12345;
    static const char alphabet[] = "{}[]\":,0123456789-.e \"dtype\"\"shape\"\"data_offsets\"F32";
    for (int iter = 0; iter < 2000; iter++) {
        char h[96];
        int n = (int)(r % 90);
        for (int k = 0; k < n; k++) {
            r = r * 6364136223846793005u + 1442695040888963407u;
            h[k] = alphabet[(r >> 33) % (sizeof alphabet - 1)];
        }
        h[n] = '\0';
        spew_st(bad, h, zeros, r % 17);
        nnrt_st_file *x = nnrt_st_open(bad, err, sizeof err);
        nnrt_st_close(x);
    }
    free(g);
}

/* A failed save leaves no temporary file and the old file byte-identical. */
static void test_atomic(void)
{
    char err[512];
    float a[4] = {1, 2, 3, 4}, z[4] = {0};
    nnrt_tensor t = {"a", 1, {4}, a, NULL};
    nnrt_tensor other = {"a", 1, {4}, z, NULL};

    /* a directory that does not exist */
    const char *nodir = tmp_path("no-such-dir/w.st");
    CHECK(nnrt_save_safetensors(nodir, &t, 1, NULL, NULL, 0, err, sizeof err) == -1);
    CHECK_HAS(err, nodir);
    CHECK_HAS(err, strerror(ENOENT));
    struct stat st;
    CHECK(stat(tmp_path("no-such-dir"), &st) != 0);

    const char *p = tmp_path("atomic.st");
    CHECK(nnrt_save_safetensors(p, &t, 1, NULL, NULL, 0, err, sizeof err) == 0);
    size_t len;
    unsigned char *old = slurp(p, &len);
    CHECK(old != NULL);
    if (!old)
        return;

    /* the temporary file cannot be created: a directory has its name */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    CHECK(mkdir(tmp, 0700) == 0);
    CHECK(nnrt_save_safetensors(p, &other, 1, NULL, NULL, 0, err, sizeof err) == -1);
    CHECK_HAS(err, p);
    CHECK_HAS(err, ".tmp.");
    CHECK(same_file(p, old, len));
    rmdir(tmp);
    CHECK(count_temp_files() == 0);

    /* the disk fills up halfway: a child with a 4 KiB file size limit saves
     * 400 KB over the old file */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {4096, 4096};
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(3);
        static float big[100000];
        nnrt_tensor bt = {"a", 1, {100000}, big, NULL};
        int rc = nnrt_save_safetensors(p, &bt, 1, NULL, NULL, 0, err, sizeof err);
        if (rc != -1 || !strstr(err, strerror(EFBIG))) {
            printf("    child: rc %d, err '%s'\n", rc, err);
            _exit(1);
        }
        _exit(0);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(same_file(p, old, len));
    CHECK(count_temp_files() == 0);

    /* refused before writing anything: bad tensors */
    nnrt_tensor dup[2] = {t, t};
    CHECK(nnrt_save_safetensors(p, dup, 2, NULL, NULL, 0, err, sizeof err) == -1);
    CHECK_HAS(err, "tensor 'a' given twice");
    nnrt_tensor reserved = {"__metadata__", 1, {4}, a, NULL};
    CHECK(nnrt_save_safetensors(p, &reserved, 1, NULL, NULL, 0, err, sizeof err) == -1);
    CHECK_HAS(err, "reserved");
    nnrt_tensor negative = {"a", 2, {-1, 4}, a, NULL};
    CHECK(nnrt_save_safetensors(p, &negative, 1, NULL, NULL, 0, err, sizeof err) == -1);
    CHECK_HAS(err, "dimension -1");
    nnrt_tensor deep = {"a", 9, {1}, a, NULL};
    CHECK(nnrt_save_safetensors(p, &deep, 1, NULL, NULL, 0, err, sizeof err) == -1);
    nnrt_tensor nodata = {"a", 1, {4}, NULL, NULL};
    CHECK(nnrt_save_safetensors(p, &nodata, 1, NULL, NULL, 0, err, sizeof err) == -1);
    CHECK_HAS(err, "no data");
    CHECK(same_file(p, old, len));

    /* the rename fails: the target is a directory */
    const char *d = tmp_path("a-directory.st");
    CHECK(mkdir(d, 0700) == 0 || errno == EEXIST);
    CHECK(nnrt_save_safetensors(d, &t, 1, NULL, NULL, 0, err, sizeof err) == -1);
    CHECK_HAS(err, "cannot rename");
    CHECK(count_temp_files() == 0);
    rmdir(d);

    /* and a successful save replaces the old file */
    CHECK(nnrt_save_safetensors(p, &other, 1, NULL, NULL, 0, err, sizeof err) == 0);
    CHECK(!same_file(p, old, len));
    nnrt_st_file *f = nnrt_st_open(p, err, sizeof err);
    CHECK(f && nnrt_st_get(f, "a") && nnrt_st_get(f, "a")->data[3] == 0);
    nnrt_st_close(f);
    CHECK(count_temp_files() == 0);
    free(old);
}

static void test_util(void)
{
    float *p = nnrt_alloc(1000, "test buffer");
    CHECK((uintptr_t)p % 64 == 0);
    int zero = 1;
    for (int i = 0; i < 1000; i++)
        zero &= p[i] == 0;
    CHECK(zero);
    free(p);
    p = nnrt_alloc(0, "nothing");
    CHECK(p != NULL);
    free(p);

    float v[4] = {-3, 2, 0, 1};
    CHECK(nnrt_max_abs(v, 4) == 3);
    CHECK(nnrt_max_abs(v, 0) == 0);
    v[2] = NAN; /* a NaN difference must not compare as small */
    CHECK(isnan(nnrt_max_abs(v, 4)));

    double t0 = nnrt_seconds(), t1 = nnrt_seconds();
    CHECK(t0 > 0 && t1 >= t0);

    /* an impossible allocation exits 1 with a message */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(tmp_path("alloc.err"), "w", stderr))
            _exit(3);
        nnrt_alloc(SIZE_MAX / 2, "the huge buffer");
        _exit(0);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    size_t len;
    char *e = (char *)slurp(tmp_path("alloc.err"), &len);
    if (e) {
        CHECK_HAS(e, "nnrt: error: out of memory allocating the huge buffer");
        free(e);
    }
}

/* ---- the command line ---- */

static const char *doc = "lenet: LeNet-5, compiled by nnc\n  input [64, 1, 32, 32], target [64, 10]";

/* Runs nnrt_parse_args on argv in a child. Returns the exit status; *out and
 * *errout get what it printed (malloc'd). If parsing returned, the child
 * prints the parsed values and exits 42. */
static int run_args(const char *const *argv, char **out, char **errout)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(tmp_path("args.out"), "w", stdout) ||
            !freopen(tmp_path("args.err"), "w", stderr))
            _exit(3);
        nnrt_args a = {.steps = 100, .batch = 64, .lr = 0.01f, .seed = 42, .print_every = 10};
        /* a writable copy: predict moves its files to the front of argv */
        char *args[64];
        for (int i = 0; i <= argc && i < 64; i++)
            args[i] = (char *)argv[i];
        nnrt_parse_args(&a, argc, args, doc);
        printf("steps=%ld batch=%d lr=%g seed=%" PRIu64 " save=%s load=%s data=%s dump=%s "
               "print_every=%ld quiet=%d", a.steps, a.batch, (double)a.lr, a.seed,
               a.save ? a.save : "-", a.load ? a.load : "-", a.data ? a.data : "-",
               a.dump ? a.dump : "-", a.print_every, a.quiet);
        if (a.command) { /* the commands' fields */
            printf(" | %s epochs=%ld test_data=%s resume=%s log=%s pad=%d normalize=", a.command,
                   a.epochs, a.test_data ? a.test_data : "-", a.resume ? a.resume : "-",
                   a.log ? a.log : "-", a.pad);
            if (a.normalize)
                printf("%g,%g", (double)a.mean, (double)a.std);
            else
                printf("-");
            printf(" limit=%ld test_limit=%ld save_every=%ld index=%ld inputs=", a.limit,
                   a.test_limit, a.save_every, a.index);
            for (int i = 0; i < a.ninputs; i++)
                printf("%s%s", i ? "," : "", a.inputs[i]);
        }
        fflush(stdout);
        _exit(42);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    size_t n;
    *out = (char *)slurp(tmp_path("args.out"), &n);
    *errout = (char *)slurp(tmp_path("args.err"), &n);
    if (!*out || !*errout) {
        printf("    cannot read the child's output\n");
        failures++;
        free(*out);
        free(*errout);
        *out = strdup("");
        *errout = strdup("");
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* argv that parses: the values printed must be want */
static void args_ok(const char *const *argv, const char *want)
{
    char *out, *err;
    int rc = run_args(argv, &out, &err);
    if (rc != 42 || strcmp(out, want) != 0 || err[0]) {
        printf("    %s %s ...: exit %d\n      got  %s\n      want %s\n      stderr %s\n",
               argv[0], argv[1] ? argv[1] : "", rc, out, want, err);
        failures++;
    }
    free(out);
    free(err);
}

/* argv that is refused: exit 2, stderr holds want and the hint, no stdout */
static void args_bad(const char *const *argv, const char *want)
{
    char *out, *err;
    int rc = run_args(argv, &out, &err);
    CHECK(rc == 2);
    CHECK(out[0] == '\0');
    CHECK_HAS(err, want);
    /* the hint names the command, if there is one */
    const char *cmds[] = {"train", "eval", "predict"};
    char hint[64] = "try 'lenet --help'";
    for (int i = 0; i < 3; i++)
        if (argv[1] && strcmp(argv[1], cmds[i]) == 0)
            snprintf(hint, sizeof hint, "try 'lenet %s --help'", cmds[i]);
    CHECK_HAS(err, hint);
    free(out);
    free(err);
}

#define ARGV(...) ((const char *const[]){"./build/lenet", __VA_ARGS__, NULL})

static void test_args(void)
{
    args_ok((const char *const[]){"lenet", NULL},
            "steps=100 batch=64 lr=0.01 seed=42 save=- load=- data=- dump=- print_every=10 quiet=0");
    args_ok(ARGV("--steps", "10", "--batch=32", "--lr", "0.001", "--seed=18446744073709551615",
                 "--save", "out.st", "--load=in.st", "--data", "d.st", "--dump", "x.st",
                 "--print-every", "3", "--quiet"),
            "steps=10 batch=32 lr=0.001 seed=18446744073709551615 save=out.st load=in.st "
            "data=d.st dump=x.st print_every=3 quiet=1");
    args_ok(ARGV("--steps=1", "--steps", "0", "--lr=.5", "--seed", "0", "--batch", "1048576",
                 "--save=-"),
            "steps=0 batch=1048576 lr=0.5 seed=0 save=- load=- data=- dump=- print_every=10 "
            "quiet=0");

    /* --help: the model's description, the flags, the defaults; exit 0 */
    const char *const *helps[] = {ARGV("--help"), ARGV("-h"), ARGV("--steps", "7", "--help")};
    for (int i = 0; i < 3; i++) {
        char *out, *err;
        CHECK(run_args(helps[i], &out, &err) == 0);
        CHECK(strncmp(out, doc, strlen(doc)) == 0);
        CHECK_HAS(out, "usage: lenet [options]");
        CHECK_HAS(out, "--batch N");
        CHECK_HAS(out, "(default 64)");
        CHECK_HAS(out, "(default 0.01)");
        CHECK_HAS(out, "(default 42)");
        CHECK_HAS(out, "--print-every N");
        CHECK_HAS(out, "--quiet");
        CHECK_HAS(out, i == 2 ? "(default 7)" : "(default 100)");
        CHECK(err[0] == '\0');
        free(out);
        free(err);
    }

    args_bad(ARGV("--bach", "3"), "lenet: error: unknown option '--bach' (did you mean '--batch'?)");
    args_bad(ARGV("--bach=3"), "unknown option '--bach' (did you mean '--batch'?)");
    args_bad(ARGV("-steps", "3"), "unknown option '-steps' (did you mean '--steps'?)");
    args_bad(ARGV("--rl", "0.1"), "unknown option '--rl' (did you mean '--lr'?)");
    args_bad(ARGV("--print_every", "3"), "(did you mean '--print-every'?)");
    args_bad(ARGV("--learning-rate", "0.1"), "unknown option '--learning-rate'\n");
    args_bad(ARGV("foo"), "lenet: error: unknown command 'foo' (the commands are train, eval and predict");
    args_bad(ARGV("trian"), "lenet: error: unknown command 'trian' (did you mean 'train'?)");
    args_bad(ARGV("-"), "unexpected argument '-'");
    args_bad(ARGV("--batch", "abc"), "lenet: error: --batch expects a positive integer, got 'abc'");
    args_bad(ARGV("--batch", "12x"), "--batch expects a positive integer, got '12x'");
    args_bad(ARGV("--batch", " 5"), "--batch expects a positive integer, got ' 5'");
    args_bad(ARGV("--batch="), "--batch expects a positive integer, got ''");
    args_bad(ARGV("--batch", "0"), "--batch must be between 1 and 1048576, got '0'");
    args_bad(ARGV("--batch", "1048577"), "--batch must be between 1 and 1048576, got '1048577'");
    args_bad(ARGV("--batch", "99999999999999999999999"), "--batch expects a positive integer");
    args_bad(ARGV("--steps"), "--steps expects a value");
    args_bad(ARGV("--steps", "--quiet"), "--steps expects a value");
    args_bad(ARGV("--steps", "-1"), "--steps expects a non-negative integer, got '-1'");
    args_bad(ARGV("--steps", "1.5"), "--steps expects a non-negative integer, got '1.5'");
    args_bad(ARGV("--steps", "99999999999999999999"), "--steps expects a non-negative integer");
    args_bad(ARGV("--lr", "0"), "--lr expects a positive number, got '0'");
    args_bad(ARGV("--lr", "-0.1"), "--lr expects a positive number, got '-0.1'");
    args_bad(ARGV("--lr", "nan"), "--lr expects a positive number, got 'nan'");
    args_bad(ARGV("--lr", "inf"), "--lr expects a positive number, got 'inf'");
    args_bad(ARGV("--lr", "1e-50"), "--lr expects a positive number, got '1e-50'");
    args_bad(ARGV("--lr", "1e40"), "--lr expects a positive number, got '1e40'");
    args_bad(ARGV("--lr", "0.1.2"), "--lr expects a positive number, got '0.1.2'");
    args_bad(ARGV("--lr="), "--lr expects a positive number, got ''");
    args_bad(ARGV("--seed", "-1"), "--seed expects an integer from 0 to 18446744073709551615, got '-1'");
    args_bad(ARGV("--seed", "18446744073709551616"), "got '18446744073709551616'");
    args_bad(ARGV("--seed", "1.5"), "--seed expects an integer");
    args_bad(ARGV("--print-every", "0"), "--print-every expects a positive integer, got '0'");
    args_bad(ARGV("--quiet=1"), "--quiet takes no value");
    args_bad(ARGV("--help=1"), "--help takes no value");
    args_bad(ARGV("--save"), "--save expects a value");
    args_bad(ARGV("--save="), "--save expects a file name");
    args_bad(ARGV("--steps", "5", "extra"), "unexpected argument 'extra'");
    args_bad(ARGV("--", "x"), "unexpected argument 'x'");
    args_ok(ARGV("--"),
            "steps=100 batch=64 lr=0.01 seed=42 save=- load=- data=- dump=- print_every=10 quiet=0");
}

/* The commands: their defaults, their flags, and the flags they refuse. */
static void test_commands(void)
{
    const char *rest = "save=- load=- data=- dump=- print_every=0 quiet=0 | ";
    char want[512];
    snprintf(want, sizeof want, "steps=-1 batch=64 lr=0.01 seed=42 %strain epochs=1 test_data=- "
             "resume=- log=- pad=-1 normalize=- limit=0 test_limit=0 save_every=0 index=-1 inputs=", rest);
    args_ok(ARGV("train"), want);
    args_ok(ARGV("train", "--data", "mnist:data/mnist", "--test-data=csv:t.csv", "--epochs", "3",
                 "--batch", "32", "--lr", "0.05", "--seed", "7", "--steps", "10", "--limit", "1000",
                 "--test-limit", "100", "--pad", "2", "--normalize", "0.1307,0.3081", "--save", "w.st",
                 "--save-every", "50", "--resume", "r.st", "--log", "log.csv", "--print-every", "5",
                 "--quiet"),
            "steps=10 batch=32 lr=0.05 seed=7 save=w.st load=- data=mnist:data/mnist dump=- "
            "print_every=5 quiet=1 | train epochs=3 test_data=csv:t.csv resume=r.st log=log.csv pad=2 "
            "normalize=0.1307,0.3081 limit=1000 test_limit=100 save_every=50 index=-1 inputs=");
    args_ok(ARGV("eval", "--load", "w.st", "--data", "x.csv", "--dump", "o.st", "--pad=0",
                 "--normalize=-1,2.5", "--limit", "5"),
            "steps=-1 batch=64 lr=0.01 seed=42 save=- load=w.st data=x.csv dump=o.st print_every=0 "
            "quiet=0 | eval epochs=1 test_data=- resume=- log=- pad=0 normalize=-1,2.5 limit=5 "
            "test_limit=0 save_every=0 index=-1 inputs=");
    /* predict: files anywhere among the flags, and after -- */
    args_ok(ARGV("predict", "a.pgm", "--load", "w.st", "b.idx", "--index", "3", "--", "--c.pgm"),
            "steps=-1 batch=64 lr=0.01 seed=42 save=- load=w.st data=- dump=- print_every=0 quiet=0 | "
            "predict epochs=1 test_data=- resume=- log=- pad=-1 normalize=- limit=0 test_limit=0 "
            "save_every=0 index=3 inputs=a.pgm,b.idx,--c.pgm");

    /* each command's --help lists its own flags, and only those */
    char *out, *err;
    CHECK(run_args(ARGV("train", "--help"), &out, &err) == 0);
    CHECK_HAS(out, "usage: lenet train --data SPEC [options]");
    CHECK_HAS(out, "--epochs N");
    CHECK_HAS(out, "--resume FILE");
    CHECK_HAS(out, "mnist:DIR");
    CHECK(strstr(out, "--index") == NULL && strstr(out, "--dump") == NULL);
    free(out);
    free(err);
    CHECK(run_args(ARGV("predict", "-h"), &out, &err) == 0);
    CHECK_HAS(out, "usage: lenet predict --load FILE [options] IMAGE...");
    CHECK_HAS(out, "--index N");
    CHECK(strstr(out, "--epochs") == NULL);
    free(out);
    free(err);
    CHECK(run_args(ARGV("--help"), &out, &err) == 0);
    CHECK_HAS(out, "lenet train --data SPEC [options]");
    CHECK_HAS(out, "lenet COMMAND --help");
    CHECK(strstr(out, "--epochs") == NULL);
    free(out);
    free(err);

    args_bad(ARGV("--epochs", "3"), "--epochs goes with the command train (lenet train --epochs ...)");
    args_bad(ARGV("--pad", "2"), "--pad goes with the commands train, eval and predict");
    args_bad(ARGV("eval", "--lr", "0.1"), "--lr is not an option of eval (it is one of train, and of "
             "the tutorial's loop)");
    args_bad(ARGV("predict", "--epochs", "2"), "--epochs is not an option of predict (it is one of train)");
    args_bad(ARGV("--steps", "3", "train"), "unexpected argument 'train' (a command goes first: lenet train ...)");
    args_bad(ARGV("train", "x"), "unexpected argument 'x' (train takes only options)");
    args_bad(ARGV("train", "--epochs", "0"), "--epochs expects a positive integer, got '0'");
    args_bad(ARGV("train", "--limit", "-5"), "--limit expects a positive integer, got '-5'");
    args_bad(ARGV("train", "--save-every", "x"), "--save-every expects a positive integer, got 'x'");
    args_bad(ARGV("train", "--pad", "-1"), "--pad expects an integer from 0 to 4096, got '-1'");
    args_bad(ARGV("train", "--pad", "5000"), "--pad expects an integer from 0 to 4096, got '5000'");
    args_bad(ARGV("predict", "--index", "-1"), "--index expects a non-negative integer, got '-1'");
    const char *bad_norm[] = {"0.5", "0.5,", ",0.5", "0.5,0", "0.5,-1", "a,b", "0.5,1,2", "0.5, 1",
                              "nan,1", "0.5,inf", "1e39,1"};
    for (size_t i = 0; i < sizeof bad_norm / sizeof bad_norm[0]; i++)
        args_bad(ARGV("train", "--normalize", bad_norm[i]), "--normalize expects MEAN,STD");
    args_bad(ARGV("train", "--log="), "--log expects a file name, got ''");
    args_bad(ARGV("train", "--resume"), "--resume expects a value");
    args_bad(ARGV("train", "--epoch", "3"), "unknown option '--epoch' (did you mean '--epochs'?)");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s TMPDIR\n", argv[0]);
        return 2;
    }
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/safetensors.d", argv[1]);
    tmpdir = dir;
    mkdir(argv[1], 0700);
    mkdir(tmpdir, 0700);
    empty_tmpdir();
    run("safetensors round trip, bit for bit, with metadata", test_roundtrip);
    run("safetensors file layout checked by hand", test_layout);
    run("safetensors F64, F16, BF16 converted; other dtypes refused", test_dtypes);
    run("safetensors load refuses a mismatched model, naming every mismatch", test_load_refuses);
    run("safetensors corrupt and truncated files give errors", test_corrupt);
    run("safetensors save is atomic", test_atomic);
    run("util: alloc, max_abs, seconds", test_util);
    run("util: command-line parsing", test_args);
    run("util: commands (train, eval, predict) and their flags", test_commands);
    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    return 0;
}

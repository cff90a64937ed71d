/* safetensors.c — weights in the safetensors format, read and written.
 *
 * A trainer saves and loads its parameters here, and tests exchange tensors
 * with PyTorch through the same files. The format (huggingface/safetensors):
 *
 *   8 bytes    N, the header length, unsigned 64-bit little-endian
 *   N bytes    a JSON object: for each tensor, name -> {"dtype": "F32",
 *              "shape": [...], "data_offsets": [begin, end]}; optionally
 *              "__metadata__" -> {string: string}. Padded with trailing
 *              spaces so that 8 + N is a multiple of 8.
 *   the rest   the data buffer; each tensor's bytes lie at [begin, end) of
 *              it, row-major, little-endian. The tensors fill the buffer
 *              exactly: no gaps, no overlaps, nothing after the last one.
 *
 * Writing: the tensors are written in the order given, contiguous, as F32,
 * or as I64 for an integer tensor (a count: nnrt_tensor.i64).
 * The file appears atomically: it is written to "<path>.tmp.<pid>", flushed
 * to disk (fsync) and renamed over path, so a crash or a full disk never
 * leaves half a checkpoint where the old one was.
 *
 * Reading: the whole file is read into memory and every rule above is
 * checked before anything is used, so a truncated or hostile file gives a
 * message naming the file and the problem, never a crash. Tensors stored as
 * F64, F16 or BF16 are converted to float32 on open (as PyTorch's
 * load_state_dict would copy them into float32 parameters); I64 tensors are
 * read as integers (i64, data NULL: the counts); tensors of other dtypes
 * (other integers, bool, F8) are kept in the listing with data NULL, so a
 * load can say "tensor 'x' has dtype I32, expected F32". The float data is
 * copied out of the file buffer into one 64-byte-aligned block owned by the
 * nnrt_st_file, each tensor starting on a 64-byte boundary.
 *
 * Byte order is handled by assembling each value from its bytes with shifts,
 * so the code is the same on big- and little-endian hosts (compilers turn the
 * little-endian case into plain loads).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "nnrt_host.h"

/* The reference implementation refuses headers above 100 MB; so do we. */
#define ST_MAX_HEADER 100000000u
/* Integers in the header are read as doubles by cJSON: beyond 2^53 they are
 * no longer exact, and no real file comes anywhere near. */
#define ST_MAX_INT 9007199254740992.0 /* 2^53 */

/* ---- dtypes ---- */

typedef struct st_dtype {
    const char *name;   /* as in the header: "F32" */
    int size;           /* bytes per element */
    int to_f32;         /* 1 if we read it into float32 */
} st_dtype;

/* Every dtype the reference implementation knows. Only the first four are
 * read as floats; the rest are listed with data NULL. */
static const st_dtype st_dtypes[] = {
    {"F32", 4, 1},  {"F64", 8, 1},  {"F16", 2, 1},  {"BF16", 2, 1},
    {"BOOL", 1, 0}, {"U8", 1, 0},   {"I8", 1, 0},   {"F8_E5M2", 1, 0},
    {"F8_E4M3", 1, 0}, {"I16", 2, 0}, {"U16", 2, 0}, {"I32", 4, 0},
    {"U32", 4, 0},  {"I64", 8, 0},  {"U64", 8, 0},
};

static const st_dtype *find_dtype(const char *name)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0)
            return &st_dtypes[i];
    return NULL;
}

/* ---- the opened file ---- */

typedef struct st_entry {
    nnrt_tensor t;          /* name, shape; data NULL unless dt->to_f32 */
    const st_dtype *dt;     /* dtype as stored in the file */
    uint64_t begin, end;    /* byte range in the data buffer */
} st_entry;

struct nnrt_st_file {
    char *path;             /* for messages */
    int n;                  /* tensors, in header order */
    st_entry *e;            /* [n] */
    int *by_name;           /* [n] indexes of e sorted by name, for lookups */
    int nmeta;
    char **meta_keys, **meta_vals; /* [nmeta] */
    float *data;            /* one block holding every float tensor */
    int64_t *ints;          /* and one holding every I64 tensor */
};

/* ---- small helpers ---- */

/* printf into err (if there is one); always NUL-terminated */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A growing message in a fixed buffer: items are joined with "; ", and a
 * message that does not fit ends in "...". */
typedef struct msgbuf {
    char *buf;
    size_t cap, len;
    int items;
} msgbuf;

static void msg_vadd(msgbuf *m, const char *fmt, va_list ap)
{
    if (!m->buf || m->cap == 0 || m->len + 1 >= m->cap)
        return;
    int k = vsnprintf(m->buf + m->len, m->cap - m->len, fmt, ap);
    if (k < 0)
        return;
    if ((size_t)k >= m->cap - m->len) { /* truncated: mark it */
        m->len = m->cap - 1;
        if (m->cap > 4)
            memcpy(m->buf + m->cap - 4, "...", 4);
    } else {
        m->len += (size_t)k;
    }
}

static void msg_add(msgbuf *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msg_vadd(m, fmt, ap);
    va_end(ap);
}

enum { MSG_ITEMS = 6 };     /* the items a message lists; the rest it counts */

/* adds one item of a list, after a "; " if it is not the first; after
 * MSG_ITEMS, only counts it (msg_rest says how many more) */
static void msg_item(msgbuf *m, const char *fmt, ...)
{
    if (m->items++ >= MSG_ITEMS)
        return;
    if (m->items > 1)
        msg_add(m, "; ");
    va_list ap;
    va_start(ap, fmt);
    msg_vadd(m, fmt, ap);
    va_end(ap);
}

/* "; and 74 more" when the list was longer than it shows */
static void msg_rest(msgbuf *m)
{
    if (m->items > MSG_ITEMS)
        msg_add(m, "; and %d more", m->items - MSG_ITEMS);
}

/* "[120, 400]" into buf */
static const char *fmt_shape(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (k < len)
        snprintf(buf + k, len - k, "]");
    return buf;
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE half -> float, exactly (subnormals, infinities and NaNs included) */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f)                                    /* inf, NaN */
        return f32_from_bits(sign | 0x7f800000u | man << 13);
    if (exp != 0)                                       /* normal */
        return f32_from_bits(sign | (exp + 112) << 23 | man << 13);
    float v = (float)man * 0x1p-24f;                    /* zero, subnormal */
    return sign ? -v : v;
}

/* double -> float, rounding to nearest; too large becomes +-inf (the plain
 * cast would be undefined behaviour in C) */
static float f64_to_f32(double d)
{
    if (isfinite(d) && fabs(d) >= 0x1.ffffffp127) /* halfway from FLT_MAX to 2^128 */
        return d > 0 ? INFINITY : -INFINITY;
    return (float)d;
}

/* element i of a tensor stored as dt at p, as a float */
static float read_elem(const st_dtype *dt, const unsigned char *p, size_t i)
{
    if (dt->size == 4) /* F32 */
        return f32_from_bits(get_le32(p + 4 * i));
    if (dt->size == 8) { /* F64 */
        uint64_t u = get_le64(p + 8 * i);
        double d;
        memcpy(&d, &u, sizeof d);
        return f64_to_f32(d);
    }
    uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    if (dt->name[0] == 'B') /* BF16: the top half of a float */
        return f32_from_bits((uint32_t)h << 16);
    return f16_to_f32(h);
}

/* Reads all of path into *buf (malloc'd) and *len. Returns 0, or -1 with err. */
static int read_whole_file(const char *path, unsigned char **buf, size_t *len,
                           char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    for (;;) {
        if (!b) {
            set_err(err, errlen, "%s: out of memory reading the file (%zu bytes so far)", path, n);
            fclose(fp);
            return -1;
        }
        n += fread(b + n, 1, cap - n, fp);
        if (n < cap)
            break;
        unsigned char *nb = cap <= SIZE_MAX / 2 ? realloc(b, cap * 2) : NULL;
        if (!nb)
            free(b);
        b = nb;
        cap *= 2;
    }
    if (ferror(fp)) {
        set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        free(b);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    *buf = b;
    *len = n;
    return 0;
}

/* ---- reading the header ---- */

/* *out = j as a whole number in [0, 2^53]; returns 0, or -1 if j is not one */
static int json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return -1;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != floor(d))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

/* Fills e from the header entry j named name (shape, dtype, offsets, and
 * their consistency with each other and with the data length). Returns 0, or
 * -1 with a message naming the file and tensor. */
static int parse_entry(st_entry *e, const cJSON *j, const char *path, uint64_t datalen,
                       char *err, size_t errlen)
{
    const char *name = e->t.name;
    if (!cJSON_IsObject(j)) {
        set_err(err, errlen, "%s: header entry for tensor '%s' is not an object", path, name);
        return -1;
    }
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!jd || !js || !jo) {
        set_err(err, errlen, "%s: tensor '%s' has no \"%s\" in the header", path, name,
                !jd ? "dtype" : !js ? "shape" : "data_offsets");
        return -1;
    }
    /* dtype */
    if (!cJSON_IsString(jd)) {
        set_err(err, errlen, "%s: tensor '%s': \"dtype\" is not a string", path, name);
        return -1;
    }
    e->dt = find_dtype(jd->valuestring);
    if (!e->dt) {
        set_err(err, errlen, "%s: tensor '%s' has unknown dtype '%.32s'", path, name,
                jd->valuestring);
        return -1;
    }
    /* shape */
    if (!cJSON_IsArray(js)) {
        set_err(err, errlen, "%s: tensor '%s': \"shape\" is not an array", path, name);
        return -1;
    }
    int ndim = cJSON_GetArraySize(js);
    if (ndim > NNRT_MAX_DIMS) {
        set_err(err, errlen, "%s: tensor '%s' has %d dimensions, nnrt supports at most %d",
                path, name, ndim, NNRT_MAX_DIMS);
        return -1;
    }
    e->t.ndim = ndim;
    int i = 0, zero = 0;
    for (const cJSON *d = js->child; d; d = d->next, i++) {
        uint64_t v;
        if (json_uint(d, &v) < 0) {
            set_err(err, errlen, "%s: tensor '%s': dimension %d of \"shape\" is not a "
                    "non-negative integer", path, name, i);
            return -1;
        }
        e->t.shape[i] = (int64_t)v;
        zero |= v == 0;
    }
    /* bytes = prod(shape) * dtype size, refusing anything near overflow
     * (a product that large could never match the offsets anyway) */
    uint64_t bytes = (uint64_t)e->dt->size;
    for (i = 0; i < ndim && !zero; i++) {
        uint64_t v = (uint64_t)e->t.shape[i];
        if (bytes > ((uint64_t)1 << 62) / v) {
            char s[256];
            set_err(err, errlen, "%s: tensor '%s' has shape %s: too many elements", path,
                    name, fmt_shape(s, sizeof s, ndim, e->t.shape));
            return -1;
        }
        bytes *= v;
    }
    if (zero)
        bytes = 0;
    /* data_offsets */
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 ||
        json_uint(jo->child, &e->begin) < 0 || json_uint(jo->child->next, &e->end) < 0) {
        set_err(err, errlen, "%s: tensor '%s': \"data_offsets\" is not a pair of "
                "non-negative integers [begin, end]", path, name);
        return -1;
    }
    if (e->begin > e->end) {
        set_err(err, errlen, "%s: tensor '%s' has data_offsets [%" PRIu64 ", %" PRIu64
                "]: begin is after end", path, name, e->begin, e->end);
        return -1;
    }
    if (e->end > datalen) {
        set_err(err, errlen, "%s: tensor '%s' has data_offsets [%" PRIu64 ", %" PRIu64
                "] beyond the end of the data (%" PRIu64 " bytes); is the file truncated?",
                path, name, e->begin, e->end, datalen);
        return -1;
    }
    if (e->end - e->begin != bytes) {
        char s[256];
        set_err(err, errlen, "%s: tensor '%s' has data_offsets [%" PRIu64 ", %" PRIu64
                "] (%" PRIu64 " bytes), but shape %s of %s needs %" PRIu64 " bytes",
                path, name, e->begin, e->end, e->end - e->begin,
                fmt_shape(s, sizeof s, ndim, e->t.shape), e->dt->name, bytes);
        return -1;
    }
    return 0;
}

/* Stores the "__metadata__" object j (string -> string) in f. */
static int parse_metadata(nnrt_st_file *f, const cJSON *j, char *err, size_t errlen)
{
    if (!cJSON_IsObject(j)) {
        set_err(err, errlen, "%s: \"__metadata__\" is not an object", f->path);
        return -1;
    }
    int n = cJSON_GetArraySize(j);
    f->meta_keys = calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_vals = calloc((size_t)n + 1, sizeof *f->meta_vals);
    if (!f->meta_keys || !f->meta_vals) {
        set_err(err, errlen, "%s: out of memory reading the metadata", f->path);
        return -1;
    }
    for (const cJSON *m = j->child; m; m = m->next) {
        if (!cJSON_IsString(m)) {
            set_err(err, errlen, "%s: metadata value for '%.64s' is not a string", f->path,
                    m->string);
            return -1;
        }
        f->meta_keys[f->nmeta] = strdup(m->string);
        f->meta_vals[f->nmeta] = strdup(m->valuestring);
        f->nmeta++;
        if (!f->meta_keys[f->nmeta - 1] || !f->meta_vals[f->nmeta - 1]) {
            set_err(err, errlen, "%s: out of memory reading the metadata", f->path);
            return -1;
        }
    }
    return 0;
}

/* qsort helpers: one sorts (begin, end, index) triples, the other names */
typedef struct st_span { uint64_t begin, end; int i; } st_span;

static int cmp_span(const void *a, const void *b)
{
    const st_span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

typedef struct st_named { const char *name; int i; } st_named;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const st_named *)a)->name, ((const st_named *)b)->name);
}

/* The tensors must tile the data buffer: sorted by offset, each starts where
 * the previous one ended, the first at 0, the last at datalen. */
static int check_layout(const nnrt_st_file *f, uint64_t datalen, char *err, size_t errlen)
{
    st_span *s = malloc(((size_t)f->n + 1) * sizeof *s);
    if (!s) {
        set_err(err, errlen, "%s: out of memory checking the header", f->path);
        return -1;
    }
    for (int i = 0; i < f->n; i++)
        s[i] = (st_span){f->e[i].begin, f->e[i].end, i};
    qsort(s, (size_t)f->n, sizeof *s, cmp_span);
    uint64_t at = 0;
    int prev = -1, rc = 0;
    for (int k = 0; k < f->n && rc == 0; k++) {
        const char *name = f->e[s[k].i].t.name;
        if (s[k].begin < at) {
            set_err(err, errlen, "%s: tensors '%s' and '%s' overlap in the data", f->path,
                    f->e[prev].t.name, name);
            rc = -1;
        } else if (s[k].begin > at) {
            set_err(err, errlen, "%s: %" PRIu64 " bytes of data before tensor '%s' belong "
                    "to no tensor", f->path, s[k].begin - at, name);
            rc = -1;
        }
        at = s[k].end;
        prev = s[k].i;
    }
    if (rc == 0 && at != datalen) {
        set_err(err, errlen, "%s: the data is %" PRIu64 " bytes but the tensors cover only %"
                PRIu64 "; the header does not describe this file", f->path, datalen, at);
        rc = -1;
    }
    free(s);
    return rc;
}

/* Fills f->by_name and refuses a name given twice (cJSON keeps duplicates). */
static int index_names(nnrt_st_file *f, char *err, size_t errlen)
{
    st_named *s = malloc(((size_t)f->n + 1) * sizeof *s);
    f->by_name = malloc(((size_t)f->n + 1) * sizeof *f->by_name);
    if (!s || !f->by_name) {
        set_err(err, errlen, "%s: out of memory indexing the header", f->path);
        free(s);
        return -1;
    }
    for (int i = 0; i < f->n; i++)
        s[i] = (st_named){f->e[i].t.name, i};
    qsort(s, (size_t)f->n, sizeof *s, cmp_name);
    int rc = 0;
    for (int k = 0; k < f->n; k++) {
        f->by_name[k] = s[k].i;
        if (k > 0 && strcmp(s[k - 1].name, s[k].name) == 0 && rc == 0) {
            set_err(err, errlen, "%s: tensor '%s' appears twice in the header", f->path,
                    s[k].name);
            rc = -1;
        }
    }
    free(s);
    return rc;
}

/* Copies every float-convertible tensor out of the data buffer into f->data,
 * each tensor 64-byte aligned, and every I64 tensor into f->ints. */
static int copy_data(nnrt_st_file *f, const unsigned char *data, char *err, size_t errlen)
{
    size_t total = 16, ints = 1; /* floats (16 = 64 bytes), integers */
    for (int i = 0; i < f->n; i++)
        if (f->e[i].dt->to_f32)
            total += (nnrt_tensor_numel(&f->e[i].t) + 15) / 16 * 16;
        else if (!strcmp(f->e[i].dt->name, "I64"))
            ints += nnrt_tensor_numel(&f->e[i].t);
    f->ints = malloc(ints * sizeof *f->ints);
    if (!f->ints) {
        set_err(err, errlen, "%s: out of memory for the tensors", f->path);
        return -1;
    }
    size_t ati = 0;
    for (int i = 0; i < f->n; i++) {
        st_entry *e = &f->e[i];
        if (e->dt->to_f32 || strcmp(e->dt->name, "I64"))
            continue;
        size_t numel = nnrt_tensor_numel(&e->t);
        e->t.i64 = f->ints + ati;
        for (size_t k = 0; k < numel; k++) {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--)
                u = u << 8 | data[e->begin + 8 * k + (size_t)b];
            memcpy(&e->t.i64[k], &u, 8);
        }
        ati += numel;
    }
    f->data = aligned_alloc(64, total * sizeof(float));
    if (!f->data) {
        set_err(err, errlen, "%s: out of memory for the tensors (%zu bytes)", f->path,
                total * sizeof(float));
        return -1;
    }
    size_t at = 0;
    for (int i = 0; i < f->n; i++) {
        st_entry *e = &f->e[i];
        if (!e->dt->to_f32)
            continue;
        size_t numel = nnrt_tensor_numel(&e->t);
        e->t.data = f->data + at;
        for (size_t k = 0; k < numel; k++)
            e->t.data[k] = read_elem(e->dt, data + e->begin, k);
        at += (numel + 15) / 16 * 16;
    }
    return 0;
}

/* Parses the header hdr[0..hlen) into f; datalen is the size of the data
 * buffer that follows it. */
static int parse_header(nnrt_st_file *f, const char *hdr, size_t hlen, uint64_t datalen,
                        char *err, size_t errlen)
{
    if (memchr(hdr, '\0', hlen)) {
        set_err(err, errlen, "%s: the header contains a NUL byte; not a safetensors file",
                f->path);
        return -1;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= hdr && end <= hdr + hlen ? (size_t)(end - hdr) : 0;
        set_err(err, errlen, "%s: the header is not valid JSON (error at byte %zu of the "
                "file); not a safetensors file, or a corrupted one", f->path, 8 + at);
        return -1;
    }
    int rc = -1;
    for (const char *p = end; p < hdr + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            set_err(err, errlen, "%s: the header has extra text after its JSON object "
                    "(at byte %zu of the file)", f->path, (size_t)(8 + (p - hdr)));
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        set_err(err, errlen, "%s: the header is not a JSON object", f->path);
        goto out;
    }
    int n = 0, nmeta = 0;
    for (const cJSON *j = root->child; j; j = j->next) {
        if (strcmp(j->string, "__metadata__") == 0)
            nmeta++;
        else
            n++;
    }
    if (nmeta > 1) {
        set_err(err, errlen, "%s: \"__metadata__\" appears twice in the header", f->path);
        goto out;
    }
    f->e = calloc((size_t)n + 1, sizeof *f->e);
    if (!f->e) {
        set_err(err, errlen, "%s: out of memory reading the header (%d tensors)", f->path, n);
        goto out;
    }
    for (const cJSON *j = root->child; j; j = j->next) {
        if (strcmp(j->string, "__metadata__") == 0) {
            if (parse_metadata(f, j, err, errlen) < 0)
                goto out;
            continue;
        }
        st_entry *e = &f->e[f->n];
        e->t.name = strdup(j->string);
        if (!e->t.name) {
            set_err(err, errlen, "%s: out of memory reading the header", f->path);
            goto out;
        }
        f->n++;
        if (parse_entry(e, j, f->path, datalen, err, errlen) < 0)
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

nnrt_st_file *nnrt_st_open(const char *path, char *err, size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    if (read_whole_file(path, &buf, &len, err, errlen) < 0)
        return NULL;
    nnrt_st_file *f = calloc(1, sizeof *f);
    char *hdr = NULL;
    if (!f || !(f->path = strdup(path))) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (len < 8) {
        set_err(err, errlen, "%s: not a safetensors file: only %zu bytes long, the header "
                "length alone takes 8", path, len);
        goto fail;
    }
    uint64_t hlen = get_le64(buf);
    if (hlen > len - 8) {
        set_err(err, errlen, "%s: header length %" PRIu64 " is larger than the rest of the "
                "file (%zu bytes); the file is truncated or not safetensors", path, hlen,
                len - 8);
        goto fail;
    }
    if (hlen > ST_MAX_HEADER) {
        set_err(err, errlen, "%s: header length %" PRIu64 " is absurd (the limit is %u "
                "bytes); not a safetensors file", path, hlen, ST_MAX_HEADER);
        goto fail;
    }
    if (hlen == 0) {
        set_err(err, errlen, "%s: the header is empty; not a safetensors file", path);
        goto fail;
    }
    hdr = malloc((size_t)hlen + 1); /* a NUL-terminated copy, to be safe with cJSON */
    if (!hdr) {
        set_err(err, errlen, "%s: out of memory reading the header", path);
        goto fail;
    }
    memcpy(hdr, buf + 8, (size_t)hlen);
    hdr[hlen] = '\0';
    uint64_t datalen = len - 8 - hlen;
    if (parse_header(f, hdr, (size_t)hlen, datalen, err, errlen) < 0 ||
        check_layout(f, datalen, err, errlen) < 0 || index_names(f, err, errlen) < 0 ||
        copy_data(f, buf + 8 + hlen, err, errlen) < 0)
        goto fail;
    free(hdr);
    free(buf);
    return f;
fail:
    free(hdr);
    free(buf);
    nnrt_st_close(f);
    return NULL;
}

/* the entry called name, or NULL */
static const st_entry *find_entry(const nnrt_st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const st_entry *e = &f->e[f->by_name[mid]];
        int c = strcmp(name, e->t.name);
        if (c == 0)
            return e;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const nnrt_tensor *nnrt_st_get(const nnrt_st_file *f, const char *name)
{
    const st_entry *e = find_entry(f, name);
    return e && e->t.data ? &e->t : NULL;
}

int nnrt_st_count(const nnrt_st_file *f)
{
    return f->n;
}

const nnrt_tensor *nnrt_st_at(const nnrt_st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->e[i].t : NULL;
}

const char *nnrt_st_meta(const nnrt_st_file *f, const char *key)
{
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_vals[i];
    return NULL;
}

void nnrt_st_close(nnrt_st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        free((char *)f->e[i].t.name);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->e);
    free(f->by_name);
    free(f->data);
    free(f->ints);
    free(f->path);
    free(f);
}

/* ---- loading into a model ---- */

/* loads t[n] from path; model, when known: the model loading it, named in
 * the message if the file is another model's checkpoint */
static int load_tensors(const char *path, const char *model, const nnrt_tensor *t, int n, char *err,
                        size_t errlen)
{
    nnrt_st_file *f = nnrt_st_open(path, err, errlen);
    if (!f)
        return -1;
    msgbuf m = {err, errlen, 0, 0};
    if (err && errlen)
        err[0] = '\0';
    const char *theirs = nnrt_st_meta(f, "model");
    if (model && theirs && strcmp(model, theirs) != 0)
        msg_add(&m, "%s is a checkpoint of the model `%.64s`, not of `%s`: ", path, theirs, model);
    else
        msg_add(&m, "%s: ", path);
    char s1[256], s2[256];
    for (int i = 0; i < n; i++) {
        const st_entry *e = find_entry(f, t[i].name);
        if (!e && t[i].i64)
            continue;       /* a count the file lacks (a state_dict without num_batches_tracked): kept */
        if (!e)
            msg_item(&m, "missing tensor '%s'", t[i].name);
        else if (t[i].i64 ? !e->t.i64 && !e->dt->to_f32 : !e->dt->to_f32)
            msg_item(&m, "tensor '%s' has dtype %s, expected %s", t[i].name, e->dt->name, t[i].i64 ? "I64" : "F32");
        else if (e->t.ndim != t[i].ndim ||
                 memcmp(e->t.shape, t[i].shape, (size_t)t[i].ndim * sizeof t[i].shape[0]))
            msg_item(&m, "tensor '%s' has shape %s, the model expects %s", t[i].name,
                     fmt_shape(s1, sizeof s1, e->t.ndim, e->t.shape),
                     fmt_shape(s2, sizeof s2, t[i].ndim, t[i].shape));
    }
    /* a tensor the model lacks: most likely a checkpoint of another model */
    for (int k = 0; k < f->n; k++) {
        const char *name = f->e[k].t.name;
        int i = 0;
        while (i < n && strcmp(t[i].name, name) != 0)
            i++;
        if (i == n)
            msg_item(&m, "unexpected tensor '%s'", name);
    }
    msg_rest(&m);
    if (m.items > 0) {
        nnrt_st_close(f);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const st_entry *e = find_entry(f, t[i].name);
        size_t numel = nnrt_tensor_numel(&t[i]);
        if (!e)
            continue;
        if (t[i].i64 && e->t.i64)
            memcpy(t[i].i64, e->t.i64, numel * sizeof(int64_t));
        else if (t[i].i64)     /* a count saved as floats (an older checkpoint) */
            for (size_t k = 0; k < numel; k++)
                t[i].i64[k] = (int64_t)llround((double)e->t.data[k]);
        else if (numel > 0) /* an empty tensor may have data NULL */
            memcpy(t[i].data, e->t.data, numel * sizeof(float));
    }
    if (err && errlen)
        err[0] = '\0';
    nnrt_st_close(f);
    return 0;
}

int nnrt_load_safetensors(const char *path, const nnrt_tensor *t, int n, char *err, size_t errlen)
{
    return load_tensors(path, NULL, t, n, err, errlen);
}

int nnrt_load_checkpoint(const char *path, const char *model, const nnrt_tensor *t, int n,
                         const nnrt_tensor *state, int nstate, int need_state, char *err, size_t errlen)
{
    int with_state = need_state && nstate > 0;
    if (nstate > 0 && !with_state) {
        nnrt_st_file *f = nnrt_st_open(path, err, errlen);
        if (!f)
            return -1;
        for (int i = 0; i < nstate && !with_state; i++)
            with_state = find_entry(f, state[i].name) != NULL;
        nnrt_st_close(f);
    }
    if (!with_state)
        return load_tensors(path, model, t, n, err, errlen);
    nnrt_tensor *all = malloc(sizeof *all * (size_t)(n + nstate));
    if (!all) {
        set_err(err, errlen, "%s: not loaded: out of memory", path);
        return -1;
    }
    memcpy(all, t, sizeof *all * (size_t)n);
    memcpy(all + n, state, sizeof *all * (size_t)nstate);
    int rc = load_tensors(path, model, all, n + nstate, err, errlen);
    free(all);
    return rc;
}

/* ---- writing ---- */

/* Checks the caller's tensors: names present, unique, not reserved; shapes
 * sane; data present. Returns 0, or -1 with err. */
static int check_tensors(const char *path, const nnrt_tensor *t, int n, char *err,
                         size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0]) {
            set_err(err, errlen, "%s: not saved: tensor %d has no name", path, i);
            return -1;
        }
        if (strcmp(t[i].name, "__metadata__") == 0) {
            set_err(err, errlen, "%s: not saved: '__metadata__' is reserved, not a tensor "
                    "name", path);
            return -1;
        }
        for (int k = 0; k < i; k++)
            if (strcmp(t[k].name, t[i].name) == 0) {
                set_err(err, errlen, "%s: not saved: tensor '%s' given twice", path, t[i].name);
                return -1;
            }
        if (t[i].ndim < 0 || t[i].ndim > NNRT_MAX_DIMS) {
            set_err(err, errlen, "%s: not saved: tensor '%s' has %d dimensions", path,
                    t[i].name, t[i].ndim);
            return -1;
        }
        for (int d = 0; d < t[i].ndim; d++)
            if (t[i].shape[d] < 0 || (double)t[i].shape[d] > ST_MAX_INT) {
                set_err(err, errlen, "%s: not saved: tensor '%s' has dimension %" PRId64,
                        path, t[i].name, t[i].shape[d]);
                return -1;
            }
        if (!t[i].data && !t[i].i64 && nnrt_tensor_numel(&t[i]) > 0) {
            set_err(err, errlen, "%s: not saved: tensor '%s' has no data", path, t[i].name);
            return -1;
        }
    }
    return 0;
}

/* appends v to the JSON array a, written exactly (cJSON would print a large
 * double as 1e+15); returns 0 when out of memory */
static int add_int(cJSON *a, uint64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRIu64, v);
    cJSON *j = cJSON_CreateRaw(s);
    if (!j)
        return 0;
    return cJSON_AddItemToArray(a, j);
}

/* The header JSON, padded with spaces so that 8 + its length is a multiple of
 * 8; malloc'd, or NULL when out of memory. *hlen gets the padded length. */
static char *build_header(const nnrt_tensor *t, int n, const char *const *meta_keys,
                          const char *const *meta_vals, int nmeta, size_t *hlen)
{
    cJSON *root = cJSON_CreateObject(), *meta = NULL;
    int ok = root != NULL;
    if (ok && nmeta > 0) {
        ok = (meta = cJSON_AddObjectToObject(root, "__metadata__")) != NULL;
        for (int i = 0; ok && i < nmeta; i++)
            ok = cJSON_AddStringToObject(meta, meta_keys[i], meta_vals[i]) != NULL;
    }
    uint64_t at = 0; /* data offset of tensor i */
    for (int i = 0; ok && i < n; i++) {
        uint64_t end = at + (t[i].i64 ? 8 : 4) * (uint64_t)nnrt_tensor_numel(&t[i]);
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        ok = e && cJSON_AddStringToObject(e, "dtype", t[i].i64 ? "I64" : "F32");
        cJSON *shape = ok ? cJSON_AddArrayToObject(e, "shape") : NULL;
        cJSON *offs = shape ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
        ok = offs != NULL;
        for (int d = 0; ok && d < t[i].ndim; d++)
            ok = add_int(shape, (uint64_t)t[i].shape[d]);
        ok = ok && add_int(offs, at) && add_int(offs, end);
        at = end;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        return NULL;
    size_t len = strlen(json), padded = (8 + len + 7) / 8 * 8 - 8;
    char *hdr = malloc(padded + 1);
    if (hdr) {
        memcpy(hdr, json, len);
        memset(hdr + len, ' ', padded - len);
        hdr[padded] = '\0';
        *hlen = padded;
    }
    free(json);
    return hdr;
}

/* Writes header and data to fp; returns 0, or -1 with errno set. */
static int write_contents(FILE *fp, const char *hdr, size_t hlen, const nnrt_tensor *t, int n)
{
    unsigned char len8[8], buf[4096];
    put_le64(len8, hlen);
    if (fwrite(len8, 1, 8, fp) != 8 || fwrite(hdr, 1, hlen, fp) != hlen)
        return -1;
    for (int i = 0; i < n; i++) {
        size_t numel = nnrt_tensor_numel(&t[i]), k = 0;
        for (; t[i].i64 && k < numel; k++) {     /* I64, little-endian */
            uint64_t u;
            memcpy(&u, &t[i].i64[k], 8);
            for (int b = 0; b < 8; b++)
                buf[b] = (unsigned char)(u >> (8 * b));
            if (fwrite(buf, 1, 8, fp) != 8)
                return -1;
        }
        while (k < numel) {
            size_t chunk = 0;
            for (; chunk < sizeof buf / 4 && k < numel; chunk++, k++) {
                uint32_t u;
                memcpy(&u, &t[i].data[k], 4);
                for (int b = 0; b < 4; b++)
                    buf[4 * chunk + b] = (unsigned char)(u >> (8 * b));
            }
            if (fwrite(buf, 4, chunk, fp) != chunk)
                return -1;
        }
    }
    return 0;
}

/* fsync the directory holding path, so the rename itself is on disk; best
 * effort (some file systems refuse to fsync a directory) */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int nnrt_save_safetensors(const char *path, const nnrt_tensor *t, int n,
                          const char *const *meta_keys, const char *const *meta_vals,
                          int nmeta, char *err, size_t errlen)
{
    if (n < 0 || nmeta < 0 || (n > 0 && !t) || (nmeta > 0 && (!meta_keys || !meta_vals))) {
        set_err(err, errlen, "%s: not saved: bad arguments", path);
        return -1;
    }
    for (int i = 0; i < nmeta; i++)
        if (!meta_keys[i] || !meta_vals[i]) {
            set_err(err, errlen, "%s: not saved: metadata entry %d is NULL", path, i);
            return -1;
        }
    if (check_tensors(path, t, n, err, errlen) < 0)
        return -1;
    size_t hlen = 0;
    char *hdr = build_header(t, n, meta_keys, meta_vals, nmeta, &hlen);
    size_t tmplen = strlen(path) + 32;
    char *tmp = malloc(tmplen);
    if (!hdr || !tmp) {
        set_err(err, errlen, "%s: not saved: out of memory", path);
        free(hdr);
        free(tmp);
        return -1;
    }
    snprintf(tmp, tmplen, "%s.tmp.%ld", path, (long)getpid());

    int rc = -1;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        set_err(err, errlen, "%s: not saved: cannot create the temporary file %s: %s", path,
                tmp, strerror(errno));
        goto out;
    }
    const char *failed = NULL;
    if (write_contents(fp, hdr, hlen, t, n) < 0)
        failed = "write";
    else if (fflush(fp) != 0)
        failed = "write";
    else if (fsync(fileno(fp)) != 0)
        failed = "fsync";
    if (failed) {
        int e = errno;
        set_err(err, errlen, "%s: not saved: cannot %s %s: %s", path, failed, tmp, strerror(e));
        fclose(fp);
        remove(tmp);
        goto out;
    }
    if (fclose(fp) != 0) {
        int e = errno;
        set_err(err, errlen, "%s: not saved: cannot close %s: %s", path, tmp, strerror(e));
        remove(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        set_err(err, errlen, "%s: not saved: cannot rename %s over it: %s", path, tmp,
                strerror(e));
        remove(tmp);
        goto out;
    }
    sync_dir(path);
    rc = 0;
out:
    free(hdr);
    free(tmp);
    return rc;
}

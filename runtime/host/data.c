/* data.c — data sets for the trainer, and the batches made from them.
 *
 * A trainer reads its samples from one of:
 *   - IDX files, MNIST's format (an image file [N, H, W] and a label file
 *     [N]), plain or gzip-compressed: zlib reads both alike;
 *   - CSV, one sample a row: the features, then the label (or the targets);
 *   - safetensors, "input" [N, ...] and "target" [N] (labels) or [N, ...];
 *   - PGM images (P5 binary or P2 text), one sample each, for predictions.
 * A data set is read whole, once, and checked entirely before training, so
 * a bad file stops the run at once with a message naming the file and what
 * is wrong, never later and never with a crash.
 *
 * Samples stay in the type they were stored in: bytes stay bytes (MNIST's
 * 60,000 training images take 47 MB, not 188). They become the model's
 * input batch by batch (nnrt_data_batch), in buffers the trainer allocated
 * once, so nothing is allocated while training. On the way a sample goes
 * through the transform, as torchvision's Pad, ToTensor and Normalize:
 *   1. zero-padding: pad pixels of value 0 on each side of H and W;
 *   2. scaling: bytes are divided by 255 (to [0, 1]); other values are kept;
 *   3. normalisation: (x - mean) / std.
 * A padded pixel is therefore (0 - mean) / std: the background, as LeNet-5
 * padded MNIST's 28x28 digits to 32x32.
 *
 * Every function that can fail returns 0, or -1 with a message in err that
 * starts with the file's name.
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
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "nnrt_host.h"

/* Labels are whole numbers below this: a target holds one as a float, exactly. */
#define DATA_MAX_LABEL 16777216.0 /* 2^24 */

/* A file's decompressed size that we refuse beyond (a sanity bound that
 * also keeps every size computation far from overflow): 16 GiB. */
#define DATA_MAX_BYTES ((uint64_t)1 << 34)

/* ---- small helpers ---- */

/* printf into err; always NUL-terminated */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* "[60000, 28, 28]" into buf */
static const char *shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (k < len)
        snprintf(buf + k, len - k, "]");
    return buf;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- reading files, plain or gzip ---- */

/* Opens path for reading through zlib, which passes a plain file through
 * and decompresses a gzip one. NULL with a message if it cannot. */
static gzFile open_gz(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "%s: cannot read: it is a directory", path);
        close(fd);
        return NULL;
    }
    gzFile g = gzdopen(fd, "rb");
    if (!g) {
        set_err(err, errlen, "%s: cannot open: out of memory", path);
        close(fd);
        return NULL;
    }
    gzbuffer(g, 1 << 17);
    return g;
}

/* Reads up to len bytes into buf; *got is how many came (fewer at the end
 * of the file). Returns 0, or -1 with a message on a read error or a
 * damaged gzip stream (a gzip file cut short is reported here). */
static int read_gz(gzFile g, void *buf, size_t len, size_t *got, const char *path, char *err,
                   size_t errlen)
{
    size_t n = 0;
    while (n < len) {
        unsigned chunk = len - n > (1u << 30) ? (1u << 30) : (unsigned)(len - n);
        int k = gzread(g, (char *)buf + n, chunk);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    *got = n;
    int code;
    const char *msg = gzerror(g, &code);
    if (code == Z_OK || code == Z_STREAM_END)
        return 0;
    if (code == Z_ERRNO)
        set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    else if (code == Z_BUF_ERROR)
        set_err(err, errlen, "%s: the gzip data is cut short (the file is truncated)", path);
    else
        set_err(err, errlen, "%s: the gzip data is damaged: %s", path, msg);
    return -1;
}

/* The whole (decompressed) content of path, malloc'd, with a NUL after it. */
static int read_all(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    gzFile g = open_gz(path, err, errlen);
    if (!g)
        return -1;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    int rc = -1;
    for (;;) {
        if (!b) {
            set_err(err, errlen, "%s: out of memory reading the file", path);
            break;
        }
        size_t got;
        if (read_gz(g, b + n, cap - 1 - n, &got, path, err, errlen) < 0)
            break;
        n += got;
        if (n < cap - 1) {
            b[n] = '\0';
            *out = b;
            *len = n;
            b = NULL;
            rc = 0;
            break;
        }
        if (cap >= DATA_MAX_BYTES) {
            set_err(err, errlen, "%s: larger than %" PRIu64 " bytes", path, DATA_MAX_BYTES);
            break;
        }
        char *nb = realloc(b, cap * 2);
        if (!nb)
            free(b);
        b = nb;
        cap *= 2;
    }
    free(b);
    gzclose(g);
    return rc;
}

int nnrt_data_read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    return read_all(path, out, len, err, errlen);
}

/* ---- IDX ---- */

/* An IDX file: 2 zero bytes, a type code, the number of dimensions; each
 * dimension as a 32-bit big-endian integer; the data, big-endian. */
typedef struct idx_file {
    int type;                       /* 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double */
    int ndim;
    int64_t shape[NNRT_MAX_DIMS];
    size_t count;                   /* prod(shape) */
    unsigned char *u8;              /* type 0x08: the bytes */
    float *f32;                     /* the other types, converted to float */
} idx_file;

static int idx_elem_size(int type)
{
    switch (type) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

/* element i of big-endian IDX data of the given type, as a float */
static float idx_elem(int type, const unsigned char *p, size_t i)
{
    uint64_t u = 0;
    int size = idx_elem_size(type);
    for (int k = 0; k < size; k++)
        u = u << 8 | p[(size_t)size * i + (size_t)k];
    switch (type) {
    case 0x09: return (float)(int8_t)(uint8_t)u;
    case 0x0B: return (float)(int16_t)(uint16_t)u;
    case 0x0C: return (float)(int32_t)(uint32_t)u;
    case 0x0D: { uint32_t v = (uint32_t)u; float f; memcpy(&f, &v, 4); return f; }
    case 0x0E: {
        double d;
        memcpy(&d, &u, 8);
        if (isfinite(d) && fabs(d) > 3.4e38) /* out of float's range: the cast would be UB */
            return d > 0 ? INFINITY : -INFINITY;
        return (float)d;
    }
    default: return (float)u;
    }
}

/* Reads the IDX file at path (plain or gzip) into x. */
static int idx_read(idx_file *x, const char *path, char *err, size_t errlen)
{
    memset(x, 0, sizeof *x);
    gzFile g = open_gz(path, err, errlen);
    if (!g)
        return -1;
    int rc = -1;
    unsigned char magic[4], dims[4 * NNRT_MAX_DIMS], extra;
    unsigned char *raw = NULL;
    size_t got;
    if (read_gz(g, magic, 4, &got, path, err, errlen) < 0)
        goto out;
    if (got < 4 || magic[0] != 0 || magic[1] != 0 || !idx_elem_size(magic[2]) || magic[3] == 0) {
        char seen[32] = "nothing";
        if (got > 0) {
            size_t k = 0;
            for (size_t i = 0; i < got; i++)
                k += (size_t)snprintf(seen + k, sizeof seen - k, "%s%02x", i ? " " : "", magic[i]);
        }
        set_err(err, errlen, "%s: not an IDX file: it starts with %s, an IDX file with 00 00, a type "
                "(08 for bytes) and the number of dimensions", path, seen);
        goto out;
    }
    x->type = magic[2];
    x->ndim = magic[3];
    if (x->ndim > NNRT_MAX_DIMS) {
        set_err(err, errlen, "%s: the IDX header declares %d dimensions, nnrt supports at most %d",
                path, x->ndim, NNRT_MAX_DIMS);
        goto out;
    }
    if (read_gz(g, dims, 4 * (size_t)x->ndim, &got, path, err, errlen) < 0)
        goto out;
    if (got < 4 * (size_t)x->ndim) {
        set_err(err, errlen, "%s: truncated: the file ends inside its IDX header", path);
        goto out;
    }
    for (int d = 0; d < x->ndim; d++) {
        const unsigned char *p = dims + 4 * d;
        x->shape[d] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    }
    uint64_t count = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (x->shape[d] > 0 && count > DATA_MAX_BYTES / (uint64_t)x->shape[d]) {
            char s[128];
            set_err(err, errlen, "%s: the IDX header declares shape %s: too large", path,
                    shape_str(s, sizeof s, x->ndim, x->shape));
            goto out;
        }
        count *= (uint64_t)x->shape[d];
    }
    if (count == 0) {
        char s[128];
        set_err(err, errlen, "%s: the IDX header declares shape %s: no data", path,
                shape_str(s, sizeof s, x->ndim, x->shape));
        goto out;
    }
    x->count = (size_t)count;
    size_t bytes = x->count * (size_t)idx_elem_size(x->type);
    raw = malloc(bytes);
    if (!raw) {
        set_err(err, errlen, "%s: out of memory (%zu bytes of data)", path, bytes);
        goto out;
    }
    if (read_gz(g, raw, bytes, &got, path, err, errlen) < 0)
        goto out;
    if (got < bytes) {
        char s[128];
        set_err(err, errlen, "%s: truncated: the header declares %s, %zu bytes of data, but the file "
                "holds %zu", path, shape_str(s, sizeof s, x->ndim, x->shape), bytes, got);
        goto out;
    }
    if (read_gz(g, &extra, 1, &got, path, err, errlen) < 0)
        goto out;
    if (got > 0) {
        char s[128];
        set_err(err, errlen, "%s: more data than the header declares (%s, %zu bytes)", path,
                shape_str(s, sizeof s, x->ndim, x->shape), bytes);
        goto out;
    }
    if (x->type == 0x08) {
        x->u8 = raw;
        raw = NULL;
    } else {
        x->f32 = malloc(x->count * sizeof(float));
        if (!x->f32) {
            set_err(err, errlen, "%s: out of memory", path);
            goto out;
        }
        for (size_t i = 0; i < x->count; i++)
            x->f32[i] = idx_elem(x->type, raw, i);
    }
    rc = 0;
out:
    free(raw);
    gzclose(g);
    if (rc)
        free(x->u8), x->u8 = NULL;
    return rc;
}

/* ---- data sets ---- */

void nnrt_data_free(nnrt_dataset *d)
{
    free(d->u8);
    free(d->labels);
    if (d->st) {
        nnrt_st_close(d->st);
    } else {
        free(d->f32);
        free(d->targets);
    }
    free(d->path);
    free(d->label_path);
    memset(d, 0, sizeof *d);
}

/* d's paths; -1 if memory runs out */
static int set_paths(nnrt_dataset *d, const char *path, const char *label_path, char *err, size_t errlen)
{
    d->path = dup_str(path);
    d->label_path = label_path ? dup_str(label_path) : NULL;
    if (!d->path || (label_path && !d->label_path)) {
        set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    return 0;
}

/* Labels from floats: each must be a whole number in [0, 2^31). */
static int labels_from_floats(nnrt_dataset *d, const float *v, const char *path, char *err, size_t errlen)
{
    d->labels = malloc((size_t)d->n * sizeof *d->labels);
    if (!d->labels) {
        set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (int64_t i = 0; i < d->n; i++) {
        if (!(v[i] >= 0 && v[i] < DATA_MAX_LABEL && v[i] == floorf(v[i]))) {
            set_err(err, errlen, "%s: the label of sample %" PRId64 " is %g, not a class index "
                    "(a whole number from 0 to %.0f)", path, i, (double)v[i], DATA_MAX_LABEL - 1);
            return -1;
        }
        d->labels[i] = (int32_t)v[i];
        if (d->labels[i] + 1 > d->nclasses)
            d->nclasses = d->labels[i] + 1;
    }
    return 0;
}

int nnrt_data_idx(nnrt_dataset *d, const char *images, const char *labels, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    idx_file im, lb;
    memset(&lb, 0, sizeof lb);
    if (set_paths(d, images, labels, err, errlen) || idx_read(&im, images, err, errlen))
        goto fail;
    d->n = im.shape[0];
    d->ndim = im.ndim - 1;
    memcpy(d->shape, im.shape + 1, sizeof(int64_t) * (size_t)d->ndim);
    d->size = im.count / (size_t)d->n;
    d->u8 = im.u8;
    d->f32 = im.f32;
    if (!labels)
        return 0;
    if (idx_read(&lb, labels, err, errlen))
        goto fail;
    char s[128];
    if (lb.ndim != 1) {
        set_err(err, errlen, "%s: labels must be an IDX file of shape [N], this one is %s", labels,
                shape_str(s, sizeof s, lb.ndim, lb.shape));
        goto fail;
    }
    if (lb.shape[0] != d->n) {
        set_err(err, errlen, "%s: %" PRId64 " labels, but %s holds %" PRId64 " samples", labels,
                lb.shape[0], images, d->n);
        goto fail;
    }
    if (lb.u8) {
        d->labels = malloc((size_t)d->n * sizeof *d->labels);
        if (!d->labels) {
            set_err(err, errlen, "%s: out of memory", labels);
            goto fail;
        }
        for (int64_t i = 0; i < d->n; i++) {
            d->labels[i] = lb.u8[i];
            if (d->labels[i] + 1 > d->nclasses)
                d->nclasses = d->labels[i] + 1;
        }
    } else if (labels_from_floats(d, lb.f32, labels, err, errlen)) {
        goto fail;
    }
    free(lb.u8);
    free(lb.f32);
    return 0;
fail:
    free(lb.u8);
    free(lb.f32);
    nnrt_data_free(d);
    return -1;
}

/* ---- CSV ---- */

/* The field at *p (up to ',' or the end of the line) as a number; moves *p
 * past it and its comma. 0, -1 if it is not a number, -2 if it is one a
 * float cannot hold (infinite, or beyond FLT_MAX). */
static int csv_number(const char **p, double *v)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    const char *e = s;
    while (*e && *e != ',' && *e != '\n' && *e != '\r')
        e++;
    const char *end = e;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *p = *e == ',' ? e + 1 : e;
    char buf[64];
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *stop;
    errno = 0;
    double d = strtod(buf, &stop);
    if (*stop != '\0' || isnan(d))
        return -1;
    if (!isfinite(d) || fabs(d) > FLT_MAX)
        return -2;
    *v = d;
    return 0;
}

/* the text of the field at p, for messages */
static void csv_field_text(char *buf, size_t len, const char *p)
{
    size_t n = 0;
    while (p[n] && p[n] != ',' && p[n] != '\n' && p[n] != '\r')
        n++;
    snprintf(buf, len, "%.*s", (int)(n < 40 ? n : 40), p);
}

static size_t csv_count_fields(const char *line)
{
    size_t n = 1;
    for (; *line && *line != '\n'; line++)
        n += *line == ',';
    return n;
}

static int csv_blank(const char *line)
{
    while (*line == ' ' || *line == '\t' || *line == '\r')
        line++;
    return *line == '\n' || *line == '\0';
}

int nnrt_data_csv(nnrt_dataset *d, const char *path, size_t nfeatures, size_t ntargets, char *err,
                  size_t errlen)
{
    memset(d, 0, sizeof *d);
    char *text = NULL;
    size_t len;
    double *row = NULL;
    if (set_paths(d, path, NULL, err, errlen) || read_all(path, &text, &len, err, errlen))
        goto fail;
    char *p = text;
    if ((unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb && (unsigned char)p[2] == 0xbf)
        p += 3; /* a UTF-8 byte order mark */
    /* rows: at most one per line */
    size_t lines = 1;
    for (const char *q = p; *q; q++)
        lines += *q == '\n';
    size_t fields = 0, line = 0, rows = 0;
    int as_label = 0;
    for (char *next; *p; p = next) {
        line++;
        next = strchr(p, '\n');
        next = next ? next + 1 : p + strlen(p);
        if (csv_blank(p))
            continue;
        if (fields == 0) { /* the first row: a header, or the first sample */
            const char *q = p;
            double v;
            if (csv_number(&q, &v) < 0)
                continue; /* a header: skipped */
            fields = csv_count_fields(p);
            /* the last field a label (for class labels, or one-hot targets), or the targets */
            as_label = fields == nfeatures + 1 && ntargets != 1;
            if (!as_label && fields != nfeatures + (ntargets ? ntargets : 1)) {
                if (ntargets > 1)
                    set_err(err, errlen, "%s:%zu: %zu fields; the model takes %zu features, then a "
                            "label (%zu fields) or %zu target values (%zu fields)", path, line,
                            fields, nfeatures, nfeatures + 1, ntargets, nfeatures + ntargets);
                else
                    set_err(err, errlen, "%s:%zu: %zu fields; the model takes %zu features, then %s "
                            "(%zu fields)", path, line, fields, nfeatures,
                            ntargets == 1 ? "a target value" : "a label", nfeatures + 1);
                goto fail;
            }
            size_t nt = as_label ? 1 : ntargets;
            d->ndim = 1;
            d->shape[0] = (int64_t)nfeatures;
            d->size = nfeatures;
            d->f32 = malloc(lines * (nfeatures ? nfeatures : 1) * sizeof(float));
            float *lab = NULL;
            row = malloc(fields * sizeof *row);
            if (as_label)
                d->labels = malloc(lines * sizeof *d->labels);
            else
                d->targets = lab = malloc(lines * nt * sizeof(float));
            if (!d->f32 || !row || (as_label ? !d->labels : !lab)) {
                set_err(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            d->tndim = as_label ? 0 : 1;
            d->tshape[0] = (int64_t)nt;
            d->tsize = as_label ? 0 : nt;
        }
        if (csv_count_fields(p) != fields) {
            set_err(err, errlen, "%s:%zu: %zu fields, but the first row has %zu", path, line,
                    csv_count_fields(p), fields);
            goto fail;
        }
        const char *q = p;
        for (size_t f = 0; f < fields; f++) {
            const char *at = q;
            int bad = csv_number(&q, &row[f]);
            if (bad < 0) {
                char t[48];
                csv_field_text(t, sizeof t, at);
                set_err(err, errlen, "%s:%zu: field %zu is '%s', %s", path, line, f + 1, t,
                        bad == -1 ? "not a number" : "beyond the range of a float");
                goto fail;
            }
        }
        for (size_t f = 0; f < nfeatures; f++)
            d->f32[rows * nfeatures + f] = (float)row[f];
        if (as_label) {
            double v = row[nfeatures];
            if (!(v >= 0 && v < DATA_MAX_LABEL && v == floor(v))) {
                set_err(err, errlen, "%s:%zu: the label (field %zu) is %g, not a class index (a whole "
                        "number from 0 to %.0f)", path, line, fields, v, DATA_MAX_LABEL - 1);
                goto fail;
            }
            d->labels[rows] = (int32_t)v;
            if (d->labels[rows] + 1 > d->nclasses)
                d->nclasses = d->labels[rows] + 1;
        } else {
            for (size_t f = nfeatures; f < fields; f++)
                d->targets[rows * d->tsize + (f - nfeatures)] = (float)row[f];
        }
        rows++;
    }
    if (rows == 0) {
        set_err(err, errlen, "%s: no rows of numbers", path);
        goto fail;
    }
    d->n = (int64_t)rows;
    free(row);
    free(text);
    return 0;
fail:
    free(row);
    free(text);
    nnrt_data_free(d);
    return -1;
}

/* ---- safetensors ---- */

int nnrt_data_safetensors(nnrt_dataset *d, const char *path, size_t ntargets, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (set_paths(d, path, NULL, err, errlen))
        goto fail;
    d->st = nnrt_st_open(path, err, errlen);
    if (!d->st)
        goto fail;
    const nnrt_tensor *ti = nnrt_st_get(d->st, "input"), *tt = nnrt_st_get(d->st, "target");
    char s1[128], s2[128];
    if (!ti || !tt) {
        set_err(err, errlen, "%s: no float tensor '%s' (a data file holds \"input\" [N, ...] and "
                "\"target\" [N] or [N, ...])", path, !ti ? "input" : "target");
        goto fail;
    }
    if (ti->ndim < 1 || tt->ndim < 1 || ti->shape[0] < 1 || tt->shape[0] != ti->shape[0]) {
        set_err(err, errlen, "%s: 'input' %s and 'target' %s do not hold the same number (N >= 1) of "
                "samples", path, shape_str(s1, sizeof s1, ti->ndim, ti->shape),
                shape_str(s2, sizeof s2, tt->ndim, tt->shape));
        goto fail;
    }
    d->n = ti->shape[0];
    d->ndim = ti->ndim - 1;
    memcpy(d->shape, ti->shape + 1, sizeof(int64_t) * (size_t)d->ndim);
    d->size = nnrt_tensor_numel(ti) / (size_t)d->n;
    d->f32 = ti->data;
    if (tt->ndim == 1 && ntargets != 1) /* [N]: class labels */
        return labels_from_floats(d, tt->data, path, err, errlen) ? (nnrt_data_free(d), -1) : 0;
    d->tndim = tt->ndim - 1;
    memcpy(d->tshape, tt->shape + 1, sizeof(int64_t) * (size_t)d->tndim);
    d->tsize = nnrt_tensor_numel(tt) / (size_t)d->n;
    d->targets = tt->data;
    return 0;
fail:
    nnrt_data_free(d);
    return -1;
}

/* ---- PGM ---- */

/* the next number of a PGM header at *p, skipping whitespace and comments */
static int pgm_number(const char **p, const char *end, long *v)
{
    const char *s = *p;
    for (;;) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
            s++;
        if (s < end && *s == '#') {
            while (s < end && *s != '\n')
                s++;
            continue;
        }
        break;
    }
    if (s >= end || *s < '0' || *s > '9')
        return -1;
    long n = 0;
    while (s < end && *s >= '0' && *s <= '9' && n < 100000000)
        n = n * 10 + (*s++ - '0');
    *p = s;
    *v = n;
    return 0;
}

int nnrt_data_pgm(nnrt_dataset *d, const char *path, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    char *text = NULL;
    size_t len;
    if (set_paths(d, path, NULL, err, errlen) || read_all(path, &text, &len, err, errlen))
        goto fail;
    const char *p = text + 2, *end = text + len;
    long w, h, maxval;
    if (len < 2 || text[0] != 'P' || (text[1] != '5' && text[1] != '2')) {
        set_err(err, errlen, "%s: not a PGM image (it should start with P5 or P2)", path);
        goto fail;
    }
    int binary = text[1] == '5';
    if (pgm_number(&p, end, &w) || pgm_number(&p, end, &h) || pgm_number(&p, end, &maxval) ||
        w < 1 || h < 1 || w > 65536 || h > 65536 || maxval < 1 || maxval > 65535) {
        set_err(err, errlen, "%s: a bad PGM header (width, height and maxval from 1 to 65535 expected)",
                path);
        goto fail;
    }
    size_t npix = (size_t)w * (size_t)h;
    d->n = 1;
    d->ndim = 2;
    d->shape[0] = h;
    d->shape[1] = w;
    d->size = npix;
    if (maxval == 255)
        d->u8 = malloc(npix);
    else
        d->f32 = malloc(npix * sizeof(float));
    if (!d->u8 && !d->f32) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (binary)
        p++; /* the single whitespace after maxval */
    int wide = maxval > 255;
    if (binary && (size_t)(end - p) < npix * (wide ? 2 : 1)) {
        set_err(err, errlen, "%s: truncated: %ldx%ld pixels need %zu bytes, the file has %zu", path, w,
                h, npix * (wide ? 2 : 1), (size_t)(end > p ? end - p : 0));
        goto fail;
    }
    for (size_t i = 0; i < npix; i++) {
        long v;
        if (binary) {
            v = wide ? (unsigned char)p[2 * i] << 8 | (unsigned char)p[2 * i + 1] : (unsigned char)p[i];
        } else if (pgm_number(&p, end, &v)) {
            set_err(err, errlen, "%s: pixel %zu of %zu is missing or not a number", path, i + 1, npix);
            goto fail;
        }
        if (v > maxval) {
            set_err(err, errlen, "%s: pixel %zu is %ld, above maxval %ld", path, i + 1, v, maxval);
            goto fail;
        }
        if (d->u8)
            d->u8[i] = (unsigned char)v;
        else
            d->f32[i] = (float)v / (float)maxval;
    }
    free(text);
    return 0;
fail:
    free(text);
    nnrt_data_free(d);
    return -1;
}

/* ---- data specs ---- */

/* In dir, "<name>" or, if it is not there, "<name>.gz"; the plain name if neither is. */
static void pick_file(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
    if (access(buf, F_OK) == 0)
        return;
    snprintf(buf, len, "%s/%s.gz", dir, name);
    if (access(buf, F_OK) == 0)
        return;
    snprintf(buf, len, "%s/%s", dir, name);
}

int nnrt_data_spec_has_test(const char *spec)
{
    return strncmp(spec, "mnist:", 6) == 0;
}

/* The first bytes of path (decompressed), to tell what kind of file it is; 0 read if it cannot. */
static size_t sniff(const char *path, unsigned char *buf, size_t len)
{
    char err[8];
    gzFile g = open_gz(path, err, sizeof err);
    if (!g)
        return 0;
    size_t got = 0;
    if (read_gz(g, buf, len, &got, path, err, sizeof err) < 0)
        got = 0;
    gzclose(g);
    return got;
}

int nnrt_data_load(nnrt_dataset *d, const char *spec, int test, size_t nfeatures, size_t ntargets,
                   char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (strncmp(spec, "mnist:", 6) == 0) {
        const char *dir = spec + 6, *set = test ? "t10k" : "train";
        char images[4096], labels[4096], name[64];
        snprintf(name, sizeof name, "%s-images-idx3-ubyte", set);
        pick_file(images, sizeof images, dir, name);
        snprintf(name, sizeof name, "%s-labels-idx1-ubyte", set);
        pick_file(labels, sizeof labels, dir, name);
        if (access(images, F_OK) != 0) {
            set_err(err, errlen, "%s: cannot open: %s (nor %s.gz)\nhelp: `make mnist` downloads MNIST "
                    "into data/mnist", images, strerror(errno), images);
            return -1;
        }
        return nnrt_data_idx(d, images, labels, err, errlen);
    }
    if (strncmp(spec, "idx:", 4) == 0) {
        const char *comma = strchr(spec + 4, ',');
        if (!comma || comma == spec + 4 || !comma[1]) {
            set_err(err, errlen, "%s: expected idx:IMAGES,LABELS (two IDX files, plain or gzip)", spec);
            return -1;
        }
        char images[4096];
        snprintf(images, sizeof images, "%.*s", (int)(comma - spec - 4), spec + 4);
        return nnrt_data_idx(d, images, comma + 1, err, errlen);
    }
    if (strncmp(spec, "text:", 5) == 0) {
        set_err(err, errlen, "%s: a text is the data of a model of tokens, and this model's input is floats\n"
                "help: --data text:FILE trains a model whose input is declared `tokens(vocab=N)`", spec + 5);
        return -1;
    }
    if (strncmp(spec, "csv:", 4) == 0)
        return nnrt_data_csv(d, spec + 4, nfeatures, ntargets, err, errlen);
    /* a folder: MNIST's files (what else holds a data set in pieces) */
    struct stat st;
    if (stat(spec, &st) == 0 && S_ISDIR(st.st_mode)) {
        char images[4096];
        pick_file(images, sizeof images, spec, "train-images-idx3-ubyte");
        if (access(images, F_OK) == 0)
            set_err(err, errlen, "%s is a folder of MNIST's IDX files\nhelp: write --data mnist:%s", spec, spec);
        else
            set_err(err, errlen, "%s is a folder, not a data set\nhelp: --data takes mnist:DIR (MNIST's IDX "
                    "files), idx:IMAGES,LABELS, csv:FILE, or a file: .safetensors, .csv, IDX or PGM", spec);
        return -1;
    }
    /* a file: told apart by its first bytes, then by its name */
    const char *colon = strchr(spec, ':');
    if (colon && access(spec, F_OK) != 0) {
        set_err(err, errlen, "%s: unknown kind of data '%.*s' (known: mnist:DIR, idx:IMAGES,LABELS, "
                "csv:FILE, text:FILE, or a file: .safetensors, .csv, IDX or PGM)", spec, (int)(colon - spec), spec);
        return -1;
    }
    unsigned char head[4];
    size_t got = sniff(spec, head, sizeof head);
    if (got >= 2 && head[0] == 'P' && (head[1] == '5' || head[1] == '2'))
        return nnrt_data_pgm(d, spec, err, errlen);
    if (got == 4 && head[0] == 0 && head[1] == 0 && idx_elem_size(head[2]))
        return nnrt_data_idx(d, spec, NULL, err, errlen);
    if (has_suffix(spec, ".csv") || has_suffix(spec, ".csv.gz"))
        return nnrt_data_csv(d, spec, nfeatures, ntargets, err, errlen);
    return nnrt_data_safetensors(d, spec, ntargets, err, errlen);
}

/* ---- fitting data to a model ---- */

/* shape without its leading 1s */
static int squeeze(const int64_t **shape, int ndim)
{
    while (ndim > 0 && (*shape)[0] == 1) {
        (*shape)++;
        ndim--;
    }
    return ndim;
}

int nnrt_data_fit(const nnrt_dataset *d, const nnrt_transform *tf, int ndim, const int64_t *shape,
                  char *err, size_t errlen)
{
    int64_t have[NNRT_MAX_DIMS];
    int hdim = d->ndim;
    memcpy(have, d->shape, sizeof have);
    char s1[128], s2[128], s3[128];
    if (tf->pad > 0) {
        if (hdim < 2) {
            set_err(err, errlen, "%s: --pad needs images, but its samples are %s", d->path,
                    shape_str(s1, sizeof s1, d->ndim, d->shape));
            return -1;
        }
        have[hdim - 2] += 2 * tf->pad;
        have[hdim - 1] += 2 * tf->pad;
    }
    size_t nh = 1, nw = 1;
    for (int i = 0; i < hdim; i++)
        nh *= (size_t)have[i];
    for (int i = 0; i < ndim; i++)
        nw *= (size_t)shape[i];
    const int64_t *a = have, *b = shape;
    int an = squeeze(&a, hdim), bn = squeeze(&b, ndim);
    int ok = an == bn && memcmp(a, b, sizeof(int64_t) * (size_t)an) == 0;
    if (!ok && nh == nw && (an <= 1 || bn <= 1))
        ok = 1; /* a flat input takes any sample of its size, row-major, as torch.flatten */
    if (ok)
        return 0;
    char padded[160] = "";
    if (tf->pad > 0)
        snprintf(padded, sizeof padded, " (after --pad %d: %s)", tf->pad, shape_str(s3, sizeof s3, hdim, have));
    int n = snprintf(err, errlen, "%s: its samples are %s%s, but the model's input is %s", d->path,
                     shape_str(s1, sizeof s1, d->ndim, d->shape), padded,
                     shape_str(s2, sizeof s2, ndim, shape));
    /* the padding that would fit, if one would; when the height and width
     * fit already (the given --pad), what differs is the channels */
    if (d->ndim >= 2 && ndim >= 2 && n > 0 && (size_t)n < errlen) {
        int64_t dh = shape[ndim - 2] - d->shape[d->ndim - 2], dw = shape[ndim - 1] - d->shape[d->ndim - 1];
        int64_t p = dh / 2;
        int64_t with_p[NNRT_MAX_DIMS + 1];
        memcpy(with_p, d->shape, sizeof(int64_t) * (size_t)d->ndim);
        with_p[d->ndim - 2] += 2 * p;
        with_p[d->ndim - 1] += 2 * p;
        const int64_t *c = with_p, *e = shape;
        int cn = squeeze(&c, d->ndim), en = squeeze(&e, ndim);
        int fits = cn == en && memcmp(c, e, sizeof(int64_t) * (size_t)cn) == 0;
        if (dh == dw && dh > 0 && dh % 2 == 0 && fits && p != tf->pad)
            snprintf(err + n, errlen - (size_t)n, "\nhelp: --pad %lld zero-pads %lldx%lld to %lldx%lld",
                     (long long)p, (long long)d->shape[d->ndim - 2], (long long)d->shape[d->ndim - 1],
                     (long long)shape[ndim - 2], (long long)shape[ndim - 1]);
        else if (dh == dw && dh >= 0 && dh % 2 == 0 && (p == tf->pad || (dh == 0 && tf->pad == 0)) && ndim >= 3)
            snprintf(err + n, errlen - (size_t)n, "\nhelp: the height and width fit; the channels do not: %lld "
                     "here, %lld in the model's input (change its input, or convert the data)",
                     (long long)(d->ndim >= 3 ? d->shape[d->ndim - 3] : 1), (long long)shape[ndim - 3]);
    }
    return -1;
}

int nnrt_data_targets_mode(const nnrt_dataset *d, int classes, size_t tsize, char *err, size_t errlen)
{
    const char *lp = d->label_path ? d->label_path : d->path;
    if (d->labels) {
        int k = classes > 0 ? classes : tsize > 1 ? (int)tsize : 0;
        for (int64_t i = 0; k > 0 && i < d->n; i++)
            if (d->labels[i] >= k) {
                set_err(err, errlen, "%s: the label of sample %" PRId64 " is %d, out of range: the model "
                        "has %d classes (0 to %d)", lp, i, (int)d->labels[i], k, k - 1);
                return -1;
            }
        return classes > 0 || tsize == 1 ? NNRT_TARGET_CLASS : NNRT_TARGET_ONEHOT;
    }
    if (d->targets) {
        char s[128];
        if (classes > 0) {
            set_err(err, errlen, "%s: holds targets %s, but the model takes class labels", lp,
                    shape_str(s, sizeof s, d->tndim, d->tshape));
            return -1;
        }
        if (d->tsize != tsize) {
            set_err(err, errlen, "%s: its targets are %s (%zu values), the model's %zu", lp,
                    shape_str(s, sizeof s, d->tndim, d->tshape), d->tsize, tsize);
            return -1;
        }
        return NNRT_TARGET_VALUES;
    }
    set_err(err, errlen, "%s: no labels or targets", lp);
    return -1;
}

/* ---- batches ---- */

void nnrt_shuffle(int64_t *perm, int64_t n, nnrt_rng *r)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(nnrt_rng_next(r) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

typedef struct batch_job {
    float *x, *t;
    int32_t *labels;
    const nnrt_dataset *d;
    const int64_t *idx;
    const nnrt_transform *tf;
    int mode;
    size_t tsize, H, W, planes, HP, WP, out;
    float lut[256];             /* bytes: as ToTensor then Normalize, the same operations in the same order */
} batch_job;

/* samples [lo, hi) of the batch */
static void batch_samples(void *arg, size_t lo, size_t hi)
{
    const batch_job *b = arg;
    const nnrt_dataset *d = b->d;
    const size_t p = (size_t)b->tf->pad, H = b->H, W = b->W, HP = b->HP, WP = b->WP;
    const float mean = b->tf->mean, std = b->tf->std, border = (0.0f - mean) / std;
    for (size_t s = lo; s < hi; s++) {
        const size_t i = (size_t)b->idx[s];
        float *y = b->x + s * b->out;
        if (p > 0)
            for (size_t k = 0; k < b->out; k++)
                y[k] = border;
        for (size_t c = 0; c < b->planes; c++)
            for (size_t h = 0; h < H; h++) {
                float *row = y + (c * HP + h + p) * WP + p;
                size_t at = i * d->size + (c * H + h) * W;
                if (d->u8)
                    for (size_t w = 0; w < W; w++)
                        row[w] = b->lut[d->u8[at + w]];
                else
                    for (size_t w = 0; w < W; w++)
                        row[w] = (d->f32[at + w] - mean) / std;
            }
        if (b->labels)
            b->labels[s] = d->labels ? d->labels[i] : -1;
        if (!b->t)
            continue;
        if (b->mode == NNRT_TARGET_CLASS) {
            b->t[s] = (float)d->labels[i];
        } else if (b->mode == NNRT_TARGET_ONEHOT) {
            for (size_t k = 0; k < b->tsize; k++)
                b->t[s * b->tsize + k] = 0.0f;
            b->t[s * b->tsize + (size_t)d->labels[i]] = 1.0f;
        } else if (b->mode == NNRT_TARGET_VALUES) {
            memcpy(b->t + s * b->tsize, d->targets + i * b->tsize, b->tsize * sizeof(float));
        }
    }
}

/* The batch, its samples shared between the runtime's threads when large
 * (each sample is independent of the others: the same bits either way). */
void nnrt_data_batch(float *x, float *t, int32_t *labels, const nnrt_dataset *d, const int64_t *idx,
                     int n, const nnrt_transform *tf, int mode, size_t tsize)
{
    batch_job b = {.x = x, .t = t, .labels = labels, .d = d, .idx = idx, .tf = tf, .mode = mode,
                   .tsize = tsize};
    const size_t p = (size_t)tf->pad;
    b.W = d->ndim >= 1 ? (size_t)d->shape[d->ndim - 1] : 1;
    b.H = d->ndim >= 2 ? (size_t)d->shape[d->ndim - 2] : 1;
    b.planes = d->size / (b.H * b.W), b.HP = b.H + 2 * p, b.WP = b.W + 2 * p;
    b.out = b.planes * b.HP * b.WP;
    if (d->u8)
        for (int v = 0; v < 256; v++)
            b.lut[v] = ((float)v / 255.0f - tf->mean) / tf->std;
    size_t grain = b.out ? 16384 / b.out + 1 : 1;   /* samples per task: ~16K floats */
    nnrt_parallel_for(batch_samples, &b, (size_t)n, grain);
}

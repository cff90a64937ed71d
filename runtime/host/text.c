/* text.c — a text as the data set of a language model, and the draw of
 * the next token when sampling from one.
 *
 * `--data text:FILE` trains a model of tokens (nnrt_model.vocab > 0) on
 * the bytes of FILE, as nanoGPT's shakespeare_char does on its characters:
 *   - the vocabulary is the sorted set of the distinct bytes of the file
 *     (or the one a checkpoint was trained with), a token is a byte's rank
 *     in it;
 *   - the first 90% of the bytes train, the last 10% validate;
 *   - a sample is a window of T bytes at a random start s, the input
 *     ids[s .. s+T-1] and the target the same shifted by one,
 *     ids[s+1 .. s+T]: at every position the next byte is the class.
 * The windows come from the trainer's seeded generator, so a run takes
 * the same windows every time, and a resumed run the ones it would have.
 *
 * A checkpoint keeps the vocabulary in its metadata ("vocab": the byte
 * values as a comma-separated decimal list, safe in the JSON header for any
 * byte), so `sample` can turn ids back into bytes.
 *
 * Every function that can fail returns 0, or -1 with a message in err that
 * starts with the file's name.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_host.h"

/* ---- the vocabulary ---- */

/* v with the bytes of present[256] (nonzero: the byte is in it), in order */
static void vocab_from_set(nnrt_vocab *v, const unsigned char *present)
{
    v->n = 0;
    for (int b = 0; b < 256; b++) {
        v->id[b] = -1;
        if (present[b]) {
            v->id[b] = (int16_t)v->n;
            v->byte[v->n++] = (unsigned char)b;
        }
    }
}

void nnrt_vocab_text(char *buf, size_t len, const nnrt_vocab *v)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < v->n && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%d", i ? "," : "", v->byte[i]);
}

int nnrt_vocab_parse(nnrt_vocab *v, const char *s)
{
    unsigned char present[256] = {0};
    int last = -1;
    const char *p = s;
    if (!*p)
        return -1;
    for (;;) {
        if (*p < '0' || *p > '9')
            return -1;
        int b = 0;
        while (*p >= '0' && *p <= '9' && b < 1000)
            b = 10 * b + (*p++ - '0');
        if (b > 255 || b <= last) /* bytes, strictly increasing */
            return -1;
        present[b] = 1;
        last = b;
        if (*p == '\0')
            break;
        if (*p++ != ',')
            return -1;
    }
    vocab_from_set(v, present);
    return 0;
}

void nnrt_byte_text(char *buf, size_t len, unsigned char b)
{
    if (b == '\n')
        snprintf(buf, len, "'\\n'");
    else if (b == '\t')
        snprintf(buf, len, "'\\t'");
    else if (b >= 32 && b < 127)
        snprintf(buf, len, "'%c'", b);
    else
        snprintf(buf, len, "byte 0x%02x", b);
}

/* ---- the data set ---- */

void nnrt_text_free(nnrt_text *t)
{
    free(t->path);
    free(t->ids);
    memset(t, 0, sizeof *t);
}

/* The ids of t's bytes in its vocabulary; -1 with a message naming the
 * first byte that is not in it (a vocabulary given by a checkpoint). */
static int text_ids(nnrt_text *t, const unsigned char *bytes, const char *vocab_from, char *err,
                    size_t errlen)
{
    for (size_t i = 0; i < t->n; i++) {
        int id = t->vocab.id[bytes[i]];
        if (id < 0) {
            char b[32];
            nnrt_byte_text(b, sizeof b, bytes[i]);
            snprintf(err, errlen, "%s: its %s (at offset %zu) is not in the vocabulary of %s (%d bytes)",
                     t->path, b, i, vocab_from, t->vocab.n);
            return -1;
        }
        t->ids[i] = (unsigned char)id;
    }
    return 0;
}

int nnrt_text_load(nnrt_text *t, const char *path, const nnrt_vocab *given, const char *vocab_from,
                   int max_vocab, int64_t window, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    char *bytes = NULL;
    size_t n = 0;
    if (nnrt_data_read_file(path, &bytes, &n, err, errlen))
        return -1;
    t->path = malloc(strlen(path) + 1);
    t->ids = malloc(n ? n : 1);
    if (!t->path || !t->ids) {
        free(bytes);
        nnrt_text_free(t);
        snprintf(err, errlen, "%s: out of memory reading the file", path);
        return -1;
    }
    memcpy(t->path, path, strlen(path) + 1);
    t->n = n;
    const unsigned char *u = (const unsigned char *)bytes;
    int rc = 0;
    if (given) {
        t->vocab = *given;
        rc = text_ids(t, u, vocab_from, err, errlen);
    } else {
        unsigned char present[256] = {0};
        for (size_t i = 0; i < n; i++)
            present[u[i]] = 1;
        vocab_from_set(&t->vocab, present);
        rc = text_ids(t, u, path, err, errlen);
    }
    free(bytes);
    /* nanoGPT's split: the first 90% train, the rest validates */
    t->ntrain = n - n / 10;
    if (rc == 0 && t->vocab.n > max_vocab) {
        snprintf(err, errlen, "%s: it holds %d distinct bytes, but the model's vocabulary has %d\n"
                 "help: declare the model's input `tokens(vocab=%d)` (or more)", given ? vocab_from : path, t->vocab.n,
                 max_vocab, t->vocab.n);
        rc = -1;
    } else if (rc == 0 && n == 0) {
        snprintf(err, errlen, "%s: the file is empty", path);
        rc = -1;
    } else if (rc == 0 && (t->ntrain < (size_t)window + 1 || n - t->ntrain < (size_t)window + 1)) {
        snprintf(err, errlen, "%s: too short: %zu bytes, of which %zu train and %zu validate, but a window "
                 "of the model takes %lld + 1 bytes in each (at least %lld bytes in all)", path, n, t->ntrain,
                 n - t->ntrain, (long long)window, (long long)(10 * (window + 1)));
        rc = -1;
    }
    if (rc)
        nnrt_text_free(t);
    return rc;
}

void nnrt_text_batch(float *x, float *y, const nnrt_text *t, int split, int n, int64_t window, nnrt_rng *r)
{
    const unsigned char *ids = t->ids + (split == NNRT_TEXT_VAL ? t->ntrain : 0);
    size_t len = split == NNRT_TEXT_VAL ? t->n - t->ntrain : t->ntrain;
    uint64_t starts = (uint64_t)(len - (size_t)window); /* s in [0, len - T - 1] */
    for (int i = 0; i < n; i++) {
        size_t s = (size_t)(nnrt_rng_next(r) % starts);
        for (int64_t k = 0; k < window; k++) {
            x[(size_t)i * (size_t)window + (size_t)k] = (float)ids[s + (size_t)k];
            y[(size_t)i * (size_t)window + (size_t)k] = (float)ids[s + (size_t)k + 1];
        }
    }
}

/* ---- sampling ---- */

static int descending(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

int nnrt_sample_next(float *logits, int n, int valid, float temperature, int top_k, float *scratch,
                     nnrt_rng *r)
{
    for (int i = valid; i < n; i++) /* ids the text never had: never drawn */
        logits[i] = -INFINITY;
    int best = 0;
    for (int i = 1; i < valid; i++)
        if (logits[i] > logits[best])
            best = i;
    if (temperature == 0 || valid == 1)
        return best;
    for (int i = 0; i < valid; i++)
        logits[i] /= temperature;
    if (top_k > 0 && top_k < valid) { /* keep the k largest (and any equal to the k-th) */
        memcpy(scratch, logits, (size_t)valid * sizeof *scratch);
        qsort(scratch, (size_t)valid, sizeof *scratch, descending);
        float kth = scratch[top_k - 1];
        for (int i = 0; i < valid; i++)
            if (logits[i] < kth)
                logits[i] = -INFINITY;
    }
    /* softmax, then the first id whose cumulative probability passes u */
    double sum = 0, top = (double)logits[best];
    for (int i = 0; i < valid; i++)
        sum += exp((double)logits[i] - top);
    double u = (double)nnrt_rng_uniform(r) * sum, acc = 0;
    int last = best;
    for (int i = 0; i < valid; i++) {
        if (logits[i] == -INFINITY)
            continue;
        acc += exp((double)logits[i] - top);
        last = i;
        if (u < acc)
            return i;
    }
    return last; /* u rounded up to the sum */
}

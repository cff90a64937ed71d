/* bigram.c — a bigram language model written by hand against nnrt_model,
 * for tests/text.sh while nnc cannot yet emit a sequence model.
 *
 * As Karpathy's bigram model: a table [V, V] of logits, the next token's
 * logits being the row of the current one, y[n, t, :] = table[x[n, t], :];
 * cross-entropy over every position (mean), SGD. Input [T] token ids,
 * output [T, V], target [T] class indices. The model is causal (position t
 * sees token t alone) unless built with -DBIGRAM_CAUSAL=0, which only
 * claims otherwise (for the refusal of `sample`).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_host.h"

#ifndef BIGRAM_CAUSAL
#define BIGRAM_CAUSAL 1
#endif
enum { V = 8, T = 8 };

typedef struct bigram {
    float table[V * V];             /* [V, V] logits: row a, the next token after a */
    float grad[V * V];
    int batch;                      /* capacity */
    int n;                          /* the batch of the last forward */
    int *x;                         /* [batch, T] its ids */
    float *y;                       /* [batch, T, V] the logits */
    float *p;                       /* [batch, T, V] their softmax, for backward */
    const float *target;            /* [batch, T] of the last loss */
} bigram;

static void bigram_init(void *self, int batch, uint64_t seed)
{
    bigram *m = self;
    nnrt_rng r;
    nnrt_rng_seed(&r, seed);
    for (int i = 0; i < V * V; i++)
        m->table[i] = nnrt_rng_normal(&r);      /* nn.Embedding's N(0, 1) */
    memset(m->grad, 0, sizeof m->grad);
    m->batch = batch;
    m->x = nnrt_alloc((size_t)batch * T, "ids");
    m->y = nnrt_alloc((size_t)batch * T * V, "logits");
    m->p = nnrt_alloc((size_t)batch * T * V, "probabilities");
}

static void bigram_release(void *self)
{
    bigram *m = self;
    free(m->x);
    free(m->y);
    free(m->p);
}

static void bigram_zero_grad(void *self)
{
    bigram *m = self;
    memset(m->grad, 0, sizeof m->grad);
}

/* y[n, t, :] = table[x[n, t], :] */
static float *bigram_forward(void *self, const float *input, int n)
{
    bigram *m = self;
    m->n = n;
    for (int i = 0; i < n * T; i++) {
        m->x[i] = (int)input[i];
        memcpy(m->y + (size_t)i * V, m->table + (size_t)m->x[i] * V, V * sizeof(float));
    }
    return m->y;
}

/* the mean over n * T positions of -log softmax(y)[target] */
static float bigram_loss(void *self, const float *target)
{
    bigram *m = self;
    double sum = 0;
    m->target = target;
    for (int i = 0; i < m->n * T; i++) {
        const float *y = m->y + (size_t)i * V;
        float *p = m->p + (size_t)i * V;
        float top = y[0];
        for (int c = 1; c < V; c++)
            top = y[c] > top ? y[c] : top;
        double z = 0;
        for (int c = 0; c < V; c++)
            z += exp((double)(y[c] - top));
        for (int c = 0; c < V; c++)
            p[c] = (float)(exp((double)(y[c] - top)) / z);
        sum += log(z) + (double)top - (double)y[(int)target[i]];
    }
    return (float)(sum / (m->n * T));
}

/* d table[x] += (softmax - onehot(target)) / (n * T) */
static void bigram_backward(void *self)
{
    bigram *m = self;
    float scale = 1.0f / (float)(m->n * T);
    for (int i = 0; i < m->n * T; i++) {
        float *g = m->grad + (size_t)m->x[i] * V;
        const float *p = m->p + (size_t)i * V;
        for (int c = 0; c < V; c++)
            g[c] += scale * (p[c] - (c == (int)m->target[i]));
    }
}

static void bigram_step(void *self, float lr)
{
    bigram *m = self;
    for (int i = 0; i < V * V; i++)
        m->table[i] -= lr * m->grad[i];
}

static int bigram_tensors(void *self, nnrt_tensor *t, int what)
{
    bigram *m = self;
    if (what == 2)
        return 0;
    t[0] = (nnrt_tensor){.name = what ? "token_embedding_table.weight.grad" : "token_embedding_table.weight",
                         .ndim = 2, .shape = {V, V}, .data = what ? m->grad : m->table};
    return 1;
}

int main(int argc, char **argv)
{
    static bigram m;
    const nnrt_model model = {
        .name = "bigram", .summary = "Model: bigram, a table [8, 8] of logits\n", .self = &m,
        .source = "tests/text/bigram.c",
        .in_ndim = 1, .in_shape = {T},
        .out_ndim = 2, .out_shape = {T, V},
        .target_ndim = 1, .target_shape = {T},
        .classes = V, .vocab = V, .causal = BIGRAM_CAUSAL, .lr = 1.0f, .ntensors = 1, .nstate = 0,
        .init = bigram_init, .release = bigram_release, .zero_grad = bigram_zero_grad,
        .forward = bigram_forward, .loss = bigram_loss, .backward = bigram_backward,
        .step = bigram_step, .tensors = bigram_tensors, .min_batch = 1,
    };
    return nnrt_train_main(&model, argc, argv);
}

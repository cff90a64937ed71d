/* embedding.c — token embeddings (torch.nn.Embedding), forward and
 * backward, and the positions 0..T-1 a positional embedding looks up.
 *
 * Shapes: idx[rows] holds token ids (as floats: a generated model's input
 * is floats, and ids below 2^24 are exact); the table w[num, D] has one row
 * of D floats per id; y[rows, D] gets the rows of w the ids pick:
 *     forward   y[r, :] = w[idx[r], :]
 *     backward  dw[idx[r], :] += dy[r, :]
 * An id that is not an integer in [0, num) is a caller's bug (the trainer
 * checks its data): the forward writes a row of NaNs, which the NaN check
 * names, and the backward skips the row.
 *
 * The forward copies rows, cut between the threads by rows (a copy: the cut
 * cannot change a bit). In the backward several rows may add into one row
 * of dw, so threads cutting by rows would race and add in an order that
 * depends on the cut; it is cut by COLUMNS instead: each task runs over
 * every row, in order, for its own columns of D. So rows of the same id add
 * up in row order, and the bits do not depend on the number of threads.
 */
#include <math.h>

#include "nnrt.h"

#include "kernel.h"

/* work is shared between threads from this many floats (activation.c's grain) */
#define GRAIN 32768

/* items of `per` floats each a task takes, at least: GRAIN floats */
static size_t grain_of(int per)
{
    return per > 0 ? (GRAIN + (size_t)per - 1) / (size_t)per : GRAIN;
}

typedef struct emb_ctx {
    float *out;             /* y (forward), dw (backward) */
    const float *idx, *in;  /* in: w (forward), dy (backward) */
    int rows, num, D;
} emb_ctx;

/* the row of the table id names, or -1 when id is not an integer in [0, num)
 * (NaN included) */
static int emb_row(float id, int num)
{
    if (!(id >= 0.0f && id < (float)num) || id != floorf(id))
        return -1;
    return (int)id;
}

/* y[lo..hi-1, D] = w[idx[r], :], or NaNs */
static void emb_fwd_rows(void *arg, size_t lo, size_t hi)
{
    const emb_ctx *c = arg;
    for (size_t r = lo; r < hi; r++) {
        float *y = c->out + r * c->D;
        int k = emb_row(c->idx[r], c->num);
        if (k < 0) {
            for (int j = 0; j < c->D; j++)
                y[j] = NAN;
            continue;
        }
        memcpy(y, c->in + (size_t)k * c->D, (size_t)c->D * sizeof *y);
    }
}

/* y[rows, D] = w[idx[r], :] for w[num, D] */
void nnrt_embedding_forward(float *y, const float *idx, const float *w, int rows, int num, int D)
{
    emb_ctx c = {y, idx, w, rows, num, D};
    nnrt_parallel_for(emb_fwd_rows, &c, (size_t)rows, grain_of(D));
}

/* dw[idx[r], lo..hi-1] += dy[r, lo..hi-1], r = 0, 1, ..., rows-1 in order */
HOT static void emb_bwd_cols(void *arg, size_t lo, size_t hi)
{
    const emb_ctx *c = arg;
    for (int r = 0; r < c->rows; r++) {
        int k = emb_row(c->idx[r], c->num);
        if (k < 0)
            continue;
        float *restrict dw = c->out + (size_t)k * c->D;
        const float *restrict dy = c->in + (size_t)r * c->D;
        for (size_t j = lo; j < hi; j++)
            dw[j] += dy[j];
    }
}

/* dw[num, D] += dy[rows, D] scattered to the rows idx names; dw may be NULL */
void nnrt_embedding_backward(float *dw, const float *dy, const float *idx, int rows, int num, int D)
{
    if (!dw)
        return;
    emb_ctx c = {dw, idx, dy, rows, num, D};
    nnrt_parallel_for(emb_bwd_cols, &c, (size_t)D, grain_of(rows));
}

/* y[N, T] = 0, 1, ..., T-1 in each of the N samples */
void nnrt_positions(float *y, int N, int T)
{
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++)
            y[(size_t)n * T + t] = (float)t;
}

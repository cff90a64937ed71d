/* trainer.c — the trainer every generated program runs.
 *
 * A generated model file knows its shapes and its arithmetic. What a trainer
 * does around that — flags, data, the loop of the tutorial (zero_grad,
 * forward, loss, backward, step), checkpoints, reporting — is the same for
 * every model, so it lives here, behind the nnrt_model descriptor that the
 * generated main() fills in.
 *
 * The program has four modes (args.c parses the command line):
 *   ./lenet [options]            the tutorial's loop on random data, or on
 *                                one safetensors batch (--data FILE)
 *   ./lenet train --data SPEC    epochs over a data set (data.c), shuffled
 *                                from the seed, evaluated on the test set
 *                                after each epoch; checkpoints and --resume
 *   ./lenet eval --load W ...    loss, accuracy and the confusion matrix
 *   ./lenet predict --load W F   the class and probabilities of an image
 *
 * Checkpoints are safetensors: the state_dict (PyTorch's names and layouts),
 * then the optimizer's state, and in the metadata everything else a run
 * needs to go on exactly where it stopped: the step, the epoch and the batch
 * within it, the shuffling generator as it was when the epoch began, the
 * settings (seed, batch, lr, padding, normalisation) and the epoch's running
 * sums. A resumed run therefore takes the same batches in the same order
 * from the same weights, and ends bit-identical to one never interrupted.
 * The model's arithmetic must be deterministic for that, and is: the
 * kernels give the same bits run after run, with any number of threads.
 *
 * Nothing is allocated inside the training loop: the batch buffers, the
 * permutation and the model's blocks are allocated before it.
 *
 * `train` ends with one line of where the time went (loading the training
 * set, training, loading the test set, testing), which `make bench` reads.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "nnrt_host.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* the monotonic clock, in seconds (progress lines, timings) */
double nnrt_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- small helpers ---- */

/* "[N, 1, 32, 32]" */
static void shape_text(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(buf, len, "[N");
    for (int d = 0; d < ndim && n < len; d++)
        n += (size_t)snprintf(buf + n, len - n, ", %lld", (long long)shape[d]);
    if (n < len)
        snprintf(buf + n, len - n, "]");
}

/* "[1, 32, 32]" */
static void sample_text(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && n < len; d++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (n < len)
        snprintf(buf + n, len - n, "]");
}

/* After a non-finite loss: runs the same forward again with the model's
 * check of every value, and names the first layer whose output was NaN or
 * infinite (or says that only the loss was). */
static void name_nonfinite(const nnrt_model *m, const float *x, int n)
{
    const char *where = NULL;
    if (m->set_nan_check && m->first_nonfinite) {
        m->set_nan_check(m->self, 1);
        m->forward(m->self, x, n);
        where = m->first_nonfinite(m->self);
        m->set_nan_check(m->self, 0);
    }
    if (where)
        fprintf(stderr, "note: the first value that is not finite is the output of %s\n", where);
    else
        fprintf(stderr, "note: every layer's output is finite; the loss itself overflowed\n");
    fprintf(stderr, "help: try a smaller --lr; the weights saved last are untouched\n");
}

/* --nan-check: the model checks every value of every forward (set_nan_check
 * on after init), and the first that is NaN or infinite stops training,
 * even while the loss is finite (a sigmoid of +inf is 1). 1 if it stopped. */
static int stop_nonfinite(const nnrt_model *m, int nan_check, long long step)
{
    const char *where = nan_check && m->first_nonfinite ? m->first_nonfinite(m->self) : NULL;
    if (!where)
        return 0;
    fprintf(stderr, "%s: error: at step %lld the output of %s is not finite (--nan-check); stopping without "
            "saving\n", m->name, step, where);
    fprintf(stderr, "help: try a smaller --lr; the weights saved last are untouched\n");
    return 1;
}

static size_t per_sample(int ndim, const int64_t *shape)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    return n;
}

/* the index of the largest of v[n] (the first, if several) */
static int argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (int)best;
}

/* "1:05", "1:02:09" */
static void duration_text(char *buf, size_t len, double s)
{
    long t = s > 0 && s < 1e7 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

/* A usage mistake the parser cannot see (a missing --data): the same form as
 * its messages, exit status 2. */
static int usage(const nnrt_model *m, const char *command, const char *msg)
{
    fprintf(stderr, "%s: error: %s\ntry '%s %s --help'\n", m->name, msg, m->name, command);
    return 2;
}

/* ---- checkpoints ---- */

/* The model's checkpoint tensors: the state_dict (what 0), then the
 * optimizer's state (what 2); returns how many, t holds ntensors + nstate. */
static int checkpoint_tensors(const nnrt_model *m, nnrt_tensor *t)
{
    int k = m->tensors(m->self, t, 0);
    if (m->nstate)
        k += m->tensors(m->self, t + k, 2);
    return k;
}

static int save(const nnrt_model *m, const char *path, const char *const *keys,
                const char *const *vals, int nmeta, char *err, size_t errlen)
{
    nnrt_tensor *ts = calloc((size_t)(m->ntensors + m->nstate) + 1, sizeof *ts);
    if (!ts) {
        snprintf(err, errlen, "%s: not saved: out of memory", path);
        return -1;
    }
    int k = checkpoint_tensors(m, ts);
    int rc = nnrt_save_safetensors(path, ts, k, keys, vals, nmeta, err, errlen);
    free(ts);
    return rc;
}

/* Loads the weights in path. If the file holds the optimizer's state too
 * (a checkpoint), or need_state says it must, that is loaded as well;
 * otherwise (a PyTorch state_dict) the optimizer starts afresh. The file is
 * refused, changing nothing, if anything does not fit: every mismatch named. */
static int load(const nnrt_model *m, const char *path, int need_state, char *err, size_t errlen)
{
    nnrt_tensor *ts = calloc((size_t)(m->ntensors + m->nstate) + 1, sizeof *ts);
    if (!ts) {
        snprintf(err, errlen, "%s: not loaded: out of memory", path);
        return -1;
    }
    int k = checkpoint_tensors(m, ts);
    int rc = nnrt_load_checkpoint(path, m->name, ts, m->ntensors, ts + m->ntensors, k - m->ntensors, need_state,
                                  err, errlen);
    free(ts);
    return rc;
}

static int check_min_batch(const nnrt_model *m, const nnrt_args *a, int64_t last, int64_t n);

/* ---- the tutorial's loop (no command) ---- */

/* Checks that t is [N, shape...] (N >= 1); returns N, or 0 and a message. */
static int64_t check_batch_tensor(const nnrt_tensor *t, int ndim, const int64_t *shape, char *why, size_t len)
{
    char want[128];
    shape_text(want, sizeof want, ndim, shape);
    int ok = t->ndim == ndim + 1 && t->shape[0] >= 1;
    for (int d = 0; ok && d < ndim; d++)
        ok = t->shape[d + 1] == shape[d];
    if (!ok) {
        char got[128] = "[";
        size_t n = 1;
        for (int d = 0; d < t->ndim && n < sizeof got; d++)
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (n < sizeof got)
            snprintf(got + n, sizeof got - n, "]");
        snprintf(why, len, "'%s' has shape %s, the model needs %s", t->name, got, want);
        return 0;
    }
    return t->shape[0];
}

/* --data FILE: "input" [N, ...] and "target" [N, ...] (or [N] class indices);
 * *batch 0 takes all its samples, else its first *batch */
static int read_data(const nnrt_model *m, const char *path, nnrt_st_file **f, const float **x,
                     const float **t, int *batch)
{
    char err[1024];
    *f = nnrt_st_open(path, err, sizeof err);
    if (!*f) {
        fprintf(stderr, "%s: error: %s\n", m->name, err);
        return -1;
    }
    const nnrt_tensor *ti = nnrt_st_get(*f, "input"), *tt = nnrt_st_get(*f, "target");
    char why[512] = "";
    int64_t ni = 0, nt = 0;
    if (!ti || !tt)
        snprintf(why, sizeof why, "it has no float tensor '%s'", !ti ? "input" : "target");
    else if ((ni = check_batch_tensor(ti, m->in_ndim, m->in_shape, why, sizeof why)) &&
             (nt = check_batch_tensor(tt, m->target_ndim, m->target_shape, why, sizeof why)) && ni != nt)
        snprintf(why, sizeof why, "'input' holds %lld samples but 'target' %lld", (long long)ni, (long long)nt);
    else if (ni > (1 << 20))
        snprintf(why, sizeof why, "it holds more than 1048576 samples");
    if (!why[0] && m->classes > 0)
        for (int64_t i = 0; i < nt; i++) {
            float c = tt->data[i];
            if (!(c >= 0 && c < (float)m->classes && c == floorf(c))) {
                snprintf(why, sizeof why, "target %lld is %g, not a class index in [0, %d)", (long long)i,
                         (double)c, m->classes);
                break;
            }
        }
    size_t nin = why[0] ? 0 : (size_t)ni * per_sample(m->in_ndim, m->in_shape);
    for (size_t i = 0; m->vocab > 0 && i < nin; i++) {
        float c = ti->data[i];
        if (!(c >= 0 && c < (float)m->vocab && c == floorf(c))) {
            snprintf(why, sizeof why, "input value %zu is %g, not a token id in [0, %d)", i, (double)c, m->vocab);
            break;
        }
    }
    if (why[0]) {
        fprintf(stderr, "%s: error: %s: %s\n", m->name, path, why);
        return -1;
    }
    if (*batch > ni) {
        fprintf(stderr, "%s: error: %s: --batch %d, but it holds %lld samples\n", m->name, path, *batch,
                (long long)ni);
        return -1;
    }
    *x = ti->data;
    *t = tt->data;
    if (*batch == 0)
        *batch = (int)ni;
    return 0;
}

/* --dump: the last step's input, target, output and loss, the weights after
 * it and the gradients it computed (NAME.grad): for checks against PyTorch */
static int dump(const nnrt_model *m, const char *path, const float *x, const float *t, const float *out,
                int n, float loss, char *err, size_t errlen)
{
    int cap = 2 * m->ntensors + 4;
    nnrt_tensor *ts = calloc((size_t)cap, sizeof *ts);
    if (!ts) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int k = m->tensors(m->self, ts, 0);
    k += m->tensors(m->self, ts + k, 1);
    nnrt_tensor *ti = &ts[k++], *tt = &ts[k++], *to = &ts[k++], *tl = &ts[k++];
    *ti = (nnrt_tensor){.name = "input", .ndim = m->in_ndim + 1, .data = (float *)x};
    *tt = (nnrt_tensor){.name = "target", .ndim = m->target_ndim + 1, .data = (float *)t};
    *to = (nnrt_tensor){.name = "output", .ndim = m->out_ndim + 1, .data = (float *)out};
    *tl = (nnrt_tensor){.name = "loss", .ndim = 1, .shape = {1}, .data = &loss};
    ti->shape[0] = tt->shape[0] = to->shape[0] = n;
    memcpy(ti->shape + 1, m->in_shape, sizeof(int64_t) * (size_t)m->in_ndim);
    memcpy(tt->shape + 1, m->target_shape, sizeof(int64_t) * (size_t)m->target_ndim);
    memcpy(to->shape + 1, m->out_shape, sizeof(int64_t) * (size_t)m->out_ndim);
    int rc = nnrt_save_safetensors(path, ts, k, NULL, NULL, 0, err, errlen);
    free(ts);
    return rc;
}

/* loss.backward(); optimizer.step(): in one pass (the model's backward_step,
 * which leaves the gradients zero) unless keep_grads asks for them */
static void backward_and_step(const nnrt_model *m, float lr, int keep_grads)
{
    if (m->backward_step && !keep_grads) {
        m->backward_step(m->self, lr);
        return;
    }
    m->backward(m->self);
    m->step(m->self, lr);
}

static int cmd_loop(const nnrt_model *m, nnrt_args a)
{
    char err[4096];
    nnrt_st_file *data = NULL;
    const float *input, *target;
    float *random = NULL;
    if (a.data) {     /* its first --batch samples; all of them without --batch */
        if (!a.batch_given)
            a.batch = 0;
        if (read_data(m, a.data, &data, &input, &target, &a.batch))
            return 1;
    }
    if (check_min_batch(m, &a, a.batch, a.batch) < 0) {
        nnrt_st_close(data);
        return 1;
    }
    if (!a.data) {
        /* as the tutorial: input = torch.randn(1, 1, 32, 32); target = torch.randn(10).view(1, -1);
         * token ids as torch.randint(vocab, (batch, T)) */
        size_t ni = (size_t)a.batch * per_sample(m->in_ndim, m->in_shape);
        size_t nt = (size_t)a.batch * per_sample(m->target_ndim, m->target_shape);
        random = nnrt_alloc(ni + nt, "the random input and target");
        nnrt_rng rng;
        nnrt_rng_seed(&rng, a.seed ^ 0x9e3779b97f4a7c15u);
        nnrt_fill_normal(random, ni + nt, &rng);
        if (m->vocab > 0)       /* token ids: uniform in [0, vocab) */
            for (size_t i = 0; i < ni; i++)
                random[i] = (float)(nnrt_rng_next(&rng) % (uint64_t)m->vocab);
        if (m->classes > 0)     /* class targets: uniform random classes */
            for (size_t i = 0; i < nt; i++)
                random[ni + i] = (float)(nnrt_rng_next(&rng) % (uint64_t)m->classes);
        input = random;
        target = random + ni;
    }
    m->init(m->self, a.batch, a.seed);
    if (a.nan_check && m->set_nan_check)
        m->set_nan_check(m->self, 1);
    int rc = 0;
    if (a.load && load(m, a.load, 0, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", m->name, err);
        rc = 1;
        goto out;
    }
    if (!a.quiet)
        printf("%sbatch %d, %ld steps, lr %g, seed %llu\n", m->summary, a.batch, a.steps, (double)a.lr,
               (unsigned long long)a.seed);
    if (m->set_training)
        m->set_training(m->self, 1);
    float loss = 0, *output = NULL;
    double t0 = nnrt_seconds(), t1 = t0;
    for (long step = 1; step <= a.steps; step++) {
        if (step == 2)
            t1 = nnrt_seconds();                    /* the first step also touches fresh memory */
        m->zero_grad(m->self);                      /* optimizer.zero_grad() */
        output = m->forward(m->self, input, a.batch); /* output = net(input) */
        if (stop_nonfinite(m, a.nan_check, step)) {
            rc = 1;
            goto out;
        }
        loss = m->loss(m->self, target);            /* loss = criterion(output, target) */
        if (!isfinite(loss)) {
            fprintf(stderr, "%s: error: the loss is %g at step %ld; stopping without saving\n", m->name,
                    (double)loss, step);
            name_nonfinite(m, input, a.batch);
            rc = 1;
            goto out;
        }
        backward_and_step(m, a.lr, a.dump && step == a.steps);   /* --dump: keep the last gradients */
        if (!a.quiet && (step % a.print_every == 0 || step == 1 || step == a.steps))
            printf("step %6ld  loss %.6g\n", step, (double)loss);
    }
    double dt = nnrt_seconds() - t0;
    if (!a.quiet && a.steps > 0) {
        printf("trained %ld steps in %.3f s: %.0f steps/s, %.0f samples/s", a.steps, dt,
               (double)a.steps / dt, (double)a.steps * a.batch / dt);
        double rest = t0 + dt - t1;                 /* steps 2..N: the steady state */
        if (a.steps > 1 && rest > 0)
            printf(" (steps after the first: %.0f samples/s)", (double)(a.steps - 1) * a.batch / rest);
        printf("\n");
    }
    const char *keys[] = {"format", "model", "source"};
    const char *vals[] = {"pt", m->name, m->source};
    if (a.save && save(m, a.save, keys, vals, 3, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", m->name, err);
        rc = 1;
    }
    if (a.dump && a.steps > 0 && dump(m, a.dump, input, target, output, a.batch, loss, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", m->name, err);
        rc = 1;
    }
out:
    m->release(m->self);
    free(random);
    if (data)
        nnrt_st_close(data);
    return rc;
}

/* ---- data for the commands ---- */

/* What the commands share: the model's sizes, the transform, the target
 * mode, and the buffers of one batch (allocated once). */
typedef struct session {
    const nnrt_model *m;
    size_t in_size, out_size, tsize;
    nnrt_transform tf;
    int mode;                       /* NNRT_TARGET_* */
    int classes;                    /* for accuracy: > 0 when samples have a class */
    int batch;                      /* capacity */
    float *x;                       /* [batch, in_size] */
    float *t;                       /* [batch, tsize] */
    int32_t *labels;                /* [batch] */
    int64_t *idx;                   /* [batch] for evaluation */
} session;

static void session_init(session *s, const nnrt_model *m)
{
    memset(s, 0, sizeof *s);
    s->m = m;
    s->in_size = per_sample(m->in_ndim, m->in_shape);
    s->out_size = per_sample(m->out_ndim, m->out_shape);
    s->tsize = per_sample(m->target_ndim, m->target_shape);
    s->tf = (nnrt_transform){.pad = 0, .mean = 0, .std = 1};
}

/* (nnrt_alloc counts floats: an int32 takes one, an int64 two) */
static void session_alloc(session *s, int batch)
{
    s->batch = batch;
    s->x = nnrt_alloc((size_t)batch * s->in_size, "a batch of inputs");
    s->t = nnrt_alloc((size_t)batch * s->tsize, "a batch of targets");
    s->labels = nnrt_alloc((size_t)batch, "a batch of labels");
    s->idx = nnrt_alloc((size_t)batch * 2, "a batch of indices");
}

static void session_free(session *s)
{
    free(s->x);
    free(s->t);
    free(s->labels);
    free(s->idx);
}

/* ntargets for the CSV reader: 0 for class labels, else the target's size */
static size_t csv_targets(const session *s)
{
    return s->m->classes > 0 ? 0 : s->tsize;
}

/* Loads the data set named by spec (its test set if test), keeps the first
 * limit samples (0: all), and checks it fits the model: samples, labels,
 * targets. Sets s->mode and s->classes. 0, or -1 after printing why. */
static int open_data(session *s, nnrt_dataset *d, const char *spec, int test, long limit)
{
    char err[4096];
    const nnrt_model *m = s->m;
    if (nnrt_data_load(d, spec, test, s->in_size, csv_targets(s), err, sizeof err) ||
        nnrt_data_fit(d, &s->tf, m->in_ndim, m->in_shape, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", m->name, err);
        return -1;
    }
    if (limit > 0 && limit < d->n)
        d->n = limit;
    int mode = nnrt_data_targets_mode(d, m->classes, s->tsize, err, sizeof err);
    if (mode < 0) {
        fprintf(stderr, "%s: error: %s\n", m->name, err);
        return -1;
    }
    s->mode = mode;
    s->classes = m->classes > 0 ? m->classes : mode == NNRT_TARGET_ONEHOT ? (int)s->tsize : 0;
    if (s->classes > 0 && (size_t)s->classes != s->out_size) {
        fprintf(stderr, "%s: error: %s: the model has %d classes but %zu outputs\n", m->name, d->path,
                s->classes, s->out_size);
        return -1;
    }
    return 0;
}

/* "60000 samples [28, 28] from data/mnist/train-images-idx3-ubyte" */
static void describe(char *buf, size_t len, const nnrt_dataset *d)
{
    char sh[128];
    sample_text(sh, sizeof sh, d->ndim, d->shape);
    snprintf(buf, len, "%" PRId64 " samples %s from %s", d->n, sh, d->path);
}

/* The loss and accuracy of the model on d, in evaluation mode. Adds each
 * (true, predicted) pair to confusion[classes * classes] and writes each
 * output to outputs[n, out_size], if they are not NULL. Allocates nothing. */
static void evaluate(session *s, const nnrt_dataset *d, double *loss, int64_t *correct,
                     int64_t *confusion, float *outputs)
{
    const nnrt_model *m = s->m;
    double sum = 0;
    int64_t right = 0;
    if (m->set_training)
        m->set_training(m->self, 0);
    for (int64_t at = 0; at < d->n; at += s->batch) {
        int n = (int)(d->n - at < s->batch ? d->n - at : s->batch);
        for (int i = 0; i < n; i++)
            s->idx[i] = at + i;
        nnrt_data_batch(s->x, s->t, s->labels, d, s->idx, n, &s->tf, s->mode, s->tsize);
        const float *out = m->forward(m->self, s->x, n);
        sum += (double)m->loss(m->self, s->t) * n; /* the loss is a mean over the batch */
        for (int i = 0; s->classes > 0 && i < n; i++) {
            int p = argmax(out + (size_t)i * s->out_size, s->out_size);
            right += p == s->labels[i];
            if (confusion)
                confusion[(size_t)s->labels[i] * (size_t)s->classes + (size_t)p]++;
        }
        if (outputs)
            memcpy(outputs + (size_t)at * s->out_size, out, (size_t)n * s->out_size * sizeof(float));
    }
    if (m->set_training)
        m->set_training(m->self, 1);
    *loss = sum / (double)d->n;
    *correct = right;
}

/* ---- metadata ---- */

static const char *meta(const nnrt_st_file *f, const char *key)
{
    return f ? nnrt_st_meta(f, key) : NULL;
}

/* the metadata value key as a whole number; 0 if it is one, else -1 */
static int meta_i64(const nnrt_st_file *f, const char *key, int64_t *out)
{
    const char *v = meta(f, key);
    char *end;
    if (!v || !*v)
        return -1;
    long long n = strtoll(v, &end, 10);
    if (*end)
        return -1;
    *out = n;
    return 0;
}

/* the shortest text that reads back as f: "0.1307", not "0.130700007" */
static void float_text(char *buf, size_t len, float f)
{
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, len, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f)
            return;
    }
}

/* "0.1307,0.3081", or "none" */
static void normalize_text(char *buf, size_t len, const nnrt_transform *tf)
{
    char mean[32], std[32];
    float_text(mean, sizeof mean, tf->mean);
    float_text(std, sizeof std, tf->std);
    if (tf->mean == 0 && tf->std == 1)
        snprintf(buf, len, "none");
    else
        snprintf(buf, len, "%s,%s", mean, std);
}

/* The transform: the flags if given, else what the checkpoint f was trained
 * with (metadata "pad" and "normalize"), else none. */
static void pick_transform(session *s, const nnrt_args *a, const nnrt_st_file *f)
{
    int64_t pad;
    s->tf.pad = a->pad >= 0 ? a->pad : meta_i64(f, "pad", &pad) == 0 && pad >= 0 && pad <= 4096 ? (int)pad : 0;
    const char *norm = meta(f, "normalize");
    float mean, std;
    if (a->normalize) {
        s->tf.mean = a->mean;
        s->tf.std = a->std;
    } else if (norm && sscanf(norm, "%f,%f", &mean, &std) == 2 && std > 0) {
        s->tf.mean = mean;
        s->tf.std = std;
    }
}

/* ---- train ---- */

/* The position and running sums of a training run: what a checkpoint keeps. */
typedef struct progress {
    int64_t step;                   /* optimizer steps in all */
    int64_t epoch;                  /* epochs finished */
    int64_t epoch_step;             /* batches done in the epoch under way */
    nnrt_rng rng;                   /* the shuffling generator, as the epoch under way began */
    double loss_sum;                /* the epoch's sum of loss * samples ... */
    int64_t correct, seen;          /* ... correct predictions, samples */
    double test_loss, test_acc;     /* the last evaluation (test_acc < 0: none) */
} progress;

static volatile sig_atomic_t stop_signal; /* SIGINT or SIGTERM arrived */

static void on_signal(int sig)
{
    stop_signal = sig;
}

/* Saves a checkpoint: the model, and in the metadata the progress and the
 * settings a resumed run must share; and the vocabulary of a text (vocab,
 * nnrt_vocab_text's list) unless vocab is NULL. */
static int save_checkpoint(const session *s, const nnrt_args *a, const progress *p, const char *path,
                           int64_t nsamples, const char *vocab, char *err, size_t errlen)
{
    char v[16][80];
    snprintf(v[0], 80, "%" PRId64, p->step);
    snprintf(v[1], 80, "%" PRId64, p->epoch);
    snprintf(v[2], 80, "%" PRId64, p->epoch_step);
    snprintf(v[3], 80, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, p->rng.s[0], p->rng.s[1],
             p->rng.s[2], p->rng.s[3]);
    snprintf(v[4], 80, "%" PRIu64, a->seed);
    snprintf(v[5], 80, "%d", a->batch);
    float_text(v[6], 80, a->lr);
    snprintf(v[7], 80, "%d", s->tf.pad);
    normalize_text(v[8], 80, &s->tf);
    snprintf(v[9], 80, "%" PRId64, nsamples);
    snprintf(v[10], 80, "%.17g", p->loss_sum);
    snprintf(v[11], 80, "%" PRId64, p->correct);
    snprintf(v[12], 80, "%" PRId64, p->seen);
    snprintf(v[13], 80, "%.17g", p->test_acc);
    const char *keys[] = {"format", "model", "source", "step", "epoch", "epoch_step", "rng", "seed",
                          "batch", "lr", "pad", "normalize", "train_samples", "epoch_loss_sum",
                          "epoch_correct", "epoch_seen", "test_accuracy", "vocab"};
    const char *vals[] = {"pt", s->m->name, s->m->source, v[0], v[1], v[2], v[3], v[4], v[5], v[6],
                          v[7], v[8], v[9], v[10], v[11], v[12], v[13], vocab};
    int nmeta = (int)(sizeof keys / sizeof keys[0]) - (vocab == NULL); /* "vocab" goes last */
    return save(s->m, path, keys, vals, nmeta, err, errlen);
}

/* Reads the progress from the checkpoint f, checking that this run shares
 * its settings. 0, or -1 after printing every difference. */
static int resume_progress(const session *s, const nnrt_args *a, const nnrt_st_file *f, int64_t nsamples,
                           progress *p)
{
    const char *path = a->resume, *name = s->m->name;
    const char *rng = meta(f, "rng"), *loss = meta(f, "epoch_loss_sum"), *acc = meta(f, "test_accuracy");
    int64_t seed, batch, pad, n;
    if (meta_i64(f, "step", &p->step) || meta_i64(f, "epoch", &p->epoch) ||
        meta_i64(f, "epoch_step", &p->epoch_step) || meta_i64(f, "seed", &seed) ||
        meta_i64(f, "batch", &batch) || meta_i64(f, "pad", &pad) || meta_i64(f, "train_samples", &n) ||
        meta_i64(f, "epoch_correct", &p->correct) || meta_i64(f, "epoch_seen", &p->seen) || !rng ||
        strlen(rng) != 64 || !loss || !acc || !meta(f, "normalize")) {
        fprintf(stderr, "%s: error: %s: not a checkpoint of `%s train` (its metadata lacks the step, "
                "epoch or settings)\nhelp: to start from its weights, use --load\n", name, path, name);
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        char word[17];
        memcpy(word, rng + 16 * i, 16);
        word[16] = '\0';
        p->rng.s[i] = strtoull(word, NULL, 16);
    }
    p->loss_sum = strtod(loss, NULL);
    p->test_acc = strtod(acc, NULL);
    char norm[64];
    normalize_text(norm, sizeof norm, &s->tf);
    int bad = 0;
#define DIFFERS(cond, ...)                                                                 \
    if (cond) {                                                                            \
        fprintf(stderr, "%s: error: %s: ", name, path);                                    \
        fprintf(stderr, __VA_ARGS__);                                                      \
        fprintf(stderr, "\n");                                                             \
        bad = 1;                                                                           \
    }
    DIFFERS((uint64_t)seed != a->seed, "trained with --seed %" PRId64 ", this run has %" PRIu64, seed, a->seed)
    DIFFERS(batch != a->batch, "trained with --batch %" PRId64 ", this run has %d", batch, a->batch)
    DIFFERS(pad != s->tf.pad, "trained with --pad %" PRId64 ", this run has %d", pad, s->tf.pad)
    DIFFERS(strcmp(norm, meta(f, "normalize")) != 0, "trained with --normalize %s, this run has %s",
            meta(f, "normalize"), norm)
    DIFFERS(n != nsamples, "trained on %" PRId64 " samples, this run has %" PRId64, n, nsamples)
#undef DIFFERS
    if (bad) {
        fprintf(stderr, "help: resume with the flags that started the run, and --resume %s\n", path);
        return -1;
    }
    return 0;
}

/* One line of the CSV log. */
static void log_row(FILE *log, const char *kind, double epoch, int64_t step, double loss, double acc,
                    double test_loss, double test_acc, float lr, double seconds)
{
    fprintf(log, "%s,%.6g,%" PRId64 ",%.6g,", kind, epoch, step, loss);
    if (acc >= 0)
        fprintf(log, "%.6g", acc);
    fputc(',', log);
    if (test_loss >= 0)
        fprintf(log, "%.6g", test_loss);
    fputc(',', log);
    if (test_acc >= 0)
        fprintf(log, "%.6g", test_acc);
    fprintf(log, ",%.6g,%.3f\n", (double)lr, seconds);
}

/* the learning rate of epoch (0-based) at the step about to run (0-based):
 * the model's schedule applied to base, per epoch or (warmup_cosine) per step */
static float epoch_lr(const nnrt_model *m, float base, int64_t epoch, int64_t step)
{
    if (m->schedule == NNRT_SCHED_WARMUP_COSINE)
        return nnrt_lr_warmup_cosine(base, (long)step, m->sched_step_size, m->sched_t_max, m->sched_eta_min);
    if (m->schedule == NNRT_SCHED_STEP && m->sched_step_size > 0)
        return nnrt_lr_step(base, (long)epoch, m->sched_step_size, m->sched_gamma);
    if (m->schedule == NNRT_SCHED_COSINE && m->sched_t_max > 0)
        return nnrt_lr_cosine(base, (long)epoch, m->sched_t_max, m->sched_eta_min);
    return base;
}

/* On a terminal: the bar, redrawn in place. */
static void draw_bar(int64_t epoch, long epochs, int64_t done, int64_t n, double loss, double rate,
                     double eta)
{
    char bar[25], e[32];
    int fill = n > 0 ? (int)(24 * done / n) : 24;
    for (int i = 0; i < 24; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[24] = '\0';
    duration_text(e, sizeof e, eta);
    printf("\repoch %" PRId64 "/%ld [%s] %" PRId64 "/%" PRId64 "  loss %.4f  %.0f samples/s  ETA %s\033[K",
           epoch, epochs, bar, done, n, loss, rate, e);
    fflush(stdout);
}

/* Where a training run's time went, in seconds of the monotonic clock: what
 * `make bench` reads to show the data loader's share of an epoch. */
typedef struct timing {
    double load;                    /* reading and checking the training set */
    double load_test;               /* the same for the test set */
    double train;                   /* the training loops, batching included */
    double test;                    /* the passes over the test set */
} timing;

/* One stable line, after the run's summary:
 * "lenet_ce: time: load 0.041 s, train 3.120 s, load test 0.007 s, test 0.180 s" */
static void print_timing(const nnrt_model *m, const timing *t)
{
    printf("%s: time: load %.3f s, train %.3f s, load test %.3f s, test %.3f s\n", m->name, t->load, t->train,
           t->load_test, t->test);
}

/* Everything one `train` run holds, from its flags to its files. */
typedef struct train_run {
    const nnrt_model *m;
    nnrt_args *a;
    session s;
    nnrt_dataset train, test;
    const char *test_spec;          /* the test set's spec; NULL: none */
    const char *save_path;          /* --save, else --resume, else NULL */
    nnrt_st_file *ck;               /* the --resume checkpoint */
    FILE *log;                      /* --log */
    int64_t *perm;                  /* [train.n] the order of the epoch's samples */
    int64_t nbatches;               /* batches in an epoch */
    progress p;
    timing tm;
    int tty;                        /* stdout is a terminal, not --quiet: the bar */
    int initialised;                /* m->init ran, so m->release must */
    int stopped;                    /* a signal or --steps ended the run early */
    double t0;                      /* when the epochs began */
    double train_time;              /* seconds in the epochs' batches so far */
    int64_t trained;                /* samples trained by this process */
    struct sigaction old_int, old_term; /* the handlers before the run's */
    nnrt_text text;                 /* a text instead of train and test (ids NULL: none) */
    char vocab[1024];               /* its vocabulary, as the checkpoint keeps it */
} train_run;

/* the size of the training set a checkpoint records: samples, or a text's training bytes */
static int64_t train_size(const train_run *r)
{
    return r->text.ids ? (int64_t)r->text.ntrain : r->train.n;
}

/* An empty run of m with the flags a. */
static void init_run(train_run *r, const nnrt_model *m, nnrt_args *a)
{
    memset(r, 0, sizeof *r);
    r->m = m;
    r->a = a;
    session_init(&r->s, m);
    r->save_path = a->save ? a->save : a->resume;
    r->tty = isatty(STDOUT_FILENO) && !a->quiet;
}

/* The transform the flags give, then the training set and the test set (if
 * there is one), timed. 0, or -1 after printing why. */
static int open_train_data(train_run *r)
{
    session *s = &r->s;
    const nnrt_args *a = r->a;
    s->tf.pad = a->pad >= 0 ? a->pad : 0;
    if (a->normalize) {
        s->tf.mean = a->mean;
        s->tf.std = a->std;
    }
    double tl = nnrt_seconds();
    if (open_data(s, &r->train, a->data, 0, a->limit))
        return -1;
    r->tm.load = nnrt_seconds() - tl;
    r->test_spec = a->test_data ? a->test_data : nnrt_data_spec_has_test(a->data) ? a->data : NULL;
    int train_mode = s->mode, train_classes = s->classes;
    tl = nnrt_seconds();
    if (r->test_spec && open_data(s, &r->test, r->test_spec, 1, a->test_limit))
        return -1;
    r->tm.load_test = nnrt_seconds() - tl;
    s->mode = train_mode;
    s->classes = train_classes;
    return 0;
}

/* --resume: opens the checkpoint and reads where it stopped, noting a change
 * of --lr. 0, or -1 after printing why. */
static int read_resume(train_run *r)
{
    char err[4096];
    const char *name = r->m->name, *path = r->a->resume;
    r->ck = nnrt_st_open(path, err, sizeof err);
    if (!r->ck) {
        fprintf(stderr, "%s: error: %s\n", name, err);
        return -1;
    }
    if (resume_progress(&r->s, r->a, r->ck, train_size(r), &r->p))
        return -1;
    char lr[32];
    float_text(lr, sizeof lr, r->a->lr);
    if (meta(r->ck, "lr") && strcmp(meta(r->ck, "lr"), lr) != 0 && !r->a->quiet)
        printf("%s: note: %s was trained with --lr %s; this run goes on with --lr %s\n", name, path,
               meta(r->ck, "lr"), lr);
    return 0;
}

/* Where the run starts (the seed's, or the --resume checkpoint's position),
 * then the model, with the weights of --load or --resume. 0, or -1 after
 * printing why. */
static int start_model(train_run *r)
{
    const nnrt_model *m = r->m;
    const nnrt_args *a = r->a;
    char err[4096];
    r->p = (progress){.test_acc = -1, .test_loss = -1};
    nnrt_rng_seed(&r->p.rng, a->seed ^ 0x5851f42d4c957f2du);
    if (a->resume && read_resume(r))
        return -1;
    m->init(m->self, a->batch, a->seed);
    r->initialised = 1;
    if (a->nan_check && m->set_nan_check)
        m->set_nan_check(m->self, 1);
    if ((a->load && load(m, a->load, 0, err, sizeof err)) ||
        (a->resume && load(m, a->resume, 1, err, sizeof err))) {
        fprintf(stderr, "%s: error: %s\n", m->name, err);
        return -1;
    }
    return 0;
}

/* Batch norm cannot train on one value per channel (PyTorch raises): with
 * such a layer (m->min_batch 2), a batch of one sample, or an epoch whose
 * last batch (last samples of n) has one, is refused before training, with
 * the way out. 0, or -1 after printing why. */
static int check_min_batch(const nnrt_model *m, const nnrt_args *a, int64_t last, int64_t n)
{
    if (a->batch >= m->min_batch && last >= m->min_batch)
        return 0;
    int whole = a->batch < m->min_batch;
    fprintf(stderr, "%s: error: %s has %" PRId64 " sample%s, and batch norm cannot train on one value per "
            "channel\n", m->name, whole ? "a batch" : "the epoch's last batch", whole ? (int64_t)a->batch : last,
            (whole ? a->batch : last) == 1 ? "" : "s");
    fprintf(stderr, "note: PyTorch refuses it too: \"Expected more than 1 value per channel when training\"\n");
    if (whole)
        fprintf(stderr, "help: use --batch %d or more\n", m->min_batch);
    else
        fprintf(stderr, "help: add --drop-last to skip it (%" PRId64 " samples, batches of %d), or choose "
                "another --batch\n", n, a->batch);
    return -1;
}

/* The --log file, with its header (a resumed run appends to it). 0, or -1
 * after printing why. */
static int open_log(train_run *r)
{
    const nnrt_args *a = r->a;
    if (!a->log)
        return 0;
    r->log = fopen(a->log, a->resume ? "a" : "w");
    if (!r->log) {
        fprintf(stderr, "%s: error: %s: cannot open: %s\n", r->m->name, a->log, strerror(errno));
        return -1;
    }
    if (ftell(r->log) == 0)
        fprintf(r->log, "kind,epoch,step,loss,accuracy,test_loss,test_accuracy,lr,seconds\n");
    return 0;
}

/* The batch buffers, the permutation and the --log file (appended to by a
 * resumed run). 0, or -1 after printing why. */
static int prepare_epochs(train_run *r)
{
    const nnrt_model *m = r->m;
    const nnrt_args *a = r->a;
    session_alloc(&r->s, a->batch);
    r->perm = nnrt_alloc((size_t)r->train.n * 2, "the order of the samples");
    r->nbatches = a->drop_last ? r->train.n / a->batch : (r->train.n + a->batch - 1) / a->batch;
    if (r->nbatches == 0) {
        fprintf(stderr, "%s: error: --drop-last: the %" PRId64 " training samples are fewer than a batch "
                "of %d, so nothing is left to train on\n", m->name, r->train.n, a->batch);
        return -1;
    }
    if (check_min_batch(m, a, r->train.n - (r->nbatches - 1) * a->batch, r->train.n) < 0)
        return -1;
    if (r->p.epoch_step > r->nbatches) {
        fprintf(stderr, "%s: error: %s: its position (batch %" PRId64 ") is past the end of an epoch\n",
                m->name, a->resume, r->p.epoch_step);
        return -1;
    }
    return open_log(r);
}

/* What is about to happen: the data sets, the settings, where a resumed run
 * goes on (nothing with --quiet). */
static void print_plan(const train_run *r)
{
    const nnrt_model *m = r->m;
    const nnrt_args *a = r->a;
    if (a->quiet)
        return;
    char what[4608], norm[64];
    normalize_text(norm, sizeof norm, &r->s.tf);
    describe(what, sizeof what, &r->train);
    printf("%s: training on %s\n", m->name, what);
    if (r->test_spec) {
        describe(what, sizeof what, &r->test);
        printf("%s: testing on %s\n", m->name, what);
    }
    printf("%s: batch %d, %ld epoch%s, lr %g, seed %" PRIu64 ", pad %d, normalize %s\n", m->name, a->batch,
           a->epochs, a->epochs == 1 ? "" : "s", (double)a->lr, a->seed, r->s.tf.pad, norm);
    if (a->resume)
        printf("%s: resuming %s at epoch %" PRId64 ", batch %" PRId64 " of %" PRId64 " (step %" PRId64 ")\n",
               m->name, a->resume, r->p.epoch + 1, r->p.epoch_step, r->nbatches, r->p.step);
    fflush(stdout);
}

/* SIGINT and SIGTERM ask the run to stop after the step under way and save;
 * a second one stops it at once. */
static void catch_stop_signals(train_run *r)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &r->old_int);
    sigaction(SIGTERM, &sa, &r->old_term);
}

/* the handlers of SIGINT and SIGTERM as they were before the run */
static void restore_signals(const train_run *r)
{
    sigaction(SIGINT, &r->old_int, NULL);
    sigaction(SIGTERM, &r->old_term, NULL);
}

/* 1 if the run must stop here: a signal came, or --steps are done */
static int stop_asked(const train_run *r)
{
    return stop_signal || (r->a->steps >= 0 && r->p.step >= r->a->steps);
}

/* Saves p as the run's checkpoint. 0, or 1 after printing why (after lead). */
static int save_run(const train_run *r, const progress *p, const char *lead)
{
    char err[4096];
    if (save_checkpoint(&r->s, r->a, p, r->save_path, train_size(r), r->text.ids ? r->vocab : NULL, err,
                        sizeof err) == 0)
        return 0;
    fprintf(stderr, "%s%s: error: %s\n", lead, r->m->name, err);
    return 1;
}

/* zero_grad, forward, loss, backward and step at lr on the batch in s->x
 * and s->t of n samples; *out is the output. 0, or 1 after printing where a
 * value stopped being finite. */
static int step_batch(train_run *r, int n, float lr, const float **out, float *loss)
{
    const nnrt_model *m = r->m;
    session *s = &r->s;
    const int64_t step = r->p.step + 1;
    m->zero_grad(m->self);
    *out = m->forward(m->self, s->x, n);
    if (stop_nonfinite(m, r->a->nan_check, step)) {
        if (r->tty)
            printf("\n");
        return 1;
    }
    *loss = m->loss(m->self, s->t);
    if (!isfinite(*loss)) {
        if (r->tty)
            printf("\n");
        fprintf(stderr, "%s: error: the loss is %g at step %" PRId64 "; stopping without saving\n", m->name,
                (double)*loss, step);
        name_nonfinite(m, s->x, n);
        return 1;
    }
    backward_and_step(m, lr, 0);
    return 0;
}

/* One step on the n samples of batch b: zero_grad, forward, loss, backward
 * and step at lr, then the epoch's running sums. 0, or 1 after printing
 * where a value stopped being finite. */
static int train_step(train_run *r, int64_t b, int n, float lr, float *loss)
{
    session *s = &r->s;
    progress *p = &r->p;
    const float *out;
    nnrt_data_batch(s->x, s->t, s->labels, &r->train, r->perm + b * r->a->batch, n, &s->tf, s->mode, s->tsize);
    if (step_batch(r, n, lr, &out, loss))
        return 1;
    p->step++;
    p->epoch_step = b + 1;
    p->loss_sum += (double)*loss * n;
    p->seen += n;
    for (int i = 0; s->classes > 0 && i < n; i++)
        p->correct += argmax(out + (size_t)i * s->out_size, s->out_size) == s->labels[i];
    r->trained += n;
    return 0;
}

/* After the step on the n samples of batch b: its --log row, the
 * --print-every line, and on a terminal the bar (at most every 0.1 s since
 * *tbar, and at the epoch's end); te is when the epoch began. */
static void show_step(const train_run *r, int64_t b, int n, float loss, float lr, double te, double *tbar)
{
    const nnrt_args *a = r->a;
    const progress *p = &r->p;
    const int64_t at = b * a->batch;
    double now = nnrt_seconds();
    if (r->log)
        log_row(r->log, "step", (double)p->epoch + (double)(b + 1) / (double)r->nbatches, p->step, loss, -1, -1,
                -1, lr, now - r->t0);
    if (a->print_every > 0 && p->step % a->print_every == 0 && !a->quiet)
        printf("%sstep %" PRId64 "  epoch %" PRId64 "  loss %.6g\n", r->tty ? "\r\033[K" : "", p->step,
               p->epoch + 1, (double)loss);
    if (r->tty && (now - *tbar >= 0.1 || b + 1 == r->nbatches)) {
        double rate = (double)r->trained / (r->train_time + now - te);
        int64_t left = (a->epochs - p->epoch - 1) * r->train.n + (r->train.n - at - n);
        draw_bar(p->epoch + 1, a->epochs, at + n, r->train.n, p->loss_sum / (double)p->seen, rate,
                 (double)left / rate);
        *tbar = now;
    }
}

/* The batches of the epoch under way, from p.epoch_step on, each at the
 * schedule's rate; te is
 * when the epoch began, *here counts its samples. Saves every --save-every
 * steps; a signal or --steps stops it (r->stopped). 0, or 1 after an error. */
static int train_batches(train_run *r, double te, int64_t *here)
{
    const nnrt_args *a = r->a;
    double tbar = 0;
    for (int64_t b = r->p.epoch_step; b < r->nbatches; b++) {
        const int64_t at = b * a->batch;
        const int n = (int)(r->train.n - at < a->batch ? r->train.n - at : a->batch);
        float loss, lr = epoch_lr(r->m, a->lr, r->p.epoch, r->p.step);
        if (train_step(r, b, n, lr, &loss))
            return 1;
        *here += n;
        show_step(r, b, n, loss, lr, te, &tbar);
        if (stop_asked(r)) {
            r->stopped = 1;
            return 0;
        }
        if (a->save_every > 0 && r->p.step % a->save_every == 0 && r->save_path &&
            save_run(r, &r->p, r->tty ? "\n" : ""))
            return 1;
    }
    return 0;
}

/* The model's loss and accuracy on the test set, into p.test_loss and
 * p.test_acc (timed). */
static void test_epoch(train_run *r)
{
    int64_t right;
    if (r->tty) {
        printf("\repoch %" PRId64 "/%ld  testing on %" PRId64 " samples\033[K", r->p.epoch + 1, r->a->epochs,
               r->test.n);
        fflush(stdout);
    }
    const double tt = nnrt_seconds();
    evaluate(&r->s, &r->test, &r->p.test_loss, &right, NULL, NULL);
    r->tm.test += nnrt_seconds() - tt;
    r->p.test_acc = r->s.classes > 0 ? (double)right / (double)r->test.n : -1;
}

/* The epoch's line: its loss and accuracy, the test set's, and the speed of
 * its dt seconds over here samples. */
static void print_epoch(const train_run *r, double train_loss, double train_acc, double dt, int64_t here)
{
    const progress *p = &r->p;
    printf("%sepoch %" PRId64 "/%ld  loss %.4f", r->tty ? "\r\033[K" : "", p->epoch + 1, r->a->epochs,
           train_loss);
    if (train_acc >= 0)
        printf("  acc %.2f%%", 100 * train_acc);
    if (r->test_spec)
        printf("  test loss %.4f", p->test_loss);
    if (r->test_spec && p->test_acc >= 0)
        printf("  acc %.2f%%", 100 * p->test_acc);
    if (here > 0)
        printf("  (%.1f s, %.0f samples/s)", dt, (double)here / dt);
    printf("\n");
    fflush(stdout);
}

/* An epoch is done: evaluate, report, log; then the progress moves to the
 * next epoch (whose generator is after) and is saved. A signal or --steps
 * stops the run here (r->stopped). 0, or 1 after a failed save. */
static int end_epoch(train_run *r, float lr, nnrt_rng after, double dt, int64_t here)
{
    progress *p = &r->p;
    double train_loss = p->loss_sum / (double)(p->seen ? p->seen : 1);
    double train_acc = r->s.classes > 0 && p->seen ? (double)p->correct / (double)p->seen : -1;
    if (r->test_spec)
        test_epoch(r);
    if (!r->a->quiet)
        print_epoch(r, train_loss, train_acc, dt, here);
    if (r->log) {
        log_row(r->log, "epoch", (double)(p->epoch + 1), p->step, train_loss, train_acc, p->test_loss,
                p->test_acc, lr, nnrt_seconds() - r->t0);
        fflush(r->log);
    }
    p->rng = after;
    p->epoch++;
    p->epoch_step = 0;
    p->loss_sum = 0;
    p->correct = p->seen = 0;
    if (r->save_path && save_run(r, p, ""))
        return 1;
    if (stop_asked(r))
        r->stopped = 1;
    return 0;
}

/* One epoch at the schedule's rate: shuffle, the batches, and unless the run
 * stopped inside it, its end. 0, or 1 after an error. */
static int train_epoch(train_run *r)
{
    progress *p = &r->p;
    nnrt_rng start = p->rng; /* the checkpoint keeps the generator as the epoch begins */
    nnrt_shuffle(r->perm, r->train.n, &p->rng);
    nnrt_rng after = p->rng;
    p->rng = start;
    const double te = nnrt_seconds();
    int64_t here = 0; /* samples of this epoch trained by this process */
    if (train_batches(r, te, &here))
        return 1;
    /* the rate of the epoch's last step (a per-step schedule changes it within) */
    const float lr = epoch_lr(r->m, r->a->lr, p->epoch, p->step > 0 ? p->step - 1 : 0);
    const double dt = nnrt_seconds() - te;
    r->train_time += dt;
    return r->stopped ? 0 : end_epoch(r, lr, after, dt, here);
}

/* The epochs from p.epoch up to --epochs, in training mode, until one stops
 * the run. 0, or 1 after an error. */
static int train_epochs(train_run *r)
{
    const nnrt_model *m = r->m;
    const nnrt_args *a = r->a;
    r->t0 = nnrt_seconds();
    if (r->p.epoch >= a->epochs && !a->quiet)
        printf("%s: nothing to do: %s has finished %" PRId64 " epochs, and --epochs is %ld\n", m->name,
               a->resume, r->p.epoch, a->epochs);
    if (m->set_training)
        m->set_training(m->self, 1);
    while (r->p.epoch < a->epochs && !r->stopped)
        if (train_epoch(r))
            return 1;
    return 0;
}

/* The end of the run: if it stopped early, the checkpoint and where it
 * stopped; else the summary and the timings. The exit status. */
static int report_end(train_run *r)
{
    const nnrt_model *m = r->m;
    const nnrt_args *a = r->a;
    const progress *p = &r->p;
    if (!r->stopped) {
        if (a->quiet)
            return 0;
        printf("%s: trained %ld epoch%s (%" PRId64 " steps) in %.1f s", m->name, a->epochs,
               a->epochs == 1 ? "" : "s", p->step, nnrt_seconds() - r->t0);
        if (p->test_acc >= 0)
            printf(", test accuracy %.2f%%", 100 * p->test_acc);
        printf(r->save_path ? "; saved %s\n" : "\n", r->save_path);
        r->tm.train = r->train_time;
        print_timing(m, &r->tm);
        return 0;
    }
    if (r->tty)
        printf("\n");
    if (r->save_path && save_run(r, p, ""))
        return 1;
    if (p->epoch < a->epochs && !a->quiet)
        printf("%s: stopped at step %" PRId64 " (epoch %" PRId64 ", batch %" PRId64 " of %" PRId64 ")%s%s%s\n",
               m->name, p->step, p->epoch + 1, p->epoch_step, r->nbatches, r->save_path ? "; saved " : "",
               r->save_path ? r->save_path : "; nothing saved (no --save)",
               r->save_path ? ": continue with --resume" : "");
    return stop_signal ? 128 + (int)stop_signal : 0;
}

/* Closes the log (a failed write turns an exit status of 0 into 1), releases
 * the model and frees what the run holds. Returns the exit status. */
static int close_run(train_run *r, int rc)
{
    if (r->log && fclose(r->log) != 0) {
        fprintf(stderr, "%s: error: %s: cannot write: %s\n", r->m->name, r->a->log, strerror(errno));
        rc = rc ? rc : 1;
    }
    if (r->initialised)
        r->m->release(r->m->self);
    free(r->perm);
    session_free(&r->s);
    nnrt_data_free(&r->train);
    nnrt_data_free(&r->test);
    nnrt_text_free(&r->text);
    if (r->ck)
        nnrt_st_close(r->ck);
    return rc;
}

static int cmd_train(const nnrt_model *m, nnrt_args *a)
{
    if (!a->data)
        return usage(m, "train", m->vocab > 0 ? "train needs --data text:FILE (the text to learn)" :
                     "train needs --data SPEC (e.g. --data mnist:data/mnist)");
    if (a->load && a->resume)
        return usage(m, "train", "--load and --resume both give the weights: --resume FILE continues a "
                     "run, --load FILE starts one from its weights");
    train_run r;
    init_run(&r, m, a);
    int rc = 1;
    if (open_train_data(&r) == 0 && start_model(&r) == 0 && prepare_epochs(&r) == 0) {
        print_plan(&r);
        catch_stop_signals(&r);
        rc = train_epochs(&r);
        if (rc == 0)
            rc = report_end(&r);
        restore_signals(&r);
    }
    return close_run(&r, rc);
}

/* ---- eval ---- */

static void print_confusion(const int64_t *c, int k)
{
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n      ");
    for (int j = 0; j < k; j++)
        printf(" %5d", j);
    printf("  accuracy\n");
    for (int i = 0; i < k; i++) {
        int64_t row = 0;
        printf("%5d ", i);
        for (int j = 0; j < k; j++) {
            printf(" %5" PRId64, c[(size_t)i * (size_t)k + (size_t)j]);
            row += c[(size_t)i * (size_t)k + (size_t)j];
        }
        if (row)
            printf("  %6.2f%%\n", 100.0 * (double)c[(size_t)i * (size_t)k + (size_t)i] / (double)row);
        else
            printf("       -\n");
    }
}

/* --load W: the weights, and the checkpoint's transform unless flags say otherwise */
static int open_weights(session *s, const nnrt_args *a, int batch, nnrt_st_file **f)
{
    char err[4096];
    const nnrt_model *m = s->m;
    *f = nnrt_st_open(a->load, err, sizeof err);
    if (!*f) {
        fprintf(stderr, "%s: error: %s\n", m->name, err);
        return -1;
    }
    pick_transform(s, a, *f);
    m->init(m->self, batch, 1);
    if (load(m, a->load, 0, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", m->name, err);
        m->release(m->self);
        return -1;
    }
    return 0;
}

static int cmd_eval(const nnrt_model *m, nnrt_args *a)
{
    if (!a->load)
        return usage(m, "eval", "eval needs --load FILE (the weights to evaluate)");
    if (!a->data)
        return usage(m, "eval", m->vocab > 0 ? "eval needs --data text:FILE (whose last 10% it validates on)" :
                     "eval needs --data SPEC (e.g. --data mnist:data/mnist, whose test set it uses)");
    session s;
    session_init(&s, m);
    nnrt_dataset d;
    memset(&d, 0, sizeof d);
    nnrt_st_file *w = NULL;
    int64_t *confusion = NULL;
    float *outputs = NULL;
    int rc = 1;
    if (open_weights(&s, a, a->batch, &w))
        goto out;
    if (open_data(&s, &d, a->data, nnrt_data_spec_has_test(a->data), a->limit)) {
        m->release(m->self);
        goto out;
    }
    session_alloc(&s, a->batch);
    if (s.classes > 0)
        confusion = calloc((size_t)s.classes * (size_t)s.classes, sizeof *confusion);
    if (a->dump)
        outputs = nnrt_alloc((size_t)d.n * s.out_size, "the outputs");
    double loss;
    int64_t right;
    evaluate(&s, &d, &loss, &right, confusion, outputs);
    char what[4608], norm[64];
    describe(what, sizeof what, &d);
    normalize_text(norm, sizeof norm, &s.tf);
    if (!a->quiet)
        printf("%s: evaluating %s on %s (pad %d, normalize %s)\n", m->name, a->load, what, s.tf.pad, norm);
    printf("loss %.6g", loss);
    if (s.classes > 0)
        printf("  accuracy %.2f%% (%" PRId64 "/%" PRId64 ")", 100.0 * (double)right / (double)d.n, right, d.n);
    printf("\n");
    if (confusion && !a->quiet)
        print_confusion(confusion, s.classes);
    rc = 0;
    if (a->dump) {
        char err[4096];
        float *lab = nnrt_alloc((size_t)d.n, "the labels");
        for (int64_t i = 0; i < d.n; i++)
            lab[i] = d.labels ? (float)d.labels[i] : -1.0f;
        nnrt_tensor t[2] = {{.name = "output", .ndim = 2, .shape = {d.n, (int64_t)s.out_size}, .data = outputs},
                            {.name = "label", .ndim = 1, .shape = {d.n}, .data = lab}};
        if (nnrt_save_safetensors(a->dump, t, 2, NULL, NULL, 0, err, sizeof err)) {
            fprintf(stderr, "%s: error: %s\n", m->name, err);
            rc = 1;
        }
        free(lab);
    }
    m->release(m->self);
out:
    free(confusion);
    free(outputs);
    session_free(&s);
    nnrt_data_free(&d);
    if (w)
        nnrt_st_close(w);
    return rc;
}

/* ---- predict ---- */

/* Predicts sample index of d and prints it, named name. */
static void predict_one(session *s, const nnrt_dataset *d, int64_t index, const char *name)
{
    const nnrt_model *m = s->m;
    s->idx[0] = index;
    nnrt_data_batch(s->x, NULL, s->labels, d, s->idx, 1, &s->tf, 0, s->tsize);
    const float *out = m->forward(m->self, s->x, 1);
    size_t k = s->out_size;
    if (m->classes == 0 && !d->labels) {    /* a regression: its outputs, and the target when known */
        printf("%s: output", name);
        for (size_t i = 0; i < k; i++)
            printf("%s%.6g", i ? ", " : " ", (double)out[i]);
        if (d->targets) {
            printf(" (target");
            for (size_t i = 0; i < d->tsize; i++)
                printf("%s%.6g", i ? ", " : " ", (double)d->targets[(size_t)index * d->tsize + i]);
            printf(")");
        }
        printf("\n");
        return;
    }
    int best = argmax(out, k);
    /* probabilities for a model of classes (its outputs are logits); else the outputs */
    double sum = 0;
    if (m->classes > 0)
        for (size_t i = 0; i < k; i++)
            sum += exp((double)out[i] - (double)out[best]);
    char label[64] = "";
    if (d->labels)
        snprintf(label, sizeof label, " (label %d)", (int)d->labels[index]);
    if (m->classes > 0)
        printf("%s: %d, probability %.5f%s\n", name, best, 1.0 / sum, label);
    else
        printf("%s: %d, output %.4g%s\n", name, best, (double)out[best], label);
    for (size_t i = 0; i < k; i++) {
        double v = m->classes > 0 ? exp((double)out[i] - (double)out[best]) / sum : (double)out[i];
        printf("%s%3zu %.4f", i % 5 == 0 ? "  " : "   ", i, v);
        if (i % 5 == 4 || i + 1 == k)
            printf("\n");
    }
}

static int cmd_predict(const nnrt_model *m, nnrt_args *a)
{
    if (!a->load)
        return usage(m, "predict", "predict needs --load FILE (the trained weights)");
    if (!a->ninputs && !a->data)
        return usage(m, "predict", "predict needs an image: a PGM file, an IDX file with --index N, or --data SPEC "
                        "with --index N");
    session s;
    session_init(&s, m);
    nnrt_st_file *w = NULL;
    int rc = 1;
    if (open_weights(&s, a, 1, &w))
        goto out;
    session_alloc(&s, 1);
    if (m->set_training)
        m->set_training(m->self, 0);
    rc = 0;
    for (int i = -1; i < a->ninputs && rc == 0; i++) {
        const char *spec = i < 0 ? a->data : a->inputs[i];
        if (!spec)
            continue;
        char err[4096];
        nnrt_dataset d;
        int test = i < 0 && nnrt_data_spec_has_test(spec);
        if (nnrt_data_load(&d, spec, test, s.in_size, csv_targets(&s), err, sizeof err) ||
            nnrt_data_fit(&d, &s.tf, m->in_ndim, m->in_shape, err, sizeof err)) {
            fprintf(stderr, "%s: error: %s\n", m->name, err);
            nnrt_data_free(&d);
            rc = 1;
            break;
        }
        int64_t index = d.n == 1 ? 0 : a->index; /* --index picks among several samples */
        if (index < 0) {
            fprintf(stderr, "%s: error: %s holds %" PRId64 " samples: choose one with --index N\n", m->name,
                    d.path, d.n);
            rc = 1;
        } else if (index >= d.n) {
            fprintf(stderr, "%s: error: %s: --index %" PRId64 " is out of range: it holds %" PRId64
                    " sample%s\n", m->name, d.path, index, d.n, d.n == 1 ? "" : "s");
            rc = 1;
        } else {
            char name[4200];
            if (d.n > 1)
                snprintf(name, sizeof name, "%s[%" PRId64 "]", d.path, index);
            else
                snprintf(name, sizeof name, "%s", d.path);
            predict_one(&s, &d, index, name);
        }
        nnrt_data_free(&d);
    }
    m->release(m->self);
out:
    session_free(&s);
    if (w)
        nnrt_st_close(w);
    return rc;
}

/* ---- a model of tokens: train and eval on a text, and sample (text.c) ---- */

static int is_text(const char *spec)
{
    return strncmp(spec, "text:", 5) == 0;
}

/* A model of tokens reads a text when it is a language model: input [T],
 * output [T, V], target [T] of V classes. 0, or -1 after printing why. */
static int check_language_model(const nnrt_model *m)
{
    if (m->in_ndim == 1 && m->out_ndim == 2 && m->target_ndim == 1 && m->out_shape[0] == m->in_shape[0] &&
        m->target_shape[0] == m->in_shape[0] && m->classes > 0 && m->out_shape[1] == m->classes)
        return 0;
    char in[128], out[128], tg[128];
    sample_text(in, sizeof in, m->in_ndim, m->in_shape);
    sample_text(out, sizeof out, m->out_ndim, m->out_shape);
    sample_text(tg, sizeof tg, m->target_ndim, m->target_shape);
    fprintf(stderr, "%s: error: a text needs a language model: input [T], output [T, V] and a target [T] of V "
            "classes; this model's are %s, %s and %s (%d classes)\n", m->name, in, out, tg, m->classes);
    return -1;
}

/* The model of tokens given another data set: 0 if spec is a text, else -1
 * after saying so. */
static int need_text(const nnrt_model *m, const char *spec)
{
    if (is_text(spec))
        return 0;
    fprintf(stderr, "%s: error: %s: the model's input is token ids (`tokens(vocab=%d)`), which come from a "
            "text, not from images or tables\nhelp: --data text:FILE\n", m->name, spec, m->vocab);
    return -1;
}

/* The first flag of the commands' own that a text has no use for, or NULL. */
static const char *unfit_for_text(const nnrt_args *a)
{
    return a->test_data ? "--test-data" : a->limit ? "--limit" : a->test_limit ? "--test-limit" :
           a->pad >= 0 ? "--pad" : a->normalize ? "--normalize" : a->drop_last ? "--drop-last" :
           a->dump ? "--dump" : NULL;
}

/* The vocabulary in the metadata of the checkpoint f (path): 1 and *v, 0
 * if it has none, -1 after printing that it is damaged. */
static int checkpoint_vocab(const nnrt_model *m, const nnrt_st_file *f, const char *path, nnrt_vocab *v)
{
    const char *list = meta(f, "vocab");
    if (!list)
        return 0;
    if (nnrt_vocab_parse(v, list) == 0)
        return 1;
    fprintf(stderr, "%s: error: %s: its metadata's \"vocab\" is not a list of increasing byte values (0 to "
            "255) separated by commas\n", m->name, path);
    return -1;
}

/* The text of spec (text:FILE) into t, for the model. The vocabulary is the
 * checkpoint f's (path ck) if it holds one, else the file's own (with a
 * note when a checkpoint lacks one). 0, or -1 after printing why. */
static int open_text(const nnrt_model *m, const char *spec, const nnrt_st_file *f, const char *ck,
                     int quiet, nnrt_text *t)
{
    char err[4096];
    nnrt_vocab v;
    int has = f ? checkpoint_vocab(m, f, ck, &v) : 0;
    if (has < 0 || check_language_model(m) < 0)
        return -1;
    int most = m->vocab < m->classes ? m->vocab : m->classes;
    if (nnrt_text_load(t, spec + 5, has ? &v : NULL, ck, most, m->in_shape[0], err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", m->name, err);
        return -1;
    }
    if (f && !has && !quiet)
        fprintf(stderr, "%s: note: %s holds no vocabulary; using the distinct bytes of %s, as training on it "
                "would\n", m->name, ck, t->path);
    return 0;
}

/* The mean loss over nbatches batches of windows of the text's split, in
 * evaluation mode. The windows come from a generator of their own, seeded
 * alike at every call: each evaluation sees the same windows, so losses
 * compare across a run, and `eval` repeats the last one of `train`. */
static double text_loss(session *s, const nnrt_text *t, int split, long nbatches)
{
    const nnrt_model *m = s->m;
    nnrt_rng r;
    nnrt_rng_seed(&r, 0x76616c6964617465u); /* "validate" */
    double sum = 0;
    if (m->set_training)
        m->set_training(m->self, 0);
    for (long b = 0; b < nbatches; b++) {
        nnrt_text_batch(s->x, s->t, t, split, s->batch, m->in_shape[0], &r);
        m->forward(m->self, s->x, s->batch);
        sum += (double)m->loss(m->self, s->t);
    }
    if (m->set_training)
        m->set_training(m->self, 1);
    return sum / (double)nbatches;
}

/* the passes over the text's training bytes that p's steps amount to, in
 * tokens seen: a text's epochs (the log's, and the lr schedule's) */
static double text_epochs(const train_run *r)
{
    return (double)r->p.step * r->a->batch * (double)r->m->in_shape[0] / (double)r->text.ntrain;
}

/* The text, its vocabulary as the checkpoint of --resume or --load has it
 * (else the file's), timed. 0, or -1 after printing why. */
static int open_train_text(train_run *r)
{
    const nnrt_args *a = r->a;
    const char *ck = a->resume ? a->resume : a->load;
    char err[4096];
    nnrt_st_file *f = NULL;
    if (ck && !(f = nnrt_st_open(ck, err, sizeof err))) {
        fprintf(stderr, "%s: error: %s\n", r->m->name, err);
        return -1;
    }
    double tl = nnrt_seconds();
    int rc = open_text(r->m, a->data, f, ck, a->quiet, &r->text);
    r->tm.load = nnrt_seconds() - tl;
    if (f)
        nnrt_st_close(f);
    nnrt_vocab_text(r->vocab, sizeof r->vocab, &r->text.vocab);
    return rc;
}

static void print_text_plan(const train_run *r)
{
    const nnrt_model *m = r->m;
    const nnrt_args *a = r->a;
    const nnrt_text *t = &r->text;
    if (a->quiet)
        return;
    printf("%s: training on %s: %zu bytes, %d distinct (the model's vocabulary: %d); %zu train, %zu validate\n",
           m->name, t->path, t->n, t->vocab.n, m->vocab, t->ntrain, t->n - t->ntrain);
    printf("%s: batch %d windows of %lld, %ld steps, lr %g, seed %" PRIu64 ", validating every %ld steps on %ld "
           "batches\n", m->name, a->batch, (long long)m->in_shape[0], a->steps, (double)a->lr, a->seed,
           a->eval_every, a->eval_batches);
    if (a->resume)
        printf("%s: resuming %s at step %" PRId64 "\n", m->name, a->resume, r->p.step);
    fflush(stdout);
}

/* After step p.step: the validation loss (printed and logged with the mean
 * training loss since the last one, train_sum over nsum steps). */
static void validate(train_run *r, double train_sum, long nsum, float lr)
{
    progress *p = &r->p;
    double tt = nnrt_seconds();
    p->test_loss = text_loss(&r->s, &r->text, NNRT_TEXT_VAL, r->a->eval_batches);
    r->tm.test += nnrt_seconds() - tt;
    double train_loss = nsum ? train_sum / (double)nsum : -1;
    if (!r->a->quiet) {
        printf("step %6" PRId64 "  train loss %.6g  val loss %.6g\n", p->step, train_loss, p->test_loss);
        fflush(stdout);
    }
    if (r->log) {
        log_row(r->log, "eval", text_epochs(r), p->step, train_loss, -1, p->test_loss, -1, lr,
                nnrt_seconds() - r->t0);
        fflush(r->log);
    }
}

/* The steps from p.step to --steps on random windows of the training
 * bytes, validating every --eval-every steps and at the end; a signal stops
 * it (r->stopped). Saves at the end, every --save-every steps, and when
 * stopped. 0, or 1 after an error. */
static int train_text(train_run *r)
{
    const nnrt_model *m = r->m;
    const nnrt_args *a = r->a;
    session *s = &r->s;
    progress *p = &r->p;
    r->t0 = nnrt_seconds();
    if (p->step >= a->steps && !a->quiet)
        printf("%s: nothing to do: %s has trained %" PRId64 " steps, and --steps is %ld\n", m->name, a->resume,
               p->step, a->steps);
    if (m->set_training)
        m->set_training(m->self, 1);
    double sum = 0;
    long nsum = 0;
    while (p->step < a->steps && !r->stopped) {
        float lr = epoch_lr(m, a->lr, (int64_t)text_epochs(r), p->step), loss;
        const float *out;
        double te = nnrt_seconds();
        nnrt_text_batch(s->x, s->t, &r->text, NNRT_TEXT_TRAIN, a->batch, m->in_shape[0], &p->rng);
        if (step_batch(r, a->batch, lr, &out, &loss))
            return 1;
        r->train_time += nnrt_seconds() - te;
        p->step++;
        sum += loss;
        nsum++;
        if (r->log)
            log_row(r->log, "step", text_epochs(r), p->step, loss, -1, -1, -1, lr, nnrt_seconds() - r->t0);
        if (!a->quiet && (p->step % a->print_every == 0 || p->step == 1))
            printf("step %6" PRId64 "  loss %.6g\n", p->step, (double)loss);
        if (p->step % a->eval_every == 0 || p->step == a->steps) {
            validate(r, sum, nsum, lr);
            sum = nsum = 0;
        }
        r->stopped = stop_signal != 0;
        if (a->save_every > 0 && p->step % a->save_every == 0 && r->save_path && !r->stopped &&
            p->step < a->steps && save_run(r, p, ""))
            return 1;
    }
    return r->save_path && save_run(r, p, "");
}

/* The last lines of a run on a text; the exit status. */
static int report_text_end(const train_run *r)
{
    const nnrt_model *m = r->m;
    const nnrt_args *a = r->a;
    const progress *p = &r->p;
    if (r->stopped) {
        if (!a->quiet)
            printf("%s: stopped at step %" PRId64 " of %ld%s%s%s\n", m->name, p->step, a->steps,
                   r->save_path ? "; saved " : "; nothing saved (no --save)", r->save_path ? r->save_path : "",
                   r->save_path ? ": continue with --resume" : "");
        return 128 + (int)stop_signal;
    }
    if (!a->quiet) {
        printf("%s: trained %" PRId64 " steps (%.3g epochs of the training bytes) in %.1f s", m->name, p->step,
               text_epochs(r), nnrt_seconds() - r->t0);
        if (p->test_loss >= 0)
            printf(", val loss %.4f", p->test_loss);
        printf(r->save_path ? "; saved %s\n" : "\n", r->save_path);
    }
    return 0;
}

/* train --data text:FILE --steps N */
static int cmd_train_text(const nnrt_model *m, nnrt_args *a)
{
    char msg[256];
    const char *unfit = a->epochs_given ? NULL : unfit_for_text(a);
    if (a->epochs_given)
        return usage(m, "train", "--epochs does not fit a text, which has no epochs: say how long to train with "
                     "--steps N (a step is one batch of --batch random windows)");
    if (unfit) {
        snprintf(msg, sizeof msg, "%s does not apply to a text (it is for images and tables)", unfit);
        return usage(m, "train", msg);
    }
    if (a->steps < 0)
        return usage(m, "train", "a text has no epochs: say how long to train with --steps N (e.g. --steps 5000)");
    if (a->print_every == 0)
        a->print_every = 100;
    train_run r;
    init_run(&r, m, a);
    r.tty = 0; /* no bar: lines */
    int rc = 1;
    if (open_train_text(&r) == 0 && start_model(&r) == 0) {
        session_alloc(&r.s, a->batch);
        if (open_log(&r) == 0) {
            print_text_plan(&r);
            catch_stop_signals(&r);
            rc = train_text(&r);
            if (rc == 0)
                rc = report_text_end(&r);
            restore_signals(&r);
        }
    }
    return close_run(&r, rc);
}

/* eval --load CK --data text:FILE: the validation loss */
static int cmd_eval_text(const nnrt_model *m, nnrt_args *a)
{
    const char *unfit = unfit_for_text(a);
    if (unfit) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s does not apply to a text (it is for images and tables)", unfit);
        return usage(m, "eval", msg);
    }
    session s;
    session_init(&s, m);
    nnrt_st_file *w = NULL;
    nnrt_text t;
    memset(&t, 0, sizeof t);
    int rc = 1;
    if (check_language_model(m) == 0 && open_weights(&s, a, a->batch, &w) == 0) {
        if (open_text(m, a->data, w, a->load, a->quiet, &t) == 0) {
            session_alloc(&s, a->batch);
            double loss = text_loss(&s, &t, NNRT_TEXT_VAL, a->eval_batches);
            if (!a->quiet)
                printf("%s: evaluating %s on %ld batches of %d windows of %lld bytes of the last %zu bytes of %s\n",
                       m->name, a->load, a->eval_batches, a->batch, (long long)m->in_shape[0], t.n - t.ntrain,
                       t.path);
            printf("val loss %.6g\n", loss);
            rc = 0;
        }
        m->release(m->self);
    }
    session_free(&s);
    nnrt_text_free(&t);
    if (w)
        nnrt_st_close(w);
    return rc;
}

/* The prompt's ids in v into ids (strlen(prompt) of them; an empty prompt:
 * a newline if v has one, else id 0); returns how many, or -1 after naming
 * a byte that v lacks. */
static long prompt_ids(const nnrt_model *m, const char *prompt, const nnrt_vocab *v, const char *ck, int *ids)
{
    long n = 0;
    for (const unsigned char *p = (const unsigned char *)prompt; *p; p++, n++) {
        if (v->id[*p] < 0) {
            char b[32];
            nnrt_byte_text(b, sizeof b, *p);
            fprintf(stderr, "%s: error: the prompt's %s (at offset %ld) is not in the vocabulary of %s "
                    "(%d bytes)\n", m->name, b, n, ck, v->n);
            return -1;
        }
        ids[n] = v->id[*p];
    }
    if (n == 0)     /* as nanoGPT's sample.py, which starts from "\n" */
        ids[n++] = v->id['\n'] >= 0 ? v->id['\n'] : 0;
    return n;
}

/* Generates --tokens ids after the n of ids (room for them all), writing
 * each one's byte to stdout. The context is the last T ids (nanoGPT's
 * crop) at the window's first positions, zeros after them: a causal model's
 * output at the last of them depends on them alone. */
static void generate(const nnrt_model *m, const nnrt_args *a, const nnrt_vocab *v, int *ids, long n)
{
    const int64_t T = m->in_shape[0];
    const int V = m->classes;
    float *x = nnrt_alloc((size_t)T, "the context");
    float *logits = nnrt_alloc((size_t)V * 2, "the logits");
    nnrt_rng r;
    nnrt_rng_seed(&r, a->seed ^ 0x73616d706c65u); /* "sample" */
    int tty = isatty(STDOUT_FILENO);
    for (long k = 0; k < a->tokens; k++, n++) {
        int64_t c = n < T ? n : T;
        for (int64_t i = 0; i < T; i++)
            x[i] = i < c ? (float)ids[n - c + i] : 0.0f;
        const float *out = m->forward(m->self, x, 1);
        memcpy(logits, out + (size_t)(c - 1) * (size_t)V, (size_t)V * sizeof *logits);
        ids[n] = nnrt_sample_next(logits, V, v->n, a->temperature, a->top_k, logits + V, &r);
        putchar(v->byte[ids[n]]);
        if (tty)
            fflush(stdout);
    }
    if (tty && n > 0 && v->byte[ids[n - 1]] != '\n')
        putchar('\n');
    free(x);
    free(logits);
}

/* sample --load CK [--prompt TEXT] [--tokens N]: the prompt and what the
 * model writes after it, on stdout */
static int cmd_sample(const nnrt_model *m, nnrt_args *a)
{
    if (m->vocab <= 0) {
        fprintf(stderr, "%s: error: sample writes text, from a model of tokens; this model's input is floats\n"
                "help: declare the model's input `tokens(vocab=N)` and train it on --data text:FILE\n", m->name);
        return 1;
    }
    if (!a->load)
        return usage(m, "sample", "sample needs --load FILE (a checkpoint of `train --data text:FILE`)");
    if (check_language_model(m) < 0)
        return 1;
    if (!m->causal) {
        fprintf(stderr, "%s: error: sample needs a causal model, and this one's output at a position depends on "
                "later positions too\nnote: such a model cannot continue a text one token at a time\n", m->name);
        return 1;
    }
    session s;
    session_init(&s, m);
    nnrt_st_file *w = NULL;
    if (open_weights(&s, a, 1, &w))
        return 1;
    nnrt_vocab v;
    int rc = 1, has = checkpoint_vocab(m, w, a->load, &v);
    int *ids = NULL;
    const char *prompt = a->prompt ? a->prompt : "";
    if (has == 0)
        fprintf(stderr, "%s: error: %s holds no vocabulary (metadata \"vocab\"), so its ids have no characters\n"
                "help: sample from a checkpoint that `%s train --data text:FILE --save FILE` wrote\n", m->name,
                a->load, m->name);
    else if (has > 0 && (v.n > m->vocab || v.n > m->classes))
        fprintf(stderr, "%s: error: %s: its vocabulary has %d bytes, more than the model's %d tokens\n", m->name,
                a->load, v.n, m->vocab < m->classes ? m->vocab : m->classes);
    else if (has > 0) {
        ids = nnrt_alloc(strlen(prompt) + 1 + (size_t)a->tokens, "the tokens");
        long n = prompt_ids(m, prompt, &v, a->load, ids);
        if (n > 0) {
            if (m->set_training)
                m->set_training(m->self, 0);
            for (long i = 0; i < n; i++)    /* the text begins with the prompt, as nanoGPT's */
                putchar(v.byte[ids[i]]);
            generate(m, a, &v, ids, n);
            rc = 0;
            if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "%s: error: cannot write the text: %s\n", m->name, strerror(errno));
                rc = 1;
            }
        }
    }
    free(ids);
    m->release(m->self);
    nnrt_st_close(w);
    return rc;
}

/* ---- the entry point ---- */

/* At exit: whether the kernels ever asked for more scratch than the model
 * planned (nnc's plan and the runtime's kernels disagree: a bug). */
static const char *trainer_name;
static void check_workspace(void)
{
    long misses = nnrt_workspace_misses();
    if (misses > 0)
        fprintf(stderr, "%s: warning: the kernels asked %ld time%s for more scratch memory than nnc "
                "planned (a bug in nnc; the results are not affected)\n", trainer_name, misses,
                misses == 1 ? "" : "s");
}

int nnrt_train_main(const nnrt_model *m, int argc, char **argv)
{
    trainer_name = m->name;
    atexit(check_workspace);
    nnrt_args a = {.steps = 100, .batch = 1, .lr = m->lr, .seed = 1, .print_every = 10};
    char in[128], tg[128], doc[1024];
    shape_text(in, sizeof in, m->in_ndim, m->in_shape);
    shape_text(tg, sizeof tg, m->target_ndim, m->target_shape);
    snprintf(doc, sizeof doc,
             "Trains the model `%s` (compiled by nnc from %s): input %s, target %s%s.\n"
             "Without a command: a random %s and target, as PyTorch's tutorial.\n",
             m->name, m->source, in, tg, m->classes > 0 ? " (class indices)" : "",
             m->vocab > 0 ? "input of token ids" : "normal input");
    nnrt_parse_args(&a, argc, argv, doc);
    if (a.threads > 0)
        nnrt_set_threads(a.threads);
    if (!a.command)
        return cmd_loop(m, a);
    if (strcmp(a.command, "sample") == 0)
        return cmd_sample(m, &a);
    if (m->vocab > 0 && strcmp(a.command, "predict") == 0) {
        fprintf(stderr, "%s: error: predict takes images; a model of tokens continues a text\nhelp: %s sample "
                "--load FILE --prompt TEXT\n", m->name, m->name);
        return 1;
    }
    if (m->vocab > 0 && a.data && need_text(m, a.data) < 0)
        return 1;
    if (strcmp(a.command, "train") == 0)
        return m->vocab > 0 && a.data ? cmd_train_text(m, &a) : cmd_train(m, &a);
    if (strcmp(a.command, "eval") == 0)
        return m->vocab > 0 && a.data && a.load ? cmd_eval_text(m, &a) : cmd_eval(m, &a);
    return cmd_predict(m, &a);
}

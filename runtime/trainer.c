/* trainer.c — the trainer every generated program runs.
 *
 * A generated model file knows its shapes and its arithmetic. What a trainer
 * does around that — flags, data, the loop of the tutorial (zero_grad,
 * forward, loss, backward, step), checkpoints, reporting — is the same for
 * every model, so it lives here, behind the nnrt_model descriptor that the
 * generated main() fills in.
 */
#include "nnrt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "[N, 1, 32, 32]" */
static void shape_text(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(buf, len, "[N");
    for (int d = 0; d < ndim && n < len; d++)
        n += (size_t)snprintf(buf + n, len - n, ", %lld", (long long)shape[d]);
    if (n < len)
        snprintf(buf + n, len - n, "]");
}

static size_t per_sample(int ndim, const int64_t *shape)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    return n;
}

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

/* --data FILE: "input" [N, ...] and "target" [N, ...] (or [N] class indices) */
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
    if (why[0]) {
        fprintf(stderr, "%s: error: %s: %s\n", m->name, path, why);
        return -1;
    }
    *x = ti->data;
    *t = tt->data;
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

static int save(const nnrt_model *m, const char *path, char *err, size_t errlen)
{
    nnrt_tensor *ts = calloc((size_t)(m->ntensors + m->nstate) + 1, sizeof *ts);
    if (!ts) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int k = m->tensors(m->self, ts, 0);   /* the state_dict: PyTorch loads it as it is */
    const char *keys[] = {"format", "model", "source"};
    const char *vals[] = {"pt", m->name, m->source};
    int rc = nnrt_save_safetensors(path, ts, k, keys, vals, 3, err, errlen);
    free(ts);
    return rc;
}

static int load(const nnrt_model *m, const char *path, char *err, size_t errlen)
{
    nnrt_tensor *ts = calloc((size_t)(m->ntensors + m->nstate) + 1, sizeof *ts);
    if (!ts) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int k = m->tensors(m->self, ts, 0);   /* the state_dict: PyTorch loads it as it is */
    int rc = nnrt_load_safetensors(path, ts, k, err, errlen);
    free(ts);
    return rc;
}

int nnrt_train_main(const nnrt_model *m, int argc, char **argv)
{
    nnrt_args a = {.steps = 100, .batch = 1, .lr = m->lr, .seed = 1, .print_every = 10};
    char in[128], tg[128], doc[1024];
    shape_text(in, sizeof in, m->in_ndim, m->in_shape);
    shape_text(tg, sizeof tg, m->target_ndim, m->target_shape);
    snprintf(doc, sizeof doc,
             "Trains the model `%s` (compiled by nnc from %s).\n"
             "Without --data: a random normal input %s and target %s, as PyTorch's tutorial.\n",
             m->name, m->source, in, tg);
    nnrt_parse_args(&a, argc, argv, doc);

    char err[4096];
    nnrt_st_file *data = NULL;
    const float *input, *target;
    float *random = NULL;
    if (a.data) {
        if (read_data(m, a.data, &data, &input, &target, &a.batch))
            return 1;
    } else {
        /* as the tutorial: input = torch.randn(1, 1, 32, 32); target = torch.randn(10).view(1, -1) */
        size_t ni = (size_t)a.batch * per_sample(m->in_ndim, m->in_shape);
        size_t nt = (size_t)a.batch * per_sample(m->target_ndim, m->target_shape);
        random = nnrt_alloc(ni + nt, "the random input and target");
        nnrt_rng rng;
        nnrt_rng_seed(&rng, a.seed ^ 0x9e3779b97f4a7c15u);
        nnrt_fill_normal(random, ni + nt, &rng);
        if (m->classes > 0)     /* class targets: uniform random classes */
            for (size_t i = 0; i < nt; i++)
                random[ni + i] = (float)(nnrt_rng_next(&rng) % (uint64_t)m->classes);
        input = random;
        target = random + ni;
    }
    m->init(m->self, a.batch, a.seed);
    int rc = 0;
    if (a.load && load(m, a.load, err, sizeof err)) {
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
    double t0 = nnrt_seconds();
    for (long step = 1; step <= a.steps; step++) {
        m->zero_grad(m->self);                      /* optimizer.zero_grad() */
        output = m->forward(m->self, input, a.batch); /* output = net(input) */
        loss = m->loss(m->self, target);            /* loss = criterion(output, target) */
        if (!isfinite(loss)) {
            fprintf(stderr, "%s: error: the loss is %g at step %ld; stopping without saving\n"
                            "help: try a smaller --lr\n", m->name, (double)loss, step);
            rc = 1;
            goto out;
        }
        m->backward(m->self);                       /* loss.backward() */
        m->step(m->self, a.lr);                     /* optimizer.step() */
        if (!a.quiet && (step % a.print_every == 0 || step == 1 || step == a.steps))
            printf("step %6ld  loss %.6g\n", step, (double)loss);
    }
    double dt = nnrt_seconds() - t0;
    if (!a.quiet && a.steps > 0)
        printf("trained %ld steps in %.3f s: %.0f steps/s, %.0f samples/s\n", a.steps, dt,
               (double)a.steps / dt, (double)a.steps * a.batch / dt);
    if (a.save && save(m, a.save, err, sizeof err)) {
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

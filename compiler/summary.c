/* summary.c — the model summary table (`nnc --summary`, and the trainer's
 * banner): each value forward computes, its operation, its output shape with
 * the batch as N, its parameter count, and the totals — like Keras's
 * model.summary(), plus the memory the trainer will allocate.
 */
#include "nnc.h"
#include "nnrt_sizing.h" /* conv_path_name */

#include <string.h>

/* 61706 -> "61,706" */
static char *commas(size_t v)
{
    char digits[32], out[48];
    int n = snprintf(digits, sizeof digits, "%zu", v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
    return xstrdup(out);
}

static char *bytes(size_t b)
{
    if (b < 1024)
        return xprintf("%zu B", b);
    if (b < 1024 * 1024)
        return xprintf("%.1f KiB", (double)b / 1024);
    return xprintf("%.1f MiB", (double)b / (1024 * 1024));
}

/* trainable parameters, as Keras and torchinfo count them (buffers apart) */
static size_t layer_params(const Layer *l)
{
    size_t n = 0;
    for (int p = 0; p < l->nparams; p++)
        n += l->params[p].buffer ? 0 : l->params[p].numel;
    return n;
}

static void rule(FILE *out, const char *prefix, char c)
{
    fprintf(out, "%s", prefix);
    for (int i = 0; i < 72; i++)
        fputc(c, out);
    fputc('\n', out);
}

void summary_print(FILE *out, const Graph *g, const char *prefix)
{
    fprintf(out, "%sModel: %s\n", prefix, g->name);
    rule(out, prefix, '-');
    fprintf(out, "%s%-14s %-12s %-22s %12s  %s\n", prefix, "Value", "Operation", "Output shape", "Params", "Line");
    rule(out, prefix, '=');
    bool *seen = xalloc(sizeof(bool) * (size_t)(g->nlayers + 1));
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        char *shape = shape_str(&n->shape);
        char *full = xprintf("[N, %s", shape + 1);
        char *params = xstrdup("0");
        if (n->layer) {
            int li = (int)(n->layer - g->layers);
            params = seen[li] ? xstrdup("(shared)") : commas(layer_params(n->layer));
            seen[li] = true;
        }
        fprintf(out, "%s%-14s %-12s %-22s %12s  %d\n", prefix, n->label, op_name(n->op), full, params,
                n->span.first_line);
    }
    rule(out, prefix, '=');
    for (int i = 0, first = 1; i < g->nnodes; i++) {   /* the kernels the shapes chose */
        const Node *n = &g->nodes[i];
        if (n->op != OP_CONV2D)
            continue;
        if (first)
            fprintf(out, "%sConvolutions, the kernels their shapes take:\n", prefix);
        first = 0;
        nnrt_conv2d_dims d = plan_conv_dims(g, n, 1);
        fprintf(out, "%s  %-14s %s\n", prefix, n->label, conv_path_name(&d));
    }
    size_t np = g->nparam;
    fprintf(out, "%sTotal params:   %s (%s)\n", prefix, commas(g->ntrainable), bytes(g->ntrainable * 4));
    fprintf(out, "%sMemory, in one block the trainer allocates once (bytes):\n", prefix);
    fprintf(out, "%s  parameters      %12s\n", prefix, commas(np * 4));
    fprintf(out, "%s  gradients       %12s\n", prefix, commas(np * 4));
    fprintf(out, "%s  buffers         %12s   (running statistics)\n", prefix, commas(g->nbuf * 4));
    fprintf(out, "%s  optimizer state %12s\n", prefix, commas(g->nopt * 4));
    fprintf(out, "%s  scratch         %12s\n", prefix, commas(g->nscratch * 4));
    fprintf(out, "%s  activations     %12s   per sample: values, gradients and masks, planned\n", prefix,
            commas(g->nact * 4));
    fprintf(out, "%s                                 (%.0f%% of the %s unplanned)\n", prefix,
            g->nact_unplanned ? 100.0 * (double)g->nact / (double)g->nact_unplanned : 100.0,
            commas(g->nact_unplanned * 4));
    nnrt_workspace w1, w64;
    plan_workspace(g, 1, &w1);
    plan_workspace(g, 64, &w64);
    size_t ws1 = nnrt_workspace_floats(&w1, 1) * 4, ws64 = nnrt_workspace_floats(&w64, 1) * 4;
    fprintf(out, "%s  workspace       %12s   kernels' scratch at batch 1, 1 thread (+%s a thread);\n",
            prefix, commas(ws1), commas((nnrt_workspace_floats(&w1, 2) * 4) - ws1));
    fprintf(out, "%s                                 at batch 64: %s (+%s a thread)\n", prefix, commas(ws64),
            commas((nnrt_workspace_floats(&w64, 2) * 4) - ws64));
    size_t fixed = (2 * np + g->nbuf + g->nopt + g->nscratch) * 4;
    fprintf(out, "%s  total           %12s   at batch 1; %s at batch 64 (one thread)\n", prefix,
            commas(fixed + g->nact * 4 + ws1), commas(fixed + 64 * g->nact * 4 + ws64));
    if (g->classes && g->target.ndim)
        fprintf(out, "%sLoss:           %s (%s over every position), target [N, %lld] class indices in [0, %d)\n",
                prefix, loss_name(g->loss), g->loss_sum ? "sum" : "mean", (long long)g->target.dim[0], g->classes);
    else if (g->classes)
        fprintf(out, "%sLoss:           %s (%s), target [N] class indices in [0, %d)\n", prefix, loss_name(g->loss),
                g->loss_sum ? "sum" : "mean", g->classes);
    else
        fprintf(out, "%sLoss:           %s (%s), target [N, %s\n", prefix, loss_name(g->loss),
                g->loss_sum ? "sum" : "mean", shape_str(&g->target) + 1);
    if (g->opt == OPT_SGD)
        fprintf(out, "%sOptimizer:      sgd(lr=%g, momentum=%g, dampening=%g, weight_decay=%g%s%s)", prefix, g->lr,
                g->momentum, g->dampening, g->weight_decay, g->nesterov ? ", nesterov" : "",
                g->decay_matrices ? ", decay=\"matrices\"" : "");
    else
        fprintf(out, "%sOptimizer:      %s(lr=%g, betas=[%g, %g], eps=%g, weight_decay=%g%s)", prefix, opt_name(g->opt),
                g->lr, g->beta1, g->beta2, g->eps, g->weight_decay, g->decay_matrices ? ", decay=\"matrices\"" : "");
    if (g->clip_norm > 0)
        fprintf(out, ", clip_norm %g", g->clip_norm);
    fputc('\n', out);
    if (g->sched == SCHED_STEP)
        fprintf(out, "%sSchedule:       lr x%g every %lld epochs\n", prefix, g->sched_gamma,
                (long long)g->sched_step_size);
    else if (g->sched == SCHED_COSINE)
        fprintf(out, "%sSchedule:       cosine lr over %lld epochs\n", prefix, (long long)g->sched_t_max);
    else if (g->sched == SCHED_WARMUP_COSINE)
        fprintf(out, "%sSchedule:       per step: %lld steps of warmup, then cosine to %g at step %lld\n", prefix,
                (long long)g->sched_step_size, g->sched_eta_min, (long long)g->sched_t_max);
    rule(out, prefix, '-');
}

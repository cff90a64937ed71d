/* explain.c — `nnc --explain-shapes`: how every shape was derived.
 *
 * For each value forward computes: the operation, the shape that came in and
 * the shape that came out, and the arithmetic that got there, with the
 * numbers filled in — `(32 + 2*0 - 5)/1 + 1 = 28` — so that a user can carry
 * the sizes back into PyTorch code or check them by hand. Reads the graph
 * after shape inference; computes nothing new.
 */
#include "nnc.h"

#include <string.h>

/* "(32 + 2*1 - 3)/2 + 1 = 16": one spatial axis of a window operation; the
 * division rounds down (PyTorch), or up in ceil mode */
static char *window_text(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode, int64_t out)
{
    char *ext = d == 1 ? xprintf("%lld", (long long)k) : xprintf("(%lld*(%lld-1) + 1)", (long long)d, (long long)k);
    char *q = xprintf("(%lld + 2*%lld - %s)/%lld", (long long)in, (long long)p, ext, (long long)s);
    return xprintf("%s%s%s + 1 = %lld", ceil_mode ? "ceil(" : "", q, ceil_mode ? ")" : "", (long long)out);
}

static void explain_node(FILE *out, const Graph *g, const Node *n)
{
    const Shape *in = n->nin ? &g->nodes[n->in[0]].shape : NULL;
    const Layer *l = n->layer;
    fprintf(out, "%-14s %-12s ", n->label, op_name(n->op));
    if (in)
        fprintf(out, "%s -> ", shape_str(in));
    fprintf(out, "%s   (line %d)\n", shape_str(&n->shape), n->span.first_line);
    const char *pad = "    ";
    switch (n->op) {
    case OP_INPUT:
        fprintf(out, "%sdeclared; the batch dimension N comes first at run time\n", pad);
        break;
    case OP_CONV2D:
        fprintf(out, "%schannels: %lld out, %lld in (%s)%s\n", pad, (long long)l->out, (long long)l->in,
                l->in_span.first_line ? "as written, checked" : "inferred from the input",
                l->groups > 1 ? xprintf(", %lld groups", (long long)l->groups) : "");
        for (int a = 0; a < 2; a++)
            fprintf(out, "%s%s: %s\n", pad, a ? "width " : "height",
                    window_text(in->dim[1 + a], l->kernel[a], l->stride[a], l->pad[a], l->dil[a], false,
                                n->shape.dim[1 + a]));
        fprintf(out, "%sweight [%lld, %lld, %lld, %lld]%s\n", pad, (long long)l->out, (long long)(l->in / l->groups),
                (long long)l->kernel[0], (long long)l->kernel[1], l->bias ? xprintf(", bias [%lld]", (long long)l->out) : "");
        break;
    case OP_LINEAR:
        fprintf(out, "%sfeatures: %lld in (%s), %lld out; weight [%lld, %lld]\n", pad, (long long)l->in,
                l->in_span.first_line ? "as written, checked" : "inferred from the input", (long long)l->out,
                (long long)l->out, (long long)l->in);
        break;
    case OP_BATCHNORM1D:
    case OP_BATCHNORM2D:
        fprintf(out, "%snormalises each of %lld channels (%s); shape unchanged\n", pad, (long long)l->in,
                l->in_span.first_line ? "as written, checked" : "inferred from the input");
        break;
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D:
        for (int a = 0; a < 2; a++)
            fprintf(out, "%s%s: %s\n", pad, a ? "width " : "height",
                    window_text(in->dim[1 + a], n->kernel[a], n->stride[a], n->pad[a], 1, n->ceil_mode,
                                n->shape.dim[1 + a]));
        break;
    case OP_ADAPTIVE_AVGPOOL2D:
        fprintf(out, "%soutput size %lld x %lld as asked; each cell averages a window of about %lld x %lld\n", pad,
                (long long)n->size[0], (long long)n->size[1], (long long)((in->dim[1] + n->size[0] - 1) / n->size[0]),
                (long long)((in->dim[2] + n->size[1] - 1) / n->size[1]));
        break;
    case OP_FLATTEN: {
        fprintf(out, "%s", pad);
        for (int i = 0; i < in->ndim; i++)
            fprintf(out, "%s%lld", i ? "*" : "", (long long)in->dim[i]);
        fprintf(out, " = %lld features\n", (long long)n->shape.dim[0]);
        break;
    }
    case OP_ADD:
        fprintf(out, "%selementwise sum of two values of shape %s\n", pad, shape_str(&n->shape));
        break;
    case OP_CONCAT:
        fprintf(out, "%schannels: ", pad);
        for (int i = 0; i < n->nin; i++)
            fprintf(out, "%s%lld", i ? " + " : "", (long long)g->nodes[n->in[i]].shape.dim[0]);
        fprintf(out, " = %lld\n", (long long)n->shape.dim[0]);
        break;
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
        fprintf(out, "%snormalised along dim %d (size %lld); shape unchanged\n", pad, n->dim,
                (long long)n->shape.dim[n->dim - 1]);
        break;
    default:
        fprintf(out, "%selementwise; shape unchanged\n", pad);
        break;
    }
}

void explain_shapes(FILE *out, const Graph *g)
{
    fprintf(out, "Shapes of model %s, per sample (the batch N is left out):\n\n", g->name);
    for (int i = 0; i < g->nnodes; i++)
        explain_node(out, g, &g->nodes[i]);
    const Node *o = &g->nodes[g->output];
    if (g->classes)
        fprintf(out, "\nloss %s: output %s against a class index in [0, %d) per sample\n", loss_name(g->loss),
                shape_str(&o->shape), g->classes);
    else
        fprintf(out, "\nloss %s: output %s against target %s\n", loss_name(g->loss), shape_str(&o->shape),
                shape_str(&g->target));
}

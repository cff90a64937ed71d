/* explain.c — `nnc --explain-shapes`: how every shape was derived.
 *
 * For each value forward computes: the operation, the shape that came in and
 * the shape that came out, and the arithmetic that got there, with the
 * numbers filled in — `(32 + 2*0 - 5)/1 + 1 = 28` — so that a user can carry
 * the sizes back into PyTorch code or check them by hand. Reads the graph
 * after shape inference; computes nothing new. The lines under each shape
 * are its operation's (OpDef.explain).
 */
#include "nnc.h"

#include <string.h>

/* "(32 + 2*1 - 3)/2 + 1 = 16": one spatial axis of a window operation; the
 * division rounds down (PyTorch), or up in ceil mode */
char *explain_window(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode, int64_t out)
{
    char *ext = d == 1 ? xprintf("%lld", (long long)k) : xprintf("(%lld*(%lld-1) + 1)", (long long)d, (long long)k);
    char *q = xprintf("(%lld + 2*%lld - %s)/%lld", (long long)in, (long long)p, ext, (long long)s);
    return xprintf("%s%s%s + 1 = %lld", ceil_mode ? "ceil(" : "", q, ceil_mode ? ")" : "", (long long)out);
}

static void explain_node(FILE *out, const Graph *g, const Node *n)
{
    const Shape *in = n->nin ? &g->nodes[n->in[0]].shape : NULL;
    fprintf(out, "%-14s %-12s ", n->label, op_name(n->op));
    if (in)
        fprintf(out, "%s -> ", shape_str(in));
    fprintf(out, "%s   (line %d)\n", shape_str(&n->shape), n->span.first_line);
    const OpDef *d = op_def(n->op);
    if (d->explain)
        d->explain(out, g, n);
    else
        fprintf(out, "    elementwise; shape unchanged\n");
}

void explain_shapes(FILE *out, const Graph *g)
{
    fprintf(out, "Shapes of model %s, per sample (the batch N is left out):\n\n", g->name);
    for (int i = 0; i < g->nnodes; i++)
        explain_node(out, g, &g->nodes[i]);
    const Node *o = &g->nodes[g->output];
    if (g->classes && g->target.ndim)
        fprintf(out, "\nloss %s: output %s against a class index in [0, %d) at each of %lld positions, the mean "
                "over all\n", loss_name(g->loss), shape_str(&o->shape), g->classes, (long long)g->target.dim[0]);
    else if (g->classes)
        fprintf(out, "\nloss %s: output %s against a class index in [0, %d) per sample\n", loss_name(g->loss),
                shape_str(&o->shape), g->classes);
    else
        fprintf(out, "\nloss %s: output %s against target %s\n", loss_name(g->loss), shape_str(&o->shape),
                shape_str(&g->target));
}

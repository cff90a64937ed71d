/* emit.c — writes the checked graph as one standalone, readable C file.
 *
 * The file holds everything specific to the model: its sizes as constants,
 * a table of its parameters under PyTorch's state_dict names, its state as
 * a few blocks allocated once (parameters, gradients, buffers, optimizer
 * state, scratch, the activation arena), each layer's kernel dims as one
 * constant, the functions forward / loss / backward / zero_grad / step /
 * save / load, and a main() — the trainer — that -DNNC_NO_MAIN leaves out so
 * the model can be embedded. The arithmetic is in the runtime's kernels
 * (runtime/nnrt.h); main() and save / load use its host side
 * (runtime/host/nnrt_host.h), which an embedded model leaves out. The
 * header comment lists the arena's buffers with their lifetimes (plan.c),
 * which say why buffers that share memory are safe.
 *
 * Each node's kernel calls are its operation's (OpDef.emit_forward and
 * emit_backward, in compiler/ops/, with the writers of emit.h). Each
 * function body is first written to a buffer while the names it uses are
 * recorded, so that only those get a local: the output has no unused
 * variables, and every pointer is named after the model's value or the
 * parameter's state_dict name.
 */
#include "nnc.h"
#include "emit.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void out(Emit *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
}

/* the value of node id, as a C expression; records the use */
const char *V(Emit *e, int id)
{
    e->use_v[id] = true;
    return xprintf("v_%s", e->vname[id]);
}

/* the gradient of node id, or NULL when backward does not need it */
const char *D(Emit *e, int id)
{
    if (!e->g->nodes[id].needs_grad)
        return "NULL";
    e->use_d[id] = true;
    return xprintf("d_%s", e->vname[id]);
}

/* a pointer to node n's kernels' dims at batch n ("&conv1_dims"; the
 * constant is the op's dims emitter's); records the use */
const char *DIMS(Emit *e, const Node *n)
{
    e->use_dims[n->id] = true;
    return xprintf("&%s", e->dname[n->id]);
}

/* a float literal: 0.01f, 1.0f, 1e-08f */
char *F(double v)
{
    char *t = xprintf("%.9g", v);
    return strpbrk(t, ".en") ? xprintf("%sf", t) : xprintf("%s.0f", t);
}

/* "[n, 6, 28, 28]": a shape with the batch */
char *nshape(const Shape *s)
{
    return xprintf("[n, %s", shape_str(s) + 1);
}
/* the layer's parameter called what ("weight", "running_mean"), or NULL */
const Param *lparam(const Node *n, const char *what)
{
    size_t k = strlen(n->layer->name);
    for (int i = 0; i < n->layer->nparams; i++)
        if (strcmp(n->layer->params[i].name + k + 1, what) == 0)
            return &n->layer->params[i];
    return NULL;
}
const Param *weight(const Node *n) { return lparam(n, "weight"); }
const Param *bias(const Node *n) { return lparam(n, "bias"); }

/* the node whose memory holds n's value (itself unless n is a view) */
int storage(const Graph *g, int id)
{
    while (g->nodes[id].alias >= 0)
        id = g->nodes[id].alias;
    return id;
}

/* a max-pool's choices (plan.c: argmax), bytes in the arena */
const char *pool_codes(Emit *e, const Node *n)
{
    (void)e;
    return xprintf("(unsigned char *)(m->act + B * %zu)", n->aux);
}

/* A tensor of the state_dict by its name: "conv1_weight" (in m->param, or
 * m->buf for a buffer), or "grad" its gradient, "conv1_weight_grad"; NULL
 * for none. Records the use. */
const char *param_ptr(Emit *e, const char *block, const Param *p)
{
    if (!p)
        return "NULL";
    int k = namemap_get(&e->pindex, p->name);
    assert(k >= 0);
    if (!strcmp(block, "grad") && !p->buffer) {
        e->use_g[k] = true;
        return xprintf("%s_grad", e->pname[k]);
    }
    e->use_p[k] = true;
    return e->pname[k];
}

/* a comment line: conv1: conv2d [n, 1, 32, 32] -> [n, 6, 28, 28]  (line 13) */
static void node_comment(Emit *e, const Node *n, const char *what)
{
    const Shape *in = &e->g->nodes[n->in[0]].shape;
    out(e, "    /* %s%s: %s %s -> %s  (line %d) */\n", what, e->vname[n->id], op_name(n->op), nshape(in),
        nshape(&n->shape), n->span.first_line);
}

/* floats per sample in n's value */
size_t node_numel(const Node *n)
{
    return (size_t)shape_numel(&n->shape);
}

const char *node_rows(const Node *n)
{
    int64_t rows = shape_numel(&n->shape) / n->shape.dim[n->shape.ndim - 1];
    return rows == 1 ? "n" : xprintf("n * %lld", (long long)rows);
}

/* how many nodes apply layer l */
int layer_uses(const Graph *g, const Layer *l)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        k += g->nodes[i].layer == l;
    return k;
}

/* Whether node n's backward is the first to write its layer's gradients
 * (backward runs in reverse, so a layer applied twice is written last by
 * its first application). zero_grad only marks the gradients as zero
 * (m->grad_zero); the first write then assigns them: the kernel does
 * (linear), or, with zeroes, the gradients are cleared just before (zero:
 * the small ones of convolutions and batch norms). */
bool first_grads(Emit *e, const Node *n, bool zero)
{
    size_t l = (size_t)(n->layer - e->g->layers);
    if (e->grad_written[l])
        return false;
    e->grad_written[l] = true;
    int nz = 0;
    for (int k = 0; zero && k < n->layer->nparams; k++)
        nz += !n->layer->params[k].buffer;
    if (nz)
        out(e, "    if (m->grad_zero) {\n");
    for (int k = 0; zero && k < n->layer->nparams; k++) {
        const Param *p = &n->layer->params[k];
        if (!p->buffer)
            out(e, "        memset(%s, 0, sizeof(float) * %zu);\n", param_ptr(e, "grad", p), p->numel);
    }
    if (nz)
        out(e, "    }\n");
    return true;
}

/* ---- the nodes: each one's C, as its operation writes it (OpDef, compiler/ops/) ---- */

static void emit_forward_node(Emit *e, const Node *n)
{
    if (n->op == OP_INPUT)
        return;
    node_comment(e, n, "");
    assert(op_def(n->op)->emit_forward);
    op_def(n->op)->emit_forward(e, n);
}

/* backward of one node: the gradients of its inputs (where needed) and of its
 * layer's parameters, from its own gradient */
static void emit_backward_node(Emit *e, const Node *n)
{
    if (n->op == OP_INPUT || !n->needs_grad)
        return;
    if (!e->g->nodes[n->in[0]].needs_grad && !op_def(n->op)->backward_always)
        return;
    node_comment(e, n, "d ");
    assert(op_def(n->op)->emit_backward);
    op_def(n->op)->emit_backward(e, n);
}
/* ---- names ---- */


/* a C name not yet taken: name, or name with `_` added until it is free */
static char *fresh(NameMap *taken, char *name)
{
    while (namemap_get(taken, name) >= 0)
        name = xprintf("%s_", name);
    namemap_put(taken, name, 1);
    return name;
}

/* The generated functions' local names. Values are named after their layer
 * or operation; repeated ones get _1, _2, and a name another value already
 * has (a layer called relu_1) gets a `_` more. Their value is v_NAME, their
 * gradient d_NAME, their kernels' dims NAME_dims. The tensors of the
 * state_dict are named after it with `_` for `.` (conv1_weight, its
 * gradient conv1_weight_grad). A name already taken gets a `_` more. */
static void name_values(Emit *e)
{
    const Graph *g = e->g;
    NameMap count = {0}, seen = {0}, labels = {0}, taken = {0};
    static const char *const fixed[] = {"B", "n", "m", "lr", "step", "input", "rng", "target"};
    for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++)
        namemap_put(&taken, fixed[k], 1);
    for (int i = 0; i < g->nnodes; i++) {
        int c = namemap_get(&count, g->nodes[i].label);
        namemap_put(&count, g->nodes[i].label, c < 0 ? 1 : c + 1);
    }
    e->vname = xalloc(sizeof(char *) * (size_t)g->nnodes);
    e->dname = xalloc(sizeof(char *) * (size_t)g->nnodes);
    for (int i = 0; i < g->nnodes; i++) {
        const char *label = g->nodes[i].label;
        int index = namemap_get(&seen, label);
        index = index < 0 ? 1 : index + 1;
        namemap_put(&seen, label, index);
        char *name = namemap_get(&count, label) == 1 ? xprintf("%s", label) : xprintf("%s_%d", label, index);
        while (namemap_get(&labels, name) >= 0)
            name = xprintf("%s_", name);
        namemap_put(&labels, name, i);
        e->vname[i] = name;
        namemap_put(&taken, xprintf("v_%s", name), 1);
        namemap_put(&taken, xprintf("d_%s", name), 1);
    }
    for (int i = 0; i < g->nnodes; i++)
        e->dname[i] = fresh(&taken, xprintf("%s_dims", e->vname[i]));
    int nt = 0;
    for (int l = 0; l < g->nlayers; l++)
        nt += g->layers[l].nparams;
    e->pname = xalloc(sizeof(char *) * (size_t)(nt + 1));
    e->use_p = xalloc(sizeof(bool) * (size_t)(nt + 1));
    e->use_g = xalloc(sizeof(bool) * (size_t)(nt + 1));
    int k = 0;
    for (int l = 0; l < g->nlayers; l++)
        for (int q = 0; q < g->layers[l].nparams; q++, k++) {
            const Param *p = &g->layers[l].params[q];
            char *name = xstrdup(p->name);
            for (char *c = name; *c; c++)
                if (!isalnum((unsigned char)*c))
                    *c = '_';
            while (namemap_get(&taken, name) >= 0 || namemap_get(&taken, xprintf("%s_grad", name)) >= 0)
                name = xprintf("%s_", name);
            namemap_put(&taken, name, 1);
            namemap_put(&taken, xprintf("%s_grad", name), 1);
            e->pname[k] = name;
            namemap_put(&e->pindex, p->name, k);
        }
}

static char *upper(const char *s)
{
    char *u = xstrdup(s);
    for (char *p = u; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return u;
}

/* ---- function bodies, written to a buffer ---- */

typedef struct Buf { char *text; size_t len; FILE *f; FILE *saved; } Buf;

static int count_tensors(const Graph *g);

static void buf_begin(Emit *e, Buf *b)
{
    memset(e->use_v, 0, sizeof(bool) * (size_t)e->g->nnodes);
    memset(e->use_d, 0, sizeof(bool) * (size_t)e->g->nnodes);
    memset(e->use_dims, 0, sizeof(bool) * (size_t)e->g->nnodes);
    memset(e->use_p, 0, sizeof(bool) * (size_t)count_tensors(e->g));
    memset(e->use_g, 0, sizeof(bool) * (size_t)count_tensors(e->g));
    b->f = open_memstream(&b->text, &b->len);
    if (!b->f) {
        diag_fatal_plain("cannot create a memory buffer");
        exit(1);
    }
    b->saved = e->out;
    e->out = b->f;
}

/* Declares what the body used (the parameters by name, the values and
 * gradients, the kernels' dims at the batch n), then writes the body. */
static void buf_end(Emit *e, Buf *b, const char *input_expr)
{
    fclose(b->f);
    e->out = b->saved;
    const Graph *g = e->g;
    int k = 0;
    for (int l = 0; l < g->nlayers; l++)
        for (int q = 0; q < g->layers[l].nparams; q++, k++) {
            const Param *p = &g->layers[l].params[q];
            const char *sh = shape_str(&p->shape);
            if (e->use_p[k] && p->count)
                out(e, "    int64_t *%s = m->counts + %zu; /* %s */\n", e->pname[k], p->offset, sh);
            else if (e->use_p[k])
                out(e, "    float *%s = m->%s + %zu; /* %s */\n", e->pname[k], p->buffer ? "buf" : "param",
                    p->offset, sh);
            if (e->use_g[k])
                out(e, "    float *%s_grad = m->grad + %zu;\n", e->pname[k], p->offset);
        }
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        const char *sh = nshape(&n->shape);
        if (e->use_v[i]) {
            if (n->op == OP_INPUT)
                out(e, "    const float *v_%s = %s; /* %s input */\n", e->vname[i], input_expr, sh);
            else if (g->nodes[storage(g, i)].op == OP_INPUT)
                out(e, "    const float *v_%s = %s; /* %s a view of the input */\n", e->vname[i], input_expr, sh);
            else
                out(e, "    float *v_%s = m->act + B * %zu; /* %s */\n", e->vname[i], n->offset, sh);
        }
        if (e->use_d[i])
            out(e, "    float *d_%s = m->act + B * %zu; /* %s gradient */\n", e->vname[i], n->goffset, sh);
    }
    for (int i = 0; i < g->nnodes; i++)
        if (e->use_dims[i]) {
            const char *t = op_def(g->nodes[i].op)->dims;
            out(e, "    const nnrt_%s_dims %s = nnrt_%s_batch(%s_%s, n);\n", t, e->dname[i], t, e->M, e->dname[i]);
        }
    fwrite(b->text, 1, b->len, e->out);
    free(b->text);
}

/* The dims of every node's kernels, one constant each, at batch 0 */
static void emit_dims_constants(Emit *e)
{
    const Graph *g = e->g;
    bool any = false;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        if (!op_def(n->op)->dims)
            continue;
        if (!any)
            out(e, "/* The dims of each layer's kernels, at batch 0: each call gives them its\n"
                   " * batch (nnrt_conv2d_batch, ...). Their flags are the plan's fusions. */\n");
        any = true;
        out(e, "static const nnrt_%s_dims %s_%s = {", op_def(n->op)->dims, e->M, e->dname[i]);
        op_def(n->op)->emit_dims(e, n);
        out(e, "};\n");
    }
    if (any)
        out(e, "\n");
}

/* ---- the parts of the file ---- */

/* a step of the plan's timeline: "fwd conv1", "loss", "bwd fc2", "end" */
static char *step_name(Emit *e, int t)
{
    int N = e->g->nnodes;
    if (t < N)
        return xprintf("fwd %s", e->vname[t]);
    if (t == N)
        return xstrdup("loss");
    if (t < 2 * N)
        return xprintf("bwd %s", e->vname[2 * N - t]);
    return xstrdup(t == 2 * N ? "end" : "next forward");
}

/* what a buffer of the plan holds: "conv1 (= relu_1)", "d fc1", "mask of dropout" */
static char *buffer_name(Emit *e, const PlanBuffer *b)
{
    const Graph *g = e->g;
    const char *v = e->vname[b->node];
    if (b->kind == BUF_GRAD)
        return xprintf("d %s", v);
    if (b->kind == BUF_MASK)
        return xprintf("%s of %s", op_def(g->nodes[b->node].op)->mask ? "mask" : "saved", v);
    if (b->kind == BUF_CHOICES)
        return xprintf("choices of %s", v);
    char *s = xstrdup(v);
    int views = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (i != b->node && storage(g, i) == b->node)
            s = xprintf("%s%s%s", s, views++ ? ", " : " (= ", e->vname[i]);
    return views ? xprintf("%s)", s) : s;
}

/* The arena's buffers, where each lives and when: the plan's lifetimes,
 * which are why buffers that share memory are safe. */
static void emit_lifetimes(Emit *e)
{
    const Graph *g = e->g;
    int wn = 6, wf = 10;    /* the widths of the columns buffer and from (at most 24) */
    char **name = xalloc(sizeof(char *) * (size_t)(g->nbuffers + 1));
    char **from = xalloc(sizeof(char *) * (size_t)(g->nbuffers + 1));
    for (int i = 0; i < g->nbuffers; i++) {
        name[i] = buffer_name(e, &g->buffers[i]);
        from[i] = step_name(e, g->buffers[i].start);
        wn = strlen(name[i]) > (size_t)wn ? (int)strlen(name[i]) : wn;
        wf = strlen(from[i]) > (size_t)wf ? (int)strlen(from[i]) : wf;
        wn = wn > 24 ? 24 : wn;
        wf = wf > 24 ? 24 : wf;
    }
    out(e, " * The activation arena, per sample (m->act, B floats for each): every value,\n"
           " * gradient (d), dropout mask and max-pool's choices (bytes), by offset, with\n"
           " * its lifetime in a step: from the forward (fwd) of a node or the loss to\n"
           " * the backward (bwd) of one, the end of backward, or the next forward.\n"
           " * Buffers that share memory are never alive at the same time.\n"
           " *   %-15s  %-*s  %-*s  %s\n", "floats", wn, "buffer", wf, "alive from", "to");
    for (int i = 0; i < g->nbuffers; i++) {
        const PlanBuffer *b = &g->buffers[i];
        char *range = xprintf("[%zu, %zu)", b->offset, b->offset + b->size);
        out(e, " *   %-15s  %-*s  %-*s  %s\n", range, wn, name[i], wf, from[i], step_name(e, b->end));
    }
}

static void emit_header(Emit *e, const char *src)
{
    const Graph *g = e->g;
    out(e, "/* %s.c — the model `%s`, compiled by nnc %s\n * from %s.\n", e->M, g->name, NNC_VERSION, src);
    out(e, " *\n"
           " * Generated code: change the model and run nnc again rather than editing this.\n"
           " * Build the trainer (main() and the checkpoints use the host library):\n"
           " *     cc -O2 %s.c -I<nnc>/runtime -I<nnc>/runtime/host <nnc>/build/libnnrt-host.a \\\n"
           " *         <nnc>/build/libnnrt.a -lcjson -lz -lm -lpthread -o %s\n"
           " * or, after make install:\n"
           " *     cc -O2 %s.c $(pkg-config --cflags --libs nnrt-host) -o %s\n"
           " * Embed the model in another program: compile with -DNNC_NO_MAIN and use the\n"
           " * %s_* functions below; it then needs only the kernels, nnrt.h and\n"
           " *     <nnc>/build/libnnrt.a -lm -lpthread   or   $(pkg-config --libs nnrt).\n"
           " * %s_save and %s_load (safetensors checkpoints) are left out with it\n"
           " * unless -DNNC_CHECKPOINTS is given too, which needs the host library.\n"
           " *\n",
        e->M, e->M, e->M, e->M, e->M, e->M, e->M);
    summary_print(e->out, g, " * ");
    if (g->nbuffers) {
        out(e, " *\n");
        emit_lifetimes(e);
    }
    out(e, " */\n"
           "#include <math.h>\n"
           "#include <stdio.h>\n"
           "#include <stdlib.h>\n"
           "#include <string.h>\n"
           "\n"
           "#include \"nnrt.h\"\n"
           "#if !defined(NNC_NO_MAIN) || defined(NNC_CHECKPOINTS)\n"
           "#include \"nnrt_host.h\"   /* main() and the checkpoints: libnnrt-host.a */\n"
           "#endif\n\n");
}

static int count_tensors(const Graph *g)
{
    int n = 0;
    for (int i = 0; i < g->nlayers; i++)
        n += g->layers[i].nparams;
    return n;
}

static int count_trainable(const Graph *g)
{
    int n = 0;
    for (int i = 0; i < g->nlayers; i++)
        for (int p = 0; p < g->layers[i].nparams; p++)
            n += !g->layers[i].params[p].buffer;
    return n;
}

/* optimizer state tensors per trainable parameter: momentum buffer, or Adam's two moments */
static int opt_slots(const Graph *g)
{
    return g->opt == OPT_SGD ? (g->momentum > 0) : 2;
}

static int count_state(const Graph *g)
{
    return count_trainable(g) * opt_slots(g) + 1;   /* + the step counter */
}

static void emit_sizes(Emit *e)
{
    const Graph *g = e->g;
    const Node *in = &g->nodes[g->input], *o = &g->nodes[g->output];
    out(e, "/* Sizes per sample; the batch n is chosen at run time. */\n");
    out(e, "#define %s_INPUT_SIZE  %lld /* %s: %s */\n", e->U, (long long)shape_numel(&in->shape), in->label,
        shape_str(&in->shape));
    out(e, "#define %s_OUTPUT_SIZE %lld /* %s */\n", e->U, (long long)shape_numel(&o->shape), shape_str(&o->shape));
    if (g->classes && g->target.ndim)
        out(e, "#define %s_TARGET_SIZE %lld /* a class index in [0, %d) at each position, as a float */\n", e->U,
            (long long)shape_numel(&g->target), g->classes);
    else if (g->classes)
        out(e, "#define %s_TARGET_SIZE 1 /* a class index in [0, %d), as a float */\n", e->U, g->classes);
    else
        out(e, "#define %s_TARGET_SIZE %lld /* %s */\n", e->U, (long long)shape_numel(&g->target),
            shape_str(&g->target));
    if (g->classes)
        out(e, "#define %s_CLASSES     %d /* a target is a class index below this */\n", e->U, g->classes);
    if (in->vocab > 0)
        out(e, "#define %s_VOCAB       %lld /* the input is token ids below this, as floats */\n", e->U,
            (long long)in->vocab);
    out(e, "#define %s_NPARAM      %zu /* floats in the parameter block */\n", e->U, g->nparam);
    out(e, "#define %s_NBUF        %zu /* floats in the buffer block (running statistics) */\n", e->U, g->nbuf);
    out(e, "#define %s_NOPT        %zu /* floats of optimizer state */\n", e->U, g->nopt);
    out(e, "#define %s_NSCRATCH    %zu /* floats of scratch kept from forward for backward */\n", e->U, g->nscratch);
    out(e, "#define %s_NCOUNT      %zu /* int64 counts (batch norms' num_batches_tracked) */\n", e->U, g->ncount);
    out(e, "#define %s_NACT        %zu /* floats per sample in the activation block */\n", e->U, g->nact);
    out(e, "#define %s_NTENSORS    %d /* tensors in the state_dict */\n", e->U, count_tensors(g));
    out(e, "#define %s_NTRAINABLE  %d /* of which parameters with a gradient */\n", e->U, count_trainable(g));
    out(e, "#define %s_NSTATE      %d /* optimizer state tensors in a checkpoint */\n\n", e->U, count_state(g));
}

static void emit_state(Emit *e)
{
    const Graph *g = e->g;
    const Shape *in = &g->nodes[g->input].shape, *o = &g->nodes[g->output].shape;
    out(e, "/* The model's state: a few blocks, allocated once by %s_init. */\n", e->M);
    out(e, "typedef struct %s {\n", e->M);
    out(e, "    int batch;           /* capacity: samples per step, at most */\n"
           "    int n;               /* samples in the last forward (<= batch) */\n"
           "    int training;        /* 1 (the default): dropout and batch norm train; 0: evaluate */\n"
           "    uint64_t seed;       /* of the initial weights and of dropout's masks */\n"
           "    float *param;        /* %s_NPARAM floats: weights and biases, in state_dict order */\n"
           "    float *grad;         /* %s_NPARAM floats: d loss / d param, same layout */\n"
           "    float *buf;          /* %s_NBUF floats: batch norm's running statistics */\n"
           "    float *opt;          /* %s_NOPT floats: the optimizer's state, laid out as param */\n"
           "    float *scratch;      /* %s_NSCRATCH floats: batch statistics kept for backward */\n"
           "    float *act;          /* batch * %s_NACT floats: the arena of values, gradients and masks */\n"
           "    float *work;         /* the kernels' scratch, planned for the batch and the threads */\n"
           "    const float *input;  /* the last forward's input %s */\n"
           "    const float *target; /* the last loss's target %s */\n"
           "    float *output;       /* the output %s, inside act */\n"
           "    float loss;          /* the last loss */\n"
           "    int64_t steps;       /* optimizer steps taken (a checkpoint holds it as I64) */\n"
           "    int64_t counts[%zu];  /* %s_NCOUNT counts: batch norms' num_batches_tracked */\n"
           "    int grad_zero;       /* 1 after zero_grad: the gradients are zero, but not yet written\n"
           "                          * (backward's first writes assign them) */\n"
           "    int nan_check;       /* 1: forward checks every value and names the first non-finite one */\n"
           "    const char *nonfinite; /* that value's layer or operation, and its line; NULL if none */\n"
           "} %s;\n\n",
        e->U, e->U, e->U, e->U, e->U, e->U, nshape(in),
        g->classes ? xprintf("%s (class indices)", g->target.ndim ? nshape(&g->target) : "[n]") : nshape(&g->target),
        nshape(o), g->ncount > 0 ? g->ncount : 1, e->U, e->M);

    out(e, "/* The state_dict: parameters (gradient in the same place of m->grad) and\n"
           " * buffers, under PyTorch's names, with PyTorch's layouts (conv weight\n"
           " * [out, in, kh, kw], linear weight [out, in]) and default initialisation. */\n");
    out(e, "static const struct %s_param {\n"
           "    const char *name;\n"
           "    int ndim;\n"
           "    int64_t shape[4];\n"
           "    int buffer;           /* 0: in m->param (trained); 1: in m->buf; 2: in m->counts */\n"
           "    size_t offset, numel; /* floats, into that block */\n"
           "    int init;             /* NNRT_INIT_UNIFORM in (-bound, bound), as PyTorch: bound = 1/sqrt(fan_in);\n"
           "                           * NNRT_INIT_NORMAL N(0, bound^2) */\n"
           "    float bound;\n"
           "} %s_params[%d] = {\n", e->M, e->M, count_tensors(g));
    static const char *const inits[] = {"NNRT_INIT_UNIFORM", "NNRT_INIT_ZERO", "NNRT_INIT_ONE", "NNRT_INIT_NORMAL"};
    for (int i = 0; i < g->nlayers; i++)
        for (int p = 0; p < g->layers[i].nparams; p++) {
            const Param *q = &g->layers[i].params[p];
            out(e, "    {\"%s\", %d, {", q->name, q->shape.ndim);
            for (int d = 0; d < q->shape.ndim; d++)
                out(e, "%s%lld", d ? ", " : "", (long long)q->shape.dim[d]);
            if (q->shape.ndim == 0)
                out(e, "0");     /* a scalar: no dimension (C has no empty initializer) */
            out(e, "}, %d, %zu, %zu, %s, %s},\n", q->count ? 2 : q->buffer, q->offset, q->numel, inits[q->init],
                F(q->bound));
        }
    out(e, "};\n\n");
    emit_dims_constants(e);
}

/* the values forward checks for m->nan_check: every one with memory of its own */
static bool checked(const Node *n)
{
    return n->op != OP_INPUT && n->alias < 0;
}

/* Does node j's forward write memory (its value, mask or choices) that
 * checked value v lives in? Then v is checked before j runs. */
static bool overwrites(const Graph *g, int j, int v)
{
    const Node *x = &g->nodes[v];
    size_t lo = x->offset, hi = x->offset + node_numel(x);
    for (int b = 0; b < g->nbuffers; b++) {
        const PlanBuffer *w = &g->buffers[b];
        if (w->node == j && w->kind != BUF_GRAD && w->offset < hi && lo < w->offset + w->size)
            return true;
    }
    return false;
}

/* The table of the values forward checks, and the check: a call checks the
 * values [from, to), all still in their memory, in order */
static void emit_check(Emit *e)
{
    const Graph *g = e->g;
    out(e, "/* The values forward checks when m->nan_check is on, in order: name and\n"
           " * line, place in the arena and floats, per sample. */\n");
    out(e, "static const struct %s_value {\n"
           "    const char *name;\n"
           "    size_t offset, numel;\n"
           "} %s_checked[] = {\n", e->M, e->M);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        if (checked(n))
            out(e, "    {\"%s (line %d)\", %zu, %zu},\n", e->vname[i], n->span.first_line, n->offset, node_numel(n));
    }
    out(e, "};\n\n");
    out(e, "/* Names in m->nonfinite the first of the checked values [from, to) of\n"
           " * forward that holds a NaN or an infinity, unless one is named already.\n"
           " * Forward calls it before a value's memory is used again, and at its end. */\n"
           "static void %s_check(%s *m, int n, int from, int to)\n{\n"
           "    const size_t B = (size_t)m->batch;\n"
           "    for (int i = from; i < to && !m->nonfinite; i++) {\n"
           "        const float *p = m->act + B * %s_checked[i].offset;\n"
           "        for (size_t k = 0; k < (size_t)n * %s_checked[i].numel; k++)\n"
           "            if (!isfinite(p[k])) {\n"
           "                m->nonfinite = %s_checked[i].name;\n"
           "                break;\n"
           "            }\n"
           "    }\n}\n\n", e->M, e->M, e->M, e->M, e->M);
}

/* the first batch norm that has one value per channel and sample, or NULL */
static const Node *one_per_channel(const Graph *g)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        if ((n->op == OP_BATCHNORM1D || n->op == OP_BATCHNORM2D) && node_numel(n) == (size_t)n->shape.dim[0])
            return n;
    }
    return NULL;
}

static void emit_forward(Emit *e)
{
    const Graph *g = e->g;
    Buf b;
    int nchecked = 0;
    for (int i = 0; i < g->nnodes; i++)
        nchecked += checked(&g->nodes[i]);
    if (nchecked)
        emit_check(e);
    out(e, "/* Forward, as `output = net(input)`: input %s -> output %s.\n"
           " * n: 0 to m->batch samples; returns the output (inside m->act). A batch\n"
           " * larger than the one %s_init planned for is refused, with a message on\n"
           " * stderr: forward returns NULL and changes nothing. */\n",
        nshape(&g->nodes[g->input].shape), nshape(&g->nodes[g->output].shape), e->M);
    out(e, "float *%s_forward(%s *m, const float *input, int n)\n{\n", e->M, e->M);
    out(e, "    const size_t B = (size_t)m->batch; /* the blocks are laid out for the capacity */\n");
    buf_begin(e, &b);
    out(e, "\n");
    out(e, "    if (n < 0 || n > m->batch) {\n"
           "        fprintf(stderr, \"%s_forward: a batch of %%d samples, but the model was made for at \"\n"
           "                \"most %%d (%s_init)\\n\", n, m->batch);\n"
           "        return NULL;\n"
           "    }\n", e->M, e->M);
    const Node *bn = one_per_channel(g);
    if (bn)
        out(e, "    if (m->training && n == 1) {    /* as PyTorch: the batch's variance would be 0/0 */\n"
               "        fprintf(stderr, \"%s_forward: batch norm `%s` (line %d) cannot train on a batch of 1, \"\n"
               "                \"one value per channel (PyTorch: Expected more than 1 value per channel \"\n"
               "                \"when training)\\n\");\n"
               "        return NULL;\n"
               "    }\n", e->M, bn->layer->name, bn->span.first_line);
    out(e, "    m->nonfinite = NULL;\n");
    int from = 0, to = 0;       /* the checked values not yet checked: [from, to) */
    int *which = xalloc(sizeof(int) * (size_t)(nchecked + 1));
    for (int i = 0; i < g->nnodes; i++) {
        const Node *nd = &g->nodes[i];
        bool reuse = false;
        for (int k = from; k < to && !reuse; k++)
            reuse = overwrites(g, i, which[k]);
        if (reuse) {
            out(e, "    if (m->nan_check)    /* %s writes where values above are: check them first */\n"
                   "        %s_check(m, n, %d, %d);\n", e->vname[i], e->M, from, to);
            from = to;
        }
        emit_forward_node(e, nd);
        if (checked(nd))
            which[to++] = i;
    }
    if (to > from)
        out(e, "    if (m->nan_check)\n        %s_check(m, n, %d, %d);\n", e->M, from, to);
    out(e, "\n    m->input = input;\n    m->n = n;\n    m->output = %s;\n    return m->output;\n}\n\n",
        V(e, g->output));
    buf_end(e, &b, "input");
}

/* a double literal that reads back as v exactly: 0.999, 1e-08 */
static char *dbl(double v)
{
    for (int digits = 15; digits < 17; digits++) {
        char *t = xprintf("%.*g", digits, v);
        if (strtod(t, NULL) == v)
            return strpbrk(t, ".en") ? t : xprintf("%s.0", t);
    }
    char *t = xprintf("%.17g", v);
    return strpbrk(t, ".en") ? t : xprintf("%s.0", t);
}

/* the loss's arguments after the output: "m->target, (size_t)n * 10" or "m->target, n, 10" */
static const char *loss_args(const Graph *g, const char *U, const char *nexpr)
{
    if (g->classes && g->target.ndim)   /* one class a position: the rows are n * T */
        return xprintf("%s * %lld, %d", nexpr, (long long)shape_numel(&g->target), g->classes);
    if (g->classes)
        return xprintf("%s, %d", nexpr, g->classes);
    return xprintf("(size_t)%s * %s_OUTPUT_SIZE", nexpr, U);
}

static void emit_loss(Emit *e)
{
    const Graph *g = e->g;
    static const char *const what[] = {"mean squared error", "mean absolute error (L1)",
                                       "cross-entropy of the logits against class indices",
                                       "negative log-likelihood of log-probabilities against class indices",
                                       "binary cross-entropy of the logits"};
    out(e, "/* The loss, as `loss = criterion(output, target)`:\n"
           " * %s (reduction %s),\n"
           " * of the last forward's output against target %s. */\n",
        what[g->loss], g->loss_sum ? "sum" : "mean", g->target.ndim ? nshape(&g->target) : "[n]");
    out(e, "float %s_loss(%s *m, const float *target)\n{\n", e->M, e->M);
    out(e, "    m->target = target;\n"
           "    m->loss = nnrt_%s_forward%s(m->output, target, %s, %s);\n"
           "    return m->loss;\n}\n\n", loss_name(g->loss), g->loss == LOSS_MSE ? "_r" : "",
        loss_args(g, e->U, "m->n"), g->loss_sum ? "NNRT_SUM" : "NNRT_MEAN");
}

/* Sorts the nodes by the backward step that zeroes their gradient, keeping
 * node order within a step (a counting sort; steps run from 0 to 2N + 1). */
static void index_zeroing(Emit *e)
{
    const Graph *g = e->g;
    int steps = 2 * g->nnodes + 2;
    e->zero_start = xalloc(sizeof(int) * (size_t)(steps + 1));
    e->zero_at = xalloc(sizeof(int) * (size_t)(g->nnodes + 1));
    for (int i = 0; i < g->nnodes; i++) {
        int t = g->nodes[i].zero_before;
        if (t >= 0 && t < steps)
            e->zero_start[t + 1]++;
    }
    for (int t = 0; t < steps; t++)
        e->zero_start[t + 1] += e->zero_start[t];
    int *next = xalloc(sizeof(int) * (size_t)steps);
    memcpy(next, e->zero_start, sizeof(int) * (size_t)steps);
    for (int i = 0; i < g->nnodes; i++) {
        int t = g->nodes[i].zero_before;
        if (t >= 0 && t < steps)
            e->zero_at[next[t]++] = i;
    }
}

/* Zeroes the gradients first written at backward step t: their memory may
 * have held a value that is dead by now (plan.c), and backward accumulates. */
static void zero_grads(Emit *e, int t)
{
    for (int k = e->zero_start[t]; k < e->zero_start[t + 1]; k++) {
        int i = e->zero_at[k];
        out(e, "    memset(%s, 0, sizeof(float) * (size_t)n * %lld);\n", D(e, i),
            (long long)shape_numel(&e->g->nodes[i].shape));
    }
}

/* plain SGD (no momentum, weight decay or clipping): backward may make the step */
static bool plain_sgd(const Graph *g)
{
    return g->opt == OPT_SGD && g->momentum == 0 && g->weight_decay == 0 && g->clip_norm <= 0;
}

/* The body of the backward pass; stepping: of the pass that takes `step`,
 * and with it makes plain SGD's update too */
static void emit_backward_body(Emit *e, bool stepping)
{
    const Graph *g = e->g;
    Buf b;
    out(e, "    const size_t B = (size_t)m->batch;\n"
           "    const int n = m->n;\n");
    buf_begin(e, &b);
    out(e, "\n    /* d loss / d output */\n");
    zero_grads(e, g->nnodes);
    const char *red = g->loss_sum ? "NNRT_SUM" : "NNRT_MEAN";
    if (g->loss == LOSS_NLL)
        out(e, "    nnrt_nll_backward(%s, m->target, n, %d, 1.0f, %s);\n", D(e, g->output), g->classes, red);
    else
        out(e, "    nnrt_%s_backward%s(%s, %s, m->target, %s, 1.0f, %s);\n", loss_name(g->loss),
            g->loss == LOSS_MSE ? "_r" : "", D(e, g->output), V(e, g->output), loss_args(g, e->U, "n"), red);
    e->grad_written = xalloc(sizeof(bool) * (size_t)(g->nlayers + 1));
    e->stepped = xalloc(sizeof(bool) * (size_t)(g->nlayers + 1));
    e->stepping = stepping;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        zero_grads(e, plan_backward_time(g, i));
        emit_backward_node(e, &g->nodes[i]);
    }
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].defer_dw) {
            out(e, "    nnrt_join();    /* the weight gradients left running on another thread */\n");
            break;
        }
    if (stepping) {
        /* the other layers' updates; a layer backward did not reach has
         * zero gradients, which change nothing */
        out(e, "    if (step) {\n"
               "        /* the step of the layers not updated above, in runs of adjacent parameters\n"
               "         * (with the padding between them, which stays zero) */\n");
        size_t lo = 0, hi = 0;      /* the run [lo, hi) */
        for (int l = 0; l <= g->nlayers; l++)
            for (int k = 0; k < (l < g->nlayers ? g->layers[l].nparams : 1); k++) {
                const Param *p = l < g->nlayers ? &g->layers[l].params[k] : NULL;
                if (p && (p->buffer || !e->grad_written[l] || e->stepped[l]))
                    continue;
                if (p && p->offset >= hi && p->offset - hi < PARAM_ALIGN && hi > lo) {  /* across padding */
                    hi = p->offset + p->numel;
                    continue;
                }
                if (hi > lo)
                    out(e, "        nnrt_sgd_step(m->param + %zu, m->grad + %zu, %zu, lr);\n", lo, lo, hi - lo);
                if (p)
                    lo = p->offset, hi = p->offset + p->numel;
            }
        out(e, "        m->steps += 1;\n        m->grad_zero = 1;\n    } else {\n        m->grad_zero = 0;\n    }\n");
    } else {
        out(e, "    m->grad_zero = 0;\n");
    }
    out(e, "}\n\n");
    e->stepping = false;
    buf_end(e, &b, "m->input");
}

/* Backward; with plain SGD, as one pass that backward_step takes too: with
 * step, each linear layer applied once is updated by its backward kernel,
 * where it reads the weights anyway, and the other layers after: the
 * gradients are not written out, and a pass over the parameters is saved. */
static void emit_backward(Emit *e)
{
    const char *M = e->M;
    bool stepping = plain_sgd(e->g);
    if (stepping) {
        out(e, "/* The backward pass; with step (plain SGD, the gradients zero), also\n"
               " * `optimizer.step(); optimizer.zero_grad()` with learning rate lr, in one\n"
               " * pass: the linear layers applied once are updated by their backward\n"
               " * kernel, where it reads the weights anyway; the rest at the end. */\n");
        out(e, "static void %s_backward_pass(%s *m, float lr, int step)\n{\n", M, M);
        emit_backward_body(e, true);
    }
    out(e, "/* Backward, as `loss.backward()`: from the last loss to the gradient of\n"
           " * every parameter, in reverse order of forward. Parameter gradients\n"
           " * accumulate (+=), as in PyTorch; call %s_zero_grad between steps. */\n", M);
    if (!stepping) {
        out(e, "void %s_backward(%s *m)\n{\n", M, M);
        emit_backward_body(e, false);
        return;
    }
    out(e, "void %s_backward(%s *m)\n{\n    %s_backward_pass(m, 0.0f, 0);\n}\n\n", M, M, M);
}

/* backward_step: backward, step and zero_grad as one call, the same bits:
 * with plain SGD, the backward pass that steps */
static void emit_backward_step(Emit *e)
{
    const char *M = e->M;
    out(e, "/* As `loss.backward(); optimizer.step(); optimizer.zero_grad()`, with the\n"
           " * same bits, in one pass where it can: the training loop's call. The\n"
           " * gradients are zero after it, as after zero_grad. */\n");
    out(e, "void %s_backward_step(%s *m, float lr)\n{\n", M, M);
    static const char three[] = "%s%s_backward(m);\n%s%s_step(m, lr);\n%s%s_zero_grad(m);\n";
    if (!plain_sgd(e->g)) {
        out(e, three, "    ", M, "    ", M, "    ", M);
        out(e, "}\n\n");
        return;
    }
    out(e, "    if (!m->grad_zero) {    /* gradients from an earlier backward: add to them, then step */\n");
    out(e, three, "        ", M, "        ", M, "        ", M);
    out(e, "        return;\n    }\n");
    out(e, "    %s_backward_pass(m, lr, 1);\n}\n\n", M);
}

/* The kernels' scratch at batch n, layer by layer: plan_workspace's list,
 * for the batch the program chooses */
static void emit_workspace(Emit *e)
{
    const Graph *g = e->g;
    Buf b;
    out(e, "/* The scratch the kernels ask for in a training step at batch n\n"
           " * (runtime/sizing/workspace.c; nnc --summary prints it at batch 1 and 64). */\n");
    out(e, "static void %s_workspace(nnrt_workspace *w, int n)\n{\n", e->M);
    buf_begin(e, &b);
    out(e, "    memset(w, 0, sizeof *w);\n");
    bool any = false;
    for (int i = 0; i < g->nnodes; i++)
        any |= op_def(g->nodes[i].op)->emit_workspace != NULL;
    if (!any)
        out(e, "    (void)n;    /* no kernel of this model asks for scratch */\n");
    for (int i = 0; i < g->nnodes; i++)
        if (op_def(g->nodes[i].op)->emit_workspace)
            op_def(g->nodes[i].op)->emit_workspace(e, &g->nodes[i]);
    out(e, "}\n\n");
    buf_end(e, &b, "NULL");
}

static void emit_init(Emit *e)
{
    const char *M = e->M, *U = e->U;
    out(e, "/* (Re)initialises the weights from seed, as PyTorch's defaults do (not its\n"
           " * random numbers: nnc has its own generator), and clears the optimizer. */\n");
    out(e, "void %s_reset(%s *m, uint64_t seed)\n{\n"
           "    nnrt_rng rng;\n"
           "    nnrt_rng_seed(&rng, seed);\n"
           "    m->seed = seed;\n"
           "    m->steps = 0;\n"
           "    for (int i = 0; i < %s_NTENSORS; i++) {\n"
           "        const struct %s_param *p = &%s_params[i];\n"
           "        if (p->buffer == 2) {    /* a count */\n"
           "            memset(m->counts + p->offset, 0, sizeof(int64_t) * p->numel);\n"
           "            continue;\n"
           "        }\n"
           "        float *w = (p->buffer ? m->buf : m->param) + p->offset;\n"
           "        if (p->init == NNRT_INIT_UNIFORM)\n"
           "            nnrt_init_uniform(w, p->numel, p->bound, &rng);\n"
           "        else if (p->init == NNRT_INIT_NORMAL)   /* N(0, bound^2): an embedding's */\n"
           "            for (size_t k = 0; k < p->numel; k++)\n"
           "                w[k] = p->bound * nnrt_rng_normal(&rng);\n"
           "        else\n"
           "            for (size_t k = 0; k < p->numel; k++)\n"
           "                w[k] = p->init == NNRT_INIT_ONE ? 1.0f : 0.0f;\n"
           "    }\n"
           "    if (%s_NOPT)\n"
           "        memset(m->opt, 0, sizeof(float) * %s_NOPT);\n"
           "}\n\n", M, M, U, M, M, U, U);
    emit_workspace(e);
    out(e, "/* Allocates the model for batches of up to `batch` samples and initialises\n"
           " * its weights from seed (deterministic). Exits with a message if memory runs out.\n"
           " * The kernels' scratch is planned for nnrt_threads() threads. */\n");
    out(e, "void %s_init(%s *m, int batch, uint64_t seed)\n{\n", M, M);
    out(e, "    size_t act = (size_t)batch * %s_NACT;\n"
           "    nnrt_workspace ws;\n"
           "    int threads = nnrt_threads();\n"
           "    %s_workspace(&ws, batch);\n"
           "    size_t work = nnrt_workspace_floats(&ws, threads);\n"
           "    /* the parameters, their gradients, buffers, optimizer state and scratch */\n"
           "    size_t fixed = 2 * %s_NPARAM + %s_NBUF;\n"
           "    fixed += %s_NOPT + %s_NSCRATCH;\n"
           "    float *mem = nnrt_alloc(fixed + act + work, \"the model\");\n"
           "    memset(m, 0, sizeof *m);\n"
           "    m->batch = batch;\n"
           "    m->training = 1;\n"
           "    m->param = mem;                 /* one allocation, carved up */\n"
           "    m->grad = m->param + %s_NPARAM;\n"
           "    m->buf = m->grad + %s_NPARAM;\n"
           "    m->opt = m->buf + %s_NBUF;\n"
           "    m->scratch = m->opt + %s_NOPT;\n"
           "    m->act = m->scratch + %s_NSCRATCH;\n"
           "    m->work = m->act + act;\n"
           "    nnrt_workspace_use(m->work, &ws, threads);\n"
           "    %s_reset(m, seed);\n"
           "}\n\n", U, M, U, U, U, U, U, U, U, U, U, M);
    out(e, "void %s_free(%s *m)\n{\n"
           "    nnrt_workspace_release(m->work);\n"
           "    free(m->param);\n"
           "    memset(m, 0, sizeof *m);\n}\n\n", M, M);
    out(e, "/* As `model.train()` (training 1) and `model.eval()` (training 0). */\n");
    out(e, "void %s_set_training(%s *m, int training)\n{\n    m->training = training;\n}\n\n", M, M);
    out(e, "/* As `optimizer.zero_grad()`: the gradients are zero from now on. They are\n"
           " * not written here: backward's first write to each assigns it (a pass\n"
           " * over memory less), and whatever reads them before clears them. */\n");
    out(e, "void %s_zero_grad(%s *m)\n{\n    m->grad_zero = 1;\n}\n\n", M, M);
    out(e, "/* the gradients as zero_grad left them, written out */\n");
    out(e, "static void %s_grads_written(const %s *m)\n{\n"
           "    if (m->grad_zero)\n"
           "        memset(m->grad, 0, sizeof(float) * %s_NPARAM);\n}\n\n", M, M, U);
}

/* Per layer: does it reach the output (is any node of it upstream of it)?
 * A layer applied only to values the output does not need gets no
 * gradient in PyTorch, and its optimizer skips it. */
static bool *live_layers(const Graph *g)
{
    bool *node = xalloc(sizeof(bool) * (size_t)(g->nnodes + 1));
    bool *layer = xalloc(sizeof(bool) * (size_t)(g->nlayers + 1));
    node[g->output] = true;
    for (int i = g->nnodes - 1; i >= 0; i--)
        for (int k = 0; node[i] && k < g->nodes[i].nin; k++)
            node[g->nodes[i].in[k]] = true;
    for (int i = 0; i < g->nnodes; i++)
        if (node[i] && g->nodes[i].layer)
            layer[g->nodes[i].layer - g->layers] = true;
    return layer;
}

/* The runs [lo, hi) of the parameter block that the optimizer steps: all of
 * it, or when a layer gets no gradient the runs of the others' parameters
 * (with the padding between adjacent ones). Returns how many. */
static int step_runs(const Graph *g, size_t *lo, size_t *hi, bool *decays)
{
    bool *live = live_layers(g), all = !g->decay_matrices;
    for (int l = 0; l < g->nlayers; l++)
        for (int k = 0; k < g->layers[l].nparams; k++)
            all &= live[l] || g->layers[l].params[k].buffer;
    if (all) {
        lo[0] = 0, hi[0] = g->nparam, decays[0] = true;
        return 1;
    }
    int n = 0;
    for (int l = 0; l < g->nlayers; l++)
        for (int k = 0; live[l] && k < g->layers[l].nparams; k++) {
            const Param *p = &g->layers[l].params[k];
            if (p->buffer)
                continue;
            bool d = !g->decay_matrices || p->shape.ndim >= 2;
            if (n > 0 && decays[n - 1] == d && p->offset >= hi[n - 1] && p->offset - hi[n - 1] < PARAM_ALIGN)
                hi[n - 1] = p->offset + p->numel;
            else
                lo[n] = p->offset, hi[n] = p->offset + p->numel, decays[n] = d, n++;
        }
    return n;
}

static void emit_step(Emit *e)
{
    const Graph *g = e->g;
    const char *M = e->M, *U = e->U;
    int nt = count_tensors(g);
    size_t *lo = xalloc(sizeof(size_t) * (size_t)(nt + 1)), *hi = xalloc(sizeof(size_t) * (size_t)(nt + 1));
    bool *decays = xalloc(sizeof(bool) * (size_t)(nt + 1));
    int nruns = step_runs(g, lo, hi, decays);
    out(e, "/* As `optimizer.step()`%s:\n", g->clip_norm > 0 ? ", after clipping the gradients' global norm" : "");
    if (g->opt == OPT_SGD)
        out(e, " * torch.optim.SGD(lr=%g, momentum=%g, dampening=%g, weight_decay=%g,\n"
               " *                 nesterov=%s). */\n", g->lr, g->momentum, g->dampening, g->weight_decay,
            g->nesterov ? "True" : "False");
    else
        out(e, " * torch.optim.%s(lr=%g, betas=(%g, %g), eps=%g, weight_decay=%g). */\n",
            g->opt == OPT_ADAM ? "Adam" : "AdamW", g->lr, g->beta1, g->beta2, g->eps, g->weight_decay);
    out(e, "void %s_step(%s *m, float lr)\n{\n    m->steps += 1;\n    %s_grads_written(m);\n"
           "    m->grad_zero = 0;\n", M, M, M);
    if (g->clip_norm > 0)
        out(e, "    /* torch.nn.utils.clip_grad_norm_(parameters, %g) */\n"
               "    float norm = nnrt_grad_norm(m->grad, %s_NPARAM);\n"
               "    if (norm > %s)\n"
               "        nnrt_scale(m->grad, %s_NPARAM, %s / (norm + 1e-6f));\n", g->clip_norm, U, F(g->clip_norm),
            U, F(g->clip_norm));
    bool whole = nruns == 1 && lo[0] == 0 && hi[0] == g->nparam;
    if (!whole && g->decay_matrices)
        out(e, "    /* by runs of tensors: the matrices with weight decay (o), the biases and norms\n"
               "     * without (o0, decay=\"matrices\"); a layer without a gradient is not stepped */\n");
    else if (!whole)
        out(e, "    /* the layers that get a gradient: the others, as in PyTorch, are not stepped */\n");
    for (int z = 0; z < 1 + g->decay_matrices; z++) {   /* o, then (decay="matrices") o0 without decay */
        double wd = z ? 0 : g->weight_decay;
        if (g->opt == OPT_SGD && !(g->momentum == 0 && g->weight_decay == 0))
            out(e, "    static const nnrt_sgd_opts o%s = {.momentum = %s, .dampening = %s, .weight_decay = %s,\n"
                   "                                    .nesterov = %d};\n",
                z ? "0" : "", F(g->momentum), dbl(g->dampening), F(wd), g->nesterov);
        else if (g->opt != OPT_SGD)
            out(e, "    static const nnrt_adam_opts o%s = {.beta1 = %s, .beta2 = %s, .eps = %s,\n"
                   "                                     .weight_decay = %s, .decoupled = %d};\n",
                z ? "0" : "", dbl(g->beta1), dbl(g->beta2), F(g->eps), dbl(wd), g->opt == OPT_ADAMW);
    }
    for (int r = 0; r < nruns; r++) {
        const char *o = decays[r] ? "&o" : "&o0";
        const char *at = whole ? "" : xprintf(" + %zu", lo[r]);
        const char *count = whole ? xprintf("%s_NPARAM", U) : xprintf("%zu", hi[r] - lo[r]);
        if (g->opt == OPT_SGD && g->momentum == 0 && g->weight_decay == 0)
            out(e, "    nnrt_sgd_step(m->param%s, m->grad%s, %s, lr);\n", at, at, count);
        else if (g->opt == OPT_SGD)
            out(e, "    nnrt_sgd_step_opts(m->param%s, m->grad%s, %s, %s, lr, %s, (long)m->steps);\n", at, at,
                g->momentum > 0 ? xprintf("m->opt%s", at) : "NULL", count, o);
        else
            out(e, "    nnrt_adam_step(m->param%s, m->grad%s, m->opt%s, m->opt + %s_NPARAM%s, %s, lr, %s, (long)m->steps);\n",
                at, at, at, U, at, count, o);
    }
    out(e, "}\n\n");
}

static void emit_tensors(Emit *e)
{
    const Graph *g = e->g;
    const char *M = e->M, *U = e->U;
    static const char *const slot_names[2][2] = {{"momentum_buffer", ""}, {"exp_avg", "exp_avg_sq"}};
    int slots = opt_slots(g);
    out(e, "/* Names of the gradients and of the optimizer's state, for checkpoints. */\n");
    out(e, "static const char *const %s_grad_names[%s_NTENSORS] = {\n", M, U);
    for (int i = 0; i < g->nlayers; i++)
        for (int p = 0; p < g->layers[i].nparams; p++)
            out(e, "    \"%s.grad\",\n", g->layers[i].params[p].name);
    out(e, "};\n");
    out(e, "static const char *const %s_state_names[%s_NSTATE] = {\n", M, U);
    for (int k = 0; k < slots; k++)
        for (int i = 0; i < g->nlayers; i++)
            for (int p = 0; p < g->layers[i].nparams; p++)
                if (!g->layers[i].params[p].buffer)
                    out(e, "    \"optimizer.%s.%s\",\n", g->layers[i].params[p].name, slot_names[g->opt != OPT_SGD][k]);
    out(e, "    \"optimizer.steps\",\n};\n\n");
    out(e, "/* Views as named tensors of the state_dict (what 0), of the parameters'\n"
           " * gradients (what 1, named NAME.grad), or of the optimizer's state (what 2);\n"
           " * returns how many. */\n");
    out(e, "int %s_tensors(const %s *m, nnrt_tensor *t, int what)\n{\n"
           "    int k = 0;\n"
           "    if (what == 1 && m->grad_zero) {   /* the views show (and take) what is there */\n"
           "        %s_grads_written(m);\n"
           "        /* m is never a const object: init wrote it */\n"
           "        ((struct %s *)m)->grad_zero = 0;\n"
           "    }\n"
           "    for (int s = 0; s < (what == 2 ? %d : 1); s++)\n"
           "        for (int i = 0; i < %s_NTENSORS; i++) {\n"
           "            const struct %s_param *p = &%s_params[i];\n"
           "            if (what && p->buffer)\n"
           "                continue;\n"
           "            const char *name = p->name;\n"
           "            float *base = p->buffer == 1 ? m->buf : m->param;\n"
           "            if (what == 1) {\n"
           "                name = %s_grad_names[i];\n"
           "                base = m->grad;\n"
           "            } else if (what == 2) {\n"
           "                name = %s_state_names[k];\n"
           "                base = m->opt + (size_t)s * %s_NPARAM;\n"
           "            }\n"
           "            t[k] = (nnrt_tensor){.name = name, .ndim = p->ndim};\n"
           "            if (p->buffer == 2)     /* a count (m is never const: init wrote it) */\n"
           "                t[k].i64 = (int64_t *)m->counts + p->offset;\n"
           "            else\n"
           "                t[k].data = base + p->offset;\n"
           "            memcpy(t[k].shape, p->shape, sizeof p->shape);\n"
           "            k++;\n"
           "        }\n"
           "    if (what == 2) {\n"
           "        t[k] = (nnrt_tensor){.name = %s_state_names[k], .ndim = 1, .shape = {1},\n"
           "                             .i64 = (int64_t *)&m->steps};   /* m is never const (init wrote it) */\n"
           "        k++;\n"
           "    }\n"
           "    return k;\n}\n\n", M, M, M, M, slots, U, M, M, M, M, U, M);
    out(e, "#if !defined(NNC_NO_MAIN) || defined(NNC_CHECKPOINTS)\n"
           "/* Saves the state_dict as safetensors, PyTorch's names (load it with\n"
           " * model.load_state_dict); atomic: the old file stays intact if anything\n"
           " * fails. 0, or -1 with a message in err. */\n");
    out(e, "int %s_save(const %s *m, const char *path, char *err, size_t errlen)\n{\n"
           "    nnrt_tensor t[%s_NTENSORS];\n"
           "    int n = %s_tensors(m, t, 0);\n"
           "    const char *keys[] = {\"format\", \"model\"};\n"
           "    const char *vals[] = {\"pt\", \"%s\"};\n"
           "    return nnrt_save_safetensors(path, t, n, keys, vals, 2, err, errlen);\n}\n\n",
        M, M, U, M, g->name);
    out(e, "/* Loads weights saved by %s_save or by PyTorch, or a checkpoint of the\n"
           " * trainer (its optimizer's state is loaded too, so training goes on where\n"
           " * it stopped); refuses, changing nothing, a file whose tensors do not match\n"
           " * the model. 0, or -1 with a message. */\n", M);
    out(e, "int %s_load(%s *m, const char *path, char *err, size_t errlen)\n{\n"
           "    nnrt_tensor t[%s_NTENSORS + %s_NSTATE];\n"
           "    int n = %s_tensors(m, t, 0);\n"
           "    int k = %s_tensors(m, t + n, 2);\n"
           "    return nnrt_load_checkpoint(path, \"%s\", t, n, t + n, k, 0, err, errlen);\n}\n"
           "#endif /* NNC_CHECKPOINTS */\n\n", M, M, U, U, M, M, g->name);
}

static void emit_api(Emit *e)
{
    emit_init(e);
    emit_step(e);
    emit_backward_step(e);
    emit_tensors(e);
}

/* The summary as C strings, one a line (a C compiler need not take a
 * literal of more than 4095 characters), for the trainer's banner; returns
 * its length */
static size_t emit_summary_string(Emit *e)
{
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        diag_fatal_plain("cannot create a memory buffer");
        exit(1);
    }
    summary_print(f, e->g, "");
    fclose(f);
    out(e, "static const char *const %s_summary_lines[] = {\n    \"", e->M);
    size_t col = 5;     /* where the line is: a line longer than 99 goes on in a literal of its own */
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            out(e, i + 1 < len ? "\\n\",\n    \"" : "\\n");
            col = 5;
            continue;
        }
        const char *eol = memchr(text + i, '\n', len - i);
        size_t rest = eol ? (size_t)(eol - (text + i)) : len - i;
        if (col + rest > 91 && col > 40 && text[i] == ' ' && i > 0 && text[i - 1] == ',' &&
            !memchr(text + i + 1, ',', (size_t)(91 - col < rest ? 91 - col : rest))) {
            out(e, " \"\n    \"");
            col = 5;
            continue;
        }
        if (text[i] == '"' || text[i] == '\\') {
            out(e, "\\%c", text[i]);
            col += 2;
        } else {
            fputc(text[i], e->out);
            col++;
        }
    }
    out(e, "\",\n    NULL,\n};\n\n");
    free(text);
    return len;
}

/* a C string literal of s */
static char *c_string(const char *s)
{
    size_t n = strlen(s);
    char *o = xalloc(4 * n + 3), *p = o;
    *p++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            p += sprintf(p, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            p += sprintf(p, "\\%03o", c);
        else
            *p++ = (char)c;
    }
    *p++ = '"';
    return o;
}

static void emit_dims(Emit *e, const char *field, const Shape *s)
{
    out(e, "        .%s_ndim = %d, .%s_shape = {", field, s->ndim, field);
    for (int d = 0; d < s->ndim; d++)
        out(e, "%s%lld", d ? ", " : "", (long long)s->dim[d]);
    if (s->ndim == 0)
        out(e, "0");
    out(e, "},\n");
}

/* 2 if a batch norm normalises one value per channel and sample (PyTorch
 * refuses to train it on a batch of 1: the variance would be 0/0) */
static int min_batch(const Graph *g)
{
    return one_per_channel(g) ? 2 : 1;
}

/* main(): the runtime's trainer (runtime/host/trainer.c), given this model */
static void emit_main(Emit *e, const char *src)
{
    const Graph *g = e->g;
    const char *M = e->M, *U = e->U;
    out(e, "#ifndef NNC_NO_MAIN\n"
           "/* ---- The trainer: runtime/host/trainer.c runs the tutorial's loop on this model. ---- */\n\n");
    size_t summary_len = emit_summary_string(e);
    out(e, "static void %s_init_v(void *m, int batch, uint64_t seed) { %s_init(m, batch, seed); }\n", M, M);
    out(e, "static void %s_free_v(void *m) { %s_free(m); }\n", M, M);
    out(e, "static void %s_zero_grad_v(void *m) { %s_zero_grad(m); }\n", M, M);
    out(e, "static float *%s_forward_v(void *m, const float *x, int n) { return %s_forward(m, x, n); }\n", M, M);
    out(e, "static float %s_loss_v(void *m, const float *t) { return %s_loss(m, t); }\n", M, M);
    out(e, "static void %s_backward_v(void *m) { %s_backward(m); }\n", M, M);
    out(e, "static void %s_step_v(void *m, float lr) { %s_step(m, lr); }\n", M, M);
    out(e, "static void %s_backward_step_v(void *m, float lr) { %s_backward_step(m, lr); }\n", M, M);
    out(e, "static int %s_tensors_v(void *m, nnrt_tensor *t, int what) { return %s_tensors(m, t, what); }\n",
        M, M);
    out(e, "static void %s_set_training_v(void *m, int on) { %s_set_training(m, on); }\n", M, M);
    out(e, "static void %s_set_nan_check_v(void *m, int on)\n{\n    ((struct %s *)m)->nan_check = on;\n}\n", M, M);
    out(e, "static const char *%s_nonfinite_v(void *m)\n{\n    return ((struct %s *)m)->nonfinite;\n}\n\n", M, M);
    out(e, "int main(int argc, char **argv)\n{\n"
           "    static struct %s m;   /* `struct`: the model may be called argc or argv */\n"
           "    static char summary[%zu];\n"
           "    for (size_t i = 0, k = 0; %s_summary_lines[i]; i++)\n"
           "        for (const char *c = %s_summary_lines[i]; *c; c++)\n"
           "            summary[k++] = *c;\n"
           "    const nnrt_model model = {\n"
           "        .name = \"%s\", .summary = summary, .self = &m,\n"
           "        .source = %s,\n", M, summary_len + 1, M, M, g->name, c_string(src));
    emit_dims(e, "in", &g->nodes[g->input].shape);
    emit_dims(e, "out", &g->nodes[g->output].shape);
    emit_dims(e, "target", &g->target);
    static const char *const sched[] = {"NNRT_SCHED_NONE", "NNRT_SCHED_STEP", "NNRT_SCHED_COSINE",
                                        "NNRT_SCHED_WARMUP_COSINE"};
    if (g->nodes[g->input].vocab > 0)
        out(e, "        .vocab = %lld, .causal = %d,\n", (long long)g->nodes[g->input].vocab, g->causal);
    out(e, "        .classes = %d, .lr = %s, .ntensors = %s_NTENSORS, .nstate = %s_NSTATE,\n"
           "        .init = %s_init_v, .release = %s_free_v, .zero_grad = %s_zero_grad_v,\n"
           "        .forward = %s_forward_v, .loss = %s_loss_v, .backward = %s_backward_v,\n"
           "        .step = %s_step_v, .backward_step = %s_backward_step_v,\n"
           "        .set_training = %s_set_training_v, .tensors = %s_tensors_v,\n"
           "        .set_nan_check = %s_set_nan_check_v, .first_nonfinite = %s_nonfinite_v,\n"
           "        .schedule = %s, .sched_step_size = %lld, .sched_gamma = %s,\n"
           "        .sched_t_max = %lld, .sched_eta_min = %s, .min_batch = %d,\n"
           "    };\n"
           "    return nnrt_train_main(&model, argc, argv);\n"
           "}\n"
           "#endif /* NNC_NO_MAIN */\n",
        g->classes, F(g->lr), U, U, M, M, M, M, M, M, M, M, M, M, M, M, sched[g->sched], (long long)g->sched_step_size,
        F(g->sched_gamma), (long long)g->sched_t_max, F(g->sched_eta_min), min_batch(g));
}

static void emit_file(FILE *f, const Graph *g, const char *source_path);

/* Writes text to f with every line of more than MAX_LINE characters broken
 * after a ", " (outside string and character literals), the rest indented
 * four more than the line; a preprocessor line, a comment's line, or one
 * with no such place, stays as it is. So the generated C keeps the width a person would. */
enum { MAX_LINE = 99 };
static void write_wrapped(FILE *f, const char *text, size_t len)
{
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *stop = nl ? nl : end;
        size_t indent = strspn(line, " ");
        const char *rest = line;
        bool cpp = line[indent] == '#' || line[indent] == '*' || !strncmp(line + indent, "/*", 2);
        char quote = 0;
        bool continued = false;
        while (!cpp && stop - rest > (continued ? MAX_LINE - (long)indent - 4 : MAX_LINE)) {
            long room = continued ? MAX_LINE - (long)indent - 4 : MAX_LINE;
            const char *cut = NULL;
            for (const char *c = rest; c < stop - 1 && c - rest < room; c++) {
                if (quote) {
                    if (*c == '\\')
                        c++;
                    else if (*c == quote)
                        quote = 0;
                } else if (*c == '"' || *c == '\'') {
                    quote = *c;
                } else if (c[0] == ',' && c[1] == ' ') {
                    cut = c + 1;
                }
            }
            quote = 0;  /* the scan restarts at rest, from outside any literal (cut was outside) */
            if (!cut)
                break;
            if (continued)
                fprintf(f, "%*s", (int)indent + 4, "");
            fwrite(rest, 1, (size_t)(cut - rest), f);
            fputc('\n', f);
            rest = cut + strspn(cut, " ");
            continued = true;
        }
        if (continued)
            fprintf(f, "%*s", (int)indent + 4, "");
        fwrite(rest, 1, (size_t)(stop - rest), f);
        if (nl)
            fputc('\n', f);
        line = nl ? nl + 1 : end;
    }
}

void emit_c(FILE *f, const Graph *g, const char *source_path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        perror("nnc: open_memstream");
        exit(1);
    }
    emit_file(mem, g, source_path);
    if (fclose(mem) != 0) {
        perror("nnc: writing the C");
        exit(1);
    }
    write_wrapped(f, text, len);
    free(text);
}

static void emit_file(FILE *f, const Graph *g, const char *source_path)
{
    Emit e = {.g = g, .out = f, .M = g->name, .U = upper(g->name)};
    e.use_v = xalloc(sizeof(bool) * (size_t)g->nnodes);
    e.use_d = xalloc(sizeof(bool) * (size_t)g->nnodes);
    e.use_dims = xalloc(sizeof(bool) * (size_t)g->nnodes);
    name_values(&e);
    index_zeroing(&e);
    emit_header(&e, source_path);
    emit_sizes(&e);
    emit_state(&e);
    emit_forward(&e);
    emit_loss(&e);
    emit_backward(&e);
    emit_api(&e);
    emit_main(&e, source_path);
}

/* emit.c — writes the checked graph as one standalone, readable C file.
 *
 * The file holds everything specific to the model: its sizes as constants,
 * a table of its parameters under PyTorch's state_dict names, its state as
 * four blocks allocated once (parameters, gradients, activations, activation
 * gradients), the functions forward / loss / backward / zero_grad / step /
 * save / load, and a main() — the trainer — that -DNNC_NO_MAIN leaves out so
 * the model can be embedded. The arithmetic is in the runtime (runtime/nnrt.h).
 *
 * Each function body is first written to a buffer while the values it uses
 * are recorded, so that only those get a local pointer: the output has no
 * unused variables and every pointer is named after the model's value.
 */
#include "nnc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct Emit {
    const Graph *g;
    FILE *out;              /* the file, or the current function's buffer */
    const char *M;          /* model name, as a C prefix */
    const char *U;          /* its upper-case form, for macros */
    char **vname;           /* per node: "v_conv1" */
    bool *use_v, *use_d;    /* per node: the function refers to v_ / d_ */
} Emit;

static void out(Emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(Emit *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
}

/* ---- names ---- */

/* Values are named after their layer or operation; repeated ones get _1, _2 */
static void name_values(Emit *e)
{
    const Graph *g = e->g;
    e->vname = xalloc(sizeof(char *) * (size_t)g->nnodes);
    for (int i = 0; i < g->nnodes; i++) {
        int count = 0, index = 0;
        for (int j = 0; j < g->nnodes; j++)
            if (strcmp(g->nodes[j].label, g->nodes[i].label) == 0) {
                count++;
                if (j <= i)
                    index = count;
            }
        e->vname[i] = count == 1 ? xprintf("%s", g->nodes[i].label)
                                 : xprintf("%s_%d", g->nodes[i].label, index);
    }
}

/* the value of node id, as a C expression; records the use */
static const char *V(Emit *e, int id)
{
    e->use_v[id] = true;
    return xprintf("v_%s", e->vname[id]);
}

/* the gradient of node id, or NULL when backward does not need it */
static const char *D(Emit *e, int id)
{
    if (!e->g->nodes[id].needs_grad)
        return "NULL";
    e->use_d[id] = true;
    return xprintf("d_%s", e->vname[id]);
}

/* "[n, 6, 28, 28]": a shape with the batch */
static char *nshape(const Shape *s)
{
    return xprintf("[n, %s", shape_str(s) + 1);
}

static char *upper(const char *s)
{
    char *u = xstrdup(s);
    for (char *p = u; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return u;
}

/* the source text of a span's first line, for comments: `conv1 = conv2d(6, kernel=5)` */
static const Param *weight(const Node *n) { return &n->layer->params[0]; }
static const Param *bias(const Node *n) { return n->layer->nparams > 1 ? &n->layer->params[1] : NULL; }

/* ---- function bodies, written to a buffer ---- */

typedef struct Buf { char *text; size_t len; FILE *f; FILE *saved; } Buf;

static void buf_begin(Emit *e, Buf *b)
{
    memset(e->use_v, 0, sizeof(bool) * (size_t)e->g->nnodes);
    memset(e->use_d, 0, sizeof(bool) * (size_t)e->g->nnodes);
    b->f = open_memstream(&b->text, &b->len);
    if (!b->f) {
        diag_fatal_plain("cannot create a memory buffer");
        exit(1);
    }
    b->saved = e->out;
    e->out = b->f;
}

/* Declares the pointers the body used, then writes the body. */
static void buf_end(Emit *e, Buf *b, const char *input_expr)
{
    fclose(b->f);
    e->out = b->saved;
    const Graph *g = e->g;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        const char *sh = nshape(&n->shape);
        if (e->use_v[i]) {
            if (n->op == OP_INPUT)
                out(e, "    const float *v_%s = %s; /* %s input */\n", e->vname[i], input_expr, sh);
            else
                out(e, "    float *v_%s = m->act + B * %zu; /* %s */\n", e->vname[i], n->offset, sh);
        }
        if (e->use_d[i])
            out(e, "    float *d_%s = m->dact + B * %zu; /* %s */\n", e->vname[i], n->offset, sh);
    }
    fwrite(b->text, 1, b->len, e->out);
    free(b->text);
}

static void conv_dims(Emit *e, const Node *n)
{
    const Layer *l = n->layer;
    const Shape *in = &e->g->nodes[n->in[0]].shape;
    out(e, "&(nnrt_conv2d_dims){.N = n, .C = %lld, .H = %lld, .W = %lld, .K = %lld, .R = %lld, .S = %lld,\n"
           "            .P = %lld, .Q = %lld, .stride_h = %lld, .stride_w = %lld, .pad_h = %lld, .pad_w = %lld,\n"
           "            .dil_h = %lld, .dil_w = %lld, .groups = %lld}",
        (long long)in->dim[0], (long long)in->dim[1], (long long)in->dim[2], (long long)l->out,
        (long long)l->kernel[0], (long long)l->kernel[1], (long long)n->shape.dim[1], (long long)n->shape.dim[2],
        (long long)l->stride[0], (long long)l->stride[1], (long long)l->pad[0], (long long)l->pad[1],
        (long long)l->dil[0], (long long)l->dil[1], (long long)l->groups);
}

static void pool_dims(Emit *e, const Node *n)
{
    const Shape *in = &e->g->nodes[n->in[0]].shape;
    out(e, "&(nnrt_pool2d_dims){.N = n, .C = %lld, .H = %lld, .W = %lld, .P = %lld, .Q = %lld,\n"
           "            .kh = %lld, .kw = %lld, .stride_h = %lld, .stride_w = %lld, .pad_h = %lld, .pad_w = %lld}",
        (long long)in->dim[0], (long long)in->dim[1], (long long)in->dim[2], (long long)n->shape.dim[1],
        (long long)n->shape.dim[2], (long long)n->kernel[0], (long long)n->kernel[1], (long long)n->stride[0],
        (long long)n->stride[1], (long long)n->pad[0], (long long)n->pad[1]);
}

static const char *param_ptr(const char *block, const Param *p)
{
    return p ? xprintf("m->%s + %zu", block, p->offset) : "NULL";
}

/* a comment line: conv1: conv2d [n, 1, 32, 32] -> [n, 6, 28, 28]  (line 13) */
static void node_comment(Emit *e, const Node *n, const char *what)
{
    const Shape *in = &e->g->nodes[n->in[0]].shape;
    out(e, "    /* %s%s: %s %s -> %s  (line %d) */\n", what, e->vname[n->id], op_name(n->op), nshape(in),
        nshape(&n->shape), n->span.first_line);
}

static void emit_forward_node(Emit *e, const Node *n)
{
    int in = n->in[0];
    size_t numel = (size_t)shape_numel(&n->shape);
    if (n->op == OP_INPUT)
        return;
    node_comment(e, n, "");
    switch (n->op) {
    case OP_CONV2D:
        out(e, "    nnrt_conv2d_forward(%s, %s, %s, %s,\n        ", V(e, n->id), V(e, in),
            param_ptr("param", weight(n)), param_ptr("param", bias(n)));
        conv_dims(e, n);
        out(e, ");\n");
        break;
    case OP_LINEAR:
        out(e, "    nnrt_linear_forward(%s, %s, %s, %s, n, %lld, %lld);\n", V(e, n->id), V(e, in),
            param_ptr("param", weight(n)), param_ptr("param", bias(n)), (long long)n->layer->in,
            (long long)n->layer->out);
        break;
    case OP_MAXPOOL2D:
        out(e, "    nnrt_maxpool2d_forward(%s, %s,\n        ", V(e, n->id), V(e, in));
        pool_dims(e, n);
        out(e, ");\n");
        break;
    case OP_RELU:
        out(e, "    nnrt_relu_forward(%s, %s, (size_t)n * %zu);\n", V(e, n->id), V(e, in), numel);
        break;
    case OP_FLATTEN:
        out(e, "    /* a view: %s shares the memory of %s */\n", e->vname[n->id], e->vname[in]);
        break;
    case OP_INPUT:
        break;
    }
}

static void emit_backward_node(Emit *e, const Node *n)
{
    int in = n->in[0];
    size_t numel = (size_t)shape_numel(&n->shape);
    if (n->op == OP_INPUT || !n->needs_grad)
        return;
    node_comment(e, n, "d ");
    switch (n->op) {
    case OP_CONV2D:
        out(e, "    nnrt_conv2d_backward(%s, %s, %s, %s, %s, %s,\n        ", D(e, in),
            param_ptr("grad", weight(n)), param_ptr("grad", bias(n)), D(e, n->id), V(e, in),
            param_ptr("param", weight(n)));
        conv_dims(e, n);
        out(e, ");\n");
        break;
    case OP_LINEAR:
        out(e, "    nnrt_linear_backward(%s, %s, %s, %s, %s, %s, n, %lld, %lld);\n", D(e, in),
            param_ptr("grad", weight(n)), param_ptr("grad", bias(n)), D(e, n->id), V(e, in),
            param_ptr("param", weight(n)), (long long)n->layer->in, (long long)n->layer->out);
        break;
    case OP_MAXPOOL2D:
        if (!e->g->nodes[in].needs_grad)
            break;
        out(e, "    nnrt_maxpool2d_backward(%s, %s, %s,\n        ", D(e, in), D(e, n->id), V(e, in));
        pool_dims(e, n);
        out(e, ");\n");
        break;
    case OP_RELU:
        if (!e->g->nodes[in].needs_grad)
            break;
        out(e, "    nnrt_relu_backward(%s, %s, %s, (size_t)n * %zu);\n", D(e, in), D(e, n->id),
            V(e, n->id), numel);
        break;
    case OP_FLATTEN:
        out(e, "    /* a view: d %s is d %s */\n", e->vname[n->id], e->vname[in]);
        break;
    case OP_INPUT:
        break;
    }
}

/* ---- the parts of the file ---- */

static void emit_header(Emit *e, const char *src)
{
    const Graph *g = e->g;
    out(e, "/* %s.c — the model `%s`, compiled by nnc %s from %s.\n", e->M, g->name, NNC_VERSION, src);
    out(e, " *\n"
           " * Generated code: change the model and run nnc again rather than editing this.\n"
           " * Build the trainer:\n"
           " *     cc -O2 %s.c -I<nnc>/runtime <nnc>/build/libnnrt.a -lcjson -lm -o %s\n"
           " *     cc -O2 %s.c $(pkg-config --cflags --libs nnrt) -o %s      (after make install)\n"
           " * Embed the model in another program: compile with -DNNC_NO_MAIN and use the\n"
           " * %s_* functions below; see README.md, \"The C API\".\n"
           " *\n",
        e->M, e->M, e->M, e->M, e->M);
    summary_print(e->out, g, " * ");
    out(e, " */\n"
           "#include <math.h>\n"
           "#include <stdio.h>\n"
           "#include <stdlib.h>\n"
           "#include <string.h>\n"
           "\n"
           "#include \"nnrt.h\"\n\n");
}

static int count_tensors(const Graph *g)
{
    int n = 0;
    for (int i = 0; i < g->nlayers; i++)
        n += g->layers[i].nparams;
    return n;
}

static void emit_sizes(Emit *e)
{
    const Graph *g = e->g;
    const Node *in = &g->nodes[g->input], *o = &g->nodes[g->output];
    out(e, "/* Sizes per sample; the batch n is chosen at run time. */\n");
    out(e, "#define %s_INPUT_SIZE  %lld /* %s: %s */\n", e->U, (long long)shape_numel(&in->shape), in->label,
        shape_str(&in->shape));
    out(e, "#define %s_OUTPUT_SIZE %lld /* %s */\n", e->U, (long long)shape_numel(&o->shape), shape_str(&o->shape));
    out(e, "#define %s_TARGET_SIZE %lld /* %s */\n", e->U, (long long)shape_numel(&g->target),
        shape_str(&g->target));
    out(e, "#define %s_NPARAM      %zu /* floats in the parameter block */\n", e->U, g->nparam);
    out(e, "#define %s_NACT        %zu /* floats per sample in the activation block */\n", e->U, g->nact);
    out(e, "#define %s_NTENSORS    %d /* parameter tensors */\n\n", e->U, count_tensors(g));
}

static void emit_state(Emit *e)
{
    const Graph *g = e->g;
    const Shape *in = &g->nodes[g->input].shape, *o = &g->nodes[g->output].shape;
    out(e, "/* The model's state: four blocks, allocated once by %s_init. */\n", e->M);
    out(e, "typedef struct %s {\n", e->M);
    out(e, "    int batch;           /* capacity: samples per step, at most */\n"
           "    int n;               /* samples in the last forward (<= batch) */\n"
           "    float *param;        /* %s_NPARAM floats: weights and biases, in state_dict order */\n"
           "    float *grad;         /* %s_NPARAM floats: d loss / d param, same layout */\n"
           "    float *act;          /* batch * %s_NACT floats: the values forward computes */\n"
           "    float *dact;         /* batch * %s_NACT floats: d loss / d value, same layout */\n"
           "    const float *input;  /* the last forward's input %s */\n"
           "    const float *target; /* the last loss's target %s */\n"
           "    float *output;       /* the output %s, inside act */\n"
           "    float loss;          /* the last loss */\n"
           "} %s;\n\n",
        e->U, e->U, e->U, e->U, nshape(in), nshape(&g->target), nshape(o), e->M);

    out(e, "/* The parameters under PyTorch's state_dict names, with PyTorch's layouts\n"
           " * (conv weight [out, in, kh, kw], linear weight [out, in]) and default\n"
           " * initialisation: U(-bound, bound), bound = 1/sqrt(fan_in). */\n");
    out(e, "static const struct %s_param {\n"
           "    const char *name;\n"
           "    int ndim;\n"
           "    int64_t shape[4];\n"
           "    size_t offset, numel; /* floats, in the parameter block */\n"
           "    float bound;\n"
           "} %s_params[%d] = {\n", e->M, e->M, count_tensors(g));
    for (int i = 0; i < g->nlayers; i++)
        for (int p = 0; p < g->layers[i].nparams; p++) {
            const Param *q = &g->layers[i].params[p];
            out(e, "    {\"%s\", %d, {", q->name, q->shape.ndim);
            for (int d = 0; d < q->shape.ndim; d++)
                out(e, "%s%lld", d ? ", " : "", (long long)q->shape.dim[d]);
            out(e, "}, %zu, %zu, %.9gf},\n", q->offset, q->numel, (double)q->bound);
        }
    out(e, "};\n\n");
}

static void emit_forward(Emit *e)
{
    const Graph *g = e->g;
    Buf b;
    out(e, "/* Forward, as `output = net(input)`: input %s -> output %s.\n"
           " * n <= m->batch samples; returns the output (inside m->act). */\n",
        nshape(&g->nodes[g->input].shape), nshape(&g->nodes[g->output].shape));
    out(e, "float *%s_forward(%s *m, const float *input, int n)\n{\n", e->M, e->M);
    out(e, "    const size_t B = (size_t)m->batch; /* the blocks are laid out for the capacity */\n");
    buf_begin(e, &b);
    out(e, "\n");
    for (int i = 0; i < g->nnodes; i++)
        emit_forward_node(e, &g->nodes[i]);
    out(e, "\n    m->input = input;\n    m->n = n;\n    m->output = %s;\n    return m->output;\n}\n\n",
        V(e, g->output));
    buf_end(e, &b, "input");
}

static void emit_loss(Emit *e)
{
    const Graph *g = e->g;
    out(e, "/* The loss, as `loss = criterion(output, target)`: mean squared error\n"
           " * of the last forward's output against target %s. */\n", nshape(&g->target));
    out(e, "float %s_loss(%s *m, const float *target)\n{\n", e->M, e->M);
    out(e, "    m->target = target;\n"
           "    m->loss = nnrt_mse_forward(m->output, target, (size_t)m->n * %s_OUTPUT_SIZE);\n"
           "    return m->loss;\n}\n\n", e->U);
}

static void emit_backward(Emit *e)
{
    const Graph *g = e->g;
    Buf b;
    out(e, "/* Backward, as `loss.backward()`: from the last loss to the gradient of\n"
           " * every parameter, in reverse order of forward. Parameter gradients\n"
           " * accumulate (+=), as in PyTorch; call %s_zero_grad between steps. */\n", e->M);
    out(e, "void %s_backward(%s *m)\n{\n", e->M, e->M);
    out(e, "    const size_t B = (size_t)m->batch;\n"
           "    const int n = m->n;\n");
    buf_begin(e, &b);
    out(e, "\n    memset(m->dact, 0, sizeof(float) * B * %s_NACT);\n", e->U);
    out(e, "    /* d loss / d output */\n");
    out(e, "    nnrt_mse_backward(%s, %s, m->target, (size_t)n * %s_OUTPUT_SIZE, 1.0f);\n",
        D(e, g->output), V(e, g->output), e->U);
    for (int i = g->nnodes - 1; i >= 0; i--)
        emit_backward_node(e, &g->nodes[i]);
    out(e, "}\n\n");
    buf_end(e, &b, "m->input");
}

static void emit_api(Emit *e)
{
    const char *M = e->M, *U = e->U;
    out(e, "/* Allocates the model for batches of up to `batch` samples and initialises\n"
           " * its weights from seed (deterministic). Exits with a message if memory runs out. */\n");
    out(e, "void %s_init(%s *m, int batch, uint64_t seed)\n{\n", M, M);
    out(e, "    memset(m, 0, sizeof *m);\n"
           "    m->batch = batch;\n"
           "    m->param = nnrt_alloc(%s_NPARAM, \"the parameters\");\n"
           "    m->grad = nnrt_alloc(%s_NPARAM, \"the gradients\");\n"
           "    m->act = nnrt_alloc((size_t)batch * %s_NACT, \"the activations\");\n"
           "    m->dact = nnrt_alloc((size_t)batch * %s_NACT, \"the activation gradients\");\n"
           "    nnrt_rng rng;\n"
           "    nnrt_rng_seed(&rng, seed);\n"
           "    for (int i = 0; i < %s_NTENSORS; i++)\n"
           "        nnrt_init_uniform(m->param + %s_params[i].offset, %s_params[i].numel, %s_params[i].bound, &rng);\n"
           "}\n\n", U, U, U, U, U, M, M, M);
    out(e, "void %s_free(%s *m)\n{\n"
           "    free(m->param);\n    free(m->grad);\n    free(m->act);\n    free(m->dact);\n"
           "    memset(m, 0, sizeof *m);\n}\n\n", M, M);
    out(e, "/* As `optimizer.zero_grad()`. */\n");
    out(e, "void %s_zero_grad(%s *m)\n{\n    memset(m->grad, 0, sizeof(float) * %s_NPARAM);\n}\n\n", M, M, U);
    out(e, "/* As `optimizer.step()`: plain SGD, param -= lr * grad. */\n");
    out(e, "void %s_step(%s *m, float lr)\n{\n    nnrt_sgd_step(m->param, m->grad, %s_NPARAM, lr);\n}\n\n",
        M, M, U);
    out(e, "/* Views of the parameters (what 0) or of their gradients (what 1, named\n"
           " * NAME.grad) as named tensors; returns how many. */\n");
    out(e, "static const char *const %s_grad_names[%s_NTENSORS] = {", M, U);
    for (int i = 0; i < e->g->nlayers; i++)
        for (int p = 0; p < e->g->layers[i].nparams; p++)
            out(e, "\"%s.grad\", ", e->g->layers[i].params[p].name);
    out(e, "};\n\n");
    out(e, "int %s_tensors(const %s *m, nnrt_tensor *t, int what)\n{\n"
           "    if (what > 1)\n"
           "        return 0;\n"
           "    for (int i = 0; i < %s_NTENSORS; i++) {\n"
           "        const struct %s_param *p = &%s_params[i];\n"
           "        t[i] = (nnrt_tensor){.name = what ? %s_grad_names[i] : p->name, .ndim = p->ndim,\n"
           "                             .data = (what ? m->grad : m->param) + p->offset};\n"
           "        memcpy(t[i].shape, p->shape, sizeof p->shape);\n"
           "    }\n"
           "    return %s_NTENSORS;\n}\n\n", M, M, U, M, M, M, U);
    out(e, "/* Saves the weights as safetensors, PyTorch's state_dict names; atomic: the\n"
           " * old file stays intact if anything fails. 0, or -1 with a message in err. */\n");
    out(e, "int %s_save(const %s *m, const char *path, char *err, size_t errlen)\n{\n"
           "    nnrt_tensor t[%s_NTENSORS];\n"
           "    int n = %s_tensors(m, t, 0);\n"
           "    const char *keys[] = {\"format\", \"model\"};\n"
           "    const char *vals[] = {\"pt\", \"%s\"};\n"
           "    return nnrt_save_safetensors(path, t, n, keys, vals, 2, err, errlen);\n}\n\n",
        M, M, U, M, e->g->name);
    out(e, "/* Loads weights saved by %s_save or by PyTorch; refuses, changing nothing,\n"
           " * a file whose tensors do not match the model. 0, or -1 with a message. */\n", M);
    out(e, "int %s_load(%s *m, const char *path, char *err, size_t errlen)\n{\n"
           "    nnrt_tensor t[%s_NTENSORS];\n"
           "    int n = %s_tensors(m, t, 0);\n"
           "    return nnrt_load_safetensors(path, t, n, err, errlen);\n}\n\n", M, M, U, M);
}

/* The summary as a C string, for the trainer's banner */
static void emit_summary_string(Emit *e)
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
    out(e, "static const char %s_summary[] =\n    \"", e->M);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n')
            out(e, i + 1 < len ? "\\n\"\n    \"" : "\\n");
        else if (text[i] == '"' || text[i] == '\\')
            out(e, "\\%c", text[i]);
        else
            fputc(text[i], e->out);
    }
    out(e, "\";\n\n");
    free(text);
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
    out(e, "},\n");
}

/* main(): the runtime's trainer (runtime/trainer.c), given this model */
static void emit_main(Emit *e, const char *src)
{
    const Graph *g = e->g;
    const char *M = e->M, *U = e->U;
    out(e, "#ifndef NNC_NO_MAIN\n"
           "/* ---- The trainer: runtime/trainer.c runs the tutorial's loop on this model. ---- */\n\n");
    emit_summary_string(e);
    out(e, "static void %s_init_v(void *m, int batch, uint64_t seed) { %s_init(m, batch, seed); }\n", M, M);
    out(e, "static void %s_free_v(void *m) { %s_free(m); }\n", M, M);
    out(e, "static void %s_zero_grad_v(void *m) { %s_zero_grad(m); }\n", M, M);
    out(e, "static float *%s_forward_v(void *m, const float *x, int n) { return %s_forward(m, x, n); }\n", M, M);
    out(e, "static float %s_loss_v(void *m, const float *t) { return %s_loss(m, t); }\n", M, M);
    out(e, "static void %s_backward_v(void *m) { %s_backward(m); }\n", M, M);
    out(e, "static void %s_step_v(void *m, float lr) { %s_step(m, lr); }\n", M, M);
    out(e, "static int %s_tensors_v(void *m, nnrt_tensor *t, int what) { return %s_tensors(m, t, what); }\n\n",
        M, M);
    out(e, "int main(int argc, char **argv)\n{\n"
           "    static %s m;\n"
           "    const nnrt_model model = {\n"
           "        .name = \"%s\", .source = %s, .summary = %s_summary, .self = &m,\n", M, g->name, c_string(src), M);
    emit_dims(e, "in", &g->nodes[g->input].shape);
    emit_dims(e, "out", &g->nodes[g->output].shape);
    emit_dims(e, "target", &g->target);
    out(e, "        .classes = 0, .lr = %.9gf, .ntensors = %s_NTENSORS, .nstate = 0,\n"
           "        .init = %s_init_v, .release = %s_free_v, .zero_grad = %s_zero_grad_v,\n"
           "        .forward = %s_forward_v, .loss = %s_loss_v, .backward = %s_backward_v,\n"
           "        .step = %s_step_v, .tensors = %s_tensors_v,\n"
           "    };\n"
           "    return nnrt_train_main(&model, argc, argv);\n"
           "}\n"
           "#endif /* NNC_NO_MAIN */\n",
        g->lr, U, M, M, M, M, M, M, M, M);
}

void emit_c(FILE *f, const Graph *g, const char *source_path)
{
    Emit e = {.g = g, .out = f, .M = g->name, .U = upper(g->name)};
    e.use_v = xalloc(sizeof(bool) * (size_t)g->nnodes);
    e.use_d = xalloc(sizeof(bool) * (size_t)g->nnodes);
    name_values(&e);
    emit_header(&e, source_path);
    emit_sizes(&e);
    emit_state(&e);
    emit_forward(&e);
    emit_loss(&e);
    emit_backward(&e);
    emit_api(&e);
    emit_main(&e, source_path);
}

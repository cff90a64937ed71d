/* graph.c — from syntax tree to dataflow graph.
 *
 * Reads the statements of a model: the input declaration, the layers (each
 * declared once by name; the name becomes its weights' names), the forward
 * block, the loss and the optimizer. Arguments are bound to each operation's
 * parameters here (unknown names, missing or mistyped values are reported);
 * the forward block becomes an array of nodes in topological order: a
 * variable names a node, so `x = f(x)` rebinds x and a value may be used
 * twice. Shapes are not looked at here; shape.c does that next.
 */
#include "nnc.h"

#include <string.h>

const char *op_name(OpKind op)
{
    switch (op) {
    case OP_INPUT: return "input";
    case OP_CONV2D: return "conv2d";
    case OP_LINEAR: return "linear";
    case OP_MAXPOOL2D: return "maxpool2d";
    case OP_RELU: return "relu";
    case OP_FLATTEN: return "flatten";
    }
    return "?";
}

/* Every operation a user can write, for "did you mean". */
static const char *const layer_ops[] = {"conv2d", "linear"};
static const char *const func_ops[] = {"relu", "maxpool2d", "flatten"};
static const char *const all_ops[] = {"conv2d", "linear", "relu", "maxpool2d", "flatten"};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- argument binding ---- */

/* The arguments of one call, matched to an operation's parameter names:
 * slot[i] is the value given for names[i], or NULL. */
typedef struct Bound {
    Ast *slot[8];
    int npos;           /* positional arguments given */
} Bound;

/* Binds call's arguments to names. Positional arguments fill pos_order
 * (indices into names) in turn. Reports unknown, repeated and surplus
 * arguments; returns false if any. */
static bool bind_args(Bound *b, const Ast *call, const char *const *names, int nnames,
                      const int *pos_order, int npos_max)
{
    bool ok = true;
    memset(b, 0, sizeof *b);
    for (int i = 0; i < call->nkids; i++) {
        Ast *arg = call->kids[i];
        int slot = -1;
        if (!arg->name) {
            if (b->npos >= npos_max) {
                diag_error(arg->span, "%s takes at most %d positional argument%s, this is number %d",
                           call->name, npos_max, npos_max == 1 ? "" : "s", b->npos + 1);
                ok = false;
                continue;
            }
            slot = pos_order[b->npos++];
        } else {
            for (int j = 0; j < nnames; j++)
                if (strcmp(arg->name, names[j]) == 0)
                    slot = j;
            if (slot < 0) {
                diag_error(arg->name_span, "%s has no argument named `%s`", call->name, arg->name);
                const char *near = diag_closest(arg->name, names, nnames);
                if (near)
                    diag_help("did you mean `%s`?", near);
                ok = false;
                continue;
            }
        }
        if (b->slot[slot]) {
            diag_error(arg->span, "argument `%s` of %s is given twice", names[slot], call->name);
            ok = false;
            continue;
        }
        b->slot[slot] = arg->value;
    }
    return ok;
}

/* a positive integer argument: 5 */
static bool get_size(const Ast *v, const char *what, int64_t min, int64_t *out)
{
    if (v->kind != A_INT) {
        diag_error(v->span, "%s must be an integer, found %s", what, ast_kind_name(v));
        return false;
    }
    if (v->ival < min) {
        diag_error(v->span, "%s must be at least %lld, found %lld", what, (long long)min, v->ival);
        return false;
    }
    *out = v->ival;
    return true;
}

/* an integer or a pair: 5 or [5, 3] */
static bool get_pair(const Ast *v, const char *what, int64_t min, int64_t out[2])
{
    if (v->kind == A_LIST) {
        if (v->nkids != 2) {
            diag_error(v->span, "%s must be one integer or a list of two, found a list of %d", what, v->nkids);
            return false;
        }
        return get_size(v->kids[0], what, min, &out[0]) && get_size(v->kids[1], what, min, &out[1]);
    }
    if (!get_size(v, what, min, &out[0]))
        return false;
    out[1] = out[0];
    return true;
}

static bool get_bool(const Ast *v, const char *what, bool *out)
{
    if (v->kind == A_IDENT && (!strcmp(v->name, "true") || !strcmp(v->name, "false"))) {
        *out = v->name[0] == 't';
        return true;
    }
    diag_error(v->span, "%s must be `true` or `false`, found %s", what, ast_kind_name(v));
    return false;
}

static bool get_number(const Ast *v, const char *what, double *out)
{
    if (v->kind == A_INT || v->kind == A_FLOAT) {
        *out = v->kind == A_INT ? (double)v->ival : v->fval;
        return true;
    }
    diag_error(v->span, "%s must be a number, found %s", what, ast_kind_name(v));
    return false;
}

/* [1, 32, 32]: a shape of 1 to MAX_DIMS positive sizes */
static bool get_shape(const Ast *v, const char *what, Shape *s)
{
    if (v->kind != A_LIST) {
        diag_error(v->span, "%s must be a shape such as [1, 32, 32], found %s", what, ast_kind_name(v));
        return false;
    }
    if (v->nkids < 1 || v->nkids > MAX_DIMS) {
        diag_error(v->span, "%s must have 1 to %d dimensions, found %d", what, MAX_DIMS, v->nkids);
        return false;
    }
    s->ndim = v->nkids;
    for (int i = 0; i < v->nkids; i++)
        if (!get_size(v->kids[i], "a dimension", 1, &s->dim[i]))
            return false;
    return true;
}

static void missing_arg(const Ast *call, const char *name, const char *example)
{
    diag_error(call->span, "%s needs the argument `%s`", call->name, name);
    diag_help("for example `%s`", example);
}

/* ---- layers ---- */

/* conv2d(out, kernel=k, stride=1, padding=0, dilation=1, groups=1, bias=true),
 * or PyTorch's order conv2d(in, out, kernel) when three positionals are given */
static bool bind_conv2d(Layer *l, const Ast *call)
{
    static const char *const names[] = {"in", "out", "kernel", "stride", "padding", "dilation", "groups", "bias"};
    static const int short_order[] = {1, 2}, torch_order[] = {0, 1, 2};
    int npos = 0;
    for (int i = 0; i < call->nkids; i++)
        npos += call->kids[i]->name == NULL;
    Bound b;
    if (!bind_args(&b, call, names, COUNT(names), npos >= 3 ? torch_order : short_order, npos >= 3 ? 3 : 2))
        return false;
    bool ok = true;
    l->in = -1;
    l->stride[0] = l->stride[1] = l->dil[0] = l->dil[1] = l->groups = 1;
    l->bias = true;
    if (b.slot[0]) {
        ok &= get_size(b.slot[0], "in", 1, &l->in);
        l->in_span = b.slot[0]->span;
    }
    if (!b.slot[1])
        missing_arg(call, "out", "conv2d(6, kernel=5)"), ok = false;
    else
        ok &= get_size(b.slot[1], "out", 1, &l->out);
    if (!b.slot[2])
        missing_arg(call, "kernel", "conv2d(6, kernel=5)"), ok = false;
    else
        ok &= get_pair(b.slot[2], "kernel", 1, l->kernel);
    if (b.slot[3]) ok &= get_pair(b.slot[3], "stride", 1, l->stride);
    if (b.slot[4]) ok &= get_pair(b.slot[4], "padding", 0, l->pad);
    if (b.slot[5]) ok &= get_pair(b.slot[5], "dilation", 1, l->dil);
    if (b.slot[6]) ok &= get_size(b.slot[6], "groups", 1, &l->groups);
    if (b.slot[7]) ok &= get_bool(b.slot[7], "bias", &l->bias);
    if (ok && l->out % l->groups) {
        diag_error(b.slot[6]->span, "groups (%lld) must divide the output channels (%lld)",
                   (long long)l->groups, (long long)l->out);
        ok = false;
    }
    return ok;
}

/* linear(out, bias=true), or PyTorch's order linear(in, out) */
static bool bind_linear(Layer *l, const Ast *call)
{
    static const char *const names[] = {"in", "out", "bias"};
    static const int short_order[] = {1}, torch_order[] = {0, 1};
    int npos = 0;
    for (int i = 0; i < call->nkids; i++)
        npos += call->kids[i]->name == NULL;
    Bound b;
    if (!bind_args(&b, call, names, COUNT(names), npos >= 2 ? torch_order : short_order, npos >= 2 ? 2 : 1))
        return false;
    bool ok = true;
    l->in = -1;
    l->bias = true;
    if (b.slot[0]) {
        ok &= get_size(b.slot[0], "in", 1, &l->in);
        l->in_span = b.slot[0]->span;
    }
    if (!b.slot[1])
        missing_arg(call, "out", "linear(120)"), ok = false;
    else
        ok &= get_size(b.slot[1], "out", 1, &l->out);
    if (b.slot[2]) ok &= get_bool(b.slot[2], "bias", &l->bias);
    return ok;
}

static Layer *find_layer(Graph *g, const char *name)
{
    for (int i = 0; i < g->nlayers; i++)
        if (strcmp(g->layers[i].name, name) == 0)
            return &g->layers[i];
    return NULL;
}

static void declare_layer(Graph *g, Stmt *s)
{
    Layer *prev = find_layer(g, s->name);
    if (prev) {
        diag_error(s->name_span, "layer `%s` is defined twice", s->name);
        diag_note(prev->span, "the first definition is here");
        return;
    }
    Ast *call = s->expr;
    if (call->kind != A_CALL) {
        diag_error(call->span, "a layer is defined by a call such as `conv2d(6, kernel=5)`, found %s",
                   ast_kind_name(call));
        return;
    }
    Layer l = {.name = s->name, .span = s->span, .call = call};
    bool ok;
    if (strcmp(call->name, "conv2d") == 0) {
        l.op = OP_CONV2D;
        ok = bind_conv2d(&l, call);
    } else if (strcmp(call->name, "linear") == 0) {
        l.op = OP_LINEAR;
        ok = bind_linear(&l, call);
    } else {
        diag_error(call->name_span, "unknown layer type `%s`", call->name);
        const char *near = diag_closest(call->name, all_ops, COUNT(all_ops));
        if (near && (strcmp(near, "conv2d") == 0 || strcmp(near, "linear") == 0))
            diag_help("did you mean `%s`?", near);
        else if (near)
            diag_help("`%s` has no weights: use it directly in forward, as `%s(x)`", near, near);
        else
            diag_help("layers are %s and %s", layer_ops[0], layer_ops[1]);
        l.bad = true;
        VEC_PUSH(g->layers, g->nlayers, g->caplayers, l);
        return;
    }
    l.bad = !ok;
    VEC_PUSH(g->layers, g->nlayers, g->caplayers, l);
}

/* ---- forward ---- */

typedef struct Binding { const char *name; int node; } Binding;
typedef struct Env { Binding *b; int n, cap; } Env;

static int env_find(const Env *e, const char *name)
{
    for (int i = e->n - 1; i >= 0; i--)
        if (strcmp(e->b[i].name, name) == 0)
            return e->b[i].node;
    return -1;
}

static int add_node(Graph *g, OpKind op, Span at, const char *label)
{
    Node n = {.id = g->nnodes, .op = op, .span = at, .label = (char *)label, .alias = -1};
    VEC_PUSH(g->nodes, g->nnodes, g->capnodes, n);
    return n.id;
}

static int eval(Graph *g, Env *env, Ast *e);

/* The one positional value argument of f(x) */
static int eval_operand(Graph *g, Env *env, const Ast *call, Ast *value)
{
    if (!value) {
        diag_error(call->span, "%s needs an input value, as in `%s(x)`", call->name, call->name);
        return -1;
    }
    return eval(g, env, value);
}

/* conv1(x): apply a declared layer */
static int eval_layer_call(Graph *g, Env *env, Ast *call, Layer *l)
{
    if (l->bad)     /* its definition was reported; check the input, say no more */
        return call->nkids == 1 ? (eval(g, env, call->kids[0]->value), -1) : -1;
    if (call->nkids != 1 || call->kids[0]->name) {
        diag_error(call->span, "layer `%s` takes exactly one input, as in `%s(x)`", l->name, l->name);
        if (call->nkids > 1)
            diag_note(l->span, "its settings belong to its definition");
        return -1;
    }
    int in = eval(g, env, call->kids[0]->value);
    if (in < 0)
        return -1;
    int id = add_node(g, l->op, call->span, l->name);
    g->nodes[id].call = call;
    g->nodes[id].layer = l;
    g->nodes[id].in[0] = in;
    g->nodes[id].nin = 1;
    l->uses++;
    return id;
}

/* relu(x), flatten(x), maxpool2d(x, kernel, stride=kernel, padding=0) */
static int eval_func_call(Graph *g, Env *env, Ast *call)
{
    static const char *const pool_names[] = {"x", "kernel", "stride", "padding"};
    static const char *const unary_names[] = {"x"};
    static const int order[] = {0, 1, 2, 3};
    OpKind op;
    if (strcmp(call->name, "relu") == 0) op = OP_RELU;
    else if (strcmp(call->name, "flatten") == 0) op = OP_FLATTEN;
    else if (strcmp(call->name, "maxpool2d") == 0) op = OP_MAXPOOL2D;
    else {
        diag_error(call->name_span, "unknown operation or layer `%s`", call->name);
        const char *cands[64];
        int n = 0;
        for (int i = 0; i < COUNT(func_ops); i++) cands[n++] = func_ops[i];
        for (int i = 0; i < g->nlayers && n < 64; i++) cands[n++] = g->layers[i].name;
        const char *near = diag_closest(call->name, cands, n);
        if (near)
            diag_help("did you mean `%s`?", near);
        else if (diag_closest(call->name, layer_ops, COUNT(layer_ops)))
            diag_help("declare layers before forward, as `name = %s(...)`, then call `name(x)`",
                      diag_closest(call->name, layer_ops, COUNT(layer_ops)));
        return -1;
    }
    Bound b;
    bool pool = op == OP_MAXPOOL2D;
    if (!bind_args(&b, call, pool ? pool_names : unary_names, pool ? 4 : 1, order, pool ? 4 : 1))
        return -1;
    int in = eval_operand(g, env, call, b.slot[0]);
    if (in < 0)
        return -1;
    int64_t kernel[2] = {0, 0}, stride[2] = {0, 0}, pad[2] = {0, 0};
    if (pool) {
        if (!b.slot[1]) {
            missing_arg(call, "kernel", "maxpool2d(x, 2)");
            return -1;
        }
        if (!get_pair(b.slot[1], "kernel", 1, kernel))
            return -1;
        stride[0] = kernel[0], stride[1] = kernel[1];   /* PyTorch: stride defaults to kernel */
        if (b.slot[2] && !get_pair(b.slot[2], "stride", 1, stride))
            return -1;
        if (b.slot[3] && !get_pair(b.slot[3], "padding", 0, pad))
            return -1;
        if (pad[0] * 2 > kernel[0] || pad[1] * 2 > kernel[1]) {
            diag_error(b.slot[3]->span, "padding of maxpool2d must be at most half the kernel");
            return -1;
        }
    }
    int id = add_node(g, op, call->span, (char *)op_name(op));
    Node *n = &g->nodes[id];
    n->call = call;
    n->in[0] = in;
    n->nin = 1;
    memcpy(n->kernel, kernel, sizeof kernel);
    memcpy(n->stride, stride, sizeof stride);
    memcpy(n->pad, pad, sizeof pad);
    return id;
}

/* An expression in forward: a name bound earlier, or a call. Returns the node
 * id of its value, or -1 after reporting an error. */
static int eval(Graph *g, Env *env, Ast *e)
{
    if (e->kind == A_IDENT) {
        int id = env_find(env, e->name);
        if (id >= 0)
            return id;
        Layer *l = find_layer(g, e->name);
        if (l) {
            diag_error(e->span, "`%s` is a layer, not a value", e->name);
            diag_help("apply it to a value: `%s(x)`", e->name);
            return -1;
        }
        diag_error(e->span, "`%s` is not defined", e->name);
        const char *cands[256];
        int n = 0;
        for (int i = 0; i < env->n && n < 256; i++)
            cands[n++] = env->b[i].name;
        const char *near = diag_closest(e->name, cands, n);
        if (near)
            diag_help("did you mean `%s`?", near);
        return -1;
    }
    if (e->kind == A_CALL) {
        Layer *l = find_layer(g, e->name);
        return l ? eval_layer_call(g, env, e, l) : eval_func_call(g, env, e);
    }
    diag_error(e->span, "expected a value such as `x` or `relu(x)`, found %s", ast_kind_name(e));
    return -1;
}

static void build_forward(Graph *g, Stmt *fw, Env *env)
{
    g->output = -1;
    for (int i = 0; i < fw->nbody; i++) {
        Stmt *s = fw->body[i];
        if (g->output >= 0) {
            diag_error(s->span, "statement after `return`");
            return;
        }
        if (s->kind == S_RETURN) {
            g->output = eval(g, env, s->expr);
            if (g->output < 0)
                g->output = -2;     /* reported; no "missing return" as well */
            continue;
        }
        int id = eval(g, env, s->expr);
        if (id >= 0) {
            Binding b = {s->name, id};
            VEC_PUSH(env->b, env->n, env->cap, b);
        }
    }
    if (g->output == -1) {
        diag_error(fw->span, "forward has no `return`");
        diag_help("end forward with `return <value>`: the value the loss compares with the target");
    }
}

static void build_loss(Graph *g, Stmt *s)
{
    static const char *const losses[] = {"mse"};
    static const char *const names[] = {"target"};
    static const int order[] = {0};
    Ast *call = s->expr;
    g->loss_span = s->span;
    if (strcmp(call->name, "mse") != 0) {
        diag_error(call->name_span, "unknown loss `%s`", call->name);
        const char *near = diag_closest(call->name, losses, COUNT(losses));
        diag_help(near ? "did you mean `%s`?" : "the losses are: %s", near ? near : "mse");
        return;
    }
    g->loss = LOSS_MSE;
    Bound b;
    if (!bind_args(&b, call, names, 1, order, 0))
        return;
    if (b.slot[0]) {
        g->target_given = get_shape(b.slot[0], "the target", &g->target);
        g->target_span = b.slot[0]->span;
    }
}

static void build_optimizer(Graph *g, Stmt *s)
{
    static const char *const opts[] = {"sgd"};
    static const char *const names[] = {"lr"};
    static const int order[] = {0};
    Ast *call = s->expr;
    g->opt_span = s->span;
    if (strcmp(call->name, "sgd") != 0) {
        diag_error(call->name_span, "unknown optimizer `%s`", call->name);
        const char *near = diag_closest(call->name, opts, COUNT(opts));
        diag_help(near ? "did you mean `%s`?" : "the optimizers are: %s", near ? near : "sgd");
        return;
    }
    g->opt = OPT_SGD;
    Bound b;
    if (!bind_args(&b, call, names, 1, order, 1))
        return;
    if (!b.slot[0]) {
        missing_arg(call, "lr", "sgd(lr=0.01)");
        return;
    }
    if (get_number(b.slot[0], "lr", &g->lr) && !(g->lr > 0)) {
        diag_error(b.slot[0]->span, "lr must be positive, found %g", g->lr);
    }
}

/* Reports a second `input`, `forward`, `loss` or `optimizer` */
static bool once(Stmt **seen, Stmt *s, const char *what)
{
    if (*seen) {
        diag_error(s->span, "a model has one %s; this is the second", what);
        diag_note((*seen)->span, "the first is here");
        return false;
    }
    *seen = s;
    return true;
}

Graph *graph_build(Model *m)
{
    Graph *g = xalloc(sizeof *g);
    g->model = m;
    g->name = m->name;
    g->input = g->output = -1;
    Stmt *input = NULL, *forward = NULL, *loss = NULL, *opt = NULL;
    for (int i = 0; i < m->nitems; i++) {
        Stmt *s = m->items[i];
        switch (s->kind) {
        case S_INPUT: once(&input, s, "input"); break;
        case S_LAYER: declare_layer(g, s); break;
        case S_FORWARD: once(&forward, s, "forward block"); break;
        case S_LOSS: if (once(&loss, s, "loss")) build_loss(g, s); break;
        case S_OPTIMIZER: if (once(&opt, s, "optimizer")) build_optimizer(g, s); break;
        default: break;
        }
    }
    if (!input) {
        diag_error(m->name_span, "model `%s` has no input", m->name);
        diag_help("declare it, e.g. `input x: [1, 32, 32]` (channels, height, width; the batch is implicit)");
    }
    if (!forward)
        diag_error(m->name_span, "model `%s` has no forward block", m->name);
    if (!loss) {
        diag_error(m->name_span, "model `%s` has no loss", m->name);
        diag_help("add e.g. `loss mse(target: [10])`");
    }
    if (!opt) {
        diag_error(m->name_span, "model `%s` has no optimizer", m->name);
        diag_help("add e.g. `optimizer sgd(lr=0.01)`");
    }
    if (!input || !forward)
        return g;
    Shape in_shape;
    if (!get_shape(input->expr, "the input", &in_shape))
        return g;
    g->input = add_node(g, OP_INPUT, input->span, input->name);
    g->nodes[g->input].shape = in_shape;
    Env env = {0};
    Binding b = {input->name, g->input};
    VEC_PUSH(env.b, env.n, env.cap, b);
    build_forward(g, forward, &env);
    return g;
}

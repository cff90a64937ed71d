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

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const loss_names[] = {"mse", "l1", "cross_entropy", "nll", "bce_with_logits"};
static const char *const opt_names[] = {"sgd", "adam", "adamw"};
const char *loss_name(LossKind k) { return loss_names[k]; }
const char *opt_name(OptKind k) { return opt_names[k]; }

/* ---- argument binding ---- */

/* The arguments of one call, matched to an operation's parameter names:
 * slot[i] is the value given for names[i], or NULL. */
typedef struct Bound {
    Ast *slot[8];
    int npos;           /* positional arguments given */
} Bound;

/* PyTorch's names for nnc's arguments, accepted as they are: one name
 * each, for one operation, so never ambiguous. */
static const struct { const char *op, *torch, *name; } arg_aliases[] = {
    {"conv2d", "in_channels", "in"},     {"conv2d", "out_channels", "out"}, {"conv2d", "kernel_size", "kernel"},
    {"linear", "in_features", "in"},     {"linear", "out_features", "out"},
    {"maxpool2d", "kernel_size", "kernel"}, {"avgpool2d", "kernel_size", "kernel"},
    {"adaptive_avgpool2d", "output_size", "size"},
};

/* PyTorch's arguments nnc has no use for, and what to write instead */
static const struct { const char *torch, *help; } arg_hints[] = {
    {"inplace", "nnc decides itself which values share memory: leave `inplace` out"},
    {"padding_mode", "nnc pads with zeros, PyTorch's default: leave `padding_mode` out"},
    {"device", "nnc's trainer runs on the CPU: leave `device` out"},
    {"dtype", "nnc trains in float32: leave `dtype` out"},
    {"init", "nnc initialises every layer as PyTorch does; there is no `init` argument"},
    {"track_running_stats", "batch norm always keeps running statistics here, PyTorch's default: leave it out"},
    {"amsgrad", "nnc has no AMSGrad yet: leave `amsgrad` out"},
};

/* the parameter PyTorch's name torch stands for in call, or NULL */
static const char *arg_alias(const Ast *call, const char *torch)
{
    for (int i = 0; i < COUNT(arg_aliases); i++)
        if (!strcmp(call->name, arg_aliases[i].op) && !strcmp(torch, arg_aliases[i].torch))
            return arg_aliases[i].name;
    return NULL;
}

/* The help for an argument name that call does not have */
static void unknown_arg_help(const Ast *call, const char *name, const char *const *names, int nnames)
{
    for (int i = 0; i < COUNT(arg_hints); i++)
        if (!strcmp(name, arg_hints[i].torch)) {
            diag_help("%s", arg_hints[i].help);
            return;
        }
    for (int i = 0; i < COUNT(arg_aliases); i++)     /* another operation's PyTorch name: in_channels in linear */
        for (int j = 0; j < nnames; j++)
            if (!strcmp(name, arg_aliases[i].torch) && !strcmp(names[j], arg_aliases[i].name)) {
                diag_help("%s calls it `%s`", call->name, names[j]);
                return;
            }
    const char *near = diag_closest(name, names, nnames);
    if (near)
        diag_help("did you mean `%s`?", near);
}

/* Binds call's arguments to names. Positional arguments fill pos_order
 * (indices into names) in turn; PyTorch's names (kernel_size) stand for
 * nnc's, and Python's True and False for true and false. Reports unknown,
 * repeated and surplus arguments; returns false if any. */
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
            const char *alias = arg_alias(call, arg->name);
            if (alias)
                arg->name = (char *)alias;  /* the AST says it as nnc does (for --emit=json) */
            for (int j = 0; j < nnames; j++)
                if (strcmp(arg->name, names[j]) == 0)
                    slot = j;
            if (slot < 0) {
                diag_error(arg->name_span, "%s has no argument named `%s`", call->name, arg->name);
                unknown_arg_help(call, arg->name, names, nnames);
                ok = false;
                continue;
            }
        }
        if (b->slot[slot]) {
            diag_error(arg->span, "argument `%s` of %s is given twice", names[slot], call->name);
            ok = false;
            continue;
        }
        Ast *v = arg->value;
        if (v->kind == A_IDENT && (!strcmp(v->name, "True") || !strcmp(v->name, "False")))
            v->name = v->name[0] == 'T' ? "true" : "false";
        b->slot[slot] = v;
        arg->param = names[slot];
    }
    return ok;
}

/* a positive integer argument: 5 */
bool arg_size(const Ast *v, const char *what, int64_t min, int64_t *out)
{
    if (v->kind != A_INT) {
        diag_error(v->span, "%s must be an integer, found %s", what, ast_kind_name(v));
        return false;
    }
    if (v->ival < min) {
        diag_error(v->span, "%s must be at least %lld, found %lld", what, (long long)min, v->ival);
        return false;
    }
    if (v->ival > MAX_NUMEL) {
        diag_error(v->span, "%s must be at most %lld, found %lld", what, (long long)MAX_NUMEL, v->ival);
        return false;
    }
    *out = v->ival;
    return true;
}

/* an integer or a pair: 5 or [5, 3] */
bool arg_pair(const Ast *v, const char *what, int64_t min, int64_t out[2])
{
    if (v->kind == A_LIST) {
        if (v->nkids != 2) {
            diag_error(v->span, "%s must be one integer or a list of two, found a list of %d", what, v->nkids);
            return false;
        }
        return arg_size(v->kids[0], what, min, &out[0]) && arg_size(v->kids[1], what, min, &out[1]);
    }
    if (!arg_size(v, what, min, &out[0]))
        return false;
    out[1] = out[0];
    return true;
}

bool arg_bool(const Ast *v, const char *what, bool *out)
{
    if (v->kind == A_IDENT && (!strcmp(v->name, "true") || !strcmp(v->name, "false"))) {
        *out = v->name[0] == 't';
        return true;
    }
    diag_error(v->span, "%s must be `true` or `false`, found %s", what, ast_kind_name(v));
    return false;
}

bool arg_number(const Ast *v, const char *what, double *out)
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
    const Ast *first = v->kids[0];
    if (first->kind == A_IDENT || (first->kind == A_INT && first->ival == -1)) {   /* [N, 3, 32, 32], [-1, 784] */
        diag_error(first->span, "the batch dimension is implicit: %s gives the size of one sample", what);
        if (v->nkids > 1) {
            char *rest = diag_snippet((Span){v->kids[1]->span.first_line, v->kids[1]->span.first_column,
                                             v->span.last_line, v->span.last_column - 1});
            diag_help("leave `%s` out: `[%s]`; the batch is chosen when the trainer runs", diag_snippet(first->span),
                      rest);
        }
        return false;
    }
    s->ndim = v->nkids;
    for (int i = 0; i < v->nkids; i++)
        if (!arg_size(v->kids[i], "a dimension", 1, &s->dim[i]))
            return false;
    return true;
}

void arg_missing(const Ast *call, const char *name, const char *example)
{
    diag_error(call->span, "%s needs the argument `%s`", call->name, name);
    diag_help("for example `%s`", example);
}

bool arg_in_out(Layer *l, const Ast *call, const Ast *in, const Ast *out, const char *example)
{
    bool ok = true;
    l->in = -1;
    if (in) {
        ok &= arg_size(in, "in", 1, &l->in);
        l->in_span = in->span;
    }
    if (!out)
        arg_missing(call, "out", example), ok = false;
    else
        ok &= arg_size(out, "out", 1, &l->out);
    return ok;
}

/* a number in [lo, hi] (hi_open: below hi) */
bool arg_range(const Ast *v, const char *what, double lo, double hi, bool hi_open, double *out)
{
    if (!arg_number(v, what, out))
        return false;
    if (*out < lo || *out > hi || (hi_open && *out >= hi)) {
        diag_error(v->span, "%s must be in [%g, %g%c, found %g", what, lo, hi, hi_open ? ')' : ']', *out);
        return false;
    }
    return true;
}

/* one of the strings choices: "mean" */
int arg_choice(const Ast *v, const char *what, const char *const *choices, int n)
{
    if (v->kind == A_STRING)
        for (int i = 0; i < n; i++)
            if (strcmp(v->str, choices[i]) == 0)
                return i;
    char list[256] = "";
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s\"%s\"", i ? (i == n - 1 ? " or " : ", ") : "",
                                choices[i]);
    if (v->kind == A_STRING)
        diag_error(v->span, "%s must be %s, found \"%s\"", what, list, v->str);
    else
        diag_error(v->span, "%s must be %s, found %s", what, list, ast_kind_name(v));
    return -1;
}

/* ---- layers ---- */

static Layer *find_layer(Graph *g, const char *name)
{
    int i = namemap_get(&g->layer_index, name);
    return i >= 0 ? &g->layers[i] : NULL;
}

/* adds l to the graph's layers (its name is new) */
static void add_layer(Graph *g, Layer l)
{
    VEC_PUSH(g->layers, g->nlayers, g->caplayers, l);
    namemap_put(&g->layer_index, l.name, g->nlayers - 1);
}

/* PyTorch's operations that nnc does not have (yet), by their names
 * without `_` in lower case, and what nnc has instead, if anything */
static const struct { const char *name, *instead; } missing_ops[] = {
    {"conv1d", NULL}, {"conv3d", NULL}, {"convtranspose1d", NULL}, {"convtranspose2d", NULL},
    {"convtranspose3d", NULL}, {"maxpool1d", NULL}, {"maxpool3d", NULL}, {"avgpool1d", NULL},
    {"avgpool3d", NULL}, {"adaptivemaxpool2d", NULL}, {"adaptiveavgpool1d", NULL}, {"batchnorm3d", NULL},
    {"layernorm", NULL}, {"groupnorm", NULL}, {"instancenorm2d", NULL}, {"localresponsenorm", NULL},
    {"embedding", NULL}, {"lstm", NULL}, {"gru", NULL}, {"rnn", NULL}, {"multiheadattention", NULL},
    {"attention", NULL}, {"transformer", NULL}, {"mish", NULL}, {"softplus", NULL}, {"softsign", NULL},
    {"selu", NULL}, {"celu", NULL}, {"prelu", NULL}, {"rrelu", NULL}, {"relu6", NULL}, {"hardtanh", NULL},
    {"hardswish", NULL}, {"hardsigmoid", NULL}, {"logsigmoid", NULL}, {"softmin", NULL}, {"upsample", NULL},
    {"interpolate", NULL}, {"pixelshuffle", NULL}, {"pad", NULL}, {"zeropad2d", NULL}, {"mul", NULL},
    {"sub", NULL}, {"div", NULL}, {"matmul", NULL}, {"bmm", NULL}, {"sum", NULL}, {"mean", NULL},
    {"reshape", NULL}, {"view", NULL}, {"transpose", NULL}, {"permute", NULL}, {"squeeze", NULL},
    {"unsqueeze", NULL}, {"dropout2d", NULL}, {"alphadropout", NULL}, {"identity", NULL},
    {"swish", "silu"}, {"cat", "concat"}, {"concatenate", "concat"}, {"dense", "linear"},
    {"fullyconnected", "linear"}, {"conv", "conv2d"}, {"batchnorm", "batchnorm1d` or `batchnorm2d"},
    {"globalavgpool2d", "global_avgpool2d"}, {"sequential", NULL},
};

/* name in lower case without `_`: MaxPool2d, max_pool2d -> maxpool2d */
static char *op_key(const char *name)
{
    char *k = xalloc(strlen(name) + 1), *o = k;
    for (; *name; name++)
        if (*name != '_')
            *o++ = (char)(*name >= 'A' && *name <= 'Z' ? *name - 'A' + 'a' : *name);
    return k;
}

/* the operation whose name (or alias) is name but for case and `_`
 * (PyTorch's spelling: MaxPool2d, max_pool2d, LeakyReLU), or NULL */
static const OpDef *op_find_loosely(const char *name)
{
    const char *names[OP_COUNT * 2];
    int n = op_names(names, OP_COUNT * 2, true);
    n += op_names(names + n, OP_COUNT * 2 - n, false);
    char *key = op_key(name);
    for (int i = 0; i < n; i++)
        if (!strcmp(op_key(names[i]), key))
            return op_find(names[i]);
    return NULL;
}

/* the index of name in missing_ops, or -1 */
static int missing_op(const char *name)
{
    char *key = op_key(name);
    for (int i = 0; i < COUNT(missing_ops); i++)
        if (!strcmp(key, missing_ops[i].name))
            return i;
    return -1;
}

/* "`a`", "`a` or `b`", "`a`, `b` or `c`": up to three of cands close to
 * name in spelling (diag_closest's rule), the closest first */
static char *close_names(const char *name, const char *const *cands, int n)
{
    const char *left[128];
    int nleft = n < 128 ? n : 128;
    memcpy(left, cands, sizeof(char *) * (size_t)nleft);
    const char *found[3];
    int nfound = 0;
    while (nfound < 3) {
        const char *near = diag_closest(name, left, nleft);
        if (!near)
            break;
        found[nfound++] = near;
        for (int i = 0; i < nleft; i++)
            if (!strcmp(left[i], near))
                left[i--] = left[--nleft];
    }
    if (!nfound)
        return NULL;
    char *list = "";
    for (int i = 0; i < nfound; i++)
        list = xprintf("%s%s`%s`", list, i == 0 ? "" : i == nfound - 1 ? " or " : ", ", found[i]);
    return list;
}

/* The help under "unknown operation `name`": PyTorch's spelling of one of
 * nnc's, an operation nnc does not have yet, or names close in spelling
 * (cands); else where the operations are listed. Never a guess that
 * changes the meaning (conv1d is not conv2d, selu is not relu). */
static void unknown_op_help(const char *name, const char *const *cands, int n, bool want_layer)
{
    const OpDef *d = op_find_loosely(name);
    if (d) {
        if (d->layer == want_layer)
            diag_help("nnc calls it `%s`", d->name);
        else if (d->layer)
            diag_help("nnc calls it `%s`, a layer: declare it first, as `name = %s(...)`, then call `name(x)`",
                      d->name, d->name);
        else
            diag_help("nnc calls it `%s`, which has no weights: use it directly in forward, as `%s(x)`", d->name,
                      d->name);
        return;
    }
    int m = missing_op(name);
    if (m >= 0) {
        if (missing_ops[m].instead)
            diag_help("nnc calls it `%s`", missing_ops[m].instead);
        else
            diag_note(NO_SPAN, "nnc has no `%s` yet; docs/language.md lists the operations it has", name);
        return;
    }
    char *near = close_names(name, cands, n);
    if (near)
        diag_help("did you mean %s?", near);
    else
        diag_note(NO_SPAN, "docs/language.md lists the operations nnc has");
}

/* The error for a layer declared with something that is not a layer type
 * (d: the function it names, or NULL) */
static void unknown_layer_type(const Ast *call, const OpDef *d)
{
    if (d) {
        diag_error(call->name_span, "`%s` has no weights, so it is not declared as a layer", call->name);
        diag_help("use it directly in forward, as `%s(x)`", call->name);
        return;
    }
    diag_error(call->name_span, "unknown layer type `%s`", call->name);
    const char *cands[OP_COUNT], *fcands[OP_COUNT * 2];
    int n = op_names(cands, OP_COUNT, true), nf = op_names(fcands, OP_COUNT * 2, false);
    char *fnear = close_names(call->name, fcands, nf);
    if (!op_find_loosely(call->name) && missing_op(call->name) < 0 && !close_names(call->name, cands, n) && fnear) {
        diag_help("%s has no weights: use it directly in forward, as `f(x)`", fnear);
        return;
    }
    unknown_op_help(call->name, cands, n, true);
}

/* Is the argument `name` (or its PyTorch name) given by name in call? */
static bool named_arg(const Ast *call, const char *name)
{
    for (int i = 0; i < call->nkids; i++) {
        const char *n = call->kids[i]->name;
        if (n && (!strcmp(n, name) || (arg_alias(call, n) && !strcmp(arg_alias(call, n), name))))
            return true;
    }
    return false;
}

/* conv2d(3, 16): two integers that nnc reads as (out, kernel) and PyTorch's
 * nn.Conv2d(3, 16, ...) as (in, out). Said, with how nnc read them. */
static void warn_positional_reading(const OpDef *d, const Ast *call)
{
    const Ast *v[2];
    for (int i = 0, k = 0; i < call->nkids && k < 2; i++)
        if (!call->kids[i]->name)
            v[k++] = call->kids[i]->value;
    if (v[0]->kind != A_INT || v[1]->kind != A_INT)
        return;
    const char *a = d->args[d->order[0]], *b = d->args[d->order[1]];
    const char *ta = d->args[d->torch_order[0]], *tb = d->args[d->torch_order[1]];
    diag_warning(call->span, "%s(%lld, %lld) reads as %s=%lld, %s=%lld", call->name, v[0]->ival, v[1]->ival, a,
                 v[0]->ival, b, v[1]->ival);
    diag_note(NO_SPAN, "nnc's order is %s(%s, %s); in PyTorch's order, %s(%s, %s, %s), it would be %s=%lld, %s=%lld",
              call->name, a, b, call->name, ta, tb, d->args[d->torch_order[2]], ta, v[0]->ival, tb, v[1]->ival);
    diag_help("name the %s to say which: `%s(%lld, %s=%lld)` as nnc reads it, or `%s(%lld, %lld, %s=3)` for %s=%lld, "
              "%s=%lld", b, call->name, v[0]->ival, b, v[1]->ival, call->name, v[0]->ival, v[1]->ival,
              d->args[d->torch_order[2]], ta, v[0]->ival, tb, v[1]->ival);
}

/* Binds a layer's arguments to its operation's (d) and reads them: the
 * positional ones in the operation's order, or in PyTorch's when that many
 * are given (conv2d(1, 6, 5)), or when the one PyTorch's order would give
 * next is named (conv2d(1, 6, kernel=5)); false after reporting an error. */
static bool bind_layer(Layer *l, const OpDef *d, const Ast *call)
{
    int npos = 0, nargs = 0;
    for (int i = 0; i < call->nkids; i++)
        npos += call->kids[i]->name == NULL;
    while (nargs < COUNT(d->args) && d->args[nargs])
        nargs++;
    bool torch = d->ntorch && (npos >= d->ntorch ||
                               (npos == d->ntorch - 1 && named_arg(call, d->args[d->torch_order[npos]])));
    if (!torch && d->norder == 2 && d->ntorch == 3 && npos == 2)
        warn_positional_reading(d, call);
    Bound b;
    if (!bind_args(&b, call, d->args, nargs, torch ? d->torch_order : d->order, torch ? d->ntorch : d->norder))
        return false;
    return d->bind_layer(l, call, b.slot);
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
    if (!call) {    /* a syntax error in its definition, reported: keep the name, quietly */
        Layer l = {.name = s->name, .span = s->span, .bad = true};
        add_layer(g, l);
        return;
    }
    if (call->kind != A_CALL) {
        diag_error(call->span, "a layer is defined by a call such as `conv2d(6, kernel=5)`, found %s",
                   ast_kind_name(call));
        return;
    }
    Layer l = {.name = s->name, .span = s->span, .call = call};
    const OpDef *d = op_find(call->name);
    if (!d || !d->layer) {
        unknown_layer_type(call, d);
        l.bad = true;
        add_layer(g, l);
        return;
    }
    l.op = d->kind;
    l.bad = !bind_layer(&l, d, call);
    add_layer(g, l);
}

/* ---- forward ---- */

typedef struct Binding { const char *name; int node; } Binding;
typedef struct Env {
    Binding *b; int n, cap;     /* every binding, in order (for "did you mean") */
    NameMap last;               /* each name's latest binding */
    const Stmt *fw;             /* the forward block, and the statement being read */
    int at;
} Env;

/* the node name is bound to (-2: a value whose error was reported), or -1 */
static int env_find(const Env *e, const char *name)
{
    return namemap_get(&e->last, name);
}

static void env_bind(Env *e, const char *name, int node)
{
    Binding b = {name, node};
    VEC_PUSH(e->b, e->n, e->cap, b);
    namemap_put(&e->last, name, node);
}

static int add_node(Graph *g, OpKind op, Span at, const char *label)
{
    Node n = {.id = g->nnodes, .op = op, .span = at, .label = (char *)label, .alias = -1, .pool = -1};
    VEC_PUSH(g->nodes, g->nnodes, g->capnodes, n);
    return n.id;
}

static int eval(Graph *g, Env *env, Ast *e);

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

/* The error for a call of something that is neither a layer nor a function.
 * Kept out of eval_func_call (never inlined): the candidates would otherwise
 * sit on the stack at every level of a deeply nested expression. */
__attribute__((noinline)) static void unknown_function(Graph *g, const Ast *call, bool layer_type)
{
    if (layer_type) {
        diag_error(call->name_span, "`%s` is a layer type: declare it first, as `name = %s(...)`, then call "
                   "`name(x)`", call->name, call->name);
        return;
    }
    diag_error(call->name_span, "unknown operation or layer `%s`", call->name);
    const char *cands[96];
    int n = op_names(cands, 96, false);
    for (int i = 0; i < g->nlayers && n < 96; i++)
        cands[n++] = g->layers[i].name;
    unknown_op_help(call->name, cands, n, false);
}

/* relu(x), maxpool2d(x, 2), add(a, b), concat(a, b, c), ...: a function of
 * values. Value arguments come first and are positional; settings follow,
 * positionally or by name. */
static int eval_func_call(Graph *g, Env *env, Ast *call)
{
    const OpDef *d = op_find(call->name);
    if (!d || d->layer) {
        unknown_function(g, call, d != NULL);
        return -1;
    }
    /* the value arguments: the leading positional ones */
    int nvals = 0;
    while (nvals < call->nkids && !call->kids[nvals]->name && (d->ninputs < 0 || nvals < d->ninputs))
        nvals++;
    int want = d->ninputs < 0 ? 2 : d->ninputs;
    if (nvals < want || nvals > MAX_INPUTS) {
        if (nvals > MAX_INPUTS)
            diag_error(call->span, "%s takes at most %d inputs, found %d", call->name, MAX_INPUTS, nvals);
        else
            diag_error(call->span, "%s needs %s%d input value%s, as in `%s(%s)`", call->name,
                       d->ninputs < 0 ? "at least " : "", want, want == 1 ? "" : "s", call->name,
                       want == 1 ? "x" : "a, b");
        return -1;
    }
    int ins[MAX_INPUTS];
    bool ok = true;
    for (int i = 0; i < nvals; i++) {
        ins[i] = eval(g, env, call->kids[i]->value);
        ok &= ins[i] >= 0;
    }
    /* the settings: bind what follows the values, positionally in order */
    int nargs = 0;
    while (nargs < COUNT(d->args) && d->args[nargs])
        nargs++;
    Ast rest = *call;
    rest.kids += nvals;
    rest.nkids -= nvals;
    static const int order[] = {0, 1, 2, 3, 4, 5, 6, 7};
    Bound b;
    if (!bind_args(&b, &rest, d->args, nargs, order, nargs) || !ok)
        return -1;
    int id = add_node(g, d->kind, call->span, call->name);
    Node *n = &g->nodes[id];
    n->call = call;
    n->nin = nvals;
    memcpy(n->in, ins, sizeof(int) * (size_t)nvals);
    if (d->bind && !d->bind(g, n, call, b.slot))
        return -1;
    return id;
}

/* The error for a name that is bound to no value (never inlined into eval,
 * which recurses as deep as expressions nest). */
__attribute__((noinline)) static void undefined_value(Graph *g, const Env *env, const Ast *e)
{
    if (find_layer(g, e->name)) {
        diag_error(e->span, "`%s` is a layer, not a value", e->name);
        diag_help("apply it to a value: `%s(x)`", e->name);
        return;
    }
    for (int i = env->fw ? env->at + 1 : 0; env->fw && i < env->fw->nbody; i++) {
        const Stmt *later = env->fw->body[i];
        if (later->kind == S_ASSIGN && !strcmp(later->name, e->name)) {
            diag_error(e->span, "`%s` is used before its definition at line %d", e->name, later->span.first_line);
            diag_note(later->name_span, "`%s` is defined here", e->name);
            diag_help("forward runs from top to bottom: define a value above its first use");
            return;
        }
    }
    diag_error(e->span, "`%s` is not defined", e->name);
    const char *cands[256];
    int n = 0;
    for (int i = 0; i < env->n && n < 256; i++)
        cands[n++] = env->b[i].name;
    const char *near = diag_closest(e->name, cands, n);
    if (near)
        diag_help("did you mean `%s`?", near);
}

/* An expression in forward: a name bound earlier, or a call. Returns the node
 * id of its value, or -1 after reporting an error. */
static int eval(Graph *g, Env *env, Ast *e)
{
    if (e->kind == A_IDENT) {
        int id = env_find(env, e->name);
        if (id >= 0 || id == -2)
            return id >= 0 ? id : -1;
        undefined_value(g, env, e);
        return -1;
    }
    if (e->kind == A_CALL) {
        Layer *l = find_layer(g, e->name);
        return l ? eval_layer_call(g, env, e, l) : eval_func_call(g, env, e);
    }
    diag_error(e->span, "expected a value such as `x` or `relu(x)`, found %s", ast_kind_name(e));
    return -1;
}

/* errors the front-end reported before graph_build: a syntax error may have
 * cost a statement (the optimizer's, the return), so its absence is not
 * reported as a second error */
static int front_end_errors;

static void build_forward(Graph *g, Stmt *fw, Env *env)
{
    g->output = -1;
    env->fw = fw;
    for (int i = 0; i < fw->nbody; i++) {
        Stmt *s = fw->body[i];
        env->at = i;
        if (g->output >= 0) {
            diag_error(s->span, "statement after `return`");
            return;
        }
        if (s->kind == S_RETURN) {
            g->output = s->expr ? eval(g, env, s->expr) : -1;
            if (g->output < 0)
                g->output = -2;     /* reported; no "missing return" as well */
            continue;
        }
        int id = s->expr ? eval(g, env, s->expr) : -1;  /* no expr: a syntax error, reported */
        env_bind(env, s->name, id >= 0 ? id : -2);      /* -2: its error is reported; uses stay quiet */
    }
    if (g->output == -1 && !front_end_errors) {    /* after a syntax error it may be the lost line */
        diag_error(fw->span, "forward has no `return`");
        diag_help("end forward with `return <value>`: the value the loss compares with the target");
    }
}

/* loss NAME(target: [dims], reduction="mean") */
static void build_loss(Graph *g, Stmt *s)
{
    static const char *const names[] = {"target", "reduction"};
    static const char *const reductions[] = {"mean", "sum"};
    static const int order[] = {0};
    Ast *call = s->expr;
    g->loss_span = s->span;
    int k = 0;
    while (k < COUNT(loss_names) && strcmp(call->name, loss_names[k]) != 0)
        k++;
    if (k == COUNT(loss_names)) {
        diag_error(call->name_span, "unknown loss `%s`", call->name);
        const char *near = diag_closest(call->name, loss_names, COUNT(loss_names));
        if (near)
            diag_help("did you mean `%s`?", near);
        else
            diag_help("the losses are mse, l1, cross_entropy, nll and bce_with_logits");
        return;
    }
    g->loss = (LossKind)k;
    Bound b;
    if (!bind_args(&b, call, names, 2, order, 0))
        return;
    if (b.slot[0]) {
        g->target_given = get_shape(b.slot[0], "the target", &g->target);
        g->target_span = b.slot[0]->span;
    }
    if (b.slot[1])
        g->loss_sum = arg_choice(b.slot[1], "reduction", reductions, 2) == 1;
}

/* schedule=step(step_size=30, gamma=0.1) or schedule=cosine(t_max=10, eta_min=0) */
static void build_schedule(Graph *g, Ast *v)
{
    static const char *const kinds[] = {"step", "cosine", "warmup_cosine"};
    static const char *const step_names[] = {"step_size", "gamma"};
    static const char *const cos_names[] = {"t_max", "eta_min"};
    static const char *const warm_names[] = {"warmup", "t_max", "eta_min"};
    static const int order[] = {0, 1, 2};
    if (v->kind == A_CALL && !strcmp(v->name, "warmup_cosine")) {
        /* per step, as nanoGPT's get_lr: warmup steps rising to lr, then a cosine to eta_min at t_max */
        Bound b;
        if (!bind_args(&b, v, warm_names, 3, order, 3))
            return;
        if (!b.slot[1]) {
            arg_missing(v, "t_max", "warmup_cosine(warmup=100, t_max=5000, eta_min=0.0001)");
            return;
        }
        g->sched = SCHED_WARMUP_COSINE;
        g->sched_step_size = 0;
        if (b.slot[0]) arg_size(b.slot[0], "warmup", 0, &g->sched_step_size);
        if (arg_size(b.slot[1], "t_max", 1, &g->sched_t_max) && g->sched_t_max <= g->sched_step_size)
            diag_error(b.slot[1]->span, "the cosine must end after the warmup: t_max is %lld, warmup %lld",
                       (long long)g->sched_t_max, (long long)g->sched_step_size);
        if (b.slot[2]) arg_range(b.slot[2], "eta_min", 0, 1e9, false, &g->sched_eta_min);
        return;
    }
    if (v->kind != A_CALL || (strcmp(v->name, "step") && strcmp(v->name, "cosine"))) {
        diag_error(v->span, "schedule must be `step(step_size=N, gamma=G)`, `cosine(t_max=N)` or "
                   "`warmup_cosine(warmup=N, t_max=M)`, found %s",
                   v->kind == A_CALL ? xprintf("`%s(...)`", v->name) : ast_kind_name(v));
        if (v->kind == A_CALL && diag_closest(v->name, kinds, 3))
            diag_help("did you mean `%s`?", diag_closest(v->name, kinds, 3));
        return;
    }
    bool step = v->name[0] == 's';
    Bound b;
    if (!bind_args(&b, v, step ? step_names : cos_names, 2, order, 2))
        return;
    if (!b.slot[0]) {
        arg_missing(v, step ? "step_size" : "t_max", step ? "step(step_size=10)" : "cosine(t_max=10)");
        return;
    }
    if (step) {
        g->sched = SCHED_STEP;
        g->sched_gamma = 0.1;
        arg_size(b.slot[0], "step_size", 1, &g->sched_step_size);
        if (b.slot[1]) arg_range(b.slot[1], "gamma", 0, 1, false, &g->sched_gamma);
    } else {
        g->sched = SCHED_COSINE;
        arg_size(b.slot[0], "t_max", 1, &g->sched_t_max);
        if (b.slot[1]) arg_range(b.slot[1], "eta_min", 0, 1e9, false, &g->sched_eta_min);
    }
}

/* optimizer sgd(lr, momentum=0, dampening=0, nesterov=false, weight_decay=0,
 * clip_norm, schedule, decay) / adam(lr=0.001, betas=[0.9, 0.999], eps=1e-8,
 * weight_decay=0, ...) / adamw(..., weight_decay=0.01): PyTorch's defaults.
 * decay="matrices" decays only the tensors of two or more dimensions (weights
 * and embeddings, not biases or norms: nanoGPT's two parameter groups). */
static void build_optimizer(Graph *g, Stmt *s)
{
    static const char *const sgd_names[] = {"lr", "momentum", "dampening", "nesterov", "weight_decay",
                                            "clip_norm", "schedule", "decay"};
    static const char *const adam_names[] = {"lr", "betas", "eps", "weight_decay", "clip_norm", "schedule",
                                             "decay"};
    static const char *const decays[] = {"all", "matrices"};
    static const int order[] = {0};
    Ast *call = s->expr;
    g->opt_span = s->span;
    int k = 0;
    while (k < COUNT(opt_names) && strcmp(call->name, opt_names[k]) != 0)
        k++;
    if (k == COUNT(opt_names)) {
        diag_error(call->name_span, "unknown optimizer `%s`", call->name);
        const char *near = diag_closest(call->name, opt_names, COUNT(opt_names));
        if (near)
            diag_help("did you mean `%s`?", near);
        else
            diag_help("the optimizers are sgd, adam and adamw");
        return;
    }
    g->opt = (OptKind)k;
    bool sgd = g->opt == OPT_SGD;
    Bound b;
    if (!bind_args(&b, call, sgd ? sgd_names : adam_names, sgd ? 8 : 7, order, 1))
        return;
    g->beta1 = 0.9, g->beta2 = 0.999, g->eps = 1e-8;
    g->weight_decay = g->opt == OPT_ADAMW ? 0.01 : 0;
    if (b.slot[0]) {
        if (arg_number(b.slot[0], "lr", &g->lr) && !(g->lr > 0))
            diag_error(b.slot[0]->span, "lr must be positive, found %g", g->lr);
    } else if (sgd) {
        arg_missing(call, "lr", "sgd(lr=0.01)");
    } else {
        g->lr = 0.001;
    }
    if (sgd) {
        if (b.slot[1]) arg_range(b.slot[1], "momentum", 0, 1, false, &g->momentum);
        if (b.slot[2]) arg_range(b.slot[2], "dampening", 0, 1, false, &g->dampening);
        if (b.slot[3]) arg_bool(b.slot[3], "nesterov", &g->nesterov);
        if (b.slot[4]) arg_range(b.slot[4], "weight_decay", 0, 1, false, &g->weight_decay);
        if (g->nesterov && (g->momentum <= 0 || g->dampening != 0)) {
            diag_error(b.slot[3]->span, "nesterov needs a momentum and zero dampening");
            diag_help("e.g. `sgd(lr=0.01, momentum=0.9, nesterov=true)`");
        }
    } else {
        Ast *bv = b.slot[1];
        if (bv && (bv->kind != A_LIST || bv->nkids != 2)) {
            diag_error(bv->span, "betas must be a list of two numbers, e.g. [0.9, 0.999]");
        } else if (bv) {
            arg_range(bv->kids[0], "beta1", 0, 1, true, &g->beta1);
            arg_range(bv->kids[1], "beta2", 0, 1, true, &g->beta2);
        }
        if (b.slot[2] && arg_number(b.slot[2], "eps", &g->eps) && !(g->eps > 0))
            diag_error(b.slot[2]->span, "eps must be positive, found %g", g->eps);
        if (b.slot[3]) arg_range(b.slot[3], "weight_decay", 0, 1, false, &g->weight_decay);
    }
    Ast *clip = b.slot[sgd ? 5 : 4], *sched = b.slot[sgd ? 6 : 5], *decay = b.slot[sgd ? 7 : 6];
    if (decay)
        g->decay_matrices = arg_choice(decay, "decay", decays, 2) == 1;
    if (clip && arg_number(clip, "clip_norm", &g->clip_norm) && !(g->clip_norm > 0))
        diag_error(clip->span, "clip_norm must be positive, found %g", g->clip_norm);
    if (sched)
        build_schedule(g, sched);
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

/* The generated C is named after the model: a type `lenet`, functions
 * lenet_forward, ... So the name must not be a C keyword or a name of the C
 * library headers it includes (math.h, stdio.h, stdlib.h, string.h, stddef.h,
 * stdint.h: the standard's names, math functions also with the suffixes f
 * and l; and every name and macro those headers declare on the machine nnc
 * was built on, such as glibc's index, random or y1, or NULL: cnames.h, made
 * by tools/cnames.sh), nor main, nor reserved (a leading `_`) or the
 * runtime's (nnrt..., NNRT...). The generated code's own locals (m, t, k,
 * ...) are fine: it names the type `struct lenet` wherever one may hide it
 * (tests/model_names.sh). Returns why not, or NULL. */
#include "cnames.h"

static const char *c_name_clash(const char *name)
{
    static const char *const keywords[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
        "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
        "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
        "volatile", "while"};
    static const char *const math[] = {
        "acos", "asin", "atan", "atan2", "cos", "sin", "tan", "acosh", "asinh", "atanh", "cosh", "sinh", "tanh",
        "exp", "exp2", "expm1", "frexp", "ilogb", "ldexp", "log", "log10", "log1p", "log2", "logb", "modf",
        "scalbn", "scalbln", "cbrt", "fabs", "hypot", "pow", "sqrt", "erf", "erfc", "lgamma", "tgamma", "ceil",
        "floor", "nearbyint", "rint", "lrint", "llrint", "round", "lround", "llround", "trunc", "fmod",
        "remainder", "remquo", "copysign", "nan", "nextafter", "nexttoward", "fdim", "fmax", "fmin", "fma"};
    static const char *const library[] = {
        "main", "double_t", "float_t", "isfinite", "isinf", "isnan", "isnormal", "signbit", "fpclassify",
        "math_errhandling", "remove", "rename", "tmpfile", "tmpnam", "fclose", "fflush", "fopen", "freopen",
        "setbuf", "setvbuf", "fprintf", "fscanf", "printf", "scanf", "snprintf", "sprintf", "sscanf", "vfprintf",
        "vfscanf", "vprintf", "vscanf", "vsnprintf", "vsprintf", "vsscanf", "fgetc", "fgets", "fputc", "fputs",
        "getc", "getchar", "putc", "putchar", "puts", "ungetc", "fread", "fwrite", "fgetpos", "fseek", "fsetpos",
        "ftell", "rewind", "clearerr", "feof", "ferror", "perror", "stdin", "stdout", "stderr", "fpos_t",
        "atof", "atoi", "atol", "atoll", "strtod", "strtof", "strtold", "strtol", "strtoll", "strtoul",
        "strtoull", "rand", "srand", "aligned_alloc", "calloc", "free", "malloc", "realloc", "abort", "atexit",
        "at_quick_exit", "exit", "getenv", "quick_exit", "system", "bsearch", "qsort", "abs", "labs", "llabs",
        "div", "ldiv", "lldiv", "div_t", "ldiv_t", "lldiv_t", "mblen", "mbtowc", "wctomb", "mbstowcs",
        "wcstombs", "memcpy", "memmove", "strcpy", "strncpy", "strcat", "strncat", "memcmp", "strcmp",
        "strcoll", "strncmp", "strxfrm", "memchr", "strchr", "strcspn", "strpbrk", "strrchr", "strspn",
        "strstr", "strtok", "memset", "strerror", "strlen", "size_t", "wchar_t", "ptrdiff_t", "max_align_t",
        "intmax_t", "uintmax_t", "intptr_t", "uintptr_t"};
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
        if (!strcmp(name, keywords[i]))
            return "a C keyword";
    for (size_t i = 0; i < sizeof math / sizeof *math; i++) {
        size_t n = strlen(math[i]);
        if (!strncmp(name, math[i], n) && (!name[n] || ((name[n] == 'f' || name[n] == 'l') && !name[n + 1])))
            return "a function of the C library";
    }
    for (size_t i = 0; i < sizeof library / sizeof *library; i++)
        if (!strcmp(name, library[i]))
            return "a name of the C library";
    for (size_t i = 0; i < sizeof c_library_names / sizeof *c_library_names; i++)
        if (!strcmp(name, c_library_names[i]))
            return "a name the C library declares";
    if ((!strncmp(name, "int", 3) || !strncmp(name, "uint", 4)) && strlen(name) > 2 &&
        !strcmp(name + strlen(name) - 2, "_t"))
        return "a type of the C library";
    if (name[0] == '_')
        return "reserved in C (it starts with `_`)";
    if (!strncmp(name, "nnrt", 4) || !strncmp(name, "NNRT", 4))
        return "in the runtime's namespace (it starts with `nnrt` or `NNRT`)";
    return NULL;
}

/* `input idx: [64] tokens(vocab=96)`: a sequence of token ids, each in
 * [0, vocab); false after reporting an error */
static bool input_type(const Stmt *input, const Shape *shape, int64_t *vocab)
{
    static const char *const names[] = {"vocab"};
    static const int order[] = {0};
    const Ast *t = input->type;
    if (t->kind != A_CALL || strcmp(t->name, "tokens")) {
        diag_error(t->name_span, "an input's values are floats, or token ids: `tokens(vocab=N)`; `%s` is neither",
                   t->name ? t->name : diag_snippet(t->span));
        diag_help("write `input %s: %s tokens(vocab=96)` for a sequence of characters, or leave it out for floats",
                  input->name, shape_str(shape));
        return false;
    }
    Bound b;
    if (!bind_args(&b, t, names, 1, order, 1))
        return false;
    if (!b.slot[0]) {
        arg_missing(t, "vocab", "tokens(vocab=96)");
        return false;
    }
    if (!arg_size(b.slot[0], "vocab", 1, vocab))
        return false;
    if (*vocab > 16777216) {   /* ids travel as floats: exact below 2^24 */
        diag_error(b.slot[0]->span, "a vocabulary of %lld tokens is more than nnc's limit of 16777216 (2^24)",
                   (long long)*vocab);
        return false;
    }
    if (shape->ndim != 1) {
        diag_error(input->expr->span, "a sequence of tokens has one dimension, its length [T], but this shape is %s",
                   shape_str(shape));
        diag_help("write `input %s: [%lld] tokens(vocab=%lld)`", input->name, (long long)shape_numel(shape),
                  (long long)*vocab);
        return false;
    }
    return true;
}

Graph *graph_build(Model *m)
{
    Graph *g = xalloc(sizeof *g);
    g->model = m;
    g->name = m->name;
    g->input = g->output = -1;
    const char *clash = c_name_clash(m->name);
    if (clash) {
        diag_error(m->name_span, "a model cannot be called `%s`: the generated C is named after the model, and "
                   "`%s` is %s", m->name, m->name, clash);
        diag_help("give it another name, such as `%s_net`", m->name[0] == '_' ? "my" : m->name);
    }
    front_end_errors = diag_error_count();
    Stmt *input = NULL, *forward = NULL, *loss = NULL, *opt = NULL;
    for (int i = 0; i < m->nitems; i++) {
        Stmt *s = m->items[i];
        switch (s->kind) {
        case S_INPUT: once(&input, s, "input"); break;
        case S_LAYER: declare_layer(g, s); break;
        case S_FORWARD: once(&forward, s, "forward block"); break;
        /* a statement without expression had a syntax error, reported */
        case S_LOSS: if (once(&loss, s, "loss") && s->expr) build_loss(g, s); break;
        case S_OPTIMIZER: if (once(&opt, s, "optimizer") && s->expr) build_optimizer(g, s); break;
        default: break;
        }
    }
    if (front_end_errors) {
        /* say nothing of what is missing: a syntax error may have cost it */
    } else if (!input) {
        diag_error(m->name_span, "model `%s` has no input", m->name);
        diag_help("declare it, e.g. `input x: [1, 32, 32]` (channels, height, width; the batch is implicit)");
    }
    if (!forward && !front_end_errors)
        diag_error(m->name_span, "model `%s` has no forward block", m->name);
    if (!loss && !front_end_errors) {
        diag_error(m->name_span, "model `%s` has no loss", m->name);
        diag_help("add e.g. `loss mse(target: [10])`");
    }
    if (!opt && !front_end_errors) {
        diag_error(m->name_span, "model `%s` has no optimizer", m->name);
        diag_help("add e.g. `optimizer sgd(lr=0.01)`");
    }
    if (!input || !forward || !input->expr)
        return g;
    Shape in_shape;
    if (!get_shape(input->expr, "the input", &in_shape))
        return g;
    int64_t vocab = 0;
    if (input->type && !input_type(input, &in_shape, &vocab))
        return g;
    g->input = add_node(g, OP_INPUT, input->span, input->name);
    g->nodes[g->input].shape = in_shape;
    g->nodes[g->input].vocab = vocab;
    Env env = {0};
    env_bind(&env, input->name, g->input);
    build_forward(g, forward, &env);
    return g;
}

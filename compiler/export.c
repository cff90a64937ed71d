/* export.c — the checked graph, written for other programs: as JSON that nnc
 * reads back (`--emit=json`), and as a Graphviz picture (`--emit=dot`).
 *
 * Both are written from the graph's generic parts only — each node's call as
 * the user wrote it (Node.call, whose arguments graph.c has bound to their
 * parameter names), its inputs, its inferred shape, its layer's parameters —
 * so an operation added to the language is exported with no change here.
 *
 * The JSON is the format of docs/json-format.md plus an "inferred" object per
 * layer, node and model, which nnc writes and ignores when reading. Every
 * forward node is written on the line its source had where it can be (blank
 * lines are cheap in JSON), so the summary's Line column and the comments of
 * the generated C read the same whether they come from the .nn file or from
 * its JSON; where it cannot be (`h = fc2(` on line 6, `fc1(x))` on line 7:
 * fc1 is written first), the node says its line, `"line": 6`. Writing the
 * JSON of that JSON gives the same text again.
 */
#include "nnc.h"

#include <stdlib.h>
#include <string.h>

/* ---- writing JSON, with an eye on the line ---- */

typedef struct JOut {
    FILE *f;
    int line;           /* the line being written, 1-based */
    char last;          /* the last character written */
    bool ok;            /* false once something could not be written */
} JOut;

static void jo_put(JOut *o, const char *s)
{
    for (; *s; s++) {
        fputc(*s, o->f);
        o->line += *s == '\n';
        o->last = *s;
    }
}

static void jo_printf(JOut *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jo_printf(JOut *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    jo_put(o, s);
}

/* Before an item that belongs on line `want`: new lines down to it while
 * above it; once there (or past it), the item follows on the same line. */
static void jo_at(JOut *o, int want, int indent)
{
    if (want > o->line) {
        while (o->line < want)
            jo_put(o, "\n");
        jo_printf(o, "%*s", indent, "");
    } else if (o->last == ',') {
        jo_put(o, " ");
    }
}

static void jo_next(JOut *o, int indent)
{
    jo_at(o, o->line + 1, indent);
}

/* A container's opening ("layers": {) goes on the line above its first item
 * when there is room, else on that item's line. */
static void jo_open(JOut *o, int first_item_line, int indent, const char *text)
{
    jo_at(o, first_item_line - 1 > o->line ? first_item_line - 1 : first_item_line, indent);
    jo_put(o, text);
}

static void jo_string(JOut *o, const char *s)
{
    jo_put(o, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            jo_printf(o, "\\%c", c);
        else if (c == '\n')
            jo_put(o, "\\n");
        else if (c == '\t')
            jo_put(o, "\\t");
        else if (c < 0x20)
            jo_printf(o, "\\u%04x", c);
        else
            jo_printf(o, "%c", c);
    }
    jo_put(o, "\"");
}

/* The shortest text that reads back as the same double, and as a number that
 * is not an integer: 0.01, 1e-08, 2.0 */
static void jo_float(JOut *o, double v)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".eEn"))
        strcat(buf, ".0");
    jo_put(o, buf);
}

static void jo_shape(JOut *o, const Shape *s)
{
    jo_put(o, "[");
    for (int i = 0; i < s->ndim; i++)
        jo_printf(o, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    jo_put(o, "]");
}

static void jo_args(JOut *o, const Ast *call, int skip);

/* An argument's value as written: 5, 0.01, "same", true, [5, 3], step(...) */
static void jo_value(JOut *o, const Ast *v)
{
    switch (v->kind) {
    case A_INT: jo_printf(o, "%lld", v->ival); break;
    case A_FLOAT: jo_float(o, v->fval); break;
    case A_STRING: jo_string(o, v->str); break;
    case A_IDENT:
        if (!strcmp(v->name, "true") || !strcmp(v->name, "false"))
            jo_put(o, v->name);
        else
            jo_string(o, v->name);
        break;
    case A_LIST:
        jo_put(o, "[");
        for (int i = 0; i < v->nkids; i++) {
            if (i)
                jo_put(o, ", ");
            jo_value(o, v->kids[i]);
        }
        jo_put(o, "]");
        break;
    case A_CALL:
        jo_put(o, "{\"op\": ");
        jo_string(o, v->name);
        jo_args(o, v, 0);
        jo_put(o, "}");
        break;
    case A_ARG:
        jo_value(o, v->value);
        break;
    }
}

/* `, "kernel": 2` for each argument of call after the first skip (its inputs),
 * named by the parameter graph.c bound it to when it was positional */
static void jo_args(JOut *o, const Ast *call, int skip)
{
    for (int i = skip; i < call->nkids; i++) {
        const Ast *a = call->kids[i];
        const char *name = a->name ? a->name : a->param;
        if (!name) {
            diag_fatal_plain("cannot export argument %d of `%s`: graph.c did not bind it to a parameter", i + 1,
                             call->name);
            o->ok = false;
            continue;
        }
        jo_put(o, ", ");
        jo_string(o, name);
        jo_put(o, ": ");
        jo_value(o, a->value);
    }
}

/* ---- names of the values ---- */

/* Each node's name in the JSON: its label (conv1, relu, the input's name),
 * with _1, _2, ... where a label repeats; the input keeps its own name. */
static char **value_names(const Graph *g)
{
    char **names = xalloc(sizeof(char *) * (size_t)g->nnodes);
    names[g->input] = g->nodes[g->input].label;
    NameMap count = {0}, seen = {0}, taken = {0};
    namemap_put(&taken, names[g->input], g->input);
    for (int i = 0; i < g->nnodes; i++) {
        int c = namemap_get(&count, g->nodes[i].label);
        if (i != g->input)
            namemap_put(&count, g->nodes[i].label, c < 0 ? 1 : c + 1);
    }
    for (int i = 0; i < g->nnodes; i++) {
        if (i == g->input)
            continue;
        const char *label = g->nodes[i].label;
        int index = namemap_get(&seen, label);
        index = index < 0 ? 1 : index + 1;
        namemap_put(&seen, label, index);
        char *name = namemap_get(&count, label) == 1 ? g->nodes[i].label : xprintf("%s_%d", label, index);
        while (namemap_get(&taken, name) >= 0)     /* never clash with another name */
            name = xprintf("%s_", name);
        namemap_put(&taken, name, i);
        names[i] = name;
    }
    return names;
}

static size_t layer_params(const Layer *l)
{
    size_t n = 0;
    for (int p = 0; p < l->nparams; p++)
        n += l->params[p].buffer ? 0 : l->params[p].numel;
    return n;
}

static const Stmt *find_stmt(const Graph *g, StmtKind kind)
{
    for (int i = 0; i < g->model->nitems; i++)
        if (g->model->items[i]->kind == kind)
            return g->model->items[i];
    return NULL;
}

/* ---- --emit=json ---- */

static void json_layer(JOut *o, const Layer *l)
{
    jo_at(o, l->span.first_line, 4);
    jo_string(o, l->name);
    jo_put(o, ": {\"op\": ");
    jo_string(o, l->call->name);
    jo_args(o, l->call, 0);
    jo_printf(o, ", \"inferred\": {");
    if (l->in >= 0)
        jo_printf(o, "\"in\": %lld, ", (long long)l->in);
    jo_printf(o, "\"params\": %zu, \"tensors\": {", layer_params(l));
    for (int p = 0; p < l->nparams; p++) {
        jo_put(o, p ? ", " : "");
        jo_string(o, l->params[p].name);
        jo_put(o, ": ");
        jo_shape(o, &l->params[p].shape);
    }
    jo_put(o, "}}}");
}

static void json_node(JOut *o, const Graph *g, const Node *n, char **names)
{
    jo_at(o, n->span.first_line, 4);
    jo_put(o, "{\"name\": ");
    jo_string(o, names[n->id]);
    jo_put(o, ", \"op\": ");
    jo_string(o, n->call->name);
    jo_put(o, ", \"inputs\": [");
    for (int k = 0; k < n->nin; k++) {
        jo_put(o, k ? ", " : "");
        jo_string(o, names[n->in[k]]);
    }
    jo_put(o, "]");
    jo_args(o, n->call, n->nin);   /* the first nin arguments are the inputs */
    if (n->span.first_line != o->line)     /* not on its source's line (json.c reads it back) */
        jo_printf(o, ", \"line\": %d", n->span.first_line);
    jo_put(o, ", \"inferred\": {\"operation\": ");
    jo_string(o, op_name(n->op));
    jo_put(o, ", \"shape\": ");
    jo_shape(o, &n->shape);
    jo_printf(o, ", \"params\": %zu}}", n->layer ? layer_params(n->layer) : 0);
    (void)g;
}

static void json_call_member(JOut *o, const char *key, const Stmt *s)
{
    jo_put(o, ",");
    jo_at(o, s->span.first_line > o->line ? s->span.first_line : o->line + 1, 2);
    jo_printf(o, "\"%s\": {\"op\": ", key);
    jo_string(o, s->expr->name);
    jo_args(o, s->expr, 0);
    jo_put(o, "}");
}

bool export_json(FILE *f, const Graph *g)
{
    JOut o = {.f = f, .line = 1, .ok = true};
    char **names = value_names(g);
    const Node *in = &g->nodes[g->input];
    jo_put(&o, "{");
    jo_at(&o, g->model->name_span.first_line, 2);
    jo_put(&o, "\"model\": ");
    jo_string(&o, g->name);
    jo_put(&o, ",");
    jo_at(&o, in->span.first_line, 2);
    jo_put(&o, "\"input\": {\"name\": ");
    jo_string(&o, in->label);
    jo_put(&o, ", \"shape\": ");
    jo_shape(&o, &in->shape);
    if (in->vocab > 0)
        jo_put(&o, xprintf(", \"vocab\": %lld", (long long)in->vocab));
    jo_put(&o, "},");
    if (g->nlayers) {
        jo_open(&o, g->layers[0].span.first_line, 2, "\"layers\": {");
        for (int i = 0; i < g->nlayers; i++) {
            json_layer(&o, &g->layers[i]);
            jo_put(&o, i + 1 < g->nlayers ? "," : "},");
        }
    }
    int first = g->input + 1 < g->nnodes ? g->input + 1 : g->input;
    jo_open(&o, g->nodes[first].span.first_line, 2, "\"forward\": [");
    for (int i = 0; i < g->nnodes; i++) {
        if (i == g->input)
            continue;
        json_node(&o, g, &g->nodes[i], names);
        jo_put(&o, i + 1 < g->nnodes ? "," : "");
    }
    jo_put(&o, "],");
    jo_next(&o, 2);
    jo_put(&o, "\"output\": ");
    jo_string(&o, names[g->output]);
    json_call_member(&o, "loss", find_stmt(g, S_LOSS));
    json_call_member(&o, "optimizer", find_stmt(g, S_OPTIMIZER));
    jo_put(&o, ",");
    jo_next(&o, 2);
    jo_printf(&o, "\"inferred\": {\"params\": %zu, \"activations\": %zu, ", g->ntrainable, g->nact);
    if (g->classes) {
        jo_printf(&o, "\"classes\": %d}", g->classes);
    } else {
        jo_put(&o, "\"target\": ");
        jo_shape(&o, &g->target);
        jo_put(&o, "}");
    }
    jo_put(&o, "\n}\n");
    return o.ok;
}

/* ---- --emit=dot ---- */

/* a string for a dot label: quotes and backslashes escaped, \n kept as a line break */
static void dot_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\n') {
            fputs("\\n", f);
            continue;
        }
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
}

/* an argument's value as it would be written in .nn: 2, [5, 3], "same", cosine(t_max=30) */
static char *ast_text(const Ast *v)
{
    switch (v->kind) {
    case A_INT: return xprintf("%lld", v->ival);
    case A_FLOAT: return xprintf("%g", v->fval);
    case A_STRING: return xprintf("\"%s\"", v->str);
    case A_IDENT: return v->name;
    case A_ARG: return ast_text(v->value);
    case A_LIST: {
        char *s = "[";
        for (int i = 0; i < v->nkids; i++)
            s = xprintf("%s%s%s", s, i ? ", " : "", ast_text(v->kids[i]));
        return xprintf("%s]", s);
    }
    case A_CALL: {
        char *s = xprintf("%s(", v->name);
        for (int i = 0; i < v->nkids; i++) {
            const Ast *a = v->kids[i];
            const char *name = a->name ? a->name : a->param;
            s = xprintf("%s%s%s%s%s", s, i ? ", " : "", name ? name : "", name ? "=" : "", ast_text(a->value));
        }
        return xprintf("%s)", s);
    }
    }
    return "?";
}

/* "conv2d(out=6, kernel=5)": a call's settings, its first skip arguments (the
 * inputs) left out; "relu" when it has none besides its inputs */
static char *call_text(const Ast *call, int skip)
{
    Ast shown = *call;
    if (skip) {
        shown.kids += skip;
        shown.nkids -= skip;
    }
    return skip && !shown.nkids ? call->name : ast_text(&shown);
}

static char *nshape(const Shape *s) { return xprintf("[N, %s", shape_str(s) + 1); }

/* 61706 -> "61,706" */
static char *commas(size_t v)
{
    char *d = xprintf("%zu", v), *s = "";
    int n = (int)strlen(d);
    for (int i = 0; i < n; i++)
        s = xprintf("%s%s%c", s, i && (n - i) % 3 == 0 ? "," : "", d[i]);
    return s;
}

static void dot_node(FILE *f, const char *id, const char *label, const char *attrs)
{
    fprintf(f, "  %s [label=\"", id);
    dot_text(f, label);
    fprintf(f, "\"%s%s];\n", *attrs ? ", " : "", attrs);
}

static void dot_edge(FILE *f, const char *from, const char *to, const char *label, const char *attrs)
{
    fprintf(f, "  %s -> %s [", from, to);
    if (label) {
        fputs("label=\"", f);
        dot_text(f, label);
        fputs("\"", f);
    }
    fprintf(f, "%s%s];\n", label && *attrs ? ", " : "", attrs);
}

/* Does node n's backward exist? (a gradient flows into it and somewhere out) */
static bool has_backward(const Graph *g, const Node *n)
{
    if (n->op == OP_INPUT || !n->needs_grad)
        return false;
    bool din = false;
    for (int k = 0; k < n->nin; k++)
        din |= g->nodes[n->in[k]].needs_grad;
    return din || n->layer;
}

/* What each backward reads of forward, besides the gradient that flows in:
 * 'o' its output, 'i' its inputs, 'w' its inputs and its layer's weight,
 * 0 nothing (a view, a sum, a mask it saved): its operation's OpDef.reads. */
static char backward_reads(const Node *n)
{
    if (n->layer)
        return 'w';
    switch (op_def(n->op)->reads) {
    case READS_OUTPUT: return 'o';
    case READS_INPUT: case READS_INPUT_OUTPUT: return 'i';
    case READS_NOTHING: return 0;
    }
    return 'i';
}

/* A layer's weight (which its backward reads) beside its first use in forward,
 * and the gradients its backward accumulates into beside that backward. */
static void dot_params(FILE *f, const Graph *g, const Node *n, const char *gid, const char *read)
{
    int li = (int)(n->layer - g->layers), first = n->id;
    for (int j = 0; j < n->id; j++)
        if (g->nodes[j].layer == n->layer)
            first = j;
    for (int p = 0; p < n->layer->nparams; p++) {
        const Param *q = &n->layer->params[p];
        char *pid = xprintf("p%d_%d", li, p), *qid = xprintf("q%d_%d", li, p);
        size_t len = strlen(q->name);
        if (q->buffer)
            continue;
        if (len > 7 && !strcmp(q->name + len - 7, ".weight")) {
            if (first == n->id) {
                dot_node(f, pid, xprintf("%s\n%s", q->name, shape_str(&q->shape)),
                         "shape=box, style=filled, fillcolor=\"#eeeeee\", color=gray55");
                fprintf(f, "  { rank=same; v%d; %s; }\n", n->id, pid);
            }
            dot_edge(f, pid, xprintf("v%d", n->id), NULL, "color=gray55, constraint=false");
            dot_edge(f, pid, gid, NULL, read);
        }
        if (first == n->id) {
            dot_node(f, qid, xprintf("%s.grad\n%s", q->name, shape_str(&q->shape)),
                     "shape=box, style=filled, fillcolor=\"#fbe3d3\", color=\"#c0504d\"");
            fprintf(f, "  { rank=same; %s; %s; }\n", gid, qid);
        }
        dot_edge(f, gid, qid, "+=", "color=\"#c0504d\", fontcolor=\"#c0504d\", constraint=false");
    }
}

/* The gradient graph: one node per backward step, in the rank of the forward
 * value it belongs to; gradients flow up (dir=back), dashed edges show the
 * forward values and weights each step reads, and each layer's backward
 * accumulates into its parameters' gradients. */
static void dot_backward(FILE *f, const Graph *g, const char *loss)
{
    const char *gattr = "style=\"rounded,filled\", fillcolor=\"#fbe3d3\", color=\"#c0504d\"";
    const char *flow = "color=\"#c0504d\", fontcolor=\"#c0504d\", dir=back";
    const char *read = "style=dashed, color=gray55, arrowhead=open, constraint=false";
    fprintf(f, "\n  /* backward: loss.backward() */\n");
    dot_node(f, "gloss", xprintf("%s backward", loss), gattr);
    fprintf(f, "  { rank=same; loss; gloss; }\n");
    dot_edge(f, "loss", "gloss", "1", "color=\"#c0504d\", fontcolor=\"#c0504d\"");
    dot_edge(f, xprintf("v%d", g->output), "gloss", NULL, read);
    dot_edge(f, "target", "gloss", NULL, read);
    if (has_backward(g, &g->nodes[g->output]))
        dot_edge(f, xprintf("g%d", g->output), "gloss", nshape(&g->nodes[g->output].shape), flow);
    for (int i = g->nnodes - 1; i >= 0; i--) {
        const Node *n = &g->nodes[i];
        if (!has_backward(g, n))
            continue;
        char *id = xprintf("g%d", i);
        dot_node(f, id, xprintf("%s backward", n->label), gattr);
        for (int k = 0; k < n->nin; k++)
            if (g->nodes[n->in[k]].needs_grad && has_backward(g, &g->nodes[n->in[k]]))
                dot_edge(f, xprintf("g%d", n->in[k]), id, nshape(&g->nodes[n->in[k]].shape), flow);
        char reads = backward_reads(n);
        if (reads == 'o')
            dot_edge(f, xprintf("v%d", i), id, NULL, read);
        for (int k = 0; (reads == 'i' || reads == 'w') && k < n->nin; k++)
            dot_edge(f, xprintf("v%d", n->in[k]), id, NULL, read);
        if (n->layer)
            dot_params(f, g, n, id, read);
    }
}

void export_dot(FILE *f, const Graph *g, bool backward)
{
    fprintf(f, "/* The model `%s` as nnc checked it: each value with its operation, each\n"
               " * edge with the shape that flows (N is the batch). Render: dot -Tsvg */\n", g->name);
    fprintf(f, "digraph \"%s\" {\n", g->name);
    fprintf(f, "  graph [fontname=\"Helvetica\", labelloc=t, ranksep=0.6, label=\"%s: %s parameters%s\"];\n", g->name,
            commas(g->ntrainable), backward ? ", forward and backward" : "");
    fprintf(f, "  node [fontname=\"Helvetica\", fontsize=11, shape=box, style=\"rounded,filled\", "
               "fillcolor=white];\n");
    fprintf(f, "  edge [fontname=\"Helvetica\", fontsize=9];\n\n");
    bool *seen = xalloc(sizeof(bool) * (size_t)(g->nlayers + 1));
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        char *id = xprintf("v%d", i);
        if (n->op == OP_INPUT) {
            dot_node(f, id, xprintf("%s\ninput %s", n->label, nshape(&n->shape)), "shape=ellipse");
            continue;
        }
        if (n->layer) {
            int li = (int)(n->layer - g->layers);
            size_t np = layer_params(n->layer);
            char *params = seen[li] ? "shared weights" : xprintf("%s param%s", commas(np), np == 1 ? "" : "s");
            seen[li] = true;
            dot_node(f, id, xprintf("%s\n%s\n%s", n->label, call_text(n->layer->call, 0), params),
                     "fillcolor=\"#dce8f5\", color=\"#4f81bd\"");
        } else {
            dot_node(f, id, call_text(n->call, n->nin), "");
        }
        for (int k = 0; k < n->nin; k++)
            dot_edge(f, xprintf("v%d", n->in[k]), id, nshape(&g->nodes[n->in[k]].shape), "");
    }
    const Stmt *ls = find_stmt(g, S_LOSS);
    const char *loss = ls ? ls->expr->name : loss_name(g->loss);
    dot_node(f, "target", xprintf("target\n%s", g->classes && !g->target.ndim ? "[N] class indices"
                                  : g->classes ? xprintf("%s class indices", nshape(&g->target)) : nshape(&g->target)),
             "shape=ellipse");
    dot_node(f, "loss", xprintf("loss\n%s", ls ? call_text(ls->expr, 0) : loss), "shape=box, style=filled, "
             "fillcolor=\"#fff2cc\", color=\"#bf9000\"");
    dot_edge(f, xprintf("v%d", g->output), "loss", nshape(&g->nodes[g->output].shape), "");
    dot_edge(f, "target", "loss", g->classes && !g->target.ndim ? "[N]" : nshape(&g->target), "");
    if (backward)
        dot_backward(f, g, loss);
    fprintf(f, "}\n");
}

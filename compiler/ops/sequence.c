/* ops/sequence.c — the operations of sequence models, whose values are
 * [T, C]: T positions of C features each (PyTorch's batch_first layout
 * without the batch).
 *
 *   embedding(num_embeddings, embedding_dim)   nn.Embedding: token ids [T] -> [T, dim];
 *                                              its weight [num, dim] starts N(0, 1)
 *   positions(idx)                             torch.arange(T) as ids, for a learned
 *                                              positional embedding
 *   layernorm(normalized_shape, eps=1e-5, elementwise_affine=true)
 *                                              nn.LayerNorm over the last dimension
 *   attention(qkv, heads=1, causal=...)        scaled dot-product attention: q, k and v
 *                                              side by side in [T, 3C] -> [T, C], as
 *                                              nanoGPT's c_attn makes them
 *   lstm(hidden_size)                          nn.LSTM(batch_first=True), one layer:
 *                                              [T, I] -> [T, hidden], every step's h
 *
 * Token ids are values too (Node.vocab > 0, stored as floats): the input's
 * `tokens(vocab=N)` and positions make them, and only embedding and
 * positions take them (shape.c says so to any other operation).
 * layernorm keeps each row's mean and 1/std, attention its probabilities
 * [heads, T, T] and lstm its gates and cells [T, 5 hidden], in the arena
 * from forward to backward (OpDef.saved).
 */
#include <math.h>

#include "nnc.h"
#include "emit.h"

/* ---- embedding ---- */

static bool embedding_bind(Layer *l, const Ast *call, Ast *const *v)
{
    bool ok = true;
    if (!v[0] || !v[1]) {
        arg_missing(call, v[0] ? "embedding_dim" : "num_embeddings", "embedding(96, 128)");
        return false;
    }
    ok &= arg_size(v[0], "num_embeddings", 1, &l->in);
    ok &= arg_size(v[1], "embedding_dim", 1, &l->out);
    l->in_span = v[0]->span;
    return ok;
}

/* ids [T] -> [T, dim]; the ids must fit the table */
static bool embedding_infer(Graph *g, Node *n, const Shape *in)
{
    Layer *l = n->layer;
    const Node *src = &g->nodes[n->in[0]];
    if (src->vocab <= 0) {
        diag_error(n->span, "%s looks up token ids, but its input %s holds numbers", l->name, shape_str(in));
        diag_help("declare the input as token ids, e.g. `input idx: [%lld] tokens(vocab=%lld)`",
                  (long long)in->dim[0], (long long)l->in);
        shape_note_chain(g, n->in[0]);
        return false;
    }
    if (src->vocab > l->in && src->op == OP_POSITIONS) {
        diag_error(l->in_span, "%s has %lld rows, one a position, but the sequence has %lld positions", l->name,
                   (long long)l->in, (long long)src->vocab);
        diag_note(g->nodes[g->input].span, "the sequence's length is declared here");
        diag_help("give it a row for every position: `embedding(%lld, %lld)`", (long long)src->vocab,
                  (long long)l->out);
        return false;
    }
    if (src->vocab > l->in) {
        diag_error(l->in_span, "%s has %lld rows (num_embeddings), but its input's ids go up to %lld", l->name,
                   (long long)l->in, (long long)(src->vocab - 1));
        diag_note(src->span, "the ids come from here: %lld of them, 0 to %lld", (long long)src->vocab,
                  (long long)src->vocab - 1);
        diag_help("give it a row for every id: `embedding(%lld, %lld)`", (long long)src->vocab,
                  (long long)l->out);
        return false;
    }
    n->shape = (Shape){2, {in->dim[0], l->out}};
    return true;
}

/* weight [num, dim] ~ N(0, 1), as nn.Embedding's reset_parameters */
static bool embedding_params(Graph *g, Layer *l)
{
    (void)g;
    Param w = param_make(l, "weight", (Shape){2, {l->in, l->out}}, INIT_NORMAL, false);
    w.bound = 1.0f;
    l->params[l->nparams++] = w;
    return true;
}

static void embedding_explain(FILE *out, const Graph *g, const Node *n)
{
    const Layer *l = n->layer;
    fprintf(out, "    looks up each of %lld ids (< %lld) in a table [%lld, %lld]\n",
            (long long)n->shape.dim[0], (long long)g->nodes[n->in[0]].vocab, (long long)l->in, (long long)l->out);
}

static void emit_embedding_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_embedding_forward(%s, %s, %s, %s, %lld, %lld);\n", V(e, n->id), V(e, n->in[0]),
        param_ptr(e, "param", weight(n)), node_rows(n), (long long)n->layer->in, (long long)n->layer->out);
}

static void emit_embedding_backward(Emit *e, const Node *n)
{
    first_grads(e, n, true);
    out(e, "    nnrt_embedding_backward(%s, %s, %s, %s, %lld, %lld);\n", param_ptr(e, "grad", weight(n)),
        D(e, n->id), V(e, n->in[0]), node_rows(n), (long long)n->layer->in, (long long)n->layer->out);
}

const OpDef op_embedding = {
    .name = "embedding", .kind = OP_EMBEDDING, .layer = true,
    .args = {"num_embeddings", "embedding_dim"},
    .order = {0, 1}, .norder = 2,
    .torch_order = {0, 1}, .ntorch = 2,
    .bind_layer = embedding_bind, .infer = embedding_infer, .params = embedding_params,
    .reads = READS_INPUT, .takes_tokens = true, .explain = embedding_explain,
    .emit_forward = emit_embedding_forward, .emit_backward = emit_embedding_backward,
    .backward_always = true,
};

/* ---- positions ---- */

/* ids [T] -> the ids 0 .. T-1 */
static bool positions_infer(Graph *g, Node *n, const Shape *in)
{
    if (g->nodes[n->in[0]].vocab <= 0 || in->ndim != 1) {
        diag_error(n->span, "positions numbers the positions of a sequence of token ids, but its input is %s of "
                   "numbers", shape_str(in));
        diag_help("give it the input ids: `positions(idx)`");
        return false;
    }
    n->shape = *in;
    n->vocab = in->dim[0];
    return true;
}

static void positions_explain(FILE *out, const Graph *g, const Node *n)
{
    (void)g;
    fprintf(out, "    the ids 0 .. %lld, one a position\n", (long long)n->shape.dim[0] - 1);
}

static void emit_positions_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_positions(%s, n, %lld);\n", V(e, n->id), (long long)n->shape.dim[0]);
}

const OpDef op_positions = {
    .name = "positions", .kind = OP_POSITIONS, .ninputs = 1,
    .infer = positions_infer, .reads = READS_NOTHING, .takes_tokens = true, .explain = positions_explain,
    .emit_forward = emit_positions_forward,
};

/* ---- layernorm ---- */

static bool layernorm_bind(Layer *l, const Ast *call, Ast *const *v)
{
    (void)call;
    bool ok = true;
    l->in = -1;
    l->eps = 1e-5;
    l->bias = true;
    if (v[0]) {
        ok &= arg_size(v[0], "normalized_shape", 1, &l->in);
        l->in_span = v[0]->span;
    }
    if (v[1]) ok &= arg_range(v[1], "eps", 0, 1, false, &l->eps);
    if (v[2]) ok &= arg_bool(v[2], "elementwise_affine", &l->bias);
    return ok;
}

/* [..., C] unchanged; normalised over C */
static bool layernorm_infer(Graph *g, Node *n, const Shape *in)
{
    Layer *l = n->layer;
    int64_t c = in->dim[in->ndim - 1];
    if (l->in < 0) {
        l->in = c;
    } else if (l->in != c) {
        diag_error(l->in_span, "%s normalises %lld features, but the last dimension of its input %s has %lld",
                   l->name, (long long)l->in, shape_str(in), (long long)c);
        diag_help("write `layernorm()` and nnc infers %lld", (long long)c);
        shape_note_chain(g, n->in[0]);
        return false;
    }
    l->out = l->in;
    n->shape = *in;
    return true;
}

/* weight 1, bias 0 (when elementwise_affine) */
static bool layernorm_params(Graph *g, Layer *l)
{
    (void)g;
    if (l->bias) {
        l->params[l->nparams++] = param_make(l, "weight", (Shape){1, {l->in}}, INIT_ONE, false);
        l->params[l->nparams++] = param_make(l, "bias", (Shape){1, {l->in}}, INIT_ZERO, false);
    }
    return true;
}

/* each row's mean and 1/std */
static size_t layernorm_saved(const Node *n)
{
    return 2 * (size_t)(shape_numel(&n->shape) / n->layer->in);
}

static void layernorm_explain(FILE *out, const Graph *g, const Node *n)
{
    (void)g;
    const Layer *l = n->layer;
    fprintf(out, "    normalises the last dimension, %lld features (%s), at each of %lld positions; shape unchanged\n",
            (long long)l->in, l->in_span.first_line ? "as written, checked" : "inferred from the input",
            (long long)(shape_numel(&n->shape) / l->in));
}

/* mean[n * rows], then rstd[n * rows], in the node's saved buffer */
static const char *layernorm_stats(const Node *n, bool rstd)
{
    if (!rstd)
        return xprintf("m->act + B * %zu", n->aux);
    return xprintf("m->act + B * %zu + (size_t)%s", n->aux, node_rows(n));
}

static void emit_layernorm_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_layernorm_forward(%s, %s, %s, %s, %s, %s, %s, %lld, %s);\n", V(e, n->id),
        layernorm_stats(n, false), layernorm_stats(n, true), V(e, n->in[0]), param_ptr(e, "param", weight(n)),
        param_ptr(e, "param", bias(n)), node_rows(n), (long long)n->layer->in, F(n->layer->eps));
}

static void emit_layernorm_backward(Emit *e, const Node *n)
{
    first_grads(e, n, true);
    out(e, "    nnrt_layernorm_backward(%s, %s, %s, %s, %s, %s, %s, %s, %s, %lld);\n", D(e, n->in[0]),
        param_ptr(e, "grad", weight(n)), param_ptr(e, "grad", bias(n)), D(e, n->id), V(e, n->in[0]),
        layernorm_stats(n, false), layernorm_stats(n, true), param_ptr(e, "param", weight(n)), node_rows(n),
        (long long)n->layer->in);
}

const OpDef op_layernorm = {
    .name = "layernorm", .kind = OP_LAYERNORM, .layer = true,
    .args = {"normalized_shape", "eps", "elementwise_affine"},
    .order = {0, 1, 2}, .norder = 3,
    .bind_layer = layernorm_bind, .infer = layernorm_infer, .params = layernorm_params,
    .reads = READS_INPUT, .saved = layernorm_saved, .explain = layernorm_explain,
    .emit_forward = emit_layernorm_forward, .emit_backward = emit_layernorm_backward,
    .backward_always = true,
};

/* ---- attention ---- */

/* attention(qkv, heads=1, causal=true|false): causal has no default, as
 * forgetting it lets a language model read the token it is to predict */
static bool attention_bind(Graph *g, Node *n, const Ast *call, Ast *const *v)
{
    (void)g;
    bool ok = true;
    int64_t heads = 1;
    if (v[0]) ok &= arg_size(v[0], "heads", 1, &heads);
    n->heads = (int)(heads > 4096 ? 4096 : heads);
    if (!v[1]) {
        diag_error(call->span, "attention needs `causal=true` (each position sees the positions before it, as a "
                   "language model must) or `causal=false` (every position sees all)");
        diag_help("for a GPT: `attention(qkv, heads=%lld, causal=true)`", (long long)heads);
        return false;
    }
    ok &= arg_bool(v[1], "causal", &n->causal);
    return ok;
}

/* [T, 3C] -> [T, C], C = heads * head size */
static bool attention_infer(Graph *g, Node *n, const Shape *in)
{
    if (in->ndim != 2 || in->dim[1] % 3) {
        diag_error(n->span, "attention takes q, k and v side by side, [positions, 3 * channels], but its input is %s",
                   shape_str(in));
        diag_help("make them with one linear layer of three times the width: `qkv = c_attn(x)` with "
                  "`c_attn = linear(%lld)`", (long long)(3 * in->dim[in->ndim - 1]));
        shape_note_chain(g, n->in[0]);
        return false;
    }
    int64_t c = in->dim[1] / 3;
    if (c % n->heads) {
        diag_error(n->span, "attention's %d heads do not divide its width of %lld channels", n->heads, (long long)c);
        diag_note(NO_SPAN, "each head takes an equal share of the channels: %lld / %d is not a whole number",
                  (long long)c, n->heads);
        shape_note_chain(g, n->in[0]);
        return false;
    }
    n->shape = (Shape){2, {in->dim[0], c}};
    return true;
}

/* the probabilities [heads, T, T] */
static size_t attention_saved(const Node *n)
{
    return (size_t)n->heads * (size_t)n->shape.dim[0] * (size_t)n->shape.dim[0];
}

static void attention_workspace(const Graph *g, const Node *n, int N, nnrt_workspace *w)
{
    (void)g;
    nnrt_workspace_attention(w, N, (int)n->shape.dim[0], (int)n->shape.dim[1], n->heads);
}

static void emit_attention_workspace(Emit *e, const Node *n)
{
    out(e, "    nnrt_workspace_attention(w, n, %lld, %lld, %d);\n", (long long)n->shape.dim[0],
        (long long)n->shape.dim[1], n->heads);
}

static void attention_explain(FILE *out, const Graph *g, const Node *n)
{
    (void)g;
    fprintf(out, "    %d head%s of %lld channels, %s; keeps [%d, %lld, %lld] probabilities for backward\n",
            n->heads, n->heads == 1 ? "" : "s", (long long)(n->shape.dim[1] / n->heads),
            n->causal ? "causal (each position sees those before it)" : "every position sees all", n->heads,
            (long long)n->shape.dim[0], (long long)n->shape.dim[0]);
}

static void emit_attention_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_attention_forward(%s, m->act + B * %zu, %s, n, %lld, %lld, %d, %d);\n", V(e, n->id), n->aux,
        V(e, n->in[0]), (long long)n->shape.dim[0], (long long)n->shape.dim[1], n->heads, n->causal);
}

static void emit_attention_backward(Emit *e, const Node *n)
{
    out(e, "    nnrt_attention_backward(%s, %s, m->act + B * %zu, %s, n, %lld, %lld, %d, %d);\n", D(e, n->in[0]),
        D(e, n->id), n->aux, V(e, n->in[0]), (long long)n->shape.dim[0], (long long)n->shape.dim[1], n->heads,
        n->causal);
}

const OpDef op_attention = {
    .name = "attention", .kind = OP_ATTENTION, .ninputs = 1, .args = {"heads", "causal"},
    .bind = attention_bind, .infer = attention_infer, .reads = READS_INPUT, .saved = attention_saved,
    .workspace = attention_workspace, .emit_workspace = emit_attention_workspace, .explain = attention_explain,
    .emit_forward = emit_attention_forward, .emit_backward = emit_attention_backward,
};


/* ---- lstm ---- */

/* lstm(hidden_size, num_layers=1, bias=true, batch_first=true), or PyTorch's
 * lstm(input_size, hidden_size); input_size is inferred when left out */
static bool lstm_bind(Layer *l, const Ast *call, Ast *const *v)
{
    bool ok = true;
    l->bias = true;
    l->in = -1;
    if (v[0]) {
        ok &= arg_size(v[0], "input_size", 1, &l->in);
        l->in_span = v[0]->span;
    }
    if (!v[1]) {
        arg_missing(call, "hidden_size", "lstm(128)");
        return false;
    }
    ok &= arg_size(v[1], "hidden_size", 1, &l->out);
    int64_t layers = 1;
    if (v[2] && (ok &= arg_size(v[2], "num_layers", 1, &layers)) && layers > 1) {
        diag_error(v[2]->span, "lstm of %lld layers is not there yet: nnc's lstm has one layer", (long long)layers);
        diag_help("stack layers instead, `h = lstm2(lstm1(x))`, each `lstm(%s)`; their weights are then "
                  "lstm1.weight_ih_l0 and lstm2.weight_ih_l0, not one module's _l0 and _l1",
                  v[1] ? diag_snippet(v[1]->span) : "hidden_size");
        ok = false;
    }
    if (v[3]) ok &= arg_bool(v[3], "bias", &l->bias);
    bool batch_first = true;
    if (v[4] && (ok &= arg_bool(v[4], "batch_first", &batch_first)) && !batch_first) {
        diag_error(v[4]->span, "nnc's values are [positions, features] per sample, the batch first: "
                   "batch_first=false has no meaning here");
        diag_help("leave it out");
        ok = false;
    }
    return ok;
}

/* [T, I] -> [T, H] */
static bool lstm_infer(Graph *g, Node *n, const Shape *in)
{
    Layer *l = n->layer;
    if (in->ndim != 2) {
        diag_error(n->span, "%s runs over a sequence [positions, features], but its input is %s", l->name,
                   shape_str(in));
        shape_note_chain(g, n->in[0]);
        return false;
    }
    if (l->in < 0) {
        l->in = in->dim[1];
    } else if (l->in != in->dim[1]) {
        diag_error(l->in_span, "%s expects %lld input features, but its input %s has %lld", l->name,
                   (long long)l->in, shape_str(in), (long long)in->dim[1]);
        diag_help("write `lstm(%lld)` and nnc infers %lld", (long long)l->out, (long long)in->dim[1]);
        shape_note_chain(g, n->in[0]);
        return false;
    }
    n->shape = (Shape){2, {in->dim[0], l->out}};
    return true;
}

/* weight_ih_l0 [4H, I], weight_hh_l0 [4H, H], bias_ih_l0 and bias_hh_l0
 * [4H], all U(-1/sqrt(H), 1/sqrt(H)), as nn.LSTM's reset_parameters */
static bool lstm_params(Graph *g, Layer *l)
{
    (void)g;
    float bound = (float)(1.0 / sqrt((double)l->out));
    const char *names[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
    Shape shapes[] = {{2, {4 * l->out, l->in}}, {2, {4 * l->out, l->out}}, {1, {4 * l->out}}, {1, {4 * l->out}}};
    for (int i = 0; i < (l->bias ? 4 : 2); i++) {
        Param p = param_make(l, names[i], shapes[i], INIT_UNIFORM, false);
        p.bound = bound;
        l->params[l->nparams++] = p;
    }
    return true;
}

/* the gates after their activations, and the cell, at each step */
static size_t lstm_saved(const Node *n)
{
    return 5 * (size_t)n->layer->out * (size_t)n->shape.dim[0];
}

static void lstm_workspace(const Graph *g, const Node *n, int N, nnrt_workspace *w)
{
    (void)g;
    nnrt_workspace_lstm(w, N, (int)n->shape.dim[0], (int)n->layer->in, (int)n->layer->out);
}

static void emit_lstm_workspace(Emit *e, const Node *n)
{
    out(e, "    nnrt_workspace_lstm(w, n, %lld, %lld, %lld);\n", (long long)n->shape.dim[0],
        (long long)n->layer->in, (long long)n->layer->out);
}

static void lstm_explain(FILE *out, const Graph *g, const Node *n)
{
    (void)g;
    const Layer *l = n->layer;
    fprintf(out, "    %lld steps of %lld features in (%s), a hidden state of %lld out at each; gates i, f, g, o\n",
            (long long)n->shape.dim[0], (long long)l->in,
            l->in_span.first_line ? "as written, checked" : "inferred from the input", (long long)l->out);
}

static void emit_lstm_forward(Emit *e, const Node *n)
{
    const Layer *l = n->layer;
    out(e, "    nnrt_lstm_forward(%s, m->act + B * %zu, %s, %s, %s, %s, %s, n, %lld, %lld, %lld);\n", V(e, n->id),
        n->aux, V(e, n->in[0]), param_ptr(e, "param", lparam(n, "weight_ih_l0")),
        param_ptr(e, "param", lparam(n, "weight_hh_l0")), param_ptr(e, "param", lparam(n, "bias_ih_l0")),
        param_ptr(e, "param", lparam(n, "bias_hh_l0")), (long long)n->shape.dim[0], (long long)l->in,
        (long long)l->out);
}

static void emit_lstm_backward(Emit *e, const Node *n)
{
    const Layer *l = n->layer;
    first_grads(e, n, true);
    out(e, "    nnrt_lstm_backward(%s, %s, %s, %s, %s, %s, %s, %s, m->act + B * %zu, %s, %s, n, %lld, %lld, %lld);\n",
        D(e, n->in[0]), param_ptr(e, "grad", lparam(n, "weight_ih_l0")),
        param_ptr(e, "grad", lparam(n, "weight_hh_l0")), param_ptr(e, "grad", lparam(n, "bias_ih_l0")),
        param_ptr(e, "grad", lparam(n, "bias_hh_l0")), D(e, n->id), V(e, n->in[0]), V(e, n->id), n->aux,
        param_ptr(e, "param", lparam(n, "weight_ih_l0")), param_ptr(e, "param", lparam(n, "weight_hh_l0")),
        (long long)n->shape.dim[0], (long long)l->in, (long long)l->out);
}

const OpDef op_lstm = {
    .name = "lstm", .kind = OP_LSTM, .layer = true,
    .args = {"input_size", "hidden_size", "num_layers", "bias", "batch_first"},
    .order = {1}, .norder = 1,
    .torch_order = {0, 1}, .ntorch = 2,
    .bind_layer = lstm_bind, .infer = lstm_infer, .params = lstm_params,
    .reads = READS_INPUT_OUTPUT, .saved = lstm_saved,
    .workspace = lstm_workspace, .emit_workspace = emit_lstm_workspace, .explain = lstm_explain,
    .emit_forward = emit_lstm_forward, .emit_backward = emit_lstm_backward,
    .backward_always = true,
};

/* nnc.h — the one header of the nnc compiler, and its table of contents.
 *
 * nnc reads a model description (.nn), builds a graph of layers and values,
 * infers and checks the shape of every tensor, and writes one C file that
 * trains the model with the runtime in runtime/. main.c reads as the
 * pipeline, top to bottom:
 *
 *   source text --lexer.l/parser.y or json.c--> AST --graph.c--> Graph
 *       --shape.c--> shapes, parameters --plan.c--> memory, fusions,
 *       workspace --emit.c--> C file     (pipeline.c: graph, shape, plan)
 *
 * Each operation is one entry of the operation table (ops/, below), which
 * every phase reads instead of switching on the kind.
 *
 * Memory: nnc is a short-lived program. Everything it allocates comes from
 * one arena (xalloc) released at exit; nothing is freed one by one.
 */
#ifndef NNC_H
#define NNC_H

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nnrt.h"    /* the runtime's types: plan.c sizes its kernels' workspace */

#define NNC_VERSION "0.1.0"
#define MAX_DIMS 4      /* per-sample dims of a value (the batch dim is implicit) */
#define MAX_INPUTS 8    /* inputs of one graph node (concat) */
/* The largest size nnc accepts: of one argument (a kernel, a dimension), of
 * a tensor per sample, and of one parameter tensor, in elements. The runtime
 * indexes with int, and the products of two such sizes fit int64_t. */
#define MAX_NUMEL ((int64_t)1 << 30)
/* The most parameters (and buffers) a model may have, in floats: 16 GiB,
 * before gradients and optimizer state; a model that large could not train. */
#define MAX_PARAMS ((int64_t)1 << 32)
#define MAX_NAME 255    /* the longest name: names become C identifiers and tensor names */

/* ================= arena.c: memory and small strings ================= */

void *xalloc(size_t size);                 /* zeroed; exits on out of memory */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void arena_free_all(void);
/* grows *items (each of size elem) to hold at least n; *cap tracks capacity */
void vec_reserve(void **items, int *cap, int n, size_t elem);
#define VEC_PUSH(arr, len, cap, x) \
    (vec_reserve((void **)&(arr), &(cap), (len) + 1, sizeof *(arr)), (arr)[(len)++] = (x))
/* A hash table from names to ints (zero-initialise it; the keys are not
 * copied), so that a model of 10,000 layers is not looked up in quadratic time. */
typedef struct NameMap { const char **keys; int *vals; int cap, n; } NameMap;
int namemap_get(const NameMap *m, const char *key);        /* -1 if absent */
void namemap_put(NameMap *m, const char *key, int val);    /* adds, or replaces the value */

/* ================= diag.c: located diagnostics ================= */

/* A region of the source: 1-based line and column of the first and of the
 * last character (inclusive). Field names are the ones bison's %locations uses. */
typedef struct Span {
    int first_line, first_column;
    int last_line, last_column;
} Span;

void diag_set_source(const char *path, const char *text, size_t len);
const char *diag_path(void);
/* forgets the source, the error count, -Werror and the locator: for running
 * the pipeline again in one process (tests/fuzz) */
void diag_reset(void);
/* error at span: "file:line:col: error: msg", the source line, a caret line */
void diag_error(Span at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_warning(Span at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_set_werror(bool on);     /* -Werror: warnings count as errors */
/* a note attached to the last diagnostic; span may be NO_SPAN */
void diag_note(Span at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_help(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* an error about the whole run, not a place: "nnc: error: msg" */
void diag_fatal_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int diag_error_count(void);       /* errors so far, also those past the cap not shown */
/* the source text of a span (its first line), for messages that quote code */
char *diag_snippet(Span at);
/* the closest of candidates to word, or NULL if none is close (did you mean) */
const char *diag_closest(const char *word, const char *const *candidates, int n);
extern const Span NO_SPAN;
/* A front-end's own words for a span, printed as a note under each error and
 * warning; the JSON front-end gives the JSON path ("JSON path /layers/fc1/in"). */
void diag_set_locator(const char *(*where)(Span at));

/* ================= ast.c: the syntax tree the parser builds ================= */

typedef enum {
    A_INT,      /* 5            ival */
    A_FLOAT,    /* 0.01         fval */
    A_STRING,   /* "fast"       str */
    A_IDENT,    /* x            name */
    A_LIST,     /* [1, 32, 32]  kids */
    A_CALL,     /* conv2d(6, kernel=5): name is the callee, kids are A_ARG */
    A_ARG,      /* kernel=5:    name (NULL when positional), sep '=' or ':', value */
} AstKind;

typedef struct Ast Ast;
struct Ast {
    AstKind kind;
    Span span;          /* the whole expression */
    Span name_span;     /* A_CALL: the callee; A_ARG: the argument name */
    char *name;
    long long ival;
    double fval;
    char *str;
    char sep;
    const char *param;  /* A_ARG: the parameter graph.c bound it to ("kernel"), for exporters */
    Ast *value;         /* A_ARG */
    Ast **kids;         /* A_LIST items, A_CALL arguments */
    int nkids, capkids;
};

typedef enum {
    S_INPUT,        /* input x: [1, 32, 32]          name, expr = the list */
    S_LAYER,        /* conv1 = conv2d(6, kernel=5)   name, expr = the call */
    S_FORWARD,      /* forward { ... }               body */
    S_ASSIGN,       /* x = relu(x)   (in forward)    name, expr */
    S_RETURN,       /* return fc3(x) (in forward)    expr */
    S_LOSS,         /* loss mse(target: [10])        expr = the call */
    S_OPTIMIZER,    /* optimizer sgd(lr=0.01)        expr = the call */
} StmtKind;

typedef struct Stmt Stmt;
struct Stmt {
    StmtKind kind;
    Span span;          /* the whole statement */
    Span name_span;
    char *name;
    Ast *expr;
    Ast *type;          /* S_INPUT: what the values are, `tokens(vocab=96)`; NULL: floats */
    Stmt **body;        /* S_FORWARD */
    int nbody, capbody;
};

typedef struct Model {
    char *name;
    Span span, name_span;
    Stmt **items;
    int nitems, capitems;
} Model;

Ast *ast_int(Span at, long long v);
Ast *ast_float(Span at, double v);
Ast *ast_string(Span at, char *s);
Ast *ast_ident(Span at, char *name);
Ast *ast_neg(Span at, Ast *e);
Ast *ast_list(Span at);
Ast *ast_call(Span at, Span name_at, char *name);
Ast *ast_arg(Span at, Span name_at, char *name, char sep, Ast *value);
Ast *ast_push(Ast *list_or_call, Ast *kid);
Stmt *stmt_new(StmtKind kind, Span at, Span name_at, char *name, Ast *expr);
Stmt *stmt_push(Stmt *forward, Stmt *s);
Model *model_new(void);
void model_push(Model *m, Stmt *s);
const char *ast_kind_name(const Ast *a);   /* "an integer", "a list", ... */

/* ================= parse.c (with lexer.l, parser.y): text to AST ================= */

/* Parses the text of one .nn file. Reports syntax errors through diag; returns
 * the model, or NULL if the file holds none. */
Model *parse_model(const char *text, size_t len);

/* ================= json.c: the JSON front-end ================= */

/* Reads a model written as JSON (docs/json-format.md) into the same AST that
 * parse_model builds, every node located in the JSON text. Reports syntax and
 * structure errors through diag; NULL if there is no model to build. */
Model *json_parse_model(const char *text, size_t len);
/* Is this file JSON? By its name (.json, .nn), else by its first character. */
bool json_detect(const char *path, const char *text);

/* ================= graph.c: AST to graph ================= */

/* The kind of an operation: one per entry of ops/list.h, whose definition
 * (an OpDef, below) says everything else about it. */
typedef enum {
#define OP(kind, def) OP_##kind,
#include "ops/list.h"
#undef OP
} OpKind;
enum {  /* how many kinds there are */
    OP_COUNT = 0
#define OP(kind, def) + 1
#include "ops/list.h"
#undef OP
};

typedef struct Shape {
    int ndim;
    int64_t dim[MAX_DIMS];
} Shape;

typedef struct Param {
    char *name;         /* state_dict name: "conv1.weight" */
    Shape shape;        /* [6, 1, 5, 5] */
    bool buffer;        /* a buffer (running_mean, running_var): no gradient, in the buffer block */
    bool count;         /* a buffer that counts (num_batches_tracked): int64, in the count block */
    size_t offset;      /* in floats, into the parameter (or buffer) block */
    size_t numel;
    int init;           /* INIT_UNIFORM (bound), INIT_ZERO, INIT_ONE, INIT_NORMAL (bound) */
    float bound;        /* INIT_UNIFORM: U(-bound, bound); INIT_NORMAL: N(0, bound^2) */
} Param;
enum { INIT_UNIFORM, INIT_ZERO, INIT_ONE, INIT_NORMAL };

/* A layer: declared once by name, owns parameters, applied in forward. */
typedef struct Layer {
    char *name;
    Span span;          /* the declaration `conv1 = conv2d(6, kernel=5)` */
    Ast *call;          /* conv2d(6, kernel=5) */
    OpKind op;
    int64_t out;        /* out channels / out features (batch norm: = in) */
    int64_t in;         /* in channels / in features; -1 = infer */
    Span in_span;       /* where `in` was written, when it was */
    int64_t kernel[2], stride[2], pad[2], dil[2], groups;
    bool bias;          /* conv2d, linear; batch norm: affine */
    double eps, momentum;   /* batch norm */
    int uses;           /* how many times forward applies it */
    bool bad;           /* its definition had an error (reported); uses stay quiet */
    Param params[5];    /* weight, bias; batch norm: + running_mean, running_var, num_batches_tracked */
    int nparams;
} Layer;

/* A value in forward: one node of the dataflow graph. */
typedef struct Node {
    int id;             /* index in Graph.nodes, topological order */
    OpKind op;
    Span span;          /* the expression that makes it */
    Ast *call;          /* that expression: its arguments, for exporters */
    char *label;        /* "conv1", "relu", "maxpool2d", the input's name */
    int in[MAX_INPUTS]; /* producer node ids */
    int nin;
    Layer *layer;       /* for layers: whose weights */
    int64_t kernel[2], stride[2], pad[2]; /* pooling */
    bool ceil_mode, count_include_pad;    /* pooling */
    int64_t size[2];    /* adaptive pooling: output height, width */
    double alpha;       /* leaky_relu: negative slope; dropout: p */
    int dim;            /* softmax, log_softmax: PyTorch's dim (1 = the first per-sample dim) */
    int64_t vocab;      /* > 0: the value holds token ids in [0, vocab), as floats (the input's
                         * tokens(vocab=N), positions): only an embedding reads it */
    int heads;          /* attention: heads */
    bool causal;        /* attention: masked above the diagonal */
    Shape shape;        /* per sample, inferred by shape.c */
    int alias;          /* -1, or the node whose memory this is a view of (flatten) */
    size_t offset;      /* its value: floats per sample into the activation arena (plan.c) */
    size_t goffset;     /* its gradient, likewise (when needs_grad) */
    int zero_before;    /* the backward step that first writes the gradient (zeroes it first), or -1 */
    size_t aux;         /* dropout: its mask, floats per sample into the arena */
    size_t scratch;     /* batch norm: mean and invstd, floats into the scratch block */
    bool needs_grad;    /* does backward need d(loss)/d(this)? */
    /* fusions (plan.c): a ReLU after a convolution that nothing else reads
     * works in place (alias = the convolution), its forward done by the
     * convolution (conv's relu); when a max-pool is its only reader, its
     * backward is done by the max-pool's (maxpool's relu, relu's folded) */
    bool relu;          /* conv2d: applies the ReLU; maxpool2d: does the ReLU's backward */
    bool folded;        /* relu: its backward is done by the max-pool after it */
    bool assign;        /* maxpool2d: the only writer of its input's gradient: its backward
                         * writes it whole (dx = ...), so nothing zeroes it first */
    /* and when that input is a convolution's output (or its fused ReLU's),
     * the convolution's backward does the max-pool's too, sample by sample,
     * so the convolution's output gradient needs no buffer */
    int pool;           /* conv2d: that max-pool, or -1 */
    bool into_conv;     /* maxpool2d: its backward is done by the convolution's */
    bool argmax;        /* maxpool2d: its forward keeps each window's choice (a byte, at aux)
                         * for its backward, which then does not read its input */
    bool assign_dx;     /* conv2d: the only writer of its input's gradient: its backward
                         * writes it whole, so nothing zeroes it first */
    unsigned assign_in; /* relu, add, batch norm: bit k: the same for input k
                         * (nnrt_relu_backward_assign, a copy in place of an accumulation,
                         * the batch norm's dims' assign_dx) */
    bool defer_dw;      /* conv2d: its backward may leave its weight's gradient to another
                         * thread, which reads its input and output gradient (or its
                         * max-pool's) until the end of the backward: they live until then */
} Node;

typedef enum { LOSS_MSE, LOSS_L1, LOSS_CROSS_ENTROPY, LOSS_NLL, LOSS_BCE_WITH_LOGITS } LossKind;
typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptKind;
typedef enum { SCHED_NONE, SCHED_STEP, SCHED_COSINE, SCHED_WARMUP_COSINE } SchedKind;

/* Each parameter (and buffer) tensor starts at a multiple of this many
 * floats, a 64-byte cache line: a linear layer's weight rows then load as
 * whole vectors when its input width is a multiple of 16. */
enum { PARAM_ALIGN = 16 };

/* One buffer of the activation arena, as plan.c placed it: what it holds,
 * when it is alive (the plan's timeline: node i's forward is step i, the
 * loss step N, node i's backward step 2N - i) and where (floats per sample).
 * Two buffers share memory only when their lifetimes do not overlap. */
typedef enum { BUF_VALUE, BUF_GRAD, BUF_MASK, BUF_CHOICES } BufKind;
typedef struct PlanBuffer {
    BufKind kind;
    int node;               /* whose value, gradient, dropout mask or max-pool choices */
    int start, end;         /* alive from step start to step end, inclusive */
    size_t offset, size;    /* floats per sample (choices: bytes, in size floats) */
} PlanBuffer;

typedef struct Graph {
    Model *model;
    char *name;
    Layer *layers;  int nlayers, caplayers;
    NameMap layer_index;    /* graph.c: each layer's index in layers, by name */
    Node *nodes;    int nnodes, capnodes;
    int input;              /* node id of the input */
    int output;             /* node id forward returns */
    LossKind loss;  Span loss_span;
    bool loss_sum;          /* reduction="sum" (default mean) */
    Shape target;           /* target per sample; ndim 0 for class indices */
    bool target_given;  Span target_span;
    int classes;            /* cross_entropy, nll: the number of classes */
    OptKind opt;    Span opt_span;
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps, clip_norm;
    bool nesterov;
    bool decay_matrices;    /* decay="matrices": weight decay on tensors of 2 or more dims alone */
    SchedKind sched;
    int64_t sched_step_size, sched_t_max;
    double sched_gamma, sched_eta_min;
    size_t nparam;          /* floats in the parameter block: each tensor at a multiple of PARAM_ALIGN */
    size_t ntrainable;      /* of them, the parameters themselves (the rest is padding) */
    size_t nbuf;            /* floats in the buffer block (running statistics) */
    size_t ncount;          /* int64s in the count block (batch norms' num_batches_tracked) */
    size_t nopt;            /* floats of optimizer state (momentum, Adam's moments) */
    size_t nscratch;        /* floats of fixed scratch (batch norm's saved statistics) */
    size_t nact;            /* floats per sample in the activation arena: values and gradients */
    size_t nact_unplanned;  /* what it would be if no two buffers shared memory */
    PlanBuffer *buffers;    /* plan.c: the arena's buffers, by offset, then start */
    int nbuffers;
    bool has_dropout, has_batchnorm;
    bool causal;            /* a sequence model whose output at position t reads the input at 0..t
                             * alone (shape.c): sampling may leave later positions empty */
} Graph;

/* Builds the graph from the AST: resolves names, binds arguments (with
 * each operation's OpDef). Reports errors through diag; the graph is usable
 * only if none were reported. */
Graph *graph_build(Model *m);
const char *loss_name(LossKind k);
const char *opt_name(OptKind k);

/* Readers of one bound argument, for the operations' bind functions: each
 * reports a located error and returns false when the value is not what it
 * must be; `what` names the argument in the message. */
bool arg_size(const Ast *v, const char *what, int64_t min, int64_t *out);   /* an integer >= min */
bool arg_pair(const Ast *v, const char *what, int64_t min, int64_t out[2]); /* 5 or [5, 3] */
bool arg_bool(const Ast *v, const char *what, bool *out);
bool arg_number(const Ast *v, const char *what, double *out);
/* a number in [lo, hi] (hi_open: below hi) */
bool arg_range(const Ast *v, const char *what, double lo, double hi, bool hi_open, double *out);
/* the index of v among the strings choices ("mean"), or -1 */
int arg_choice(const Ast *v, const char *what, const char *const *choices, int n);
/* "conv2d needs the argument `kernel`", with example as the help */
void arg_missing(const Ast *call, const char *name, const char *example);
/* a layer's `in` (optional: -1 until inferred) and `out` (required; example
 * shows it) sizes, with in's span; false after reporting an error */
bool arg_in_out(Layer *l, const Ast *call, const Ast *in, const Ast *out, const char *example);

/* ================= pipeline.c: the checks after the front-end ================= */

/* graph_build, then shape_infer and plan_memory: NULL if any error was
 * reported. Shared by main.c and the fuzz harnesses. */
Graph *graph_compile(Model *m);

/* ================= ops/: the operation table ================= */

/* Everything about one operation, in one place: compiler/ops/<family>.c
 * defines it (conv.c, linear.c, norm.c, pool.c, activation.c, tensor.c),
 * ops/list.h names it once, ops/table.c indexes it by kind. The phases walk
 * it instead of switching on the kind: graph.c binds arguments, shape.c
 * infers shapes and lays out parameters, plan.c plans memory and workspace,
 * explain.c explains, emit.c writes the C, export.c draws the backward.
 * A hook left NULL has the default its comment gives. */
typedef struct Emit Emit;          /* emit.h: the file being written */
typedef enum {
    READS_NOTHING,      /* its backward needs only the gradient flowing in (or a saved mask) */
    READS_INPUT,        /* ... and the value of its input(s) */
    READS_OUTPUT,       /* ... and the value of its own output */
    READS_INPUT_OUTPUT, /* ... and both (lstm: x, and the hidden states h_{t-1}) */
} BackwardReads;

typedef struct OpDef {
    const char *name;       /* as written in .nn and JSON: "conv2d" */
    const char *alias;      /* another name that calls it, or NULL: "global_avgpool2d" */
    OpKind kind;
    bool layer;             /* declared by name and owns parameters; else called in forward */
    int ninputs;            /* functions: the values before the settings; -1: two or more */
    const char *args[8];    /* the settings by name (NULL-terminated); layers: all arguments */
    /* layers: which args the positional arguments fill, in turn; and
     * PyTorch's order (conv2d(in, out, kernel)), used when at least ntorch
     * positional arguments are given. Functions fill args in order. */
    int order[4], norder;
    int torch_order[4], ntorch;
    /* graph.c: reads the bound arguments (v[i] for args[i], NULL when not
     * given) into the layer or the node; false after reporting an error */
    bool (*bind_layer)(Layer *l, const Ast *call, Ast *const *v);
    bool (*bind)(Graph *g, Node *n, const Ast *call, Ast *const *v);
    /* shape.c: n's shape from its inputs (in: the first one's); false after
     * reporting an error. NULL: the shape of its input */
    bool (*infer)(Graph *g, Node *n, const Shape *in);
    /* shape.c: a layer's parameters and buffers into l->params, in
     * PyTorch's state_dict order; false after reporting an error */
    bool (*params)(Graph *g, Layer *l);
    /* plan.c: what its backward reads of forward; whether its forward saves
     * a mask of its output's size for the backward (dropout); the fixed
     * scratch it keeps from forward to backward, in floats (NULL: none);
     * the kernels' workspace at batch N (NULL: none) */
    BackwardReads reads;
    bool mask;
    bool takes_tokens;      /* its input may hold token ids (Node.vocab): embedding, positions */
    size_t (*scratch)(const Node *n);
    /* plan.c: floats per sample its forward saves in the arena for its
     * backward (layernorm's statistics, attention's probabilities); NULL: none */
    size_t (*saved)(const Node *n);
    void (*workspace)(const Graph *g, const Node *n, int N, nnrt_workspace *w);
    /* emit.c: the C of the same, at the generated code's batch n (NULL: none) */
    void (*emit_workspace)(Emit *e, const Node *n);
    /* explain.c: the lines under its shape. NULL: "elementwise; shape unchanged" */
    void (*explain)(FILE *out, const Graph *g, const Node *n);
    /* emit.c: writes the C of its forward, and of its backward (given the
     * gradient of its output: the gradients of its inputs and parameters),
     * with emit.h's writers. backward_always: the backward runs even when no
     * input needs a gradient (a layer's parameters do; add and concat pass
     * gradients to several inputs, some of which may need one). dims: its
     * kernels' dims type (nnrt_<dims>_dims, nnrt_<dims>_batch) and the writer
     * of its fields, for one constant per node; NULL: none */
    void (*emit_forward)(Emit *e, const Node *n);
    void (*emit_backward)(Emit *e, const Node *n);
    bool backward_always;
    const char *dims;
    void (*emit_dims)(Emit *e, const Node *n);
} OpDef;

const OpDef *op_def(OpKind op);
const OpDef *op_find(const char *name);    /* by name or alias; NULL if none (never the input) */
/* the layers' (want_layer) or the functions' names, aliases last; at most max */
int op_names(const char **out, int max, bool want_layer);
const char *op_name(OpKind op);
bool op_is_layer(OpKind op);

/* ================= shape.c: shape inference and checks ================= */

/* One pass over the nodes in order: infers every shape and the layers'
 * omitted sizes, checks the rest, lays out parameters and activations. */
void shape_infer(Graph *g);
char *shape_str(const Shape *s);            /* "[6, 28, 28]" */
int64_t shape_numel(const Shape *s);
bool shape_same(const Shape *a, const Shape *b);
/* For the operations' infer functions: */
/* a note with the shapes on the way to node id: "x [1, 32, 32] -> conv1 [6, 28, 28]" */
void shape_note_chain(const Graph *g, int id);
/* does n's input have [C, H, W]? reports otherwise */
bool shape_want_chw(const Graph *g, const Node *n, const Shape *in);
/* a window's output size along one axis: floor((in + 2p - d(k-1) - 1)/s) + 1, or 0 */
int64_t shape_window_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d);
/* warns when rounding down leaves input rows (axis 0) or columns (1) in no
 * window; k_ext is the window's (dilated) extent; help is the fix to offer */
void shape_warn_dropped(const Node *n, int axis, int64_t in, int64_t k_ext, int64_t s, int64_t p, int64_t out,
                        const char *help);
/* a parameter (or buffer) of layer l called "l.what" */
Param param_make(const Layer *l, const char *what, Shape shape, int init, bool buffer);
/* a weight of shape ws and, if l has one, a bias [out], both U(+-1/sqrt(fan_in))
 * as PyTorch's default initialisation; false (reported) if the weight is too large */
bool param_weight_bias(Layer *l, Shape ws);

/* ================= plan.c: the static memory plan ================= */

/* Gives every value, gradient and mask its place in one arena (per sample),
 * sharing memory between buffers that are never alive at the same time. */
void plan_memory(Graph *g);
/* the step of the timeline at which node id's backward runs */
int plan_backward_time(const Graph *g, int id);
/* node n's convolution as the runtime's kernels see it, for a batch of N */
nnrt_conv2d_dims plan_conv_dims(const Graph *g, const Node *n, int N);
/* which gradients node n's convolution backward computes (0 or 1 each) */
void plan_conv_grads(const Graph *g, const Node *n, int *dx, int *dw, int *db);
/* the scratch the runtime's kernels ask for in a training step at batch N */
void plan_workspace(const Graph *g, int N, nnrt_workspace *w);

/* ================= explain.c: nnc --explain-shapes ================= */

/* every node's shape and the arithmetic that derived it */
void explain_shapes(FILE *out, const Graph *g);
/* "(32 + 2*1 - 3)/2 + 1 = 16": one axis of a window operation, for the
 * operations' explain functions (ceil_mode rounds up) */
char *explain_window(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode, int64_t out);

/* ================= summary.c: the model summary table ================= */

void summary_print(FILE *out, const Graph *g, const char *prefix);

/* ================= emit.c: the generated C file ================= */

void emit_c(FILE *out, const Graph *g, const char *source_path);

/* ================= export.c: the checked graph for other programs ================= */

/* The graph as JSON that nnc reads back as the same graph: the model as
 * written, and what nnc inferred (shapes, parameters). false after an error. */
bool export_json(FILE *out, const Graph *g);
/* The graph for Graphviz: values, shapes on the edges, parameter counts;
 * backward adds the gradient graph and what each gradient reads. */
void export_dot(FILE *out, const Graph *g, bool backward);

#endif /* NNC_H */

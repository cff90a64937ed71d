/* emit.h — what the operations' emitters (the files of compiler/ops: OpDef's
 * emit_forward, emit_backward and emit_dims) share with emit.c: the state
 * of the file being written and the small writers of names and literals.
 * An emitter writes a node's kernel call(s), without the comment line above
 * them (emit.c writes it). A pointer it names is declared at the top of the
 * function only when used: V, D, DIMS and param_ptr record the use.
 */
#ifndef NNC_EMIT_H
#define NNC_EMIT_H

#include "nnc.h"

typedef struct Emit {
    const Graph *g;
    FILE *out;              /* the file, or the current function's buffer */
    const char *M;          /* model name, as a C prefix */
    const char *U;          /* its upper-case form, for macros */
    char **vname;           /* per node: "conv1" (its value is v_conv1, its gradient d_conv1) */
    char **dname;           /* per node: the local name of its kernels' dims, "conv1_dims" */
    bool *use_v, *use_d, *use_dims; /* per node: the function refers to v_, d_, its dims */
    char **pname;           /* per tensor of the state_dict, in order: "conv1_weight" */
    bool *use_p, *use_g;    /* per tensor: the function refers to it, to its gradient */
    NameMap pindex;         /* a tensor's index, by its state_dict name */
    int *zero_start, *zero_at;  /* the nodes whose gradient backward step t zeroes
                                 * (Node.zero_before): zero_at[zero_start[t] .. zero_start[t + 1]) */
    bool *grad_written;     /* per layer, while backward is emitted: an earlier call wrote its
                             * parameters' gradients (a layer applied twice) */
    bool stepping;          /* emitting the backward pass that may take plain SGD's step too */
    bool *stepped;          /* per layer, then: its update is made (the fused linear kernel) */
} Emit;

/* writes to the current function (or the file), as printf */
void out(Emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* the value of node id, "v_conv1"; its gradient, "d_conv1", or "NULL" when
 * backward does not need it; a pointer to node n's kernels' dims at the
 * call's batch, "&conv1_dims" (the constant is its op's emit_dims) */
const char *V(Emit *e, int id);
const char *D(Emit *e, int id);
const char *DIMS(Emit *e, const Node *n);
/* A tensor of the state_dict by name: "conv1_weight" (in m->param, or m->buf
 * for a buffer); block "grad": its gradient, "conv1_weight_grad"; "NULL" for
 * no tensor (p NULL) */
const char *param_ptr(Emit *e, const char *block, const Param *p);
/* a max-pool's choices (plan.c: argmax), bytes in the arena */
const char *pool_codes(Emit *e, const Node *n);
/* a float literal: 0.01f, 1.0f, 1e-08f */
char *F(double v);
/* "[n, 6, 28, 28]": a shape with the batch */
char *nshape(const Shape *s);
/* the layer's parameter called what ("weight", "running_mean"), or NULL */
const Param *lparam(const Node *n, const char *what);
const Param *weight(const Node *n);
const Param *bias(const Node *n);
/* the node whose memory holds n's value (itself unless n is a view) */
int storage(const Graph *g, int id);
/* floats per sample in n's value */
size_t node_numel(const Node *n);
/* the rows of n's value at the call's batch, for the kernels that work on
 * its last dimension: "n", or "n * 64" for a sequence [64, C] */
const char *node_rows(const Node *n);
/* how many nodes apply layer l */
int layer_uses(const Graph *g, const Layer *l);
/* Whether node n's backward is the first to write its layer's gradients;
 * with zero, it clears them then if zero_grad marked them zero (backward
 * accumulates) */
bool first_grads(Emit *e, const Node *n, bool zero);

#endif /* NNC_EMIT_H */

/* ops/list.h — every operation of the language, once: OP(KIND, definition).
 *
 * This list makes the OpKind enum (nnc.h) and the table that maps each kind
 * to its definition (ops/table.c). A definition is an OpDef in its family's
 * file (ops/conv.c, ops/linear.c, ...), which holds everything about the
 * operation; docs/adding-an-operation.md is the checklist for a new one.
 * Included with OP defined; no include guard, on purpose.
 */
OP(INPUT, op_input)
/* layers: declared by name, own parameters */
OP(CONV2D, op_conv2d)
OP(LINEAR, op_linear)
OP(BATCHNORM1D, op_batchnorm1d)
OP(BATCHNORM2D, op_batchnorm2d)
OP(EMBEDDING, op_embedding)
OP(LAYERNORM, op_layernorm)
OP(LSTM, op_lstm)
/* functions: called in forward, no parameters */
OP(MAXPOOL2D, op_maxpool2d)
OP(AVGPOOL2D, op_avgpool2d)
OP(ADAPTIVE_AVGPOOL2D, op_adaptive_avgpool2d)
OP(RELU, op_relu)
OP(LEAKY_RELU, op_leaky_relu)
OP(ELU, op_elu)
OP(SIGMOID, op_sigmoid)
OP(TANH, op_tanh)
OP(GELU, op_gelu)
OP(SILU, op_silu)
OP(SOFTMAX, op_softmax)
OP(LOG_SOFTMAX, op_log_softmax)
OP(DROPOUT, op_dropout)
OP(FLATTEN, op_flatten)
OP(ADD, op_add)
OP(CONCAT, op_concat)
OP(POSITIONS, op_positions)
OP(ATTENTION, op_attention)

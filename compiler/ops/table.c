/* ops/table.c — from an operation's kind to its definition, and by name.
 *
 * The definitions live in their families' files; ops/list.h names each
 * once, and this file turns that list into the table every phase walks.
 */
#include "nnc.h"

#include <string.h>

#define OP(kind, def) extern const OpDef def;
#include "ops/list.h"
#undef OP

static const OpDef *const table[OP_COUNT] = {
#define OP(kind, def) [OP_##kind] = &def,
#include "ops/list.h"
#undef OP
};

const OpDef *op_def(OpKind op)
{
    assert((int)op >= 0 && (int)op < OP_COUNT && table[op]->kind == op);
    return table[op];
}

const char *op_name(OpKind op) { return op_def(op)->name; }

bool op_is_layer(OpKind op) { return op_def(op)->layer; }

/* the operation called name (or by its alias), or NULL; the input is not
 * an operation one can call */
const OpDef *op_find(const char *name)
{
    for (int i = 0; i < OP_COUNT; i++) {
        const OpDef *d = table[i];
        if (d->kind != OP_INPUT && (!strcmp(d->name, name) || (d->alias && !strcmp(d->alias, name))))
            return d;
    }
    return NULL;
}

/* the names of the layers (want_layer) or of the functions, aliases last
 * (for "did you mean"); returns how many */
int op_names(const char **out, int max, bool want_layer)
{
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < OP_COUNT && n < max; i++) {
            const OpDef *d = table[i];
            const char *name = pass ? d->alias : d->name;
            if (d->kind != OP_INPUT && d->layer == want_layer && name)
                out[n++] = name;
        }
    return n;
}

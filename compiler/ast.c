/* ast.c — constructors for the syntax tree.
 *
 * The grammar (grammar/parser.y) stays thin: each rule's action is one call to
 * a constructor here. Every node records the span of source it came from, so
 * every later error can point at the user's text.
 */
#include "nnc.h"

static Ast *ast_new(AstKind kind, Span at)
{
    Ast *a = xalloc(sizeof *a);
    a->kind = kind;
    a->span = at;
    return a;
}

Ast *ast_int(Span at, long long v)    { Ast *a = ast_new(A_INT, at); a->ival = v; return a; }
Ast *ast_float(Span at, double v)     { Ast *a = ast_new(A_FLOAT, at); a->fval = v; return a; }
Ast *ast_string(Span at, char *s)     { Ast *a = ast_new(A_STRING, at); a->str = s; return a; }
Ast *ast_ident(Span at, char *name)   { Ast *a = ast_new(A_IDENT, at); a->name = name; return a; }
Ast *ast_list(Span at)                { return ast_new(A_LIST, at); }

/* -e: folds into the number; anything else stays an error for the checker */
Ast *ast_neg(Span at, Ast *e)
{
    e->span = at;
    if (e->kind == A_INT)
        e->ival = -e->ival;
    else if (e->kind == A_FLOAT)
        e->fval = -e->fval;
    return e;
}

Ast *ast_call(Span at, Span name_at, char *name)
{
    Ast *a = ast_new(A_CALL, at);
    a->name_span = name_at;
    a->name = name;
    return a;
}

Ast *ast_arg(Span at, Span name_at, char *name, char sep, Ast *value)
{
    Ast *a = ast_new(A_ARG, at);
    a->name_span = name_at;
    a->name = name;
    a->sep = sep;
    a->value = value;
    return a;
}

Ast *ast_push(Ast *a, Ast *kid)
{
    VEC_PUSH(a->kids, a->nkids, a->capkids, kid);
    return a;
}

Stmt *stmt_new(StmtKind kind, Span at, Span name_at, char *name, Ast *expr)
{
    Stmt *s = xalloc(sizeof *s);
    s->kind = kind;
    s->span = at;
    s->name_span = name_at;
    s->name = name;
    s->expr = expr;
    return s;
}

Stmt *stmt_push(Stmt *forward, Stmt *s)
{
    VEC_PUSH(forward->body, forward->nbody, forward->capbody, s);
    return forward;
}

Model *model_new(void) { return xalloc(sizeof(Model)); }

void model_push(Model *m, Stmt *s) { VEC_PUSH(m->items, m->nitems, m->capitems, s); }

const char *ast_kind_name(const Ast *a)
{
    switch (a->kind) {
    case A_INT: return "an integer";
    case A_FLOAT: return "a number";
    case A_STRING: return "a string";
    case A_IDENT: return "a name";
    case A_LIST: return "a list";
    case A_CALL: return "a call";
    case A_ARG: return "an argument";
    }
    return "?";
}

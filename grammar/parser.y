/* parser.y — the grammar of the .nn language.
 *
 *   model NAME {
 *     input x: [1, 32, 32]
 *     conv1 = conv2d(6, kernel=5)
 *     forward { x = relu(conv1(x))  ...  return fc3(x) }
 *     loss mse(target: [10])
 *     optimizer sgd(lr=0.01)
 *   }
 *
 * Thin on purpose: every action is one call to a constructor in ast.c; what a
 * statement means is decided later, in graph.c. The parser is pure, keeps
 * locations, reports "expected X, found Y" (parse.c), and recovers at the end
 * of a line, so one run reports every independent syntax error. A definition
 * whose right side is broken still defines its name (with no expression), so
 * later uses of the name raise no second error; so does a statement lost to
 * an error after its right side (parse_recover_*). A missing `}` is put in by
 * the token reader (parse_lex). Python's habits are read as PyTorch users
 * write them: tuples `(0.9, 0.99)` are lists, a trailing comma is allowed,
 * and an operator (`x + h`) is one error that says what to write. The parser's stack is
 * bounded (YYMAXDEPTH): an expression nested deeper than that is a located
 * error (parse.c's yyerror), and nothing after the parser recurses deeper
 * than it lets an expression nest.
 */
%define api.pure full
%locations
%define parse.error custom
%expect 0
%lex-param {void *scanner}
%parse-param {void *scanner} {ParseCtx *ctx}

%code requires {
#include "nnc.h"
#include "parse.h"
#define YYLTYPE Span
#define YYLTYPE_IS_DECLARED 1
#define YYLTYPE_IS_TRIVIAL 1
}
%code {
#include "lexer.h"
#define YYMAXDEPTH PARSE_MAX_DEPTH
#define yylex parse_lex
void yyerror(Span *loc, void *scanner, ParseCtx *ctx, const char *msg);
static Span join(Span a, Span b) { a.last_line = b.last_line; a.last_column = b.last_column; return a; }
}

%union {
    char *str;
    long long ival;
    double fval;
    Ast *ast;
    Stmt *stmt;
    Model *model;
}

%token MODEL "`model`" INPUT "`input`" FORWARD "`forward`" RETURN "`return`"
%token LOSS "`loss`" OPTIMIZER "`optimizer`" NL "end of line"
%token <str> IDENT "a name" STRING "a string"
%token <ival> INT "an integer"
%token <fval> FLOAT "a number"
%token <ival> OPERATOR "an operator"

%left OPERATOR '-'
%precedence NEG

%type <model> items
%type <stmt> item stmts stmt
%type <ast> expr call args arg list exprs

%%

file:   nls MODEL IDENT '{' items '}' nls   { ctx->model = $5; $5->name = $3; $5->name_span = @3; $5->span = join(@2, @6); }
    |   nls MODEL IDENT '{' items item '}' nls
                                          { model_push($5, $6); ctx->model = $5; $5->name = $3; $5->name_span = @3; $5->span = join(@2, @7); }
    ;
nls:    %empty | nls NL ;

items:  %empty                  { $$ = model_new(); }
    |   items NL                { $$ = $1; }
    |   items item NL           { model_push($1, $2); $$ = $1; }
    |   items error NL          { $$ = parse_recover_item($1, ctx); yyerrok; }
    ;

item:   INPUT IDENT ':' expr            { $$ = stmt_new(S_INPUT, join(@1, @4), @2, $2, $4); }
    |   INPUT IDENT ':' expr call       { $$ = stmt_new(S_INPUT, join(@1, @5), @2, $2, $4); $$->type = $5; }
    |   IDENT '=' expr                  { $$ = stmt_new(S_LAYER, join(@1, @3), @1, $1, $3); }
    |   IDENT '=' error                 { $$ = stmt_new(S_LAYER, @1, @1, $1, NULL); }
    |   FORWARD '{' stmts '}'           { $$ = $3; $$->span = join(@1, @4); }
    |   FORWARD '{' stmts stmt '}'      { $$ = stmt_push($3, $4); $$->span = join(@1, @5); }
    |   LOSS call                       { $$ = stmt_new(S_LOSS, join(@1, @2), @1, NULL, $2); }
    |   OPTIMIZER call                  { $$ = stmt_new(S_OPTIMIZER, join(@1, @2), @1, NULL, $2); }
    |   INPUT error                     { $$ = stmt_new(S_INPUT, @1, @1, NULL, NULL); }
    |   LOSS error                      { $$ = stmt_new(S_LOSS, @1, @1, NULL, NULL); }
    |   OPTIMIZER error                 { $$ = stmt_new(S_OPTIMIZER, @1, @1, NULL, NULL); }
    ;

stmts:  %empty                  { $$ = stmt_new(S_FORWARD, NO_SPAN, NO_SPAN, NULL, NULL); }
    |   stmts NL                { $$ = $1; }
    |   stmts stmt NL           { $$ = stmt_push($1, $2); }
    |   stmts error NL          { $$ = parse_recover_stmt($1, ctx); yyerrok; }
    ;

stmt:   IDENT '=' expr                  { $$ = stmt_new(S_ASSIGN, join(@1, @3), @1, $1, $3); }
    |   IDENT '=' error                 { $$ = stmt_new(S_ASSIGN, @1, @1, $1, NULL); }
    |   RETURN expr                     { $$ = stmt_new(S_RETURN, join(@1, @2), @1, NULL, $2); }
    |   RETURN error                    { $$ = stmt_new(S_RETURN, @1, @1, NULL, NULL); }
    ;

expr:   IDENT                           { $$ = ast_ident(@1, $1); }
    |   INT                             { $$ = ast_int(@1, $1); }
    |   FLOAT                           { $$ = ast_float(@1, $1); }
    |   STRING                          { $$ = ast_string(@1, $1); }
    |   '-' expr %prec NEG              { $$ = ast_neg(join(@1, @2), $2); }
    |   expr OPERATOR expr              { $$ = parse_operator(join(@1, @3), $1, $2, @2, $3); }
    |   expr '-' expr                   { $$ = parse_operator(join(@1, @3), $1, '-', @2, $3); }
    |   list                            { $$ = $1; }
    |   call                            { $$ = $1; }
    ;

call:   IDENT '(' ')'                   { $$ = ast_call(join(@1, @3), @1, $1); }
    |   IDENT '(' args ')'              { $$ = $3; $$->span = join(@1, @4); $$->name = $1; $$->name_span = @1; }
    |   IDENT '(' args ',' ')'          { $$ = $3; $$->span = join(@1, @5); $$->name = $1; $$->name_span = @1; }
    ;

args:   arg                             { $$ = ast_push(ast_call(@1, @1, NULL), $1); }
    |   args ',' arg                    { $$ = ast_push($1, $3); }
    ;

arg:    expr                            { $$ = ast_arg(@1, NO_SPAN, NULL, 0, $1); }
    |   IDENT '=' expr                  { $$ = ast_arg(join(@1, @3), @1, $1, '=', $3); }
    |   IDENT ':' expr                  { $$ = ast_arg(join(@1, @3), @1, $1, ':', $3); }
    ;

list:   '[' ']'                         { $$ = ast_list(join(@1, @2)); }
    |   '[' exprs ']'                   { $$ = $2; $$->span = join(@1, @3); }
    |   '[' exprs ',' ']'               { $$ = $2; $$->span = join(@1, @4); }
    |   '(' exprs ')'                   { $$ = parse_tuple(join(@1, @3), $2, false); }
    |   '(' exprs ',' ')'               { $$ = parse_tuple(join(@1, @4), $2, true); }
    ;

exprs:  expr                            { $$ = ast_push(ast_list(@1), $1); }
    |   exprs ',' expr                  { $$ = ast_push($1, $3); }
    ;

%%

/* "expected `)` or `,`, found end of line" — bison's tables give both sides */
static int yyreport_syntax_error(const yypcontext_t *pc, void *scanner, ParseCtx *ctx)
{
    enum { MAX = 12 };
    yysymbol_kind_t exp[MAX];
    const char *names[MAX];
    int n = yypcontext_expected_tokens(pc, exp, MAX);
    for (int i = 0; i < n; i++)
        names[i] = yysymbol_name(exp[i]);
    yysymbol_kind_t found = yypcontext_token(pc);
    Span *at = yypcontext_location(pc);
    const char *what = found == YYSYMBOL_YYEOF ? "end of file"
                     : found == YYSYMBOL_NL ? "end of line" : xprintf("`%s`", diag_snippet(*at));
    parse_syntax_error(*at, names, n, what, yyget_extra(scanner), ctx);
    return 0;
}

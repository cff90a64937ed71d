/* parse.c — from text to syntax tree: the C half of the lexer and parser.
 *
 * grammar/lexer.l and grammar/parser.y hold the rules; the work their
 * actions need (tracking positions, converting numbers, reporting bad
 * characters and syntax errors) lives here, in plain C. So does the token
 * reader between them (parse_lex), which puts in a `}` where one is
 * missing, and the recovery that keeps a broken statement's name.
 */
#include "nnc.h"
#include "parse.h"
#include "parser.tab.h"
#include "lexer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Advances the position over the token's text; loc gets its span. */
void lex_step(LexState *s, Span *loc, const char *text, int len)
{
    loc->first_line = s->line;
    loc->first_column = s->col;
    for (int i = 0; i < len; i++) {
        if (text[i] == '\n') {
            s->line++;
            s->col = 1;
        } else {
            s->col++;
        }
    }
    loc->last_line = s->line;
    loc->last_column = s->col - 1;
    if (text[0] == '\n') {  /* a newline token points at the end of its line */
        loc->last_line = loc->first_line;
        loc->last_column = loc->first_column;
    }
}

/* Remembers the token (newlines depend on it), the bracket depth, the open
 * braces and the first tokens of the statement being read. */
int lex_tok(LexState *s, int tok, const Span *at)
{
    if (s->prev == NL || s->prev == '{' || s->prev == '}') {    /* a statement starts */
        s->stmt_tok = tok;
        s->stmt_tok2 = 0;
        s->stmt_name = NULL;
    } else if (!s->stmt_tok2) {
        s->stmt_tok2 = tok;
    }
    if (tok == IDENT && !s->stmt_name && (s->stmt_tok == IDENT || s->stmt_tok == INPUT)) {
        s->stmt_name = s->last_ident;
        s->stmt_name_at = *at;
    }
    if (tok == '{') {
        if (s->braces < 8) {
            s->brace_at[s->braces] = *at;
            s->brace_kw[s->braces] = s->prev_at;
            s->brace_name[s->braces] = s->prev == FORWARD ? NULL : s->prev == IDENT ? s->last_ident : "";
        }
        s->braces++;
    } else if (tok == '}' && s->braces > 0) {
        s->braces--;
        if (s->braces < 8 && !s->brace_name[s->braces] && at->first_column < s->brace_kw[s->braces].first_column)
            s->misclosed = *at;
    }
    if (tok == '(' || tok == '[') {
        if (s->depth < 64) {
            s->open[s->depth] = (char)tok;
            s->open_at[s->depth] = *at;
        }
        s->depth++;
    } else if ((tok == ')' || tok == ']') && s->depth > 0) {
        s->depth--;
    }
    s->prev = tok;
    s->prev_at = *at;
    return tok;
}

/* A newline inside brackets right after '(', '[' or ',' continues the line;
 * any other newline ends a statement (and is a syntax error if one was open,
 * which is how a missing ')' is found on the line where it is missing). */
bool lex_newline_ends(LexState *s)
{
    if (s->depth > 0 && (s->prev == '(' || s->prev == '[' || s->prev == ','))
        return false;
    return true;
}

/* A newline right before a closing `)` or `]` (an argument list closed on
 * a line of its own) continues the statement inside brackets. */
bool lex_newline_before_close(LexState *s)
{
    return s->depth > 0 ? false : lex_newline_ends(s);
}

char *lex_text(const char *text, int len) { return xstrndup(text, (size_t)len); }

/* a name: at most MAX_NAME characters (a longer one is reported, and kept) */
char *lex_ident(LexState *s, const char *text, int len, Span *loc)
{
    if (len > MAX_NAME) {
        diag_error(*loc, "this name is %d characters long, more than nnc's limit of %d", len, MAX_NAME);
        diag_help("names become C identifiers and tensor names: keep them short");
    }
    s->last_ident = xstrndup(text, (size_t)len);
    return (char *)s->last_ident;
}

long long lex_int(const char *text, Span *loc)
{
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE || v > (1LL << 40)) {
        diag_error(*loc, "number `%s` is too large", text);
        return 1;
    }
    return v;
}

double lex_float(const char *text, Span *loc)
{
    errno = 0;
    double v = strtod(text, NULL);
    if (errno == ERANGE && v != 0) {
        diag_error(*loc, "number `%s` is out of range", text);
        return 1;
    }
    return v;
}

/* "a\"b" -> a"b: the quotes (double or single) go, backslash escapes keep
 * the next character */
char *lex_string(const char *text, int len)
{
    char *out = xalloc((size_t)len + 1), *o = out;
    for (int i = 1; i < len; i++) {
        if (text[i] == text[0] && i == len - 1)
            break;
        if (text[i] == '\\' && i + 1 < len)
            i++;
        *o++ = text[i];
    }
    return out;
}

void lex_unterminated(Span *loc, char quote)
{
    diag_error(*loc, "unterminated string");
    diag_help("close it with `%c` on the same line", quote);
}

void lex_bad_char(Span *loc, const char *text)
{
    unsigned char c = (unsigned char)text[0];
    if (c >= 0x20 && c < 0x7f)
        diag_error(*loc, "unexpected character `%c`", c);
    else
        diag_error(*loc, "unexpected byte 0x%02x (the file must be plain text)", c);
}

/* bison's own errors; the only one a custom-error parser gets is "memory
 * exhausted": its stack (PARSE_MAX_DEPTH) is full, an expression nests too deeply */
void yyerror(Span *loc, void *scanner, ParseCtx *ctx, const char *msg)
{
    (void)ctx;
    if (strcmp(msg, "memory exhausted") != 0) {
        diag_error(*loc, "%s", msg);
        return;
    }
    const LexState *ls = yyget_extra(scanner);
    if (ls->depth > 0)
        diag_error(*loc, "this expression is nested too deeply: %d brackets are open here", ls->depth);
    else
        diag_error(*loc, "this expression is nested too deeply");
    diag_help("nnc reads expressions nested up to a few hundred levels; name the values in between, "
              "as in `h = relu(x)`");
}

/* bison's names: "\"newline\"" -> newline, "')'" stays `)` */
const char *parse_token_name(const char *name)
{
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '"' && name[n - 1] == '"')
        return xprintf("%.*s", (int)n - 2, name + 1);
    if (n == 3 && name[0] == '\'')
        return xprintf("`%c`", name[1]);
    if (!strcmp(name, "end of file"))
        return name;
    return name;
}

/* "expected `)` or `,`, found end of line", and where the bracket it would
 * close opened. The operators, `-` between values and `(` of a tuple are
 * left out of the list: nnc reads them only to say what to write instead. */
void parse_syntax_error(Span at, const char *const *expected, int nexpected, const char *found, const LexState *ls,
                        ParseCtx *ctx)
{
    bool binary = false, list = false;
    for (int i = 0; i < nexpected; i++) {
        binary |= !strcmp(expected[i], "\"an operator\"");
        list |= !strcmp(expected[i], "'['");
    }
    const char *keep[16];
    int n = 0;
    for (int i = 0; i < nexpected && n < 16; i++)
        if (strcmp(expected[i], "\"an operator\"") && !(binary && !strcmp(expected[i], "'-'")) &&
            !(list && !strcmp(expected[i], "'('")))
            keep[n++] = parse_token_name(expected[i]);
    char buf[256] = "";
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof buf - 40; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", keep[i]);
    if (n)
        diag_error(at, "expected %s, found %s", buf, found);
    else
        diag_error(at, "unexpected %s", found);
    bool wants_close = n && (strstr(buf, "`)`") || strstr(buf, "`]`"));
    if (wants_close && ls->depth > 0 && ls->depth <= 64) {
        Span open = ls->open_at[ls->depth - 1];
        diag_note(NO_SPAN, "to close the `%c` at %d:%d", ls->open[ls->depth - 1], open.first_line,
                  open.first_column);
    } else if (!strcmp(found, "end of line")) {
        diag_note(NO_SPAN, "a statement ends at the end of its line");
    }
    /* the statement it is in, for parse_recover_item and parse_recover_stmt */
    ctx->broken = (Broken){ls->stmt_tok, ls->stmt_tok2, ls->stmt_name, ls->stmt_name_at, at};
}

/* A statement lost to a syntax error after its right side (`y = f(x))`)
 * still defines its name, and a broken `loss`, `optimizer` or `input` still
 * counts as given, with no expression: graph.c keeps them quiet, so the
 * error is not followed by "`y` is not defined" or "model has no loss". */
static Stmt *broken_stmt(ParseCtx *ctx, bool in_forward)
{
    Broken b = ctx->broken;
    ctx->broken = (Broken){0};
    if (b.tok == IDENT && b.tok2 == '=' && b.name)
        return stmt_new(in_forward ? S_ASSIGN : S_LAYER, b.name_at, b.name_at, (char *)b.name, NULL);
    if (in_forward)
        return b.tok == RETURN ? stmt_new(S_RETURN, b.at, b.at, NULL, NULL) : NULL;
    if (b.tok == LOSS || b.tok == OPTIMIZER)
        return stmt_new(b.tok == LOSS ? S_LOSS : S_OPTIMIZER, b.at, b.at, NULL, NULL);
    if (b.tok == INPUT)
        return stmt_new(S_INPUT, b.at, b.name ? b.name_at : b.at, (char *)b.name, NULL);
    return NULL;
}

static bool same_span(Span a, Span b)
{
    return a.first_line == b.first_line && a.first_column == b.first_column;
}

/* items: items error NL */
Model *parse_recover_item(Model *m, ParseCtx *ctx)
{
    Stmt *s = broken_stmt(ctx, false);
    /* an error the parser did not report again (too close to the last one)
     * would find the last statement's snapshot: keep it once */
    if (s && !(m->nitems && same_span(m->items[m->nitems - 1]->name_span, s->name_span) &&
               m->items[m->nitems - 1]->kind == s->kind))
        model_push(m, s);
    return m;
}

/* stmts: stmts error NL */
Stmt *parse_recover_stmt(Stmt *fw, ParseCtx *ctx)
{
    Stmt *s = broken_stmt(ctx, true);
    if (s && !(fw->nbody && same_span(fw->body[fw->nbody - 1]->name_span, s->name_span) &&
               fw->body[fw->nbody - 1]->kind == s->kind))
        stmt_push(fw, s);
    return fw;
}

/* `x + h`: nnc has no operators. Reported once for a chain (a + b + c), as
 * the call it would be: `+` becomes add(a, b), so nothing after it fails for
 * want of the value; any other operator stands for its left operand. */
Ast *parse_operator(Span at, Ast *a, int op, Span op_at, Ast *b)
{
    bool told = (a->kind == A_CALL && a->str) || (b->kind == A_CALL && b->str);
    bool numbers = (a->kind == A_INT || a->kind == A_FLOAT) && (b->kind == A_INT || b->kind == A_FLOAT);
    if (!told) {
        char *sa = diag_snippet(a->span), *sb = diag_snippet(b->span);
        diag_error(op_at, "nnc has no operators: `%s` is not an expression of the language", diag_snippet(at));
        if (numbers)
            diag_help("write the number itself: arguments are constants");
        else if (op == '+')
            diag_help("write `add(%s, %s)`: it adds two values of the same shape", sa, sb);
        else if (op == '@')
            diag_help("a matrix product is a linear layer: declare `fc = linear(N)` and write `fc(%s)`", sa);
        else
            diag_help("there is no `%c` of values yet; the operations are listed in docs/language.md", op);
    }
    if (op != '+' || numbers) {
        if (a->kind != A_CALL) {     /* mark it told, keeping its meaning: a call has no str */
            a = ast_call(at, a->span, "add");
            a->str = "+";
            return a;
        }
        a->str = "+";
        return a;
    }
    Ast *call = ast_call(at, at, "add");
    call->str = "+";    /* reported: a chain says it once */
    ast_push(call, ast_arg(a->span, NO_SPAN, NULL, 0, a));
    ast_push(call, ast_arg(b->span, NO_SPAN, NULL, 0, b));
    return call;
}

/* (0.9, 0.99): Python's tuple is a list; (x) is x */
Ast *parse_tuple(Span at, Ast *list, bool trailing_comma)
{
    if (list->nkids == 1 && !trailing_comma)
        return list->kids[0];
    list->span = at;
    return list;
}

/* ---- the token reader: the lexer's tokens, with a missing `}` put in ---- */

static void push_pending(LexState *s, int tok, Span at)
{
    if (s->npending < 4) {
        s->pending_tok[s->npending] = tok;
        s->pending_at[s->npending++] = at;
    }
}

/* "to close the `{` of `forward` at 4:11" */
static void note_brace(const LexState *s, int i)
{
    Span b = s->brace_at[i];
    if (!s->brace_name[i])
        diag_note(NO_SPAN, "to close the `{` of `forward` at %d:%d", b.first_line, b.first_column);
    else
        diag_note(NO_SPAN, "to close the `{` of model `%s` at %d:%d", s->brace_name[i], b.first_line, b.first_column);
}

/* `loss`, `optimizer` or `input` at the start of a line inside forward: the
 * forward block's `}` is missing. Said once, and put in (with the end of
 * its line), so the rest of the model is read as written. */
static int missing_forward_close(LexState *s, int tok, Span at, const char *word)
{
    diag_error(at, "expected `}` to close the forward block, found `%s`", word);
    note_brace(s, s->braces - 1);
    diag_help("end forward with `}` before this line");
    push_pending(s, NL, at);
    push_pending(s, tok, at);
    return lex_tok(s, '}', &at);
}

/* End of file with braces open: said once, for the innermost, and each
 * closed, so that the parser sees the model whole. */
static int missing_close_at_eof(LexState *s, Span at)
{
    int top = s->braces - 1 < 8 ? s->braces - 1 : 7;
    if (!s->brace_name[top])
        diag_error(at, "expected `}` to close the forward block, found end of file");
    else
        diag_error(at, "expected `}` to close model `%s`, found end of file", s->brace_name[top]);
    note_brace(s, top);
    if (s->brace_name[top] && s->misclosed.first_line)
        diag_note(NO_SPAN, "the `}` at %d:%d closes `forward`; if it was meant for the model, forward's own `}` "
                  "is missing", s->misclosed.first_line, s->misclosed.first_column);
    for (int i = 1; i < s->braces && s->npending < 3; i++)
        push_pending(s, '}', at);
    push_pending(s, 0, at);
    return lex_tok(s, '}', &at);
}

/* What the parser reads (parser.y's yylex): the lexer's tokens, after any
 * it was given in place of a missing `}`. */
int parse_lex(union YYSTYPE *lval, Span *lloc, void *scanner)
{
    LexState *s = yyget_extra(scanner);
    if (s->npending) {
        int tok = s->pending_tok[0];
        *lloc = s->pending_at[0];
        s->npending--;
        memmove(s->pending_tok, s->pending_tok + 1, sizeof(int) * (size_t)s->npending);
        memmove(s->pending_at, s->pending_at + 1, sizeof(Span) * (size_t)s->npending);
        return tok ? lex_tok(s, tok, lloc) : 0;
    }
    bool starts = s->prev == NL || s->prev == '{' || s->prev == '}';
    int tok = s->at_eof ? 0 : yylex(lval, lloc, scanner);
    if (tok == 0) {
        s->at_eof = true;
        Span end = s->prev_at;
        end.first_line = end.last_line;
        end.first_column = end.last_column = end.last_column + 1;
        *lloc = end;
        return s->braces > 0 && s->depth == 0 ? missing_close_at_eof(s, end) : 0;   /* an open `(` is the parser's */
    }
    bool in_forward = s->braces > 0 && s->braces <= 8 && !s->brace_name[s->braces - 1];
    if (starts && in_forward && (tok == LOSS || tok == OPTIMIZER || tok == INPUT))
        return missing_forward_close(s, tok, *lloc, tok == LOSS ? "loss" : tok == OPTIMIZER ? "optimizer" : "input");
    return tok;
}

Model *parse_model(const char *text, size_t len)
{
    LexState ls = {.line = 1, .col = 1, .prev = NL, .prev_at = {1, 0, 1, 0}};
    yyscan_t scanner;
    if (yylex_init_extra(&ls, &scanner)) {
        diag_fatal_plain("cannot start the lexer");
        return NULL;
    }
    YY_BUFFER_STATE buf = yy_scan_bytes(text, (int)len, scanner);
    ParseCtx ctx = {.scanner = scanner};
    yyparse(scanner, &ctx);
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);
    return ctx.model;
}

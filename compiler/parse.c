/* parse.c — from text to syntax tree: the C half of the lexer and parser.
 *
 * grammar/lexer.l and grammar/parser.y hold the rules; the work their
 * actions need (tracking positions, converting numbers, reporting bad
 * characters and syntax errors) lives here, in plain C.
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

/* Remembers the token (newlines depend on it) and the bracket depth. */
int lex_tok(LexState *s, int tok, const Span *at)
{
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

char *lex_text(const char *text, int len) { return xstrndup(text, (size_t)len); }

/* a name: at most MAX_NAME characters (a longer one is reported, and kept) */
char *lex_ident(const char *text, int len, Span *loc)
{
    if (len > MAX_NAME) {
        diag_error(*loc, "this name is %d characters long, more than nnc's limit of %d", len, MAX_NAME);
        diag_help("names become C identifiers and tensor names: keep them short");
    }
    return xstrndup(text, (size_t)len);
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

/* "a\"b" -> a"b: the quotes go, backslash escapes keep the next character */
char *lex_string(const char *text, int len)
{
    char *out = xalloc((size_t)len + 1), *o = out;
    for (int i = 1; i < len; i++) {
        if (text[i] == '"' && i == len - 1)
            break;
        if (text[i] == '\\' && i + 1 < len)
            i++;
        *o++ = text[i];
    }
    return out;
}

void lex_unterminated(Span *loc)
{
    diag_error(*loc, "unterminated string");
    diag_help("close it with `\"` on the same line");
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

/* "expected `)`, found end of line", and where the bracket it would close opened */
void parse_syntax_error(Span at, const char *expected, const char *found, const LexState *ls)
{
    if (expected)
        diag_error(at, "expected %s, found %s", expected, found);
    else
        diag_error(at, "unexpected %s", found);
    bool wants_close = expected && (strstr(expected, "`)`") || strstr(expected, "`]`"));
    if (wants_close && ls->depth > 0 && ls->depth <= 64) {
        Span open = ls->open_at[ls->depth - 1];
        diag_note(NO_SPAN, "to close the `%c` at %d:%d", ls->open[ls->depth - 1], open.first_line,
                  open.first_column);
    } else if (!strcmp(found, "end of line")) {
        diag_note(NO_SPAN, "a statement ends at the end of its line");
    }
}

Model *parse_model(const char *text, size_t len)
{
    LexState ls = {.line = 1, .col = 1, .prev = NL};
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

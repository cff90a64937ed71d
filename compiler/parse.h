/* parse.h — what the lexer and the parser share (not part of nnc.h: only
 * grammar/lexer.l, grammar/parser.y and compiler/parse.c see it). */
#ifndef PARSE_H
#define PARSE_H

#include "nnc.h"

/* The parser's stack (bison's YYMAXDEPTH): each level of `f(` takes two
 * entries, of `[` one, so expressions nest at most about 500 calls deep. A
 * deeper one is an error, and graph.c's recursion over expressions stays
 * well inside the C stack. */
#define PARSE_MAX_DEPTH 1000

typedef struct LexState {
    int line, col;      /* position of the next character, 1-based */
    int prev;           /* the previous token returned, for newline handling */
    Span prev_at;       /* ... and where it was */
    int depth;          /* open ( and [ */
    char open[64];      /* the innermost open brackets, and where they are */
    Span open_at[64];
    /* open braces: `model NAME {` and `forward {`, where each `{` is and the
     * name of what it opens (NULL: forward), for a missing `}` */
    int braces;
    Span brace_at[8];
    Span brace_kw[8];   /* `forward`, or the model's `model` */
    const char *brace_name[8];
    Span misclosed;     /* a `}` left of its `forward` closed it: perhaps forward's own is missing */
    const char *last_ident;     /* the text of the last name read */
    /* the statement being read: its first two tokens and its name, so that a
     * statement lost to a syntax error still defines what it names */
    int stmt_tok, stmt_tok2;
    const char *stmt_name;
    Span stmt_name_at;
    /* tokens the parser gets before reading on: a `}` (and an end of line)
     * put in where one is missing, then the keyword (or end of file) that
     * showed it missing; none of them has a value */
    int npending;
    int pending_tok[4];
    Span pending_at[4];
    bool at_eof;        /* the lexer has returned end of file: do not call it again */
} LexState;

/* The statement a syntax error was found in, kept for the recovery rules */
typedef struct Broken {
    int tok, tok2;      /* its first two tokens (0: none) */
    const char *name;
    Span name_at, at;
} Broken;

typedef struct ParseCtx {
    Model *model;
    void *scanner;
    Broken broken;
} ParseCtx;

void lex_step(LexState *s, Span *loc, const char *text, int len);
int lex_tok(LexState *s, int tok, const Span *at);
bool lex_newline_ends(LexState *s);
bool lex_newline_before_close(LexState *s);
char *lex_text(const char *text, int len);
char *lex_ident(LexState *s, const char *text, int len, Span *loc);
long long lex_int(const char *text, Span *loc);
double lex_float(const char *text, Span *loc);
char *lex_string(const char *text, int len);
void lex_unterminated(Span *loc, char quote);
void lex_bad_char(Span *loc, const char *text);

/* parse.c helpers for parser.y: the token reader between the lexer and the
 * parser (it puts in a missing `}`), the operators nnc does not have, the
 * tuples it reads as lists, and error reporting and recovery */
union YYSTYPE;   /* parser.y's %union */
int parse_lex(union YYSTYPE *lval, Span *lloc, void *scanner);
Ast *parse_operator(Span at, Ast *a, int op, Span op_at, Ast *b);
Ast *parse_tuple(Span at, Ast *list, bool trailing_comma);
const char *parse_token_name(const char *bison_name);
void parse_syntax_error(Span at, const char *const *expected, int nexpected, const char *found, const LexState *ls,
                        ParseCtx *ctx);
Model *parse_recover_item(Model *m, ParseCtx *ctx);
Stmt *parse_recover_stmt(Stmt *forward, ParseCtx *ctx);
#endif

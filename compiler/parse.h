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
    int depth;          /* open ( and [ */
    char open[64];      /* the innermost open brackets, and where they are */
    Span open_at[64];
} LexState;

typedef struct ParseCtx {
    Model *model;
    void *scanner;
} ParseCtx;

void lex_step(LexState *s, Span *loc, const char *text, int len);
int lex_tok(LexState *s, int tok, const Span *at);
bool lex_newline_ends(LexState *s);
char *lex_text(const char *text, int len);
char *lex_ident(const char *text, int len, Span *loc);
long long lex_int(const char *text, Span *loc);
double lex_float(const char *text, Span *loc);
char *lex_string(const char *text, int len);
void lex_unterminated(Span *loc);
void lex_bad_char(Span *loc, const char *text);



/* parse.c helpers for parser.y's error reporting */
const char *parse_token_name(const char *bison_name);
void parse_syntax_error(Span at, const char *expected, const char *found, const LexState *ls);
#endif

/* diag.c — diagnostics: every message nnc prints about the user's model.
 *
 * A diagnostic is `file:line:col: error: message`, then the source line with
 * its number and a caret under the span, then optional `note:` lines (each
 * with its own location when it has one) and a `help:` line. Colour is used
 * when stderr is a terminal and NO_COLOR is unset. Errors are counted; after
 * MAX_ERRORS nnc says "too many errors, stopping" and reports nothing more
 * (the count goes on, so the run still fails), so one run shows several
 * mistakes without flooding the screen. Nothing here exits: a fuzzer runs the
 * whole pipeline in one process, calling diag_reset() between inputs.
 */
#include "nnc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ERRORS 20

const Span NO_SPAN = {0, 0, 0, 0};

static const char *src_path = "<input>";
static const char *src_text = "";
static size_t src_len;
static int nerrors;
static bool stopped;    /* MAX_ERRORS reached: nothing more is printed */
static bool werror;
static int color = -1;
static const char *(*locator)(Span at);

void diag_set_locator(const char *(*where)(Span at)) { locator = where; }

void diag_set_source(const char *path, const char *text, size_t len)
{
    src_path = path;
    src_text = text;
    src_len = len;
}

const char *diag_path(void) { return src_path; }

void diag_reset(void)
{
    src_path = "<input>";
    src_text = "";
    src_len = 0;
    nerrors = 0;
    stopped = false;
    werror = false;
    locator = NULL;
}

int diag_error_count(void) { return nerrors; }

static bool use_color(void)
{
    if (color < 0)
        color = isatty(2) && !getenv("NO_COLOR");
    return color;
}

static const char *paint(const char *code) { return use_color() ? code : ""; }
#define BOLD   paint("\033[1m")
#define RED    paint("\033[1;31m")
#define YELLOW paint("\033[1;33m")
#define CYAN   paint("\033[1;36m")
#define BLUE   paint("\033[1;34m")
#define RESET  paint("\033[0m")

/* the text of line n (1-based) and its length, without the newline */
static const char *source_line(int n, int *len)
{
    const char *p = src_text, *end = src_text + src_len;
    for (int i = 1; i < n && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return NULL;
        p = nl + 1;
    }
    if (p >= end && n > 1)
        return NULL;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (int)((nl ? nl : end) - p);
    return p;
}

char *diag_snippet(Span at)
{
    int len;
    const char *line = source_line(at.first_line, &len);
    if (!line || at.first_column < 1 || at.first_column > len)
        return xstrdup("?");
    int last = at.last_line == at.first_line && at.last_column <= len ? at.last_column : len;
    return xstrndup(line + at.first_column - 1, (size_t)(last - at.first_column + 1));
}

/* "   9 |   fc1 = linear(256, 120)" and the caret line under the span */
static void show_span(Span at)
{
    int len;
    const char *line = source_line(at.first_line, &len);
    if (!line)
        return;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    int first = at.first_column < 1 ? 1 : at.first_column;
    int last = at.last_line > at.first_line ? len : at.last_column;
    if (last < first)
        last = first;
    /* a very long line (minified JSON) is shown from a little before the span, cut with "..." */
    int from = len > 200 && first > 40 ? first - 40 : 1, to = len > from + 199 ? from + 199 : len;
    if (last > to)
        last = to;
    fprintf(stderr, "%s%5d |%s %s", BLUE, at.first_line, RESET, from > 1 ? "..." : "");
    for (int i = from - 1; i < to; i++)   /* tabs become one space, so the caret lines up */
        fputc(line[i] == '\t' ? ' ' : line[i], stderr);
    fprintf(stderr, "%s\n%s      |%s %s", to < len ? "..." : "", BLUE, RESET, from > 1 ? "   " : "");
    for (int i = from; i < first; i++)
        fputc(' ', stderr);
    fprintf(stderr, "%s^", RED);
    for (int i = first; i < last; i++)
        fputc('~', stderr);
    fprintf(stderr, "%s\n", RESET);
}

/* Prints a message, cut short if it is huge: one that quotes a 1 MB name
 * from the input shows its first few hundred bytes. */
#define MAX_MESSAGE 1000
static void print_message(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n <= MAX_MESSAGE) {
        vfprintf(stderr, fmt, ap);
        return;
    }
    char *msg = xalloc((size_t)n + 1);
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    int cut = MAX_MESSAGE / 2;
    while (cut > 0 && ((unsigned char)msg[cut] & 0xc0) == 0x80)   /* not inside a UTF-8 character */
        cut--;
    fprintf(stderr, "%.*s... (%d more bytes)", cut, msg, n - cut);
}

static void report(const char *kind, const char *kcolor, Span at, const char *fmt, va_list ap)
{
    if (at.first_line > 0 && at.first_column == 0)     /* a line of the source, no place in this text (json.c) */
        fprintf(stderr, "%s%s:%d: %s", BOLD, src_path, at.first_line, RESET);
    else if (at.first_line > 0)
        fprintf(stderr, "%s%s:%d:%d: %s", BOLD, src_path, at.first_line, at.first_column, RESET);
    else
        fprintf(stderr, "%s%s: %s", BOLD, src_path, RESET);
    fprintf(stderr, "%s%s:%s %s", kcolor, kind, RESET, BOLD);
    print_message(fmt, ap);
    fprintf(stderr, "%s\n", RESET);
    if (at.first_line > 0 && at.first_column > 0)
        show_span(at);
    const char *where = locator && at.first_line > 0 ? locator(at) : NULL;
    if (where)
        fprintf(stderr, "%snote:%s %s\n", CYAN, RESET, where);
}

void diag_error(Span at, const char *fmt, ...)
{
    if (nerrors >= MAX_ERRORS) {
        if (!stopped)
            fprintf(stderr, "nnc: too many errors, stopping\n");
        stopped = true;
        nerrors++;
        return;
    }
    nerrors++;
    va_list ap;
    va_start(ap, fmt);
    report("error", RED, at, fmt, ap);
    va_end(ap);
}

void diag_set_werror(bool on) { werror = on; }

/* a warning; with -Werror an error, counted as one */
void diag_warning(Span at, const char *fmt, ...)
{
    if (stopped)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (werror) {
        nerrors++;
        char *msg = xprintf("%s [-Werror]", fmt);
        report("error", RED, at, msg, ap);
    } else {
        report("warning", YELLOW, at, fmt, ap);
    }
    va_end(ap);
}

void diag_note(Span at, const char *fmt, ...)
{
    if (stopped)    /* the notes of an error that was not shown */
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%snote:%s ", CYAN, RESET);
    print_message(fmt, ap);
    if (at.first_line > 0 && at.first_column == 0)
        fprintf(stderr, " (at %s:%d)", src_path, at.first_line);
    else if (at.first_line > 0)
        fprintf(stderr, " (at %s:%d:%d)", src_path, at.first_line, at.first_column);
    fputc('\n', stderr);
    va_end(ap);
}

void diag_help(const char *fmt, ...)
{
    if (stopped)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%shelp:%s ", CYAN, RESET);
    print_message(fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void diag_fatal_plain(const char *fmt, ...)
{
    if (stopped) {
        nerrors++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nnc: %serror:%s ", RED, RESET);
    print_message(fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    nerrors++;
}

/* Levenshtein distance, for "did you mean" */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    int row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Do a and b differ only in their digits (conv1d, conv2d; fc2, fc3)? Then
 * one is not a misspelling of the other, but another thing. */
static bool differ_in_digits(const char *a, const char *b)
{
    if (strlen(a) != strlen(b) || !strcmp(a, b))
        return false;
    for (; *a; a++, b++)
        if (*a != *b && !((*a >= '0' && *a <= '9') && (*b >= '0' && *b <= '9')))
            return false;
    return true;
}

/* The closest candidate, if it is close enough to be a misspelling: at most
 * about a third of the word's letters differ, fewer than the shorter word
 * has when it has two or more (`init` is not `in`), and not only a digit. */
const char *diag_closest(const char *word, const char *const *cand, int n)
{
    if (stopped)    /* nobody will see the suggestion */
        return NULL;
    const char *best = NULL;
    int bestd = 99;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(word, cand[i]);
        int shorter = (int)(strlen(word) < strlen(cand[i]) ? strlen(word) : strlen(cand[i]));
        if ((shorter >= 2 && d >= shorter) || differ_in_digits(word, cand[i]))
            d = 99;
        /* a prefix also counts: `maxpool` for `maxpool2d` */
        if (strncmp(word, cand[i], strlen(word)) == 0 && strlen(word) >= 3)
            d = 1;
        if (d < bestd) {
            bestd = d;
            best = cand[i];
        }
    }
    int len = (int)strlen(word);
    return bestd <= (len < 4 ? 1 : len / 3 + 1) ? best : NULL;
}

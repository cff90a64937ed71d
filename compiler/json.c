/* json.c — the JSON front-end: a model written as JSON, read into the very
 * AST that the .nn parser builds, so that graph building, shape inference,
 * diagnostics and code generation are shared (docs/json-format.md).
 *
 *   {"model": "lenet",
 *    "input": {"name": "x", "shape": [1, 32, 32]},
 *    "layers": {"conv1": {"op": "conv2d", "out": 6, "kernel": 5}, ...},
 *    "forward": [{"name": "h1", "op": "conv1", "inputs": ["x"]}, ...],
 *    "output": "h12",
 *    "loss": {"op": "mse", "target": [10]},
 *    "optimizer": {"op": "sgd", "lr": 0.01}}
 *
 * A layer becomes `conv1 = conv2d(out=6, kernel=5)`, a forward node
 * `h1 = conv1(x)`: its inputs are the call's first (positional) arguments and
 * every other key is a named argument, so an operation added to the language
 * needs no change here.
 *
 * cJSON parses the text but keeps no positions. So, in three steps:
 *   1. the text must be UTF-8 (cJSON does not check);
 *   2. cJSON parses it; on failure a small state machine re-reads the text up
 *      to cJSON's error pointer and says what was expected and what was found;
 *   3. a scanner walks the text in document order while we walk cJSON's tree
 *      in the same order, which gives every value and key its span (a JVal).
 * Then the JVal tree is read into statements. While the model is compiled,
 * diag asks json_where() for the JSON path of each error's span.
 */
#include "nnc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- positions: line and column of a byte offset ---- */

typedef struct Text {
    const char *s;
    size_t len;
} Text;

static Text src;

/* the 1-based line and column of byte offset off (columns count bytes, as diag does) */
static void line_col(size_t off, int *line, int *col)
{
    *line = 1, *col = 1;
    for (size_t i = 0; i < off && i < src.len; i++) {
        if (src.s[i] == '\n')
            ++*line, *col = 1;
        else
            ++*col;
    }
}

/* the span of the bytes [off, end), or of the one position off when end <= off */
static Span span_at(size_t off, size_t end)
{
    Span sp;
    line_col(off, &sp.first_line, &sp.first_column);
    line_col(end > off ? end - 1 : off, &sp.last_line, &sp.last_column);
    return sp;
}

/* ---- step 1: UTF-8 ---- */

/* The length of the valid UTF-8 sequence at p, or 0 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static int utf8_len(const unsigned char *p, size_t left)
{
    if (p[0] < 0x80)
        return 1;
    int n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || p[0] > 0xf4 || (size_t)n > left)
        return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

static bool check_utf8(void)
{
    const unsigned char *s = (const unsigned char *)src.s;
    for (size_t i = 0; i < src.len;) {
        int n = utf8_len(s + i, src.len - i);
        if (n == 0) {
            diag_error(span_at(i, i + 1), "invalid UTF-8: byte 0x%02x", s[i]);
            diag_help("JSON text is UTF-8; save the file in that encoding");
            return false;
        }
        i += (size_t)n;
    }
    return true;
}

/* ---- step 2: syntax errors, explained ---- */

/* What the reader expects next, as the state machine below walks the text. */
typedef enum { X_VALUE, X_VALUE_OR_CLOSE, X_KEY, X_KEY_OR_CLOSE, X_COLON, X_COMMA_OR_CLOSE, X_END } Expect;

static bool is_ws(char c) { return (unsigned char)c <= 32; }   /* as cJSON: any control byte */
static bool is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }
static bool in_number(char c) { return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E'; }

static size_t skip_bom(void)
{
    return src.len >= 3 && !memcmp(src.s, "\xef\xbb\xbf", 3) ? 3 : 0;
}

/* The end of the token at off: a word, a number, a string (on one line), or one byte. */
static size_t token_end(size_t off)
{
    size_t e = off;
    char c = src.s[off];
    if (c == '"') {
        for (e = off + 1; e < src.len && src.s[e] != '"' && src.s[e] != '\n'; e++)
            if (src.s[e] == '\\')
                e++;
        return e < src.len && src.s[e] == '"' ? e + 1 : off + 1;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        while (e < src.len && in_number(src.s[e]))
            e++;
    else
        while (e < src.len && is_word(src.s[e]))
            e++;
    return e > off ? e : off + 1;
}

/* "`2`", "`tru`", "`\"b\"`", "end of file", "byte 0xff" */
static char *describe_at(size_t off)
{
    if (off >= src.len)
        return "end of file";
    unsigned char c = (unsigned char)src.s[off];
    if (c < 0x20 || c >= 0x7f)
        return xprintf("byte 0x%02x", c);
    size_t e = token_end(off);
    if (e - off > 32)
        return c == '"' ? "a string" : xprintf("`%.32s...`", src.s + off);
    return xprintf("`%.*s`", (int)(e - off), src.s + off);
}

/* Checks the string whose opening quote is at q; reports and returns false if
 * it is unterminated or holds a bad escape. *end gets the offset after it. */
static bool scan_string(size_t q, size_t *end)
{
    size_t i = q + 1;
    for (;;) {
        if (i >= src.len) {
            diag_error(span_at(q, q + 1), "unterminated string");
            diag_help("close it with `\"`");
            return false;
        }
        char c = src.s[i];
        if (c == '"') {
            *end = i + 1;
            return true;
        }
        if (c != '\\') {
            i++;
            continue;
        }
        char e = i + 1 < src.len ? src.s[i + 1] : 0;
        if (e && strchr("\"\\/bfnrt", e)) {
            i += 2;
            continue;
        }
        size_t hex = 0;
        unsigned code = 0;
        for (; e == 'u' && hex < 4 && i + 2 + hex < src.len; hex++) {
            char h = src.s[i + 2 + hex];
            int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0)
                break;
            code = code * 16 + (unsigned)d;
        }
        if (e != 'u' || hex < 4) {
            diag_error(span_at(i, i + 2), "invalid escape `\\%c` in a string", e ? e : ' ');
            diag_help("the escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX");
            return false;
        }
        bool high = code >= 0xd800 && code <= 0xdbff, low = code >= 0xdc00 && code <= 0xdfff;
        bool paired = high && i + 11 < src.len && src.s[i + 6] == '\\' && src.s[i + 7] == 'u' &&
                      (src.s[i + 8] == 'd' || src.s[i + 8] == 'D') && strchr("cdefCDEF", src.s[i + 9]);
        if (low || (high && !paired)) {
            diag_error(span_at(i, i + 6), "invalid escape `%.6s`: half of a UTF-16 surrogate pair", src.s + i);
            return false;
        }
        i += high ? 12 : 6;
    }
}

static void help_for_word(Expect x, size_t off)
{
    size_t e = token_end(off);
    int n = (int)(e - off);
    const char *w = src.s + off;
    static const char *const literals[] = {"True", "False", "None", "NULL", "Null", "TRUE", "FALSE", "nan", "NaN", "inf", "Infinity"};
    for (int i = 0; i < (int)(sizeof literals / sizeof *literals); i++)
        if ((int)strlen(literals[i]) == n && !strncmp(w, literals[i], (size_t)n)) {
            diag_help("JSON writes `true`, `false` and `null` in lower case, and has no infinity or NaN");
            return;
        }
    if (x == X_KEY || x == X_KEY_OR_CLOSE)
        diag_help("keys are strings, in double quotes: `\"%.*s\"`", n, w);
    else
        diag_help("strings are written in double quotes: `\"%.*s\"`", n, w);
}

/* Re-reads the text up to stop (cJSON's error pointer) and reports the first
 * error: what was expected there and what was found. */
static void explain_syntax_error(size_t stop)
{
    typedef struct Open { char c; size_t at; } Open;
    Open *open = NULL;
    int depth = 0, cap = 0;
    Expect x = X_VALUE;
    size_t i = skip_bom();
    for (;;) {
        while (i < src.len && is_ws(src.s[i]))
            i++;
        if (i >= src.len || (i >= stop && !(src.s[i] == '-' || (src.s[i] >= '0' && src.s[i] <= '9'))))
            break;
        char c = src.s[i];
        char top = depth ? open[depth - 1].c : 0;
        bool value_ok = x == X_VALUE || x == X_VALUE_OR_CLOSE;
        bool key_ok = x == X_KEY || x == X_KEY_OR_CLOSE;
        Expect after_value = depth ? X_COMMA_OR_CLOSE : X_END;
        if (value_ok && (c == '{' || c == '[')) {
            VEC_PUSH(open, depth, cap, ((Open){c, i}));
            x = c == '{' ? X_KEY_OR_CLOSE : X_VALUE_OR_CLOSE;
            i++;
        } else if ((value_ok || key_ok) && c == '"') {
            if (!scan_string(i, &i))
                return;
            x = key_ok ? X_COLON : after_value;
        } else if (value_ok && (c == '-' || (c >= '0' && c <= '9'))) {
            size_t e = token_end(i);
            if (stop < e) {             /* cJSON stopped inside it */
                diag_error(span_at(i, e), "invalid number `%.*s`", (int)(e - i > 40 ? 40 : e - i), src.s + i);
                diag_help("numbers are written as 5, -3, 0.01 or 1e-3");
                return;
            }
            i = e;
            x = after_value;
        } else if (value_ok && (!strncmp(src.s + i, "true", 4) || !strncmp(src.s + i, "null", 4) ||
                                !strncmp(src.s + i, "false", 5)) && !is_word(src.s[i + (c == 'f' ? 5 : 4)])) {
            i += c == 'f' ? 5 : 4;
            x = after_value;
        } else if (x == X_COLON && c == ':') {
            x = X_VALUE, i++;
        } else if (x == X_COMMA_OR_CLOSE && c == ',') {
            x = top == '{' ? X_KEY : X_VALUE, i++;
        } else if ((x == X_COMMA_OR_CLOSE || x == X_VALUE_OR_CLOSE || x == X_KEY_OR_CLOSE) &&
                   c == (top == '{' ? '}' : ']')) {
            depth--, i++;
            x = depth ? X_COMMA_OR_CLOSE : X_END;
        } else {
            break;
        }
    }
    if (i >= src.len)
        i = src.len;
    /* cJSON stopped inside something this walk accepts: nesting or a number */
    if (i >= stop && i < src.len && depth >= CJSON_NESTING_LIMIT && (src.s[i] == '[' || src.s[i] == '{')) {
        diag_error(span_at(i, i + 1), "the JSON is nested too deeply: nnc reads at most %d levels of `[` and `{`",
                   CJSON_NESTING_LIMIT);
        return;
    }
    const char *expected = x == X_VALUE ? "a value"
                         : x == X_VALUE_OR_CLOSE ? "a value or `]`"
                         : x == X_KEY ? "a key in double quotes"
                         : x == X_KEY_OR_CLOSE ? "a key in double quotes or `}`"
                         : x == X_COLON ? "`:`"
                         : x == X_END ? "end of file"
                         : depth && open[depth - 1].c == '{' ? "`,` or `}`" : "`,` or `]`";
    const char *found = describe_at(i);
    if (i >= src.len)           /* end of file: point just after the last thing in it */
        while (i > 0 && is_ws(src.s[i - 1]))
            i--;
    size_t end = i < src.len && !is_ws(src.s[i]) ? token_end(i) : i;
    if (end > i && memchr(src.s + i, '\n', end - i))
        end = i + 1;
    diag_error(span_at(i, end), "expected %s, found %s", expected, found);
    char c = i < src.len && !is_ws(src.s[i]) ? src.s[i] : 0;
    if (!c && depth) {
        Span o = span_at(open[depth - 1].at, open[depth - 1].at + 1);
        diag_note(NO_SPAN, "to close the `%c` at %d:%d", open[depth - 1].c, o.first_line, o.first_column);
    } else if ((x == X_VALUE || x == X_KEY) && (c == ']' || c == '}')) {
        diag_help("JSON allows no comma after the last item");
    } else if (c == '\'') {
        diag_help("JSON strings and keys use double quotes");
    } else if (c == '.' && (x == X_VALUE || x == X_VALUE_OR_CLOSE)) {
        diag_help("write a digit before the point: 0.5");
    } else if (c == '/' || c == '#') {
        diag_help("JSON has no comments");
    } else if (x == X_COMMA_OR_CLOSE && (c == '"' || c == '{' || c == '[' || c == '-' || (c >= '0' && c <= '9'))) {
        diag_help("a `,` is missing before it");
    } else if (x != X_END && x != X_COMMA_OR_CLOSE && x != X_COLON && is_word(c)) {
        help_for_word(x, i);
    } else if (x == X_END) {
        diag_help("a JSON model is one object, `{...}`");
    }
}

/* ---- step 3: every value with its span ---- */

/* A JSON value, located: cJSON's node plus where it is in the text. */
typedef struct JVal JVal;
struct JVal {
    cJSON *v;
    Span span;              /* the value */
    Span key_span;          /* an object's member: its key (with the quotes) */
    Span member_span;       /* an object's member: from its key to the end of its value */
    size_t start, end;      /* the value's bytes: [start, end) */
    JVal *parent;
    const char *key;        /* the key, in an object */
    int index;              /* the index, in an array */
    JVal **kids;            /* members or items, in document order */
    int nkids;
};

typedef struct Scan {
    size_t pos;
    int line, col;
    JVal **all;             /* every JVal, in document order (for json_where) */
    int nall, capall;
} Scan;

static void scan_skip(Scan *s, size_t n)
{
    for (size_t i = 0; i < n && s->pos < src.len; i++, s->pos++) {
        if (src.s[s->pos] == '\n')
            s->line++, s->col = 1;
        else
            s->col++;
    }
}

static void scan_ws(Scan *s)
{
    while (s->pos < src.len && is_ws(src.s[s->pos]))
        scan_skip(s, 1);
}

/* a string's length in bytes, quotes included (the text is valid JSON) */
static size_t string_len(size_t q)
{
    size_t i = q + 1;
    while (i < src.len && src.s[i] != '"')
        i += src.s[i] == '\\' ? 2 : 1;
    return i + 1 - q;
}

static Span scan_token(Scan *s, size_t n)
{
    Span sp = {s->line, s->col, 0, 0};
    scan_skip(s, n > 0 ? n - 1 : 0);
    sp.last_line = s->line, sp.last_column = s->col;
    scan_skip(s, 1);
    return sp;
}

/* Gives item and everything in it a span, reading the text from s->pos in
 * step with cJSON's tree (both are in document order). */
static JVal *mirror(Scan *s, cJSON *item, JVal *parent)
{
    JVal *j = xalloc(sizeof *j);
    j->v = item;
    j->parent = parent;
    j->index = -1;
    VEC_PUSH(s->all, s->nall, s->capall, j);
    scan_ws(s);
    j->start = s->pos;
    Span first = {s->line, s->col, s->line, s->col};
    if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
        scan_skip(s, 1);
        int n = cJSON_GetArraySize(item), k = 0;
        j->kids = xalloc(sizeof(JVal *) * (size_t)(n > 0 ? n : 1));
        for (cJSON *c = item->child; c && k < n; c = c->next, k++) {
            scan_ws(s);
            if (s->pos < src.len && src.s[s->pos] == ',')
                scan_skip(s, 1), scan_ws(s);
            Span key = NO_SPAN;
            if (cJSON_IsObject(item)) {
                key = scan_token(s, string_len(s->pos));
                scan_ws(s);
                scan_skip(s, 1);        /* the colon */
            }
            JVal *kid = mirror(s, c, j);
            kid->key = cJSON_IsObject(item) ? xstrdup(c->string) : NULL;
            kid->index = cJSON_IsObject(item) ? -1 : k;
            kid->key_span = key;
            kid->member_span = key;
            if (key.first_line) {
                kid->member_span.last_line = kid->span.last_line;
                kid->member_span.last_column = kid->span.last_column;
            }
            j->kids[j->nkids++] = kid;
        }
        scan_ws(s);
        j->span = scan_token(s, 1);     /* the closing bracket */
        j->span.first_line = first.first_line;
        j->span.first_column = first.first_column;
    } else if (cJSON_IsString(item)) {
        j->span = scan_token(s, string_len(s->pos));
    } else if (cJSON_IsNumber(item)) {
        size_t e = s->pos;
        while (e < src.len && in_number(src.s[e]))
            e++;
        j->span = scan_token(s, e - s->pos);
    } else {
        j->span = scan_token(s, cJSON_IsFalse(item) ? 5 : 4);
    }
    j->end = s->pos;
    return j;
}

/* ---- JSON paths, for the notes of diagnostics ---- */

static JVal **all_vals;
static int nall_vals;

/* "/layers/fc1/in": RFC 6901, where `~` is written ~0 and `/` ~1 */
static char *json_path(const JVal *j)
{
    if (!j->parent)
        return "";
    char *up = json_path(j->parent);
    if (!j->key)
        return xprintf("%s/%d", up, j->index);
    char *k = xalloc(2 * strlen(j->key) + 1), *o = k;
    for (const char *p = j->key; *p; p++) {
        if (*p == '~' || *p == '/')
            *o++ = '~', *o++ = *p == '~' ? '0' : '1';
        else
            *o++ = *p;
    }
    return xprintf("%s/%s", up, k);
}

static bool span_le(int l1, int c1, int l2, int c2) { return l1 < l2 || (l1 == l2 && c1 <= c2); }

static bool span_contains(Span outer, Span in)
{
    return outer.first_line > 0 && span_le(outer.first_line, outer.first_column, in.first_line, in.first_column) &&
           span_le(in.last_line, in.last_column, outer.last_line, outer.last_column);
}

/* For diag: the JSON path of the innermost value or member holding span at. */
static const char *json_where(Span at)
{
    const JVal *best = NULL;
    if (at.first_column == 0 && at.last_column < 0 && -at.last_column - 1 < nall_vals)     /* relocate() */
        return xprintf("JSON path %s", json_path(all_vals[-at.last_column - 1]));
    for (int i = 0; i < nall_vals; i++) {
        const JVal *j = all_vals[i];
        if (span_contains(j->span, at) || span_contains(j->member_span, at))
            best = j;   /* document order: a later match is nested deeper */
    }
    if (!best || !best->parent)
        return NULL;
    return xprintf("JSON path %s", json_path(best));
}

/* ---- the model: from located JSON to statements ---- */

static const char *type_name(const JVal *j)
{
    const cJSON *v = j->v;
    return cJSON_IsObject(v) ? "an object" : cJSON_IsArray(v) ? "an array" : cJSON_IsString(v) ? "a string"
         : cJSON_IsNumber(v) ? "a number" : cJSON_IsBool(v) ? "a boolean" : "null";
}

static JVal *member(const JVal *obj, const char *key)
{
    for (int i = 0; obj && i < obj->nkids; i++)
        if (obj->kids[i]->key && !strcmp(obj->kids[i]->key, key))   /* arrays have no keys */
            return obj->kids[i];
    return NULL;
}

/* names are those of the .nn language: they become C identifiers */
static bool is_name(const char *s)
{
    if (strlen(s) > MAX_NAME)
        return false;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    while (*++s)
        if (!is_word(*s))
            return false;
    return true;
}

static void bad_name(Span at, const char *name, const char *noun)
{
    if (strlen(name) > MAX_NAME) {
        diag_error(at, "this %s is %zu characters long, more than nnc's limit of %d", noun, strlen(name), MAX_NAME);
        diag_help("names become C identifiers and tensor names: keep them short");
        return;
    }
    diag_error(at, "\"%s\" is not a valid %s", name, noun);
    diag_help("names are letters, digits and `_`, not starting with a digit (they become C identifiers)");
}

/* a string that is a name: the model's, the input's, a node's */
static char *get_name(const JVal *j, const char *noun)
{
    if (!cJSON_IsString(j->v)) {
        diag_error(j->span, "the %s must be a string, found %s", noun, type_name(j));
        return NULL;
    }
    if (!is_name(j->v->valuestring)) {
        bad_name(j->span, j->v->valuestring, noun);
        return NULL;
    }
    return xstrdup(j->v->valuestring);
}

static bool want_object(const JVal *j, const char *what, const char *example)
{
    if (cJSON_IsObject(j->v))
        return true;
    diag_error(j->span, "%s must be an object, found %s", what, type_name(j));
    diag_help("for example `%s`", example);
    return false;
}

/* Reports every key of obj that is not in keys, with "did you mean". */
static bool only_keys(const JVal *obj, const char *const *keys, int nkeys, const char *what)
{
    bool ok = true;
    for (int i = 0; i < obj->nkids; i++) {
        const JVal *k = obj->kids[i];
        bool known = false;
        for (int n = 0; n < nkeys; n++)
            known |= !strcmp(k->key, keys[n]);
        if (known)
            continue;
        diag_error(k->key_span, "%s has no key \"%s\"", what, k->key);
        const char *near = diag_closest(k->key, keys, nkeys);
        if (near) {
            diag_help("did you mean \"%s\"?", near);
        } else {
            char *list = "";
            for (int n = 0; n < nkeys; n++)
                list = xprintf("%s%s\"%s\"", list, n == 0 ? "" : n == nkeys - 1 ? " and " : ", ", keys[n]);
            diag_help("the keys are %s", list);
        }
        ok = false;
    }
    return ok;
}

static int cmp_key(const void *a, const void *b)
{
    const JVal *x = *(JVal *const *)a, *y = *(JVal *const *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->start > y->start) - (x->start < y->start);
}

/* A key given twice in one object is an error (cJSON keeps both). */
static bool check_duplicates(void)
{
    bool ok = true;
    for (int i = 0; i < nall_vals; i++) {
        JVal *o = all_vals[i];
        if (!cJSON_IsObject(o->v) || o->nkids < 2)
            continue;
        JVal **sorted = xalloc(sizeof(JVal *) * (size_t)o->nkids);
        memcpy(sorted, o->kids, sizeof(JVal *) * (size_t)o->nkids);
        qsort(sorted, (size_t)o->nkids, sizeof *sorted, cmp_key);
        for (int k = 1; k < o->nkids; k++)
            if (!strcmp(sorted[k]->key, sorted[k - 1]->key)) {
                diag_error(sorted[k]->key_span, "duplicate key \"%s\"", sorted[k]->key);
                diag_note(sorted[k - 1]->key_span, "it is first given here");
                ok = false;
            }
    }
    return ok;
}

static Ast *to_call(const JVal *obj, const char *const *reserved, int nreserved, const char *what,
                    const char *example);

/* A number keeps the form it is written in: 5 is an integer, 5.0 and 1e3 are not. */
static Ast *to_number(const JVal *j)
{
    char *text = xstrndup(src.s + j->start, j->end - j->start);
    if (strpbrk(text, ".eE")) {
        errno = 0;
        double v = strtod(text, NULL);
        if (errno == ERANGE && v != 0) {
            diag_error(j->span, "number `%s` is out of range", text);
            return NULL;
        }
        return ast_float(j->span, v);
    }
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE || v > (1LL << 40) || v < -(1LL << 40)) {
        diag_error(j->span, "number `%s` is too large", text);
        return NULL;
    }
    return ast_int(j->span, v);
}

/* An argument's value: a number, a string, true/false, a list, or a call
 * written as an object with "op". NULL after reporting an error. */
static Ast *to_value(const JVal *j)
{
    const cJSON *v = j->v;
    if (cJSON_IsNumber(v))
        return to_number(j);
    if (cJSON_IsString(v))
        return ast_string(j->span, xstrdup(v->valuestring));
    if (cJSON_IsBool(v))
        return ast_ident(j->span, cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsArray(v)) {
        Ast *list = ast_list(j->span);
        bool ok = true;
        for (int i = 0; i < j->nkids; i++) {
            Ast *item = to_value(j->kids[i]);
            ok &= item != NULL;
            if (item)
                ast_push(list, item);
        }
        return ok ? list : NULL;
    }
    if (cJSON_IsObject(v))
        return to_call(j, NULL, 0, "an argument object", "\"schedule\": {\"op\": \"cosine\", \"t_max\": 30}");
    diag_error(j->span, "null is not a value here");
    diag_help("leave the key out to get its default");
    return NULL;
}

/* {"op": "conv2d", "out": 6, "kernel": 5}: the call conv2d(out=6, kernel=5).
 * Keys in reserved (and "inferred", which nnc writes and never reads) are the
 * caller's business; every other key becomes a named argument. */
static Ast *to_call(const JVal *obj, const char *const *reserved, int nreserved, const char *what,
                    const char *example)
{
    const JVal *op = member(obj, "op");
    if (!op) {
        diag_error(obj->span, "%s needs an \"op\"", what);
        diag_help("for example `%s`", example);
        return NULL;
    }
    if (!cJSON_IsString(op->v)) {
        diag_error(op->span, "\"op\" must be a string such as \"relu\", found %s", type_name(op));
        return NULL;
    }
    Ast *call = ast_call(obj->span, op->span, xstrdup(op->v->valuestring));
    bool ok = true;
    for (int i = 0; i < obj->nkids; i++) {
        const JVal *k = obj->kids[i];
        bool skip = !strcmp(k->key, "op") || !strcmp(k->key, "inferred");
        for (int r = 0; r < nreserved; r++)
            skip |= !strcmp(k->key, reserved[r]);
        if (skip)
            continue;
        Ast *value = to_value(k);
        if (value)
            ast_push(call, ast_arg(k->member_span, k->key_span, xstrdup(k->key), '=', value));
        ok &= value != NULL;
    }
    return ok ? call : NULL;
}

/* "input": {"name": "x", "shape": [1, 32, 32]}  ->  input x: [1, 32, 32];
 * with "vocab": 96, token ids: input x: [64] tokens(vocab=96) */
static Stmt *read_input(const JVal *in)
{
    static const char *const keys[] = {"name", "shape", "vocab"};
    const char *example = "\"input\": {\"name\": \"x\", \"shape\": [1, 32, 32]}";
    if (!want_object(in, "\"input\"", example) || !only_keys(in, keys, 3, "\"input\""))
        return NULL;
    const JVal *name = member(in, "name"), *shape = member(in, "shape");
    if (!name || !shape) {
        diag_error(in->span, "\"input\" needs a \"%s\"", name ? "shape" : "name");
        diag_help("for example `%s`", example);
        return NULL;
    }
    char *n = get_name(name, "input name");
    Ast *s = to_value(shape);
    const JVal *vocab = member(in, "vocab");
    Ast *v = vocab ? to_value(vocab) : NULL;
    if (!n || !s || (vocab && !v))
        return NULL;
    Stmt *st = stmt_new(S_INPUT, in->member_span, name->span, n, s);
    if (v) {        /* tokens(vocab=...), located at the member */
        st->type = ast_call(vocab->member_span, vocab->key_span, xstrdup("tokens"));
        ast_push(st->type, ast_arg(vocab->member_span, vocab->key_span, xstrdup("vocab"), '=', v));
    }
    return st;
}

/* "conv1": {"op": "conv2d", "out": 6, "kernel": 5}  ->  conv1 = conv2d(out=6, kernel=5) */
static void read_layers(Model *m, const JVal *layers)
{
    if (!want_object(layers, "\"layers\"", "\"layers\": {\"fc1\": {\"op\": \"linear\", \"out\": 10}}"))
        return;
    for (int i = 0; i < layers->nkids; i++) {
        const JVal *l = layers->kids[i];
        Ast *call = NULL;
        if (!is_name(l->key))
            bad_name(l->key_span, l->key, "layer name");
        else if (want_object(l, xprintf("layer `%s`", l->key), "\"conv1\": {\"op\": \"conv2d\", \"out\": 6, \"kernel\": 5}"))
            call = to_call(l, NULL, 0, xprintf("layer `%s`", l->key), "{\"op\": \"conv2d\", \"out\": 6, \"kernel\": 5}");
        /* a broken layer still defines its name, with no call: its uses stay quiet */
        model_push(m, stmt_new(S_LAYER, l->member_span, l->key_span, xstrdup(l->key), call));
    }
}

/* "line": 6, on a node that --emit=json could not write on its source's
 * line (`h = fc2(` on line 6, `fc1(x))` on line 7: fc1 comes first): the
 * node keeps that line, for the summary and the generated C. Its span then
 * names a line of the source but no place in the JSON text (column 0, the
 * JVal's index in last_column), and json_where still finds its JSON path. */
static bool relocate(Ast *call, const JVal *line)
{
    /* the range first: (int) of a number outside it is undefined */
    if (!cJSON_IsNumber(line->v) || !(line->v->valuedouble >= 1 && line->v->valuedouble <= 1e9) ||
        line->v->valuedouble != (double)(int)line->v->valuedouble) {
        diag_error(line->span, "\"line\" must be a positive integer, the node's line in its source, found %s",
                   type_name(line));
        return false;
    }
    int index = 0;
    while (index < nall_vals && all_vals[index] != line->parent)
        index++;
    int l = (int)line->v->valuedouble;
    call->span = (Span){l, 0, l, -(index + 1)};
    return true;
}

/* {"name": "h3", "op": "maxpool2d", "inputs": ["h2"], "kernel": 2}
 *   ->  h3 = maxpool2d(h2, kernel=2): the inputs come first, positionally.
 * A broken node still defines its name (with no call), so that its uses
 * raise no second error; NULL when it has no name at all. */
static Ast *read_node_call(const JVal *n);
static Stmt *read_node(const JVal *n)
{
    const JVal *name = member(n, "name");
    Ast *call = read_node_call(n);
    if (!name || !cJSON_IsString(name->v))
        return NULL;
    if (call && !is_name(name->v->valuestring)) {
        bad_name(name->span, name->v->valuestring, "node name");
        call = NULL;
    }
    return stmt_new(S_ASSIGN, n->span, name->span, xstrdup(name->v->valuestring), call);
}

/* the call of a forward node; NULL after reporting what is wrong with it */
static Ast *read_node_call(const JVal *n)
{
    static const char *const reserved[] = {"name", "inputs", "line"};
    const char *example = "{\"name\": \"h2\", \"op\": \"relu\", \"inputs\": [\"h1\"]}";
    if (!want_object(n, "a forward node", example))
        return NULL;
    const JVal *name = member(n, "name"), *inputs = member(n, "inputs");
    if (!name) {
        diag_error(n->span, "a forward node needs a \"name\"");
        diag_help("for example `%s`", example);
        return NULL;
    }
    if (!cJSON_IsString(name->v)) {
        diag_error(name->span, "the node name must be a string, found %s", type_name(name));
        return NULL;
    }
    for (int i = 0; !inputs && i < n->nkids; i++) {    /* "input": a misspelt "inputs", not an argument */
        static const char *const want[] = {"inputs"};
        const JVal *k = n->kids[i];
        if (strcmp(k->key, "op") && strcmp(k->key, "name") && diag_closest(k->key, want, 1)) {
            diag_error(k->key_span, "a forward node has no key \"%s\"", k->key);
            diag_help("did you mean \"inputs\"? a node's inputs are a list of node names, `\"inputs\": [\"h1\"]`");
            return NULL;
        }
    }
    Ast *call = to_call(n, reserved, 3, "a forward node", example);
    if (!call)
        return NULL;
    const JVal *line = member(n, "line");
    if (line && !relocate(call, line))
        return NULL;
    if (inputs && !cJSON_IsArray(inputs->v)) {
        diag_error(inputs->span, "\"inputs\" must be an array of node names, found %s", type_name(inputs));
        return NULL;
    }
    int nin = inputs ? inputs->nkids : 0;
    Ast **kids = xalloc(sizeof(Ast *) * (size_t)(nin + call->nkids + 1));
    for (int i = 0; i < nin; i++) {
        const JVal *in = inputs->kids[i];
        if (!cJSON_IsString(in->v)) {
            diag_error(in->span, "an input must be the name of a node, as a string, found %s", type_name(in));
            return NULL;
        }
        kids[i] = ast_arg(in->span, NO_SPAN, NULL, 0, ast_ident(in->span, xstrdup(in->v->valuestring)));
    }
    if (call->nkids)
        memcpy(kids + nin, call->kids, sizeof(Ast *) * (size_t)call->nkids);
    call->kids = kids;
    call->nkids += nin;
    call->capkids = call->nkids;
    return call;
}

static Stmt *read_forward(const JVal *fw)
{
    if (!cJSON_IsArray(fw->v)) {
        diag_error(fw->span, "\"forward\" must be an array of nodes, found %s", type_name(fw));
        diag_help("for example `\"forward\": [{\"name\": \"h1\", \"op\": \"fc1\", \"inputs\": [\"x\"]}]`");
        return NULL;
    }
    Stmt *f = stmt_new(S_FORWARD, fw->member_span, fw->key_span, NULL, NULL);
    for (int i = 0; i < fw->nkids; i++) {
        Stmt *s = read_node(fw->kids[i]);
        if (s)
            stmt_push(f, s);
    }
    return f;
}

/* "loss": {"op": "mse", "target": [10]}  ->  loss mse(target=[10]); the same for "optimizer" */
static Stmt *read_call_stmt(const JVal *j, StmtKind kind, const char *example)
{
    if (!want_object(j, xprintf("\"%s\"", j->key), example))
        return NULL;
    Ast *call = to_call(j, NULL, 0, xprintf("\"%s\"", j->key), example);
    return call ? stmt_new(kind, j->member_span, j->key_span, NULL, call) : NULL;
}

/* The top-level object: its members, in document order, become statements.
 * NULL when the model's frame (name, input, forward, output, loss, optimizer)
 * is broken: graph.c would only repeat it. Broken layers and nodes do not
 * stop it, so graph.c still reports independent mistakes in the same run. */
static Model *read_model(const JVal *root)
{
    static const char *const keys[] = {"model", "input", "layers", "forward", "output", "loss", "optimizer", "inferred"};
    if (!cJSON_IsObject(root->v)) {
        diag_error(root->span, "a JSON model is an object, found %s", type_name(root));
        diag_help("it starts `{\"model\": \"NAME\", \"input\": ...`; see docs/json-format.md");
        return NULL;
    }
    Model *m = model_new();
    m->span = root->span;
    const JVal *name = member(root, "model");
    m->name_span = name ? name->span : span_at(root->start, root->start + 1);
    m->name = name ? get_name(name, "model name") : NULL;
    bool ok = m->name != NULL;
    if (!m->name)
        m->name = "model";
    Stmt *forward = NULL;
    for (int i = 0; i < root->nkids; i++) {
        const JVal *j = root->kids[i];
        Stmt *s = NULL;
        bool frame = true;
        if (!strcmp(j->key, "input"))
            s = read_input(j);
        else if (!strcmp(j->key, "layers"))
            read_layers(m, j), frame = false;
        else if (!strcmp(j->key, "forward"))
            s = forward = read_forward(j);
        else if (!strcmp(j->key, "loss"))
            s = read_call_stmt(j, S_LOSS, "\"loss\": {\"op\": \"mse\"}");
        else if (!strcmp(j->key, "optimizer"))
            s = read_call_stmt(j, S_OPTIMIZER, "\"optimizer\": {\"op\": \"sgd\", \"lr\": 0.01}");
        else
            frame = false;
        if (s)
            model_push(m, s);
        ok &= s != NULL || !frame;
    }
    ok &= only_keys(root, keys, 8, "a model");
    const JVal *out = member(root, "output");
    if (out && !cJSON_IsString(out->v))
        diag_error(out->span, "\"output\" must be the name of a node, as a string, found %s", type_name(out)), ok = false;
    else if (out && forward)
        stmt_push(forward, stmt_new(S_RETURN, out->member_span, out->key_span, NULL,
                                    ast_ident(out->span, xstrdup(out->v->valuestring))));
    static const char *const required[][2] = {
        {"model", "\"model\": \"NAME\""},
        {"input", "\"input\": {\"name\": \"x\", \"shape\": [1, 32, 32]}"},
        {"forward", "\"forward\": [{\"name\": \"h1\", \"op\": \"fc1\", \"inputs\": [\"x\"]}, ...]"},
        {"output", "\"output\": \"NAME\", the forward node whose value the loss compares with the target"},
        {"loss", "\"loss\": {\"op\": \"mse\"}"},
        {"optimizer", "\"optimizer\": {\"op\": \"sgd\", \"lr\": 0.01}"},
    };
    for (int i = 0; i < 6; i++)
        if (!member(root, required[i][0])) {
            diag_error(span_at(root->start, root->start + 1), "the model has no \"%s\"", required[i][0]);
            diag_help("add %s", required[i][1]);
            ok = false;
        }
    return ok ? m : NULL;
}

Model *json_parse_model(const char *text, size_t len)
{
    src = (Text){text, len};
    all_vals = NULL;        /* json_where reads them: none from an earlier model */
    nall_vals = 0;
    if (!check_utf8())
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len + 1, &end, true);    /* + 1: the NUL */
    if (!root) {
        explain_syntax_error(end && end >= text ? (size_t)(end - text) : 0);
        return NULL;
    }
    Scan s = {.pos = skip_bom(), .line = 1, .col = (int)skip_bom() + 1};
    JVal *top = mirror(&s, root, NULL);
    all_vals = s.all;
    nall_vals = s.nall;
    diag_set_locator(json_where);
    Model *m = check_duplicates() ? read_model(top) : NULL;
    /* the AST holds copies of every string: cJSON's tree can go */
    for (int i = 0; i < nall_vals; i++)
        all_vals[i]->v = NULL;
    cJSON_Delete(root);
    return m;
}

bool json_detect(const char *path, const char *text)
{
    size_t n = strlen(path);
    if (n >= 5 && !strcmp(path + n - 5, ".json"))
        return true;
    if (n >= 3 && !strcmp(path + n - 3, ".nn"))
        return false;
    if (!strncmp(text, "\xef\xbb\xbf", 3))
        text += 3;
    text += strspn(text, " \t\r\n");
    return *text == '{';
}

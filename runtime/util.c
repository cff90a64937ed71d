/* util.c — small helpers for generated trainers: memory, time, and the
 * command line.
 *
 * Every generated trainer has the same command line (nnrt_args); parsing it
 * here keeps the generated main() short and makes every model's flags
 * behave alike. The parser is strict: a number must be a whole, in-range
 * number ("--batch 12x" is an error, not 12), a flag needs its value, and an
 * unknown flag gets a "did you mean" when one is close. Errors go to stderr
 * as "<prog>: error: ...", followed by "try '<prog> --help'", and exit 2 (the
 * usual status for a usage error); --help prints to stdout and exits 0.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nnrt.h"

/* ---- memory, time, numbers ---- */

/* Zeroed, 64-byte aligned (a cache line; good for vector loads) memory for
 * nfloats floats, freed with free(). Never returns NULL: a trainer cannot go
 * on without its buffers, so it says what it wanted and exits. */
void *nnrt_alloc(size_t nfloats, const char *what)
{
    if (nfloats > (SIZE_MAX - 63) / sizeof(float)) {
        fprintf(stderr, "nnrt: error: out of memory allocating %s (%zu floats, more than "
                "the address space)\n", what, nfloats);
        exit(1);
    }
    size_t bytes = (nfloats * sizeof(float) + 63) / 64 * 64;
    if (bytes == 0)
        bytes = 64;
    void *p = aligned_alloc(64, bytes);
    if (!p) {
        fprintf(stderr, "nnrt: error: out of memory allocating %s (%zu bytes)\n", what,
                nfloats * sizeof(float));
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}

double nnrt_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* max |p[i]|, or NaN if any p[i] is NaN (so a comparison through it fails
 * instead of passing); 0 for n == 0 */
float nnrt_max_abs(const float *p, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(p[i]);
        if (isnan(a))
            return a;
        if (a > m)
            m = a;
    }
    return m;
}

/* ---- the command line ---- */

enum opt_id { OPT_STEPS, OPT_BATCH, OPT_LR, OPT_SEED, OPT_SAVE, OPT_LOAD, OPT_DATA,
              OPT_DUMP, OPT_PRINT_EVERY, OPT_QUIET, OPT_HELP };

/* The flags, in the order --help lists them. */
static const struct opt {
    enum opt_id id;
    const char *name;       /* without the leading "--" */
    const char *arg;        /* the value's name in the usage, NULL for a switch */
    const char *help;
} opts[] = {
    {OPT_STEPS, "steps", "N", "number of training steps"},
    {OPT_BATCH, "batch", "N", "batch size, 1 to 1048576"},
    {OPT_LR, "lr", "X", "learning rate of SGD"},
    {OPT_SEED, "seed", "N", "random seed"},
    {OPT_SAVE, "save", "FILE", "after training, save the weights to FILE (safetensors)"},
    {OPT_LOAD, "load", "FILE", "start from the weights in FILE instead of random ones"},
    {OPT_DATA, "data", "FILE", "train on FILE, safetensors with \"input\" [N,...] and "
                               "\"target\" [N,...]"},
    {OPT_DUMP, "dump", "FILE", "after training, write output, loss, weights and gradients"},
    {OPT_PRINT_EVERY, "print-every", "N", "print the loss every N steps"},
    {OPT_QUIET, "quiet", NULL, "do not print the loss while training"},
    {OPT_HELP, "help", NULL, "show this help and exit"},
};
#define NOPTS (int)(sizeof opts / sizeof opts[0])

/* the program's name for messages: argv[0] without its directory */
static const char *prog_name(int argc, char **argv)
{
    if (argc < 1 || !argv[0] || !argv[0][0])
        return "trainer";
    const char *s = strrchr(argv[0], '/');
    return s && s[1] ? s + 1 : argv[0];
}

/* prints "<prog>: error: <msg>" and the hint, and exits 2 */
_Noreturn static void usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: error: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry '%s --help'\n", prog);
    exit(2);
}

/* Edit distance between a and b (optimal string alignment: insertions,
 * deletions, substitutions and swaps of neighbours each cost 1). Names are
 * short; longer strings are just "far". */
static int edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 32 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= MAXLEN || m >= MAXLEN)
        return MAXLEN;
    int d[MAXLEN + 1][MAXLEN + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* the flag closest to name (given without dashes), or NULL if none is close:
 * within 1 edit of a name of up to 3 letters, within 2 of a longer one */
static const char *closest_flag(const char *name)
{
    const char *best = NULL;
    int bestd = 3;
    for (int i = 0; i < NOPTS; i++) {
        int d = edit_distance(name, opts[i].name);
        int limit = strlen(opts[i].name) <= 3 ? 1 : 2;
        if (d <= limit && d < bestd) {
            best = opts[i].name;
            bestd = d;
        }
    }
    return best;
}

/* a whole decimal number in s, fully consumed and in range of long long:
 * returns 0 and *out, or -1. Only digits after an optional sign (strtoll
 * alone would skip leading spaces and stop quietly at "5x"). */
static int parse_int(const char *s, long long *out)
{
    const char *p = s + (s[0] == '-' || s[0] == '+');
    if (*p < '0' || *p > '9')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

/* *a's field for opt, set from the text val; exits with a message if val is
 * not acceptable */
static void set_option(nnrt_args *a, const struct opt *o, const char *val, const char *prog)
{
    long long v = 0;
    switch (o->id) {
    case OPT_STEPS:
        if (parse_int(val, &v) < 0 || v < 0 || v > LONG_MAX)
            usage_error(prog, "--steps expects a non-negative integer, got '%s'", val);
        a->steps = (long)v;
        break;
    case OPT_BATCH:
        if (parse_int(val, &v) < 0)
            usage_error(prog, "--batch expects a positive integer, got '%s'", val);
        if (v < 1 || v > (1 << 20))
            usage_error(prog, "--batch must be between 1 and %d, got '%s'", 1 << 20, val);
        a->batch = (int)v;
        break;
    case OPT_PRINT_EVERY:
        if (parse_int(val, &v) < 0 || v < 1 || v > LONG_MAX)
            usage_error(prog, "--print-every expects a positive integer, got '%s'", val);
        a->print_every = (long)v;
        break;
    case OPT_LR: {
        /* strtod alone would also take " 1", "inf" and "nan" */
        char *end = NULL;
        double d = 0;
        if (val[0] == '.' || (val[0] >= '0' && val[0] <= '9')) {
            errno = 0;
            d = strtod(val, &end);
        }
        /* and the value must survive the trip to float: not 0, not inf */
        if (!end || *end != '\0' || errno == ERANGE || !(d > 0) || d > FLT_MAX ||
            (float)d == 0)
            usage_error(prog, "--lr expects a positive number, got '%s'", val);
        a->lr = (float)d;
        break;
    }
    case OPT_SEED: {
        /* digits only: strtoull would turn "-1" into 2^64-1 */
        char *end = NULL;
        unsigned long long u = 0;
        if (val[0] >= '0' && val[0] <= '9') {
            errno = 0;
            u = strtoull(val, &end, 10);
        }
        if (!end || *end != '\0' || errno == ERANGE || u > UINT64_MAX)
            usage_error(prog, "--seed expects an integer from 0 to 18446744073709551615, "
                        "got '%s'", val);
        a->seed = (uint64_t)u;
        break;
    }
    case OPT_SAVE: case OPT_LOAD: case OPT_DATA: case OPT_DUMP:
        if (val[0] == '\0')
            usage_error(prog, "--%s expects a file name, got ''", o->name);
        if (o->id == OPT_SAVE) a->save = val;
        if (o->id == OPT_LOAD) a->load = val;
        if (o->id == OPT_DATA) a->data = val;
        if (o->id == OPT_DUMP) a->dump = val;
        break;
    case OPT_QUIET:
        a->quiet = 1;
        break;
    case OPT_HELP:
        break;
    }
}

/* " (default 64)"; nothing for a file flag without a default */
static void print_default(const nnrt_args *a, enum opt_id id)
{
    const char *file = NULL;
    switch (id) {
    case OPT_STEPS: printf(" (default %ld)", a->steps); return;
    case OPT_BATCH: printf(" (default %d)", a->batch); return;
    case OPT_LR: printf(" (default %g)", (double)a->lr); return;
    case OPT_SEED: printf(" (default %" PRIu64 ")", a->seed); return;
    case OPT_PRINT_EVERY: printf(" (default %ld)", a->print_every); return;
    case OPT_SAVE: file = a->save; break;
    case OPT_LOAD: file = a->load; break;
    case OPT_DATA: file = a->data; break;
    case OPT_DUMP: file = a->dump; break;
    case OPT_QUIET: case OPT_HELP: return;
    }
    if (file)
        printf(" (default %s)", file);
}

static void print_help(const nnrt_args *a, const char *prog, const char *prog_doc)
{
    if (prog_doc && prog_doc[0]) {
        size_t n = strlen(prog_doc);
        printf("%s%s\n", prog_doc, prog_doc[n - 1] == '\n' ? "" : "\n");
    }
    printf("usage: %s [options]\n\noptions:\n", prog);
    for (int i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        char flag[64];
        snprintf(flag, sizeof flag, "%s--%s%s%s", o->id == OPT_HELP ? "-h, " : "", o->name,
                 o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-18s %s", flag, o->help);
        print_default(a, o->id);
        printf("\n");
    }
    printf("\nA value may also be joined to its flag: --steps=100.\n");
}

void nnrt_parse_args(nnrt_args *a, int argc, char **argv, const char *prog_doc)
{
    const char *prog = prog_name(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0) {
            print_help(a, prog, prog_doc);
            exit(0);
        }
        if (arg[0] != '-' || arg[1] == '\0')
            usage_error(prog, "unexpected argument '%s' (this program takes only options)",
                        arg);
        /* split "--name=value" */
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = NULL;
        for (int k = 0; k < NOPTS && !o; k++)
            if (arg[1] == '-' && strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0)
                o = &opts[k];
        if (!o) {
            char given[64];
            snprintf(given, sizeof given, "%.*s", (int)(len < 63 ? len : 63), name);
            const char *near = closest_flag(given);
            if (near)
                usage_error(prog, "unknown option '%.*s' (did you mean '--%s'?)",
                            (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg, near);
            usage_error(prog, "unknown option '%.*s'",
                        (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg);
        }
        if (!o->arg) { /* a switch */
            if (eq)
                usage_error(prog, "--%s takes no value, got '%s'", o->name, arg);
            if (o->id == OPT_HELP) {
                print_help(a, prog, prog_doc);
                exit(0);
            }
            set_option(a, o, "", prog);
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            /* the next argument, unless there is none or it is another flag */
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
                usage_error(prog, "--%s expects a value", o->name);
            val = argv[++i];
        }
        set_option(a, o, val, prog);
    }
}

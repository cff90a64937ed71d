/* args.c — the trainer's command line (nnrt_args, nnrt_parse_args).
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

#include "nnrt_host.h"

/* The commands, as bits: which flags each one takes. */
enum { C_NONE = 1, C_TRAIN = 2, C_EVAL = 4, C_PREDICT = 8, C_SAMPLE = 16, C_ALL = 31 };

static const struct command {
    const char *name;
    int bit;
    const char *usage;      /* after the program's name */
    const char *brief;      /* the usage in the overview, a NUL, and what it does */
    const char *doc;        /* what it does, for its --help */
} commands[] = {
    {NULL, C_NONE, "[options]", "[options]\0the tutorial's loop (random data)",
     "the tutorial's loop: random data, or one batch from --data FILE"},
    {"train", C_TRAIN, "train --data SPEC [options]",
     "train --data SPEC [options]\0train, testing after each epoch",
     "train for --epochs, evaluating on the test set after each one"},
    {"eval", C_EVAL, "eval --load FILE --data SPEC [options]",
     "eval --load FILE --data SPEC\0loss, accuracy, confusion matrix",
     "the loss, the accuracy and the confusion matrix of the weights in FILE"},
    {"predict", C_PREDICT, "predict --load FILE [options] IMAGE...",
     "predict --load FILE IMAGE...\0the class and its probability",
     "the class and the probabilities of each image: a PGM file, an IDX file with --index N, "
     "or --data SPEC with --index N"},
    {"sample", C_SAMPLE, "sample --load FILE [options]",
     "sample --load FILE\0text from a model of tokens",
     "text from the model of tokens whose checkpoint is FILE (trained on --data text:FILE): the --prompt, "
     "then --tokens more, drawn one at a time"},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

enum opt_id { OPT_STEPS, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_SEED, OPT_DATA, OPT_TEST_DATA,
              OPT_LIMIT, OPT_TEST_LIMIT, OPT_PAD, OPT_NORMALIZE, OPT_SAVE, OPT_SAVE_EVERY,
              OPT_LOAD, OPT_RESUME, OPT_LOG, OPT_DUMP, OPT_INDEX, OPT_PRINT_EVERY, OPT_QUIET, OPT_NAN_CHECK,
              OPT_DROP_LAST, OPT_EVAL_EVERY, OPT_EVAL_BATCHES, OPT_PROMPT, OPT_TOKENS, OPT_TEMPERATURE,
              OPT_TOP_K, OPT_THREADS, OPT_HELP };

/* The flags, in the order --help lists them. */
static const struct opt {
    enum opt_id id;
    const char *name;       /* without the leading "--" */
    const char *arg;        /* the value's name in the usage, NULL for a switch */
    int cmds;               /* the commands that take it (C_*) */
    const char *help;       /* without a command */
    const char *help_cmd;   /* with one, if it says something else */
} opts[] = {
    {OPT_STEPS, "steps", "N", C_NONE | C_TRAIN, "number of training steps",
     "stop after N steps in all, saving the checkpoint (continue with --resume)"},
    {OPT_EPOCHS, "epochs", "N", C_TRAIN, NULL,
     "passes over the training set (a text has none: give --steps)"},
    {OPT_BATCH, "batch", "N", C_NONE | C_TRAIN | C_EVAL, "batch size, 1 to 1048576",
     "batch size, 1 to 1048576 (an epoch's last batch may be smaller)"},
    {OPT_DROP_LAST, "drop-last", NULL, C_TRAIN, NULL,
     "skip each epoch's last batch when it is smaller (DataLoader's drop_last)"},
    {OPT_LR, "lr", "X", C_NONE | C_TRAIN, "learning rate of SGD", "the learning rate"},
    {OPT_SEED, "seed", "N", C_NONE | C_TRAIN | C_SAMPLE, "random seed",
     "random seed: the initial weights and the order of the samples; sample: the draws"},
    {OPT_DATA, "data", "FILE", C_NONE | C_TRAIN | C_EVAL | C_PREDICT, "train on FILE, safetensors with \"input\" [N,...] and "
                                      "\"target\" [N,...]",
     "the data set: a SPEC, see below"},
    {OPT_TEST_DATA, "test-data", "SPEC", C_TRAIN, NULL,
     "the test set (mnist:DIR has one: its t10k files)"},
    {OPT_LIMIT, "limit", "N", C_TRAIN | C_EVAL, NULL, "use only the first N samples"},
    {OPT_TEST_LIMIT, "test-limit", "N", C_TRAIN, NULL, "use only the first N test samples"},
    {OPT_PAD, "pad", "N", C_TRAIN | C_EVAL | C_PREDICT, NULL,
     "zero-pad images by N pixels on each side (28x28 with --pad 2 is 32x32)"},
    {OPT_NORMALIZE, "normalize", "MEAN,STD", C_TRAIN | C_EVAL | C_PREDICT, NULL,
     "then x = (x - MEAN) / STD (bytes are first scaled to [0, 1])"},
    {OPT_SAVE, "save", "FILE", C_NONE | C_TRAIN, "after training, save the weights to FILE (safetensors)",
     "the checkpoint: weights, optimizer state, progress (after each epoch, at the end, on Ctrl-C)"},
    {OPT_SAVE_EVERY, "save-every", "N", C_TRAIN, NULL, "also save the checkpoint every N steps"},
    {OPT_LOAD, "load", "FILE", C_ALL, "start from the weights in FILE instead of random ones",
     "the weights (a checkpoint, or a PyTorch state_dict saved as safetensors)"},
    {OPT_RESUME, "resume", "FILE", C_TRAIN, NULL,
     "continue the training that saved the checkpoint FILE, exactly where it stopped"},
    {OPT_LOG, "log", "FILE", C_TRAIN, NULL, "write per-step loss and per-epoch metrics as CSV"},
    {OPT_DUMP, "dump", "FILE", C_NONE | C_EVAL, "after training, write output, loss, weights and gradients",
     "write every output and label (safetensors)"},
    {OPT_INDEX, "index", "N", C_PREDICT, NULL, "the sample of an IDX file or of --data to predict"},
    {OPT_PRINT_EVERY, "print-every", "N", C_NONE | C_TRAIN, "print the loss every N steps",
     "also print a line every N steps (a text: print the loss every N steps, default 100)"},
    {OPT_EVAL_EVERY, "eval-every", "N", C_TRAIN, NULL,
     "a text: the validation loss every N steps, and at the end"},
    {OPT_EVAL_BATCHES, "eval-batches", "N", C_TRAIN | C_EVAL, NULL,
     "a text: the validation loss is the mean over N batches of random windows"},
    {OPT_PROMPT, "prompt", "TEXT", C_SAMPLE, NULL,
     "the text to continue (default: a newline if the vocabulary has one)"},
    {OPT_TOKENS, "tokens", "N", C_SAMPLE, NULL, "how many tokens to generate after the prompt"},
    {OPT_TEMPERATURE, "temperature", "X", C_SAMPLE, NULL,
     "divide the logits by X before the softmax (0: always the likeliest)"},
    {OPT_TOP_K, "top-k", "K", C_SAMPLE, NULL, "draw among the K likeliest tokens only (0: among all)"},
    {OPT_QUIET, "quiet", NULL, C_NONE | C_TRAIN | C_EVAL | C_PREDICT, "do not print the loss while training",
     "print less: train nothing but errors, eval only the loss and accuracy"},
    {OPT_NAN_CHECK, "nan-check", NULL, C_NONE | C_TRAIN,
     "check every layer's output at every step; stop at the first NaN or infinity (slower)", NULL},
    {OPT_THREADS, "threads", "N", C_ALL, "threads for the kernels (default: NNRT_THREADS, else one per core)",
     "threads for the kernels (default: NNRT_THREADS, else one per core)"},
    {OPT_HELP, "help", NULL, C_ALL, "show this help and exit", "show this help and exit"},
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

/* the command being parsed, for the hint after an error ("try 'lenet train
 * --help'"); set once by nnrt_parse_args, which runs once per program */
static const char *parsing_command;

/* prints "<prog>: error: <msg>" and the hint, and exits 2 */
_Noreturn static void usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: error: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry '%s%s%s --help'\n", prog, parsing_command ? " " : "",
            parsing_command ? parsing_command : "");
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

/* the name closest to name among names[0..n) (NULLs skipped), or NULL if
 * none is close: within 1 edit of a name of up to 3 letters, within 2 of a
 * longer one */
static const char *closest(const char *name, const char *const *names, int n)
{
    const char *best = NULL;
    int bestd = 3;
    for (int i = 0; i < n; i++) {
        if (!names[i])
            continue;
        int d = edit_distance(name, names[i]);
        int limit = strlen(names[i]) <= 3 ? 1 : 2;
        if (d <= limit && d < bestd) {
            best = names[i];
            bestd = d;
        }
    }
    return best;
}

static const char *closest_flag(const char *name)
{
    const char *names[NOPTS];
    for (int i = 0; i < NOPTS; i++)
        names[i] = opts[i].name;
    return closest(name, names, NOPTS);
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

/* a finite number that fits a float, fully consumed, from s up to stop
 * (stop is ',' or '\0'): returns 0 and *out, or -1 */
static int parse_float(const char *s, char stop, float *out)
{
    const char *p = s + (s[0] == '-' || s[0] == '+');
    if (*p != '.' && (*p < '0' || *p > '9'))
        return -1;  /* strtod alone would also take " 1", "inf" and "nan" */
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*end != stop || errno == ERANGE || !(fabs(d) <= FLT_MAX))
        return -1;
    *out = (float)d;
    return 0;
}

/* a positive long from val, or a usage error naming the flag */
static long positive(const char *val, const struct opt *o, const char *prog)
{
    long long v;
    if (parse_int(val, &v) < 0 || v < 1 || v > LONG_MAX)
        usage_error(prog, "--%s expects a positive integer, got '%s'", o->name, val);
    return (long)v;
}

/* a whole number from lo to hi from val, or a usage error naming the flag */
static long ranged(const char *val, const struct opt *o, long lo, long hi, const char *prog)
{
    long long v;
    if (parse_int(val, &v) < 0 || v < lo || v > hi)
        usage_error(prog, "--%s expects an integer from %ld to %ld, got '%s'", o->name, lo, hi, val);
    return (long)v;
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
        a->batch_given = 1;
        break;
    case OPT_PRINT_EVERY:
        if (parse_int(val, &v) < 0 || v < 1 || v > LONG_MAX)
            usage_error(prog, "--print-every expects a positive integer, got '%s'", val);
        a->print_every = (long)v;
        break;
    case OPT_EPOCHS:
        a->epochs = positive(val, o, prog);
        a->epochs_given = 1;
        break;
    case OPT_EVAL_EVERY: a->eval_every = positive(val, o, prog); break;
    case OPT_EVAL_BATCHES: a->eval_batches = ranged(val, o, 1, 1 << 20, prog); break;
    case OPT_PROMPT: a->prompt = val; break;
    case OPT_TOKENS: a->tokens = ranged(val, o, 0, 1 << 30, prog); break;
    case OPT_TEMPERATURE: {
        float t = 0;
        if (val[0] == '-' || val[0] == '+' || parse_float(val, '\0', &t) < 0)
            usage_error(prog, "--temperature expects a number >= 0 (0: always the likeliest token), got '%s'",
                        val);
        a->temperature = t;
        break;
    }
    case OPT_TOP_K: a->top_k = (int)ranged(val, o, 0, INT_MAX, prog); break;
    case OPT_LIMIT: a->limit = positive(val, o, prog); break;
    case OPT_TEST_LIMIT: a->test_limit = positive(val, o, prog); break;
    case OPT_SAVE_EVERY: a->save_every = positive(val, o, prog); break;
    case OPT_INDEX:
        if (parse_int(val, &v) < 0 || v < 0 || v > LONG_MAX)
            usage_error(prog, "--index expects a non-negative integer, got '%s'", val);
        a->index = (long)v;
        break;
    case OPT_PAD:
        if (parse_int(val, &v) < 0 || v < 0 || v > 4096)
            usage_error(prog, "--pad expects an integer from 0 to 4096, got '%s'", val);
        a->pad = (int)v;
        break;
    case OPT_NORMALIZE: {
        const char *comma = strchr(val, ',');
        float mean, std;
        if (!comma || parse_float(val, ',', &mean) < 0 || parse_float(comma + 1, '\0', &std) < 0 ||
            !(std > 0))
            usage_error(prog, "--normalize expects MEAN,STD (two numbers, STD > 0, as "
                        "0.1307,0.3081), got '%s'", val);
        a->normalize = 1;
        a->mean = mean;
        a->std = std;
        break;
    }
    case OPT_LR: {
        float lr = 0;
        /* and the value must survive the trip to float: not 0, not inf */
        if (val[0] == '-' || val[0] == '+' || parse_float(val, '\0', &lr) < 0 || !(lr > 0))
            usage_error(prog, "--lr expects a positive number, got '%s'", val);
        a->lr = lr;
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
    case OPT_SAVE: case OPT_LOAD: case OPT_DATA: case OPT_DUMP: case OPT_TEST_DATA:
    case OPT_RESUME: case OPT_LOG:
        if (val[0] == '\0')
            usage_error(prog, "--%s expects a file name, got ''", o->name);
        if (o->id == OPT_SAVE) a->save = val;
        if (o->id == OPT_LOAD) a->load = val;
        if (o->id == OPT_DATA) a->data = val;
        if (o->id == OPT_DUMP) a->dump = val;
        if (o->id == OPT_TEST_DATA) a->test_data = val;
        if (o->id == OPT_RESUME) a->resume = val;
        if (o->id == OPT_LOG) a->log = val;
        break;
    case OPT_QUIET:
        a->quiet = 1;
        break;
    case OPT_DROP_LAST:
        a->drop_last = 1;
        break;
    case OPT_NAN_CHECK:
        a->nan_check = 1;
        break;
    case OPT_THREADS:
        if (parse_int(val, &v) < 0 || v < 1 || v > 256)
            usage_error(prog, "--threads expects an integer from 1 to 256, got '%s'", val);
        a->threads = (int)v;
        break;
    case OPT_HELP:
        break;
    }
}

/* " (default 64)"; nothing for a flag without a default */
static void print_default(const nnrt_args *a, enum opt_id id)
{
    const char *file = NULL;
    switch (id) {
    case OPT_STEPS:
        if (a->steps >= 0)
            printf(" (default %ld)", a->steps);
        return;
    case OPT_EPOCHS: printf(" (default %ld)", a->epochs); return;
    case OPT_EVAL_EVERY: printf(" (default %ld)", a->eval_every); return;
    case OPT_EVAL_BATCHES: printf(" (default %ld)", a->eval_batches); return;
    case OPT_TOKENS: printf(" (default %ld)", a->tokens); return;
    case OPT_TEMPERATURE: printf(" (default %g)", (double)a->temperature); return;
    case OPT_TOP_K: printf(" (default %d)", a->top_k); return;
    case OPT_BATCH: printf(" (default %d)", a->batch); return;
    case OPT_LR: printf(" (default %g)", (double)a->lr); return;
    case OPT_SEED: printf(" (default %" PRIu64 ")", a->seed); return;
    case OPT_PRINT_EVERY:
        if (a->print_every > 0)
            printf(" (default %ld)", a->print_every);
        return;
    case OPT_PAD:
        if (a->pad >= 0)
            printf(" (default %d)", a->pad);
        else if (a->command && strcmp(a->command, "train") != 0)
            printf(" (default: as the checkpoint was trained)");
        return;
    case OPT_NORMALIZE:
        if (a->normalize)
            printf(" (default %g,%g)", (double)a->mean, (double)a->std);
        else if (a->command && strcmp(a->command, "train") != 0)
            printf(" (default: as the checkpoint was trained)");
        return;
    case OPT_SAVE: file = a->save; break;
    case OPT_LOAD: file = a->load; break;
    case OPT_DATA: file = a->data; break;
    case OPT_DUMP: file = a->dump; break;
    default: return;
    }
    if (file)
        printf(" (default %s)", file);
}

static void print_help(const nnrt_args *a, const char *prog, const char *prog_doc,
                       const struct command *cmd)
{
    if (prog_doc && prog_doc[0]) {
        size_t n = strlen(prog_doc);
        printf("%s%s\n", prog_doc, prog_doc[n - 1] == '\n' ? "" : "\n");
    }
    if (cmd->bit == C_NONE) {
        for (int i = 0; i < NCOMMANDS; i++)
            printf("%s %s %-28s  %s\n", i ? "      " : "usage:", prog, commands[i].brief,
                   commands[i].brief + strlen(commands[i].brief) + 1);
        printf("       %s %-28s  the command's options\n", prog, "COMMAND --help");
    } else {
        printf("usage: %s %s\n\n%c%s.\n", prog, cmd->usage, cmd->doc[0] - 'a' + 'A', cmd->doc + 1);
    }
    printf("\noptions:\n");
    for (int i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        if (!(o->cmds & cmd->bit))
            continue;
        char flag[64];
        snprintf(flag, sizeof flag, "%s--%s%s%s", o->id == OPT_HELP ? "-h, " : "", o->name,
                 o->arg ? " " : "", o->arg ? (cmd->bit != C_NONE && o->id == OPT_DATA ? "SPEC" : o->arg) : "");
        printf("  %-20s %s", flag, cmd->bit == C_NONE || !o->help_cmd ? o->help : o->help_cmd);
        print_default(a, o->id);
        printf("\n");
    }
    if (cmd->bit & (C_TRAIN | C_EVAL | C_PREDICT))
        printf("\ndata (SPEC):\n"
               "  mnist:DIR            MNIST's IDX files in DIR (plain or .gz): train-images-idx3-ubyte,\n"
               "                       train-labels-idx1-ubyte, and the test set t10k-*\n"
               "  idx:IMAGES,LABELS    an IDX file of images [N, H, W] and one of labels [N]\n"
               "  csv:FILE             one sample a row: the features, then the label (or the targets)\n"
               "  text:FILE            the bytes of a text, for a model of tokens: the first 90%% train,\n"
               "                       the last 10%% validate\n"
               "  FILE                 safetensors (\"input\" [N, ...], \"target\" [N] or [N, ...]),\n"
               "                       CSV if named .csv, IDX or PGM images (for predict)\n");
    printf("\nA value may also be joined to its flag: --steps=100; -- ends the options.\n");
}

/* "train", "eval and predict": the commands that take o */
static void commands_of(char *buf, size_t len, const struct opt *o)
{
    size_t k = 0;
    int n = 0, total = 0;
    for (int i = 1; i < NCOMMANDS; i++)
        total += (o->cmds & commands[i].bit) != 0;
    buf[0] = '\0';
    for (int i = 1; i < NCOMMANDS && k < len; i++)
        if (o->cmds & commands[i].bit) {
            n++;
            k += (size_t)snprintf(buf + k, len - k, "%s%s", n == 1 ? "" : n == total ? " and " : ", ",
                                  commands[i].name);
        }
}

void nnrt_parse_args(nnrt_args *a, int argc, char **argv, const char *prog_doc)
{
    const char *prog = prog_name(argc, argv);
    const struct command *cmd = &commands[0];
    int i = 1;
    parsing_command = NULL;
    if (argc > 1 && argv[1][0] != '-') { /* a command */
        for (int k = 1; k < NCOMMANDS; k++)
            if (strcmp(argv[1], commands[k].name) == 0)
                cmd = &commands[k];
        if (cmd == &commands[0]) {
            const char *names[NCOMMANDS];
            for (int k = 0; k < NCOMMANDS; k++)
                names[k] = commands[k].name;
            const char *near = closest(argv[1], names, NCOMMANDS);
            if (near)
                usage_error(prog, "unknown command '%s' (did you mean '%s'?)", argv[1], near);
            usage_error(prog, "unknown command '%s' (the commands are train, eval and predict, and "
                        "sample for a model of tokens; "
                        "without one, %s runs the tutorial's loop)", argv[1], prog);
        }
        a->command = parsing_command = cmd->name;
        if (cmd->bit & (C_TRAIN | C_EVAL))
            a->batch = 64;
        a->epochs = 1;
        a->steps = -1;
        a->print_every = 0;
        a->pad = -1;
        a->index = -1;
        a->std = 1;
        a->eval_every = 250;
        a->eval_batches = 20;
        a->tokens = 500;
        a->temperature = 0.8f;
        a->top_k = 200;
        i = 2;
    }
    int nin = 0, only_files = 0;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (only_files || arg[0] != '-' || arg[1] == '\0') { /* not a flag */
            if (cmd->bit == C_PREDICT) {
                argv[1 + nin++] = argv[i]; /* (1 + nin <= i: nothing unread is overwritten) */
                continue;
            }
            for (int k = 1; k < NCOMMANDS; k++)
                if (strcmp(arg, commands[k].name) == 0)
                    usage_error(prog, "unexpected argument '%s' (a command goes first: %s %s ...)",
                                arg, prog, arg);
            usage_error(prog, "unexpected argument '%s' (%s takes only options)", arg,
                        cmd->bit == C_NONE ? "this program" : cmd->name);
        }
        if (strcmp(arg, "-h") == 0) {
            print_help(a, prog, prog_doc, cmd);
            exit(0);
        }
        if (strcmp(arg, "--") == 0) {
            only_files = 1;
            continue;
        }
        /* split "--name=value" */
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int shown = (int)(eq ? (size_t)(eq - arg) : strlen(arg));
        const struct opt *o = NULL;
        for (int k = 0; k < NOPTS && !o; k++)
            if (arg[1] == '-' && strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0)
                o = &opts[k];
        if (!o) {
            char given[64];
            snprintf(given, sizeof given, "%.*s", (int)(len < 63 ? len : 63), name);
            const char *near = closest_flag(given);
            if (near)
                usage_error(prog, "unknown option '%.*s' (did you mean '--%s'?)", shown, arg, near);
            usage_error(prog, "unknown option '%.*s'", shown, arg);
        }
        if (!(o->cmds & cmd->bit)) {
            char which[64];
            commands_of(which, sizeof which, o);
            const char *first = NULL;
            for (int k = NCOMMANDS - 1; k > 0; k--)
                if (o->cmds & commands[k].bit)
                    first = commands[k].name;
            if (cmd->bit == C_NONE)
                usage_error(prog, "--%s goes with the command%s %s (%s %s --%s ...)", o->name,
                            strchr(which, ' ') ? "s" : "", which, prog, first ? first : "", o->name);
            usage_error(prog, "--%s is not an option of %s (it is one of %s%s)", o->name, cmd->name,
                        which, o->cmds & C_NONE ? (which[0] ? ", and of the tutorial's loop" :
                                                   "the tutorial's loop, without a command") : "");
        }
        if (!o->arg) { /* a switch */
            if (eq)
                usage_error(prog, "--%s takes no value, got '%s'", o->name, arg);
            if (o->id == OPT_HELP) {
                print_help(a, prog, prog_doc, cmd);
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
    if (cmd->bit == C_PREDICT) {
        a->inputs = argv + 1;
        a->ninputs = nin;
    }
}

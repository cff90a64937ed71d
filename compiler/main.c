/* main.c — the nnc command: reads as the pipeline.
 *
 *   nnc models/lenet.nn -o lenet.c     read, parse, build the graph, infer
 *                                      shapes, emit C
 *   nnc models/lenet.nn -o lenet       the same, then compile it with $CC
 *   nnc --summary models/lenet.nn      print the model summary table
 *   nnc --emit=json|dot models/lenet.json   the checked graph for other programs
 *
 * A .json file (or one that starts with `{`) goes to the JSON front-end
 * (json.c), anything else to the .nn parser; both build the same AST.
 *
 * Nothing is written unless the model is free of errors; every error is a
 * located message and exit status 1. Usage errors exit 2.
 */
#include "nnc.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NNC_RUNTIME_DIR
#define NNC_RUNTIME_DIR "/usr/local/include"
#endif
#ifndef NNC_LIB_DIR
#define NNC_LIB_DIR "/usr/local/lib"
#endif

static const char usage[] =
    "usage: nnc [options] MODEL.nn|MODEL.json\n"
    "Compiles a model description into one C file that trains it.\n"
    "\n"
    "  -o FILE       write FILE: if it ends in .c, the C source; otherwise the\n"
    "                trainer executable, compiled with $CC (default cc)\n"
    "  --summary     print the model's layers, shapes, parameters and memory\n"
    "  --explain-shapes\n"
    "                print every value's shape and the arithmetic behind it\n"
    "  -Werror       treat warnings as errors\n"
    "  --emit=FORM   what to write: c (the default), json (the checked graph,\n"
    "                which nnc reads back) or dot (the graph for Graphviz)\n"
    "  --backward    with --emit=dot: draw the gradient graph too\n"
    "  --version     print nnc's version\n"
    "  -h, --help    print this help\n"
    "\n"
    "Without -o, --summary or --explain-shapes the C source goes to standard output.\n";

static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "nnc: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\ntry 'nnc --help'\n");
    exit(2);
}

/* The whole file, NUL-terminated; NULL after reporting why not. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_fatal_plain("cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        diag_fatal_plain("cannot read '%s': it is a directory", path);
        fclose(f);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            diag_fatal_plain("'%s' is too large to read", path);
            return NULL;
        }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        cap *= 2;
        char *nb = cap <= (64u << 20) ? realloc(buf, cap) : NULL;
        if (!nb)
            free(buf);
        buf = nb;
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        diag_fatal_plain("cannot read '%s': %s", path, strerror(errno));
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        diag_fatal_plain("'%s' is not a text file (it contains NUL bytes)", path);
        free(buf);
        return NULL;
    }
    char *text = xstrndup(buf, n);
    free(buf);
    *len = n;
    return text;
}

/* Parse, build the graph, infer shapes: NULL if anything was wrong. */
static Graph *compile(const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    if (!text)
        return NULL;
    diag_set_source(path, text, len);
    if (strspn(text, " \t\r\n") == len) {
        diag_fatal_plain("'%s' is empty", path);
        fprintf(stderr, json_detect(path, text) ? "help: a JSON model is an object, `{\"model\": \"NAME\", ...}`; "
                "see models/lenet.json\n" : "help: a model starts with `model NAME {`; see models/lenet.nn\n");
        return NULL;
    }
    bool json = json_detect(path, text);
    Model *m = json ? json_parse_model(text, len) : parse_model(text, len);
    if (!m) {
        if (diag_error_count() == 0) {
            Span end = {1, 1, 1, 1};
            diag_error(end, "'%s' holds no model", path);
            diag_help("a model starts with `model NAME {`");
        }
        return NULL;
    }
    /* after syntax errors, still look at what parsed (graph_compile) */
    return graph_compile(m);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Where the runtime's headers (nnrt.h; nnrt_host.h beside it, or in host/
 * in the build tree) and libraries (libnnrt.a, libnnrt-host.a) are: next to
 * this executable (build tree, or an installed prefix), else where the
 * build said. */
static void find_runtime(char **incdir, char **libdir)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *dir = dirname(exe);
        const char *tries[][2] = {{"%s/../runtime", "%s"}, {"%s/../include", "%s/../lib"}};
        for (int i = 0; i < 2; i++) {
            char *inc = xprintf(tries[i][0], dir), *lib = xprintf(tries[i][1], dir);
            if (access(xprintf("%s/nnrt.h", inc), R_OK) == 0 && access(xprintf("%s/libnnrt.a", lib), R_OK) == 0 &&
                access(xprintf("%s/libnnrt-host.a", lib), R_OK) == 0) {
                *incdir = inc;
                *libdir = lib;
                return;
            }
        }
    }
    *incdir = NNC_RUNTIME_DIR;
    *libdir = NNC_LIB_DIR;
}

/* Runs $CC on the C file to make the executable out. */
static int run_cc(const char *cfile, const char *out)
{
    char *inc, *lib;
    find_runtime(&inc, &lib);
    const char *cc = getenv("CC");
    char *ccw = xstrdup(cc && *cc ? cc : "cc");
    char *argv[64];
    int argc = 0;
    for (char *tok = strtok(ccw, " \t"); tok && argc < 48; tok = strtok(NULL, " \t"))
        argv[argc++] = tok;
    argv[argc++] = "-O2";
    argv[argc++] = (char *)cfile;
    argv[argc++] = xprintf("-I%s", inc);
    if (access(xprintf("%s/host/nnrt_host.h", inc), R_OK) == 0)
        argv[argc++] = xprintf("-I%s/host", inc);      /* the build tree's layout */
    argv[argc++] = xprintf("%s/libnnrt-host.a", lib);
    argv[argc++] = xprintf("%s/libnnrt.a", lib);
    argv[argc++] = "-lcjson";
    argv[argc++] = "-lz";
    argv[argc++] = "-lm";
    argv[argc++] = "-lpthread";
    argv[argc++] = "-o";
    argv[argc++] = (char *)out;
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        diag_fatal_plain("cannot run %s: %s", argv[0], strerror(errno));
        return 1;
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "nnc: error: cannot run the C compiler '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 127)
            diag_fatal_plain("the C compiler '%s' failed on the generated code (kept in %s)", argv[0], cfile);
        return 1;
    }
    return 0;
}

static const char *emit_form = "c";     /* --emit */
static bool emit_backward;              /* --backward */

static int write_c(const Graph *g, const char *src, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f) {
        diag_fatal_plain("cannot write '%s': %s", path, strerror(errno));
        return 1;
    }
    bool ok = true;
    if (!strcmp(emit_form, "json"))
        ok = export_json(f, g);
    else if (!strcmp(emit_form, "dot"))
        export_dot(f, g, emit_backward);
    else
        emit_c(f, g, src);
    if (!ok) {
        if (f != stdout)
            fclose(f), remove(path);
        return 1;
    }
    if (f == stdout ? fflush(f) != 0 : fclose(f) != 0) {
        diag_fatal_plain("cannot write '%s': %s", path, strerror(errno));
        return 1;
    }
    return 0;
}

static int run(int argc, char **argv)
{
    const char *input = NULL, *output = NULL;
    bool summary = false, explain = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("nnc %s\n", NNC_VERSION);
            return 0;
        } else if (!strcmp(a, "--summary")) {
            summary = true;
        } else if (!strcmp(a, "--explain-shapes")) {
            explain = true;
        } else if (!strcmp(a, "-Werror")) {
            diag_set_werror(true);
        } else if (!strncmp(a, "--emit=", 7)) {
            emit_form = a + 7;
            if (strcmp(emit_form, "c") && strcmp(emit_form, "json") && strcmp(emit_form, "dot"))
                usage_error("--emit takes c, json or dot, not '%s'", emit_form);
        } else if (!strcmp(a, "--backward")) {
            emit_backward = true;
        } else if (!strcmp(a, "-o")) {
            if (++i == argc)
                usage_error("-o needs a file name%s", "");
            output = argv[i];
        } else if (a[0] == '-' && a[1]) {
            static const char *const options[] = {"--summary", "--explain-shapes", "-Werror", "--emit=", "--backward",
                                                  "--version", "--help", "-o"};
            const char *near = diag_closest(a, options, (int)(sizeof options / sizeof *options));
            if (!near && !strncmp(a, "--emit", 6))
                near = "--emit=";
            if (near)
                usage_error(xprintf("unknown option '%%s' (did you mean '%s'?)", near), a);
            usage_error("unknown option '%s'", a);
        } else if (input) {
            usage_error("one model at a time; '%s' is a second one", a);
        } else {
            input = a;
        }
    }
    if (!input)
        usage_error("no model file given%s", "");
    if (emit_backward && strcmp(emit_form, "dot"))
        usage_error("--backward draws the gradient graph: use it with --emit=dot%s", "");
    Graph *g = compile(input);
    if (!g)
        return 1;
    if (summary)
        summary_print(stdout, g, "");
    if (explain)
        explain_shapes(stdout, g);
    if (!output)
        return (summary || explain) && !strcmp(emit_form, "c") ? 0 : write_c(g, input, "-");
    if (ends_with(output, ".c") || !strcmp(output, "-") || strcmp(emit_form, "c"))
        return write_c(g, input, output);
    char *cfile = xprintf("%s.nnc.c", output);
    if (write_c(g, input, cfile))
        return 1;
    int rc = run_cc(cfile, output);
    if (rc == 0)
        remove(cfile);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = run(argc, argv);
    arena_free_all();
    return rc;
}

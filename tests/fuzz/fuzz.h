/* fuzz.h — what the two libFuzzer harnesses (fuzz_nn.c, fuzz_json.c) share:
 * the pipeline of compiler/main.c's compile(), run on one input in memory.
 *
 *   text --front-end--> AST --graph_build--> --shape_infer--> --plan_memory-->
 *        emit_c, --summary, --explain-shapes, --emit=json and --emit=dot, each
 *        into a memory FILE; then the exported JSON is read back, and must be
 *        the same model: no errors, and the same JSON again (a round trip)
 *
 * The compiler keeps global state (diag.c's source and error count, json.c's
 * locator, the arena), so each input starts with diag_reset() and ends with
 * arena_free_all(); nothing in the pipeline exits. Diagnostics go to
 * /dev/null (the sanitizers and libFuzzer write to the real standard error);
 * NNC_FUZZ_VERBOSE=1 shows them, for reproducing a finding:
 *     NNC_FUZZ_VERBOSE=1 build/fuzz/fuzz_nn crash-1234abcd
 * A broken property (a round trip that fails) aborts, so libFuzzer keeps the
 * input. Build and run with `make fuzz` (see the Makefile).
 */
#include "nnc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static FILE *real_stderr;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    real_stderr = stderr;
    const char *v = getenv("NNC_FUZZ_VERBOSE");
    if (!(v && *v && strcmp(v, "0"))) {
        FILE *null = fopen("/dev/null", "w");
        if (null)
            stderr = null;      /* diag.c prints to stderr: silence it, not fd 2 */
    }
    return 0;
}

/* A broken property: say which on the real stderr, and abort for libFuzzer. */
static void fuzz_fail(const char *what, const char *text)
{
    fprintf(real_stderr, "\nnnc fuzz: %s\n---- the text ----\n%s\n----\n", what, text);
    abort();
}

/* Everything nnc writes from a checked graph, into a memory buffer (freed);
 * returns the --emit=json text (in the arena), or NULL if export refused. */
static char *fuzz_emit_all(const Graph *g, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    emit_c(f, g, path);
    summary_print(f, g, " * ");
    explain_shapes(f, g);
    export_dot(f, g, false);
    export_dot(f, g, true);
    fclose(f);
    free(buf);
    f = open_memstream(&buf, &len);
    if (!f)
        abort();
    bool ok = export_json(f, g);
    fclose(f);
    char *json = ok ? xstrndup(buf, len) : NULL;
    free(buf);
    return json;
}

/* compile(): parse, build, infer, plan; NULL if any error was reported */
static Graph *fuzz_compile(const char *path, const char *text, size_t len, bool json)
{
    diag_set_source(path, text, len);
    Model *m = json ? json_parse_model(text, len) : parse_model(text, len);
    if (!m)
        return NULL;
    return graph_compile(m);        /* also after syntax errors, as main.c does */
}

static int fuzz_one(const uint8_t *data, size_t size, bool json)
{
    /* main.c's read_file refuses NUL bytes, and an empty file, before parsing */
    if (memchr(data, 0, size))
        return 0;
    diag_reset();
    char *text = xstrndup((const char *)data, size);
    if (strspn(text, " \t\r\n") != size) {
        Graph *g = fuzz_compile(json ? "fuzz.json" : "fuzz.nn", text, size, json);
        char *exported = g ? fuzz_emit_all(g, json ? "fuzz.json" : "fuzz.nn") : NULL;
        if (exported) {     /* the round trip: its JSON reads back, and gives the same JSON */
            diag_reset();
            Graph *again = fuzz_compile("exported.json", exported, strlen(exported), true);
            if (!again)
                fuzz_fail("the exported JSON does not compile", exported);
            char *twice = fuzz_emit_all(again, "exported.json");
            if (!twice || strcmp(exported, twice))
                fuzz_fail("the JSON of the exported JSON differs", exported);
        }
    }
    arena_free_all();
    return 0;
}

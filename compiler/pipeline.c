/* pipeline.c — the checks after the front-end: graph, shapes, memory.
 *
 * Shared by nnc (main.c) and the fuzz harnesses, which run the whole
 * compiler in memory. Each phase runs only if the ones before it reported no
 * error, so a later phase never sees a half-built graph. The front-ends keep
 * the names of broken definitions, so graph errors further on are still
 * reported, without a cascade.
 */
#include "nnc.h"

/* A layer marked bad must have had its error reported: the phases after
 * the graph would take its half-read arguments. Said, as an error of nnc's
 * own, rather than compiled. */
static bool bad_unreported(const Graph *g)
{
    for (int i = 0; i < g->nlayers; i++)
        if (g->layers[i].bad) {
            diag_error(g->layers[i].span, "internal error: layer `%s` was refused without a message",
                       g->layers[i].name);
            diag_help("this is a bug in nnc; please report it with the model");
            return true;
        }
    return false;
}

Graph *graph_compile(Model *m)
{
    Graph *g = graph_build(m);
    if (diag_error_count() || bad_unreported(g))
        return NULL;
    shape_infer(g);
    if (diag_error_count() || bad_unreported(g))
        return NULL;
    plan_memory(g);
    return g;
}

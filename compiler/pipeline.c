/* pipeline.c — the checks after the front-end: graph, shapes, memory.
 *
 * Shared by nnc (main.c) and the fuzz harnesses, which run the whole
 * compiler in memory. Each phase runs only if the ones before it reported no
 * error, so a later phase never sees a half-built graph. The front-ends keep
 * the names of broken definitions, so graph errors further on are still
 * reported, without a cascade.
 */
#include "nnc.h"

Graph *graph_compile(Model *m)
{
    Graph *g = graph_build(m);
    if (diag_error_count())
        return NULL;
    shape_infer(g);
    if (diag_error_count())
        return NULL;
    plan_memory(g);
    return g;
}

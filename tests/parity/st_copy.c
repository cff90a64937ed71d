/* st_copy.c — reads a safetensors file with nnrt_st_open and writes its
 * tensors again with nnrt_save_safetensors (test_st.sh compares the two).
 *
 * Usage: st_copy IN OUT [METAKEY...]    (the metadata keys to carry over;
 * the runtime's API looks metadata up by key, it does not list it)
 */
#include <stdio.h>
#include <stdlib.h>

#include "nnrt_host.h"

int main(int argc, char **argv)
{
    char err[1024];
    if (argc < 3) {
        fprintf(stderr, "usage: st_copy IN OUT [METAKEY...]\n");
        return 2;
    }
    nnrt_st_file *f = nnrt_st_open(argv[1], err, sizeof err);
    if (!f) {
        fprintf(stderr, "st_copy: %s\n", err);
        return 1;
    }
    int n = nnrt_st_count(f), nmeta = argc - 3;
    nnrt_tensor *t = calloc((size_t)n + 1, sizeof *t);
    const char **vals = calloc((size_t)nmeta + 1, sizeof *vals);
    for (int i = 0; i < n; i++)
        t[i] = *nnrt_st_at(f, i);
    for (int i = 0; i < nmeta; i++)
        if (!(vals[i] = nnrt_st_meta(f, argv[3 + i]))) {
            fprintf(stderr, "st_copy: %s has no metadata '%s'\n", argv[1], argv[3 + i]);
            return 1;
        }
    if (nnrt_save_safetensors(argv[2], t, n, (const char *const *)argv + 3, vals, nmeta,
                              err, sizeof err) < 0) {
        fprintf(stderr, "st_copy: %s\n", err);
        return 1;
    }
    nnrt_st_close(f);
    free(t);
    free(vals);
    return 0;
}

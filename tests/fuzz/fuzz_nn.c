/* fuzz_nn.c — libFuzzer harness for the .nn front-end (parse_model) and the
 * whole pipeline behind it: see fuzz.h. Run: make fuzz FUZZ_SECONDS=N. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one(data, size, false);
}

/* fuzz_json.c — libFuzzer harness for the JSON front-end (json_parse_model)
 * and the whole pipeline behind it: see fuzz.h. Run: make fuzz FUZZ_SECONDS=N. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one(data, size, true);
}

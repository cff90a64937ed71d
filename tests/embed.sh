#!/bin/sh
# A model embedded in another program needs the kernel library alone:
# build/libnnrt.a uses no cJSON, zlib or host symbol (nm), and
# tests/embed/embed.c, which includes a generated model with NNC_NO_MAIN
# and trains it through the generated API, compiles with -Iruntime only
# (no host header) and links with exactly `build/libnnrt.a -lm -lpthread`.
# With -DNNC_CHECKPOINTS the same program also saves and loads its
# weights, and then links the host library too.
set -eu
cd "$(dirname "$0")/.."
B=build/tests/embed
rm -rf $B && mkdir -p $B
CC=${CC:-cc}
fail() { echo "FAIL $*"; exit 1; }

# -- the library itself: what it leaves undefined, it defines, or the C
#    library, libm and pthreads do
nm -u build/libnnrt.a | awk 'NF == 2 {print $2}' | sort -u >$B/undefined
nm --defined-only build/libnnrt.a | awk 'NF == 3 && $2 ~ /[TDBRVW]/ {print $3}' | sort -u >$B/defined
grep -E '^(cJSON_|gz|inflate|deflate|crc32|adler32)' $B/undefined >$B/foreign || true
[ ! -s $B/foreign ] || fail "libnnrt.a needs cJSON or zlib: $(tr '\n' ' ' <$B/foreign)"
grep '^nnrt_' $B/undefined | comm -23 - $B/defined >$B/missing || true
[ ! -s $B/missing ] || fail "libnnrt.a calls nnrt_ functions it lacks (the host library's?): $(tr '\n' ' ' <$B/missing)"
echo "ok   libnnrt.a: no cJSON, zlib or host symbols (each nnrt_ function it calls, it defines)"

for nn in models/lenet.nn models/mlp.nn; do
    name=$(basename "$nn" .nn)
    up=$(echo "$name" | tr a-z A-Z)
    build/nnc "$nn" -o $B/$name.c
    # the link line a user of the kernels has: nothing but these
    $CC ${CFLAGS:--O2} -Iruntime -DMODEL_C="\"$PWD/$B/$name.c\"" -DMODEL=$name -DMODEL_UP=$up \
        tests/embed/embed.c build/libnnrt.a ${LDFLAGS:-} -lm -lpthread -o $B/embed_$name ||
        fail "$name: an embedded model does not build with libnnrt.a -lm -lpthread alone"
    $B/embed_$name
    # checkpoints asked for: the host library joins
    $CC ${CFLAGS:--O2} -Iruntime -Iruntime/host -DNNC_CHECKPOINTS -DMODEL_C="\"$PWD/$B/$name.c\"" -DMODEL=$name \
        -DMODEL_UP=$up tests/embed/embed.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} \
        -lcjson -lz -lm -lpthread -o $B/embed_ckpt_$name
    # a checkpoint of the trainer (with the optimizer's state): NAME_load takes it
    CC="${CC:-cc} ${LDFLAGS:-}" build/nnc "$nn" -o $B/trainer_$name
    $B/trainer_$name --steps 3 --batch 2 --quiet --save $B/trained_$name.st
    $B/embed_ckpt_$name $B/$name.safetensors $B/trained_$name.st 3
done

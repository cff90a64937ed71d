#!/bin/sh
# run.sh — the bounded fuzz behind `make fuzz FUZZ_SECONDS=N`: runs each
# libFuzzer harness (build/fuzz/fuzz_nn, build/fuzz/fuzz_json) N seconds.
#
# The seeds are gathered at run time from models/, tests/diagnostics/,
# tests/json/ and tests/fuzz/regressions/ (nothing is copied into the
# repository); the corpus libFuzzer grows stays in build/fuzz/corpus_*, so a
# second run goes on from the first. A crash, a timeout, a leak or a
# sanitizer report stops the harness: its input is written to
# build/fuzz/crash-*, leak-*, timeout-* or oom-*, and this script fails
# naming it. Then build/nnc itself reads the corpus: it must end each input
# with exit status 0 or 1, and the C it writes for the inputs it accepts (up
# to FUZZ_CC_CHECK of them, default 200) must compile: a property no
# sanitizer sees. Reproduce a fuzzer's finding with
#     NNC_FUZZ_VERBOSE=1 build/fuzz/fuzz_nn FILE
# and, once it is fixed, copy the input to tests/fuzz/regressions/NAME.nn (or .json),
# where tests/fuzz.sh runs it through nnc on every `make test`.
#
#   tests/fuzz/run.sh N         fuzz each harness N seconds
#   tests/fuzz/run.sh --check   is clang's libFuzzer usable here? (exit 0 or 1)
set -u
cd "$(dirname "$0")/../.."
F=build/fuzz
FUZZ_CC=${FUZZ_CC:-clang}

if [ "${1:-}" = --check ]; then
    command -v "$FUZZ_CC" >/dev/null 2>&1 || exit 1
    mkdir -p $F
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >$F/check.c
    $FUZZ_CC -fsanitize=fuzzer,address,undefined $F/check.c -o $F/check >/dev/null 2>&1
    rc=$?
    rm -f $F/check.c $F/check
    exit $rc
fi

seconds=${1:-60}
fail=0
for front in nn json; do
    seeds=$F/seeds_$front corpus=$F/corpus_$front
    rm -rf $seeds && mkdir -p $seeds $corpus
    if [ $front = nn ]; then
        files=$(ls models/*.nn tests/diagnostics/*.nn tests/data/*.nn tests/fuzz/regressions/*.nn 2>/dev/null)
    else
        files=$(ls models/*.json 2>/dev/null; find tests/json tests/fuzz/regressions -name '*.json' 2>/dev/null)
    fi
    for f in $files; do cp "$f" "$seeds/$(echo "$f" | tr / _)"; done
    echo "== fuzz_$front: $(echo $files | wc -w) seeds, $seconds s"
    # -timeout: one input taking more than 10 s is a hang; -max_len: a model is small
    $F/fuzz_$front $corpus $seeds -dict=tests/fuzz/$front.dict -max_total_time="$seconds" \
        -timeout=10 -max_len=8192 -rss_limit_mb=2048 -artifact_prefix=$F/ -print_final_stats=1 \
        >$F/fuzz_$front.log 2>&1
    rc=$?
    grep -aE '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' $F/fuzz_$front.log | tail -3
    if [ $rc -ne 0 ]; then
        echo "FAIL fuzz_$front found a problem (exit $rc); the report:"
        grep -aE 'ERROR|SUMMARY|nnc fuzz|Test unit written|runtime error|Direct leak' $F/fuzz_$front.log | head -20
        echo "   the whole log: $F/fuzz_$front.log"
        fail=1
    else
        echo "ok   fuzz_$front: $(ls $corpus | wc -l) inputs in the corpus, no crash, hang, leak or sanitizer report"
    fi
    # the generated C of what nnc accepts compiles
    accepted=0 broken=0
    for f in $corpus/*; do
        [ $accepted -lt "${FUZZ_CC_CHECK:-200}" ] || break
        cp "$f" $F/cc_check.$front
        build/nnc $F/cc_check.$front -o $F/cc_check.c >/dev/null 2>$F/cc_check.err
        rc=$?
        if [ $rc -gt 1 ]; then      # not a located error: a crash, or a sanitizer's report
            cp "$f" $F/nnc-$(basename "$f").$front
            echo "FAIL build/nnc exits $rc on $F/nnc-$(basename "$f").$front:"; tail -5 $F/cc_check.err
            fail=1
        fi
        [ $rc -eq 0 ] || continue
        accepted=$((accepted + 1))
        if ! ${CC:-cc} -std=c11 -fsyntax-only -Iruntime -Iruntime/host $F/cc_check.c 2>$F/cc_check.err; then
            broken=$((broken + 1))
            cp "$f" $F/badc-$(basename "$f").$front
            echo "FAIL nnc accepts $F/badc-$(basename "$f").$front but its C does not compile:"
            head -5 $F/cc_check.err
            fail=1
        fi
    done
    [ $broken -eq 0 ] && echo "ok   fuzz_$front: the C of $accepted accepted inputs compiles"
done
rm -f $F/cc_check.*
exit $fail

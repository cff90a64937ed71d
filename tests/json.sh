#!/bin/sh
# The JSON front-end and the exporters (compiler/json.c, compiler/export.c):
#   - goldens: each tests/json/errors/NAME.json against NAME.expected, exactly
#     (stderr and exit status; a failed compile writes nothing);
#   - LeNet as .json and as .nn give the same C, bar the line naming the source;
#   - round trips: for every model, .nn -> --emit=json -> nnc -> --emit=json is
#     the same text, and its C is the .nn's C;
#   - hostile input (deep nesting, bad UTF-8, truncations, huge numbers): an
#     error and exit 1, never a crash;
#   - --emit=dot (rendered by graphviz when it is installed) and the options.
# To accept new golden output after a deliberate change: tests/json.sh --update
set -u
cd "$(dirname "$0")/.."
B=build/tests/json
rm -rf $B && mkdir -p $B
NNC=build/nnc
fail=0
ok() { printf "ok   %s\n" "$*"; }
bad() { printf "FAIL %s\n" "$*"; fail=1; }

# -- goldens
for f in tests/json/errors/*.json; do
    name=$(basename "$f" .json)
    NO_COLOR=1 $NNC "$f" -o $B/$name.c 2>$B/$name.err >/dev/null
    rc=$?
    echo "exit $rc" >>$B/$name.err
    if [ "${1:-}" = --update ]; then
        cp $B/$name.err tests/json/errors/$name.expected
    elif [ $rc -ne 0 ] && [ -e $B/$name.c ]; then
        bad "$name: exit $rc but an output file was written"
    elif ! diff -u tests/json/errors/$name.expected $B/$name.err >$B/$name.diff; then
        bad "$name: the message differs from $name.expected:"
        cat $B/$name.diff
    else
        ok "$name"
    fi
done
[ "${1:-}" = --update ] && exit 0

# the generated C without the two lines that name the source
strip_source() { grep -v -e ' compiled by nnc ' -e '^ \* from .*\.$' -e '\.source = ' "$1"; }
same_c() {  # same_c A.c B.c: equal but for the source lines, which must differ only there
    strip_source "$1" >$B/a.stripped; strip_source "$2" >$B/b.stripped
    cmp -s $B/a.stripped $B/b.stripped && [ "$(diff "$1" "$2" | grep -c '^<')" -le 2 ]
}

# -- models/lenet.json is models/lenet.nn
$NNC models/lenet.nn -o $B/lenet_nn.c && $NNC models/lenet.json -o $B/lenet_json.c || bad "lenet does not compile"
if same_c $B/lenet_nn.c $B/lenet_json.c; then ok "lenet.json and lenet.nn give the same C"
else bad "lenet.json and lenet.nn give different C:"; diff $B/lenet_nn.c $B/lenet_json.c | head -20; fi
$NNC --summary models/lenet.nn >$B/sum_nn && $NNC --summary models/lenet.json >$B/sum_json
if cmp -s $B/sum_nn $B/sum_json; then ok "--summary of lenet.json is lenet.nn's"; else bad "--summary differs"; fi

# -- round trips: every model (.nn and .json), the test models and the parity models
for m in models/*.nn models/*.json tests/json/models/*.json tests/parity/models/*.nn; do
    name=$(echo "$m" | tr / _)
    $NNC --emit=json "$m" -o $B/$name.1.json 2>/dev/null || { bad "$m: --emit=json failed"; continue; }
    $NNC --emit=json $B/$name.1.json -o $B/$name.2.json 2>/dev/null || { bad "$m: its JSON does not read back"; continue; }
    cmp -s $B/$name.1.json $B/$name.2.json || { bad "$m: the JSON of its JSON differs"; diff $B/$name.1.json $B/$name.2.json | head; continue; }
    $NNC "$m" -o $B/$name.c 2>/dev/null && $NNC $B/$name.1.json -o $B/$name.1.c 2>/dev/null
    same_c $B/$name.c $B/$name.1.c || { bad "$m: the C from its JSON differs"; diff $B/$name.c $B/$name.1.c | head; continue; }
    ok "round trip $m"
done

# -- the exported JSON holds what nnc inferred
grep -q '"fc1": {"op": "linear", "out": 120, "inferred": {"in": 400, "params": 48120' $B/models_lenet.nn.1.json ||
    bad "the JSON of lenet lacks fc1's inferred 400 inputs"
grep -q '{"name": "flatten", "op": "flatten", "inputs": \["maxpool2d_2"\], "inferred": {"operation": "flatten", "shape": \[400\]' \
    $B/models_lenet.nn.1.json || bad "the JSON of lenet lacks flatten's shape"
grep -q '"inferred": {"params": 61706, "activations": [0-9][0-9]*, "target": \[10\]}' $B/models_lenet.nn.1.json ||
    bad "the JSON of lenet lacks the totals"
ok "the exported JSON holds shapes and parameter counts"

# -- a JSON model with another name is found by its content; a UTF-8 BOM is fine
cp models/lenet.json $B/lenet.model
$NNC $B/lenet.model -o $B/by_content.c && same_c $B/lenet_json.c $B/by_content.c || bad "JSON not recognised by content"
printf '\357\273\277' | cat - models/lenet.json >$B/bom.json
$NNC $B/bom.json -o $B/bom.c && same_c $B/lenet_json.c $B/bom.c || bad "a UTF-8 BOM breaks the JSON"
ok "found by content, BOM accepted"

# -- a node keeps its source line through JSON: "line" gives it where
#    --emit=json cannot write the node on its own line (`h = fc2(` on line 2,
#    `fc1(x))` on line 3: fc1 is written first, on line 3, and fc2 after it)
cat >$B/line.json <<'EOF'
{"model": "wrapped",
 "input": {"name": "x", "shape": [16]},
 "layers": {"fc1": {"op": "linear", "out": 16}, "fc2": {"op": "linear", "out": 4}},
 "forward": [
   {"name": "fc1", "op": "fc1", "inputs": ["x"]}, {"name": "fc2", "op": "fc2", "inputs": ["fc1"], "line": 2}],
 "output": "fc2", "loss": {"op": "mse"}, "optimizer": {"op": "sgd", "lr": 0.01}}
EOF
if $NNC --summary $B/line.json >$B/line.sum 2>&1 && grep -q '^fc1 .* 5$' $B/line.sum && grep -q '^fc2 .* 2$' $B/line.sum; then
    ok "\"line\" keeps a node's source line"
else
    bad "\"line\" is not the node's line in the summary:"; cat $B/line.sum
fi
# -- a wrapped statement keeps its lines through --emit=json (fc2 on line 6, fc1 on 7)
printf 'model wrapped {\n  input x: [16]\n  fc1 = linear(16)\n  fc2 = linear(4)\n  forward {\n    h = fc2(\n      fc1(x))\n    return h\n  }\n  loss mse()\n  optimizer sgd(lr=0.01)\n}\n' >$B/wrapped.nn
$NNC --summary $B/wrapped.nn >$B/wrapped_nn.sum && $NNC --emit=json $B/wrapped.nn -o $B/wrapped.json &&
    $NNC --summary $B/wrapped.json >$B/wrapped_json.sum && grep -q '^fc2 .* 6$' $B/wrapped_json.sum &&
    cmp -s $B/wrapped_nn.sum $B/wrapped_json.sum && ok "a wrapped statement keeps its lines through JSON" ||
    { bad "a wrapped statement loses its lines through JSON:"; diff $B/wrapped_nn.sum $B/wrapped_json.sum; }

# -- hostile input: each must give exit 1 and a message, never a crash
hostile() {  # hostile NAME FILE PATTERN
    NO_COLOR=1 $NNC "$2" -o $B/hostile.c >/dev/null 2>$B/hostile.err
    rc=$?
    if [ $rc -ne 1 ] || [ -e $B/hostile.c ] || ! grep -q -- "$3" $B/hostile.err; then
        bad "$1: exit $rc, expected 1 and \"$3\""; head -c 600 $B/hostile.err; echo
    else
        ok "$1"
    fi
}
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "["; print "" }' >$B/deep_array.json
hostile "100000 [ on one line" $B/deep_array.json "nested too deeply"
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "{\"a\":"; print "" }' >$B/deep_object.json
hostile "100000 nested objects" $B/deep_object.json "nested too deeply"
awk 'BEGIN { printf "{\"model\": \"m\", \"input\": {\"name\": \"x\", \"shape\": "; for (i = 0; i < 990; i++) printf "[";
             for (i = 0; i < 990; i++) printf "]"; print "}}" }' >$B/deep_value.json
hostile "990 nested lists as a shape" $B/deep_value.json "error"
for bytes in '\377' '\300\200' '\355\240\200' '\364\220\200\200' '\342\202' '\200'; do
    { printf '{"model": "m'; printf "$bytes"; printf '"}\n'; } >$B/utf8.json
    hostile "invalid UTF-8 (octal$(printf '%s' "$bytes" | tr '\\' ' '))" $B/utf8.json "invalid UTF-8"
done
printf '{"model": "m", "model": "n"}' >$B/dup.json
hostile "duplicate keys" $B/dup.json 'duplicate key "model"'
sed 's/"out": 6,/"out": 1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000,/' \
    models/lenet.json >$B/huge.json
hostile "a 94-digit integer" $B/huge.json "is too large"
sed 's/"lr": 0.01/"lr": 1e-999/' models/lenet.json >$B/tiny.json
hostile "lr 1e-999" $B/tiny.json "lr must be positive"
sed 's/"out": 6,/"out": -9223372036854775809,/' models/lenet.json >$B/neg.json
hostile "a huge negative integer" $B/neg.json "is too large"
sed 's/"shape": \[1, 32, 32\]/"shape": [100000, 100000, 100000]/' models/lenet.json >$B/big.json
hostile "a shape of 10^15 elements" $B/big.json "error"
printf '{"model": "m", "input": {"name": "x", "shape": [4]}, "layers": {"fc": {"op": "linear", "out": 2}}, "forward": [{"name": "y", "op": "fc", "inputs": ["x"], "inputs": ["x"]}], "output": "y", "loss": {"op": "mse"}, "optimizer": {"op": "sgd", "lr": 0.1}}' >$B/dup_inputs.json
hostile "duplicate inputs" $B/dup_inputs.json 'duplicate key "inputs"'

# every truncation of lenet.json is an error, not a crash
size=$(wc -c <models/lenet.json)
n=0; crashed=0
while [ $n -lt $size ]; do
    head -c $n models/lenet.json >$B/cut.json
    NO_COLOR=1 $NNC $B/cut.json -o $B/cut.c >/dev/null 2>$B/cut.err
    rc=$?
    if [ $rc -ne 1 ] || [ -e $B/cut.c ]; then bad "lenet.json cut at byte $n: exit $rc"; crashed=1; break; fi
    n=$((n + 3))
done
[ $crashed = 0 ] && ok "every truncation of lenet.json is an error"

# -- --emit=dot: one node per value, shapes on the edges, parameter counts
$NNC --emit=dot models/lenet.nn >$B/lenet.dot || bad "--emit=dot failed"
grep -q 'v7 -> v8 \[label="\[N, 400\]"\]' $B/lenet.dot || bad "dot: the edge into fc1 lacks its shape [N, 400]"
grep -q '48,120 params' $B/lenet.dot || bad "dot: fc1 lacks its parameter count"
$NNC --emit=dot --backward models/lenet.nn >$B/lenet_bw.dot || bad "--emit=dot --backward failed"
grep -q 'g1 \[label="conv1 backward"' $B/lenet_bw.dot || bad "dot --backward: no conv1 backward"
grep -q 'v0 -> g1 \[style=dashed' $B/lenet_bw.dot || bad "dot --backward: conv1 backward does not read x"
grep -q 'p0_0 -> g1 \[style=dashed' $B/lenet_bw.dot || bad "dot --backward: conv1 backward does not read conv1.weight"
grep -q 'v2 -> g2 \[style=dashed' $B/lenet_bw.dot || bad "dot --backward: relu backward does not read relu's output"
grep -q 'g1 -> q0_0 \[label="+="' $B/lenet_bw.dot || bad "dot --backward: conv1 backward does not accumulate conv1.weight.grad"
ok "--emit=dot and --backward"
if command -v dot >/dev/null; then
    for m in models/*.nn tests/json/models/*.json; do
        for bw in "" --backward; do
            $NNC --emit=dot $bw "$m" 2>/dev/null | dot -Tsvg >/dev/null 2>$B/dot.err && [ ! -s $B/dot.err ] ||
                { bad "graphviz rejects the dot $bw of $m:"; cat $B/dot.err; }
        done
    done
    ok "graphviz renders every model, forward and backward"
else
    echo "skip graphviz is not installed (make deps installs it)"
fi

# -- options
expect_exit() {
    want=$1; shift
    "$@" >$B/out 2>$B/err; got=$?
    [ $got -eq $want ] || { bad "'$*' exited $got, expected $want"; cat $B/err; }
}
expect_exit 2 $NNC --emit=xml models/lenet.nn
expect_exit 2 $NNC --backward models/lenet.nn
expect_exit 0 $NNC --emit=json models/lenet.json -o $B/out.json
cmp -s $B/out.json $B/models_lenet.json.1.json || bad "--emit=json -o FILE differs from the same to stdout"
rm -f $B/none.json
expect_exit 1 $NNC --emit=json tests/json/errors/syntax.json -o $B/none.json
[ ! -e $B/none.json ] || bad "a failed --emit=json wrote its output"
ok "options"

exit $fail

#!/bin/sh
# Limits instead of crashes: inputs far beyond any real model, generated here
# (nothing is committed), each of which nnc must compile or refuse with a
# located error — exit status 0 or 1, never a signal or a sanitizer report —
# in little time:
#   - expressions nested 100,000 deep (calls, lists, minus signs): the
#     parser's stack is bounded, and the deepest nesting it accepts compiles
#     on a 1 MB C stack;
#   - a model of 10,000 layers: compiles (C, JSON, summary) in a few seconds
#     of CPU, so no phase is quadratic; and its JSON compiles too;
#   - 100,000 errors: the first 20 are shown, then "too many errors";
#   - a 1 MB name; dimension products beyond size_t; a weight of 1e12
#     parameters, and 5e9 parameters in all: located errors.
set -u
cd "$(dirname "$0")/.."
B=build/tests/limits
rm -rf $B && mkdir -p $B
NNC=build/nnc
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# cpu CMD...: runs CMD, output to $B/out and $B/err; sets rc and secs (CPU seconds, user + system)
cpu() {
    python3 - "$@" >$B/cpu <<'PY'
import resource, subprocess, sys
with open("build/tests/limits/out", "wb") as o, open("build/tests/limits/err", "wb") as e:
    rc = subprocess.call(sys.argv[1:], stdout=o, stderr=e)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(rc, "%.2f" % (u.ru_utime + u.ru_stime))
PY
    read rc secs <$B/cpu
}

# refused NAME FILE PATTERN [MAX_SECONDS]: exit 1, a located error matching PATTERN, no crash
refused() {
    cpu $NNC "$2" -o $B/out.c
    if [ "$rc" -ne 1 ] || [ -e $B/out.c ] || grep -q -e Sanitizer -e 'runtime error' $B/err ||
       ! grep -q -- "$3" $B/err || ! grep -q "^$2:[0-9]*:[0-9]*: error" $B/err; then
        bad "$1: exit $rc, expected 1 and a located \"$3\""; head -c 1000 $B/err; echo
    elif awk -v s="$secs" -v m="${4:-5}" 'BEGIN { exit !(s > m) }'; then
        bad "$1: refused, but it took $secs s of CPU (limit ${4:-5} s)"
    else
        ok "$1 ($secs s)"
    fi
}

model() { # model FORWARD_BODY [LAYERS]: a model around its forward block
    printf 'model deep {\n  input x: [4]\n%s  forward {\n%s\n  }\n  loss mse()\n  optimizer sgd(lr=0.1)\n}\n' "${2:-}" "$1"
}

# -- nesting
awk 'BEGIN { printf "    return "; for (i = 0; i < 100000; i++) printf "relu("; printf "x";
             for (i = 0; i < 100000; i++) printf ")"; print "" }' >$B/body
model "$(cat $B/body)" >$B/deep_calls.nn
refused "relu(relu(...)) 100,000 deep" $B/deep_calls.nn "nested too deeply"
awk 'BEGIN { printf "  t = linear(2, bias="; for (i = 0; i < 100000; i++) printf "["; for (i = 0; i < 100000; i++) printf "]"; print ")" }' >$B/layers
model "    return t(x)" "$(cat $B/layers)" >$B/deep_lists.nn
refused "[[[...]]] 100,000 deep" $B/deep_lists.nn "nested too deeply"
awk 'BEGIN { printf "  t = linear("; for (i = 0; i < 100000; i++) printf "-"; print "2)" }' >$B/layers
model "    return t(x)" "$(cat $B/layers)" >$B/deep_minus.nn
refused "- - - ... 2, 100,000 minus signs" $B/deep_minus.nn "nested too deeply"

# the deepest nesting the parser accepts compiles, on a C stack of 1 MB (8 MB is usual)
depth=0
for d in 480 470 450 400; do
    awk -v d=$d 'BEGIN { printf "    return "; for (i = 0; i < d; i++) printf "relu("; printf "x";
                         for (i = 0; i < d; i++) printf ")"; print "" }' >$B/body
    model "$(cat $B/body)" >$B/deepest.nn
    if $NNC $B/deepest.nn -o $B/deepest.c 2>/dev/null; then depth=$d; break; fi
done
if [ $depth -eq 0 ]; then
    bad "no nesting of 400 or more calls compiles"
elif (ulimit -s 1024 && exec $NNC $B/deepest.nn -o $B/deepest.c) 2>$B/err; then
    ok "relu(...) $depth deep compiles on a 1 MB stack"
else
    bad "relu(...) $depth deep does not compile on a 1 MB stack"; head -5 $B/err
fi

# -- 10,000 layers, each applied once
awk 'BEGIN { print "model wide {"; print "  input x: [8]";
             for (i = 0; i < 10000; i++) printf "  fc%d = linear(8)\n", i;
             print "  forward {"; for (i = 0; i < 10000; i++) printf "    x = relu(fc%d(x))\n", i;
             print "    return x"; print "  }"; print "  loss mse()"; print "  optimizer sgd(lr=0.01)"; print "}" }' >$B/wide.nn
limit=${NNC_LIMITS_CPU:-4}
case "${CFLAGS:-}" in *-fsanitize*) limit=$((limit * 5)) ;; esac     # AddressSanitizer: 4.5 times slower here
for what in "-o $B/wide.c" "--summary" "--emit=json -o $B/wide.json" "--emit=dot --backward"; do
    cpu $NNC $what $B/wide.nn
    if [ "$rc" -ne 0 ]; then
        bad "10,000 layers, nnc $what: exit $rc"; head -5 $B/err
    elif awk -v s="$secs" -v m="$limit" 'BEGIN { exit !(s > m) }'; then
        bad "10,000 layers, nnc $what: $secs s of CPU, more than $limit s (something is quadratic)"
    else
        ok "10,000 layers, nnc $what: $secs s"
    fi
done
grep -q 'wide_forward' $B/wide.c && [ "$(grep -c 'nnrt_linear_forward' $B/wide.c)" -eq 10000 ] ||
    bad "the C of 10,000 layers lacks its layers"
cpu $NNC $B/wide.json -o $B/wide_json.c
if [ "$rc" -eq 0 ] && awk -v s="$secs" -v m="$limit" 'BEGIN { exit !(s <= m) }'; then
    ok "10,000 layers as JSON: $secs s"
else
    bad "10,000 layers as JSON: exit $rc, $secs s"; head -5 $B/err
fi

# -- 100,000 errors: 20 shown, then one line, exit 1
awk 'BEGIN { print "model errs {"; print "  input x: [8]"; print "  forward {";
             for (i = 0; i < 100000; i++) printf "    y%d = nothing%d(x)\n", i, i;
             print "    return x"; print "  }"; print "  loss mse()"; print "  optimizer sgd(lr=0.01)"; print "}" }' >$B/errors.nn
refused "100,000 errors" $B/errors.nn "unknown operation"
if [ "$(grep -c ': error:' $B/err)" -eq 20 ] && [ "$(tail -1 $B/err)" = "nnc: too many errors, stopping" ]; then
    ok "100,000 errors: 20 shown, then \"too many errors, stopping\""
else
    bad "100,000 errors: $(grep -c ': error:' $B/err) shown; last line: $(tail -1 $B/err)"
fi

# -- a 1 MB name
awk 'BEGIN { for (i = 0; i < 1048576; i++) printf "a"; print "" }' >$B/name
printf 'model %s {\n  input x: [4]\n  fc = linear(2)\n  forward {\n    return fc(x)\n  }\n  loss mse()\n  optimizer sgd(lr=0.1)\n}\n' \
    "$(cat $B/name)" >$B/long_name.nn
refused "a 1 MB name" $B/long_name.nn "this name is 1048576 characters long"
[ "$(wc -c <$B/err)" -lt 4000 ] || bad "the message about a 1 MB name is $(wc -c <$B/err) bytes long"

# -- sizes
printf 'model big {\n  input x: [100000, 100000, 100000, 100000]\n  fc = linear(3)\n  forward {\n    return fc(flatten(x))\n  }\n  loss mse()\n  optimizer sgd(lr=0.1)\n}\n' >$B/product.nn
refused "a dimension product of 1e20 (beyond size_t)" $B/product.nn "more than nnc's limit"
printf 'model big {\n  input x: [1000000]\n  fc = linear(1000000)\n  forward {\n    return fc(x)\n  }\n  loss mse()\n  optimizer sgd(lr=0.1)\n}\n' >$B/params.nn
refused "linear(1000000) after [1000000]: 1e12 parameters" $B/params.nn "fc.weight would be \[1000000, 1000000\]"
awk 'BEGIN { print "model big {"; print "  input x: [32768]"; for (i = 0; i < 5; i++) printf "  fc%d = linear(32768)\n", i;
             print "  forward {"; for (i = 0; i < 5; i++) printf "    x = fc%d(x)\n", i; print "    return x"; print "  }";
             print "  loss mse()"; print "  optimizer sgd(lr=0.1)"; print "}" }' >$B/total.nn
refused "five layers of 2^30 parameters: 5.4e9 in all" $B/total.nn "parameters and buffers, more than nnc's limit"
printf 'model big {\n  input x: [4]\n  fc = linear(2000000000)\n  forward {\n    return fc(x)\n  }\n  loss mse()\n  optimizer sgd(lr=0.1)\n}\n' >$B/size.nn
refused "linear(2000000000): a size beyond the runtime's int" $B/size.nn "out must be at most 1073741824"
# -- names: every name this machine's C library declares in the headers the
# generated C includes (build/compiler/cnames.h, from tools/cnames.sh) is
# refused as a model's name; and a name it does not declare compiles
n=0
for name in $(sed -n 's/^    "\(.*\)",$/\1/p' build/compiler/cnames.h); do
    printf 'model %s {\n  input x: [4]\n  f = linear(2)\n  forward { return f(x) }\n  loss mse()\n  optimizer sgd(lr=0.1)\n}\n' \
        "$name" >$B/cname.nn
    if build/nnc $B/cname.nn -o $B/cname.c 2>$B/err || ! grep -q "the generated C is named after the model" $B/err; then
        bad "the C library's name $name is not refused as a model's name"
        break
    fi
    n=$((n + 1))
done
[ "$n" -gt 300 ] || bad "only $n names of the C library refused (build/compiler/cnames.h too short?)"
echo "ok   the $n names of the C library's headers are refused as model names"
printf 'model indexer {\n  input x: [4]\n  f = linear(2)\n  forward { return f(x) }\n  loss mse()\n  optimizer sgd(lr=0.1)\n}\n' >$B/cname.nn
if build/nnc $B/cname.nn -o $B/cname.c && ${CC:-cc} -c -Iruntime -Iruntime/host $B/cname.c -o $B/cname.o; then
    echo "ok   a name the C library does not declare (indexer) compiles"
else
    bad "model indexer does not compile"
fi
exit $fail

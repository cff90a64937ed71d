#!/bin/sh
# A per-step learning-rate schedule (warmup_cosine, nanoGPT's get_lr) is
# applied at every step, on a text and on a table alike: the lr column of the
# trainer's --log, step by step, against the formula computed here:
#   step s (0-based) < warmup: lr (s + 1) / (warmup + 1); s > t_max: eta_min;
#   else eta_min + (1 + cos(pi (s - warmup) / (t_max - warmup))) / 2 (lr - eta_min).
set -eu
cd "$(dirname "$0")/.."
B=build/tests/schedule
mkdir -p $B
for m in text table; do
    build/nnc tests/schedule/$m.nn -o $B/$m.c
    ${CC:-cc} ${CFLAGS:--O2} -Iruntime -Iruntime/host $B/$m.c build/libnnrt-host.a build/libnnrt.a ${LDFLAGS:-} \
        ${LDLIBS:--lcjson -lz -lm -lpthread} -o $B/$m
done
awk 'BEGIN { for (i = 0; i < 200; i++) printf "%c", 97 + (i * 7) % 16 }' >$B/text.txt
$B/text train --data text:$B/text.txt --steps 14 --batch 2 --eval-every 100 --quiet --log $B/text.csv
awk 'BEGIN { srand(3); for (i = 0; i < 28; i++) printf "%.3f,%.3f,%.3f,%.3f,%d\n", rand(), rand(), rand(), rand(), i % 3 }' \
    >$B/table.csv
$B/table train --data csv:$B/table.csv --epochs 2 --batch 4 --quiet --log $B/table.csv.log
check() {   # check LOG: every step row's lr is the formula's
    awk -F, -v what="$1" 'NR > 1 && $1 == "step" {
        s = $3 - 1; lr = 0.01; eta = 0.0001; w = 3; t = 10
        if (s < w) want = lr * (s + 1) / (w + 1)
        else if (s > t) want = eta
        else want = eta + (1 + cos(3.14159265358979 * (s - w) / (t - w))) / 2 * (lr - eta)
        n++
        if ((($8 - want) ^ 2) ^ 0.5 > 1e-5 * want) { printf "FAIL %s: step %d lr %s, want %.6g\n", what, $3, $8, want; bad = 1 }
    } END { if (n < 14) { printf "FAIL %s: %d steps in the log, want 14\n", what, n; bad = 1 }
            if (!bad) printf "ok   %s: the lr of each of %d steps is warmup_cosine'"'"'s\n", what, n; exit bad }' "$2"
}
check "a text (train --data text:)" $B/text.csv
check "a table (train --data csv:, 2 epochs of 7 batches)" $B/table.csv.log

#!/usr/bin/env bash
# Filter: read an MMEngine training log on stdin, print one short progress
# line per logged training iteration ("iter 20/400  loss 3.12  eta 0:01:35").
# Used by tools/run_demo.sh to show training progress in the terminal while
# the full log goes to a file:
#
#   python tools/train.py CONFIG 2>&1 | tee train.log | bash tools/misc/train_progress.sh
PREFIX="${1:-}"
exec awk -v prefix="$PREFIX" '
/Iter\(train\) \[/ {
    it = ""; eta = "?"; loss = "?"
    if (match($0, /Iter\(train\) \[ *[0-9]+\/[0-9]+\]/)) {
        it = substr($0, RSTART + 13, RLENGTH - 14)
        gsub(/ /, "", it)
    }
    if (match($0, /eta: [^ ]+/)) eta = substr($0, RSTART + 5, RLENGTH - 5)
    if (match($0, /  loss: [^ ]+/)) loss = substr($0, RSTART + 8, RLENGTH - 8)
    printf "%siter %s  loss %s  eta %s\n", prefix, it, loss, eta
    fflush()
}'

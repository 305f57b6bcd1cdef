#!/usr/bin/env bash
# The mmeac main job, end to end on one machine (CPU is enough):
#
#   bash tools/run_demo.sh [setup_env.sh options, e.g. --wheelhouse ../shared/wheelhouse]
#
#   1. sets up the environment (tools/setup_env.sh, idempotent);
#   2. makes the built-in ADE20K-format data (data/demo/ade/ADEChallengeData2016);
#   3. trains a small EAC UperNet with nested dropout over 8..32 cores
#      (configs/demo/upernet_eac-tiny_1xb8-400it_builtin-ade20k-128x128.py);
#   4. evaluates the one checkpoint with tools/test.py at two core budgets
#      (all 32 cores and 8 cores, --cfg-options model.backbone.num_cores=K),
#      writing the metrics and the prediction images.
#
# Outputs under $MMEAC_DEMO_DIR (default work_dirs/demo):
#   iter_<N>.pth, metrics_c32.json, metrics_c8.json, metrics.json (summary),
#   vis_c32/, vis_c8/ (input | prediction images), train and test logs.
# The training progress (iteration, loss, ETA) is shown in the terminal.
# $MMEAC_DEMO_DIR must be new, empty or made by an earlier demo (it holds the
# marker file .mmeac_demo_output); any other directory is refused untouched.
# Environment: MMEAC_DEMO_DIR, MMEAC_DEMO_ITERS (default: the config's 400),
# OMP_NUM_THREADS (default: the number of CPU cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=tools/misc/demo_common.sh
. tools/misc/demo_common.sh
CONFIG=configs/demo/upernet_eac-tiny_1xb8-400it_builtin-ade20k-128x128.py
OUT="${MMEAC_DEMO_DIR:-work_dirs/demo}"
DATA_OUT=data/demo  # the config's data_root is data/demo/ade/ADEChallengeData2016
BUDGETS=(32 8)

log() { echo "[run_demo] $*"; }
die() { echo "run_demo: error: $*" >&2; exit 1; }

# The output directory: a fresh one, or one an earlier demo made (it holds
# the marker file). Anything else is refused before anything is written, so
# files the demo did not make are never removed or overwritten.
MARKER=.mmeac_demo_output
if [[ -e "$OUT" || -L "$OUT" ]]; then
    [[ -d "$OUT" && ! -L "$OUT" ]] || die "'$OUT' exists and is not a directory; it is left untouched: set MMEAC_DEMO_DIR to a new directory"
    if [[ ! -f "$OUT/$MARKER" && -n "$(ls -A "$OUT")" ]]; then
        die "'$OUT' is not empty and was not made by run_demo.sh (no $MARKER in it); it is left untouched: set MMEAC_DEMO_DIR to a new directory"
    fi
fi
mkdir -p "$OUT"
[[ -w "$OUT" ]] || die "'$OUT' is not writable"
touch "$OUT/$MARKER"

START=$(date +%s)
setup_python "$@"
[[ -x "$PY" ]] || die "no python at '$PY' after setup"
demo_env
SETUP_DONE=$(date +%s)

log "making the built-in ADE20K data under $DATA_OUT"
"$PY" tools/misc/make_builtin_data.py ade20k --out "$DATA_OUT" --size 256 \
    --num-train 300 --num-val 50

ITER_OPTS=()
if [[ -n "${MMEAC_DEMO_ITERS:-}" ]]; then
    ITER_OPTS=(train_cfg.max_iters="$MMEAC_DEMO_ITERS"
               train_cfg.val_interval="$MMEAC_DEMO_ITERS"
               default_hooks.checkpoint.interval="$MMEAC_DEMO_ITERS")
fi
rm -f "$OUT/last_checkpoint"  # the marker says an earlier demo wrote it
log "training (progress below, full log: $OUT/train.log)"
set +e
"$PY" tools/train.py "$CONFIG" --work-dir "$OUT" \
    ${ITER_OPTS[@]+--cfg-options "${ITER_OPTS[@]}"} 2>&1 \
    | tee "$OUT/train.log" | bash tools/misc/train_progress.sh "[run_demo]   "
TRAIN_STATUS=${PIPESTATUS[0]}
set -e
if [[ $TRAIN_STATUS -ne 0 ]]; then
    tail -n 30 "$OUT/train.log" >&2
    die "training failed (log: $OUT/train.log)"
fi
[[ -f "$OUT/last_checkpoint" ]] || die "no checkpoint in $OUT after training"
CKPT="$(cat "$OUT/last_checkpoint")"
[[ -f "$CKPT" ]] || die "no checkpoint in $OUT after training"
TRAIN_DONE=$(date +%s)

for K in "${BUDGETS[@]}"; do
    log "testing $CKPT at $K cores"
    rm -rf "$OUT/vis_c$K"
    "$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$OUT/test_c$K" \
        --out "$OUT/metrics_c$K.json" --show-dir "$OUT/vis_c$K" \
        --cfg-options model.backbone.num_cores="$K" \
        > "$OUT/test_c$K.log" 2>&1 \
        || { tail -n 30 "$OUT/test_c$K.log" >&2; die "testing at $K cores failed (log: $OUT/test_c$K.log)"; }
done
END=$(date +%s)

"$PY" - "$OUT" "$CKPT" "$((SETUP_DONE - START))" "$((TRAIN_DONE - SETUP_DONE))" \
    "$((END - TRAIN_DONE))" "${BUDGETS[@]}" <<'EOF'
import glob, json, os, sys
out, ckpt, t_setup, t_train, t_test = sys.argv[1:6]
budgets = [int(b) for b in sys.argv[6:]]
summary = dict(checkpoint=ckpt, omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
               seconds=dict(setup=int(t_setup), data_and_train=int(t_train),
                            test=int(t_test)),
               budgets={})
print(f'{"cores":>5} | {"mIoU":>6} | {"mAcc":>6} | {"aAcc":>6} | images')
for k in budgets:
    metrics = json.load(open(os.path.join(out, f'metrics_c{k}.json')))['metrics']
    vis = glob.glob(os.path.join(out, f'vis_c{k}', '**', '*.png'), recursive=True)
    summary['budgets'][str(k)] = dict(metrics=metrics, num_images=len(vis))
    print(f'{k:>5} | {metrics["mIoU"]:6.2f} | {metrics["mAcc"]:6.2f} | '
          f'{metrics["aAcc"]:6.2f} | {len(vis)}')
with open(os.path.join(out, 'metrics.json'), 'w') as f:
    json.dump(summary, f, indent=2)
print(f'setup {t_setup}s, data + training {t_train}s, testing {t_test}s; '
      f'summary: {os.path.join(out, "metrics.json")}')
EOF

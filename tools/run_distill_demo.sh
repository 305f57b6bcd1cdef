#!/usr/bin/env bash
# Make your own EAC weights, end to end on one machine (CPU is enough):
#
#   bash tools/run_distill_demo.sh [--no-setup | setup_env.sh options]
#
#   1. sets up the environment (tools/setup_env.sh; --no-setup uses the
#      active Python as it is);
#   2. makes the built-in ImageNet-layout data (data/distill_demo/imagenet,
#      600 + 120 images at 72 px);
#   3. trains the teacher, a micro ViT classifier
#      (configs/demo/vit-micro_1xb32-600it_builtin-imagenet-64px.py);
#   4. distils it into a micro EAC with nested dropout over 8..32 cores
#      (configs/demo/distill_eac-micro_vit-teacher_builtin-imagenet-64px.py);
#   5. linear-probes the distilled student and a randomly initialised one at
#      the smallest (8) and the largest (32) budget
#      (configs/demo/linear-probe_eac-micro_1xb32-300it_builtin-imagenet-64px.py)
#      and prints the top-1 accuracies.
#
# Outputs under $MMEAC_DISTILL_DEMO_DIR (default work_dirs/distill_demo):
#   teacher/, distill/, probe_{distilled,random}_c{8,32}/ (work dirs with
#   logs and checkpoints) and metrics.json (summary). The script only writes
#   into a directory it created (marked by .run_distill_demo) and refuses
#   any other non-empty one.
# Environment: MMEAC_DISTILL_DEMO_DIR, MMEAC_DISTILL_DEMO_DATA (default
#   data/distill_demo), MMEAC_DISTILL_DEMO_NUM_TRAIN / _NUM_VAL (600 / 120),
#   MMEAC_DISTILL_DEMO_TEACHER_ITERS / _DISTILL_ITERS / _PROBE_ITERS (the
#   configs' 600 / 600 / 300), MMEAC_DISTILL_DEMO_BUDGETS (the probed
#   budgets, default "8 32"), OMP_NUM_THREADS (default: the CPU cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=tools/misc/demo_common.sh
. tools/misc/demo_common.sh
TEACHER_CFG=configs/demo/vit-micro_1xb32-600it_builtin-imagenet-64px.py
DISTILL_CFG=configs/demo/distill_eac-micro_vit-teacher_builtin-imagenet-64px.py
PROBE_CFG=configs/demo/linear-probe_eac-micro_1xb32-300it_builtin-imagenet-64px.py
OUT="${MMEAC_DISTILL_DEMO_DIR:-work_dirs/distill_demo}"
DATA_OUT="${MMEAC_DISTILL_DEMO_DATA:-data/distill_demo}"
NUM_TRAIN="${MMEAC_DISTILL_DEMO_NUM_TRAIN:-600}"
NUM_VAL="${MMEAC_DISTILL_DEMO_NUM_VAL:-120}"
# the student's smallest and largest budget
read -r -a BUDGETS <<< "${MMEAC_DISTILL_DEMO_BUDGETS:-8 32}"
MARK="$OUT/.run_distill_demo"

log() { echo "[run_distill_demo] $*"; }
die() { echo "run_distill_demo: error: $*" >&2; exit 1; }

if [[ -e "$OUT" && ! -d "$OUT" ]]; then
    die "output '$OUT' exists and is not a directory"
fi
if [[ -d "$OUT" && ! -e "$MARK" && -n "$(ls -A "$OUT")" ]]; then
    die "output directory '$OUT' is not empty and was not made by this" \
        "script; set MMEAC_DISTILL_DEMO_DIR to a new directory"
fi

START=$(date +%s)
if [[ "${1:-}" == "--no-setup" ]]; then
    shift
    PY="$(command -v python)" || die "no python on PATH (--no-setup)"
else
    setup_python "$@"
fi
[[ -x "$PY" ]] || die "no python at '$PY'"
demo_env

mkdir -p "$OUT"
touch "$MARK"
# earlier results of this script (the directory carries its mark)
rm -rf "$OUT/teacher" "$OUT/distill" "$OUT"/probe_* "$OUT/metrics.json"

log "making the built-in ImageNet data under $DATA_OUT"
"$PY" tools/misc/make_builtin_data.py imagenet --out "$DATA_OUT" --size 72 \
    --num-train "$NUM_TRAIN" --num-val "$NUM_VAL" \
    || die "making the data failed"
DATA_ROOT="$DATA_OUT/imagenet"
DATA_OPTS=(train_dataloader.dataset.data_root="$DATA_ROOT")
EVAL_OPTS=(val_dataloader.dataset.data_root="$DATA_ROOT"
           test_dataloader.dataset.data_root="$DATA_ROOT")

iter_opts() {  # iter_opts ITERS [with_val]: --cfg-options for ITERS iters
    local n="$1"
    [[ -z "$n" ]] && return 0
    echo train_cfg.max_iters="$n" default_hooks.checkpoint.interval="$n"
    [[ "${2:-}" == with_val ]] && echo train_cfg.val_interval="$n"
    return 0
}

train() {  # train NAME CONFIG OPTIONS...: tools/train.py into $OUT/NAME
    local name="$1" cfg="$2"
    shift 2
    log "training $name (log: $OUT/$name.log)"
    "$PY" tools/train.py "$cfg" --work-dir "$OUT/$name" --cfg-options "$@" \
        > "$OUT/$name.log" 2>&1 \
        || { tail -n 30 "$OUT/$name.log" >&2; die "$name failed (log: $OUT/$name.log)"; }
    [[ -f "$OUT/$name/last_checkpoint" ]] || die "no checkpoint after $name"
}

# shellcheck disable=SC2046
train teacher "$TEACHER_CFG" "${DATA_OPTS[@]}" "${EVAL_OPTS[@]}" \
    $(iter_opts "${MMEAC_DISTILL_DEMO_TEACHER_ITERS:-}" with_val)
TEACHER_CKPT="$(cat "$OUT/teacher/last_checkpoint")"
# shellcheck disable=SC2046
train distill "$DISTILL_CFG" "${DATA_OPTS[@]}" model.teacher_ckpt="$TEACHER_CKPT" \
    $(iter_opts "${MMEAC_DISTILL_DEMO_DISTILL_ITERS:-}")
STUDENT_CKPT="$(cat "$OUT/distill/last_checkpoint")"
TRAIN_DONE=$(date +%s)

for init in distilled random; do
    if [[ $init == distilled ]]; then
        INIT_OPT=model.backbone.init_cfg.checkpoint="$STUDENT_CKPT"
    else
        INIT_OPT=model.backbone.init_cfg=None
    fi
    for K in "${BUDGETS[@]}"; do
        # shellcheck disable=SC2046
        train "probe_${init}_c$K" "$PROBE_CFG" "${DATA_OPTS[@]}" \
            "${EVAL_OPTS[@]}" "$INIT_OPT" model.backbone.num_cores="$K" \
            $(iter_opts "${MMEAC_DISTILL_DEMO_PROBE_ITERS:-}" with_val)
    done
done
END=$(date +%s)

"$PY" - "$OUT" "$TEACHER_CKPT" "$STUDENT_CKPT" "$((TRAIN_DONE - START))" \
    "$((END - TRAIN_DONE))" "${BUDGETS[@]}" <<'EOF'
import glob, json, os, sys
out, teacher_ckpt, student_ckpt, t_train, t_probe = sys.argv[1:6]
budgets = [int(b) for b in sys.argv[6:]]


def top1(name):
    """Last accuracy/top1 a run logged (its final validation)."""
    found = None
    for path in sorted(glob.glob(os.path.join(out, name, '*', 'vis_data',
                                              'scalars.json'))):
        for line in open(path):
            rec = json.loads(line)
            if 'accuracy/top1' in rec:
                found = rec['accuracy/top1']
    if found is None:
        sys.exit(f'run_distill_demo: error: no accuracy in {out}/{name}')
    return found


summary = dict(teacher_checkpoint=teacher_ckpt, student_checkpoint=student_ckpt,
               omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
               seconds=dict(data_teacher_distill=int(t_train),
                            probes=int(t_probe)),
               teacher_top1=top1('teacher'), top1={})
print(f'teacher (micro ViT) top-1: {summary["teacher_top1"]:.2f}')
print(f'{"cores":>5} | {"distilled":>9} | {"random":>7}')
for k in budgets:
    row = {init: top1(f'probe_{init}_c{k}') for init in ('distilled', 'random')}
    summary['top1'][str(k)] = row
    print(f'{k:>5} | {row["distilled"]:9.2f} | {row["random"]:7.2f}')
with open(os.path.join(out, 'metrics.json'), 'w') as f:
    json.dump(summary, f, indent=2)
print(f'data + teacher + distillation {t_train}s, probes {t_probe}s; '
      f'summary: {os.path.join(out, "metrics.json")}')
EOF

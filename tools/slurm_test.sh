#!/usr/bin/env bash
# Testing on a Slurm cluster, one task per GPU.
#
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [ARGS...]
set -euo pipefail

usage() { echo "usage: $(basename "$0") PARTITION JOB_NAME CONFIG CHECKPOINT [ARGS...]" >&2; exit 2; }
[ $# -ge 4 ] || usage
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/dist_common.sh
. "$TOOLS_DIR/dist_common.sh"
check_config "$3"
check_file "$4" checkpoint
PARTITION=$1 JOB_NAME=$2 CONFIG=$3 CHECKPOINT=$4
shift 4
slurm_run "$PARTITION" "$JOB_NAME" test.py "$CONFIG" "$CHECKPOINT" \
    --launcher=slurm "$@"

#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU.
#
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [ARGS...]
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/dist_common.sh
. "$TOOLS_DIR/dist_common.sh"
need_args 4 $# "PARTITION JOB_NAME CONFIG WORK_DIR [ARGS...]"
check_config "$3"
PARTITION=$1 JOB_NAME=$2 CONFIG=$3 WORK_DIR=$4
shift 4
slurm_run "$PARTITION" "$JOB_NAME" train.py "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher=slurm "$@"

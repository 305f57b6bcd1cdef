#!/usr/bin/env bash
# Testing on a Slurm cluster, one task per GPU.
#
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [ARGS...]
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/dist_common.sh
. "$TOOLS_DIR/dist_common.sh"
need_args 4 $# "PARTITION JOB_NAME CONFIG CHECKPOINT [ARGS...]"
check_config "$3"
check_file "$4" checkpoint
PARTITION=$1 JOB_NAME=$2 CONFIG=$3 CHECKPOINT=$4
shift 4
slurm_run "$PARTITION" "$JOB_NAME" test.py "$CONFIG" "$CHECKPOINT" \
    --launcher=slurm "$@"

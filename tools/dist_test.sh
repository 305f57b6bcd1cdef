#!/usr/bin/env bash
# Distributed testing on one or several nodes with torchrun.
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
#
# Same environment variables as tools/dist_train.sh (NNODES, NODE_RANK,
# MASTER_ADDR, PORT); without a GPU the processes run on the CPU over gloo.
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/dist_common.sh
. "$TOOLS_DIR/dist_common.sh"
need_args 3 $# "CONFIG CHECKPOINT GPUS [ARGS...]"
CONFIG=$1 CHECKPOINT=$2 GPUS=$3
shift 3
check_config "$CONFIG"
check_file "$CHECKPOINT" checkpoint
check_gpus "$GPUS"
torchrun_tool "$GPUS" test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"

#!/usr/bin/env bash
# Distributed training on one or several nodes with torchrun.
#
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
#
# GPUS processes are started on this node. For several nodes run the same
# command on every node with NNODES, NODE_RANK (0..NNODES-1), MASTER_ADDR (the
# address of node 0) and PORT set. Without a GPU the processes run on the CPU
# over gloo (tools/train.py switches the backend).
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/dist_common.sh
. "$TOOLS_DIR/dist_common.sh"
need_args 2 $# "CONFIG GPUS [ARGS...]"
CONFIG=$1 GPUS=$2
shift 2
check_config "$CONFIG"
check_gpus "$GPUS"
torchrun_tool "$GPUS" train.py "$CONFIG" --launcher pytorch "$@"

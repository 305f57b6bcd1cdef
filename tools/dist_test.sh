#!/usr/bin/env bash
# Distributed testing on one or several nodes with torchrun.
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
#
# Same environment variables as tools/dist_train.sh (NNODES, NODE_RANK,
# MASTER_ADDR, PORT); without a GPU the processes run on the CPU over gloo.
set -euo pipefail

usage() { echo "usage: $(basename "$0") CONFIG CHECKPOINT GPUS [ARGS...]" >&2; exit 2; }
[ $# -ge 3 ] || usage
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=tools/dist_common.sh
. "$TOOLS_DIR/dist_common.sh"
check_config "$CONFIG"
check_file "$CHECKPOINT" checkpoint
check_gpus "$GPUS"

PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$TOOLS_DIR/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "$@"

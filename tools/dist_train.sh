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

usage() { echo "usage: $(basename "$0") CONFIG GPUS [ARGS...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
CONFIG=$1
GPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=tools/dist_common.sh
. "$TOOLS_DIR/dist_common.sh"
check_config "$CONFIG"
check_gpus "$GPUS"

PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$TOOLS_DIR/train.py" \
    "$CONFIG" \
    --launcher pytorch "$@"

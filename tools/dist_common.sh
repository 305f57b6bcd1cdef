# Checks and launches shared by tools/dist_*.sh and tools/slurm_*.sh (sourced,
# not run). Each check prints one line naming the problem and exits non-zero.

PYTHON=${PYTHON:-python}

_die() { echo "$(basename "$0"): error: $*" >&2; exit 2; }

# need_args MIN GIVEN USAGE: the usage line and exit 2 with fewer than MIN
# arguments.
need_args() {
    [ "$2" -ge "$1" ] || { echo "usage: $(basename "$0") $3" >&2; exit 2; }
}

# check_config CONFIG: a config file, or a pkg::path config (resolved by
# tools/train.py / tools/test.py).
check_config() {
    case "$1" in
        *::*) ;;
        *) [ -f "$1" ] || _die "config file '$1' does not exist" ;;
    esac
}

# check_file PATH WHAT
check_file() {
    case "$1" in
        *://*) ;;
        *) [ -f "$1" ] || _die "$2 '$1' does not exist" ;;
    esac
}

# check_gpus N: a positive integer, and no more than the GPUs of this node
# when it has any (without GPUs the processes run on the CPU). torch counts
# them, so it is imported only where a GPU driver is present (NVIDIA or
# ROCm): a CPU node needs no count, and the import takes seconds.
check_gpus() {
    case "$1" in
        ''|*[!0-9]*|0) _die "GPUS must be a positive integer, got '$1'" ;;
    esac
    command -v "$PYTHON" >/dev/null || _die "no python at '$PYTHON'"
    local present=0
    if [ -e /proc/driver/nvidia ] || [ -e /dev/kfd ] \
        || compgen -G '/dev/nvidia[0-9]*' >/dev/null; then
        present=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null) \
            || _die "cannot import torch with '$PYTHON'"
    fi
    if [ "$present" -gt 0 ] && [ "$1" -gt "$present" ]; then
        _die "$1 GPUs asked for, but this node has $present"
    fi
}

# torchrun_tool GPUS TOOL [TOOL_ARGS...]: run tools/TOOL under torchrun, GPUS
# processes on this node (NNODES, NODE_RANK, MASTER_ADDR, PORT from the
# environment), with the repository on PYTHONPATH.
torchrun_tool() {
    local gpus=$1 tool=$2
    shift 2
    PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
    exec "$PYTHON" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="${PORT:-29500}" \
        --nproc_per_node="$gpus" \
        "$TOOLS_DIR/$tool" "$@"
}

# slurm_run PARTITION JOB_NAME TOOL [TOOL_ARGS...]: run tools/TOOL under srun,
# one task per GPU (GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS, PYTHON from
# the environment), with the repository on PYTHONPATH.
slurm_run() {
    local partition=$1 job_name=$2 tool=$3
    shift 3
    command -v srun >/dev/null || _die "srun not found (is this a Slurm cluster?)"
    # shellcheck disable=SC2086
    PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
    exec srun -p "$partition" \
        --job-name="$job_name" \
        --gres=gpu:"${GPUS_PER_NODE:-8}" \
        --ntasks="${GPUS:-8}" \
        --ntasks-per-node="${GPUS_PER_NODE:-8}" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" \
        --kill-on-bad-exit=1 \
        ${SRUN_ARGS:-} \
        "$PYTHON" -u "$TOOLS_DIR/$tool" "$@"
}

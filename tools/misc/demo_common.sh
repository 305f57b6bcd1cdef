# Shared by tools/run_demo.sh and tools/run_distill_demo.sh (sourced, not
# run, from the repository root).

# setup_python [setup_env.sh options]: set up the environment with
# tools/setup_env.sh, then set PY to the interpreter it installed into (same
# rule as setup_env.sh: the active virtualenv, else the active conda env,
# else ./.venv).
setup_python() {
    bash tools/setup_env.sh "$@"
    if [[ -n "${VIRTUAL_ENV:-}" ]]; then
        PY="$VIRTUAL_ENV/bin/python"
    elif [[ -n "${CONDA_PREFIX:-}" ]]; then
        PY="$CONDA_PREFIX/bin/python"
    else
        PY="$PWD/.venv/bin/python"
    fi
}

# demo_env: the demos' runs use every CPU core (unless OMP_NUM_THREADS says
# otherwise) and keep the upstream deprecation warnings out of the logs.
demo_env() {
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
    export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"
}

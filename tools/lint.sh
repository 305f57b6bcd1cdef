#!/usr/bin/env bash
# Lint mmeac's Python code the OpenMMLab way: flake8, isort --check-only and
# yapf --diff over the package, tools, tests, configs and demos, with the
# settings in setup.cfg. Runs all three and exits non-zero when any of them
# finds something (CI runs this script).
#
#   bash tools/lint.sh           # check the default paths
#   bash tools/lint.sh FILE ...  # check only these files or folders
#
# Fix what isort and yapf report with
#   isort PATHS && yapf -i -r PATHS
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $# -gt 0 ]]; then
    paths=("$@")
else
    paths=()
    for p in mmeac tools tests configs demo setup.py; do
        [[ -e $p ]] && paths+=("$p")
    done
fi

PY="${PYTHON:-python}"
for mod in flake8 isort yapf; do
    "$PY" -c "import $mod" 2>/dev/null || {
        echo "lint.sh: $mod is not installed (pip install -r requirements/tests.txt)" >&2
        exit 2
    }
done

status=0
echo "lint.sh: flake8 ${paths[*]}"
"$PY" -m flake8 "${paths[@]}" || status=1
echo "lint.sh: isort --check-only ${paths[*]}"
"$PY" -m isort --check-only --diff "${paths[@]}" || status=1
echo "lint.sh: yapf --diff ${paths[*]}"
"$PY" -m yapf --diff --recursive "${paths[@]}" || status=1

if [[ $status == 0 ]]; then
    echo "lint.sh: clean"
else
    echo "lint.sh: violations above; fix with 'isort PATHS && yapf -i -r PATHS'" \
        "and the flake8 messages" >&2
fi
exit $status

#!/usr/bin/env bash
# Set up everything mmeac needs, idempotently.
#
#   bash tools/setup_env.sh [--wheelhouse DIR] [--torch-spec "torch==X torchvision==Y ..."]
#                           [--cache-dir DIR] [--no-editable]
#
# Installs into the active virtualenv / conda env when one is active, otherwise into
# .venv/ in the checkout (created with $PYTHON, default python3):
#   1. torch + torchvision (requirements/torch.txt; override with --torch-spec or $TORCH_SPEC,
#      e.g. "torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cu126");
#   2. mmengine 0.10.7;
#   3. mmcv 2.1.0 with compiled ops: a fitting wheel from --wheelhouse DIR or the wheel cache,
#      else built from the PyPI sdist with -std=c++20 (CUDA ops too when nvcc and a GPU are
#      present), cached in $MMEAC_CACHE_DIR (default ~/.cache/mmeac) so it is built only once;
#   4. mmsegmentation, mmdet, mmpretrain (requirements/mminstall.txt), what they import
#      without declaring it (requirements/runtime.txt: also setuptools<81, whose
#      pkg_resources mmengine needs for 'mmseg::' configs), requirements/tests.txt
#      and the ONNX export extra the tests use (requirements/onnx.txt);
#   5. mmeac itself in editable mode, with its compiled CPU kernels (mmeac._C, rebuilt
#      when mmeac/ops/csrc changed; MMEAC_WITH_OPS=1 makes a failed build an error,
#      MMEAC_WITH_OPS=0 skips it);
#   6. a check that mmcv.ops has its compiled extension and that the stack imports.
# Steps whose pinned versions are already installed are skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MMCV_VERSION=2.1.0
MMENGINE_VERSION=0.10.7
DEFAULT_TORCH_SPEC="$(sed -e 's/#.*//' "$ROOT/requirements/torch.txt" | xargs)"
TORCH_SPEC="${TORCH_SPEC:-$DEFAULT_TORCH_SPEC}"
WHEELHOUSE=""
CACHE_DIR="${MMEAC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mmeac}"
EDITABLE=1

log() { echo "[setup_env] $*"; }
die() { echo "setup_env: error: $*" >&2; exit 1; }
usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --wheelhouse)
            [[ $# -ge 2 ]] || die "--wheelhouse needs a directory"
            WHEELHOUSE="$2"; shift 2 ;;
        --wheelhouse=*) WHEELHOUSE="${1#*=}"; shift ;;
        --torch-spec)
            [[ $# -ge 2 ]] || die "--torch-spec needs a value, e.g. \"torch==2.14.1 torchvision==0.29.1\""
            TORCH_SPEC="$2"; shift 2 ;;
        --torch-spec=*) TORCH_SPEC="${1#*=}"; shift ;;
        --cache-dir)
            [[ $# -ge 2 ]] || die "--cache-dir needs a directory"
            CACHE_DIR="$2"; shift 2 ;;
        --cache-dir=*) CACHE_DIR="${1#*=}"; shift ;;
        --no-editable) EDITABLE=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

if [[ -n "$WHEELHOUSE" ]]; then
    [[ -d "$WHEELHOUSE" ]] || die "wheelhouse directory '$WHEELHOUSE' does not exist"
    WHEELHOUSE="$(cd "$WHEELHOUSE" && pwd)"
fi
[[ -n "${TORCH_SPEC// /}" ]] || die "empty torch spec"

# ---------------------------------------------------------------- platform and Python
OS="$(uname -s)"
ARCH="$(uname -m)"
[[ "$OS" == "Linux" ]] || die "unsupported platform '$OS' (mmeac's setup supports Linux only)"
case "$ARCH" in
    x86_64|aarch64) ;;
    *) die "unsupported platform 'Linux $ARCH' (supported: x86_64, aarch64)" ;;
esac

# Which interpreter to install into.
if [[ -n "${VIRTUAL_ENV:-}" ]]; then
    PY="$VIRTUAL_ENV/bin/python"; ENV_KIND="active virtualenv $VIRTUAL_ENV"
elif [[ -n "${CONDA_PREFIX:-}" ]]; then
    PY="$CONDA_PREFIX/bin/python"; ENV_KIND="active conda env $CONDA_PREFIX"
else
    PY="$ROOT/.venv/bin/python"; ENV_KIND="$ROOT/.venv"
fi
BASE_PY="$PY"
if [[ ! -x "$PY" ]]; then
    [[ -z "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]] || die "no python at '$PY' in the $ENV_KIND"
    BASE_PY="${PYTHON:-python3}"
    command -v "$BASE_PY" >/dev/null 2>&1 || die "no Python interpreter '$BASE_PY' found (set PYTHON=...)"
fi

PY_VER="$("$BASE_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    || die "cannot run the Python interpreter '$BASE_PY'"
PY_MINOR="${PY_VER#*.}"
# mmcv 2.1.0 and mmengine 0.10.7 support CPython 3.8-3.12; torch 2.14 needs >= 3.10.
if [[ "${PY_VER%%.*}" != 3 || "$PY_MINOR" -lt 8 || "$PY_MINOR" -gt 12 ]]; then
    die "unsupported Python $PY_VER at '$BASE_PY' (mmcv 2.1.0 / mmengine 0.10.7 need Python 3.8-3.12)"
fi
if [[ "$TORCH_SPEC" == "$DEFAULT_TORCH_SPEC" && "$PY_MINOR" -lt 10 ]]; then
    die "unsupported Python $PY_VER at '$BASE_PY' for the default '$TORCH_SPEC' (needs Python >= 3.10; pass --torch-spec for an older torch)"
fi

START=$SECONDS
if [[ ! -x "$PY" ]]; then
    log "creating virtualenv $ROOT/.venv with $BASE_PY (Python $PY_VER)"
    if ! "$BASE_PY" -m venv "$ROOT/.venv"; then
        rm -rf "$ROOT/.venv"   # leave no half-made venv behind
        die "'$BASE_PY -m venv $ROOT/.venv' failed (on Debian/Ubuntu install python3-venv)"
    fi
fi
log "installing into $ENV_KIND (Python $PY_VER, $OS $ARCH)"
# requirements/runtime.txt doubles as a constraints file, so that no step installs a
# version a later step would have to replace (numpy < 2.4, say).
PIP_INSTALL=("$PY" -m pip install -c "$ROOT/requirements/runtime.txt")
PIP=("$PY" -m pip)

# Print the installed version of each distribution given ('-' when missing).
installed_versions() {
    "$PY" - "$@" <<'PYEOF'
import sys
from importlib import metadata
for name in sys.argv[1:]:
    try:
        print(metadata.version(name).split('+')[0])
    except metadata.PackageNotFoundError:
        print('-')
PYEOF
}

# True when every 'name==version' pin given is installed at that version. Other
# requirement forms (ranges) make it false and are left to pip; options such as
# --index-url and their URL values are ignored.
pins_satisfied() {
    local names=() wants=() tok
    for tok in "$@"; do
        [[ "$tok" == -* || "$tok" == */* ]] && continue
        [[ "$tok" == *==* ]] || return 1
        names+=("${tok%%==*}"); wants+=("${tok#*==}")
    done
    [[ ${#names[@]} -gt 0 ]] || return 1
    local haves i
    mapfile -t haves < <(installed_versions "${names[@]}")
    for i in "${!names[@]}"; do
        [[ "${haves[$i]:-}" == "${wants[$i]%%+*}" ]] || return 1
    done
}

read_reqs() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$1" | xargs; }

# ---------------------------------------------------------------- 1. torch
read -r -a TORCH_ARGS <<< "$TORCH_SPEC"
if pins_satisfied "${TORCH_ARGS[@]}"; then
    log "torch: $TORCH_SPEC already installed"
else
    log "torch: installing $TORCH_SPEC"
    "${PIP_INSTALL[@]}" -q "${TORCH_ARGS[@]}"
fi
TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__)')" \
    || die "torch does not import after installing '$TORCH_SPEC'"

# ---------------------------------------------------------------- 2. mmengine, opencv
# mmcv imports mmengine and cv2, so they come first (candidate mmcv wheels are checked
# by importing them).
if pins_satisfied "mmengine==$MMENGINE_VERSION"; then
    log "mmengine: $MMENGINE_VERSION already installed"
else
    log "mmengine: installing mmengine==$MMENGINE_VERSION"
    "${PIP_INSTALL[@]}" -q "mmengine==$MMENGINE_VERSION"
fi
# opencv-python needs libGL; on a machine without it, switch to the headless build.
if ! "$PY" -c 'import cv2' >/dev/null 2>&1; then
    cv_err="$("$PY" -c 'import cv2' 2>&1 | tail -n 1 || true)"
    log "opencv: 'import cv2' fails ($cv_err); installing opencv-python-headless instead"
    cv_ver="$(installed_versions opencv-python)"
    "${PIP[@]}" uninstall -q -y opencv-python
    if [[ "$cv_ver" != "-" ]]; then
        "${PIP[@]}" install -q --force-reinstall --no-deps "opencv-python-headless==$cv_ver"
    else
        "${PIP[@]}" install -q opencv-python-headless
    fi
    "$PY" -c 'import cv2' || die "opencv: 'import cv2' still fails with opencv-python-headless"
fi

# ---------------------------------------------------------------- 3. mmcv with compiled ops
CUDA_BUILD=0
if command -v nvcc >/dev/null 2>&1 \
   && "$PY" -c 'import sys, torch; sys.exit(0 if torch.version.cuda and torch.cuda.is_available() else 1)' 2>/dev/null; then
    CUDA_BUILD=1
fi

# Does the installed mmcv load its compiled ops against the installed torch (with the
# CUDA kernels when this machine has a GPU and nvcc)?
mmcv_ops_ok() {
    "$PY" - "$MMCV_VERSION" "$CUDA_BUILD" <<'PYEOF' >/dev/null 2>&1
import sys
import mmcv
assert mmcv.__version__ == sys.argv[1], mmcv.__version__
import mmcv._ext  # noqa: F401
if sys.argv[2] == '1':
    from mmcv.ops import get_compiling_cuda_version
    assert get_compiling_cuda_version() not in ('', 'not available')
PYEOF
}

PY_TAG="$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
PLAT_TAG="linux_$ARCH"
if [[ $CUDA_BUILD == 1 ]]; then VARIANT="cuda"; else VARIANT="cpu"; fi
WHEEL_CACHE="$CACHE_DIR/wheels/mmcv-$MMCV_VERSION-torch${TORCH_VERSION//+/_}-$PY_TAG-$PLAT_TAG-$VARIANT"

# Does a wheel file name (name-version[-build]-pytag-abitag-plattag.whl) fit here?
wheel_fits() {
    local base rest plat abi pyt
    base="$(basename "$1" .whl)"
    plat="${base##*-}"; rest="${base%-*}"
    abi="${rest##*-}"; rest="${rest%-*}"
    pyt="${rest##*-}"
    [[ "$pyt" == "$PY_TAG" && ( "$abi" == "$PY_TAG" || "$abi" == "abi3" ) ]] || return 1
    [[ "$plat" == "$PLAT_TAG" || "$plat" == manylinux*"_$ARCH" ]]
}

# Install a wheel and keep it only if its compiled ops load against the installed torch.
try_mmcv_wheel() {
    local whl="$1"
    if ! wheel_fits "$whl"; then
        log "mmcv: $(basename "$whl") does not fit $PY_TAG / $PLAT_TAG, skipped"
        return 1
    fi
    log "mmcv: trying $whl"
    "${PIP[@]}" install -q --no-deps --force-reinstall "$whl"
    if mmcv_ops_ok; then
        log "mmcv: installed $(basename "$whl")"
        return 0
    fi
    log "mmcv: $(basename "$whl") does not load against torch $TORCH_VERSION$([[ $CUDA_BUILD == 1 ]] && echo ' with CUDA ops'), uninstalled"
    "${PIP[@]}" uninstall -q -y mmcv
    return 1
}

# Build the mmcv wheel from the PyPI sdist into $WHEEL_CACHE.
MMCV_WORK=""
cleanup_mmcv_work() { if [[ -n "$MMCV_WORK" ]]; then rm -rf "$MMCV_WORK"; fi; }
build_mmcv() {
    mkdir -p "$CACHE_DIR/sdist" "$WHEEL_CACHE"
    MMCV_WORK="$(mktemp -d "${TMPDIR:-/tmp}/mmcv-build.XXXXXX")"
    trap cleanup_mmcv_work EXIT
    local work="$MMCV_WORK"

    # Build environment: setuptools<81 (mmcv's setup.py imports pkg_resources, even to
    # read its metadata), wheel and ninja in a throw-away venv that sees the target
    # environment's torch and numpy through a .pth file; the target's own setuptools is
    # left as it is.
    local benv="$work/buildenv" target_site bsite
    "$PY" -m venv "$benv"
    target_site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    bsite="$("$benv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    "$benv/bin/python" -m pip install -q -r "$ROOT/requirements/build.txt"
    echo "$target_site" > "$bsite/zz_mmeac_target.pth"

    local sdist="$CACHE_DIR/sdist/mmcv-$MMCV_VERSION.tar.gz"
    if [[ ! -f "$sdist" ]]; then
        log "mmcv: downloading the sdist of mmcv==$MMCV_VERSION"
        "$benv/bin/python" -m pip download -q --no-deps --no-binary :all: \
            --no-build-isolation -d "$work/sdist" "mmcv==$MMCV_VERSION"
        [[ -f "$work/sdist/mmcv-$MMCV_VERSION.tar.gz" ]] \
            || die "pip download gave no mmcv-$MMCV_VERSION.tar.gz"
        cp "$work/sdist/mmcv-$MMCV_VERSION.tar.gz" "$sdist.part" && mv "$sdist.part" "$sdist"
    fi
    tar -xzf "$sdist" -C "$work"
    local src="$work/mmcv-$MMCV_VERSION"
    # torch >= 2.9 headers need C++20; mmcv 2.1.0's setup.py asks for C++17.
    grep -q -- '-std=c++17' "$src/setup.py" || die "mmcv sdist setup.py has no '-std=c++17' to patch"
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    if grep -q -- '-std=c++17' "$src/setup.py"; then die "patching mmcv's setup.py to C++20 failed"; fi
    log "mmcv: patched $src/setup.py: -std=c++17 -> -std=c++20 ($(grep -c -- '-std=c++20' "$src/setup.py") places)"
    if [[ "${MMEAC_STOP_AFTER_PATCH:-0}" == 1 ]]; then
        trap - EXIT
        log "mmcv: MMEAC_STOP_AFTER_PATCH=1: stopping before the build (patched sources in $src)"
        exit 0
    fi

    local jobs="${MAX_JOBS:-$(nproc)}"
    local env_vars=(MMCV_WITH_OPS=1 "MAX_JOBS=$jobs")
    if [[ $CUDA_BUILD == 1 ]]; then
        env_vars+=(FORCE_CUDA=1)
        log "mmcv: building with CUDA ops (nvcc: $(command -v nvcc)), MAX_JOBS=$jobs; this takes a while"
    else
        log "mmcv: building CPU ops (no GPU or no nvcc), MAX_JOBS=$jobs; about 10 minutes on 2 cores"
    fi
    env "${env_vars[@]}" "$benv/bin/python" -m pip wheel -q --no-deps --no-build-isolation \
        -w "$work/dist" "$src"
    local built
    built="$(ls "$work"/dist/mmcv-"$MMCV_VERSION"-*.whl)"
    cp "$built" "$WHEEL_CACHE/.part" && mv "$WHEEL_CACHE/.part" "$WHEEL_CACHE/$(basename "$built")"
    log "mmcv: built and cached $WHEEL_CACHE/$(basename "$built")"
    cleanup_mmcv_work
    MMCV_WORK=""
    trap - EXIT
}

if mmcv_ops_ok; then
    log "mmcv: $MMCV_VERSION with compiled ops already installed"
else
    candidates=()
    shopt -s nullglob
    for f in "$WHEEL_CACHE"/mmcv-"$MMCV_VERSION"-*.whl; do candidates+=("$f"); done
    if [[ -n "$WHEELHOUSE" ]]; then
        for f in "$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl; do candidates+=("$f"); done
    fi
    shopt -u nullglob
    done_mmcv=0
    for whl in ${candidates[@]+"${candidates[@]}"}; do
        if try_mmcv_wheel "$whl"; then done_mmcv=1; break; fi
    done
    if [[ $done_mmcv == 0 ]]; then
        log "mmcv: no fitting wheel (wheelhouse: ${WHEELHOUSE:-none}; cache: $WHEEL_CACHE), building from source"
        build_mmcv
        shopt -s nullglob
        for whl in "$WHEEL_CACHE"/mmcv-"$MMCV_VERSION"-*.whl; do
            if try_mmcv_wheel "$whl"; then done_mmcv=1; break; fi
        done
        shopt -u nullglob
        [[ $done_mmcv == 1 ]] || die "the mmcv $MMCV_VERSION wheel built into $WHEEL_CACHE does not load against torch $TORCH_VERSION"
    fi
    # mmcv's own dependencies (addict, yapf, ...), resolved with mmcv already in place.
    "${PIP_INSTALL[@]}" -q "mmcv==$MMCV_VERSION"
fi

# ---------------------------------------------------------------- 4. the rest of the stack
read -r -a MM_REQS <<< "$(read_reqs "$ROOT/requirements/mminstall.txt")"
stack_ok() {
    pins_satisfied "${MM_REQS[@]}" || return 1
    # Every runtime / test requirement installed at a version its specifier allows.
    "$PY" - "$ROOT/requirements/runtime.txt" "$ROOT/requirements/tests.txt" \
        "$ROOT/requirements/onnx.txt" <<'PYEOF' >/dev/null 2>&1
import sys
from importlib import metadata
from packaging.requirements import Requirement
for path in sys.argv[1:]:
    for line in open(path):
        line = line.split('#', 1)[0].strip()
        if line:
            req = Requirement(line)
            assert req.specifier.contains(metadata.version(req.name), prereleases=True)
PYEOF
}
if stack_ok; then
    log "stack: ${MM_REQS[*]} and the runtime / test requirements already installed"
else
    log "stack: installing ${MM_REQS[*]} + requirements/runtime.txt + tests.txt + onnx.txt"
    "${PIP_INSTALL[@]}" -q "${MM_REQS[@]}" -r "$ROOT/requirements/runtime.txt" \
        -r "$ROOT/requirements/tests.txt" -r "$ROOT/requirements/onnx.txt"
    mmcv_ops_ok || die "installing the stack replaced mmcv: mmcv.ops no longer loads its compiled ops"
fi

# ---------------------------------------------------------------- 5. mmeac (editable)
if [[ $EDITABLE == 1 ]]; then
    if "$PY" - "$ROOT" <<'PYEOF' >/dev/null 2>&1
import importlib.util, os, sys
from importlib import metadata
metadata.version('mmeac')
spec = importlib.util.find_spec('mmeac')
assert spec is not None and os.path.realpath(spec.origin).startswith(
    os.path.realpath(sys.argv[1]) + os.sep)
PYEOF
    then
        log "mmeac: editable install of $ROOT already present"
        # the compiled kernels: build them when missing or older than their sources
        so="$(compgen -G "$ROOT/mmeac/_C*.so" | head -n 1 || true)"
        if [[ "${MMEAC_WITH_OPS:-}" != 0 ]] && { [[ -z "$so" ]] ||
            [[ -n "$(find "$ROOT/mmeac/ops/csrc" -newer "$so" -type f | head -n 1)" ]]; }; then
            log "mmeac: building the compiled kernels (mmeac._C)"
            build_log="$(mktemp)"
            (cd "$ROOT" && "$PY" setup.py -q build_ext --inplace) >"$build_log" 2>&1 || {
                tail -n 30 "$build_log" >&2
                [[ "${MMEAC_WITH_OPS:-}" != 1 ]] || die "building mmeac._C failed (output above)"
                log "warning: building mmeac._C failed; mmeac will use its plain path"
            }
            rm -f "$build_log"
        fi
    else
        log "mmeac: pip install -e $ROOT"
        if "$PY" -c 'import setuptools' >/dev/null 2>&1; then
            "${PIP[@]}" install -q --no-build-isolation --no-deps -e "$ROOT"
        else
            "${PIP[@]}" install -q --no-deps -e "$ROOT"
        fi
    fi
fi

# ---------------------------------------------------------------- 6. check
log "checking the installation"
"$PY" - "$MMCV_VERSION" "$EDITABLE" "$CUDA_BUILD" <<'PYEOF'
import importlib
import sys

want_mmcv, editable, cuda = sys.argv[1], sys.argv[2] == '1', sys.argv[3] == '1'
problems = []


def check(what, fn):
    try:
        fn()
    except BaseException as exc:  # report every failure, not only the first
        lines = str(exc).strip().splitlines()
        problems.append(f'{what}: {type(exc).__name__}: {lines[-1] if lines else ""}')


def mmcv_version():
    import mmcv
    if mmcv.__version__ != want_mmcv:
        raise RuntimeError(f'mmcv {mmcv.__version__} installed, {want_mmcv} needed')


def mmcv_ops(device):
    import torch
    import mmcv._ext  # noqa: F401  the compiled extension
    from mmcv.ops import nms, roi_align
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                          [20., 20., 30., 30.]], device=device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    _, keep = nms(boxes, scores, iou_threshold=0.5)  # IoU(0, 1) = 81 / 119
    if keep.tolist() != [0, 2]:
        raise RuntimeError(f'nms on {device} kept {keep.tolist()}, expected [0, 2]')
    feat = torch.arange(16., device=device).view(1, 1, 4, 4)  # value = 4 * y + x
    rois = torch.tensor([[0., 0., 0., 4., 4.]], device=device)
    out = roi_align(feat, rois, (1, 1), 1.0, 2, 'avg', True).item()
    if abs(out - 7.5) > 1e-5:  # mean of 4 * y + x at y, x in {0.5, 2.5}
        raise RuntimeError(f'roi_align on {device} gave {out}, expected 7.5')


check('mmcv version', mmcv_version)
check('mmcv.ops compiled extension (mmcv._ext) on cpu', lambda: mmcv_ops('cpu'))
if cuda:
    check('mmcv.ops CUDA kernels', lambda: mmcv_ops('cuda'))
for mod in ('mmengine', 'mmseg', 'mmseg.models', 'mmdet', 'mmdet.models',
            'mmpretrain', 'mmpretrain.models', 'cv2', 'pycocotools.mask', 'pytest'):
    check(f'import {mod}', lambda mod=mod: importlib.import_module(mod))


def package_configs():
    # mmengine finds 'mmseg::' base configs with pkg_resources (setuptools < 81);
    # checked before mmeac is imported, which patches that lookup in-process
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from mmengine.utils import get_installed_path
        get_installed_path('mmsegmentation')


check('pkg_resources for mmengine package configs (setuptools<81)',
      package_configs)
if editable:
    check('import mmeac', lambda: importlib.import_module('mmeac'))


def mmeac_kernels():
    import os
    from mmeac.ops import COMPILED_KERNEL_ERROR
    if COMPILED_KERNEL_ERROR is not None:
        msg = f'mmeac._C did not load: {COMPILED_KERNEL_ERROR}'
        if os.environ.get('MMEAC_WITH_OPS') == '1':
            raise RuntimeError(msg)
        print(f'[setup_env] warning: {msg}; mmeac will use its plain path')


if editable:
    check('mmeac compiled kernels', mmeac_kernels)

if problems:
    print('setup_env: error: the installation is broken:', file=sys.stderr)
    for p in problems:
        print(f'  - {p}', file=sys.stderr)
    sys.exit(1)
import mmcv, mmdet, mmengine, mmpretrain, mmseg, torch  # noqa: E401
print(f'[setup_env] OK: torch {torch.__version__}, mmengine {mmengine.__version__}, '
      f'mmcv {mmcv.__version__} (compiled ops{", CUDA" if cuda else ""}), '
      f'mmseg {mmseg.__version__}, mmdet {mmdet.__version__}, '
      f'mmpretrain {mmpretrain.__version__}')
if editable:
    from mmeac.ops import HAS_COMPILED_KERNEL
    print('[setup_env] mmeac CPU attention kernel: ' + (
        'compiled (mmeac._C)' if HAS_COMPILED_KERNEL else
        'plain path (mmeac._C not built)'))
PYEOF

log "done in $((SECONDS - START)) s"
if [[ -z "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]]; then
    log "activate the environment with:  source $ROOT/.venv/bin/activate"
fi

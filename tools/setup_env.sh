#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment with the known-good
# OpenMMLab stack, CPU-friendly, on Python 3.11.
#
#   bash tools/setup_env.sh            # creates ./.venv
#   CCOP_VENV=/path/to/venv bash tools/setup_env.sh
#
# Re-running it when everything is installed only checks the environment and
# returns within seconds (a stamp records what was installed).
#
# Traps this script handles (measured on 2-core, no-GPU machines):
#  * pip's machine config may point at a find-links folder with a `+cpu` torch
#    build that torchvision's wheels cannot load against: PIP_FIND_LINKS=" "
#    makes pip use the registry's regular torch 2.13.0 / torchvision 0.28.0.
#  * mmdet 3.3.0 needs mmcv < 2.2.0, whose only registry artifact is an sdist:
#    it is built with compiled ops (MMCV_WITH_OPS=1, --no-build-isolation,
#    setuptools<81 for pkg_resources), ~13 min on 2 cores. A prebuilt wheel in
#    $CCOP_WHEEL_DIR (default ../shared/wheels) or .cache/wheels is used when it
#    matches this Python; a freshly built wheel is kept in .cache/wheels.
#  * mmcv pulls opencv-python, which hides cv2.ximgproc: it is replaced by
#    opencv-contrib-python-headless and ximgproc is checked.
#  * openmim pulls openxlab (pins setuptools 60, old requests): installed with
#    --no-deps plus its real requirements.
#  * the LVIS API (lvis 0.5.3) declares opencv-python and cityscapesscripts
#    declares the `typing` back-port, coloredlogs, appdirs: both are installed
#    with --no-deps (requirements/datasets.txt says what each really needs),
#    before the opencv-contrib step; lvis' np.float under NumPy 2 is fixed by
#    `import ccop_plugin` (ccop_plugin/utils/lvis_compat.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${CCOP_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
WHEEL_DIR="${CCOP_WHEEL_DIR:-$ROOT/../shared/wheels}"
LOCAL_WHEELS="$ROOT/.cache/wheels"
export PIP_FIND_LINKS=" "
export PIP_DISABLE_PIP_VERSION_CHECK=1
CONSTRAINTS="$ROOT/requirements/constraints.txt"

log() { printf '[setup_env %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

stamp_of() {
  cat tools/setup_env.sh setup.py requirements/*.txt | sha256sum | cut -d' ' -f1
}
STAMP_FILE="$VENV/.ccop_setup_stamp"
want_stamp="$(stamp_of)"

check_env() {
  "$VENV/bin/python" - <<'PY'
import cv2
assert hasattr(cv2, 'ximgproc'), 'cv2.ximgproc missing: opencv-contrib is shadowed'
import torch, torchvision, mmcv, mmengine, mmdet, mmpretrain  # noqa: F401
from mmcv.ops import roi_align, nms  # noqa: F401  (compiled ops)
import ccop_plugin  # noqa: F401
import ruff  # noqa: F401  (make test lints first)
# LVIS and Cityscapes evaluation (mmdet's LVISMetric, CityScapesMetric)
import lvis.eval, cityscapesscripts.helpers.labels  # noqa: F401,E401
from mmdet.evaluation.functional.cityscapes_utils import HAS_CITYSCAPESAPI
assert HAS_CITYSCAPESAPI, 'cityscapesscripts does not import'
assert lvis.eval.np.float is float, 'lvis NumPy-2 layer not applied'
PY
}

if [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$want_stamp" ]]; then
  if check_env 2>/dev/null; then
    log "environment $VENV is up to date"
    exit 0
  fi
  log "stamp matches but the environment check failed: repairing"
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --no-input -c "$CONSTRAINTS")

log "build tools"
"${PIP[@]}" -q --upgrade pip 'setuptools>=77,<81' wheel ninja psutil

log "torch / torchvision (registry builds)"
"${PIP[@]}" -q torch torchvision

# ---- mmcv 2.1.0 with compiled ops -------------------------------------------------
if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  pytag="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
  wheel=""
  for d in "$LOCAL_WHEELS" "$WHEEL_DIR"; do
    for w in "$d"/mmcv-2.1.0-"$pytag"-"$pytag"-linux_x86_64.whl; do
      [[ -f "$w" ]] && wheel="$w" && break 2
    done
  done
  if [[ -n "$wheel" ]]; then
    log "mmcv 2.1.0 from cached wheel $wheel"
  else
    log "building mmcv 2.1.0 with ops from source (about 13 min on 2 cores)"
    mkdir -p "$LOCAL_WHEELS"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "$PY" -m pip wheel --no-deps --no-build-isolation -w "$LOCAL_WHEELS" mmcv==2.1.0
    wheel="$(ls "$LOCAL_WHEELS"/mmcv-2.1.0-*.whl | head -n1)"
  fi
  "${PIP[@]}" -q "$wheel"
fi

log "OpenMMLab stack and runtime requirements"
"${PIP[@]}" -q -r requirements/runtime.txt -r requirements/mminstall.txt -r requirements/tests.txt

log "openmim (without openxlab)"
"${PIP[@]}" -q --no-deps openmim==0.3.9
"${PIP[@]}" -q click colorama model-index pandas requests rich tabulate

log "LVIS and Cityscapes evaluation APIs (--no-deps: no opencv-python)"
"${PIP[@]}" -q --no-deps -r requirements/datasets.txt

log "opencv-contrib (cv2.ximgproc)"
"$PY" -m pip uninstall -q -y opencv-python opencv-python-headless opencv-contrib-python >/dev/null 2>&1 || true
"${PIP[@]}" -q --force-reinstall --no-deps opencv-contrib-python-headless

log "ccop_plugin (editable)"
"${PIP[@]}" -q --no-deps --no-build-isolation -e .

check_env
echo "$want_stamp" > "$STAMP_FILE"
log "done: $("$PY" -c 'import torch, mmcv, mmdet, mmpretrain, mmengine, cv2; print("torch", torch.__version__, "mmcv", mmcv.__version__, "mmengine", mmengine.__version__, "mmdet", mmdet.__version__, "mmpretrain", mmpretrain.__version__, "cv2", cv2.__version__)')"

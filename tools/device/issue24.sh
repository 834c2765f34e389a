#!/usr/bin/env bash
# Issue 24's device check: one call, at most BUDGET_S seconds of benchmarks.
#
# Here, first: bash tools/device/bundle.sh (wheels into .whl/), then a CPU
# dry run against a copy of the device's packages (DEVELOPERS.md, "GPU
# checks"): DRY_RUN=1 PY=... WHL=... bash tools/device/issue24.sh
# On the device (run tool, carry [".whl"], timeout_s 540):
#   bash tools/device/issue24.sh
# Writes under $OUT: env.txt, one table + JSON per setting (<name>.md/.json,
# the tool's --out), logs/<name>.log, performance.json (the committed record
# with the two lever-free runs, fp32 and bf16, recorded by the tool) and
# records/<name>.json (the committed record with one lever run each).
# Every lever run checks its first-step losses against the lever-free run of
# its precision (--check-losses). A setting that would not end before the
# deadline is skipped and says so.
set -u
cd "$(dirname "$0")/../.."
START=$(date +%s)
OUT=${OUT:?set OUT (the device tool does)}
PY=${PY:-python3}
WHL=${WHL:-.whl}
SITE=${SITE:-/tmp/site}
BUDGET_S=${BUDGET_S:-450}
mkdir -p "$OUT/logs" "$OUT/records"
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --root-user-action=ignore \
  --upgrade --target "$SITE" "$WHL"/*.whl || exit 1
export PYTHONPATH=$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
$PY -c 'import mmcv._ext' 2>/dev/null ||
  cp tools/device/mmcv_ext_stub.py "$SITE/mmcv/_ext.py"
{ date -u; nvidia-smi 2>&1 | head -15
  $PY -c 'import sys, torch, mmengine, mmpretrain, mmdet, cv2
print(sys.version.split()[0], "torch", torch.__version__, "cuda",
      torch.version.cuda, "mmengine", mmengine.__version__, "mmpretrain",
      mmpretrain.__version__, "mmdet", mmdet.__version__, "cv2",
      cv2.__version__, "ximgproc", hasattr(cv2, "ximgproc"))'
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
if [ "${DRY_RUN:-0}" = 1 ]; then  # the same runs, tiny, on the CPU
  BASE=(--device cpu --depth 18 --batch 4 --size 64 --boxes 4 --iters 1
        --warmup 1 --queue-len 64)
  PIPE=(--pipeline-images 4)
  BIG=(--batch 8)
  AMP=()  # the cpu record holds fp32 only; the CUDA autocast path is the GPU's
  COMPILE=(--compile eager)  # no C++ compiler wait on a dry run
else  # issue 24's paper setting on one GPU
  BASE=(--device cuda --depth 50 --batch 32 --size 224 --boxes 16
        --iters 20 --warmup 5 --queue-len 65536)
  PIPE=(--pipeline-images 200 --target-img-s 1000)
  BIG=(--batch 64)
  AMP=(--amp)
  COMPILE=(--compile)
fi
cp docs/benchmarks/performance.json "$OUT/performance.json"
# run NAME MIN_S ARGS...: skipped when fewer than MIN_S seconds are left
run() {
  local name=$1 need=$2 left; shift 2
  left=$((START + BUDGET_S - $(date +%s)))
  if [ "$left" -lt "$need" ]; then
    echo "$name: skipped, ${left}s left of ${BUDGET_S}s (needs ~${need}s)"
    return
  fi
  local t0=$(date +%s)
  timeout "$left" $PY tools/benchmark_pretrain.py "${BASE[@]}" "$@" \
    --out "$OUT/$name.md" > "$OUT/logs/$name.log" 2>&1
  local rc=$?
  echo "$name: rc $rc in $(( $(date +%s) - t0 ))s"
  grep -h -E '^\| (mocov2|ccop) \||utilisation|First-step' "$OUT/$name.md" 2>/dev/null
  [ "$rc" = 0 ] || tail -5 "$OUT/logs/$name.log"
}
lever() {  # lever NAME MIN_S REF ARGS...: its own record, checked against REF
  local name=$1 need=$2 ref=$3; shift 3
  cp docs/benchmarks/performance.json "$OUT/records/$name.json"
  run "$name" "$need" --check-losses "$OUT/$ref.json" \
    --record "$OUT/records/$name.json" "$@"
}
run bf16 60 "${AMP[@]}" --count-flops --op-table 15 "${PIPE[@]}" \
  --record "$OUT/performance.json"
run fp32 45 --count-flops --no-profile --pipeline-images 0 \
  --record "$OUT/performance.json"
NP=(--no-profile --pipeline-images 0)
lever bf16_channels_last 40 bf16 "${AMP[@]}" --channels-last "${NP[@]}"
lever bf16_compile 120 bf16 "${AMP[@]}" "${COMPILE[@]}" "${NP[@]}"
lever bf16_channels_last_compile 120 bf16 "${AMP[@]}" --channels-last "${COMPILE[@]}" \
  "${NP[@]}"
lever fp32_channels_last 40 fp32 --channels-last "${NP[@]}"
run bf16_batch64 45 "${AMP[@]}" "${BIG[@]}" "${NP[@]}"
lever fp32_channels_last_compile 120 fp32 --channels-last "${COMPILE[@]}" "${NP[@]}"
echo "issue24.sh: done in $(( $(date +%s) - START ))s"

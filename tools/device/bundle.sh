#!/usr/bin/env bash
# Fetch the wheels the GPU machine lacks (tools/device/wheels.txt) into .whl/
# for Python 3.12 / manylinux x86-64, here, before any device time is spent.
# Then name .whl in the device call's carry (tools/device/issue24.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
# the registry only: pip's find-links would offer this machine's +cpu torch
PIP_FIND_LINKS=" " "$PY" -m pip download -q --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl -r tools/device/wheels.txt
n=$(ls .whl/*.whl | wc -l)
want=$(grep -c '==' tools/device/wheels.txt)
[ "$n" -eq "$want" ] || { echo "bundle.sh: .whl holds $n wheels, wheels.txt names $want (remove stale ones)" >&2; exit 1; }
echo "bundle.sh: $n wheels, $(du -sh .whl | cut -f1) in .whl (carry limit 64 MiB with the tree)"

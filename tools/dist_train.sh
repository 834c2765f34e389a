#!/usr/bin/env bash
# Multi-GPU training on one machine: bash tools/dist_train.sh CONFIG GPUS [args]
CONFIG=$1
GPUS=$2
PORT=${PORT:-29500}
shift 2
PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
torchrun --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"

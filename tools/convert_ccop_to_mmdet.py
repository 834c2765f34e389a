#!/usr/bin/env python
"""Convert a CCOP (or mmpretrain MoCo v2 ...) checkpoint for detection.

    python tools/convert_ccop_to_mmdet.py work_dirs/ccop/epoch_800.pth \
        work_dirs/ccop/ccop_r50_fpn_mmdet.pth [--no-fpn] [--config CFG]
    python tools/convert_ccop_to_mmdet.py CKPT out.pkl --format detectron2 \
        [--config d2_config.yaml]

Keeps the query encoder (``backbone.*`` and, unless --no-fpn, the FPN
``neck.*``); drops the momentum encoder, projection necks, heads and queues.
Prints mapped / skipped / missing keys (and, for Detectron2, the settings the
export needs, checked against a Detectron2 yaml with --config); exits 1 when
nothing maps, the input cannot be loaded safely, or the Detectron2 config
does not fit. An existing output file is replaced only with --overwrite
(keeping its permissions); a failed write (e.g. a full disk) keeps it as it
was. Checkpoints are loaded with ``weights_only=True``; files that
need full unpickling only with --trust-checkpoint (or
CCOP_TRUST_CHECKPOINTS=1), for files you trust.
"""
import sys

from ccop_plugin.converters.cli import main

if __name__ == '__main__':
    sys.exit(main())

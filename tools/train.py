"""Train any ccop_plugin config (pre-training or fine-tuning) with mmengine.

Equivalent to ``mim train mmpretrain|mmdet <config>`` without needing mim:
the config's ``default_scope`` picks the registries. Examples::

    python tools/train.py configs/ccop/ccop_resnet18-fpn_cpu-tiny.py
    python tools/train.py <config> --resume            # resume from latest
    python tools/train.py <config> --overwrite-work-dir  # replace a run
    python tools/train.py <config> --resume old.pth --trust-checkpoint
    torchrun --nproc_per_node 8 tools/train.py <config> --launcher pytorch

One run per work dir: the run holds it (an ``flock``) until it ends, and a
second run started there is refused with one line naming the holder. A work
dir that already holds checkpoints is refused unless ``--resume`` or
``--overwrite-work-dir`` is given; ``--resume`` skips a truncated newest
checkpoint with a warning (``ccop_plugin.engine.work_dir``).
"""
import sys

from ccop_plugin.engine.train_cli import main

if __name__ == '__main__':
    sys.exit(main())
